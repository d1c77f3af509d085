// Divergence and healing across three federating hearth-node peers: two servers each change the
// room's state while they cannot reach each other (A the topic and name, B a power level and the
// topic), so the room's history forks; once both are back and a message from each side joins
// the branches, A, B and C resolve the same state and hold the same events.

import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { startClient, stopClient } from "../lib/clients.mjs";
import {
  FEDERATION_WAIT_MS,
  allEventIds,
  createRoomAcross,
  federationSuite,
  newUser,
  sendAndSee,
  stateSummary,
} from "../lib/federation.mjs";
import { waitForMembership } from "../lib/rooms.mjs";
import { waitUntil } from "../lib/wait.mjs";

const federationTest = federationSuite(3);
const wait = { timeoutMs: FEDERATION_WAIT_MS };
const TOPIC_A = "changed on A while B was away";
const TOPIC_B = "changed on B while A was away";

federationTest("concurrent state changes on two peers converge on all three", async (f) => {
  const [a, b, c] = f.nodes;
  const aliceUser = await newUser(a, "alice");
  const bobUser = await newUser(b, "bob");
  const carolUser = await newUser(c, "carol");
  let alice = aliceUser.client;
  let bob = bobUser.client;
  let carol = carolUser.client;
  const [bobId, carolId] = [bob, carol].map((client) => client.getUserId());
  const roomId = await createRoomAcross(alice, [bob, carol]);

  await alice.setPowerLevel(roomId, bobId, 100);
  for (const viewer of [bob, carol]) {
    await waitUntil(
      `${viewer.getUserId()} to see bob at power 100`,
      () => viewer.getRoom(roomId).getMember(bobId)?.powerLevel === 100,
      wait,
    );
  }

  // B goes away; alice changes the topic and the name; C sees them, B cannot.
  await stopClient(bob);
  await b.halt();
  await alice.setRoomTopic(roomId, TOPIC_A);
  await alice.setRoomName(roomId, "renamed on A");
  await waitUntil(
    "carol to see the new topic and name",
    () => topicOf(carol, roomId) === TOPIC_A && carol.getRoom(roomId).name === "renamed on A",
    wait,
  );

  // A and C go away too (with C up, B would catch up from it on its return); B comes back
  // alone and bob, who never saw A's changes, changes the power levels and the topic: a branch
  // concurrent with A's, and the topic is changed on both.
  await stopClient(alice);
  await a.halt();
  await stopClient(carol);
  await c.halt();
  await b.resume();
  bob = await startClient(b.baseUrl, bobUser.creds);
  await waitForMembership(bob, roomId, "join");
  assert.equal(
    bob.getRoom(roomId).currentState.getStateEvents("m.room.topic", ""),
    null,
    "B missed the topic change",
  );
  await bob.setPowerLevel(roomId, carolId, 50);
  await bob.setRoomTopic(roomId, TOPIC_B);

  // A and C come back; a message from each side has both branches' tips among its prev events
  // once the queues (and catch-up) have crossed.
  await a.resume();
  await c.resume();
  alice = await startClient(a.baseUrl, aliceUser.creds);
  carol = await startClient(c.baseUrl, carolUser.creds);
  await waitForMembership(alice, roomId, "join");
  await waitForMembership(carol, roomId, "join");
  await sendAndSee(alice, roomId, "alice after the split", [bob, carol]);
  await sendAndSee(bob, roomId, "bob after the split", [alice, carol]);

  const everyone = [alice, bob, carol];
  // Converged: the same resolved state on all three. The name is A's (unconflicted), the power
  // levels B's (unconflicted), and the topic, set on both branches, B's: state resolution v2
  // orders the conflicted topics by their power levels in the mainline, and B's follows bob's
  // power level change, which comes after every power level event A's topic knows of.
  let states = [];
  await waitUntil(
    "A, B and C to hold the same room state",
    async () => {
      states = await Promise.all(everyone.map((client) => stateSummary(client, roomId)));
      return states.every((state) => isDeepStrictEqual(state, states[0]));
    },
    { ...wait, intervalMs: 500, describe: () => describeDifferences(states) },
  );
  for (const client of everyone) {
    const topic = await client.getStateEvent(roomId, "m.room.topic", "");
    assert.equal(topic.topic, TOPIC_B, `${client.getUserId()}'s topic`);
    const name = await client.getStateEvent(roomId, "m.room.name", "");
    assert.equal(name.name, "renamed on A", `${client.getUserId()}'s name`);
    const power = await client.getStateEvent(roomId, "m.room.power_levels", "");
    assert.equal(power.users[carolId], 50, `${client.getUserId()}'s power levels`);
    // (alice created the room: in room version 12 creators stand above power levels.)
    assert.equal(power.users[bobId], 100);
  }
  // ... and the same events. A server lists in /messages what it has in its timeline: A the
  // whole room, B and C from their joins on (they hold the earlier events as the state and
  // auth chain of their join, not in their timelines). So: each later joiner's listing is
  // contained in the earlier one's, and every server serves every event any of them lists.
  let listings = [];
  await waitUntil(
    "C's events on B and B's on A",
    async () => {
      listings = await Promise.all(everyone.map((client) => allEventIds(client, roomId)));
      const [onA, onB, onC] = listings;
      return onC.every((id) => onB.includes(id)) && onB.every((id) => onA.includes(id));
    },
    { ...wait, intervalMs: 500, describe: () => describeDifferences(listings) },
  );
  const [onA, , onC] = listings;
  const carolsJoin = carol.getRoom(roomId).currentState.getStateEvents("m.room.member", carolId);
  assert.ok(onC.includes(carolsJoin.getId()), "C lists the room from carol's join on");
  const union = [...new Set(listings.flat())];
  assert.equal(union.length, onA.length);
  for (const client of everyone) {
    for (const eventId of union) {
      const event = await client.fetchRoomEvent(roomId, eventId);
      assert.equal(event.event_id, eventId, `${client.getUserId()}'s server serves ${eventId}`);
    }
  }
});

/** The room's topic in `client`'s model. */
function topicOf(client, roomId) {
  const event = client.getRoom(roomId).currentState.getStateEvents("m.room.topic", "");
  return event?.getContent().topic;
}

/** What the first server has that another lacks and the reverse, per server. */
function describeDifferences(lists) {
  if (lists.length === 0) return "nothing read yet";
  return lists
    .map((list, i) => {
      const missing = lists[0].filter((x) => !list.includes(x));
      const extra = list.filter((x) => !lists[0].includes(x));
      const lacks = JSON.stringify(missing);
      return `${"ABC"[i]}: ${list.length} entries, lacks ${lacks}, extra ${JSON.stringify(extra)}`;
    })
    .join("; ");
}
