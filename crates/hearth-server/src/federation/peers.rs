//! Peer discovery for users: Hearth's own endpoints (the Matrix spec has no notion of servers
//! that come and go). A client asks its server which homeservers are online at the relays now
//! and who their public users are, to offer "start a chat with …"; each server answers for its
//! own users over federation.
//!
//! A user is listed unless they opted out with the account data event
//! `org.hearth.discoverable` `{"discoverable": false}`.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures_util::future::{Either, join_all, select};
use hearth_core::ruma::{OwnedServerName, ServerName};
use http::Method;
use serde_json::{Value, json};

use crate::{Server, ServerError, error::Result, lock, platform::now_ms, router::Router};

/// The account data event a user opts out of discovery with.
const DISCOVERABLE: &str = "org.hearth.discoverable";
/// At most this many peers are asked for their users per listing.
const MAX_PEERS: usize = 100;
/// At most this many users are listed per server.
const MAX_USERS: usize = 50;
/// How long a peer's answer is reused.
const USERS_TTL_MS: u64 = 15_000;
/// How long a listing waits for a peer's users before listing it without them.
const USERS_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn routes(router: &mut Router) {
    router.raw(
        Method::GET,
        "/_hearth/client/v1/peers",
        Arc::new(|server, incoming| {
            Box::pin(async move {
                server.authenticate(&incoming.request).await?;
                json_response(&server.list_peers().await?)
            })
        }),
    );
    router.raw(
        Method::GET,
        "/_hearth/federation/v1/public_users",
        Arc::new(|server, incoming| {
            Box::pin(async move {
                server.authenticate_server(&incoming.request)?;
                json_response(&json!({ "users": server.public_users().await? }))
            })
        }),
    );
}

/// Peers' public users as last fetched: server → (when, users).
#[derive(Default)]
pub(crate) struct PeerUsers(BTreeMap<OwnedServerName, (u64, Vec<Value>)>);

impl Server {
    /// `GET /_hearth/client/v1/peers`: `{"peers": [{"server_name", "users": [{"user_id",
    /// "displayname", "avatar_url"}]}]}`, the servers registered at the relays now (not this
    /// one), with their public users where they answered in time.
    async fn list_peers(&self) -> Result<Value> {
        let mut peers = self.federation().peers().await;
        peers.retain(|peer| peer != self.server_name());
        peers.truncate(MAX_PEERS);
        let listed = join_all(peers.into_iter().map(|peer| {
            let server = self.clone();
            async move {
                let users = server.users_of(&peer).await;
                json!({ "server_name": peer, "users": users.unwrap_or_default() })
            }
        }))
        .await;
        {
            // Forget servers that are no longer online.
            let mut cache = lock(&self.0.peer_users);
            let online: Vec<&str> =
                listed.iter().filter_map(|peer| peer["server_name"].as_str()).collect();
            cache.0.retain(|name, _| online.contains(&name.as_str()));
        }
        Ok(json!({ "peers": listed }))
    }

    /// A peer's public users (cached for 15 seconds); `None` if it did not answer in time.
    async fn users_of(&self, peer: &ServerName) -> Option<Vec<Value>> {
        if let Some((fetched, users)) = lock(&self.0.peer_users).0.get(peer)
            && now_ms().saturating_sub(*fetched) < USERS_TTL_MS
        {
            return Some(users.clone());
        }
        let request = self.raw_federation_request(
            peer,
            Method::GET,
            "/_hearth/federation/v1/public_users",
            None,
        );
        let timeout = self.runtime().sleep(USERS_TIMEOUT);
        let response = match select(Box::pin(request), timeout).await {
            Either::Left((Ok(response), _)) if response.status().is_success() => response,
            _ => return None,
        };
        let body: Value = serde_json::from_slice(response.body()).ok()?;
        let users: Vec<Value> = body["users"]
            .as_array()?
            .iter()
            .filter(|user| {
                // A server speaks only for its own users.
                user["user_id"]
                    .as_str()
                    .and_then(|id| hearth_core::ruma::UserId::parse(id).ok())
                    .is_some_and(|id| id.server_name() == peer)
            })
            .take(MAX_USERS)
            .map(|user| {
                json!({
                    "user_id": user["user_id"],
                    "displayname": user["displayname"].as_str(),
                    "avatar_url": user["avatar_url"].as_str(),
                })
            })
            .collect();
        lock(&self.0.peer_users).0.insert(peer.to_owned(), (now_ms(), users.clone()));
        Some(users)
    }

    /// `GET /_hearth/federation/v1/public_users`: this server's users who have not opted out.
    async fn public_users(&self) -> Result<Vec<Value>> {
        let mut users = Vec::new();
        for (user_id, record) in self.store().users(MAX_USERS * 4).await? {
            if record.deactivated || users.len() == MAX_USERS {
                continue;
            }
            let opted_out = self
                .store()
                .account_data(&user_id, None, DISCOVERABLE)
                .await?
                .and_then(|data| serde_json::from_str::<Value>(data.content.get()).ok())
                .is_some_and(|content| content["discoverable"] == json!(false));
            if !opted_out {
                users.push(json!({
                    "user_id": user_id,
                    "displayname": record.displayname,
                    "avatar_url": record.avatar_url,
                }));
            }
        }
        Ok(users)
    }
}

pub(super) fn json_response(value: &Value) -> Result<http::Response<Vec<u8>>> {
    let body =
        serde_json::to_vec(value).map_err(|error| ServerError::Internal(error.to_string()))?;
    Ok(http::Response::new(body))
}
