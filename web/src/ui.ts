// The page's views: status line, sign-in form, room list, timeline, composer. Plain DOM; user
// content only ever goes in through textContent.

import { ClientEvent, EventStatus, EventType, MsgType, RoomEvent, type MatrixClient, type Room } from 'matrix-js-sdk';
import type { HearthHost } from './host';
import type { Session } from './session';
import { resetRelaySetting, saveRelaySetting } from './settings';

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`index.html has no #${id}`);
  return found as T;
}

export function showStatus(host: HearthHost): void {
  const render = () => {
    element('status-role').textContent = host.role;
    element('status-transport').textContent = host.transport;
  };
  render();
  host.addEventListener('rolechange', render);
  navigator.serviceWorker?.addEventListener('controllerchange', render);
  const showName = () => {
    host.serverName().then(
      (name) => (element('status-server').textContent = name),
      () => {},
    );
  };
  showName();
  host.addEventListener('servername', showName);
  // The relay connection changes on its own (reconnects, reservations): look once a second.
  const showRelay = () => {
    const relays = host.relays();
    element('status-relay').textContent =
      host.role === 'follower' ? 'via the serving tab' : relays.length === 0 ? 'none' : relays.map((relay) => relay.status).join(', ');
  };
  showRelay();
  setInterval(showRelay, 1000);
  host.addEventListener('error', () => showError(`This tab could not start the homeserver: ${String(host.error)}`));
}

export function showError(message: string | null): void {
  const box = element<HTMLParagraphElement>('status-error');
  box.textContent = message ?? '';
  box.hidden = message === null;
}

/** Runs `action` with the form's buttons disabled, showing its error if it fails. */
async function busy(form: HTMLFormElement, action: () => Promise<unknown>): Promise<void> {
  const buttons = [...form.querySelectorAll('button')];
  buttons.forEach((b) => (b.disabled = true));
  showError(null);
  try {
    await action();
  } catch (err) {
    showError(err instanceof Error ? err.message : String(err));
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

export function showSession(session: Session): void {
  const auth = element<HTMLFormElement>('auth');
  const chat = element<HTMLElement>('chat');
  let detach: (() => void) | null = null;

  auth.addEventListener('submit', (event) => {
    event.preventDefault();
    const submitter = (event as SubmitEvent).submitter as HTMLButtonElement | null;
    const username = element<HTMLInputElement>('username').value.trim();
    const password = element<HTMLInputElement>('password').value;
    void busy(auth, () =>
      submitter?.value === 'login' ? session.login(username, password) : session.register(username, password),
    );
  });
  element('logout').addEventListener('click', () => void session.logout());

  const render = () => {
    detach?.();
    detach = null;
    const client = session.client;
    auth.hidden = client !== null;
    chat.hidden = client === null;
    if (client) detach = showChat(client);
  };
  session.addEventListener('change', render);
  render();
}

/** Shows rooms, the selected room's timeline and the composer; returns how to stop. */
function showChat(client: MatrixClient): () => void {
  element('user-id').textContent = client.getUserId();
  const roomList = element<HTMLUListElement>('rooms');
  const timeline = element<HTMLOListElement>('timeline');
  const roomName = element('room-name');
  const composer = element<HTMLFormElement>('composer');
  const input = element<HTMLInputElement>('composer-input');
  const send = element<HTMLButtonElement>('send');
  const createForm = element<HTMLFormElement>('create-room-form');
  const newRoomName = element<HTMLInputElement>('new-room-name');
  let selected: string | null = null;

  const rooms = (): Room[] =>
    client
      .getRooms()
      .filter((room) => room.getMyMembership() === 'join')
      .sort((a, b) => b.getLastActiveTimestamp() - a.getLastActiveTimestamp());

  const renderRooms = () => {
    const joined = rooms();
    if (selected === null && joined[0]) selected = joined[0].roomId;
    roomList.replaceChildren(
      ...joined.map((room) => {
        const item = document.createElement('li');
        const button = document.createElement('button');
        button.type = 'button';
        button.textContent = room.name;
        button.dataset.roomId = room.roomId;
        button.setAttribute('aria-current', String(room.roomId === selected));
        button.addEventListener('click', () => select(room.roomId));
        item.append(button);
        return item;
      }),
    );
  };

  const renderTimeline = () => {
    const room = selected === null ? null : client.getRoom(selected);
    roomName.textContent = room?.name ?? 'No room selected';
    input.disabled = send.disabled = room === null;
    const messages = (room?.getLiveTimeline().getEvents() ?? []).filter(
      (event) => event.getType() === EventType.RoomMessage && event.getContent().msgtype === MsgType.Text,
    );
    timeline.replaceChildren(
      ...messages.map((event) => {
        const item = document.createElement('li');
        const sender = document.createElement('span');
        sender.className = 'sender';
        sender.textContent = event.sender?.name ?? event.getSender() ?? '';
        const body = document.createElement('span');
        body.className = 'body';
        body.textContent = String(event.getContent().body ?? '');
        item.append(sender, body);
        const status = event.status;
        if (status !== null && status !== EventStatus.SENT) item.classList.add('pending');
        item.dataset.eventId = event.getId() ?? '';
        return item;
      }),
    );
    timeline.scrollTop = timeline.scrollHeight;
  };

  const select = (roomId: string) => {
    selected = roomId;
    renderRooms();
    renderTimeline();
  };

  const onCreate = (event: SubmitEvent) => {
    event.preventDefault();
    const name = newRoomName.value.trim();
    void busy(createForm, async () => {
      const { room_id } = await client.createRoom({ name });
      newRoomName.value = '';
      select(room_id);
    });
  };
  const onSend = (event: SubmitEvent) => {
    event.preventDefault();
    const body = input.value;
    if (selected === null || body === '') return;
    input.value = '';
    client.sendTextMessage(selected, body).catch((err: unknown) => showError(`Not sent: ${String(err)}`));
  };

  // Every sync response and timeline event asks for a render, and a render rebuilds the whole
  // list: done at once, a busy room kept the tab's main thread (which also runs the homeserver)
  // busy re-rendering for every message. One render per frame at most.
  let frame: number | null = null;
  const onRoomsChanged = () => {
    frame ??= requestAnimationFrame(() => {
      frame = null;
      renderRooms();
      renderTimeline();
    });
  };
  // A message in any room may reorder the room list.
  const onTimeline = onRoomsChanged;
  createForm.addEventListener('submit', onCreate);
  composer.addEventListener('submit', onSend);
  client.on(ClientEvent.Room, onRoomsChanged);
  client.on(ClientEvent.Sync, onRoomsChanged);
  client.on(RoomEvent.Name, onRoomsChanged);
  client.on(RoomEvent.MyMembership, onRoomsChanged);
  client.on(RoomEvent.Timeline, onTimeline);
  client.on(RoomEvent.LocalEchoUpdated, onTimeline);
  onRoomsChanged();

  return () => {
    createForm.removeEventListener('submit', onCreate);
    composer.removeEventListener('submit', onSend);
    client.off(ClientEvent.Room, onRoomsChanged);
    client.off(ClientEvent.Sync, onRoomsChanged);
    client.off(RoomEvent.Name, onRoomsChanged);
    client.off(RoomEvent.MyMembership, onRoomsChanged);
    client.off(RoomEvent.Timeline, onTimeline);
    client.off(RoomEvent.LocalEchoUpdated, onTimeline);
    if (frame !== null) cancelAnimationFrame(frame);
    roomList.replaceChildren();
    timeline.replaceChildren();
  };
}

/** The relay setting: a text field of multiaddrs, one per line; saving reloads the page so the
 *  homeserver restarts on the new relays. */
export function showRelaySetting(current: string[]): void {
  const form = element<HTMLFormElement>('relay-form');
  const input = element<HTMLTextAreaElement>('relay-input');
  input.value = current.join('\n');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const relays = input.value
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '');
    saveRelaySetting(relays);
    location.reload();
  });
  element<HTMLButtonElement>('relay-reset').addEventListener('click', () => {
    resetRelaySetting();
    location.reload();
  });
}
