// The app: a splash while the homeserver starts, the first-run form, then the chat (sidebar
// with people and rooms, the open room). Rendered into #app by main.ts.

import { ClientEvent, EventType, RelationType, RoomEvent, SyncState, type MatrixClient, type MatrixEvent, type Room } from 'matrix-js-sdk';
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { HearthHost } from '../host';
import type { Session } from '../session';
import { App as AppContextProvider, type AppContext } from './context';
import { Dialogs, type DialogName } from './dialogs';
import { useEmitterUpdates, useTargetEvent } from './hooks';
import { Onboarding } from './Onboarding';
import { RoomView } from './RoomView';
import { Sidebar } from './Sidebar';
import { useIncomingVerifications, VerificationDialog } from './Verification';
import type { VerificationRequest } from 'matrix-js-sdk/lib/crypto-api/index.js';

export interface AppProps {
  host: HearthHost;
  session: Session;
  /** Resolves once the homeserver answers. */
  ready: Promise<void>;
  relaySetting: string[];
}

export function mountApp(root: HTMLElement, props: AppProps): void {
  render(<Root {...props} />, root);
}

function Root({ host, session, ready, relaySetting }: AppProps) {
  const [phase, setPhase] = useState<'starting' | 'ready' | { error: string }>('starting');
  useTargetEvent(session, 'change');
  useEffect(() => {
    ready.then(
      () => setPhase('ready'),
      (err: unknown) => setPhase({ error: err instanceof Error ? err.message : String(err) }),
    );
  }, [ready]);
  useEffect(() => {
    const onError = () => setPhase({ error: `This tab could not start the homeserver: ${String(host.error)}` });
    host.addEventListener('error', onError);
    return () => host.removeEventListener('error', onError);
  }, [host]);

  if (typeof phase === 'object') {
    return (
      <div class="splash" role="alert">
        <h1>Hearth</h1>
        <p class="error">The homeserver is not reachable: {phase.error}</p>
        <button type="button" onClick={() => location.reload()}>
          Try again
        </button>
      </div>
    );
  }
  if (phase === 'starting' || session.resuming) {
    return (
      <div class="splash" aria-busy="true">
        <h1>Hearth</h1>
        <p>Starting your homeserver…</p>
      </div>
    );
  }
  if (session.elsewhere) return <OpenElsewhere session={session} />;
  const client = session.client;
  if (!client) return <Onboarding session={session} />;
  return <Chat key={client.getUserId()} client={client} host={host} session={session} relaySetting={relaySetting} />;
}

/** Signed in, with the client running in another tab of this browser: one tab at a time keeps
 *  the encryption keys in step (see client-lock.ts). Taking over stops the client there. */
function OpenElsewhere({ session }: { session: Session }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const useHere = () => {
    setBusy(true);
    setError(null);
    session.useHere().then(
      () => setBusy(false),
      (err: unknown) => {
        setBusy(false);
        setError(err instanceof Error ? err.message : String(err));
      },
    );
  };
  return (
    <div class="splash" aria-busy={busy}>
      <h1>Hearth</h1>
      <p>Hearth is open in another tab.</p>
      <p class="hint">
        One tab at a time can be signed in, so that your encryption keys stay in step. Your homeserver keeps running either way.
      </p>
      <button type="button" class="primary" onClick={useHere} disabled={busy}>
        {busy ? 'Moving Hearth to this tab…' : 'Use Hearth here'}
      </button>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function roomFromHash(): string | null {
  const match = /^#\/room\/(.+)$/.exec(location.hash);
  return match?.[1] ? decodeURIComponent(match[1]) : null;
}

function Chat({ client, host, session, relaySetting }: { client: MatrixClient; host: HearthHost; session: Session; relaySetting: string[] }) {
  const [roomId, setRoomId] = useState<string | null>(roomFromHash);
  const [dialog, setDialog] = useState<DialogName | null>(null);
  const [outgoing, setOutgoing] = useState<VerificationRequest | null>(null);
  const [incoming, dismissIncoming] = useIncomingVerifications(client);
  const verification = outgoing ?? incoming[0] ?? null;
  useEmitterUpdates(client, [ClientEvent.Room, ClientEvent.Sync, RoomEvent.MyMembership]);
  useEffect(() => {
    const onHash = () => setRoomId(roomFromHash());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const context = useMemo<AppContext>(
    () => ({
      client,
      fetch: host.fetch,
      host,
      relaySetting,
      showVerification: setOutgoing,
      openRoom: (id) => {
        setRoomId(id);
        const hash = id === null ? '' : `#/room/${encodeURIComponent(id)}`;
        if (location.hash !== hash) history.replaceState(null, '', hash === '' ? location.pathname + location.search : hash);
      },
    }),
    [client, host, relaySetting],
  );
  useNotifications(client);
  const room = roomId === null ? null : client.getRoom(roomId);
  return (
    <AppContextProvider.Provider value={context}>
      <div class="chat" data-view={room ? 'room' : 'list'}>
        <Sidebar selected={room?.roomId ?? null} openDialog={setDialog} />
        <main class="main" aria-label="Conversation">
          {room ? (
            <RoomView key={room.roomId} room={room} openDialog={setDialog} />
          ) : (
            <div class="empty">
              <h2>Welcome to Hearth</h2>
              <p>Your homeserver runs in this tab. Pick someone online to start an encrypted chat, or create a room.</p>
            </div>
          )}
        </main>
      </div>
      {dialog && <Dialogs name={dialog} room={room} session={session} onClose={() => setDialog(null)} />}
      {verification && (
        <VerificationDialog
          key={verification.transactionId ?? verification.otherUserId}
          request={verification}
          onClose={() => (verification === outgoing ? setOutgoing(null) : dismissIncoming(verification))}
        />
      )}
    </AppContextProvider.Provider>
  );
}

/** New messages from others while the tab is hidden become system notifications (once the user
 *  allowed them in the settings); clicking one opens its room. An encrypted message is only known
 *  to be a message once decrypted, so it waits for that; edits and deleted messages stay quiet. */
function useNotifications(client: MatrixClient) {
  useEffect(() => {
    let live = true;
    const notify = (event: MatrixEvent, room: Room) => {
      if (!live || document.visibilityState === 'visible') return;
      if (event.getType() !== EventType.RoomMessage || event.isRedacted() || event.isRelation(RelationType.Replace)) return;
      const body = String(event.getContent().body ?? '');
      const notification = new Notification(room.name, { body: body.slice(0, 200), tag: room.roomId });
      notification.onclick = () => {
        focus();
        location.hash = `#/room/${encodeURIComponent(room.roomId)}`;
      };
    };
    const onTimeline = (event: MatrixEvent, room: Room | undefined, toStartOfTimeline: boolean | undefined) => {
      if (toStartOfTimeline || !room || typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
      if (event.getSender() === client.getUserId() || event.isState()) return;
      if (client.getSyncState() !== SyncState.Syncing || Date.now() - event.getTs() > 60_000) return;
      client.decryptEventIfNeeded(event).then(
        () => notify(event, room),
        (err: unknown) => console.warn('hearth: a message to notify of did not decrypt', err),
      );
    };
    client.on(RoomEvent.Timeline, onTimeline);
    return () => {
      live = false;
      client.off(RoomEvent.Timeline, onTimeline);
    };
  }, [client]);
}
