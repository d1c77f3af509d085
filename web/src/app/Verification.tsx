// Verifying another person with emoji (SAS), as the spec's key verification framework runs it
// in a room (https://spec.matrix.org/v1.16/client-server-api/#short-authentication-string-sas-verification):
// one side requests, the other accepts, both compare seven emoji and confirm. Once done, each
// side's cross-signing marks the other person verified.

import type { MatrixClient } from 'matrix-js-sdk';
import {
  CryptoEvent,
  VerificationPhase,
  VerificationRequestEvent,
  VerifierEvent,
  type ShowSasCallbacks,
  type VerificationRequest,
} from 'matrix-js-sdk/lib/crypto-api/index.js';
import { useEffect, useReducer, useState } from 'preact/hooks';
import { useApp } from './context';
import { displayName } from './names';
import { Dialog, errorText } from './widgets';

/** Verification requests other people send this user, newest last. */
export function useIncomingVerifications(client: MatrixClient): [VerificationRequest[], (request: VerificationRequest) => void] {
  const [requests, setRequests] = useState<VerificationRequest[]>([]);
  useEffect(() => {
    const onRequest = (request: VerificationRequest) => {
      if (request.initiatedByMe || request.phase !== VerificationPhase.Requested || settled(client, request)) return;
      setRequests((list) => [...list, request]);
    };
    client.on(CryptoEvent.VerificationRequestReceived, onRequest);
    return () => {
      client.off(CryptoEvent.VerificationRequestReceived, onRequest);
    };
  }, [client]);
  const dismiss = (request: VerificationRequest) => setRequests((list) => list.filter((r) => r !== request));
  return [requests, dismiss];
}

/** How old a verification request may be and still be answered (the spec's ten minutes). */
const REQUEST_MAX_AGE_MS = 10 * 60_000;

/** Whether an in-room request is over already: a reload replays the room's request events,
 *  and rust crypto reports them as new before it has seen the `done` or `cancel` after them. */
function settled(client: MatrixClient, request: VerificationRequest): boolean {
  const room = request.roomId ? client.getRoom(request.roomId) : null;
  const requestId = request.transactionId;
  if (!room || !requestId) return false;
  const event = room.findEventById(requestId);
  if (event && Date.now() - event.getTs() > REQUEST_MAX_AGE_MS) return true;
  return ['m.key.verification.done', 'm.key.verification.cancel'].some(
    (type) => (room.relations.getChildEventsForEvent(requestId, 'm.reference', type)?.getRelations().length ?? 0) > 0,
  );
}

/** Whether this user has verified `userId` (their cross-signing identity), refreshed when the
 *  crypto layer says a user's trust changed. */
export function useVerified(client: MatrixClient, userId: string | null): boolean | null {
  const [verified, setVerified] = useState<boolean | null>(null);
  useEffect(() => {
    const crypto = client.getCrypto();
    if (!crypto || !userId) return;
    let live = true;
    const check = () =>
      void crypto.getUserVerificationStatus(userId).then(
        (status) => live && setVerified(status.isCrossSigningVerified()),
        () => {},
      );
    check();
    const onChange = (changed: string) => changed === userId && check();
    client.on(CryptoEvent.UserTrustStatusChanged, onChange);
    // Trust also changes with keys arriving later (their cross-signing keys, a signature
    // upload), which not every path announces: look again now and then.
    const timer = setInterval(check, 3_000);
    return () => {
      live = false;
      clearInterval(timer);
      client.off(CryptoEvent.UserTrustStatusChanged, onChange);
    };
  }, [client, userId]);
  return verified;
}

export function VerificationDialog({ request, onClose }: { request: VerificationRequest; onClose: () => void }) {
  const { client } = useApp();
  const [, bump] = useReducer((n: number) => n + 1, 0);
  const [sas, setSas] = useState<ShowSasCallbacks | null>(null);
  const [confirmed, setConfirmed] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const other = displayName(client, request.otherUserId);

  useEffect(() => {
    const onChange = () => bump(undefined);
    request.on(VerificationRequestEvent.Change, onChange);
    return () => {
      request.off(VerificationRequestEvent.Change, onChange);
    };
  }, [request]);

  // The one who asked starts the emoji comparison once the other accepted.
  const phase = request.phase;
  useEffect(() => {
    if (phase === VerificationPhase.Ready && request.initiatedByMe && !request.verifier) {
      request.startVerification('m.sas.v1').catch((err: unknown) => setError(errorText(err)));
    }
  }, [phase, request]);

  // Either side: once a verifier exists, run it and show its emoji.
  const verifier = request.verifier;
  useEffect(() => {
    if (!verifier) return;
    const onSas = (callbacks: ShowSasCallbacks) => setSas(callbacks);
    verifier.on(VerifierEvent.ShowSas, onSas);
    const shown = verifier.getShowSasCallbacks();
    if (shown) setSas(shown);
    verifier.verify().catch((err: unknown) => {
      if (request.phase !== VerificationPhase.Cancelled) setError(errorText(err));
    });
    return () => {
      verifier.off(VerifierEvent.ShowSas, onSas);
    };
  }, [verifier, request]);

  const close = () => {
    if (request.phase !== VerificationPhase.Done && request.phase !== VerificationPhase.Cancelled) void request.cancel().catch(() => {});
    onClose();
  };

  let body;
  if (phase === VerificationPhase.Done) {
    body = (
      <>
        <p class="verified" data-verification="done">
          ✓ You verified {other}. Messages between you are from who they say.
        </p>
        <button type="button" class="primary" onClick={onClose}>
          Done
        </button>
      </>
    );
  } else if (phase === VerificationPhase.Cancelled) {
    body = (
      <>
        <p class="error" data-verification="cancelled">
          The verification was cancelled{request.cancellationCode ? ` (${request.cancellationCode})` : ''}.
        </p>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </>
    );
  } else if (sas?.sas.emoji) {
    body = (
      <>
        <p>Check that {other} sees the same emoji, in the same order:</p>
        <ol class="sas-emoji" aria-label="Emoji to compare">
          {sas.sas.emoji.map(([emoji, name], i) => (
            <li key={i} data-emoji={emoji}>
              <span class="emoji" aria-hidden="true">
                {emoji}
              </span>
              <span class="emoji-name">{name}</span>
            </li>
          ))}
        </ol>
        {confirmed ? (
          <p class="hint">Waiting for {other} to confirm…</p>
        ) : (
          <div class="buttons">
            <button
              type="button"
              class="primary"
              onClick={() => {
                setConfirmed(true);
                sas.confirm().catch((err: unknown) => setError(errorText(err)));
              }}
            >
              They match
            </button>
            <button type="button" class="danger" onClick={() => sas.mismatch()}>
              They don't match
            </button>
          </div>
        )}
      </>
    );
  } else if (!request.initiatedByMe && phase === VerificationPhase.Requested) {
    body = (
      <>
        <p>{other} wants to verify you: you will both compare a few emoji.</p>
        <div class="buttons">
          <button type="button" class="primary" onClick={() => void request.accept().catch((err: unknown) => setError(errorText(err)))}>
            Accept
          </button>
          <button type="button" onClick={close}>
            Decline
          </button>
        </div>
      </>
    );
  } else {
    body = <p aria-busy="true">{phase === VerificationPhase.Requested ? `Waiting for ${other} to accept…` : 'Getting the emoji ready…'}</p>;
  }
  return (
    <Dialog title={`Verify ${other}`} onClose={close}>
      {body}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </Dialog>
  );
}
