"""Google Security Operations (Chronicle) Ingestion API v2, unstructured log entries
(docs/forwarding.md, "Google SecOps").

`POST https://<region>-malachiteingestion-pa.googleapis.com/v2/unstructuredlogentries:batchCreate`
with `{"customer_id", "log_type", "namespace"?, "labels"?, "entries": [{"log_text", "ts_epoch_microseconds"}]}`
and an OAuth2 token of a service account (JWT bearer grant, scope `malachite-ingestion`). Google's
1Password parsers read the raw JSON, so the raw format is the one to use. One request holds one
log type (`ONEPASSWORD` for sign-ins and item usages, `ONEPASSWORD_AUDIT_EVENTS` for audit events
by default), so batches never mix them. At most 1 MB per request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field

from siemgate.forward.errors import ForwardConfigError, SinkRetryable
from siemgate.forward.formats import Formatter
from siemgate.forward.records import Record
from siemgate.forward.sinks.base import BatchLimits, Item, Sink, SinkContext, Url
from siemgate.forward.sinks.http import HttpSink, HttpSinkConfig, where
from siemgate.forward.sinks.oauth import ServiceAccountJwt
from siemgate.model.timestamps import TimestampError, parse_ns

SCOPE = "https://www.googleapis.com/auth/malachite-ingestion"
DEFAULT_LOG_TYPES = {
    "signinattempts": "ONEPASSWORD",
    "itemusages": "ONEPASSWORD",
    "auditevents": "ONEPASSWORD_AUDIT_EVENTS",
}


class SecOpsConfig(HttpSinkConfig):
    type: Literal["secops"]
    customer_id: str
    credentials_file: Path = Field(description="The service account's JSON key file (kept secret: mode 0600).")
    region: str = Field("us", description="us, europe, asia-southeast1, ... (the ingestion host's prefix).")
    url: Url | None = Field(None, description="Override the ingestion base URL.")
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    log_types: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_LOG_TYPES))

    default_limits: ClassVar[BatchLimits] = BatchLimits(10_000, 950_000, 5.0)
    hard_max_bytes: ClassVar[int | None] = 1_000_000

    def build(self, name: str, context: SinkContext) -> Sink:
        try:
            key = orjson.loads(self.credentials_file.read_bytes())
            account = {k: str(key[k]) for k in ("client_email", "private_key", "token_uri")}
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ForwardConfigError(
                f"sink {name}: {self.credentials_file} is not a service account key file ({type(exc).__name__})"
            ) from None
        return SecOpsSink(name, self.formatter(), self.limits(), self, account)


class SecOpsSink(HttpSink):
    kind = "secops"

    def __init__(
        self, name: str, formatter: Formatter, limits: BatchLimits, config: SecOpsConfig, account: dict[str, str]
    ) -> None:
        super().__init__(name, formatter, limits, config)
        self.config = config
        self.account = account
        prefix = "" if config.region == "us" else f"{config.region}-"
        base = str(config.url).rstrip("/") if config.url else f"https://{prefix}malachiteingestion-pa.googleapis.com"
        self.url = f"{base}/v2/unstructuredlogentries:batchCreate"
        self.auth = ServiceAccountJwt(self.http, account, SCOPE)
        self.http.auth = self.auth

    def describe(self) -> str:
        return f"secops {where(self.url)}"

    def batch_key(self, record: Record) -> object:
        return self.config.log_types.get(record.feature.value, "ONEPASSWORD")

    def encode(self, record: Record) -> bytes:
        entry: dict[str, Any] = {"log_text": orjson.dumps(self.formatter(record)).decode()}
        with contextlib.suppress(TimestampError):
            entry["ts_epoch_microseconds"] = parse_ns(record.event.get("timestamp")) // 1000
        return orjson.dumps(entry)

    def send(self, batch: Sequence[Item]) -> None:
        head: dict[str, Any] = {"customer_id": self.config.customer_id, "log_type": self.batch_key(batch[0].record)}
        if self.config.namespace:
            head["namespace"] = self.config.namespace
        if self.config.labels:
            head["labels"] = [{"key": k, "value": v} for k, v in self.config.labels.items()]
        body = orjson.dumps(head)[:-1] + b',"entries":[' + b",".join(item.data for item in batch) + b"]}"
        response = self.post(self.url, body, {"Content-Type": "application/json"})
        self.check(response)

    def health(self) -> list[str]:
        try:
            self.auth.token()
        except SinkRetryable as exc:
            return [exc.message]
        return self.reachable(self.url, "GET", authenticated=False)
