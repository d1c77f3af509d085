//! Homeservers that federate in memory: each one's `Federation` calls the destination's
//! `handle_from_peer`, as the libp2p hosts do; any of them can be switched off, and `peers()`
//! lists the ones online (what the relays would).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use hearth_core::{platform::BoxFuture, ruma::OwnedServerName};
use hearth_server::{Federation, Server, ServerError};

#[derive(Default)]
pub struct Network {
    servers: Mutex<BTreeMap<OwnedServerName, (Server, bool)>>,
}

impl Network {
    /// Switches a server's network on or off: off, it neither reaches nor is reached.
    pub fn set_online(&self, server: &Server, online: bool) {
        let mut servers = self.servers.lock().unwrap();
        servers.get_mut(server.server_name()).unwrap().1 = online;
    }
}

struct Link {
    network: Arc<Network>,
    from: OwnedServerName,
}

impl Federation for Link {
    fn request(
        &self,
        destination: OwnedServerName,
        request: http::Request<Vec<u8>>,
    ) -> BoxFuture<'static, Result<http::Response<Vec<u8>>, ServerError>> {
        let network = self.network.clone();
        let from = self.from.clone();
        Box::pin(async move {
            let target = {
                let servers = network.servers.lock().unwrap();
                let from_online = servers.get(&from).is_some_and(|(_, online)| *online);
                match servers.get(&destination) {
                    Some((server, true)) if from_online => Some(server.clone()),
                    _ => None,
                }
            };
            match target {
                Some(server) => Ok(server.handle_from_peer(&from, request).await),
                None => Err(ServerError::Unreachable(format!("{destination} is offline"))),
            }
        })
    }

    fn peers(&self) -> BoxFuture<'static, Vec<OwnedServerName>> {
        let network = self.network.clone();
        Box::pin(async move {
            let servers = network.servers.lock().unwrap();
            servers
                .iter()
                .filter(|(_, (_, online))| *online)
                .map(|(name, _)| name.clone())
                .collect()
        })
    }
}

/// `count` servers with open registration, online and reaching each other.
pub async fn network(count: usize) -> (Arc<Network>, Vec<Server>) {
    let network = Arc::new(Network::default());
    let mut servers = Vec::new();
    for _ in 0..count {
        let server = super::server().await;
        network
            .servers
            .lock()
            .unwrap()
            .insert(server.server_name().to_owned(), (server.clone(), true));
        let link = Link { network: network.clone(), from: server.server_name().to_owned() };
        server.set_federation(Arc::new(link)).await.unwrap();
        servers.push(server);
    }
    (network, servers)
}
