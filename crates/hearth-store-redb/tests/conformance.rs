//! The shared conformance suite on redb, each test on a fresh database file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use hearth_core::platform::BoxFuture;
use hearth_store::{Backend, Direction, KeyRange, StoreError, Table, WriteBatch, backend::Entry};
use hearth_store_redb::RedbBackend;
use tempfile::TempDir;

/// A database in a temporary directory that is removed once the backend is dropped.
struct TempRedb {
    // Fields drop in order: the database is closed before its directory is removed.
    backend: RedbBackend,
    _dir: TempDir,
}

impl TempRedb {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let backend = RedbBackend::open(&dir.path().join("hearth.redb")).unwrap();
        TempRedb { backend, _dir: dir }
    }
}

impl Backend for TempRedb {
    fn get<'a>(
        &'a self,
        table: Table,
        key: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        self.backend.get(table, key)
    }

    fn scan<'a>(
        &'a self,
        table: Table,
        range: KeyRange,
        direction: Direction,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Entry>, StoreError>> {
        self.backend.scan(table, range, direction, limit)
    }

    fn commit(&self, batch: WriteBatch) -> BoxFuture<'_, Result<(), StoreError>> {
        self.backend.commit(batch)
    }
}

hearth_store::conformance_suite!(|| async { Arc::new(TempRedb::new()) as Arc<dyn Backend> });
