"""Sizes of the tests that `make soak` runs large: `make test` runs them at a size that checks
the same behaviour in seconds, `make soak` (SIEMGATE_SOAK=1, only the tests marked `soak`) at the
size that shows what only volume shows. docs/testing.md."""

from __future__ import annotations

import os

SOAK = os.environ.get("SIEMGATE_SOAK") == "1"


def sized(test: int, soak: int) -> int:
    """`soak` under `make soak`, else `test`."""
    return soak if SOAK else test
