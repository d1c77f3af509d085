// Marks the benchmarks read (through `window.hearth`): when the composer first appeared, and
// when a room's timeline was rendered. Cheap enough to leave on.

export const probes = {
  /** performance.now() when a composer was first shown in this page, else null. */
  composerReadyAt: null as number | null,
  /** Dispatches `rendered` (a CustomEvent whose detail is the room ID) after each timeline
   *  render reaches the DOM. */
  timeline: new EventTarget(),
};

/** Opens `roomId` (through the URL, as a link would) and resolves with the milliseconds until
 *  its timeline was rendered and the next frame painted. */
export function openRoomTimed(roomId: string): Promise<number> {
  return new Promise((resolve) => {
    const start = performance.now();
    const onRendered = (event: Event) => {
      if ((event as CustomEvent<string>).detail !== roomId) return;
      probes.timeline.removeEventListener('rendered', onRendered);
      // The frame after the commit has been painted once a task queued from rAF runs.
      requestAnimationFrame(() => setTimeout(() => resolve(performance.now() - start), 0));
    };
    probes.timeline.addEventListener('rendered', onRendered);
    location.hash = `#/room/${encodeURIComponent(roomId)}`;
  });
}
