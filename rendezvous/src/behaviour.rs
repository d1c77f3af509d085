//! The relay's protocols and the limits each one is given.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{connection_limits, identify, ping, relay, rendezvous};

use crate::args::Limits;

/// What `identify` reports as this program; peers may log it.
const AGENT_VERSION: &str = concat!("hearth-rendezvous/", env!("CARGO_PKG_VERSION"));

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    // First, so that a connection over the limit is refused before any protocol sees it.
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) relay: relay::Behaviour,
    pub(crate) rendezvous: rendezvous::server::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
}

impl Behaviour {
    pub(crate) fn new(key: &Keypair, limits: &Limits) -> Self {
        let peer_id = key.public().to_peer_id();
        Self {
            limits: connection_limits::Behaviour::new(connection_limits(limits)),
            relay: relay::Behaviour::new(peer_id, relay_config(limits)),
            rendezvous: rendezvous::server::Behaviour::new(rendezvous_config(limits)),
            identify: identify::Behaviour::new(
                identify::Config::new("/hearth/1.0.0".to_owned(), key.public())
                    .with_agent_version(AGENT_VERSION.to_owned()),
            ),
            ping: ping::Behaviour::default(),
        }
    }
}

fn connection_limits(limits: &Limits) -> connection_limits::ConnectionLimits {
    connection_limits::ConnectionLimits::default()
        .with_max_established(Some(limits.max_connections))
        // Handshakes in flight cost CPU and memory before anyone is authenticated.
        .with_max_pending_incoming(Some(limits.max_connections.clamp(1, 1024)))
}

pub(crate) fn relay_config(limits: &Limits) -> relay::Config {
    relay::Config {
        max_reservations: limits.max_reservations,
        max_reservations_per_peer: per_peer_limit(limits.max_reservations_per_peer),
        reservation_duration: limits.reservation_duration,
        // No rate limiters: libp2p's defaults allow one reservation or circuit a minute per IP,
        // which breaks every set of peers behind one address (a household's NAT, or all tests
        // on 127.0.0.1), and limiting per peer ID is moot as new IDs cost nothing. The totals
        // above are what bound the relay's memory.
        reservation_rate_limiters: Vec::new(),
        max_circuits: limits.max_circuits,
        max_circuits_per_peer: per_peer_limit(limits.max_circuits_per_peer),
        max_circuit_duration: limits.max_circuit_duration,
        max_circuit_bytes: limits.max_circuit_bytes,
        circuit_src_rate_limiters: Vec::new(),
    }
}

/// libp2p-relay 0.22 denies a new reservation or circuit only when the peer already holds *more*
/// than its per-peer limit (`count > max`), so it lets one more through than the number it is
/// given. The flags mean "at most N"; `tests/limits.rs` pins this down.
fn per_peer_limit(flag: u32) -> usize {
    usize::try_from(flag).unwrap_or(usize::MAX).saturating_sub(1)
}

fn rendezvous_config(limits: &Limits) -> rendezvous::server::Config {
    rendezvous::server::Config::default()
        .with_min_ttl(whole_secs(limits.registration_min_ttl))
        .with_max_ttl(whole_secs(limits.registration_max_ttl))
        .with_max_registration_total(limits.max_registrations)
        .with_max_registration_per_peer(limits.max_registrations_per_peer)
}

fn whole_secs(d: Duration) -> rendezvous::Ttl {
    d.as_secs()
}
