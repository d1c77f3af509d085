//! A room's history from before this server joined it, fetched from the room's other servers
//! when a client pages back past the start of what this server holds
//! ([backfilling](https://spec.matrix.org/v1.16/server-server-api/#backfilling-and-retrieving-missing-events),
//! [`GET /_matrix/federation/v1/backfill/{roomId}`](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1backfillroomid)).
//!
//! The walk starts from the prev events of the oldest events placed (the first of the timeline,
//! then the oldest backfilled) that are not placed themselves. Each event that arrives is checked
//! like any other from another server (signatures and hashes, auth against its own auth events,
//! fetched when missing) and placed in the room's backfilled history, newest first: it has no
//! stream position, so sync never sends it, and no state of its own here. Events known already
//! as the auth or state of others (the room's creation, earlier memberships) are placed too.
//!
//! Only rooms whose history is `shared` or `world_readable` are backfilled: with `invited` or
//! `joined`, the history before this server's users joined is not theirs to read.

use std::collections::BTreeSet;

use hearth_core::{
    Pdu,
    ruma::{
        EventId, OwnedEventId, OwnedServerName, RoomId, ServerName, UInt,
        api::federation::backfill::get_backfill, events::StateEventType,
    },
};
use hearth_store::Direction;
use serde_json::Value;

use super::receive::{Budget, parse_all};
use crate::{Server, ServerError, error::Result, rooms::remote::outlier};

/// The most events asked for at once (what a server answers at most).
const MAX_BATCH: usize = 100;
/// How many of the oldest placed events the walk starts from (their missing prev events).
const OLDEST: usize = 20;
/// How many servers of the room are asked before giving up on this page.
const MAX_SERVERS: usize = 2;
/// How many auth chains one batch may fetch for events whose auth events are unknown here.
const MAX_AUTH_FETCHES: usize = 10;

impl Server {
    /// Fetches up to `wanted` (at most 100) events of the room's history from before the oldest
    /// event this server has placed, from another server in the room, and places them. Returns
    /// how many were placed: 0 when the room's first event is already here, when the history
    /// is not shared, or when no server answered (the next page asks again).
    pub(crate) async fn backfill_room(&self, room_id: &RoomId, wanted: usize) -> Result<usize> {
        if !self.history_is_shared(room_id).await? {
            return Ok(0);
        }
        let frontier = self.backfill_frontier(room_id).await?;
        if frontier.is_empty() {
            return Ok(0);
        }
        let limit = wanted.clamp(1, MAX_BATCH);
        for origin in self.backfill_servers(room_id).await?.iter().take(MAX_SERVERS) {
            match self.backfill_from(origin, room_id, &frontier, limit).await {
                Ok(placed) => return Ok(placed),
                // The store failing is ours to report; another server may answer where this
                // one could not.
                Err(error @ ServerError::Store(_)) => return Err(error),
                Err(_) => continue,
            }
        }
        Ok(0)
    }

    /// Whether the room's current history visibility lets members read what came before they
    /// joined.
    async fn history_is_shared(&self, room_id: &RoomId) -> Result<bool> {
        let state = self.current_state(room_id).await?.1;
        let Some(id) = state.get(&(StateEventType::RoomHistoryVisibility, String::new())) else {
            return Ok(true);
        };
        let Some(pdu) = self.parsed_pdu(id).await? else { return Ok(true) };
        let content: Value = serde_json::from_str(pdu.content().get()).unwrap_or_default();
        Ok(matches!(
            content.get("history_visibility").and_then(Value::as_str),
            None | Some("shared" | "world_readable")
        ))
    }

    /// The prev events of the oldest placed events that are not placed themselves: where the
    /// history this server holds begins.
    async fn backfill_frontier(&self, room_id: &RoomId) -> Result<Vec<OwnedEventId>> {
        let mut oldest: Vec<OwnedEventId> = self
            .store()
            .backfill(room_id, 0, u64::MAX, Direction::Backward, OLDEST)
            .await?
            .into_iter()
            .map(|(_, event_id)| event_id)
            .collect();
        if oldest.is_empty() {
            oldest = self
                .store()
                .timeline(room_id, 0, u64::MAX, Direction::Forward, OLDEST)
                .await?
                .into_iter()
                .map(|(_, event_id)| event_id)
                .collect();
        }
        let mut frontier = BTreeSet::new();
        for event_id in &oldest {
            let Some(pdu) = self.parsed_pdu(event_id).await? else { continue };
            for prev in pdu.prev_events() {
                if !self.is_placed(prev).await? && self.rejection(prev).await?.is_none() {
                    frontier.insert(prev.clone());
                }
            }
        }
        Ok(frontier.into_iter().collect())
    }

    /// The other servers with members joined to the room, those reachable now first.
    async fn backfill_servers(&self, room_id: &RoomId) -> Result<Vec<OwnedServerName>> {
        let servers = self.other_servers_in_room(room_id).await?;
        if servers.is_empty() {
            return Ok(Vec::new());
        }
        let online: BTreeSet<OwnedServerName> =
            self.federation().peers().await.into_iter().collect();
        let (mut ordered, offline): (Vec<_>, Vec<_>) = servers.into_iter().partition(|server| {
            online.contains(server) && self.destination_status(server).failures == 0
        });
        ordered.extend(offline);
        Ok(ordered)
    }

    /// Whether an event is stored with a place in its room's history.
    async fn is_placed(&self, event_id: &EventId) -> Result<bool> {
        Ok(match self.store().event(event_id.as_str()).await? {
            Some(stored) => self.store().is_placed(event_id.as_str(), &stored).await?,
            None => false,
        })
    }

    /// One backfill request to `origin`, its events checked and placed.
    async fn backfill_from(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        frontier: &[OwnedEventId],
        limit: usize,
    ) -> Result<usize> {
        let request = get_backfill::v1::Request::new(
            room_id.to_owned(),
            frontier.to_vec(),
            UInt::new_saturating(u64::try_from(limit).unwrap_or(u64::MAX)),
        );
        let response = self.federation_request(origin, request).await?;
        let version = self.room_version(room_id).await?;
        let mut pdus = parse_all(version, room_id, &response.pdus);
        pdus.truncate(MAX_BATCH);
        let pdus = ancestors_of(frontier, pdus);
        self.fetch_missing_auth(origin, &pdus).await?;

        // The new events that pass the checks; those stored already (outliers) are placed as
        // they are, the others (refused, forged) left out, when placing.
        let (accepted, _refused) = self.check_batch(pdus.clone()).await?;
        let accepted: BTreeSet<OwnedEventId> = accepted.into_keys().collect();
        let mut newest_first = pdus;
        newest_first.sort_by(|a, b| {
            (b.depth(), b.origin_server_ts(), b.event_id()).cmp(&(
                a.depth(),
                a.origin_server_ts(),
                a.event_id(),
            ))
        });
        self.place_backfilled(room_id, newest_first, &accepted).await
    }

    /// Fetches the auth chains of events whose auth events are neither in the batch nor stored
    /// (a member's earlier membership, say), so that they can be checked; bounded per batch.
    async fn fetch_missing_auth(&self, origin: &ServerName, pdus: &[Pdu]) -> Result<()> {
        let in_batch: BTreeSet<&EventId> = pdus.iter().map(|pdu| pdu.event_id()).collect();
        let mut budget = Budget::new();
        let mut fetches = 0;
        for pdu in pdus {
            let mut missing = false;
            for id in pdu.auth_events() {
                if !in_batch.contains(&**id) && !self.is_known_event(id).await? {
                    missing = true;
                    break;
                }
            }
            if !missing {
                continue;
            }
            if fetches == MAX_AUTH_FETCHES {
                break;
            }
            fetches += 1;
            match self.fetch_auth_chain(origin, pdu, &mut budget).await {
                Ok(()) => {}
                Err(error @ ServerError::Store(_)) => return Err(error),
                // The event stays unchecked and is left out.
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// Places `events` (newest first) after the oldest backfilled event, in one transaction:
    /// those stored as outliers, and the new ones among `accepted`. An event placed meanwhile
    /// (another page's fetch) is left where it is.
    async fn place_backfilled(
        &self,
        room_id: &RoomId,
        events: Vec<Pdu>,
        accepted: &BTreeSet<OwnedEventId>,
    ) -> Result<usize> {
        let _guard = self.write_lock().await;
        let mut sequence = self
            .store()
            .backfill(room_id, 0, u64::MAX, Direction::Backward, 1)
            .await?
            .first()
            .map_or(0, |(sequence, _)| *sequence);
        let mut txn = self.store().transaction();
        let mut placed = 0;
        for pdu in events {
            let event_id = pdu.event_id().as_str();
            let stored = match self.store().event(event_id).await? {
                Some(stored) if self.store().is_placed(event_id, &stored).await? => continue,
                // An outlier keeps what is known of it (its state, a redaction).
                Some(stored) => stored,
                None if accepted.contains(pdu.event_id()) => outlier(&pdu)?,
                None => continue,
            };
            sequence += 1;
            txn.put_backfilled_event(event_id, sequence, stored)?;
            placed += 1;
        }
        self.store().commit(txn).await?;
        Ok(placed)
    }
}

/// The events of `pdus` that are `frontier` events or their ancestors through prev events within
/// the answer: a server that sends anything else (a newer event, say, which placed here as
/// history would later be taken for known and never reach the timeline) has it left out.
fn ancestors_of(frontier: &[OwnedEventId], mut pdus: Vec<Pdu>) -> Vec<Pdu> {
    // Deepest first, so that an event is seen before its prev events.
    pdus.sort_by_key(|pdu| std::cmp::Reverse(pdu.depth()));
    let mut wanted: BTreeSet<OwnedEventId> = frontier.iter().cloned().collect();
    let mut kept = Vec::with_capacity(pdus.len());
    for pdu in pdus {
        if wanted.remove(pdu.event_id()) {
            wanted.extend(pdu.prev_events().iter().cloned());
            kept.push(pdu);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use hearth_core::{RoomVersion, testing::TestRoom};
    use serde_json::json;

    use super::*;

    #[test]
    fn only_the_frontier_and_its_ancestors_are_kept() {
        let mut room = TestRoom::create(RoomVersion::V12, "alice", 1).unwrap();
        let create = room.create_id.clone();
        let join = room.join("alice", &create, 2).unwrap();
        let text = |n: u64| json!({ "msgtype": "m.text", "body": format!("{n}") });
        let first = room
            .add("alice", "m.room.message", None, text(1), std::slice::from_ref(&join), 3)
            .unwrap();
        let second = room
            .add("alice", "m.room.message", None, text(2), std::slice::from_ref(&first), 4)
            .unwrap();
        let newer = room
            .add("alice", "m.room.message", None, text(3), std::slice::from_ref(&second), 5)
            .unwrap();
        let all: Vec<Pdu> = room.events.values().cloned().collect();

        // From `second` back: `newer` (after it) is no history of it and is left out.
        let kept: BTreeSet<OwnedEventId> = ancestors_of(std::slice::from_ref(&second), all.clone())
            .iter()
            .map(|pdu| pdu.event_id().to_owned())
            .collect();
        assert_eq!(kept, BTreeSet::from([create.clone(), join.clone(), first.clone(), second]));

        // An answer that skips a link keeps only what hangs from the frontier.
        let gap: Vec<Pdu> = all.into_iter().filter(|pdu| *pdu.event_id() != first).collect();
        let kept: Vec<OwnedEventId> = ancestors_of(std::slice::from_ref(&newer), gap)
            .iter()
            .map(|pdu| pdu.event_id().to_owned())
            .collect();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(kept.contains(&newer) && !kept.contains(&join) && !kept.contains(&create));
    }
}
