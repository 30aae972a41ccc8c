"""siemgate's own audit trail (docs/audit.md), read back through the Events API as a SIEM would:
each change is exactly one event with the documented action and object type, who did it (a
person, the command line, or siemgate itself), the MSP fields (actor_type, the home account's
uuid), and never in another account's streams; console sign-ins go to signinattempts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from pydantic import TypeAdapter

from siemgate.accounts.actor import CLI, CLI_DEVICE, SERVER_DEVICE, SYSTEM_UUID
from siemgate.model.features import Feature
from siemgate.model.timestamps import parse_ns
from siemgate.model.validation import V1_SHAPES, validate_events
from support.admin import ADMIN, DAY, PASSWORD, Person, Site, aux, error_message, ok
from support.stores import BOTH_BACKENDS

server_backend = BOTH_BACKENDS  # these HTTP tests run on SQLite and PostgreSQL

AUDIT, SIGNIN = Feature.AUDITEVENTS, Feature.SIGNINATTEMPTS
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def recorded(site: Site, action: Callable[[], Any], feature: Feature = AUDIT) -> list[dict[str, Any]]:
    """The events `action` adds to the site account's stream (read through the Events API)."""
    reader = site.reader()
    _, cursor = site.events(reader, feature)
    action()
    events, _ = site.events(reader, feature, cursor=cursor)
    return events


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["action"], e["object_type"]) for e in events]


def assert_by_person(event: dict[str, Any], person: Person, site: Site, home: str | None = None) -> None:
    """The event names `person` as its actor, acting in the site's account, with home account `home`."""
    home = home or site.account.uuid
    kind = "user" if home == site.account.uuid else "external_user"
    assert event["actor_uuid"] == person.uuid
    assert event["actor_details"] == {
        "uuid": person.uuid,
        "name": person.user.name,
        "email": person.email,
        "user_type": kind,
        "user_account_uuid": home,
    }
    assert event["actor_type"] == kind
    assert event["actor_account_uuid"] == home
    assert event["account_uuid"] == site.account.uuid
    assert event["session"]["uuid"] == person.key_id  # the API key it was done with
    assert event["session"]["ip"] == "127.0.0.1"
    assert parse_ns(event["session"]["login_time"]) <= parse_ns(event["timestamp"])


def assert_by_system(event: dict[str, Any], site: Site, device: str) -> None:
    """The event names siemgate itself as its actor (docs/audit.md, "Who"); `device` says which part."""
    assert event["actor_uuid"] == SYSTEM_UUID
    assert event["actor_details"] == {
        "uuid": SYSTEM_UUID,
        "name": "siemgate",
        "email": "system@siemgate.invalid",
        "user_type": "user",
        "user_account_uuid": site.account.uuid,
    }
    assert event["actor_type"] == "user" and event["actor_account_uuid"] == site.account.uuid
    assert event["account_uuid"] == site.account.uuid
    session = event["session"]
    assert (session["uuid"], session["device_uuid"], session["ip"]) == (SYSTEM_UUID, device, "127.0.0.1")
    assert parse_ns(session["login_time"]) <= parse_ns(event["timestamp"])


def assert_valid(events: list[dict[str, Any]], feature: Feature) -> None:
    """Strictly valid v2 events (what siemgate writes must be what it would accept from a producer)."""
    validated = validate_events(feature, events, strict=True, now=0)
    assert [e for _, e in validated] == events


# --- one event per change ------------------------------------------------------------------------------


def test_integration_created_renamed_described_and_deleted(site: Site) -> None:
    actor = site.admin
    made: dict[str, Any] = {}

    def create() -> None:
        made.update(site.integration(actor, type="datadog", name="Datadog EU"))

    [created] = recorded(site, create)
    assert kinds([created]) == [("create", "sa")]
    assert created["object_uuid"] == made["uuid"]
    assert aux(created) == {"name": "Datadog EU", "siem": "datadog"}
    assert_by_person(created, actor, site)

    url = site.path(f"/integrations/{made['uuid']}")
    [renamed] = recorded(site, lambda: ok(site.call(actor, "PATCH", url, json={"name": "Datadog EU-2"})))
    assert kinds([renamed]) == [("changenm", "sa")]
    assert renamed["object_uuid"] == made["uuid"]
    assert aux(renamed) == {"name": "Datadog EU-2", "previous": "Datadog EU"}
    assert_by_person(renamed, actor, site)

    [described] = recorded(site, lambda: ok(site.call(actor, "PATCH", url, json={"description": "prod"})))
    assert kinds([described]) == [("update", "sa")]
    assert aux(described) == {"description": "prod"}

    assert recorded(site, lambda: ok(site.call(actor, "PATCH", url, json={"name": "Datadog EU-2"}))) == []

    [deleted] = recorded(site, lambda: ok(site.call(actor, "DELETE", url)))
    assert kinds([deleted]) == [("delete", "sa")]
    assert deleted["object_uuid"] == made["uuid"]
    assert aux(deleted) == {"name": "Datadog EU-2"}
    assert_by_person(deleted, actor, site)


def test_deleting_an_integration_records_each_token_revocation(site: Site) -> None:
    integration = site.integration()
    live = site.issue(integration, name="live")
    gone = site.issue(integration, name="gone")
    ok(site.call(site.owner, "POST", site.path(f"/tokens/{gone['id']}/revoke")))
    events = recorded(
        site, lambda: ok(site.call(site.admin, "DELETE", site.path(f"/integrations/{integration['uuid']}")))
    )
    assert kinds(events) == [("trevoke", "satoken"), ("delete", "sa")]
    assert events[0]["object_uuid"] == live["id"] and events[0]["aux_uuid"] == integration["uuid"]
    assert aux(events[0]) == {"name": "live", "reason": "integration deleted"}
    for event in events:
        assert_by_person(event, site.admin, site)


def test_token_issued_revoked_and_rotated(site: Site) -> None:
    actor = site.admin
    integration = site.integration()
    issued: dict[str, Any] = {}
    [create] = recorded(site, lambda: issued.update(site.issue(integration, actor, name="hf1", expires="90d")))
    assert kinds([create]) == [("create", "satoken")]
    assert create["object_uuid"] == issued["id"] and create["aux_uuid"] == integration["uuid"]
    info = aux(create)
    assert info["name"] == "hf1"
    assert info["features"] == ["signinattempts", "itemusages", "auditevents"]
    assert parse_ns(info["expires_at"]) // 10**9 == parse_ns(issued["expires_at"]) // 10**9
    assert_by_person(create, actor, site)

    rotated: dict[str, Any] = {}

    def rotate() -> None:
        rotated.update(ok(site.call(actor, "POST", site.path(f"/tokens/{issued['id']}/rotate")), 201))

    events = recorded(site, rotate)
    assert kinds(events) == [("create", "satoken"), ("replace", "satoken")]
    replace = events[1]
    assert replace["object_uuid"] == rotated["id"] and replace["aux_uuid"] == issued["id"]
    assert aux(replace)["name"] == "hf1"
    assert "first use" in aux(replace)["old_token_revoked"]
    for event in events:
        assert_by_person(event, actor, site)

    url = site.path(f"/tokens/{rotated['id']}/revoke")
    [revoke] = recorded(site, lambda: ok(site.call(actor, "POST", url)))
    assert kinds([revoke]) == [("trevoke", "satoken")]
    assert revoke["object_uuid"] == rotated["id"] and revoke["aux_uuid"] == integration["uuid"]
    assert aux(revoke) == {"name": "hf1"}
    assert_by_person(revoke, actor, site)
    assert recorded(site, lambda: ok(site.call(actor, "POST", url))) == []  # revoking again records nothing


def test_rotation_with_zero_grace_records_the_revocation_too(site: Site) -> None:
    issued = site.issue(site.integration())
    rotated: dict[str, Any] = {}
    url = site.path(f"/tokens/{issued['id']}/rotate")
    events = recorded(site, lambda: rotated.update(ok(site.call(site.owner, "POST", url, json={"grace": "0"}), 201)))
    assert kinds(events) == [("create", "satoken"), ("trevoke", "satoken"), ("replace", "satoken")]
    assert events[1]["object_uuid"] == issued["id"]
    assert aux(events[1])["reason"] == f"rotated to {rotated['id']}"
    assert aux(events[2])["old_token_revoked"] == "now"


def test_the_replacements_first_use_revokes_the_old_token_as_siemgate(site: Site) -> None:
    issued = site.issue(site.integration())
    rotated = ok(site.call(site.owner, "POST", site.path(f"/tokens/{issued['id']}/rotate")), 201)
    [revoke] = recorded(site, lambda: site.server.page(rotated["token"], AUDIT, {}))
    assert kinds([revoke]) == [("trevoke", "satoken")]
    assert revoke["object_uuid"] == issued["id"]
    assert aux(revoke)["reason"] == f"replacement {rotated['id']} was used"
    assert_by_system(revoke, site, SERVER_DEVICE)


def test_members_added_role_changed_and_removed(site: Site) -> None:
    actor = site.admin
    invited: dict[str, Any] = {}
    body = {"email": f"dev@{site.domain}", "role": "member"}
    [invite] = recorded(
        site, lambda: invited.update(ok(site.call(actor, "POST", site.path("/invitations"), json=body), 201))
    )
    assert kinds([invite]) == [("create", "invite")] and invite["object_uuid"] == invited["id"]
    assert aux(invite) == {"email": f"dev@{site.domain}", "role": "member", "expires_at": aux(invite)["expires_at"]}
    assert_by_person(invite, actor, site)
    added: dict[str, Any] = {}
    joining = {"email": f"dev@{site.domain}", "code": invited["code"], "name": "Dev Eloper", "password": PASSWORD}

    def join_by_invitation() -> None:
        with httpx.Client(base_url=site.server.base_url, timeout=30) as browser:  # its own cookie jar
            added.update(ok(browser.post(f"{ADMIN}/join", json=joining), 201)["user"])

    [join] = recorded(site, join_by_invitation)
    assert kinds([join]) == [("join", "user")]
    person = {"uuid": added["uuid"], "name": "Dev Eloper", "email": f"dev@{site.domain}"}
    assert join["object_uuid"] == added["uuid"] and join["object_details"] == person
    assert aux(join) == {"role": "member", "invitation": invited["id"]} and join["aux_uuid"] == invited["id"]
    assert join["actor_uuid"] == added["uuid"] and join["actor_type"] == "user"

    url = site.path(f"/members/{added['uuid']}")
    [role] = recorded(site, lambda: ok(site.call(actor, "PATCH", url, json={"role": "administrator"})))
    assert kinds([role]) == [("role", "user")]
    assert role["object_details"] == person
    assert aux(role) == {"role": "administrator", "previous": "member"}
    assert_by_person(role, actor, site)
    assert recorded(site, lambda: ok(site.call(actor, "PATCH", url, json={"role": "administrator"}))) == []

    [removed] = recorded(site, lambda: ok(site.call(actor, "DELETE", url), 204))
    assert kinds([removed]) == [("delete", "user")]
    # their only account: the session the join opened ends, and they hold no API key to revoke
    # (docs/security.md, "Console sessions")
    assert removed["object_details"] == person
    assert aux(removed) == {"role": "administrator", "ended_sessions": 1, "revoked_api_keys": []}
    assert_by_person(removed, actor, site)


def test_ingest_keys_are_recorded(site: Site) -> None:
    made: dict[str, Any] = {}
    [create] = recorded(site, lambda: made.update(site.ingest_key(site.admin)))
    assert kinds([create]) == [("create", "satoken")] and create["object_uuid"] == made["id"]
    assert aux(create)["kind"] == "ingest key"
    url = site.path(f"/ingest-keys/{made['id']}")
    [revoke] = recorded(site, lambda: ok(site.call(site.admin, "DELETE", url)))
    assert kinds([revoke]) == [("trevoke", "satoken")] and aux(revoke)["kind"] == "ingest key"


def test_account_renames_are_recorded(make_server: Callable[..., Any]) -> None:
    site = Site(make_server(allow_account_creation=True))  # people rename accounts only then
    name = f"{site.account.name} renamed"
    [renamed] = recorded(site, lambda: ok(site.call(site.owner, "PATCH", site.path(), json={"name": name})))
    assert kinds([renamed]) == [("changenm", "account")] and aux(renamed) == {"name": name}
    assert_by_person(renamed, site.owner, site)


def test_refused_changes_record_nothing(site: Site) -> None:
    integration = site.integration()

    def refused() -> None:
        error_message(
            site.call(site.member, "POST", site.path("/integrations"), json={"type": "splunk", "name": "x"}), 403
        )
        error_message(
            site.call(
                site.member, "POST", site.path(f"/integrations/{integration['uuid']}/tokens"), json={"name": "x"}
            ),
            403,
        )
        error_message(
            site.call(site.owner, "PATCH", site.path(f"/members/{site.owner.uuid}"), json={"role": "member"}), 409
        )
        error_message(site.call(site.outsider, "DELETE", site.path(f"/integrations/{integration['uuid']}")), 404)
        error_message(site.call(None, "POST", site.path("/integrations"), json={"type": "splunk", "name": "x"}), 401)

    assert recorded(site, refused) == []


def test_command_line_changes_are_attributed_to_the_command_line(site: Site) -> None:
    people = site.services.people

    def by_cli() -> None:
        integration = site.services.integrations.create(CLI, site.account, "panther", "Panther")
        site.services.lifecycle.issue(CLI, site.account, integration, "t", list(Feature), None)
        people.set_role(CLI, site.account, site.member.email, "administrator")

    events = recorded(site, by_cli)
    assert kinds(events) == [("create", "sa"), ("create", "satoken"), ("role", "user")]
    for event in events:
        assert_by_system(event, site, CLI_DEVICE)


def test_expiry_warnings_and_expiries_are_recorded_by_siemgate(own_site: Site) -> None:
    site = own_site
    reader = site.reader()
    issued = site.issue(site.integration(), expires="30d")
    _, cursor = site.events(reader)
    site.server.clock.advance(16 * DAY / 10**9 + 60)
    site.services.lifecycle.run_due()
    site.services.lifecycle.run_due()
    warned, cursor = site.events(reader, cursor=cursor)
    site.server.clock.advance(14 * DAY / 10**9)
    site.services.lifecycle.run_due()
    site.services.lifecycle.run_due()
    expired, _ = site.events(reader, cursor=cursor)
    for events, state in ((warned, "expiring_soon"), (expired, "expired")):
        [event] = events
        assert kinds([event]) == [("expire", "satoken")]
        assert event["object_uuid"] == issued["id"]
        assert event["aux_uuid"] == issued["integration"]["uuid"]
        assert aux(event)["state"] == state and aux(event)["name"] == issued["name"]
        assert_by_system(event, site, SERVER_DEVICE)
        assert_valid([event], AUDIT)


# --- console sign-ins ------------------------------------------------------------------------------------


def _sign_in(site: Site, email: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=site.server.base_url) as browser:
        return browser.post(
            f"{ADMIN}/session", json={"email": email, "password": password}, headers={"User-Agent": FIREFOX}
        )


def test_console_sign_ins_are_recorded_in_signinattempts(own_site: Site) -> None:
    site = own_site
    site.set_password(site.admin.user)
    [success] = recorded(site, lambda: ok(_sign_in(site, site.admin.email, PASSWORD)), SIGNIN)
    [failure] = recorded(site, lambda: error_message(_sign_in(site, site.admin.email, "wrong password!"), 401), SIGNIN)
    assert recorded(site, lambda: _sign_in(site, f"nobody@{site.domain}", PASSWORD), SIGNIN) == []
    assert recorded(site, lambda: ok(_sign_in(site, site.admin.email, PASSWORD)), AUDIT) == []  # not an audit event
    target = {
        "uuid": site.admin.uuid,
        "name": site.admin.user.name,
        "email": site.admin.email,
        "user_type": "user",
        "user_account_uuid": site.account.uuid,
    }
    for event, category, kind in (
        (success, "success", "credentials_ok"),
        (failure, "credentials_failed", "password_secret_bad"),
    ):
        assert (event["category"], event["type"]) == (category, kind)
        assert event["target_user"] == target
        assert event["account_uuid"] == site.account.uuid
        assert event["client"]["app_name"] == "siemgate Console"
        assert (event["client"]["platform_name"], event["client"]["os_name"]) == ("Firefox", "Linux")
        assert event["client"]["ip_address"] == "127.0.0.1"
        assert_valid([event], SIGNIN)
    assert success["session_uuid"]
    assert "session_uuid" not in failure or failure["session_uuid"] != success["session_uuid"]

    # a change made in that console session names the session of the sign-in
    reader = site.reader()
    with httpx.Client(base_url=site.server.base_url) as browser:
        csrf = ok(browser.post(f"{ADMIN}/session", json={"email": site.admin.email, "password": PASSWORD}))[
            "csrf_token"
        ]
        signins, _ = site.events(reader, SIGNIN)
        body = {"type": "rapid7", "name": "InsightIDR"}
        [event] = recorded(
            site, lambda: ok(browser.post(site.path("/integrations"), json=body, headers={"X-CSRF-Token": csrf}), 201)
        )
    assert event["session"]["uuid"] == signins[-1]["session_uuid"]
    assert event["actor_uuid"] == site.admin.uuid
    assert event["session"]["ip"] == "127.0.0.1"


def test_a_person_in_two_accounts_is_recorded_in_both(own_site: Site) -> None:
    site = own_site
    msp = site.add("msp", "administrator", "Morgan MSP", account=site.other)  # home: Other
    site.join(msp, "administrator")
    site.set_password(msp.user)
    home_reader, customer_reader = site.reader(site.other), site.reader()
    error_message(_sign_in(site, msp.email, "not the password"), 401)
    ok(_sign_in(site, msp.email, PASSWORD))
    home, _ = site.events(home_reader, SIGNIN)
    customer, _ = site.events(customer_reader, SIGNIN)
    assert [e["category"] for e in home] == [e["category"] for e in customer] == ["credentials_failed", "success"]
    for event in home:
        assert event["account_uuid"] == site.other.uuid
        assert event["target_user"]["user_type"] == "user"
        assert event["target_user"]["user_account_uuid"] == site.other.uuid
    for event in customer:
        assert event["account_uuid"] == site.account.uuid
        assert event["target_user"]["user_type"] == "external_user"
        assert event["target_user"]["user_account_uuid"] == site.other.uuid
    assert not {e["uuid"] for e in home} & {e["uuid"] for e in customer}


# --- MSP: acting in another account ---------------------------------------------------------------------


def test_a_person_from_another_account_acts_as_an_external_user(site: Site) -> None:
    msp = site.add("msp", "owner", "Morgan MSP", account=site.other)  # created in Other: home account
    home_reader = site.reader(site.other)
    _, home_cursor = site.events(home_reader)
    invited: dict[str, Any] = {}
    body = {"email": msp.email, "role": "administrator"}
    [invite] = recorded(
        site, lambda: invited.update(ok(site.call(site.owner, "POST", site.path("/invitations"), json=body), 201))
    )
    assert kinds([invite]) == [("create", "invite")]
    assert_by_person(invite, site.owner, site)
    accept = f"{ADMIN}/me/invitations/{invited['id']}/accept"
    [join] = recorded(site, lambda: ok(site.call(msp, "POST", accept, json={"code": invited["code"]})))
    assert kinds([join]) == [("join", "user")] and join["object_uuid"] == msp.uuid
    assert_by_person(join, msp, site, home=site.other.uuid)

    made: dict[str, Any] = {}
    [created] = recorded(site, lambda: made.update(site.integration(msp, type="sumo_logic")))
    assert_by_person(created, msp, site, home=site.other.uuid)
    assert created["actor_type"] == "external_user"
    assert created["actor_account_uuid"] == created["actor_details"]["user_account_uuid"] == site.other.uuid
    assert created["account_uuid"] == site.account.uuid

    # in their home account they are a user, and nothing of the customer's shows there
    home_events, _ = site.events(home_reader, cursor=home_cursor)
    assert home_events == []
    ok(site.call(msp, "POST", site.path("/integrations", site.other), json={"type": "other", "name": "own"}), 201)
    home_events, _ = site.events(home_reader, cursor=home_cursor)
    [own] = home_events
    assert own["actor_type"] == "user" and own["actor_account_uuid"] == site.other.uuid
    assert own["account_uuid"] == site.other.uuid
    assert made["uuid"] not in str(home_events)
    me = ok(site.call(msp, "GET", f"{ADMIN}/me"))
    assert {a["uuid"]: a["role"] for a in me["accounts"]} == {
        site.other.uuid: "owner",
        site.account.uuid: "administrator",
    }


def test_no_event_ever_appears_in_another_accounts_streams(site: Site) -> None:
    msp = site.add("msp", "administrator", account=site.other)
    site.join(msp, "administrator")
    for who, account in (
        (site.owner, site.account),
        (msp, site.account),
        (msp, site.other),
        (site.outsider, site.other),
    ):
        body = {"type": "elastic", "name": f"e-{who.uuid}"}
        integration = ok(site.call(who, "POST", site.path("/integrations", account), json=body), 201)
        url = site.path(f"/integrations/{integration['uuid']}/tokens", account)
        ok(site.call(who, "POST", url, json={"name": "t"}), 201)
    seen: dict[str, set[str]] = {}
    for account in (site.account, site.other):
        reader = site.reader(account)
        for feature in Feature:
            events, _ = site.events(reader, feature)
            assert all(e["account_uuid"] == account.uuid for e in events), feature
            seen.setdefault(account.uuid, set()).update(e["uuid"] for e in events)
            if feature is AUDIT:
                assert events, "the set-up recorded audit events"
                assert_valid(events, AUDIT)
    assert not seen[site.account.uuid] & seen[site.other.uuid]


def test_every_audit_event_is_strictly_valid_and_v1_lacks_the_v2_fields(own_site: Site) -> None:
    site = own_site
    site.set_password(site.owner.user)
    integration = site.integration()
    issued = site.issue(integration)
    ok(site.call(site.owner, "POST", site.path(f"/tokens/{issued['id']}/rotate"), json={"grace": "0"}), 201)
    ok(site.call(site.owner, "PATCH", site.path(f"/members/{site.member.uuid}"), json={"role": "administrator"}))
    ok(_sign_in(site, site.owner.email, PASSWORD))
    error_message(_sign_in(site, site.owner.email, "wrong password!"), 401)
    reader = site.reader()
    for feature, v2_top, user_field in (
        (AUDIT, {"account_uuid", "actor_type", "actor_account_uuid"}, "actor_details"),
        (SIGNIN, {"account_uuid"}, "target_user"),
    ):
        v2, _ = site.events(reader, feature, version=2)
        v1, _ = site.events(reader, feature, version=1)
        assert v2 and len(v1) == len(v2)
        assert_valid(v2, feature)
        TypeAdapter(list[V1_SHAPES[feature]]).validate_python(v1)  # type: ignore[valid-type]  # v1 shape, strict
        for old, new in zip(v1, v2, strict=True):
            assert old["uuid"] == new["uuid"]
            assert not set(old) & v2_top, old
            assert set(new) - set(old) <= v2_top
            if user_field in old:
                assert not {"user_type", "user_account_uuid"} & set(old[user_field])
                assert {k: v for k, v in new[user_field].items() if k not in ("user_type", "user_account_uuid")} == old[
                    user_field
                ]
            expected = {k: v for k, v in new.items() if k not in v2_top and k != user_field}
            assert {k: v for k, v in old.items() if k != user_field} == expected
