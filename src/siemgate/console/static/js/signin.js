/* The top bar (account switch, sign out). The sign-in page is in identity.js. */

import { $, PREFIX, api } from "./core.js";

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
