/* The Alerts page: fired alerts with the time of the activity and of the detection, their state
   (acknowledge, resolve, reopen), a link to the explorer showing their triggering events, filters
   by severity and state; and the rules with their status. */

import { $, MANAGER, accountPath, api, apiAll, busy, consolePath, fmtNumber, fmtTime, h, setStatus, table } from "./core.js";

const NEXT = { open: ["acknowledged", "resolved"], acknowledged: ["resolved", "open"], resolved: ["open"] };
const VERB = { acknowledged: "Acknowledge", resolved: "Resolve", open: "Reopen" };
const STATE_BADGE = { open: "expiring", acknowledged: "", resolved: "active" }; // the console's badge colours

/** The datetime-local text of an RFC 3339 time (the explorer's custom range reads local times). */
function localInput(text, roundUp) {
  const date = new Date(text);
  if (roundUp) date.setSeconds(date.getSeconds() + 1);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** The explorer, filtered to an alert's triggering events (their stream, time span and actor). */
function explorerLink(alert) {
  const view = alert.explorer;
  if (!view) return "";
  const q = new URLSearchParams({ feature: view.feature, range: "custom", from: localInput(view.start, false), to: localInput(view.end, true) });
  if (view.actor) q.set("actor", view.actor);
  const n = alert.events.length;
  return h("a", { href: consolePath(`/events?${q}`), "aria-label": `Show the ${n} triggering event${n === 1 ? "" : "s"} of this alert in the explorer` }, `${n} event${n === 1 ? "" : "s"}`);
}

function stateCell(alert, reload) {
  const label = h("span", { class: `badge ${STATE_BADGE[alert.state]}` }, alert.state);
  const who = alert.state_by ? h("div", { class: "muted" }, `${alert.state_by}, ${fmtTime(alert.state_at)}`) : "";
  const buttons = (MANAGER ? NEXT[alert.state] : []).map((state) => {
    const button = h("button", { type: "button", class: "button small", "aria-label": `${VERB[state]} the alert “${alert.summary}”` }, VERB[state]);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await api("PATCH", accountPath(`/alerts/${encodeURIComponent(alert.id)}`), { state });
        setStatus(`Alert ${state}.`);
        await reload();
      } catch (e) {
        setStatus(e.message, true);
        button.disabled = false;
      }
    });
    return button;
  });
  return h("td", {}, label, who, buttons.length ? h("div", { class: "actions" }, buttons) : "");
}

export async function alertsPage() {
  const alertsBox = $("#alerts");
  const rulesBox = $("#rules");
  const form = $("#alert-filters");

  const loadAlerts = async () => {
    const q = new URLSearchParams({ limit: "50" });
    for (const name of ["severity", "state"]) if (form.elements[name].value) q.set(name, form.elements[name].value);
    busy(alertsBox, true);
    try {
      const alerts = await api("GET", accountPath(`/alerts?${q}`));
      alertsBox.replaceChildren(
        alerts.items.length
          ? table(
              ["Activity", "Detected", "Rule", "Severity", "Summary", "Events", "State"],
              alerts.items.map((a) =>
                h(
                  "tr",
                  { dataset: { alert: a.id } },
                  h("td", { class: "time" }, h("time", { datetime: a.event_time }, fmtTime(a.event_time))),
                  h("td", { class: "time" }, h("time", { datetime: a.detected_at }, fmtTime(a.detected_at))),
                  h("td", {}, a.rule_name, h("div", { class: "muted" }, `version ${a.rule_version}`)),
                  h("td", {}, h("span", { class: `badge ${a.severity}` }, a.severity)),
                  h("td", {}, a.summary),
                  h("td", {}, explorerLink(a)),
                  stateCell(a, loadAlerts),
                ),
              ),
            )
          : h("p", { class: "muted empty" }, form.elements.severity.value || form.elements.state.value ? "No alerts match these filters." : "No alerts have fired."),
      );
    } finally {
      busy(alertsBox, false);
    }
  };

  form.addEventListener("change", () => loadAlerts().catch((e) => setStatus(e.message, true)));
  form.addEventListener("submit", (event) => event.preventDefault());
  try {
    const [rules] = await Promise.all([apiAll(accountPath("/alert-rules")), loadAlerts()]);
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
