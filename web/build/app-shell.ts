// What the service worker precaches so that the page opens offline: the page and everything its
// entry statically imports (chunks, CSS, assets such as the homeserver's wasm), read from the
// Vite manifest of the page build. Chunks loaded only on demand (matrix-js-sdk's crypto, which
// this page does not use) are left out; the worker caches them when first fetched.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ManifestChunk {
  file: string;
  isEntry?: boolean;
  imports?: string[];
  css?: string[];
  assets?: string[];
}

export interface AppShell {
  /** Absolute paths, `/` and `/index.html` first. */
  files: string[];
  /** Changes whenever any precached file does (hashed names, plus index.html's bytes). */
  version: string;
}

export function appShell(distDir: string): AppShell {
  const manifest = JSON.parse(
    readFileSync(join(distDir, '.vite', 'manifest.json'), 'utf8'),
  ) as Record<string, ManifestChunk>;
  const files = new Set<string>();
  const seen = new Set<string>();
  const visit = (key: string) => {
    const chunk = manifest[key];
    if (!chunk || seen.has(key)) return;
    seen.add(key);
    for (const file of [chunk.file, ...(chunk.css ?? []), ...(chunk.assets ?? [])]) {
      if (!file.endsWith('.html')) files.add(`/${file}`);
    }
    for (const imported of chunk.imports ?? []) visit(imported);
  };
  for (const [key, chunk] of Object.entries(manifest)) if (chunk.isEntry) visit(key);
  const list = ['/', '/index.html', ...[...files].sort()];
  const hash = createHash('sha256');
  hash.update(list.join('\n'));
  hash.update(readFileSync(join(distDir, 'index.html')));
  return { files: list, version: hash.digest('hex').slice(0, 16) };
}
