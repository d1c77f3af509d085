// The timeline through the UI in one Chromium profile: scrolling back through a room longer
// than what the first sync loads (pages fetched from the server until the beginning), jumping
// back to the latest, and a message the server refuses (too large) shown failed, with Retry and
// Discard.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { openBrowser, ready, serveApp } from "../lib/browser.mjs";
import { waitUntil } from "../lib/wait.mjs";
import { visible } from "../lib/ui.mjs";

const WAIT_MS = 30_000;
const MESSAGES = 150;

let app;
let browser;

before(async () => {
  app = await serveApp();
  browser = await openBrowser();
});

after(async () => {
  await browser?.close();
  app?.stop();
});

test("scroll back to the beginning, jump to the latest, a refused message fails with retry", { timeout: 240_000 }, async () => {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1000, height: 700 });
  await page.goto(app.url);
  await ready(page);
  await page.evaluate(() => window.hearth.register("erin", "erin password 1234").then(() => window.hearth.clientReady));
  // The messages go straight to the homeserver (as if written earlier, elsewhere).
  const roomId = await page.evaluate(async (count) => {
    const client = window.hearth.client();
    const { room_id } = await client.createRoom({ name: "long" });
    for (let n = 1; n <= count; n++) {
      const path = `/_matrix/client/v3/rooms/${encodeURIComponent(room_id)}/send/m.room.message/long-${n}`;
      const response = await window.hearth.fetch(new URL(path, location.origin), {
        method: "PUT",
        headers: { Authorization: `Bearer ${client.getAccessToken()}`, "Content-Type": "application/json" },
        body: JSON.stringify({ msgtype: "m.text", body: `message ${n}` }),
      });
      if (!response.ok) throw new Error(`send ${n}: ${response.status}`);
    }
    return room_id;
  }, MESSAGES);

  // A reload: the first sync brings only the latest messages; the rest come as the reader
  // scrolls up.
  await page.evaluate((roomId) => (location.hash = `#/room/${encodeURIComponent(roomId)}`), roomId);
  await page.reload();
  await ready(page);
  const timeline = page.locator("ol.timeline");
  const bodies = () => timeline.locator("li.event.message .event-body").allTextContents();
  await visible(timeline.locator("li.event.message", { hasText: `message ${MESSAGES}` }), "the latest message");
  assert.ok(!(await bodies()).includes("message 1"), "the first message is not loaded at first");
  await waitUntil(
    "scrolling back to reach the first message",
    async () => {
      await timeline.evaluate((list) => (list.scrollTop = 0));
      const texts = await bodies();
      return texts.includes("message 1") && (await page.locator(".timeline-start", { hasText: "beginning of the conversation" }).count()) > 0;
    },
    { timeoutMs: 60_000, intervalMs: 300 },
  ).catch(async (err) => {
    await page.screenshot({ path: "/tmp/timeline-failed.png" });
    const state = await page.evaluate((roomId) => {
      const room = window.hearth.client().getRoom(roomId);
      const chain = [];
      for (let t = room.getLiveTimeline(); t; t = t.getNeighbouringTimeline("b")) chain.unshift(t);
      return chain.map((t) => ({ events: t.getEvents().length, back: t.getPaginationToken("b") }));
    }, roomId);
    throw new Error(`${err.message}: ${(await bodies()).length} shown, ${JSON.stringify(state)}`);
  });
  const texts = (await bodies()).map((text) => text.trim());
  const numbers = texts.filter((text) => /^message \d+$/.test(text)).map((text) => Number(text.split(" ")[1]));
  assert.deepEqual(numbers, Array.from({ length: MESSAGES }, (_, i) => i + 1), `every message, in order, once: ${numbers.join(",")}`);

  // Away from the bottom, a button leads back to the latest.
  const jump = page.getByRole("button", { name: /Jump to latest/ });
  await visible(jump, "the jump-to-latest button");
  await jump.click();
  await waitUntil(
    "the view to be at the latest message",
    () => timeline.evaluate((list) => list.scrollHeight - list.scrollTop - list.clientHeight < 40),
    { timeoutMs: 5_000 },
  );

  // A message over the spec's 64 KiB event limit: the server refuses it (413), for good.
  const composer = page.getByLabel("Message", { exact: true });
  await composer.fill(`this one is refused ${"x".repeat(70_000)}`);
  await composer.press("Enter");
  const failed = timeline.locator("li.event.message", { hasText: "this one is refused" });
  // matrix-js-sdk retries a 413 with backoff (about 30 s) before it gives up on the message.
  const FAIL_MS = 60_000;
  await visible(failed.locator('.delivery[data-state="failed"]'), "the refused message marked failed", FAIL_MS);
  await failed.getByRole("button", { name: "Retry" }).click();
  await visible(failed.locator('.delivery[data-state="sending"]'), "the message sending again after Retry");
  await visible(failed.locator('.delivery[data-state="failed"]'), "failed again: the server still refuses it", FAIL_MS);
  await failed.getByRole("button", { name: "Discard" }).click();
  await waitUntil("the discarded message to go", async () => (await failed.count()) === 0, { timeoutMs: 5_000 });
});
