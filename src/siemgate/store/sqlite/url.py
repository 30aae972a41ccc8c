"""SQLite store locations as users write them (docs/configuration.md, `database_url`):

    sqlite:///srv/siemgate-data/siemgate.db    absolute: /srv/siemgate-data/siemgate.db (as in file:// URLs)
    sqlite:////srv/siemgate-data/siemgate.db   absolute too (the SQLAlchemy form)
    sqlite:siemgate-data/siemgate.db           relative to the working directory
    siemgate-data/siemgate.db, /srv/.../x.db   a plain path (`db copy --from` only)

An ambiguous `sqlite:///a/b` whose absolute path does not exist while `a/b` relative to the
working directory does is refused with both readings, rather than opening (or creating) the
wrong file.
"""

from __future__ import annotations

from pathlib import Path

from siemgate.errors import ConfigError


def sqlite_url_path(url: str, *, what: str = "database_url", plain: bool = True) -> Path:
    """The file `url` names; `plain`: a path without the sqlite: prefix is taken too. Raises
    ConfigError for another scheme, an ambiguous URL, parameters (`?mode=ro`) or `:memory:`."""
    if not url.startswith("sqlite:"):
        if plain and "://" not in url:
            return Path(url).expanduser()
        raise ConfigError(f"{what}: {url!r} is not an SQLite location; write sqlite:///absolute/path/siemgate.db")
    rest = url.removeprefix("sqlite:")
    if "?" in rest or "#" in rest:
        raise ConfigError(
            f"{what}: {url!r} has parameters; SQLite locations take none (they would become part of the"
            " file name): write sqlite:///absolute/path/siemgate.db alone"
        )
    if rest.lstrip("/") == ":memory:":
        raise ConfigError(
            f"{what}: {url!r} is an in-memory database, which siemgate cannot use (each of its connections"
            " would see a database of its own, and everything is lost at exit): name a file,"
            " sqlite:///absolute/path/siemgate.db"
        )
    if not rest.startswith("//"):
        if not rest:
            raise ConfigError(f"{what}: {url!r} names no file; write sqlite:///absolute/path/siemgate.db")
        return Path(rest).expanduser()  # sqlite:relative/path
    rest = rest.removeprefix("//")
    if not rest.startswith("/"):
        raise ConfigError(f"{what}: {url!r} has a host part; write sqlite:///absolute/path/siemgate.db")
    path = Path("/" + rest.lstrip("/"))
    relative = Path(rest.lstrip("/"))
    if not rest.startswith("//") and not path.exists() and relative.exists() and relative.resolve() != path:
        raise ConfigError(
            f"{what}: {url!r} names {path}, which does not exist; {relative.resolve()} does. Write"
            f" sqlite:///{relative.resolve()} (absolute) or sqlite:{relative} (relative) to say which"
        )
    return path
