// Key backup with a recovery key, as Element offers it. Setting it up makes a recovery key, sets
// up secret storage with it (the cross-signing keys and the backup's decryption key, encrypted in
// account data) and a new server-side key backup that this device keeps uploading its room keys
// to (https://spec.matrix.org/v1.16/client-server-api/#server-side-key-backups). The key is
// shown once. On a new device, whose crypto store starts empty, the recovery key unlocks secret
// storage again: the backup's key and the cross-signing keys come back, every room key is
// downloaded from the backup, and matrix-js-sdk decrypts the messages that were waiting for them.

import type { MatrixClient } from 'matrix-js-sdk';
import {
  CryptoEvent,
  decodeRecoveryKey,
  ImportRoomKeyStage,
  type ImportRoomKeyProgressData,
  type KeyBackupInfo,
  type KeyBackupRestoreResult,
} from 'matrix-js-sdk/lib/crypto-api/index.js';
import { useEffect, useState } from 'preact/hooks';
import { rememberSecretStorageKey } from '../session';
import { useApp } from './context';
import { CopyButton, Dialog, ErrorLine, errorText, formText } from './widgets';

export interface BackupState {
  /** The latest backup on the server (with its key count), null if there is none. */
  server: KeyBackupInfo | null;
  /** The backup version this device uploads its keys to, null if it does not. */
  active: string | null;
  /** Whether this device holds the decryption key of the server's backup. */
  hasKey: boolean;
  /** Room keys this device has yet to upload (as the backup loop last said). */
  remaining: number;
}

const WRONG_KEY = 'That recovery key does not unlock your backup. Check it against the one you saved when you set up the backup.';
const NOT_A_KEY = 'That is not a recovery key: it is 48 letters and digits in groups of four, starting with “E”.';
const POLL_MS = 4_000;

/** The backup state of one client, shared by everyone showing it (the settings, each
 *  undecryptable message), refreshed when the crypto layer reports on its backup. */
class BackupWatcher extends EventTarget {
  state: BackupState | null = null;
  error: string | null = null;
  readonly #client: MatrixClient;
  #users = 0;
  #polling = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | null = null;
  #again = false;
  #remaining = 0;

  constructor(client: MatrixClient) {
    super();
    this.#client = client;
  }

  /** Starts watching; `poll` also asks the server every few seconds (for the key count). */
  subscribe(poll: boolean): () => void {
    if (this.#users++ === 0) {
      this.#client.on(CryptoEvent.KeyBackupStatus, this.#refresh);
      this.#client.on(CryptoEvent.KeyBackupDecryptionKeyCached, this.#refresh);
      this.#client.on(CryptoEvent.KeyBackupSessionsRemaining, this.#onRemaining);
    }
    if (poll && this.#polling++ === 0) this.#timer = setInterval(this.#refresh, POLL_MS);
    void this.refresh();
    return () => {
      if (poll && --this.#polling === 0) clearInterval(this.#timer);
      if (--this.#users === 0) {
        this.#client.off(CryptoEvent.KeyBackupStatus, this.#refresh);
        this.#client.off(CryptoEvent.KeyBackupDecryptionKeyCached, this.#refresh);
        this.#client.off(CryptoEvent.KeyBackupSessionsRemaining, this.#onRemaining);
      }
    };
  }

  readonly #refresh = () => void this.refresh();

  readonly #onRemaining = (remaining: number) => {
    this.#remaining = remaining;
    if (this.state) this.#set({ ...this.state, remaining });
    // The last upload done: the server's count changed.
    if (remaining === 0) void this.refresh();
  };

  /** Reads the state again (one read at a time; a call during a read makes one more). */
  refresh(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          this.#set(await this.#read());
          this.error = null;
        } catch (err) {
          this.error = errorText(err);
          this.dispatchEvent(new Event('change'));
        }
      } while (this.#again);
    })().finally(() => (this.#running = null));
    return this.#running;
  }

  async #read(): Promise<BackupState> {
    const crypto = this.#client.getCrypto();
    if (!crypto) throw new Error('End-to-end encryption is not available in this browser.');
    // Fetches the server's latest backup, and starts (or stops) uploading to it depending on
    // whether this device trusts it.
    const check = await crypto.checkKeyBackupAndEnable();
    const active = await crypto.getActiveSessionBackupVersion();
    return { server: check?.backupInfo ?? null, active, hasKey: check?.trustInfo.matchesDecryptionKey ?? false, remaining: this.#remaining };
  }

  #set(state: BackupState) {
    this.state = state;
    this.dispatchEvent(new Event('change'));
  }
}

const watchers = new WeakMap<MatrixClient, BackupWatcher>();

function watcherOf(client: MatrixClient): BackupWatcher {
  let watcher = watchers.get(client);
  if (!watcher) watchers.set(client, (watcher = new BackupWatcher(client)));
  return watcher;
}

function useBackupState(client: MatrixClient, poll: boolean): { state: BackupState | null; error: string | null; watcher: BackupWatcher } {
  const watcher = watcherOf(client);
  const [, setTick] = useState(0);
  useEffect(() => {
    const onChange = () => setTick((n) => n + 1);
    watcher.addEventListener('change', onChange);
    const unsubscribe = watcher.subscribe(poll);
    return () => {
      watcher.removeEventListener('change', onChange);
      unsubscribe();
    };
  }, [watcher, poll]);
  return { state: watcher.state, error: watcher.error, watcher };
}

/** Whether this device should offer to restore: a backup exists that it cannot read. */
const canRestore = (state: BackupState | null): boolean => state !== null && state.server !== null && !state.hasKey;

/** A new backup and secret storage under a new recovery key; returns the key, for the user to save. */
async function setUpKeyBackup(client: MatrixClient): Promise<string> {
  const crypto = client.getCrypto();
  if (!crypto) throw new Error('End-to-end encryption is not available in this browser.');
  const recoveryKey = await crypto.createRecoveryKeyFromPassphrase();
  if (!recoveryKey.encodedPrivateKey) throw new Error('Could not make a recovery key.');
  // Remembered before bootstrapping: storing the secrets asks for it (session.ts explains).
  rememberSecretStorageKey(recoveryKey.privateKey);
  await crypto.bootstrapSecretStorage({
    createSecretStorageKey: () => Promise.resolve(recoveryKey),
    setupNewSecretStorage: true,
    setupNewKeyBackup: true,
  });
  return recoveryKey.encodedPrivateKey;
}

/** Restores every room key of the server's backup with the recovery key `text`. */
async function restoreKeyBackup(
  client: MatrixClient,
  text: string,
  onProgress: (progress: ImportRoomKeyProgressData) => void,
): Promise<KeyBackupRestoreResult> {
  const crypto = client.getCrypto();
  if (!crypto) throw new Error('End-to-end encryption is not available in this browser.');
  let key: Uint8Array<ArrayBuffer>;
  try {
    key = decodeRecoveryKey(text.trim());
  } catch {
    throw new Error(NOT_A_KEY);
  }
  const backup = await crypto.getKeyBackupInfo();
  if (!backup?.version) throw new Error('There is no key backup on the server to restore from.');
  const keyId = await client.secretStorage.getDefaultKeyId();
  const described = keyId === null ? null : await client.secretStorage.getKey(keyId);
  if (described) {
    // The recovery key unlocks secret storage, which holds the backup's own key.
    if (!(await client.secretStorage.checkKey(key, described[1]))) throw new Error(WRONG_KEY);
    rememberSecretStorageKey(key, described[0]);
    // The cross-signing keys too: this device gets signed by them, and so trusts the backup
    // (and goes on backing up its own keys). Not needed to restore: a failure only warns.
    await crypto
      .bootstrapCrossSigning({
        authUploadDeviceSigningKeys: async (makeRequest) => {
          await makeRequest(null);
        },
      })
      .catch((err: unknown) => console.warn('hearth: cross-signing from secret storage failed', err));
    await crypto.loadSessionBackupPrivateKeyFromSecretStorage();
  } else {
    // A backup without secret storage (made by another app): the recovery key is the backup's key.
    await crypto.storeSessionBackupPrivateKey(key, backup.version);
    if (!(await crypto.isKeyBackupTrusted(backup)).matchesDecryptionKey) throw new Error(WRONG_KEY);
  }
  const result = await crypto.restoreKeyBackup({ progressCallback: onProgress });
  await crypto.checkKeyBackupAndEnable();
  return result;
}

function progressText(progress: ImportRoomKeyProgressData | null): string {
  if (progress === null || progress.stage === ImportRoomKeyStage.Fetch) return 'Downloading your keys…';
  return `Restoring keys: ${progress.successes + progress.failures} of ${progress.total}…`;
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** The recovery-key form: restores the backup and says how many keys came back. */
function RestoreForm({ onStart }: { onStart?: () => void }) {
  const { client } = useApp();
  const [busy, setBusy] = useState(false);
  const [progress, setProgress] = useState<ImportRoomKeyProgressData | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [result, setResult] = useState<KeyBackupRestoreResult | null>(null);
  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    const text = formText(event.currentTarget as HTMLFormElement, 'recovery-key');
    setBusy(true);
    setError(null);
    setProgress(null);
    onStart?.();
    try {
      setResult(await restoreKeyBackup(client, text, setProgress));
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
      void watcherOf(client).refresh();
    }
  };
  if (result) {
    return (
      <p class="verified" role="status" data-restored={result.imported}>
        ✓ Restored {plural(result.imported, 'key')} of {result.total}. Your older messages are readable on this device again.
      </p>
    );
  }
  return (
    <form class="stack" onSubmit={(event) => void submit(event)} aria-busy={busy}>
      <label for="recovery-key-input">Recovery key</label>
      <input id="recovery-key-input" name="recovery-key" required autocomplete="off" spellcheck={false} placeholder="EsT… 48 characters in groups of four" />
      <button type="submit" class="primary" disabled={busy}>
        {busy ? 'Restoring…' : 'Restore from backup'}
      </button>
      {busy && (
        <p class="hint" role="status">
          {progressText(progress)}
        </p>
      )}
      <ErrorLine error={error} />
    </form>
  );
}

/** The recovery key, shown once, with a copy and a download button. */
function RecoveryKeyShown({ recoveryKey, onDone }: { recoveryKey: string; onDone: () => void }) {
  const download = () => {
    const url = URL.createObjectURL(new Blob([`Hearth recovery key\n\n${recoveryKey}\n`], { type: 'text/plain' }));
    const link = document.createElement('a');
    link.href = url;
    link.download = 'hearth-recovery-key.txt';
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 1_000);
  };
  return (
    <div class="stack">
      <p class="error" role="alert">
        Save this recovery key somewhere safe, away from this browser. It is the only way to read your older encrypted messages on a new
        device or after logging out; Hearth cannot show it again.
      </p>
      <p>
        <code id="recovery-key" class="recovery-key" style={{ userSelect: 'all', wordBreak: 'break-word' }}>
          {recoveryKey}
        </code>
      </p>
      <div class="buttons">
        <CopyButton text={recoveryKey} label="Copy recovery key" />
        <button type="button" onClick={download}>
          Download
        </button>
        <button type="button" class="primary" onClick={onDone}>
          I have saved it
        </button>
      </div>
    </div>
  );
}

/** The "Key backup" section of the settings. */
export function KeyBackupSettings() {
  const { client } = useApp();
  const { state, error, watcher } = useBackupState(client, true);
  const [busy, setBusy] = useState(false);
  const [setUpError, setSetUpError] = useState<string | null>(null);
  const [recoveryKey, setRecoveryKey] = useState<string | null>(null);
  const [restoring, setRestoring] = useState(false);
  const setUp = async () => {
    setBusy(true);
    setSetUpError(null);
    try {
      setRecoveryKey(await setUpKeyBackup(client));
    } catch (err) {
      setSetUpError(errorText(err));
    } finally {
      setBusy(false);
      void watcher.refresh();
    }
  };

  // Once a restore starts here, its form stays (with its outcome) even as the state moves on.
  const restoreHere = canRestore(state) || restoring;
  let body;
  if (recoveryKey) {
    body = <RecoveryKeyShown recoveryKey={recoveryKey} onDone={() => setRecoveryKey(null)} />;
  } else if (state === null) {
    body = <p class="hint" aria-busy="true">{error ?? 'Checking your key backup…'}</p>;
  } else if (state.server === null) {
    body = (
      <>
        <p class="hint">
          Your encrypted messages can only be read with keys that stay on this device. Back them up, locked with a recovery key, to
          read your messages on a new device or after logging out.
        </p>
        <button type="button" class="primary" disabled={busy} onClick={() => void setUp()}>
          {busy ? 'Setting up…' : 'Back up your keys'}
        </button>
      </>
    );
  } else if (canRestore(state)) {
    body = (
      <p class="hint" data-backup-state="restorable">
        Your keys are backed up on the server ({plural(state.server.count, 'key')}), but this device cannot read the backup yet. Enter
        your recovery key to read your older encrypted messages here.
      </p>
    );
  } else {
    const remaining = state.active === null ? 0 : state.remaining;
    body = (
      <p class="hint" data-backup-state={state.active === null ? 'inactive' : 'active'} data-backup-count={state.server.count} data-backup-remaining={remaining}>
        {state.active === null
          ? `Your keys are backed up on the server (${plural(state.server.count, 'key')}), but this device is not adding its new keys to the backup.`
          : `✓ Your keys are backed up: ${plural(state.server.count, 'key')} on the server${remaining > 0 ? `, ${remaining} more uploading…` : '.'}`}
      </p>
    );
  }
  const restore = !recoveryKey && restoreHere && (
    <>
      <RestoreForm onStart={() => setRestoring(true)} />
      {canRestore(state) && (
        <details>
          <summary>Lost your recovery key?</summary>
          <p class="hint">
            A new backup with a new recovery key keeps the keys on this device from now on; the messages only the old backup could
            read stay unreadable.
          </p>
          <button type="button" class="danger" disabled={busy} onClick={() => void setUp()}>
            {busy ? 'Setting up…' : 'Start a new backup'}
          </button>
        </details>
      )}
    </>
  );
  return (
    <section aria-labelledby="settings-key-backup">
      <h3 id="settings-key-backup">Key backup</h3>
      {body}
      {restore}
      <ErrorLine error={setUpError} />
    </section>
  );
}

/** For an undecryptable message: "Restore from backup" when a backup exists that this device
 *  cannot read yet, opening the recovery-key form. */
export function RestoreFromBackupButton() {
  const { client } = useApp();
  const { state } = useBackupState(client, false);
  const [open, setOpen] = useState(false);
  if (!canRestore(state) && !open) return null;
  return (
    <>
      {' '}
      <button type="button" class="link" onClick={() => setOpen(true)}>
        Restore from backup
      </button>
      {open && (
        <Dialog title="Restore from backup" onClose={() => setOpen(false)}>
          {/* Inside the undecryptable message's paragraph: not in its italics. */}
          <div style={{ fontStyle: 'normal' }}>
            <p class="hint">Enter the recovery key you saved when you set up the key backup, to read your older encrypted messages here.</p>
            <RestoreForm />
          </div>
        </Dialog>
      )}
    </>
  );
}
