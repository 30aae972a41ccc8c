"""Sigma rules (the detection format SIEM teams share), parsed with pySigma and translated into
siemgate rules (alerts.model.Rule). Supported (docs/alerts.md, "Sigma"):

- logsource: `product: 1password` (or `siemgate`) and `service:` one of signinattempts,
  itemusages, auditevents, tokens. Field names are the events' own dotted paths, or the names
  siemgate's ECS and OCSF output gives them (`user.email`, `actor.user.email_addr`), mapped back
  through a pySigma processing pipeline (the table is alerts/sigma_fields.json).
- ids: the rule's `siemgate: {id}`, else its Sigma `id`, else its `name`; its Sigma `name` and the
  id 0.1 derived from its title answer too (aliases).
- detection: selections as maps (AND) and lists (OR); value lists; `1 of`/`all of` with
  wildcards; `and`, `or`, `not`, parentheses; modifiers `contains`, `startswith`, `endswith`,
  `all`, `re` (with `i`), `cidr`, `gt`, `gte`, `lt`, `lte`, `exists`, `cased`; `*` and `?`
  wildcards; `null`. Strings compare case-insensitively, as Sigma says, unless `|cased`.
- correlation rules of type `event_count` with `gte`/`gt` conditions, `group-by` and `timespan`
  become threshold rules over the rule they name (which must be in the same text); group-by
  values compare ignoring case, and events without a group-by field are not counted. Other
  correlation types and conditions are refused by name.
- siemgate's own options go in a top-level `siemgate:` map: `id`, `suppress`, `first_seen`,
  `actions`, `summary`, `enabled` (Sigma has no first-seen construct and no actions).

Anything else (another modifier, keywords without a field, field references, other correlation
types, a condition pySigma cannot parse) raises RuleError naming the rule and the construct.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from importlib import resources
from typing import Any

import orjson
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
from sigma.modifiers import (
    SigmaAllModifier,
    SigmaCaseSensitiveModifier,
    SigmaCIDRModifier,
    SigmaContainsModifier,
    SigmaEndswithModifier,
    SigmaExistsModifier,
    SigmaGreaterThanEqualModifier,
    SigmaGreaterThanModifier,
    SigmaLessThanEqualModifier,
    SigmaLessThanModifier,
    SigmaRegularExpressionIgnoreCaseFlagModifier,
    SigmaRegularExpressionModifier,
    SigmaStartswithModifier,
    modifier_mapping,
)
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
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
from siemgate.alerts.model import MAX_RULE_VALUES, RULE_ID, Rule, RuleError, count_values, parse_rule

PRODUCTS = ("1password", "siemgate")
LEVELS = {"informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
_COMPARE = {
    CompareOperators.GT: "gt",
    CompareOperators.GTE: "gte",
    CompareOperators.LT: "lt",
    CompareOperators.LTE: "lte",
}
_OPTIONS = ("id", "suppress", "first_seen", "actions", "summary", "enabled", "nocase")
SUPPORTED_MODIFIERS = {
    SigmaContainsModifier: "contains",
    SigmaStartswithModifier: "startswith",
    SigmaEndswithModifier: "endswith",
    SigmaAllModifier: "all",
    SigmaRegularExpressionModifier: "re",
    SigmaRegularExpressionIgnoreCaseFlagModifier: "i",
    SigmaCIDRModifier: "cidr",
    SigmaGreaterThanModifier: "gt",
    SigmaGreaterThanEqualModifier: "gte",
    SigmaLessThanModifier: "lt",
    SigmaLessThanEqualModifier: "lte",
    SigmaExistsModifier: "exists",
    SigmaCaseSensitiveModifier: "cased",
}


_MODIFIER_NAMES = {cls: name for name, cls in modifier_mapping.items()}


@functools.cache
def field_table() -> dict[str, dict[str, dict[str, str]]]:
    """{format: {service: {field name in that format: native field}}} for ECS and OCSF, derived
    from siemgate's own formatters (tests/alerts/sigma_field_probe.py keeps it in step)."""
    text = (resources.files("siemgate.alerts") / "sigma_fields.json").read_text(encoding="utf-8")
    table: dict[str, dict[str, dict[str, str]]] = orjson.loads(text)
    return table


@functools.cache
def field_pipeline() -> ProcessingPipeline:
    """ECS and OCSF field names to native ones, per service (native names pass unchanged)."""
    items = []
    for product in PRODUCTS:
        for service in SOURCES:
            mapping: dict[str | None, str | list[str]] = {}
            for fmt in ("ocsf", "ecs"):  # ECS wins where both name a field alike
                mapping.update(field_table().get(fmt, {}).get(service, {}))
            if mapping:
                condition = LogsourceCondition(product=product, service=service)
                items.append(
                    ProcessingItem(transformation=FieldMappingTransformation(mapping), rule_conditions=[condition])
                )
    return ProcessingPipeline(name="siemgate native fields", items=items)


def _check_modifiers(rule: SigmaRule) -> None:
    """Refuse any modifier siemgate does not give the meaning Sigma does, naming rule and field."""

    def visit(item: SigmaDetection | SigmaDetectionItem) -> None:
        if isinstance(item, SigmaDetection):
            for sub in item.detection_items:
                visit(sub)
            return
        for modifier in item.modifiers:
            if modifier not in SUPPORTED_MODIFIERS:
                name = _MODIFIER_NAMES.get(modifier, modifier.__name__)
                raise RuleError(
                    f"Sigma rule {rule.title!r}: field {item.field!r} uses the modifier {name!r}, which siemgate"
                    f" does not support (supported: {', '.join(sorted(set(SUPPORTED_MODIFIERS.values())))})"
                )

    for detection in rule.detection.detections.values():
        visit(detection)


_CONDITION_WORDS = frozenset({"and", "or", "not", "of", "1", "all", "any"})


def check_condition_size(documents: list[Any], where: str = "Sigma") -> None:
    """Raise RuleError when a Sigma rule's condition names selections holding more than
    MAX_RULE_VALUES values in all, each counted as often as it is named: pySigma copies a
    selection for every mention, so a short condition naming a large one a thousand times costs
    seconds and hundreds of MB before the translated rule could be refused. Call before parsing."""
    for document in documents:
        detection = document.get("detection") if isinstance(document, dict) else None
        if not isinstance(detection, dict):
            continue
        sizes = {
            str(name): count_values(value, MAX_RULE_VALUES)
            for name, value in detection.items()
            if name not in ("condition", "timeframe")
        }
        conditions = detection.get("condition")
        total = 0
        for condition in conditions if isinstance(conditions, list) else [conditions]:
            for word in re.findall(r"[\w*]+", condition) if isinstance(condition, str) else []:
                if word == "them":
                    total += sum(sizes.values())
                elif "*" in word:
                    total += sum(size for name, size in sizes.items() if fnmatch.fnmatchcase(name, word))
                elif word not in _CONDITION_WORDS:
                    total += sizes.get(word, 0)
                if total > MAX_RULE_VALUES:
                    title = document.get("title", "?")
                    raise RuleError(
                        f"{where} rule {title!r}: its condition names selections holding more than"
                        f" {MAX_RULE_VALUES} values in all (each counted as often as it is named);"
                        " split it into several rules"
                    )


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
        test = {"regex": f"(?s)^(?:{value.to_regex().regexp})$"}  # s: a wildcard spans line breaks too
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


def _ids(rule: SigmaRule | SigmaCorrelationRule, options: dict[str, Any]) -> tuple[str, list[str]]:
    """The rule's siemgate id and its aliases. The id is `siemgate: {id}`, else the Sigma `id`,
    else the Sigma `name`, else (a rule with neither) its title made an id, as 0.1 did for every
    rule. Aliases: the Sigma name, and the id 0.1 derived from the name or title (so rules loaded
    by 0.1 keep answering to it)."""
    name = rule.name if isinstance(rule.name, str) and RULE_ID.fullmatch(rule.name) else None
    explicit = options.pop("id", None)
    if explicit is not None:
        return str(explicit), [name] if name and name != explicit else []
    legacy = _slug(rule.name or rule.title)
    chosen = str(rule.id).lower() if rule.id is not None else name or legacy
    aliases = [a for a in (name, legacy) if a and a != chosen and RULE_ID.fullmatch(a)]
    return chosen, list(dict.fromkeys(aliases))


def _base(rule: SigmaRule | SigmaCorrelationRule, source: str, match: dict[str, Any]) -> dict[str, Any]:
    options = _options(rule)
    rule_id, aliases = _ids(rule, options)
    data: dict[str, Any] = {
        "id": rule_id,
        "name": rule.title,
        "description": rule.description or "",
        "source": source,
        "severity": LEVELS.get(rule.level.name.lower(), "medium") if rule.level else "medium",
        "match": match,
    }
    if aliases:
        data["aliases"] = aliases
    data.update(options)
    return data


def _correlation(corr: SigmaCorrelationRule) -> dict[str, Any]:
    """An `event_count` correlation as a threshold rule over the rule it names. Its `group-by`
    values compare ignoring case (Sigma's strings do; `siemgate: {nocase: false}` keeps case), and
    an event without a group-by field is not counted (it belongs to no group)."""
    kind = corr.type.name.lower() if isinstance(corr.type, SigmaCorrelationType) else str(corr.type)
    if corr.type != SigmaCorrelationType.EVENT_COUNT:
        raise RuleError(
            f"Sigma correlation {corr.title!r}: the correlation type {kind!r} is not supported (only event_count)"
        )
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
        raise RuleError(
            f"Sigma correlation {corr.title!r}: the condition {op.name.lower()!r} is not supported (only gte and gt:"
            " an alert fires when a count is reached)"
        )
    if count != condition.count + (op == SigmaCorrelationConditionOperator.GT) or count < 2:
        raise RuleError(
            f"Sigma correlation {corr.title!r}: the condition must ask for a whole number of at least 2 events"
            " (every single event: load the rule it names on its own, or give the correlation generate: true)"
        )
    group_by = list(corr.group_by or [])
    data = _base(corr, _source(base), _grouped(_match(base), group_by))
    data["threshold"] = {
        "count": count,
        "window": f"{corr.timespan.seconds}s",
        "group_by": group_by,
        "nocase": bool(data.pop("nocase", True)),
    }
    return data


def _grouped(match: dict[str, Any], group_by: list[str]) -> dict[str, Any]:
    """The base rule's match, also requiring every group-by field (an event without one is in no group)."""
    out = dict(match)
    for name in group_by:
        if name not in out:
            out[name] = {"exists": True}
        else:
            out["all"] = [*out.get("all", []), {name: {"exists": True}}]
    return out


def sigma_to_rules(text: str) -> list[Rule]:
    """Translate every rule of a Sigma YAML text (one or more documents); raises RuleError (never
    anything else) naming the rule and what it uses that siemgate cannot give Sigma's meaning."""
    try:
        collection = SigmaCollection.from_yaml(text)
        collection.resolve_rule_references()
    except SigmaError as exc:
        raise RuleError(f"Sigma: {exc}") from None
    except Exception as exc:  # pySigma's own parsing failures that are not SigmaErrors
        raise RuleError(f"Sigma: the text cannot be read as Sigma rules ({type(exc).__name__}: {exc})") from None
    found: list[dict[str, Any]] = []
    for item in collection.rules:
        title = getattr(item, "title", "?")
        try:
            found += _translate(collection, item)
        except RuleError as exc:
            if str(exc).startswith("Sigma: "):  # say which rule
                raise RuleError(f"Sigma rule {title!r}: {str(exc).removeprefix('Sigma: ')}") from None
            raise
        except SigmaError as exc:
            raise RuleError(f"Sigma rule {title!r}: {exc}") from None
        except Exception as exc:
            raise RuleError(f"Sigma rule {title!r} cannot be translated: {type(exc).__name__}: {exc}") from None
    return [parse_rule(data, "Sigma rule") for data in found]


def _translate(collection: SigmaCollection, item: Any) -> list[dict[str, Any]]:
    if isinstance(item, SigmaCorrelationRule):
        field_pipeline().apply(item)
        return [_correlation(item)]
    if not isinstance(item, SigmaRule):
        raise RuleError(f"Sigma: {type(item).__name__} documents are not supported")
    naming = [
        other
        for other in collection.rules
        if isinstance(other, SigmaCorrelationRule) and any(ref.rule is item for ref in other.rules or [])
    ]
    correlated = bool(naming) and not any(c.generate for c in naming)  # `generate: true`: it also fires alone
    _check_modifiers(item)
    if item.logsource.product in PRODUCTS:
        field_pipeline().apply(item)
    match = _match(item)  # checked even when only a correlation uses it
    if correlated:
        return []
    data = _base(item, _source(item), match)
    if "nocase" in data:
        raise RuleError(
            f"Sigma rule {item.title!r}: siemgate option nocase applies to correlations (their group-by);"
            " use first_seen: {nocase: true} for first-seen values"
        )
    return [data]
