"""The README's command blocks, run as written: every ```sh block is marked either `<!-- runnable -->`
(run here, in order, in one shell, in a scratch directory with the venv's `siemgate` on PATH and the
files the blocks name) or `<!-- not runnable: reason -->` (a long-running server, your own
deployment or SaaS), so a command that stops working, or a new block nobody classified, fails."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson

from support.events import signin

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"(?:<!-- (runnable|not runnable: [^>]*\S) -->\n)?```sh\n(.*?)```", re.S)
DAY_NS = 86_400 * 10**9


def blocks() -> list[tuple[str | None, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(README.read_text())]


def test_every_readme_block_is_classified_with_a_reason() -> None:
    found = blocks()
    assert len(found) >= 10
    unmarked = [code.splitlines()[0] for mark, code in found if mark is None]
    assert not unmarked, f"README blocks without <!-- runnable --> or <!-- not runnable: why -->: {unmarked}"
    assert sum(mark == "runnable" for mark, _ in found) >= 6


def _scratch_files(where: Path) -> None:
    """The files the runnable blocks name, as a user would have them."""
    (where / "alice.pw").write_text("a long enough password for alice\n")
    (where / "bob.pw").write_text("a long enough password for bob\n")
    now = 1_764_000_000 * 10**9
    events = [signin(now - DAY_NS + i * 10**9, name=f"Person {i}") for i in range(20)]
    lines = b"".join(orjson.dumps(e) + b"\n" for e in events)
    (where / "signins.jsonl").write_bytes(lines)
    (where / "signinattempts-2026-11.jsonl").write_bytes(lines)
    (where / "rules.yml").write_text(
        "id: exports\nname: Exports\nsource: itemusages\nseverity: high\nmatch:\n  action: export\n"
    )


def test_the_runnable_readme_blocks_run_as_written(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    _scratch_files(scratch)
    script = "\n".join(code for mark, code in blocks() if mark == "runnable")
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIEMGATE_") and k != "VIRTUAL_ENV"}
    # As a user's shell would be before reading the README: the venv's bin is *not* on PATH (the
    # first runnable block puts it there, relative to the checkout), so the checkout is linked in.
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", os.defpath).split(os.pathsep) if p != venv_bin)
    (scratch / ".venv").symlink_to(Path(venv_bin).parent)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, f"README commands failed:\n{result.stderr[-4000:]}"
    assert "Traceback" not in result.stderr
    assert (scratch / "splunk.token").read_text().count(".") == 2
    assert (scratch / "siemgate-data" / "siemgate.db").exists()
