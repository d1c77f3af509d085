//! Two peers that cannot dial each other meet through the real relay: A reserves a slot and
//! registers at the rendezvous server over TCP; B, over WebSocket as a browser would, discovers A
//! and reaches it through a circuit.

mod common;

use std::time::Duration;

use common::{ClientEvent, client, drive, reserve, start_relay, wait_for};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{ping, rendezvous};

#[tokio::test]
async fn peers_discover_each_other_and_talk_through_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(&dir.path().join("key"), &[]).await;
    let namespace = rendezvous::Namespace::from_static("hearth");

    let a_key = Keypair::generate_ed25519();
    let a_id = a_key.public().to_peer_id();
    let mut a = client(a_key, Duration::from_millis(200)).await;
    let relayed = reserve(&mut a, &relay.tcp).await.expect("reservation accepted");
    // `<relay tcp addr>/p2p/<relay>/p2p-circuit/p2p/<A>`: dialable as it is.
    assert!(relayed.iter().any(|p| p == Protocol::P2pCircuit), "{relayed}");
    assert_eq!(relayed.iter().last(), Some(Protocol::P2p(a_id)), "{relayed}");
    // Rendezvous registers a peer's external addresses; the relayed one is the only one A has.
    a.add_external_address(relayed.clone());
    a.behaviour_mut().rendezvous.register(namespace.clone(), relay.peer_id, None).unwrap();
    let registered = wait_for("A's registration", &mut a, |event| match event {
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(rendezvous::client::Event::Registered {
            namespace,
            ..
        })) => Some(namespace),
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(
            rendezvous::client::Event::RegisterFailed { error, .. },
        )) => panic!("registration failed: {error:?}"),
        _ => None,
    })
    .await;
    assert_eq!(registered.to_string(), "hearth");
    let a_task = drive(a);

    let mut b = client(Keypair::generate_ed25519(), Duration::from_millis(200)).await;
    b.dial(relay.ws.clone()).unwrap();
    wait_for("B's WebSocket connection to the relay", &mut b, |event| match event {
        SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == relay.peer_id => Some(()),
        SwarmEvent::OutgoingConnectionError { error, .. } => panic!("{error}"),
        _ => None,
    })
    .await;
    b.behaviour_mut().rendezvous.discover(Some(namespace), None, None, relay.peer_id);
    let addresses = wait_for("B's discovery", &mut b, |event| match event {
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(rendezvous::client::Event::Discovered {
            registrations,
            ..
        })) => {
            let a = registrations.iter().find(|r| r.record.peer_id() == a_id);
            Some(a.expect("A is registered under hearth").record.addresses().to_vec())
        }
        SwarmEvent::Behaviour(ClientEvent::Rendezvous(
            rendezvous::client::Event::DiscoverFailed { error, .. },
        )) => panic!("discover failed: {error:?}"),
        _ => None,
    })
    .await;
    assert_eq!(addresses, vec![relayed]);

    b.dial(addresses[0].clone()).unwrap();
    let mut relayed_connection = false;
    wait_for("a ping over the relayed connection", &mut b, |event| match event {
        SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } if peer_id == a_id => {
            assert!(endpoint.is_relayed(), "B reached A directly: {endpoint:?}");
            relayed_connection = true;
            None
        }
        SwarmEvent::Behaviour(ClientEvent::Ping(ping::Event { peer, result: Ok(rtt), .. }))
            if peer == a_id =>
        {
            assert!(relayed_connection);
            Some(rtt)
        }
        SwarmEvent::OutgoingConnectionError { error, .. } => panic!("{error}"),
        _ => None,
    })
    .await;

    a_task.abort();
    assert_eq!(relay.terminate().await, Some(0));
}
