"""Sigma as detection engineers write it: rules keep their own ids, every unsupported modifier or
condition is refused by name (never a different meaning, never a 500), ECS and OCSF field names
load and match like native ones, and a corpus covering every supported modifier and condition
form is evaluated by siemgate and by an independent oracle (pySigma's SQLite backend running
the same rules as SQL over the same events) with the same result."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sigma.backends.sqlite.sqlite import sqliteBackend
from sigma.collection import SigmaCollection

from siemgate.accounts.actor import CLI
from siemgate.alerts.fields import check_field
from siemgate.alerts.model import RuleError, compile_rule, parse_rule
from siemgate.alerts.sigma import field_table, sigma_to_rules
from siemgate.errors import BadRequest
from support.events import auditevent, itemusage, signin

from .sigma_field_probe import derive
from .test_alerts_live import Site
from .test_rules_engine import T0, S

HEAD = """title: {title}
{ident}logsource: {{product: 1password, service: {service}}}
detection:
{detection}
level: high
"""


def sigma(detection: str, title: str = "Corpus rule", ident: str = "", service: str = "signinattempts") -> str:
    return HEAD.format(title=title, ident=ident, service=service, detection=detection)


# ids ------------------------------------------------------------------------------------------


def test_a_sigma_rule_keeps_its_own_id_and_answers_to_its_name(site: Site) -> None:
    one = sigma(
        "  sel: {category: success}\n  condition: sel", "Same title", "id: 11111111-1111-4111-8111-111111111111\n"
    )
    two = sigma("  sel: {category: credentials_failed}\n  condition: sel", "Same title",
                "id: 22222222-2222-4222-8222-222222222222\nname: a_b\n")  # fmt: skip
    rules = site.services.alerts
    rules.load_text(CLI, site.account, one)
    rules.load_text(CLI, site.account, two)
    ids = {e.rule.id for e in rules.rules.entries(site.account.id)}
    assert {"11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"} <= ids  # both kept
    assert rules.rules.get(site.account.id, "a_b").rule.id == "22222222-2222-4222-8222-222222222222"


def test_a_rule_loaded_under_its_title_derived_id_moves_to_its_own_id(site: Site) -> None:
    old = parse_rule({"id": "vault-shared", "name": "Vault shared", "source": "auditevents",
                      "match": {"action": "share"}})  # fmt: skip
    site.services.alerts.rules.save(CLI, site.account, old, "file")  # as 0.1 stored it
    text = sigma("  sel: {action: share}\n  condition: sel", "Vault shared",
                 "id: 33333333-3333-4333-8333-333333333333\n", "auditevents")  # fmt: skip
    site.services.alerts.load_text(CLI, site.account, text)
    entry = site.services.alerts.rules.get(site.account.id, "vault-shared")  # the old id keeps working
    assert entry.rule.id == "33333333-3333-4333-8333-333333333333"
    assert [e.rule.id for e in site.services.alerts.rules.entries(site.account.id)].count("vault-shared") == 0


# refusals -------------------------------------------------------------------------------------

REFUSED = {
    "hour": ("  sel: {timestamp|hour: 3}\n  condition: sel", "modifier 'hour'"),
    "base64": ("  sel: {category|base64: x}\n  condition: sel", "modifier 'base64'"),
    "base64offset": ("  sel: {category|base64offset|contains: x}\n  condition: sel", "modifier 'base64offset'"),
    "windash": ("  sel: {category|windash: x}\n  condition: sel", "modifier 'windash'"),
    "wide": ("  sel: {category|wide|contains: x}\n  condition: sel", "modifier 'wide'"),
    "fieldref": ("  sel: {category|fieldref: type}\n  condition: sel", "modifier 'fieldref'"),
    "expand": ("  sel: {category|expand: '%x%'}\n  condition: sel", "modifier 'expand'"),
    "re flag m": ("  sel: {category|re|m: x}\n  condition: sel", "modifier 'multiline'"),
    "neq": ("  sel: {category|neq: x}\n  condition: sel", "modifier 'neq'"),
    "pipe count": ("  sel: {category: x}\n  condition: sel | count() > 5", "pipe syntax"),
    "undefined": ("  sel: {category: x}\n  condition: other", "'other' not defined"),
    "keywords": ("  sel: [foo]\n  condition: sel", "keyword searches"),
    "unknown field": ("  sel: {event.outcome: failure}\n  condition: sel", "'event.outcome' is not a field"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_every_unsupported_construct_is_refused_by_name(case: str) -> None:
    detection, construct = REFUSED[case]
    with pytest.raises(RuleError) as info:
        [compile_rule(r) for r in sigma_to_rules(sigma(detection, "Refused rule"))]
    assert construct in str(info.value)
    assert "Refused rule" in str(info.value) or "'refused-rule'" in str(info.value)  # the rule is named


def test_refusals_are_400s_over_http_and_plain_messages_in_the_cli(site: Site, tmp_path: Path) -> None:
    for case in ("pipe count", "undefined", "hour"):
        with pytest.raises(BadRequest):
            site.services.alerts.load_text(CLI, site.account, sigma(REFUSED[case][0], "Refused rule"))
    path = tmp_path / "bad.yml"
    path.write_text(sigma(REFUSED["pipe count"][0], "Refused rule"))
    done = subprocess.run(
        [sys.executable, "-m", "siemgate", "--data-dir", str(tmp_path / "d"), "alerts", "test", str(path),
         "--events", str(path)],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode != 0 and "Traceback" not in done.stderr and "pipe syntax" in done.stderr


# field names ----------------------------------------------------------------------------------


def test_the_shipped_field_table_is_what_the_formatters_emit() -> None:
    assert field_table() == derive()
    for fmt, services in field_table().items():
        for service, mapping in services.items():
            assert mapping, (fmt, service)
            for native in mapping.values():
                check_field(service, native)


FIELDS = {
    "signinattempts": ("target_user.email", "user.email", "user.email_addr"),
    "itemusages": ("action", "event.action", "activity_name"),
    "auditevents": ("actor_details.email", "user.email", "actor.user.email_addr"),
}
EVENTS: dict[str, list[dict[str, Any]]] = {
    "signinattempts": [signin(T0), signin(T0 + S, target_user={"uuid": "U", "email": "bob@example.com"})],
    "itemusages": [itemusage(T0, action="export"), itemusage(T0 + S, action="fill")],
    "auditevents": [auditevent(T0), auditevent(T0 + S, actor_details={"email": "eve@example.com"})],
}


@pytest.mark.parametrize("service", sorted(FIELDS))
def test_native_ecs_and_ocsf_names_load_and_match_alike(service: str) -> None:
    value = str(EVENTS[service][0]["action" if service == "itemusages" else "target_user" if service == "signinattempts"
                                   else "actor_details"]).lower()  # fmt: skip
    wanted = {"signinattempts": "ada@example.com", "itemusages": "export", "auditevents": "admin@example.com"}[service]
    assert wanted in value
    results = []
    for field in FIELDS[service]:
        [rule] = sigma_to_rules(sigma(f"  sel: {{{field}: '{wanted}'}}\n  condition: sel", service=service))
        compiled = compile_rule(rule)
        results.append([compiled.predicate(e) for e in EVENTS[service]])
    assert results[0] == [True, False] and results[1] == results[0] and results[2] == results[0]


# the corpus against the oracle ----------------------------------------------------------------

CORPUS = {
    "equals": "  sel: {category: success}\n  condition: sel",
    "case-insensitive": "  sel: {category: SUCCESS}\n  condition: sel",
    "cased": "  sel: {category|cased: SUCCESS}\n  condition: sel",
    "value list": "  sel: {category: [success, mfa_failed]}\n  condition: sel",
    "contains": "  sel: {target_user.email|contains: '@example'}\n  condition: sel",
    "startswith": "  sel: {target_user.email|startswith: ada}\n  condition: sel",
    "endswith": "  sel: {target_user.email|endswith: '.org'}\n  condition: sel",
    "all": "  sel: {target_user.email|contains|all: [ada, example]}\n  condition: sel",
    "wildcards": "  sel: {client.app_name: '1Password for M?c*'}\n  condition: sel",
    "re": "  sel: {country|re: '^C.$'}\n  condition: sel",
    "re i": "  sel: {country|re|i: '^c.$'}\n  condition: sel",
    "cidr": "  sel: {client.ip_address|cidr: 10.0.0.0/8}\n  condition: sel",
    "gt": "  sel: {location.latitude|gt: 40}\n  condition: sel",
    "gte": "  sel: {location.latitude|gte: 45.5}\n  condition: sel",
    "lt": "  sel: {location.longitude|lt: -70}\n  condition: sel",
    "lte": "  sel: {location.longitude|lte: 2.35}\n  condition: sel",
    "exists": "  sel: {details|exists: true}\n  condition: sel",
    "exists false": "  sel: {details|exists: false}\n  condition: sel",
    "null": "  sel: {details: null}\n  condition: sel",
    "and, or, not, parentheses": "  a: {category: success}\n  b: {country: FR}\n  c: {country: DE}\n"
    "  condition: a and not (b or c)",
    "list of maps": "  sel:\n    - {country: FR}\n    - {category: mfa_failed}\n  condition: sel",
    "1 of": "  sel_a: {country: FR}\n  sel_b: {country: DE}\n  condition: 1 of sel_*",
    "all of": "  sel_a: {category: success}\n  sel_b: {country: FR}\n  condition: all of sel_*",
    "1 of them": "  a: {country: US}\n  b: {category: credentials_failed}\n  condition: 1 of them",
    "all of them": "  a: {category: success}\n  b: {client.ip_address|cidr: 192.0.2.0/24}\n  condition: all of them",
    # letters beyond A to Z in another case: the long s is s, the final sigma is a sigma (docs/alerts.md)
    "non-ASCII case": "  sel: {target_user.email: 'STÉVE@αθηνας.example'}\n  condition: sel",
    "non-ASCII contains": "  sel: {target_user.email|contains: 'ΘΗΝΑΣ.'}\n  condition: sel",
    "non-ASCII wildcard": "  sel: {target_user.email: 'st?ve@*ς.example'}\n  condition: sel",
}


def _corpus_events() -> list[dict[str, Any]]:
    rows = [
        ("success", "CA", "ada@example.com", "10.1.2.3", 43.6, -79.4, None),
        ("SUCCESS", "FR", "bob@example.org", "192.0.2.7", 48.8, 2.35, {"value": "x"}),
        ("mfa_failed", "DE", "Ada@Example.com", "203.0.113.9", 52.5, 13.4, None),
        ("credentials_failed", "US", "eve@evil.example", "10.9.9.9", 38.9, -77.0, None),
        ("success", "ca", "carl@example.com", "192.0.2.99", 45.5, -73.6, {"value": "y"}),
        (
            "mfa_failed",
            "GR",
            "\u017ft\u00e9ve@\u0391\u0398\u0397\u039d\u0391\u03a3.example",
            "10.2.2.2",
            37.9,
            23.7,
            None,
        ),
        ("success", "gr", "St\u00e9ve@\u0391\u03b8\u03b7\u03bd\u03b1\u03c3.example", "192.0.2.50", 37.9, 23.7, None),
        ("success", "GR", "stephan@athens.example", "192.0.2.51", 37.9, 23.7, None),
    ]
    events = []
    for i, (category, country, email, ip, lat, lon, details) in enumerate(rows):
        event = signin(T0 + i * S, category=category, country=country, details=details)
        event["target_user"]["email"] = email
        event["client"]["ip_address"] = ip
        event["client"]["app_name"] = "1Password for Mac" if i % 2 == 0 else "1Password for Windows"
        event["location"] = {"country": country, "latitude": lat, "longitude": lon}
        events.append(event)
    return events


def _caseless(a: str, b: str) -> int:
    """A collation: equal when Python's `re` matches one as the other ignoring case (Unicode; an
    implementation of its own, neither RE2 nor alerts.caseless)."""
    return 0 if re.fullmatch(re.escape(a), b, re.IGNORECASE) else (-1 if a < b else 1)


def _like(pattern: str | None, value: Any, escape: str = "\\") -> bool | None:
    """SQL's `value LIKE pattern ESCAPE escape`, ignoring case as `_caseless` does (SQLite's own
    LIKE ignores the case of A to Z only)."""
    if pattern is None or value is None:
        return None
    parts, i = [], 0
    while i < len(pattern):
        if pattern[i] == escape and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append({"%": ".*", "_": "."}.get(pattern[i], re.escape(pattern[i])))
        i += 1
    return re.fullmatch("".join(parts), str(value), re.IGNORECASE | re.DOTALL) is not None


def _oracle(text: str, events: list[dict[str, Any]]) -> list[str]:
    """The uuids of `events` pySigma's SQLite backend selects with the rule's SQL. Text compares
    ignoring case, as Sigma says values match whatever their case, in every script: columns with
    the `_caseless` collation (the backend writes plain values as `=`) and LIKE as `_like`
    (`|cased` becomes GLOB, which stays case-sensitive)."""
    [query] = sqliteBackend().convert(SigmaCollection.from_yaml(text))
    columns = sorted({k for e in events for k in _flat(e)})
    db = sqlite3.connect(":memory:")
    db.create_function("REGEXP", 2, lambda p, v: v is not None and re.search(p, str(v)) is not None)
    db.create_collation("CASELESS", _caseless)
    db.create_function("like", 3, _like)
    db.create_function("like", 2, _like)
    db.execute(f"CREATE TABLE logs ({', '.join(f'`{c}` COLLATE CASELESS' for c in columns)})")
    for event in events:
        flat = _flat(event)
        db.execute(f"INSERT INTO logs VALUES ({', '.join('?' * len(columns))})", [flat.get(c) for c in columns])
    return [row[columns.index("uuid")] for row in db.execute(query)]


def _flat(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):  # an object: present itself, and its fields
            out[f"{prefix}{key}"] = json.dumps(value)
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, list) else value
    return out


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_the_corpus_matches_what_the_oracle_selects(case: str) -> None:
    text = sigma(CORPUS[case], ident="id: 44444444-4444-4444-8444-444444444444\n")
    events = _corpus_events()
    [rule] = sigma_to_rules(text)
    compiled = compile_rule(rule)
    ours = [e["uuid"] for e in events if compiled.predicate(e)]
    assert ours == _oracle(text, events), case
    assert 0 < len(ours) < len(events), f"{case}: the corpus events should tell the rule's cases apart"


WILDCARDS_ACROSS_LINES = {
    "inner *": "  sel: {client.app_name: '1Password*Mac'}\n  condition: sel",
    "inner ?": "  sel: {client.app_name: '1Password?for Mac'}\n  condition: sel",
    "contains with *": "  sel: {client.app_name|contains: 'Password*Mac'}\n  condition: sel",
    "cased inner *": "  sel: {client.app_name|cased: '1Password*Mac'}\n  condition: sel",
}


@pytest.mark.parametrize("case", sorted(WILDCARDS_ACROSS_LINES))
def test_a_wildcard_matches_line_breaks_as_sigma_says(case: str) -> None:
    """Sigma's `*` is any characters and `?` any one: a value with a line break in it (free text
    an attacker chose) must not slip past a wildcard (it did: the regex's `.` stopped at `\\n`)."""
    text = sigma(WILDCARDS_ACROSS_LINES[case], ident="id: 44444444-4444-4444-8444-444444444444\n")
    events = _corpus_events()
    events[0]["client"]["app_name"] = "1Password\nfor Mac"
    events[1]["client"]["app_name"] = "1Password for\nMac\n"
    [rule] = sigma_to_rules(text)
    compiled = compile_rule(rule)
    ours = [e["uuid"] for e in events if compiled.predicate(e)]
    assert ours == _oracle(text, events), case
    assert events[0]["uuid"] in ours or events[1]["uuid"] in ours, f"{case}: a value with a line break should match"
