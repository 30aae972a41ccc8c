/* Identity: signing in (password, then the two-factor code), joining with an invitation code,
   your own security settings (two-factor, recovery codes, password), and the banner of the
   invitations waiting for you. */

import { $, PREFIX, api, fmtTime, h, setStatus, showError } from "./core.js";

function onSubmit(form, error, handler) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const button = $("button[type=submit]", form);
    button.disabled = true;
    try {
      await handler();
    } catch (e) {
      showError(error, e);
    } finally {
      button.disabled = false;
    }
  });
}

// --- sign in: password, then (for people with two-factor) the code -----------------------------

export function signInPage() {
  const form = $("#sign-in-form");
  const second = $("#second-factor-form");
  const next = form.dataset.next || `${PREFIX}/`;
  let challenge = null;
  onSubmit(form, $("#sign-in-error"), async () => {
    const email = form.email.value.trim();
    if (!email || !form.password.value) throw new Error("Enter your email and password.");
    try {
      const result = await api("POST", "/session", { email, password: form.password.value });
      if (result && result.second_factor_required) {
        challenge = result.challenge;
        form.hidden = true;
        second.hidden = false;
        second.code.focus();
        return;
      }
      location.assign(next);
    } finally {
      form.password.value = "";
    }
  });
  onSubmit(second, $("#second-factor-error"), async () => {
    const code = second.code.value.trim();
    second.code.value = "";
    if (!code) throw new Error("Enter the code from your authenticator app.");
    await api("POST", "/session/second-factor", { challenge, code });
    location.assign(next);
  });
}

export function joinPage() {
  const form = $("#join-form");
  onSubmit(form, $("#join-error"), async () => {
    await api("POST", "/join", {
      email: form.email.value.trim(),
      code: form.code.value.trim(),
      name: form.name.value.trim(),
      password: form.password.value,
    });
    location.assign(`${PREFIX}/`);
  });
}

// --- invitations waiting for the signed-in person ---------------------------------------------

export async function invitationBanner() {
  const main = $("#main");
  if (!main || !$("#sign-out")) return;
  const offers = await api("GET", "/me/invitations");
  for (const offer of offers) {
    const code = h("input", { name: "code", "aria-label": "Invitation code", placeholder: "sgv_…", autocomplete: "off" });
    const error = h("p", { class: "error", role: "alert", hidden: true });
    const answer = (verb) => async (event) => {
      event.preventDefault();
      error.hidden = true;
      try {
        await api("POST", `/me/invitations/${encodeURIComponent(offer.id)}/${verb}`, { code: code.value.trim() });
        location.assign(verb === "accept" ? `${PREFIX}/accounts/${encodeURIComponent(offer.account.uuid)}/integrations` : location.href);
      } catch (e) {
        showError(error, e);
      }
    };
    main.prepend(
      h(
        "section",
        { class: "card invitation", "aria-label": "Invitation" },
        h("p", {}, "You are invited to ", h("strong", {}, offer.account.name), ` as ${offer.role} (until ${fmtTime(offer.expires_at)}). `,
          "Enter the code you were given to answer. Once you join, the account's SIEM sees your console sign-ins."),
        h("form", { class: "inline" }, code,
          h("button", { type: "submit", class: "button primary", onclick: answer("accept") }, "Accept"),
          h("button", { type: "button", class: "button subtle", onclick: answer("decline") }, "Decline")),
        error,
      ),
    );
  }
}

// --- your security settings --------------------------------------------------------------------

function codesView(codes) {
  return h("div", {},
    h("p", {}, "Your recovery codes: each signs you in once if you lose your phone. They are shown only now."),
    h("pre", { class: "codes" }, codes.join("\n")));
}

async function drawTwoFactor() {
  const box = $("#two-factor-body");
  const status = await api("GET", "/me/two-factor");
  const password = () => h("input", { type: "password", name: "password", autocomplete: "current-password", "aria-label": "Your password", placeholder: "Your password" });
  if (status.enabled) {
    // Turning it off or new recovery codes take the password and a second factor: a stolen
    // session and a phished password are not enough.
    const pw = password();
    const code = h("input", { name: "code", autocomplete: "one-time-code", "aria-label": "Code from the app, or a recovery code", placeholder: "Code from the app, or a recovery code" });
    const error = h("p", { class: "error", role: "alert", hidden: true });
    const out = h("div", {});
    const run = (path, done) => async () => {
      error.hidden = true;
      try {
        if (!code.value.trim()) throw new Error("Enter a code from your authenticator app, or a recovery code.");
        done(await api("POST", path, { password: pw.value, code: code.value.trim() }));
      } catch (e) {
        showError(error, e);
      } finally {
        code.value = "";  // a code works once
      }
    };
    box.replaceChildren(
      h("p", {}, `On. ${status.recovery_codes_left} recovery code(s) left.`),
      pw,
      code,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "button", onclick: run("/me/two-factor/recovery-codes", (r) => out.replaceChildren(codesView(r.recovery_codes))) }, "New recovery codes"),
        h("button", { type: "button", class: "button danger", onclick: run("/me/two-factor/disable", () => drawTwoFactor()) }, "Turn off")),
      error,
      out,
    );
    return;
  }
  const start = h("button", { type: "button", class: "button primary" }, "Turn on");
  const error = h("p", { class: "error", role: "alert", hidden: true });
  start.addEventListener("click", async () => {
    const enrolment = await api("POST", "/me/two-factor");
    const code = h("input", { name: "code", inputmode: "numeric", autocomplete: "one-time-code", "aria-label": "Code from the app" });
    const pw = password();
    const confirm = h("button", { type: "button", class: "button primary" }, "Confirm");
    confirm.addEventListener("click", async () => {
      error.hidden = true;
      try {
        const result = await api("POST", "/me/two-factor/confirm", { code: code.value.trim(), password: pw.value });
        box.replaceChildren(h("p", {}, "Two-factor sign-in is on."), codesView(result.recovery_codes));
        setStatus("Two-factor sign-in is on.");
      } catch (e) {
        showError(error, e);
      }
    });
    box.replaceChildren(
      h("p", {}, "Add siemgate to your authenticator app with this key (or the link), then enter the code it shows and your password."),
      h("p", {}, h("code", { id: "totp-secret" }, enrolment.secret)),
      h("p", {}, h("a", { href: enrolment.otpauth_uri, id: "totp-uri" }, "Open in an authenticator app")),
      code, pw, confirm, error,
    );
  });
  box.replaceChildren(h("p", {}, "Off."), start, error);
}

async function drawRequirements() {
  const me = await api("GET", "/me");
  const owned = me.accounts.filter((a) => a.role === "owner");
  if (!owned.length) return;
  const rows = [];
  for (const account of owned) {
    const path = `/accounts/${encodeURIComponent(account.uuid)}/security`;
    const current = await api("GET", path);
    const box = h("input", { type: "checkbox", id: `require-${account.uuid}`, checked: current.require_two_factor });
    const error = h("span", { class: "error", role: "alert", hidden: true });
    box.addEventListener("change", async () => {
      error.hidden = true;
      try {
        await api("PUT", path, { require_two_factor: box.checked });
      } catch (e) {
        box.checked = !box.checked;
        showError(error, e);
      }
    });
    rows.push(h("p", {}, box, " ", h("label", { for: box.id }, `Require two-factor sign-in in ${account.name}`), " ", error));
  }
  $("#requirements-body").replaceChildren(...rows);
  $("#requirements").hidden = false;
}

export async function securityPage() {
  const form = $("#password-form");
  onSubmit(form, $("#password-error"), async () => {
    await api("PUT", "/me/password", { current_password: form.current.value, new_password: form.new.value });
    form.reset();
    setStatus("Password changed; your other sessions were signed out.");
  });
  $("#sign-out-everywhere").addEventListener("click", async () => {
    try {
      await api("DELETE", "/me/sessions");
      location.assign(`${PREFIX}/sign-in`);
    } catch (e) {
      showError($("#sessions-error"), e);
    }
  });
  await drawTwoFactor();
  $("#two-factor").setAttribute("aria-busy", "false");
  await drawRequirements();
}
