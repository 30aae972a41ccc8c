"""The service markers (tests/support/services.py), run in a child pytest with each service made
unreachable: marked tests skip saying how to start the service, `-m "not <service>"` leaves them out,
and under CI=true a skipped marked test fails the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.ports import free_port

TESTS = Path(__file__).resolve().parent
# For each service: the environment that makes it unreachable, and what the skip reason must say.
UNREACHABLE = {
    "postgres": ({"SIEMGATE_TEST_PG_URL": "postgresql://postgres@127.0.0.1:{port}/test"}, "start PostgreSQL"),
    "redis": ({"SIEMGATE_TEST_REDIS_URL": "redis://127.0.0.1:{port}/0"}, "start Redis"),
    "browser": ({"SIEMGATE_TEST_CHROMIUM": "/nonexistent/chromium"}, "apt-get install -y chromium"),
    "rsyslog": ({"PATH": "{empty}"}, "apt-get install -y rsyslog openssl"),
}
CONFTEST = """
import pytest

pytest_plugins = ["support.services"]


@pytest.fixture
def pg_url() -> str:
    return "postgresql://"


@pytest.fixture
def redis_url() -> str:
    return "redis://"


@pytest.fixture
def browser() -> str:
    return "chromium"


@pytest.fixture
def rsyslog() -> str:
    return "rsyslogd"
"""
TESTS_FILE = """
import pytest


@pytest.mark.{service}
def test_marked() -> None:
    pass


def test_through_the_fixture({fixture}) -> None:
    pass


def test_needing_nothing() -> None:
    pass
"""
FIXTURES = {"postgres": "pg_url", "redis": "redis_url", "browser": "browser", "rsyslog": "rsyslog"}


@pytest.fixture
def child(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.Pytester:
    pytester.makeini(f"[pytest]\npythonpath = {TESTS}\nmarkers =\n    postgres\n    redis\n    browser\n    rsyslog\n")
    pytester.makeconftest(CONFTEST)
    monkeypatch.delenv("CI", raising=False)
    # The child needs none of the installed plugins but xdist (loaded by name where used); loading
    # them all (schemathesis, hypothesis, ...) cost each child run about 2 s of start-up.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester


def _unreachable(service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    env, reason = UNREACHABLE[service]
    (tmp_path / "empty").mkdir(exist_ok=True)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(port=free_port(), empty=tmp_path / "empty"))
    return reason


@pytest.mark.parametrize("service", sorted(UNREACHABLE))
def test_an_absent_service_skips_its_tests_saying_how_to_start_it(
    child: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, service: str
) -> None:
    reason = _unreachable(service, monkeypatch, tmp_path)
    child.makepyfile(TESTS_FILE.format(service=service, fixture=FIXTURES[service]))
    result = child.runpytest_subprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == pytest.ExitCode.OK
    [skips] = [line for line in result.outlines if line.startswith("SKIPPED")]
    assert skips.startswith("SKIPPED [2]"), skips  # both for the same reason
    assert reason in skips, skips
    assert f"-m 'not {service}'" in skips, skips


@pytest.mark.parametrize(
    ("service", "workers"),
    # make test uses xdist
    [*((service, []) for service in sorted(UNREACHABLE)), ("postgres", ["-p", "xdist", "-n", "2"])],
)
def test_under_ci_a_skipped_marked_test_fails_the_run(
    child: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, service: str, workers: list[str]
) -> None:
    _unreachable(service, monkeypatch, tmp_path)
    monkeypatch.setenv("CI", "true")
    child.makepyfile(TESTS_FILE.format(service=service, fixture=FIXTURES[service]))
    result = child.runpytest_subprocess("-p", "no:cacheprovider", *workers)
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*tests needing a service were skipped under CI=true*", "*2 skipped*this run fails"])


def test_the_contributor_slice_deselects_every_marked_test_even_under_ci(
    child: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for service in UNREACHABLE:
        _unreachable(service, monkeypatch, tmp_path)
    monkeypatch.setenv("CI", "true")
    for service, fixture in FIXTURES.items():
        child.makepyfile(**{f"test_{service}": TESTS_FILE.format(service=service, fixture=fixture)})
    child.makepyfile(
        test_backends="""
import pytest

@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_backend(backend: str) -> None:
    pass
"""
    )
    deselect = "not postgres and not redis and not browser and not rsyslog"
    result = child.runpytest_subprocess("-m", deselect, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, deselected=9)
    assert result.ret == pytest.ExitCode.OK


def test_a_present_service_runs_its_tests_under_ci(child: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The browser stands for any service here: a stand-in executable that exists on PATH."""
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("SIEMGATE_TEST_CHROMIUM", os.environ.get("SHELL", "/bin/sh"))
    child.makepyfile(TESTS_FILE.format(service="browser", fixture="browser"))
    result = child.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
