"""`siemgate` run from the command line on a temporary data directory, for the admin CLI tests: each
command as a subprocess (`Cli`), and `siemgate serve` on the same data directory (`serving`)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from support.ports import free_port
from support.procs import healthy
from support.waiting import wait_for

PASSWORD = "a long enough console password"


class Cli:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, "SIEMGATE_DATA_DIR": str(data_dir), "SIEMGATE_LOG_FORMAT": "text", "COLUMNS": "300"}
        for name in ("SIEMGATE_CONFIG", "SIEMGATE_PORT", "SIEMGATE_HOST", "SIEMGATE_PUBLIC_HOST"):
            self.env.pop(name, None)

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "siemgate", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if ok:
            assert result.returncode == 0, f"siemgate {' '.join(args)}: {result.stderr}"
        return result

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.strip()

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def fails(self, *args: str, code: int = 1) -> str:
        """Run a command that must fail cleanly; returns its stderr."""
        result = self.run(*args, ok=False)
        assert result.returncode == code, f"exit {result.returncode}: {result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr
        assert result.stdout == "", result.stdout
        return result.stderr


@contextlib.contextmanager
def serving(cli: Cli, logs: Path) -> Iterator[str]:
    """`siemgate serve` on the CLI's data directory (its output in `logs`/serve.out and serve.err);
    yields its base URL once /healthz answers, and stops it with SIGTERM afterwards."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "serve.out").open("wb") as out, (logs / "serve.err").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "siemgate", "serve", "--port", str(port)],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=cli.env,
        )

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"siemgate serve exited: {(logs / 'serve.err').read_text()}")
        return healthy(base_url)

    try:
        wait_for("siemgate serve to answer /healthz", ready, 30)
        yield base_url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
