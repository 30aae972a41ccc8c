"""The console's forms when its script is not running (turned off, blocked by an extension or a
proxy, or not loaded yet when a password manager fills and submits): a form must never go to the
server by GET, which would put a password, a token name or anything typed into the address (browser
history, a proxy's access log). Every form posts to one page that reads nothing and says why."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from .conftest import PASSWORD, Console

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "siemgate" / "console" / "templates"
FORM = re.compile(r"<form\b[^>]*>")


def _block_script(route: Route) -> None:
    route.abort()


@pytest.fixture
def context(browser: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    """A browser context whose pages run no script of the console: scripts off, or on with every
    console script failing to load."""
    made = browser.new_context(java_script_enabled=request.param != "script off")
    made.set_default_timeout(15_000)
    if request.param == "script blocked":
        made.route(re.compile(r"/console/static/js/"), _block_script)
    try:
        yield made
    finally:
        made.close()


@pytest.mark.parametrize("context", ["script off", "script blocked"], indirect=True)
def test_signing_in_without_the_script_sends_no_password_in_an_address(
    context: BrowserContext, console: Console
) -> None:
    page: Page = context.new_page()
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url))
    page.goto(f"{console.base_url}/console/sign-in")
    page.get_by_label("Email").fill(console.owner_email)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Sign in").click()
    reply = navigation.value
    assert reply is not None and reply.status == 400
    expect(page).to_have_url(f"{console.base_url}/console/needs-script")
    expect(page.get_by_role("heading")).to_have_text("The console needs JavaScript")
    leaked = [url for url in sent if "password" in url or "horse" in url or "%40" in url or "@" in url]
    assert leaked == []


def test_every_console_form_posts_to_the_page_that_changes_nothing() -> None:
    """Forms the script sends: each posts to /console/needs-script (the dialog's form closes it)."""
    forms = {
        f"{path.name}: {tag}": tag
        for path in sorted(TEMPLATES.glob("*.html"))
        for tag in FORM.findall(path.read_text())
        if tag != '<form method="dialog">'
    }
    assert len(forms) >= 10
    wanted = ('method="post"', 'action="{{ prefix }}/needs-script"')
    wrong = [where for where, tag in forms.items() if not all(part in tag for part in wanted)]
    assert wrong == []
