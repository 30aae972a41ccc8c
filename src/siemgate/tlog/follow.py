"""`siemgate-verify follow`: pull a stream like a SIEM does (a reset, then the cursor chain) and
verify every page with its page proof, keeping the last checkpoint accepted in a state file — a
witness of its own stream (docs/integrity.md, "Following a stream"). Standard library and
`cryptography` only: HTTP is urllib.

The state file is replaced (atomically and durably) after every verified page, so a run that stops resumes
where it was; a page that does not verify leaves it as it was.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siemgate.model.timestamps import format_ns
from siemgate.tlog.bundle import BundleError, parse_hashes
from siemgate.tlog.checkpoint import (
    Checkpoint,
    CheckpointError,
    check_not_backdated,
    open_checkpoint,
    stream_problem,
    unverified_text,
)
from siemgate.tlog.cosignature import WitnessPolicy
from siemgate.tlog.durable import write_durably
from siemgate.tlog.keys import PublicKeyring
from siemgate.tlog.merkle import ProofError
from siemgate.tlog.note import NoteError
from siemgate.tlog.page_items import PageFormatError, split_page
from siemgate.tlog.proof import verify_consistency
from siemgate.tlog.verify_page import PageInputError, StreamState, verify_page

LOG_PREFIX = "/api/siemgate/v1/log"
USER_AGENT = "siemgate-verify-follow"
# A page of 1000 events of at most 64 KiB each, or a page proof of 100,000 leaves, fits.
MAX_RESPONSE_BYTES = 96 * 1024 * 1024
DEFAULT_MAX_PAGES = 10_000
NO_STATE = "no state: trusting this checkpoint as the first"
MAX_ERROR_BYTES = 64 * 1024  # of an error answer: its message is all that is shown


class FollowError(Exception):
    """The stream cannot be followed (server unreachable, token refused, bad answer): not a
    verdict on the log; the message says what happened."""


def load_state(path: Path) -> StreamState:
    """The state in `path`, or a new one when the file does not exist; FollowError if unreadable."""
    if not path.exists():
        return StreamState()
    try:
        return StreamState.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise FollowError(f"cannot read the state file {path}: {exc}") from None


def save_state(path: Path, state: StreamState) -> None:
    """Write the state atomically and durably (a new file fsynced, renamed over the old one, the
    folder fsynced): after a power loss the file holds the last checkpoint accepted, never nothing."""
    write_durably(path, (json.dumps(state.to_json(), indent=1) + "\n").encode("utf-8"))


@dataclass
class Client:
    """The Events API and its proof API for one token and feature."""

    url: str
    token: str
    feature: str
    max_wait: float = 120.0  # seconds spent waiting on 409/429/503 Retry-After in one call
    timeout: float = 30.0
    max_response_bytes: int = MAX_RESPONSE_BYTES
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if urllib.parse.urlsplit(self.url).scheme not in ("http", "https"):
            raise FollowError(f"--url must be an http:// or https:// URL, got {self.url!r}")

    def _call(self, method: str, path: str, body: Any = None) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        waited = 0.0
        while True:
            # the scheme is http(s), checked in __post_init__
            request = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method)  # noqa: S310
            request.add_header("Authorization", f"Bearer {self.token}")
            request.add_header("User-Agent", USER_AGENT)
            if data is not None:
                request.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    answer = bytes(response.read(self.max_response_bytes + 1))
                if len(answer) > self.max_response_bytes:
                    raise FollowError(f"{method} {path}: the answer is larger than {self.max_response_bytes} bytes")
                return answer
            except urllib.error.HTTPError as exc:
                retry = exc.headers.get("Retry-After")
                message = _message(exc.read(MAX_ERROR_BYTES))
                if exc.code in (409, 429, 503) and retry and retry.isdigit() and waited + int(retry) <= self.max_wait:
                    self.sleep(int(retry))
                    waited += int(retry)
                    continue
                raise FollowError(f"{method} {path}: HTTP {exc.code}: {message}") from None
            except (urllib.error.URLError, OSError) as exc:
                raise FollowError(f"{method} {path}: cannot reach {self.url}: {exc}") from None

    def page(self, body: dict[str, Any]) -> bytes:
        return self._call("POST", f"/api/v2/{self.feature}", body)

    def page_proof(self, request: dict[str, Any], response_cursor: str, old_size: int | None) -> Any:
        answer = self._call(
            "POST",
            f"{LOG_PREFIX}/{self.feature}/page-proof",
            {"request": request, "response_cursor": response_cursor, "old_size": old_size},
        )
        try:
            return json.loads(answer)
        except json.JSONDecodeError:
            raise FollowError("the page proof is not JSON") from None

    def checkpoint(self) -> str:
        return self._call("GET", f"{LOG_PREFIX}/{self.feature}/checkpoint").decode("utf-8", "replace")

    def consistency(self, old: int, new: int) -> str:
        query = urllib.parse.urlencode({"old": old, "new": new})
        return self._call("GET", f"{LOG_PREFIX}/{self.feature}/consistency?{query}").decode("ascii", "replace")


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body)["Error"]["Message"])
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")


def follow(
    client: Client,
    keys: PublicKeyring,
    state_path: Path,
    reset: dict[str, Any],
    *,
    max_age: int,
    witnesses: WitnessPolicy | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    now: Callable[[], float] = time.time,
    out: Callable[[str], None] = print,
    require_state: bool = False,
) -> bool:
    """Check the newest checkpoint extends the one accepted, pull and verify pages until the
    stream has no more, then accept the newest checkpoint again and judge its freshness. Returns
    whether everything verified and is fresh. Raises FollowError when the stream cannot be followed,
    among others when it has not ended after `max_pages` pages or a page says there is more
    without moving the cursor (every page verified until then is kept in the state file), and
    when there is no state file and `require_state` is set (a scheduled run must not start over)."""
    if not state_path.exists():
        if require_state:
            raise FollowError(
                f"the state file {state_path} does not exist (--require-state): a run that lost its state would"
                " trust whatever checkpoint the server shows next; restore the file, or run once without"
                " --require-state to start over"
            )
        out(f"NOTICE {NO_STATE} ({state_path} does not exist): the start is taken on trust")
    state = load_state(state_path)
    if state.checkpoint is not None and _accept(client, keys, witnesses, state, state_path, out, now) is None:
        return False
    pages = 0
    while True:
        request = {"cursor": state.cursor} if state.cursor else dict(reset)
        page = client.page(request)
        try:
            cursor, has_more = _envelope(page)
        except PageFormatError as exc:
            raise FollowError(f"the server's page is not an Events API page: {exc}") from None
        old_size = Checkpoint.parse(unverified_text(state.checkpoint)).size if state.checkpoint else None
        proof = client.page_proof(request, cursor, old_size)
        try:
            report = verify_page(
                page, proof, keys, state, witnesses, client.feature, reset="cursor" not in request, now=int(now())
            )
        except PageInputError as exc:
            out(f"INVALID page after {state.cursor or 'the reset'}: {exc}")
            return False
        for line in report.lines()[:-1]:
            out(line)
        if not report.ok:
            out(report.lines()[-1])
            return False
        pages += 1
        span = (
            f"indices {report.first_idx}..{report.end_idx - 1}"
            if report.end_idx > report.first_idx
            else "no new indices"
        )
        out(
            f"page {pages}: {span} VALID ({report.served} served,"
            f" {report.omitted} outside the window, {report.purged} purged, {len(report.pending)} pending)"
        )
        stuck = has_more and state.cursor is not None and cursor == state.cursor
        state.cursor = cursor
        save_state(state_path, state)
        if not has_more:
            break
        if stuck:
            raise FollowError(
                f"the server answers that there are more events but returns the same cursor ({cursor}):"
                " the stream makes no progress"
            )
        if pages >= max_pages:
            raise FollowError(
                f"the stream did not end within {max_pages} pages (--max-pages); the state file keeps the"
                " position: run again to go on"
            )
    cp = _accept(client, keys, witnesses, state, state_path, out, now)
    if cp is None:
        return False
    age = int(now()) - cp.time
    when = format_ns(cp.time * 1_000_000_000)
    verified = f"indices up to {state.next_idx - 1}" if state.next_idx else "no index yet"
    if max_age and age > max_age:
        out(f"STALE: the newest checkpoint (size {cp.size}) was signed {when}, {age} s ago, more than {max_age} s")
        out(f"Result: STALE ({verified} verified; newer events may be withheld)")
        return False
    out(
        f"Result: VALID: {verified} verified; newest checkpoint size {cp.size} signed {when} ({age} s ago),"
        f" log {cp.origin}"
    )
    return True


def _envelope(page: bytes) -> tuple[str, bool]:
    raw = split_page(page)
    return raw.cursor, raw.has_more


def _accept(
    client: Client,
    keys: PublicKeyring,
    witnesses: WitnessPolicy | None,
    state: StreamState,
    state_path: Path,
    out: Callable[[str], None],
    now: Callable[[], float],
) -> Checkpoint | None:
    """The newest checkpoint, kept in the state if it extends the state's (a witness of the
    stream); None (and an INVALID line) if it does not verify (among others if it is dated in the
    future of `now`) or does not extend it."""
    try:
        newest = open_checkpoint(client.checkpoint(), keys, witnesses, int(now()))
    except (NoteError, CheckpointError) as exc:
        out(f"INVALID: the newest checkpoint does not verify: {exc}")
        return None
    cp = newest.checkpoint
    wrong = stream_problem(cp, client.feature)
    if wrong:
        out(f"INVALID: {wrong}")
        return None
    if state.checkpoint is not None:
        try:
            old = open_checkpoint(state.checkpoint, keys).checkpoint
        except (NoteError, CheckpointError) as exc:
            out(f"INVALID: the state file's checkpoint does not verify with these keys: {exc}")
            return None
        if cp.origin != old.origin:
            out(
                f"INVALID [{cp.describe()}]: the newest checkpoint is of another log than the one followed"
                f" ({old.origin}): another stream's checkpoint was served"
            )
            return None
        if cp.size < old.size:
            out(
                f"INVALID index {cp.size} [{cp.describe()}]: the newest checkpoint is smaller than the one accepted"
                f" before ({old.describe()}): the log was rolled back or truncated"
            )
            return None
        try:
            proof = parse_hashes(client.consistency(old.size, cp.size), "the consistency proof")
            verify_consistency(old.size, cp.size, old.root, cp.root, proof)
        except (BundleError, ProofError) as exc:
            out(
                f"INVALID index {max(old.size - 1, 0)} [{cp.describe()}]: not an extension of the checkpoint"
                f" accepted before ({old.describe()}): {exc}"
            )
            return None
        if cp.size > old.size:
            try:
                check_not_backdated(cp, old, "accepted before")
            except CheckpointError as exc:
                out(f"INVALID index {old.size} [{cp.describe()}]: {exc}")
                return None
        if not cp.supersedes(old):
            if cp.time < old.time:
                out(
                    f"NOTICE the server's newest checkpoint (size {cp.size}, time {cp.time}) is older than the one"
                    f" accepted before (time {old.time}): the newer is kept"
                )
            return old
    state.checkpoint = newest.note
    save_state(state_path, state)
    return cp
