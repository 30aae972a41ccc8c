"""An operator who controls the archive folder against `siemgate-verify archive` (docs/integrity.md,
"Verifying archives"): archive folders written by hand from a log in memory, each with one lie —
another account's checkpoint and events added to a manifest that names no origin, rows given each
other's indices, a second event at a taken index, a row cut out with the manifest rewritten to
match. The real archive writer and retention are exercised by test_archive_verify.py."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from siemgate.tlog import archive_verify
from siemgate.tlog.archive_index import INDEX_FORMAT
from siemgate.tlog.keys import PublicKeyring

from .tlog_kit import NAME, T0, Kit, MemLog, make_kit

OTHER = f"{NAME}/ACCTB222222222222222222222/auditevents"


class Folder:
    """A stream's archive folder: JSON Lines day files with their sidecars, and the manifest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self.files: dict[str, Any] = {}

    def add(self, name: str, rows: list[tuple[int, bytes, int]], note: str) -> None:
        """A day file of (log index, body, timestamp ns) rows tied to the checkpoint `note`."""
        with gzip.open(self.path / name, "wb") as f:
            f.writelines(body + b"\n" for _, body, _ in rows)
        header = json.dumps({"format": INDEX_FORMAT}) + "\n"
        sidecar = f"{name}.log.json"
        (self.path / sidecar).write_text(header + "".join(json.dumps([i, ts]) + "\n" for i, _, ts in rows))
        digest = hashlib.sha256((self.path / name).read_bytes()).hexdigest()
        self.files[name] = {
            "format": "jsonl",
            "sha256": digest,
            "index_file": sidecar,
            "checkpoint": note,
            "events": len(rows),
        }

    def write(self, origin: str | None) -> None:
        manifest: dict[str, Any] = {"version": 1, "files": self.files}
        if origin is not None:
            manifest["origin"] = origin
        (self.path / "manifest.json").write_text(json.dumps(manifest))

    def verify(self, kit: Kit) -> list[str]:
        report = archive_verify.verify_archive(self.path, PublicKeyring.load(kit.public_key), max_age=0)
        return report.lines()


def rows(log: MemLog, indices: range | list[int]) -> list[tuple[int, bytes, int]]:
    return [(i, log.bodies[i], log.entries[i].ts_ns) for i in indices]


Scene = tuple[Kit, MemLog, str, "Folder"]


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    kit = make_kit(tmp_path)
    log = MemLog()
    log.append(10)
    folder = Folder(tmp_path / "archive" / "ACCTAAAAAAAAAAAAAAAAAAAAAA" / "auditevents")
    return kit, log, kit.sign(log), folder


def test_an_honest_archive_verifies(scene: Scene) -> None:
    kit, log, note, folder = scene
    folder.add("d1.jsonl.gz", rows(log, range(6)), note)
    folder.add("d2.jsonl.gz", rows(log, range(6, 10)), note)
    folder.write(log.origin)
    lines = folder.verify(kit)
    assert lines[-1] == "Result: VALID (10 archived)", lines


@pytest.mark.parametrize("named", [False, True])
def test_another_accounts_checkpoint_and_events_are_refused(scene: Scene, named: bool) -> None:
    """Account B's log copies A's ten events and goes on with five of its own; its checkpoint is
    honestly signed for B. Put in A's archive with those five events, it must not pass as A's —
    also when the manifest names no origin (it passed then, as the log '?')."""
    kit, log, note, folder = scene
    other = MemLog(origin=OTHER, bodies=list(log.bodies), entries=list(log.entries))
    other.append(5, T0 + 10**12)
    folder.add("d1.jsonl.gz", rows(log, range(10)), note)
    folder.add("d2.jsonl.gz", rows(other, range(10, 15)), kit.sign(other))
    folder.write(log.origin if named else None)
    lines = folder.verify(kit)
    assert lines[-1].startswith("Result: INVALID"), lines
    assert any(f"{OTHER} size 15" in line and f"is of another log than {log.origin}" in line for line in lines), lines
    assert lines[0].startswith(f"Verifying {log.origin} archive"), lines


def test_rows_given_each_others_indices_are_named(scene: Scene) -> None:
    kit, log, note, folder = scene
    swapped = rows(log, range(10))
    swapped[3], swapped[4] = (3, *swapped[4][1:]), (4, *swapped[3][1:])
    folder.add("d1.jsonl.gz", swapped, note)
    folder.write(log.origin)
    lines = folder.verify(kit)
    # without the log's entries only the root tells, over the range since the last size that matched
    assert lines[-1].startswith("Result: INVALID (1 problems, first bad index 0"), lines


def test_a_second_event_at_a_taken_index_is_named(scene: Scene) -> None:
    kit, log, note, folder = scene
    forged = MemLog()
    forged.append(6)
    folder.add("d1.jsonl.gz", rows(log, range(10)), note)
    folder.add("d2.jsonl.gz", [(5, forged.bodies[5], forged.entries[5].ts_ns)], note)
    folder.write(log.origin)
    lines = folder.verify(kit)
    assert lines[-1].startswith("Result: INVALID") and any(line.startswith("INVALID index 5") for line in lines), lines


def test_a_row_cut_out_with_the_manifest_rewritten_is_named(scene: Scene) -> None:
    kit, log, note, folder = scene
    folder.add("d1.jsonl.gz", rows(log, [i for i in range(10) if i != 7]), note)
    folder.write(log.origin)
    lines = folder.verify(kit)
    assert lines[-1].startswith("Result: INVALID") and any(line.startswith("INVALID index 7") for line in lines), lines
