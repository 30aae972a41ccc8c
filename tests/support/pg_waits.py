"""Interleaving two PostgreSQL transactions in a test: run the second change in a thread and see,
in pg_stat_activity, when it waits for a lock the first one's connection holds."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg


def in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Start `call` in a thread; its outcome (result or exception) lands in the list."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # reported by the caller's assertion
            outcome.append(exc)

    job = threading.Thread(target=run)
    job.start()
    return job, outcome


def waiting_for(watch: psycopg.Connection[tuple[int]], blocker: psycopg.Connection[tuple[int]]) -> int:
    """Backends waiting now for a lock `blocker`'s transaction holds."""
    sql = "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
    row = watch.execute(sql, (blocker.info.backend_pid,)).fetchone()
    return int(row[0]) if row is not None else 0
