// Harness for the hearth-node binary: start it on a free port in a temporary data directory,
// wait (bounded) until it says it is listening, restart it on the same data, stop it.
// Independent of matrix-js-sdk, so browser tests can use it too.

import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import {
  LOG_LINES_KEPT,
  VERBOSE,
  cargoBinary,
  liveChildren,
  ownedDirs,
  terminate,
} from "./process.mjs";

const STARTUP_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

const SERVER_NAME_LINE = /^server name: ([0-9a-f]{64})$/;
const LISTENING_LINE = /^listening on (http:\/\/[^\s/]+:\d+)\/?$/;
const RELAY_RESERVED_LINE = /^relay reserved: /;

/** Where the binary is: `HEARTH_NODE_BIN`, else cargo's debug output directory. */
export const nodeBinaryPath = () => cargoBinary("HEARTH_NODE_BIN", "hearth-node");

/**
 * @typedef {object} HearthNode
 * @property {string} baseUrl     e.g. http://127.0.0.1:41234 (changes on restart: port 0 each time)
 * @property {string} serverName  64 lowercase hex chars
 * @property {string} dataDir
 * @property {() => Promise<void>} restart  SIGTERM, expect exit 0, start again on the same data
 * @property {() => Promise<void>} stop     SIGTERM, expect exit 0, remove the temp data dir
 * @property {() => Promise<void>} halt     SIGTERM, expect exit 0, keep the data (see `resume`)
 * @property {() => Promise<void>} resume   start again on the same data after `halt`
 * @property {() => number} reservations    how many `relay reserved:` lines it has printed
 * @property {() => string} log             everything the process printed (last lines)
 * @property {() => number} pid             the running process's ID
 */

/**
 * Starts hearth-node. Fails fast if the binary is missing.
 * @param {{dataDir?: string, openRegistration?: boolean, registrationToken?: string,
 *          maxUploadBytes?: number, relays?: string[], waitForRelay?: boolean,
 *          startupTimeoutMs?: number, stopTimeoutMs?: number}} [opts]
 *   Without `dataDir` a fresh temp dir is made and removed by `stop()`. The two bounds default
 *   to 30 s and 10 s; the harness's own tests shorten them. `relays` are passed as `--relay`;
 *   with `waitForRelay` every start (and restart) also waits, within the startup bound, for the
 *   node's first `relay reserved:` line.
 * @returns {Promise<HearthNode>}
 */
export async function startNode(opts = {}) {
  const { openRegistration = true, registrationToken, maxUploadBytes } = opts;
  const bounds = {
    startupMs: opts.startupTimeoutMs ?? STARTUP_TIMEOUT_MS,
    stopMs: opts.stopTimeoutMs ?? STOP_TIMEOUT_MS,
  };
  const bin = nodeBinaryPath();
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(
      `hearth-node binary not found at ${bin}; build it with cargo build -p hearth-node ` +
        `(or point HEARTH_NODE_BIN at it)`,
    );
  }

  const ownsDir = !opts.dataDir;
  const dataDir = opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), "hearth-test-")));
  if (ownsDir) ownedDirs.add(dataDir);

  const args = ["--data", dataDir, "--listen", "127.0.0.1:0"];
  if (registrationToken !== undefined) args.push("--registration-token", registrationToken);
  else if (openRegistration) args.push("--open-registration");
  if (maxUploadBytes !== undefined) args.push("--max-upload-bytes", String(maxUploadBytes));
  for (const relay of opts.relays ?? []) args.push("--relay", relay);
  bounds.waitForRelay = Boolean(opts.waitForRelay);
  const counters = { reservations: 0 };

  /** Output of every run of this node, in order, so a failure shows the restarts too. */
  const logLines = [];
  const log = () => logLines.join("\n");
  let proc;
  try {
    proc = await spawnReady(bin, args, logLines, bounds, counters);
  } catch (err) {
    if (ownsDir) await removeOwnedDir(dataDir);
    throw err;
  }

  /** @type {HearthNode} */
  const node = {
    baseUrl: proc.baseUrl,
    serverName: proc.serverName,
    dataDir,
    log,
    /** The running process's ID (benchmarks read its peak memory from /proc). */
    pid: () => proc.child.pid,
    reservations: () => counters.reservations,
    async restart() {
      await node.halt();
      await node.resume();
    },
    async halt() {
      if (!proc) throw new Error("hearth-node is not running");
      const running = proc;
      proc = null;
      await terminate(running, { name: "hearth-node", stopMs: bounds.stopMs, log });
    },
    async resume() {
      if (proc) throw new Error("hearth-node is already running");
      proc = await spawnReady(bin, args, logLines, bounds, counters);
      // The identity lives in the data directory: a restart must not change the server's name.
      if (proc.serverName !== node.serverName) {
        throw new Error(
          `server name changed across restart: ${node.serverName} -> ${proc.serverName}`,
        );
      }
      node.baseUrl = proc.baseUrl;
    },
    async stop() {
      try {
        if (proc) await terminate(proc, { name: "hearth-node", stopMs: bounds.stopMs, log });
        proc = null;
      } finally {
        if (ownsDir) await removeOwnedDir(dataDir);
      }
    },
  };
  return node;
}

async function removeOwnedDir(dir) {
  await rm(dir, { recursive: true, force: true });
  ownedDirs.delete(dir);
}

/**
 * Spawns the binary and resolves once it has printed its server name and `listening on` line.
 * @returns {Promise<{child: import("node:child_process").ChildProcess, exited: Promise<{code: number|null, signal: string|null}>, baseUrl: string, serverName: string}>}
 */
async function spawnReady(bin, args, logLines, { startupMs, waitForRelay }, counters) {
  const keep = (stream, line) => {
    logLines.push(`[hearth-node ${stream}] ${line}`);
    if (logLines.length > LOG_LINES_KEPT) logLines.shift();
    if (VERBOSE) process.stderr.write(`[hearth-node ${stream}] ${line}\n`);
  };
  logLines.push(`[harness] ${bin} ${args.join(" ")}`);

  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  liveChildren.add(child);
  const exited = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      liveChildren.delete(child);
      // In the log too: a crash mid-test otherwise shows up only as refused connections.
      logLines.push(`[harness] hearth-node exited: code ${code}, signal ${signal}`);
      resolve({ code, signal });
    });
    // A spawn failure emits "error" and possibly no "exit": settle anyway, never hang on it.
    child.once("error", (error) => {
      liveChildren.delete(child);
      resolve({ code: null, signal: null, error });
    });
  });
  // Both pipes are always drained: a child blocked on a full pipe would look like a hang.
  createInterface({ input: child.stderr }).on("line", (line) => keep("stderr", line));

  let serverName;
  let reserved;
  const relayReserved = new Promise((resolve, reject) => {
    reserved = resolve;
    exited.then(({ code, signal }) =>
      reject(
        new Error(`hearth-node exited (code ${code}, signal ${signal}) before "relay reserved:"`),
      ),
    );
  });
  relayReserved.catch(() => {}); // awaited only with waitForRelay
  const ready = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      keep("stdout", line);
      if (RELAY_RESERVED_LINE.test(line.trim())) {
        counters.reservations += 1;
        reserved();
      }
      const name = SERVER_NAME_LINE.exec(line.trim());
      if (name) serverName = name[1];
      const listening = LISTENING_LINE.exec(line.trim());
      if (!listening) return;
      if (!serverName) reject(new Error("hearth-node printed `listening on` before `server name:`"));
      else resolve(listening[1]);
    });
    exited.then(({ code, signal, error }) =>
      reject(
        error
          ? new Error(`could not run hearth-node: ${error.message}`)
          : new Error(`hearth-node exited (code ${code}, signal ${signal}) before listening`),
      ),
    );
  });

  let timer;
  const awaited = waitForRelay ? `"listening on" and "relay reserved:"` : `"listening on"`;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`hearth-node did not print ${awaited} within ${startupMs} ms`)),
      startupMs,
    );
  });
  try {
    const baseUrl = await Promise.race([ready, timeout]);
    if (waitForRelay) await Promise.race([relayReserved, timeout]);
    return { child, exited, baseUrl, serverName };
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    err.message += `\n--- hearth-node output ---\n${logLines.join("\n")}`;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM, then expect a clean exit (code 0) within the bound; SIGKILL and fail otherwise. */
