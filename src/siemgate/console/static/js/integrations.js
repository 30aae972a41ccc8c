/* Integrations: the list and gallery, the add flow, an integration's details and its tokens. */

import {
  $,
  $$,
  FEATURES,
  FieldError,
  MANAGER,
  PREFIX,
  accountPath,
  api,
  apiAll,
  ask,
  badge,
  busy,
  consolePath,
  fmtDuration,
  fmtNumber,
  fmtTime,
  h,
  healthView,
  icon,
  setStatus,
  showError,
} from "./core.js";

export async function integrationsPage() {
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
        const health = healthView(i.health);
        const link = consolePath(`/integrations/${i.uuid}`);
        const finish = MANAGER && !own.length ? h("a", { href: link, class: "finish" }, "Finish setting up: issue its token") : null;
        return h(
          "tr",
          { dataset: { integration: i.uuid, health: i.health.state } },
          h("td", {}, h("span", { class: "name-cell" }, icon(i.type, 28), h("a", { href: link }, i.name))),
          h("td", {}, names[i.type] || i.type),
          h("td", { class: "health" }, h("span", { class: `badge ${health.kind}` }, health.label), health.note ? h("div", { class: "muted" }, health.note) : null, finish),
          h("td", { class: "num" }, `${active} active`, own.length > active ? h("span", { class: "muted" }, ` / ${own.length}`) : null),
          h("td", {}, fmtTime(i.created_at)),
        );
      });
      list.replaceChildren(
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["Name", "SIEM", "Health", "Tokens", "Created"].map((label) => h("th", { scope: "col", class: label === "Tokens" ? "num" : null }, label)))),
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

const EXPIRY_UNITS = { min: 60, h: 3600, d: 86400, w: 7 * 86400, mo: 30 * 86400 }; // as model/durations.py
const MAX_EXPIRY_SECONDS = 36500 * 86400; // MAX_EXPIRY_NS there

/** A token expiry in seconds (null: never), parsed as the server does; throws Error saying what to write. */
function parseExpiry(text) {
  const value = text.trim().toLowerCase();
  if (value === "never" || value === "none") return null;
  const ambiguous = /^([0-9]+)\s*m$/.exec(value);
  if (ambiguous) throw new Error(`“${text.trim()}” could be minutes or months: write ${ambiguous[1]}min for minutes or ${ambiguous[1]}mo for months.`);
  const match = /^([0-9]+)\s*(min|mo|h|d|w)$/.exec(value);
  if (!match || Number(match[1]) === 0) throw new Error(`“${text.trim()}” is not an expiry. Write a number and a unit, e.g. 45d, 2w, 3mo, 12h or 30min.`);
  const seconds = Number(match[1]) * EXPIRY_UNITS[match[2]];
  if (seconds > MAX_EXPIRY_SECONDS) throw new Error(`“${text.trim()}” is longer than 36500d (100 years), the longest expiry; choose Never for no expiry.`);
  return seconds;
}

/** The expiry chosen in a _token_form.html form, as sent to the API ("90d", "never", "45d"). */
function chosenExpiry(form) {
  const expires = $("input[name=expires]:checked", form).value;
  if (expires !== "custom") return expires;
  const custom = $("input[name=custom-expires]", form).value.trim();
  if (!custom) throw new FieldError("custom-expires", "Enter a custom expiry such as 45d, 3mo or 12h.");
  try {
    parseExpiry(custom);
  } catch (e) {
    throw new FieldError("custom-expires", e.message);
  }
  return custom;
}

/** The values of a _token_form.html form; throws Error with what to fix. */
function tokenFormValue(form) {
  const name = $(".token-name", form).value.trim();
  if (!name) throw new FieldError("token-name", "Give the token a name, e.g. the SIEM host that will use it.");
  const expires = chosenExpiry(form);
  const features = $$("input[name=features]:checked", form).map((box) => box.value);
  if (!features.length) throw new Error("Choose at least one event type.");
  return { name, expires, features };
}

/** The date the chosen expiry gives, shown as it is chosen or typed. */
function previewExpiry(form) {
  const preview = $(".expiry-preview", form);
  try {
    const seconds = parseExpiry(chosenExpiry(form));
    preview.classList.remove("error");
    if (seconds === null) {
      preview.textContent = "Never expires: the token works until it is revoked.";
      return;
    }
    const date = new Date(Date.now() + seconds * 1000);
    const when = date.toLocaleString(undefined, { weekday: "short", year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    preview.textContent = `Expires ${when} (in ${fmtDuration(seconds)}).`;
    preview.dataset.expiresAt = date.toISOString();
  } catch (e) {
    preview.classList.add("error");
    preview.textContent = e.message;
    delete preview.dataset.expiresAt;
  }
}

function wireTokenForm(form, onSubmit) {
  const custom = $("input[name=custom-expires]", form);
  $$("input[name=expires]", form).forEach((radio) =>
    radio.addEventListener("change", () => {
      custom.disabled = $("input[name=expires]:checked", form).value !== "custom";
      if (!custom.disabled) custom.focus();
      previewExpiry(form);
    }),
  );
  custom.addEventListener("input", () => previewExpiry(form));
  previewExpiry(form);
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

/** The public address and what stops this SIEM from using it (shown before a token is issued). */
function addressWarnings(warnings) {
  if (!warnings.length) return [];
  return [
    h(
      "div",
      { class: "warning address-warnings", role: "alert" },
      h("strong", {}, "Fix this before issuing a token:"),
      h("ul", {}, warnings.map((text) => h("li", {}, text))),
    ),
  ];
}

function guideView(guide) {
  return [
    ...addressWarnings(guide.warnings),
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

export async function newIntegrationPage() {
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
  $("#address").replaceChildren(
    h("p", {}, "SIEMs reach siemgate at ", h("code", { class: "base-url" }, siem.base_url), " (SIEMGATE_PUBLIC_URL)."),
    ...addressWarnings(siem.warnings),
  );
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
  // Nothing is created until the token is issued: leaving at step 2 leaves no half-made
  // integration behind. Should issuing fail after the integration was made, it is deleted again
  // (an integration without a token is not what was asked for); should that fail too, the message
  // says the integration is there and issuing again reuses it.
  let integration = null;
  let chosen = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $(".error", form);
    error.hidden = true;
    nameInput.removeAttribute("aria-invalid");
    try {
      const name = form.name.value.trim();
      if (!name) throw new Error("Give the integration a name, e.g. “Splunk production”.");
      const existing = (await apiAll(accountPath("/integrations"))).find((i) => i.name.toLowerCase() === name.toLowerCase());
      if (existing && (!integration || existing.uuid !== integration.uuid)) {
        nameInput.setAttribute("aria-invalid", "true");
        error.replaceChildren(
          `An integration named “${existing.name}” already exists. Choose another name, or `,
          h("a", { href: consolePath(`/integrations/${existing.uuid}`) }, "open it"),
          ".",
        );
        error.hidden = false;
        nameInput.focus();
        return;
      }
      chosen = { type, name, description: form.description.value.trim() };
      $("#step-2 .token-name").value = `${name} token`;
      step(2);
      $("#step-2 .token-name").focus();
    } catch (e) {
      showError(error, e);
    }
  });
  $("#back-to-name").addEventListener("click", () => {
    step(1);
    nameInput.focus();
  });
  const undo = async (error) => {
    try {
      await api("DELETE", accountPath(`/integrations/${integration.uuid}`));
      integration = null;
      error.message = `${error.message} Nothing was created; issue the token again once that is fixed.`;
    } catch {
      error.message = `${error.message} The integration “${integration.name}” was created without a token; issuing again uses it.`;
    }
    return error;
  };
  wireTokenForm($("#step-2 form"), async (value) => {
    if (!integration) integration = await api("POST", accountPath("/integrations"), chosen);
    else if (integration.name !== chosen.name) integration = await api("PATCH", accountPath(`/integrations/${integration.uuid}`), { name: chosen.name });
    let issued;
    try {
      issued = await api("POST", accountPath(`/integrations/${integration.uuid}/tokens`), value);
    } catch (e) {
      throw await undo(e);
    }
    const details = await api("GET", accountPath(`/integrations/${integration.uuid}`));
    step(3);
    revealToken($("#step-3"), issued, details.connection_guide);
    $("#to-details").href = consolePath(`/integrations/${integration.uuid}`);
  });
}

export async function integrationPage() {
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
    const health = healthView(details.health);
    $("#integration-health").replaceChildren(h("span", { class: `badge ${health.kind}` }, health.label), health.note ? ` ${health.note}` : "");
    if (!details.tokens.length) {
      tokensBox.replaceChildren(h("p", { class: "muted empty" }, "No tokens. Issue one to connect this SIEM."));
      return;
    }
    const live = details.tokens.filter((t) => t.status === "active" || t.status === "expiring");
    const gone = details.tokens.filter((t) => !live.includes(t));
    const byId = Object.fromEntries(details.tokens.map((t) => [t.id, t]));
    const replacedBy = Object.fromEntries(details.tokens.filter((t) => t.replaces).map((t) => [t.replaces, t]));
    const lagLine = (s) => {
      const title = `${FEATURES[s.feature].title}: `;
      if (s.behind_seconds === null) return h("div", {}, title, h("span", { class: "muted" }, "never read"));
      if (!s.events_behind) return h("div", {}, title, "up to date");
      return h("div", {}, title, `${fmtDuration(s.behind_seconds)} behind`, h("span", { class: "muted" }, ` (${fmtNumber(s.events_behind)} events)`));
    };
    const liveRow = (t) => {
      const retiring = Boolean(t.revoke_at);
      const actions =
        MANAGER && !retiring
          ? [
              h("button", { type: "button", class: "button small", onclick: () => rotate(t) }, "Rotate"),
              h("button", { type: "button", class: "button small danger-outline", onclick: () => revoke(t) }, "Revoke"),
            ]
          : MANAGER
            ? [h("button", { type: "button", class: "button small danger-outline", onclick: () => revoke(t) }, "Revoke")]
            : [];
      const note = retiring
        ? `until its replacement is first used, at the latest ${fmtTime(t.revoke_at)}`
        : t.replaces
          ? `replacement of the token issued ${fmtTime((byId[t.replaces] || {}).created_at)}`
          : `issued ${fmtTime(t.created_at)}`;
      return h(
        "tr",
        { dataset: { token: t.id } },
        h("td", {}, h("strong", {}, t.name), h("div", { class: "muted" }, note)),
        h("td", {}, t.features.map((f) => h("div", {}, FEATURES[f].title))),
        h("td", {}, retiring ? h("span", { class: "badge expiring" }, "Retiring") : badge(t.status), replacedBy[t.id] && !retiring ? h("div", { class: "muted" }, "replaced") : null),
        h("td", {}, t.expires_at ? fmtTime(t.expires_at) : "Never"),
        h("td", {}, t.last_used_at ? fmtTime(t.last_used_at) : h("span", { class: "muted" }, "Never")),
        h("td", {}, t.streams.map(lagLine)),
        h("td", { class: "row-actions" }, actions),
      );
    };
    const goneRow = (t) => {
      const when = t.status === "expired" ? t.expires_at : t.revoked_at || t.revoke_at;
      const why = t.status === "expired" ? "Expired" : t.revoked_by ? `Revoked by ${t.revoked_by}` : replacedBy[t.id] ? "Replaced by its rotation" : "Revoked";
      return h(
        "tr",
        { dataset: { token: t.id } },
        h("td", {}, h("strong", {}, t.name), h("div", { class: "muted" }, `issued ${fmtTime(t.created_at)}`)),
        h("td", {}, t.features.map((f) => h("div", {}, FEATURES[f].title))),
        h("td", {}, badge(t.status)),
        h("td", {}, why, h("div", { class: "muted" }, fmtTime(when))),
        h("td", {}, t.last_used_at ? fmtTime(t.last_used_at) : h("span", { class: "muted" }, "Never")),
      );
    };
    const head = (labels) => h("thead", {}, h("tr", {}, labels.map((label) => h("th", { scope: "col" }, label))));
    const parts = [];
    parts.push(
      live.length
        ? h("table", { class: "tokens", id: "live-tokens" }, head(["Name", "Event types", "Status", "Expires", "Last used", "Consumer lag", "Actions"]), h("tbody", {}, live.map(liveRow)))
        : h("p", { class: "muted empty" }, "No active token: the SIEM receives nothing. Issue a token to reconnect it."),
    );
    if (gone.length) {
      parts.push(
        h(
          "details",
          { class: "gone-tokens" },
          h("summary", {}, `Revoked and expired tokens (${gone.length})`),
          h("table", { class: "tokens", id: "gone-tokens" }, head(["Name", "Event types", "Status", "When", "Last used"]), h("tbody", {}, gone.map(goneRow))),
        ),
      );
    }
    tokensBox.replaceChildren(...parts);
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
