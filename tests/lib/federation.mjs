// Several hearth-node peers federating through one real hearth-rendezvous relay on loopback,
// shared by the tests of one file; plus the waits and raw reads those tests compare servers by.

import { after, before, test } from "node:test";
import { startNode } from "./hearth-node.mjs";
import { startRelay } from "./relay.mjs";
import { registerUser, startClient, stopAllClients } from "./clients.mjs";
import { waitForMessage } from "./rooms.mjs";
import { waitUntil } from "./wait.mjs";

/** Per-test bound: federation adds relay hops, retries with backoff and restarts. */
const TEST_TIMEOUT_MS = 180_000;
/** "The other server sees it": a PDU crosses the relay in milliseconds, a retry after an
 * outage within the sender's backoff (0.5 s doubling), a missed event on catch-up. */
export const FEDERATION_WAIT_MS = 30_000;

/**
 * @typedef {object} Federation
 * @property {import("./relay.mjs").Relay} relay
 * @property {import("./hearth-node.mjs").HearthNode[]} nodes   A, B, C, ... in order
 * @property {() => Promise<void>} dispose   stop every node and the relay, remove their data
 */

/**
 * Starts the relay and `count` nodes with `--relay <its TCP address>`, each in its own temp data
 * dir, and waits until every node has reserved a slot at the relay.
 * @returns {Promise<Federation>}
 */
export async function startFederation(count = 3) {
  const relay = await startRelay();
  const nodes = [];
  try {
    // One at a time: a failure then names the node; each start takes well under a second.
    for (let i = 0; i < count; i++) {
      nodes.push(await startNode({ relays: [relay.address], waitForRelay: true }));
    }
  } catch (err) {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    await relay.dispose();
    throw err;
  }
  return {
    relay,
    nodes,
    async dispose() {
      const results = await Promise.allSettled(nodes.map((node) => node.stop()));
      await relay.dispose();
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
    },
  };
}

/**
 * Registers `before`/`after` hooks that start a federation of `count` nodes for the file's tests
 * and dispose of it, and returns the function that declares a test against it. Each test gets the
 * running federation; its clients are stopped afterwards whatever happens, and a failure prints
 * the relay's and every node's output.
 * @param {number} count
 * @returns {(name: string, body: (f: Federation) => Promise<void>) => void}
 */
export function federationSuite(count) {
  /** @type {Federation | undefined} */
  let federation;
  before(async () => {
    federation = await startFederation(count);
  });
  after(async () => {
    await federation?.dispose();
  });
  return (name, body) =>
    test(name, { timeout: TEST_TIMEOUT_MS }, async () => {
      if (!federation) throw new Error("the federation did not start (see the before hook)");
      const f = federation;
      try {
        await body(f);
      } catch (err) {
        const logs = [`--- relay ---\n${f.relay.log()}`];
        f.nodes.forEach((node, i) =>
          logs.push(`--- node ${"ABCDEFG"[i]} (${node.serverName}) ---\n${node.log()}`),
        );
        process.stderr.write(`--- output (${name}) ---\n${logs.join("\n")}\n`);
        throw err;
      } finally {
        await stopAllClients();
      }
    });
}

let userCounter = 0;

/**
 * Registers a fresh user (unique localpart across the file's tests) on `node` and starts a
 * syncing client for it. Returns the client and its credentials (to start it again later).
 */
export async function newUser(node, name, opts = {}) {
  userCounter += 1;
  const creds = await registerUser(node.baseUrl, `${name}${userCounter}`);
  const client = await startClient(node.baseUrl, creds, opts);
  return { client, creds };
}

/** Every event ID of a room as `client`'s server has it, by paging raw /messages backwards. */
export async function allEventIds(client, roomId, { pageSize = 50, maxPages = 100 } = {}) {
  const ids = [];
  let from = null;
  for (let page = 0; page < maxPages; page++) {
    const res = await client.createMessagesRequest(roomId, from, pageSize, "b");
    ids.push(...res.chunk.map((e) => e.event_id));
    if (!res.end || res.chunk.length === 0) return ids.sort();
    from = res.end;
  }
  throw new Error(`/messages did not reach the start of ${roomId} in ${maxPages} pages`);
}

/** The room's current state as `client`'s server has it (`/rooms/{id}/state`), as sorted
 * `type|state_key|event_id` lines: equal on two servers exactly when their states agree. */
export async function stateSummary(client, roomId) {
  const events = await client.roomState(roomId);
  return events.map((e) => `${e.type}|${e.state_key}|${e.event_id}`).sort();
}

/** Waits until `check(client)` holds on the server's raw answers, for every client. */
export function waitForAll(what, clients, check, opts = {}) {
  return Promise.all(
    clients.map((client) =>
      waitUntil(`${client.getUserId()}: ${what}`, () => check(client), {
        timeoutMs: FEDERATION_WAIT_MS,
        intervalMs: 250,
        ...opts,
      }),
    ),
  );
}

/**
 * `creator` makes a room and invites each of `others` by user ID; each sees the invite in its
 * own server's /sync and joins; then everyone sees everyone joined. Returns the room ID.
 */
export async function createRoomAcross(creator, others, createOpts = {}) {
  const { room_id: roomId } = await creator.createRoom({ name: "across peers", ...createOpts });
  const opts = { timeoutMs: FEDERATION_WAIT_MS };
  for (const invitee of others) {
    await creator.invite(roomId, invitee.getUserId());
    await waitUntil(
      `${invitee.getUserId()}'s invite`,
      () => invitee.getRoom(roomId)?.getMyMembership() === "invite",
      opts,
    );
    await invitee.joinRoom(roomId);
    await waitUntil(
      `${invitee.getUserId()} to be joined`,
      () => invitee.getRoom(roomId)?.getMyMembership() === "join",
      opts,
    );
  }
  await waitForEveryoneJoined(roomId, [creator, ...others]);
  return roomId;
}

/** Waits until each client sees every one of them joined to the room. */
export async function waitForEveryoneJoined(roomId, clients) {
  for (const viewer of clients) {
    for (const member of clients) {
      await waitUntil(
        `${viewer.getUserId()} to see ${member.getUserId()} joined`,
        () => viewer.getRoom(roomId)?.getMember(member.getUserId())?.membership === "join",
        { timeoutMs: FEDERATION_WAIT_MS },
      );
    }
  }
}

/** `from` sends `body`; every client in `to` sees it with the same event ID. */
export async function sendAndSee(from, roomId, body, to) {
  const { event_id: eventId } = await from.sendTextMessage(roomId, body);
  for (const viewer of to) {
    const seen = await waitForMessage(viewer, roomId, body, { timeoutMs: FEDERATION_WAIT_MS });
    if (seen.getId() !== eventId) {
      throw new Error(`${viewer.getUserId()} saw "${body}" as ${seen.getId()}, sent as ${eventId}`);
    }
  }
  return eventId;
}
