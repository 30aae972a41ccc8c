"""Elasticsearch and OpenSearch `_bulk` into the `logs-1password.*` data streams (docs/forwarding.md).

Each record is a `create` action with `_id` = `<uuid>-<timestamp in ns>` (records.event_id: a uuid
reused with another timestamp is another event, as in siemgate's store), so a replay after a crash
is refused per item with 409 (already there) and counted as delivered: writes are idempotent within
a backing index. Documents: with the raw format `{"@timestamp", "message": <the event's JSON>}`, which
Elastic's 1Password integration pipeline (the data streams' default pipeline) turns into its ECS
documents; with ecs or ocsf the finished document, sent with `pipeline=_none` by default so that
pipeline does not run again.

Per item: 200/201 and 409 done; 429 and 5xx sent again; 401 and 403 (an API key without the
privileges on the data stream: `security_exception`) sent again and reported as a credential to
fix; any other status (400 mapping errors, 404) is poison and goes to the dead-letter file with
Elasticsearch's error type and reason.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field, field_validator

from siemgate.forward.errors import SinkPartial, SinkRetryable
from siemgate.forward.formats import Formatter
from siemgate.forward.records import Record, event_id
from siemgate.forward.sinks.base import BatchLimits, Item, Secret, Sink, SinkContext, Url, check_template
from siemgate.forward.sinks.http import HttpSink, HttpSinkConfig, where


class ElasticsearchConfig(HttpSinkConfig):
    type: Literal["elasticsearch"]
    url: Url = Field(description="https://es.example.com:9200")
    api_key: Secret | None = Field(None, description="Encoded API key (base64 of id:key).")
    username: str | None = None
    password: Secret | None = None
    namespace: str = "default"
    data_stream: str | None = Field(
        None, description="Default logs-1password.{dataset}-{namespace} ({dataset}_ocsf for ocsf)."
    )
    pipeline: str | None = Field(None, description="Ingest pipeline; default _none for ecs and ocsf.")

    default_limits: ClassVar[BatchLimits] = BatchLimits(1000, 5 * 1024 * 1024, 1.0)
    hard_max_bytes: ClassVar[int | None] = 100 * 1024 * 1024

    @field_validator("data_stream")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return None if value is None else check_template(value, "dataset", "namespace")

    def build(self, name: str, context: SinkContext) -> Sink:
        return BulkSink(name, self.formatter(), self.limits(), self)


class OpenSearchConfig(ElasticsearchConfig):
    type: Literal["opensearch"]  # type: ignore[assignment]


class BulkSink(HttpSink):
    kind = "elasticsearch"

    def __init__(self, name: str, formatter: Formatter, limits: BatchLimits, config: ElasticsearchConfig) -> None:
        super().__init__(name, formatter, limits, config)
        self.kind = config.type
        self.config = config
        self.base = str(config.url).rstrip("/")
        self.headers = {"Content-Type": "application/x-ndjson"}
        if config.api_key is not None:
            self.headers["Authorization"] = f"ApiKey {config.api_key.get_secret_value()}"
        elif config.username is not None:
            password = config.password.get_secret_value() if config.password else ""
            token = base64.b64encode(f"{config.username}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        suffix = "_ocsf" if config.format == "ocsf" else ""
        self.template = config.data_stream or "logs-1password.{dataset}" + suffix + "-{namespace}"
        pipeline = config.pipeline if config.pipeline is not None else (None if config.format == "raw" else "_none")
        self.params = {"pipeline": pipeline} if pipeline else None

    def describe(self) -> str:
        return f"{self.kind} {where(self.base)}"

    def index(self, record: Record) -> str:
        return self.template.format(dataset=record.dataset, namespace=self.config.namespace)

    def encode(self, record: Record) -> bytes:
        action: dict[str, Any] = {"_index": self.index(record)}
        doc_id = event_id(record)
        if doc_id is not None:
            action["_id"] = doc_id
        if self.config.format == "raw":
            doc: dict[str, Any] = {
                "@timestamp": record.event.get("timestamp"),
                "message": orjson.dumps(record.event).decode(),
            }
        else:
            doc = self.formatter(record)
            if "@timestamp" not in doc:
                doc = {"@timestamp": record.event.get("timestamp"), **doc}
        return orjson.dumps({"create": action}) + b"\n" + orjson.dumps(doc)

    def send(self, batch: Sequence[Item]) -> None:
        body = b"\n".join(item.data for item in batch) + b"\n"
        response = self.post(f"{self.base}/_bulk", body, self.headers, params=self.params)
        self.check(response, ok=(200,))
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise SinkRetryable("_bulk returned a body that is not JSON", 200) from None
        if not data.get("errors"):
            return
        items = data.get("items") or []
        if len(items) != len(batch):
            raise SinkRetryable(f"_bulk returned {len(items)} results for {len(batch)} actions", 200)
        retry: list[int] = []
        poison: dict[int, str] = {}
        denied: list[str] = []
        for n, entry in enumerate(items):
            result: dict[str, Any] = next(iter(entry.values()), {}) if isinstance(entry, dict) else {}
            status = int(result.get("status", 500))
            if status in (200, 201, 409):
                continue
            error = result.get("error") or {}
            reason = error.get("reason") if isinstance(error, dict) else str(error)
            kind = error.get("type") if isinstance(error, dict) else "error"
            if status in (401, 403):
                retry.append(n)
                denied.append(f"{status} {kind}: {reason}")
            elif status == 429 or status >= 500:
                retry.append(n)
            else:
                poison[n] = f"Elasticsearch refused the document ({status} {kind}: {reason})"
        if denied:
            raise SinkPartial(
                f"{where(self.base)} refused the credential for {len(denied)} of {len(batch)} documents"
                f" ({denied[0]}); give the API key or user the privileges to write to {self.index(batch[0].record)}"
                " (create_doc and auto_configure on logs-1password.*)",
                retry,
                poison,
                200,
                credential=True,
            )
        if retry or poison:
            raise SinkPartial(f"_bulk: {len(retry)} to retry, {len(poison)} refused", retry, poison, 200)

    def health(self) -> list[str]:
        import httpx

        try:
            response = self.http.get(
                self.base + "/", headers={k: v for k, v in self.headers.items() if k == "Authorization"}
            )
        except httpx.TransportError as exc:
            return [f"cannot reach {where(self.base)}: {type(exc).__name__}: {exc}"]
        if response.status_code in (401, 403):
            return [f"{where(self.base)} refused the credentials ({response.status_code})"]
        if response.status_code != 200:
            return [f"{where(self.base)} answered {response.status_code}: {response.text[:200]}"]
        return []
