//! `cargo bench -p hearth-node --bench load`: hearth-node under load, printed as one JSON object
//! on the last line; `cargo xtask bench` collects it with the core's figures.
//!
//! Starts the release binary on a fresh data directory and plays, over plain HTTP/1.1 with one
//! keep-alive connection per user:
//!
//! - 20 users in one public room each send 50 messages concurrently (one request in flight per
//!   user) while a 21st user long-polls `/sync`: `send_events_per_s`, `send_p95_ms`,
//!   `sync_delivery_p95_ms` (a message's send start -> first seen in the watcher's `/sync`),
//!   `server_cpu_ms_per_send` (the server's user + system CPU over the send phase, per send).
//! - `initial_sync_ms`: the median of 5 fresh `/sync`s of a room with 1,000 messages, with a
//!   filter asking for all of them.
//! - `peak_rss_mb`: the server process's high-water mark (VmHWM) at the end; `rss_after_start_mb`
//!   and `rss_after_register_mb`: its resident size (VmRSS) once listening and once the 22
//!   accounts exist, to tell where the memory goes.
//!
//! The client runs on a current-thread tokio runtime, so it uses at most one core and leaves the
//! others to the server: a load generator that saturates the machine measures itself.

// A native benchmark, never built for wasm32: std's clocks are fine here.
#![allow(clippy::disallowed_methods)]

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

const USERS: usize = 20;
const MESSAGES_PER_USER: usize = 50;
const HISTORY: usize = 1000;
const INITIAL_SYNCS: usize = 5;
/// The longest any single request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the watcher may lag behind the last send before the run fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// `/proc/PID/stat` counts CPU time in clock ticks of 1/100 s (USER_HZ on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

type Result<T> = std::result::Result<T, String>;

fn main() {
    // One thread for the whole client (see the module documentation).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => fail(&format!("cannot start the runtime: {error}")),
    };
    let data = match tempfile::tempdir() {
        Ok(data) => data,
        Err(error) => fail(&format!("cannot create a data directory: {error}")),
    };
    let mut node = match Node::start(data.path()) {
        Ok(node) => node,
        Err(error) => fail(&error),
    };
    let result = runtime.block_on(run(&node));
    // Stop the server whatever happened; a failed stop fails the run too.
    let stopped = node.stop();
    match (result, stopped) {
        (Ok(report), Ok(())) => println!("{report}"),
        (Err(error), _) | (Ok(_), Err(error)) => fail(&error),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("benchmark failed: {message}");
    std::process::exit(1)
}

async fn run(node: &Node) -> Result<Value> {
    let rss_after_start = node.status_kb("VmRSS")?;

    let owner = User::register(node, "owner").await?;
    let mut users = Vec::with_capacity(USERS);
    for i in 0..USERS {
        users.push(User::register(node, &format!("user{i}")).await?);
    }
    let watcher = User::register(node, "watcher").await?;
    let rss_after_register = node.status_kb("VmRSS")?;

    let created =
        owner.call("POST", "/_matrix/client/v3/createRoom", Some(json!({"preset": "public_chat"})));
    let room = string_field(&created.await?, "room_id")?;
    let enc = encode(&room);
    for user in users.iter().chain([&watcher]) {
        user.call("POST", &format!("/_matrix/client/v3/join/{enc}"), Some(json!({}))).await?;
    }

    // The watcher long-polls and notes when each message first appears. A limited timeline
    // would skip messages, so it asks for every one.
    let total = USERS * MESSAGES_PER_USER;
    let first = watcher.call("GET", "/_matrix/client/v3/sync?timeout=0", None).await?;
    let since = string_field(&first, "next_batch")?;
    let seen: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let watch = tokio::spawn(watch(watcher, room.clone(), since, Arc::clone(&seen), total));

    let cpu_before = node.cpu_ticks()?;
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for (u, user) in users.into_iter().enumerate() {
        let path = format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message");
        senders.spawn(async move {
            let mut sent = Vec::with_capacity(MESSAGES_PER_USER);
            for m in 0..MESSAGES_PER_USER {
                let tag = format!("{u}-{m}");
                let body =
                    json!({"msgtype": "m.text", "body": format!("message {tag}"), "tag": tag});
                let t0 = Instant::now();
                user.call("PUT", &format!("{path}/{tag}"), Some(body)).await?;
                sent.push((tag, t0, t0.elapsed()));
            }
            Ok::<_, String>(sent)
        });
    }
    let mut sent_at = BTreeMap::new();
    let mut send_latencies = Vec::with_capacity(total);
    while let Some(joined) = senders.join_next().await {
        for (tag, t0, latency) in joined.map_err(|error| error.to_string())?? {
            sent_at.insert(tag, t0);
            send_latencies.push(ms(latency));
        }
    }
    let elapsed = started.elapsed();
    let cpu_ticks = node.cpu_ticks()? - cpu_before;

    let watched = tokio::time::timeout(DELIVERY_TIMEOUT, watch).await;
    let seen = std::mem::take(&mut *seen.lock().map_err(|error| error.to_string())?);
    match watched {
        Ok(joined) => joined.map_err(|error| error.to_string())??,
        Err(_) => return Err(format!("the watcher saw only {} of {total} messages", seen.len())),
    }
    let mut deliveries = Vec::with_capacity(total);
    for (tag, at) in &seen {
        let t0 = sent_at.get(tag).ok_or_else(|| format!("the watcher saw unknown tag {tag}"))?;
        deliveries.push(ms(at.saturating_duration_since(*t0)));
    }

    // A second room with 1,000 messages, then fresh initial syncs asking for all of them.
    let created = owner.call("POST", "/_matrix/client/v3/createRoom", Some(json!({})));
    let history = string_field(&created.await?, "room_id")?;
    let history_enc = encode(&history);
    for i in 0..HISTORY {
        let path = format!("/_matrix/client/v3/rooms/{history_enc}/send/m.room.message/h{i}");
        owner
            .call("PUT", &path, Some(json!({"msgtype": "m.text", "body": format!("history {i}")})))
            .await?;
    }
    let filter = json!({"room": {"rooms": [history], "timeline": {"limit": HISTORY}}});
    let path = format!("/_matrix/client/v3/sync?filter={}", encode(&filter.to_string()));
    let mut sync_times = Vec::with_capacity(INITIAL_SYNCS);
    for _ in 0..INITIAL_SYNCS {
        let t0 = Instant::now();
        let sync = owner.call("GET", &path, None).await?;
        sync_times.push(ms(t0.elapsed()));
        let events = sync["rooms"]["join"][&history]["timeline"]["events"].as_array();
        let got = events
            .map(|events| events.iter().filter(|e| e["type"] == "m.room.message").count())
            .unwrap_or(0);
        if got != HISTORY {
            return Err(format!("initial sync returned {got} of {HISTORY} messages"));
        }
    }

    let peak = node.status_kb("VmHWM")?;
    let sends = total as f64;
    Ok(json!({
        "send_events_per_s": round(sends / elapsed.as_secs_f64()),
        "send_p95_ms": round(percentile(&mut send_latencies, 95.0)),
        "sync_delivery_p95_ms": round(percentile(&mut deliveries, 95.0)),
        "initial_sync_ms": round(percentile(&mut sync_times, 50.0)),
        "peak_rss_mb": round(peak as f64 / 1024.0),
        "rss_after_start_mb": round(rss_after_start as f64 / 1024.0),
        "rss_after_register_mb": round(rss_after_register as f64 / 1024.0),
        "server_cpu_ms_per_send": round(cpu_ticks as f64 / TICKS_PER_SECOND * 1000.0 / sends),
    }))
}

/// Long-polls `/sync` until every one of `total` tagged messages has been seen.
async fn watch(
    watcher: User,
    room: String,
    mut since: String,
    seen: Arc<Mutex<BTreeMap<String, Instant>>>,
    total: usize,
) -> Result<()> {
    let filter = json!({"room": {"timeline": {"limit": total}}}).to_string();
    let filter = encode(&filter);
    loop {
        let path = format!(
            "/_matrix/client/v3/sync?timeout=5000&since={}&filter={filter}",
            encode(&since)
        );
        let sync = watcher.call("GET", &path, None).await?;
        let now = Instant::now();
        since = string_field(&sync, "next_batch")?;
        let mut seen = seen.lock().map_err(|error| error.to_string())?;
        if let Some(events) = sync["rooms"]["join"][&room]["timeline"]["events"].as_array() {
            for event in events {
                if let Some(tag) = event["content"]["tag"].as_str() {
                    seen.entry(tag.to_owned()).or_insert(now);
                }
            }
        }
        if seen.len() >= total {
            return Ok(());
        }
    }
}

/// One account with its own keep-alive connection.
struct User {
    token: String,
    connection: Connection,
}

impl User {
    async fn register(node: &Node, name: &str) -> Result<User> {
        let mut user = User { token: String::new(), connection: Connection::open(node).await? };
        let body =
            json!({"username": name, "password": "password", "auth": {"type": "m.login.dummy"}});
        let registered = user.call("POST", "/_matrix/client/v3/register", Some(body)).await?;
        user.token = string_field(&registered, "access_token")?;
        Ok(user)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let token = (!self.token.is_empty()).then_some(self.token.as_str());
        let request = self.connection.call(method, path, token, body);
        tokio::time::timeout(REQUEST_TIMEOUT, request)
            .await
            .map_err(|_| format!("{method} {path}: no answer within {REQUEST_TIMEOUT:?}"))?
    }
}

/// An HTTP/1.1 connection: one request at a time, kept alive between them.
struct Connection {
    host: String,
    sender: tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl Connection {
    async fn open(node: &Node) -> Result<Connection> {
        let stream =
            tokio::time::timeout(REQUEST_TIMEOUT, tokio::net::TcpStream::connect(&node.address))
                .await
                .map_err(|_| format!("cannot connect to {} in time", node.address))?
                .map_err(|error| format!("cannot connect to {}: {error}", node.address))?;
        stream.set_nodelay(true).map_err(|error| error.to_string())?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| format!("HTTP handshake failed: {error}"))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                eprintln!("connection failed: {error}");
            }
        });
        Ok(Connection { host: node.address.clone(), sender: tokio::sync::Mutex::new(sender) })
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.host)
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = body.map(|body| body.to_string()).unwrap_or_default();
        let request =
            request.body(Full::new(Bytes::from(body))).map_err(|error| error.to_string())?;
        let mut sender = self.sender.lock().await;
        sender.ready().await.map_err(|error| format!("{method} {path}: {error}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| format!("{method} {path}: {error}"))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|error| format!("{method} {path}: {error}"))?
            .to_bytes();
        let json: Value = serde_json::from_slice(&bytes).map_err(|error| {
            format!(
                "{method} {path}: {status}, not JSON ({error}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })?;
        if !status.is_success() {
            return Err(format!("{method} {path}: {status} {json}"));
        }
        Ok(json)
    }
}

/// The hearth-node process under test.
struct Node {
    child: Child,
    address: String,
}

impl Node {
    fn start(data: &std::path::Path) -> Result<Node> {
        let binary = env!("CARGO_BIN_EXE_hearth-node");
        let mut child = Command::new(binary)
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--open-registration"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| format!("cannot start {binary}: {error}"))?;
        let Some(stdout) = child.stdout.take() else {
            return Err("no stdout from hearth-node".into());
        };
        // The server's own output goes to stderr, so the report stays the last line of stdout;
        // the thread reads to the end so the server never blocks on a full pipe.
        let (found, listening) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("hearth-node: {line}");
                if let Some(address) = line.strip_prefix("listening on http://")
                    && let Some(found) = found.take()
                {
                    let _ = found.send(address.trim().to_owned());
                }
            }
        });
        let mut node = Node { child, address: String::new() };
        match listening.recv_timeout(START_TIMEOUT) {
            Ok(address) => node.address = address,
            Err(_) => {
                let _ = node.child.kill();
                let _ = node.child.wait();
                return Err(format!("hearth-node did not listen within {START_TIMEOUT:?}"));
            }
        }
        Ok(node)
    }

    /// SIGTERM, then a clean exit (status 0) within [`STOP_TIMEOUT`].
    fn stop(&mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status();
        if !kill.map(|status| status.success()).unwrap_or(false) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return Err(format!("cannot send SIGTERM to hearth-node ({pid})"));
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait().map_err(|error| error.to_string())? {
                Some(status) if status.success() => return Ok(()),
                Some(status) => return Err(format!("hearth-node exited with {status}")),
                None if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!("hearth-node did not stop within {STOP_TIMEOUT:?}"));
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// A field of `/proc/PID/status` in kB (`VmRSS`, `VmHWM`).
    fn status_kb(&self, field: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|error| format!("cannot read the server's status: {error}"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("no {field} in the server's status"))
    }

    /// The server's user + system CPU time so far, in clock ticks (`/proc/PID/stat`).
    fn cpu_ticks(&self) -> Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .map_err(|error| format!("cannot read the server's stat: {error}"))?;
        // The command name, in parentheses, may hold spaces: count fields after it. From the
        // state (field 3), utime and stime are fields 14 and 15.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
        let fields: Vec<&str> = after.split_whitespace().collect();
        let tick = |index: usize| -> Result<u64> {
            fields
                .get(index)
                .and_then(|field| field.parse().ok())
                .ok_or_else(|| format!("cannot parse the server's stat: {stat}"))
        };
        Ok(tick(11)? + tick(12)?)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Only after a failure: a stopped server has already been waited for.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn string_field(value: &Value, field: &str) -> Result<String> {
    value[field].as_str().map(str::to_owned).ok_or_else(|| format!("no {field} in {value}"))
}

/// `encodeURIComponent`: everything but unreserved characters percent-encoded.
fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The nearest-rank percentile `p` of `values`.
fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).floor() as usize;
    values.get(rank.min(values.len().saturating_sub(1))).copied().unwrap_or(f64::NAN)
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
