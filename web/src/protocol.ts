// The messages between the service worker, the serving tab and the other tabs, and the
// conversions between them and fetch's Request/Response. Shared by the service worker (bundled
// into sw.js) and the tab host, so it uses only what both global scopes have.

/** Header name/value pairs in order (a `Headers` object cannot be posted). */
export type HeaderList = [string, string][];

/** A request as bytes: a Matrix request crossing a `postMessage`. */
export interface WireRequest {
  method: string;
  /** Absolute URL. */
  url: string;
  headers: HeaderList;
  /** `null` for GET and HEAD. */
  body: ArrayBuffer | null;
}

/** A response as bytes. */
export interface WireResponse {
  status: number;
  headers: HeaderList;
  /** `null` for statuses that carry no body (204, 304, ...). */
  body: ArrayBuffer | null;
}

// Service worker <-> serving tab (Client.postMessage / navigator.serviceWorker).

/** Tab -> service worker, with `ports[0]`: "I serve the homeserver; send Matrix requests to me
 *  on this port." One port carries every request, so a request costs two messages and no new
 *  channel (creating a MessageChannel per request doubled the round trip). */
export interface ServingMessage {
  type: 'hearth-serving';
}

/** Service worker -> every window: "which of you serves?" (after a worker restart forgot it). */
export interface WhoServesMessage {
  type: 'hearth-who-serves';
}

/** Service worker -> serving tab, on the port the tab gave with `hearth-serving`. */
export interface SwRequestMessage extends WireRequest {
  type: 'hearth-request';
  /** Unique per worker lifetime; the answer carries it back. */
  id: number;
}

/** Serving tab -> service worker, on the same port: the answer to request `id`. */
export interface SwResponseMessage extends WireResponse {
  id: number;
}

// Tab <-> tab, on BroadcastChannel(TAB_CHANNEL): the direct path when no service worker routes.

export const TAB_CHANNEL = 'hearth-requests';

/** Follower -> leader. Only the tab whose host id is `leader` answers. */
export interface TabRequestMessage extends WireRequest {
  type: 'hearth-request';
  /** Unique per request across tabs (a random UUID). */
  id: string;
  leader: string;
}

/** Leader -> the follower that sent request `id` (everyone else ignores it). */
export interface TabResponseMessage extends WireResponse {
  type: 'hearth-response';
  id: string;
}

/** Any tab -> the leader: "announce yourself". */
export interface ServerNameQueryMessage {
  type: 'hearth-server-name';
}

/** Leader -> every tab: sent when it starts serving and in answer to `hearth-server-name`. */
export interface LeaderMessage {
  type: 'hearth-leader';
  /** The serving host's id (random per page load). */
  leader: string;
  serverName: string;
}

export type TabMessage = TabRequestMessage | TabResponseMessage | ServerNameQueryMessage | LeaderMessage;

export const NO_TAB_SERVING = 'No Hearth tab is serving this homeserver: open the app in a tab';

/** The paths the homeserver answers; everything else is the app itself. */
export function isMatrixPath(pathname: string): boolean {
  return (
    pathname.startsWith('/_matrix/') ||
    pathname.startsWith('/.well-known/matrix/') ||
    // Hearth's own client endpoints (the peers online at the relays).
    pathname.startsWith('/_hearth/')
  );
}

/** A Matrix JSON error response (`M_UNKNOWN`), by default "no tab serves" with 503. */
export function matrixError(error: string = NO_TAB_SERVING, status = 503): Response {
  return new Response(JSON.stringify({ errcode: 'M_UNKNOWN', error }), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });
}

export function matrixErrorWire(error: string = NO_TAB_SERVING, status = 503): WireResponse {
  const body = new TextEncoder().encode(JSON.stringify({ errcode: 'M_UNKNOWN', error }));
  return { status, headers: [['content-type', 'application/json']], body: body.buffer };
}

function headerList(headers: Headers): HeaderList {
  const list: HeaderList = [];
  headers.forEach((value, name) => list.push([name, value]));
  return list;
}

function hasRequestBody(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD';
}

/** Statuses for which `new Response(body)` throws unless the body is null. */
function isNullBodyStatus(status: number): boolean {
  return status === 101 || status === 103 || status === 204 || status === 205 || status === 304;
}

export async function toWireRequest(request: Request): Promise<WireRequest> {
  return {
    method: request.method,
    url: request.url,
    headers: headerList(request.headers),
    body: hasRequestBody(request.method) ? await request.arrayBuffer() : null,
  };
}

export function fromWireResponse(wire: WireResponse): Response {
  return new Response(isNullBodyStatus(wire.status) ? null : wire.body, {
    status: wire.status,
    headers: wire.headers,
  });
}

/** What to list as transferables when posting a wire message: its body, if any. */
export function transferables(wire: { body: ArrayBuffer | null }): ArrayBuffer[] {
  return wire.body !== null && wire.body.byteLength > 0 ? [wire.body] : [];
}
