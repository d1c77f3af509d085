// The one entry point to matrix-js-sdk for the tests: loads the Node 20 polyfill first, and
// keeps the sdk quiet unless HEARTH_TEST_VERBOSE=1 (it logs every request and every crypto step,
// which would drown the test report).

import "./polyfill.mjs";
import { createRequire } from "node:module";
import * as sdk from "matrix-js-sdk";

export { sdk };

export const VERBOSE = process.env.HEARTH_TEST_VERBOSE === "1";

const noop = () => {};
/** A logger for `createClient({logger})`: the client, its sync loop and the Rust crypto (whose
 * wasm tracing is routed through it) all log through this one. */
const silentLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };
silentLogger.getChild = () => silentLogger;

/** The logger to give each client: `undefined` means the sdk's default, which prints. */
export const clientLogger = VERBOSE ? undefined : silentLogger;

if (!VERBOSE) {
  // Parts of the sdk (e.g. MatrixRTCSession) log through the global `loglevel` loggers rather
  // than the client's, and create child loggers at any time with their level reset to DEBUG.
  // A level would not stick, so swap the method factory, which new loggers inherit (from the
  // default logger, or from their parent through getChild). Resolve loglevel as the sdk does,
  // so this is the same instance however npm laid out node_modules.
  const loglevel = createRequire(import.meta.resolve("matrix-js-sdk"))("loglevel");
  for (const log of [loglevel, ...Object.values(loglevel.getLoggers())]) {
    log.methodFactory = () => noop;
    log.rebuild();
  }
}
