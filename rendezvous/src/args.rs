//! Command-line interface. Every limit has a default that lets chat traffic flow unthrottled while
//! bounding what one relay process can be made to hold; README.md explains each choice.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, CommandFactory, Parser, error::ErrorKind};
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

/// Hearth's relay: circuit relay v2 and a rendezvous server over WebSocket and TCP.
///
/// Prints `peer id: <id>` and, once listening, one `listening on <multiaddr>/p2p/<id>` line per
/// address on stdout, then `ready` when every listener has an address. Logs go to stderr
/// (level from RUST_LOG, default info).
#[derive(Debug, Parser)]
#[command(name = "hearth-rendezvous", version)]
#[command(group(ArgGroup::new("listen").required(true).multiple(true).args(["listen_ws", "listen_tcp"])))]
pub struct Args {
    /// WebSocket listen address for browsers, e.g. /ip4/0.0.0.0/tcp/4001/ws (repeatable).
    #[arg(long, value_name = "MULTIADDR", value_parser = parse_ws_addr)]
    pub(crate) listen_ws: Vec<Multiaddr>,

    /// TCP listen address for native peers, e.g. /ip4/0.0.0.0/tcp/4002 (repeatable).
    #[arg(long, value_name = "MULTIADDR", value_parser = parse_tcp_addr)]
    pub(crate) listen_tcp: Vec<Multiaddr>,

    /// File holding the relay's ed25519 identity; created (mode 0600) on first start.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,

    /// Address under which peers reach this relay, e.g. /dns4/relay.example.org/tcp/443/wss
    /// (repeatable). Without it the relay advertises its listen addresses, which is right when
    /// they are public (or on loopback) but not behind NAT or a TLS proxy.
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) external: Vec<Multiaddr>,

    #[command(flatten)]
    pub(crate) limits: Limits,
}

/// What the relay and the rendezvous server may be made to hold.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Limits {
    /// Reservations held at once, all peers together (each is one idle connection).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub(crate) max_reservations: usize,

    /// Reservations one peer may hold at once (a peer may reserve over WebSocket and TCP).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_reservations_per_peer: u32,

    /// How long a reservation lasts before the client must renew it (clients renew on their own).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub(crate) reservation_duration: Duration,

    /// Relayed connections open at once, all peers together.
    #[arg(long, value_name = "N", default_value_t = 8192)]
    pub(crate) max_circuits: usize,

    /// Relayed connections one peer may take part in at once, as source or destination: the
    /// number of other homeservers it federates with through this relay.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_circuits_per_peer: u32,

    /// Lifetime of one relayed connection; peers reconnect when it ends.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub(crate) max_circuit_duration: Duration,

    /// Bytes one relayed connection may carry, both directions together (0: unlimited).
    #[arg(long, value_name = "BYTES", default_value = "1GiB", value_parser = parse_bytes)]
    pub(crate) max_circuit_bytes: u64,

    /// Connections held at once (reservations, circuits' two ends, discovery).
    #[arg(long, value_name = "N", default_value_t = 16384)]
    pub(crate) max_connections: u32,

    /// Shortest rendezvous registration TTL a peer may ask for.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub(crate) registration_min_ttl: Duration,

    /// Longest rendezvous registration TTL a peer may ask for (libp2p clients ask for 2h unless
    /// told otherwise, so a lower bound here rejects them).
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = parse_duration)]
    pub(crate) registration_max_ttl: Duration,

    /// Rendezvous registrations held at once, all peers and namespaces together.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub(crate) max_registrations: usize,

    /// Rendezvous registrations one peer may hold (one per namespace).
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub(crate) max_registrations_per_peer: usize,
}

impl Args {
    /// Parses flags as the command line would (without the program name), e.g.
    /// `["--listen-tcp", "/ip4/127.0.0.1/tcp/0", "--key", "/tmp/key"]`; the error says why not.
    pub fn parse_flags<I, T>(flags: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let program = std::iter::once(std::ffi::OsString::from("hearth-rendezvous"));
        let args = Self::try_parse_from(program.chain(flags.into_iter().map(Into::into)))
            .map_err(|e| e.to_string())?;
        args.limits.check()?;
        Ok(args)
    }

    /// Parses the command line; on a bad flag or value prints why and exits with status 2.
    pub(crate) fn parse_or_exit() -> Self {
        let args = Self::parse();
        if let Err(message) = args.limits.check() {
            Self::command().error(ErrorKind::ValueValidation, message).exit();
        }
        args
    }

    pub(crate) fn listen_addrs(&self) -> impl Iterator<Item = &Multiaddr> {
        self.listen_ws.iter().chain(&self.listen_tcp)
    }
}

impl Limits {
    /// Checks what a single flag's parser cannot see.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.registration_min_ttl > self.registration_max_ttl {
            return Err(format!(
                "--registration-min-ttl ({}s) is above --registration-max-ttl ({}s)",
                self.registration_min_ttl.as_secs(),
                self.registration_max_ttl.as_secs()
            ));
        }
        // The relay tells clients the circuit duration in whole seconds as a u32.
        if self.max_circuit_duration.as_secs() > u64::from(u32::MAX) {
            return Err("--max-circuit-duration is above 136 years".to_owned());
        }
        Ok(())
    }
}

fn parse_ws_addr(s: &str) -> Result<Multiaddr, String> {
    let addr = parse_tcp_based(s)?;
    match addr.iter().last() {
        Some(Protocol::Ws(_)) => Ok(addr),
        _ => Err(format!("`{s}` is not a WebSocket address: it must end in /ws")),
    }
}

fn parse_tcp_addr(s: &str) -> Result<Multiaddr, String> {
    let addr = parse_tcp_based(s)?;
    match addr.iter().last() {
        Some(Protocol::Tcp(_)) => Ok(addr),
        _ => Err(format!("`{s}` is not a plain TCP address: it must end in /tcp/PORT")),
    }
}

fn parse_tcp_based(s: &str) -> Result<Multiaddr, String> {
    let addr: Multiaddr = s.parse().map_err(|e| format!("`{s}` is not a multiaddr: {e}"))?;
    let mut protocols = addr.iter();
    let ip = matches!(protocols.next(), Some(Protocol::Ip4(_) | Protocol::Ip6(_)));
    let tcp = matches!(protocols.next(), Some(Protocol::Tcp(_)));
    if !(ip && tcp) {
        return Err(format!("`{s}` must start with /ip4/ADDR/tcp/PORT or /ip6/ADDR/tcp/PORT"));
    }
    Ok(addr)
}

/// `90s`, `15m`, `1h`, `2d` or a bare number of seconds; never zero.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = split_unit(s);
    let not_a_duration = || format!("`{s}` is not a duration like 90s, 15m, 1h");
    if number.is_empty() {
        return Err(not_a_duration());
    }
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use s, m, h or d)")),
    };
    let secs = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(not_a_duration)?;
    if secs == 0 {
        return Err("a duration of zero would end everything at once".to_owned());
    }
    Ok(Duration::from_secs(secs))
}

/// `4096`, `128KiB`, `64MiB`, `1GiB` (also KB/MB/GB as powers of ten).
pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    let (number, unit) = split_unit(s);
    let not_a_size = || format!("`{s}` is not a size like 4096, 128KiB, 1GiB");
    if number.is_empty() {
        return Err(not_a_size());
    }
    let factor: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use KiB, MiB or GiB)")),
    };
    number.parse::<u64>().ok().and_then(|n| n.checked_mul(factor)).ok_or_else(not_a_size)
}

fn split_unit(s: &str) -> (&str, &str) {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    (&s[..digits], s[digits..].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        for bad in ["", "h", "0", "0s", "1y", "-1s", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("0").unwrap(), 0);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes("128KiB").unwrap(), 128 * 1024);
        assert_eq!(parse_bytes("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("2MB").unwrap(), 2_000_000);
        for bad in ["", "KiB", "1TiB", "1.5GiB", "-1", "99999999999GiB"] {
            assert!(parse_bytes(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn listen_addresses_are_checked_per_transport() {
        assert!(parse_ws_addr("/ip4/0.0.0.0/tcp/4001/ws").is_ok());
        assert!(parse_ws_addr("/ip4/0.0.0.0/tcp/4001").is_err());
        assert!(parse_tcp_addr("/ip6/::/tcp/4002").is_ok());
        assert!(parse_tcp_addr("/ip4/0.0.0.0/tcp/4002/ws").is_err());
        assert!(parse_tcp_addr("/dns4/example.org/tcp/4002").is_err());
        assert!(parse_tcp_addr("not an address").is_err());
    }

    #[test]
    fn defaults_parse_and_are_consistent() {
        let args =
            Args::try_parse_from(["x", "--listen-tcp", "/ip4/127.0.0.1/tcp/0", "--key", "k"])
                .unwrap();
        args.limits.check().unwrap();
        assert_eq!(args.limits.max_circuit_bytes, 1 << 30);
        assert_eq!(args.limits.max_circuit_duration, Duration::from_secs(3600));
    }

    #[test]
    fn a_listen_flag_is_required() {
        let err = Args::try_parse_from(["x", "--key", "k"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn inverted_ttl_bounds_are_rejected() {
        let args = Args::try_parse_from([
            "x",
            "--listen-tcp",
            "/ip4/127.0.0.1/tcp/0",
            "--key",
            "k",
            "--registration-min-ttl",
            "3h",
        ])
        .unwrap();
        assert!(args.limits.check().is_err());
    }
}
