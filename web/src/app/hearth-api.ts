// Hearth's own client endpoints (`/_hearth/client/v1/…`, served by the local homeserver next to
// the Matrix API): who is online at the relays, and where a room's messages stand with the
// other servers in it.

import type { MatrixClient } from 'matrix-js-sdk';

export interface PeerUser {
  user_id: string;
  displayname?: string | null;
  avatar_url?: string | null;
}

export interface Peer {
  server_name: string;
  users: PeerUser[];
}

export interface ServerDelivery {
  server_name: string;
  /** Whether the server can be reached now (registered at a relay, or answered lately). */
  reachable: boolean;
  /** Events waiting in the outbound queue for it. */
  queued: number;
}

export interface RoomDelivery {
  servers: ServerDelivery[];
  /** This server's events in the room not yet delivered, with the servers still waiting. */
  undelivered: Record<string, string[]>;
}

async function hearthGet<T>(client: MatrixClient, fetchFn: typeof fetch, path: string): Promise<T> {
  const response = await fetchFn(new URL(path, location.origin), {
    headers: { Authorization: `Bearer ${client.getAccessToken() ?? ''}` },
  });
  if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** `GET /_hearth/client/v1/peers`: servers online at the relays now, with their public users. */
export async function fetchPeers(client: MatrixClient, fetchFn: typeof fetch): Promise<Peer[]> {
  const body = await hearthGet<{ peers?: Peer[] }>(client, fetchFn, '/_hearth/client/v1/peers');
  return body.peers ?? [];
}

/** `GET /_hearth/client/v1/rooms/{roomId}/delivery`. */
export async function fetchRoomDelivery(client: MatrixClient, fetchFn: typeof fetch, roomId: string): Promise<RoomDelivery> {
  const body = await hearthGet<Partial<RoomDelivery>>(
    client,
    fetchFn,
    `/_hearth/client/v1/rooms/${encodeURIComponent(roomId)}/delivery`,
  );
  return { servers: body.servers ?? [], undelivered: body.undelivered ?? {} };
}
