// History from before a join, across peers: alice on A talks alone in a public room, bob on B
// joins later through the relay, and his matrix-js-sdk client scrolls back through everything
// said before, in order, to the room's creation (B fetches it from A with /backfill).

import assert from "node:assert/strict";
import { FEDERATION_WAIT_MS, federationSuite, newUser } from "../lib/federation.mjs";
import { bodies, scrollbackToStart } from "../lib/rooms.mjs";
import { waitUntil } from "../lib/wait.mjs";

const federationTest = federationSuite(2);

federationTest("a later member scrolls back through what was said before they joined", async (f) => {
  const [a, b] = f.nodes;
  const { client: alice } = await newUser(a, "alice");
  const { client: bob } = await newUser(b, "bob");
  const { room_id: roomId } = await alice.createRoom({ name: "history", preset: "public_chat" });
  const before = Array.from({ length: 25 }, (_, i) => `said before ${i + 1}`);
  for (const body of before) await alice.sendTextMessage(roomId, body);

  await alice.invite(roomId, bob.getUserId());
  await waitUntil("bob's invite", () => bob.getRoom(roomId)?.getMyMembership() === "invite", { timeoutMs: FEDERATION_WAIT_MS });
  await bob.joinRoom(roomId);
  await waitUntil("bob to be joined", () => bob.getRoom(roomId)?.getMyMembership() === "join", { timeoutMs: FEDERATION_WAIT_MS });

  const room = bob.getRoom(roomId);
  await scrollbackToStart(bob, room, { pageSize: 10 });
  assert.deepEqual(bodies(room), before, "bob's timeline holds alice's messages from before he joined, in order");
  const events = room.getLiveTimeline().getEvents();
  assert.equal(events[0].getType(), "m.room.create", "and starts at the room's creation");
  const ids = events.map((event) => event.getId());
  assert.equal(new Set(ids).size, ids.length, "no event twice");
});
