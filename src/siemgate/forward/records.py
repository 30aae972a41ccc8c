"""What flows through a pipeline: one event as received from the Events API, with its stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from siemgate.model.features import Feature

# The Elastic integration's data stream names and the Splunk add-on's sourcetypes (docs/forwarding.md, "Formats").
DATASETS = {
    Feature.SIGNINATTEMPTS: "signin_attempts",
    Feature.ITEMUSAGES: "item_usages",
    Feature.AUDITEVENTS: "audit_events",
}


@dataclass(slots=True)
class Record:
    """One event. `event` is the Events API item exactly as received; `uuid` is its id (or "")."""

    feature: Feature
    event: dict[str, Any]
    source: str
    uuid: str

    @property
    def dataset(self) -> str:
        return DATASETS[self.feature]


def make_record(feature: Feature, event: Any, source: str) -> Record:
    """Wrap one item of a page. Items that are not JSON objects are kept (as {"value": item})."""
    if type(event) is not dict:
        event = {"value": event}
    uuid = event.get("uuid", "")
    return Record(feature, event, source, uuid if type(uuid) is str else "")
