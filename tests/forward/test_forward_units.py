"""Small pieces: backoff, Retry-After, URLs from tokens, configuration errors, 413 splitting."""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import jwt
import pytest

from siemgate.forward.backoff import Backoff, parse_retry_after
from siemgate.forward.checkpoint import CheckpointStore
from siemgate.forward.client import RECENT_UUIDS, EventsClient, Page, base_url_from_token
from siemgate.forward.config import parse_config
from siemgate.forward.errors import ForwardConfigError, SourceError
from siemgate.model.features import Feature

from .fake_intakes import DD_API_KEY
from .forward_support import config, fill, jsonl, run_once


def test_backoff_is_full_jitter_capped_and_honours_retry_after() -> None:
    top = Backoff(1.0, 8.0, rng=lambda: 1.0)
    assert [top.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    low = Backoff(1.0, 8.0, rng=lambda: 0.0)
    assert low.next_delay(retry_after=3) == 3 and low.next_delay(retry_after=10_000) == 300
    top.reset()
    assert top.next_delay() == 1.0


def test_retry_after_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 30) == 30


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/New_York"])
def test_an_http_date_without_a_zone_is_utc_whatever_the_machines_zone(
    monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    """Before: a date without a zone (or with -0000, RFC 5322's UTC) was read in the machine's
    zone: in Tokyo 30 s ahead became 9 hours in the past, so a 429 was retried at once; in New
    York 5 hours ahead (taken as the 5-minute ceiling)."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        for date in ("Wed, 21 Oct 2015 07:28:00 -0000", "Wed, 21 Oct 2015 07:28:00"):
            assert parse_retry_after(date, now=1445412480 - 30) == 30
    finally:
        monkeypatch.undo()
        time.tzset()


def test_url_comes_from_the_token_audience_like_1passwords_clients() -> None:
    def token(aud: Any) -> str:
        return jwt.encode({"aud": aud, "sub": "x"}, "k" * 32, algorithm="HS256")

    assert base_url_from_token(token(["events.1password.eu"])) == "https://events.1password.eu"
    assert base_url_from_token(token(["events.ent.1password.com"])) == "https://events.ent.1password.com"
    with pytest.raises(SourceError, match="set the url"):
        base_url_from_token(token(["com.1password.streamingservice"]))


def test_configuration_errors_name_the_key_and_never_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "s3cr3t-value")
    base: dict[str, Any] = {
        "sources": {"a": {"url": "https://events.1password.com", "token": {"env": "SECRET_TOKEN"}, "sinks": ["p"]}},
        "sinks": {
            "p": {
                "type": "panther",
                "url": "https://p.example",
                "secret": {"env": "SECRET_TOKEN"},
                "max_bytes": 2_000_000,
            }
        },
    }
    with pytest.raises(ForwardConfigError) as info:
        parse_config(base)
    assert "sinks.p.panther.max_bytes: at most 990000 bytes" in info.value.message
    assert "s3cr3t" not in info.value.message
    inline = {**base, "sinks": {"p": {"type": "stdout"}}}
    inline["sources"] = {"a": {**base["sources"]["a"], "token": "s3cr3t-value"}}
    with pytest.raises(ForwardConfigError) as info:
        parse_config(inline)
    assert "never inline" in info.value.message and "s3cr3t" not in info.value.message
    missing = {**base, "sinks": {"q": {"type": "stdout"}}}
    with pytest.raises(ForwardConfigError, match=r"no \[sinks.NAME\] table defines"):
        parse_config(missing)
    cfg = parse_config({**base, "sinks": {"p": {"type": "stdout"}}})
    assert "s3cr3t" not in repr(cfg) and "s3cr3t" not in str(cfg.model_dump())


def test_413_splits_the_batch_until_it_fits(
    source: Any, intakes: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 64)
    intakes.intake.fail("datadog", [413, 413])  # the whole batch, then its first half, are "too large"
    monkeypatch.setenv("DD_KEY", DD_API_KEY)
    dd = {"type": "datadog", "api_key": {"env": "DD_KEY"}, "url": intakes.url}
    forwarder = run_once(config(tmp_path / "state", source.url, {"dd": dd}, features=["signinattempts"]))
    assert forwarder.code == 0
    assert intakes.intake.uuids("datadog") == uuids  # in order, nothing lost
    assert jsonl(tmp_path / "state/dead-letters/src.dd.jsonl") == []


def test_the_sink_registry_gives_every_type_once_and_the_error_lists_them() -> None:
    from siemgate.forward.config import parse_config
    from siemgate.forward.errors import ForwardConfigError
    from siemgate.forward.sinks import SINK_CONFIGS, SINK_TYPES

    assert len(SINK_TYPES) == len(set(SINK_TYPES)) == len(SINK_CONFIGS) >= 16
    assert {"SentinelConfig", "SecOpsConfig", "MirrorConfig"} <= {c.__name__ for c in SINK_CONFIGS}
    with pytest.raises(ForwardConfigError) as raised:
        parse_config({"sources": {"s": {"token": "x", "sinks": ["o"]}}, "sinks": {"o": {"type": "nosuch"}}})
    assert f"use one of {', '.join(SINK_TYPES)}" in str(raised.value)


def test_the_checkpoint_file_takes_commits_of_several_pipelines_at_once(tmp_path: Path) -> None:
    """A forwarder's pipelines (one per source, each on its thread) share its checkpoint file.
    Before: two committing at once broke each other's transaction (OperationalError "not an error"
    after a couple of commits; the pipeline died and the forwarder stopped). Now each call holds
    the store's lock."""
    errors: list[str] = []
    with CheckpointStore(tmp_path / "checkpoints.db") as checkpoints:

        def pipeline(name: str) -> None:
            try:
                for n in range(2000):
                    checkpoints.commit([(name, f"cursor-{n}", 1)])
                    checkpoints.load(name)
            except Exception as exc:  # what the pipeline's thread would die of
                errors.append(repr(exc))

        threads = [threading.Thread(target=pipeline, args=(f"src{n}/signinattempts",)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert {(p.stream, p.cursor, p.events) for p in checkpoints.all()} == {
            (f"src{n}/signinattempts", "cursor-1999", 2000) for n in range(3)
        }


def test_a_stream_remembers_its_recent_events_in_about_a_megabyte() -> None:
    """docs/forwarding.md: a stream remembers its last 10,000 events (uuid and timestamp) in about
    1 MB, so a forwarder of many sources (three streams each) stays small. Before: the key as text,
    1.67 MB a stream."""
    with EventsClient("token", "http://127.0.0.1:9") as client:  # asks nothing: the pages are given
        stream = client.stream(Feature.SIGNINATTEMPTS)
    pages = [
        Page(
            Feature.SIGNINATTEMPTS,
            [
                {"uuid": f"{n:026d}", "timestamp": f"2026-12-08T01:33:01.{n:09d}Z"}
                for n in range(p * 1000, (p + 1) * 1000)
            ],
            "c",
            True,
        )
        for p in range(RECENT_UUIDS // 1000)
    ]
    tracemalloc.start()
    try:
        for page in pages:
            stream._leave_out_repeats(page)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert sum(len(p.items) for p in pages) == RECENT_UUIDS  # nothing left out: each is new
    assert held < 1.2e6, held
