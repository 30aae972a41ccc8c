"""Fixtures of the admin tests: a site (support.admin.Site) on a server the module shares, or on a
server of its own for tests that move the clock or sign in (console sign-ins are limited per IP);
`siemgate` on the command line (`cli`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.admin import Site
from support.servers import LiveServer, running_server

from .cli_runner import Cli


@pytest.fixture(scope="module")
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, server_backend: str
) -> Iterator[LiveServer]:
    """One server for the module's tests that do not move the clock (each makes its own site);
    a module sets `SHARED_SERVER_SETTINGS` for settings of its own."""
    settings: dict[str, Any] = getattr(request.module, "SHARED_SERVER_SETTINGS", {})
    with running_server(tmp_path_factory.mktemp("shared"), server_backend, **settings) as live:
        yield live


@pytest.fixture
def site(shared: LiveServer) -> Site:
    return Site(shared)


@pytest.fixture
def own_site(make_server: Callable[..., LiveServer]) -> Site:
    """A site on a server of its own: for moving the clock, and for sign-ins (limited per IP)."""
    return Site(make_server())


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "data")
