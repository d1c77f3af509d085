// Read receipts: bob marks alice's message read; alice sees it, live and after a restart.

import assert from "node:assert/strict";
import { registerUser, startClient, stopClient } from "../lib/clients.mjs";
import { createSharedRoom, waitForMembership, waitForMessage } from "../lib/rooms.mjs";
import { scenario } from "../lib/scenario.mjs";
import { sdk } from "../lib/sdk.mjs";
import { waitUntil } from "../lib/wait.mjs";

scenario("alice sees bob's read receipt on her message", async (node) => {
  const aliceCreds = await registerUser(node.baseUrl, "alice");
  let alice = await startClient(node.baseUrl, aliceCreds);
  const bob = await startClient(node.baseUrl, await registerUser(node.baseUrl, "bob"));
  const roomId = await createSharedRoom(alice, bob);
  const bobId = bob.getUserId();

  const { event_id: eventId } = await alice.sendTextMessage(roomId, "please read me");
  await bob.sendReadReceipt(await waitForMessage(bob, roomId, "please read me"), sdk.ReceiptType.Read);

  /** bob's m.read receipt on the message, as alice's client holds it. */
  const bobsReceipt = (client) => {
    const room = client.getRoom(roomId);
    const event = room?.findEventById(eventId);
    return event && room.getReceiptsForEvent(event).find((r) => r.userId === bobId && r.type === "m.read");
  };
  const receipt = await waitUntil("alice to see bob's read receipt", () => bobsReceipt(alice));
  assert.equal(typeof receipt.data.ts, "number", "the server stamps the receipt with ts");

  // Receipts are room state a client needs on a fresh login too: the initial /sync must carry
  // them, also after a restart.
  await stopClient(alice);
  await node.restart();
  alice = await startClient(node.baseUrl, aliceCreds);
  await waitForMembership(alice, roomId, "join");
  await waitUntil("alice's initial sync after restart to carry bob's receipt", () => bobsReceipt(alice));
});
