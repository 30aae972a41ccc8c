"""`siemgate forward`: deliver events from an Events API into SIEMs (docs/forwarding.md).

siemgate forward --config forward.toml            run until stopped (SIGTERM or Ctrl-C: clean stop)
siemgate forward --config forward.toml --once     drain every stream to its head, deliver, exit (cron)
siemgate forward check --config forward.toml      contact every source and sink, say what is wrong
siemgate forward status --config forward.toml     where each stream is
siemgate forward reset --config forward.toml --source S --feature F [--start-time T]
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

from siemgate.cli.output import err
from siemgate.logs import configure_logging
from siemgate.model.features import Feature
from siemgate.model.timestamps import TimestampError, normalize

if TYPE_CHECKING:
    from siemgate.forward.config import ForwardConfig

forward_app = typer.Typer(
    help="Forward events from an Events API (siemgate's or 1Password's) into SIEMs.",
    invoke_without_command=True,
    no_args_is_help=False,
)
CONFIG_HELP = "The forwarder's TOML file (docs/forwarding.md)."


def _config(ctx: typer.Context, given: Path | None) -> ForwardConfig:
    from siemgate.forward.config import load_config

    path = given or ctx.meta.get("forward_config")
    if path is None:
        raise typer.BadParameter("give the configuration file with --config forward.toml")
    return load_config(Path(path))


@forward_app.callback()
def forward(
    ctx: typer.Context,
    config: Path = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    once: bool = typer.Option(False, "--once", help="Drain every stream to its head, deliver, and exit."),
) -> None:
    """Poll the sources and deliver into the sinks; runs until stopped unless --once."""
    from siemgate.composition.stores import open_store
    from siemgate.forward.runner import Forwarder

    if config is not None:
        ctx.meta["forward_config"] = config
    if ctx.invoked_subcommand is not None:
        return
    cfg = _config(ctx, config)
    configure_logging(cfg.forwarder.log_level, cfg.forwarder.log_format)
    forwarder = Forwarder(cfg, open_store=open_store)

    def stop(signum: int, frame: FrameType | None) -> None:
        forwarder.stop.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = forwarder.run(once=once)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for problem in forwarder.problems():
        err.print(f"[red]✗[/red] {problem}")
    raise typer.Exit(code)


@forward_app.command("check")
def check_cmd(ctx: typer.Context, config: Path = typer.Option(None, "--config", "-c", help=CONFIG_HELP)) -> None:
    """Run every health check: the token of each source, each sink's reachability and credentials."""
    from siemgate.composition.stores import open_store
    from siemgate.forward.runner import check

    results = check(_config(ctx, config), open_store)
    failed = False
    for result in results:
        if result.problems:
            failed = True
            err.print(f"[red]✗[/red] {result.what}")
            for problem in result.problems:
                err.print(f"    {problem}", markup=False, highlight=False)
        else:
            err.print(f"[green]✓[/green] {result.what}", markup=True, highlight=False)
    raise typer.Exit(1 if failed else 0)


@forward_app.command("status")
def status_cmd(ctx: typer.Context, config: Path = typer.Option(None, "--config", "-c", help=CONFIG_HELP)) -> None:
    """Each stream's checkpoint: events delivered, last commit, whether it has a cursor yet."""
    from siemgate.forward.checkpoint import read_positions

    cfg = _config(ctx, config)
    positions = read_positions(cfg.forwarder.checkpoint_path)  # no lock: answers while a forwarder runs
    if not positions:
        err.print("no stream has started yet")
    for p in positions:
        where = "cursor stored" if p.cursor else f"will reset from {p.start_time}"
        sys.stdout.write(f"{p.stream}\t{p.events} events delivered\tlast commit {p.updated_at}\t{where}\n")


@forward_app.command("reset")
def reset_cmd(
    ctx: typer.Context,
    source: str = typer.Option(..., "--source", help="The [sources.NAME] of the stream."),
    feature: str = typer.Option(..., "--feature", help="signinattempts, itemusages or auditevents."),
    start_time: str = typer.Option(None, "--start-time", help="RFC 3339; default the source's start_time or now - 1h."),
    config: Path = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
) -> None:
    """Forget a stream's cursor so its next start is a reset (e.g. after the Events API refused it)."""
    from siemgate.forward.checkpoint import CheckpointStore

    cfg = _config(ctx, config)
    if source not in cfg.sources:
        raise typer.BadParameter(f"no source {source!r}; the configuration has {', '.join(cfg.sources)}")
    try:
        name = f"{source}/{Feature(feature).value}"
        start = normalize(start_time) if start_time else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    except TimestampError as exc:
        raise typer.BadParameter(f"--start-time: {exc}") from None
    with CheckpointStore(cfg.forwarder.checkpoint_path) as store:
        store.delete(name)
        if start is not None:
            store.begin(name, start)
    err.print(f"{name}: the next start resets from {start or 'the configured start_time (default now - 1h)'}")
