"""Private by default on disk (finding 6 of the identity review): the data directory was 0755 and
the database, its WAL, archives and forwarder checkpoints 0644, though they hold the signing keys,
the cursor secret, webhook secrets, password hashes and every event. After a real run that makes
each kind of file with the `siemgate` command, every directory is 0700 and every file 0600."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx

from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from support.ports import free_port
from support.procs import Proc, cli_env, healthy, run_cli, running
from support.waiting import wait_for

DAY = 86400 * 10**9


def _modes(root: Path) -> dict[str, str]:
    """Every path under root (root included) with its permission bits, e.g. {'archive': '0o700'}."""
    found = {".": oct(stat.S_IMODE(root.stat().st_mode))}
    for path in sorted(root.rglob("*")):
        found[str(path.relative_to(root))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def _old_audit_events(count: int) -> list[dict[str, object]]:
    import time

    old = time.time_ns() - 10 * DAY
    return [
        {"uuid": new_id(), "timestamp": format_ns(old + n), "action": "create", "object_type": "item"}
        for n in range(count)
    ]


def test_every_file_and_directory_siemgate_makes_is_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = cli_env(data, SIEMGATE_ALERTS_ENABLED="false")
    run_cli(env, "account", "create", "Acme")
    token = run_cli(env, "token", "issue", "--name", "reader", "--output", str(data / "reader.token")).stdout.strip()
    events = tmp_path / "old.jsonl"
    events.write_text("\n".join(json.dumps(e) for e in _old_audit_events(5)) + "\n")
    run_cli(env, "ingest", str(events), "--feature", "auditevents")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with running(Proc("serve", ["serve", "--port", str(port)], env, tmp_path / "logs")) as proc:
        wait_for("the server", lambda: healthy(base_url), 60)
        page = httpx.post(f"{base_url}/api/v2/auditevents", headers={"Authorization": f"Bearer {token}"}, json={})
        assert page.status_code == 200, page.text
        assert {p.name for p in data.iterdir()} >= {"siemgate.db", "siemgate.db-wal", "siemgate.db-shm"}
        modes = _modes(data)  # while the server runs: the WAL and shared-memory files exist
        proc.stop()
    run_cli(env, "retention", "set", "1", "--features", "auditevents", "--archive", "jsonl")
    run_cli(env, "retention", "apply")
    forward = tmp_path / "forward.toml"
    forward.write_text(
        f'[forwarder]\nstate_dir = "{data / "forward-state"}"\n\n'
        f'[sources.self]\nurl = "{base_url}"\ntoken = {{ file = "{data / "reader.token"}" }}\n'
        f'features = ["auditevents"]\nsinks = ["out"]\n\n'
        f'[sinks.out]\ntype = "file"\npath = "{data / "out" / "{feature}.jsonl"}"\n'
    )
    run_cli(env, "forward", "reset", "--source", "self", "--feature", "auditevents", "--config", str(forward))
    modes.update(_modes(data))
    kinds = {
        "database": "siemgate.db",
        "WAL": "siemgate.db-wal",
        "shared memory": "siemgate.db-shm",
        "token file": "reader.token",
        "archive": next(name for name in modes if name.startswith("archive/") and name.endswith(".jsonl.gz")),
        "checkpoint": "forward-state/checkpoints.db",
    }
    for kind, name in kinds.items():
        assert name in modes, f"no {kind} file was made: {sorted(modes)}"
    for name, mode in modes.items():
        path = data / name
        want = "0o700" if name == "." or path.is_dir() else "0o600"
        assert mode == want, f"{name}: {mode}, not {want}"


def test_an_existing_readable_data_directory_is_tightened(tmp_path: Path) -> None:
    """An install made by an earlier version keeps working and becomes private at the next start."""
    data = tmp_path / "data"
    env = cli_env(data, SIEMGATE_ALERTS_ENABLED="false")
    run_cli(env, "account", "create", "Acme")
    data.chmod(0o755)
    (data / "siemgate.db").chmod(0o644)
    run_cli(env, "account", "list")
    assert _modes(data)["."] == "0o700"
    assert _modes(data)["siemgate.db"] == "0o600"
