// Downloaded files as blob URLs, shared by every component that shows them and bounded in memory.
// A blob URL keeps its bytes alive until it is revoked, so a long session that scrolls past many
// images would otherwise hold every one of them. Entries in use by a mounted component are never
// revoked (an `<a href>` or `download` link to a revoked URL breaks); of the unused ones, the least
// recently used are revoked once they add up to more than the budget.

export interface BlobCacheLimits {
  /** Bytes of unused files kept for a quick return (scrolling back to an image). */
  unusedBytes: number;
  /** Unused files kept, whatever their size (avatars are small and many). */
  unusedEntries: number;
}

export const DEFAULT_LIMITS: BlobCacheLimits = { unusedBytes: 64 * 1024 * 1024, unusedEntries: 500 };

/** A file as a blob URL and its size in bytes. */
export interface Loaded {
  url: string;
  bytes: number;
}

interface Entry {
  url: Promise<string>;
  /** 0 until loaded: a file still downloading is never evicted. */
  bytes: number;
  users: number;
}

export interface BlobCacheStats {
  entries: number;
  inUse: number;
  unusedBytes: number;
}

export class BlobCache {
  /** In Map order: least recently retained first. */
  readonly #entries = new Map<string, Entry>();
  readonly #limits: BlobCacheLimits;
  readonly #revoke: (url: string) => void;

  constructor(limits: BlobCacheLimits = DEFAULT_LIMITS, revoke: (url: string) => void = (url) => URL.revokeObjectURL(url)) {
    this.#limits = limits;
    this.#revoke = revoke;
  }

  /**
   * The blob URL for `key`, loaded once with `load` while it stays cached; the caller uses it
   * until it calls `release` (once; later calls do nothing). A failed load is forgotten, so the
   * next retain tries again.
   */
  retain(key: string, load: () => Promise<Loaded>): { url: Promise<string>; release: () => void } {
    let entry = this.#entries.get(key);
    if (entry) {
      this.#entries.delete(key);
    } else {
      const created: Entry = { url: Promise.resolve(''), bytes: 0, users: 0 };
      created.url = load().then(
        ({ url, bytes }) => {
          created.bytes = Math.max(bytes, 1);
          this.#trim();
          return url;
        },
        (err: unknown) => {
          if (this.#entries.get(key) === created) this.#entries.delete(key);
          throw err;
        },
      );
      entry = created;
    }
    this.#entries.set(key, entry);
    entry.users++;
    const held = entry;
    let released = false;
    return {
      url: held.url,
      release: () => {
        if (released) return;
        released = true;
        held.users--;
        this.#trim();
      },
    };
  }

  stats(): BlobCacheStats {
    let inUse = 0;
    let unusedBytes = 0;
    for (const entry of this.#entries.values()) {
      if (entry.users > 0) inUse++;
      else unusedBytes += entry.bytes;
    }
    return { entries: this.#entries.size, inUse, unusedBytes };
  }

  #trim(): void {
    let { unusedBytes } = this.stats();
    let unusedEntries = [...this.#entries.values()].filter((entry) => entry.users === 0 && entry.bytes > 0).length;
    for (const [key, entry] of this.#entries) {
      if (unusedBytes <= this.#limits.unusedBytes && unusedEntries <= this.#limits.unusedEntries) break;
      if (entry.users > 0 || entry.bytes === 0) continue;
      this.#entries.delete(key);
      unusedBytes -= entry.bytes;
      unusedEntries--;
      void entry.url.then(this.#revoke, () => {});
    }
  }
}
