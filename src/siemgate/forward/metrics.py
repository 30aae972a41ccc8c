"""Prometheus metrics of the forwarder, and the small HTTP server that exposes them with health.

Endpoints: `/metrics` (Prometheus text format), `/healthz` (200 while the process runs),
`/readyz` (200 when every stream is running and every sink's last attempt succeeded, else 503
with the problems as JSON).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest


class ForwardMetrics:
    """Every metric, in its own registry (no process globals)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.events_in = Counter(
            "siemgate_forward_events_in", "Events fetched from the Events API.", ["source", "feature"], registry=r
        )
        self.events_out = Counter(
            "siemgate_forward_events_out", "Events a sink's destination acknowledged.", ["source", "sink"], registry=r
        )
        self.bytes_out = Counter(
            "siemgate_forward_bytes_out",
            "Encoded bytes acknowledged (before compression).",
            ["source", "sink"],
            registry=r,
        )
        self.batches = Counter("siemgate_forward_batches", "Batches acknowledged.", ["source", "sink"], registry=r)
        self.retries = Counter(
            "siemgate_forward_retries", "Sends retried after a retryable failure.", ["source", "sink"], registry=r
        )
        self.source_retries = Counter(
            "siemgate_forward_source_retries",
            "Events API requests retried (429, 5xx, network errors).",
            ["source"],
            registry=r,
        )
        self.repeated = Counter(
            "siemgate_forward_repeated_events",
            "Events a source served again (its cursor repeated or went back), left out.",
            ["source", "feature"],
            registry=r,
        )
        self.dead_letters = Counter(
            "siemgate_forward_dead_letters", "Records written to the dead-letter file.", ["source", "sink"], registry=r
        )
        self.lag = Gauge(
            "siemgate_forward_lag_seconds",
            "Now minus the timestamp of the newest committed event; 0 when the stream is at its head.",
            ["source", "feature"],
            registry=r,
        )
        self.committed = Gauge(
            "siemgate_forward_checkpoint_timestamp_seconds",
            "When the stream's cursor was last committed (Unix time).",
            ["source", "feature"],
            registry=r,
        )
        self.stream_up = Gauge(
            "siemgate_forward_stream_up",
            "1 while the stream runs; 0 once it stopped on an error.",
            ["source", "feature"],
            registry=r,
        )
        self.sink_up = Gauge(
            "siemgate_forward_sink_up",
            "1 when the sink's last send succeeded; 0 while it fails.",
            ["source", "sink"],
            registry=r,
        )


class HealthServer:
    """Serves /metrics, /healthz and /readyz on (host, port) in a daemon thread."""

    def __init__(self, metrics: ForwardMetrics, problems: Callable[[], list[str]], host: str, port: int) -> None:
        registry = metrics.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._reply(200, b'{"status":"ok"}', "application/json")
                elif path == "/readyz":
                    found = problems()
                    body: dict[str, Any] = {"status": "ready" if not found else "not ready", "problems": found}
                    self._reply(503 if found else 200, orjson.dumps(body), "application/json")
                else:
                    self._reply(404, b'{"error":"use /metrics, /healthz or /readyz"}', "application/json")

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: scrapes are not news
                return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="forward-health", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
