#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// web_time's clocks are std's natively; the wasm32 clippy pass enforces the lint.
#![cfg_attr(not(target_family = "wasm"), allow(clippy::disallowed_methods))]

mod behaviour;
pub mod codec;
mod driver;
mod error;
mod identity;
mod platform;

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::{SinkExt, Stream, StreamExt};
use hearth_core::ruma::{OwnedServerName, ServerName};
use http::{Request, Response};
pub use libp2p::{Multiaddr, PeerId, multiaddr};

pub use crate::error::P2pError;
pub use crate::identity::{peer_id_for_server, server_name_for_peer};
pub use crate::platform::Driver;

/// The rendezvous namespace Hearth servers register under.
pub const NAMESPACE: &str = "hearth";

/// What a node needs to start. [`Config::new`] fills in the defaults.
#[derive(Clone)]
pub struct Config {
    /// The server's ed25519 seed (`ServerIdentity::seed`): the node's libp2p key.
    pub seed: [u8; 32],
    /// Relays to reserve a slot at, register at and dial others through; each address ends in
    /// `/p2p/<relay peer id>`, e.g. `/ip4/203.0.113.7/tcp/4002/p2p/12D3KooW…`.
    pub relays: Vec<Multiaddr>,
    /// Rendezvous namespace; [`NAMESPACE`] unless servers should form a separate group.
    pub namespace: String,
    /// How long [`Node::request`] waits for a response, dialing included, and how long the host
    /// has to answer an inbound one. Default 2 minutes: the largest response, a 50 MiB file
    /// ([`codec::MAX_MEDIA_BYTES`]), crosses a relay at 0.5 MB/s in that time. (A server that
    /// is not registered at a relay fails at once, whatever the timeout.)
    pub request_timeout: Duration,
    /// TTL of the rendezvous registration, renewed at half of it. Default 2 minutes; the relay
    /// refuses less than its minimum (1 minute by default). A node that vanishes stays
    /// discoverable at most this long.
    pub registration_ttl: Duration,
    /// How often the list of registered peers is refreshed. Default 30 s.
    pub discovery_interval: Duration,
}

impl Config {
    /// The defaults, with the given key and relays.
    pub fn new(seed: [u8; 32], relays: Vec<Multiaddr>) -> Self {
        Self {
            seed,
            relays,
            namespace: NAMESPACE.to_owned(),
            request_timeout: Duration::from_secs(120),
            registration_ttl: Duration::from_secs(120),
            discovery_interval: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the seed.
        f.debug_struct("Config")
            .field("relays", &self.relays)
            .field("namespace", &self.namespace)
            .field("request_timeout", &self.request_timeout)
            .field("registration_ttl", &self.registration_ttl)
            .field("discovery_interval", &self.discovery_interval)
            .finish_non_exhaustive()
    }
}

/// Where the node stands with one relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayStatus {
    /// Dialing the relay and asking for a reservation.
    Connecting,
    /// Reachable through the relay (`<relay>/p2p-circuit/p2p/<us>`), not yet registered.
    Reserved,
    /// Reserved and registered at the relay's rendezvous server: others can discover us.
    Registered,
    /// Not connected; the next attempt follows a backoff (0.5 s doubling to 30 s, jittered).
    Disconnected,
}

/// One configured relay and where the node stands with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayState {
    /// The relay's address, as configured.
    pub relay: Multiaddr,
    /// The node's relayed address there, while reserved.
    pub relayed: Option<Multiaddr>,
    /// Where the node stands.
    pub status: RelayStatus,
}

/// What the node tells its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A connection to another Hearth server opened (it had none): a good moment to retry what
    /// is queued for it.
    PeerConnected(OwnedServerName),
    /// Another Hearth server appeared at a relay's rendezvous server (it was not registered at
    /// the previous discovery): it has come online, so it is worth retrying at once.
    PeerDiscovered(OwnedServerName),
    /// The last connection to another Hearth server closed.
    PeerDisconnected(OwnedServerName),
    /// The node's standing with a relay changed.
    Relay(RelayState),
}

/// A federation request from another server.
#[derive(Debug)]
pub struct InboundRequest {
    /// The server the request came from: the server name the connection's key certifies. The
    /// host checks that it is the `X-Matrix` origin.
    pub origin: OwnedServerName,
    /// The request; its URI is a path and query.
    pub request: Request<Vec<u8>>,
    /// Where the response goes.
    pub respond: Responder,
}

/// Sends the response to an [`InboundRequest`]. Dropped unused, the remote gets a 500; answered
/// after the request timeout, the remote has already given up.
#[derive(Debug)]
pub struct Responder(oneshot::Sender<Response<Vec<u8>>>);

impl Responder {
    /// Sends `response` (at most [`codec::MAX_RESPONSE_BYTES`]; a larger one becomes a 500).
    pub fn send(self, response: Response<Vec<u8>>) {
        // The driver may have stopped, or timed the request out: nobody is waiting any more.
        let _ = self.0.send(response);
    }
}

/// The stream of [`InboundRequest`]s. The host serves them; while it is behind and
/// [`INBOUND_QUEUE`] requests wait, further ones are answered 503 at once.
#[derive(Debug)]
pub struct Inbound(mpsc::Receiver<InboundRequest>);

impl Stream for Inbound {
    type Item = InboundRequest;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_next_unpin(cx)
    }
}

/// The stream of [`Event`]s. When the host lets [`EVENT_QUEUE`] events pile up, newer ones are
/// dropped ([`Node::status`] always has the current relay states).
#[derive(Debug)]
pub struct Events(mpsc::Receiver<Event>);

impl Stream for Events {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_next_unpin(cx)
    }
}

/// Inbound requests waiting for the host; beyond this they are refused with 503.
pub const INBOUND_QUEUE: usize = 64;
/// Events waiting for the host; beyond this new events are dropped.
pub const EVENT_QUEUE: usize = 64;
/// Commands (requests, peer queries) waiting for the driver; beyond this callers wait.
const COMMAND_QUEUE: usize = 64;

/// A started node: the handle, the driver the host must spawn, and what arrives.
pub struct Started {
    /// The handle; clone it freely.
    pub node: Node,
    /// Runs the node. Spawn it (`tokio::spawn`, `wasm_bindgen_futures::spawn_local`); it
    /// returns once every [`Node`] clone is dropped.
    pub driver: Driver,
    /// Requests from other servers.
    pub inbound: Inbound,
    /// Connections and relay status.
    pub events: Events,
}

/// A handle on the running node: cheap to clone, each clone a sender into the driver's
/// bounded command queue.
#[derive(Clone)]
pub struct Node {
    commands: mpsc::Sender<driver::Command>,
    status: Arc<Mutex<Vec<RelayState>>>,
    server_name: OwnedServerName,
    peer_id: PeerId,
    request_timeout: Duration,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

impl Node {
    /// Builds the node: checks the configuration and the key and sets up the transports. Nothing
    /// happens on the network until the returned driver runs; it then connects to every relay.
    pub async fn start(config: Config) -> Result<Started, P2pError> {
        let keypair = identity::keypair(config.seed)?;
        let server_name = identity::server_name_for_seed(config.seed)?;
        let peer_id = keypair.public().to_peer_id();
        let relays = config
            .relays
            .iter()
            .map(|addr| identity::relay_peer(addr).map(|peer| (addr.clone(), peer)))
            .collect::<Result<Vec<_>, _>>()?;
        let namespace = libp2p::rendezvous::Namespace::new(config.namespace.clone())
            .map_err(|e| P2pError::Setup(format!("namespace: {e}")))?;
        let timeout = config.request_timeout;
        let swarm = platform::build_swarm(
            keypair,
            |key, relay| behaviour::Behaviour::new(key, relay, timeout),
            driver::IDLE_CONNECTION_TIMEOUT,
        )
        .await?;

        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (inbound_tx, inbound) = mpsc::channel(INBOUND_QUEUE);
        let (event_tx, events) = mpsc::channel(EVENT_QUEUE);
        let status = Arc::new(Mutex::new(
            relays
                .iter()
                .map(|(relay, _)| RelayState {
                    relay: relay.clone(),
                    relayed: None,
                    status: RelayStatus::Disconnected,
                })
                .collect(),
        ));
        let driver = driver::Driver::new(driver::Setup {
            swarm,
            relays,
            namespace,
            config: &config,
            commands: command_rx,
            inbound: inbound_tx,
            events: event_tx,
            status: status.clone(),
        });
        let node = Node { commands, status, server_name, peer_id, request_timeout: timeout };
        Ok(Started {
            node,
            driver: Box::pin(driver.run()),
            inbound: Inbound(inbound),
            events: Events(events),
        })
    }

    /// This server's name (the hex of its key).
    pub fn server_name(&self) -> &ServerName {
        &self.server_name
    }

    /// This node's libp2p peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Sends `request` to `destination` and waits for its response, at most the configured
    /// request timeout (dialing included). Dials through every configured relay unless a
    /// connection is already open. The request's URI should be a path and query.
    pub async fn request(
        &self,
        destination: &ServerName,
        request: Request<Vec<u8>>,
    ) -> Result<Response<Vec<u8>>, P2pError> {
        let peer = peer_id_for_server(destination)?;
        if peer == self.peer_id {
            return Err(P2pError::BadAddress("a request to this server itself".to_owned()));
        }
        codec::check_request_size(&request).map_err(P2pError::BadMessage)?;
        let (reply, response) = oneshot::channel();
        let command = driver::Command::Request {
            peer,
            server: destination.to_owned(),
            request: Box::new(request),
            reply,
        };
        let exchange = async {
            self.commands.clone().send(command).await.map_err(|_| P2pError::Closed)?;
            response.await.map_err(|_| P2pError::Closed)?
        };
        let timeout = platform::sleep(self.request_timeout);
        futures::pin_mut!(exchange, timeout);
        match futures::future::select(exchange, timeout).await {
            futures::future::Either::Left((result, _)) => result,
            futures::future::Either::Right(((), _)) => {
                Err(P2pError::Timeout(destination.to_owned()))
            }
        }
    }

    /// The other servers registered under the namespace at the relays, after asking the relays
    /// again (at most a few seconds; the last known list if they do not answer). Empty once the
    /// driver has stopped.
    pub async fn peers(&self) -> Vec<OwnedServerName> {
        let (reply, peers) = oneshot::channel();
        if self.commands.clone().send(driver::Command::Peers { reply }).await.is_err() {
            return Vec::new();
        }
        peers.await.unwrap_or_default()
    }

    /// Where the node stands with each configured relay, in configuration order.
    pub fn status(&self) -> Vec<RelayState> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}
