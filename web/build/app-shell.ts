// What the service worker precaches so that the page opens offline: the page and everything its
// entry statically imports (chunks, CSS, assets such as the homeserver's wasm), read from the
// Vite manifest of the page build. Chunks loaded only on demand (matrix-js-sdk's crypto, which
// this page does not use) are left out; the worker caches them when first fetched. Plus the files
// of public/ (the web app manifest and the icons), which Vite copies to the root of the build
// unchanged and leaves out of its manifest: an installed app opens offline with its name and icon.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

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
  /** Changes whenever any precached file does (hashed names, plus the bytes of index.html and of
   *  the public files, whose names carry no hash). */
  version: string;
}

/** The files under `dir`, as paths from it with `/` separators, sorted. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)).split(sep).join('/'))
    .sort();
}

/** The shell of the build in `distDir`, whose public files came from `publicDir`. */
export function appShell(distDir: string, publicDir: string): AppShell {
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
  const unhashed = ['index.html', ...filesUnder(publicDir)];
  for (const file of unhashed.slice(1)) files.add(`/${file}`);
  const list = ['/', '/index.html', ...[...files].sort()];
  const hash = createHash('sha256');
  hash.update(list.join('\n'));
  for (const file of unhashed) hash.update(readFileSync(join(distDir, file)));
  return { files: list, version: hash.digest('hex').slice(0, 16) };
}
