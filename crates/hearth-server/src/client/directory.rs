//! Room aliases and the public room directory
//! ([spec](https://spec.matrix.org/v1.16/client-server-api/#room-aliases),
//! [spec](https://spec.matrix.org/v1.16/client-server-api/#listing-rooms)).

use hearth_core::ruma::{
    OwnedRoomId, OwnedServerName, RoomAliasId, RoomId, ServerName, UInt, UserId,
    api::client::{
        alias::{create_alias, delete_alias, get_alias},
        directory::{
            get_public_rooms, get_public_rooms_filtered, get_room_visibility, set_room_visibility,
        },
        room::{Visibility, aliases},
    },
    api::federation::directory as federation_directory,
    directory::{Filter, PublicRoomsChunk, PublicRoomsChunkInit, RoomTypeFilter},
    events::StateEventType,
    room::{JoinRuleKind, RoomType},
};
use hearth_store::AliasRecord;
use serde_json::Value;

use crate::{Authed, Server, ServerError, error::Result};

/// The most rooms one page of the directory holds.
const MAX_PAGE: usize = 100;

impl Server {
    /// The content of a room's current state event, if any.
    pub(crate) async fn state_content(
        &self,
        room_id: &RoomId,
        kind: StateEventType,
        state_key: &str,
    ) -> Result<Option<Value>> {
        Ok(self
            .state_event(room_id, &kind, state_key)
            .await?
            .and_then(|pdu| serde_json::from_str(pdu.content().get()).ok()))
    }

    /// Whether `user_id` may send `m.room.canonical_alias`, the power the spec ties to managing
    /// a room's aliases and its directory listing.
    async fn may_manage_aliases(&self, room_id: &RoomId, user_id: &UserId) -> Result<bool> {
        let levels = self.power_levels(room_id).await?;
        let content = self.state_content(room_id, StateEventType::RoomPowerLevels, "").await?;
        let needed = match &content {
            Some(content) => content
                .get("events")
                .and_then(|events| events.get("m.room.canonical_alias"))
                .or_else(|| content.get("state_default"))
                .and_then(Value::as_i64)
                .unwrap_or(50),
            None => 0,
        };
        Ok(levels.user_level(user_id) >= needed)
    }

    /// The directory entry of a room, from its current state.
    pub(crate) async fn public_rooms_chunk(&self, room_id: &RoomId) -> Result<PublicRoomsChunk> {
        let text = |content: &Option<Value>, field: &str| {
            content
                .as_ref()
                .and_then(|content| content.get(field))
                .and_then(Value::as_str)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        let name = self.state_content(room_id, StateEventType::RoomName, "").await?;
        let topic = self.state_content(room_id, StateEventType::RoomTopic, "").await?;
        let alias = self.state_content(room_id, StateEventType::RoomCanonicalAlias, "").await?;
        let avatar = self.state_content(room_id, StateEventType::RoomAvatar, "").await?;
        let join_rules = self.state_content(room_id, StateEventType::RoomJoinRules, "").await?;
        let history =
            self.state_content(room_id, StateEventType::RoomHistoryVisibility, "").await?;
        let guests = self.state_content(room_id, StateEventType::RoomGuestAccess, "").await?;
        let create = self.state_content(room_id, StateEventType::RoomCreate, "").await?;
        let joined = self.joined_member_count(room_id).await?;
        let mut chunk = PublicRoomsChunk::from(PublicRoomsChunkInit {
            num_joined_members: UInt::new_saturating(joined as u64),
            room_id: room_id.to_owned(),
            world_readable: text(&history, "history_visibility").as_deref()
                == Some("world_readable"),
            guest_can_join: text(&guests, "guest_access").as_deref() == Some("can_join"),
        });
        chunk.name = text(&name, "name");
        chunk.topic = text(&topic, "topic");
        chunk.canonical_alias = text(&alias, "alias").and_then(|alias| alias.try_into().ok());
        chunk.avatar_url = text(&avatar, "url").map(Into::into);
        chunk.join_rule = JoinRuleKind::from(
            text(&join_rules, "join_rule").unwrap_or_else(|| "invite".to_owned()).as_str(),
        );
        chunk.room_type = text(&create, "type").map(|kind| RoomType::from(kind.as_str()));
        Ok(chunk)
    }

    /// A page of the published rooms matching `filter`: most joined members first (for the
    /// client and the federation `publicRooms` alike).
    pub(crate) async fn public_rooms_page(
        &self,
        limit: Option<UInt>,
        since: Option<&str>,
        filter: &Filter,
    ) -> Result<(Vec<PublicRoomsChunk>, Option<String>, Option<String>, usize)> {
        let term = filter.generic_search_term.as_deref().map(str::to_lowercase);
        let mut rooms = Vec::new();
        for room_id in self.store().public_rooms().await? {
            let chunk = self.public_rooms_chunk(&room_id).await?;
            if !filter.room_types.is_empty()
                && !filter.room_types.contains(&RoomTypeFilter::from(chunk.room_type.clone()))
            {
                continue;
            }
            if let Some(term) = &term {
                let fields = [
                    chunk.name.clone(),
                    chunk.topic.clone(),
                    chunk.canonical_alias.as_ref().map(ToString::to_string),
                ];
                if !fields.iter().flatten().any(|field| field.to_lowercase().contains(term)) {
                    continue;
                }
            }
            rooms.push(chunk);
        }
        rooms.sort_by(|a, b| {
            b.num_joined_members.cmp(&a.num_joined_members).then_with(|| a.room_id.cmp(&b.room_id))
        });
        let total = rooms.len();
        let start = match since {
            Some(since) => since
                .parse::<usize>()
                .map_err(|_| ServerError::InvalidParam("unknown pagination token".into()))?,
            None => 0,
        }
        .min(total);
        let limit = limit
            .map_or(MAX_PAGE, |limit| usize::try_from(u64::from(limit)).unwrap_or(MAX_PAGE))
            .clamp(1, MAX_PAGE);
        let end = start.saturating_add(limit).min(total);
        let next = (end < total).then(|| end.to_string());
        let prev = (start > 0).then(|| start.saturating_sub(limit).to_string());
        Ok((rooms.drain(start..end).collect(), next, prev, total))
    }

    /// The room an alias of this server names, with the servers that can help others join it
    /// (for the client and the federation directory query alike); `M_NOT_FOUND` when unknown.
    pub(crate) async fn resolve_alias(
        &self,
        alias: &RoomAliasId,
    ) -> Result<(OwnedRoomId, Vec<OwnedServerName>)> {
        let record = self
            .store()
            .alias(alias.as_str())
            .await?
            .ok_or_else(|| ServerError::NotFound(format!("no room has alias {alias}")))?;
        let servers = self.room_servers(&record.room_id).await?;
        Ok((record.room_id, servers))
    }

    /// The servers that can help others join a room: this one first, then the servers of its
    /// joined members.
    async fn room_servers(&self, room_id: &RoomId) -> Result<Vec<OwnedServerName>> {
        let mut servers = vec![self.server_name().to_owned()];
        let mut others = std::collections::BTreeSet::new();
        for (member, membership) in self.store().room_members(room_id).await? {
            if membership == "join" && member.server_name() != self.server_name() {
                others.insert(member.server_name().to_owned());
            }
        }
        servers.extend(others);
        Ok(servers)
    }

    /// Refuses aliases of other servers.
    fn check_local_alias(&self, alias: &RoomAliasId) -> Result<()> {
        if alias.server_name() != self.server_name() {
            return Err(ServerError::InvalidParam(
                "this server only manages its own aliases".into(),
            ));
        }
        Ok(())
    }
}

/// `PUT /_matrix/client/v3/directory/room/{roomAlias}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3directoryroomroomalias)).
pub(crate) async fn create_alias(
    server: Server,
    authed: Authed,
    request: create_alias::v3::Request,
) -> Result<create_alias::v3::Response> {
    server.check_local_alias(&request.room_alias)?;
    server.current_state(&request.room_id).await?;
    let _guard = server.write_lock().await;
    if server.store().alias(request.room_alias.as_str()).await?.is_some() {
        return Err(ServerError::RoomInUse);
    }
    let mut txn = server.store().transaction();
    txn.put_alias(
        request.room_alias.as_str(),
        &AliasRecord { room_id: request.room_id.clone(), creator: authed.user_id.to_string() },
    )?;
    server.store().commit(txn).await?;
    Ok(create_alias::v3::Response::new())
}

/// `GET /_matrix/client/v3/directory/room/{roomAlias}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3directoryroomroomalias)).
pub(crate) async fn get_alias(
    server: Server,
    request: get_alias::v3::Request,
) -> Result<get_alias::v3::Response> {
    let (room_id, servers) = server.resolve_alias(&request.room_alias).await?;
    Ok(get_alias::v3::Response::new(room_id, servers))
}

/// `DELETE /_matrix/client/v3/directory/room/{roomAlias}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#delete_matrixclientv3directoryroomroomalias)):
/// by the alias's creator or a user who may change the room's canonical alias.
pub(crate) async fn delete_alias(
    server: Server,
    authed: Authed,
    request: delete_alias::v3::Request,
) -> Result<delete_alias::v3::Response> {
    let record = server.store().alias(request.room_alias.as_str()).await?.ok_or_else(|| {
        ServerError::NotFound(format!("no room has alias {}", request.room_alias))
    })?;
    if record.creator != authed.user_id.as_str()
        && !server.may_manage_aliases(&record.room_id, &authed.user_id).await?
    {
        return Err(ServerError::Forbidden("you may not remove this alias".into()));
    }
    let _guard = server.write_lock().await;
    let mut txn = server.store().transaction();
    txn.delete_alias(request.room_alias.as_str(), &record.room_id);
    server.store().commit(txn).await?;
    Ok(delete_alias::v3::Response::new())
}

/// `GET /_matrix/client/v3/rooms/{roomId}/aliases`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomidaliases)):
/// for members, or anyone when the room is world-readable.
pub(crate) async fn aliases(
    server: Server,
    authed: Authed,
    request: aliases::v3::Request,
) -> Result<aliases::v3::Response> {
    server.current_state(&request.room_id).await?;
    let member = server
        .store()
        .membership(&authed.user_id, &request.room_id)
        .await?
        .is_some_and(|record| record.membership == "join");
    let world_readable = server
        .state_content(&request.room_id, StateEventType::RoomHistoryVisibility, "")
        .await?
        .and_then(|content| content.get("history_visibility").cloned())
        == Some(Value::from("world_readable"));
    if !member && !world_readable {
        return Err(ServerError::Forbidden("you are not in this room".into()));
    }
    let aliases = server
        .store()
        .room_aliases(&request.room_id)
        .await?
        .into_iter()
        .filter_map(|alias| alias.try_into().ok())
        .collect();
    Ok(aliases::v3::Response::new(aliases))
}

/// `GET /_matrix/client/v3/directory/list/room/{roomId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3directorylistroomroomid)).
pub(crate) async fn get_room_visibility(
    server: Server,
    request: get_room_visibility::v3::Request,
) -> Result<get_room_visibility::v3::Response> {
    server.current_state(&request.room_id).await?;
    let visibility = if server.store().is_public(&request.room_id).await? {
        Visibility::Public
    } else {
        Visibility::Private
    };
    Ok(get_room_visibility::v3::Response::new(visibility))
}

/// `PUT /_matrix/client/v3/directory/list/room/{roomId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3directorylistroomroomid)):
/// by a user who may change the room's canonical alias.
pub(crate) async fn set_room_visibility(
    server: Server,
    authed: Authed,
    request: set_room_visibility::v3::Request,
) -> Result<set_room_visibility::v3::Response> {
    server.current_state(&request.room_id).await?;
    let joined = server
        .store()
        .membership(&authed.user_id, &request.room_id)
        .await?
        .is_some_and(|record| record.membership == "join");
    if !joined || !server.may_manage_aliases(&request.room_id, &authed.user_id).await? {
        return Err(ServerError::Forbidden("you may not publish this room".into()));
    }
    let public = match request.visibility {
        Visibility::Public => true,
        Visibility::Private => false,
        other => {
            return Err(ServerError::InvalidParam(format!("unknown visibility {other}")));
        }
    };
    let _guard = server.write_lock().await;
    let mut txn = server.store().transaction();
    txn.set_public(&request.room_id, public);
    server.store().commit(txn).await?;
    Ok(set_room_visibility::v3::Response::new())
}

/// `GET /_matrix/client/v3/publicRooms`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3publicrooms)).
pub(crate) async fn get_public_rooms(
    server: Server,
    request: get_public_rooms::v3::Request,
) -> Result<get_public_rooms::v3::Response> {
    if let Some(remote) = remote_directory(&server, request.server.as_deref()) {
        let (chunk, next, prev, total) =
            server.remote_public_rooms(remote, request.limit, request.since, Filter::new()).await?;
        let mut response = get_public_rooms::v3::Response::new(chunk);
        response.next_batch = next;
        response.prev_batch = prev;
        response.total_room_count_estimate = total;
        return Ok(response);
    }
    let (chunk, next, prev, total) =
        server.public_rooms_page(request.limit, request.since.as_deref(), &Filter::new()).await?;
    let mut response = get_public_rooms::v3::Response::new(chunk);
    response.next_batch = next;
    response.prev_batch = prev;
    response.total_room_count_estimate = Some(UInt::new_saturating(total as u64));
    Ok(response)
}

/// `POST /_matrix/client/v3/publicRooms`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3publicrooms)).
pub(crate) async fn get_public_rooms_filtered(
    server: Server,
    _authed: Authed,
    request: get_public_rooms_filtered::v3::Request,
) -> Result<get_public_rooms_filtered::v3::Response> {
    if let Some(remote) = remote_directory(&server, request.server.as_deref()) {
        let (chunk, next, prev, total) = server
            .remote_public_rooms(remote, request.limit, request.since, request.filter)
            .await?;
        let mut response = get_public_rooms_filtered::v3::Response::new();
        response.chunk = chunk;
        response.next_batch = next;
        response.prev_batch = prev;
        response.total_room_count_estimate = total;
        return Ok(response);
    }
    let (chunk, next, prev, total) =
        server.public_rooms_page(request.limit, request.since.as_deref(), &request.filter).await?;
    let mut response = get_public_rooms_filtered::v3::Response::new();
    response.chunk = chunk;
    response.next_batch = next;
    response.prev_batch = prev;
    response.total_room_count_estimate = Some(UInt::new_saturating(total as u64));
    Ok(response)
}

/// The other server whose directory a request names (`server`), if it is not this one.
fn remote_directory<'a>(server: &Server, name: Option<&'a ServerName>) -> Option<&'a ServerName> {
    name.filter(|name| *name != server.server_name())
}

/// A page of public rooms and its tokens: (chunk, next_batch, prev_batch, total estimate).
type RemotePage = (Vec<PublicRoomsChunk>, Option<String>, Option<String>, Option<UInt>);

impl Server {
    /// Another server's directory, asked over federation
    /// (`POST /_matrix/federation/v1/publicRooms`, which carries the filter); an unreachable
    /// server is an error the client sees (502).
    async fn remote_public_rooms(
        &self,
        remote: &ServerName,
        limit: Option<UInt>,
        since: Option<String>,
        filter: Filter,
    ) -> Result<RemotePage> {
        let mut request = federation_directory::get_public_rooms_filtered::v1::Request::new();
        request.limit = limit;
        request.since = since;
        request.filter = filter;
        let response = self.federation_request(remote, request).await?;
        Ok((
            response.chunk,
            response.next_batch,
            response.prev_batch,
            response.total_room_count_estimate,
        ))
    }
}
