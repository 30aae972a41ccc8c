"""`siemgate log ...`: the tamper-evident event logs (docs/integrity.md)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from siemgate.accounts.actor import CLI
from siemgate.cli.common import find_account, services_for, state
from siemgate.cli.output import err
from siemgate.errors import BadRequest
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.services import Services

if TYPE_CHECKING:
    from siemgate.store.records import Account

log_app = typer.Typer(help="The signed, tamper-evident log of each event stream.", no_args_is_help=True)


@log_app.command("keys")
def keys(
    ctx: typer.Context,
    out: Path = typer.Option(None, "--out", help="Write the public key file here (for siemgate-verify --key)."),
) -> None:
    """Print the log's public keys with their fingerprints, as this server publishes them."""
    from siemgate.integrity.keys import LogKeys

    ring = LogKeys(state(ctx).settings()).public()
    lines = [
        f"key {k.verifier.key_id:08x}  {k.fingerprint}  "
        + ("active" if k.retired is None else f"retired at {k.retired}")
        + f"  {k.verifier.name}\n"
        for k in ring.keys
    ]
    sys.stdout.write("".join(lines) + ring.text())
    if out is not None:
        out.write_text(ring.text(), encoding="utf-8")
        err.print(f"Wrote {out}")


ACCOUNT_OPTION = typer.Option(None, "--account", "-a", help="Account uuid or name (default: the only one).")
FEATURE_OPTION = typer.Option(..., "--feature", "-f", help="The stream: signinattempts, itemusages or auditevents.")


def _feature(text: str) -> Feature:
    try:
        return Feature(text)
    except ValueError:
        raise BadRequest(f"--feature {text!r} is not a stream; use one of {', '.join(ALL_FEATURES)}") from None


@log_app.command("checkpoint")
def checkpoint(ctx: typer.Context, account: str = ACCOUNT_OPTION, feature: str = FEATURE_OPTION) -> None:
    """Integrate a stream's log and have its current tree signed now; print the signed checkpoint."""
    stream = _feature(feature)
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        cp = services.tlog.checkpoint(acct.id, stream)
        stored = services.store.last_log_checkpoint(acct.id, stream)
        sys.stdout.write(stored.note if stored is not None else cp.text())
        err.print(f"Signed {cp.describe()}")


@log_app.command("export")
def export(
    ctx: typer.Context,
    account: str = ACCOUNT_OPTION,
    feature: str = FEATURE_OPTION,
    out: Path = typer.Option(..., "--out", help="A new (or empty) directory for the bundle."),
) -> None:
    """Export a stream's log as a bundle that siemgate-verify checks offline with the public key."""
    stream = _feature(feature)
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        cutoff = services.clock() - services.retention.retention_ns(acct.id, stream)
        done, warning = services.tlog.export(acct.id, stream, out, cutoff)
    if warning:
        err.print(f"Warning: {warning}")
    err.print(
        f"Exported {done.manifest.origin}: {done.manifest.size} entries, {done.events} event bodies,"
        f" {done.checkpoints} checkpoint(s) to {out}\nVerify with: siemgate-verify bundle {out} --key <public key file>"
    )


@log_app.command("recover")
def recover(
    ctx: typer.Context,
    account: str = ACCOUNT_OPTION,
    feature: str = FEATURE_OPTION,
    reason: str = typer.Option(..., "--reason", help="Why (one line, printed by every verifier)."),
    recovery_secret_file: Path = typer.Option(
        ..., "--recovery-secret-file", help="The signer's recovery secret (never kept by the server)."
    ),
) -> None:
    """After a restore from backup: have the signer accept the stream's tree as the store holds it.

    Signed as a recovery statement that every verifier prints, and recorded in the account's audit
    stream; prints the signed statement and, after a blank line, the signed checkpoint of the
    restored tree (keep both; the witnesses' operators read the statement). Events between the
    backup and the restore are lost; the statement says how many."""
    stream = _feature(feature)
    try:
        secret = recovery_secret_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise BadRequest(f"cannot read --recovery-secret-file {recovery_secret_file}: {exc.strerror}") from None
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        done = services.tlog.recover(acct.id, stream, reason, secret)
        rec = done.recovery
        _record(
            services,
            acct,
            {
                "kind": "log-recovery",
                "feature": stream.value,
                "origin": done.origin,
                "previous_size": rec.previous_size,
                "restored_size": rec.restored_size,
                "signed_at": rec.time,
                "reason": rec.reason,
            },
        )
    sys.stdout.write(done.statement + "\n" + done.note)  # as `siemgate signer recover` prints them
    err.print(
        f"Recovered {done.origin}: the signed history of size {rec.previous_size} is replaced by the stored tree"
        f" of size {rec.restored_size}; recorded in the account's audit events; signed {done.checkpoint.describe()}"
    )


@log_app.command("resume")
def resume(
    ctx: typer.Context,
    account: str = ACCOUNT_OPTION,
    feature: str = FEATURE_OPTION,
    reason: str = typer.Option(..., "--reason", help="What was looked into (one line, kept in the audit events)."),
) -> None:
    """After an integrity error stopped a stream's log and it was looked into: check the log again.

    Every check runs again at once (entries dense, the tree signed only as an extension of what the
    signer signed), so a log still damaged, or refused again, is stopped again (exit 1). Recorded in
    the account's audit stream either way."""
    from siemgate.integrity.service import LogUnavailable

    stream = _feature(feature)
    with services_for(ctx) as services:
        acct = find_account(services.store, account)
        done = services.tlog.resume(acct.id, stream)
        _record(
            services,
            acct,
            {
                "kind": "log-resume",
                "feature": stream.value,
                "cleared": done.cleared,
                "stopped_again": done.stopped,
                "reason": reason,
            },
        )
    if done.stopped is not None:
        raise LogUnavailable(f"the log is stopped again: {done.stopped}")
    if done.checkpoint is not None:
        err.print(f"Resumed: {done.size} entries integrated; signed {done.checkpoint.describe()}")
    else:
        err.print(f"Resumed: {done.size} entries integrated; no checkpoint yet ({done.pending})")


def _record(services: Services, acct: Account, aux_info: dict[str, object]) -> None:
    """Record an operator's action on a stream's log in the account's audit stream."""
    services.audit.record(acct, CLI, "update", "account", object_uuid=acct.uuid, aux_info=aux_info)


@log_app.command("integrate")
def integrate_cmd(
    ctx: typer.Context, account: str = typer.Option(None, "--account", "-a", help="Only this account.")
) -> None:
    """Integrate every stream's log now (`serve` does it in the background), writing first the
    entries of events stored before the log existed (the backfill after an upgrade)."""
    from siemgate.integrity.tree import integrate, stream_label

    with services_for(ctx) as services:
        only = find_account(services.store, account).id if account else None
        for account_id, stream, head, size, stopped in services.store.log_overview():
            if only is not None and account_id != only:
                continue
            if stopped or head <= size:
                state = services.store.log_state(account_id, stream)
                note = f"stopped: {state.error}" if state is not None and state.error else "up to date"
                label = stream_label(services.store, account_id, stream)
                sys.stdout.write(f"{label}: {max(size, 0)} entries, {note}\n")
                continue
            began = time.monotonic()
            done = integrate(services.store, account_id, stream, services.clock())
            took = max(time.monotonic() - began, 1e-9)
            line = f"{stream_label(services.store, account_id, stream)}: {done.size} entries"
            line += f", backfilled {done.backfilled}" if done.backfilled else ""
            line += f", integrated {done.added} in {took:.1f} s ({done.added / took:,.0f}/s)"
            sys.stdout.write(line + (f"; INTEGRITY ERROR: {done.error}" if done.error else "") + "\n")
