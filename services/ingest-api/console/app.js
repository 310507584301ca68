// Herald's admin console: a single page over the REST API, with no inline script (the page's
// Content-Security-Policy forbids it) and no HTML built from data: every value is set as text.
// The admin token lives in this tab's sessionStorage and travels only in Authorization headers.

const MAX_CONTENT = 500;
const TOKEN_KEY = "herald.console.token";
const main = document.getElementById("main");
let stopPolling = null;

/** An element with attributes and children (strings become text nodes: never parsed as HTML). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Calls the API; resolves to `data`, or throws an Error with the answer's words and field. */
async function api(path, { method = "GET", body } = {}) {
  let answer;
  try {
    answer = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${token()}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (err) {
    throw new Error(`Herald cannot be reached: ${err.message}`);
  }
  let json = null;
  try {
    json = await answer.json();
  } catch {
    // not JSON: described below
  }
  if (!answer.ok) {
    const error = new Error(json?.message || `the server answered ${answer.status} ${answer.statusText}`);
    error.field = json?.data?.field;
    error.code = json?.data?.error_code;
    error.status = answer.status;
    if (answer.status === 401) signOut("Your token was refused (expired or invalid): sign in again.");
    throw error;
  }
  return json?.data;
}

function failure(err) {
  return el("p", { class: "error", role: "alert", text: err.message });
}

function signOut(why = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  location.hash = "";
  renderSignIn(why);
}

function renderSignIn(why = "") {
  document.getElementById("nav").hidden = true;
  const input = el("input", { id: "token", type: "password", autocomplete: "off", required: true });
  const error = el("p", { class: "error", id: "sign-in-error", role: "alert", text: why });
  const form = el(
    "form",
    {
      id: "sign-in",
      onsubmit: async (event) => {
        event.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, input.value.trim());
        try {
          await api("/api/admin/users?page_size=1");
          location.hash = "#/send";
          route();
        } catch (err) {
          sessionStorage.removeItem(TOKEN_KEY);
          error.textContent = err.status === 403 ? "This token is not an admin's." : err.message;
        }
      },
    },
    el("h1", { text: "Sign in" }),
    el("p", { text: "Paste an admin token (herald token --sub 1 --role admin). It is kept in this tab only." }),
    el("label", {}, "Token ", input),
    error,
    el("button", { type: "submit", text: "Sign in" }),
  );
  main.replaceChildren(form);
}

// ---------------------------------------------------------------------------------- Send

function renderSend() {
  const fieldError = {};
  const errorFor = (name) => (fieldError[name] = el("span", { class: "field-error", id: `${name}-error`, role: "alert" }));
  const content = el("textarea", { id: "content", name: "content", required: true });
  const count = el("span", { class: "count", id: "content-count", text: `0 / ${MAX_CONTENT}` });
  content.addEventListener("input", () => {
    const chars = [...content.value].length;
    count.textContent = `${chars} / ${MAX_CONTENT}`;
    count.classList.toggle("over", chars > MAX_CONTENT);
  });
  const type = el("input", { id: "type", type: "text", value: "system_notice", pattern: "[a-z][a-z0-9]*(_[a-z0-9]+)*" });
  const target = el("select", { id: "target" }, ["all", "admin", "custom"].map((t) => el("option", { value: t, text: t })));
  const users = el("input", { id: "user_ids", type: "text", list: "directory", placeholder: "123, 456" });
  const directory = el("datalist", { id: "directory" });
  const priority = el("select", { id: "priority" }, ["low", "normal", "high", "urgent"].map((p) => el("option", { value: p, text: p, selected: p === "normal" })));
  const needConfirm = el("input", { id: "need_confirm", type: "checkbox" });
  const data = el("textarea", { id: "data", placeholder: '{"order": "A-1"}' });
  const websocket = el("input", { id: "channel-websocket", type: "checkbox", checked: true });
  const mobile = el("input", { id: "channel-mobile", type: "checkbox" });
  const answer = el("div", { id: "answer" });
  const formError = el("p", { class: "error", role: "alert" });
  api("/api/admin/users?page_size=100")
    .then((page) => directory.replaceChildren(...page.items.map((u) => el("option", { value: String(u.user_id), text: `${u.user_id} ${u.name}` }))))
    .catch(() => {});

  const form = el(
    "form",
    {
      id: "send-form",
      onsubmit: async (event) => {
        event.preventDefault();
        for (const node of Object.values(fieldError)) node.textContent = "";
        formError.textContent = "";
        answer.replaceChildren();
        const body = { content: content.value, type: type.value, target: target.value, priority: priority.value, need_confirm: needConfirm.checked };
        if (target.value === "custom") {
          body.user_ids = users.value.split(/[\s,]+/).filter(Boolean).map(Number);
        }
        if (data.value.trim()) {
          try {
            body.data = JSON.parse(data.value);
          } catch (err) {
            fieldError.data.textContent = `data is not JSON: ${err.message}`;
            return;
          }
        }
        body.channels = [websocket.checked && "websocket", mobile.checked && "mobile"].filter(Boolean);
        try {
          const sent = await api("/api/admin/system/notice", { method: "POST", body });
          answer.replaceChildren(
            el("p", { class: "answer" }, "Queued for ", sent.recipients_count, " — message id ", el("a", { href: `#/records/${sent.message_id}`, id: "sent-id", text: sent.message_id })),
          );
        } catch (err) {
          const field = err.field === "exclude_user_ids" ? "user_ids" : err.field;
          if (field && fieldError[field]) fieldError[field].textContent = err.message;
          else formError.textContent = err.message;
        }
      },
    },
    el("h1", { text: "Send a notice" }),
    el("label", {}, "Content ", count, content, errorFor("content")),
    el("label", {}, "Type ", type, errorFor("type")),
    el("label", {}, "Target ", target, errorFor("target")),
    el("label", {}, "User ids (custom) ", users, directory, errorFor("user_ids")),
    el("label", {}, "Priority ", priority, errorFor("priority")),
    el("label", {}, needConfirm, " Ask recipients to confirm"),
    el("label", {}, "Data (a JSON object) ", data, errorFor("data")),
    el("fieldset", {}, el("legend", { text: "Channels" }), el("label", {}, websocket, " WebSocket"), el("label", {}, mobile, " Mobile devices"), errorFor("channels")),
    formError,
    el("button", { type: "submit", id: "send", text: "Send" }),
    answer,
  );
  main.replaceChildren(form);
}

// ---------------------------------------------------------------------------------- Records

function table(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", { text: h })))), el("tbody", {}, rows));
}

/** Notices and deliveries per hour of the records shown, as bars (SVG built node by node). */
function chart(items) {
  const buckets = new Map();
  for (const r of items) {
    const hour = String(r.push_time).slice(0, 13);
    const b = buckets.get(hour) ?? { notices: 0, deliveries: 0 };
    b.notices += 1;
    b.deliveries += r.delivered_count;
    buckets.set(hour, b);
  }
  const hours = [...buckets.keys()].sort();
  const max = Math.max(1, ...[...buckets.values()].map((b) => Math.max(b.notices, b.deliveries)));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const width = Math.max(200, hours.length * 40);
  svg.setAttribute("viewBox", `0 0 ${width} 120`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  hours.forEach((hour, i) => {
    const b = buckets.get(hour);
    for (const [kind, offset] of [["notices", 0], ["deliveries", 14]]) {
      const rect = document.createElementNS(ns, "rect");
      const h = (b[kind] / max) * 90;
      rect.setAttribute("x", String(i * 40 + 6 + offset));
      rect.setAttribute("y", String(100 - h));
      rect.setAttribute("width", "12");
      rect.setAttribute("height", String(h));
      rect.setAttribute("class", kind);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${hour}:00 — ${b[kind]} ${kind}`;
      rect.append(title);
      svg.append(rect);
    }
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", String(i * 40 + 4));
    label.setAttribute("y", "115");
    label.setAttribute("font-size", "9");
    label.textContent = hour.slice(11, 13) + "h";
    svg.append(label);
  });
  return el("figure", {}, svg, el("figcaption", { text: "Notices (blue) and deliveries (green) per hour, for the records listed" }));
}

async function renderRecords(params = new URLSearchParams()) {
  const page = Number(params.get("page") || 1);
  const filters = { message_type: params.get("message_type") || "", status: params.get("status") || "", start_time: params.get("start_time") || "", end_time: params.get("end_time") || "" };
  const inputs = {
    message_type: el("input", { type: "text", value: filters.message_type, placeholder: "system_notice" }),
    status: el("select", {}, ["", "queued", "partial", "delivered", "failed"].map((s) => el("option", { value: s, text: s || "any", selected: s === filters.status }))),
    start_time: el("input", { type: "text", value: filters.start_time, placeholder: "2026-01-01 00:00:00" }),
    end_time: el("input", { type: "text", value: filters.end_time, placeholder: "2026-12-31 23:59:59" }),
  };
  const go = (p) => {
    const query = new URLSearchParams({ page: String(p) });
    for (const [key, input] of Object.entries(inputs)) if (input.value) query.set(key, input.value);
    location.hash = `#/records?${query}`;
  };
  const filterForm = el(
    "form",
    { class: "filters", onsubmit: (e) => (e.preventDefault(), go(1)) },
    Object.entries(inputs).map(([key, input]) => el("label", {}, key.replace("_", " "), " ", input)),
    el("button", { type: "submit", text: "Filter" }),
  );
  main.replaceChildren(el("h1", { text: "Push records" }), filterForm, el("p", { text: "Loading…" }));
  const query = new URLSearchParams({ page: String(page), page_size: "20" });
  for (const [key, value] of Object.entries(filters)) if (value) query.set(key, value);
  try {
    const data = await api(`/api/admin/push/records?${query}`);
    const s = data.stats;
    const stats = el(
      "div",
      { class: "stats" },
      [["records", s.total_records], ["succeeded", s.success_records], ["failed", s.failed_records], ["recipients", s.total_recipients], ["delivered", s.delivered_count]].map(([label, value]) =>
        el("div", { class: "stat" }, el("b", { text: String(value) }), label),
      ),
    );
    const rows = data.items.map((r) =>
      el(
        "tr",
        {},
        el("td", {}, el("a", { href: `#/records/${r.message_id}`, text: r.message_id })),
        el("td", { class: "content", text: r.content }),
        el("td", { text: r.message_type }),
        el("td", { text: r.target }),
        el("td", { text: r.status }),
        el("td", { text: `${r.delivered_count} / ${r.total_count}` }),
        el("td", { text: r.push_time }),
      ),
    );
    const pages = Math.max(1, Math.ceil(data.total / data.page_size));
    main.replaceChildren(
      el("h1", { text: "Push records" }),
      filterForm,
      stats,
      chart(data.items),
      table(["message id", "content", "type", "target", "status", "delivered", "pushed"], rows),
      el("p", {}, el("button", { class: "secondary", type: "button", disabled: page <= 1, onclick: () => go(page - 1), text: "Previous" }), ` page ${page} of ${pages} `, el("button", { class: "secondary", type: "button", disabled: page >= pages, onclick: () => go(page + 1), text: "Next" })),
    );
  } catch (err) {
    main.replaceChildren(el("h1", { text: "Push records" }), filterForm, failure(err));
  }
}

async function renderRecord(messageId) {
  const holder = el("div", {}, el("p", { text: "Loading…" }));
  main.replaceChildren(el("h1", {}, "Record ", el("code", { text: messageId })), holder);
  const draw = async () => {
    try {
      const data = await api(`/api/admin/push/records/${encodeURIComponent(messageId)}`);
      const r = data.record;
      const received = data.receive_records;
      const count = (key) => received.filter((x) => x[key]).length;
      const summary = el(
        "div",
        { class: "stats" },
        [["delivered", count("is_received"), "count-delivered"], ["read", count("is_read"), "count-read"], ["confirmed", count("is_confirmed"), "count-confirmed"], ["recipients", r.total_count, "count-recipients"]].map(([label, value, id]) =>
          el("div", { class: "stat" }, el("b", { id, text: String(value) }), label),
        ),
      );
      const rows = received.map((x) =>
        el(
          "tr",
          {},
          el("td", { text: `${x.user_id} ${x.username ?? ""}` }),
          el("td", {}, el("ul", { class: "timeline" }, el("li", { text: `sent ${x.created_at}` }), x.received_at && el("li", { text: `delivered ${x.received_at}` }), x.read_at && el("li", { text: `read ${x.read_at}` }), x.confirmed_at && el("li", { text: `confirmed ${x.confirmed_at}` }))),
          el("td", { text: [x.device_type, x.platform, x.browser].filter(Boolean).join(" · ") }),
          el("td", { text: x.push_channel }),
          el("td", { text: x.client_ip }),
        ),
      );
      holder.replaceChildren(
        el("p", { class: "content", id: "record-content", text: r.content }),
        el("p", { text: `${r.message_type} to ${r.target} · ${r.status} · pushed ${r.push_time} by ${r.sender_name}` }),
        summary,
        table(["recipient", "timeline", "device", "channel", "IP"], rows),
      );
    } catch (err) {
      holder.replaceChildren(failure(err));
    }
  };
  await draw();
  // Live while the page is open: receipts arrive as the recipients act.
  const timer = setInterval(draw, 1000);
  stopPolling = () => clearInterval(timer);
}

// ---------------------------------------------------------------------------------- Users

async function renderUsers() {
  main.replaceChildren(el("h1", { text: "Users" }), el("p", { text: "Loading…" }));
  try {
    const [users, online] = await Promise.all([api("/api/admin/users?page_size=100"), api("/api/admin/users/online?page_size=100")]);
    const connections = new Map(online.items.map((o) => [o.user_id, o]));
    const rows = users.items.map((u) => {
      const live = connections.get(u.user_id);
      return el(
        "tr",
        {},
        el("td", { text: String(u.user_id) }),
        el("td", { text: u.name }),
        el("td", { text: u.role }),
        el("td", { text: u.tenant_id ?? "" }),
        el("td", { text: live ? `online: ${live.connections} connection(s) on ${(live.replicas ?? []).join(", ")}` : "offline" }),
        el("td", { text: u.last_seen_at ?? "" }),
      );
    });
    main.replaceChildren(el("h1", { text: `Users (${users.total}, ${online.total} online)` }), table(["id", "name", "role", "tenant", "now", "last seen"], rows));
  } catch (err) {
    main.replaceChildren(el("h1", { text: "Users" }), failure(err));
  }
}

// ---------------------------------------------------------------------------------- Devices

async function renderDevices(params = new URLSearchParams()) {
  const status = el("p", { role: "status" });
  // Filters, kept in the address (#/devices?tenant_id=...): devices by tenant, user, status;
  // logs by time and status.
  const fields = [
    ["tenant_id", "tenant", el("input", { type: "text", id: "filter-tenant" })],
    ["user_id", "user", el("input", { type: "text", id: "filter-user" })],
    ["status", "device status", el("select", { id: "filter-status" }, [["", "any"], ["1", "active"], ["0", "inactive"]].map(([v, t]) => el("option", { value: v, text: t })))],
    ["log_status", "log status", el("select", { id: "filter-log-status" }, ["", "sent", "failed", "dead"].map((v) => el("option", { value: v, text: v || "any" })))],
    ["start_time", "from", el("input", { type: "text", id: "filter-from", placeholder: "2026-01-01 00:00:00" })],
    ["end_time", "to", el("input", { type: "text", id: "filter-to", placeholder: "2026-12-31 23:59:59" })],
  ];
  for (const [key, , input] of fields) input.value = params.get(key) ?? "";
  const filterForm = el(
    "form",
    {
      class: "filters",
      onsubmit: (e) => {
        e.preventDefault();
        const query = new URLSearchParams();
        for (const [key, , input] of fields) if (input.value) query.set(key, input.value);
        location.hash = `#/devices?${query}`;
      },
    },
    fields.map(([, label, input]) => el("label", {}, label, " ", input)),
    el("button", { type: "submit", text: "Filter" }),
  );
  const deviceQuery = new URLSearchParams({ page_size: "50" });
  for (const key of ["tenant_id", "user_id", "status"]) if (params.get(key)) deviceQuery.set(key, params.get(key));
  const logQuery = new URLSearchParams({ page_size: "50" });
  for (const key of ["user_id", "start_time", "end_time"]) if (params.get(key)) logQuery.set(key, params.get(key));
  if (params.get("log_status")) logQuery.set("status", params.get("log_status"));
  main.replaceChildren(el("h1", { text: "Devices and mobile push" }), filterForm, status, el("p", { text: "Loading…" }));
  try {
    const [config, devices, logs] = await Promise.all([
      api("/api/message_push/config"),
      api(`/api/message_push/manage?${deviceQuery}`),
      api(`/api/message_push/logs?${logQuery}`),
    ]);
    const url = el("input", { type: "text", value: config.url ?? "", placeholder: "https://provider.example/push" });
    const urlError = el("span", { class: "field-error", role: "alert" });
    const configForm = el(
      "form",
      {
        onsubmit: async (e) => {
          e.preventDefault();
          urlError.textContent = "";
          try {
            await api("/api/message_push/config", { method: "POST", body: { url: url.value } });
            status.textContent = "Provider URL saved.";
          } catch (err) {
            urlError.textContent = err.message;
          }
        },
      },
      el("label", {}, "Provider URL ", url, urlError),
      el("button", { type: "submit", text: "Save" }),
    );
    const deviceRows = devices.items.map((d) =>
      el("tr", {}, el("td", { text: String(d.user_id) }), el("td", { text: d.tenant_id ?? "" }), el("td", { text: d.push_id }), el("td", { text: d.device_type }), el("td", { text: d.status === 1 ? "active" : "inactive" }), el("td", { text: String(d.err_count) }), el("td", { text: d.last_push_time ?? "" })),
    );
    const logRows = logs.items.map((l) =>
      el(
        "tr",
        {},
        el("td", { text: l.create_time }),
        el("td", { text: String(l.user_id) }),
        el("td", { text: l.push_id }),
        el("td", { text: l.title }),
        el("td", { text: l.status }),
        el("td", { text: l.err_message }),
        el(
          "td",
          {},
          l.status !== "sent" &&
            el("button", {
              class: "secondary",
              type: "button",
              text: "Retry",
              onclick: async () => {
                try {
                  const retried = await api(`/api/message_push/logs/${l.id}/retry`, { method: "POST", body: {} });
                  status.textContent = `Retry queued as ${retried.send_id}.`;
                } catch (err) {
                  status.textContent = err.message;
                }
              },
            }),
        ),
      ),
    );
    const exportButton = el("button", {
      class: "secondary",
      type: "button",
      text: "Export CSV",
      onclick: async () => {
        // Fetched with the token in a header (a link would need it in the URL), then saved.
        const exportQuery = new URLSearchParams(logQuery);
        exportQuery.delete("page_size");
        const answer = await fetch(`/api/message_push/logs/export?${exportQuery}`, { headers: { authorization: `Bearer ${token()}` } });
        if (!answer.ok) return (status.textContent = `Export refused: ${answer.status}`);
        const link = el("a", { href: URL.createObjectURL(await answer.blob()), download: "message_push_log.csv" });
        link.click();
        URL.revokeObjectURL(link.href);
      },
    });
    main.replaceChildren(
      el("h1", { text: "Devices and mobile push" }),
      filterForm,
      status,
      configForm,
      el("h2", { text: `Devices (${devices.total})` }),
      table(["user", "tenant", "push id", "type", "status", "errors", "last push"], deviceRows),
      el("h2", {}, `Push log (${logs.total}) `, exportButton),
      table(["time", "user", "push id", "title", "status", "error", ""], logRows),
    );
  } catch (err) {
    main.replaceChildren(el("h1", { text: "Devices and mobile push" }), filterForm, failure(err));
  }
}

// ---------------------------------------------------------------------------------- Routing

function route() {
  if (stopPolling) stopPolling();
  stopPolling = null;
  if (!token()) return renderSignIn();
  document.getElementById("nav").hidden = false;
  const [path, query = ""] = location.hash.slice(1).split("?");
  for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("active", link.getAttribute("href") === `#${path}`);
  const params = new URLSearchParams(query);
  if (path.startsWith("/records/")) return renderRecord(decodeURIComponent(path.slice("/records/".length)));
  if (path === "/records") return renderRecords(params);
  if (path === "/users") return renderUsers();
  if (path === "/devices") return renderDevices(params);
  return renderSend();
}

// A ready link (`/console/#token=...`, which the all-in-one prints at start-up): the token is
// taken from the fragment, which no server sees, and removed from the address bar at once.
if (location.hash.startsWith("#token=")) {
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(location.hash.slice("#token=".length)));
  history.replaceState(null, "", "/console/#/send");
}
document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
route();
