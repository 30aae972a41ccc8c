"""Files written so that a crash or a power loss leaves the old version or the new one, never an
empty or partial file: the bytes go to a temporary file beside the target (`.<name>.tmp-<pid>`,
what archive readers skip), which is fsynced, renamed over the target, and then the folder is
fsynced so that the rename itself is on disk. Used for the archive manifests, key files and
`siemgate-verify follow`'s state file; `create_durably` links instead of renaming, for a file that
must appear whole or not at all (the forwarder's checkpoint file)."""

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


def remove_dead_temporaries(path: Path) -> int:
    """Remove the temporary files of `path` left by writers that were killed (`.<name>.tmp-<pid>`
    whose process is gone); a live process's is kept, as it may be writing it. Returns how many
    were removed. Raises nothing: a file that cannot be removed stays."""
    prefix = f".{path.name}.tmp-"
    removed = 0
    with contextlib.suppress(OSError):
        for left in path.parent.iterdir():
            pid = left.name[len(prefix) :] if left.name.startswith(prefix) else ""
            if pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    left.unlink()
                    removed += 1
    return removed


def _alive(pid: int) -> bool:
    """Whether a process `pid` exists (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def write_durably(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Replace `path` with `data` durably (the temporary file is created with `mode`, less the
    umask). Raises OSError, leaving `path` as it was and no temporary file."""
    tmp = _written_temporary(path, data, mode)
    try:
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def create_durably(path: Path, data: bytes, mode: int = 0o666) -> bool:
    """Create `path` holding `data` unless it exists, durably and at once: another process (or the
    next start after a crash) finds no file or the whole of it, never an empty or partial one. The
    temporary file is linked to `path`, which fails when `path` exists. False, changing nothing,
    when `path` exists (made meanwhile by another process). Raises OSError; a temporary file is
    left behind only by a process killed while writing it."""
    tmp = _written_temporary(path, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    fsync_dir(path.parent)
    return True


def _written_temporary(path: Path, data: bytes, mode: int) -> Path:
    """The temporary file of `path`, holding `data`, flushed to disk. Raises OSError, leaving no
    temporary file."""
    tmp = temporary_name(path)
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # left by a killed writer of this pid: O_CREAT would keep its mode
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp
