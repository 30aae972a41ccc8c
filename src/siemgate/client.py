"""The public Events API client: iterate a stream's events with a durable cursor checkpoint.

Works against 1Password's Events API (https://events.1password.com and the .ca, .eu and
events.ent hosts) and against siemgate, on v1 or v2. See docs/forwarding.md, "The Python client".

    from siemgate.client import CheckpointStore, EventsClient

    with EventsClient(token, "https://events.1password.com") as client, CheckpointStore("state.db") as cp:
        for event in client.stream("auditevents", cp).events():
            print(event["uuid"], event["action"])
"""

from siemgate.forward.backoff import Backoff
from siemgate.forward.checkpoint import CheckpointStore, Position
from siemgate.forward.client import EventsClient, EventStream, Introspection, Page, base_url_from_token
from siemgate.forward.errors import CursorRejected, SourceError, SourceUnauthorized, Stopped
from siemgate.model.features import Feature

__all__ = [
    "Backoff",
    "CheckpointStore",
    "CursorRejected",
    "EventStream",
    "EventsClient",
    "Feature",
    "Introspection",
    "Page",
    "Position",
    "SourceError",
    "SourceUnauthorized",
    "Stopped",
    "base_url_from_token",
]
