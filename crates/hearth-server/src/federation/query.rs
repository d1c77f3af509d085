//! Queries other servers make about this one's users and rooms, and its room directory.

use hearth_core::ruma::{
    OwnedServerName, UInt,
    api::federation::{
        directory::{get_public_rooms, get_public_rooms_filtered},
        query::{get_profile_information, get_room_information},
    },
    directory::Filter,
    profile::ProfileFieldName,
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

/// `GET /_matrix/federation/v1/query/directory`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1querydirectory)):
/// the room one of this server's aliases names, and the servers to join it through (this one
/// first, then those of its joined members).
pub(crate) async fn get_room_information(
    server: Server,
    _origin: OwnedServerName,
    request: get_room_information::v1::Request,
) -> Result<get_room_information::v1::Response> {
    let (room_id, servers) = server.resolve_alias(&request.room_alias).await?;
    Ok(get_room_information::v1::Response::new(room_id, servers))
}

/// `GET /_matrix/federation/v1/publicRooms`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1publicrooms)):
/// this server's public room directory, as its clients see it.
pub(crate) async fn get_public_rooms(
    server: Server,
    _origin: OwnedServerName,
    request: get_public_rooms::v1::Request,
) -> Result<get_public_rooms::v1::Response> {
    let (chunk, next, prev, total) =
        server.public_rooms_page(request.limit, request.since.as_deref(), &Filter::new()).await?;
    let mut response = get_public_rooms::v1::Response::new();
    response.chunk = chunk;
    response.next_batch = next;
    response.prev_batch = prev;
    response.total_room_count_estimate = Some(UInt::new_saturating(total as u64));
    Ok(response)
}

/// `POST /_matrix/federation/v1/publicRooms`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#post_matrixfederationv1publicrooms)):
/// this server's public room directory with a filter, as its clients see it.
pub(crate) async fn get_public_rooms_filtered(
    server: Server,
    _origin: OwnedServerName,
    request: get_public_rooms_filtered::v1::Request,
) -> Result<get_public_rooms_filtered::v1::Response> {
    let (chunk, next, prev, total) =
        server.public_rooms_page(request.limit, request.since.as_deref(), &request.filter).await?;
    let mut response = get_public_rooms_filtered::v1::Response::new();
    response.chunk = chunk;
    response.next_batch = next;
    response.prev_batch = prev;
    response.total_room_count_estimate = Some(UInt::new_saturating(total as u64));
    Ok(response)
}
