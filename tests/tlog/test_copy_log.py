"""`siemgate db copy` carries the log: entries, tree hashes, state, checkpoints; the copy is
checked against the newest checkpoint, and a bundle exported from PostgreSQL verifies."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

from siemgate.config import load_settings
from siemgate.dbcopy import Copier
from siemgate.integrity.keys import LogKeys
from siemgate.integrity.service import LogService
from siemgate.model.features import Feature
from siemgate.store.postgres import PostgresStore
from siemgate.store.sqlite import SQLiteStore
from support.stores import drop_pg_schema, new_pg_schema, pg_schema_url

from .store_log_kit import SECOND, new_account, sql, write_events
from .tlog_kit import make_kit

AUDIT = Feature.AUDITEVENTS


def test_db_copy_carries_the_log_and_checks_it(tmp_path: Path, pg_url: str) -> None:
    kit = make_kit(tmp_path)
    settings = load_settings(data_dir=tmp_path / "data", integrity_public_key_file=kit.public_key)
    source = SQLiteStore(tmp_path / "data" / "siemgate.db")
    source.migrate()
    account = new_account(source)
    service = LogService(settings, source, time.time_ns, LogKeys(settings))
    service.signer = kit.signer  # type: ignore[assignment]
    start = time.time_ns() - 3600 * SECOND
    write_events(source, account, 400, start=start)
    service.checkpoint(account.id, AUDIT)
    write_events(source, account, 200, start=start + 400 * SECOND)
    service.checkpoint(account.id, AUDIT)
    source.close()
    schema = new_pg_schema()
    target = PostgresStore(pg_schema_url(schema), max_size=2)
    try:
        target.migrate()
        copier = Copier(tmp_path / "data" / "siemgate.db", target)
        try:
            report = copier.run(lambda what, n: None)
            assert copier.verify(report, lambda what, n: None) == []
            assert len(target.log_entry_rows(account.id, AUDIT, 0, 10_000)) == 600
            assert report.tables["log_checkpoints"] == 2
            copied = LogService(settings, target, time.time_ns, LogKeys(settings))
            out = tmp_path / "bundle"
            copied.export(account.id, AUDIT, out, time.time_ns() - 30 * 86400 * SECOND)
            args = [sys.executable, "-m", "siemgate.tlog.verify_cli", "bundle", str(out), "--key", str(kit.public_key)]
            done = subprocess.run(args, capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stdout + done.stderr
            sql(
                target,
                "UPDATE log_hashes SET hash = ? WHERE account_id = ? AND level = 8 AND idx = 1",
                (hashlib.sha256(b"x").digest(), account.id),
            )
            problems = copier.verify(report, lambda what, n: None)
            assert problems == [
                f"stream {account.uuid}/auditevents: the stored tree does not rebuild the root of"
                " its newest checkpoint (size 600)"
            ]
        finally:
            copier.close()
    finally:
        target.close()
        drop_pg_schema(schema)
