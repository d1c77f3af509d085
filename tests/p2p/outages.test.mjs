// Outages across three federating hearth-node peers: one peer goes away and comes back on the
// same data (what it missed reaches it, what its user sends right after reaches the others), and
// the relay itself restarts mid-conversation (nodes reconnect and re-reserve, queues retry).

import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { startClient, stopClient } from "../lib/clients.mjs";
import {
  FEDERATION_WAIT_MS,
  createRoomAcross,
  federationSuite,
  newUser,
  sendAndSee,
} from "../lib/federation.mjs";
import { waitForMembership, waitForMessage } from "../lib/rooms.mjs";
import { waitUntil } from "../lib/wait.mjs";

/** How long the conversation goes quiet while a peer is away. Long enough that
 * the senders' retries to the missing peer back off past 10 s (0.5 s doubling, from the last
 * message queued), so that a return noticed only at the next retry would miss CATCH_UP_MS. */
const QUIET_MS = 10_000;
/** How long the relay stays down after the last send: every sender has failed and backs off.
 * (Longer only waits for the nodes' own reconnect backoff, up to 30 s, before they reserve.) */
const RELAY_DOWN_MS = 2_000;
/** Once back, what was missed must arrive within this: the returning server announces itself
 * and the others' queues retry at once. */
const CATCH_UP_MS = 3_000;

const federationTest = federationSuite(3);
const wait = { timeoutMs: FEDERATION_WAIT_MS };

federationTest("a peer stops and restarts: it gets what it missed, is heard again", async (f) => {
  const [a, b, c] = f.nodes;
  const { client: alice } = await newUser(a, "alice");
  const { client: bob } = await newUser(b, "bob");
  const carolUser = await newUser(c, "carol");
  let carol = carolUser.client;
  const roomId = await createRoomAcross(alice, [bob, carol]);
  await sendAndSee(carol, roomId, "carol before the outage", [alice, bob]);

  await stopClient(carol);
  await c.halt();
  try {
    // A and B keep talking; each queues the events for C, which is unreachable.
    await sendAndSee(alice, roomId, "alice while C is down", [bob]);
    await sendAndSee(bob, roomId, "bob while C is down", [alice]);
    await sendAndSee(alice, roomId, "alice again while C is down", [bob]);
    await sleep(QUIET_MS);
  } finally {
    await c.resume(); // same data dir, same key, same peer ID; waits for the relay reservation
  }

  const back = Date.now();
  carol = await startClient(c.baseUrl, carolUser.creds);
  await waitForMembership(carol, roomId, "join");
  // Sent at once, maybe before C has caught up (its prev events then fork from A's and B's
  // latest): it still reaches both.
  const { event_id: backId } = await carol.sendTextMessage(roomId, "carol is back");
  const missed = ["alice while C is down", "bob while C is down", "alice again while C is down"];
  for (const body of missed) {
    await waitForMessage(carol, roomId, body, { timeoutMs: left(back + CATCH_UP_MS) });
  }
  for (const viewer of [alice, bob]) {
    const seen = await waitForMessage(viewer, roomId, "carol is back", wait);
    assert.equal(seen.getId(), backId);
  }
  await sendAndSee(alice, roomId, "welcome back", [bob, carol]);
});

federationTest("a peer back while the sender is away catches up from a third", async (f) => {
  const [a, b, c] = f.nodes;
  const aliceUser = await newUser(a, "alice");
  const { client: bob } = await newUser(b, "bob");
  const carolUser = await newUser(c, "carol");
  let alice = aliceUser.client;
  let carol = carolUser.client;
  const roomId = await createRoomAcross(alice, [bob, carol]);

  // C goes away; alice's message reaches B; then A goes away too, still holding it for C.
  await stopClient(carol);
  await c.halt();
  let cBack = false;
  try {
    await sendAndSee(alice, roomId, "alice while C is down", [bob]);
    await stopClient(alice);
    await a.halt();
    try {
      // C comes back. B has nothing queued for it: C asks B for the room's latest event
      // (timestamp_to_event) and fills the gap before it (get_missing_events).
      await c.resume();
      cBack = true;
      const back = Date.now();
      carol = await startClient(c.baseUrl, carolUser.creds);
      await waitForMessage(carol, roomId, "alice while C is down", {
        timeoutMs: left(back + CATCH_UP_MS),
      });
      await sendAndSee(carol, roomId, "carol heard it from B", [bob]);
    } finally {
      await a.resume();
    }
  } finally {
    if (!cBack) await c.resume();
  }
  alice = await startClient(a.baseUrl, aliceUser.creds);
  await waitForMessage(alice, roomId, "carol heard it from B", wait);
  await sendAndSee(alice, roomId, "alice is back too", [bob, carol]);
});

federationTest("the relay restarts mid-conversation: every message arrives", async (f) => {
  const { relay, nodes } = f;
  const [a, b, c] = nodes;
  const { client: alice } = await newUser(a, "alice");
  const { client: bob } = await newUser(b, "bob");
  const { client: carol } = await newUser(c, "carol");
  const everyone = [alice, bob, carol];
  const roomId = await createRoomAcross(alice, [bob, carol]);
  await sendAndSee(alice, roomId, "before the relay restart", [bob, carol]);

  const reservations = nodes.map((node) => node.reservations());
  await relay.stop();
  // Sent while no server can reach another: each lands in its sender's queue.
  const during = [];
  try {
    for (const from of everyone) {
      const body = `${from.getUserId()} while the relay is down`;
      await from.sendTextMessage(roomId, body);
      during.push(body);
    }
    await sleep(RELAY_DOWN_MS);
  } finally {
    await relay.start(); // same port, same key: the address the nodes were given
  }
  // Every node notices, reconnects (with backoff) and reserves again.
  await Promise.all(
    nodes.map((node, i) =>
      waitUntil(
        `node ${"ABC"[i]} to reserve at the restarted relay`,
        () => node.reservations() > reservations[i],
        { timeoutMs: FEDERATION_WAIT_MS },
      ),
    ),
  );
  // Each node, reserved again, retries its queue at once rather than at the end of a backoff.
  const back = Date.now();
  for (const viewer of everyone) {
    for (const body of during) {
      await waitForMessage(viewer, roomId, body, { timeoutMs: left(back + CATCH_UP_MS) });
    }
  }
  for (const from of everyone) {
    const others = everyone.filter((other) => other !== from);
    await sendAndSee(from, roomId, `${from.getUserId()} after the relay restart`, others);
  }
});

/** Milliseconds until `deadline` (at least 1: a wait then checks once and fails). */
function left(deadline) {
  return Math.max(deadline - Date.now(), 1);
}
