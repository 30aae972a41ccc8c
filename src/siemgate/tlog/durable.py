"""Files written so that a crash or a power loss leaves the old version or the new one, never an
empty or partial file: the bytes go to a temporary file beside the target (`.<name>.tmp-<pid>`,
what archive readers skip), which is fsynced, renamed over the target, and then the folder is
fsynced so that the rename itself is on disk. Used for the archive manifests, key files and
`siemgate-verify follow`'s state file."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Flush the folder `path` (the names created, renamed or removed in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_name(path: Path) -> Path:
    """Where `path` is written before it is renamed into place."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_durably(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Replace `path` with `data` durably (the temporary file is created with `mode`, less the
    umask). Raises OSError, leaving `path` as it was and no temporary file."""
    tmp = temporary_name(path)
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # left by a killed writer of this pid: O_CREAT would keep its mode
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
