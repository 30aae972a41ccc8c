"""The history checker in `make test`: one short randomized adversarial history per backend
(several `serve` processes, writer and reader processes, faults), checked against the model of
the cursor contract (history_model.py; docs/cursors.md, "The model the history checker
enforces"). `make soak` runs longer and bigger ones.

The seed is random unless HISTORY_SEED is set; a failing history is kept under
test-artifacts/history/<backend>-<seed>/ with its seed, and can be re-checked offline with
`PYTHONPATH=tests python -m history.recheck FOLDER`.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from support.stores import STORE_BACKENDS

from .history_harness import Scale, run_history

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "history"


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_a_random_adversarial_history_keeps_the_cursor_contract(backend: str, tmp_path: Path) -> None:
    seed = int(os.environ.get("HISTORY_SEED") or random.randrange(2**32))
    outcome = run_history(backend, seed, tmp_path / "history", Scale(seconds=6.0, faults=4, max_batch=300, pace=0.05))
    counts = ", ".join(f"{k} {v}" for k, v in outcome.counts.items())
    if outcome.violations:
        kept = ARTIFACTS / f"{backend}-{seed}"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(outcome.folder, kept)
        pytest.fail(
            f"history seed {seed} on {backend} broke the cursor contract ({counts}); faults:\n"
            + "\n".join(outcome.faults)
            + "\n"
            + "\n".join(outcome.violations)
            + f"\nsaved in {kept}: re-check with `PYTHONPATH=tests python -m history.recheck {kept}`,"
            f" run again with HISTORY_SEED={seed}",
            pytrace=False,
        )
    assert outcome.counts["events_delivered"] > 0, f"seed {seed}: the readers received nothing ({counts})"
