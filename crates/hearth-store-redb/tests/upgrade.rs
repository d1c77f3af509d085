//! A file written by an older build: the tables a newer schema adds are created when it is
//! opened, and the data model migrates what is in it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use hearth_core::ruma::owned_event_id;
use hearth_store::{OutboundItem, SCHEMA_VERSION, Store, Table, conformance::block_on};
use hearth_store_redb::RedbBackend;
use redb::{Database, TableDefinition};

/// The tables of later schema versions that a version 1 file lacks (2: federation, 3: backfill).
const ADDED_SINCE_V1: [Table; 4] =
    [Table::OutboundQueue, Table::InboundTransactions, Table::RejectedEvents, Table::RoomBackfill];

#[test]
fn a_schema_v1_file_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.redb");
    {
        // What a version 1 build leaves: its tables only, schema version 1, stream position 7.
        let database = Database::create(&path).unwrap();
        let txn = database.begin_write().unwrap();
        for table in Table::ALL.iter().filter(|table| !ADDED_SINCE_V1.contains(table)) {
            let definition: TableDefinition<&[u8], &[u8]> = TableDefinition::new(table.name());
            let mut rows = txn.open_table(definition).unwrap();
            if *table == Table::Meta {
                rows.insert(&b"schema_version\0\x01"[..], &b"1"[..]).unwrap();
                rows.insert(&b"stream\0\x01"[..], &b"7"[..]).unwrap();
            }
        }
        txn.commit().unwrap();
    }

    let store = block_on(Store::open(Arc::new(RedbBackend::open(&path).unwrap()))).unwrap();
    assert_eq!(block_on(store.meta::<u32>("schema_version")).unwrap(), Some(SCHEMA_VERSION));
    assert_eq!(store.current_stream(), 7);
    let mut txn = store.transaction();
    let item = OutboundItem::Pdu { event_id: owned_event_id!("$e") };
    assert_eq!(txn.queue_outbound("remote.test", &item).unwrap(), 8);
    block_on(store.commit(txn)).unwrap();
    drop(store);

    // The queue outlives the process.
    let store = block_on(Store::open(Arc::new(RedbBackend::open(&path).unwrap()))).unwrap();
    assert_eq!(block_on(store.outbound_destinations()).unwrap(), ["remote.test"]);
    assert_eq!(block_on(store.outbound("remote.test", 10)).unwrap()[0].0, 8);
}
