// Media: downloads through the authenticated media API into blob URLs (shared and bounded per
// tab, blob-cache.ts), and
// encrypted attachments as the spec describes them
// (https://spec.matrix.org/v1.16/client-server-api/#sending-encrypted-attachments): AES-CTR with a
// 256-bit key, a 64-bit counter under a random 64-bit IV, and the ciphertext's SHA-256.

import type { MatrixClient } from 'matrix-js-sdk';
import { useEffect, useState } from 'preact/hooks';
import { BlobCache, type BlobCacheStats, type Loaded } from './blob-cache';
import { useApp } from './context';

export interface EncryptedFile {
  url: string;
  key: JsonWebKey & { k: string };
  iv: string;
  hashes: { sha256: string };
  v: 'v2';
}

/** Every file shown in this tab, bounded (blob-cache.ts). */
const cache = new BlobCache();

/** How many files the tab holds as blob URLs, and how many bytes of them no component shows. */
export function mediaCacheStats(): BlobCacheStats {
  return cache.stats();
}

/**
 * A blob URL for `mxc` (or the decrypted `file`) while the calling component is mounted: fetched
 * once and shared; `null` until loaded, or the error if it could not be.
 */
export function useMediaUrl(source: string | EncryptedFile | null | undefined, mimetype?: string): { url: string | null; error: string | null } {
  const { client, fetch } = useApp();
  const [state, setState] = useState<{ url: string | null; error: string | null }>({ url: null, error: null });
  const key = typeof source === 'string' ? source : source?.url;
  useEffect(() => {
    setState({ url: null, error: null });
    if (!source) return;
    let live = true;
    const { url, release } = cache.retain(key ?? '', () => download(client, fetch, source, mimetype));
    url.then(
      (url) => live && setState({ url, error: null }),
      (err: unknown) => live && setState({ url: null, error: err instanceof Error ? err.message : String(err) }),
    );
    return () => {
      live = false;
      release();
    };
    // The file is named by its URI: a new `source` object with the same URI is the same file.
  }, [client, fetch, key]);
  return state;
}

async function download(client: MatrixClient, fetchFn: typeof fetch, source: string | EncryptedFile, mimetype?: string): Promise<Loaded> {
  const mxc = typeof source === 'string' ? source : source.url;
  const match = /^mxc:\/\/([^/]+)\/([^/?#]+)$/.exec(mxc);
  if (!match?.[1] || !match[2]) throw new Error(`not a media URI: ${mxc}`);
  const path = `/_matrix/client/v1/media/download/${encodeURIComponent(match[1])}/${encodeURIComponent(match[2])}`;
  const response = await fetchFn(new URL(path, location.origin), {
    headers: { Authorization: `Bearer ${client.getAccessToken() ?? ''}` },
  });
  if (!response.ok) throw new Error(`download failed: ${response.status}`);
  let bytes = await response.arrayBuffer();
  if (typeof source !== 'string') bytes = await decryptAttachment(bytes, source);
  const type = mimetype ?? response.headers.get('content-type') ?? 'application/octet-stream';
  return { url: URL.createObjectURL(new Blob([bytes], { type })), bytes: bytes.byteLength };
}

function toBase64(bytes: Uint8Array, url = false): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  const b64 = btoa(binary).replace(/=+$/, '');
  return url ? b64.replace(/\+/g, '-').replace(/\//g, '_') : b64;
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const normal = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(normal + '='.repeat((4 - (normal.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Encrypts a file for an encrypted room: the ciphertext to upload, and the `file` object
 *  (without `url`, known after the upload) that goes in the event. */
export async function encryptAttachment(plain: ArrayBuffer): Promise<{ data: ArrayBuffer; info: Omit<EncryptedFile, 'url'> }> {
  const iv = new Uint8Array(16);
  crypto.getRandomValues(iv.subarray(0, 8));
  const key = await crypto.subtle.generateKey({ name: 'AES-CTR', length: 256 }, true, ['encrypt', 'decrypt']);
  const data = await crypto.subtle.encrypt({ name: 'AES-CTR', counter: iv, length: 64 }, key, plain);
  const jwk = (await crypto.subtle.exportKey('jwk', key)) as JsonWebKey & { k: string };
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', data));
  return {
    data,
    info: {
      key: { kty: 'oct', key_ops: ['encrypt', 'decrypt'], alg: 'A256CTR', k: jwk.k, ext: true },
      iv: toBase64(iv),
      hashes: { sha256: toBase64(hash) },
      v: 'v2',
    },
  };
}

/** Checks the hash, then decrypts. A mismatch is an error, never garbage shown as the file. */
export async function decryptAttachment(data: ArrayBuffer, info: EncryptedFile): Promise<ArrayBuffer> {
  const expected = info.hashes?.sha256;
  if (!expected) throw new Error('the attachment has no SHA-256 hash');
  const actual = toBase64(new Uint8Array(await crypto.subtle.digest('SHA-256', data)));
  if (actual !== expected.replace(/=+$/, '')) throw new Error("the attachment's hash does not match");
  const key = await crypto.subtle.importKey('jwk', { ...info.key, k: info.key.k }, { name: 'AES-CTR' }, false, ['decrypt']);
  return crypto.subtle.decrypt({ name: 'AES-CTR', counter: fromBase64(info.iv), length: 64 }, key, data);
}

/** An image's natural size, for the event's `info` (so the timeline keeps its place while the
 *  image loads). */
export function imageSize(file: Blob): Promise<{ w: number; h: number } | null> {
  return new Promise((resolve) => {
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => {
      resolve({ w: img.naturalWidth, h: img.naturalHeight });
      URL.revokeObjectURL(url);
    };
    img.onerror = () => {
      resolve(null);
      URL.revokeObjectURL(url);
    };
    img.src = url;
  });
}
