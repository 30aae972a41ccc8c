"""The forwarder as a real process: killed at random points and restarted (no event missing,
duplicates only from pages that were not acknowledged yet), SIGTERM, and `forward check`."""

from __future__ import annotations

import functools
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from siemgate.model.features import Feature
from support.ports import free_port
from support.waiting import wait_for

from .forward_support import BATCH, LIMIT, fill, jsonl, start, write_config


def delivered(out: Path) -> list[str]:
    return [e["uuid"] for f in ("signinattempts", "itemusages") for e in jsonl(out / f"{f}.jsonl")]


def test_killed_at_random_points_then_restarted_loses_nothing(source: Any, tmp_path: Path) -> None:
    rng = random.Random(5)
    out, state = tmp_path / "out", tmp_path / "state"
    config = write_config(tmp_path / "forward.toml", source.url, state, out)
    expected = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 2000) + fill(
        source.live, source.key, Feature.ITEMUSAGES, 1000
    )
    kills = 0
    procs: list[subprocess.Popen[bytes]] = []

    def written(target: int, proc: subprocess.Popen[bytes], caught_up: set[str]) -> bool:
        got = delivered(out)
        return len(got) >= target or caught_up <= set(got) or proc.poll() is not None

    try:
        for round_ in range(5):
            proc = start(config)
            procs.append(proc)
            target = len(delivered(out)) + rng.randrange(50, 600)
            caught_up = set(expected)  # or kill once everything is there: a kill while idle counts too
            wait_for(
                f"round {round_}: {target} events written",
                functools.partial(written, target, proc, caught_up),
                timeout=60,
            )
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            proc.kill()  # SIGKILL: no chance to flush or commit
            proc.wait(10)
            kills += 1
            expected += fill(source.live, source.key, Feature.ITEMUSAGES, rng.randrange(0, 200))
        final = start(config, "--once")
        procs.append(final)
        assert final.wait(60) == 0, final.stderr.read().decode() if final.stderr else ""
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    got = delivered(out)
    assert set(got) == set(expected)  # never a gap
    duplicates = len(got) - len(set(got))
    # Only events written after the last commit can repeat: at most one page and one batch per stream per kill.
    assert duplicates <= kills * 2 * (LIMIT + BATCH), duplicates


def test_sigterm_stops_cleanly_after_committing(source: Any, tmp_path: Path) -> None:
    out, state = tmp_path / "out", tmp_path / "state"
    config = write_config(tmp_path / "forward.toml", source.url, state, out)
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 300)
    proc = start(config)
    try:
        wait_for("300 events", lambda: len(delivered(out)) >= 300 or proc.poll() is not None, timeout=60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert b"Traceback" not in (proc.stderr.read() if proc.stderr else b"")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    again = start(config, "--once")
    assert again.wait(60) == 0
    assert delivered(out) == uuids  # everything was committed: nothing is delivered twice


def test_forward_check_reports_each_problem(source: Any, tmp_path: Path) -> None:
    good = write_config(tmp_path / "good.toml", source.url, tmp_path / "s", tmp_path / "o")
    result = subprocess.run(
        [sys.executable, "-m", "siemgate", "forward", "check", "--config", str(good)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "✓ source src" in result.stderr and "✓ sink out" in result.stderr
    bad = write_config(
        tmp_path / "bad.toml",
        source.url,
        tmp_path / "s2",
        tmp_path / "o2",
        extra_sink='[sinks.extra]\ntype = "syslog"\nprotocol = "tls"\nhost = "127.0.0.1"\nport = 9\n',
    )
    result = subprocess.run(
        [sys.executable, "-m", "siemgate", "forward", "check", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "✗ sink extra" in result.stderr and "cannot connect" in result.stderr

    broken = tmp_path / "broken.toml"
    broken.write_text(
        bad.read_text().replace('type = "syslog"', 'type = "splunk"').replace("FORWARD_TEST_TOKEN", "NOT_SET_ANYWHERE")
    )
    result = subprocess.run(
        [sys.executable, "-m", "siemgate", "forward", "--config", str(broken), "--once"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "NOT_SET_ANYWHERE is not set" in result.stderr and "unknown sink type" in result.stderr


def test_once_stopped_before_draining_exits_1(tmp_path: Path, monkeypatch: Any) -> None:
    """`--once` is a cron job's "deliver everything": against a source that never answers it retries
    until stopped, and then exited 0, as if every stream had been drained. It now exits 1 saying
    which source was not drained."""
    monkeypatch.setenv("FORWARD_TEST_TOKEN", "not-used: nothing answers")
    log = tmp_path / "forward.log"
    config = write_config(tmp_path / "forward.toml", f"http://127.0.0.1:{free_port()}", tmp_path / "s", tmp_path / "o")
    proc = start(config, "--once", log=log)
    try:
        wait_for("a retry logged", lambda: "cannot reach" in log.read_text() or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 1, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text()
    assert "src: stopped before every stream was drained (--once)" in text, text
    assert "Traceback" not in text
