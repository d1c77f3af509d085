//! `cargo xtask`: the project's commands, so that a fresh Debian machine with Rust and Node needs
//! nothing else. Every step that needs a tool installs it first, idempotently, from the ordinary
//! package registries (never a downloaded browser or prebuilt binary).

mod relay;
mod serve;
mod tools;
mod web;

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use tools::Tools;

/// Libraries that must build for the browser, checked by clippy on wasm32 (their tests use
/// native runtimes).
const WASM_LIB_CRATES: &[&str] = &["hearth-server", "hearth-p2p"];

/// Crates whose tests also run as wasm in headless Chromium.
const WASM_TEST_CRATES: &[&str] =
    &["hearth-core", "hearth-store", "hearth-store-idb", "hearth-web"];

/// Where `cargo xtask dev` serves unless told otherwise.
const DEFAULT_PORT: u16 = 8080;

const USAGE: &str = "\
usage: cargo xtask <command>

  dev [--port N] build the app (release wasm), start a local relay (WebSocket on
                 127.0.0.1:4001, TCP on 127.0.0.1:4002) and serve the app at
                 http://127.0.0.1:8080, federating through that relay by default
  build          build the app (release wasm, then web/dist) without serving it
  serve [--port N] [--relay MULTIADDR]...
                 serve the app as built last (port 0: any free port); the page federates
                 through the relays given by default
  test           everything: formatting, clippy (native and wasm32), native tests,
                 matrix-js-sdk tests against hearth-node, wasm tests in headless Chromium
  ci             what .ci/run runs: the same as test
  bench          benchmarks (core native and in Chromium, hearth-node load, two hearth-nodes
                 federating through the relay, the relay with 1,000 reservations, the app in
                 Chromium, the chat app's load and render, two browsers federating); prints one
                 JSON object
  fuzz [SECS]    fuzz PDU parsing and verification for SECS seconds (default 60)";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("dev") => port(&args[1..]).and_then(dev),
        Some("build") => Tools::ensure_build(&root()).and_then(|()| web::build()),
        Some("serve") => serve_args(&args[1..])
            .and_then(|(port, relays)| serve::serve(&web::dist(), port, &relays)),
        Some("test" | "ci") => test(),
        Some("bench") => bench(),
        Some("fuzz") => fuzz(args.get(1).map(String::as_str)),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask lives one level below it.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `--port N` from the arguments, or the default.
fn port(args: &[String]) -> Result<u16, String> {
    match args {
        [] => Ok(DEFAULT_PORT),
        [flag, value] if flag == "--port" => {
            value.parse().map_err(|_| format!("--port takes a port number, not {value:?}"))
        }
        _ => Err(USAGE.to_owned()),
    }
}

/// `[--port N] [--relay MULTIADDR]...` for `serve`.
fn serve_args(args: &[String]) -> Result<(u16, Vec<String>), String> {
    let mut port = DEFAULT_PORT;
    let mut relays = Vec::new();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        match flag.as_str() {
            "--port" => {
                port = value
                    .parse()
                    .map_err(|_| format!("--port takes a port number, not {value:?}"))?;
            }
            "--relay" => relays.push(value.clone()),
            _ => return Err(USAGE.to_owned()),
        }
    }
    Ok((port, relays))
}

fn dev(port: u16) -> Result<(), String> {
    Tools::ensure_build(&root())?;
    web::build()?;
    let relay = relay::start_dev_relay(&root())?;
    println!("relay for browsers: {}", relay.websocket);
    println!("relay for native nodes: hearth-node --relay {}", relay.tcp);
    serve::serve(&web::dist(), port, std::slice::from_ref(&relay.websocket))
}

fn test() -> Result<(), String> {
    let tools = Tools::ensure(&root())?;
    step("formatting", cargo(&["fmt", "--all", "--", "--check"]))?;
    step(
        "clippy (native)",
        cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    )?;
    let mut wasm_clippy = vec!["clippy", "--target", "wasm32-unknown-unknown", "--all-targets"];
    for krate in WASM_TEST_CRATES {
        wasm_clippy.extend(["-p", krate]);
    }
    wasm_clippy.extend(["--", "-D", "warnings"]);
    step("clippy (wasm32)", cargo(&wasm_clippy))?;
    // Libraries the browser host will run, whose tests are native only.
    let mut wasm_lib_clippy = vec!["clippy", "--target", "wasm32-unknown-unknown"];
    for krate in WASM_LIB_CRATES {
        wasm_lib_clippy.extend(["-p", krate]);
    }
    wasm_lib_clippy.extend(["--", "-D", "warnings"]);
    step("clippy (wasm32 libraries)", cargo(&wasm_lib_clippy))?;
    step("native tests", cargo(&["test", "--workspace", "--all-targets"]))?;
    step("doc tests", cargo(&["test", "--workspace", "--doc"]))?;
    // One build for both binaries the Node tests run: the peers and the relay (tests/p2p).
    step(
        "build hearth-node and hearth-rendezvous",
        cargo(&["build", "-p", "hearth-node", "-p", "hearth-rendezvous"]),
    )?;
    web::build()?;
    let mut typecheck = Command::new("npm");
    typecheck.current_dir(root().join("web")).args(["run", "check"]);
    step("TypeScript checks (web)", typecheck)?;
    let mut node_tests = Command::new("npm");
    node_tests
        .current_dir(root().join("tests"))
        .arg("test")
        .env("HEARTH_NODE_BIN", target_dir().join("debug").join("hearth-node"))
        .env("HEARTH_RENDEZVOUS_BIN", target_dir().join("debug").join("hearth-rendezvous"))
        .env("HEARTH_XTASK_BIN", env::current_exe().map_err(|error| error.to_string())?);
    step("matrix-js-sdk against hearth-node, the app in Chromium and Firefox", node_tests)?;
    for krate in WASM_TEST_CRATES {
        step(
            &format!("wasm tests of {krate} in headless Chromium"),
            tools.wasm_test(&["test", "--target", "wasm32-unknown-unknown", "-p", krate]),
        )?;
    }
    println!("\nxtask: all checks passed");
    Ok(())
}

fn bench() -> Result<(), String> {
    let tools = Tools::ensure(&root())?;
    let native = capture(cargo(&["bench", "--quiet", "-p", "hearth-core", "--bench", "core"]))?;
    let native: serde_json::Value = parse_report(&native, "")?;

    let wasm = capture(tools.wasm_test(&[
        "test",
        "--release",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "hearth-core",
        "--test",
        "bench_wasm",
        "--",
        "--include-ignored",
        "--nocapture",
    ]))?;
    let wasm = parse_report(&wasm, "HEARTH_BENCH ")?;

    let load = capture(cargo(&["bench", "--quiet", "-p", "hearth-node", "--bench", "load"]))?;
    let load = parse_report(&load, "")?;

    // Two hearth-nodes through the relay: delivery and a remote join.
    let p2p = capture(cargo(&["bench", "--quiet", "-p", "hearth-node", "--bench", "p2p"]))?;
    let p2p = parse_report(&p2p, "")?;

    let relay = capture(cargo(&[
        "bench",
        "--quiet",
        "-p",
        "hearth-rendezvous",
        "--bench",
        "reservations",
    ]))?;
    let relay = parse_report(&relay, "")?;

    web::build()?;
    let mut browser = Command::new("node");
    browser
        .current_dir(root().join("tests"))
        // The bench talks to Chromium over a WebSocket: Node 20 has the client behind a flag.
        .args(["--experimental-websocket", "bench/browser.mjs"])
        .env("HEARTH_XTASK_BIN", env::current_exe().map_err(|error| error.to_string())?);
    let browser = parse_report(&capture(browser)?, "HEARTH_BENCH ")?;
    // The chat app: bundle size, a cold load to the composer, a 1,000-message room's render.
    let mut chat_app = Command::new("node");
    chat_app
        .current_dir(root().join("tests"))
        .args(["--experimental-websocket", "bench/app.mjs"])
        .env("HEARTH_XTASK_BIN", env::current_exe().map_err(|error| error.to_string())?);
    let chat_app = parse_report(&capture(chat_app)?, "HEARTH_BENCH ")?;

    // Two browsers federating through a release relay over its WebSocket listener.
    capture(cargo(&["build", "--release", "-p", "hearth-rendezvous"]))?;
    let mut browser_p2p = Command::new("node");
    browser_p2p
        .current_dir(root().join("tests"))
        .args(["--experimental-websocket", "bench/browser-p2p.mjs"])
        .env("HEARTH_XTASK_BIN", env::current_exe().map_err(|error| error.to_string())?)
        .env("HEARTH_RENDEZVOUS_BIN", target_dir().join("release").join("hearth-rendezvous"));
    let browser_p2p = parse_report(&capture(browser_p2p)?, "HEARTH_BENCH ")?;

    let mut report = serde_json::Map::new();
    for part in [load, p2p, relay, browser, chat_app, browser_p2p] {
        if let serde_json::Value::Object(fields) = part {
            report.extend(fields);
        }
    }
    if let serde_json::Value::Object(fields) = native {
        report.extend(fields);
    }
    if let serde_json::Value::Object(fields) = wasm {
        report.extend(fields.into_iter().map(|(key, value)| (format!("wasm_{key}"), value)));
    }
    println!("{}", serde_json::Value::Object(report));
    Ok(())
}

/// The first line of `output` that starts with `marker` and holds a JSON object.
fn parse_report(output: &str, marker: &str) -> Result<serde_json::Value, String> {
    output
        .lines()
        .filter_map(|line| line.trim().strip_prefix(marker))
        .find_map(|rest| serde_json::from_str(rest.trim()).ok())
        .ok_or_else(|| format!("no benchmark report in the output:\n{output}"))
}

fn fuzz(seconds: Option<&str>) -> Result<(), String> {
    let seconds: u32 = seconds.unwrap_or("60").parse().map_err(|_| "fuzz takes seconds")?;
    let tools = Tools::ensure_fuzz()?;
    // libFuzzer writes what it finds to the first corpus directory and refuses a missing one.
    let corpus = root().join("fuzz/corpus/pdu");
    std::fs::create_dir_all(&corpus)
        .map_err(|error| format!("cannot create {}: {error}", corpus.display()))?;
    let mut command = Command::new(tools);
    command
        .current_dir(root().join("fuzz"))
        // cargo-fuzz needs nightly-only flags; the stable toolchain accepts them this way.
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", "pdu", "corpus/pdu", "seeds/pdu", "--"])
        .arg(format!("-max_total_time={seconds}"));
    step("fuzzing PDU parsing and verification", command)
}

/// Where cargo puts build output (`CARGO_TARGET_DIR` when set, as CI may set it).
fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root()).args(args);
    command
}

/// Runs a step, streaming its output, and fails with its name.
fn step(name: &str, mut command: Command) -> Result<(), String> {
    println!("\n== {name}");
    let status = command.status().map_err(|error| format!("{name}: cannot start: {error}"))?;
    if status.success() { Ok(()) } else { Err(format!("{name} failed ({status})")) }
}

/// Runs a command and returns its standard output; its standard error passes through.
fn capture(mut command: Command) -> Result<String, String> {
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|error| format!("cannot start {command:?}: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{command:?} failed ({}):\n{stdout}", output.status))
    }
}
