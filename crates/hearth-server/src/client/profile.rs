//! User profiles: display name and avatar, propagated to the member events of joined rooms
//! ([spec](https://spec.matrix.org/v1.16/client-server-api/#profiles)).

use hearth_core::ruma::{
    UserId,
    api::client::profile::{
        ProfileFieldName, ProfileFieldValue, delete_profile_field, get_profile, get_profile_field,
        set_profile_field,
    },
};
use hearth_store::UserRecord;
use serde_json::json;

use crate::{Authed, Server, ServerError, error::Result};

impl Server {
    /// The account behind a profile; remote and unknown users are not found.
    pub(crate) async fn profile_user(&self, user_id: &UserId) -> Result<UserRecord> {
        let not_found = || ServerError::NotFound("profile not found".into());
        if user_id.server_name() != self.server_name() {
            return Err(not_found());
        }
        self.store().user(user_id).await?.filter(|user| !user.deactivated).ok_or_else(not_found)
    }
}

/// `GET /_matrix/client/v3/profile/{userId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3profileuserid)).
pub(crate) async fn get_profile(
    server: Server,
    request: get_profile::v3::Request,
) -> Result<get_profile::v3::Response> {
    let user = server.profile_user(&request.user_id).await?;
    let mut response = get_profile::v3::Response::new();
    if let Some(name) = user.displayname {
        response.set("displayname".into(), json!(name));
    }
    if let Some(avatar) = user.avatar_url {
        response.set("avatar_url".into(), json!(avatar));
    }
    Ok(response)
}

/// `GET /_matrix/client/v3/profile/{userId}/{keyName}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3profileuseridkeyname)):
/// `displayname` and `avatar_url`, the fields this server stores.
pub(crate) async fn get_profile_field(
    server: Server,
    request: get_profile_field::v3::Request,
) -> Result<get_profile_field::v3::Response> {
    let user = server.profile_user(&request.user_id).await?;
    let value = match request.field {
        ProfileFieldName::DisplayName => user.displayname.map(ProfileFieldValue::DisplayName),
        ProfileFieldName::AvatarUrl => {
            user.avatar_url.map(|url| ProfileFieldValue::AvatarUrl(url.into()))
        }
        _ => None,
    };
    value
        .map(get_profile_field::v3::Response::new)
        .ok_or_else(|| ServerError::NotFound(format!("{} is not set", request.field)))
}

/// `PUT /_matrix/client/v3/profile/{userId}/{keyName}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3profileuseridkeyname)):
/// sets `displayname` or `avatar_url` and sends an updated join event into every joined room.
pub(crate) async fn set_profile_field(
    server: Server,
    authed: Authed,
    request: set_profile_field::v3::Request,
) -> Result<set_profile_field::v3::Response> {
    let (field, value) = match request.value {
        ProfileFieldValue::DisplayName(name) => (ProfileFieldName::DisplayName, name),
        ProfileFieldValue::AvatarUrl(url) => (ProfileFieldName::AvatarUrl, url.to_string()),
        other => (other.field_name(), String::new()),
    };
    let value = (!value.is_empty()).then_some(value);
    server.change_profile(&authed, &request.user_id, &field, value).await?;
    Ok(set_profile_field::v3::Response::new())
}

/// `DELETE /_matrix/client/v3/profile/{userId}/{keyName}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#delete_matrixclientv3profileuseridkeyname)):
/// clears `displayname` or `avatar_url`, propagated like a change.
pub(crate) async fn delete_profile_field(
    server: Server,
    authed: Authed,
    request: delete_profile_field::v3::Request,
) -> Result<delete_profile_field::v3::Response> {
    server.change_profile(&authed, &request.user_id, &request.field, None).await?;
    Ok(delete_profile_field::v3::Response::new())
}

impl Server {
    /// Sets (or with `None` clears) a stored profile field of the authenticated user, then sends
    /// an updated join event into each room they are in.
    async fn change_profile(
        &self,
        authed: &Authed,
        user_id: &UserId,
        field: &ProfileFieldName,
        value: Option<String>,
    ) -> Result<()> {
        if authed.user_id != user_id {
            return Err(ServerError::Forbidden("you can only change your own profile".into()));
        }
        {
            let _guard = self.write_lock().await;
            let mut user = self.profile_user(user_id).await?;
            let slot = match field {
                ProfileFieldName::DisplayName => &mut user.displayname,
                ProfileFieldName::AvatarUrl => &mut user.avatar_url,
                other => {
                    return Err(ServerError::Forbidden(format!(
                        "this server stores only displayname and avatar_url, not {other}"
                    )));
                }
            };
            if *slot == value {
                return Ok(());
            }
            *slot = value;
            let mut txn = self.store().transaction();
            txn.put_user(user_id, &user)?;
            self.store().commit(txn).await?;
        }
        for (room_id, record) in self.store().memberships(user_id).await? {
            if record.membership == "join" {
                self.set_membership(user_id, &room_id, user_id, "join", None).await?;
            }
        }
        Ok(())
    }
}
