"""The delivery contract, in-process against the real siemgate server: every event once per sink
in order, commit only after acknowledgement, poison isolation, a sink that is down, 429 storms."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from siemgate.forward.checkpoint import CheckpointStore
from siemgate.forward.client import EventsClient
from siemgate.forward.errors import CursorRejected
from siemgate.model.features import Feature
from support.waiting import wait_for

from .fake_intakes import HEC_TOKEN
from .forward_support import config, fill, jsonl, run_in_thread, run_once, sample


def file_sink(tmp_path: Path, name: str = "out") -> dict[str, Any]:
    return {"type": "file", "path": str(tmp_path / name / "{feature}.jsonl")}


def test_once_delivers_every_event_exactly_once_and_resumes(source: Any, tmp_path: Path) -> None:
    signins = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 2300)
    usages = fill(source.live, source.key, Feature.ITEMUSAGES, 700)
    cfg = config(
        tmp_path / "state", source.url, {"out": file_sink(tmp_path)}, features=["signinattempts", "itemusages"]
    )
    first = run_once(cfg)
    assert first.code == 0, first.problems()
    assert [e["uuid"] for e in jsonl(tmp_path / "out/signinattempts.jsonl")] == signins
    assert [e["uuid"] for e in jsonl(tmp_path / "out/itemusages.jsonl")] == usages
    assert sample(first, "siemgate_forward_events_out_total", source="src", sink="out") == 3000
    assert sample(first, "siemgate_forward_lag_seconds", source="src", feature="signinattempts") == 0

    more = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 5)
    second = run_once(cfg)
    assert second.code == 0
    assert [e["uuid"] for e in jsonl(tmp_path / "out/signinattempts.jsonl")] == signins + more
    with CheckpointStore(tmp_path / "state/checkpoints.db") as store:
        positions = {p.stream: p for p in store.all()}
    assert positions["src/signinattempts"].events == 2305 and positions["src/signinattempts"].cursor


def test_poison_event_is_isolated_and_dead_lettered(source: Any, intakes: Any, tmp_path: Path) -> None:
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 300)
    bad = {uuids[17], uuids[250]}
    intakes.intake.poison |= bad
    hec = {"type": "splunk_hec", "url": intakes.url, "token": {"env": "HEC_TOKEN"}, "max_events": 100}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEC_TOKEN", HEC_TOKEN)
        cfg = config(
            tmp_path / "state", source.url, {"hec": hec, "out": file_sink(tmp_path)}, features=["signinattempts"]
        )
        forwarder = run_once(cfg)
    assert forwarder.code == 0
    received = set(intakes.intake.uuids("hec"))
    assert received == set(uuids) - bad  # nothing lost; the events before a bad one may repeat
    dead = jsonl(tmp_path / "state/dead-letters/src.hec.jsonl")
    assert {d["uuid"] for d in dead} == bad
    assert all("code 6" in d["reason"] and d["status"] == 400 and d["event"]["uuid"] in bad for d in dead)
    assert [e["uuid"] for e in jsonl(tmp_path / "out/signinattempts.jsonl")] == uuids  # other sinks unaffected
    assert sample(forwarder, "siemgate_forward_dead_letters_total", source="src", sink="hec") == 2


def test_sink_down_then_back_delivers_everything_and_reports_not_ready(
    source: Any, intakes: Any, tmp_path: Path
) -> None:
    from siemgate.forward.runner import Forwarder

    uuids = fill(source.live, source.key, Feature.ITEMUSAGES, 400)
    intakes.stop()
    sink = {"type": "webhook", "url": f"{intakes.url}/webhook", "secret": {"env": "WH_SECRET"}, "max_events": 150}
    from .fake_intakes import WEBHOOK_SECRET

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WH_SECRET", WEBHOOK_SECRET)
        cfg = config(tmp_path / "state", source.url, {"hook": sink}, features=["itemusages"])
        forwarder = Forwarder(cfg)
    thread = run_in_thread(forwarder)
    retries = {"source": "src", "sink": "hook"}
    wait_for(
        "retries while the sink is down", lambda: sample(forwarder, "siemgate_forward_retries_total", **retries) >= 2
    )
    assert any("hook" in p for p in forwarder.problems())
    intakes.start()
    try:
        wait_for(
            "delivery after the sink returned", lambda: len(set(intakes.intake.uuids("webhook"))) == 400, timeout=60
        )
    finally:
        forwarder.stop.set()
        thread.join(20)
    assert intakes.intake.uuids("webhook") == uuids
    assert not thread.is_alive()


def test_a_failing_sink_is_said_once_and_its_credential_loudly_once(
    source: Any, intakes: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: every sink retry logged a line of its own (a WARNING, an ERROR from the fifth on and
    for every 401/403): a sink down for an hour wrote thousands. Now, as for a source: one WARNING
    when it starts failing, one ERROR the first time it refuses the credential (saying what to fix),
    DEBUG for the other retries, one INFO when it answers again; the metric counts every retry."""
    from .fake_intakes import DD_API_KEY

    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 50)
    intakes.intake.fail("datadog", [503, 503, 401, 403, 503, 429])
    monkeypatch.setenv("DD_KEY", DD_API_KEY)
    dd = {"type": "datadog", "api_key": {"env": "DD_KEY"}, "url": intakes.url, "max_events": 100}
    cfg = config(tmp_path / "state", source.url, {"dd": dd}, features=["signinattempts"])
    with caplog.at_level(logging.DEBUG, logger="siemgate.forward"):
        forwarder = run_once(cfg)
    assert forwarder.code == 0
    assert intakes.intake.uuids("datadog") == uuids
    assert sample(forwarder, "siemgate_forward_retries_total", source="src", sink="dd") == 6

    def lines(level: int) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == level and r.getMessage().startswith("sink dd:")]

    assert len(lines(logging.WARNING)) == 1 and "answered 503" in lines(logging.WARNING)[0], lines(logging.WARNING)
    assert len(lines(logging.ERROR)) == 1 and "(401" in lines(logging.ERROR)[0], lines(logging.ERROR)
    assert "fix the sink's secret" in lines(logging.ERROR)[0]
    assert len(lines(logging.DEBUG)) == 4, lines(logging.DEBUG)
    assert lines(logging.INFO) == [f"sink dd: datadog {intakes.url}/api/v2/logs answered after 6 retries"]
    assert not forwarder.problems()


def test_429_storm_at_the_sink_and_at_the_source(
    source: Any, intakes: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .fake_intakes import DD_API_KEY

    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 250)
    intakes.intake.fail("datadog", [429] * 15 + [503] * 3)
    monkeypatch.setenv("DD_KEY", DD_API_KEY)
    dd = {"type": "datadog", "api_key": {"env": "DD_KEY"}, "url": intakes.url, "max_events": 100}
    cfg = config(tmp_path / "state", source.url, {"dd": dd}, features=["signinattempts"], limit=50)

    storms = {"n": 0}
    real = httpx.HTTPTransport()

    class Storm(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            storms["n"] += 1
            if storms["n"] % 3:  # two of every three Events API requests are refused
                return httpx.Response(
                    429, headers={"Retry-After": "0"}, json={"Error": {"Message": "Too Many Requests"}}
                )
            return real.handle_request(request)

    import siemgate.forward.runner as runner

    original = EventsClient

    def client(*args: Any, **kwargs: Any) -> EventsClient:
        return original(*args, **kwargs, transport=Storm())

    monkeypatch.setattr(runner, "EventsClient", client)
    forwarder = run_once(cfg)
    assert forwarder.code == 0
    assert intakes.intake.uuids("datadog") == uuids
    assert sample(forwarder, "siemgate_forward_retries_total", source="src", sink="dd") == 18
    assert sample(forwarder, "siemgate_forward_source_retries_total", source="src") >= 8


def test_revoked_token_stops_the_stream_with_a_clear_report(source: Any, tmp_path: Path) -> None:
    fill(source.live, source.key, Feature.SIGNINATTEMPTS, 10)
    cfg = config(tmp_path / "state", source.url, {"out": file_sink(tmp_path)}, features=["signinattempts"])
    assert run_once(cfg).code == 0
    source.live.store.revoke_token(_token_id(source), source.live.clock())
    forwarder = run_once(cfg)
    assert forwarder.code == 1
    problems = " ".join(forwarder.problems())
    assert "refused the token (401" in problems and "revoked" in problems
    assert sample(forwarder, "siemgate_forward_stream_up", source="src", feature="signinattempts") == 0


def _token_id(source: Any) -> str:
    import jwt

    return str(jwt.decode(source.token, options={"verify_signature": False})["jti"])


def test_refused_stored_cursor_is_reported_never_reset(source: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from siemgate.cli.main import app

    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 20)
    cfg = config(tmp_path / "state", source.url, {"out": file_sink(tmp_path)}, features=["signinattempts"])
    assert run_once(cfg).code == 0
    db = tmp_path / "state/checkpoints.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE checkpoints SET cursor = 'forged-cursor' WHERE stream = 'src/signinattempts'")
    forwarder = run_once(cfg)
    assert forwarder.code == 1
    assert "refused the stored cursor (400" in " ".join(forwarder.problems())
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT cursor FROM checkpoints").fetchone()[0] == "forged-cursor"  # kept as it was

    toml = tmp_path / "forward.toml"
    toml.write_text(
        f'[forwarder]\nstate_dir = "{tmp_path / "state"}"\n[sources.src]\nurl = "{source.url}"\n'
        'token = { env = "FORWARD_TEST_TOKEN" }\nfeatures = ["signinattempts"]\nsinks = ["out"]\n'
        f'[sinks.out]\ntype = "file"\npath = "{tmp_path}/again/{{feature}}.jsonl"\n'
    )
    result = CliRunner().invoke(
        app,
        [
            "forward",
            "reset",
            "--config",
            str(toml),
            "--source",
            "src",
            "--feature",
            "signinattempts",
            "--start-time",
            "2020-01-01T00:00:00Z",
        ],
    )
    assert result.exit_code == 0, result.output
    assert run_once(cfg).code == 0
    assert [e["uuid"] for e in jsonl(tmp_path / "out/signinattempts.jsonl")][-20:] == uuids


def test_client_stream_commits_a_page_only_when_the_next_is_asked_for(source: Any, tmp_path: Path) -> None:
    uuids = fill(source.live, source.key, Feature.ITEMUSAGES, 250)
    with EventsClient(source.token, source.url) as client, CheckpointStore(tmp_path / "cp.db") as cp:
        stream = client.stream("itemusages", cp, start_time="2020-01-01T00:00:00Z", limit=100)
        pages = stream.pages()
        first = next(pages)
        second = next(pages)  # the first page is committed now; the second is being "handled"
        assert [e["uuid"] for e in first.items + second.items] == uuids[:200]
        # a crash here: the second page was not committed
    with EventsClient(source.token, source.url) as client, CheckpointStore(tmp_path / "cp.db") as cp:
        again = [e["uuid"] for e in client.stream("itemusages", cp).events()]
    assert again == uuids[100:]


def test_client_v1_and_v2_and_introspect(source: Any) -> None:
    fill(source.live, source.key, Feature.AUDITEVENTS, 3)
    with EventsClient(source.token, source.url, version=1) as v1, EventsClient(source.token, source.url) as v2:
        assert set(v2.introspect().features) == {"signinattempts", "itemusages", "auditevents"}
        assert v1.introspect().known_features() == v2.introspect().known_features()
        page1 = v1.reset_page("auditevents", start_time="2020-01-01T00:00:00Z")
        page2 = v2.reset_page("auditevents", start_time="2020-01-01T00:00:00Z")
    assert [e["uuid"] for e in page1.items] == [e["uuid"] for e in page2.items]
    assert all("account_uuid" not in e for e in page1.items) and all("account_uuid" in e for e in page2.items)


def test_client_refuses_a_forged_cursor_and_a_bad_token(source: Any) -> None:
    from siemgate.forward.errors import SourceUnauthorized

    with EventsClient(source.token, source.url) as client, pytest.raises(CursorRejected, match=r"never|silently"):
        client.next_page("signinattempts", "not-a-cursor")
    with EventsClient("x.y.z", source.url) as client, pytest.raises(SourceUnauthorized, match="401"):
        client.introspect()


def test_metrics_and_health_endpoint(source: Any, tmp_path: Path) -> None:
    from siemgate.forward.config import parse_config
    from siemgate.forward.runner import Forwarder
    from support.ports import free_port

    fill(source.live, source.key, Feature.SIGNINATTEMPTS, 30)
    port = free_port()
    cfg = parse_config(
        {
            "forwarder": {"state_dir": str(tmp_path / "state"), "poll_interval": 0.5, "metrics_port": port},
            "sources": {"src": {"url": source.url, "token": {"env": "FORWARD_TEST_TOKEN"}, "sinks": ["null"]}},
            "sinks": {"null": {"type": "null"}},
        }
    )
    forwarder = Forwarder(cfg)
    thread = run_in_thread(forwarder)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(
            "metrics",
            lambda: _get(f"{base}/metrics") and "siemgate_forward_events_out_total" in _get(f"{base}/metrics"),
        )
        wait_for(
            "30 sign-ins in",
            lambda: sample(forwarder, "siemgate_forward_events_in_total", source="src", feature="signinattempts") == 30,
        )
        assert 'siemgate_forward_events_in_total{feature="signinattempts",source="src"} 30.0' in _get(f"{base}/metrics")
        assert httpx.get(f"{base}/healthz").status_code == 200
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200 and orjson.loads(ready.content)["problems"] == []
    finally:
        forwarder.stop.set()
        thread.join(20)
    assert not thread.is_alive()


def _get(url: str) -> str:
    try:
        return httpx.get(url, timeout=2).text
    except httpx.TransportError:
        return ""
