// The chat app end to end, driven like a person would: two Chromium profiles (two people, each
// with their own homeserver in a tab) and the real relay. Onboarding, the people list, an
// encrypted direct message, messages both ways with Markdown, a reply, an edit, a reaction and
// an image, a reload that keeps the history, and one side going offline while the other sends.
// Screenshots of the main screens go to target/screenshots/.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { after, before, test } from "node:test";
import { matrixRequest, openBrowser, ready, serveApp } from "../lib/browser.mjs";
import { REPO_ROOT } from "../lib/process.mjs";
import { startRelay } from "../lib/relay.mjs";
import { waitUntil } from "../lib/wait.mjs";
import { act, message, send, visible as visibleWithin } from "../lib/ui.mjs";

/** Crossing the relay takes milliseconds; a first dial, a retry after backoff, and the first
 *  Olm session and room key exchange, seconds. */
const DELIVERY_MS = 30_000;
const SCREENSHOTS = path.join(REPO_ROOT, "target", "screenshots");

/** A 96×64 PNG (a warm gradient), made here so that its checksums are right. */
const IMAGE_WIDTH = 96;
const IMAGE_HEIGHT = 64;
const PNG = (() => {
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(IMAGE_WIDTH, 0);
  header.writeUInt32BE(IMAGE_HEIGHT, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = Buffer.alloc(IMAGE_HEIGHT * (1 + IMAGE_WIDTH * 3));
  for (let y = 0; y < IMAGE_HEIGHT; y++) {
    const row = y * (1 + IMAGE_WIDTH * 3);
    for (let x = 0; x < IMAGE_WIDTH; x++) {
      rows.set([230, 80 + Math.round((x / IMAGE_WIDTH) * 120), 40 + Math.round((y / IMAGE_HEIGHT) * 60)], row + 1 + x * 3);
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", zlib.deflateSync(rows)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
})();

let relay;
let app;
const browsers = [];

before(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  relay = await startRelay({ websocket: true });
  app = await serveApp({ relays: [relay.websocket] });
});

after(async () => {
  await Promise.allSettled(browsers.map((browser) => browser.close()));
  app?.stop();
  await relay?.dispose();
});

async function screenshot(page, name) {
  // Away from the messages, so that no hover toolbar is in the picture.
  await page.mouse.move(1, 700).catch(() => {});
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}

async function screenshotAll(prefix) {
  const pages = browsers.flatMap((browser) => browser.context.pages());
  await Promise.allSettled(pages.map((page, i) => screenshot(page, `${prefix}-${i}`)));
}

/** A bounded wait; one that fails leaves a screenshot of every open page (failed-*.png). */
const visible = (locator, what, timeoutMs = DELIVERY_MS) => visibleWithin(locator, what, timeoutMs, () => screenshotAll("failed"));

/**
 * Runs in the page before the app: records the system notifications it shows, and lets the test
 * say the tab is hidden (headless Chromium keeps every page visible, so the page is told so
 * through `document.visibilityState` and a `visibilitychange` event, as a browser would).
 */
function recordNotifications() {
  let hidden = false;
  Object.defineProperty(Document.prototype, "visibilityState", { configurable: true, get: () => (hidden ? "hidden" : "visible") });
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => hidden });
  window.testVisibility = (value) => {
    hidden = value === "hidden";
    document.dispatchEvent(new Event("visibilitychange"));
  };
  const SystemNotification = window.Notification;
  window.testNotifications = [];
  window.Notification = class extends SystemNotification {
    constructor(title, options) {
      super(title, options);
      window.testNotifications.push({ title, body: options?.body, notification: this });
    }
  };
}

/** The notifications `page` has shown, as `{ title, body }`. */
const notificationsOf = (page) => page.evaluate(() => window.testNotifications.map(({ title, body }) => ({ title, body })));

/** First run in a fresh profile: the name is all it takes. */
async function onboard(name, { shoot = false } = {}) {
  const browser = await openBrowser();
  browsers.push(browser);
  await browser.context.grantPermissions(["clipboard-read", "clipboard-write", "notifications"], { origin: app.url });
  const page = await browser.context.newPage();
  await page.addInitScript(recordNotifications);
  await page.setViewportSize({ width: 1100, height: 720 });
  page.on("pageerror", (error) => browser.logs.push(`[pageerror] ${error.message}`));
  page.on("console", (message) => browser.logs.push(`[${message.type()}] ${message.text()}`));
  await page.goto(app.url);
  await ready(page);
  const nameField = page.getByLabel("Your name");
  await visible(nameField, "the first-run form");
  await nameField.fill(name);
  if (shoot) await screenshot(page, "1-onboarding");
  await page.getByRole("button", { name: "Start chatting" }).click();
  await visible(page.getByRole("heading", { name: "People online" }), `${name}'s chat to open`);
  await waitUntil(`${name}'s homeserver to be reachable at the relay`, () => page.evaluate(() => window.hearth.reachable()), {
    timeoutMs: DELIVERY_MS,
  });
  await visible(page.locator('.relay-status[data-state="online"]'), "the relay status to say online");
  const userId = await page.evaluate(() => window.hearth.client().getUserId());
  return { browser, page, userId, name };
}



test("two people onboard, find each other and chat in an encrypted DM", { timeout: 300_000 }, async (t) => {
  t.after(() => {
    if (process.env.HEARTH_TEST_VERBOSE === "1") for (const browser of browsers) console.log(browser.logs.join("\n"));
  });
  try {
    await conversation();
  } catch (err) {
    await screenshotAll("failed");
    throw err;
  }
});

async function conversation() {
  const alice = await onboard("Alice", { shoot: true });
  const bob = await onboard("Bob");
  await screenshot(alice.page, "2-empty");

  // Alice's user ID, with a copy button and as a QR code.
  await alice.page.getByRole("button", { name: /^Your profile/ }).click();
  const shown = await alice.page.locator("#my-user-id").textContent();
  assert.equal(shown, alice.userId);
  const qr = await alice.page.getByRole("img", { name: /QR code of your user ID/ }).getAttribute("data-qr-text");
  assert.equal(qr, `matrix:u/${alice.userId.slice(1)}`);
  await alice.page.getByRole("button", { name: "Copy user ID" }).click();
  assert.equal(await alice.page.evaluate(() => navigator.clipboard.readText()), alice.userId);
  await screenshot(alice.page, "3-profile");
  await alice.page.getByRole("button", { name: "Close" }).click();

  // Bob is online at the relay, under his name; one click starts an encrypted DM.
  await visible(alice.page.locator(`.people-list li[data-user-id="${bob.userId}"]`, { hasText: /Bob/ }), "Bob, by his name, in Alice's people list");
  await alice.page.getByRole("button", { name: "Start a chat with Bob" }).click();
  await visible(alice.page.locator("#room-name", { hasText: "Bob" }), "the DM with Bob to open");
  await visible(alice.page.getByLabel("End-to-end encrypted"), "the DM to be encrypted");

  // Bob gets the invite and accepts it.
  const invite = bob.page.locator(".invite").filter({ hasText: "Alice" });
  await visible(invite, "Alice's invite at Bob's");
  await invite.getByRole("button", { name: "Accept" }).click();
  await visible(bob.page.locator("#room-name", { hasText: "Alice" }), "the DM to open at Bob's");
  await visible(alice.page.locator(".event.state", { hasText: "Bob joined" }), "Bob's join at Alice's");

  // Alice types: Bob sees it.
  await alice.page.getByLabel("Message", { exact: true }).fill("Hello");
  await visible(bob.page.locator(".typing", { hasText: "Alice is typing" }), "Alice typing at Bob's");

  // Messages both ways, Markdown rendered.
  await send(alice.page, "Hello **Bob**, this is Hearth");
  await visible(bob.page.locator("li.event.message strong", { hasText: "Bob" }), "Alice's formatted message at Bob's");
  await send(bob.page, "Hi Alice! Peer to peer?");
  await visible(message(alice.page, "Hi Alice! Peer to peer?"), "Bob's message at Alice's");

  // Both stored encrypted: the homeservers only ever saw m.room.encrypted.
  const roomId = await alice.page.evaluate(() => decodeURIComponent(location.hash.replace("#/room/", "")));
  const raw = await matrixRequest(alice.page, "GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`);
  const types = raw.body.chunk.filter((event) => !("state_key" in event)).map((event) => event.type);
  assert.ok(types.length >= 2 && types.every((type) => type === "m.room.encrypted"), `timeline types: ${types}`);

  // Bob deletes a message sent by mistake; Alice sees it deleted.
  await send(bob.page, "Sent by mistake");
  await visible(message(alice.page, "Sent by mistake"), "the mistaken message at Alice's");
  bob.page.once("dialog", (dialog) => void dialog.accept());
  await act(bob.page, "Sent by mistake", "Delete");
  await waitUntil("the message to disappear at Alice's", async () => (await message(alice.page, "Sent by mistake").count()) === 0, {
    timeoutMs: DELIVERY_MS,
  });
  await visible(alice.page.locator("li.event.message .redacted"), "“Message deleted” at Alice's");

  // A reply, an edit, a reaction.
  await act(bob.page, "Hello Bob, this is Hearth", "Reply");
  await send(bob.page, "Replying to you");
  const reply = message(alice.page, "Replying to you");
  await visible(reply.locator(".reply-quote", { hasText: "this is Hearth" }), "Bob's reply (with its quote) at Alice's");

  await act(alice.page, "Hi Alice! Peer to peer?", "React");
  await alice.page.getByRole("button", { name: "React with 🎉" }).click();
  await visible(message(bob.page, "Hi Alice! Peer to peer?").locator(".reaction", { hasText: "🎉" }), "Alice's reaction at Bob's");

  await act(alice.page, "Hello Bob, this is Hearth", "Edit");
  const composer = alice.page.getByLabel("Message", { exact: true });
  await waitUntil("the message to edit in the composer", async () => (await composer.inputValue()) === "Hello **Bob**, this is Hearth", {
    timeoutMs: 5_000,
  });
  await composer.fill("Hello **Bob**, this is Hearth, edited");
  await composer.press("Enter");
  await visible(message(bob.page, "this is Hearth, edited").locator(".edited"), "the edit at Bob's");

  // An image: uploaded encrypted with a progress bar, shown inline on the other side.
  await alice.page.locator('input[type="file"]').setInputFiles({ name: "dots.png", mimeType: "image/png", buffer: PNG });
  const image = bob.page.locator("li.event.message img.image");
  await visible(image, "Alice's image at Bob's");
  await waitUntil("the image to decode at Bob's", () => image.evaluate((img) => img.complete && img.naturalWidth === 96), {
    timeoutMs: DELIVERY_MS,
  });

  // Alice and Bob verify each other with emoji: the same seven on both sides, both confirm.
  await alice.page.getByRole("button", { name: "Verify Bob" }).click();
  await bob.page.getByRole("dialog", { name: "Verify Alice" }).getByRole("button", { name: "Accept" }).click();
  const emojiOf = async (page) => {
    const list = page.getByRole("list", { name: "Emoji to compare" });
    await visible(list, "the emoji to compare");
    return list.locator("li").evaluateAll((items) => items.map((item) => item.dataset.emoji));
  };
  const aliceEmoji = await emojiOf(alice.page);
  assert.equal(aliceEmoji.length, 7, `seven emoji: ${aliceEmoji}`);
  assert.deepEqual(await emojiOf(bob.page), aliceEmoji, "both sides show the same emoji");
  await screenshot(alice.page, "4-verification");
  await alice.page.getByRole("button", { name: "They match" }).click();
  await bob.page.getByRole("button", { name: "They match" }).click();
  for (const side of [alice, bob]) {
    await visible(side.page.locator('[data-verification="done"]'), `${side.name}'s verification to finish`);
    await side.page.getByRole("button", { name: "Done" }).click();
  }
  const trust = (page, userId) =>
    page.evaluate(async (userId) => {
      const status = await window.hearth.client().getCrypto().getUserVerificationStatus(userId);
      return { crossSigning: status.isCrossSigningVerified(), verified: status.isVerified() };
    }, userId);
  await visible(alice.page.locator('.verified-badge[data-verified="true"]'), "Bob shown verified at Alice's").catch(async (err) => {
    const keys = await matrixRequest(alice.page, "POST", "/_matrix/client/v3/keys/query", { device_keys: { [bob.userId]: [] } });
    const own = await matrixRequest(bob.page, "POST", "/_matrix/client/v3/keys/query", { device_keys: { [bob.userId]: [] } });
    throw new Error(
      `${err.message}; Alice's trust in Bob: ${JSON.stringify(await trust(alice.page, bob.userId))}; Bob's trust in Alice: ${JSON.stringify(await trust(bob.page, alice.userId))}\nkeys at Alice's: ${JSON.stringify(keys.body)}\nkeys at Bob's: ${JSON.stringify(own.body)}`,
    );
  });
  await visible(bob.page.locator('.verified-badge[data-verified="true"]'), "Alice shown verified at Bob's");

  // Alice's messages reach Bob's server: delivered, and the room says Bob's peer is reachable.
  await visible(alice.page.locator("li.event.message", { has: alice.page.locator("img.image") }).locator('.delivery[data-state="delivered"]'), "the delivered mark under Alice's latest message");
  await visible(alice.page.locator('.peer-status[data-reachable="1"]'), "the room's peer to be reachable");
  await visible(bob.page.locator(".read-by").first(), "a read receipt").catch(() => {});
  await screenshot(alice.page, "5-conversation");
  await screenshot(bob.page, "6-conversation-bob");

  // A reload keeps the history (decrypted again from this device's keys).
  await bob.page.reload();
  await ready(bob.page);
  await visible(message(bob.page, "this is Hearth, edited"), "history after a reload");
  await visible(message(bob.page, "Replying to you"), "Bob's own message after a reload");
  assert.equal(await bob.page.locator(".undecryptable").count(), 0, "nothing undecryptable after a reload");

  // Bob opens a public room; Alice finds it among the public rooms of people online and joins.
  await bob.page.getByRole("button", { name: "New room" }).click();
  await bob.page.getByLabel("Name", { exact: true }).fill("Lobby");
  await bob.page.getByLabel("Topic (optional)").fill("Anyone welcome");
  await bob.page.getByLabel(/Public: anyone/).check();
  await bob.page.getByRole("button", { name: "Create room" }).click();
  await visible(bob.page.locator("#room-name", { hasText: "Lobby" }), "Bob's new room to open");
  const bobLobbyId = await bob.page.evaluate(() => decodeURIComponent(location.hash.replace("#/room/", "")));
  await send(bob.page, "Welcome, whoever comes");
  await visible(message(bob.page, "Welcome, whoever comes"), "Bob's first message in the lobby");
  await alice.page.getByRole("button", { name: "Join", exact: true }).click();
  const listed = alice.page.locator(".public-rooms li", { hasText: "Lobby" });
  await visible(listed, "Bob's public room in Alice's list");
  await screenshot(alice.page, "7-public-rooms");
  await listed.getByRole("button", { name: "Join Lobby" }).click();
  await visible(alice.page.locator("#room-name", { hasText: "Lobby" }), "the public room to open at Alice's");
  await visible(alice.page.locator(".event.state", { hasText: "Alice joined" }), "Alice's join in the public room");
  // What was said before she joined comes from Bob's server (backfill), down to the creation.
  await visible(message(alice.page, "Welcome, whoever comes"), "the lobby's history from before Alice joined");
  await visible(alice.page.locator(".timeline-start", { hasText: "beginning" }), "the beginning of the lobby's history");
  // Bob, the room's admin, makes Alice a moderator in the room settings; her client sees it.
  await visible(bob.page.locator(".event.state", { hasText: "Alice joined" }), "Alice's join at Bob's");
  await bob.page.getByRole("button", { name: "Room settings" }).click();
  await bob.page.getByLabel("Power level of Alice").selectOption("50");
  await waitUntil("Alice to be a moderator at her side", () =>
    alice.page.evaluate(
      ({ roomId, userId }) => window.hearth.client().getRoom(roomId)?.getMember(userId)?.powerLevel === 50,
      { roomId: bobLobbyId, userId: alice.userId },
    ), { timeoutMs: DELIVERY_MS });
  await bob.page.getByRole("button", { name: "Close" }).click();
  await alice.page.getByRole("button", { name: "Room settings" }).click();
  await visible(alice.page.locator(".members li", { hasText: "Alice" }).getByText("moderator"), "Alice listed as moderator in her room settings");
  await alice.page.getByRole("button", { name: "Close" }).click();

  // While Alice is in the public room, Bob writes in the DM: an unread count in her sidebar,
  // gone once she reads it.
  // Her tab is hidden meanwhile: the message (encrypted) becomes a system notification with its
  // decrypted text, and clicking it opens the DM.
  await bob.page.locator(".room-item", { hasText: "Alice" }).click();
  const before = (await notificationsOf(alice.page)).length;
  await alice.page.evaluate(() => window.testVisibility("hidden"));
  await send(bob.page, "psst, back here");
  const dmItem = alice.page.locator(".room-item", { hasText: "Bob" });
  await visible(dmItem.locator(".badge"), "an unread count on the DM in Alice's sidebar").catch(async (err) => {
    const sync = await matrixRequest(alice.page, "GET", "/_matrix/client/v3/sync?timeout=0");
    const counts = await alice.page.evaluate((roomId) => {
      const room = window.hearth.client().getRoom(roomId);
      return { total: room.getUnreadNotificationCount("total"), highlight: room.getUnreadNotificationCount("highlight"), receipt: room.getEventReadUpTo(window.hearth.client().getUserId()) };
    }, roomId);
    throw new Error(`${err.message}; server: ${JSON.stringify(sync.body.rooms?.join?.[roomId]?.unread_notifications)}; client: ${JSON.stringify(counts)}`);
  });
  await waitUntil("a notification of Bob's message at Alice's", async () => (await notificationsOf(alice.page)).length > before, {
    timeoutMs: DELIVERY_MS,
  });
  assert.deepEqual((await notificationsOf(alice.page)).slice(before), [{ title: "Bob", body: "psst, back here" }]);
  await alice.page.evaluate(() => {
    window.testVisibility("visible");
    window.testNotifications.at(-1).notification.onclick();
  });
  await visible(message(alice.page, "psst, back here"), "Bob's message once Alice opens the DM from the notification");
  await waitUntil("the unread count to clear", async () => (await dmItem.locator(".badge").count()) === 0, { timeoutMs: DELIVERY_MS });

  // Bob goes away (his tab, and so his homeserver, closes); Alice writes; Bob comes back and
  // gets it.
  await bob.page.close();
  await send(alice.page, "Are you there?");
  await visible(message(alice.page, "Are you there?").locator('.delivery[data-state="sent"]'), "the message waiting for Bob's server");
  await visible(alice.page.locator(".peer-status[data-queued]:not([data-queued='0'])"), "the queued count");
  await screenshot(alice.page, "8-peer-offline");
  const back = await bob.browser.context.newPage();
  await back.setViewportSize({ width: 1100, height: 720 });
  await back.goto(`${app.url}/#/room/${encodeURIComponent(roomId)}`);
  await ready(back);
  await visible(message(back, "Are you there?"), "the message sent while Bob was away");
  await visible(message(alice.page, "Are you there?").locator('.delivery[data-state="delivered"]'), "delivered once Bob is back");
  assert.equal(await back.locator(".undecryptable").count(), 0, "nothing undecryptable after coming back");

  // A phone-sized screen: one pane at a time.
  await back.setViewportSize({ width: 390, height: 800 });
  await screenshot(back, "9-phone");
}
