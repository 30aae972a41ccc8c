"""A stream's Merkle tree as the store holds it, and the integrator that extends it
(docs/integrity.md, "In the store").

The store keeps every entry (leaf `i` = the entry of seq `i + 1`) and the perfect-node hashes of
levels 8, 16, 24, ... (`log_hashes`); any other node is recomputed from those below it, so a node
costs at most 256 hashes. Integration reads the entries past the integrated size in index order,
checks they are dense (a missing index is an integrity error: nothing after it is integrated or
signed until an operator looks), stores the new level-8k hashes and the new size and root in one
transaction. The stored tree is never rewritten: only new nodes are added.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from siemgate.errors import NotFound
from siemgate.model.features import Feature
from siemgate.store.base import Store
from siemgate.store.shared.log import LogState
from siemgate.tlog.checkpoint import Checkpoint, unverified_text
from siemgate.tlog.entry import ENTRY_SIZE, HOLE_TS, EntryError, decode_entry, entry_bytes
from siemgate.tlog.merkle import leaf_hash, root_of, subtree_hash

log = logging.getLogger("siemgate.integrity")

TILE_LEVELS = 8  # hashes are stored at levels that are multiples of this (one per 256 nodes below)
TILE = 1 << TILE_LEVELS
BATCH = 20_000  # entries integrated per transaction
# The entry of an index the store held no event for when its log began (events purged or seqs
# skipped before the log existed): the smallest timestamp and an all-zero digest. Verifiers see it
# as an entry whose body is gone and which is older than any retention cutoff.
HOLE_ENTRY = bytes([1]) + HOLE_TS.to_bytes(8, "big", signed=True) + bytes(32)


class LogIntegrityError(Exception):
    """The stored log is not what the store promises (a missing or malformed entry)."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


class StoredTree:
    """A NodeReader over one stream's stored tree of `size` leaves (nodes inside it only).

    Stored hashes are trusted as they are (proofs built from them are what the signer and the
    verifiers check); `extra` holds nodes computed but not yet stored, `leaves` leaf hashes
    already read."""

    def __init__(
        self,
        store: Store,
        account_id: int,
        feature: Feature,
        stored_size: int,
        leaves: dict[int, bytes] | None = None,
    ) -> None:
        self._store, self._account, self._feature = store, account_id, feature
        self._stored_size = stored_size
        self.leaves = leaves if leaves is not None else {}
        self.extra: dict[tuple[int, int], bytes] = {}

    def __call__(self, level: int, index: int) -> bytes:
        if level == 0:
            return self._nodes(0, index, index + 1)[0]
        if level % TILE_LEVELS == 0:
            return self._nodes(level, index, index + 1)[0]
        base = level - level % TILE_LEVELS
        span = level - base
        return root_of_perfect(self._nodes(base, index << span, (index + 1) << span))

    def _nodes(self, level: int, begin: int, end: int) -> list[bytes]:
        """The hashes of the perfect nodes `[begin, end)` of a level that is a multiple of 8."""
        if level == 0:
            missing = [i for i in range(begin, end) if i not in self.leaves]
            if missing:
                self.load_leaves(missing[0], missing[-1] + 1)
            return [self.leaves[i] for i in range(begin, end)]
        found = {i: h for i in range(begin, end) if (h := self.extra.get((level, i))) is not None}
        if len(found) < end - begin and ((begin + 1) << level) <= self._stored_size:
            found.update(self._store.log_hash_rows(self._account, self._feature, level, begin, end))
        out = []
        for i in range(begin, end):
            h = found.get(i)
            if h is None:
                below = self._nodes(level - TILE_LEVELS, i << TILE_LEVELS, (i + 1) << TILE_LEVELS)
                h = self.extra[(level, i)] = root_of_perfect(below)
            out.append(h)
        return out

    def load_leaves(self, begin: int, end: int) -> None:
        """Read the leaves `[begin, end)`; LogIntegrityError naming the first index without a valid entry."""
        rows = self._store.log_entry_rows(self._account, self._feature, begin, end)
        expect = begin
        for idx, entry in rows:
            if idx < expect:
                raise LogIntegrityError(f"index {idx} has two log entries: the stored rows overlap", idx)
            if idx != expect:
                break
            self.leaves[idx] = leaf_of(idx, entry)
            expect += 1
        if expect < end:
            raise LogIntegrityError(f"index {expect} has no log entry: the stored log has a hole", expect)


def stream_label(store: Store, account_id: int, feature: Feature) -> str:
    """`<account uuid>/<feature>` for log lines, as operators know a stream (the metrics' labels,
    retention's lines), never the account's row id; `account #<id>` for an account gone since."""
    try:
        return f"{store.get_account_by_id(account_id).uuid}/{feature.value}"
    except NotFound:
        return f"account #{account_id}/{feature.value}"


def root_of_perfect(hashes: list[bytes]) -> bytes:
    """The root of a perfect subtree given its 2**k nodes of one level."""
    return root_of(hashes)


def leaf_of(idx: int, entry: bytes) -> bytes:
    """The leaf hash of a stored entry; LogIntegrityError if it is not a valid entry."""
    if len(entry) != ENTRY_SIZE:
        raise LogIntegrityError(f"index {idx}: the stored entry has {len(entry)} bytes, not {ENTRY_SIZE}", idx)
    try:
        decode_entry(entry)
    except EntryError as exc:
        raise LogIntegrityError(f"index {idx}: {exc}", idx) from None
    return leaf_hash(entry)


@dataclass(frozen=True)
class Integrated:
    size: int
    added: int
    backfilled: int = 0
    error: str | None = None


def integrate(store: Store, account_id: int, feature: Feature, now: int, *, batch: int = BATCH) -> Integrated:
    """Integrate the entries past the stream's integrated size, `batch` per transaction, up to the
    stream's head seq. A stream never integrated is first backfilled (entries for the events stored
    before its log existed). An integrity error is recorded in the log's state and returned; it
    stops the stream's integration (and so its checkpoints) until cleared."""
    state = store.log_state(account_id, feature)
    if state is not None and state.error:
        return Integrated(state.size, 0, error=state.error)
    head = store.head_seq(account_id, feature)
    backfilled = 0
    if state is None and head > 0:
        backfilled = backfill(store, account_id, feature, head)
    size = state.size if state is not None else 0
    start_size = size
    while size < head:
        end = min(head, size + batch)
        try:
            new_state, hashes = _extend(store, account_id, feature, size, end, now)
        except LogIntegrityError as exc:
            message = f"{exc} (the stream's head seq is {head})"
            store.set_log_error(account_id, feature, message, now)
            log.error("log of %s: integrity error: %s", stream_label(store, account_id, feature), message)
            return Integrated(size, size - start_size, backfilled, message)
        if not store.log_integrated(account_id, feature, size, new_state, hashes):
            break  # another process integrated first (or an error was recorded): it goes on from there
        size = end
    return Integrated(size, size - start_size, backfilled)


def _extend(
    store: Store, account_id: int, feature: Feature, size: int, end: int, now: int
) -> tuple[LogState, list[tuple[int, int, bytes]]]:
    tree = StoredTree(store, account_id, feature, size)
    tree.load_leaves(size - size % TILE, end)  # every leaf the new nodes need, checked dense
    level = TILE_LEVELS
    hashes: list[tuple[int, int, bytes]] = []
    while (1 << level) <= end:
        for j in range(size >> level, end >> level):
            hashes.append((level, j, tree(level, j)))
        level += TILE_LEVELS
    root = subtree_hash(0, end, tree)
    return LogState(end, root, None, now), hashes


def backfill(store: Store, account_id: int, feature: Feature, head: int, *, chunk: int = 5000) -> int:
    """Write the entries of a stream's events stored before its log existed (up to seq `head`),
    and a hole entry (HOLE_ENTRY) for each seq below `head` that has no event; entries already
    written (events ingested since the upgrade) are kept. Returns how many entries were written.
    Runs once per stream, before its first integration, in one pass by index windows."""
    written = 0
    for begin in range(0, head, chunk):
        end = min(head, begin + chunk)
        have = {idx for idx, _ in store.log_entry_rows(account_id, feature, begin, end)}
        if len(have) == end - begin:
            continue
        bodies = {
            seq - 1: entry_bytes(ts, body)
            for seq, ts, body in store.log_event_rows(account_id, feature, begin, end, chunk)
        }
        missing = [(i, bodies.get(i, HOLE_ENTRY)) for i in range(begin, end) if i not in have]
        written += store.add_log_entries(account_id, feature, missing)
    if written:
        log.info("log of %s: backfilled %d entries", stream_label(store, account_id, feature), written)
    return written


def stored_root(store: Store, account_id: int, feature: Feature, size: int, integrated: int) -> bytes:
    """The root of the stream's stored tree at `size` (at most `integrated`, its integrated size),
    from the stored level-8k hashes: one read of at most 128 hashes or entries per set bit of
    `size`, never the whole log. LogIntegrityError when an entry it needs is missing or invalid."""
    return subtree_hash(0, size, StoredTree(store, account_id, feature, integrated))


def check_stored_tree(store: Store, account_id: int, feature: Feature) -> str | None:
    """Whether the stored tree rebuilds the root of the stream's newest stored checkpoint (after a
    copy to another database, before it serves the log); None when it does or there is none,
    else what is wrong."""
    stored = store.last_log_checkpoint(account_id, feature)
    if stored is None:
        return None
    cp = Checkpoint.parse(unverified_text(stored.note))
    state = store.log_state(account_id, feature)
    if state is None or state.size < cp.size:
        return (
            f"the log is integrated to {state.size if state else 0} entries, less than its checkpoint of size {cp.size}"
        )
    try:
        root = stored_root(store, account_id, feature, cp.size, state.size)
    except LogIntegrityError as exc:
        return str(exc)
    if root != cp.root:
        return f"the stored tree does not rebuild the root of its newest checkpoint (size {cp.size})"
    return None
