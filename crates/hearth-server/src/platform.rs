//! What the server needs from its host: timers, a way to run background work (the federation
//! sender), and a way to reach other servers. Everything else (I/O, threads) stays with the host,
//! so the same server runs on tokio natively and on the browser's event loop.

use std::time::Duration;

use hearth_core::{
    platform::{BoxFuture, SendOutsideWasm, SyncOutsideWasm},
    ruma::OwnedServerName,
};

use crate::ServerError;

/// The host's timers and tasks.
pub trait Runtime: SendOutsideWasm + SyncOutsideWasm + 'static {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;

    /// Runs `task` in the background until it completes (the federation sender's loops).
    fn spawn(&self, task: BoxFuture<'static, ()>);
}

/// How the server reaches other servers: the host carries a signed server-server request to
/// `destination` and brings back its response (over libp2p, with the host's timeouts).
///
/// The request already carries its `X-Matrix` signature; the host must not change it. A response
/// with any HTTP status is `Ok`; `Err` means the destination could not be reached or did not
/// answer in time ([`ServerError::Unreachable`]).
pub trait Federation: SendOutsideWasm + SyncOutsideWasm + 'static {
    /// Sends `request` to `destination` and waits for its response.
    fn request(
        &self,
        destination: OwnedServerName,
        request: http::Request<Vec<u8>>,
    ) -> BoxFuture<'static, Result<http::Response<Vec<u8>>, ServerError>>;

    /// The servers online now where the host looks for them (registered at the relays), for
    /// clients to offer chats with. None by default.
    fn peers(&self) -> BoxFuture<'static, Vec<OwnedServerName>> {
        Box::pin(async { Vec::new() })
    }
}

/// The federation of a host with no network (or no longer): every server is unreachable.
pub struct NoFederation;

impl Federation for NoFederation {
    fn request(
        &self,
        destination: OwnedServerName,
        _request: http::Request<Vec<u8>>,
    ) -> BoxFuture<'static, Result<http::Response<Vec<u8>>, ServerError>> {
        Box::pin(async move {
            Err(ServerError::Unreachable(format!("{destination}: this server has no network")))
        })
    }
}

/// Milliseconds since the Unix epoch, from the platform's wall clock.
pub(crate) fn now_ms() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
