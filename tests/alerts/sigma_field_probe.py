"""Derive, from the forwarder's own ECS and OCSF formatters, which native field each field they
emit comes from: events whose every leaf holds a distinct marker are formatted, and each output
field holding a marker maps back to the field that had it. Probes run with long and with
two-letter markers (the ECS country code field takes two letters) and with each audit object type
the formatters treat apart. An output field that maps to different native fields in different
probes is ambiguous and left out; so is one that holds no marker (a constant or a derived value)
and a list (it gathers several fields).

`python tests/alerts/sigma_field_probe.py > src/siemgate/alerts/sigma_fields.json` writes the
table siemgate ships (tests check that it is what this derives).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from siemgate.alerts.fields import _SHAPES, _paths
from siemgate.forward.formats.ecs import to_ecs
from siemgate.forward.formats.ocsf import to_ocsf
from siemgate.forward.records import Record
from siemgate.model.features import Feature

NUMBERS = {"latitude", "longitude", "used_version"}
TIMES = {"timestamp", "login_time"}
OBJECT_TYPES = ("user", "gm", "uva", "group", "device", "vault", "item", "account")


def _leaves(feature: Feature) -> list[str]:
    paths = sorted(_paths(_SHAPES[feature.value]))
    return [p for p in paths if not any(other.startswith(p + ".") for other in paths)]


def _put(event: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        event = event.setdefault(part, {})
    event[last] = value


def _markers(feature: Feature, short: bool, object_type: str | None) -> tuple[dict[str, Any], dict[Any, str]]:
    event: dict[str, Any] = {}
    back: dict[Any, str] = {}
    for i, path in enumerate(_leaves(feature)):
        name = path.rsplit(".", 1)[-1]
        if name in NUMBERS:
            value: Any = 10 + i / 1000
        elif name in TIMES:
            value = f"2020-01-01T00:00:{i % 60:02d}.{i:09d}Z"
        elif short:
            value = chr(65 + i // 26) + chr(65 + i % 26)
        else:
            value = f"m{i:03d}{name}"
        if path == "object_type" and object_type is not None:
            value = object_type
        _put(event, path, value)
        back[value] = path
    return event, back


def _flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.update(_flatten(value, f"{prefix}{key}."))
    elif isinstance(doc, list):
        pass  # lists (related.user, privileges) gather several fields: no one field to map back to
    else:
        out[prefix[:-1]] = doc
    return out


def derive() -> dict[str, dict[str, dict[str, str]]]:
    """{format: {service: {output field: native field}}}"""
    table: dict[str, dict[str, dict[str, str]]] = {}
    for fmt, formatter in (("ecs", to_ecs), ("ocsf", to_ocsf)):
        for feature in Feature:
            found: dict[str, set[str]] = {}
            types: tuple[str | None, ...] = OBJECT_TYPES if feature is Feature.AUDITEVENTS else (None,)
            for short in (False, True):
                for object_type in types:
                    event, back = _markers(feature, short, object_type)
                    doc = formatter(Record(feature, event, "probe", str(event.get("uuid", ""))))
                    for field, value in _flatten(doc).items():
                        if value in back and not (field.endswith("object_type") and value == object_type):
                            found.setdefault(field, set()).add(back[value])
            table.setdefault(fmt, {})[feature.value] = {
                field: natives.pop() for field, natives in sorted(found.items()) if len(natives) == 1
            }
    return table


if __name__ == "__main__":
    json.dump(derive(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
