//! What redb adds to the conformance suite: the data outlives the process, and a write either
//! lands whole or not at all, when a commit fails and when the process dies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    fs::OpenOptions,
    io,
    path::Path,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use hearth_core::ruma::{OwnedUserId, owned_room_id, owned_user_id};
use hearth_store::{
    Backend, Direction, KeyRange, Store, StoreError, StoredEvent, Table, UserRecord, WriteBatch,
    conformance::block_on,
};
use hearth_store_redb::RedbBackend;
use redb::{StorageBackend, backends::FileBackend};
use serde_json::value::to_raw_value;

fn open_store(path: &Path) -> Store {
    block_on(Store::open(Arc::new(RedbBackend::open(path).unwrap()))).unwrap()
}

/// Commits a user and (with `event`) a timeline event, each at a new stream position.
fn add_user(store: &Store, name: &str, event: bool) -> u64 {
    let mut txn = store.transaction();
    let user = OwnedUserId::try_from(format!("@{name}:x")).unwrap();
    let created_ts = txn.next_stream();
    txn.put_user(&user, &UserRecord { created_ts, ..Default::default() }).unwrap();
    if event {
        let stored = StoredEvent {
            room_id: owned_room_id!("!room:x"),
            stream: txn.next_stream(),
            pdu: to_raw_value(&serde_json::json!({"sender": user})).unwrap(),
            state_before: 0,
            state_after: 0,
            redacted_by: None,
            transaction: None,
            backfill: None,
        };
        txn.put_event(&format!("${name}"), &stored, true).unwrap();
    }
    block_on(store.commit(txn)).unwrap();
    store.current_stream()
}

#[test]
fn data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.redb");
    let store = open_store(&path);
    add_user(&store, "alice", true);
    let stream = add_user(&store, "bob", false);
    drop(store);

    let store = open_store(&path);
    assert_eq!(store.current_stream(), stream);
    let alice = block_on(store.user(&owned_user_id!("@alice:x"))).unwrap().unwrap();
    assert_eq!(alice.created_ts, 1);
    assert!(block_on(store.user(&owned_user_id!("@bob:x"))).unwrap().is_some());
    let event = block_on(store.event("$alice")).unwrap().unwrap();
    assert_eq!(event.pdu.get(), r#"{"sender":"@alice:x"}"#);
    let timeline =
        block_on(store.timeline(&owned_room_id!("!room:x"), 0, stream, Direction::Forward, 10))
            .unwrap();
    assert_eq!(timeline.len(), 1);
    // The reopened store goes on from where the file left off.
    assert!(add_user(&store, "carol", false) > stream);
}

#[test]
fn a_file_is_opened_by_one_backend_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.redb");
    let _first = RedbBackend::open(&path).unwrap();
    assert!(matches!(RedbBackend::open(&path), Err(StoreError::Backend(_))));
}

#[test]
fn a_file_that_is_not_a_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.redb");
    std::fs::write(&path, vec![0x42; 8192]).unwrap();
    assert!(matches!(RedbBackend::open(&path), Err(StoreError::Backend(_))));
}

/// A file whose writes start failing when asked to, like a disk that fills up.
#[derive(Debug)]
struct FailingDisk {
    file: FileBackend,
    failing: Arc<AtomicBool>,
}

impl FailingDisk {
    fn check(&self) -> Result<(), io::Error> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "injected: disk full"));
        }
        Ok(())
    }
}

impl StorageBackend for FailingDisk {
    fn len(&self) -> Result<u64, io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.check()?;
        self.file.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.check()?;
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.check()?;
        self.file.write(offset, data)
    }

    fn close(&self) -> Result<(), io::Error> {
        self.file.close()
    }
}

#[test]
fn a_failed_commit_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.redb");
    let failing = Arc::new(AtomicBool::new(false));
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
    let disk =
        FailingDisk { file: FileBackend::new(file.unwrap()).unwrap(), failing: failing.clone() };
    let database = redb::Builder::new().create_with_backend(disk).unwrap();
    let backend: Arc<dyn Backend> = Arc::new(RedbBackend::from_database(database).unwrap());
    let store = block_on(Store::open(backend.clone())).unwrap();
    let committed = add_user(&store, "alice", true);

    failing.store(true, Ordering::SeqCst);
    let mut txn = store.transaction();
    let stream = txn.next_stream();
    txn.put_user(
        &owned_user_id!("@bob:x"),
        &UserRecord { created_ts: stream, ..Default::default() },
    )
    .unwrap();
    let mut batch = WriteBatch::default();
    batch.put(Table::Events, b"$bob".to_vec(), b"{}".to_vec());
    batch.delete(Table::Users, b"@alice:x".to_vec());
    match block_on(store.commit(txn)) {
        Err(StoreError::Backend(message)) => assert!(message.contains("disk full"), "{message}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert!(block_on(backend.commit(batch)).is_err());
    assert_eq!(store.current_stream(), committed, "a failed commit publishes no position");
    // redb refuses to go on after an I/O error, until the file is reopened; whatever it still
    // answers must not show the failed writes.
    if let Ok(user) = block_on(store.user(&owned_user_id!("@bob:x"))) {
        assert!(user.is_none());
    }
    drop((store, backend));

    let store = open_store(&path);
    assert_eq!(store.current_stream(), committed);
    assert!(block_on(store.user(&owned_user_id!("@alice:x"))).unwrap().is_some());
    assert!(block_on(store.user(&owned_user_id!("@bob:x"))).unwrap().is_none());
    assert!(block_on(store.event("$alice")).unwrap().is_some());
    assert!(block_on(store.event("$bob")).unwrap().is_none());
    assert!(add_user(&store, "carol", false) > committed);
}

const CRASH_CHILD: &str = "HEARTH_REDB_CRASH_CHILD";
const ROWS_PER_BATCH: usize = 64;

/// Batch `n`: `ROWS_PER_BATCH` events, a room row, and `Meta` "last" overwritten with `n`.
fn numbered_batch(n: u32) -> WriteBatch {
    let mut batch = WriteBatch::default();
    for row in 0..ROWS_PER_BATCH {
        batch.put(Table::Events, format!("{n:08}/{row:04}").into_bytes(), vec![n as u8; 1024]);
    }
    batch.put(Table::Rooms, format!("{n:08}").into_bytes(), n.to_string().into_bytes());
    batch.put(Table::Meta, b"last".to_vec(), n.to_string().into_bytes());
    batch
}

/// The child: commits batches and says so after each, then dies with a batch in flight.
fn crash_child(path: &Path) -> ! {
    let backend = Arc::new(RedbBackend::open(path).unwrap());
    let writer = backend.clone();
    std::thread::spawn(move || {
        for n in 0.. {
            block_on(writer.commit(numbered_batch(n))).unwrap();
            println!("committed {n}");
        }
    });
    std::thread::sleep(Duration::from_millis(40));
    std::process::abort();
}

/// Runs this test binary again as a child that commits batches until it aborts, then checks
/// that every batch the child saw committed is there whole, and no other batch in part.
#[test]
fn a_killed_process_loses_nothing_committed() {
    if let Some(path) = std::env::var_os(CRASH_CHILD) {
        crash_child(Path::new(&path));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.redb");
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_killed_process_loses_nothing_committed", "--nocapture"])
        .env(CRASH_CHILD, &path)
        .output()
        .unwrap();
    assert!(!output.status.success(), "the child aborts");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let acknowledged: Vec<u32> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("committed "))
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(!acknowledged.is_empty(), "the child committed nothing: {stdout}");

    let backend = RedbBackend::open(&path).unwrap();
    let all = KeyRange { start: std::ops::Bound::Unbounded, end: std::ops::Bound::Unbounded };
    let rooms = block_on(backend.scan(Table::Rooms, all.clone(), Direction::Forward, usize::MAX));
    let found: Vec<u32> = rooms
        .unwrap()
        .iter()
        .map(|(key, _)| std::str::from_utf8(key).unwrap().parse().unwrap())
        .collect();
    // Batches are committed one after another, so the ones on disk are a prefix: every one the
    // child acknowledged, and perhaps the one it was committing when it died.
    let last_acknowledged = *acknowledged.last().unwrap();
    assert_eq!(acknowledged, (0..=last_acknowledged).collect::<Vec<_>>());
    let last = *found.last().unwrap();
    assert!(
        last == last_acknowledged || last == last_acknowledged + 1,
        "{last} vs {last_acknowledged}"
    );
    assert_eq!(found, (0..=last).collect::<Vec<_>>());
    let events =
        block_on(backend.scan(Table::Events, all, Direction::Forward, usize::MAX)).unwrap();
    assert_eq!(events.len(), found.len() * ROWS_PER_BATCH, "no batch is there in part");
    for (key, value) in events {
        let batch: u32 = std::str::from_utf8(&key[..8]).unwrap().parse().unwrap();
        assert_eq!(value, vec![batch as u8; 1024]);
    }
    let meta = block_on(backend.get(Table::Meta, b"last")).unwrap().unwrap();
    assert_eq!(meta, last.to_string().into_bytes());
}
