"""Alerting on a real store: evaluation as events are stored, state that survives restarts
(restart = new services on the same data folder), the scheduled token check, and every action
against a real local receiver, with retries and visible failures."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP
from standardwebhooks.webhooks import Webhook

from siemgate.accounts.actor import CLI
from siemgate.alerts import evaluator as evaluator_module
from siemgate.alerts.actions.record import is_alert_event
from siemgate.alerts.model import RuleError, parse_rule
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.errors import BadRequest, ConfigError, Conflict
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import parse_ns
from siemgate.services import Services
from siemgate.store.base import Account
from siemgate.store.sqlite import SQLiteStore
from support.clocks import FixedClock
from support.events import auditevent, failed, signin
from support.ports import free_port
from support.receivers import HttpReceiver, Rsyslog, misbehaving
from support.waiting import wait_for

S = 1_000_000_000
SIGNIN, AUDIT = Feature.SIGNINATTEMPTS, Feature.AUDITEVENTS


class Site:
    """Services on a data folder that can be restarted (closed and built again on the same files)."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        # the receivers of these tests listen on loopback, which the operator allows here
        self.data_dir, self.clock = data_dir, FixedClock(1_900_000_000 * S)
        self.settings = {"alerts_enabled": True, "outbound_allow": ["127.0.0.0/8", "::1"], **settings}
        self.services = self._open()
        self.account: Account = self.services.store.create_account(new_id(), "Acme", self.clock())

    def _open(self) -> Services:
        store = SQLiteStore(self.data_dir / "siemgate.db")
        store.migrate()
        return build_services(load_settings(data_dir=self.data_dir, **self.settings), store, self.clock)

    def restart(self, **settings: Any) -> None:
        self.services.close()
        self.settings.update(settings)
        self.services = self._open()

    def write(self, feature: Feature, events: list[dict[str, Any]]) -> None:
        self.services.writer.write(self.account.id, feature, events)

    def alerts(self, rule_id: str | None = None) -> list[Any]:
        return self.services.store.list_alerts(self.account.id, rule_id)

    def rule(self, **definition: Any) -> None:
        self.services.alerts.rules.save(CLI, self.account, parse_rule(definition), "api")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path / "data")
    yield s
    s.services.close()


def now_failed(site: Site, n: int, email: str = "ada@example.com", offset: float = 0) -> list[dict[str, Any]]:
    return [failed(site.clock() + int((offset + i) * S), email) for i in range(n)]


# evaluation and restarts --------------------------------------------------------------------------


def test_threshold_window_survives_a_restart_and_never_fires_twice(site: Site) -> None:
    site.write(SIGNIN, now_failed(site, 6))
    assert site.alerts("brute-force-signin") == []
    site.restart()
    site.write(SIGNIN, now_failed(site, 4, offset=10))  # 6 before the restart + 4 after = 10 in 5 minutes
    [alert] = site.alerts("brute-force-signin")
    assert "10 failed sign-ins for ada@example.com" in alert.summary
    site.restart()
    assert site.services.alerts.evaluator.catch_up() == 0  # nothing left to evaluate
    site.write(SIGNIN, now_failed(site, 10, offset=20))  # same user within the hour: suppressed
    assert len(site.alerts("brute-force-signin")) == 1
    site.restart()
    site.clock.advance(3700)
    site.write(SIGNIN, now_failed(site, 10))  # after the suppression: fires again
    assert len(site.alerts("brute-force-signin")) == 2


def test_a_suppression_saved_by_0_1_holds_for_a_group_now_read_ignoring_case(site: Site) -> None:
    """0.1 kept a suppression under the group's values as written (it had no `nocase`, nor the
    firing times, `at`); brute-force-signin now groups ignoring case, so its suppression is
    looked up under the values folded: the 0.1 one is moved there, merged with one already kept
    (not dropped), and the group that fired under 0.1 stays suppressed for the rest of its hour."""
    attacker = "Mallory.Brute@Acme.example"
    site.write(SIGNIN, now_failed(site, 10, attacker))
    assert len(site.alerts("brute-force-signin")) == 1
    site.services.close()
    with sqlite3.connect(site.data_dir / "siemgate.db") as db:  # as 0.1 saved it
        [(value,)] = db.execute(
            "SELECT value FROM alert_state WHERE rule_id = 'brute-force-signin' AND kind = 'suppress'"
        )
        state = orjson.loads(value)
        old = orjson.dumps({"until": state["until"], "suppressed": state["suppressed"]}).decode()
        db.execute("DELETE FROM alert_state WHERE rule_id = 'brute-force-signin' AND kind IN ('suppress', 'meta')")
        db.execute(
            "INSERT INTO alert_state (account_id, rule_id, kind, key, value, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (site.account.id, "brute-force-signin", "suppress", orjson.dumps([attacker]).decode(), old, None),
        )
    site.services = site._open()
    site.clock.advance(60)
    site.write(SIGNIN, now_failed(site, 10, attacker.upper()))  # within the hour of 0.1's firing
    assert len(site.alerts("brute-force-signin")) == 1
    site.restart()  # the suppression was saved under the folded key, with its firing time
    site.write(SIGNIN, now_failed(site, 10, attacker.lower(), offset=20))
    assert len(site.alerts("brute-force-signin")) == 1
    site.clock.advance(3700)
    site.write(SIGNIN, now_failed(site, 10, attacker))  # past the hour: fires again
    assert len(site.alerts("brute-force-signin")) == 2


def test_events_at_the_end_of_storable_time_do_not_stop_the_accounts_alerting(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timestamps up to 2262-04-11T23:47:16Z are valid; a window or suppression that starts just
    before that ends after it, and its expiry is stored as the last storable time instead of
    failing every commit of the account's evaluation (no alert ever fired for it again)."""
    monkeypatch.setattr(evaluator_module, "STATE_SAVE_SECONDS", 0.0)  # state saved with every step
    end = parse_ns("2262-04-11T23:46:00Z")
    site.write(SIGNIN, [failed(end + i * S, "mallory@example.com") for i in range(10)])
    site.write(SIGNIN, now_failed(site, 10))
    fired = sorted(a.summary.split(" for ")[1].split(" ")[0] for a in site.alerts("brute-force-signin"))
    assert fired == ["ada@example.com", "mallory@example.com"]
    site.restart()  # the clamped state is read back: mallory's suppression still holds
    site.write(SIGNIN, [failed(end + (10 + i) * S, "mallory@example.com") for i in range(10)])
    assert len(site.alerts("brute-force-signin")) == 2
    assert site.services.store.list_alert_failures(site.account.id) == []


def test_first_seen_and_suppression_survive_restarts(site: Site) -> None:
    user = signin(site.clock())["target_user"]

    def sign_in(country: str) -> None:
        site.write(SIGNIN, [signin(site.clock(), country=country, target_user=user)])
        site.clock.advance(1)

    sign_in("CA")
    site.restart()
    sign_in("CA")
    assert site.alerts("signin-new-country") == []
    site.restart()
    sign_in("FR")
    assert len(site.alerts("signin-new-country")) == 1
    site.restart()
    sign_in("FR")
    sign_in("CA")
    assert len(site.alerts("signin-new-country")) == 1


def test_events_stored_while_evaluation_was_off_are_caught_up_once(site: Site) -> None:
    site.write(SIGNIN, now_failed(site, 1))  # the stream's checkpoint starts here
    site.restart(alerts_enabled=False)  # e.g. a process that crashed before evaluating
    site.write(SIGNIN, now_failed(site, 9, offset=1))
    assert site.alerts() == []
    site.restart(alerts_enabled=True)
    assert site.services.alerts.evaluator.catch_up() == 9
    assert len(site.alerts("brute-force-signin")) == 1
    assert site.services.alerts.evaluator.catch_up() == 0
    assert len(site.alerts("brute-force-signin")) == 1


def test_disabled_and_custom_rules(site: Site) -> None:
    site.services.alerts.rules.set_enabled(CLI, site.account, "mfa-disabled", False)
    site.rule(
        id="vip-export", name="VIP export", source="itemusages", severity="critical",
        match={"action": "export", "user.email": {"suffix": "@vip.example", "nocase": True}},
    )  # fmt: skip
    site.write(AUDIT, [auditevent(site.clock(), action="disblmfa", object_type="user")])
    event = auditevent(site.clock(), action="suspend", object_type="user")
    site.write(AUDIT, [event])
    from support.events import itemusage

    usage = itemusage(site.clock(), action="export")
    usage["user"]["email"] = "Boss@VIP.example"
    site.write(Feature.ITEMUSAGES, [usage])
    assert site.alerts("mfa-disabled") == []
    assert [a.rule_id for a in site.alerts("user-suspended")] == ["user-suspended"]
    [vip] = site.alerts("vip-export")
    assert vip.severity == "critical"


def test_replayed_history_does_not_page(site: Site) -> None:
    old = [failed(site.clock() - 30 * 86400 * S + i * S) for i in range(20)]
    site.write(SIGNIN, old)
    assert site.alerts() == []


def test_unused_siem_token_is_found_by_the_scheduled_check(site: Site) -> None:
    integration = site.services.store.create_integration(site.account.id, new_id(), "splunk", "Splunk", "", 0)
    _, token = site.services.tokens.issue(site.account, integration, "hf1", [SIGNIN], None)
    evaluator = site.services.alerts.evaluator
    assert evaluator.check_tokens() == 0
    site.clock.advance(25 * 3600)
    assert evaluator.check_tokens() == 1
    [alert] = site.alerts("siem-token-unused")
    assert "SIEM token hf1 of integration Splunk" in alert.summary
    site.restart()
    assert site.services.alerts.evaluator.check_tokens() == 0  # suppressed for a week, across restarts
    site.services.store.record_token_uses([])
    site.services.lifecycle.revoke(CLI, site.account, token.id)
    assert [a.rule_id for a in site.alerts("siem-token-revoked")] == ["siem-token-revoked"]
    site.clock.advance(8 * 86400)
    assert site.services.alerts.evaluator.check_tokens() == 0  # revoked: no longer watched


# actions ------------------------------------------------------------------------------------------


def mfa_rule(site: Site, *actions: dict[str, Any]) -> None:
    site.services.alerts.rules.set_enabled(CLI, site.account, "mfa-disabled", False)  # the starter twin
    site.rule(id="mfa-off", name="MFA off", source="auditevents", match={"action": "disblmfa"}, actions=list(actions))


def fire(site: Site) -> Any:
    site.write(AUDIT, [auditevent(site.clock(), action="disblmfa", object_type="user")])
    return site.alerts("mfa-off")[0]


def per_actor_rule(site: Site, action: dict[str, Any], name: str = "MFA off") -> None:
    """mfa-off as a threshold of 2 per actor name, its summary and group naming the actor."""
    site.services.alerts.rules.set_enabled(CLI, site.account, "mfa-disabled", False)  # the starter twin
    site.rule(
        id="mfa-off",
        name=name,
        source="auditevents",
        match={"action": "disblmfa"},
        threshold={"count": 2, "window": "5m", "group_by": ["actor_details.name"]},
        summary="{actor_details.name} turned MFA off",
        actions=[action],
    )


def fire_as(site: Site, name: str) -> Any:
    """Fire per_actor_rule with two events of an actor called `name`; returns the alert."""
    actor = {"uuid": new_id(), "name": name, "email": "ada@example.com", "user_type": "user"}
    twice = [auditevent(site.clock() + i, action="disblmfa", object_type="user", actor_details=actor) for i in (0, 1)]
    site.write(AUDIT, twice)
    return site.alerts("mfa-off")[0]


def deliveries(site: Site) -> list[Any]:
    return site.services.store.list_deliveries(site.account.id)


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    yield receiver
    receiver.close()


def test_webhook_is_signed_and_retried_with_backoff(site: Site, http: HttpReceiver) -> None:
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    mfa_rule(site, {"type": "webhook", "url": f"{http.url}/hook", "secret": secret})
    alert = fire(site)
    http.statuses = [503, 503]
    dispatcher = site.services.alerts.dispatcher
    assert dispatcher.run_due() == 1
    [d] = deliveries(site)
    assert (d.status, d.attempts, d.last_error) == ("pending", 1, "HTTP 503")
    assert d.next_attempt_at == site.clock() + 30 * S  # first retry after 30 s
    assert dispatcher.run_due() == 0  # not due yet
    site.clock.advance(30)
    dispatcher.run_due()
    assert deliveries(site)[0].next_attempt_at == site.clock() + 60 * S  # doubled
    site.clock.advance(60)
    dispatcher.run_due()
    [d] = deliveries(site)
    assert (d.status, d.attempts) == ("delivered", 3)
    request = http.requests[-1]
    payload = Webhook(secret).verify(request["body"], request["headers"])
    assert payload["type"] == "alert.fired" and payload["data"]["id"] == alert.id
    assert {r["headers"]["webhook-id"] for r in http.requests} == {d.id}  # the same id on every attempt


def test_permanent_failures_are_visible_and_can_be_retried(site: Site, http: HttpReceiver) -> None:
    mfa_rule(site, {"type": "slack", "url": f"{http.url}/services/T0/B0/x"})
    fire(site)
    http.statuses = [404]
    site.services.alerts.dispatcher.run_due()
    [d] = deliveries(site)
    assert (d.status, d.attempts) == ("failed", 1)
    view = site.services.alerts.rule(CLI, site.account, "mfa-off")
    assert view["status"] == "failing" and view["deliveries"]["failed"] == 1
    site.services.alerts.retry(CLI, site.account, d.id)
    site.services.alerts.dispatcher.run_due()
    assert deliveries(site)[0].status == "delivered"
    body = orjson.loads(http.requests[-1]["body"])
    assert body["text"].startswith("[siemgate] medium: MFA off") and body["blocks"]


def test_slack_messages_show_event_text_as_text(site: Site, http: HttpReceiver) -> None:
    """Event fields are written by whoever produced the event (a person's name, the address typed
    at a failed sign-in): in a Slack message they cannot ping the channel, mention people or hide a
    link behind words, because &, < and > are escaped as Slack's mrkdwn requires."""
    per_actor_rule(site, {"type": "slack", "url": http.url}, name="MFA off <!here>")
    fire_as(site, "<!channel> <https://evil.example/reset|Reset your password> & <@U0123>")
    site.services.alerts.dispatcher.run_due()
    body = orjson.loads(http.requests[-1]["body"])
    texts = [body["text"], body["blocks"][1]["text"]["text"], *(f["text"] for f in body["blocks"][2]["fields"])]
    escaped = "&lt;!channel&gt; &lt;https://evil.example/reset|Reset your password&gt; &amp; &lt;@U0123&gt;"
    assert escaped in body["blocks"][1]["text"]["text"] and escaped in body["text"]
    assert any(escaped in text for text in texts[2:])  # the group
    assert not any("<" in text or ">" in text for text in texts), texts
    assert body["blocks"][0]["text"]["text"] == "[siemgate] medium: MFA off <!here>"  # plain_text shows it as is


def test_transient_failures_give_up_after_max_attempts(tmp_path: Path, http: HttpReceiver) -> None:
    site = Site(tmp_path / "d", alerts_max_attempts=2)
    try:
        mfa_rule(site, {"type": "slack", "url": http.url})
        fire(site)
        http.statuses = [500, 500]
        site.services.alerts.dispatcher.run_due()
        site.clock.advance(31)
        site.services.alerts.dispatcher.run_due()
        [d] = deliveries(site)
        assert (d.status, d.attempts, d.last_error) == ("failed", 2, "HTTP 500")
    finally:
        site.services.close()


class _Capture:
    def __init__(self, quit_reply: str | None = None) -> None:
        self.messages: list[Any] = []
        self.helo_names: list[str] = []
        self.quit_reply = quit_reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        self.helo_names.append(session.host_name)
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> Any:
        return self.quit_reply or MISSING


TRICKLE = 0.02  # seconds between the bytes of a trickling server's replies


class _TricklingSMTP(SMTP):
    """aiosmtpd's server, each reply sent one byte at a time: every byte well within a timeout."""

    async def push(self, status: Any) -> None:
        reply = (status.encode() if isinstance(status, str) else status) + b"\r\n"
        assert self._writer is not None
        for i in range(len(reply)):
            self._writer.write(reply[i : i + 1])
            await self._writer.drain()
            await asyncio.sleep(TRICKLE)


class _TricklingController(Controller):
    def factory(self) -> SMTP:
        return _TricklingSMTP(self.handler, **self.SMTP_kwargs)


@contextlib.contextmanager
def smtp_site(
    tmp_path: Path, handler: _Capture, controller: type[Controller] = Controller, **settings: Any
) -> Iterator[Site]:
    """A Site sending email through a real local SMTP server (aiosmtpd) that `handler` answers."""
    # the server's own name given: aiosmtpd would look it up (socket.getfqdn), which a test may block
    server = controller(handler, hostname="127.0.0.1", port=free_port(), server_hostname="smtp.test")
    server.start()
    site = Site(
        tmp_path / "d", smtp_host="127.0.0.1", smtp_port=server.port, smtp_from="alerts@acme.example", **settings
    )
    try:
        yield site
    finally:
        site.services.close()
        server.stop()


def _email_once(site: Site) -> tuple[Any, float]:
    """Fire an alert emailing secops, run the dispatcher once: (the delivery, seconds it took)."""
    mfa_rule(site, {"type": "email", "to": ["secops@acme.example"]})
    fire(site)
    started = time.monotonic()
    site.services.alerts.dispatcher.run_due()
    took = time.monotonic() - started
    [d] = deliveries(site)
    return d, took


def test_email_through_a_real_smtp_server(tmp_path: Path) -> None:
    handler = _Capture()
    with smtp_site(tmp_path, handler) as site:
        mfa_rule(site, {"type": "email", "to": ["secops@acme.example", "ciso@acme.example"]})
        alert = fire(site)
        site.services.alerts.dispatcher.run_due()
        assert deliveries(site)[0].status == "delivered"
        [envelope] = handler.messages
        assert envelope.mail_from == "alerts@acme.example"
        assert envelope.rcpt_tos == ["secops@acme.example", "ciso@acme.example"]
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert message["Subject"] == "[siemgate] medium: MFA off"
        assert message["X-Siemgate-Alert"] == alert.id
        assert alert.summary in message.get_content()


def test_a_rule_name_with_line_breaks_cannot_add_email_headers(tmp_path: Path) -> None:
    """The subject is the rule's name, which a Sigma rule's title or an API client chooses: its line
    breaks (CR, LF and the others Python's email package splits on) become spaces, so the email
    goes to its recipients alone, with no header the name spelled. Such names are now refused when
    saved (tests/security/test_bounds_names.py); a rule saved by an older release may hold one."""
    handler = _Capture()
    with smtp_site(tmp_path, handler) as site:
        site.services.alerts.rules.set_enabled(CLI, site.account, "mfa-disabled", False)  # the starter twin
        name = "MFA off\r\nBcc: attacker@evil.example\nX-Forged: 1\x85\u2028done"
        action = {"type": "email", "to": ["secops@acme.example"]}
        rule = {"id": "mfa-off", "name": name, "source": "auditevents", "match": {"action": "disblmfa"}}
        with pytest.raises(RuleError, match="not allowed in a name"):
            site.rule(**rule, actions=[action])
        older = parse_rule({**rule, "actions": [action]}, stored=True)
        site.services.alerts.rules.save(CLI, site.account, older, "api")
        fire(site)
        site.services.alerts.dispatcher.run_due()
        [d] = deliveries(site)
        assert d.status == "delivered", d.last_error
        [envelope] = handler.messages
        assert envelope.rcpt_tos == ["secops@acme.example"]
        message = message_from_bytes(envelope.content, policy=policy.default)
        subject = "[siemgate] medium: MFA off Bcc: attacker@evil.example X-Forged: 1 done"
        assert message["Subject"].strip() == subject  # strip: the long header is folded at its start
        assert message["Bcc"] is None and message["X-Forged"] is None


def test_event_text_cannot_add_lines_to_an_email(tmp_path: Path) -> None:
    """The summary and the group are filled from event fields a person chooses (their name): a line
    break in them made lines of its own in the plain-text body, which could pass for siemgate's
    (`Rule:`, `Alert id:`). Each is written on its own line, its line breaks as spaces."""
    handler = _Capture()
    with smtp_site(tmp_path, handler) as site:
        per_actor_rule(site, {"type": "email", "to": ["secops@acme.example"]})
        fire_as(site, "Ada\r\n\nRule: all clear (none), severity low\u2028Alert id: 0\n")
        site.services.alerts.dispatcher.run_due()
        [envelope] = handler.messages
        body = message_from_bytes(envelope.content, policy=policy.default).get_content()
        lines = body.splitlines()
        assert [line.split(":")[0] for line in lines if line.startswith(("Rule:", "Alert id:"))] == ["Rule", "Alert id"]
        assert lines[0] == "Ada Rule: all clear (none), severity low Alert id: 0  turned MFA off"


def test_an_smtp_server_that_trickles_its_replies_holds_an_email_no_longer_than_its_timeout(tmp_path: Path) -> None:
    """The SMTP timeout bounded each socket operation, so a server that answers every command a
    byte at a time (each byte within the timeout) held a delivery for the whole conversation, here
    ten times the timeout, and, past the dispatcher's lease, it was sent twice. Now the attempt
    ends by one deadline, `smtp_timeout` after it began."""
    handler = _Capture()
    with smtp_site(tmp_path, handler, _TricklingController, smtp_timeout=0.5, alerts_max_attempts=1) as site:
        d, took = _email_once(site)
        assert d.status == "failed" and "timed out" in d.last_error, d
        assert took < 0.5 + 3.0, took  # the greeting alone takes longer than the deadline; 5 s before
        assert handler.messages == []


def _stuck_resolver(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every lookup of the machine's own name take 5 s (a resolver that does not answer); the
    names of the lookups made."""
    made: list[str] = []

    def stuck(name: str = "") -> str:
        made.append(name)
        time.sleep(5)
        return "stuck.invalid"

    for lookup in ("getfqdn", "gethostbyname", "gethostbyaddr"):
        monkeypatch.setattr(socket, lookup, stuck)
    return made


@pytest.mark.parametrize("helo_name", [None, "mail.acme.example"])
def test_an_email_looks_up_no_name_outside_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helo_name: str | None
) -> None:
    """smtplib named the sender in EHLO by socket.getfqdn() (a reverse DNS lookup, then
    gethostbyname), before the first command and outside the delivery's deadline: a resolver that
    does not answer held each email for its timeout times its retries. The name is now
    `smtp_helo_name`, else the host name when it has a dot, else the address literal of the
    connection's local end, found without DNS."""
    made = _stuck_resolver(monkeypatch)
    handler = _Capture()
    with smtp_site(tmp_path, handler, smtp_timeout=1.0, smtp_helo_name=helo_name, alerts_max_attempts=1) as site:
        d, took = _email_once(site)
        assert (d.status, d.last_error) == ("delivered", ""), d
        assert took < 3.0, took  # each stuck lookup takes 5 s
    assert made == []
    host = socket.gethostname()
    assert handler.helo_names == [helo_name or (host if "." in host else "[127.0.0.1]")]


@pytest.mark.parametrize("name", ["mail.acme.example\r\nRSET", "two words", "", "[x]", "-a.example", "a" * 256])
def test_an_smtp_helo_name_that_is_not_one_is_refused_at_start(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="not a name for SMTP EHLO"):
        load_settings(data_dir=tmp_path, smtp_helo_name=name)


def test_an_email_accepted_is_delivered_whatever_its_quit_reply(tmp_path: Path) -> None:
    """A 4xx reply to QUIT, after the server had accepted the message, failed the attempt as one
    to retry: the same email was sent again. QUIT's reply no longer counts."""
    handler = _Capture(quit_reply="421 closing")
    with smtp_site(tmp_path, handler, alerts_max_attempts=3) as site:
        mfa_rule(site, {"type": "email", "to": ["secops@acme.example"]})
        fire(site)
        site.services.alerts.dispatcher.run_due()
        [d] = deliveries(site)
        assert (d.status, d.attempts, d.last_error) == ("delivered", 1, ""), d
        assert len(handler.messages) == 1


def test_email_without_an_smtp_server_fails_with_what_to_set(site: Site) -> None:
    mfa_rule(site, {"type": "email", "to": ["secops@acme.example"]})
    fire(site)
    site.services.alerts.dispatcher.run_due()
    [d] = deliveries(site)
    assert d.status == "failed" and "SIEMGATE_SMTP_HOST" in d.last_error


@pytest.mark.parametrize("protocol", ["udp", "tcp", "tls"])
def test_syslog_to_a_real_rsyslog(site: Site, rsyslog: Rsyslog, protocol: str) -> None:
    port = {"udp": rsyslog.udp, "tcp": rsyslog.tcp, "tls": rsyslog.tls}[protocol]
    action = {"type": "syslog", "host": "127.0.0.1", "port": port, "protocol": protocol, "facility": "local3"}
    if protocol == "tls":
        action["host"] = "localhost"
        site.restart(alerts_syslog_ca_file=rsyslog.dir / "ca.pem")
    mfa_rule(site, action)
    alert = fire(site)
    site.services.alerts.dispatcher.run_due()
    assert deliveries(site)[0].status == "delivered"
    message = wait_for(f"the alert over {protocol}", lambda: [m for m in rsyslog.messages() if alert.id in m["sd"]])[0]
    assert (message["app"], message["msgid"], message["input"]) == ("siemgate", "ALERT", protocol)
    assert message["pri"] == str(19 * 8 + 4)  # local3, warning (medium)
    assert orjson.loads(message["msg"])["summary"] == alert.summary


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_a_syslog_alert_too_large_for_the_receiver_is_cut_to_fit(site: Site, rsyslog: Rsyslog, protocol: str) -> None:
    """A person's name, chosen by that person, fills the summary and the group: 60 KB each. Over
    UDP the datagram was over 65,507 bytes and never sent (retried until given up); under it, a
    receiver cut it at its own limit (8 KiB for rsyslogd and syslog-ng by default) inside the
    JSON. Now the message fits 2048 bytes (UDP) or 8192 (TCP, TLS): long texts are cut on a
    character, ending with "…", and the MSG says `"truncated": true`; it stays valid JSON."""
    port = {"udp": rsyslog.udp, "tcp": rsyslog.tcp}[protocol]
    action = {"type": "syslog", "host": "127.0.0.1", "port": port, "protocol": protocol}
    per_actor_rule(site, action)
    name = 'é\\"]' * 8_000  # two bytes, then what JSON and structured data escape
    alert = fire_as(site, name)
    site.services.alerts.dispatcher.run_due()
    [d] = deliveries(site)
    assert d.status == "delivered", d.last_error
    [message] = wait_for("the alert", lambda: [m for m in rsyslog.messages() if alert.id in m["sd"]])
    body = orjson.loads(message["msg"])
    assert len(message["msg"].encode()) < {"udp": 2048, "tcp": 8192}[protocol]
    assert body["truncated"] is True and body["id"] == alert.id and body["count"] == 2
    assert body["summary"].endswith("…") and name.startswith(body["summary"][:-1])
    assert body["rule"]["name"] == "MFA off"


def _recorded(site: Site) -> list[dict[str, Any]]:
    rows = site.services.store.read_events(site.account.id, AUDIT, 0, 0, None, 100)
    return [e for e in (orjson.loads(body) for _, body, _ in rows) if is_alert_event(e)]


def test_alert_recorded_as_an_audit_event_once(site: Site) -> None:
    mfa_rule(site, {"type": "event"})
    alert = fire(site)
    dispatcher = site.services.alerts.dispatcher
    dispatcher.run_due()
    [d] = deliveries(site)
    dispatcher.deliver(d)  # delivered again (a crash before it was marked): stored once
    recorded = _recorded(site)
    assert len(recorded) == 1
    event = recorded[0]
    assert (event["action"], event["object_type"], event["object_uuid"]) == ("create", "report", alert.id)
    info = orjson.loads(event["aux_info"])
    assert info["rule"] == "mfa-off" and info["summary"] == alert.summary
    assert site.alerts("mfa-off") == [alert]  # the recorded alert does not trigger rules itself


def _count_writes(site: Site) -> list[tuple[Feature, int]]:
    writes: list[tuple[Feature, int]] = []
    write = site.services.writer.write

    def counting(account_id: int, feature: Feature, items: Any, **kw: Any) -> Any:
        writes.append((feature, len(items)))
        return write(account_id, feature, items, **kw)

    site.services.writer.write = counting  # type: ignore[method-assign]
    return writes


def test_alerts_of_several_steps_are_recorded_as_events_in_one_batch(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluator_module, "RECORD_SECONDS", 3600.0)  # no step waits long enough here
    writes = _count_writes(site)
    site.write(AUDIT, [auditevent(site.clock() + i * S, action="disblmfa", object_type="user") for i in range(3)])
    site.write(AUDIT, [auditevent(site.clock() + (3 + i) * S, action="disblmfa", object_type="user") for i in range(2)])
    assert len(site.alerts("mfa-disabled")) == 5  # committed with their steps
    assert writes == [(AUDIT, 3), (AUDIT, 2)] and _recorded(site) == []  # not recorded as events yet
    evaluator = site.services.alerts.evaluator
    assert evaluator.record_pending() == 0  # none has waited RECORD_SECONDS
    assert evaluator.record_pending(force=True) == 5  # the server's dispatch tick, every second
    assert writes == [(AUDIT, 3), (AUDIT, 2), (AUDIT, 5)]  # the five alerts of two steps in one write
    assert len(_recorded(site)) == 5
    assert {(d.kind, d.status, d.attempts) for d in site.services.store.list_deliveries(site.account.id)} == {
        ("event", "delivered", 1)
    }
    assert site.services.alerts.dispatcher.run_due() == 0 and evaluator.record_pending(force=True) == 0


def test_a_step_records_the_alerts_that_waited_long_enough(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluator_module, "RECORD_SECONDS", 0.0)  # every alert has waited long enough
    writes = _count_writes(site)
    site.write(AUDIT, [auditevent(site.clock() + i * S, action="disblmfa", object_type="user") for i in range(3)])
    assert writes == [(AUDIT, 3), (AUDIT, 3)]  # the events, then their 3 alerts in one batch: no dispatcher
    assert len(_recorded(site)) == 3


def test_alerts_waiting_to_be_recorded_are_recorded_at_shutdown(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluator_module, "RECORD_SECONDS", 3600.0)
    site.write(AUDIT, [auditevent(site.clock(), action="disblmfa", object_type="user")])
    assert _recorded(site) == []
    site.restart()
    assert len(_recorded(site)) == 1
    assert [d.status for d in site.services.store.list_deliveries(site.account.id)] == ["delivered"]


def test_a_scheduled_alert_is_recorded_as_an_event_without_waiting_for_the_lease(site: Site) -> None:
    integration = site.services.store.create_integration(site.account.id, new_id(), "splunk", "Splunk", "", 0)
    site.services.tokens.issue(site.account, integration, "hf1", [SIGNIN], None)
    site.clock.advance(25 * 3600)
    evaluator = site.services.alerts.evaluator
    assert evaluator.check_tokens() == 1
    assert evaluator.record_pending(force=True) == 1  # taken by the check itself, not left to the lease's end
    [event] = _recorded(site)
    assert orjson.loads(event["aux_info"])["rule"] == "siem-token-unused"


def test_rule_changes_leave_other_accounts_evaluation_state_alone(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """An account's evaluation state is reloaded from the store when its own rules change, never
    because another account changed its rules (which an administrator may do in a loop), nor for a
    save refused or a change that changes nothing."""
    store = site.services.store
    other = store.create_account(new_id(), "Other", site.clock())
    loads: Counter[int] = Counter()
    load = store.load_alert_state

    def counted(account_id: int) -> Any:
        loads[account_id] += 1
        return load(account_id)

    monkeypatch.setattr(store, "load_alert_state", counted)
    rules = site.services.alerts.rules
    site.services.writer.write(other.id, SIGNIN, [signin(site.clock())])
    site.write(SIGNIN, [signin(site.clock())])
    assert loads == {other.id: 1, site.account.id: 1}
    for country in ("FR", "DE", "IT"):
        site.rule(id="x-custom", name="Custom", source="signinattempts", match={"country": country})
        rules.set_enabled(CLI, site.account, "brute-force-signin", country != "DE")
    with pytest.raises(BadRequest):
        rules.save(CLI, site.account, parse_rule({**_CUSTOM, "match": {"user.mail": "x"}}), "api")
    site.services.writer.write(other.id, SIGNIN, [signin(site.clock())])
    assert loads[other.id] == 1
    rules.set_enabled(CLI, other, "brute-force-signin", True)  # enabled already: nothing changes
    site.services.writer.write(other.id, SIGNIN, [signin(site.clock())])
    assert loads[other.id] == 1
    rules.save(CLI, other, parse_rule(_CUSTOM), "api")  # its own change: its state is read again
    site.services.writer.write(other.id, SIGNIN, [signin(site.clock())])
    assert loads[other.id] == 2


_CUSTOM = {"id": "x-custom", "name": "Custom", "source": "signinattempts", "match": {"country": "FR"}}


def test_rules_are_compiled_once_per_stored_version(site: Site) -> None:
    """The rule cache is refreshed from the store every few seconds; a rule that did not change
    comes back as the same compiled rule (evaluation keeps its index, nothing is compiled again for
    every account at every refresh), and a changed rule is compiled anew."""
    rules = site.services.alerts.rules
    custom = parse_rule({"id": "x-custom", "name": "Custom", "source": "signinattempts", "match": {"country": "FR"}})
    rules.save(CLI, site.account, custom, "api")
    before = {e.rule.id: e.compiled for e in rules.entries(site.account.id)}
    rules.invalidate()  # as the cache's expiry does
    after = {e.rule.id: e.compiled for e in rules.entries(site.account.id)}
    assert after.keys() == before.keys() and {"brute-force-signin", "x-custom"} <= after.keys()
    assert all(after[i] is before[i] for i in before)
    rules.set_enabled(CLI, site.account, "brute-force-signin", False)
    rules.save(CLI, site.account, custom.model_copy(update={"match": {"country": "DE"}}), "api")
    changed = {e.rule.id: e for e in rules.entries(site.account.id)}
    assert changed["x-custom"].compiled is not before["x-custom"] and changed["x-custom"].rule.match == {
        "country": "DE"
    }
    assert (
        not changed["brute-force-signin"].enabled
        and changed["brute-force-signin"].compiled is not before["brute-force-signin"]
    )
    assert changed["signin-new-country"].compiled is before["signin-new-country"]


def test_a_failed_webhook_names_its_destination_without_its_path_or_credentials(site: Site) -> None:
    """A delivery's last error is shown to every member: it names the destination by its origin
    only, as the rule's targets do (the path, query and user information may be credentials)."""
    port = free_port()  # nothing listens there
    url = f"http://robot:pw@127.0.0.1:{port}/secret-path?token=SECRET"
    action = {"type": "webhook", "url": url, "secret": "whsec_" + "A" * 40, "timeout": 2}
    site.rule(id="hook", name="Hook", source="auditevents", match={"action": "disblmfa"}, actions=[action])
    site.write(AUDIT, [auditevent(site.clock(), action="disblmfa", object_type="user")])
    site.services.alerts.dispatcher.run_due()
    [d] = [d for d in site.services.store.list_deliveries(site.account.id) if d.kind == "webhook"]
    assert d.last_error is not None and f"http://127.0.0.1:{port}/…" in d.last_error, d.last_error
    assert not [word for word in ("secret-path", "SECRET", "robot", "pw@") if word in d.last_error], d.last_error


def test_a_threshold_rule_whose_match_changes_counts_only_events_it_now_matches(site: Site) -> None:
    """An edit that changes what a threshold rule matches or groups by starts its windows empty:
    the events counted before satisfied the old condition, not the new one, and an alert names
    only events that satisfy its rule (two failures and one success fired '3 successes'). An edit
    that leaves them alone (a rename) keeps the windows."""
    base = {"id": "three", "source": "signinattempts", "match": {"category": "success"},
            "threshold": {"count": 3, "window": "10m", "group_by": ["target_user.email"]}}  # fmt: skip
    site.rule(**base | {"name": "Three", "match": {"category": "credentials_failed"}})
    site.write(SIGNIN, now_failed(site, 2))
    site.restart()  # the windows are saved (as every 2 seconds)
    site.rule(**base, name="Three")  # edited while events flow: now successes
    site.write(SIGNIN, [signin(site.clock() + 5 * S)])
    assert site.alerts("three") == []
    site.write(SIGNIN, [signin(site.clock() + (6 + i) * S) for i in range(2)])
    [alert] = site.alerts("three")  # three successes: fires, on them only
    assert alert.rule_version == 2
    site.write(SIGNIN, [signin(site.clock() + (20 + i) * S) for i in range(2)])
    site.rule(**base, name="Renamed")  # counts the same events: the window stays
    site.restart()
    site.write(SIGNIN, [signin(site.clock() + 30 * S)])
    assert sorted(a.rule_version for a in site.alerts("three")) == [2, 3]


def test_a_deleted_rules_alerts_waiting_to_be_recorded_as_events_are_not_recorded(site: Site) -> None:
    """Deleting a rule cancels its pending deliveries, the `event` action's too: an alert still
    waiting (about a second) to be recorded in auditevents is not written after the deletion,
    and its delivery stays cancelled. Removing the action from the rule does the same."""
    for rule_id in ("deleted", "edited"):
        site.rule(id=rule_id, name=rule_id, source="signinattempts", match={"category": "success"})
    site.write(SIGNIN, [signin(site.clock())])
    assert {a.rule_id for a in site.alerts()} == {"deleted", "edited"}
    site.services.alerts.rules.delete(CLI, site.account, "deleted")
    site.rule(id="edited", name="edited", source="signinattempts", match={"category": "success"},
              actions=[{"type": "syslog", "host": "127.0.0.1", "port": free_port(), "protocol": "udp"}])  # fmt: skip
    site.services.alerts.evaluator.record_pending(force=True)
    rows = site.services.store.read_events(site.account.id, AUDIT, 0, 0, None, 1000)
    recorded = [orjson.loads(body) for _, body, _ in rows if is_alert_event(orjson.loads(body))]
    assert recorded == []
    statuses = {d.rule_id: d.status for d in site.services.store.list_deliveries(site.account.id)}
    assert statuses == {"deleted": "cancelled", "edited": "cancelled"}


def test_a_new_threshold_rule_counts_only_events_stored_after_it(site: Site) -> None:
    """A threshold rule counts the events stored after it was created (or its match changed),
    whenever the state was last saved: the events the state had not saved yet are evaluated again
    to rebuild it after a rule change, and the new rule counted them (2 failures before it, 1
    after: fired, or not if the state happened to be saved between)."""
    site.restart()  # the state is saved
    site.write(SIGNIN, now_failed(site, 2))  # before the rule; the state is not saved yet (2 s)
    site.rule(id="three", name="Three", source="signinattempts", match={"category": "credentials_failed"},
              threshold={"count": 3, "window": "10m", "group_by": ["target_user.email"]})  # fmt: skip
    site.write(SIGNIN, now_failed(site, 1, offset=5))
    assert site.alerts("three") == []
    site.write(SIGNIN, now_failed(site, 2, offset=6))
    assert len(site.alerts("three")) == 1
    site.services.alerts.rules.set_enabled(CLI, site.account, "three", False)
    site.write(SIGNIN, now_failed(site, 1, offset=20))
    site.services.alerts.rules.set_enabled(CLI, site.account, "three", True)
    site.write(SIGNIN, now_failed(site, 2, offset=21))  # enabled again: the one while disabled is not counted
    assert len(site.alerts("three")) == 1
    site.write(SIGNIN, now_failed(site, 1, offset=22))
    assert len(site.alerts("three")) == 2


def test_an_event_dated_far_ahead_does_not_blind_its_group(site: Site) -> None:
    """One failed sign-in dated 2260 (timestamps up to 2262 are valid) made every later failure of
    that user a late event, dropped at once: brute force against them never fired again."""
    site.write(SIGNIN, [failed(parse_ns("2260-01-01T00:00:00Z"))])
    site.restart()  # its window saved and loaded again
    site.write(SIGNIN, now_failed(site, 10))
    [alert] = site.alerts("brute-force-signin")
    assert len(orjson.loads(alert.payload)["events"]) == 10 and alert.event_ts < parse_ns("2100-01-01T00:00:00Z")


def test_an_account_made_after_one_was_deleted_gets_alerts_of_its_own(site: Site) -> None:
    """SQLite gave a new account the id of the newest account deleted: its alerts (the payload
    sent to webhooks, Slack, syslog and the alerts API) named the deleted account, kept in memory
    by the evaluator by that id, instead of its own. Ids are no longer given again (SQLite
    0013_ids_never_reused), and the evaluator forgets a deleted account."""
    site.rule(id="m", name="M", source="signinattempts", match={"category": "credentials_failed"})
    site.write(SIGNIN, now_failed(site, 1))
    deleted = site.account
    site.services.delete_account(CLI, deleted, deleted.name)
    site.account = site.services.store.create_account(new_id(), "Beta", site.clock())
    assert site.account.id != deleted.id
    site.rule(id="m", name="M", source="signinattempts", match={"category": "credentials_failed"})
    site.write(SIGNIN, now_failed(site, 1))
    [alert] = site.alerts("m")
    assert orjson.loads(alert.payload)["account"] == {"uuid": site.account.uuid, "name": "Beta"}


def test_alerts_name_the_account_as_it_is_named_now(site: Site) -> None:
    """The evaluator kept the account's name from its first alert for as long as the server ran:
    after a rename (the admin API, or `siemgate account rename` in another process) alerts sent to
    webhooks, Slack and syslog still named the account by its old name."""
    site.rule(id="m", name="M", source="signinattempts", match={"category": "credentials_failed"})
    site.write(SIGNIN, now_failed(site, 1, "ada@example.com"))
    site.services.store.rename_account(site.account.id, "Acme Renamed")  # as another process does
    site.write(SIGNIN, now_failed(site, 1, "bob@example.com", offset=1))
    names = [orjson.loads(a.payload)["account"]["name"] for a in site.alerts("m")]
    assert sorted(names) == ["Acme", "Acme Renamed"]


def test_a_cancelled_delivery_cannot_be_retried(site: Site) -> None:
    """Deleting a rule cancels its pending deliveries; retrying one made it pending again, so the
    dispatcher sent the alert to the destination the account had removed with the rule."""
    site.rule(id="hooked", name="Hooked", source="signinattempts", match={"category": "credentials_failed"},
              actions=[{"type": "syslog", "host": "127.0.0.1", "port": free_port(), "protocol": "udp"}])  # fmt: skip
    site.write(SIGNIN, now_failed(site, 1))
    site.services.alerts.rules.delete(CLI, site.account, "hooked")
    [delivery] = [d for d in site.services.store.list_deliveries(site.account.id) if d.rule_id == "hooked"]
    assert delivery.status == "cancelled"
    with pytest.raises(BadRequest, match="cancelled"):
        site.services.alerts.retry(CLI, site.account, delivery.id)
    assert site.services.store.get_delivery(delivery.id).status == "cancelled"


def test_a_delivery_under_way_is_not_retried_into_a_second_attempt(site: Site) -> None:
    """Retrying a pending delivery while the dispatcher was attempting it made it due again: the
    next pump sent the alert a second time while the first attempt was still under way."""
    arrived, release, attempts = threading.Event(), threading.Event(), []

    def answer(handler: Any) -> None:
        attempts.append(handler.path)
        arrived.set()
        release.wait(10)
        handler.send_response(200)
        handler.end_headers()

    with misbehaving(answer) as url:
        mfa_rule(site, {"type": "webhook", "url": f"{url}/hook", "secret": "whsec_" + "A" * 40})
        fire(site)
        dispatcher = site.services.alerts.dispatcher
        [first] = dispatcher.pump()
        assert arrived.wait(10)
        [d] = deliveries(site)
        with pytest.raises(Conflict, match="is pending"):
            site.services.alerts.retry(CLI, site.account, d.id)
        assert dispatcher.pump() == []  # still leased to the attempt under way
        release.set()
        assert first.result(10) == "delivered"
    assert len(attempts) == 1 and deliveries(site)[0].status == "delivered"
