"""AlertService: the alerting parts wired together, and what the admin API, the console and the
CLI ask of them (rule status, fired alerts, deliveries, loading rule files, testing a rule)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import yaml

from siemgate.accounts.actor import Actor
from siemgate.accounts.audit import AuditRecorder
from siemgate.accounts.people import RANK, PeopleService
from siemgate.alerts.actions.base import Sender, url_origin
from siemgate.alerts.actions.email import EmailSender
from siemgate.alerts.actions.record import EventSender
from siemgate.alerts.actions.slack import SlackSender
from siemgate.alerts.actions.syslog import SyslogSender
from siemgate.alerts.actions.webhook import WebhookSender
from siemgate.alerts.dispatch import Dispatcher
from siemgate.alerts.engine import Evaluator, Firing, StateBook, event_time
from siemgate.alerts.evaluator import AlertEvaluator
from siemgate.alerts.fields import SCHEDULED
from siemgate.alerts.model import (
    MAX_RULE_DEPTH,
    MAX_TEXT_VALUES,
    CompiledRule,
    Rule,
    RuleError,
    check_rule_size,
    parse_rule,
)
from siemgate.alerts.rules import AlertRules, RuleEntry
from siemgate.alerts.yaml_text import load_documents
from siemgate.config import Settings
from siemgate.errors import BadRequest, Conflict, NotFound
from siemgate.model.timestamps import format_ns
from siemgate.outbound import OutboundPolicy
from siemgate.store.base import ALERT_STATES, DELIVERY_STATUSES, Account, AlertRecord, DeliveryRecord, Store
from siemgate.store.ingest import EventWriter

# How long an evaluation failure keeps its rule `failing` (rule_view): long enough to be seen the
# next working day, not for as long as the failure is kept (the stream's retention).
FAILING_FOR_NS = 86_400 * 1_000_000_000


def is_sigma(document: Any) -> bool:
    """Whether a parsed YAML document is a Sigma rule (it has `detection` or `correlation`)."""
    return isinstance(document, dict) and ("detection" in document or "correlation" in document)


def parse_rules_text(text: str, where: str = "rules") -> list[Rule]:
    """Rules from YAML text: one rule, a list of rules, several documents, or Sigma (which may
    need several documents: a correlation and the rule it names). Raises RuleError."""
    try:
        documents = load_documents(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"{where}: not valid YAML: {exc}") from None
    except RecursionError:
        raise RuleError(f"{where}: nested more than {MAX_RULE_DEPTH} levels deep; flatten it") from None
    # before anything else walks them: a few aliases may stand for millions of values
    check_rule_size(documents, where, MAX_TEXT_VALUES, MAX_RULE_DEPTH + 4)
    if any(is_sigma(d) for d in documents):
        if not all(is_sigma(d) for d in documents):
            raise RuleError(f"{where}: put Sigma rules and siemgate rules in separate files")
        # pySigma (with pyparsing and jinja2) loads for the first Sigma rule, not with the services (start-up time)
        from siemgate.alerts.sigma import check_condition_size, sigma_to_rules

        check_condition_size(documents)
        return sigma_to_rules(text)
    rules: list[Rule] = []
    for document in documents:
        for item in document if isinstance(document, list) else [document]:
            rules.append(parse_rule(item, f"{where}: rule"))
    if not rules:
        raise RuleError(f"{where}: no rules found")
    return rules


def test_rule(rule: CompiledRule, events: Sequence[dict[str, Any]]) -> list[Firing]:
    """What `rule` fires on `events` (in order), from empty state: `siemgate alerts test`."""
    evaluator = Evaluator([rule], StateBook())
    if rule.rule.source not in SCHEDULED:
        return evaluator.evaluate(enumerate(events, start=1))
    firings = []
    for index, record in enumerate(events, start=1):
        firings += evaluator.evaluate([(index, record)], now=event_time(record) or 0)
    return firings


def action_target(action: dict[str, Any]) -> str:
    """Where an action goes, for display (never a secret: a Slack or webhook URL's path and query
    often are one, and its user information is, so only its scheme, host and port are shown)."""
    kind = action["type"]
    if kind in ("webhook", "slack"):
        return url_origin(str(action["url"]))
    if kind == "email":
        return ", ".join(action["to"])
    if kind == "syslog":
        return f"{action['protocol']}://{action['host']}:{action['port']}"
    return "auditevents"


class AlertService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        people: PeopleService,
        audit: AuditRecorder,
        writer: EventWriter,
        clock: Callable[[], int],
    ) -> None:
        self.store = store
        self.people = people
        self.audit = audit
        self.clock = clock
        policy = OutboundPolicy.from_allow_list(settings.outbound_allow)
        self.rules = AlertRules(store, people, audit, clock, policy)
        self.evaluator = AlertEvaluator(
            store, self.rules, clock, settings.alerts_max_event_age_days, settings.alerts_account_cpu_share
        )
        events = EventSender(store, audit)
        self.evaluator.record_events = events.record_many
        senders: dict[str, Sender] = {
            "webhook": WebhookSender(policy),
            "slack": SlackSender(policy),
            "email": EmailSender(settings),
            "syslog": SyslogSender(policy, settings.alerts_syslog_ca_file),
            "event": events,
        }
        self.dispatcher = Dispatcher(
            store,
            senders,
            clock,
            max_attempts=settings.alerts_max_attempts,
            retry_seconds=settings.alerts_retry_seconds,
            workers=settings.alerts_dispatch_workers,
            per_account=settings.alerts_account_concurrency,
            wake=self.evaluator.kick,
        )
        self.stopped = threading.Event()
        if settings.alerts_enabled:
            writer.on_stored(self.evaluator.on_stored)

    def stop(self) -> None:
        """Let a waiting dispatcher return at once and start no more deliveries (server shutdown)."""
        self.stopped.set()
        self.evaluator.kick.set()
        self.dispatcher.close()

    # rules ----------------------------------------------------------------------------------------
    def rule_views(self, actor: Actor, account: Account) -> list[dict[str, Any]]:
        """Every rule with its status, last firing and action failures (the console's list)."""
        self.people.role(actor, account)
        stats = self.store.alert_rule_stats(account.id)
        return [self.rule_view(entry, stats.get(entry.rule.id)) for entry in self.rules.entries(account.id)]

    def rule(self, actor: Actor, account: Account, rule_id: str) -> dict[str, Any]:
        """The rule's view and definition; members (who cannot change rules) see the Slack and
        webhook URLs of its actions cut to their origin, as their targets are: such a URL is
        often a credential."""
        role = self.people.role(actor, account)
        entry = self.rules.get(account.id, rule_id)
        view = self.rule_view(entry, self.store.alert_rule_stats(account.id, rule_id).get(rule_id))
        definition = entry.rule.masked()
        if RANK[role] < RANK["administrator"]:
            for action in definition.get("actions", []):
                if "url" in action:
                    action["url"] = url_origin(action["url"])
        return {**view, "definition": definition}

    def rule_view(self, entry: RuleEntry, stats: Any) -> dict[str, Any]:
        """The rule's view: `failing` while a delivery of it has failed (until retried), or while
        its last evaluation failure is under FAILING_FOR_NS old and after the rule's last change
        (evaluation_failures and last_failure_at keep the history)."""
        rule = entry.rule
        failed = stats.failed if stats else 0
        broken = stats.failures if stats else 0
        last = stats.last_failure_at if stats else None
        since = max(self.clock() - FAILING_FOR_NS, entry.updated_at or 0)
        evaluating = last is not None and last >= since
        return {
            "id": rule.id,
            "name": rule.name,
            "description": rule.description,
            "source": rule.source,
            "severity": rule.severity,
            "kind": rule.kind,
            "enabled": rule.enabled,
            "origin": entry.origin,
            "overridden": entry.overridden,
            "status": "disabled" if not rule.enabled else "failing" if failed or evaluating else "active",
            "version": entry.version,
            "fired": stats.fired if stats else 0,
            "last_fired_at": format_ns(stats.last_fired_at) if stats and stats.last_fired_at else None,
            "deliveries": {
                "pending": stats.pending if stats else 0,
                "delivered": stats.delivered if stats else 0,
                "failed": failed,
                "cancelled": stats.cancelled if stats else 0,
            },
            "evaluation_failures": broken,
            "last_failure_at": format_ns(stats.last_failure_at) if stats and stats.last_failure_at else None,
            "actions": [{"type": a.type, "target": action_target(a.model_dump())} for a in rule.actions],
            "updated_at": format_ns(entry.updated_at) if entry.updated_at else None,
        }

    def load_text(self, actor: Actor, account: Account, text: str, origin: str = "file") -> list[RuleEntry]:
        """Create or replace every rule of a YAML or Sigma text, all or none (AlertRules.save_all)."""
        try:
            rules = parse_rules_text(text)
        except RuleError as exc:
            raise BadRequest(str(exc)) from None
        ids = [r.id for r in rules]
        if len(set(ids)) != len(ids):
            raise BadRequest(f"rule ids repeat in the text: {sorted({i for i in ids if ids.count(i) > 1})}")
        return self.rules.save_all(actor, account, rules, origin)

    # alerts and deliveries ------------------------------------------------------------------------
    def alerts(
        self,
        actor: Actor,
        account: Account,
        rule_id: str | None = None,
        before: tuple[int, str] | None = None,
        limit: int = 50,
        *,
        state: str | None = None,
        severity: str | None = None,
    ) -> list[AlertRecord]:
        self.people.role(actor, account)
        if state is not None and state not in ALERT_STATES:
            raise BadRequest(f"state must be one of {', '.join(ALERT_STATES)}")
        return self.store.list_alerts(account.id, rule_id, before, limit, state=state, severity=severity)

    def alert(self, actor: Actor, account: Account, alert_id: str) -> AlertRecord:
        self.people.role(actor, account)
        try:
            alert = self.store.get_alert(alert_id)
        except NotFound:
            alert = None
        if alert is None or alert.account_id != account.id:
            raise NotFound(f"Not Found: no alert {alert_id!r} in {account.name!r}")
        return alert

    def set_state(self, actor: Actor, account: Account, alert_id: str, state: str) -> AlertRecord:
        """Acknowledge, resolve or reopen an alert (owners and administrators), recording who and
        when on the alert and in the audit trail (`update` of a `report`, aux_info.kind
        "alert state")."""
        self.people.require(actor, account, "administrator", "acknowledge or resolve alerts")
        if state not in ALERT_STATES:
            raise BadRequest(f"state must be one of {', '.join(ALERT_STATES)}")
        alert = self.alert(actor, account, alert_id)
        if alert.state == state:
            return alert
        changed = self.store.set_alert_state(alert.id, state, actor.label, self.clock())
        info = {"kind": "alert state", "alert": alert.id, "rule": alert.rule_id, "from": alert.state, "state": state}
        self.audit.record(account, actor, "update", "report", object_uuid=alert.id, aux_info=info)
        return changed

    def deliveries(
        self,
        actor: Actor,
        account: Account,
        status: str | None = None,
        alert_id: str | None = None,
        limit: int = 200,
        before: tuple[int, str] | None = None,
    ) -> list[DeliveryRecord]:
        """Deliveries newest first; `before` = (created_at, id) of the last of the previous page."""
        self.people.role(actor, account)
        if status is not None and status not in DELIVERY_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(DELIVERY_STATUSES)}")
        return self.store.list_deliveries(account.id, status, alert_id, limit, before)

    def retry(self, actor: Actor, account: Account, delivery_id: str) -> DeliveryRecord:
        """Make a failed delivery due again now (owners and administrators). BadRequest for one
        delivered, or cancelled (its rule or action was deleted: retrying it would send to a
        destination the account removed); Conflict for one pending (it is attempted on its own,
        and may be under way: retrying it would send it twice at once), also when it stopped being
        failed while this ran."""
        self.people.require(actor, account, "administrator", "retry alert actions")
        try:
            delivery = self.store.get_delivery(delivery_id)
        except NotFound:
            delivery = None
        if delivery is None or delivery.account_id != account.id:
            raise NotFound(f"Not Found: no alert delivery {delivery_id!r} in {account.name!r}")
        if delivery.status == "delivered":
            raise BadRequest(f"delivery {delivery_id} was delivered; there is nothing to retry")
        if delivery.status == "cancelled":
            raise BadRequest(f"delivery {delivery_id} was cancelled: its rule or action was deleted")
        if delivery.status == "pending":
            raise Conflict(
                f"delivery {delivery_id} is pending: it is attempted again on its own (or is being attempted now);"
                " only a failed delivery can be retried"
            )
        retried = self.store.retry_delivery(delivery_id, self.clock())
        self.evaluator.kick.set()
        return retried


def delivery_view(d: DeliveryRecord) -> dict[str, Any]:
    action = orjson.loads(d.action)
    return {
        "id": d.id,
        "alert_id": d.alert_id,
        "rule_id": d.rule_id,
        "type": d.kind,
        "target": action_target(action),
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": format_ns(d.next_attempt_at) if d.status == "pending" and d.next_attempt_at else None,
        "last_error": d.last_error or None,
        "created_at": format_ns(d.created_at),
        "delivered_at": format_ns(d.delivered_at) if d.delivered_at else None,
    }


def alert_view(a: AlertRecord) -> dict[str, Any]:
    """An alert as the admin API, the CLI and the console show it: when the activity happened
    (`event_time`) and when it was detected (`detected_at`), its triggering events and the
    explorer filter that shows them, the rule and its version, and its state."""
    payload = orjson.loads(a.payload)
    rule = payload["rule"]
    return {
        "id": a.id,
        "rule_id": a.rule_id,
        "rule_name": rule["name"],
        "rule_version": a.rule_version,
        "severity": a.severity,
        "source": a.source,
        "summary": a.summary,
        "account": payload.get("account"),
        "event_time": format_ns(a.event_ts),
        "detected_at": format_ns(a.fired_at),
        "fired_at": format_ns(a.fired_at),
        "group": payload.get("group", {}),
        "count": payload.get("count", 1),
        "events": payload.get("events", []),
        "explorer": payload.get("explorer"),
        "state": a.state,
        "state_by": a.state_by or None,
        "state_at": format_ns(a.state_at) if a.state_at else None,
    }
