//! The JS API: start the homeserver on IndexedDB, answer `Request`s with `Response`s, stop.
//!
//! Tab leadership and the service-worker bridge live in TypeScript (`web/src/host`): they are
//! browser plumbing around this module, which holds everything Matrix.

use std::{cell::Cell, rc::Rc, sync::Arc, time::Duration};

use hearth_core::platform::BoxFuture;
use hearth_server::{Config, Registration, Runtime, Server, ServerError};
use hearth_store::Store;
use hearth_store_idb::IdbBackend;
use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};
use web_sys::{Headers, Request, Response, ResponseInit};

#[wasm_bindgen(typescript_custom_section)]
const START_OPTIONS: &str = r#"
/** How to start a homeserver. */
export interface StartOptions {
  /** The IndexedDB database holding this homeserver (created on first start). */
  database: string;
  /**
   * Relays to federate through: multiaddrs of `hearth-rendezvous` WebSocket listeners ending in
   * `/p2p/<relay peer id>`, e.g. `/ip4/127.0.0.1/tcp/4001/ws/p2p/12D3KooW…`. None: no federation.
   */
  relays?: string[];
}

/** Where the homeserver stands with one relay. */
export interface RelayInfo {
  relay: string;
  /** Our address through it, while it holds a reservation for us. */
  relayed: string | null;
  status: "connecting" | "reserved" | "registered" | "disconnected";
}
"#;

#[wasm_bindgen(typescript_custom_section)]
const WIRE_RESPONSE: &str = r#"
/** A response as plain values, ready to cross a postMessage (the body transferable). */
export interface WireResponse {
  status: number;
  headers: [string, string][];
  body: ArrayBuffer | null;
}
"#;

#[wasm_bindgen]
extern "C" {
    /// `StartOptions` from JS.
    #[wasm_bindgen(typescript_type = "StartOptions")]
    pub type StartOptions;
}

/// How long `stop` waits for writes in flight before closing anyway: a write that has not
/// finished by then is a stuck IndexedDB transaction, which the browser aborts as a whole.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The browser's timers, lent to the server.
struct BrowserRuntime;

impl Runtime for BrowserRuntime {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let millis = u32::try_from(duration.as_millis()).unwrap_or(u32::MAX);
        Box::pin(gloo_timers::future::TimeoutFuture::new(millis))
    }

    fn spawn(&self, task: BoxFuture<'static, ()>) {
        wasm_bindgen_futures::spawn_local(task);
    }
}

/// A homeserver running in this tab. Only one tab of an origin may run one at a time (the
/// caller holds a Web Lock): two would interleave their writes to one database.
#[wasm_bindgen]
pub struct Homeserver {
    inner: Rc<Inner>,
}

struct Inner {
    server: Server,
    server_name: String,
    /// The libp2p node, when started with relays.
    network: std::cell::RefCell<Option<Rc<crate::p2p::Network>>>,
    stopped: Cell<bool>,
    /// Requests that may write (anything but GET/HEAD/OPTIONS) still running: `stop` lets
    /// them finish so that no acknowledged write is cut short.
    writes_in_flight: Cell<u32>,
}

#[wasm_bindgen]
impl Homeserver {
    /// Opens (or creates) the IndexedDB database `options.database`, loads the server identity
    /// (created and stored on first start) and starts serving. Registration is open: this is the
    /// user's own server, reachable only from this origin.
    // The store's API takes an `Arc` for native threads; here there is one thread.
    #[allow(clippy::arc_with_non_send_sync)]
    pub async fn start(options: StartOptions) -> Result<Homeserver, JsError> {
        let database = Reflect::get(&options, &JsValue::from_str("database"))
            .ok()
            .and_then(|name| name.as_string())
            .filter(|name| !name.is_empty())
            .ok_or_else(|| JsError::new("start: options.database must be a non-empty string"))?;
        let backend = IdbBackend::open(&database).await.map_err(|error| {
            JsError::new(&format!("cannot open IndexedDB database {database:?}: {error}"))
        })?;
        let store = Store::open(Arc::new(backend)).await.map_err(to_js_error)?;
        let relays = relay_addresses(&options)?;
        let identity = hearth_server::load_or_create_identity(&store).await.map_err(to_js_error)?;
        let seed = identity.seed();
        let config = Config { registration: Registration::Open, ..Config::default() };
        let server = Server::new(store, identity, config, Arc::new(BrowserRuntime));
        let server_name = server.server_name().to_string();
        let network = if relays.is_empty() {
            None
        } else {
            Some(
                crate::p2p::Network::start(&server, seed, relays)
                    .await
                    .map_err(|error| JsError::new(&format!("cannot start federation: {error}")))?,
            )
        };
        Ok(Homeserver {
            inner: Rc::new(Inner {
                server,
                server_name,
                network: std::cell::RefCell::new(network),
                stopped: Cell::new(false),
                writes_in_flight: Cell::new(0),
            }),
        })
    }

    /// The server name: the lowercase hex of its public key.
    #[wasm_bindgen(getter, js_name = serverName)]
    pub fn server_name(&self) -> String {
        self.inner.server_name.clone()
    }

    /// Answers one Matrix request (`/_matrix/*`, `/.well-known/matrix/*`). The promise never
    /// rejects for bad input: errors are Matrix JSON error responses.
    #[wasm_bindgen(js_name = handleRequest, unchecked_return_type = "Promise<Response>")]
    pub fn handle_request(&self, request: Request) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let request = to_http_request(&request, inner.server.max_body_bytes()).await;
            to_response(inner.handle(request).await).map(JsValue::from)
        })
    }

    /// The same as `handleRequest`, for a request already taken apart (what the service
    /// worker and other tabs post): `headers` is `[name, value, name, value, …]`. It skips
    /// building a `Request` and a `Response` on each side, which costs more than the Matrix
    /// handling of a small request.
    #[wasm_bindgen(js_name = handleParts, unchecked_return_type = "Promise<WireResponse>")]
    pub fn handle_parts(
        &self,
        method: String,
        url: String,
        headers: Vec<String>,
        body: Option<Vec<u8>>,
    ) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let request = from_parts(&method, &url, &headers, body, inner.server.max_body_bytes());
            Ok(to_wire_response(inner.handle(request).await))
        })
    }

    /// The relays this homeserver federates through and where it stands with each.
    #[wasm_bindgen(unchecked_return_type = "RelayInfo[]")]
    pub fn relays(&self) -> Array {
        let network = self.inner.network.borrow().clone();
        let states = network.map(|network| network.relays()).unwrap_or_default();
        states
            .into_iter()
            .map(|state| {
                let info = Object::new();
                let status = match state.status {
                    hearth_p2p::RelayStatus::Connecting => "connecting",
                    hearth_p2p::RelayStatus::Reserved => "reserved",
                    hearth_p2p::RelayStatus::Registered => "registered",
                    hearth_p2p::RelayStatus::Disconnected => "disconnected",
                };
                let relayed = state.relayed.map(|addr| JsValue::from(addr.to_string()));
                let _ = Reflect::set(&info, &"relay".into(), &state.relay.to_string().into());
                let _ = Reflect::set(&info, &"relayed".into(), &relayed.unwrap_or(JsValue::NULL));
                let _ = Reflect::set(&info, &"status".into(), &status.into());
                JsValue::from(info)
            })
            .collect()
    }

    /// Whether other servers can reach this one now (a relay holds a reservation for it).
    #[wasm_bindgen(getter)]
    pub fn reachable(&self) -> bool {
        self.inner.network.borrow().as_ref().is_some_and(|network| network.reachable())
    }

    /// The server names of the homeservers registered at the relays now (not this one).
    #[wasm_bindgen(unchecked_return_type = "Promise<string[]>")]
    pub fn peers(&self) -> Promise {
        let network = self.inner.network.borrow().clone();
        future_to_promise(async move {
            let peers = match network {
                Some(network) => network.peers().await,
                None => Vec::new(),
            };
            Ok(peers
                .into_iter()
                .map(|name| JsValue::from(name.to_string()))
                .collect::<Array>()
                .into())
        })
    }

    /// Stops serving: later requests are answered 503, federation stops, and the promise
    /// resolves once the writes in flight have finished (long-polls that only read are left to
    /// end on their own).
    pub async fn stop(&self) {
        self.inner.stopped.set(true);
        let network = self.inner.network.borrow_mut().take();
        if let Some(network) = network {
            network.stop(&self.inner.server).await;
        }
        let deadline = web_time::Instant::now() + STOP_GRACE;
        while self.inner.writes_in_flight.get() > 0 && web_time::Instant::now() < deadline {
            gloo_timers::future::TimeoutFuture::new(5).await;
        }
    }
}

impl Inner {
    /// Answers a request (or the error reading it), unless stopped; counts writes in flight.
    async fn handle(
        &self,
        request: Result<http::Request<Vec<u8>>, ServerError>,
    ) -> http::Response<Vec<u8>> {
        if self.stopped.get() {
            return unavailable();
        }
        let request = match request {
            Ok(request) => request,
            Err(error) => return hearth_server::error_response(&error),
        };
        let writes = !matches!(request.method().as_str(), "GET" | "HEAD" | "OPTIONS");
        if writes {
            self.writes_in_flight.set(self.writes_in_flight.get() + 1);
        }
        let response = self.server.handle(request).await;
        if writes {
            self.writes_in_flight.set(self.writes_in_flight.get().saturating_sub(1));
        }
        response
    }
}

/// `options.relays`, each a multiaddr ending in `/p2p/<relay peer id>`.
fn relay_addresses(options: &StartOptions) -> Result<Vec<hearth_p2p::Multiaddr>, JsError> {
    let value = Reflect::get(options, &JsValue::from_str("relays")).unwrap_or(JsValue::UNDEFINED);
    if value.is_undefined() || value.is_null() {
        return Ok(Vec::new());
    }
    if !Array::is_array(&value) {
        return Err(JsError::new("start: options.relays must be an array of multiaddr strings"));
    }
    Array::from(&value)
        .iter()
        .map(|entry| {
            let text = entry
                .as_string()
                .ok_or_else(|| JsError::new("start: options.relays must hold strings"))?;
            let addr: hearth_p2p::Multiaddr = text.parse().map_err(|error| {
                JsError::new(&format!("relay {text:?} is not a multiaddr: {error}"))
            })?;
            match addr.iter().last() {
                Some(hearth_p2p::multiaddr::Protocol::P2p(_)) => Ok(addr),
                _ => Err(JsError::new(&format!("relay {text:?} must end in /p2p/<relay peer id>"))),
            }
        })
        .collect()
}

fn to_js_error(error: impl std::fmt::Display) -> JsError {
    JsError::new(&error.to_string())
}

/// The Matrix answer of a homeserver that has been stopped.
fn unavailable() -> http::Response<Vec<u8>> {
    hearth_server::error_response(&ServerError::Unavailable(
        "this homeserver has stopped; another tab may be serving it".into(),
    ))
}

/// Reads a fetch `Request` into the server's request type. The body arrives whole: fetch bodies
/// in a page are already in memory, and the server needs all of it to check signatures and JSON.
async fn to_http_request(
    request: &Request,
    max_body_bytes: u64,
) -> Result<http::Request<Vec<u8>>, ServerError> {
    let bad = |what: &str| ServerError::BadJson(format!("unreadable request: {what}"));
    let entries = js_sys::try_iter(&request.headers())
        .ok()
        .flatten()
        .ok_or_else(|| bad("headers are not iterable"))?;
    let mut headers = Vec::new();
    for entry in entries {
        let pair = Array::from(&entry.map_err(|_| bad("headers"))?);
        if let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
            headers.extend([name, value]);
        }
    }
    let method = request.method();
    let body = if matches!(method.as_str(), "GET" | "HEAD") {
        None
    } else {
        let buffer = request.array_buffer().map_err(|_| bad("the body was already read"))?;
        let buffer = JsFuture::from(buffer).await.map_err(|_| bad("the body could not be read"))?;
        Some(Uint8Array::new(&buffer).to_vec())
    };
    from_parts(&method, &request.url(), &headers, body, max_body_bytes)
}

/// The server's request from its parts; `headers` is `[name, value, name, value, …]`.
fn from_parts(
    method: &str,
    url: &str,
    headers: &[String],
    body: Option<Vec<u8>>,
    max_body_bytes: u64,
) -> Result<http::Request<Vec<u8>>, ServerError> {
    let body = body.unwrap_or_default();
    if body.len() as u64 > max_body_bytes {
        return Err(ServerError::TooLarge(format!("request body exceeds {max_body_bytes} bytes")));
    }
    let mut builder = http::Request::builder().method(method).uri(url);
    for pair in headers.chunks_exact(2) {
        builder = builder.header(pair[0].as_str(), pair[1].as_str());
    }
    builder.body(body).map_err(|error| ServerError::BadJson(format!("unreadable request: {error}")))
}

/// `{status, headers: [[name, value], …], body: ArrayBuffer | null}`.
fn to_wire_response(response: http::Response<Vec<u8>>) -> JsValue {
    let (parts, body) = response.into_parts();
    let headers = Array::new();
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            headers.push(&Array::of2(&name.as_str().into(), &value.into()));
        }
    }
    let wire = Object::new();
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(&wire, &"status".into(), &parts.status.as_u16().into());
    let _ = Reflect::set(&wire, &"headers".into(), &headers);
    let body =
        if body.is_empty() { JsValue::NULL } else { Uint8Array::from(&body[..]).buffer().into() };
    let _ = Reflect::set(&wire, &"body".into(), &body);
    wire.into()
}

fn to_response(response: http::Response<Vec<u8>>) -> Result<Response, JsValue> {
    let (parts, mut body) = response.into_parts();
    let headers = Headers::new()?;
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            headers.append(name.as_str(), value)?;
        }
    }
    let init = ResponseInit::new();
    init.set_status(parts.status.as_u16());
    init.set_headers(&headers);
    Response::new_with_opt_u8_array_and_init(Some(&mut body), &init)
}
