"""Archives that stay verifiable, on SQLite and PostgreSQL: retention through the real store, log
worker, signer (in process, on the test's clock) and archive writer; then `siemgate-verify
archive` as its own process with only the public key, the archive folder and an exported bundle.

The scene: 3 days of 40 audit events 200 days old and 5 recent ones; a day-close checkpoint;
retention (120 days) archives and purges the old days and records the purge in the audit stream;
another checkpoint covers that record; the stream is exported."""

from __future__ import annotations

import dataclasses
import gzip
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from siemgate.accounts.actor import CLI
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.retention.archive import ArchiveError, read_rows, sha256_file, verify_file
from siemgate.retention.replay import plan_replay, replay
from siemgate.retention.survey import survey
from siemgate.services import Services
from siemgate.store.base import Account, Store
from siemgate.store.sqlite.store import SQLiteStore
from siemgate.tlog import verify as tlog_verify
from siemgate.tlog.bundle import MAX_LINE_BYTES, read_manifest, read_purges
from siemgate.tlog.keys import PublicKeyring
from siemgate.tlog.purges import Purge, parse_purge
from support.events import signin
from support.stores import make_store

from .store_log_kit import sql
from .tlog_kit import Kit, make_kit

AUDIT, SIGNIN = Feature.AUDITEVENTS, Feature.SIGNINATTEMPTS
S = 1_000_000_000
DAY = 86400 * S
NOW = (1_900_000_000 // 86400) * DAY + 3600 * S  # 01:00 UTC
OLD = NOW - 203 * DAY - 3600 * S  # midnight, 203 days ago: three whole days archived


class Clock:
    now = NOW

    def __call__(self) -> int:
        return self.now


@dataclass
class Scene:
    services: Services
    account: Account
    kit: Kit
    clock: Clock
    tmp: Path

    @property
    def folder(self) -> Path:
        return self.services.settings.archive_path / self.account.uuid / AUDIT.value

    def checkpoint(self) -> None:
        self.clock.now += 60 * S
        self.services.tlog.checkpoint(self.account.id, AUDIT)

    def export(self, name: str = "bundle") -> Path:
        out = self.tmp / name
        self.services.tlog.export(self.account.id, AUDIT, out, None)
        return out

    def verify(self, *extra: str, folder: Path | None = None) -> tuple[int, str]:
        args = [sys.executable, "-m", "siemgate.tlog.verify_cli", "archive", str(folder or self.folder)]
        args += ["--key", str(self.kit.public_key), "--as-of", str(self.clock.now // S), *extra]
        done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
        return done.returncode, done.stdout + done.stderr


def _event(ts: int, n: int) -> dict[str, Any]:
    return {
        "uuid": new_id(),
        "timestamp": format_ns(ts),
        "actor_uuid": "ACTOR22222222222222222222A",
        "action": "view",
        "object_type": "item",
        "object_uuid": f"item-{n}",
        "session": {"uuid": "SESSION2222222222222222222", "ip": "192.0.2.1"},
    }


def _services(store: Store, tmp: Path, fmt: str, **settings: Any) -> tuple[Services, Kit, Clock]:
    clock = Clock()
    kit = make_kit(tmp, clock=lambda: clock.now / S)
    config = load_settings(
        data_dir=tmp / "data",
        alerts_enabled=False,
        archive_format=fmt,
        integrity_public_key_file=kit.public_key,
        **settings,
    )
    services = build_services(config, store, clock)
    services.tlog.signer = kit.signer  # type: ignore[assignment]  # the signer's own code, in process
    return services, kit, clock


@pytest.fixture(params=["jsonl", "parquet"])
def scene(request: pytest.FixtureRequest, store: Store, tmp_path: Path) -> Scene:
    services, kit, clock = _services(store, tmp_path, request.param)
    account = store.create_account(new_id(), "Acme", NOW)
    old = [_event(OLD + d * DAY + i * 1800 * S, i) for d in range(3) for i in range(40)]
    services.writer.write(account.id, AUDIT, old)
    services.writer.write(account.id, AUDIT, [_event(NOW - DAY + i * S, 100 + i) for i in range(5)])
    s = Scene(services, account, kit, clock, tmp_path)
    s.checkpoint()  # the day-close checkpoint: the first signed today, covering indices 0..124
    [result] = [r for r in services.retention.apply(accounts=[account]) if r.feature == AUDIT]
    assert (result.error, result.waiting, result.archived, result.purged) == (None, None, 120, 120)
    s.checkpoint()  # covers the purge's audit record (index 125)
    return s


def _alter_row(folder: Path, row: int) -> None:
    """Change one archived event of the first day's file (its `action`), keeping the file readable."""
    [path] = sorted(folder.glob("*/*.jsonl.gz"))[:1] or sorted(folder.glob("*/*.parquet"))[:1]
    if path.name.endswith(".jsonl.gz"):
        lines = gzip.decompress(path.read_bytes()).splitlines()
        lines[row] = lines[row].replace(b'"view"', b'"edit"')
        path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
        return
    table = pq.read_table(path)
    events = table.column("event").to_pylist()
    events[row] = events[row].replace('"view"', '"edit"')
    table = table.set_column(table.schema.get_field_index("event"), "event", pa.array(events, pa.string()))
    pq.write_table(table, path)


def test_an_untouched_archive_verifies_with_each_index_accounted_for(scene: Scene) -> None:
    bundle = scene.export()
    code, out = scene.verify("--entries", str(bundle))
    assert code == 0, out
    assert "0..119 archived" in out and "120..125 valid" in out, out
    assert "Result: VALID (120 archived, 6 valid)" in out, out
    assert "Newest checkpoint: size 126" in out, out
    # the manifest ties every file to the day-close checkpoint, and the rows carry their indices
    manifest = orjson.loads((scene.folder / "manifest.json").read_bytes())
    assert all(f["checkpoint"] and f["indexed"] == 40 for f in manifest["files"].values())
    [purge] = manifest["purges"]
    info = orjson.loads(orjson.loads(purge["event"])["aux_info"])
    assert (purge["audit_index"], info["purged"], info["index_bound"]) == (125, 120, 125)
    assert info["cutoff_ns"] == scene.clock.now - 120 * DAY - 60 * S
    # without the bundle, the archive alone does not cover the live indices: said, not hidden
    code, out = scene.verify()
    assert code == 1 and "pass the stream's exported bundle with --entries" in out, out


def test_checkpoints_dated_after_the_as_of_time_are_refused(scene: Scene) -> None:
    """`--as-of T` judges the archive as of T: its checkpoints, dated an hour later, cannot be in
    it then (one dated in the future never looks stale). Before: a negative age counted as fresh."""
    bundle = scene.export()
    code, out = scene.verify("--entries", str(bundle), "--as-of", str(scene.clock.now // S - 3600))
    assert code == 1 and "a checkpoint does not verify" in out and "from the future" in out, out
    assert "Result: VALID" not in out, out


def test_an_altered_archive_file_is_reported_naming_the_index(scene: Scene) -> None:
    bundle = scene.export()
    _alter_row(scene.folder, 7)
    code, out = scene.verify("--entries", str(bundle))
    assert code == 1, out
    assert "INVALID index 7: " in out and "does not match its log entry" in out, out
    assert "first bad index 7" in out, out
    assert "SHA-256" in out  # and the file no longer has the manifest's digest


def test_a_missing_manifest_or_file_is_reported(scene: Scene) -> None:
    bundle = scene.export()
    day_file = sorted(p for p in scene.folder.glob("*/*") if not p.name.endswith(".log.json"))[1]
    day_file.unlink()
    code, out = scene.verify("--entries", str(bundle))
    assert code == 1 and f"{day_file} is missing (the manifest lists it with 40 events)" in out, out
    (scene.folder / "manifest.json").unlink()
    code, out = scene.verify("--entries", str(bundle))
    assert code == 1 and "manifest.json is missing" in out, out


def test_a_purge_younger_than_the_policy_is_reported(scene: Scene) -> None:
    """An event of yesterday (index 121) deleted from the database: no recorded purge covers it."""
    sql(
        scene.services.store,
        "DELETE FROM events WHERE account_id = ? AND feature = ? AND seq = ?",
        (scene.account.id, AUDIT.code, 122),
    )
    code, out = scene.verify("--entries", str(scene.export()))
    assert code == 1, out
    assert "INVALID index 121: " in out and "no recorded purge covers it" in out, out
    assert "0..119 archived" in out


def test_replay_shows_as_duplicates_of_earlier_indices(scene: Scene) -> None:
    plans = plan_replay(scene.services.store, scene.services.settings.archive_path)
    done = replay(scene.services.writer, plans, audit=scene.services.audit)
    assert done.stored == 120
    scene.checkpoint()
    code, out = scene.verify("--entries", str(scene.export()))
    assert code == 0, out
    # each file's events came back as new leaves between its two audit records (started, done)
    assert "127..166 duplicate-of 0..39" in out and "211..250 duplicate-of 80..119" in out, out
    assert "120 duplicate-of" in out, out  # the summary's count
    replays = [
        orjson.loads(orjson.loads(body)["aux_info"])
        for batch in scene.services.store.iter_events(scene.account.id, AUDIT, 0, 2**62)
        for _, _, _, body in batch
        if b"archive-replay" in body
    ]
    assert sorted((r["index_from"], r["kind"], r.get("stored"), r.get("index_to")) for r in replays) == [
        (126, "archive-replay-started", None, None),
        (127, "archive-replay", 40, 167),
        (168, "archive-replay-started", None, None),
        (169, "archive-replay", 40, 209),
        (210, "archive-replay-started", None, None),
        (211, "archive-replay", 40, 251),
    ]


def test_retention_refuses_days_not_closed_by_a_checkpoint(store: Store, tmp_path: Path) -> None:
    """The only checkpoint was signed at noon of a day whose events are due: that day and the
    next wait (saying why); once a later day-close checkpoint is signed they are archived."""
    services, _, clock = _services(store, tmp_path, "jsonl")
    account = store.create_account(new_id(), "Acme", NOW)
    services.retention.set_policy(CLI, account, AUDIT, 1)
    clock.now = NOW - 3 * DAY  # 3 days ago, 01:00
    services.writer.write(account.id, AUDIT, [_event(clock.now + i * 600 * S, i) for i in range(10)])
    clock.now += 11 * 3600 * S  # noon: the only checkpoint is signed before the day ends
    services.tlog.checkpoint(account.id, AUDIT)
    services.writer.write(account.id, AUDIT, [_event(NOW - 2 * DAY + i * S, 50 + i) for i in range(5)])
    clock.now = NOW
    [result] = [r for r in services.retention.apply(accounts=[account]) if r.feature == AUDIT]
    assert (result.archived, result.purged, result.error) == (0, 0, None)
    assert result.waiting is not None and "ended after the newest day-close checkpoint" in result.waiting
    held = store.count_events(account.id, AUDIT)
    clock.now = NOW + 60 * S
    services.tlog.checkpoint(account.id, AUDIT)  # the first checkpoint of today: closes both days
    [result] = [r for r in services.retention.apply(accounts=[account]) if r.feature == AUDIT]
    assert (result.error, result.waiting) == (None, None)
    assert result.purged == 15 and store.count_events(account.id, AUDIT) == held - 15 + 1  # + the purge record


def test_retention_waits_without_a_checkpoint_when_a_signer_is_configured(store: Store, tmp_path: Path) -> None:
    secret = tmp_path / "signer.secret"
    secret.write_text("s" * 43)
    secret.chmod(0o600)
    services, _, _ = _services(
        store, tmp_path, "jsonl", integrity_signer_url="http://127.0.0.1:9", integrity_signer_secret_file=secret
    )
    account = store.create_account(new_id(), "Acme", NOW)
    services.writer.write(account.id, AUDIT, [_event(OLD + i * S, i) for i in range(10)])
    [result] = [r for r in services.retention.apply(accounts=[account]) if r.feature == AUDIT]
    assert result.waiting is not None and "no day-close checkpoint" in result.waiting
    assert (result.archived, result.purged) == (0, 0) and store.count_events(account.id, AUDIT) == 10


def _verify_bundle(scene: Scene, bundle: Path, *extra: str) -> tuple[int, str]:
    args = [sys.executable, "-m", "siemgate.tlog.verify_cli", "bundle", str(bundle)]
    args += ["--key", str(scene.kit.public_key), "--as-of", str(scene.clock.now // S), *extra]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


def test_purges_stay_legitimate_under_the_policy_in_force_when_it_was_lengthened(scene: Scene) -> None:
    """Purged at 120 days, then the policy became 400 days: the bundle's declared cutoff (now - 400
    days) no longer covers the purged events, the purge record does."""
    scene.services.retention.set_policy(CLI, scene.account, AUDIT, 400)
    scene.checkpoint()
    bundle = scene.tmp / "bundle"
    cutoff = scene.clock.now - scene.services.retention.retention_ns(scene.account.id, AUDIT)  # as the CLI does
    scene.services.tlog.export(scene.account.id, AUDIT, bundle, cutoff)
    [(index, body)] = [line.split(b"\t", 1) for line in (bundle / "purges.tsv").read_bytes().splitlines()]
    assert int(index) == 125 and b"retention-purge" in body
    code, out = _verify_bundle(scene, bundle)
    assert code == 0 and "120 bodies purged" in out, out
    # without the records (a bundle as exported before purges were recorded) they look deleted
    records = (bundle / "purges.tsv").read_bytes()
    (bundle / "purges.tsv").unlink()
    code, out = _verify_bundle(scene, bundle)
    assert code == 1 and "INVALID index 0 " in out, out
    (bundle / "purges.tsv").write_bytes(records)
    # the archive verifier reads the records from the bundle too, without the manifest's copy
    manifest = orjson.loads((scene.folder / "manifest.json").read_bytes())
    manifest["purges"] = []
    (scene.folder / "manifest.json").write_bytes(orjson.dumps(manifest))
    code, out = scene.verify("--entries", str(bundle))
    assert code == 0 and "0..119 archived" in out, out
    # a purge record that is not the event the audit log holds at its index is refused
    (bundle / "purges.tsv").write_bytes(b"%s\t%s\n" % (index, body.replace(b'\\"purged\\":120', b'\\"purged\\":121')))
    code, out = _verify_bundle(scene, bundle)
    assert code == 1 and "INVALID index 125" in out and "not the event the log holds here" in out, out


def test_a_bundle_reports_an_event_deleted_within_the_policy(scene: Scene) -> None:
    sql(
        scene.services.store,
        "DELETE FROM events WHERE account_id = ? AND feature = ? AND seq = ?",
        (scene.account.id, AUDIT.code, 122),
    )
    bundle = scene.tmp / "bundle"
    scene.services.tlog.export(scene.account.id, AUDIT, bundle, scene.clock.now - 120 * DAY)
    code, out = _verify_bundle(scene, bundle)
    assert code == 1 and "INVALID index 121" in out and "nor covered by a recorded purge" in out, out


def test_a_late_event_waits_for_the_next_day_close_then_is_merged_and_the_rewrite_recorded(scene: Scene) -> None:
    services, account = scene.services, scene.account
    services.writer.write(account.id, AUDIT, [_event(OLD + 5 * S, 999)])  # index 126, for an archived day
    [result] = [r for r in services.retention.apply(accounts=[account]) if r.feature == AUDIT]
    assert (result.archived, result.purged) == (0, 0)
    assert result.waiting is not None and "stored after the newest day-close checkpoint" in result.waiting
    scene.clock.now += DAY
    scene.checkpoint()  # tomorrow's day-close checkpoint covers the late event
    [result] = [r for r in services.retention.apply(accounts=[account]) if r.feature == AUDIT]
    assert (result.error, result.waiting, result.archived, result.purged) == (None, None, 1, 1)
    assert len(result.merged) == 1
    manifest = orjson.loads((scene.folder / "manifest.json").read_bytes())
    [rewrite] = manifest["rewrites"]
    entry = manifest["files"][rewrite["path"]]
    assert (rewrite["events_before"], rewrite["events_after"], entry["events"], entry["indexed"]) == (40, 41, 41, 41)
    assert rewrite["sha256_after"] == entry["sha256"] != rewrite["sha256_before"]
    assert len(manifest["purges"]) == 2
    scene.checkpoint()
    code, out = scene.verify("--entries", str(scene.export()))
    assert code == 0, out
    assert "0..119 archived" in out and "126 archived" in out, out


# Tampering by someone who can write the archive storage (the manifest is not signed, so it is
# rewritten to match) ----------------------------------------------------------------------------
def _manifest(scene: Scene) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((scene.folder / "manifest.json").read_bytes())
    return data


def _save(scene: Scene, manifest: dict[str, Any]) -> None:
    (scene.folder / "manifest.json").write_bytes(orjson.dumps(manifest))


def test_a_day_removed_with_its_manifest_entry_is_not_taken_for_a_purge(scene: Scene) -> None:
    """The second day's file (indices 40..79), its sidecar and its manifest entry deleted: the
    purge that covers those indices archived everything it purged, so they must be archived."""
    bundle = scene.export()
    manifest = _manifest(scene)
    name = sorted(manifest["files"])[1]
    entry = manifest["files"].pop(name)
    (scene.folder / name).unlink()
    if entry.get("index_file"):
        (scene.folder / entry["index_file"]).unlink()
    _save(scene, manifest)
    code, out = scene.verify("--entries", str(bundle))
    assert code == 1, out
    assert "INVALID index 40: " in out and "no archive file here holds it" in out, out
    assert "first bad index 40" in out and "0..39 archived" in out, out


def test_rows_cut_from_a_day_file_are_named(scene: Scene) -> None:
    """The last row of the second day (index 79) cut from the file, the sidecar and the manifest
    rewritten to match: the file checks out against the manifest, not against the log."""
    bundle = scene.export()
    manifest = _manifest(scene)
    name = sorted(manifest["files"])[1]
    entry = manifest["files"][name]
    path = scene.folder / name
    if name.endswith(".jsonl.gz"):
        lines = gzip.decompress(path.read_bytes()).splitlines()[:-1]
        path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
        sidecar = scene.folder / entry["index_file"]
        sidecar.write_bytes(b"\n".join(sidecar.read_bytes().splitlines()[:-1]) + b"\n")
        entry["index_sha256"] = sha256_file(sidecar)
    else:
        table = pq.read_table(path)
        pq.write_table(table.slice(0, table.num_rows - 1), path)
    entry.update(sha256=sha256_file(path), bytes=path.stat().st_size, events=39, indexed=39)
    _save(scene, manifest)
    code, out = scene.verify("--entries", str(bundle))
    assert code == 1, out
    assert "INVALID index 79: " in out and "no archive file here holds it" in out, out


def test_a_hostile_manifest_or_folder_is_reported_not_a_traceback_or_a_hang(scene: Scene) -> None:
    """A manifest entry that is not an object, a purge list that is not a list, a listed name
    outside the folder, a folder and a FIFO where day files were: each named, exit 1."""
    bundle = scene.export()
    outside = scene.tmp / "outside.jsonl.gz"
    outside.write_bytes(gzip.compress(b"{}\n"))
    manifest = _manifest(scene)
    second, third = sorted(manifest["files"])[1:]
    (scene.folder / second).unlink()
    (scene.folder / second).mkdir()
    (scene.folder / third).unlink()
    os.mkfifo(scene.folder / third)
    manifest["files"]["x"] = 1
    manifest["files"]["../../../../outside.jsonl.gz"] = {"path": "x", "format": "jsonl", "sha256": "0"}
    manifest["purges"] = 5
    _save(scene, manifest)
    code, out = scene.verify("--entries", str(bundle))
    assert code == 1 and "Traceback" not in out, out
    assert "the entry of x is not an object" in out and "the purge records in manifest.json are not a list" in out
    assert "'../../../../outside.jsonl.gz' is not a path inside the archive folder" in out, out
    assert f"{scene.folder / second} is not a regular file" in out, out
    assert f"{scene.folder / third} is not a regular file" in out, out


def _forged_purge(scene: Scene, audit_index: int, **changes: Any) -> dict[str, Any]:
    """The manifest's genuine purge record, with `changes` to its aux_info, at `audit_index`."""
    [genuine] = _manifest(scene)["purges"]
    event = orjson.loads(genuine["event"])
    event["aux_info"] = orjson.dumps({**orjson.loads(event["aux_info"]), **changes}).decode()
    return {"audit_index": audit_index, "event": orjson.dumps(event).decode()}


def test_a_purge_record_forged_in_the_manifest_covers_nothing(scene: Scene) -> None:
    """The manifest's purge records are not signed; in the auditevents stream they are leaves of
    the log being verified, so a forged one is named, and one at an index nothing here holds is not
    used: an event of yesterday deleted from the database (index 121) stays INVALID, and a day
    removed from the archive is not excused by a copy of the record saying 'archive none'."""
    sql(
        scene.services.store,
        "DELETE FROM events WHERE account_id = ? AND feature = ? AND seq = ?",
        (scene.account.id, AUDIT.code, 122),
    )
    bundle = scene.export()
    manifest = _manifest(scene)
    name = sorted(manifest["files"])[1]
    manifest["files"].pop(name)
    (scene.folder / name).unlink()
    far = scene.clock.now + 1000 * DAY
    manifest["purges"] = [
        _forged_purge(scene, 125, archive="none"),
        _forged_purge(scene, 124, archive="none"),
        _forged_purge(scene, 10**6, archive="none", cutoff_ns=far, index_bound=None),
    ]
    _save(scene, manifest)
    code, out = scene.verify("--entries", str(bundle))
    assert code == 1, out
    assert "the purge record at audit index 125 in manifest.json is not the bundle's record there" in out, out
    assert "INVALID index 124: the purge record at this index is not the event the log holds here" in out, out
    assert "the purge record at audit index 1000000 is not used" in out, out
    assert "INVALID index 121: " in out and "no recorded purge covers it" in out, out
    assert "INVALID index 40: " in out and "no archive file here holds it" in out, out


def test_a_bundle_does_not_use_a_purge_record_beyond_its_own_log(scene: Scene) -> None:
    """purges.tsv is not signed: in the auditevents bundle, a record at an index past the log's
    size cannot be checked against its leaf, so it excuses nothing (the event of yesterday deleted
    from the database, index 121, stays INVALID)."""
    sql(
        scene.services.store,
        "DELETE FROM events WHERE account_id = ? AND feature = ? AND seq = ?",
        (scene.account.id, AUDIT.code, 122),
    )
    bundle = scene.tmp / "bundle"
    scene.services.tlog.export(scene.account.id, AUDIT, bundle, scene.clock.now - 120 * DAY)
    forged = _forged_purge(scene, 10**6, cutoff_ns=scene.clock.now + 1000 * DAY, index_bound=None)
    with (bundle / "purges.tsv").open("ab") as f:
        f.write(b"%d\t%s\n" % (forged["audit_index"], forged["event"].encode()))
    code, out = _verify_bundle(scene, bundle)
    assert code == 1 and "INVALID index 121" in out and "nor covered by a recorded purge" in out, out
    assert "the record at audit index 1000000 is not used" in out, out


def _forge_row(scene: Scene, row: int) -> Path:
    """Alter a row of the first day's file and rewrite the manifest's digest and size to match, as
    someone altering the archive would (the manifest is not signed); the file's path."""
    _alter_row(scene.folder, row)
    manifest = _manifest(scene)
    name = sorted(manifest["files"])[0]
    path: Path = scene.folder / name
    manifest["files"][name].update(sha256=sha256_file(path), bytes=path.stat().st_size)
    _save(scene, manifest)
    return path


def test_replay_refuses_an_altered_file_whose_manifest_was_rewritten_to_match(scene: Scene) -> None:
    """Row 7 altered and the manifest's digest and size rewritten: the folder checks out against
    itself, but the event is not what the stream's log holds at index 7, so replay writes nothing
    (else the forged event would come back as a new, signed leaf)."""
    path = _forge_row(scene, 7)
    store = scene.services.store
    head = store.head_seq(scene.account.id, AUDIT)
    plans = plan_replay(store, scene.services.settings.archive_path)
    with pytest.raises(ArchiveError, match=f"{path}: row 7 is not the event the stream's signed log holds at index 7"):
        replay(scene.services.writer, plans, audit=scene.services.audit)
    assert store.head_seq(scene.account.id, AUDIT) == head  # nothing written, not even the audit record


def test_another_streams_purge_records_are_checked_against_the_auditevents_bundle(store: Store, tmp_path: Path) -> None:
    """A signinattempts bundle altered in transit: a failed sign-in of yesterday dropped from
    events.tsv and a purge record forged into purges.tsv (neither is signed). Alone, the bundle can
    only say that its records are proven by the auditevents log; given that log's bundle
    (--audit-bundle), the forged record is named and excuses nothing, and the genuine one passes."""
    services, kit, clock = _services(store, tmp_path, "jsonl")
    account = store.create_account(new_id(), "Acme", NOW)
    services.writer.write(account.id, SIGNIN, [signin(OLD + i * 1800 * S) for i in range(40)])
    services.writer.write(account.id, SIGNIN, [signin(NOW - DAY + i * S) for i in range(5)])
    services.writer.write(account.id, AUDIT, [_event(NOW - DAY, 1)])
    s = Scene(services, account, kit, clock, tmp_path)
    clock.now += 60 * S
    for feature in (SIGNIN, AUDIT):
        services.tlog.checkpoint(account.id, feature)  # the day-close checkpoints
    [result] = [r for r in services.retention.apply(accounts=[account]) if r.feature == SIGNIN]
    assert (result.error, result.archived, result.purged) == (None, 40, 40)
    clock.now += 60 * S
    services.tlog.checkpoint(account.id, AUDIT)  # covers the purge's audit record (index 1)
    audit_bundle = tmp_path / "audit"
    services.tlog.export(account.id, AUDIT, audit_bundle, None)
    bundle = tmp_path / "signin"
    services.tlog.export(account.id, SIGNIN, bundle, clock.now - 120 * DAY)
    code, out = _verify_bundle(s, bundle, "--audit-bundle", str(audit_bundle))
    assert code == 0 and "40 bodies purged" in out, out
    events = (bundle / "events.tsv").read_bytes().splitlines(keepends=True)
    assert events[0].startswith(b"40\t")
    (bundle / "events.tsv").write_bytes(b"".join(events[1:]))  # index 40 dropped
    [(index, body)] = [line.split(b"\t", 1) for line in (bundle / "purges.tsv").read_bytes().splitlines()]
    event = orjson.loads(body)
    event["aux_info"] = orjson.dumps({**orjson.loads(event["aux_info"]), "cutoff_ns": NOW + 1000 * DAY}).decode()
    forged = orjson.dumps(event)
    (bundle / "purges.tsv").write_bytes(b"%s\t%s\n%d\t%s\n" % (index, body, 10**6, forged))
    code, out = _verify_bundle(s, bundle)
    assert code == 0 and "pass its bundle with --audit-bundle" in out, out  # what the bundle alone can say
    code, out = _verify_bundle(s, bundle, "--audit-bundle", str(audit_bundle))
    assert code == 1, out
    assert "the purge record at audit index 1000000 is not the event the auditevents log holds there" in out, out
    assert "INVALID index 40" in out, out
    # the archive's manifest alike: its day file removed, a record forged saying "archive none"
    folder = services.settings.archive_path / account.uuid / SIGNIN.value
    clean = tmp_path / "signin-clean"
    services.tlog.export(account.id, SIGNIN, clean, None)
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    [name] = manifest["files"]
    manifest["files"] = {}
    (folder / name).unlink()
    (folder / name.replace(".jsonl.gz", ".log.json")).unlink()
    [genuine] = manifest["purges"]
    event = orjson.loads(genuine["event"])
    event["aux_info"] = orjson.dumps({**orjson.loads(event["aux_info"]), "archive": "none"}).decode()
    manifest["purges"].append({"audit_index": 10**6, "event": orjson.dumps(event).decode()})
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))
    code, out = s.verify("--entries", str(clean), "--audit-bundle", str(audit_bundle), folder=folder)
    assert code == 1, out
    assert "the purge record at audit index 1000000 is not the event the auditevents log holds there" in out, out
    assert "INVALID index 0: " in out and "no archive file here holds it" in out, out


def _reindex_row(scene: Scene, row: int, index: int | None) -> str:
    """Give a row of the first day's file another log index (None: none), rewriting its sidecar
    and the manifest to match, as someone altering the archive would; the file's name."""
    manifest = _manifest(scene)
    name = sorted(manifest["files"])[0]
    entry, path = manifest["files"][name], scene.folder / name
    if name.endswith(".parquet"):
        table = pq.read_table(path)
        indices = table.column("log_index").to_pylist()
        indices[row] = index
        column = table.schema.get_field_index("log_index")
        pq.write_table(table.set_column(column, "log_index", pa.array(indices, pa.int64())), path)
    else:
        sidecar = scene.folder / entry["index_file"]
        lines = sidecar.read_bytes().splitlines()
        lines[row + 1] = orjson.dumps([index, orjson.loads(lines[row + 1])[1]])
        sidecar.write_bytes(b"\n".join(lines) + b"\n")
        entry["index_sha256"] = sha256_file(sidecar)
    entry.update(sha256=sha256_file(path), bytes=path.stat().st_size)
    entry["indexed"] -= index is None
    _save(scene, manifest)
    return str(name)


def test_a_row_given_a_negative_log_index_is_refused_by_verifiers_and_replay(scene: Scene) -> None:
    """Row 7 altered and its log index set to -1, the manifest rewritten to match: no leaf to check
    it against, so it must not pass as checked — nor be replayed into the store."""
    bundle = scene.export()
    _alter_row(scene.folder, 7)
    name = _reindex_row(scene, 7, -1)
    code, out = scene.verify("--entries", str(bundle))
    assert code == 1 and f"{name} row 7: its log index -1 is not an index of the log" in out, out
    store = scene.services.store
    head = store.head_seq(scene.account.id, AUDIT)
    plans = plan_replay(store, scene.services.settings.archive_path)
    with pytest.raises(ArchiveError, match="row 7 carries log index -1, not an index of the log"):
        replay(scene.services.writer, plans, audit=scene.services.audit)
    assert store.head_seq(scene.account.id, AUDIT) == head


@pytest.mark.parametrize(
    ("index", "why"),
    [(10**6, "carries log index 1000000, which the stream's log does not hold"), (None, "carries no log index")],
    ids=["beyond-the-log", "no-index"],
)
def test_replay_refuses_a_row_it_cannot_check_against_the_log_unless_told(
    scene: Scene, index: int | None, why: str
) -> None:
    """Row 7 altered and given an index past the log, or none, the manifest rewritten to match:
    replay did not check such rows, so the forged event came back as a new leaf of the signed log.
    Now it is refused naming the row; `unchecked` (--unchecked) replays it, and the audit record
    counts it."""
    _alter_row(scene.folder, 7)
    name = _reindex_row(scene, 7, index)
    store = scene.services.store
    head = store.head_seq(scene.account.id, AUDIT)
    plans = plan_replay(store, scene.services.settings.archive_path)
    with pytest.raises(ArchiveError, match=f"{scene.folder / name}: row 7 {why}, so it cannot be checked"):
        replay(scene.services.writer, plans, audit=scene.services.audit)
    assert store.head_seq(scene.account.id, AUDIT) == head
    result = replay(scene.services.writer, plans, audit=scene.services.audit, unchecked=True)
    assert result.stored == 120
    rows = store.read_events(scene.account.id, AUDIT, head, -(2**63), None, 500)
    infos = [orjson.loads(orjson.loads(body).get("aux_info") or "{}") for _, body, _ in rows]
    unchecked = {i["file"]: i["unchecked"] for i in infos if i.get("kind") == "archive-replay"}
    assert unchecked == {path: int(path == name) for path in _manifest(scene)["files"]}


def test_replayed_events_purged_again_are_accounted_for_by_the_archive(scene: Scene) -> None:
    """Replayed (new leaves with the entries of archived events), then archived and purged again
    by the next run: the day files keep the original indices, and the new leaves are duplicates of
    archived events, which the archive holds — not events a purge lost."""
    plans = plan_replay(scene.services.store, scene.services.settings.archive_path)
    assert replay(scene.services.writer, plans, audit=scene.services.audit).stored == 120
    scene.clock.now += DAY
    scene.checkpoint()  # tomorrow's day-close checkpoint covers the replayed events
    [result] = [r for r in scene.services.retention.apply(accounts=[scene.account]) if r.feature == AUDIT]
    assert (result.error, result.purged) == (None, 120), result
    found = survey(scene.services.settings.archive_path)  # and the folder agrees with itself
    assert found.problems == [], found.problems
    for stream in found.streams:
        for entry in stream.files:
            verify_file(stream.folder, entry)
    scene.checkpoint()
    code, out = scene.verify("--entries", str(scene.export()), "--max-age", "0")
    assert code == 0, out
    assert "0..119 archived" in out, out


def test_a_manifest_put_back_from_an_older_copy_leaves_files_it_does_not_list(scene: Scene) -> None:
    """The manifest replaced by one saved before the last day was archived: that day's file is
    in the folder but not listed, and is named."""
    bundle = scene.export()
    manifest = _manifest(scene)
    name = sorted(manifest["files"])[-1]
    manifest["files"].pop(name)
    _save(scene, manifest)
    code, out = scene.verify("--entries", str(bundle))
    assert code == 1 and f"INVALID archive: {scene.folder / name} is not in the manifest" in out, out


@pytest.mark.parametrize("scene", ["jsonl"], indirect=True)
def test_a_json_lines_line_longer_than_any_event_is_named_not_read_whole(scene: Scene) -> None:
    """siemgate-verify read a JSON Lines archive line by line with no bound, so one huge line (a
    damaged file, or a hostile one that compresses to almost nothing) was read whole into memory."""
    [path] = sorted(scene.folder.glob("*/*.jsonl.gz"))[:1]
    path.write_bytes(gzip.compress(b"a" * (MAX_LINE_BYTES + 10), compresslevel=1))
    code, out = scene.verify()
    assert code == 1, out
    assert f"line 1 is longer than {MAX_LINE_BYTES} bytes" in out, out


def test_replay_into_another_account_checks_rows_against_the_archived_accounts_log(scene: Scene) -> None:
    """Replayed into another account (--account), rows were not checked at all ("another
    account's log says nothing about these events"), so row 7 altered and the manifest rewritten
    to match came back as a genuine leaf of that account's log, and the audit record said
    `unchecked: 0`. The archived account is in the store: its log vouches for each row."""
    store = scene.services.store
    other = store.create_account(new_id(), "Restore", NOW)
    path = _forge_row(scene, 7)
    plans = plan_replay(store, scene.services.settings.archive_path, account=other)
    with pytest.raises(ArchiveError, match=f"{path}: row 7 is not the event the stream's signed log holds at index 7"):
        replay(scene.services.writer, plans, audit=scene.services.audit)
    assert store.head_seq(other.id, AUDIT) == 0  # nothing written, not even the audit record


def test_replay_into_another_account_of_a_genuine_archive_is_checked(scene: Scene) -> None:
    """The same replay of the genuine archive stores every event, each checked (`unchecked: 0`)."""
    store = scene.services.store
    other = store.create_account(new_id(), "Restore", NOW)
    plans = plan_replay(store, scene.services.settings.archive_path, account=other)
    assert replay(scene.services.writer, plans, audit=scene.services.audit).stored == 120
    rows = store.read_events(other.id, AUDIT, 0, -(2**63), None, 500)
    infos = [orjson.loads(orjson.loads(body).get("aux_info") or "{}") for _, body, _ in rows]
    assert [i["unchecked"] for i in infos if i.get("kind") == "archive-replay"] == [0, 0, 0]


def _swap_after_check(scene: Scene, monkeypatch: pytest.MonkeyPatch, forge: Callable[[], object]) -> list[str]:
    """Make replay's last check of the first day's file, right before it is written, swap the
    archive folder for the one `forge` makes (someone who can write the folder, timing the replay);
    the paths of the files checked, in order."""
    genuine = {p: p.read_bytes() for p in scene.folder.rglob("*") if p.is_file()}
    forge()
    forged = {p: p.read_bytes() for p in scene.folder.rglob("*") if p.is_file()}
    for p, data in genuine.items():
        p.write_bytes(data)
    checks: list[str] = []

    def verify_then_swap(folder: Path, entry: Any, **kwargs: Any) -> None:
        verify_file(folder, entry, **kwargs)
        checks.append(entry.path)
        if len(checks) == 4:  # the first file's check right before it is written: 3 files checked before
            for p, data in forged.items():
                p.write_bytes(data)

    monkeypatch.setattr("siemgate.retention.replay.verify_file", verify_then_swap)
    return checks


def test_a_file_swapped_after_it_was_checked_is_not_replayed(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay checked every row against the log, then verified the file again (its SHA-256) and
    opened it a third time to write it: a file replaced after that last check (someone who can
    write the archive folder, timing the replay) had its rows written unchecked. Now the rows
    written are the rows checked, read once: the swapped file stops the replay at that file, and
    its forged row is not stored."""
    checks = _swap_after_check(scene, monkeypatch, lambda: _alter_row(scene.folder, 7))
    store = scene.services.store
    head = store.head_seq(scene.account.id, AUDIT)
    plans = plan_replay(store, scene.services.settings.archive_path)
    changed = "row 7 is not the event the stream's signed log holds at index 7.*The file changed since it was checked"
    with pytest.raises(ArchiveError, match=changed):
        replay(scene.services.writer, plans, audit=scene.services.audit)
    assert len(checks) == 4
    actions = [
        orjson.loads(body)["action"]
        for _, body, _ in store.read_events(scene.account.id, AUDIT, head, -(2**63), None, 500)
    ]
    assert "edit" not in actions and len(actions) < 40, actions


def test_a_file_swapped_after_it_was_checked_is_counted_by_what_was_written(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --unchecked, the file swapped after its checks for one whose row 7 is altered and
    carries no log index: the row is replayed (the operator allowed unchecked rows), but the
    file's audit record said `unchecked: 0`, the count of the file checked before. It counts the
    rows written that could not be checked."""
    name = ""

    def forge() -> None:
        nonlocal name
        _alter_row(scene.folder, 7)
        name = _reindex_row(scene, 7, None)

    _swap_after_check(scene, monkeypatch, forge)
    store = scene.services.store
    head = store.head_seq(scene.account.id, AUDIT)
    plans = plan_replay(store, scene.services.settings.archive_path)
    assert replay(scene.services.writer, plans, audit=scene.services.audit, unchecked=True).stored == 120
    rows = store.read_events(scene.account.id, AUDIT, head, -(2**63), None, 500)
    infos = [orjson.loads(orjson.loads(body).get("aux_info") or "{}") for _, body, _ in rows]
    unchecked = {i["file"]: i["unchecked"] for i in infos if i.get("kind") == "archive-replay"}
    assert unchecked == {path: int(path == name) for path in _manifest(scene)["files"]}


def test_an_account_named_like_the_archived_accounts_uuid_is_not_that_account(scene: Scene, tmp_path: Path) -> None:
    """The archive moved to another store, where an account is named like the archived account's
    uuid (a name is any one line; an owner can rename their account) and its log holds the
    archived events at their indices. Replay looked the archived account up by uuid or name, so it
    checked the rows against that account's log (`unchecked: 0`) and, without --account, wrote the
    archive into it. The archived account is not in that store: replay refuses, as for any archive
    moved to another store."""
    kind = "sqlite" if isinstance(scene.services.store, SQLiteStore) else "postgres"
    (tmp_path / "moved").mkdir()
    store = make_store(kind, tmp_path / "moved")
    try:
        services, _, _ = _services(store, tmp_path / "moved", "jsonl")
        decoy = store.create_account(new_id(), scene.account.uuid.lower(), NOW)
        restore = store.create_account(new_id(), "Restore", NOW)
        stream = next(s for s in survey(scene.services.settings.archive_path).streams if s.feature == AUDIT)
        rows = [orjson.loads(body) for f in stream.files for _, _, body in read_rows(stream.folder / f.path, f.format)]
        assert services.writer.write(decoy.id, AUDIT, rows, strict=False).stored == 120
        root = scene.services.settings.archive_path
        for chosen in (restore, None):
            with pytest.raises(ArchiveError, match=f"{scene.account.uuid}.*which is not in this store"):
                replay(services.writer, plan_replay(store, root, account=chosen), audit=services.audit)
            assert store.head_seq(restore.id, AUDIT) == 0
        assert store.head_seq(decoy.id, AUDIT) == 120
    finally:
        store.close()


def test_proving_purge_records_reads_only_their_entries_of_the_audit_bundle(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--audit-bundle` proves a stream's purge records by the auditevents log's entries at their
    indices. That log's `entries.bin` grows by 41 bytes per audit event (410 MB for ten million):
    it was read whole to look up a few entries. Here it is made 64 MiB larger (sparse) after the
    bundle was verified, and the proof may not hold more than a megabyte."""
    purges, audit, origin, keys, as_of = _purge_proof(store, tmp_path, monkeypatch)
    with (audit / "entries.bin").open("r+b") as f:
        f.truncate(f.seek(0, os.SEEK_END) + 64 * 2**20)
    tracemalloc.start()
    try:
        kept, problems = tlog_verify.prove_purges(purges, audit, origin, keys, as_of=as_of)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (kept, problems) == (purges, [])
    assert peak < 2**20, f"proving one purge record held {peak / 2**20:.1f} MiB"


def test_a_purge_record_at_a_negative_index_is_one_problem_and_the_others_are_proven(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An archive's manifest may list a purge record at any index. One at -1 made the look-up by
    seeking fail (OSError: Invalid argument), and with it the proof of every record: none kept,
    and a message naming no record. It is a record the log does not hold, as one past its end is."""
    purges, audit, origin, keys, as_of = _purge_proof(store, tmp_path, monkeypatch)
    forged = dataclasses.replace(purges[0], audit_index=-1)
    kept, problems = tlog_verify.prove_purges([forged, *purges], audit, origin, keys, as_of=as_of)
    assert kept == purges
    assert problems == ["the purge record at audit index -1 is not the event the auditevents log holds there"]


def _purge_proof(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[Purge], Path, str, PublicKeyring, int]:
    """A signinattempts stream with one purge record, and its account's auditevents bundle, which
    verifies (verify_bundle then answers as it did, whatever is done to the bundle): (purges,
    audit bundle, the stream's origin, keys, as_of)."""
    services, kit, clock = _services(store, tmp_path, "jsonl")
    account = store.create_account(new_id(), "Acme", NOW)
    services.writer.write(account.id, SIGNIN, [signin(OLD + i * 1800 * S) for i in range(40)])
    services.writer.write(account.id, AUDIT, [_event(NOW - DAY, 1)])
    clock.now += 60 * S
    for feature in (SIGNIN, AUDIT):
        services.tlog.checkpoint(account.id, feature)
    services.retention.apply(accounts=[account])
    clock.now += 60 * S
    services.tlog.checkpoint(account.id, AUDIT)
    audit, bundle = tmp_path / "audit", tmp_path / "signin"
    services.tlog.export(account.id, AUDIT, audit, None)
    services.tlog.export(account.id, SIGNIN, bundle, None)
    keys = PublicKeyring.load(kit.public_key)
    purges = [p for i, b in read_purges(bundle) if (p := parse_purge(i, b, SIGNIN.value)) is not None]
    origin = read_manifest(bundle).origin
    assert len(purges) == 1
    checked = tlog_verify.verify_bundle(audit, keys, as_of=clock.now // S)
    assert checked.ok
    monkeypatch.setattr(tlog_verify, "verify_bundle", lambda *a, **k: checked)
    return purges, audit, origin, keys, clock.now // S


def test_a_purge_record_at_a_negative_index_in_the_manifest_is_not_used(scene: Scene) -> None:
    """The manifest is not signed and may list a purge record at any index: one at -1 stopped the
    verification with a traceback (the look-up of the log's entry there seeked before the start of
    entries.bin). It is an index nothing here holds, not used, as one past the log's end."""
    bundle = scene.export()
    manifest = _manifest(scene)
    manifest["purges"].append(_forged_purge(scene, -1, archive="none"))
    _save(scene, manifest)
    code, out = scene.verify("--entries", str(bundle))
    assert "Traceback" not in out, out
    assert code == 0 and "the purge record at audit index -1 is not used" in out, out
