"""Sigma rules (the detection format SIEM teams share), parsed with pySigma and translated into
siemgate rules (alerts.model.Rule). Supported (docs/alerts.md, "Sigma"):

- logsource: `product: 1password` (or `siemgate`) and `service:` one of signinattempts,
  itemusages, auditevents, tokens; field names are the events' own dotted paths.
- detection: selections as maps (AND) and lists (OR); value lists; `1 of`/`all of` with
  wildcards; `and`, `or`, `not`, parentheses; modifiers `contains`, `startswith`, `endswith`,
  `all`, `re` (with `i`), `cidr`, `gt`, `gte`, `lt`, `lte`, `exists`, `cased`; `*` and `?`
  wildcards; `null`. Strings compare case-insensitively, as Sigma says, unless `|cased`.
- correlation rules of type `event_count` with `gte`/`gt` conditions, `group-by` and `timespan`
  become threshold rules over the rule they name (which must be in the same text).
- siemgate's own options go in a top-level `siemgate:` map: `id`, `suppress`, `first_seen`,
  `actions`, `summary`, `enabled` (Sigma has no first-seen construct and no actions).

Anything else (keywords without a field, field references, other correlation types) raises
RuleError naming the construct.
"""

from __future__ import annotations

import re
from typing import Any

from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from siemgate.alerts.fields import SOURCES
from siemgate.alerts.model import Rule, RuleError, parse_rule

PRODUCTS = ("1password", "siemgate")
LEVELS = {"informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
_COMPARE = {
    CompareOperators.GT: "gt",
    CompareOperators.GTE: "gte",
    CompareOperators.LT: "lt",
    CompareOperators.LTE: "lte",
}
_OPTIONS = ("id", "suppress", "first_seen", "actions", "summary", "enabled")


def is_sigma(document: Any) -> bool:
    """Whether a parsed YAML document is a Sigma rule (it has `detection` or `correlation`)."""
    return isinstance(document, dict) and ("detection" in document or "correlation" in document)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64] or "sigma-rule"


def _string(field: str, value: SigmaString) -> dict[str, Any]:
    nocase = not isinstance(value, SigmaCasedString)
    parts = value.s
    plain = [p for p in parts if isinstance(p, str)]
    specials = [p for p in parts if not isinstance(p, str)]
    test: dict[str, Any]
    if not specials:
        test = {"eq": "".join(plain)}
    elif len(parts) == 2 and parts[1] == SpecialChars.WILDCARD_MULTI and isinstance(parts[0], str):
        test = {"prefix": parts[0]}
    elif len(parts) == 2 and parts[0] == SpecialChars.WILDCARD_MULTI and isinstance(parts[1], str):
        test = {"suffix": parts[1]}
    elif (
        len(parts) == 3
        and parts[0] == SpecialChars.WILDCARD_MULTI
        and parts[2] == SpecialChars.WILDCARD_MULTI
        and isinstance(parts[1], str)
    ):
        test = {"contains": parts[1]}
    elif all(isinstance(p, str) or p in (SpecialChars.WILDCARD_MULTI, SpecialChars.WILDCARD_SINGLE) for p in parts):
        test = {"regex": f"^(?:{value.to_regex().regexp})$"}
    else:
        raise RuleError(f"Sigma: the value of {field!r} uses a placeholder, which siemgate does not support")
    if nocase:
        test["nocase"] = True
    return {field: test}


def _value(field: str | None, value: Any) -> dict[str, Any]:
    if field is None:
        raise RuleError("Sigma: keyword searches (values without a field) are not supported; name the field")
    if isinstance(value, SigmaString):
        return _string(field, value)
    if isinstance(value, SigmaBool):
        return {field: {"eq": value.boolean}}
    if isinstance(value, SigmaNumber):
        return {field: {"eq": value.number}}
    if isinstance(value, SigmaNull):
        return {field: {"exists": False}}
    if isinstance(value, SigmaExists):
        return {field: {"exists": value.exists}}
    if isinstance(value, SigmaRegularExpression):
        test: dict[str, Any] = {"regex": str(value.regexp)}
        if SigmaRegularExpressionFlag.IGNORECASE in value.flags:
            test["nocase"] = True
        if value.flags - {SigmaRegularExpressionFlag.IGNORECASE}:
            raise RuleError(f"Sigma: only the i flag of |re is supported (field {field!r})")
        return {field: test}
    if isinstance(value, SigmaCompareExpression):
        return {field: {_COMPARE[value.op]: value.number.number}}
    if isinstance(value, SigmaCIDRExpression):
        return {field: {"cidr": value.cidr}}
    raise RuleError(f"Sigma: values of type {type(value).__name__} (field {field!r}) are not supported")


def _condition(node: Any) -> dict[str, Any]:
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _value(node.field, node.value)
    if isinstance(node, ConditionNOT):
        return {"not": _condition(node.args[0])}
    if isinstance(node, ConditionAND | ConditionOR):
        subs = [_condition(arg) for arg in node.args]
        if len(subs) == 1:
            return subs[0]
        if isinstance(node, ConditionOR):
            merged = _as_set(subs)
            if merged is not None:
                return merged
        return {"all" if isinstance(node, ConditionAND) else "any": subs}
    if isinstance(node, ConditionValueExpression):
        raise RuleError("Sigma: keyword searches (values without a field) are not supported; name the field")
    raise RuleError(f"Sigma: the construct {type(node).__name__} is not supported")


def _as_set(subs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """OR of equality tests on one field (a Sigma value list) as one `in` test."""
    fields = {next(iter(s)) for s in subs if len(s) == 1}
    if len(fields) != 1 or not all(len(s) == 1 for s in subs):
        return None
    field = fields.pop()
    tests = [s[field] for s in subs]
    if not all(isinstance(t, dict) and set(t) <= {"eq", "nocase"} and "eq" in t for t in tests):
        return None
    if len({t.get("nocase", False) for t in tests}) != 1:
        return None
    merged: dict[str, Any] = {"in": [t["eq"] for t in tests]}
    if tests[0].get("nocase"):
        merged["nocase"] = True
    return {field: merged}


def _source(rule: SigmaRule) -> str:
    product, service = rule.logsource.product, rule.logsource.service
    if product not in PRODUCTS or service not in SOURCES:
        raise RuleError(
            f"Sigma rule {rule.title!r}: logsource must be product: 1password and service: one of"
            f" {', '.join(SOURCES)} (got product {product!r}, service {service!r})"
        )
    return service


def _match(rule: SigmaRule) -> dict[str, Any]:
    conditions = rule.detection.parsed_condition
    if len(conditions) != 1:
        raise RuleError(f"Sigma rule {rule.title!r}: give exactly one condition")
    return _condition(conditions[0].parse())


def _options(rule: SigmaRule | SigmaCorrelationRule) -> dict[str, Any]:
    options = rule.custom_attributes.get("siemgate") or {}
    if not isinstance(options, dict):
        raise RuleError(f"Sigma rule {rule.title!r}: `siemgate:` must be a map of options")
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise RuleError(f"Sigma rule {rule.title!r}: unknown siemgate option(s) {sorted(unknown)}; use {_OPTIONS}")
    return dict(options)


def _base(rule: SigmaRule | SigmaCorrelationRule, source: str, match: dict[str, Any]) -> dict[str, Any]:
    options = _options(rule)
    data: dict[str, Any] = {
        "id": options.pop("id", None) or _slug(rule.name or rule.title),
        "name": rule.title,
        "description": rule.description or "",
        "source": source,
        "severity": LEVELS.get(rule.level.name.lower(), "medium") if rule.level else "medium",
        "match": match,
    }
    data.update(options)
    return data


def _correlation(corr: SigmaCorrelationRule) -> dict[str, Any]:
    if corr.type != SigmaCorrelationType.EVENT_COUNT:
        raise RuleError(f"Sigma correlation {corr.title!r}: only event_count correlations are supported")
    if not corr.rules or len(corr.rules) != 1:
        raise RuleError(f"Sigma correlation {corr.title!r}: name exactly one rule")
    base = corr.rules[0].rule
    if not isinstance(base, SigmaRule):
        raise RuleError(f"Sigma correlation {corr.title!r}: the rule it names must be a detection rule")
    condition = corr.condition
    if not isinstance(condition, SigmaCorrelationCondition) or condition.fieldref is not None:
        raise RuleError(f"Sigma correlation {corr.title!r}: give a simple condition such as gte: 10")
    op, count = condition.op, int(condition.count)
    if op == SigmaCorrelationConditionOperator.GT:
        count += 1
    elif op != SigmaCorrelationConditionOperator.GTE:
        raise RuleError(f"Sigma correlation {corr.title!r}: only gte and gt conditions are supported")
    data = _base(corr, _source(base), _match(base))
    data["threshold"] = {
        "count": count,
        "window": f"{corr.timespan.seconds}s",
        "group_by": list(corr.group_by or []),
    }
    return data


def sigma_to_rules(text: str) -> list[Rule]:
    """Translate every rule of a Sigma YAML text (one or more documents); raises RuleError."""
    try:
        collection = SigmaCollection.from_yaml(text)
        collection.resolve_rule_references()
    except SigmaError as exc:
        raise RuleError(f"Sigma: {exc}") from None
    correlated: set[int] = set()
    found: list[dict[str, Any]] = []
    for item in collection.rules:
        if isinstance(item, SigmaCorrelationRule):
            found.append(_correlation(item))
            correlated.update(id(ref.rule) for ref in item.rules or [])
    for item in collection.rules:
        if isinstance(item, SigmaRule) and id(item) not in correlated:
            found.append(_base(item, _source(item), _match(item)))
    return [parse_rule(data, "Sigma rule") for data in found]
