// Preact hooks over matrix-js-sdk's event emitters: a component re-renders when the events it
// names fire, at most once per animation frame (a busy room fires many events per sync, and the
// tab's main thread also runs the homeserver).

import { useEffect, useReducer, useState } from 'preact/hooks';

interface Emitter {
  on(event: string, listener: (...args: never[]) => void): unknown;
  off(event: string, listener: (...args: never[]) => void): unknown;
}

/** Re-renders the calling component (once per frame at most) whenever `emitter` emits any of
 *  `events` and `filter` (given the event's arguments) does not say no. */
export function useEmitterUpdates(
  emitter: Emitter | null | undefined,
  events: readonly string[],
  filter?: (...args: never[]) => boolean,
): void {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    if (!emitter) return;
    let frame: number | null = null;
    const listener = (...args: never[]) => {
      if (filter && !filter(...args)) return;
      frame ??= requestAnimationFrame(() => {
        frame = null;
        bump(undefined);
      });
    };
    for (const event of events) emitter.on(event, listener);
    return () => {
      for (const event of events) emitter.off(event, listener);
      if (frame !== null) cancelAnimationFrame(frame);
    };
    // The event list is a constant at each call site.
  }, [emitter]);
}

/** Re-renders when a DOM `EventTarget` dispatches `type`. */
export function useTargetEvent(target: EventTarget, type: string): void {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    const listener = () => bump(undefined);
    target.addEventListener(type, listener);
    return () => target.removeEventListener(type, listener);
  }, [target, type]);
}

/** `load()`'s latest value, refreshed every `intervalMs` while the component is mounted (and
 *  the tab visible); null until the first answer. Errors keep the previous value. */
export function usePolled<T>(load: () => Promise<T>, intervalMs: number, key: unknown = null): T | null {
  const [value, setValue] = useState<T | null>(null);
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      if (document.visibilityState === 'visible') {
        try {
          const next = await load();
          if (!stopped) setValue(next);
        } catch (err) {
          console.warn('hearth: poll failed', err);
        }
      }
      if (!stopped) timer = setTimeout(() => void tick(), intervalMs);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
    // `load` closes over `key`; a new key restarts the poll.
  }, [key, intervalMs]);
  return value;
}

/** A value that refreshes every `intervalMs` (for state read off objects that emit nothing). */
export function useInterval(intervalMs: number): void {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    const timer = setInterval(() => bump(undefined), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
}
