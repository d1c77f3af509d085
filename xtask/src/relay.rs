//! The local relay `cargo xtask dev` runs beside the app, so that two browser profiles opened on
//! the dev URL (and native `hearth-node`s) find and reach each other.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

/// The dev relay's ports: fixed, so that its addresses (and the page's saved setting) stay the
/// same from one run to the next; its key file keeps its peer ID.
const WEBSOCKET_PORT: u16 = 4001;
const TCP_PORT: u16 = 4002;
/// How long the relay may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running relay and its full addresses.
pub(crate) struct DevRelay {
    /// Killed when the relay is dropped (xtask exits).
    child: Child,
    /// For browsers: `/ip4/127.0.0.1/tcp/4001/ws/p2p/<id>`.
    pub(crate) websocket: String,
    /// For native nodes: `/ip4/127.0.0.1/tcp/4002/p2p/<id>`.
    pub(crate) tcp: String,
}

impl Drop for DevRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds and starts `hearth-rendezvous` with its key under `target/hearth-dev/`.
pub(crate) fn start_dev_relay(root: &Path) -> Result<DevRelay, String> {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "hearth-rendezvous"])
        .current_dir(root)
        .status()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    if !status.success() {
        return Err("building hearth-rendezvous failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let state = target.join("hearth-dev");
    std::fs::create_dir_all(&state)
        .map_err(|error| format!("cannot create {}: {error}", state.display()))?;
    let mut child = Command::new(target.join("release").join("hearth-rendezvous"))
        .args([
            "--listen-ws",
            &format!("/ip4/127.0.0.1/tcp/{WEBSOCKET_PORT}/ws"),
            "--listen-tcp",
            &format!("/ip4/127.0.0.1/tcp/{TCP_PORT}"),
            "--key",
        ])
        .arg(state.join("relay.key"))
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot start hearth-rendezvous: {error}"))?;
    let stdout = child.stdout.take().ok_or("hearth-rendezvous has no stdout")?;
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // Keep echoing the relay's output once it runs; the receiver may be gone.
            if lines.send(line.clone()).is_err() {
                println!("relay: {line}");
            }
        }
    });
    let mut relay = DevRelay { child, websocket: String::new(), tcp: String::new() };
    loop {
        let line = received.recv_timeout(START_TIMEOUT).map_err(|_| {
            format!(
                "hearth-rendezvous did not start listening within {}s (are ports {WEBSOCKET_PORT} and {TCP_PORT} free?)",
                START_TIMEOUT.as_secs()
            )
        })?;
        if let Some(address) = line.strip_prefix("listening on ") {
            let address = address.trim().to_owned();
            if address.contains("/ws/") {
                relay.websocket = address;
            } else {
                relay.tcp = address;
            }
        }
        if line.trim() == "ready" {
            break;
        }
    }
    if relay.websocket.is_empty() || relay.tcp.is_empty() {
        return Err("hearth-rendezvous did not say where it listens".into());
    }
    Ok(relay)
}
