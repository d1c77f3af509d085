// Tab leadership with the Web Locks API: exactly one tab per origin holds the lock and serves the
// homeserver. The others queue on the same lock, so when the leader's tab closes (the browser
// releases its locks) the next one in line takes over at once.

export const LOCK_NAME = 'hearth-homeserver';

/**
 * Asks for the lock; runs `lead` once it is held and holds it until `lead`'s promise settles.
 * Resolves with whether the lock was free at once (this tab leads now) or this tab queued for it.
 * `signal` withdraws a queued request; it does not end a held lock (settle `lead` for that).
 */
export async function seekLeadership(lead: () => Promise<void>, signal: AbortSignal): Promise<boolean> {
  const locks = globalThis.navigator?.locks;
  if (!locks) {
    // Without locks two tabs could both write to IndexedDB; refuse rather than risk that.
    throw new Error('Hearth needs the Web Locks API (a secure context: https or localhost)');
  }
  return new Promise<boolean>((resolve, reject) => {
    locks
      .request(LOCK_NAME, { ifAvailable: true }, async (lock) => {
        if (lock) {
          resolve(true);
          await lead();
          return;
        }
        resolve(false);
        // Queue outside this callback: returning releases nothing (we hold nothing) and lets
        // the queued request wait for as long as the leader lives.
        locks.request(LOCK_NAME, { signal }, lead).catch((err: unknown) => {
          if (!signal.aborted) console.error('hearth: waiting for leadership failed', err);
        });
      })
      .catch(reject);
  });
}
