"""Rule evaluation: events in, firings out, with the state that makes windows, first-seen and
suppression work. Pure: no I/O; the caller loads and saves the state (alerts.evaluator).

Semantics (docs/alerts.md, "Evaluation"):

- Time is the event's own timestamp, so a replay (`siemgate alerts test`) fires exactly as live
  evaluation did; for the `tokens` source it is the time of the check.
- threshold: per group (the `group_by` values), the matching events' times are kept while they
  are within `window` of the group's newest (a late event until a newer one comes); when `count`
  of them fall within one `window`, the rule fires for those events and the group's window starts
  empty again.
- first_seen: per key, the value combinations seen so far are kept (at most `max_values`, oldest
  dropped); a new combination fires, except a key's very first one unless `alert_on_first`.
  Events missing a key or value field are ignored.
- suppress: after a firing, firings with the same `by` values whose event time is within `for`
  of it, before or after, are suppressed (counted, not fired). Window and first-seen state keep
  being updated while suppressed.
- learning: events that must not page anyone (older than the evaluation horizon, or stored as
  history) still teach first-seen rules the values they carry, so later events are judged
  against the whole history.

Cost: rules are indexed by the value of the field most of them test for equality (`category`,
`action`), so an event is checked only against the rules that can match it; each threshold and
first-seen rule then makes one pass over its candidate events, their keys read together
(`KeyReader.many`, or `KeyReader.column`: a batch whose first-seen values are all known is one set
check), and a first-seen rule tests the rest of its condition only on the rare event whose value
is not known yet; state is kept in memory as tuples and serialised only for the keys that
changed.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from siemgate.alerts.caseless import fold
from siemgate.alerts.fields import MISSING, Key, get_path, getter, hashable
from siemgate.alerts.match import Predicate, compile_condition
from siemgate.alerts.model import CompiledRule
from siemgate.model.timestamps import MAX_STORED_NS, TimestampError, format_ns, parse_ns
from siemgate.store.base import AlertStateEntry
from siemgate.store.ingest import SeqEvents

MAX_EVENT_REFS = 50
# A rule's budget is checked before each event its test reads when its condition holds more than
# this many values (a test that can cost milliseconds on a long field); a smaller rule, every
# starter rule among them, is checked every CHECK_EVERY events, which costs nothing per event.
METER_EACH_EVENT_ABOVE = 32
CHECK_EVERY = 128
MAX_SUMMARY = 2000  # characters of an alert's summary (render)
MAX_KEY_TEXT = 1024  # characters of a window's or suppression's key kept as they are (_group_key)
MAX_INTERNED = 65536  # distinct first-seen values interned per account (StateBook.intern)
MAX_WINDOWS = 100_000  # threshold windows kept per account (StateBook.trim)
MAX_SEEN_VALUES = 250_000  # first-seen values kept per account (StateBook.trim_seen): ~50-130 MB
WINDOW, SEEN, SUPPRESS, META, STREAM = "window", "seen", "suppress", "meta", "stream"
NEW_KEY, NEW_VALUE = 2, 1
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.|]+)\}")
_OTHER = object()  # an indexed field's value no rule tests for equality (a boolean, an object, a list)


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


_JSON_KEYS: dict[Key, str] = {}


def _json_key(values: Key) -> str:
    """The values as the JSON text state is stored under (remembered: groups recur; a text over
    MAX_KEY_TEXT is not, the cache being the server's, of every account)."""
    text = _JSON_KEYS.get(values)
    if text is None:
        text = orjson.dumps(list(values)).decode()
        if len(text) <= MAX_KEY_TEXT and all(type(v) is str for v in values):  # 1, 1.0 and True: one dict key
            if len(_JSON_KEYS) >= 65536:
                _JSON_KEYS.clear()
            _JSON_KEYS[values] = text
    return text


def _group_key(values: Key) -> str:
    """The key a threshold window or a suppression is kept (and stored) under: the values' JSON
    text, or for a text over MAX_KEY_TEXT characters (a group of a long field) `sha256:` and its
    digest: 100,000 windows (MAX_WINDOWS) of a 60,000-character field held 12 GB. Never read back
    as values (an alert's group comes from its event)."""
    text = _json_key(values)
    if len(text) <= MAX_KEY_TEXT:
        return text
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _refolded(key: str, nocase: bool) -> str:
    """A window's or suppression's key saved by 0.1 (the JSON text of its values as the event
    had them) as the values are read now: strings folded with `nocase`, others `hashable`. A key
    too long to be read back (`sha256:`) stays as it is."""
    if key.startswith("sha256:"):
        return key
    return _group_key(tuple(fold(v) if nocase and type(v) is str else hashable(v) for v in orjson.loads(key)))


@dataclass
class StateBook:
    """Evaluation state of one account's rules, with the keys changed since the last `changes()`.

    windows: (rule, key JSON) -> sorted (ts, uuid, seq); seen: rule -> key -> {value: None}
    (insertion-ordered, the oldest dropped first); suppress: (rule, key JSON) -> {until,
    suppressed, at}; meta: rule -> {"fp": ..., "upto": seq} (what first-seen state was built from);
    covered: stream -> the seq up to which this state reflects the stream's events, and stored:
    the same for the state in the store (written by `changes()`)."""

    windows: dict[tuple[str, str], list[tuple[int, str, int]]] = field(default_factory=dict)
    # each rule's keys in the order they last learnt a value (stored with it: `learnt`, see changes())
    seen: dict[str, dict[Key, dict[Key, None]]] = field(default_factory=dict)
    # rule -> every (key + value) tuple of `seen`, built when first needed: a known value is one
    # set lookup (the values interned through `canon`), instead of two dicts and their tuples
    pairs: dict[str, set[Key]] = field(default_factory=dict)
    canon: dict[Key, Key] = field(default_factory=dict)
    suppress: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    window_ns: dict[str, int] = field(default_factory=dict)
    dirty: set[tuple[str, str, Any]] = field(default_factory=set)
    covered: dict[str, int] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)
    values: int = 0  # first-seen values held, over every rule and key (StateBook.trim_seen)
    legacy_seen: set[str] = field(default_factory=set)  # rules whose first-seen values 0.1 saved
    legacy_suppress: set[str] = field(default_factory=set)  # rules with suppressions 0.1 saved (no `at`)
    learnt: int = 0  # the last number given to a saved first-seen key by the order it learnt (changes())

    @classmethod
    def load(cls, entries: Iterable[AlertStateEntry], horizon: int | None = None) -> StateBook:
        """State from stored entries. Expiry is in event time: an entry is dropped (and deleted on
        the next commit) only when it expired before `horizon`, the oldest event time that is still
        evaluated (events older than that are not), so no event that could extend it can come."""
        book = cls()
        seen: list[tuple[int, str, str, list[str]]] = []
        for entry in entries:
            if horizon is not None and entry.expires_at is not None and entry.expires_at < horizon:
                book.dirty.add((entry.rule_id, entry.kind, entry.key))
                continue
            value = orjson.loads(entry.value)
            if entry.kind == WINDOW:
                book.windows[(entry.rule_id, entry.key)] = [(int(t), str(u), int(s)) for t, u, s in value]
            elif entry.kind == SEEN:  # a list of values before 0.2's `learnt` (learnt before all others)
                learnt, texts = (0, value) if isinstance(value, list) else (int(value["learnt"]), value["values"])
                if isinstance(value, list):
                    book.legacy_seen.add(entry.rule_id)
                seen.append((learnt, entry.rule_id, entry.key, texts))
            elif entry.kind == SUPPRESS:
                book.suppress[(entry.rule_id, entry.key)] = value
                if "at" not in value:
                    book.legacy_suppress.add(entry.rule_id)
            elif entry.kind == META:
                book.meta[entry.rule_id] = value
            elif entry.kind == STREAM:
                book.covered[entry.key] = book.stored[entry.key] = int(value["seq"])
        seen.sort(key=lambda row: row[0])  # each rule's keys in the order they learnt (trim_seen)
        for learnt, rule_id, key_text, texts in seen:
            key = tuple(hashable(v) for v in orjson.loads(key_text))
            book.seen.setdefault(rule_id, {})[key] = values = {
                book.intern(tuple(hashable(v) for v in orjson.loads(text))): None for text in texts
            }
            book.values += len(values)
            book.learnt = max(book.learnt, learnt)
        return book

    def expire(self, horizon: int) -> int:
        """Drop the windows and suppressions that expired (in event time) before `horizon`, the
        oldest event time still evaluated, as `load` does, and the windows their alert emptied:
        no event that can still fire could extend them, so what fires is unchanged, and a process
        that runs for weeks keeps no more than one that restarts. Expired entries are deleted
        from the store by the next `changes()`. Returns how many entries were dropped."""
        windows, suppress, window_ns = self.windows, self.suppress, self.window_ns
        empty = [key for key, window in windows.items() if not window]  # their rows went when emptied
        expired = [  # a rule not evaluated since the state was loaded (its window unknown) keeps them
            key
            for key, window in windows.items()
            if window and key[0] in window_ns and window[-1][0] + window_ns[key[0]] < horizon
        ]
        ended = [key for key, state in suppress.items() if state["until"] < horizon]
        for key, window in windows.items():  # late events kept under a newer one (Evaluator._count_all)
            span = window_ns.get(key[0])
            if window and span is not None and window[0][0] + span < horizon <= window[-1][0] + span:
                del window[: bisect.bisect_left(window, (horizon - span,))]
                self.dirty.add((key[0], WINDOW, key[1]))
        for key, state in suppress.items():  # firing times no event still evaluated is within `for` of
            fired = state.get("at")
            if fired and len(fired) > 1 and state["until"] >= horizon:
                span = state["until"] - fired[-1]
                kept = [at for at in fired if at + span >= horizon]
                if len(kept) < len(fired):
                    state["at"] = kept
                    self.dirty.add((key[0], SUPPRESS, key[1]))
        for key in empty:
            del windows[key]
        for key in expired:
            self._drop_window(key)
        for key in ended:
            del suppress[key]
            self.dirty.add((key[0], SUPPRESS, key[1]))
        return len(empty) + len(expired) + len(ended)

    def trim(self, limit: int) -> dict[str, int]:
        """Keep at most `limit` threshold windows: past it, drop those whose newest event is the
        oldest, down to 90 % of it (a group's late event then starts a new window), and delete
        them from the store with the next `changes()`. Returns how many each rule lost."""
        windows = self.windows
        if len(windows) <= limit:
            return {}
        stalest = sorted(windows, key=lambda key: windows[key][-1][0] if windows[key] else 0)
        dropped: dict[str, int] = {}
        for key in stalest[: len(windows) - limit * 9 // 10]:
            self._drop_window(key)
            dropped[key[0]] = dropped.get(key[0], 0) + 1
        return dropped

    def drop_windows(self, rule_id: str) -> None:
        """Forget every window of a rule; the next `changes()` deletes their stored rows."""
        for key in [key for key in self.windows if key[0] == rule_id]:
            self._drop_window(key)

    def _drop_window(self, key: tuple[str, str]) -> None:
        """Forget a window; the next `changes()` deletes its stored row."""
        del self.windows[key]
        self.dirty.add((key[0], WINDOW, key[1]))

    def trim_seen(self, limit: int) -> dict[str, int]:
        """Keep at most `limit` first-seen values: past it, keys are dropped with all their values,
        down to 90 % of it, from the rules that hold the most (each rule keeps a fair share: the
        most values every rule over it may keep for the rest to fit), each losing first the keys
        that learnt a value least recently (across restarts: the order is saved, see
        _learnt_order). A dropped key's next value counts as its first. Deleted from the store with the
        next `changes()`; returns how many keys each rule lost."""
        if self.values <= limit:
            return {}
        sizes = {rule_id: sum(map(len, by_key.values())) for rule_id, by_key in self.seen.items()}
        share = _fair_share(sorted(sizes.values()), limit * 9 // 10)
        dropped: dict[str, int] = {}
        for rule_id, size in sizes.items():
            by_key, pairs = self.seen[rule_id], self.pairs.get(rule_id)
            while size > share and by_key:
                keys = next(iter(by_key))
                values = by_key.pop(keys)
                size -= len(values)
                self.values -= len(values)
                if pairs is not None:
                    pairs.difference_update(keys + value for value in values)
                self.dirty.add((rule_id, SEEN, keys))
                dropped[rule_id] = dropped.get(rule_id, 0) + 1
        return dropped

    def refold_windows(self, rule_id: str) -> None:
        """Key a rule's windows by their values folded (alerts.caseless), merging those that then
        share a key: windows 0.1 counted without `nocase` (or with `str.lower`), kept by a rule
        that now groups ignoring case, so that new events join them. A key too long to be read
        back (`sha256:`) stays as it is."""
        for key in [key for key in self.windows if key[0] == rule_id]:
            folded = _refolded(key[1], nocase=True)
            if folded == key[1]:
                continue
            window = self.windows.pop(key)
            self.dirty.add((rule_id, WINDOW, key[1]))
            merged = sorted(self.windows.get((rule_id, folded), []) + window)
            self.windows[(rule_id, folded)] = merged
            self.dirty.add((rule_id, WINDOW, folded))

    def refold_suppress(self, rule_id: str, nocase: bool, span: int) -> None:
        """Key a rule's suppressions saved by 0.1 (those without firing times, `at`) as the rule now
        reads its `by` values (folded with `nocase`), merging those that then share a key, so that
        a group that fired under 0.1 with capitals stays suppressed for the rest of its `span`
        (ns). Once per rule: nothing to do for state saved since 0.2."""
        if rule_id not in self.legacy_suppress:
            return
        self.legacy_suppress.discard(rule_id)
        for key in [key for key, state in self.suppress.items() if key[0] == rule_id and "at" not in state]:
            folded = _refolded(key[1], nocase)
            if folded == key[1]:
                continue
            state = self.suppress.pop(key)
            self.dirty.add((rule_id, SUPPRESS, key[1]))
            kept = self.suppress.get((rule_id, folded))
            fired = {state["until"] - span}  # 0.1 knew the latest firing only (as _suppressed reads it)
            if kept is not None:
                fired.update(kept.get("at") or [kept["until"] - span])
                state = {
                    "until": max(state["until"], kept["until"]),
                    "suppressed": state["suppressed"] + kept["suppressed"],
                }
            self.suppress[(rule_id, folded)] = {**state, "at": sorted(fired)}
            self.dirty.add((rule_id, SUPPRESS, folded))

    def refold_seen(self, rule_id: str, nocase: bool) -> dict[Key, dict[Key, None]]:
        """A rule's first-seen values saved by 0.1 (before they are built again from the stored
        history), folded with `nocase` as the rule now learns them: values 0.1 learnt from events
        that retention has since deleted are still known. Empty for values saved since 0.2."""
        if rule_id not in self.legacy_seen:
            return {}
        self.legacy_seen.discard(rule_id)
        refolded: dict[Key, dict[Key, None]] = {}
        for keys, values in self.seen.get(rule_id, {}).items():
            folded = tuple(fold(v) if nocase and type(v) is str else v for v in keys)
            known = refolded.setdefault(folded, {})
            for value in values:
                known[tuple(fold(v) if nocase and type(v) is str else v for v in value)] = None
        return refolded

    def forget_seen(self, rule_id: str) -> None:
        """Drop a rule's first-seen values (before they are built again from history)."""
        self.pairs.pop(rule_id, None)
        for key, values in self.seen.pop(rule_id, {}).items():
            self.values -= len(values)
            self.dirty.add((rule_id, SEEN, key))

    def intern(self, values: Key) -> Key:
        """One object for equal first-seen values (a few countries, say, shared by every person),
        so that checking them reads memory that is already in cache."""
        if not all(type(v) is str for v in values):
            return values  # not numbers: 1, 1.0 and True are equal keys, but stored as written
        found = self.canon.get(values)
        if found is None:
            if len(self.canon) >= MAX_INTERNED:
                self.canon.clear()
            found = self.canon[values] = values
        return found

    def remember(self, rule_id: str, keys: Key, values: Key, limit: int) -> int:
        """Add `values` to the first-seen values of `keys` (dropping the oldest past `limit`):
        NEW_KEY (the key's first value), NEW_VALUE, or 0 (known, or every value is absent)."""
        by_key = self.seen.get(rule_id)
        if by_key is None:
            by_key = self.seen[rule_id] = {}
        seen = by_key.get(keys)
        if seen is not None and values in seen:  # the common case: a known value
            return 0
        if values.count(None) == len(values):
            return 0
        outcome = NEW_VALUE
        if seen is None:
            seen = by_key[keys] = {}
            outcome = NEW_KEY
        else:  # the keys that learnt a value least recently come first (trim_seen drops those)
            del by_key[keys]
            by_key[keys] = seen
        values = self.intern(values)
        seen[values] = None
        self.values += 1
        pairs = self.pairs.get(rule_id)
        if pairs is not None:
            pairs.add(keys + values)
        while len(seen) > limit:
            oldest = next(iter(seen))
            del seen[oldest]
            self.values -= 1
            if pairs is not None:
                pairs.discard(keys + oldest)
        self.dirty.add((rule_id, SEEN, keys))
        return outcome

    def known_pairs(self, rule_id: str) -> set[Key]:
        """The rule's first-seen (key + value) tuples, kept in step by `remember` and `forget_seen`."""
        pairs = self.pairs.get(rule_id)
        if pairs is None:
            pairs = self.pairs[rule_id] = {k + v for k, values in self.seen.get(rule_id, {}).items() for v in values}
        return pairs

    def set_meta(self, rule_id: str, value: dict[str, Any]) -> None:
        self.meta[rule_id] = value
        self.dirty.add((rule_id, META, ""))

    def changes(self) -> list[AlertStateEntry]:
        """Entries for every changed key (an empty value deletes it) and for the streams the state
        now covers further; clears the change set."""
        out = [
            AlertStateEntry("", STREAM, stream, orjson.dumps({"seq": seq}).decode(), None)
            for stream, seq in self.covered.items()
            if self.stored.get(stream) != seq
        ]
        self.stored.update(self.covered)
        learnt = self._learnt_order()
        for rule_id, kind, key in self.dirty:
            value: Any = None
            expires: int | None = None
            text_key = key
            if kind == WINDOW:
                value = self.windows.get((rule_id, key))
                if value:
                    expires = min(value[-1][0] + self.window_ns.get(rule_id, 0), MAX_STORED_NS)
            elif kind == SEEN:
                text_key = key if isinstance(key, str) else _json_key(key)
                values = self.seen.get(rule_id, {}).get(key) if not isinstance(key, str) else None
                if values:
                    value = {"values": [_json_key(v) for v in values], "learnt": learnt[(rule_id, key)]}
            elif kind == SUPPRESS:
                value = self.suppress.get((rule_id, key))
                if value:  # an event near the end of storable time ends its suppression after it
                    expires = min(value["until"], MAX_STORED_NS)
            elif kind == META:
                value = self.meta.get(rule_id)
            text = orjson.dumps(value).decode() if value else ""
            out.append(AlertStateEntry(rule_id, kind, text_key, text, expires))
        self.dirty.clear()
        out.sort(key=lambda e: (e.rule_id, e.kind, e.key))
        return out

    def _learnt_order(self) -> dict[tuple[str, Key], int]:
        """A number for each first-seen key to be saved, past every number given before, in the
        order the keys learnt (the end of their rule's `seen`, where remember() moves a key), so
        that a restart loads each rule's keys in that order and trim_seen drops the same ones.
        The same state and changes give the same numbers in every process (rules in id order)."""
        wanted: dict[str, set[Key]] = {}
        for rule_id, kind, key in self.dirty:
            if kind == SEEN and not isinstance(key, str) and key in self.seen.get(rule_id, {}):
                wanted.setdefault(rule_id, set()).add(key)
        numbers: dict[tuple[str, Key], int] = {}
        for rule_id in sorted(wanted):  # not the dirty set's order, which varies between runs
            keys = wanted[rule_id]
            newest = []
            for key in reversed(self.seen[rule_id]):
                if key in keys:
                    newest.append(key)
                    if len(newest) == len(keys):
                        break
            for key in reversed(newest):
                self.learnt += 1
                numbers[(rule_id, key)] = self.learnt
        return numbers


def _fair_share(sizes: Sequence[int], total: int) -> int:
    """The most each of the holders of `sizes` (ascending) may keep for all to fit in `total`:
    those under it keep what they hold, the others that much."""
    for n, size in enumerate(sizes):
        share = total // (len(sizes) - n)
        if size > share:
            return share
        total -= size
    return sizes[-1] if sizes else 0


def event_time(event: Mapping[str, Any]) -> int | None:
    try:
        return parse_ns(event.get("timestamp"))
    except TimestampError:
        return None


def render(template: str, event: Mapping[str, Any], count: int) -> str:
    """Fill {field.path} and {count} placeholders; `{a|b}` takes the first of a, b that is
    present; absent fields become '-'. The text is cut at MAX_SUMMARY characters (ending in `…`),
    and filling stops there: a template of many placeholders of a long field stays small."""

    def fill(m: re.Match[str]) -> str:
        for name in m.group(1).split("|"):
            if name == "count":
                return str(count)
            value = get_path(event, name)
            if value is not MISSING and value is not None and value != "":
                return str(value)[: MAX_SUMMARY + 1]
        return "-"

    parts: list[str] = []
    size = done = 0
    for m in _PLACEHOLDER.finditer(template):
        if size > MAX_SUMMARY:
            break
        for part in (template[done : m.start()], fill(m)):
            parts.append(part)
            size += len(part)
        done = m.end()
    else:
        parts.append(template[done:])
    return cut_summary("".join(parts))


def cut_summary(text: str) -> str:
    """`text` cut at MAX_SUMMARY characters, ending in `…` when cut."""
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1] + "…"


def summary_of(rule: CompiledRule, default: str, event: Mapping[str, Any], count: int) -> str:
    """The alert's summary: the rule's template filled from the event, else `default` (made of
    the rule's name and the event's values) as it is: the values are not read as placeholders."""
    template = rule.rule.summary
    return render(template, event, count) if template else cut_summary(default)


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
    return frozenset(fold(v) if nocase else v for v in values), nocase


class RuleIndex:
    """Which rules an event can match, found by the value of one field (the one most rules test
    for plain equality). Rules that do not test it are candidates for every event.

    A candidate comes with the test still to run on the event: a rule found by the field's value
    needs only the rest of its condition (None when it has no other test), a rule that does not
    test the field needs its whole predicate."""

    MEMO = 4096

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.rules = tuple(rules)
        counts: dict[str, int] = {}
        for rule in rules:
            for name, spec in rule.rule.match.items():
                if name not in ("all", "any", "not") and _exact(spec) is not None:
                    counts[name] = counts.get(name, 0) + 1
        self.field = max(counts, key=lambda n: (counts[n], n)) if counts else None
        self.read = getter(self.field) if self.field else None
        self.exact: dict[str, list[int]] = {}
        self.folded: dict[str, list[int]] = {}
        self.always: list[int] = []
        self.rest: dict[int, Predicate | None] = {}
        for position, rule in enumerate(rules):
            found = _exact(rule.rule.match[self.field]) if self.field and self.field in rule.rule.match else None
            if found is None:
                self.always.append(position)
                continue
            others = {k: v for k, v in rule.rule.match.items() if k != self.field}
            # of a rule compiled already, saved within the bounds of its day
            self.rest[position] = compile_condition(others, rule.rule.source, stored=True) if others else None
            values, nocase = found
            for value in values:
                (self.folded if nocase else self.exact).setdefault(value, []).append(position)
        self._memo: dict[Any, tuple[tuple[CompiledRule, Predicate | None], ...]] = {}
        self._all = tuple((rule, rule.predicate) for rule in self.rules)
        self._always = frozenset(self.always)

    def plan(self, events: Sequence[Mapping[str, Any]]) -> list[tuple[int, Predicate | None, Sequence[int]]]:
        """For a batch: (rule position, test, positions of the events it may match, ascending) for
        each rule some event may match; an event matches when `test` is None or holds for it. The
        indexed field is read once per event and the rules are looked up once per distinct value."""
        if self.read is None or self.field is None:
            every = range(len(events))
            return [(p, rule.predicate, every) for p, rule in enumerate(self.rules)]
        read, name = self.read, self.field
        # a top-level field (the usual `category`, `action`) in one comprehension: absent is None, as null is
        values = [read(event) for event in events] if "." in name else [event.get(name) for event in events]
        groups: dict[Any, list[int]] = {}
        for position, value in enumerate(values):
            if type(value) is not str and value is not None:
                value = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else _OTHER
            found = groups.get(value)
            if found is None:
                groups[value] = [position]
            else:
                found.append(position)
        by_rule: dict[int, list[list[int]]] = {}
        for value, positions in groups.items():
            if type(value) is str:
                for p in {*self.exact.get(value, ()), *self.folded.get(fold(value), ())}:
                    by_rule.setdefault(p, []).append(positions)
        out: list[tuple[int, Predicate | None, Sequence[int]]] = []
        for p in range(len(self.rules)):
            if p in by_rule:
                runs = by_rule[p]
                out.append((p, self.rest[p], runs[0] if len(runs) == 1 else sorted(i for run in runs for i in run)))
            elif p in self._always:
                out.append((p, self.rules[p].predicate, range(len(events))))
        return out

    def candidates(self, event: Mapping[str, Any]) -> tuple[tuple[CompiledRule, Predicate | None], ...]:
        """(rule, test) for each rule the event may match: it matches when `test` is None or holds."""
        if self.read is None:
            return self._all
        value = self.read(event)
        if type(value) is str or value is None:
            found = self._memo.get(value)
            if found is not None:
                return found
        by_value: set[int] = set()
        if isinstance(value, int | float) and not isinstance(value, bool):
            text: Any = str(value)  # a number equals its decimal text (alerts.match)
        else:
            text = value
        if isinstance(text, str):
            by_value.update(self.exact.get(text, ()))
            by_value.update(self.folded.get(fold(text), ()))
        found = tuple(
            (self.rules[p], self.rest[p] if p in by_value else self.rules[p].predicate)
            for p in sorted(by_value.union(self.always))
        )
        if type(value) is str or value is None:  # not numbers: 1, 1.0 and True are one dict key
            if len(self._memo) >= self.MEMO:
                self._memo.clear()
            self._memo[value] = found
        return found


class _Batch(NamedTuple):
    """The events of one `Evaluator.evaluate` call, as each rule's pass reads them."""

    seqs: Sequence[int]
    bodies: Sequence[Mapping[str, Any]]
    stamps: Sequence[int | None]
    oldest: int | None
    learn_only: bool
    found: list[tuple[int, int, Firing]]  # (event position, rule position, firing), appended to


class OverBudget(Exception):
    """An evaluation step used the CPU time its Budget allowed."""


class Budget:
    """The CPU time (of the evaluating thread) one evaluation step may use: `check` raises
    OverBudget once it is spent. Checking costs a read of the monotonic clock (~50 ns): the
    thread's CPU time, a system call, is read only once the wall time since the start passes what
    is left, since a thread cannot use more CPU time than wall time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds  # below zero: a debt from earlier steps (none allowed now)
        self.allowed_ns = max(0, int(seconds * 1e9))
        self.cpu_start = time.thread_time_ns()
        self._wall_check = time.perf_counter_ns() + self.allowed_ns

    def spent_ns(self) -> int:
        """CPU time used since the budget was made."""
        return time.thread_time_ns() - self.cpu_start

    def check(self) -> None:
        """Raise OverBudget when the CPU time allowed is used."""
        if time.perf_counter_ns() < self._wall_check:
            return
        spent = self.spent_ns()
        if spent >= self.allowed_ns:
            raise OverBudget
        self._wall_check = time.perf_counter_ns() + self.allowed_ns - spent

    def metered(self, test: Predicate) -> Predicate:
        """`test`, checking the budget before each event it tests."""
        check = self.check

        def metered_test(event: Mapping[str, Any]) -> bool:
            check()
            return test(event)

        return metered_test


class Evaluator:
    """Evaluates one account's rules of one source against events, updating a StateBook."""

    def __init__(self, rules: Sequence[CompiledRule], book: StateBook, index: RuleIndex | None = None) -> None:
        self.rules = rules
        self.book = book
        self.index = index if index is not None and index.rules == tuple(rules) else RuleIndex(rules)
        self.shed: list[str] = []  # rules the last evaluate's budget left unevaluated (evaluate)
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
        budget: Budget | None = None,
    ) -> list[Firing]:
        """Firings for `events` ((seq, event) in seq order). With `now`, events are stamped with it
        (scheduled sources) instead of their timestamp; `times` are the events' timestamps when the
        caller has them. Events older than `oldest`, and every event with `learn_only`, fire
        nothing but teach first-seen rules their values. With a `budget`, the rules are evaluated
        until it is spent: the ids of the rules left unevaluated (or evaluated on part of the
        events) are then in `shed`, and what the others fired is returned."""
        seqs: Sequence[int]
        bodies: Sequence[Mapping[str, Any]]
        if isinstance(events, SeqEvents):  # a stored batch: its two lists as they are
            seqs, bodies = events.seqs, events.events
        else:
            pairs = events if isinstance(events, Sequence) else list(events)
            seqs, bodies = [seq for seq, _ in pairs], [event for _, event in pairs]
        if now is not None:
            stamps: Sequence[int | None] = [now] * len(bodies)
        elif times is not None:
            stamps = times
        else:
            stamps = [event_time(event) for event in bodies]
        found: list[tuple[int, int, Firing]] = []  # (event position, rule position, firing)
        batch = _Batch(seqs, bodies, stamps, oldest, learn_only, found)
        self.shed = []
        for p, test, positions in self.index.plan(bodies):
            if not positions:
                continue  # no event to evaluate: nothing to do, nothing missed (the budget's shed)
            rule = self.rules[p]
            if budget is None:
                self._pass(p, rule, test, positions, batch)
                continue
            if self.shed:  # the budget is spent: the rules after the one it ran out in are not evaluated
                self.shed.append(rule.id)
                continue
            try:
                budget.check()
                if test is not None and rule.weight > METER_EACH_EVENT_ABOVE:
                    self._pass(p, rule, budget.metered(test), positions, batch)
                    continue
                for start in range(0, len(positions), CHECK_EVERY):
                    if start:
                        budget.check()
                    self._pass(p, rule, test, positions[start : start + CHECK_EVERY], batch)
            except OverBudget:
                self.shed.append(rule.id)
        found.sort(key=lambda f: (f[0], f[1]))  # the order of a pass per event over its rules
        return [firing for _, _, firing in found]

    def _pass(
        self, p: int, rule: CompiledRule, test: Predicate | None, positions: Sequence[int], batch: _Batch
    ) -> None:
        """One rule over its candidate events of the batch (`test`: what is left of its condition)."""
        seqs, bodies, stamps, oldest, learn_only, found = batch
        if rule.first_seen_parts is not None:
            self._learn_all(p, rule, test, positions, batch)
            return
        if learn_only:
            return
        if rule.window_ns is not None:
            self._count_all(p, rule, test, positions, batch)
            return
        step = self._step
        for i in positions:
            event, ts = bodies[i], stamps[i]
            if ts is None or (oldest is not None and ts < oldest) or (test is not None and not test(event)):
                continue
            firing = step(rule, seqs[i], ts, event)
            if firing is not None:
                found.append((i, p, firing))

    def _learn_all(
        self, p: int, rule: CompiledRule, test: Predicate | None, positions: Sequence[int], batch: _Batch
    ) -> None:
        """A first-seen rule over its candidate events: most carry a known value (two reads and a
        set lookup); a new one is learnt and, unless quiet or a key's first, fired. A rule of one
        key and one value field reads them as two columns: a batch whose values are all known (the
        usual one) is done in one `issuperset`, with no tuple made per event, and in another only
        the events of the keys that learn a value take the per-event path."""
        assert rule.first_seen_parts is not None
        key_of, value_of = rule.first_seen_parts
        seqs, bodies, stamps, oldest, learn_only, found = batch
        known = self.book.known_pairs(rule.id)
        # a known value skips the event whatever its test says: the test runs only for the few others
        key_column, value_column = key_of.column(bodies, positions), value_of.column(bodies, positions)
        if key_column is not None and value_column is not None:
            if known.issuperset(zip(key_column, value_column, strict=True)):
                return  # the usual batch: every value known (a set lookup per event, no tuple kept)
            # Only the keys of the values not known yet can change in this batch (a key's values
            # change only when it learns one), so the other events are known to the end of it
            learning = {key for key, value in zip(key_column, value_column, strict=True) if (key, value) not in known}
            positions = [i for i, key in zip(positions, key_column, strict=True) if key in learning]
        for i, keys, values in zip(
            positions, key_of.many(bodies, positions), value_of.many(bodies, positions), strict=True
        ):
            if keys + values in known or None in keys:
                continue  # a known value: nothing changes, whatever the event's time
            event = bodies[i]
            if test is not None and not test(event):
                continue
            ts = stamps[i]
            if ts is None:
                continue
            outcome = self.learn(rule, event)
            quiet = learn_only or (oldest is not None and ts < oldest)
            if quiet or not outcome or (outcome == NEW_KEY and not rule.alert_on_first):
                continue
            firing = self._first_seen(rule, seqs[i], ts, event)
            if firing is not None:
                found.append((i, p, firing))

    def learn(self, rule: CompiledRule, event: Mapping[str, Any]) -> int:
        """Remember the event's first-seen value for its key: NEW_KEY (the key's first value),
        NEW_VALUE, or 0 (known, or the event lacks the key or every value field)."""
        assert rule.first_seen_parts is not None
        assert rule.rule.first_seen is not None
        key_of, value_of = rule.first_seen_parts
        keys = key_of.one(event)
        if None in keys:
            return 0
        return self.book.remember(rule.id, keys, value_of.one(event), rule.rule.first_seen.max_values)

    def _ref(self, seq: int, ts: int, event: Mapping[str, Any]) -> dict[str, Any]:
        return {"uuid": event.get("uuid") or event.get("id"), "timestamp": format_ns(ts), "seq": seq}

    def _first_seen(self, rule: CompiledRule, seq: int, ts: int, event: Mapping[str, Any]) -> Firing | None:
        """The firing of a first-seen rule for an event `learn` found new, unless suppressed."""
        if self._suppressed(rule, event, ts):
            return None
        r = rule.rule
        fs = r.first_seen
        assert fs is not None
        keys = [get_path(event, p) for p in fs.key]
        values = [get_path(event, p) for p in fs.value]
        keys = [None if v is MISSING else v for v in keys]
        values = [None if v is MISSING else v for v in values]
        group = dict(zip(fs.key, keys, strict=True)) | dict(zip(fs.value, values, strict=True))
        new = _describe(dict(zip(fs.value, values, strict=True)))
        subject = _describe(dict(zip(fs.key, keys, strict=True)))
        summary = summary_of(rule, f"{r.name}: {new} first seen for {subject}", event, 1)
        return Firing(rule, ts, group, 1, [self._ref(seq, ts, event)], dict(event), summary)

    def _step(self, rule: CompiledRule, seq: int, ts: int, event: Mapping[str, Any]) -> Firing | None:
        """The firing of a match rule for a matching event, unless suppressed."""
        r = rule.rule
        if self._suppressed(rule, event, ts):
            return None
        group = {}
        if rule.suppress_by:
            values = [get_path(event, f) for f in rule.suppress_by]
            group = dict(zip(rule.suppress_by, [None if v is MISSING else v for v in values], strict=True))
        summary = summary_of(rule, r.name + (f" ({_describe(group)})" if group else ""), event, 1)
        return Firing(rule, ts, group, 1, [self._ref(seq, ts, event)], dict(event), summary)

    def _count_all(
        self, p: int, rule: CompiledRule, test: Predicate | None, positions: Sequence[int], batch: _Batch
    ) -> None:
        """A threshold rule over its candidate events in one pass: each matching event joins its
        group's window (their group keys read together); a window holding `count` events within
        `window` of each other fires."""
        threshold = rule.rule.threshold
        window_ns = rule.window_ns
        assert threshold is not None
        assert window_ns is not None
        assert rule.group_key is not None
        seqs, bodies, stamps, oldest, _, found = batch
        matching = [
            i
            for i in positions
            if (ts := stamps[i]) is not None and (oldest is None or ts >= oldest) and (test is None or test(bodies[i]))
        ]
        windows, dirty, rule_id, n = self.book.windows, self.book.dirty, rule.id, threshold.count
        for i, values in zip(matching, rule.group_key.many(bodies, matching), strict=True):
            event, ts = bodies[i], stamps[i]
            assert ts is not None
            key = _group_key(values)
            window = windows.get((rule_id, key))
            if window is None:
                window = windows[(rule_id, key)] = []
            entry = (ts, event.get("uuid") or "", seqs[i])  # a tuple of atoms: the collector stops tracking it
            last = not window or entry >= window[-1]  # the usual case: the newest event of its group
            if last:  # the window keeps the events within `window` of its newest
                window.append(entry)
                start = ts - window_ns
                if window[0][0] < start:
                    del window[: bisect.bisect_left(window, (start,))]
            else:  # a late event stays, with those around it, until a newer one comes: a late burst
                bisect.insort(window, entry)  # (or one under an event dated far ahead) still counts
            dirty.add((rule_id, WINDOW, key))
            if len(window) >= n:
                firing = self._threshold_run(rule, window, entry, last, event, values)
                if firing is not None:
                    found.append((i, p, firing))

    def _threshold_run(
        self,
        rule: CompiledRule,
        window: list[tuple[int, str, int]],
        entry: tuple[int, str, int],
        last: bool,
        event: Mapping[str, Any],
        values: Key,
    ) -> Firing | None:
        """The firing when `entry`, just added to its group's window, completes a run of `count`
        events within `window`; the window then starts empty again."""
        r = rule.rule
        assert r.threshold is not None
        assert rule.window_ns is not None
        n = r.threshold.count
        # the runs of n events that end at or after this one and start at or before it; when it is
        # the newest, the window (within `window` of it) holds only the run that ends with it
        i = len(window) - 1 if last else bisect.bisect_left(window, entry)
        for j in range(len(window) - n if last else max(0, i - n + 1), i + 1):
            if j + n - 1 < len(window) and window[j + n - 1][0] - window[j][0] <= rule.window_ns:
                run = window[j : j + n]
                window.clear()
                if self._suppressed(rule, event, entry[0]):  # decided before the alert is built
                    return None
                group = dict(zip(r.threshold.group_by, values, strict=True))
                refs = [{"uuid": u, "timestamp": format_ns(t), "seq": s} for t, u, s in run][-MAX_EVENT_REFS:]
                default = f"{r.name}: {n} events within {r.threshold.window}" + (
                    f" for {_describe(group)}" if group else ""
                )
                return Firing(rule, run[-1][0], group, n, refs, dict(event), summary_of(rule, default, event, n))
        return None

    def _suppressed(self, rule: CompiledRule, event: Mapping[str, Any], ts: int) -> bool:
        """True when a firing at `ts` is within `for` of a firing of its key in event time, before
        or after it (a late event's firing is judged by the firings around its own time, not by
        the latest); otherwise records it. State: `at`, the firing times (sorted), `until`, the
        latest + `for` (its expiry), and `suppressed`, a count."""
        span = rule.suppress_ns
        if span is None:
            return False
        assert rule.suppress_key is not None
        key = _group_key(rule.suppress_key.one(event))
        state = self.book.suppress.get((rule.id, key))
        self.book.dirty.add((rule.id, SUPPRESS, key))
        if state is None:
            self.book.suppress[(rule.id, key)] = {"until": ts + span, "suppressed": 0, "at": [ts]}
            return False
        fired = state.get("at")
        if fired is None:  # saved before firing times were kept: it knew the latest firing only
            fired = state["at"] = [state["until"] - span]
        i = bisect.bisect_left(fired, ts)
        if (i < len(fired) and fired[i] - ts < span) or (i > 0 and ts - fired[i - 1] < span):
            state["suppressed"] += 1
            return True
        fired.insert(i, ts)
        state["until"] = max(state["until"], ts + span)
        return False
