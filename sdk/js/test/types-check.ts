// Compiled by `tsc --noEmit` (scripts/test-sdk.sh): the declared types fit the way the SDK is
// used, and misuse does not compile.
import { HeraldClient, describeClose, subscribeWebPush, type Notification, type DescribedClose, type WebPushDevice } from "../src/index.js";

const client = new HeraldClient({ url: "ws://127.0.0.1:8080/ws", token: async () => "a token", maxDelayMs: 5_000 });
const stop: () => void = client.on("notification", (n: Notification) => {
  const text: string = n.content;
  const confirmable: boolean = n.needConfirm;
  if (n.offline && n.originalPushTime) console.log(text, confirmable);
  client.read(n.messageId);
});
client.on("sync", (s) => console.log(s.event === "read" || s.event === "confirmed", s.messageId));
client.on("close", (c: DescribedClose) => console.log(c.retry, c.name));
client.connect().close();
stop();
const described: DescribedClose = describeClose(4001, "slow");
console.log(described.message);
// @ts-expect-error: an event Herald does not emit
client.on("frame", () => {});
// @ts-expect-error: a url is required
new HeraldClient({ token: "x" });

declare const registration: ServiceWorkerRegistration;
void subscribeWebPush({ registration, applicationServerKey: "BO2U", apiUrl: "https://herald.example", token: async () => "t" }).then(
  ({ subscription, device }: { subscription: PushSubscription; device: WebPushDevice }) => console.log(subscription.endpoint, device.pushId),
);
// @ts-expect-error: the application server key is required
void subscribeWebPush({ registration, apiUrl: "https://herald.example", token: "t" });
