// Harness for the hearth-rendezvous relay: start it on loopback with its own key file, wait
// (bounded) for `ready`, stop it with SIGTERM, and start it again on the same TCP port with the
// same key, so the address the nodes were given stays valid.

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

/** The TCP address, not the WebSocket one: native peers dial TCP. */
const TCP_LISTENING_LINE = /^listening on (\/ip4\/127\.0\.0\.1\/tcp\/(\d+)\/p2p\/\w+)$/;
/** The WebSocket address, which browsers dial. */
const WS_LISTENING_LINE = /^listening on (\/ip4\/127\.0\.0\.1\/tcp\/(\d+)\/ws\/p2p\/\w+)$/;


/** Where the binary is: `HEARTH_RENDEZVOUS_BIN`, else cargo's debug output directory. */
export const relayBinaryPath = () => cargoBinary("HEARTH_RENDEZVOUS_BIN", "hearth-rendezvous");

/**
 * @typedef {object} Relay
 * @property {string} address   the TCP multiaddr with `/p2p/<relay peer id>`, for `--relay`
 * @property {string | null} websocket  the WebSocket multiaddr, for browsers (`{websocket: true}`)
 * @property {() => Promise<void>} stop     SIGTERM, expect exit 0 (the key is kept)
 * @property {() => Promise<void>} start    start again: same port, same key, same address
 * @property {() => Promise<void>} restart  stop, then start
 * @property {() => Promise<void>} dispose  stop if running, remove the key's temp dir
 * @property {() => string} log             everything the relay printed (last lines)
 */

/**
 * Starts hearth-rendezvous listening on TCP on 127.0.0.1 (a free port), with a fresh key; with
 * `websocket`, on WebSocket too (for browsers).
 * @param {{websocket?: boolean}} [opts]
 * @returns {Promise<Relay>}
 */
export async function startRelay(opts = {}) {
  const bin = relayBinaryPath();
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(
      `hearth-rendezvous binary not found at ${bin}; build it with ` +
        `cargo build -p hearth-rendezvous (or point HEARTH_RENDEZVOUS_BIN at it)`,
    );
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), "hearth-relay-"));
  ownedDirs.add(dir);
  const keyFile = path.join(dir, "key");
  const logLines = [];
  const log = () => logLines.join("\n");

  let port = 0;
  let wsPort = 0;
  let proc = null;
  const launch = async () => {
    const args = ["--listen-tcp", `/ip4/127.0.0.1/tcp/${port}`, "--key", keyFile];
    if (opts.websocket) args.push("--listen-ws", `/ip4/127.0.0.1/tcp/${wsPort}/ws`);
    proc = await spawnReady(bin, args, logLines);
    return proc.address;
  };
  const address = await launch();
  const websocket = proc.websocket ?? null;
  port = Number(TCP_LISTENING_LINE.exec(`listening on ${address}`)[2]);
  if (websocket) wsPort = Number(WS_LISTENING_LINE.exec(`listening on ${websocket}`)[2]);

  const stop = async () => {
    if (!proc) return;
    const running = proc;
    proc = null;
    await terminate(running, { name: "hearth-rendezvous", stopMs: STOP_TIMEOUT_MS, log });
  };

  /** @type {Relay} */
  const relay = {
    address,
    websocket,
    log,
    stop,
    async start() {
      if (proc) throw new Error("the relay is already running");
      const again = await launch();
      if (again !== address) throw new Error(`relay address changed: ${address} -> ${again}`);
    },
    async restart() {
      await stop();
      await relay.start();
    },
    async dispose() {
      try {
        await stop();
      } finally {
        await rm(dir, { recursive: true, force: true });
        ownedDirs.delete(dir);
      }
    },
  };
  return relay;
}

/** Spawns the relay and resolves with its TCP address once it has printed `ready`. */
async function spawnReady(bin, args, logLines) {
  const keep = (stream, line) => {
    logLines.push(`[relay ${stream}] ${line}`);
    if (logLines.length > LOG_LINES_KEPT) logLines.shift();
    if (VERBOSE) process.stderr.write(`[relay ${stream}] ${line}\n`);
  };
  logLines.push(`[harness] ${bin} ${args.join(" ")}`);
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  liveChildren.add(child);
  const exited = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      liveChildren.delete(child);
      logLines.push(`[harness] relay exited: code ${code}, signal ${signal}`);
      resolve({ code, signal });
    });
    child.once("error", (error) => {
      liveChildren.delete(child);
      resolve({ code: null, signal: null, error });
    });
  });
  createInterface({ input: child.stderr }).on("line", (line) => keep("stderr", line));

  let address;
  let websocket;
  const ready = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      keep("stdout", line);
      const tcp = TCP_LISTENING_LINE.exec(line.trim());
      if (tcp) address = tcp[1];
      const ws = WS_LISTENING_LINE.exec(line.trim());
      if (ws) websocket = ws[1];
      if (line.trim() !== "ready") return;
      if (!address) reject(new Error("the relay printed `ready` without a TCP address"));
      else resolve(address);
    });
    exited.then(({ code, signal, error }) =>
      reject(
        error
          ? new Error(`could not run hearth-rendezvous: ${error.message}`)
          : new Error(`hearth-rendezvous exited (code ${code}, signal ${signal}) before ready`),
      ),
    );
  });
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`hearth-rendezvous not ready within ${STARTUP_TIMEOUT_MS} ms`)),
      STARTUP_TIMEOUT_MS,
    );
  });
  try {
    const address = await Promise.race([ready, timeout]);
    return { child, exited, address, websocket };
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    err.message += `\n--- relay output ---\n${logLines.join("\n")}`;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

