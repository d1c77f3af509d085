//! The binary as an operator meets it: identity kept across restarts, clean exit on SIGTERM,
//! exit status 2 and a message for a bad command line, a clear error for a corrupt key.

mod common;

use std::process::{Command, Output};

use common::start_relay;

fn relay_with(args: &[&str]) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_hearth-rendezvous")).args(args).output() {
        Ok(output) => output,
        Err(e) => panic!("cannot run hearth-rendezvous: {e}"),
    }
}

#[tokio::test]
async fn keeps_its_peer_id_across_restarts_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    let first = start_relay(&key, &[]).await;
    let first_id = first.peer_id;
    assert_eq!(first.terminate().await, Some(0), "SIGTERM exits 0");
    let second = start_relay(&key, &[]).await;
    assert_eq!(second.peer_id, first_id, "same key file, same peer ID");
    assert_eq!(second.terminate().await, Some(0));
}

#[test]
fn bad_command_lines_exit_2_with_a_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["--key", "k"], "--listen"),
        (&["--listen-tcp", "/ip4/127.0.0.1/tcp/0"], "--key"),
        (&["--listen-ws", "/ip4/127.0.0.1/tcp/0", "--key", "k"], "/ws"),
        (&["--listen-tcp", "nonsense", "--key", "k"], "multiaddr"),
        (
            &["--listen-tcp", "/ip4/127.0.0.1/tcp/0", "--key", "k", "--max-circuit-bytes", "lots"],
            "size",
        ),
        (
            &["--listen-tcp", "/ip4/127.0.0.1/tcp/0", "--key", "k", "--max-circuit-duration", "0"],
            "zero",
        ),
        (
            &[
                "--listen-tcp",
                "/ip4/127.0.0.1/tcp/0",
                "--key",
                "k",
                "--max-reservations-per-peer",
                "0",
            ],
            "0",
        ),
        (
            &["--listen-tcp", "/ip4/127.0.0.1/tcp/0", "--key", "k", "--registration-min-ttl", "3h"],
            "ttl",
        ),
        (&["--listen-tcp", "/ip4/127.0.0.1/tcp/0", "--key", "k", "--no-such-flag"], "no-such-flag"),
    ];
    for (args, mention) in cases {
        let out = relay_with(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.to_lowercase().contains(mention),
            "{args:?} should mention {mention}: {stderr}"
        );
    }
}

#[test]
fn help_lists_every_limit() {
    let out = relay_with(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen-ws",
        "--listen-tcp",
        "--key",
        "--external",
        "--max-reservations ",
        "--max-reservations-per-peer",
        "--reservation-duration",
        "--max-circuits ",
        "--max-circuits-per-peer",
        "--max-circuit-duration",
        "--max-circuit-bytes",
        "--max-connections",
        "--registration-min-ttl",
        "--registration-max-ttl",
        "--max-registrations ",
        "--max-registrations-per-peer",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    assert!(help.contains("[default: 1GiB]"), "defaults are shown");
}

#[test]
fn a_corrupt_key_file_is_an_error_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, b"garbage").unwrap();
    let out = relay_with(&["--listen-tcp", "/ip4/127.0.0.1/tcp/0", "--key", key.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not hold an ed25519 key"), "{stderr}");
    assert_eq!(std::fs::read(&key).unwrap(), b"garbage");
}

#[test]
fn a_port_in_use_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    let addr = format!("/ip4/127.0.0.1/tcp/{port}");
    let out = relay_with(&["--listen-tcp", &addr, "--key", key.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
}
