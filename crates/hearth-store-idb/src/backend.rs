//! `IdbBackend`: opening and upgrading the database, and the `Backend` operations.

use std::{cell::RefCell, ops::Bound, rc::Rc};

use hearth_core::platform::BoxFuture;
use hearth_store::{
    Backend, Direction, KeyRange, StoreError, Table, WriteBatch, WriteOp, backend::Entry,
};
use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use web_sys::{
    DomException, IdbCursor, IdbCursorDirection, IdbDatabase, IdbFactory, IdbKeyRange,
    IdbObjectStore, IdbOpenDbRequest, IdbTransaction, IdbTransactionMode, IdbVersionChangeEvent,
};

use crate::{
    js::{
        Pending, bytes_to_js, failure, key_to_bytes, settled, transaction_failure, value_to_bytes,
    },
    schema::{DATABASE_VERSION, UPGRADES},
};

/// A `hearth-store` backend on one IndexedDB database: one object store per [`Table`], binary
/// keys (which IndexedDB orders as unsigned bytes) and `Uint8Array` values.
///
/// Every call runs in its own IndexedDB transaction on one connection, opened once. Commits are
/// `readwrite` transactions with `durability: "strict"`; IndexedDB runs overlapping `readwrite`
/// transactions in the order they were created, so commits apply in call order.
///
/// Dropping the backend closes the connection (after its running transactions finish). When
/// another tab asks to upgrade or delete the database, the connection closes itself so that it
/// does not block that tab; every later call on it fails with a message saying so.
#[derive(Debug)]
pub struct IdbBackend {
    database: IdbDatabase,
    /// `IDBDatabase.prototype.transaction`, called with an options argument that web-sys only
    /// binds behind `web_sys_unstable_apis`.
    transaction: Function,
    /// `{ durability: "strict" }`, the options of every commit.
    write_options: Object,
}

/// The global `indexedDB`: present in windows and in every kind of worker.
fn factory() -> Result<IdbFactory, StoreError> {
    Reflect::get(&js_sys::global(), &JsValue::from_str("indexedDB"))
        .ok()
        .and_then(|factory| factory.dyn_into::<IdbFactory>().ok())
        .ok_or_else(|| StoreError::Backend("IndexedDB is not available in this context".into()))
}

fn is_exception(error: &JsValue, name: &str) -> bool {
    error.dyn_ref::<DomException>().is_some_and(|exception| exception.name() == name)
}

impl IdbBackend {
    /// Opens the IndexedDB database `database_name`, creating it or upgrading it to
    /// [`DATABASE_VERSION`](crate::DATABASE_VERSION) first if needed.
    ///
    /// Fails with [`StoreError::SchemaTooNew`] if a newer build has upgraded the database past
    /// what this one knows, and with [`StoreError::Backend`] if the database lacks one of the
    /// tables (it was not created by Hearth). Waits while another tab holds the database open at
    /// an older version and does not close it.
    pub async fn open(database_name: &str) -> Result<IdbBackend, StoreError> {
        let factory = factory()?;
        let request = factory
            .open_with_u32(database_name, DATABASE_VERSION)
            .map_err(|error| failure("open", &error))?;
        let upgrade_failure: Rc<RefCell<Option<StoreError>>> = Rc::default();
        let on_upgrade = {
            let upgrade_failure = upgrade_failure.clone();
            Closure::<dyn FnMut(IdbVersionChangeEvent)>::new(move |event| {
                if let Err(error) = upgrade(&event) {
                    *upgrade_failure.borrow_mut() = Some(error);
                }
            })
        };
        request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
        let opened = Pending::new(&request).result().await;
        request.set_onupgradeneeded(None);
        drop(on_upgrade);
        let database = match opened {
            Ok(database) => database.dyn_into::<IdbDatabase>().map_err(|value| {
                StoreError::Backend(format!("IndexedDB open returned {value:?}, not a database"))
            })?,
            Err(error) => {
                if let Some(upgrade_failure) = upgrade_failure.take() {
                    return Err(upgrade_failure);
                }
                if is_exception(&error, "VersionError") {
                    return Err(too_new(&factory, database_name).await);
                }
                return Err(failure("open", &error));
            }
        };
        let names = database.object_store_names();
        if let Some(missing) = Table::ALL.iter().find(|table| !names.contains(table.name())) {
            database.close();
            return Err(StoreError::Backend(format!(
                "IndexedDB database '{database_name}' (version {}) has no object store '{}': it \
                 was not created by Hearth, or an upgrade step is missing",
                database.version(),
                missing.name()
            )));
        }
        let close = Reflect::get(&database, &JsValue::from_str("close"))
            .and_then(|close| close.dyn_into::<Function>())
            .map_err(|error| failure("open", &error))?;
        database.set_onversionchange(Some(&close.bind(&database)));
        let transaction = Reflect::get(&database, &JsValue::from_str("transaction"))
            .and_then(|function| function.dyn_into::<Function>())
            .map_err(|error| failure("open", &error))?;
        let write_options = Object::new();
        // Browsers that do not know the member ignore it (and then flush as they always did).
        Reflect::set(&write_options, &"durability".into(), &"strict".into())
            .map_err(|error| failure("open", &error))?;
        Ok(IdbBackend { database, transaction, write_options })
    }

    /// Deletes the IndexedDB database `database_name` and everything in it (nothing happens if
    /// it does not exist).
    ///
    /// Connections to it in this and other tabs that run this backend close themselves; the
    /// deletion waits for any other connection to close.
    pub async fn delete(database_name: &str) -> Result<(), StoreError> {
        let request =
            factory()?.delete_database(database_name).map_err(|error| failure("delete", &error))?;
        Pending::new(&request).result().await.map_err(|error| failure("delete", &error))?;
        Ok(())
    }

    /// Test hook: commits with another durability ("relaxed", "default"), to measure what
    /// "strict" costs.
    #[cfg(test)]
    pub(crate) fn set_durability(&self, durability: &str) {
        let _ = Reflect::set(&self.write_options, &"durability".into(), &durability.into());
    }

    /// The database's name.
    pub fn name(&self) -> String {
        self.database.name()
    }

    fn store(&self, table: Table) -> Result<IdbObjectStore, StoreError> {
        self.database
            .transaction_with_str_and_mode(table.name(), IdbTransactionMode::Readonly)
            .and_then(|transaction| transaction.object_store(table.name()))
            .map_err(|error| failure(&format!("read of {}", table.name()), &error))
    }

    async fn get_now(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let doing = || format!("get from {}", table.name());
        let store = self.store(table)?;
        let request = store.get(&bytes_to_js(key)).map_err(|error| failure(&doing(), &error))?;
        let value =
            Pending::new(&request).result().await.map_err(|error| failure(&doing(), &error))?;
        if value.is_undefined() { Ok(None) } else { value_to_bytes(&value).map(Some) }
    }

    /// Every get is issued at once in one read-only transaction, then awaited in order.
    async fn get_many_now(
        &self,
        table: Table,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let doing = || format!("get from {}", table.name());
        let store = self.store(table)?;
        // Each request's handlers are attached as it is made: its success event fires in a
        // later task, which may come while an earlier request is being awaited.
        let requests = keys
            .iter()
            .map(|key| {
                store
                    .get(&bytes_to_js(key))
                    .map(|request| Pending::new(&request))
                    .map_err(|error| failure(&doing(), &error))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut values = Vec::with_capacity(requests.len());
        for request in requests {
            let value = request.result().await.map_err(|error| failure(&doing(), &error))?;
            values.push(if value.is_undefined() { None } else { Some(value_to_bytes(&value)?) });
        }
        Ok(values)
    }

    async fn scan_now(
        &self,
        table: Table,
        range: KeyRange,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        // `IDBKeyRange.bound` throws on an inverted range, and `getAll` reads a count of 0 as
        // "no limit".
        if range.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let doing = || format!("scan of {}", table.name());
        let store = self.store(table)?;
        let count = u32::try_from(limit).ok().filter(|count| *count < u32::MAX);
        match (direction, count) {
            (Direction::Forward, _) => get_all(&store, &range, count).await,
            (Direction::Backward, None) => {
                let mut entries = get_all(&store, &range, None).await?;
                entries.reverse();
                Ok(entries)
            }
            (Direction::Backward, Some(count)) => {
                // `getAll` only walks forward. Rather than stepping a cursor once per entry (an
                // event-loop turn each), find the lowest key of the window with one backward
                // `advance`, then read the window forward in one go. Both reads run in one
                // read-only transaction, so they see the same snapshot.
                let query = key_range(&range).map_err(|error| failure(&doing(), &error))?;
                let request = store
                    .open_key_cursor_with_range_and_direction(&query, IdbCursorDirection::Prev)
                    .map_err(|error| failure(&doing(), &error))?;
                let cursor = Pending::new(&request)
                    .result()
                    .await
                    .map_err(|error| failure(&doing(), &error))?;
                let Ok(cursor) = cursor.dyn_into::<IdbCursor>() else {
                    return Ok(Vec::new());
                };
                let mut lowest = Some(cursor.clone());
                if count > 1 {
                    cursor.advance(count - 1).map_err(|error| failure(&doing(), &error))?;
                    let advanced = Pending::new(&request)
                        .result()
                        .await
                        .map_err(|error| failure(&doing(), &error))?;
                    // Fewer than `count` keys: the window is the whole range.
                    lowest = advanced.dyn_into::<IdbCursor>().ok();
                }
                let window = match lowest {
                    Some(cursor) => {
                        let key = cursor.key().map_err(|error| failure(&doing(), &error))?;
                        KeyRange { start: Bound::Included(key_to_bytes(&key)?), end: range.end }
                    }
                    None => range,
                };
                let mut entries = get_all(&store, &window, None).await?;
                entries.reverse();
                Ok(entries)
            }
        }
    }

    async fn commit_now(&self, batch: WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tables: Vec<Table> = Vec::new();
        for op in &batch.ops {
            let (WriteOp::Put { table, .. } | WriteOp::Delete { table, .. }) = op;
            if !tables.contains(table) {
                tables.push(*table);
            }
        }
        // Converted one at a time as they are queued: no second copy of the whole batch.
        let ops = batch.ops.into_iter().map(|op| match op {
            WriteOp::Put { table, key, value } => {
                (table, Staged::Put { key: bytes_to_js(&key), value: bytes_to_js(&value) })
            }
            WriteOp::Delete { table, key } => (table, Staged::Delete { key: bytes_to_js(&key) }),
        });
        self.apply(&tables, ops).await
    }

    /// Runs `ops` in one `readwrite` transaction over `tables`, resolving once it completes.
    pub(crate) async fn apply(
        &self,
        tables: &[Table],
        ops: impl Iterator<Item = (Table, Staged)>,
    ) -> Result<(), StoreError> {
        let doing = "commit";
        let names: Array = tables.iter().map(|table| JsValue::from_str(table.name())).collect();
        let transaction = self
            .transaction
            .call3(&self.database, &names, &JsValue::from_str("readwrite"), &self.write_options)
            .and_then(|transaction| transaction.dyn_into::<IdbTransaction>())
            .map_err(|error| failure(doing, &error))?;
        let outcome = settled(&transaction);
        let guard = AbortUnlessSettled(Some(transaction.clone()));
        let mut stores: Vec<(Table, IdbObjectStore)> = Vec::with_capacity(tables.len());
        for table in tables {
            let store =
                transaction.object_store(table.name()).map_err(|error| failure(doing, &error))?;
            stores.push((*table, store));
        }
        // Every request is queued now, without waiting for the previous one: IndexedDB runs a
        // transaction's requests in order. A request that throws here (its arguments cannot be
        // stored) returns early, and `guard` aborts what was queued before it.
        for (table, op) in ops {
            let Some((_, store)) = stores.iter().find(|(candidate, _)| *candidate == table) else {
                return Err(StoreError::Backend(format!(
                    "IndexedDB commit: table {} is outside the transaction",
                    table.name()
                )));
            };
            let queued = match op {
                Staged::Put { key, value } => store.put_with_key(&value, &key),
                Staged::Delete { key } => store.delete(&key),
            };
            queued.map_err(|error| failure(doing, &error))?;
        }
        // No `transaction.commit()` here: it saved nothing measurable (the browser commits as
        // soon as the last request ran anyway), and a committing transaction can no longer be
        // aborted by `guard` when the commit future is dropped.
        let result = outcome.await;
        guard.disarm();
        result.map(drop).map_err(|_| transaction_failure(doing, &transaction))
    }
}

/// One write of a commit, converted to the JavaScript values IndexedDB takes.
pub(crate) enum Staged {
    Put { key: JsValue, value: JsValue },
    Delete { key: JsValue },
}

/// Aborts a commit's transaction if the commit returns early or its future is dropped before the
/// transaction settles, so that a commit that does not return `Ok` applies nothing. (A dropped
/// commit whose transaction had already completed stays applied: IndexedDB cannot undo it.)
struct AbortUnlessSettled(Option<IdbTransaction>);

impl AbortUnlessSettled {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for AbortUnlessSettled {
    fn drop(&mut self) {
        if let Some(transaction) = self.0.take() {
            // Throws only if the transaction already finished, and then there is nothing to undo.
            let _ = transaction.abort();
        }
    }
}

impl Drop for IdbBackend {
    fn drop(&mut self) {
        self.database.close();
    }
}

/// Runs the upgrade steps from the database's version to [`DATABASE_VERSION`], inside the open
/// request's `versionchange` transaction. On failure it aborts that transaction, which makes the
/// open fail and leaves the database as it was.
fn upgrade(event: &IdbVersionChangeEvent) -> Result<(), StoreError> {
    let request = event
        .target()
        .and_then(|target| target.dyn_into::<IdbOpenDbRequest>().ok())
        .ok_or_else(|| StoreError::Backend("IndexedDB upgrade: no open request".into()))?;
    let result = (|| {
        let database = request.result()?.dyn_into::<IdbDatabase>()?;
        // Versions are whole numbers below 2^53; the open asked for DATABASE_VERSION.
        let from = event.old_version() as usize;
        for step in UPGRADES.iter().skip(from) {
            for table in *step {
                database.create_object_store(table.name())?;
            }
        }
        Ok::<(), JsValue>(())
    })();
    result.map_err(|error| {
        if let Some(transaction) = request.transaction() {
            let _ = transaction.abort();
        }
        failure("upgrade", &error)
    })
}

/// The error for a database a newer build upgraded: opens it at whatever version it has, to say
/// which.
async fn too_new(factory: &IdbFactory, database_name: &str) -> StoreError {
    let found = match factory.open(database_name) {
        Ok(request) => match Pending::new(&request).result().await {
            Ok(database) => match database.dyn_into::<IdbDatabase>() {
                Ok(database) => {
                    database.close();
                    database.version() as u32
                }
                Err(_) => 0,
            },
            Err(error) => return failure("open", &error),
        },
        Err(error) => return failure("open", &error),
    };
    StoreError::SchemaTooNew { found, supported: DATABASE_VERSION }
}

/// The IndexedDB key range for `range` (undefined for an unbounded one, which IndexedDB reads as
/// every key). The caller has ruled out empty ranges, on which `IDBKeyRange.bound` throws.
fn key_range(range: &KeyRange) -> Result<JsValue, JsValue> {
    let side = |bound: &Bound<Vec<u8>>| match bound {
        Bound::Included(key) => Some((bytes_to_js(key), false)),
        Bound::Excluded(key) => Some((bytes_to_js(key), true)),
        Bound::Unbounded => None,
    };
    let range: IdbKeyRange = match (side(&range.start), side(&range.end)) {
        (None, None) => return Ok(JsValue::UNDEFINED),
        (Some((lower, open)), None) => IdbKeyRange::lower_bound_with_open(&lower, open)?,
        (None, Some((upper, open))) => IdbKeyRange::upper_bound_with_open(&upper, open)?,
        (Some((lower, lower_open)), Some((upper, upper_open))) => {
            IdbKeyRange::bound_with_lower_open_and_upper_open(
                &lower, &upper, lower_open, upper_open,
            )?
        }
    };
    Ok(range.into())
}

/// Up to `count` entries of `range`, smallest key first: `getAllKeys` and `getAll` queued
/// together in one read-only transaction (so both see the same snapshot), two requests in all.
async fn get_all(
    store: &IdbObjectStore,
    range: &KeyRange,
    count: Option<u32>,
) -> Result<Vec<Entry>, StoreError> {
    let doing = || format!("scan of {}", store.name());
    let query = key_range(range).map_err(|error| failure(&doing(), &error))?;
    let requests = match count {
        Some(count) => store
            .get_all_keys_with_key_and_limit(&query, count)
            .and_then(|keys| Ok((keys, store.get_all_with_key_and_limit(&query, count)?))),
        None => store
            .get_all_keys_with_key(&query)
            .and_then(|keys| Ok((keys, store.get_all_with_key(&query)?))),
    };
    let (keys, values) = requests.map_err(|error| failure(&doing(), &error))?;
    let (keys, values) = (Pending::new(&keys), Pending::new(&values));
    let keys = keys.result().await.map_err(|error| failure(&doing(), &error))?;
    let values = values.result().await.map_err(|error| failure(&doing(), &error))?;
    let (keys, values) = (Array::from(&keys), Array::from(&values));
    if keys.length() != values.length() {
        return Err(StoreError::Backend(format!(
            "IndexedDB {} returned {} keys but {} values",
            doing(),
            keys.length(),
            values.length()
        )));
    }
    keys.iter()
        .zip(values.iter())
        .map(|(key, value)| Ok((key_to_bytes(&key)?, value_to_bytes(&value)?)))
        .collect()
}

impl Backend for IdbBackend {
    fn get<'a>(
        &'a self,
        table: Table,
        key: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(self.get_now(table, key))
    }

    fn get_many<'a>(
        &'a self,
        table: Table,
        keys: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, StoreError>> {
        Box::pin(self.get_many_now(table, keys))
    }

    fn scan<'a>(
        &'a self,
        table: Table,
        range: KeyRange,
        direction: Direction,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Entry>, StoreError>> {
        Box::pin(self.scan_now(table, range, direction, limit))
    }

    fn commit(&self, batch: WriteBatch) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.commit_now(batch))
    }
}
