// A bare Chromium driven over the DevTools protocol with nothing but Runtime.evaluate, for the
// benchmarks. Playwright instruments every network request of the pages it drives (the
// service worker's included), which adds about a millisecond to each round trip; a benchmark
// must measure what a user's browser does, so it talks to Chromium directly.
// Needs the WebSocket client (Node >= 22, or Node 20 with --experimental-websocket).

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { CHROMIUM, CHROMIUM_ARGS } from "./browser.mjs";
import { waitUntil } from "./wait.mjs";

const COMMAND_TIMEOUT_MS = 300_000;

/** One DevTools target (a tab) and its protocol connection. */
class Target {
  #socket;
  #nextId = 1;
  #pending = new Map();

  constructor(socket) {
    this.#socket = socket;
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.error) pending.reject(new Error(`${pending.method}: ${message.error.message}`));
      else pending.resolve(message.result);
    };
  }

  static async connect(url) {
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    return new Target(socket);
  }

  /** Sends a protocol command; bounded in time. */
  send(method, params = {}) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no answer within ${COMMAND_TIMEOUT_MS} ms`));
      }, COMMAND_TIMEOUT_MS);
      this.#pending.set(id, { method, resolve, reject, timer });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Evaluates `expression` in the page, awaiting a promise; returns its JSON value. */
  async evaluate(expression) {
    const { result, exceptionDetails } = await this.send("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    });
    if (exceptionDetails) {
      throw new Error(`in the page: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`);
    }
    return result.value;
  }

  close() {
    this.#socket.close();
  }
}

/** Launches headless Chromium with a fresh profile and remote debugging on a free port. */
export async function launchBareChromium() {
  const profile = mkdtempSync(path.join(os.tmpdir(), "hearth-bench-"));
  const child = spawn(
    CHROMIUM,
    ["--headless", ...CHROMIUM_ARGS, `--user-data-dir=${profile}`, "--remote-debugging-port=0", "about:blank"],
    { stdio: "ignore" },
  );
  const portFile = path.join(profile, "DevToolsActivePort");
  const port = await waitUntil("Chromium's DevTools port", () => {
    try {
      return readFileSync(portFile, "utf8").split("\n")[0] || null;
    } catch {
      return null;
    }
  }, { timeoutMs: 30_000 });
  const endpoint = `http://127.0.0.1:${port}`;
  const pages = async () => (await (await fetch(`${endpoint}/json`)).json()).filter((t) => t.type === "page");
  return {
    /** The tab Chromium opened with: its DevTools target ID and connection. */
    async firstTab() {
      const [page] = await waitUntil("Chromium's first tab", pages);
      return { id: page.id, tab: await Target.connect(page.webSocketDebuggerUrl) };
    },
    /** Opens another tab on `url`. */
    async newTab(url) {
      const response = await fetch(`${endpoint}/json/new?${encodeURIComponent(url)}`, { method: "PUT" });
      const page = await response.json();
      return { id: page.id, tab: await Target.connect(page.webSocketDebuggerUrl) };
    },
    /** Closes the tab with DevTools target `id`, as a user closing it would. */
    async closeTab(id) {
      await fetch(`${endpoint}/json/close/${id}`);
    },
    /** Stops Chromium (bounded wait) and removes its profile. */
    async close() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      // Chromium's helper processes may still be writing to the profile for a moment.
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
}
