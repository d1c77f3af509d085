//! Server-side search
//! ([spec](https://spec.matrix.org/v1.16/client-server-api/#server-side-search)): a scan of
//! the rooms' timelines, not an index. Each request looks at the newest
//! [`MAX_SCANNED_PER_ROOM`] events of each room below its `next_batch`, so older history is
//! reached only by paginating through matches, and `count` counts the matches in that window.

use std::collections::BTreeSet;

use hearth_core::ruma::{
    OwnedEventId, OwnedRoomId, UInt,
    api::client::search::search_events::{
        self,
        v3::{
            Criteria, EventContextResult, ResultCategories, ResultRoomEvents, SearchKeys,
            SearchResult,
        },
    },
};
use hearth_store::Direction;
use serde_json::Value;

use crate::{
    Authed, Server, ServerError,
    client::message::{parse_token, token},
    error::Result,
    filter,
};

/// How many events of each room one search request looks at most.
const MAX_SCANNED_PER_ROOM: usize = 10_000;

/// Results per page when the filter sets no limit.
const DEFAULT_LIMIT: usize = 10;

/// The most results per page, whatever the filter asks.
const MAX_LIMIT: usize = 100;

/// The most context events on either side of a result.
const MAX_CONTEXT: usize = 20;

/// `POST /_matrix/client/v3/search`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3search)):
/// room events whose `content.body`, `content.name` or `content.topic` (those `keys` names;
/// all three by default) contain the search term, ignoring case. Searched are the user's
/// joined rooms, or the rooms `filter.rooms` names that the user may read; results are newest
/// first for both `order_by` values (`rank` is the same order as `recent`: there is no
/// relevance score). `event_context` is honoured without profiles; `include_state` and
/// `groupings` are ignored (no state, no groups).
pub(crate) async fn search_events(
    server: Server,
    authed: Authed,
    request: search_events::v3::Request,
) -> Result<search_events::v3::Response> {
    let mut categories = ResultCategories::new();
    if let Some(criteria) = &request.search_categories.room_events {
        let below = request.next_batch.as_deref().map(parse_token).transpose()?;
        categories.room_events = search_room_events(&server, &authed, criteria, below).await?;
    }
    Ok(search_events::v3::Response::new(categories))
}

/// The content fields `keys` asks to search.
fn fields(keys: Option<&[SearchKeys]>) -> Result<Vec<&'static str>> {
    let Some(keys) = keys else { return Ok(vec!["body", "name", "topic"]) };
    keys.iter()
        .map(|key| match key {
            SearchKeys::ContentBody => Ok("body"),
            SearchKeys::ContentName => Ok("name"),
            SearchKeys::ContentTopic => Ok("topic"),
            other => Err(ServerError::InvalidParam(format!("cannot search key {other}"))),
        })
        .collect()
}

async fn search_room_events(
    server: &Server,
    authed: &Authed,
    criteria: &Criteria,
    below: Option<u64>,
) -> Result<ResultRoomEvents> {
    let user_id = &authed.user_id;
    let fields = fields(criteria.keys.as_deref())?;
    let term = criteria.search_term.to_lowercase();
    let limit = criteria
        .filter
        .limit
        .map_or(DEFAULT_LIMIT, |limit| usize::try_from(u64::from(limit)).unwrap_or(MAX_LIMIT))
        .clamp(1, MAX_LIMIT);

    let rooms: BTreeSet<OwnedRoomId> = match &criteria.filter.rooms {
        Some(rooms) => rooms.iter().cloned().collect(),
        None => server
            .store()
            .memberships(user_id)
            .await?
            .into_iter()
            .filter(|(_, record)| record.membership == "join")
            .map(|(room_id, _)| room_id)
            .collect(),
    };
    // (stream, room, event) of every match, all rooms together.
    let mut matches: Vec<(u64, OwnedRoomId, OwnedEventId)> = Vec::new();
    for room_id in rooms {
        if criteria.filter.not_rooms.contains(&room_id) {
            continue;
        }
        // Rooms the user never joined are skipped, even when the filter names them.
        let Ok(visible) = server.visible_until(user_id, &room_id).await else { continue };
        let up_to = below.map_or(visible, |below| visible.min(below));
        let events = server
            .store()
            .timeline(&room_id, 0, up_to, Direction::Backward, MAX_SCANNED_PER_ROOM)
            .await?;
        for (stream, event_id) in events {
            let Some((pdu, stored)) = server.pdu(&event_id).await? else { continue };
            let content: Value = serde_json::from_str(pdu.content().get()).unwrap_or_default();
            let hit = fields.iter().any(|field| {
                content
                    .get(*field)
                    .and_then(Value::as_str)
                    .is_some_and(|text| text.to_lowercase().contains(&term))
            });
            if hit
                && filter::matches(&criteria.filter, &pdu)
                && server.may_see_event(user_id, &stored).await?
            {
                matches.push((stream, room_id.clone(), event_id));
            }
        }
    }
    matches.sort_by_key(|found| std::cmp::Reverse(found.0));

    let mut response = ResultRoomEvents::new();
    response.count = Some(UInt::new_saturating(matches.len() as u64));
    response.highlights = vec![criteria.search_term.clone()];
    if matches.len() > limit {
        response.next_batch = matches.get(limit - 1).map(|last| token(last.0 - 1));
    }
    matches.truncate(limit);
    let before_limit = context_limit(criteria.event_context.before_limit);
    let after_limit = context_limit(criteria.event_context.after_limit);
    for (stream, room_id, event_id) in matches {
        let Some(stored) = server.store().event(event_id.as_str()).await? else { continue };
        let mut result = SearchResult::new();
        result.result = Some(server.raw_client_event(&event_id, &stored, Some(authed)).await?);
        if before_limit > 0 || after_limit > 0 {
            let visible = server.visible_until(user_id, &room_id).await?;
            let mut context = EventContextResult::new();
            let before = server
                .store()
                .timeline(&room_id, 0, stream - 1, Direction::Backward, before_limit)
                .await?;
            let after = server
                .store()
                .timeline(&room_id, stream, visible, Direction::Forward, after_limit)
                .await?;
            context.start = Some(token(before.last().map_or(stream - 1, |(at, _)| at - 1)));
            context.end = Some(token(after.last().map_or(stream, |(at, _)| *at)));
            for (list, ids) in
                [(&mut context.events_before, before), (&mut context.events_after, after)]
            {
                for (_, id) in ids {
                    let Some(event) = server.store().event(id.as_str()).await? else { continue };
                    if server.may_see_event(user_id, &event).await? {
                        list.push(server.raw_client_event(&id, &event, Some(authed)).await?);
                    }
                }
            }
            result.context = context;
        }
        response.results.push(result);
    }
    Ok(response)
}

fn context_limit(limit: UInt) -> usize {
    usize::try_from(u64::from(limit)).unwrap_or(MAX_CONTEXT).min(MAX_CONTEXT)
}
