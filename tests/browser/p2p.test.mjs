// Peer-to-peer from the browser: two separate Chromium profiles (two homeservers in two tabs)
// and a native hearth-node, all federating through one real hearth-rendezvous relay on
// loopback. The tabs find each other at the relay, a user in one invites the other's user, who
// joins, and they chat; one tab also chats with the native node's user.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { matrixRequest, messageBodies, openBrowser, serveApp } from "../lib/browser.mjs";
import { apiClient, registerUser } from "../lib/clients.mjs";
import { startNode } from "../lib/hearth-node.mjs";
import { startRelay } from "../lib/relay.mjs";
import { waitUntil } from "../lib/wait.mjs";

/** Crossing the relay takes milliseconds; a first dial and a retry after backoff, seconds. */
const DELIVERY_MS = 30_000;

let relay;
let node;
let app;
const browsers = [];

before(async () => {
  relay = await startRelay({ websocket: true });
  node = await startNode({ relays: [relay.address], waitForRelay: true });
  app = await serveApp({ relays: [relay.websocket] });
});

after(async () => {
  await Promise.allSettled(browsers.map((browser) => browser.close()));
  app?.stop();
  await node?.stop();
  await relay?.dispose();
});

/** A person: their own browser profile with one tab, registered, reachable at the relay. */
async function person(name) {
  const browser = await openBrowser();
  browsers.push(browser);
  const page = await browser.openTab(app.url);
  const userId = await page.evaluate((name) => window.hearth.register(name, `${name}-password-1`), name);
  await waitUntil(`${name}'s homeserver to be reachable at the relay`, () => page.evaluate(() => window.hearth.reachable()), {
    timeoutMs: DELIVERY_MS,
  });
  return { browser, page, userId };
}

const enc = encodeURIComponent;

async function joinedMessages(page, roomId) {
  const reply = await matrixRequest(page, "GET", `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=100`);
  return reply.status === 200 ? messageBodies(reply.body.chunk).reverse() : [];
}

async function send(page, roomId, body) {
  const txn = `t${Date.now()}${Math.random()}`;
  const reply = await matrixRequest(page, "PUT", `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/${enc(txn)}`, {
    msgtype: "m.text",
    body,
  });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
}

async function untilInvited(page, roomId) {
  await waitUntil(
    "the invite to arrive",
    async () => {
      const sync = await matrixRequest(page, "GET", "/_matrix/client/v3/sync?timeout=0");
      return sync.body?.rooms?.invite?.[roomId] !== undefined;
    },
    { timeoutMs: DELIVERY_MS },
  );
}

test("two browser tabs find each other at the relay and chat", { timeout: 180_000 }, async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const bobServer = bob.userId.split(":")[1];

  // alice's homeserver lists bob's among the peers online, with bob's user.
  await waitUntil(
    "bob's homeserver in alice's peer list",
    async () => {
      const peers = await matrixRequest(alice.page, "GET", "/_hearth/client/v1/peers");
      const bobs = peers.body?.peers?.find((peer) => peer.server_name === bobServer);
      return bobs?.users?.some((user) => user.user_id === bob.userId);
    },
    { timeoutMs: DELIVERY_MS },
  );

  const created = await matrixRequest(alice.page, "POST", "/_matrix/client/v3/createRoom", { name: "tabs" });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const roomId = created.body.room_id;
  const invited = await matrixRequest(alice.page, "POST", `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: bob.userId });
  assert.equal(invited.status, 200, JSON.stringify(invited.body));
  await untilInvited(bob.page, roomId);
  const joined = await matrixRequest(bob.page, "POST", `/_matrix/client/v3/join/${enc(roomId)}`, {});
  assert.equal(joined.status, 200, JSON.stringify(joined.body));

  await send(alice.page, roomId, "hello bob, from alice's tab");
  await waitUntil("alice's message in bob's tab", async () => (await joinedMessages(bob.page, roomId)).includes("hello bob, from alice's tab"), {
    timeoutMs: DELIVERY_MS,
  });
  await send(bob.page, roomId, "hello alice, from bob's tab");
  await waitUntil("bob's message in alice's tab", async () => (await joinedMessages(alice.page, roomId)).includes("hello alice, from bob's tab"), {
    timeoutMs: DELIVERY_MS,
  });
  assert.deepEqual(await joinedMessages(alice.page, roomId), await joinedMessages(bob.page, roomId));
});

test("a browser tab chats with a native hearth-node", { timeout: 180_000 }, async () => {
  const dana = await person("dana");
  const carolCreds = await registerUser(node.baseUrl, "carol");
  const carol = apiClient(node.baseUrl, carolCreds);

  const { room_id: roomId } = await carol.createRoom({ name: "native and tab" });
  await carol.invite(roomId, dana.userId);
  await untilInvited(dana.page, roomId);
  const joined = await matrixRequest(dana.page, "POST", `/_matrix/client/v3/join/${enc(roomId)}`, {});
  assert.equal(joined.status, 200, JSON.stringify(joined.body));

  await carol.sendTextMessage(roomId, "hello from the native node");
  await waitUntil("carol's message in dana's tab", async () => (await joinedMessages(dana.page, roomId)).includes("hello from the native node"), {
    timeoutMs: DELIVERY_MS,
  });
  await send(dana.page, roomId, "hello from the tab");
  await waitUntil(
    "dana's message on the native node",
    async () => {
      const history = await carol.createMessagesRequest(roomId, null, 100, "b");
      return messageBodies(history.chunk).includes("hello from the tab");
    },
    { timeoutMs: DELIVERY_MS },
  );
});
