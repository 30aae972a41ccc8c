/* The Alerts page: fired alerts and the rules with their status. */

import { $, accountPath, api, apiAll, busy, fmtNumber, fmtTime, h, setStatus, table } from "./core.js";

export async function alertsPage() {
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
