//! What the server needs from its host's runtime: timers. Everything else (tasks, I/O) stays
//! with the host, so the same server runs on tokio natively and on the browser's event loop.

use std::time::Duration;

use hearth_core::platform::{BoxFuture, SendOutsideWasm, SyncOutsideWasm};

/// The host's timers.
pub trait Runtime: SendOutsideWasm + SyncOutsideWasm + 'static {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// Milliseconds since the Unix epoch, from the platform's wall clock.
pub(crate) fn now_ms() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
