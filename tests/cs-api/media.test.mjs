// Media: upload through matrix-js-sdk, download the same bytes and content type through the
// authenticated (v1) and legacy (v3) endpoints, also after a restart; the upload size limit.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { apiClient, registerUser } from "../lib/clients.mjs";
import { scenario } from "../lib/scenario.mjs";
import { withTimeout } from "../lib/wait.mjs";

const LIMIT = 64 * 1024; // --max-upload-bytes: small, so the over-limit upload is quick
const TYPE = "image/png";

scenario(
  "media round-trips, survives a restart, and the size limit holds",
  async (node) => {
    const creds = await registerUser(node.baseUrl, "alice");
    let alice = apiClient(node.baseUrl, creds);

    const config = await alice.getMediaConfig(true); // GET /_matrix/client/v1/media/config
    assert.equal(config["m.upload.size"], LIMIT);

    // Exactly at the limit: allowed.
    const bytes = randomBytes(LIMIT);
    const { content_uri: mxc } = await alice.uploadContent(bytes, { type: TYPE, name: "noise.png" });
    const [, server, mediaId] = /^mxc:\/\/([^/]+)\/([^/]+)$/.exec(mxc) ?? [];
    assert.ok(mediaId, `an mxc URI: ${mxc}`);
    assert.equal(server, node.serverName);

    const v1Path = `/_matrix/client/v1/media/download/${server}/${mediaId}`;
    const v3Path = `/_matrix/media/v3/download/${server}/${mediaId}`;
    // The sdk builds the same authenticated URL a client would fetch.
    const sdkUrl = alice.mxcUrlToHttp(mxc, undefined, undefined, undefined, false, false, true);
    assert.equal(new URL(sdkUrl).pathname, v1Path);

    const checkDownloads = async (baseUrl) => {
      const auth = { Authorization: `Bearer ${creds.accessToken}` };
      await expectMedia(await get(`${baseUrl}${v1Path}`, auth), bytes, "v1 download");
      await expectMedia(await get(`${baseUrl}${v3Path}`), bytes, "legacy v3 download");
      // The v1 endpoint requires authentication.
      const anon = await get(`${baseUrl}${v1Path}`);
      assert.equal(anon.status, 401, "v1 download without a token");
      assert.equal((await anon.json()).errcode, "M_MISSING_TOKEN");
    };
    await checkDownloads(node.baseUrl);

    // One byte over the limit: 413 M_TOO_LARGE, as matrix-js-sdk reports it.
    await assert.rejects(
      alice.uploadContent(randomBytes(LIMIT + 1), { type: TYPE }),
      (err) => err.httpStatus === 413 && err.errcode === "M_TOO_LARGE",
    );

    await node.restart();
    alice = apiClient(node.baseUrl, creds);
    await checkDownloads(node.baseUrl);
  },
  { node: { maxUploadBytes: LIMIT } },
);

/** fetch with a bound: a download that never ends fails the test instead of hanging it. */
function get(url, headers = {}) {
  return withTimeout(`GET ${url}`, fetch(url, { headers }));
}

async function expectMedia(res, bytes, what) {
  assert.equal(res.status, 200, `${what}: status`);
  assert.equal(res.headers.get("content-type")?.split(";")[0].trim(), TYPE, `${what}: content type`);
  const body = Buffer.from(await withTimeout(`${what} body`, res.arrayBuffer()));
  assert.ok(body.equals(bytes), `${what}: same ${bytes.length} bytes (got ${body.length})`);
}
