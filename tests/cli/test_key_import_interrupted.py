"""The first start after an upgrade from 0.1.0 moves the deployment's signing keys from
`<data_dir>/keys/` into the store. Killed while doing so (here: the process exits the moment it
stores the second key), it used to leave part of them stored, and the next start took the part
for the whole: the active key missing, another made active, every issued token refused. Now the
keys are stored all or none, and the next start imports them all (docs/upgrading.md)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from siemgate.auth.keys import KeyRing, thumbprint
from siemgate.store.sqlite import SQLiteStore

KILLED_AT_SECOND_KEY = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from siemgate.auth.keys import KeyRing
    from siemgate.store.sqlite import SQLiteStore

    data = Path(sys.argv[1])
    store = SQLiteStore(data / "siemgate.db")
    store.migrate()
    seen = []

    def trace(sql):
        if "INSERT INTO signing_keys" in sql:
            seen.append(sql)
            if len(seen) == 2:
                os._exit(9)  # as kill -9 would, mid-import

    store._writer.set_trace_callback(trace)
    KeyRing(store, data)
    """
)


def _legacy_keys(data: Path) -> list[str]:
    """Three 0.1.0 key files; the second is the active one. Their kids, in file order."""
    folder = data / "keys"
    folder.mkdir(parents=True)
    kids = []
    for _ in range(3):
        key = ec.generate_private_key(ec.SECP256R1())
        kid = thumbprint(key.public_key())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        (folder / f"{kid}.pem").write_bytes(pem)
        kids.append(kid)
    kids.sort()
    (folder / "active").write_text(kids[1])
    return kids


def test_a_start_killed_while_importing_the_key_files_imports_them_all_next_time(tmp_path: Path) -> None:
    data = tmp_path / "data"
    kids = _legacy_keys(data)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AT_SECOND_KEY, str(data)], capture_output=True, text=True, timeout=30
    )
    assert killed.returncode == 9, killed.stderr
    store = SQLiteStore(data / "siemgate.db")
    try:
        ring = KeyRing(store, data)  # the next start
        stored = {k.kid: k.active for k in store.signing_keys()}
        assert sorted(stored) == kids
        assert [kid for kid, active in stored.items() if active] == [kids[1]]
        assert ring.active()[0] == kids[1]
    finally:
        store.close()
