"""The console's identity pages in a real browser: turning two-factor on and signing in with its
code, the banner of invitations with accept, and joining as someone new with an invitation code
(docs/security.md)."""

from __future__ import annotations

import re
import time

import pyotp
from playwright.sync_api import Page, expect

from siemgate.accounts.actor import CLI, Actor
from siemgate.auth.passwords import hash_password
from siemgate.model.ids import new_id

from .conftest import PASSWORD, Console, allow_http_errors, screenshot, sign_in


def _person(console: Console, role: str = "member") -> str:
    services = console.live.services
    email = f"p-{new_id()[:8].lower()}@acme.example"
    member = services.people.add_member(CLI, console.account, email, "Pat Person", role)
    services.store.set_password(member.user.id, hash_password(PASSWORD))
    return email


def test_two_factor_is_turned_on_and_then_asked_at_sign_in(page: Page, console: Console) -> None:
    email = _person(console)
    sign_in(page, console, email)
    page.goto(f"{console.base_url}/console/security")
    page.get_by_role("button", name="Turn on").click()
    secret = page.locator("#totp-secret").inner_text()
    expect(page.locator("#totp-uri")).to_have_attribute("href", re.compile(r"^otpauth://totp/"))
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.locator("#two-factor").get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    codes = page.locator("pre.codes")
    expect(codes).to_be_visible()
    assert len(codes.inner_text().split()) == 10
    screenshot(page, "security-two-factor-on")
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(re.compile(r"/console/sign-in"))

    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#second-factor-form")).to_be_visible()
    screenshot(page, "sign-in-second-factor")
    page.get_by_label("Code").fill(pyotp.TOTP(secret).at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/integrations$"))


def test_an_invitation_is_accepted_from_the_banner(page: Page, console: Console) -> None:
    services = console.live.services
    email = f"e-{new_id()[:8].lower()}@else.example"
    other, person = services.people.create_account(CLI, f"Elsewhere {new_id()[:6]}", email, "Eli Else", None)
    assert person is not None
    services.store.set_password(person.id, hash_password(PASSWORD))
    code, _ = services.invitations.invite(CLI, console.account, person.email, "administrator")
    page.goto(f"{console.base_url}/console/")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/accounts/{other.uuid}/integrations$"))
    banner = page.get_by_role("region", name="Invitation")
    expect(banner).to_contain_text("Acme Corp")
    expect(banner).to_contain_text("administrator")
    screenshot(page, "invitation-banner")
    banner.get_by_label("Invitation code").fill(code)
    banner.get_by_role("button", name="Accept").click()
    expect(page).to_have_url(re.compile(rf"/accounts/{console.account.uuid}/integrations$"))
    assert services.store.get_member(console.account.id, person.id).role == "administrator"


def test_someone_new_joins_with_an_invitation_code(page: Page, console: Console) -> None:
    services = console.live.services
    email = f"n-{new_id()[:8].lower()}@acme.example"
    code, _ = services.invitations.invite(CLI, console.account, email, "member")
    page.goto(f"{console.base_url}/console/join")
    page.get_by_label("Email the invitation was sent to").fill(email)
    page.get_by_label("Invitation code").fill(code)
    page.get_by_label("Your name").fill("Nora New")
    page.get_by_label("Password").fill("a password of my own")
    page.get_by_role("button", name="Join").click()
    expect(page).to_have_url(re.compile(rf"/accounts/{console.account.uuid}/integrations$"))
    assert services.store.get_user(email).name == "Nora New"


def test_a_wrong_password_is_said_in_place_not_taken_for_a_sign_out(page: Page, console: Console) -> None:
    """A wrong current password (changing the password, turning two-factor on) answered 401, which
    the console takes for an ended session: it went to the sign-in page and lost what was typed.
    The API now answers 403 naming the field; the console says so in place, keeps the form, and
    the person is still signed in."""
    allow_http_errors(page, 403)
    email = _person(console)
    sign_in(page, console, email)
    page.goto(f"{console.base_url}/console/security")
    page.get_by_label("Current password").fill("not my password at all")
    page.get_by_label("New password (at least 10 characters)").fill("a brand new passphrase")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-error")).to_have_text("The password is not right; nothing was changed.")
    expect(page).to_have_url(re.compile(r"/console/security$"))
    expect(page.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("New password (at least 10 characters)")).to_have_value("a brand new passphrase")

    page.get_by_role("button", name="Turn on").click()
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.locator("#two-factor").get_by_label("Your password").fill("not my password at all")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#two-factor .error")).to_have_text("The password is not right; nothing was changed.")
    expect(page).to_have_url(re.compile(r"/console/security$"))
    page.locator("#two-factor").get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("pre.codes")).to_be_visible()


def test_turning_two_factor_off_takes_a_code_as_well_as_the_password(page: Page, console: Console) -> None:
    """Turning two-factor off asks for a code of the app or a recovery code beside the password
    (a stolen session and a phished password are not enough): without one the console says so,
    a wrong one is said in place with nothing changed, and a recovery code turns it off."""
    allow_http_errors(page, 403)
    email = _person(console)
    services = console.live.services
    user = services.store.get_user(email)
    secret = services.personal.begin_two_factor(user).secret
    actor = Actor(user, "api_key")
    recovery = services.personal.confirm_two_factor(actor, user, pyotp.TOTP(secret).now(), PASSWORD)
    page.goto(f"{console.base_url}/console/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Code").fill(recovery[0])
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/integrations$"))
    page.goto(f"{console.base_url}/console/security")
    box = page.locator("#two-factor")
    box.get_by_label("Your password").fill(PASSWORD)
    box.get_by_role("button", name="Turn off").click()
    expect(box.locator(".error")).to_have_text("Enter a code from your authenticator app, or a recovery code.")
    box.get_by_label("Code from the app, or a recovery code").fill(recovery[0])  # used to sign in
    box.get_by_role("button", name="Turn off").click()
    expect(box.locator(".error")).to_contain_text("nothing was changed")
    expect(box).to_contain_text("On. 9 recovery code(s) left.")
    screenshot(page, "security-two-factor-off-wrong-code")
    box.get_by_label("Code from the app, or a recovery code").fill(recovery[1])
    box.get_by_role("button", name="Turn off").click()
    expect(box.get_by_role("button", name="Turn on")).to_be_visible()
    assert not services.people.has_two_factor(user)
