// Three hearth-node peers (A, B, C) federating through a real hearth-rendezvous on loopback,
// driven by matrix-js-sdk: a room across all three (invites, joins, messages every way, typing,
// receipts), and an encrypted room across two (Rust crypto on both ends).

import assert from "node:assert/strict";
import { sdk } from "../lib/sdk.mjs";
import {
  FEDERATION_WAIT_MS,
  createRoomAcross,
  federationSuite,
  newUser,
  sendAndSee,
} from "../lib/federation.mjs";
import { waitForMember, waitForMembership, waitForMessage } from "../lib/rooms.mjs";
import { waitUntil } from "../lib/wait.mjs";

const federationTest = federationSuite(3);
const wait = { timeoutMs: FEDERATION_WAIT_MS };

federationTest("three peers share a room: invites, messages, typing, receipts", async (f) => {
  const [a, b, c] = f.nodes;
  const { client: alice } = await newUser(a, "alice");
  const { client: bob } = await newUser(b, "bob");
  const { client: carol } = await newUser(c, "carol");
  assert.ok(bob.getUserId().endsWith(`:${b.serverName}`));
  assert.ok(carol.getUserId().endsWith(`:${c.serverName}`));

  // Invites by user ID reach the invitees' own servers (invite v2) and their /sync; the joins
  // go through alice's server (make_join/send_join); then everyone sees everyone joined.
  const roomId = await createRoomAcross(alice, [bob, carol]);
  assert.equal(bob.getRoom(roomId).name, "across peers", "bob's server has the room's state");
  assert.equal(carol.getRoom(roomId).name, "across peers", "carol's server has it too");

  // Every sender to every other member: six directions, the same event ID everywhere.
  const everyone = [alice, bob, carol];
  for (const from of everyone) {
    const others = everyone.filter((other) => other !== from);
    await sendAndSee(from, roomId, `hello from ${from.getUserId()}`, others);
  }

  // Typing crosses as an m.typing EDU, to every other server in the room.
  await alice.sendTyping(roomId, true, 20_000);
  for (const viewer of [bob, carol]) {
    await waitUntil(
      `${viewer.getUserId()} to see alice typing`,
      () => viewer.getRoom(roomId).getMember(alice.getUserId())?.typing === true,
      wait,
    );
  }
  await alice.sendTyping(roomId, false);
  for (const viewer of [bob, carol]) {
    await waitUntil(
      `${viewer.getUserId()} to see alice stop typing`,
      () => viewer.getRoom(roomId).getMember(alice.getUserId())?.typing === false,
      wait,
    );
  }
  await carol.sendTyping(roomId, true, 20_000);
  await waitUntil(
    "alice to see carol typing",
    () => alice.getRoom(roomId).getMember(carol.getUserId())?.typing === true,
    wait,
  );

  // bob reads alice's message: the m.receipt EDU reaches A and C.
  const alicesMessage = await waitForMessage(bob, roomId, `hello from ${alice.getUserId()}`);
  await bob.sendReadReceipt(alicesMessage, sdk.ReceiptType.Read);
  for (const viewer of [alice, carol]) {
    await waitUntil(
      `${viewer.getUserId()} to see bob's read receipt`,
      () => {
        const receipt = viewer.getRoom(roomId).getReadReceiptForUserId(bob.getUserId(), true);
        return receipt?.eventId === alicesMessage.getId();
      },
      wait,
    );
  }
});

const MEGOLM = "m.megolm.v1.aes-sha2";

federationTest("an encrypted room across two peers: each decrypts the other's", async (f) => {
  const [a, b] = f.nodes;
  const { client: alice, creds: aliceCreds } = await newUser(a, "alice", { crypto: true });
  const { client: bob, creds: bobCreds } = await newUser(b, "bob", { crypto: true });
  // Each side's device keys, fetched across servers (federation /user/keys/query).
  await waitForDeviceKeys(alice, bobCreds);
  await waitForDeviceKeys(bob, aliceCreds);

  const { room_id: roomId } = await alice.createRoom({
    name: "secret across peers",
    initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: MEGOLM } }],
  });
  await alice.invite(roomId, bob.getUserId());
  await waitUntil("bob's invite", () => bob.getRoom(roomId)?.getMyMembership() === "invite", wait);
  await bob.joinRoom(roomId);
  await waitForMembership(bob, roomId, "join");
  await waitForMember(alice, roomId, bob.getUserId(), "join");
  await waitUntil(
    "bob's crypto to know the room is encrypted",
    () => bob.getCrypto().isEncryptionEnabledInRoom(roomId),
    wait,
  );
  await waitForKnownDevice(alice, bobCreds);
  await waitForKnownDevice(bob, aliceCreds);

  // Room keys travel as to-device messages (m.direct_to_device EDUs) across the servers.
  await sendAndDecrypt(alice, bob, roomId, "a secret from alice on A");
  await sendAndDecrypt(bob, alice, roomId, "a secret reply from bob on B");
});

async function sendAndDecrypt(from, to, roomId, body) {
  const { event_id: eventId } = await from.sendTextMessage(roomId, body);
  const event = await waitForMessage(to, roomId, body, wait);
  assert.equal(event.getId(), eventId);
  assert.ok(event.isEncrypted(), "arrived as m.room.encrypted");
  assert.equal(event.getWireContent().algorithm, MEGOLM);
  assert.equal(event.isDecryptionFailure(), false);
  const raw = await to.fetchRoomEvent(roomId, eventId);
  assert.equal(raw.type, "m.room.encrypted");
  assert.ok(!JSON.stringify(raw).includes(body), "the receiving server's copy holds no plaintext");
}

function waitForDeviceKeys(client, creds) {
  return waitUntil(
    `${creds.userId}'s device keys through ${client.getUserId()}'s server`,
    async () => {
      const res = await client.downloadKeysForUsers([creds.userId]);
      return res.device_keys?.[creds.userId]?.[creds.deviceId];
    },
    { ...wait, intervalMs: 250 },
  );
}

function waitForKnownDevice(client, creds) {
  return waitUntil(
    `${client.getUserId()} to know ${creds.userId}'s device ${creds.deviceId}`,
    async () => {
      const devices = await client.getCrypto().getUserDeviceInfo([creds.userId], true);
      return devices.get(creds.userId)?.has(creds.deviceId);
    },
    { ...wait, intervalMs: 250 },
  );
}
