// Typing notifications: bob sees alice start and stop typing, both when she says so and when
// her typing timeout runs out on the server.

import assert from "node:assert/strict";
import { registerUser, startClient } from "../lib/clients.mjs";
import { createSharedRoom } from "../lib/rooms.mjs";
import { scenario } from "../lib/scenario.mjs";
import { sdk } from "../lib/sdk.mjs";
import { waitUntil } from "../lib/wait.mjs";

scenario("bob sees alice typing, then not", async (node) => {
  const alice = await startClient(node.baseUrl, await registerUser(node.baseUrl, "alice"));
  const bob = await startClient(node.baseUrl, await registerUser(node.baseUrl, "bob"));
  const roomId = await createSharedRoom(alice, bob);
  const aliceId = alice.getUserId();

  // The raw m.typing events bob receives (ephemeral events in /sync), in order. Ephemeral events
  // carry no room_id; this is bob's only room.
  const typingEvents = [];
  bob.on(sdk.ClientEvent.Event, (event) => {
    if (event.getType() === "m.typing") {
      typingEvents.push(event.getContent().user_ids);
    }
  });
  const aliceTypingAtBob = () => bob.getRoom(roomId)?.getMember(aliceId)?.typing;
  const describe = () => `member.typing ${aliceTypingAtBob()}, m.typing ${JSON.stringify(typingEvents)}`;

  await alice.sendTyping(roomId, true, 30_000);
  await waitUntil("bob to see alice typing", () => aliceTypingAtBob() === true, { describe });
  assert.ok(typingEvents.some((ids) => ids.includes(aliceId)), "m.typing lists alice");

  await alice.sendTyping(roomId, false);
  await waitUntil("bob to see alice stop typing", () => aliceTypingAtBob() === false, { describe });
  assert.ok(!typingEvents.at(-1).includes(aliceId), "the latest m.typing no longer lists alice");

  // Typing with a short timeout and no explicit stop: the server must expire it.
  await alice.sendTyping(roomId, true, 2_000);
  await waitUntil("bob to see alice typing again", () => aliceTypingAtBob() === true, { describe });
  await waitUntil("alice's typing to time out at bob", () => aliceTypingAtBob() === false, {
    describe,
    timeoutMs: 15_000,
  });
});
