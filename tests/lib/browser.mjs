// Harness for the browser tests: the app as `cargo xtask dev` serves it (the same static server,
// started with `xtask serve --port 0` on the build `cargo xtask test` made), and Debian's
// Chromium driven by playwright-core, one fresh profile per browser.

import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";
import { REPO_ROOT, cargoBinary, liveChildren, ownedDirs } from "./process.mjs";
import { waitUntil, withTimeout } from "./wait.mjs";

export const CHROMIUM = "/usr/bin/chromium";
/** The flags Chromium needs on these machines (no sandbox, GPU, QUIC or background traffic). */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const SERVE_TIMEOUT_MS = 15_000;
/** A first start compiles the wasm module and creates the database. */
const READY_TIMEOUT_MS = 30_000;
const READY_LINE = /^Hearth is ready: open (http:\/\/\S+?)\/?$/;

/** The xtask binary (`cargo xtask test` passes its own path), else cargo's debug build. */
const xtaskBinary = () => cargoBinary("HEARTH_XTASK_BIN", "xtask");

/**
 * Serves the built app (web/dist) on a free loopback port; its pages federate through `relays`
 * (WebSocket multiaddrs) by default.
 * @param {{relays?: string[]}} [opts]
 * @returns {Promise<{url: string, stop: () => void}>}
 */
export async function serveApp(opts = {}) {
  const args = ["serve", "--port", "0"];
  for (const relay of opts.relays ?? []) args.push("--relay", relay);
  const child = spawn(xtaskBinary(), args, {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  liveChildren.add(child);
  const output = [];
  child.stderr.on("data", (chunk) => output.push(String(chunk)));
  const url = await withTimeout(
    "xtask serve to listen",
    new Promise((resolve, reject) => {
      createInterface({ input: child.stdout }).on("line", (line) => {
        output.push(line);
        const match = READY_LINE.exec(line.trim());
        if (match) resolve(match[1]);
      });
      child.on("exit", (code) =>
        reject(new Error(`xtask serve exited (${code}) before serving:\n${output.join("\n")}`)),
      );
    }),
    SERVE_TIMEOUT_MS,
  );
  return {
    url,
    stop: () => {
      child.kill("SIGTERM");
      liveChildren.delete(child);
    },
  };
}

/**
 * A Chromium with its own fresh profile (its own IndexedDB, service worker and Web Locks): one
 * person's browser. Pages opened in it are tabs of that browser.
 * @param {{serviceWorkers?: "allow" | "block"}} [opts]
 */
export async function openBrowser(opts = {}) {
  const profile = await mkdtemp(path.join(os.tmpdir(), "hearth-chromium-"));
  ownedDirs.add(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    serviceWorkers: opts.serviceWorkers ?? "allow",
  });
  const logs = [];
  return {
    context,
    logs,
    /** Opens a tab on `url` and waits until its homeserver path answers. */
    async openTab(url) {
      const page = await context.newPage();
      page.on("console", (message) => logs.push(`[${message.type()}] ${message.text()}`));
      page.on("pageerror", (error) => logs.push(`[pageerror] ${error.message}`));
      await page.goto(url);
      await ready(page);
      return page;
    },
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
      ownedDirs.delete(profile);
    },
  };
}

/** Waits (bounded) for `window.hearth.ready` in `page`. */
export async function ready(page) {
  await withTimeout(
    "the page's homeserver to answer /versions",
    page.waitForFunction(() => window.hearth !== undefined).then(() =>
      page.evaluate(() => window.hearth.ready),
    ),
    READY_TIMEOUT_MS,
  );
}

/** Waits (bounded) until the page's Matrix client has synced once. */
export async function clientReady(page) {
  await withTimeout(
    "the page's Matrix client to sync",
    page.evaluate(() => window.hearth.clientReady),
    READY_TIMEOUT_MS,
  );
}

/**
 * In a tab that shows "Hearth is open in another tab", clicks "Use Hearth here" and waits
 * (bounded) until its client has synced: the tab that ran the client stops it.
 */
export async function takeOver(page) {
  await page.getByRole("button", { name: "Use Hearth here" }).click({ timeout: READY_TIMEOUT_MS });
  await clientReady(page);
}

/** Whether `page` shows that Hearth is open in another tab, with no client of its own. */
export function openElsewhere(page) {
  return page.evaluate(() => window.hearth.elsewhere() && window.hearth.client() === null);
}

/** This tab's role ('leader' or 'follower') and transport ('service-worker' or 'direct'). */
export function roleOf(page) {
  return page.evaluate(() => ({ role: window.hearth.role(), transport: window.hearth.transport() }));
}

/** Waits until `page` is the tab that serves. */
export async function untilLeader(page, timeoutMs = 5_000) {
  await waitUntil(
    "the tab to take over serving",
    async () => (await roleOf(page)).role === "leader",
    { timeoutMs },
  );
}

/**
 * A Matrix request made from inside the page through the page's own transport (the service
 * worker, or the direct path), with the page's access token (its client's, or the saved
 * session's in a tab whose client runs elsewhere).
 * @returns {Promise<{status: number, body: any}>}
 */
export function matrixRequest(page, method, pathAndQuery, body) {
  return page.evaluate(
    async ({ method, pathAndQuery, body }) => {
      const saved = JSON.parse(localStorage.getItem("hearth-session") ?? "null");
      const token = window.hearth.client()?.getAccessToken() ?? saved?.accessToken;
      const response = await window.hearth.fetch(new URL(pathAndQuery, location.origin), {
        method,
        headers: {
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
          ...(body ? { "Content-Type": "application/json" } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await response.text();
      let parsed;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
      return { status: response.status, body: parsed };
    },
    { method, pathAndQuery, body },
  );
}

/** `["prefix 1", …, "prefix count"]`: message bodies that show their order. */
export const numbered = (prefix, count) => Array.from({ length: count }, (_, i) => `${prefix} ${i + 1}`);

/** Sends `bodies` one after another from the page's client; resolves once each is stored. */
export function sendAll(page, roomId, bodies) {
  return page.evaluate(
    async ({ roomId, bodies }) => {
      for (const body of bodies) await window.hearth.client().sendTextMessage(roomId, body);
    },
    { roomId, bodies },
  );
}

/** The text bodies of the `m.room.message` events in a /sync or /messages chunk. */
export function messageBodies(events) {
  return events.filter((event) => event.type === "m.room.message").map((event) => event.content.body);
}
