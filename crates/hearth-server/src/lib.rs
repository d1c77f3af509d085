#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// Natively `web_time` is std's clock, which the lint cannot tell apart; see clippy.toml.
#![cfg_attr(not(target_family = "wasm"), allow(clippy::disallowed_methods))]

mod auth;
mod cache;
mod client;
mod error;
mod events;
mod federation;
mod filter;
mod notifier;
mod platform;
pub(crate) mod rooms;
mod router;
mod uia;

use std::sync::{Arc, Mutex, MutexGuard};

use hearth_core::{ServerIdentity, ruma::ServerName};
use hearth_store::Store;
use http::{HeaderValue, Method, StatusCode, header};

pub use self::{
    auth::Authed,
    error::ServerError,
    federation::{DestinationStatus, sign_request},
    platform::{Federation, NoFederation, Runtime},
};
use self::{
    notifier::Notifier,
    router::{Found, Incoming, Router},
};

/// Who may create accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registration {
    /// Anyone (`m.login.dummy`).
    Open,
    /// Whoever has the token (`m.login.registration_token`).
    Token(String),
    /// Nobody.
    Closed,
}

/// How the server behaves; the host fills it from its command line or settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Who may register.
    pub registration: Registration,
    /// The largest media upload accepted (`M_TOO_LARGE` beyond). The default, 50 MiB, is the
    /// largest file hearth-p2p carries between servers (its `codec::MAX_MEDIA_BYTES`).
    pub max_upload_bytes: u64,
    /// The largest JSON request body accepted (`M_TOO_LARGE` beyond).
    pub max_json_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            registration: Registration::Closed,
            max_upload_bytes: 50 * 1024 * 1024,
            max_json_bytes: 1024 * 1024,
        }
    }
}

/// The homeserver: feed it HTTP requests, get HTTP responses. Cheap to clone.
#[derive(Clone)]
pub struct Server(Arc<Inner>);

pub(crate) struct Inner {
    store: Store,
    identity: ServerIdentity,
    config: Config,
    runtime: Arc<dyn Runtime>,
    /// How other servers are reached; none until the host connects its network.
    federation: std::sync::RwLock<Arc<dyn Federation>>,
    router: Router,
    notifier: Notifier,
    /// Room writes are serialised: stream positions become visible in order, and each room's
    /// extremities and current state change one event at a time.
    write_lock: async_lock::Mutex<()>,
    /// Sends waiting for the next group commit (see `rooms::MAX_QUEUED_SENDS` for its bound).
    send_queue: Mutex<std::collections::VecDeque<rooms::PendingSend>>,
    /// Argon2's reusable working memory.
    passwords: auth::PasswordHasher,
    /// The timestamp of the last create event made (see `Server::create_timestamp`).
    last_create_ts: std::sync::atomic::AtomicU64,
    state: Mutex<rooms::Caches>,
    uia: Mutex<uia::Sessions>,
    ephemeral: Mutex<client::ephemeral::Ephemeral>,
    senders: Mutex<federation::sender::Senders>,
    /// Other servers' public users as last fetched, for the peer list.
    peer_users: Mutex<federation::PeerUsers>,
    /// Events and requests from other servers refused as invalid (see `refused_events`).
    refused_events: std::sync::atomic::AtomicU64,
    destination_status:
        Mutex<std::collections::BTreeMap<hearth_core::ruma::OwnedServerName, DestinationStatus>>,
    /// Other servers' files being fetched now (one fetch per file).
    remote_fetches: Mutex<federation::media::RemoteFetches>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("server_name", &self.server_name()).finish_non_exhaustive()
    }
}

impl Server {
    /// A server on `store`, signing as `identity`.
    // In the browser nothing is `Send` and there is one thread: the Arc only shares ownership.
    #[cfg_attr(target_family = "wasm", allow(clippy::arc_with_non_send_sync))]
    pub fn new(
        store: Store,
        identity: ServerIdentity,
        config: Config,
        runtime: Arc<dyn Runtime>,
    ) -> Server {
        let mut router = Router::default();
        client::routes(&mut router);
        federation::routes(&mut router);
        router.finish();
        Server(Arc::new(Inner {
            store,
            identity,
            config,
            runtime,
            federation: std::sync::RwLock::new(Arc::new(platform::NoFederation)),
            router,
            notifier: Notifier::default(),
            write_lock: async_lock::Mutex::new(()),
            send_queue: Mutex::new(std::collections::VecDeque::new()),
            last_create_ts: std::sync::atomic::AtomicU64::new(0),
            passwords: auth::PasswordHasher::default(),
            state: Mutex::new(rooms::Caches::default()),
            uia: Mutex::new(uia::Sessions::default()),
            ephemeral: Mutex::new(client::ephemeral::Ephemeral::default()),
            senders: Mutex::new(federation::sender::Senders::default()),
            refused_events: std::sync::atomic::AtomicU64::new(0),
            peer_users: Mutex::new(federation::PeerUsers::default()),
            destination_status: Mutex::new(std::collections::BTreeMap::new()),
            remote_fetches: Mutex::new(federation::media::RemoteFetches::default()),
        }))
    }

    /// This server's name (the hex of its public key).
    pub fn server_name(&self) -> &ServerName {
        self.0.identity.server_name()
    }

    /// The largest request body the host should read before answering `M_TOO_LARGE` itself.
    pub fn max_body_bytes(&self) -> u64 {
        self.0.config.max_upload_bytes.max(self.0.config.max_json_bytes as u64)
    }

    pub(crate) fn store(&self) -> &Store {
        &self.0.store
    }

    pub(crate) fn identity(&self) -> &ServerIdentity {
        &self.0.identity
    }

    pub(crate) fn config(&self) -> &Config {
        &self.0.config
    }

    pub(crate) fn runtime(&self) -> &dyn Runtime {
        &*self.0.runtime
    }

    /// Connects the server to the network: from now on it reaches other servers through
    /// `federation`. The host calls it once its network is up (the network needs the server to
    /// answer inbound requests, so it is made second).
    ///
    /// Senders for whatever was queued before (a restart) start at once.
    pub async fn set_federation(&self, federation: Arc<dyn Federation>) -> Result<(), ServerError> {
        *self.0.federation.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = federation;
        self.resume_senders().await
    }

    pub(crate) fn federation(&self) -> Arc<dyn Federation> {
        self.0.federation.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub(crate) fn notifier(&self) -> &Notifier {
        &self.0.notifier
    }

    pub(crate) fn caches(&self) -> MutexGuard<'_, rooms::Caches> {
        lock(&self.0.state)
    }

    pub(crate) fn passwords(&self) -> &auth::PasswordHasher {
        &self.0.passwords
    }

    pub(crate) fn uia(&self) -> MutexGuard<'_, uia::Sessions> {
        lock(&self.0.uia)
    }

    pub(crate) fn ephemeral(&self) -> MutexGuard<'_, client::ephemeral::Ephemeral> {
        lock(&self.0.ephemeral)
    }

    pub(crate) async fn write_lock(&self) -> async_lock::MutexGuard<'_, ()> {
        self.0.write_lock.lock().await
    }

    /// Answers one HTTP request. Never fails: errors become Matrix error responses.
    ///
    /// Hosts should drive the future to completion even if their client goes away: concurrent
    /// sends are stored together by whichever request holds the write lock, and dropping that
    /// request half-way fails the others' sends (nothing is half-written; they get an error).
    pub async fn handle(&self, request: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        let mut response = match self.route(request).await {
            Ok(response) => response,
            Err(error) => error_response(&error),
        };
        let headers = response.headers_mut();
        // Any web client on any origin may talk to a homeserver
        // ([CORS](https://spec.matrix.org/v1.16/client-server-api/#web-browser-clients)).
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("X-Requested-With, Content-Type, Authorization"),
        );
        if !headers.contains_key(header::CONTENT_TYPE) {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        response
    }

    /// Answers a server-server request that arrived over a connection authenticated as `peer`
    /// (the host's libp2p connection, whose peer ID is `peer`'s key). A request signed as any
    /// other server is refused with 401 `M_UNAUTHORIZED`: a peer cannot pass off another
    /// server's requests, even validly signed ones it relays. Any request from `peer` also
    /// shows it is online: what waits in its queue is sent now.
    pub async fn handle_from_peer(
        &self,
        peer: &ServerName,
        request: http::Request<Vec<u8>>,
    ) -> http::Response<Vec<u8>> {
        if let Ok(header) =
            hearth_core::ruma::api::federation::authentication::XMatrix::extract_from_http_headers(
                request.headers(),
            )
            && header.origin != peer
        {
            return error_response(&ServerError::Unauthorized(format!(
                "the request is signed by {} but comes from {peer}",
                header.origin
            )));
        }
        self.heard_from(peer);
        self.handle(request).await
    }

    async fn route(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, ServerError> {
        let path = request.uri().path().to_owned();
        let found = self.0.router.find(request.method(), &path);
        if request.method() == Method::OPTIONS {
            return match found {
                Some(_) => Ok(empty_response(StatusCode::OK)),
                None => Err(ServerError::Unrecognized),
            };
        }
        match found {
            None => Err(ServerError::Unrecognized),
            Some(Found::OtherMethods) => Err(ServerError::MethodNotAllowed),
            Some(Found::Handler(handler, path_args)) => {
                if !client::media::is_upload(&path)
                    && request.body().len() > self.0.config.max_json_bytes
                {
                    return Err(ServerError::TooLarge(format!(
                        "request body exceeds {} bytes",
                        self.0.config.max_json_bytes
                    )));
                }
                handler(self.clone(), Incoming { request, path_args }).await
            }
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are caches and in-memory sessions that every critical section leaves
    // consistent before it could panic, so a poisoned lock still holds usable data.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn empty_response(status: StatusCode) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(b"{}".to_vec());
    *response.status_mut() = status;
    response
}

/// The Matrix error response for `error`.
pub fn error_response(error: &ServerError) -> http::Response<Vec<u8>> {
    let (status, body) = error.to_response_parts();
    let mut response = http::Response::new(serde_json::to_vec(&body).unwrap_or_default());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The server's identity from the store, created and stored on first use.
pub async fn load_or_create_identity(store: &Store) -> Result<ServerIdentity, ServerError> {
    const SEED: &str = "identity_seed";
    if let Some(seed) = store.meta::<Vec<u8>>(SEED).await? {
        return Ok(ServerIdentity::from_seed(&seed)?);
    }
    let identity = ServerIdentity::generate()?;
    let mut txn = store.transaction();
    txn.set_meta(SEED, &identity.seed().to_vec())?;
    store.commit(txn).await?;
    Ok(identity)
}
