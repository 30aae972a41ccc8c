"""Two processes carrying on one stopped account deletion at once (a server finishing it at start
while an operator runs `account delete` again) both removed the account's archive folder with
`shutil.rmtree`: the one that found a file or folder already gone failed half-way with a
traceback. Removal now tolerates the other's progress (accounts.offboarding.remove_folder)."""

from __future__ import annotations

import threading
from pathlib import Path

from siemgate.model.ids import new_id
from support.procs import services_at

DAYS = 40
FILES = 150  # per folder: 6,000 files, long enough to remove that the two overlap


def test_two_deletions_carried_on_at_once_both_finish_and_leave_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with services_at(data) as s:
        account = s.store.create_account(new_id(), "Leaving", s.clock())
        archive = s.offboarding.archive_dir(account)
        for day in range(DAYS):
            folder = archive / "auditevents" / f"{day:04d}"
            folder.mkdir(parents=True)
            for n in range(FILES):
                (folder / f"{n}.jsonl.gz").write_bytes(b"x")
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "keep").write_bytes(b"not the archive's")
        (archive / "auditevents" / "link").symlink_to(outside)
        s.store.delete_account_rows(account.id, account.uuid, account.name, "command line (test)", "{}", s.clock())
        start = threading.Barrier(2)
        errors: list[BaseException] = []
        results: list[object] = []

        def carry_on() -> None:
            start.wait()
            try:
                results.append(s.offboarding.finish_interrupted(account.uuid))
            except BaseException as exc:  # what the test looks for
                errors.append(exc)

        threads = [threading.Thread(target=carry_on) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == [], errors
        assert not archive.exists()
        assert (outside / "keep").read_bytes() == b"not the archive's"  # a symlink inside is not followed


def test_a_symlink_in_place_of_the_archive_folder_is_removed_not_what_it_points_to(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with services_at(data) as s:
        account = s.store.create_account(new_id(), "Linked", s.clock())
        outside = tmp_path / "outside"
        (outside / "auditevents").mkdir(parents=True)
        (outside / "auditevents" / "keep").write_bytes(b"x")
        archive = s.offboarding.archive_dir(account)
        archive.parent.mkdir(parents=True, exist_ok=True)
        archive.symlink_to(outside)
        s.offboarding.carry_out(account, "command line (test)", "{}")
        assert not archive.is_symlink() and not archive.exists()
        assert (outside / "auditevents" / "keep").exists()
