"""Offboarding: deleting an account with everything it has — events, facets, its tamper-evident
log, integrations, tokens, ingest keys, alert rules and alerts, invitations, memberships (and the
people who belonged to it alone), archives — recorded in the server's log of operations, which
belongs to no account (docs/setup.md, "Deleting an account")."""

from __future__ import annotations

import contextlib
import errno
import getpass
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import orjson

from siemgate.accounts.actor import Actor
from siemgate.accounts.people import PeopleService
from siemgate.errors import BadRequest
from siemgate.model.features import ALL_FEATURES
from siemgate.store.base import Account, Store

log = logging.getLogger("siemgate.accounts")


class AccountDeletion:
    def __init__(self, store: Store, people: PeopleService, archive_root: Path, clock: Callable[[], int]) -> None:
        self.store = store
        self.people = people
        self.archive_root = archive_root
        self.clock = clock

    def archive_dir(self, account: Account) -> Path:
        return self.archive_root / account.uuid

    def plan(self, account: Account) -> dict[str, int]:
        """What deleting the account removes: events per stream, integrations, tokens, ingest keys,
        alert rules, members and archive files."""
        archives = self.archive_dir(account)
        return {
            **{f"events {f.value}": self.store.count_events(account.id, f) for f in ALL_FEATURES},
            "integrations": len(self.store.list_integrations(account.id)),
            "tokens": len(self.store.list_tokens(account.id)),
            "ingest keys": len(self.store.list_ingest_keys(account.id)),
            "alert rules": len(self.store.list_alert_rules(account.id)),
            "members": len(self.store.list_members(account.id)),
            "archive files": _count_files(archives),
        }

    def delete(self, actor: Actor, account: Account, confirm: str) -> dict[str, int]:
        """Delete the account for good. `confirm` must be the account's name, exactly; through the
        admin API only its owners may. Returns what was removed (per table, and archive files).
        Raises BadRequest (confirmation), Forbidden/NotFound (not an owner)."""
        if actor.user is not None:
            self.people.require(actor, account, "owner", "delete the account")
        if confirm != account.name:
            raise BadRequest(
                f"Bad Request: deleting an account cannot be undone; confirm with its name exactly ({account.name!r})"
            )
        plan = self.plan(account)
        who = actor.user.email if actor.user is not None else f"command line ({_login()})"
        return self.carry_out(account, who, orjson.dumps(plan).decode())

    def carry_out(self, account: Account, who: str, detail: str) -> dict[str, int]:
        """Delete the account's rows (store.delete_account_rows, recorded with `who` and `detail`)
        and then its archive folder; also carries on a deletion that was stopped. Returns what was
        removed (per table, and archive files)."""
        archives = self.archive_dir(account)
        removed = self.store.delete_account_rows(account.id, account.uuid, account.name, who, detail, self.clock())
        removed["archive files"] = remove_folder(archives)
        log.warning("account %s (%s) deleted by %s: %s", account.name, account.uuid, who, detail)
        return removed

    def finish_interrupted(self, ref: str) -> tuple[str, str, int] | None:
        """Finish a deletion of the account `ref` (uuid or name, as recorded in the log of
        operations) that was stopped (killed, a full disk): what is left of its rows, then its
        archive folder; (name, uuid, archive files removed), or None when no such deletion left
        anything."""
        for account, begun in self.store.pending_account_deletions():
            if ref in (account.uuid, account.name):
                removed = self.carry_out(account, begun.actor, begun.detail)
                return account.name, account.uuid, removed["archive files"]
        for op in self.store.list_operations(limit=100_000):
            if op.action != "delete account" or ref not in (op.account_uuid, op.account_name):
                continue
            folder = self.archive_root / op.account_uuid
            if folder.is_dir() or folder.is_symlink():
                files = remove_folder(folder)
                log.warning("removed the archive folder %s left by the deletion of account %s", folder, op.account_uuid)
                return op.account_name, op.account_uuid, files
        return None


REMOVE_ATTEMPTS = 5  # a folder that keeps being written to after that is an error


def _count_files(folder: Path) -> int:
    """The files under `folder` (symlinks not followed); 0 when it is not a folder."""
    if folder.is_symlink() or not folder.is_dir():
        return 0
    return sum(len(files) for _, _, files in os.walk(folder))


def remove_folder(folder: Path) -> int:
    """Remove `folder` and what it holds, tolerating another process removing it at the same time
    (a server finishing a stopped deletion at start while an operator runs `account delete`
    again): what the other removed first is not an error. A symlink in its place is removed
    itself, never what it points to. A file created in a folder after it was emptied (a retention
    run writing its next day: it removes what it wrote once it sees the deletion) makes the
    removal start again, up to REMOVE_ATTEMPTS times. Returns the files this process saw there.
    Raises OSError for anything else (permissions, a read-only disk)."""
    if folder.is_symlink():
        with contextlib.suppress(FileNotFoundError):
            folder.unlink()
        return 0
    files = _count_files(folder)

    def gone_already(_func: object, _path: str, info: tuple[type[BaseException], BaseException, object]) -> None:
        if not isinstance(info[1], FileNotFoundError):
            raise info[1]

    for attempt in range(1, REMOVE_ATTEMPTS + 1):
        try:
            shutil.rmtree(folder, onerror=gone_already)
            return files
        except OSError as exc:
            if exc.errno != errno.ENOTEMPTY or attempt == REMOVE_ATTEMPTS:
                raise
            log.info("%s: a file was written while it was removed (%s); removing it again", folder, exc)
    return files


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (containers)
        return "unknown user"
