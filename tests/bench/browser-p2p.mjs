// The browser federation benchmark (run by `cargo xtask bench` after it built the app and the
// relay): two homeservers in two bare Chromium browsers (separate profiles, so separate
// IndexedDB, service worker and libp2p node), federating through a real hearth-rendezvous on
// loopback over its WebSocket listener. Prints one line, `HEARTH_BENCH {json}`.
//
// - browser_p2p_delivery_p50_ms / _p95_ms: alice (browser A) creates a room and invites bob
//   (browser B), who joins; alice's page sends 200 messages one at a time (PUT through the page's
//   transport; the next once bob has the last, after a short pause); bob's matrix-js-sdk client,
//   syncing as a user's would, timestamps each one's `Room.timeline` event. Per message: send start in A → timeline
//   event in B, both read as `performance.timeOrigin + performance.now()` (wall clock with
//   sub-millisecond resolution; both browsers run on this machine, so the clocks agree).
//
// With HEARTH_BENCH_STAGES=1 it also prints (to stderr) where the time goes: A's PUT, send start
// → the event's origin_server_ts (A built it), origin_server_ts → B's own raw /sync long-poll
// (federation: A's queue, the relay circuit, B's receiving pipeline and its /sync), and that raw
// /sync → the SDK's timeline event. The raw long-poll competes with the SDK's, so it is off for
// the figures.

import { spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { serveApp } from "../lib/browser.mjs";
import { launchBareChromium } from "../lib/cdp.mjs";
import { waitUntil, withTimeout } from "../lib/wait.mjs";

const STAGES = process.env.HEARTH_BENCH_STAGES === "1";
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const MESSAGES = 200;
/** The pause after each delivery before the next send. */
const GAP_MS = 20;
const RELAY_START_MS = 30_000;
/** Reservation, discovery, invite and join through the relay. */
const FEDERATION_WAIT_MS = 60_000;

const round = (value, digits = 2) => Number(value.toFixed(digits));

/** The release relay (`HEARTH_RENDEZVOUS_BIN`, else cargo's release output). */
function relayBinary() {
  if (process.env.HEARTH_RENDEZVOUS_BIN) return path.resolve(process.env.HEARTH_RENDEZVOUS_BIN);
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(REPO_ROOT, "target");
  return path.join(target, "release", "hearth-rendezvous");
}

/** Starts the relay with a fresh key, WebSocket only on a free loopback port. */
async function startRelay() {
  const bin = relayBinary();
  accessSync(bin, constants.X_OK);
  const dir = mkdtempSync(path.join(os.tmpdir(), "hearth-bench-relay-"));
  const child = spawn(bin, ["--listen-ws", "/ip4/127.0.0.1/tcp/0/ws", "--key", path.join(dir, "key")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let websocket;
  await withTimeout(
    "the relay to listen",
    new Promise((resolve, reject) => {
      createInterface({ input: child.stdout }).on("line", (line) => {
        const address = /^listening on (\S+\/ws\/p2p\/\w+)$/.exec(line.trim());
        if (address) websocket = address[1];
        if (line.trim() === "ready") websocket ? resolve() : reject(new Error("relay ready without a WebSocket address"));
      });
      child.once("exit", (code) => reject(new Error(`hearth-rendezvous exited (${code}) before ready`)));
    }),
    RELAY_START_MS,
  );
  process.on("exit", () => child.kill("SIGKILL"));
  return {
    websocket,
    stop() {
      child.kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One person's browser with the app open on `url`, registered as `username`. */
async function openPerson(url, username) {
  const chromium = await launchBareChromium();
  const { tab } = await chromium.firstTab();
  await tab.send("Page.navigate", { url });
  await waitUntil("the app to load", () => tab.evaluate("typeof window.hearth === 'object'").catch(() => false), {
    timeoutMs: 30_000,
  });
  await tab.evaluate("window.hearth.ready");
  const userId = await tab.evaluate(
    `window.hearth.register(${JSON.stringify(username)}, "bench password 1234").then(async (id) => { await window.hearth.clientReady; return id; })`,
  );
  const serverName = await tab.evaluate("window.hearth.serverName()");
  return { chromium, tab, userId, serverName };
}

async function main() {
  const relay = await startRelay();
  const app = await serveApp();
  const url = `${app.url}/?relay=${encodeURIComponent(relay.websocket)}`;
  const people = [];
  try {
    const alice = await openPerson(url, "alice");
    people.push(alice);
    const bob = await openPerson(url, "bob");
    people.push(bob);
    for (const [self, other] of [[alice, bob], [bob, alice]]) {
      await waitUntil(
        "each homeserver to find the other at the relay",
        () => self.tab.evaluate(`window.hearth.peers().then((peers) => peers.includes(${JSON.stringify(other.serverName)}))`),
        { timeoutMs: FEDERATION_WAIT_MS, intervalMs: 200 },
      );
    }

    const roomId = await alice.tab.evaluate(`(async () => {
      const client = window.hearth.client();
      const { room_id } = await client.createRoom({ name: "p2p bench" });
      await client.invite(room_id, ${JSON.stringify(bob.userId)});
      return room_id;
    })()`);
    const room = JSON.stringify(roomId);
    await waitUntil("bob's invite", () => bob.tab.evaluate(`window.hearth.client().getRoom(${room})?.getMyMembership() === "invite"`), {
      timeoutMs: FEDERATION_WAIT_MS,
      intervalMs: 100,
    });
    await bob.tab.evaluate(`(async () => {
      const client = window.hearth.client();
      await client.joinRoom(${room});
      window.benchArrivals = {};
      client.on("Room.timeline", (event, timelineRoom, toStartOfTimeline) => {
        const tag = event.getContent()?.tag;
        if (toStartOfTimeline || timelineRoom?.roomId !== ${room} || typeof tag !== "string") return;
        window.benchArrivals[tag] ??= performance.timeOrigin + performance.now();
      });
      if (${STAGES}) {
        window.rawArrivals = {};
        window.originTs = {};
        const token = client.getAccessToken();
        const sync = async (query) => {
          const url = new URL("/_matrix/client/v3/sync?" + query, location.origin);
          return (await window.hearth.fetch(url, { headers: { Authorization: "Bearer " + token } })).json();
        };
        let since = (await sync("timeout=0")).next_batch;
        void (async () => {
          for (;;) {
            const response = await sync("timeout=30000&since=" + encodeURIComponent(since));
            const now = performance.timeOrigin + performance.now();
            since = response.next_batch;
            for (const event of response.rooms?.join?.[${room}]?.timeline?.events ?? []) {
              const tag = event.content?.tag;
              if (typeof tag !== "string") continue;
              window.rawArrivals[tag] ??= now;
              window.originTs[tag] = event.origin_server_ts;
            }
          }
        })();
      }
    })()`);
    await waitUntil(
      "alice to see bob joined",
      () => alice.tab.evaluate(`window.hearth.client().getRoom(${room})?.getMember(${JSON.stringify(bob.userId)})?.membership === "join"`),
      { timeoutMs: FEDERATION_WAIT_MS, intervalMs: 100 },
    );

    // One at a time: the next message goes once bob has the last one (and a short pause), so
    // each delivery is measured on its own rather than queued behind the previous ones.
    await alice.tab.evaluate(`window.benchSend = async (n) => {
      const token = window.hearth.client().getAccessToken();
      const tag = "p2p-" + n;
      const url = new URL("/_matrix/client/v3/rooms/" + encodeURIComponent(${room}) + "/send/m.room.message/" + tag, location.origin);
      const start = performance.timeOrigin + performance.now();
      const response = await window.hearth.fetch(url, {
        method: "PUT",
        headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
        body: JSON.stringify({ msgtype: "m.text", body: "p2p message " + n, tag }),
      });
      await response.arrayBuffer();
      if (!response.ok) throw new Error("send " + n + ": " + response.status);
      (window.sendTook ??= {})[tag] = performance.timeOrigin + performance.now() - start;
      return start;
    }`);
    const sentAt = {};
    for (let n = 0; n < MESSAGES; n++) {
      sentAt[`p2p-${n}`] = await alice.tab.evaluate(`window.benchSend(${n})`);
      await waitUntil(`bob to receive message ${n}`, () => bob.tab.evaluate(`"p2p-${n}" in window.benchArrivals`), {
        timeoutMs: FEDERATION_WAIT_MS,
        intervalMs: 2,
      });
      await sleep(GAP_MS);
    }
    const arrivals = await waitUntil(
      "bob to receive every message",
      async () => {
        const arrivals = await bob.tab.evaluate("window.benchArrivals");
        return Object.keys(arrivals).length >= MESSAGES ? arrivals : null;
      },
      { timeoutMs: FEDERATION_WAIT_MS, intervalMs: 100 },
    );
    const delays = Object.entries(sentAt)
      .map(([tag, start]) => arrivals[tag] - start)
      .sort((a, b) => a - b);
    const report = {
      browser_p2p_delivery_p50_ms: round(delays[Math.ceil(delays.length * 0.5) - 1]),
      browser_p2p_delivery_p95_ms: round(delays[Math.ceil(delays.length * 0.95) - 1]),
    };
    if (STAGES) {
      const raw = await bob.tab.evaluate("window.rawArrivals");
      const originTs = await bob.tab.evaluate("window.originTs");
      const sendTook = await alice.tab.evaluate("window.sendTook");
      const tags = Object.keys(sentAt);
      const stage = (name, values) => {
        values.sort((a, b) => a - b);
        const at = (p) => round(values[Math.ceil(values.length * p) - 1]);
        console.error(`stage ${name}: p50 ${at(0.5)} ms, p95 ${at(0.95)} ms`);
      };
      stage("A's PUT", Object.values(sendTook));
      stage("send start -> origin_server_ts", tags.map((tag) => originTs[tag] - sentAt[tag]));
      stage("origin_server_ts -> B's raw /sync", tags.map((tag) => raw[tag] - originTs[tag]));
      stage("B's raw /sync -> SDK timeline", tags.map((tag) => arrivals[tag] - raw[tag]));
    }
    console.log(`HEARTH_BENCH ${JSON.stringify(report)}`);
  } finally {
    // A profile Chromium is still writing to may not delete at once; the figures stand.
    for (const person of people) await person.chromium.close().catch((error) => console.error(`closing Chromium: ${error.message}`));
    app.stop();
    relay.stop();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
