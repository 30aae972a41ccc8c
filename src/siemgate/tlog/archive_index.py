"""Reading an archive folder, shared by the server and `siemgate-verify archive` (standard library
only): the sidecar of a JSON Lines archive file (`<YYYY-MM-DD>.log.json`: a header line, then
`[log index, timestamp ns]` per row of the file, in its order; docs/retention.md), read a line at a
time, and the folder's files, walked without holding their list."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

INDEX_FORMAT = "siemgate-archive-index/v1"
MAX_INDEX_LINE = 4096  # far above `[index, ns]` or the header (which names the file)


def read_sidecar(path: Path) -> Iterator[tuple[int | None, int]]:
    """(log index or None, timestamp ns) of each row the sidecar at `path` lists, a line at a time.
    Raises ValueError naming the line that is not valid (also a header that is not INDEX_FORMAT
    and a line longer than MAX_INDEX_LINE), OSError when it cannot be read."""
    with open(path, "rb") as f:
        header = _line(f, 1)
        try:
            head = json.loads(header) if header is not None else None
        except ValueError:
            head = None
        if not isinstance(head, dict) or head.get("format") != INDEX_FORMAT:
            raise ValueError(f"the first line is not a {INDEX_FORMAT} header")
        number = 1
        while (line := _line(f, number + 1)) is not None:
            number += 1
            try:
                idx, ts = json.loads(line)
                if (idx is not None and type(idx) is not int) or type(ts) is not int:
                    raise TypeError("not integers")
            except (ValueError, TypeError) as exc:
                raise ValueError(f"line {number} is not [log index, timestamp ns] ({exc})") from None
            yield idx, ts


def _line(f: BinaryIO, number: int) -> bytes | None:
    line = f.readline(MAX_INDEX_LINE + 1)
    if not line:
        return None
    if len(line) > MAX_INDEX_LINE:
        raise ValueError(f"line {number} is longer than {MAX_INDEX_LINE} bytes, which no index line is")
    return line.rstrip(b"\n")


def folder_files(folder: Path) -> Iterator[str]:
    """The name (relative, `/`-separated) of every entry under `folder` that is not a folder,
    symbolic links included and never followed, a directory at a time and unsorted: a folder of
    millions of files is walked, never listed whole. Unreadable subfolders are skipped."""
    for top, dirs, files in os.walk(folder):
        base = Path(top).relative_to(folder)
        links = [name for name in dirs if os.path.islink(os.path.join(top, name))]  # not walked into
        for name in (*files, *links):
            yield (base / name).as_posix()
