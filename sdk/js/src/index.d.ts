// Types of @herald/client.

export declare const BEARER_SUBPROTOCOL: "bearer";
export declare const OFFLINE_PREFIX: string;

/** What a close code means to a client. */
export interface DescribedClose {
  code: number;
  reason: string;
  /** e.g. `token_expired`, `slow_client`, `too_many_connections`, `abnormal`. */
  name: string;
  /** Whether the client reconnects by itself after it. */
  retry: boolean;
  /** For a person. */
  message: string;
}

export declare const CLOSE_CODES: Readonly<Record<number, Omit<DescribedClose, "code" | "reason">>>;
export declare function describeClose(code: number, reason?: string): DescribedClose;

/** A notice, handed over once per message id. */
export interface Notification {
  messageId: string;
  /** The notice's type, e.g. `system_notice`, `order_completed`. */
  type: string;
  /** The text (without the offline prefix for a replayed one). */
  content: string;
  /** `priority`, `need_confirm` and the sender's own fields. */
  data: Record<string, unknown>;
  /** 0 (low) to 3 (urgent). */
  priority: number;
  /** Whether the user is asked to confirm it (`confirm(messageId)`). */
  needConfirm: boolean;
  /** When Herald accepted it, `YYYY-MM-DD HH:MM:SS`. */
  time: string;
  /** Whether it was kept while the user was offline and replayed on connect. */
  offline: boolean;
  /** For a replayed one: when it was first pushed. */
  originalPushTime?: string;
}

export interface Overflow {
  /** Older notices dropped from the inbox (full or expired) before this connection. */
  dropped: number;
  message: string;
}

export interface SyncEvent {
  /** `read` or `confirmed`, on another of the user's devices. */
  event: "read" | "confirmed";
  messageId: string;
  time: string;
}

export interface HeraldError extends Error {
  /** The server's error code, for an error frame. */
  code?: string;
}

export interface HeraldClientOptions {
  /** The gateway's URL, e.g. `wss://herald.example/ws`. */
  url: string;
  /** A token, or a function called before each connection for a fresh one. */
  token: string | (() => string | Promise<string>);
  /** The WebSocket implementation (Node: the `ws` package's); the browser's by default. */
  WebSocket?: unknown;
  /** First reconnection delay (ms), doubled each time up to `maxDelayMs`. Default 500. */
  minDelayMs?: number;
  /** Default 30000. */
  maxDelayMs?: number;
  /** Random spread of each delay, as a fraction. Default 0.3. */
  jitter?: number;
  /** How many message ids are remembered for de-duplication. Default 2000. */
  dedupWindow?: number;
  /** Acknowledge each notification on receipt (removes it from the offline inbox). Default true. */
  autoAck?: boolean;
}

export interface HeraldEvents {
  notification: Notification;
  overflow: Overflow;
  sync: SyncEvent;
  open: undefined;
  close: DescribedClose;
  reconnecting: { attempt: number; delayMs: number };
  error: HeraldError;
}

export declare class HeraldClient {
  constructor(options: HeraldClientOptions);
  on<E extends keyof HeraldEvents>(event: E, listener: (value: HeraldEvents[E]) => void): () => void;
  connect(): this;
  close(): void;
  readonly connected: boolean;
  read(messageId: string): boolean;
  confirm(messageId: string): boolean;
  ack(messageId: string): boolean;
}

/** Herald's device, as registration answers it. */
export interface WebPushDevice {
  id: string;
  /** `web:` and the SHA-256 of the subscription's endpoint. */
  pushId: string;
  deviceType: "web";
  status: 0 | 1;
  registered?: "created" | "renewed" | "moved";
}

export interface WebPushOptions {
  /** The page's service worker registration (`navigator.serviceWorker.register(...)`). */
  registration: ServiceWorkerRegistration;
  /** Herald's VAPID public key, base64url (the mobile-push-worker logs it at start). */
  applicationServerKey: string;
  /** Herald's HTTP API, e.g. `https://herald.example`. */
  apiUrl: string;
  /** The user's token, or a function giving one. */
  token: string | (() => string | Promise<string>);
  /** The fetch implementation; the global one by default. */
  fetch?: typeof fetch;
}

/** The application server key as the bytes `pushManager.subscribe` takes. */
export declare function applicationServerKeyBytes(key: string): Uint8Array;
/** Subscribes the browser to Web Push and registers the subscription with Herald. */
export declare function subscribeWebPush(options: WebPushOptions): Promise<{ subscription: PushSubscription; device: WebPushDevice }>;
/** Logs the browser's device out of Herald and unsubscribes; whether there was a subscription. */
export declare function unsubscribeWebPush(options: Omit<WebPushOptions, "applicationServerKey">): Promise<boolean>;
