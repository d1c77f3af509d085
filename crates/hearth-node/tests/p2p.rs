//! hearth-node with `--relay`: it reserves at the real relay under its server key, serves
//! federation requests that arrive over libp2p (refusing any signed as a server other than the
//! one at the other end of the connection), and two of them share a room through the relay.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use futures::channel::oneshot;
use hearth_core::ServerIdentity;
use hearth_core::ruma::{OwnedServerName, ServerName};
use hearth_p2p::{Config, Multiaddr, Node, RelayStatus, Started};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const TIMEOUT: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {TIMEOUT:?} waiting for {what}"))
}

/// The relay on its own thread and runtime; stops when the sender is dropped.
fn start_relay(dir: &std::path::Path) -> (Multiaddr, oneshot::Sender<()>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let key_path = dir.join("relay.key");
    let args = hearth_rendezvous::Args::parse_flags([
        "--listen-tcp",
        &listen,
        "--key",
        key_path.to_str().unwrap(),
    ])
    .unwrap();
    let key = hearth_rendezvous::load_or_create_key(&key_path).unwrap();
    let addr = format!("{listen}/p2p/{}", key.public().to_peer_id()).parse().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime
            .block_on(hearth_rendezvous::run_until(args, key, async {
                let _ = stopped.await;
            }))
            .unwrap();
    });
    (addr, stop)
}

struct HearthNode {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl HearthNode {
    fn start(data: &std::path::Path, relay: &Multiaddr) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hearth-node"))
            .args(["--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .arg("--open-registration")
            .args(["--relay", &relay.to_string()])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, stdout }
    }

    /// The rest of the first stdout line starting with `prefix`.
    async fn line(&mut self, prefix: &str) -> String {
        within(prefix, async {
            loop {
                let line = self.stdout.next_line().await.unwrap().expect("hearth-node exited");
                if let Some(rest) = line.strip_prefix(prefix) {
                    return rest.to_owned();
                }
            }
        })
        .await
    }
}

fn profile_request(signer: &ServerIdentity, destination: &ServerName) -> http::Request<Vec<u8>> {
    let mut request = http::Request::get(format!(
        "/_matrix/federation/v1/query/profile?user_id=%40nobody%3A{destination}&field=displayname"
    ))
    .body(Vec::new())
    .unwrap();
    hearth_server::sign_request(signer, destination, &mut request).unwrap();
    request
}

#[tokio::test]
async fn hearth_node_federates_over_the_relay_and_checks_origins() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, _stop_relay) = start_relay(dir.path());
    let mut b = HearthNode::start(&dir.path().join("b"), &relay);
    let b_name: OwnedServerName = b.line("server name: ").await.parse().unwrap();
    let b_peer = b.line("p2p peer id: ").await;
    assert_eq!(b_peer, hearth_p2p::peer_id_for_server(&b_name).unwrap().to_string());
    let reserved = b.line("relay reserved: ").await;
    assert!(reserved.starts_with(&format!("{relay}/p2p-circuit/p2p/{b_peer}")), "{reserved}");

    // Another server, here a bare p2p node with its own key.
    let t = ServerIdentity::from_seed(&[9; 32]).unwrap();
    let Started { node, driver, .. } =
        Node::start(Config::new(t.seed(), vec![relay.clone()])).await.unwrap();
    tokio::spawn(driver);
    within("the test node's reservation", async {
        while node.status()[0].status != RelayStatus::Registered {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    within("discovery of hearth-node", async {
        while !node.peers().await.contains(&b_name) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;

    let version = http::Request::get("/_matrix/federation/v1/version").body(Vec::new()).unwrap();
    let response = within("version", node.request(&b_name, version)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(String::from_utf8(response.into_body()).unwrap().contains("\"server\""));

    // Signed by the server at this end of the connection: the server checks the signature and
    // answers (there is no such user).
    let signed = profile_request(&t, &b_name);
    let response = within("a signed request", node.request(&b_name, signed)).await.unwrap();
    let body = String::from_utf8_lossy(response.body()).into_owned();
    assert!(matches!(response.status().as_u16(), 200 | 404), "{} {body}", response.status());

    // Validly signed, but by another server than the connection's: refused before the server.
    let other = ServerIdentity::from_seed(&[10; 32]).unwrap();
    let forwarded = profile_request(&other, &b_name);
    let response = within("a forwarded request", node.request(&b_name, forwarded)).await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(String::from_utf8(response.into_body()).unwrap().contains("M_UNAUTHORIZED"));

    b.child.start_kill().unwrap();
}

/// One client-server API call on a fresh connection: the status and the JSON body.
async fn call(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    use http_body_util::{BodyExt, Full};
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, address)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = body.map(|body| body.to_string()).unwrap_or_default();
    let request = request.body(Full::new(hyper::body::Bytes::from(body))).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

struct User {
    address: String,
    token: String,
    user_id: String,
}

impl User {
    async fn register(address: &str, name: &str) -> Self {
        let body = serde_json::json!({
            "username": name, "password": "password", "auth": {"type": "m.login.dummy"}
        });
        let (status, reply) =
            call(address, "POST", "/_matrix/client/v3/register", None, Some(body)).await;
        assert_eq!(status, 200, "{reply}");
        Self {
            address: address.to_owned(),
            token: reply["access_token"].as_str().unwrap().to_owned(),
            user_id: reply["user_id"].as_str().unwrap().to_owned(),
        }
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let (status, reply) =
            call(&self.address, "POST", path, Some(&self.token), Some(body)).await;
        assert_eq!(status, 200, "POST {path}: {reply}");
        reply
    }

    /// Polls `/sync` until `done` holds for a response.
    async fn sync_until(&self, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
        within(what, async {
            loop {
                let (_, sync) =
                    call(&self.address, "GET", "/_matrix/client/v3/sync", Some(&self.token), None)
                        .await;
                if done(&sync) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
    }
}

fn enc(text: &str) -> String {
    text.replace('!', "%21").replace(':', "%3A").replace('@', "%40")
}

fn timeline_has(sync: &serde_json::Value, room_id: &str, body: &str) -> bool {
    sync["rooms"]["join"][room_id]["timeline"]["events"]
        .as_array()
        .is_some_and(|events| events.iter().any(|event| event["content"]["body"] == body))
}

#[tokio::test]
async fn two_hearth_nodes_share_a_room_through_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let (relay, _stop_relay) = start_relay(dir.path());
    let mut a = HearthNode::start(&dir.path().join("a"), &relay);
    let mut b = HearthNode::start(&dir.path().join("b"), &relay);
    let a_address = a.line("listening on http://").await;
    a.line("relay reserved: ").await;
    let b_address = b.line("listening on http://").await;
    b.line("relay reserved: ").await;

    let alice = User::register(&a_address, "alice").await;
    let bob = User::register(&b_address, "bob").await;
    let room = alice.post("/_matrix/client/v3/createRoom", serde_json::json!({})).await;
    let room_id = room["room_id"].as_str().unwrap().to_owned();
    let invite = format!("/_matrix/client/v3/rooms/{}/invite", enc(&room_id));
    alice.post(&invite, serde_json::json!({ "user_id": bob.user_id })).await;
    bob.sync_until("bob's invite", |sync| !sync["rooms"]["invite"][&room_id].is_null()).await;
    bob.post(&format!("/_matrix/client/v3/join/{}", enc(&room_id)), serde_json::json!({})).await;

    let send = |user: &User, body: &str| {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
            enc(&room_id),
            body.replace(' ', "-")
        );
        let content = serde_json::json!({ "msgtype": "m.text", "body": body });
        let (address, token) = (user.address.clone(), user.token.clone());
        async move {
            let (status, reply) = call(&address, "PUT", &path, Some(&token), Some(content)).await;
            assert_eq!(status, 200, "{reply}");
        }
    };
    send(&alice, "hello from a").await;
    bob.sync_until("alice's message at b", |sync| timeline_has(sync, &room_id, "hello from a"))
        .await;
    send(&bob, "hello from b").await;
    alice
        .sync_until("bob's message at a", |sync| timeline_has(sync, &room_id, "hello from b"))
        .await;

    // B goes away; what alice sends meanwhile waits in A's queue and reaches B once it is back
    // (same data, so the same key and peer ID) and has reserved at the relay again.
    b.child.kill().await.unwrap();
    send(&alice, "while you were away").await;
    let mut b = HearthNode::start(&dir.path().join("b"), &relay);
    let b_address = b.line("listening on http://").await;
    b.line("relay reserved: ").await;
    let bob = User { address: b_address, ..bob };
    bob.sync_until("the message sent while b was down", |sync| {
        timeline_has(sync, &room_id, "while you were away")
    })
    .await;

    a.child.start_kill().unwrap();
    b.child.start_kill().unwrap();
}
