// Redaction: alice redacts her message; bob sees it redacted with its content gone, live and,
// from the server's own copy, after a restart.

import assert from "node:assert/strict";
import { registerUser, startClient, stopClient } from "../lib/clients.mjs";
import { createSharedRoom, waitForMembership, waitForMessage } from "../lib/rooms.mjs";
import { scenario } from "../lib/scenario.mjs";
import { waitUntil } from "../lib/wait.mjs";

scenario("a redacted message is redacted for bob, also after a restart", async (node) => {
  const alice = await startClient(node.baseUrl, await registerUser(node.baseUrl, "alice"));
  const bobCreds = await registerUser(node.baseUrl, "bob");
  let bob = await startClient(node.baseUrl, bobCreds);
  const roomId = await createSharedRoom(alice, bob);

  const { event_id: eventId } = await alice.sendTextMessage(roomId, "something regrettable");
  const atBob = await waitForMessage(bob, roomId, "something regrettable");
  await alice.redactEvent(roomId, eventId, undefined, { reason: "oops" });
  await waitUntil("bob to see the message redacted", () => atBob.isRedacted());
  assert.deepEqual(atBob.getContent(), {});

  // Live, the sdk redacts its own copy when the redaction arrives; after a restart a fresh
  // client only has what the server serves, so this checks the server's redaction.
  await stopClient(bob);
  await node.restart();
  bob = await startClient(node.baseUrl, bobCreds);
  const room = await waitForMembership(bob, roomId, "join");
  const synced = room.findEventById(eventId);
  assert.ok(synced, "the redacted event is still in bob's timeline");
  assert.ok(synced.isRedacted(), "served with unsigned.redacted_because");
  assert.deepEqual(synced.getContent(), {});

  const raw = await bob.fetchRoomEvent(roomId, eventId);
  assert.deepEqual(raw.content, {}, "GET /rooms/{roomId}/event/{eventId} serves it redacted");
  assert.equal(raw.unsigned?.redacted_because?.type, "m.room.redaction");
  assert.equal(raw.unsigned.redacted_because.content.reason, "oops");
});
