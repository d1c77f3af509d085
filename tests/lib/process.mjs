// What the harnesses that run our binaries share: where cargo put a binary, the children and
// temp dirs cleaned up even if a test times out and the runner forces the process to exit (a
// SIGKILLed orphan would otherwise outlive the run), and a bounded SIGTERM stop.

import { rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const VERBOSE = process.env.HEARTH_TEST_VERBOSE === "1";
/** How many lines of a child's output are kept for a failure's message. */
export const LOG_LINES_KEPT = 2_000;

/** Children still running and temp dirs still present. */
export const liveChildren = new Set();
export const ownedDirs = new Set();
process.on("exit", () => {
  for (const child of liveChildren) child.kill("SIGKILL");
  for (const dir of ownedDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * Where a workspace binary is: `$envVar` if set, else cargo's debug output directory (cargo
 * resolves a relative CARGO_TARGET_DIR against the working directory; so do we).
 */
export function cargoBinary(envVar, name) {
  if (process.env[envVar]) return path.resolve(process.env[envVar]);
  const targetDir = process.env.CARGO_TARGET_DIR
    ? path.resolve(process.env.CARGO_TARGET_DIR)
    : path.join(REPO_ROOT, "target");
  return path.join(targetDir, "debug", name);
}

/**
 * SIGTERM, then wait up to `stopMs` for exit code 0; SIGKILL and throw (with `log()`) otherwise.
 * @param {{child: import("node:child_process").ChildProcess, exited: Promise<{code: number|null, signal: string|null}>}} proc
 */
export async function terminate({ child, exited }, { name, stopMs, log }) {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  let timer;
  const timedOut = new Promise((resolve) => {
    timer = setTimeout(() => resolve("timeout"), stopMs);
  });
  const result = await Promise.race([exited, timedOut]);
  clearTimeout(timer);
  if (result === "timeout") {
    child.kill("SIGKILL");
    await exited;
    throw new Error(`${name} did not exit within ${stopMs} ms of SIGTERM\n${log()}`);
  }
  if (result.code !== 0) {
    throw new Error(
      `${name} should exit 0 on SIGTERM; got code ${result.code}, signal ${result.signal}\n${log()}`,
    );
  }
}
