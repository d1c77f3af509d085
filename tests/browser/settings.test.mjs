// The app's settings, through the UI, in one Chromium profile: a new picture and display name,
// the devices list (this device, renamed; another device signed out with the password),
// notifications allowed, the relays shown.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { openBrowser, ready, serveApp } from "../lib/browser.mjs";
import { waitUntil } from "../lib/wait.mjs";
import { visible } from "../lib/ui.mjs";

const WAIT_MS = 30_000;
const PASSWORD = "a long enough password";
/** A 1×1 PNG. */
const PIXEL = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64");

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

test("settings: picture, name, devices, notifications", { timeout: 120_000 }, async () => {
  await browser.context.grantPermissions(["notifications"], { origin: app.url });
  const page = await browser.context.newPage();
  await page.goto(app.url);
  await ready(page);
  await page.getByLabel("Your name").fill("Dana");
  await page.getByText("Password (optional)").click();
  await page.getByLabel("Password, to log in again on this homeserver").fill(PASSWORD);
  await page.getByRole("button", { name: "Start chatting" }).click();
  await visible(page.getByRole("button", { name: "Settings" }), "the chat to open");

  // Another device of Dana's: a log-in with her password, as from another browser.
  const other = await page.evaluate(async (password) => {
    const client = window.hearth.client();
    const response = await window.hearth.fetch("/_matrix/client/v3/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: client.getUserId() },
        password,
        initial_device_display_name: "Dana's phone",
      }),
    });
    return response.json();
  }, PASSWORD);
  assert.ok(other.access_token, `the second log-in: ${JSON.stringify(other)}`);

  await page.getByRole("button", { name: "Settings" }).click();
  const settings = page.getByRole("dialog", { name: "Settings" });
  await visible(settings, "the settings dialog");

  // A picture: uploaded, set on the profile, shown.
  await settings.getByLabel("Profile picture").setInputFiles({ name: "me.png", mimeType: "image/png", buffer: PIXEL });
  await visible(settings.locator(".avatar-setting img.avatar"), "the new picture");
  const avatarUrl = await page.evaluate(async () => {
    const client = window.hearth.client();
    return (await client.getProfileInfo(client.getUserId())).avatar_url;
  });
  assert.match(avatarUrl ?? "", /^mxc:\/\//, "the profile's avatar_url is set");

  // A new display name, shown in the sidebar.
  await settings.getByLabel("Display name").fill("Dana S.");
  await settings.getByRole("button", { name: "Save name" }).click();
  await waitUntil("the new name on the profile", async () => (await page.evaluate(async () => {
    const client = window.hearth.client();
    return (await client.getProfileInfo(client.getUserId())).displayname;
  })) === "Dana S.", { timeoutMs: WAIT_MS });

  // This device, renamed.
  const device = settings.locator(".devices li", { hasText: "(this device)" });
  await visible(device, "this device in the list");
  page.once("dialog", (dialog) => void dialog.accept("Dana's laptop"));
  await device.getByRole("button", { name: /^Rename/ }).click();
  await visible(settings.locator(".devices li", { hasText: "Dana's laptop" }), "the renamed device");

  // The other device, signed out from here with the password: gone from the list, and its
  // access token refused.
  await settings.getByRole("button", { name: "Close" }).click();
  await page.getByRole("button", { name: "Settings" }).click();
  const phone = settings.locator(".devices li", { hasText: "Dana's phone" });
  await visible(phone, "the other device in the list");
  page.once("dialog", (dialog) => void dialog.accept(PASSWORD));
  await phone.getByRole("button", { name: "Sign out Dana's phone" }).click();
  await waitUntil("the other device to leave the list", async () => (await phone.count()) === 0, { timeoutMs: WAIT_MS });
  const whoami = await page.evaluate(async (token) => {
    const response = await window.hearth.fetch("/_matrix/client/v3/account/whoami", { headers: { Authorization: `Bearer ${token}` } });
    return { status: response.status, errcode: (await response.json()).errcode };
  }, other.access_token);
  assert.deepEqual(whoami, { status: 401, errcode: "M_UNKNOWN_TOKEN" });
  await visible(device, "this device, still in the list");

  // Notifications: allowed already, so the settings say so; the relay section is there.
  await visible(settings.getByText("You are notified of new messages"), "the notifications state");
  await visible(settings.getByLabel(/Relays to federate through/), "the relay setting");
  await settings.getByRole("button", { name: "Close" }).click();
  await visible(page.locator(".me .name", { hasText: "Dana S." }), "the new name in the sidebar");
});
