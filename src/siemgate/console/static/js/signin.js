/* The top bar (account switch, sign out) and the sign-in page. */

import { $, PREFIX, api, showError } from "./core.js";

export function topBar() {
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

export function signInPage() {
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
