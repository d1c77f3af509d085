//! A homeserver on the memory store and a small client for handler tests.
#![allow(dead_code, unreachable_pub)]

pub mod network;

use std::{sync::Arc, time::Duration};

use hearth_core::platform::BoxFuture;
use hearth_server::{Config, Registration, Runtime, Server};
use hearth_store::{MemoryBackend, Store};
use serde_json::{Value, json};

/// Tokio's timers.
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }

    fn spawn(&self, task: BoxFuture<'static, ()>) {
        // Dropping the handle detaches the task.
        drop(tokio::spawn(task));
    }
}

/// A test server with open registration.
pub async fn server() -> Server {
    server_with(Config { registration: Registration::Open, ..Config::default() }).await
}

pub async fn server_with(config: Config) -> Server {
    let store = Store::open(Arc::new(MemoryBackend::new())).await.unwrap();
    let identity = hearth_server::load_or_create_identity(&store).await.unwrap();
    Server::new(store, identity, config, Arc::new(TokioRuntime))
}

/// A response: status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

impl Reply {
    pub fn errcode(&self) -> &str {
        self.body["errcode"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.status, 200, "{}", self.body);
        self.body
    }
}

/// Sends a request with an optional access token and a raw body.
pub async fn raw(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
    content_type: Option<&str>,
) -> Reply {
    let mut builder = http::Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    let response = server.handle(builder.body(body).unwrap()).await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let bytes = response.into_body();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, body, bytes, content_type }
}

/// Sends a JSON request.
pub async fn request(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let bytes = body.map(|body| serde_json::to_vec(&body).unwrap()).unwrap_or_default();
    raw(server, method, path, token, bytes, Some("application/json")).await
}

/// A registered user.
#[derive(Clone, Debug)]
pub struct User {
    pub user_id: String,
    pub token: String,
    pub device_id: String,
}

impl User {
    pub async fn get(&self, server: &Server, path: &str) -> Reply {
        request(server, "GET", path, Some(&self.token), None).await
    }

    pub async fn post(&self, server: &Server, path: &str, body: Value) -> Reply {
        request(server, "POST", path, Some(&self.token), Some(body)).await
    }

    pub async fn put(&self, server: &Server, path: &str, body: Value) -> Reply {
        request(server, "PUT", path, Some(&self.token), Some(body)).await
    }

    pub async fn delete(&self, server: &Server, path: &str, body: Option<Value>) -> Reply {
        request(server, "DELETE", path, Some(&self.token), body).await
    }

    /// Creates a room with extra `createRoom` fields; returns its ID.
    pub async fn create_room(&self, server: &Server, body: Value) -> String {
        let reply = self.post(server, "/_matrix/client/v3/createRoom", body).await.ok();
        reply["room_id"].as_str().unwrap().to_owned()
    }

    /// Sends an `m.room.message`; returns the event ID.
    pub async fn send_text(&self, server: &Server, room_id: &str, text: &str) -> String {
        let txn = format!("t{}", rand_suffix());
        let path = format!("/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{txn}");
        let reply =
            self.put(server, &path, json!({ "msgtype": "m.text", "body": text })).await.ok();
        reply["event_id"].as_str().unwrap().to_owned()
    }

    /// A sync with an optional `since` and extra query.
    pub async fn sync(&self, server: &Server, since: Option<&str>, query: &str) -> Value {
        let mut path = format!("/_matrix/client/v3/sync?timeout=0{query}");
        if let Some(since) = since {
            path.push_str(&format!("&since={since}"));
        }
        self.get(server, &path).await.ok()
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Registers `localpart` (password "password") through the UIA dummy flow.
pub async fn register(server: &Server, localpart: &str) -> User {
    let body = json!({ "username": localpart, "password": "password", "auth": { "type": "m.login.dummy" } });
    let reply = request(server, "POST", "/_matrix/client/v3/register", None, Some(body)).await.ok();
    User {
        user_id: reply["user_id"].as_str().unwrap().to_owned(),
        token: reply["access_token"].as_str().unwrap().to_owned(),
        device_id: reply["device_id"].as_str().unwrap().to_owned(),
    }
}

/// Percent-encodes a path segment (room IDs, event IDs, user IDs).
pub fn enc(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Sends a federation request signed by `from` for `server`, with an optional JSON body.
pub async fn federation(
    server: &Server,
    from: &hearth_core::ServerIdentity,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let bytes = body.map(|body| serde_json::to_vec(&body).unwrap()).unwrap_or_default();
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(bytes)
        .unwrap();
    hearth_server::sign_request(from, server.server_name(), &mut request).unwrap();
    let response = server.handle(request).await;
    let status = response.status().as_u16();
    let bytes = response.into_body();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, body, bytes, content_type: Some("application/json".into()) }
}
