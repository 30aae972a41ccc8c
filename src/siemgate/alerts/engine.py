"""Rule evaluation: events in, firings out, with the state that makes windows, first-seen and
suppression work. Pure: no I/O; the caller loads and saves the state (alerts.evaluator).

Semantics (docs/alerts.md, "Evaluation"):

- Time is the event's own timestamp, so a replay (`siemgate alerts test`) fires exactly as live
  evaluation did; for the `tokens` source it is the time of the check.
- threshold: per group (the `group_by` values), the matching events' times are kept while they
  are within `window` of the group's newest; when `count` of them fall within one `window`, the
  rule fires for those events and the group's window starts empty again.
- first_seen: per key, the value combinations seen so far are kept (at most `max_values`, oldest
  dropped); a new combination fires, except a key's very first one unless `alert_on_first`.
  Events missing a key or value field are ignored.
- suppress: after a firing, later firings with the same `by` values and an event time before
  the firing's time + `for` are suppressed (counted, not fired). Window and first-seen state keep
  being updated while suppressed.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from siemgate.alerts.fields import MISSING, get_path
from siemgate.alerts.model import CompiledRule
from siemgate.model.timestamps import TimestampError, format_ns, parse_ns
from siemgate.store.base import AlertStateEntry

MAX_EVENT_REFS = 50
WINDOW, SEEN, SUPPRESS = "window", "seen", "suppress"
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.]+)\}")


@dataclass
class Firing:
    """One alert a rule fired: the triggering event, the group, and references to its events."""

    rule: CompiledRule
    event_ts: int
    group: dict[str, Any]
    count: int
    events: list[dict[str, Any]]  # {"uuid", "timestamp", "seq"} of the events it fired on
    event: dict[str, Any]  # the event that completed the condition
    summary: str


@dataclass
class StateBook:
    """Evaluation state of one account's rules, with the keys changed since the last `changes()`."""

    windows: dict[tuple[str, str], list[list[Any]]] = field(default_factory=dict)  # [ts, uuid, seq]
    seen: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    suppress: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)  # until, suppressed
    window_ns: dict[str, int] = field(default_factory=dict)
    dirty: set[tuple[str, str, str]] = field(default_factory=set)

    @classmethod
    def load(cls, entries: Iterable[AlertStateEntry], horizon: int | None = None) -> StateBook:
        """State from stored entries. Expiry is in event time: an entry is dropped (and deleted on
        the next commit) only when it expired before `horizon`, the oldest event time that is still
        evaluated (events older than that are not), so no event that could extend it can come."""
        book = cls()
        for entry in entries:
            key = (entry.rule_id, entry.key)
            if horizon is not None and entry.expires_at is not None and entry.expires_at < horizon:
                book.dirty.add((entry.rule_id, entry.kind, entry.key))
                continue
            value = orjson.loads(entry.value)
            if entry.kind == WINDOW:
                book.windows[key] = value
            elif entry.kind == SEEN:
                book.seen[key] = value
            elif entry.kind == SUPPRESS:
                book.suppress[key] = value
        return book

    def forget_rule(self, rule_id: str) -> None:
        for store, kind in ((self.windows, WINDOW), (self.seen, SEEN), (self.suppress, SUPPRESS)):
            for key in [k for k in store if k[0] == rule_id]:
                del store[key]
                self.dirty.add((rule_id, kind, key[1]))

    def changes(self) -> list[AlertStateEntry]:
        """Entries for every changed key (an empty value deletes it); clears the change set."""
        out = []
        for rule_id, kind, key in sorted(self.dirty):
            value: Any = None
            expires: int | None = None
            if kind == WINDOW:
                value = self.windows.get((rule_id, key))
                if value:
                    expires = value[-1][0] + self.window_ns.get(rule_id, 0)
            elif kind == SEEN:
                value = self.seen.get((rule_id, key))
            elif kind == SUPPRESS:
                value = self.suppress.get((rule_id, key))
                if value:
                    expires = value["until"]
            text = orjson.dumps(value).decode() if value else ""
            out.append(AlertStateEntry(rule_id, kind, key, text, expires))
        self.dirty.clear()
        return out


def _key(event: Mapping[str, Any], fields: Sequence[str]) -> tuple[str, list[Any]]:
    """(JSON key, values) of the fields; values absent are null."""
    values = [get_path(event, f) for f in fields]
    values = [None if v is MISSING else v for v in values]
    return orjson.dumps(values).decode(), values


def event_time(event: Mapping[str, Any]) -> int | None:
    try:
        return parse_ns(event.get("timestamp"))
    except TimestampError:
        return None


def render(template: str, event: Mapping[str, Any], count: int) -> str:
    """Fill {field.path} and {count} placeholders; absent fields become '-'."""

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "count":
            return str(count)
        value = get_path(event, name)
        return "-" if value is MISSING or value is None else str(value)

    return _PLACEHOLDER.sub(fill, template)


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


class Evaluator:
    """Evaluates one account's rules of one source against events, updating a StateBook."""

    def __init__(self, rules: Sequence[CompiledRule], book: StateBook) -> None:
        self.rules = rules
        self.book = book
        for rule in rules:
            if rule.window_ns:
                book.window_ns[rule.id] = rule.window_ns

    def evaluate(
        self, events: Iterable[tuple[int, Mapping[str, Any]]], now: int | None = None, oldest: int | None = None
    ) -> list[Firing]:
        """Firings for `events` ((seq, event) in seq order). With `now`, events are stamped with it
        (scheduled sources) instead of their timestamp; events older than `oldest` are skipped."""
        firings: list[Firing] = []
        for seq, event in events:
            ts = now if now is not None else event_time(event)
            if ts is None or (oldest is not None and ts < oldest):
                continue
            for rule in self.rules:
                if not rule.predicate(event):
                    continue
                firing = self._step(rule, seq, ts, event)
                if firing is not None and not self._suppressed(rule, event, ts):
                    firings.append(firing)
        return firings

    def _ref(self, seq: int, ts: int, event: Mapping[str, Any]) -> dict[str, Any]:
        return {"uuid": event.get("uuid") or event.get("id"), "timestamp": format_ns(ts), "seq": seq}

    def _step(self, rule: CompiledRule, seq: int, ts: int, event: Mapping[str, Any]) -> Firing | None:
        r = rule.rule
        if r.threshold is not None and rule.window_ns is not None:
            key, values = _key(event, r.threshold.group_by)
            group = dict(zip(r.threshold.group_by, values, strict=True))
            window = self.book.windows.setdefault((rule.id, key), [])
            bisect.insort(window, [ts, event.get("uuid") or "", seq])
            newest = window[-1][0]
            while window and window[0][0] < newest - rule.window_ns:
                window.pop(0)
            self.book.dirty.add((rule.id, WINDOW, key))
            n = r.threshold.count
            if len(window) < n:
                return None
            i = bisect.bisect_left(window, [ts, event.get("uuid") or "", seq])
            for j in range(max(0, i - n + 1), i + 1):
                if j + n - 1 < len(window) and window[j + n - 1][0] - window[j][0] <= rule.window_ns:
                    run = window[j : j + n]
                    window.clear()
                    refs = [{"uuid": u, "timestamp": format_ns(t), "seq": s} for t, u, s in run][-MAX_EVENT_REFS:]
                    summary = r.summary or f"{r.name}: {n} events within {r.threshold.window}" + (
                        f" for {_describe(group)}" if group else ""
                    )
                    return Firing(rule, run[-1][0], group, n, refs, dict(event), render(summary, event, n))
            return None
        if r.first_seen is not None:
            fs = r.first_seen
            key, keys = _key(event, fs.key)
            value, values = _key(event, fs.value)
            if any(v is None for v in keys) or all(v is None for v in values):
                return None
            seen = self.book.seen.setdefault((rule.id, key), [])
            if value in seen:
                return None
            first = not seen
            seen.append(value)
            del seen[: max(0, len(seen) - fs.max_values)]
            self.book.dirty.add((rule.id, SEEN, key))
            if first and not fs.alert_on_first:
                return None
            group = dict(zip(fs.key, keys, strict=True)) | dict(zip(fs.value, values, strict=True))
            new = _describe(dict(zip(fs.value, values, strict=True)))
            subject = _describe(dict(zip(fs.key, keys, strict=True)))
            summary = r.summary or f"{r.name}: {new} first seen for {subject}"
            return Firing(rule, ts, group, 1, [self._ref(seq, ts, event)], dict(event), render(summary, event, 1))
        group = {}
        if rule.suppress_by:
            _, values = _key(event, rule.suppress_by)
            group = dict(zip(rule.suppress_by, values, strict=True))
        summary = r.summary or r.name + (f" ({_describe(group)})" if group else "")
        return Firing(rule, ts, group, 1, [self._ref(seq, ts, event)], dict(event), render(summary, event, 1))

    def _suppressed(self, rule: CompiledRule, event: Mapping[str, Any], ts: int) -> bool:
        """True when a firing at `ts` is suppressed; otherwise starts the suppression it causes."""
        if rule.suppress_ns is None:
            return False
        key, _ = _key(event, rule.suppress_by)
        state = self.book.suppress.get((rule.id, key))
        self.book.dirty.add((rule.id, SUPPRESS, key))
        if state is not None and ts < state["until"]:
            state["suppressed"] += 1
            return True
        self.book.suppress[(rule.id, key)] = {"until": ts + rule.suppress_ns, "suppressed": 0}
        return False
