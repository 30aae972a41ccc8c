"""`make bench` (forwarder part): events/s from a siemgate server to a null sink, a file sink and
an HTTP sink on loopback. Figures and method: docs/benchmarks.md, "Forwarder".

Method: a siemgate server (one uvicorn worker, pinned to CPU 1) serves a store of N item usages
(built once, bench/results/forward-data-N); the forwarder runs in this process pinned to CPU 0 and
drains the whole stream once (`--once` semantics: reset from 2020, 1000-event pages, cursor
committed after each acknowledged page) into one sink at a time; an HTTP receiver for the HEC
sink runs as its own process on CPU 1 and answers every POST with Splunk's success body.
events/s = events acknowledged by the sink / wall time of the drain; events per CPU-second = the
same over the CPU time of the forwarder process (what one core sustains, and steadier than the
wall-clock rate when other work shares the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
sys.path.insert(0, str(ROOT))

from run import Server, build_store, free_port  # noqa: E402
from siemgate.forward.config import parse_config  # noqa: E402
from siemgate.forward.runner import Forwarder  # noqa: E402

RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
BODY = b'{"text":"Success","code":0}'
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else 40 ms per reply (Nagle + delayed ACK)
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def start_receiver(cpu: str | None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [sys.executable, "-c", RECEIVER, str(port)]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import socket

    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("receiver did not start") from None
            time.sleep(0.05)


def drain(url: str, token: str, sink: dict[str, Any], events: int) -> dict[str, Any]:
    """Forward the whole stream once into `sink`; returns events/s."""
    os.environ["BENCH_FORWARD_TOKEN"] = token
    with tempfile.TemporaryDirectory(prefix="siemgate-forward-bench-") as state:
        if sink["type"] == "file":
            sink = {**sink, "path": f"{state}/out/{{feature}}.jsonl"}
        cfg = parse_config(
            {
                "forwarder": {"state_dir": state, "log_level": "warning"},
                "sources": {
                    "bench": {
                        "url": url,
                        "token": {"env": "BENCH_FORWARD_TOKEN"},
                        "features": ["itemusages"],
                        "start_time": "2020-01-01T00:00:00Z",
                        "limit": 1000,
                        "sinks": ["sink"],
                    }
                },
                "sinks": {"sink": sink},
            }
        )
        forwarder = Forwarder(cfg)
        started, cpu_started = time.perf_counter(), time.process_time()
        code = forwarder.run(once=True)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        out = forwarder.metrics.registry.get_sample_value(
            "siemgate_forward_events_out_total", {"source": "bench", "sink": "sink"}
        )
    if code != 0 or out != events:
        raise RuntimeError(f"drain failed: exit {code}, {out} of {events} events: {forwarder.problems()}")
    return {
        "events": int(out),
        "seconds": round(elapsed, 2),
        "cpu_seconds": round(cpu, 2),
        "events_per_second": round(out / elapsed),
        "events_per_cpu_second": round(out / cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="Item usages in the source store.")
    parser.add_argument("--no-pin", action="store_true", help="Do not pin processes to CPUs.")
    parser.add_argument("--only", default="", help="Run only the sinks whose name contains this text.")
    args = parser.parse_args()
    pin = not args.no_pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    data_dir = RESULTS / f"forward-data-{args.events}"
    meta = build_store(data_dir, args.events)
    if pin:
        os.sched_setaffinity(0, {0})
    server = Server(data_dir, "1" if pin else None)
    receiver, port = start_receiver("1" if pin else None)
    url = f"http://127.0.0.1:{server.port}"
    hec = f"http://127.0.0.1:{port}"
    runs = {
        "null sink (raw)": {"type": "null"},
        "null sink (ecs)": {"type": "null", "format": "ecs"},
        "null sink (ocsf)": {"type": "null", "format": "ocsf"},
        "file sink (JSON Lines, fsync per batch)": {"type": "file"},
        "HTTP sink (Splunk HEC, gzip)": {"type": "splunk_hec", "url": hec, "token": {"env": "BENCH_HEC"}},
        "HTTP sink (Splunk HEC, no compression)": {
            "type": "splunk_hec",
            "url": hec,
            "token": {"env": "BENCH_HEC"},
            "compression": "none",
        },
    }
    runs = {name: sink for name, sink in runs.items() if args.only.lower() in name.lower()}
    os.environ["BENCH_HEC"] = "bench"
    results: dict[str, Any] = {"events": args.events, "pinned": pin}
    try:
        drain(url, meta["token"], {"type": "null"}, args.events)  # warm the server's cache
        for name, sink in runs.items():
            results[name] = drain(url, meta["token"], sink, args.events)
    finally:
        receiver.terminate()
        receiver.wait(10)
        server.stop()
    print(f"\nforwarder: {args.events:,} item usages from siemgate over loopback, forwarder on one core")
    print(f"{'sink':42} {'events/s':>9} {'per CPU-s':>10} {'seconds':>8}")
    for name in runs:
        r = results[name]
        print(f"{name:42} {r['events_per_second']:>9,} {r['events_per_cpu_second']:>10,} {r['seconds']:>8}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "forward.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
