"""Shared CLI plumbing: settings from the global options, account lookup, durations."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from siemgate.errors import BadRequest, NotFound
from siemgate.model import durations
from siemgate.model.features import Feature, parse_features

if TYPE_CHECKING:
    from siemgate.config import Settings
    from siemgate.services import Services
    from siemgate.store.base import Account, Store


class CliState:
    """Options given before the command (`siemgate --data-dir X token list`)."""

    def __init__(self, data_dir: Path | None) -> None:
        self.data_dir = data_dir

    def settings(self, **overrides: object) -> Settings:
        from siemgate.config import load_settings  # pydantic-settings loads when a command runs (start-up time)

        return load_settings(**{"data_dir": self.data_dir, **overrides})


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliState) else CliState(None)


@contextmanager
def services_for(ctx: typer.Context) -> Iterator[Services]:
    # every service's module loads when a command runs, not when `siemgate` starts (start-up time)
    from siemgate.composition.wiring import open_services

    services = open_services(state(ctx).settings())
    try:
        yield services
    finally:
        services.close()


@contextmanager
def store_for(ctx: typer.Context) -> Iterator[Store]:
    """The store alone, for a command that only reads it: no service is built, so none of their
    modules load (docs/benchmarks.md, "CLI start-up")."""
    from siemgate.composition.stores import open_data_store

    store = open_data_store(state(ctx).settings())
    try:
        yield store
    finally:
        store.close()


def find_account(store: Store, uuid_or_name: str | None) -> Account:
    """The account named (uuid or name); when None, the only account. Raises BadRequest/NotFound."""
    if uuid_or_name:
        return store.get_account(uuid_or_name)
    accounts = store.list_accounts()
    if len(accounts) == 1:
        return accounts[0]
    if not accounts:
        raise NotFound("there are no accounts yet: create one with `siemgate account create NAME`")
    names = ", ".join(a.name for a in accounts)
    raise BadRequest(f"there are several accounts ({names}); choose one with --account")


def features_option(text: str | None) -> tuple[Feature, ...]:
    try:
        return parse_features(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def parse_expiry(text: str) -> int | None:
    """A token expiry: 'never' -> None; '30d', '90d', '12h', '2w', '3mo', '30min' -> nanoseconds."""
    try:
        return durations.parse_expiry(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def read_password(password_file: Path | None, password_stdin: bool) -> str | None:
    """A password from a file, from stdin, or None when neither is given."""
    if password_file is not None and password_stdin:
        raise typer.BadParameter("give --password-file or --password-stdin, not both")
    if password_file is not None:
        return password_file.read_text().rstrip("\n")
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return None
