// The console and the inbox demo in a real browser (Debian's Chromium through playwright-core),
// against the real all-in-one binary: an admin signs in and sends a custom notice asking for
// confirmation to two users whose inbox pages are open in two other browser contexts; both see
// it live; one reads and confirms it; the admin's record page shows delivered 2, read 1,
// confirmed 1 without a reload; a notice whose content is markup shows as text; a content over
// 500 characters gets the API's error next to the field. Screenshots of each page go to
// $HERALD_SCREENSHOTS (default: console-screenshots in the cargo target directory).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { startHerald } from "../../../../sdk/js/test/herald.js";

const XSS = "<img src=x onerror=alert(1)>";
const shots =
  process.env.HERALD_SCREENSHOTS ??
  join(process.env.CARGO_TARGET_DIR ?? resolve(import.meta.dirname, "../../../../target"), "console-screenshots");
const executablePath = process.env.HERALD_CHROMIUM ?? "/usr/bin/chromium";

let herald;
let browser;
before(async () => {
  mkdirSync(shots, { recursive: true });
  herald = await startHerald();
  browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
});
after(async () => {
  await browser?.close();
  await herald?.stop();
});

/** A page in a context of its own, failing the test on any script error or dialog. */
async function page() {
  const context = await browser.newContext();
  const p = await context.newPage();
  p.problems = [];
  p.on("pageerror", (err) => p.problems.push(`page error: ${err.message}`));
  p.on("dialog", async (dialog) => {
    p.problems.push(`a dialog opened: ${dialog.message()}`);
    await dialog.dismiss();
  });
  p.on("console", (message) => {
    // The browser reports every 4xx answer as a failed load: the refusals the test provokes.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      p.problems.push(`console: ${message.text()}`);
    }
  });
  return p;
}

async function openInbox(sub) {
  const p = await page();
  await p.goto(`${herald.api}/console/inbox/`);
  await p.fill("#token", herald.token(sub));
  await p.click("#sign-in button[type=submit]");
  await p.waitForFunction(() => document.getElementById("connection").textContent === "live");
  return p;
}

test("an admin's notice reaches two inboxes live, and its record follows their receipts", async () => {
  const [alice, bob] = [await openInbox(201), await openInbox(202)];
  const admin = await page();
  await admin.goto(`${herald.api}/console/`);
  await admin.screenshot({ path: join(shots, "sign-in.png") });
  await admin.fill("#token", herald.token(1, "admin"));
  await admin.click("#sign-in button[type=submit]");
  await admin.waitForSelector("#send-form");
  assert.equal(new URL(admin.url()).search, "", "the token is not in the URL");

  // 501 characters: the API's refusal, next to the field.
  await admin.fill("#content", "x".repeat(501));
  assert.equal(await admin.textContent("#content-count"), "501 / 500");
  await admin.click("#send");
  await admin.waitForFunction(() => document.getElementById("content-error").textContent.length > 0);
  assert.match(await admin.textContent("#content-error"), /content is 501 characters long; the limit is 500/);
  await admin.screenshot({ path: join(shots, "send-refused.png") });

  // The notice: custom to both, asking for confirmation, content that is markup.
  await admin.fill("#content", XSS);
  await admin.selectOption("#target", "custom");
  await admin.fill("#user_ids", "201, 202");
  await admin.check("#need_confirm");
  await admin.click("#send");
  await admin.waitForSelector("#sent-id");
  const messageId = (await admin.textContent("#sent-id")).trim();
  await admin.screenshot({ path: join(shots, "send-accepted.png") });

  // Both inboxes show it live, as text.
  for (const inbox of [alice, bob]) {
    await inbox.waitForSelector(`li[data-message-id="${messageId}"]`);
    assert.equal(await inbox.textContent(`li[data-message-id="${messageId}"] .content`), XSS);
    assert.equal(await inbox.locator(`li[data-message-id="${messageId}"] img`).count(), 0, "no element made from the content");
    assert.equal(await inbox.textContent("#unread"), "1");
  }
  await alice.screenshot({ path: join(shots, "inbox.png") });

  // The admin watches the record while Alice reads and confirms.
  await admin.click("#sent-id");
  await admin.waitForSelector("#record-content");
  assert.equal(await admin.textContent("#record-content"), XSS);
  await admin.waitForFunction(() => document.getElementById("count-delivered")?.textContent === "2");
  await alice.click(`li[data-message-id="${messageId}"] .mark-read`);
  assert.equal(await alice.textContent("#unread"), "0");
  await alice.click(`li[data-message-id="${messageId}"] .confirm`);
  await alice.click("#confirm-yes");
  await alice.waitForSelector(`li[data-message-id="${messageId}"]:not(:has(.confirm))`);
  await admin.waitForFunction(
    () =>
      document.getElementById("count-read")?.textContent === "1" &&
      document.getElementById("count-confirmed")?.textContent === "1",
    null,
    { timeout: 15_000 },
  );
  assert.equal(await admin.textContent("#count-delivered"), "2");
  await admin.screenshot({ path: join(shots, "record.png") });

  // The other pages render (and show what they are given as text).
  for (const [hash, selector, name] of [["#/records", "table", "records"], ["#/users", "table", "users"], ["#/devices", "table", "devices"]]) {
    await admin.goto(`${herald.api}/console/${hash}`);
    await admin.waitForSelector(selector);
    await admin.screenshot({ path: join(shots, `${name}.png`) });
    if (name === "records") {
      const cells = await admin.locator("td.content").allTextContents();
      assert.ok(cells.includes(XSS), `the records list shows the content as text: ${JSON.stringify(cells)}`);
      assert.equal(await admin.locator("td.content img").count(), 0);
    }
  }

  // Devices, filtered by user; a filter the API refuses is shown in words.
  const phone = { pushId: "00000000000000000000000000000c01", deviceType: "android" };
  const registered = await fetch(`${herald.api}/api/message_push`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${herald.token(201)}` },
    body: JSON.stringify(phone),
  });
  assert.equal(registered.status, 200);
  await admin.goto(`${herald.api}/console/#/devices?user_id=201`);
  await admin.waitForSelector(`td:text-is("${phone.pushId}")`);
  assert.equal(await admin.inputValue("#filter-user"), "201");
  await admin.goto(`${herald.api}/console/#/devices?user_id=abc`);
  await admin.waitForSelector("main .error");
  assert.match(await admin.textContent("main .error"), /user_id/);
  await admin.screenshot({ path: join(shots, "devices-refused.png") });

  for (const p of [admin, alice, bob]) assert.deepEqual(p.problems, []);
});

test("two tabs of one user keep the unread count in step", async () => {
  const [tab1, tab2] = [await openInbox(203), await openInbox(203)];
  const id = await herald.notice({ content: "for both tabs", target: "custom", user_ids: [203] });
  for (const tab of [tab1, tab2]) {
    await tab.waitForSelector(`li[data-message-id="${id}"]`);
    assert.equal(await tab.textContent("#unread"), "1");
  }
  await tab1.click(`li[data-message-id="${id}"] .mark-read`);
  await tab2.waitForFunction(() => document.getElementById("unread").textContent === "0");
  await tab2.screenshot({ path: join(shots, "inbox-synced.png") });
  for (const p of [tab1, tab2]) assert.deepEqual(p.problems, []);
});

test("the console's pages carry a strict Content-Security-Policy", async () => {
  for (const path of ["/console/", "/console/app.js", "/console/inbox/", "/console/sdk.js"]) {
    const answer = await fetch(`${herald.api}${path}`);
    assert.equal(answer.status, 200, path);
    const csp = answer.headers.get("content-security-policy");
    assert.match(csp, /script-src 'self'/, path);
    assert.doesNotMatch(csp, /unsafe-inline/, path);
    assert.match(csp, /frame-ancestors 'none'/, path);
  }
});
