//! Room membership: join, invite, leave, forget, kick, ban, unban, joined rooms.

use hearth_core::ruma::{
    OwnedEventId, OwnedRoomId, OwnedServerName, RoomId, RoomOrAliasId, UserId,
    api::client::membership::{
        ban_user, forget_room, invite_user, join_room_by_id, join_room_by_id_or_alias,
        joined_rooms, kick_user, leave_room, unban_user,
    },
    events::TimelineEventType,
};
use hearth_store::UserRecord;
use serde_json::json;

use crate::{Authed, Server, ServerError, client::room::object, error::Result, rooms::NewEvent};

/// The content of a user's own join: clients show the member's name and avatar from it.
pub(crate) fn join_content(user: &UserRecord) -> serde_json::Value {
    let mut content = json!({ "membership": "join" });
    if let Some(name) = &user.displayname {
        content["displayname"] = json!(name);
    }
    if let Some(avatar) = &user.avatar_url {
        content["avatar_url"] = json!(avatar);
    }
    content
}

impl Server {
    /// How many users are joined to a room now.
    pub(crate) async fn joined_member_count(&self, room_id: &RoomId) -> Result<usize> {
        let members = self.store().room_members(room_id).await?;
        Ok(members.iter().filter(|(_, membership)| membership == "join").count())
    }

    /// Sends an `m.room.member` event by `sender` about `target`. A join carries the joining
    /// user's profile, as clients display it from the member event.
    pub(crate) async fn set_membership(
        &self,
        sender: &UserId,
        room_id: &RoomId,
        target: &UserId,
        membership: &str,
        reason: Option<&str>,
    ) -> Result<OwnedEventId> {
        let mut content = json!({ "membership": membership });
        if membership == "join"
            && let Some(user) = self.store().user(target).await?
        {
            content = join_content(&user);
        }
        if let Some(reason) = reason {
            content["reason"] = json!(reason);
        }
        let event =
            NewEvent::state(TimelineEventType::RoomMember, target.as_str(), object(content)?);
        let ids = self.send_events(room_id, sender, vec![event]).await?;
        ids.into_iter().next().ok_or_else(|| ServerError::Internal("no event sent".into()))
    }

    /// Joins a room: with a local event when a user of this server is in it, otherwise
    /// through another server (`via`, or the server of whoever invited the user).
    async fn join(
        &self,
        authed: &Authed,
        room_id: &RoomId,
        reason: Option<&str>,
        via: &[OwnedServerName],
    ) -> Result<()> {
        let joined_here = self.store().room(room_id).await?.is_some()
            && self
                .joined_members(room_id)
                .await?
                .iter()
                .any(|member| member.server_name() == self.server_name());
        if !joined_here {
            let candidates =
                crate::federation::join_candidates(self, &authed.user_id, room_id, via).await?;
            if candidates.is_empty() {
                return Err(ServerError::NotFound(format!(
                    "this server is not in room {room_id} and knows no server to join it through"
                )));
            }
            return self.join_remote_room(&authed.user_id, room_id, &candidates).await;
        }
        let current = self.store().membership(&authed.user_id, room_id).await?;
        if current.is_some_and(|record| record.membership == "join") {
            return Ok(());
        }
        self.set_membership(&authed.user_id, room_id, &authed.user_id, "join", reason).await?;
        Ok(())
    }

    /// The room an ID or a local alias names.
    pub(crate) async fn resolve_room(&self, room: &RoomOrAliasId) -> Result<OwnedRoomId> {
        match <&RoomId>::try_from(room) {
            Ok(room_id) => Ok(room_id.to_owned()),
            Err(alias) => self
                .store()
                .alias(alias.as_str())
                .await?
                .map(|record| record.room_id)
                .ok_or_else(|| ServerError::NotFound(format!("room alias {alias} not found"))),
        }
    }
}

/// `POST /_matrix/client/v3/rooms/{roomId}/join`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidjoin)).
pub(crate) async fn join_room_by_id(
    server: Server,
    authed: Authed,
    request: join_room_by_id::v3::Request,
) -> Result<join_room_by_id::v3::Response> {
    server.join(&authed, &request.room_id, request.reason.as_deref(), &[]).await?;
    Ok(join_room_by_id::v3::Response::new(request.room_id))
}

/// `POST /_matrix/client/v3/join/{roomIdOrAlias}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3joinroomidoralias)).
pub(crate) async fn join_room_by_id_or_alias(
    server: Server,
    authed: Authed,
    request: join_room_by_id_or_alias::v3::Request,
) -> Result<join_room_by_id_or_alias::v3::Response> {
    let room_id = server.resolve_room(&request.room_id_or_alias).await?;
    let via = request.via.clone();
    server.join(&authed, &room_id, request.reason.as_deref(), &via).await?;
    Ok(join_room_by_id_or_alias::v3::Response::new(room_id))
}

/// `POST /_matrix/client/v3/rooms/{roomId}/invite`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidinvite)).
pub(crate) async fn invite_user(
    server: Server,
    authed: Authed,
    request: invite_user::v3::Request,
) -> Result<invite_user::v3::Response> {
    let invite_user::v3::InvitationRecipient::UserId(invitee) = &request.recipient else {
        return Err(ServerError::Forbidden("third-party invites are not supported".into()));
    };
    let user_id = &invitee.user_id;
    let reason = invitee.reason.as_deref();
    if user_id.server_name() == server.server_name()
        && server.store().user(user_id).await?.is_none()
    {
        return Err(ServerError::NotFound(format!("no such user {user_id}")));
    }
    let current = server.store().membership(user_id, &request.room_id).await?;
    if current.as_ref().is_some_and(|record| record.membership == "join") {
        return Err(ServerError::Forbidden(format!("{user_id} is already in the room")));
    }
    if user_id.server_name() != server.server_name() {
        server
            .invite_remote_user(&authed.user_id, &request.room_id, user_id, reason, false)
            .await?;
        return Ok(invite_user::v3::Response::new());
    }
    server.set_membership(&authed.user_id, &request.room_id, user_id, "invite", reason).await?;
    Ok(invite_user::v3::Response::new())
}

/// `POST /_matrix/client/v3/rooms/{roomId}/leave`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidleave)):
/// also rejects an invite.
pub(crate) async fn leave_room(
    server: Server,
    authed: Authed,
    request: leave_room::v3::Request,
) -> Result<leave_room::v3::Response> {
    let current = server.store().membership(&authed.user_id, &request.room_id).await?;
    match current.map(|record| record.membership) {
        None => return Err(ServerError::NotFound(format!("not a member of {}", request.room_id))),
        Some(membership) if membership == "leave" => return Ok(leave_room::v3::Response::new()),
        Some(membership)
            if membership == "invite" && !server.knows_room(&request.room_id).await? =>
        {
            server
                .decline_remote_invite(&authed.user_id, &request.room_id, request.reason.as_deref())
                .await?;
            return Ok(leave_room::v3::Response::new());
        }
        Some(_) => {}
    }
    server
        .set_membership(
            &authed.user_id,
            &request.room_id,
            &authed.user_id,
            "leave",
            request.reason.as_deref(),
        )
        .await?;
    Ok(leave_room::v3::Response::new())
}

/// `POST /_matrix/client/v3/rooms/{roomId}/forget`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidforget)).
pub(crate) async fn forget_room(
    server: Server,
    authed: Authed,
    request: forget_room::v3::Request,
) -> Result<forget_room::v3::Response> {
    let _guard = server.write_lock().await;
    let Some(mut record) = server.store().membership(&authed.user_id, &request.room_id).await?
    else {
        return Err(ServerError::NotFound(format!("not a member of {}", request.room_id)));
    };
    if !matches!(record.membership.as_str(), "leave" | "ban") {
        return Err(ServerError::Unknown("leave the room before forgetting it".into()));
    }
    record.forgotten = true;
    let mut txn = server.store().transaction();
    txn.set_membership(&request.room_id, &authed.user_id, &record)?;
    server.store().commit(txn).await?;
    Ok(forget_room::v3::Response::new())
}

/// `POST /_matrix/client/v3/rooms/{roomId}/kick`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidkick)).
pub(crate) async fn kick_user(
    server: Server,
    authed: Authed,
    request: kick_user::v3::Request,
) -> Result<kick_user::v3::Response> {
    let (room_id, user_id, reason) =
        (&request.room_id, &request.user_id, request.reason.as_deref());
    server
        .change_member(&authed, room_id, user_id, &["join", "invite", "knock"], "leave", reason)
        .await?;
    Ok(kick_user::v3::Response::new())
}

/// `POST /_matrix/client/v3/rooms/{roomId}/ban`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidban)).
pub(crate) async fn ban_user(
    server: Server,
    authed: Authed,
    request: ban_user::v3::Request,
) -> Result<ban_user::v3::Response> {
    let (room_id, user_id, reason) =
        (&request.room_id, &request.user_id, request.reason.as_deref());
    server.change_member(&authed, room_id, user_id, &[], "ban", reason).await?;
    Ok(ban_user::v3::Response::new())
}

/// `POST /_matrix/client/v3/rooms/{roomId}/unban`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidunban)).
pub(crate) async fn unban_user(
    server: Server,
    authed: Authed,
    request: unban_user::v3::Request,
) -> Result<unban_user::v3::Response> {
    let (room_id, user_id, reason) =
        (&request.room_id, &request.user_id, request.reason.as_deref());
    server.change_member(&authed, room_id, user_id, &["ban"], "leave", reason).await?;
    Ok(unban_user::v3::Response::new())
}

impl Server {
    /// Sets someone else's membership (kick, ban, unban) if their current one is among `from`
    /// (any, when empty); the auth rules then check the sender's power.
    async fn change_member(
        &self,
        authed: &Authed,
        room_id: &RoomId,
        user_id: &UserId,
        from: &[&str],
        to: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        if !from.is_empty() {
            let current = self.store().membership(user_id, room_id).await?;
            if current.is_none_or(|record| !from.contains(&record.membership.as_str())) {
                return Err(ServerError::Forbidden(format!(
                    "{user_id} is not {}",
                    from.join(" or ")
                )));
            }
        }
        self.set_membership(&authed.user_id, room_id, user_id, to, reason).await?;
        Ok(())
    }
}

/// `GET /_matrix/client/v3/joined_rooms`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3joined_rooms)).
pub(crate) async fn joined_rooms(
    server: Server,
    authed: Authed,
    _request: joined_rooms::v3::Request,
) -> Result<joined_rooms::v3::Response> {
    let rooms = server.store().memberships(&authed.user_id).await?;
    Ok(joined_rooms::v3::Response::new(
        rooms
            .into_iter()
            .filter(|(_, record)| record.membership == "join")
            .map(|(room_id, _)| room_id)
            .collect(),
    ))
}
