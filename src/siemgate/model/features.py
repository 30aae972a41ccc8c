"""The three event streams ("features") and how they are named on the wire and in storage."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class Feature(StrEnum):
    """A stream of events; the value is the name used in URLs and token scopes."""

    SIGNINATTEMPTS = "signinattempts"
    ITEMUSAGES = "itemusages"
    AUDITEVENTS = "auditevents"

    @property
    def code(self) -> int:
        """Small integer used as the stream key in storage and cursors."""
        return _CODES[self]

    @classmethod
    def from_code(cls, code: int) -> Feature:
        """The feature stored under `code`; raises KeyError for an unknown code."""
        return _BY_CODE[code]


ALL_FEATURES: tuple[Feature, ...] = (Feature.SIGNINATTEMPTS, Feature.ITEMUSAGES, Feature.AUDITEVENTS)
# Alert sources checked on a schedule rather than read from a stream (docs/alerts.md): one record
# per token or stream. Their alerts are recorded in the auditevents stream and kept as long as it
# keeps events (alert_sources). The order is stored (store.records.scheduled_check_code): append only.
SCHEDULED_SOURCES = ("tokens", "integrity")
_CODES = {Feature.SIGNINATTEMPTS: 1, Feature.ITEMUSAGES: 2, Feature.AUDITEVENTS: 3}
_BY_CODE = {code: feature for feature, code in _CODES.items()}


def parse_features(text: str | Sequence[str] | None) -> tuple[Feature, ...]:
    """Parse a comma-separated list (or a list) of feature names; None or "all" means all three.

    An empty list is an error, never "all": a credential's scope must be chosen.

    Raises ValueError naming the unknown value and the valid ones. Order follows ALL_FEATURES.
    """
    if text is None:
        return ALL_FEATURES
    parts = text.split(",") if isinstance(text, str) else list(text)
    names = {p.strip().lower() for p in parts if p.strip()}
    if not names:
        raise ValueError("no feature given; name at least one of signinattempts, itemusages, auditevents, or all")
    if names == {"all"}:
        return ALL_FEATURES
    unknown = sorted(names - {f.value for f in ALL_FEATURES})
    if unknown:
        valid = ", ".join(f.value for f in ALL_FEATURES)
        raise ValueError(f"unknown feature {', '.join(map(repr, unknown))}; valid features are {valid}")
    return tuple(f for f in ALL_FEATURES if f.value in names)


def alert_sources(feature: Feature) -> tuple[str, ...]:
    """The alert sources whose alerts are kept as long as `feature`'s stream keeps events: its
    own, and for auditevents the scheduled ones (their alerts are recorded there)."""
    return (feature.value, *SCHEDULED_SOURCES) if feature is Feature.AUDITEVENTS else (feature.value,)
