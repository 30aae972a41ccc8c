/* The console's shared helpers: page facts from <body>, DOM building (text nodes only, never
   HTML strings), the admin API client, status and dialogs, number, time and country formats. */

const body = document.body;
const PREFIX = body.dataset.prefix || "/console";
const API = "/api/admin/v1";
const ACCOUNT = body.dataset.account;
const MANAGER = body.dataset.manager === "true";
const FEATURES = {
  signinattempts: { title: "Sign-in attempts", kind: "Category", detail: "Type", app: true },
  itemusages: { title: "Item usages", kind: "Action", detail: "Vault", app: true },
  auditevents: { title: "Audit events", kind: "Action", detail: "Object type", app: false },
};
const RANGES = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400 };
const FILTERS = ["actor", "kind", "detail", "country", "app", "ip"];
const regionNames = new Intl.DisplayNames(["en"], { type: "region" });
const numberFormat = new Intl.NumberFormat();

// --- small helpers ---------------------------------------------------------------------------

/** Build an element: h("a", {href: "/x", class: "button"}, "text", child). */
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** table[code] when `code` is a string the table has an entry of its own for: never a property every
   object inherits ("constructor", "__proto__"), which an event's code may be named like. */
const known = (table, code) => (typeof code === "string" && Object.hasOwn(table, code) ? table[code] : undefined);
/** The notice for an address that asks for a choice (`what`) the page does not have: the page shows
   `shown` instead, and says so rather than breaking on it. */
const unknownChoice = (what, asked, shown) =>
  `Unknown ${what} "${asked.length > 40 ? `${asked.slice(0, 40)}…` : asked}" in the address: showing ${shown}.`;
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
const accountPath = (path) => `/accounts/${encodeURIComponent(ACCOUNT)}${path}`;
const consolePath = (path) => `${PREFIX}/accounts/${encodeURIComponent(ACCOUNT)}${path}`;
const icon = (type, size = 32) =>
  h("img", { src: `${PREFIX}/static/icons/${encodeURIComponent(type)}.svg`, alt: "", width: size, height: size });
const fmtNumber = (n) => numberFormat.format(n);
const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
const country = (code) => {
  if (!code) return "Unknown";
  try {
    return `${regionNames.of(code.toUpperCase())} (${code})`;
  } catch {
    return code;
  }
};

/** A length of time in words people read at a glance: "45 s", "15 min", "2 h", "3 d". */
function fmtDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 2 * 86400) {
    const hours = Math.floor(s / 3600);
    const minutes = Math.round((s % 3600) / 60);
    return minutes && hours < 10 ? `${hours} h ${minutes} min` : `${Math.round(s / 3600)} h`;
  }
  return `${Math.round(s / 86400)} d`;
}

/** An integration's health (accounts/health.py) as a badge and a sentence. */
function healthView(health) {
  const behind = health.behind_seconds;
  const caughtUp = behind === 0 ? "up to date" : behind ? `${fmtDuration(behind)} behind` : "";
  const views = {
    active: ["active", "Active", caughtUp],
    expiring: ["expiring", "Expiring", `every token expires by ${fmtTime(health.expires_at)}${caughtUp ? `; ${caughtUp}` : ""}`],
    no_active_token: ["revoked", "No active token", "every token is revoked or expired: the SIEM receives nothing"],
    never_used: ["expiring", "Never used", "no SIEM has read with its tokens yet"],
    behind: ["expiring", `${fmtDuration(behind)} behind`, "the oldest event the SIEM has not read has waited that long"],
  };
  const [kind, label, note] = views[health.state] || ["", health.state, ""];
  return { kind, label, note };
}

/** A wait in words: "45 seconds", "1 minute", "15 minutes", "2 hours". */
function waitInWords(seconds) {
  const s = Math.max(1, Math.ceil(seconds));
  const unit = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  if (s < 60) return unit(s, "second");
  if (s < 3600) return unit(Math.ceil(s / 60), "minute");
  return unit(Math.ceil(s / 3600), "hour");
}

// The API's messages start with the HTTP reason ("Conflict: ...") and may name a field first
// ("expires: ..."); people get the plain sentence, attached to that field.
const REASON = /^(Bad Request|Unauthorized|Forbidden|Not Found|Conflict|Gone|Payload Too Large|Content Too Large|Unprocessable (Entity|Content)|Too Many Requests|Internal Server Error|Service Unavailable):\s*/i;
const FIELD = /^([a-z][a-z_]*(?:\.[a-z_]+)?): (.+)$/s;
const PLAIN_STATUS = {
  400: "The server could not use that request; check the values and try again.",
  401: "Your session has ended; sign in again.",
  403: "You are not allowed to do that.",
  404: "That no longer exists, or you cannot see it.",
  409: "That clashes with something that already exists.",
  429: "Too many attempts; wait a little and try again.",
};

/** A message for people: no reason phrase, waits in minutes, a capital letter, a full stop. */
function plainMessage(text) {
  let message = String(text || "").replace(REASON, "");
  message = message.replace(/\b(\d+) seconds?\b/g, (_, n) => waitInWords(Number(n)));
  message = message.charAt(0).toUpperCase() + message.slice(1);
  return /[.!?)]$/.test(message) ? message : `${message}.`;
}

class ApiError extends Error {
  constructor(status, message) {
    const plain = String(message || "").replace(REASON, "");
    const field = FIELD.exec(plain);
    super(plainMessage(field ? field[2] : plain));
    this.status = status;
    this.field = field ? field[1] : null;
  }
}

/** An error about one field of a form (`field` is the input's name). */
class FieldError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

/** Call the admin API; resolves to the JSON reply (null for 204), rejects with ApiError. */
async function api(method, path, data) {
  const headers = { Accept: "application/json" };
  if (data !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = body.dataset.csrf;
  const response = await fetch(API + path, {
    method,
    headers,
    credentials: "same-origin",
    body: data === undefined ? undefined : JSON.stringify(data),
  });
  if (response.status === 204) return null;
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const message = (payload && payload.Error && payload.Error.Message) || PLAIN_STATUS[response.status] || `The server failed (HTTP ${response.status}); try again.`;
    if (response.status === 401 && body.dataset.page !== "sign-in") {
      location.assign(`${PREFIX}/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`);
    }
    throw new ApiError(response.status, message);
  }
  return payload;
}

/** Every item of a paginated admin API list. */
async function apiAll(path) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", `${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

function setStatus(message, bad = false) {
  const status = $("#status");
  if (!status) return;
  status.textContent = message ? (bad ? plainMessage(message) : message) : "";
  status.classList.toggle("bad", bad);
}

// The API's field names where the form's input is named otherwise.
const FIELD_INPUTS = { expires: "custom-expires", name: "token-name", current_password: "current" };

/** Show an error in the form's error element; when it is about one field, mark that field invalid,
   point it at the message and put the message right after it. */
function showError(target, error) {
  target.textContent = error.message || String(error);
  target.hidden = false;
  const form = target.closest("form");
  if (!form) return;
  clearFieldErrors(form);
  const input = error.field && (form.elements[error.field] || form.elements[FIELD_INPUTS[error.field]]);
  if (!input || !(input instanceof HTMLElement)) return;
  if (!target.id) target.id = `${form.id || "form"}-error-${Math.random().toString(36).slice(2, 8)}`;
  input.setAttribute("aria-invalid", "true");
  input.dataset.describedBefore = input.getAttribute("aria-describedby") || "";
  input.setAttribute("aria-describedby", `${target.id} ${input.dataset.describedBefore}`.trim());
  (input.closest(".field, label, fieldset") || input).after(target);
  if (input.disabled === false) input.focus();
}

function clearFieldErrors(form) {
  for (const input of $$("[aria-invalid=true]", form)) {
    input.removeAttribute("aria-invalid");
    if (input.dataset.describedBefore !== undefined) {
      if (input.dataset.describedBefore) input.setAttribute("aria-describedby", input.dataset.describedBefore);
      else input.removeAttribute("aria-describedby");
      delete input.dataset.describedBefore;
    }
  }
}

function busy(container, on) {
  container.setAttribute("aria-busy", on ? "true" : "false");
}

/** A modal question; resolves to the value of the button chosen ("" when dismissed). */
function ask({ title, content, buttons }) {
  const dialog = $("#confirm");
  $("#confirm-title").textContent = title;
  $("#confirm-body").replaceChildren(...content);
  // Cancel (value "") is not a submit button: Enter in a field submits with the first real choice.
  $("#confirm-actions").replaceChildren(
    ...buttons.map((b) =>
      b.value
        ? h("button", { value: b.value, class: `button ${b.kind || ""}`, autofocus: b.focus }, b.label)
        : h("button", { type: "button", class: `button ${b.kind || ""}`, autofocus: b.focus, onclick: () => dialog.close("") }, b.label),
    ),
  );
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
}

function badge(status) {
  const labels = { active: "Active", expiring: "Expiring soon", expired: "Expired", revoked: "Revoked" };
  return h("span", { class: `badge ${status}` }, labels[status] || status);
}

function stats(feature, params) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== "") q.set(name, value);
  return api("GET", accountPath(`/stats/${feature}?${q}`));
}

const LONG_WORD = /\S{23,}/; // an e-mail or IPv6 address, an id: may break anywhere (console.css td.long)

/** Give every cell of the tables under `root` its column's name (data-label), which phones show
   above the cell when a table's rows are stacked, and mark cells holding a long unbroken value so
   that it wraps instead of widening the page (console.css). */
function labelCells(root = document) {
  for (const tableNode of $$("main table", root)) {
    const names = $$("thead th", tableNode).map((th) => th.textContent.trim());
    for (const tr of $$("tbody tr", tableNode)) {
      let column = 0;
      for (const td of tr.children) {
        if (!td.hasAttribute("data-label") && td.colSpan === 1) {
          td.dataset.label = names[column] || "";
          if (LONG_WORD.test(td.textContent)) td.classList.add("long");
        }
        column += td.colSpan;
      }
    }
  }
}

function table(headers, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map((label) => h("th", { scope: "col" }, label)))), h("tbody", {}, rows));
}

export {
  body,
  PREFIX,
  API,
  ACCOUNT,
  MANAGER,
  FEATURES,
  RANGES,
  FILTERS,
  h,
  known,
  unknownChoice,
  $,
  $$,
  accountPath,
  consolePath,
  icon,
  fmtNumber,
  fmtTime,
  fmtDuration,
  healthView,
  country,
  ApiError,
  FieldError,
  plainMessage,
  api,
  apiAll,
  setStatus,
  showError,
  busy,
  ask,
  badge,
  stats,
  table,
  labelCells,
};
