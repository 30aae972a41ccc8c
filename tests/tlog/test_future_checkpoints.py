"""A checkpoint dated in the future (docs/integrity.md, "Freshness"): whoever holds the log key can
date a checkpoint ahead so that it never looks stale. Every verifier refuses one dated more than
MAX_CLOCK_SKEW after the time it judges at (now, or `--as-of`), and the server does not publish
one its signer dated so. Before: a negative age counted as fresh, and every verifier said VALID.
(`follow` and `page` are in test_page_adversary.py, the archive in test_archive_verify.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.integrity.service import LogUnavailable
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import Store
from siemgate.tlog.cosignature import MAX_CLOCK_SKEW
from siemgate.tlog.merkle import tree_reader
from siemgate.tlog.proof import inclusion_proof
from siemgate.tlog.tlog_proof import TlogProof
from siemgate.tlog.verify_cli import main

from .tlog_kit import Kit, MemLog, export, make_kit

S = 1_000_000_000


def _signed_at(tmp: Path, offset: int) -> tuple[Kit, MemLog, str]:
    """A log of 5 events signed by a signer whose clock is `offset` seconds ahead."""
    kit = make_kit(tmp, clock=lambda: time.time() + offset)
    log = MemLog()
    log.append(5)
    return kit, log, kit.sign(log)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


# 60 s of margin either side of the allowed skew: the test and the verifier read the clock apart.
AHEAD = [(0, True), (MAX_CLOCK_SKEW - 60, True), (MAX_CLOCK_SKEW + 60, False), (10 * 365 * 86400, False)]


@pytest.mark.parametrize(("offset", "ok"), AHEAD)
def test_consistency_refuses_a_checkpoint_dated_in_the_future(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], offset: int, ok: bool
) -> None:
    kit, _, note = _signed_at(tmp_path, offset)
    (tmp_path / "cp").write_text(note)
    (tmp_path / "proof").write_text("")
    args = ["consistency", str(tmp_path / "cp"), str(tmp_path / "cp"), str(tmp_path / "proof"), "--key"]
    code, out = _run(capsys, *args, str(kit.public_key))
    if ok:
        assert code == 0 and "Result: VALID" in out, out
    else:
        assert code == 1 and out.startswith("INVALID checkpoint"), out
        assert "s after" in out and f"allowed clock skew {MAX_CLOCK_SKEW} s" in out, out


@pytest.mark.parametrize(("offset", "ok"), AHEAD)
def test_bundle_refuses_a_checkpoint_dated_in_the_future(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], offset: int, ok: bool
) -> None:
    kit, log, note = _signed_at(tmp_path, offset)
    bundle = export(log, [note], tmp_path / "bundle")
    code, out = _run(capsys, "bundle", str(bundle), "--key", str(kit.public_key))
    if ok:
        assert code == 0 and "Result: VALID" in out, out
    else:
        assert code == 1 and "does not verify" in out and "from the future" in out, out
        assert "Result: VALID" not in out, out


@pytest.mark.parametrize(("offset", "ok"), AHEAD)
def test_event_refuses_a_proof_whose_checkpoint_is_dated_in_the_future(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], offset: int, ok: bool
) -> None:
    kit, log, note = _signed_at(tmp_path, offset)
    proof = TlogProof(2, inclusion_proof(2, log.size, tree_reader(log.leaves())), note)
    (tmp_path / "event.json").write_bytes(log.bodies[2])
    (tmp_path / "proof").write_text(proof.text())
    args = ["event", str(tmp_path / "event.json"), str(tmp_path / "proof"), "--key", str(kit.public_key)]
    code, out = _run(capsys, *args)
    if ok:
        assert code == 0 and "Result: VALID" in out, out
    else:
        assert code == 1 and "INVALID the proof's checkpoint does not verify" in out and "from the future" in out


def test_as_of_is_the_time_checkpoints_must_not_be_dated_after(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--as-of T` judges the files as of T (their export time): a checkpoint dated more than
    MAX_CLOCK_SKEW after T cannot be in an export made at T. Before, it counted as fresh."""
    kit, log, note = _signed_at(tmp_path, 0)
    bundle = export(log, [note], tmp_path / "bundle")
    now = int(time.time())
    args = ["bundle", str(bundle), "--key", str(kit.public_key), "--as-of"]
    assert _run(capsys, *args, str(now - MAX_CLOCK_SKEW + 60))[0] == 0
    code, out = _run(capsys, *args, str(now - 3600))
    assert code == 1 and "from the future" in out and "Result: VALID" not in out, out
    (tmp_path / "proof").write_text("")
    code, out = _run(
        capsys, "consistency", str(bundle / "checkpoints" / "000000.checkpoint"),
        str(bundle / "checkpoints" / "000000.checkpoint"), str(tmp_path / "proof"),
        "--key", str(kit.public_key), "--as-of", str(now - 3600),
    )  # fmt: skip
    assert code == 1 and out.startswith("INVALID checkpoint") and "from the future" in out, out


def test_the_server_does_not_publish_a_checkpoint_its_signer_dated_in_the_future(store: Store, tmp_path: Path) -> None:
    """A signer whose clock runs an hour ahead (or that a thief of its key answers for): the server
    refuses its checkpoint, says why, and stores nothing that verifiers would refuse."""
    now_ns = [1_790_000_000 * S]
    kit = make_kit(tmp_path, clock=lambda: now_ns[0] / S + MAX_CLOCK_SKEW + 3600)
    config = load_settings(data_dir=tmp_path / "data", alerts_enabled=False, integrity_public_key_file=kit.public_key)
    services = build_services(config, store, lambda: now_ns[0])
    services.tlog.signer = kit.signer  # type: ignore[assignment]  # the signer's own code, in process
    account = store.create_account(new_id(), "Acme", now_ns[0])
    event = {
        "uuid": new_id(),
        "timestamp": "2026-09-21T00:00:00Z",
        "actor_uuid": new_id(),
        "action": "view",
        "object_type": "item",
        "object_uuid": "item-1",
        "session": {"uuid": new_id(), "ip": "192.0.2.1"},
    }
    services.writer.write(account.id, Feature.AUDITEVENTS, [event])
    with pytest.raises(LogUnavailable, match="from the future"):
        services.tlog.checkpoint(account.id, Feature.AUDITEVENTS)
    assert store.last_log_checkpoint(account.id, Feature.AUDITEVENTS) is None
