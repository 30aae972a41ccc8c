"""Proofs served beside the Events API (docs/integrity.md, "Proofs for SIEMs"): the newest
checkpoint, consistency proofs, an event's inclusion proof (c2sp.org/tlog-proof) and page proofs.

Every proof is built from the stored tree and comes with a signed checkpoint that covers it. When
no stored checkpoint covers what is asked (events committed since the last one), one is signed on
demand — at most one per stream per checkpoint interval, judged by the newest stored checkpoint's
time, so every process of a deployment shares the limit; inside the interval the answer is
RetryLater (409, Retry-After: when the interval ends), and Unavailable (503) when the signer cannot
sign now. Everything is scoped to one (account, feature): callers pass the token's account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from siemgate.errors import BadRequest, NotFound, RetryLater, StoreError, Unavailable
from siemgate.integrity.service import LogService, LogUnavailable
from siemgate.integrity.tree import StoredTree
from siemgate.model.features import Feature
from siemgate.store.base import Store
from siemgate.store.shared.log import StoredCheckpoint
from siemgate.tlog import page_proof as page_proofs
from siemgate.tlog.checkpoint import Checkpoint, unverified_text
from siemgate.tlog.entry import EntryError, decode_entry
from siemgate.tlog.merkle import decompose
from siemgate.tlog.page_proof import PageProof, leaf_of_entry
from siemgate.tlog.proof import consistency_proof, hashes_for, inclusion_proof, range_proof_ranges
from siemgate.tlog.tlog_proof import TlogProof, entry_extra

MAX_PAGE_SPAN = 100_000  # leaves one page proof may account for (served, omitted, purged)


@dataclass(frozen=True)
class PageSpan:
    """What a served page covers: seqs after `after_seq` up to `last_seq` (equal for an empty page)
    of the window [start_ns, end_ns]; `reset` when `after_seq` is a reset's start position."""

    after_seq: int
    last_seq: int
    start_ns: int
    end_ns: int | None
    reset: bool


class ProofService:
    def __init__(
        self,
        store: Store,
        log: LogService,
        clock: Callable[[], int],
        retention_ns: Callable[[int, Feature], int],
    ) -> None:
        self.store = store
        self.log = log
        self.clock = clock
        self.retention_ns = retention_ns

    # checkpoints ---------------------------------------------------------------------------------
    def newest(self, account_id: int, feature: Feature) -> StoredCheckpoint:
        """The newest stored checkpoint; NotFound when the stream has none yet."""
        stored = self.store.last_log_checkpoint(account_id, feature)
        if stored is None:
            raise NotFound(
                f"the {feature.value} log of this account has no signed checkpoint yet"
                " (no events, or this server runs no log signer: docs/integrity.md)"
            )
        return stored

    def covering(self, account_id: int, feature: Feature, size: int) -> StoredCheckpoint:
        """A stored checkpoint of at least `size` entries: the newest, or one signed now.

        Raises RetryLater inside the on-demand interval, Unavailable when it cannot be signed."""
        stored = self.store.last_log_checkpoint(account_id, feature)
        if stored is not None and stored.size >= size:
            return stored
        interval = self.log.cadence.min_interval
        now = self.clock() // 1_000_000_000
        if stored is not None and now - stored.time < interval:
            wait = max(1, interval - (now - stored.time))
            raise RetryLater(
                f"index {size - 1} is not yet covered by a signed checkpoint (the newest has size {stored.size});"
                f" one is signed within {wait} s: retry then",
                wait,
            )
        try:
            self.log.checkpoint(account_id, feature)
        except LogUnavailable as exc:
            raise Unavailable(f"no checkpoint can be signed now: {exc}", interval) from None
        stored = self.store.last_log_checkpoint(account_id, feature)
        if stored is None or stored.size < size:
            raise RetryLater(f"index {size - 1} is not yet integrated into the log; retry in {interval} s", interval)
        return stored

    # proofs ----------------------------------------------------------------------------------------
    def _tree(self, account_id: int, feature: Feature) -> StoredTree:
        state = self.store.log_state(account_id, feature)
        return StoredTree(self.store, account_id, feature, state.size if state else 0)

    def consistency(self, account_id: int, feature: Feature, old: int, new: int) -> list[bytes]:
        """The consistency proof from size `old` to size `new`; both at most the newest checkpoint's
        size (BadRequest otherwise: a proof to an unsigned size proves nothing)."""
        newest = Checkpoint.parse(unverified_text(self.newest(account_id, feature).note))
        if not 0 <= old <= new:
            raise BadRequest(f"Bad Request: old ({old}) and new ({new}) must satisfy 0 <= old <= new")
        if new > newest.size:
            raise BadRequest(
                f"Bad Request: size {new} is beyond the newest checkpoint (size {newest.size});"
                " fetch the checkpoint first and ask up to its size"
            )
        return consistency_proof(old, new, self._tree(account_id, feature))

    def event_index(self, account_id: int, feature: Feature, ts_ns: int, uuid: str) -> int:
        """The log index of the stored event (timestamp, uuid); NotFound when the store has none."""
        seq = self.store.log_event_seq(account_id, feature, ts_ns, uuid)
        if seq is None:
            raise NotFound(
                f"no {feature.value} event of this account has uuid {uuid} and that timestamp"
                " (never stored, or purged: ask by idx)"
            )
        return seq - 1

    def event_proof(self, account_id: int, feature: Feature, idx: int, size: int | None) -> TlogProof:
        """The inclusion proof of leaf `idx` in the checkpoint of `size` (default: the newest, or one
        signed now when the newest does not cover `idx`)."""
        head = self.store.head_seq(account_id, feature)
        if not 0 <= idx < head:
            raise NotFound(f"index {idx} is beyond this {feature.value} log, which has {head} entries")
        if size is None:
            stored = self.covering(account_id, feature, idx + 1)
        else:
            found = self.store.log_checkpoint_of_size(account_id, feature, size)
            if found is None:
                raise NotFound(f"there is no signed checkpoint of size {size}; leave size out for the newest")
            if idx >= size:
                raise BadRequest(f"Bad Request: index {idx} is not in the checkpoint of size {size}")
            stored = found
        rows = self.store.log_entry_rows(account_id, feature, idx, idx + 1)
        if len(rows) != 1:
            raise StoreError(f"the stored log has no entry for index {idx}: see docs/integrity.md")
        try:
            entry = decode_entry(rows[0][1])
        except EntryError as exc:
            raise StoreError(f"the stored log entry of index {idx} is damaged ({exc})") from None
        proof = inclusion_proof(idx, stored.size, self._tree(account_id, feature))
        return TlogProof(idx, proof, stored.note, entry_extra(idx, entry))

    def page_proof(self, account_id: int, feature: Feature, span: PageSpan, old_size: int | None) -> PageProof:
        """The proof of the page `span` describes: every leaf after `after_seq` up to its last item
        (or, for an empty page, up to the checkpoint's size) classified as served, out of the
        window, purged or (empty page) pending, with the hashes that rebuild the checkpoint's root."""
        first, last = span.after_seq, span.last_seq
        tail = first == last
        head = self.store.head_seq(account_id, feature)
        if last > head:
            raise BadRequest(f"Bad Request: the cursor names seq {last}, beyond this log's {head} entries")
        if not tail and last - first > MAX_PAGE_SPAN:
            raise BadRequest(
                f"Bad Request: this page spans {last - first} log entries; a page proof covers at most"
                f" {MAX_PAGE_SPAN}: verify this stretch with siemgate log export and siemgate-verify bundle"
            )
        stored = self.covering(account_id, feature, max(last, 1))
        cp = Checkpoint.parse(unverified_text(stored.note))
        end = min(cp.size, first + page_proofs.MAX_TAIL) if tail else last
        end = max(end, first)
        if old_size is not None and not 0 <= old_size <= cp.size:
            raise BadRequest(
                f"Bad Request: old_size {old_size} is beyond this log's checkpoint of size {cp.size}:"
                " the checkpoint you hold is not of this log as it stands (rolled back or forked?)"
            )
        proof = PageProof(
            checkpoint=stored.note,
            start_ns=span.start_ns,
            end_ns=span.end_ns,
            reset=span.reset,
            tail=tail,
            first_idx=first,
            end_idx=end,
            retention_cutoff_ns=self.clock() - self.retention_ns(account_id, feature),
        )
        self._classify(account_id, feature, proof)
        tree = self._tree(account_id, feature)
        hashes = hashes_for(range_proof_ranges(first, end, cp.size), tree)
        split = len(decompose(0, first))
        proof.left, proof.right = hashes[:split], hashes[split:]
        if old_size is not None:
            proof.old_size = old_size
            proof.consistency = consistency_proof(old_size, cp.size, tree)
        return proof

    def _classify(self, account_id: int, feature: Feature, proof: PageProof) -> None:
        first, end = proof.first_idx, proof.end_idx
        rows = self.store.log_entry_rows(account_id, feature, first, end)
        if [idx for idx, _ in rows] != list(range(first, end)):
            raise StoreError(
                f"the stored log has a hole or overlap in indices {first}..{end - 1}: see docs/integrity.md"
            )
        bodies = {seq - 1 for seq in self.store.log_event_seqs(account_id, feature, first, end)}
        for idx, data in rows:
            try:
                leaf = leaf_of_entry(idx, data)
            except EntryError as exc:
                raise StoreError(f"the stored log entry of index {idx} is damaged ({exc})") from None
            if not proof.in_window(leaf.entry.ts_ns):
                proof.omitted.append(leaf)
            elif idx not in bodies:
                proof.purged.append(leaf)
            elif proof.tail:
                proof.pending.append(leaf)
            else:
                proof.items.append(leaf)
