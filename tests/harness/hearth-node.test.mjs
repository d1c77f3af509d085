// Tests of the harness itself (lib/hearth-node.mjs) against a fake binary, so its waits,
// restarts and failure reports are known to work before the real hearth-node exists.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { nodeBinaryPath, startNode } from "../lib/hearth-node.mjs";

const FAKE = path.join(path.dirname(fileURLToPath(import.meta.url)), "fake-hearth-node.mjs");

/** Runs `fn` with HEARTH_NODE_BIN (and FAKE_HEARTH_MODE) set, restoring them afterwards. */
async function withEnv(env, fn) {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const key of Object.keys(env)) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  }
}
const fake = (mode, fn) => withEnv({ HEARTH_NODE_BIN: FAKE, FAKE_HEARTH_MODE: mode }, fn);
const starts = (node) =>
  readFileSync(path.join(node.dataDir, "starts.jsonl"), "utf8").trim().split("\n").map(JSON.parse);

test("start, restart on the same data, stop and clean up", () =>
  fake("", async () => {
    const node = await startNode({ maxUploadBytes: 1234 });
    assert.match(node.serverName, /^[0-9a-f]{64}$/);
    assert.equal((await (await fetch(`${node.baseUrl}/`)).json()).versions[0], "v1.16");

    const name = node.serverName;
    await node.restart();
    assert.equal(node.serverName, name, "identity kept across restart");
    assert.ok((await fetch(`${node.baseUrl}/`)).ok, "new base URL answers");
    const [first, second] = starts(node);
    assert.deepEqual(first, second, "restart uses the same arguments");
    assert.deepEqual(first.slice(0, 4), ["--data", node.dataDir, "--listen", "127.0.0.1:0"]);
    assert.ok(first.includes("--open-registration"));
    assert.equal(first[first.indexOf("--max-upload-bytes") + 1], "1234");

    await node.stop();
    assert.equal(existsSync(node.dataDir), false, "temp data dir removed");
  }));

test("registration token replaces open registration", () =>
  fake("", async () => {
    const node = await startNode({ registrationToken: "sesame" });
    const [argv] = starts(node);
    assert.ok(!argv.includes("--open-registration"));
    assert.equal(argv[argv.indexOf("--registration-token") + 1], "sesame");
    await node.stop();
  }));

test("a missing binary fails at once with how to build it", () =>
  withEnv({ HEARTH_NODE_BIN: "/nonexistent/hearth-node" }, async () => {
    assert.equal(nodeBinaryPath(), "/nonexistent/hearth-node");
    const t0 = Date.now();
    await assert.rejects(startNode(), /hearth-node binary not found at \/nonexistent\/hearth-node; build it with cargo build -p hearth-node/);
    assert.ok(Date.now() - t0 < 1000);
  }));

test("exiting before listening is reported with the output", () =>
  fake("exit-early", () =>
    assert.rejects(startNode(), /exited \(code 3, signal null\) before listening[\s\S]*data directory is corrupt/),
  ));

test("never becoming ready is bounded", () =>
  fake("silent", () =>
    assert.rejects(startNode({ startupTimeoutMs: 500 }), /did not print "listening on" within 500 ms/),
  ));

test("ignoring SIGTERM fails stop() after the bound", () =>
  fake("ignore-sigterm", async () => {
    const node = await startNode({ stopTimeoutMs: 500 });
    await assert.rejects(node.stop(), /did not exit within 500 ms of SIGTERM/);
    assert.equal(existsSync(node.dataDir), false);
  }));

test("a non-zero exit on SIGTERM fails stop()", () =>
  fake("exit-1-on-sigterm", async () => {
    const node = await startNode();
    await assert.rejects(node.stop(), /should exit 0 on SIGTERM; got code 1/);
  }));
