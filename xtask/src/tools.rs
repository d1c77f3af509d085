//! Installing what the commands need, idempotently: the wasm32 target, `wasm-bindgen-cli` at
//! exactly the version of the `wasm-bindgen` crate in Cargo.lock, Chromium, ChromeDriver and
//! Firefox ESR from Debian's packages, npm packages at their locked versions.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

/// Where the tools are, once ensured.
pub(crate) struct Tools {
    chromedriver: PathBuf,
}

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const FIREFOX: &str = "/usr/bin/firefox-esr";

impl Tools {
    /// Makes sure every tool the test and bench commands need is installed.
    pub(crate) fn ensure(root: &Path) -> Result<Self, String> {
        Self::ensure_build(root)?;
        ensure_chromium()?;
        ensure_firefox()?;
        Ok(Self { chromedriver: PathBuf::from(CHROMEDRIVER) })
    }

    /// What building the app needs (no browser).
    pub(crate) fn ensure_build(root: &Path) -> Result<(), String> {
        ensure_wasm_target()?;
        ensure_wasm_bindgen(root)?;
        ensure_npm_packages(root)
    }

    /// `cargo-fuzz`, installed from the registry when missing.
    pub(crate) fn ensure_fuzz() -> Result<PathBuf, String> {
        if !has_cargo_subcommand("fuzz") {
            run(Command::new(cargo()).args(["install", "cargo-fuzz", "--locked"]))?;
        }
        Ok(PathBuf::from(cargo()))
    }

    /// A cargo command whose wasm tests run in headless Chromium through ChromeDriver; the
    /// browser flags are in each crate's `webdriver.json`.
    pub(crate) fn wasm_test(&self, args: &[&str]) -> Command {
        let mut command = Command::new(cargo());
        command
            .current_dir(super::root())
            .args(args)
            .env("CHROMEDRIVER", &self.chromedriver)
            // Debug-build signing and state resolution are slow in the browser.
            .env("WASM_BINDGEN_TEST_TIMEOUT", "300");
        command
    }
}

fn cargo() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn ensure_wasm_target() -> Result<(), String> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if !installed.lines().any(|line| line.trim() == "wasm32-unknown-unknown") {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    Ok(())
}

/// The test runner must be the exact version of the `wasm-bindgen` crate: their schemas must
/// match. Newer CLIs do not install `--locked` here, so the lock file decides.
fn ensure_wasm_bindgen(root: &Path) -> Result<(), String> {
    let lock = fs::read_to_string(root.join("Cargo.lock"))
        .map_err(|error| format!("cannot read Cargo.lock: {error}"))?;
    let wanted = locked_version(&lock, "wasm-bindgen")
        .ok_or("Cargo.lock has no wasm-bindgen: is a wasm crate in the workspace?")?;
    let installed = Command::new("wasm-bindgen")
        .arg("--version")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
    let runner = Command::new("wasm-bindgen-test-runner").arg("--version").output().is_ok();
    if installed.as_deref() != Some(&format!("wasm-bindgen {wanted}")) || !runner {
        println!("xtask: installing wasm-bindgen-cli {wanted} (about 8 minutes on 2 cores)");
        run(Command::new(cargo()).args([
            "install",
            "wasm-bindgen-cli",
            "--version",
            &wanted,
            "--locked",
            "--force",
        ]))?;
    }
    Ok(())
}

/// The version of `package` in a Cargo.lock.
fn locked_version(lock: &str, package: &str) -> Option<String> {
    let name_line = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == name_line {
            return lines
                .next()?
                .trim()
                .strip_prefix("version = \"")?
                .strip_suffix('"')
                .map(str::to_owned);
        }
    }
    None
}

fn ensure_chromium() -> Result<(), String> {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return Ok(());
    }
    println!("xtask: installing Debian's chromium and chromium-driver");
    apt_install(&["chromium", "chromium-driver"], "Chromium and ChromeDriver are")
}

/// Debian's Firefox ESR, which `tests/browser/firefox.test.mjs` drives over WebDriver BiDi (no
/// geckodriver, no browser download).
fn ensure_firefox() -> Result<(), String> {
    if Path::new(FIREFOX).exists() {
        return Ok(());
    }
    println!("xtask: installing Debian's firefox-esr");
    apt_install(&["firefox-esr"], "Firefox ESR is")
}

/// `apt-get install` as root, else through password-less sudo; `apt-get update` and a retry
/// when the package lists are stale. `what` names the packages in the failure message.
fn apt_install(packages: &[&str], what: &str) -> Result<(), String> {
    let is_root = output(Command::new("id").arg("-u")).map(|uid| uid.trim() == "0")?;
    let apt = |args: &[&str]| {
        let mut command = if is_root { Command::new("apt-get") } else { Command::new("sudo") };
        if !is_root {
            command.args(["-n", "apt-get"]);
        }
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut command)
    };
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend_from_slice(packages);
    if apt(&install).is_err() {
        apt(&["update"])?;
        apt(&install).map_err(|error| {
            format!(
                "{error}\n{what} needed for the browser tests. Install with \
                 `sudo apt-get install {}` and run again.",
                packages.join(" ")
            )
        })?;
    }
    Ok(())
}

/// The locked npm packages wherever the project has a lock file and its `node_modules` is
/// missing or older.
fn ensure_npm_packages(root: &Path) -> Result<(), String> {
    for dir in ["web", "tests"] {
        let dir = root.join(dir);
        let lock = dir.join("package-lock.json");
        if !lock.exists() {
            continue;
        }
        let stamp = dir.join("node_modules/.package-lock.json");
        let fresh = match (fs::metadata(&lock), fs::metadata(&stamp)) {
            (Ok(lock), Ok(stamp)) => {
                matches!((lock.modified(), stamp.modified()), (Ok(l), Ok(s)) if s >= l)
            }
            _ => false,
        };
        if !fresh {
            // `npm install` at the locked versions rather than `npm ci`: the lock lists only
            // this platform's builds of packages with native parts (Vite's rollup and esbuild;
            // the registry here serves no other platform's), and `npm ci` refuses such a lock.
            run(Command::new("npm")
                .args(["install", "--no-save", "--no-audit", "--no-fund"])
                .current_dir(&dir))?;
        }
    }
    Ok(())
}

fn has_cargo_subcommand(name: &str) -> bool {
    Command::new(cargo()).args([name, "--version"]).output().is_ok_and(|out| out.status.success())
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command.status().map_err(|error| format!("cannot start {command:?}: {error}"))?;
    if status.success() { Ok(()) } else { Err(format!("{command:?} failed ({status})")) }
}

fn output(command: &mut Command) -> Result<String, String> {
    let out = command.output().map_err(|error| format!("cannot start {command:?}: {error}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::locked_version;

    #[test]
    fn reads_the_locked_version_of_a_package() {
        let lock = "[[package]]\nname = \"wasm-bindgen-futures\"\nversion = \"0.4.58\"\n\n\
                    [[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.108\"\n";
        assert_eq!(locked_version(lock, "wasm-bindgen").as_deref(), Some("0.2.108"));
        assert_eq!(locked_version(lock, "missing"), None);
    }
}
