// The timeline of a room: the last messages (more as you scroll back, fetched from the server
// when the loaded ones run out), day separators, senders grouped, read receipts, and a button
// back to the latest message when scrolled away.

import {
  Direction,
  EventTimeline,
  MatrixEventEvent,
  RoomEvent,
  type MatrixEvent,
  type Room,
} from 'matrix-js-sdk';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { useApp } from './context';
import { EventTile, isShown } from './EventTile';
import type { RoomDelivery } from './hearth-api';
import { useEmitterUpdates } from './hooks';
import { probes } from './probes';
import type { ComposerMode } from './RoomView';

/** How many tiles are rendered at first, and how many more each time the top is reached. */
const PAGE = 40;
/** Minutes between two messages of one sender after which the sender is shown again. */
const GROUP_MINUTES = 5;

export function Timeline({ room, delivery, setMode }: { room: Room; delivery: RoomDelivery | null; setMode: (mode: ComposerMode) => void }) {
  const { client } = useApp();
  const list = useRef<HTMLOListElement>(null);
  const [shown, setShown] = useState(PAGE);
  const [loading, setLoading] = useState(false);
  const [atStart, setAtStart] = useState(false);
  const [atBottom, setAtBottom] = useState(true);
  const stick = useRef(true);
  const anchor = useRef<{ height: number; top: number } | null>(null);

  const forRoom = (...args: never[]) => {
    for (const arg of args as unknown[]) {
      if (arg && typeof arg === 'object' && 'roomId' in arg) return (arg as { roomId?: string }).roomId === room.roomId;
    }
    return true;
  };
  useEmitterUpdates(client, [RoomEvent.Timeline, RoomEvent.LocalEchoUpdated, RoomEvent.Redaction, RoomEvent.Receipt, RoomEvent.TimelineReset], forRoom);
  useEmitterUpdates(client, [MatrixEventEvent.Decrypted, MatrixEventEvent.Replaced], (...args: never[]) => (args[0] as unknown as MatrixEvent).getRoomId() === room.roomId);

  const chain = timelineChain(room);
  const loadedAll = chain.flatMap((timeline) => timeline.getEvents());
  const all = loadedAll.filter((event) => isShown(event));
  const oldest = chain[0];
  const noMoreBack = oldest?.getPaginationToken(Direction.Backward) === null;
  const events = all.slice(Math.max(0, all.length - shown));

  // Read receipts: the last shown event each other member has read up to.
  const me = client.getUserId();
  const receipts = new Map<string, string[]>();
  for (const member of room.getJoinedMembers()) {
    if (member.userId === me) continue;
    const eventId = room.getEventReadUpTo(member.userId);
    if (!eventId) continue;
    const target = lastShownAtOrBefore(all, loadedAll, eventId);
    if (target) receipts.set(target, [...(receipts.get(target) ?? []), member.userId]);
  }

  // Keep the view pinned to the bottom while it is there; keep the reader's place when older
  // messages are added above.
  useLayoutEffect(() => {
    probes.timeline.dispatchEvent(new CustomEvent('rendered', { detail: room.roomId }));
    const element = list.current;
    if (!element) return;
    if (anchor.current) {
      element.scrollTop = element.scrollHeight - anchor.current.height + anchor.current.top;
      anchor.current = null;
    } else if (stick.current) {
      element.scrollTop = element.scrollHeight;
    }
  });

  // Tell the others how far this user has read, when the latest message is on screen.
  const latest = all[all.length - 1];
  const latestId = latest?.getId();
  useEffect(() => {
    if (!latest || !atBottom || document.visibilityState !== 'visible') return;
    if (latest.status !== null || latest.getSender() === me || !latestId?.startsWith('$')) return;
    if (room.getEventReadUpTo(me ?? '') === latestId) return;
    client.sendReadReceipt(latest).catch((err: unknown) => console.warn('hearth: read receipt failed', err));
  }, [client, room, latest, latestId, atBottom, me]);

  const loadOlder = async () => {
    if (loading || atStart) return;
    const element = list.current;
    if (element) anchor.current = { height: element.scrollHeight, top: element.scrollTop };
    if (all.length > shown) {
      setShown(shown + PAGE);
      return;
    }
    if (!oldest || noMoreBack) {
      setAtStart(true);
      anchor.current = null;
      return;
    }
    setLoading(true);
    try {
      // The oldest of the loaded timelines: after a gap (a limited sync) the live timeline
      // joins the one before it, and only the oldest still has somewhere to go back to.
      const more = await client.paginateEventTimeline(oldest, { backwards: true, limit: PAGE });
      if (!more) setAtStart(true);
      setShown((count) => count + PAGE);
    } catch (err) {
      console.warn('hearth: scrollback failed', err);
      anchor.current = null;
    } finally {
      setLoading(false);
    }
  };

  // A timeline shorter than its pane cannot be scrolled up: fetch older messages until it fills
  // the pane or the room's beginning is reached (a room just joined starts at the join).
  useEffect(() => {
    const element = list.current;
    if (!element || loading || atStart || (noMoreBack && all.length <= shown)) return;
    if (element.scrollHeight <= element.clientHeight + 80) void loadOlder();
  });

  const onScroll = () => {
    const element = list.current;
    if (!element) return;
    const bottom = element.scrollHeight - element.scrollTop - element.clientHeight < 40;
    stick.current = bottom;
    if (bottom !== atBottom) setAtBottom(bottom);
    if (element.scrollTop < 80) void loadOlder();
  };

  const jumpToLatest = () => {
    stick.current = true;
    setShown(PAGE);
    setAtBottom(true);
    const element = list.current;
    if (element) element.scrollTop = element.scrollHeight;
  };

  // Sent and delivered are shown under the user's latest message only (every message still
  // sending, failed or waiting for a peer shows its state anyway).
  const lastOwn = [...events]
    .reverse()
    .find((event) => event.getSender() === me && !event.isState() && event.getContent().msgtype !== 'm.key.verification.request')
    ?.getId();
  let previous: MatrixEvent | undefined;
  const items = [];
  if (atStart || (all.length <= shown && noMoreBack)) {
    items.push(
      <li key="start" class="timeline-start">
        This is the beginning of the conversation.
      </li>,
    );
  } else if (loading) {
    items.push(
      <li key="loading" class="timeline-start" aria-busy="true">
        Loading older messages…
      </li>,
    );
  }
  for (const event of events) {
    const day = dayOf(event);
    if (!previous || dayOf(previous) !== day) {
      items.push(
        <li key={`day-${day}`} class="day-separator">
          <span>{day}</span>
        </li>,
      );
    }
    const continuation =
      previous !== undefined &&
      previous.getSender() === event.getSender() &&
      dayOf(previous) === day &&
      event.getTs() - previous.getTs() < GROUP_MINUTES * 60_000 &&
      previous.getType() === event.getType();
    const id = event.getId() ?? event.getTxnId() ?? '';
    items.push(
      <EventTile
        key={event.getTxnId() ?? id}
        event={event}
        room={room}
        continuation={continuation}
        readBy={receipts.get(id) ?? []}
        waitingFor={delivery?.undelivered[id] ?? null}
        peerCount={delivery?.servers.length ?? 0}
        latestOwn={id === lastOwn}
        setMode={setMode}
      />,
    );
    previous = event;
  }

  return (
    <div class="timeline-wrap">
      <ol class="timeline" ref={list} onScroll={onScroll} aria-label={`Messages in ${room.name}`} tabIndex={0}>
        {items}
      </ol>
      {!atBottom && (
        <button type="button" class="jump-latest" onClick={jumpToLatest}>
          Jump to latest ↓
        </button>
      )}
    </div>
  );
}

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });

function dayOf(event: MatrixEvent): string {
  const date = new Date(event.getTs());
  const today = new Date();
  const yesterday = new Date(today.getTime() - 86_400_000);
  if (date.toDateString() === today.toDateString()) return 'Today';
  if (date.toDateString() === yesterday.toDateString()) return 'Yesterday';
  return dayFormat.format(date);
}

/** The loaded timelines of a room, oldest first, ending with the live one (a timeline joined to
 *  the one before it, after a gap was filled, links to it as its backward neighbour). */
export function timelineChain(room: Room): EventTimeline[] {
  const chain: EventTimeline[] = [];
  for (let timeline: EventTimeline | null = room.getLiveTimeline(); timeline && chain.length < 1_000; timeline = timeline.getNeighbouringTimeline(Direction.Backward)) {
    chain.unshift(timeline);
  }
  return chain;
}

/** The event a receipt at `eventId` shows under: that event if it is shown, else the last shown
 *  one before it (a receipt on a reaction or an edit belongs to the message above). */
function lastShownAtOrBefore(shown: MatrixEvent[], events: MatrixEvent[], eventId: string): string | null {
  const index = events.findIndex((event) => event.getId() === eventId);
  if (index === -1) return null;
  const ids = new Set(shown.map((event) => event.getId()));
  for (let i = index; i >= 0; i--) {
    const id = events[i]?.getId();
    if (id && ids.has(id)) return id;
  }
  return null;
}
