//! Why the relay could not start or keep running.

use std::path::PathBuf;

/// Everything that stops the relay; each is printed once on stderr and exits with status 1.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("cannot read or write the key file {path}: {source}")]
    KeyIo { path: PathBuf, source: std::io::Error },
    #[error(
        "the key file {path} does not hold an ed25519 key ({reason}); \
         move it away to start with a new identity (and a new peer ID)"
    )]
    KeyCorrupt { path: PathBuf, reason: String },
    #[error("cannot set up the transports: {0}")]
    Transport(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: libp2p::Multiaddr, reason: String },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
}
