// The direct path between tabs, for pages no service worker routes: a follower posts its request
// on BroadcastChannel('hearth-requests') to the leader by id, the leader answers with the
// request's id. The leader announces itself (and the server name) when it starts serving and
// whenever asked. Message shapes: ../protocol.ts.

import {
  fromWireResponse,
  matrixError,
  matrixErrorWire,
  TAB_CHANNEL,
  toWireRequest,
  type LeaderMessage,
  type TabMessage,
  type TabRequestMessage,
  type TabResponseMessage,
  type WireRequest,
  type WireResponse,
} from '../protocol';

/** The homeserver, taking and giving requests as plain values (what crosses a postMessage). */
export type Handler = (request: WireRequest) => Promise<WireResponse>;

/** `handler`'s answer to `request`: 503 when this tab no longer serves, 500 if it threw. */
export async function answerWith(handler: Handler | null, request: WireRequest): Promise<WireResponse> {
  if (handler === null) return matrixErrorWire();
  try {
    return await handler(request);
  } catch (err) {
    return matrixErrorWire(`Hearth could not answer: ${String(err)}`, 500);
  }
}

interface Leader {
  id: string;
  serverName: string;
}

export class TabChannel {
  /** This page's id when it leads (random per page load). */
  readonly id = crypto.randomUUID();
  readonly #channel = new BroadcastChannel(TAB_CHANNEL);
  #handler: Handler | null = null;
  #leader: Leader | null = null;
  /** Requests sent to another tab, by request id. Bounded by the client's open requests; each
   *  ends with the answer, a leader change (503) or the caller's abort. */
  readonly #pending = new Map<string, { leader: string; resolve: (response: Response) => void }>();
  /** Callers waiting for a leader to be known; each one gives up after its own timeout. */
  readonly #leaderWaiters = new Set<(leader: Leader) => void>();
  /** Told whenever the leader (and so possibly the server name) becomes known. */
  onLeader: ((serverName: string) => void) | null = null;

  constructor() {
    this.#channel.onmessage = (event: MessageEvent<TabMessage>) => this.#receive(event.data);
  }

  /** This tab now serves: answer other tabs' requests and handle our own directly. */
  serve(handler: Handler, serverName: string): void {
    this.#handler = handler;
    this.#setLeader({ id: this.id, serverName });
    this.#announce();
  }

  /** This tab took the lock: whichever tab led before is gone, so forget it (its pending
   *  requests get 503) and wait for our own `serve`. */
  leaderLost(): void {
    if (this.#leader !== null && this.#leader.id !== this.id) this.#failPendingTo(this.#leader.id);
    this.#leader = null;
  }

  stopServing(): void {
    this.#handler = null;
    if (this.#leader?.id === this.id) this.#leader = null;
  }

  close(): void {
    this.stopServing();
    this.#channel.close();
    for (const id of [...this.#pending.keys()]) this.#settle(id, matrixError());
  }

  /** The server name, once some leader (this tab or another) has announced it. */
  async serverName(timeoutMs: number): Promise<string | null> {
    return (await this.#leaderWithin(timeoutMs))?.serverName ?? null;
  }

  /** Sends `request` to the leader, waiting up to `timeoutMs` for one to be known; a 503
   *  Matrix error if none is, or if the leader changes before answering. */
  async request(request: Request, timeoutMs: number): Promise<Response> {
    const leader = await this.#leaderWithin(timeoutMs);
    if (leader === null) return matrixError();
    if (leader.id === this.id && this.#handler !== null) {
      return fromWireResponse(await this.#handler(await toWireRequest(request)));
    }
    const wire = await toWireRequest(request);
    const id = crypto.randomUUID();
    return new Promise<Response>((resolve) => {
      this.#pending.set(id, { leader: leader.id, resolve });
      const message: TabRequestMessage = { type: 'hearth-request', id, leader: leader.id, ...wire };
      this.#channel.postMessage(message);
      request.signal.addEventListener('abort', () => this.#pending.delete(id), { once: true });
    });
  }

  #receive(message: TabMessage): void {
    switch (message.type) {
      case 'hearth-request':
        if (message.leader === this.id) void this.#answer(message);
        break;
      case 'hearth-response':
        this.#settle(message.id, fromWireResponse(message));
        break;
      case 'hearth-server-name':
        if (this.#handler !== null) this.#announce();
        break;
      case 'hearth-leader':
        this.#setLeader({ id: message.leader, serverName: message.serverName });
        break;
    }
  }

  #setLeader(leader: Leader): void {
    const previous = this.#leader;
    if (previous !== null && previous.id !== leader.id) this.#failPendingTo(previous.id);
    this.#leader = leader;
    for (const wake of this.#leaderWaiters) wake(leader);
    this.#leaderWaiters.clear();
    this.onLeader?.(leader.serverName);
  }

  #announce(): void {
    const leader = this.#leader;
    if (leader === null || leader.id !== this.id) return;
    const message: LeaderMessage = { type: 'hearth-leader', leader: this.id, serverName: leader.serverName };
    this.#channel.postMessage(message);
  }

  async #answer(message: TabRequestMessage): Promise<void> {
    const wire = await answerWith(this.#handler, message);
    const response: TabResponseMessage = { type: 'hearth-response', id: message.id, ...wire };
    this.#channel.postMessage(response);
  }

  #settle(id: string, response: Response): void {
    const pending = this.#pending.get(id);
    if (!pending) return; // another tab's request, or one already given up
    this.#pending.delete(id);
    pending.resolve(response);
  }

  /** Requests sent to a leader that is gone get 503 (clients retry, now to the new leader). */
  #failPendingTo(leaderId: string): void {
    for (const [id, pending] of [...this.#pending]) {
      if (pending.leader === leaderId) this.#settle(id, matrixError());
    }
  }

  async #leaderWithin(timeoutMs: number): Promise<Leader | null> {
    if (this.#leader !== null) return this.#leader;
    const query: TabMessage = { type: 'hearth-server-name' };
    this.#channel.postMessage(query);
    return new Promise<Leader | null>((resolve) => {
      const wake = (leader: Leader) => {
        clearTimeout(timer);
        resolve(leader);
      };
      const timer = setTimeout(() => {
        this.#leaderWaiters.delete(wake);
        resolve(null);
      }, timeoutMs);
      this.#leaderWaiters.add(wake);
    });
  }
}
