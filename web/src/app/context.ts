// What every component of the signed-in app needs: the Matrix client, the transport's fetch
// (for media and Hearth's own endpoints) and the tab host.

import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { MatrixClient } from 'matrix-js-sdk';
import type { VerificationRequest } from 'matrix-js-sdk/lib/crypto-api/index.js';
import type { HearthHost } from '../host';

export interface AppContext {
  client: MatrixClient;
  fetch: typeof globalThis.fetch;
  host: HearthHost;
  /** The relays this page federates through (the setting, else the server's default). */
  relaySetting: string[];
  /** Opens a room in the main pane. */
  openRoom: (roomId: string | null) => void;
  /** Shows a verification request (one this user started) in a dialog. */
  showVerification: (request: VerificationRequest) => void;
}

export const App = createContext<AppContext | null>(null);

export function useApp(): AppContext {
  const context = useContext(App);
  if (!context) throw new Error('useApp outside the signed-in app');
  return context;
}
