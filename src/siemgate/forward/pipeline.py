"""One source, several sinks: poll every stream of the source, hand each page to every sink, and
commit a page's cursor once every sink has acknowledged it (docs/forwarding.md).

Pages are numbered by the events they carry (a running sequence over all the source's streams).
A page is committable when every sink's `acked` has passed its last event; committable pages are
committed in order, a whole prefix at a time, in one SQLite transaction. Nothing is committed
ahead of a page that is still unacknowledged, so a crash re-delivers at most those pages.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from siemgate.forward.client import EventStream, Page, seconds_since
from siemgate.forward.delivery import SinkDelivery
from siemgate.forward.errors import CursorRejected, SourceError, SourceUnauthorized, Stopped
from siemgate.forward.metrics import ForwardMetrics
from siemgate.forward.records import make_record

log = logging.getLogger("siemgate.forward")


@dataclass(slots=True)
class _Pending:
    stream: EventStream
    page: Page
    end: int  # sequence number after the page's last event


@dataclass(slots=True)
class StreamState:
    stream: EventStream
    prefetch: Future[Page] | None = None  # the next page, requested while this one is delivered
    at_head: bool = False
    error: str | None = None
    pending_pages: int = 0
    newest: object = None  # timestamp of the newest event fetched
    repeating: bool = False  # the source served events again, and has not served new ones since


@dataclass
class Pipeline:
    """Runs one source's streams into its sinks. `run()` blocks; `stop` ends it cleanly."""

    source: str
    streams: list[EventStream]
    deliveries: list[SinkDelivery]
    metrics: ForwardMetrics
    stop: threading.Event
    poll_interval: float = 10.0
    on_idle: Callable[[], None] | None = None  # called each time every stream is at its head (tests)
    states: list[StreamState] = field(default_factory=list)
    drained: bool = False  # run(once=True) reached every stream's head, rather than being stopped
    _pending: list[_Pending] = field(default_factory=list)
    _seq: int = 0
    _fetcher: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        self.states = [StreamState(s) for s in self.streams]
        for state in self.states:
            self.metrics.stream_up.labels(self.source, state.stream.feature.value).set(1)

    def problems(self) -> list[str]:
        """What keeps this pipeline from being ready: stopped streams and failing sinks."""
        found = [f"{self.source}/{s.stream.feature.value}: {s.error}" for s in self.states if s.error]
        found += [f"{self.source} → {d.sink.name}: {d.last_error}" for d in self.deliveries if d.last_error]
        return found

    def run(self, *, once: bool = False) -> bool:
        """Poll until stopped (or, with `once`, until every stream is at its head and delivered).

        Returns True when every stream is still healthy, False when one stopped on an error
        (401, a refused cursor, ...). Never commits an unacknowledged page.
        """
        self._fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fetch-{self.source}")
        try:
            while not self.stop.is_set():
                active = [s for s in self.states if s.error is None]
                if not active:
                    break
                busy = False
                for state in active:
                    self._poll(state)
                    busy = busy or not state.at_head
                for delivery in self.deliveries:
                    if delivery.due():
                        delivery.flush()
                self._commit()
                if busy:
                    continue
                for delivery in self.deliveries:
                    delivery.flush()
                self._commit()
                if self.on_idle is not None:
                    self.on_idle()
                if once:
                    self.drained = True
                    break
                if self.stop.wait(self.poll_interval):
                    break
        except Stopped:
            log.info("pipeline %s: stop requested", self.source)
        finally:
            self._fetcher.shutdown(wait=True, cancel_futures=True)
        self._drain_on_stop()
        return all(s.error is None for s in self.states)

    def _poll(self, state: StreamState) -> None:
        stream = state.stream
        feature = stream.feature.value
        try:
            page = state.prefetch.result() if state.prefetch is not None else stream.fetch()
        except (SourceUnauthorized, CursorRejected, SourceError) as exc:
            state.prefetch = None
            state.error = exc.message
            self.metrics.stream_up.labels(self.source, feature).set(0)
            log.error("stream %s/%s stopped: %s", self.source, feature, exc.message)
            return
        state.prefetch = None
        self._note_repeats(state, page)
        # An empty page counts as the head even if it says has_more (the API allows that): poll
        # again after poll_interval instead of spinning on empty pages.
        state.at_head = not (page.has_more and page.items)
        if not state.at_head and self._fetcher is not None and not self.stop.is_set():
            # Ask for the next page now: the request waits on the network while this one is delivered.
            # Only the fetch position moves ahead; commits still wait for the sinks.
            state.prefetch = self._fetcher.submit(stream.fetch)
        if not page.items and page.cursor == page.request_cursor:
            return
        first = self._seq
        logs: list[tuple[int, str] | None] = list(page.log) if page.log else [None] * len(page.items)
        records = [
            make_record(stream.feature, item, self.source, log) for item, log in zip(page.items, logs, strict=True)
        ]
        self._seq += len(records)
        if records:
            self.metrics.events_in.labels(self.source, feature).inc(len(records))
            state.newest = records[-1].event.get("timestamp")
        self._pending.append(_Pending(stream, page, self._seq))
        state.pending_pages += 1
        for delivery in self.deliveries:
            delivery.add(records, first)

    def _note_repeats(self, state: StreamState, page: Page) -> None:
        """Count the events `page` left out as served again, and say so once while it lasts."""
        feature = state.stream.feature.value
        if page.repeated:
            self.metrics.repeated.labels(self.source, feature).inc(page.repeated)
            if not state.repeating:
                log.warning(
                    "stream %s/%s: the Events API served %d events again that this stream had fetched"
                    " (its cursor repeated or went back); they are left out, and a page of nothing new"
                    " counts as the head of the stream",
                    self.source,
                    feature,
                    page.repeated,
                    extra={"source": self.source},
                )
            state.repeating = True
        elif page.items:
            state.repeating = False

    def _commit(self) -> None:
        acked = min((d.acked for d in self.deliveries), default=self._seq)
        ready = 0
        while ready < len(self._pending) and self._pending[ready].end <= acked:
            ready += 1
        if not ready:
            return
        done, self._pending = self._pending[:ready], self._pending[ready:]
        latest: dict[str, tuple[EventStream, str, int]] = {}
        for entry in done:
            name = entry.stream.name
            previous = latest.get(name)
            count = len(entry.page.items) + (previous[2] if previous else 0)
            latest[name] = (entry.stream, entry.page.cursor, count)
        checkpoint = self.streams[0].checkpoint if self.streams else None
        if checkpoint is not None:
            checkpoint.commit((name, cursor, count) for name, (_, cursor, count) in latest.items())
        for entry in done:
            state = next(s for s in self.states if s.stream is entry.stream)
            state.pending_pages -= 1
        for state in self.states:
            if state.stream.name in latest:
                self._report_lag(state)

    def _report_lag(self, state: StreamState) -> None:
        labels = (self.source, state.stream.feature.value)
        self.metrics.committed.labels(*labels).set_to_current_time()
        if state.at_head and state.pending_pages == 0:
            self.metrics.lag.labels(*labels).set(0)
        else:
            lag = seconds_since(state.newest)
            if lag is not None:
                self.metrics.lag.labels(*labels).set(max(0.0, lag))

    def _drain_on_stop(self) -> None:
        """On the way out, send what is buffered if the sinks take it at once, and commit it."""
        try:
            for delivery in self.deliveries:
                delivery.flush()
        except Stopped:
            pass
        self._commit()
