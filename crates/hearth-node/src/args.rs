//! The command line.

use std::{net::SocketAddr, path::PathBuf};

use hearth_p2p::{Multiaddr, codec::MAX_MEDIA_BYTES};
use hearth_server::Registration;

pub(crate) const USAGE: &str = "\
usage: hearth-node --data DIR --listen ADDR:PORT [--open-registration | --registration-token TOKEN]
                   [--max-upload-bytes N] [--relay MULTIADDR]...

  --data DIR                  where the database lives (created if missing)
  --listen ADDR:PORT          address to serve HTTP on (port 0 picks a free one)
  --open-registration         anyone may create an account
  --registration-token TOKEN  accounts need this token (m.login.registration_token)
  --max-upload-bytes N        largest media upload accepted (default and most: 50 MiB, the
                              largest file other servers can fetch)
  --relay MULTIADDR           federate over libp2p through this hearth-rendezvous relay, e.g.
                              /ip4/203.0.113.7/tcp/4002/p2p/12D3KooW... (repeatable; without
                              it the server does not federate)";

#[derive(Debug)]
pub(crate) struct Args {
    pub(crate) data: PathBuf,
    pub(crate) listen: SocketAddr,
    pub(crate) registration: Registration,
    pub(crate) max_upload_bytes: Option<u64>,
    /// Relays to federate through, each ending in `/p2p/<relay peer id>`.
    pub(crate) relays: Vec<Multiaddr>,
}

impl Args {
    pub(crate) fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut data = None;
        let mut listen = None;
        let mut registration = Registration::Closed;
        let mut max_upload_bytes = None;
        let mut relays = Vec::new();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--data" => data = Some(PathBuf::from(value("--data")?)),
                "--listen" => {
                    let text = value("--listen")?;
                    listen = Some(
                        text.parse().map_err(|_| format!("--listen: {text:?} is not ADDR:PORT"))?,
                    );
                }
                "--open-registration" => {
                    if registration != Registration::Closed {
                        return Err(
                            "choose one of --open-registration and --registration-token".into()
                        );
                    }
                    registration = Registration::Open;
                }
                "--registration-token" => {
                    let token = value("--registration-token")?;
                    if registration != Registration::Closed {
                        return Err(
                            "choose one of --open-registration and --registration-token".into()
                        );
                    }
                    if token.is_empty() {
                        return Err("--registration-token must not be empty".into());
                    }
                    registration = Registration::Token(token);
                }
                "--max-upload-bytes" => {
                    let text = value("--max-upload-bytes")?;
                    let bytes: u64 = text
                        .parse()
                        .map_err(|_| format!("--max-upload-bytes: {text:?} is not a number"))?;
                    if bytes > MAX_MEDIA_BYTES as u64 {
                        return Err(format!(
                            "--max-upload-bytes: {bytes} is more than {MAX_MEDIA_BYTES}, the \
                             largest file other servers can fetch"
                        ));
                    }
                    max_upload_bytes = Some(bytes);
                }
                "--relay" => relays.push(parse_relay(&value("--relay")?)?),
                "-h" | "--help" => return Err("help".into()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Args {
            data: data.ok_or("--data DIR is required")?,
            listen: listen.ok_or("--listen ADDR:PORT is required")?,
            registration,
            max_upload_bytes,
            relays,
        })
    }
}

/// A relay address must say whose key to expect: `…/p2p/<relay peer id>`.
fn parse_relay(text: &str) -> Result<Multiaddr, String> {
    let addr: Multiaddr =
        text.parse().map_err(|error| format!("--relay: {text:?} is not a multiaddr: {error}"))?;
    match addr.iter().last() {
        Some(hearth_p2p::multiaddr::Protocol::P2p(_)) => Ok(addr),
        _ => Err(format!("--relay: {text:?} must end in /p2p/<relay peer id>")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|arg| (*arg).to_owned()))
    }

    #[test]
    fn uploads_are_at_most_what_crosses_between_servers() {
        assert_eq!(hearth_server::Config::default().max_upload_bytes, MAX_MEDIA_BYTES as u64);
        let limit = MAX_MEDIA_BYTES.to_string();
        let over = (MAX_MEDIA_BYTES + 1).to_string();
        let base = ["--data", "/tmp/x", "--listen", "127.0.0.1:0", "--max-upload-bytes"];
        let args = parse(&[&base[..], &[limit.as_str()]].concat()).unwrap();
        assert_eq!(args.max_upload_bytes, Some(MAX_MEDIA_BYTES as u64));
        let error = parse(&[&base[..], &[over.as_str()]].concat()).unwrap_err();
        assert!(error.contains("largest file other servers can fetch"), "{error}");
    }

    #[test]
    fn parses_the_documented_flags() {
        let args =
            parse(&["--data", "/tmp/x", "--listen", "127.0.0.1:0", "--registration-token", "t"])
                .unwrap();
        assert_eq!(args.registration, Registration::Token("t".into()));
        assert_eq!(args.listen.port(), 0);
        assert!(parse(&["--data", "d", "--listen", "127.0.0.1:1", "--open-registration"]).is_ok());
        assert!(args.relays.is_empty());
    }

    #[test]
    fn relays_repeat_and_name_their_peer() {
        let relay =
            "/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp";
        let ws = "/dns4/relay.example.org/tcp/443/wss/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp";
        let args =
            parse(&["--data", "d", "--listen", "127.0.0.1:0", "--relay", relay, "--relay", ws])
                .unwrap();
        assert_eq!(args.relays.len(), 2);
        assert_eq!(args.relays[0].to_string(), relay);
        let no_peer = parse(&[
            "--data",
            "d",
            "--listen",
            "127.0.0.1:0",
            "--relay",
            "/ip4/127.0.0.1/tcp/4002",
        ]);
        assert!(no_peer.unwrap_err().contains("/p2p/"));
        let garbage =
            parse(&["--data", "d", "--listen", "127.0.0.1:0", "--relay", "relay.example.org"]);
        assert!(garbage.unwrap_err().contains("not a multiaddr"));
    }

    #[test]
    fn bad_command_lines_say_why() {
        assert!(parse(&["--listen", "127.0.0.1:0"]).unwrap_err().contains("--data"));
        assert!(parse(&["--data", "d", "--listen", "nope"]).unwrap_err().contains("ADDR:PORT"));
        assert!(
            parse(&[
                "--data",
                "d",
                "--listen",
                "127.0.0.1:0",
                "--open-registration",
                "--registration-token",
                "t"
            ])
            .unwrap_err()
            .contains("choose one")
        );
        assert!(parse(&["--bogus"]).unwrap_err().contains("unknown argument"));
        assert!(parse(&["--data"]).unwrap_err().contains("needs a value"));
    }
}
