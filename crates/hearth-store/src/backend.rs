//! What a storage backend implements: ordered byte tables, range scans and atomic batches.
//!
//! Everything Hearth persists is laid out by [`crate::Store`] over this small interface, so a
//! backend (memory, redb, IndexedDB) is a few hundred lines and the data model, its indexes and
//! its schema live in one place. Keys compare as unsigned bytes, which redb, IndexedDB binary keys
//! and `BTreeMap<Vec<u8>, _>` all do natively.

use std::ops::Bound;

use hearth_core::platform::{BoxFuture, SendOutsideWasm, SyncOutsideWasm};

use crate::StoreError;

/// The tables of the data model. Backends create all of them when they open a database; the
/// names are part of the persisted format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Table {
    /// Schema version, counters, the server's identity.
    Meta,
    /// Event ID → the event's JSON and where it sits (stored once per event).
    Events,
    /// Room ID, stream position → event ID: a room's timeline in local order.
    RoomTimeline,
    /// State group ID → a delta over its parent group, or a full snapshot.
    StateGroups,
    /// Room ID → the room's version, current state group, forward extremities, latest position.
    Rooms,
    /// User ID, room ID → the user's current membership in the room.
    Memberships,
    /// Room ID, user ID → the user's current membership in the room.
    RoomMembers,
    /// Related event ID, stream position → relating event ID (`m.relates_to`).
    Relations,
    /// User ID → account (password hash, profile, deactivation).
    Users,
    /// User ID, device ID → device (display name, last seen).
    Devices,
    /// Access token → user ID and device ID.
    AccessTokens,
    /// User ID, room ID ("" for global), event type → account data content.
    AccountData,
    /// User ID, stream position → which account data changed (for incremental sync).
    AccountDataChanges,
    /// User ID, filter ID → filter definition.
    Filters,
    /// User ID, device ID, transaction ID → the event ID the transaction produced.
    Transactions,
    /// Room alias → room ID.
    Aliases,
    /// Room ID, alias → nothing (the aliases of a room).
    RoomAliases,
    /// Room ID → nothing (rooms published in the public room directory).
    PublicRooms,
    /// Room ID, receipt type, thread, user ID → receipt.
    Receipts,
    /// Room ID, stream position → which receipt changed.
    ReceiptChanges,
    /// User ID, room ID, stream position → push actions of an event for that user.
    Notifications,
    /// User ID, device ID, stream position → a to-device message.
    ToDevice,
    /// User ID, device ID → the device's identity keys.
    DeviceKeys,
    /// User ID, device ID, algorithm, key ID → an unclaimed one-time key.
    OneTimeKeys,
    /// User ID, device ID, algorithm → the fallback key.
    FallbackKeys,
    /// User ID, key usage (master, self_signing, user_signing) → a cross-signing key.
    CrossSigningKeys,
    /// Stream position → user whose devices or cross-signing keys changed.
    KeyChanges,
    /// User ID, version → a room key backup version.
    BackupVersions,
    /// User ID, version, room ID, session ID → a backed-up room key.
    BackupKeys,
    /// Media ID → content type, file name, size.
    Media,
    /// Media ID → the bytes.
    MediaContent,
    /// User ID → presence state.
    Presence,
    /// Destination server, stream position → a PDU or EDU waiting to be sent there.
    OutboundQueue,
    /// Origin server, federation transaction ID → the response we gave it (idempotent `send`).
    InboundTransactions,
    /// Event ID → why the event was rejected on receipt.
    RejectedEvents,
    /// Room ID, backfill sequence → event ID: a room's history from before this server joined,
    /// fetched from other servers, newest first (sequence 1 is just before the first event of
    /// the room's timeline).
    RoomBackfill,
}

impl Table {
    /// Every table, in a stable order.
    pub const ALL: &[Table] = &[
        Table::Meta,
        Table::Events,
        Table::RoomTimeline,
        Table::StateGroups,
        Table::Rooms,
        Table::Memberships,
        Table::RoomMembers,
        Table::Relations,
        Table::Users,
        Table::Devices,
        Table::AccessTokens,
        Table::AccountData,
        Table::AccountDataChanges,
        Table::Filters,
        Table::Transactions,
        Table::Aliases,
        Table::RoomAliases,
        Table::PublicRooms,
        Table::Receipts,
        Table::ReceiptChanges,
        Table::Notifications,
        Table::ToDevice,
        Table::DeviceKeys,
        Table::OneTimeKeys,
        Table::FallbackKeys,
        Table::CrossSigningKeys,
        Table::KeyChanges,
        Table::BackupVersions,
        Table::BackupKeys,
        Table::Media,
        Table::MediaContent,
        Table::Presence,
        Table::OutboundQueue,
        Table::InboundTransactions,
        Table::RejectedEvents,
        Table::RoomBackfill,
    ];

    /// The table's persisted name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Events => "events",
            Table::RoomTimeline => "room_timeline",
            Table::StateGroups => "state_groups",
            Table::Rooms => "rooms",
            Table::Memberships => "memberships",
            Table::RoomMembers => "room_members",
            Table::Relations => "relations",
            Table::Users => "users",
            Table::Devices => "devices",
            Table::AccessTokens => "access_tokens",
            Table::AccountData => "account_data",
            Table::AccountDataChanges => "account_data_changes",
            Table::Filters => "filters",
            Table::Transactions => "transactions",
            Table::Aliases => "aliases",
            Table::RoomAliases => "room_aliases",
            Table::PublicRooms => "public_rooms",
            Table::Receipts => "receipts",
            Table::ReceiptChanges => "receipt_changes",
            Table::Notifications => "notifications",
            Table::ToDevice => "to_device",
            Table::DeviceKeys => "device_keys",
            Table::OneTimeKeys => "one_time_keys",
            Table::FallbackKeys => "fallback_keys",
            Table::CrossSigningKeys => "cross_signing_keys",
            Table::KeyChanges => "key_changes",
            Table::BackupVersions => "backup_versions",
            Table::BackupKeys => "backup_keys",
            Table::Media => "media",
            Table::MediaContent => "media_content",
            Table::Presence => "presence",
            Table::OutboundQueue => "outbound_queue",
            Table::InboundTransactions => "inbound_transactions",
            Table::RejectedEvents => "rejected_events",
            Table::RoomBackfill => "room_backfill",
        }
    }
}

/// A range of keys in one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    /// Lower bound.
    pub start: Bound<Vec<u8>>,
    /// Upper bound.
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        KeyRange { start: Bound::Included(prefix.to_vec()), end: prefix_end(prefix) }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let above = match &self.start {
            Bound::Included(start) => key >= start.as_slice(),
            Bound::Excluded(start) => key > start.as_slice(),
            Bound::Unbounded => true,
        };
        let below = match &self.end {
            Bound::Included(end) => key <= end.as_slice(),
            Bound::Excluded(end) => key < end.as_slice(),
            Bound::Unbounded => true,
        };
        above && below
    }

    /// Whether no key can lie in the range (backends whose range APIs panic on an inverted
    /// range check this first).
    pub fn is_empty(&self) -> bool {
        let (start, start_inclusive) = match &self.start {
            Bound::Included(start) => (start, true),
            Bound::Excluded(start) => (start, false),
            Bound::Unbounded => return false,
        };
        match &self.end {
            Bound::Included(end) => start > end || (start == end && !start_inclusive),
            Bound::Excluded(end) => start >= end,
            Bound::Unbounded => false,
        }
    }
}

/// The smallest key greater than every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Bound<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Bound::Excluded(end);
        }
    }
    Bound::Unbounded
}

/// Which way a scan walks its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Smallest key first.
    Forward,
    /// Largest key first.
    Backward,
}

/// One change in a [`WriteBatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// Insert or replace a value.
    Put {
        /// The table.
        table: Table,
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove a key (nothing happens if it is absent).
    Delete {
        /// The table.
        table: Table,
        /// The key.
        key: Vec<u8>,
    },
}

/// Changes that a backend applies all together or not at all, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// The changes, applied in order (a later change to the same key wins).
    pub ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// Adds a put.
    pub fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(WriteOp::Put { table, key, value });
    }

    /// Adds a delete.
    pub fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.ops.push(WriteOp::Delete { table, key });
    }

    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Appends another batch's changes after this one's.
    pub fn extend(&mut self, other: WriteBatch) {
        self.ops.extend(other.ops);
    }
}

/// A key and its value, as scans return them.
pub type Entry = (Vec<u8>, Vec<u8>);

/// An ordered key-value store with atomic batches: what each storage backend implements.
///
/// Durability: when [`Backend::commit`] returns `Ok`, the batch survives a crash of the process
/// (and, for IndexedDB, of the tab); when it returns `Err` or never returns, none of it is applied.
pub trait Backend: SendOutsideWasm + SyncOutsideWasm {
    /// The value under `key`, if any.
    fn get<'a>(
        &'a self,
        table: Table,
        key: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;

    /// The values under `keys`, in the same order (`None` where a key is absent). Backends that
    /// pay per read transaction (IndexedDB) read them all in one; the default reads one by one.
    fn get_many<'a>(
        &'a self,
        table: Table,
        keys: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, StoreError>> {
        Box::pin(async move {
            let mut values = Vec::with_capacity(keys.len());
            for key in keys {
                values.push(self.get(table, key).await?);
            }
            Ok(values)
        })
    }

    /// Up to `limit` entries of `range`, walking in `direction`.
    fn scan<'a>(
        &'a self,
        table: Table,
        range: KeyRange,
        direction: Direction,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Entry>, StoreError>>;

    /// Applies every change of `batch` in one transaction.
    fn commit(&self, batch: WriteBatch) -> BoxFuture<'_, Result<(), StoreError>>;
}
