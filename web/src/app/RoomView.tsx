// One open room: its header (name, encryption, which peers are reachable and what is queued for
// the others), the timeline, who is typing, and the composer.

import { RoomEvent, RoomMemberEvent, RoomStateEvent, type MatrixEvent, type Room, type RoomMember } from 'matrix-js-sdk';
import { useEffect, useState } from 'preact/hooks';
import { Composer } from './Composer';
import { useApp } from './context';
import type { DialogName } from './dialogs';
import { fetchRoomDelivery, type RoomDelivery } from './hearth-api';
import { useEmitterUpdates } from './hooks';
import { displayName, shortServer } from './names';
import { directPartner, isDirect } from './rooms';
import { Timeline } from './Timeline';
import { useVerified } from './Verification';
import { errorText } from './widgets';

/** How soon the delivery status is asked again while a message waits for a reachable peer (it
 *  should land within seconds, and its ✓✓ with it). */
const DELIVERY_PENDING_MS = 2_000;
/** … and otherwise: how soon a peer that went offline or came back shows. */
const DELIVERY_IDLE_MS = 10_000;
/** Events arriving together (a sync's batch, a send and its echo) ask once. */
const DELIVERY_DEBOUNCE_MS = 250;

/** What the composer is doing besides a new message. */
export type ComposerMode = { kind: 'reply'; event: MatrixEvent } | { kind: 'edit'; event: MatrixEvent } | null;

export function RoomView({ room, openDialog }: { room: Room; openDialog: (name: DialogName) => void }) {
  const { client, openRoom } = useApp();
  const [mode, setMode] = useState<ComposerMode>(null);
  useEmitterUpdates(client, [RoomEvent.Name, RoomStateEvent.Events, RoomEvent.MyMembership], (...args: never[]) => {
    const first = args[0] as unknown;
    return !(first && typeof first === 'object' && 'roomId' in first) || (first as { roomId?: string }).roomId === room.roomId;
  });
  const { delivery, unknown } = useRoomDelivery(room);
  const encrypted = room.hasEncryptionStateEvent();
  const partner = isDirect(client, room) ? directPartner(client, room) : null;
  const topic = room.currentState.getStateEvents('m.room.topic', '')?.getContent<{ topic?: string }>().topic;
  return (
    <section class="room" aria-labelledby="room-name">
      <header class="room-header">
        <button type="button" class="icon back" aria-label="Back to the room list" onClick={() => openRoom(null)}>
          ←
        </button>
        <div class="title">
          <h2 id="room-name">
            {room.name}
            {encrypted && (
              <span class="badge-lock" title="End-to-end encrypted" aria-label="End-to-end encrypted">
                🔒
              </span>
            )}
          </h2>
          {topic && <p class="topic">{topic}</p>}
          <PeerStatus delivery={delivery} unknown={unknown} />
        </div>
        {partner && <VerifyButton room={room} userId={partner} />}
        <button type="button" class="icon" aria-label="Room settings" title="Room settings" onClick={() => openDialog('room-settings')}>
          ⋯
        </button>
      </header>
      <Timeline room={room} delivery={delivery} setMode={setMode} />
      <Typing room={room} />
      <Composer room={room} mode={mode} setMode={setMode} />
    </section>
  );
}

/**
 * Where the room's messages stand with the other servers (`GET /_hearth/client/v1/rooms/{roomId}/
 * delivery`), asked again when the room's timeline changes and on a timer: often while one of our
 * messages waits for a reachable server, rarely otherwise. `unknown` when the last ask failed
 * (the last known answer is kept).
 */
function useRoomDelivery(room: Room): { delivery: RoomDelivery | null; unknown: boolean } {
  const { client, fetch } = useApp();
  const [state, setState] = useState<{ delivery: RoomDelivery | null; unknown: boolean }>({ delivery: null, unknown: false });
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let asking = false;
    let again = false;
    let dueAt = Infinity;
    // Asks in `ms` unless an ask is due sooner (a stream of events cannot postpone it).
    const schedule = (ms: number) => {
      if (stopped || Date.now() + ms >= dueAt) return;
      clearTimeout(timer);
      dueAt = Date.now() + ms;
      timer = setTimeout(() => {
        dueAt = Infinity;
        void ask();
      }, ms);
    };
    const ask = async () => {
      if (asking) {
        again = true;
        return;
      }
      asking = true;
      let pending = false;
      try {
        const delivery = await fetchRoomDelivery(client, fetch, room.roomId);
        const reachable = new Set(delivery.servers.filter((server) => server.reachable).map((server) => server.server_name));
        pending = Object.values(delivery.undelivered).some((servers) => servers.some((server) => reachable.has(server)));
        if (!stopped) setState({ delivery, unknown: false });
      } catch (err) {
        console.warn('hearth: the delivery status is unknown', err);
        if (!stopped) setState((last) => ({ delivery: last.delivery, unknown: true }));
      } finally {
        asking = false;
      }
      if (again) {
        again = false;
        schedule(0);
      } else {
        schedule(pending && document.visibilityState === 'visible' ? DELIVERY_PENDING_MS : DELIVERY_IDLE_MS);
      }
    };
    // The room's own events: ours being sent, others' arriving (their server is reachable).
    const onChange = () => schedule(DELIVERY_DEBOUNCE_MS);
    room.on(RoomEvent.Timeline, onChange);
    room.on(RoomEvent.LocalEchoUpdated, onChange);
    void ask();
    return () => {
      stopped = true;
      clearTimeout(timer);
      room.off(RoomEvent.Timeline, onChange);
      room.off(RoomEvent.LocalEchoUpdated, onChange);
    };
  }, [client, fetch, room]);
  return state;
}

/** Per room: which other servers are reachable now, and how many messages wait for the rest. */
function PeerStatus({ delivery, unknown }: { delivery: RoomDelivery | null; unknown: boolean }) {
  if (unknown && !delivery) {
    return (
      <p class="peer-status" data-unknown="true">
        <span class="dot offline" aria-hidden="true" /> Peer status unknown
      </p>
    );
  }
  if (!delivery || delivery.servers.length === 0) {
    return (
      <p class="peer-status" data-peers="0">
        Only your server is in this room
      </p>
    );
  }
  const reachable = delivery.servers.filter((server) => server.reachable);
  const queued = delivery.servers.reduce((sum, server) => sum + server.queued, 0);
  const names = delivery.servers.map((server) => `${shortServer(server.server_name)}${server.reachable ? '' : ' (offline)'}`).join(', ');
  return (
    <p class="peer-status" data-peers={delivery.servers.length} data-reachable={reachable.length} data-queued={queued} title={names}>
      <span class={reachable.length === delivery.servers.length ? 'dot online' : reachable.length > 0 ? 'dot connecting' : 'dot offline'} aria-hidden="true" />{' '}
      {reachable.length} of {delivery.servers.length} {delivery.servers.length === 1 ? 'peer' : 'peers'} reachable
      {queued > 0 && ` · ${queued} ${queued === 1 ? 'message' : 'messages'} queued for offline peers`}
      {unknown && ' · status not updated'}
    </p>
  );
}

function Typing({ room }: { room: Room }) {
  const { client } = useApp();
  useEmitterUpdates(client, [RoomMemberEvent.Typing], (...args: never[]) => (args[1] as unknown as RoomMember | undefined)?.roomId === room.roomId);
  const me = client.getUserId();
  const typing = room.getJoinedMembers().filter((member) => member.typing && member.userId !== me);
  const names = typing.map((member) => displayName(client, member.userId, room));
  return (
    <p class="typing" aria-live="polite">
      {names.length === 0 ? '' : names.length === 1 ? `${names[0]} is typing…` : `${names.join(', ')} are typing…`}
    </p>
  );
}

/** A direct message's partner: verified (a shield), or a button to verify them with emoji. */
function VerifyButton({ room, userId }: { room: Room; userId: string }) {
  const { client, showVerification } = useApp();
  const verified = useVerified(client, userId);
  const [error, setError] = useState<string | null>(null);
  const name = displayName(client, userId, room);
  if (verified === null) return null;
  if (verified) {
    return (
      <span class="verified-badge" data-verified="true" title={`You verified ${name}`}>
        ✓ Verified
      </span>
    );
  }
  const start = async () => {
    setError(null);
    const crypto = client.getCrypto();
    if (!crypto) return setError('Encryption is not available in this browser');
    try {
      showVerification(await crypto.requestVerificationDM(userId, room.roomId));
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <>
      <button type="button" class="small" data-verified="false" onClick={() => void start()} title={error ?? `Compare emoji with ${name}`}>
        Verify {name}
      </button>
      {error && <span class="visually-hidden" role="alert">{error}</span>}
    </>
  );
}
