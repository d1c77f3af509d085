// Bounded waiting. Every wait in the suite goes through here, so a server that never answers
// fails the test with a message that says what was awaited, instead of hanging the run.

import { setTimeout as sleep } from "node:timers/promises";

/** Default bound for "the other client sees it" waits: sync is long-polling, so this is ample. */
export const DEFAULT_WAIT_MS = 15_000;

/**
 * Polls `check` until it returns a truthy value, which is then returned. Polling the sdk's
 * in-memory model (rooms, timelines, members) cannot miss an event that fired before we started
 * listening, unlike waiting for an emitter.
 * @template T
 * @param {string} what  what is awaited, for the failure message
 * @param {() => T | Promise<T>} check
 * @param {{timeoutMs?: number, intervalMs?: number, describe?: () => string}} [opts]
 *   `describe` adds the state seen at timeout to the message.
 * @returns {Promise<T>}
 */
export async function waitUntil(what, check, opts = {}) {
  const { timeoutMs = DEFAULT_WAIT_MS, intervalMs = 50, describe } = opts;
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      let msg = `timed out after ${timeoutMs} ms waiting for ${what}`;
      if (describe) msg += `; last seen: ${describe()}`;
      if (lastError) msg += `; last error: ${lastError.message ?? lastError}`;
      throw new Error(msg);
    }
    await sleep(intervalMs);
  }
}

/**
 * Rejects if `promise` has not settled within `timeoutMs`.
 * @template T
 * @param {string} what
 * @param {Promise<T>} promise
 * @param {number} [timeoutMs]
 * @returns {Promise<T>}
 */
export async function withTimeout(what, promise, timeoutMs = DEFAULT_WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
