"""The forwarder's configuration: a TOML file, validated by pydantic with errors that name the key.

    [forwarder]
    state_dir = "/var/lib/siemgate-forward"   # checkpoints.db and dead-letters/
    poll_interval = 10                         # seconds between polls at the head of the streams
    metrics_port = 9464                        # /metrics, /healthz, /readyz (omit to disable)

    [sources.onepassword]
    url = "https://events.1password.com"       # omit to take it from the token
    token = { env = "OP_EVENTS_TOKEN" }       # secrets: { env = "NAME" } or { file = "/path" }
    features = ["signinattempts", "auditevents"]   # omit: what the token's introspection lists
    start_time = "2026-11-01T00:00:00Z"        # first run only; default now - 1 h
    sinks = ["splunk", "archive"]

    [sinks.splunk]
    type = "splunk_hec"
    url = "https://splunk.example.com:8088"
    token = { file = "/run/secrets/hec" }

Every sink type and its settings are in docs/forwarding.md. Secrets are resolved when the file is
loaded and held as SecretStr: they never appear in errors, logs or reprs.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    ValidationError,
    field_validator,
    model_validator,
)

from siemgate.config import explain_toml_error
from siemgate.forward.errors import ForwardConfigError
from siemgate.forward.sinks import SinkConfigs
from siemgate.forward.sinks.base import CaFile, Secret, Url
from siemgate.model.features import Feature, parse_features
from siemgate.model.timestamps import TimestampError, normalize

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class ForwarderSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: Path = Field(Path("forward-state"), description="Checkpoints and dead letters live here.")
    poll_interval: PositiveFloat = Field(10.0, description="Seconds between polls once a stream is at its head.")
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(None, ge=0, le=65535, description="Serve /metrics, /healthz, /readyz.")
    retry_initial: PositiveFloat = Field(1.0, description="First retry delay cap (seconds); doubles per failure.")
    retry_max: PositiveFloat = Field(30.0, description="Largest retry delay (seconds), Retry-After aside.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "text"] = "auto"

    @property
    def checkpoint_path(self) -> Path:
        return self.state_dir / "checkpoints.db"

    @property
    def dead_letter_dir(self) -> Path:
        return self.state_dir / "dead-letters"


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Url | None = Field(None, description="Events API base URL; default from the token's audience.")
    token: Secret
    version: Literal[1, 2] = 2
    features: list[str] | None = Field(None, description="Default: the features the token's introspection lists.")
    start_time: str | None = Field(None, description="Where a new stream starts (RFC 3339); default now - 1 h.")
    limit: int = Field(1000, ge=1, le=1000, description="Events per page.")
    timeout: PositiveFloat = 30.0
    ca_file: CaFile | None = None
    tls_verify: bool = True
    poll_interval: PositiveFloat | None = None
    log_fields: bool = Field(
        True,
        description="From a siemgate with a signed log: add each event's log index and body hash to ECS and OCSF"
        " output (one page-proof request per page; docs/forwarding.md, 'Log fields').",
    )
    sinks: list[str] = Field(min_length=1)

    @field_validator("features")
    @classmethod
    def _features(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [f.value for f in parse_features(value)]

    @field_validator("sinks")
    @classmethod
    def _sinks(cls, value: list[str]) -> list[str]:
        twice = sorted({name for name in value if value.count(name) > 1})
        if twice:
            raise ValueError(
                f"names {', '.join(twice)} more than once (each event would be sent twice); list each once"
            )
        return value

    @field_validator("start_time")
    @classmethod
    def _start(cls, value: str | None) -> str | None:
        try:
            return None if value is None else normalize(value)
        except TimestampError as exc:
            raise ValueError(str(exc)) from None

    def feature_list(self) -> tuple[Feature, ...] | None:
        return None if self.features is None else tuple(Feature(f) for f in self.features)


class ForwardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    forwarder: ForwarderSection = ForwarderSection()
    sources: dict[str, SourceConfig] = Field(min_length=1)
    sinks: dict[str, SinkConfigs] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> ForwardConfig:
        for kind, names in (("source", self.sources), ("sink", self.sinks)):
            for name in names:
                if not _NAME.fullmatch(name):
                    raise ValueError(f"{kind} name {name!r}: use letters, digits, '_', '-', '.' (at most 64)")
        for name, source in self.sources.items():
            unknown = [s for s in source.sinks if s not in self.sinks]
            if unknown:
                raise ValueError(
                    f"sources.{name}.sinks names {', '.join(unknown)}, which no [sinks.NAME] table defines"
                )
        return self


def parse_config(data: dict[str, object], origin: str = "the configuration") -> ForwardConfig:
    """Validate a parsed TOML document. Raises ForwardConfigError naming each bad key (never a secret)."""
    try:
        return ForwardConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "top level"
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "union_tag_invalid":
                from siemgate.forward.sinks import SINK_TYPES

                message = f"unknown sink type; use one of {', '.join(SINK_TYPES)}"
            elif err["type"] == "extra_forbidden":
                message = "unknown setting (check its spelling in docs/forwarding.md)"
            problems.append(f"{where}: {message}")
        raise ForwardConfigError(f"{origin} is invalid: " + "; ".join(problems)) from None


def load_config(path: Path) -> ForwardConfig:
    """Read and validate a forward.toml. Raises ForwardConfigError."""
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except OSError as exc:
        raise ForwardConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ForwardConfigError(f"{path} is not valid TOML: {explain_toml_error(exc, text)}") from None
    return parse_config(data, str(path))
