// The end-user inbox demo, built only on the SDK (served beside it at /console/sdk.js): a bell
// with the unread count, the list, mark as read, a confirm dialog for notices that ask for one,
// and the count kept right across the user's tabs and devices through `sync` events; and Web Push
// (the SDK's subscribeWebPush with the service worker sw.js) for notices sent while it is closed.

import { HeraldClient, subscribeWebPush } from "/console/sdk.js";

const TOKEN_KEY = "herald.inbox.token";
const items = document.getElementById("items");
const unread = document.getElementById("unread");
const connection = document.getElementById("connection");
const dialog = document.getElementById("confirm-dialog");
const notices = new Map();

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else if (value !== false && value !== undefined) node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function render() {
  unread.textContent = String([...notices.values()].filter((n) => !n.read).length);
  items.replaceChildren(
    ...[...notices.values()].reverse().map((n) =>
      el(
        "li",
        { class: n.read ? "item read" : "item", "data-message-id": n.messageId },
        el("div", { class: "content", text: n.content }),
        el("small", { text: `${n.type} · ${n.time}${n.offline ? " · kept while you were away" : ""}${n.confirmed ? " · confirmed" : ""}` }),
        el(
          "div",
          { class: "actions" },
          !n.read && el("button", { type: "button", class: "secondary mark-read", text: "Mark as read", onclick: () => markRead(n) }),
          n.needConfirm && !n.confirmed && el("button", { type: "button", class: "confirm", text: "Confirm…", onclick: () => askConfirm(n) }),
        ),
      ),
    ),
  );
}

let client = null;

function markRead(n) {
  n.read = true;
  client.read(n.messageId);
  render();
}

function askConfirm(n) {
  document.getElementById("confirm-text").textContent = n.content;
  dialog.returnValue = "";
  dialog.onclose = () => {
    if (dialog.returnValue !== "confirm") return;
    n.confirmed = true;
    if (!n.read) markRead(n);
    client.confirm(n.messageId);
    render();
  };
  dialog.showModal();
}

function offerWebPush(token) {
  const form = document.getElementById("web-push");
  const status = document.getElementById("web-push-status");
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) return;
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "subscribing…";
    try {
      const registration = await navigator.serviceWorker.register("/console/inbox/sw.js");
      await navigator.serviceWorker.ready;
      const applicationServerKey = document.getElementById("vapid-key").value.trim();
      const { device } = await subscribeWebPush({ registration, applicationServerKey, apiUrl: location.origin, token });
      status.textContent = `registered as ${device.pushId}: notices sent with the mobile channel reach this browser`;
    } catch (err) {
      status.textContent = `not subscribed: ${err.message}`;
    }
  });
}

function open(token) {
  document.getElementById("sign-in").hidden = true;
  items.hidden = false;
  offerWebPush(token);
  client = new HeraldClient({ url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`, token });
  client.on("open", () => (connection.textContent = "live"));
  client.on("close", (c) => (connection.textContent = c.retry ? "reconnecting…" : c.message));
  client.on("notification", (n) => {
    notices.set(n.messageId, { ...n, read: false, confirmed: false });
    render();
  });
  client.on("sync", ({ event, messageId }) => {
    const n = notices.get(messageId);
    if (!n) return;
    n.read = true;
    if (event === "confirmed") n.confirmed = true;
    render();
  });
  client.connect();
}

document.getElementById("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = document.getElementById("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  open(token);
});
const kept = sessionStorage.getItem(TOKEN_KEY);
if (kept) open(kept);
