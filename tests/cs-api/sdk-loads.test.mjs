// Runs without hearth-node: proves matrix-js-sdk and its Rust crypto (wasm) load under this
// Node (20, with the Promise.withResolvers polyfill), so failures in the server scenarios are
// about the server, not the test setup.

import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";
import { sdk, clientLogger } from "../lib/sdk.mjs";
import { withTimeout } from "../lib/wait.mjs";

test("matrix-js-sdk loads and initialises its Rust crypto in Node", { timeout: 60_000 }, async () => {
  assert.equal(typeof Promise.withResolvers, "function");

  // initRustCrypto checks for a key backup in the background; answer it as a server without one
  // would, so nothing is left failing against a closed port.
  const server = http.createServer((req, res) => {
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ errcode: "M_NOT_FOUND", error: "No backup found" }));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = sdk.createClient({
    baseUrl: `http://127.0.0.1:${server.address().port}`,
    userId: "@alice:hearth.test",
    deviceId: "TESTDEVICE",
    accessToken: "not-a-real-token",
    logger: clientLogger,
  });
  try {
    // Node has no IndexedDB: the crypto store must be in memory.
    await withTimeout("initRustCrypto", client.initRustCrypto({ useIndexedDB: false }), 30_000);
    const crypto = client.getCrypto();
    assert.ok(crypto, "getCrypto() after initRustCrypto");
    assert.match(crypto.getVersion(), /Rust SDK/);
    const keys = await crypto.getOwnDeviceKeys();
    assert.match(keys.ed25519, /^[A-Za-z0-9+/]{43}$/, "unpadded base64 ed25519 key");
    assert.match(keys.curve25519, /^[A-Za-z0-9+/]{43}$/, "unpadded base64 curve25519 key");
  } finally {
    client.stopClient();
    server.closeAllConnections();
    server.close();
  }
});
