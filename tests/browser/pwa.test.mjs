// Hearth as an installed app: Chromium finds the web app manifest and its icons and has nothing
// against installing it (asked over the DevTools protocol), the static server sends them with the
// right types, and once the service worker controls the page the installed app opens with no
// network at all: the page, its manifest and every icon come from the worker's app shell, and the
// homeserver in the tab answers. (tabs.test.mjs checks that the page itself opens offline.)

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { openBrowser, ready, serveApp } from "../lib/browser.mjs";
import { waitUntil, withTimeout } from "../lib/wait.mjs";

const TEST_TIMEOUT_MS = 120_000;
/** Chromium checks installability (fetching the manifest and an icon) when asked. */
const INSTALLABLE_TIMEOUT_MS = 15_000;
const CDP_TIMEOUT_MS = 10_000;

const MIME_TYPES = { png: "image/png", svg: "image/svg+xml" };

/** A browser on a freshly served app, closed (and the server stopped) after the test. */
async function setUp(t) {
  const app = await serveApp();
  t.after(app.stop);
  const browser = await openBrowser({ serviceWorkers: "allow" });
  t.after(async () => {
    if (process.env.HEARTH_TEST_VERBOSE === "1") console.log(browser.logs.join("\n"));
    await browser.close();
  });
  const page = await browser.openTab(app.url);
  const devtools = await page.context().newCDPSession(page);
  const cdp = (method, params) => withTimeout(`DevTools ${method}`, devtools.send(method, params), CDP_TIMEOUT_MS);
  return { app, browser, page, cdp };
}

/** The page's manifest as Chromium parsed it: no errors, and its JSON. */
async function appManifest(cdp) {
  const { url, errors, data } = await cdp("Page.getAppManifest");
  assert.deepEqual(errors, [], `manifest errors: ${JSON.stringify(errors)}`);
  assert.ok(url.endsWith("/manifest.webmanifest"), `manifest url ${url}`);
  assert.ok(data, "Chromium read no manifest");
  return { url, manifest: JSON.parse(data) };
}

/** Waits (bounded) until Chromium reports nothing that prevents installing the app. */
async function untilInstallable(cdp) {
  let last = [];
  await waitUntil(
    "Chromium to find the app installable",
    async () => {
      ({ installabilityErrors: last } = await cdp("Page.getInstallabilityErrors"));
      return last.length === 0;
    },
    { timeoutMs: INSTALLABLE_TIMEOUT_MS, intervalMs: 250, describe: () => JSON.stringify(last) },
  );
}

/** Every icon the app names: the manifest's and index.html's `<link rel="icon">` and
 *  `apple-touch-icon`, as absolute paths. */
async function iconPaths(page, manifest, manifestUrl) {
  const fromManifest = manifest.icons.map((icon) => new URL(icon.src, manifestUrl).pathname);
  const fromPage = await page.evaluate(() =>
    [...document.querySelectorAll('link[rel~="icon"], link[rel="apple-touch-icon"]')].map(
      (link) => new URL(link.href).pathname,
    ),
  );
  assert.ok(fromPage.length >= 2, `index.html links icons: ${fromPage}`);
  return [...new Set([...fromManifest, ...fromPage])];
}

/** A PNG's width and height from its IHDR chunk. */
function pngSize(bytes) {
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "PNG signature");
  assert.equal(bytes.subarray(12, 16).toString("latin1"), "IHDR");
  return `${bytes.readUInt32BE(16)}x${bytes.readUInt32BE(20)}`;
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

test("Chromium can install the app: a valid manifest, and icons served with their types", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { app, page, cdp } = await setUp(t);
  const { url, manifest } = await appManifest(cdp);
  assert.equal(manifest.name, "Hearth");
  assert.ok(manifest.short_name);
  assert.equal(manifest.start_url, "/");
  assert.equal(manifest.scope, "/");
  assert.equal(manifest.display, "standalone");
  assert.equal(manifest.theme_color, "#1f6f5c");
  assert.ok(manifest.background_color);
  const sizes = manifest.icons.filter((icon) => icon.type === "image/png").map((icon) => icon.sizes);
  assert.ok(sizes.includes("192x192") && sizes.includes("512x512"), `PNG icon sizes ${sizes}`);
  assert.ok(
    manifest.icons.some((icon) => icon.purpose?.split(" ").includes("maskable")),
    "a maskable icon",
  );
  await untilInstallable(cdp);

  // The server's answers, not the worker's: the static server names each type.
  const manifestResponse = await fetch(url);
  assert.equal(manifestResponse.status, 200);
  assert.equal(manifestResponse.headers.get("content-type"), "application/manifest+json");
  for (const icon of manifest.icons) {
    const response = await fetch(new URL(icon.src, url));
    assert.equal(response.status, 200, icon.src);
    assert.equal(response.headers.get("content-type"), icon.type, icon.src);
    const bytes = Buffer.from(await response.arrayBuffer());
    if (icon.type === "image/png") assert.equal(pngSize(bytes), icon.sizes, icon.src);
    else assert.match(bytes.toString("utf8"), /^<svg[^>]*viewBox="0 0 512 512"/, icon.src);
  }
  for (const path of await iconPaths(page, manifest, url)) {
    const response = await fetch(new URL(path, app.url));
    assert.equal(response.status, 200, path);
    assert.equal(response.headers.get("content-type"), MIME_TYPES[path.split(".").pop()], path);
  }
});

test("the installed app opens offline with its manifest and icons", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { app, browser, page, cdp } = await setUp(t);
  const { url, manifest } = await appManifest(cdp);
  const paths = [new URL(url).pathname, ...(await iconPaths(page, manifest, url))];
  const online = {};
  for (const path of paths) {
    const response = await fetch(new URL(path, app.url));
    assert.equal(response.status, 200, path);
    online[path] = { type: response.headers.get("content-type"), sha256: sha256(Buffer.from(await response.arrayBuffer())) };
  }

  // Installed: the worker controls the page, and its install precached the shell.
  await waitUntil("the service worker to control the page", () =>
    page.evaluate(() => navigator.serviceWorker.controller !== null),
  );
  const missing = await page.evaluate(async (paths) => {
    const names = (await caches.keys()).filter((name) => name.startsWith("hearth-shell-"));
    const cached = async (path) => {
      for (const name of names) if (await (await caches.open(name)).match(path)) return true;
      return false;
    };
    const result = [];
    for (const path of paths) if (!(await cached(path))) result.push(path);
    return result;
  }, paths);
  assert.deepEqual(missing, [], "the app shell cache holds the manifest and every icon");

  // No network: the static server is gone and the browser is offline. Open the app where the
  // installed app starts.
  app.stop();
  await browser.context.setOffline(true);
  await page.goto(new URL(manifest.start_url, url).href);
  await ready(page);

  const offline = await page.evaluate(async (paths) => {
    const result = {};
    for (const path of paths) {
      const response = await fetch(path);
      const digest = await crypto.subtle.digest("SHA-256", await response.arrayBuffer());
      result[path] = {
        status: response.status,
        type: response.headers.get("content-type"),
        sha256: [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join(""),
      };
    }
    return result;
  }, paths);
  for (const path of paths) {
    assert.deepEqual(offline[path], { status: 200, ...online[path] }, `${path} offline`);
  }
  const again = await appManifest(cdp);
  assert.equal(again.manifest.name, "Hearth");
  assert.deepEqual(again.manifest.icons, manifest.icons);
  await untilInstallable(cdp);
});
