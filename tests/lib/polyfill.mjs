// matrix-js-sdk 43 targets Node >= 22 and calls Promise.withResolvers (ES2024), which Node 20
// lacks. This module must be evaluated before the sdk is: import it first (lib/sdk.mjs does).

if (typeof Promise.withResolvers !== "function") {
  Object.defineProperty(Promise, "withResolvers", {
    configurable: true,
    writable: true,
    // `this` rather than `Promise`, as the spec says, so subclasses get their own kind.
    value: function withResolvers() {
      let resolve, reject;
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}
