// Two users chat in a room both ways; after a restart of hearth-node the whole history is still
// there, both by paginating back and through /sync.

import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { registerUser, startClient, stopClient } from "../lib/clients.mjs";
import {
  bodies,
  createSharedRoom,
  fetchHistory,
  scrollbackToStart,
  waitForMembership,
  waitForMessage,
} from "../lib/rooms.mjs";
import { scenario } from "../lib/scenario.mjs";
import { waitUntil } from "../lib/wait.mjs";

const MESSAGES = 12; // with a sync limit of 3 and pages of 4, pagination takes several pages

scenario("alice and bob chat; the history survives a restart", async (node) => {
  const aliceCreds = await registerUser(node.baseUrl, "alice");
  const bobCreds = await registerUser(node.baseUrl, "bob");
  assert.equal(aliceCreds.userId, `@alice:${node.serverName}`);
  let alice = await startClient(node.baseUrl, aliceCreds);
  let bob = await startClient(node.baseUrl, bobCreds);

  const roomId = await createSharedRoom(alice, bob);

  // Alternate senders so both directions are exercised; each message is awaited at the other
  // end before the next is sent, which fixes the expected order.
  const sent = [];
  for (let i = 1; i <= MESSAGES; i++) {
    const [from, to, name] = i % 2 ? [alice, bob, "alice"] : [bob, alice, "bob"];
    const body = `message ${i} from ${name}`;
    const { event_id: eventId } = await from.sendTextMessage(roomId, body);
    const seen = await waitForMessage(to, roomId, body);
    assert.equal(seen.getId(), eventId);
    assert.equal(seen.getSender(), from.getUserId());
    sent.push({ body, eventId });
  }
  const expected = sent.map((m) => m.body);
  for (const client of [alice, bob]) {
    await waitUntil(
      `${client.getUserId()}'s timeline to hold every message in order`,
      () => isDeepStrictEqual(bodies(client.getRoom(roomId)), expected),
      { describe: () => JSON.stringify(bodies(client.getRoom(roomId))) },
    );
  }

  await stopClient(alice);
  await stopClient(bob);
  await node.restart();

  // alice comes back with a small initial sync and scrolls back to the room's creation.
  alice = await startClient(node.baseUrl, aliceCreds, { initialSyncLimit: 3 });
  const room = await waitForMembership(alice, roomId, "join");
  assert.equal(room.name, "hearth test room", "room state survives the restart");
  await scrollbackToStart(alice, room, { pageSize: 4 });
  assert.deepEqual(bodies(room), expected, "scrollback gives the whole history in order");
  assert.equal(room.getLiveTimeline().getEvents()[0].getType(), "m.room.create");

  // The same through raw /messages pages: create event first, every message once, in order.
  const history = await fetchHistory(alice, roomId);
  assert.equal(history[0].type, "m.room.create");
  assert.deepEqual(
    history.filter((e) => e.type === "m.room.message").map((e) => e.event_id),
    sent.map((m) => m.eventId),
  );

  // bob's first /sync after the restart still has the room and its latest messages: a server
  // may send fewer than the limit, but never out of order and never without the newest.
  bob = await startClient(node.baseUrl, bobCreds);
  const bobRoom = await waitForMembership(bob, roomId, "join");
  const got = bodies(bobRoom);
  assert.ok(got.length > 0, "messages in bob's initial sync");
  assert.deepEqual(got, expected.slice(expected.length - got.length));
});
