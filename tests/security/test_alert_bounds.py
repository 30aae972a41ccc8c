"""Alert rules and actions cannot stall the server or reach what they should not: a catastrophic
regular expression is matched in linear time (RE2) while /healthz keeps answering; destinations
set by tenants are checked after DNS resolution and on every redirect (a local listener receives
nothing); and an alert the store cannot hold never blocks its stream (real store failures,
injected with a database trigger, on both backends)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from siemgate.accounts.actor import CLI
from siemgate.alerts import caseless
from siemgate.alerts import evaluator as evaluator_module
from siemgate.alerts.engine import CHECK_EVERY, MAX_SUMMARY, METER_EACH_EVENT_ABOVE, Budget, Evaluator, StateBook
from siemgate.alerts.evaluator import MAX_STEP_ALERTS
from siemgate.alerts.model import RuleError, compile_rule, load_rule, parse_rule
from siemgate.alerts.service import parse_rules_text
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.outbound import OutboundPolicy, OutboundRefused
from siemgate.outbound.http import guarded_http_client
from siemgate.services import Services
from siemgate.store.base import Account, AlertRuleRecord, Store
from siemgate.store.postgres import PostgresStore
from siemgate.store.sqlite import SQLiteStore
from support.clocks import Clock
from support.events import auditevent, failed, signin
from support.servers import start_server, stop_server
from support.stores import STORE_BACKENDS, make_store
from support.waiting import wait_for

S = 1_000_000_000
STALL = 2.0  # /healthz answers in ~ms; ten times a slow answer on a busy machine is still far below


def _slowest_while(base_url: str, busy: Callable[[], bool], other_key: str) -> float:
    """While `busy()`, poll /healthz and ingest one event into another account, in rounds: the
    longest round, pause included (a timeout counts as STALL + 1). The server runs in this
    process, so a stall freezes this loop too, wherever it is: hence whole rounds are timed."""
    import httpx

    slowest = 0.0
    pause = 0.05
    deadline = time.monotonic() + 600
    with httpx.Client(base_url=base_url, timeout=STALL) as client:
        last = time.monotonic()
        while busy() and time.monotonic() < deadline:
            try:
                assert client.get("/healthz").status_code == 200
                response = client.post(
                    "/api/ingest/v2/signinattempts",
                    json=[signin(time.time_ns())],
                    headers={"Authorization": f"Bearer {other_key}"},
                )
                assert response.status_code == 200, response.text
            except httpx.TimeoutException:
                slowest = max(slowest, STALL + 1)
            time.sleep(pause)
            now = time.monotonic()
            slowest = max(slowest, now - last - pause)
            last = now
    return slowest


def test_a_catastrophic_regex_does_not_stall_the_server(make_server: Any) -> None:
    server = make_server(alerts_enabled=True)
    account = server.account("Acme")
    rule = {
        "id": "redos",
        "name": "Nested quantifiers",
        "source": "signinattempts",
        "match": {"target_user.name": {"regex": "^(a+)+$"}},
    }
    server.services.alerts.rules.save(CLI, account, parse_rule(rule), "api")
    key = server.ingest_key(account)
    other_key = server.ingest_key(server.account("Other"))
    event = signin(server.clock())
    event["target_user"]["name"] = "a" * 29 + "!"  # Python's re backtracks 2^29 times on this
    answers: list[int] = []
    job = threading.Thread(
        target=lambda: answers.append(server.ingest(key, Feature.SIGNINATTEMPTS, [event], timeout=300).status_code)
    )
    job.start()
    store, stream = server.store, (account.id, Feature.SIGNINATTEMPTS)

    def evaluating() -> bool:  # until the request is answered and its event evaluated
        return job.is_alive() or (store.alert_checkpoint(*stream) or 0) < store.head_seq(*stream)

    slowest = _slowest_while(server.base_url, evaluating, other_key)
    job.join()
    assert answers == [200] and not evaluating()
    assert slowest < STALL, f"the server stalled for {slowest:.1f} s while a rule was matched"


def test_regular_expressions_re2_cannot_run_are_refused_with_the_reason() -> None:
    base = {"id": "r", "name": "R", "source": "signinattempts"}
    for pattern, reason in (("(a)\\1", "invalid escape sequence"), ("(?=a)b", "invalid perl operator")):
        with pytest.raises(RuleError, match="RE2 syntax") as info:
            load_rule(base | {"match": {"country": {"regex": pattern}}})
        assert reason in str(info.value)


# outbound destinations ------------------------------------------------------------------------


class Listener:
    """A local HTTP server that records whatever reaches it (it must stay empty) and can redirect."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.hits: list[str] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                listener.hits.append(self.path)
                self.rfile.read(int(self.headers.get("content-length", 0)))
                if redirect_to:
                    self.send_response(307)
                    self.send_header("location", redirect_to)
                else:
                    self.send_response(500)
                self.send_header("content-length", "27")
                self.end_headers()
                self.wfile.write(b"internal secret: db=10.0.0.5")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    receiver = Listener()
    yield receiver
    receiver.close()


class Site:
    def __init__(self, data_dir: Path, **settings: Any) -> None:
        self.clock = time.time_ns
        store = SQLiteStore(data_dir / "siemgate.db")
        store.migrate()
        self.services = build_services(
            load_settings(data_dir=data_dir, alerts_enabled=True, **settings), store, self.clock
        )
        self.account = store.create_account(new_id(), "Acme", self.clock())

    def hook_rule_stored_directly(self, actions: list[dict[str, Any]]) -> None:
        """A rule as an earlier version saved it (no check when it was saved)."""
        rule = parse_rule(
            {"id": "mfa-off", "name": "MFA off", "source": "auditevents", "match": {"action": "disblmfa"},
             "actions": actions}
        )  # fmt: skip
        now = self.clock()
        self.services.store.put_alert_rule(
            AlertRuleRecord(self.account.id, rule.id, rule.model_dump_json(by_alias=True), "api", True, now, now)
        )
        self.services.alerts.rules.invalidate(self.account.id)

    def fire(self) -> list[Any]:
        from support.events import auditevent

        self.services.writer.write(self.account.id, Feature.AUDITEVENTS, [auditevent(self.clock(), action="disblmfa")])
        self.services.alerts.dispatcher.run_due()
        return [d for d in self.services.store.list_deliveries(self.account.id) if d.rule_id == "mfa-off"]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path / "data")
    yield s
    s.services.close()


def test_loopback_and_metadata_destinations_are_refused_when_saved(site: Site) -> None:
    secret = "whsec_" + "A" * 40
    for url in ("http://127.0.0.1:9/x", "http://169.254.169.254/latest", "http://[::1]/x", "http://localhost/x",
                "http://10.0.0.5/x", "http://[::ffff:127.0.0.1]/x"):  # fmt: skip
        rule = parse_rule(
            {"id": "hook", "name": "Hook", "source": "auditevents", "match": {"action": "disblmfa"},
             "actions": [{"type": "webhook", "url": url, "secret": secret}]}
        )  # fmt: skip
        with pytest.raises(OutboundRefused, match="SIEMGATE_OUTBOUND_ALLOW"):
            site.services.alerts.rules.save(CLI, site.account, rule, "api")
    syslog = parse_rule(
        {"id": "sys", "name": "Sys", "source": "auditevents", "match": {"action": "disblmfa"},
         "actions": [{"type": "syslog", "host": "192.168.1.1", "port": 22, "protocol": "tcp"}]}
    )  # fmt: skip
    with pytest.raises(OutboundRefused, match="private address"):
        site.services.alerts.rules.save(CLI, site.account, syslog, "api")


def test_a_text_with_a_refused_destination_saves_none_of_its_rules(site: Site) -> None:
    """Every rule of a text is checked, destinations too, before any is saved: the refusal of the
    second rule's webhook leaves the first unsaved."""
    text = """
- {id: first, name: First, source: auditevents, match: {action: disblmfa}}
- id: second
  name: Second
  source: auditevents
  match: {action: disblmfa}
  actions: [{type: webhook, url: "http://127.0.0.1:9/x", secret: whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA}]
"""
    with pytest.raises(OutboundRefused, match="rule 'second'"):
        site.services.alerts.load_text(CLI, site.account, text)
    assert site.services.store.list_alert_rules(site.account.id) == []


def test_a_name_resolving_to_loopback_is_refused_after_resolution(site: Site, listener: Listener) -> None:
    site.hook_rule_stored_directly([{"type": "slack", "url": f"http://localhost:{listener.port}/hook"}])
    [delivery] = site.fire()
    assert delivery.status == "failed" and "loopback address" in delivery.last_error
    assert "SIEMGATE_OUTBOUND_ALLOW" in delivery.last_error
    assert listener.hits == []


def test_syslog_cannot_probe_local_ports(site: Site) -> None:
    with socket.socket() as probe:  # a local TCP port that is open
        probe.bind(("127.0.0.1", 0))
        probe.listen()
        probe.settimeout(0.5)
        port = probe.getsockname()[1]
        site.hook_rule_stored_directly([{"type": "syslog", "host": "localhost", "port": port, "protocol": "tcp"}])
        [delivery] = site.fire()
        assert delivery.status == "failed" and "loopback address" in delivery.last_error
        with pytest.raises(TimeoutError):
            probe.accept()  # nothing connected


def test_a_redirect_to_a_refused_address_is_not_followed(tmp_path: Path, listener: Listener) -> None:
    front = Listener(redirect_to=f"http://127.0.0.1:{listener.port}/internal")
    site = Site(tmp_path / "d", outbound_allow=["localhost"])  # the operator allows this one name
    try:
        site.hook_rule_stored_directly([{"type": "slack", "url": f"http://localhost:{front.port}/hook"}])
        [delivery] = site.fire()
        assert front.hits == ["/hook"]
        assert listener.hits == []  # the redirect's target is checked like any destination
        assert delivery.status == "failed" and "127.0.0.1 is a loopback address" in delivery.last_error
    finally:
        front.close()
        site.services.close()


def test_replies_of_a_destination_are_never_shown(tmp_path: Path, listener: Listener) -> None:
    site = Site(tmp_path / "d", outbound_allow=["127.0.0.0/8"], alerts_max_attempts=1)
    try:
        site.hook_rule_stored_directly([{"type": "slack", "url": f"http://127.0.0.1:{listener.port}/hook"}])
        [delivery] = site.fire()
        assert listener.hits == ["/hook"]
        assert delivery.last_error == "HTTP 500"
        assert "secret" not in delivery.last_error
    finally:
        site.services.close()


def test_the_checked_address_is_the_one_connected_to(monkeypatch: pytest.MonkeyPatch, listener: Listener) -> None:
    """DNS rebinding: the first answer is public, later ones loopback. The connection goes to the
    address that was checked, so the local listener receives nothing."""
    answers = iter(["192.0.43.10", "127.0.0.1", "127.0.0.1"])  # a global address first
    real = socket.getaddrinfo
    calls: list[str] = []

    def rebinding(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)
        calls.append(host)
        return real(next(answers), port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    policy = OutboundPolicy()
    with guarded_http_client(policy, timeout=1.0) as client, pytest.raises(Exception) as info:
        client.post(f"http://rebind.example:{listener.port}/x", content=b"{}")
    assert not isinstance(info.value, OutboundRefused) or "loopback" not in str(info.value)
    assert calls == ["rebind.example"]  # resolved once; the connection used that answer
    assert listener.hits == []


def test_the_operator_allow_list_takes_networks_and_names() -> None:
    settings = load_settings(outbound_allow="10.20.0.0/16, hooks.internal")
    policy = OutboundPolicy.from_allow_list(settings.outbound_allow)
    import ipaddress

    assert policy.refusal(ipaddress.ip_address("10.20.1.1")) is None
    assert policy.refusal(ipaddress.ip_address("10.21.1.1")) is not None
    assert policy.refusal(ipaddress.ip_address("127.0.0.1"), "hooks.internal") is None
    assert policy.refusal(ipaddress.ip_address("8.8.8.8")) is None
    with pytest.raises(Exception, match="neither a network"):
        load_settings(outbound_allow="10.0.0.0/33,")


def test_rules_cannot_name_server_files() -> None:
    with pytest.raises(RuleError, match="SIEMGATE_ALERTS_SYSLOG_CA_FILE"):
        parse_rule(
            {"id": "s", "name": "S", "source": "auditevents", "match": {"action": "x"},
             "actions": [{"type": "syslog", "host": "logs.example.com", "protocol": "tls", "ca_file": "/etc/shadow"}]}
        )  # fmt: skip


# an alert the store cannot hold ----------------------------------------------------------------


POISON = {
    "sqlite": "CREATE TRIGGER poison BEFORE INSERT ON alerts WHEN NEW.summary LIKE '%mallory%'"
    " BEGIN SELECT RAISE(ABORT, 'this alert cannot be stored'); END",
    "postgres": "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.summary LIKE '%mallory%' THEN"
    " RAISE EXCEPTION 'this alert cannot be stored'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql;"
    " CREATE TRIGGER poison BEFORE INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION poison()",
}


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_an_alert_that_cannot_be_stored_never_blocks_its_stream(tmp_path: Path, backend: str) -> None:
    store = make_store(backend, tmp_path)
    if isinstance(store, PostgresStore):
        with store._write() as conn:
            conn.execute(POISON["postgres"])
    else:
        assert isinstance(store, SQLiteStore)
        with store._write() as lite:
            lite.execute(POISON["sqlite"])
    clock = time.time_ns
    services = build_services(load_settings(data_dir=tmp_path, alerts_enabled=True), store, clock)
    try:
        account = store.create_account(new_id(), "Acme", clock())

        def write(events: list[dict[str, Any]]) -> None:
            services.writer.write(account.id, Feature.SIGNINATTEMPTS, events)

        write([failed(clock() + i * S, "mallory@example.com") for i in range(10)])
        assert store.list_alerts(account.id) == []
        view = services.alerts.rule(CLI, account, "brute-force-signin")
        assert view["status"] == "failing" and view["evaluation_failures"] == 1
        [failure] = store.list_alert_failures(account.id, "brute-force-signin")
        assert "could not be stored" in failure.error
        write([failed(clock() + i * S, "ada@example.com") for i in range(10)])  # evaluation goes on
        [alert] = store.list_alerts(account.id, "brute-force-signin")
        assert "ada@example.com" in alert.summary
        assert services.alerts.evaluator.catch_up() == 0
    finally:
        services.close()


# one account's costly rules against another account ------------------------------------------


def costly_rules(tests: int = 600) -> str:
    """A rule of `tests` case-insensitive `contains` tests on aux_info, none of which matches: on a
    60,000-character aux_info, tens of milliseconds of CPU per event, within every bound of a rule."""
    checks = ", ".join(f"{{aux_info: {{contains: never{t}, nocase: true}}}}" for t in range(tests))
    return f"id: costly\nname: Costly\nsource: auditevents\nmatch: {{any: [{checks}]}}\n"


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_an_account_over_its_evaluation_budget_has_its_rules_fail_and_another_account_is_evaluated(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Account A's rule costs far more CPU than A's budget allows (5 ms saved up, and nothing more
    to speak of): its evaluation stops when the budget is spent, the rule shows as failing with
    every event it missed (one failure at once, the rest gathered and recorded at shutdown, not
    a row per step), while account B's starter rule fires on B's event."""
    monkeypatch.setattr(evaluator_module, "BURST_SECONDS", 0.005)
    settings = load_settings(data_dir=tmp_path, alerts_enabled=True, alerts_account_cpu_share=0.0001)
    live, server, thread = start_server(settings, make_store(backend, tmp_path), Clock())
    try:
        a, b = live.account("A"), live.account("B")
        live.services.alerts.load_text(CLI, a, costly_rules())
        a_key, b_key = live.ingest_key(a), live.ingest_key(b)
        start = live.store.head_seq(a.id, Feature.AUDITEVENTS)  # the audit trail of the rule's creation
        long_text = "abcdefg " * 7500
        for _ in range(4):
            events = [auditevent(live.clock(), action="update", aux_info=long_text) for _ in range(3)]
            assert live.ingest(a_key, Feature.AUDITEVENTS, events).status_code == 200
        assert live.ingest(b_key, Feature.AUDITEVENTS, [auditevent(live.clock())]).status_code == 200
        wait_for("B's alert", lambda: live.store.list_alerts(b.id, "user-suspended"))
        [first] = live.store.list_alert_failures(a.id, "costly")
        assert "alerts_account_cpu_share" in first.error and (first.first_seq, first.events) == (start + 1, 3)
        view = live.services.alerts.rule(CLI, a, "costly")
        assert view["status"] == "failing" and view["evaluation_failures"] == 1
        live.services.alerts.evaluator.save_state()  # shutdown: what was gathered is recorded
        failures = live.store.list_alert_failures(a.id, "costly")
        assert len(failures) == 2 and sum(f.events for f in failures) == 12
        assert max(f.last_seq or 0 for f in failures) == live.store.head_seq(a.id, Feature.AUDITEVENTS)
        assert live.store.list_alert_failures(b.id) == []
    finally:
        stop_server(live, server, thread)


def test_a_spent_budget_leaves_the_remaining_rules_unevaluated_and_keeps_what_fired() -> None:
    rules = [
        compile_rule(parse_rule({"id": f"r{i}", "name": "R", "source": "auditevents", "match": {"action": "suspend"}}))
        for i in range(3)
    ]
    events = [(1, auditevent(time.time_ns()))]
    plenty = Evaluator(rules, StateBook())
    assert [f.rule.id for f in plenty.evaluate(events, budget=Budget(60))] == ["r0", "r1", "r2"]
    assert plenty.shed == []
    spent = Evaluator(rules, StateBook())
    assert spent.evaluate(events, budget=Budget(0)) == [] and spent.shed == ["r0", "r1", "r2"]


class CountingBudget(Budget):
    """A budget that never runs out and counts how often it is checked."""

    def __init__(self) -> None:
        super().__init__(60)
        self.checks = 0

    def check(self) -> None:
        self.checks += 1


def test_a_small_rule_is_checked_against_the_budget_per_run_of_events_a_large_one_per_event() -> None:
    """Checking the budget before each event a rule tests cost the starter rules about 0.3 µs per
    event (15-20 % of their evaluation, `bench/alerts_evaluate.py --budget`), though a test of a
    few values cannot cost much on one event. A rule of at most METER_EACH_EVENT_ABOVE values is
    checked every CHECK_EVERY events; a larger one, which can cost milliseconds an event, before
    each event it tests."""
    small = {"action": "suspend", "object_type": "user"}
    large = {"action": "suspend", "object_type": [f"type-{i}" for i in range(METER_EACH_EVENT_ABOVE)] + ["user"]}
    now = time.time_ns()
    events = [(i + 1, auditevent(now + i, action="suspend", object_type="user")) for i in range(300)]
    for match, checks in ((small, 1 + 300 // CHECK_EVERY), (large, 1 + 300)):
        rule = compile_rule(parse_rule({"id": "r", "name": "R", "source": "auditevents", "match": match}))
        budget = CountingBudget()
        assert len(Evaluator([rule], StateBook()).evaluate(events, budget=budget)) == 300
        assert budget.checks == checks, (rule.weight, budget.checks)


def counted_folds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one at each fold of a text holding a character str.lower folds
    otherwise (a Σ): each such fold looks the folding table up."""
    looked_up: list[int] = []
    tables = caseless._tables

    def counting() -> tuple[Any, dict[int, str]]:
        looked_up.append(1)
        return tables()

    monkeypatch.setattr(caseless, "_tables", counting)
    return looked_up


def test_a_long_field_is_folded_once_for_all_the_nocase_tests_of_a_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule of 600 `nocase` tests on aux_info folded the field's text for each test: on 60,000
    characters holding a Σ, 2 s of CPU for one rule on one event. Counted by the folding table's
    look-ups, which every fold of a text with such a character makes."""
    looked_up = counted_folds(monkeypatch)
    [rule] = parse_rules_text(costly_rules())
    event = auditevent(time.time_ns(), action="update", aux_info="ΣΑΒΓ abc " * 6000)
    assert Evaluator([compile_rule(rule)], StateBook()).evaluate([(1, event)]) == []
    assert len(looked_up) == 1


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_state_rebuilt_after_a_rule_change_is_evaluated_on_the_accounts_budget(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saving any rule makes the next step rebuild the account's state by evaluating again the
    events since it was last saved, with every rule: an account over its budget could have its
    costly rules evaluated in full that way, as often as it saves a rule. The rebuild is on the
    budget too; counted by the folds of the costly rule's field (one per event it tests)."""
    monkeypatch.setattr(evaluator_module, "BURST_SECONDS", 0.005)
    looked_up = counted_folds(monkeypatch)
    store = make_store(backend, tmp_path)
    settings = load_settings(data_dir=tmp_path, alerts_enabled=True, alerts_account_cpu_share=0.0001)
    services = build_services(settings, store, time.time_ns)
    try:
        account = store.create_account(new_id(), "A", time.time_ns())
        services.alerts.load_text(CLI, account, costly_rules())
        text = "ΣΑΒΓ abc " * 4000

        def write(count: int) -> None:
            events = [auditevent(time.time_ns(), action="update", aux_info=text) for _ in range(count)]
            services.writer.write(account.id, Feature.AUDITEVENTS, events)

        for _ in range(4):
            write(3)
        live = len(looked_up)
        assert live <= 2  # the budget, 5 ms, is spent within the first event or two
        services.alerts.load_text(CLI, account, "id: cheap\nname: Cheap\nsource: auditevents\nmatch: {action: x}\n")
        write(1)
        assert len(looked_up) - live <= 1, "the rebuild evaluated the costly rule on the events again"
        services.alerts.evaluator.save_state()
        assert sum(f.events for f in store.list_alert_failures(account.id, "costly")) >= 12
    finally:
        services.close()


def _costly_account(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch, *, shed_record_seconds: float
) -> tuple[Store, Services, Account]:
    """Services whose accounts may use 5 ms of evaluation saved up and next to nothing more, and
    an account of them with the rule of costly_rules(); SHED_RECORD_SECONDS as given."""
    monkeypatch.setattr(evaluator_module, "BURST_SECONDS", 0.005)
    monkeypatch.setattr(evaluator_module, "SHED_RECORD_SECONDS", shed_record_seconds)
    store = make_store(backend, tmp_path)
    settings = load_settings(data_dir=tmp_path, alerts_enabled=True, alerts_account_cpu_share=0.0001)
    services = build_services(settings, store, time.time_ns)
    account = store.create_account(new_id(), "A", time.time_ns())
    services.alerts.load_text(CLI, account, costly_rules())
    return store, services, account


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_what_the_budget_left_out_is_recorded_when_due_though_the_account_sends_nothing_more(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rules a step's budget left out are recorded at once the first time, then gathered and
    recorded at most every SHED_RECORD_SECONDS per stream. They were recorded only by a later step
    of the same stream, or at shutdown: an account that went quiet after its second step had those
    events missed silently for as long as the server ran (for good if it was killed). The periodic
    catch-up (every alerts_check_seconds) now records what is due."""
    store, services, account = _costly_account(tmp_path, backend, monkeypatch, shed_record_seconds=3600.0)
    evaluator = services.alerts.evaluator
    try:
        for _ in range(2):
            events = [auditevent(time.time_ns(), action="update", aux_info="abcdefg " * 7500) for _ in range(3)]
            services.writer.write(account.id, Feature.AUDITEVENTS, events)
        assert [f.events for f in store.list_alert_failures(account.id, "costly")] == [3]  # the second gathered
        evaluator.catch_up()
        assert len(store.list_alert_failures(account.id, "costly")) == 1  # not due yet
        monkeypatch.setattr(evaluator_module, "SHED_RECORD_SECONDS", 0.0)  # a minute later
        evaluator.catch_up()  # the server's periodic job; no event came since
        assert sorted(f.events for f in store.list_alert_failures(account.id, "costly")) == [3, 3]
    finally:
        services.close()


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_an_account_over_its_budget_is_not_told_its_rules_missed_the_alerts_it_records(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alerts recorded as audit events are never evaluated by rules, yet a step of them counted
    as missed by every rule once the budget was spent (a rule was `shed` before it looked at the
    step's events, of which it had none), and a step mixing them with others counted them as
    missed too: failures naming events no rule would have read. Only the events rules evaluate
    count, and a step with none of them is no failure."""
    # every step's failures recorded at once
    store, services, account = _costly_account(tmp_path, backend, monkeypatch, shed_record_seconds=0.0)
    try:

        def alert_event() -> dict[str, Any]:
            return auditevent(time.time_ns(), action="create", object_type="report", aux_info='{"kind":"alert"}')

        long_event = auditevent(time.time_ns(), action="update", aux_info="abcdefg " * 7500)
        services.writer.write(
            account.id, Feature.AUDITEVENTS, [long_event, alert_event(), long_event | {"uuid": new_id()}]
        )
        services.writer.write(account.id, Feature.AUDITEVENTS, [alert_event(), alert_event()])  # no rule reads these
        assert [f.events for f in store.list_alert_failures(account.id, "costly")] == [2]
    finally:
        services.close()


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_one_step_records_at_most_max_step_alerts_and_the_rest_fail_their_rules(tmp_path: Path, backend: str) -> None:
    """Rules that fire on every event: 100 of them on 200 events of 60 KB made 20,000 alerts in
    one step, each holding its event (2.6 GB of memory, 1.4 GB stored, 24 s in one request). One
    step records at most MAX_STEP_ALERTS; the others are failures of their rules, counted."""
    store = make_store(backend, tmp_path)
    settings = load_settings(data_dir=tmp_path, alerts_enabled=True, alerts_account_cpu_share=0)
    services = build_services(settings, store, time.time_ns)
    try:
        account = store.create_account(new_id(), "A", time.time_ns())
        rules = [f"id: every-{i}\nname: Every {i}\nsource: auditevents\nmatch: {{action: update}}\n" for i in range(3)]
        services.alerts.load_text(CLI, account, "---\n".join(rules))
        events = [auditevent(time.time_ns(), action="update") for _ in range(400)]
        services.writer.write(account.id, Feature.AUDITEVENTS, events)
        stats = store.alert_rule_stats(account.id)
        assert sum(stats[f"every-{i}"].fired for i in range(3)) == MAX_STEP_ALERTS
        failures = [f for i in range(3) for f in store.list_alert_failures(account.id, f"every-{i}")]
        assert sum(f.events for f in failures) == 3 * 400 - MAX_STEP_ALERTS
        assert all("were not recorded: one evaluation step records at most 1000" in f.error for f in failures)
    finally:
        services.close()


def test_event_values_in_a_default_summary_are_shown_as_written_not_filled_as_placeholders() -> None:
    """A rule without a summary describes its group with the event's values; those values went
    through the placeholder filling, so an event could choose what its alert says (an e-mail
    address `{aux_info}` showed aux_info) and how long it is (1,000 of them on 20,000
    characters: a 20 MB summary from a 30 KB event)."""
    rule = parse_rule(
        {"id": "t", "name": "T", "source": "auditevents", "match": {"action": "update"},
         "threshold": {"count": 2, "window": "1h", "group_by": ["actor_details.email"]}}
    )  # fmt: skip
    email = "{aux_info}" * 1000
    events = [
        (i, auditevent(time.time_ns(), action="update", aux_info="z" * 20_000, actor_details={"email": email}))
        for i in (1, 2)
    ]
    [firing] = Evaluator([compile_rule(rule)], StateBook()).evaluate(events)
    assert firing.summary.startswith("T: 2 events within 1h for actor_details.email={aux_info}{aux_info}")
    assert "z" not in firing.summary and len(firing.summary) == MAX_SUMMARY


def test_windows_and_suppressions_of_a_long_field_are_kept_under_a_short_key() -> None:
    """A window or a suppression was kept under its group's values as JSON: grouped by a
    60,000-character field, 121 KB per window, 12 GB at the 100,000 windows an account may keep.
    A key over MAX_KEY_TEXT characters is kept as its digest: the same groups, small keys."""
    rule = parse_rule(
        {"id": "t", "name": "T", "source": "auditevents", "match": {"action": "update"},
         "threshold": {"count": 2, "window": "1h", "group_by": ["aux_info"]}, "suppress": {"for": "1h"}}
    )  # fmt: skip
    book = StateBook()
    evaluator = Evaluator([compile_rule(rule)], book)
    first, second = "a" * 60_000, "b" * 60_000

    def event(seq: int, text: str) -> tuple[int, dict[str, Any]]:
        return seq, auditevent(time.time_ns(), action="update", aux_info=text)

    assert evaluator.evaluate([event(1, first), event(2, second)]) == []  # two groups of one event
    [fired] = evaluator.evaluate([event(3, first)])
    assert fired.group == {"aux_info": first} and fired.count == 2
    assert evaluator.evaluate([event(4, first), event(5, first)]) == []  # suppressed for an hour
    assert evaluator.evaluate([event(6, second)])[0].group == {"aux_info": second}
    keys = [key for _, key in [*book.windows, *book.suppress]]
    assert len(set(keys)) == 2 and all(len(key) <= 1024 for key in keys)  # MAX_KEY_TEXT


def test_a_regex_is_bounded_in_memory_and_its_refusal_shows_an_excerpt() -> None:
    """RE2's default memory per regex (8 MiB) let each keep about 3 MB of matching states: 200
    regexes searched once each on 60,000 characters held 618 MB, for as long as their rule (a rule
    holds up to 1,000). Each regex may use REGEX_MEMORY (the same 200: 19 MB); a pattern whose
    compiled form needs more is refused when saved, the message showing an excerpt of it (it
    showed all of it: 300 KB for a 300 KB pattern)."""
    pattern = "(" + "|".join(f"word{k}[a-z]+" for k in range(2000)) + ")"
    base = {"id": "r", "name": "R", "source": "auditevents"}
    with pytest.raises(RuleError, match="is not supported: pattern too large") as info:
        load_rule(base | {"match": {"aux_info": {"regex": pattern, "nocase": True}}})
    assert len(str(info.value)) < 1000
    load_rule(base | {"match": {"aux_info": {"regex": "(" + "|".join(f"word{k}" for k in range(200)) + ")"}}})
    # a rule stored before the bound keeps loading and matching (the rule index compiles its rest)
    stored = parse_rule(base | {"match": {"action": "update", "aux_info": {"regex": pattern, "nocase": True}}})
    [fired] = Evaluator([compile_rule(stored, stored=True)], StateBook()).evaluate(
        [(1, auditevent(time.time_ns(), action="update", aux_info="it said WORD1999xyz"))]
    )
    assert fired.rule.id == "r"
