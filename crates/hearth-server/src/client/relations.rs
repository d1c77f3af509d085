//! Relations and threads: `/relations` in its three forms and `/threads`.

use std::collections::BTreeMap;

use hearth_core::ruma::{
    EventId, OwnedEventId, RoomId, UInt,
    api::{
        Direction as ApiDirection,
        client::{
            relations::{
                get_relating_events, get_relating_events_with_rel_type,
                get_relating_events_with_rel_type_and_event_type,
            },
            threads::get_threads::{self, v1::IncludeThreads},
        },
    },
    serde::Raw,
};
use hearth_store::Direction;
use serde_json::{Value, json};

use crate::{
    Authed, Server, ServerError,
    client::message::{parse_token, token},
    error::Result,
    events::to_raw,
};

/// Events per page when the client does not say, and the most it may ask for.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;
/// How far back `/threads` looks for thread activity.
const THREAD_SCAN: usize = 5000;

/// A page of relations.
struct Page<T> {
    chunk: Vec<Raw<T>>,
    next_batch: Option<String>,
}

/// `m.relates_to` of an event's content: `(rel_type, parent)`.
fn relation(content: &Value) -> Option<(String, String)> {
    let relates_to = content.get("m.relates_to")?;
    Some((
        relates_to.get("rel_type")?.as_str()?.to_owned(),
        relates_to.get("event_id")?.as_str()?.to_owned(),
    ))
}

impl Server {
    #[allow(clippy::too_many_arguments)]
    async fn relating_events<T>(
        &self,
        authed: &Authed,
        room_id: &RoomId,
        parent: &EventId,
        rel_type: Option<&str>,
        event_type: Option<&str>,
        from: Option<&str>,
        dir: ApiDirection,
        to: Option<&str>,
        limit: Option<UInt>,
    ) -> Result<Page<T>> {
        let visible = self.visible_until(&authed.user_id, room_id).await?;
        match self.store().event(parent.as_str()).await? {
            Some(stored) if stored.room_id == room_id && stored.stream <= visible => {}
            _ => return Err(ServerError::NotFound(format!("no event {parent} in {room_id}"))),
        }
        let limit = limit
            .map(|limit| usize::try_from(u64::from(limit)).unwrap_or(MAX_LIMIT))
            .unwrap_or(DEFAULT_LIMIT)
            .clamp(1, MAX_LIMIT);
        let direction = match dir {
            ApiDirection::Forward => Direction::Forward,
            _ => Direction::Backward,
        };
        let mut cursor = from.map(parse_token).transpose()?.unwrap_or(match direction {
            Direction::Forward => 0,
            Direction::Backward => u64::MAX,
        });
        let stop = to.map(parse_token).transpose()?;
        let mut chunk = Vec::new();
        let mut last = None;
        let mut exhausted = false;
        // Filtering by type happens after the index scan, so scan page by page until full.
        while chunk.len() < limit && !exhausted {
            let rows = self.store().relations(parent.as_str(), cursor, direction, limit).await?;
            exhausted = rows.len() < limit;
            for (stream, event_id) in rows {
                cursor = stream;
                let beyond = stop.is_some_and(|stop| match direction {
                    Direction::Forward => stream > stop,
                    Direction::Backward => stream <= stop,
                });
                if stream > visible || beyond {
                    exhausted = true;
                    break;
                }
                let Some((pdu, stored)) = self.pdu(&event_id).await? else { continue };
                let content: Value = serde_json::from_str(pdu.content().get()).unwrap_or_default();
                let kind_matches = event_type.is_none_or(|wanted| pdu.kind().to_string() == wanted);
                let rel_matches = rel_type
                    .is_none_or(|wanted| relation(&content).is_some_and(|(rel, _)| rel == wanted));
                if kind_matches && rel_matches {
                    chunk.push(self.raw_client_event(&event_id, &stored, Some(authed)).await?);
                    last = Some(stream);
                    if chunk.len() == limit {
                        break;
                    }
                }
            }
        }
        let next_batch = if chunk.len() == limit { last.map(token) } else { None };
        Ok(Page { chunk, next_batch })
    }
}

/// `GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1roomsroomidrelationseventid)).
pub(crate) async fn get_relating_events(
    server: Server,
    authed: Authed,
    request: get_relating_events::v1::Request,
) -> Result<get_relating_events::v1::Response> {
    let page = server
        .relating_events(
            &authed,
            &request.room_id,
            &request.event_id,
            None,
            None,
            request.from.as_deref(),
            request.dir,
            request.to.as_deref(),
            request.limit,
        )
        .await?;
    let mut response = get_relating_events::v1::Response::new(page.chunk);
    response.next_batch = page.next_batch;
    Ok(response)
}

/// `GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1roomsroomidrelationseventidreltype)).
pub(crate) async fn get_relating_events_with_rel_type(
    server: Server,
    authed: Authed,
    request: get_relating_events_with_rel_type::v1::Request,
) -> Result<get_relating_events_with_rel_type::v1::Response> {
    let rel_type = request.rel_type.to_string();
    let page = server
        .relating_events(
            &authed,
            &request.room_id,
            &request.event_id,
            Some(&rel_type),
            None,
            request.from.as_deref(),
            request.dir,
            request.to.as_deref(),
            request.limit,
        )
        .await?;
    let mut response = get_relating_events_with_rel_type::v1::Response::new(page.chunk);
    response.next_batch = page.next_batch;
    Ok(response)
}

/// `GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1roomsroomidrelationseventidreltypeeventtype)).
pub(crate) async fn get_relating_events_with_rel_type_and_event_type(
    server: Server,
    authed: Authed,
    request: get_relating_events_with_rel_type_and_event_type::v1::Request,
) -> Result<get_relating_events_with_rel_type_and_event_type::v1::Response> {
    let rel_type = request.rel_type.to_string();
    let event_type = request.event_type.to_string();
    let page = server
        .relating_events(
            &authed,
            &request.room_id,
            &request.event_id,
            Some(&rel_type),
            Some(&event_type),
            request.from.as_deref(),
            request.dir,
            request.to.as_deref(),
            request.limit,
        )
        .await?;
    let mut response =
        get_relating_events_with_rel_type_and_event_type::v1::Response::new(page.chunk);
    response.next_batch = page.next_batch;
    Ok(response)
}

/// `GET /_matrix/client/v1/rooms/{roomId}/threads`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1roomsroomidthreads)):
/// thread roots, most recently active first, each with its thread summary in
/// `unsigned.m.relations.m.thread`.
pub(crate) async fn get_threads(
    server: Server,
    authed: Authed,
    request: get_threads::v1::Request,
) -> Result<get_threads::v1::Response> {
    let visible = server.visible_until(&authed.user_id, &request.room_id).await?;
    let from =
        request.from.as_deref().map(parse_token).transpose()?.unwrap_or(visible).min(visible);
    let limit = request
        .limit
        .map(|limit| usize::try_from(u64::from(limit)).unwrap_or(MAX_LIMIT))
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, MAX_LIMIT);
    let recent = server
        .store()
        .timeline(&request.room_id, 0, visible, Direction::Backward, THREAD_SCAN)
        .await?;
    // root -> (latest reply, its position, reply count, whether the user took part)
    let mut threads: BTreeMap<OwnedEventId, (OwnedEventId, u64, u64, bool)> = BTreeMap::new();
    for (stream, event_id) in &recent {
        let Some((pdu, _)) = server.pdu(event_id).await? else { continue };
        let content: Value = serde_json::from_str(pdu.content().get()).unwrap_or_default();
        let Some((rel_type, root)) = relation(&content) else { continue };
        if rel_type != "m.thread" {
            continue;
        }
        let Ok(root) = OwnedEventId::try_from(root) else { continue };
        let mine = pdu.sender() == authed.user_id;
        let entry = threads.entry(root).or_insert_with(|| (event_id.clone(), *stream, 0, false));
        entry.2 += 1;
        entry.3 |= mine;
    }
    let mut roots: Vec<(OwnedEventId, (OwnedEventId, u64, u64, bool))> =
        threads.into_iter().filter(|(_, (_, latest, _, _))| *latest <= from).collect();
    roots.sort_by_key(|(_, (_, latest, _, _))| std::cmp::Reverse(*latest));
    let mut chunk = Vec::new();
    let mut last = None;
    for (root, (latest, position, count, participated)) in roots {
        let Some((root_pdu, root_stored)) = server.pdu(&root).await? else { continue };
        let participated = participated || root_pdu.sender() == authed.user_id;
        if request.include == IncludeThreads::Participated && !participated {
            continue;
        }
        let Some(latest_stored) = server.store().event(latest.as_str()).await? else { continue };
        let mut event = server.client_event(&root, &root_stored, Some(&authed)).await?;
        let latest_event = server.client_event(&latest, &latest_stored, Some(&authed)).await?;
        event["unsigned"]["m.relations"]["m.thread"] = json!({ "latest_event": latest_event, "count": count, "current_user_participated": participated });
        chunk.push(to_raw(&event)?);
        last = Some(position);
        if chunk.len() == limit {
            break;
        }
    }
    let mut response = get_threads::v1::Response::new(chunk);
    if response.chunk.len() == limit {
        response.next_batch = last.map(|position| token(position - 1));
    }
    Ok(response)
}
