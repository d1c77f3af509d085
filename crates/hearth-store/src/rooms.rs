//! Rooms: events (stored once), timelines in stream order, state as groups of deltas,
//! memberships, relations.

use std::collections::BTreeMap;

use hearth_core::{
    StateMap,
    ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId, events::StateEventType},
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    StoreError,
    backend::{Direction, KeyRange, Table},
    keys::{Key, KeyReader},
    store::{Store, Txn},
};

/// A state group is a full snapshot every this many deltas, so reading any state is at most this
/// many reads while a state event costs one small delta.
pub const MAX_STATE_CHAIN: u32 = 32;

/// The state group of the empty state.
pub const EMPTY_STATE_GROUP: u64 = 0;

/// An event as stored: its PDU JSON once, plus where it sits locally.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The room.
    pub room_id: OwnedRoomId,
    /// Its local stream position (its place in the room's timeline).
    pub stream: u64,
    /// The PDU's canonical JSON (redacted in place once a redaction applies).
    pub pdu: Box<RawValue>,
    /// The state group before the event.
    pub state_before: u64,
    /// The state group after the event (equal to `state_before` for a message).
    pub state_after: u64,
    /// The redaction event that applies to it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted_by: Option<OwnedEventId>,
    /// The device and transaction ID it was sent with, echoed to that device only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<TransactionOrigin>,
    /// Its place in the room's backfilled history (see [`Store::backfill`]): an event from
    /// before this server joined, fetched from another server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<u64>,
}

/// Who sent an event through `PUT /send/.../{txnId}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionOrigin {
    /// The sending device.
    pub device_id: String,
    /// The client's transaction ID.
    pub txn_id: String,
}

/// What the server knows about a room it takes part in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRecord {
    /// The room version (`"10"`, `"11"`, `"12"`).
    pub version: String,
    /// The state group of the room's current state.
    pub current_state: u64,
    /// Events with no children yet: the next event's `prev_events`.
    pub extremities: Vec<OwnedEventId>,
    /// The greatest depth of any event in the room.
    pub max_depth: u64,
    /// The stream position of the room's newest timeline event.
    pub last_stream: u64,
}

/// A state group: a delta over `parent`, or a full snapshot when `parent` is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateGroup {
    /// The group this one changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u64>,
    /// Deltas between this group and its nearest snapshot.
    #[serde(default)]
    pub chain: u32,
    /// `(event type, state key, event ID)`, sorted.
    pub entries: Vec<(String, String, OwnedEventId)>,
}

/// A user's current membership in a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipRecord {
    /// `join`, `invite`, `leave`, `ban` or `knock`.
    pub membership: String,
    /// The `m.room.member` event.
    pub event_id: OwnedEventId,
    /// Its stream position.
    pub stream: u64,
    /// Whether the user has forgotten the room (hidden from sync once left).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forgotten: bool,
}

fn event_key(event_id: &str) -> Vec<u8> {
    Key::new().str(event_id).build()
}

fn timeline_key(room_id: &str, stream: u64) -> Vec<u8> {
    Key::new().str(room_id).u64(stream).build()
}

impl Store {
    /// An event by ID.
    pub async fn event(&self, event_id: &str) -> Result<Option<StoredEvent>, StoreError> {
        self.get(Table::Events, &event_key(event_id)).await
    }

    /// [`Store::event`] for many events, in the order of `event_ids`, in one backend read.
    pub async fn events(&self, event_ids: &[&str]) -> Result<Vec<Option<StoredEvent>>, StoreError> {
        let keys: Vec<Vec<u8>> = event_ids.iter().map(|event_id| event_key(event_id)).collect();
        self.get_many(Table::Events, &keys).await
    }

    /// A room the server takes part in.
    pub async fn room(&self, room_id: &RoomId) -> Result<Option<RoomRecord>, StoreError> {
        self.get(Table::Rooms, &Key::new().str(room_id.as_str()).build()).await
    }

    /// Up to `limit` timeline entries of a room with `after < stream <= up_to`, walking in
    /// `direction` (backward: newest first).
    pub async fn timeline(
        &self,
        room_id: &RoomId,
        after: u64,
        up_to: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<(u64, OwnedEventId)>, StoreError> {
        self.room_positions(Table::RoomTimeline, room_id, after, up_to, direction, limit).await
    }

    /// Up to `limit` entries of a room's backfilled history with `after < sequence <= up_to`,
    /// walking in `direction` (forward: from the newest backfilled event back in time).
    pub async fn backfill(
        &self,
        room_id: &RoomId,
        after: u64,
        up_to: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<(u64, OwnedEventId)>, StoreError> {
        self.room_positions(Table::RoomBackfill, room_id, after, up_to, direction, limit).await
    }

    /// The rows of a table keyed by room and position with `after < position <= up_to`.
    async fn room_positions(
        &self,
        table: Table,
        room_id: &RoomId,
        after: u64,
        up_to: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<(u64, OwnedEventId)>, StoreError> {
        if after >= up_to {
            return Ok(Vec::new());
        }
        let range = KeyRange {
            start: std::ops::Bound::Excluded(timeline_key(room_id.as_str(), after)),
            end: std::ops::Bound::Included(timeline_key(room_id.as_str(), up_to)),
        };
        let rows: Vec<(Vec<u8>, OwnedEventId)> = self.scan(table, range, direction, limit).await?;
        rows.into_iter()
            .map(|(key, event_id)| {
                let mut reader = KeyReader::new(&key);
                reader.str()?;
                Ok((reader.u64()?, event_id))
            })
            .collect()
    }

    /// Whether a stored event has a place in its room's history: in the timeline, or in the
    /// backfilled history. Outliers (known as the auth or state of others) have neither, nor
    /// has an invite to a room this server was not in (it has a stream position for sync, but
    /// no place in the timeline).
    pub async fn is_placed(&self, event_id: &str, event: &StoredEvent) -> Result<bool, StoreError> {
        if event.backfill.is_some() {
            return Ok(true);
        }
        if event.stream == 0 {
            return Ok(false);
        }
        let key = timeline_key(event.room_id.as_str(), event.stream);
        let at: Option<OwnedEventId> = self.get(Table::RoomTimeline, &key).await?;
        Ok(at.is_some_and(|at| at.as_str() == event_id))
    }

    /// A state group as stored (a delta or a snapshot).
    pub async fn state_group(&self, group: u64) -> Result<Option<StateGroup>, StoreError> {
        self.get(Table::StateGroups, &Key::new().u64(group).build()).await
    }

    /// The full state of a group: its snapshot with every delta on the way applied. Group 0
    /// is the empty state (before a room's create event); no stored group has that ID since
    /// stream positions start at 1.
    pub async fn state(&self, group: u64) -> Result<StateMap, StoreError> {
        if group == EMPTY_STATE_GROUP {
            return Ok(StateMap::new());
        }
        let mut chain = Vec::new();
        let mut next = Some(group);
        while let Some(id) = next {
            let found = self
                .state_group(id)
                .await?
                .ok_or_else(|| StoreError::corrupt(format!("missing state group {id}")))?;
            next = found.parent;
            chain.push(found);
            if chain.len() > MAX_STATE_CHAIN as usize + 1 {
                return Err(StoreError::corrupt(format!("state group {group} chain too long")));
            }
        }
        let mut state = StateMap::new();
        for group in chain.into_iter().rev() {
            for (kind, state_key, event_id) in group.entries {
                state.insert((StateEventType::from(kind), state_key), event_id);
            }
        }
        Ok(state)
    }

    /// The rooms a user has a membership in, with it.
    pub async fn memberships(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<(OwnedRoomId, MembershipRecord)>, StoreError> {
        let rows: Vec<(String, MembershipRecord)> =
            self.scan_under(Table::Memberships, user_id.as_str()).await?;
        rows.into_iter()
            .map(|(room_id, record)| {
                Ok((OwnedRoomId::try_from(room_id).map_err(StoreError::corrupt)?, record))
            })
            .collect()
    }

    /// A user's membership in one room.
    pub async fn membership(
        &self,
        user_id: &UserId,
        room_id: &RoomId,
    ) -> Result<Option<MembershipRecord>, StoreError> {
        let key = Key::new().str(user_id.as_str()).str(room_id.as_str()).build();
        self.get(Table::Memberships, &key).await
    }

    /// The members of a room with their membership (`join`, `invite`, `leave`, `ban`, `knock`).
    pub async fn room_members(
        &self,
        room_id: &RoomId,
    ) -> Result<Vec<(OwnedUserId, String)>, StoreError> {
        let rows: Vec<(String, String)> =
            self.scan_under(Table::RoomMembers, room_id.as_str()).await?;
        rows.into_iter()
            .map(|(user_id, membership)| {
                Ok((OwnedUserId::try_from(user_id).map_err(StoreError::corrupt)?, membership))
            })
            .collect()
    }

    /// Events relating to `parent`, oldest first, with their stream positions, after `after`.
    pub async fn relations(
        &self,
        parent: &str,
        after: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<(u64, OwnedEventId)>, StoreError> {
        let prefix = Key::new().str(parent).build();
        let mut range = KeyRange::prefix(&prefix);
        if after > 0 {
            match direction {
                Direction::Forward => {
                    range.start =
                        std::ops::Bound::Excluded(Key::new().str(parent).u64(after).build())
                }
                Direction::Backward => {
                    range.end = std::ops::Bound::Excluded(Key::new().str(parent).u64(after).build())
                }
            }
        }
        let rows: Vec<(Vec<u8>, OwnedEventId)> =
            self.scan(Table::Relations, range, direction, limit).await?;
        rows.into_iter()
            .map(|(key, event_id)| {
                let mut reader = KeyReader::new(&key);
                reader.str()?;
                Ok((reader.u64()?, event_id))
            })
            .collect()
    }
}

impl Txn {
    /// Stores an event; a timeline event (`in_timeline`) also gets its place in the room's timeline.
    pub fn put_event(
        &mut self,
        event_id: &str,
        event: &StoredEvent,
        in_timeline: bool,
    ) -> Result<(), StoreError> {
        self.put(Table::Events, event_key(event_id), event)?;
        if in_timeline {
            self.put(
                Table::RoomTimeline,
                timeline_key(event.room_id.as_str(), event.stream),
                event_id,
            )?;
        }
        Ok(())
    }

    /// Stores an event of a room's history from before this server joined at `sequence` in the
    /// room's backfilled history; an outlier already stored is replaced by it (the same event,
    /// now placed).
    pub fn put_backfilled_event(
        &mut self,
        event_id: &str,
        sequence: u64,
        mut event: StoredEvent,
    ) -> Result<(), StoreError> {
        event.backfill = Some(sequence);
        self.put(Table::Events, event_key(event_id), &event)?;
        self.put(Table::RoomBackfill, timeline_key(event.room_id.as_str(), sequence), event_id)
    }

    /// Records a new state group: the state of `parent` (its ID and its chain length) with
    /// `changes` applied, `full` being the resulting state. Writes a delta, or a full snapshot
    /// once the chain would reach [`MAX_STATE_CHAIN`]. Returns the group's ID and chain length.
    pub fn add_state_group(
        &mut self,
        parent: Option<(u64, u32)>,
        changes: &StateMap,
        full: &StateMap,
    ) -> Result<(u64, u32), StoreError> {
        let id = self.next_stream();
        let group = match parent {
            Some((parent, chain)) if chain + 1 < MAX_STATE_CHAIN => {
                StateGroup { parent: Some(parent), chain: chain + 1, entries: entries(changes) }
            }
            _ => StateGroup { parent: None, chain: 0, entries: entries(full) },
        };
        self.put(Table::StateGroups, Key::new().u64(id).build(), &group)?;
        Ok((id, group.chain))
    }

    /// Stores a room's record.
    pub fn put_room(&mut self, room_id: &RoomId, room: &RoomRecord) -> Result<(), StoreError> {
        self.put(Table::Rooms, Key::new().str(room_id.as_str()).build(), room)
    }

    /// Records a user's current membership in a room, in both directions.
    pub fn set_membership(
        &mut self,
        room_id: &RoomId,
        user_id: &UserId,
        record: &MembershipRecord,
    ) -> Result<(), StoreError> {
        let by_user = Key::new().str(user_id.as_str()).str(room_id.as_str()).build();
        let by_room = Key::new().str(room_id.as_str()).str(user_id.as_str()).build();
        self.put(Table::Memberships, by_user, record)?;
        self.put(Table::RoomMembers, by_room, &record.membership)
    }

    /// Records that `child` (at `stream`) relates to `parent`.
    pub fn add_relation(
        &mut self,
        parent: &str,
        stream: u64,
        child: &str,
    ) -> Result<(), StoreError> {
        self.put(Table::Relations, Key::new().str(parent).u64(stream).build(), child)
    }
}

fn entries(state: &StateMap) -> Vec<(String, String, OwnedEventId)> {
    let sorted: BTreeMap<(String, String), OwnedEventId> = state
        .iter()
        .map(|((kind, key), id)| ((kind.to_string(), key.clone()), id.clone()))
        .collect();
    sorted.into_iter().map(|((kind, key), id)| (kind, key, id)).collect()
}
