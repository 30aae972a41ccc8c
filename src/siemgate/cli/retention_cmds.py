"""`siemgate retention ...` (show, set, apply) and `siemgate archive ...` (list, verify, replay),
with Rich progress bars on the long ones."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from siemgate.accounts.actor import CLI
from siemgate.cli.common import find_account, services_for, state
from siemgate.cli.output import err, print_json, print_table
from siemgate.errors import BadRequest, SiemgateError
from siemgate.model.durations import MAX_RETENTION_DAYS
from siemgate.model.features import ALL_FEATURES, parse_features

retention_app = typer.Typer(help="How long events are kept, per account and stream.", no_args_is_help=True)
archive_app = typer.Typer(help="Archives of events that left the store: list, verify, replay.", no_args_is_help=True)
ACCOUNT_OPTION = typer.Option(None, "--account", "-a", help="Account uuid or name (default: the only one).")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
    )


@retention_app.command("show")
def show(ctx: typer.Context, account: str = ACCOUNT_OPTION, as_json: bool = typer.Option(False, "--json")) -> None:
    """Each stream's retention (days) and archive format."""
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        policies = [services.retention.policy(acct.id, f) for f in ALL_FEATURES]
        explicit = services.store.retention_policies(acct.id)
    rows = [
        {"feature": p.feature.value, "days": p.days, "archive": p.archive, "default": p.feature not in explicit}
        for p in policies
    ]
    if as_json:
        print_json(rows)
    else:
        print_table(
            f"Retention of {acct.name}",
            ["stream", "days", "archive", "server default"],
            [[r["feature"], r["days"], r["archive"], r["default"]] for r in rows],
        )


@retention_app.command("set")
def set_policy(
    ctx: typer.Context,
    days: int = typer.Argument(..., min=1, max=MAX_RETENTION_DAYS, help="Keep events this many days (at most 36500)."),
    features: str = typer.Option("all", "--features", "-f", help="Streams (comma-separated) or all."),
    archive: str = typer.Option(None, "--archive", help="none, jsonl or parquet (default: unchanged)."),
    account: str = ACCOUNT_OPTION,
) -> None:
    """Set the retention of streams of an account."""
    try:
        chosen = parse_features(features)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        for feature in chosen:
            policy = services.retention.set_policy(CLI, acct, feature, days, archive)
            err.print(f"{feature.value}: {policy.days} days, archive {policy.archive}")


@retention_app.command("apply")
def apply(ctx: typer.Context, account: str = typer.Option(None, "--account", "-a", help="Only this account.")) -> None:
    """Archive (when the policy says so) and purge events older than each stream's retention,
    now. A stream whose archive cannot be written is not purged; the command then exits 1."""
    with services_for(ctx) as services:
        accounts = [find_account(services.store, account)] if account else None
        with _progress() as progress:
            task = progress.add_task("archiving", total=None)

            def step(what: str, done: int) -> None:
                progress.update(task, description=what, advance=done)

            results = services.retention.apply_shared(step, accounts, wait=True)
    failed = [r for r in results if r.error]
    for r in results:
        if r.archived or r.purged or r.alerts_purged or r.error or r.waiting:
            line = f"{r.account} {r.feature.value}: archived {r.archived} in {len(r.files)} file(s), purged {r.purged}"
            line += f", {r.alerts_purged} alert(s) deleted" if r.alerts_purged else ""
            line += f" — STOPPED: {r.error}" if r.error else ""
            line += f" — WAITING: {r.waiting}" if r.waiting else ""
            err.print(line, markup=False, highlight=False)
    if failed:
        raise SiemgateError(f"{len(failed)} stream(s) were not purged because their archive failed (see above)")


def _root(ctx: typer.Context, folder: Path | None) -> Path:
    return folder or state(ctx).settings().archive_path


@archive_app.command("list")
def list_archives(
    ctx: typer.Context, folder: Path = typer.Argument(None, help="Archive folder (default: the server's).")
) -> None:
    """The archived streams and their days."""
    from siemgate.retention.survey import walk

    root = _root(ctx, folder)
    rows: list[list[object]] = []
    problems: list[str] = []
    for stream, found in walk(root):  # a stream at a time: only its summary is kept
        problems += [str(p) for p in found]
        if stream is not None:
            days = [f.day for f in stream.files]
            events = sum(f.events for f in stream.files)
            first, last = (days[0], days[-1]) if days else ("", "")
            rows.append([stream.account, stream.feature.value, len(days), first, last, events])
    print_table(f"Archives in {root}", ["account", "stream", "files", "first day", "last day", "events"], rows)
    for problem in problems:
        err.print(f"problem: {problem}", markup=False, highlight=False)
    if problems:
        err.print(f"{len(problems)} problem(s) in the folder: run `siemgate archive verify`")


@archive_app.command("verify")
def verify(
    ctx: typer.Context, folder: Path = typer.Argument(None, help="Archive folder (default: the server's).")
) -> None:
    """Check the folder and every archive file against its manifest: manifests present and readable,
    no file missing or unlisted, each file's size, SHA-256, rows, event count and first and last
    timestamps. Exits 1 naming each problem."""
    from siemgate.retention.archive import ArchiveError, verify_file
    from siemgate.retention.survey import walk

    root = _root(ctx, folder)
    total = sum(len(stream.files) for stream, _ in walk(root) if stream is not None)  # counted, not kept
    problems: list[str] = []
    streams, files, events = 0, 0, 0
    with _progress() as progress:
        task = progress.add_task("verifying", total=total)
        for stream, found in walk(root):  # a stream at a time
            problems += [str(p) for p in found]
            if stream is None:
                continue
            streams += 1
            for entry in stream.files:
                try:
                    verify_file(stream.folder, entry)
                    events += entry.events
                except ArchiveError as exc:
                    problems.append(str(exc))
                files += 1
                progress.advance(task)
    for problem in problems:
        err.print(f"BAD {problem}", markup=False, highlight=False)
    if problems:
        raise ArchiveError(f"{len(problems)} problem(s) in {root}")
    err.print(f"ok: {streams} stream(s), {files} file(s), {events} event(s) in {root}")


@archive_app.command("replay")
def replay_cmd(
    ctx: typer.Context,
    folder: Path = typer.Argument(None, help="Archive folder (default: the server's)."),
    account: str = typer.Option(None, "--account", "-a", help="Replay into this account (default: the archived one)."),
    archived_account: str = typer.Option(
        None,
        "--archived-account",
        help="Replay only this archived account (uuid); needed with --account when the folder holds several"
        " accounts and none of them is the --account.",
    ),
    features: str = typer.Option("all", "--features", "-f", help="Streams (comma-separated) or all."),
    since: str = typer.Option(None, "--since", help="First day (YYYY-MM-DD)."),
    until: str = typer.Option(None, "--until", help="Last day (YYYY-MM-DD)."),
    unchecked: bool = typer.Option(
        False,
        "--unchecked",
        help="Also replay rows that cannot be checked against the signed log of the account the archive"
        " carries (archived before log indices, beyond a log restored from an older backup, or of an"
        " account not in this store); the audit record counts them.",
    ),
) -> None:
    """Load archived events back into the store (uuids and timestamps kept; events already there
    are duplicates and stored once). With --account and a folder holding several accounts, only
    that account's archive is replayed. Mind the stream's retention: events older than it are
    purged again by the next run (raise it first with `siemgate retention set`)."""
    from siemgate.retention.replay import plan_replay, replay

    root = _root(ctx, folder)
    try:
        chosen = parse_features(features)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    for name, day in (("--since", since), ("--until", until)):
        if day is not None and not _is_day(day):
            raise typer.BadParameter(f"{name}: give a day as YYYY-MM-DD, not {day!r}")
    with services_for(ctx) as services:
        target = find_account(services.store, account) if account else None
        plans = plan_replay(
            services.store,
            root,
            account=target,
            archived_account=archived_account,
            features=chosen,
            since=since,
            until=until,
        )
        if not any(p.files for p in plans):
            raise BadRequest(f"no archive files to replay in {root} for the streams and days chosen")
        with _progress() as progress:
            task = progress.add_task("replaying", total=sum(p.events for p in plans))
            result = replay(
                services.writer, plans, lambda n: progress.advance(task, n), services.audit, CLI, unchecked=unchecked
            )
    err.print(
        f"replayed {result.events} event(s) from {result.files} file(s): {result.stored} stored,"
        f" {result.duplicates} already there"
    )


def _is_day(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10
