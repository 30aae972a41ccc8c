"""Plain HTTP intakes: Sumo Logic HTTP source (A.5), Panther HTTP source (A.6) and Rapid7
InsightIDR custom-logs webhook (A.7). Each batch is JSON Lines (one record per line).

- Sumo Logic: the URL carries the credential (give it as a secret); `X-Sumo-Category`, `-Name`,
  `-Host`, `-Fields` headers; at most 1 MB uncompressed per request; gzip.
- Panther: auth as chosen on the source: a shared-secret header, an HMAC of the body (hex, in a
  header), a bearer token, or basic auth; at most 1 MB per request *including headers*.
- Rapid7: the generated webhook URL carries the credential; sign-in attempts can be sent as UEF
  `INGRESS_AUTHENTICATION` events (`uef_signins`) so InsightIDR's detections use them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field, SecretStr, field_validator

from siemgate.forward.formats import Formatter
from siemgate.forward.formats.ecs import SUCCESS_CATEGORIES, _dict
from siemgate.forward.records import Record
from siemgate.forward.sinks.base import BatchLimits, Item, Secret, Sink, SinkContext, Url
from siemgate.forward.sinks.http import HttpSink, HttpSinkConfig, where
from siemgate.model.features import Feature
from siemgate.model.timestamps import TimestampError, format_ns, parse_ns


def _url_secret(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().startswith(("https://", "http://")):
        raise ValueError("the secret must be the intake's full URL, starting with https://")
    return value


class LinesSink(HttpSink):
    """POST batches as JSON Lines to one URL with fixed headers."""

    def __init__(
        self,
        name: str,
        formatter: Formatter,
        limits: BatchLimits,
        config: HttpSinkConfig,
        url: str,
        headers: dict[str, str],
    ) -> None:
        super().__init__(name, formatter, limits, config)
        self.url = url
        self.headers = {"Content-Type": "application/x-ndjson", **headers}

    def describe(self) -> str:
        return f"{self.kind} {where(self.url)}"

    def body(self, batch: Sequence[Item]) -> bytes:
        return b"\n".join(item.data for item in batch) + b"\n"

    def send(self, batch: Sequence[Item]) -> None:
        self.check(self.post(self.url, self.body(batch), self.headers))

    def health(self) -> list[str]:
        return self.reachable(self.url, authenticated=self.kind != "panther")


class SumoLogicConfig(HttpSinkConfig):
    type: Literal["sumologic"]
    url: Secret = Field(description="The HTTP source URL (it contains the source's token).")
    category: str | None = None
    source_name: str | None = None
    source_host: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)

    default_limits: ClassVar[BatchLimits] = BatchLimits(10_000, 1_000_000, 2.0)
    hard_max_bytes: ClassVar[int | None] = 1_000_000
    _check_url = field_validator("url")(_url_secret)

    def build(self, name: str, context: SinkContext) -> Sink:
        headers = {}
        if self.category:
            headers["X-Sumo-Category"] = self.category
        if self.source_name:
            headers["X-Sumo-Name"] = self.source_name
        if self.source_host:
            headers["X-Sumo-Host"] = self.source_host
        if self.fields:
            headers["X-Sumo-Fields"] = ",".join(f"{k}={v}" for k, v in self.fields.items())
        sink = LinesSink(name, self.formatter(), self.limits(), self, self.url.get_secret_value(), headers)
        sink.kind = "sumologic"
        return sink


class PantherConfig(HttpSinkConfig):
    type: Literal["panther"]
    url: Url
    auth: Literal["shared_secret", "hmac", "bearer", "basic", "none"] = "shared_secret"
    header: str = Field("x-panther-secret", description="Header name for shared_secret and hmac.")
    secret: Secret | None = None
    username: str | None = None
    hmac_algorithm: Literal["sha256", "sha512", "sha1"] = "sha256"

    default_limits: ClassVar[BatchLimits] = BatchLimits(10_000, 960_000, 2.0)
    hard_max_bytes: ClassVar[int | None] = 990_000  # 1 MB including headers
    supports_gzip: ClassVar[bool] = False

    def build(self, name: str, context: SinkContext) -> Sink:
        if self.auth != "none" and self.secret is None:
            raise ValueError(f"auth {self.auth!r} needs a secret")
        return PantherSink(name, self.formatter(), self.limits(), self)


class PantherSink(LinesSink):
    kind = "panther"

    def __init__(self, name: str, formatter: Formatter, limits: BatchLimits, config: PantherConfig) -> None:
        secret = config.secret.get_secret_value() if config.secret else ""
        headers: dict[str, str] = {}
        if config.auth == "shared_secret":
            headers[config.header] = secret
        elif config.auth == "bearer":
            headers["Authorization"] = f"Bearer {secret}"
        elif config.auth == "basic":
            headers["Authorization"] = (
                "Basic " + base64.b64encode(f"{config.username or ''}:{secret}".encode()).decode()
            )
        super().__init__(name, formatter, limits, config, str(config.url), headers)
        self.config = config
        self._hmac_key = secret.encode() if config.auth == "hmac" else None

    def send(self, batch: Sequence[Item]) -> None:
        body = self.body(batch)
        headers = self.headers
        if self._hmac_key is not None:
            digest = hmac.new(self._hmac_key, body, getattr(hashlib, self.config.hmac_algorithm)).hexdigest()
            headers = {**headers, self.config.header: digest}
        self.check(self.post(self.url, body, headers))


class Rapid7Config(HttpSinkConfig):
    type: Literal["rapid7"]
    url: Secret = Field(description="The webhook URL InsightIDR generated for the Custom Logs event source.")
    uef_signins: bool = Field(False, description="Send sign-in attempts as UEF INGRESS_AUTHENTICATION events.")

    default_limits: ClassVar[BatchLimits] = BatchLimits(500, 512_000, 2.0)
    supports_gzip: ClassVar[bool] = False
    _check_url = field_validator("url")(_url_secret)

    def build(self, name: str, context: SinkContext) -> Sink:
        sink = Rapid7Sink(name, self.formatter(), self.limits(), self, self.url.get_secret_value(), {})
        sink.uef = self.uef_signins
        return sink


class Rapid7Sink(LinesSink):
    kind = "rapid7"
    uef = False

    def encode(self, record: Record) -> bytes:
        if self.uef and record.feature is Feature.SIGNINATTEMPTS:
            return orjson.dumps(uef_authentication(record))
        return super().encode(record)


def uef_authentication(record: Record) -> dict[str, Any]:
    """A sign-in attempt as a Rapid7 UEF INGRESS_AUTHENTICATION v1 event (docs/forwarding.md, "Rapid7 InsightIDR")."""
    e = record.event
    user = _dict(e.get("target_user"))
    client = _dict(e.get("client"))
    try:
        seconds, fraction = divmod(parse_ns(e.get("timestamp")), 1_000_000_000)
        time_text = f"{format_ns(seconds * 1_000_000_000)[:-1]}.{fraction // 1_000_000:03d}Z"
    except TimestampError:
        time_text = str(e.get("timestamp"))
    return {
        "version": "v1",
        "event_type": "INGRESS_AUTHENTICATION",
        "time": time_text,
        "account": user.get("email") or user.get("name") or user.get("uuid"),
        "source_ip": client.get("ip_address"),
        "authentication_result": "SUCCESS" if e.get("category") in SUCCESS_CATEGORIES else "FAILURE",
        "custom_data": {
            "uuid": e.get("uuid"),
            "category": e.get("category"),
            "type": e.get("type"),
            "user_uuid": user.get("uuid"),
            "app_name": client.get("app_name"),
            "country": e.get("country"),
        },
    }
