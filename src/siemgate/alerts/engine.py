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
- learning: events that must not page anyone (older than the evaluation horizon, or stored as
  history) still teach first-seen rules the values they carry, so later events are judged
  against the whole history.

Cost: rules are indexed by the value of the field most of them test for equality (`category`,
`action`), so an event is checked only against the rules that can match it; state is kept in
memory as tuples and serialised only for the keys that changed.
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
WINDOW, SEEN, SUPPRESS, META = "window", "seen", "suppress", "meta"
NEW_KEY, NEW_VALUE = 2, 1
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.|]+)\}")
Key = tuple[Any, ...]


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


def _hashable(value: Any) -> Any:
    """A field value as a dict key: scalars as they are, anything else as its JSON text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _values(event: Mapping[str, Any], paths: Sequence[Any], nocase: bool) -> Key:
    """The values at `paths` (dotted paths, or readers from alerts.fields.getter; absent: None),
    hashable, strings lower-cased with `nocase`."""
    out = []
    for path in paths:
        value = get_path(event, path) if isinstance(path, str | tuple) else path(event)
        if value is MISSING:
            value = None
        elif nocase and isinstance(value, str):
            value = value.lower()
        out.append(_hashable(value))
    return tuple(out)


def _json_key(values: Key) -> str:
    return orjson.dumps(list(values)).decode()


def _parts(path: str) -> str | tuple[str, ...]:
    return tuple(path.split(".")) if "." in path else path


@dataclass
class StateBook:
    """Evaluation state of one account's rules, with the keys changed since the last `changes()`.

    windows: (rule, key JSON) -> sorted [ts, uuid, seq]; seen: rule -> key -> {value: None}
    (insertion-ordered, the oldest dropped first); suppress: (rule, key JSON) -> {until,
    suppressed}; meta: rule -> {"fp": ..., "upto": seq} (what first-seen state was built from)."""

    windows: dict[tuple[str, str], list[list[Any]]] = field(default_factory=dict)
    seen: dict[str, dict[Key, dict[Key, None]]] = field(default_factory=dict)
    suppress: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    window_ns: dict[str, int] = field(default_factory=dict)
    dirty: set[tuple[str, str, Any]] = field(default_factory=set)

    @classmethod
    def load(cls, entries: Iterable[AlertStateEntry], horizon: int | None = None) -> StateBook:
        """State from stored entries. Expiry is in event time: an entry is dropped (and deleted on
        the next commit) only when it expired before `horizon`, the oldest event time that is still
        evaluated (events older than that are not), so no event that could extend it can come."""
        book = cls()
        for entry in entries:
            if horizon is not None and entry.expires_at is not None and entry.expires_at < horizon:
                book.dirty.add((entry.rule_id, entry.kind, entry.key))
                continue
            value = orjson.loads(entry.value)
            if entry.kind == WINDOW:
                book.windows[(entry.rule_id, entry.key)] = value
            elif entry.kind == SEEN:
                key = tuple(_hashable(v) for v in orjson.loads(entry.key))
                book.seen.setdefault(entry.rule_id, {})[key] = {
                    tuple(_hashable(v) for v in orjson.loads(text)): None for text in value
                }
            elif entry.kind == SUPPRESS:
                book.suppress[(entry.rule_id, entry.key)] = value
            elif entry.kind == META:
                book.meta[entry.rule_id] = value
        return book

    def forget_seen(self, rule_id: str) -> None:
        """Drop a rule's first-seen values (before they are built again from history)."""
        for key in self.seen.pop(rule_id, {}):
            self.dirty.add((rule_id, SEEN, key))

    def set_meta(self, rule_id: str, value: dict[str, Any]) -> None:
        self.meta[rule_id] = value
        self.dirty.add((rule_id, META, ""))

    def changes(self) -> list[AlertStateEntry]:
        """Entries for every changed key (an empty value deletes it); clears the change set."""
        out = []
        for rule_id, kind, key in self.dirty:
            value: Any = None
            expires: int | None = None
            text_key = key
            if kind == WINDOW:
                value = self.windows.get((rule_id, key))
                if value:
                    expires = value[-1][0] + self.window_ns.get(rule_id, 0)
            elif kind == SEEN:
                text_key = key if isinstance(key, str) else _json_key(key)
                values = self.seen.get(rule_id, {}).get(key) if not isinstance(key, str) else None
                value = [_json_key(v) for v in values] if values else None
            elif kind == SUPPRESS:
                value = self.suppress.get((rule_id, key))
                if value:
                    expires = value["until"]
            elif kind == META:
                value = self.meta.get(rule_id)
            text = orjson.dumps(value).decode() if value else ""
            out.append(AlertStateEntry(rule_id, kind, text_key, text, expires))
        self.dirty.clear()
        out.sort(key=lambda e: (e.rule_id, e.kind, e.key))
        return out


def event_time(event: Mapping[str, Any]) -> int | None:
    try:
        return parse_ns(event.get("timestamp"))
    except TimestampError:
        return None


def render(template: str, event: Mapping[str, Any], count: int) -> str:
    """Fill {field.path} and {count} placeholders; `{a|b}` takes the first of a, b that is
    present; absent fields become '-'."""

    def fill(m: re.Match[str]) -> str:
        for name in m.group(1).split("|"):
            if name == "count":
                return str(count)
            value = get_path(event, name)
            if value is not MISSING and value is not None and value != "":
                return str(value)
        return "-"

    return _PLACEHOLDER.sub(fill, template)


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _exact(spec: Any) -> tuple[frozenset[str], bool] | None:
    """The strings a field test accepts when it is plain equality (or a set of them), and nocase."""
    nocase = False
    if isinstance(spec, Mapping):
        if not set(spec) <= {"eq", "in", "nocase"} or len(set(spec) - {"nocase"}) != 1:
            return None
        nocase = spec.get("nocase") is True
        spec = spec.get("eq", spec.get("in"))
    values = spec if isinstance(spec, list) else [spec]
    if not values or not all(isinstance(v, str) for v in values):
        return None
    return frozenset(v.lower() if nocase else v for v in values), nocase


class RuleIndex:
    """Which rules an event can match, found by the value of one field (the one most rules test
    for plain equality). Rules that do not test it are candidates for every event."""

    MEMO = 4096

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.rules = tuple(rules)
        counts: dict[str, int] = {}
        for rule in rules:
            for name, spec in rule.rule.match.items():
                if name not in ("all", "any", "not") and _exact(spec) is not None:
                    counts[name] = counts.get(name, 0) + 1
        self.field = max(counts, key=lambda n: (counts[n], n)) if counts else None
        self.parts = _parts(self.field) if self.field else ""
        self.exact: dict[str, list[int]] = {}
        self.folded: dict[str, list[int]] = {}
        self.always: list[int] = []
        for position, rule in enumerate(rules):
            found = _exact(rule.rule.match[self.field]) if self.field and self.field in rule.rule.match else None
            if found is None:
                self.always.append(position)
                continue
            values, nocase = found
            for value in values:
                (self.folded if nocase else self.exact).setdefault(value, []).append(position)
        self._memo: dict[Any, tuple[CompiledRule, ...]] = {}
        self._all = self.rules

    def candidates(self, event: Mapping[str, Any]) -> tuple[CompiledRule, ...]:
        if self.field is None:
            return self._all
        value = get_path(event, self.parts)
        try:
            return self._memo[value]
        except (KeyError, TypeError):
            pass
        positions = set(self.always)
        if isinstance(value, str):
            positions.update(self.exact.get(value, ()))
            positions.update(self.folded.get(value.lower(), ()))
        found = tuple(self.rules[p] for p in sorted(positions))
        try:
            if len(self._memo) >= self.MEMO:
                self._memo.clear()
            self._memo[value] = found
        except TypeError:
            pass  # an unhashable value: not remembered
        return found


class Evaluator:
    """Evaluates one account's rules of one source against events, updating a StateBook."""

    def __init__(self, rules: Sequence[CompiledRule], book: StateBook, index: RuleIndex | None = None) -> None:
        self.rules = rules
        self.book = book
        self.index = index if index is not None and index.rules == tuple(rules) else RuleIndex(rules)
        for rule in rules:
            if rule.window_ns:
                book.window_ns[rule.id] = rule.window_ns

    def evaluate(
        self,
        events: Iterable[tuple[int, Mapping[str, Any]]],
        now: int | None = None,
        oldest: int | None = None,
        *,
        times: Sequence[int] | None = None,
        learn_only: bool = False,
    ) -> list[Firing]:
        """Firings for `events` ((seq, event) in seq order). With `now`, events are stamped with it
        (scheduled sources) instead of their timestamp; `times` are the events' timestamps when the
        caller has them. Events older than `oldest`, and every event with `learn_only`, fire
        nothing but teach first-seen rules their values."""
        firings: list[Firing] = []
        candidates = self.index.candidates
        for position, (seq, event) in enumerate(events):
            if now is not None:
                ts: int | None = now
            elif times is not None:
                ts = times[position]
            else:
                ts = event_time(event)
            if ts is None:
                continue
            quiet = learn_only or (oldest is not None and ts < oldest)
            for rule in candidates(event):
                if not rule.predicate(event):
                    continue
                if quiet:
                    if rule.first_seen_parts is not None:
                        self.learn(rule, event)
                    continue
                firing = self._step(rule, seq, ts, event)
                if firing is not None and not self._suppressed(rule, event, ts):
                    firings.append(firing)
        return firings

    def learn(self, rule: CompiledRule, event: Mapping[str, Any]) -> int:
        """Remember the event's first-seen value for its key: NEW_KEY (the key's first value),
        NEW_VALUE, or 0 (known, or the event lacks the key or every value field)."""
        assert rule.first_seen_parts is not None
        assert rule.rule.first_seen is not None
        key_parts, value_parts, nocase = rule.first_seen_parts
        keys = _values(event, key_parts, nocase)
        if None in keys:
            return 0
        values = _values(event, value_parts, nocase)
        if all(v is None for v in values):
            return 0
        by_key = self.book.seen.setdefault(rule.id, {})
        seen = by_key.get(keys)
        outcome = NEW_VALUE
        if seen is None:
            seen = by_key[keys] = {}
            outcome = NEW_KEY
        elif values in seen:
            return 0
        seen[values] = None
        limit = rule.rule.first_seen.max_values
        while len(seen) > limit:
            del seen[next(iter(seen))]
        self.book.dirty.add((rule.id, SEEN, keys))
        return outcome

    def _ref(self, seq: int, ts: int, event: Mapping[str, Any]) -> dict[str, Any]:
        return {"uuid": event.get("uuid") or event.get("id"), "timestamp": format_ns(ts), "seq": seq}

    def _step(self, rule: CompiledRule, seq: int, ts: int, event: Mapping[str, Any]) -> Firing | None:
        r = rule.rule
        if r.threshold is not None and rule.window_ns is not None:
            return self._threshold(rule, seq, ts, event)
        if r.first_seen is not None:
            fs = r.first_seen
            outcome = self.learn(rule, event)
            if outcome == 0 or (outcome == NEW_KEY and not fs.alert_on_first):
                return None
            keys = [get_path(event, p) for p in fs.key]
            values = [get_path(event, p) for p in fs.value]
            keys = [None if v is MISSING else v for v in keys]
            values = [None if v is MISSING else v for v in values]
            group = dict(zip(fs.key, keys, strict=True)) | dict(zip(fs.value, values, strict=True))
            new = _describe(dict(zip(fs.value, values, strict=True)))
            subject = _describe(dict(zip(fs.key, keys, strict=True)))
            summary = r.summary or f"{r.name}: {new} first seen for {subject}"
            return Firing(rule, ts, group, 1, [self._ref(seq, ts, event)], dict(event), render(summary, event, 1))
        group = {}
        if rule.suppress_by:
            values = [get_path(event, f) for f in rule.suppress_by]
            group = dict(zip(rule.suppress_by, [None if v is MISSING else v for v in values], strict=True))
        summary = r.summary or r.name + (f" ({_describe(group)})" if group else "")
        return Firing(rule, ts, group, 1, [self._ref(seq, ts, event)], dict(event), render(summary, event, 1))

    def _threshold(self, rule: CompiledRule, seq: int, ts: int, event: Mapping[str, Any]) -> Firing | None:
        r = rule.rule
        assert r.threshold is not None
        assert rule.window_ns is not None
        values = _values(event, r.threshold.group_by, r.threshold.nocase)
        key = _json_key(values)
        group = dict(zip(r.threshold.group_by, values, strict=True))
        window = self.book.windows.setdefault((rule.id, key), [])
        entry = [ts, event.get("uuid") or "", seq]
        bisect.insort(window, entry)
        newest = window[-1][0]
        drop = 0
        while drop < len(window) and window[drop][0] < newest - rule.window_ns:
            drop += 1
        if drop:
            del window[:drop]
        self.book.dirty.add((rule.id, WINDOW, key))
        n = r.threshold.count
        if len(window) < n:
            return None
        i = bisect.bisect_left(window, entry)
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

    def _suppressed(self, rule: CompiledRule, event: Mapping[str, Any], ts: int) -> bool:
        """True when a firing at `ts` is suppressed; otherwise starts the suppression it causes."""
        if rule.suppress_ns is None:
            return False
        key = _json_key(_values(event, rule.suppress_by, rule.suppress_nocase))
        state = self.book.suppress.get((rule.id, key))
        self.book.dirty.add((rule.id, SUPPRESS, key))
        if state is not None and ts < state["until"]:
            state["suppressed"] += 1
            return True
        self.book.suppress[(rule.id, key)] = {"until": ts + rule.suppress_ns, "suppressed": 0}
        return False
