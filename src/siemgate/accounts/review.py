"""The operator's review of cross-account access (`siemgate audit memberships`).

Before invitations (0.2.0), an owner of one account could add a person who already existed
elsewhere, or create a person with a password of their choosing who later joined another account.
This lists every membership of a person in an account that is not their home, how they joined
(an accepted invitation, or not — added directly), and the credentials they hold there: their
live personal API keys (which act in every account they belong to) and the live SIEM tokens they
issued in that account. The operator reviews each and removes what they do not recognise.
"""

from __future__ import annotations

from typing import Any

from siemgate.accounts.views import when
from siemgate.store.base import Store


def foreign_memberships(store: Store, now: int) -> list[dict[str, Any]]:
    """One row per membership of a person in an account other than their home account."""
    accounts = {a.id: a for a in store.list_accounts()}
    rows = []
    for account in accounts.values():
        accepted = {
            i.decided_by: i.id for i in store.list_invitations(account.id) if i.status == "accepted" and i.decided_by
        }
        tokens = [t for t in store.list_tokens(account.id) if t.is_live(now)]
        for member in store.list_members(account.id):
            user = member.user
            if user.home_account_id == account.id:
                continue
            home = accounts.get(user.home_account_id) if user.home_account_id is not None else None
            keys = [k for k in store.list_api_keys(user.id) if k.revoked_at is None and (k.expires_at or now + 1) > now]
            rows.append(
                {
                    "account": {"uuid": account.uuid, "name": account.name},
                    "person": {"uuid": user.uuid, "email": user.email, "name": user.name},
                    "role": member.role,
                    "joined_at": when(member.joined_at),
                    "home_account": {"uuid": home.uuid, "name": home.name} if home else None,
                    "joined_by": f"invitation {accepted[user.id]}" if user.id in accepted else "added directly",
                    "live_api_keys": [{"id": k.id, "name": k.name, "created_at": when(k.created_at)} for k in keys],
                    "live_siem_tokens_issued": [
                        {"id": t.id, "name": t.name, "created_at": when(t.created_at)}
                        for t in tokens
                        if t.created_by == user.id
                    ],
                }
            )
    return rows
