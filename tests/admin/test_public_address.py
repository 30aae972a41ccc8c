"""The public address: one setting (public_url) that `serve`, `token issue`, the console and the
guides agree on; warnings before a token is issued when a SIEM cannot use it; and existing tokens
that keep working when it changes, until they are rotated."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from siemgate.accounts.catalog import SIEM_TYPES
from siemgate.address import parse_address
from siemgate.config import load_settings
from siemgate.errors import ConfigError
from support.servers import bearer

from .cli_runner import PASSWORD, Cli, serving


def _aud(token: str) -> list[str]:
    payload = token.split(".")[1]
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return list(claims["aud"])


def _setup(cli: Cli, tmp_path: Path) -> str:
    """An account with an owner and a personal API key; returns the key."""
    password_file = tmp_path / "owner.pw"
    password_file.write_text(PASSWORD + "\n")
    cli.run("account", "create", "Acme", "--owner", "olive@acme.example", "--password-file", str(password_file))
    return cli.out("api-key", "create", "--user", "olive@acme.example", "--name", "tests")


def _issue(cli: Cli, name: str, integration: str = "Reader") -> dict[str, Any]:
    issued: dict[str, Any] = cli.json("token", "issue", "--name", name, "--integration", integration)
    return issued


def _works(base_url: str, token: str) -> int:
    return httpx.get(f"{base_url}/api/v2/auth/introspect", headers=bearer(token), timeout=30).status_code


def test_existing_tokens_keep_working_when_the_public_address_changes_until_rotated(cli: Cli, tmp_path: Path) -> None:
    _setup(cli, tmp_path)
    cli.run("integration", "create", "Reader", "--type", "elastic")
    cli.env["SIEMGATE_PUBLIC_HOST"] = "old.example.com"  # the older form of the setting
    old = _issue(cli, "before the move")
    assert _aud(old["token"]) == ["old.example.com"]

    del cli.env["SIEMGATE_PUBLIC_HOST"]
    cli.env["SIEMGATE_PUBLIC_URL"] = "https://new.example.com:8443"
    with serving(cli, tmp_path / "logs") as base_url:
        assert _works(base_url, old["token"]) == 200, "a token issued before the address changed was refused"
        new = _issue(cli, "after the move")
        assert new["base_url"] == "https://new.example.com:8443"
        assert _aud(new["token"]) == ["new.example.com:8443"]
        assert _works(base_url, new["token"]) == 200
        # Rotating the old token moves it to the new address; the old one then stops.
        rotated = cli.json("token", "rotate", old["id"], "--grace", "0")
        assert _aud(rotated["token"]) == ["new.example.com:8443"]
        assert _works(base_url, old["token"]) == 401
        assert _works(base_url, rotated["token"]) == 200
    log = (tmp_path / "logs" / "serve.err").read_text()
    assert f"token {old['id']} carries the former address old.example.com" in log, log


def test_serve_and_token_issue_name_the_same_public_address(cli: Cli, tmp_path: Path) -> None:
    key = _setup(cli, tmp_path)
    cli.run("integration", "create", "Reader", "--type", "other")
    # Not configured: `serve --port P` listens on P, but tells SIEMs the configured address, as
    # `token issue` (another process, without --port) does, and warns that they differ.
    with serving(cli, tmp_path / "default") as base_url:
        types = httpx.get(f"{base_url}/api/admin/v1/siem-types", headers=bearer(key), timeout=30).json()
        issued = _issue(cli, "default")
        assert {t["base_url"] for t in types} == {issued["base_url"]} == {"http://127.0.0.1:8080"}
    log = (tmp_path / "default" / "serve.err").read_text()
    port = base_url.rsplit(":", 1)[1]
    assert f"serving on 127.0.0.1:{port}, but tokens and connection guides name http://127.0.0.1:8080" in log, log
    assert "SIEMGATE_PUBLIC_URL" in log

    cli.env["SIEMGATE_PUBLIC_URL"] = "https://siem.example.org"
    with serving(cli, tmp_path / "configured") as base_url:
        types = httpx.get(f"{base_url}/api/admin/v1/siem-types", headers=bearer(key), timeout=30).json()
        issued = _issue(cli, "configured")
        assert {t["base_url"] for t in types} == {issued["base_url"]} == {"https://siem.example.org"}
        assert _aud(issued["token"]) == ["siem.example.org"]
    assert "but tokens and connection guides name" not in (tmp_path / "configured" / "serve.err").read_text()


def test_connection_guides_warn_before_a_token_is_issued(cli: Cli, tmp_path: Path) -> None:
    key = _setup(cli, tmp_path)
    cli.env["SIEMGATE_PUBLIC_URL"] = "http://127.0.0.1:8080"  # what a fresh install tells SIEMs
    with serving(cli, tmp_path / "logs") as base_url:
        types = {
            t["key"]: t
            for t in httpx.get(f"{base_url}/api/admin/v1/siem-types", headers=bearer(key), timeout=30).json()
        }
    for cloud in ("microsoft_sentinel", "datadog", "sumo_logic", "panther"):
        assert any("runs in the cloud and cannot reach http://127.0.0.1:8080" in w for w in types[cloud]["warnings"])
        assert any("SIEMGATE_PUBLIC_URL" in w for w in types[cloud]["warnings"])
    splunk = " ".join(types["splunk"]["warnings"])
    assert "connects to https://127.0.0.1:8080 (the token's audience)" in splunk and "before issuing" in splunk

    # The command line says it on stderr before the token is printed (it is issued after the warning).
    cli.run("integration", "create", "Sentinel", "--type", "microsoft_sentinel")
    result = cli.run("token", "issue", "--name", "sentinel", "--integration", "Sentinel")
    assert "Microsoft Sentinel runs in the cloud and cannot reach http://127.0.0.1:8080" in result.stderr
    assert result.stderr.index("warning:") < result.stderr.index("issued token")
    shown = cli.run("integration", "show", "Sentinel")
    assert "cannot reach http://127.0.0.1:8080" in shown.stderr


@pytest.mark.parametrize(
    ("url", "siem", "expected"),
    [
        ("http://127.0.0.1:8080", "elastic", ["only"]),  # a local connector may work; said, not forbidden
        ("http://10.0.0.5:8080", "datadog", ["private network", "plain HTTP"]),
        ("http://10.0.0.5:8080", "elastic", []),
        ("https://siemgate.internal", "panther", ["private network"]),
        ("https://siemgate.example.com", "datadog", []),
        ("https://siemgate.example.com", "splunk", []),
        ("http://siemgate.example.com", "splunk", ["https://siemgate.example.com (the token's audience)"]),
        ("http://0.0.0.0:8080", "sumo_logic", ["cannot reach"]),
    ],
)
def test_address_warnings_per_siem(url: str, siem: str, expected: list[str]) -> None:
    warnings = SIEM_TYPES[siem].warnings(parse_address(url))
    assert len(warnings) == len(expected), warnings
    for warning, fragment in zip(warnings, expected, strict=True):
        assert fragment in warning


def test_the_public_address_setting_is_checked() -> None:
    settings = load_settings(public_url="https://SIEMgate.example.com:443/")
    assert settings.base_url == "https://siemgate.example.com"
    assert settings.audience == "siemgate.example.com"
    assert load_settings(public_url="http://[::1]:9000").audience == "[::1]:9000"
    assert load_settings(host="10.1.2.3", port=9000).base_url == "http://10.1.2.3:9000"
    for bad, said in [
        ("siemgate.example.com", "with its scheme"),
        ("https://siemgate.example.com/events", "without a path"),
        ("https://user:pw@siemgate.example.com", "user name or password"),
        ("https://siemgate.example.com:99999", "1 to 65535"),
    ]:
        with pytest.raises(ConfigError, match=said):
            load_settings(public_url=bad)
    with pytest.raises(ConfigError, match="name different addresses"):
        load_settings(public_url="https://a.example.com", public_host="b.example.com")
    assert load_settings(public_url="https://a.example.com", public_host="a.example.com").audience == "a.example.com"


def test_rotating_every_token_moves_them_to_the_new_address(cli: Cli, tmp_path: Path) -> None:
    _setup(cli, tmp_path)
    cli.run("integration", "create", "Splunk", "--type", "splunk")
    cli.env["SIEMGATE_PUBLIC_URL"] = "https://old.example.com"
    old = [_issue(cli, f"hf{i}", "Splunk") for i in range(2)]
    cli.env["SIEMGATE_PUBLIC_URL"] = "https://new.example.com"
    refused = cli.run("token", "rotate", "--all", ok=False)
    assert refused.returncode == 2 and "--output-dir" in refused.stderr  # each new token is shown once
    out = tmp_path / "new-tokens"
    rotated = json.loads(cli.run("token", "rotate", "--all", "--grace", "0", "--output-dir", str(out), "--json").stdout)
    assert sorted(r["replaces"] for r in rotated) == sorted(t["id"] for t in old)
    assert all(_aud(r["token"]) == ["new.example.com"] for r in rotated)
    files = sorted(out.iterdir())
    assert [f.name for f in files] == sorted(f"{r['id']}.token" for r in rotated)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    with serving(cli, tmp_path / "logs") as base_url:
        assert [_works(base_url, t["token"]) for t in old] == [401, 401]
        assert [_works(base_url, r["token"]) for r in rotated] == [200, 200]
    again = json.loads(cli.run("token", "rotate", "--all", "--json").stdout)
    assert sorted(r["replaces"] for r in again) == sorted(r["id"] for r in rotated)  # only live tokens
