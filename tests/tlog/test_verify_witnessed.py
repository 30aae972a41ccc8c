"""`siemgate-verify --witness-key FILE --quorum N`: checkpoints need valid cosignatures from a quorum
of distinct trusted witnesses; a fork signed with the stolen log key but cosigned by no witness is
refused, while without the witness policy only the fork check inside one bundle would catch it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from siemgate.tlog.checkpoint import Checkpoint
from siemgate.tlog.cosignature import MAX_CLOCK_SKEW, cosign, create_witness_key, public_key_text
from siemgate.tlog.note import NoteSigner, sign_note
from siemgate.tlog.verify_cli import main
from siemgate.tlog.witness import Witness

from .tlog_kit import MemLog, export, make_kit


class _Witnesses:
    def __init__(self, tmp: Path, keyring_public: object, count: int) -> None:
        self.keys: list[NoteSigner] = []
        self.files: list[Path] = []
        self.witnesses: list[Witness] = []
        for i in range(count):
            key = create_witness_key(tmp / f"w{i}.key", f"witness{i}.test.example/w")
            self.keys.append(key)
            path = tmp / f"w{i}.pub"
            path.write_text(public_key_text([key.verifier()]))
            self.files.append(path)
            self.witnesses.append(Witness(key, keyring_public, tmp / f"w{i}.state"))  # type: ignore[arg-type]
        self.sizes = [0] * count

    def cosign(self, note: str, log: MemLog, which: range | list[int]) -> str:
        """`note` with the cosignatures of the witnesses `which` (each given a proof from what it saw)."""
        cp = Checkpoint.parse(note[: note.index("\n\n") + 1])
        lines = ""
        for i in which:
            old = self.sizes[i]
            proof = log.proof(old, cp.size) if old else []
            body = f"old {old}\n" + "".join(_b64(h) + "\n" for h in proof) + "\n" + note
            lines += self.witnesses[i].add_checkpoint(body.encode())
            self.sizes[i] = cp.size
        return note + lines

    def close(self) -> None:
        for w in self.witnesses:
            w.close()


def _b64(h: bytes) -> str:
    import base64

    return base64.b64encode(h).decode()


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_bundle_needs_a_quorum_of_cosignatures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kit = make_kit(tmp_path)
    ws = _Witnesses(tmp_path, kit.keyring.public(), 3)
    log, notes, sizes = MemLog(), [], []
    try:
        for n, which in ((10, [0, 1, 2]), (15, [0, 1]), (15, [0])):
            log.append(n)
            notes.append(ws.cosign(kit.sign(log), log, which))
            sizes.append(log.size)
    finally:
        ws.close()
    bundle = export(log, notes, tmp_path / "bundle", sizes)
    base = ["bundle", str(bundle), "--key", str(kit.public_key), "--max-age", "0"]
    w = [a for f in ws.files for a in ("--witness-key", str(f))]
    code, out, _ = _run(capsys, *base, *w[:2], "--quorum", "1")
    assert code == 0, out
    # Quorum 2 of the three: the last checkpoint (size 40) and the one of size 25 two has one cosignature only.
    code, out, _ = _run(capsys, *base, *w, "--quorum", "2")
    assert code == 1 and "valid cosignatures from 1 trusted witness(es) (witness0.test.example/w)" in out
    assert "the quorum is 2" in out
    # By default every witness given must have cosigned.
    code, out, _ = _run(capsys, *base, *w)
    assert code == 1 and "from 2 trusted witness(es)" in out and "the quorum is 3" in out
    # A witness key file in place of the log's, or a quorum that cannot be met, is a usage error.
    assert _run(capsys, *base, "--quorum", "1")[0] == 2
    code, _, err = _run(capsys, *base, *w[:2], "--quorum", "2")
    assert code == 2 and "between 1 and the number of distinct witness keys given (1)" in err
    code, _, err = _run(capsys, *base, "--witness-key", str(kit.public_key))
    assert code == 2 and "type 0x04" in err


def test_fork_with_the_stolen_log_key_is_refused_for_lack_of_cosignatures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An attacker with the log key signs a rewritten history and exports it alone (so no two
    checkpoints of one size meet in the bundle): its signatures verify, but no witness cosigned it."""
    kit = make_kit(tmp_path)
    ws = _Witnesses(tmp_path, kit.keyring.public(), 1)
    honest = MemLog()
    honest.append(12)
    try:
        ws.cosign(kit.sign(honest), honest, [0])
        fork = MemLog()
        fork.append(12)
        forged = sign_note(
            Checkpoint(fork.origin, 12, fork.root(), 1_767_225_700).text(), kit.keyring.signers_for(fork.origin)
        )
        with pytest.raises(Exception, match="forked"):
            ws.cosign(forged, fork, [0])  # the witness refuses to cosign it
    finally:
        ws.close()
    bundle = export(fork, [forged], tmp_path / "forged", [12])
    base = ["bundle", str(bundle), "--key", str(kit.public_key), "--max-age", "0"]
    assert _run(capsys, *base)[0] == 0  # the log's signature alone cannot tell
    code, out, _ = _run(capsys, *base, "--witness-key", str(ws.files[0]))
    assert code == 1 and "quorum is 1" in out


def test_consistency_needs_the_quorum_on_both_checkpoints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kit = make_kit(tmp_path)
    ws = _Witnesses(tmp_path, kit.keyring.public(), 1)
    log = MemLog()
    try:
        log.append(5)
        old = ws.cosign(kit.sign(log), log, [0])
        log.append(4)
        new_note = kit.sign(log)
        new = ws.cosign(new_note, log, [0])
    finally:
        ws.close()
    for name, text in (("old", old), ("new", new), ("bare", new_note)):
        (tmp_path / f"{name}.cp").write_text(text)
    (tmp_path / "proof").write_text("".join(_b64(h) + "\n" for h in log.proof(5, 9)))
    args = ["consistency", str(tmp_path / "old.cp"), "--key", str(kit.public_key), "--max-age", "0"]
    w = ["--witness-key", str(ws.files[0])]
    assert _run(capsys, *args[:2], str(tmp_path / "new.cp"), str(tmp_path / "proof"), *args[2:], *w)[0] == 0
    code, out, _ = _run(capsys, *args[:2], str(tmp_path / "bare.cp"), str(tmp_path / "proof"), *args[2:], *w)
    assert code == 1 and "INVALID checkpoint" in out and "quorum is 1" in out


@pytest.mark.parametrize(
    ("offset", "problem"),
    [
        (0, None),
        (MAX_CLOCK_SKEW, None),
        (-MAX_CLOCK_SKEW, None),
        (-MAX_CLOCK_SKEW - 1, "s before the checkpoint's time"),
        ("future", "in the future"),
    ],
)
def test_a_cosignature_timestamped_before_its_checkpoint_or_in_the_future_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], offset: int | str, problem: str | None
) -> None:
    """C2SP tlog-cosignature: verifiers MAY reject cosignatures timestamped in the future; and a
    witness cannot have seen a checkpoint before the log signed it, so a cosignature timestamped
    before the checkpoint's time says the log's `time` line (on which freshness is judged) is
    later than the truth, or the witness's clock is wrong. Both, beyond MAX_CLOCK_SKEW, refuse the
    checkpoint. Before: any timestamp was accepted."""
    kit = make_kit(tmp_path)
    witness = create_witness_key(tmp_path / "w.key", "witness.test.example/w")
    (tmp_path / "w.pub").write_text(public_key_text([witness.verifier()]))
    log = MemLog()
    log.append(5)
    note = kit.sign(log)
    cp_time = Checkpoint.parse(note[: note.index("\n\n") + 1]).time
    text = note[: note.index("\n\n") + 1]
    timestamp = int(time.time()) + MAX_CLOCK_SKEW + 3600 if offset == "future" else cp_time + int(offset)
    (tmp_path / "cp").write_text(note + cosign(witness, text, timestamp))
    (tmp_path / "proof").write_text("")
    args = ["consistency", str(tmp_path / "cp"), str(tmp_path / "cp"), str(tmp_path / "proof")]
    code, out, _ = _run(capsys, *args, "--key", str(kit.public_key), "--witness-key", str(tmp_path / "w.pub"))
    if problem is None:
        assert code == 0, out
    else:
        assert code == 1 and "the cosignature by witness witness.test.example/w is timestamped" in out, out
        assert problem in out, out
