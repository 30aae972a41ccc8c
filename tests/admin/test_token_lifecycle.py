"""Every transition of a SIEM token, through the admin API and checked on the Events API: issue
(shown once), revoke, rotate with each kind of grace period, the 14-day expiry warning and expiry
(with `run_due`), deleting the integration, and the integration's details (connection guide, last
use, consumer lag). The clock is moved with `server.clock.advance`, never slept on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import jwt
import pytest

from siemgate.accounts.actor import CLI, SERVER_DEVICE, SYSTEM_UUID
from siemgate.accounts.catalog import SIEM_TYPES
from siemgate.errors import BadRequest
from siemgate.model.features import Feature
from siemgate.model.timestamps import parse_ns
from support.admin import DAY, HOUR, SECOND, Site, audit_of, aux, error_message, ok
from support.events import signin
from support.stores import BOTH_BACKENDS

server_backend = BOTH_BACKENDS  # these HTTP tests run on SQLite and PostgreSQL

AUDIT, SIGNIN = Feature.AUDITEVENTS, Feature.SIGNINATTEMPTS
ALL = ["signinattempts", "itemusages", "auditevents"]
PUBLIC_HOST = "siem.example.test:8443"
# tokens of the shared server carry (and are checked for) a public host
SHARED_SERVER_SETTINGS = {"public_host": PUBLIC_HOST}


@pytest.fixture
def timed(own_site: Site) -> Site:
    """A site on a server of its own, whose clock the test moves."""
    return own_site


def works(site: Site, token: str, feature: Feature = AUDIT) -> bool:
    response = site.server.page(token, feature, {})
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


def refused(site: Site, token: str, fragment: str) -> None:
    message = error_message(site.server.page(token, AUDIT, {}), 401)
    assert fragment in message, message


def status_of(site: Site, token_id: str) -> str:
    status: str = site.token(token_id)["status"]
    return status


def seconds(view_time: str) -> int:
    return parse_ns(view_time) // SECOND


# --- issue ---------------------------------------------------------------------------------------------


def test_an_issued_token_is_shown_once_and_never_again(site: Site) -> None:
    integration = site.integration(type="elastic")
    issued = site.issue(integration, name="elastic-agent-1")
    token = issued["token"]
    assert issued["features"] == ALL
    assert issued["status"] == "active" and issued["revoked_at"] is None
    assert seconds(issued["expires_at"]) - seconds(issued["created_at"]) == 90 * 86400  # the default: 90 days
    assert issued["base_url"] == site.services.settings.base_url
    assert issued["integration"] == {"uuid": integration["uuid"], "name": integration["name"], "type": "elastic"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == integration["uuid"]
    assert claims["jti"] == issued["id"]
    assert claims["aud"] == [PUBLIC_HOST]
    assert claims["1password.com/fts"] == ALL
    assert claims["1password.com/auuid"] == site.account.uuid
    assert claims["exp"] == seconds(issued["expires_at"])
    assert works(site, token)

    for url in [
        site.path("/tokens"),
        site.path(f"/tokens/{issued['id']}"),
        site.path(f"/tokens?integration={integration['uuid']}"),
        site.path(f"/integrations/{integration['uuid']}"),
        site.path("/integrations"),
        site.path(),
        "/api/admin/v1/me",
    ]:
        response = site.call(site.owner, "GET", url)
        ok(response)
        assert token not in response.text, url
        assert token.split(".")[2] not in response.text, url  # not even its signature
    listed = site.tokens()
    assert [t["id"] for t in listed] == [issued["id"]]
    assert "token" not in listed[0]
    events, _ = site.events(site.reader())
    assert token not in json.dumps(events)
    data_dir = site.services.settings.data_dir
    stored = b"".join(p.read_bytes() for p in data_dir.glob("siemgate.db*"))
    assert token.encode() not in stored and token.split(".")[2].encode() not in stored


@pytest.mark.parametrize(
    ("expires", "duration"),
    [
        ("never", None),
        ("30d", 30 * DAY),
        ("90d", 90 * DAY),
        ("180d", 180 * DAY),
        ("12h", 12 * HOUR),
        ("2w", 14 * DAY),
        ("45d", 45 * DAY),
        ("3mo", 90 * DAY),
        ("30min", 30 * 60 * SECOND),
        ("36500d", 36500 * DAY),
    ],
)
def test_expiry_choices(site: Site, expires: str, duration: int | None) -> None:
    issued = site.issue(site.integration(), expires=expires)
    claims = jwt.decode(issued["token"], options={"verify_signature": False})
    if duration is None:
        assert issued["expires_at"] is None and "exp" not in claims
    else:
        assert seconds(issued["expires_at"]) - seconds(issued["created_at"]) == duration // SECOND
        assert claims["exp"] - claims["iat"] == duration // SECOND
        assert claims["exp"] == seconds(issued["expires_at"])
    assert issued["status"] == ("expiring" if duration is not None and duration <= 14 * DAY else "active")
    assert works(site, issued["token"])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"expires": "soon"}, "expires"),
        ({"expires": "0d"}, "expires"),
        ({"expires": "-30d"}, "expires"),
        ({"expires": "30"}, "expires"),
        ({"expires": ""}, "expires"),
        ({"expires": "1y"}, "expires"),
        ({"expires": "0"}, "expires"),
        ({"expires": "3m"}, "write 3min for minutes or 3mo for months"),
        ({"expires": "36501d"}, "'36501d' is longer than 36500d (100 years), the longest expiry; use never"),
        ({"expires": "99999d"}, "'99999d' is longer than 36500d (100 years), the longest expiry; use never"),
        ({"expires": "99999999mo"}, "'99999999mo' is longer than 36500d (100 years), the longest expiry"),
        ({"expires": "9" * 41 + "d"}, "expires"),
        ({"features": []}, "features"),
        ({"features": ["signinattempts", "logins"]}, "features"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"scopes": ["all"]}, "scopes"),
    ],
)
def test_a_bad_issue_request_is_400_and_issues_nothing(site: Site, body: dict[str, Any], fragment: str) -> None:
    integration = site.integration()
    head = site.services.store.head_seq(site.account.id, AUDIT)
    url = site.path(f"/integrations/{integration['uuid']}/tokens")
    message = error_message(site.call(site.owner, "POST", url, json={"name": "t", **body}), 400)
    assert message.startswith("Bad Request") or fragment in message, message
    assert fragment in message, message
    assert site.tokens() == []
    assert site.services.store.head_seq(site.account.id, AUDIT) == head


def test_features_limit_what_a_token_reads(site: Site) -> None:
    issued = site.issue(site.integration(), features=["signinattempts"])
    assert issued["features"] == ["signinattempts"]
    assert works(site, issued["token"], SIGNIN)
    message = error_message(site.server.page(issued["token"], AUDIT, {}), 401)
    assert "auditevents" in message


def test_a_token_issued_by_a_clock_slightly_ahead_is_accepted(timed: Site) -> None:
    """The server's clock is the one injected into it; a token it issues must work at once on it
    (replicas' clocks differ by a little, too). PyJWT checks `iat` against the wall clock with no
    leeway, so a token issued when the server's clock is 5 s ahead is refused."""
    site = timed
    integration = site.integration()
    site.server.clock.advance(5)
    issued = site.issue(integration)
    response = site.server.page(issued["token"], AUDIT, {})
    assert response.status_code == 200, response.text


# --- revoke -------------------------------------------------------------------------------------------


def test_revoking_a_token_refuses_its_very_next_request(site: Site) -> None:
    issued = site.issue(site.integration())
    other = site.issue(site.integration())
    for version in (1, 2):
        for feature in Feature:
            assert site.server.page(issued["token"], feature, {}, version=version).status_code == 200
    revoked = ok(site.call(site.admin, "POST", site.path(f"/tokens/{issued['id']}/revoke")))
    assert revoked["status"] == "revoked" and revoked["revoked_at"] is not None
    refused(site, issued["token"], "revoked")
    introspect = site.http.get("/api/v2/auth/introspect", headers={"Authorization": f"Bearer {issued['token']}"})
    error_message(introspect, 401)
    assert status_of(site, issued["id"]) == "revoked"
    assert [t["id"] for t in site.tokens(status="revoked")] == [issued["id"]]
    assert works(site, other["token"])  # only that token
    again = ok(site.call(site.owner, "POST", site.path(f"/tokens/{issued['id']}/revoke")))
    assert again["revoked_at"] == revoked["revoked_at"]


# --- rotate -------------------------------------------------------------------------------------------


def test_rotate_by_default_revokes_the_old_token_when_the_replacement_is_first_used(timed: Site) -> None:
    site = timed
    old = site.issue(site.integration(), expires="30d", features=["signinattempts", "auditevents"])
    first = site.server.page(old["token"], AUDIT, {"start_time": site.start_time(), "limit": 1})
    assert first.status_code == 200
    cursor = first.json()["cursor"]
    new = ok(site.call(site.owner, "POST", site.path(f"/tokens/{old['id']}/rotate")), 201)
    assert new["token"] != old["token"] and new["id"] != old["id"]
    assert new["replaces"] == old["id"]
    assert new["name"] == old["name"] and new["features"] == old["features"]
    assert new["integration"] == old["integration"]
    assert seconds(new["expires_at"]) - seconds(new["created_at"]) == 30 * 86400
    pending = site.token(old["id"])
    assert pending["status"] == "active" and pending["revoked_at"] is None
    assert seconds(pending["revoke_at"]) == seconds(new["created_at"]) + 86400
    assert works(site, old["token"]) and works(site, old["token"])  # the SIEM has not switched yet

    # the SIEM switches: the old cursor carries on with the new token
    switched = site.server.page(new["token"], AUDIT, {"cursor": cursor})
    assert switched.status_code == 200, switched.text
    refused(site, old["token"], "revoked")
    assert status_of(site, old["id"]) == "revoked"
    assert works(site, new["token"])


def test_rotate_by_default_revokes_the_old_token_after_24_hours_at_the_latest(timed: Site) -> None:
    site = timed
    old = site.issue(site.integration())
    new = ok(site.call(site.owner, "POST", site.path(f"/tokens/{old['id']}/rotate"), json={}), 201)
    site.server.clock.advance(24 * 3600 - 60)
    assert works(site, old["token"])
    assert status_of(site, old["id"]) == "active"
    site.server.clock.advance(61)
    refused(site, old["token"], "grace period has ended")
    assert status_of(site, old["id"]) == "revoked"  # at once, before the scheduler runs
    summary = site.services.lifecycle.run_due()
    assert summary.revoked == [old["id"]]
    assert site.services.store.get_token(old["id"]).revoked_at is not None
    assert site.services.lifecycle.run_due().revoked == []
    assert works(site, new["token"])


def test_rotate_with_an_explicit_grace_period(timed: Site) -> None:
    site = timed
    reader = site.reader()
    old = site.issue(site.integration())
    new = ok(site.call(site.owner, "POST", site.path(f"/tokens/{old['id']}/rotate"), json={"grace": "2h"}), 201)
    assert seconds(site.token(old["id"])["revoke_at"]) == seconds(new["created_at"]) + 2 * 3600
    assert works(site, new["token"])
    assert works(site, old["token"]), "with an explicit grace the old token lasts the whole period"
    site.server.clock.advance(3600)
    assert works(site, old["token"])
    site.server.clock.advance(3600 + 1)
    refused(site, old["token"], "grace period has ended")
    assert works(site, new["token"])

    # the scheduler applies the passed deadline: revokes it and records it once
    summary = site.services.lifecycle.run_due()
    assert summary.revoked == [old["id"]]
    assert site.services.lifecycle.run_due().revoked == []
    record = site.services.store.get_token(old["id"])
    assert record.revoked_at is not None
    events, _ = site.events(reader)
    [trevoke] = [e for e in audit_of(events, "trevoke", "satoken") if e["object_uuid"] == old["id"]]
    assert aux(trevoke)["reason"] == "rotation grace period ended"
    assert trevoke["actor_uuid"] == SYSTEM_UUID and trevoke["actor_details"]["name"] == "siemgate"
    assert trevoke["session"]["device_uuid"] == SERVER_DEVICE


def test_rotate_with_zero_grace_revokes_the_old_token_at_once(site: Site) -> None:
    old = site.issue(site.integration())
    new = ok(site.call(site.owner, "POST", site.path(f"/tokens/{old['id']}/rotate"), json={"grace": "0"}), 201)
    refused(site, old["token"], "revoked")
    assert works(site, new["token"])
    assert status_of(site, old["id"]) == "revoked"


@pytest.mark.parametrize("grace", ["-1h", "never", "soon", "2 hours", ""])
def test_a_bad_grace_is_400_and_rotates_nothing(site: Site, grace: str) -> None:
    old = site.issue(site.integration())
    response = site.call(site.owner, "POST", site.path(f"/tokens/{old['id']}/rotate"), json={"grace": grace})
    assert "grace" in error_message(response, 400)
    assert [t["id"] for t in site.tokens()] == [old["id"]]
    assert site.token(old["id"])["revoke_at"] is None


@pytest.mark.parametrize("grace", ["91d", "13w", "2161h", "99999d", "9" * 41 + "s"])
def test_a_grace_past_90_days_is_400_naming_the_bound_and_writes_nothing(site: Site, grace: str) -> None:
    """A 99999d grace used to fail storing the old token's revocation time (past 2262) after the
    replacement was issued and recorded: a live token whose secret nobody saw."""
    old = site.issue(site.integration())
    head = site.services.store.head_seq(site.account.id, AUDIT)
    rotate = site.path(f"/tokens/{old['id']}/rotate")
    message = error_message(site.call(site.owner, "POST", rotate, json={"grace": grace}), 400)
    assert message.startswith("Bad Request: grace: "), message
    assert len(grace) > 40 or "longer than 90d, the longest grace period" in message, message
    assert [t["id"] for t in site.tokens()] == [old["id"]]
    assert site.token(old["id"])["revoke_at"] is None
    assert site.services.store.head_seq(site.account.id, AUDIT) == head
    with pytest.raises(BadRequest, match="grace: the grace period must be 0 or a duration of at most 90d"):
        site.services.lifecycle.rotate(CLI, site.account, old["id"], 91 * DAY)  # the service checks it too
    assert [t["id"] for t in site.tokens()] == [old["id"]]
    new = ok(site.call(site.owner, "POST", rotate, json={"grace": "90d"}), 201)
    assert seconds(site.token(old["id"])["revoke_at"]) - seconds(new["created_at"]) == 90 * DAY // SECOND


def test_a_token_issued_to_live_longer_than_today_allows_is_rotated_within_the_bound(site: Site) -> None:
    """Before expiries were bounded a token could be issued for 50000d: its rotation (which gives
    the replacement the old token's lifetime) is not refused for a lifetime nobody asked for; the
    replacement lives as long as allowed, 36500d."""
    old = site.issue(site.integration(), expires="36500d")
    store = site.services.store
    with store._tx() as conn:  # as a token issued before the bound left it
        conn.execute(store._q("UPDATE tokens SET expires_at = created_at + ? WHERE id = ?"), (50000 * DAY, old["id"]))
    new = ok(site.call(site.owner, "POST", site.path(f"/tokens/{old['id']}/rotate"), json={}), 201)
    assert seconds(new["expires_at"]) - seconds(new["created_at"]) == 36500 * DAY // SECOND


def test_rotating_a_revoked_or_expired_token_is_400(timed: Site) -> None:
    site = timed
    integration = site.integration()
    revoked = site.issue(integration, name="revoked")
    ok(site.call(site.owner, "POST", site.path(f"/tokens/{revoked['id']}/revoke")))
    message = error_message(site.call(site.owner, "POST", site.path(f"/tokens/{revoked['id']}/rotate")), 400)
    assert "revoked" in message and "issue a new token" in message

    expiring = site.issue(integration, name="expiring", expires="1h")
    rotated = site.issue(integration, name="rotated")
    ok(site.call(site.owner, "POST", site.path(f"/tokens/{rotated['id']}/rotate"), json={"grace": "30m"}), 201)
    site.server.clock.advance(2 * 3600)
    message = error_message(site.call(site.owner, "POST", site.path(f"/tokens/{expiring['id']}/rotate")), 400)
    assert "expired" in message
    # a token whose grace period has ended is revoked, even before the scheduler has run
    error_message(site.call(site.owner, "POST", site.path(f"/tokens/{rotated['id']}/rotate")), 400)
    assert len(site.tokens()) == 4  # nothing was issued by the refused rotations


# --- expiry -------------------------------------------------------------------------------------------


def test_a_30_day_token_is_expiring_for_its_last_14_days_then_expired(timed: Site) -> None:
    site = timed
    lifecycle = site.services.lifecycle
    reader = site.reader()
    issued = site.issue(site.integration(), expires="30d")
    never = site.issue(site.integration(), name="forever")

    site.server.clock.advance(16 * 86400 - 60)  # 14 days and a minute left
    assert status_of(site, issued["id"]) == "active"
    assert site.tokens(status="expiring") == []
    assert lifecycle.run_due().warned == []

    site.server.clock.advance(120)  # inside the 14-day window
    assert status_of(site, issued["id"]) == "expiring"
    assert [t["id"] for t in site.tokens(status="expiring")] == [issued["id"]]
    active = {t["id"] for t in site.tokens(status="active")}
    assert never["id"] in active and issued["id"] not in active
    details = ok(site.call(site.member, "GET", site.path(f"/integrations/{issued['integration']['uuid']}")))
    assert [t["status"] for t in details["tokens"]] == ["expiring"]
    assert works(site, issued["token"])
    assert lifecycle.run_due().warned == [issued["id"]]
    assert lifecycle.run_due().warned == []

    site.server.clock.advance(14 * 86400 - 120)  # a minute before the end
    assert works(site, issued["token"])
    site.server.clock.advance(61)
    refused(site, issued["token"], "expired")
    assert status_of(site, issued["id"]) == "expired"
    assert [t["id"] for t in site.tokens(status="expired")] == [issued["id"]]
    assert site.tokens(status="expiring") == []
    first, second = lifecycle.run_due(), lifecycle.run_due()
    assert (first.expired, first.warned, first.revoked) == ([issued["id"]], [], [])
    assert (second.expired, second.warned, second.revoked) == ([], [], [])
    assert works(site, never["token"])

    events, _ = site.events(reader)
    expire = [e for e in audit_of(events, "expire", "satoken") if e["object_uuid"] == issued["id"]]
    assert [aux(e)["state"] for e in expire] == ["expiring_soon", "expired"]
    assert all(e["aux_uuid"] == issued["integration"]["uuid"] for e in expire)
    assert aux(expire[0])["expires_at"] == aux(expire[1])["expired_at"]
    assert audit_of(events, "expire", "satoken") == expire  # nothing about the token that never expires


def test_the_lifecycle_job_reads_only_the_tokens_with_something_due(
    timed: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_due runs every minute: it read every token of every account (200,000 revoked tokens:
    1.4 s) to find the few with a deadline passed, an expiry or a warning due. The store picks them."""
    site = timed
    integration = site.integration()
    due = site.issue(integration, name="due", expires="15d")
    site.issue(integration, name="later", expires="30d")
    site.issue(integration, name="forever")
    revoked = site.issue(integration, name="revoked", expires="1d")
    ok(site.call(site.owner, "POST", site.path(f"/tokens/{revoked['id']}/revoke")))
    expired = site.issue(integration, name="expired", expires="1d")
    site.server.clock.advance(86400 + 60)  # `due` has 14 days less a minute left, `expired` expired
    lifecycle, store = site.services.lifecycle, site.services.store

    def every_token(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the lifecycle job read every token")

    monkeypatch.setattr(store, "list_tokens", every_token)
    assert [t.id for t in store.due_tokens(site.server.clock(), 14 * DAY)] == [due["id"], expired["id"]]
    summary = lifecycle.run_due()
    assert (summary.expired, summary.warned, summary.revoked) == ([expired["id"]], [due["id"]], [])
    assert store.due_tokens(site.server.clock(), 14 * DAY) == []


def test_the_cli_lists_expiring_tokens(make_server: Any) -> None:
    """`siemgate token list --expiring` runs on the real clock: the server's clock is moved back 16
    days to issue a 30-day token that, in real time, has 14 days left."""
    server = make_server()
    site = Site(server)
    integration = site.integration()
    server.clock.advance(-16 * 86400 - 60)
    expiring = site.issue(integration, name="old", expires="30d")
    server.clock.advance(16 * 86400 + 60)
    fresh = site.issue(integration, name="new", expires="30d")
    env = {
        **os.environ,
        "SIEMGATE_DATA_DIR": str(site.services.settings.data_dir),
        "SIEMGATE_LOG_FORMAT": "text",
    }
    env.pop("SIEMGATE_CONFIG", None)
    url = getattr(site.services.store, "url", None)  # the server's PostgreSQL database, when it has one
    if url is not None:
        env["SIEMGATE_DATABASE_URL"] = url

    def cli(*args: str) -> Any:
        result = subprocess.run(
            [sys.executable, "-m", "siemgate", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    listed = cli("token", "list", "--expiring", "--json")
    assert [t["id"] for t in listed] == [expiring["id"]]
    assert listed[0]["status"] == "expiring"
    assert {t["id"]: t["status"] for t in site.tokens(status="expiring")} == {expiring["id"]: "expiring"}
    assert fresh["id"] not in {t["id"] for t in listed}


# --- deleting an integration ------------------------------------------------------------------------


def test_deleting_an_integration_revokes_all_its_tokens(site: Site) -> None:
    integration = site.integration(name="Splunk prod")
    keep = site.integration(name="Elastic")
    first = site.issue(integration, name="hf1")
    second = site.issue(integration, name="hf2")
    already = site.issue(integration, name="old")
    ok(site.call(site.owner, "POST", site.path(f"/tokens/{already['id']}/revoke")))
    unrelated = site.issue(keep)

    deleted = ok(site.call(site.admin, "DELETE", site.path(f"/integrations/{integration['uuid']}")))
    assert deleted["deleted"] is True
    assert sorted(deleted["revoked_tokens"]) == sorted([first["id"], second["id"]])
    for issued in (first, second, already):
        refused(site, issued["token"], "revoked")
        assert status_of(site, issued["id"]) == "revoked"
    assert {t["id"] for t in site.tokens(status="revoked")} == {first["id"], second["id"], already["id"]}
    assert works(site, unrelated["token"])
    error_message(site.call(site.owner, "GET", site.path(f"/integrations/{integration['uuid']}")), 404)
    assert [i["uuid"] for i in ok(site.call(site.owner, "GET", site.path("/integrations")))["items"]] == [keep["uuid"]]
    tokens_url = site.path(f"/integrations/{integration['uuid']}/tokens")
    reissue = site.call(site.owner, "POST", tokens_url, json={"name": "x"})
    error_message(reissue, 404)
    # the name is free again
    assert site.integration(name="Splunk prod")["uuid"] != integration["uuid"]


# --- integration details -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(SIEM_TYPES))
def test_integration_details_show_the_connection_guide_for_its_siem(site: Site, kind: str) -> None:
    integration = site.integration(type=kind)
    details = ok(site.call(site.member, "GET", site.path(f"/integrations/{integration['uuid']}")))
    siem = SIEM_TYPES[kind]
    assert details["type"] == kind
    assert details["siem"] == {"key": kind, "name": siem.name}
    guide = details["connection_guide"]
    base_url = site.services.settings.base_url
    assert guide["connector"] == siem.connector
    assert guide["base_url"] == base_url == f"http://{PUBLIC_HOST}"
    assert guide["fields"] and guide["steps"] and guide["url_note"]
    assert all("{" not in step for step in guide["steps"]), guide["steps"]
    if kind == "splunk":
        assert guide["url_from_token"] is True
        assert "token's audience" in guide["url_note"]
        assert f"https://{PUBLIC_HOST}" in guide["url_note"]
        assert any(f"https://{PUBLIC_HOST}" in step for step in guide["steps"])
        assert "SIEMGATE_PUBLIC_URL" in guide["url_note"]
        assert guide["fields"] == ["Events API token"]
    else:
        assert guide["url_from_token"] is False
        assert base_url in guide["url_note"]
        assert any(base_url in step for step in guide["steps"])
    if kind == "elastic":
        assert "URL of 1Password Events API Server" in guide["fields"]
        assert f"URL of 1Password Events API Server: {base_url}" in guide["steps"]
    assert details["tokens"] == []


def test_integration_details_show_tokens_last_use_and_consumer_lag(site: Site) -> None:
    key = site.server.ingest_key(site.account)
    now = site.server.clock()
    stored = site.server.ingest(key, SIGNIN, [signin(now - n * SECOND) for n in range(5, 0, -1)])
    assert stored.status_code == 200, stored.text
    integration = site.integration(type="elastic")
    reading = site.issue(integration, name="reader", features=["signinattempts"], expires="90d")
    site.issue(integration, name="idle")
    url = site.path(f"/integrations/{integration['uuid']}")

    def details() -> dict[str, dict[str, Any]]:
        return {t["name"]: t for t in ok(site.call(site.member, "GET", url))["tokens"]}

    before = details()
    assert set(before) == {"reader", "idle"}
    assert before["reader"]["status"] == "active"
    assert before["reader"]["features"] == ["signinattempts"]
    assert before["reader"]["expires_at"] == reading["expires_at"]
    assert before["reader"]["last_used_at"] is None
    [stream] = before["reader"]["streams"]
    assert stream["feature"] == "signinattempts"
    assert stream["events_behind"] is None and stream["last_seq"] is None and stream["last_read_at"] is None
    assert stream["head_seq"] > 0
    assert [s["feature"] for s in before["idle"]["streams"]] == ALL
    assert all(s["events_behind"] is None for s in before["idle"]["streams"])

    page = site.server.page(reading["token"], SIGNIN, {"limit": 2})
    assert page.status_code == 200 and len(page.json()["items"]) == 2
    site.services.usage.flush()
    after = details()["reader"]
    assert after["last_used_at"] is not None
    assert abs(seconds(after["last_used_at"]) - site.server.clock() // SECOND) <= 5
    [stream] = after["streams"]
    assert stream["events_behind"] == 3
    assert stream["last_read_at"] is not None and stream["last_seq"] is not None
    assert site.token(reading["id"])["streams"] == after["streams"]

    cursor = page.json()["cursor"]
    behind = []
    while True:
        response = site.server.page(reading["token"], SIGNIN, {"cursor": cursor})
        assert response.status_code == 200
        site.services.usage.flush()
        behind.append(details()["reader"]["streams"][0]["events_behind"])
        cursor = response.json()["cursor"]
        if not response.json()["has_more"]:
            break
    assert behind == [1, 0]  # the cursor keeps the reset's limit of 2
    assert details()["idle"]["last_used_at"] is None

    # new events put the consumer behind again, until it reads them
    site.server.ingest(key, SIGNIN, [signin(site.server.clock()) for _ in range(2)])
    assert details()["reader"]["streams"][0]["events_behind"] == 2
    site.server.page(reading["token"], SIGNIN, {"cursor": cursor})
    site.services.usage.flush()
    assert details()["reader"]["streams"][0]["events_behind"] == 0
