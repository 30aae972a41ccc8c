"""The SIEM side: `siemgate-verify follow` as its own process pulls a live stream (uvicorn on
127.0.0.1, a real signer process) while several producers write — late events among them — and
verifies every page and the consistency of every checkpoint it accepts; then an event body is
changed in the database (SQLite and PostgreSQL) and the next run fails naming its index."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from siemgate.model.timestamps import format_ns
from siemgate.store.base import Account
from support.events import auditevent
from support.stores import BOTH_BACKENDS

from .proof_api_kit import AUDIT, SECOND, ProofSetup, proof_setup
from .store_log_kit import sql

server_backend = BOTH_BACKENDS
T0 = (time.time_ns() // SECOND - 86400) * SECOND


def _follow(s: ProofSetup, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [
        sys.executable,
        "-m",
        "siemgate.tlog.verify_cli",
        "follow",
        "--url",
        s.server.base_url,
        "--token-file",
        str(tmp / "token"),
        "--feature",
        "auditevents",
        "--state",
        str(tmp / "state.json"),
        "--key",
        str(s.kit.public_key),
        "--start-time",
        format_ns(T0),
        "--limit",
        "40",
        *extra,
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)


def _served(output: str) -> int:
    return sum(int(m) for m in re.findall(r"VALID \((\d+) served", output))


class Runs:
    """How many follow runs have finished; producers wait for them so that writing and pulling
    interleave (a condition, not a sleep)."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()

    def done(self) -> None:
        with self.changed:
            self.count += 1
            self.changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.count >= count, timeout=300), "the follower stalled"


def _producer(s: ProofSetup, account: Account, key: str, rounds: int, seed: int, counts: list[int], runs: Runs) -> None:
    """Batches of events in the window, with late ones: some inside the window (older than what was
    already served), some before its start (outside it); every third batch waits for one more pull."""
    rng = random.Random(seed)
    for r in range(rounds):
        runs.wait_for(r // 3)
        batch = [auditevent(T0 + (3600 + seed * 1000 + r * 20 + i) * SECOND) for i in range(15)]
        batch += [auditevent(T0 + rng.randrange(1, 3600) * SECOND) for _ in range(3)]  # late, in the window
        batch += [auditevent(T0 - rng.randrange(1, 3600) * SECOND) for _ in range(2)]  # late, before it
        response = s.server.ingest(key, AUDIT, batch)
        assert response.status_code == 200, response.text
        counts[seed] += 18


def test_follow_verifies_a_live_stream_and_names_a_tampered_index(tmp_path: Path, make_server: Any) -> None:
    with proof_setup(tmp_path, make_server) as s:
        account = s.server.account()
        (tmp_path / "token").write_text(s.server.token(account) + "\n")
        key = s.server.ingest_key(account)
        counts = [0, 0, 0]
        runs = Runs()
        writers = [
            threading.Thread(target=_producer, args=(s, account, key, 12, n, counts, runs), daemon=True)
            for n in range(3)
        ]
        for w in writers:
            w.start()
        served = 0
        while any(w.is_alive() for w in writers):
            done = _follow(s, tmp_path)
            assert done.returncode == 0, done.stdout + done.stderr
            served += _served(done.stdout)
            runs.done()
        for w in writers:
            w.join()
        done = _follow(s, tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        served += _served(done.stdout)
        assert "Result: VALID" in done.stdout
        assert served == sum(counts) == 3 * 12 * 18  # every event of the window, each verified once
        assert runs.count >= 4  # pulls interleaved with the writing

        # The database is changed behind siemgate's back: an event the SIEM has not pulled yet.
        s.ingest(account, 10, T0 + 90_000 * SECOND)
        head = s.server.store.head_seq(account.id, AUDIT)
        seq = head - 4
        where = (account.id, AUDIT.code, seq)
        (body,) = sql(
            s.server.store, "SELECT body FROM events WHERE account_id = ? AND feature = ? AND seq = ?", where
        )[0]
        changed = bytes(body).replace(b'"action":"', b'"action":"x', 1)
        assert changed != bytes(body)
        sql(
            s.server.store,
            "UPDATE events SET body = ? WHERE account_id = ? AND feature = ? AND seq = ?",
            (changed, *where),
        )
        tampered = _follow(s, tmp_path)
        assert tampered.returncode == 1, tampered.stdout + tampered.stderr
        assert f"INVALID index {seq - 1} " in tampered.stdout, tampered.stdout
        assert "does not hash to its log entry" in tampered.stdout
        assert f"first bad index {seq - 1})" in tampered.stdout, tampered.stdout
        # the state did not move past it: the next run refuses it again
        again = _follow(s, tmp_path)
        assert again.returncode == 1 and f"INVALID index {seq - 1} " in again.stdout


def test_follow_usage_errors_exit_2(tmp_path: Path) -> None:
    from siemgate.tlog.verify_cli import main
    from support.ports import free_port

    from .tlog_kit import make_kit

    key = str(make_kit(tmp_path).public_key)
    token = tmp_path / "token"
    token.write_text("sometoken\n")
    base = ["follow", "--token-file", str(token), "--feature", "auditevents", "--state", str(tmp_path / "s.json")]
    assert main([*base, "--url", "ftp://example.com", "--key", key]) == 2
    for pages in ("0", "many"):
        with pytest.raises(SystemExit) as exited:  # argparse: the usage and what to fix, exit 2
            main([*base, "--url", "http://127.0.0.1:1", "--key", key, "--max-pages", pages])
        assert exited.value.code == 2
    assert main([*base, "--url", f"http://127.0.0.1:{free_port()}", "--key", key]) == 2  # nothing listens
    missing = ["follow", "--token-file", str(tmp_path / "none"), "--feature", "auditevents", "--state", "s"]
    assert main([*missing, "--url", "http://127.0.0.1:1", "--key", key]) == 2
    (tmp_path / "s.json").write_text("{not json")
    assert main([*base, "--url", "http://127.0.0.1:1", "--key", key]) == 2
    assert not (tmp_path / "s.json").read_text().startswith("{\n")  # a bad state file is left as it was


def test_follow_refuses_a_rolled_back_log_and_warns_when_stale(tmp_path: Path, make_server: Any) -> None:
    import shutil

    from siemgate.tlog.follow import Client, follow

    from .store_log_kit import snapshot

    with proof_setup(tmp_path, make_server) as s:
        account = s.server.account()
        token = s.server.token(account)
        (tmp_path / "token").write_text(token)
        s.ingest(account, 60, T0)
        s.wait_covered(account, 60)
        restore = snapshot(s.server.store, account.id)  # a backup taken now
        s.ingest(account, 40, T0 + 100 * SECOND)
        s.wait_covered(account, 100)
        done = _follow(s, tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr

        # the same stream judged two hours later: its newest checkpoint is stale
        shutil.copy(tmp_path / "state.json", tmp_path / "later.json")
        lines: list[str] = []
        client = Client(s.server.base_url, token, "auditevents")
        later = time.time() + 7200
        fresh = follow(client, s.keys, tmp_path / "later.json", {}, max_age=3600, now=lambda: later, out=lines.append)
        assert not fresh and any(line.startswith("STALE: the newest checkpoint (size 100)") for line in lines), lines

        restore()  # the database rolled back to the backup: 60 events, the checkpoints of then
        rolled = _follow(s, tmp_path)
        assert rolled.returncode == 1, rolled.stdout + rolled.stderr
        assert "INVALID index 60 " in rolled.stdout and "rolled back" in rolled.stdout, rolled.stdout


def test_follow_is_bounded_against_a_stream_that_never_ends(tmp_path: Path, make_server: Any) -> None:
    """A follower's work is bounded whatever the server answers: it stops after --max-pages pages
    (keeping the position, so the next run goes on), at a page that says there is more without
    moving the cursor, and at an answer larger than its bound; each time with a clear error."""
    from siemgate.tlog.follow import Client, FollowError, follow

    with proof_setup(tmp_path, make_server) as s:
        account = s.server.account()
        token = s.server.token(account)
        s.ingest(account, 30, T0)
        s.wait_covered(account, 30)
        reset = {"start_time": format_ns(T0), "limit": 10}
        client = Client(s.server.base_url, token, "auditevents")
        lines: list[str] = []
        state = tmp_path / "bounded.json"
        with pytest.raises(FollowError, match=r"did not end within 2 pages \(--max-pages\)"):
            follow(client, s.keys, state, reset, max_age=0, max_pages=2, out=lines.append)
        assert _served("\n".join(lines)) == 20, lines
        lines.clear()
        assert follow(client, s.keys, state, reset, max_age=0, max_pages=2, out=lines.append), lines
        assert _served("\n".join(lines)) == 10 and lines[-1].startswith("Result: VALID: indices up to 29"), lines

        class Endless(Client):
            """The server's answers with has_more always true (a hostile server, or one in the middle)."""

            def page(self, body: dict[str, Any]) -> bytes:
                page = super().page(body)
                assert b'"has_more":false' in page or b'"has_more":true' in page
                return page.replace(b'"has_more":false', b'"has_more":true')

        endless = Endless(s.server.base_url, token, "auditevents")
        with pytest.raises(FollowError, match=r"same cursor .* makes no progress"):
            follow(endless, s.keys, tmp_path / "endless.json", reset, max_age=0, out=lines.append)
        small = Client(s.server.base_url, token, "auditevents", max_response_bytes=2000)
        with pytest.raises(FollowError, match="larger than 2000 bytes"):
            follow(small, s.keys, tmp_path / "small.json", reset, max_age=0, out=lines.append)
