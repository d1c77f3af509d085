// The homeserver in a browser tab, end to end: the app as `cargo xtask dev` serves it, Debian's
// Chromium, the page's own matrix-js-sdk client, IndexedDB. Each scenario runs twice: through
// the service worker, and with service workers blocked (the page calls the homeserver directly,
// or another tab's over a BroadcastChannel).

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  clientReady,
  matrixRequest,
  messageBodies,
  numbered,
  openBrowser,
  openElsewhere,
  ready,
  roleOf,
  sendAll,
  serveApp,
  takeOver,
  untilLeader,
} from "../lib/browser.mjs";
import { waitUntil } from "../lib/wait.mjs";

const TEST_TIMEOUT_MS = 180_000;

const PATHS = [
  { serviceWorkers: "allow", transport: "service-worker" },
  { serviceWorkers: "block", transport: "direct" },
];

/** A browser on a freshly served app, closed (and the server stopped) after the test. */
async function setUp(t, serviceWorkers) {
  const app = await serveApp();
  t.after(app.stop);
  const browser = await openBrowser({ serviceWorkers });
  t.after(async () => {
    if (process.env.HEARTH_TEST_VERBOSE === "1") console.log(browser.logs.join("\n"));
    await browser.close();
  });
  return { app, browser };
}

async function registerAndCreateRoom(page, name) {
  await page.evaluate(() => window.hearth.register("alice", "correct horse battery staple"));
  await clientReady(page);
  return page.evaluate(
    async (name) => (await window.hearth.client().createRoom({ name })).room_id,
    name,
  );
}

/** The room's messages, oldest first, from /messages through the page's transport. */
async function historyOf(page, roomId) {
  const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=500`;
  const { status, body } = await matrixRequest(page, "GET", path);
  assert.equal(status, 200, JSON.stringify(body));
  return messageBodies(body.chunk).reverse();
}


for (const { serviceWorkers, transport } of PATHS) {
  test(`100 messages survive a reload, in /sync and /messages (${transport})`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { app, browser } = await setUp(t, serviceWorkers);
    const page = await browser.openTab(app.url);
    assert.deepEqual(await roleOf(page), { role: "leader", transport });
    const roomId = await registerAndCreateRoom(page, "Reload");
    const sent = numbered("message", 100);
    await sendAll(page, roomId, sent);

    await page.reload();
    await ready(page);
    assert.deepEqual(await roleOf(page), { role: "leader", transport });
    await clientReady(page);

    const filter = encodeURIComponent(JSON.stringify({ room: { timeline: { limit: 200 } } }));
    const sync = await matrixRequest(page, "GET", `/_matrix/client/v3/sync?filter=${filter}`);
    assert.equal(sync.status, 200, JSON.stringify(sync.body));
    assert.deepEqual(messageBodies(sync.body.rooms.join[roomId].timeline.events), sent);
    assert.deepEqual(await historyOf(page, roomId), sent);
  });

  test(`a second tab takes the client over and sends through the first tab's homeserver (${transport})`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { app, browser } = await setUp(t, serviceWorkers);
    const first = await browser.openTab(app.url);
    const roomId = await registerAndCreateRoom(first, "Two tabs");

    // The second tab has no homeserver of its own, and at first no client either: one tab at a
    // time runs the client on the shared crypto store.
    const second = await browser.openTab(app.url);
    await ready(second);
    assert.deepEqual(await roleOf(second), { role: "follower", transport });
    await waitUntil("the second tab to say Hearth is open in another tab", () => openElsewhere(second));
    assert.equal(await first.evaluate(() => window.hearth.client() !== null), true, "the first tab keeps its client");

    // "Use Hearth here": the first tab's client stops, the second's starts on the saved session,
    // and every request it makes is answered by the first tab's homeserver.
    await takeOver(second);
    await waitUntil("the first tab to give its client up", () => openElsewhere(first));
    await sendAll(second, roomId, ["from the second tab"]);
    assert.deepEqual(await historyOf(first, roomId), ["from the second tab"]);

    // And back: the first tab's client resumes and sees what the second sent.
    await takeOver(first);
    await waitUntil("the second tab to give its client up", () => openElsewhere(second));
    await waitUntil("the first tab's client to see the second tab's message", () =>
      first.evaluate(
        (roomId) =>
          window.hearth
            .client()
            .getRoom(roomId)
            ?.getLiveTimeline()
            .getEvents()
            .some((event) => event.getContent().body === "from the second tab"),
        roomId,
      ),
    );
  });

  test(`closing the serving tab hands over to the other tab with nothing lost (${transport})`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { app, browser } = await setUp(t, serviceWorkers);
    const first = await browser.openTab(app.url);
    const roomId = await registerAndCreateRoom(first, "Handover");
    const second = await browser.openTab(app.url);
    await ready(second);
    await takeOver(second);
    const before = numbered("before", 20);
    await sendAll(second, roomId, before);

    await first.close({ runBeforeUnload: false });
    await untilLeader(second);
    assert.deepEqual(await roleOf(second), { role: "leader", transport });

    const after = numbered("after", 20);
    await sendAll(second, roomId, after);
    assert.deepEqual(await historyOf(second, roomId), [...before, ...after]);
  });

  test(`media uploaded and downloaded returns the same bytes (${transport})`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { app, browser } = await setUp(t, serviceWorkers);
    const page = await browser.openTab(app.url);
    await registerAndCreateRoom(page, "Media");
    // A second tab, so the bytes also cross from a tab that does not serve to one that does.
    const other = await browser.openTab(app.url);
    await ready(other);
    await takeOver(other);

    const result = await other.evaluate(async (viaServiceWorker) => {
      const bytes = new Uint8Array(300 * 1024);
      for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
      const client = window.hearth.client();
      const token = client.getAccessToken();
      let contentUri;
      if (viaServiceWorker) {
        // matrix-js-sdk uploads with XMLHttpRequest, which only a service worker intercepts.
        ({ content_uri: contentUri } = await client.uploadContent(new Blob([bytes], { type: "image/png" }), {
          name: "noise.png",
        }));
      } else {
        const response = await window.hearth.fetch("/_matrix/media/v3/upload?filename=noise.png", {
          method: "POST",
          headers: { Authorization: `Bearer ${token}`, "Content-Type": "image/png" },
          body: bytes,
        });
        ({ content_uri: contentUri } = await response.json());
      }
      const [, server, mediaId] = /^mxc:\/\/([^/]+)\/([^/]+)$/.exec(contentUri);
      const download = await window.hearth.fetch(`/_matrix/client/v1/media/download/${server}/${mediaId}`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      const received = new Uint8Array(await download.arrayBuffer());
      const digest = async (data) => Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", data))).join(",");
      return {
        status: download.status,
        type: download.headers.get("content-type"),
        length: received.length,
        same: (await digest(bytes)) === (await digest(received)),
      };
    }, transport === "service-worker");
    assert.deepEqual(result, { status: 200, type: "image/png", length: 300 * 1024, same: true });
  });
}

test("a service worker stopped by the browser finds the serving tab again", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { app, browser } = await setUp(t, "allow");
  const page = await browser.openTab(app.url);
  const roomId = await registerAndCreateRoom(page, "Restart");
  await sendAll(page, roomId, ["before the restart"]);

  // Browsers stop idle service workers at will; the next request starts a fresh one that has
  // forgotten which tab serves.
  const devtools = await page.context().newCDPSession(page);
  let stopped = false;
  devtools.on("ServiceWorker.workerVersionUpdated", ({ versions }) => {
    if (versions.some((version) => version.runningStatus === "stopped")) stopped = true;
  });
  await devtools.send("ServiceWorker.enable");
  await devtools.send("ServiceWorker.stopAllWorkers");
  await waitUntil("the service worker to stop", () => stopped);

  await sendAll(page, roomId, ["after the restart"]);
  assert.deepEqual(await historyOf(page, roomId), ["before the restart", "after the restart"]);
  assert.deepEqual(await roleOf(page), { role: "leader", transport: "service-worker" });
});

test("the service worker answers 503 when no tab serves, and the app opens offline", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { app, browser } = await setUp(t, "allow");
  const page = await browser.openTab(app.url);
  assert.deepEqual(await roleOf(page), { role: "leader", transport: "service-worker" });

  // A page in the worker's scope that is not the app: no tab serves the homeserver.
  await page.goto(new URL("/not-the-app", app.url).href);
  const answer = await page.evaluate(async () => {
    const response = await fetch("/_matrix/client/versions");
    return { status: response.status, type: response.headers.get("content-type"), body: await response.json() };
  });
  assert.equal(answer.status, 503);
  assert.equal(answer.type, "application/json");
  assert.equal(answer.body.errcode, "M_UNKNOWN");

  // The static server goes away: the app shell comes from the worker's cache and serves again.
  app.stop();
  await page.goto(app.url);
  await ready(page);
  assert.deepEqual(await roleOf(page), { role: "leader", transport: "service-worker" });
});
