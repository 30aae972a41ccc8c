"""The console in a real browser: Debian's Chromium driven by Playwright (never Playwright's own
browser download), against a live server holding a few days of simulated activity.

Each test gets a fresh browser context; any console error or uncaught exception in a page fails the
test (`page.allowed_errors` lists the few a test provokes on purpose). Screenshots go to
test-artifacts/console/ for people to look at."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, expect, sync_playwright

from siemgate.accounts.actor import CLI
from siemgate.auth.passwords import hash_password
from siemgate.config import load_settings
from siemgate.simulate.runner import simulate_history
from siemgate.simulate.world import build_world
from siemgate.store.base import Account
from support.clocks import Clock
from support.loops import SESSION_LOOPS
from support.servers import LiveServer, start_server, stop_server
from support.services import CHROMIUM
from support.stores import make_store

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
PASSWORD = "correct horse battery staple"
TIMEZONE = "Europe/Berlin"  # not the server's UTC: the pages must convert
HISTORY_DAYS = 5  # inside the dashboards' default 7-day window
# Chromium reports every 4xx reply to fetch() as a console error; tests that provoke one allow it.
HTTP_ERROR = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")


@dataclass
class Console:
    """A live server with one simulated account: an owner and a member who can sign in."""

    live: LiveServer
    account: Account
    owner_email: str
    member_email: str

    @property
    def base_url(self) -> str:
        return self.live.base_url

    def url(self, tail: str = "") -> str:
        return f"{self.live.base_url}/console/accounts/{self.account.uuid}{tail}"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    data_dir = tmp_path_factory.mktemp("console-server")
    settings = load_settings(data_dir=data_dir)
    live, server, thread = start_server(settings, make_store("sqlite", data_dir), Clock())
    services = live.services
    suffix = data_dir.name.replace("_", "-")
    owner_email, member_email = f"olivia@{suffix}.example", f"mia@{suffix}.example"
    account, owner = services.people.create_account(CLI, "Acme Corp", owner_email, "Olivia Owner", None)
    assert owner is not None
    member = services.people.add_member(CLI, account, member_email, "Mia Member", "member")
    digest = hash_password(PASSWORD)
    for user in (owner, member.user):
        services.store.set_password(user.id, digest)
    world = build_world(account.uuid, account.name, 40, seed=3)
    simulate_history(services.writer, account.id, world, days=HISTORY_DAYS, end_ns=live.clock(), seed=3)
    try:
        yield Console(live, account, owner_email, member_email)
    finally:
        stop_server(live, server, thread)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    home = tmp_path_factory.mktemp("chromium-home")  # else Chromium writes ~/.config/chromium
    env: dict[str, str | float | bool] = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env=env)
        loop = asyncio._get_running_loop()
        if loop is not None:
            SESSION_LOOPS.add(loop)  # Playwright's own, running while the browser is open
        try:
            yield launched
        finally:
            launched.close()
            SESSION_LOOPS.discard(loop)


class Watched:
    """What a page reported: console errors and uncaught exceptions."""

    def __init__(self) -> None:
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.allowed_statuses: set[int] = set()

    def unexpected(self) -> list[str]:
        found = list(self.page_errors)
        for text in self.console_errors:
            match = HTTP_ERROR.search(text)
            if match and int(match.group(1)) in self.allowed_statuses:
                continue
            found.append(text)
        return found


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True, timezone_id=TIMEZONE, locale="en-GB"
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console.base_url)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    watched = Watched()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.console_errors.append(message.text)

    def on_page_error(error: Error) -> None:
        watched.page_errors.append(str(error))

    pg.on("console", on_console)
    pg.on("pageerror", on_page_error)
    pg.watched = watched  # type: ignore[attr-defined]
    yield pg
    context.close()
    assert watched.unexpected() == [], f"the console reported errors: {watched.unexpected()}"


def allow_http_errors(page: Page, *statuses: int) -> None:
    page.watched.allowed_statuses.update(statuses)  # type: ignore[attr-defined]


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, console: Console, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{console.base_url}/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/integrations$"))
    page.wait_for_selector("body[data-loaded=true]")
