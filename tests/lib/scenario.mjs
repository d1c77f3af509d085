// One test = one fresh hearth-node (own temp data dir) + matrix-js-sdk clients, torn down
// whatever happens. The node's output is printed only when the test fails (or when verbose).

import { test } from "node:test";
import { startNode } from "./hearth-node.mjs";
import { stopAllClients } from "./clients.mjs";

/** Per-test bound; node:test fails the test when it is exceeded. Waits inside are shorter, so a
 * stuck step normally fails first, with a message saying what it waited for. */
const TEST_TIMEOUT_MS = 120_000;

/**
 * @param {string} name
 * @param {(node: import("./hearth-node.mjs").HearthNode, t: import("node:test").TestContext) => Promise<void>} body
 * @param {{node?: Parameters<typeof startNode>[0], timeoutMs?: number}} [opts]
 */
export function scenario(name, body, opts = {}) {
  test(name, { timeout: opts.timeoutMs ?? TEST_TIMEOUT_MS }, async (t) => {
    const node = await startNode(opts.node);
    let failed = true;
    try {
      await body(node, t);
      failed = false;
    } finally {
      // Clients first: their sync loops would otherwise spin against a stopped server.
      await stopAllClients();
      try {
        await node.stop(); // asserts a clean exit 0 on SIGTERM
      } catch (err) {
        if (!failed) throw err; // otherwise keep the test's own error as the reported one
        process.stderr.write(`also: ${err.message.split("\n")[0]}\n`);
      }
      if (failed) process.stderr.write(`--- hearth-node output (${name}) ---\n${node.log()}\n`);
    }
  });
}
