//! Keeps the fuzzer's seed corpus (`fuzz/seeds/pdu`) the real PDUs this code builds: it fails
//! when they drift, and `HEARTH_WRITE_SEEDS=1` rewrites them.
#![cfg(not(target_family = "wasm"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use hearth_core::{RoomVersion, testing::forked_room};

#[test]
fn fuzz_seeds_are_current() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/pdu");
    for version in RoomVersion::ALL {
        let (room, _) = forked_room(version, 3, 2, 2).unwrap();
        for (i, pdu) in room.events.values().enumerate() {
            let path = format!("{dir}/v{version}-{i:02}.json");
            let text = pdu.to_canonical_string().unwrap();
            if std::env::var_os("HEARTH_WRITE_SEEDS").is_some() {
                std::fs::write(&path, &text).unwrap();
            }
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                text,
                "{path}: HEARTH_WRITE_SEEDS=1 rewrites it"
            );
        }
    }
}
