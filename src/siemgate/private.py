"""Private by default on disk: the data directory is 0700 and every file siemgate makes in it —
the database and its WAL and shared-memory files, archives, forwarder checkpoints, key and token
files — is 0600, those made later included (docs/security.md, "On disk").

The `siemgate` command and the worker factory set the process umask to 077 before anything is
opened, so every file and directory created afterwards is private whatever code creates it;
`private_dir` also tightens a data directory an earlier version left readable.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from siemgate.errors import ConfigError

log = logging.getLogger("siemgate")
UMASK = 0o077
# Names siemgate makes in a data directory (the store and its WAL files, keys of 0.1, archives,
# the demo's marker): a directory holding anything else is not siemgate's own.
_OURS = ("siemgate.db", "keys", "archive", ".siemgate-demo")
DIR_MODE = 0o700
FILE_MODE = 0o600


def private_process() -> None:
    """Make every file this process creates from now on readable by its user only."""
    os.umask(UMASK)


def private_dir(path: Path, what: str = "the directory") -> None:
    """Create `path` (and parents) if missing, and make it 0700, unless it holds things that are not
    siemgate's (then it is shared with others, and left as it is, with a warning). ConfigError naming
    `what` (and the setting that chose it) when it cannot be used: the root directory, a file in the
    way, no permission."""
    if path.resolve() == Path(path.resolve().anchor):
        raise ConfigError(f"cannot use {what} {path}: it is the root directory; give siemgate a directory of its own")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        others = sorted(p.name for p in path.iterdir() if not p.name.startswith(_OURS))
        if others and os.stat(path).st_mode & 0o077:
            # not siemgate's own (/var/lib, a home directory): made 0700, its other users would lose it
            log.warning(
                "%s %s also holds %s, so it is left readable by others; give siemgate a directory of its own",
                what,
                path,
                ", ".join(others[:3]) + (", ..." if len(others) > 3 else ""),
            )
            return
        os.chmod(path, DIR_MODE)
    except OSError as exc:
        raise ConfigError(f"cannot use {what} {path}: {unusable(exc)}") from None


def unusable(exc: OSError) -> str:
    """Why a path could not be made or opened, and what to do, from the OSError that said so."""
    if isinstance(exc, FileExistsError | NotADirectoryError):
        why = "a file is in the way (it, or a directory above it, is a file)"
    elif isinstance(exc, IsADirectoryError):
        return f"{exc.filename} is a directory; name a file in it (siemgate.db)"
    else:
        why = (exc.strerror or str(exc)).lower()
    return f"{why}; give a directory siemgate may create and write"


def private_file(path: Path) -> None:
    """Create `path` empty if missing (0600), else make it 0600. Raises IsADirectoryError for a
    directory (it is never made 0600: `sqlite:///` named `/`, and made the whole system unusable)."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a directory, not a file", str(path))
    if path.exists():
        os.chmod(path, FILE_MODE)
    else:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))


def write_secret(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (0600), an existing file included: its
    mode is tightened before anything is written into it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as f:
        os.fchmod(fd, FILE_MODE)
        f.write(text)
