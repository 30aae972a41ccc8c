"""Verification of one served page against its page proof (docs/integrity.md, "Page proof"),
optionally continuing a verifier state (the last checkpoint accepted, where the stream's verified
part ends, the leaves still owed). Standard library and `cryptography` only.

A page is complete when every leaf of the range the proof accounts for is a served item (whose
bytes hash to its entry and carry its committed timestamp), a leaf whose committed timestamp is
outside the window, a leaf in the window whose body is gone and that is older than the declared
retention cutoff, or — for an empty page — a leaf still owed ("pending"), which the next page must
serve; and the leaves with the proof's hashes rebuild the root of a checkpoint signed by a trusted
key. With a state, the checkpoint must extend the one accepted before (consistency proof) and a
cursor page must start where the previous page ended.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from siemgate.model.timestamps import format_ns
from siemgate.tlog import page_proof as page_proofs
from siemgate.tlog.checkpoint import (
    Checkpoint,
    CheckpointError,
    SignedCheckpoint,
    check_not_backdated,
    open_checkpoint,
    stream_problem,
)
from siemgate.tlog.cosignature import WitnessPolicy
from siemgate.tlog.entry import Entry, EntryError, event_timestamp_ns
from siemgate.tlog.keys import PublicKeyring
from siemgate.tlog.merkle import ProofError
from siemgate.tlog.note import NoteError
from siemgate.tlog.page_items import PageFormatError, split_page
from siemgate.tlog.page_proof import PageProof, PageProofError, leaves_by_index, parse_page_proof
from siemgate.tlog.proof import verify_consistency, verify_range
from siemgate.tlog.verify import Problem, plausible_cutoff


@dataclass
class StreamState:
    """What a verifier of one stream keeps between pages (a witness of its own stream)."""

    checkpoint: str | None = None  # the signed note accepted last
    next_idx: int | None = None  # the first index no verified page has accounted for yet
    pending: list[int] = field(default_factory=list)  # leaves in the window an empty page still owed
    start_ns: int | None = None  # the stream's window, as the first verified page gave it
    end_ns: int | None = None
    cursor: str | None = None  # the cursor to continue with (follow)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "checkpoint": self.checkpoint,
            "next_idx": self.next_idx,
            "pending": self.pending,
            "window": None if self.start_ns is None else {"start_ns": self.start_ns, "end_ns": self.end_ns},
            "cursor": self.cursor,
        }

    @classmethod
    def from_json(cls, data: Any) -> StreamState:
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            raise ValueError(f"not a verifier state: format must be {STATE_FORMAT!r}")
        window = data.get("window")
        if window is not None and not isinstance(window, dict):
            raise ValueError("window must be an object with start_ns and end_ns, or null")
        window = window or {}
        pending = data.get("pending")
        if pending is not None and not isinstance(pending, list):
            raise ValueError("pending must be a list of indices")
        state = cls(
            checkpoint=_typed(data.get("checkpoint"), str, "checkpoint must be a signed note or null"),
            next_idx=_index(data.get("next_idx"), "next_idx must be a non-negative integer or null"),
            pending=[_index(i, "pending must be a list of indices") for i in pending or []],
            start_ns=_typed(window.get("start_ns"), int, "window.start_ns must be an integer"),
            end_ns=_typed(window.get("end_ns"), int, "window.end_ns must be an integer or null"),
            cursor=_typed(data.get("cursor"), str, "cursor must be a string or null"),
        )
        if (state.start_ns is None) != (not window):
            raise ValueError("window must have start_ns when present")
        return state


def _typed(value: Any, kind: type, message: str) -> Any:
    """`value` if it is None or of `kind` (a bool is not an int); ValueError(message) otherwise."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
        raise ValueError(message)
    return value


def _index(value: Any, message: str) -> Any:
    if _typed(value, int, message) is not None and value < 0:
        raise ValueError(message)
    return value


STATE_FORMAT = "siemgate-verify-state/v1"


@dataclass
class PageReport:
    checkpoint: Checkpoint | None = None
    first_idx: int = 0
    end_idx: int = 0
    served: int = 0
    omitted: int = 0
    purged: int = 0
    pending: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, message: str, index: int | None = None) -> None:
        self.problems.append(Problem(message, index, self.checkpoint.describe() if self.checkpoint else None))

    def first_bad_index(self) -> int | None:
        indices = [p.index for p in self.problems if p.index is not None]
        return min(indices) if indices else None

    def lines(self) -> list[str]:
        out = [f"NOTICE {n}" for n in self.notices]
        out += [p.line() for p in sorted(self.problems, key=lambda p: (p.index is None, p.index or 0))]
        if self.problems:
            first = self.first_bad_index()
            out.append(
                f"Result: INVALID ({len(self.problems)} problems"
                + (f", first bad index {first})" if first is not None else ")")
            )
        else:
            cp = self.checkpoint
            assert cp is not None
            out.append(
                f"Result: VALID: indices {self.first_idx}..{self.end_idx - 1} accounted for ({self.served} served,"
                f" {self.omitted} outside the window, {self.purged} purged, {len(self.pending)} pending) against"
                f" checkpoint size {cp.size} signed {format_ns(cp.time * 1_000_000_000)}, log {cp.origin}"
            )
        return out


class PageInputError(ValueError):
    """The page or the proof cannot be read at all (not a page, not a page proof)."""


def verify_page(
    page: bytes,
    proof_data: Any,
    keys: PublicKeyring,
    state: StreamState | None = None,
    witnesses: WitnessPolicy | None = None,
    feature: str | None = None,
    reset: bool | None = None,
    now: int | None = None,
) -> PageReport:
    """Verify `page` (the response bytes as received) against the decoded page proof; with
    `witnesses`, its checkpoint needs their quorum of cosignatures; with `feature`, it must be
    the checkpoint of that stream's log (`stream_problem`); with `reset` (whether the request was
    a reset, when the caller knows it), the proof must say the same; its checkpoint must not be
    dated in the future of `now` (default this host's clock, `check_not_future`).

    Raises PageInputError when either is not what it should be; everything else is in the report."""
    try:
        raw = split_page(page)
        proof = parse_page_proof(proof_data)
    except (PageFormatError, PageProofError) as exc:
        raise PageInputError(str(exc)) from None
    report = PageReport(first_idx=proof.first_idx, end_idx=proof.end_idx)
    try:
        signed = open_checkpoint(proof.checkpoint, keys, witnesses, now)
    except (NoteError, CheckpointError) as exc:
        report.add(f"the proof's checkpoint does not verify: {exc}")
        return report
    report.checkpoint = cp = signed.checkpoint
    wrong = stream_problem(cp, feature)
    if wrong:
        report.add(wrong)
        return report
    if reset is not None and proof.reset != reset:
        # A reset passed off as a cursor page hides that its start position is the server's word.
        asked, said = ("a reset", "a cursor page's") if reset else ("a cursor request", "a reset's")
        report.add(f"the page answers {asked}, but its proof is {said}", proof.first_idx)
        return report
    if proof.end_idx > cp.size:
        report.add(f"the proof accounts for indices up to {proof.end_idx - 1}, beyond its checkpoint", cp.size)
        return report
    if proof.tail and raw.items:
        report.add("the proof is for an empty page (tail) but the page has items", proof.first_idx)
        return report
    if not proof.tail and proof.end_idx == proof.first_idx:
        # A page that moved its cursor accounts for the leaves it moved past (bounded work: an empty
        # page may); one that did not must be a tail proof, else it hides whatever follows.
        report.add(
            "the page's proof accounts for no leaf and is not an empty page's (tail) proof: the leaves after"
            " the cursor are not accounted for, so events of the window could be withheld",
            proof.first_idx,
        )
        return report
    tail = page_proofs.MAX_TAIL
    if proof.tail and proof.end_idx != min(cp.size, proof.first_idx + tail):
        report.add(
            f"the empty page's proof accounts for indices up to {proof.end_idx - 1}, but it must run on to the"
            f" checkpoint's size {cp.size} (or {tail} leaves): the leaves it leaves out could be withheld events",
            proof.end_idx,
        )
        return report
    leaves = _leaves(raw.items, raw.decoded, proof, report)
    if leaves is not None:
        try:
            verify_range(proof.first_idx, proof.end_idx, cp.size, leaves, [*proof.left, *proof.right], cp.root)
        except ProofError as exc:
            report.add(
                f"the page's leaves [{proof.first_idx}, {proof.end_idx}) do not rebuild the signed root: {exc}"
                " (a served item or an entry the proof reveals was altered, or an event was left out)",
                proof.first_idx,
            )
    if proof.reset and proof.first_idx:
        report.notices.append(
            f"the page starts at a reset's start position, index {proof.first_idx}: the server says indices"
            f" 0..{proof.first_idx - 1} are older than the window (not checked here)"
        )
    if state is not None:
        _continue(state, proof, signed, keys, report)
    return report


def _leaves(items: list[bytes], decoded: list[Any], proof: PageProof, report: PageReport) -> list[bytes] | None:
    """The leaves of [first_idx, end_idx) as the proof lists them, checking each listed leaf; None
    when the lists do not cover the range exactly once.

    A served item is checked against its listed entry, and the listed entries against the root:
    together as strong as rebuilding from the items, but an altered item is then named by its own
    index alone, not also by the start of the range (the root it would have failed to rebuild)."""
    if len(items) != len(proof.items):
        report.add(
            f"the page has {len(items)} items but the proof lists {len(proof.items)} served leaves",
            proof.items[len(items)].idx if len(proof.items) > len(items) else proof.first_idx,
        )
        return None
    served = iter(zip(items, decoded, strict=True))
    leaves: list[bytes] = []
    expect = proof.first_idx
    for kind, leaf in leaves_by_index(proof):
        if leaf.idx != expect:
            where = expect if leaf.idx > expect else leaf.idx
            report.add(
                f"the proof {'skips' if leaf.idx > expect else 'lists twice'} index {where}: every index of"
                f" [{proof.first_idx}, {proof.end_idx}) must be listed once",
                where,
            )
            return None
        expect += 1
        entry = leaf.entry
        in_window = proof.in_window(entry.ts_ns)
        if kind == "items":
            _served(*next(served), leaf.idx, entry, report)
            report.served += 1
            if not in_window:
                report.add(f"a served item's timestamp {format_ns(entry.ts_ns)} is outside the window", leaf.idx)
        elif kind == "omitted":
            report.omitted += 1
            if in_window:
                report.add(
                    f"the event's committed timestamp {format_ns(entry.ts_ns)} is inside the page's window, but it"
                    " was not served: the page is incomplete",
                    leaf.idx,
                )
        elif kind == "purged":
            report.purged += 1
            _purged(leaf.idx, entry, proof, report)
        else:
            report.pending.append(leaf.idx)
            if not proof.tail:
                report.add("only an empty page's proof may list pending leaves", leaf.idx)
            elif not in_window:
                report.add("a pending leaf's timestamp is outside the window", leaf.idx)
        leaves.append(entry.leaf())
    if expect != proof.end_idx:
        report.add(f"the proof lists no leaf for index {expect}", expect)
        return None
    return leaves


def _served(item: bytes, event: Any, idx: int, claimed: Entry, report: PageReport) -> None:
    """Problems when a served item, by its bytes, is not the committed entry `claimed`."""
    digest = hashlib.sha256(item).digest()
    try:
        ts = event_timestamp_ns(event)
    except EntryError as exc:
        report.add(f"the served item is not a stored event: {exc}", idx)
        return
    if digest != claimed.body_sha256:
        report.add(
            "the served item does not hash to its log entry: the stored event was altered after it was logged"
            " (or the page is a v1 page: proofs are about the v2 bytes)",
            idx,
        )
    elif ts != claimed.ts_ns:
        report.add(f"the served item's timestamp {format_ns(ts)} is not its committed {format_ns(claimed.ts_ns)}", idx)


def _purged(idx: int, entry: Entry, proof: PageProof, report: PageReport) -> None:
    cutoff = proof.retention_cutoff_ns
    cp = report.checkpoint
    assert cp is not None
    if not proof.in_window(entry.ts_ns):
        return
    if cutoff is None or entry.ts_ns >= cutoff:
        report.add(
            f"the event ({format_ns(entry.ts_ns)}, in the window) has no body and is not older than the retention"
            " cutoff: it was deleted",
            idx,
        )
    elif not plausible_cutoff(cutoff, cp.time):
        report.add(
            f"the declared retention cutoff {format_ns(cutoff)} is less than a day (the shortest retention) before"
            " the checkpoint's time, beyond the freshness allowance: not a retention purge",
            idx,
        )
    else:
        report.notices.append(f"index {idx} ({format_ns(entry.ts_ns)}) was purged by retention")


def _continue(
    state: StreamState, proof: PageProof, signed: SignedCheckpoint, keys: PublicKeyring, report: PageReport
) -> None:
    """Check the page against the state and, when it verifies, advance the state."""
    cp = signed.checkpoint
    old: Checkpoint | None = None
    if state.checkpoint is not None:
        try:
            old = open_checkpoint(state.checkpoint, keys).checkpoint
        except (NoteError, CheckpointError) as exc:
            report.add(f"the state's checkpoint does not verify with these keys: {exc}")
            return
        if old.origin != cp.origin:
            report.add(f"the page is of {cp.origin}, but the state follows {old.origin}")
            return
        if cp.size < old.size:
            report.add(
                f"the proof's checkpoint (size {cp.size}) is smaller than the one accepted before (size"
                f" {old.size}): the log was rolled back or truncated",
                cp.size,
            )
            return
        if proof.old_size != old.size and not (cp.size == old.size and cp.root == old.root):
            report.add(
                f"the proof has no consistency proof from the accepted checkpoint's size {old.size} (ask with old_size)"
            )
            return
        try:
            hashes = proof.consistency if proof.old_size == old.size else []
            verify_consistency(old.size, cp.size, old.root, cp.root, hashes)
        except ProofError as exc:
            report.add(
                f"the checkpoint of size {cp.size} is not an extension of the one accepted before ({old.describe()}):"
                f" {exc}; the log forked or was rewritten",
                max(old.size - 1, 0),
            )
            return
        if cp.size > old.size:
            try:
                check_not_backdated(cp, old, "accepted before")
            except CheckpointError as exc:
                report.add(str(exc), old.size)
                return
    window = (proof.start_ns, proof.end_ns)
    if proof.reset and state.next_idx is not None:
        # Otherwise a server could answer a cursor request with a proof that says "reset" and skip events.
        report.add(
            f"the proof says the page answers a reset (starting at index {proof.first_idx}), but the state continues"
            f" a cursor chain that ended before index {state.next_idx}: a reset is not checked against the chain;"
            " verify a reset with a new state file",
            min(proof.first_idx, state.next_idx),
        )
        return
    if not proof.reset:
        if state.start_ns is not None and window != (state.start_ns, state.end_ns):
            report.add("the page's window is not the one of the stream being followed")
        if state.next_idx is not None and proof.first_idx != state.next_idx:
            report.add(
                f"the page starts at index {proof.first_idx}, but the previous page ended before index"
                f" {state.next_idx}: the cursor chain has a gap or overlap",
                min(proof.first_idx, state.next_idx),
            )
    owed = [i for i in state.pending if proof.first_idx <= i < proof.end_idx]
    if proof.tail:
        for idx in owed:
            if idx in report.pending:
                report.add(
                    "this event is in the window and was committed before an earlier proof, yet the page after"
                    " it is still empty: the server withholds it",
                    idx,
                )
    if report.problems:
        return
    if old is None or cp.supersedes(old):
        state.checkpoint = signed.note
    state.start_ns, state.end_ns = window
    state.next_idx = proof.first_idx if proof.tail else proof.end_idx
    state.pending = sorted(report.pending)
