// The app's dialogs: your profile (user ID, copy, QR code), settings, new room, join a room, and
// the open room's settings.

import { EventType, type MatrixClient, type Room } from 'matrix-js-sdk';
import qrcode from 'qrcode-generator';
import { useEffect, useState } from 'preact/hooks';
import { resetRelaySetting, saveRelaySetting } from '../settings';
import type { Session } from '../session';
import { AvatarSetting, Devices } from './AccountSettings';
import { useApp } from './context';
import { fetchPeers } from './hearth-api';
import { displayName, localpart, parseUserId, shortServer, userUri } from './names';
import { createRoom } from './rooms';
import { KeyBackupSettings } from './KeyBackup';
import { CopyButton, Dialog, ErrorLine, errorText, formText } from './widgets';
import { Transfer } from './Transfer';

export type DialogName = 'profile' | 'settings' | 'create-room' | 'join-room' | 'room-settings';

export function Dialogs({ name, room, session, onClose }: { name: DialogName; room: Room | null; session: Session; onClose: () => void }) {
  switch (name) {
    case 'profile':
      return <Profile onClose={onClose} />;
    case 'settings':
      return <Settings session={session} onClose={onClose} />;
    case 'create-room':
      return <CreateRoom onClose={onClose} />;
    case 'join-room':
      return <JoinRoom onClose={onClose} />;
    case 'room-settings':
      return room ? <RoomSettings room={room} onClose={onClose} /> : null;
  }
}

/** Runs a form's action with its buttons disabled and its error shown. */
function useAction(): { busy: boolean; error: string | null; run: (action: () => Promise<unknown>) => Promise<boolean> } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (action: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
      return true;
    } catch (err) {
      setError(errorText(err));
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}

function QrCode({ text, label }: { text: string; label: string }) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const count = qr.getModuleCount();
  const cells: string[] = [];
  for (let row = 0; row < count; row++) {
    for (let col = 0; col < count; col++) if (qr.isDark(row, col)) cells.push(`M${col + 2},${row + 2}h1v1h-1z`);
  }
  return (
    <svg class="qr" viewBox={`0 0 ${count + 4} ${count + 4}`} role="img" aria-label={label} data-qr-text={text}>
      <rect width={count + 4} height={count + 4} fill="#fff" />
      <path d={cells.join('')} fill="#000" />
    </svg>
  );
}

function Profile({ onClose }: { onClose: () => void }) {
  const { client } = useApp();
  const me = client.getUserId() ?? '';
  return (
    <Dialog title="Your profile" onClose={onClose}>
      <p>
        People on other Hearth servers reach you with this user ID. Share it, or let them scan the code.
      </p>
      <p class="user-id">
        <code id="my-user-id">{me}</code> <CopyButton text={me} label="Copy user ID" />
      </p>
      <QrCode text={userUri(me)} label={`QR code of your user ID ${me}`} />
      <p class="hint">
        Your name is shown as “{displayName(client, me)}”; your server is {shortServer(me.slice(me.indexOf(':') + 1))}.
      </p>
    </Dialog>
  );
}

function Settings({ session, onClose }: { session: Session; onClose: () => void }) {
  const { client, host, relaySetting } = useApp();
  const me = client.getUserId() ?? '';
  const profile = useAction();
  const [notify, setNotify] = useState(typeof Notification === 'undefined' ? 'unsupported' : Notification.permission);
  const saveName = (event: SubmitEvent) => {
    event.preventDefault();
    const name = formText(event.currentTarget as HTMLFormElement, 'name').trim();
    if (name) void profile.run(() => client.setDisplayName(name));
  };
  const saveRelays = (event: SubmitEvent) => {
    event.preventDefault();
    const text = formText(event.currentTarget as HTMLFormElement, 'relays');
    const list = text
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '');
    saveRelaySetting(list);
    location.reload();
  };
  return (
    <Dialog title="Settings" onClose={onClose} wide>
      <section aria-labelledby="settings-profile">
        <h3 id="settings-profile">Profile</h3>
        <AvatarSetting />
        <form class="stack" onSubmit={saveName}>
          <label for="settings-name">Display name</label>
          <input id="settings-name" name="name" defaultValue={displayName(client, me)} maxLength={64} required />
          <button type="submit" disabled={profile.busy}>
            Save name
          </button>
          <ErrorLine error={profile.error} />
        </form>
      </section>
      <section aria-labelledby="settings-devices">
        <h3 id="settings-devices">Devices</h3>
        <Devices />
      </section>
      <section aria-labelledby="settings-relays">
        <h3 id="settings-relays">Relays</h3>
        <p class="hint">
          Other people reach your homeserver through a relay. {host.reachable ? 'You are online at the relay.' : 'You are not connected to a relay now.'}
        </p>
        <ul class="relay-list">
          {host.relays().map((relay) => (
            <li key={relay.relay}>
              <code>{relay.relay}</code>: {relay.status}
            </li>
          ))}
        </ul>
        <form class="stack" onSubmit={saveRelays}>
          <label for="relay-input">Relays to federate through (multiaddrs, one per line)</label>
          <textarea id="relay-input" name="relays" rows={3} spellcheck={false} defaultValue={relaySetting.join('\n')} />
          <div class="buttons">
            <button type="submit">
              Save and restart
            </button>
            <button
              type="button"
              onClick={() => {
                resetRelaySetting();
                location.reload();
              }}
            >
              Use the default
            </button>
          </div>
        </form>
      </section>
      <section aria-labelledby="settings-notifications">
        <h3 id="settings-notifications">Notifications</h3>
        {notify === 'unsupported' ? (
          <p class="hint">This browser cannot show notifications.</p>
        ) : notify === 'granted' ? (
          <p class="hint">You are notified of new messages while Hearth is in the background.</p>
        ) : notify === 'denied' ? (
          <p class="hint">Notifications are blocked for this site in the browser's settings.</p>
        ) : (
          <button type="button" onClick={() => void Notification.requestPermission().then(setNotify)}>
            Notify me of new messages
          </button>
        )}
      </section>
      <KeyBackupSettings />
      <Transfer />
      <section aria-labelledby="settings-session">
        <h3 id="settings-session">Session</h3>
        <p class="hint">Signed in as {me}.</p>
        <button
          type="button"
          class="danger"
          onClick={() => {
            if (confirm('Log out? Without a password or an exported identity you cannot sign in to this account again.')) void session.logout();
          }}
        >
          Log out
        </button>
      </section>
    </Dialog>
  );
}

function CreateRoom({ onClose }: { onClose: () => void }) {
  const { client, openRoom } = useApp();
  const action = useAction();
  const [isPublic, setPublic] = useState(false);
  const [encrypted, setEncrypted] = useState(true);
  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const name = formText(form, 'name').trim();
    const topic = formText(form, 'topic').trim();
    let roomId = '';
    const ok = await action.run(async () => {
      roomId = await createRoom(client, { name, topic, public: isPublic, encrypted });
    });
    if (ok) {
      onClose();
      openRoom(roomId);
    }
  };
  return (
    <Dialog title="New room" onClose={onClose}>
      <form class="stack" onSubmit={(event) => void submit(event)}>
        <label for="new-room-name">Name</label>
        <input id="new-room-name" name="name" required maxLength={255} autoFocus />
        <label for="new-room-topic">Topic (optional)</label>
        <input id="new-room-topic" name="topic" maxLength={1000} />
        <fieldset>
          <legend>Who can join</legend>
          <label>
            <input
              type="radio"
              name="visibility"
              checked={!isPublic}
              onChange={() => {
                setPublic(false);
                setEncrypted(true);
              }}
            />{' '}
            Private: people you invite
          </label>
          <label>
            <input
              type="radio"
              name="visibility"
              checked={isPublic}
              onChange={() => {
                setPublic(true);
                setEncrypted(false);
              }}
            />{' '}
            Public: anyone, listed in your server's directory
          </label>
        </fieldset>
        <label>
          <input type="checkbox" checked={encrypted} onChange={(event) => setEncrypted((event.currentTarget).checked)} /> End-to-end
          encrypted (cannot be turned off later)
        </label>
        <button type="submit" class="primary" disabled={action.busy}>
          {action.busy ? 'Creating…' : 'Create room'}
        </button>
        <ErrorLine error={action.error} />
      </form>
    </Dialog>
  );
}

function JoinRoom({ onClose }: { onClose: () => void }) {
  const { client, fetch, openRoom } = useApp();
  const action = useAction();
  const [rooms, setRooms] = useState<PeerRoom[] | null>(null);
  useEffect(() => {
    let live = true;
    publicRoomsOfPeers(client, fetch).then(
      (found) => live && setRooms(found),
      () => live && setRooms([]),
    );
    return () => {
      live = false;
    };
  }, [client, fetch]);
  const join = async (target: string, server: string) => {
    let roomId = '';
    const ok = await action.run(async () => {
      roomId = (await client.joinRoom(target, { viaServers: [server] })).roomId;
    });
    if (ok) {
      onClose();
      openRoom(roomId);
    }
  };
  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    const target = formText(event.currentTarget as HTMLFormElement, 'room').trim();
    if (!/^[!#][^:]+:.+$/.test(target)) {
      await action.run(() => Promise.reject(new Error('A room ID looks like !id:server, an alias like #name:server')));
      return;
    }
    await join(target, target.slice(target.indexOf(':') + 1));
  };
  return (
    <Dialog title="Join a room" onClose={onClose} wide>
      <form class="stack" onSubmit={(event) => void submit(event)}>
        <label for="join-room-id">Room alias or ID</label>
        <input id="join-room-id" name="room" required placeholder="#room:server or !id:server" autoFocus spellcheck={false} />
        <button type="submit" class="primary" disabled={action.busy}>
          {action.busy ? 'Joining…' : 'Join'}
        </button>
        <ErrorLine error={action.error} />
      </form>
      <h3>Public rooms of people online</h3>
      {rooms === null ? (
        <p class="hint" aria-busy="true">
          Asking the peers online…
        </p>
      ) : rooms.length === 0 ? (
        <p class="hint">No public rooms among the peers online right now.</p>
      ) : (
        <ul class="public-rooms">
          {rooms.map((room) => (
            <li key={room.room_id} data-room-id={room.room_id}>
              <span class="name">
                {room.name ?? room.canonical_alias ?? room.room_id}
                <span class="hint">
                  {' '}
                  · {room.num_joined_members} {room.num_joined_members === 1 ? 'member' : 'members'} · {shortServer(room.server)}
                </span>
                {room.topic && <span class="hint topic">{room.topic}</span>}
              </span>
              <button type="button" class="small" disabled={action.busy || client.getRoom(room.room_id)?.getMyMembership() === 'join'} onClick={() => void join(room.room_id, room.server)} aria-label={`Join ${room.name ?? room.room_id}`}>
                {client.getRoom(room.room_id)?.getMyMembership() === 'join' ? 'Joined' : 'Join'}
              </button>
            </li>
          ))}
        </ul>
      )}
    </Dialog>
  );
}

interface PeerRoom {
  room_id: string;
  name?: string;
  topic?: string;
  canonical_alias?: string;
  num_joined_members: number;
  server: string;
}

/** The public room directories of the servers online at the relay (and this one), each asked
 *  through this homeserver (`GET /publicRooms?server=`, which it forwards over federation). */
async function publicRoomsOfPeers(client: MatrixClient, fetchFn: typeof fetch): Promise<PeerRoom[]> {
  const own = client.getDomain() ?? '';
  const servers = [own, ...(await fetchPeers(client, fetchFn)).map((peer) => peer.server_name)];
  const answers = await Promise.allSettled(
    servers.map(async (server) => {
      const { chunk } = await client.publicRooms(server === own ? { limit: 50 } : { server, limit: 50 });
      return chunk.map((room) => ({ ...room, server }));
    }),
  );
  return answers.flatMap((answer) => (answer.status === 'fulfilled' ? answer.value : []));
}

function RoomSettings({ room, onClose }: { room: Room; onClose: () => void }) {
  const { client, openRoom } = useApp();
  const me = client.getUserId() ?? '';
  const details = useAction();
  const invite = useAction();
  const leave = useAction();
  const power = useAction();
  const state = room.currentState;
  const topic = state.getStateEvents(EventType.RoomTopic, '')?.getContent<{ topic?: string }>().topic ?? '';
  const canEdit = state.maySendStateEvent(EventType.RoomName, me);
  const members = room.getMembers().filter((member) => member.membership === 'join' || member.membership === 'invite');
  // matrix-js-sdk's member power levels count room version 12's creators, who are not listed
  // in the power levels but outrank everyone (Infinity).
  const levelOf = (userId: string) => room.getMember(userId)?.powerLevel ?? 0;
  const myLevel = levelOf(me);
  const canInvite = state.hasSufficientPowerLevelFor('invite', myLevel);
  const canSetLevels = state.maySendStateEvent(EventType.RoomPowerLevels, me);

  const saveDetails = (event: SubmitEvent) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const name = formText(form, 'name').trim();
    const newTopic = formText(form, 'topic').trim();
    void details.run(async () => {
      if (name !== (state.getStateEvents(EventType.RoomName, '')?.getContent<{ name?: string }>().name ?? '')) await client.setRoomName(room.roomId, name);
      if (newTopic !== topic) await client.setRoomTopic(room.roomId, newTopic);
    });
  };
  const sendInvite = (event: SubmitEvent) => {
    event.preventDefault();
    const field = (event.currentTarget as HTMLFormElement).elements.namedItem('user-id') as HTMLInputElement;
    const userId = parseUserId(field.value);
    void invite.run(async () => {
      if (!userId) throw new Error('That is not a user ID: it looks like @name:server');
      await client.invite(room.roomId, userId);
      field.value = '';
    });
  };
  const setLevel = (userId: string, level: number) => void power.run(() => client.setPowerLevel(room.roomId, userId, level));

  return (
    <Dialog title={`Room settings: ${room.name}`} onClose={onClose} wide>
      <form class="stack" onSubmit={saveDetails}>
        <label for="room-settings-name">Name</label>
        <input id="room-settings-name" name="name" defaultValue={state.getStateEvents(EventType.RoomName, '')?.getContent<{ name?: string }>().name ?? ''} disabled={!canEdit} />
        <label for="room-settings-topic">Topic</label>
        <input id="room-settings-topic" name="topic" defaultValue={topic} disabled={!canEdit} />
        {canEdit && (
          <button type="submit" disabled={details.busy}>
            Save
          </button>
        )}
        <ErrorLine error={details.error} />
      </form>
      <p class="hint">
        Room ID: <code>{room.roomId}</code> <CopyButton text={room.roomId} label="Copy" />
      </p>
      <p class="hint">{room.hasEncryptionStateEvent() ? '🔒 Messages here are end-to-end encrypted.' : 'Messages here are not encrypted.'}</p>
      <h3>Members</h3>
      <ul class="members">
        {members.map((member) => {
          const level = levelOf(member.userId);
          return (
            <li key={member.userId}>
              <span class="name" title={member.userId}>
                {displayName(client, member.userId, room)} <span class="hint">{localpart(member.userId) !== member.name ? `@${localpart(member.userId)}` : ''}</span>
              </span>
              <span class="hint">
                {member.membership === 'invite' ? 'invited' : level === Infinity ? 'creator' : level >= 100 ? 'admin' : level >= 50 ? 'moderator' : ''}
              </span>
              {member.userId !== me && canSetLevels && level < myLevel && member.membership === 'join' && (
                <select aria-label={`Power level of ${member.name}`} value={String(level >= 100 ? 100 : level >= 50 ? 50 : 0)} onChange={(event) => setLevel(member.userId, Number((event.currentTarget).value))}>
                  <option value="0">Member</option>
                  <option value="50">Moderator</option>
                  <option value="100">Admin</option>
                </select>
              )}
            </li>
          );
        })}
      </ul>
      <ErrorLine error={power.error} />
      {canInvite && (
        <form class="inline-form" onSubmit={sendInvite}>
          <label for="room-invite" class="visually-hidden">
            User ID to invite
          </label>
          <input id="room-invite" name="user-id" placeholder="Invite by user ID" spellcheck={false} />
          <button type="submit" disabled={invite.busy}>
            Invite
          </button>
        </form>
      )}
      <ErrorLine error={invite.error} />
      <h3>Leave</h3>
      <button
        type="button"
        class="danger"
        disabled={leave.busy}
        onClick={() =>
          void leave.run(async () => {
            await client.leave(room.roomId);
            onClose();
            openRoom(null);
          })
        }
      >
        Leave the room
      </button>
      <ErrorLine error={leave.error} />
    </Dialog>
  );
}
