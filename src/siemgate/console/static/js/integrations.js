/* Integrations: the list and gallery, the add flow, an integration's details and its tokens. */

import {
  $,
  $$,
  FEATURES,
  MANAGER,
  PREFIX,
  accountPath,
  api,
  apiAll,
  ask,
  badge,
  busy,
  consolePath,
  fmtNumber,
  fmtTime,
  h,
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
