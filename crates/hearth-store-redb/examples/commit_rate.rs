//! How many durable commits per second redb manages on this disk: 1,000 commits of one put each,
//! then the same 1,000 puts grouped 100 to a commit. Each commit waits for its fsync, so the
//! first number bounds a server that commits every write on its own, and the gap between the two
//! is what grouping concurrent writes into one transaction would win.
//!
//! `cargo run -p hearth-store-redb --example commit_rate [directory]` (default: the system's
//! temporary directory; point it at the disk the server will use).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Native only (this crate never builds for wasm), so std's clock is fine.
#![allow(clippy::disallowed_methods)]

use std::{path::PathBuf, time::Instant};

use hearth_store::{Backend, Table, WriteBatch, conformance::block_on};
use hearth_store_redb::RedbBackend;

const PUTS: usize = 1_000;

fn main() {
    let parent = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(parent).unwrap();
    let backend = RedbBackend::open(&dir.path().join("commit_rate.redb")).unwrap();
    for per_commit in [1, 100] {
        let started = Instant::now();
        for first in (0..PUTS).step_by(per_commit) {
            let mut batch = WriteBatch::default();
            for n in first..first + per_commit {
                let key = format!("{per_commit}/{n:06}").into_bytes();
                batch.put(Table::Events, key, vec![0x5A; 512]);
            }
            block_on(backend.commit(batch)).unwrap();
        }
        let seconds = started.elapsed().as_secs_f64();
        let commits = PUTS / per_commit;
        println!(
            "{PUTS} puts, {per_commit} per commit: {commits} commits in {seconds:.3} s = \
             {:.0} commits/s, {:.0} puts/s",
            commits as f64 / seconds,
            PUTS as f64 / seconds,
        );
    }
}
