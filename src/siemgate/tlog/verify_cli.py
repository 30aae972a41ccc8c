"""`siemgate-verify`: verification of exported log bundles, of consistency between two checkpoints,
of one event or one page against its proof, and of a whole stream followed like a SIEM, with only a
public key file (docs/integrity.md). Standard library and `cryptography`.

Exit status: 0 valid, 1 invalid or stale, 2 usage (bad arguments, unreadable key file or inputs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from siemgate.model.timestamps import TimestampError, format_ns, parse_ns
from siemgate.tlog.archive_tables import TablesError
from siemgate.tlog.archive_verify import ArchiveInputError, verify_archive
from siemgate.tlog.bundle import BundleError, parse_hashes
from siemgate.tlog.checkpoint import CheckpointError, open_checkpoint
from siemgate.tlog.cosignature import WitnessPolicy, load_witness_keys
from siemgate.tlog.follow import DEFAULT_MAX_PAGES, NO_STATE, Client, FollowError, follow, load_state, save_state
from siemgate.tlog.keys import KeyFileError, PublicKeyring
from siemgate.tlog.merkle import ProofError
from siemgate.tlog.note import NoteError, NoteVerifier
from siemgate.tlog.proof import verify_consistency
from siemgate.tlog.tlog_proof import TlogProofError, verify_event
from siemgate.tlog.verify import DEFAULT_MAX_AGE, verify_bundle
from siemgate.tlog.verify_page import PageInputError, verify_page

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
FEATURES = ["signinattempts", "itemusages", "auditevents"]
AUDIT_BUNDLE_HELP = (
    "the account's auditevents bundle (siemgate log export): a purge record of this stream is used only"
    " if it is the event that log holds at its index"
)


class UsageError(Exception):
    pass


def _as_of(text: str | None) -> int:
    """The time the inputs are judged at (docs/integrity.md, "Freshness"): `--as-of` or now. The
    newest checkpoint must be younger than `--max-age` then, and no checkpoint may be dated more
    than MAX_CLOCK_SKEW after it (`check_not_future`)."""
    if text is None:
        return int(time.time())
    if text.isdigit():
        return int(text)
    try:
        return parse_ns(text) // 1_000_000_000
    except TimestampError as exc:
        raise UsageError(f"--as-of: {exc}") from None


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from None


def _keys(path: Path) -> PublicKeyring:
    try:
        return PublicKeyring.load(path)
    except KeyFileError as exc:
        raise UsageError(str(exc)) from None


def witness_policy(args: argparse.Namespace) -> WitnessPolicy | None:
    """The policy of `--witness-key FILE` (repeatable) and `--quorum N` (default: every witness
    key given), or None when no witness key is given; UsageError for a quorum that cannot be met."""
    if not args.witness_key:
        if args.quorum is not None:
            raise UsageError("--quorum needs the witnesses' public keys: --witness-key FILE (repeatable)")
        return None
    witnesses: list[NoteVerifier] = []
    for name in args.witness_key:
        try:
            witnesses += load_witness_keys(Path(name))
        except KeyFileError as exc:
            raise UsageError(str(exc)) from None
    distinct = len({w.public_key for w in witnesses})
    quorum = distinct if args.quorum is None else args.quorum
    if not 1 <= quorum <= distinct:
        raise UsageError(f"--quorum must be between 1 and the number of distinct witness keys given ({distinct})")
    return WitnessPolicy(tuple(witnesses), quorum)


def _audit_bundle(args: argparse.Namespace) -> Path | None:
    """`--audit-bundle DIR`: the account's auditevents bundle, which proves other streams' purge records."""
    if args.audit_bundle is None:
        return None
    directory = Path(args.audit_bundle)
    if not directory.is_dir():
        raise UsageError(f"--audit-bundle: {directory} is not a directory")
    return directory


def _bundle(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    keys = _keys(Path(args.key))
    witnesses = witness_policy(args)
    known = [Path(p) for p in args.checkpoint]
    for path in known:
        _read(path, "checkpoint")
    try:
        report = verify_bundle(
            directory,
            keys,
            known,
            max_age=args.max_age,
            as_of=_as_of(args.as_of),
            witnesses=witnesses,
            audit=_audit_bundle(args),
        )
    except BundleError as exc:
        print(f"INVALID bundle: {exc}")
        return EXIT_INVALID
    for line in report.lines():
        print(line)
    return EXIT_VALID if report.ok else EXIT_INVALID


def _archive(args: argparse.Namespace) -> int:
    keys = _keys(Path(args.key))
    try:
        report = verify_archive(
            Path(args.dir),
            keys,
            Path(args.entries) if args.entries else None,
            max_age=args.max_age,
            as_of=_as_of(args.as_of),
            witnesses=witness_policy(args),
            audit=_audit_bundle(args),
        )
    except (ArchiveInputError, TablesError) as exc:
        raise UsageError(str(exc)) from None
    for line in report.lines():
        print(line)
    return EXIT_VALID if report.ok else EXIT_INVALID


def _consistency(args: argparse.Namespace) -> int:
    keys = _keys(Path(args.key))
    witnesses = witness_policy(args)
    now = _as_of(args.as_of)
    checkpoints = []
    for name in (args.old, args.new):
        try:
            checkpoints.append(open_checkpoint(_read(Path(name), "checkpoint"), keys, witnesses, now).checkpoint)
        except (NoteError, CheckpointError) as exc:
            print(f"INVALID checkpoint {name}: {exc}")
            return EXIT_INVALID
    old, new = checkpoints
    try:
        proof = parse_hashes(_read(Path(args.proof), "proof"), args.proof)
    except BundleError as exc:
        print(f"INVALID proof: {exc}")
        return EXIT_INVALID
    print(f"Verifying {old.describe()} -> {new.describe()}")
    if old.origin != new.origin:
        print(f"INVALID: the checkpoints are of different logs ({old.origin}, {new.origin})")
        return EXIT_INVALID
    if new.size < old.size:
        print(
            f"INVALID index {new.size} [{new.describe()}]: the newer checkpoint is smaller than {old.describe()}: "
            f"indices {new.size}..{old.size - 1} were removed (rollback or truncation)"
        )
        return EXIT_INVALID
    try:
        verify_consistency(old.size, new.size, old.root, new.root, proof)
    except ProofError as exc:
        first = max(old.size - 1, 0)
        print(
            f"INVALID index {first} [{new.describe()}]: {exc}; the log of {old.describe()} is not a prefix of "
            f"this one (first bad index at or below {first})"
        )
        return EXIT_INVALID
    age = now - new.time
    if args.max_age and age > args.max_age:
        print(
            f"STALE: {new.describe()} was signed {age} s before {format_ns(now * 1_000_000_000)}, "
            f"more than {args.max_age} s"
        )
        return EXIT_INVALID
    print(f"Result: VALID: size {new.size} extends size {old.size}")
    return EXIT_VALID


def _event(args: argparse.Namespace) -> int:
    keys = _keys(Path(args.key))
    event = _read_bytes(Path(args.event), "event").rstrip(b"\r\n")
    try:
        done = verify_event(event, _read(Path(args.proof), "proof"), keys, witness_policy(args), args.feature)
    except TlogProofError as exc:
        print(f"INVALID {exc}")
        return EXIT_INVALID
    cp = done.checkpoint.checkpoint
    for notice in done.notices:
        print(f"NOTICE {notice}")
    print(
        f"Result: VALID: the event is index {done.index} of {cp.origin}, committed with timestamp"
        f" {format_ns(done.entry.ts_ns)}, in checkpoint size {cp.size} signed {format_ns(cp.time * 1_000_000_000)}"
    )
    return EXIT_VALID


def _page(args: argparse.Namespace) -> int:
    keys = _keys(Path(args.key))
    page = _read_bytes(Path(args.page), "page")
    try:
        proof = json.loads(_read(Path(args.proof), "page proof"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"the page proof {args.proof} is not JSON: {exc}") from None
    state_path = Path(args.state) if args.state else None
    if state_path is not None and not state_path.exists():
        print(f"NOTICE {NO_STATE} ({state_path} does not exist)")
    try:
        state = load_state(state_path) if state_path else None
    except FollowError as exc:
        raise UsageError(str(exc)) from None
    try:
        report = verify_page(page, proof, keys, state, witness_policy(args), args.feature)
    except PageInputError as exc:
        print(f"INVALID page: {exc}")
        return EXIT_INVALID
    for line in report.lines():
        print(line)
    if report.ok and state_path is not None and state is not None:
        save_state(state_path, state)
    return EXIT_VALID if report.ok else EXIT_INVALID


def _positive(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _follow(args: argparse.Namespace) -> int:
    keys = _keys(Path(args.key))
    if args.as_of is not None:
        raise UsageError("follow judges freshness now; --as-of is for exported files")
    token = _read(Path(args.token_file), "token file").strip()
    if not token:
        raise UsageError(f"the token file {args.token_file} is empty")
    reset: dict[str, object] = {"limit": args.limit}
    if args.start_time:
        reset["start_time"] = args.start_time
    if args.end_time:
        reset["end_time"] = args.end_time
    try:
        client = Client(args.url, token, args.feature)
        ok = follow(
            client,
            keys,
            Path(args.state),
            reset,
            max_age=args.max_age,
            witnesses=witness_policy(args),
            max_pages=args.max_pages,
            require_state=args.require_state,
        )
    except FollowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_VALID if ok else EXIT_INVALID


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siemgate-verify", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    key = argparse.ArgumentParser(add_help=False)
    key.add_argument("--key", required=True, help="public key file (siemgate log keys --out FILE)")
    key.add_argument(
        "--witness-key",
        action="append",
        default=[],
        metavar="FILE",
        help="a witness's public key file (siemgate witness keys --out FILE); repeatable",
    )
    key.add_argument(
        "--quorum",
        type=int,
        help="checkpoints need valid cosignatures from this many distinct witnesses (default: all given)",
    )
    common = argparse.ArgumentParser(add_help=False, parents=[key])
    common.add_argument(
        "--max-age",
        type=int,
        default=DEFAULT_MAX_AGE,
        help=f"newest checkpoint older than this many seconds is stale (default {DEFAULT_MAX_AGE}; "
        "0 turns the check off)",
    )
    common.add_argument(
        "--as-of", help="judge freshness as of this time (unix seconds or RFC 3339), e.g. the export time"
    )
    b = sub.add_parser("bundle", parents=[common], help="verify an exported bundle (siemgate log export)")
    b.add_argument("dir", help="bundle directory")
    b.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        help="a checkpoint saved earlier that the bundle must be consistent with (repeatable)",
    )
    b.add_argument("--audit-bundle", help=AUDIT_BUNDLE_HELP)
    b.set_defaults(run=_bundle)
    a = sub.add_parser("archive", parents=[common], help="verify a stream's archive folder against the log")
    a.add_argument("dir", help="the stream's archive folder: <archive>/<account uuid>/<stream>")
    a.add_argument("--entries", help="the stream's exported bundle (siemgate log export), for what is not archived")
    a.add_argument("--audit-bundle", help=AUDIT_BUNDLE_HELP)
    a.set_defaults(run=_archive)
    commands = [
        (
            "consistency",
            common,
            "verify that NEW extends OLD",
            _consistency,
            [
                ("old", "older signed checkpoint file"),
                ("new", "newer signed checkpoint file"),
                ("proof", "consistency proof file (one base64 hash per line)"),
            ],
        ),
        (
            "event",
            key,
            "verify one event against its proof (GET .../proof)",
            _event,
            [
                ("event", "the event's v2 bytes exactly as served (one item of a v2 page)"),
                ("proof", "its c2sp.org/tlog-proof@v1 file"),
            ],
        ),
        (
            "page",
            key,
            "verify a served page against its page proof",
            _page,
            [
                ("page", "the v2 page's response body, as received"),
                ("proof", "its page proof (POST .../page-proof), JSON"),
            ],
        ),
    ]
    for name, parent, text, run, positionals in commands:
        command = sub.add_parser(name, parents=[parent], help=text)
        for arg, arg_help in positionals:
            command.add_argument(arg, help=arg_help)
        command.set_defaults(run=run)
        if name in ("event", "page"):
            command.add_argument(
                "--feature",
                choices=FEATURES,
                help="the stream the proof must be of: another stream's log is refused (without it, the log"
                " verified is printed: check it is the one you meant)",
            )
        if name == "page":
            command.add_argument(
                "--state", help="verifier state file: the page must continue it (checkpoint, cursor chain); updated"
            )
    f = sub.add_parser("follow", parents=[common], help="pull a stream like a SIEM and verify every page")
    f.add_argument("--url", required=True, help="the siemgate server, e.g. https://events.example.com")
    f.add_argument("--token-file", required=True, help="file holding the SIEM token")
    f.add_argument("--feature", required=True, choices=FEATURES)
    f.add_argument("--state", required=True, help="state file (created): cursor, last checkpoint accepted")
    f.add_argument(
        "--require-state",
        action="store_true",
        help="stop (exit 2) when the state file does not exist, instead of trusting the server's checkpoint as"
        " the first: for scheduled runs",
    )
    f.add_argument("--start-time", help="the first reset's start_time (RFC 3339); default: the server's")
    f.add_argument("--end-time", help="the first reset's end_time (RFC 3339)")
    f.add_argument("--limit", type=int, default=1000, choices=range(1, 1001), metavar="1..1000", help="page size")
    f.add_argument(
        "--max-pages",
        type=_positive,
        default=DEFAULT_MAX_PAGES,
        help=f"stop (exit 2, the position kept) when the stream has not ended after this many pages"
        f" (default {DEFAULT_MAX_PAGES})",
    )
    f.set_defaults(run=_follow)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "max_age", 0) < 0:
        print("error: --max-age cannot be negative", file=sys.stderr)
        return EXIT_USAGE
    try:
        code: int = args.run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
