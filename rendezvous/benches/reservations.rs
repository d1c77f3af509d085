//! `cargo bench -p hearth-rendezvous --bench reservations`: the relay's memory per idle
//! reservation, printed as one JSON object on stdout (progress goes to stderr);
//! `cargo xtask bench` collects it with the other figures.
//!
//! Starts the real `hearth-rendezvous` binary (built with the bench profile, so optimised like a
//! release build) on loopback TCP, lets [`WARM_UP`] client peers reserve a slot, reads the relay's
//! resident size (`VmRSS`), then lets [`RESERVATIONS`] more peers reserve one, keeps every one
//! of them connected and idle, and reads `VmRSS` again:
//!
//! ```json
//! {"relay_reservations": 1000, "relay_rss_mb_before": 7.1, "relay_rss_mb_after": 40.2, "relay_kb_per_reservation": 33.9}
//! ```
//!
//! `relay_kb_per_reservation` is (after - before) / [`RESERVATIONS`], in KiB (what `/proc` calls
//! kB). Issue 5's target is at most 50 KB.
//!
//! Every client peer has its own ed25519 key and its own swarm (TCP, noise, yamux, the relay
//! client, identify and ping, as a Hearth peer has), and all of them run as tasks of one tokio
//! runtime in this process, at most [`CONCURRENCY`] reserving at once.

// A native benchmark, never built for wasm32: std's clocks are fine here.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::{StreamExt, stream};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, Swarm, SwarmBuilder, identify, noise, ping, relay, tcp, yamux};
use tokio::task::JoinHandle;

/// Reservations whose memory is measured.
const RESERVATIONS: usize = 1000;
/// Reservations made before the first measurement. The first connections and reservations
/// allocate what the relay needs once, whatever the number of peers: the allocator's per-thread
/// arenas, tokio's and libp2p's first buffers and tables, the lazily built parts of noise and
/// yamux. Charging those to the 1,000 measured reservations would overstate what each one costs,
/// and a relay that serves anyone has paid them long before it holds 1,000 reservations.
const WARM_UP: usize = 10;
/// Client peers connecting and reserving at once: enough to keep the relay busy, few enough that
/// two cores serve the handshakes without timeouts.
const CONCURRENCY: usize = 50;
/// The longest all reservations of one batch may take; a healthy run needs a few seconds.
const RESERVE_TIMEOUT: Duration = Duration::from_secs(120);
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before each measurement, so that the relay has answered the last identify and finished
/// with every handshake's transient buffers.
const SETTLE: Duration = Duration::from_secs(3);
/// Kept open by this process and by the relay, beyond one socket per reservation: the runtime,
/// the listener, stdio, the key file.
const SPARE_FILE_DESCRIPTORS: u64 = 256;

type Result<T> = std::result::Result<T, String>;

fn main() {
    match bench() {
        Ok(report) => println!("{report}"),
        Err(error) => fail(&error),
    }
}

fn bench() -> Result<String> {
    raise_file_limit()?;
    let dir =
        tempfile::tempdir().map_err(|error| format!("cannot create a key directory: {error}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    // Dropping `relay` on an early return or a panic stops it too.
    let mut relay = Relay::start(&dir.path().join("key"))?;
    let result = runtime.block_on(run(&relay));
    // Stop the relay whatever happened (the clients still hold their connections, so this also
    // shows that a full relay shuts down cleanly); a failed stop fails the run too.
    let stopped = relay.stop();
    runtime.shutdown_timeout(STOP_TIMEOUT);
    let report = result?;
    stopped?;
    Ok(report)
}

fn fail(message: &str) -> ! {
    eprintln!("benchmark failed: {message}");
    std::process::exit(1)
}

async fn run(relay: &Relay) -> Result<String> {
    let started = relay.rss_kb()?;
    eprintln!("relay started: VmRSS {started} kB");
    let lost = Arc::new(AtomicUsize::new(0));

    let warm_up = reserve(&relay.address, WARM_UP, &lost).await?;
    tokio::time::sleep(SETTLE).await;
    let before = relay.rss_kb()?;
    eprintln!("{WARM_UP} warm-up reservations: VmRSS {before} kB");

    let t0 = Instant::now();
    let measured = reserve(&relay.address, RESERVATIONS, &lost).await?;
    eprintln!("{RESERVATIONS} reservations accepted in {:.1} s", t0.elapsed().as_secs_f64());
    tokio::time::sleep(SETTLE).await;
    let after = relay.rss_kb()?;
    eprintln!("{} reservations held: VmRSS {after} kB", WARM_UP + RESERVATIONS);

    // Every reservation must still be held at the second measurement, or it measured less.
    let lost = lost.load(Ordering::SeqCst);
    if lost > 0 {
        return Err(format!("{lost} client peers lost their reservation before the measurement"));
    }
    for task in warm_up.iter().chain(&measured) {
        task.abort();
    }

    let mb = |kb: u64| kb as f64 / 1024.0;
    let per_reservation = after.saturating_sub(before) as f64 / RESERVATIONS as f64;
    Ok(format!(
        "{{\"relay_reservations\": {RESERVATIONS}, \"relay_rss_mb_before\": {:.1}, \
         \"relay_rss_mb_after\": {:.1}, \"relay_kb_per_reservation\": {per_reservation:.1}}}",
        mb(before),
        mb(after),
    ))
}

/// Starts `count` client peers, at most [`CONCURRENCY`] connecting at once, and returns once
/// each holds a reservation; their tasks go on serving their connections.
async fn reserve(
    relay: &Multiaddr,
    count: usize,
    lost: &Arc<AtomicUsize>,
) -> Result<Vec<JoinHandle<()>>> {
    let circuit = relay.clone().with(Protocol::P2pCircuit);
    let mut tasks = Vec::with_capacity(count);
    let mut accepted = 0;
    let all = async {
        // The stream spawns a client only when `buffer_unordered` has room for it.
        let mut pending = stream::iter(0..count)
            .map(|_| {
                let (reserved, on_reserved) = oneshot::channel();
                tasks.push(tokio::spawn(client(circuit.clone(), reserved, Arc::clone(lost))));
                on_reserved
            })
            .buffer_unordered(CONCURRENCY);
        while let Some(reserved) = pending.next().await {
            reserved.map_err(|_| "a client peer stopped before its reservation".to_owned())??;
            accepted += 1;
            if accepted % 200 == 0 {
                eprintln!("{accepted} of {count} reservations accepted");
            }
        }
        Ok::<_, String>(())
    };
    let outcome = tokio::time::timeout(RESERVE_TIMEOUT, all).await;
    let failed = match outcome {
        Ok(Ok(())) => return Ok(tasks),
        Ok(Err(error)) => error,
        Err(_) => format!(
            "only {accepted} of {count} reservations were accepted within {RESERVE_TIMEOUT:?}"
        ),
    };
    for task in &tasks {
        task.abort();
    }
    Err(failed)
}

#[derive(NetworkBehaviour)]
struct Client {
    relay: relay::client::Behaviour,
    // Not needed to reserve, but every Hearth peer runs them, and the relay keeps per-connection
    // state for both (identify keeps what the peer told it), which belongs in the figure.
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// One client peer: reserves a slot through `circuit` (`<relay>/p2p-circuit`), says so on
/// `reserved`, then serves its connection until aborted.
async fn client(circuit: Multiaddr, reserved: oneshot::Sender<Result<()>>, lost: Arc<AtomicUsize>) {
    let mut swarm = match build_client() {
        Ok(swarm) => swarm,
        Err(error) => {
            let _ = reserved.send(Err(format!("cannot build a client swarm: {error}")));
            return;
        }
    };
    let listener = match swarm.listen_on(circuit) {
        Ok(listener) => listener,
        Err(error) => {
            let _ = reserved.send(Err(format!("cannot listen through the relay: {error}")));
            return;
        }
    };
    let mut reserved = Some(reserved);
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::Behaviour(ClientEvent::Relay(
                relay::client::Event::ReservationReqAccepted { .. },
            )) => {
                if let Some(reserved) = reserved.take() {
                    let _ = reserved.send(Ok(()));
                }
            }
            SwarmEvent::ListenerClosed { listener_id, reason, .. } if listener_id == listener => {
                match reserved.take() {
                    Some(reserved) => {
                        let _ = reserved.send(Err(format!("reservation refused: {reason:?}")));
                    }
                    None => {
                        eprintln!("a reservation ended: {reason:?}");
                        lost.fetch_add(1, Ordering::SeqCst);
                    }
                }
                return;
            }
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                if let Some(reserved) = reserved.take() {
                    let _ = reserved.send(Err(format!("cannot connect to the relay: {error}")));
                    return;
                }
            }
            _ => {}
        }
    }
}

fn build_client() -> Result<Swarm<Client>> {
    let swarm = SwarmBuilder::with_existing_identity(Keypair::generate_ed25519())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|error| error.to_string())?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|error| error.to_string())?
        .with_behaviour(|key, relay| Client {
            relay,
            identify: identify::Behaviour::new(identify::Config::new(
                "/hearth/1.0.0".to_owned(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
        })
        .map_err(|error| error.to_string())?
        // The reservation keeps the connection alive; this only covers the moments around it.
        .with_swarm_config(|config| config.with_idle_connection_timeout(Duration::from_secs(300)))
        .build();
    Ok(swarm)
}

/// Each reservation is one TCP connection, open both in this process and in the relay, which
/// inherits this limit. Raises the soft limit towards the hard one if it is too low.
fn raise_file_limit() -> Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let needed = (WARM_UP + RESERVATIONS) as u64 + SPARE_FILE_DESCRIPTORS;
    let limit = getrlimit(Resource::Nofile);
    let enough = |value: Option<u64>| value.is_none_or(|value| value >= needed);
    if enough(limit.current) {
        return Ok(());
    }
    if !enough(limit.maximum) {
        return Err(format!(
            "at most {:?} open files are allowed (ulimit -Hn); this benchmark needs {needed}",
            limit.maximum
        ));
    }
    let wanted = needed.max(4096);
    let current = Some(limit.maximum.map_or(wanted, |maximum| wanted.min(maximum)));
    let raised = Rlimit { current, ..limit };
    setrlimit(Resource::Nofile, raised)
        .map_err(|error| format!("cannot raise the open file limit to {needed}: {error}"))
}

/// The relay process under test.
struct Relay {
    child: Child,
    /// Its TCP address, ending in `/p2p/<relay peer id>`.
    address: Multiaddr,
    stopped: bool,
}

impl Relay {
    fn start(key: &Path) -> Result<Relay> {
        // Built by `cargo bench` with the bench profile, which inherits release: the optimised
        // binary an operator runs.
        let binary = env!("CARGO_BIN_EXE_hearth-rendezvous");
        eprintln!("relay binary: {binary}");
        let limit = (2 * (WARM_UP + RESERVATIONS)).to_string();
        let mut child = Command::new(binary)
            .args(["--listen-tcp", "/ip4/127.0.0.1/tcp/0", "--key"])
            .arg(key)
            .args(["--max-reservations", &limit, "--max-connections", &limit])
            // Its logs go to stderr; warnings only, unless RUST_LOG asks for more.
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| format!("cannot start {binary}: {error}"))?;
        let Some(stdout) = child.stdout.take() else {
            return Err("no stdout from hearth-rendezvous".into());
        };
        let mut relay = Relay { child, address: Multiaddr::empty(), stopped: false };
        // The thread reads stdout to the end so that the relay never writes to a closed pipe.
        let (found, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut address = None;
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("hearth-rendezvous: {line}");
                if let Some(listening) = line.strip_prefix("listening on ") {
                    address = Some(listening.trim().to_owned());
                } else if line == "ready"
                    && let Some(found) = found.take()
                {
                    let _ = found.send(address.take());
                }
            }
        });
        let address = match ready.recv_timeout(START_TIMEOUT) {
            Ok(Some(address)) => address,
            Ok(None) => return Err("hearth-rendezvous was ready without an address".into()),
            Err(_) => return Err(format!("hearth-rendezvous not ready within {START_TIMEOUT:?}")),
        };
        relay.address =
            address.parse().map_err(|error| format!("bad relay address {address}: {error}"))?;
        Ok(relay)
    }

    /// The relay's resident size in kB (`VmRSS` in `/proc/PID/status`).
    fn rss_kb(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|error| format!("cannot read the relay's status: {error}"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| "no VmRSS in the relay's status: has it exited?".to_owned())
    }

    /// SIGTERM, then a clean exit (status 0) within [`STOP_TIMEOUT`].
    fn stop(&mut self) -> Result<()> {
        self.stopped = true;
        let pid = self.child.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status();
        if !kill.map(|status| status.success()).unwrap_or(false) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return Err(format!("cannot send SIGTERM to hearth-rendezvous ({pid})"));
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait().map_err(|error| error.to_string())? {
                Some(status) if status.success() => return Ok(()),
                Some(status) => return Err(format!("hearth-rendezvous exited with {status}")),
                None if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!("hearth-rendezvous did not stop within {STOP_TIMEOUT:?}"));
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for Relay {
    /// A start that failed half-way, or a panic, still ends the relay.
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.stop();
        }
    }
}
