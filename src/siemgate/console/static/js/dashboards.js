/* The three dashboards, drawn with Chart.js from the stats endpoint. */

import { $, $$, body, consolePath, country, fmtNumber, fmtTime, h, known, setStatus, stats, table } from "./core.js";
import { facetLabel } from "./labels.js";
import { rangeControl } from "./ranges.js";

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
    const rest = sorted.splice(top);
    sorted.push(["other", rest.reduce((sum, [, n]) => sum + n, 0), rest.length]);
  }
  return sorted;
}

/** Long category labels (emails, vault ids) cut to fit; the tooltip shows them whole. */
function shortLabel(value) {
  const text = String(this.getLabelForValue(value));
  return text.length > 28 ? `${text.slice(0, 27)}…` : text;
}

let explorerRange = {};

/** The explorer, showing the events behind a bar: the stream, the dashboard's range, the filter. */
function explorerUrl(feature, filter) {
  const q = new URLSearchParams({ feature, ...explorerRange, ...filter });
  return consolePath(`/events?${q}`);
}

/** A horizontal bar per key, every label shown; "other" (the keys past the top ten) is not a bar
   but a note under the chart, so it cannot dwarf them. A bar opens the explorer filtered to it. */
function barChart(id, entries, { label, color = PALETTE[0], name = (k) => k ?? "unknown", feature, facet }) {
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  const other = entries.find(([k, , more]) => k === "other" && more !== undefined);
  const bars = entries.filter((e) => e !== other);
  const canvas = document.getElementById(id);
  const link = (key) => (feature && facet && key !== null && key !== undefined ? explorerUrl(feature, { [facet]: key }) : null);
  canvas.dataset.links = JSON.stringify(bars.map(([k]) => link(k)));
  drawChart(
    id,
    {
      type: "bar",
      data: { labels: bars.map(([k]) => name(k)), datasets: [{ label, data: bars.map(([, n]) => n), backgroundColor: color }] },
      options: baseOptions({
        indexAxis: "y",
        plugins: { legend: { display: false } },
        scales: { y: { ticks: { callback: shortLabel, autoSkip: false } }, x: { beginAtZero: true, ticks: { precision: 0 } } },
        onHover: (event, elements) => (event.native.target.style.cursor = elements.length && link(bars[elements[0].index][0]) ? "pointer" : "default"),
        onClick: (event, elements) => {
          const target = elements.length ? link(bars[elements[0].index][0]) : null;
          if (target) location.assign(target);
        },
      }),
    },
    total,
  );
  const box = canvas.parentElement;
  let note = $(".chart-note", box.parentElement);
  if (!note) {
    note = h("p", { class: "chart-note muted" });
    box.after(note);
  }
  note.textContent = other ? `Not shown: ${fmtNumber(other[2])} more with ${fmtNumber(other[1])} events in all.` : "";
  if (feature && facet) note.append(bars.length ? " Choose a bar to see its events." : "");
}

function doughnut(id, entries, colors = {}, name = (k) => k) {
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  drawChart(
    id,
    {
      type: "doughnut",
      data: {
        labels: entries.map(([k]) => (k === null || k === undefined ? "unknown" : k === "other" ? "other" : name(k))),
        datasets: [{ data: entries.map(([, n]) => n), backgroundColor: entries.map(([k], i) => known(colors, k) || PALETTE[i % PALETTE.length]) }],
      },
      options: baseOptions({ plugins: { legend: { position: "right" } } }),
    },
    total,
  );
}

/** A stacked bar chart of a stats reply with interval and group_by=[facet], every bucket shown. */
function overTime(id, result, facet, colors = {}, top = 6, feature = null) {
  const words = (key) => (feature && key !== "other" && key !== "unknown" ? facetLabel(feature, facet, key) || key : key);
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
    .map(([key, data], i) => ({ label: words(key), data, backgroundColor: known(colors, key) || PALETTE[i % PALETTE.length], stack: "all" }));
  drawChart(
    id,
    {
      type: "bar",
      data: { labels: buckets.map(label), datasets },
      options: baseOptions({ scales: { x: { stacked: true, ticks: { maxRotation: 0, autoSkipPadding: 12 } }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } }),
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
    overTime("chart-over-time", overall, "kind", CATEGORY_COLORS, 8, "signinattempts");
    const f = "signinattempts";
    barChart("chart-fail-type", tally(byType.rows, (r) => (isFailure(r.kind) ? r.detail : undefined)), { label: "Failures", color: "#dc2626", feature: f, facet: "detail", name: (k) => facetLabel(f, "detail", k) || "unknown" });
    barChart("chart-fail-country", tally(byCountry.rows, (r) => (isFailure(r.kind) ? r.country : undefined)), { label: "Failures", color: "#f59e0b", name: (k) => country(k), feature: f, facet: "country" });
    barChart("chart-fail-user", tally(byUser.rows, (r) => (isFailure(r.kind) ? r.actor : undefined)), { label: "Failures", color: "#7c3aed", feature: f, facet: "actor" });
    countryTable(countries, byCountry.rows);
    return overall.total;
  },
  async items(window) {
    const [overall, byVault, byUser] = await Promise.all([
      stats("itemusages", { ...window, group_by: "kind", interval: "auto", limit: 5000 }),
      stats("itemusages", { ...window, group_by: "detail", limit: 10 }),
      stats("itemusages", { ...window, group_by: "actor", limit: 10 }),
    ]);
    overTime("chart-over-time", overall, "kind", {}, 6, "itemusages");
    doughnut("chart-by-action", tally(overall.rows, (r) => r.kind, 50), {}, (k) => facetLabel("itemusages", "kind", k)); // the over-time rows, summed
    barChart("chart-by-vault", byVault.rows.map((r) => [r.detail, r.count]), { label: "Item usages", color: "#0891b2", feature: "itemusages", facet: "detail" });
    barChart("chart-by-user", byUser.rows.map((r) => [r.actor, r.count]), { label: "Item usages", feature: "itemusages", facet: "actor" });
    return overall.total;
  },
  async audit(window) {
    const [overall, byActor, byObject] = await Promise.all([
      stats("auditevents", { ...window, group_by: "kind", interval: "auto", limit: 5000 }),
      stats("auditevents", { ...window, group_by: "actor", limit: 10 }),
      stats("auditevents", { ...window, group_by: "detail", limit: 10 }),
    ]);
    overTime("chart-over-time", overall, "kind", {}, 6, "auditevents");
    barChart("chart-by-actor", byActor.rows.map((r) => [r.actor, r.count]), { label: "Audit events", color: "#7c3aed", name: (k) => k ?? "siemgate (system)", feature: "auditevents", facet: "actor" });
    barChart("chart-by-action", tally(overall.rows, (r) => r.kind, 15), { label: "Audit events", feature: "auditevents", facet: "kind", name: (k) => facetLabel("auditevents", "kind", k) || "unknown" }); // summed buckets
    doughnut("chart-by-object", byObject.rows.map((r) => [r.detail, r.count]), {}, (k) => facetLabel("auditevents", "detail", k));
    return overall.total;
  },
};

// Headline numbers of each board, with the change against the period just before.
const HEADLINES = {
  signins: { feature: "signinattempts", tiles: [["events", "Sign-in attempts"], ["failures", "Failures"], ["failure_rate", "Failure rate"], ["users", "Unique users"]] },
  items: { feature: "itemusages", tiles: [["events", "Item usages"], ["users", "Unique users"], ["vaults", "Vaults used"]] },
  audit: { feature: "auditevents", tiles: [["events", "Audit events"], ["users", "People who made changes"]] },
};

async function figures(feature, w) {
  const [kinds, actors, details] = await Promise.all([
    stats(feature, { ...w, group_by: "kind", limit: 5000 }),
    stats(feature, { ...w, group_by: "actor", limit: 5000 }),
    feature === "itemusages" ? stats(feature, { ...w, group_by: "detail", limit: 5000 }) : { rows: [] },
  ]);
  const failures = kinds.rows.filter((r) => isFailure(r.kind)).reduce((sum, r) => sum + r.count, 0);
  return {
    events: kinds.total,
    failures,
    failure_rate: kinds.total ? failures / kinds.total : 0,
    users: actors.rows.filter((r) => r.actor).length,
    vaults: details.rows.filter((r) => r.detail).length,
  };
}

async function headline(board, w) {
  const { feature, tiles } = HEADLINES[board];
  const length = Date.parse(w.end) - Date.parse(w.start);
  const before = { start: new Date(Date.parse(w.start) - length).toISOString(), end: new Date(Date.parse(w.start) - 1).toISOString() };
  const [now, then] = await Promise.all([figures(feature, w), figures(feature, before)]);
  const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });
  const show = (metric, v) => (metric === "failure_rate" ? percent.format(v) : fmtNumber(v));
  const change = (metric) => {
    const [a, b] = [now[metric], then[metric]];
    if (metric === "failure_rate") {
      const points = Math.round((a - b) * 1000) / 10;
      return points === 0 ? "no change vs the previous period" : `${points > 0 ? "▲" : "▼"} ${Math.abs(points)} points vs the previous period`;
    }
    if (!b) return a ? "none in the previous period" : "none in either period";
    const rel = Math.round(((a - b) / b) * 1000) / 10;
    return rel === 0 ? "no change vs the previous period" : `${rel > 0 ? "▲" : "▼"} ${Math.abs(rel)}% vs the previous period (${show(metric, b)})`;
  };
  $("#headline").replaceChildren(
    ...tiles.map(([metric, label]) =>
      h(
        "div",
        { class: "headline-tile", dataset: { metric, value: now[metric], previous: then[metric] } },
        h("span", { class: "headline-label" }, label),
        h("strong", { class: "headline-value" }, show(metric, now[metric])),
        h("span", { class: "headline-change muted" }, change(metric)),
      ),
    ),
  );
  $("#headline").dataset.previousStart = before.start;
  $("#headline").dataset.previousEnd = before.end;
}

export function dashboardPage(board) {
  const params = new URLSearchParams(location.search);
  const form = $("#dashboard-range");
  const range = rangeControl(form, params);
  let notice = range.refused; // shown by the first drawing
  const draw = async () => {
    let window;
    try {
      window = range.read();
    } catch (e) {
      setStatus(e.message, true);
      return;
    }
    setStatus(notice);
    notice = "";
    history.replaceState(null, "", `?${new URLSearchParams(range.query())}`);
    $$(".chart-card").forEach((card) => delete card.dataset.ready);
    delete body.dataset.ready;
    explorerRange = range.query();
    try {
      const [total] = await Promise.all([BOARDS[board](window), headline(board, window)]);
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
