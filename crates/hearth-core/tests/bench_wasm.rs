//! The core benchmark in the browser: `cargo xtask bench` runs this ignored test in headless
//! Chromium (release build) and reads the JSON line it logs.
#![cfg(target_family = "wasm")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use wasm_bindgen_test::{console_log, wasm_bindgen_test};

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
#[ignore = "a benchmark: run by `cargo xtask bench`"]
fn core_bench() {
    let report = hearth_core::testing::run_core_bench(5_000, 5).unwrap();
    console_log!("HEARTH_BENCH {}", serde_json::to_string(&report).unwrap());
}
