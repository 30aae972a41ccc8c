"""OAuth 2.0 sinks (Sentinel: Entra ID client credentials; SecOps: Google service-account JWT)
share one token cache (forward/sinks/oauth.py): a token is asked for once and reused, and a token
the intake stops accepting before its stated expiry is replaced within the same send."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from siemgate.forward.errors import SinkAuthError
from siemgate.forward.records import Record
from siemgate.forward.sinks.base import Item, Sink, SinkContext
from siemgate.model.features import Feature

from .fake_intakes import AZURE_SECRET
from .forward_support import config


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARD_TEST_TOKEN", "unused")
    monkeypatch.setenv("AZ", AZURE_SECRET)
    monkeypatch.setenv("AZ_WRONG", "wrong")


def _sentinel(url: str, variable: str) -> dict[str, Any]:
    return {
        "type": "sentinel",
        "endpoint": url,
        "rule_id": "dcr-1",
        "tenant_id": "t",
        "client_id": "c",
        "client_secret": {"env": variable},
        "authority": url,
        "compression": "none",
    }


def _secops(url: str, tmp_path: Path, intake: Any) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    creds = tmp_path / "sa.json"
    creds.write_text(
        json.dumps({"client_email": "f@p.iam", "private_key": pem.decode(), "token_uri": f"{url}/google/token"})
    )
    intake.google_public_key = key.public_key()
    return {"type": "secops", "url": url, "customer_id": "c-1", "credentials_file": str(creds)}


def _build(sink: dict[str, Any], tmp_path: Path) -> Sink:
    return config(tmp_path / "state", "http://127.0.0.1:1", {"out": sink}).sinks["out"].build("out", SinkContext("s"))


def _batch(sink: Sink, n: int, start: int = 0) -> list[Item]:
    records = [
        Record(Feature.AUDITEVENTS, {"uuid": f"U{i:025d}", "timestamp": "2026-01-01T00:00:00Z"}, "s", f"U{i:025d}")
        for i in range(start, start + n)
    ]
    return [Item(i, r, sink.encode(r)) for i, r in enumerate(records)]


@pytest.mark.parametrize("kind", ["sentinel", "secops"])
def test_one_token_for_many_sends_and_a_refused_token_is_replaced_at_once(
    kind: str, intakes: Any, tmp_path: Path
) -> None:
    intake = intakes.intake
    config = _sentinel(intakes.url, "AZ") if kind == "sentinel" else _secops(intakes.url, tmp_path, intake)
    issuer, vendor = ("azure", "sentinel") if kind == "sentinel" else ("google", "secops")
    sink = _build(config, tmp_path)
    try:
        for n in range(3):
            sink.send(_batch(sink, 10, 10 * n))
        assert len(intake.tokens[issuer]) == 1
        intake.revoked.add(intake.tokens[issuer][0])  # refused from now on, though not expired
        sink.send(_batch(sink, 10, 30))  # no SinkAuthError: a fresh token, the same request again
        assert len(intake.tokens[issuer]) == 2
        assert len(intake.uuids(vendor)) == 40 == len(set(intake.uuids(vendor)))
        sink.send(_batch(sink, 10, 40))
        assert len(intake.tokens[issuer]) == 2
    finally:
        sink.close()


def test_refused_credentials_are_an_auth_error_naming_what_to_check(intakes: Any, tmp_path: Path) -> None:
    sink = _build(_sentinel(intakes.url, "AZ_WRONG"), tmp_path)
    try:
        with pytest.raises(SinkAuthError, match="check tenant_id, client_id and client_secret"):
            sink.send(_batch(sink, 1))
        assert intakes.intake.received["sentinel"] == []
    finally:
        sink.close()
