/* The event explorer: the three streams newest first, filters, paging, JSON and exports. */

import { $, $$, API, FEATURES, FILTERS, accountPath, api, busy, country, fmtNumber, fmtTime, h, known, setStatus, stats, unknownChoice } from "./core.js";
import { facetLabel, sentence } from "./labels.js";
import { rangeControl } from "./ranges.js";

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

export function explorerPage() {
  const params = new URLSearchParams(location.search);
  const form = $("#filters");
  const tbody = $("#events-table tbody");
  const more = $("#load-more");
  const range = rangeControl(form, params);
  // known(): a name every object has ("constructor", "__proto__", "toString") is no feature
  const asked = params.get("feature");
  let feature = known(FEATURES, asked) ? asked : "signinattempts";
  let notice = [asked && asked !== feature ? unknownChoice("feature", asked, FEATURES[feature].title.toLowerCase()) : "", range.refused]
    .filter(Boolean)
    .join(" "); // shown by the first search
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
    q.set("match", "forgiving"); // case-insensitive; the person contains, the country starts with the text
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
        h("td", {}, h("div", { class: "sentence" }, sentence(feature, event)), h("div", { class: "actor muted" }, actor)),
        h("td", { dataset: { code: kind || "" }, title: kind || "" }, facetLabel(feature, "kind", kind)),
        h("td", { class: detail && detail.length > 20 ? "mono" : "", dataset: { code: detail || "" }, title: detail || "" }, facetLabel(feature, "detail", detail)),
        h("td", { dataset: { code: where || "" } }, where ? country(where) : ""),
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
    const result = await stats(feature, { ...Object.fromEntries(query), interval: "auto", limit: 5000 });
    if (mine !== generation) return;
    $("#result-summary").textContent = `${fmtNumber(result.total)} ${FEATURES[feature].title.toLowerCase()} match.`;
    histogram(result);
  };

  /** The matching events over the window, one bar per bucket (heights set through the CSSOM). */
  const histogram = (result) => {
    const size = result.interval_seconds * 1000;
    const first = Math.floor(Date.parse(result.start) / size) * size;
    const last = Math.floor(Date.parse(result.end) / size) * size;
    const counts = new Map(result.rows.map((r) => [Date.parse(r.bucket), r.count]));
    const buckets = [];
    for (let t = first; t <= last; t += size) buckets.push([t, counts.get(t) || 0]);
    const max = Math.max(1, ...buckets.map(([, n]) => n));
    const box = $("#histogram");
    box.replaceChildren(
      ...buckets.map(([t, n]) =>
        h("span", { class: "hist-bar", title: `${fmtTime(new Date(t).toISOString())}: ${fmtNumber(n)}`, dataset: { count: n, height: Math.round((100 * n) / max) } }),
      ),
    );
    $$(".hist-bar", box).forEach((bar) => (bar.style.height = `${Math.max(Number(bar.dataset.count) ? 4 : 0, Number(bar.dataset.height))}%`));
    box.setAttribute("aria-label", `Matching events over time: ${buckets.length} bars of ${result.interval_seconds / 60} minutes, at most ${fmtNumber(max)}`);
    box.dataset.total = String(buckets.reduce((sum, [, n]) => sum + n, 0));
  };

  const fillChoices = async (mine) => {
    const q = Object.fromEntries(new URLSearchParams(range.read()));
    const [kinds, details, apps, actors, countries] = await Promise.all([
      stats(feature, { ...q, group_by: "kind", limit: 100 }),
      stats(feature, { ...q, group_by: "detail", limit: 50 }),
      FEATURES[feature].app ? stats(feature, { ...q, group_by: "app", limit: 50 }) : { rows: [] },
      stats(feature, { ...q, group_by: "actor", limit: 200 }),
      stats(feature, { ...q, group_by: "country", limit: 100 }),
    ]);
    if (mine !== generation) return;
    const select = form.elements.kind;
    const chosen = select.value || (new URLSearchParams(query).get("kind") || "");
    const values = kinds.rows.filter((r) => r.kind).map((r) => r.kind);
    if (chosen && !values.includes(chosen)) values.push(chosen);
    const label = (v) => facetLabel(feature, "kind", v);
    values.sort((a, b) => label(a).localeCompare(label(b)));
    select.replaceChildren(h("option", { value: "" }, "Any"), ...values.map((v) => h("option", { value: v }, label(v) === v ? v : `${label(v)} (${v})`)));
    select.value = chosen;
    // Suggestions from the data: each with its words, the code as the value sent.
    $("#detail-values").replaceChildren(...details.rows.filter((r) => r.detail).map((r) => h("option", { value: r.detail, label: facetLabel(feature, "detail", r.detail) })));
    $("#app-values").replaceChildren(...apps.rows.filter((r) => r.app).map((r) => h("option", { value: r.app })));
    $("#actor-values").replaceChildren(...actors.rows.filter((r) => r.actor).map((r) => h("option", { value: r.actor })));
    $("#country-values").replaceChildren(...countries.rows.filter((r) => r.country).map((r) => h("option", { value: r.country, label: country(r.country) })));
  };

  const search = async () => {
    const mine = ++generation;
    setStatus(notice);
    notice = "";
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
