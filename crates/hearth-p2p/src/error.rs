//! What can go wrong, in one enum.

use hearth_core::ruma::OwnedServerName;

/// Every failure of the p2p node that a host sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum P2pError {
    /// No connection to the destination could be made: it holds no reservation at any configured
    /// relay (offline, or never existed), no relay is reachable, or it does not speak the
    /// federation protocol.
    #[error("{server} is unreachable: {reason}")]
    Unreachable {
        /// The destination.
        server: OwnedServerName,
        /// What libp2p said.
        reason: String,
    },
    /// No response within the request timeout. The destination may have received the request.
    #[error("no response from {0} within the request timeout")]
    Timeout(OwnedServerName),
    /// The connection failed after the request was sent. The destination may have received it.
    #[error("the connection to {server} failed mid-request: {reason}")]
    Interrupted {
        /// The destination.
        server: OwnedServerName,
        /// What libp2p said.
        reason: String,
    },
    /// A request or response could not be encoded: too large, or not a valid HTTP message.
    #[error("bad message: {0}")]
    BadMessage(String),
    /// A server name that is not a Hearth server's key, or a relay address without `/p2p/<id>`.
    #[error("bad address: {0}")]
    BadAddress(String),
    /// The seed is not a valid ed25519 key, or the transports could not be built.
    #[error("cannot start the p2p node: {0}")]
    Setup(String),
    /// The node's driver has stopped (or was never spawned and its queue is gone).
    #[error("the p2p node has stopped")]
    Closed,
}
