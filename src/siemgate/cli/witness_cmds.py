"""`siemgate witness ...`: a witness (c2sp.org/tlog-witness) as its own process, with its own key
and state file, meant to run on another host or in another trust domain than the server and its
signer (docs/integrity.md, "Witnesses"). It never opens siemgate's database."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from siemgate.cli.listen import host_port, serve_until_stopped
from siemgate.cli.output import err
from siemgate.errors import ConfigError

if TYPE_CHECKING:
    from siemgate.tlog.note import NoteSigner
    from siemgate.tlog.witness import Witness

witness_app = typer.Typer(help="A witness that cosigns the log's checkpoints (tlog-witness).", no_args_is_help=True)

KEY_FILE = typer.Option(..., "--key-file", envvar="SIEMGATE_WITNESS_KEY_FILE", help="Witness private key file (0600).")
STATE_FILE = typer.Option(
    ...,
    "--state-file",
    envvar="SIEMGATE_WITNESS_STATE_FILE",
    help="Witness state file (0600); it must exist: only `witness serve --new-state` creates it.",
)
LOG_KEY = typer.Option(
    ...,
    "--log-key",
    envvar="SIEMGATE_WITNESS_LOG_KEY",
    help="The log's public key file (siemgate log keys --out FILE): the logs this witness cosigns.",
)


def _key(path: Path) -> NoteSigner:
    from siemgate.tlog.cosignature import load_witness_key
    from siemgate.tlog.keys import KeyFileError

    try:
        return load_witness_key(path)
    except KeyFileError as exc:
        raise ConfigError(str(exc)) from None


def _print_key(key: NoteSigner) -> None:
    from siemgate.tlog.cosignature import public_key_text
    from siemgate.tlog.keys import fingerprint

    verifier = key.verifier()
    err.print(f"Witness {key.name}: key {verifier.key_id:08x}  {fingerprint(verifier.public_key)}")
    sys.stdout.write(public_key_text([verifier]))


def _witness(key_file: Path, log_key: Path, state_file: Path, new_state: bool = False) -> Witness:
    """The witness of these files; ConfigError when one is unusable, or the state file is missing
    and not `new_state` (a witness without its state would cosign a fork as a log's first checkpoint)."""
    from siemgate.tlog.keys import KeyFileError, PublicKeyring
    from siemgate.tlog.witness import Witness, WitnessRefused

    if not new_state and not state_file.exists():
        raise ConfigError(
            f"the state file {state_file} does not exist. Without it this witness would cosign any checkpoint as"
            " the first it sees of a log (a fork included): restore it from its backup, check --state-file, or,"
            " on the first start of a new witness only, pass --new-state to witness serve"
        )
    try:
        return Witness(_key(key_file), PublicKeyring.load(log_key), state_file)
    except KeyFileError as exc:
        raise ConfigError(str(exc)) from None
    except WitnessRefused as exc:
        raise ConfigError(exc.message) from None


@witness_app.command("init")
def init(
    key_file: Path = KEY_FILE,
    name: str = typer.Option(..., "--name", help="The witness's name, e.g. witness.example.com/siemgate (no spaces)."),
) -> None:
    """Create the witness's key file with a new Ed25519 cosigning key; print its public key."""
    from siemgate.tlog.cosignature import create_witness_key
    from siemgate.tlog.keys import KeyFileError
    from siemgate.tlog.note import NoteError

    try:
        key = create_witness_key(key_file, name)
    except (KeyFileError, NoteError) as exc:
        raise ConfigError(str(exc)) from None
    err.print(f"Created {key_file} (keep it 0600, readable only by the witness's user).")
    _print_key(key)


@witness_app.command("keys")
def keys(
    key_file: Path = KEY_FILE,
    out: Path = typer.Option(None, "--out", help="Write the public key file here (siemgate-verify --witness-key)."),
) -> None:
    """Print the witness's public key with its fingerprint; --out writes the public key file."""
    from siemgate.tlog.cosignature import public_key_text

    key = _key(key_file)
    _print_key(key)
    if out is not None:
        out.write_text(public_key_text([key.verifier()]), encoding="utf-8")
        err.print(f"Wrote {out}")


@witness_app.command("serve")
def serve(
    key_file: Path = KEY_FILE,
    state_file: Path = STATE_FILE,
    log_key: Path = LOG_KEY,
    listen: str = typer.Option(
        "127.0.0.1:8789", "--listen", envvar="SIEMGATE_WITNESS_LISTEN", help="host:port to listen on."
    ),
    new_state: bool = typer.Option(
        False, "--new-state", help="Create the state file if absent: only on the first start of a new witness."
    ),
) -> None:
    """Serve POST /add-checkpoint until stopped (SIGTERM or Ctrl-C). Plain HTTP: put TLS in front.
    Refuses a missing state file unless --new-state: without it the witness would cosign any
    checkpoint as the first of its log, a fork included."""
    from siemgate.tlog.witness_http import make_server

    host, port = host_port(listen, "0.0.0.0:8789")
    witness = _witness(key_file, log_key, state_file, new_state)
    try:
        server = make_server(witness, host, port)
    except (ValueError, OSError) as exc:
        witness.close()
        raise ConfigError(f"cannot listen on {listen}: {exc}") from None
    bound_host, bound_port = server.server_address[:2]
    logs = ", ".join(sorted({k.verifier.name for k in witness.log_keys.keys}))
    banner = f"siemgate witness {witness.key.name} for {logs} listening on http://{bound_host!s}:{bound_port}"
    serve_until_stopped(server, banner, witness.close)


@witness_app.command("state")
def show_state(
    origin: str = typer.Option(..., "--origin", help="The log's origin."),
    key_file: Path = KEY_FILE,
    state_file: Path = STATE_FILE,
    log_key: Path = LOG_KEY,
) -> None:
    """Print the latest checkpoint the witness cosigned for a log, and the submissions it refused."""
    witness = _witness(key_file, log_key, state_file)
    try:
        latest = witness.latest(origin)
        refused = witness.refusals(origin)
    finally:
        witness.close()
    if latest is None and not refused:
        raise ConfigError(f"the witness never saw {origin}")
    if latest is not None:
        sys.stdout.write(latest[2])
    for at, status, reason in refused:
        err.print(f"refused at {at} ({status}): {reason}")


@witness_app.command("forget")
def forget(
    origin: str = typer.Option(..., "--origin", help="The log's origin."),
    key_file: Path = KEY_FILE,
    state_file: Path = STATE_FILE,
    log_key: Path = LOG_KEY,
) -> None:
    """Forget what the witness cosigned for a log, so that it accepts the log's current tree next.

    Only after a legitimate recovery of that log (read its signed recovery statement first): the
    witness then vouches for the restored history from here on. Its record of refusals is kept."""
    witness = _witness(key_file, log_key, state_file)
    try:
        latest = witness.latest(origin)
        if latest is None or not witness.forget(origin):
            raise ConfigError(f"the witness has cosigned nothing for {origin}")
    finally:
        witness.close()
    err.print(f"Forgot size {latest[0]} of {origin}; the next checkpoint submitted from size 0 will be cosigned.")
