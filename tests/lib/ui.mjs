// What the chat app's browser tests do through its UI with Playwright locators: bounded waits
// that say what they waited for, a message found by its own text, a message's hover actions,
// sending from the composer.

/** How long a step waits by default: crossing the relay takes milliseconds, a first dial or a
 *  first Olm session seconds. */
export const STEP_MS = 30_000;

/**
 * Waits (bounded) until `locator` shows. A timeout throws with `what`, after `onTimeout` (a
 * screenshot, say) has run.
 * @param {import("playwright-core").Locator} locator
 * @param {string} what
 * @param {number} [timeoutMs]
 * @param {() => Promise<unknown>} [onTimeout]
 */
export async function visible(locator, what, timeoutMs = STEP_MS, onTimeout) {
  try {
    await locator.first().waitFor({ state: "visible", timeout: timeoutMs });
  } catch (err) {
    await onTimeout?.().catch(() => {});
    throw new Error(`${what}: ${err.message}`);
  }
}

/** The message tile whose own text (not a quote of it in a reply) contains `text`. */
export const message = (page, text) =>
  page.locator("li.event.message").filter({ has: page.locator(".event-body", { hasText: text }) });

/** Hovers the latest message with `text` and clicks one of its actions (Reply, React, …). */
export async function act(page, text, action) {
  const tile = message(page, text).last();
  await tile.hover();
  await tile.getByRole("button", { name: action, exact: true }).click();
}

/** Types `text` into the composer and sends it with Enter. */
export async function send(page, text) {
  const composer = page.getByLabel("Message", { exact: true });
  await composer.fill(text);
  await composer.press("Enter");
}
