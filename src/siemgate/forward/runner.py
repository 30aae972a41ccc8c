"""Builds and runs the pipelines a configuration describes; runs the health checks.

The composition root (the CLI) passes `open_store`, used only by the siemgate mirror sink.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from siemgate.forward.backoff import Backoff
from siemgate.forward.checkpoint import CheckpointStore
from siemgate.forward.client import EventsClient
from siemgate.forward.config import ForwardConfig, SourceConfig
from siemgate.forward.deadletter import DeadLetterFile
from siemgate.forward.delivery import SinkDelivery
from siemgate.forward.errors import ForwardConfigError, SourceError, SourceUnauthorized, Stopped
from siemgate.forward.metrics import ForwardMetrics, HealthServer
from siemgate.forward.pipeline import Pipeline
from siemgate.forward.retries import Retries
from siemgate.forward.sinks.base import Sink, SinkContext
from siemgate.model.features import Feature

log = logging.getLogger("siemgate.forward")
StoreOpener = Callable[[Any], Any]


def source_retries(name: str, metrics: ForwardMetrics | None) -> Retries:
    """The retries of source `name`, counted in `siemgate_forward_source_retries_total`."""
    return Retries(name, f"source {name}", metrics.source_retries.labels(name) if metrics else None, {"source": name})


def make_client(
    name: str,
    source: SourceConfig,
    stop: threading.Event,
    metrics: ForwardMetrics | None,
    *,
    attempts: int | None,
    backoff: Callable[[], Backoff] = Backoff,
    retries: Retries | None = None,
) -> EventsClient:
    """The Events API client of a source (never logs its token); `retries` reports its retries."""
    retries = retries or source_retries(name, metrics)
    verify: Any = source.ca_file if source.ca_file else source.tls_verify
    return EventsClient(
        source.token.get_secret_value(),
        str(source.url) if source.url else None,
        version=source.version,
        timeout=source.timeout,
        verify=verify,
        max_attempts=attempts,
        backoff=backoff,
        stop=stop,
        on_retry=retries.retry,
        on_recovered=retries.recovered,
        log_fields=source.log_fields,
    )


def build_sinks(config: ForwardConfig, source: str, open_store: StoreOpener | None) -> list[Sink]:
    """The sinks of `source`, built; closes what was built when one fails (ForwardConfigError)."""
    built: list[Sink] = []
    context = SinkContext(source, open_store)
    for name in config.sources[source].sinks:
        try:
            built.append(config.sinks[name].build(name, context))
        except (ValueError, OSError) as exc:
            for sink in built:
                sink.close()
            raise ForwardConfigError(f"sink {name}: {exc}") from None
        except ForwardConfigError:
            for sink in built:
                sink.close()
            raise
    return built


@dataclass(frozen=True)
class _Prepared:
    """A source's client and sinks, built before it is started."""

    name: str
    client: EventsClient
    sinks: list[Sink]
    deliveries: list[SinkDelivery]


@dataclass
class Forwarder:
    """Every pipeline of a configuration, sharing one checkpoint file, one stop event and metrics."""

    config: ForwardConfig
    open_store: StoreOpener | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    metrics: ForwardMetrics = field(default_factory=ForwardMetrics)
    pipelines: list[Pipeline] = field(default_factory=list)
    failed_sources: list[str] = field(default_factory=list)
    health_port: int | None = None
    _clients: list[EventsClient] = field(default_factory=list)
    _retries: list[Retries] = field(default_factory=list)
    _sinks: list[Sink] = field(default_factory=list)
    _dead: list[DeadLetterFile] = field(default_factory=list)

    def run(self, *, once: bool = False) -> int:
        """Run until stopped (or drained, with `once`). 0 when every stream ended healthy, else 1.

        Sinks are built first (a configuration error raises ForwardConfigError before any source
        is asked anything); then each source starts on its own thread, so one that does not answer
        its introspection holds no other source, nor /metrics and /healthz."""
        section = self.config.forwarder
        checkpoint = CheckpointStore(section.checkpoint_path)
        server: HealthServer | None = None
        try:
            prepared = [self._prepare(name) for name in self.config.sources]
            if section.metrics_port is not None:
                try:
                    server = HealthServer(self.metrics, self.problems, section.metrics_host, section.metrics_port)
                except OSError as exc:  # in use, or a host this machine does not have
                    raise ForwardConfigError(
                        f"forwarder.metrics_host, metrics_port: cannot serve metrics on"
                        f" {section.metrics_host}:{section.metrics_port} ({exc.strerror or exc})"
                    ) from None
                server.start()
                self.health_port = server.port
                log.info("metrics and health on http://%s:%d/metrics", section.metrics_host, server.port)
            results = self._run_all(prepared, checkpoint, once)
            return 0 if all(results) and not self.failed_sources else 1
        finally:
            if server is not None:
                server.stop()
            self._close()
            checkpoint.close()

    def problems(self) -> list[str]:
        found = list(self.failed_sources)
        found += [f"{r.name}: {r.failing} (retrying)" for r in self._retries if r.failing is not None]
        for pipeline in list(self.pipelines):
            found += pipeline.problems()
        return found

    def _run_all(self, prepared: list[_Prepared], checkpoint: CheckpointStore, once: bool) -> list[bool]:
        results: list[bool] = [False] * len(prepared)

        def work(index: int, source: _Prepared) -> None:
            try:
                pipeline = self._pipeline(source, checkpoint)
            except (SourceUnauthorized, SourceError) as exc:
                self.failed_sources.append(f"{source.name}: {exc.message}")
                log.error("source %s not started: %s", source.name, exc.message, extra={"source": source.name})
                return
            except Stopped:
                results[index] = not once or self._not_drained(source.name)
                return
            self.pipelines.append(pipeline)
            try:
                results[index] = pipeline.run(once=once)
                if once and results[index] and not pipeline.drained:
                    results[index] = self._not_drained(source.name)
            except Exception:
                log.exception("pipeline %s failed", pipeline.source)
                self.stop.set()

        threads = [
            threading.Thread(target=work, args=(n, p), name=f"forward-{p.name}", daemon=True)
            for n, p in enumerate(prepared)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.2)
        return results

    def _not_drained(self, source: str) -> bool:
        """Record that `source` was stopped before its streams reached their heads (--once): the
        run did not deliver everything, and must not exit 0. Returns False, the source's result."""
        message = f"{source}: stopped before every stream was drained (--once)"
        self.failed_sources.append(message)
        log.error("source %s", message, extra={"source": source})
        return False

    def _prepare(self, name: str) -> _Prepared:
        """A source's client and sinks (ForwardConfigError for a sink that cannot be built)."""
        source = self.config.sources[name]
        retries = source_retries(name, self.metrics)
        self._retries.append(retries)
        client = make_client(
            name, source, self.stop, self.metrics, attempts=None, backoff=self._backoff, retries=retries
        )
        self._clients.append(client)
        sinks = build_sinks(self.config, name, self.open_store)
        self._sinks += sinks
        deliveries = []
        for sink in sinks:
            sink.stop = self.stop
            dead = DeadLetterFile(self.config.forwarder.dead_letter_dir / f"{name}.{sink.name}.jsonl")
            self._dead.append(dead)
            deliveries.append(SinkDelivery(sink, name, dead, self.metrics, self.stop, backoff=self._backoff))
        return _Prepared(name, client, sinks, deliveries)

    def _pipeline(self, prepared: _Prepared, checkpoint: CheckpointStore) -> Pipeline:
        """The source's pipeline, its features from the token's introspection when not configured
        (retried until it answers: raises SourceUnauthorized, SourceError, Stopped)."""
        name, client, sinks = prepared.name, prepared.client, prepared.sinks
        source = self.config.sources[name]
        features: tuple[Feature, ...] | None = source.feature_list()
        if features is None:
            features = client.introspect().known_features()
            if not features:
                raise SourceUnauthorized("the token's introspection lists no feature this forwarder knows")
        streams = [
            client.stream(f, checkpoint, name=f"{name}/{f.value}", start_time=source.start_time, limit=source.limit)
            for f in features
        ]
        log.info(
            "source %s: %s → %s",
            name,
            ", ".join(f.value for f in features),
            ", ".join(s.describe() for s in sinks),
            extra={"source": name},
        )
        return Pipeline(
            name,
            streams,
            prepared.deliveries,
            self.metrics,
            self.stop,
            source.poll_interval or self.config.forwarder.poll_interval,
        )

    def _backoff(self) -> Backoff:
        section = self.config.forwarder
        return Backoff(section.retry_initial, section.retry_max)

    def _close(self) -> None:
        for sink in self._sinks:
            try:
                sink.close()
            except Exception:  # closing must not hide the real outcome
                log.exception("closing sink %s", sink.name)
        for client in self._clients:
            client.close()
        for dead in self._dead:
            dead.close()


@dataclass(frozen=True)
class CheckResult:
    what: str
    problems: list[str]


def check(config: ForwardConfig, open_store: StoreOpener | None = None) -> list[CheckResult]:
    """Contact every source and sink once and report what is wrong (nothing is delivered)."""
    results: list[CheckResult] = []
    stop = threading.Event()
    for name, source in config.sources.items():
        problems: list[str] = []
        try:
            with make_client(name, source, stop, None, attempts=1) as client:
                info = client.introspect()
                wanted = source.feature_list() or info.known_features()
                missing = [f.value for f in wanted if f.value not in info.features]
                if missing:
                    problems.append(
                        f"the token does not include {', '.join(missing)} (it has {', '.join(info.features)})"
                    )
                if not wanted:
                    problems.append("the token includes no event type this forwarder knows")
                what = f"source {name} ({client.base_url}, v{source.version})"
        except (SourceError, SourceUnauthorized) as exc:
            problems.append(exc.message)
            what = f"source {name}"
        results.append(CheckResult(what, problems))
    for name, sink_config in config.sinks.items():
        users = [s for s, cfg in config.sources.items() if name in cfg.sinks]
        try:
            sink = sink_config.build(name, SinkContext(users[0] if users else "check", open_store))
        except (ForwardConfigError, ValueError, OSError) as exc:
            results.append(CheckResult(f"sink {name} ({sink_config.type})", [str(getattr(exc, "message", exc))]))
            continue
        try:
            results.append(CheckResult(f"sink {name} ({sink.describe()})", sink.health()))
        finally:
            sink.close()
    return results
