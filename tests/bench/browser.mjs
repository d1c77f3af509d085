// The browser benchmark (run by `cargo xtask bench` after it built the app): the homeserver in a
// Chromium tab, measured through the path a user's client takes. Prints one line,
// `HEARTH_BENCH {json}`.
//
// - wasm_gzip_bytes: the homeserver module as served, gzipped (level 9).
// - ready_ms: page load (navigation start) → first /versions answered, warm cache (the service
//   worker installed and the app shell cached); median of several reloads.
// - sw_roundtrip_p50_ms / _p95_ms: fetch → service worker → serving tab → wasm → back, for
//   GET /versions, one at a time.
// - idb_events_per_s: messages sent by a client through the service worker and durably stored in
//   IndexedDB (each PUT answered only after its transaction completed), 8 in flight at a time.
// - wasm_memory_mb_after_10k_events: the module's memory once 10,000 messages are stored (wasm
//   memory never shrinks, so this is also the peak).
// - handover_ms: the serving tab closes → the other tab answers /versions through the worker.

import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { clientReady, matrixRequest, openBrowser, ready, roleOf, serveApp } from "../lib/browser.mjs";
import { waitUntil } from "../lib/wait.mjs";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const RELOADS = 7;
const ROUNDTRIPS = 500;
const EVENTS = 10_000;
const IN_FLIGHT = 8;

function wasmGzipBytes() {
  const assets = path.join(REPO_ROOT, "web/dist/assets");
  const module = readdirSync(assets).find((file) => /^hearth_web_bg-.*\.wasm$/.test(file));
  if (!module) throw new Error(`no homeserver wasm in ${assets}: build the app first`);
  return gzipSync(readFileSync(path.join(assets, module)), { level: 9 }).length;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const percentile = (values, p) => [...values].sort((a, b) => a - b)[Math.ceil((values.length * p) / 100) - 1];
const round = (value, digits = 1) => Number(value.toFixed(digits));

async function main() {
  const report = { wasm_gzip_bytes: wasmGzipBytes() };
  const app = await serveApp();
  const browser = await openBrowser();
  try {
    const page = await browser.openTab(app.url);
    const { transport } = await roleOf(page);
    if (transport !== "service-worker") throw new Error(`expected the service worker path, got ${transport}`);
    await page.evaluate(() => window.hearth.register("bench", "bench password 1234"));
    await clientReady(page);

    const readyTimes = [];
    for (let i = 0; i < RELOADS; i++) {
      await page.reload();
      await ready(page);
      readyTimes.push(await page.evaluate(() => window.hearth.readyAt()));
    }
    report.ready_ms = round(median(readyTimes));
    await clientReady(page);

    const roundtrips = await page.evaluate(async (count) => {
      const times = [];
      for (let i = 0; i < count; i++) {
        const start = performance.now();
        const response = await fetch("/_matrix/client/versions");
        await response.arrayBuffer();
        times.push(performance.now() - start);
      }
      return times;
    }, ROUNDTRIPS);
    report.sw_roundtrip_p50_ms = round(percentile(roundtrips, 50), 2);
    report.sw_roundtrip_p95_ms = round(percentile(roundtrips, 95), 2);

    // Stop the page's own client first: its sync loop would compete with the measured sends.
    const { seconds, failures } = await page.evaluate(
      async ({ events, inFlight }) => {
        const client = window.hearth.client();
        const token = client.getAccessToken();
        const { room_id: roomId } = await client.createRoom({ name: "bench" });
        client.stopClient();
        let next = 0;
        let failures = 0;
        const start = performance.now();
        const worker = async () => {
          while (next < events) {
            const n = next++;
            const response = await fetch(
              `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/bench-${n}`,
              {
                method: "PUT",
                headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
                body: JSON.stringify({ msgtype: "m.text", body: `bench message ${n}` }),
              },
            );
            if (!response.ok) failures++;
            await response.arrayBuffer();
          }
        };
        await Promise.all(Array.from({ length: inFlight }, worker));
        return { seconds: (performance.now() - start) / 1000, failures };
      },
      { events: EVENTS, inFlight: IN_FLIGHT },
    );
    if (failures > 0) throw new Error(`${failures} of ${EVENTS} sends failed`);
    report.idb_events_per_s = Math.round(EVENTS / seconds);
    report.wasm_memory_mb_after_10k_events = round((await page.evaluate(() => window.hearth.wasmMemoryBytes())) / 2 ** 20);

    const second = await browser.openTab(app.url);
    const closed = Date.now();
    await page.close({ runBeforeUnload: false });
    await waitUntil(
      "the second tab to answer",
      async () => (await matrixRequest(second, "GET", "/_matrix/client/versions")).status === 200,
      { timeoutMs: 10_000, intervalMs: 5 },
    );
    report.handover_ms = Date.now() - closed;
  } finally {
    await browser.close();
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
