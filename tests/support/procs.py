"""Support for tests that run `siemgate` as real processes: start, wait, stop, and look at their
sockets through /proc (Linux) to know what the server has accepted and read.

Nothing here sleeps for a fixed time as synchronisation: every wait is a poll with a deadline that
fails the test with what the process wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import siemgate
from siemgate.composition.wiring import open_services
from siemgate.config import load_settings
from siemgate.model.features import ALL_FEATURES
from siemgate.model.ids import new_id
from siemgate.services import Services

from .waiting import wait_for

SIEMGATE = [sys.executable, "-m", "siemgate"]
HAVE_PROC_NET = Path("/proc/net/tcp").exists() and Path("/proc/self/fd").is_dir()


def _code_path() -> str:
    """PYTHONPATH naming this checkout's code absolutely: a process started in another directory
    must run the code under test, not whatever copy of siemgate the environment has installed."""
    paths = [str(Path(siemgate.__file__).resolve().parents[1])]
    paths += [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys(paths))


def python_output(script: str, **env: str) -> str:
    """What `script` (Python code run in a fresh interpreter with this checkout's code and the
    variables `env` added) prints; fails the test with its stderr when it fails."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": _code_path(), **env},
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"the script failed ({env or 'no variables added'}):\n{done.stderr}"
    return done.stdout


def outputs_under_hash_seeds(script: str, seeds: tuple[int, ...] = (1, 2, 3, 4, 5)) -> dict[int, str]:
    """What `script` (Python code run with this checkout's code) prints under each PYTHONHASHSEED:
    for an order that a single test process cannot show varying (a set of a few strings)."""
    return {seed: python_output(script, PYTHONHASHSEED=str(seed)) for seed in seeds}


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": _code_path(),
        "SIEMGATE_DATA_DIR": str(data_dir),
        "SIEMGATE_LOG_FORMAT": "text",
        **extra,
    }
    env.pop("SIEMGATE_CONFIG", None)
    env.pop("SIEMGATE_PORT", None)
    env.pop("SIEMGATE_HOST", None)
    env.pop("SIEMGATE_PUBLIC_HOST", None)
    return env


@contextlib.contextmanager
def services_at(data_dir: Path) -> Iterator[Services]:
    """The data directory's services, opened in this process (fast set-up: no CLI start-up)."""
    services = open_services(load_settings(data_dir=data_dir))
    try:
        yield services
    finally:
        services.close()


def make_account(data_dir: Path, name: str = "Acme") -> str:
    """Create the store, the keys and an account; returns the account uuid."""
    with services_at(data_dir) as services:
        return services.store.create_account(new_id(), name, services.clock()).uuid


def issue_token(data_dir: Path, account: str, name: str) -> str:
    with services_at(data_dir) as services:
        acct = services.store.get_account(account)
        integration = services.store.create_integration(acct.id, new_id(), "other", name, "", services.clock())
        token, _ = services.tokens.issue(acct, integration, name, ALL_FEATURES, None)
        return token


def create_ingest_key(data_dir: Path, account: str, name: str) -> str:
    with services_at(data_dir) as services:
        key, _ = services.ingest_keys.create(services.store.get_account(account), name, ALL_FEATURES)
        return key


def run_cli(env: dict[str, str], *args: str, ok: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*SIEMGATE, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if ok:
        assert result.returncode == 0, f"siemgate {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
    return result


def run_cli_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(run_cli(env, *args, "--json").stdout)


class Proc:
    """A siemgate process with stdout and stderr going to files (no pipe can fill up and block it)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        log_dir.mkdir(parents=True, exist_ok=True)
        tag = new_id()[:6]
        self.stdout_path = log_dir / f"{name}-{tag}.out"
        self.stderr_path = log_dir / f"{name}-{tag}.err"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen([*SIEMGATE, *args], stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        self.pid = self.popen.pid
        self.descendants: set[int] = set()  # every child pid seen, so cleanup can reach them

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        return f"--- stdout ---\n{self.stdout()[-4000:]}\n--- stderr ---\n{self.stderr()[-4000:]}"

    def children(self) -> list[tuple[int, str]]:
        found = children(self.pid)
        self.descendants.update(pid for pid, _ in found)
        return found

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> tuple[int, float]:
        """Send `sig` and wait for the process to end; returns (exit code, seconds it took)."""
        started = time.monotonic()
        self.children()
        self.popen.send_signal(sig)
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            message = f"{self.name} did not stop within {timeout}s of signal {sig}"
            raise AssertionError(f"{message}:\n{self.output()}") from None
        return code, time.monotonic() - started

    def kill(self) -> None:
        """Make sure the process and every child it had are gone (cleanup; idempotent)."""
        with contextlib.suppress(OSError):
            self.children()
        if self.popen.poll() is None:
            self.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=10)
        for pid in self.descendants:
            if is_running(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    try:
        yield proc
    finally:
        proc.kill()


def healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


# --- /proc ------------------------------------------------------------------------------------------


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields after "(comm)": state, ppid, ...


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live children of `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        if fields is None or int(fields[1]) != pid or fields[0] == "Z":
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found.append((int(entry), cmdline))
    return found


def is_running(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def socket_inodes(pid: int | str) -> set[int]:
    """Inodes of the sockets the process has open."""
    inodes: set[int] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(fd_dir / name)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


@dataclass(frozen=True)
class TcpSocket:
    local_port: int
    remote_port: int
    state: int  # 1 ESTABLISHED, 10 LISTEN (include/net/tcp_states.h)
    rx_queue: int  # ESTABLISHED: bytes received and not yet read by the process
    inode: int


ESTABLISHED, LISTEN = 0x01, 0x0A


def tcp_sockets() -> list[TcpSocket]:
    """The IPv4 TCP sockets of this network namespace (/proc/net/tcp)."""
    sockets = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, queues, inode = fields[1], fields[2], fields[3], fields[4], fields[9]
        rx_queue = int(queues.split(":")[1], 16)
        sockets.append(
            TcpSocket(int(local.split(":")[1], 16), int(remote.split(":")[1], 16), int(state, 16), rx_queue, int(inode))
        )
    return sockets


def listening(port: int) -> bool:
    return any(s.state == LISTEN and s.local_port == port for s in tcp_sockets())


def client_ports_to(port: int) -> list[int]:
    """Local ports of this process's established connections to `port`."""
    mine = socket_inodes("self")
    return [s.local_port for s in tcp_sockets() if s.state == ESTABLISHED and s.remote_port == port and s.inode in mine]


def server_side(port: int, client_port: int) -> TcpSocket | None:
    """The server's end of the connection from `client_port` to `port`."""
    for s in tcp_sockets():
        if s.state == ESTABLISHED and s.local_port == port and s.remote_port == client_port:
            return s
    return None


def owner_of(sock: TcpSocket, pids: list[int]) -> int | None:
    """Which of `pids` has accepted the connection (holds its socket), if any."""
    for pid in pids:
        if sock.inode and sock.inode in socket_inodes(pid):
            return pid
    return None


def worker_pids(proc: Proc, count: int) -> list[int]:
    """The pids of `serve --workers COUNT`'s worker processes, once all have started."""

    def started() -> list[int] | None:
        workers = [pid for pid, cmd in proc.children() if "spawn_main" in cmd]
        return workers if len(workers) == count else None

    workers = wait_for(f"{count} worker processes", started, 90, proc=proc)
    wait_for("every worker to start", lambda: proc.stderr().count("Application startup complete") >= count, 90)
    return workers


def clients_on_every_worker(
    base_url: str, port: int, workers: list[int], first: Callable[[httpx.Client], None], tries: int = 60
) -> tuple[list[httpx.Client], dict[int, int | None]]:
    """New clients (one connection each, on which `first` sends a request) until every worker has
    accepted some; returns them and each one's client port -> the worker pid that holds it. Each
    connection stays with its worker while it is kept open, so later requests on a client reach
    a known worker. The caller closes the clients."""
    clients: list[httpx.Client] = []
    owners: dict[int, int | None] = {}
    for _ in range(tries):
        # httpx closes connections idle for 5 s by default: keep them, as a connector does
        http = httpx.Client(base_url=base_url, timeout=30, limits=httpx.Limits(keepalive_expiry=600))
        clients.append(http)
        first(http)
        owners = {}
        for client_port in client_ports_to(port):
            sock = server_side(port, client_port)
            owners[client_port] = owner_of(sock, workers) if sock is not None else None
        if set(owners.values()) == set(workers):
            break
    assert len(owners) == len(clients), f"each client keeps one connection: {owners}"
    assert set(owners.values()) == set(workers), f"every worker should have accepted connections: {owners}"
    return clients, owners
