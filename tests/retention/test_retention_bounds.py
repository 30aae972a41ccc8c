"""Retention policies are bounded: a policy no run can apply is refused when set, and one stored
before the bound (or written into the store directly) never stops the runs of other accounts."""

from __future__ import annotations

from pathlib import Path

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
    assert done.returncode != 0 and "retention must be 1 to 36500 days" in done.stderr, done.stderr
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
