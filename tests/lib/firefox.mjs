// Debian's Firefox ESR driven over WebDriver BiDi, the W3C protocol Firefox speaks natively:
// no geckodriver and no patched browser build (playwright-core's `firefox` needs Playwright's
// own Firefox, which is not installable here). Firefox is started headless on a fresh profile
// with `--remote-debugging-port 0`; it prints `WebDriver BiDi listening on ws://127.0.0.1:N`,
// and we open a session on that socket (`ws`: Node 20 has no WebSocket client without a flag).
// Only what the tests need: tabs, navigate, reload, and calling a function in the page.

import { spawn } from "node:child_process";
import { accessSync, constants, rmSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import WebSocket from "ws";
import { LOG_LINES_KEPT, VERBOSE, liveChildren, ownedDirs } from "./process.mjs";
import { waitUntil, withTimeout } from "./wait.mjs";

/** `HEARTH_FIREFOX`, else Debian's `firefox-esr` package. */
export const FIREFOX = process.env.HEARTH_FIREFOX ?? "/usr/bin/firefox-esr";
const LAUNCH_TIMEOUT_MS = 30_000;
const COMMAND_TIMEOUT_MS = 60_000;
const CLOSE_TIMEOUT_MS = 10_000;
/** A first start compiles the wasm module and creates the database. */
const READY_TIMEOUT_MS = 30_000;
const LISTENING_LINE = /WebDriver BiDi listening on (ws:\/\/127\.0\.0\.1:\d+)/;

/**
 * Preferences for a test profile, on top of the ones Firefox's remote agent applies itself
 * (`remote.prefs.recommended`): no first-run pages, updates, telemetry or background requests,
 * so the browser talks to nothing but loopback.
 */
const PREFS = {
  "browser.shell.checkDefaultBrowser": false,
  "browser.startup.page": 0,
  "browser.startup.homepage_override.mstone": "ignore",
  "browser.aboutwelcome.enabled": false,
  "browser.newtabpage.enabled": false,
  "browser.newtabpage.activity-stream.feeds.system.topstories": false,
  "browser.newtabpage.activity-stream.feeds.snippets": false,
  "browser.tabs.warnOnClose": false,
  "browser.sessionstore.resume_from_crash": false,
  "app.update.disabledForTesting": true,
  "app.normandy.enabled": false,
  "browser.safebrowsing.malware.enabled": false,
  "browser.safebrowsing.phishing.enabled": false,
  "browser.safebrowsing.downloads.enabled": false,
  "browser.safebrowsing.blockedURIs.enabled": false,
  "browser.search.update": false,
  "browser.region.update.enabled": false,
  "browser.region.network.url": "",
  "datareporting.policy.dataSubmissionEnabled": false,
  "datareporting.healthreport.uploadEnabled": false,
  "toolkit.telemetry.enabled": false,
  "toolkit.telemetry.reportingpolicy.firstRun": false,
  "extensions.update.enabled": false,
  "extensions.getAddons.cache.enabled": false,
  "extensions.blocklist.enabled": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "network.dns.disablePrefetch": true,
  "network.prefetch-next": false,
  "network.http.speculative-parallel-limit": 0,
  "services.settings.server": "http://127.0.0.1:9/",
  "media.gmp-manager.updateEnabled": false,
  "dom.disable_open_during_load": false,
};

/** Throws a message that says what to install when the browser is missing. */
export function requireFirefox() {
  try {
    accessSync(FIREFOX, constants.X_OK);
  } catch {
    throw new Error(
      `Firefox not found at ${FIREFOX}: install Debian's firefox-esr package ` +
        "(apt-get install firefox-esr; cargo xtask test does it) or set HEARTH_FIREFOX",
    );
  }
}

/** One WebDriver BiDi session: commands with bounded answers, and events to listeners. */
class BiDi {
  #socket;
  #nextId = 1;
  #pending = new Map();
  #listeners = new Map();
  #closed = null;

  constructor(socket) {
    this.#socket = socket;
    socket.on("message", (data) => {
      const message = JSON.parse(String(data));
      if (message.type === "event") {
        for (const listener of this.#listeners.get(message.method) ?? []) listener(message.params);
        return;
      }
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.type === "error") {
        pending.reject(new Error(`${pending.method}: ${message.error}: ${message.message}`));
      } else pending.resolve(message.result);
    });
    socket.on("close", () => {
      this.#closed = new Error("the WebDriver BiDi connection closed");
      for (const pending of this.#pending.values()) {
        clearTimeout(pending.timer);
        pending.reject(new Error(`${pending.method}: ${this.#closed.message}`));
      }
      this.#pending.clear();
    });
  }

  static async connect(url) {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    await withTimeout(
      `a WebDriver BiDi connection to ${url}`,
      new Promise((resolve, reject) => {
        socket.once("open", resolve);
        socket.once("error", reject);
      }),
      LAUNCH_TIMEOUT_MS,
    );
    return new BiDi(socket);
  }

  /** Sends a command; rejects on an error answer or none within `timeoutMs`. */
  send(method, params = {}, timeoutMs = COMMAND_TIMEOUT_MS) {
    if (this.#closed) return Promise.reject(new Error(`${method}: ${this.#closed.message}`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { method, resolve, reject, timer });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  on(method, listener) {
    if (!this.#listeners.has(method)) this.#listeners.set(method, []);
    this.#listeners.get(method).push(listener);
  }

  close() {
    this.#socket.terminate();
  }
}

/** A tab (a top-level browsing context) of a Firefox. */
class Tab {
  #bidi;
  constructor(bidi, context) {
    this.#bidi = bidi;
    this.context = context;
  }

  /** Navigates and waits for the load event. */
  async goto(url) {
    await this.#bidi.send("browsingContext.navigate", { context: this.context, url, wait: "complete" });
  }

  /** Reloads (a normal reload: the service worker keeps controlling) and waits for load. */
  async reload() {
    await this.#bidi.send("browsingContext.reload", { context: this.context, wait: "complete" });
  }

  /**
   * Calls `fn(arg)` in the page (awaiting a promise) and returns its result, which must be
   * JSON-serialisable (as with Playwright's `page.evaluate`); `undefined` comes back as null.
   * An exception in the page rejects with its message.
   * @template T
   * @param {(arg: any) => T | Promise<T>} fn
   * @param {any} [arg]
   * @param {number} [timeoutMs]
   */
  async evaluate(fn, arg, timeoutMs = COMMAND_TIMEOUT_MS) {
    const functionDeclaration = `async (json) => {
      const value = await (${fn})(json === undefined ? undefined : JSON.parse(json));
      return value === undefined ? "null" : JSON.stringify(value);
    }`;
    const answer = await this.#bidi.send(
      "script.callFunction",
      {
        functionDeclaration,
        arguments: arg === undefined ? [] : [{ type: "string", value: JSON.stringify(arg) }],
        target: { context: this.context },
        awaitPromise: true,
        resultOwnership: "none",
      },
      timeoutMs,
    );
    if (answer.type === "exception") {
      const details = answer.exceptionDetails;
      throw new Error(`in the page: ${details.text}${stackOf(details.stackTrace)}`);
    }
    return JSON.parse(answer.result.value);
  }

  async close() {
    await this.#bidi.send("browsingContext.close", { context: this.context });
  }
}

const stackOf = (stackTrace) =>
  (stackTrace?.callFrames ?? [])
    .slice(0, 5)
    .map((frame) => `\n    at ${frame.functionName || "<anonymous>"} (${frame.url}:${frame.lineNumber + 1})`)
    .join("");

/**
 * A headless Firefox with its own fresh profile (its own IndexedDB, service workers and Web
 * Locks): one person's browser. `serviceWorkers: "block"` turns them off in the profile
 * (`dom.serviceWorkers.enabled`), so the page has no `navigator.serviceWorker`.
 * @param {{serviceWorkers?: "allow" | "block"}} [opts]
 */
export async function openFirefox(opts = {}) {
  requireFirefox();
  const profile = await mkdtemp(path.join(os.tmpdir(), "hearth-firefox-"));
  ownedDirs.add(profile);
  const prefs = { ...PREFS, "dom.serviceWorkers.enabled": opts.serviceWorkers !== "block" };
  writeFileSync(
    path.join(profile, "user.js"),
    Object.entries(prefs)
      .map(([name, value]) => `user_pref(${JSON.stringify(name)}, ${JSON.stringify(value)});\n`)
      .join(""),
  );
  const child = spawn(
    FIREFOX,
    ["--headless", "--no-remote", "--profile", profile, "--remote-debugging-port", "0", "about:blank"],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, MOZ_HEADLESS: "1", MOZ_CRASHREPORTER_DISABLE: "1" },
    },
  );
  liveChildren.add(child);
  /** Firefox's own output, then the pages' console (`log.entryAdded`), in order. */
  const logs = [];
  const keep = (line) => {
    logs.push(line);
    if (logs.length > LOG_LINES_KEPT) logs.shift();
    if (VERBOSE) console.log(`[firefox] ${line}`);
  };
  child.stdout.on("data", (chunk) => String(chunk).trimEnd().split("\n").forEach(keep));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));

  let bidi;
  const close = async () => {
    if (bidi) {
      await bidi.send("browser.close", {}, CLOSE_TIMEOUT_MS).catch(() => {});
      bidi.close();
    }
    const timedOut = new Promise((resolve) => setTimeout(() => resolve("timeout"), CLOSE_TIMEOUT_MS));
    if ((await Promise.race([exited, timedOut])) === "timeout") {
      child.kill("SIGKILL");
      await exited;
    }
    liveChildren.delete(child);
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    ownedDirs.delete(profile);
  };

  try {
    const endpoint = await withTimeout(
      "Firefox to listen for WebDriver BiDi",
      new Promise((resolve, reject) => {
        createInterface({ input: child.stderr }).on("line", (line) => {
          keep(line);
          const match = LISTENING_LINE.exec(line);
          if (match) resolve(match[1]);
        });
        child.once("error", reject);
        exited.then(({ code, signal }) =>
          reject(new Error(`Firefox exited (code ${code}, signal ${signal}) before listening:\n${logs.join("\n")}`)),
        );
      }),
      LAUNCH_TIMEOUT_MS,
    );
    bidi = await BiDi.connect(`${endpoint}/session`);
    await bidi.send("session.new", { capabilities: { alwaysMatch: { unhandledPromptBehavior: { default: "ignore" } } } });
    bidi.on("log.entryAdded", (entry) => keep(`[${entry.type}:${entry.level}] ${entry.text}`));
    await bidi.send("session.subscribe", { events: ["log.entryAdded"] });
  } catch (err) {
    await close();
    throw err;
  }

  const { contexts } = await bidi.send("browsingContext.getTree", { maxDepth: 0 });
  let first = new Tab(bidi, contexts[0].context);
  return {
    logs,
    /** Opens a tab (the first one Firefox started with, then new ones) on `url` and waits
     *  until its homeserver path answers. */
    async openTab(url) {
      let tab = first;
      first = null;
      if (!tab) {
        const { context } = await bidi.send("browsingContext.create", { type: "tab" });
        tab = new Tab(bidi, context);
      }
      await tab.goto(url);
      await ready(tab);
      return tab;
    },
    /** Quits Firefox (bounded; SIGKILL after 10 s) and removes its profile. */
    close,
  };
}

/** Waits (bounded) for `window.hearth.ready` in `tab`. */
export async function ready(tab) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let seen = "nothing";
  await waitUntil(
    "window.hearth in the page",
    async () => {
      const state = await tab.evaluate(() => ({
        hearth: window.hearth !== undefined,
        url: location.href,
        readyState: document.readyState,
        text: document.body?.innerText.slice(0, 200) ?? null,
      }));
      seen = JSON.stringify(state);
      return state.hearth;
    },
    { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100, describe: () => seen },
  );
  await tab.evaluate(
    async () => {
      await window.hearth.ready;
    },
    undefined,
    Math.max(deadline - Date.now(), 1_000),
  );
}

/** Waits (bounded) until the page's Matrix client has synced once. */
export async function clientReady(tab) {
  await tab.evaluate(
    async () => {
      await window.hearth.clientReady;
    },
    undefined,
    READY_TIMEOUT_MS,
  );
}

/** This tab's role ('leader' or 'follower') and transport ('service-worker' or 'direct'). */
export function roleOf(tab) {
  return tab.evaluate(() => ({ role: window.hearth.role(), transport: window.hearth.transport() }));
}
