// The serving tab's side of the service worker protocol (see ../protocol.ts): announce
// `hearth-serving`, answer `hearth-who-serves`, and answer `hearth-request` on its port.

import {
  fromWireRequest,
  matrixErrorWire,
  toWireResponse,
  transferables,
  type ServingMessage,
  type SwRequestMessage,
  type WhoServesMessage,
  type WireResponse,
} from '../protocol';
import type { Handler } from './tabs';

export class ServiceWorkerBridge {
  #handler: Handler | null = null;
  readonly #container: ServiceWorkerContainer | undefined = globalThis.navigator?.serviceWorker;
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
    this.#container?.removeEventListener('message', this.#onMessage);
    this.#container?.removeEventListener('controllerchange', this.#onControllerChange);
  }

  /** Tells the controlling worker, and the active one if this page is not controlled by it
   *  (a shift-reload), that this tab serves. Idempotent. */
  announce(): void {
    const container = this.#container;
    if (!container || this.#handler === null) return;
    const message: ServingMessage = { type: 'hearth-serving' };
    container.controller?.postMessage(message);
    container
      .getRegistration()
      .then((registration) => {
        const active = registration?.active;
        if (active && active !== container.controller) active.postMessage(message);
      })
      .catch(() => {});
  }

  #receive(event: MessageEvent): void {
    const data = event.data as SwRequestMessage | WhoServesMessage | undefined;
    if (data?.type === 'hearth-who-serves') {
      if (this.#handler !== null && event.source instanceof ServiceWorker) {
        const message: ServingMessage = { type: 'hearth-serving' };
        event.source.postMessage(message);
      }
    } else if (data?.type === 'hearth-request') {
      const port = event.ports[0];
      if (port) void this.#answer(data, port);
    }
  }

  async #answer(message: SwRequestMessage, port: MessagePort): Promise<void> {
    let wire: WireResponse;
    const handler = this.#handler;
    if (handler === null) {
      wire = matrixErrorWire();
    } else {
      try {
        wire = await toWireResponse(await handler(fromWireRequest(message)));
      } catch (err) {
        wire = matrixErrorWire(`Hearth could not answer: ${String(err)}`, 500);
      }
    }
    port.postMessage(wire, transferables(wire));
    port.close();
  }
}
