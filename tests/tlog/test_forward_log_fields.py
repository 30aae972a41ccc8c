"""The forwarder, reading a real siemgate server whose log is signed by a real signer process,
carries each event's log index and body hash in ECS (`siemgate.log`) and OCSF
(`unmapped.siemgate.log`) output, fetched through the page-proof API; the fields match the leaves of
the signed log. Without a signer (or with log_fields off) events go without them."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import orjson

from siemgate.forward.config import parse_config
from siemgate.forward.runner import Forwarder
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.tlog.checkpoint import open_checkpoint
from siemgate.tlog.entry import body_timestamp_ns, entry_for
from siemgate.tlog.proof import verify_inclusion
from siemgate.tlog.tlog_proof import parse_tlog_proof
from support.events import auditevent
from support.servers import LiveServer

from .tlog_kit import make_kit, secret_file, signer_process

AUDIT = Feature.AUDITEVENTS


def _forward(tmp: Path, server: LiveServer, token: str, monkeypatch: Any, **source: Any) -> dict[str, list[Any]]:
    """Run the forwarder once into an ECS and an OCSF file; their documents by format."""
    monkeypatch.setenv("FWD_TOKEN", token)
    sinks = {
        "ecs": {"type": "file", "path": str(tmp / "ecs-{feature}.jsonl"), "format": "ecs"},
        "ocsf": {"type": "file", "path": str(tmp / "ocsf-{feature}.jsonl"), "format": "ocsf"},
    }
    src: dict[str, Any] = {
        "url": server.base_url,
        "token": {"env": "FWD_TOKEN"},
        "sinks": list(sinks),
        "features": ["auditevents"],
    }
    src |= {"start_time": "2020-01-01T00:00:00Z", "limit": 40, **source}
    cfg = parse_config(
        {
            "forwarder": {
                "state_dir": str(tmp / "state"),
                "poll_interval": 0.05,
                "retry_initial": 0.05,
                "retry_max": 1,
            },
            "sources": {"siem": src},
            "sinks": sinks,
        }
    )
    assert Forwarder(cfg).run(once=True) == 0
    return {
        fmt: [orjson.loads(line) for line in (tmp / f"{fmt}-auditevents.jsonl").read_bytes().splitlines()]
        for fmt in ("ecs", "ocsf")
    }


def _ingest(server: LiveServer, key: str, count: int) -> None:
    now = time.time_ns()
    response = server.ingest(key, AUDIT, [auditevent(now - (count - i) * 10**6) for i in range(count)])
    assert response.status_code == 200, response.text


def _stored(server: LiveServer, account_id: int) -> dict[str, tuple[int, bytes]]:
    """uuid -> (seq, stored v2 bytes) of the account's audit events."""
    rows = server.store.read_events(account_id, AUDIT, 0, -(2**63), None, 1000)
    return {orjson.loads(body)["uuid"]: (seq, body) for seq, body, _ in rows}


def test_forwarded_events_carry_their_log_index_and_body_hash(
    tmp_path: Path, make_server: Any, monkeypatch: Any
) -> None:
    kit = make_kit(tmp_path)
    secret = secret_file(tmp_path / "secret")
    with signer_process(kit, secret) as url:
        server = make_server(
            integrity_signer_url=url, integrity_signer_secret_file=secret, integrity_checkpoint_seconds=1
        )
        account = server.account()
        token = server.token(account, ALL_FEATURES)
        _ingest(server, server.ingest_key(account), 100)  # three pages of 40: the last one at the head
        docs = _forward(tmp_path / "on", server, token, monkeypatch)
        stored = _stored(server, account.id)
        assert len(docs["ecs"]) == len(docs["ocsf"]) == 100
        for ecs, ocsf in zip(docs["ecs"], docs["ocsf"], strict=True):
            seq, body = stored[ecs["event"]["id"]]
            expected = {"idx": seq - 1, "body_sha256": hashlib.sha256(body).hexdigest()}
            assert ecs["siemgate"]["log"] == expected
            assert ocsf["unmapped"]["siemgate"]["log"] == expected
        # The fields name real leaves: the server's inclusion proof of that index holds for that entry.
        ecs = docs["ecs"][57]
        proof = parse_tlog_proof(
            server.http.get(
                f"/api/siemgate/v1/log/auditevents/proof?idx={ecs['siemgate']['log']['idx']}",
                headers={"Authorization": f"Bearer {token}"},
            ).text
        )
        cp = open_checkpoint(proof.checkpoint, kit.keyring.public()).checkpoint
        body = stored[ecs["event"]["id"]][1]
        entry = entry_for(body_timestamp_ns(body), body)
        assert entry.body_sha256.hex() == ecs["siemgate"]["log"]["body_sha256"]
        verify_inclusion(proof.index, cp.size, entry.leaf(), proof.hashes, cp.root)
        # Turned off, or from a server without a signer: the same events, without the fields.
        off = _forward(tmp_path / "off", server, token, monkeypatch, log_fields=False)
        assert len(off["ecs"]) == 100 and not any("siemgate" in d for d in off["ecs"])
    bare = make_server()
    other = bare.account()
    _ingest(bare, bare.ingest_key(other), 5)
    plain = _forward(tmp_path / "bare", bare, bare.token(other, ALL_FEATURES), monkeypatch)
    assert len(plain["ecs"]) == 5 and not any("siemgate" in d for d in plain["ecs"])
    assert not any("siemgate" in d.get("unmapped", {}) for d in plain["ocsf"])
