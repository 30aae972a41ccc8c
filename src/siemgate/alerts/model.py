"""The rule format (YAML or JSON; docs/alerts.md) and its actions, validated with pydantic.

    id: brute-force-signin           # a-z, 0-9, '-', '_', '.'; unique in the account
    name: Brute-force sign-in failures
    source: signinattempts           # signinattempts | itemusages | auditevents | tokens | integrity
    severity: high                   # low | medium | high | critical
    match: {category: credentials_failed}
    threshold: {count: 10, window: 5m, group_by: [target_user.email]}   # optional
    first_seen: {key: [target_user.uuid], value: [country]}           # optional
    suppress: {for: 1h, by: [target_user.email]}                        # optional
    actions: [{type: event}, {type: webhook, url: ..., secret: whsec_...}]

`compile_rule` checks everything a rule needs to run (fields, operators, durations) and raises
RuleError with a message that says where and what to fix.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from siemgate.alerts.caseless import FOLD
from siemgate.alerts.fields import SCHEDULED, SOURCES, KeyReader, check_field, key_reader
from siemgate.alerts.match import ConditionError, Predicate, compile_condition
from siemgate.model.durations import parse_duration
from siemgate.model.text import name_problem
from siemgate.outbound import host_name

Severity = Literal["low", "medium", "high", "critical"]
Source = Literal["signinattempts", "itemusages", "auditevents", "tokens", "integrity"]
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MASK = "********"
# A rule's text, once YAML's aliases are expanded, holds at most this many values (keys, scalars,
# lists and mappings, counted as a tree) nested at most this deep: a condition is tested on every
# event of its stream, and a few hundred bytes of aliases can stand for millions of values.
MAX_RULE_VALUES = 5000  # in one rule's condition
MAX_TEXT_VALUES = 200_000  # in a whole rules file or Sigma text (many rules)
MAX_RULE_DEPTH = 32
MAX_ACTIONS = 20
MAX_ALIASES = 16
MAX_KEY_FIELDS = 16  # fields in a threshold's group_by, a first_seen key or value, a suppression's by
MAX_SUMMARY_TEMPLATE = 1000  # characters of a rule's summary template (filled summaries: engine.MAX_SUMMARY)


def count_values(data: Any, most: int, levels: int = MAX_RULE_DEPTH, where: str = "rule") -> int:
    """The values `data` (parsed YAML or JSON) holds, its shared parts counted each time they
    appear; the count stops as soon as it passes `most`, so a text that expands to millions costs
    no more than one within the bound. RuleError when it nests deeper than `levels`."""
    count = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack and count <= most:
        value, depth = stack.pop()
        count += 1
        if depth > levels:
            raise RuleError(f"{where}: nested more than {levels} levels deep; flatten the condition")
        if isinstance(value, dict):
            count += len(value)  # the keys
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list | tuple):
            stack.extend((item, depth + 1) for item in value)
    return count


def check_rule_size(
    data: Any, where: str = "rule", values: int = MAX_RULE_VALUES, levels: int = MAX_RULE_DEPTH
) -> None:
    """Raise RuleError when `data` holds more than `values` values (count_values) or nests deeper
    than `levels`."""
    if count_values(data, values, levels, where) > values:
        raise RuleError(
            f"{where}: more than {values} values (YAML aliases counted as often as they are used);"
            " split it into smaller rules"
        )


class RuleError(ValueError):
    """A rule is invalid; the message says where and how to fix it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _few_fields(value: list[str] | None, info: ValidationInfo) -> list[str] | None:
    """At most MAX_KEY_FIELDS fields: each event's values of them make one key, kept per group
    (500 of a 60,000-character field made a 30 MB key per event); a rule stored before this check
    keeps working."""
    if value is not None and len(value) > MAX_KEY_FIELDS and not _saved_earlier(info):
        raise ValueError(f"at most {MAX_KEY_FIELDS} fields; this list has {len(value)}")
    return value


def _check_duration(value: str) -> str:
    try:
        parse_duration(value, allow_never=False)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    return value


class Threshold(_Strict):
    """Fire when `count` matching events of one group fall within `window` (by event time)."""

    count: int = Field(ge=2, le=100_000)
    window: str = Field(description="A duration such as 5m or 1h.")
    group_by: list[str] = Field(default_factory=list, description="Fields whose values make a group.")
    nocase: bool = Field(False, description="Group values that differ only in case together (e-mail addresses).")

    _window = field_validator("window")(_check_duration)
    _group_by = field_validator("group_by")(_few_fields)


class FirstSeen(_Strict):
    """Fire when the `value` fields of an event take a combination never seen for its `key` fields."""

    key: list[str] = Field(min_length=1)
    value: list[str] = Field(min_length=1)
    alert_on_first: bool = Field(
        False, description="Also fire for a key's very first value (default: learn it silently)."
    )
    max_values: int = Field(1000, ge=1, le=100_000, description="Values remembered per key; the oldest go first.")
    nocase: bool = Field(False, description="Keys and values that differ only in case are the same.")

    _fields = field_validator("key", "value")(_few_fields)


class Suppress(_Strict):
    """After a firing, further firings for the same `by` values are suppressed for `for`."""

    for_: str = Field(alias="for", description="A duration such as 1h.")
    by: list[str] | None = Field(None, description="Default: the group_by / first_seen key fields.")

    _for = field_validator("for_")(_check_duration)
    _by = field_validator("by")(_few_fields)


def _saved_earlier(info: ValidationInfo) -> bool:
    """Read back from the store: saved by a version that did not check this, it keeps loading (its
    deliveries fail with the reason instead)."""
    return bool((info.context or {}).get("stored"))


def _check_syslog_host(value: str, info: ValidationInfo) -> str:
    return value if _saved_earlier(info) else host_name(value)


def _check_url(value: str, info: ValidationInfo) -> str:
    """An http(s) URL with a host and a port from 1 to 65535, as the delivery will parse it."""
    if _saved_earlier(info):
        return value
    import httpx  # httpx loads when a rule is checked, not with the services (start-up time)

    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("not a valid URL: give http:// or https:// and a host")
    if url.port is not None and not 0 < url.port < 65536:
        raise ValueError("not a valid URL: the port must be from 1 to 65535")
    try:
        host_name(url.host)
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    return value


class WebhookAction(_Strict):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret: str = Field(
        min_length=8, description="Standard Webhooks secret, whsec_<base64> (`siemgate alerts new-secret`)."
    )
    timeout: float = Field(10.0, gt=0, le=60)

    _url = field_validator("url")(_check_url)


class SlackAction(_Strict):
    type: Literal["slack"]
    url: str = Field(pattern=r"^https?://", description="A Slack-compatible incoming webhook URL.")
    timeout: float = Field(10.0, gt=0, le=60)

    _url = field_validator("url")(_check_url)


class EmailAction(_Strict):
    type: Literal["email"]
    to: list[str] = Field(min_length=1)
    subject: str | None = Field(None, description="Default: '[siemgate] <severity>: <rule name>'.")

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str], info: ValidationInfo) -> list[str]:
        """Each recipient is one address (a line break would fail every delivery); raises ValueError."""
        for address in [] if _saved_earlier(info) else value:
            if "\r" in address or "\n" in address or "@" not in email.utils.parseaddr(address)[1]:
                raise ValueError(f"{address[:80]!r} is not an email address")
        return value

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and ("\r" in value or "\n" in value) and not _saved_earlier(info):
            raise ValueError("the subject is one line: it cannot hold line breaks")
        return value


class SyslogAction(_Strict):
    type: Literal["syslog"]
    host: str
    port: int = Field(514, ge=1, le=65535)
    protocol: Literal["udp", "tcp", "tls"] = "udp"
    facility: str = Field("auth", description="A syslog facility name: auth, authpriv, local0..local7, ...")
    ca_file: str | None = Field(
        None, description="Not accepted: the operator sets the CA file (SIEMGATE_ALERTS_SYSLOG_CA_FILE)."
    )
    timeout: float = Field(10.0, gt=0, le=60)

    _host = field_validator("host")(_check_syslog_host)

    @field_validator("ca_file")
    @classmethod
    def _no_files(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError(
                "rules cannot name files on the server; the operator sets the CA for syslog over TLS"
                " (SIEMGATE_ALERTS_SYSLOG_CA_FILE): remove ca_file"
            )
        return None


class EventAction(_Strict):
    type: Literal["event"]


Action = Annotated[WebhookAction | SlackAction | EmailAction | SyslogAction | EventAction, Field(discriminator="type")]


def action_json(action: Action) -> str:
    """An action's configuration as stored with each of its deliveries (and compared when a rule
    changes: pending deliveries of actions the rule no longer has are cancelled)."""
    return orjson.dumps(action.model_dump(mode="json")).decode()


def _default_actions() -> list[Action]:
    return [EventAction(type="event")]


class Rule(_Strict):
    """An alert rule (docs/alerts.md)."""

    id: str = Field(description="a-z, 0-9, '-', '_', '.'; at most 64 characters; unique in the account.")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    source: Source
    severity: Severity = "medium"
    enabled: bool = True
    match: dict[str, Any] = Field(description="A condition (docs/alerts.md, 'Matching').")
    threshold: Threshold | None = None
    first_seen: FirstSeen | None = None
    suppress: Suppress | None = None
    summary: str | None = Field(None, description="Text with {field.path} and {count} placeholders.")
    actions: list[Action] = Field(default_factory=_default_actions)
    aliases: list[str] = Field(
        default_factory=list,
        description="Other ids this rule answers to: a Sigma rule's name, and the id 0.1 derived from its title.",
    )

    @field_validator("match", mode="before")
    @classmethod
    def _bounded(cls, value: Any, info: ValidationInfo) -> Any:
        if not (info.context or {}).get("stored"):  # a rule stored before the bound keeps working
            check_rule_size(value, "the condition")
        return value

    @field_validator("actions", "aliases")
    @classmethod
    def _few(cls, value: list[Any], info: ValidationInfo) -> list[Any]:
        most = MAX_ACTIONS if info.field_name == "actions" else MAX_ALIASES
        if len(value) > most and not (info.context or {}).get("stored"):
            raise ValueError(f"at most {most} {info.field_name}; this rule has {len(value)}")
        return value

    @field_validator("summary")
    @classmethod
    def _short_summary(cls, value: str | None, info: ValidationInfo) -> str | None:
        """At most MAX_SUMMARY_TEMPLATE characters; a rule stored before this check keeps working
        (its alerts' summaries are cut anyway: engine.render)."""
        if value is not None and len(value) > MAX_SUMMARY_TEMPLATE and not _saved_earlier(info):
            raise ValueError(f"at most {MAX_SUMMARY_TEMPLATE} characters; this summary has {len(value)}")
        return value

    @field_validator("name")
    @classmethod
    def _one_line_name(cls, value: str, info: ValidationInfo) -> str:
        """No line break, tab or control character (model.text.name_problem); a rule stored
        before this check keeps working."""
        problem = None if _saved_earlier(info) else name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not RULE_ID.fullmatch(value):
            raise ValueError("use lower-case letters, digits, '-', '_' or '.', starting with a letter or digit")
        return value

    @property
    def kind(self) -> str:
        return "threshold" if self.threshold else "first_seen" if self.first_seen else "match"

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def masked(self) -> dict[str, Any]:
        """The rule as shown to people: webhook secrets replaced by MASK."""
        data = self.as_json()
        for action in data.get("actions", []):
            if "secret" in action:
                action["secret"] = MASK
        return data


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    predicate: Predicate
    window_ns: int | None
    suppress_ns: int | None
    suppress_by: tuple[str, ...]
    suppress_nocase: bool = False
    # first_seen: (key reader, value reader); see alerts.fields.key_reader
    first_seen_parts: tuple[KeyReader, KeyReader] | None = None
    version: int = 0  # of the stored rule (0: a shipped starter rule)
    group_key: KeyReader | None = None  # a threshold's group_by values
    suppress_key: KeyReader | None = None  # the suppression's `by` values
    # first_seen: what its learnt state is built for (source, match, first_seen as sorted JSON); a
    # change rebuilds the state from history, a rename or new actions keep it. threshold: what its
    # windows counted (source, match, group_by, nocase); a change starts them empty
    learnt_from: str | None = None
    weight: int = 0  # the values its condition holds (count_values): what one event's test may cost

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def alert_on_first(self) -> bool:
        return self.rule.first_seen is not None and self.rule.first_seen.alert_on_first


def parse_rule(data: Any, where: str = "rule", *, stored: bool = False) -> Rule:
    """Validate a rule mapping; raises RuleError listing each problem with its field path.
    `stored`: a rule read back from the store, saved within the bounds of its day."""
    try:
        return Rule.model_validate(data, context={"stored": stored})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or where}: {err['msg']}" for err in exc.errors()[:10]
        )
        name = data.get("id") if isinstance(data, dict) else None
        raise RuleError(f"{where}{f' {name!r}' if name else ''} is invalid: {problems}") from None


def compile_rule(rule: Rule, *, stored: bool = False) -> CompiledRule:
    """Compile the rule's condition and check its field names; raises RuleError. `stored`: a rule
    read back from the store, saved within the bounds of its day (match.compile_regex)."""
    where = f"rule {rule.id!r}"
    if rule.threshold and rule.first_seen:
        raise RuleError(f"{where}: use threshold or first_seen, not both (write two rules)")
    try:
        predicate = compile_condition(rule.match, rule.source, stored=stored)
        fields = list(rule.threshold.group_by if rule.threshold else [])
        if rule.first_seen:
            fields += rule.first_seen.key + rule.first_seen.value
        if rule.suppress and rule.suppress.by:
            fields += rule.suppress.by
        for field in fields:
            check_field(rule.source, field)
    except (ConditionError, ValueError) as exc:
        raise RuleError(f"{where}: {exc}") from None
    if rule.source in SCHEDULED and rule.threshold:
        raise RuleError(f"{where}: a {rule.source} rule is checked on a schedule and cannot have a threshold")
    window = parse_duration(rule.threshold.window, allow_never=False) if rule.threshold else None
    suppress_ns = parse_duration(rule.suppress.for_, allow_never=False) if rule.suppress else None
    if rule.suppress and rule.suppress.by is not None:
        by: tuple[str, ...] = tuple(rule.suppress.by)
    elif rule.threshold:
        by = tuple(rule.threshold.group_by)
    elif rule.first_seen:
        by = tuple(rule.first_seen.key)
    else:
        by = ()
    nocase = bool((rule.threshold and rule.threshold.nocase) or (rule.first_seen and rule.first_seen.nocase))
    parts = None
    if rule.first_seen:
        fs = rule.first_seen
        parts = (key_reader(fs.key, fs.nocase), key_reader(fs.value, fs.nocase))
    group = key_reader(rule.threshold.group_by, rule.threshold.nocase) if rule.threshold else None
    learnt_from = None
    if rule.first_seen or rule.threshold:
        definition = rule.as_json()
        basis = {k: definition.get(k) for k in ("source", "match", "first_seen")}
        if rule.threshold:
            basis["group"] = {"by": rule.threshold.group_by, "nocase": rule.threshold.nocase}
        if rule.first_seen and rule.first_seen.nocase:  # values learnt before alerts.caseless: learnt again
            basis["fold"] = FOLD
        learnt_from = orjson.dumps(basis, option=orjson.OPT_SORT_KEYS).decode()
    suppress = key_reader(by, nocase)
    try:
        weight = count_values(rule.match, MAX_RULE_VALUES, MAX_RULE_DEPTH, where)
    except RuleError:  # a rule stored before the bounds, deeper than they allow: weighed as the largest
        weight = MAX_RULE_VALUES
    return CompiledRule(
        rule, predicate, window, suppress_ns, by, nocase, parts, 0, group, suppress, learnt_from, weight
    )


def load_rule(data: Any, where: str = "rule") -> CompiledRule:
    """parse_rule then compile_rule."""
    return compile_rule(parse_rule(data, where))


__all__ = ["SOURCES", "CompiledRule", "Rule", "RuleError", "compile_rule", "load_rule", "parse_rule"]
