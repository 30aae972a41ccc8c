"""Files that must survive a power loss (the follower's state, key files, archive manifests) are
written durably: the new file fsynced before it is renamed over the old one, then the folder
fsynced (tlog.durable). Without the first fsync a power loss can leave an empty state file, and
the follower would forget the checkpoint it holds and accept a rewritten log."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from siemgate.retention.archive import _write_json_atomic
from siemgate.tlog.durable import remove_dead_temporaries
from siemgate.tlog.follow import load_state, save_state
from siemgate.tlog.keys import write_private
from siemgate.tlog.verify_page import StreamState

Operation = tuple[str, ...]


def _recorded(monkeypatch: pytest.MonkeyPatch) -> list[Operation]:
    """The fsyncs (of a file or a folder, by path) and renames made from now on, in order."""
    done: list[Operation] = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd: int) -> None:
        kind = "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        done.append(("fsync", kind, os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def recording_replace(src: Any, dst: Any) -> None:
        done.append(("replace", str(src), str(dst)))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    return done


WRITERS: dict[str, Callable[[Path], None]] = {
    "follow state": lambda path: save_state(path, StreamState(next_idx=7)),
    "key file": lambda path: write_private(path, "secret\n"),
    "archive manifest": lambda path: _write_json_atomic(path, {"version": 2}),
}


@pytest.mark.parametrize("writer", WRITERS)
def test_the_file_is_fsynced_before_the_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    path = tmp_path / "target"
    path.write_text("old\n")
    done = _recorded(monkeypatch)
    WRITERS[writer](path)
    renames = [op for op in done if op[0] == "replace"]
    assert len(renames) == 1 and renames[0][2] == str(path), done
    tmp = renames[0][1]
    assert done == [("fsync", "file", tmp), renames[0], ("fsync", "folder", str(tmp_path))]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]


def test_the_follow_state_reads_back_and_a_failed_write_leaves_the_old_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    save_state(path, StreamState(next_idx=7))
    assert load_state(path).next_idx == 7

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_state(path, StreamState(next_idx=9))
    monkeypatch.undo()
    assert load_state(path).next_idx == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_key_file_is_private_even_over_a_temporary_file_left_open_to_others(tmp_path: Path) -> None:
    path = tmp_path / "signer.key"
    left = tmp_path / f".signer.key.tmp-{os.getpid()}"
    left.write_text("left by a killed run\n")
    left.chmod(0o644)
    write_private(path, "secret\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "secret\n" and not left.exists()


def test_only_temporary_files_of_writers_that_are_gone_are_removed(tmp_path: Path) -> None:
    """A writer killed before its rename leaves `.<name>.tmp-<pid>`; one whose process is gone is
    removed, a live process's (it may be writing) and other files are kept."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    with subprocess.Popen(["sleep", "30"]) as live:
        try:
            target = tmp_path / "checkpoints.db"
            names = [
                f".checkpoints.db.tmp-{dead.pid}",
                f".checkpoints.db.tmp-{live.pid}",
                ".other.tmp-1",
                "checkpoints.db",
            ]
            for name in names:
                (tmp_path / name).write_bytes(b"x")
            assert remove_dead_temporaries(target) == 1
            assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])
        finally:
            live.kill()
