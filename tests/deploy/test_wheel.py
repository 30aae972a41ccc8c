"""The deployment path of docs/deploy.md: siemgate's wheel carries every data file it needs
(templates, static files, migrations, starter rules), installs into a clean virtualenv from a local
wheelhouse with no network, and the installed command serves the Events API and the console."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from support.ports import free_port

from .wheelhouse import make_wheelhouse

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "siemgate"
NO_NETWORK = "http://127.0.0.1:9"  # a closed port: any attempt to reach an index fails at once


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the clean virtualenv, the wheelhouse) with siemgate installed offline."""
    work = tmp_path_factory.mktemp("deploy")
    wheelhouse = make_wheelhouse(ROOT, work)
    venv = work / "venv"
    # The running pip installs into the new environment, which needs no pip of its own (ensurepip
    # took seconds).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    env = _offline_env()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--no-compile",  # byte-compiling every dependency (faker's locales) was most of the install
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "siemgate",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return venv, wheelhouse


def _offline_env(**extra: str) -> dict[str, str]:
    """The environment of a machine with no index: pip's own configuration ignored, every proxy a
    closed port, nothing of siemgate's checkout on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "SIEMGATE_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INDEX="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_CACHE_DIR="1",
        http_proxy=NO_NETWORK,
        https_proxy=NO_NETWORK,
        HTTP_PROXY=NO_NETWORK,
        HTTPS_PROXY=NO_NETWORK,
        SIEMGATE_LOG_FORMAT="text",
        **extra,
    )
    return env


def test_the_wheel_carries_every_data_file(installed: tuple[Path, Path]) -> None:
    _, wheelhouse = installed
    (wheel,) = wheelhouse.glob("siemgate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = {
        "siemgate/" + str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }
    assert data, "no data files found in the checkout"
    assert not data - names, f"files of the package missing from the wheel: {sorted(data - names)}"
    for kind in ("store/sqlite/migrations/", "store/postgres/migrations/", "console/templates/", "console/static/"):
        assert any(n.startswith(f"siemgate/{kind}") for n in names), kind
    assert any(n.startswith("siemgate/alerts/starter/") and n.endswith(".yml") for n in names)


def test_the_installed_wheel_serves_the_events_api_and_the_console(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    venv, _ = installed
    bin_dir = venv / "bin"
    env = _offline_env(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}", COLUMNS="300")
    where = subprocess.run(
        ["python", "-c", "import siemgate; print(siemgate.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(venv)), f"siemgate was imported from {where.stdout} {where.stderr}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["siemgate", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, f"siemgate {' '.join(args)}: {result.stderr}"
        return result

    (tmp_path / "owner.pw").write_text("a long enough owner password\n")
    cli("account", "create", "Acme", "--owner", "owner@acme.example", "--password-file", "owner.pw")
    cli("integration", "create", "Reader", "--type", "elastic")
    token = cli("token", "issue", "--name", "reader", "--integration", "Reader").stdout.strip()
    starter = cli("alerts", "list").stdout
    assert "brute-force-signin" in starter, starter
    assert subprocess.run(["siemgate-verify", "--help"], env=env, capture_output=True, check=False).returncode == 0

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(["siemgate", "serve", "--port", str(port)], cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/api/v2/auth/introspect", headers=auth, timeout=30).json()["account_uuid"]
        page = httpx.post(f"{base}/api/v2/auditevents", headers=auth, json={"limit": 10}, timeout=30)
        assert page.status_code == 200 and page.json()["items"], page.text  # the account's own audit trail
        sign_in = httpx.get(f"{base}/console/sign-in", timeout=30)
        assert sign_in.status_code == 200 and "Sign in" in sign_in.text  # a template
        assert httpx.get(f"{base}/console/static/console.css", timeout=30).status_code == 200
        assert httpx.get(f"{base}/console/static/js/main.js", timeout=30).status_code == 200
        assert httpx.get(f"{base}/openapi.json", timeout=30).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
