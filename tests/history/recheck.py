"""Re-check a saved history offline: `PYTHONPATH=tests python -m history.recheck FOLDER` (a folder the
history checker saved under test-artifacts/history/). Exit 0 when it keeps the cursor contract,
1 with the violations otherwise."""

from __future__ import annotations

import sys
from pathlib import Path

from history.history_model import check, load, summary


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not (Path(argv[0]) / "final.json").is_file():
        print(
            "usage: PYTHONPATH=tests python -m history.recheck FOLDER  (a saved history: ops/ and final.json)",
            file=sys.stderr,
        )
        return 2
    history = load(Path(argv[0]))
    violations = check(history)
    print(", ".join(f"{k} {v}" for k, v in summary(history).items()))
    print("\n".join(violations) if violations else "the history keeps the cursor contract")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
