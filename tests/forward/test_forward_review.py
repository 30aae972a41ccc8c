"""Adversarial review of the forwarder: bad settings and TLS files in the configuration, damaged
checkpoint files, destinations or sources that answer without end or unreadably, and files cut
short by a crash or a full disk."""

from __future__ import annotations

import functools
import gzip
import os
import resource
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemgate.forward.checkpoint import CheckpointStore, read_positions
from siemgate.forward.client import EventsClient
from siemgate.forward.errors import ForwardConfigError, SinkRetryable, SourceError
from siemgate.forward.records import Record
from siemgate.forward.runner import Forwarder
from siemgate.forward.sinks.base import Item, SinkContext
from siemgate.model.features import Feature
from support.receivers import misbehaving, trickle
from support.resolver import hung_resolver
from support.waiting import wait_for

from .forward_support import config, fill, run_in_thread, run_once, sample


def run_until(forwarder: Forwarder, what: str, condition: Callable[[], Any]) -> None:
    """Run the forwarder in a thread until `condition` holds (within 10 s), then stop it: it must
    end within 10 s, whatever its destination or source is doing."""
    thread = run_in_thread(forwarder)
    try:
        wait_for(what, condition, timeout=10)
    finally:
        forwarder.stop.set()
        thread.join(10)
    assert not thread.is_alive()


def forward_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`siemgate forward ARGS` as a real process, bounded in time."""
    return subprocess.run(
        [sys.executable, "-m", "siemgate", "forward", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "FORWARD_TEST_TOKEN": "not-used", **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def _gzipped(body: bytes) -> Callable[[Any], None]:
    """A peer's answer: 200 with `body` as gzip-encoded JSON (already compressed)."""

    def answer(handler: Any) -> None:
        handler.send_response(200)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-encoding", "gzip")
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


@pytest.mark.parametrize("command", [("check",), ("--once",), ("status",)])
def test_tls_files_that_do_not_load_are_configuration_errors_naming_the_key(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """A missing CA file for the source was a traceback when connecting; a CA file without
    certificates for a sink said only "[Errno 2]"-style reasons without the key. Now each is a
    configuration error (exit 2) naming the key, before anything is contacted."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    config = tmp_path / "forward.toml"
    config.write_text(
        f"""
[forwarder]
state_dir = "{tmp_path / "state"}"

[sources.src]
url = "https://127.0.0.1:9"
token = {{ env = "FORWARD_TEST_TOKEN" }}
ca_file = "{tmp_path / "missing.pem"}"
sinks = ["hook", "sys"]

[sinks.hook]
type = "webhook"
url = "https://127.0.0.1:9/x"
ca_file = "{junk}"

[sinks.sys]
type = "syslog"
host = "127.0.0.1"
cert_file = "{junk}"
"""
    )
    done = forward_cli(*command[:1], "--config", str(config), *command[1:])
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert f"sources.src.ca_file: cannot read the CA file {tmp_path / 'missing.pem'}: No such file" in done.stderr
    assert f"sinks.hook.webhook.ca_file: {junk} holds no PEM CA certificate" in done.stderr
    assert "sinks.sys.syslog: cert_file, key_file: not a PEM certificate and its private key" in done.stderr


def _hand_edited(path: Path) -> None:
    """A checkpoints table rebuilt by hand without the start_time column."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE checkpoints (stream TEXT PRIMARY KEY, cursor TEXT, events INTEGER, updated_at TEXT)")
        db.execute("INSERT INTO checkpoints VALUES ('src/signinattempts', 'abc', 0, 'now')")
    db.close()


def _damaged_page(path: Path) -> None:
    """A real checkpoint file of many streams, with one of its later pages overwritten."""
    with CheckpointStore(path) as store:
        store.commit((f"src/stream-{n}", f"cursor-{n}", 1) for n in range(1000))
    with path.open("r+b") as f:
        f.seek(4096 * 5 + 200)
        f.write(b"\xff" * 1000)


def _emptied(path: Path) -> None:
    """A checkpoint file cut to nothing (truncated by a full disk or by hand): SQLite would open it
    as a new store, every stream would reset from start_time (now - 1 h) and skip what lay between."""
    path.write_bytes(b"")


@pytest.mark.parametrize("damage", [_hand_edited, _damaged_page, _emptied])
@pytest.mark.parametrize("command", ["status", "reset"])
def test_a_damaged_checkpoint_file_is_an_error_saying_what_to_do(tmp_path: Path, damage: Any, command: str) -> None:
    """A checkpoint table edited by hand (a column missing) or a file with a damaged page opened
    fine and failed later with a traceback (sqlite3.OperationalError, DatabaseError); now opening
    it says what is wrong and what to do."""
    state = tmp_path / "state"
    state.mkdir()
    damage(state / "checkpoints.db")
    config = tmp_path / "forward.toml"
    config.write_text(
        f'[forwarder]\nstate_dir = "{state}"\n[sources.src]\nurl = "http://127.0.0.1:9"\n'
        'token = { env = "FORWARD_TEST_TOKEN" }\nsinks = ["n"]\n[sinks.n]\ntype = "null"\n'
    )
    extra = ["--source", "src", "--feature", "signinattempts", "--start-time", "2026-11-01T00:00:00Z"]
    done = forward_cli(command, "--config", str(config), *(extra if command == "reset" else []))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert f"the checkpoint file {state / 'checkpoints.db'}" in done.stderr
    assert "Restore it from a backup" in done.stderr


def test_the_checkpoint_lock_holds_when_lock_files_are_deleted(tmp_path: Path) -> None:
    """The lock was a separate `checkpoints.db.lock`: deleting it (a cleanup of stale lock files)
    let a second forwarder open the checkpoints a running one held, and both delivered the same
    events and raced on the cursors. Now the database file itself is locked."""
    path = tmp_path / "state" / "checkpoints.db"
    with CheckpointStore(path) as running:
        running.commit([("src/signinattempts", "cursor-1", 1)])
        for leftover in path.parent.iterdir():
            if leftover.name.endswith(".lock"):
                leftover.unlink()
        with pytest.raises(ForwardConfigError, match="is in use by another forwarder"):
            CheckpointStore(path)
    with CheckpointStore(path) as after:  # released when the first one closes
        assert [p.cursor for p in after.all()] == ["cursor-1"]


def test_a_second_forwarder_process_is_refused_after_lock_files_are_deleted(source: Any, tmp_path: Path) -> None:
    """The same with real processes: a forwarder running (`siemgate forward`), every `*.lock` file
    of its state folder deleted, then `forward reset` as another process. With the separate lock
    file, reset took the checkpoints the running forwarder held (exit 0)."""
    fill(source.live, source.key, Feature.SIGNINATTEMPTS, 20)
    state = tmp_path / "state"
    toml = tmp_path / "forward.toml"
    toml.write_text(
        f'[forwarder]\nstate_dir = "{state}"\npoll_interval = 0.05\n[sources.src]\nurl = "{source.url}"\n'
        'token = { env = "FORWARD_TEST_TOKEN" }\nfeatures = ["signinattempts"]\nsinks = ["n"]\n'
        '[sinks.n]\ntype = "null"\n'
    )
    running = subprocess.Popen(
        [sys.executable, "-m", "siemgate", "forward", "--config", str(toml)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "FORWARD_TEST_TOKEN": source.token},
    )
    try:
        wait_for("20 events committed by the running forwarder", lambda: _committed(state) >= 20, timeout=30)
        for leftover in state.glob("*.lock"):
            leftover.unlink()
        reset = forward_cli("reset", "--config", str(toml), "--source", "src", "--feature", "signinattempts")
        assert reset.returncode == 2 and "in use by another forwarder" in reset.stderr, reset.stderr
        assert running.poll() is None
    finally:
        running.send_signal(signal.SIGTERM)
        _, err = running.communicate(timeout=15)
    assert running.returncode == 0, err.decode()
    assert [p.events for p in read_positions(state / "checkpoints.db")] == [20]


# Where a forwarder creating its checkpoint file is killed (SIGKILL): the first thing done with
# SQLite, the file flushed, the file put in place.
_KILLED_AT = ["sqlite3.connect", "os.fsync", "os.link"]
_KILL_WHEN_CALLED = """
import os, signal, sqlite3, sys
from siemgate.forward.checkpoint import CheckpointStore
module, name = sys.argv[2].split(".")
target = {"os": os, "sqlite3": sqlite3}[module]
setattr(target, name, lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL))
CheckpointStore(sys.argv[1])
"""


@pytest.mark.parametrize("killed_at", _KILLED_AT)
def test_a_forwarder_killed_while_creating_its_checkpoint_file_starts_again(tmp_path: Path, killed_at: str) -> None:
    """The file was created empty and then given its schema: a forwarder killed in between left an
    empty file, which every later start (and `forward status`) refused as a file cut to nothing,
    "restore it from a backup", until someone deleted it. Now the file appears with its schema at
    once, so an empty file is only ever a truncated one."""
    path = tmp_path / "state" / "checkpoints.db"
    killed = subprocess.run(
        [sys.executable, "-c", _KILL_WHEN_CALLED, str(path), killed_at], capture_output=True, timeout=60
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert read_positions(path) == []
    with CheckpointStore(path) as store:
        store.commit([("src/signinattempts", "cursor-1", 1)])
    assert [p.cursor for p in read_positions(path)] == ["cursor-1"]
    assert not [p.name for p in path.parent.iterdir() if ".tmp-" in p.name]  # no temporary file left


def _committed(state: Path) -> int:
    """Events committed in the state folder of a running forwarder (its file appears whole: never
    empty while it is being created)."""
    return sum(p.events for p in read_positions(state / "checkpoints.db"))


def test_a_sink_that_trickles_its_reply_fails_within_its_timeout_and_a_stop_ends_the_run(
    source: Any, tmp_path: Path
) -> None:
    """httpx's timeout bounds each read, so a destination sending a byte now and then held the
    request, the pipeline and a stop (SIGTERM) for ever. Now `timeout` bounds the whole request:
    the sink is reported failing, a stop ends the run, and nothing was committed."""
    fill(source.live, source.key, Feature.SIGNINATTEMPTS, 10)
    with misbehaving(trickle) as url:
        sink = {"type": "webhook", "url": f"{url}/hook", "timeout": 1}
        cfg = config(tmp_path / "state", source.url, {"hook": sink}, features=["signinattempts"])
        forwarder = Forwarder(cfg)
        run_until(forwarder, "the sink's timeout", lambda: any("ReadTimeout" in p for p in forwarder.problems()))
    with CheckpointStore(cfg.forwarder.checkpoint_path) as store:
        assert [p.events for p in store.all()] == [0]


def test_a_source_that_trickles_its_reply_is_retried_within_its_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for an Events API: a page request that trickles is given up after `timeout`
    seconds and retried, and a stop ends the run."""
    monkeypatch.setenv("FORWARD_TEST_TOKEN", "token")
    with misbehaving(trickle) as url:
        cfg = config(tmp_path / "state", url, {"n": {"type": "null"}}, features=["signinattempts"], timeout=1)
        forwarder = Forwarder(cfg)
        retries = functools.partial(sample, forwarder, "siemgate_forward_source_retries_total", source="src")
        run_until(forwarder, "a retry of the page request", retries)


def test_a_sink_reply_larger_than_the_bound_is_not_read_whole(
    source: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A destination's reply was read whole into memory, however large; now a reply over the
    sink's bound (made small here) fails the request, which is retried like a network error."""
    monkeypatch.setattr("siemgate.forward.sinks.http.MAX_REPLY_BYTES", 1024 * 1024, raising=False)

    def huge(handler: Any) -> None:
        handler.send_response(200)
        handler.send_header("content-length", str(8 * 1024 * 1024))
        handler.end_headers()
        for _ in range(8):
            handler.wfile.write(b" " * 1024 * 1024)

    fill(source.live, source.key, Feature.SIGNINATTEMPTS, 10)
    with misbehaving(huge) as url:
        cfg = config(tmp_path / "state", source.url, {"hook": {"type": "webhook", "url": f"{url}/hook"}})
        forwarder = Forwarder(cfg)
        run_until(forwarder, "the refused reply", lambda: any("larger than" in p for p in forwarder.problems()))


def test_a_compressed_page_larger_than_the_bound_once_decoded_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gzip reply of a few kilobytes that decodes to 64 MiB (a page with padding) was decoded
    whole; now decoding stops at the bound (made small here) and the request is retried."""
    monkeypatch.setattr("siemgate.forward.client.MAX_REPLY_BYTES", 1024 * 1024, raising=False)
    monkeypatch.setenv("FORWARD_TEST_TOKEN", "token")
    padding = b" " * (64 * 1024 * 1024)
    bomb = gzip.compress(b'{"cursor": "c", "has_more": false, "items": []' + padding + b"}", compresslevel=9)

    with misbehaving(_gzipped(bomb)) as url:
        cfg = config(tmp_path / "state", url, {"n": {"type": "null"}}, features=["signinattempts"])
        forwarder = Forwarder(cfg)
        retries = functools.partial(sample, forwarder, "siemgate_forward_source_retries_total", source="src")
        run_until(forwarder, "a retry of the page request", retries)
    with CheckpointStore(cfg.forwarder.checkpoint_path) as store:
        assert [p.cursor for p in store.all()] == [None]


def test_status_answers_while_the_forwarder_runs(source: Any, tmp_path: Path) -> None:
    """`forward status` took the checkpoint file's exclusive lock, so while a forwarder ran (when
    one wants to know where it is) it answered "in use by another forwarder" (exit 2). Now it reads
    the file without the lock; `reset`, which writes, still refuses while the forwarder runs."""
    fill(source.live, source.key, Feature.SIGNINATTEMPTS, 20)
    cfg = config(tmp_path / "state", source.url, {"n": {"type": "null"}}, features=["signinattempts"])
    toml = tmp_path / "forward.toml"
    toml.write_text(
        f'[forwarder]\nstate_dir = "{tmp_path / "state"}"\n[sources.src]\nurl = "{source.url}"\n'
        'token = { env = "FORWARD_TEST_TOKEN" }\nfeatures = ["signinattempts"]\nsinks = ["n"]\n'
        '[sinks.n]\ntype = "null"\n'
    )
    forwarder = Forwarder(cfg)
    thread = run_in_thread(forwarder)
    try:
        committed = functools.partial(sample, forwarder, "siemgate_forward_events_out_total", source="src", sink="n")
        wait_for("20 events delivered", lambda: committed() >= 20, timeout=20)
        status = forward_cli("status", "--config", str(toml), env={"FORWARD_TEST_TOKEN": source.token})
        assert status.returncode == 0, status.stderr
        assert status.stdout.startswith("src/signinattempts\t"), status.stdout
        reset = forward_cli("reset", "--config", str(toml), "--source", "src", "--feature", "signinattempts")
        assert reset.returncode == 2 and "in use by another forwarder" in reset.stderr, reset.stderr
    finally:
        forwarder.stop.set()
        thread.join(10)
    assert not thread.is_alive()


@pytest.mark.parametrize(
    "bad",
    [b"[]", b'{"errors": true, "items": [{"create": {"status": "created"}}]}'],
)
def test_a_reply_the_sink_cannot_read_is_retried_and_never_stops_the_forwarder(
    source: Any, tmp_path: Path, bad: bytes
) -> None:
    """An Elasticsearch that answered 200 with a body other than a bulk reply (a JSON array, a
    status that is not a number) raised AttributeError or ValueError out of the sink: the pipeline
    thread died and every pipeline of the forwarder stopped (exit 1). Now such a reply is retried
    like a 5xx, and once the destination answers properly the events are delivered."""
    answers = [bad, bad]
    bodies: list[bytes] = []

    def bulk(handler: Any) -> None:
        body = answers.pop(0) if answers else b'{"errors": false, "items": [{"create": {"status": 201}}]}'
        bodies.append(body)
        handler.send_response(200)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    fill(source.live, source.key, Feature.SIGNINATTEMPTS, 1)
    with misbehaving(bulk) as url:
        sink = {"type": "elasticsearch", "url": url, "compression": "none"}
        forwarder = run_once(config(tmp_path / "state", source.url, {"es": sink}, features=["signinattempts"]))
    assert forwarder.code == 0
    assert bodies == [bad, bad, b'{"errors": false, "items": [{"create": {"status": 201}}]}']
    assert sample(forwarder, "siemgate_forward_retries_total", source="src", sink="es") == 2
    with CheckpointStore(tmp_path / "state" / "checkpoints.db") as store:
        assert [p.events for p in store.all()] == [1]


SYSLOG = 'type = "syslog"\nprotocol = "tcp"\nhost = "127.0.0.1"\n'


@pytest.mark.parametrize(
    ("forwarder", "sink", "error"),
    [
        ("", SYSLOG + "port = 70000", "sinks.n.syslog.port"),
        ("", SYSLOG + "timeout = -1", "sinks.n.syslog.timeout"),
        ("", SYSLOG + 'sd_id = "our id@32473"', "sinks.n.syslog.sd_id"),
        ("", SYSLOG + 'sd_id = "x=1"', "sinks.n.syslog.sd_id"),
        ('metrics_host = "999.1.1.1"\nmetrics_port = 9464', 'type = "null"', "forwarder.metrics_host"),
        ("metrics_port = {busy}", 'type = "null"', "forwarder.metrics_host, metrics_port"),
    ],
)
def test_settings_out_of_range_are_configuration_errors_naming_the_key(
    tmp_path: Path, forwarder: str, sink: str, error: str
) -> None:
    """A syslog port over 65535 was accepted (and silently wrapped to another port), a negative
    timeout was a traceback at the first connection, and a metrics host or port that cannot be
    bound was a traceback. Now each is a configuration error (exit 2) naming the key. So is an
    sd_id a receiver cannot parse (a space, '=', ']' or '"' ended the SD-ID in every message)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config = tmp_path / "forward.toml"
        config.write_text(
            f'[forwarder]\nstate_dir = "{tmp_path / "state"}"\n{forwarder.format(busy=busy.getsockname()[1])}\n'
            '[sources.src]\nurl = "http://127.0.0.1:9"\ntoken = { env = "FORWARD_TEST_TOKEN" }\n'
            f'features = ["signinattempts"]\nsinks = ["n"]\n[sinks.n]\n{sink}\n'
        )
        done = forward_cli("--config", str(config), "--once")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert error in done.stderr, done.stderr


def _lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSON Lines file, parsed (a line that is not JSON fails the test)."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), data[-80:]
    return [orjson.loads(line) for line in data.splitlines()]


def test_a_line_cut_short_by_a_crash_does_not_swallow_the_next_record(source: Any, tmp_path: Path) -> None:
    """A forwarder killed while writing a batch leaves a line cut short; the batch is sent again
    after the restart and was appended to that line, so the first record sent again was glued to
    the fragment and unreadable: lost for whoever reads the file. Now the fragment is removed when
    the file is opened."""
    out = tmp_path / "out" / "signinattempts.jsonl"
    sink = {"type": "file", "path": str(tmp_path / "out" / "{feature}.jsonl")}
    cfg = config(tmp_path / "state", source.url, {"out": sink}, features=["signinattempts"])
    first = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 10)
    assert run_once(cfg).code == 0
    assert [e["uuid"] for e in _lines(out)] == first
    second = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 10)
    with out.open("ab") as f:  # what a kill in the middle of the next batch's write leaves
        f.write(orjson.dumps({"uuid": second[0], "timestamp": "2026"})[:25])
    assert run_once(cfg).code == 0
    assert [e["uuid"] for e in _lines(out)] == first + second


def test_a_disk_that_fills_up_mid_batch_never_acknowledges_what_it_did_not_write(source: Any, tmp_path: Path) -> None:
    """A write cut short (here by the file size limit, as by a full disk) returned how much it
    wrote and the rest of the batch was dropped, yet the batch was acknowledged and its page
    committed: those events were lost. Now a batch is written whole or the file is cut back and
    the batch retried; whatever is committed is in the file, on whole lines."""
    out = tmp_path / "out"
    fill(source.live, source.key, Feature.SIGNINATTEMPTS, 1500)
    toml = tmp_path / "forward.toml"
    toml.write_text(
        f'[forwarder]\nstate_dir = "{tmp_path / "state"}"\npoll_interval = 0.05\nretry_initial = 0.01\n'
        f'retry_max = 0.05\n[sources.src]\nurl = "{source.url}"\ntoken = {{ env = "FORWARD_TEST_TOKEN" }}\n'
        f'features = ["signinattempts"]\nlimit = 100\nsinks = ["out"]\n[sinks.out]\ntype = "file"\n'
        f'path = "{out}/{{feature}}.jsonl"\nmax_events = 100\nlinger = 0.05\n'
    )
    limit = 300_001  # bytes any file of the process may reach: the output file passes it mid-batch

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.Popen(
        [sys.executable, "-m", "siemgate", "forward", "--config", str(toml)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        preexec_fn=small_disk,
        env={**os.environ, "SIEMGATE_LOG_FORMAT": "text"},
    )
    logged: list[bytes] = []
    reader = threading.Thread(target=lambda: logged.extend(proc.stderr or []), daemon=True)
    reader.start()
    output = out / "signinattempts.jsonl"
    try:
        wait_for("a write refused by the full file", lambda: any(b"cannot write" in line for line in logged))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, b"".join(logged).decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    with CheckpointStore(tmp_path / "state" / "checkpoints.db") as store:
        [position] = store.all()
    assert position.events > 0
    assert len(_lines(output)) >= position.events


def test_a_dead_letter_cut_short_by_a_crash_does_not_swallow_the_next_one(source: Any, tmp_path: Path) -> None:
    """The dead-letter file had the same flaw as the file sink: after a crash in the middle of a
    dead letter, the next one was appended to the fragment and unreadable. Now the fragment is
    removed when the file is opened."""
    dead = tmp_path / "state" / "dead-letters" / "src.hook.jsonl"
    dead.parent.mkdir(parents=True)
    earlier = b'{"time":"2026-12-01T00:00:00Z","source":"src","sink":"hook","uuid":"EARLIER"}\n'
    dead.write_bytes(earlier + b'{"time":"2026-12-01T00:00:01Z","sou')

    def refuse(handler: Any) -> None:
        handler.send_response(400)
        handler.send_header("content-length", "0")
        handler.end_headers()

    [uuid] = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 1)
    with misbehaving(refuse) as url:
        sink = {"type": "webhook", "url": f"{url}/hook"}
        assert run_once(config(tmp_path / "state", source.url, {"hook": sink}, features=["signinattempts"])).code == 0
    assert [line["uuid"] for line in _lines(dead)] == ["EARLIER", uuid]


def test_a_sink_listed_twice_by_a_source_is_a_configuration_error(tmp_path: Path) -> None:
    """`sinks = ["hec", "hec"]` built the sink twice: every event was sent twice to the same
    destination, and both instances appended to one dead-letter file. Now it is refused."""
    config = tmp_path / "forward.toml"
    config.write_text(
        f'[forwarder]\nstate_dir = "{tmp_path / "state"}"\n[sources.src]\nurl = "http://127.0.0.1:9"\n'
        'token = { env = "FORWARD_TEST_TOKEN" }\nsinks = ["n", "n"]\n[sinks.n]\ntype = "null"\n'
    )
    done = forward_cli("status", "--config", str(config))
    assert done.returncode == 2, done.stderr
    assert "sources.src.sinks: names n more than once" in done.stderr, done.stderr


LONG = "a" * 70 + ".example"


@pytest.mark.parametrize(
    ("source_url", "sink", "key"),
    [
        (f"http://{LONG}:8080", 'type = "null"', "sources.src.url"),
        ("http://127.0.0.1:9", f'type = "webhook"\nurl = "https://{LONG}/hook"', "sinks.n.webhook.url"),
        ("http://127.0.0.1:9", f'type = "syslog"\nhost = "{LONG}"', "sinks.n.syslog.host"),
    ],
)
def test_a_host_name_dns_cannot_carry_is_a_configuration_error(
    tmp_path: Path, source_url: str, sink: str, key: str
) -> None:
    """A host label over 63 characters passed URL validation and failed at the first request with
    UnicodeError: a traceback for a source, and endless retries for a sink. Now it is a
    configuration error (exit 2) naming the key."""
    config = tmp_path / "forward.toml"
    config.write_text(
        f'[forwarder]\nstate_dir = "{tmp_path / "state"}"\n[sources.src]\nurl = "{source_url}"\n'
        f'token = {{ env = "FORWARD_TEST_TOKEN" }}\nsinks = ["n"]\n[sinks.n]\n{sink}\n'
    )
    done = forward_cli("check", "--config", str(config))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert f"{key}: '{LONG}' is not a host name" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("sink", "key"),
    [
        ('type = "file"\npath = "{out}/{nope}.jsonl"', "sinks.n.file.path"),
        ('type = "file"\npath = "{out}/{feature"', "sinks.n.file.path"),
        (
            'type = "elasticsearch"\nurl = "http://127.0.0.1:9"\ndata_stream = "logs-{nope}"',
            "sinks.n.elasticsearch.data_stream",
        ),
    ],
)
def test_a_template_with_an_unknown_placeholder_is_a_configuration_error(tmp_path: Path, sink: str, key: str) -> None:
    """A file sink path naming a placeholder other than {source} and {feature} was a KeyError
    traceback when the sink was built; an Elasticsearch data_stream naming one raised KeyError
    while the first event was encoded, which ended the pipeline and stopped the forwarder. Now
    each is a configuration error (exit 2) naming the key and the placeholders it may use."""
    config = tmp_path / "forward.toml"
    config.write_text(
        f'[forwarder]\nstate_dir = "{tmp_path / "state"}"\n[sources.src]\nurl = "http://127.0.0.1:9"\n'
        'token = { env = "FORWARD_TEST_TOKEN" }\nsinks = ["n"]\n[sinks.n]\n' + sink.replace("{out}", str(tmp_path))
    )
    done = forward_cli("check", "--config", str(config))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert key in done.stderr and "is not a template of" in done.stderr, done.stderr


def test_a_page_of_countless_tiny_items_is_not_parsed() -> None:
    """A reply was bounded by its size only: a page of 128 MiB made of tiny items (`{},{},...`)
    parses to about 30 times that in Python objects. Now a reply holding more JSON values than a
    page of 1000 events may is not parsed: the request is retried, saying why. (Here 1.5 million
    items in 4.5 MiB, a few KiB of gzip.)"""
    page = b'{"cursor": "c", "has_more": false, "items": [' + b",".join([b"{}"] * 1_500_000) + b"]}"
    packed = gzip.compress(page, compresslevel=9)

    refused = r"the reply holds about \d+ JSON values, more than a page may"
    with (
        misbehaving(_gzipped(packed)) as url,
        EventsClient("token", url, max_attempts=1) as client,
        pytest.raises(SourceError, match=refused),
    ):
        client.reset_page(Feature.SIGNINATTEMPTS)


def _send_to_sink(tmp_path: Path, sink: dict[str, Any]) -> None:
    """Send one record to `sink` (on hung.example, timeout 0.5) as a pipeline does."""
    cfg = config(tmp_path / "state", "http://127.0.0.1:9", {"s": {**sink, "timeout": 0.5}})
    built = cfg.sinks["s"].build("s", SinkContext("src"))
    try:
        record = Record(Feature.SIGNINATTEMPTS, {"uuid": "u-1"}, "src", "u-1")
        built.send([Item(0, record, built.encode(record))])
    finally:
        built.close()


def _read_source(tmp_path: Path, sink: dict[str, Any]) -> None:
    """Ask an Events API on hung.example (timeout 0.5) for its token's details, once."""
    with EventsClient("token", "https://hung.example", timeout=0.5, max_attempts=1) as client:
        client.introspect()


@pytest.mark.parametrize(
    ("reach", "sink"),
    [
        (_send_to_sink, {"type": "webhook", "url": "https://hung.example/hook"}),
        (_read_source, {}),
        (_send_to_sink, {"type": "syslog", "host": "hung.example", "protocol": "udp"}),
        (_send_to_sink, {"type": "syslog", "host": "hung.example", "protocol": "tcp"}),
        (_send_to_sink, {"type": "syslog", "host": "hung.example", "protocol": "tls"}),
    ],
    ids=["http-sink", "http-source", "syslog-udp", "syslog-tcp", "syslog-tls"],
)
def test_a_resolver_that_hangs_holds_a_pipeline_no_longer_than_its_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reach: Callable[[Path, dict[str, Any]], None], sink: dict[str, Any]
) -> None:
    """The forwarder's HTTP client and its syslog sink looked names up with socket.getaddrinfo
    outside their `timeout`, so a resolver that does not answer held the pipeline (and a stop)
    until the resolver gave up. Now the lookup ends with the timeout: the request fails, to be
    retried, saying the name did not resolve in time."""
    monkeypatch.setenv("FORWARD_TEST_TOKEN", "token")
    started = time.monotonic()
    with hung_resolver(monkeypatch):
        with pytest.raises((SinkRetryable, SourceError), match="did not resolve within the time allowed"):
            reach(tmp_path, sink)
        took = time.monotonic() - started
        assert took < 0.5 + 4.0, took  # the resolver hangs 30 s


def test_a_syslog_receiver_that_talks_back_then_stops_reading_holds_a_write_no_longer_than_its_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before each batch the connection is checked for a close by the receiver; when the receiver
    had sent something, that check left the socket without its timeout, so the next write to a
    receiver that no longer reads blocked for ever, holding the pipeline and a stop. Now the write
    fails after `timeout` and the batch is retried."""
    monkeypatch.setenv("FORWARD_TEST_TOKEN", "token")
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, filled at once
        server.bind(("127.0.0.1", 0))
        server.listen()
        sink = {"type": "syslog", "host": "127.0.0.1", "port": server.getsockname()[1], "protocol": "tcp"}
        cfg = config(tmp_path / "state", "http://127.0.0.1:9", {"s": {**sink, "timeout": 0.5}})
        built = cfg.sinks["s"].build("s", SinkContext("src"))
        record = Record(Feature.SIGNINATTEMPTS, {"uuid": "u-1"}, "src", "u-1")
        built.send([Item(0, record, b"first")])
        peer, _ = server.accept()
        outcome: list[BaseException] = []

        def send_large() -> None:
            try:
                built.send([Item(i, record, b"x" * 1_000_000) for i in range(8)])
            except BaseException as exc:
                outcome.append(exc)

        try:
            peer.sendall(b"not syslog\n")  # the receiver talks back, then reads nothing more
            wait_for("the receiver's bytes", lambda: select.select([built._sock], [], [], 0)[0])  # type: ignore[attr-defined]
            sender = threading.Thread(target=send_large, daemon=True)
            started = time.monotonic()
            sender.start()
            sender.join(5)
            took = time.monotonic() - started
        finally:
            peer.close()  # ends a write still blocked
            built.close()
        assert not sender.is_alive() and took < 4.0, took  # blocked for ever before (join gives up at 5 s)
        assert [type(exc) for exc in outcome] == [SinkRetryable], outcome
