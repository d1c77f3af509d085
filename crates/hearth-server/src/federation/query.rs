//! Queries other servers make about this one's users and rooms.

use hearth_core::ruma::{
    OwnedServerName, api::federation::query::get_profile_information, profile::ProfileFieldName,
};
use serde_json::json;

use crate::{Server, ServerError, error::Result};

/// `GET /_matrix/federation/v1/query/profile`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1queryprofile)):
/// a local user's display name and avatar, or the one `field` asked for.
pub(crate) async fn get_profile_information(
    server: Server,
    _origin: OwnedServerName,
    request: get_profile_information::v1::Request,
) -> Result<get_profile_information::v1::Response> {
    if request.user_id.server_name() != server.server_name() {
        return Err(ServerError::InvalidParam(format!(
            "{} is not a user of this server",
            request.user_id
        )));
    }
    let user = server.profile_user(&request.user_id).await?;
    let wants =
        |field: ProfileFieldName| request.field.as_ref().is_none_or(|asked| *asked == field);
    let mut response = get_profile_information::v1::Response::new();
    if let Some(name) = user.displayname.filter(|_| wants(ProfileFieldName::DisplayName)) {
        response.set("displayname".into(), json!(name));
    }
    if let Some(avatar) = user.avatar_url.filter(|_| wants(ProfileFieldName::AvatarUrl)) {
        response.set("avatar_url".into(), json!(avatar));
    }
    Ok(response)
}
