"""What a bundle carries: a year of on-change checkpoints does not make a bundle of millions —
every checkpoint of the last day, the first of each earlier UTC day, and the newest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from siemgate.config import load_settings
from siemgate.integrity.keys import LogKeys
from siemgate.integrity.service import LogService
from siemgate.model.features import Feature
from siemgate.store.sqlite import SQLiteStore
from siemgate.tlog.checkpoint import Checkpoint
from siemgate.tlog.signer import Signer

from .store_log_kit import new_account, write_events
from .tlog_kit import make_kit

AUDIT = Feature.AUDITEVENTS
DAY1 = 1_767_225_600  # 2026-01-01T00:00:00Z
HOUR = 3600


def test_a_bundle_carries_the_last_day_and_the_day_close_checkpoints(tmp_path: Path) -> None:
    now = [float(DAY1 + 10 * HOUR)]
    kit = make_kit(tmp_path)
    kit.signer.close()
    signer = Signer(kit.keyring, kit.state_file, lambda: now[0])
    settings = load_settings(data_dir=tmp_path, integrity_public_key_file=kit.public_key)
    store = SQLiteStore(tmp_path / "siemgate.db")
    store.migrate()
    try:
        service = LogService(settings, store, lambda: int(now[0] * 10**9), LogKeys(settings))
        service.signer = signer  # type: ignore[assignment]
        account = new_account(store)
        signed = []
        for at in (10, 12, 24 + 1, 24 + 9, 24 + 11, 48 + 1, 48 + 10):  # hours from day 1's midnight
            now[0] = DAY1 + at * HOUR
            write_events(store, account, 10, start=int(now[0] - 60) * 10**9, batch=10)
            signed.append(service.checkpoint(account.id, AUDIT))
        out = tmp_path / "bundle"
        service.export(account.id, AUDIT, out, None)
        carried = sorted(
            Checkpoint.parse(p.read_text().rsplit("\n\n", 1)[0] + "\n").size for p in (out / "checkpoints").iterdir()
        )
        # day 1's first (10), day 2's first (30), day 3's first (60), and the last day's: day 2 at
        # 11:00 (50) and day 3's (60, 70); not day 1 at 12:00 (20) nor day 2 at 09:00 (40)
        assert carried == [10, 30, 50, 60, 70]
        assert sorted(p.name for p in (out / "proofs").iterdir()) == [
            "10-30.consistency",
            "30-50.consistency",
            "50-60.consistency",
            "60-70.consistency",
        ]
        done = subprocess.run(
            [sys.executable, "-m", "siemgate.tlog.verify_cli", "bundle", str(out), "--key", str(kit.public_key),
             "--as-of", str(int(now[0]))],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        store.close()
        signer.close()
