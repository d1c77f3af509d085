//! Hearth's IndexedDB backend: the browser's durable store (wasm only).
