//! The one place the difference between native and wasm targets is spelled out for the core:
//! futures must be `Send` natively (a multi-threaded runtime may move them) and cannot be in the
//! browser (JavaScript handles are not `Send`). Hosts and `hearth-server` build on these markers.

/// `Send` on native targets, nothing on wasm.
#[cfg(not(target_family = "wasm"))]
pub trait SendOutsideWasm: Send {}
#[cfg(not(target_family = "wasm"))]
impl<T: Send> SendOutsideWasm for T {}

/// `Send` on native targets, nothing on wasm.
#[cfg(target_family = "wasm")]
pub trait SendOutsideWasm {}
#[cfg(target_family = "wasm")]
impl<T> SendOutsideWasm for T {}

/// `Sync` on native targets, nothing on wasm.
#[cfg(not(target_family = "wasm"))]
pub trait SyncOutsideWasm: Sync {}
#[cfg(not(target_family = "wasm"))]
impl<T: Sync> SyncOutsideWasm for T {}

/// `Sync` on native targets, nothing on wasm.
#[cfg(target_family = "wasm")]
pub trait SyncOutsideWasm {}
#[cfg(target_family = "wasm")]
impl<T> SyncOutsideWasm for T {}

/// A boxed future that is `Send` natively and not on wasm: what trait objects return from their
/// async methods (storage backends, the host's runtime, federation).
#[cfg(not(target_family = "wasm"))]
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A boxed future that is `Send` natively and not on wasm: what trait objects return from their
/// async methods (storage backends, the host's runtime, federation).
#[cfg(target_family = "wasm")]
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;
