#!/usr/bin/env node
// A stand-in for hearth-node that follows its command-line contract (and, on request, breaks
// it), so the harness in lib/hearth-node.mjs can be tested without the real binary.
// FAKE_HEARTH_MODE: unset = well-behaved; "exit-early", "silent", "ignore-sigterm",
// "exit-1-on-sigterm" = the failure it names.

import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";

const args = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const mode = process.env.FAKE_HEARTH_MODE ?? "";
const dataDir = arg("--data");
const [host, port] = arg("--listen").split(/:(?=\d+$)/);

mkdirSync(dataDir, { recursive: true });
// Record each start's arguments so tests can check what the harness passed.
appendFileSync(path.join(dataDir, "starts.jsonl"), JSON.stringify(args) + "\n");
// The identity is made on first start and kept, like the real one.
const identity = path.join(dataDir, "identity");
if (!existsSync(identity)) writeFileSync(identity, randomBytes(32).toString("hex"));

if (mode === "exit-early") {
  console.error("fatal: pretending the data directory is corrupt");
  process.exit(3);
}
if (mode === "silent") {
  setInterval(() => {}, 1000); // alive, never ready
} else {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ versions: ["v1.16"] }));
  });
  server.listen(Number(port), host, () => {
    console.log(`server name: ${readFileSync(identity, "utf8")}`);
    console.log(`listening on http://${host}:${server.address().port}`);
  });
  const onSignal = () => {
    if (mode === "ignore-sigterm") return;
    server.close();
    server.closeAllConnections();
    process.exit(mode === "exit-1-on-sigterm" ? 1 : 0);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
