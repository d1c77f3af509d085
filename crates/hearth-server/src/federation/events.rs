//! Reading a room's events and state over federation: single events, the state at an event,
//! auth chains, missing events and backfill
//! ([spec](https://spec.matrix.org/v1.16/server-server-api/#retrieving-events)). Every read
//! passes [`Server::room_access`]; every walk is bounded.

use std::collections::{BTreeSet, BinaryHeap, VecDeque};

use hearth_core::{
    Pdu,
    ruma::{
        EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedServerName, RoomId, UInt,
        api::federation::{
            authorization::get_event_authorization,
            backfill::get_backfill,
            event::{get_event, get_missing_events, get_room_state, get_room_state_ids},
        },
        events::StateEventType,
    },
};
use hearth_store::StoredEvent;
use serde_json::value::RawValue;

use crate::{Server, ServerError, error::Result, platform::now_ms};

/// The most events one `backfill` or `get_missing_events` answer holds, whatever is asked.
const MAX_WALK: usize = 100;
/// The largest auth chain served; a room whose chain is longer gets `M_TOO_LARGE` rather than
/// a truncated chain, which the caller could not authorise anything against.
const MAX_AUTH_CHAIN: usize = 50_000;
/// Events read at once while walking auth chains and states.
const BATCH: usize = 512;
/// The most starting events (`latest_events`, `v`) a walk reads; the rest are ignored.
const MAX_STARTS: usize = 100;

impl Server {
    /// Stored events among `ids` (unknown ones left out), read concurrently in batches.
    async fn events_by_id(&self, ids: &[OwnedEventId]) -> Result<Vec<(Pdu, StoredEvent)>> {
        let mut found = Vec::with_capacity(ids.len());
        for batch in ids.chunks(BATCH) {
            let loaded =
                futures_util::future::try_join_all(batch.iter().map(|id| self.pdu(id))).await?;
            found.extend(loaded.into_iter().flatten());
        }
        Ok(found)
    }

    /// An event of `room_id` that `origin` may see: `M_NOT_FOUND` for an unknown room or an
    /// event not in it, `M_FORBIDDEN` for one hidden from the origin.
    async fn federated_event(
        &self,
        origin: &OwnedServerName,
        room_id: &RoomId,
        event_id: &EventId,
    ) -> Result<(Pdu, StoredEvent)> {
        let access = self.room_access(origin, room_id).await?;
        let (pdu, stored) =
            self.pdu(event_id).await?.filter(|(_, stored)| stored.room_id == room_id).ok_or_else(
                || ServerError::NotFound(format!("no event {event_id} in {room_id}")),
            )?;
        access.check(self, &stored).await?;
        Ok((pdu, stored))
    }

    /// The full auth chain of `events`: their auth events, recursively, oldest first, without
    /// `events` themselves unless one authorises another. From room version 12 the create
    /// event is named by the room ID instead of in `auth_events`; it is added, as a remote
    /// server needs it to check the rest.
    async fn auth_chain(
        &self,
        room_id: &RoomId,
        events: &[&Pdu],
    ) -> Result<Vec<(Pdu, StoredEvent)>> {
        let mut seen = BTreeSet::new();
        let mut frontier = Vec::new();
        let mut queue = |id: &OwnedEventId, frontier: &mut Vec<OwnedEventId>| {
            if seen.insert(id.clone()) {
                frontier.push(id.clone());
            }
        };
        if self.room_version(room_id).await?.room_id_from_create_event() {
            let (_, state) = self.current_state(room_id).await?;
            if let Some(create) = state.get(&(StateEventType::RoomCreate, String::new())) {
                queue(create, &mut frontier);
            }
        }
        for event in events {
            for id in event.auth_events() {
                queue(id, &mut frontier);
            }
        }
        let mut chain = Vec::new();
        while !frontier.is_empty() {
            let level = self.events_by_id(&std::mem::take(&mut frontier)).await?;
            for (pdu, stored) in level {
                if stored.room_id != room_id {
                    continue;
                }
                for id in pdu.auth_events() {
                    queue(id, &mut frontier);
                }
                chain.push((pdu, stored));
            }
            if chain.len() + frontier.len() > MAX_AUTH_CHAIN {
                return Err(ServerError::TooLarge(format!(
                    "the auth chain is longer than {MAX_AUTH_CHAIN} events"
                )));
            }
        }
        chain.sort_by_key(|(pdu, stored)| (pdu.depth(), stored.stream));
        Ok(chain)
    }

    /// The state before an event and that state's auth chain (for `/state` and `/state_ids`).
    async fn state_before(
        &self,
        origin: &OwnedServerName,
        room_id: &RoomId,
        event_id: &EventId,
    ) -> Result<(Vec<(Pdu, StoredEvent)>, Vec<(Pdu, StoredEvent)>)> {
        let (_, stored) = self.federated_event(origin, room_id, event_id).await?;
        let state = self.state_map(stored.state_before).await?;
        let ids: Vec<OwnedEventId> = state.values().cloned().collect();
        let state = self.events_by_id(&ids).await?;
        let chain =
            self.auth_chain(room_id, &state.iter().map(|(pdu, _)| pdu).collect::<Vec<_>>()).await?;
        Ok((state, chain))
    }
}

fn pdu_json(stored: &StoredEvent) -> Box<RawValue> {
    stored.pdu.clone()
}

fn now() -> MilliSecondsSinceUnixEpoch {
    MilliSecondsSinceUnixEpoch(UInt::new_saturating(now_ms()))
}

/// The number of events a walk may return: what was asked, at most [`MAX_WALK`].
fn walk_limit(asked: UInt) -> usize {
    usize::try_from(u64::from(asked)).unwrap_or(MAX_WALK).min(MAX_WALK)
}

fn starts(ids: &[OwnedEventId]) -> &[OwnedEventId] {
    &ids[..ids.len().min(MAX_STARTS)]
}

/// `GET /_matrix/federation/v1/event/{eventId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1eventeventid)):
/// one event as stored (redacted once a redaction applies).
pub(crate) async fn get_event(
    server: Server,
    origin: OwnedServerName,
    request: get_event::v1::Request,
) -> Result<get_event::v1::Response> {
    let stored = server
        .store()
        .event(request.event_id.as_str())
        .await?
        .ok_or_else(|| ServerError::NotFound(format!("no event {}", request.event_id)))?;
    let (_, stored) = server.federated_event(&origin, &stored.room_id, &request.event_id).await?;
    Ok(get_event::v1::Response::new(server.server_name().to_owned(), now(), pdu_json(&stored)))
}

/// `GET /_matrix/federation/v1/state/{roomId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1stateroomid)):
/// the room's state **before** `event_id`, with its full auth chain. A caller that wants the
/// state after the event adds the event itself when it is a state event.
pub(crate) async fn get_room_state(
    server: Server,
    origin: OwnedServerName,
    request: get_room_state::v1::Request,
) -> Result<get_room_state::v1::Response> {
    let (state, chain) = server.state_before(&origin, &request.room_id, &request.event_id).await?;
    Ok(get_room_state::v1::Response::new(
        chain.iter().map(|(_, stored)| pdu_json(stored)).collect(),
        state.iter().map(|(_, stored)| pdu_json(stored)).collect(),
    ))
}

/// `GET /_matrix/federation/v1/state_ids/{roomId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1state_idsroomid)):
/// the IDs of the room's state **before** `event_id` and of its full auth chain. A caller that
/// wants the state after the event adds the event itself when it is a state event.
pub(crate) async fn get_room_state_ids(
    server: Server,
    origin: OwnedServerName,
    request: get_room_state_ids::v1::Request,
) -> Result<get_room_state_ids::v1::Response> {
    let (state, chain) = server.state_before(&origin, &request.room_id, &request.event_id).await?;
    Ok(get_room_state_ids::v1::Response::new(
        chain.iter().map(|(pdu, _)| pdu.event_id().to_owned()).collect(),
        state.iter().map(|(pdu, _)| pdu.event_id().to_owned()).collect(),
    ))
}

/// `GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1event_authroomideventid)):
/// the full auth chain of an event.
pub(crate) async fn get_event_authorization(
    server: Server,
    origin: OwnedServerName,
    request: get_event_authorization::v1::Request,
) -> Result<get_event_authorization::v1::Response> {
    let (pdu, _) = server.federated_event(&origin, &request.room_id, &request.event_id).await?;
    let chain = server.auth_chain(&request.room_id, &[&pdu]).await?;
    Ok(get_event_authorization::v1::Response::new(
        chain.iter().map(|(_, stored)| pdu_json(stored)).collect(),
    ))
}

/// `POST /_matrix/federation/v1/get_missing_events/{roomId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#post_matrixfederationv1get_missing_eventsroomid)):
/// the ancestors of `latest_events` (not those events themselves), walked breadth-first through
/// `prev_events`, stopping at `earliest_events`, at events below `min_depth` and at events the
/// origin may not see, at most `limit` (≤ 100) of them, oldest first.
pub(crate) async fn get_missing_events(
    server: Server,
    origin: OwnedServerName,
    request: get_missing_events::v1::Request,
) -> Result<get_missing_events::v1::Response> {
    let room_id = &request.room_id;
    let access = server.room_access(&origin, room_id).await?;
    let limit = walk_limit(request.limit);
    let mut seen: BTreeSet<OwnedEventId> =
        request.earliest_events.iter().chain(&request.latest_events).cloned().collect();
    let mut frontier = VecDeque::new();
    for (pdu, stored) in server.events_by_id(starts(&request.latest_events)).await? {
        if stored.room_id != *room_id {
            continue;
        }
        access.check(&server, &stored).await?;
        frontier.extend(pdu.prev_events().iter().filter(|id| seen.insert((*id).clone())).cloned());
    }
    let mut found = Vec::new();
    while !frontier.is_empty() && found.len() < limit {
        let level: Vec<OwnedEventId> = frontier.drain(..).collect();
        for (pdu, stored) in server.events_by_id(&level).await? {
            if found.len() >= limit {
                break;
            }
            if stored.room_id != *room_id
                || pdu.depth() < request.min_depth
                || !access.may_see(&server, &stored).await?
            {
                continue;
            }
            frontier
                .extend(pdu.prev_events().iter().filter(|id| seen.insert((*id).clone())).cloned());
            found.push((pdu.depth(), stored.stream, pdu_json(&stored)));
        }
    }
    found.sort_by_key(|(depth, stream, _)| (*depth, *stream));
    Ok(get_missing_events::v1::Response::new(found.into_iter().map(|(_, _, json)| json).collect()))
}

/// `GET /_matrix/federation/v1/backfill/{roomId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1backfillroomid)):
/// the events `v` and their ancestors through `prev_events`, deepest first, at most `limit`
/// (≤ 100). The walk does not pass events the origin may not see.
pub(crate) async fn get_backfill(
    server: Server,
    origin: OwnedServerName,
    request: get_backfill::v1::Request,
) -> Result<get_backfill::v1::Response> {
    let room_id = &request.room_id;
    let access = server.room_access(&origin, room_id).await?;
    let limit = walk_limit(request.limit);
    let mut seen: BTreeSet<OwnedEventId> = request.v.iter().cloned().collect();
    // Deepest first, then the latest stored: a sliding window back through history.
    let mut queue = BinaryHeap::new();
    for (pdu, stored) in server.events_by_id(starts(&request.v)).await? {
        if stored.room_id != *room_id {
            continue;
        }
        access.check(&server, &stored).await?;
        queue.push(Queued(pdu, stored));
    }
    let mut pdus = Vec::new();
    while pdus.len() < limit
        && let Some(Queued(pdu, stored)) = queue.pop()
    {
        let parents: Vec<OwnedEventId> =
            pdu.prev_events().iter().filter(|id| seen.insert((*id).clone())).cloned().collect();
        for (parent, parent_stored) in server.events_by_id(&parents).await? {
            if parent_stored.room_id == *room_id && access.may_see(&server, &parent_stored).await? {
                queue.push(Queued(parent, parent_stored));
            }
        }
        pdus.push(pdu_json(&stored));
    }
    Ok(get_backfill::v1::Response::new(server.server_name().to_owned(), now(), pdus))
}

/// An event waiting in the backfill walk, ordered by depth, then stream position.
struct Queued(Pdu, StoredEvent);

impl Queued {
    fn key(&self) -> (UInt, u64) {
        (self.0.depth(), self.1.stream)
    }
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}
