"""Stored form of an event: its v2 JSON bytes, laid out so the v1 view is a prefix slice.

An event is stored once, in the v2 shape. The v2-only fields are the MSP fields: top-level
`account_uuid`, `actor_type`, `actor_account_uuid`, and `user_type` / `user_account_uuid` inside the
event's user object (`target_user`, `user` or `actor_details`). The encoder writes the user object
as the last v1 field with its v2-only fields at its end, then the top-level v2-only fields, so:

    v2 = V1_PREFIX + USER_EXTRA + "}" + TOP_EXTRA + "}"   (with a user object that has extras)
    v2 = V1_PREFIX + TOP_EXTRA + "}"                      (otherwise)

and the v1 bytes are `v2[:cut] + "}}"` or `v2[:cut] + "}"`. `v1_cut` packs that as
`cut * 4 + closing_braces`, or is None when v1 and v2 are the same bytes. Deriving a v1 page is
then one slice and one concatenation per event: no JSON decoding on the serving path.
"""

from __future__ import annotations

from typing import Any

import orjson

from siemgate.model.features import Feature

USER_OBJECT = {
    Feature.SIGNINATTEMPTS: "target_user",
    Feature.ITEMUSAGES: "user",
    Feature.AUDITEVENTS: "actor_details",
}
V2_ONLY_TOP = {
    Feature.SIGNINATTEMPTS: ("account_uuid",),
    Feature.ITEMUSAGES: ("account_uuid",),
    Feature.AUDITEVENTS: ("actor_type", "actor_account_uuid", "account_uuid"),
}
V2_ONLY_USER = ("user_type", "user_account_uuid")


def encode_event(feature: Feature, event: dict[str, Any]) -> tuple[bytes, int | None]:
    """Serialise a validated v2 event to its stored bytes and v1 cut (see the module docstring)."""
    user_key = USER_OBJECT[feature]
    user = event.get(user_key)
    has_user_extra = isinstance(user, dict) and ("user_type" in user or "user_account_uuid" in user)
    top_names = [k for k in V2_ONLY_TOP[feature] if k in event]
    if not has_user_extra and not top_names:
        return orjson.dumps(event), None
    # Copies with the v2-only fields popped (dict.copy and pop: cheaper than comprehensions).
    base = event.copy()
    top_extra = {k: base.pop(k) for k in top_names}
    user_extra = None
    if user_key in base:
        base[user_key] = user = base.pop(user_key)  # the user object goes last
        if has_user_extra:
            user = base[user_key] = user.copy()
            user_extra = {k: user.pop(k) for k in V2_ONLY_USER if k in user}
    v1 = orjson.dumps(base)
    if user_extra:
        cut, braces = len(v1) - 2, 2
        head = v1[:cut]
        body = head + (b"," if head[-1:] != b"{" else b"") + orjson.dumps(user_extra)[1:-1] + b"}"
    else:
        cut, braces = len(v1) - 1, 1
        body = v1[:cut]
    if top_extra:
        body += (b"," if body != b"{" else b"") + orjson.dumps(top_extra)[1:-1]
    return body + b"}", cut * 4 + braces


def v1_bytes(body: bytes, v1_cut: int | None) -> bytes:
    """The v1 view of a stored event."""
    if v1_cut is None:
        return body
    return body[: v1_cut >> 2] + (b"}}" if v1_cut & 3 == 2 else b"}")
