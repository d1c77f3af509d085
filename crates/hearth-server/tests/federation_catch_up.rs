//! A server that comes back online gets what it missed at once: it announces itself
//! (`Server::network_online`) to the servers it shares rooms with, and a server retries its queue
//! for any server that reaches it (`Server::handle_from_peer`), instead of at the end of a backoff
//! that grows to minutes. Servers reach each other in memory, through `handle_from_peer` as the
//! libp2p hosts do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{User, enc, register};
use hearth_core::{platform::BoxFuture, ruma::OwnedServerName};
use hearth_server::{Federation, Server, ServerError};
use serde_json::{Value, json};
use tokio::time::Instant;

/// Servers that reach each other in memory; any of them can be switched off.
#[derive(Default)]
struct Network {
    servers: Mutex<BTreeMap<OwnedServerName, (Server, bool)>>,
}

impl Network {
    fn set_online(&self, server: &Server, online: bool) {
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
}

async fn network(count: usize) -> (Arc<Network>, Vec<Server>) {
    let network = Arc::new(Network::default());
    let mut servers = Vec::new();
    for _ in 0..count {
        let server = common::server().await;
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

/// Polls `user`'s sync until `found` says yes, for at most `bound`.
async fn within(
    bound: Duration,
    server: &Server,
    user: &User,
    what: &str,
    found: impl Fn(&Value) -> bool,
) {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if found(&user.sync(server, None, "").await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} did not see {what} within {bound:?}", user.user_id);
}

fn timeline_has(sync: &Value, room_id: &str, body: &str) -> bool {
    sync["rooms"]["join"][room_id]["timeline"]["events"]
        .as_array()
        .is_some_and(|events| events.iter().any(|event| event["content"]["body"] == body))
}

#[tokio::test]
async fn a_server_back_online_is_sent_what_it_missed_at_once() {
    let (network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let alice = register(a, "alice").await;
    let bob = register(b, "bob").await;
    let room_id = alice.create_room(a, json!({})).await;
    let invite = format!("/_matrix/client/v3/rooms/{}/invite", enc(&room_id));
    alice.post(a, &invite, json!({ "user_id": bob.user_id })).await.ok();
    let wait = Duration::from_secs(5);
    within(wait, b, &bob, "the invite", |sync| !sync["rooms"]["invite"][&room_id].is_null()).await;
    bob.post(b, &format!("/_matrix/client/v3/join/{}", enc(&room_id)), json!({})).await.ok();
    alice.send_text(a, &room_id, "before").await;
    within(wait, b, &bob, "the first message", |sync| timeline_has(sync, &room_id, "before")).await;

    network.set_online(b, false);
    alice.send_text(a, &room_id, "while b was away").await;
    // Four failed attempts (at once, then 0.5 s, 1 s and 2 s apart, ±20%): the next is about
    // 4 s away, at least 3.2 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.destination_status(b.server_name()).failures < 4 {
        assert!(Instant::now() < deadline, "a's sender never failed four times");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    network.set_online(b, true);
    b.network_online().await.unwrap();
    // Well inside the backoff: b's announcement woke a's queue for it.
    within(Duration::from_millis(1500), b, &bob, "the message it missed", |sync| {
        timeline_has(sync, &room_id, "while b was away")
    })
    .await;
    assert_eq!(a.destination_status(b.server_name()).failures, 0);
}
