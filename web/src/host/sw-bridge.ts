// The serving tab's side of the service worker protocol (see ../protocol.ts): announce
// `hearth-serving` with a port, answer `hearth-who-serves` the same way, and answer
// `hearth-request` on the port it came on.

import {
  transferables,
  type ServingMessage,
  type SwRequestMessage,
  type SwResponseMessage,
  type WhoServesMessage,
} from '../protocol';
import { answerWith, type Handler } from './tabs';

export class ServiceWorkerBridge {
  #handler: Handler | null = null;
  readonly #container: ServiceWorkerContainer | undefined = globalThis.navigator?.serviceWorker;
  /** The request ports given to workers; each keeps working until `close` (a worker may still
   *  hold an older one while a newer worker takes over). */
  readonly #ports = new Set<MessagePort>();
  readonly #onMessage = (event: MessageEvent) => this.#receive(event);
  readonly #onControllerChange = () => this.announce();

  constructor() {
    if (!this.#container) return;
    this.#container.addEventListener('message', this.#onMessage);
    this.#container.addEventListener('controllerchange', this.#onControllerChange);
    // Messages queue until started; a page may not have finished loading yet.
    this.#container.startMessages();
  }

  /** From now on this tab answers the service worker's requests with `handler`. */
  serve(handler: Handler): void {
    this.#handler = handler;
    this.announce();
  }

  /** Stops answering: requests that still arrive get 503 and the worker asks again elsewhere. */
  stopServing(): void {
    this.#handler = null;
  }

  close(): void {
    this.stopServing();
    for (const port of this.#ports) port.close();
    this.#ports.clear();
    this.#container?.removeEventListener('message', this.#onMessage);
    this.#container?.removeEventListener('controllerchange', this.#onControllerChange);
  }

  /** Tells the controlling worker, and the active one if this page is not controlled by it
   *  (a shift-reload), that this tab serves, giving each a port for requests. */
  announce(): void {
    const container = this.#container;
    if (!container || this.#handler === null) return;
    if (container.controller) this.#announceTo(container.controller);
    container
      .getRegistration()
      .then((registration) => {
        const active = registration?.active;
        if (active && active !== container.controller) this.#announceTo(active);
      })
      .catch(() => {});
  }

  #announceTo(worker: ServiceWorker): void {
    const channel = new MessageChannel();
    channel.port1.onmessage = (event: MessageEvent<SwRequestMessage>) => {
      if (event.data?.type === 'hearth-request') void this.#answer(event.data, channel.port1);
    };
    this.#ports.add(channel.port1);
    const message: ServingMessage = { type: 'hearth-serving' };
    worker.postMessage(message, [channel.port2]);
  }

  #receive(event: MessageEvent): void {
    const data = event.data as WhoServesMessage | undefined;
    if (data?.type === 'hearth-who-serves' && this.#handler !== null && event.source instanceof ServiceWorker) {
      this.#announceTo(event.source);
    }
  }

  async #answer(message: SwRequestMessage, port: MessagePort): Promise<void> {
    const wire = await answerWith(this.#handler, message);
    const answer: SwResponseMessage = { id: message.id, ...wire };
    port.postMessage(answer, transferables(wire));
  }
}
