//! Federation over libp2p (`--relay`): the server's key is the node's libp2p identity, other
//! servers are reached by name through the relays, and their requests are served by the same
//! `Server` as HTTP requests, once their `X-Matrix` origin is checked against the connection.

use std::sync::Arc;

use futures::StreamExt;
use hearth_core::platform::BoxFuture;
use hearth_core::ruma::OwnedServerName;
use hearth_p2p::{Event, InboundRequest, Multiaddr, Node, RelayStatus, Started};
use hearth_server::{Federation, Server, ServerError};

/// `hearth_server`'s way out to other servers, over the p2p node.
struct P2pFederation(Node);

impl Federation for P2pFederation {
    fn request(
        &self,
        destination: OwnedServerName,
        request: http::Request<Vec<u8>>,
    ) -> BoxFuture<'static, Result<http::Response<Vec<u8>>, ServerError>> {
        let node = self.0.clone();
        Box::pin(async move {
            node.request(&destination, request)
                .await
                .map_err(|error| ServerError::Unreachable(error.to_string()))
        })
    }

    fn peers(&self) -> BoxFuture<'static, Vec<OwnedServerName>> {
        let node = self.0.clone();
        Box::pin(async move { node.peers().await })
    }
}

/// Starts the p2p node with the server's key, connects it to `server` both ways and prints
/// `p2p peer id: …`, then `relay reserved: …` for each reservation.
pub(crate) async fn start(
    server: &Server,
    seed: [u8; 32],
    relays: Vec<Multiaddr>,
) -> Result<(), String> {
    let config = hearth_p2p::Config::new(seed, relays);
    let Started { node, driver, mut inbound, mut events } =
        Node::start(config).await.map_err(|error| error.to_string())?;
    println!("p2p peer id: {}", node.peer_id());
    tokio::spawn(driver);

    let serving = server.clone();
    tokio::spawn(async move {
        while let Some(request) = inbound.next().await {
            // Each request is its own task: a slow one must not hold up the rest. At most
            // `hearth_p2p::INBOUND_QUEUE` wait here; beyond that the node answers 503 itself.
            let server = serving.clone();
            tokio::spawn(async move { serve(&server, request).await });
        }
    });

    let notified = server.clone();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                // Whatever is queued for it can go now rather than at the next retry.
                Event::PeerConnected(name) | Event::PeerDiscovered(name) => {
                    notified.destination_online(&name);
                }
                Event::Relay(state) => match (state.status, state.relayed) {
                    (RelayStatus::Reserved, Some(relayed)) => {
                        println!("relay reserved: {relayed}");
                        // Reachable (again): retry our queues now and tell the servers we
                        // share rooms with, whose queues for us may be deep in backoff.
                        let server = notified.clone();
                        tokio::spawn(async move {
                            if let Err(error) = server.network_online().await {
                                eprintln!("hearth-node: cannot resume federation: {error}");
                            }
                        });
                    }
                    (RelayStatus::Disconnected, _) => {
                        eprintln!("hearth-node: lost the relay {}; reconnecting", state.relay);
                    }
                    _ => {}
                },
                Event::PeerDisconnected(_) => {}
            }
        }
    });

    server
        .set_federation(Arc::new(P2pFederation(node)))
        .await
        .map_err(|error| format!("cannot start federation: {error}"))
}

/// Serves one inbound request. `handle_from_peer` refuses (401 `M_UNAUTHORIZED`) a request
/// signed as another server than `origin`, the server whose key holds the connection, so a peer
/// cannot pass off requests it relays from someone else.
async fn serve(server: &Server, inbound: InboundRequest) {
    let InboundRequest { origin, request, respond } = inbound;
    respond.send(server.handle_from_peer(&origin, request).await);
}
