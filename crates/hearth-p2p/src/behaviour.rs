//! The protocols a Hearth node speaks.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{identify, ping, relay, rendezvous};

use crate::codec::{Codec, PROTOCOL};

/// Relay client (reservations and relayed dials), rendezvous client (registration and
/// discovery), the federation protocol, identify and ping.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) relay: relay::client::Behaviour,
    pub(crate) rendezvous: rendezvous::client::Behaviour,
    pub(crate) federation: request_response::Behaviour<Codec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// How many federation streams one connection carries at once, each way. A remote that opens
/// more has its extra streams refused until one finishes.
const MAX_CONCURRENT_STREAMS: usize = 64;

impl Behaviour {
    pub(crate) fn new(key: &Keypair, relay: relay::client::Behaviour, timeout: Duration) -> Self {
        let federation = request_response::Behaviour::with_codec(
            Codec,
            [(PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(timeout)
                .with_max_concurrent_streams(MAX_CONCURRENT_STREAMS),
        );
        Self {
            relay,
            rendezvous: rendezvous::client::Behaviour::new(key.clone()),
            federation,
            identify: identify::Behaviour::new(identify::Config::new(
                "/hearth/1".to_owned(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
        }
    }
}
