"""The cursor contract as a model, checked against a recorded history (docs/cursors.md, "The
model the history checker enforces").

A history is what writer and reader processes recorded while they ran against real servers
(`history_harness.py`), one JSON object a line per process, plus the stream as stored at the end:

- writers: `send` (a batch about to be posted: its events as [uuid, timestamp ns], the time) and
  `ack` (the server's 200 for that batch, the time); a batch sent and never acknowledged (its
  server or its writer was killed) may or may not be stored;
- readers: `reader` (the reset: window start, end or null, limit), then one `page` per reply
  (send and receive times, the cursor sent or null for the reset, status, uuids of the items,
  `has_more`, the cursor returned);
- `final.json`: every stored event of the stream as [seq, uuid], and the stream's head.

`check(history)` returns every violation found (empty: the history keeps the contract).
"""

from __future__ import annotations

import base64
import json
import struct
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_REPORTED = 10  # violations of one kind listed in full; the rest are counted


@dataclass
class Reader:
    rid: int
    start: int
    end: int | None
    limit: int
    pages: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False


@dataclass
class History:
    sent: dict[str, int] = field(default_factory=dict)  # uuid -> timestamp, of every event ever sent
    first_ack: dict[str, float] = field(default_factory=dict)  # uuid -> first time a batch holding it was acked
    first_send: dict[str, float] = field(default_factory=dict)  # uuid -> first time a batch holding it was sent
    readers: dict[int, Reader] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # unexpected replies the processes recorded
    stored: list[tuple[int, str]] = field(default_factory=list)  # (seq, uuid) of the stream at the end
    head: int = 0
    done_at: float = 0.0  # when the last writer had stopped
    expected_readers: int = 0


def _records(path: Path) -> list[dict[str, Any]]:
    """The records of one process's log; a last line cut short by a kill -9 is left out."""
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def load(folder: Path) -> History:
    """Read a history saved by the harness (ops/*.jsonl and final.json in `folder`)."""
    history = History()
    sends: dict[tuple[int, int], dict[str, Any]] = {}
    for path in sorted((folder / "ops").glob("*.jsonl")):
        for rec in _records(path):
            kind = rec["k"]
            if kind == "send":
                sends[(rec["w"], rec["b"])] = rec
                for uuid, ts in rec["ev"]:
                    history.sent[uuid] = ts
                    history.first_send.setdefault(uuid, rec["t"])
            elif kind == "ack":
                for uuid, _ in sends[(rec["w"], rec["b"])]["ev"]:
                    history.first_ack[uuid] = min(history.first_ack.get(uuid, rec["t"]), rec["t"])
            elif kind == "reader":
                history.readers[rec["r"]] = Reader(rec["r"], rec["start"], rec["end"], rec["limit"])
            elif kind == "page":
                history.readers[rec["r"]].pages.append(rec)
            elif kind == "finished":
                history.readers[rec["r"]].finished = True
            elif kind == "error":
                history.errors.append(f"{path.stem}: {rec['what']}")
    final = json.loads((folder / "final.json").read_text())
    history.stored = [(int(seq), str(uuid)) for seq, uuid in final["events"]]
    history.head = int(final["head"])
    history.done_at = float(final["writers_done_at"])
    history.expected_readers = int(final["readers"])
    return history


class Violations:
    def __init__(self) -> None:
        self.by_kind: dict[str, list[str]] = defaultdict(list)

    def add(self, kind: str, detail: str) -> None:
        self.by_kind[kind].append(detail)

    def lines(self) -> list[str]:
        out = []
        for kind, details in sorted(self.by_kind.items()):
            out.append(f"{kind}: {len(details)}")
            out += [f"  {d}" for d in details[:MAX_REPORTED]]
        return out


def check(history: History) -> list[str]:
    """Every way the history breaks the contract, as readable lines (empty when it keeps it)."""
    v = Violations()
    for error in history.errors:
        v.add("unexpected reply", error)
    seq_of: dict[str, int] = {}
    for seq, uuid in history.stored:
        if uuid in seq_of:
            v.add("stored twice", f"{uuid} at seqs {seq_of[uuid]} and {seq}")
        seq_of[uuid] = seq
    # Dense seqs: nothing is purged in these histories, so the stream holds seqs 1..head.
    seqs = sorted(seq for seq, _ in history.stored)
    if seqs != list(range(1, history.head + 1)):
        missing = sorted(set(range(1, history.head + 1)) - set(seqs))
        v.add("seqs not dense", f"head {history.head}, {len(seqs)} events; missing seqs {missing[:20]}")
    for uuid in history.first_ack:
        if uuid not in seq_of:
            v.add("acknowledged but not stored", uuid)
    for uuid in seq_of:
        if uuid not in history.sent:
            v.add("stored but never sent", uuid)
    if not history.first_ack:
        v.add("nothing acknowledged", "no batch was acknowledged: the history tested nothing")
    for rid in range(history.expected_readers):
        if rid not in history.readers:
            v.add("reader never started", f"reader {rid}")
    for reader in history.readers.values():
        _check_reader(history, reader, seq_of, v)
    return v.lines()


def _in_window(ts: int, reader: Reader) -> bool:
    return ts >= reader.start and (reader.end is None or ts <= reader.end)


def _position(cursor: str) -> int:
    """The seq a cursor reads after (its layout: src/siemgate/model/cursor.py; the tag is not checked)."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    return int(struct.unpack_from(">Q", raw, 4)[0])


def _check_reader(history: History, reader: Reader, seq_of: dict[str, int], v: Violations) -> None:
    """Exactly once, in seq order, inside the window, the cursor followed, `has_more` exact:
    false while an event of the window acknowledged before the request was sent is still
    undelivered is a violation; true when no event of the window after the page had even been
    sent before the reply came back is one too, unless the page stopped at its scan budget: its
    cursor moved past its items, and events of the stream after that position had been sent
    (docs/cursors.md, "Bounded work")."""
    name = f"reader {reader.rid}"
    window = {u for u in seq_of if u in history.sent and _in_window(history.sent[u], reader)}
    by_ack = sorted((history.first_ack[u], u) for u in window if u in history.first_ack)
    by_send = sorted((history.first_send[u], seq_of[u]) for u in window)
    all_sent = sorted((history.first_send[u], seq) for u, seq in seq_of.items() if u in history.first_send)
    sent_any_at, max_sent_any = 0, 0  # the largest seq of the stream sent before the current reply
    acked_at, sent_at = 0, 0
    pending: set[str] = set()  # acknowledged before the current request, not delivered yet
    max_sent_seq = 0  # the largest seq of the window sent before the current reply
    seen: set[str] = set()
    last_seq = 0
    cursor: str | None = None
    for n, page in enumerate(p for p in reader.pages if p["st"] == 200):
        where = f"{name} page {n}"
        while acked_at < len(by_ack) and by_ack[acked_at][0] < page["t0"]:
            if by_ack[acked_at][1] not in seen:
                pending.add(by_ack[acked_at][1])
            acked_at += 1
        while sent_at < len(by_send) and by_send[sent_at][0] < page["t1"]:
            max_sent_seq = max(max_sent_seq, by_send[sent_at][1])
            sent_at += 1
        while sent_any_at < len(all_sent) and all_sent[sent_any_at][0] < page["t1"]:
            max_sent_any = max(max_sent_any, all_sent[sent_any_at][1])
            sent_any_at += 1
        if page["req"] is not None and cursor is not None and page["req"] != cursor:
            v.add("cursor not followed", f"{where}: sent a cursor that is not the last one returned")
        if len(page["u"]) > reader.limit:
            v.add("page too large", f"{where}: {len(page['u'])} items, limit {reader.limit}")
        if not page["u"] and not page["hm"] and page["req"] is not None and page["c"] != page["req"]:
            v.add("end of data changed the cursor", where)
        for uuid in page["u"]:
            if uuid in seen:
                v.add("delivered twice", f"{where}: {uuid}")
            elif uuid not in seq_of:
                v.add("delivered but not stored", f"{where}: {uuid}")
            else:
                if seq_of[uuid] <= last_seq:
                    v.add("out of seq order", f"{where}: seq {seq_of[uuid]} after seq {last_seq}")
                last_seq = max(last_seq, seq_of[uuid])
                if uuid not in window:
                    v.add("delivered outside its window", f"{where}: {uuid}")
            seen.add(uuid)
            pending.discard(uuid)
        cursor = page["c"]
        if not page["hm"] and pending:
            u = min(pending, key=lambda x: seq_of[x])
            v.add("has_more false too early", f"{where}: {len(pending)} acknowledged events undelivered, e.g. {u}")
        if page["hm"] and max_sent_seq <= last_seq:
            position = _position(page["c"])
            moved = position > last_seq and (page["req"] is None or position > _position(page["req"]))
            if not (moved and max_sent_any > position):  # not a page stopped at its scan budget
                v.add("has_more true at the end", f"{where}: no event of the window follows seq {last_seq}")
    if not reader.finished:
        v.add("reader did not finish", f"{name}: never saw the end of data after the writers stopped")
        return
    missing = window - seen
    if missing:
        example = sorted(missing, key=lambda u: seq_of[u])[:5]
        detail = ", ".join(f"{u} (seq {seq_of[u]}, ts {history.sent[u]})" for u in example)
        v.add(
            "skipped", f"{name} [{reader.start}, {reader.end}] limit {reader.limit}: {len(missing)} missing: {detail}"
        )


def summary(history: History) -> dict[str, int]:
    return {
        "events_sent": len(history.sent),
        "events_stored": len(history.stored),
        "events_acknowledged": len(history.first_ack),
        "readers": len(history.readers),
        "pages": sum(len(r.pages) for r in history.readers.values()),
        "events_delivered": sum(len(p["u"]) for r in history.readers.values() for p in r.pages if p["st"] == 200),
    }
