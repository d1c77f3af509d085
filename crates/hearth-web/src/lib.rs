//! Hearth's browser host (wasm only).
