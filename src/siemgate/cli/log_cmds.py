"""`siemgate log ...`: the tamper-evident event logs (docs/integrity.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from siemgate.cli.common import state
from siemgate.cli.output import err
from siemgate.integrity.keys import LogKeys

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
