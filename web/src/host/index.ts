// The tab host: runs the Hearth homeserver in the one tab per origin that holds the leadership
// lock, answers the service worker and the other tabs for it, and gives the page's Matrix client
// a `fetch` that reaches it by whichever path works.
//
//   const host = startHost({ wasm: wasmUrl });
//   host.addEventListener('rolechange', () => console.log(host.role));
//   const client = createClient({ baseUrl: location.origin, fetchFn: host.fetch });

import init, { Homeserver, type RelayInfo } from '../../pkg/hearth_web.js';
import { isMatrixPath, matrixError } from '../protocol';
import { seekLeadership } from './leadership';
import { ServiceWorkerBridge } from './sw-bridge';
import { TabChannel, type Handler } from './tabs';

export type { RelayInfo };
export type Role = 'leader' | 'follower';
export type Transport = 'service-worker' | 'direct';

export interface HostOptions {
  /** The IndexedDB database the homeserver lives in. Default `hearth`. */
  database?: string;
  /** Where `hearth_web_bg.wasm` is. Default: next to `hearth_web.js`. */
  wasm?: string | URL;
  /** Send the client's requests through the service worker when one controls the page.
   *  Default true; false always uses the direct path. */
  useServiceWorker?: boolean;
  /** How long a direct request waits for some tab to serve. Default 10 s. */
  directTimeoutMs?: number;
  /** Relays (multiaddrs of `hearth-rendezvous` WebSocket listeners, ending in `/p2p/<id>`) the
   *  homeserver federates through. Default none: no federation. */
  relays?: string[];
}

/** Events: `rolechange` (see `role`); `serving` (this tab's homeserver now answers);
 *  `servername` (a leader, this tab or another, announced the server name); `error` (this tab
 *  could not start the homeserver; see `error`). */
export interface HearthHost extends EventTarget {
  /** Whether this tab runs the homeserver; a follower becomes leader when the leader's tab closes. */
  readonly role: Role;
  /** The path the next request of `fetch` takes. */
  readonly transport: Transport;
  /** Whether this tab's homeserver is up and answering (then `role` is 'leader'). */
  readonly serving: boolean;
  /** Resolves once the first role is known. */
  readonly started: Promise<Role>;
  /** Why this tab, as leader, could not start the homeserver (it then gave up the lock). */
  readonly error: unknown;
  /** The server name (64 hex), once this tab or the leader tab serves. */
  serverName(): Promise<string>;
  /** A `fetch` for the Matrix client (`createClient({fetchFn: host.fetch})`): through the
   *  service worker if one controls the page, else straight to the homeserver in this tab or,
   *  over a BroadcastChannel, in the leader tab. Non-Matrix URLs go to the network. */
  readonly fetch: typeof globalThis.fetch;
  /** Stops serving (in-flight writes finish, the database closes) and gives up the lock or the
   *  place in its queue. The host is unusable afterwards. */
  stop(): Promise<void>;
  /** The homeserver's wasm memory in bytes while this tab serves, else null. Wasm memory only
   *  grows, so this is the peak since the module was loaded. */
  wasmMemoryBytes(): number | null;
  /** The relays and where this tab's homeserver stands with each (empty unless it serves). */
  relays(): RelayInfo[];
  /** Whether other homeservers can reach this one now (a relay holds a reservation for it). */
  readonly reachable: boolean;
  /** Server names of the other homeservers registered at the relays now (empty unless this
   *  tab serves). */
  peers(): Promise<string[]>;
}

const DEFAULT_DIRECT_TIMEOUT_MS = 10_000;

/** Starts competing for leadership at once; see `HearthHost`. */
export function startHost(options: HostOptions = {}): HearthHost {
  return new Host(options);
}

class Host extends EventTarget implements HearthHost {
  #role: Role = 'follower';
  #error: unknown = undefined;
  #homeserver: Homeserver | null = null;
  #memory: WebAssembly.Memory | null = null;
  readonly #options: Required<Omit<HostOptions, 'wasm'>> & Pick<HostOptions, 'wasm'>;
  readonly #tabs = new TabChannel();
  readonly #sw = new ServiceWorkerBridge();
  readonly #stopping = new AbortController();
  #stopped: Promise<void> | null = null;
  /** Settles when the leader's lock callback has stopped the homeserver and returned. */
  #leadEnded: Promise<void> = Promise.resolve();
  readonly started: Promise<Role>;

  constructor(options: HostOptions) {
    super();
    this.#options = {
      database: options.database ?? 'hearth',
      relays: options.relays ?? [],
      useServiceWorker: options.useServiceWorker ?? true,
      directTimeoutMs: options.directTimeoutMs ?? DEFAULT_DIRECT_TIMEOUT_MS,
      wasm: options.wasm,
    };
    this.#tabs.onLeader = () => this.dispatchEvent(new Event('servername'));
    this.started = seekLeadership(() => this.#lead(), this.#stopping.signal).then(() => this.#role);
  }

  get role(): Role {
    return this.#role;
  }

  get error(): unknown {
    return this.#error;
  }

  get serving(): boolean {
    return this.#homeserver !== null;
  }

  get transport(): Transport {
    return this.#options.useServiceWorker && globalThis.navigator?.serviceWorker?.controller
      ? 'service-worker'
      : 'direct';
  }

  async serverName(): Promise<string> {
    for (;;) {
      if (this.#homeserver) return this.#homeserver.serverName;
      const name = await this.#tabs.serverName(this.#options.directTimeoutMs);
      if (name !== null) return name;
      if (this.#stopping.signal.aborted) throw new Error('the Hearth host is stopped');
    }
  }

  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.origin !== location.origin || !isMatrixPath(url.pathname) || this.transport === 'service-worker') {
      return globalThis.fetch(request);
    }
    if (this.#stopping.signal.aborted) return matrixError('This Hearth host is stopped');
    return abortable(request.signal, this.#tabs.request(request, this.#options.directTimeoutMs));
  };

  wasmMemoryBytes(): number | null {
    return this.#homeserver && this.#memory ? this.#memory.buffer.byteLength : null;
  }

  relays(): RelayInfo[] {
    return this.#homeserver?.relays() ?? [];
  }

  get reachable(): boolean {
    return this.#homeserver?.reachable ?? false;
  }

  async peers(): Promise<string[]> {
    return (await this.#homeserver?.peers()) ?? [];
  }

  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopping.abort();
      this.#sw.close();
      await this.#leadEnded;
      this.#tabs.close();
    })();
    return this.#stopped;
  }

  /** The lock callback: runs while this tab holds the lock; returning releases it. */
  async #lead(): Promise<void> {
    if (this.#stopping.signal.aborted) return;
    let ended!: () => void;
    this.#leadEnded = new Promise((resolve) => (ended = resolve));
    this.#tabs.leaderLost();
    this.#setRole('leader');
    try {
      const wasm = await init(this.#options.wasm === undefined ? undefined : { module_or_path: this.#options.wasm });
      this.#memory = wasm.memory;
      const homeserver = await Homeserver.start({ database: this.#options.database, relays: this.#options.relays });
      this.#homeserver = homeserver;
      const handler: Handler = (request) =>
        homeserver.handleParts(
          request.method,
          request.url,
          request.headers.flat(),
          request.body === null ? undefined : new Uint8Array(request.body),
        );
      this.#tabs.serve(handler, homeserver.serverName);
      this.#sw.serve(handler);
      this.dispatchEvent(new Event('serving'));
      // Hold the lock until stop(): the tab closing releases it without us.
      await new Promise((resolve) => this.#stopping.signal.addEventListener('abort', resolve, { once: true }));
      this.#sw.stopServing();
      this.#tabs.stopServing();
      await homeserver.stop();
    } catch (err) {
      // Give up the lock so that another tab may try; this one stays a follower.
      console.error('hearth: could not start the homeserver', err);
      this.#error = err;
      this.#setRole('follower');
      this.dispatchEvent(new Event('error'));
    } finally {
      this.#homeserver = null;
      ended();
    }
  }

  #setRole(role: Role): void {
    if (this.#role === role) return;
    this.#role = role;
    this.dispatchEvent(new Event('rolechange'));
  }
}

/** `work`, unless `signal` aborts first (then an AbortError, as `fetch` does). */
function abortable(signal: AbortSignal, work: Promise<Response>): Promise<Response> {
  // The abort reason as given (an AbortError DOMException unless the caller chose another), as
  // `fetch` rejects with it.
  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<Response>((resolve, reject) => {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
