// Unit tests of the chat app's bounded blob-URL cache (web/src/app/blob-cache.ts), bundled from
// its TypeScript with the app's own esbuild.

import assert from "node:assert/strict";
import { test } from "node:test";
import { importAppModule } from "../lib/app-module.mjs";

const { BlobCache } = await importAppModule("app/blob-cache.ts");

/** A cache with small limits whose revocations are recorded, and a loader of `bytes`-sized files. */
function setUp(limits = { unusedBytes: 100, unusedEntries: 3 }) {
  const revoked = [];
  const cache = new BlobCache(limits, (url) => revoked.push(url));
  let loads = 0;
  const load = (name, bytes) => () => {
    loads++;
    return Promise.resolve({ url: `blob:${name}`, bytes });
  };
  return { cache, revoked, load, loads: () => loads };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test("a file retained twice is loaded once and shared", async () => {
  const { cache, load, loads } = setUp();
  const a = cache.retain("mxc://s/a", load("a", 10));
  const b = cache.retain("mxc://s/a", load("a", 10));
  assert.equal(await a.url, "blob:a");
  assert.equal(await b.url, "blob:a");
  assert.equal(loads(), 1);
  assert.deepEqual(cache.stats(), { entries: 1, inUse: 1, unusedBytes: 0 });
});

test("files in use are never revoked, however large", async () => {
  const { cache, revoked, load } = setUp();
  const held = [cache.retain("a", load("a", 80)), cache.retain("b", load("b", 80)), cache.retain("c", load("c", 80))];
  await Promise.all(held.map((h) => h.url));
  assert.deepEqual(revoked, []);
  assert.deepEqual(cache.stats(), { entries: 3, inUse: 3, unusedBytes: 0 });
});

test("unused files beyond the byte budget are revoked, least recently used first", async () => {
  const { cache, revoked, load } = setUp();
  for (const name of ["a", "b", "c"]) {
    const { url, release } = cache.retain(name, load(name, 40));
    await url;
    release();
  }
  await settle();
  // 120 unused bytes > 100: the oldest (a) goes.
  assert.deepEqual(revoked, ["blob:a"]);
  assert.deepEqual(cache.stats(), { entries: 2, inUse: 0, unusedBytes: 80 });

  // b used again becomes the most recent; the next file pushes out c, not b.
  const b = cache.retain("b", load("b", 40));
  b.release();
  const d = cache.retain("d", load("d", 40));
  await d.url;
  d.release();
  await settle();
  assert.deepEqual(revoked, ["blob:a", "blob:c"]);
});

test("unused files beyond the entry budget are revoked", async () => {
  const { cache, revoked, load } = setUp({ unusedBytes: 1_000, unusedEntries: 2 });
  for (const name of ["a", "b", "c", "d"]) {
    const { url, release } = cache.retain(name, load(name, 1));
    await url;
    release();
  }
  await settle();
  assert.deepEqual(revoked, ["blob:a", "blob:b"]);
  assert.equal(cache.stats().entries, 2);
});

test("a file released while still downloading stays until loaded, then counts", async () => {
  const { cache, revoked } = setUp({ unusedBytes: 50, unusedEntries: 10 });
  let finish;
  const { url, release } = cache.retain("big", () => new Promise((resolve) => (finish = resolve)));
  release();
  assert.deepEqual(cache.stats(), { entries: 1, inUse: 0, unusedBytes: 0 });
  finish({ url: "blob:big", bytes: 60 });
  assert.equal(await url, "blob:big");
  await settle();
  assert.deepEqual(revoked, ["blob:big"]);
  assert.equal(cache.stats().entries, 0);
});

test("a failed load is forgotten and tried again; release twice counts once", async () => {
  const { cache, load } = setUp();
  const failed = cache.retain("x", () => Promise.reject(new Error("download failed: 404")));
  await assert.rejects(failed.url, /404/);
  assert.equal(cache.stats().entries, 0);
  const again = cache.retain("x", load("x", 5));
  const other = cache.retain("x", load("x", 5));
  assert.equal(await again.url, "blob:x");
  again.release();
  again.release();
  assert.deepEqual(cache.stats(), { entries: 1, inUse: 1, unusedBytes: 0 });
  other.release();
  assert.deepEqual(cache.stats(), { entries: 1, inUse: 0, unusedBytes: 5 });
});
