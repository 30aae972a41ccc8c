"""Syslog into a real rsyslogd on 127.0.0.1: RFC 5424 over UDP, TCP with octet counting, and TLS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from siemgate.model.features import Feature
from support.waiting import wait_for

from .forward_support import config, fill, run_once


@pytest.mark.parametrize("protocol", ["udp", "tcp", "tls"])
def test_syslog_delivers_rfc5424_messages(protocol: str, source: Any, rsyslog: Any, tmp_path: Path) -> None:
    since = rsyslog.offset()
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 60)
    port = {"udp": rsyslog.udp, "tcp": rsyslog.tcp, "tls": rsyslog.tls}[protocol]
    sink: dict[str, Any] = {
        "type": "syslog",
        "protocol": protocol,
        "host": "127.0.0.1",
        "port": port,
        "hostname": "fwd-test",
    }
    if protocol == "tls":
        sink |= {"ca_file": str(rsyslog.ca), "server_name": "localhost"}
    cfg = config(tmp_path / "state", source.url, {"sys": sink}, features=["signinattempts"])
    assert run_once(cfg).code == 0
    messages = wait_for("60 messages", lambda: (m := rsyslog.messages(since)) and len(m) >= 60 and m)
    assert [json.loads(m["msg"])["uuid"] for m in messages] == uuids  # one connection keeps the order
    first = messages[0]
    assert first["input"] == protocol and first["version"] == "1" and first["msgid"] == "signinattempts"
    assert (first["host"], first["app"], first["pri"]) == ("fwd-test", "siemgate", "86")  # authpriv.info
    assert first["sd"] == f'[siemgate@32473 uuid="{uuids[0]}" feature="signinattempts" source="src"]'


def test_oversized_syslog_message_is_dead_lettered_not_truncated(source: Any, rsyslog: Any, tmp_path: Path) -> None:
    since = rsyslog.offset()
    uuids = fill(source.live, source.key, Feature.ITEMUSAGES, 5)
    sink = {"type": "syslog", "protocol": "tcp", "host": "127.0.0.1", "port": rsyslog.tcp, "max_message_bytes": 300}
    cfg = config(tmp_path / "state", source.url, {"sys": sink}, features=["itemusages"])
    assert run_once(cfg).code == 0
    dead = (tmp_path / "state/dead-letters/src.sys.jsonl").read_text().splitlines()
    assert [json.loads(line)["uuid"] for line in dead] == uuids
    assert "max_message_bytes=300" in json.loads(dead[0])["reason"]
    assert rsyslog.messages(since) == []


# A name that, written raw, would end the message and start a forged one for a receiver splitting
# on line ends, and close the structured data early.
FORGING = 'Ada"] \\\n<86>1 2026-12-07T00:00:00Z evil siemgate - signinattempts - {"forged":true}\r\n'


def test_event_text_cannot_forge_or_split_syslog_messages(source: Any, rsyslog: Any, tmp_path: Path) -> None:
    """Sound: MSG is the record as JSON (line breaks escaped) and TCP frames by octet counting, so
    rsyslogd receives one message per event, whose MSG gives back the name as it was sent."""
    since = rsyslog.offset()
    uuids = fill(source.live, source.key, Feature.SIGNINATTEMPTS, 3, name=FORGING)
    sink = {"type": "syslog", "protocol": "tcp", "host": "127.0.0.1", "port": rsyslog.tcp, "hostname": "fwd"}
    cfg = config(tmp_path / "state", source.url, {"sys": sink}, features=["signinattempts"])
    assert run_once(cfg).code == 0
    messages = wait_for("3 messages", lambda: (m := rsyslog.messages(since)) and len(m) >= 3 and m)
    assert [json.loads(m["msg"])["uuid"] for m in messages] == uuids
    assert {json.loads(m["msg"])["target_user"]["name"] for m in messages} == {FORGING}
    assert {m["host"] for m in messages} == {"fwd"}
