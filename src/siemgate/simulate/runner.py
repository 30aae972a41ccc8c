"""Writing simulated events to a store: a history with a progress bar, or a live stream until stopped.

Everything goes through `EventWriter.write(..., strict=True)`, the path every producer takes, in
batches of at most `batch_size` events per feature, in insertion order.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.timestamps import parse_ns
from siemgate.simulate.generator import DAY, SECOND, history, live_events
from siemgate.simulate.world import World
from siemgate.store.ingest import EventWriter, WriteResult

BATCH_SIZE = 1000


class _Totals:
    def __init__(self) -> None:
        self.counts = {f: [0, 0, 0] for f in ALL_FEATURES}

    def add(self, feature: Feature, result: WriteResult) -> None:
        c = self.counts[feature]
        c[0] += result.received
        c[1] += result.stored
        c[2] += result.duplicates

    def results(self) -> dict[Feature, WriteResult]:
        return {f: WriteResult(*c) for f, c in self.counts.items()}

    @property
    def stored(self) -> int:
        return sum(c[1] for c in self.counts.values())


def simulate_history(
    writer: EventWriter,
    account_id: int,
    world: World,
    *,
    days: float,
    end_ns: int,
    seed: int,
    progress: bool = True,
    console: Console | None = None,
    batch_size: int = BATCH_SIZE,
) -> dict[Feature, WriteResult]:
    """Generate and store `days` of history ending at `end_ns`; return the totals per feature.

    Deterministic in (world, days, end_ns, seed): running it again stores nothing new (every event
    is reported as a duplicate). With `progress`, shows a Rich progress bar on `console` (default:
    stderr); when that is not a terminal, prints a plain line at every tenth of the way instead.
    Raises ValueError when days is not positive; InvalidEventBatch if an event failed validation
    (a bug: every generated event is meant to be valid), with the batches before it kept.
    """
    if not days > 0:
        raise ValueError(f"days must be positive, got {days}")
    start_ns = end_ns - int(days * DAY)
    totals = _Totals()
    buffers: dict[Feature, list[dict[str, Any]]] = {f: [] for f in ALL_FEATURES}
    reporter = _Reporter(console or Console(stderr=True), start_ns, end_ns, progress)
    with reporter:
        for feature, event in history(world, start_ns, end_ns, seed):
            buffer = buffers[feature]
            buffer.append(event)
            if len(buffer) >= batch_size:
                totals.add(feature, writer.write(account_id, feature, buffer, strict=True, history=True))
                reporter.update(parse_ns(buffer[-1]["timestamp"]), totals.stored)
                buffers[feature] = []
        for feature, buffer in buffers.items():
            if buffer:
                totals.add(feature, writer.write(account_id, feature, buffer, strict=True, history=True))
        reporter.update(end_ns, totals.stored)
    return totals.results()


class _Reporter:
    """A Rich progress bar over simulated time, or plain lines when the console is not a terminal."""

    def __init__(self, console: Console, start_ns: int, end_ns: int, enabled: bool) -> None:
        self.console = console
        self.start_ns = start_ns
        self.span = max(1, end_ns - start_ns)
        self.enabled = enabled
        self.fancy = enabled and console.is_terminal
        self.done = 0
        self.next_tenth = 1
        self.started = time.monotonic()
        self.progress = Progress(
            TextColumn("[bold]simulating[/] {task.fields[day]}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[events]:,} events"),
            TimeElapsedColumn(),
            console=console,
            disable=not self.fancy,
        )
        self.task = self.progress.add_task("history", total=self.span, day="", events=0)

    def __enter__(self) -> _Reporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, ts_ns: int, events: int) -> None:
        done = min(self.span, max(self.done, ts_ns - self.start_ns))  # late events do not move it back
        self.done = done
        total_days = max(1, math.ceil(self.span / DAY))
        day = f"day {min(total_days, done // DAY + 1)}/{total_days}"
        self.progress.update(self.task, completed=done, day=day, events=events)
        if self.enabled and not self.fancy and done * 10 >= self.next_tenth * self.span:
            self.next_tenth = done * 10 // self.span + 1
            elapsed = time.monotonic() - self.started
            self.console.print(f"simulating: {done * 100 // self.span}%, {events:,} events, {elapsed:.1f}s")


def run_live(
    writer: EventWriter,
    account_id: int,
    world: World,
    *,
    seed: int,
    rate: float | None = None,
    stop: threading.Event,
    clock: Callable[[], int] = time.time_ns,
    flush_interval: float = 0.5,
    on_write: Callable[[Feature, WriteResult], None] | None = None,
) -> int:
    """Write live activity until `stop` is set: about `rate` actions per second plus bursts, or without
    `rate` the rhythm of the world's history (`generator.live_events`).

    Events carry current timestamps: each is written once `clock()` (ns, wall clock; it must advance
    in real time) has reached its due time, in batches flushed at least every `flush_interval`
    seconds. Returns within about a millisecond of `stop` being set, after writing what is due;
    returns the number of events stored. Runs in the calling thread. From the CLI, block on it with
    a SIGINT handler that sets `stop` (Ctrl-C then ends it cleanly, pending events written); from
    the server demo, start it in a background thread and set `stop` on shutdown. `on_write` sees
    each batch's result. Raises ValueError for a non-positive rate or flush interval.
    """
    if not flush_interval > 0:
        raise ValueError(f"flush_interval must be positive, got {flush_interval}")
    flush_ns = int(flush_interval * SECOND)
    pending: dict[Feature, list[dict[str, Any]]] = {}
    stored = 0

    def flush() -> None:
        nonlocal stored
        for feature, events in pending.items():
            result = writer.write(account_id, feature, events, strict=True)
            stored += result.stored
            if on_write is not None:
                on_write(feature, result)
        pending.clear()

    start = clock()
    next_flush = start + flush_ns
    for due, feature, event in live_events(world, seed, start, rate):
        while True:
            now = clock()
            if stop.is_set():
                flush()
                return stored
            if pending and (now >= next_flush or sum(map(len, pending.values())) >= BATCH_SIZE):
                flush()
                next_flush = now + flush_ns
            if due <= now:
                break
            wake = min(due, next_flush) if pending else due
            stop.wait(max(0, wake - now) / SECOND)
        pending.setdefault(feature, []).append(event)
    raise AssertionError("live_events never ends")  # pragma: no cover
