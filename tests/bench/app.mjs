// The chat app's benchmark (run by `cargo xtask bench` after it built the app), in a bare
// Chromium (see lib/cdp.mjs). Prints one line, `HEARTH_BENCH {json}`.
//
// - js_gzip_bytes: every JavaScript file of the built app (the page, its lazily loaded chunks —
//   matrix-js-sdk's crypto glue among them — and the service worker), each gzipped at level 9;
//   the two wasm modules are not counted.
// - first_load_ms: a signed-in user opens the app on a room with the HTTP cache and the service
//   worker's caches emptied (a cold load of every asset; the account and its keys stay in
//   IndexedDB): navigation start → the room's composer shown. Median of several loads.
// - timeline_render_ms: with a room of 1,000 messages loaded in the client (received, then
//   scrolled back), switching to it from another room → its timeline rendered and the next
//   frame painted. Median of several. The timeline renders the latest 40 and more as the
//   reader scrolls up, so this is bounded by the window, not the room's length.

import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { serveApp } from "../lib/browser.mjs";
import { launchBareChromium } from "../lib/cdp.mjs";
import { waitUntil } from "../lib/wait.mjs";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const COLD_LOADS = 5;
const SWITCHES = 7;
const MESSAGES = 1_000;
const IN_FLIGHT = 16;

function jsGzipBytes() {
  const dist = path.join(REPO_ROOT, "web/dist");
  const files = [
    ...readdirSync(path.join(dist, "assets")).filter((file) => file.endsWith(".js")).map((file) => path.join(dist, "assets", file)),
    path.join(dist, "sw.js"),
  ];
  if (files.length < 2) throw new Error(`no JavaScript in ${dist}: build the app first`);
  return files.reduce((sum, file) => sum + gzipSync(readFileSync(file), { level: 9 }).length, 0);
}

const round = (value, digits = 1) => Number(value.toFixed(digits));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function untilReady(tab) {
  await waitUntil("the app to load", () => tab.evaluate("typeof window.hearth === 'object'").catch(() => false), {
    timeoutMs: 30_000,
  });
  await tab.evaluate("window.hearth.ready");
}

async function main() {
  const report = { js_gzip_bytes: jsGzipBytes() };
  const app = await serveApp();
  const chromium = await launchBareChromium();
  try {
    const { tab } = await chromium.firstTab();
    await tab.send("Page.navigate", { url: app.url });
    await untilReady(tab);
    await tab.evaluate(`window.hearth.register("bench", "bench password 1234").then(() => window.hearth.clientReady)`);
    const rooms = await tab.evaluate(`(async () => {
      const client = window.hearth.client();
      const small = (await client.createRoom({ name: "small" })).room_id;
      const big = (await client.createRoom({ name: "big" })).room_id;
      return { small, big };
    })()`);

    // Cold loads of the small room.
    await tab.send("Network.enable");
    const loads = [];
    for (let i = 0; i < COLD_LOADS; i++) {
      await tab.send("Network.clearBrowserCache");
      await tab.evaluate(`caches.keys().then((keys) => Promise.all(keys.map((key) => caches.delete(key))))`);
      // Marks the page being left, so that its own composer mark is not read as the new one's.
      await tab.evaluate(`window.benchStale = true; location.hash = "#/room/" + encodeURIComponent(${JSON.stringify(rooms.small)})`);
      await tab.send("Page.reload");
      const fresh = "window.benchStale ? null : window.hearth?.composerReadyAt?.() ?? null";
      await waitUntil("the composer to show", () => tab.evaluate(fresh).catch(() => null), {
        timeoutMs: 60_000,
        intervalMs: 20,
      });
      loads.push(await tab.evaluate("window.hearth.composerReadyAt()"));
    }
    report.first_load_ms = Math.round(median(loads));

    // 1,000 messages into the big room, received by the running client through /sync.
    await tab.evaluate(`(async () => {
      const client = window.hearth.client();
      const token = client.getAccessToken();
      const room = encodeURIComponent(${JSON.stringify(rooms.big)});
      let next = 0;
      const worker = async () => {
        while (next < ${MESSAGES}) {
          const n = next++;
          const response = await window.hearth.fetch(new URL("/_matrix/client/v3/rooms/" + room + "/send/m.room.message/render-" + n, location.origin), {
            method: "PUT",
            headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
            body: JSON.stringify({ msgtype: "m.text", body: "message " + n + " with a little **Markdown** and some more words to wrap" }),
          });
          await response.arrayBuffer();
          if (!response.ok) throw new Error("send " + n + ": " + response.status);
        }
      };
      await Promise.all(Array.from({ length: ${IN_FLIGHT} }, worker));
    })()`);
    // A busy room's sync is limited (only the latest events): scroll back for the rest, as a
    // reader would.
    const loaded = await tab.evaluate(`(async () => {
      const client = window.hearth.client();
      const chain = (room) => {
        const timelines = [];
        for (let t = room.getLiveTimeline(); t; t = t.getNeighbouringTimeline("b")) timelines.unshift(t);
        return timelines;
      };
      const count = () => {
        const room = client.getRoom(${JSON.stringify(rooms.big)});
        return room ? chain(room).flatMap((t) => t.getEvents()).filter((e) => e.getType() === "m.room.message").length : 0;
      };
      const deadline = Date.now() + 60000;
      while (count() < ${MESSAGES} && Date.now() < deadline) {
        const room = client.getRoom(${JSON.stringify(rooms.big)});
        const oldest = room && chain(room)[0];
        if (oldest && oldest.getPaginationToken("b") !== null) await client.paginateEventTimeline(oldest, { backwards: true, limit: 250 });
        else await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return count();
    })()`);
    if (loaded < MESSAGES) {
      const detail = await tab.evaluate(`(async () => {
        const client = window.hearth.client();
        const room = client.getRoom(${JSON.stringify(rooms.big)});
        const tl = room.getLiveTimeline();
        return JSON.stringify({ token: tl.getPaginationToken("b"), events: tl.getEvents().length, first: tl.getEvents()[0]?.getType(), old: room.oldState.paginationToken ?? null, timelines: room.getUnfilteredTimelineSet().getTimelines().length });
      })()`);
      throw new Error(`the client holds ${loaded} of the ${MESSAGES} messages: ${detail}`);
    }
    const switches = [];
    for (let i = 0; i < SWITCHES; i++) {
      await tab.evaluate(`window.hearth.openRoomTimed(${JSON.stringify(rooms.small)})`);
      switches.push(await tab.evaluate(`window.hearth.openRoomTimed(${JSON.stringify(rooms.big)})`));
    }
    report.timeline_render_ms = round(median(switches));
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
