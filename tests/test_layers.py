"""The layers of siemgate (docs/architecture.md, "Layers"): a module imports only from its own
package and from layers below it; never up, never sideways. Every import counts, those inside
functions and under TYPE_CHECKING included."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "siemgate"

# Bottom up; the packages (or top-level modules) of one layer do not import each other.
LAYERS: list[set[str]] = [
    {"__init__", "model", "errors"},
    {"address", "outbound", "private", "logs", "tlog"},
    {"config"},
    {"store"},
    {"auth"},
    {"accounts"},
    {"alerts", "retention", "simulate", "integrity", "forward"},
    {"client", "dbcopy"},
    {"services"},
    {"api", "console"},
    {"composition"},
    {"cli"},
    {"__main__"},
]
RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}
# forward depends on the store only through its ingest entry (the mirror sink writes events).
NARROW = {("forward", "store"): ("siemgate.store.ingest",)}


def component(path: Path, root: Path) -> str:
    """The package (or top-level module) a file belongs to."""
    parts = path.relative_to(root).parts
    return parts[0].removesuffix(".py")


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every siemgate import in `tree`; `from siemgate import x` gives siemgate.x."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("siemgate")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "siemgate":
                found += [(node.lineno, f"siemgate.{a.name}") for a in node.names]
            elif node.module.startswith("siemgate."):
                found.append((node.lineno, node.module))
    return found


def violations(root: Path) -> list[str]:
    """Every import in the package at `root` that goes up or sideways, or is of an unlisted part."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        source = component(path, root)
        for line, module in imported(ast.parse(path.read_text(), str(path))):
            target = module.split(".")[1]
            target = (
                target if target in RANK or (root / target).exists() or (root / f"{target}.py").exists() else "__init__"
            )
            where = f"{path.relative_to(root)}:{line} imports {module}"
            if source not in RANK or target not in RANK:
                problems.append(f"{where}: {source if source not in RANK else target} is in no layer")
            elif source == target:
                continue
            elif RANK[target] >= RANK[source]:
                problems.append(
                    f"{where}: {target} is {'beside' if RANK[target] == RANK[source] else 'above'} {source}"
                )
            elif (source, target) in NARROW and not module.startswith(NARROW[(source, target)]):
                problems.append(f"{where}: {source} may use only {', '.join(NARROW[(source, target)])} of {target}")
    return problems


def test_no_import_goes_up_or_sideways() -> None:
    assert violations(SRC) == []


def test_every_package_has_a_layer() -> None:
    parts = {component(p, SRC) for p in SRC.glob("*") if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert parts <= set(RANK), f"add to LAYERS (and docs/architecture.md): {sorted(parts - set(RANK))}"


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "siemgate"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_an_upward_import_is_caught_even_inside_a_function(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "store/__init__.py": "",
            "store/base.py": "from siemgate.model.ids import new_id\n\ndef f():\n    from siemgate.api import app\n",
            "api/__init__.py": "",
        },
    )
    assert violations(root) == ["store/base.py:4 imports siemgate.api: api is above store"]


def test_a_sideways_import_and_a_wide_forward_are_caught(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "api/x.py": "from siemgate.console.routes import mount_console\n",
            "forward/y.py": "from siemgate.store.ingest import EventWriter\nfrom siemgate.store.base import Store\n",
            "newpart.py": "from siemgate import errors\n",
        },
    )
    assert violations(root) == [
        "api/x.py:1 imports siemgate.console.routes: console is beside api",
        "forward/y.py:2 imports siemgate.store.base: forward may use only siemgate.store.ingest of store",
        "newpart.py:1 imports siemgate.errors: newpart is in no layer",
    ]


# Modules that own a SQLite file of their own (not the store's) and handle its errors themselves.
OWN_SQLITE = {"forward/checkpoint.py", "tlog/signer.py", "tlog/archive_tables.py", "dbcopy.py"}


def driver_catches(root: Path) -> list[str]:
    """`except` clauses outside store/ that name a database driver's exception."""
    found = []
    for path in sorted(root.rglob("*.py")):
        name = str(path.relative_to(root))
        if name.startswith("store/") or name in OWN_SQLITE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), name)):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = ast.unparse(node.type)
                if "sqlite3." in caught or "psycopg" in caught:
                    found.append(f"{name}:{node.lineno} catches {caught}")
    return found


def test_no_driver_error_is_caught_outside_the_store() -> None:
    """The backends turn driver errors into siemgate.errors (docs/architecture.md, "The store contract")."""
    assert driver_catches(SRC) == []
