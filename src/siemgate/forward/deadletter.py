"""Dead letters: records a destination refused, kept as JSON Lines with the reason.

One file per (source, sink): `<dead_letter_dir>/<source>.<sink>.jsonl`. Each line:
`{"time", "source", "sink", "feature", "uuid", "status", "reason", "event"}` where `event` is the
Events API item as received, so a line can be fixed and replayed (`siemgate ingest --lenient`
reads the `event` objects of a file whose lines are extracted with jq). A line is written and
fsync'd before the page it belongs to is committed, so a dead letter is never lost.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from siemgate.forward.lines import LineFile
from siemgate.forward.records import Record
from siemgate.model.timestamps import format_ns, now_ns


class DeadLetterFile:
    """Append-only JSONL file; opened lazily on the first dead letter."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: LineFile | None = None

    def write(self, sink: str, record: Record, reason: str, status: int | None) -> None:
        """Append one dead letter and fsync it. Raises OSError when the disk refuses (the pipeline
        then stops rather than commit a page whose dead letter was not kept)."""
        line = orjson.dumps(
            {
                "time": format_ns(now_ns()),
                "source": record.source,
                "sink": sink,
                "feature": record.feature.value,
                "uuid": record.uuid,
                "status": status,
                "reason": reason,
                "event": record.event,
            }
        )
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = LineFile(self.path, 0o600)
        self._file.append(line + b"\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
