"""A first-seen rule changed (or enabled again) learns its values from the stored history again, a
scan of the stream; the account's rebuilds take at most `alerts_account_cpu_share` of the time
(docs/alerts.md, "Bounded evaluation"). Before, every save of such a rule re-read the whole
stream under the account's lock: an owner saving it in a loop kept a core scanning for ever."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from siemgate.alerts import evaluator
from support.events import signin

from .test_alerts_live import SIGNIN, S, Site

HISTORY = 3000


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setattr(evaluator, "STATE_SAVE_SECONDS", 0.0)  # saved at every step: nothing replayed after a save
    s = Site(tmp_path / "data", alerts_account_cpu_share=0.00001)  # after a rebuild of 1 ms, the next waits 100 s
    yield s
    s.services.close()


def test_first_seen_rules_saved_again_and_again_rebuild_within_the_accounts_share(site: Site) -> None:
    store = site.services.store
    read = store.read_events
    reads = [0]  # events the evaluator read back from the store

    def counting(*args: Any, **kwargs: Any) -> Any:
        rows = read(*args, **kwargs)
        reads[0] += len(rows)
        return rows

    store.read_events = counting  # type: ignore[method-assign]
    person = signin(site.clock())["target_user"]
    at = [0]

    def sign_in(country: str) -> None:
        at[0] += 1
        event = signin(site.clock() + at[0] * S, target_user=person)
        event["location"]["country"] = country
        site.write(SIGNIN, [event])

    site.write(SIGNIN, [signin(site.clock() - (HISTORY - i) * S, target_user=person) for i in range(HISTORY)])
    new_country = {"id": "new-country", "name": "New country", "source": "signinattempts"}

    def save(value: str) -> None:
        site.rule(
            **new_country, match={"category": "success"}, first_seen={"key": ["target_user.uuid"], "value": [value]}
        )

    save("location.country")
    sign_in("FR")  # the rule learns the history (every event from the same country), then this one
    assert reads[0] >= HISTORY
    reads[0] = 0
    for value in ["location.city", "location.country"] * 3:  # the owner saves again and again
        save(value)
        sign_in("DE")
    assert reads[0] == 0, f"{reads[0]} events read back: the history was learnt again within the account's share"
    failures = store.list_alert_failures(site.account.id, "new-country")
    assert failures and "learns its first-seen values from the stored history again" in failures[0].error
    assert ['"FR"' in str(a.payload) for a in site.alerts("new-country")] == [True], "only FR was new"

    site.services.alerts.evaluator._rebuilt.clear()  # the share allows another rebuild now
    fired = len(site.alerts("new-country"))
    sign_in("DE")  # learnt from the history it missed: not new
    assert HISTORY <= reads[0] < 2 * HISTORY, "one rebuild, of the whole stream"
    assert len(site.alerts("new-country")) == fired
    sign_in("JP")
    assert len(site.alerts("new-country")) == fired + 1
