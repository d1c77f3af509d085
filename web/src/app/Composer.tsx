// The composer: Markdown text (Enter sends, Shift+Enter a new line), replying to or editing a
// message, attaching images and files (encrypted in encrypted rooms) with upload progress, and
// typing notifications.

import { EventType, MsgType, RelationType, type MatrixEvent, type Room } from 'matrix-js-sdk';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { useApp } from './context';
import { formatBytes, plainText } from './EventTile';
import { markdownContent, stripReplyFallback } from './markdown';
import { encryptAttachment, imageSize } from './media';
import { displayName } from './names';
import { probes } from './probes';
import type { ComposerMode } from './RoomView';
import { errorText } from './widgets';

/** How long a typing notification lasts; renewed while typing goes on. */
const TYPING_TIMEOUT_MS = 20_000;

interface Upload {
  name: string;
  loaded: number;
  total: number;
  abort: (() => void) | null;
}

export function Composer({ room, mode, setMode }: { room: Room; mode: ComposerMode; setMode: (mode: ComposerMode) => void }) {
  const { client } = useApp();
  const input = useRef<HTMLTextAreaElement>(null);
  const files = useRef<HTMLInputElement>(null);
  const typingSince = useRef(0);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [error, setError] = useState<string | null>(null);
  const joined = room.getMyMembership() === 'join';

  // Before paint, so the text to edit is there the moment the edit starts.
  useLayoutEffect(() => {
    const field = input.current;
    if (!field) return;
    if (mode?.kind === 'edit') {
      field.value = stripReplyFallback(String(mode.event.getContent().body ?? ''));
    }
    field.focus();
  }, [mode]);

  const stopTyping = () => {
    if (typingSince.current === 0) return;
    typingSince.current = 0;
    void client.sendTyping(room.roomId, false, 0).catch(() => {});
  };
  useEffect(() => stopTyping, [room.roomId]);
  useEffect(() => {
    probes.composerReadyAt ??= performance.now();
  }, []);

  const onInput = () => {
    const field = input.current;
    if (!field) return;
    if (field.value === '') return stopTyping();
    const now = Date.now();
    if (now - typingSince.current > TYPING_TIMEOUT_MS / 2) {
      typingSince.current = now;
      void client.sendTyping(room.roomId, true, TYPING_TIMEOUT_MS).catch(() => {});
    }
  };

  const send = async () => {
    const field = input.current;
    if (!field) return;
    const text = field.value;
    if (text.trim() === '') return;
    field.value = '';
    stopTyping();
    setError(null);
    const current = mode;
    setMode(null);
    const content: Record<string, unknown> = { msgtype: MsgType.Text, ...markdownContent(text) };
    try {
      if (current?.kind === 'edit') {
        const targetId = current.event.getId() ?? '';
        await client.sendEvent(room.roomId, EventType.RoomMessage, {
          msgtype: MsgType.Text,
          body: `* ${text}`,
          'm.new_content': content,
          'm.relates_to': { rel_type: RelationType.Replace, event_id: targetId },
        } as never);
        return;
      }
      if (current?.kind === 'reply') {
        content['m.relates_to'] = { 'm.in_reply_to': { event_id: current.event.getId() ?? '' } };
        const target = current.event.getSender();
        if (target && target !== client.getUserId()) content['m.mentions'] = { user_ids: [target] };
      }
      await client.sendEvent(room.roomId, EventType.RoomMessage, content as never);
    } catch (err) {
      // The message stays in the timeline as failed, with a retry button.
      setError(`Not sent: ${errorText(err)}`);
    }
  };

  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      void send();
    } else if (event.key === 'Escape' && mode) {
      setMode(null);
      if (input.current && mode.kind === 'edit') input.current.value = '';
    }
  };

  const attach = async (file: File) => {
    setError(null);
    const upload: Upload = { name: file.name, loaded: 0, total: file.size, abort: null };
    const update = (patch: Partial<Upload>) => {
      Object.assign(upload, patch);
      setUploads((list) => [...list.filter((u) => u !== upload), upload]);
    };
    update({});
    try {
      const encrypted = room.hasEncryptionStateEvent();
      const isImage = file.type.startsWith('image/');
      const size = isImage ? await imageSize(file) : null;
      let body: Blob = file;
      let fileInfo: Awaited<ReturnType<typeof encryptAttachment>>['info'] | null = null;
      if (encrypted) {
        const result = await encryptAttachment(await file.arrayBuffer());
        body = new Blob([result.data], { type: 'application/octet-stream' });
        fileInfo = result.info;
      }
      const promise = client.uploadContent(body, {
        name: file.name,
        type: encrypted ? 'application/octet-stream' : file.type || 'application/octet-stream',
        includeFilename: !encrypted,
        progressHandler: ({ loaded, total }) => update({ loaded, total }),
      });
      update({ abort: () => client.cancelUpload(promise) });
      const { content_uri } = await promise;
      const info: Record<string, unknown> = { mimetype: file.type || 'application/octet-stream', size: file.size };
      if (size) Object.assign(info, size);
      const content: Record<string, unknown> = {
        msgtype: isImage ? MsgType.Image : MsgType.File,
        body: file.name,
        filename: file.name,
        info,
      };
      if (fileInfo) content.file = { ...fileInfo, url: content_uri };
      else content.url = content_uri;
      await client.sendEvent(room.roomId, EventType.RoomMessage, content as never);
    } catch (err) {
      setError(`“${file.name}” was not sent: ${errorText(err)}`);
    } finally {
      setUploads((list) => list.filter((u) => u !== upload));
    }
  };

  const onFiles = () => {
    const picked = [...(files.current?.files ?? [])];
    if (files.current) files.current.value = '';
    for (const file of picked) void attach(file);
  };

  if (!joined) return <p class="composer-disabled">You are not in this room.</p>;
  return (
    <div class="composer-wrap">
      {uploads.map((upload) => (
        <div class="upload" key={upload.name}>
          <span>Uploading {upload.name}</span>
          <progress max={upload.total || 1} value={upload.loaded} aria-label={`Uploading ${upload.name}`} />
          <span class="hint">
            {formatBytes(upload.loaded)} / {formatBytes(upload.total)}
          </span>
          {upload.abort && (
            <button type="button" class="small" onClick={upload.abort}>
              Cancel
            </button>
          )}
        </div>
      ))}
      {mode && <ModeBar mode={mode} room={room} onCancel={() => setMode(null)} />}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <form
        class="composer"
        onSubmit={(event) => {
          event.preventDefault();
          void send();
        }}
      >
        <button type="button" class="icon" aria-label="Attach a file or image" title="Attach" onClick={() => files.current?.click()}>
          📎
        </button>
        <input ref={files} type="file" multiple hidden onChange={onFiles} aria-hidden="true" tabIndex={-1} />
        <label for="composer-input" class="visually-hidden">
          Message
        </label>
        <textarea
          id="composer-input"
          ref={input}
          rows={1}
          placeholder={room.hasEncryptionStateEvent() ? 'Encrypted message…' : 'Message…'}
          onInput={onInput}
          onKeyDown={onKeyDown}
          onBlur={stopTyping}
        />
        <button id="send" type="submit" class="primary">
          Send
        </button>
      </form>
    </div>
  );
}

function ModeBar({ mode, room, onCancel }: { mode: NonNullable<ComposerMode>; room: Room; onCancel: () => void }) {
  const { client } = useApp();
  const event: MatrixEvent = mode.event;
  return (
    <div class="mode-bar" role="status">
      <span>
        {mode.kind === 'reply' ? `Replying to ${displayName(client, event.getSender() ?? '', room)}: ` : 'Editing: '}
        <span class="quoted">{(mode.kind === 'edit' ? stripReplyFallback(String(event.getContent().body ?? '')) : plainText(event)).slice(0, 120)}</span>
      </span>
      <button type="button" class="small" onClick={onCancel} aria-label={mode.kind === 'reply' ? 'Cancel the reply' : 'Cancel the edit'}>
        Cancel
      </button>
    </div>
  );
}
