// Friendly names. A Hearth server name is a 64-character hex key, so a user ID is long: it is
// shown whole only where someone needs to copy it; everywhere else a person is their display
// name, or their user ID's localpart.

import type { MatrixClient, Room, RoomMember } from 'matrix-js-sdk';

/** `@alice:0123…cdef` → `alice`. */
export function localpart(userId: string): string {
  const colon = userId.indexOf(':');
  return userId.slice(userId.startsWith('@') ? 1 : 0, colon === -1 ? undefined : colon);
}

/** The server name of a user, room or event ID (everything after the first colon). */
export function serverOf(id: string): string {
  const colon = id.indexOf(':');
  return colon === -1 ? '' : id.slice(colon + 1);
}

/** A long server name shortened for display: `0123ab…89cdef`. */
export function shortServer(server: string): string {
  return server.length > 16 ? `${server.slice(0, 6)}…${server.slice(-6)}` : server;
}

/** What to call a user: their display name in the room, else their global one, else the
 *  localpart. */
export function displayName(client: MatrixClient, userId: string, room?: Room | null): string {
  const member: RoomMember | null | undefined = room?.getMember(userId);
  if (member?.rawDisplayName && member.rawDisplayName !== userId) return member.rawDisplayName;
  const user = client.getUser(userId);
  if (user?.displayName && user.displayName !== userId) return user.displayName;
  return localpart(userId);
}

/** A stable colour for a user ID (the avatar fallback), readable with white text. */
export function colourOf(id: string): string {
  let hash = 0;
  for (let i = 0; i < id.length; i++) hash = (hash * 31 + id.charCodeAt(i)) >>> 0;
  return `hsl(${hash % 360} 55% 38%)`;
}

/** The first letter of a name, for an avatar. */
export function initial(name: string): string {
  const first = [...name.replace(/^[@#!]/, '')][0];
  return (first ?? '?').toUpperCase();
}

/** A username from a display name: lowercase letters, digits and `._-=/`, as the spec allows
 *  for user ID localparts. Empty if nothing usable is left. */
export function usernameFrom(displayName: string): string {
  return displayName
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/\s+/g, '.')
    .replace(/[^a-z0-9._=/-]/g, '')
    .replace(/^[._-]+|[._-]+$/g, '')
    .slice(0, 32);
}

/** A user ID pasted in any of the forms people share: `@a:b`, `matrix:u/a:b`,
 *  `https://matrix.to/#/@a:b`. Null if it is none of them. */
export function parseUserId(text: string): string | null {
  let value = text.trim();
  const uri = /^matrix:u\/([^?#]+)/.exec(value);
  if (uri?.[1]) value = `@${decodeURIComponent(uri[1])}`;
  const link = /^https:\/\/matrix\.to\/#\/(@[^?]+)/.exec(value);
  if (link?.[1]) value = decodeURIComponent(link[1]);
  return /^@[^:\s]+:[^\s]+$/.test(value) ? value : null;
}

/** The `matrix:` URI of a user (the spec's Matrix URI scheme), what the QR code holds. */
export function userUri(userId: string): string {
  return `matrix:u/${encodeURIComponent(userId.slice(1)).replace(/%3A/g, ':')}`;
}
