//! What the hearth-node benchmarks share: the server process, HTTP/1.1 users, the `/sync`
//! watcher and the figures' arithmetic.
#![allow(dead_code, unreachable_pub)]

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// The longest any single request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub type Result<T> = std::result::Result<T, String>;

pub fn fail(message: &str) -> ! {
    eprintln!("benchmark failed: {message}");
    std::process::exit(1)
}

/// The release hearth-node under test, on a fresh data directory.
pub struct Node {
    child: Child,
    pub address: String,
}

impl Node {
    /// Starts it (with `--relay` for each of `relays`) and returns once it listens and, with
    /// relays, has reserved at one.
    pub fn start(data: &Path, relays: &[&str]) -> Result<Node> {
        let binary = env!("CARGO_BIN_EXE_hearth-node");
        let mut command = Command::new(binary);
        command.arg("--data").arg(data).args(["--listen", "127.0.0.1:0", "--open-registration"]);
        for relay in relays {
            command.args(["--relay", relay]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| format!("cannot start {binary}: {error}"))?;
        let Some(stdout) = child.stdout.take() else {
            return Err("no stdout from hearth-node".into());
        };
        // The server's output goes to stderr, so the report stays the last line of stdout; the
        // thread reads to the end so the server never blocks on a full pipe.
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(std::result::Result::ok) {
                eprintln!("hearth-node: {line}");
                let _ = lines.send(line);
            }
        });
        let mut node = Node { child, address: String::new() };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = received.recv_timeout(left) else {
                return Err(format!("hearth-node was not ready within {START_TIMEOUT:?}"));
            };
            if let Some(address) = line.strip_prefix("listening on http://") {
                node.address = address.trim().to_owned();
            }
            let reserved = relays.is_empty() || line.starts_with("relay reserved: ");
            if reserved && !node.address.is_empty() {
                return Ok(node);
            }
        }
    }

    /// SIGTERM, then a clean exit (status 0) within [`STOP_TIMEOUT`].
    pub fn stop(&mut self) -> Result<()> {
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
    pub fn status_kb(&self, field: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|error| format!("cannot read the server's status: {error}"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("no {field} in the server's status"))
    }

    /// The server's user + system CPU time so far, in clock ticks (`/proc/PID/stat`).
    pub fn cpu_ticks(&self) -> Result<u64> {
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

/// One account with its own keep-alive connection.
pub struct User {
    pub token: String,
    pub user_id: String,
    pub connection: Connection,
}

impl User {
    pub async fn register(address: &str, name: &str) -> Result<User> {
        let connection = Connection::open(address).await?;
        let mut user = User { token: String::new(), user_id: String::new(), connection };
        let body =
            json!({"username": name, "password": "password", "auth": {"type": "m.login.dummy"}});
        let registered = user.call("POST", "/_matrix/client/v3/register", Some(body)).await?;
        user.token = string_field(&registered, "access_token")?;
        user.user_id = string_field(&registered, "user_id")?;
        Ok(user)
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let token = (!self.token.is_empty()).then_some(self.token.as_str());
        let request = self.connection.call(method, path, token, body);
        tokio::time::timeout(REQUEST_TIMEOUT, request)
            .await
            .map_err(|_| format!("{method} {path}: no answer within {REQUEST_TIMEOUT:?}"))?
    }
}

/// An HTTP/1.1 connection: one request at a time, kept alive between them.
pub struct Connection {
    host: String,
    sender: tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub async fn open(address: &str) -> Result<Connection> {
        let stream = tokio::time::timeout(REQUEST_TIMEOUT, tokio::net::TcpStream::connect(address))
            .await
            .map_err(|_| format!("cannot connect to {address} in time"))?
            .map_err(|error| format!("cannot connect to {address}: {error}"))?;
        stream.set_nodelay(true).map_err(|error| error.to_string())?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| format!("HTTP handshake failed: {error}"))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                eprintln!("connection failed: {error}");
            }
        });
        Ok(Connection { host: address.to_owned(), sender: tokio::sync::Mutex::new(sender) })
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

/// Long-polls `/sync` until every one of `total` tagged messages has been seen.
pub async fn watch(
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

pub fn string_field(value: &Value, field: &str) -> Result<String> {
    value[field].as_str().map(str::to_owned).ok_or_else(|| format!("no {field} in {value}"))
}

/// `encodeURIComponent`: everything but unreserved characters percent-encoded.
pub fn encode(text: &str) -> String {
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

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The nearest-rank percentile `p` of `values`.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).floor() as usize;
    values.get(rank.min(values.len().saturating_sub(1))).copied().unwrap_or(f64::NAN)
}

pub fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
