//! The shared conformance suite on the in-memory backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use hearth_store::{Backend, MemoryBackend};

hearth_store::conformance_suite!(|| async { Arc::new(MemoryBackend::new()) as Arc<dyn Backend> });

#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
