//! The swarm task: one loop that owns the swarm, keeps every relay reserved and registered,
//! runs the host's commands and hands inbound requests to the host.
//!
//! Everything time-driven (reconnects, re-registration, discovery) hangs off one timer set to the
//! earliest deadline, so an idle node wakes only when something is due.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use hearth_core::ruma::OwnedServerName;
use http::{Request, Response};
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, rendezvous};
use tracing::{debug, info, warn};
use web_time::Instant;

mod federation;

use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::{
    Config, Event, InboundRequest, P2pError, RelayState, RelayStatus, platform,
    server_name_for_peer,
};

/// How long a connection with no open stream stays up: long enough that a burst of federation
/// traffic to one server reuses one circuit, short enough not to hold circuits at the relay
/// for servers we no longer talk to. Reservations keep the relay connection open on their own.
pub(crate) const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);

/// First reconnect delay after a relay is lost; doubles on each failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// After a failed registration, the next try.
const REGISTER_RETRY: Duration = Duration::from_secs(5);

/// How long [`crate::Node::peers`] waits for the relays' answers before using what it knows.
const PEERS_WAIT: Duration = Duration::from_secs(5);

/// Callers of `peers()` waiting at once; beyond this they get the last known list at once.
const MAX_PEER_WAITERS: usize = 64;

/// Longest sleep when nothing is due (the timer is re-armed whenever something changes).
const IDLE_TICK: Duration = Duration::from_secs(60);

/// What a [`crate::Node`] asks of the driver.
pub(crate) enum Command {
    Request {
        peer: PeerId,
        server: OwnedServerName,
        request: Box<Request<Vec<u8>>>,
        reply: oneshot::Sender<Result<Response<Vec<u8>>, P2pError>>,
    },
    Peers {
        reply: oneshot::Sender<Vec<OwnedServerName>>,
    },
}

pub(crate) struct Setup<'a> {
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) relays: Vec<(Multiaddr, PeerId)>,
    pub(crate) namespace: rendezvous::Namespace,
    pub(crate) config: &'a Config,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) inbound: mpsc::Sender<InboundRequest>,
    pub(crate) events: mpsc::Sender<Event>,
    pub(crate) status: Arc<Mutex<Vec<RelayState>>>,
}

/// One configured relay.
struct Relay {
    addr: Multiaddr,
    peer: PeerId,
    status: RelayStatus,
    listener: Option<ListenerId>,
    relayed: Option<Multiaddr>,
    backoff: Duration,
    /// When to listen (reserve) again, while disconnected.
    retry_at: Option<Instant>,
    register_at: Option<Instant>,
    discover_at: Option<Instant>,
    discovering: bool,
    /// Peers registered there at the last discovery, with their registrations' expiry.
    registered: BTreeMap<PeerId, Instant>,
}

type Pending = BTreeMap<
    OutboundRequestId,
    (OwnedServerName, oneshot::Sender<Result<Response<Vec<u8>>, P2pError>>),
>;
type Answer = (ResponseChannel<Response<Vec<u8>>>, Option<Response<Vec<u8>>>);

pub(crate) struct Driver {
    swarm: Swarm<Behaviour>,
    relays: Vec<Relay>,
    namespace: rendezvous::Namespace,
    registration_ttl: u64,
    discovery_interval: Duration,
    request_timeout: Duration,
    commands: mpsc::Receiver<Command>,
    inbound: mpsc::Sender<InboundRequest>,
    events: mpsc::Sender<Event>,
    status: Arc<Mutex<Vec<RelayState>>>,
    /// Outbound requests in flight; each ends with a request-response event (at the latest its
    /// timeout), so this holds at most what the command queue let in during one timeout.
    pending: Pending,
    /// Inbound requests the host is serving; each ends when the host answers or after the
    /// request timeout. request-response bounds how many streams arrive at once.
    answers: FuturesUnordered<platform::BoxFuture<Answer>>,
    peer_waiters: Vec<(oneshot::Sender<Vec<OwnedServerName>>, Instant)>,
    timer: platform::BoxFuture<()>,
    /// When `timer` fires; `None` once it has fired.
    timer_deadline: Option<Instant>,
    jitter_state: u64,
}

// Short-lived, one at a time: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Wake {
    Timer,
    Command(Option<Command>),
    Answered(Answer),
    Swarm(SwarmEvent<BehaviourEvent>),
}

impl Driver {
    pub(crate) fn new(setup: Setup<'_>) -> Self {
        let now = Instant::now();
        let relays = setup
            .relays
            .into_iter()
            .map(|(addr, peer)| Relay {
                addr,
                peer,
                status: RelayStatus::Disconnected,
                listener: None,
                relayed: None,
                backoff: MIN_BACKOFF,
                retry_at: Some(now),
                register_at: None,
                discover_at: None,
                discovering: false,
                registered: BTreeMap::new(),
            })
            .collect();
        let jitter_state = web_time::SystemTime::now()
            .duration_since(web_time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        Self {
            swarm: setup.swarm,
            relays,
            namespace: setup.namespace,
            registration_ttl: setup.config.registration_ttl.as_secs().max(1),
            discovery_interval: setup.config.discovery_interval,
            request_timeout: setup.config.request_timeout,
            commands: setup.commands,
            inbound: setup.inbound,
            events: setup.events,
            status: setup.status,
            pending: BTreeMap::new(),
            answers: FuturesUnordered::new(),
            peer_waiters: Vec::new(),
            timer: Box::pin(futures::future::ready(())),
            timer_deadline: Some(now),
            jitter_state,
        }
    }

    /// Runs until every [`crate::Node`] handle is dropped.
    pub(crate) async fn run(mut self) {
        loop {
            // Local work first (due timers, the host's commands and answers), then the network.
            let wake = futures::future::poll_fn(|cx| {
                if self.timer.poll_unpin(cx).is_ready() {
                    return Poll::Ready(Wake::Timer);
                }
                if let Poll::Ready(command) = self.commands.poll_next_unpin(cx) {
                    return Poll::Ready(Wake::Command(command));
                }
                if let Poll::Ready(Some(answer)) = self.answers.poll_next_unpin(cx) {
                    return Poll::Ready(Wake::Answered(answer));
                }
                if let Poll::Ready(Some(event)) = self.swarm.poll_next_unpin(cx) {
                    return Poll::Ready(Wake::Swarm(event));
                }
                Poll::Pending
            })
            .await;
            match wake {
                Wake::Timer => self.on_timer(),
                Wake::Command(None) => {
                    debug!("every node handle is gone: stopping");
                    return;
                }
                Wake::Command(Some(command)) => self.on_command(command),
                Wake::Answered((channel, response)) => self.on_answer(channel, response),
                Wake::Swarm(event) => self.on_swarm_event(event),
            }
            self.arm_timer();
        }
    }

    /// Sets the timer to the earliest deadline, if that changed.
    fn arm_timer(&mut self) {
        let now = Instant::now();
        let deadline = self
            .relays
            .iter()
            .flat_map(|r| [r.retry_at, r.register_at, r.discover_at])
            .flatten()
            .chain(self.peer_waiters.iter().map(|(_, deadline)| *deadline))
            .min()
            .unwrap_or(now + IDLE_TICK);
        if Some(deadline) != self.timer_deadline {
            self.timer_deadline = Some(deadline);
            self.timer = Box::pin(platform::sleep(deadline.saturating_duration_since(now)));
        }
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        // The timer has fired: the next arm sets a new one.
        self.timer = Box::pin(futures::future::pending());
        self.timer_deadline = None;
        for i in 0..self.relays.len() {
            if self.relays[i].retry_at.is_some_and(|t| t <= now) {
                self.relays[i].retry_at = None;
                self.reserve(i);
            }
            if self.relays[i].register_at.is_some_and(|t| t <= now) {
                self.relays[i].register_at = None;
                self.register(i);
            }
            if self.relays[i].discover_at.is_some_and(|t| t <= now) {
                self.relays[i].discover_at = None;
                self.discover(i);
            }
        }
        if self.peer_waiters.iter().any(|(_, deadline)| *deadline <= now) {
            self.answer_peer_waiters();
        }
    }

    /// Listens on `<relay>/p2p-circuit`: the relay client dials the relay and asks for a
    /// reservation; the listener reports the relayed address once it is accepted.
    fn reserve(&mut self, i: usize) {
        let addr = self.relays[i].addr.clone().with(Protocol::P2pCircuit);
        match self.swarm.listen_on(addr.clone()) {
            Ok(listener) => {
                debug!(%addr, "reserving");
                self.relays[i].listener = Some(listener);
                self.set_status(i, RelayStatus::Connecting);
            }
            Err(error) => {
                warn!(%addr, %error, "cannot listen on the relay");
                self.retry_later(i);
            }
        }
    }

    /// The relay is lost: forget what it gave us and try again after the backoff.
    fn retry_later(&mut self, i: usize) {
        let delay = self.jittered(self.relays[i].backoff);
        let relay = &mut self.relays[i];
        relay.backoff = (relay.backoff * 2).min(MAX_BACKOFF);
        relay.retry_at = Some(Instant::now() + delay);
        relay.listener = None;
        relay.register_at = None;
        relay.discover_at = None;
        relay.discovering = false;
        relay.registered.clear();
        if let Some(relayed) = relay.relayed.take() {
            self.swarm.remove_external_address(&relayed);
        }
        info!(relay = %self.relays[i].addr, retry_in = ?delay, "relay disconnected");
        self.set_status(i, RelayStatus::Disconnected);
        self.answer_peer_waiters_if_done();
    }

    /// Half to all of `delay`, so that nodes that lost the same relay do not all come back at
    /// the same instant (xorshift; this needs spread, not secrecy).
    fn jittered(&mut self, delay: Duration) -> Duration {
        let mut x = self.jitter_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter_state = x;
        let fraction = (x % 1000) as u32;
        delay / 2 + delay / 2 * fraction / 1000
    }

    fn register(&mut self, i: usize) {
        if self.relays[i].relayed.is_none() {
            return;
        }
        let peer = self.relays[i].peer;
        let ns = self.namespace.clone();
        if let Err(error) =
            self.swarm.behaviour_mut().rendezvous.register(ns, peer, Some(self.registration_ttl))
        {
            warn!(relay = %self.relays[i].addr, %error, "cannot register");
            self.relays[i].register_at = Some(Instant::now() + REGISTER_RETRY);
        }
    }

    fn discover(&mut self, i: usize) {
        let relay = &mut self.relays[i];
        if relay.relayed.is_none() || relay.discovering {
            return;
        }
        relay.discovering = true;
        let ns = Some(self.namespace.clone());
        self.swarm.behaviour_mut().rendezvous.discover(ns, None, None, relay.peer);
    }

    fn set_status(&mut self, i: usize, status: RelayStatus) {
        let relay = &mut self.relays[i];
        relay.status = status;
        let state =
            RelayState { relay: relay.addr.clone(), relayed: relay.relayed.clone(), status };
        {
            let mut shared = self.status.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = shared.get_mut(i) {
                if *slot == state {
                    return;
                }
                *slot = state.clone();
            }
        }
        self.emit(Event::Relay(state));
    }

    /// Full queue: the event is dropped (the host is not keeping up; status() stays current).
    fn emit(&mut self, event: Event) {
        if let Err(e) = self.events.try_send(event)
            && e.is_full()
        {
            debug!(event = ?e.into_inner(), "event queue full: event dropped");
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Request { peer, server, request, reply } => {
                let addresses: Vec<Multiaddr> = self
                    .relays
                    .iter()
                    .map(|r| r.addr.clone().with(Protocol::P2pCircuit).with(Protocol::P2p(peer)))
                    .collect();
                if addresses.is_empty() && !self.swarm.is_connected(&peer) {
                    let reason = "no relay configured and no connection".to_owned();
                    let _ = reply.send(Err(P2pError::Unreachable { server, reason }));
                    return;
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .federation
                    .send_request_with_addresses(&peer, *request, addresses);
                self.pending.insert(id, (server, reply));
            }
            Command::Peers { reply } => {
                if self.peer_waiters.len() >= MAX_PEER_WAITERS {
                    let _ = reply.send(self.known_peers());
                    return;
                }
                self.peer_waiters.push((reply, Instant::now() + PEERS_WAIT));
                for i in 0..self.relays.len() {
                    self.discover(i);
                }
                self.answer_peer_waiters_if_done();
            }
        }
    }

    fn known_peers(&self) -> Vec<OwnedServerName> {
        let now = Instant::now();
        let own = *self.swarm.local_peer_id();
        let relays: Vec<PeerId> = self.relays.iter().map(|r| r.peer).collect();
        let mut peers: Vec<OwnedServerName> = self
            .relays
            .iter()
            .flat_map(|r| r.registered.iter())
            .filter(|(peer, expiry)| **expiry > now && **peer != own && !relays.contains(peer))
            .filter_map(|(peer, _)| server_name_for_peer(peer))
            .collect();
        peers.sort();
        peers.dedup();
        peers
    }

    fn answer_peer_waiters_if_done(&mut self) {
        if !self.relays.iter().any(|r| r.discovering) {
            self.answer_peer_waiters();
        }
    }

    fn answer_peer_waiters(&mut self) {
        if self.peer_waiters.is_empty() {
            return;
        }
        let peers = self.known_peers();
        for (reply, _) in self.peer_waiters.drain(..) {
            let _ = reply.send(peers.clone());
        }
    }

    fn relay_index(&self, peer: &PeerId) -> Option<usize> {
        self.relays.iter().position(|r| r.peer == *peer)
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { listener_id, address } => {
                let Some(i) = self.relays.iter().position(|r| r.listener == Some(listener_id))
                else {
                    return;
                };
                // `<relay>/p2p-circuit/p2p/<us>`, dialable as it is. Rendezvous registers the
                // external addresses and refuses to register without one.
                info!(%address, "relay reserved");
                self.swarm.add_external_address(address.clone());
                let relay = &mut self.relays[i];
                relay.relayed = Some(address);
                relay.backoff = MIN_BACKOFF;
                let now = Instant::now();
                relay.register_at = Some(now);
                relay.discover_at = Some(now);
                self.set_status(i, RelayStatus::Reserved);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.swarm.remove_external_address(&address);
            }
            SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                if let Some(i) = self.relays.iter().position(|r| r.listener == Some(listener_id)) {
                    debug!(relay = %self.relays[i].addr, ?reason, "relay listener closed");
                    self.retry_later(i);
                }
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                debug!(?listener_id, %error, "listener error");
            }
            SwarmEvent::ConnectionEstablished { peer_id, num_established, .. }
                if num_established.get() == 1 && self.relay_index(&peer_id).is_none() =>
            {
                if let Some(server) = server_name_for_peer(&peer_id) {
                    self.emit(Event::PeerConnected(server));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. }
                if self.relay_index(&peer_id).is_none() =>
            {
                if let Some(server) = server_name_for_peer(&peer_id) {
                    self.emit(Event::PeerDisconnected(server));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Federation(event)) => self.on_federation(event),
            SwarmEvent::Behaviour(BehaviourEvent::Rendezvous(event)) => self.on_rendezvous(event),
            SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => debug!(?event, "relay client"),
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(?peer_id, %error, "dial failed");
            }
            _ => {}
        }
    }

    fn on_rendezvous(&mut self, event: rendezvous::client::Event) {
        use rendezvous::client::Event as E;
        let now = Instant::now();
        match event {
            E::Registered { rendezvous_node, ttl, .. } => {
                let Some(i) = self.relay_index(&rendezvous_node) else { return };
                info!(relay = %self.relays[i].addr, ttl, "registered");
                // Renew at half the TTL, so one lost renewal still leaves time for another.
                self.relays[i].register_at = Some(now + Duration::from_secs(ttl.max(2) / 2));
                self.set_status(i, RelayStatus::Registered);
            }
            E::RegisterFailed { rendezvous_node, error, .. } => {
                let Some(i) = self.relay_index(&rendezvous_node) else { return };
                warn!(relay = %self.relays[i].addr, ?error, "registration refused");
                if self.relays[i].relayed.is_some() {
                    self.relays[i].register_at = Some(now + REGISTER_RETRY);
                }
            }
            E::Discovered { rendezvous_node, registrations, .. } => {
                let Some(i) = self.relay_index(&rendezvous_node) else { return };
                let known = self.known_peers();
                let relay = &mut self.relays[i];
                relay.registered = registrations
                    .iter()
                    .map(|r| (r.record.peer_id(), now + Duration::from_secs(r.ttl)))
                    .collect();
                relay.discovering = false;
                relay.discover_at = Some(now + self.discovery_interval);
                // Newly registered servers have (re)started: what is queued for them can go.
                for server in self.known_peers() {
                    if !known.contains(&server) {
                        self.emit(Event::PeerDiscovered(server));
                    }
                }
                self.answer_peer_waiters_if_done();
            }
            E::DiscoverFailed { rendezvous_node, error, .. } => {
                let Some(i) = self.relay_index(&rendezvous_node) else { return };
                debug!(relay = %self.relays[i].addr, ?error, "discovery failed");
                let relay = &mut self.relays[i];
                relay.discovering = false;
                relay.discover_at = Some(now + self.discovery_interval);
                self.answer_peer_waiters_if_done();
            }
            E::Expired { peer } => {
                for relay in &mut self.relays {
                    relay.registered.remove(&peer);
                }
            }
        }
    }
}
