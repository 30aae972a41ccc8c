"""Splunk HTTP Event Collector (docs/forwarding.md), and CrowdStrike Falcon LogScale / Next-Gen SIEM through
its HEC-compatible endpoint (A.8).

A batch is envelopes written back to back (`{"time", "host", "source", "sourcetype", "index",
"event"}`), one per line, POSTed to `/services/collector/event` with `Authorization: Splunk
<token>` and one channel GUID per forwarder process (`X-Splunk-Request-Channel`). With the raw
format the sourcetypes are the Splunk add-on's `1password:insights:<feed>`, and `event` is the
untouched Events API object, so the add-on's search-time fields and dashboards apply.

Responses (HEC code in the body): 200/0 success; 400/6 with `invalid-event-number` n: that event is
poison and the others are sent again; other 400s: poison (the batch is split to find the event),
except the configuration codes 7 (index), 10/11 (channel), 14 (ack disabled), which are retried
and reported; 401/403: credential; 503/9 and 5xx: retry. With `indexer_acknowledgement`, a batch
is acknowledged only once `/services/collector/ack` reports it indexed; not within `ack_timeout`,
or an ack poll refused (a 4xx there is a configuration problem, never poison: HEC took the events),
means it is sent again (duplicates are possible; never a loss).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import httpx
import orjson
from pydantic import Field, PositiveFloat

from siemgate.forward.errors import SinkAuthError, SinkPartial, SinkPoison, SinkRetryable
from siemgate.forward.formats import Formatter
from siemgate.forward.records import Record
from siemgate.forward.sinks.base import BatchLimits, Item, Secret, Sink, SinkContext, Url
from siemgate.forward.sinks.http import HttpSink, HttpSinkConfig, where
from siemgate.model.timestamps import TimestampError, parse_ns

CONFIG_CODES = {7: "incorrect index", 10: "data channel is missing", 11: "invalid data channel", 14: "ack is disabled"}


class SplunkHecConfig(HttpSinkConfig):
    type: Literal["splunk_hec"]
    url: Url = Field(description="https://splunk.example.com:8088")
    token: Secret
    path: str = "/services/collector/event"
    index: str | None = None
    source: str | None = Field(None, description="Default: siemgate:<source name>.")
    sourcetype: str | None = Field(
        None, description="Default: 1password:insights:<feed> (raw), else siemgate:<format>:<feed>."
    )
    host: str | None = None
    channel: str | None = Field(None, description="A GUID; default: a new one per forwarder process.")
    indexer_acknowledgement: bool = False
    ack_timeout: PositiveFloat = 120.0
    ack_poll_interval: PositiveFloat = 1.0

    default_limits: ClassVar[BatchLimits] = BatchLimits(10_000, 1_000_000, 1.0)
    auth_scheme: ClassVar[str] = "Splunk"

    def build(self, name: str, context: SinkContext) -> Sink:
        return HecSink(name, self.formatter(), self.limits(), self, context.source)


class LogScaleConfig(SplunkHecConfig):
    """Falcon LogScale / Next-Gen SIEM HEC endpoint: Bearer ingest token, `index` = the repository."""

    type: Literal["logscale"]  # type: ignore[assignment]
    path: str = "/api/v1/ingest/hec"

    default_limits: ClassVar[BatchLimits] = BatchLimits(10_000, 4 * 1024 * 1024, 1.0)
    hard_max_bytes: ClassVar[int | None] = 32 * 1024 * 1024
    auth_scheme: ClassVar[str] = "Bearer"


def _epoch(event: dict[str, Any]) -> float | None:
    try:
        return round(parse_ns(event.get("timestamp")) / 1e9, 6)
    except TimestampError:
        return None


class HecSink(HttpSink):
    kind = "splunk_hec"

    def __init__(
        self, name: str, formatter: Formatter, limits: BatchLimits, config: SplunkHecConfig, source: str
    ) -> None:
        super().__init__(name, formatter, limits, config)
        self.kind = config.type
        self.config = config
        self.base = str(config.url).rstrip("/")
        self.channel = config.channel or str(uuid.uuid4())
        self.headers = {
            "Authorization": f"{config.auth_scheme} {config.token.get_secret_value()}",
            "X-Splunk-Request-Channel": self.channel,
            "Content-Type": "application/json",
        }
        self.source = config.source or f"siemgate:{source}"
        self.raw = config.format == "raw"

    def describe(self) -> str:
        return f"{self.kind} {where(self.base + self.config.path)}"

    def encode(self, record: Record) -> bytes:
        envelope: dict[str, Any] = {"source": self.source}
        epoch = _epoch(record.event)
        if epoch is not None:
            envelope["time"] = epoch
        envelope["sourcetype"] = self.config.sourcetype or (
            f"1password:insights:{record.dataset}" if self.raw else f"siemgate:{self.config.format}:{record.dataset}"
        )
        if self.config.index:
            envelope["index"] = self.config.index
        if self.config.host:
            envelope["host"] = self.config.host
        envelope["event"] = self.formatter(record)
        return orjson.dumps(envelope)

    def send(self, batch: Sequence[Item]) -> None:
        body = b"\n".join(item.data for item in batch)
        response = self.post(self.base + self.config.path, body, self.headers)
        if response.status_code == 400:
            self._bad_request(response, len(batch))
        self.check(response)
        if self.config.indexer_acknowledgement:
            ack_id = _json(response).get("ackId")
            if ack_id is None:
                raise SinkAuthError(
                    "indexer_acknowledgement is on but Splunk returned no ackId; enable ack on the token"
                )
            self._wait_for_ack(int(ack_id))

    def _bad_request(self, response: httpx.Response, size: int) -> None:
        data = _json(response)
        code = data.get("code")
        text = data.get("text", response.text[:200])
        if code in CONFIG_CODES:
            raise SinkAuthError(f"Splunk HEC: {CONFIG_CODES[code]} ({text}); fix the sink configuration", 400)
        bad = data.get("invalid-event-number")
        if code == 6 and isinstance(bad, int) and 0 <= bad < size:
            retry = [n for n in range(size) if n != bad]
            raise SinkPartial(f"Splunk HEC refused event {bad}: {text}", retry, {bad: f"HEC code 6: {text}"}, 400)
        raise SinkPoison(f"Splunk HEC refused the batch (400, code {code}: {text})", 400)

    def _wait_for_ack(self, ack_id: int) -> None:
        url = f"{self.base}/services/collector/ack"
        waited = 0.0
        while waited < self.config.ack_timeout:
            response = self.post(url, orjson.dumps({"acks": [ack_id]}), self.headers, params={"channel": self.channel})
            self._check_ack(response)
            if _json(response).get("acks", {}).get(str(ack_id)) is True:
                return
            if self.stop.wait(self.config.ack_poll_interval):
                break
            waited += self.config.ack_poll_interval
        raise SinkRetryable(f"Splunk did not confirm indexing of ack {ack_id} within {self.config.ack_timeout:g}s")

    def _check_ack(self, response: httpx.Response) -> None:
        """An ack poll's status, which says nothing about the events (HEC took them): a 4xx other
        than 408 and 429 is a configuration to fix (SinkAuthError), never poison."""
        status = response.status_code
        if 400 <= status < 500 and status not in (401, 403, 408, 429):
            data = _json(response)
            raise SinkAuthError(
                f"{where(str(response.request.url))} answered {status}"
                f" (code {data.get('code')}: {data.get('text', response.text[:200])}); check indexer acknowledgement"
                " on the token, the channel, and sticky sessions on a load balancer in front of the indexers",
                status,
            )
        self.check(response)

    def health(self) -> list[str]:
        problems: list[str] = []
        if self.kind == "splunk_hec":
            try:
                health = self.http.get(f"{self.base}/services/collector/health")
            except httpx.TransportError as exc:
                return [f"cannot reach {where(self.base)}: {type(exc).__name__}: {exc}"]
            if health.status_code != 200:
                problems.append(f"HEC health endpoint answered {health.status_code}: {health.text[:200]}")
        try:  # an empty POST checks the token without indexing anything: 400 "No data" when it is valid
            probe = self.http.post(self.base + self.config.path, content=b"", headers=self.headers)
        except httpx.TransportError as exc:
            return [*problems, f"cannot reach {where(self.base)}: {type(exc).__name__}: {exc}"]
        if probe.status_code in (401, 403):
            problems.append(f"the token was refused ({probe.status_code} {probe.text[:200]})")
        elif probe.status_code == 404:
            problems.append(f"{where(self.base + self.config.path)} does not exist (404): check url and path")
        elif probe.status_code >= 500:
            problems.append(f"the endpoint answered {probe.status_code}")
        return problems


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
