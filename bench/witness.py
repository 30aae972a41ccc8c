"""`make bench` (witness part): what a witness costs per checkpoint — `siemgate witness serve` as its
own process on 127.0.0.1, fed checkpoints of a growing log the way the server's log worker feeds
it (signed with the log key, a consistency proof from the size it last cosigned). Reports the
add-checkpoint round trip over HTTP (median and 95th percentile wall time), the witness process's
CPU per checkpoint, and the same call in-process (parse, log signature check, consistency proof,
cosignature, SQLite commit). docs/benchmarks.md, "Witness".

The log grows by `--step` leaves per checkpoint up to `--checkpoints` checkpoints; the leaves are
random hashes (a witness never sees entries), proofs are computed from them before timing.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from siemgate.tlog.checkpoint import Checkpoint
from siemgate.tlog.cosignature import create_witness_key
from siemgate.tlog.keys import PublicKeyring, SignerKeyring
from siemgate.tlog.merkle import root_of, tree_reader
from siemgate.tlog.note import sign_note
from siemgate.tlog.proof import consistency_proof
from siemgate.tlog.witness import Witness

ORIGIN_NAME = "bench.example/siemgate"


def _bodies(count: int, step: int, log_pub: Path) -> list[bytes]:
    """The submissions of a log growing by `step` leaves per checkpoint; its public key goes to `log_pub`."""
    ring = SignerKeyring.create(log_pub.with_name("log.keys"), ORIGIN_NAME)
    origin = f"{ORIGIN_NAME}/BENCHAAAAAAAAAAAAAAAAAAAAA/auditevents"  # an account uuid as siemgate forms them
    leaves = [os.urandom(32) for _ in range(count * step)]
    read = tree_reader(leaves)
    out = []
    for n in range(1, count + 1):
        size, old = n * step, (n - 1) * step
        note = sign_note(
            Checkpoint(origin, size, root_of(leaves[:size]), 1_767_225_600 + n).text(), ring.signers_for(origin)
        )
        proof = consistency_proof(old, size, read) if old else []
        lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
        out.append(f"old {old}\n{lines}\n{note}".encode())
    log_pub.write_text(ring.public().text())
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", type=int, default=300)
    parser.add_argument("--step", type=int, default=1000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    log_pub = tmp / "log.pub"
    bodies = _bodies(args.checkpoints, args.step, log_pub)
    key = create_witness_key(tmp / "w.key", "bench-witness.example/w")

    # In process.
    witness = Witness(key, PublicKeyring.load(log_pub), tmp / "inproc.state")
    inproc = []
    for body in bodies:
        t = time.perf_counter()
        witness.add_checkpoint(body)
        inproc.append(time.perf_counter() - t)
    witness.close()

    # Over HTTP, a real process.
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "siemgate", "witness", "serve", "--key-file", str(tmp / "w.key"),
         "--state-file", str(tmp / "http.state"), "--log-key", str(log_pub), "--listen", f"127.0.0.1:{port}",
         "--new-state"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the witness did not start") from None
                time.sleep(0.05)
        cpu0 = _cpu_seconds(proc.pid)
        wall = []
        for body in bodies:
            t = time.perf_counter()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/add-checkpoint", data=body, method="POST")
            with urllib.request.urlopen(request, timeout=30) as resp:
                assert resp.status == 200
            wall.append(time.perf_counter() - t)
        cpu = _cpu_seconds(proc.pid) - cpu0
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    def ms(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if q < 100 else max(values) * 1000

    print(f"witness: {args.checkpoints} checkpoints, +{args.step} leaves each (up to {args.checkpoints * args.step})")
    print(f"  in process      median {statistics.median(inproc) * 1000:.2f} ms  p95 {ms(inproc, 95):.2f} ms")
    print(f"  HTTP round trip median {statistics.median(wall) * 1000:.2f} ms  p95 {ms(wall, 95):.2f} ms")
    print(f"  witness process CPU {cpu / len(bodies) * 1000:.2f} ms per checkpoint")
    proof_lines = len(bodies[-1].split(b"\n\n")[0].split(b"\n")) - 1
    print(f"  proof length at the end: {proof_lines} hashes")
    print(f"  load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
