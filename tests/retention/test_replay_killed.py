"""`siemgate archive replay` killed (SIGKILL) part-way through a file: the rows it stored are named
by an audit record written before them (docs/retention.md, "Replay"), and replaying again
completes the file, storing nothing twice."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from siemgate.model.ids import new_id
from siemgate.retention.survey import manifests
from support.procs import cli_env

from .helpers import AUDIT, PURGE_RECORD, fill, open_services, stream_uuids

# The real command, its batches made small, killed by its own hook as it is about to write the
# second batch of the first file: the first batch is stored, the file is not finished.
KILLED_AT_SECOND_BATCH = """
import os, signal, sys
import siemgate.retention.replay as replay
replay.BATCH = 10
write, calls = replay._write, []
def _write(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    write(*args, **kwargs)
replay._write = _write
sys.argv = ["siemgate", *sys.argv[1:]]
from siemgate.cli.main import main
main()
"""


def _replay(data: Path, *, killed: bool) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", KILLED_AT_SECOND_BATCH] if killed else [sys.executable, "-m", "siemgate"]
    return subprocess.run(
        [*command, "archive", "replay"],
        capture_output=True,
        text=True,
        env=cli_env(data),
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _replay_records(data: Path, account_uuid: str) -> list[dict[str, Any]]:
    """The aux_info of siemgate's replay records in the account's audit stream, in the order stored."""
    services = open_services(data)
    try:
        account = services.store.get_account(account_uuid)
        rows = sorted(
            (seq, body) for batch in services.store.iter_events(account.id, AUDIT, 0, 2**62) for seq, *_, body in batch
        )
    finally:
        services.close()
    infos = [orjson.loads(orjson.loads(body).get("aux_info") or "{}") for _, body in rows if PURGE_RECORD not in body]
    return [i for i in infos if str(i.get("kind", "")).startswith("archive-replay")]


def test_a_replay_killed_part_way_through_a_file_left_a_record_naming_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services = open_services(data, archive_format="jsonl")
    try:
        account = services.store.create_account(new_id(), "Acme", services.clock())
        fill(services, account, days=2, per_day=25)
        archived = stream_uuids(services, account)
        assert services.retention.apply(accounts=[account])[0].error is None
        assert stream_uuids(services, account) == set()
        [stream] = list(manifests(services.settings.archive_path))
        first, second = stream.files
    finally:
        services.close()

    killed = _replay(data, killed=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    services = open_services(data)
    try:
        stored = stream_uuids(services, services.store.get_account(account.uuid))
    finally:
        services.close()
    assert len(stored) == 10 and stored < archived  # the first batch of the first file, no more
    records = _replay_records(data, account.uuid)
    assert [(r["kind"], r["file"]) for r in records] == [("archive-replay-started", first.path)], records
    # leaves 0..49 archived, 50 the purge's record: the replay began at 51 (this record, as the
    # stream replayed is the audit stream), its rows from 52 on
    assert records[0] == {
        "kind": "archive-replay-started",
        "feature": AUDIT.value,
        "file": first.path,
        "sha256": first.sha256,
        "events": 25,
        "index_from": 51,
    }

    done = _replay(data, killed=False)
    assert done.returncode == 0, done.stderr
    assert "50 event(s) from 2 file(s): 40 stored, 10 already there" in done.stderr, done.stderr
    services = open_services(data)
    try:
        acme = services.store.get_account(account.uuid)
        assert stream_uuids(services, acme) == archived
        # nothing stored twice: the events, and the records of the purge, the killed run and 2 a file
        assert services.store.count_events(acme.id, AUDIT) == len(archived) + 1 + 1 + 4
    finally:
        services.close()
    records = _replay_records(data, account.uuid)
    assert [(r["kind"], r["file"], r.get("stored"), r.get("duplicates")) for r in records] == [
        ("archive-replay-started", first.path, None, None),  # the killed run
        ("archive-replay-started", first.path, None, None),
        ("archive-replay", first.path, 15, 10),
        ("archive-replay-started", second.path, None, None),
        ("archive-replay", second.path, 25, 0),
    ]
