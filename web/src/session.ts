// The page's Matrix session: first-run onboarding (a display name, an optional password),
// register (UIA dummy flow), log in, resume from localStorage, log out, and the one
// matrix-js-sdk client started from it, with its Rust crypto (end-to-end encryption). Only one tab
// of the browser runs that client at a time (client-lock.ts); the others are "open elsewhere"
// until the user takes Hearth over in one of them.

import {
  ClientEvent,
  createClient,
  HttpApiEvent,
  MatrixError,
  SyncState,
  type MatrixClient,
  type RegisterResponse,
} from 'matrix-js-sdk';
import { usernameFrom } from './app/names';
import { ClientLock } from './client-lock';

export interface Credentials {
  userId: string;
  accessToken: string;
  deviceId: string;
}

const STORAGE_KEY = 'hearth-session';
const DEVICE_NAME = 'Hearth web';

type FetchFn = typeof globalThis.fetch;

/** The secret storage key (the recovery key, decoded) that the user created or entered in this
 *  tab, with its ID once known. Secret storage keeps the cross-signing keys and the key backup's
 *  decryption key encrypted in account data; matrix-js-sdk asks for this key through
 *  `cryptoCallbacks.getSecretStorageKey` every time it reads or writes there, at moments of its
 *  own choosing (inside bootstrapSecretStorage, resetKeyBackup, bootstrapCrossSigning,
 *  loadSessionBackupPrivateKeyFromSecretStorage), where the app cannot prompt. So the key backup
 *  UI puts the key here first (rememberSecretStorageKey) and the callback answers from it. In
 *  memory only, never stored; forgotten at logout. */
let secretStorageKey: { key: Uint8Array<ArrayBuffer>; keyId?: string } | null = null;

export function rememberSecretStorageKey(key: Uint8Array<ArrayBuffer>, keyId?: string): void {
  secretStorageKey = keyId === undefined ? { key } : { key, keyId };
}

/** Answers matrix-js-sdk's request for one of `keyIds` with the remembered key, if it is one of
 *  them (a key not yet given its ID can only answer a request for a single key). */
function secretStorageKeyFor(keyIds: string[]): [string, Uint8Array<ArrayBuffer>] | null {
  const cached = secretStorageKey;
  if (!cached) return null;
  const keyId = cached.keyId ?? (keyIds.length === 1 ? keyIds[0] : undefined);
  return keyId !== undefined && keyIds.includes(keyId) ? [keyId, cached.key] : null;
}

/** A promise with its resolver, as `Promise.withResolvers` (not yet in every browser we target). */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export class Session extends EventTarget {
  #client: MatrixClient | null = null;
  #ready = deferred();
  #resuming = loadCredentials() !== null;
  /** Signed in, but the client runs in another tab of this browser. */
  #elsewhere = false;
  readonly #lock = new ClientLock();
  readonly #fetchFn: FetchFn;

  constructor(fetchFn: FetchFn) {
    super();
    this.#fetchFn = fetchFn;
    // Another tab takes Hearth over: stop the client here before the lock is let go.
    this.#lock.addEventListener('lost', () => {
      this.#stopClient();
      this.#setElsewhere(true);
    });
    // Another tab signed in or out: follow it (this tab runs no client, or it would hold the lock).
    addEventListener('storage', (event) => {
      if (event.key !== STORAGE_KEY || this.#lock.held) return;
      this.#setElsewhere(loadCredentials() !== null);
    });
  }

  get client(): MatrixClient | null {
    return this.#client;
  }

  /** Resolves once a client is started and its first sync is PREPARED; a new pending promise
   *  after each logout. */
  get clientReady(): Promise<void> {
    return this.#ready.promise;
  }

  /** Whether a saved session is being resumed (the app waits rather than asking to sign in). */
  get resuming(): boolean {
    return this.#resuming;
  }

  /** Whether the session's client runs in another tab of this browser (see `useHere`). */
  get elsewhere(): boolean {
    return this.#elsewhere;
  }

  /** Starts the client of a saved session, if there is one and no other tab runs it. */
  async resume(): Promise<boolean> {
    const saved = loadCredentials();
    try {
      if (saved === null) return false;
      if (!(await this.#lock.tryAcquire())) {
        this.#elsewhere = true;
        return false;
      }
      await this.#start(saved);
      return true;
    } finally {
      this.#resuming = false;
      this.dispatchEvent(new Event('change'));
    }
  }

  /** Takes Hearth over from the tab that runs the client (it stops there) and starts it here. */
  async useHere(): Promise<void> {
    const saved = loadCredentials();
    if (saved === null) {
      this.#setElsewhere(false);
      return;
    }
    await this.#lock.take();
    await this.#start(saved);
  }

  async register(username: string, password: string, profile: { displayName?: string } = {}): Promise<string> {
    const api = this.#apiClient();
    const body = { username, password, initial_device_display_name: DEVICE_NAME };
    let response: RegisterResponse;
    try {
      response = await api.registerRequest(body);
    } catch (err) {
      // User-interactive authentication: 401 with the flows and a session; the server is the
      // user's own, so its open flow is the dummy stage.
      const uia = err instanceof MatrixError && err.httpStatus === 401 ? err.data : undefined;
      const flows = (uia?.flows ?? []) as { stages: string[] }[];
      if (!uia || !flows.some((flow) => flow.stages.every((stage) => stage === 'm.login.dummy'))) {
        throw err;
      }
      const session = typeof uia.session === 'string' ? uia.session : undefined;
      response = await api.registerRequest({ ...body, auth: { type: 'm.login.dummy', session } });
    }
    if (!response.access_token || !response.device_id) {
      throw new Error('registration returned no access token or device id');
    }
    const credentials = { userId: response.user_id, accessToken: response.access_token, deviceId: response.device_id };
    if (profile.displayName) {
      // Set before the client starts, so that the first sync (and every room) has the name.
      const client = createClient({ baseUrl: location.origin, ...credentials, fetchFn: this.#fetchFn });
      await client.setDisplayName(profile.displayName);
    }
    return this.#start(credentials);
  }

  /** First run: an account named after `displayName` on this tab's own homeserver, with
   *  `password` if given (else a random one: the session stays in this browser). A taken
   *  username gets a number. */
  async onboard(displayName: string, password?: string): Promise<string> {
    const name = displayName.trim();
    if (name === '') throw new Error('Pick a name');
    const base = usernameFrom(name) || 'me';
    const secret = password || randomPassword();
    let userId: string | null = null;
    for (let attempt = 0; userId === null; attempt++) {
      const username = attempt === 0 ? base : `${base}${attempt + 1}`;
      try {
        userId = await this.register(username, secret, { displayName: name });
      } catch (err) {
        if (!(err instanceof MatrixError && err.errcode === 'M_USER_IN_USE') || attempt >= 20) throw err;
      }
    }
    return userId;
  }

  async login(username: string, password: string): Promise<string> {
    const response = await this.#apiClient().loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: username },
      password,
      initial_device_display_name: DEVICE_NAME,
    });
    return this.#start({ userId: response.user_id, accessToken: response.access_token, deviceId: response.device_id });
  }

  /** Logs out on the server (best effort: the session is dropped here either way). */
  async logout(): Promise<void> {
    const client = this.#client;
    if (client) {
      try {
        await client.logout(true);
      } catch (err) {
        console.warn('hearth: server-side logout failed', err);
      }
    }
    await this.#drop();
  }

  #apiClient(): MatrixClient {
    return createClient({ baseUrl: location.origin, fetchFn: this.#fetchFn });
  }

  async #start(credentials: Credentials): Promise<string> {
    this.#stopClient();
    // Signing in here (or resuming) makes this the tab that runs the client.
    await this.#lock.take();
    this.#elsewhere = false;
    saveCredentials(credentials);
    const client = createClient({
      baseUrl: location.origin,
      ...credentials,
      fetchFn: this.#fetchFn,
      timelineSupport: true,
      cryptoCallbacks: {
        getSecretStorageKey: ({ keys }) => Promise.resolve(secretStorageKeyFor(Object.keys(keys))),
        cacheSecretStorageKey: (keyId, _info, key) => rememberSecretStorageKey(key, keyId),
      },
    });
    this.#client = client;
    const ready = this.#ready;
    const onSync = (state: SyncState) => {
      if (state !== SyncState.Prepared) return;
      client.off(ClientEvent.Sync, onSync);
      ready.resolve();
    };
    client.on(ClientEvent.Sync, onSync);
    // A saved token the server no longer knows: back to the sign-in form.
    client.on(HttpApiEvent.SessionLoggedOut, () => {
      if (this.#client === client) void this.#drop();
    });
    // The crypto store lives in IndexedDB under the user and device, so a reload (or another
    // account on the same homeserver) finds its own keys.
    await client.initRustCrypto({ cryptoDatabasePrefix: `hearth-crypto-${credentials.deviceId}` });
    if (this.#client !== client) throw new Error('signed out while starting');
    this.dispatchEvent(new Event('change'));
    await client.startClient({ initialSyncLimit: 30, lazyLoadMembers: false });
    await ready.promise;
    void setUpCrossSigning(client);
    return credentials.userId;
  }

  #stopClient(): void {
    if (this.#client === null) return;
    this.#client.stopClient();
    this.#client.removeAllListeners();
    this.#client = null;
    this.#ready = deferred();
  }

  #setElsewhere(elsewhere: boolean): void {
    this.#elsewhere = elsewhere;
    this.dispatchEvent(new Event('change'));
  }

  async #drop(): Promise<void> {
    const client = this.#client;
    this.#stopClient();
    localStorage.removeItem(STORAGE_KEY);
    secretStorageKey = null;
    this.dispatchEvent(new Event('change'));
    // The device is gone: its keys are of no use any more.
    await client?.clearStores().catch((err: unknown) => console.warn('hearth: clearing the crypto store failed', err));
    this.#lock.release();
  }
}

/** Cross-signing keys for the account, made once on its first device (their first upload
 *  needs no user-interactive authentication), so that people can verify each other. */
async function setUpCrossSigning(client: MatrixClient): Promise<void> {
  const crypto = client.getCrypto();
  if (!crypto) return;
  try {
    if (await crypto.isCrossSigningReady()) return;
    await crypto.bootstrapCrossSigning({
      authUploadDeviceSigningKeys: async (makeRequest) => {
        await makeRequest(null);
      },
    });
  } catch (err) {
    console.warn('hearth: setting up cross-signing failed', err);
  }
}

function randomPassword(): string {
  const bytes = new Uint8Array(24);
  crypto.getRandomValues(bytes);
  return btoa(String.fromCharCode(...bytes));
}

function loadCredentials(): Credentials | null {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null');
    if (typeof value !== 'object' || value === null) return null;
    const { userId, accessToken, deviceId } = value as Record<string, unknown>;
    if (typeof userId !== 'string' || typeof accessToken !== 'string' || typeof deviceId !== 'string') return null;
    return { userId, accessToken, deviceId };
  } catch {
    return null;
  }
}

function saveCredentials(credentials: Credentials): void {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
}
