/* The Members page: who is in the account and their role. */

import { $, accountPath, apiAll, busy, fmtTime, h, setStatus, table } from "./core.js";

export async function membersPage() {
  const box = $("#members");
  try {
    const members = await apiAll(accountPath("/members"));
    box.replaceChildren(
      table(
        ["Name", "Email", "Role", "Joined", "Two-factor"],
        members.map((m) => h("tr", {}, h("td", {}, m.name), h("td", {}, m.email), h("td", {}, h("span", { class: "badge" }, m.role)), h("td", {}, fmtTime(m.joined_at)), h("td", {}, m.two_factor ? "Yes" : "No"))),
      ),
    );
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    busy(box, false);
  }
}
