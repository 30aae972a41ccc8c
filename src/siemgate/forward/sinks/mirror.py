"""The `siemgate` sink: mirror the events into a local siemgate store, so a team can keep their
1Password events beyond 120 days and serve them again to several SIEMs (docs/forwarding.md).

Events are written through the store's EventWriter with lenient validation (strict=False): fields
and values newer than siemgate knows are kept exactly as received. A write is atomic and an event
already stored (same uuid and timestamp) is a duplicate, not a second copy, so re-delivery after a
crash is harmless. An event the writer refuses (no usable uuid or timestamp) is poison.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field, field_validator

from siemgate.config import load_settings
from siemgate.errors import InvalidEventBatch, SiemgateError, StoreError
from siemgate.forward.errors import ForwardConfigError, SinkPoison, SinkRetryable
from siemgate.forward.formats import Formatter
from siemgate.forward.records import Record
from siemgate.forward.sinks.base import BatchLimits, Item, Sink, SinkConfig, SinkContext
from siemgate.store.ingest import EventWriter


class MirrorConfig(SinkConfig):
    type: Literal["siemgate"]
    account: str = Field(description="The local account (uuid or name) that receives the events.")
    data_dir: Path | None = Field(None, description="The siemgate data directory (default: SIEMGATE_DATA_DIR).")
    database_url: str | None = None

    default_limits: ClassVar[BatchLimits] = BatchLimits(1000, 16 * 1024 * 1024, 0.5)

    @field_validator("format")
    @classmethod
    def _raw_only(cls, value: str) -> str:
        if value != "raw":
            raise ValueError('the siemgate sink stores events as received: use format = "raw"')
        return value

    def build(self, name: str, context: SinkContext) -> Sink:
        if context.open_store is None:
            raise ForwardConfigError(f"sink {name}: no store factory was given to open the siemgate store")
        settings = load_settings(data_dir=self.data_dir, database_url=self.database_url)
        store = context.open_store(settings)
        try:
            account = store.get_account(self.account)
        except SiemgateError as exc:
            store.close()
            raise ForwardConfigError(f"sink {name}: account {self.account!r}: {exc.message}") from None
        writer = EventWriter(store, time.time_ns, max_event_bytes=settings.ingest_max_event_bytes)
        return MirrorSink(name, self.formatter(), self.limits(), store, writer, account.id, account.name)


class MirrorSink(Sink):
    kind = "siemgate"

    def __init__(
        self,
        name: str,
        formatter: Formatter,
        limits: BatchLimits,
        store: Any,
        writer: EventWriter,
        account_id: int,
        label: str,
    ) -> None:
        super().__init__(name, formatter, limits)
        self.store = store
        self.writer = writer
        self.account_id = account_id
        self.label = label

    def describe(self) -> str:
        return f"siemgate store, account {self.label}"

    def batch_key(self, record: Record) -> object:
        return record.feature

    def encode(self, record: Record) -> bytes:
        return orjson.dumps(record.event)

    def send(self, batch: Sequence[Item]) -> None:
        feature = batch[0].record.feature
        try:
            self.writer.write(self.account_id, feature, [item.record.event for item in batch], strict=False)
        except InvalidEventBatch as exc:
            raise SinkPoison(f"siemgate refused the event: {exc.message}", 400) from None
        except StoreError as exc:
            raise SinkRetryable(f"the siemgate store failed: {exc}") from None

    def health(self) -> list[str]:
        try:
            self.store.get_account_by_id(self.account_id)
        except SiemgateError as exc:
            return [f"the siemgate store is not usable: {exc}"]
        return []

    def close(self) -> None:
        self.store.close()
