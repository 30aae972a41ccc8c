"""Rule kinds, matching operators, Sigma translation and the starter set, through the pure engine
and `test_rule` (no server)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from siemgate.alerts.builtin import starter_rules, starter_sigma
from siemgate.alerts.engine import Evaluator, StateBook
from siemgate.alerts.model import RuleError, compile_rule, load_rule
from siemgate.alerts.service import parse_rules_text
from siemgate.alerts.service import test_rule as run_rule
from siemgate.alerts.sigma import sigma_to_rules
from siemgate.model.timestamps import parse_ns
from siemgate.store.base import AlertStateEntry
from support.events import auditevent, failed, itemusage, signin

T0 = 1_800_000_000_000_000_000
S = 1_000_000_000


def rule(**kw: Any) -> Any:
    base = {"id": "r", "name": "R", "source": "signinattempts", "match": {"category": "credentials_failed"}}
    return load_rule(base | kw)


def test_operators_on_nested_fields() -> None:
    e = signin(T0)
    e["client"]["ip_address"] = "10.1.2.3"
    cases = {
        "eq": ({"target_user.email": "ada@example.com"}, True),
        "nocase": ({"target_user.email": {"eq": "ADA@example.com", "nocase": True}}, True),
        "set": ({"category": ["success", "mfa_failed"]}, True),
        "not_in": ({"category": {"not_in": ["success"]}}, False),
        "prefix": ({"target_user.email": {"prefix": "ada@"}}, True),
        "suffix": ({"target_user.email": {"suffix": "@example.org"}}, False),
        "contains": ({"client.app_name": {"contains": "Mac"}}, True),
        "regex": ({"client.app_version": {"regex": "^8[0-9]+$"}}, True),
        "numeric string": ({"client.app_version": {"gte": 81024002, "lt": 90000000}}, True),
        "number": ({"location.latitude": {"gt": 43.0}}, True),
        "after": ({"timestamp": {"after": "2020-01-01T00:00:00Z"}}, True),
        "before": ({"timestamp": {"before": "2020-01-01T00:00:00Z"}}, False),
        "cidr": ({"client.ip_address": {"cidr": "10.0.0.0/8"}}, True),
        "exists": ({"details": {"exists": False}}, True),
        "missing": ({"location.region": {"eq": "Quebec"}}, False),
        "any/not": ({"any": [{"country": "FR"}, {"not": {"country": "FR"}}]}, True),
    }
    for name, (match, expected) in cases.items():
        compiled = rule(match=match)
        assert compiled.predicate(e) is expected, name


def test_aux_info_json_is_looked_into() -> None:
    compiled = load_rule(
        {"id": "o", "name": "O", "source": "auditevents", "match": {"aux_info.role": "owner", "action": "join"}}
    )
    assert compiled.predicate(auditevent(T0, action="join", aux_info='{"role":"owner"}'))
    assert not compiled.predicate(auditevent(T0, action="join", aux_info='{"role":"member"}'))
    assert not compiled.predicate(auditevent(T0, action="join", aux_info="A"))


def test_bad_rules_say_what_to_fix() -> None:
    with pytest.raises(RuleError, match=r"did you mean .*client.ip_address"):
        rule(match={"client.ip": "1.2.3.4"})
    with pytest.raises(RuleError, match="unknown operator 'startswith'"):
        rule(match={"country": {"startswith": "F"}})
    with pytest.raises(RuleError, match=r"regular expression .* is not supported: missing \)"):
        rule(match={"country": {"regex": "("}})
    with pytest.raises(RuleError, match="not a duration"):
        rule(threshold={"count": 3, "window": "soon"})
    with pytest.raises(RuleError, match="secret"):
        rule(actions=[{"type": "webhook", "url": "https://x.example"}])


def test_threshold_sliding_window_per_group_and_suppression() -> None:
    r = rule(threshold={"count": 3, "window": "5m", "group_by": ["target_user.email"]}, suppress={"for": "1h"})
    events = [
        failed(T0, "a@x.test"),
        failed(T0 + 60 * S, "b@x.test"),
        failed(T0 + 120 * S, "a@x.test"),
        failed(T0 + 400 * S, "a@x.test"),  # the first a@ is now outside 5 minutes
        failed(T0 + 410 * S, "a@x.test"),  # 120, 400, 410: three within 5 minutes
        failed(T0 + 420 * S, "a@x.test"),
        failed(T0 + 430 * S, "a@x.test"),
        failed(T0 + 440 * S, "a@x.test"),  # another three, suppressed (within the hour)
        failed(T0 + 4100 * S, "a@x.test"),
        failed(T0 + 4101 * S, "a@x.test"),
        failed(T0 + 4102 * S, "a@x.test"),  # after the hour: fires again
    ]
    firings = run_rule(r, events)
    assert [(f.count, f.group) for f in firings] == [(3, {"target_user.email": "a@x.test"})] * 2
    assert [ref["uuid"] for ref in firings[0].events] == [e["uuid"] for e in (events[2], events[3], events[4])]


def test_out_of_order_events_count_by_their_time() -> None:
    r = rule(threshold={"count": 3, "window": "1m", "group_by": ["target_user.email"]})
    events = [failed(T0 + 50 * S), failed(T0 + 10 * S), failed(T0 + 300 * S, "other@x.test"), failed(T0 + 30 * S)]
    firings = run_rule(r, events)
    assert len(firings) == 1
    assert {ref["uuid"] for ref in firings[0].events} == {events[0]["uuid"], events[1]["uuid"], events[3]["uuid"]}


def test_first_seen_learns_then_fires_on_new_values() -> None:
    r = starter_rules()["signin-new-country"]
    user = signin(T0)["target_user"]

    def at(ts: int, country: str) -> dict[str, Any]:
        return signin(ts, country=country, target_user=user)

    events = [at(T0, "CA"), at(T0 + S, "CA"), at(T0 + 2 * S, "FR"), at(T0 + 3 * S, "FR"), at(T0 + 4 * S, "US")]
    firings = run_rule(compile_rule(r), events)
    assert [f.group["country"] for f in firings] == ["FR", "US"]
    assert "signed in from FR for the first time" in firings[0].summary


def test_state_round_trips_through_entries() -> None:
    r = rule(threshold={"count": 3, "window": "5m"})
    book = StateBook()
    Evaluator([r], book).evaluate([(1, failed(T0)), (2, failed(T0 + S))])
    entries = book.changes()
    # Loaded an hour later by the wall clock: the window is kept, since its expiry is in event time.
    restored = StateBook.load(entries, horizon=T0 + 3600 * S - 7 * 86400 * S)
    assert len(Evaluator([r], restored).evaluate([(3, failed(T0 + 2 * S))])) == 1
    restored = StateBook.load(entries, horizon=T0 - 7 * 86400 * S)
    assert Evaluator([r], restored).evaluate([(3, failed(T0 + 3600 * S))]) == []  # an hour later in event time
    gone = StateBook.load(entries, horizon=T0 + 3600 * S)  # older than any event still evaluated: dropped
    assert gone.windows == {} and len(gone.changes()) == 1


def _fire_ids(compiled: Any, events: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(f.count, f.summary) for f in run_rule(compiled, events)]


def corpus() -> dict[str, list[dict[str, Any]]]:
    """Events that make every starter rule fire (and some that must not)."""
    user = signin(T0)["target_user"]
    signins = [failed(T0 + i * S) for i in range(12)]
    signins += [signin(T0 + 20 * S, country=c, target_user=user) for c in ("CA", "DE")]
    stuffing = [failed(T0 + 40 * S + i * S, f"person{i}@example.com") for i in range(20)]  # one try each
    for event in stuffing:
        event["client"]["ip_address"] = "198.51.100.7"
    signins += stuffing
    signins += [
        signin(T0 + 30 * S + i * S, category="firewall_failed", type="ip_blocked", details={"value": "1.2.3.4"})
        for i in range(25)
    ]
    items = [itemusage(T0 + i * S, action="reveal") for i in range(30)]
    audits = [
        auditevent(T0, action="disblmfa", object_type="user"),
        auditevent(T0, action="suspend", object_type="user"),
        auditevent(T0, action="join", object_type="user", aux_info='{"role":"owner"}'),
        auditevent(T0, action="join", object_type="user", aux_info='{"role":"member"}'),
        auditevent(T0, action="trevoke", object_type="satoken", aux_info='{"name":"splunk"}'),
        auditevent(T0, action="trevoke", object_type="satoken", aux_info='{"kind":"ingest key","name":"k"}'),
    ]
    tokens = [
        {"id": "T1", "name": "old", "timestamp": "2027-01-01T00:00:00Z", "status": "active", "idle_seconds": 90000},
        {"id": "T2", "name": "new", "timestamp": "2027-01-01T00:00:00Z", "status": "active", "idle_seconds": 60},
        {"id": "T3", "name": "gone", "timestamp": "2027-01-01T00:00:00Z", "status": "revoked", "idle_seconds": 9e6},
    ]
    logs = [
        {"id": "auditevents", "feature": "auditevents", "timestamp": "2027-01-01T00:00:00Z", "status": "ok"},
        {"id": "itemusages", "feature": "itemusages", "timestamp": "2027-01-01T00:00:00Z", "status": "stale",
         "reason": "the newest checkpoint is 9000 s old"},
    ]  # fmt: skip
    return {"signinattempts": signins, "itemusages": items, "auditevents": audits, "tokens": tokens, "integrity": logs}


def test_every_starter_rule_fires_and_its_sigma_form_fires_alike() -> None:
    events = corpus()
    sigma = {r.id: r for text in starter_sigma().values() for r in sigma_to_rules(text)}
    assert set(sigma) == set(starter_rules())
    for rule_id, native in starter_rules().items():
        assert native.enabled
        compiled = compile_rule(native)
        fired = _fire_ids(compiled, events[native.source])
        assert len(fired) == 1, (rule_id, fired)
        assert _fire_ids(compile_rule(sigma[rule_id]), events[native.source]) == fired, rule_id
        assert sigma[rule_id].model_dump(exclude={"match", "threshold"}) == native.model_dump(
            exclude={"match", "threshold"}
        ), rule_id


def test_sigma_constructs_and_errors() -> None:
    text = """
title: Odd sign-in
logsource: {product: 1password, service: signinattempts}
detection:
  sel:
    target_user.email|endswith: '@example.com'
    client.ip_address|cidr: 192.0.2.0/24
  odd:
    type|re: '^(totp|u2f)_'
    client.app_name|contains|all: ['1Password', 'Mac']
  quiet:
    country: [CA, US]
  condition: sel and 1 of odd and not quiet
level: critical
"""
    [r] = sigma_to_rules(text)
    assert (r.id, r.severity) == ("odd-sign-in", "critical")
    compiled = compile_rule(r)
    hit = signin(T0, type="totp_bad", category="mfa_failed", country="FR")
    hit["client"]["ip_address"] = "192.0.2.7"
    assert compiled.predicate(hit)
    assert not compiled.predicate(hit | {"country": "ca"})  # Sigma strings ignore case
    with pytest.raises(RuleError, match="logsource"):
        sigma_to_rules(text.replace("1password", "windows"))
    keywords = "keywords: [x]\n  condition: keywords"
    with pytest.raises(RuleError, match="keyword"):
        sigma_to_rules(text.replace("condition: sel and 1 of odd and not quiet", keywords))


def test_rule_files_hold_one_or_many_rules() -> None:
    two = "- {id: a, name: A, source: auditevents, match: {action: suspend}}\n" \
          "- {id: b, name: B, source: auditevents, match: {action: join}}\n"  # fmt: skip
    assert [r.id for r in parse_rules_text(two)] == ["a", "b"]
    with pytest.raises(RuleError, match="not valid YAML"):
        parse_rules_text("a: [")


def test_the_rule_index_and_its_remaining_tests_select_what_the_full_predicates_select() -> None:
    """An event meets only the rules its indexed field's value can match, each with the rest of its
    condition; together they must select exactly the rules whose whole condition holds (string,
    number and null values, any case, absent fields)."""
    extra = [
        {"category": {"in": ["SUCCESS", "mfa_failed"], "nocase": True}, "country": {"exists": True}},
        {"category": "3"},
        {"category": "1"},
        {"category": {"eq": "success"}, "not": {"country": "CA"}},
        {"category": ["success", 3]},
        {"any": [{"category": "credentials_failed"}, {"country": "FR"}]},
        {"category": {"ne": "success"}},
    ]
    rules = [compile_rule(r) for r in starter_rules().values() if r.source == "signinattempts"]
    rules += [
        load_rule({"id": f"x{i}", "name": "X", "source": "signinattempts", "match": m}) for i, m in enumerate(extra)
    ]
    index = Evaluator(rules, StateBook()).index
    assert index.field == "category"
    events = []
    values = ("success", "SUCCESS", "credentials_failed", "mfa_failed", "firewall_failed", 3, "3", 1, 1.0, True, None)
    for value in values:
        for country in ("CA", "FR", None):
            event = signin(T0, category=value, country=country)
            if value is None:
                del event["category"]
            events.append(event)
    for event in events:
        wanted = [r.id for r in rules if r.predicate(event)]
        found = [r.id for r, rest in index.candidates(event) if rest is None or rest(event)]
        assert sorted(found) == sorted(wanted), (event.get("category"), event.get("country"))


def test_first_seen_values_dropped_past_max_values_are_new_again() -> None:
    """A person's values beyond `max_values` drop the oldest, which is then new again when it comes
    back — in one book and in one reloaded from its saved state — and a rule whose learnt values
    are forgotten (rebuilt from history) knows none of them."""
    compiled = rule(
        match={"category": "success"},
        first_seen={"key": ["target_user.uuid"], "value": ["country"], "max_values": 2},
    )
    person = signin(T0)["target_user"]

    def at(i: int, country: str) -> tuple[int, dict[str, Any]]:
        event = signin(T0 + i * S, target_user=person)
        event["country"] = country
        return i, event

    def fired(book: StateBook, *events: tuple[int, dict[str, Any]]) -> list[str]:
        return [f.group["country"] for f in Evaluator([compiled], book).evaluate(list(events))]

    book = StateBook()
    assert fired(book, at(1, "CA"), at(2, "FR"), at(3, "CA")) == ["FR"]
    assert fired(book, at(4, "DE"), at(5, "FR")) == ["DE"]  # DE drops CA, the oldest
    reloaded = StateBook.load(book.changes())
    for b in (book, reloaded):
        assert fired(b, at(6, "FR"), at(7, "DE"), at(8, "CA")) == ["CA"]  # CA came back: new again
    book.forget_seen(compiled.id)
    assert fired(book, at(9, "DE"), at(10, "GB")) == ["GB"]  # DE learnt again as the first


def test_first_seen_values_past_the_bound_leave_the_rules_holding_most() -> None:
    """StateBook.trim_seen: past the limit, the rules over their fair share (what each may keep for
    all to fit in 90 % of it) lose the keys that learnt a value least recently, whole; a rule
    under its share loses nothing; the set of known (key + value) pairs follows, so a dropped
    key's next value is its first again."""
    book = StateBook()
    for rule_id in ("small", "wide", "deep"):
        book.known_pairs(rule_id)  # built first: trim_seen must keep it in step
    book.remember("small", ("p",), ("CA",), 10)
    for n in range(30):
        book.remember("wide", (f"k{n}",), ("v",), 10)  # 30 keys of one value, k0 learnt first
    for n in range(12):
        book.remember("deep", (f"d{n % 3}",), (f"v{n}",), 10)  # 3 keys of 4 values
    book.remember("wide", ("k0",), ("w",), 10)  # k0 learns again: now the most recent
    assert book.trim_seen(100) == {} and book.values == 44
    book.changes()  # saved: what trimming marks dirty is what it deletes
    assert book.trim_seen(40) == {"wide": 8}  # 36 to keep: small 1, deep 12, wide 23 (k0 has 2)
    assert list(book.seen["wide"]) == [(f"k{n}",) for n in range(9, 30)] + [("k0",)]
    assert book.values == 36 and len(book.seen["deep"]) == 3 and len(book.seen["small"]) == 1
    assert book.known_pairs("wide") == {k + v for k, values in book.seen["wide"].items() for v in values}
    assert book.remember("wide", ("k5",), ("v",), 10) == 2  # NEW_KEY: its first value again
    dropped = book.trim_seen(10)  # 9 to keep: small 1, a share of 4 each for deep and wide
    assert dropped == {"wide": 20, "deep": 2} and book.values == 9
    assert list(book.seen["wide"]) == [("k29",), ("k0",), ("k5",)] and list(book.seen["deep"]) == [("d2",)]
    assert {rule_id for rule_id, _, _ in book.dirty} == {"wide", "deep"}  # the small rule lost nothing


def test_first_seen_values_that_compare_equal_are_stored_as_they_came() -> None:
    """1, 1.0 and True are one value to a first-seen rule (as to any dictionary), and each is saved
    as it was first seen: a value seen first for one person does not change another's."""
    compiled = rule(
        match={"category": "success"},
        first_seen={"key": ["target_user.uuid"], "value": ["client.app_version"], "alert_on_first": True},
    )
    events = []
    for i, version in enumerate([True, 1, 1.0, "1"]):
        event = signin(T0 + i * S)
        event["client"]["app_version"] = version
        events.append((i, event))
    book = StateBook()
    Evaluator([compiled], book).evaluate(events)
    saved = sorted(orjson.dumps(orjson.loads(e.value)["values"]).decode() for e in book.changes() if e.kind == "seen")
    assert saved == sorted(['["[true]"]', '["[1]"]', '["[1.0]"]', '["[\\"1\\"]"]'])


def test_suppression_judges_a_late_firing_by_the_firings_around_its_own_time() -> None:
    """`suppress: {for: 1h}` suppresses firings within the hour of a firing of their key. A burst
    stored late, hours before one that already fired, is another incident and fires (it was
    suppressed: every earlier event time counted as within the suppression); one within the hour
    of either firing is suppressed, before or after it, also once the state was saved and loaded."""
    r = rule(threshold={"count": 2, "window": "5m", "group_by": ["target_user.email"]}, suppress={"for": "1h"})
    h = 3600 * S

    def burst(at: int) -> list[dict[str, Any]]:
        return [failed(at), failed(at + S)]

    def run(book: StateBook, events: list[dict[str, Any]], start: int) -> list[int]:
        firings = Evaluator([r], book).evaluate(list(enumerate(events, start=start)))
        return [f.event_ts for f in firings]

    book = StateBook()
    assert run(book, burst(T0 + 5 * h), 1) == [T0 + 5 * h + S]
    assert run(book, burst(T0), 3) == [T0 + S]  # 5 hours earlier, stored late: its own incident
    assert run(book, burst(T0 + h // 2) + burst(T0 + 5 * h - h // 2), 5) == []  # within the hour of one
    saved = StateBook.load(e for e in book.changes() if e.value)  # as the store holds it
    assert run(saved, burst(T0 + 2 * h), 9) == [T0 + 2 * h + S]  # an hour and more from both
    assert run(saved, burst(T0 + 2 * h + h // 2) + burst(T0 + 5 * h + h // 2), 11) == []
    [state] = saved.suppress.values()
    saved.expire(T0 + 3 * h)  # firing times no event still evaluated is within the hour of go
    assert state["at"] == [T0 + 2 * h + S, T0 + 5 * h + S] and state["until"] == T0 + 6 * h + S
    # a state saved before firing times were kept knows the latest firing only (until - 1h)
    legacy = StateBook.load(
        [AlertStateEntry("r", "suppress", '["ada@example.com"]', f'{{"until": {T0 + 6 * h + S}, "suppressed": 0}}')]
    )
    assert run(legacy, burst(T0 + 5 * h + h // 2), 1) == []
    assert run(legacy, burst(T0), 3) == [T0 + S]


def test_suppressions_saved_by_0_1_are_keyed_as_the_rule_reads_its_values_now() -> None:
    """0.1 saved a suppression under the JSON of its `by` values as the event had them, with no
    firing times: refold_suppress moves each under the key the rule reads now (strings folded
    when it ignores case; an object as its sorted JSON text), merging those that then share one
    (each firing kept, counts added); state saved since 0.2 (with `at`) and a second call are
    left as they are."""
    h = 3600 * S
    entries = [
        AlertStateEntry("r", "suppress", '["Ada@Example.com"]', f'{{"until": {T0 + 2 * h}, "suppressed": 2}}'),
        AlertStateEntry("r", "suppress", '["ada@example.com"]', f'{{"until": {T0 + 3 * h}, "suppressed": 1}}'),
        AlertStateEntry(
            "r", "suppress", '["BOB@example.com"]', f'{{"until": {T0 + h}, "suppressed": 0, "at": [{T0}]}}'
        ),
        AlertStateEntry(
            "exact", "suppress", '["Ada@Example.com", {"b": 1, "a": "X"}]', f'{{"until": {T0}, "suppressed": 0}}'
        ),
    ]
    book = StateBook.load(entries)
    for _ in range(2):
        book.refold_suppress("r", True, h)
        book.refold_suppress("exact", False, h)
    assert book.suppress == {
        ("r", '["ada@example.com"]'): {"until": T0 + 3 * h, "suppressed": 3, "at": [T0 + h, T0 + 2 * h]},
        ("r", '["BOB@example.com"]'): {"until": T0 + h, "suppressed": 0, "at": [T0]},
        ("exact", '["Ada@Example.com","{\\"a\\":\\"X\\",\\"b\\":1}"]'): {"until": T0, "suppressed": 0, "at": [T0 - h]},
    }
    saved = {(e.rule_id, e.key): e.value for e in book.changes() if e.kind == "suppress"}
    assert saved[("r", '["Ada@Example.com"]')] == "" and orjson.loads(saved[("r", '["ada@example.com"]')])["at"]


def test_a_late_burst_fires_under_a_newer_event_of_its_group() -> None:
    """Count events within `window` of each other by event time, whatever order they come in: a
    burst stored late, after a newer event of its group (an hour later, or one dated far ahead,
    which an attacker can write to blind a group), fires. Each late event was dropped at once:
    the window kept only events within `window` of its newest, so nothing under it ever fired."""
    r = rule(threshold={"count": 3, "window": "5m", "group_by": ["target_user.email"]})
    late = [failed(T0 + 3600 * S)] + [failed(T0 + i * S) for i in range(3)]
    [firing] = run_rule(r, late)
    assert [ref["uuid"] for ref in firing.events] == [e["uuid"] for e in late[1:]]
    ahead = [failed(parse_ns("2260-01-01T00:00:00Z"))] + [failed(T0 + i * S) for i in range(3)]
    assert len(run_rule(r, ahead)) == 1
    spread = [failed(T0 + 3600 * S)] + [failed(T0 + i * 600 * S) for i in range(3)]  # 10 minutes apart
    assert run_rule(r, spread) == []
    book = StateBook()
    Evaluator([r], book).evaluate(list(enumerate(spread, start=1)))
    [window] = book.windows.values()
    assert len(window) == 4
    book.expire(T0 + 700 * S)  # late events no evaluated event is within `window` of leave
    assert [ts for ts, _, _ in window] == [T0 + 600 * S, T0 + 1200 * S, T0 + 3600 * S]


def test_a_firing_dated_far_ahead_does_not_suppress_the_present() -> None:
    """A match rule suppressed for an hour: one event dated 2260 (a valid timestamp) fired and
    suppressed every firing of its key before 2260, for good."""
    r = rule(suppress={"for": "1h", "by": ["target_user.email"]})
    events = [failed(parse_ns("2260-01-01T00:00:00Z")), failed(T0), failed(T0 + S), failed(T0 + 7200 * S)]
    assert [f.event_ts for f in run_rule(r, events)] == [parse_ns("2260-01-01T00:00:00Z"), T0, T0 + 7200 * S]


def test_first_seen_keys_load_in_the_order_they_learnt_and_older_state_first() -> None:
    """Saved first-seen keys carry the order they learnt (`learnt`), so a restart keeps what
    trim_seen drops first; state saved before that (a list of values) loads first, as learnt
    before all of it, and numbers go on past the highest loaded."""
    book = StateBook()
    for key in ("b", "a", "c"):
        book.remember("r", (key,), ("CA",), 10)
    saved = book.changes()
    assert [orjson.loads(e.value)["learnt"] for e in saved] == [2, 1, 3]  # sorted by key: a, b, c
    old = AlertStateEntry("r", "seen", '["z"]', '["[\\"FR\\"]"]', None)
    loaded = StateBook.load([*reversed(saved), old])
    assert list(loaded.seen["r"]) == [("z",), ("b",), ("a",), ("c",)] and loaded.learnt == 3
    loaded.remember("r", ("b",), ("FR",), 10)
    [entry] = loaded.changes()
    assert orjson.loads(entry.value) == {"values": ['["CA"]', '["FR"]'], "learnt": 4}


def test_saved_learn_order_numbers_rules_in_id_order_in_every_process() -> None:
    """The numbers saved with first-seen keys follow the rules' ids, not the order of the
    change set (a set of strings, ordered by the process's hash seed): a batch and the same
    events one at a time, or two processes, saved different numbers for the same state."""
    book = StateBook()
    rules = [f"rule-{n}" for n in range(12)]
    for rule_id in reversed(rules):
        book.remember(rule_id, ("k",), ("CA",), 10)
    numbers = {e.rule_id: orjson.loads(e.value)["learnt"] for e in book.changes()}
    assert [numbers[r] for r in sorted(rules)] == list(range(1, 13))


def test_numeric_strings_are_decimal_numbers_compared_exactly() -> None:
    """A string counts as a number only in decimal notation with ASCII digits ("81118003", "-2.5",
    "1e3"), and numbers compare exactly: float() took " 12 ", "1_000", "nan", "infinity"
    and other scripts' digits for numbers, and rounded integers past 2**53."""
    e = signin(T0)

    def matches(value: Any, test: Any) -> bool:
        e["client"]["app_version"] = value
        return bool(rule(match={"client.app_version": test}).predicate(e))

    for text in (" 12 ", "12\n", "1_2", "١٢", "0xc", "+12"):
        assert not matches(text, {"eq": 12}), text
    assert not matches("infinity", {"gt": 10**300}) and matches("1e999", {"gt": 10**300})
    assert not matches("nan", {"lt": 1}) and matches("nan", {"ne": 1})
    assert matches("12", {"eq": 12}) and matches("12.0", {"eq": 12}) and matches("1.2e1", {"gte": 12, "lte": 12})
    assert matches("0.1", {"eq": 0.1}) and matches(0.1, {"eq": "0.1"}) and not matches("0.1", {"gt": 0.1})
    assert matches(2**53 + 1, {"gt": 2**53}) and not matches(2**53 + 1, {"eq": 2**53})
    assert not matches(str(2**53 + 1), {"eq": 2**53}) and matches("81118003", {"gte": 81024002, "lt": 90000000})
