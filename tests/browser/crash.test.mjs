// A killed tab leaves either the whole write or none of it, and loses nothing it acknowledged.
//
// The serving tab's renderer is crashed for real (CDP `Page.crash`) in the middle of a burst of
// 200 sends through the service worker, 32 in flight at a time; a new tab of the same browser
// then takes over the homeserver from IndexedDB. Every send the crashed tab answered 200 must be there, in
// /messages and in /sync, with its transaction still mapped to the same event; every event that
// is there must be whole (listed and readable by id, the same event both ways); sends that were
// never answered may or may not be there.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  clientReady,
  matrixRequest,
  messageBodies,
  numbered,
  openBrowser,
  roleOf,
  sendAll,
  serveApp,
} from "../lib/browser.mjs";
import { waitUntil, withTimeout } from "../lib/wait.mjs";

const TEST_TIMEOUT_MS = 180_000;
const ACKNOWLEDGED_FIRST = 30;
const BURST = 200;
/** How many burst sends are in flight at once. */
const IN_FLIGHT = 32;
/** The crash comes once this many burst sends have been answered 200 (or at the time bound). */
const CRASH_AFTER_ACKS = { min: 20, max: 50 };
const CRASH_AFTER_MS_AT_MOST = 10_000;

const burstTxnId = (i) => `crash-burst-${i}`;

/** Every event of the room's /messages, oldest first (paginated to the start, bounded). */
async function wholeHistory(page, roomId) {
  const events = [];
  let from = "";
  for (let pages = 0; pages < 50; pages++) {
    const path =
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=1000` +
      (from ? `&from=${encodeURIComponent(from)}` : "");
    const { status, body } = await matrixRequest(page, "GET", path);
    assert.equal(status, 200, JSON.stringify(body));
    events.push(...body.chunk);
    if (body.chunk.length === 0 || !body.end || body.end === from) return events.reverse();
    from = body.end;
  }
  throw new Error("/messages did not reach the start of the room in 50 pages");
}

/** `GET /rooms/{roomId}/event/{eventId}` for every id. */
function readEach(page, roomId, eventIds) {
  const path = (eventId) =>
    `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(eventId)}`;
  return Promise.all(
    eventIds.map(async (eventId) => ({ eventId, ...(await matrixRequest(page, "GET", path(eventId))) })),
  );
}

/** `PUT …/send/m.room.message/{txnId}` from the page; resolves to {status, body}. */
function sendWithTxn(page, roomId, txnId, text) {
  const path =
    `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/` +
    encodeURIComponent(txnId);
  return matrixRequest(page, "PUT", path, { msgtype: "m.text", body: text });
}

/** The parts of an event that /messages and /event must agree on. */
const essence = (event) => ({
  event_id: event.event_id,
  type: event.type,
  sender: event.sender,
  room_id: event.room_id,
  origin_server_ts: event.origin_server_ts,
  state_key: event.state_key,
  content: event.content,
});

test("a crashed serving tab leaves each send whole or absent, and loses none it acknowledged (service-worker)", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const started = Date.now();
  const app = await serveApp();
  t.after(app.stop);
  const browser = await openBrowser({ serviceWorkers: "allow" });
  t.after(async () => {
    if (process.env.HEARTH_TEST_VERBOSE === "1") console.log(browser.logs.join("\n"));
    await browser.close();
  });

  const first = await browser.openTab(app.url);
  assert.deepEqual(await roleOf(first), { role: "leader", transport: "service-worker" });
  await first.evaluate(() => window.hearth.register("alice", "correct horse battery staple"));
  await clientReady(first);
  const roomId = await first.evaluate(
    async () => (await window.hearth.client().createRoom({ name: "Crash" })).room_id,
  );
  const before = numbered("message", ACKNOWLEDGED_FIRST);
  await sendAll(first, roomId, before);

  // Acknowledgements leave the page as they arrive: the page will not be there to ask later.
  /** txnId -> event_id, for the burst sends the crashed tab answered 200. */
  const acked = new Map();
  let firstAckAt = 0;
  /** status -> count, for every burst answer that reached us. */
  const answers = new Map();
  // One-way console messages, not an exposed function: a binding's answer is a command to the
  // renderer, and Page.crash would queue behind a hundred of them.
  first.on("console", (message) => {
    const match = /^hearth-crash-test answered (\S+) (\d+) (\S+)$/.exec(message.text());
    if (!match) return;
    const [, txnId, status, eventId] = match;
    answers.set(status, (answers.get(status) ?? 0) + 1);
    if (status === "200") acked.set(txnId, eventId);
    if (!firstAckAt) firstAckAt = Date.now();
  });
  const cdp = await first.context().newCDPSession(first);
  const crashed = new Promise((resolve) => first.once("crash", resolve));

  const burstStarted = Date.now();
  await first.evaluate(
    ({ roomId, txnIds, inFlight }) => {
      const token = window.hearth.client().getAccessToken();
      let next = 0;
      // `inFlight` sends at all times, each answered one replaced by the next txnId: all 200 at
      // once would queue every request ahead of every answer on the tab's main thread, and the
      // whole burst would be written before the first acknowledgement left the page.
      const worker = async () => {
        while (next < txnIds.length) {
          const i = next++;
          const txnId = txnIds[i];
          const response = await window.hearth.fetch(
            `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${encodeURIComponent(txnId)}`,
            {
              method: "PUT",
              headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
              body: JSON.stringify({ msgtype: "m.text", body: `burst ${i + 1}` }),
            },
          );
          const body = await response.json().catch(() => ({}));
          console.debug(`hearth-crash-test answered ${txnId} ${response.status} ${body.event_id ?? "-"}`);
        }
      };
      for (let w = 0; w < inFlight; w++) worker().catch(() => {});
    },
    { roomId, txnIds: Array.from({ length: BURST }, (_, i) => burstTxnId(i + 1)), inFlight: IN_FLIGHT },
  );
  const crashAfter =
    CRASH_AFTER_ACKS.min + Math.floor(Math.random() * (CRASH_AFTER_ACKS.max - CRASH_AFTER_ACKS.min + 1));
  await waitUntil("burst sends to be acknowledged before the crash", () => acked.size >= crashAfter, {
    timeoutMs: CRASH_AFTER_MS_AT_MOST,
    intervalMs: 5,
    describe: () => `${acked.size} acknowledged, answers ${JSON.stringify([...answers])}`,
  }).catch(() => {}); // bounded by time: crash anyway
  const ackedAtCrashCall = acked.size;
  // The renderer dies with sends still in flight; Page.crash itself never answers.
  const crashCalledAt = Date.now();
  cdp.send("Page.crash").catch(() => {});
  await withTimeout("the serving tab's renderer to crash", crashed, 10_000);
  const crashedAt = Date.now();
  // Answers logged before the crash may still land until the crash event; none after it.
  const ackedBeforeCrash = new Map(acked);
  assert.ok(ackedBeforeCrash.size > 0, `no burst send was acknowledged before the crash: ${JSON.stringify([...answers])}`);

  // A new tab of the same browser: it takes the lock, opens IndexedDB and serves.
  const second = await browser.openTab(app.url);
  assert.deepEqual(await roleOf(second), { role: "leader", transport: "service-worker" });
  await clientReady(second);
  const reopenedAt = Date.now();

  const history = await wholeHistory(second, roomId);
  const ids = history.map((event) => event.event_id);
  assert.equal(new Set(ids).size, ids.length, "an event is listed twice by /messages");

  // No half-written event: everything /messages lists is readable by id, and is the same event.
  const read = await readEach(second, roomId, ids);
  for (const [i, { eventId, status, body }] of read.entries()) {
    assert.equal(status, 200, `event ${eventId} is listed by /messages but GET /event answers ${status}: ${JSON.stringify(body)}`);
    assert.deepEqual(essence(body), essence(history[i]), `event ${eventId} differs between /messages and GET /event`);
  }

  const messages = history.filter((event) => event.type === "m.room.message");
  const bodies = messageBodies(messages);
  assert.equal(new Set(bodies).size, bodies.length, `a message is stored twice: ${JSON.stringify(bodies)}`);
  assert.deepEqual(bodies.slice(0, ACKNOWLEDGED_FIRST), before, "the first 30 messages are not all there in order");
  const burstPresent = bodies.slice(ACKNOWLEDGED_FIRST);
  for (const text of burstPresent) assert.match(text, /^burst \d+$/);

  // Every acknowledged send is there, as the event it was answered with.
  const byId = new Map(messages.map((event) => [event.event_id, event]));
  for (const [txnId, eventId] of ackedBeforeCrash) {
    const event = byId.get(eventId);
    assert.ok(event, `acknowledged ${txnId} (${eventId}) is missing from /messages after the crash`);
    assert.equal(event.content.body, `burst ${txnId.slice("crash-burst-".length)}`);
  }

  // /sync agrees with /messages.
  const filter = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 5000 } } }));
  const sync = await matrixRequest(second, "GET", `/_matrix/client/v3/sync?filter=${filter}`);
  assert.equal(sync.status, 200, JSON.stringify(sync.body));
  const timeline = sync.body.rooms.join[roomId].timeline;
  const syncMessageIds = timeline.events.filter((e) => e.type === "m.room.message").map((e) => e.event_id);
  assert.deepEqual(syncMessageIds, messages.map((event) => event.event_id), "/sync and /messages disagree");
  for (const [txnId, eventId] of ackedBeforeCrash) {
    assert.ok(syncMessageIds.includes(eventId), `acknowledged ${txnId} (${eventId}) is missing from /sync`);
  }

  // Transactions survived with their events. Every acknowledged txnId, resent, is the same event.
  // A send that was in flight at the crash is a client's retry case: if it was stored, the retry
  // is that event; if not, the retry makes a new one (a transaction kept without its event would
  // answer with an event that /messages does not list).
  const number = (txnId) => Number(txnId.slice("crash-burst-".length));
  const presentByBody = new Map(messages.map((event) => [event.content.body, event.event_id]));
  for (const [txnId, eventId] of ackedBeforeCrash) {
    const resent = await sendWithTxn(second, roomId, txnId, `burst ${number(txnId)}`);
    assert.equal(resent.status, 200, JSON.stringify(resent.body));
    assert.equal(resent.body.event_id, eventId, `resending acknowledged ${txnId} made a new event`);
  }
  const highestSeen = Math.max(
    ...[...ackedBeforeCrash.keys()].map(number),
    ...burstPresent.map((text) => Number(text.slice("burst ".length))),
  );
  const unackedPresent = [];
  const retriedAbsent = [];
  for (let i = 1; i <= Math.min(BURST, highestSeen + IN_FLIGHT); i++) {
    const txnId = burstTxnId(i);
    if (ackedBeforeCrash.has(txnId)) continue;
    const text = `burst ${i}`;
    const resent = await sendWithTxn(second, roomId, txnId, text);
    assert.equal(resent.status, 200, JSON.stringify(resent.body));
    if (presentByBody.has(text)) {
      unackedPresent.push(i);
      assert.equal(
        resent.body.event_id,
        presentByBody.get(text),
        `${text} was stored (unacknowledged) but resending its txnId made a new event`,
      );
    } else {
      retriedAbsent.push(text);
      assert.ok(
        !ids.includes(resent.body.event_id),
        `${text} is not in /messages, but resending its txnId answers ${resent.body.event_id}, an existing event`,
      );
    }
  }

  // The room goes on: a new message lands after everything else.
  await sendAll(second, roomId, ["after the crash"]);
  const afterwards = await wholeHistory(second, roomId);
  assert.deepEqual(
    messageBodies(afterwards.filter((e) => e.type === "m.room.message")),
    [...bodies, ...retriedAbsent, "after the crash"],
  );

  t.diagnostic(
    `crash after ${ackedAtCrashCall}/${crashAfter} acks (first ack ${firstAckAt - burstStarted} ms, called ${crashCalledAt - burstStarted} ms, crashed ${crashedAt - burstStarted} ms into the burst); ` +
      `acknowledged ${ackedBeforeCrash.size}, burst messages present ${burstPresent.length} ` +
      `(${unackedPresent.length} unacknowledged), ${retriedAbsent.length} absent retried (txnIds up to ${Math.min(BURST, highestSeen + IN_FLIGHT)}), answers ${JSON.stringify([...answers])}; ` +
      `new tab serving in ${reopenedAt - crashedAt} ms; total ${Date.now() - started} ms`,
  );
});
