// A file as large as the upload limit (50 MiB) crosses between two hearth-node peers through a
// real hearth-rendezvous relay: uploaded on A, downloaded by a user of B through B's server
// (which fetches it over federation and keeps a copy), the same bytes. One byte more is refused
// at the upload, with the limit advertised by /config.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { federationSuite, newUser } from "../lib/federation.mjs";

const federationTest = federationSuite(2);
const LIMIT = 50 * 1024 * 1024;

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

federationTest("a 50 MiB file crosses between peers; a larger upload is refused", async (f) => {
  const [a, b] = f.nodes;
  const { creds: alice } = await newUser(a, "alice");
  const { creds: bob } = await newUser(b, "bob");
  const auth = (creds) => ({ Authorization: `Bearer ${creds.accessToken}` });

  const config = await (await fetch(`${a.baseUrl}/_matrix/client/v1/media/config`, { headers: auth(alice) })).json();
  assert.equal(config["m.upload.size"], LIMIT);

  const file = randomBytes(LIMIT);
  const upload = await fetch(`${a.baseUrl}/_matrix/media/v3/upload?filename=big.bin`, {
    method: "POST",
    headers: { ...auth(alice), "Content-Type": "application/octet-stream" },
    body: file,
  });
  const uploaded = await upload.json();
  assert.equal(upload.status, 200, JSON.stringify(uploaded));
  const [, server, mediaId] = /^mxc:\/\/([^/]+)\/([^/]+)$/.exec(uploaded.content_uri);
  assert.equal(server, a.serverName);

  const download = await fetch(`${b.baseUrl}/_matrix/client/v1/media/download/${server}/${mediaId}?timeout_ms=60000`, {
    headers: auth(bob),
  });
  const received = Buffer.from(await download.arrayBuffer());
  assert.equal(download.status, 200, received.subarray(0, 500).toString());
  assert.equal(received.length, LIMIT);
  assert.equal(sha256(received), sha256(file), "B's copy has the same bytes");

  const tooLarge = await fetch(`${a.baseUrl}/_matrix/media/v3/upload?filename=bigger.bin`, {
    method: "POST",
    headers: { ...auth(alice), "Content-Type": "application/octet-stream" },
    body: Buffer.concat([file, Buffer.alloc(1)]),
  });
  assert.equal(tooLarge.status, 413);
  assert.equal((await tooLarge.json()).errcode, "M_TOO_LARGE");
});
