"""What every sink is: a config that builds it, batch limits, an encoder, send(), and a health check.

send() delivers one batch and returns only when the destination acknowledged all of it; otherwise
it raises one of the SinkError classes (errors.py), and the delivery loop (delivery.py) decides:
retry the batch, split it to find a poison record, or dead-letter that record.
"""

from __future__ import annotations

import abc
import os
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    field_validator,
)

from siemgate.forward.formats import FORMATS, Formatter, get_formatter
from siemgate.forward.records import Record
from siemgate.outbound import host_name


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """Send a batch when it reaches `max_events` or `max_bytes` (the records' encoded size plus one
    separator byte each), or when its oldest record has waited `linger` seconds."""

    max_events: int
    max_bytes: int
    linger: float


@dataclass(slots=True)
class Item:
    """One record on its way to one sink: its position in the pipeline, and its encoded bytes."""

    seq: int
    record: Record
    data: bytes


class Sink(abc.ABC):
    """A destination. Used from one thread (its pipeline's)."""

    kind: str = "sink"

    def __init__(self, name: str, formatter: Formatter, limits: BatchLimits) -> None:
        self.name = name
        self.formatter = formatter
        self.limits = limits
        self.stop = threading.Event()  # the pipeline's stop event; waits inside send() use it

    def encode(self, record: Record) -> bytes:
        """One record's bytes on the wire (without batch framing). Raises ValueError for a record
        this sink cannot represent (it is then dead-lettered)."""
        return orjson.dumps(self.formatter(record))

    @abc.abstractmethod
    def send(self, batch: Sequence[Item]) -> None:
        """Deliver `batch`; return only once the destination acknowledged all of it.

        Raises SinkRetryable (incl. SinkAuthError), SinkPoison or SinkPartial.
        """

    def health(self) -> list[str]:
        """Problems found by contacting the destination (empty when healthy). Never raises."""
        return []

    def describe(self) -> str:
        """Where this sink delivers, for logs (never a secret)."""
        return self.kind

    def batch_key(self, record: Record) -> object:
        """Records with different keys never share a batch (e.g. one log type per request)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""


class SinkConfig(BaseModel):
    """Settings every sink has. Sizes default to the destination's documented limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    format: str = Field("raw", description="raw, ecs or ocsf")
    validate_ocsf: bool = Field(False, description="Check every OCSF document against the schema (slower).")
    max_events: PositiveInt | None = None
    max_bytes: PositiveInt | None = None
    linger: PositiveFloat | None = Field(None, description="Seconds a partial batch may wait for more events.")

    default_limits: ClassVar[BatchLimits] = BatchLimits(1000, 1_000_000, 1.0)
    hard_max_bytes: ClassVar[int | None] = None

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value not in FORMATS:
            raise ValueError(f"unknown format {value!r}; use one of {', '.join(FORMATS)}")
        return value

    @field_validator("max_bytes")
    @classmethod
    def _under_hard_limit(cls, value: int | None) -> int | None:
        if value is not None and cls.hard_max_bytes is not None and value > cls.hard_max_bytes:
            raise ValueError(f"at most {cls.hard_max_bytes} bytes: the destination refuses larger requests")
        return value

    def limits(self) -> BatchLimits:
        d = self.default_limits
        return BatchLimits(self.max_events or d.max_events, self.max_bytes or d.max_bytes, self.linger or d.linger)

    def formatter(self) -> Formatter:
        return get_formatter(self.format, validate=self.validate_ocsf)

    @abc.abstractmethod
    def build(self, name: str, context: SinkContext) -> Sink:
        """The sink this config describes, for the pipeline of `context.source`."""


@dataclass(frozen=True, slots=True)
class SinkContext:
    """What a sink may need from the composition root: its source's name, and (for the siemgate
    mirror sink) how to open a store from Settings."""

    source: str
    open_store: Callable[[Any], Any] | None = None


def secret_from(value: Any) -> SecretStr:
    """A secret given as {env = "NAME"} or {file = "/path"} in the config. Raises ValueError."""
    if isinstance(value, SecretStr):
        return value
    if not isinstance(value, dict) or set(value) - {"env", "file"} or len(value) != 1:
        raise ValueError('give secrets as { env = "VARIABLE" } or { file = "/path/to/file" }, never inline')
    if "env" in value:
        text = os.environ.get(str(value["env"]))
        if not text:
            raise ValueError(f"the environment variable {value['env']} is not set or empty")
        return SecretStr(text.strip())
    path = Path(str(value["file"])).expanduser()
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read the secret file {path}: {exc.strerror}") from None
    if not text:
        raise ValueError(f"the secret file {path} is empty")
    return SecretStr(text)


Secret = Annotated[SecretStr, BeforeValidator(secret_from)]


def ca_file_from(path: Path) -> Path:
    """A CA bundle that loads (PEM certificates, readable), checked when the config is loaded, so a
    missing or wrong file is an error naming the key rather than a failure when connecting.
    Raises ValueError."""
    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:
        raise ValueError(f"{path} holds no PEM CA certificate ({exc.reason})") from None
    except OSError as exc:
        raise ValueError(f"cannot read the CA file {path}: {exc.strerror}") from None
    return path


CaFile = Annotated[Path, AfterValidator(ca_file_from)]


def _url_host(url: HttpUrl) -> HttpUrl:
    host_name(url.host or "")
    return url


Url = Annotated[HttpUrl, AfterValidator(_url_host)]


def check_template(template: str, *names: str) -> str:
    """A str.format template that uses only the placeholders `names`; raises ValueError naming them."""
    try:
        template.format(**{name: name for name in names})
    except (KeyError, IndexError, ValueError) as exc:
        allowed = ", ".join(f"{{{name}}}" for name in names)
        raise ValueError(f"{template!r} is not a template of {allowed} ({type(exc).__name__}: {exc})") from None
    return template
