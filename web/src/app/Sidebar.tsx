// The sidebar: me (name, status of the relay), people online at the relay, invites, direct
// messages and rooms with their unread counts.

import { RoomEvent, type MatrixClient, type Room } from 'matrix-js-sdk';
import { useState } from 'preact/hooks';
import { useApp } from './context';
import type { DialogName } from './dialogs';
import { useEmitterUpdates, useInterval } from './hooks';
import { displayName } from './names';
import { People } from './People';
import { acceptInvite, directPartner, roomSections, unreadCounts } from './rooms';
import { Avatar, errorText } from './widgets';

export function Sidebar({ selected, openDialog }: { selected: string | null; openDialog: (name: DialogName) => void }) {
  const { client } = useApp();
  useEmitterUpdates(client, [RoomEvent.Timeline, RoomEvent.Name, RoomEvent.Receipt, RoomEvent.UnreadNotifications, RoomEvent.AccountData]);
  const me = client.getUserId() ?? '';
  const myName = displayName(client, me);
  const sections = roomSections(client);
  return (
    <nav class="sidebar" aria-label="Rooms and people">
      <header class="me">
        <button type="button" class="me-button" onClick={() => openDialog('profile')}>
          <Avatar id={me} name={myName} mxc={client.getUser(me)?.avatarUrl} />
          <span class="visually-hidden">Your profile: </span>
          <span class="name">{myName}</span>
        </button>
        <button type="button" class="icon" onClick={() => openDialog('settings')} aria-label="Settings" title="Settings">
          ⚙
        </button>
      </header>
      <RelayStatus />
      <People />
      {sections.invites.length > 0 && (
        <section aria-labelledby="invites-heading">
          <h2 id="invites-heading">Invites</h2>
          <ul class="room-list">
            {sections.invites.map((room) => (
              <Invite key={room.roomId} client={client} room={room} />
            ))}
          </ul>
        </section>
      )}
      <RoomSection id="direct" title="Direct messages" rooms={sections.direct} selected={selected} />
      <RoomSection
        id="rooms"
        title="Rooms"
        rooms={sections.rooms}
        selected={selected}
        actions={
          <>
            <button type="button" class="small" onClick={() => openDialog('create-room')}>
              New room
            </button>
            <button type="button" class="small" onClick={() => openDialog('join-room')}>
              Join
            </button>
          </>
        }
      />
    </nav>
  );
}

/** The connection to the relay(s): what lets other people reach this homeserver. */
function RelayStatus() {
  const { host } = useApp();
  useInterval(1000);
  const relays = host.relays();
  let state: 'online' | 'connecting' | 'offline';
  let text: string;
  if (host.role === 'follower') {
    state = 'online';
    text = 'Served by another tab';
  } else if (relays.length === 0) {
    state = 'offline';
    text = 'No relay set: only this browser';
  } else if (host.reachable) {
    state = 'online';
    text = 'Online at the relay';
  } else {
    state = navigator.onLine ? 'connecting' : 'offline';
    text = navigator.onLine ? 'Connecting to the relay…' : 'Offline';
  }
  return (
    <p class={`relay-status ${state}`} role="status" data-state={state}>
      <span class="dot" aria-hidden="true" /> {text}
    </p>
  );
}

function RoomSection({ id, title, rooms, selected, actions }: { id: string; title: string; rooms: Room[]; selected: string | null; actions?: preact.ComponentChildren }) {
  return (
    <section aria-labelledby={`${id}-heading`}>
      <div class="section-header">
        <h2 id={`${id}-heading`}>{title}</h2>
        {actions}
      </div>
      {rooms.length === 0 ? (
        <p class="hint">{id === 'direct' ? 'No conversations yet.' : 'No rooms yet.'}</p>
      ) : (
        <ul class="room-list">
          {rooms.map((room) => (
            <RoomItem key={room.roomId} room={room} selected={room.roomId === selected} />
          ))}
        </ul>
      )}
    </section>
  );
}

function RoomItem({ room, selected }: { room: Room; selected: boolean }) {
  const { client, openRoom } = useApp();
  // The counts change on the room itself (after decryption, a receipt), which the client does
  // not re-emit; new messages already re-render the whole sidebar.
  useEmitterUpdates(room, [RoomEvent.UnreadNotifications, RoomEvent.Receipt]);
  const { total, highlight } = unreadCounts(room);
  const partner = directPartner(client, room);
  return (
    <li>
      <button type="button" class="room-item" aria-current={selected ? 'page' : undefined} data-room-id={room.roomId} onClick={() => openRoom(room.roomId)}>
        <Avatar id={partner ?? room.roomId} name={room.name} mxc={room.getMxcAvatarUrl()} size={28} />
        <span class="name">{room.name}</span>
        {total > 0 && (
          <span class={highlight > 0 ? 'badge highlight' : 'badge'} aria-label={`${total} unread${highlight > 0 ? `, ${highlight} mentioning you` : ''}`}>
            {total}
          </span>
        )}
      </button>
    </li>
  );
}

function Invite({ client, room }: { client: MatrixClient; room: Room }) {
  const { openRoom } = useApp();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const inviter = room.getDMInviter() ?? room.getMember(client.getUserId() ?? '')?.events.member?.getSender() ?? '';
  const act = async (accept: boolean) => {
    setBusy(true);
    setError(null);
    try {
      if (accept) {
        await acceptInvite(client, room);
        openRoom(room.roomId);
      } else {
        await client.leave(room.roomId);
      }
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <li class="invite" data-room-id={room.roomId}>
      <span class="name">{room.name}</span>
      {inviter && <span class="hint">from {displayName(client, inviter, room)}</span>}
      <span class="buttons">
        <button type="button" class="small primary" disabled={busy} onClick={() => void act(true)}>
          Accept
        </button>
        <button type="button" class="small" disabled={busy} onClick={() => void act(false)}>
          Decline
        </button>
      </span>
      {error && <span class="error">{error}</span>}
    </li>
  );
}
