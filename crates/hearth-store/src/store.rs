//! [`Store`]: the data model over a [`Backend`], its schema version and its one counter.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use serde::{Serialize, de::DeserializeOwned};

use crate::{
    StoreError,
    backend::{Backend, Direction, Entry, KeyRange, Table, WriteBatch},
    keys::Key,
};

/// The schema this build writes. Bump it with a step in [`migrate`] whenever a persisted type or
/// key layout changes; the snapshot tests pin the current layout.
pub const SCHEMA_VERSION: u32 = 3;

const META_SCHEMA_VERSION: &str = "schema_version";
const META_STREAM: &str = "stream";

/// Hearth's persistent data, over any backend. Cheap to clone; clones share the backend and the
/// counter.
///
/// Every logical write is one [`Txn`] committed with [`Store::commit`]: one backend transaction,
/// so an event, its state, its timeline position and its indexes land together or not at all.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    stream: Arc<StreamCounter>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("stream", &self.current_stream()).finish_non_exhaustive()
    }
}

/// One counter orders everything incremental sync needs (events, account data, receipts,
/// to-device messages, key changes) and numbers state groups. Positions are allocated while a
/// transaction is built and become visible to readers only once it is committed.
#[derive(Debug)]
struct StreamCounter {
    allocated: AtomicU64,
    committed: AtomicU64,
}

impl Store {
    /// Opens (and on first use initialises) the database behind `backend`.
    pub async fn open(backend: Arc<dyn Backend>) -> Result<Store, StoreError> {
        let version: Option<u32> =
            get_json(&*backend, Table::Meta, &meta_key(META_SCHEMA_VERSION)).await?;
        let stream: u64 =
            get_json(&*backend, Table::Meta, &meta_key(META_STREAM)).await?.unwrap_or(0);
        match version {
            None => {
                let mut batch = WriteBatch::default();
                batch.put(Table::Meta, meta_key(META_SCHEMA_VERSION), encode(&SCHEMA_VERSION)?);
                backend.commit(batch).await?;
            }
            Some(found) if found > SCHEMA_VERSION => {
                return Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION });
            }
            Some(found) => migrate(&*backend, found).await?,
        }
        let stream =
            StreamCounter { allocated: AtomicU64::new(stream), committed: AtomicU64::new(stream) };
        Ok(Store { backend, stream: Arc::new(stream) })
    }

    /// The newest stream position whose transaction has been committed.
    pub fn current_stream(&self) -> u64 {
        self.stream.committed.load(Ordering::Acquire)
    }

    /// Starts building a logical write.
    pub fn transaction(&self) -> Txn {
        Txn {
            batch: WriteBatch::default(),
            stream: self.stream.clone(),
            max_stream: None,
            queued_for: std::collections::BTreeSet::new(),
        }
    }

    /// Applies a logical write in one backend transaction.
    ///
    /// Callers serialise transactions that allocate stream positions (the server has one writer),
    /// so positions become visible in order.
    pub async fn commit(&self, txn: Txn) -> Result<(), StoreError> {
        let Txn { mut batch, max_stream, .. } = txn;
        if let Some(max) = max_stream {
            batch.put(Table::Meta, meta_key(META_STREAM), encode(&max)?);
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.backend.commit(batch).await?;
        if let Some(max) = max_stream {
            self.stream.committed.fetch_max(max, Ordering::AcqRel);
        }
        Ok(())
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        table: Table,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        get_json(&*self.backend, table, key).await
    }

    /// Many values of one table in one backend read, in the order of `keys`.
    pub(crate) async fn get_many<T: DeserializeOwned>(
        &self,
        table: Table,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<T>>, StoreError> {
        self.backend
            .get_many(table, keys)
            .await?
            .into_iter()
            .map(|value| value.map(|bytes| decode(&bytes)).transpose())
            .collect()
    }

    pub(crate) async fn get_raw(
        &self,
        table: Table,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.backend.get(table, key).await
    }

    pub(crate) async fn scan_raw(
        &self,
        table: Table,
        range: KeyRange,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.backend.scan(table, range, direction, limit).await
    }

    /// Decoded values of a scan, keys kept.
    pub(crate) async fn scan<T: DeserializeOwned>(
        &self,
        table: Table,
        range: KeyRange,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        let entries = self.backend.scan(table, range, direction, limit).await?;
        entries.into_iter().map(|(key, value)| Ok((key, decode(&value)?))).collect()
    }

    /// Every entry of `table` whose key starts with the string component `first`, as the key's
    /// second string component and the decoded value (a user's rooms, a room's members, a
    /// user's devices).
    pub(crate) async fn scan_under<T: DeserializeOwned>(
        &self,
        table: Table,
        first: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let prefix = Key::new().str(first).build();
        let rows: Vec<(Vec<u8>, T)> =
            self.scan(table, KeyRange::prefix(&prefix), Direction::Forward, usize::MAX).await?;
        rows.into_iter()
            .map(|(key, value)| {
                let mut reader = crate::keys::KeyReader::new(&key);
                reader.str()?;
                Ok((reader.str()?, value))
            })
            .collect()
    }

    /// Reads a meta value (identity seed and the like).
    pub async fn meta<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StoreError> {
        self.get(Table::Meta, &meta_key(name)).await
    }
}

/// A logical write being built; nothing is visible until [`Store::commit`].
#[derive(Debug)]
pub struct Txn {
    pub(crate) batch: WriteBatch,
    stream: Arc<StreamCounter>,
    max_stream: Option<u64>,
    /// Destinations something was queued for (see [`Txn::queued_destinations`]).
    pub(crate) queued_for: std::collections::BTreeSet<String>,
}

impl Txn {
    /// Allocates the next stream position (also used to number state groups).
    pub fn next_stream(&mut self) -> u64 {
        let position = self.stream.allocated.fetch_add(1, Ordering::AcqRel) + 1;
        self.max_stream = Some(position);
        position
    }

    /// A point to roll back to: everything staged after it can be undone with
    /// [`Txn::rollback_to`]. Stream positions allocated after it stay used (gaps are harmless).
    pub fn savepoint(&self) -> usize {
        self.batch.ops.len()
    }

    /// Undoes everything staged since `savepoint`.
    pub fn rollback_to(&mut self, savepoint: usize) {
        self.batch.ops.truncate(savepoint);
    }

    /// Whether the transaction changes nothing yet.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty() && self.max_stream.is_none()
    }

    pub(crate) fn put<T: Serialize + ?Sized>(
        &mut self,
        table: Table,
        key: Vec<u8>,
        value: &T,
    ) -> Result<(), StoreError> {
        self.batch.put(table, key, encode(value)?);
        Ok(())
    }

    pub(crate) fn put_raw(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.batch.put(table, key, value);
    }

    pub(crate) fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.batch.delete(table, key);
    }

    /// Writes a meta value.
    pub fn set_meta<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        self.put(Table::Meta, meta_key(name), value)
    }
}

fn meta_key(name: &str) -> Vec<u8> {
    Key::new().str(name).build()
}

pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, StoreError> {
    // Serialising our own record types cannot fail (no non-string map keys, no I/O); an error
    // here would be a bug, reported rather than panicking.
    serde_json::to_vec(value).map_err(|error| StoreError::corrupt(format!("encoding: {error}")))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(StoreError::corrupt)
}

async fn get_json<T: DeserializeOwned>(
    backend: &dyn Backend,
    table: Table,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    backend.get(table, key).await?.map(|bytes| decode(&bytes)).transpose()
}

/// Upgrades a database from `found` to [`SCHEMA_VERSION`], one numbered step at a time, each in
/// its own transaction that also records the new version (so an interrupted upgrade resumes at
/// the step it stopped at). Never edit a step that has shipped: databases in the field ran it.
async fn migrate(backend: &dyn Backend, found: u32) -> Result<(), StoreError> {
    if found == 0 {
        return Err(StoreError::corrupt("unknown schema version 0"));
    }
    for from in found..SCHEMA_VERSION {
        let mut batch = WriteBatch::default();
        match from {
            1 => migrate_1_to_2(backend, &mut batch).await?,
            2 => migrate_2_to_3(backend, &mut batch).await?,
            _ => return Err(StoreError::corrupt(format!("unknown schema version {from}"))),
        }
        batch.put(Table::Meta, meta_key(META_SCHEMA_VERSION), encode(&(from + 1))?);
        backend.commit(batch).await?;
    }
    Ok(())
}

/// Version 2 adds the federation tables (outbound queue, inbound transactions, rejected
/// events). Backends create every table of [`Table::ALL`] when they open a database, and new
/// tables start empty, so no data changes.
async fn migrate_1_to_2(_backend: &dyn Backend, _batch: &mut WriteBatch) -> Result<(), StoreError> {
    Ok(())
}

/// Version 3 adds the backfill table (history from before a remote join) and the optional
/// `backfill` field of stored events, absent on every event written before: no data changes.
async fn migrate_2_to_3(_backend: &dyn Backend, _batch: &mut WriteBatch) -> Result<(), StoreError> {
    Ok(())
}
