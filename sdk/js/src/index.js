// @herald/client: Herald's WebSocket client, for browsers and Node 20+ (pass a WebSocket
// implementation there). No runtime dependencies.
//
// What it does for the application: connects with the token as a subprotocol (never in the
// URL), reconnects with exponential backoff and jitter (asking for a fresh token each time when
// given a function), acknowledges every notification it hands over (so the server drops it from
// the user's offline inbox), hands each message id over once however often it arrives (a replay
// after a reconnect may repeat what came live), marks replayed messages as offline, reports the
// overflow notice, sends read and confirm receipts, and tells of reads and confirms made on the
// user's other devices. `subscribeWebPush()` subscribes the browser to Web Push and registers the
// subscription with Herald, so the user's notices on the mobile channel reach it while no page is
// open.

/** The subprotocol the gateway accepts beside the token. */
export const BEARER_SUBPROTOCOL = "bearer";

/** The prefix the server puts before the content of a replayed (offline) message. */
export const OFFLINE_PREFIX = "[离线消息] ";

/** Herald's close codes, and what each means for a client. */
export const CLOSE_CODES = Object.freeze({
  1000: { name: "normal", retry: false, message: "the connection was closed" },
  1001: { name: "going_away", retry: true, message: "the server is restarting; reconnecting" },
  1003: { name: "unsupported_data", retry: false, message: "the client sent a binary frame; Herald takes text frames only" },
  1007: { name: "invalid_payload", retry: false, message: "the client sent text that is not valid UTF-8" },
  1008: { name: "token_expired", retry: true, message: "the token expired; reconnecting with a fresh one" },
  1009: { name: "message_too_big", retry: false, message: "the client sent a frame over the server's limit" },
  1011: { name: "internal_error", retry: true, message: "the server failed; reconnecting" },
  4000: { name: "heartbeat_timeout", retry: true, message: "the connection went silent; reconnecting" },
  4001: { name: "slow_client", retry: true, message: "the client read too slowly and its buffer filled; reconnecting" },
  4002: { name: "protocol_error", retry: false, message: "the client broke the protocol" },
  4003: { name: "too_many_connections", retry: false, message: "this user has too many connections open" },
});

/** What a close code means: `{ code, name, retry, message }`. */
export function describeClose(code, reason = "") {
  const known = CLOSE_CODES[code];
  if (known) return { code, reason, ...known };
  // 1005/1006: no close frame (the network dropped): worth another try.
  return { code, reason, name: "abnormal", retry: true, message: `the connection closed (${code}${reason ? `: ${reason}` : ""}); reconnecting` };
}

const DEFAULTS = Object.freeze({
  minDelayMs: 500,
  maxDelayMs: 30_000,
  jitter: 0.3,
  dedupWindow: 2000,
  autoAck: true,
});

/**
 * A connection to Herald's gateway that survives disconnections.
 *
 * Events (`on(name, listener)`): `notification` (a notice, once per message id),
 * `overflow` ({ dropped }), `sync` ({ event, messageId }), `open`, `close` (a described close),
 * `reconnecting` ({ attempt, delayMs }), `error` (a server error frame or a transport failure).
 */
export class HeraldClient {
  /**
   * @param {object} options
   * @param {string} options.url the gateway's `ws://` or `wss://` URL, e.g. `wss://herald.example/ws`
   * @param {string | (() => string | Promise<string>)} options.token a token, or a function
   *   called before each connection for a fresh one
   * @param {typeof WebSocket} [options.WebSocket] the implementation (Node: `ws`'s); the
   *   browser's by default
   */
  constructor(options) {
    if (!options || typeof options.url !== "string") throw new TypeError("HeraldClient: options.url is required");
    if (!options.token) throw new TypeError("HeraldClient: options.token is required");
    this.url = options.url;
    this.token = options.token;
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.WebSocket !== "function") {
      throw new TypeError("HeraldClient: no WebSocket implementation; pass options.WebSocket (Node: the ws package)");
    }
    this.options = { ...DEFAULTS, ...options };
    this.listeners = new Map();
    this.seen = new Set();
    this.seenOrder = [];
    this.socket = null;
    this.attempt = 0;
    this.stopped = true;
    this.timer = null;
  }

  /** Listens to `event`; returns a function that stops listening. */
  on(event, listener) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(listener);
    return () => this.listeners.get(event)?.delete(listener);
  }

  /** Connects (and keeps reconnecting until `close()`). */
  connect() {
    this.stopped = false;
    this.#open();
    return this;
  }

  /** Closes for good. */
  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.socket && this.socket.readyState <= 1) this.socket.close(1000, "closed by the client");
  }

  /** Whether a connection is open now. */
  get connected() {
    return this.socket !== null && this.socket.readyState === 1;
  }

  /** Tells Herald the user read `messageId` (their other devices get a `sync`). */
  read(messageId) {
    return this.#send({ type: "read", message_id: messageId });
  }

  /** Tells Herald the user confirmed `messageId` (for notices with `needConfirm`). */
  confirm(messageId) {
    return this.#send({ type: "confirm", message_id: messageId });
  }

  /** Acknowledges `messageId` (done by itself unless `autoAck: false`). */
  ack(messageId) {
    return this.#send({ type: "ack", message_id: messageId });
  }

  #emit(event, value) {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        listener(value);
      } catch (err) {
        if (event !== "error") this.#emit("error", err);
      }
    }
  }

  #send(frame) {
    if (!this.connected) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  async #open() {
    let token;
    try {
      token = typeof this.token === "function" ? await this.token() : this.token;
    } catch (err) {
      this.#emit("error", new Error(`the token callback failed: ${err?.message ?? err}`));
      return this.#retry();
    }
    if (this.stopped) return;
    let socket;
    try {
      socket = new this.WebSocket(this.url, [BEARER_SUBPROTOCOL, token]);
    } catch (err) {
      this.#emit("error", err);
      return this.#retry();
    }
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.#emit("open", undefined);
    };
    socket.onmessage = (event) => this.#receive(event.data);
    socket.onerror = (event) => this.#emit("error", event?.error ?? new Error("WebSocket error"));
    socket.onclose = (event) => {
      if (this.socket === socket) this.socket = null;
      const described = describeClose(event.code, event.reason);
      this.#emit("close", described);
      if (!this.stopped && described.retry) this.#retry();
      else this.stopped = true;
    };
  }

  #retry() {
    if (this.stopped) return;
    this.attempt += 1;
    const { minDelayMs, maxDelayMs, jitter } = this.options;
    const base = Math.min(maxDelayMs, minDelayMs * 2 ** (this.attempt - 1));
    const delayMs = Math.round(base * (1 - jitter + Math.random() * 2 * jitter));
    this.#emit("reconnecting", { attempt: this.attempt, delayMs });
    this.timer = setTimeout(() => this.#open(), delayMs);
  }

  #receive(raw) {
    let frame;
    try {
      frame = JSON.parse(typeof raw === "string" ? raw : raw.toString());
    } catch {
      return this.#emit("error", new Error("the server sent a frame that is not JSON"));
    }
    switch (frame.type) {
      case "pong":
        return undefined;
      case "error":
        return this.#emit("error", Object.assign(new Error(frame.content || "server error"), { code: frame.data?.code }));
      case "offline_overflow":
        return this.#emit("overflow", { dropped: frame.data?.dropped ?? 0, message: frame.content });
      case "sync":
        return this.#emit("sync", { event: frame.data?.event, messageId: frame.data?.message_id, time: frame.time });
      default:
        if (typeof frame.message_id === "string") return this.#notification(frame);
        return undefined;
    }
  }

  #notification(frame) {
    const id = frame.message_id;
    if (this.options.autoAck) this.ack(id);
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.seenOrder.push(id);
    if (this.seenOrder.length > this.options.dedupWindow) this.seen.delete(this.seenOrder.shift());
    const data = frame.data ?? {};
    const offline = typeof frame.content === "string" && frame.content.startsWith(OFFLINE_PREFIX);
    this.#emit("notification", {
      messageId: id,
      type: frame.type,
      content: offline ? frame.content.slice(OFFLINE_PREFIX.length) : frame.content,
      data,
      priority: data.priority,
      needConfirm: data.need_confirm === true,
      time: frame.time,
      offline,
      originalPushTime: data.original_push_time,
    });
  }
}

/** The application server key (base64url, as Herald's worker logs it) as the bytes the browser takes. */
export function applicationServerKeyBytes(key) {
  if (typeof key !== "string" || key.length === 0) throw new TypeError("applicationServerKey must be a base64url string");
  const base64 = key.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(key.length / 4) * 4, "=");
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  if (bytes.length !== 65 || bytes[0] !== 4) throw new TypeError("applicationServerKey must be an uncompressed P-256 public key (65 bytes)");
  return bytes;
}

async function postJson(apiUrl, path, token, body, fetchImpl) {
  const bearer = typeof token === "function" ? await token() : token;
  const answer = await fetchImpl(`${apiUrl.replace(/\/+$/, "")}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${bearer}` },
    body: JSON.stringify(body),
  });
  const json = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    throw Object.assign(new Error(json.message || `Herald answered HTTP ${answer.status}`), { code: json.data?.code, status: answer.status });
  }
  return json.data;
}

/**
 * Subscribes this browser to Web Push and registers the subscription with Herald as a `web`
 * device of the token's user: notices sent with the `mobile` channel then reach the service
 * worker's `push` event as `{ title, body, tag, data: { messageId, messageType, ... } }`, even
 * with no page open. Calling it again keeps the browser's existing subscription and registers it
 * again (harmless: one endpoint is one device).
 *
 * @param {object} options
 * @param {ServiceWorkerRegistration} options.registration the page's service worker
 * @param {string} options.applicationServerKey Herald's VAPID public key, base64url
 * @param {string} options.apiUrl Herald's HTTP API, e.g. `https://herald.example`
 * @param {string | (() => string | Promise<string>)} options.token the user's token
 * @param {typeof fetch} [options.fetch] the fetch implementation; the global one by default
 * @returns {Promise<{ subscription: PushSubscription, device: object }>} the subscription and
 *   Herald's device (`pushId` is `web:` and the endpoint's digest)
 */
export async function subscribeWebPush(options) {
  const { registration, applicationServerKey, apiUrl, token } = options ?? {};
  if (!registration?.pushManager) throw new TypeError("subscribeWebPush: options.registration must be a ServiceWorkerRegistration");
  if (typeof apiUrl !== "string") throw new TypeError("subscribeWebPush: options.apiUrl is required");
  if (!token) throw new TypeError("subscribeWebPush: options.token is required");
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const key = applicationServerKeyBytes(applicationServerKey);
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription.options?.applicationServerKey, key)) {
    // Made for another key (Herald's was rotated): the push service would refuse it.
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  const pushId = JSON.stringify(subscription.toJSON ? subscription.toJSON() : subscription);
  const device = await postJson(apiUrl, "/api/message_push", token, { pushId, deviceType: "web" }, fetchImpl);
  return { subscription, device };
}

/**
 * Stops Web Push to this browser: logs its device out of Herald, then unsubscribes.
 * Resolves to whether there was a subscription.
 */
export async function unsubscribeWebPush(options) {
  const { registration, apiUrl, token } = options ?? {};
  if (!registration?.pushManager) throw new TypeError("unsubscribeWebPush: options.registration must be a ServiceWorkerRegistration");
  const subscription = await registration.pushManager.getSubscription();
  if (!subscription) return false;
  const pushId = JSON.stringify(subscription.toJSON ? subscription.toJSON() : subscription);
  await postJson(apiUrl, "/api/message_push/logout", token, { pushId }, options.fetch ?? globalThis.fetch);
  await subscription.unsubscribe();
  return true;
}

function sameKey(buffer, bytes) {
  if (!buffer) return true;
  const have = new Uint8Array(buffer);
  return have.length === bytes.length && have.every((b, i) => b === bytes[i]);
}
