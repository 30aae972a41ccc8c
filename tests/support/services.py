"""Tests that need a service of the machine: PostgreSQL, Redis, Chromium (`browser`) or rsyslogd.

A test needs a service when it carries the service's marker, which is added at collection to every
test that uses a fixture standing for the service (`pg_url`, `redis_url`, `browser`, `rsyslog`) or
is parametrized with the "postgres" backend, so no test can forget it. When the service is absent,
such a test is skipped with a reason saying how to start it, and a contributor can leave them all
out with `-m "not postgres and not redis and not browser and not rsyslog"` (docs/testing.md).

Under CI (`CI=true`) everything must run: a marked test that was skipped makes the run fail.

tests/conftest.py imports the hooks below, which pytest registers from there.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest
import redis

from .stores import PG_URL, REDIS_URL

CHROMIUM = os.environ.get("SIEMGATE_TEST_CHROMIUM", "/usr/bin/chromium")
DESELECT_ALL = "not postgres and not redis and not browser and not rsyslog"


def _postgres() -> str | None:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {PG_URL} does not answer ({str(exc).strip().splitlines()[0]})"
    return None


def _redis() -> str | None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS_URL} does not answer ({exc})"
    return None


def _chromium() -> str | None:
    if shutil.which(CHROMIUM) is None:
        return f"Chromium is not installed at {CHROMIUM}"
    return None


def _rsyslog() -> str | None:
    missing = [tool for tool in ("rsyslogd", "openssl") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not found on PATH" if missing else None


@dataclass(frozen=True)
class Service:
    marker: str
    absent: Callable[[], str | None]  # why the service cannot be used here, or None
    how: str  # how to start it or point the tests at it

    def reason(self) -> str | None:
        why = _absent(self.marker)
        if why is None:
            return None
        return f"{why}: {self.how}, or leave these tests out with -m 'not {self.marker}'"


SERVICES = {
    s.marker: s
    for s in (
        Service(
            "postgres",
            _postgres,
            "start PostgreSQL (pg_ctlcluster 15 main start; .ci/run does) with a database `test` that "
            "user postgres reaches with trust auth, or set SIEMGATE_TEST_PG_URL",
        ),
        Service(
            "redis",
            _redis,
            "start Redis (redis-server --daemonize yes --port 6379; .ci/run does), or set SIEMGATE_TEST_REDIS_URL",
        ),
        Service("browser", _chromium, "apt-get install -y chromium (make test does), or set SIEMGATE_TEST_CHROMIUM"),
        Service("rsyslog", _rsyslog, "apt-get install -y rsyslog openssl (make test does)"),
    )
}
# Fixtures that stand for a service: a test using one (directly or through another fixture) needs it.
FIXTURES = {"pg_url": "postgres", "redis_url": "redis", "browser": "browser", "rsyslog": "rsyslog"}


@functools.cache
def _absent(marker: str) -> str | None:
    """Looked at once per process: the first test that needs the service pays for the probe."""
    return SERVICES[marker].absent()


def needed(item: pytest.Item) -> set[str]:
    """The services `item` needs: its markers, its fixtures, and a "postgres" backend parameter."""
    found = {mark.name for mark in item.iter_markers() if mark.name in SERVICES}
    found.update(FIXTURES[name] for name in getattr(item, "fixturenames", ()) if name in FIXTURES)
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "postgres" in callspec.params.values():
        found.add("postgres")
    return found


def ci() -> bool:
    return os.environ.get("CI") == "true"


def pytest_configure(config: pytest.Config) -> None:
    if ci():
        config.pluginmanager.register(CiSkips(), "siemgate-ci-skips")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker in sorted(needed(item)):
            item.add_marker(marker)


@pytest.hookimpl(tryfirst=True)  # before the test's fixtures are set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in sorted(needed(item)):
        reason = SERVICES[marker].reason()
        if reason is not None:
            pytest.skip(reason)


class CiSkips:
    """Under CI=true: a skipped test that needs a service fails the run, and the summary lists it."""

    def __init__(self) -> None:
        self.skipped: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail") and any(m in report.keywords for m in SERVICES):
            self.skipped.append(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.skipped and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.skipped:
            terminalreporter.section("tests needing a service were skipped under CI=true", red=True)
            for nodeid in self.skipped:
                terminalreporter.line(nodeid)
            terminalreporter.line(f"{len(self.skipped)} skipped: CI runs every test, so this run fails")
