//! The swarm: transports, listeners, and the event loop that logs what the relay does.

use std::time::Duration;

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm, SwarmBuilder, noise, relay, rendezvous, tcp, yamux};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, info, warn};

use crate::args::Args;
use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::error::Error;

/// How long a connection with nothing on it stays open. Reservations and circuits keep their
/// connections alive on their own; this only ends connections used for a single discover.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts listening, then serves until SIGTERM or SIGINT.
pub(crate) async fn run(args: Args, key: Keypair) -> Result<(), Error> {
    let mut terminate = signal(SignalKind::terminate()).map_err(Error::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(Error::Signals)?;
    let signalled = async move {
        tokio::select! {
            _ = terminate.recv() => info!(signal = "SIGTERM", "shutting down"),
            _ = interrupt.recv() => info!(signal = "SIGINT", "shutting down"),
        }
    };
    run_until(args, key, signalled).await
}

/// Starts listening, then serves until `shutdown` completes. Dropping the swarm on return closes
/// every listener and connection.
pub(crate) async fn run_until(
    args: Args,
    key: Keypair,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let peer_id = key.public().to_peer_id();
    let mut swarm = build_swarm(key, &args).await?;
    println!("peer id: {peer_id}");

    let mut waiting_for_address = Vec::new();
    for addr in args.listen_addrs() {
        let listener = swarm
            .listen_on(addr.clone())
            .map_err(|e| Error::Listen { addr: addr.clone(), reason: e.to_string() })?;
        waiting_for_address.push(listener);
    }
    // Explicit external addresses replace the listen addresses in what reservations carry.
    let advertise_listen_addrs = args.external.is_empty();
    for addr in &args.external {
        swarm.add_external_address(addr.clone());
    }

    let mut shutdown = std::pin::pin!(shutdown);
    let mut ready = false;
    loop {
        let event = tokio::select! {
            event = swarm.select_next_some() => event,
            () = &mut shutdown => return Ok(()),
        };
        match event {
            SwarmEvent::NewListenAddr { listener_id, address } => {
                // The relay advertises only confirmed external addresses in reservations, and
                // enables its hop protocol only once it has one; clients reject a reservation
                // that carries no address.
                if advertise_listen_addrs {
                    swarm.add_external_address(address.clone());
                }
                let full = address.clone().with(Protocol::P2p(peer_id));
                info!(address = %full, "listening");
                println!("listening on {full}");
                waiting_for_address.retain(|l| *l != listener_id);
                if !ready && waiting_for_address.is_empty() {
                    ready = true;
                    println!("ready");
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                if advertise_listen_addrs {
                    swarm.remove_external_address(&address);
                }
                info!(%address, "no longer listening");
            }
            SwarmEvent::ListenerClosed { addresses, reason, .. } => {
                // A listener only closes on its own when its socket fails; without it the
                // relay is unreachable on that address, which its operator must hear about.
                return Err(listener_closed(&args, addresses, reason));
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. } => {
                info!(
                    peer = %peer_id,
                    remote = %remote_addr(&endpoint),
                    connections = num_established.get(),
                    "connection opened"
                );
            }
            SwarmEvent::ConnectionClosed { peer_id, endpoint, num_established, cause, .. } => {
                let cause = cause.map_or_else(|| "closed".to_owned(), |c| c.to_string());
                info!(
                    peer = %peer_id,
                    remote = %remote_addr(&endpoint),
                    connections = num_established,
                    %cause,
                    "connection closed"
                );
            }
            SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
                info!(remote = %send_back_addr, %error, "incoming connection failed");
            }
            SwarmEvent::Behaviour(event) => log_behaviour_event(event),
            other => debug!(event = ?other, "swarm event"),
        }
    }
}

async fn build_swarm(key: Keypair, args: &Args) -> Result<Swarm<Behaviour>, Error> {
    let transport = |e: &dyn std::fmt::Display| Error::Transport(e.to_string());
    let limits = args.limits.clone();
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| transport(&e))?
        .with_dns()
        .map_err(|e| transport(&e))?;
    let swarm = swarm
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await
        .map_err(|e| transport(&e))?
        .with_behaviour(|key| Behaviour::new(key, &limits))
        .map_err(|e| transport(&e))?
        .with_swarm_config(|config| config.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}

fn listener_closed(
    args: &Args,
    addresses: Vec<Multiaddr>,
    reason: Result<(), std::io::Error>,
) -> Error {
    let addr = addresses
        .into_iter()
        .next()
        .or_else(|| args.listen_addrs().next().cloned())
        .unwrap_or_else(Multiaddr::empty);
    let reason = match reason {
        Ok(()) => "the listener closed".to_owned(),
        Err(e) => e.to_string(),
    };
    Error::Listen { addr, reason }
}

fn remote_addr(endpoint: &ConnectedPoint) -> &Multiaddr {
    match endpoint {
        ConnectedPoint::Dialer { address, .. } => address,
        ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr,
    }
}

fn log_behaviour_event(event: BehaviourEvent) {
    match event {
        BehaviourEvent::Relay(event) => log_relay_event(event),
        BehaviourEvent::Rendezvous(event) => log_rendezvous_event(event),
        BehaviourEvent::Identify(event) => debug!(?event, "identify"),
        BehaviourEvent::Ping(event) => debug!(peer = %event.peer, result = ?event.result, "ping"),
        BehaviourEvent::Limits(never) => match never {},
    }
}

fn log_relay_event(event: relay::Event) {
    use relay::Event as E;
    match event {
        E::ReservationReqAccepted { src_peer_id, renewed } => {
            info!(peer = %src_peer_id, renewed, "reservation accepted");
        }
        E::ReservationReqDenied { src_peer_id, status } => {
            info!(peer = %src_peer_id, ?status, "reservation denied");
        }
        E::ReservationClosed { src_peer_id } => info!(peer = %src_peer_id, "reservation closed"),
        E::ReservationTimedOut { src_peer_id } => {
            info!(peer = %src_peer_id, "reservation expired");
        }
        E::CircuitReqAccepted { src_peer_id, dst_peer_id } => {
            info!(src = %src_peer_id, dst = %dst_peer_id, "circuit opened");
        }
        E::CircuitReqDenied { src_peer_id, dst_peer_id, status } => {
            info!(src = %src_peer_id, dst = %dst_peer_id, ?status, "circuit denied");
        }
        E::CircuitClosed { src_peer_id, dst_peer_id, error } => {
            let cause = error.map_or_else(|| "closed".to_owned(), |e| e.to_string());
            info!(src = %src_peer_id, dst = %dst_peer_id, %cause, "circuit closed");
        }
        E::StatusChanged { status } => info!(?status, "relay status"),
        #[allow(deprecated)]
        other => info!(event = ?other, "relay"),
    }
}

fn log_rendezvous_event(event: rendezvous::server::Event) {
    use rendezvous::server::Event as E;
    match event {
        E::PeerRegistered { peer, registration } => info!(
            peer = %peer,
            namespace = %registration.namespace,
            ttl = registration.ttl,
            addresses = ?addresses(registration.record.addresses()),
            "registered"
        ),
        E::PeerNotRegistered { peer, namespace, error } => {
            info!(peer = %peer, %namespace, ?error, "registration refused");
        }
        E::PeerUnregistered { peer, namespace } => info!(peer = %peer, %namespace, "unregistered"),
        E::RegistrationExpired(registration) => info!(
            peer = %registration.record.peer_id(),
            namespace = %registration.namespace,
            "registration expired"
        ),
        E::DiscoverServed { enquirer, registrations } => {
            info!(peer = %enquirer, found = registrations.len(), "discover served");
        }
        E::DiscoverNotServed { enquirer, error } => {
            info!(peer = %enquirer, ?error, "discover refused");
        }
    }
}

fn addresses(addrs: &[Multiaddr]) -> Vec<String> {
    addrs.iter().map(ToString::to_string).collect()
}
