"""`siemgate log ...`: the tamper-evident event logs (docs/integrity.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from siemgate.cli.common import find_account, services_for, state
from siemgate.cli.output import err
from siemgate.errors import BadRequest
from siemgate.integrity.keys import LogKeys
from siemgate.model.features import ALL_FEATURES, Feature

log_app = typer.Typer(help="The signed, tamper-evident log of each event stream.", no_args_is_help=True)


@log_app.command("keys")
def keys(
    ctx: typer.Context,
    out: Path = typer.Option(None, "--out", help="Write the public key file here (for siemgate-verify --key)."),
) -> None:
    """Print the log's public keys with their fingerprints, as this server publishes them."""
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
