//! `hearth-rendezvous`: Hearth's relay. A libp2p node that browsers reach over WebSocket and
//! native peers over TCP; it holds circuit relay v2 reservations so that peers nobody can dial
//! directly are reachable at `<relay>/p2p-circuit/p2p/<peer>`, and runs a rendezvous server where
//! peers register under a namespace and discover each other. It never sees Matrix traffic in
//! the clear: circuits carry end-to-end noise sessions between the peers.
//!
//! See README.md for the command line, the limits and their defaults, and the log format.

mod args;
mod behaviour;
mod error;
mod identity;
mod server;

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args = args::Args::parse_or_exit();
    init_logging();
    let result = identity::load_or_create(&args.key).and_then(|key| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(error::Error::Runtime)?
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
