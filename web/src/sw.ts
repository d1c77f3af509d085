// Hearth's service worker: a thin, restartable router. It does not run the homeserver (a
// service worker is killed when idle and has no WebRTC); the serving tab does. It forwards
// `/_matrix/*`, `/.well-known/matrix/*` and `/_hearth/*` to that tab over a MessageChannel, answers 503 with a
// Matrix error when no tab serves, and caches the app shell so the page opens offline.
//
// Built as a classic script (IIFE) with no runtime imports, so every browser can run it.
// The only state is which tab serves (and its port), in memory: a restarted worker asks the
// windows again.

import {
  fromWireResponse,
  isMatrixPath,
  matrixError,
  toWireRequest,
  transferables,
  type ServingMessage,
  type SwRequestMessage,
  type SwResponseMessage,
  type WhoServesMessage,
} from './protocol';

declare const self: ServiceWorkerGlobalScope;

/** Filled in by the build (vite.sw.config.ts): what the page needs to open, and a cache name
 *  that changes whenever any of it does. */
declare const __HEARTH_SHELL__: string[];
declare const __HEARTH_CACHE__: string;

const SHELL_CACHE = __HEARTH_CACHE__;
const SHELL_CACHE_PREFIX = 'hearth-shell-';
const SHELL = new Set(__HEARTH_SHELL__);
/** How long to wait for a window to answer `hearth-who-serves`. */
const WHO_SERVES_TIMEOUT_MS = 3000;
/** How often to check that the tab with requests in flight still exists. */
const LIVENESS_INTERVAL_MS = 1000;

// --- Install, activate, app shell -------------------------------------------------------------

self.addEventListener('install', (event) => {
  void self.skipWaiting();
  event.waitUntil(precacheShell());
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(SHELL_CACHE_PREFIX) && name !== SHELL_CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

/** Caches each shell file on its own: a missing file costs offline opening, not the routing
 *  (a failed `addAll` would fail the install and leave no worker at all). */
async function precacheShell(): Promise<void> {
  const cache = await caches.open(SHELL_CACHE);
  const results = await Promise.allSettled([...SHELL].map((path) => cache.add(path)));
  results.forEach((result, i) => {
    if (result.status === 'rejected') {
      console.warn(`hearth sw: could not cache ${[...SHELL][i]}:`, result.reason);
    }
  });
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (isMatrixPath(url.pathname)) {
    event.respondWith(forward(request));
  } else if (request.method === 'GET' && request.mode === 'navigate') {
    event.respondWith(networkFirst(request));
  } else if (request.method === 'GET' && (SHELL.has(url.pathname) || url.pathname.startsWith('/assets/'))) {
    event.respondWith(cacheFirst(request));
  }
  // Anything else passes through untouched.
});

// Navigations are network-first: index.html is the one file without a content hash, and it names
// the current assets, so a new build shows up at the next load while online; offline (the fetch
// fails) the cached copy opens the app.
async function networkFirst(request: Request): Promise<Response> {
  try {
    const response = await fetch(request);
    const path = new URL(request.url).pathname;
    if (response.ok && (path === '/' || path === '/index.html')) {
      const cache = await caches.open(SHELL_CACHE);
      await cache.put(path, response.clone());
    }
    return response;
  } catch (err) {
    const cached =
      (await caches.match(request, { ignoreSearch: true, cacheName: SHELL_CACHE })) ??
      (await caches.match('/index.html', { cacheName: SHELL_CACHE }));
    if (cached) return cached;
    throw err;
  }
}

// Assets carry a content hash in their name, so a cached copy is never stale: cache-first.
// The shell's unhashed files (the web app manifest, the icons) are cache-first too: their bytes
// are in the cache's name, so a changed one comes with a new worker and a new cache.
// Chunks loaded only on demand (not precached) are cached the first time they are fetched;
// the cache holds at most one build's files, and activation deletes older builds' caches.
async function cacheFirst(request: Request): Promise<Response> {
  const cache = await caches.open(SHELL_CACHE);
  const cached = await cache.match(request, { ignoreSearch: true });
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

// --- Routing Matrix requests to the serving tab ---------------------------------------------

/** The serving tab and the port it gave for requests; forgotten on restart (then asked for
 *  again). */
let serving: { clientId: string; port: MessagePort } | null = null;
/** Requests waiting for an answer, by request id: answered with 503 if their tab goes away.
 *  Bounded by the requests the browser has open through this worker. */
const inFlight = new Map<number, { clientId: string; answer: (response: Response) => void }>();
let nextRequestId = 1;
/** Those waiting for some tab to say `hearth-serving` (at most one discovery at a time). */
const servingWaiters = new Set<() => void>();
let discovery: Promise<void> | null = null;
let livenessTimer: ReturnType<typeof setInterval> | null = null;

self.addEventListener('message', (event) => {
  const data = event.data as ServingMessage | undefined;
  const source = event.source;
  const port = event.ports[0];
  if (data?.type === 'hearth-serving' && source instanceof Client && port) {
    setServing(source.id, port);
  }
});

function setServing(clientId: string, port: MessagePort): void {
  // A different tab took over: whatever the old one still had will never be answered by it.
  if (serving !== null && serving.clientId !== clientId) failInFlight(serving.clientId);
  // The same tab announcing again (a new worker, a who-serves) keeps answering on old ports too.
  port.onmessage = (event: MessageEvent<SwResponseMessage>) => {
    inFlight.get(event.data.id)?.answer(fromWireResponse(event.data));
  };
  serving = { clientId, port };
  for (const wake of servingWaiters) wake();
  servingWaiters.clear();
}

/** Answers every request in flight to `clientId` with 503 (clients retry). */
function failInFlight(clientId: string): void {
  for (const request of [...inFlight.values()]) {
    if (request.clientId === clientId) request.answer(matrixError());
  }
}

/** Asks every window which serves; resolves once one says `hearth-serving`, or after a while. */
async function discoverServingTab(): Promise<void> {
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  if (windows.length === 0) return;
  return new Promise<void>((resolve) => {
    const wake = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      servingWaiters.delete(wake);
      resolve();
    }, WHO_SERVES_TIMEOUT_MS);
    servingWaiters.add(wake);
    const ask: WhoServesMessage = { type: 'hearth-who-serves' };
    for (const window of windows) window.postMessage(ask);
  });
}

async function forward(request: Request): Promise<Response> {
  const wire = await toWireRequest(request);
  if (serving === null) {
    discovery ??= discoverServingTab().finally(() => {
      discovery = null;
    });
    await discovery;
  }
  const target = serving;
  if (target === null) return matrixError();
  return new Promise<Response>((resolve) => {
    const id = nextRequestId++;
    inFlight.set(id, {
      clientId: target.clientId,
      answer: (response) => {
        inFlight.delete(id);
        resolve(response);
      },
    });
    const message: SwRequestMessage = { type: 'hearth-request', id, ...wire };
    target.port.postMessage(message, transferables(wire));
    watchLiveness();
  });
}

/** While requests are in flight, checks about once a second that their tabs still exist (a
 *  closed tab's port just swallows messages). */
function watchLiveness(): void {
  if (livenessTimer !== null) return;
  livenessTimer = setInterval(() => {
    if (inFlight.size === 0) {
      clearInterval(livenessTimer ?? undefined);
      livenessTimer = null;
      return;
    }
    const clientIds = new Set([...inFlight.values()].map((request) => request.clientId));
    for (const clientId of clientIds) {
      void self.clients.get(clientId).then((client) => {
        if (client) return;
        failInFlight(clientId);
        if (serving?.clientId === clientId) serving = null;
      });
    }
  }, LIVENESS_INTERVAL_MS);
}
