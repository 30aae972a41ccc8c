"""siemgate's own log lines, attacked through the values they show: a value holding a line break
(an SMTP server's reply, a receiver's error, a name) must not make a line of its own."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

HOSTILE = "refused\n2026-12-07 10:00:00,000 ERROR siemgate.auth: admin signed in\r\x1b[2Jdone\u2028end"

SCRIPT = """
import logging, sys
from siemgate.logs import configure_logging
configure_logging("info", sys.argv[1])
logging.getLogger("siemgate.alerts").warning("alert action email failed: %s", sys.argv[2])
"""


def _log(fmt: str) -> list[str]:
    """The lines a siemgate process writes to stderr for one warning showing HOSTILE."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, fmt, HOSTILE], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stderr.splitlines()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_value_with_line_breaks_stays_on_its_log_line(fmt: str) -> None:
    """In text, line breaks and control characters (an ANSI escape that clears the terminal) are
    written escaped (`\\n`, `\\x1b`); JSON lines escape them as JSON does."""
    lines = _log(fmt)
    assert len(lines) == 1, lines
    line = lines[0]
    if fmt == "json":
        assert orjson.loads(line)["msg"] == f"alert action email failed: {HOSTILE}"
    else:
        assert line.endswith(
            "WARNING siemgate.alerts: alert action email failed: refused\\n2026-12-07 10:00:00,000 ERROR"
            " siemgate.auth: admin signed in\\r\\x1b[2Jdone\\u2028end"
        ), line
