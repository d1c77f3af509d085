//! Tests that need the backend's insides: a commit IndexedDB refuses halfway, and timings.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::arc_with_non_send_sync)]

use std::{ops::Bound, sync::Arc};

use hearth_core::ruma::owned_event_id;
use hearth_store::{
    Backend, Direction, KeyRange, OutboundItem, Store, StoreError, Table, WriteBatch,
};
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use wasm_bindgen_test::{console_log, wasm_bindgen_test};
use web_sys::{IdbDatabase, IdbFactory, IdbOpenDbRequest, IdbTransactionMode};

use crate::{
    IdbBackend,
    backend::Staged,
    js::{Pending, bytes_to_js, settled},
    schema::UPGRADES,
};

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn fresh_name(test: &str) -> String {
    format!("hearth-unit-{test}-{}-{}", js_sys::Date::now(), js_sys::Math::random())
}

fn put(key: &[u8], value: JsValue) -> Staged {
    Staged::Put { key: bytes_to_js(key), value }
}

/// A batch whose third write IndexedDB cannot store: the structured clone of a function throws
/// `DataCloneError` from `put`, after two writes (over two tables) were already queued in the same
/// transaction. The commit must fail and roll both back. Through the public API every value is
/// bytes, which IndexedDB always stores; this is the same code path with a value that fails the
/// way a full disk (`QuotaExceededError`) or a closing connection would.
#[wasm_bindgen_test]
async fn a_batch_that_fails_halfway_applies_nothing() {
    let name = fresh_name("halfway");
    let backend = IdbBackend::open(&name).await.unwrap();
    let mut before = WriteBatch::default();
    before.put(Table::Rooms, b"!kept".to_vec(), b"old".to_vec());
    backend.commit(before).await.unwrap();

    let unstorable: JsValue = js_sys::Function::new_no_args("return 1").into();
    let ops = vec![
        (Table::Events, put(b"$new", bytes_to_js(b"event"))),
        (Table::Rooms, put(b"!kept", bytes_to_js(b"overwritten"))),
        (Table::Rooms, Staged::Delete { key: bytes_to_js(b"!never-there") }),
        (Table::Events, put(b"$bad", unstorable)),
        (Table::Events, put(b"$after", bytes_to_js(b"after"))),
    ];
    match backend.apply(&[Table::Events, Table::Rooms], ops.into_iter()).await {
        Err(StoreError::Backend(message)) => {
            assert!(message.contains("DataCloneError"), "{message}");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert_eq!(backend.get(Table::Events, b"$new").await.unwrap(), None);
    assert_eq!(backend.get(Table::Events, b"$after").await.unwrap(), None);
    assert_eq!(backend.get(Table::Rooms, b"!kept").await.unwrap(), Some(b"old".to_vec()));

    // The connection is unharmed: the next batch applies.
    let mut after = WriteBatch::default();
    after.put(Table::Events, b"$new".to_vec(), b"event".to_vec());
    backend.commit(after).await.unwrap();
    assert_eq!(backend.get(Table::Events, b"$new").await.unwrap(), Some(b"event".to_vec()));
    drop(backend);
    IdbBackend::delete(&name).await.unwrap();
}

/// A database a version 1 build made (IndexedDB version 1, so only step 1's stores, and data
/// model schema version 1) opens in this build: upgrade step 2 adds the federation stores, the
/// data model migrates, and what was stored stays.
#[wasm_bindgen_test]
async fn a_version_1_database_is_upgraded() {
    let name = fresh_name("v1");
    let factory: IdbFactory =
        js_sys::Reflect::get(&js_sys::global(), &"indexedDB".into()).unwrap().dyn_into().unwrap();
    let request = factory.open_with_u32(&name, 1).unwrap();
    let on_upgrade = Closure::<dyn FnMut(web_sys::Event)>::new(|event: web_sys::Event| {
        let request: IdbOpenDbRequest = event.target().unwrap().dyn_into().unwrap();
        let database: IdbDatabase = request.result().unwrap().dyn_into().unwrap();
        for table in UPGRADES[0] {
            database.create_object_store(table.name()).unwrap();
        }
    });
    request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let database: IdbDatabase = Pending::new(&request).result().await.unwrap().dyn_into().unwrap();
    request.set_onupgradeneeded(None);
    drop(on_upgrade);
    assert!(!database.object_store_names().contains(Table::OutboundQueue.name()));
    // Meta as a version 1 build writes it: schema version 1 (JSON), stream position 7.
    let transaction =
        database.transaction_with_str_and_mode("meta", IdbTransactionMode::Readwrite).unwrap();
    let meta = transaction.object_store("meta").unwrap();
    meta.put_with_key(&bytes_to_js(b"1"), &bytes_to_js(b"schema_version\0\x01")).unwrap();
    meta.put_with_key(&bytes_to_js(b"7"), &bytes_to_js(b"stream\0\x01")).unwrap();
    settled(&transaction).await.unwrap();
    database.close();

    let backend = Arc::new(IdbBackend::open(&name).await.unwrap());
    let store = Store::open(backend.clone()).await.unwrap();
    assert_eq!(
        store.meta::<u32>("schema_version").await.unwrap(),
        Some(hearth_store::SCHEMA_VERSION)
    );
    assert_eq!(store.current_stream(), 7);
    let mut txn = store.transaction();
    let item = OutboundItem::Pdu { event_id: owned_event_id!("$e") };
    assert_eq!(txn.queue_outbound("remote.test", &item).unwrap(), 8);
    store.commit(txn).await.unwrap();
    assert_eq!(store.outbound_destinations().await.unwrap(), ["remote.test"]);
    drop(store);
    drop(backend);
    IdbBackend::delete(&name).await.unwrap();
}

/// Prints what the operations a message send is made of cost in this browser (headless
/// Chromium on a CI machine is slower than a desktop, and a debug build slower than a release).
#[wasm_bindgen_test]
async fn timings() {
    const ROUNDS: u32 = 100;
    let name = fresh_name("timings");
    let backend = IdbBackend::open(&name).await.unwrap();
    let event = vec![7u8; 1500];

    let mut commit_ms = Vec::new();
    for durability in ["strict", "relaxed"] {
        backend.set_durability(durability);
        let start = js_sys::Date::now();
        for n in 0..ROUNDS {
            let mut batch = WriteBatch::default();
            batch.put(Table::Events, format!("{durability}{n:04}").into_bytes(), event.clone());
            backend.commit(batch).await.unwrap();
        }
        commit_ms.push((durability, (js_sys::Date::now() - start) / f64::from(ROUNDS)));
    }
    backend.set_durability("strict");

    let start = js_sys::Date::now();
    for n in 0..ROUNDS {
        let mut batch = WriteBatch::default();
        for table in [Table::Events, Table::RoomTimeline, Table::Rooms, Table::Meta] {
            batch.put(table, format!("m{n:04}").into_bytes(), event.clone());
        }
        backend.commit(batch).await.unwrap();
    }
    let message_commit_ms = (js_sys::Date::now() - start) / f64::from(ROUNDS);

    let start = js_sys::Date::now();
    for n in 0..ROUNDS {
        let key = format!("strict{n:04}").into_bytes();
        assert!(backend.get(Table::Events, &key).await.unwrap().is_some());
    }
    let get_ms = (js_sys::Date::now() - start) / f64::from(ROUNDS);

    let start = js_sys::Date::now();
    for _ in 0..ROUNDS {
        let entries = backend
            .scan(Table::Events, KeyRange::prefix(b"strict"), Direction::Backward, 20)
            .await
            .unwrap();
        assert_eq!(entries.len(), 20);
    }
    let backward_ms = (js_sys::Date::now() - start) / f64::from(ROUNDS);

    let start = js_sys::Date::now();
    let all = KeyRange { start: Bound::Unbounded, end: Bound::Unbounded };
    for _ in 0..ROUNDS {
        let entries = backend.scan(Table::Events, all.clone(), Direction::Forward, 20).await;
        assert_eq!(entries.unwrap().len(), 20);
    }
    let forward_ms = (js_sys::Date::now() - start) / f64::from(ROUNDS);

    for (durability, ms) in commit_ms {
        console_log!("1-op commit, durability {durability}: {ms:.2} ms");
    }
    console_log!("4-table commit (strict): {message_commit_ms:.2} ms");
    console_log!("get: {get_ms:.2} ms");
    console_log!("scan forward, 20 entries: {forward_ms:.2} ms");
    console_log!("scan backward, 20 of 100: {backward_ms:.2} ms");
    drop(backend);
    IdbBackend::delete(&name).await.unwrap();
}
