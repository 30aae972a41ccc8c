"""`siemgate account delete` stopped after its transaction committed and before it removed the
account's archive folder (killed, a full disk) left the deleted account's archived events on disk
for good: the account is gone, so running the command again said "not found". Run again, it
finishes the deletion (docs/setup.md, "Deleting an account")."""

from __future__ import annotations

from pathlib import Path

from siemgate.model.ids import new_id
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
