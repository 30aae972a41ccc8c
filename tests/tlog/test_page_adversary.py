"""A malicious server against `siemgate-verify follow` (docs/integrity.md, "Following a stream").

A model of an honest server keeps a log in memory (late events before the window, events after
it, a batch sometimes committed between a page and its proof, so that empty pages owe leaves) and
answers the follower's pages, page proofs, checkpoints and consistency proofs with the same
library the real server uses. Random honest histories must verify; then the server tells one lie
— an event of the window dropped, altered, backdated, reordered, duplicated or called purged, an
empty page that hides what follows its cursor, a cursor page passed off as a reset that skips
events, a rolled-back, forked or other log's checkpoint — and the follower must refuse it on that
run. Bounded to a few seconds: small logs, a fixed seed per trial.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from siemgate.tlog.bundle import format_hashes
from siemgate.tlog.checkpoint import Checkpoint
from siemgate.tlog.cosignature import MAX_CLOCK_SKEW
from siemgate.tlog.entry import Entry, entry_for
from siemgate.tlog.follow import Client, follow
from siemgate.tlog.keys import SignerKeyring, SigningKey
from siemgate.tlog.merkle import decompose, root_of, tree_reader
from siemgate.tlog.note import NoteSigner, sign_note
from siemgate.tlog.page_items import split_page
from siemgate.tlog.page_proof import MAX_TAIL, Leaf, PageProof
from siemgate.tlog.proof import consistency_proof, range_proof
from siemgate.tlog.verify_page import StreamState

from .tlog_kit import NAME, T0, event_body

SECOND = 1_000_000_000
ORIGIN = f"{NAME}/ACCTA222222222222222222222/auditevents"
OTHER = f"{NAME}/ACCTB222222222222222222222/auditevents"
START, END = T0 + 100 * SECOND, T0 + 200 * SECOND  # the followed window
RING = SignerKeyring((SigningKey(NoteSigner.generate(NAME), 0),))
KEYS = RING.public()


class Log:
    """One origin's log in memory, with the checkpoints signed for it."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.bodies: list[bytes] = []
        self.entries: list[Entry] = []
        self.notes: list[str] = []
        self.time = T0 // SECOND + 1000  # signed after every event's timestamp

    def append(self, rng: random.Random, count: int) -> None:
        for _ in range(count):
            where = rng.random()
            if where < 0.15:
                ts = START - rng.randrange(1, 90) * SECOND  # late, before the window
            elif where < 0.25:
                ts = END + rng.randrange(1, 90) * SECOND
            else:
                ts = START + rng.randrange(0, 101) * SECOND
            self.add(ts, event_body(ts, len(self.bodies)))

    def add(self, ts: int, body: bytes) -> None:
        self.bodies.append(body)
        self.entries.append(entry_for(ts, body))

    def sign(self, size: int | None = None) -> str:
        size = len(self.entries) if size is None else size
        self.time += 1
        cp = Checkpoint(self.origin, size, root_of(self.leaves(size)), self.time)
        note = sign_note(cp.text(), RING.signers_for(self.origin))
        self.notes.append(note)
        return note

    def leaves(self, size: int) -> list[bytes]:
        return [e.leaf() for e in self.entries[:size]]

    def checkpoint(self) -> Checkpoint:
        return Checkpoint.parse(self.notes[-1].rpartition("\n\n")[0] + "\n")


def in_window(entry: Entry) -> bool:
    return START <= entry.ts_ns <= END


def page_bytes(cursor: str, has_more: bool, items: list[bytes]) -> bytes:
    more = b"true" if has_more else b"false"
    return b'{"cursor":"' + cursor.encode() + b'","has_more":' + more + b',"items":[' + b",".join(items) + b"]}"


def position(request: dict[str, Any]) -> int:
    return int(request["cursor"][1:]) if "cursor" in request else 0


class Server(Client):
    """The honest server's answers, computed from the model (no network); `lie` may replace one."""

    def __init__(self, log: Log, rng: random.Random, limit: int) -> None:
        super().__init__("http://model.invalid", "token", "auditevents")
        self.log, self.rng, self.limit = log, rng, limit
        self.budget: int | None = rng.choice([None, None, 3, 8])
        self.race = False  # commit a batch between the next page and its proof
        self.lie: Callable[[Server, str, Any], Any] | None = None
        self.told = False  # whether the lie was told

    # the honest answers
    def honest_page(self, after: int) -> tuple[str, bool, list[int]]:
        """(cursor, has_more, indices served) of the page after `after`. With a `budget`, a page
        examines at most that many leaves, and when it runs out before `limit` matches it stops with
        what it found (maybe nothing), its cursor past what it examined and has_more true
        (docs/cursors.md, "Bounded work")."""
        log = self.log
        size = len(log.entries)
        stop = size if self.budget is None else min(size, after + self.budget)
        window = [i for i in range(after, size) if in_window(log.entries[i])]
        items = [i for i in window if i < stop][: self.limit]
        if len(items) < self.limit and stop < size:
            return f"c{stop}", True, items
        last = items[-1] + 1 if items else after
        return f"c{last}", len(window) > len(items), items

    def honest_proof(self, first: int, last: int, reset: bool, old_size: int | None) -> PageProof:
        tail = first == last
        end = max(min(self.log.checkpoint().size, first + MAX_TAIL) if tail else last, first)
        return self.proof(first, end, tail, reset, old_size)

    def proof(self, first: int, end: int, tail: bool, reset: bool, old_size: int | None) -> PageProof:
        """The proof of leaves [first, end) against the newest checkpoint, each classified as the
        server does (src/siemgate/integrity/proofs.py)."""
        log = self.log
        cp = log.checkpoint()
        proof = PageProof(log.notes[-1], START, END, reset, tail, first, end)
        for idx in range(first, end):
            leaf = Leaf(idx, log.entries[idx])
            kind = proof.omitted if not in_window(leaf.entry) else proof.pending if tail else proof.items
            kind.append(leaf)
        read = tree_reader(log.leaves(cp.size))
        hashes = range_proof(first, end, cp.size, read)
        split = len(decompose(0, first))
        proof.left, proof.right = hashes[:split], hashes[split:]
        if old_size is not None:
            proof.old_size, proof.consistency = old_size, consistency_proof(old_size, cp.size, read)
        return proof

    # the Client's calls
    def page(self, body: dict[str, Any]) -> bytes:
        cursor, more, items = self.honest_page(position(body))
        page = page_bytes(cursor, more, [self.log.bodies[i] for i in items])
        if self.race:
            self.race = False
            self.log.append(self.rng, 3)
            self.log.sign()
        return bytes(self._told("page", (body, page)) or page)

    def page_proof(self, request: dict[str, Any], response_cursor: str, old_size: int | None) -> Any:
        proof = self.honest_proof(position(request), int(response_cursor[1:]), "cursor" not in request, old_size)
        return self._told("proof", (request, proof.to_json())) or proof.to_json()

    def checkpoint(self) -> str:
        return str(self._told("checkpoint", self.log.notes[-1]) or self.log.notes[-1])

    def consistency(self, old: int, new: int) -> str:
        honest = format_hashes(consistency_proof(old, new, tree_reader(self.log.leaves(new))))
        return str(self._told("consistency", (old, new)) or honest)

    def _told(self, call: str, honest: Any) -> Any:
        if self.lie is None:
            return None
        answer = self.lie(self, call, honest)
        if answer is not None:
            self.told = True
        return answer


# Lies. Each is called with every answer the server is about to give; it returns a false answer
# when it can tell one that hides or changes something, None to answer honestly.
Lie = Callable[[Server, str, Any], Any]


Change = Callable[[Server, list[bytes], dict[str, Any]], tuple[list[bytes], dict[str, Any]] | None]


def _page_lie(change: Change) -> Lie:
    """A lie about one page with items: `change(server, items, proof)` returns the served items and
    the proof, or None when this page offers no chance; the page and its proof are changed together."""
    held: dict[str, Any] = {}

    def lie(server: Server, call: str, honest: Any) -> Any:
        if call == "page" and not held and not server.told:
            request = honest[0]
            cursor, more, idx = server.honest_page(position(request))
            if not idx:
                return None
            proof = server.honest_proof(position(request), int(cursor[1:]), "cursor" not in request, None).to_json()
            changed = change(server, [server.log.bodies[i] for i in idx], proof)
            if changed is None:
                return None
            held["proof"] = changed[1]
            return page_bytes(cursor, more, changed[0])
        if call == "proof" and "proof" in held and not held.get("used"):
            held["used"] = True
            proof = held["proof"]
            proof["old_size"], proof["consistency"] = honest[1]["old_size"], honest[1]["consistency"]
            proof["checkpoint"] = honest[1]["checkpoint"]
            proof["right"] = honest[1]["right"]  # the checkpoint may have grown meanwhile
            return proof
        return None

    return lie


def _drop(rng: random.Random) -> Lie:
    """An event of the window left out of the page; the proof calls it outside the window."""

    def change(server: Server, items: list[bytes], proof: dict[str, Any]) -> Any:
        j = rng.randrange(len(items))
        proof["omitted"].append(proof["items"].pop(j))
        return items[:j] + items[j + 1 :], proof

    return _page_lie(change)


def _drop_quietly(rng: random.Random) -> Lie:
    def change(server: Server, items: list[bytes], proof: dict[str, Any]) -> Any:
        j = rng.randrange(len(items))
        return items[:j] + items[j + 1 :], proof

    return _page_lie(change)


def _backdate(rng: random.Random) -> Lie:
    """Dropped, with a forged timestamp outside the window in the proof."""

    def change(server: Server, items: list[bytes], proof: dict[str, Any]) -> Any:
        j = rng.randrange(len(items))
        leaf = proof["items"].pop(j)
        proof["omitted"].append({**leaf, "ts_ns": START - 999 * SECOND})
        return items[:j] + items[j + 1 :], proof

    return _page_lie(change)


def _purge(rng: random.Random) -> Lie:
    """Dropped and called purged by retention, with a cutoff just after it (the newest checkpoint's time)."""

    def change(server: Server, items: list[bytes], proof: dict[str, Any]) -> Any:
        j = rng.randrange(len(items))
        proof["purged"].append(proof["items"].pop(j))
        proof["retention_cutoff_ns"] = server.log.time * SECOND
        return items[:j] + items[j + 1 :], proof

    return _page_lie(change)


def _alter(rng: random.Random, rehash: bool) -> Lie:
    """One item's bytes changed; with `rehash`, the proof lists the altered item's hash."""

    def change(server: Server, items: list[bytes], proof: dict[str, Any]) -> Any:
        j = rng.randrange(len(items))
        items[j] = items[j].replace(b'"action":"update"', b'"action":"delete"')
        if rehash:
            proof["items"][j]["body_sha256"] = base64.b64encode(hashlib.sha256(items[j]).digest()).decode()
        return items, proof

    return _page_lie(change)


def _reorder(rng: random.Random) -> Lie:
    def change(server: Server, items: list[bytes], proof: dict[str, Any]) -> Any:
        if len(items) < 2:
            return None
        i, j = rng.sample(range(len(items)), 2)
        items[i], items[j] = items[j], items[i]
        return items, proof

    return _page_lie(change)


def _duplicate(rng: random.Random, listed: bool) -> Lie:
    """One item served twice; with `listed`, the proof lists its leaf twice too."""

    def change(server: Server, items: list[bytes], proof: dict[str, Any]) -> Any:
        j = rng.randrange(len(items))
        items.insert(j, items[j])
        if listed:
            proof["items"].insert(j, proof["items"][j])
        return items, proof

    return _page_lie(change)


def _owed(server: Server, after: int) -> bool:
    """Whether an event of the window is committed at or after `after`."""
    return any(in_window(e) for e in server.log.entries[after:])


def _hide(tail: bool) -> Lie:
    """An empty page although events of the window follow the cursor: its proof accounts for
    nothing (tail false) or stops before the first of them (tail true)."""
    held: dict[str, int] = {}

    def lie(server: Server, call: str, honest: Any) -> Any:
        if call == "page" and not server.told:
            after = position(honest[0])
            if not _owed(server, after):
                return None
            held["after"] = after
            return page_bytes(f"c{after}", False, [])
        if call == "proof" and "after" in held:
            after = held.pop("after")
            stop = after
            if tail:
                stop = next(i for i in range(after, len(server.log.entries)) if in_window(server.log.entries[i]))
            return server.proof(after, stop, tail, "cursor" not in honest[0], honest[1]["old_size"]).to_json()
        return None

    return lie


def _skip(rng: random.Random, reset: bool) -> Lie:
    """A page that starts after some events of the window, its proof claiming the kind of page it
    is not: a cursor page passed off as a reset (`reset`: its start is then the server's word, not
    checked against the chain), or the reset that starts a follow passed off as a cursor page
    (which hides that its start position is the server's word: no NOTICE)."""
    held: dict[str, Any] = {}

    def lie(server: Server, call: str, honest: Any) -> Any:
        if call == "page" and not server.told and ("cursor" in honest[0]) == reset:
            after = position(honest[0])
            window = [i for i in range(after, len(server.log.entries)) if in_window(server.log.entries[i])]
            if len(window) < 2:
                return None
            start = window[rng.randrange(1, len(window))]
            cursor, more, items = server.honest_page(start)
            held["start"] = start
            return page_bytes(cursor, more, [server.log.bodies[i] for i in items])
        if call == "proof" and "start" in held:
            proof = honest[1]
            start = held.pop("start")
            return server.honest_proof(start, int(proof["end_idx"]), reset, proof["old_size"]).to_json()
        return None

    return lie


def _size(note: str) -> int:
    return Checkpoint.parse(note.rpartition("\n\n")[0] + "\n").size


def _accepted(server: Server) -> int:
    """The size of the checkpoint the follower accepted at the end of its last run (this round
    signed one more)."""
    return _size(server.log.notes[-2])


def _rollback(rng: random.Random) -> Lie:
    """An older, smaller checkpoint than the one the follower accepted."""

    def lie(server: Server, call: str, honest: Any) -> Any:
        if call == "checkpoint" and len(server.log.notes) > 1:
            older = [n for n in server.log.notes if _size(n) < _accepted(server)]
            return rng.choice(older) if older else None
        return None

    return lie


def _fork(rng: random.Random) -> Lie:
    """The log rewritten from an index the follower has seen, signed with the log's key (a stolen
    key, or a recovery the follower is not told about) and shown to this follower only."""

    def lie(server: Server, call: str, honest: Any) -> Any:
        log = server.log
        if call == "checkpoint" and len(log.notes) > 1 and _accepted(server) > 0 and not server.told:
            forked = copy.deepcopy(log)
            idx = rng.randrange(_accepted(server))
            ts = forked.entries[idx].ts_ns
            forked.bodies[idx] = event_body(ts, -1)
            forked.entries[idx] = entry_for(ts, forked.bodies[idx])
            server.log = forked
            return forked.sign()
        return None

    return lie


def _other_origin(rng: random.Random) -> Lie:
    """Another account's log, a copy of this one that then goes its own way (split view); its
    checkpoint, honestly signed for its own origin, is served as this stream's."""

    def lie(server: Server, call: str, honest: Any) -> Any:
        if call == "checkpoint" and not server.told:
            other = Log(OTHER)
            other.bodies, other.entries, other.time = list(server.log.bodies), list(server.log.entries), server.log.time
            other.add(START + SECOND, event_body(START + SECOND, -2))
            server.log = other
            return other.sign()
        return None

    return lie


def _redated(note: str) -> str:
    """`note`'s tree signed again with the log key, dated an hour past what clocks may differ by."""
    cp = Checkpoint.parse(note.rpartition("\n\n")[0] + "\n")
    ahead = Checkpoint(cp.origin, cp.size, cp.root, int(time.time()) + MAX_CLOCK_SKEW + 3600)
    return sign_note(ahead.text(), RING.signers_for(cp.origin))


def _future(where: str) -> Lie:
    """The newest checkpoint (`where` "checkpoint") or a page proof's ("proof") dated in the future
    by whoever holds the log key, so that the stream never looks stale."""

    def lie(server: Server, call: str, honest: Any) -> Any:
        if call == where == "checkpoint":
            return _redated(honest)
        if call == where == "proof":
            return {**honest[1], "checkpoint": _redated(honest[1]["checkpoint"])}
        return None

    return lie


LIES: dict[str, Callable[[random.Random], Lie]] = {
    "drop": _drop,
    "drop quietly": _drop_quietly,
    "backdate": _backdate,
    "call purged": _purge,
    "alter": lambda rng: _alter(rng, rehash=False),
    "alter and rehash": lambda rng: _alter(rng, rehash=True),
    "reorder": _reorder,
    "duplicate": lambda rng: _duplicate(rng, listed=False),
    "duplicate and list twice": lambda rng: _duplicate(rng, listed=True),
    "empty page, no tail": lambda rng: _hide(tail=False),
    "empty page, short tail": lambda rng: _hide(tail=True),
    "cursor page as a reset": lambda rng: _skip(rng, reset=True),
    "rollback": _rollback,
    "fork": _fork,
    "other origin": _other_origin,
    "checkpoint dated in the future": lambda rng: _future("checkpoint"),
    "page proof dated in the future": lambda rng: _future("proof"),
}


def _run(server: Server, state: Path, out: list[str]) -> bool:
    out.clear()
    return follow(server, KEYS, state, {"limit": server.limit}, max_age=0, out=out.append)


def _honest_rounds(server: Server, rng: random.Random, state: Path, rounds: int) -> int:
    """Follow `rounds` rounds of appends; returns how many items were served and verified."""
    out: list[str] = []
    served = 0
    for n in range(rounds):
        server.log.append(rng, rng.randrange(0, 12))
        server.log.sign()
        server.race = n < rounds - 1 and rng.random() < 0.3
        assert _run(server, state, out), out
        served += sum(int(m) for line in out for m in re.findall(r"\((\d+) served", line))
    return served


@pytest.mark.parametrize("name", sorted(LIES))
def test_every_lie_of_a_malicious_server_is_refused_and_honest_histories_verify(tmp_path: Path, name: str) -> None:
    told = 0
    for trial in range(6):
        rng = random.Random(f"{name}/{trial}")
        log = Log(ORIGIN)
        server = Server(log, rng, limit=rng.randrange(1, 6))
        state = tmp_path / f"{trial}.json"
        _honest_rounds(server, rng, state, rng.randrange(1, 5))
        saved = state.read_text()
        server.log.append(rng, rng.randrange(1, 12))
        server.log.sign()
        server.lie = LIES[name](rng)
        out: list[str] = []
        verdict = _run(server, state, out)
        if not server.told:
            assert verdict, out  # nothing to lie about in this history: it is still honest
            continue
        told += 1
        assert not verdict, (name, trial, out)
        assert any(line.startswith("INVALID") for line in out), out
        if name in ("rollback", "fork", "other origin", "checkpoint dated in the future"):
            assert json.loads(state.read_text())["checkpoint"] == json.loads(saved)["checkpoint"]
    assert told >= 3, f"the lie {name!r} found a chance in only {told} of 6 histories"


@pytest.mark.parametrize("seed", range(4))
def test_a_follower_of_an_honest_history_verifies_every_event_of_the_window_once(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    server = Server(Log(ORIGIN), rng, limit=rng.randrange(1, 6))
    state = tmp_path / "state.json"
    served = _honest_rounds(server, rng, state, 10)
    assert served == sum(1 for e in server.log.entries if in_window(e)) > 0
    final = StreamState.from_json(json.loads(state.read_text()))
    assert final.checkpoint == server.log.notes[-1] and final.pending == []


def _tampered(saved: dict[str, Any], change: str) -> Any:
    data = copy.deepcopy(saved)
    if change == "truncated":
        return json.dumps(data)[:40]
    if change == "window not an object":
        data["window"] = [START, END]
    elif change == "window start not a number":
        data["window"]["start_ns"] = str(START)
    elif change == "next_idx a boolean":
        data["next_idx"] = True
    elif change == "cursor not a string":
        data["cursor"] = 12
    elif change == "pending not a list":
        data["pending"] = {"3": 1}
    return json.dumps(data)


@pytest.mark.parametrize(
    "change",
    [
        "truncated",
        "window not an object",
        "window start not a number",
        "next_idx a boolean",
        "cursor not a string",
        "pending not a list",
    ],
)
def test_a_tampered_state_file_is_refused_with_its_reason(tmp_path: Path, change: str) -> None:
    """What the follower remembers between runs, damaged: it stops (exit 2) naming the state file,
    and neither crashes nor goes on from a state it made up."""
    from siemgate.tlog.follow import FollowError

    rng = random.Random(change)
    server = Server(Log(ORIGIN), rng, limit=3)
    state = tmp_path / "state.json"
    _honest_rounds(server, rng, state, 2)
    state.write_text(_tampered(json.loads(state.read_text()), change))
    with pytest.raises(FollowError, match=f"cannot read the state file {state}"):
        _run(server, state, [])


def test_a_state_whose_checkpoint_does_not_verify_is_invalid(tmp_path: Path) -> None:
    rng = random.Random(1)
    server = Server(Log(ORIGIN), rng, limit=3)
    state = tmp_path / "state.json"
    _honest_rounds(server, rng, state, 2)
    saved = json.loads(state.read_text())
    saved["checkpoint"] = saved["checkpoint"].replace("\ntime ", "\ntime 1")  # the signature no longer verifies
    state.write_text(json.dumps(saved))
    out: list[str] = []
    assert not _run(server, state, out)
    assert out[0].startswith("INVALID: the state file's checkpoint does not verify"), out


@pytest.mark.parametrize("key", ["items", "cursor", "has_more"])
def test_a_page_with_a_key_twice_is_refused(tmp_path: Path, key: str) -> None:
    """JSON parsers differ on which of two values of one key they keep (Python's and Go's the
    last, others the first, serde refuses): a page whose first "items" holds a forged event and
    whose second holds the served ones verified as the second, while a first-wins SIEM would
    store the forgery. Such a page is not a page."""
    from siemgate.tlog.follow import FollowError
    from siemgate.tlog.verify_page import PageInputError, verify_page

    rng = random.Random(key)
    server = Server(Log(ORIGIN), rng, limit=5)
    server.log.append(rng, 8)
    server.log.sign()
    honest = server.page({"limit": 5})
    proof = server.page_proof({"limit": 5}, split_page(honest).cursor, None)
    assert verify_page(honest, proof, KEYS).ok
    forged = event_body(START + SECOND, -3)
    first = {"items": b'"items":[' + forged + b"],", "cursor": b'"cursor":"c0",', "has_more": b'"has_more":true,'}
    ambiguous = b"{" + first[key] + honest[1:]
    with pytest.raises(PageInputError, match=f"the key '{key}' twice"):
        verify_page(ambiguous, proof, KEYS)

    class Ambiguous(Server):
        def page(self, body: dict[str, Any]) -> bytes:
            return b"{" + first[key] + super().page(body)[1:]

    with pytest.raises(FollowError, match="twice"):
        _run(Ambiguous(server.log, rng, 5), tmp_path / "state.json", [])


def test_another_streams_log_is_refused_from_the_first_run(tmp_path: Path) -> None:
    """A follower of auditevents given, from its very first run (nothing saved yet), the pages and
    proofs of the account's itemusages log: every proof holds within that log, which is not the
    one asked for."""
    rng = random.Random(5)
    server = Server(Log(ORIGIN.replace("/auditevents", "/itemusages")), rng, limit=4)
    server.log.append(rng, 10)
    server.log.sign()
    out: list[str] = []
    assert not _run(server, tmp_path / "state.json", out)
    assert any("is not of the auditevents stream: another stream's log was served" in line for line in out), out
    honest = Server(Log(ORIGIN), rng, limit=4)
    honest.log.append(rng, 10)
    honest.log.sign()
    assert _run(honest, tmp_path / "honest.json", out) and out[-1].endswith(f"log {ORIGIN}"), out


def test_the_first_page_of_a_follow_is_the_reset_it_is(tmp_path: Path) -> None:
    """Before: the page verified without a word (no NOTICE that indices before it were taken on
    trust), its skipped events never served."""
    told = 0
    for trial in range(6):
        rng = random.Random(f"first page/{trial}")
        server = Server(Log(ORIGIN), rng, limit=rng.randrange(1, 6))
        server.log.append(rng, rng.randrange(4, 16))
        server.log.sign()
        server.lie = _skip(rng, reset=False)
        out: list[str] = []
        state = tmp_path / f"{trial}.json"
        verdict = _run(server, state, out)
        if not server.told:
            assert verdict, out
            continue
        told += 1
        assert not verdict, out
        assert any("the page answers a reset, but its proof is a cursor page's" in line for line in out), out
        assert not state.exists()
    assert told >= 3, told


def _older_same_size(where: str) -> Lie:
    """An older signing of the tree the follower holds, served as the newest checkpoint and, with
    `where` "checkpoint and proof", in the page proofs too."""

    def lie(server: Server, call: str, honest: Any) -> Any:
        notes = server.log.notes
        older = [n for n in notes[:-1] if _size(n) == _size(notes[-1])]
        if not older or call not in ("checkpoint", "proof") or call not in where:
            return None
        if call == "checkpoint":
            return older[0]
        return {**honest[1], "checkpoint": older[0]}

    return lie


@pytest.mark.parametrize("where", ["checkpoint", "checkpoint and proof"])
@pytest.mark.parametrize("trial", range(4))
def test_an_older_checkpoint_of_the_same_size_does_not_replace_the_newer(
    tmp_path: Path, where: str, trial: int
) -> None:
    """A server shows an older signing of the tree the follower holds, to make the log look
    staler than it is: the follower keeps the newest it has seen and judges freshness on it.
    Before: the older one replaced it in the state file."""
    rng = random.Random(f"older/{where}/{trial}")
    server = Server(Log(ORIGIN), rng, limit=rng.randrange(1, 6))
    state = tmp_path / "state.json"
    _honest_rounds(server, rng, state, rng.randrange(1, 4))
    for _ in range(rng.randrange(1, 3)):
        server.log.sign()  # the same tree, signed again later
    out: list[str] = []
    assert _run(server, state, out), out
    newest = server.log.notes[-1]
    assert json.loads(state.read_text())["checkpoint"] == newest
    server.lie = _older_same_size(where)
    assert _run(server, state, out), out
    assert server.told
    assert json.loads(state.read_text())["checkpoint"] == newest, out
    assert out[-1].endswith(f"log {ORIGIN}") and f"signed {_when(newest)}" in out[-1], out


def test_a_page_proof_with_an_older_signing_of_the_held_tree_keeps_the_newer() -> None:
    """`siemgate-verify page --state`: a proof whose checkpoint is an older signing of the tree
    the state holds verifies, and the state keeps the newer. Before: the older replaced it."""
    from siemgate.tlog.verify_page import verify_page

    rng = random.Random("older page")
    server = Server(Log(ORIGIN), rng, limit=50)
    server.log.append(rng, 12)
    older = server.log.sign()
    newer = server.log.sign()
    size = _size(newer)
    state = StreamState(checkpoint=newer)
    page = page_bytes(f"c{size}", False, [])
    proof = {**server.honest_proof(size, size, True, size).to_json(), "checkpoint": older}
    report = verify_page(page, proof, KEYS, state)
    assert report.ok, report.lines()
    assert state.checkpoint == newer


def _when(note: str) -> str:
    from siemgate.model.timestamps import format_ns

    return format_ns(Checkpoint.parse(note.rpartition("\n\n")[0] + "\n").time * SECOND)


def _six_signed_events(seed: str) -> Server:
    """An honest server of 6 events, signed, served 3 a page."""
    rng = random.Random(seed)
    server = Server(Log(ORIGIN), rng, limit=3)
    server.log.append(rng, 6)
    server.log.sign()
    return server


def test_a_lost_state_file_is_said_and_refused_with_require_state(tmp_path: Path) -> None:
    """A server that makes a follower lose its state file restarts its trust: the run says so on
    stdout, and with `require_state` (--require-state, for scheduled runs) refuses to start over.
    Before: it started afresh without a word."""
    from siemgate.tlog.follow import NO_STATE, FollowError

    server, state = _six_signed_events("lost state"), tmp_path / "state.json"
    out: list[str] = []
    assert follow(server, KEYS, state, {"limit": 3}, max_age=0, out=out.append)
    assert out[0].startswith(f"NOTICE {NO_STATE}"), out
    out.clear()
    assert follow(server, KEYS, state, {"limit": 3}, max_age=0, out=out.append, require_state=True)
    assert not any(NO_STATE in line for line in out), out
    state.unlink()
    with pytest.raises(FollowError, match=f"the state file {state} does not exist \\(--require-state\\)"):
        follow(server, KEYS, state, {"limit": 3}, max_age=0, out=out.append, require_state=True)
    assert not state.exists()


@pytest.mark.parametrize("command", ["page", "event"])
def test_page_and_event_can_pin_the_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    """`siemgate-verify page|event --feature F` refuses a proof from another stream's log of the
    same account (every proof holds within that log); without it the log verified is printed.
    Before: there was no --feature, and the page's result did not name the log."""
    from siemgate.tlog.merkle import tree_reader
    from siemgate.tlog.proof import inclusion_proof
    from siemgate.tlog.tlog_proof import TlogProof
    from siemgate.tlog.verify_cli import main

    other = ORIGIN.replace("/auditevents", "/itemusages")
    rng = random.Random(command)
    server = Server(Log(other), rng, limit=50)
    server.log.append(rng, 10)
    server.log.sign()
    (tmp_path / "keys.pub").write_text(KEYS.text())
    if command == "page":
        served = server.page({"limit": 50})
        proof = json.dumps(server.page_proof({"limit": 50}, split_page(served).cursor, None))
    else:
        served = server.log.bodies[3]
        hashes = inclusion_proof(3, len(server.log.entries), tree_reader(server.log.leaves(len(server.log.entries))))
        proof = TlogProof(3, hashes, server.log.notes[-1]).text()
    (tmp_path / "served").write_bytes(served)
    (tmp_path / "proof").write_text(proof)
    base = [command, str(tmp_path / "served"), str(tmp_path / "proof"), "--key", str(tmp_path / "keys.pub")]
    assert main(base) == 0
    assert (f"of {other}," if command == "event" else f"log {other}") in capsys.readouterr().out.splitlines()[-1]
    assert main([*base, "--feature", "itemusages"]) == 0
    capsys.readouterr()
    assert main([*base, "--feature", "auditevents"]) == 1
    assert "is not of the auditevents stream: another stream's log was served" in capsys.readouterr().out


def _backdated_extension(log: Log, count: int) -> str:
    """`count` events (outside the window) appended and signed with a time before the last
    checkpoint's, as a stolen log key (or a retired one, trusted for its lifetime) can sign."""
    for n in range(count):
        log.add(START - (50 + n) * SECOND, event_body(START - (50 + n) * SECOND, len(log.bodies)))
    log.time -= 100
    return log.sign()


@pytest.mark.parametrize("trial", range(3))
def test_a_larger_checkpoint_dated_before_the_held_one_is_refused_by_follow(tmp_path: Path, trial: int) -> None:
    """A log's checkpoint times never go back: a larger tree signed with a time before the checkpoint
    the follower holds is a checkpoint signed with a false time (a stolen key, or a retired key whose
    lifetime it is dated into). Before: `follow` accepted it and kept it as the newest."""
    rng = random.Random(f"backdated/{trial}")
    server = Server(Log(ORIGIN), rng, limit=rng.randrange(1, 6))
    state = tmp_path / "state.json"
    _honest_rounds(server, rng, state, rng.randrange(1, 4))
    held = json.loads(state.read_text())["checkpoint"]
    _backdated_extension(server.log, rng.randrange(1, 4))
    out: list[str] = []
    assert not _run(server, state, out), out
    assert any(line.startswith("INVALID") and "dated before" in line for line in out), out
    assert json.loads(state.read_text())["checkpoint"] == held


def test_a_page_proof_with_a_larger_checkpoint_dated_before_the_held_one_is_refused() -> None:
    """`siemgate-verify page --state`, the same lie. Before: verified, and the state took it."""
    from siemgate.tlog.verify_page import verify_page

    server = Server(Log(ORIGIN), random.Random("backdated page"), limit=50)
    server.log.append(random.Random("backdated page"), 12)
    held = server.log.sign()
    _backdated_extension(server.log, 2)
    state = StreamState(checkpoint=held)
    page = page_bytes("c12", False, [])
    proof = server.honest_proof(12, 12, True, 12).to_json()
    report = verify_page(page, proof, KEYS, state)
    assert not report.ok and any("dated before" in line for line in report.lines()), report.lines()
    assert state.checkpoint == held


def test_a_run_with_nothing_new_says_so(tmp_path: Path) -> None:
    """A run at the end of the stream gets an empty page that accounts for no index: its line says
    so, where it printed an empty range backwards ("indices 6..5")."""
    server, state = _six_signed_events("nothing new"), tmp_path / "state.json"
    first: list[str] = []
    assert follow(server, KEYS, state, {"limit": 3}, max_age=0, out=first.append)
    assert any(line.startswith("page 1: indices 0..") for line in first), first
    out: list[str] = []
    assert follow(server, KEYS, state, {"limit": 3}, max_age=0, out=out.append)
    assert out[0].startswith("page 1: no new indices VALID (0 served, 0 outside the window"), out
