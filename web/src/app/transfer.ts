// Moving a whole Hearth to another browser profile: an encrypted file with every Hearth IndexedDB
// database (the homeserver's `hearth`: its server key, accounts, rooms, messages; matrix-js-sdk's
// Rust crypto store `hearth-crypto-<device>::…`: this device's end-to-end encryption keys) and the
// session and relay setting from localStorage.
//
// File (version 1), all integers big-endian:
//
//   magic "HEARTHEX" (8 bytes) | version (1 byte) = 1 | PBKDF2 iterations (u32)
//   | salt (16 bytes) | AES-GCM IV (12 bytes) | ciphertext (with its 16-byte tag)
//
// The key is PBKDF2-HMAC-SHA256(passphrase, salt, iterations) → AES-256-GCM, with the 41 header
// bytes as additional data. The plaintext is the gzip of one value in the tagged binary encoding
// below (`encodeValue`), which keeps every structured-clone type IndexedDB hands back (ArrayBuffer,
// typed arrays, Map, Set, Date, bigint, -0, NaN, strings with lone surrogates) exactly.
//
// Consistency: each database is read in one readonly transaction over all its object stores, and
// the transactions of all databases are started in the same task, so the homeserver and the
// crypto store are read at (nearly) the same moment. A request the client has in flight at that
// moment (e.g. a key upload the server stored but the crypto store has not yet marked as done) can
// still fall between the two: the importing device then sees it as not done and retries it.

import type { HearthHost } from '../host';
import { LOCK_NAME } from '../host/leadership';
import type { Session } from '../session';

const MAGIC = new TextEncoder().encode('HEARTHEX');
const FORMAT_VERSION = 1;
const ITERATIONS = 600_000;
/** A file asking for more would make the import hang for minutes: refuse it. */
const MAX_ITERATIONS = 10_000_000;
const SALT_BYTES = 16;
const IV_BYTES = 12;
const HEADER_BYTES = MAGIC.length + 1 + 4 + SALT_BYTES + IV_BYTES;
const PAYLOAD_FORMAT = 'hearth-export';

/** The localStorage keys that travel with the databases. */
export const LOCAL_STORAGE_KEYS = ['hearth-session', 'hearth.relays'] as const;
const SESSION_KEY = 'hearth-session';
/** How long the import waits for a database deletion other connections block. */
const BLOCKED_TIMEOUT_MS = 10_000;

export const WRONG_PASSPHRASE = 'Wrong passphrase or not a Hearth export';

/** Whether an IndexedDB database belongs to Hearth (and so travels in an export). */
export function isHearthDatabase(name: string): boolean {
  return name === 'hearth' || name.startsWith('hearth-');
}

interface IndexShape {
  name: string;
  keyPath: string | string[];
  unique: boolean;
  multiEntry: boolean;
}

interface StoreDump {
  name: string;
  keyPath: string | string[] | null;
  autoIncrement: boolean;
  indexes: IndexShape[];
  keys: IDBValidKey[];
  values: unknown[];
}

interface DatabaseDump {
  name: string;
  version: number;
  stores: StoreDump[];
}

export interface ExportPayload {
  format: typeof PAYLOAD_FORMAT;
  version: number;
  exportedAt: string;
  /** The exported session's user ID, and its server name, if signed in. */
  userId: string | null;
  serverName: string | null;
  databases: DatabaseDump[];
  localStorage: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// The page's host and session, for the import (which must stop them). main.ts attaches them.

let attached: { host: HearthHost; session: Session } | null = null;

export function attachTransfer(host: HearthHost, session: Session): void {
  attached = { host, session };
}

// ---------------------------------------------------------------------------------------------
// Export

/** Every Hearth database and the session, encrypted with `passphrase`: see the file's header. */
export async function exportHearth(passphrase: string): Promise<Blob> {
  if (passphrase === '') throw new Error('Choose a passphrase');
  const payload = await snapshot();
  const plain = await gzip(encodeValue(payload));
  return new Blob([await seal(plain, passphrase)], { type: 'application/octet-stream' });
}

/** `hearth-<first 8 of the server name>-<YYYY-MM-DD>.hearth`. */
export function exportFileName(serverName: string | null, date = new Date()): string {
  const short = (serverName ?? 'export').replace(/[^A-Za-z0-9.-]/g, '').slice(0, 8) || 'export';
  return `hearth-${short}-${date.toISOString().slice(0, 10)}.hearth`;
}

async function snapshot(): Promise<ExportPayload> {
  const names = (await indexedDB.databases())
    .map((info) => info.name)
    .filter((name): name is string => name !== undefined && isHearthDatabase(name))
    .sort();
  if (!names.includes('hearth')) throw new Error('There is no Hearth homeserver in this browser to export');
  const connections = await Promise.all(names.map((name) => openExisting(name)));
  try {
    // All transactions are created in this one task: the databases are read at the same moment.
    const reads = connections.map((db) => readAll(db));
    const databases = await Promise.all(reads);
    const storage: Record<string, string> = {};
    for (const key of LOCAL_STORAGE_KEYS) {
      const value = localStorage.getItem(key);
      if (value !== null) storage[key] = value;
    }
    const userId = sessionUserId(storage[SESSION_KEY]);
    return {
      format: PAYLOAD_FORMAT,
      version: FORMAT_VERSION,
      exportedAt: new Date().toISOString(),
      userId,
      serverName: userId === null ? null : userId.slice(userId.indexOf(':') + 1),
      databases,
      localStorage: storage,
    };
  } finally {
    for (const db of connections) db.close();
  }
}

function sessionUserId(json: string | undefined): string | null {
  try {
    const value: unknown = JSON.parse(json ?? 'null');
    const userId = typeof value === 'object' && value !== null ? (value as Record<string, unknown>).userId : undefined;
    return typeof userId === 'string' ? userId : null;
  } catch {
    return null;
  }
}

/** Opens a database that exists at its current version (no upgrade). */
function openExisting(name: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(name);
    request.onupgradeneeded = () => {
      // It did not exist after all: do not leave an empty one behind.
      request.transaction?.abort();
    };
    request.onsuccess = () => {
      const db = request.result;
      db.onversionchange = () => db.close();
      resolve(db);
    };
    request.onerror = () => reject(request.error ?? new Error(`cannot open ${name}`));
    request.onblocked = () => reject(new Error(`${name} is being upgraded in another tab`));
  });
}

/** Every object store of `db` (shape and records) in one readonly transaction. Call it for all
 *  databases in the same task: the transaction is created synchronously. */
function readAll(db: IDBDatabase): Promise<DatabaseDump> {
  const storeNames = [...db.objectStoreNames];
  const dump: DatabaseDump = { name: db.name, version: db.version, stores: [] };
  if (storeNames.length === 0) return Promise.resolve(dump);
  const tx = db.transaction(storeNames, 'readonly');
  for (const name of storeNames) {
    const store = tx.objectStore(name);
    const entry: StoreDump = {
      name,
      keyPath: store.keyPath,
      autoIncrement: store.autoIncrement,
      indexes: [...store.indexNames].map((indexName) => {
        const index = store.index(indexName);
        return { name: indexName, keyPath: index.keyPath, unique: index.unique, multiEntry: index.multiEntry };
      }),
      keys: [],
      values: [],
    };
    dump.stores.push(entry);
    const keys = store.getAllKeys();
    keys.onsuccess = () => (entry.keys = keys.result);
    const values = store.getAll();
    values.onsuccess = () => (entry.values = values.result as unknown[]);
  }
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve(dump);
    tx.onerror = () => reject(tx.error ?? new Error(`reading ${db.name} failed`));
    tx.onabort = () => reject(tx.error ?? new Error(`reading ${db.name} was aborted`));
  });
}

// ---------------------------------------------------------------------------------------------
// Import

export interface ImportOptions {
  /** The user confirmed that the Hearth in this browser (accounts, keys) is replaced. Without it
   *  an import over an existing account fails with `ExistingAccountError`. */
  replaceExisting?: boolean;
  /** Reload the page when done (default true). */
  reload?: boolean;
}

export class ExistingAccountError extends Error {
  constructor() {
    super('This browser already has a Hearth account: confirm that the import replaces it');
    this.name = 'ExistingAccountError';
  }
}

/** Decrypts and checks an export without changing anything: the wrong passphrase (or another
 *  file) fails here with `WRONG_PASSPHRASE`. */
export async function readExport(file: Blob, passphrase: string): Promise<ExportPayload> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const plain = await open(bytes, passphrase);
  let payload: unknown;
  try {
    payload = decodeValue(await gunzip(plain));
  } catch {
    throw new Error(WRONG_PASSPHRASE);
  }
  if (!isPayload(payload)) throw new Error(WRONG_PASSPHRASE);
  if (payload.version > FORMAT_VERSION) throw new Error('This export is from a newer Hearth: update this one first');
  return payload;
}

/** Whether this browser has a Hearth account: a saved session, or a user in the homeserver. */
export async function hasExistingAccount(): Promise<boolean> {
  if (localStorage.getItem(SESSION_KEY) !== null) return true;
  const names = (await indexedDB.databases()).map((info) => info.name);
  if (!names.includes('hearth')) return false;
  const db = await openExisting('hearth');
  try {
    if (!db.objectStoreNames.contains('users')) return false;
    const count = db.transaction('users', 'readonly').objectStore('users').count();
    return await new Promise<boolean>((resolve, reject) => {
      count.onsuccess = () => resolve(count.result > 0);
      count.onerror = () => reject(count.error ?? new Error('counting users failed'));
    });
  } finally {
    db.close();
  }
}

/**
 * Replaces this browser's Hearth with the export in `file`: decrypts it (a wrong passphrase
 * changes nothing), stops this tab's client and homeserver, deletes every Hearth database,
 * recreates the exported ones (same versions, object stores, indexes, records), restores the
 * session and relay setting, and reloads the page.
 */
export async function importHearth(file: Blob, passphrase: string, options: ImportOptions = {}): Promise<void> {
  const payload = await readExport(file, passphrase);
  if (!options.replaceExisting && (await hasExistingAccount())) throw new ExistingAccountError();
  if (!attached) throw new Error('The Hearth host is not attached');
  const { host, session } = attached;
  if (await otherTabsOpen(host)) {
    throw new Error('Hearth is open in another tab of this browser: close the other tabs, then import again');
  }

  // From here on this tab gives up its homeserver and holds the leadership lock itself, so that
  // no other tab starts a homeserver on the database while it is replaced. Reloading releases it.
  session.client?.stopClient();
  await host.stop();
  await holdLeadership();

  const existing = (await indexedDB.databases())
    .map((info) => info.name)
    .filter((name): name is string => name !== undefined && isHearthDatabase(name));
  try {
    for (const name of new Set([...existing, ...payload.databases.map((db) => db.name)])) await deleteDatabase(name);
    for (const dump of payload.databases) await restoreDatabase(dump);
  } catch (err) {
    throw new Error(
      `The import failed while replacing the databases (${err instanceof Error ? err.message : String(err)}): ` +
        'import the file again before using Hearth in this browser',
      { cause: err },
    );
  }
  for (const key of LOCAL_STORAGE_KEYS) localStorage.removeItem(key);
  for (const [key, value] of Object.entries(payload.localStorage)) {
    if ((LOCAL_STORAGE_KEYS as readonly string[]).includes(key)) localStorage.setItem(key, value);
  }
  if (options.reload ?? true) location.reload();
}

/** Whether another tab of this origin runs Hearth (holds or waits for the leadership lock). */
async function otherTabsOpen(host: HearthHost): Promise<boolean> {
  const state = await navigator.locks.query();
  const held = (state.held ?? []).filter((lock) => lock.name === LOCK_NAME).length;
  const pending = (state.pending ?? []).filter((lock) => lock.name === LOCK_NAME).length;
  return host.role === 'leader' ? pending > 0 : held > 0 || pending > 1;
}

let holding: Promise<void> | null = null;

/** Takes the leadership lock and never gives it back (until the page goes away); a second
 *  import attempt in this page (after a failed one) keeps the lock it already holds. */
function holdLeadership(): Promise<void> {
  holding ??= new Promise<void>((resolve, reject) => {
    navigator.locks
      .request(LOCK_NAME, { signal: AbortSignal.timeout(BLOCKED_TIMEOUT_MS) }, () => {
        resolve();
        return new Promise<never>(() => {});
      })
      .catch((err: unknown) =>
        reject(new Error(`another tab started Hearth during the import: ${err instanceof Error ? err.message : String(err)}`)),
      );
  });
  holding.catch(() => (holding = null));
  return holding;
}

function deleteDatabase(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.deleteDatabase(name);
    let timer: ReturnType<typeof setTimeout> | undefined;
    request.onblocked = () => {
      timer ??= setTimeout(() => reject(new Error(`${name} is still open elsewhere`)), BLOCKED_TIMEOUT_MS);
    };
    request.onsuccess = () => {
      clearTimeout(timer);
      resolve();
    };
    request.onerror = () => {
      clearTimeout(timer);
      reject(request.error ?? new Error(`deleting ${name} failed`));
    };
  });
}

async function restoreDatabase(dump: DatabaseDump): Promise<void> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const request = indexedDB.open(dump.name, dump.version);
    request.onupgradeneeded = () => {
      for (const shape of dump.stores) {
        const store = request.result.createObjectStore(shape.name, {
          keyPath: shape.keyPath,
          autoIncrement: shape.autoIncrement,
        });
        for (const index of shape.indexes) {
          store.createIndex(index.name, index.keyPath, { unique: index.unique, multiEntry: index.multiEntry });
        }
      }
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error(`creating ${dump.name} failed`));
    request.onblocked = () => reject(new Error(`${dump.name} is open elsewhere`));
  });
  try {
    if (dump.stores.length === 0) return;
    const tx = db.transaction(
      dump.stores.map((shape) => shape.name),
      'readwrite',
    );
    const done = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error ?? new Error(`writing ${dump.name} failed`));
      tx.onabort = () => reject(tx.error ?? new Error(`writing ${dump.name} was aborted`));
    });
    for (const shape of dump.stores) {
      const store = tx.objectStore(shape.name);
      shape.values.forEach((value, i) => {
        if (shape.keyPath === null) store.put(value, shape.keys[i]);
        else store.put(value);
      });
    }
    await done;
  } finally {
    db.close();
  }
}

function isPayload(value: unknown): value is ExportPayload {
  if (typeof value !== 'object' || value === null) return false;
  const payload = value as Partial<ExportPayload>;
  return (
    payload.format === PAYLOAD_FORMAT &&
    typeof payload.version === 'number' &&
    Array.isArray(payload.databases) &&
    payload.databases.every(
      (db) =>
        typeof db.name === 'string' &&
        isHearthDatabase(db.name) &&
        Number.isInteger(db.version) &&
        db.version >= 1 &&
        Array.isArray(db.stores) &&
        db.stores.every((store) => Array.isArray(store.keys) && Array.isArray(store.values) && store.keys.length === store.values.length),
    ) &&
    payload.databases.some((db) => db.name === 'hearth') &&
    typeof payload.localStorage === 'object' &&
    payload.localStorage !== null
  );
}

// ---------------------------------------------------------------------------------------------
// The container: PBKDF2-SHA256 → AES-256-GCM.

async function deriveKey(passphrase: string, salt: Uint8Array<ArrayBuffer>, iterations: number): Promise<CryptoKey> {
  const material = await crypto.subtle.importKey('raw', new TextEncoder().encode(passphrase), 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    { name: 'PBKDF2', hash: 'SHA-256', salt, iterations },
    material,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
}

async function seal(plain: Uint8Array<ArrayBuffer>, passphrase: string): Promise<Uint8Array<ArrayBuffer>> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const header = new Uint8Array(HEADER_BYTES);
  header.set(MAGIC, 0);
  const view = new DataView(header.buffer);
  view.setUint8(MAGIC.length, FORMAT_VERSION);
  view.setUint32(MAGIC.length + 1, ITERATIONS);
  header.set(salt, MAGIC.length + 5);
  header.set(iv, MAGIC.length + 5 + SALT_BYTES);
  const key = await deriveKey(passphrase, salt, ITERATIONS);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: header }, key, plain));
  const out = new Uint8Array(HEADER_BYTES + sealed.length);
  out.set(header, 0);
  out.set(sealed, HEADER_BYTES);
  return out;
}

async function open(bytes: Uint8Array<ArrayBuffer>, passphrase: string): Promise<Uint8Array<ArrayBuffer>> {
  if (bytes.length < HEADER_BYTES + 16 || MAGIC.some((byte, i) => bytes[i] !== byte)) throw new Error(WRONG_PASSPHRASE);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(MAGIC.length);
  if (version !== FORMAT_VERSION) throw new Error(`This export's format (version ${version}) is not one this Hearth reads`);
  const iterations = view.getUint32(MAGIC.length + 1);
  if (iterations < 1 || iterations > MAX_ITERATIONS) throw new Error(WRONG_PASSPHRASE);
  const salt = bytes.slice(MAGIC.length + 5, MAGIC.length + 5 + SALT_BYTES);
  const iv = bytes.slice(MAGIC.length + 5 + SALT_BYTES, HEADER_BYTES);
  const key = await deriveKey(passphrase, salt, iterations);
  try {
    return new Uint8Array(
      await crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData: bytes.slice(0, HEADER_BYTES) }, key, bytes.slice(HEADER_BYTES)),
    );
  } catch {
    throw new Error(WRONG_PASSPHRASE);
  }
}

async function gzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function gunzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// ---------------------------------------------------------------------------------------------
// The value encoding: one tag byte, then the tag's content. Lengths and counts are unsigned
// LEB128 varints; numbers are float64 big-endian.

const enum Tag {
  Undefined = 0,
  Null = 1,
  False = 2,
  True = 3,
  Number = 4,
  /** UTF-8, for strings without lone surrogates. */
  String = 5,
  BigInt = 6,
  Array = 7,
  Object = 8,
  ArrayBuffer = 9,
  TypedArray = 10,
  DataView = 11,
  Date = 12,
  Map = 13,
  Set = 14,
  /** A missing element of a sparse array. */
  Hole = 15,
  RegExp = 16,
  /** UTF-16 code units (little-endian), for strings with lone surrogates. */
  String16 = 17,
}

const TYPED_ARRAYS = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
] as const;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

class Writer {
  #bytes = new Uint8Array(1 << 16);
  #length = 0;
  readonly #encoder = new TextEncoder();

  #reserve(extra: number): void {
    if (this.#length + extra <= this.#bytes.length) return;
    let size = this.#bytes.length * 2;
    while (size < this.#length + extra) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = grown;
  }

  byte(value: number): void {
    this.#reserve(1);
    this.#bytes[this.#length++] = value;
  }

  varint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`not a length: ${value}`);
    let rest = value;
    while (rest >= 0x80) {
      this.byte((rest % 0x80) | 0x80);
      rest = Math.floor(rest / 0x80);
    }
    this.byte(rest);
  }

  float(value: number): void {
    this.#reserve(8);
    new DataView(this.#bytes.buffer).setFloat64(this.#length, value);
    this.#length += 8;
  }

  raw(bytes: Uint8Array): void {
    this.varint(bytes.length);
    this.#reserve(bytes.length);
    this.#bytes.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  text(value: string): void {
    this.raw(this.#encoder.encode(value));
  }

  finish(): Uint8Array<ArrayBuffer> {
    return this.#bytes.slice(0, this.#length);
  }
}

/** The binary encoding of `value` (see `Tag`); `decodeValue` gives an equal value back. */
export function encodeValue(value: unknown): Uint8Array<ArrayBuffer> {
  const out = new Writer();
  const write = (item: unknown): void => {
    switch (typeof item) {
      case 'undefined':
        out.byte(Tag.Undefined);
        return;
      case 'boolean':
        out.byte(item ? Tag.True : Tag.False);
        return;
      case 'number':
        out.byte(Tag.Number);
        out.float(item);
        return;
      case 'bigint':
        out.byte(Tag.BigInt);
        out.text(item.toString());
        return;
      case 'string':
        if (LONE_SURROGATE.test(item)) {
          out.byte(Tag.String16);
          const units = new Uint8Array(item.length * 2);
          for (let i = 0; i < item.length; i++) {
            const unit = item.charCodeAt(i);
            units[2 * i] = unit & 0xff;
            units[2 * i + 1] = unit >> 8;
          }
          out.raw(units);
        } else {
          out.byte(Tag.String);
          out.text(item);
        }
        return;
      case 'object':
        break;
      default:
        throw new Error(`cannot export a ${typeof item}`);
    }
    if (item === null) {
      out.byte(Tag.Null);
    } else if (Array.isArray(item)) {
      out.byte(Tag.Array);
      out.varint(item.length);
      for (let i = 0; i < item.length; i++) {
        if (i in item) write(item[i]);
        else out.byte(Tag.Hole);
      }
    } else if (item instanceof ArrayBuffer) {
      out.byte(Tag.ArrayBuffer);
      out.raw(new Uint8Array(item));
    } else if (item instanceof DataView) {
      out.byte(Tag.DataView);
      out.raw(new Uint8Array(item.buffer, item.byteOffset, item.byteLength));
    } else if (ArrayBuffer.isView(item)) {
      const kind = TYPED_ARRAYS.findIndex((type) => item instanceof type);
      if (kind === -1) throw new Error(`cannot export a ${item.constructor.name}`);
      out.byte(Tag.TypedArray);
      out.byte(kind);
      out.raw(new Uint8Array(item.buffer, item.byteOffset, item.byteLength));
    } else if (item instanceof Date) {
      out.byte(Tag.Date);
      out.float(item.getTime());
    } else if (item instanceof Map) {
      out.byte(Tag.Map);
      out.varint(item.size);
      for (const [key, entry] of item) {
        write(key);
        write(entry);
      }
    } else if (item instanceof Set) {
      out.byte(Tag.Set);
      out.varint(item.size);
      for (const entry of item) write(entry);
    } else if (item instanceof RegExp) {
      out.byte(Tag.RegExp);
      out.text(item.source);
      out.text(item.flags);
    } else if (item instanceof Blob) {
      throw new Error('cannot export a Blob');
    } else {
      const entries = Object.entries(item);
      out.byte(Tag.Object);
      out.varint(entries.length);
      for (const [key, entry] of entries) {
        write(key);
        write(entry);
      }
    }
  };
  write(value);
  return out.finish();
}

export function decodeValue(bytes: Uint8Array<ArrayBuffer>): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let at = 0;
  const need = (count: number) => {
    if (at + count > bytes.length) throw new Error('truncated export');
  };
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (;;) {
      need(1);
      const byte = bytes[at++] ?? 0;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 0x80;
      if (scale > 2 ** 53) throw new Error('bad length in export');
    }
  };
  const raw = (): Uint8Array<ArrayBuffer> => {
    const length = varint();
    need(length);
    const slice = bytes.slice(at, at + length);
    at += length;
    return slice;
  };
  const float = (): number => {
    need(8);
    const value = view.getFloat64(at);
    at += 8;
    return value;
  };
  const text = (): string => decoder.decode(raw());
  const hole = Symbol('hole');
  const read = (): unknown => {
    need(1);
    const tag = bytes[at++] as Tag;
    switch (tag) {
      case Tag.Undefined:
        return undefined;
      case Tag.Null:
        return null;
      case Tag.False:
        return false;
      case Tag.True:
        return true;
      case Tag.Number:
        return float();
      case Tag.String:
        return text();
      case Tag.String16: {
        const units = raw();
        let result = '';
        for (let i = 0; i + 1 < units.length; i += 2) result += String.fromCharCode((units[i] ?? 0) | ((units[i + 1] ?? 0) << 8));
        return result;
      }
      case Tag.BigInt:
        return BigInt(text());
      case Tag.Array: {
        const length = varint();
        const array: unknown[] = [];
        array.length = length;
        for (let i = 0; i < length; i++) {
          const item = read();
          if (item !== hole) array[i] = item;
        }
        return array;
      }
      case Tag.Hole:
        return hole;
      case Tag.Object: {
        const count = varint();
        const object: Record<string, unknown> = {};
        for (let i = 0; i < count; i++) {
          const key = read();
          if (typeof key !== 'string') throw new Error('bad object key in export');
          // defineProperty: a key named __proto__ stays an own property, as structured clone keeps it.
          Object.defineProperty(object, key, { value: read(), enumerable: true, writable: true, configurable: true });
        }
        return object;
      }
      case Tag.ArrayBuffer:
        return raw().buffer;
      case Tag.DataView:
        return new DataView(raw().buffer);
      case Tag.TypedArray: {
        need(1);
        const type = TYPED_ARRAYS[bytes[at++] ?? 255];
        if (!type) throw new Error('bad typed array in export');
        const buffer = raw().buffer;
        return new type(buffer);
      }
      case Tag.Date:
        return new Date(float());
      case Tag.Map: {
        const count = varint();
        const map = new Map<unknown, unknown>();
        for (let i = 0; i < count; i++) {
          const key = read();
          map.set(key, read());
        }
        return map;
      }
      case Tag.Set: {
        const count = varint();
        const set = new Set<unknown>();
        for (let i = 0; i < count; i++) set.add(read());
        return set;
      }
      case Tag.RegExp: {
        const source = text();
        return new RegExp(source, text());
      }
      default:
        throw new Error(`bad tag ${String(tag)} in export`);
    }
  };
  const value = read();
  if (at !== bytes.length) throw new Error('trailing bytes in export');
  return value;
}
