"""Every rule is evaluated on every event of its stream, in the server that all accounts share:
a rule's size is bounded as its text is read, before anything walks it, however it is written
(YAML whose aliases expand a few hundred bytes into millions of values, deep nesting, JSON over
the admin API, Sigma), and the refusal says what to fix."""

from __future__ import annotations

import time
from typing import Any

import pytest

from siemgate.alerts.engine import MAX_SUMMARY, Evaluator, StateBook
from siemgate.alerts.model import MAX_ACTIONS, MAX_KEY_FIELDS, MAX_RULE_VALUES, RuleError, compile_rule, parse_rule
from siemgate.alerts.service import parse_rules_text
from support.admin import Site, error_message, ok
from support.events import auditevent


def alias_bomb(levels: int, rule_id: str = "bomb") -> str:
    """A rule of a few hundred bytes whose condition YAML expands to 10**(levels - 1) tests."""
    anchors = ["&a0 {category: no_such_category}"]
    anchors += [f"&a{i} {{any: [{', '.join([f'*a{i - 1}'] * 10)}]}}" for i in range(1, levels)]
    return f"id: {rule_id}\nname: Bomb\nsource: signinattempts\nmatch: {{any: [{', '.join(anchors)}]}}\n"


def test_yaml_aliases_that_expand_past_the_bound_are_refused_as_the_text_is_read() -> None:
    with pytest.raises(RuleError, match=r"more than 200000 values \(YAML aliases counted"):
        parse_rules_text(alias_bomb(9))  # 10**8 values: refused after counting 200,000 of them
    with pytest.raises(RuleError, match=f"the condition: more than {MAX_RULE_VALUES} values"):
        parse_rules_text(alias_bomb(5))  # 10**4: within a file's bound, past one rule's
    [rule] = parse_rules_text(alias_bomb(3))  # 100 tests: a rule like any other
    assert rule.id == "bomb"


def test_a_condition_nested_too_deeply_or_with_too_many_actions_is_refused() -> None:
    nested: dict[str, Any] = {"category": "success"}
    for _ in range(40):
        nested = {"any": [nested]}
    base = {"id": "deep", "name": "Deep", "source": "signinattempts"}
    with pytest.raises(RuleError, match="nested more than 32 levels deep"):
        parse_rule({**base, "match": nested})
    with pytest.raises(RuleError, match="nested more than"):
        parse_rules_text("[" * 100_000 + "]" * 100_000)  # PyYAML's own recursion: no traceback
    actions = [{"type": "event"}] * (MAX_ACTIONS + 1)
    with pytest.raises(RuleError, match="actions"):
        parse_rule({**base, "match": {"category": "success"}, "actions": actions})


def test_the_admin_api_refuses_oversized_rules_and_saves_nothing(make_server: Any) -> None:
    site = Site(make_server(alerts_enabled=True))
    rules = site.path("/alert-rules")
    before = {r["id"] for r in ok(site.call(site.admin, "GET", rules, params={"limit": "200"}))["items"]}
    message = error_message(site.call(site.admin, "POST", rules, json={"sigma": alias_bomb(6)}), 400)
    assert "more than 200000 values (YAML aliases counted as often as they are used)" in message
    values = [f"user{i}@example.com" for i in range(MAX_RULE_VALUES + 1)]
    body = {"id": "big", "name": "Big", "source": "signinattempts", "match": {"target_user.email": values}}
    assert "more than 5000 values" in error_message(site.call(site.admin, "POST", rules, json=body), 400)
    sigma = "title: Many\nlogsource: {product: 1password, service: signinattempts}\n"
    sigma += "detection:\n  selection: {country: [" + ", ".join(f"c{i}" for i in range(MAX_RULE_VALUES + 1))
    sigma += "]}\n  condition: selection\n"
    assert "more than 5000 values" in error_message(site.call(site.admin, "POST", rules, json={"sigma": sigma}), 400)
    after = {r["id"] for r in ok(site.call(site.admin, "GET", rules, params={"limit": "200"}))["items"]}
    assert after == before


def test_a_rule_stored_before_the_bounds_still_loads() -> None:
    """The bounds guard what is saved; a rule saved before them is read back as it was (an
    operator deletes it), so the account's alerting keeps working after an upgrade."""
    values = [f"c{i}" for i in range(MAX_RULE_VALUES + 1)]
    data: dict[str, Any] = {"id": "old", "name": "Old", "source": "signinattempts", "match": {"country": values}}
    data["actions"] = [{"type": "event"}] * (MAX_ACTIONS + 1)
    with pytest.raises(RuleError, match="more than 5000 values"):
        parse_rule(data)
    assert len(parse_rule(data, stored=True).actions) == MAX_ACTIONS + 1


def test_a_sigma_condition_naming_a_large_selection_many_times_is_refused_before_pysigma_reads_it() -> None:
    """pySigma copies a selection for every mention in the condition: 1,000 mentions of a
    1,000-value selection (a 19 KB text) took 17 s and 347 MB before the translated rule was
    refused. The condition is measured first, each selection counted as often as it is named."""
    values = ", ".join(f"c{i}" for i in range(1000))
    head = "title: Many\nlogsource: {product: 1password, service: signinattempts}\ndetection:\n"
    many = head + f"  selection: {{country: [{values}]}}\n  condition: {' or '.join(['selection'] * 1000)}\n"
    with pytest.raises(RuleError, match="names selections holding more than 5000 values in all"):
        parse_rules_text(many)
    by_pattern = head + f"  sel_a: {{country: [{values}]}}\n  condition: {' or '.join(['1 of sel_*'] * 6)}\n"
    with pytest.raises(RuleError, match="names selections holding more than 5000 values"):
        parse_rules_text(by_pattern)
    [rule] = parse_rules_text(head + f"  selection: {{country: [{values}]}}\n  condition: selection or selection\n")
    assert rule.source == "signinattempts"


def test_a_summary_template_is_bounded_when_saved_and_its_alerts_summaries_when_filled(make_server: Any) -> None:
    """A summary of many placeholders of a long field (`{aux_info}` 100 times on 60,000
    characters) filled a 6 MB summary per alert; 100,000 of them, in the 1 MiB an admin request
    may hold, 6 GB. The template is at most 1,000 characters when saved (400 naming the bound),
    and a filled summary, also of a rule stored before, at most MAX_SUMMARY."""
    site = Site(make_server(alerts_enabled=True))
    body = {"id": "long", "name": "Long", "source": "auditevents", "match": {"action": "update"}}
    body["summary"] = "{aux_info}" * 101
    message = error_message(site.call(site.admin, "POST", site.path("/alert-rules"), json=body), 400)
    assert "summary: Value error, at most 1000 characters; this summary has 1010" in message
    stored = compile_rule(parse_rule(body | {"summary": "{aux_info}" * 100_000}, stored=True))
    event = auditevent(time.time_ns(), action="update", aux_info="x" * 60_000)
    [firing] = Evaluator([stored], StateBook()).evaluate([(1, event)])
    assert len(firing.summary) == MAX_SUMMARY and firing.summary.endswith("x…")


def test_group_by_first_seen_and_suppression_fields_are_bounded() -> None:
    """Each event's values of these fields make one key, kept per group: a group_by of 500 copies
    of aux_info (50,000 fit in an admin request) made a 30 MB key from one 60 KB event. At most
    MAX_KEY_FIELDS when saved; a rule stored with more keeps loading."""
    base = {"id": "k", "name": "K", "source": "auditevents", "match": {"action": "update"}}
    many = ["aux_info"] * (MAX_KEY_FIELDS + 1)
    for extra, where in (
        ({"threshold": {"count": 2, "window": "1h", "group_by": many}}, "threshold.group_by"),
        ({"first_seen": {"key": ["actor_uuid"], "value": many}}, "first_seen.value"),
        ({"suppress": {"for": "1h", "by": many}}, "suppress.by"),
    ):
        with pytest.raises(RuleError, match=f"{where}: Value error, at most 16 fields; this list has 17"):
            parse_rule(base | extra)
        parse_rule(base | extra, stored=True)
    assert parse_rule(base | {"suppress": {"for": "1h", "by": many[:MAX_KEY_FIELDS]}}).suppress is not None
