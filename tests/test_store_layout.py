"""The store's layout (docs/architecture.md, "The store contract"): the two backend packages have
the same file names, no module of the store is longer than 600 lines, and the SQL written once in
store/shared/ spells nothing one backend's way (the dialect does)."""

from __future__ import annotations

import re
from pathlib import Path

STORE = Path(__file__).resolve().parent.parent / "src" / "siemgate" / "store"
MAX_LINES = 600
# Files only one backend has: SQLite's database URLs (PostgreSQL's URL is psycopg's).
ONLY_ONE = {"sqlite/url.py"}
# Spellings of one backend, which in store/shared/ belong to the dialect (dialect.py) only.
BACKEND_SPELLINGS = re.compile(r"%s|INSERT OR |greatest\(|FOR UPDATE|SKIP LOCKED|RETURNING|lastrowid")


def unmirrored(store: Path) -> list[str]:
    """Files (and folders) of one backend package the other lacks, but those in ONLY_ONE."""
    names = {
        side: {p.relative_to(store / side).as_posix() for p in (store / side).iterdir() if p.name != "__pycache__"}
        for side in ("sqlite", "postgres")
    }
    one, other = names["sqlite"], names["postgres"]
    return sorted(
        f"{side}/{name}"
        for side, mine, theirs in (("sqlite", one, other), ("postgres", other, one))
        for name in mine - theirs
        if f"{side}/{name}" not in ONLY_ONE
    )


def too_long(store: Path) -> list[str]:
    """Modules of the store longer than MAX_LINES."""
    found = []
    for path in sorted(store.rglob("*.py")):
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            found.append(f"{path.relative_to(store)}: {lines} lines")
    return found


def backend_spellings(store: Path) -> list[str]:
    """Lines of store/shared/ (but dialect.py) that spell SQL one backend's way."""
    found = []
    for path in sorted((store / "shared").glob("*.py")):
        if path.name == "dialect.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if BACKEND_SPELLINGS.search(line):
                found.append(f"shared/{path.name}:{number}: {line.strip()}")
    return found


def test_the_backends_have_the_same_files() -> None:
    assert unmirrored(STORE) == []


def test_no_module_of_the_store_is_too_long() -> None:
    assert too_long(STORE) == []


def test_shared_sql_leaves_backend_spellings_to_the_dialect() -> None:
    assert backend_spellings(STORE) == []


def test_each_check_reports_what_breaks_the_layout(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for name, text in {
        "sqlite/store.py": "",
        "sqlite/url.py": "",
        "sqlite/events.py": "x = 1\n" * (MAX_LINES + 1),
        "postgres/store.py": "",
        "postgres/partitions.py": "",
        "shared/dialect.py": 'MARK = "%s"\n',
        "shared/people.py": 'SQL = "INSERT OR IGNORE INTO t VALUES (?)"\nLOCK = " FOR UPDATE"\nOK = "?"\n',
    }.items():
        (store / name).parent.mkdir(parents=True, exist_ok=True)
        (store / name).write_text(text)
    assert unmirrored(store) == ["postgres/partitions.py", "sqlite/events.py"]
    assert too_long(store) == [f"sqlite/events.py: {MAX_LINES + 1} lines"]
    assert backend_spellings(store) == [
        'shared/people.py:1: SQL = "INSERT OR IGNORE INTO t VALUES (?)"',
        'shared/people.py:2: LOCK = " FOR UPDATE"',
    ]
