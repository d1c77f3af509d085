//! The shared conformance suite on IndexedDB, in a browser; each test on a fresh database.
#![cfg(target_family = "wasm")]
#![allow(clippy::unwrap_used, clippy::expect_used)]
// `Store` shares its backend as an `Arc<dyn Backend>`; JavaScript handles are neither `Send` nor
// `Sync`, and on wasm nothing needs them to be (one thread).
#![allow(clippy::arc_with_non_send_sync)]

use std::sync::Arc;

use hearth_store::Backend;
use hearth_store_idb::IdbBackend;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// Tests share the browser profile, so each database name must be new.
fn fresh_name() -> String {
    format!("hearth-conformance-{}-{}", js_sys::Date::now(), js_sys::Math::random())
}

hearth_store::conformance_suite!(|| async {
    Arc::new(IdbBackend::open(&fresh_name()).await.unwrap()) as Arc<dyn Backend>
});
