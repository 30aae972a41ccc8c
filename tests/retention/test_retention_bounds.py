"""Retention policies are bounded: a policy no run can apply is refused when set, and one stored
before the bound (or written into the store directly) never stops the runs of other accounts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siemgate.errors import StoreError
from siemgate.model.features import ALL_FEATURES
from siemgate.model.ids import new_id
from siemgate.store.records import RetentionPolicy

from .helpers import AUDIT, NOW, fill, held, open_services, run_cli


def test_a_retention_of_more_than_100_years_is_refused_and_one_stored_stops_no_other_account(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    services = open_services(data_dir, archive_format="jsonl")
    try:
        odd = services.store.create_account(new_id(), "Odd", NOW)
        acme = services.store.create_account(new_id(), "Acme", NOW)
        fill(services, acme, days=1, per_day=10)  # 200 days old: due under the default 120 days
    finally:
        services.close()
    done = run_cli(data_dir, "retention", "set", "99999999999", "--account", "Odd")
    assert done.returncode != 0 and "36500" in done.stderr and "days" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    services = open_services(data_dir, archive_format="jsonl")
    try:
        assert services.store.retention_policies(odd.id) == {}  # nothing stored
        for feature in ALL_FEATURES:  # as a release without the bound stored it
            services.store.set_retention_policy(RetentionPolicy(odd.id, feature, 99_999_999_999, "jsonl", NOW))
    finally:
        services.close()
    services = open_services(data_dir, archive_format="jsonl")
    try:
        results = services.retention.apply()  # Odd first: its streams keep everything
        assert all(r.error is None for r in results), [r.error for r in results]
        assert held(services, services.store.get_account(acme.uuid), AUDIT) == 0  # archived and purged
    finally:
        services.close()


def test_a_stream_whose_retention_fails_stops_no_other_stream_or_account(tmp_path: Path, monkeypatch: Any) -> None:
    """A failure of one stream's run (here the store refusing its purge) is that stream's error;
    the other streams and accounts are applied as usual, and the next run tries it again."""
    services = open_services(tmp_path / "data", archive_format="none")
    try:
        broken = services.store.create_account(new_id(), "Broken", NOW)
        acme = services.store.create_account(new_id(), "Acme", NOW)
        for account in (broken, acme):
            fill(services, account, days=1, per_day=10)  # 200 days old: due under the default 120 days
        purge = services.store.purge_events

        def failing(account_id: int, *args: Any, **kwargs: Any) -> int:
            if account_id == broken.id:
                raise StoreError("the store refused the purge (injected)")
            return purge(account_id, *args, **kwargs)

        monkeypatch.setattr(services.store, "purge_events", failing)
        results = services.retention.apply()
        errors = {(r.account, r.feature): r.error for r in results if r.error}
        assert set(errors) == {(broken.uuid, f) for f in ALL_FEATURES}, errors
        assert all("injected" in e for e in errors.values()), errors
        assert held(services, acme, AUDIT) == 0
        assert held(services, broken, AUDIT) > 0
        monkeypatch.setattr(services.store, "purge_events", purge)
        assert all(r.error is None for r in services.retention.apply())
        assert held(services, broken, AUDIT) == 0
    finally:
        services.close()
