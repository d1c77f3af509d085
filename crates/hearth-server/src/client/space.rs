//! Spaces: the room hierarchy under a space
//! ([spec](https://spec.matrix.org/v1.16/client-server-api/#spaces)).

use std::collections::{BTreeSet, VecDeque};

use hearth_core::ruma::{
    OwnedRoomId, RoomId, UserId,
    api::client::space::{SpaceHierarchyRoomsChunk, get_hierarchy},
    events::StateEventType,
};
use serde_json::{Value, json};

use crate::{Authed, Server, ServerError, error::Result};

/// The walk visits at most this many rooms, however deep or wide the space: a request costs
/// a bounded amount of work, and rooms beyond it are not listed (nor paginated to).
const MAX_WALK: usize = 1000;
/// Rooms per page when the client names no limit, and the most a page holds.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 100;

/// One `m.space.child` of a room: its stripped event and what the walk needs of it.
struct Child {
    room_id: OwnedRoomId,
    suggested: bool,
    order: Option<String>,
    origin_server_ts: u64,
    stripped: Value,
}

impl Server {
    /// Whether `user_id` may see a room's summary: they are joined, or anyone may join it or
    /// read its history.
    async fn may_preview(&self, user_id: &UserId, room_id: &RoomId) -> Result<bool> {
        let joined = self
            .store()
            .membership(user_id, room_id)
            .await?
            .is_some_and(|record| record.membership == "join");
        if joined {
            return Ok(true);
        }
        let field = |content: Option<Value>, name: &str| {
            content.and_then(|content| content.get(name).and_then(Value::as_str).map(str::to_owned))
        };
        let join_rule = field(
            self.state_content(room_id, StateEventType::RoomJoinRules, "").await?,
            "join_rule",
        );
        let history = field(
            self.state_content(room_id, StateEventType::RoomHistoryVisibility, "").await?,
            "history_visibility",
        );
        Ok(join_rule.as_deref() == Some("public") || history.as_deref() == Some("world_readable"))
    }

    /// A room's valid `m.space.child` events (a non-empty `via`), in the spec's order: by
    /// `order`, then by the event's timestamp, then by room ID.
    async fn space_children(&self, room_id: &RoomId) -> Result<Vec<Child>> {
        let (_, state) = self.current_state(room_id).await?;
        let mut children = Vec::new();
        for ((kind, state_key), event_id) in state.iter() {
            if *kind != StateEventType::SpaceChild {
                continue;
            }
            let Ok(child) = RoomId::parse(state_key.as_str()) else { continue };
            let Some((pdu, _)) = self.pdu(event_id).await? else { continue };
            let content: Value = serde_json::from_str(pdu.content().get()).unwrap_or_default();
            let has_via = content
                .get("via")
                .and_then(Value::as_array)
                .is_some_and(|via| via.iter().any(|server| server.as_str().is_some()));
            if !has_via {
                continue;
            }
            // `order` only counts when it is short printable ASCII.
            let order = content
                .get("order")
                .and_then(Value::as_str)
                .filter(|order| {
                    order.len() <= 50 && order.chars().all(|c| ('\x20'..='\x7e').contains(&c))
                })
                .map(str::to_owned);
            let origin_server_ts = u64::from(pdu.origin_server_ts().get());
            children.push(Child {
                room_id: child.to_owned(),
                suggested: content.get("suggested").and_then(Value::as_bool) == Some(true),
                order,
                origin_server_ts,
                stripped: json!({
                    "type": "m.space.child",
                    "state_key": state_key,
                    "content": content,
                    "sender": pdu.sender(),
                    "origin_server_ts": origin_server_ts,
                }),
            });
        }
        children.sort_by(|a, b| {
            // Children with an `order` come first.
            let order = match (&a.order, &b.order) {
                (Some(a), Some(b)) => a.cmp(b),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            order
                .then(a.origin_server_ts.cmp(&b.origin_server_ts))
                .then_with(|| a.room_id.cmp(&b.room_id))
        });
        Ok(children)
    }

    /// The hierarchy entry of a room: its summary and its children's stripped events.
    async fn hierarchy_chunk(
        &self,
        room_id: &RoomId,
        children: &[Child],
    ) -> Result<SpaceHierarchyRoomsChunk> {
        let mut chunk = serde_json::to_value(self.public_rooms_chunk(room_id).await?)
            .map_err(|error| ServerError::Internal(error.to_string()))?;
        chunk["room_version"] = json!(self.room_version(room_id).await?.as_str());
        chunk["children_state"] =
            Value::Array(children.iter().map(|child| child.stripped.clone()).collect());
        serde_json::from_value(chunk).map_err(|error| ServerError::Internal(error.to_string()))
    }
}

/// A pagination token: the offset into the walk, with the parameters it was made for (a
/// token only continues the same walk).
fn page_token(offset: usize, max_depth: Option<u64>, suggested_only: bool) -> String {
    let depth = max_depth.map_or_else(|| "all".to_owned(), |depth| depth.to_string());
    format!("h{offset}_{depth}_{}", u8::from(suggested_only))
}

fn parse_page_token(token: &str, max_depth: Option<u64>, suggested_only: bool) -> Result<usize> {
    let invalid = || ServerError::InvalidParam(format!("invalid pagination token {token:?}"));
    let rest = token.strip_prefix('h').ok_or_else(invalid)?;
    let (offset, params) = rest.split_once('_').ok_or_else(invalid)?;
    let offset: usize = offset.parse().map_err(|_| invalid())?;
    if page_token(offset, max_depth, suggested_only) != token {
        return Err(ServerError::InvalidParam(format!(
            "pagination token {token:?} was made for other parameters ({params})"
        )));
    }
    Ok(offset)
}

/// `GET /_matrix/client/v1/rooms/{roomId}/hierarchy`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1roomsroomidhierarchy)).
///
/// Walks `m.space.child` events breadth-first from the room, listing the rooms this server
/// knows and the requester may see (joined, a public join rule or world-readable history);
/// rooms they may not see are left out and not walked into. `max_depth` bounds how far below
/// the room the walk goes, `suggested_only` follows only suggested children, and pages are
/// offsets into the walk, which is repeated for each page (bounded by [`MAX_WALK`]).
pub(crate) async fn get_hierarchy(
    server: Server,
    authed: Authed,
    request: get_hierarchy::v1::Request,
) -> Result<get_hierarchy::v1::Response> {
    let root = &request.room_id;
    server.current_state(root).await?;
    if !server.may_preview(&authed.user_id, root).await? {
        return Err(ServerError::Forbidden(format!("you may not see room {root}")));
    }
    let max_depth = request.max_depth.map(u64::from);
    let suggested_only = request.suggested_only;
    let offset = match &request.from {
        Some(token) => parse_page_token(token, max_depth, suggested_only)?,
        None => 0,
    };
    let limit = request
        .limit
        .map_or(DEFAULT_PAGE, |limit| usize::try_from(u64::from(limit)).unwrap_or(MAX_PAGE))
        .clamp(1, MAX_PAGE);

    // The whole walk up to the end of the page (it is cheap next to building the summaries).
    let mut rooms = Vec::new();
    let mut visited = BTreeSet::from([root.clone()]);
    let mut queue = VecDeque::from([(root.clone(), 0u64)]);
    let mut walked = 0;
    let mut more = false;
    while let Some((room_id, depth)) = queue.pop_front() {
        if walked >= MAX_WALK {
            break;
        }
        walked += 1;
        if server.store().room(&room_id).await?.is_none()
            || !server.may_preview(&authed.user_id, &room_id).await?
        {
            continue;
        }
        if rooms.len() >= offset.saturating_add(limit) {
            more = true;
            break;
        }
        let mut children = server.space_children(&room_id).await?;
        if suggested_only {
            children.retain(|child| child.suggested);
        }
        if max_depth.is_none_or(|max_depth| depth < max_depth) {
            for child in &children {
                if visited.insert(child.room_id.clone()) {
                    queue.push_back((child.room_id.clone(), depth + 1));
                }
            }
        }
        rooms.push((room_id, children));
    }

    let mut response = get_hierarchy::v1::Response::new();
    for (room_id, children) in rooms.iter().skip(offset) {
        response.rooms.push(server.hierarchy_chunk(room_id, children).await?);
    }
    if more {
        response.next_batch =
            Some(page_token(offset.saturating_add(limit), max_depth, suggested_only));
    }
    Ok(response)
}
