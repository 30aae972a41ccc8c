"""`siemgate serve` with TLS settings it cannot use stops with a clear error naming the setting
(exit 2, no traceback), before it creates or migrates anything; a key without a certificate, which
would have served plain HTTP, is refused too. A good certificate still serves HTTPS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support.ports import free_port
from support.procs import SIEMGATE, cli_env
from support.waiting import wait_for


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SIEMGATE, "serve", "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def _pem(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.mark.parametrize("case", ["missing", "directory", "not-pem", "key-of-another", "key-without-cert"])
def test_unusable_tls_settings_are_a_clear_error(tmp_path: Path, case: str) -> None:
    cert, key = _pem(tmp_path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    (tmp_path / "other").mkdir()
    other_key = _pem(tmp_path / "other")[1]
    settings = {
        "missing": {"SIEMGATE_TLS_CERTFILE": str(tmp_path / "nowhere.crt")},
        "directory": {"SIEMGATE_TLS_CERTFILE": str(tmp_path)},
        "not-pem": {"SIEMGATE_TLS_CERTFILE": str(garbage)},
        "key-of-another": {"SIEMGATE_TLS_CERTFILE": str(cert), "SIEMGATE_TLS_KEYFILE": str(other_key)},
        "key-without-cert": {"SIEMGATE_TLS_KEYFILE": str(key)},
    }[case]
    data = tmp_path / "data"
    done = _serve(cli_env(data, **settings))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "tls_certfile" in done.stderr, done.stderr
    assert not data.exists()  # nothing created or migrated


def test_a_good_certificate_still_serves_https(tmp_path: Path) -> None:
    cert, key = _pem(tmp_path)
    port = free_port()
    env = cli_env(tmp_path / "data", SIEMGATE_TLS_CERTFILE=str(cert), SIEMGATE_TLS_KEYFILE=str(key))
    server = subprocess.Popen(
        [*SIEMGATE, "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    try:

        def healthy() -> bool:
            try:
                trusted = ssl.create_default_context(cafile=str(cert))
                return httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trusted, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the server to answer over HTTPS", healthy, timeout=20)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    # the console's address it logs is the one it serves (it said http://, which answers nothing)
    assert f"web console: https://127.0.0.1:{port}/console" in err.decode(), err.decode()[-2000:]


@pytest.mark.parametrize(
    "case",
    [
        "archive-dir-a-file",
        "public-key-a-directory",
        "public-key-not-keys",
        "metrics-token-missing",
        "metrics-token-empty",
    ],
)
def test_unusable_archive_or_public_key_settings_are_a_clear_error(tmp_path: Path, case: str) -> None:
    """The archive folder, the log's public key file and the metrics token file are checked before
    serve starts: a file given as archive_dir failed each retention run, a public key file that is a
    directory made the proof API's key requests a 500, a metrics token file that cannot be read
    failed in the app's construction, in every worker."""
    data = tmp_path / "data"
    env = cli_env(data)
    odd = tmp_path / "odd"
    if case.startswith("metrics-token"):
        if case == "metrics-token-empty":
            odd.write_text("\n")
        env["SIEMGATE_METRICS_TOKEN_FILE"], setting = str(odd), "metrics_token_file"
    elif case == "archive-dir-a-file":
        odd.write_text("not a folder\\n")
        env["SIEMGATE_ARCHIVE_DIR"], setting = str(odd), "archive_dir"
    else:
        if case == "public-key-a-directory":
            odd.mkdir()
        else:
            odd.write_text("not a key\\n")
        env["SIEMGATE_INTEGRITY_PUBLIC_KEY_FILE"], setting = str(odd), "integrity_public_key_file"
    done = _serve(env)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert setting in done.stderr and str(odd) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
