"""The checkpoint cadence (on change, heartbeat, day close) and publishing through the signer,
including catching up after a lost checkpoint and refusing to paper over a rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from siemgate.tlog.checkpoint import Checkpoint, open_checkpoint
from siemgate.tlog.merkle import tree_reader
from siemgate.tlog.publisher import Cadence, SignerAhead, due, publish

from .tlog_kit import ORIGIN, MemLog, make_kit

DAY0 = 1_767_225_600  # 2026-01-01T00:00:00Z
ROOT = bytes(32)


def test_cadence() -> None:
    c = Cadence(min_interval=10, heartbeat=3600)
    last = Checkpoint(ORIGIN, 5, ROOT, DAY0 + 100)
    assert due(c, 0, None, DAY0) is None
    assert due(c, 1, None, DAY0) == "first"
    assert due(c, 6, last, DAY0 + 105) is None  # rate-limited
    assert due(c, 6, last, DAY0 + 110) == "change"
    assert due(c, 5, last, DAY0 + 3699) is None
    assert due(c, 5, last, DAY0 + 3700) == "heartbeat"
    assert due(c, 5, Checkpoint(ORIGIN, 5, ROOT, DAY0 + 86399), DAY0 + 86400) == "day-close"
    with pytest.raises(ValueError, match="interval"):
        Cadence(min_interval=0)


def test_publish_extends_and_catches_up(tmp_path: Path) -> None:
    now = [float(DAY0)]
    kit = make_kit(tmp_path, clock=lambda: now[0])
    public = kit.keyring.public()
    log = MemLog()
    log.append(7)
    first = open_checkpoint(publish(kit.signer, ORIGIN, 7, tree_reader(log.leaves()), None), public).checkpoint
    log.append(5)
    second = open_checkpoint(publish(kit.signer, ORIGIN, 12, tree_reader(log.leaves()), first), public)
    assert second.checkpoint.size == 12
    # The server lost the second checkpoint (it still believes the first is the last): it catches up.
    log.append(3)
    third = open_checkpoint(publish(kit.signer, ORIGIN, 15, tree_reader(log.leaves()), first), public)
    assert third.checkpoint.size == 15
    # A heartbeat: same size, fresh time (in the same second: the last checkpoint, as fresh).
    same = open_checkpoint(publish(kit.signer, ORIGIN, 15, tree_reader(log.leaves()), third.checkpoint), public)
    assert same.note == third.note
    now[0] += 3600
    beat = open_checkpoint(publish(kit.signer, ORIGIN, 15, tree_reader(log.leaves()), third.checkpoint), public)
    assert beat.checkpoint.root == third.checkpoint.root and beat.checkpoint.time > third.checkpoint.time


def test_publish_refuses_to_hide_a_rollback(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    log = MemLog()
    log.append(9)
    signed = open_checkpoint(publish(kit.signer, ORIGIN, 9, tree_reader(log.leaves()), None), kit.keyring.public())
    short = MemLog(bodies=log.bodies[:6], entries=log.entries[:6])
    with pytest.raises(SignerAhead, match="recover"):
        publish(kit.signer, ORIGIN, 6, tree_reader(short.leaves()), None)
    with pytest.raises(SignerAhead, match="log holds 6"):
        publish(kit.signer, ORIGIN, 6, tree_reader(short.leaves()), signed.checkpoint)
