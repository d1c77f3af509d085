//! Building the browser app: the homeserver as size-optimised wasm, then the TypeScript page and
//! service worker with Vite, into `web/dist`.

use std::{env, path::PathBuf, process::Command};

use crate::{cargo, root, step, target_dir};

/// wasm-opt passes for the homeserver module. Measured on it (gzipped, what a browser
/// downloads): after wasm-bindgen without the name section 918 KB; `-O1` 904 KB; `-Oz` 1,054 KB
/// and `-Os` 1,051 KB, because their inlining and reordering compress worse. `-O1` also takes
/// 15 s where `-Oz` takes 55 s. With libp2p in the module (issue 5): one `-O1` 1,500,220 bytes,
/// a second `-O1` 1,493,524 (27 s in all), `--converge` 1,492,141 (75 s).
const WASM_OPT_PASSES: &[&str] = &["-O1", "-O1", "--strip-debug", "--strip-producers"];

/// The wasm features rustc's wasm32-unknown-unknown target emits by default; wasm-opt must be
/// told, or it refuses the module.
const WASM_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// Where the built app is.
/// `web/dist`, or `$HEARTH_DIST` when set (a build kept apart from it, served by `xtask serve`
/// and written by the Vite configs alike).
pub(crate) fn dist() -> PathBuf {
    match env::var_os("HEARTH_DIST") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => root().join("web").join("dist"),
    }
}

/// Builds `web/pkg` (the homeserver module) and `web/dist` (the app).
pub(crate) fn build() -> Result<(), String> {
    step(
        "homeserver wasm (release)",
        cargo(&[
            "build",
            "-p",
            "hearth-web",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "wasm-release",
        ]),
    )?;
    let web = root().join("web");
    let module = target_dir().join("wasm32-unknown-unknown/wasm-release/hearth_web.wasm");
    let mut bindgen = Command::new("wasm-bindgen");
    bindgen
        .args(["--target", "web", "--remove-name-section", "--remove-producers-section"])
        .arg("--out-dir")
        .arg(web.join("pkg"))
        .arg(&module);
    step("wasm-bindgen", bindgen)?;
    // binaryen from npm: Debian's wasm-opt (binaryen 108) produces modules that fail to load.
    let optimised = web.join("pkg").join("hearth_web_bg.wasm");
    let mut wasm_opt = Command::new(web.join("node_modules/.bin/wasm-opt"));
    wasm_opt.args(WASM_FEATURES).args(WASM_OPT_PASSES).arg(&optimised).arg("-o").arg(&optimised);
    step("wasm-opt", wasm_opt)?;
    let mut vite = Command::new("npm");
    vite.current_dir(&web).args(["run", "build"]);
    step("web app (Vite)", vite)
}
