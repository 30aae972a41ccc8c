"""`siemgate account delete` stopped after its transaction committed and before it removed the
account's archive folder (killed, a full disk) left the deleted account's archived events on disk
for good: the account is gone, so running the command again said "not found". Run again, it
finishes the deletion (docs/setup.md, "Deleting an account")."""

from __future__ import annotations

from pathlib import Path

import pytest

from siemgate.accounts.actor import CLI
from siemgate.errors import SiemgateError, Unauthorized
from siemgate.model.encoding import encode_event
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.store.base import Account, NewEvent
from support.procs import cli_env, run_cli, services_at


def test_running_the_deletion_again_removes_the_archive_it_left(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with services_at(data) as s:
        account = s.store.create_account(new_id(), "Leaving", s.clock())
        archive = s.offboarding.archive_dir(account)
        (archive / "signinattempts" / "2026").mkdir(parents=True)
        (archive / "signinattempts" / "2026" / "2026-01-01.jsonl.gz").write_bytes(b"archived events")
        # what the command's transaction commits; the process is stopped before removing the folder
        s.store.delete_account_rows(account.id, account.uuid, account.name, "command line (test)", "{}", s.clock())
    env = cli_env(data)
    done = run_cli(env, "account", "delete", "Leaving", "--yes")
    assert "already deleted" in done.stderr and "1 files" in done.stderr, done.stderr
    assert not archive.exists()
    again = run_cli(env, "account", "delete", account.uuid, "--yes", ok=False)
    assert again.returncode == 1 and "not found" in again.stderr and "Traceback" not in again.stderr


def _stopped_part_way(data: Path, name: str) -> tuple[Account, Path]:
    """An account with events and an archive folder whose deletion was stopped after its first
    steps (the store refused to delete its events: a fault, as a kill would stop it)."""
    with services_at(data) as s:
        account = s.store.create_account(new_id(), name, s.clock())
        key, _ = s.ingest_keys.create(account, "producer", ALL_FEATURES)
        s.store.insert_events(account.id, Feature.AUDITEVENTS, [_event(i) for i in range(20)])
        archive = s.offboarding.archive_dir(account)
        archive.mkdir(parents=True)
        (archive / "auditevents.jsonl.gz").write_bytes(b"archived events")
        with s.store._tx() as conn:
            conn.execute("CREATE TRIGGER stop BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'killed'); END")
        with pytest.raises(SiemgateError):
            s.delete_account(CLI, account, name)
        with s.store._tx() as conn:
            conn.execute("DROP TRIGGER stop")
        with pytest.raises(Unauthorized):  # unusable from the deletion's first step
            s.ingest_keys.authenticate(f"Bearer {key}", Feature.AUDITEVENTS)
    return account, archive


def _event(i: int) -> NewEvent:
    body = {"uuid": new_id(), "timestamp": "2026-01-01T00:00:00Z", "action": "join", "object_type": "user"}
    return NewEvent(body["uuid"], 1_767_225_600_000_000_000 + i, encode_event(Feature.AUDITEVENTS, body)[0], None)


def test_running_the_deletion_again_finishes_one_stopped_part_way(tmp_path: Path) -> None:
    data = tmp_path / "data"
    account, archive = _stopped_part_way(data, "Halfway")
    with services_at(data) as s:
        assert [a.uuid for a, _ in s.store.pending_account_deletions()] == [account.uuid]
        assert s.store.count_events(account.id, Feature.AUDITEVENTS) == 20
    done = run_cli(cli_env(data), "account", "delete", "Halfway", "--yes")
    assert "already deleted" in done.stderr and "1 files" in done.stderr, done.stderr
    assert not archive.exists()
    with services_at(data) as s:
        assert s.store.pending_account_deletions() == []
        assert s.store.count_events(account.id, Feature.AUDITEVENTS) == 0
        assert [op.action for op in s.store.list_operations() if op.account_uuid == account.uuid] == ["delete account"]


def test_the_server_finishes_a_deletion_stopped_part_way_at_start(tmp_path: Path) -> None:
    """What `siemgate serve` runs at start (composition/web.py)."""
    data = tmp_path / "data"
    account, archive = _stopped_part_way(data, "Halfway")
    with services_at(data) as s:
        s.finish_account_deletions()
        assert s.store.pending_account_deletions() == []
        assert s.store.count_events(account.id, Feature.AUDITEVENTS) == 0
    assert not archive.exists()
