"""The rules of each account: the shipped starter rules (enabled everywhere unless an account
overrides them) plus the account's own, from YAML files or the admin API; who may change them
(owners and administrators; members may look); every change recorded in the audit trail
(`create`/`update`/`delete` of object_type `report`, aux_info.kind "alert rule").
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from siemgate.accounts.actor import Actor
from siemgate.accounts.audit import AuditRecorder
from siemgate.accounts.people import PeopleService
from siemgate.alerts.builtin import starter_rules
from siemgate.alerts.model import (
    MASK,
    CompiledRule,
    Rule,
    RuleError,
    SlackAction,
    SyslogAction,
    WebhookAction,
    action_json,
    compile_rule,
    parse_rule,
)
from siemgate.errors import BadRequest, Conflict, NotFound
from siemgate.outbound import OutboundPolicy, OutboundRefused
from siemgate.store.base import Account, AlertRuleRecord, RuleRoom, Store
from siemgate.store.errors import RoomExhausted, RuleExists

CACHE_SECONDS = 5.0  # rules changed by another process (the CLI) are seen within this time
ORIGINS = ("starter", "file", "api")
COMPILED_ENTRIES = 10_000  # stored rules kept compiled across cache refreshes (all accounts)
MAX_RULES = 500  # an account's own rules (starter rules not counted): each is evaluated on its events


@dataclass(frozen=True)
class RuleEntry:
    """A rule as it applies to an account: `origin` starter (shipped, maybe overridden), file or api."""

    rule: Rule
    origin: str
    overridden: bool  # a starter rule the account changed (or disabled)
    compiled: CompiledRule
    created_at: int | None
    updated_at: int | None
    version: int = 0  # 0: the shipped starter rule; else the stored rule's version (1, 2, ...)

    @property
    def enabled(self) -> bool:
        return self.rule.enabled


def _not_found(rule_id: str) -> NotFound:
    return NotFound(f"Not Found: no alert rule {rule_id!r}; `siemgate alerts list` shows the rules")


def _exists(rule_id: str) -> str:
    return f"an alert rule with the id {rule_id!r} exists; choose another id or replace it (PUT)"


@functools.cache
def _starter_entry(rule_id: str) -> RuleEntry:
    """A shipped starter rule as it applies to an account that did not change it (compiled once)."""
    rule = starter_rules()[rule_id]
    return RuleEntry(rule, "starter", False, compile_rule(rule), None, None)


class AlertRules:
    def __init__(
        self,
        store: Store,
        people: PeopleService,
        audit: AuditRecorder,
        clock: Callable[[], int],
        policy: OutboundPolicy | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or OutboundPolicy()
        self.people = people
        self.audit = audit
        self.clock = clock
        self._cache: dict[int, tuple[float, list[RuleEntry]]] = {}
        self._compiled: dict[AlertRuleRecord, RuleEntry] = {}  # stored rules as compiled (see _entry)
        self._lock = threading.Lock()
        self._everyone = 0  # invalidations of every account's rules
        self._versions: dict[int, int] = {}  # changes of each account's rules made through this object

    # reading ------------------------------------------------------------------------------------
    def entries(self, account_id: int) -> list[RuleEntry]:
        """Every rule of the account (starter rules first, then its own), cached briefly."""
        cached = self._cache.get(account_id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        stored = {r.rule_id: r for r in self.store.list_alert_rules(account_id)}
        entries = []
        for rule_id in starter_rules():
            row = stored.pop(rule_id, None)
            entries.append(_starter_entry(rule_id) if row is None else self._entry(row, overridden=True))
        entries += [self._entry(row, overridden=False) for row in stored.values()]
        with self._lock:
            self._cache[account_id] = (time.monotonic(), entries)
        return entries

    def _entry(self, row: AlertRuleRecord, overridden: bool) -> RuleEntry:
        """The entry of a stored rule, compiled once per stored version (the same objects at every
        refresh of the cache, so evaluation keeps its rule index)."""
        entry = self._compiled.get(row)
        if entry is None:
            rule = parse_rule(upgrade_definition(orjson.loads(row.definition)), stored=True)
            rule = rule.model_copy(update={"enabled": row.enabled})
            origin = "starter" if overridden else row.origin
            compiled = replace(compile_rule(rule, stored=True), version=row.version)
            entry = RuleEntry(rule, origin, overridden, compiled, row.created_at, row.updated_at, row.version)
            if len(self._compiled) >= COMPILED_ENTRIES:
                self._compiled.clear()
            self._compiled[row] = entry
        return entry

    def enabled(self, account_id: int, source: str) -> list[CompiledRule]:
        return [e.compiled for e in self.entries(account_id) if e.enabled and e.rule.source == source]

    def get(self, account_id: int, rule_id: str) -> RuleEntry:
        """The rule with this id, else the one rule that has it as an alias (a Sigma rule's name,
        or the title-derived id 0.1 gave it); raises NotFound."""
        entries = self.entries(account_id)
        for entry in entries:
            if entry.rule.id == rule_id:
                return entry
        aliased = [e for e in entries if rule_id in e.rule.aliases]
        if len(aliased) == 1:
            return aliased[0]
        raise _not_found(rule_id)

    def invalidate(self, account_id: int | None = None) -> None:
        """After a change of the account's rules (or of every account's): they are read again at
        the next use, and version_of moves for that account (or for all)."""
        with self._lock:
            if account_id is None:
                self._cache.clear()
                self._everyone += 1
            else:
                self._cache.pop(account_id, None)
                self._versions[account_id] = self._versions.get(account_id, 0) + 1

    def _refresh(self, account_id: int) -> None:
        """Read the account's rules afresh at the next use (before deciding a change, since another
        process may have made one), without moving version_of: nothing changed here yet."""
        with self._lock:
            self._cache.pop(account_id, None)

    def version_of(self, account_id: int) -> tuple[int, int]:
        """Changes when the account's rules change through this object or every account's are
        invalidated; never with another account's change (its evaluation state stays)."""
        return self._everyone, self._versions.get(account_id, 0)

    # changing -----------------------------------------------------------------------------------
    def save(self, actor: Actor, account: Account, rule: Rule, origin: str, *, create: bool = False) -> RuleEntry:
        """save_all of one rule."""
        return self.save_all(actor, account, [rule], origin, create=create)[0]

    def save_all(
        self, actor: Actor, account: Account, rules: list[Rule], origin: str, *, create: bool = False
    ) -> list[RuleEntry]:
        """Create or replace rules, all or none: each is compiled and its destinations checked
        before any is saved, and they are saved in one transaction.

        `create`: refuse (409) when an id is taken, also by a rule saved since the cache was read.
        A rule with a starter rule's id overrides it. Webhook secrets given as the mask
        ('********') keep the stored secret of the same action.
        The account may hold at most MAX_RULES rules of its own (starter rules and their overrides
        do not count; replacing a rule adds none): Conflict naming the limit, checked by the store
        in the same transaction, so concurrent saves cannot pass it together."""
        self.people.require(actor, account, "administrator", "change alert rules")
        self._refresh(account.id)  # the rules as stored now: secrets kept from the stored rule
        now = self.clock()
        records: list[tuple[AlertRuleRecord, list[str] | None]] = []
        saved: list[Rule] = []
        for rule in rules:
            try:
                existing: RuleEntry | None = self.get(account.id, rule.id)
            except NotFound:
                existing = None
            if create and existing is not None:
                raise Conflict(_exists(rule.id))
            rule = _keep_secrets(rule, existing.rule if existing else None)
            try:
                compile_rule(rule)
            except RuleError as exc:
                raise BadRequest(str(exc)) from None
            check_destinations(rule, self.policy)
            record_origin = "starter" if rule.id in starter_rules() else origin
            definition = orjson.dumps(rule.as_json()).decode()
            record = AlertRuleRecord(account.id, rule.id, definition, record_origin, rule.enabled, now, now)
            records.append((record, [action_json(a) for a in rule.actions]))
            saved.append(rule)
        room = RuleRoom(MAX_RULES, frozenset(starter_rules()))
        try:
            versions = self.store.put_alert_rules(records, room, only_new=create)
        except RuleExists as exc:  # saved since this process's cache was read (another request or process)
            raise Conflict(_exists(exc.rule_id)) from None
        except RoomExhausted as exc:
            raise Conflict(
                f"the account has {exc.held} alert rules of its own and these would add {exc.adding}; at most"
                f" {exc.limit} are allowed: delete rules it no longer uses (siemgate alerts delete, or DELETE"
                " /api/admin/v1/accounts/{account}/alert-rules/{id})"
            ) from None
        self.invalidate(account.id)
        for rule, version in zip(saved, versions, strict=True):
            # as stored: a first version is created (a starter rule's first override changes a shipped rule)
            replaced = version > 1 or rule.id in starter_rules()
            self._record(actor, account, "update" if replaced else "create", rule, {"origin": origin})
            self._retire_aliases(actor, account, rule)
        return [self.get(account.id, rule.id) for rule in saved]

    def _retire_aliases(self, actor: Actor, account: Account, rule: Rule) -> None:
        """A Sigma rule saved under its own id replaces the rule 0.1 stored under the id it derived
        from the title (an alias now): that rule is deleted; its alerts keep their rule id."""
        stored = {r.rule_id: r for r in self.store.list_alert_rules(account.id)}
        for alias in rule.aliases:
            old = stored.get(alias)
            if alias != rule.id and old is not None and old.origin != "starter":
                self.store.delete_alert_rule(account.id, alias)
                self.invalidate(account.id)
                info = {"kind": "alert rule", "id": alias, "replaced_by": rule.id}
                self.audit.record(account, actor, "delete", "report", object_uuid=alias, aux_info=info)

    def set_enabled(self, actor: Actor, account: Account, rule_id: str, enabled: bool) -> RuleEntry:
        self.people.require(actor, account, "administrator", "enable or disable alert rules")
        self._refresh(account.id)  # another process may have changed or deleted it
        entry = self.get(account.id, rule_id)
        if entry.enabled == enabled:
            return entry
        rule = entry.rule.model_copy(update={"enabled": enabled})
        now = self.clock()
        shipped = starter_rules().get(rule.id)  # stored as it ships when no override is stored (or it went meanwhile)
        definition = orjson.dumps((rule if shipped is None else shipped).as_json()).decode()
        record = AlertRuleRecord(account.id, rule.id, definition, entry.origin, enabled, entry.created_at or now, now)
        try:  # only the flag: a definition another process saved meanwhile stays
            self.store.set_alert_rule_enabled(record, insert=shipped is not None)
        except NotFound:
            raise _not_found(rule_id) from None  # deleted by another process meanwhile
        finally:
            self.invalidate(account.id)
        self._record(actor, account, "update", rule, {"enabled": enabled})
        return self.get(account.id, rule_id)

    def delete(self, actor: Actor, account: Account, rule_id: str) -> None:
        """Delete a rule and its state. A starter rule cannot be deleted (disable it); deleting an
        override of one restores the shipped rule."""
        self.people.require(actor, account, "administrator", "delete alert rules")
        self._refresh(account.id)  # another process may have saved it a moment ago
        entry = self.get(account.id, rule_id)
        if entry.origin == "starter" and not entry.overridden:
            raise Conflict(f"{rule_id!r} is a starter rule shipped with siemgate; disable it instead of deleting it")
        self.store.delete_alert_rule(account.id, rule_id)
        self.invalidate(account.id)
        self._record(actor, account, "delete", entry.rule, {})

    def _record(self, actor: Actor, account: Account, action: str, rule: Rule, extra: dict[str, object]) -> None:
        info = {"kind": "alert rule", "id": rule.id, "name": rule.name, "enabled": rule.enabled, **extra}
        self.audit.record(account, actor, action, "report", object_uuid=rule.id, aux_info=info)


def _keep_secrets(rule: Rule, old: Rule | None) -> Rule:
    """Replace masked webhook secrets by the stored ones (same position and URL)."""
    if not any(getattr(a, "secret", None) == MASK for a in rule.actions):
        return rule
    actions = []
    for index, action in enumerate(rule.actions):
        if getattr(action, "secret", None) == MASK:
            previous = old.actions[index] if old is not None and index < len(old.actions) else None
            if previous is None or getattr(previous, "url", None) != getattr(action, "url", None):
                raise BadRequest(f"actions[{index}].secret: give the webhook secret (the mask only keeps a stored one)")
            action = action.model_copy(update={"secret": previous.secret})  # type: ignore[union-attr]
        actions.append(action)
    return rule.model_copy(update={"actions": actions})


def check_destinations(rule: Rule, policy: OutboundPolicy) -> None:
    """Refuse (400) actions whose destination is an address the outbound policy refuses on its face
    (an IP literal or localhost); names are checked again, resolved, on every delivery."""
    import httpx  # httpx loads when a rule is checked, not with the services (start-up time)

    for index, action in enumerate(rule.actions):
        host = None
        if isinstance(action, WebhookAction | SlackAction):
            host = httpx.URL(action.url).host
        elif isinstance(action, SyslogAction):
            host = action.host
        if host:
            try:
                policy.check_host(host)
            except OutboundRefused as exc:
                raise OutboundRefused(f"rule {rule.id!r}: actions[{index}]: {exc.message}") from None


def upgrade_definition(data: Any) -> Any:
    """A stored rule definition as the current format reads it: `ca_file`, which rules no longer
    name (the operator sets it), is dropped from syslog actions saved by 0.1."""
    if isinstance(data, dict) and isinstance(data.get("actions"), list):
        for action in data["actions"]:
            if isinstance(action, dict) and action.get("type") == "syslog":
                action.pop("ca_file", None)
    return data
