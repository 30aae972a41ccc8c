"""Prometheus metrics of one server process (a registry per app, no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


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
