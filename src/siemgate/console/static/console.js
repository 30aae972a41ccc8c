/* siemgate console: every page's behaviour. Pages are rendered by the server as shells; this script
   reads and changes everything through the admin API (/api/admin/v1) with the session cookie and
   the CSRF token the page carries. DOM is built with textContent only, never innerHTML. */
"use strict";

(() => {
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

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
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
      const message = (payload && payload.Error && payload.Error.Message) || `${response.status} ${response.statusText}`;
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
    status.textContent = message || "";
    status.classList.toggle("bad", bad);
  }

  function showError(target, error) {
    target.textContent = error.message || String(error);
    target.hidden = false;
  }

  function busy(container, on) {
    container.setAttribute("aria-busy", on ? "true" : "false");
  }

  /** A modal question; resolves to the value of the button chosen ("" when dismissed). */
  function ask({ title, content, buttons }) {
    const dialog = $("#confirm");
    $("#confirm-title").textContent = title;
    $("#confirm-body").replaceChildren(...content);
    $("#confirm-actions").replaceChildren(
      ...buttons.map((b) => h("button", { value: b.value, class: `button ${b.kind || ""}`, autofocus: b.focus }, b.label)),
    );
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
  }

  function badge(status) {
    const labels = { active: "Active", expiring: "Expiring soon", expired: "Expired", revoked: "Revoked" };
    return h("span", { class: `badge ${status}` }, labels[status] || status);
  }

  // --- time ranges (explorer and dashboards) --------------------------------------------------------

  function toLocalInput(date) {
    const pad = (n) => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  }

  /** Wire the range select of _range.html; `read()` gives {start, end} as ISO strings. */
  function rangeControl(form, params) {
    const select = $("select[name=range]", form);
    const custom = $$(".custom-range", form);
    const from = $("input[name=from]", form);
    const to = $("input[name=to]", form);
    if (params.get("range")) select.value = params.get("range");
    if (select.value === "custom") {
      from.value = params.get("from") || "";
      to.value = params.get("to") || "";
    }
    const sync = () => {
      const isCustom = select.value === "custom";
      custom.forEach((label) => (label.hidden = !isCustom));
      if (isCustom && !from.value) {
        const now = new Date();
        to.value = toLocalInput(now);
        from.value = toLocalInput(new Date(now.getTime() - 86400 * 1000));
      }
    };
    select.addEventListener("change", sync);
    sync();
    return {
      read() {
        if (select.value === "custom") {
          const start = new Date(from.value);
          const end = new Date(to.value);
          if (isNaN(start) || isNaN(end)) throw new Error("Enter both dates of the custom time range.");
          if (start > end) throw new Error("The start of the time range must be before its end.");
          return { start: start.toISOString(), end: end.toISOString() };
        }
        const end = new Date();
        return { start: new Date(end.getTime() - RANGES[select.value] * 1000).toISOString(), end: end.toISOString() };
      },
      query() {
        const q = { range: select.value };
        if (select.value === "custom") Object.assign(q, { from: from.value, to: to.value });
        return q;
      },
    };
  }

  function stats(feature, params) {
    const q = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== "") q.set(name, value);
    return api("GET", accountPath(`/stats/${feature}?${q}`));
  }

  // --- the top bar -------------------------------------------------------------------------------

  function topBar() {
    const signOut = $("#sign-out");
    if (signOut) {
      signOut.addEventListener("click", async () => {
        try {
          await api("DELETE", "/session");
        } finally {
          location.assign(`${PREFIX}/sign-in`);
        }
      });
    }
    const switcher = $("#account-switch");
    if (switcher) {
      switcher.addEventListener("change", () => {
        const rest = location.pathname.split("/").slice(4, 5).join("/") || "integrations";
        location.assign(`${PREFIX}/accounts/${encodeURIComponent(switcher.value)}/${rest}`);
      });
    }
  }

  // --- sign in -----------------------------------------------------------------------------------

  function signInPage() {
    const form = $("#sign-in-form");
    const error = $("#sign-in-error");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      const email = form.email.value.trim();
      if (!email || !form.password.value) {
        showError(error, new Error("Enter your email and password."));
        return;
      }
      const button = $("button[type=submit]", form);
      button.disabled = true;
      try {
        await api("POST", "/session", { email, password: form.password.value });
        location.assign(form.dataset.next || `${PREFIX}/`);
      } catch (e) {
        showError(error, e);
        form.password.value = "";
        form.password.focus();
      } finally {
        button.disabled = false;
      }
    });
  }

  // --- integrations ------------------------------------------------------------------------------

  async function integrationsPage() {
    const list = $("#integration-list");
    const gallery = $("#gallery");
    try {
      const [types, integrations, tokens] = await Promise.all([
        api("GET", "/siem-types"),
        apiAll(accountPath("/integrations")),
        apiAll(accountPath("/tokens")),
      ]);
      const names = Object.fromEntries(types.map((t) => [t.key, t.name]));
      gallery.replaceChildren(
        ...types.map((t) => {
          const inner = [icon(t.key, 48), h("span", { class: "tile-name" }, t.name), h("span", { class: "tile-note" }, t.connector)];
          return h(
            "li",
            {},
            MANAGER
              ? h("a", { href: consolePath(`/integrations/new?type=${encodeURIComponent(t.key)}`), "aria-label": `Add ${t.name}` }, inner)
              : h("div", { class: "tile" }, inner),
          );
        }),
      );
      busy(gallery, false);
      if (!integrations.length) {
        list.replaceChildren(
          h("p", { class: "muted empty" }, MANAGER ? "No integrations yet. Pick your SIEM below to add one." : "No integrations yet."),
        );
      } else {
        const rows = integrations.map((i) => {
          const own = tokens.filter((t) => t.integration && t.integration.uuid === i.uuid);
          const active = own.filter((t) => t.status === "active" || t.status === "expiring").length;
          return h(
            "tr",
            {},
            h("td", {}, h("span", { class: "name-cell" }, icon(i.type, 28), h("a", { href: consolePath(`/integrations/${i.uuid}`) }, i.name))),
            h("td", {}, names[i.type] || i.type),
            h("td", { class: "num" }, `${active} active`, own.length > active ? h("span", { class: "muted" }, ` / ${own.length}`) : null),
            h("td", {}, fmtTime(i.created_at)),
          );
        });
        list.replaceChildren(
          h(
            "table",
            {},
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "SIEM"), h("th", { scope: "col", class: "num" }, "Tokens"), h("th", { scope: "col" }, "Created"))),
            h("tbody", {}, rows),
          ),
        );
      }
    } catch (e) {
      setStatus(e.message, true);
    } finally {
      busy(list, false);
    }
  }

  /** The values of a _token_form.html form; throws Error with what to fix. */
  function tokenFormValue(form) {
    const name = $(".token-name", form).value.trim();
    if (!name) throw new Error("Give the token a name, e.g. the SIEM host that will use it.");
    let expires = $("input[name=expires]:checked", form).value;
    if (expires === "custom") {
      expires = $("input[name=custom-expires]", form).value.trim();
      if (!expires) throw new Error("Enter a custom expiry such as 45d or 12h.");
    }
    const features = $$("input[name=features]:checked", form).map((box) => box.value);
    if (!features.length) throw new Error("Choose at least one event type.");
    return { name, expires, features };
  }

  function wireTokenForm(form, onSubmit) {
    const custom = $("input[name=custom-expires]", form);
    $$("input[name=expires]", form).forEach((radio) =>
      radio.addEventListener("change", () => {
        custom.disabled = $("input[name=expires]:checked", form).value !== "custom";
        if (!custom.disabled) custom.focus();
      }),
    );
    const error = $(".error", form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      const button = $("button[type=submit]", form);
      button.disabled = true;
      try {
        await onSubmit(tokenFormValue(form));
      } catch (e) {
        showError(error, e);
      } finally {
        button.disabled = false;
      }
    });
  }

  function guideView(guide) {
    return [
      h("p", {}, `Connector: ${guide.connector}`),
      h("dl", {}, h("dt", {}, "Events API URL"), h("dd", {}, h("code", { class: "base-url" }, guide.base_url))),
      h("p", { class: "muted" }, guide.url_note),
      h("ol", {}, guide.steps.map((step) => h("li", {}, step))),
    ];
  }

  /** Show an issued token (once) in a _token_reveal.html block, with copy and download. */
  function revealToken(root, issued, guide) {
    const box = $(".token-value", root);
    box.value = issued.token;
    const status = $("#copy-status", root);
    $("#copy-token", root).onclick = async () => {
      try {
        await navigator.clipboard.writeText(issued.token);
        status.textContent = "Copied to the clipboard.";
      } catch {
        box.focus();
        box.select();
        status.textContent = "Press Ctrl+C (⌘C) to copy the selected token.";
      }
    };
    $("#download-token", root).onclick = () => {
      const blob = new Blob([`${issued.token}\n`], { type: "text/plain" });
      const link = h("a", { href: URL.createObjectURL(blob), download: `siemgate-token-${issued.name.replace(/[^\w.-]+/g, "-")}.txt` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
      status.textContent = "Downloaded. Keep the file somewhere safe, then delete it.";
    };
    if (guide) $("#token-guide", root).replaceChildren(h("h3", {}, "Next: enter it in your SIEM"), ...guideView(guide));
    box.focus();
    box.select();
  }

  async function newIntegrationPage() {
    const type = $("#new-head").dataset.type;
    const types = await api("GET", "/siem-types");
    const siem = types.find((t) => t.key === type);
    const form = $("#integration-form");
    if (!siem) {
      setStatus(`There is no SIEM type ${JSON.stringify(type)}; pick one on the Integrations page.`, true);
      form.hidden = true;
      return;
    }
    $("#siem-name").textContent = siem.name;
    const nameInput = $("#integration-name");
    if (!nameInput.value && siem.key !== "other") nameInput.value = siem.name;
    nameInput.focus();
    const step = (n) => {
      [1, 2, 3].forEach((i) => {
        $(`#step-${i}`).hidden = i !== n;
        const label = $(`#step-${i}-label`);
        if (i === n) label.setAttribute("aria-current", "step");
        else label.removeAttribute("aria-current");
      });
    };
    let integration = null;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const error = $(".error", form);
      error.hidden = true;
      try {
        const name = form.name.value.trim();
        if (!name) throw new Error("Give the integration a name.");
        integration = await api("POST", accountPath("/integrations"), { type, name, description: form.description.value.trim() });
        $("#step-2 .token-name").value = `${name} token`;
        step(2);
        $("#step-2 .token-name").focus();
      } catch (e) {
        showError(error, e);
      }
    });
    wireTokenForm($("#step-2 form"), async (value) => {
      const issued = await api("POST", accountPath(`/integrations/${integration.uuid}/tokens`), value);
      const details = await api("GET", accountPath(`/integrations/${integration.uuid}`));
      step(3);
      revealToken($("#step-3"), issued, details.connection_guide);
      $("#to-details").href = consolePath(`/integrations/${integration.uuid}`);
    });
  }

  async function integrationPage() {
    const id = $("#integration-head").dataset.integration;
    const tokensBox = $("#tokens");
    const load = async () => {
      const details = await api("GET", accountPath(`/integrations/${encodeURIComponent(id)}`));
      document.title = `${details.name} · siemgate`;
      $("#integration-name").textContent = details.name;
      $("#integration-type").textContent = `${details.siem.name} · created ${fmtTime(details.created_at)}`;
      $("#integration-icon").src = `${PREFIX}/static/icons/${encodeURIComponent(details.type)}.svg`;
      $("#integration-description").textContent = details.description;
      $("#guide").replaceChildren(...guideView(details.connection_guide));
      renderTokens(details);
      busy(tokensBox, false);
      return details;
    };
    const renderTokens = (details) => {
      if (!details.tokens.length) {
        tokensBox.replaceChildren(h("p", { class: "muted empty" }, "No tokens. Issue one to connect this SIEM."));
        return;
      }
      const rows = details.tokens.map((t) => {
        const live = t.status === "active" || t.status === "expiring";
        const lag = t.streams.map((s) =>
          h("div", {}, `${FEATURES[s.feature].title}: `, s.events_behind === null ? h("span", { class: "muted" }, "never read") : `${fmtNumber(s.events_behind)} behind`),
        );
        const actions =
          MANAGER && live
            ? [
                h("button", { type: "button", class: "button small", onclick: () => rotate(t) }, "Rotate"),
                h("button", { type: "button", class: "button small danger-outline", onclick: () => revoke(t) }, "Revoke"),
              ]
            : [];
        return h(
          "tr",
          { dataset: { token: t.id } },
          h("td", {}, h("strong", {}, t.name), t.replaces ? h("div", { class: "muted" }, "replacement") : null),
          h("td", {}, t.features.map((f) => h("div", {}, FEATURES[f].title))),
          h("td", {}, badge(t.status), t.revoke_at ? h("div", { class: "muted" }, `revoked by ${fmtTime(t.revoke_at)}`) : null),
          h("td", {}, t.expires_at ? fmtTime(t.expires_at) : "Never"),
          h("td", {}, t.last_used_at ? fmtTime(t.last_used_at) : h("span", { class: "muted" }, "Never")),
          h("td", {}, lag),
          h("td", { class: "row-actions" }, actions),
        );
      });
      const headers = ["Name", "Event types", "Status", "Expires", "Last used", "Consumer lag", "Actions"];
      tokensBox.replaceChildren(
        h("div", { class: "table-scroll" }, h("table", { class: "tokens" }, h("thead", {}, h("tr", {}, headers.map((label) => h("th", { scope: "col" }, label)))), h("tbody", {}, rows))),
      );
    };
    const showIssued = (issued, guide) => {
      $("#issue-section").hidden = true;
      $("#reveal-section").hidden = false;
      revealToken($("#reveal-section"), issued, guide);
    };
    const rotate = async (token) => {
      const choice = await ask({
        title: `Rotate “${token.name}”?`,
        content: [
          h("p", {}, "A new token with the same event types is issued now and shown once."),
          h("p", {}, "This token keeps working until the new one is first used, and at the latest for 24 hours, so your SIEM can switch without losing events."),
        ],
        buttons: [
          { label: "Cancel", value: "" },
          { label: "Rotate", value: "rotate", kind: "primary", focus: true },
        ],
      });
      if (choice !== "rotate") return;
      try {
        const issued = await api("POST", accountPath(`/tokens/${token.id}/rotate`), {});
        const details = await load();
        showIssued(issued, details.connection_guide);
        setStatus(`Issued a replacement for “${token.name}”. Put it into your SIEM now.`);
      } catch (e) {
        setStatus(e.message, true);
      }
    };
    const revoke = async (token) => {
      const choice = await ask({
        title: `Revoke “${token.name}”?`,
        content: [
          h("p", { class: "warning" }, "The SIEM using this token stops receiving events at once."),
          h("p", {}, "To switch without a gap, issue a replacement first: rotating gives you a new token now and revokes this one when the new one is first used."),
        ],
        buttons: [
          { label: "Cancel", value: "" },
          { label: "Issue a replacement first", value: "rotate", kind: "primary", focus: true },
          { label: "Revoke now", value: "revoke", kind: "danger" },
        ],
      });
      if (choice === "rotate") return rotate(token);
      if (choice !== "revoke") return;
      try {
        await api("POST", accountPath(`/tokens/${token.id}/revoke`));
        await load();
        setStatus(`Revoked “${token.name}”. The SIEM using it is refused from now on.`);
      } catch (e) {
        setStatus(e.message, true);
      }
    };
    let details;
    try {
      details = await load();
    } catch (e) {
      setStatus(e.message, true);
      busy(tokensBox, false);
      return;
    }
    if (!MANAGER) return;
    const issueSection = $("#issue-section");
    $("#issue-another").addEventListener("click", () => {
      issueSection.hidden = false;
      $("#reveal-section").hidden = true;
      const name = $(".token-name", issueSection);
      if (!name.value) name.value = `${details.name} token ${details.tokens.length + 1}`;
      name.focus();
    });
    wireTokenForm($("form", issueSection), async (value) => {
      const issued = await api("POST", accountPath(`/integrations/${encodeURIComponent(id)}/tokens`), value);
      details = await load();
      $(".token-name", issueSection).value = "";
      showIssued(issued, details.connection_guide);
    });
    $("#reveal-done").addEventListener("click", () => {
      $(".token-value", $("#reveal-section")).value = "";
      $("#reveal-section").hidden = true;
    });
    $("#rename").addEventListener("click", async () => {
      const input = h("input", { id: "rename-input", value: details.name, maxlength: 200, "aria-label": "New name" });
      const choice = await ask({
        title: "Rename the integration",
        content: [h("label", { for: "rename-input" }, "Name"), input],
        buttons: [
          { label: "Cancel", value: "" },
          { label: "Save", value: "save", kind: "primary" },
        ],
      });
      if (choice !== "save" || !input.value.trim()) return;
      try {
        await api("PATCH", accountPath(`/integrations/${encodeURIComponent(id)}`), { name: input.value.trim() });
        details = await load();
        setStatus("Renamed.");
      } catch (e) {
        setStatus(e.message, true);
      }
    });
    $("#delete-integration").addEventListener("click", async () => {
      const choice = await ask({
        title: `Delete “${details.name}”?`,
        content: [h("p", { class: "warning" }, "Its tokens are revoked at once: the SIEM stops receiving events.")],
        buttons: [
          { label: "Cancel", value: "" },
          { label: "Delete integration", value: "delete", kind: "danger" },
        ],
      });
      if (choice !== "delete") return;
      try {
        await api("DELETE", accountPath(`/integrations/${encodeURIComponent(id)}`));
        location.assign(consolePath("/integrations"));
      } catch (e) {
        setStatus(e.message, true);
      }
    });
  }

  // --- members and alerts ------------------------------------------------------------------------

  function table(headers, rows) {
    return h("table", {}, h("thead", {}, h("tr", {}, headers.map((label) => h("th", { scope: "col" }, label)))), h("tbody", {}, rows));
  }

  async function membersPage() {
    const box = $("#members");
    try {
      const members = await apiAll(accountPath("/members"));
      box.replaceChildren(
        table(
          ["Name", "Email", "Role", "Joined", "Console sign-in"],
          members.map((m) => h("tr", {}, h("td", {}, m.name), h("td", {}, m.email), h("td", {}, h("span", { class: "badge" }, m.role)), h("td", {}, fmtTime(m.joined_at)), h("td", {}, m.can_sign_in ? "Yes" : "No"))),
        ),
      );
    } catch (e) {
      setStatus(e.message, true);
    } finally {
      busy(box, false);
    }
  }

  async function alertsPage() {
    const alertsBox = $("#alerts");
    const rulesBox = $("#rules");
    try {
      const [alerts, rules] = await Promise.all([api("GET", accountPath("/alerts?limit=50")), apiAll(accountPath("/alert-rules"))]);
      alertsBox.replaceChildren(
        alerts.items.length
          ? table(["Fired", "Rule", "Severity", "Summary"], alerts.items.map((a) => h("tr", {}, h("td", {}, fmtTime(a.fired_at)), h("td", {}, a.rule_name), h("td", {}, h("span", { class: `badge ${a.severity}` }, a.severity)), h("td", {}, a.summary))))
          : h("p", { class: "muted empty" }, "No alerts have fired."),
      );
      rulesBox.replaceChildren(
        table(
          ["Rule", "Kind", "Severity", "Status", "Fired", "Last fired"],
          rules.map((r) => h("tr", {}, h("td", {}, h("strong", {}, r.name), h("div", { class: "muted" }, r.description)), h("td", {}, r.kind), h("td", {}, r.severity), h("td", {}, h("span", { class: `badge ${r.status === "active" ? "active" : r.status === "failing" ? "failed" : ""}` }, r.status)), h("td", { class: "num" }, fmtNumber(r.fired)), h("td", {}, fmtTime(r.last_fired_at)))),
        ),
      );
    } catch (e) {
      setStatus(e.message, true);
    } finally {
      busy(alertsBox, false);
      busy(rulesBox, false);
    }
  }

  // --- event explorer ----------------------------------------------------------------------------

  /** The facets of an event as the server extracts them (model/facets.py). */
  function facetsOf(feature, e) {
    const loc = (e.location && e.location.country) || "";
    const client = e.client || {};
    if (feature === "signinattempts") {
      const u = e.target_user || {};
      return [u.email || u.name || "", e.category, e.type, e.country || loc, client.app_name, client.ip_address];
    }
    if (feature === "itemusages") {
      const u = e.user || {};
      return [u.email || u.name || "", e.action, e.vault_uuid, loc, client.app_name, client.ip_address];
    }
    const a = e.actor_details || {};
    return [a.email || a.name || e.actor_uuid || "", e.action, e.object_type, loc, "", (e.session || {}).ip];
  }

  function explorerPage() {
    const params = new URLSearchParams(location.search);
    const form = $("#filters");
    const tbody = $("#events-table tbody");
    const more = $("#load-more");
    const range = rangeControl(form, params);
    let feature = FEATURES[params.get("feature")] ? params.get("feature") : "signinattempts";
    let cursor = null;
    let shown = 0;
    let query = null;
    let generation = 0;
    for (const name of FILTERS) if (params.get(name)) form.elements[name].value = params.get(name);

    const tabs = $$("[role=tab]");
    const selectTab = (name) => {
      feature = name;
      tabs.forEach((tab) => {
        const on = tab.dataset.feature === name;
        tab.setAttribute("aria-selected", on ? "true" : "false");
        tab.tabIndex = on ? 0 : -1;
      });
      const labels = FEATURES[name];
      $$(".kind-label").forEach((el) => (el.textContent = labels.kind));
      $$(".detail-label").forEach((el) => (el.textContent = labels.detail));
      $(".app-filter").hidden = !labels.app;
      $(".app-col").textContent = labels.app ? "Client" : "—";
    };
    tabs.forEach((tab, index) => {
      tab.addEventListener("click", () => {
        if (feature === tab.dataset.feature) return;
        selectTab(tab.dataset.feature);
        form.elements.kind.value = "";
        form.elements.detail.value = "";
        search();
      });
      tab.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        const next = tabs[(index + step + tabs.length) % tabs.length];
        next.focus();
        next.click();
      });
    });

    const currentQuery = () => {
      const q = new URLSearchParams(range.read());
      for (const name of FILTERS) {
        const value = form.elements[name].value.trim();
        if (value && !(name === "app" && !FEATURES[feature].app)) q.set(name, value);
      }
      return q;
    };

    const row = (event) => {
      const [actor, kind, detail, where, app, ip] = facetsOf(feature, event);
      const json = h("tr", { class: "json-row", hidden: true }, h("td", { colspan: 8 }, h("pre", { tabindex: 0 }, JSON.stringify(event, null, 2))));
      const toggle = h("button", { type: "button", class: "button small", "aria-expanded": "false", "aria-label": `Show the JSON of event ${event.uuid}` }, "JSON");
      toggle.addEventListener("click", () => {
        const open = json.hidden;
        json.hidden = !open;
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
      });
      return [
        h(
          "tr",
          { dataset: { uuid: event.uuid } },
          h("td", { class: "time" }, h("time", { datetime: event.timestamp }, fmtTime(event.timestamp))),
          h("td", {}, actor),
          h("td", {}, kind || ""),
          h("td", { class: detail && detail.length > 20 ? "mono" : "" }, detail || ""),
          h("td", {}, where || ""),
          h("td", {}, app || ""),
          h("td", { class: "mono" }, ip || ""),
          h("td", {}, toggle),
        ),
        json,
      ];
    };

    const loadPage = async (mine) => {
      const q = new URLSearchParams(query);
      q.set("limit", "50");
      if (cursor) q.set("cursor", cursor);
      more.disabled = true;
      const page = await api("GET", accountPath(`/events/${feature}?${q}`));
      if (mine !== generation) return;
      tbody.append(...page.items.flatMap(row));
      shown += page.items.length;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      more.disabled = false;
      $("#no-events").hidden = shown > 0;
    };

    const updateSummary = async (mine) => {
      const result = await stats(feature, Object.fromEntries(query));
      if (mine !== generation) return;
      $("#result-summary").textContent = `${fmtNumber(result.total)} ${FEATURES[feature].title.toLowerCase()} match.`;
    };

    const fillChoices = async (mine) => {
      const q = Object.fromEntries(new URLSearchParams(range.read()));
      const [kinds, details, apps] = await Promise.all([
        stats(feature, { ...q, group_by: "kind", limit: 100 }),
        stats(feature, { ...q, group_by: "detail", limit: 50 }),
        FEATURES[feature].app ? stats(feature, { ...q, group_by: "app", limit: 50 }) : { rows: [] },
      ]);
      if (mine !== generation) return;
      const select = form.elements.kind;
      const chosen = select.value || (new URLSearchParams(query).get("kind") || "");
      const values = kinds.rows.filter((r) => r.kind).map((r) => r.kind);
      if (chosen && !values.includes(chosen)) values.push(chosen);
      select.replaceChildren(h("option", { value: "" }, "Any"), ...values.sort().map((v) => h("option", { value: v }, v)));
      select.value = chosen;
      $("#detail-values").replaceChildren(...details.rows.filter((r) => r.detail).map((r) => h("option", { value: r.detail })));
      $("#app-values").replaceChildren(...apps.rows.filter((r) => r.app).map((r) => h("option", { value: r.app })));
    };

    const search = async () => {
      const mine = ++generation;
      setStatus("");
      try {
        query = currentQuery();
      } catch (e) {
        setStatus(e.message, true);
        return;
      }
      cursor = null;
      shown = 0;
      tbody.replaceChildren();
      $("#no-events").hidden = true;
      busy($("#events-table"), true);
      const address = new URLSearchParams({ feature, ...range.query() });
      for (const name of FILTERS) if (query.get(name)) address.set(name, query.get(name));
      history.replaceState(null, "", `?${address}`);
      for (const format of ["jsonl", "csv"]) {
        const q = new URLSearchParams(query);
        q.set("format", format);
        $(`#export-${format}`).href = `${API}${accountPath(`/events/${feature}/export?${q}`)}`;
      }
      try {
        await Promise.all([loadPage(mine), updateSummary(mine), fillChoices(mine)]);
      } catch (e) {
        setStatus(e.message, true);
      } finally {
        if (mine === generation) busy($("#events-table"), false);
      }
    };

    selectTab(feature);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      search();
    });
    form.addEventListener("reset", () => setTimeout(search, 0));
    more.addEventListener("click", async () => {
      try {
        await loadPage(generation);
      } catch (e) {
        setStatus(e.message, true);
      }
    });
    search();
  }

  // --- dashboards --------------------------------------------------------------------------------

  const PALETTE = ["#1d4ed8", "#dc2626", "#f59e0b", "#059669", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ea580c", "#475569"];
  const CATEGORY_COLORS = {
    success: "#059669",
    credentials_failed: "#dc2626",
    mfa_failed: "#f59e0b",
    sso_failed: "#db2777",
    modern_version_failed: "#7c3aed",
    firewall_failed: "#475569",
    firewall_reported_success: "#0891b2",
  };
  const charts = {};
  window.siemgateCharts = charts;
  const isFailure = (category) => typeof category === "string" && category.endsWith("_failed");

  function drawChart(id, config, total) {
    const canvas = document.getElementById(id);
    if (charts[id]) charts[id].chart.destroy();
    const chart = new window.Chart(canvas, config);
    charts[id] = { chart, total };
    canvas.dataset.total = String(total);
    canvas.closest(".chart-card").dataset.ready = "true";
    const empty = canvas.parentElement.querySelector(".chart-empty");
    if (total === 0 && !empty) canvas.parentElement.append(h("p", { class: "chart-empty muted" }, "No events in this time range."));
    if (total !== 0 && empty) empty.remove();
  }

  const baseOptions = (extra = {}) => ({
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
    ...extra,
  });

  /** Sum rows into {key: count} by `key(row)`, largest first, at most `top` keys plus "other". */
  function tally(rows, key, top = 10) {
    const sums = new Map();
    for (const row of rows) {
      const k = key(row);
      if (k === undefined) continue;
      sums.set(k, (sums.get(k) || 0) + row.count);
    }
    const sorted = [...sums.entries()].sort((a, b) => b[1] - a[1]);
    if (sorted.length > top) {
      const rest = sorted.splice(top).reduce((sum, [, n]) => sum + n, 0);
      sorted.push(["other", rest]);
    }
    return sorted;
  }

  /** Long category labels (emails, vault ids) cut to fit; the tooltip shows them whole. */
  function shortLabel(value) {
    const text = String(this.getLabelForValue(value));
    return text.length > 28 ? `${text.slice(0, 27)}…` : text;
  }

  function barChart(id, entries, { label, color = PALETTE[0], horizontal = true, name = (k) => k ?? "unknown" }) {
    const total = entries.reduce((sum, [, n]) => sum + n, 0);
    drawChart(
      id,
      {
        type: "bar",
        data: { labels: entries.map(([k]) => name(k)), datasets: [{ label, data: entries.map(([, n]) => n), backgroundColor: color }] },
        options: baseOptions({
          indexAxis: horizontal ? "y" : "x",
          plugins: { legend: { display: false } },
          scales: horizontal ? { y: { ticks: { callback: shortLabel } } } : {},
        }),
      },
      total,
    );
  }

  function doughnut(id, entries, colors = {}) {
    const total = entries.reduce((sum, [, n]) => sum + n, 0);
    drawChart(
      id,
      {
        type: "doughnut",
        data: {
          labels: entries.map(([k]) => k ?? "unknown"),
          datasets: [{ data: entries.map(([, n]) => n), backgroundColor: entries.map(([k], i) => colors[k] || PALETTE[i % PALETTE.length]) }],
        },
        options: baseOptions({ plugins: { legend: { position: "right" } } }),
      },
      total,
    );
  }

  /** A stacked bar chart of a stats reply with interval and group_by=[facet], every bucket shown. */
  function overTime(id, result, facet, colors = {}, top = 6) {
    const size = result.interval_seconds * 1000;
    const first = Math.floor(Date.parse(result.start) / size) * size;
    const last = Math.floor(Date.parse(result.end) / size) * size;
    const buckets = [];
    for (let t = first; t <= last; t += size) buckets.push(t);
    const index = new Map(buckets.map((t, i) => [t, i]));
    const keep = new Set(tally(result.rows, (r) => r[facet], top).map(([k]) => k));
    const series = new Map();
    let total = 0;
    for (const row of result.rows) {
      const i = index.get(Date.parse(row.bucket));
      if (i === undefined) continue;
      const key = keep.has(row[facet]) ? row[facet] ?? "unknown" : "other";
      if (!series.has(key)) series.set(key, new Array(buckets.length).fill(0));
      series.get(key)[i] += row.count;
      total += row.count;
    }
    const day = size >= 86400000;
    const label = (t) => new Date(t).toLocaleString(undefined, day ? { month: "short", day: "numeric" } : { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    const datasets = [...series.entries()]
      .sort((a, b) => b[1].reduce((x, y) => x + y, 0) - a[1].reduce((x, y) => x + y, 0))
      .map(([key, data], i) => ({ label: key, data, backgroundColor: colors[key] || PALETTE[i % PALETTE.length], stack: "all" }));
    drawChart(
      id,
      {
        type: "bar",
        data: { labels: buckets.map(label), datasets },
        options: baseOptions({ scales: { x: { stacked: true, ticks: { maxRotation: 0, autoSkipPadding: 12 } }, y: { stacked: true, beginAtZero: true } } }),
      },
      total,
    );
  }

  function countryTable(all, failures) {
    const failed = new Map(tally(failures, (r) => (isFailure(r.kind) ? r.country : undefined), 1000));
    const max = Math.max(1, ...all.rows.map((r) => r.count));
    const rows = all.rows.map((r) =>
      h(
        "tr",
        { dataset: { country: r.country || "" } },
        h("td", {}, country(r.country)),
        h("td", { class: "num" }, fmtNumber(r.count)),
        h("td", { class: "num" }, fmtNumber(failed.get(r.country) || 0)),
        h("td", { "aria-hidden": "true" }, h("span", { class: "bar", dataset: { width: Math.round((100 * r.count) / max) } })),
      ),
    );
    const box = $("#country-table");
    box.replaceChildren(rows.length ? table(["Country", "Attempts", "Failed", ""], rows) : h("p", { class: "muted" }, "No events in this time range."));
    // Bar widths through the CSSOM (the page's CSP allows no inline style attributes).
    $$(".bar", box).forEach((bar) => (bar.style.width = `${Math.max(2, Number(bar.dataset.width)) * 1.2}px`));
    box.closest(".chart-card").dataset.ready = "true";
    box.dataset.total = String(all.rows.reduce((sum, r) => sum + r.count, 0));
  }

  const BOARDS = {
    async signins(window) {
      const [overall, byType, byCountry, byUser, countries] = await Promise.all([
        stats("signinattempts", { ...window, group_by: "kind", interval: "auto", limit: 5000 }),
        stats("signinattempts", { ...window, group_by: "kind,detail", limit: 5000 }),
        stats("signinattempts", { ...window, group_by: "kind,country", limit: 5000 }),
        stats("signinattempts", { ...window, group_by: "kind,actor", limit: 5000 }),
        stats("signinattempts", { ...window, group_by: "country", limit: 300 }),
      ]);
      overTime("chart-over-time", overall, "kind", CATEGORY_COLORS, 8);
      barChart("chart-fail-type", tally(byType.rows, (r) => (isFailure(r.kind) ? r.detail : undefined)), { label: "Failures", color: "#dc2626" });
      barChart("chart-fail-country", tally(byCountry.rows, (r) => (isFailure(r.kind) ? r.country : undefined)), { label: "Failures", color: "#f59e0b", name: (k) => (k === "other" ? "other" : country(k)) });
      barChart("chart-fail-user", tally(byUser.rows, (r) => (isFailure(r.kind) ? r.actor : undefined)), { label: "Failures", color: "#7c3aed" });
      countryTable(countries, byCountry.rows);
      return overall.total;
    },
    async items(window) {
      const [overall, byVault, byUser] = await Promise.all([
        stats("itemusages", { ...window, group_by: "kind", interval: "auto", limit: 5000 }),
        stats("itemusages", { ...window, group_by: "detail", limit: 10 }),
        stats("itemusages", { ...window, group_by: "actor", limit: 10 }),
      ]);
      overTime("chart-over-time", overall, "kind");
      doughnut("chart-by-action", tally(overall.rows, (r) => r.kind, 50)); // the over-time rows, summed
      barChart("chart-by-vault", byVault.rows.map((r) => [r.detail, r.count]), { label: "Item usages", color: "#0891b2" });
      barChart("chart-by-user", byUser.rows.map((r) => [r.actor, r.count]), { label: "Item usages" });
      return overall.total;
    },
    async audit(window) {
      const [overall, byActor, byObject] = await Promise.all([
        stats("auditevents", { ...window, group_by: "kind", interval: "auto", limit: 5000 }),
        stats("auditevents", { ...window, group_by: "actor", limit: 10 }),
        stats("auditevents", { ...window, group_by: "detail", limit: 10 }),
      ]);
      overTime("chart-over-time", overall, "kind");
      barChart("chart-by-actor", byActor.rows.map((r) => [r.actor, r.count]), { label: "Audit events", color: "#7c3aed", name: (k) => k ?? "siemgate (system)" });
      barChart("chart-by-action", tally(overall.rows, (r) => r.kind, 15), { label: "Audit events" }); // summed buckets
      doughnut("chart-by-object", byObject.rows.map((r) => [r.detail, r.count]));
      return overall.total;
    },
  };

  function dashboardPage(board) {
    const params = new URLSearchParams(location.search);
    const form = $("#dashboard-range");
    const range = rangeControl(form, params);
    const draw = async () => {
      let window;
      try {
        window = range.read();
      } catch (e) {
        setStatus(e.message, true);
        return;
      }
      setStatus("");
      history.replaceState(null, "", `?${new URLSearchParams(range.query())}`);
      $$(".chart-card").forEach((card) => delete card.dataset.ready);
      delete body.dataset.ready;
      try {
        const total = await BOARDS[board](window);
        $("#dashboard-summary").textContent = `${fmtNumber(total)} events from ${fmtTime(window.start)} to ${fmtTime(window.end)}.`;
        body.dataset.start = window.start;
        body.dataset.end = window.end;
        body.dataset.ready = "true";
      } catch (e) {
        setStatus(e.message, true);
      }
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      draw();
    });
    draw();
  }

  // --- start -------------------------------------------------------------------------------------

  const PAGES = {
    "sign-in": signInPage,
    integrations: integrationsPage,
    "integration-new": newIntegrationPage,
    integration: integrationPage,
    members: membersPage,
    alerts: alertsPage,
    events: explorerPage,
    "dashboard-signins": () => dashboardPage("signins"),
    "dashboard-items": () => dashboardPage("items"),
    "dashboard-audit": () => dashboardPage("audit"),
  };

  topBar();
  const start = PAGES[body.dataset.page];
  if (start) {
    Promise.resolve(start()).then(
      () => {
        body.dataset.loaded = "true";
      },
      (e) => setStatus(e.message || String(e), true),
    );
  }
})();
