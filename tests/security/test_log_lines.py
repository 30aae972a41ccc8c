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
# An exception whose message is the receiver's reply, logged with its traceback.
RAISING = """
import logging, sys
from siemgate.logs import configure_logging
configure_logging("info", sys.argv[1])
try:
    raise ValueError(sys.argv[2])
except ValueError:
    logging.getLogger("siemgate.alerts").exception("alert action email failed")
"""


def _log(fmt: str, script: str = SCRIPT) -> list[str]:
    """The lines a siemgate process writes to stderr for one record showing HOSTILE."""
    done = subprocess.run(
        [sys.executable, "-c", script, fmt, HOSTILE], capture_output=True, text=True, timeout=30, check=True
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


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_traceback_stays_on_its_records_line(fmt: str) -> None:
    """A log reader takes one record per line: before, a text record's traceback took lines of its
    own (fragments without a time or level), and the exception's message forged a record."""
    lines = _log(fmt, RAISING)
    assert len(lines) == 1, lines
    line = lines[0]
    if fmt == "json":
        record = orjson.loads(line)
        assert record["msg"] == "alert action email failed", record
        assert record["exc"].startswith("Traceback (most recent call last):\n"), record
        assert record["exc"].endswith(f"ValueError: {HOSTILE}"), record
    else:
        assert " ERROR siemgate.alerts: alert action email failed\\nTraceback" in line, line
        assert line.endswith(
            "\\nValueError: refused\\n2026-12-07 10:00:00,000 ERROR siemgate.auth: admin signed in\\r\\x1b[2Jdone"
            "\\u2028end"
        ), line
