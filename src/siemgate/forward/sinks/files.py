"""Local sinks: JSON Lines files with rotation, stdout, and null (benchmarks, dry runs)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator

from siemgate.forward.errors import SinkRetryable
from siemgate.forward.formats import Formatter
from siemgate.forward.lines import LineFile
from siemgate.forward.records import Record
from siemgate.forward.sinks.base import BatchLimits, Item, Sink, SinkConfig, SinkContext, check_template
from siemgate.model.features import ALL_FEATURES


class FileConfig(SinkConfig):
    """JSON Lines, one file per stream: `path` may use {source} and {feature}. A batch is acknowledged
    once written and fsync'd. The default name starts with the feature, so `siemgate ingest` can
    read the files back."""

    type: Literal["file"]
    path: str = Field(description="e.g. /var/log/siemgate/{source}/{feature}.jsonl")
    rotate_bytes: PositiveInt = Field(100 * 1024 * 1024, description="Rotate a file when it passes this size.")
    rotate_seconds: PositiveFloat | None = Field(None, description="Rotate a file when it is this old.")
    keep: PositiveInt = Field(10, description="Rotated files kept per stream (oldest deleted first).")

    default_limits: ClassVar[BatchLimits] = BatchLimits(5000, 4 * 1024 * 1024, 1.0)

    @field_validator("path")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_template(value, "source", "feature")

    def build(self, name: str, context: SinkContext) -> Sink:
        return FileSink(name, self.formatter(), self.limits(), self, context.source)


class _Output(LineFile):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(path, 0o640)
        self.opened = time.time()


class FileSink(Sink):
    kind = "file"

    def __init__(self, name: str, formatter: Formatter, limits: BatchLimits, config: FileConfig, source: str) -> None:
        super().__init__(name, formatter, limits)
        self.config = config
        self.source = source
        self.paths = {f: Path(config.path.format(source=source, feature=f.value)) for f in ALL_FEATURES}
        self._outputs: dict[Path, _Output] = {}

    def describe(self) -> str:
        return f"file {self.config.path}"

    def send(self, batch: Sequence[Item]) -> None:
        by_path: dict[Path, list[bytes]] = {}
        for item in batch:
            by_path.setdefault(self.paths[item.record.feature], []).append(item.data)
        try:
            for path, lines in by_path.items():
                self._output(path).append(b"\n".join(lines) + b"\n")
        except OSError as exc:
            raise SinkRetryable(f"cannot write {exc.filename or 'the file'}: {exc.strerror}") from None

    def _output(self, path: Path) -> _Output:
        out = self._outputs.get(path)
        if out is not None and (
            out.size >= self.config.rotate_bytes
            or (self.config.rotate_seconds is not None and time.time() - out.opened >= self.config.rotate_seconds)
        ):
            self._rotate(out)
            out = None
        if out is None:
            out = self._outputs[path] = _Output(path)
        return out

    def _rotate(self, out: _Output) -> None:
        out.close()
        del self._outputs[out.path]
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = out.path.with_name(f"{out.path.stem}-{stamp}-{time.time_ns() % 1_000_000:06d}{out.path.suffix}")
        os.rename(out.path, target)
        rotated = sorted(out.path.parent.glob(f"{out.path.stem}-*{out.path.suffix}"))
        for old in rotated[: max(0, len(rotated) - self.config.keep)]:
            old.unlink(missing_ok=True)

    def health(self) -> list[str]:
        problems = []
        for path in dict.fromkeys(self.paths.values()):  # once each, in stream order (not a set's)
            folder = path.parent
            probe = folder
            while not probe.exists() and probe != probe.parent:
                probe = probe.parent
            if not os.access(probe, os.W_OK):
                problems.append(f"cannot write to {folder}")
        return problems

    def close(self) -> None:
        for out in self._outputs.values():
            out.close()
        self._outputs.clear()


class StdoutConfig(SinkConfig):
    """One JSON object per line on stdout: {"source", "feature", "uuid", "event": <document>}."""

    type: Literal["stdout"]

    default_limits: ClassVar[BatchLimits] = BatchLimits(1000, 1_000_000, 0.2)

    def build(self, name: str, context: SinkContext) -> Sink:
        return StdoutSink(name, self.formatter(), self.limits())


class StdoutSink(Sink):
    kind = "stdout"

    def encode(self, record: Record) -> bytes:
        import orjson

        doc = {"source": record.source, "feature": record.feature.value, "uuid": record.uuid}
        return orjson.dumps({**doc, "event": self.formatter(record)})

    def send(self, batch: Sequence[Item]) -> None:
        try:
            sys.stdout.buffer.write(b"".join(item.data + b"\n" for item in batch))
            sys.stdout.buffer.flush()
        except OSError as exc:
            raise SinkRetryable(f"cannot write to stdout: {exc.strerror}") from None


class NullConfig(SinkConfig):
    """Encodes every record in its format and drops it (benchmarks and dry runs)."""

    type: Literal["null"]

    default_limits: ClassVar[BatchLimits] = BatchLimits(1000, 10_000_000, 1.0)

    def build(self, name: str, context: SinkContext) -> Sink:
        return NullSink(name, self.formatter(), self.limits())


class NullSink(Sink):
    kind = "null"

    def send(self, batch: Sequence[Item]) -> None:
        return None
