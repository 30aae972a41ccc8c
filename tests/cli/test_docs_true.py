"""Claims of the docs checked against the code and against each other, so they stay true: the
numbers they quote, where secrets live, no references to files readers do not have, and what the
command line does that the README describes."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from siemgate.auth.signin_limits import IP_WINDOWS, PAIR_WINDOWS
from support.procs import cli_env, make_account, run_cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
SOURCES = sorted((ROOT / "src").rglob("*.py"))
# Files and numbering readers of the docs and the code do not have.
UNAVAILABLE = re.compile(r"DESIGN\.md|\bspec §|\bspec/|\bissue \d+|test-recipes", re.I)


def _window_text(amount: int, seconds: int) -> str:
    return {60: f"{amount} failures a minute", 900: f"{amount} in 15 minutes", 3600: f"{amount} an hour"}.get(
        seconds, f"{amount} a day"
    )


def test_no_reference_to_files_readers_do_not_have() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in DOCS + SOURCES
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if UNAVAILABLE.search(line)
    ]
    assert not found, "\n".join(found)


def test_the_sign_in_limits_quoted_are_the_codes() -> None:
    security = " ".join((ROOT / "docs" / "security.md").read_text().split())
    pair = ", ".join(_window_text(a, s) for a, s in PAIR_WINDOWS)
    assert f"one address from one IP: {pair}" in security
    ip = ", ".join(_window_text(a, s) for a, s in IP_WINDOWS)
    assert f"one IP, whatever the addresses: {ip}" in security


def test_the_cursor_secret_is_where_the_docs_say(tmp_path: Path) -> None:
    for path in DOCS:
        assert "cursor.key" not in path.read_text(), f"{path.name} still names a cursor key file"
    tokens = " ".join((ROOT / "docs" / "tokens.md").read_text().split())
    assert "Signing keys and the cursor secret live in the store (tables `signing_keys` and `secrets`)" in tokens
    make_account(tmp_path, "A")
    assert not list(tmp_path.rglob("*.key")), "a key file was written outside the store"
    with sqlite3.connect(tmp_path / "siemgate.db") as db:
        names = {row[0] for row in db.execute("SELECT name FROM secrets")}
    assert any("cursor" in name for name in names), names


def test_scaling_quotes_the_ingest_figures_of_benchmarks() -> None:
    scaling = " ".join((ROOT / "docs" / "scaling.md").read_text().split())
    benchmarks = " ".join((ROOT / "docs" / "benchmarks.md").read_text().split())
    ingest = re.search(r"ingests ([\d,]+\u2013[\d,]+) events/s over HTTP on one core", scaling)
    assert ingest, "scaling.md no longer says how fast one process ingests"
    assert ingest.group(1) in benchmarks
    per_event = re.search(r"~(\d+) µs/event/core", scaling)
    assert per_event and f"{per_event.group(1)} µs of one core per event" in benchmarks


def test_token_issue_without_an_integration_says_it_creates_one(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data")
    make_account(tmp_path / "data", "Acme")
    result = run_cli(env, "token", "issue", "--name", "hf1")
    assert "no --integration given: created integration 'hf1' (type other)" in result.stderr
    assert result.stdout.count(".") == 2


def test_token_files_are_private_even_when_they_existed(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data")
    make_account(tmp_path / "data", "Acme")
    issued = tmp_path / "issued.token"
    rotated = tmp_path / "rotated.token"
    for path in (issued, rotated):
        path.write_text("old\n")
        os.chmod(path, 0o644)
    issued_json = run_cli(env, "token", "issue", "--name", "hf1", "--output", str(issued), "--json").stdout
    token_id = json.loads(issued_json)["id"]
    run_cli(env, "token", "rotate", token_id, "--output", str(rotated))
    for path in (issued, rotated):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert path.read_text().count(".") == 2


def test_an_unknown_siemgate_variable_is_a_warning(tmp_path: Path) -> None:
    env = {**cli_env(tmp_path / "data"), "SIEMGATE_PUBLIC_HOSTNAME": "siem.example.com", "SIEMGATE_CONFIG_X": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "siemgate", "account", "list"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "warning: SIEMGATE_PUBLIC_HOSTNAME is not a siemgate setting and is ignored" in result.stderr
    assert "did you mean SIEMGATE_PUBLIC_HOST" in result.stderr
    assert "SIEMGATE_CONFIG_X is not a siemgate setting" in result.stderr
    quiet = subprocess.run(
        [sys.executable, "-m", "siemgate", "account", "list"],
        env=cli_env(tmp_path / "data", SIEMGATE_LOG_LEVEL="warning"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert "not a siemgate setting" not in quiet.stderr
