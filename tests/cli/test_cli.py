"""The `siemgate` command, run as a real subprocess on a temporary data directory."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from siemgate.model.ids import is_id

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


class Cli:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, "SIEMGATE_DATA_DIR": str(data_dir), "SIEMGATE_LOG_FORMAT": "text"}
        self.env.pop("SIEMGATE_CONFIG", None)

    def run(self, *args: str, ok: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "siemgate", *args],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "data")


def test_account_create_prints_only_the_uuid(cli: Cli) -> None:
    result = cli.run("account", "create", "Acme Corp")
    assert is_id(result.stdout.strip())
    assert result.stdout.count("\n") == 1
    assert "Acme Corp" in result.stderr
    listed = cli.json("account", "list")
    assert listed == [{"uuid": result.stdout.strip(), "name": "Acme Corp", "created_at": listed[0]["created_at"]}]


def test_a_duplicate_account_name_is_a_clear_error(cli: Cli) -> None:
    cli.run("account", "create", "Acme")
    result = cli.run("account", "create", "acme", ok=False)
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_issue_prints_the_token_alone_and_details_on_stderr(cli: Cli) -> None:
    uuid = cli.run("account", "create", "Acme").stdout.strip()
    result = cli.run(
        "token",
        "issue",
        "--account",
        uuid,
        "--name",
        "splunk",
        "--features",
        "signinattempts,auditevents",
        "--expires",
        "90d",
    )
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    assert token.count(".") == 2 and token.startswith("eyJ")
    assert "shown only once" in result.stderr
    listed = cli.json("token", "list")
    assert len(listed) == 1
    entry = listed[0]
    assert entry["name"] == "splunk"
    assert entry["features"] == ["signinattempts", "auditevents"]
    assert entry["status"] == "active"
    assert entry["expires_at"] is not None
    assert token not in json.dumps(listed)
    assert token not in cli.run("token", "list").stdout


def test_account_may_be_named_and_json_output_includes_the_token(cli: Cli) -> None:
    cli.run("account", "create", "Acme")
    data = cli.json("token", "issue", "--account", "acme", "--name", "elastic", "--expires", "never")
    assert data["token"].startswith("eyJ")
    assert data["expires_at"] is None
    assert data["features"] == ["signinattempts", "itemusages", "auditevents"]
    assert data["integration"]["name"] == "elastic"


def test_token_file_is_written_with_mode_0600(cli: Cli, tmp_path: Path) -> None:
    cli.run("account", "create", "Acme")
    path = tmp_path / "token.txt"
    token = cli.run("token", "issue", "--name", "t", "--output", str(path)).stdout.strip()
    assert path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--expires", "forever"], "never, 30d, 90d, 180d"),
        (["--expires", "0d"], "never, 30d"),
        (["--expires", "3m"], "write 3min for minutes or 3mo for months"),
        (["--features", "signinattempts,logins"], "unknown feature 'logins'"),
    ],
)
def test_token_issue_rejects_bad_options_with_a_clear_message(cli: Cli, args: list[str], fragment: str) -> None:
    cli.run("account", "create", "Acme")
    result = cli.run("token", "issue", "--name", "t", *args, ok=False)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert cli.json("token", "list") == []


def test_token_issue_expires_in_90_days_by_default(cli: Cli) -> None:
    cli.run("account", "create", "Acme")
    data = cli.json("token", "issue", "--name", "splunk-hf1")
    created, expires = (int(datetime.fromisoformat(data[k]).timestamp()) for k in ("created_at", "expires_at"))
    assert expires - created == 90 * 86400
    months = cli.json("token", "issue", "--name", "splunk-hf2", "--expires", "3mo")
    created, expires = (int(datetime.fromisoformat(months[k]).timestamp()) for k in ("created_at", "expires_at"))
    assert expires - created == 90 * 86400  # months of 30 days


def test_several_accounts_require_choosing_one(cli: Cli) -> None:
    cli.run("account", "create", "One")
    cli.run("account", "create", "Two")
    result = cli.run("token", "issue", "--name", "t", ok=False)
    assert result.returncode == 1
    assert "--account" in result.stderr


def test_token_revoke_marks_it_revoked(cli: Cli) -> None:
    cli.run("account", "create", "Acme")
    cli.run("token", "issue", "--name", "t")
    token_id = cli.json("token", "list")[0]["id"]
    cli.run("token", "revoke", token_id)
    assert cli.json("token", "list")[0]["status"] == "revoked"
    unknown = cli.run("token", "revoke", "NOSUCHTOKEN", ok=False)
    assert unknown.returncode == 1
    assert "not found" in unknown.stderr


def test_ingest_key_lifecycle(cli: Cli) -> None:
    cli.run("account", "create", "Acme")
    key = cli.run("ingest-key", "create", "--name", "bridge", "--features", "auditevents").stdout.strip()
    assert key.startswith("sgi_")
    listed = cli.json("ingest-key", "list")
    assert listed[0]["features"] == ["auditevents"]
    assert listed[0]["prefix"] == key[:10]
    assert key not in json.dumps(listed)
    cli.run("ingest-key", "revoke", listed[0]["id"])
    assert cli.json("ingest-key", "list")[0]["status"] == "revoked"


def test_ingest_files_infers_the_feature_and_counts_duplicates(cli: Cli) -> None:
    cli.run("account", "create", "Acme")
    result = cli.run("ingest", str(GOLDEN / "auditevents-v1.jsonl"), str(GOLDEN / "signinattempts-v1.jsonl"))
    assert "2 events, 1 stored, 1 duplicates (auditevents)" in result.stderr
    assert "2 events, 2 stored, 0 duplicates (signinattempts)" in result.stderr
    again = cli.run("ingest", str(GOLDEN / "signinattempts-v1.jsonl"))
    assert "0 stored, 2 duplicates" in again.stderr
    page = cli.run("ingest", str(GOLDEN / "auditevents-v2-page.json"))
    assert "9 events, 9 stored" in page.stderr


def test_ingest_refuses_a_file_with_any_invalid_event_and_stores_nothing(cli: Cli, tmp_path: Path) -> None:
    cli.run("account", "create", "Acme")
    good = (GOLDEN / "signinattempts-v1.jsonl").read_text().splitlines()
    bad = json.loads(good[1])
    bad["category"] = "succes"
    path = tmp_path / "mixed.jsonl"
    path.write_text(good[0] + "\n" + json.dumps(bad) + "\n")
    result = cli.run("ingest", str(path), "--feature", "signinattempts", ok=False)
    assert result.returncode == 1
    assert "event 1, field category" in result.stderr
    assert "nothing was stored" in result.stderr
    retry = cli.run("ingest", str(GOLDEN / "signinattempts-v1.jsonl"))
    assert "2 stored, 0 duplicates" in retry.stderr


def test_ingest_needs_a_feature_it_cannot_guess(cli: Cli, tmp_path: Path) -> None:
    cli.run("account", "create", "Acme")
    path = tmp_path / "events.json"
    path.write_text("[]")
    result = cli.run("ingest", str(path), ok=False)
    assert result.returncode == 2
    assert "--feature" in result.stderr


def test_keys_rotate_keeps_keys_of_live_tokens(cli: Cli) -> None:
    cli.run("account", "create", "Acme")
    first = cli.json("keys", "list")
    assert len(first) == 1
    cli.run("token", "issue", "--name", "t")
    new_kid = cli.run("keys", "rotate").stdout.strip()
    keys = {k["kid"]: k for k in cli.json("keys", "list")}
    assert set(keys) == {first[0]["kid"], new_kid}
    assert keys[new_kid]["active"] is True
    assert keys[first[0]["kid"]]["live_tokens"] is True
    # a key no live token uses is retired at the next rotation
    newest = cli.run("keys", "rotate").stdout.strip()
    assert {k["kid"] for k in cli.json("keys", "list")} == {first[0]["kid"], newest}
    # Keys live in the store (shared by every server process), not in files of the data dir.
    assert not (cli.data_dir / "keys").exists()


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"SIEMGATE_PORT": "eighty"}, "port"),
        ({"SIEMGATE_RATE_LIMIT_PER_MINUTE": "0"}, "rate_limit_per_minute"),
        ({"SIEMGATE_DATABASE_CONNECT_SECONDS": "0"}, "database_connect_seconds"),
        ({"SIEMGATE_PUBLIC_HOST": "https://x.example.com"}, "without a scheme"),
        ({"SIEMGATE_CONFIG": "/nonexistent/siemgate.toml"}, "not a file"),
    ],
)
def test_bad_configuration_is_reported_clearly(cli: Cli, env: dict[str, str], fragment: str) -> None:
    result = cli.run("account", "list", ok=False, env=env)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_a_toml_config_file_is_read(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "siemgate.toml"
    config.write_text(f'data_dir = "{tmp_path / "from-toml"}"\n')
    env = {"SIEMGATE_CONFIG": str(config)}
    cli.env.pop("SIEMGATE_DATA_DIR")
    cli.run("account", "create", "Acme", env=env)
    assert (tmp_path / "from-toml" / "siemgate.db").exists()


def test_db_migrate_reports_nothing_pending_the_second_time(cli: Cli) -> None:
    cli.run("account", "list")
    assert "none pending" in cli.run("db", "migrate").stderr
