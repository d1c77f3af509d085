// Small shared pieces: avatars, modal dialogs, a copy button.

import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { useMediaUrl } from './media';
import { colourOf, initial } from './names';

/** A round avatar: the picture at `mxc` if there is one and it loads, else the name's initial
 *  on a colour derived from `id`. Decorative: the name is always shown next to it. */
export function Avatar({ id, name, mxc, size = 32 }: { id: string; name: string; mxc?: string | null | undefined; size?: number }) {
  const { url: src } = useMediaUrl(mxc);
  const style = { width: `${size}px`, height: `${size}px`, fontSize: `${Math.round(size * 0.45)}px`, background: colourOf(id) };
  return src ? (
    <img class="avatar" src={src} alt="" style={style} />
  ) : (
    <span class="avatar" aria-hidden="true" style={style}>
      {initial(name)}
    </span>
  );
}

/** What Tab can reach inside a dialog. */
const FOCUSABLE = 'button:not([disabled]), input:not([disabled]):not([type=hidden]):not([tabindex="-1"]), textarea:not([disabled]), select:not([disabled]), summary, a[href], [tabindex]:not([tabindex="-1"])';

/** A modal `<dialog>`: focus moves into it and Tab cycles inside it (the browser would let it
 *  leave for its own toolbar); Escape or the close button closes it, and focus goes back to what
 *  opened it. */
export function Dialog({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    const opener = document.activeElement;
    if (dialog && !dialog.open) dialog.showModal();
    // Unmounted rather than closed, so the browser does not restore focus itself; once the
    // dialog is gone (the page outside it inert no more), unless something else took focus.
    return () => {
      setTimeout(() => {
        const lost = document.activeElement === null || document.activeElement === document.body;
        if (lost && opener instanceof HTMLElement && opener.isConnected) opener.focus();
      });
    };
  }, []);
  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key !== 'Tab' || !ref.current) return;
    const targets = [...ref.current.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((node) => node.getClientRects().length > 0);
    const first = targets[0];
    const last = targets[targets.length - 1];
    if (!first || !last) return;
    if (event.shiftKey && (document.activeElement === first || document.activeElement === ref.current)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  };
  return (
    <dialog ref={ref} class={wide ? 'wide' : undefined} aria-label={title} onClose={onClose} onCancel={onClose} onKeyDown={onKeyDown}>
      <header class="dialog-header">
        <h2>{title}</h2>
        <button type="button" class="icon" aria-label="Close" onClick={onClose}>
          ✕
        </button>
      </header>
      {children}
    </dialog>
  );
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Clipboard permission denied (or no secure context): select a hidden field instead.
      const field = document.createElement('textarea');
      field.value = text;
      document.body.append(field);
      field.select();
      document.execCommand('copy');
      field.remove();
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };
  return (
    <button type="button" onClick={() => void copy()}>
      {copied ? 'Copied' : label}
    </button>
  );
}

/** An error line for a form, announced to screen readers. */
export function ErrorLine({ error }: { error: string | null }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** A form field's text (empty when absent or a file). */
export function formText(form: HTMLFormElement | FormData, name: string): string {
  const value = (form instanceof FormData ? form : new FormData(form)).get(name);
  return typeof value === 'string' ? value : '';
}
