//! Server names and peer IDs: one ed25519 key, so each maps to the other without a lookup.

use hearth_core::ServerIdentity;
use hearth_core::ruma::{OwnedServerName, ServerName};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::P2pError;

/// The libp2p key of a server: its ed25519 signing key.
pub(crate) fn keypair(seed: [u8; 32]) -> Result<Keypair, P2pError> {
    let mut seed = seed;
    Keypair::ed25519_from_bytes(&mut seed).map_err(|e| P2pError::Setup(format!("key: {e}")))
}

pub(crate) fn server_name_for_seed(seed: [u8; 32]) -> Result<OwnedServerName, P2pError> {
    let identity =
        ServerIdentity::from_seed(&seed).map_err(|e| P2pError::Setup(format!("key: {e}")))?;
    Ok(identity.server_name().to_owned())
}

/// The peer ID a Hearth server name certifies; an error for a name that is not an ed25519 key.
pub fn peer_id_for_server(server: &ServerName) -> Result<PeerId, P2pError> {
    let peer = hearth_core::identity::PeerId::for_server(server)
        .map_err(|e| P2pError::BadAddress(format!("{server}: {e}")))?;
    PeerId::from_bytes(peer.as_bytes()).map_err(|e| P2pError::BadAddress(format!("{server}: {e}")))
}

/// The server name of a peer, if its key is ed25519 (the only kind of key a Hearth server has).
pub fn server_name_for_peer(peer: &PeerId) -> Option<OwnedServerName> {
    let peer = hearth_core::identity::PeerId::from_bytes(&peer.to_bytes()).ok()?;
    hearth_core::identity::server_name_for_key(&peer.public_key()).ok()
}

/// The relay's peer ID: the address must end in `/p2p/<id>` (dialing a relay without knowing
/// whose key to expect would let anyone on the path stand in for it).
pub(crate) fn relay_peer(addr: &Multiaddr) -> Result<PeerId, P2pError> {
    if addr.iter().any(|p| p == Protocol::P2pCircuit) {
        return Err(P2pError::BadAddress(format!("{addr}: a relay address has no /p2p-circuit")));
    }
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Ok(peer),
        _ => Err(P2pError::BadAddress(format!("{addr}: a relay address ends in /p2p/<peer id>"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_and_peer_ids_map_both_ways() {
        let seed = [7u8; 32];
        let name = server_name_for_seed(seed).unwrap();
        let peer = keypair(seed).unwrap().public().to_peer_id();
        assert_eq!(peer_id_for_server(&name).unwrap(), peer);
        assert_eq!(server_name_for_peer(&peer).unwrap(), name);
    }

    #[test]
    fn non_hearth_names_and_keys_are_refused() {
        let name = <&ServerName>::try_from("example.org").unwrap();
        assert!(matches!(peer_id_for_server(name), Err(P2pError::BadAddress(_))));
        // Not an ed25519 key: an identity multihash of 32 random bytes.
        assert_eq!(server_name_for_peer(&PeerId::random()), None);
    }

    #[test]
    fn relay_addresses_must_name_the_relay() {
        let peer = keypair([1; 32]).unwrap().public().to_peer_id();
        let good: Multiaddr = format!("/ip4/127.0.0.1/tcp/4002/p2p/{peer}").parse().unwrap();
        assert_eq!(relay_peer(&good).unwrap(), peer);
        let bare: Multiaddr = "/ip4/127.0.0.1/tcp/4002".parse().unwrap();
        assert!(relay_peer(&bare).is_err());
        let circuit = good.with(Protocol::P2pCircuit);
        assert!(relay_peer(&circuit).is_err());
    }
}
