// Imports one of the web app's TypeScript modules into a Node test: bundled in memory with the
// esbuild the app's Vite build installs (web/node_modules), so unit tests need no build step.

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const webDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "web");

/** @param {string} path relative to web/src, e.g. "app/blob-cache.ts" */
export async function importAppModule(path) {
  const esbuild = createRequire(join(webDir, "package.json"))("esbuild");
  const { outputFiles } = await esbuild.build({
    entryPoints: [join(webDir, "src", path)],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "node20",
    write: false,
  });
  const code = outputFiles[0].text;
  return import(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`);
}
