"""Delivery that isolates destinations and tenants, against real local receivers: a tarpit that
accepts connections and never answers next to a healthy receiver, in two accounts; deleting a
rule or one of its actions cancels its pending deliveries; retries stay visible; what a stopped
process had taken goes out when its 75-second lease ends."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import orjson
import pytest

from siemgate.accounts.actor import CLI
from siemgate.alerts.dispatch import LEASE_NS
from siemgate.alerts.model import parse_rule
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from support.events import auditevent
from support.receivers import HttpReceiver, misbehaving
from support.waiting import wait_for

from .test_alerts_live import S, Site

TARPIT_TIMEOUT = 5.0  # each tarpitted delivery holds its slot this long (a healthy one takes milliseconds)


class Tarpit:
    """Accepts TCP connections and never answers (a hung destination)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.closed.set()
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def tarpit() -> Iterator[Tarpit]:
    t = Tarpit()
    yield t
    t.close()


@pytest.fixture
def healthy() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


def hook_rule(site: Site, account: Any, rule_id: str, urls: list[str], timeout: float = TARPIT_TIMEOUT) -> None:
    actions = [{"type": "slack", "url": url, "timeout": timeout} for url in urls]
    rule = parse_rule(
        {"id": rule_id, "name": rule_id, "source": "auditevents", "match": {"action": "disblmfa"}, "actions": actions}
    )
    site.services.alerts.rules.save(CLI, account, rule, "api")


def url_of(delivery: Any) -> str:
    return str(orjson.loads(delivery.action)["url"])


def hooks(site: Site) -> list[Any]:
    return [d for d in site.services.store.list_deliveries(site.account.id) if d.kind == "slack"]


def fire(site: Site, account: Any) -> None:
    site.services.writer.write(account.id, Feature.AUDITEVENTS, [auditevent(site.clock(), action="disblmfa")])


def test_a_hung_destination_delays_only_itself_and_never_another_account(
    site: Site, tarpit: Tarpit, healthy: HttpReceiver
) -> None:
    other = site.services.store.create_account(new_id(), "Globex", site.clock())
    hung = f"http://127.0.0.1:{tarpit.port}/hook"
    hook_rule(site, site.account, "noisy", [hung] * 6 + [f"{healthy.url}/acme"])
    hook_rule(site, other, "quiet", [f"{healthy.url}/globex"])
    fire(site, site.account)
    fire(site, other)
    started = time.monotonic()
    dispatcher = site.services.alerts.dispatcher
    runner = threading.Thread(target=dispatcher.run_due)
    runner.start()
    try:
        arrived = wait_for(
            "both healthy deliveries",
            lambda: {r["path"] for r in healthy.requests} >= {"/acme", "/globex"} and time.monotonic() - started,
            timeout=TARPIT_TIMEOUT / 2,
        )
        assert arrived < TARPIT_TIMEOUT / 2  # well before even one hung delivery gives up
    finally:
        runner.join(timeout=6 * TARPIT_TIMEOUT)
    mine = [d for d in site.services.store.list_deliveries(site.account.id) if d.rule_id == "noisy"]
    statuses = {url_of(d): d.status for d in mine}
    assert statuses[f"{healthy.url}/acme"] == "delivered" and statuses[hung] == "pending"  # to be retried
    [failed_attempt] = {d.last_error for d in mine if d.status == "pending"}
    assert "timed out" in failed_attempt


def test_deleting_a_rule_or_an_action_cancels_its_pending_deliveries(site: Site, healthy: HttpReceiver) -> None:
    keep, drop = f"{healthy.url}/keep", f"{healthy.url}/drop"
    hook_rule(site, site.account, "hooks", [keep, drop], timeout=5)
    fire(site, site.account)
    record = site.services.alerts.evaluator.record_pending  # the starter twin's alert events: the dispatch tick's job
    record(force=True)
    healthy.statuses = [503, 503]
    site.services.alerts.dispatcher.run_due()
    pending = [d for d in hooks(site) if d.status == "pending"]
    assert len(pending) == 2 and all(d.attempts == 1 and d.last_error == "HTTP 503" for d in pending)
    hook_rule(site, site.account, "hooks", [keep], timeout=5)  # one action removed
    site.clock.advance(3600)
    assert site.services.alerts.dispatcher.run_due() == 1
    by_url = {url_of(d): d for d in hooks(site)}
    assert by_url[keep].status == "delivered"
    assert (by_url[drop].status, by_url[drop].last_error) == (
        "cancelled",
        "cancelled: the rule or this action was deleted",
    )
    fire(site, site.account)
    record(force=True)
    healthy.statuses = [503]
    site.services.alerts.dispatcher.run_due()
    site.services.alerts.rules.delete(CLI, site.account, "hooks")
    site.clock.advance(3600)
    assert site.services.alerts.dispatcher.run_due() == 0
    assert next(d.status for d in hooks(site)) == "cancelled"
    paths = [r["path"] for r in healthy.requests]
    assert sorted(paths[:2]) == ["/drop", "/keep"] and paths[2:] == ["/keep", "/keep"]  # the first two at once


def test_deliveries_a_stopped_process_had_taken_go_out_when_their_short_lease_ends(
    site: Site, healthy: HttpReceiver
) -> None:
    hook_rule(site, site.account, "hooks", [f"{healthy.url}/hook"], timeout=5)
    fire(site, site.account)
    assert LEASE_NS == 75 * S  # longer than any action's timeout (60 s at most), as docs/alerts.md says
    now = site.clock()
    [taken] = site.services.store.claim_deliveries(now, now + LEASE_NS, 10)  # taken, then the process stops
    assert taken.kind == "slack"
    site.restart()
    assert site.services.alerts.dispatcher.run_due() == 0  # another process may still be sending it
    site.clock.advance(LEASE_NS // S - 1)
    assert site.services.alerts.dispatcher.run_due() == 0
    site.clock.advance(1)  # 75 s after it was taken (docs/alerts.md, "Actions")
    assert site.services.alerts.dispatcher.run_due() == 1
    assert [r["path"] for r in healthy.requests] == ["/hook"]
    assert [d.status for d in hooks(site)] == ["delivered"]


def flooding(status: int, sent: list[int], **headers: str) -> Any:
    """A destination's answer: `status`, then a body announced as 1 TiB, sent as fast as it is read
    (256 MiB at most); `sent[0]` counts the bytes that went out."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in (headers | {"Content-Length": str(1 << 40)}).items():
            handler.send_header(name, value)
        handler.end_headers()
        chunk = b"x" * 65536
        for _ in range(4096):  # or until the client hangs up
            handler.wfile.write(chunk)
            sent[0] += len(chunk)

    return answer


def test_a_destination_that_sends_without_end_is_read_no_further_than_its_status(site: Site) -> None:
    """Only a reply's status counts: a destination that answers 200 and then streams a body without
    end is delivered to at once, and the server stops reading (memory stays bounded)."""
    sent = [0]
    with misbehaving(flooding(200, sent)) as url:
        hook_rule(site, site.account, "flooded", [f"{url}/hook"], timeout=10)
        fire(site, site.account)
        assert _finishes(site.services.alerts.dispatcher.run_due, within=10)
    [delivery] = hooks(site)
    assert delivery.status == "delivered", delivery
    assert sent[0] < 64 << 20, sent  # the connection was closed after the status, not read to the end


def test_a_redirect_that_sends_without_end_is_read_no_further_than_a_reply_may_hold(site: Site) -> None:
    """httpx reads a redirect's body before following it: a destination answering 307 with a body
    without end makes the attempt fail once MAX_REPLY_BYTES have come, not fill the server's memory."""
    from siemgate.alerts.actions.base import MAX_REPLY_BYTES

    sent = [0]
    with misbehaving(flooding(307, sent, Location="/elsewhere")) as url:
        hook_rule(site, site.account, "redirected", [f"{url}/hook"], timeout=30)
        fire(site, site.account)
        assert _finishes(site.services.alerts.dispatcher.run_due, within=20)
    [delivery] = hooks(site)
    assert delivery.status == "pending" and "more than its reply may hold" in delivery.last_error, delivery
    assert sent[0] < 16 * MAX_REPLY_BYTES, sent


def test_a_destination_that_drips_its_reply_is_cut_off_at_the_actions_timeout(site: Site) -> None:
    """The action's timeout bounds the whole attempt, not each read: a destination sending one byte
    of its reply now and then (each read well within the timeout) holds the delivery no longer."""
    status_line = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Padding: " + b"." * 200

    def drip(handler: BaseHTTPRequestHandler) -> None:
        for byte in status_line:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.25)  # the hostile destination's pace (50 s in all), not test synchronisation

    with misbehaving(drip) as url:
        hook_rule(site, site.account, "dripped", [f"{url}/hook"], timeout=2)
        fire(site, site.account)
        assert _finishes(site.services.alerts.dispatcher.run_due, within=6)  # 2 s allowed, not the drip's 50
    [delivery] = hooks(site)
    assert delivery.status == "pending" and "timed out" in delivery.last_error, delivery  # retried later


def _finishes(job: Any, within: float) -> bool:
    """Whether `job` (run in a thread) returns within `within` seconds."""
    runner = threading.Thread(target=job, daemon=True)
    runner.start()
    runner.join(timeout=within)
    return not runner.is_alive()


def test_a_syslog_receiver_that_drips_its_tls_handshake_is_cut_off_at_the_actions_timeout(site: Site) -> None:
    """A TLS syslog receiver that sends its handshake a byte at a time (each read well within the
    timeout: a record header announcing 16 KiB, then its bytes slowly) holds the delivery no
    longer than the action's timeout (CPython bounds a handshake, sendall and unwrap as a whole
    by the socket's timeout; HTTP actions needed a deadline of their own, above)."""
    record = b"\x16\x03\x03\x40\x00" + b"\x02" * 200
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def drip() -> None:
        with contextlib.suppress(OSError):
            conn, _ = server.accept()
            held.append(conn)
            for byte in record:
                conn.sendall(bytes([byte]))
                time.sleep(0.25)  # the hostile receiver's pace (50 s in all), not test synchronisation

    threading.Thread(target=drip, daemon=True).start()
    try:
        action = {"type": "syslog", "host": "127.0.0.1", "port": server.getsockname()[1], "protocol": "tls",
                  "timeout": 2}  # fmt: skip
        rule = {"id": "slow-tls", "name": "S", "source": "auditevents", "match": {"action": "disblmfa"}}
        site.services.alerts.rules.save(CLI, site.account, parse_rule({**rule, "actions": [action]}), "api")
        fire(site, site.account)
        assert _finishes(site.services.alerts.dispatcher.run_due, within=6)  # 2 s allowed, not the drip's 50
    finally:
        server.close()
        for conn in held:
            conn.close()
    [delivery] = [d for d in site.services.store.list_deliveries(site.account.id) if d.kind == "syslog"]
    assert delivery.status == "pending" and "timed out" in delivery.last_error, delivery  # retried later
