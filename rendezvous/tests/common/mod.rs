//! Starts the real `hearth-rendezvous` binary and builds libp2p client swarms that use it.

// Each test binary uses a different part of this module; a panic here is a test failure.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, Swarm, SwarmBuilder, identify, noise, ping, relay, rendezvous, tcp, yamux,
};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Every wait in these tests ends within this; a healthy run needs a fraction of it.
pub const TIMEOUT: Duration = Duration::from_secs(15);

pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(TIMEOUT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {TIMEOUT:?} waiting for {what}"),
    }
}

/// A running relay process and what it printed on start.
pub struct Relay {
    pub child: Child,
    pub peer_id: PeerId,
    /// Full addresses, each ending in `/p2p/<peer id>`.
    pub ws: Multiaddr,
    pub tcp: Multiaddr,
    /// The rest of stdout, kept open so the relay never writes to a closed pipe.
    pub stdout: Lines<BufReader<ChildStdout>>,
}

/// Starts the relay on loopback (ephemeral ports) with `extra` flags and waits until it is ready.
pub async fn start_relay(key: &Path, extra: &[&str]) -> Relay {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth-rendezvous"))
        .args(["--listen-ws", "/ip4/127.0.0.1/tcp/0/ws", "--listen-tcp", "/ip4/127.0.0.1/tcp/0"])
        .arg("--key")
        .arg(key)
        .args(extra)
        // Quiet while healthy; RUST_LOG=info shows everything the relay did.
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start hearth-rendezvous");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut peer_id, mut ws, mut tcp) = (None, None, None);
    within("the relay to be ready", async {
        loop {
            let line = stdout.next_line().await.unwrap().expect("relay exited before ready");
            if let Some(id) = line.strip_prefix("peer id: ") {
                peer_id = Some(id.parse::<PeerId>().unwrap());
            } else if let Some(addr) = line.strip_prefix("listening on ") {
                let addr: Multiaddr = addr.parse().unwrap();
                if addr.iter().any(|p| matches!(p, Protocol::Ws(_))) {
                    ws = Some(addr);
                } else {
                    tcp = Some(addr);
                }
            } else if line == "ready" {
                break;
            }
        }
    })
    .await;
    let peer_id = peer_id.expect("a `peer id:` line");
    let (ws, tcp) = (ws.expect("a WebSocket address"), tcp.expect("a TCP address"));
    for addr in [&ws, &tcp] {
        assert_eq!(addr.iter().last(), Some(Protocol::P2p(peer_id)), "{addr} names the relay");
    }
    Relay { child, peer_id, ws, tcp, stdout }
}

impl Relay {
    /// Sends SIGTERM and returns the exit code.
    pub async fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().expect("relay still running");
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success());
        within("the relay to exit", self.child.wait()).await.unwrap().code()
    }
}

#[derive(NetworkBehaviour)]
pub struct Client {
    pub relay: relay::client::Behaviour,
    pub rendezvous: rendezvous::client::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
}

/// A peer as hearth-p2p will build one natively: TCP and WebSocket, the relay client,
/// rendezvous discovery. Pings every `ping_interval` so tests see relayed traffic quickly.
pub async fn client(key: Keypair, ping_interval: Duration) -> Swarm<Client> {
    SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_dns()
        .unwrap()
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await
        .unwrap()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|key, relay| Client {
            relay,
            rendezvous: rendezvous::client::Behaviour::new(key.clone()),
            identify: identify::Behaviour::new(identify::Config::new(
                "/hearth/1.0.0".to_owned(),
                key.public(),
            )),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(ping_interval)),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build()
}

/// Drives `swarm` until `pick` returns a value for one of its events.
pub async fn wait_for<T>(
    what: &str,
    swarm: &mut Swarm<Client>,
    mut pick: impl FnMut(SwarmEvent<ClientEvent>) -> Option<T>,
) -> T {
    within(what, async {
        loop {
            if let Some(found) = pick(swarm.select_next_some().await) {
                return found;
            }
        }
    })
    .await
}

/// Connects to the relay, reserves a slot through it, and returns the relayed address
/// (`<relay>/p2p-circuit`), or the error the relay client reported.
pub async fn reserve(swarm: &mut Swarm<Client>, relay: &Multiaddr) -> Result<Multiaddr, String> {
    let listener = swarm.listen_on(relay.clone().with(Protocol::P2pCircuit)).unwrap();
    let mut accepted = false;
    let mut address = None;
    wait_for("the reservation", swarm, |event| {
        match event {
            SwarmEvent::Behaviour(ClientEvent::Relay(
                relay::client::Event::ReservationReqAccepted { .. },
            )) => accepted = true,
            SwarmEvent::NewListenAddr { listener_id, address: a } if listener_id == listener => {
                address = Some(a);
            }
            SwarmEvent::ListenerClosed { listener_id, reason, .. } if listener_id == listener => {
                return Some(Err(format!("{reason:?}")));
            }
            _ => {}
        }
        address.clone().filter(|_| accepted).map(Ok)
    })
    .await
}

/// Drives a swarm in the background so that its connections stay served while the test drives
/// another one.
pub fn drive(mut swarm: Swarm<Client>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    })
}
