// Moving Hearth to another browser: export this browser's Hearth (server identity, accounts,
// rooms, messages, encryption keys, session) as a passphrase-encrypted file, or replace it with
// one. In the settings both; on the first-run screen, the import only. See transfer.ts.

import { useEffect, useState } from 'preact/hooks';
import { exportFileName, exportHearth, ExistingAccountError, hasExistingAccount, importHearth } from './transfer';
import { ErrorLine, errorText, formText } from './widgets';

const MIN_PASSPHRASE = 8;

export function Transfer({ onboarding = false, onBack }: { onboarding?: boolean; onBack?: () => void }) {
  if (onboarding) {
    return (
      <div class="onboarding">
        <div class="card">
          <h1>Hearth</h1>
          <p class="lead">Bring your Hearth from another browser: your server, account, rooms, messages and encryption keys.</p>
          <ImportForm />
          {onBack && (
            <button type="button" class="link" onClick={onBack}>
              Start a new Hearth instead
            </button>
          )}
        </div>
      </div>
    );
  }
  return (
    <>
      <section aria-labelledby="settings-export">
        <h3 id="settings-export">Export this Hearth</h3>
        <ExportForm />
      </section>
      <section aria-labelledby="settings-import">
        <h3 id="settings-import">Import a Hearth export</h3>
        <ImportForm />
      </section>
    </>
  );
}

function ExportForm() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const passphrase = formText(form, 'export-passphrase');
    setError(null);
    setSaved(null);
    if (passphrase.length < MIN_PASSPHRASE) return setError(`Use a passphrase of at least ${MIN_PASSPHRASE} characters`);
    if (passphrase !== formText(form, 'export-passphrase-again')) return setError('The two passphrases differ');
    setBusy(true);
    try {
      const blob = await exportHearth(passphrase);
      const name = exportFileName(serverNameOfSession());
      const url = URL.createObjectURL(blob);
      const link = document.createElement('a');
      link.href = url;
      link.download = name;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      setSaved(name);
      form.reset();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="stack" onSubmit={(event) => void submit(event)} aria-busy={busy}>
      <p class="hint">
        One encrypted file with everything: your server's identity, your account, rooms, messages and encryption keys. Import it
        in another browser to carry on there, and then stop using this one: two copies of the same server would get in each
        other's way.
      </p>
      <p class="error" role="note">
        <strong>Only the passphrase opens the file.</strong> Nobody can recover it for you: if you lose the passphrase, the
        identity in the file is lost for good.
      </p>
      <label for="export-passphrase">Export passphrase</label>
      <input id="export-passphrase" name="export-passphrase" type="password" autocomplete="new-password" minLength={MIN_PASSPHRASE} required />
      <label for="export-passphrase-again">Repeat the passphrase</label>
      <input id="export-passphrase-again" name="export-passphrase-again" type="password" autocomplete="new-password" required />
      <button type="submit" disabled={busy}>
        {busy ? 'Exporting…' : 'Export to a file'}
      </button>
      {saved && (
        <p class="hint" role="status">
          Saved as {saved}. Keep it and its passphrase safe.
        </p>
      )}
      <ErrorLine error={error} />
    </form>
  );
}

function ImportForm() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [existing, setExisting] = useState(false);
  useEffect(() => {
    let live = true;
    hasExistingAccount().then(
      (has) => live && setExisting(has),
      () => live && setExisting(true),
    );
    return () => {
      live = false;
    };
  }, []);
  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const file = form.get('import-file');
    const passphrase = formText(form, 'import-passphrase');
    setError(null);
    if (!(file instanceof File) || file.size === 0) return setError('Choose a Hearth export file');
    setBusy(true);
    try {
      await importHearth(file, passphrase, { replaceExisting: form.get('import-replace') === 'on' });
      // The page reloads into the imported Hearth: stay busy until it does.
    } catch (err) {
      if (err instanceof ExistingAccountError) setExisting(true);
      setError(errorText(err));
      setBusy(false);
    }
  };
  return (
    <form class="stack" onSubmit={(event) => void submit(event)} aria-busy={busy}>
      <label for="import-file">Hearth export file</label>
      <input id="import-file" name="import-file" type="file" accept=".hearth" required />
      <label for="import-passphrase">Passphrase of the export</label>
      <input id="import-passphrase" name="import-passphrase" type="password" autocomplete="current-password" required />
      {existing && (
        <label>
          <input type="checkbox" name="import-replace" required /> Replace the Hearth in this browser: its server, accounts,
          messages and keys are deleted (only an export of them can bring them back)
        </label>
      )}
      <button type="submit" class={existing ? 'danger' : 'primary'} disabled={busy}>
        {busy ? 'Importing…' : 'Import'}
      </button>
      <ErrorLine error={error} />
    </form>
  );
}

function serverNameOfSession(): string | null {
  try {
    const value: unknown = JSON.parse(localStorage.getItem('hearth-session') ?? 'null');
    const userId = typeof value === 'object' && value !== null ? (value as Record<string, unknown>).userId : undefined;
    return typeof userId === 'string' ? userId.slice(userId.indexOf(':') + 1) : null;
  } catch {
    return null;
  }
}
