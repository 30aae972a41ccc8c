"""A generic webhook signed with Standard Webhooks (docs/forwarding.md, "Webhook (Standard Webhooks)").

Each batch is one POST of `{"type": "siemgate.events", "timestamp", "data": [{"source", "feature",
"uuid", "event"}]}` with the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers
(`v1,<base64 HMAC-SHA256 over id.timestamp.body>`, computed by the `standardwebhooks` library)
when a secret (`whsec_…`) is configured. `webhook-id` is derived from the batch's events (uuid and
timestamp each, records.event_id), so a re-sent batch carries the same id and the receiver can drop
the repeat, while a uuid reused with another timestamp (another event) makes another id. The signature covers the
uncompressed body; gzip is off by default.

2xx is success; 408, 429 and 5xx retry (honouring Retry-After); 401/403 credential; other 4xx poison.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import ClassVar, Literal

import orjson
from pydantic import Field
from standardwebhooks import Webhook

from siemgate.forward.formats import Formatter
from siemgate.forward.records import Record, event_id
from siemgate.forward.sinks.base import BatchLimits, Item, Secret, Sink, SinkContext, Url
from siemgate.forward.sinks.http import HttpSink, HttpSinkConfig, where
from siemgate.model.timestamps import format_ns, now_ns


class WebhookConfig(HttpSinkConfig):
    type: Literal["webhook"]
    url: Url
    secret: Secret | None = Field(None, description="Standard Webhooks secret, whsec_<base64>.")
    headers: dict[str, str] = Field(default_factory=dict)

    default_limits: ClassVar[BatchLimits] = BatchLimits(500, 1_000_000, 1.0)

    def gzip(self) -> bool:
        return self.compression == "gzip"

    def build(self, name: str, context: SinkContext) -> Sink:
        return WebhookSink(name, self.formatter(), self.limits(), self)


class WebhookSink(HttpSink):
    kind = "webhook"
    ok_statuses = frozenset(range(200, 300))

    def __init__(self, name: str, formatter: Formatter, limits: BatchLimits, config: WebhookConfig) -> None:
        super().__init__(name, formatter, limits, config)
        self.url = str(config.url)
        self.headers = {**config.headers, "Content-Type": "application/json"}
        try:
            self.signer = Webhook(config.secret.get_secret_value()) if config.secret else None
        except Exception:  # the library raises binascii errors and its own for bad secrets
            raise ValueError("the webhook secret must be whsec_ followed by base64") from None

    def describe(self) -> str:
        return f"webhook {where(self.url)}"

    def encode(self, record: Record) -> bytes:
        item = {"source": record.source, "feature": record.feature.value, "uuid": record.uuid}
        return orjson.dumps({**item, "event": self.formatter(record)})

    def send(self, batch: Sequence[Item]) -> None:
        stamp = format_ns(now_ns())
        body = b'{"type":"siemgate.events","timestamp":"' + stamp.encode() + b'","data":['
        body += b",".join(item.data for item in batch) + b"]}"
        msg_id = "msg_" + hashlib.sha256("\n".join(map(_key, batch)).encode()).hexdigest()[:32]
        headers = dict(self.headers)
        if self.signer is not None:
            when = datetime.now(UTC)
            headers["webhook-id"] = msg_id
            headers["webhook-timestamp"] = str(int(when.timestamp()))
            headers["webhook-signature"] = self.signer.sign(msg_id, when, body.decode())
        self.check(self.post(self.url, body, headers))

    def health(self) -> list[str]:
        return self.reachable(self.url, authenticated=False)


def _key(item: Item) -> str:
    """What stands for an event in `webhook-id`: its id, or for an event without a uuid a hash of
    its content (its position in the pipeline restarts at 0 in every run, so would repeat)."""
    return event_id(item.record) or "=" + hashlib.sha256(item.data).hexdigest()
