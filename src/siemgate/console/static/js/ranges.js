/* The time-range control of the explorer and dashboards (templates/_range.html). */

import { $, $$, RANGES, known, unknownChoice } from "./core.js";

function toLocalInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** Wire the range select of _range.html; `read()` gives {start, end} as ISO strings; `refused` is
   the notice for a range in the address the select does not have ("" when none), which keeps its
   default. */
export function rangeControl(form, params) {
  const select = $("select[name=range]", form);
  const custom = $$(".custom-range", form);
  const from = $("input[name=from]", form);
  const to = $("input[name=to]", form);
  const asked = params.get("range");
  const takes = Boolean(asked) && (asked === "custom" || known(RANGES, asked) !== undefined);
  if (takes) select.value = asked;
  const refused = asked && !takes ? unknownChoice("time range", asked, select.selectedOptions[0].textContent.toLowerCase()) : "";
  if (select.value === "custom") {
    from.value = params.get("from") || "";
    to.value = params.get("to") || "";
  }
  const sync = () => {
    const isCustom = select.value === "custom";
    custom.forEach((label) => (label.hidden = !isCustom));
    if (isCustom && !from.value) {
      const now = new Date();
      to.value = toLocalInput(now);
      from.value = toLocalInput(new Date(now.getTime() - 86400 * 1000));
    }
  };
  select.addEventListener("change", sync);
  sync();
  return {
    refused,
    read() {
      if (select.value === "custom") {
        const start = new Date(from.value);
        const end = new Date(to.value);
        if (isNaN(start) || isNaN(end)) throw new Error("Enter both dates of the custom time range.");
        if (start > end) throw new Error("The start of the time range must be before its end.");
        return { start: start.toISOString(), end: end.toISOString() };
      }
      const end = new Date();
      return { start: new Date(end.getTime() - RANGES[select.value] * 1000).toISOString(), end: end.toISOString() };
    },
    query() {
      const q = { range: select.value };
      if (select.value === "custom") Object.assign(q, { from: from.value, to: to.value });
      return q;
    },
  };
}
