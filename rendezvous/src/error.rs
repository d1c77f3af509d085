//! Why the relay could not start or keep running.

use std::path::PathBuf;

/// Everything that stops the relay; each is printed once on stderr and exits with status 1.
#[derive(Debug, thiserror::Error)]
// The fields are what the messages print; they need no documentation of their own.
#[allow(missing_docs)]
pub enum Error {
    /// The key file could not be read or written.
    #[error("cannot read or write the key file {path}: {source}")]
    KeyIo { path: PathBuf, source: std::io::Error },
    /// The key file holds something other than an ed25519 key.
    #[error(
        "the key file {path} does not hold an ed25519 key ({reason}); \
         move it away to start with a new identity (and a new peer ID)"
    )]
    KeyCorrupt { path: PathBuf, reason: String },
    /// libp2p's transports could not be built.
    #[error("cannot set up the transports: {0}")]
    Transport(String),
    /// A listen address could not be bound, or its listener failed.
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: libp2p::Multiaddr, reason: String },
    /// The tokio runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// SIGTERM/SIGINT handlers could not be installed.
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
}
