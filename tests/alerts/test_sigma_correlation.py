"""Sigma correlation rules as Sigma users expect them: each `event_count` correlation of a corpus is
loaded into two accounts of a real store, the same events are stored through the EventWriter, and
the alerts siemgate fires are checked against an independent oracle: pySigma's SQLite backend,
which compiles the correlation into SQL (a window function over the matching events) that runs over
the same events in an SQLite table, one view per account. Other correlation types and conditions
are refused by name.

The oracle lists every event at which the condition holds (the count of matching events of its
group within `timespan` before it, bounds included); siemgate fires once when the count is reached
and then counts the group from zero (docs/alerts.md, "Kinds"). So the comparison is: every alert
siemgate fires is at an event the oracle lists, with events the oracle counts there; every event
the oracle lists has an alert of its group within `timespan` before it (no window is missed); and
each group's first alert is at the oracle's first event of that group."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson
import pytest
from sigma.backends.sqlite.sqlite import sqliteBackend
from sigma.collection import SigmaCollection

from siemgate.accounts.actor import CLI
from siemgate.alerts.engine import Evaluator, StateBook
from siemgate.alerts.model import RuleError, compile_rule
from siemgate.alerts.sigma import sigma_to_rules
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import parse_ns
from siemgate.store.base import Account
from support.events import signin

from .test_alerts_live import Site
from .test_sigma_fidelity import _flat

MS = 1_000_000
SPAN_S = 300
BASE = """title: Failed sign-in
name: failed_signin
logsource: {product: 1password, service: signinattempts}
detection:
  selection:
    category: [credentials_failed, mfa_failed]
  condition: selection
---
"""
CORRELATION = """title: Correlated failures
id: 55555555-5555-4555-8555-555555555555
correlation:
  type: event_count
  rules: [failed_signin]
{group}  timespan: {timespan}
  condition: {{{condition}}}
level: high
"""
CASES = {  # name: (group-by fields, condition)
    "group-by one field, gte": (["target_user.email"], "gte: 3"),
    "group-by one field, gt": (["target_user.email"], "gt: 2"),
    "group-by two fields": (["target_user.email", "client.ip_address"], "gte: 3"),
    "no group-by (the whole account)": ([], "gte: 4"),
    "group-by an address, a pair": (["client.ip_address"], "gte: 2"),
}


def correlation_text(group_by: list[str], condition: str, timespan: str = "5m") -> str:
    group = "  group-by: [" + ", ".join(group_by) + "]\n" if group_by else ""
    return BASE + CORRELATION.format(group=group, timespan=timespan, condition=condition)


def _failure(at_ms: int, email: str | None, ip: str = "192.0.2.10", category: str = "credentials_failed") -> Any:
    event = signin(at_ms * MS, category=category, type="password_secret_bad")
    event["client"]["ip_address"] = ip
    if email is None:
        del event["target_user"]["email"]  # in no group of a group-by on it
    else:
        event["target_user"]["email"] = email
    return event


def account_events(start_ms: int, tenant: str) -> list[dict[str, Any]]:
    """Failed (and successful) sign-ins of one account, in time order, that put the window's bounds
    to the test: exactly `timespan` apart (counted), 1 ms more (not), case variants of one address
    (one group), addresses missing, a long run, and a pair that only another account's pair would
    complete. `tenant` "a" or "b": both have `bob`'s pair at the same times."""
    s = 1000
    rows: list[tuple[int, str | None, str, str]] = []
    if tenant == "a":
        rows += [
            (0, "ada@example.com", "192.0.2.10", "credentials_failed"),
            (100 * s, "ADA@example.com", "192.0.2.10", "mfa_failed"),
            (150 * s, "ada@example.com", "192.0.2.10", "success"),
            (SPAN_S * s, "Ada@Example.com", "192.0.2.10", "credentials_failed"),
        ]  # 3 at exactly the span
        rows += [
            (2000 * s, "ada@example.com", "192.0.2.11", "credentials_failed"),
            (2150 * s, "ada@example.com", "192.0.2.11", "credentials_failed"),
            (2000 * s + SPAN_S * s + 1, "ada@example.com", "192.0.2.11", "credentials_failed"),  # 1 ms over
            (2310 * s, "ada@example.com", "192.0.2.11", "credentials_failed"),
        ]
        rows += [(4000 * s + i * 20 * s, "carl@example.com", "198.51.100.7", "credentials_failed") for i in range(7)]
        rows += [
            (6000 * s, None, "203.0.113.5", "credentials_failed"),
            (6010 * s, None, "203.0.113.5", "credentials_failed"),
            (6020 * s, None, "203.0.113.5", "credentials_failed"),
        ]  # no address: no group
    else:
        rows += [(3000 * s + i * 90 * s, "dave@example.com", "198.51.100.9", "mfa_failed") for i in range(3)]
        rows += [(5000 * s, "eve@example.com", "192.0.2.10", "credentials_failed")]
    rows += [(8000 * s, "bob@example.com", "192.0.2.20", "credentials_failed"),
             (8100 * s, "BOB@example.com", "192.0.2.20", "credentials_failed")]  # fmt: skip
    rows.sort(key=lambda r: r[0])
    return [_failure(start_ms + at, email, ip, category) for at, email, ip, category in rows]


Found = dict[tuple[tuple[Any, ...], int], set[str]]  # (group values, end in ms) -> uuids of its events


def oracle(text: str, db: sqlite3.Connection, view: str) -> Found:
    """What pySigma's SQLite backend finds: for each event where the condition holds, its group
    (lower-cased, as the backend groups), its time and the events counted there."""
    [query] = sqliteBackend(table=view, event_id_field="uuid").convert(SigmaCollection.from_yaml(text))
    found: Found = {}
    for group_json, end, ids in db.execute(f"SELECT group_keys, occurrence_time, event_ids FROM ({query})"):
        group = tuple(orjson.loads(group_json).values())
        found[(group, round(end * 1000))] = {i.split(":", 1)[1] for i in orjson.loads(ids)}
    return found


def siemgate_alerts(site: Site, account: Account, rule_id: str) -> Found:
    found: Found = {}
    for alert in site.services.store.list_alerts(account.id, rule_id):
        payload = orjson.loads(alert.payload)
        group = tuple(v.lower() if isinstance(v, str) else v for v in payload["group"].values())
        found[(group, alert.event_ts // MS)] = {e["uuid"] for e in payload["events"]}
    return found


def events_table(tenants: dict[str, list[dict[str, Any]]]) -> sqlite3.Connection:
    """The events of every account in one table (text compared ignoring case, as Sigma values are),
    with one view per account: the oracle runs over an account's view."""
    columns = sorted({k for events in tenants.values() for e in events for k in _flat(e)})
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE TABLE events (tenant, {', '.join(f'`{c}` COLLATE NOCASE' for c in columns)})")
    for tenant, events in tenants.items():
        for event in events:
            flat = _flat(event)
            db.execute(f"INSERT INTO events VALUES (?, {', '.join('?' * len(columns))})",
                       [tenant, *(flat.get(c) for c in columns)])  # fmt: skip
        db.execute(f"CREATE VIEW tenant_{tenant} AS SELECT * FROM events WHERE tenant = '{tenant}'")
    return db


def agree(ours: Found, theirs: Found, span_ms: int) -> None:
    for (group, end), ids in ours.items():
        assert (group, end) in theirs, f"siemgate fired for {group} at {end} where the condition does not hold"
        assert ids <= theirs[(group, end)], f"the alert for {group} at {end} names events the window does not hold"
    for group, end in theirs:
        assert any(g == group and end - span_ms <= at <= end for g, at in ours), f"no alert for {group} at {end}"
    for group in {g for g, _ in theirs}:
        assert min(at for g, at in ours if g == group) == min(at for g, at in theirs if g == group), group


@pytest.mark.parametrize("case", sorted(CASES))
def test_correlations_fire_where_the_oracle_finds_them_and_never_across_accounts(site: Site, case: str) -> None:
    group_by, condition = CASES[case]
    text = correlation_text(group_by, condition)
    other = site.services.store.create_account(new_id(), "Globex", site.clock())
    accounts = {"a": site.account, "b": other}
    start_ms = site.clock() // MS - 3 * 3600 * 1000  # within the evaluated age, three hours ago
    tenants = {t: account_events(start_ms, t) for t in accounts}
    for account in accounts.values():
        site.services.alerts.load_text(CLI, account, text)
    for half in (slice(0, 9), slice(9, None)):  # the accounts' batches interleaved in time, windows across batches
        for tenant, account in accounts.items():
            site.services.writer.write(account.id, Feature.SIGNINATTEMPTS, tenants[tenant][half])
    db = events_table(tenants)
    results = {}
    for tenant, account in accounts.items():
        ours = siemgate_alerts(site, account, "55555555-5555-4555-8555-555555555555")
        theirs = oracle(text, db, f"tenant_{tenant}")
        assert theirs or tenant == "b", f"{case}: the corpus should make the condition hold in account a"
        agree(ours, theirs, SPAN_S * 1000)
        results[tenant] = ours
    bob = ("bob@example.com",) + (("192.0.2.20",) if len(group_by) == 2 else ())
    if not group_by:  # account b never has 4 failures within 5 minutes; with a's bob pair it would
        assert results["b"] == {}
    elif group_by[0] == "target_user.email":  # bob failed twice in each account at the same times
        assert not any(g == bob for g, _ in results["a"] | results["b"])


def test_the_window_bounds_in_event_time() -> None:
    """A run of `count` events exactly `timespan` apart fires; 1 ms more does not (Sigma's window
    includes both ends, as the oracle's RANGE frame does)."""
    [rule] = sigma_to_rules(correlation_text(["target_user.email"], "gte: 2", "10s"))
    compiled = compile_rule(rule)
    assert rule.threshold is not None and rule.threshold.nocase
    assert compiled.predicate(_failure(0, "x@example.com")) and not compiled.predicate(_failure(0, None))

    def fires(gap_ms: int) -> int:
        events = [_failure(1_900_000_000_000, "x@example.com"), _failure(1_900_000_000_000 + gap_ms, "X@example.com")]
        return len(Evaluator([compiled], StateBook()).evaluate(enumerate(events)))

    assert (fires(10_000), fires(10_001)) == (1, 0)


def test_generate_true_loads_the_named_rule_too() -> None:
    text = correlation_text([], "gte: 2").replace("  rules:", "  generate: true\n  rules:")
    assert sorted(r.id for r in sigma_to_rules(text)) == ["55555555-5555-4555-8555-555555555555", "failed_signin"]
    assert [r.id for r in sigma_to_rules(correlation_text([], "gte: 2"))] == ["55555555-5555-4555-8555-555555555555"]


REFUSED = {  # correlation: (the text after `type:`, what the message names)
    "value_count": ("value_count\n  rules: [failed_signin]\n  group-by: [client.ip_address]\n  timespan: 5m\n"
                    "  condition: {gte: 3, field: target_user.email}", "'value_count'"),
    "temporal": ("temporal\n  rules: [failed_signin]\n  group-by: [client.ip_address]\n  timespan: 5m",
                 "'temporal'"),
    "temporal_ordered": ("temporal_ordered\n  rules: [failed_signin]\n  group-by: [client.ip_address]\n"
                         "  timespan: 5m", "'temporal_ordered'"),
    "value_sum": ("value_sum\n  rules: [failed_signin]\n  timespan: 5m\n  condition: {gte: 3, field: x}",
                  "'value_sum'"),
    "value_avg": ("value_avg\n  rules: [failed_signin]\n  timespan: 5m\n  condition: {gte: 3, field: x}",
                  "'value_avg'"),
    "lt": ("event_count\n  rules: [failed_signin]\n  timespan: 5m\n  condition: {lt: 3}", "'lt'"),
    "lte": ("event_count\n  rules: [failed_signin]\n  timespan: 5m\n  condition: {lte: 3}", "'lte'"),
    "eq": ("event_count\n  rules: [failed_signin]\n  timespan: 5m\n  condition: {eq: 3}", "'eq'"),
    "a count of one": ("event_count\n  rules: [failed_signin]\n  timespan: 5m\n  condition: {gte: 1}", "generate"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_other_correlation_types_and_conditions_are_refused_by_name(case: str) -> None:
    body, named = REFUSED[case]
    text = BASE + f"title: Refused correlation\ncorrelation:\n  type: {body}\nlevel: high\n"
    with pytest.raises(RuleError) as info:
        sigma_to_rules(text)
    assert named in str(info.value) and "Refused correlation" in str(info.value), str(info.value)


def test_the_oracle_reads_siemgate_timestamps_to_the_millisecond() -> None:
    """The oracle's clock: SQLite's julianday of siemgate's RFC 3339 timestamps (nanosecond digits,
    Z) must give the same millisecond siemgate parses, or the window bounds above compare nothing."""
    event = _failure(1_900_000_123_456, "x@example.com")
    db = sqlite3.connect(":memory:")
    [(ms,)] = db.execute("SELECT ROUND((julianday(?) - 2440587.5) * 86400000)", [event["timestamp"]])
    assert int(ms) == parse_ns(event["timestamp"]) // MS == 1_900_000_123_456
