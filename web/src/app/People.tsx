// People online at the relay now (other homeservers and their public users), each one a click
// from an encrypted direct message; and an invite by pasted user ID.

import { useState } from 'preact/hooks';
import { useApp } from './context';
import { fetchPeers } from './hearth-api';
import { usePolled } from './hooks';
import { localpart, parseUserId, shortServer } from './names';
import { startDirect } from './rooms';
import { Avatar, errorText } from './widgets';

const PEERS_POLL_MS = 5_000;

export function People() {
  const { client, fetch, host, openRoom } = useApp();
  const peers = usePolled(() => fetchPeers(client, fetch), PEERS_POLL_MS, client);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const me = client.getUserId();
  const users = (peers ?? []).flatMap((peer) => peer.users.map((user) => ({ ...user, server: peer.server_name }))).filter((user) => user.user_id !== me);

  const chat = async (userId: string) => {
    setBusy(userId);
    setError(null);
    try {
      openRoom(await startDirect(client, userId));
    } catch (err) {
      setError(`Could not start a chat with ${localpart(userId)}: ${errorText(err)}`);
    } finally {
      setBusy(null);
    }
  };

  const invite = (event: SubmitEvent) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const field = form.elements.namedItem('user-id') as HTMLInputElement;
    const userId = parseUserId(field.value);
    if (!userId) {
      setError('That is not a user ID: it looks like @name:server');
      return;
    }
    field.value = '';
    void chat(userId);
  };

  return (
    <section aria-labelledby="people-heading" class="people">
      <h2 id="people-heading">People online</h2>
      {peers === null ? (
        <p class="hint">Looking…</p>
      ) : users.length === 0 ? (
        <p class="hint">{host.reachable ? 'Nobody else is online at the relay right now.' : 'Not connected to a relay.'}</p>
      ) : (
        <ul class="people-list">
          {users.map((user) => {
            const name = user.displayname || localpart(user.user_id);
            return (
              <li key={user.user_id} data-user-id={user.user_id}>
                <Avatar id={user.user_id} name={name} mxc={user.avatar_url} size={28} />
                <span class="name" title={user.user_id}>
                  {name}
                  <span class="hint"> · {shortServer(user.server)}</span>
                </span>
                <button type="button" class="small" disabled={busy !== null} onClick={() => void chat(user.user_id)} aria-label={`Start a chat with ${name}`}>
                  {busy === user.user_id ? 'Starting…' : 'Chat'}
                </button>
              </li>
            );
          })}
        </ul>
      )}
      <form class="inline-form" onSubmit={invite}>
        <label for="invite-user-id" class="visually-hidden">
          User ID to chat with
        </label>
        <input id="invite-user-id" name="user-id" placeholder="Paste a user ID" autocomplete="off" spellcheck={false} />
        <button type="submit" class="small" disabled={busy !== null}>
          Chat
        </button>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}
