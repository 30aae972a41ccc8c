"""Text no store can hold (the NUL character; lone surrogates) is refused at the door with a clear
400 on both backends, on every path that puts strings into the store: the ingest API, `siemgate
ingest`, the writer behind the simulator, the mirror sink and replay, and the admin API (bodies and
URLs). On PostgreSQL a NUL once stopped alerting; here the refused batch leaves alerting working.
`siemgate db copy` lists, with their ids, events an older SQLite store holds that PostgreSQL cannot.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from siemgate.errors import InvalidEventBatch
from siemgate.model.encoding import encode_event
from siemgate.model.facets import extract_facets
from siemgate.model.features import Feature
from siemgate.model.timestamps import parse_ns
from siemgate.store.base import NewEvent
from siemgate.store.postgres import PostgresStore
from siemgate.store.sqlite import SQLiteStore
from support.servers import LiveServer
from support.stores import STORE_BACKENDS, drop_pg_schema, new_pg_schema, pg_schema_url

from .bounds_support import ADMIN, SECOND, admin, failed_signin, live_server

SIGNIN = Feature.SIGNINATTEMPTS
NUL = "\u0000"


def _served(server: LiveServer, token: str) -> list[dict[str, Any]]:
    page = server.page(token, SIGNIN, {"start_time": "2020-01-01T00:00:00Z", "limit": 1000})
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


def _wait_for_alert(server: LiveServer, account_id: int, rule_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not any(a.rule_id == rule_id for a in server.store.list_alerts(account_id, None)):
        assert time.monotonic() < deadline, f"no {rule_id} alert within {timeout}s"
        time.sleep(0.05)


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_nul_in_events_is_a_400_and_alerting_goes_on(tmp_path: Path, backend: str) -> None:
    with live_server(tmp_path, backend, alerts_enabled=True) as server:
        account = server.account()
        key, token = server.ingest_key(account), server.token(account)
        now = server.clock()
        places: list[tuple[str, Any]] = [
            ("target_user.email", lambda e: e["target_user"].update(email=f"ada{NUL}@example.com")),
            ("target_user.name", lambda e: e["target_user"].update(name=f"Ada{NUL}")),
            ("client.ip_address", lambda e: e["client"].update(ip_address=f"192.0.2.1{NUL}")),
            ("location.city", lambda e: e["location"].update(city=f"{NUL}")),
        ]
        for field, poison in places:
            batch = [failed_signin(now - i * SECOND, "nul@example.com") for i in range(12)]
            poison(batch[7])
            response = server.ingest(key, SIGNIN, batch)
            assert response.status_code == 400, f"{field}: {response.status_code} {response.text}"
            error = response.json()["Error"]
            assert "NUL" in error["Message"] and field in error["Message"], error
            assert error["Details"] == [{"index": 7, "field": field, "message": error["Details"][0]["message"]}]
        assert _served(server, token) == []  # nothing of the refused batches was stored
        # A later normal batch is stored, and the starter brute-force rule fires on it as usual.
        batch = [failed_signin(server.clock() - i * SECOND, "grace@example.com") for i in range(10)]
        response = server.ingest(key, SIGNIN, batch)
        assert response.status_code == 200, response.text
        _wait_for_alert(server, account.id, "brute-force-signin")
        assert len(_served(server, token)) == 10


def _nested(levels: int, text: str) -> Any:
    value: Any = text
    for _ in range(levels):
        value = {"x": value}
    return value


@pytest.mark.parametrize("strict", [True, False], ids=["producer", "mirror"])
def test_the_writer_refuses_nul_and_lone_surrogates_on_every_path(tmp_path: Path, strict: bool) -> None:
    # The simulator, the mirror sink (lenient) and archive replay write through EventWriter.
    with live_server(tmp_path) as server:
        account = server.account()
        for bad, where in (
            (f"Ada{NUL}", "target_user.name"),
            ("Ada\ud800", "target_user.name"),
            ({"x\u0000y": 1}, "target_user.name.x\x00y"),
            # nested past the 64 levels a field path names: found all the same (once a mirrored
            # event's lone surrogate there escaped as a TypeError, and a NUL was not looked for)
            (_nested(100, "Ada\ud800"), ("target_user.name" + ".x" * 62)[:57] + "..."),
            (_nested(100, f"Ada{NUL}"), ("target_user.name" + ".x" * 62)[:57] + "..."),
        ):
            event = failed_signin(server.clock())
            event["target_user"]["name"] = bad
            if isinstance(bad, dict) and strict:
                continue  # an unknown field for producers, refused as such
            with pytest.raises(InvalidEventBatch) as caught:
                server.services.writer.write(account.id, SIGNIN, [failed_signin(server.clock()), event], strict=strict)
            assert caught.value.details[0]["index"] == 1
            assert caught.value.details[0]["field"] == where
            assert "cannot be stored" in caught.value.details[0]["message"]
        assert server.store.count_events(account.id, SIGNIN) == 0


def test_siemgate_ingest_refuses_a_file_with_nul(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = SQLiteStore(data_dir / "siemgate.db")
    store.migrate()
    store.create_account("A" * 26, "Acme", time.time_ns())
    store.close()
    events = [failed_signin(time.time_ns()), failed_signin(time.time_ns(), email=f"x{NUL}@example.com")]
    path = tmp_path / "signinattempts.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    env = {**os.environ, "SIEMGATE_DATA_DIR": str(data_dir)}
    env.pop("SIEMGATE_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-m", "siemgate", "ingest", str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert "NUL" in result.stderr and "target_user.email" in result.stderr, result.stderr
    store = SQLiteStore(data_dir / "siemgate.db")
    try:
        assert store.count_events(store.get_account("Acme").id, SIGNIN) == 0
    finally:
        store.close()


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_the_admin_api_refuses_unstorable_text_with_a_400(tmp_path: Path, backend: str) -> None:
    with live_server(tmp_path, backend) as server:
        owner = admin(server)
        base = f"{ADMIN}/accounts/{owner.account.uuid}"
        cases: list[tuple[str, str, bytes, str]] = [
            ("POST", f"{ADMIN}/accounts", b'{"name": "Acme\\u0000"}', "name"),
            ("PATCH", base, b'{"name": "\\u0000"}', "name"),
            ("POST", f"{base}/integrations", b'{"type": "splunk", "name": "S\\u0000"}', "name"),
            (
                "POST",
                f"{base}/integrations",
                b'{"name": "S", "type": "splunk", "description": "\\ud800"}',
                "description",
            ),
            ("POST", f"{base}/invitations", b'{"email": "m\\udc00x@example.com"}', "email"),
            (
                "POST",
                f"{ADMIN}/join",
                b'{"email": "m@example.com", "code": "sgv_x", "name": "M\\udc00x", "password": "0123456789"}',
                "name",
            ),
            ("POST", f"{base}/ingest-keys", b'{"name": "p\\u0000"}', "name"),
            ("POST", f"{ADMIN}/me/api-keys", b'{"name": "\\u0000"}', "name"),
            ("POST", f"{ADMIN}/session", b'{"email": "a\\u0000@example.com", "password": "x"}', "email"),
            ("POST", f"{base}/alert-rules", b'{"sigma": "title: x\\u0000"}', "sigma"),
        ]
        for method, url, body, field in cases:
            headers = {**owner.headers, "Content-Type": "application/json"}
            response = server.http.request(method, url, content=body, headers=headers)
            assert response.status_code == 400, f"{method} {url} {body!r}: {response.status_code} {response.text}"
            message = response.json()["Error"]["Message"]
            assert field in message and "cannot be stored" in message, message
        for url in (f"{ADMIN}/accounts/Acme%00", f"{base}/integrations?cursor=%00"):
            response = server.http.get(url, headers=owner.headers)
            assert response.status_code == 400, f"{url}: {response.status_code} {response.text}"
            assert "NUL" in response.json()["Error"]["Message"]
        # An escaped backslash before "u0000" is text like any other, and a valid surrogate pair an emoji.
        for name in ("back\\u0000slash", "\U0001f600"):
            integration = {"type": "splunk", "name": name}
            response = server.http.post(f"{base}/integrations", json=integration, headers=owner.headers)
            assert response.status_code == 201, response.text
            assert response.json()["name"] == name
        names = {i.name for i in server.store.list_integrations(owner.account.id)}
        assert names == {"back\\u0000slash", "\U0001f600"}


def _store_unstorable_events(data_dir: Path) -> tuple[str, list[tuple[int, str]]]:
    """A SQLite deployment as siemgate 0.1.0 left it: 30 sign-ins, of which two hold a NUL (the
    writer refuses them now, so they are put in as the old one stored them). Returns the account
    uuid and (seq, uuid) of the two."""
    store = SQLiteStore(data_dir / "siemgate.db")
    store.migrate()
    now = time.time_ns()
    account = store.create_account("B" * 26, "Acme", now)
    events = [failed_signin(now - (30 - i) * SECOND) for i in range(30)]
    events[4]["target_user"]["email"] = f"a{NUL}@example.com"
    events[20]["location"]["city"] = f"To{NUL}ronto"
    new = []
    for event in events:
        body, cut = encode_event(SIGNIN, event)
        ts = parse_ns(event["timestamp"])
        new.append(NewEvent(event["uuid"], ts, body, cut, False, extract_facets(SIGNIN, event)))
    seqs = store.insert_events(account.id, SIGNIN, new).seqs
    store.close()
    return account.uuid, [(int(seqs[4] or 0), events[4]["uuid"]), (int(seqs[20] or 0), events[20]["uuid"])]


def test_db_copy_lists_events_postgresql_cannot_hold(tmp_path: Path, pg_url: str) -> None:
    data_dir = tmp_path / "sqlite-site"
    account_uuid, bad = _store_unstorable_events(data_dir)
    schema = new_pg_schema()
    url = pg_schema_url(schema)
    env = {**os.environ}
    env.pop("SIEMGATE_CONFIG", None)
    command = [sys.executable, "-m", "siemgate", "db", "copy", "--from", f"sqlite:///{data_dir / 'siemgate.db'}"]
    try:
        refused = subprocess.run([*command, "--to", url], capture_output=True, text=True, env=env, timeout=300)
        assert refused.returncode == 1, refused.stderr
        for seq, uuid in bad:
            assert f"account {account_uuid} signinattempts seq {seq} uuid {uuid!r}" in refused.stderr, refused.stderr
        assert "NUL" in refused.stderr and "nothing was copied" in refused.stderr
        with psycopg.connect(url, autocommit=True) as conn:  # not even migrated
            assert conn.execute("SELECT to_regclass('events')").fetchone() == (None,)
        copied = subprocess.run(
            [*command, "--to", url, "--skip-unstorable"], capture_output=True, text=True, env=env, timeout=300
        )
        assert copied.returncode == 0, copied.stderr
        assert "leaving out 2 event(s)" in copied.stderr and "copied and checked" in copied.stderr
        target = PostgresStore(url)
        try:
            account = target.get_account(account_uuid)
            assert target.count_events(account.id, SIGNIN) == 28
        finally:
            target.close()
    finally:
        drop_pg_schema(schema)
