// Load benchmark of hearth-node (issue: the homeserver's performance targets), printed as one
// JSON object on the last line. Plain fetch, not matrix-js-sdk, so the client adds no latency
// of its own to what is measured.
//
// - 20 users in one room each send 50 messages concurrently (one request in flight per user)
//   while a 21st user long-polls /sync: send_events_per_s, send_p95_ms, sync_delivery_p95_ms
//   (a message's send start -> seen in the watcher's /sync).
// - initial_sync_ms: a fresh /sync of a room with 1,000 messages, filter asking for all.
// - peak_rss_mb: the server process's high-water mark (VmHWM).

import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

import { startNode } from "../lib/hearth-node.mjs";

const USERS = 20;
const MESSAGES_PER_USER = 50;
const HISTORY = 1000;
const TIMEOUT_MS = 120_000;

async function call(baseUrl, method, path, token, body) {
  const response = await fetch(baseUrl + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

async function register(baseUrl, name) {
  const body = { username: name, password: "password", auth: { type: "m.login.dummy" } };
  return call(baseUrl, "POST", "/_matrix/client/v3/register", undefined, body);
}

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const round = (value) => Math.round(value * 100) / 100;

async function main() {
  const node = await startNode({ openRegistration: true });
  try {
    const { baseUrl } = node;
    const owner = await register(baseUrl, "owner");
    const users = [];
    for (let i = 0; i < USERS; i++) users.push(await register(baseUrl, `user${i}`));
    const watcher = await register(baseUrl, "watcher");
    const { room_id: room } = await call(baseUrl, "POST", "/_matrix/client/v3/createRoom", owner.access_token, {
      preset: "public_chat",
    });
    const enc = encodeURIComponent(room);
    for (const user of [...users, watcher]) {
      await call(baseUrl, "POST", `/_matrix/client/v3/join/${enc}`, user.access_token, {});
    }

    // The watcher long-polls and notes when each message first appears.
    const seenAt = new Map();
    let since = (await call(baseUrl, "GET", "/_matrix/client/v3/sync?timeout=0", watcher.access_token)).next_batch;
    // A limited timeline would skip messages: the watcher asks for every one.
    const watchFilter = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: USERS * MESSAGES_PER_USER } } }));
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const sync = await call(baseUrl, "GET", `/_matrix/client/v3/sync?timeout=5000&since=${since}&filter=${watchFilter}`, watcher.access_token);
        const now = performance.now();
        since = sync.next_batch;
        for (const event of sync.rooms?.join?.[room]?.timeline?.events ?? []) {
          if (event.content?.tag && !seenAt.has(event.content.tag)) seenAt.set(event.content.tag, now);
        }
      }
    })();

    const sentAt = new Map();
    const sendLatencies = [];
    const started = performance.now();
    await Promise.all(
      users.map(async (user, u) => {
        for (let m = 0; m < MESSAGES_PER_USER; m++) {
          const tag = `${u}-${m}`;
          const t0 = performance.now();
          sentAt.set(tag, t0);
          await call(baseUrl, "PUT", `/_matrix/client/v3/rooms/${enc}/send/m.room.message/${tag}`, user.access_token, {
            msgtype: "m.text",
            body: `message ${tag}`,
            tag,
          });
          sendLatencies.push(performance.now() - t0);
        }
      }),
    );
    const elapsed = performance.now() - started;
    const total = USERS * MESSAGES_PER_USER;
    const deadline = performance.now() + 30_000;
    while (seenAt.size < total && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    watching = false;
    await watch;
    if (seenAt.size < total) throw new Error(`the watcher saw only ${seenAt.size} of ${total} messages`);
    const deliveries = [...seenAt].map(([tag, at]) => at - sentAt.get(tag));

    // A second room with 1,000 messages, then a fresh initial sync asking for all of them.
    const { room_id: history } = await call(baseUrl, "POST", "/_matrix/client/v3/createRoom", owner.access_token, {});
    const historyEnc = encodeURIComponent(history);
    for (let i = 0; i < HISTORY; i++) {
      await call(baseUrl, "PUT", `/_matrix/client/v3/rooms/${historyEnc}/send/m.room.message/h${i}`, owner.access_token, {
        msgtype: "m.text",
        body: `history ${i}`,
      });
    }
    const filter = encodeURIComponent(JSON.stringify({ room: { rooms: [history], timeline: { limit: HISTORY } } }));
    const syncTimes = [];
    for (let run = 0; run < 5; run++) {
      const t0 = performance.now();
      const sync = await call(baseUrl, "GET", `/_matrix/client/v3/sync?filter=${filter}`, owner.access_token);
      syncTimes.push(performance.now() - t0);
      const got = sync.rooms.join[history].timeline.events.filter((e) => e.type === "m.room.message").length;
      if (got !== HISTORY) throw new Error(`initial sync returned ${got} of ${HISTORY} messages`);
    }

    const status = readFileSync(`/proc/${node.pid()}/status`, "utf8");
    const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    console.log(
      JSON.stringify({
        send_events_per_s: round(total / (elapsed / 1000)),
        send_p95_ms: round(percentile(sendLatencies, 95)),
        sync_delivery_p95_ms: round(percentile(deliveries, 95)),
        initial_sync_ms: round(percentile(syncTimes, 50)),
        peak_rss_mb: round(hwmKb / 1024),
      }),
    );
  } finally {
    await node.stop();
  }
}

await main();
