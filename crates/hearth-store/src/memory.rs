//! The in-memory backend: for tests, and for a homeserver that need not outlive its process.

use std::{
    collections::BTreeMap,
    sync::{Mutex, MutexGuard},
};

use hearth_core::platform::BoxFuture;

use crate::{
    StoreError,
    backend::{Backend, Direction, Entry, KeyRange, Table, WriteBatch, WriteOp},
};

type Tables = BTreeMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>;

/// Every table in a `BTreeMap` behind one lock; a batch is applied under the lock, so readers
/// see all of it or none of it.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    tables: Mutex<Tables>,
}

impl MemoryBackend {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // Nothing that runs under the lock can panic halfway through a batch (map inserts and
        // removes do not panic), so the data behind a poisoned lock is still whole.
        self.tables.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Backend for MemoryBackend {
    fn get<'a>(
        &'a self,
        table: Table,
        key: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let value = self.tables().get(&table).and_then(|rows| rows.get(key).cloned());
        Box::pin(async move { Ok(value) })
    }

    fn scan<'a>(
        &'a self,
        table: Table,
        range: KeyRange,
        direction: Direction,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Entry>, StoreError>> {
        let entries = if range.is_empty() {
            Vec::new()
        } else {
            let tables = self.tables();
            match tables.get(&table) {
                None => Vec::new(),
                Some(rows) => {
                    let rows = rows.range((range.start, range.end));
                    let clone = |(key, value): (&Vec<u8>, &Vec<u8>)| (key.clone(), value.clone());
                    match direction {
                        Direction::Forward => rows.take(limit).map(clone).collect(),
                        Direction::Backward => rows.rev().take(limit).map(clone).collect(),
                    }
                }
            }
        };
        Box::pin(async move { Ok(entries) })
    }

    fn commit(&self, batch: WriteBatch) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut tables = self.tables();
        for op in batch.ops {
            match op {
                WriteOp::Put { table, key, value } => {
                    tables.entry(table).or_default().insert(key, value);
                }
                WriteOp::Delete { table, key } => {
                    if let Some(rows) = tables.get_mut(&table) {
                        rows.remove(&key);
                    }
                }
            }
        }
        drop(tables);
        Box::pin(async { Ok(()) })
    }
}
