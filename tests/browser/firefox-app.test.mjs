// The chat app's UI in Firefox, used as a person would, with a person in Chromium on the other
// side of a real relay. Firefox (Debian's firefox-esr over WebDriver BiDi, lib/firefox.mjs) gets
// real input only: pointer moves and clicks on what is under the pointer, keys typed one by one
// (`input.performActions`); nothing calls the app's functions or fires synthetic DOM events. So
// this fails if the first-run form, the people list, the DM, the composer, the hover toolbar,
// the reaction picker or emoji verification does not work in Firefox. Chromium is driven by Playwright as in
// app.test.mjs. Screenshots of both pages go to target/screenshots/ if it fails.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { openBrowser, ready as chromiumReady, serveApp } from "../lib/browser.mjs";
import { click, count, hover, openFirefox, press, ready, screenshot, setViewport, type, waitFor } from "../lib/firefox.mjs";
import { REPO_ROOT } from "../lib/process.mjs";
import { startRelay } from "../lib/relay.mjs";
import { waitUntil } from "../lib/wait.mjs";
import { message, visible as visibleWithin } from "../lib/ui.mjs";

/** Crossing the relay takes milliseconds; a first dial, a retry after backoff, and the first
 *  Olm session and room key exchange, seconds. */
const DELIVERY_MS = 30_000;
const SCREENSHOTS = path.join(REPO_ROOT, "target", "screenshots");

/** Playwright's bounded wait for a visible element in Chromium. */
const visible = (locator, what, timeoutMs = DELIVERY_MS) => visibleWithin(locator, `${what} (Chromium)`, timeoutMs);


test("Firefox: onboard, find a Chromium person, an encrypted DM, messages, a reaction, emoji verification, a reload", { timeout: 120_000 }, async (t) => {
  const relay = await startRelay({ websocket: true });
  t.after(() => relay.dispose());
  const app = await serveApp({ relays: [relay.websocket] });
  t.after(app.stop);
  const firefox = await openFirefox();
  const chromium = await openBrowser();
  let fox;
  let page;
  t.after(async () => {
    if (t.passed === false) {
      mkdirSync(SCREENSHOTS, { recursive: true });
      if (fox) await screenshot(fox, path.join(SCREENSHOTS, "firefox-app-failed-firefox.png")).catch(() => {});
      if (page) await page.screenshot({ path: path.join(SCREENSHOTS, "firefox-app-failed-chromium.png") }).catch(() => {});
      if (process.env.HEARTH_TEST_VERBOSE !== "1") {
        console.log(`Firefox's log:\n${firefox.logs.join("\n")}`);
        console.log(`Chromium's log:\n${chromium.logs.join("\n")}`);
      }
    }
    await firefox.close();
    await chromium.close();
  });

  // Both onboard through the first-run form: Alice in Firefox, Bob in Chromium.
  fox = await firefox.openTab(app.url);
  await setViewport(fox, 1100, 720);
  await waitFor(fox, "#display-name");
  await type(fox, "#display-name", "Alice");
  await click(fox, "button[type=submit]", { hasText: "Start chatting" });
  await waitFor(fox, "h2#people-heading", { hasText: "People online", timeoutMs: DELIVERY_MS });

  page = await chromium.context.newPage();
  await page.setViewportSize({ width: 1100, height: 720 });
  page.on("pageerror", (error) => chromium.logs.push(`[pageerror] ${error.message}`));
  page.on("console", (msg) => chromium.logs.push(`[${msg.type()}] ${msg.text()}`));
  await page.goto(app.url);
  await chromiumReady(page);
  await visible(page.getByLabel("Your name"), "the first-run form");
  await page.getByLabel("Your name").fill("Bob");
  await page.getByRole("button", { name: "Start chatting" }).click();
  await visible(page.getByRole("heading", { name: "People online" }), "Bob's chat to open");

  await waitFor(fox, '.relay-status[data-state="online"]', { timeoutMs: DELIVERY_MS });
  await visible(page.locator('.relay-status[data-state="online"]'), "the relay status to say online");
  const bob = await page.evaluate(() => window.hearth.client().getUserId());

  // Alice finds Bob among the people online and starts an encrypted DM with one click.
  await waitFor(fox, `.people-list li[data-user-id="${bob}"]`, { hasText: /Bob/, timeoutMs: DELIVERY_MS });
  await click(fox, 'button[aria-label="Start a chat with Bob"]');
  await waitFor(fox, "#room-name", { hasText: "Bob", timeoutMs: DELIVERY_MS });
  await waitFor(fox, '#room-name [aria-label="End-to-end encrypted"]');

  // Bob accepts the invite.
  const invite = page.locator(".invite").filter({ hasText: "Alice" });
  await visible(invite, "Alice's invite at Bob's");
  await invite.getByRole("button", { name: "Accept" }).click();
  await visible(page.locator("#room-name", { hasText: "Alice" }), "the DM to open at Bob's");
  await waitFor(fox, ".event.state", { hasText: "Bob joined", timeoutMs: DELIVERY_MS });

  // Alice types (Bob sees her typing), Enter sends; the composer empties.
  await type(fox, "#composer-input", "Hello Bob, from Firefox");
  await visible(page.locator(".typing", { hasText: "Alice is typing" }), "Alice typing at Bob's");
  await press(fox, "Enter");
  await waitUntil("the Firefox composer to empty after Enter", async () => (await fox.evaluate(() => document.querySelector("#composer-input").value)) === "", {
    timeoutMs: 5_000,
  });
  await visible(message(page, "Hello Bob, from Firefox"), "Alice's message at Bob's");

  // Bob answers; Alice sees it decrypted.
  const composer = page.getByLabel("Message", { exact: true });
  await composer.fill("Hi Alice, from Chromium");
  await composer.press("Enter");
  const bobsMessage = { within: { css: "li.event.message", hasText: "Hi Alice, from Chromium" } };
  await waitFor(fox, ".event-body", { ...bobsMessage, timeoutMs: DELIVERY_MS });
  await waitFor(fox, "li.event.message .event-body", { hasText: "Hello Bob, from Firefox" });
  assert.equal(await count(fox, ".undecryptable"), 0, "nothing undecryptable in Firefox");
  assert.equal(await page.locator(".undecryptable").count(), 0, "nothing undecryptable in Chromium");

  // Alice reacts to Bob's message from its hover toolbar; Bob sees the reaction.
  await hover(fox, "li.event.message", { hasText: "Hi Alice, from Chromium" });
  await click(fox, ".actions button", { ...bobsMessage, hasText: /^React$/ });
  await click(fox, 'button[aria-label="React with 🎉"]', bobsMessage);
  await waitFor(fox, ".reaction.mine", { ...bobsMessage, hasText: "🎉" });
  await visible(message(page, "Hi Alice, from Chromium").locator(".reaction", { hasText: "🎉" }), "Alice's reaction at Bob's");

  // Alice (Firefox) verifies Bob with emoji: the same seven on both sides, both confirm, each
  // then shows the other verified.
  await click(fox, "button", { hasText: /^Verify Bob$/ });
  await page.getByRole("dialog", { name: "Verify Alice" }).getByRole("button", { name: "Accept" }).click();
  await waitFor(fox, '[aria-label="Emoji to compare"] li', { timeoutMs: DELIVERY_MS });
  const foxEmoji = await fox.evaluate(() => [...document.querySelectorAll('[aria-label="Emoji to compare"] li')].map((li) => li.dataset.emoji));
  const emojiList = page.getByRole("list", { name: "Emoji to compare" });
  await visible(emojiList, "the emoji to compare at Bob's");
  const bobEmoji = await emojiList.locator("li").evaluateAll((items) => items.map((item) => item.dataset.emoji));
  assert.equal(foxEmoji.length, 7, `seven emoji: ${foxEmoji}`);
  assert.deepEqual(bobEmoji, foxEmoji, "Firefox and Chromium show the same emoji");
  await click(fox, "button", { hasText: /^They match$/ });
  await page.getByRole("button", { name: "They match" }).click();
  await waitFor(fox, '[data-verification="done"]', { timeoutMs: DELIVERY_MS });
  await visible(page.locator('[data-verification="done"]'), "Bob's verification to finish");
  await click(fox, "button", { hasText: /^Done$/ });
  await page.getByRole("button", { name: "Done" }).click();
  await waitFor(fox, '.verified-badge[data-verified="true"]', { timeoutMs: DELIVERY_MS });
  await visible(page.locator('.verified-badge[data-verified="true"]'), "Alice shown verified at Bob's");

  // A reload keeps the history, decrypted again from this device's keys, and the reaction.
  await fox.reload();
  await ready(fox);
  await waitFor(fox, "#room-name", { hasText: "Bob", timeoutMs: DELIVERY_MS });
  await waitFor(fox, "li.event.message .event-body", { hasText: "Hello Bob, from Firefox", timeoutMs: DELIVERY_MS });
  await waitFor(fox, ".event-body", { ...bobsMessage, timeoutMs: DELIVERY_MS });
  await waitFor(fox, ".reaction.mine", { ...bobsMessage, hasText: "🎉" });
  assert.equal(await count(fox, ".undecryptable"), 0, "nothing undecryptable in Firefox after a reload");

  // And the composer still sends after the reload.
  await type(fox, "#composer-input", "Still here after a reload");
  await press(fox, "Enter");
  await visible(message(page, "Still here after a reload"), "Alice's message after her reload at Bob's");
});
