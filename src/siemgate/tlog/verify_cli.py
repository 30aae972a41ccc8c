"""`siemgate-verify`: offline verification of exported log bundles and of consistency between two
checkpoints, with only a public key file (docs/integrity.md). Standard library and `cryptography`.

Exit status: 0 valid, 1 invalid or stale, 2 usage (bad arguments, unreadable key file or inputs).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from siemgate.model.timestamps import TimestampError, format_ns, parse_ns
from siemgate.tlog.bundle import BundleError, parse_hashes
from siemgate.tlog.checkpoint import CheckpointError, open_checkpoint
from siemgate.tlog.cosignature import WitnessPolicy, load_witness_keys
from siemgate.tlog.keys import KeyFileError, PublicKeyring
from siemgate.tlog.merkle import ProofError
from siemgate.tlog.note import NoteError, NoteVerifier
from siemgate.tlog.proof import verify_consistency
from siemgate.tlog.verify import DEFAULT_MAX_AGE, verify_bundle

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _as_of(text: str | None) -> int:
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
            directory, keys, known, max_age=args.max_age, as_of=_as_of(args.as_of), witnesses=witnesses
        )
    except BundleError as exc:
        print(f"INVALID bundle: {exc}")
        return EXIT_INVALID
    for line in report.lines():
        print(line)
    return EXIT_VALID if report.ok else EXIT_INVALID


def _consistency(args: argparse.Namespace) -> int:
    keys = _keys(Path(args.key))
    witnesses = witness_policy(args)
    checkpoints = []
    for name in (args.old, args.new):
        try:
            checkpoints.append(open_checkpoint(_read(Path(name), "checkpoint"), keys, witnesses).checkpoint)
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
    now = _as_of(args.as_of)
    age = now - new.time
    if args.max_age and age > args.max_age:
        print(
            f"STALE: {new.describe()} was signed {age} s before {format_ns(now * 1_000_000_000)}, "
            f"more than {args.max_age} s"
        )
        return EXIT_INVALID
    print(f"Result: VALID: size {new.size} extends size {old.size}")
    return EXIT_VALID


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siemgate-verify", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--key", required=True, help="public key file (siemgate log keys --out FILE)")
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
    common.add_argument(
        "--witness-key",
        action="append",
        default=[],
        metavar="FILE",
        help="a witness's public key file (siemgate witness keys --out FILE); repeatable",
    )
    common.add_argument(
        "--quorum",
        type=int,
        help="checkpoints need valid cosignatures from this many distinct witnesses (default: all given)",
    )
    b = sub.add_parser("bundle", parents=[common], help="verify an exported bundle (siemgate log export)")
    b.add_argument("dir", help="bundle directory")
    b.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        help="a checkpoint saved earlier that the bundle must be consistent with (repeatable)",
    )
    b.set_defaults(run=_bundle)
    c = sub.add_parser("consistency", parents=[common], help="verify that NEW extends OLD")
    c.add_argument("old", help="older signed checkpoint file")
    c.add_argument("new", help="newer signed checkpoint file")
    c.add_argument("proof", help="consistency proof file (one base64 hash per line)")
    c.set_defaults(run=_consistency)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.max_age < 0:
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
