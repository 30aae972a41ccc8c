"""The witness (`siemgate witness serve`, a real process over HTTP) attacked by a hostile log
operator, one who holds the log's key or replays what the log signed: what it must refuse, with
the status c2sp.org/tlog-witness gives (or, where the spec leaves it open, a 422 kept as evidence),
and that a kill -9 at any moment never lets it forget what it cosigned."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from siemgate.tlog import witness_http
from siemgate.tlog.checkpoint import Checkpoint
from siemgate.tlog.cosignature import MAX_CLOCK_SKEW, WitnessPolicy, create_witness_key, load_witness_key
from siemgate.tlog.keys import SignerKeyring
from siemgate.tlog.note import sign_note, split_note
from siemgate.tlog.witness import Witness, WitnessRefused
from siemgate.tlog.witness_client import WitnessClient
from support.ports import free_port

from .test_witness import _note, _post, _setup
from .tlog_kit import NAME, ORIGIN, MemLog, kill_9_mid_way, start_process, witness_args, witness_process

HASHED = hashlib.sha256(ORIGIN.encode()).hexdigest()


def _body(old: int, proof: list[bytes], note: str) -> bytes:
    return (f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof) + "\n" + note).encode()


def _log_and_fork(size: int) -> tuple[MemLog, MemLog]:
    """Two logs of `size` events with different histories."""
    log, fork = MemLog(), MemLog()
    log.append(size)
    fork.append(size)
    return log, fork


def _served(url: str) -> Checkpoint:
    served = urllib.request.urlopen(f"{url}/{HASHED}/checkpoint", timeout=10).read().decode()
    return Checkpoint.parse(split_note(served)[0])


def _refusals(tmp: Path, ring: SignerKeyring) -> list[tuple[int, int, str]]:
    """What the witness of `tmp` kept as evidence of the log's misbehaviour."""
    witness = Witness(load_witness_key(tmp / "witness.key"), ring.public(), tmp / "witness.state")
    try:
        return witness.refusals(ORIGIN)
    finally:
        witness.close()


def test_a_checkpoint_dated_in_the_future_is_not_cosigned(tmp_path: Path) -> None:
    """Before: cosigned whatever its `time` (measured: dated ten years ahead, cosigned), so a stolen
    log key plus a witness made a checkpoint that never looks stale look witnessed. Now a 422 past
    MAX_CLOCK_SKEW (the verifiers' bound; 60 s of margin either side, the clocks are read apart),
    kept as evidence."""
    ring, log_pub, _, _ = _setup(tmp_path)
    log = MemLog()
    log.append(8)
    with witness_process(tmp_path / "witness.key", tmp_path / "witness.state", log_pub) as url:
        now = int(time.time())
        assert _post(url, _body(0, [], _note(ring, 4, log.root(4), now)))[0] == 200
        for ahead in (10 * 365 * 86400, MAX_CLOCK_SKEW + 60):
            status, _, reason = _post(url, _body(4, log.proof(4, 8), _note(ring, 8, log.root(8), now + ahead)))
            assert status == 422 and "from the future" in reason, reason
            assert f"allowed clock skew {MAX_CLOCK_SKEW} s" in reason, reason
            assert _served(url).size == 4
        near = _note(ring, 8, log.root(8), now + MAX_CLOCK_SKEW - 60)
        assert _post(url, _body(4, log.proof(4, 8), near))[0] == 200
    refused = _refusals(tmp_path, ring)
    assert [s for _, s, r in refused if "from the future" in r] == [422, 422], refused


def test_a_backdated_or_replayed_checkpoint_is_not_cosigned(tmp_path: Path) -> None:
    """A log's signer dates each checkpoint after the one before; one dated before the checkpoint
    the witness cosigned last (a replay, or a history signed with a backdated time) is a 422.
    Before: cosigned, and the monitoring endpoint then served the older checkpoint."""
    ring, log_pub, _, _ = _setup(tmp_path)
    log = MemLog()
    log.append(12)
    now = int(time.time()) - 3600
    with witness_process(tmp_path / "witness.key", tmp_path / "witness.state", log_pub) as url:
        assert _post(url, _body(0, [], _note(ring, 6, log.root(6), now)))[0] == 200
        assert _post(url, _body(6, [], _note(ring, 6, log.root(6), now + 10)))[0] == 200  # a heartbeat
        replay = _note(ring, 6, log.root(6), now)
        status, _, reason = _post(url, _body(6, [], replay))
        assert status == 422 and "dated before" in reason, reason
        backdated = _note(ring, 12, log.root(12), now + 5)
        status, _, reason = _post(url, _body(6, log.proof(6, 12), backdated))
        assert status == 422 and "dated before" in reason, reason
        served = _served(url)
        assert (served.size, served.time) == (6, now + 10)
        # The same checkpoint again (a client retrying after a lost answer) is cosigned again.
        assert _post(url, _body(6, [], _note(ring, 6, log.root(6), now + 10)))[0] == 200
        assert _post(url, _body(6, log.proof(6, 12), _note(ring, 12, log.root(12), now + 11)))[0] == 200


def test_replays_cannot_grow_the_state_file(tmp_path: Path) -> None:
    """Anyone may POST: replaying an old checkpoint the log signed, padded to 60 unknown signatures,
    with the wrong old size (409) must not add to the witness's state file. Before: each 409 stored
    the whole request as "evidence" (measured: 200 replays, 1.2 MB). A refused fork (422) is kept,
    once, with the log's signature only."""
    ring, log_pub, state, _ = _setup(tmp_path)
    log, fork = _log_and_fork(10)
    now = int(time.time()) - 60
    old = _note(ring, 3, log.root(3), now - 30)
    text, sigs = split_note(old)
    padded = text + "\n" + sigs[0].line() + "".join(f"\u2014 junk{i} {'A' * 96}\n" for i in range(60))
    forked = _note(ring, 10, fork.root(10), now + 1)
    with witness_process(tmp_path / "witness.key", state, log_pub) as url:
        assert _post(url, _body(0, [], _note(ring, 10, log.root(10), now)))[0] == 200
        before = state.stat().st_size
        for _ in range(50):
            assert _post(url, _body(0, [], padded))[0] == 409
            assert _post(url, _body(10, [], forked + "".join(f"\u2014 junk {'B' * 96}\n" for _ in range(50))))[0] == 422
        assert state.stat().st_size - before <= 8192, state.stat().st_size - before
    [(_, status, reason)] = _refusals(tmp_path, ring)
    assert status == 422 and "forked" in reason


def test_each_log_signature_is_served_once(tmp_path: Path) -> None:
    """A client that repeats the log's signature line (or adds unknown ones) does not get them into
    the checkpoint the monitoring endpoint serves. Before: every copy was served."""
    ring, log_pub, _, key = _setup(tmp_path)
    log = MemLog()
    log.append(4)
    note = _note(ring, 4, log.root(4), int(time.time()))
    text, [sig] = split_note(note)
    with witness_process(tmp_path / "witness.key", tmp_path / "witness.state", log_pub) as url:
        assert _post(url, _body(0, [], text + "\n" + sig.line() * 3 + "\u2014 other AAAAAAAA\n"))[0] == 200
        served = urllib.request.urlopen(f"{url}/{HASHED}/checkpoint", timeout=10).read().decode()
    assert served.startswith(note) and served.count("\u2014 ") == 2, served
    assert len(WitnessPolicy((key.verifier(),), 1).check(served)) == 1


def test_unsigned_malformed_and_oversized_submissions(tmp_path: Path) -> None:
    """Refusals of what is not a signed, well-formed, bounded submission; the state never moves."""
    ring, log_pub, _, _ = _setup(tmp_path)
    log = MemLog()
    log.append(9)
    now = int(time.time())
    first = _note(ring, 5, log.root(5), now - 10)
    good = _note(ring, 9, log.root(9), now)
    text = split_note(good)[0]
    with witness_process(tmp_path / "witness.key", tmp_path / "witness.state", log_pub) as url:
        assert _post(url, _body(0, [], first))[0] == 200
        proof = log.proof(5, 9)
        cases = [
            # No signature at all (spec: 403 when no signature of a trusted key is present).
            (_body(5, proof, text), 403, "no signature"),
            (_body(5, proof, text + "\n"), 403, "no signature"),
            # More signatures than a note may carry: malformed.
            (_body(5, proof, good + "\u2014 junk AAAAAAAA\n" * 64), 400, "more than 64 signatures"),
            # Proofs: a hash of 31 bytes, too few hashes, one hash too many, a flipped bit.
            (_body(5, [proof[0][:31], *proof[1:]], good), 400, "proof line 1"),
            (_body(5, proof[:-1], good), 422, "not consistent"),
            (_body(5, [*proof, proof[0]], good), 422, "not consistent"),
            (_body(5, [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]], good), 422, "not consistent"),
        ]
        for body, status, reason in cases:
            got, _, answer = _post(url, body)
            assert got == status and reason in answer, (got, answer)
        assert _served(url).size == 5
        assert WitnessClient(url).add_checkpoint(good, 5, proof)


def _raw(url: str, request: bytes) -> bytes:
    """Send raw bytes; everything the witness answers until it closes the connection."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_an_oversized_or_unsized_body_is_refused_and_the_connection_closed(tmp_path: Path) -> None:
    """A body over 64 KiB, or one without a Content-Length (chunked), is refused unread: the witness
    must then close the connection, or the unread body is parsed as the next request on it. Before:
    the connection stayed open and a request hidden in the body was answered."""
    _, log_pub, _, _ = _setup(tmp_path)
    hidden = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with witness_process(tmp_path / "witness.key", tmp_path / "witness.state", log_pub) as url:
        big = hidden + b"x" * (64 * 1024)
        head = f"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: {len(big)}\r\n\r\n".encode()
        answer = _raw(url, head + big)
        assert answer.startswith(b"HTTP/1.1 400") and b"at most 65536 bytes" in answer, answer[:200]
        assert answer.count(b"HTTP/1.1 ") == 1, answer
        head = b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        answer = _raw(url, head + f"{len(hidden):x}\r\n".encode() + hidden + b"\r\n0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400") and answer.count(b"HTTP/1.1 ") == 1, answer


@contextlib.contextmanager
def _witness_server(tmp: Path, monkeypatch: pytest.MonkeyPatch, **bounds: float) -> Iterator[tuple[str, int]]:
    """A witness served in this process on a free port with `bounds` (request_seconds of the
    handler, max_connections of the server) lowered so that a test can reach them quickly."""
    ring, _, state, key = _setup(tmp)
    for name, value in bounds.items():
        monkeypatch.setattr(witness_http._Handler if name == "request_seconds" else witness_http._Server, name, value)
    server = witness_http.make_server(Witness(key, ring.public(), state), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _closed_within(sock: socket.socket, seconds: float, trickle: bool) -> bool:
    """Whether the peer closes `sock` within `seconds` (sending a byte every 0.2 s if `trickle`)."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            if trickle:
                sock.sendall(b"o")
            if sock.recv(1024) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def test_a_slow_client_is_cut_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client trickling its request (each byte well within the 10 s socket timeout) is cut off
    after the handler's request_seconds, not served for ever. Before: no bound on the total time."""
    with (
        _witness_server(tmp_path, monkeypatch, request_seconds=1.0) as address,
        socket.create_connection(address, timeout=10) as sock,
    ):
        sock.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        assert _closed_within(sock, 6, trickle=True), "the witness still reads a request trickled for 6 s"


def test_connections_beyond_the_bound_are_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle connections hold a thread each: beyond max_connections at once, a new one is closed at
    once, and served again when one is freed. Before: one thread per connection, unbounded."""
    with _witness_server(tmp_path, monkeypatch, max_connections=2) as address:
        held = [socket.create_connection(address, timeout=10) for _ in range(2)]
        with socket.create_connection(address, timeout=10) as extra:
            assert _closed_within(extra, 5, trickle=False)
        held.pop().close()
        deadline = time.monotonic() + 10
        while True:
            with socket.create_connection(address, timeout=10) as again:
                again.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if again.recv(100).startswith(b"HTTP/1.1 200"):
                    break
            assert time.monotonic() < deadline, "the freed slot was never given to a new connection"
        for sock in held:
            sock.close()


def _submit_all(url: str, ring: SignerKeyring, log: MemLog, now: int, state: dict[str, int]) -> None:
    """Extend the witness one size at a time, recording the largest size it answered 200 for."""
    client = WitnessClient(url, timeout=5)
    while state["next"] <= log.size:
        size = state["next"]
        old = state["cosigned"]
        note = _note(ring, size, log.root(size), now + size)
        try:
            client.add_checkpoint(note, old, log.proof(old, size) if old else [])
        except Exception:
            return
        state["cosigned"] = size
        state["next"] = size + 1


def test_kill_9_never_makes_the_witness_forget_what_it_cosigned(tmp_path: Path) -> None:
    """The witness is killed with SIGKILL at random moments while cosigning; after each restart on
    its state file it holds at least the largest size it answered 200 for, and refuses a fork of it.
    (Check and persist are one SQLite transaction committed before the answer: kept as a test.)"""
    ring, log_pub, state_file, _ = _setup(tmp_path)
    log, fork = _log_and_fork(400)
    now = int(time.time()) - 1000
    progress = {"next": 1, "cosigned": 0}
    port = free_port()
    args = witness_args(tmp_path / "witness.key", state_file, log_pub, port)
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "witness.log").open("w") as out:
        for round_ in range(4):
            proc = start_process(args, port, out)
            try:
                if progress["cosigned"]:
                    held = _served(url)
                    assert held.size >= progress["cosigned"], (round_, held.size, progress)
                    progress["cosigned"] = held.size
                    progress["next"] = held.size + 1
                    fork_note = _note(ring, held.size, fork.root(held.size), held.time)
                    assert _post(url, _body(held.size, [], fork_note))[0] == 422
            except BaseException:
                proc.kill()
                proc.wait(timeout=20)
                raise
            kill_9_mid_way(proc, lambda: _submit_all(url, ring, log, now, progress), progress, "cosigned")
    assert progress["cosigned"] > 0


def test_a_retired_log_key_cannot_extend_the_log_with_a_backdated_checkpoint(tmp_path: Path) -> None:
    """A retired log key stays trusted for checkpoints dated before its retirement, and the date is
    the checkpoint's own claim: whoever stole it could extend the log with a checkpoint dated back
    into the key's lifetime, and the witness cosigned it (before). It is dated before the checkpoint
    the witness cosigned last (signed by the new key, after the retirement), so now it is a 422."""
    ring = SignerKeyring.create(tmp_path / "signer.keys", NAME).rotated()
    stolen = ring.keys[0].signer.renamed(ORIGIN)
    ring = ring.retired_key(ring.keys[0].key_id)
    retired_at = ring.keys[0].retired
    assert retired_at is not None
    witness = Witness(create_witness_key(tmp_path / "witness.key", "w.example/w"), ring.public(), tmp_path / "w.db")
    log = MemLog()
    log.append(10)
    try:
        witness.add_checkpoint(_body(0, [], _note(ring, 6, log.root(6), retired_at + 1)))
        backdated = sign_note(Checkpoint(ORIGIN, 10, log.root(10), retired_at - 10).text(), [stolen])
        with pytest.raises(WitnessRefused, match="dated before") as refused:
            witness.add_checkpoint(_body(6, log.proof(6, 10), backdated))
        assert refused.value.status == 422
        assert witness.latest(ORIGIN) is not None and witness.latest(ORIGIN)[0] == 6  # type: ignore[index]
    finally:
        witness.close()
