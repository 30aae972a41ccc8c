"""Applying retention holds a bounded part of a day at a time, however many events the day holds:
a busy account's day of millions of events is archived and purged without growing the process
(on SQLite and on PostgreSQL, the store read in a subprocess that measures its own peak). Each
batch is checked against its log entries before it is written, and the files are the same
whatever the batch."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.retention import service as service_module
from siemgate.retention.archive import ArchiveError, StreamArchive
from siemgate.retention.survey import manifests
from siemgate.services import Services
from siemgate.store.base import Store
from siemgate.store.postgres import PostgresStore
from siemgate.store.sqlite import SQLiteStore
from support.clocks import Clock, FixedClock
from support.servers import start_server, stop_server
from support.stores import drop_pg_schema, new_pg_schema, pg_schema_url
from support.waiting import wait_for

from .helpers import AUDIT, DAY, NOW, audit, audit_result, fill, held, open_services, peak_growth_mib

EVENTS = 20_000  # in one UTC day
PADDING = 4_000  # bytes of each event's aux_info: the day is about 80 MB of events


def _fill_one_day(services: Services, account_id: int) -> int:
    """EVENTS events of about PADDING bytes each, all on the UTC day 200 days before NOW."""
    start = NOW - 200 * DAY
    total = 0
    for first in range(0, EVENTS, 5000):
        batch = []
        for i in range(first, min(first + 5000, EVENTS)):
            event = audit(start + i * (DAY // EVENTS), i)
            event["aux_info"] = f"{i:08d}" + "x" * PADDING
            batch.append(event)
        total += services.writer.write(account_id, Feature.AUDITEVENTS, batch).stored
    return total


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(store kind, where: a SQLite file or a PostgreSQL URL with its own schema) of a store
    holding one account with EVENTS events in one day."""
    schema = new_pg_schema()
    if request.param == "sqlite":
        where = str(tmp_path / "siemgate.db")
        store: Store = SQLiteStore(Path(where))
    else:
        where = pg_schema_url(schema)
        store = PostgresStore(where, max_size=4)
    store.migrate()
    services = build_services(_settings(tmp_path), store, FixedClock(NOW))
    try:
        account = store.create_account(new_id(), "Busy", NOW)
        assert _fill_one_day(services, account.id) == EVENTS
    finally:
        services.close()
    try:
        yield request.param, where
    finally:
        if request.param == "postgres":
            drop_pg_schema(schema)


def _settings(tmp_path: Path) -> Any:
    return load_settings(data_dir=tmp_path, alerts_enabled=False, archive_format="jsonl", retention_days=30)


def test_archiving_a_day_of_many_events_holds_a_bounded_part_of_it(tmp_path: Path, backend: tuple[str, str]) -> None:
    """`_archive_days` made a list of every event of the day (bodies included), then a list of
    rows and a dict of indices, before writing the day's file: memory grew with the day (94 MiB
    allocated here for 80 MB of events; 1.2 GiB of peak RSS for 230 MB; several GB for a busy
    account, an OOM kill in a container). The day is now read, checked and written
    ARCHIVE_BATCH events at a time: 14 MiB here, whatever the day holds."""
    kind, where = backend
    setup = (
        "from siemgate.composition.wiring import build_services\n"
        "from siemgate.config import load_settings\n"
        "from siemgate.store.sqlite import SQLiteStore\n"
        "from siemgate.store.postgres import PostgresStore\n"
        f"store = SQLiteStore(Path({where!r})) if {kind!r} == 'sqlite' else PostgresStore({where!r}, max_size=4)\n"
        f"settings = load_settings(data_dir=Path({str(tmp_path)!r}), alerts_enabled=False, archive_format='jsonl',"
        " retention_days=30)\n"
        f"services = build_services(settings, store, lambda: {NOW})\n"
        "[account] = store.list_accounts()\n"
    )
    code = (
        "[result] = [r for r in services.retention.apply(accounts=[account]) if r.feature == Feature.AUDITEVENTS]\n"
        f"assert (result.error, result.archived, result.purged) == (None, {EVENTS}, {EVENTS}), result\n"
        "services.close()\n"
    )
    growth = peak_growth_mib(code, setup, traced=True)
    print(kind, "growth", growth)
    assert growth < 30, f"{growth:.0f} MiB"


def _archive_files(root: Path) -> dict[str, bytes]:
    """Each file of the archive but its manifest (which says when it was written), by path."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != "manifest.json"
    }


def test_the_files_are_the_same_whatever_the_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A day read 7 events at a time makes the same files, byte for byte, as one read whole."""
    made = []
    for batch in (7, 100_000):
        monkeypatch.setattr(service_module, "ARCHIVE_BATCH", batch)
        services = open_services(tmp_path / str(batch), archive_format="jsonl")
        try:
            account = services.store.create_account("ACCT2222222222222222222222", "Acme", NOW)
            events = [audit(NOW - 200 * DAY + i * (DAY // 50), i) for i in range(100)]
            for i, event in enumerate(events):  # the same uuids in both stores
                event["uuid"] = "".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(i // 26**k) % 26] for k in range(26))
            assert services.writer.write(account.id, AUDIT, events).stored == 100
            result = audit_result(services.retention.apply(accounts=[account]))
            assert (result.error, result.archived, result.purged) == (None, 100, 100)
        finally:
            services.close()
        made.append(_archive_files(services.settings.archive_path))
    assert made[0] == made[1] and len(made[0]) == 4


def test_an_event_changed_in_a_later_batch_stops_its_day_with_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check of the events against their log entries now runs a batch at a time, as the file is
    written: an event changed outside siemgate in the day's last batch still stops the day before
    anything of it is archived or purged, and leaves no temporary file."""
    monkeypatch.setattr(service_module, "ARCHIVE_BATCH", 10)
    services = open_services(tmp_path, archive_format="jsonl")
    try:
        account = services.store.create_account(new_id(), "Acme", NOW)
        fill(services, account, days=1, per_day=25)
        with services.store._write() as conn:  # type: ignore[attr-defined]
            conn.execute(
                "UPDATE events SET body = CAST(replace(CAST(body AS TEXT), 'item-23', 'item-99') AS BLOB)"
                " WHERE seq = 24"
            )
        result = audit_result(services.retention.apply(accounts=[account]))
        assert result.error is not None and "index 23 " in result.error and "does not match" in result.error
        assert (result.archived, result.purged, result.files) == (0, 0, [])
        assert held(services, account) == 25
        root = services.settings.archive_path
        assert [s.files for s in manifests(root)] in ([], [[]])
        assert [p.name for p in root.rglob("*") if p.is_file() and p.name != "manifest.json"] == []
    finally:
        services.close()


def test_rows_out_of_order_are_refused_with_nothing_written(tmp_path: Path) -> None:
    """`write_sorted` reads its rows once, as it writes: rows out of (timestamp, uuid) order or
    repeated (which no store gives) fail the write and leave nothing behind."""
    archive = StreamArchive(tmp_path, "A" * 26, "Acme", AUDIT, "jsonl")
    day = format_ns(NOW)[:10]
    rows = [((NOW + 2, "b", b"{}"), 1), ((NOW + 1, "a", b"{}"), 0)]
    for bad in (rows, [rows[1], rows[1]]):
        with pytest.raises(ArchiveError, match="out of \\(timestamp, uuid\\) order or repeated"):
            archive.write_sorted(day, iter(bad))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_run_stops_after_its_day_when_the_process_stops(tmp_path: Path) -> None:
    """A run went on until every stream of every account was done, so a server stopping during a
    run of a long backlog (hours) held its exit until the end, or closed the store under it. A
    stop now ends the run after the day it is archiving; the next run carries on."""
    services = open_services(tmp_path, archive_format="jsonl")
    try:
        account = services.store.create_account(new_id(), "Acme", NOW)
        fill(services, account, days=5, per_day=20)
        stopped: list[bool] = []
        threads: list[threading.Thread] = []

        def first_day_done(what: str, done: int) -> None:
            if not stopped:  # stop from another thread, as the server's shutdown does, and go on
                stopper = threading.Thread(target=lambda: stopped.append(services.retention.stop(10)))
                stopper.start()
                wait_for("the stop", lambda: services.retention._stopping.is_set() or None)
                threads.append(stopper)

        result = audit_result(services.retention.apply(first_day_done, accounts=[account]))
        threads[0].join(10)
        assert stopped == [True]
        assert (len(result.files), result.archived, result.error) == (1, 20, None)
        assert result.waiting is not None and "stopping" in result.waiting
        assert held(services, account) == 80
        again = audit_result(services.retention.apply(accounts=[account]))
        assert (len(again.files), again.archived, held(services, account)) == (4, 80, 0)
    finally:
        services.close()


def test_a_stopping_server_ends_its_retention_run_before_closing_the_store(tmp_path: Path) -> None:
    """The server's scheduled run went on in its thread after the server stopped: the store was
    closed under it (every stream left failed) or the process's exit waited for the whole backlog.
    Shutdown now stops the run after its current day and waits for it before the store closes."""
    days = 120
    store = SQLiteStore(tmp_path / "siemgate.db")
    store.migrate()
    settings = load_settings(data_dir=tmp_path, alerts_enabled=False, archive_format="jsonl", retention_days=30)
    now = time.time_ns()
    services = build_services(settings, store, lambda: now)
    account = store.create_account(new_id(), "Acme", now)
    first = (now // DAY - 40 - days) * DAY
    for day in range(days):
        events = [audit(first + day * DAY + i * 1000, i) for i in range(300)]
        assert services.writer.write(account.id, AUDIT, events).stored == 300
    live, server, thread = start_server(settings, store, Clock())  # retention runs at start
    manifest = settings.archive_path / account.uuid / AUDIT.value / "manifest.json"
    wait_for("the first archived day", manifest.exists)
    stop_server(live, server, thread)
    assert live.services.retention._lock.acquire(blocking=False), "the run goes on after the server stopped"
    archived = len(orjson.loads(manifest.read_bytes())["files"])
    assert 1 <= archived < days
