"""Appending whole lines to a JSON Lines file (the file sink's outputs, dead letters), so that what
is acknowledged is on the disk on lines of its own.

A write cut short (a full disk, the file size limit) is completed or the file is cut back to where
it was (OSError then); a line a crash cut short (nothing acknowledged ends there) is removed when
the file is opened, so what is written next starts on a line of its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

log = logging.getLogger("siemgate.forward")


class LineFile:
    """An append-only file of lines, opened (and created, with `mode`) at `path`. Raises OSError."""

    def __init__(self, path: Path, mode: int) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
        size = os.fstat(self.fd).st_size
        self.size = _after_last_line(path, size)
        if self.size < size:
            os.ftruncate(self.fd, self.size)
            log.warning("%s: removed %d bytes of a line a crash cut short", path, size - self.size)

    def append(self, data: bytes) -> None:
        """Append `data` (whole lines) and fsync it; on an error cut the file back to where it was.
        Raises OSError."""
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
            os.fsync(self.fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.size)
            raise
        self.size += len(data)

    def close(self) -> None:
        os.close(self.fd)


def _after_last_line(path: Path, size: int) -> int:
    """The offset just after the last newline in the first `size` bytes of `path` (0 if none)."""
    with path.open("rb") as f:
        end = size
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            found = f.read(end - start).rfind(b"\n")
            if found >= 0:
                return start + found + 1
            end = start
    return 0
