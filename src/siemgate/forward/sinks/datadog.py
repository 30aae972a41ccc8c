"""Datadog Logs intake v2 (docs/forwarding.md): `POST https://http-intake.logs.<site>/api/v2/logs`, a JSON
array of logs with `ddsource=1password`, `service=1password` and the event's fields as attributes.

Limits: 1000 logs and 5 MB (uncompressed) per request; batches default to 4.25 MB to keep
headroom, as Vector does. 202 is success; 400 poison; 401/403 credential; 413 split; 408, 429, 5xx
retry. Datadog accepts only events from the last 18 hours: a backfill of older events is dropped
by Datadog (not by siemgate).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field

from siemgate.forward.formats import Formatter
from siemgate.forward.records import Record
from siemgate.forward.sinks.base import BatchLimits, Item, Secret, Sink, SinkContext, Url
from siemgate.forward.sinks.http import HttpSink, HttpSinkConfig, where


class DatadogConfig(HttpSinkConfig):
    type: Literal["datadog"]
    api_key: Secret
    site: str = Field("datadoghq.com", description="datadoghq.com, us3.datadoghq.com, datadoghq.eu, ...")
    url: Url | None = Field(None, description="Intake base URL; default https://http-intake.logs.<site>.")
    validate_url: Url | None = Field(None, description="API key check; default https://api.<site>/api/v1/validate.")
    service: str = "1password"
    source: str = "1password"
    tags: list[str] = Field(default_factory=list)
    hostname: str | None = None

    default_limits: ClassVar[BatchLimits] = BatchLimits(1000, 4_250_000, 5.0)
    hard_max_bytes: ClassVar[int | None] = 5_000_000

    def build(self, name: str, context: SinkContext) -> Sink:
        return DatadogSink(name, self.formatter(), self.limits(), self, context.source)


class DatadogSink(HttpSink):
    kind = "datadog"
    ok_statuses = frozenset({200, 202})

    def __init__(
        self, name: str, formatter: Formatter, limits: BatchLimits, config: DatadogConfig, source: str
    ) -> None:
        super().__init__(name, formatter, limits, config)
        self.config = config
        base = str(config.url).rstrip("/") if config.url else f"https://http-intake.logs.{config.site}"
        self.intake = f"{base}/api/v2/logs"
        if config.validate_url:
            self.validate = str(config.validate_url)
        else:
            self.validate = f"{base}/api/v1/validate" if config.url else f"https://api.{config.site}/api/v1/validate"
        self.headers = {"DD-API-KEY": config.api_key.get_secret_value(), "Content-Type": "application/json"}
        self.tags = ",".join([f"source_name:{source}", *config.tags])

    def describe(self) -> str:
        return f"datadog {where(self.intake)}"

    def encode(self, record: Record) -> bytes:
        log: dict[str, Any] = dict(self.formatter(record))
        log.update(
            ddsource=self.config.source,
            service=self.config.service,
            ddtags=f"{self.tags},feature:{record.feature.value}",
        )
        if self.config.hostname:
            log["hostname"] = self.config.hostname
        if "timestamp" not in log and isinstance(record.event.get("timestamp"), str):
            log["timestamp"] = record.event["timestamp"]
        return orjson.dumps(log)

    def send(self, batch: Sequence[Item]) -> None:
        body = b"[" + b",".join(item.data for item in batch) + b"]"
        self.check(self.post(self.intake, body, self.headers))

    def health(self) -> list[str]:
        import httpx

        try:
            response = self.http.get(self.validate, headers={"DD-API-KEY": self.headers["DD-API-KEY"]})
        except httpx.TransportError as exc:
            return [f"cannot reach {where(self.validate)}: {type(exc).__name__}: {exc}"]
        if response.status_code != 200:
            return [f"the API key was refused by {where(self.validate)} ({response.status_code})"]
        return []
