// End-to-end encryption with matrix-js-sdk's Rust crypto: alice and bob exchange megolm-encrypted
// messages both ways and decrypt them; the server only ever holds ciphertext.

import assert from "node:assert/strict";
import { registerUser, startClient } from "../lib/clients.mjs";
import { createSharedRoom, waitForMessage } from "../lib/rooms.mjs";
import { scenario } from "../lib/scenario.mjs";
import { waitUntil } from "../lib/wait.mjs";

const MEGOLM = "m.megolm.v1.aes-sha2";
// Key sharing takes several round trips (keys/query, keys/claim, sendToDevice, sync).
const DECRYPT_WAIT_MS = 30_000;

scenario("encrypted messages both ways", async (node) => {
  const aliceCreds = await registerUser(node.baseUrl, "alice");
  const bobCreds = await registerUser(node.baseUrl, "bob");
  const alice = await startClient(node.baseUrl, aliceCreds, { crypto: true });
  const bob = await startClient(node.baseUrl, bobCreds, { crypto: true });

  // Each client uploads its device keys after its first sync. Wait until both are on the server,
  // so that when one starts tracking the other (on the join) it finds the device at once.
  await waitForDeviceKeys(alice, bobCreds);
  await waitForDeviceKeys(bob, aliceCreds);

  const roomId = await createSharedRoom(alice, bob, {
    initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: MEGOLM } }],
  });
  assert.ok(await alice.getCrypto().isEncryptionEnabledInRoom(roomId));
  await waitUntil("bob's crypto to know the room is encrypted", () =>
    bob.getCrypto().isEncryptionEnabledInRoom(roomId),
  );
  // The Rust crypto shares the room key only with devices it knows: make each side know the
  // other's device (unverified devices do receive keys by default).
  await waitForKnownDevice(alice, bobCreds);
  await waitForKnownDevice(bob, aliceCreds);

  await sendAndDecrypt(alice, bob, roomId, "a secret from alice");
  await sendAndDecrypt(bob, alice, roomId, "a secret reply from bob");
});

/** `from` sends `body`; `to` receives it encrypted and decrypts it; the server has ciphertext. */
async function sendAndDecrypt(from, to, roomId, body) {
  const { event_id: eventId } = await from.sendTextMessage(roomId, body);
  const event = await waitForMessage(to, roomId, body, { timeoutMs: DECRYPT_WAIT_MS });
  assert.equal(event.getId(), eventId);
  assert.ok(event.isEncrypted(), "arrived as m.room.encrypted");
  assert.equal(event.getWireContent().algorithm, MEGOLM);
  assert.equal(event.isDecryptionFailure(), false);
  assert.equal(event.getSender(), from.getUserId());

  const raw = await to.fetchRoomEvent(roomId, eventId);
  assert.equal(raw.type, "m.room.encrypted");
  assert.ok(!JSON.stringify(raw).includes(body), "the server's copy holds no plaintext");
}

/** Polls POST /keys/query until `creds`' device keys are on the server. */
function waitForDeviceKeys(client, creds) {
  return waitUntil(
    `${creds.userId}'s device keys on the server`,
    async () => {
      const res = await client.downloadKeysForUsers([creds.userId]);
      return res.device_keys?.[creds.userId]?.[creds.deviceId];
    },
    { intervalMs: 250 },
  );
}

/** Waits until `client`'s crypto knows `creds`' device. */
function waitForKnownDevice(client, creds) {
  return waitUntil(
    `${client.getUserId()} to know ${creds.userId}'s device ${creds.deviceId}`,
    async () => {
      const devices = await client.getCrypto().getUserDeviceInfo([creds.userId], true);
      return devices.get(creds.userId)?.has(creds.deviceId);
    },
    { intervalMs: 250 },
  );
}
