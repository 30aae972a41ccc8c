"""Putting events in: `siemgate ingest`, `siemgate simulate`; and `siemgate db`."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from siemgate.cli.common import find_account, services_for, state
from siemgate.cli.output import err
from siemgate.errors import BadRequest, InvalidEventBatch
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.timestamps import TimestampError, parse_stored_ns

if TYPE_CHECKING:
    from siemgate.dbcopy import Copier

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
WRITE_CHUNK = 5000
SHOWN_UNSTORABLE = 100


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    )


def _feature_for(path: Path, given: str | None) -> Feature:
    if given:
        try:
            return Feature(given)
        except ValueError:
            raise typer.BadParameter(f"unknown feature {given!r}; use one of {', '.join(ALL_FEATURES)}") from None
    for feature in ALL_FEATURES:
        if path.name.startswith(feature.value):
            return feature
    raise typer.BadParameter(f"cannot tell the feature from the name {path.name!r}; pass --feature")


def ingest(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="JSON array, NDJSON or page files."
    ),
    account: str = typer.Option(None, "--account", "-a", help="Account uuid or name (default: the only one)."),
    feature: str = typer.Option(
        None, "--feature", "-f", help="Stream; default from the file name (e.g. signinattempts-*.jsonl)."
    ),
    lenient: bool = typer.Option(
        False, "--lenient", help="Mirror mode: keep fields and enum values newer than the spec."
    ),
) -> None:
    """Add events from files. Each file is checked whole first: if any event is invalid, nothing of it is stored."""
    from siemgate.store.ingest import parse_batch

    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        for path in files:
            target = _feature_for(path, feature)
            try:
                items = parse_batch(path.read_bytes())
            except BadRequest as exc:
                raise BadRequest(f"{path}: {exc.message}") from None
            try:
                services.writer.check(target, items, strict=not lenient)
            except InvalidEventBatch as exc:
                raise InvalidEventBatch(f"{path}: {exc.message}", exc.details) from None
            stored = duplicates = 0
            with _progress() as progress:
                task = progress.add_task(f"{path.name} → {target.value}", total=len(items))
                for start in range(0, len(items), WRITE_CHUNK):
                    chunk = items[start : start + WRITE_CHUNK]
                    result = services.writer.write(acct.id, target, chunk, strict=not lenient)
                    stored += result.stored
                    duplicates += result.duplicates
                    progress.advance(task, len(chunk))
            err.print(f"{path}: {len(items)} events, {stored} stored, {duplicates} duplicates ({target.value})")


def simulate(
    ctx: typer.Context,
    account: str = typer.Option(None, "--account", "-a", help="Account uuid or name (default: the only one)."),
    users: int = typer.Option(200, "--users", min=1, help="People in the simulated organisation."),
    days: int = typer.Option(30, "--days", min=0, help="Days of history to generate, ending now."),
    seed: int = typer.Option(1, "--seed", help="With the same --end and arguments, the same events (ids included)."),
    end: str = typer.Option(None, "--end", help="When the history ends (RFC 3339; default now)."),
    live: bool = typer.Option(False, "--live", help="After the history, keep producing events until Ctrl-C."),
    rate: float = typer.Option(5.0, "--rate", min=0.01, help="Live mode: average events per second."),
) -> None:
    """Generate believable activity: sign-ins, item usages and admin audit events."""
    from siemgate.simulate.runner import run_live, simulate_history
    from siemgate.simulate.world import build_world

    try:
        end_ns = time.time_ns() if end is None else parse_stored_ns(end)
    except TimestampError as exc:
        raise typer.BadParameter(f"--end: {exc}") from None

    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        world = build_world(acct.uuid, acct.name, users, seed)
        if days:
            counts = simulate_history(services.writer, acct.id, world, days=days, end_ns=end_ns, seed=seed, console=err)
            stored = ", ".join(f"{f.value} {r.stored}" for f, r in counts.items())
            duplicates = sum(r.duplicates for r in counts.values())
            err.print(f"stored {days} days of activity for {users} people: {stored}; {duplicates} duplicates")
        if live:
            stop = threading.Event()
            previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
            err.print(f"producing live activity at ~{rate:g} events/s; Ctrl-C to stop")
            try:
                written = run_live(services.writer, acct.id, world, seed=seed + 1, rate=rate, stop=stop)
            finally:
                signal.signal(signal.SIGINT, previous)
            err.print(f"stopped after {written} live events")


@db_app.command("migrate")
def db_migrate(ctx: typer.Context) -> None:
    """Apply pending schema migrations (the server also does this when it starts)."""
    from siemgate.composition.stores import open_store

    settings = state(ctx).settings()
    store = open_store(settings, migrate=False)
    try:
        applied = store.migrate()
    finally:
        store.close()
    err.print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")


def _prepare_source(source: Path) -> None:
    """Bring the source's schema up to date, moving key files of an old deployment into it."""
    from siemgate.auth.keys import KeyRing
    from siemgate.store.sqlite import SQLiteStore

    store = SQLiteStore(source)
    try:
        store.migrate()
        KeyRing(store, source.parent)
    finally:
        store.close()


@db_app.command("copy")
def db_copy(
    ctx: typer.Context,
    source: str = typer.Option(
        ...,
        "--from",
        help="The SQLite deployment's file: sqlite:///absolute/path/siemgate.db, or a path as is (relative to here).",
    ),
    target: str = typer.Option(..., "--to", help="The PostgreSQL database: postgresql://user@host:5432/db."),
    chunk: int = typer.Option(5000, "--chunk", min=1, help="Events per transaction (a resumed copy restarts there)."),
    skip_unstorable: bool = typer.Option(
        False, "--skip-unstorable", help="Leave out (and list) events PostgreSQL cannot hold instead of stopping."
    ),
) -> None:
    """Copy a whole SQLite deployment into PostgreSQL: accounts, people, credentials, keys, alerts and
    every event with its seq. Stop the servers first. Interrupted? Run it again: it resumes. The copy
    is checked at the end (row counts and a digest per stream). Events PostgreSQL cannot hold (text
    with the NUL character) are listed first, and nothing is copied unless --skip-unstorable."""
    from siemgate.dbcopy import Copier, check_target, sqlite_path
    from siemgate.store.postgres import PostgresStore

    path = sqlite_path(source)
    check_target(target)
    _prepare_source(path)
    store = PostgresStore(target, connect_timeout=state(ctx).settings().database_connect_seconds)
    copier = Copier(path, store, chunk=chunk)
    try:
        _leave_out_unstorable(copier, skip_unstorable)
        err.print(f"migrated PostgreSQL: {', '.join(store.migrate()) or 'schema up to date'}")
        copier.check_target_unserved()
        total = copier.total_rows()
        with _progress() as progress:
            task = progress.add_task("copying", total=total)

            def advance(what: str, rows: int) -> None:
                progress.update(task, description=f"copying {what}", advance=rows)

            report = copier.run(advance)
            check = progress.add_task("checking", total=copier.total_events())
            problems = copier.verify(report, lambda what, rows: progress.advance(check, rows))
        if copier.source_changed():
            problems.append(
                "the source changed while it was copied (a server is still writing to it): its changes may be"
                " missing from the copy. Stop every server using the SQLite store and run the copy again (it resumes)"
            )
    finally:
        copier.close()
        store.close()
    if problems:
        for problem in problems:
            err.print(f"[red]mismatch[/red] {problem}")
        raise typer.Exit(1)
    streams = len(report.streams)
    events = sum(count for count, _ in report.streams.values())
    resumed = f", resumed {report.resumed_streams} stream(s)" if report.resumed_streams else ""
    err.print(
        f"copied and checked: {sum(report.tables.values())} rows in {len(report.tables)} tables,"
        f" {events} events in {streams} streams ({report.copied_events} copied by this run{resumed})"
    )


def _leave_out_unstorable(copier: Copier, skip: bool) -> None:
    """List the source's events PostgreSQL cannot hold; stop (exit 1) unless `skip`, in which case
    they are left out of the copy and of its check. Other rows holding such text stop it (exit 1)
    whatever `skip`: they must be changed on the source."""
    rows = copier.unstorable_rows()
    for row in rows[:SHOWN_UNSTORABLE]:
        err.print(f"[red]cannot copy[/red] {row}")
    if rows:
        err.print(
            f"{len(rows)} value(s) hold text PostgreSQL cannot store (listed above); nothing was copied."
            " Change them on the source (through the console, the admin API or the siemgate command, with"
            " the SQLite deployment's settings: they refuse the NUL character now) and copy again."
        )
        raise typer.Exit(1)
    found = copier.unstorable_events()
    if not found:
        return
    for event in found[:SHOWN_UNSTORABLE]:
        err.print(f"[red]cannot copy[/red] {event}")
    if len(found) > SHOWN_UNSTORABLE:
        err.print(f"... and {len(found) - SHOWN_UNSTORABLE} more")
    if not skip:
        err.print(
            f"{len(found)} event(s) hold text PostgreSQL cannot store (listed above); nothing was copied."
            " Run again with --skip-unstorable to copy everything else without them."
        )
        raise typer.Exit(1)
    copier.skip = {(e.account_id, e.feature.code, e.seq) for e in found}
    err.print(f"leaving out {len(found)} event(s) PostgreSQL cannot store (listed above)")
