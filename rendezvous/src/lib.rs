//! `hearth-rendezvous`: Hearth's relay. A libp2p node that browsers reach over WebSocket and
//! native peers over TCP; it holds circuit relay v2 reservations so that peers nobody can dial
//! directly are reachable at `<relay>/p2p-circuit/p2p/<peer>`, and runs a rendezvous server where
//! peers register under a namespace and discover each other. It never sees Matrix traffic in
//! the clear: circuits carry end-to-end noise sessions between the peers.
//!
//! See README.md for the command line, the limits and their defaults, and the log format. The
//! binary is [`main`]; the library exists so that other crates' tests can run the real relay in
//! process ([`Args::parse_flags`], [`load_or_create_key`], [`run_until`]).

#![warn(missing_docs)]

mod args;
mod behaviour;
mod error;
mod identity;
mod server;

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

pub use args::Args;
pub use error::Error;
pub use libp2p::identity::Keypair;
use tracing_subscriber::EnvFilter;

/// Loads the relay's ed25519 key from `path`, or creates it there (mode 0600) on first start.
pub fn load_or_create_key(path: &Path) -> Result<Keypair, Error> {
    identity::load_or_create(path)
}

/// Listens on `args`' addresses, then serves until SIGTERM or SIGINT (on a tokio runtime).
pub async fn run(args: Args, key: Keypair) -> Result<(), Error> {
    server::run(args, key).await
}

/// Listens on `args`' addresses, then serves until `shutdown` completes; every listener and
/// connection is closed when it returns. Prints the same stdout lines as the binary.
pub async fn run_until(
    args: Args,
    key: Keypair,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    server::run_until(args, key, shutdown).await
}

/// The `hearth-rendezvous` binary: parses the command line (exit 2 on bad flags), logs to
/// stderr, runs until a signal (exit 0) or a fatal error (exit 1).
pub fn main() -> ExitCode {
    let args = Args::parse_or_exit();
    init_logging();
    let result = identity::load_or_create(&args.key).and_then(|key| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?
            .block_on(server::run(args, key))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stopped");
            eprintln!("hearth-rendezvous: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One line per event on stderr, `key=value` fields; the level comes from RUST_LOG.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
}
