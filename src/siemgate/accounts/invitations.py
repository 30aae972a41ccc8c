"""Invitations: the only way a person joins an account they were not created in.

An owner or administrator invites an email address with a role (only owners invite owners). The
reply is the same whether or not anyone on this server has that address, and never says who
they are. The inviter gets a one-time invitation code (shown once, stored as SHA-256) to pass to
the person by any channel; the invitation is valid 7 days, and only while the person who sent it
may still grant its role (accounts.people revokes it when they are removed or demoted; the
operator's invitations have no sender to lose a role).

- A person who already has credentials signs in with them and accepts (or declines) with the
  code: the console shows a banner for pending invitations addressed to them.
- Someone new joins with the code, choosing their own name and password (`join`); they are
  created with the inviting account as their home.

The code is what proves the invitation reached the person it was meant for: a person who merely
holds credentials for the invited address (made, say, by another tenant) cannot accept without
it. Every step is recorded in the account's audit trail (docs/audit.md).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from siemgate.accounts.actor import Actor
from siemgate.accounts.audit import AuditRecorder
from siemgate.accounts.people import (
    PeopleService,
    check_email,
    check_name,
    check_role,
    granting,
    record_revoked,
    withdrawn_by,
)
from siemgate.auth.passwords import hash_password
from siemgate.auth.tokens import token_digest
from siemgate.errors import BadRequest, Conflict, Forbidden, NotFound
from siemgate.model.ids import new_id
from siemgate.model.text import excerpt, fold_case
from siemgate.model.timestamps import NS_PER_SECOND, format_ns
from siemgate.store.base import Account, Store, User
from siemgate.store.shared.identity import Invitation

VALID_NS = 7 * 86400 * NS_PER_SECOND
MAX_PENDING = 100  # per account
CODE_PREFIX = "sgv_"


@dataclass(frozen=True, slots=True)
class Offer:
    """A pending invitation as its invitee sees it."""

    invitation: Invitation
    account: Account


class InvitationService:
    def __init__(self, store: Store, people: PeopleService, audit: AuditRecorder, clock: Callable[[], int]) -> None:
        self.store = store
        self.people = people
        self.audit = audit
        self.clock = clock

    # the inviting account -----------------------------------------------------------------------
    def invite(self, actor: Actor, account: Account, email: str, role: str) -> tuple[str, Invitation]:
        """Invite `email` with `role`; returns (code, invitation). Conflict when the address is
        already a member of this account or already has a pending invitation to it."""
        check_role(role)
        self.people.require(actor, account, granting(role), "invite owners" if role == "owner" else "invite")
        email = check_email(email)
        if self._member(account, email):
            raise Conflict(f"{email} is already a member of {account.name!r}")
        code = CODE_PREFIX + secrets.token_urlsafe(24)
        now = self.clock()
        invitation = Invitation(
            id=new_id(),
            account_id=account.id,
            email=email,
            role=role,
            code_sha256=token_digest(code),
            invited_by=actor.user.id if actor.user else None,
            created_at=now,
            expires_at=now + VALID_NS,
        )
        self.store.create_invitation(invitation, max_pending=MAX_PENDING, now=now)
        self.audit.record(
            account,
            actor,
            "create",
            "invite",
            object_uuid=invitation.id,
            aux_info={"email": email, "role": role, "expires_at": format_ns(invitation.expires_at)},
        )
        return code, invitation

    def _member(self, account: Account, email: str) -> bool:
        """Whether `email` is a member of this account (what the account may know anyway), in the
        same time whether or not the address has a sign-in elsewhere (PeopleService.find_member)."""
        try:
            self.people.find_member(account, email)
        except NotFound:
            return False
        return True

    def list_invitations(self, actor: Actor, account: Account) -> list[Invitation]:
        self.people.require(actor, account, "administrator", "see invitations")
        return self.store.list_invitations(account.id)

    def revoke(self, actor: Actor, account: Account, invitation_id: str) -> Invitation:
        """Withdraw a pending invitation (Conflict when it is no longer pending)."""
        invitation = self._of_account(account, invitation_id)
        self.people.require(
            actor,
            account,
            granting(invitation.role),
            "revoke an invitation to the owner role" if invitation.role == "owner" else "revoke invitations",
        )
        user_id = actor.user.id if actor.user else None
        if not self.store.decide_invitation(invitation.id, "revoked", user_id, self.clock()):
            raise Conflict(f"the invitation is {invitation.state(self.clock())}, not pending")
        record_revoked(self.audit, account, actor, invitation)
        return self.store.get_invitation(invitation.id)

    def _of_account(self, account: Account, invitation_id: str) -> Invitation:
        try:
            invitation = self.store.get_invitation(invitation_id)
        except NotFound:
            invitation = None
        if invitation is None or invitation.account_id != account.id:
            raise NotFound(f"Not Found: no invitation {excerpt(invitation_id)} in {account.name!r}")
        return invitation

    # the invited person -------------------------------------------------------------------------
    def offers(self, user: User) -> list[Offer]:
        """Pending invitations addressed to the person's email."""
        return [
            Offer(invitation, self.store.get_account_by_id(invitation.account_id))
            for invitation in self.store.invitations_for(user.email, self.clock())
        ]

    def _addressed(self, user: User, invitation_id: str, code: str) -> Invitation:
        """The pending invitation with this id and code addressed to the person; NotFound for
        anything else (the reply does not say which part was wrong)."""
        missing = NotFound(
            f"Not Found: no pending invitation {excerpt(invitation_id)} for {user.email} with this code;"
            " check the code you were given, or ask for a new invitation"
        )
        try:
            invitation = self.store.get_invitation(invitation_id)
        except NotFound:
            raise missing from None
        right_code = hmac.compare_digest(invitation.code_sha256, token_digest(code.strip()))
        if fold_case(invitation.email) != fold_case(user.email) or not right_code:
            raise missing
        if invitation.state(self.clock()) != "pending":
            raise missing
        return invitation

    def accept(self, actor: Actor, invitation_id: str, code: str) -> tuple[Account, str]:
        """Join the account with the invited role; returns (account, role)."""
        user = _person(actor)
        invitation = self._addressed(user, invitation_id, code)
        self._still_granted(invitation)
        return self._join(actor, user, invitation)

    def _still_granted(self, invitation: Invitation) -> None:
        """Conflict unless the person who sent the invitation is still a member who may grant its
        role (one the operator sent always is). Removing or demoting them revokes their pending
        invitations (accounts.people); this also refuses those sent before that was done."""
        if invitation.invited_by is None:
            return
        try:
            role: str | None = self.store.get_member(invitation.account_id, invitation.invited_by).role
        except NotFound:
            role = None
        if invitation.role in withdrawn_by(role):
            raise Conflict(
                f"this invitation is no longer valid: whoever sent it can no longer grant the {invitation.role}"
                " role in the account; ask the account's owners or administrators for a new invitation"
            )

    def _join(self, actor: Actor, user: User, invitation: Invitation) -> tuple[Account, str]:
        if not self.store.accept_invitation(invitation.id, user.id, self.clock()):
            raise NotFound(f"Not Found: the invitation {invitation.id!r} is no longer pending")
        return self._record_join(actor, user, invitation), invitation.role

    def _record_join(self, actor: Actor, user: User, invitation: Invitation) -> Account:
        """Record `join user` in the account the person joined; returns the account."""
        account = self.store.get_account_by_id(invitation.account_id)
        self.audit.record(
            account,
            actor,
            "join",
            "user",
            object_user=user,
            aux_uuid=invitation.id,
            aux_info={"role": invitation.role, "invitation": invitation.id},
        )
        return account

    def decline(self, actor: Actor, invitation_id: str, code: str) -> None:
        user = _person(actor)
        invitation = self._addressed(user, invitation_id, code)
        if not self.store.decide_invitation(invitation.id, "declined", user.id, self.clock()):
            raise NotFound(f"Not Found: the invitation {invitation.id!r} is no longer pending")
        account = self.store.get_account_by_id(invitation.account_id)
        self.audit.record(
            account,
            actor,
            "cancel",
            "invite",
            object_user=user,
            aux_uuid=invitation.id,
            aux_info={"status": "declined", "role": invitation.role},
        )

    def join(self, code: str, email: str, name: str, password: str, via: Callable[[User], Actor]) -> tuple[User, str]:
        """Someone new takes up an invitation: creates the person (home: the inviting account) with
        the password they chose, and the membership. Returns (person, role).

        NotFound when no pending invitation has this code and address; Conflict when the address
        already has credentials here (that person signs in and accepts instead)."""
        email = check_email(email)
        if not check_name(name).strip():
            raise BadRequest("Bad Request: name: give your name as others in the account will see it")
        try:
            password_hash = hash_password(password)
        except ValueError as exc:
            raise BadRequest(f"Bad Request: password: {exc}") from None
        invitation = next(
            (
                i
                for i in self.store.invitations_for(email, self.clock())
                if hmac.compare_digest(i.code_sha256, token_digest(code.strip()))
            ),
            None,
        )
        if invitation is None:
            raise NotFound(
                f"Not Found: no pending invitation for {email} with this code; check both, or ask for a new invitation"
            )
        self._still_granted(invitation)
        if self.people.person_exists(email):
            raise Conflict(
                f"{email} already has sign-in credentials on this server: sign in with them and accept"
                " the invitation there"
            )
        # the person and their membership in one transaction: an invitation revoked meanwhile
        # leaves no one behind with credentials and no account
        user = self.store.create_invited_user(invitation, new_id(), email, name.strip(), password_hash, self.clock())
        if user is None:
            raise NotFound(f"Not Found: the invitation {invitation.id!r} is no longer pending")
        self._record_join(via(user), user, invitation)
        return user, invitation.role


def _person(actor: Actor) -> User:
    if actor.user is None:
        raise Forbidden("Forbidden: only the invited person can answer an invitation, signed in as themselves")
    return actor.user
