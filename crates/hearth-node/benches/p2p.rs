//! `cargo bench -p hearth-node --bench p2p`: two hearth-nodes federating through the real relay
//! on loopback, printed as one JSON object on the last line; `cargo xtask bench` collects it.
//!
//! The relay (`hearth-rendezvous`, in process on its own thread) listens on TCP; servers A and B
//! are the release binary with `--relay`, each on a fresh data directory. Over plain HTTP/1.1:
//!
//! - `p2p_delivery_p50_ms` / `p2p_delivery_p95_ms`: alice@A creates a room, invites bob@B, bob
//!   joins; bob long-polls `/sync` throughout; alice sends 300 messages one at a time, a short
//!   gap after each answer. Per message: the send request's start → the event first seen in
//!   bob's `/sync` (one clock: this process).
//! - `join_ms`: a second room on A with 100 members (alice and 99 local users, registered and
//!   joined) and 1,000 messages; bob, invited, joins from B. The time of bob's `POST /join`: a
//!   remote join (make_join, send_join with the state and auth chain, checks, store).

// A native benchmark, never built for wasm32: std's clocks are fine here.
#![allow(clippy::disallowed_methods)]

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{StreamExt, channel::oneshot};
use serde_json::{Value, json};

const MESSAGES: usize = 300;
/// The pause after each send's answer: one message at a time, as a person chatting sends.
const GAP: Duration = Duration::from_millis(20);
const EXTRA_MEMBERS: usize = 99;
const HISTORY: usize = 1000;
/// Registrations in flight while filling the big room (each hashes a password).
const REGISTRATIONS_IN_FLIGHT: usize = 8;
/// How long a federated event (an invite, the last message) may take before the run fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

mod common;

use common::{
    Connection, Node, Result, User, encode, fail, ms, percentile, round, string_field, watch,
};

fn main() {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => fail(&format!("cannot start the runtime: {error}")),
    };
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => fail(&format!("cannot create a data directory: {error}")),
    };
    let relay = match Relay::start(dir.path()) {
        Ok(relay) => relay,
        Err(error) => fail(&error),
    };
    let nodes = Node::start(&dir.path().join("a"), &[&relay.addr])
        .and_then(|a| Ok((a, Node::start(&dir.path().join("b"), &[&relay.addr])?)));
    let (mut a, mut b) = match nodes {
        Ok(nodes) => nodes,
        Err(error) => fail(&error),
    };
    let result = runtime.block_on(run(&a, &b));
    let stopped = a.stop().and(b.stop());
    drop(relay);
    match (result, stopped) {
        (Ok(report), Ok(())) => println!("{report}"),
        (Err(error), _) | (Ok(_), Err(error)) => fail(&error),
    }
}

async fn run(a: &Node, b: &Node) -> Result<Value> {
    let alice = User::register(&a.address, "alice").await?;
    let bob = User::register(&b.address, "bob").await?;

    // Delivery: one room, bob long-polling at B.
    let room = alice.call("POST", "/_matrix/client/v3/createRoom", Some(json!({}))).await?;
    let room = string_field(&room, "room_id")?;
    let since = invite_and_join(&alice, &bob, &room).await?.0;
    let seen: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let watcher = User {
        token: bob.token.clone(),
        user_id: bob.user_id.clone(),
        connection: Connection::open(&b.address).await?,
    };
    let watch = tokio::spawn(watch(watcher, room.clone(), since, Arc::clone(&seen), MESSAGES));
    let mut sent_at = BTreeMap::new();
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message", encode(&room));
    for m in 0..MESSAGES {
        let tag = format!("m{m}");
        let body = json!({"msgtype": "m.text", "body": format!("message {m}"), "tag": tag});
        let t0 = Instant::now();
        alice.call("PUT", &format!("{path}/{tag}"), Some(body)).await?;
        sent_at.insert(tag, t0);
        tokio::time::sleep(GAP).await;
    }
    let watched = tokio::time::timeout(DELIVERY_TIMEOUT, watch).await;
    let seen = std::mem::take(&mut *seen.lock().map_err(|error| error.to_string())?);
    match watched {
        Ok(joined) => joined.map_err(|error| error.to_string())??,
        Err(_) => return Err(format!("bob saw only {} of {MESSAGES} messages", seen.len())),
    }
    let mut deliveries = Vec::with_capacity(MESSAGES);
    for (tag, at) in &seen {
        let t0 = sent_at.get(tag).ok_or_else(|| format!("bob saw unknown tag {tag}"))?;
        deliveries.push(ms(at.saturating_duration_since(*t0)));
    }

    // Join: a big room on A, then bob's remote join.
    let created =
        alice.call("POST", "/_matrix/client/v3/createRoom", Some(json!({"preset": "public_chat"})));
    let big = string_field(&created.await?, "room_id")?;
    let join_path = format!("/_matrix/client/v3/join/{}", encode(&big));
    let mut members = futures::stream::iter(0..EXTRA_MEMBERS)
        .map(|i| {
            let (address, join_path) = (a.address.clone(), join_path.clone());
            async move {
                let user = User::register(&address, &format!("member{i}")).await?;
                user.call("POST", &join_path, Some(json!({}))).await
            }
        })
        .buffer_unordered(REGISTRATIONS_IN_FLIGHT);
    while let Some(joined) = members.next().await {
        joined?;
    }
    let history = format!("/_matrix/client/v3/rooms/{}/send/m.room.message", encode(&big));
    for i in 0..HISTORY {
        let body = json!({"msgtype": "m.text", "body": format!("history {i}")});
        alice.call("PUT", &format!("{history}/h{i}"), Some(body)).await?;
    }
    let (_, join) = invite_and_join(&alice, &bob, &big).await?;
    // The join must have brought the room's whole state to B: everyone, bob included.
    let path = format!("/_matrix/client/v3/rooms/{}/joined_members", encode(&big));
    let joined = bob.call("GET", &path, None).await?;
    let count = joined["joined"].as_object().map_or(0, serde_json::Map::len);
    if count != EXTRA_MEMBERS + 2 {
        return Err(format!("after the join B knows {count} members, not {}", EXTRA_MEMBERS + 2));
    }

    Ok(json!({
        "p2p_delivery_p50_ms": round(percentile(&mut deliveries, 50.0)),
        "p2p_delivery_p95_ms": round(percentile(&mut deliveries, 95.0)),
        "join_ms": round(ms(join)),
    }))
}

/// Alice invites bob to `room`; once the invite reaches bob's `/sync`, bob joins. Returns bob's
/// `next_batch` after the join and how long the `POST /join` took.
async fn invite_and_join(alice: &User, bob: &User, room: &str) -> Result<(String, Duration)> {
    let enc = encode(room);
    let first = bob.call("GET", "/_matrix/client/v3/sync?timeout=0", None).await?;
    let mut since = string_field(&first, "next_batch")?;
    let invite = json!({"user_id": bob.user_id});
    alice.call("POST", &format!("/_matrix/client/v3/rooms/{enc}/invite"), Some(invite)).await?;
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let path = format!("/_matrix/client/v3/sync?timeout=5000&since={}", encode(&since));
        let sync = bob.call("GET", &path, None).await?;
        since = string_field(&sync, "next_batch")?;
        if !sync["rooms"]["invite"][room].is_null() {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "bob's invite to {room} did not arrive within {DELIVERY_TIMEOUT:?}"
            ));
        }
    }
    let t0 = Instant::now();
    bob.call("POST", &format!("/_matrix/client/v3/join/{enc}"), Some(json!({}))).await?;
    let took = t0.elapsed();
    let path = format!("/_matrix/client/v3/sync?since={}", encode(&since));
    let sync = bob.call("GET", &path, None).await?;
    Ok((string_field(&sync, "next_batch")?, took))
}

/// The relay on its own thread and runtime (as the p2p tests run it); stops when dropped.
struct Relay {
    addr: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(dir: &Path) -> Result<Relay> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|error| format!("no free port for the relay: {error}"))?
            .port();
        let listen = format!("/ip4/127.0.0.1/tcp/{port}");
        let key_path = dir.join("relay.key");
        let key_flag = key_path.to_str().ok_or("the temporary directory is not UTF-8")?;
        let args =
            hearth_rendezvous::Args::parse_flags(["--listen-tcp", &listen, "--key", key_flag])
                .map_err(|error| format!("relay flags: {error}"))?;
        let key = hearth_rendezvous::load_or_create_key(&key_path)
            .map_err(|error| format!("relay key: {error}"))?;
        let addr = format!("{listen}/p2p/{}", key.public().to_peer_id());
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => fail(&format!("cannot start the relay's runtime: {error}")),
            };
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(error) = runtime.block_on(hearth_rendezvous::run_until(args, key, shutdown))
            {
                fail(&format!("the relay stopped: {error}"));
            }
        });
        Ok(Relay { addr, stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
