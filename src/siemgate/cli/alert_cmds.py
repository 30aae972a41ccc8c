"""`siemgate alerts ...`: list, show, enable, disable, load and test rules; see fired alerts and
the deliveries of their actions, and retry failed ones. Changes are made as the command line
actor and recorded in the account's audit trail."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from siemgate.accounts.actor import CLI
from siemgate.cli.common import find_account, services_for
from siemgate.cli.output import err, print_json, print_table
from siemgate.errors import BadRequest
from siemgate.model.timestamps import format_ns

if TYPE_CHECKING:
    from siemgate.alerts.engine import Firing

alerts_app = typer.Typer(help="Alert rules, fired alerts and their actions.", no_args_is_help=True)
JSON_OPTION = typer.Option(False, "--json", help="Print JSON for scripts.")
ACCOUNT_OPTION = typer.Option(None, "--account", "-a", help="Account uuid or name (default: the only one).")


@alerts_app.command("list")
def list_rules(ctx: typer.Context, account: str = ACCOUNT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Every rule of the account: status, last firing, action failures."""
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        views = services.alerts.rule_views(CLI, acct)
    if as_json:
        print_json(views)
        return
    rows = [
        [v["id"], v["source"], v["kind"], v["severity"], v["status"], v["origin"], v["fired"], v["last_fired_at"],
         v["deliveries"]["failed"]]
        for v in views
    ]  # fmt: skip
    print_table(
        f"Alert rules of {acct.name}",
        ["id", "source", "kind", "severity", "status", "origin", "fired", "last fired", "failed actions"],
        rows,
    )


@alerts_app.command("show")
def show(ctx: typer.Context, rule: str, account: str = ACCOUNT_OPTION) -> None:
    """A rule, its definition (secrets masked) and status, as JSON."""
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        print_json(services.alerts.rule(CLI, acct, rule))


def _toggle(ctx: typer.Context, rule: str, account: str | None, enabled: bool) -> None:
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        services.alerts.rules.set_enabled(CLI, acct, rule, enabled)
    err.print(f"{rule}: {'enabled' if enabled else 'disabled'}")


@alerts_app.command("enable")
def enable(ctx: typer.Context, rule: str, account: str = ACCOUNT_OPTION) -> None:
    """Enable a rule."""
    _toggle(ctx, rule, account, True)


@alerts_app.command("disable")
def disable(ctx: typer.Context, rule: str, account: str = ACCOUNT_OPTION) -> None:
    """Disable a rule (starter rules too)."""
    _toggle(ctx, rule, account, False)


@alerts_app.command("delete")
def delete(ctx: typer.Context, rule: str, account: str = ACCOUNT_OPTION) -> None:
    """Delete a rule (a starter rule cannot be deleted: disable it)."""
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        services.alerts.rules.delete(CLI, acct, rule)
    err.print(f"{rule}: deleted")


@alerts_app.command("load")
def load(
    ctx: typer.Context,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="YAML: siemgate or Sigma rules."),
    account: str = ACCOUNT_OPTION,
) -> None:
    """Create or replace the rules of a YAML file (all are checked before any is saved)."""
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        try:
            entries = services.alerts.load_text(CLI, acct, file.read_text(encoding="utf-8"), origin="file")
        except BadRequest as exc:
            raise BadRequest(f"{file}: {exc.message}") from None
    for entry in entries:
        state = "enabled" if entry.enabled else "disabled"
        err.print(f"loaded {entry.rule.id} ({entry.rule.source}, {entry.rule.kind}, {state})")


@alerts_app.command("test")
def try_rule(
    ctx: typer.Context,
    rule: str = typer.Argument(..., help="A rule id of the account (or a starter rule), or a YAML rule file."),
    events: Path = typer.Option(..., "--events", exists=True, dir_okay=False, help="JSON array, NDJSON or page file."),
    account: str = typer.Option(None, "--account", "-a", help="Account whose rule to test (default: the only one)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show what a rule would have fired on, for the events of a file (in file order, from empty
    state; nothing is stored or sent)."""
    from siemgate.alerts.model import RuleError, compile_rule
    from siemgate.alerts.service import parse_rules_text, test_rule
    from siemgate.store.ingest import parse_batch

    if Path(rule).is_file():
        try:
            rules = parse_rules_text(Path(rule).read_text(encoding="utf-8"), rule)
            if len(rules) != 1:
                raise BadRequest(f"{rule} holds {len(rules)} rules; test one at a time")
            compiled = compile_rule(rules[0])
        except RuleError as exc:
            raise BadRequest(str(exc)) from None
    else:
        with services_for(ctx) as services:
            acct = find_account(services.store, account)
            compiled = services.alerts.rules.get(acct.id, rule).compiled
    items = [i for i in parse_batch(events.read_bytes()) if isinstance(i, dict)]
    firings = test_rule(compiled, items)
    if as_json:
        print_json([_firing(f) for f in firings])
    else:
        print_table(
            f"{compiled.id}: {len(firings)} alert(s) from {len(items)} event(s)",
            ["event time", "count", "group", "summary", "events"],
            [[f["event_time"], f["count"], _group(f["group"]), f["summary"], _uuids(f["events"])]
             for f in map(_firing, firings)],
        )  # fmt: skip


def _firing(firing: Firing) -> dict[str, Any]:
    return {
        "rule": firing.rule.id,
        "event_time": format_ns(firing.event_ts),
        "count": firing.count,
        "group": firing.group,
        "summary": firing.summary,
        "events": firing.events,
    }


def _uuids(refs: list[dict[str, Any]]) -> str:
    return " ".join(str(r["uuid"]) for r in refs[:5]) + (" ..." if len(refs) > 5 else "")


def _group(group: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in group.items())


@alerts_app.command("fired")
def fired(
    ctx: typer.Context,
    rule: str = typer.Option(None, "--rule", help="Only this rule's alerts."),
    state: str = typer.Option(None, "--state", help="Only alerts in this state: open, acknowledged, resolved."),
    severity: str = typer.Option(None, "--severity", help="Only this severity: low, medium, high, critical."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000),
    account: str = ACCOUNT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Fired alerts, newest first: when the activity happened, when it was detected, and their state."""
    from siemgate.alerts.service import alert_view

    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        records = services.alerts.alerts(CLI, acct, rule, None, limit, state=state, severity=severity)
        views = [alert_view(a) for a in records]
    if as_json:
        print_json(views)
        return
    print_table(
        f"Alerts of {acct.name}",
        ["activity", "detected", "id", "rule", "severity", "state", "summary"],
        [[v["event_time"], v["detected_at"], v["id"], v["rule_id"], v["severity"], v["state"], v["summary"]]
         for v in views],
    )  # fmt: skip


def _set_state(ctx: typer.Context, alert: str, account: str | None, state: str) -> None:
    from siemgate.alerts.service import alert_view

    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        view = alert_view(services.alerts.set_state(CLI, acct, alert, state))
    err.print(f"{alert}: {view['state']} by {view['state_by']} at {view['state_at']}")


@alerts_app.command("ack")
def acknowledge(ctx: typer.Context, alert: str, account: str = ACCOUNT_OPTION) -> None:
    """Acknowledge an alert (someone is looking at it)."""
    _set_state(ctx, alert, account, "acknowledged")


@alerts_app.command("resolve")
def resolve(ctx: typer.Context, alert: str, account: str = ACCOUNT_OPTION) -> None:
    """Resolve an alert (dealt with)."""
    _set_state(ctx, alert, account, "resolved")


@alerts_app.command("reopen")
def reopen(ctx: typer.Context, alert: str, account: str = ACCOUNT_OPTION) -> None:
    """Open an acknowledged or resolved alert again."""
    _set_state(ctx, alert, account, "open")


@alerts_app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    failed: bool = typer.Option(False, "--failed", help="Only failed deliveries."),
    pending: bool = typer.Option(False, "--pending", help="Only pending deliveries (waiting for a retry)."),
    account: str = ACCOUNT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Deliveries of alert actions, with attempts, the next retry and the last error."""
    from siemgate.alerts.service import delivery_view

    status = "failed" if failed else "pending" if pending else None
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        views = [delivery_view(d) for d in services.alerts.deliveries(CLI, acct, status)]
    if as_json:
        print_json(views)
        return
    print_table(
        f"Alert action deliveries of {acct.name}",
        ["id", "rule", "type", "target", "status", "attempts", "next attempt", "last error"],
        [[v["id"], v["rule_id"], v["type"], v["target"], v["status"], v["attempts"], v["next_attempt_at"],
          v["last_error"]] for v in views],
    )  # fmt: skip


@alerts_app.command("retry")
def retry(ctx: typer.Context, delivery: str, account: str = ACCOUNT_OPTION) -> None:
    """Make a failed delivery due now; the server carries it out (a pending one is attempted on its own)."""
    from siemgate.alerts.service import delivery_view

    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        view = delivery_view(services.alerts.retry(CLI, acct, delivery))
    print_json(view)


@alerts_app.command("new-secret")
def new_secret() -> None:
    """Print a new Standard Webhooks secret (whsec_...) for a webhook action."""
    print("whsec_" + base64.b64encode(os.urandom(32)).decode())
