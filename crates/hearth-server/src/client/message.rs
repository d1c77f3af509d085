//! Room events: sending, state, redaction, and reading the timeline (`/messages`, `/context`,
//! `/event`, `/members`, `/joined_members`).

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::Not as _,
};

use hearth_core::ruma::{
    EventId, OwnedEventId, OwnedUserId, RoomId, UserId,
    api::{
        Direction as ApiDirection,
        client::{
            context::get_context,
            filter::RoomEventFilter,
            membership::{get_member_events, joined_members},
            message::{get_message_events, send_message_event},
            redact::redact_event,
            room::get_room_event,
            state::{get_state_event_for_key, get_state_events, send_state_event},
        },
    },
    events::{StateEventType, TimelineEventType},
    serde::Raw,
};
use hearth_store::{Direction, TransactionOrigin};
use serde_json::{Value, json};

use crate::{
    Authed, Server, ServerError,
    client::{
        history::{coordinate_of, parse_position, position_token},
        room::object,
    },
    error::Result,
    filter,
    rooms::NewEvent,
};

/// At most this many events per `/messages` page, whatever the client asks.
const MAX_PAGE: usize = 1000;

/// Pagination and sync tokens name a position in the stream: "after every event at or before
/// this position". `/messages` accepts its own (`t12`) and sync's (`s12_3`).
pub(crate) fn parse_token(token: &str) -> Result<u64> {
    let digits = token.trim_start_matches(['s', 't']);
    let digits = digits.split('_').next().unwrap_or("");
    digits
        .parse()
        .map_err(|_| ServerError::InvalidParam(format!("invalid pagination token {token:?}")))
}

pub(crate) fn token(position: u64) -> String {
    format!("t{position}")
}

impl Server {
    /// The newest stream position `user_id` may read in a room: everything while joined, up to
    /// their departure once they left; `M_FORBIDDEN` for someone who never joined.
    pub(crate) async fn visible_until(&self, user_id: &UserId, room_id: &RoomId) -> Result<u64> {
        match self.store().membership(user_id, room_id).await? {
            Some(record) if record.membership == "join" => Ok(self.store().current_stream()),
            Some(record) if matches!(record.membership.as_str(), "leave" | "ban") => {
                // A left user whose leave ended an invite never saw the room.
                Ok(record.stream)
            }
            _ => Err(ServerError::Forbidden(format!("you are not in room {room_id}"))),
        }
    }

    /// Sends a message or state event from a client, idempotently per device and transaction
    /// ID: a retried transaction returns the event it first produced (checked by the group
    /// commit under the write lock, so concurrent retries cannot both send).
    async fn send_client_event(
        &self,
        authed: &Authed,
        room_id: &RoomId,
        mut event: NewEvent,
        txn_id: Option<&str>,
    ) -> Result<OwnedEventId> {
        if let Some(txn_id) = txn_id {
            event.transaction = Some(TransactionOrigin {
                device_id: authed.device_id.to_string(),
                txn_id: txn_id.to_owned(),
            });
        }
        let ids = self.send_events(room_id, &authed.user_id, vec![event]).await?;
        ids.into_iter().next().ok_or_else(|| ServerError::Internal("no event sent".into()))
    }
}

/// `PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3roomsroomidsendeventtypetxnid)).
pub(crate) async fn send_message_event(
    server: Server,
    authed: Authed,
    request: send_message_event::v3::Request,
) -> Result<send_message_event::v3::Response> {
    let content: Value = serde_json::from_str(request.body.json().get())
        .map_err(|error| ServerError::BadJson(error.to_string()))?;
    let kind = TimelineEventType::from(request.event_type.to_string());
    if kind == TimelineEventType::RoomRedaction {
        return Err(ServerError::BadJson("send redactions with PUT /redact".into()));
    }
    let event = NewEvent::new(kind, object(content)?);
    let event_id = server
        .send_client_event(&authed, &request.room_id, event, Some(request.txn_id.as_str()))
        .await?;
    Ok(send_message_event::v3::Response::new(event_id))
}

/// `PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3roomsroomidstateeventtypestatekey)).
pub(crate) async fn send_state_event(
    server: Server,
    authed: Authed,
    request: send_state_event::v3::Request,
) -> Result<send_state_event::v3::Response> {
    let content: Value = serde_json::from_str(request.body.json().get())
        .map_err(|error| ServerError::BadJson(error.to_string()))?;
    if request.event_type == StateEventType::RoomCanonicalAlias {
        check_canonical_alias(&server, &request.room_id, &content).await?;
    }
    if request.event_type == StateEventType::RoomMember {
        // Membership goes through its own endpoints, except profile updates of oneself.
        let own = request.state_key == authed.user_id.as_str();
        let is_join = content.get("membership").and_then(Value::as_str) == Some("join");
        if !(own && is_join) {
            return Err(ServerError::Forbidden(
                "change membership with the membership endpoints".into(),
            ));
        }
    }
    let kind = TimelineEventType::from(request.event_type.to_string());
    let event = NewEvent::state(kind, request.state_key, object(content)?);
    let event_id = server.send_client_event(&authed, &request.room_id, event, None).await?;
    Ok(send_state_event::v3::Response::new(event_id))
}

/// An `m.room.canonical_alias` may only name aliases that point to the room
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#mroomcanonical_alias)).
async fn check_canonical_alias(server: &Server, room_id: &RoomId, content: &Value) -> Result<()> {
    let mut aliases: Vec<&str> = content.get("alias").and_then(Value::as_str).into_iter().collect();
    if let Some(alt) = content.get("alt_aliases").and_then(Value::as_array) {
        aliases.extend(alt.iter().filter_map(Value::as_str));
    }
    for alias in aliases {
        let points_here =
            server.store().alias(alias).await?.is_some_and(|record| record.room_id == room_id);
        if !points_here {
            return Err(ServerError::BadAlias(format!("{alias} does not point to this room")));
        }
    }
    Ok(())
}

/// `GET /_matrix/client/v3/rooms/{roomId}/state`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomidstate)).
pub(crate) async fn get_state_events(
    server: Server,
    authed: Authed,
    request: get_state_events::v3::Request,
) -> Result<get_state_events::v3::Response> {
    let state = server.visible_state(&authed.user_id, &request.room_id).await?;
    let mut events = Vec::with_capacity(state.len());
    for event_id in state.values() {
        if let Some(stored) = server.store().event(event_id.as_str()).await? {
            events.push(server.raw_client_event(event_id, &stored, Some(&authed)).await?);
        }
    }
    Ok(get_state_events::v3::Response::new(events))
}

/// `GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomidstateeventtypestatekey)).
pub(crate) async fn get_state_event_for_key(
    server: Server,
    authed: Authed,
    request: get_state_event_for_key::v3::Request,
) -> Result<get_state_event_for_key::v3::Response> {
    let state = server.visible_state(&authed.user_id, &request.room_id).await?;
    let key = (request.event_type.clone(), request.state_key.clone());
    let not_found = || {
        ServerError::NotFound(format!(
            "no {} state with key {:?}",
            request.event_type, request.state_key
        ))
    };
    let event_id = state.get(&key).ok_or_else(not_found)?;
    let stored = server.store().event(event_id.as_str()).await?.ok_or_else(not_found)?;
    let event = server.client_event(event_id, &stored, Some(&authed)).await?;
    let body = match request.format {
        get_state_event_for_key::v3::StateEventFormat::Event => event,
        _ => event.get("content").cloned().unwrap_or_else(|| json!({})),
    };
    let raw = serde_json::value::to_raw_value(&body)
        .map_err(|error| ServerError::Internal(error.to_string()))?;
    Ok(get_state_event_for_key::v3::Response::new(raw))
}

impl Server {
    /// The room state a user may see: the current state while joined, the state when they left.
    async fn visible_state(
        &self,
        user_id: &UserId,
        room_id: &RoomId,
    ) -> Result<std::sync::Arc<hearth_core::StateMap>> {
        match self.store().membership(user_id, room_id).await? {
            Some(record) if record.membership == "join" => Ok(self.current_state(room_id).await?.1),
            Some(record) if matches!(record.membership.as_str(), "leave" | "ban") => {
                let stored = self
                    .store()
                    .event(record.event_id.as_str())
                    .await?
                    .ok_or_else(|| ServerError::Internal("membership event missing".into()))?;
                self.state_map(stored.state_after).await
            }
            _ => Err(ServerError::Forbidden(format!("you are not in room {room_id}"))),
        }
    }
}

/// `PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3roomsroomidredacteventidtxnid)):
/// one's own events, or anyone's with the power level `redact`.
pub(crate) async fn redact_event(
    server: Server,
    authed: Authed,
    request: redact_event::v3::Request,
) -> Result<redact_event::v3::Response> {
    let Some((target, stored)) = server.pdu(&request.event_id).await? else {
        return Err(ServerError::NotFound(format!("no event {}", request.event_id)));
    };
    if stored.room_id != request.room_id {
        return Err(ServerError::NotFound(format!("no event {} in this room", request.event_id)));
    }
    if target.sender() != authed.user_id {
        let power = server.power_levels(&request.room_id).await?;
        if power.user_level(&authed.user_id) < power.redact {
            return Err(ServerError::Forbidden(
                "your power level is too low to redact others' events".into(),
            ));
        }
    }
    let mut content = json!({});
    if let Some(reason) = &request.reason {
        content["reason"] = json!(reason);
    }
    let mut event = NewEvent::new(TimelineEventType::RoomRedaction, object(content)?);
    event.redacts = Some(request.event_id.clone());
    let event_id = server
        .send_client_event(&authed, &request.room_id, event, Some(request.txn_id.as_str()))
        .await?;
    Ok(redact_event::v3::Response::new(event_id))
}

/// `GET /_matrix/client/v3/rooms/{roomId}/messages`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomidmessages)).
///
/// Pages through the room's timeline and, before it, the history fetched from other servers
/// (see `client/history.rs`). Paging back past everything this server holds of a room it
/// joined through another server asks a server in the room for the earlier history
/// ([backfill](https://spec.matrix.org/v1.16/server-server-api/#backfilling-and-retrieving-missing-events));
/// `end` is left out once the room's first event is reached, or when no server answers.
pub(crate) async fn get_message_events(
    server: Server,
    authed: Authed,
    request: get_message_events::v3::Request,
) -> Result<get_message_events::v3::Response> {
    let visible = server.visible_until(&authed.user_id, &request.room_id).await?;
    let visible = i64::try_from(visible).unwrap_or(i64::MAX);
    let limit = usize::try_from(u64::from(request.limit)).unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let from = request.from.as_deref().map(parse_position).transpose()?;
    let to = request.to.as_deref().map(parse_position).transpose()?;
    let (start, chunk_ids, end) = match request.dir {
        ApiDirection::Backward => {
            let from = from.unwrap_or(visible).min(visible);
            let room_id = &request.room_id;
            let mut ids = server.history(room_id, to, from, Direction::Backward, limit).await?;
            let mut more = ids.len() == limit;
            // Short of a page with nothing stopping it but the start of what this server
            // holds: earlier history may be had from the room's other servers.
            if !more && to.is_none_or(|to| to < 0) {
                let fetched = server.backfill_room(&request.room_id, limit - ids.len()).await?;
                if fetched > 0 {
                    ids = server.history(room_id, to, from, Direction::Backward, limit).await?;
                    more = true;
                }
            }
            let end = if more { ids.last().map(|(at, _)| at - 1) } else { None };
            (from, ids, end)
        }
        _ => {
            let from = from.unwrap_or(0);
            let up_to = to.unwrap_or(visible).min(visible);
            let ids = server
                .history(&request.room_id, Some(from), up_to, Direction::Forward, limit)
                .await?;
            let end = ids.last().map(|(at, _)| *at).or(Some(from));
            (from, ids, end)
        }
    };
    let mut response = get_message_events::v3::Response::new();
    response.start = position_token(start);
    response.end = end.map(position_token);
    let mut senders = BTreeSet::new();
    for (sender, event) in server.visible_events(&authed, &request.filter, chunk_ids).await? {
        senders.insert(sender);
        response.chunk.push(event);
    }
    if request.filter.lazy_load_options.is_disabled().not() {
        let state = server.current_state(&request.room_id).await?.1;
        for sender in senders {
            if let Some(member_id) = state.get(&(StateEventType::RoomMember, sender.to_string()))
                && let Some(stored) = server.store().event(member_id.as_str()).await?
            {
                response
                    .state
                    .push(server.raw_client_event(member_id, &stored, Some(&authed)).await?);
            }
        }
    }
    Ok(response)
}

/// `GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomideventeventid)).
pub(crate) async fn get_room_event(
    server: Server,
    authed: Authed,
    request: get_room_event::v3::Request,
) -> Result<get_room_event::v3::Response> {
    let stored =
        server.readable_event(&authed.user_id, &request.room_id, &request.event_id).await?;
    Ok(get_room_event::v3::Response::new(
        server.raw_client_event(&request.event_id, &stored, Some(&authed)).await?,
    ))
}

impl Server {
    /// Whether the room's history visibility at an event lets `user_id` see it
    /// ([history visibility](https://spec.matrix.org/v1.16/client-server-api/#history-visibility)):
    /// `shared` and `world_readable` history is visible to members (the caller bounds it by
    /// [`Server::visible_until`]), `invited` from the user's invite on, `joined` from their
    /// join on. A user always sees their own membership events.
    pub(crate) async fn may_see_event(
        &self,
        user_id: &UserId,
        stored: &hearth_store::StoredEvent,
    ) -> Result<bool> {
        let state = self.state_map(stored.state_before).await?;
        let visibility = match state.get(&(StateEventType::RoomHistoryVisibility, String::new())) {
            Some(id) => match self.pdu(id).await? {
                Some((pdu, _)) => serde_json::from_str::<Value>(pdu.content().get())
                    .ok()
                    .and_then(|content| {
                        content.get("history_visibility").and_then(Value::as_str).map(str::to_owned)
                    })
                    .unwrap_or_else(|| "shared".to_owned()),
                None => "shared".to_owned(),
            },
            None => "shared".to_owned(),
        };
        let allowed: &[&str] = match visibility.as_str() {
            "invited" => &["invite", "join"],
            "joined" => &["join"],
            _ => return Ok(true),
        };
        let membership = match state.get(&(StateEventType::RoomMember, user_id.to_string())) {
            Some(id) => self.pdu(id).await?.map(|(pdu, _)| crate::rooms::membership_of(&pdu)),
            None => None,
        };
        if membership.is_some_and(|membership| allowed.contains(&membership.as_str())) {
            return Ok(true);
        }
        // The user's own join or invite is the first event they may see.
        let own = serde_json::from_str::<Value>(stored.pdu.get()).ok().is_some_and(|event| {
            event.get("type").and_then(Value::as_str) == Some("m.room.member")
                && event.get("state_key").and_then(Value::as_str) == Some(user_id.as_str())
        });
        Ok(own)
    }

    /// The events among `ids` that pass `filter` and that the user may see, as the client gets
    /// them, with their senders.
    async fn visible_events<T>(
        &self,
        authed: &Authed,
        filter: &RoomEventFilter,
        ids: Vec<(i64, OwnedEventId)>,
    ) -> Result<Vec<(OwnedUserId, Raw<T>)>> {
        let mut events = Vec::with_capacity(ids.len());
        for (_, event_id) in ids {
            let Some((pdu, stored)) = self.pdu(&event_id).await? else { continue };
            if filter::matches(filter, &pdu) && self.may_see_event(&authed.user_id, &stored).await?
            {
                let event = self.raw_client_event(&event_id, &stored, Some(authed)).await?;
                events.push((pdu.sender().to_owned(), event));
            }
        }
        Ok(events)
    }

    /// An event of a room the user may read; `M_NOT_FOUND` otherwise (not telling apart
    /// "does not exist" from "not yours to see").
    async fn readable_event(
        &self,
        user_id: &UserId,
        room_id: &RoomId,
        event_id: &EventId,
    ) -> Result<hearth_store::StoredEvent> {
        let visible = self.visible_until(user_id, room_id).await?;
        match self.store().event(event_id.as_str()).await? {
            Some(stored)
                if stored.room_id == room_id
                    && stored.stream <= visible
                    && self.may_see_event(user_id, &stored).await? =>
            {
                Ok(stored)
            }
            _ => Err(ServerError::NotFound(format!("no event {event_id} visible in {room_id}"))),
        }
    }
}

/// `GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomidcontexteventid)).
pub(crate) async fn get_context(
    server: Server,
    authed: Authed,
    request: get_context::v3::Request,
) -> Result<get_context::v3::Response> {
    let stored =
        server.readable_event(&authed.user_id, &request.room_id, &request.event_id).await?;
    let visible = server.visible_until(&authed.user_id, &request.room_id).await?;
    let visible = i64::try_from(visible).unwrap_or(i64::MAX);
    let limit = usize::try_from(u64::from(request.limit)).unwrap_or(10).min(MAX_PAGE);
    let before_count = limit / 2;
    let after_count = limit - before_count;
    let mut response = get_context::v3::Response::new();
    // An outlier (known only as the auth or state of others) has no place in the history: it
    // comes alone.
    if let Some(at) = coordinate_of(&stored) {
        let before = server
            .history(&request.room_id, None, at - 1, Direction::Backward, before_count)
            .await?;
        let after = server
            .history(&request.room_id, Some(at), visible, Direction::Forward, after_count)
            .await?;
        response.start = Some(position_token(before.last().map_or(at - 1, |(at, _)| at - 1)));
        response.end = Some(position_token(after.last().map_or(at, |(at, _)| *at)));
        for (list, ids) in
            [(&mut response.events_before, before), (&mut response.events_after, after)]
        {
            let events = server.visible_events(&authed, &request.filter, ids).await?;
            list.extend(events.into_iter().map(|(_, event)| event));
        }
    }
    response.event =
        Some(server.raw_client_event(&request.event_id, &stored, Some(&authed)).await?);
    let state = server.state_map(stored.state_after).await?;
    for ((kind, _), event_id) in state.iter() {
        if request.filter.lazy_load_options.is_disabled().not()
            && *kind == StateEventType::RoomMember
        {
            continue;
        }
        if let Some(event) = server.store().event(event_id.as_str()).await? {
            response.state.push(server.raw_client_event(event_id, &event, Some(&authed)).await?);
        }
    }
    Ok(response)
}

/// `GET /_matrix/client/v3/rooms/{roomId}/members`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomidmembers)).
pub(crate) async fn get_member_events(
    server: Server,
    authed: Authed,
    request: get_member_events::v3::Request,
) -> Result<get_member_events::v3::Response> {
    let state = server.visible_state(&authed.user_id, &request.room_id).await?;
    let mut chunk = Vec::new();
    for ((kind, _), event_id) in state.iter() {
        if *kind != StateEventType::RoomMember {
            continue;
        }
        let Some((pdu, stored)) = server.pdu(event_id).await? else { continue };
        let membership = crate::rooms::membership_of(&pdu);
        if request.membership.as_ref().is_some_and(|wanted| wanted.as_str() != membership) {
            continue;
        }
        if request.not_membership.as_ref().is_some_and(|unwanted| unwanted.as_str() == membership) {
            continue;
        }
        chunk.push(server.raw_client_event(event_id, &stored, Some(&authed)).await?);
    }
    Ok(get_member_events::v3::Response::new(chunk))
}

/// `GET /_matrix/client/v3/rooms/{roomId}/joined_members`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3roomsroomidjoined_members)).
pub(crate) async fn joined_members(
    server: Server,
    authed: Authed,
    request: joined_members::v3::Request,
) -> Result<joined_members::v3::Response> {
    let state = server.visible_state(&authed.user_id, &request.room_id).await?;
    let mut joined = BTreeMap::new();
    for ((kind, state_key), event_id) in state.iter() {
        if *kind != StateEventType::RoomMember {
            continue;
        }
        let Some((pdu, _)) = server.pdu(event_id).await? else { continue };
        if crate::rooms::membership_of(&pdu) != "join" {
            continue;
        }
        let Ok(user_id) = hearth_core::ruma::OwnedUserId::try_from(state_key.as_str()) else {
            continue;
        };
        let content: Value = serde_json::from_str(pdu.content().get()).unwrap_or_default();
        let mut member = joined_members::v3::RoomMember::new();
        member.display_name = content.get("displayname").and_then(Value::as_str).map(str::to_owned);
        member.avatar_url = content.get("avatar_url").and_then(Value::as_str).map(Into::into);
        joined.insert(user_id, member);
    }
    Ok(joined_members::v3::Response::new(joined))
}
