"""Waiting for witnesses before a checkpoint is published (docs/integrity.md, "Waiting for
witnesses"; Tessera's witness policy).

After the signer signs a checkpoint, the log worker submits it to every configured witness
(c2sp.org/tlog-witness) with a consistency proof from the size that witness last cosigned, checks
each answer with the witnesses' public keys, and publishes — stores, with the cosignatures
appended — only when at least `quorum` distinct witnesses cosigned it. Otherwise nothing is
stored: readers, exports and proofs keep the previous checkpoint, the failure is counted per
witness, and the worker tries again after the checkpoint interval.

A witness's size is learnt from its 409 answer (the spec's way), so a restarted server or a new
witness needs one extra round trip; a witness that has cosigned a *larger* tree than the log holds
(a rollback of the database, or a fork) is never given a smaller one: that is a refusal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from siemgate.config import Settings
from siemgate.errors import ConfigError
from siemgate.tlog.checkpoint import Checkpoint
from siemgate.tlog.cosignature import WitnessPolicy, cosignatures, load_witness_keys
from siemgate.tlog.keys import KeyFileError
from siemgate.tlog.merkle import NodeReader
from siemgate.tlog.note import NoteError
from siemgate.tlog.proof import consistency_proof
from siemgate.tlog.witness import WitnessRefused
from siemgate.tlog.witness_client import WitnessClient, WitnessConflict, WitnessUnavailable


class QuorumNotMet(Exception):
    """Fewer than the quorum of witnesses cosigned; the checkpoint is not published."""


@dataclass
class WitnessHealth:
    """What the worker saw of one witness (for metrics and alerts)."""

    url: str
    failures: int = 0  # cosignatures asked for and not obtained, since the process started
    cosigned: int = 0
    last_error: str | None = None  # of the latest attempt; None when it cosigned
    last_attempt: int | None = None  # unix seconds


@dataclass
class _Witness:
    client: WitnessClient
    health: WitnessHealth
    sizes: dict[str, int] = field(default_factory=dict)  # origin -> size it last cosigned, as far as known


class Witnessing:
    """The configured witnesses and the quorum a checkpoint needs; thread-safe."""

    def __init__(self, urls: list[str], policy: WitnessPolicy, clock: Callable[[], int]) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._witnesses = [_Witness(WitnessClient(url), WitnessHealth(url)) for url in urls]
        self._failures_of: dict[str, int] = {}  # origin -> its cosignatures not obtained, all witnesses

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], int]) -> Witnessing | None:
        """The witnesses configured, or None; ConfigError when the configuration cannot work."""
        urls = settings.integrity_witness_urls
        if not urls:
            if settings.integrity_witness_key_file or settings.integrity_witness_quorum:
                raise ConfigError("integrity_witness_key_file and _quorum need integrity_witness_urls")
            return None
        path: Path | None = settings.integrity_witness_key_file
        if path is None:
            raise ConfigError(
                "integrity_witness_urls is set but integrity_witness_key_file is not: give the witnesses' public"
                " keys (siemgate witness keys --out FILE)"
            )
        try:
            keys = load_witness_keys(path)
        except KeyFileError as exc:
            raise ConfigError(f"integrity_witness_key_file: {exc}") from None
        distinct = len({k.public_key for k in keys})
        quorum = distinct if settings.integrity_witness_quorum is None else settings.integrity_witness_quorum
        if quorum > min(distinct, len(urls)):
            raise ConfigError(
                f"integrity_witness_quorum {quorum} cannot be met with {len(urls)} witness URL(s) and"
                f" {distinct} witness key(s)"
            )
        try:
            return cls(urls, WitnessPolicy(tuple(keys), quorum), clock)
        except ValueError as exc:
            raise ConfigError(f"integrity_witness_urls: {exc}") from None

    def health(self) -> list[WitnessHealth]:
        with self._lock:
            return [WitnessHealth(**vars(w.health)) for w in self._witnesses]

    def failures_of(self, origin: str) -> int:
        """Cosignatures of `origin`'s checkpoints asked for and not obtained since the process
        started, all witnesses together: what one stream's records show (the per-witness totals
        of health() count every account's streams)."""
        with self._lock:
            return self._failures_of.get(origin, 0)

    def cosign(self, note: str, cp: Checkpoint, read: NodeReader, guess: int) -> str:
        """`note` with the witnesses' cosignatures appended, when a quorum cosigned it; QuorumNotMet
        naming each witness's failure otherwise. `read` reads the tree of `cp.size` leaves; `guess`
        is the size a witness that has not answered yet is assumed to hold (the last published)."""
        lines: list[str] = []
        errors: list[str] = []
        for witness in self._witnesses:
            now = self._clock()
            try:
                got = self._ask(witness, note, cp, read, guess)
            except (WitnessRefused, WitnessUnavailable, NoteError) as exc:
                message = exc.message if isinstance(exc, WitnessRefused) else str(exc)
                errors.append(message)
                with self._lock:
                    witness.health.failures += 1
                    self._failures_of[cp.origin] = self._failures_of.get(cp.origin, 0) + 1
                    witness.health.last_error = message
                    witness.health.last_attempt = now
                continue
            lines.append(got)
            with self._lock:
                witness.health.cosigned += 1
                witness.health.last_error = None
                witness.health.last_attempt = now
        cosigned = note + "".join(lines)
        try:
            self.policy.check(cosigned, cp.time)
        except NoteError as exc:
            raise QuorumNotMet(f"{exc}; not published: {'; '.join(errors)}") from None
        return cosigned

    def _ask(self, witness: _Witness, note: str, cp: Checkpoint, read: NodeReader, guess: int) -> str:
        old = witness.sizes.get(cp.origin, guess)
        if old > cp.size:
            old = 0  # learn its size from the 409
        try:
            lines = witness.client.add_checkpoint(note, old, consistency_proof(old, cp.size, read) if old else [])
        except WitnessConflict as conflict:
            old = witness.sizes[cp.origin] = conflict.size or 0
            if old > cp.size:
                raise WitnessRefused(
                    409,
                    f"the witness at {witness.client.url} cosigned size {old} of {cp.origin} but the log"
                    f" holds {cp.size}: the log was rolled back or forked",
                ) from None
            lines = witness.client.add_checkpoint(note, old, consistency_proof(old, cp.size, read) if old else [])
        found = cosignatures(note + lines, self.policy.witnesses)
        if not found:
            raise NoteError(
                f"the witness at {witness.client.url} answered without a cosignature by a key of"
                " integrity_witness_key_file"
            )
        witness.sizes[cp.origin] = cp.size
        return lines
