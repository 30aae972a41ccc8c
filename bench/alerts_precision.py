"""Precision of the starter rules on labelled data: `--days` of ordinary activity of `--people`
people from the simulator (travellers, offices, late item usages, its own brute-force and
firewall bursts), with attack scenarios injected at random times, stored as it would arrive
(batches in arrival order, the clock at the batch's time) with the server restarted every
`--restart-days`. Every alert is then judged against the stored history:

- true positive: the rule's condition holds on the stored history (a threshold reached within
  the window in event time; a country the user never signed in from before; a matching event);
- false positive: it does not, or the alert is for an expected change (a planned rotation's
  revocation, an account's founding owner);
- a scenario is detected when an alert of its rule names one of its events.

Prints a table per rule (scenarios detected/missed, false positives, alerts per 1,000 people per
day); `--json` for machines. docs/alerts.md, "Precision", keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from siemgate.accounts.actor import CLI
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns, parse_ns
from siemgate.services import Services
from siemgate.simulate.generator import history
from siemgate.simulate.world import build_world
from siemgate.store.sqlite import SQLiteStore

S, MIN, DAY = 1_000_000_000, 60_000_000_000, 86_400_000_000_000
SCENARIOS = {
    "brute force": "brute-force-signin",
    "credential stuffing": "signin-failures-from-one-address",
    "new country": "signin-new-country",
    "mass reveal/export": "mass-item-export-reveal",
    "MFA disabled": "mfa-disabled",
    "owner added": "owner-added",
    "token revoked": "siem-token-revoked",
}


@dataclass
class Clock:
    now: int = 0

    def __call__(self) -> int:
        return self.now


@dataclass
class Injected:
    kind: str
    uuids: set[str] = field(default_factory=set)


class Run:
    def __init__(self, data_dir: Path, people: int, seed: int) -> None:
        self.data_dir, self.clock = data_dir, Clock(time.time_ns())
        self.store = SQLiteStore(data_dir / "siemgate.db")
        self.store.migrate()
        self.services = self._services()
        self.account, _ = self.services.people.create_account(CLI, "Acme", "founder@acme.example", "Founder", None)
        self.world = build_world(self.account.uuid, "Acme", people, seed=seed)
        self.rng = random.Random(seed)
        self.injected: list[Injected] = []
        self.expected: set[str] = set()  # uuids of audit events of expected changes

    def _services(self) -> Services:
        settings = load_settings(data_dir=self.data_dir, alerts_enabled=True)
        return build_services(settings, self.store, self.clock)

    def restart(self) -> None:
        self.services.alerts.dispatcher.close()
        self.store.close()
        self.store = SQLiteStore(self.data_dir / "siemgate.db")
        self.services = self._services()

    def write(self, feature: Feature, events: list[dict[str, Any]]) -> None:
        self.clock.now = max(self.clock.now, max(parse_ns(e["timestamp"]) for e in events) + S)
        self.services.writer.write(self.account.id, feature, events)

    # scenarios --------------------------------------------------------------------------------
    def _user(self) -> Any:
        return self.rng.choice(self.world.humans)

    def _signin(self, t: int, user: Any, category: str, country: str, ip: str) -> dict[str, Any]:
        return {
            "uuid": new_id(), "session_uuid": new_id(), "timestamp": format_ns(t), "category": category,
            "type": "credentials_ok" if category == "success" else "password_secret_bad", "country": country,
            "target_user": self.world.user_ref(user), "client": {"app_name": "1Password for Web", "ip_address": ip},
            "location": {"country": country},
        }  # fmt: skip

    def _audit(self, t: int, action: str, object_type: str, info: dict[str, Any] | None = None) -> dict[str, Any]:
        admin = self.rng.choice(self.world.admins)
        return {
            "uuid": new_id(), "timestamp": format_ns(t), "actor_uuid": admin.uuid,
            "actor_details": self.world.user_ref(admin), "action": action, "object_type": object_type,
            "object_uuid": new_id(), **({"aux_info": orjson.dumps(info).decode()} if info else {}),
        }  # fmt: skip

    def inject(self, kind: str, t: int) -> tuple[Feature, list[dict[str, Any]]]:
        ip = f"185.220.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        if kind == "brute force":
            user = self._user()
            events = [self._signin(t + i * 15 * S, user, "credentials_failed", "RU", ip) for i in range(12)]
            return Feature.SIGNINATTEMPTS, self._label(kind, events)
        if kind == "credential stuffing":
            users = self.rng.sample(self.world.humans, min(25, len(self.world.humans)))
            events = [self._signin(t + i * 5 * S, u, "credentials_failed", "NL", ip) for i, u in enumerate(users)]
            return Feature.SIGNINATTEMPTS, self._label(kind, events)
        if kind == "new country":
            return Feature.SIGNINATTEMPTS, self._label(kind, [self._signin(t, self._user(), "success", "KP", ip)])
        if kind == "mass reveal/export":
            user = self._user()
            events = [
                {"uuid": new_id(), "timestamp": format_ns(t + i * 10 * S), "used_version": 1,
                 "vault_uuid": new_id(lower=True), "item_uuid": new_id(lower=True), "action": "reveal",
                 "user": self.world.user_ref(user), "client": {"ip_address": ip}}
                for i in range(30)
            ]  # fmt: skip
            return Feature.ITEMUSAGES, self._label(kind, events)
        if kind == "MFA disabled":
            return Feature.AUDITEVENTS, self._label(kind, [self._audit(t, "disblmfa", "user")])
        if kind == "owner added":
            return Feature.AUDITEVENTS, self._label(kind, [self._audit(t, "role", "user", {"role": "Owner"})])
        # token revoked, with a planned rotation (expected: no alert) just before
        rotation = self._audit(t - MIN, "trevoke", "satoken", {"name": "splunk", "reason": "rotated to X"})
        self.expected.add(rotation["uuid"])
        return Feature.AUDITEVENTS, [
            rotation,
            *self._label(kind, [self._audit(t, "trevoke", "satoken", {"name": "hf"})]),
        ]

    def _label(self, kind: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.injected.append(Injected(kind, {e["uuid"] for e in events}))
        return events


def simulate(run: Run, days: int, restart_days: int, per_kind: int) -> None:
    end = run.clock.now
    start = end - days * DAY
    run.clock.now = start
    schedule = sorted(
        (run.rng.randint(start + DAY, end - HOUR_NS), kind) for kind in SCENARIOS for _ in range(per_kind)
    )
    buffers: dict[Feature, list[dict[str, Any]]] = defaultdict(list)
    next_restart = start + restart_days * DAY

    def flush() -> None:
        for feature, events in list(buffers.items()):
            if events:
                run.write(feature, events)
                buffers[feature] = []

    for feature, event in history(run.world, start, end, seed=11):
        t = parse_ns(event["timestamp"])
        while schedule and schedule[0][0] <= t:
            when, kind = schedule.pop(0)
            flush()
            injected_feature, events = run.inject(kind, when)
            run.write(injected_feature, events)
        buffers[feature].append(event)
        if len(buffers[feature]) >= 500:
            flush()
        if t >= next_restart:
            flush()
            run.restart()
            next_restart += restart_days * DAY
    flush()


HOUR_NS = 3600 * S


def judge(run: Run, people: int, days: int) -> dict[str, Any]:
    store, account = run.store, run.account
    stored: dict[Feature, list[dict[str, Any]]] = {}
    for feature in Feature:
        rows, after = [], 0
        while True:
            chunk = store.read_events(account.id, feature, after, 0, None, 5000)
            if not chunk:
                break
            rows += [orjson.loads(b) for _, b, _ in chunk]
            after = chunk[-1][0]
        stored[feature] = rows
    by_uuid = {e["uuid"]: e for rows in stored.values() for e in rows}
    countries: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for e in stored[Feature.SIGNINATTEMPTS]:
        if e.get("category") == "success" and e.get("country"):
            countries[e["target_user"]["uuid"]].append((parse_ns(e["timestamp"]), e["country"].upper()))
    alerts = store.list_alerts(account.id, limit=1_000_000)
    per_rule: dict[str, dict[str, int]] = defaultdict(lambda: {"alerts": 0, "false_positives": 0})
    for alert in alerts:
        payload = orjson.loads(alert.payload)
        refs = [by_uuid.get(r["uuid"]) for r in payload["events"]]
        per_rule[alert.rule_id]["alerts"] += 1
        if not _holds(alert.rule_id, payload, refs, countries, run.expected):
            per_rule[alert.rule_id]["false_positives"] += 1
    fired: dict[str, set[str]] = defaultdict(set)
    for alert in alerts:
        fired[alert.rule_id] |= {r["uuid"] for r in orjson.loads(alert.payload)["events"]}
    table = {}
    for kind, rule in SCENARIOS.items():
        scenarios = [i for i in run.injected if i.kind == kind]
        detected = sum(1 for i in scenarios if i.uuids & fired[rule])
        stats = per_rule.get(rule, {"alerts": 0, "false_positives": 0})
        table[rule] = {
            "scenario": kind, "injected": len(scenarios), "detected": detected, "missed": len(scenarios) - detected,
            "alerts": stats["alerts"], "false_positives": stats["false_positives"],
            "per_1000_people_per_day": round(stats["alerts"] * 1000 / people / days, 3),
        }  # fmt: skip
    for rule, stats in per_rule.items():
        if rule not in table:
            table[rule] = {"scenario": "-", "injected": 0, "detected": 0, "missed": 0, **stats,
                           "per_1000_people_per_day": round(stats["alerts"] * 1000 / people / days, 3)}  # fmt: skip
    return table


def _holds(rule: str, alert: dict[str, Any], refs: list[Any], countries: Any, expected: set[str]) -> bool:
    """Whether the rule's condition holds for the alert on the stored history."""
    events = [e for e in refs if e is not None]
    if not events or any(e["uuid"] in expected for e in events):
        return False
    times = sorted(parse_ns(e["timestamp"]) for e in events)
    if rule in ("brute-force-signin", "firewall-blocked-burst", "signin-failures-from-one-address",
                "mass-item-export-reveal"):  # fmt: skip
        window = 10 * MIN if rule == "mass-item-export-reveal" else 5 * MIN
        return len(events) >= alert["count"] and times[-1] - times[0] <= window
    if rule == "signin-new-country":
        e = events[0]
        t, country = parse_ns(e["timestamp"]), e["country"].upper()
        return not any(ts < t and c == country for ts, c in countries[e["target_user"]["uuid"]])
    if rule == "owner-added":
        return all("founder" not in (e.get("aux_info") or "") for e in events)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--restart-days", type=int, default=15)
    parser.add_argument("--per-kind", type=int, default=5, help="injected scenarios of each kind")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="siemgate-precision-") as tmp:
        run = Run(Path(tmp), args.people, args.seed)
        simulate(run, args.days, args.restart_days, args.per_kind)
        table = judge(run, args.people, args.days)
        run.store.close()
    result = {"people": args.people, "days": args.days, "seconds": round(time.perf_counter() - started), "rules": table}
    if args.json:
        print(json.dumps(result))
        return
    print(f"Alert precision: {args.people} people, {args.days} days, restarts every {args.restart_days} days")
    print(f"{'rule':34} {'scenario':20} {'detected':>9} {'missed':>7} {'FP':>4} {'alerts':>7} {'/1k ppl/day':>12}")
    for rule, row in sorted(table.items()):
        print(f"{rule:34} {row['scenario']:20} {row['detected']:>5}/{row['injected']:<3} {row['missed']:>7}"
              f" {row['false_positives']:>4} {row['alerts']:>7} {row['per_1000_people_per_day']:>12}")  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
