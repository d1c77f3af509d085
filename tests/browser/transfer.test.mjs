// Moving a whole Hearth to another browser profile: A onboards, chats in a plain and an
// encrypted room, and exports from the settings (an encrypted .hearth file); a fresh profile B
// imports it from the first-run screen. A wrong passphrase is refused and changes nothing; the
// right one gives B the same server name, user ID and messages (the encrypted ones decrypted),
// and B can carry on sending.

import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { readFile } from "node:fs/promises";
import zlib from "node:zlib";
import { after, before, test } from "node:test";
import { clientReady, openBrowser, ready, serveApp } from "../lib/browser.mjs";
import { waitUntil, withTimeout } from "../lib/wait.mjs";
import { visible as visibleWithin } from "../lib/ui.mjs";

const PASSPHRASE = "correct horse battery staple";
/** Deriving the key (PBKDF2, 600,000 iterations) and writing the databases take a few seconds. */
const TRANSFER_MS = 60_000;
const UI_MS = 20_000;
const visible = (locator, what, timeoutMs = UI_MS) => visibleWithin(locator, what, timeoutMs);

let app;
const browsers = [];

before(async () => {
  app = await serveApp();
});

after(async () => {
  await Promise.allSettled(browsers.map((browser) => browser.close()));
  app?.stop();
});

async function newProfile() {
  const browser = await openBrowser();
  browsers.push(browser);
  const page = await browser.context.newPage();
  page.on("pageerror", (error) => browser.logs.push(`[pageerror] ${error.message}`));
  page.on("console", (message) => browser.logs.push(`[${message.type()}] ${message.text()}`));
  await page.goto(app.url);
  await ready(page);
  return { browser, page };
}


const hearthDatabases = (page) =>
  page.evaluate(async () =>
    (await indexedDB.databases())
      .map((db) => `${db.name}@${db.version}`)
      .filter((name) => name.startsWith("hearth"))
      .sort(),
  );

const messageTexts = (page) => page.locator("li.event.message").allTextContents();

/** One object store's records as hex key → hex value (binary keys and values, as the
 *  homeserver's database has them). */
const storeHex = (page, database, store) =>
  page.evaluate(
    async ({ database, store }) => {
      const hex = (buffer) => [...new Uint8Array(buffer)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
      const db = await new Promise((resolve, reject) => {
        const request = indexedDB.open(database);
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      const tx = db.transaction(store, "readonly");
      const keys = tx.objectStore(store).getAllKeys();
      const values = tx.objectStore(store).getAll();
      await new Promise((resolve, reject) => {
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
      });
      db.close();
      return Object.fromEntries(keys.result.map((key, i) => [hex(key), hex(values.result[i])]));
    },
    { database, store },
  );

/** Opens a .hearth file here, independently of the app's code, from the format in web/README.md:
 *  "HEARTHEX", version, PBKDF2 iterations, salt, IV; AES-256-GCM over the gzip of the value. */
async function openExport(file, passphrase) {
  const header = file.subarray(0, 41);
  const material = await webcrypto.subtle.importKey("raw", Buffer.from(passphrase), "PBKDF2", false, ["deriveKey"]);
  const key = await webcrypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt: file.subarray(13, 29), iterations: file.readUInt32BE(9) },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["decrypt"],
  );
  const plain = await webcrypto.subtle.decrypt({ name: "AES-GCM", iv: file.subarray(29, 41), additionalData: header }, key, file.subarray(41));
  return decodeValue(zlib.gunzipSync(Buffer.from(plain)));
}

/** The export's value encoding (tag byte, LEB128 lengths, float64 BE); binary data as Buffers. */
function decodeValue(bytes) {
  let at = 0;
  const varint = () => {
    let value = 0;
    for (let scale = 1; ; scale *= 128) {
      const byte = bytes[at++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
    }
  };
  const raw = () => {
    const length = varint();
    at += length;
    return bytes.subarray(at - length, at);
  };
  const float = () => {
    at += 8;
    return bytes.readDoubleBE(at - 8);
  };
  const read = () => {
    const tag = bytes[at++];
    switch (tag) {
      case 0: return undefined;
      case 1: return null;
      case 2: return false;
      case 3: return true;
      case 4: return float();
      case 5: return raw().toString("utf8");
      case 6: return BigInt(raw().toString("utf8"));
      case 7: return Array.from({ length: varint() }, read);
      case 8: {
        const object = {};
        for (let n = varint(); n > 0; n--) object[read()] = read();
        return object;
      }
      case 9: case 11: return Buffer.from(raw());
      case 10: at++; return Buffer.from(raw());
      case 12: return new Date(float());
      case 13: {
        const map = new Map();
        for (let n = varint(); n > 0; n--) map.set(read(), read());
        return map;
      }
      case 14: return new Set(Array.from({ length: varint() }, read));
      case 15: return undefined;
      case 16: return new RegExp(raw().toString("utf8"), raw().toString("utf8"));
      case 17: return raw().toString("utf16le");
      default: throw new Error(`tag ${tag} at ${at - 1}`);
    }
  };
  const value = read();
  assert.equal(at, bytes.length, "the whole payload is one value");
  return value;
}

test("a Hearth moves to a fresh profile through an encrypted export", { timeout: 240_000 }, async (t) => {
  t.after(() => {
    if (process.env.HEARTH_TEST_VERBOSE === "1") for (const browser of browsers) console.log(browser.logs.join("\n"));
  });

  // Profile A: onboard through the form, then chat (through the client, for speed).
  const a = await newProfile();
  await visible(a.page.getByLabel("Your name"), "A's first-run form");
  await a.page.getByLabel("Your name").fill("Ada");
  await a.page.getByRole("button", { name: "Start chatting" }).click();
  await clientReady(a.page);
  const userId = await a.page.evaluate(() => window.hearth.client().getUserId());
  const serverName = await a.page.evaluate(() => window.hearth.serverName());
  assert.ok(userId.endsWith(`:${serverName}`), `${userId} on ${serverName}`);

  const plain = ["plain one", "plain two", "plain three"];
  const secret = ["secret one", "secret two", "secret three"];
  const rooms = await withTimeout(
    "A's rooms and messages",
    a.page.evaluate(
      async ({ plain, secret }) => {
        const client = window.hearth.client();
        const { room_id: plainRoom } = await client.createRoom({ name: "Plain room" });
        for (const body of plain) await client.sendTextMessage(plainRoom, body);
        const { room_id: secretRoom } = await client.createRoom({
          name: "Secret room",
          initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
        });
        // Send only once the client knows the room is encrypted (else it would send in the clear).
        const deadline = Date.now() + 15_000;
        while (!client.getRoom(secretRoom)?.hasEncryptionStateEvent()) {
          if (Date.now() > deadline) throw new Error("the encrypted room never synced");
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        for (const body of secret) await client.sendTextMessage(secretRoom, body);
        return { plainRoom, secretRoom };
      },
      { plain, secret },
    ),
    TRANSFER_MS,
  );
  // The server holds the secret room's messages encrypted only.
  const stored = await a.page.evaluate(async (roomId) => {
    const client = window.hearth.client();
    const response = await client.createMessagesRequest(roomId, null, 50, "b");
    return response.chunk.filter((event) => event.state_key === undefined).map((event) => event.type);
  }, rooms.secretRoom);
  assert.deepEqual(stored, ["m.room.encrypted", "m.room.encrypted", "m.room.encrypted"]);
  const databasesA = await hearthDatabases(a.page);
  assert.ok(
    databasesA.some((name) => name.startsWith("hearth-crypto-")),
    `A has a crypto store: ${databasesA}`,
  );

  // Export from the settings: the passphrase twice, the warning shown, a .hearth download.
  await a.page.getByRole("button", { name: "Settings", exact: true }).click();
  await visible(a.page.getByText("if you lose the passphrase, the identity in the file is lost"), "the export's warning");
  await a.page.getByLabel("Export passphrase").fill(PASSPHRASE);
  await a.page.getByLabel("Repeat the passphrase").fill(PASSPHRASE);
  const started = Date.now();
  const [download] = await Promise.all([
    a.page.waitForEvent("download", { timeout: TRANSFER_MS }),
    a.page.getByRole("button", { name: "Export to a file" }).click(),
  ]);
  const exportMs = Date.now() - started;
  const fileName = download.suggestedFilename();
  assert.match(fileName, new RegExp(`^hearth-${serverName.slice(0, 8)}-\\d{4}-\\d{2}-\\d{2}\\.hearth$`));
  const file = await readFile(await download.path());
  assert.equal(file.subarray(0, 8).toString("latin1"), "HEARTHEX", "the container's magic");
  assert.equal(file[8], 1, "format version 1");
  assert.ok(file.readUInt32BE(9) >= 600_000, "PBKDF2 iterations");
  assert.ok(!file.includes(Buffer.from("plain one")), "the export is encrypted");
  assert.ok(!file.includes(Buffer.from(serverName)), "the export is encrypted");
  console.log(`export: ${file.length} bytes in ${exportMs} ms (${databasesA.join(", ")})`);

  // What is inside, read with this file's own decoder: the metadata, every database at its
  // version, the session; the homeserver's events exactly as A stores them.
  const payload = await openExport(file, PASSPHRASE);
  assert.equal(payload.format, "hearth-export");
  assert.equal(payload.version, 1);
  assert.equal(payload.userId, userId);
  assert.equal(payload.serverName, serverName);
  assert.deepEqual(payload.databases.map((db) => `${db.name}@${db.version}`).sort(), databasesA);
  assert.equal(JSON.parse(payload.localStorage["hearth-session"]).userId, userId);
  const eventsOf = (dump) => {
    const store = dump.databases.find((db) => db.name === "hearth").stores.find((entry) => entry.name === "events");
    return Object.fromEntries(store.keys.map((key, i) => [key.toString("hex"), store.values[i].toString("hex")]));
  };
  const exportedEvents = eventsOf(payload);
  assert.deepEqual(exportedEvents, await storeHex(a.page, "hearth", "events"));
  const cryptoStores = payload.databases.find((db) => db.name.startsWith("hearth-crypto-")).stores;
  const sessions = cryptoStores.filter((store) => store.name.startsWith("inbound_group_sessions")).flatMap((store) => store.values);
  assert.ok(sessions.length >= 1, `the crypto store's room keys: ${cryptoStores.map((store) => `${store.name}(${store.values.length})`)}`);

  // Profile B: a fresh browser imports from the first-run screen.
  const b = await newProfile();
  const serverNameB = await b.page.evaluate(() => window.hearth.serverName());
  assert.notEqual(serverNameB, serverName);
  await b.page.getByRole("button", { name: "Import a Hearth export" }).click();
  const fileField = b.page.getByLabel("Hearth export file");
  await visible(fileField, "the import form");
  assert.equal(await b.page.getByRole("checkbox").count(), 0, "a fresh profile asks for no confirmation");
  await fileField.setInputFiles({ name: fileName, mimeType: "application/octet-stream", buffer: file });

  // The wrong passphrase: a clear error, and nothing changed.
  const databasesBefore = await hearthDatabases(b.page);
  await b.page.getByLabel("Passphrase of the export").fill("not the passphrase");
  await b.page.getByRole("button", { name: "Import", exact: true }).click();
  await visible(b.page.getByRole("alert").filter({ hasText: "Wrong passphrase or not a Hearth export" }), "the wrong passphrase's error", TRANSFER_MS);
  assert.deepEqual(await hearthDatabases(b.page), databasesBefore);
  assert.equal(await b.page.evaluate(() => localStorage.getItem("hearth-session")), null);
  assert.equal(await b.page.evaluate(() => window.hearth.serverName()), serverNameB);
  assert.equal(await b.page.evaluate(() => window.hearth.role()), "leader", "the homeserver still serves");

  // Not a Hearth export at all: the same error.
  await fileField.setInputFiles({ name: "notes.hearth", mimeType: "text/plain", buffer: Buffer.from("hello") });
  await b.page.getByLabel("Passphrase of the export").fill(PASSPHRASE);
  await b.page.getByRole("button", { name: "Import", exact: true }).click();
  await waitUntil("the error for a file that is no export", async () => (await b.page.getByRole("alert").count()) > 0, { timeoutMs: UI_MS });
  assert.equal(await b.page.getByRole("alert").textContent(), "Wrong passphrase or not a Hearth export");

  // The right passphrase: the page reloads into A's Hearth.
  await fileField.setInputFiles({ name: fileName, mimeType: "application/octet-stream", buffer: file });
  const importStarted = Date.now();
  await Promise.all([
    b.page.waitForEvent("load", { timeout: TRANSFER_MS }),
    b.page.getByRole("button", { name: "Import", exact: true }).click(),
  ]);
  await ready(b.page);
  await clientReady(b.page);
  const importMs = Date.now() - importStarted;
  console.log(`import and reload: ${importMs} ms`);
  assert.equal(await b.page.evaluate(() => window.hearth.serverName()), serverName);
  assert.equal(await b.page.evaluate(() => window.hearth.client().getUserId()), userId);
  assert.deepEqual(await hearthDatabases(b.page), databasesA);
  const importedEvents = await storeHex(b.page, "hearth", "events");
  for (const [key, value] of Object.entries(exportedEvents)) assert.equal(importedEvents[key], value, `event ${key} at B`);

  // The messages, the encrypted ones decrypted with the imported keys.
  for (const [roomId, bodies] of [
    [rooms.plainRoom, plain],
    [rooms.secretRoom, secret],
  ]) {
    await b.page.evaluate((roomId) => (location.hash = `#/room/${encodeURIComponent(roomId)}`), roomId);
    await waitUntil(
      `the messages of ${roomId} at B`,
      async () => {
        const texts = await messageTexts(b.page);
        return bodies.every((body) => texts.some((text) => text.includes(body)));
      },
      { timeoutMs: UI_MS, describe: () => "see the timeline" },
    );
    assert.equal(await b.page.locator(".undecryptable").count(), 0, "every message decrypts");
  }

  // B carries on in the encrypted room: a new message, sent encrypted and shown.
  const composer = b.page.getByLabel("Message", { exact: true });
  await composer.fill("sent from B");
  await composer.press("Enter");
  await waitUntil("B's new message in the timeline", async () => (await messageTexts(b.page)).some((text) => text.includes("sent from B")), {
    timeoutMs: UI_MS,
  });
  const storedTypes = (page, roomId) =>
    page.evaluate(async (roomId) => {
      const response = await window.hearth.client().createMessagesRequest(roomId, null, 50, "b");
      return response.chunk.filter((event) => event.state_key === undefined).map((event) => event.type);
    }, roomId);
  await waitUntil("B's new message to be stored, encrypted", async () => (await storedTypes(b.page, rooms.secretRoom)).length === 4, {
    timeoutMs: UI_MS,
  });
  assert.deepEqual(await storedTypes(b.page, rooms.secretRoom), Array(4).fill("m.room.encrypted"));
  assert.equal(await b.page.locator(".undecryptable").count(), 0);

  // B now has an account: an import from the settings replaces it only once confirmed, and not
  // while another tab runs Hearth.
  await b.page.getByRole("button", { name: "Settings", exact: true }).click();
  const replace = b.page.getByRole("checkbox", { name: /Replace the Hearth in this browser/ });
  await visible(replace, "the confirmation to replace B's account");
  await b.page.getByLabel("Hearth export file").setInputFiles({ name: fileName, mimeType: "application/octet-stream", buffer: file });
  await b.page.getByLabel("Passphrase of the export").fill(PASSPHRASE);
  await b.page.getByRole("button", { name: "Import", exact: true }).click();
  assert.equal(await replace.evaluate((box) => box.validity.valueMissing), true, "the form wants the confirmation");
  const other = await b.browser.context.newPage();
  await other.goto(app.url);
  await ready(other);
  await replace.check();
  await b.page.getByRole("button", { name: "Import", exact: true }).click();
  await visible(b.page.getByRole("alert").filter({ hasText: "open in another tab" }), "the refusal while another tab is open", TRANSFER_MS);
  assert.equal(await b.page.evaluate(() => window.hearth.role()), "leader", "B still serves");
  await other.close();
  await Promise.all([
    b.page.waitForEvent("load", { timeout: TRANSFER_MS }),
    b.page.getByRole("button", { name: "Import", exact: true }).click(),
  ]);
  await ready(b.page);
  await clientReady(b.page);
  assert.equal(await b.page.evaluate(() => window.hearth.client().getUserId()), userId);
  assert.deepEqual(await storedTypes(b.page, rooms.secretRoom), Array(3).fill("m.room.encrypted"), "back to the exported state");
  await b.page.evaluate((roomId) => (location.hash = `#/room/${encodeURIComponent(roomId)}`), rooms.secretRoom);
  await waitUntil("the secret room's messages after the second import", async () => (await messageTexts(b.page)).some((text) => text.includes("secret three")), {
    timeoutMs: UI_MS,
  });
  assert.equal(await b.page.locator(".undecryptable").count(), 0);
});
