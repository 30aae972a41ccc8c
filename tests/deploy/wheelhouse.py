"""A local wheelhouse for installing siemgate with no network: siemgate's own wheel, built from a
copy of the checkout by its build backend, and a wheel of each runtime dependency repacked from the
distributions installed in the running environment (their files, metadata and tags as installed),
so the clean install uses exactly the versions the tests ran against."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

SOURCES = ("src", "pyproject.toml", "README.md", "LICENSE")


def build_siemgate_wheel(root: Path, work: Path, out: Path) -> Path:
    """Build siemgate's wheel from a copy of the checkout (nothing is written into it), offline."""
    copy = work / "source"
    for name in SOURCES:
        path = root / name
        if path.is_dir():
            shutil.copytree(path, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif path.exists():
            copy.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out), "."],
        cwd=copy,
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = out.glob("siemgate-*.whl")
    return wheel


def runtime_closure(name: str) -> dict[str, metadata.Distribution]:
    """The installed distributions `name` needs at run time (its requirements, their extras, and
    theirs), keyed by normalised name; `name` itself excluded."""
    found: dict[str, metadata.Distribution] = {}
    pending: list[tuple[str, frozenset[str]]] = [(name, frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        dist_name, extras = pending.pop()
        if (dist_name, extras) in seen:
            continue
        seen.add((dist_name, extras))
        dist = metadata.distribution(dist_name)
        for text in dist.requires or []:
            req = Requirement(text)
            wanted = req.marker is None or any(
                req.marker.evaluate({"extra": extra}) for extra in (extras or {""}) | {""}
            )
            if not wanted:
                continue
            key = _normal(req.name)
            found.setdefault(key, metadata.distribution(req.name))
            pending.append((req.name, frozenset(req.extras)))
    found.pop(_normal(name), None)
    return found


def repack(dist: metadata.Distribution, out: Path) -> Path:
    """A wheel of an installed distribution: the files its RECORD lists under site-packages (scripts
    are made again from its entry points on install), tagged as its WHEEL file says."""
    wheel_meta = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in wheel_meta.splitlines() if line.startswith("Tag:")]
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    parts = [tag.split("-") for tag in tags] or [["py3", "none", "any"]]
    tag = "-".join(".".join(dict.fromkeys(p[i] for p in parts)) for i in range(3))  # py2.py3-none-any
    target = out / f"{name}-{dist.version}-{tag}.whl"
    base = Path(str(dist.locate_file("")))
    record_name = next(str(f) for f in dist.files or [] if str(f).endswith(".dist-info/RECORD"))
    rows = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zf:
        for file in dist.files or []:
            rel = str(file)
            if rel.startswith("..") or rel == record_name or "__pycache__" in rel or rel.endswith(".pyc"):
                continue
            data = (base / rel).read_bytes()
            zf.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append((rel, f"sha256={digest}", str(len(data))))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([*rows, (record_name, "", "")])
        zf.writestr(record_name, buffer.getvalue())
    return target


def make_wheelhouse(root: Path, work: Path) -> Path:
    """work/wheelhouse with siemgate's wheel and every runtime dependency's."""
    out = work / "wheelhouse"
    out.mkdir(parents=True)
    build_siemgate_wheel(root, work, out)
    for dist in runtime_closure("siemgate").values():
        repack(dist, out)
    return out


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
