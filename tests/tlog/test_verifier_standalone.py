"""siemgate-verify needs only the standard library and `cryptography`: run it from the source tree
in a virtualenv that holds nothing else, and check what the log package imports."""

from __future__ import annotations

import ast
import base64
import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from siemgate.tlog.cosignature import create_witness_key, public_key_text
from siemgate.tlog.merkle import tree_reader
from siemgate.tlog.page_proof import Leaf, PageProof
from siemgate.tlog.proof import inclusion_proof, range_proof
from siemgate.tlog.tlog_proof import TlogProof, entry_extra
from siemgate.tlog.witness import Witness

from .tlog_kit import T0, MemLog, export, make_kit

SRC = Path(__file__).resolve().parents[2] / "src"
TLOG = SRC / "siemgate" / "tlog"
# Modules the offline verifier's import closure may touch (besides the standard library).
ALLOWED = {"cryptography", "siemgate.tlog", "siemgate.model.timestamps", "siemgate.model.text", "pyarrow"}
# (pyarrow: Parquet only; siemgate.model.text: the excerpt timestamps' errors show)
STDLIB_ONLY = ("timestamps", "text")  # the siemgate.model modules the verifier imports
VERIFIER_MODULES = sorted(p.stem for p in TLOG.glob("*.py"))


def test_log_package_imports_only_stdlib_cryptography_and_itself() -> None:
    stdlib = sys.stdlib_module_names
    for name in VERIFIER_MODULES:
        tree = ast.parse((TLOG / f"{name}.py").read_text())
        for node in ast.walk(tree):
            modules = []
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            for module in modules:
                top = module.split(".")[0]
                ok = (
                    top in stdlib
                    or top == "__future__"
                    or any(module == a or module.startswith(a + ".") for a in ALLOWED)
                )
                assert ok, f"siemgate/tlog/{name}.py imports {module}"
    # the siemgate.model modules it imports must stay standard-library only (but for each other)
    for module in STDLIB_ONLY:
        tree = ast.parse((SRC / "siemgate" / "model" / f"{module}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                allowed = {"__future__", *(f"siemgate.model.{m}" for m in STDLIB_ONLY)}
                assert all(n.split(".")[0] in sys.stdlib_module_names or n in allowed for n in names), (module, names)


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with only `cryptography` (and what it needs), installed by pip from its
    configured index."""
    env = tmp_path_factory.mktemp("bare-venv")
    venv.EnvBuilder(with_pip=True, clear=True).create(env)
    python = env / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "cryptography"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"pip could not install cryptography into the test venv: {done.stderr[-2000:]}"
    return python


def test_siemgate_verify_runs_with_only_cryptography(bare_python: Path, tmp_path: Path) -> None:
    listed = subprocess.run(
        [str(bare_python), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    installed = {line.split("==")[0].lower() for line in listed.splitlines() if line}
    assert installed <= {"cryptography", "cffi", "pycparser", "pip", "setuptools", "typing-extensions"}, installed
    kit = make_kit(tmp_path)
    key = create_witness_key(tmp_path / "w.key", "witness.test.example/w")
    (tmp_path / "w.pub").write_text(public_key_text([key.verifier()]))
    witness = Witness(key, kit.keyring.public(), tmp_path / "w.state")
    log, notes, sizes = MemLog(), [], []
    for n in (7, 9):
        old = log.size
        log.append(n)
        note = kit.sign(log)
        proof = "".join(base64.b64encode(h).decode() + "\n" for h in (log.proof(old, log.size) if old else []))
        notes.append(note + witness.add_checkpoint(f"old {old}\n{proof}\n{note}".encode()))
        sizes.append(log.size)
    witness.close()
    bundle = export(log, notes, tmp_path / "bundle", sizes)
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bare_python), "-m", "siemgate.tlog.verify_cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )

    ok = run("bundle", str(bundle), "--key", str(kit.public_key), "--witness-key", str(tmp_path / "w.pub"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Result: VALID" in ok.stdout
    events = bundle / "events.tsv"
    events.write_bytes(events.read_bytes().replace(b'"update"', b'"Update"', 1))
    bad = run("bundle", str(bundle), "--key", str(kit.public_key))
    assert bad.returncode == 1 and "INVALID index 0 [checkpoint" in bad.stdout
    usage = run("bundle", str(bundle))
    assert usage.returncode == 2

    # one event and one page against their proofs, with the same interpreter
    read = tree_reader(log.leaves())
    event = TlogProof(3, inclusion_proof(3, log.size, read), notes[-1], entry_extra(3, log.entries[3]))
    (tmp_path / "event.json").write_bytes(log.bodies[3])
    (tmp_path / "event.proof").write_text(event.text())
    witnessed = ["--key", str(kit.public_key), "--witness-key", str(tmp_path / "w.pub")]
    ok = run("event", "event.json", "event.proof", *witnessed)
    assert ok.returncode == 0 and "Result: VALID: the event is index 3" in ok.stdout, ok.stdout + ok.stderr
    page = PageProof(notes[-1], T0, None, reset=False, tail=False, first_idx=2, end_idx=6)
    page.items = [Leaf(i, log.entries[i]) for i in range(2, 6)]
    hashes = range_proof(2, 6, log.size, read)
    page.left, page.right = hashes[:1], hashes[1:]
    (tmp_path / "page.json").write_bytes(
        b'{"cursor":"c","has_more":false,"items":[' + b",".join(log.bodies[2:6]) + b"]}"
    )
    (tmp_path / "page.proof").write_text(json.dumps(page.to_json()))
    ok = run("page", "page.json", "page.proof", *witnessed, "--state", "state.json")
    assert ok.returncode == 0 and "Result: VALID: indices 2..5" in ok.stdout, ok.stdout + ok.stderr
    assert json.loads((tmp_path / "state.json").read_text())["next_idx"] == 6
    unreachable = run(
        "follow",
        "--url",
        "http://127.0.0.1:1",
        "--token-file",
        "event.json",
        "--feature",
        "auditevents",
        "--state",
        "follow.json",
        "--key",
        str(kit.public_key),
    )
    assert unreachable.returncode == 2 and "cannot reach" in unreachable.stderr, unreachable.stderr
