//! The persisted format, pinned: one of each stored record is written through a [`Store`], every
//! table is dumped (keys in hex, values as they are stored), and the dump must match the
//! committed snapshot of the current [`SCHEMA_VERSION`] byte for byte.
//!
//! A renamed field, a changed key layout or a new encoding changes the dump: then the change
//! needs a new schema version with a migration, and a new snapshot, written with
//! `HEARTH_UPDATE_SNAPSHOTS=1 cargo test -p hearth-store --test snapshots`. Older snapshots stay
//! as the formats that migrations start from.
//!
//! Native only: the browser cannot read the snapshot files, and the encoding does not depend on
//! the target.
#![cfg(not(target_family = "wasm"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{fmt::Write, ops::Bound, path::PathBuf, sync::Arc};

use hearth_core::{
    StateMap,
    ruma::{events::StateEventType, owned_event_id, owned_room_id, owned_user_id},
};
use hearth_store::{
    AliasRecord, Backend, BackupVersionRecord, DeviceRecord, Direction, FallbackKeyRecord,
    InboundTransaction, KeyRange, MediaRecord, MembershipRecord, MemoryBackend, OutboundItem,
    ReceiptChange, RejectedEvent, RoomRecord, SCHEMA_VERSION, Store, StoredEvent, Table,
    ToDeviceRecord, TransactionOrigin, UserRecord, WriteBatch, conformance::block_on,
};
use serde_json::value::to_raw_value;

const UPDATE: &str = "HEARTH_UPDATE_SNAPSHOTS";

/// Writes one of each persisted record, every optional field set, through the data model's own
/// write methods (so their keys are the real ones).
async fn populate(store: &Store) {
    let room = owned_room_id!("!room:hearth.test");
    let alice = owned_user_id!("@alice:hearth.test");
    let mut txn = store.transaction();

    // StateGroup: a snapshot, then a delta over it.
    let create = (StateEventType::RoomCreate, String::new());
    let member = (StateEventType::RoomMember, alice.to_string());
    let mut full = StateMap::new();
    full.insert(create, owned_event_id!("$create"));
    let snapshot = txn.add_state_group(None, &full.clone(), &full).unwrap();
    let mut changes = StateMap::new();
    changes.insert(member, owned_event_id!("$join"));
    full.extend(changes.clone());
    let delta = txn.add_state_group(Some(snapshot), &changes, &full).unwrap();

    // StoredEvent (and its timeline row), with a redaction and a transaction origin.
    let event = StoredEvent {
        room_id: room.clone(),
        stream: txn.next_stream(),
        pdu: to_raw_value(&serde_json::json!({
            "content": {"body": "hi", "msgtype": "m.text"},
            "room_id": room,
            "sender": alice,
            "type": "m.room.message",
        }))
        .unwrap(),
        state_before: delta.0,
        state_after: delta.0,
        redacted_by: Some(owned_event_id!("$redaction")),
        transaction: Some(TransactionOrigin { device_id: "PHONE".into(), txn_id: "t1".into() }),
        backfill: None,
    };
    txn.put_event("$message", &event, true).unwrap();
    txn.add_relation("$message", event.stream, "$reaction").unwrap();

    // A backfilled event (history from before the server joined), and its backfill row.
    let older = StoredEvent {
        room_id: room.clone(),
        stream: 0,
        pdu: to_raw_value(&serde_json::json!({
            "content": {"body": "before", "msgtype": "m.text"},
            "room_id": room,
            "sender": alice,
            "type": "m.room.message",
        }))
        .unwrap(),
        state_before: 0,
        state_after: 0,
        redacted_by: None,
        transaction: None,
        backfill: None,
    };
    txn.put_backfilled_event("$older", 1, older).unwrap();

    // RoomRecord.
    let record = RoomRecord {
        version: "12".into(),
        current_state: delta.0,
        extremities: vec![owned_event_id!("$message")],
        max_depth: 3,
        last_stream: event.stream,
    };
    txn.put_room(&room, &record).unwrap();

    // MembershipRecord, both indexes.
    let membership = MembershipRecord {
        membership: "join".into(),
        event_id: owned_event_id!("$join"),
        stream: event.stream,
        forgotten: true,
    };
    txn.set_membership(&room, &alice, &membership).unwrap();

    // UserRecord, DeviceRecord and the TokenRecord it indexes.
    let user = UserRecord {
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        deactivated: true,
        displayname: Some("Alice".into()),
        avatar_url: Some("mxc://hearth.test/avatar".into()),
        created_ts: 1_700_000_000_000,
    };
    txn.put_user(&alice, &user).unwrap();
    let device = DeviceRecord {
        display_name: Some("Phone".into()),
        access_token: "syt_token".into(),
        last_seen_ts: Some(1_700_000_000_001),
    };
    txn.put_device(alice.as_str(), "PHONE", &device).unwrap();
    txn.put_filter(alice.as_str(), "0", &to_raw_value(&serde_json::json!({"room": {}})).unwrap())
        .unwrap();
    txn.put_transaction(alice.as_str(), "PHONE", "t1", "$message").unwrap();

    // AccountDataRecord and AccountDataChange, global and in a room.
    let content = to_raw_value(&serde_json::json!({"global": {}})).unwrap();
    txn.put_account_data(alice.as_str(), None, "m.push_rules", content).unwrap();
    let tags = to_raw_value(&serde_json::json!({"tags": {"u.work": {}}})).unwrap();
    txn.put_account_data(alice.as_str(), Some(room.as_str()), "m.tag", tags).unwrap();

    // AliasRecord, its reverse index and the public directory.
    let alias = AliasRecord { room_id: room.clone(), creator: alice.to_string() };
    txn.put_alias("#room:hearth.test", &alias).unwrap();
    txn.set_public(&room, true);

    // End-to-end encryption: device, one-time, fallback and cross-signing keys, a key change,
    // a to-device message, a backup version and a backed-up key.
    let alice_id = alice.as_str();
    txn.put_device_keys(alice_id, "PHONE", &serde_json::json!({"device_id": "PHONE"})).unwrap();
    txn.put_one_time_key(
        alice_id,
        "PHONE",
        "signed_curve25519",
        "AAAAAQ",
        &serde_json::json!({"key": "otk"}),
    )
    .unwrap();
    let fallback = FallbackKeyRecord {
        key_id: "AAAAAg".into(),
        key: serde_json::json!({"key": "fallback", "fallback": true}),
        used: true,
    };
    txn.put_fallback_key(alice_id, "PHONE", "signed_curve25519", &fallback).unwrap();
    txn.put_cross_signing_key(alice_id, "master", &serde_json::json!({"usage": ["master"]}))
        .unwrap();
    txn.put_key_change(alice_id).unwrap();
    let message = ToDeviceRecord {
        sender: alice.to_string(),
        event_type: "m.room_key_request".into(),
        content: serde_json::json!({"action": "request"}),
    };
    txn.put_to_device(alice_id, "PHONE", &message).unwrap();
    let backup = BackupVersionRecord {
        algorithm: "m.megolm_backup.v1.curve25519-aes-sha2".into(),
        auth_data: serde_json::json!({"public_key": "pk"}),
        etag: 1,
        deleted: true,
    };
    txn.put_backup_version(alice_id, 1, &backup).unwrap();
    txn.put_backup_key(
        alice_id,
        1,
        room.as_str(),
        "session",
        &serde_json::json!({"is_verified": true}),
    )
    .unwrap();

    // Receipts (and their change index) and media (metadata and bytes).
    let receipt = ReceiptChange {
        receipt_type: "m.read".into(),
        thread: "main".into(),
        user_id: alice.to_string(),
    };
    txn.put_receipt(&room, &receipt, owned_event_id!("$read"), 1_700_000_000_000).unwrap();
    let media = MediaRecord {
        content_type: Some("image/png".into()),
        filename: Some("cat.png".into()),
        size: 3,
        uploader: alice.to_string(),
        created_ts: 1_700_000_000_000,
    };
    txn.put_media("media1", &media, b"png".to_vec()).unwrap();

    // Federation (schema version 2): a queued PDU and EDU, a received transaction and a
    // rejected event.
    let pdu = OutboundItem::Pdu { event_id: owned_event_id!("$message") };
    txn.queue_outbound("remote.test", &pdu).unwrap();
    let edu = OutboundItem::Edu {
        edu_type: "m.typing".into(),
        content: to_raw_value(&serde_json::json!({"room_id": room, "typing": true})).unwrap(),
    };
    txn.queue_outbound("remote.test", &edu).unwrap();
    let inbound = InboundTransaction {
        received_ms: 1_700_000_000_000,
        response: to_raw_value(&serde_json::json!({"pdus": {"$remote": {}}})).unwrap(),
    };
    txn.put_inbound_transaction("remote.test", "txn1", &inbound).unwrap();
    let rejected = RejectedEvent { room_id: room.clone(), reason: "bad signature".into() };
    txn.put_rejected_event("$forged", &rejected).unwrap();

    store.commit(txn).await.unwrap();
}

/// Every table, in [`Table::ALL`] order, one line per entry in key order.
async fn dump(backend: &dyn Backend) -> String {
    let mut out = format!(
        "# hearth-store persisted format, schema version {SCHEMA_VERSION}.\n\
         # Generated by tests/snapshots.rs: one section per table, `hex(key) value` per entry.\n"
    );
    for table in Table::ALL {
        writeln!(out, "\n[{}]", table.name()).unwrap();
        let all = KeyRange { start: Bound::Unbounded, end: Bound::Unbounded };
        let rows = backend.scan(*table, all, Direction::Forward, usize::MAX).await.unwrap();
        for (key, value) in rows {
            let hex: String = key.iter().map(|byte| format!("{byte:02x}")).collect();
            match String::from_utf8(value) {
                // Index tables store nothing beside their keys.
                Ok(text) if text.is_empty() => writeln!(out, "{hex} (empty)").unwrap(),
                Ok(text) => writeln!(out, "{hex} {text}").unwrap(),
                Err(error) => {
                    let bytes: String =
                        error.as_bytes().iter().map(|byte| format!("{byte:02x}")).collect();
                    writeln!(out, "{hex} (bytes) {bytes}").unwrap();
                }
            }
        }
    }
    out
}

/// The lines only in `expected` (`-`) and only in `actual` (`+`), in order, from a longest
/// common subsequence of lines (the snapshot is small).
fn line_diff(expected: &str, actual: &str) -> String {
    let (old, new): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut common = vec![vec![0usize; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            common[i][j] = if old[i] == new[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            (i, j) = (i + 1, j + 1);
        } else if i < old.len() && (j == new.len() || common[i + 1][j] >= common[i][j + 1]) {
            writeln!(out, "- {}", old[i]).unwrap();
            i += 1;
        } else {
            writeln!(out, "+ {}", new[j]).unwrap();
            j += 1;
        }
    }
    out
}

#[test]
fn persisted_format_matches_the_snapshot() {
    let backend = Arc::new(MemoryBackend::new());
    let store = block_on(Store::open(backend.clone())).unwrap();
    block_on(populate(&store));
    let actual = block_on(dump(&*backend));

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/snapshots/schema_v{SCHEMA_VERSION}.txt"));
    if std::env::var_os(UPDATE).is_some_and(|value| value == "1") {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!("no snapshot at {} ({error}): write it with {UPDATE}=1", path.display())
    });
    assert!(
        expected == actual,
        "the persisted format changed (- snapshot, + now):\n{}\n\
         Data written by earlier builds would no longer read back. Bump SCHEMA_VERSION with a \
         migration from version {SCHEMA_VERSION} in store.rs, then write the new snapshot with \
         {UPDATE}=1 (keep {}).",
        line_diff(&expected, &actual),
        path.display(),
    );
}

#[test]
fn every_record_type_is_in_the_snapshot() {
    // The tables `populate` must fill: if a record type moves or a write method stops writing,
    // the snapshot would silently lose it.
    let backend = Arc::new(MemoryBackend::new());
    let store = block_on(Store::open(backend.clone())).unwrap();
    block_on(populate(&store));
    let filled = [
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
        Table::ToDevice,
        Table::DeviceKeys,
        Table::OneTimeKeys,
        Table::FallbackKeys,
        Table::CrossSigningKeys,
        Table::KeyChanges,
        Table::BackupVersions,
        Table::BackupKeys,
        Table::Receipts,
        Table::ReceiptChanges,
        Table::Media,
        Table::MediaContent,
        Table::OutboundQueue,
        Table::InboundTransactions,
        Table::RejectedEvents,
        Table::RoomBackfill,
    ];
    for table in filled {
        let rows = block_on(backend.scan(table, KeyRange::prefix(b""), Direction::Forward, 1));
        assert!(!rows.unwrap().is_empty(), "{table:?} is empty");
    }
}

/// Parses a snapshot file back into the entries it lists.
fn parse_snapshot(text: &str) -> Vec<(Table, Vec<u8>, Vec<u8>)> {
    let hex = |text: &str| -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    };
    let mut table = None;
    let mut entries = Vec::new();
    for line in text.lines().filter(|line| !line.is_empty() && !line.starts_with('#')) {
        if let Some(name) = line.strip_prefix('[').and_then(|line| line.strip_suffix(']')) {
            table = Some(*Table::ALL.iter().find(|table| table.name() == name).unwrap());
            continue;
        }
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        let value = match value {
            "(empty)" => Vec::new(),
            _ => match value.strip_prefix("(bytes) ") {
                Some(bytes) => hex(bytes),
                None => value.as_bytes().to_vec(),
            },
        };
        entries.push((table.unwrap(), hex(key), value));
    }
    entries
}

/// An older snapshot, loaded as a database, migrates to the current version: every entry stays
/// as it was (but the schema version). Returns the migrated store.
fn migrates_unchanged(version: u32) -> Store {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/snapshots/schema_v{version}.txt"));
    let old = std::fs::read_to_string(path).unwrap();
    let entries = parse_snapshot(&old);
    let backend = Arc::new(MemoryBackend::new());
    let mut batch = WriteBatch::default();
    for (table, key, value) in &entries {
        batch.put(*table, key.clone(), value.clone());
    }
    block_on(backend.commit(batch)).unwrap();

    let store = block_on(Store::open(backend.clone())).unwrap();
    assert_eq!(block_on(store.meta::<u32>("schema_version")).unwrap(), Some(SCHEMA_VERSION));
    let migrated = parse_snapshot(&block_on(dump(&*backend)));
    let version_key = (Table::Meta, b"schema_version\0\x01".to_vec());
    let unchanged = |entries: &[(Table, Vec<u8>, Vec<u8>)]| -> Vec<(Table, Vec<u8>, Vec<u8>)> {
        entries.iter().filter(|(t, k, _)| (*t, k.clone()) != version_key).cloned().collect()
    };
    assert_eq!(unchanged(&migrated), unchanged(&entries));
    store
}

/// Version 1 (before the federation tables) reads back through the data model.
#[test]
fn the_schema_v1_snapshot_migrates() {
    let store = migrates_unchanged(1);
    let event = block_on(store.event("$message")).unwrap().unwrap();
    assert_eq!(event.redacted_by, Some(owned_event_id!("$redaction")));
    assert!(block_on(store.outbound_destinations()).unwrap().is_empty());
}

/// Version 2 (before backfill): its events have no place in a backfilled history.
#[test]
fn the_schema_v2_snapshot_migrates() {
    let store = migrates_unchanged(2);
    let event = block_on(store.event("$message")).unwrap().unwrap();
    assert_eq!(event.backfill, None);
    assert!(block_on(store.is_placed("$message", &event)).unwrap());
    assert!(!block_on(store.outbound_destinations()).unwrap().is_empty());
}
