#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use std::{ops::Bound, path::Path};

use hearth_core::platform::BoxFuture;
use hearth_store::{
    Backend, Direction, KeyRange, StoreError, Table, WriteBatch, WriteOp, backend::Entry,
};
use redb::{Database, Durability, ReadableDatabase, TableDefinition};

/// A `hearth-store` backend on one redb database file.
///
/// redb is synchronous and blocks on disk I/O (a commit waits for its fsync). The futures this
/// backend returns do that work when first polled, on the polling thread: acceptable for a store
/// that a tokio host drives for now, which may later move these calls onto a blocking thread
/// (`spawn_blocking`) without anything here changing.
#[derive(Debug)]
pub struct RedbBackend {
    database: Database,
}

/// The redb table that holds `table`: byte keys (ordered bytewise, as [`Backend`] requires) and
/// byte values.
fn definition(table: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(table.name())
}

impl RedbBackend {
    /// Opens the database file at `path`, creating it if it does not exist.
    pub fn open(path: &Path) -> Result<RedbBackend, StoreError> {
        let database = Database::create(path).map_err(StoreError::backend)?;
        RedbBackend::from_database(database)
    }

    /// Uses an already opened redb database (one built with [`redb::Builder`], say, for its
    /// cache sizes or its storage backend).
    ///
    /// Creates every table of [`Table::ALL`] that does not exist yet, in one write transaction:
    /// all of them on first use, and the ones a newer build added when an older file is opened.
    pub fn from_database(database: Database) -> Result<RedbBackend, StoreError> {
        let mut txn = database.begin_write().map_err(StoreError::backend)?;
        txn.set_durability(Durability::Immediate).map_err(StoreError::backend)?;
        for table in Table::ALL {
            txn.open_table(definition(*table)).map_err(StoreError::backend)?;
        }
        txn.commit().map_err(StoreError::backend)?;
        Ok(RedbBackend { database })
    }

    fn get_now(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.database.begin_read().map_err(StoreError::backend)?;
        let rows = txn.open_table(definition(table)).map_err(StoreError::backend)?;
        let value = rows.get(key).map_err(StoreError::backend)?;
        Ok(value.map(|value| value.value().to_vec()))
    }

    fn scan_now(
        &self,
        table: Table,
        range: &KeyRange,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        // redb panics on a range whose start lies after its end.
        if range.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let txn = self.database.begin_read().map_err(StoreError::backend)?;
        let rows = txn.open_table(definition(table)).map_err(StoreError::backend)?;
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (as_slice(&range.start), as_slice(&range.end));
        let rows = rows.range::<&[u8]>(bounds).map_err(StoreError::backend)?;
        let entry = |row: Result<(Guard<'_>, Guard<'_>), redb::StorageError>| {
            let (key, value) = row.map_err(StoreError::backend)?;
            Ok((key.value().to_vec(), value.value().to_vec()))
        };
        match direction {
            Direction::Forward => rows.take(limit).map(entry).collect(),
            Direction::Backward => rows.rev().take(limit).map(entry).collect(),
        }
    }

    fn commit_now(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut txn = self.database.begin_write().map_err(StoreError::backend)?;
        // redb's default, spelled out: `commit` returns once the batch is fsync'd, which is what
        // `Backend::commit` promises.
        txn.set_durability(Durability::Immediate).map_err(StoreError::backend)?;
        for op in batch.ops {
            // An error returns early and drops `txn`, which aborts it: nothing is applied.
            match op {
                WriteOp::Put { table, key, value } => {
                    let mut rows =
                        txn.open_table(definition(table)).map_err(StoreError::backend)?;
                    rows.insert(key.as_slice(), value.as_slice()).map_err(StoreError::backend)?;
                }
                WriteOp::Delete { table, key } => {
                    let mut rows =
                        txn.open_table(definition(table)).map_err(StoreError::backend)?;
                    rows.remove(key.as_slice()).map_err(StoreError::backend)?;
                }
            }
        }
        txn.commit().map_err(StoreError::backend)
    }
}

type Guard<'a> = redb::AccessGuard<'a, &'static [u8]>;

fn as_slice(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_slice()),
        Bound::Excluded(key) => Bound::Excluded(key.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Backend for RedbBackend {
    fn get<'a>(
        &'a self,
        table: Table,
        key: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move { self.get_now(table, key) })
    }

    fn scan<'a>(
        &'a self,
        table: Table,
        range: KeyRange,
        direction: Direction,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Entry>, StoreError>> {
        Box::pin(async move { self.scan_now(table, &range, direction, limit) })
    }

    fn commit(&self, batch: WriteBatch) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.commit_now(batch) })
    }
}
