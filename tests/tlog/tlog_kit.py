"""Support for the log tests: an in-memory log of realistic stored events, a real signer on a
state file, and bundles written the way `siemgate log export` writes them."""

from __future__ import annotations

import contextlib
import itertools
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson
import pytest

from siemgate.cli.main import main
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.tlog.bundle import Manifest, write_bundle
from siemgate.tlog.cosignature import create_witness_key, public_key_text
from siemgate.tlog.entry import Entry, entry_for
from siemgate.tlog.keys import SignerKeyring
from siemgate.tlog.merkle import root_of, tree_reader
from siemgate.tlog.note import NoteSigner
from siemgate.tlog.proof import consistency_proof
from siemgate.tlog.signer import Signer
from support.ports import free_port

NAME = "events.test.example/siemgate"
ORIGIN = f"{NAME}/ACCTAAAAAAAAAAAAAAAAAAAAAA/auditevents"
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def event_body(ts_ns: int, n: int) -> bytes:
    return orjson.dumps(
        {"uuid": new_id(), "timestamp": format_ns(ts_ns), "actor_uuid": new_id(), "action": "update", "n": n}
    )


@dataclass
class MemLog:
    """A log kept in memory: the event bodies by index, their entries and leaves."""

    origin: str = ORIGIN
    bodies: list[bytes] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)

    def append(self, count: int, start_ns: int = T0) -> None:
        for _ in range(count):
            n = len(self.bodies)
            ts = start_ns + n * 1_000_000_007
            body = event_body(ts, n)
            self.bodies.append(body)
            self.entries.append(entry_for(ts, body))

    @property
    def size(self) -> int:
        return len(self.entries)

    def leaves(self, size: int | None = None) -> list[bytes]:
        return [e.leaf() for e in self.entries[: self.size if size is None else size]]

    def root(self, size: int | None = None) -> bytes:
        return root_of(self.leaves(size))

    def proof(self, size1: int, size2: int) -> list[bytes]:
        return consistency_proof(size1, size2, tree_reader(self.leaves(size2)))


@dataclass
class Kit:
    """A signer with its key file, state file and published public key file."""

    tmp: Path
    keyring: SignerKeyring
    signer: Signer
    public_key: Path
    key_file: Path
    state_file: Path

    def sign(self, log: MemLog, old_size: int | None = None) -> str:
        state = self.signer.state(log.origin)
        last = state.checkpoint.size if state else 0
        old = last if old_size is None else old_size
        return self.signer.sign(log.origin, log.size, log.root(), old, log.proof(old, log.size) if old else [])

    def publish(self) -> Path:
        self.keyring = SignerKeyring.load(self.key_file)
        self.public_key.write_text(self.keyring.public().text())
        return self.public_key


def make_kit(tmp: Path, clock: object = None) -> Kit:
    key_file, state_file = tmp / "signer.keys", tmp / "signer.state"
    keyring = SignerKeyring.create(key_file, NAME)
    signer = Signer(keyring, state_file) if clock is None else Signer(keyring, state_file, clock)  # type: ignore[arg-type]
    public = tmp / "log.pub"
    public.write_text(keyring.public().text())
    return Kit(tmp, keyring, signer, public, key_file, state_file)


def export(
    log: MemLog,
    notes: list[str],
    directory: Path,
    sizes: list[int] | None = None,
    bodies: dict[int, bytes] | None = None,
    recoveries: list[str] | None = None,
    cutoff_ns: int | None = None,
) -> Path:
    """Write a bundle of `log` with `notes`, and consistency proofs between consecutive `sizes`."""
    if directory.exists():
        shutil.rmtree(directory)
    held = bodies if bodies is not None else dict(enumerate(log.bodies))
    proofs = []
    if sizes:
        for a, b in itertools.pairwise(sizes):
            if a < b <= log.size:
                proofs.append((a, b, log.proof(a, b)))
    write_bundle(
        directory,
        Manifest(log.origin, log.size, 0, cutoff_ns),
        log.entries,
        sorted(held.items()),
        notes,
        proofs,
        recoveries or [],
    )
    return directory


def run_cli(capsys: pytest.CaptureFixture[str], *args: str, ok: bool = True) -> tuple[str, str]:
    """Run `siemgate ...` in this process (start-up of a new one is slow on a busy machine)."""
    old = sys.argv
    sys.argv = ["siemgate", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    assert (code == 0) == ok, (code, out, err)
    if not ok:
        assert code == 2, (code, out, err)
    return out, err


def start_process(args: list[str], port: int, log: IO[str]) -> subprocess.Popen[bytes]:
    """`python -m siemgate <args>` as a real process, returned once it accepts connections on `port`
    of 127.0.0.1 (its output goes to `log`); AssertionError with its output if it does not start."""
    proc = subprocess.Popen([sys.executable, "-m", "siemgate", *args], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait(timeout=20)
                raise AssertionError(f"{args[0]} did not start: " + Path(log.name).read_text()) from None
            time.sleep(0.02)


@contextlib.contextmanager
def serving(args: list[str], port: int, log_path: Path) -> Iterator[str]:
    """`python -m siemgate <args>` as a real process listening on `port` of 127.0.0.1; yields its URL
    once it accepts connections, and stops it (SIGTERM) at the end."""
    with log_path.open("w") as log:
        proc = start_process(args, port, log)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def secret_file(path: Path) -> Path:
    """A new random shared secret (for the signer and the server) written to `path`; returns `path`."""
    path.write_text(secrets.token_urlsafe(32))
    return path


def new_witness(tmp: Path) -> tuple[NoteSigner, Path]:
    """A witness key at tmp/w.key (origin witness.test.example/w) and its public key file tmp/w.pub."""
    key = create_witness_key(tmp / "w.key", "witness.test.example/w")
    public = tmp / "w.pub"
    public.write_text(public_key_text([key.verifier()]))
    return key, public


@contextlib.contextmanager
def signer_process(
    kit: Kit, secret_file: Path, recovery_file: Path | None = None, port: int | None = None
) -> Iterator[str]:
    """`siemgate signer serve` as a real process on a loopback port (default: a free one); yields its URL."""
    kit.signer.close()
    port = port or free_port()
    args = signer_args(kit, secret_file, port)
    if recovery_file is not None:
        args += ["--recovery-secret-file", str(recovery_file)]
    try:
        with serving(args, port, kit.tmp / "signer.log") as url:
            yield url
    finally:
        kit.signer = Signer(SignerKeyring.load(kit.key_file), kit.state_file)


def signer_args(kit: Kit, secret_file: Path, port: int) -> list[str]:
    """The arguments of `siemgate signer serve` of `kit` on 127.0.0.1:`port`."""
    args = ["signer", "serve", "--key-file", str(kit.key_file), "--state-file", str(kit.state_file)]
    return [*args, "--secret-file", str(secret_file), "--listen", f"127.0.0.1:{port}"]


@contextlib.contextmanager
def witness_process(
    key_file: Path, state_file: Path, log_key: Path, port: int | None = None, log_name: str = "witness.log"
) -> Iterator[str]:
    """`siemgate witness serve` as a real process on a loopback port; yields its URL."""
    port = port or free_port()
    with serving(witness_args(key_file, state_file, log_key, port), port, key_file.parent / log_name) as url:
        yield url


def witness_args(key_file: Path, state_file: Path, log_key: Path, port: int) -> list[str]:
    """The arguments of `siemgate witness serve` on 127.0.0.1:`port` (creating its state file if absent)."""
    args = ["witness", "serve", "--key-file", str(key_file), "--state-file", str(state_file), "--new-state"]
    return [*args, "--log-key", str(log_key), "--listen", f"127.0.0.1:{port}"]


def kill_9_mid_way(proc: subprocess.Popen[bytes], work: Callable[[], None], progress: dict[str, int], key: str) -> None:
    """Run `work` in a thread and kill `proc` with SIGKILL once `progress[key]` has grown by a number
    that varies by call (1 to 25; or when `work` ends, or after 20 s), then wait for `work` to end."""
    try:
        worker = threading.Thread(target=work)
        worker.start()
        target = progress[key] + random.randint(1, 25)
        deadline = time.monotonic() + 20
        while progress[key] < target and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.001)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
    worker.join(timeout=30)
    assert not worker.is_alive()
