//! The limits an operator sets are the limits peers meet.

mod common;

use std::time::Duration;

use common::{ClientEvent, client, drive, reserve, start_relay, wait_for};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::ping;
use libp2p::swarm::SwarmEvent;

#[tokio::test]
async fn reservations_beyond_the_total_are_denied() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(&dir.path().join("key"), &["--max-reservations", "1"]).await;

    let mut a = client(Keypair::generate_ed25519(), Duration::from_secs(15)).await;
    reserve(&mut a, &relay.tcp).await.expect("the first reservation fits");
    let a_task = drive(a);

    let mut c = client(Keypair::generate_ed25519(), Duration::from_secs(15)).await;
    let denied = reserve(&mut c, &relay.ws).await;
    assert!(denied.is_err(), "a second reservation was accepted: {denied:?}");

    a_task.abort();
    assert_eq!(relay.terminate().await, Some(0));
}

/// libp2p-relay lets a peer hold one more reservation than its per-peer limit says; the relay
/// corrects for that, and this pins it down so a libp2p upgrade that fixes it is noticed.
#[tokio::test]
async fn reservations_beyond_the_per_peer_limit_are_denied() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(&dir.path().join("key"), &["--max-reservations-per-peer", "1"]).await;
    let key = Keypair::generate_ed25519();

    // Two swarms with one identity: two connections from the same peer, as a restarted tab
    // whose old connection has not timed out yet would make.
    let mut first = client(key.clone(), Duration::from_secs(15)).await;
    reserve(&mut first, &relay.tcp).await.expect("the first reservation fits");
    let first_task = drive(first);

    let mut second = client(key, Duration::from_secs(15)).await;
    let denied = reserve(&mut second, &relay.ws).await;
    assert!(denied.is_err(), "a second reservation of one peer was accepted: {denied:?}");

    // Another peer is not affected.
    let mut other = client(Keypair::generate_ed25519(), Duration::from_secs(15)).await;
    reserve(&mut other, &relay.tcp).await.expect("another peer's reservation fits");

    first_task.abort();
    assert_eq!(relay.terminate().await, Some(0));
}

#[tokio::test]
async fn a_circuit_is_closed_once_it_has_carried_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(&dir.path().join("key"), &["--max-circuit-bytes", "16KiB"]).await;

    let a_key = Keypair::generate_ed25519();
    let a_id = a_key.public().to_peer_id();
    let mut a = client(a_key, Duration::from_millis(20)).await;
    let relayed = reserve(&mut a, &relay.tcp).await.expect("reservation accepted");
    let a_task = drive(a);

    // Pings every 20 ms carry 64 bytes (plus framing) each way, so 16 KiB lasts about a second.
    let mut b = client(Keypair::generate_ed25519(), Duration::from_millis(20)).await;
    assert_eq!(relayed.iter().last(), Some(Protocol::P2p(a_id)), "{relayed} names A");
    b.dial(relayed).unwrap();
    let mut pings = 0;
    wait_for("the circuit to be closed", &mut b, |event| match event {
        SwarmEvent::Behaviour(ClientEvent::Ping(ping::Event { peer, result: Ok(_), .. }))
            if peer == a_id =>
        {
            pings += 1;
            None
        }
        SwarmEvent::ConnectionClosed { peer_id, endpoint, .. }
            if peer_id == a_id && endpoint.is_relayed() =>
        {
            Some(())
        }
        SwarmEvent::OutgoingConnectionError { error, .. } => panic!("{error}"),
        _ => None,
    })
    .await;
    assert!(pings > 0, "the circuit carried traffic before it was closed");

    a_task.abort();
    assert_eq!(relay.terminate().await, Some(0));
}
