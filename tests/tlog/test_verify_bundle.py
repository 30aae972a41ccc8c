"""`siemgate-verify bundle` and `consistency` on bundles as `siemgate log export` writes them: a valid
bundle passes; each tampering is reported naming the first bad index and the checkpoint."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from siemgate.tlog.bundle import ENTRIES, EVENTS, MANIFEST, PROOFS, format_hashes
from siemgate.tlog.checkpoint import Checkpoint, unverified_text
from siemgate.tlog.entry import ENTRY_SIZE
from siemgate.tlog.verify_cli import main

from .tlog_kit import T0, MemLog, export, make_kit

Checked = tuple[int, str]


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, MemLog, list[str], list[int], Path]:
    """A log of 40 events signed at sizes 10, 25, 25 (heartbeat) and 40; its bundle and public key."""
    kit = make_kit(tmp_path)
    log, notes, sizes = MemLog(), [], []
    for n in (10, 15, 0, 15):
        log.append(n)
        notes.append(kit.sign(log))
        sizes.append(log.size)
    bundle = export(log, notes, tmp_path / "bundle", sizes)
    return bundle, log, notes, sizes, kit.public_key


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> Checked:
    code = main(list(args))
    return code, capsys.readouterr().out


def bundle_check(capsys: pytest.CaptureFixture[str], bundle: Path, key: Path, *extra: str) -> Checked:
    return verify(capsys, "bundle", str(bundle), "--key", str(key), *extra)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_valid_bundle(
    capsys: pytest.CaptureFixture[str], signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    bundle, _log, _, _, key = signed
    code, out = bundle_check(capsys, bundle, key)
    assert code == 0, out
    assert "Result: VALID: indices 0..39" in out


def test_changed_body_byte(
    capsys: pytest.CaptureFixture[str], signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    bundle, _, _, _, key = signed
    lines = _lines(bundle / EVENTS)
    lines[17] = lines[17].replace(b'"update"', b'"updatE"')
    (bundle / EVENTS).write_bytes(b"".join(lines))
    code, out = bundle_check(capsys, bundle, key)
    assert code == 1
    assert "INVALID index 17 [checkpoint" in out and "size 25" in out and "altered or replaced" in out
    assert "first bad index 17" in out


def test_deleted_event(
    capsys: pytest.CaptureFixture[str], signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    bundle, _, _, _, key = signed
    lines = _lines(bundle / EVENTS)
    del lines[4]
    (bundle / EVENTS).write_bytes(b"".join(lines))
    code, out = bundle_check(capsys, bundle, key)
    assert code == 1 and "INVALID index 4 [checkpoint" in out and "size 10" in out and "deleted" in out


def test_deleted_event_with_its_entry(
    capsys: pytest.CaptureFixture[str], signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    bundle, log, notes, sizes, key = signed
    del log.bodies[12], log.entries[12]
    export(log, notes, bundle, sizes)
    code, out = bundle_check(capsys, bundle, key)
    assert code == 1
    assert "INVALID index 10 [checkpoint" in out and "size 25" in out and "between indices 10 and 24" in out


def test_inserted_row_with_taken_and_fresh_index(
    capsys: pytest.CaptureFixture[str], signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    bundle, log, notes, sizes, key = signed
    lines = _lines(bundle / EVENTS)
    forged = b"30\t" + log.bodies[3] + b"\n"
    (bundle / EVENTS).write_bytes(b"".join([*lines[:30], forged, *lines[31:]]))
    code, out = bundle_check(capsys, bundle, key)
    assert code == 1 and "INVALID index 30 [checkpoint" in out
    # A fresh index beyond the log: an event and entry appended without a signed checkpoint.
    log.append(1)
    export(log, notes, bundle, sizes)
    code, out = bundle_check(capsys, bundle, key)
    assert code == 1 and "INVALID index 40" in out and "not covered by any signed checkpoint" in out


def test_swapped_events(
    capsys: pytest.CaptureFixture[str], signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    bundle, _, _, _, key = signed
    lines = _lines(bundle / EVENTS)
    a, b = lines[21].split(b"\t", 1), lines[22].split(b"\t", 1)
    lines[21], lines[22] = a[0] + b"\t" + b[1], b[0] + b"\t" + a[1]
    (bundle / EVENTS).write_bytes(b"".join(lines))
    code, out = bundle_check(capsys, bundle, key)
    assert code == 1 and "first bad index 21" in out


def test_rewritten_entry_and_body_together(
    capsys: pytest.CaptureFixture[str], signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    bundle, log, notes, sizes, key = signed
    log.bodies[31] = log.bodies[31].replace(b'"update"', b'"delete"')
    from siemgate.tlog.entry import entry_for

    log.entries[31] = entry_for(log.entries[31].ts_ns, log.bodies[31])
    export(log, notes, bundle, sizes)
    code, out = bundle_check(capsys, bundle, key)
    assert code == 1 and "INVALID index 25 [checkpoint" in out and "size 40" in out


def test_edited_stored_tree_hash(
    capsys: pytest.CaptureFixture[str], signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    bundle, log, _, _, key = signed
    proof = log.proof(25, 40)
    proof[1] = bytes(32)
    (bundle / PROOFS / "25-40.consistency").write_text(format_hashes(proof))
    code, out = bundle_check(capsys, bundle, key)
    assert code == 1 and "consistency proof 25 -> 40 does not verify" in out
    assert "stored tree hash over indices" in out and "[checkpoint" in out


def test_rollback_after_a_newer_checkpoint_was_exported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    bundle, log, notes, sizes, key = signed
    saved = tmp_path / "newest.checkpoint"
    saved.write_text(notes[-1])
    # The database goes back to size 25 and takes new, different events from there.
    old = MemLog(bodies=log.bodies[:25], entries=log.entries[:25])
    old.append(20, start_ns=T0 + 10**12)
    export(old, notes[:3], bundle, sizes[:3])
    code, out = bundle_check(capsys, bundle, key, "--checkpoint", str(saved))
    assert code == 1 and "INVALID index 25 [checkpoint" in out and "size 40" in out


def test_truncated_newest_events(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    bundle, log, notes, sizes, key = signed
    saved = tmp_path / "newest.checkpoint"
    saved.write_text(notes[-1])
    short = MemLog(bodies=log.bodies[:33], entries=log.entries[:33])
    export(short, notes[:3], bundle, sizes[:3])
    # Without an outside checkpoint the only signal is freshness...
    code, out = bundle_check(capsys, bundle, key, "--as-of", str(10**10))
    assert code == 1 and "STALE" in out and "INVALID index 25" in out  # 25..32 are not covered
    # ...with the checkpoint saved earlier, the missing indices are named.
    code, out = bundle_check(capsys, bundle, key, "--checkpoint", str(saved))
    assert code == 1 and "INVALID index 33" in out and "indices 33..39 are missing" in out


def test_two_checkpoints_of_one_size(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    bundle, log, _notes, _sizes, key = signed
    other_kit_dir = tmp_path / "fork"
    other_kit_dir.mkdir()
    # The same key (a stolen one) signs another history of size 40.
    from siemgate.tlog.checkpoint import Checkpoint
    from siemgate.tlog.keys import SignerKeyring
    from siemgate.tlog.note import sign_note

    ring = SignerKeyring.load(tmp_path / "signer.keys")
    # Dated now: a fork dated in the future would be refused for that alone (check_not_future).
    fork = sign_note(Checkpoint(log.origin, 40, bytes(32), int(time.time())).text(), ring.signers_for(log.origin))
    (bundle / "checkpoints" / "fork.checkpoint").write_text(fork)
    code, out = bundle_check(capsys, bundle, key)
    assert code == 1 and "two checkpoints of size 40" in out and "INVALID index 39" in out


def test_forged_and_foreign_checkpoints_and_bad_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    bundle, _log, notes, _, key = signed
    (bundle / "checkpoints" / "000001.checkpoint").write_text(notes[1].replace("\n25\n", "\n26\n"))
    code, out = bundle_check(capsys, bundle, key)
    assert code == 1 and "000001.checkpoint does not verify" in out
    entries = (bundle / ENTRIES).read_bytes()
    (bundle / ENTRIES).write_bytes(entries[: 7 * ENTRY_SIZE + 3])
    code, out = bundle_check(capsys, bundle, key)
    assert code == 1 and "ends at index 7" in out
    (bundle / MANIFEST).write_text("{}")
    code, out = bundle_check(capsys, bundle, key)
    assert code == 1 and "format" in out


def test_stale_and_as_of(
    capsys: pytest.CaptureFixture[str], signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    bundle, _, _, _, key = signed
    code, out = bundle_check(capsys, bundle, key, "--as-of", "2300-01-01T00:00:00Z")
    assert code == 1 and "STALE" in out
    assert bundle_check(capsys, bundle, key, "--as-of", "2300-01-01T00:00:00Z", "--max-age", "0")[0] == 0


def test_purged_bodies_older_than_the_cutoff(
    capsys: pytest.CaptureFixture[str], signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    bundle, log, notes, sizes, key = signed
    cutoff = log.entries[5].ts_ns
    held = {i: b for i, b in enumerate(log.bodies) if i >= 5}
    export(log, notes, bundle, sizes, bodies=held, cutoff_ns=cutoff)
    code, out = bundle_check(capsys, bundle, key)
    assert code == 0 and "5 bodies purged" in out
    del held[6]
    export(log, notes, bundle, sizes, bodies=held, cutoff_ns=cutoff)
    code, out = bundle_check(capsys, bundle, key)
    assert code == 1 and "INVALID index 6" in out and "not older than the retention cutoff" in out


def test_a_cutoff_declared_as_of_now_excuses_no_missing_body(
    capsys: pytest.CaptureFixture[str], signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    """bundle.json is not signed: an exporter that drops bodies and declares the retention cutoff
    to be the export time used to get `VALID … bodies purged`. Retention keeps events at least a
    day, so a cutoff less than a day before the newest checkpoint is no retention cutoff."""
    bundle, log, notes, sizes, key = signed
    newest = max(Checkpoint.parse(unverified_text(n)).time for n in notes)
    held = {i: b for i, b in enumerate(log.bodies) if i not in (3, 4)}
    export(log, notes, bundle, sizes, bodies=held, cutoff_ns=newest * 1_000_000_000)
    code, out = bundle_check(capsys, bundle, key)
    assert code == 1 and "INVALID index 3" in out and "excuses no missing body" in out, out
    # a day and more before it, as an honest export of a one-day retention declares, still excuses them
    export(log, notes, bundle, sizes, bodies=held, cutoff_ns=(newest - 86400) * 1_000_000_000)
    code, out = bundle_check(capsys, bundle, key)
    assert code == 0 and "2 bodies purged" in out, out


def test_recovery_is_reported_as_such(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    log, notes = MemLog(), []
    log.append(12)
    notes.append(kit.sign(log))
    restored = MemLog(bodies=log.bodies[:8], entries=log.entries[:8])
    restored.append(3, start_ns=T0 + 10**12)
    rec, cp = kit.signer.recover(log.origin, restored.size, restored.root(), "restored the nightly backup")
    restored.append(2, start_ns=T0 + 2 * 10**12)
    last = kit.sign(restored)
    bundle = export(restored, [*notes, cp, last], tmp_path / "b", [11, 13], recoveries=[rec])
    code, out = bundle_check(capsys, bundle, kit.public_key)
    assert code == 0, out
    assert "NOTICE RECOVERY" in out and "restored the nightly backup" in out and "replaced by the recovery" in out
    # Without the signed recovery statement, the replaced history is a rewrite.
    shutil.rmtree(bundle / "recoveries")
    code, out = bundle_check(capsys, bundle, kit.public_key)
    assert code == 1 and "INVALID index 0" in out and "size 12" in out


def test_consistency_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    _, log, notes, _, key = signed
    old, new, proof = tmp_path / "old", tmp_path / "new", tmp_path / "proof"
    old.write_text(notes[0])
    new.write_text(notes[3])
    proof.write_text(format_hashes(log.proof(10, 40)))
    args = ["consistency", str(old), str(new), str(proof), "--key", str(key)]
    code, out = verify(capsys, *args)
    assert code == 0 and "VALID: size 40 extends size 10" in out
    proof.write_text(format_hashes(log.proof(10, 40)[:-1]))
    code, out = verify(capsys, *args)
    assert code == 1 and "INVALID index 9" in out and "size 40" in out
    code, out = verify(capsys, "consistency", str(new), str(old), str(proof), "--key", str(key))
    assert code == 1 and "INVALID index 10" in out and "removed" in out
    proof.write_text("not base64!\n")
    assert verify(capsys, *args)[0] == 1
    code, out = verify(capsys, *args[:-1], str(tmp_path / "missing"))
    assert code == 2


def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, signed: tuple[Path, MemLog, list[str], list[int], Path]
) -> None:
    bundle, _, _, _, key = signed
    with pytest.raises(SystemExit) as exc:
        main(["bundle", str(bundle)])
    assert exc.value.code == 2
    assert main(["bundle", str(tmp_path / "nope"), "--key", str(key)]) == 2
    (tmp_path / "bad.pub").write_text("garbage\n")
    assert main(["bundle", str(bundle), "--key", str(tmp_path / "bad.pub")]) == 2
    assert main(["bundle", str(bundle), "--key", str(key), "--as-of", "yesterday"]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("saved", [False, True])
def test_a_larger_checkpoint_dated_before_a_smaller_one_is_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], saved: bool
) -> None:
    """The signer dates each checkpoint after the one before, so a larger tree dated before a smaller
    one was signed with a false time (a stolen key, or a retired one trusted for its lifetime),
    whether both are in the bundle or the smaller is the auditor's saved one (`--checkpoint`).
    Before: VALID, judged fresh on the smaller one."""
    from siemgate.tlog.note import sign_note

    kit = make_kit(tmp_path)
    log = MemLog()
    log.append(8)
    now = int(time.time())
    honest = sign_note(Checkpoint(log.origin, 5, log.root(5), now - 100).text(), kit.keyring.signers_for(log.origin))
    forged = sign_note(Checkpoint(log.origin, 8, log.root(8), now - 200).text(), kit.keyring.signers_for(log.origin))
    (tmp_path / "saved").write_text(honest)
    bundle = export(log, [forged] if saved else [honest, forged], tmp_path / "bundle", [5, 8])
    extra = ["--checkpoint", str(tmp_path / "saved")] if saved else []
    code, out = bundle_check(capsys, bundle, kit.public_key, "--max-age", "0", *extra)
    assert code == 1 and "INVALID index 5" in out and "is dated before" in out, out
