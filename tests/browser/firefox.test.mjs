// The app in Firefox: Debian's firefox-esr, driven over WebDriver BiDi (lib/firefox.mjs), on the
// app as `cargo xtask dev` serves it. The same checks as in Chromium, in short: the homeserver
// starts in the tab (wasm, IndexedDB, Web Locks), the page's matrix-js-sdk registers, creates a
// room and sends, and everything is still there after a reload; a second tab is served by the
// first; once through the service worker and once with service workers off (the direct path,
// BroadcastChannel between tabs). Then a Firefox and a Chromium federate through a real relay.
// A missing Firefox fails these tests (with what to install); it never skips them.

import assert from "node:assert/strict";
import { test } from "node:test";
import { matrixRequest, messageBodies, numbered, openBrowser, sendAll, serveApp } from "../lib/browser.mjs";
import { clientReady, openFirefox, ready, roleOf } from "../lib/firefox.mjs";
import { startRelay } from "../lib/relay.mjs";
import { waitUntil } from "../lib/wait.mjs";

const TEST_TIMEOUT_MS = 180_000;
/** Crossing the relay takes milliseconds; a first dial and a retry after backoff, seconds. */
const DELIVERY_MS = 30_000;
const enc = encodeURIComponent;

/** A Firefox, closed after the test (its log printed if the test failed; verbose streams it). */
async function firefox(t, opts) {
  const browser = await openFirefox(opts);
  t.after(async () => {
    if (t.passed === false && process.env.HEARTH_TEST_VERBOSE !== "1") {
      console.log(`Firefox's log:\n${browser.logs.join("\n")}`);
    }
    await browser.close();
  });
  return browser;
}

/** The room's messages, oldest first, from /messages through the page's transport. */
async function historyOf(tab, roomId) {
  const { status, body } = await matrixRequest(tab, "GET", `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=500`);
  assert.equal(status, 200, JSON.stringify(body));
  return messageBodies(body.chunk).reverse();
}

/** Whether the page's matrix-js-sdk has `body` in the room's live timeline. */
function clientSees(tab, roomId, body) {
  return tab.evaluate(
    ({ roomId, body }) =>
      window.hearth
        .client()
        ?.getRoom(roomId)
        ?.getLiveTimeline()
        .getEvents()
        .some((event) => event.getContent().body === body) ?? false,
    { roomId, body },
  );
}

const PATHS = [
  { serviceWorkers: "allow", transport: "service-worker" },
  { serviceWorkers: "block", transport: "direct" },
];

for (const { serviceWorkers, transport } of PATHS) {
  test(`Firefox: register, a room, messages survive a reload, a second tab is served (${transport})`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const app = await serveApp();
    t.after(app.stop);
    const browser = await firefox(t, { serviceWorkers });
    const tab = await browser.openTab(app.url);
    assert.deepEqual(await roleOf(tab), { role: "leader", transport });

    const userId = await tab.evaluate(() => window.hearth.register("alice", "correct horse battery staple"));
    assert.match(userId, /^@alice:[0-9a-f]{64}$/);
    await clientReady(tab);
    const roomId = await tab.evaluate(async () => (await window.hearth.client().createRoom({ name: "Firefox" })).room_id);
    const sent = numbered("message", 20);
    await sendAll(tab, roomId, sent);

    if (transport === "service-worker") {
      // A plain fetch, not the host's: only the service worker can answer it with the
      // homeserver (the static server knows no /_matrix).
      const whoami = await tab.evaluate(async () => {
        const token = window.hearth.client().getAccessToken();
        const response = await fetch("/_matrix/client/v3/account/whoami", { headers: { Authorization: `Bearer ${token}` } });
        return { status: response.status, body: await response.json(), controller: navigator.serviceWorker.controller?.scriptURL };
      });
      assert.equal(whoami.status, 200, JSON.stringify(whoami));
      assert.equal(whoami.body.user_id, userId);
      assert.match(whoami.controller, /\/sw\.js$/);

      // matrix-js-sdk uploads with XMLHttpRequest, which only the service worker carries.
      const media = await tab.evaluate(async () => {
        const bytes = new Uint8Array(100 * 1024);
        crypto.getRandomValues(bytes.subarray(0, 65536));
        crypto.getRandomValues(bytes.subarray(65536));
        const client = window.hearth.client();
        const { content_uri: uri } = await client.uploadContent(new Blob([bytes], { type: "image/png" }), { name: "noise.png" });
        const [server, id] = uri.slice("mxc://".length).split("/");
        const response = await fetch(`/_matrix/client/v1/media/download/${server}/${id}`, {
          headers: { Authorization: `Bearer ${client.getAccessToken()}` },
        });
        const back = new Uint8Array(await response.arrayBuffer());
        return { status: response.status, same: back.length === bytes.length && back.every((byte, i) => byte === bytes[i]) };
      });
      assert.deepEqual(media, { status: 200, same: true });
    }

    // IndexedDB keeps the homeserver's data; the page resumes the session it saved.
    await tab.reload();
    await ready(tab);
    assert.deepEqual(await roleOf(tab), { role: "leader", transport });
    await clientReady(tab);
    assert.equal(await tab.evaluate(() => window.hearth.client().getUserId()), userId);
    assert.deepEqual(await historyOf(tab, roomId), sent);
    await waitUntil("the resumed client to show the last message", () => clientSees(tab, roomId, "message 20"));

    // A second tab has no homeserver of its own: the first tab's answers it. It takes the client
    // over (one tab at a time runs it), sends, and the first tab takes it back.
    const second = await browser.openTab(app.url);
    assert.deepEqual(await roleOf(second), { role: "follower", transport });
    await waitUntil("the second tab to say Hearth is open in another tab", () =>
      second.evaluate(() => window.hearth.elsewhere()),
    );
    await second.evaluate(() => window.hearth.useHere());
    await clientReady(second);
    await waitUntil("the first tab to give its client up", () => tab.evaluate(() => window.hearth.client() === null));
    await sendAll(second, roomId, ["from the second tab"]);
    await tab.evaluate(() => window.hearth.useHere());
    await clientReady(tab);
    await waitUntil("the first tab's client to see the second tab's message", () => clientSees(tab, roomId, "from the second tab"));
    assert.deepEqual(await historyOf(tab, roomId), [...sent, "from the second tab"]);
  });
}

test("Firefox and Chromium find each other at a relay and chat", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const relay = await startRelay({ websocket: true });
  t.after(() => relay.dispose());
  const app = await serveApp({ relays: [relay.websocket] });
  t.after(app.stop);
  const fox = await (await firefox(t)).openTab(app.url);
  const chromium = await openBrowser();
  t.after(() => chromium.close());
  const chrome = await chromium.openTab(app.url);

  const register = async (tab, name) => {
    const userId = await tab.evaluate((name) => window.hearth.register(name, `${name}-password-1`), name);
    await waitUntil(`${name}'s homeserver to be reachable at the relay`, () => tab.evaluate(() => window.hearth.reachable()), {
      timeoutMs: DELIVERY_MS,
    });
    return userId;
  };
  const alice = await register(fox, "alice");
  const bob = await register(chrome, "bob");
  const bobServer = bob.split(":")[1];
  await waitUntil(
    "the Chromium homeserver in the Firefox one's peer list",
    async () => {
      const peers = await matrixRequest(fox, "GET", "/_hearth/client/v1/peers");
      return peers.body?.peers?.some((peer) => peer.server_name === bobServer);
    },
    { timeoutMs: DELIVERY_MS },
  );

  const created = await matrixRequest(fox, "POST", "/_matrix/client/v3/createRoom", { name: "two browsers" });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const roomId = created.body.room_id;
  const invited = await matrixRequest(fox, "POST", `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: bob });
  assert.equal(invited.status, 200, JSON.stringify(invited.body));
  await waitUntil(
    "the invite in Chromium",
    async () => (await matrixRequest(chrome, "GET", "/_matrix/client/v3/sync?timeout=0")).body?.rooms?.invite?.[roomId] !== undefined,
    { timeoutMs: DELIVERY_MS },
  );
  const joined = await matrixRequest(chrome, "POST", `/_matrix/client/v3/join/${enc(roomId)}`, {});
  assert.equal(joined.status, 200, JSON.stringify(joined.body));

  const send = async (tab, body) => {
    const reply = await matrixRequest(tab, "PUT", `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/${enc(`t${Date.now()}`)}`, {
      msgtype: "m.text",
      body,
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
  };
  const messages = async (tab) => {
    const reply = await matrixRequest(tab, "GET", `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=100`);
    return reply.status === 200 ? messageBodies(reply.body.chunk).reverse() : [];
  };
  await send(fox, "hello from Firefox");
  await waitUntil("Firefox's message in Chromium", async () => (await messages(chrome)).includes("hello from Firefox"), {
    timeoutMs: DELIVERY_MS,
  });
  await send(chrome, "hello from Chromium");
  await waitUntil("Chromium's message in Firefox", async () => (await messages(fox)).includes("hello from Chromium"), {
    timeoutMs: DELIVERY_MS,
  });
  assert.deepEqual(await messages(fox), await messages(chrome));
  assert.ok(alice.startsWith("@alice:"));
});
