//! The conformance suite: the same async tests for every backend.
//!
//! A backend crate runs it with one line in a test file:
//!
//! ```ignore
//! hearth_store::conformance_suite!(|| async { std::sync::Arc::new(MyBackend::new()) as _ });
//! ```
//!
//! The argument is a function returning a future of a fresh, empty `Arc<dyn Backend>`; each test
//! gets its own. Natively the tests run on [`block_on`]; on wasm they are `wasm_bindgen_test`s
//! (the calling crate depends on `wasm-bindgen-test`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod federation;

use std::{
    ops::Bound,
    sync::Arc,
    task::{Context, Poll, Wake, Waker},
};

use hearth_core::{
    StateMap,
    ruma::{
        OwnedEventId, OwnedRoomId, events::StateEventType, owned_event_id, owned_room_id,
        owned_user_id,
    },
};
use serde_json::value::to_raw_value;

pub use self::federation::{
    inbound_transactions_are_remembered, outbound_queue_per_destination,
    rejected_events_are_remembered,
};
use crate::{
    AliasRecord, Backend, DeviceRecord, Direction, KeyRange, MAX_STATE_CHAIN, MembershipRecord,
    RoomRecord, SCHEMA_VERSION, Store, StoreError, StoredEvent, Table, UserRecord, WriteBatch,
};

/// Expands to one test per conformance check, each on a fresh backend from `$new`.
#[macro_export]
macro_rules! conformance_suite {
    ($new:expr) => {
        $crate::conformance_suite!(@tests $new;
            get_put_delete, get_many_keeps_order, batches_apply_in_order, scans_respect_ranges_and_limits,
            keys_order_bytewise, tables_are_separate, large_values_round_trip,
            schema_is_versioned, stream_positions_survive_reopen, state_groups_rebuild_state,
            timelines_scan_by_position, backfill_scans_by_sequence, memberships_index_both_ways, accounts_and_tokens,
            account_data_changes_are_indexed, aliases_and_directory,
            e2ee_keys_messages_and_backups, schema_v1_databases_migrate,
            outbound_queue_per_destination, inbound_transactions_are_remembered,
            rejected_events_are_remembered,
        );
    };
    (@tests $new:expr; $($name:ident),* $(,)?) => {
        $(
            #[cfg(not(target_family = "wasm"))]
            #[test]
            fn $name() {
                $crate::conformance::block_on(async {
                    $crate::conformance::$name(($new)().await).await
                });
            }

            #[cfg(target_family = "wasm")]
            #[wasm_bindgen_test::wasm_bindgen_test]
            async fn $name() {
                $crate::conformance::$name(($new)().await).await
            }
        )*
    };
}

/// Runs a future to completion on the current thread (native tests only).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

async fn put(backend: &dyn Backend, table: Table, key: &[u8], value: &[u8]) {
    let mut batch = WriteBatch::default();
    batch.put(table, key.to_vec(), value.to_vec());
    backend.commit(batch).await.unwrap();
}

async fn keys(
    backend: &dyn Backend,
    table: Table,
    range: KeyRange,
    direction: Direction,
    limit: usize,
) -> Vec<Vec<u8>> {
    backend
        .scan(table, range, direction, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

pub async fn get_many_keeps_order(backend: Arc<dyn Backend>) {
    assert_eq!(backend.get_many(Table::Users, &[]).await.unwrap(), Vec::<Option<Vec<u8>>>::new());
    put(&*backend, Table::Users, b"b", b"2").await;
    put(&*backend, Table::Users, b"a", b"1").await;
    put(&*backend, Table::Devices, b"c", b"other table").await;
    let keys = [b"b".to_vec(), b"c".to_vec(), b"a".to_vec(), b"b".to_vec()];
    assert_eq!(
        backend.get_many(Table::Users, &keys).await.unwrap(),
        vec![Some(b"2".to_vec()), None, Some(b"1".to_vec()), Some(b"2".to_vec())]
    );
}

pub async fn get_put_delete(backend: Arc<dyn Backend>) {
    assert_eq!(backend.get(Table::Users, b"a").await.unwrap(), None);
    put(&*backend, Table::Users, b"a", b"1").await;
    assert_eq!(backend.get(Table::Users, b"a").await.unwrap().as_deref(), Some(&b"1"[..]));
    put(&*backend, Table::Users, b"a", b"2").await;
    assert_eq!(backend.get(Table::Users, b"a").await.unwrap().as_deref(), Some(&b"2"[..]));
    let mut batch = WriteBatch::default();
    batch.delete(Table::Users, b"a".to_vec());
    batch.delete(Table::Users, b"never-there".to_vec());
    backend.commit(batch).await.unwrap();
    assert_eq!(backend.get(Table::Users, b"a").await.unwrap(), None);
    // An empty value is a value, not an absence.
    put(&*backend, Table::Users, b"empty", b"").await;
    assert_eq!(backend.get(Table::Users, b"empty").await.unwrap().as_deref(), Some(&b""[..]));
}

pub async fn batches_apply_in_order(backend: Arc<dyn Backend>) {
    let mut batch = WriteBatch::default();
    batch.put(Table::Events, b"x".to_vec(), b"first".to_vec());
    batch.put(Table::Events, b"x".to_vec(), b"second".to_vec());
    batch.put(Table::Events, b"y".to_vec(), b"gone".to_vec());
    batch.delete(Table::Events, b"y".to_vec());
    batch.put(Table::Rooms, b"z".to_vec(), b"other table".to_vec());
    backend.commit(batch).await.unwrap();
    assert_eq!(backend.get(Table::Events, b"x").await.unwrap().as_deref(), Some(&b"second"[..]));
    assert_eq!(backend.get(Table::Events, b"y").await.unwrap(), None);
    assert_eq!(
        backend.get(Table::Rooms, b"z").await.unwrap().as_deref(),
        Some(&b"other table"[..])
    );
    backend.commit(WriteBatch::default()).await.unwrap();
}

pub async fn scans_respect_ranges_and_limits(backend: Arc<dyn Backend>) {
    let mut batch = WriteBatch::default();
    for key in [&b"a"[..], b"ab", b"abc", b"b", b"ba", b"c"] {
        batch.put(Table::Events, key.to_vec(), key.to_vec());
    }
    backend.commit(batch).await.unwrap();
    let all = KeyRange { start: Bound::Unbounded, end: Bound::Unbounded };
    assert_eq!(
        keys(&*backend, Table::Events, all.clone(), Direction::Forward, usize::MAX).await.len(),
        6
    );
    assert_eq!(
        keys(&*backend, Table::Events, KeyRange::prefix(b"a"), Direction::Forward, usize::MAX)
            .await,
        vec![b"a".to_vec(), b"ab".to_vec(), b"abc".to_vec()]
    );
    assert_eq!(
        keys(&*backend, Table::Events, KeyRange::prefix(b"a"), Direction::Backward, 2).await,
        vec![b"abc".to_vec(), b"ab".to_vec()]
    );
    let exclusive =
        KeyRange { start: Bound::Excluded(b"a".to_vec()), end: Bound::Excluded(b"b".to_vec()) };
    assert_eq!(
        keys(&*backend, Table::Events, exclusive, Direction::Forward, usize::MAX).await,
        vec![b"ab".to_vec(), b"abc".to_vec()]
    );
    let inclusive =
        KeyRange { start: Bound::Included(b"ab".to_vec()), end: Bound::Included(b"b".to_vec()) };
    assert_eq!(
        keys(&*backend, Table::Events, inclusive, Direction::Backward, usize::MAX).await,
        vec![b"b".to_vec(), b"abc".to_vec(), b"ab".to_vec()]
    );
    let inverted =
        KeyRange { start: Bound::Included(b"c".to_vec()), end: Bound::Excluded(b"a".to_vec()) };
    assert!(
        keys(&*backend, Table::Events, inverted, Direction::Forward, usize::MAX).await.is_empty()
    );
    let empty =
        KeyRange { start: Bound::Excluded(b"b".to_vec()), end: Bound::Excluded(b"b".to_vec()) };
    assert!(
        keys(&*backend, Table::Events, empty, Direction::Backward, usize::MAX).await.is_empty()
    );
    assert!(keys(&*backend, Table::Events, all, Direction::Forward, 0).await.is_empty());
    assert!(
        keys(&*backend, Table::Events, KeyRange::prefix(b"d"), Direction::Forward, 9)
            .await
            .is_empty()
    );
}

pub async fn keys_order_bytewise(backend: Arc<dyn Backend>) {
    let mut batch = WriteBatch::default();
    let keys_in_order: [&[u8]; 6] =
        [&[], &[0x00], &[0x00, 0x00], &[0x01], &[0x7F, 0xFF], &[0xFF, 0x00]];
    for key in keys_in_order.iter().rev() {
        batch.put(Table::RoomTimeline, key.to_vec(), b"v".to_vec());
    }
    backend.commit(batch).await.unwrap();
    let all = KeyRange { start: Bound::Unbounded, end: Bound::Unbounded };
    let found =
        keys(&*backend, Table::RoomTimeline, all.clone(), Direction::Forward, usize::MAX).await;
    assert_eq!(found, keys_in_order.iter().map(|key| key.to_vec()).collect::<Vec<_>>());
    let prefix_ff =
        keys(&*backend, Table::RoomTimeline, KeyRange::prefix(&[0xFF]), Direction::Forward, 9)
            .await;
    assert_eq!(prefix_ff, vec![vec![0xFF, 0x00]]);
}

pub async fn tables_are_separate(backend: Arc<dyn Backend>) {
    for (index, table) in Table::ALL.iter().enumerate() {
        put(&*backend, *table, b"same-key", &[index as u8]).await;
    }
    for (index, table) in Table::ALL.iter().enumerate() {
        assert_eq!(
            backend.get(*table, b"same-key").await.unwrap(),
            Some(vec![index as u8]),
            "{table:?}"
        );
        let rows =
            backend.scan(*table, KeyRange::prefix(b""), Direction::Forward, 10).await.unwrap();
        assert_eq!(rows.len(), 1, "{table:?}");
    }
}

pub async fn large_values_round_trip(backend: Arc<dyn Backend>) {
    let bytes: Vec<u8> = (0..4 * 1024 * 1024).map(|index: u32| (index % 251) as u8).collect();
    put(&*backend, Table::MediaContent, b"media", &bytes).await;
    assert_eq!(backend.get(Table::MediaContent, b"media").await.unwrap(), Some(bytes));
}

pub async fn schema_is_versioned(backend: Arc<dyn Backend>) {
    let store = Store::open(backend.clone()).await.unwrap();
    assert_eq!(store.meta::<u32>("schema_version").await.unwrap(), Some(SCHEMA_VERSION));
    drop(store);
    // Reopening the current version works; a newer one is refused, not overwritten.
    Store::open(backend.clone()).await.unwrap();
    let mut txn = Store::open(backend.clone()).await.unwrap().transaction();
    txn.set_meta("schema_version", &(SCHEMA_VERSION + 1)).unwrap();
    Store::open(backend.clone()).await.unwrap().commit(txn).await.unwrap();
    match Store::open(backend.clone()).await {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

pub async fn schema_v1_databases_migrate(backend: Arc<dyn Backend>) {
    // A database written by a version 1 build: its schema version, a stream position and a user.
    let store = Store::open(backend.clone()).await.unwrap();
    let alice = owned_user_id!("@alice:x");
    let mut txn = store.transaction();
    txn.set_meta("schema_version", &1u32).unwrap();
    let created_ts = txn.next_stream();
    txn.put_user(&alice, &UserRecord { created_ts, ..Default::default() }).unwrap();
    store.commit(txn).await.unwrap();
    drop(store);

    let store = Store::open(backend.clone()).await.unwrap();
    assert_eq!(store.meta::<u32>("schema_version").await.unwrap(), Some(SCHEMA_VERSION));
    assert_eq!(store.current_stream(), created_ts);
    assert_eq!(store.user(&alice).await.unwrap().unwrap().created_ts, created_ts);
    // Version 2's and 3's tables are there, empty, and usable.
    let room = owned_room_id!("!r:x");
    assert!(store.backfill(&room, 0, u64::MAX, Direction::Forward, 10).await.unwrap().is_empty());
    assert!(store.outbound_destinations().await.unwrap().is_empty());
    let mut txn = store.transaction();
    let item = crate::OutboundItem::Pdu { event_id: owned_event_id!("$e") };
    let seq = txn.queue_outbound("b.x", &item).unwrap();
    store.commit(txn).await.unwrap();
    assert_eq!(store.outbound("b.x", 10).await.unwrap().len(), 1);
    assert!(seq > created_ts);
    drop(store);
    // Reopening at the current version runs no step again.
    let store = Store::open(backend).await.unwrap();
    assert_eq!(store.meta::<u32>("schema_version").await.unwrap(), Some(SCHEMA_VERSION));
    assert_eq!(store.outbound_destinations().await.unwrap(), ["b.x"]);
}

pub async fn stream_positions_survive_reopen(backend: Arc<dyn Backend>) {
    let store = Store::open(backend.clone()).await.unwrap();
    assert_eq!(store.current_stream(), 0);
    let mut txn = store.transaction();
    let first = txn.next_stream();
    let second = txn.next_stream();
    assert!(second > first);
    assert_eq!(store.current_stream(), 0, "positions are invisible until committed");
    store.commit(txn).await.unwrap();
    assert_eq!(store.current_stream(), second);
    let reopened = Store::open(backend).await.unwrap();
    assert_eq!(reopened.current_stream(), second);
    let mut txn = reopened.transaction();
    assert!(txn.next_stream() > second);
}

fn state_key(kind: &str, key: &str) -> (StateEventType, String) {
    (StateEventType::from(kind), key.to_owned())
}

fn event_id(n: usize) -> OwnedEventId {
    OwnedEventId::try_from(format!("$event{n}")).unwrap()
}

pub async fn state_groups_rebuild_state(backend: Arc<dyn Backend>) {
    let store = Store::open(backend).await.unwrap();
    let mut expected = StateMap::new();
    let mut groups = Vec::new();
    let mut parent = None;
    // Enough changes to cross several snapshots; each changes one new and one existing key.
    for n in 0..(MAX_STATE_CHAIN as usize * 3) {
        let mut changes = StateMap::new();
        changes.insert(state_key("m.room.member", &format!("@u{n}:x")), event_id(n));
        changes.insert(state_key("m.room.topic", ""), event_id(n));
        expected.extend(changes.clone());
        let mut txn = store.transaction();
        let group = txn.add_state_group(parent, &changes, &expected).unwrap();
        store.commit(txn).await.unwrap();
        groups.push((group.0, expected.clone()));
        parent = Some(group);
    }
    for (group, state) in &groups {
        assert_eq!(&store.state(*group).await.unwrap(), state);
        let stored = store.state_group(*group).await.unwrap().unwrap();
        assert!(stored.chain < MAX_STATE_CHAIN);
    }
    // Snapshots recur every MAX_STATE_CHAIN groups; between them a group stores only its delta.
    let mut snapshots = 0;
    for (group, _) in &groups {
        let stored = store.state_group(*group).await.unwrap().unwrap();
        if stored.parent.is_none() {
            snapshots += 1;
        } else {
            assert_eq!(stored.entries.len(), 2);
        }
    }
    assert!(snapshots >= 3, "{snapshots} snapshots");
    assert!(store.state(u64::MAX).await.is_err(), "a missing group is an error");
}

pub async fn timelines_scan_by_position(backend: Arc<dyn Backend>) {
    let store = Store::open(backend).await.unwrap();
    let room = owned_room_id!("!room:x");
    let other = owned_room_id!("!other:x");
    let mut txn = store.transaction();
    let mut positions = Vec::new();
    for n in 0..10 {
        let stream = txn.next_stream();
        positions.push(stream);
        let event = StoredEvent {
            room_id: if n % 2 == 0 { room.clone() } else { other.clone() },
            stream,
            pdu: to_raw_value(&serde_json::json!({"n": n})).unwrap(),
            state_before: 0,
            state_after: 0,
            redacted_by: None,
            transaction: None,
            backfill: None,
        };
        txn.put_event(event_id(n).as_str(), &event, true).unwrap();
    }
    store.commit(txn).await.unwrap();
    let now = store.current_stream();
    let forward = store.timeline(&room, 0, now, Direction::Forward, 100).await.unwrap();
    assert_eq!(
        forward.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>(),
        [0, 2, 4, 6, 8].map(event_id)
    );
    let backward = store.timeline(&room, positions[2], now, Direction::Backward, 2).await.unwrap();
    assert_eq!(backward, vec![(positions[8], event_id(8)), (positions[6], event_id(6))]);
    assert!(store.timeline(&room, now, now, Direction::Forward, 10).await.unwrap().is_empty());
    let stored = store.event("$event3").await.unwrap().unwrap();
    assert_eq!((stored.room_id, stored.stream), (other, positions[3]));
    assert_eq!(stored.pdu.get(), r#"{"n":3}"#);
    assert!(store.event("$missing").await.unwrap().is_none());
    let many = store.events(&["$event4", "$missing", "$event3"]).await.unwrap();
    let found: Vec<Option<u64>> =
        many.iter().map(|event| event.as_ref().map(|e| e.stream)).collect();
    assert_eq!(found, [Some(positions[4]), None, Some(positions[3])]);
}

pub async fn backfill_scans_by_sequence(backend: Arc<dyn Backend>) {
    let store = Store::open(backend).await.unwrap();
    let room = owned_room_id!("!room:x");
    let other = owned_room_id!("!other:x");
    let outlier = |room_id: &OwnedRoomId, n: usize| StoredEvent {
        room_id: room_id.clone(),
        stream: 0,
        pdu: to_raw_value(&serde_json::json!({"n": n})).unwrap(),
        state_before: 0,
        state_after: 0,
        redacted_by: None,
        transaction: None,
        backfill: None,
    };
    // An outlier first (known as another event's auth event), placed later.
    let mut txn = store.transaction();
    txn.put_event(event_id(1).as_str(), &outlier(&room, 1), false).unwrap();
    store.commit(txn).await.unwrap();
    let stored = store.event("$event1").await.unwrap().unwrap();
    assert!(!store.is_placed("$event1", &stored).await.unwrap());

    let mut txn = store.transaction();
    for (sequence, n) in (1..=5).zip(1..) {
        txn.put_backfilled_event(event_id(n).as_str(), sequence, outlier(&room, n)).unwrap();
    }
    txn.put_backfilled_event("$elsewhere", 1, outlier(&other, 9)).unwrap();
    store.commit(txn).await.unwrap();

    let placed = store.event("$event1").await.unwrap().unwrap();
    assert_eq!((placed.stream, placed.backfill), (0, Some(1)));
    assert!(store.is_placed("$event1", &placed).await.unwrap());
    let older = store.backfill(&room, 0, u64::MAX, Direction::Forward, 3).await.unwrap();
    assert_eq!(older, vec![(1, event_id(1)), (2, event_id(2)), (3, event_id(3))]);
    let rest = store.backfill(&room, 3, u64::MAX, Direction::Forward, 10).await.unwrap();
    assert_eq!(rest, vec![(4, event_id(4)), (5, event_id(5))]);
    let newer = store.backfill(&room, 0, 4, Direction::Backward, 2).await.unwrap();
    assert_eq!(newer, vec![(4, event_id(4)), (3, event_id(3))]);
    let last = store.backfill(&room, 0, u64::MAX, Direction::Backward, 1).await.unwrap();
    assert_eq!(last, vec![(5, event_id(5))]);
    assert!(store.backfill(&room, 5, u64::MAX, Direction::Forward, 10).await.unwrap().is_empty());
    let timeline = store.timeline(&room, 0, u64::MAX, Direction::Forward, 10).await.unwrap();
    assert!(timeline.is_empty(), "backfilled events are not in the timeline");
}

pub async fn memberships_index_both_ways(backend: Arc<dyn Backend>) {
    let store = Store::open(backend).await.unwrap();
    let alice = owned_user_id!("@alice:x");
    let bob = owned_user_id!("@bob:x");
    let room = owned_room_id!("!a:x");
    let room2 = owned_room_id!("!b:x");
    let record = |membership: &str| MembershipRecord {
        membership: membership.to_owned(),
        event_id: owned_event_id!("$m"),
        stream: 1,
        forgotten: false,
    };
    let mut txn = store.transaction();
    txn.set_membership(&room, &alice, &record("join")).unwrap();
    txn.set_membership(&room, &bob, &record("invite")).unwrap();
    txn.set_membership(&room2, &alice, &record("leave")).unwrap();
    txn.put_room(
        &room,
        &RoomRecord {
            version: "12".into(),
            current_state: 7,
            extremities: vec![owned_event_id!("$m")],
            max_depth: 3,
            last_stream: 1,
        },
    )
    .unwrap();
    store.commit(txn).await.unwrap();
    let rooms = store.memberships(&alice).await.unwrap();
    assert_eq!(
        rooms.iter().map(|(id, r)| (id.as_str(), r.membership.as_str())).collect::<Vec<_>>(),
        [("!a:x", "join"), ("!b:x", "leave")]
    );
    let members = store.room_members(&room).await.unwrap();
    assert_eq!(
        members,
        vec![(alice.clone(), "join".to_owned()), (bob.clone(), "invite".to_owned())]
    );
    assert_eq!(store.membership(&bob, &room).await.unwrap().unwrap().membership, "invite");
    assert!(store.membership(&bob, &room2).await.unwrap().is_none());
    assert_eq!(store.room(&room).await.unwrap().unwrap().current_state, 7);
    assert!(store.room(&room2).await.unwrap().is_none());
}

pub async fn accounts_and_tokens(backend: Arc<dyn Backend>) {
    let store = Store::open(backend).await.unwrap();
    let alice = owned_user_id!("@alice:x");
    let device = DeviceRecord {
        display_name: Some("phone".into()),
        access_token: "tok1".into(),
        last_seen_ts: None,
    };
    let mut txn = store.transaction();
    txn.put_user(
        &alice,
        &UserRecord { password_hash: Some("hash".into()), created_ts: 5, ..Default::default() },
    )
    .unwrap();
    txn.put_device(alice.as_str(), "DEV1", &device).unwrap();
    txn.put_device(
        alice.as_str(),
        "DEV2",
        &DeviceRecord { access_token: "tok2".into(), ..Default::default() },
    )
    .unwrap();
    txn.put_filter(alice.as_str(), "0", &to_raw_value(&serde_json::json!({"room": {}})).unwrap())
        .unwrap();
    txn.put_transaction(alice.as_str(), "DEV1", "txn1", "$sent").unwrap();
    store.commit(txn).await.unwrap();
    assert_eq!(store.user(&alice).await.unwrap().unwrap().password_hash.as_deref(), Some("hash"));
    assert_eq!(store.users(10).await.unwrap().len(), 1);
    let token = store.access_token("tok1").await.unwrap().unwrap();
    assert_eq!((token.user_id.as_str(), token.device_id.as_str()), ("@alice:x", "DEV1"));
    assert_eq!(store.devices(alice.as_str()).await.unwrap().len(), 2);
    assert_eq!(store.filter(alice.as_str(), "0").await.unwrap().unwrap().get(), r#"{"room":{}}"#);
    assert_eq!(
        store.transaction_event(alice.as_str(), "DEV1", "txn1").await.unwrap().as_deref(),
        Some("$sent")
    );
    assert!(store.transaction_event(alice.as_str(), "DEV2", "txn1").await.unwrap().is_none());
    let mut txn = store.transaction();
    txn.delete_device(alice.as_str(), "DEV1", &device);
    store.commit(txn).await.unwrap();
    assert!(store.access_token("tok1").await.unwrap().is_none());
    assert!(store.device(alice.as_str(), "DEV1").await.unwrap().is_none());
    assert!(store.device(alice.as_str(), "DEV2").await.unwrap().is_some());
}

pub async fn account_data_changes_are_indexed(backend: Arc<dyn Backend>) {
    let store = Store::open(backend).await.unwrap();
    let content = |n: u32| to_raw_value(&serde_json::json!({"n": n})).unwrap();
    let mut txn = store.transaction();
    let first = txn.put_account_data("@a:x", None, "m.push_rules", content(1)).unwrap();
    txn.put_account_data("@b:x", None, "m.push_rules", content(9)).unwrap();
    store.commit(txn).await.unwrap();
    let mut txn = store.transaction();
    let second = txn.put_account_data("@a:x", Some("!r:x"), "m.tag", content(2)).unwrap();
    store.commit(txn).await.unwrap();
    let all = store.all_account_data("@a:x").await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, None);
    assert_eq!((all[1].0.as_deref(), all[1].1.as_str()), (Some("!r:x"), "m.tag"));
    let changes = store.account_data_changes("@a:x", first, store.current_stream()).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].0, second);
    assert_eq!(changes[0].1.event_type, "m.tag");
    let record = store.account_data("@a:x", Some("!r:x"), "m.tag").await.unwrap().unwrap();
    assert_eq!(record.content.get(), r#"{"n":2}"#);
}

pub async fn aliases_and_directory(backend: Arc<dyn Backend>) {
    let store = Store::open(backend).await.unwrap();
    let room = owned_room_id!("!a:x");
    let mut txn = store.transaction();
    txn.put_alias("#one:x", &AliasRecord { room_id: room.clone(), creator: "@a:x".into() })
        .unwrap();
    txn.put_alias("#two:x", &AliasRecord { room_id: room.clone(), creator: "@a:x".into() })
        .unwrap();
    txn.set_public(&room, true);
    store.commit(txn).await.unwrap();
    assert_eq!(store.alias("#one:x").await.unwrap().unwrap().room_id, room);
    assert_eq!(
        store.room_aliases(&room).await.unwrap(),
        vec!["#one:x".to_owned(), "#two:x".to_owned()]
    );
    assert_eq!(store.public_rooms().await.unwrap(), vec![room.clone()]);
    let mut txn = store.transaction();
    txn.delete_alias("#one:x", &room);
    txn.set_public(&room, false);
    store.commit(txn).await.unwrap();
    assert!(store.alias("#one:x").await.unwrap().is_none());
    assert_eq!(store.room_aliases(&room).await.unwrap(), vec!["#two:x".to_owned()]);
    assert!(!store.is_public(&room).await.unwrap());
}

pub async fn e2ee_keys_messages_and_backups(backend: Arc<dyn Backend>) {
    use serde_json::json;

    use crate::{BackupVersionRecord, FallbackKeyRecord, ToDeviceRecord};

    let store = Store::open(backend).await.unwrap();
    let (alice, bob) = ("@alice:x", "@bob:x");
    let mut txn = store.transaction();
    txn.put_device_keys(alice, "DEV1", &json!({"device_id": "DEV1"})).unwrap();
    txn.put_device_keys(alice, "DEV2", &json!({"device_id": "DEV2"})).unwrap();
    txn.put_device_keys(bob, "DEV1", &json!({"device_id": "bob"})).unwrap();
    txn.put_one_time_key(alice, "DEV1", "signed_curve25519", "A", &json!({"key": "a"})).unwrap();
    txn.put_one_time_key(alice, "DEV1", "signed_curve25519", "B", &json!({"key": "b"})).unwrap();
    let fallback = FallbackKeyRecord { key_id: "F".into(), key: json!({"key": "f"}), used: false };
    txn.put_fallback_key(alice, "DEV1", "signed_curve25519", &fallback).unwrap();
    txn.put_cross_signing_key(alice, "master", &json!({"usage": ["master"]})).unwrap();
    let first_change = txn.put_key_change(alice).unwrap();
    let message =
        ToDeviceRecord { sender: bob.into(), event_type: "m.test".into(), content: json!({}) };
    let first_message = txn.put_to_device(alice, "DEV1", &message).unwrap();
    let second_message = txn.put_to_device(alice, "DEV1", &message).unwrap();
    txn.put_to_device(alice, "DEV2", &message).unwrap();
    let second_change = txn.put_key_change(bob).unwrap();
    let backup = BackupVersionRecord {
        algorithm: "alg".into(),
        auth_data: json!({}),
        etag: 1,
        deleted: false,
    };
    txn.put_backup_version(alice, 1, &backup).unwrap();
    txn.put_backup_version(alice, 2, &backup).unwrap();
    txn.put_backup_key(alice, 1, "!r1:x", "s1", &json!({"n": 1})).unwrap();
    txn.put_backup_key(alice, 1, "!r1:x", "s10", &json!({"n": 10})).unwrap();
    txn.put_backup_key(alice, 1, "!r2:x", "s2", &json!({"n": 2})).unwrap();
    txn.put_backup_key(alice, 2, "!r1:x", "s1", &json!({"n": 3})).unwrap();
    store.commit(txn).await.unwrap();

    let devices = store.all_device_keys(alice).await.unwrap();
    assert_eq!(devices.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["DEV1", "DEV2"]);
    assert_eq!(store.device_keys(bob, "DEV1").await.unwrap(), Some(json!({"device_id": "bob"})));
    let otks = store.one_time_keys(alice, "DEV1").await.unwrap();
    assert_eq!(otks.len(), 2);
    assert_eq!((otks[0].0.as_str(), otks[0].1.as_str()), ("signed_curve25519", "A"));
    assert!(store.one_time_keys(alice, "DEV2").await.unwrap().is_empty());
    let fallbacks = store.fallback_keys(alice, "DEV1").await.unwrap();
    assert_eq!(fallbacks, [("signed_curve25519".to_owned(), fallback)]);
    assert!(store.cross_signing_key(alice, "master").await.unwrap().is_some());
    assert!(store.cross_signing_key(alice, "self_signing").await.unwrap().is_none());

    let changes = store.key_changes(0, u64::MAX).await.unwrap();
    assert_eq!(changes, [(first_change, alice.to_owned()), (second_change, bob.to_owned())]);
    let later = store.key_changes(first_change, second_change).await.unwrap();
    assert_eq!(later, [(second_change, bob.to_owned())]);

    let messages = store.to_device_messages(alice, "DEV1", 0, u64::MAX, 10).await.unwrap();
    assert_eq!(
        messages.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [first_message, second_message]
    );
    let after = store.to_device_messages(alice, "DEV1", first_message, u64::MAX, 10).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(store.to_device_messages(alice, "DEV1", 0, u64::MAX, 1).await.unwrap().len(), 1);

    assert_eq!(store.backup_versions(alice).await.unwrap().len(), 2);
    assert_eq!(store.backup_version(alice, 1).await.unwrap(), Some(backup));
    assert_eq!(store.backup_keys(alice, 1, None, None).await.unwrap().len(), 3);
    assert_eq!(store.backup_keys(alice, 1, Some("!r1:x"), None).await.unwrap().len(), 2);
    let session = store.backup_keys(alice, 1, Some("!r1:x"), Some("s1")).await.unwrap();
    assert_eq!(session, [("!r1:x".to_owned(), "s1".to_owned(), json!({"n": 1}))]);

    let mut txn = store.transaction();
    txn.delete_device_keys(alice, "DEV1");
    txn.delete_one_time_key(alice, "DEV1", "signed_curve25519", "A");
    txn.delete_fallback_key(alice, "DEV1", "signed_curve25519");
    txn.delete_to_device(alice, "DEV1", first_message);
    txn.delete_backup_key(alice, 1, "!r1:x", "s1");
    txn.delete_backup_version(alice, 2);
    store.commit(txn).await.unwrap();
    assert!(store.device_keys(alice, "DEV1").await.unwrap().is_none());
    assert_eq!(store.one_time_keys(alice, "DEV1").await.unwrap().len(), 1);
    assert!(store.fallback_keys(alice, "DEV1").await.unwrap().is_empty());
    assert_eq!(store.to_device_messages(alice, "DEV1", 0, u64::MAX, 10).await.unwrap().len(), 1);
    assert_eq!(store.backup_keys(alice, 1, None, None).await.unwrap().len(), 2);
    assert_eq!(store.backup_versions(alice).await.unwrap().len(), 1);
}
