"""Every console page wraps instead of scrolling sideways, at 1440, 1280 and 390 px, with the long
values real accounts have (IPv6 addresses, long e-mail addresses and names, vault ids). A failure
names the elements that stick out. Screenshots of every page at each width go to
test-artifacts/console/layout-*.png."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from siemgate.accounts.actor import CLI
from siemgate.auth.passwords import hash_password
from siemgate.config import load_settings
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.simulate.runner import simulate_history
from siemgate.simulate.world import build_world
from support.clocks import Clock
from support.events import auditevent, itemusage, signin
from support.servers import start_server, stop_server
from support.stores import make_store

from .conftest import PASSWORD, Console, allow_http_errors, screenshot, sign_in

S = 1_000_000_000
WIDTHS = (1440, 1280, 390)
LONG_NAME = "Maximiliane Alexandra von Hohenzollern-Sigmaringen-Württemberg"
LONG_EMAIL = "maximiliane.alexandra.von-hohenzollern-sigmaringen@security-operations.eu-central.example-holdings.com"
IPV6 = "2001:0db8:85a3:0000:0000:8a2e:0370:7334"
LONG_INTEGRATION = "Splunk Enterprise Security - production heavy forwarder cluster eu-central-1 (Frankfurt)"
LONG_TOKEN = "splunk-heavy-forwarder-eu-central-1a-prod-0001.security-operations.example-holdings.com"
LONG_APP = "1Password for Windows (Enterprise deployment, managed by Intune, channel: beta)"


def _long_events(now: int) -> dict[Feature, list[dict[str, object]]]:
    """Events carrying the longest values a real account shows: IPv6, long addresses and names."""
    user = {"uuid": new_id(), "name": LONG_NAME, "email": LONG_EMAIL, "user_type": "user"}
    client = {"app_name": LONG_APP, "app_version": "81024002", "ip_address": IPV6}
    signins = []
    for i in range(12):
        event = signin(now - (600 - i) * S, category="credentials_failed", type="password_secret_bad", client=client)
        event["target_user"] = {**user, "user_account_uuid": new_id()}
        signins.append(event)
    items = [itemusage(now - (500 - i) * S, user=user, client=client, vault_uuid=new_id(lower=True)) for i in range(5)]
    audits = [
        auditevent(
            now - (400 - i) * S,
            actor_details=user,
            session={"uuid": new_id(), "login_time": "2026-01-01T00:00:00Z", "device_uuid": new_id(), "ip": IPV6},
            aux_info=f"{LONG_EMAIL} {LONG_INTEGRATION}",
        )
        for i in range(5)
    ]
    return {Feature.SIGNINATTEMPTS: signins, Feature.ITEMUSAGES: items, Feature.AUDITEVENTS: audits}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    data_dir = tmp_path_factory.mktemp("console-layouts")
    settings = load_settings(data_dir=data_dir, alerts_enabled=True)
    live, server, thread = start_server(settings, make_store("sqlite", data_dir), Clock())
    services = live.services
    owner_email = f"olivia.ottilie.owner-of-the-account@{data_dir.name.replace('_', '-')}.example-holdings.com"
    account, owner = services.people.create_account(
        CLI, "Example Holdings Europe - Security Operations Centre", owner_email, LONG_NAME, None
    )
    assert owner is not None
    services.store.set_password(owner.id, hash_password(PASSWORD))
    services.people.add_member(CLI, account, LONG_EMAIL, LONG_NAME, "administrator")
    world = build_world(account.uuid, account.name, 20, seed=5)
    simulate_history(services.writer, account.id, world, days=2, end_ns=live.clock(), seed=5)
    for feature, events in _long_events(time.time_ns()).items():
        services.writer.write(account.id, feature, events)
    integration = services.store.create_integration(
        account.id, new_id(), "splunk", LONG_INTEGRATION, LONG_EMAIL * 2, live.clock()
    )
    features = [Feature.SIGNINATTEMPTS, Feature.ITEMUSAGES, Feature.AUDITEVENTS]
    services.tokens.issue(account, integration, LONG_TOKEN, features, None)
    services.tokens.issue(account, integration, f"{LONG_TOKEN}-2", features, 3600 * S)
    try:
        yield Console(live, account, owner_email, LONG_EMAIL)
    finally:
        stop_server(live, server, thread)


# Elements wider than the viewport, or scrolling sideways inside it: the deepest ones, named.
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (el.classList.length ? '.' + [...el.classList].join('.') : '');
  const path = (el) => {
    const parts = [];
    for (let e = el; e && e !== document.body; e = e.parentElement) parts.unshift(name(e));
    return parts.join(' > ');
  };
  const found = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('[hidden], dialog:not([open]), .visually-hidden')) continue;
    const r = el.getBoundingClientRect();
    if ((r.width === 0 && r.height === 0) || r.right <= 0) continue;  // hidden, or parked off-screen (skip link)
    const style = getComputedStyle(el);
    const scrolls = ['auto', 'scroll'].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1
      && el.tagName !== 'TEXTAREA';
    const wide = r.right > width + 1;
    if (!(scrolls || wide)) continue;
    const inner = [...el.children].some((c) => c.getBoundingClientRect().right > width + 1);
    if (wide && inner) continue;  // name the deepest element only
    found.push(`${path(el)} (${scrolls ? 'scrolls sideways by ' + (el.scrollWidth - el.clientWidth)
      : 'reaches ' + Math.round(r.right)}px): ${(el.textContent || '').trim().slice(0, 60)}`);
  }
  const extra = document.documentElement.scrollWidth - width;
  return {extra, found: found.slice(0, 12)};
}"""


def _integration_uuid(console: Console) -> str:
    return next(i.uuid for i in console.live.store.list_integrations(console.account.id) if i.name == LONG_INTEGRATION)


PAGES = {
    "sign-in": "/console/sign-in",
    "join": "/console/join",
    "security": "/console/security",
    "integrations": "{account}/integrations",
    "integration-new": "{account}/integrations/new?type=splunk",
    "integration": "{account}/integrations/{integration}",
    "explorer-signins": "{account}/events?feature=signinattempts",
    "explorer-items": "{account}/events?feature=itemusages",
    "explorer-audit": "{account}/events?feature=auditevents",
    "dashboard-signins": "{account}/dashboards/signins",
    "dashboard-items": "{account}/dashboards/items",
    "dashboard-audit": "{account}/dashboards/audit",
    "alerts": "{account}/alerts",
    "members": "{account}/members",
    "not-found": "/console/no-such-page",
}


@pytest.mark.parametrize("name", list(PAGES))
def test_no_page_scrolls_sideways_with_long_values(page: Page, console: Console, name: str) -> None:
    allow_http_errors(page, 404)
    if name not in ("sign-in", "join"):
        sign_in(page, console, console.owner_email)
    url = console.base_url + PAGES[name].format(
        account=f"/console/accounts/{console.account.uuid}", integration=_integration_uuid(console)
    )
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(url)
        page.wait_for_selector("body[data-loaded=true]")
        if name.startswith("explorer"):
            page.wait_for_selector("#events-table[aria-busy=false]")
            page.locator("#events-table tbody tr:not(.json-row)").first.wait_for()
        if name.startswith("dashboard"):
            page.wait_for_selector("body[data-ready=true]")
        result = page.evaluate(OVERFLOWING)
        screenshot(page, f"layout-{name}-{width}")
        if result["extra"] > 0 or result["found"]:
            problems.append(f"at {width}px the page is {result['extra']}px too wide: " + "; ".join(result["found"]))
    assert not problems, "\n".join(problems)
