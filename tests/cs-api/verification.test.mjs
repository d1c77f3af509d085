// What matrix-js-sdk's Rust crypto needs from the server beyond encrypted messages:
// cross-signing keys (POST /keys/device_signing/upload, /keys/signatures/upload, served back by
// /keys/query), SAS (emoji) verification between two users over an encrypted DM room, and
// server-side key backup (/room_keys/version, /room_keys/keys) restored on a new device.

import assert from "node:assert/strict";
import { PASSWORD, apiClient, registerUser, startClient } from "../lib/clients.mjs";
import { createSharedRoom, waitForMessage } from "../lib/rooms.mjs";
import { scenario } from "../lib/scenario.mjs";
import { waitUntil, withTimeout } from "../lib/wait.mjs";
import "../lib/sdk.mjs"; // polyfill before the sdk's crypto-api module below
import {
  CrossSigningKey,
  CryptoEvent,
  VerificationPhase,
  VerifierEvent,
} from "matrix-js-sdk/lib/crypto-api/index.js";

const MEGOLM = "m.megolm.v1.aes-sha2";
const ENCRYPTED_ROOM = {
  initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: MEGOLM } }],
};
/** Each step of key sharing, verification or backup takes several round trips and syncs. */
const STEP_WAIT_MS = 30_000;

scenario(
  "cross-signing, then SAS verification between alice and bob",
  async (node) => {
    const aliceCreds = await registerUser(node.baseUrl, "alice");
    const bobCreds = await registerUser(node.baseUrl, "bob");
    const alice = await startClient(node.baseUrl, aliceCreds, { crypto: true });
    const bob = await startClient(node.baseUrl, bobCreds, { crypto: true });

    // 1. Cross-signing: both publish master, self-signing and user-signing keys.
    await bootstrapCrossSigning(alice, "alice");
    await bootstrapCrossSigning(bob, "bob");
    const keyIds = new Map();
    for (const [client, creds] of [[alice, aliceCreds], [bob, bobCreds]]) {
      const status = await client.getCrypto().getCrossSigningStatus();
      assert.equal(status.publicKeysOnDevice, true, `${creds.userId}: public keys on device`);
      assert.deepEqual(status.privateKeysCachedLocally, {
        masterKey: true,
        selfSigningKey: true,
        userSigningKey: true,
      });
      assert.equal(await client.getCrypto().isCrossSigningReady(), true);
      keyIds.set(creds.userId, await assertCrossSigningOnServer(client, creds));
    }
    // Each sees the other's master key (but not the other's user-signing key, which /keys/query
    // only returns to its owner).
    await waitForMasterKey(alice, bobCreds.userId, keyIds.get(bobCreds.userId).master);
    await waitForMasterKey(bob, aliceCreds.userId, keyIds.get(aliceCreds.userId).master);
    const unverified = await alice.getCrypto().getUserVerificationStatus(bobCreds.userId);
    assert.equal(unverified.isCrossSigningVerified(), false, "bob is not verified before SAS");

    // 2. SAS verification in an encrypted DM room.
    const roomId = await createSharedRoom(alice, bob, { is_direct: true, ...ENCRYPTED_ROOM });
    await waitUntil("bob's crypto to know the room is encrypted", () =>
      bob.getCrypto().isEncryptionEnabledInRoom(roomId),
    );
    await waitForKnownDevice(alice, bobCreds);
    await waitForKnownDevice(bob, aliceCreds);

    const bobReceived = new Promise((resolve) =>
      bob.on(CryptoEvent.VerificationRequestReceived, resolve),
    );
    const aliceRequest = await withTimeout(
      "alice's requestVerificationDM",
      alice.getCrypto().requestVerificationDM(bobCreds.userId, roomId),
      STEP_WAIT_MS,
    );
    const bobRequest = await withTimeout(
      "bob to receive the verification request (CryptoEvent.VerificationRequestReceived)",
      bobReceived,
      STEP_WAIT_MS,
    );
    assert.equal(bobRequest.otherUserId, aliceCreds.userId);
    assert.equal(bobRequest.roomId, roomId);
    await withTimeout("bob's accept()", bobRequest.accept(), STEP_WAIT_MS);
    await waitForPhase("alice", aliceRequest, VerificationPhase.Ready);

    // Alice starts SAS; bob's request moves to Started with a verifier of its own.
    const aliceVerifier = await withTimeout(
      'alice\'s startVerification("m.sas.v1")',
      aliceRequest.startVerification("m.sas.v1"),
      STEP_WAIT_MS,
    );
    await waitForPhase("bob", bobRequest, VerificationPhase.Started);
    const bobVerifier = await waitUntil("bob's request to have a verifier", () => bobRequest.verifier);

    const aliceSas = nextShowSas(aliceVerifier);
    const bobSas = nextShowSas(bobVerifier);
    // verify() resolves only when the whole exchange is done (after both confirm).
    const aliceDone = aliceVerifier.verify();
    const bobDone = bobVerifier.verify();
    aliceDone.catch(() => {}); // awaited below, with a bound; avoid an unhandled rejection meanwhile
    bobDone.catch(() => {});
    const [aliceShown, bobShown] = await withTimeout(
      "both sides to show the SAS (VerifierEvent.ShowSas)",
      Promise.all([aliceSas, bobSas]),
      STEP_WAIT_MS,
    );
    const emoji = (shown) => shown.sas.emoji?.map(([symbol, name]) => `${symbol} ${name}`);
    assert.equal(aliceShown.sas.emoji?.length, 7, "seven emoji");
    assert.deepEqual(emoji(aliceShown), emoji(bobShown), "both sides show the same emoji");
    await withTimeout(
      "both sides to confirm the SAS",
      Promise.all([aliceShown.confirm(), bobShown.confirm()]),
      STEP_WAIT_MS,
    );
    await withTimeout("both verifiers to finish", Promise.all([aliceDone, bobDone]), STEP_WAIT_MS);
    await waitForPhase("alice", aliceRequest, VerificationPhase.Done);
    await waitForPhase("bob", bobRequest, VerificationPhase.Done);

    // Having verified, each signed the other's master key with its user-signing key and uploaded
    // the signature (/keys/signatures/upload): the other user is now cross-signing verified.
    await waitForUserVerified(alice, bobCreds.userId);
    await waitForUserVerified(bob, aliceCreds.userId);
    const device = await alice.getCrypto().getDeviceVerificationStatus(bobCreds.userId, bobCreds.deviceId);
    assert.equal(device?.crossSigningVerified, true, "bob's device is cross-signing verified for alice");
    // The signature is on the server: bob's master key as alice sees it carries alice's
    // user-signing key's signature.
    const aliceUsk = keyIds.get(aliceCreds.userId).user_signing;
    await waitUntil(
      "the server to serve bob's master key signed by alice's user-signing key",
      async () => {
        const res = await alice.downloadKeysForUsers([bobCreds.userId]);
        const sigs = res.master_keys?.[bobCreds.userId]?.signatures?.[aliceCreds.userId];
        return sigs?.[`ed25519:${aliceUsk}`];
      },
      { timeoutMs: STEP_WAIT_MS, intervalMs: 250 },
    );
  },
  { timeoutMs: 180_000 },
);

scenario(
  "key backup: upload, then restore on a new device",
  async (node) => {
    const aliceCreds = await registerUser(node.baseUrl, "alice");
    const bobCreds = await registerUser(node.baseUrl, "bob");
    const alice = await startClient(node.baseUrl, aliceCreds, { crypto: true });
    const bob = await startClient(node.baseUrl, bobCreds, { crypto: true });

    // 3. A backup version on the server, with alice's room keys in it.
    await withTimeout("alice's resetKeyBackup", alice.getCrypto().resetKeyBackup(), STEP_WAIT_MS);
    const version = await waitUntil(
      "alice's active backup version",
      () => alice.getCrypto().getActiveSessionBackupVersion(),
      { timeoutMs: STEP_WAIT_MS },
    );
    const privateKey = await alice.getCrypto().getSessionBackupPrivateKey();
    assert.ok(privateKey instanceof Uint8Array && privateKey.length === 32, "a 32-byte backup key");

    const roomId = await createSharedRoom(alice, bob, ENCRYPTED_ROOM);
    await waitForKnownDevice(alice, bobCreds);
    const body = "a secret alice wants back later";
    const { event_id: eventId } = await alice.sendTextMessage(roomId, body);
    await waitForMessage(bob, roomId, body, { timeoutMs: STEP_WAIT_MS });

    // The backup loop uploads the new megolm session after a random delay of up to 10 s.
    const info = await waitUntil(
      `GET /room_keys/version to report version ${version} with count > 0`,
      async () => {
        const info = await rawGet(node.baseUrl, aliceCreds.accessToken, "/_matrix/client/v3/room_keys/version");
        return info.version === version && info.count > 0 && info;
      },
      { timeoutMs: STEP_WAIT_MS, intervalMs: 500 },
    );
    assert.equal(info.algorithm, "m.megolm_backup.v1.curve25519-aes-sha2");
    assert.equal(typeof info.etag, "string");
    assert.equal(typeof info.auth_data?.public_key, "string");

    // A new device of alice: log in again with her password.
    const login = await apiClient(node.baseUrl).loginRequest({
      type: "m.login.password",
      identifier: { type: "m.id.user", user: "alice" },
      password: PASSWORD,
    });
    assert.notEqual(login.device_id, aliceCreds.deviceId, "a new device");
    const alice2 = await startClient(
      node.baseUrl,
      { userId: login.user_id, accessToken: login.access_token, deviceId: login.device_id },
      { crypto: true },
    );
    // The message is in the new device's history, but it has no key for it yet.
    await waitUntil("alice's new device to have the encrypted event", () =>
      alice2.getRoom(roomId)?.findEventById(eventId),
    );
    await waitUntil("the event to fail decryption on the new device before the restore", () =>
      alice2.getRoom(roomId).findEventById(eventId).isDecryptionFailure(),
    );

    // Without secret storage, the backup decryption key comes from the first device directly.
    await alice2.getCrypto().storeSessionBackupPrivateKey(privateKey, version);
    const result = await withTimeout(
      "restoreKeyBackup on the new device",
      alice2.getCrypto().restoreKeyBackup(),
      STEP_WAIT_MS,
    );
    assert.ok(result.total >= 1, `keys found in the backup: ${JSON.stringify(result)}`);
    assert.ok(result.imported >= 1, `keys imported: ${JSON.stringify(result)}`);

    // The sdk retries undecryptable events when keys arrive.
    const event = await waitForMessage(alice2, roomId, body, { timeoutMs: STEP_WAIT_MS });
    assert.equal(event.getId(), eventId);
    assert.ok(event.isEncrypted());
  },
  { timeoutMs: 180_000 },
);

/**
 * Bootstraps cross-signing. The sdk passes our callback a `makeRequest(auth)`; hearth-node needs
 * no UIA for a user's first key upload, so try without auth and answer a 401 with the password
 * stage (in the server's session) if one comes. Returns whether the server asked for UIA.
 */
async function bootstrapCrossSigning(client, localpart) {
  let uiaAsked = false;
  await withTimeout(
    `${client.getUserId()}'s bootstrapCrossSigning`,
    client.getCrypto().bootstrapCrossSigning({
      authUploadDeviceSigningKeys: async (makeRequest) => {
        try {
          await makeRequest(null);
        } catch (err) {
          if (err.httpStatus !== 401 || !err.data?.flows) throw err;
          uiaAsked = true;
          await makeRequest({
            type: "m.login.password",
            identifier: { type: "m.id.user", user: localpart },
            password: PASSWORD,
            session: err.data.session,
          });
        }
      },
    }),
    STEP_WAIT_MS,
  );
  return uiaAsked;
}

/**
 * /keys/query returns the user's own three cross-signing keys with their usages, equal to the
 * ones the client made, the self-signing and user-signing keys signed by the master key, and
 * (after /keys/signatures/upload) the device signed by the self-signing key. Returns the key IDs
 * (unpadded base64 public keys).
 */
const LOCAL_KEY = {
  master: CrossSigningKey.Master,
  self_signing: CrossSigningKey.SelfSigning,
  user_signing: CrossSigningKey.UserSigning,
};
async function assertCrossSigningOnServer(client, creds) {
  const { userId, deviceId } = creds;
  const res = await client.downloadKeysForUsers([userId]);
  const ids = {};
  for (const [field, usage] of [
    ["master_keys", "master"],
    ["self_signing_keys", "self_signing"],
    ["user_signing_keys", "user_signing"],
  ]) {
    const key = res[field]?.[userId];
    assert.ok(key, `${userId}'s ${usage} key served by /keys/query: ${JSON.stringify(res)}`);
    assert.deepEqual(key.usage, [usage]);
    assert.equal(key.user_id, userId);
    const keyIds = Object.keys(key.keys);
    assert.equal(keyIds.length, 1, `one ${usage} key`);
    ids[usage] = key.keys[keyIds[0]];
    assert.equal(keyIds[0], `ed25519:${ids[usage]}`);
    const local = await client.getCrypto().getCrossSigningKeyId(LOCAL_KEY[usage]);
    assert.equal(ids[usage], local, `the server's ${usage} key is the one ${userId} made`);
  }
  for (const usage of ["self_signing", "user_signing"]) {
    const sigs = res[`${usage}_keys`][userId].signatures?.[userId];
    assert.ok(sigs?.[`ed25519:${ids.master}`], `${usage} key signed by the master key`);
  }
  // bootstrapCrossSigning also signs the device with the self-signing key (/keys/signatures/upload).
  await waitUntil(
    `${userId}'s device signed by the self-signing key on the server`,
    async () => {
      const q = await client.downloadKeysForUsers([userId]);
      const device = q.device_keys?.[userId]?.[deviceId];
      return device?.signatures?.[userId]?.[`ed25519:${ids.self_signing}`];
    },
    { timeoutMs: STEP_WAIT_MS, intervalMs: 250 },
  );
  return ids;
}

/** Waits until `client` gets `userId`'s master key `masterKey` from /keys/query. */
async function waitForMasterKey(client, userId, masterKey) {
  await waitUntil(
    `${client.getUserId()} to get ${userId}'s master key from /keys/query`,
    async () => {
      const res = await client.downloadKeysForUsers([userId]);
      const key = Object.values(res.master_keys?.[userId]?.keys ?? {})[0];
      // The user-signing key only concerns its owner: never served to others.
      assert.equal(res.user_signing_keys?.[userId], undefined, "no user-signing key for others");
      return key === masterKey;
    },
    { timeoutMs: STEP_WAIT_MS, intervalMs: 250 },
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
    { timeoutMs: STEP_WAIT_MS, intervalMs: 250 },
  );
}

const PHASES = Object.fromEntries(
  Object.entries(VerificationPhase).filter(([, v]) => typeof v === "number").map(([k, v]) => [v, k]),
);

/** Waits for a verification request's phase; a cancellation shows in the timeout message. */
function waitForPhase(who, request, phase) {
  return waitUntil(
    `${who}'s verification request to reach phase ${PHASES[phase]}`,
    () => {
      if (request.phase === VerificationPhase.Cancelled && phase !== VerificationPhase.Cancelled) {
        throw new Error(`cancelled: ${request.cancellationCode} by ${request.cancellingUserId}`);
      }
      return request.phase === phase;
    },
    {
      timeoutMs: STEP_WAIT_MS,
      describe: () =>
        `phase ${PHASES[request.phase]}` +
        (request.cancellationCode ? ` (${request.cancellationCode})` : ""),
    },
  );
}

/** The verifier's next ShowSas payload (or the current one if it is already showing). */
function nextShowSas(verifier) {
  const current = verifier.getShowSasCallbacks();
  if (current) return Promise.resolve(current);
  return new Promise((resolve) => verifier.once(VerifierEvent.ShowSas, resolve));
}

/** Waits until `client` considers `userId` cross-signing verified. */
function waitForUserVerified(client, userId) {
  return waitUntil(
    `${client.getUserId()} to see ${userId} as cross-signing verified`,
    async () => (await client.getCrypto().getUserVerificationStatus(userId)).isCrossSigningVerified(),
    { timeoutMs: STEP_WAIT_MS, intervalMs: 250 },
  );
}

/** A plain authenticated GET, as JSON; throws with the status and body on a non-2xx answer. */
async function rawGet(baseUrl, accessToken, path) {
  const res = await fetch(baseUrl + path, { headers: { Authorization: `Bearer ${accessToken}` } });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}
