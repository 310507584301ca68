// The inbox demo's service worker: shows the notices Herald pushes to this browser over Web Push
// (subscribed through the SDK's subscribeWebPush) while no page of the inbox is open, and opens
// the inbox when one is clicked. The payload is Herald's: { title, body, tag, data }.

self.addEventListener("push", (event) => {
  let push = {};
  try {
    push = event.data ? event.data.json() : {};
  } catch {
    push = { body: event.data?.text() ?? "" };
  }
  const title = push.title || "Herald";
  // `tag` is the message id: a notice pushed twice replaces itself.
  const options = { body: push.body ?? "", tag: push.tag, data: push.data ?? {} };
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const open = windows.find((w) => new URL(w.url).pathname.startsWith("/console/inbox/"));
      return open ? open.focus() : self.clients.openWindow("/console/inbox/");
    }),
  );
});
