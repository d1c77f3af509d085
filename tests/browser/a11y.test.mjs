// Accessibility of the chat app: axe-core (WCAG 2.0/2.1 A and AA rules) on every main screen and
// dialog, in the light and the dark colour scheme, at a desktop and a phone size; and the
// keyboard: the first-run form, the composer, a dialog and "Use Hearth here" in a second tab,
// without a mouse. Two Chromium profiles and the relay, for an encrypted DM with messages both
// ways, a reply and a reaction.
// Any violation of impact serious or critical fails, listed with its rule, element and summary.

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, before, test } from "node:test";
import { clientReady, openBrowser, ready, serveApp } from "../lib/browser.mjs";
import { startRelay } from "../lib/relay.mjs";
import { waitUntil } from "../lib/wait.mjs";
import { act, message, send, visible } from "../lib/ui.mjs";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const DELIVERY_MS = 30_000;
const UI_MS = 10_000;
const DESKTOP = { width: 1100, height: 720 };
const PHONE = { width: 390, height: 800 };
const SCHEMES = ["light", "dark"];
/** A 1×1 PNG, for an image message (its alt text, its tile). */
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "base64");

let relay;
let app;
const browsers = [];
/** Every serious or critical violation found, as "screen (scheme, size): rule: target: summary". */
const found = [];
const audited = [];
/** Rule ids of the moderate and minor violations (reported, not failed on). */
const lesser = new Set();

before(async () => {
  relay = await startRelay({ websocket: true });
  app = await serveApp({ relays: [relay.websocket] });
});

after(async () => {
  await Promise.allSettled(browsers.map((browser) => browser.close()));
  app?.stop();
  await relay?.dispose();
});


/** Runs axe on the page as it is now, in both colour schemes (and at a phone size too, with
 *  `phone`), and records what it finds. The page is left light, at the desktop size. */
async function audit(page, screen, { phone = false } = {}) {
  if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ path: AXE });
  for (const size of phone ? [DESKTOP, PHONE] : [DESKTOP]) {
    await page.setViewportSize(size);
    for (const scheme of SCHEMES) {
      await page.emulateMedia({ colorScheme: scheme });
      const violations = await page.evaluate(async () => {
        const result = await window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"], resultTypes: ["violations"] });
        return result.violations.flatMap((violation) =>
            violation.nodes.map((node) => ({
              rule: violation.id,
              impact: violation.impact,
              target: node.target.join(" "),
              summary: (node.failureSummary ?? violation.help).replace(/\s+/g, " ").trim(),
            })),
          );
      });
      const where = `${screen} (${scheme}, ${size.width}×${size.height})`;
      audited.push(where);
      for (const v of violations) {
        if (v.impact === "serious" || v.impact === "critical") found.push(`${where}: ${v.rule} [${v.impact}]: ${v.target}: ${v.summary}`);
        else lesser.add(`${v.rule} [${v.impact}]`);
      }
    }
  }
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize(DESKTOP);
}

/** Presses Tab (bounded) until `check` holds for the focused element. */
async function tabTo(page, what, check, { max = 60, key = "Tab" } = {}) {
  for (let i = 0; i < max; i++) {
    if (await page.evaluate(check)) return i;
    await page.keyboard.press(key);
  }
  if (await page.evaluate(check)) return max;
  const at = await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 120));
  throw new Error(`${key} did not reach ${what} in ${max} presses; focus is on ${at}`);
}

/** A fresh profile at the first-run screen. */
async function firstRun() {
  const browser = await openBrowser();
  browsers.push(browser);
  const page = await browser.context.newPage();
  await page.setViewportSize(DESKTOP);
  page.on("pageerror", (error) => browser.logs.push(`[pageerror] ${error.message}`));
  await page.goto(app.url);
  await ready(page);
  await visible(page.getByLabel("Your name"), "the first-run form");
  return { browser, page };
}

async function signedIn(page, name) {
  await visible(page.getByRole("heading", { name: "People online" }), `${name}'s chat to open`);
  await waitUntil(`${name}'s homeserver to be reachable at the relay`, () => page.evaluate(() => window.hearth.reachable()), {
    timeoutMs: DELIVERY_MS,
  });
  return page.evaluate(() => window.hearth.client().getUserId());
}



/** Opens a dialog by clicking `opener`, audits it, closes it with its Close button. */
async function auditDialog(page, opener, title, screen) {
  await opener.click();
  const dialog = page.getByRole("dialog", { name: title });
  await visible(dialog, `the ${screen} dialog`, UI_MS);
  await audit(page, screen, { phone: true });
  await dialog.getByRole("button", { name: "Close", exact: true }).click();
  await dialog.waitFor({ state: "detached", timeout: UI_MS });
}

test("the app passes axe (WCAG 2.1 A/AA) in light and dark, desktop and phone, and works from the keyboard", { timeout: 120_000 }, async (t) => {
  t.after(() => {
    if (found.length > 0) console.log(`axe, so far:\n${found.join("\n")}`);
    if (lesser.size > 0) t.diagnostic(`moderate or minor, not failed on: ${[...lesser].join(", ")}`);
    if (process.env.HEARTH_TEST_VERBOSE === "1") for (const browser of browsers) console.log(browser.logs.join("\n"));
  });
  // First run: audited, then done from the keyboard alone: Tab reaches the name, Enter submits.
  const alice = await firstRun();
  const bobRun = await firstRun();
  await audit(alice.page, "first run", { phone: true });
  await alice.page.evaluate(() => (document.activeElement instanceof HTMLElement ? document.activeElement.blur() : undefined));
  await tabTo(alice.page, "“Your name”", () => document.activeElement?.id === "display-name");
  await alice.page.keyboard.type("Alice");
  await alice.page.keyboard.press("Enter");
  // The log-in form, at Bob's, before he starts.
  await bobRun.page.getByRole("button", { name: "I have an account on this homeserver" }).click();
  await visible(bobRun.page.getByLabel("Username"), "the log-in form", UI_MS);
  await audit(bobRun.page, "log in");
  await bobRun.page.getByRole("button", { name: "Create a new account instead" }).click();
  await bobRun.page.getByLabel("Your name").fill("Bob");
  await bobRun.page.getByRole("button", { name: "Start chatting" }).click();
  const [, bobId] = await Promise.all([signedIn(alice.page, "Alice"), signedIn(bobRun.page, "Bob")]);
  const a = alice.page;
  const b = bobRun.page;

  // Signed in, no rooms yet (Bob in the people list).
  await visible(a.getByRole("button", { name: "Start a chat with Bob" }), "Bob in Alice's people list");
  await audit(a, "signed in, empty", { phone: true });

  // Dialogs without a room.
  await auditDialog(a, a.getByRole("button", { name: /^Your profile/ }), "Your profile", "profile dialog");
  await auditDialog(a, a.getByRole("button", { name: "Settings", exact: true }), "Settings", "settings dialog");
  await auditDialog(a, a.getByRole("button", { name: "New room" }), "New room", "new room dialog");
  await auditDialog(a, a.getByRole("button", { name: "Join", exact: true }), "Join a room", "join a room dialog");

  // An encrypted DM: messages both ways, a reply and a reaction.
  await a.getByRole("button", { name: "Start a chat with Bob" }).click();
  await visible(a.locator("#room-name", { hasText: "Bob" }), "the DM with Bob to open");
  const invite = b.locator(".invite").filter({ hasText: "Alice" });
  await visible(invite, "Alice's invite at Bob's");
  await audit(b, "an invite");
  await invite.getByRole("button", { name: "Accept" }).click();
  await visible(b.locator("#room-name", { hasText: "Alice" }), "the DM to open at Bob's");
  await visible(a.locator(".event.state", { hasText: "Bob joined" }), "Bob's join at Alice's");

  // The composer from the keyboard: Tab reaches it, Enter sends.
  await a.evaluate(() => (document.activeElement instanceof HTMLElement ? document.activeElement.blur() : undefined));
  const presses = await tabTo(a, "the composer", () => document.activeElement?.id === "composer-input", { max: 80 });
  t.diagnostic(`the composer is ${presses} Tab presses from the top of the page`);
  await a.keyboard.type("Hello **Bob**, typed from the keyboard");
  await a.keyboard.press("Enter");
  await visible(message(b, "typed from the keyboard"), "Alice's keyboard-sent message at Bob's");
  await send(b, "Hi Alice! Peer to peer?");
  await visible(message(a, "Hi Alice! Peer to peer?"), "Bob's message at Alice's");
  await act(b, "typed from the keyboard", "Reply");
  await send(b, "Replying to you");
  await visible(message(a, "Replying to you").locator(".reply-quote"), "Bob's reply at Alice's");
  await act(a, "Hi Alice! Peer to peer?", "React");
  await a.getByRole("button", { name: "React with 🎉" }).click();
  await visible(message(b, "Hi Alice! Peer to peer?").locator(".reaction", { hasText: "🎉" }), "Alice's reaction at Bob's");
  await b.locator('input[type="file"]').setInputFiles({ name: "dot.png", mimeType: "image/png", buffer: PNG });
  const image = a.locator("li.event.message img.image");
  await visible(image, "Bob's image at Alice's");
  await waitUntil("the image to decode at Alice's", () => image.evaluate((img) => img.complete && img.naturalWidth === 1), { timeoutMs: DELIVERY_MS });
  await a.mouse.move(1, 700);
  await audit(a, "a room with messages", { phone: true });
  await audit(b, "a room with messages (Bob)");
  // A message's actions, shown on hover or focus, and the reaction picker.
  await message(a, "Replying to you").hover();
  await audit(a, "a message's actions");
  await act(a, "Replying to you", "React");
  await audit(a, "the reaction picker");
  await a.keyboard.press("Escape");
  await a.mouse.move(1, 700);

  await auditDialog(a, a.getByRole("button", { name: "Room settings" }), /^Room settings/, "room settings dialog");

  // A dialog opened from the keyboard keeps focus inside itself; Escape closes it.
  const opener = a.getByRole("button", { name: "Settings", exact: true });
  await opener.focus();
  await a.keyboard.press("Enter");
  const dialog = a.getByRole("dialog", { name: "Settings" });
  await visible(dialog, "the settings dialog, opened with Enter", UI_MS);
  const inDialog = () => document.activeElement?.closest("dialog[open]") !== null;
  assert.ok(await a.evaluate(inDialog), "focus moves into the dialog");
  const focusable = await dialog.evaluate(
    (node) => node.querySelectorAll("button:not([disabled]), input:not([disabled]):not([type=hidden]), textarea, select, summary, a[href]").length,
  );
  for (const key of ["Tab", "Shift+Tab"]) {
    for (let i = 0; i < focusable + 3; i++) {
      await a.keyboard.press(key);
      assert.ok(await a.evaluate(inDialog), `${key} ×${i + 1} keeps focus inside the dialog (on ${await a.evaluate(() => document.activeElement?.outerHTML.slice(0, 80))})`);
    }
  }
  await a.keyboard.press("Escape");
  await dialog.waitFor({ state: "detached", timeout: UI_MS });
  await waitUntil("focus to return to the Settings button", () => a.evaluate(() => document.activeElement?.getAttribute("aria-label") === "Settings"), {
    timeoutMs: UI_MS,
  });

  // A second tab of Alice's says Hearth is open in another tab; Tab and Enter on "Use Hearth
  // here" move the signed-in client to it.
  const second = await alice.browser.context.newPage();
  await second.setViewportSize(DESKTOP);
  await second.goto(app.url);
  await ready(second);
  await visible(second.getByRole("button", { name: "Use Hearth here" }), "the second tab's screen", UI_MS);
  await audit(second, "open in another tab", { phone: true });
  await tabTo(second, "Use Hearth here", () => document.activeElement?.textContent === "Use Hearth here");
  await second.keyboard.press("Enter");
  await clientReady(second);
  await waitUntil("the first tab to say Hearth moved", () => a.evaluate(() => window.hearth.elsewhere()), { timeoutMs: UI_MS });

  assert.ok(bobId.startsWith("@"));
  assert.deepEqual(found, [], `axe found ${found.length} serious or critical violations over ${audited.length} audits:\n${found.join("\n")}`);
});
