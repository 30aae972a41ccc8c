"""One sink's side of a pipeline: batching, retries, poison isolation and dead letters.

Records arrive in pipeline order, each with a sequence number. They wait in a buffer until a batch
is full (events or bytes) or its oldest record has waited `linger` seconds; then the batch is sent
and this returns only when every record of it is *done*: acknowledged by the destination, or
written to the dead-letter file. `acked` is the sequence number below which every record is done;
the pipeline commits a page's cursor when every sink's `acked` has passed the page's end.

Outcomes of a send (the sink classifies, errors.py):
- success: the batch is done;
- SinkRetryable (429, 5xx, network, credentials): wait (exponential backoff with full jitter, at
  least `Retry-After`) and send the same batch again, until it succeeds or a stop is requested;
  an outage is logged once (retries.py), every retry counted;
- SinkPoison: a batch of one record is dead-lettered with the reason; a larger batch is split in
  halves, which are sent in order, so the bad record is isolated in log2(n) rounds;
- SinkPartial: accepted records are done, poison ones are dead-lettered, the rest are sent again
  (after a wait, as for SinkRetryable; as for SinkAuthError when they were refused for the credential);
- a reply the sink cannot read (LookupError, TypeError, ValueError, AttributeError while parsing
  it): retried as SinkRetryable is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from siemgate.forward.backoff import Backoff
from siemgate.forward.deadletter import DeadLetterFile
from siemgate.forward.errors import SinkAuthError, SinkPartial, SinkPoison, SinkRetryable, Stopped
from siemgate.forward.metrics import ForwardMetrics
from siemgate.forward.records import Record
from siemgate.forward.retries import Retries
from siemgate.forward.sinks.base import Item, Sink

log = logging.getLogger("siemgate.forward")


class SinkDelivery:
    """Buffers and delivers records to one sink for one pipeline. Not thread-safe."""

    def __init__(
        self,
        sink: Sink,
        source: str,
        dead_letters: DeadLetterFile,
        metrics: ForwardMetrics,
        stop: threading.Event,
        *,
        backoff: Callable[[], Backoff] = Backoff,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.source = source
        self.dead_letters = dead_letters
        self.stop = stop
        self.backoff_factory = backoff
        self.clock = clock
        self.pending: list[Item] = []
        self.pending_bytes = 0
        self.first_pending_at = 0.0
        self.next_seq = 0
        self._done_below = 0
        self.pending_key: object = None
        labels = (source, sink.name)
        self.retries = Retries(
            sink.name, f"sink {sink.name}", metrics.retries.labels(*labels), {"source": source, "sink": sink.name}
        )
        self._retried = 0
        self._out = metrics.events_out.labels(*labels)
        self._bytes = metrics.bytes_out.labels(*labels)
        self._batches = metrics.batches.labels(*labels)
        self._dead = metrics.dead_letters.labels(*labels)
        self._up = metrics.sink_up.labels(*labels)
        self._up.set(1)

    @property
    def last_error(self) -> str | None:
        """Why the sink is failing (for /readyz), or None."""
        return self.retries.failing

    @property
    def acked(self) -> int:
        """Every record with a sequence number below this is done."""
        return self.pending[0].seq if self.pending else self.next_seq

    def add(self, records: Sequence[Record], first_seq: int) -> None:
        """Buffer `records` (numbered from `first_seq`) and send every batch that is full.

        Raises Stopped when a stop is requested while a send is failing.
        """
        limits = self.sink.limits
        max_events, max_bytes = limits.max_events, limits.max_bytes
        encode = self.sink.encode
        keyed = type(self.sink).batch_key is not Sink.batch_key
        pending = self.pending
        seq = first_seq - 1
        for seq, record in enumerate(records, first_seq):
            try:
                data = encode(record)
            except (ValueError, TypeError) as exc:
                self._flush_before_dead_letter(seq)
                self._dead_letter(Item(seq, record, b""), f"cannot encode for {self.sink.kind}: {exc}", None)
                pending = self.pending
                continue
            size = len(data) + 1
            if size > max_bytes:
                self._flush_before_dead_letter(seq)
                reason = f"{size} bytes encoded, over the sink's limit of {max_bytes} bytes per request"
                self._dead_letter(Item(seq, record, data), reason, None)
                pending = self.pending
                continue
            key = self.sink.batch_key(record) if keyed else None
            if pending and (
                len(pending) >= max_events or self.pending_bytes + size > max_bytes or key != self.pending_key
            ):
                self._send_pending()
                pending = self.pending
            if not pending:
                self.first_pending_at = self.clock()
                self.pending_key = key
            pending.append(Item(seq, record, data))
            self.pending_bytes += size
        self.next_seq = max(self.next_seq, seq + 1)
        if pending and len(pending) >= max_events:
            self._send_pending()

    def _flush_before_dead_letter(self, seq: int) -> None:
        """Keep `acked` a prefix: with nothing pending, the dead letter's position is done once written."""
        if not self.pending:
            self.next_seq = seq + 1

    def due(self) -> bool:
        """True when a partial batch has waited its linger time."""
        return bool(self.pending) and self.clock() - self.first_pending_at >= self.sink.limits.linger

    def flush(self) -> None:
        """Send whatever is buffered. Raises Stopped as `add` does."""
        if self.pending:
            self._send_pending()

    def _send_pending(self) -> None:
        batch = self.pending
        self.pending = []
        self.pending_bytes = 0
        try:
            self._deliver(batch)
        except Stopped:
            # Put back what was not done so `acked` stays honest about it.
            self.pending = [item for item in batch if item.seq >= self._done_below] + self.pending
            self.pending_bytes = sum(len(i.data) + 1 for i in self.pending)
            raise

    def _deliver(self, batch: list[Item]) -> None:
        """Send `batch` until every record is done (module docstring)."""
        queue: list[list[Item]] = [batch]
        backoff = self.backoff_factory()
        self._done_below = batch[0].seq
        while queue:
            part = queue.pop(0)
            try:
                self.sink.send(part)
            except SinkPartial as exc:
                done = [i for n, i in enumerate(part) if n not in exc.poison and n not in set(exc.retry)]
                self._acknowledged(done)
                for n, reason in sorted(exc.poison.items()):
                    self._dead_letter(part[n], reason, exc.http_status)
                again = [part[n] for n in sorted(set(exc.retry))]
                if again:
                    self._wait(backoff, exc.retry_after, exc.message, auth=exc.credential)
                    queue.insert(0, again)
                else:
                    self._answered()
                    self._advance(part)
                continue
            except SinkPoison as exc:
                self._answered()
                if len(part) == 1:
                    self._dead_letter(part[0], exc.message, exc.http_status)
                    self._advance(part)
                else:
                    half = len(part) // 2
                    queue[0:0] = [part[:half], part[half:]]
                continue
            except SinkRetryable as exc:
                self._wait(backoff, exc.retry_after, exc.message, auth=isinstance(exc, SinkAuthError))
                queue.insert(0, part)
                continue
            except (LookupError, TypeError, ValueError, AttributeError) as exc:
                # A reply the sink could not read (not the shape its API documents): like a 5xx, it
                # is retried; it must not end the pipeline, and with it every other one.
                self._wait(backoff, None, f"{self.sink.name} could not read the reply ({type(exc).__name__}: {exc})")
                queue.insert(0, part)
                continue
            backoff.reset()
            self._answered()
            self._acknowledged(part)
            self._advance(part)

    def _answered(self) -> None:
        """The sink answered (took the data or refused it): no longer failing."""
        self._up.set(1)
        self.retries.recovered(self.sink.describe(), self._retried)
        self._retried = 0

    def _advance(self, part: list[Item]) -> None:
        self._done_below = part[-1].seq + 1

    def _acknowledged(self, items: list[Item]) -> None:
        if items:
            self._out.inc(len(items))
            self._bytes.inc(sum(map(len, (i.data for i in items))))
            self._batches.inc()

    def _dead_letter(self, item: Item, reason: str, status: int | None) -> None:
        self.dead_letters.write(self.sink.name, item.record, reason, status)
        self._dead.inc()
        log.warning(
            "dead letter: %s refused an event",
            self.sink.name,
            extra={"source": self.source, "sink": self.sink.name, "uuid": item.record.uuid, "reason": reason},
        )

    def _wait(self, backoff: Backoff, retry_after: float | None, reason: str, *, auth: bool = False) -> None:
        delay = backoff.next_delay(retry_after)
        self._up.set(0)
        self._retried += 1
        self.retries.retry(reason, delay, credential=auth)
        if self.stop.wait(delay):
            raise Stopped(f"stopped while {self.sink.name} was failing: {reason}")
