"""Prometheus metrics of one server process (a registry per app, no globals), and who may read
them: the operator only (docs/security.md, "Who is who")."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator, Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from siemgate.errors import ConfigError, Unauthorized
from siemgate.integrity.health import STATUSES, streams_health
from siemgate.integrity.service import LogService

# Headers a reverse proxy adds: a request carrying one was relayed, whatever its TCP peer.
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "siemgate_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "siemgate_http_request_seconds",
            "HTTP request latency by route",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.events_served = Counter(
            "siemgate_events_served", "Events returned by the Events API", ["feature"], registry=self.registry
        )
        self.events_ingested = Counter(
            "siemgate_events_ingested",
            "Events stored through the ingest API",
            ["feature"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "siemgate_ingest_duplicates",
            "Ingested events that were already stored",
            ["feature"],
            registry=self.registry,
        )


class IntegrityCollector(Collector):
    """The log's health, read at each scrape (docs/integrity.md, "Watching the log"): per stream the
    newest published checkpoint's age, the entries it does not cover yet and the status; whether the
    signer answers; per witness the cosignatures obtained and refused."""

    def __init__(self, tlog: LogService) -> None:
        self.tlog = tlog

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        if self.tlog.signer is None:
            return
        labels = ["account", "feature"]
        age = GaugeMetricFamily(
            "siemgate_log_checkpoint_age_seconds", "Age of the newest published checkpoint per stream", labels=labels
        )
        behind = GaugeMetricFamily(
            "siemgate_log_unpublished_entries",
            "Integrated log entries not covered by a published checkpoint yet",
            labels=labels,
        )
        status = GaugeMetricFamily(
            "siemgate_log_status",
            "1 for the stream's current log status (ok, stale, signer-down, ...)",
            labels=[*labels, "status"],
        )
        for h in streams_health(self.tlog):
            key = [h.account_uuid, h.feature.value]
            if h.age is not None:
                age.add_metric(key, h.age)
            behind.add_metric(key, h.log_size - (h.checkpoint_size or 0))
            for name in STATUSES:
                status.add_metric([*key, name], 1 if h.status == name else 0)
        yield age
        yield behind
        yield status
        up = GaugeMetricFamily("siemgate_log_signer_up", "1 when the log signer answered this process's last request")
        up.add_metric([], 1 if self.tlog.signer_up else 0)
        yield up
        if self.tlog.witnessing is None:
            return
        failures = CounterMetricFamily(
            "siemgate_log_witness_cosign_failures",
            "Cosignatures asked of a witness and not obtained",
            labels=["witness"],
        )
        cosigned = CounterMetricFamily(
            "siemgate_log_witness_cosigned", "Checkpoints a witness cosigned", labels=["witness"]
        )
        for w in self.tlog.witnessing.health():
            failures.add_metric([w.url], w.failures)
            cosigned.add_metric([w.url], w.cosigned)
        yield failures
        yield cosigned


class MetricsAccess:
    """Who may read /metrics. Its values name every account (the log's per-stream metrics carry the
    account's uuid) and show each one's activity over time, and the request counters the whole
    server's: the operator's, never a tenant's or an outsider's. Allowed: a scrape from this
    machine (a loopback peer, not relayed by a proxy: no forwarding header), or one presenting
    `Authorization: Bearer <the metrics token>` when `metrics_token_file` is set."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    @classmethod
    def from_file(cls, path: Path | None) -> MetricsAccess:
        """Read the token in `path` (the `metrics_token_file` setting; None: no token). ConfigError
        when the file cannot be read or is empty."""
        if path is None:
            return cls(None)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read metrics_token_file {path}: {exc.strerror}") from None
        if not token:
            raise ConfigError(f"metrics_token_file {path} is empty: put the secret Prometheus sends in it")
        return cls(token)

    def check(self, peer: str | None, headers: Mapping[str, str]) -> None:
        """Return if a request from `peer` (the client's address as the server sees it, after
        trusted proxies) with `headers` may read the metrics; else raise Unauthorized saying how."""
        if self._token is not None:
            scheme, _, presented = headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), self._token):
                return
        if _loopback(peer) and not any(name in headers for name in FORWARDING_HEADERS):
            return
        how = (
            "with 'Authorization: Bearer <the secret in metrics_token_file>'"
            if self._token
            else (
                "over loopback (127.0.0.1 or ::1, not through a proxy), or set metrics_token_file and send"
                " its secret as 'Authorization: Bearer ...'"
            )
        )
        raise Unauthorized(f"Unauthorized: /metrics is for the server's operator: scrape it {how}")


def _loopback(peer: str | None) -> bool:
    """Whether `peer` is a loopback address (IPv4-mapped IPv6 included)."""
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
