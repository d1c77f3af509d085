//! Pushers ([spec](https://spec.matrix.org/v1.16/client-server-api/#push-notifications)).
//!
//! A user's pushers are kept in their global account data under the private type
//! [`PUSHERS`], so clients can register and list them. No push gateway is ever contacted:
//! the server has no outbound HTTP, so pushers are stored and never used.

use hearth_core::ruma::{
    UserId,
    api::client::push::{
        Pusher, PusherIds, get_pushers,
        set_pusher::{self, v3::PusherAction},
    },
};
use serde_json::{Value, json};

use crate::{Authed, Server, ServerError, error::Result};

/// The account data type holding a user's pushers (`{"pushers": [...]}`).
const PUSHERS: &str = "org.hearth.pushers";

impl Server {
    /// A user's pushers, as stored (unreadable entries are skipped).
    async fn pushers(&self, user_id: &UserId) -> Result<Vec<Pusher>> {
        let Some(record) = self.store().account_data(user_id.as_str(), None, PUSHERS).await? else {
            return Ok(Vec::new());
        };
        let content: Value = serde_json::from_str(record.content.get()).unwrap_or_default();
        let stored = content.get("pushers").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(stored.into_iter().filter_map(|pusher| serde_json::from_value(pusher).ok()).collect())
    }

    async fn save_pushers(&self, user_id: &UserId, pushers: &[Pusher]) -> Result<()> {
        let content = serde_json::value::to_raw_value(&json!({ "pushers": pushers }))
            .map_err(|error| ServerError::Internal(error.to_string()))?;
        self.put_account_data(user_id, None, PUSHERS, content).await
    }
}

fn same_ids(a: &PusherIds, b: &PusherIds) -> bool {
    a.app_id == b.app_id && a.pushkey == b.pushkey
}

/// `GET /_matrix/client/v3/pushers`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3pushers)).
pub(crate) async fn get_pushers(
    server: Server,
    authed: Authed,
    _request: get_pushers::v3::Request,
) -> Result<get_pushers::v3::Response> {
    Ok(get_pushers::v3::Response::new(server.pushers(&authed.user_id).await?))
}

/// `POST /_matrix/client/v3/pushers/set`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3pushersset)):
/// adds or replaces the user's pusher with the same `app_id` and `pushkey`, or deletes it
/// when `kind` is `null`. `append: false` replaces only the user's own pusher with those IDs
/// (pushers of other users are not looked at).
pub(crate) async fn set_pusher(
    server: Server,
    authed: Authed,
    request: set_pusher::v3::Request,
) -> Result<set_pusher::v3::Response> {
    let mut pushers = server.pushers(&authed.user_id).await?;
    match request.action {
        PusherAction::Post(data) => {
            let pusher = data.pusher;
            match pushers.iter_mut().find(|existing| same_ids(&existing.ids, &pusher.ids)) {
                Some(existing) => *existing = pusher,
                None => pushers.push(pusher),
            }
        }
        PusherAction::Delete(ids) => pushers.retain(|existing| !same_ids(&existing.ids, &ids)),
        _ => return Err(ServerError::BadJson("unknown pusher action".into())),
    }
    server.save_pushers(&authed.user_id, &pushers).await?;
    Ok(set_pusher::v3::Response::new())
}
