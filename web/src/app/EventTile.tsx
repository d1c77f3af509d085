// One timeline entry: a message (text with Markdown, an image, a file, an emote, a reply, edited,
// deleted, or undecryptable), or a line for a change to the room. Its actions: reply, react,
// edit, delete, retry; its state: sending, sent, delivered to the peers, failed.

import { EventStatus, EventType, MsgType, RelationType, type MatrixEvent, type Room } from 'matrix-js-sdk';
import { useEffect, useState } from 'preact/hooks';
import { useApp } from './context';
import { stripReplyFallback, sanitizeHtml } from './markdown';
import { useMediaUrl, type EncryptedFile } from './media';
import { RestoreFromBackupButton } from './KeyBackup';
import { displayName } from './names';
import type { ComposerMode } from './RoomView';
import { Avatar, errorText } from './widgets';

const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮'];

const STATE_TYPES = new Set<string>([
  EventType.RoomCreate,
  EventType.RoomMember,
  EventType.RoomName,
  EventType.RoomTopic,
  EventType.RoomEncryption,
  EventType.RoomAvatar,
  EventType.RoomJoinRules,
  EventType.RoomHistoryVisibility,
]);

/** Whether the timeline shows `event` as a tile of its own (reactions and edits are shown on
 *  the message they belong to; redactions by the message they removed). */
export function isShown(event: MatrixEvent): boolean {
  const type = event.getType();
  if (type === EventType.RoomMessage || type === EventType.RoomMessageEncrypted || type === EventType.Sticker) {
    return event.getRelation()?.rel_type !== RelationType.Replace;
  }
  return STATE_TYPES.has(type) && event.isState();
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

interface TileProps {
  event: MatrixEvent;
  room: Room;
  continuation: boolean;
  readBy: string[];
  /** Servers that have not received this event yet (null: unknown). */
  waitingFor: string[] | null;
  peerCount: number;
  /** Whether this is the user's latest message (the one that shows sent or delivered). */
  latestOwn: boolean;
  setMode: (mode: ComposerMode) => void;
}

export function EventTile(props: TileProps) {
  const { event, room } = props;
  if (event.isState() && STATE_TYPES.has(event.getType())) return <StateLine event={event} room={room} />;
  if (event.getContent().msgtype === 'm.key.verification.request') return <VerificationLine event={event} room={room} />;
  return <MessageTile {...props} />;
}

function MessageTile({ event, room, continuation, readBy, waitingFor, peerCount, latestOwn, setMode }: TileProps) {
  const { client } = useApp();
  const me = client.getUserId() ?? '';
  const sender = event.getSender() ?? '';
  const name = displayName(client, sender, room);
  const mine = sender === me;
  const redacted = event.isRedacted();
  const failed = event.isDecryptionFailure();
  const id = event.getId() ?? '';
  const sent = id.startsWith('$');
  const canAct = sent && !redacted && !failed && event.status === null;
  const edited = event.replacingEventId() !== undefined && !redacted;
  return (
    <li class={`event message${continuation ? ' continuation' : ''}${mine ? ' mine' : ''}`} data-event-id={id} data-sender={sender}>
      {continuation ? (
        <span class="gutter" aria-hidden="true" />
      ) : (
        <Avatar id={sender} name={name} mxc={room.getMember(sender)?.getMxcAvatarUrl()} size={36} />
      )}
      <div class="event-main">
        {!continuation && (
          <div class="event-meta">
            <span class="sender" title={sender}>
              {name}
            </span>
            <time dateTime={new Date(event.getTs()).toISOString()}>{timeFormat.format(event.getTs())}</time>
          </div>
        )}
        <ReplyQuote event={event} room={room} />
        <div class="event-body">
          {redacted ? (
            <p class="redacted">Message deleted</p>
          ) : failed ? (
            <p class="undecryptable" role="note">
              🔒 Unable to decrypt this message: the keys have not reached this device. <RestoreFromBackupButton />
            </p>
          ) : (
            <MessageBody event={event} />
          )}
          {edited && <span class="edited"> (edited)</span>}
        </div>
        <Reactions event={event} room={room} />
        <div class="event-footer">
          {mine && <DeliveryState event={event} waitingFor={waitingFor} peerCount={peerCount} room={room} settledShown={latestOwn} />}
          {readBy.length > 0 && (
            <span class="read-by" role="img" aria-label={`Read by ${readBy.map((userId) => displayName(client, userId, room)).join(', ')}`}>
              {readBy.slice(0, 4).map((userId) => (
                <Avatar key={userId} id={userId} name={displayName(client, userId, room)} size={14} />
              ))}
            </span>
          )}
        </div>
      </div>
      {canAct && <Actions event={event} room={room} mine={mine} setMode={setMode} />}
    </li>
  );
}

function MessageBody({ event }: { event: MatrixEvent }) {
  const { client } = useApp();
  const content = event.getContent<{ msgtype?: string; body?: string; format?: string; formatted_body?: string }>();
  const body = typeof content.body === 'string' ? content.body : '';
  switch (content.msgtype) {
    case MsgType.Image:
      return <ImageBody event={event} />;
    case MsgType.File:
    case MsgType.Video:
    case MsgType.Audio:
      return <FileBody event={event} />;
    case MsgType.Emote:
      return (
        <p class="emote">
          * {displayName(client, event.getSender() ?? '')} {stripReplyFallback(body)}
        </p>
      );
    default:
      if (content.format === 'org.matrix.custom.html' && typeof content.formatted_body === 'string') {
        // Sanitised to the spec's allowed tags; nothing else reaches innerHTML.
        return <div class="formatted" dangerouslySetInnerHTML={{ __html: sanitizeHtml(content.formatted_body) }} />;
      }
      return <p class={content.msgtype === MsgType.Notice ? 'notice' : 'text'}>{stripReplyFallback(body)}</p>;
  }
}

interface FileContent {
  body?: string;
  filename?: string;
  url?: string;
  file?: EncryptedFile;
  info?: { mimetype?: string; size?: number; w?: number; h?: number };
}

function useMedia(content: FileContent): { url: string | null; error: string | null } {
  const source = content.file ?? content.url;
  const media = useMediaUrl(source, content.info?.mimetype);
  return source ? media : { url: null, error: 'no file in this message' };
}

function ImageBody({ event }: { event: MatrixEvent }) {
  const content = event.getContent<FileContent>();
  const { url, error } = useMedia(content);
  const name = content.filename ?? content.body ?? 'image';
  const w = content.info?.w;
  const h = content.info?.h;
  const scale = w && h ? Math.min(1, 320 / w, 240 / h) : 1;
  const style = w && h ? { width: `${Math.round(w * scale)}px`, height: `${Math.round(h * scale)}px` } : undefined;
  if (error) return <p class="media-error">Could not load the image “{name}”: {error}</p>;
  return url ? (
    <a href={url} target="_blank" rel="noopener" class="image-link">
      <img class="image" src={url} alt={name} style={style} />
    </a>
  ) : (
    <div class="image placeholder" style={style} aria-busy="true" aria-label={`Loading image ${name}`} />
  );
}

function FileBody({ event }: { event: MatrixEvent }) {
  const content = event.getContent<FileContent>();
  const { url, error } = useMedia(content);
  const name = content.filename ?? content.body ?? 'file';
  const size = content.info?.size;
  return (
    <p class="file">
      📎{' '}
      {url ? (
        <a href={url} download={name}>
          {name}
        </a>
      ) : (
        <span>{name}</span>
      )}
      {size !== undefined && <span class="hint"> ({formatBytes(size)})</span>}
      {error && <span class="error"> — {error}</span>}
    </p>
  );
}

/** A message as one line of plain text: its HTML's text when it has some (so `**bold**` shows
 *  as bold's text, not its Markdown), else its body without the reply fallback. */
export function plainText(event: MatrixEvent): string {
  const content = event.getContent<{ body?: string; format?: string; formatted_body?: string }>();
  if (content.format === 'org.matrix.custom.html' && typeof content.formatted_body === 'string') {
    const text = new DOMParser().parseFromString(sanitizeHtml(content.formatted_body), 'text/html').body.textContent;
    if (text) return text;
  }
  return stripReplyFallback(String(content.body ?? ''));
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function ReplyQuote({ event, room }: { event: MatrixEvent; room: Room }) {
  const { client } = useApp();
  // In the wire content when the sender's client put it in the clear, else inside the
  // encrypted content.
  const replyTo =
    event.replyEventId ?? event.getOriginalContent<{ 'm.relates_to'?: { 'm.in_reply_to'?: { event_id?: string } } }>()['m.relates_to']?.['m.in_reply_to']?.event_id;
  const [target, setTarget] = useState<MatrixEvent | null>(() => (replyTo ? room.findEventById(replyTo) ?? null : null));
  useEffect(() => {
    if (!replyTo || target) return;
    let live = true;
    client.fetchRoomEvent(room.roomId, replyTo).then(
      async (raw) => {
        const mapped = client.getEventMapper()(raw);
        await client.decryptEventIfNeeded(mapped);
        if (live) setTarget(mapped);
      },
      () => {},
    );
    return () => {
      live = false;
    };
  }, [client, room, replyTo, target]);
  if (!replyTo) return null;
  const jump = () => document.querySelector(`[data-event-id="${CSS.escape(replyTo)}"]`)?.scrollIntoView({ block: 'center' });
  return (
    <blockquote class="reply-quote" onClick={jump}>
      {target ? (
        <>
          <span class="sender">{displayName(client, target.getSender() ?? '', room)}</span>{' '}
          <span class="quoted">{target.isRedacted() ? 'Message deleted' : plainText(target)}</span>
        </>
      ) : (
        <span class="hint">In reply to a message not loaded here</span>
      )}
    </blockquote>
  );
}

function Reactions({ event, room }: { event: MatrixEvent; room: Room }) {
  const { client } = useApp();
  const id = event.getId();
  if (!id) return null;
  const relations = room.relations.getChildEventsForEvent(id, RelationType.Annotation, EventType.Reaction);
  const groups = relations?.getSortedAnnotationsByKey() ?? [];
  if (groups.length === 0) return null;
  const me = client.getUserId();
  return (
    <div class="reactions">
      {groups.map(([key, events]) => {
        const list = [...events].filter((reaction) => !reaction.isRedacted());
        if (list.length === 0) return null;
        const mine = list.find((reaction) => reaction.getSender() === me);
        const names = list.map((reaction) => displayName(client, reaction.getSender() ?? '', room)).join(', ');
        return (
          <button
            key={key}
            type="button"
            class={mine ? 'reaction mine' : 'reaction'}
            aria-pressed={mine !== undefined}
            aria-label={`${key} ${list.length}: ${names}`}
            title={names}
            onClick={() => void toggleReaction(client, room, event, key, mine)}
          >
            {key} <span class="count">{list.length}</span>
          </button>
        );
      })}
    </div>
  );
}

async function toggleReaction(client: ReturnType<typeof useApp>['client'], room: Room, event: MatrixEvent, key: string, mine?: MatrixEvent): Promise<void> {
  try {
    if (mine) {
      const mineId = mine.getId();
      if (mineId) await client.redactEvent(room.roomId, mineId);
    } else {
      await client.sendEvent(room.roomId, EventType.Reaction, {
        'm.relates_to': { rel_type: RelationType.Annotation, event_id: event.getId() ?? '', key },
      });
    }
  } catch (err) {
    console.warn('hearth: reaction failed', err);
  }
}

function Actions({ event, room, mine, setMode }: { event: MatrixEvent; room: Room; mine: boolean; setMode: (mode: ComposerMode) => void }) {
  const { client } = useApp();
  const [picking, setPicking] = useState(false);
  const content = event.getContent();
  const editable = mine && (content.msgtype === MsgType.Text || content.msgtype === MsgType.Emote || content.msgtype === MsgType.Notice);
  const own = room.relations
    .getChildEventsForEvent(event.getId() ?? '', RelationType.Annotation, EventType.Reaction)
    ?.getSortedAnnotationsByKey();
  const react = (key: string) => {
    setPicking(false);
    const existing = own?.find(([k]) => k === key)?.[1];
    const mineReaction = existing ? [...existing].find((r) => r.getSender() === client.getUserId() && !r.isRedacted()) : undefined;
    void toggleReaction(client, room, event, key, mineReaction);
  };
  return (
    <div class="actions" role="toolbar" aria-label="Message actions">
      <button type="button" class="small" onClick={() => setMode({ kind: 'reply', event })}>
        Reply
      </button>
      <button type="button" class="small" aria-expanded={picking} onClick={() => setPicking(!picking)}>
        React
      </button>
      {picking && (
        <span class="picker" role="group" aria-label="Reactions">
          {QUICK_REACTIONS.map((key) => (
            <button key={key} type="button" class="small" aria-label={`React with ${key}`} onClick={() => react(key)}>
              {key}
            </button>
          ))}
        </span>
      )}
      {editable && (
        <button type="button" class="small" onClick={() => setMode({ kind: 'edit', event })}>
          Edit
        </button>
      )}
      {mine && (
        <button
          type="button"
          class="small danger"
          onClick={() => {
            if (confirm('Delete this message for everyone?')) void client.redactEvent(room.roomId, event.getId() ?? '').catch((err: unknown) => alert(`Not deleted: ${errorText(err)}`));
          }}
        >
          Delete
        </button>
      )}
    </div>
  );
}

/** Sending → sent (stored by this homeserver) → delivered (every other server in the room has
 *  it) or waiting for offline peers; failed, with retry. */
function DeliveryState({
  event,
  waitingFor,
  peerCount,
  room,
  settledShown,
}: {
  event: MatrixEvent;
  waitingFor: string[] | null;
  peerCount: number;
  room: Room;
  settledShown: boolean;
}) {
  const { client } = useApp();
  const status = event.status;
  if (status === EventStatus.NOT_SENT) {
    return (
      <span class="delivery failed" data-state="failed">
        Failed to send{' '}
        <button type="button" class="small" onClick={() => void client.resendEvent(event, room).catch(() => {})}>
          Retry
        </button>
        <button type="button" class="small" onClick={() => client.cancelPendingEvent(event)}>
          Discard
        </button>
      </span>
    );
  }
  if (status !== null) {
    return (
      <span class="delivery sending" data-state="sending">
        Sending…
      </span>
    );
  }
  if (waitingFor && waitingFor.length > 0) {
    return (
      <span class="delivery sent" data-state="sent" title={`Waiting for ${waitingFor.length} offline peer(s)`}>
        ✓ Sent · waiting for {waitingFor.length === 1 ? 'a peer' : `${waitingFor.length} peers`}
      </span>
    );
  }
  if (!settledShown) return null;
  if (peerCount > 0) {
    return (
      <span class="delivery delivered" data-state="delivered">
        ✓✓ Delivered
      </span>
    );
  }
  return (
    <span class="delivery sent" data-state="sent">
      ✓ Sent
    </span>
  );
}

function StateLine({ event, room }: { event: MatrixEvent; room: Room }) {
  const { client } = useApp();
  const who = displayName(client, event.getSender() ?? '', room);
  const content = event.getContent();
  const previous = event.getPrevContent();
  let text: string;
  switch (event.getType()) {
    case EventType.RoomCreate:
      text = `${who} created the room`;
      break;
    case EventType.RoomMember: {
      const target = displayName(client, event.getStateKey() ?? '', room);
      const membership = content.membership;
      const before = previous.membership;
      if (membership === 'join' && before === 'join') text = `${target} changed their profile`;
      else if (membership === 'join') text = `${target} joined`;
      else if (membership === 'invite') text = `${who} invited ${target}`;
      else if (membership === 'leave' && event.getSender() === event.getStateKey()) text = before === 'invite' ? `${target} declined the invite` : `${target} left`;
      else if (membership === 'leave') text = `${who} removed ${target}`;
      else if (membership === 'ban') text = `${who} banned ${target}`;
      else text = `${target}: ${membership ?? 'membership changed'}`;
      break;
    }
    case EventType.RoomName:
      text = content.name ? `${who} named the room “${String(content.name)}”` : `${who} removed the room name`;
      break;
    case EventType.RoomTopic:
      text = content.topic ? `${who} set the topic: ${String(content.topic)}` : `${who} removed the topic`;
      break;
    case EventType.RoomEncryption:
      text = `${who} turned on end-to-end encryption`;
      break;
    case EventType.RoomAvatar:
      text = `${who} changed the room picture`;
      break;
    case EventType.RoomJoinRules:
      text = content.join_rule === 'public' ? `${who} made the room public` : `${who} made the room invite-only`;
      break;
    case EventType.RoomHistoryVisibility:
      text = `${who} set who can read the history: ${String(content.history_visibility)}`;
      break;
    default:
      text = `${who} changed ${event.getType()}`;
  }
  return (
    <li class="event state" data-event-id={event.getId()}>
      {text}
    </li>
  );
}

/** An in-room verification request (`m.key.verification.request`): a line, not its fallback
 *  text for clients without verification. */
function VerificationLine({ event, room }: { event: MatrixEvent; room: Room }) {
  const { client } = useApp();
  const to = event.getContent<{ to?: string }>().to;
  return (
    <li class="event state" data-event-id={event.getId()}>
      🔐 {displayName(client, event.getSender() ?? '', room)} asked {to ? displayName(client, to, room) : 'someone'} to verify with emoji
    </li>
  );
}
