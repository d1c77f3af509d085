//! What the conformance suite cannot see: the database's life across connections, its version
//! upgrades and the databases it refuses.
#![cfg(target_family = "wasm")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::Bound;

use hearth_store::{Backend, Direction, KeyRange, StoreError, Table, WriteBatch};
use hearth_store_idb::{DATABASE_VERSION, IdbBackend};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;
use web_sys::{IdbDatabase, IdbFactory, IdbOpenDbRequest};

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn fresh_name(test: &str) -> String {
    format!("hearth-{test}-{}-{}", js_sys::Date::now(), js_sys::Math::random())
}

fn factory() -> IdbFactory {
    js_sys::Reflect::get(&js_sys::global(), &"indexedDB".into()).unwrap().dyn_into().unwrap()
}

/// Opens `name` with raw IndexedDB (at `version`, or at whatever it has), as another program
/// sharing the origin would.
async fn open_raw(name: &str, version: Option<u32>) -> IdbDatabase {
    let request: IdbOpenDbRequest = match version {
        Some(version) => factory().open_with_u32(name, version).unwrap(),
        None => factory().open(name).unwrap(),
    };
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    JsFuture::from(promise).await.unwrap();
    request.result().unwrap().dyn_into().unwrap()
}

fn all() -> KeyRange {
    KeyRange { start: Bound::Unbounded, end: Bound::Unbounded }
}

#[wasm_bindgen_test]
async fn data_survives_closing_and_reopening() {
    let name = fresh_name("reopen");
    let backend = IdbBackend::open(&name).await.unwrap();
    let mut batch = WriteBatch::default();
    batch.put(Table::Events, b"$a".to_vec(), b"first".to_vec());
    batch.put(Table::Rooms, b"!r".to_vec(), vec![0, 255, 7]);
    backend.commit(batch).await.unwrap();
    drop(backend);

    let reopened = IdbBackend::open(&name).await.unwrap();
    assert_eq!(reopened.get(Table::Events, b"$a").await.unwrap(), Some(b"first".to_vec()));
    assert_eq!(reopened.get(Table::Rooms, b"!r").await.unwrap(), Some(vec![0, 255, 7]));
    let mut batch = WriteBatch::default();
    batch.delete(Table::Events, b"$a".to_vec());
    reopened.commit(batch).await.unwrap();
    drop(reopened);

    let again = IdbBackend::open(&name).await.unwrap();
    assert_eq!(again.get(Table::Events, b"$a").await.unwrap(), None);
    assert_eq!(again.scan(Table::Rooms, all(), Direction::Forward, 10).await.unwrap().len(), 1);
    drop(again);
    IdbBackend::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_new_database_is_upgraded_to_every_table() {
    let name = fresh_name("upgrade");
    let backend = IdbBackend::open(&name).await.unwrap();
    drop(backend);
    // Looked at from outside: the version is this build's, with one store per table.
    let database = open_raw(&name, None).await;
    assert_eq!(database.version() as u32, DATABASE_VERSION);
    let names = database.object_store_names();
    assert_eq!(names.length() as usize, Table::ALL.len());
    for table in Table::ALL {
        assert!(names.contains(table.name()), "{table:?}");
    }
    database.close();
    // Opening at the current version again runs no upgrade step (one would fail: the stores
    // exist) and keeps working.
    IdbBackend::open(&name).await.unwrap();
    IdbBackend::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn an_existing_empty_database_is_refused_not_half_used() {
    // Opening without a version creates a database at version 1 with no stores: not Hearth's.
    let name = fresh_name("foreign");
    open_raw(&name, None).await.close();
    match IdbBackend::open(&name).await {
        Err(StoreError::Backend(message)) => {
            assert!(message.contains("has no object store 'meta'"), "{message}");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    IdbBackend::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_database_from_a_newer_build_is_refused() {
    let name = fresh_name("newer");
    open_raw(&name, Some(DATABASE_VERSION + 1)).await.close();
    match IdbBackend::open(&name).await {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (DATABASE_VERSION + 1, DATABASE_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    IdbBackend::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn deleting_the_database_closes_open_connections() {
    let name = fresh_name("delete");
    let backend = IdbBackend::open(&name).await.unwrap();
    let mut batch = WriteBatch::default();
    batch.put(Table::Users, b"@a:x".to_vec(), b"1".to_vec());
    backend.commit(batch).await.unwrap();
    // The open connection closes itself on `versionchange` instead of blocking the deletion.
    IdbBackend::delete(&name).await.unwrap();
    match backend.get(Table::Users, b"@a:x").await {
        Err(StoreError::Backend(message)) => assert!(message.contains("reload"), "{message}"),
        other => panic!("expected a closed-connection error, got {other:?}"),
    }
    let mut batch = WriteBatch::default();
    batch.put(Table::Users, b"@b:x".to_vec(), b"2".to_vec());
    assert!(matches!(backend.commit(batch).await, Err(StoreError::Backend(_))));
    drop(backend);
    let fresh = IdbBackend::open(&name).await.unwrap();
    assert_eq!(fresh.get(Table::Users, b"@a:x").await.unwrap(), None);
    drop(fresh);
    IdbBackend::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_dropped_commit_applies_nothing() {
    let name = fresh_name("dropped");
    let backend = IdbBackend::open(&name).await.unwrap();
    let mut batch = WriteBatch::default();
    batch.put(Table::Events, b"$x".to_vec(), b"never".to_vec());
    {
        // Polled once, so its requests are queued, then dropped before `complete`.
        let mut commit = backend.commit(batch);
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        assert!(commit.as_mut().poll(&mut context).is_pending());
    }
    assert_eq!(backend.get(Table::Events, b"$x").await.unwrap(), None);
    drop(backend);
    IdbBackend::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn backward_scans_find_their_window() {
    let name = fresh_name("backward");
    let backend = IdbBackend::open(&name).await.unwrap();
    let mut batch = WriteBatch::default();
    for n in 0u8..50 {
        batch.put(Table::RoomTimeline, vec![b'r', n], vec![n]);
    }
    batch.put(Table::RoomTimeline, b"s".to_vec(), b"other room".to_vec());
    backend.commit(batch).await.unwrap();
    let keys = |entries: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<u8> {
        entries
            .into_iter()
            .map(|(key, value)| {
                assert_eq!(key[1], value[0]);
                value[0]
            })
            .collect()
    };
    let room = KeyRange::prefix(b"r");
    let last = backend.scan(Table::RoomTimeline, room.clone(), Direction::Backward, 3).await;
    assert_eq!(keys(last.unwrap()), [49, 48, 47]);
    let one = backend.scan(Table::RoomTimeline, room.clone(), Direction::Backward, 1).await;
    assert_eq!(keys(one.unwrap()), [49]);
    let more_than_there = backend.scan(Table::RoomTimeline, room.clone(), Direction::Backward, 80);
    assert_eq!(keys(more_than_there.await.unwrap()), (0..50).rev().collect::<Vec<u8>>());
    let exactly = backend.scan(Table::RoomTimeline, room, Direction::Backward, 50).await;
    assert_eq!(keys(exactly.unwrap()).len(), 50);
    let below =
        KeyRange { start: Bound::Excluded(vec![b'r', 10]), end: Bound::Excluded(vec![b'r', 20]) };
    let window = backend.scan(Table::RoomTimeline, below, Direction::Backward, 4).await;
    assert_eq!(keys(window.unwrap()), [19, 18, 17, 16]);
    drop(backend);
    IdbBackend::delete(&name).await.unwrap();
}
