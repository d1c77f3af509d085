// The browser benchmark (run by `cargo xtask bench` after it built the app): the homeserver in a
// Chromium tab, measured through the path a user's client takes, in a bare Chromium (see
// lib/cdp.mjs for why not Playwright). Prints one line, `HEARTH_BENCH {json}`.
//
// - wasm_gzip_bytes: the homeserver module as served, gzipped (level 9).
// - ready_ms: page load (navigation start) → first /versions answered, warm cache (the service
//   worker installed and the app shell cached); median of several reloads.
// - sw_roundtrip_p50_ms / _p95_ms: fetch → service worker → serving tab → wasm → back, for
//   GET /versions, one at a time.
// - idb_events_per_s: messages sent by a client in the page through the service worker and
//   durably stored in IndexedDB (each PUT answered only once its transaction completed, with
//   strict durability), 16 in flight, 10,000 in all; idb_events_per_s_one_at_a_time: one in
//   flight, as a single matrix-js-sdk room queue sends.
// - wasm_memory_mb_after_10k_events: the module's memory once those 10,000 messages are stored
//   (wasm memory never shrinks, so this is also the peak).
// - handover_ms: the serving tab closes → the other tab answers /versions through the worker.

import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { serveApp } from "../lib/browser.mjs";
import { launchBareChromium } from "../lib/cdp.mjs";
import { waitUntil } from "../lib/wait.mjs";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const RELOADS = 7;
const ROUNDTRIPS = 500;
const EVENTS = 10_000;
const IN_FLIGHT = 16;
const ONE_AT_A_TIME = 300;

function wasmGzipBytes() {
  const assets = path.join(REPO_ROOT, "web/dist/assets");
  const module = readdirSync(assets).find((file) => /^hearth_web_bg-.*\.wasm$/.test(file));
  if (!module) throw new Error(`no homeserver wasm in ${assets}: build the app first`);
  return gzipSync(readFileSync(path.join(assets, module)), { level: 9 }).length;
}

const round = (value, digits = 1) => Number(value.toFixed(digits));

/** Waits until the page in `tab` has loaded the app and its homeserver path answers. */
async function untilReady(tab) {
  await waitUntil(
    "the app to load",
    () => tab.evaluate("typeof window.hearth === 'object'").catch(() => false),
    { timeoutMs: 30_000 },
  );
  await tab.evaluate("window.hearth.ready");
}

/** Sends `count` messages with `inFlight` at a time from the page; resolves to seconds taken. */
function sendMessages(tab, prefix, count, inFlight) {
  return tab.evaluate(`(async () => {
    const client = window.hearth.client();
    const token = client.getAccessToken();
    const room = encodeURIComponent(window.benchRoom);
    let next = 0;
    const start = performance.now();
    const worker = async () => {
      while (next < ${count}) {
        const n = next++;
        const response = await fetch("/_matrix/client/v3/rooms/" + room + "/send/m.room.message/${prefix}" + n, {
          method: "PUT",
          headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
          body: JSON.stringify({ msgtype: "m.text", body: "bench message " + n }),
        });
        await response.arrayBuffer();
        if (!response.ok) throw new Error("send " + n + ": " + response.status);
      }
    };
    await Promise.all(Array.from({ length: ${inFlight} }, worker));
    return (performance.now() - start) / 1000;
  })()`);
}

async function main() {
  const report = { wasm_gzip_bytes: wasmGzipBytes() };
  const app = await serveApp();
  const chromium = await launchBareChromium();
  try {
    const { id: firstId, tab } = await chromium.firstTab();
    await tab.send("Page.navigate", { url: app.url });
    await untilReady(tab);
    const transport = await tab.evaluate("window.hearth.transport()");
    if (transport !== "service-worker") throw new Error(`expected the service worker path, got ${transport}`);
    await tab.evaluate(`window.hearth.register("bench", "bench password 1234").then(() => window.hearth.clientReady)`);

    const readyTimes = [];
    for (let i = 0; i < RELOADS; i++) {
      await tab.send("Page.reload");
      await untilReady(tab);
      readyTimes.push(await tab.evaluate("window.hearth.readyAt()"));
    }
    readyTimes.sort((a, b) => a - b);
    report.ready_ms = round(readyTimes[Math.floor(RELOADS / 2)]);
    await tab.evaluate("window.hearth.clientReady");

    const roundtrips = await tab.evaluate(`(async () => {
      const times = [];
      for (let i = 0; i < ${ROUNDTRIPS}; i++) {
        const start = performance.now();
        const response = await fetch("/_matrix/client/versions");
        await response.arrayBuffer();
        times.push(performance.now() - start);
      }
      return times.sort((a, b) => a - b);
    })()`);
    report.sw_roundtrip_p50_ms = round(roundtrips[Math.ceil(ROUNDTRIPS * 0.5) - 1], 2);
    report.sw_roundtrip_p95_ms = round(roundtrips[Math.ceil(ROUNDTRIPS * 0.95) - 1], 2);

    // The page's own client stops first: its sync loop would compete with the measured sends.
    await tab.evaluate(`(async () => {
      const client = window.hearth.client();
      window.benchRoom = (await client.createRoom({ name: "bench" })).room_id;
      client.stopClient();
    })()`);
    const oneAtATime = await sendMessages(tab, "single-", ONE_AT_A_TIME, 1);
    report.idb_events_per_s_one_at_a_time = Math.round(ONE_AT_A_TIME / oneAtATime);
    const seconds = await sendMessages(tab, "bulk-", EVENTS - ONE_AT_A_TIME, IN_FLIGHT);
    report.idb_events_per_s = Math.round((EVENTS - ONE_AT_A_TIME) / seconds);
    const memory = await tab.evaluate("window.hearth.wasmMemoryBytes()");
    report.wasm_memory_mb_after_10k_events = round(memory / 2 ** 20);

    const { tab: second } = await chromium.newTab(app.url);
    await untilReady(second);
    const closed = performance.now();
    await chromium.closeTab(firstId);
    await waitUntil(
      "the second tab to answer",
      () => second.evaluate(`fetch("/_matrix/client/versions").then((r) => r.status === 200)`),
      { timeoutMs: 10_000, intervalMs: 5 },
    );
    report.handover_ms = Math.round(performance.now() - closed);
  } finally {
    await chromium.close();
    app.stop();
  }
  console.log(`HEARTH_BENCH ${JSON.stringify(report)}`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
