"""Microsoft Sentinel through the Azure Monitor Logs Ingestion API (spec A.4, B.4).

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

import time
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import httpx
import orjson
from pydantic import Field, HttpUrl

from siemgate.forward.errors import SinkAuthError, SinkRetryable
from siemgate.forward.formats import Formatter
from siemgate.forward.records import Record
from siemgate.forward.sinks.base import BatchLimits, Item, Secret, Sink, SinkContext
from siemgate.forward.sinks.http import HttpSink, HttpSinkConfig, _where


class SentinelConfig(HttpSinkConfig):
    type: Literal["sentinel"]
    endpoint: HttpUrl = Field(description="The DCE or the DCR's logs ingestion endpoint.")
    rule_id: str = Field(description="The DCR's immutable id (dcr-...).")
    stream: str = "Custom-OnePasswordEventLogs_CL"
    tenant_id: str
    client_id: str
    client_secret: Secret
    authority: HttpUrl = Field(HttpUrl("https://login.microsoftonline.com"), description="Entra ID authority host.")
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
        self.token_url = f"{str(config.authority).rstrip('/')}/{config.tenant_id}/oauth2/v2.0/token"
        self._token: str | None = None
        self._token_expires = 0.0

    def describe(self) -> str:
        return f"sentinel {_where(self.url)}"

    def encode(self, record: Record) -> bytes:
        row: dict[str, Any] = dict(self.formatter(record))
        row["TimeGenerated"] = record.event.get("timestamp")
        row["log_source"] = record.feature.value
        return orjson.dumps(row)

    def token(self) -> str:
        """A bearer token for the ingestion API, cached until a minute before it expires."""
        if self._token is not None and time.monotonic() < self._token_expires:
            return self._token
        form = {
            "grant_type": "client_credentials",
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret.get_secret_value(),
            "scope": self.config.scope,
        }
        try:
            response = self.http.post(self.token_url, data=form)
        except httpx.TransportError as exc:
            raise SinkRetryable(f"cannot reach {_where(self.token_url)}: {type(exc).__name__}") from None
        if response.status_code != 200:
            try:
                detail = orjson.loads(response.content).get("error_description", "")
            except (orjson.JSONDecodeError, AttributeError):
                detail = response.text[:200]
            if response.status_code >= 500 or response.status_code == 429:
                raise SinkRetryable(f"Entra ID answered {response.status_code}", response.status_code)
            raise SinkAuthError(
                f"Entra ID refused the client credentials ({response.status_code}: {str(detail)[:200]});"
                " check tenant_id, client_id and client_secret",
                response.status_code,
            )
        data = orjson.loads(response.content)
        self._token = str(data["access_token"])
        self._token_expires = time.monotonic() + max(0, int(data.get("expires_in", 3600)) - 60)
        return self._token

    def send(self, batch: Sequence[Item]) -> None:
        body = b"[" + b",".join(item.data for item in batch) + b"]"
        headers = {"Authorization": f"Bearer {self.token()}", "Content-Type": "application/json"}
        response = self.post(self.url, body, headers, params=self.params)
        if response.status_code == 401:
            self._token = None  # take a new one next time
        if response.status_code == 404:
            raise SinkAuthError(f"{_where(self.url)} answered 404: check endpoint, rule_id and stream", 404)
        self.check(response)

    def health(self) -> list[str]:
        try:
            self.token()
        except SinkRetryable as exc:
            return [exc.message]
        return self.reachable(self.url, "GET", authenticated=False)
