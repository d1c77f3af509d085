// One open room: its header (name, encryption, which peers are reachable and what is queued for
// the others), the timeline, who is typing, and the composer.

import { RoomEvent, RoomMemberEvent, RoomStateEvent, type MatrixEvent, type Room, type RoomMember } from 'matrix-js-sdk';
import { useState } from 'preact/hooks';
import { Composer } from './Composer';
import { useApp } from './context';
import type { DialogName } from './dialogs';
import { fetchRoomDelivery, type RoomDelivery } from './hearth-api';
import { useEmitterUpdates, usePolled } from './hooks';
import { displayName, shortServer } from './names';
import { directPartner, isDirect } from './rooms';
import { Timeline } from './Timeline';
import { useVerified } from './Verification';
import { errorText } from './widgets';

const DELIVERY_POLL_MS = 2_000;

/** What the composer is doing besides a new message. */
export type ComposerMode = { kind: 'reply'; event: MatrixEvent } | { kind: 'edit'; event: MatrixEvent } | null;

export function RoomView({ room, openDialog }: { room: Room; openDialog: (name: DialogName) => void }) {
  const { client, fetch, openRoom } = useApp();
  const [mode, setMode] = useState<ComposerMode>(null);
  useEmitterUpdates(client, [RoomEvent.Name, RoomStateEvent.Events, RoomEvent.MyMembership], (...args: never[]) => {
    const first = args[0] as unknown;
    return !(first && typeof first === 'object' && 'roomId' in first) || (first as { roomId?: string }).roomId === room.roomId;
  });
  const delivery = usePolled(() => fetchRoomDelivery(client, fetch, room.roomId).catch(() => null), DELIVERY_POLL_MS, room.roomId);
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
          <PeerStatus delivery={delivery} />
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

/** Per room: which other servers are reachable now, and how many messages wait for the rest. */
function PeerStatus({ delivery }: { delivery: RoomDelivery | null }) {
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
