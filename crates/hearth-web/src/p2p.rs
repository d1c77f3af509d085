//! Federation from the tab: the homeserver's libp2p node (the server key as its identity),
//! reaching other servers through relays over the browser's WebSocket. Inbound requests are
//! served by the tab's `Server` once their `X-Matrix` origin is checked against the connection.

use std::{cell::RefCell, rc::Rc, sync::Arc};

use futures_util::StreamExt;
use hearth_core::{platform::BoxFuture, ruma::OwnedServerName};
use hearth_p2p::{Event, InboundRequest, Multiaddr, Node, RelayState, RelayStatus, Started};
use hearth_server::{Federation, NoFederation, Server, ServerError};
use wasm_bindgen_futures::spawn_local;

/// `hearth_server`'s way out to other servers, over the node.
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

/// The tab's node while it runs.
pub(crate) struct Network {
    node: RefCell<Option<Node>>,
}

impl Network {
    /// Starts the node on `relays` and connects it to `server` both ways.
    pub(crate) async fn start(
        server: &Server,
        seed: [u8; 32],
        relays: Vec<Multiaddr>,
    ) -> Result<Rc<Network>, String> {
        let config = hearth_p2p::Config::new(seed, relays);
        let Started { node, driver, mut inbound, mut events } =
            Node::start(config).await.map_err(|error| error.to_string())?;
        spawn_local(driver);

        let serving = server.clone();
        spawn_local(async move {
            while let Some(request) = inbound.next().await {
                // Each request is its own task: a slow one must not hold up the rest.
                let server = serving.clone();
                spawn_local(async move { serve(&server, request).await });
            }
        });
        let notified = server.clone();
        spawn_local(async move {
            while let Some(event) = events.next().await {
                match event {
                    // Whatever is queued for a server that shows up can go now.
                    Event::PeerConnected(name) | Event::PeerDiscovered(name) => {
                        notified.destination_online(&name);
                    }
                    // Reachable (again): retry our queues now, tell the servers we share rooms
                    // with, and catch up on what they sent while we were away.
                    Event::Relay(state) if state.status == RelayStatus::Reserved => {
                        let server = notified.clone();
                        spawn_local(async move {
                            // A failed catch-up is retried at the next reservation; the queues
                            // retry on their own.
                            let _ = server.network_online().await;
                        });
                    }
                    _ => {}
                }
            }
        });
        server
            .set_federation(Arc::new(P2pFederation(node.clone())))
            .await
            .map_err(|error| format!("cannot start federation: {error}"))?;
        Ok(Rc::new(Network { node: RefCell::new(Some(node)) }))
    }

    /// The relays and where the node stands with each.
    pub(crate) fn relays(&self) -> Vec<RelayState> {
        self.node.borrow().as_ref().map(Node::status).unwrap_or_default()
    }

    /// Whether some relay holds a reservation for us (others can reach this tab).
    pub(crate) fn reachable(&self) -> bool {
        self.relays()
            .iter()
            .any(|relay| matches!(relay.status, RelayStatus::Reserved | RelayStatus::Registered))
    }

    /// Servers registered at the relays now.
    pub(crate) async fn peers(&self) -> Vec<OwnedServerName> {
        let node = self.node.borrow().clone();
        match node {
            Some(node) => node.peers().await,
            None => Vec::new(),
        }
    }

    /// Stops the node (another tab is taking over this homeserver, with the same key).
    pub(crate) async fn stop(&self, server: &Server) {
        // The driver stops once the last handle is gone: ours, and the server's.
        self.node.borrow_mut().take();
        let _ = server.set_federation(Arc::new(NoFederation)).await;
    }
}

async fn serve(server: &Server, inbound: InboundRequest) {
    let InboundRequest { origin, request, respond } = inbound;
    respond.send(server.handle_from_peer(&origin, request).await);
}
