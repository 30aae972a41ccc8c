"""The forwarder against a source that refuses, sheds load, restarts or misbehaves: a real siemgate
server over HTTP, behind a proxy (tests/support/proxies.py) where a load balancer would be."""

from __future__ import annotations

import itertools
import logging
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest

from siemgate.forward.client import EventsClient
from siemgate.forward.config import parse_config
from siemgate.forward.errors import SourceError
from siemgate.forward.runner import Forwarder
from siemgate.model.features import ALL_FEATURES, Feature
from support.events import MAKERS
from support.proxies import HTML_502, Answer, proxy_to
from support.waiting import wait_for

from .forward_support import (
    BATCH,
    FAST,
    LIMIT,
    config,
    fill,
    jsonl,
    run_in_thread,
    run_once,
    sample,
    start,
    write_config,
)


def file_sink(tmp_path: Path) -> dict[str, Any]:
    return {"type": "file", "path": str(tmp_path / "out" / "{feature}.jsonl"), "linger": 0.01}


def delivered(tmp_path: Path, feature: str = "signinattempts") -> list[str]:
    return [e["uuid"] for e in jsonl(tmp_path / "out" / f"{feature}.jsonl")]


TOO_MANY = b'{"Error":{"Message":"Too Many Requests"}}'


def refuse_pages(status: int, retry_after: str | None, pages: range) -> Any:
    """A plan refusing the page requests numbered `pages` (from 1) with `status` and `retry_after`."""
    count = {"n": 0}
    headers = {"content-type": "application/json"} | ({"Retry-After": retry_after} if retry_after is not None else {})

    def plan(path: str, body: bytes) -> Answer | None:
        if path.startswith("/api/v2/"):
            count["n"] += 1
            if count["n"] in pages:
                return Answer(status, headers, TOO_MANY)
        return None

    return plan


def source_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and r.getMessage().startswith("source src:")]


@pytest.mark.parametrize("status", [429, 503])
def test_a_source_shedding_load_is_waited_for_as_it_asks_and_said_once(
    source: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    """Before: every retry logged a WARNING of its own (4 refusals, 4 lines; a source throttling
    for an hour at Retry-After: 1 wrote 3600). Now: one WARNING when the source starts refusing,
    one INFO when it answers again, and the metric counts every retry; each wait is at least the
    Retry-After, and every event is delivered once."""
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 120)
    with proxy_to(source.url) as proxy:
        proxy.plan = refuse_pages(status, "1", range(2, 6))
        cfg = config(tmp_path / "state", proxy.url, {"out": file_sink(tmp_path)}, features=["signinattempts"], limit=50)
        with caplog.at_level(logging.DEBUG, logger="siemgate.forward"):
            forwarder = run_once(cfg)
    assert forwarder.code == 0
    assert delivered(tmp_path) == uuids
    pages = [s for s in proxy.seen if s.path.startswith("/api/v2/")]
    waits = [after.at - before.at for before, after in itertools.pairwise(pages) if before.status != 200]
    assert len(waits) == 4 and min(waits) >= 1.0, waits
    assert sample(forwarder, "siemgate_forward_source_retries_total", source="src") == 4
    warnings = source_lines(caplog, logging.WARNING)
    assert len(warnings) == 1 and f"HTTP {status}" in warnings[0], warnings
    assert len(source_lines(caplog, logging.DEBUG)) == 3
    recovered = [line for line in source_lines(caplog, logging.INFO) if "answered" in line]
    assert recovered == ["source src: signinattempts answered after 4 retries"], recovered


@pytest.mark.parametrize("retry_after", ["99999999", "1e999", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_huge_retry_after_is_waited_at_most_five_minutes_and_a_stop_ends_the_wait(
    source: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, retry_after: str
) -> None:
    """A Retry-After of years is taken as 5 minutes (then the source is asked again); while the
    forwarder waits, /readyz names the source; a stop ends the wait at once, with what was
    delivered committed (a second run delivers the rest, nothing twice)."""
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 120)
    state = tmp_path / "state"
    with proxy_to(source.url) as proxy:
        proxy.plan = refuse_pages(429, retry_after, range(2, 1000))
        forwarder = Forwarder(
            config(state, proxy.url, {"out": file_sink(tmp_path)}, features=["signinattempts"], limit=50)
        )
        with caplog.at_level(logging.WARNING, logger="siemgate.forward"):
            thread = run_in_thread(forwarder)
            try:
                wait_for("the source to refuse", lambda: forwarder.problems())
                assert forwarder.problems() == ["src: signinattempts: HTTP 429 Too Many Requests (retrying)"]
                assert "retrying in 300.0s" in " ".join(source_lines(caplog, logging.WARNING))
            finally:
                stopped_at = time.monotonic()
                forwarder.stop.set()
                thread.join(30)
        assert not thread.is_alive() and time.monotonic() - stopped_at < 10
        assert delivered(tmp_path) == uuids[:50]
        proxy.plan = lambda path, body: None
        assert run_once(forwarder.config).code == 0
    assert delivered(tmp_path) == uuids


@pytest.mark.parametrize("retry_after", ["-5", "soon", "nan", "Thu, 01 Jan 1970 00:00:00 GMT", "5, 5", ""])
def test_a_retry_after_in_the_past_or_unreadable_backs_off_as_if_absent(
    source: Any, tmp_path: Path, retry_after: str
) -> None:
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 120)
    with proxy_to(source.url) as proxy:
        proxy.plan = refuse_pages(429, retry_after, range(2, 5))
        cfg = config(tmp_path / "state", proxy.url, {"out": file_sink(tmp_path)}, features=["signinattempts"], limit=50)
        forwarder = run_once(cfg)
        assert len(proxy.refused("/api/v2/")) == 3
    assert forwarder.code == 0 and delivered(tmp_path) == uuids
    assert sample(forwarder, "siemgate_forward_source_retries_total", source="src") == 3


def test_a_token_revoked_mid_run_stops_its_source_once_and_the_others_go_on(
    source: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revoked source's streams stop at their first 401 (one request each, never retried), say
    what to do, and the other source keeps delivering."""
    other = source.live.account()
    other_key = source.live.ingest_key(other)
    monkeypatch.setenv("FORWARD_OTHER_TOKEN", source.live.token(other))
    first = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 30)
    kept = fill(source.live, other_key, Feature.SIGNINATTEMPTS, 30)
    features = ["signinattempts", "itemusages"]
    with proxy_to(source.url) as proxy:
        cfg = two_sources(tmp_path, {"revoked": proxy.url, "kept": source.url}, features=features)
        forwarder = Forwarder(cfg)
        thread = run_in_thread(forwarder)
        try:
            wait_for("the first events", lambda: uuids_in(tmp_path / "a") == first)
            source.live.store.revoke_token(token_id(source.token), source.live.clock())
            before = len(proxy.seen)
            fill(source.live, source.key, Feature.SIGNINATTEMPTS, 10)
            kept += fill(source.live, other_key, Feature.SIGNINATTEMPTS, 10)
            wait_for("both revoked streams to stop", lambda: len(forwarder.problems()) == 2)
            # many poll intervals later, the other source delivered what came since
            kept += fill(source.live, other_key, Feature.SIGNINATTEMPTS, 10)
            wait_for("the other source", lambda: uuids_in(tmp_path / "b") == kept)
            for feature in features:  # one 401 each, and nothing asked after it (requests in flight may end first)
                asked = [s.status for s in proxy.seen[before:] if s.path == f"/api/v2/{feature}"]
                assert asked.count(401) == 1 and asked[-1] == 401, (feature, asked)
            assert thread.is_alive()
        finally:
            forwarder.stop.set()
            thread.join(30)
    assert uuids_in(tmp_path / "a") == first
    for problem in forwarder.problems():
        assert problem.startswith("revoked/") and "refused the token (401" in problem and "issue a new token" in problem


def two_sources(tmp_path: Path, urls: dict[str, str], features: list[str] | None = None, **settings: Any) -> Any:
    """Two sources (the first with $FORWARD_TEST_TOKEN, the second $FORWARD_OTHER_TOKEN), each
    into its file sink, `a` and `b` under tmp_path; `settings` go to [forwarder]."""
    first, second = urls
    chosen = {} if features is None else {"features": features}
    token = {first: "FORWARD_TEST_TOKEN", second: "FORWARD_OTHER_TOKEN"}
    sink = {first: "a", second: "b"}
    return parse_config(
        {
            "forwarder": {"state_dir": str(tmp_path / "state"), "poll_interval": 0.05, **FAST, **settings},
            "sources": {
                name: {"url": url, "token": {"env": token[name]}, "sinks": [sink[name]], **chosen}
                for name, url in urls.items()
            },
            "sinks": {name: {"type": "file", "path": str(tmp_path / name / "{feature}.jsonl")} for name in ("a", "b")},
        }
    )


def uuids_in(out: Path) -> list[str]:
    return [e["uuid"] for e in jsonl(out / "signinattempts.jsonl")]


def token_id(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


def test_a_proxy_answering_html_then_a_server_refusing_connections_is_retried_without_loss(
    source: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the warning carried the whole HTML page, line breaks included (in a text log, a
    source could write lines that look like the forwarder's own). Now: its title, on one line."""
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 120)
    with proxy_to(source.url) as proxy:
        count = {"n": 0}

        def plan(path: str, body: bytes) -> Answer | None:
            if path.startswith("/api/v2/"):
                count["n"] += 1
                if 2 <= count["n"] <= 4:
                    return HTML_502
            return None

        proxy.plan = plan
        forwarder = Forwarder(
            config(tmp_path / "state", proxy.url, {"out": file_sink(tmp_path)}, features=["signinattempts"], limit=50)
        )
        with caplog.at_level(logging.WARNING, logger="siemgate.forward"):
            thread = run_in_thread(forwarder)
            try:
                wait_for("the first events", lambda: delivered(tmp_path) == uuids)
                proxy.down()
                uuids += fill(source.live, source.key, Feature.SIGNINATTEMPTS, 60)
                retried = sample(forwarder, "siemgate_forward_source_retries_total", source="src")
                wait_for(
                    "connections to be refused",
                    lambda: sample(forwarder, "siemgate_forward_source_retries_total", source="src") >= retried + 3,
                )
                proxy.up()
                wait_for("the events since", lambda: delivered(tmp_path) == uuids)
            finally:
                forwarder.stop.set()
                thread.join(30)
    assert delivered(tmp_path) == uuids
    warned = source_lines(caplog, logging.WARNING)
    assert len(warned) == 2 and "cannot reach" in warned[1], warned
    # The page's title, on one line: a source's text never starts a line of its own in a text log.
    assert warned[0].startswith("source src: signinattempts: HTTP 502 502 Bad Gateway; retrying in"), warned[0]


def test_what_a_source_says_reaches_a_message_on_one_printable_line(source: Any) -> None:
    said = b'{"Error":{"Message":"down\\n2026-12-08 INFO all fine\\u001b[2J"}}'
    with proxy_to(source.url) as proxy:
        proxy.plan = lambda path, body: Answer(503, {"content-type": "application/json"}, said)
        with EventsClient(source.token, proxy.url, max_attempts=1) as client, pytest.raises(SourceError) as refused:
            client.reset_page(Feature.SIGNINATTEMPTS)
    assert refused.value.message.startswith("signinattempts: HTTP 503 down 2026-12-08 INFO all fine [2J; gave up")


def run_until_delivered(cfg: Any, uuids: list[str], tmp_path: Path) -> Forwarder:
    """Run a forwarder until `uuids` were delivered (or more: wait_for fails then), then stop it."""
    forwarder = Forwarder(cfg)
    thread = run_in_thread(forwarder)
    try:
        wait_for("every event", lambda: len(delivered(tmp_path)) >= len(uuids) or forwarder.problems())
    finally:
        forwarder.stop.set()
        thread.join(30)
    assert not thread.is_alive() and not forwarder.problems(), forwarder.problems()
    return forwarder


def bend_cursors(where: str) -> tuple[Any, dict[str, int]]:
    """A rewrite that, from the third page on, answers a page with the cursor it was asked with
    (`same`: five times) or with the first page's cursor (`back`: once); and its count."""
    answered: list[str] = []  # the cursors of the pages, as the server answered them
    bent = {"n": 0}

    def rewrite(path: str, body: bytes, reply: bytes) -> bytes:
        if not path.startswith("/api/v2/"):
            return reply
        request, page = orjson.loads(body), orjson.loads(reply)
        answered.append(page["cursor"])
        if len(answered) >= 3 and page["items"] and bent["n"] < 5:
            page["cursor"] = request["cursor"] if where == "same" else answered[0]
            bent["n"] += 1 if where == "same" else 5
        return orjson.dumps(page)

    return rewrite, bent


@pytest.mark.parametrize("where", ["same", "back"])
def test_a_source_whose_cursor_repeats_or_goes_back_delivers_no_event_twice(
    source: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    """Before: a page answered with the cursor it was asked with (and has_more) was fetched and
    delivered again and again: 550 lines written for 120 events within a second, and never an end.
    Now: events a stream fetched lately (by uuid) are dropped when served again, a page of nothing
    new counts as the head of the stream (polled again after poll_interval, not at once), and it
    is said once."""
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 200)
    rewrite, bent = bend_cursors(where)
    with proxy_to(source.url) as proxy:
        proxy.rewrite = rewrite
        # (with log fields, siemgate itself refuses to prove a page whose cursor went back: next test)
        cfg = config(
            tmp_path / "state",
            proxy.url,
            {"out": file_sink(tmp_path)},
            features=["signinattempts"],
            limit=50,
            log_fields=False,
        )
        with caplog.at_level(logging.WARNING, logger="siemgate.forward"):
            forwarder = run_until_delivered(cfg, uuids, tmp_path)
    assert delivered(tmp_path) == uuids
    assert bent["n"] == 5
    repeated = sample(forwarder, "siemgate_forward_repeated_events_total", source="src", feature="signinattempts")
    assert repeated == (250 if where == "same" else 100)
    warned = [r.getMessage() for r in caplog.records if "again that this stream" in r.getMessage()]
    assert len(warned) == 1, warned


def test_a_uuid_the_source_stored_again_at_another_time_is_a_new_event(source: Any, tmp_path: Path) -> None:
    """siemgate stores a uuid sent again with another timestamp as another event (docs/events.md,
    "Duplicates"), and serves both. Before: the forwarder took the second for one served again and
    left it out (2 of 3 events delivered, the third counted as repeated). Now an event is "the
    same" by uuid and timestamp, as the source's store says."""
    now = time.time_ns()
    first, second = (MAKERS[Feature.SIGNINATTEMPTS](now - n * 1_000_000) for n in (3, 2))
    again = first | {"timestamp": MAKERS[Feature.SIGNINATTEMPTS](now - 1_000_000)["timestamp"]}
    for event in (first, second, again):  # one request each: the third reaches another page too
        reply = source.live.ingest(source.key, Feature.SIGNINATTEMPTS, [event])
        assert reply.status_code == 200 and reply.json()["stored"] == 1, reply.text
    for limit in (1, 50):  # the same uuid on another page, and on the same page
        state = tmp_path / f"limit-{limit}"
        sinks = {"out": {"type": "file", "path": str(state / "{feature}.jsonl"), "linger": 0.01}}
        forwarder = run_once(config(state, source.url, sinks, features=["signinattempts"], limit=limit))
        assert forwarder.code == 0, forwarder.problems()
        served = [(e["uuid"], e["timestamp"]) for e in jsonl(state / "signinattempts.jsonl")]
        assert served == [(e["uuid"], e["timestamp"]) for e in (first, second, again)], served
        repeated = sample(forwarder, "siemgate_forward_repeated_events_total", source="src", feature="signinattempts")
        assert not repeated


def test_a_page_siemgate_refuses_to_prove_stops_its_stream_saying_so(source: Any, tmp_path: Path) -> None:
    """Before: the page proof's 400 said "refused the reset request; check start_time and limit"."""
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 200)
    rewrite, _ = bend_cursors("back")
    with proxy_to(source.url) as proxy:
        proxy.rewrite = rewrite
        cfg = config(tmp_path / "state", proxy.url, {"out": file_sink(tmp_path)}, features=["signinattempts"], limit=50)
        forwarder = run_once(cfg)
    assert forwarder.code == 1 and delivered(tmp_path) == uuids[:100]
    assert forwarder.problems() == [
        "src/signinattempts: signinattempts page proof: the server refused to prove the page it served (400 Bad"
        " Request: response_cursor is before the request's cursor): the page and the server's log disagree (a"
        " proxy between changed it, or the server is broken), so it is not delivered. Tell the server's"
        " operator; the source's log_fields = false forwards without proofs"
    ]


def test_the_client_drops_events_served_again_and_stops_at_a_page_of_nothing_new(source: Any) -> None:
    """The library's pages() too: a source answering its last page again and again (with has_more)
    ends the iteration (the head) rather than yield it, or spin, for ever."""
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 30)
    with proxy_to(source.url) as proxy, EventsClient(source.token, proxy.url) as client:
        first = client.reset_page(Feature.SIGNINATTEMPTS, start_time="2020-01-01T00:00:00Z", limit=10)

        def rewrite(path: str, body: bytes, reply: bytes) -> bytes:
            cursor = orjson.loads(body).get("cursor")  # every page after a reset: the first one again
            return reply if cursor is None else orjson.dumps({"items": first.items, "cursor": cursor, "has_more": True})

        proxy.rewrite = rewrite
        stream = client.stream(Feature.SIGNINATTEMPTS, start_time="2020-01-01T00:00:00Z", limit=10)
        pages = list(itertools.islice(stream.pages(), 5))
    assert [e["uuid"] for p in pages for e in p.items] == uuids[:10]
    assert len(pages) == 1


def test_a_server_whose_redis_is_down_is_waited_for_as_its_503_asks(
    make_server: Any, private_redis: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """siemgate's own refusal while the Redis of its shared limits is down: 503 with Retry-After: 5,
    waited at least 5 s each time; once Redis is back every event is delivered once."""
    live = make_server(redis_url=private_redis.url)
    account = live.account()
    monkeypatch.setenv("FORWARD_TEST_TOKEN", live.token(account))
    uuids = fill(live, live.ingest_key(account), Feature.SIGNINATTEMPTS, 120)
    with proxy_to(live.base_url) as proxy:  # only to watch the requests
        forwarder = Forwarder(
            config(tmp_path / "state", proxy.url, {"out": file_sink(tmp_path)}, features=["signinattempts"], limit=50)
        )
        private_redis.stop()
        thread = run_in_thread(forwarder)
        try:
            wait_for("two refusals", lambda: len(proxy.refused("/api/v2/")) >= 2, timeout=30)
            private_redis.start()
            wait_for("every event", lambda: delivered(tmp_path) == uuids, timeout=30)
        finally:
            forwarder.stop.set()
            thread.join(30)
    refused = proxy.refused("/api/v2/")
    assert {s.status for s in refused} == {503}
    for refusal in refused:
        following = next(s for s in proxy.seen if s.at > refusal.at)
        assert following.at - refusal.at >= 5.0
    assert delivered(tmp_path) == uuids


def test_killed_at_random_points_while_the_source_throttles_then_restarted(
    source: Any, make_server: Any, tmp_path: Path
) -> None:
    """kill -9 at random points while the source answers a third of the page requests with 429
    (Retry-After: 1) or a proxy's 502: every event reaches the file sink at least once (duplicates
    only from pages not yet acknowledged) and the siemgate mirror exactly once (it drops a uuid it
    holds); then a SIGTERM in the middle of a long Retry-After ends the process at once, cleanly."""
    rng = random.Random(7)
    out, state, log = tmp_path / "out", tmp_path / "state", tmp_path / "forward.log"
    mirror = make_server()
    local = mirror.account("Mirror")
    data_dir = mirror.services.settings.data_dir
    expected = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 1500)
    expected += fill(source.live, source.key, Feature.ITEMUSAGES, 500)
    procs: list[subprocess.Popen[bytes]] = []

    def throttle(path: str, body: bytes) -> Answer | None:
        if path.startswith("/api/v2/") and rng.random() < 0.33:
            return HTML_502 if rng.random() < 0.3 else Answer(429, {"Retry-After": "1"}, TOO_MANY)
        return None

    def files() -> list[str]:
        return [e["uuid"] for f in ("signinattempts", "itemusages") for e in jsonl(out / f"{f}.jsonl")]

    def written(target: int, proc: subprocess.Popen[bytes]) -> Any:
        # or kill once everything is there: a kill while idle counts too
        return lambda: len(files()) >= target or set(expected) <= set(files()) or proc.poll() is not None

    with proxy_to(source.url) as proxy:
        proxy.plan = throttle
        extra = f'[sinks.extra]\ntype = "siemgate"\naccount = "{local.uuid}"\ndata_dir = "{data_dir}"\n'
        toml = write_config(tmp_path / "forward.toml", proxy.url, state, out, extra_sink=extra)
        kills = 0
        try:
            for round_ in range(4):
                proc = start(toml, log=log)
                procs.append(proc)
                target = len(files()) + rng.randrange(50, 500)
                wait_for(f"round {round_}: {target} events written", written(target, proc), timeout=90)
                assert proc.poll() is None, log.read_text()
                proc.kill()
                proc.wait(10)
                kills += 1
                expected += fill(source.live, source.key, Feature.ITEMUSAGES, rng.randrange(0, 200))
            # a stop while waiting out a Retry-After of an hour: at once, exit 0
            proc = start(toml, log=log)
            procs.append(proc)
            refused = len(proxy.refused("/api/v2/"))
            proxy.plan = lambda path, body: Answer(429, {"Retry-After": "3600"}, TOO_MANY)
            wait_for("a refusal", lambda: len(proxy.refused("/api/v2/")) > refused or proc.poll() is not None)
            stopped_at = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0 and time.monotonic() - stopped_at < 15, log.read_text()
            proxy.plan = throttle
            final = start(toml, "--once", log=log)
            procs.append(final)
            assert final.wait(120) == 0, log.read_text()
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
    got = files()
    assert set(got) == set(expected)  # never a gap
    assert len(got) - len(set(got)) <= kills * 2 * (LIMIT + BATCH)
    token = mirror.token(local, ALL_FEATURES)
    mirrored = []
    for feature in (Feature.SIGNINATTEMPTS, Feature.ITEMUSAGES):
        first = mirror.page(token, feature, {"limit": 1000, "start_time": "2020-01-01T00:00:00Z"}).json()
        rest, _ = mirror.drain(token, feature, first["cursor"]) if first["has_more"] else ([], None)
        mirrored += [e["uuid"] for e in first["items"] + rest]
    assert sorted(mirrored) == sorted(expected)  # exactly once


def test_a_source_down_at_start_holds_neither_the_other_sources_nor_the_health_server(
    source: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source without `features` asks its token's introspection first. Before: that request was
    retried, until the source answered, before any other source started or /metrics and /healthz
    listened (a source down at start held every other one, with nothing saying why). Now each
    source starts on its own: the others deliver, /readyz names the one still being retried."""
    other = source.live.account()
    monkeypatch.setenv("FORWARD_OTHER_TOKEN", source.live.token(other))
    kept = fill(source.live, source.live.ingest_key(other), Feature.SIGNINATTEMPTS, 30)
    with proxy_to(source.url) as proxy:
        proxy.down()
        cfg = two_sources(tmp_path, {"down": proxy.url, "kept": source.url}, metrics_port=0)
        forwarder = Forwarder(cfg)
        thread = run_in_thread(forwarder)
        try:
            wait_for("the other source", lambda: uuids_in(tmp_path / "b") == kept)
            ready = httpx.get(f"http://127.0.0.1:{wait_for('the health server', lambda: forwarder.health_port)}/readyz")
            assert ready.status_code == 503 and "down: introspect: cannot reach" in ready.text, ready.text
            proxy.up()
            wait_for("the first source", lambda: forwarder.problems() == [] and len(forwarder.pipelines) == 2)
        finally:
            forwarder.stop.set()
            thread.join(30)
    assert not thread.is_alive()


def test_a_page_proof_refused_for_ever_holds_the_page_no_longer_than_the_proof_wait(
    source: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A siemgate answers a page proof 409 with Retry-After until a checkpoint covers the page.
    Before: a server answering 409 for ever (or with Retry-After: 99999999) held the stream for
    ever, 5 minutes per attempt. Now a page's proof is waited for at most PROOF_WAIT seconds (2
    minutes; 1 here), then the page goes without log fields, said once, as when the server cannot
    prove pages (each page waits again: at the head of a stream every page needs a new checkpoint,
    so a short cut after one give-up would never bring the fields back); the source is not
    reported as failing after that."""
    import siemgate.forward.client as client_module

    monkeypatch.setattr(client_module, "PROOF_WAIT", 1.0, raising=False)
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 120)
    with proxy_to(source.url) as proxy:
        proxy.plan = lambda path, body: (
            Answer(409, {"Retry-After": "99999999"}, b'{"Error":{"Message":"not yet"}}') if "proof" in path else None
        )
        forwarder = Forwarder(
            config(tmp_path / "state", proxy.url, {"out": file_sink(tmp_path)}, features=["signinattempts"], limit=50)
        )
        with caplog.at_level(logging.WARNING, logger="siemgate.forward"):
            thread = run_in_thread(forwarder)
            try:
                wait_for("every event", lambda: delivered(tmp_path) == uuids, timeout=30)
                wait_for("no problem", lambda: forwarder.problems() == [])
            finally:
                forwarder.stop.set()
                thread.join(30)
        # each of the 3 pages: asked, waited 1 s (not 5 minutes), asked again, given up
        assert len(proxy.refused("proof")) == 6
    warned = [r.getMessage() for r in caplog.records if "cannot prove pages" in r.getMessage()]
    assert len(warned) == 1, warned


def test_a_page_proof_not_ready_yet_is_waited_for_quietly(
    source: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A proof answered 409 (no checkpoint covers the page yet) is how a siemgate with a signed log
    answers every new page at the head of a stream: the forwarder waits the Retry-After, at DEBUG.
    Before: each was a WARNING "retrying" (and a source retry in the metric), so a forwarder
    following a stream warned at every new page."""
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 120)
    asked: set[bytes] = set()

    def plan(path: str, body: bytes) -> Answer | None:
        if "proof" in path and body not in asked:  # each page's first proof request: not yet
            asked.add(body)
            return Answer(409, {"Retry-After": "1"}, b'{"Error":{"Message":"Conflict: not covered yet"}}')
        return None

    with proxy_to(source.url) as proxy:
        proxy.plan = plan
        cfg = config(tmp_path / "state", proxy.url, {"out": file_sink(tmp_path)}, features=["signinattempts"], limit=50)
        with caplog.at_level(logging.DEBUG, logger="siemgate.forward"):
            forwarder = run_once(cfg)
        proofs = [s for s in proxy.seen if "proof" in s.path]
    assert forwarder.code == 0 and delivered(tmp_path) == uuids
    assert [s.status for s in proofs] == [409, 503] * 3
    assert all(after.at - before.at >= 1.0 for before, after in itertools.pairwise(proofs) if before.status == 409)
    assert source_lines(caplog, logging.WARNING) == source_lines(caplog, logging.INFO)[1:] == []
    assert sample(forwarder, "siemgate_forward_source_retries_total", source="src") == 0
