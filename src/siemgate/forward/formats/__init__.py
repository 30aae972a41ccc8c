"""Output formats, chosen per sink: each turns a Record into one JSON document (a dict).

- `raw`: the Events API item exactly as received (the sink's envelope says which stream it is);
- `ecs`: the field layout of Elastic's 1Password integration, with its gaps filled;
- `ocsf`: OCSF 1.7.0 classes: Authentication, Web Resources Activity, and the IAM classes for audit events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from siemgate.forward.records import Record

Formatter = Callable[[Record], dict[str, Any]]
FormatName = Literal["raw", "ecs", "ocsf"]
FORMATS: tuple[FormatName, ...] = ("raw", "ecs", "ocsf")


def raw(record: Record) -> dict[str, Any]:
    """The event untouched."""
    return record.event


def get_formatter(name: str, *, validate: bool = False) -> Formatter:
    """The formatter called `name`; `validate` checks every OCSF document against the schema
    (pydantic-ocsf models; a document that fails becomes a poison record). Raises ValueError."""
    if name == "raw":
        return raw
    if name == "ecs":
        from siemgate.forward.formats.ecs import to_ecs

        return to_ecs
    if name == "ocsf":
        from siemgate.forward.formats.ocsf import to_ocsf, validated

        return validated if validate else to_ocsf
    raise ValueError(f"unknown format {name!r}; use one of {', '.join(FORMATS)}")
