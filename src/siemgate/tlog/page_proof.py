"""The page proof (docs/integrity.md, "Page proof"): what the server answers to
`POST /api/siemgate/v1/log/{feature}/page-proof` and `siemgate-verify page` reads.

    {"format": "siemgate-page-proof/v1",
     "checkpoint": "<signed note>",
     "window": {"start_ns": int, "end_ns": int | null},   the stream's window, as the cursor holds it
     "reset": bool,          the range starts at a reset's start position (not at a cursor)
     "tail": bool,           an empty page: the range runs on to the checkpoint's size
     "first_idx": a, "end_idx": e,                        the leaves [a, e) the page accounts for
     "items":   [{"idx", "ts_ns", "body_sha256"}],        the served items, in order
     "omitted": [{"idx", "ts_ns", "body_sha256"}],        leaves whose timestamp is outside the window
     "purged":  [{"idx", "ts_ns", "body_sha256"}],        leaves in the window whose body the store no longer has
     "pending": [{"idx", "ts_ns", "body_sha256"}],        (tail only) leaves in the window the empty page did not serve
     "retention_cutoff_ns": int | null,                   the stream's retention cutoff, as the server declares it
     "left": [base64], "right": [base64],                 compact ranges of [0, a) and [e, size)
     "old_size": int | null, "consistency": [base64]}     consistency proof from old_size (when asked)

Hashes are base64 (32 bytes). Leaf `i` is the RFC 9162 leaf of the 41-byte entry
`0x01 || ts_ns || body_sha256` (src/siemgate/tlog/entry.py); for served items the verifier
checks the bytes served against it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from siemgate.tlog.entry import ENTRY_FORMAT, ENTRY_SIZE, Entry, decode_entry
from siemgate.tlog.merkle import HASH_SIZE

FORMAT = "siemgate-page-proof/v1"
LISTS = ("items", "omitted", "purged", "pending")
MAX_HASHES = 200
MAX_TAIL = 10_000  # leaves an empty page's proof accounts for after its cursor (what a poll at the tail costs)


class PageProofError(ValueError):
    """A page proof is malformed; the message names the field."""


@dataclass(frozen=True)
class Leaf:
    idx: int
    entry: Entry

    def to_json(self) -> dict[str, Any]:
        return {"idx": self.idx, "ts_ns": self.entry.ts_ns, "body_sha256": _b64(self.entry.body_sha256)}


def leaf_of_entry(idx: int, data: bytes) -> Leaf:
    """The Leaf of stored 41-byte entry bytes; EntryError if they are not a valid entry (the page
    proof's hot path: one slice and one integer per leaf)."""
    if len(data) != ENTRY_SIZE or data[0] != ENTRY_FORMAT:
        decode_entry(data)  # raises the precise EntryError
    return Leaf(idx, Entry(int.from_bytes(data[1:9], "big", signed=True), data[9:]))


@dataclass
class PageProof:
    checkpoint: str
    start_ns: int
    end_ns: int | None
    reset: bool
    tail: bool
    first_idx: int
    end_idx: int
    items: list[Leaf] = field(default_factory=list)
    omitted: list[Leaf] = field(default_factory=list)
    purged: list[Leaf] = field(default_factory=list)
    pending: list[Leaf] = field(default_factory=list)
    retention_cutoff_ns: int | None = None
    left: list[bytes] = field(default_factory=list)
    right: list[bytes] = field(default_factory=list)
    old_size: int | None = None
    consistency: list[bytes] = field(default_factory=list)

    def in_window(self, ts_ns: int) -> bool:
        return ts_ns >= self.start_ns and (self.end_ns is None or ts_ns <= self.end_ns)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "checkpoint": self.checkpoint,
            "window": {"start_ns": self.start_ns, "end_ns": self.end_ns},
            "reset": self.reset,
            "tail": self.tail,
            "first_idx": self.first_idx,
            "end_idx": self.end_idx,
            **{name: [leaf.to_json() for leaf in getattr(self, name)] for name in LISTS},
            "retention_cutoff_ns": self.retention_cutoff_ns,
            "left": [_b64(h) for h in self.left],
            "right": [_b64(h) for h in self.right],
            "old_size": self.old_size,
            "consistency": [_b64(h) for h in self.consistency],
        }


def _b64(h: bytes) -> str:
    return binascii.b2a_base64(h, newline=False).decode()


def parse_page_proof(data: Any) -> PageProof:
    """A PageProof from its decoded JSON; PageProofError naming the first bad field."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PageProofError(f"not a page proof: format must be {FORMAT!r}")
    window = data.get("window")
    if not isinstance(window, dict):
        raise PageProofError("window must be an object with start_ns and end_ns")
    proof = PageProof(
        checkpoint=_str(data, "checkpoint"),
        start_ns=_int(window, "start_ns"),
        end_ns=_int(window, "end_ns", optional=True),
        reset=_bool(data, "reset"),
        tail=_bool(data, "tail"),
        first_idx=_int(data, "first_idx"),
        end_idx=_int(data, "end_idx"),
        retention_cutoff_ns=_int(data, "retention_cutoff_ns", optional=True),
        left=_hashes(data, "left"),
        right=_hashes(data, "right"),
        old_size=_int(data, "old_size", optional=True),
        consistency=_hashes(data, "consistency"),
    )
    if not 0 <= proof.first_idx <= proof.end_idx:
        raise PageProofError("first_idx and end_idx must satisfy 0 <= first_idx <= end_idx")
    for name in LISTS:
        setattr(proof, name, _leaves(data, name))
    return proof


def _str(data: dict[str, Any], name: str) -> str:
    return str(_typed(data, name, str, "a string"))


def _bool(data: dict[str, Any], name: str) -> bool:
    return bool(_typed(data, name, bool, "true or false"))


def _typed(data: dict[str, Any], name: str, kind: type, what: str) -> Any:
    value = data.get(name)
    if not isinstance(value, kind):
        raise PageProofError(f"{name} must be {what}")
    return value


def _int(data: dict[str, Any], name: str, *, optional: bool = False) -> Any:
    value = data.get(name)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise PageProofError(f"{name} must be a 64-bit integer" + (" or null" if optional else ""))
    return value


def _hash(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        raise PageProofError(f"{where} must be a base64 string")
    try:
        h = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise PageProofError(f"{where} is not base64") from None
    if len(h) != HASH_SIZE:
        raise PageProofError(f"{where} is not a {HASH_SIZE}-byte hash")
    return h


def _hashes(data: dict[str, Any], name: str) -> list[bytes]:
    value = data.get(name, [])
    if not isinstance(value, list) or len(value) > MAX_HASHES:
        raise PageProofError(f"{name} must be a list of at most {MAX_HASHES} base64 hashes")
    return [_hash(h, f"{name}[{n}]") for n, h in enumerate(value)]


def _leaves(data: dict[str, Any], name: str) -> list[Leaf]:
    value = data.get(name, [])
    if not isinstance(value, list):
        raise PageProofError(f"{name} must be a list")
    out = []
    for n, item in enumerate(value):
        if not isinstance(item, dict):
            raise PageProofError(f"{name}[{n}] must be an object with idx, ts_ns and body_sha256")
        idx = _int(item, "idx")
        if idx < 0:
            raise PageProofError(f"{name}[{n}].idx cannot be negative")
        out.append(Leaf(idx, Entry(_int(item, "ts_ns"), _hash(item.get("body_sha256"), f"{name}[{n}].body_sha256"))))
    return out


def leaves_by_index(proof: PageProof) -> Sequence[tuple[str, Leaf]]:
    """Every listed leaf with the name of its list, in index order."""
    listed = [(name, leaf) for name in LISTS for leaf in getattr(proof, name)]
    return sorted(listed, key=lambda p: p[1].idx)
