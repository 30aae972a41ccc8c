"""The signer (`siemgate signer serve`, a real process over HTTP) attacked by whoever can reach its
port with the signing secret (the server, or anything that took it over): it must not date
checkpoints ahead of its clock, must not be made to stop a stream's log, must answer malformed
requests, and a kill -9 at any moment must never make it forget what it signed."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import pytest

from siemgate.tlog.checkpoint import Checkpoint, open_checkpoint
from siemgate.tlog.keys import PublicKeyring
from siemgate.tlog.note import split_note
from siemgate.tlog.signer import MAX_AHEAD, SignerRefused
from siemgate.tlog.signer_client import SignerClient, SignerUnavailable
from support.ports import free_port

from .test_signer_http import _secret
from .tlog_kit import ORIGIN, Kit, MemLog, kill_9_mid_way, make_kit, signer_args, signer_process, start_process


def _time(note: str) -> int:
    return Checkpoint.parse(split_note(note)[0]).time


def test_floods_of_heartbeats_or_trees_do_not_date_checkpoints_ahead_nor_stop_the_log(tmp_path: Path) -> None:
    """Before: each heartbeat got a time one second after the last, so 300 of them in 4 s dated
    checkpoints 300 s ahead (a staleness the verifiers could not see), and the next request got a
    422 "fix the clock", which the server records as an integrity error that stops the stream's log.
    Now a heartbeat of a tree whose last checkpoint is not past yet gets that checkpoint; new trees
    (each needs a later time) asked for faster than one a second get, past MAX_AHEAD, a 503 saying
    why (for the client: the signer is unavailable, the server retries), never a 422."""
    kit = make_kit(tmp_path)
    secret = _secret(tmp_path / "s")
    log = MemLog()
    log.append(200)
    with signer_process(kit, tmp_path / "s") as url:
        client = SignerClient(url, secret)
        first = client.sign(ORIGIN, 1, log.root(1), 0, [])
        notes = [client.sign(ORIGIN, 1, log.root(1), 1, []) for _ in range(400)]
        assert max(_time(n) for n in notes) <= int(time.time()) + 1
        assert _time(notes[-1]) >= _time(first)
        signed, paused = 1, None
        for size in range(2, 200):
            try:
                note = client.sign(ORIGIN, size, log.root(size), signed, log.proof(signed, size))
            except SignerUnavailable as exc:
                paused = str(exc)
                break
            assert _time(note) <= int(time.time()) + MAX_AHEAD + 1
            signed = size
        assert paused is not None and "503" in paused and "faster than one a second" in paused, paused
        assert signed >= MAX_AHEAD


def test_a_clock_set_back_pauses_signing_without_refusing_the_tree(tmp_path: Path) -> None:
    now = [2_000_000_000.0]
    kit = make_kit(tmp_path, clock=lambda: now[0])
    log = MemLog()
    log.append(2)
    first = kit.sign(log)
    now[0] -= 3600
    assert kit.sign(log) == first  # a heartbeat: the last checkpoint is still the freshest
    log.append(1)
    with pytest.raises(SignerRefused, match="clock was set back") as paused:
        kit.sign(log)
    assert paused.value.status == 503
    now[0] += 3600 + 5
    signed = open_checkpoint(kit.sign(log), kit.keyring.public(), now=int(now[0]))  # judged on the same clock
    assert (signed.checkpoint.size, signed.checkpoint.time) == (3, 2_000_000_005)


def _post(url: str, secret: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(
        url + "/v1/sign", data=body, method="POST", headers={"Authorization": f"Bearer {secret}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_json_the_parser_chokes_on_is_a_400(tmp_path: Path) -> None:
    """Before: an integer of 5,000 digits (ValueError) or 30,000 nested arrays (RecursionError) broke
    the handler: the connection closed without an answer."""
    kit = make_kit(tmp_path)
    secret = _secret(tmp_path / "s")
    with signer_process(kit, tmp_path / "s") as url:
        huge = b'{"origin": "%s", "size": %s, "root": "", "old_size": 0}' % (ORIGIN.encode(), b"9" * 5000)
        for body in (huge, b"[" * 30000 + b"]" * 30000, b"\xff"):
            status, answer = _post(url, secret, body)
            assert status == 400 and "not JSON" in json.loads(answer)["error"], answer


def _sign_all(url: str, secret: str, log: MemLog, progress: dict[str, int]) -> None:
    """Extend the signer one size at a time, recording the largest size it answered 200 for."""
    client = SignerClient(url, secret, timeout=5)
    while progress["signed"] < log.size:
        old, size = progress["signed"], progress["signed"] + 1
        try:
            client.sign(ORIGIN, size, log.root(size), old, log.proof(old, size) if old else [])
        except Exception:
            return
        progress["signed"] = size


def _killed_while_signing(kit: Kit, secret: str, log: MemLog, progress: dict[str, int], out: IO[str]) -> None:
    """One round: start the signer, check it holds what it answered for, sign, kill -9 it mid-way."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_process(signer_args(kit, kit.tmp / "s", port), port, out)
    try:
        client = SignerClient(url, secret)
        if progress["signed"]:
            held = client.checkpoint(ORIGIN)
            assert held is not None
            size = open_checkpoint(held, PublicKeyring.parse(client.keys())).checkpoint.size
            assert size >= progress["signed"], (size, progress)
            progress["signed"] = size
            with pytest.raises(SignerRefused) as fork:  # another root for the size it signed
                client.sign(ORIGIN, size, bytes(32), size, [])
            assert fork.value.status == 422
    except BaseException:
        proc.kill()
        proc.wait(timeout=20)
        raise
    kill_9_mid_way(proc, lambda: _sign_all(url, secret, log, progress), progress, "signed")


def test_kill_9_never_makes_the_signer_forget_what_it_signed(tmp_path: Path) -> None:
    """Killed with SIGKILL at random moments while signing; after each restart on its state file it
    holds at least the largest size it answered 200 for, and refuses another root for it. (Check
    and persist are one SQLite transaction committed before the answer: kept as a test.)"""
    kit = make_kit(tmp_path)
    kit.signer.close()
    secret = _secret(tmp_path / "s")
    log = MemLog()
    log.append(300)
    progress = {"signed": 0}
    with (tmp_path / "signer.log").open("w") as out:
        for _ in range(4):
            _killed_while_signing(kit, secret, log, progress, out)
    assert progress["signed"] > 0
