// One signed-in Matrix client per browser profile. matrix-js-sdk's Rust crypto keeps the Olm and
// Megolm sessions in IndexedDB and ratchets them in memory: two tabs running a client each on the
// same store would advance the same sessions independently, and messages would stop decrypting.
// (The homeserver is one per profile already, elected with its own lock in host/leadership.ts;
// this lock is about the client, so it is separate: the tab that serves need not be the tab that
// chats.)
//
// The tab whose client runs holds the Web Lock `hearth-client`. Another tab shows that Hearth is
// open elsewhere and can take it over: it asks the holder on a BroadcastChannel to let go, the
// holder stops its client and releases the lock, and the asker's queued request gets it. A holder
// that does not answer in time (a frozen or hung tab) has the lock stolen, which the browser
// reports to it as the end of its lock.

const LOCK_NAME = 'hearth-client';
const CHANNEL_NAME = 'hearth-client';
/** How long a take-over waits for the holder to let go before stealing the lock. */
const RELEASE_TIMEOUT_MS = 5_000;

interface ReleaseMessage {
  type: 'hearth-client-release';
}

export class ClientLock extends EventTarget {
  readonly #channel = new BroadcastChannel(CHANNEL_NAME);
  /** Ends the held lock's callback (so the browser releases the lock); null when not held. */
  #release: (() => void) | null = null;

  constructor() {
    super();
    this.#channel.onmessage = (event: MessageEvent<ReleaseMessage>) => {
      if (event.data?.type === 'hearth-client-release') this.#lose();
    };
  }

  get held(): boolean {
    return this.#release !== null;
  }

  /** Takes the lock if no other tab holds it; resolves with whether this tab holds it now. */
  async tryAcquire(): Promise<boolean> {
    return this.held || this.#request({ ifAvailable: true });
  }

  /** Takes the lock from whichever tab holds it: asks it to let go and, if it has not within
   *  RELEASE_TIMEOUT_MS, steals it. */
  async take(): Promise<void> {
    if (await this.tryAcquire()) return;
    const message: ReleaseMessage = { type: 'hearth-client-release' };
    this.#channel.postMessage(message);
    const signal = AbortSignal.timeout(RELEASE_TIMEOUT_MS);
    try {
      if (await this.#request({ signal })) return;
    } catch (err) {
      if (!signal.aborted) throw err;
    }
    await this.#request({ steal: true });
  }

  /** Lets go of the lock (signed out: no client runs here any more). */
  release(): void {
    const release = this.#release;
    this.#release = null;
    release?.();
  }

  /** Another tab asked for the lock or stole it: tell the session first (it stops the client,
   *  synchronously), then let go. */
  #lose(): void {
    if (!this.held) return;
    this.dispatchEvent(new Event('lost'));
    this.release();
  }

  /** One `navigator.locks.request`: resolves with whether it granted the lock, which is then held
   *  until `release` or until another tab steals it. */
  #request(options: LockOptions): Promise<boolean> {
    const locks = globalThis.navigator?.locks;
    // Without Web Locks the host refuses to start at all (host/leadership.ts); nothing to guard.
    if (!locks) return Promise.resolve(true);
    return new Promise<boolean>((resolve, reject) => {
      let release: (() => void) | null = null;
      locks
        .request(LOCK_NAME, options, (lock) => {
          if (!lock) {
            resolve(false);
            return undefined;
          }
          return new Promise<void>((done) => {
            release = done;
            this.#release = done;
            resolve(true);
          });
        })
        .catch((err: unknown) => {
          // Stolen by another tab (the browser rejects the holder's request), or a queued
          // request withdrawn before it was granted.
          if (release !== null && this.#release === release) this.#lose();
          reject(err instanceof Error ? err : new Error(String(err)));
        });
    });
  }
}
