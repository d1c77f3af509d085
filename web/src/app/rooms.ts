// Rooms as the sidebar sorts them (invites, direct messages, rooms) and the actions that make
// them: an encrypted direct message, a room with the user's choices.

import {
  EventType,
  NotificationCountType,
  Preset,
  Visibility,
  type ICreateRoomOpts,
  type MatrixClient,
  type Room,
} from 'matrix-js-sdk';

const MEGOLM = 'm.megolm.v1.aes-sha2';

/** `m.direct` account data: user ID → their direct-message room IDs. */
function directRooms(client: MatrixClient): Record<string, string[]> {
  return (client.getAccountData(EventType.Direct)?.getContent<Record<string, string[]>>() ?? {});
}

/** Whether a room is a direct message: listed in `m.direct`, or an invite marked `is_direct`. */
export function isDirect(client: MatrixClient, room: Room): boolean {
  const direct = directRooms(client);
  if (Object.values(direct).some((ids) => ids.includes(room.roomId))) return true;
  const me = room.getMember(client.getUserId() ?? '');
  return me?.events.member?.getContent().is_direct === true;
}

/** The other person of a direct message (the first member who is not me). */
export function directPartner(client: MatrixClient, room: Room): string | null {
  const me = client.getUserId();
  for (const [userId, ids] of Object.entries(directRooms(client))) if (ids.includes(room.roomId)) return userId;
  const other = room.getMembers().find((member) => member.userId !== me);
  return other?.userId ?? room.getDMInviter() ?? null;
}

export interface RoomSections {
  invites: Room[];
  direct: Room[];
  rooms: Room[];
}

export function roomSections(client: MatrixClient): RoomSections {
  const sections: RoomSections = { invites: [], direct: [], rooms: [] };
  for (const room of client.getRooms()) {
    const membership = room.getMyMembership();
    if (membership === 'invite') sections.invites.push(room);
    else if (membership === 'join') (isDirect(client, room) ? sections.direct : sections.rooms).push(room);
  }
  const byActivity = (a: Room, b: Room) => b.getLastActiveTimestamp() - a.getLastActiveTimestamp();
  sections.invites.sort(byActivity);
  sections.direct.sort(byActivity);
  sections.rooms.sort(byActivity);
  return sections;
}

export function unreadCounts(room: Room): { total: number; highlight: number } {
  return {
    total: room.getUnreadNotificationCount(NotificationCountType.Total) ?? 0,
    highlight: room.getUnreadNotificationCount(NotificationCountType.Highlight) ?? 0,
  };
}

/** Adds a room to `m.direct` under `userId` (the spec's way to mark a direct chat). */
export async function markDirect(client: MatrixClient, userId: string, roomId: string): Promise<void> {
  const direct = { ...directRooms(client) };
  const ids = direct[userId] ?? [];
  if (ids.includes(roomId)) return;
  direct[userId] = [...ids, roomId];
  await client.setAccountData(EventType.Direct, direct);
}

/** The joined or invited-to direct message with `userId`, if there is one. */
export function existingDirect(client: MatrixClient, userId: string): Room | null {
  for (const roomId of directRooms(client)[userId] ?? []) {
    const room = client.getRoom(roomId);
    const membership = room?.getMyMembership();
    if (room && (membership === 'join' || membership === 'invite')) return room;
  }
  return null;
}

/** Opens a direct message with `userId`: the existing one, else a new encrypted room with them
 *  invited (`trusted_private_chat`, history shared from the invite so the first messages reach
 *  them). */
export async function startDirect(client: MatrixClient, userId: string): Promise<string> {
  const existing = existingDirect(client, userId);
  if (existing) return existing.roomId;
  const { room_id } = await client.createRoom({
    is_direct: true,
    invite: [userId],
    preset: Preset.TrustedPrivateChat,
    initial_state: [{ type: EventType.RoomEncryption, state_key: '', content: { algorithm: MEGOLM } }],
  });
  await markDirect(client, userId, room_id);
  return room_id;
}

export interface NewRoom {
  name: string;
  topic: string;
  public: boolean;
  encrypted: boolean;
  alias?: string;
}

export async function createRoom(client: MatrixClient, room: NewRoom): Promise<string> {
  const options: ICreateRoomOpts = {
    name: room.name,
    preset: room.public ? Preset.PublicChat : Preset.PrivateChat,
    visibility: room.public ? Visibility.Public : Visibility.Private,
    initial_state: room.encrypted
      ? [{ type: EventType.RoomEncryption, state_key: '', content: { algorithm: MEGOLM } }]
      : [],
  };
  if (room.topic) options.topic = room.topic;
  if (room.alias) options.room_alias_name = room.alias;
  const { room_id } = await client.createRoom(options);
  return room_id;
}

/** Accepting an invite to a direct message records it in `m.direct` too. */
export async function acceptInvite(client: MatrixClient, room: Room): Promise<void> {
  const direct = isDirect(client, room);
  const inviter = room.getDMInviter();
  await client.joinRoom(room.roomId);
  if (direct && inviter) await markDirect(client, inviter, room.roomId);
}
