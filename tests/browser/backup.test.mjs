// Key backup with a recovery key, end to end in one Chromium profile, driven like a person would:
// onboard with a password, write in an encrypted room, set up key backup in the settings and
// read the recovery key shown, log out, log in again (a new device whose crypto store is empty:
// the old messages are undecryptable), restore from the backup with the recovery key (a wrong
// key first, which is refused), and the old messages decrypt.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { clientReady, matrixRequest, numbered, openBrowser, ready, sendAll, serveApp } from "../lib/browser.mjs";
import { REPO_ROOT } from "../lib/process.mjs";
import { waitUntil } from "../lib/wait.mjs";
import { visible as visibleWithin } from "../lib/ui.mjs";

/** Creating a backup, uploading keys, or restoring them takes a few requests to the tab's own
 *  homeserver: seconds at most. */
const STEP_MS = 30_000;
const SCREENSHOTS = path.join(REPO_ROOT, "target", "screenshots");
const PASSWORD = "correct horse battery staple";

let app;
let browser;

before(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  app = await serveApp();
  browser = await openBrowser();
});

after(async () => {
  await browser?.close();
  app?.stop();
});

/** A bounded wait for `locator` to show; a failure leaves a screenshot (backup-failed.png). */
const visible = (page, locator, what, timeoutMs = STEP_MS) =>
  visibleWithin(locator, what, timeoutMs, () => page.screenshot({ path: path.join(SCREENSHOTS, "backup-failed.png") }));

async function openSettings(page) {
  await page.getByRole("button", { name: "Settings", exact: true }).click();
  const dialog = page.getByRole("dialog", { name: "Settings" });
  await visible(page, dialog, "the settings");
  return dialog;
}

test("key backup with a recovery key, restored on a new device", { timeout: 240_000 }, async (t) => {
  t.after(() => {
    if (process.env.HEARTH_TEST_VERBOSE === "1") console.log(browser.logs.join("\n"));
  });
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1100, height: 720 });
  page.on("console", (message) => browser.logs.push(`[${message.type()}] ${message.text()}`));
  page.on("pageerror", (error) => browser.logs.push(`[pageerror] ${error.message}`));
  await page.goto(app.url);
  await ready(page);

  // Onboarding, with a password to log in again later.
  const nameField = page.getByLabel("Your name");
  await visible(page, nameField, "the first-run form");
  await nameField.fill("Rosa");
  await page.getByText("Password (optional)").click();
  await page.locator("#password").fill(PASSWORD);
  await page.getByRole("button", { name: "Start chatting" }).click();
  await clientReady(page);
  await visible(page, page.getByRole("button", { name: "Settings", exact: true }), "the chat to open");
  const userId = await page.evaluate(() => window.hearth.client().getUserId());
  const username = userId.slice(1, userId.indexOf(":"));

  // An encrypted room with messages from this first device.
  const roomId = await page.evaluate(async () => {
    const client = window.hearth.client();
    const { room_id } = await client.createRoom({
      name: "Backup test",
      initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
    });
    return room_id;
  });
  await waitUntil("the room to be encrypted at the client", () =>
    page.evaluate((roomId) => window.hearth.client().getRoom(roomId)?.hasEncryptionStateEvent() === true, roomId),
  );
  const before = numbered("Before the backup", 3);
  await sendAll(page, roomId, before);

  // Settings → Key backup → "Back up your keys": the recovery key, shown once, with the warning.
  let settings = await openSettings(page);
  await settings.getByRole("button", { name: "Back up your keys" }).click();
  const keyShown = settings.locator("#recovery-key");
  await visible(page, keyShown, "the recovery key");
  const recoveryKey = (await keyShown.textContent()).trim();
  assert.match(recoveryKey, /^E[1-9A-HJ-NP-Za-km-z]{3}( [1-9A-HJ-NP-Za-km-z]{4}){11}$/, `a recovery key: ${recoveryKey}`);
  await visible(page, settings.getByText(/only way to read your older encrypted messages on a new device/), "the warning");
  await visible(page, settings.getByRole("button", { name: "Copy recovery key" }), "the copy button");
  await visible(page, settings.getByRole("button", { name: "Download" }), "the download button");
  await page.screenshot({ path: path.join(SCREENSHOTS, "backup-1-recovery-key.png") });
  await settings.getByRole("button", { name: "I have saved it" }).click();

  // A message after the backup exists; then every key is uploaded (the settings say so, the
  // server counts them).
  const afterBackup = ["After the backup"];
  await sendAll(page, roomId, afterBackup);
  await visible(page, settings.locator('[data-backup-state="active"][data-backup-remaining="0"]:not([data-backup-count="0"])'), "the keys to be backed up");
  const version = await matrixRequest(page, "GET", "/_matrix/client/v3/room_keys/version");
  assert.equal(version.status, 200);
  assert.ok(version.body.count >= 1, `keys in the backup: ${JSON.stringify(version.body)}`);
  const secretStorage = await matrixRequest(page, "GET", `/_matrix/client/v3/user/${encodeURIComponent(userId)}/account_data/m.megolm_backup.v1`);
  assert.equal(secretStorage.status, 200, "the backup's key is in secret storage");
  assert.ok(secretStorage.body.encrypted, "encrypted with the recovery key");

  // Log out (and confirm); the crypto store goes with the device.
  page.on("dialog", (dialog) => void dialog.accept());
  await settings.getByRole("button", { name: "Log out" }).click();
  await visible(page, page.getByLabel("Your name"), "the first-run form after logging out");

  // Log in again: a new device, with none of the old keys.
  await page.getByRole("button", { name: "I have an account on this homeserver" }).click();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await clientReady(page).catch(async (err) => {
    await page.screenshot({ path: path.join(SCREENSHOTS, "backup-failed.png") });
    throw err;
  });
  const deviceId = await page.evaluate(() => window.hearth.client().getDeviceId());
  assert.ok(deviceId, "a device");
  await page.evaluate((roomId) => (location.hash = `#/room/${encodeURIComponent(roomId)}`), roomId);
  const all = [...before, ...afterBackup];
  await waitUntil(
    "the old messages to show as undecryptable",
    async () => (await page.locator("li.event.message .undecryptable").count()) === all.length,
    { timeoutMs: STEP_MS, describe: () => "(see the screenshot)" },
  ).catch(async (err) => {
    await page.screenshot({ path: path.join(SCREENSHOTS, "backup-failed.png") });
    throw err;
  });
  await visible(page, page.locator("li.event.message").getByRole("button", { name: "Restore from backup" }), "the restore offer on an undecryptable message");
  await page.screenshot({ path: path.join(SCREENSHOTS, "backup-2-undecryptable.png") });

  // Settings → Key backup: a backup this device cannot read yet. Not a key, then a wrong key,
  // are refused.
  settings = await openSettings(page);
  await visible(page, settings.locator('[data-backup-state="restorable"]'), "the offer to restore");
  const keyField = settings.getByLabel("Recovery key");
  const restore = settings.getByRole("button", { name: "Restore from backup" });
  await keyField.fill("not a recovery key");
  await restore.click();
  await visible(page, settings.getByRole("alert").filter({ hasText: "is not a recovery key" }), "the error for a malformed key");
  const wrongKey = await page.evaluate(async () => (await window.hearth.client().getCrypto().createRecoveryKeyFromPassphrase()).encodedPrivateKey);
  await keyField.fill(wrongKey);
  await restore.click();
  await visible(page, settings.getByRole("alert").filter({ hasText: "does not unlock your backup" }), "the error for a wrong key");
  assert.equal(await page.locator("li.event.message .undecryptable").count(), all.length, "still undecryptable");

  // The right key: the keys come back, the messages decrypt.
  const started = Date.now();
  await keyField.fill(recoveryKey);
  await restore.click();
  await visible(page, settings.locator("[data-restored]"), "the restore to finish");
  const restored = Number(await settings.locator("[data-restored]").getAttribute("data-restored"));
  assert.ok(restored >= 1, `keys restored: ${restored}`);
  await page.screenshot({ path: path.join(SCREENSHOTS, "backup-3-restored.png") });
  await settings.getByRole("button", { name: "Close" }).click();
  await waitUntil("the old messages to decrypt", async () => (await page.locator(".undecryptable").count()) === 0, {
    timeoutMs: STEP_MS,
  });
  for (const body of all) await visible(page, page.locator("li.event.message").filter({ hasText: body }), `“${body}” decrypted`);
  t.diagnostic(`restored ${restored} keys; messages readable ${Date.now() - started} ms after the key was entered`);

  // The new device now trusts the backup (its cross-signing keys came from secret storage) and
  // goes on backing up to it.
  settings = await openSettings(page);
  await visible(page, settings.locator('[data-backup-state="active"]'), "this device to back up to the restored backup");
  await page.screenshot({ path: path.join(SCREENSHOTS, "backup-4-active.png") });
});
