"""The container image, compose file and systemd unit of docs/deploy.md, checked statically:
containers cannot run on the test machine, so what can be checked without running them is — the
YAML parses with the keys compose needs, the image runs as a non-root user with a health check and
a data volume, the unit has its hardening options and passes `systemd-analyze verify`."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    result = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def test_the_image_is_non_root_with_a_health_check_and_a_data_volume() -> None:
    steps = _instructions((DEPLOY / "Containerfile").read_text())
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    users = [arg for word, arg in final if word == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    user_at = max(i for i, (word, _) in enumerate(final) if word == "USER")
    assert [word for word, _ in final[user_at:]].count("RUN") == 0, "commands run as root after USER"
    env = " ".join(arg for word, arg in final if word == "ENV")
    data_dir = re.search(r"SIEMGATE_DATA_DIR=(\S+)", env)
    assert data_dir, env
    volumes = " ".join(arg for word, arg in final if word == "VOLUME")
    assert data_dir.group(1) in volumes
    (health,) = [arg for word, arg in final if word == "HEALTHCHECK"]
    assert "/healthz" in health and "CMD" in health
    installs = " ".join(arg for word, arg in final if word == "RUN")
    assert "--no-index" in installs and "--find-links /wheels" in installs
    assert any(word == "CMD" and "serve" in arg for word, arg in final)
    assert ("STOPSIGNAL", "SIGTERM") in final


def test_the_compose_file_runs_siemgate_with_postgresql_and_redis() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"siemgate", "postgres", "redis"}
    siemgate = services["siemgate"]
    assert siemgate["build"]["dockerfile"] == "deploy/Containerfile"
    assert (DEPLOY / siemgate["build"]["context"] / siemgate["build"]["dockerfile"]).is_file()
    env = siemgate["environment"]
    assert (
        env["SIEMGATE_DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["SIEMGATE_DATABASE_URL"]
    )
    assert env["SIEMGATE_REDIS_URL"] == "redis://redis:6379/0"
    assert "SIEMGATE_PUBLIC_URL" in env and "SIEMGATE_TRUSTED_PROXIES" in env
    assert {name: dep["condition"] for name, dep in siemgate["depends_on"].items()} == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
    }
    assert any(v.endswith(":/var/lib/siemgate") for v in siemgate["volumes"])
    assert all(p.startswith("127.0.0.1:") for p in siemgate["ports"]), "published beyond the host's loopback"
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    assert set(compose["volumes"]) >= {"siemgate-data", "postgres-data"}
    assert "${POSTGRES_PASSWORD:?" in services["postgres"]["environment"]["POSTGRES_PASSWORD"]


def _unit(text: str) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current.setdefault(key, []).append(value)
    return sections


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


def test_the_systemd_unit_is_hardened() -> None:
    unit = _unit((DEPLOY / "siemgate.service").read_text())
    service = unit["Service"]
    assert service["User"] != ["root"] and service["User"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], (key, service.get(key))
    assert "@system-service" in service["SystemCallFilter"]
    assert service["ExecStart"][0].split()[1:] == ["serve"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # The unit names /opt/siemgate/venv/bin/siemgate, absent here: verify a copy pointing at this
    # environment's siemgate, everything else unchanged.
    siemgate = str(Path(sys.executable).parent / "siemgate")
    text = (DEPLOY / "siemgate.service").read_text()
    copy = tmp_path / "siemgate.service"
    copy.write_text(text.replace("/opt/siemgate/venv/bin/siemgate", shlex.quote(siemgate)))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True, check=False
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines() if str(copy) in line]
    assert result.returncode == 0, result.stderr
    assert not problems, problems
