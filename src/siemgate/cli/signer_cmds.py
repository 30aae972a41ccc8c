"""`siemgate signer ...`: the log signer, its own process with its own key file, state file and
secrets (docs/integrity.md, "The signer"). It never opens siemgate's database."""

from __future__ import annotations

import base64
import binascii
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from siemgate.cli.listen import host_port, serve_until_stopped
from siemgate.cli.output import err
from siemgate.errors import ConfigError
from siemgate.model.timestamps import format_ns

if TYPE_CHECKING:
    from siemgate.tlog.keys import SignerKeyring
    from siemgate.tlog.signer import Signer

signer_app = typer.Typer(help="The log signer: keys, state, and its loopback HTTP API.", no_args_is_help=True)

KEY_FILE = typer.Option(..., "--key-file", envvar="SIEMGATE_SIGNER_KEY_FILE", help="Private key file (0600).")
STATE_FILE = typer.Option(
    ...,
    "--state-file",
    envvar="SIEMGATE_SIGNER_STATE_FILE",
    help="Signer state file (0600), created by `signer init --state-file` (or `signer serve --new-state`).",
)
SECRET_FILE = typer.Option(
    ..., "--secret-file", envvar="SIEMGATE_SIGNER_SECRET_FILE", help="File holding the shared signing secret."
)
RECOVERY_SECRET_FILE = typer.Option(
    None,
    "--recovery-secret-file",
    envvar="SIEMGATE_SIGNER_RECOVERY_SECRET_FILE",
    help="File holding the operator's recovery secret (enables POST /v1/recover).",
)


def _keyring(path: Path) -> SignerKeyring:
    from siemgate.tlog.keys import KeyFileError, SignerKeyring

    try:
        return SignerKeyring.load(path)
    except KeyFileError as exc:
        raise ConfigError(str(exc)) from None


def _read_secret(path: Path, what: str) -> str:
    from siemgate.tlog.signer_http import check_secret

    try:
        return check_secret(path.read_text(encoding="utf-8"), what)
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _print_keys(ring: SignerKeyring) -> None:
    from siemgate.tlog.keys import fingerprint

    lines = [
        f"key {k.key_id}  {fingerprint(k.signer.verifier().public_key)}  "
        + ("active" if k.retired is None else f"retired {format_ns(k.retired * 1_000_000_000)}")
        + f"  created {format_ns(k.created * 1_000_000_000)}\n"
        for k in ring.keys
    ]
    sys.stdout.write(f"Log keys of {ring.name}:\n" + "".join(lines) + ring.public().text())


@signer_app.command("init")
def init(
    key_file: Path = KEY_FILE,
    name: str = typer.Option(..., "--name", help="Log name: <public host>/siemgate, the prefix of every origin."),
    secret_file: Path = typer.Option(None, "--secret-file", help="Also write a new signing secret here (0600)."),
    recovery_secret_file: Path = typer.Option(
        None, "--recovery-secret-file", help="Also write a new recovery secret here (0600)."
    ),
    state_file: Path = typer.Option(
        None, "--state-file", envvar="SIEMGATE_SIGNER_STATE_FILE", help="Also create the empty state file (0600)."
    ),
) -> None:
    """Create the signer's key file with one new Ed25519 key, and optionally its secrets and state file."""
    from siemgate.tlog.keys import KeyFileError, SignerKeyring, write_private

    for path in (secret_file, recovery_secret_file, state_file):
        if path is not None and path.exists():
            raise ConfigError(f"{path} already exists; remove it or choose another path")
    try:
        ring = SignerKeyring.create(key_file, name)
    except (KeyFileError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    for path in (secret_file, recovery_secret_file):
        if path is not None:
            write_private(path, secrets.token_urlsafe(32) + "\n")
    if state_file is not None:
        _open_signer(key_file, state_file, new_state=True).close()
    err.print(f"Created {key_file} (keep it 0600, readable only by the signer's user).")
    _print_keys(ring)


@signer_app.command("keys")
def keys(
    key_file: Path = KEY_FILE,
    out: Path = typer.Option(None, "--out", help="Write the public key file here (for siemgate-verify --key)."),
) -> None:
    """Print the public keys with their fingerprints; --out writes the public key file."""
    ring = _keyring(key_file)
    _print_keys(ring)
    if out is not None:
        out.write_text(ring.public().text(), encoding="utf-8")
        err.print(f"Wrote {out}")


@signer_app.command("rotate")
def rotate(key_file: Path = KEY_FILE) -> None:
    """Add a new active key. Both keys sign until the old one is retired; restart the signer."""
    ring = _keyring(key_file).rotated()
    ring.save(key_file)
    err.print("Added a key; publish the new public key file, then retire the old key.")
    _print_keys(ring)


@signer_app.command("retire")
def retire(key_id: str = typer.Argument(..., help="Key id (8 hex digits)."), key_file: Path = KEY_FILE) -> None:
    """Stop signing with a key; it stays published so its old checkpoints keep verifying."""
    from siemgate.tlog.keys import KeyFileError

    try:
        ring = _keyring(key_file).retired_key(key_id)
    except KeyFileError as exc:
        raise ConfigError(str(exc)) from None
    ring.save(key_file)
    _print_keys(ring)


def _open_signer(key_file: Path, state_file: Path, new_state: bool = False) -> Signer:
    """The signer of these files; ConfigError when one is unusable, or the state file is missing
    and not `new_state` (a signer without its state would sign a rewritten history as a log's first)."""
    from siemgate.tlog.signer import Signer, SignerRefused

    if not new_state and not state_file.exists():
        raise ConfigError(
            f"the state file {state_file} does not exist. Without it this signer would sign any tree of a log as"
            " its first checkpoint (a history rewritten in the database included): restore it from its backup,"
            " check --state-file, or, on the first start of a new signer only, pass --new-state to signer serve"
        )
    try:
        return Signer(_keyring(key_file), state_file)
    except SignerRefused as exc:
        raise ConfigError(exc.message) from None


@signer_app.command("serve")
def serve(
    key_file: Path = KEY_FILE,
    state_file: Path = STATE_FILE,
    secret_file: Path = SECRET_FILE,
    recovery_secret_file: Path = RECOVERY_SECRET_FILE,
    listen: str = typer.Option(
        "127.0.0.1:8790", "--listen", envvar="SIEMGATE_SIGNER_LISTEN", help="Loopback host:port."
    ),
    new_state: bool = typer.Option(
        False, "--new-state", help="Create the state file if absent: only on the first start of a new signer."
    ),
) -> None:
    """Run the signer's HTTP API on a loopback address until stopped (SIGTERM or Ctrl-C). Refuses
    a missing state file unless --new-state: without its state, the signer would sign any tree of
    a log as its first checkpoint, a history rewritten in the database included."""
    from siemgate.tlog.signer_http import make_server

    host, port = host_port(listen, "127.0.0.1:8790")
    signer = _open_signer(key_file, state_file, new_state)
    sign_secret = _read_secret(secret_file, "signing secret")
    recover_secret = _read_secret(recovery_secret_file, "recovery secret") if recovery_secret_file else None
    try:
        server = make_server(signer, host, port, sign_secret, recover_secret)
    except (ValueError, OSError) as exc:
        raise ConfigError(f"cannot listen on {listen}: {exc}") from None
    bound_host, bound_port = server.server_address[:2]
    banner = f"siemgate signer for {signer.keyring.name} listening on http://{bound_host!s}:{bound_port}"
    serve_until_stopped(server, banner, signer.close)


@signer_app.command("recover")
def recover(
    origin: str = typer.Option(..., "--origin", help="The log's origin."),
    size: int = typer.Option(..., "--size", help="Size of the restored tree."),
    root: str = typer.Option(..., "--root", help="Root of the restored tree (base64)."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the signed recovery statement)."),
    key_file: Path = KEY_FILE,
    state_file: Path = STATE_FILE,
) -> None:
    """Accept a restored tree that does not extend the signed one (an operator's restore from backup).

    Signs a recovery statement that every verifier reports. Prefer `siemgate log recover`, which also
    records the recovery in the account's audit stream."""
    from siemgate.tlog.signer import SignerRefused

    try:
        raw_root = base64.b64decode(root, validate=True)
    except binascii.Error:
        raise ConfigError("--root must be base64") from None
    signer = _open_signer(key_file, state_file)
    try:
        rec, cp = signer.recover(origin, size, raw_root, reason)
    except SignerRefused as exc:
        raise ConfigError(exc.message) from None
    finally:
        signer.close()
    sys.stdout.write(rec + "\n" + cp)


@signer_app.command("state")
def show_state(
    origin: str = typer.Option(..., "--origin", help="The log's origin."),
    key_file: Path = KEY_FILE,
    state_file: Path = STATE_FILE,
) -> None:
    """Print the last checkpoint the signer signed for a log."""
    signer = _open_signer(key_file, state_file)
    try:
        state = signer.state(origin)
    finally:
        signer.close()
    if state is None:
        raise ConfigError(f"the signer never signed {origin}")
    sys.stdout.write(state.note)
