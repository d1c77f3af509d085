// Debian's Firefox ESR driven over WebDriver BiDi, the W3C protocol Firefox speaks natively:
// no geckodriver and no patched browser build (playwright-core's `firefox` needs Playwright's
// own Firefox, which is not installable here). Firefox is started headless on a fresh profile
// with `--remote-debugging-port 0`; it prints `WebDriver BiDi listening on ws://127.0.0.1:N`,
// and we open a session on that socket (`ws`: Node 20 has no WebSocket client without a flag).
// Only what the tests need: tabs, navigate, reload, calling a function in the page, and a
// person's input: real pointer and key events (`input.performActions`), so a click lands on what
// is really under the pointer and CSS `:hover` applies, as for a person.

import { spawn } from "node:child_process";
import { accessSync, constants, rmSync, writeFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
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

  /** A raw WebDriver BiDi command for this tab's session (the input helpers below use it). */
  send(method, params, timeoutMs) {
    return this.#bidi.send(method, params, timeoutMs);
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

// ---------------------------------------------------------------------------------------------
// A person's input. Elements are named as with Playwright's `page.locator(css, {hasText})`: a CSS
// selector, optionally only the elements whose text contains `hasText` (a string, matched
// case-insensitively with whitespace collapsed as Playwright does, or a RegExp),
// optionally inside the first (`within.last`: the last) element matching `within` (the same
// kind of description). Only visible elements count. Every helper is bounded in time
// (`timeoutMs`, default 15 s) and says what it waited for when it fails.

/** Default bound of the input helpers' waits. */
export const INPUT_TIMEOUT_MS = 15_000;
const POLL_MS = 100;

/** WebDriver's key values for the keys the tests press (the rest are typed as themselves). */
const KEYS = {
  Enter: "\uE007",
  Tab: "\uE004",
  Escape: "\uE00C",
  Backspace: "\uE003",
  Shift: "\uE008",
  Control: "\uE009",
  ArrowUp: "\uE013",
  ArrowDown: "\uE015",
};

/**
 * @typedef {object} Target
 * @property {string} css
 * @property {string | RegExp} [hasText]
 * @property {boolean} [last]  the last match instead of the first
 * @property {Target} [within]
 */

/** A target as JSON for the page (a RegExp as its source and flags). */
function targetJson(css, opts = {}) {
  const { hasText, last = false, within } = opts;
  return {
    css,
    last,
    text: hasText instanceof RegExp ? { source: hasText.source, flags: hasText.flags } : hasText === undefined ? null : { plain: hasText },
    within: within ? targetJson(within.css, within) : null,
  };
}

const describeTarget = (css, opts = {}) =>
  `${css}${opts.hasText !== undefined ? ` with text ${opts.hasText}` : ""}${opts.within ? ` in ${describeTarget(opts.within.css, opts.within)}` : ""}`;

/** In the page: the visible elements matching a target (from `targetJson`), in order. Runs in
 *  the page (it is sent as source text), so it uses nothing from here. */
function findInPage(target) {
  const visible = (el) => {
    if (!el.isConnected || el.getClientRects().length === 0) return false;
    return el.checkVisibility({ visibilityProperty: true, opacityProperty: false });
  };
  const normalized = (el) => (el.textContent ?? "").replace(/\s+/g, " ").trim();
  const textMatches = (el, text) => {
    if (!text) return true;
    if (text.plain !== undefined) return normalized(el).toLowerCase().includes(text.plain.toLowerCase());
    return new RegExp(text.source, text.flags).test(normalized(el));
  };
  const all = (t) => {
    let roots = [document];
    if (t.within) {
      const scopes = all(t.within);
      if (scopes.length === 0) return [];
      roots = [t.within.last ? scopes[scopes.length - 1] : scopes[0]];
    }
    return roots.flatMap((root) => [...root.querySelectorAll(t.css)]).filter((el) => visible(el) && textMatches(el, t.text));
  };
  return all(target);
}

/** How many visible elements match (no waiting). */
export async function count(tab, css, opts = {}) {
  return tab.evaluate(
    new Function("target", `return (${findInPage})(target).length;`),
    targetJson(css, opts),
  );
}

/**
 * Waits until an element matches (or, with `gone: true`, until none does); returns its text.
 * @param {{hasText?: string | RegExp, within?: Target, last?: boolean, gone?: boolean, timeoutMs?: number}} [opts]
 */
export async function waitFor(tab, css, opts = {}) {
  const { gone = false, timeoutMs = INPUT_TIMEOUT_MS } = opts;
  const target = targetJson(css, opts);
  let seen = "nothing yet";
  const found = await waitUntil(
    `${gone ? "no " : ""}${describeTarget(css, opts)} in Firefox`,
    async () => {
      const found = await tab.evaluate(
        new Function("target", `const els = (${findInPage})(target); const el = target.last ? els[els.length - 1] : els[0]; return els.length === 0 ? { n: 0 } : { n: els.length, text: el.textContent };`),
        target,
      );
      seen = `${found.n} match(es)`;
      return (gone ? found.n === 0 : found.n > 0) && found;
    },
    { timeoutMs, intervalMs: POLL_MS, describe: () => seen },
  );
  return found.text ?? null;
}

/**
 * The element as a WebDriver BiDi shared reference, scrolled into view, once it is visible and
 * what is under its centre (what a pointer there would hit) is the element or inside it: the
 * element is really clickable, not covered or still laid out elsewhere.
 */
async function reachable(tab, css, opts) {
  const { timeoutMs = INPUT_TIMEOUT_MS } = opts;
  const target = targetJson(css, opts);
  let seen = "no match";
  return waitUntil(
    `${describeTarget(css, opts)} to be visible and uncovered in Firefox`,
    async () => {
      const answer = await tab.send("script.callFunction", {
        functionDeclaration: `(json) => {
          const target = JSON.parse(json);
          const els = (${findInPage})(target);
          const el = target.last ? els[els.length - 1] : els[0];
          if (!el) return "no match";
          el.scrollIntoView({ block: "center", inline: "center" });
          const rect = el.getBoundingClientRect();
          const hit = document.elementFromPoint(rect.left + rect.width / 2, rect.top + rect.height / 2);
          if (!hit) return "nothing under its centre";
          if (hit !== el && !el.contains(hit)) return "covered by <" + hit.tagName.toLowerCase() + (hit.className ? " class=" + hit.className : "") + ">";
          return el;
        }`,
        arguments: [{ type: "string", value: JSON.stringify(target) }],
        target: { context: tab.context },
        awaitPromise: false,
        resultOwnership: "none",
      });
      if (answer.type === "exception") throw new Error(answer.exceptionDetails.text);
      const { result } = answer;
      if (result.type === "node") return result.sharedId;
      seen = result.value;
      return null;
    },
    { timeoutMs, intervalMs: POLL_MS, describe: () => seen },
  );
}

/** Real pointer actions: a move to the element's centre, and then `then` (downs and ups). */
async function pointer(tab, sharedId, then = []) {
  await tab.send("input.performActions", {
    context: tab.context,
    actions: [
      {
        type: "pointer",
        id: "mouse",
        parameters: { pointerType: "mouse" },
        actions: [{ type: "pointerMove", x: 0, y: 0, duration: 0, origin: { type: "element", element: { sharedId } } }, ...then],
      },
    ],
  });
}

/** Moves the mouse over the element (CSS `:hover`, `mouseover`/`mouseenter`). */
export async function hover(tab, css, opts = {}) {
  await pointer(tab, await reachable(tab, css, opts));
}

/** Clicks the element's centre with the (real) mouse, once it is visible and uncovered. */
export async function click(tab, css, opts = {}) {
  const sharedId = await reachable(tab, css, opts);
  await pointer(tab, sharedId, [
    { type: "pointerDown", button: 0 },
    { type: "pointerUp", button: 0 },
  ]);
}

/** Key actions for `keys` (WebDriver key values: one character or one of `KEYS` each). */
async function keyActions(tab, keys) {
  await tab.send("input.performActions", {
    context: tab.context,
    actions: [{ type: "key", id: "keyboard", actions: keys.flatMap((value) => [{ type: "keyDown", value }, { type: "keyUp", value }]) }],
  });
}

/** Clicks the field and types `text` into it, key by key (one key per character). */
export async function type(tab, css, text, opts = {}) {
  await click(tab, css, opts);
  // One grapheme per key (an emoji is one key, not two UTF-16 halves).
  await keyActions(tab, [...new Intl.Segmenter().segment(text)].map(({ segment }) => segment));
}

/** Presses a key (`"Enter"`, `"Escape"`, … or one character) where the focus is. */
export async function press(tab, key) {
  const value = KEYS[key] ?? key;
  if ([...value].length !== 1) throw new Error(`press: unknown key ${key}`);
  await keyActions(tab, [value]);
}

/** Sets the tab's viewport (CSS pixels). */
export async function setViewport(tab, width, height) {
  await tab.send("browsingContext.setViewport", { context: tab.context, viewport: { width, height } });
}

/** A PNG of the tab's viewport, written to `file`. */
export async function screenshot(tab, file) {
  const { data } = await tab.send("browsingContext.captureScreenshot", { context: tab.context }, 15_000);
  await writeFile(file, Buffer.from(data, "base64"));
}
