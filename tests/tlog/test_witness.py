"""`siemgate witness serve` as a real process: the C2SP tlog-witness answers, forks and rollbacks
refused, and check-and-persist atomic under concurrent submissions (also from two processes on
one state file)."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from siemgate.tlog import witness_http
from siemgate.tlog.checkpoint import Checkpoint
from siemgate.tlog.cosignature import WitnessPolicy, cosignatures, create_witness_key, load_witness_keys
from siemgate.tlog.keys import KeyFileError, SignerKeyring
from siemgate.tlog.merkle import EMPTY_ROOT
from siemgate.tlog.note import NoteError, NoteSigner, sign_note
from siemgate.tlog.witness import MAX_AHEAD, Witness, WitnessRefused
from siemgate.tlog.witness_client import WitnessClient, WitnessConflict, WitnessUnavailable
from support.ports import free_port
from support.receivers import misbehaving

from .tlog_kit import NAME, ORIGIN, MemLog, make_kit, run_cli, witness_process

T = 1_767_225_600


def _note(ring: SignerKeyring, size: int, root: bytes, time: int = T, origin: str = ORIGIN) -> str:
    """A checkpoint signed with the log's key directly (what an attacker holding the key can do)."""
    return sign_note(Checkpoint(origin, size, root, time).text(), ring.signers_for(origin))


def _post(url: str, body: bytes) -> tuple[int, str, str]:
    request = urllib.request.Request(url + "/add-checkpoint", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def _setup(tmp_path: Path) -> tuple[SignerKeyring, Path, Path, NoteSigner]:
    kit = make_kit(tmp_path)
    kit.signer.close()
    key = create_witness_key(tmp_path / "witness.key", "witness.test.example/w1")
    return kit.keyring, kit.public_key, tmp_path / "witness.state", key


def test_witness_protocol_over_http(tmp_path: Path) -> None:
    ring, log_pub, state, key = _setup(tmp_path)
    policy = WitnessPolicy((key.verifier(),), 1)
    log = MemLog()
    log.append(10)
    with witness_process(tmp_path / "witness.key", state, log_pub) as url:
        client = WitnessClient(url)
        first = _note(ring, 6, log.root(6))
        lines = client.add_checkpoint(first, 0, [])
        cosigned = first + lines
        [cosig] = policy.check(cosigned)
        assert cosig.witness.name == "witness.test.example/w1" and cosig.timestamp > 0
        # The monitoring endpoint serves the log's signature and the cosignature.
        hashed = hashlib.sha256(ORIGIN.encode()).hexdigest()
        with urllib.request.urlopen(f"{url}/{hashed}/checkpoint", timeout=10) as resp:
            served = resp.read().decode()
        assert served.startswith(first) and len(policy.check(served)) == 1

        # 409 with the size it last cosigned, as text/x.tlog.size, when `old` is not that size.
        second = _note(ring, 10, log.root(10), T + 1)
        status, ctype, body = _post(url, f"old 0\n\n{second}".encode())
        assert (status, ctype, body) == (409, "text/x.tlog.size", "6\n")
        with pytest.raises(WitnessConflict) as conflict:
            client.add_checkpoint(second, 3, log.proof(3, 10))
        assert conflict.value.size == 6
        policy.check(second + client.add_checkpoint(second, 6, log.proof(6, 10)))
        # A heartbeat (same size and root, fresh time) is cosigned again.
        policy.check(
            _note(ring, 10, log.root(10), T + 2) + client.add_checkpoint(_note(ring, 10, log.root(10), T + 2), 10, [])
        )

        # A forked history: another checkpoint of size 10, signed with the log's key, is refused.
        fork = MemLog()
        fork.append(10)
        status, _, body = _post(url, f"old 10\n\n{_note(ring, 10, fork.root(10), T + 3)}".encode())
        assert status == 422 and "forked" in body
        # A longer fork whose proof does not reach the cosigned root is refused too.
        fork.append(2)
        with pytest.raises(WitnessRefused) as longer:
            client.add_checkpoint(_note(ring, 12, fork.root(12), T + 4), 10, fork.proof(10, 12))
        assert longer.value.status == 422 and "not consistent" in longer.value.message
        # A rollback: a smaller tree from the cosigned size is a 400, from its own size a 409.
        status, _, _ = _post(url, f"old 10\n\n{_note(ring, 6, log.root(6), T + 5)}".encode())
        assert status == 400
        with pytest.raises(WitnessConflict):
            client.add_checkpoint(_note(ring, 6, log.root(6), T + 5), 6, [])
        # Unknown origin 404; no trusted signature 403; a tampered signature 403.
        other = SignerKeyring.create(tmp_path / "other.keys", NAME)
        status, _, _ = _post(url, f"old 0\n\n{_note(ring, 1, log.root(1), origin='elsewhere.example/x')}".encode())
        assert status == 404
        status, _, body = _post(url, f"old 10\n\n{_note(other, 11, bytes(32), T + 6)}".encode())
        assert status == 403 and "trusted" in body
        good = _note(ring, 10, log.root(10), T + 7)
        tampered = good.replace(str(T + 7), str(T + 8))
        assert _post(url, f"old 10\n\n{tampered}".encode())[0] == 403
        # Malformed requests are 400 with a reason.
        for bad, reason in [
            (b"10\n\n" + good.encode(), "old <size>"),
            (b"old 010\n\n" + good.encode(), "leading zeros"),
            (b"old 6\nnot-base64\n\n" + good.encode(), "proof line 1"),
            (b"old 10\n" + good.encode(), "proof line 1"),  # the checkpoint's own lines taken as a proof
            (b"old 10\n\n" + good.replace("time ", "tim ").encode(), "checkpoint is malformed"),
            (b"old 10\n" + b"AAAA\n" * 64 + b"\n" + good.encode(), "at most 63"),
        ]:
            status, _, body = _post(url, bad)
            assert status == 400 and reason in body, body
        # The state never moved past size 10 with the honest root.
        served = urllib.request.urlopen(f"{url}/{hashed}/checkpoint", timeout=10).read().decode()
        assert Checkpoint.parse(served[: served.index("\n\n") + 1]).root == log.root(10)
    witness = Witness(key, ring.public(), state)
    try:
        reasons = [r for _, s, r in witness.refusals(ORIGIN) if s == 422]
        assert any("forked" in r for r in reasons)  # kept as evidence of the log's misbehaviour
    finally:
        witness.close()
    with pytest.raises(WitnessUnavailable):
        client.add_checkpoint(good, 10, [])


def test_empty_tree_rules(tmp_path: Path) -> None:
    ring, _, state, key = _setup(tmp_path)
    witness = Witness(key, ring.public(), state)
    log = MemLog()
    log.append(3)
    try:
        with pytest.raises(WitnessRefused) as bad_root:
            witness.add_checkpoint(f"old 0\n\n{_note(ring, 0, bytes(32))}".encode())
        assert bad_root.value.status == 422
        with pytest.raises(WitnessRefused) as proof_from_zero:
            witness.add_checkpoint(f"old 0\n{'A' * 43}=\n\n{_note(ring, 3, log.root())}".encode())
        assert proof_from_zero.value.status == 422
        witness.add_checkpoint(f"old 0\n\n{_note(ring, 0, EMPTY_ROOT)}".encode())
        witness.add_checkpoint(f"old 0\n\n{_note(ring, 3, log.root(), T + 1)}".encode())
        assert witness.latest(ORIGIN) is not None and witness.latest(ORIGIN)[0] == 3  # type: ignore[index]
    finally:
        witness.close()


def _race(urls: tuple[str, str], bodies: tuple[bytes, bytes]) -> list[int]:
    results: list[int] = [0, 0]
    barrier = threading.Barrier(2)

    def send(i: int) -> None:
        barrier.wait()
        results[i] = _post(urls[i], bodies[i])[0]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_submissions_from_one_old_size_cannot_both_advance(tmp_path: Path) -> None:
    """Two witness processes on one state file and two concurrent submissions per round, both
    extending the same old size to different sizes: exactly one is cosigned, the other gets 409,
    and the recorded size is the winner's (never rolled back to the loser's)."""
    ring, log_pub, state, _ = _setup(tmp_path)
    log = MemLog()
    log.append(2 + 2 * 30)
    key_file = tmp_path / "witness.key"
    with (
        witness_process(key_file, state, log_pub) as one,
        witness_process(key_file, state, log_pub, log_name="witness2.log") as two,
    ):
        assert WitnessClient(one).add_checkpoint(_note(ring, 2, log.root(2)), 0, [])
        size = 2
        for n in range(30):
            a, b = size + 1, size + 2
            bodies = tuple(
                (
                    f"old {size}\n"
                    + "".join(h + "\n" for h in _b64(log.proof(size, s)))
                    + f"\n{_note(ring, s, log.root(s), T + 1 + n)}"
                ).encode()
                for s in (a, b)
            )
            statuses = _race((one, two) if n % 2 else (two, one), bodies)  # type: ignore[arg-type]
            assert sorted(statuses) == [200, 409], statuses
            won = a if statuses[0] == 200 else b
            hashed = hashlib.sha256(ORIGIN.encode()).hexdigest()
            served = urllib.request.urlopen(f"{one}/{hashed}/checkpoint", timeout=10).read().decode()
            assert Checkpoint.parse(served[: served.index("\n\n") + 1]).size == won
            size = won


def _b64(hashes: list[bytes]) -> list[str]:
    import base64

    return [base64.b64encode(h).decode() for h in hashes]


def test_cosignature_checks(tmp_path: Path) -> None:
    ring, _, _, key = _setup(tmp_path)
    second = create_witness_key(tmp_path / "w2.key", "witness.test.example/w2")
    log = MemLog()
    log.append(4)
    witnesses = []
    for i, k in enumerate((key, second)):
        witnesses.append(Witness(k, ring.public(), tmp_path / f"state{i}"))
    try:
        note = _note(ring, 4, log.root())
        lines = [w.add_checkpoint(f"old 0\n\n{note}".encode()) for w in witnesses]
        both = WitnessPolicy((key.verifier(), second.verifier()), 2)
        assert len(both.check(note + "".join(lines))) == 2
        with pytest.raises(NoteError, match="quorum is 2"):
            both.check(note + lines[0])
        with pytest.raises(NoteError, match="quorum is 2"):  # one witness twice is still one witness
            both.check(note + lines[0] + lines[0])
        assert cosignatures(note + lines[1], [key.verifier()]) == []  # unknown witnesses are ignored
        # A cosignature over another checkpoint text does not verify.
        other = _note(ring, 4, log.root(), T + 9)
        with pytest.raises(NoteError, match="does not verify"):
            cosignatures(other + lines[0], [key.verifier()])
        with pytest.raises(ValueError, match="quorum of 3"):
            WitnessPolicy((key.verifier(), second.verifier()), 3)
    finally:
        for w in witnesses:
            w.close()


def test_witness_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, log_pub, state, _ = _setup(tmp_path)
    key_file = tmp_path / "w.key"
    run_cli(capsys, "witness", "init", "--key-file", str(key_file), "--name", "witness.example/w")
    assert (key_file.stat().st_mode & 0o777) == 0o600
    _, err = run_cli(capsys, "witness", "init", "--key-file", str(key_file), "--name", "x.example/w", ok=False)
    assert "already exists" in err
    out = tmp_path / "w.pub"
    run_cli(capsys, "witness", "keys", "--key-file", str(key_file), "--out", str(out))
    [verifier] = load_witness_keys(out)
    assert verifier.name == "witness.example/w" and verifier.alg == 0x04
    serve = ["witness", "serve", "--key-file", str(key_file), "--state-file", str(state), "--log-key", str(log_pub)]
    # without its state a witness would cosign a fork as the first checkpoint it sees: it refuses to start
    _, err = run_cli(capsys, *serve, "--listen", f"127.0.0.1:{free_port()}", ok=False)
    assert f"the state file {state} does not exist" in " ".join(err.split()) and "--new-state" in err, err
    assert not state.exists()
    key_file.chmod(0o644)
    assert "chmod 600" in run_cli(capsys, *serve, "--new-state", ok=False)[1]
    key_file.chmod(0o600)
    assert "host:port" in run_cli(capsys, *serve, "--new-state", "--listen", "nowhere", ok=False)[1]
    assert "does not exist" in run_cli(capsys, *serve[:-1], str(tmp_path / "none.pub"), "--new-state", ok=False)[1]
    # nor do state and forget make one: the next serve would then start without its state
    for command in ("state", "forget"):
        _, err = run_cli(capsys, "witness", command, "--origin", ORIGIN, *serve[2:], ok=False)
        assert f"the state file {state} does not exist" in " ".join(err.split()), err
        assert not state.exists()
        shown, _ = run_cli(capsys, "witness", command, "--help")
        assert "created if absent" not in shown and "--new-state" in shown, shown
    state.touch(0o600)
    _, err = run_cli(capsys, "witness", "state", "--origin", ORIGIN, *serve[2:], ok=False)
    assert "never saw" in err
    # A log's public key file is not a witness key file.
    with pytest.raises(KeyFileError, match="type 0x04"):
        load_witness_keys(log_pub)


def test_a_witness_answering_without_end_is_cut_off() -> None:
    """The client reads at most MAX_ANSWER_BYTES of a witness's answer (a witness is a network peer:
    one that answers gigabytes, as here, is unavailable, not a way to exhaust the log's memory)."""
    from siemgate.tlog.witness_client import MAX_ANSWER_BYTES

    def flood(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(1 << 30))
        handler.end_headers()
        for _ in range(2 * MAX_ANSWER_BYTES // 65536 + 2):
            handler.wfile.write(b"x" * 65536)

    too_long = pytest.raises(WitnessUnavailable, match=f"answered more than {MAX_ANSWER_BYTES} bytes")
    with misbehaving(flood) as url, too_long:
        WitnessClient(url, timeout=10).add_checkpoint("a checkpoint\n", 0, [])


def test_a_witness_that_breaks_off_its_answer_is_unavailable() -> None:
    """An answer cut short (fewer bytes than its Content-Length, then the connection closed) is the
    witness being unavailable, not an unexpected error for the log's publisher."""

    def broken(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b"- witness cosignature cut sh")

    with misbehaving(broken) as url, pytest.raises(WitnessUnavailable, match="broke off its answer"):
        WitnessClient(url, timeout=10).add_checkpoint("a checkpoint\n", 0, [])


def _timestamp(note: str, line: str, key: NoteSigner) -> int:
    return cosignatures(note + line, [key.verifier()])[0].timestamp


def test_a_witness_whose_clock_jumped_ahead_once_does_not_date_cosignatures_ahead(tmp_path: Path) -> None:
    """Before: timestamps were max(now, last), so after one cosignature made an hour ahead (a clock
    that jumped, then was put right) every later one was dated that hour ahead, silently (measured:
    the next, made at T, was dated T + 3600), and verifiers refuse cosignatures from the future.
    Now the witness cosigns nothing of that origin (503, naming its clock) until its clock is within
    MAX_AHEAD of its last cosignature, never dates one more than that ahead, and other origins go on."""
    ring, _, state, key = _setup(tmp_path)
    now = [T + 3600]
    witness = Witness(key, ring.public(), state, clock=lambda: now[0])
    server = witness_http.make_server(witness, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = WitnessClient(f"http://127.0.0.1:{server.server_address[1]}")
    log = MemLog()
    log.append(12)
    try:
        first = _note(ring, 4, log.root(4))
        assert _timestamp(first, client.add_checkpoint(first, 0, []), key) == T + 3600  # the clock was ahead
        now[0] = T  # put right
        second = _note(ring, 8, log.root(8), T + 1)
        with pytest.raises(WitnessUnavailable, match="HTTP 503") as paused:
            client.add_checkpoint(second, 4, log.proof(4, 8))
        said = " ".join(str(paused.value).split())
        assert f"this witness's clock reads {T}, 3600 s before its last cosignature of {ORIGIN}" in said, said
        latest = witness.latest(ORIGIN)
        assert latest is not None and latest[0] == 4  # nothing recorded
        assert witness.refusals(ORIGIN) == []  # not the log's misbehaviour
        other = f"{NAME}/{'B' * 26}/auditevents"  # another origin: its own timestamps
        other_note = _note(ring, 1, log.root(1), T, origin=other)
        assert _timestamp(other_note, client.add_checkpoint(other_note, 0, []), key) == T
        now[0] = T + 3600 - MAX_AHEAD  # within MAX_AHEAD: dated at the last, never before it
        assert _timestamp(second, client.add_checkpoint(second, 4, log.proof(4, 8)), key) == T + 3600
        now[0] = T + 3700
        third = _note(ring, 12, log.root(12), T + 2)
        assert _timestamp(third, client.add_checkpoint(third, 8, log.proof(8, 12)), key) == T + 3700
    finally:
        server.shutdown()
        server.server_close()
        witness.close()


def test_a_witness_starts_cosigning_only_origins_of_siemgate_form(tmp_path: Path) -> None:
    """Before: the witness cosigned, as a new log, any origin its log key covers (measured: the
    uuid in lower case, a trailing '/', '.../auditevents/2', the bare key name and the others below
    were each cosigned from old size 0), so whoever holds the log's key could have a second history
    of a stream witnessed under a variant of its origin, and grow the state file by one origin per
    request. Now a new origin must be `<key name>/<account uuid>/<feature>` (404, the spec's unknown
    log, naming the form), each new origin is one line in the witness's output, and an origin
    already in the state file (of an earlier release) goes on whatever its text."""
    ring, log_pub, state, key = _setup(tmp_path)
    log = MemLog()
    log.append(8)
    account = ORIGIN.split("/")[-2]
    legacy = f"{NAME}/{account.lower()}/auditevents"  # cosigned by an earlier release
    Witness(key, ring.public(), state).close()
    with sqlite3.connect(state) as conn:
        conn.execute(
            "INSERT INTO latest (origin, size, root, cosigned_at, note) VALUES (?, 4, ?, ?, ?)",
            (legacy, log.root(4), T, _note(ring, 4, log.root(4), origin=legacy)),
        )
    conn.close()
    variants = [
        f"{NAME}/{account.lower()}/itemusages",
        f"{NAME}/{account}/AuditEvents",
        f"{NAME}/{account}/auditevents/",
        f"{NAME}/{account}/auditevents/2",
        f"{NAME}/{account}",
        f"{NAME}/{account[:-1]}/auditevents",
        f"{NAME}/{account}1/auditevents",
        f"{NAME}/x/{account}/auditevents",
        f"{NAME}//{account}/auditevents",
        f"{NAME}/{account.replace('A', '1')}/auditevents",  # not base32
        NAME,
    ]
    with witness_process(tmp_path / "witness.key", state, log_pub) as url:
        for origin in variants:
            status, _, body = _post(url, f"old 0\n\n{_note(ring, 1, log.root(1), origin=origin)}".encode())
            assert status == 404, (origin, status, body)
            assert f"this witness never cosigned {origin}" in body and "26 upper-case base32" in body, body
            hashed = hashlib.sha256(origin.encode()).hexdigest()
            with pytest.raises(urllib.error.HTTPError) as none:
                urllib.request.urlopen(f"{url}/{hashed}/checkpoint", timeout=10)
            assert none.value.code == 404
        client = WitnessClient(url)
        first = _note(ring, 3, log.root(3))
        client.add_checkpoint(first, 0, [])
        client.add_checkpoint(_note(ring, 8, log.root(8), T + 1), 3, log.proof(3, 8))
        # The origin of an earlier release's state goes on: it is no new log.
        client.add_checkpoint(_note(ring, 8, log.root(8), T + 1, origin=legacy), 4, log.proof(4, 8))
    said = (tmp_path / "witness.log").read_text()
    started = [line for line in said.splitlines() if "started cosigning a new log" in line]
    assert len(started) == 1 and f"the first checkpoint of {ORIGIN}, at size 3" in started[0], said
