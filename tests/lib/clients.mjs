// matrix-js-sdk clients against a hearth-node: register through the real UIA flow, start a
// client (optionally with Rust crypto) from saved credentials, wait for it to sync, stop it.

import { sdk, clientLogger } from "./sdk.mjs";
import { DEFAULT_WAIT_MS, waitUntil, withTimeout } from "./wait.mjs";

export const PASSWORD = "correct horse battery staple";
const REQUEST_TIMEOUT_MS = 20_000;

/**
 * @typedef {{userId: string, accessToken: string, deviceId: string}} Credentials
 * What a client needs to come back after a restart of the server (or of itself).
 */

/** Clients started here and not yet stopped, so a failing test can still stop them all. */
const running = new Set();

/**
 * Registers `username` with the User-Interactive Authentication flow a real client runs: a first
 * request without `auth` gets 401 with the flows and a session; each stage of a flow we can
 * complete (m.login.dummy, or m.login.registration_token when a token is given) is then sent.
 * @param {string} baseUrl
 * @param {string} username  localpart
 * @param {{registrationToken?: string, password?: string}} [opts]
 * @returns {Promise<Credentials>}
 */
export async function registerUser(baseUrl, username, opts = {}) {
  const { registrationToken, password = PASSWORD } = opts;
  const client = apiClient(baseUrl);
  const body = { username, password, initial_device_display_name: `${username}'s test device` };

  const uia = await expectUia(client.registerRequest(body), "register without auth");
  const canDo = (stage) =>
    stage === "m.login.dummy" ||
    (stage === "m.login.registration_token" && registrationToken !== undefined);
  const flow = uia.flows?.find((f) => f.stages.every(canDo));
  if (!flow) {
    throw new Error(`no registration flow we can complete in ${JSON.stringify(uia.flows)}`);
  }

  let session = uia.session;
  for (const [i, stage] of flow.stages.entries()) {
    const auth =
      stage === "m.login.dummy"
        ? { type: stage, session }
        : { type: stage, token: registrationToken, session };
    const request = client.registerRequest({ ...body, auth });
    if (i === flow.stages.length - 1) {
      const res = await request;
      if (!res.access_token || !res.device_id) {
        throw new Error(`register returned no access_token/device_id: ${JSON.stringify(res)}`);
      }
      return { userId: res.user_id, accessToken: res.access_token, deviceId: res.device_id };
    }
    // Not the last stage: the server answers 401 again, listing what is completed.
    session = (await expectUia(request, `register stage ${stage}`)).session ?? session;
  }
  throw new Error("unreachable: a flow has at least one stage");
}

/** Awaits a request that must fail with a UIA 401 and returns its body (flows, session). */
async function expectUia(request, what) {
  try {
    const res = await request;
    throw new Error(`${what}: expected 401 with UIA flows, got success ${JSON.stringify(res)}`);
  } catch (err) {
    if (err.httpStatus !== 401 || !err.data?.flows) throw err;
    return err.data;
  }
}

/**
 * A client for plain API calls (upload, login, whoami, ...) that does not sync.
 * @param {string} baseUrl
 * @param {Credentials} [creds]  omitted for unauthenticated calls
 */
export function apiClient(baseUrl, creds) {
  // localTimeoutMs bounds every request the sdk makes (sync's long poll sets its own), so an
  // unanswered request fails the step that made it rather than the whole test's timeout.
  return sdk.createClient({ baseUrl, ...creds, logger: clientLogger, localTimeoutMs: REQUEST_TIMEOUT_MS });
}

/**
 * Creates a client from saved credentials, optionally with Rust crypto, starts it syncing and
 * waits until the first sync has been processed.
 * @param {string} baseUrl
 * @param {Credentials} creds
 * @param {{crypto?: boolean, initialSyncLimit?: number, timeoutMs?: number}} [opts]
 * @returns {Promise<import("matrix-js-sdk").MatrixClient>}
 */
export async function startClient(baseUrl, creds, opts = {}) {
  const { crypto = false, initialSyncLimit = 50, timeoutMs = DEFAULT_WAIT_MS } = opts;
  const client = apiClient(baseUrl, creds);
  running.add(client);

  // Sync states arrive as events; remember the last (and its error) for the timeout message.
  let state = null;
  let lastError = null;
  client.on(sdk.ClientEvent.Sync, (s, _prev, data) => {
    state = s;
    if (data?.error) lastError = data.error;
  });

  if (crypto) {
    // Node has no IndexedDB: keep the crypto store in memory (lost when the client stops).
    await withTimeout("initRustCrypto", client.initRustCrypto({ useIndexedDB: false }), timeoutMs);
  }
  // startClient awaits GET /versions, which has no timeout of its own in the sdk.
  await withTimeout(`${creds.userId}'s startClient`, client.startClient({ initialSyncLimit }), timeoutMs);
  await waitUntil(
    `${creds.userId}'s first sync`,
    () => state === sdk.SyncState.Prepared || state === sdk.SyncState.Syncing,
    {
      timeoutMs,
      describe: () =>
        state === null
          ? // Before its first /sync the sdk retries GET /pushrules/ and POST /user/{id}/filter
            // until both succeed, so a failure there shows up as no sync state at all.
            "no sync state yet: did GET /_matrix/client/v3/pushrules/ and POST /user/{userId}/filter succeed?"
          : `sync state ${state}${lastError ? `, error: ${lastError.message}` : ""}`,
    },
  );
  return client;
}

/** Stops a client: its sync loop and crypto. Synchronous in the sdk; kept async for callers. */
export async function stopClient(client) {
  client.stopClient();
  running.delete(client);
}

/** Stops every client still running (used by the scenario wrapper, also on failure). */
export async function stopAllClients() {
  for (const client of [...running]) await stopClient(client);
}
