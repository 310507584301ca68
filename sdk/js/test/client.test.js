// The SDK against the real all-in-one binary (node --test).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { HeraldClient, describeClose, subscribeWebPush, unsubscribeWebPush, applicationServerKeyBytes } from "../src/index.js";
import { createECDH, randomBytes } from "node:crypto";
import { startHerald, until } from "./herald.js";

let herald;
before(async () => {
  herald = await startHerald();
});
after(async () => {
  await herald?.stop();
});

/** A client of user `sub`, recording what the application is handed. */
function client(sub, options = {}) {
  const got = { notifications: [], syncs: [], overflows: [], closes: [], opens: 0 };
  const c = new HeraldClient({ url: herald.ws, token: () => herald.token(sub), WebSocket, minDelayMs: 50, maxDelayMs: 200, ...options });
  c.on("notification", (n) => got.notifications.push(n));
  c.on("sync", (s) => got.syncs.push(s));
  c.on("overflow", (o) => got.overflows.push(o));
  c.on("close", (x) => got.closes.push(x));
  c.on("open", () => (got.opens += 1));
  return { c, got };
}

const custom = (users, content, extra = {}) => ({ content, target: "custom", user_ids: users, ...extra });

test("a forced disconnect and reconnect loses nothing and hands nothing over twice", async () => {
  const { c, got } = client(101);
  c.connect();
  await until("the connection", () => c.connected);
  const ids = [];
  for (let n = 0; n < 5; n += 1) ids.push(await herald.notice(custom([101], `live ${n}`)));
  await until("the live notices", () => got.notifications.length === 5);
  // The network drops: no close frame.
  c.socket.terminate();
  await until("the drop", () => got.closes.length === 1);
  for (let n = 5; n < 10; n += 1) ids.push(await herald.notice(custom([101], `while away ${n}`)));
  await until("the replay after reconnecting", () => got.notifications.length === 10);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(got.notifications.map((n) => n.messageId), ids, "each once, in order");
  assert.equal(got.closes[0].name, "abnormal");
  assert.equal(got.closes[0].retry, true);
  assert.ok(got.opens >= 2);
  const away = got.notifications.slice(5);
  assert.ok(away.every((n) => n.offline || n.content.startsWith("while away")), JSON.stringify(away));
  c.close();
});

test("replay after being offline marks the messages and strips the prefix", async () => {
  const first = await herald.notice(custom([102], "kept for you", { need_confirm: true, data: { order: "A-1" } }));
  await herald.notice(custom([102], "and this"));
  const { c, got } = client(102);
  c.connect();
  await until("the replay", () => got.notifications.length === 2);
  const [kept, second] = got.notifications;
  assert.equal(kept.messageId, first);
  assert.equal(kept.offline, true);
  assert.equal(kept.content, "kept for you");
  assert.equal(kept.needConfirm, true);
  assert.equal(kept.data.order, "A-1");
  assert.match(kept.originalPushTime, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
  assert.equal(second.content, "and this");
  c.close();
});

test("the automatic ack removes the inbox entry", async () => {
  await herald.notice(custom([103], "ack me"));
  const one = client(103);
  one.c.connect();
  await until("the replay", () => one.got.notifications.length === 1);
  await new Promise((r) => setTimeout(r, 300));
  one.c.close();
  await until("the close", () => one.got.closes.length === 1);
  // A later connection is replayed nothing: the next notice is the first thing it gets.
  const two = client(103);
  two.c.connect();
  await until("the connection", () => two.c.connected);
  const next = await herald.notice(custom([103], "next"));
  await until("the next notice", () => two.got.notifications.length >= 1);
  assert.deepEqual(two.got.notifications.map((n) => n.messageId), [next]);
  two.c.close();
});

test("a read on one device reaches the user's other connection as a sync", async () => {
  const phone = client(104);
  const laptop = client(104);
  phone.c.connect();
  laptop.c.connect();
  await until("both connections", () => phone.c.connected && laptop.c.connected);
  const id = await herald.notice(custom([104], "read me", { need_confirm: true }));
  await until("both deliveries", () => phone.got.notifications.length === 1 && laptop.got.notifications.length === 1);
  assert.equal(phone.c.read(id), true);
  await until("the sync", () => laptop.got.syncs.length === 1);
  assert.deepEqual(
    { event: laptop.got.syncs[0].event, messageId: laptop.got.syncs[0].messageId },
    { event: "read", messageId: id },
  );
  assert.equal(phone.c.confirm(id), true);
  await until("the confirm's sync", () => laptop.got.syncs.length === 2);
  assert.equal(laptop.got.syncs[1].event, "confirmed");
  phone.c.close();
  laptop.c.close();
});

test("a bad token is a clear refusal, and close codes are described", async () => {
  const got = [];
  const c = new HeraldClient({ url: herald.ws, token: "not-a-token", WebSocket, minDelayMs: 50, maxDelayMs: 100 });
  c.on("error", (e) => got.push(e));
  c.connect();
  await until("the refusal", () => got.length >= 1);
  c.close();
  assert.equal(describeClose(4003).name, "too_many_connections");
  assert.equal(describeClose(4003).retry, false);
  assert.equal(describeClose(1008).retry, true);
  assert.match(describeClose(4001).message, /slow/);
  assert.throws(() => new HeraldClient({ token: "x", WebSocket }), /url/);
});

test("the README's example runs as written", async () => {
  const { readFile } = await import("node:fs/promises");
  const { spawn } = await import("node:child_process");
  const example = await readFile(new URL("../examples/hello.mjs", import.meta.url), "utf8");
  const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
  assert.ok(readme.includes(example.trim()), "README.md shows examples/hello.mjs as it is");
  await herald.notice(custom([105], "waiting for you"));
  const run = spawn(process.execPath, [new URL("../examples/hello.mjs", import.meta.url).pathname], {
    env: { ...process.env, HERALD_WS: herald.ws, HERALD_TOKEN: herald.token(105) },
  });
  let out = "";
  run.stdout.on("data", (chunk) => (out += chunk));
  try {
    await until("the offline notice", () => out.includes("(offline) waiting for you"));
    await herald.notice(custom([105], "hello there"));
    await until("the live notice", () => out.includes("(live) hello there"));
  } finally {
    run.kill();
  }
});

/** A browser's push manager, as far as the SDK uses it: subscriptions with real P-256 keys. */
function fakePushManager() {
  const b64url = (bytes) => Buffer.from(bytes).toString("base64url");
  const manager = {
    current: null,
    subscribed: 0,
    async getSubscription() {
      return manager.current;
    },
    async subscribe({ userVisibleOnly, applicationServerKey }) {
      assert.equal(userVisibleOnly, true);
      manager.subscribed += 1;
      const keys = { p256dh: b64url(createECDH("prime256v1").generateKeys()), auth: b64url(randomBytes(16)) };
      const endpoint = `https://fcm.googleapis.com/fcm/send/sdk-test-${manager.subscribed}-${"x".repeat(300)}`;
      manager.current = {
        endpoint,
        options: { applicationServerKey: applicationServerKey.buffer },
        toJSON: () => ({ endpoint, expirationTime: null, keys }),
        unsubscribe: async () => {
          manager.current = null;
          return true;
        },
      };
      return manager.current;
    },
  };
  return manager;
}

test("subscribeWebPush registers the browser's subscription as a web device, unsubscribe logs it out", async () => {
  const pushManager = fakePushManager();
  const registration = { pushManager };
  const serverKey = createECDH("prime256v1").generateKeys().toString("base64url");
  const options = { registration, applicationServerKey: serverKey, apiUrl: herald.api, token: () => herald.token(106) };
  const { subscription, device } = await subscribeWebPush(options);
  assert.match(device.pushId, /^web:[A-Za-z0-9_-]{43}$/);
  assert.equal(device.deviceType, "web");
  assert.equal(device.status, 1);
  assert.equal(device.registered, "created");
  assert.ok(!JSON.stringify(device).includes(subscription.toJSON().keys.auth), "the keys are never shown");
  // Again: the same subscription, the same device.
  const again = await subscribeWebPush(options);
  assert.equal(pushManager.subscribed, 1);
  assert.equal(again.device.pushId, device.pushId);
  assert.equal(again.device.registered, "renewed");
  const admin = herald.token(1, "admin");
  const list = async () => {
    const answer = await fetch(`${herald.api}/api/message_push/manage?user_id=106`, { headers: { authorization: `Bearer ${admin}` } });
    return (await answer.json()).data.items;
  };
  const devices = await list();
  assert.equal(devices.length, 1);
  assert.deepEqual([devices[0].push_id, devices[0].device_type, devices[0].status], [device.pushId, "web", 1]);
  // Logged out by its subscription, then unsubscribed.
  assert.equal(await unsubscribeWebPush(options), true);
  assert.equal(pushManager.current, null);
  assert.equal((await list())[0].status, 0);
  assert.equal(await unsubscribeWebPush(options), false);
  // A bad key is refused before the browser is asked.
  await assert.rejects(subscribeWebPush({ ...options, applicationServerKey: "AAAA" }), /65 bytes/);
  assert.equal(applicationServerKeyBytes(serverKey).length, 65);
  // Herald's refusal reaches the caller with its code.
  const refused = await subscribeWebPush({ ...options, token: "not-a-token" }).catch((err) => err);
  assert.equal(refused.status, 401);
});
