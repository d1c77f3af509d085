// Room-level helpers over matrix-js-sdk's in-memory model, each wait bounded (lib/wait.mjs).

import { sdk } from "./sdk.mjs";
import { waitUntil } from "./wait.mjs";

/** The m.room.message events in a room's live timeline, oldest first. After decryption the sdk
 * reports the clear type, so this includes decrypted messages too. */
export function messages(room) {
  return room.getLiveTimeline().getEvents().filter((e) => e.getType() === "m.room.message");
}

/** The bodies of those messages, oldest first. */
export function bodies(room) {
  return messages(room).map((e) => e.getContent().body);
}

/** Waits until `client` knows `roomId` with the given membership ("invite", "join", ...). */
export function waitForMembership(client, roomId, membership) {
  return waitUntil(
    `${client.getUserId()} to be "${membership}" in ${roomId}`,
    () => {
      const room = client.getRoom(roomId);
      return room?.getMyMembership() === membership && room;
    },
    { describe: () => `membership ${client.getRoom(roomId)?.getMyMembership() ?? "(no room)"}` },
  );
}

/** Waits until `client` sees `userId` with `membership` in the room's state. */
export function waitForMember(client, roomId, userId, membership) {
  return waitUntil(
    `${client.getUserId()} to see ${userId} "${membership}" in ${roomId}`,
    () => client.getRoom(roomId)?.getMember(userId)?.membership === membership,
    { describe: () => `${client.getRoom(roomId)?.getMember(userId)?.membership ?? "not a member"}` },
  );
}

/**
 * Waits until a message with this body is in `client`'s live timeline of the room; returns it.
 * For encrypted rooms it also waits for decryption (the body is only there once decrypted), and
 * the timeout message says whether the event failed to decrypt.
 */
export function waitForMessage(client, roomId, body, opts = {}) {
  /** Each encrypted event's decryption state, to tell "never arrived" from "undecryptable". */
  const decryptionState = (e) => {
    if (e.isDecryptionFailure()) return `failed: ${e.decryptionFailureReason}`;
    if (e.isBeingDecrypted()) return "decrypting";
    return e.getType();
  };
  const encryptedSeen = () =>
    client
      .getRoom(roomId)
      ?.getLiveTimeline()
      .getEvents()
      .filter((e) => e.isEncrypted())
      .map((e) => `${e.getId()}: ${decryptionState(e)}`)
      .join(", ");
  return waitUntil(
    `${client.getUserId()} to see message "${body}" in ${roomId}`,
    () => {
      const room = client.getRoom(roomId);
      return room && messages(room).find((e) => e.getContent().body === body);
    },
    {
      ...opts,
      describe: () => {
        const room = client.getRoom(roomId);
        if (!room) return "room unknown";
        return `bodies ${JSON.stringify(bodies(room))}; encrypted events [${encryptedSeen()}]`;
      },
    },
  );
}

/**
 * alice creates a room (with extra createRoom options) and invites bob; bob sees the invite
 * through /sync and joins; both then see bob joined. Returns the room ID.
 */
export async function createSharedRoom(alice, bob, createOpts = {}) {
  const { room_id: roomId } = await alice.createRoom({ name: "hearth test room", ...createOpts });
  await alice.invite(roomId, bob.getUserId());
  await waitForMembership(bob, roomId, "invite");
  await bob.joinRoom(roomId);
  await waitForMembership(bob, roomId, "join");
  await waitForMember(alice, roomId, bob.getUserId(), "join");
  return roomId;
}

/**
 * Paginates the live timeline back to the room's creation with `client.scrollback`, as a client
 * scrolling up does; bounded in pages and, through the test timeout, in time.
 */
export async function scrollbackToStart(client, room, { pageSize = 10, maxPages = 100 } = {}) {
  for (let page = 0; page < maxPages; page++) {
    // The sdk sets the token to null when /messages returns no `end` or an empty chunk.
    if (room.oldState.paginationToken === null) return;
    await client.scrollback(room, pageSize);
  }
  throw new Error(`did not reach the start of ${room.roomId} in ${maxPages} pages`);
}

/**
 * Reads a room's whole history through raw /messages (createMessagesRequest), newest first from
 * the end of the room, following `end` tokens. Returns the events oldest first.
 */
export async function fetchHistory(client, roomId, { pageSize = 7, maxPages = 200 } = {}) {
  const events = [];
  let from = null; // no `from`: start at the end of the room (allowed since spec v1.3)
  for (let page = 0; page < maxPages; page++) {
    const res = await client.createMessagesRequest(roomId, from, pageSize, sdk.Direction.Backward);
    events.push(...res.chunk);
    if (!res.end || res.chunk.length === 0) return events.reverse();
    from = res.end;
  }
  throw new Error(`/messages did not reach the start of ${roomId} in ${maxPages} pages`);
}
