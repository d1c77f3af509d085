//! The real relay (`hearth-rendezvous`, in process on its own runtime) and Hearth nodes on
//! loopback.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::oneshot;
use hearth_core::ruma::OwnedServerName;
use hearth_p2p::{Config, Events, Inbound, Multiaddr, Node, PeerId, RelayStatus, Started};

/// Every wait in these tests ends within this; a healthy run needs a fraction of it.
pub const TIMEOUT: Duration = Duration::from_secs(20);

pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(TIMEOUT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {TIMEOUT:?} waiting for {what}"),
    }
}

/// The relay, running on its own thread and tokio runtime: stopping it drops the runtime, which
/// closes every socket it had, as a killed process would.
pub struct Relay {
    /// `/ip4/127.0.0.1/tcp/<port>/p2p/<relay id>`.
    pub addr: Multiaddr,
    /// `/ip4/127.0.0.1/tcp/<port>/ws/p2p/<relay id>`: the same relay, as browsers reach it.
    pub ws_addr: Multiaddr,
    pub peer_id: PeerId,
    key: PathBuf,
    ports: (u16, u16),
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    /// Starts the relay with the key at `key` on free loopback ports (TCP and WebSocket).
    pub fn start(key: &Path) -> Self {
        let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        Self::start_on(key, (free().port(), free().port()))
    }

    /// Starts the relay with the key at `key` on `ports` (TCP, WebSocket).
    pub fn start_on(key: &Path, ports: (u16, u16)) -> Self {
        let listen = format!("/ip4/127.0.0.1/tcp/{}", ports.0);
        let listen_ws = format!("/ip4/127.0.0.1/tcp/{}/ws", ports.1);
        let args = hearth_rendezvous::Args::parse_flags([
            "--listen-tcp",
            &listen,
            "--listen-ws",
            &listen_ws,
            "--key",
            key.to_str().unwrap(),
        ])
        .unwrap();
        let keypair = hearth_rendezvous::load_or_create_key(key).unwrap();
        let peer_id = keypair.public().to_peer_id();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let result = runtime.block_on(hearth_rendezvous::run_until(args, keypair, async {
                let _ = stopped.await;
            }));
            result.unwrap();
        });
        let addr = format!("{listen}/p2p/{peer_id}").parse().unwrap();
        let ws_addr = format!("{listen_ws}/p2p/{peer_id}").parse().unwrap();
        let key = key.to_owned();
        Self { addr, ws_addr, peer_id, key, ports, stop: Some(stop), thread: Some(thread) }
    }

    /// Stops the relay and waits until every socket it had is closed.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }

    /// Stops the relay and starts it again on the same port with the same key.
    pub fn restart(&mut self) {
        self.stop();
        *self = Self::start_on(&self.key.clone(), self.ports);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct TestNode {
    pub node: Node,
    pub name: OwnedServerName,
    pub events: Events,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A node with `seed` at `relays`, with short timers so the tests see refreshes.
pub async fn node(seed: u8, relays: &[Multiaddr]) -> (TestNode, Inbound) {
    let mut config = Config::new([seed; 32], relays.to_vec());
    config.request_timeout = Duration::from_secs(10);
    config.registration_ttl = Duration::from_secs(60);
    config.discovery_interval = Duration::from_secs(2);
    let Started { node, driver, inbound, events } = Node::start(config).await.unwrap();
    let driver = tokio::spawn(driver);
    let name = node.server_name().to_owned();
    (TestNode { node, name, events, driver }, inbound)
}

/// Answers every inbound request with `200 <origin> <path and query>`.
pub fn serve_echo(mut inbound: Inbound) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(request) = inbound.next().await {
            let path = request.request.uri().path_and_query().unwrap().to_string();
            let body = format!("{} {} {}", request.origin, request.request.method(), path);
            request.respond.send(http::Response::new(body.into_bytes()));
        }
    })
}

/// Waits until the node is registered at every relay.
pub async fn registered(node: &TestNode) {
    within("registration at every relay", async {
        while !node.node.status().iter().all(|s| s.status == RelayStatus::Registered) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// Waits until `node` discovers `other`.
pub async fn discovers(node: &TestNode, other: &OwnedServerName) {
    within("discovery", async {
        loop {
            let peers = node.node.peers().await;
            assert!(!peers.contains(&node.name), "a node lists itself: {peers:?}");
            if peers.contains(other) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

pub fn get(path: &str) -> http::Request<Vec<u8>> {
    http::Request::get(path).body(Vec::new()).unwrap()
}
