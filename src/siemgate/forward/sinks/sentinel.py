"""Microsoft Sentinel through the Azure Monitor Logs Ingestion API (docs/forwarding.md, "Microsoft Sentinel").

`POST {endpoint}/dataCollectionRules/{rule_id}/streams/{stream}?api-version=2023-01-01` with a
JSON array (gzip) and an Entra ID token from the client-credentials flow (scope
`https://monitor.azure.com/.default`, as Microsoft's azure-monitor-ingestion requests it). The
default stream is the 1Password solution's `Custom-OnePasswordEventLogs_CL`, so its analytics and
workbooks apply; each row is the event plus `TimeGenerated` (the event's timestamp) and
`log_source` (its feed).

Limits: 1 MB per call, compressed or not: batches stay under 1,000,000 bytes uncompressed.
204 (or 200) is success; 401/403 credential or role ("Monitoring Metrics Publisher" on the DCR);
404 wrong URL (or, per Azure, a body too large); 413 split; 429 and 503 honour Retry-After; 5xx retry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field, HttpUrl

from siemgate.forward.errors import SinkAuthError, SinkRetryable
from siemgate.forward.formats import Formatter
from siemgate.forward.records import Record
from siemgate.forward.sinks.base import BatchLimits, Item, Secret, Sink, SinkContext, Url
from siemgate.forward.sinks.http import HttpSink, HttpSinkConfig, where
from siemgate.forward.sinks.oauth import ClientCredentials


class SentinelConfig(HttpSinkConfig):
    type: Literal["sentinel"]
    endpoint: Url = Field(description="The DCE or the DCR's logs ingestion endpoint.")
    rule_id: str = Field(description="The DCR's immutable id (dcr-...).")
    stream: str = "Custom-OnePasswordEventLogs_CL"
    tenant_id: str
    client_id: str
    client_secret: Secret
    authority: Url = Field(HttpUrl("https://login.microsoftonline.com"), description="Entra ID authority host.")
    scope: str = "https://monitor.azure.com/.default"
    api_version: str = "2023-01-01"

    default_limits: ClassVar[BatchLimits] = BatchLimits(10_000, 1_000_000, 1.0)
    hard_max_bytes: ClassVar[int | None] = 1_048_576

    def build(self, name: str, context: SinkContext) -> Sink:
        return SentinelSink(name, self.formatter(), self.limits(), self)


class SentinelSink(HttpSink):
    kind = "sentinel"

    def __init__(self, name: str, formatter: Formatter, limits: BatchLimits, config: SentinelConfig) -> None:
        super().__init__(name, formatter, limits, config)
        self.config = config
        endpoint = str(config.endpoint).rstrip("/")
        self.url = f"{endpoint}/dataCollectionRules/{config.rule_id}/streams/{config.stream}"
        self.params = {"api-version": config.api_version}
        self.auth = ClientCredentials(
            self.http,
            f"{str(config.authority).rstrip('/')}/{config.tenant_id}/oauth2/v2.0/token",
            config.client_id,
            config.client_secret.get_secret_value(),
            config.scope,
        )
        self.http.auth = self.auth

    def describe(self) -> str:
        return f"sentinel {where(self.url)}"

    def encode(self, record: Record) -> bytes:
        row: dict[str, Any] = dict(self.formatter(record))
        row["TimeGenerated"] = record.event.get("timestamp")
        row["log_source"] = record.feature.value
        return orjson.dumps(row)

    def send(self, batch: Sequence[Item]) -> None:
        body = b"[" + b",".join(item.data for item in batch) + b"]"
        response = self.post(self.url, body, {"Content-Type": "application/json"}, params=self.params)
        if response.status_code == 404:
            raise SinkAuthError(f"{where(self.url)} answered 404: check endpoint, rule_id and stream", 404)
        self.check(response)

    def health(self) -> list[str]:
        try:
            self.auth.token()
        except SinkRetryable as exc:
            return [exc.message]
        return self.reachable(self.url, "GET", authenticated=False)
