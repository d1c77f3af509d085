// The page: starts the tab host, registers the service worker (unless `?sw=off`), and mounts
// the chat app (src/app/), a matrix-js-sdk client against the homeserver. `window.hearth` is what
// the browser end-to-end tests and benchmarks drive; keep its shape.

import type { MatrixClient } from 'matrix-js-sdk';
import wasmUrl from '../pkg/hearth_web_bg.wasm?url';
import { startHost, type HearthHost, type RelayInfo, type Role, type Transport } from './host';
import { loadRelaySetting } from './settings';
import { Session } from './session';
import { mountApp } from './app/App';
import { openRoomTimed, probes } from './app/probes';
import { attachTransfer } from './app/transfer';
import type { BlobCacheStats } from './app/blob-cache';
import { mediaCacheStats } from './app/media';

export interface HearthTestHooks {
  /** Role and transport known, and GET /_matrix/client/versions answered 200 through it. */
  ready: Promise<void>;
  role(): Role;
  transport(): Transport;
  serverName(): Promise<string>;
  /** Registers (UIA dummy flow), starts the client; resolves with the user id. */
  register(username: string, password: string): Promise<string>;
  login(username: string, password: string): Promise<string>;
  client(): MatrixClient | null;
  /** Whether the client runs in another tab of this browser ("Hearth is open in another tab"). */
  elsewhere(): boolean;
  /** Takes the client over from the tab that runs it (what "Use Hearth here" does). */
  useHere(): Promise<void>;
  /** Once a client is started and its first sync is PREPARED (pending while logged out). */
  readonly clientReady: Promise<void>;
  logout(): Promise<void>;
  /** A request through this page's transport (the service worker, or the direct path). */
  fetch: typeof globalThis.fetch;
  /** When `ready` resolved, in ms since this page's navigation started (null before). */
  readyAt(): number | null;
  /** The homeserver's wasm memory in bytes if this tab serves, else null. */
  wasmMemoryBytes(): number | null;
  /** The relays this page federates through (the setting, else the server's default). */
  relaySetting(): string[];
  /** Where this tab's homeserver stands with each relay. */
  relays(): RelayInfo[];
  /** Whether other homeservers can reach this one now. */
  reachable(): boolean;
  /** Other homeservers registered at the relays now. */
  peers(): Promise<string[]>;
  /** When the app first showed a room's composer, in ms since navigation start (null before). */
  composerReadyAt(): number | null;
  /** Opens a room and resolves with the ms until its timeline is rendered and painted. */
  openRoomTimed(roomId: string): Promise<number>;
  /** The files this tab holds as blob URLs (app/blob-cache.ts). */
  mediaCache(): BlobCacheStats;
}

declare global {
  interface Window {
    hearth: HearthTestHooks;
  }
}

/** How long a first page load waits for its new service worker to take control. */
const SW_CONTROL_TIMEOUT_MS = 5_000;
/** How long `ready` keeps asking for /versions (a first start compiles the wasm and opens IndexedDB). */
const REACHABLE_TIMEOUT_MS = 30_000;

const useServiceWorker = new URLSearchParams(location.search).get('sw') !== 'off';
const relaySetting = await loadRelaySetting();
const host = startHost({ wasm: wasmUrl, useServiceWorker, relays: relaySetting });
const session = new Session(host.fetch);

const ready = (async () => {
  await host.started;
  if (useServiceWorker) await registerServiceWorker();
  // Fail fast when this tab was to serve and could not (there may be no other tab to).
  const failed = new Promise<never>((_, reject) =>
    host.addEventListener('error', () => reject(asError(host.error))),
  );
  if (host.error !== undefined) throw asError(host.error);
  // A leader asks its own homeserver once it serves: asked earlier, the service worker may
  // still route to the tab this one replaced (a reload), and the answer would be a retry.
  if (host.role === 'leader' && !host.serving) {
    await Promise.race([new Promise((resolve) => host.addEventListener('serving', resolve, { once: true })), failed]);
  }
  await Promise.race([untilReachable(host), failed]);
})();

let readyAt: number | null = null;
void ready.then(() => (readyAt = performance.now()));

window.hearth = {
  ready,
  role: () => host.role,
  transport: () => host.transport,
  serverName: () => host.serverName(),
  register: async (username, password) => {
    await ready;
    return session.register(username, password);
  },
  login: async (username, password) => {
    await ready;
    return session.login(username, password);
  },
  client: () => session.client,
  elsewhere: () => session.elsewhere,
  useHere: () => session.useHere(),
  get clientReady() {
    return session.clientReady;
  },
  logout: () => session.logout(),
  fetch: host.fetch,
  readyAt: () => readyAt,
  wasmMemoryBytes: () => host.wasmMemoryBytes(),
  relaySetting: () => relaySetting,
  relays: () => host.relays(),
  reachable: () => host.reachable,
  peers: () => host.peers(),
  composerReadyAt: () => probes.composerReadyAt,
  openRoomTimed,
  mediaCache: mediaCacheStats,
};

const root = document.getElementById('app');
if (!root) throw new Error('index.html has no #app');
attachTransfer(host, session);
mountApp(root, { host, session, ready, relaySetting });
ready.then(
  () => session.resume(),
  () => {},
).catch((err: unknown) => console.error('hearth: resuming the session failed', err));

/** Registers /sw.js; on a first load, waits (bounded) until it controls this page so that the
 *  transport is settled. A browser that blocks service workers leaves the direct path. */
async function registerServiceWorker(): Promise<void> {
  const container = navigator.serviceWorker;
  if (!container) return;
  try {
    // Playwright's `serviceWorkers: 'block'` makes register resolve with undefined.
    const registration = (await container.register('/sw.js', { scope: '/' })) as ServiceWorkerRegistration | undefined;
    if (!registration) throw new Error('registration blocked');
  } catch (err) {
    console.warn('hearth: no service worker, using the direct path', err);
    return;
  }
  if (container.controller) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, SW_CONTROL_TIMEOUT_MS);
    container.addEventListener('controllerchange', done, { once: true });
    function done() {
      clearTimeout(timer);
      container.removeEventListener('controllerchange', done);
      resolve();
    }
  });
}

async function untilReachable(host: HearthHost): Promise<void> {
  const deadline = Date.now() + REACHABLE_TIMEOUT_MS;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const response = await host.fetch(new URL('/_matrix/client/versions', location.origin));
      if (response.ok) return;
      last = `${response.status} ${await response.text()}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`GET /_matrix/client/versions: ${last}`);
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(typeof value === 'string' ? value : JSON.stringify(value));
}
