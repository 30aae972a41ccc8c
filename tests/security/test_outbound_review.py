"""Adversarial review of alert destinations: what a hostile destination answers cannot break the
delivery's bookkeeping or bounds."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from siemgate.alerts.model import parse_rule
from siemgate.outbound import OutboundPolicy, OutboundRefused
from siemgate.store.base import AlertRuleRecord
from support.admin import Site as AdminSite
from support.admin import error_message
from support.receivers import misbehaving, trickle
from support.resolver import hung_resolver
from support.waiting import wait_for

from .test_alert_bounds import Site


@pytest.mark.parametrize("retry_after", ["inf", "1e999", "nan", "-5"])
def test_a_retry_after_that_is_not_a_finite_number_is_ignored(tmp_path: Path, retry_after: str) -> None:
    """A webhook answering 503 with `Retry-After: inf` raised OverflowError while the retry was
    scheduled: the attempt was never recorded, so the delivery stayed claimed, was sent again
    after every lease and never counted towards max_attempts. Now such a value is ignored."""

    def unavailable(handler: Any) -> None:
        handler.send_response(503)
        handler.send_header("retry-after", retry_after)
        handler.send_header("content-length", "0")
        handler.end_headers()

    with misbehaving(unavailable) as url:
        site = Site(tmp_path / "d", outbound_allow=["127.0.0.0/8"], alerts_max_attempts=2)
        try:
            site.hook_rule_stored_directly([{"type": "slack", "url": f"{url}/hook"}])
            [delivery] = site.fire()
            assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 1, "HTTP 503")
            assert delivery.next_attempt_at is not None and delivery.next_attempt_at > site.clock()
        finally:
            site.services.close()


LONG_LABEL = "a" * 70 + ".example"


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ({"type": "slack", "url": "http://[::1"}, "url"),
        ({"type": "webhook", "url": "http://bad\u2028host.example/x", "secret": "whsec_" + "A" * 40}, "url"),
        ({"type": "slack", "url": "https://hooks.example:99999/x"}, "url"),
        ({"type": "slack", "url": f"https://{LONG_LABEL}/x"}, "url"),
        ({"type": "syslog", "host": LONG_LABEL, "protocol": "tcp"}, "host"),
    ],
)
def test_a_destination_that_does_not_parse_is_a_400_naming_the_field(
    make_server: Any, action: dict[str, Any], field: str
) -> None:
    """A webhook URL such as `http://[::1` passed the model's `^https?://` pattern and raised
    httpx.InvalidURL when its host was checked: a 500 for the administrator saving the rule. A
    port over 65535 or a host label over 63 characters was saved and failed every delivery with
    an unexpected error (retried, with a traceback in the log). Now each is a 400 naming the field."""
    site = AdminSite(make_server())
    body = {"id": "hook", "name": "Hook", "source": "auditevents", "match": {"action": "disblmfa"}, "actions": [action]}
    message = error_message(site.call(site.admin, "POST", site.path("/alert-rules"), json=body), 400)
    assert field in message and ("not a valid URL" in message or "is not a host name" in message), message


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port on 127.0.0.1 whose accept queue is full: a connection to it waits until its timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    wait_for("the accept queue to fill", lambda: all(select.select([], [f], [], 0)[1] for f in fillers[:1]), timeout=5)
    yield port
    for sock in (*fillers, listener):
        sock.close()


def test_a_syslog_delivery_ends_within_its_timeout_however_many_addresses_its_host_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, full_backlog: int
) -> None:
    """Each address of a syslog host was given the whole timeout: a name a tenant points at many
    addresses that do not answer held a delivery worker for addresses times the timeout (past its lease,
    when it is sent again). Now every address, TLS and sending share the action's timeout."""
    real = socket.getaddrinfo

    def many(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "many.example":
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", full_backlog))] * 20

    monkeypatch.setattr(socket, "getaddrinfo", many)
    site = Site(tmp_path / "d", outbound_allow=["many.example"], alerts_max_attempts=1)
    try:
        site.hook_rule_stored_directly(
            [{"type": "syslog", "host": "many.example", "port": 514, "protocol": "tcp", "timeout": 0.5}]
        )
        started = time.monotonic()
        [delivery] = site.fire()
        took = time.monotonic() - started
        assert delivery.status == "failed" and "timed out" in delivery.last_error, delivery
        assert took < 0.5 + 4.0, took  # 20 addresses of 0.5 s each took 10 s before
    finally:
        site.services.close()


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",
        "0x7f.1",
        "017700000001",
        "127.1",
        "0x7f000001",
        "0",
        "0xa9fea9fe",
        "[2002:a9fe:a9fe::1]",
        "[2002:7f00:1::]",
    ],
)
def test_ip_literals_in_every_form_the_resolver_reads_are_refused_when_saved(make_server: Any, host: str) -> None:
    """The resolver reads `2130706433`, `0x7f.1` and `127.1` as 127.0.0.1 (and `0xa9fea9fe`
    as 169.254.169.254): IP literals, which docs/alerts.md says are refused when a rule is saved.
    They were saved (and only refused at each delivery); now the save is a 400 as for 127.0.0.1.
    So are 6to4 addresses (2002::/16) carrying them, which a 6to4 relay delivers to (Python 3.11
    counts 2002::/16 as global, so they were allowed even at delivery)."""
    site = AdminSite(make_server())
    body = {"id": "hook", "name": "Hook", "source": "auditevents", "match": {"action": "disblmfa"},
            "actions": [{"type": "slack", "url": f"http://{host}:8080/x"}]}  # fmt: skip
    message = error_message(site.call(site.admin, "POST", site.path("/alert-rules"), json=body), 400)
    assert "SIEMGATE_OUTBOUND_ALLOW" in message, message


@pytest.mark.parametrize(
    "action",
    [
        {"type": "email", "to": ["secops@acme.example\r\nBcc: someone@elsewhere.example"]},
        {"type": "email", "to": ["not an address"]},
        {"type": "email", "to": ["secops@acme.example"], "subject": "Alert\r\nBcc: someone@elsewhere.example"},
    ],
)
def test_an_email_action_with_a_header_break_or_no_address_is_a_400(make_server: Any, action: dict[str, Any]) -> None:
    """A recipient or subject holding a line break (a header injection attempt), or a recipient
    that is no address, was saved; the email library then refused the header at every delivery,
    which failed as an "unexpected error", retried with a traceback in the log. Now it is a 400."""
    site = AdminSite(make_server())
    body = {"id": "mail", "name": "Mail", "source": "auditevents", "match": {"action": "disblmfa"}, "actions": [action]}
    message = error_message(site.call(site.admin, "POST", site.path("/alert-rules"), json=body), 400)
    assert "not an email address" in message or "cannot hold line breaks" in message, message


def test_rules_saved_before_destinations_were_checked_keep_loading(tmp_path: Path) -> None:
    """The new checks of URLs, hosts and email actions apply to rules being saved: a rule stored by
    an earlier version with such a destination still loads (the account's other rules keep
    running), and its delivery fails at once with the reason instead of an unexpected error."""
    site = Site(tmp_path / "d")
    try:
        good = parse_rule(
            {"id": "mfa-off", "name": "MFA off", "source": "auditevents", "match": {"action": "disblmfa"},
             "actions": [{"type": "slack", "url": "https://hooks.example/x"},
                         {"type": "email", "to": ["secops@acme.example"]}]}
        )  # fmt: skip
        stored = good.model_dump_json(by_alias=True)
        stored = stored.replace("https://hooks.example/x", "http://[::1").replace(
            "secops@acme.example", "not an address"
        )
        now = site.clock()
        site.services.store.put_alert_rule(AlertRuleRecord(site.account.id, "mfa-off", stored, "api", True, now, now))
        site.services.alerts.rules.invalidate(site.account.id)
        loaded = site.services.alerts.rules.get(site.account.id, "mfa-off").rule.actions[0]
        assert getattr(loaded, "url", None) == "http://[::1"
        slack = next(d for d in site.fire() if d.kind == "slack")
        assert slack.status == "failed" and "is not a valid URL" in slack.last_error, slack
    finally:
        site.services.close()


@pytest.mark.parametrize(("address", "kind"), [("2002:a9fe:a9fe::1", "link-local"), ("2002:7f00:1::1", "loopback")])
def test_6to4_addresses_carrying_refused_ipv4_addresses_are_refused_at_delivery(address: str, kind: str) -> None:
    """What a name resolves to is judged the same way: a 6to4 address is judged by the IPv4
    address it carries (169.254.169.254, 127.0.0.1), as mapped ones are."""
    with pytest.raises(OutboundRefused, match=f"is a {kind} address"):
        OutboundPolicy().resolve(address, 80, None)
    OutboundPolicy().resolve("2002:808:808::1", 80, None)  # carrying 8.8.8.8: allowed


@pytest.mark.parametrize(
    "action",
    [
        {"type": "webhook", "url": "https://hung.example/hook", "secret": "whsec_" + "A" * 40, "timeout": 0.5},
        {"type": "slack", "url": "https://hung.example/hook", "timeout": 0.5},
        {"type": "syslog", "host": "hung.example", "protocol": "udp", "timeout": 0.5},
        {"type": "syslog", "host": "hung.example", "protocol": "tls", "timeout": 0.5},
        {"type": "email", "to": ["soc@example.com"]},
    ],
    ids=["webhook", "slack", "syslog-udp", "syslog-tls", "email"],
)
def test_a_resolver_that_hangs_holds_a_delivery_no_longer_than_its_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: dict[str, Any]
) -> None:
    """Names were looked up with socket.getaddrinfo outside every timeout, so a resolver that does
    not answer (a tenant's name served by a DNS server that hangs) held a delivery worker until the
    resolver gave up, past the delivery's lease (when it is sent again). Now the lookup ends with
    the action's timeout (SMTP's for email)."""
    site = Site(tmp_path / "d", alerts_max_attempts=1, smtp_host="hung.example", smtp_timeout=0.5)
    try:
        with hung_resolver(monkeypatch):
            site.hook_rule_stored_directly([action])
            started = time.monotonic()
            [delivery] = site.fire()
            took = time.monotonic() - started
            assert delivery.status == "failed" and "did not resolve" in delivery.last_error, delivery
            assert took < 0.5 + 4.0, took  # the resolver hangs 30 s
    finally:
        site.services.close()


@pytest.mark.parametrize("kind", ["webhook", "slack"])
def test_a_destination_that_trickles_its_reply_holds_a_delivery_no_longer_than_its_timeout(
    tmp_path: Path, kind: str
) -> None:
    """Checked with the email fix (which had no such bound): an HTTP action's reply trickled a byte
    at a time, each byte well within the timeout, ends with the action's timeout."""
    site = Site(tmp_path / "d", alerts_max_attempts=1, outbound_allow=["127.0.0.0/8"])
    try:
        with misbehaving(trickle) as url:
            action = {"type": kind, "url": f"{url}/hook", "timeout": 0.5}
            if kind == "webhook":
                action["secret"] = "whsec_" + "A" * 40
            site.hook_rule_stored_directly([action])
            started = time.monotonic()
            [delivery] = site.fire()
            took = time.monotonic() - started
        assert delivery.status == "failed" and "timed out" in delivery.last_error, delivery
        assert took < 0.5 + 4.0, took  # the trickle alone lasts 30 s; the margin is for a loaded machine
    finally:
        site.services.close()
