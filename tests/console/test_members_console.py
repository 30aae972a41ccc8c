"""Managing members from the console, in real Chromium, through the identity model's admin API:
invite (a sgv_ code shown once; the invitee joins with it), change a role, remove a member,
revoke an invitation; the last owner is protected and the refusal is said in words."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from siemgate.model.ids import new_id

from .conftest import Console, allow_http_errors, screenshot, sign_in


def _role(console: Console, email: str) -> str | None:
    members = console.live.store.list_members(console.account.id)
    return next((m.role for m in members if m.user.email == email), None)


def test_a_member_sees_members_without_controls(page: Page, console: Console) -> None:
    sign_in(page, console, console.member_email)  # first in this module: still a member
    page.goto(console.url("/members"))
    page.wait_for_selector("body[data-loaded=true]")
    expect(page.locator("#members tbody tr")).to_have_count(2)
    assert page.get_by_role("button", name="Invite").count() == 0
    assert page.locator("#members select, #members button").count() == 0


def test_invite_change_role_remove_and_the_last_owner_is_kept(page: Page, console: Console) -> None:
    sign_in(page, console, console.owner_email)
    page.goto(console.url("/members"))
    page.wait_for_selector("body[data-loaded=true]")
    rows = page.locator("#members tbody tr")

    # Invite: the code is shown once, the invitation is pending, and the code lets them join.
    newcomer = f"nora-{new_id().lower()[:6]}@example.test"
    page.get_by_label("Email").fill(newcomer)
    page.get_by_label("Role", exact=True).select_option("administrator")
    page.get_by_role("button", name="Invite").click()
    code = page.locator("#invitation-code .code")
    expect(code).to_have_text(re.compile(r"^sgv_"))
    expect(page.locator("#invitations tbody tr", has_text=newcomer)).to_contain_text("pending")
    joined = httpx.post(
        f"{console.base_url}/api/admin/v1/join",
        json={"email": newcomer, "code": code.inner_text(), "name": "Nora New", "password": "a long new password"},
        timeout=10,
    )
    assert joined.status_code in (200, 201), joined.text
    assert _role(console, newcomer) == "administrator"
    page.reload()
    page.wait_for_selector("body[data-loaded=true]")
    expect(rows.filter(has_text=newcomer)).to_be_visible()

    # Change a role.
    page.get_by_label(f"Role of {console.member_email}").select_option("administrator")
    expect(page.locator("#status")).to_contain_text(f"{console.member_email} is now an administrator.")
    assert _role(console, console.member_email) == "administrator"

    # The last owner cannot step down: the API's refusal, in words, and nothing changes.
    allow_http_errors(page, 409)
    page.get_by_label(f"Role of {console.owner_email}").select_option("member")
    status = page.locator("#status")
    expect(status).to_contain_text("The account must keep at least one owner")
    assert "Conflict" not in status.inner_text()
    expect(page.get_by_label(f"Role of {console.owner_email}")).to_have_value("owner")
    assert _role(console, console.owner_email) == "owner"

    # Remove a member, after a confirmation.
    page.get_by_role("button", name=f"Remove {newcomer}").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(rows.filter(has_text=newcomer)).to_have_count(0)
    assert _role(console, newcomer) is None
    screenshot(page, "15-members-managed")


def test_a_pending_invitation_can_be_revoked(page: Page, console: Console) -> None:
    sign_in(page, console, console.owner_email)
    page.goto(console.url("/members"))
    page.wait_for_selector("body[data-loaded=true]")
    guest = f"gus-{new_id().lower()[:6]}@example.test"
    page.get_by_label("Email").fill(guest)
    page.get_by_role("button", name="Invite").click()
    row = page.locator("#invitations tbody tr", has_text=guest)
    expect(row).to_contain_text("pending")
    row.get_by_role("button", name=f"Revoke the invitation of {guest}").click()
    expect(row).to_contain_text("revoked")
