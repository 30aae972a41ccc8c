"""Accounts, their members and roles, and who may do what.

Roles: `owner` > `administrator` > `member`. Any member may look; administrators and owners manage
integrations, tokens, keys and members; only owners grant, change or remove the owner role. An
account always keeps at least one owner (the store enforces it atomically). Removing or demoting a
person revokes, in the same transaction, their pending invitations offering a role they can no
longer grant (accounts.invitations refuses any that outlived that). A person who is not a
member of an account gets 404 for it, as if it did not exist. In an account that requires
two-factor sign-in, a person without it gets 403 until they turn it on.

People join an account by invitation (accounts.invitations); only the operator (the command line)
adds people directly, and only people who are new or whose home is that account. A person's
credentials are theirs: nothing here sets or reveals them (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from siemgate.accounts.actor import Actor
from siemgate.accounts.audit import AuditRecorder
from siemgate.auth.passwords import hash_password
from siemgate.errors import BadRequest, Conflict, Forbidden, NotFound
from siemgate.model.ids import new_id
from siemgate.model.text import excerpt, name_problem
from siemgate.store.base import ROLES, Account, Member, Store, User
from siemgate.store.shared.identity import Invitation, Withdrawal

RANK = {"member": 0, "administrator": 1, "owner": 2}
NO_ID = 0  # no account or person has it (ids start at 1): a membership looked up under it is never found


def granting(role: str) -> str:
    """The least role that may grant `role` by invitation: only owners invite owners."""
    return "owner" if role == "owner" else "administrator"


def withdrawn_by(role: str | None) -> tuple[str, ...]:
    """The invitation roles a person holding `role` (None: no longer a member) cannot grant; their
    pending invitations offering these are revoked (accounts.invitations)."""
    return tuple(r for r in ROLES if role is None or RANK[role] < RANK[granting(r)])


def record_revoked(audit: AuditRecorder, account: Account, actor: Actor, invitation: Invitation) -> None:
    """The audit event of a revoked invitation (`revoke invite`), whoever or whatever revoked it."""
    audit.record(
        account,
        actor,
        "revoke",
        "invite",
        object_uuid=invitation.id,
        aux_info={"email": invitation.email, "role": invitation.role},
    )


def check_role(role: str) -> str:
    if role not in ROLES:
        raise BadRequest(f"unknown role {excerpt(role)}; use one of {', '.join(ROLES)}")
    return role


def check_email(email: str) -> str:
    """`email` without surrounding spaces; BadRequest, saying what is wrong, unless it is one local
    part, one @ and a domain with a dot, at most 254 characters, with no space, line break or other
    control character."""
    email = email.strip()
    problem = _email_problem(email)
    if problem is not None:
        raise BadRequest(f"{excerpt(email)} is not an email address: {problem}")
    return email


def _email_problem(email: str) -> str | None:
    """What keeps `email` from being an address (a sentence to show), or None."""
    local, _, domain = email.partition("@")
    if len(email) > 254:
        return f"it has {len(email)} characters, at most 254 are allowed"
    for position, char in enumerate(email):
        if char.isspace() or name_problem(char) is not None:
            return (
                f"it contains U+{ord(char):04X} at position {position}: remove it (an address holds no space,"
                " control character or bidirectional override)"
            )
    if not local or not domain:
        return "give a name, an @ and a domain, e.g. ada@example.com"
    if "@" in domain:
        return "it holds more than one @"
    if "." not in domain:
        return "the domain after the @ needs a dot, e.g. example.com"
    return None


def check_name(name: str, field: str = "name") -> str:
    """`name` as given; BadRequest naming `field` when it holds a line break, a tab or another
    control character (model.text.name_problem). Names stored before this check keep working."""
    problem = name_problem(name)
    if problem is not None:
        raise BadRequest(f"Bad Request: {field}: {problem}")
    return name


class PeopleService:
    def __init__(self, store: Store, audit: AuditRecorder, clock: Callable[[], int]) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock

    # access ---------------------------------------------------------------------------------------
    def account_for(self, actor: Actor, ref: str) -> Account:
        """The account (uuid or name) if the actor may see it; else NotFound, the same for an
        account that does not exist and one the person is not a member of, in its time too: the
        membership is looked up for both (for a missing account under NO_ID), so that the
        reply's time does not tell a person whether another tenant has that name or uuid."""
        try:
            account: Account | None = self.store.get_account(ref)
        except NotFound:
            account = None
        if actor.user is not None:
            try:
                self.store.get_member(account.id if account is not None else NO_ID, actor.user.id)
            except NotFound:
                account = None
        if account is None:
            raise NotFound(f"Not Found: no account {excerpt(ref)}")
        user = actor.user
        if user is not None and self.store.requires_two_factor(account.id) and not self.has_two_factor(user):
            raise Forbidden(
                f"Forbidden: {account.name!r} requires two-factor sign-in; turn it on for yourself"
                " (POST /api/admin/v1/me/two-factor, or the console's Security page) and sign in again"
            )
        return account

    def has_two_factor(self, user: User) -> bool:
        enrolment = self.store.get_two_factor(user.id)
        return enrolment is not None and enrolment.enabled_at is not None

    def role(self, actor: Actor, account: Account) -> str:
        """The actor's role in the account (the command line and the system act as owners)."""
        if actor.user is None:
            return "owner"
        try:
            return self.store.get_member(account.id, actor.user.id).role
        except NotFound:
            raise NotFound("Not Found: no such account") from None

    def require(self, actor: Actor, account: Account, minimum: str, doing: str) -> None:
        """Raise Forbidden (403) unless the actor's role is at least `minimum`."""
        role = self.role(actor, account)
        if RANK[role] < RANK[minimum]:
            needed = "an owner" if minimum == "owner" else "an owner or administrator"
            article = "an" if role[0] in "aeiou" else "a"
            raise Forbidden(f"Forbidden: only {needed} can {doing}; you are {article} {role} of {account.name!r}")

    # accounts -------------------------------------------------------------------------------------
    def create_account(
        self, actor: Actor, name: str, owner_email: str | None, owner_name: str | None, password: str | None
    ) -> tuple[Account, User | None]:
        """A new account with its first owner: the acting person, or (command line) a new person by
        email. The command line may create an account without people, to invite them later; a
        person who already exists is invited (accounts.invitations), never enrolled silently."""
        if not name.strip():
            raise BadRequest("the account needs a name")
        check_name(name)
        if owner_name is not None:
            check_name(owner_name, "owner_name")
        if owner_email:
            owner_email = check_email(owner_email)
            if actor.user is not None:
                raise Forbidden("Forbidden: you become the owner of the accounts you create")
            if self.person_exists(owner_email):
                raise Conflict(
                    f"{owner_email} already has sign-in credentials on this server: create the account"
                    " without --owner, then invite them (`siemgate user invite`)"
                )
        password_hash = hash_password(password) if password else None  # before anything is written
        now = self.clock()
        account = self.store.create_account(new_id(), name.strip(), now)
        owner: User | None = actor.user
        if owner_email:
            owner = self._create_person(owner_email, owner_name, password_hash, account)
        self.audit.record(
            account, actor, "create", "account", object_uuid=account.uuid, aux_info={"name": account.name}
        )
        if owner is not None:
            self.store.add_member(account.id, owner.id, "owner", now)
            info = {"role": "owner", "founder": True}  # the account's first owner (no alert: docs/alerts.md)
            self.audit.record(account, actor, "join", "user", object_user=owner, aux_info=info)
        return account, owner

    def rename_account(self, actor: Actor, account: Account, name: str) -> Account:
        self.require(actor, account, "administrator", "rename the account")
        if not check_name(name).strip():
            raise BadRequest("the account needs a name")
        renamed = self.store.rename_account(account.id, name.strip())
        self.audit.record(
            renamed, actor, "changenm", "account", object_uuid=account.uuid, aux_info={"name": renamed.name}
        )
        return renamed

    # members --------------------------------------------------------------------------------------
    def person_exists(self, email: str) -> bool:
        try:
            self.store.get_user(email)
        except NotFound:
            return False
        return True

    def _create_person(self, email: str, name: str | None, password_hash: str | None, home: Account) -> User:
        return self.store.create_user(
            new_id(), email, (name or email.split("@")[0]).strip(), password_hash, home.id, self.clock()
        )

    def find_member(self, account: Account, ref: str) -> Member:
        """A member by uuid or email; NotFound otherwise, after the same lookups whether or not
        anyone on the server has that uuid or email (the membership of no one is looked up under
        NO_ID), so that the reply's time does not tell an account who has a sign-in elsewhere."""
        try:
            user_id = self.store.get_user(ref).id
        except NotFound:
            user_id = NO_ID
        try:
            return self.store.get_member(account.id, user_id)
        except NotFound:
            raise NotFound(f"Not Found: {excerpt(ref)} is not a member of {account.name!r}") from None

    def add_member(
        self, actor: Actor, account: Account, email: str, name: str | None, role: str, password: str | None = None
    ) -> Member:
        """The operator adds a person directly: a new person (created with this account as home and
        the password given), or one whose home is this account. Anyone else joins by invitation:
        Conflict for a person who exists with another home, Forbidden for a person acting."""
        check_role(role)
        if name is not None:
            check_name(name)
        if actor.user is not None:
            raise Forbidden(
                "Forbidden: people join an account by invitation; use POST"
                f" /api/admin/v1/accounts/{account.uuid}/invitations"
            )
        email = check_email(email)
        try:
            user = self.store.get_user(email)
        except NotFound:
            user = self._create_person(email, name, hash_password(password) if password else None, account)
        else:
            if user.home_account_id != account.id:
                raise Conflict(
                    f"{email} already has sign-in credentials on this server: invite them"
                    " (`siemgate user invite`); they accept after signing in"
                )
            if password:
                raise Conflict(f"{email} already has a password; only they (or `siemgate user password`) change it")
        try:
            member = self.store.add_member(account.id, user.id, role, self.clock())
        except Conflict:
            raise Conflict(f"{user.email} is already a member of {account.name!r}") from None
        self.audit.record(account, actor, "join", "user", object_user=user, aux_info={"role": role})
        return member

    def set_role(self, actor: Actor, account: Account, ref: str, role: str) -> Member:
        check_role(role)
        member = self.find_member(account, ref)
        touches_owner = "owner" in (role, member.role)
        self.require(
            actor,
            account,
            "owner" if touches_owner else "administrator",
            "change the owner role" if touches_owner else "change roles",
        )
        if member.role == role:
            return member
        updated, withdrawn = self.store.set_role(account.id, member.user.id, role, self._withdrawal(actor, role))
        self.audit.record(
            account, actor, "role", "user", object_user=member.user, aux_info={"role": role, "previous": member.role}
        )
        self._record_withdrawn(actor, account, withdrawn)
        return updated

    def remove_member(self, actor: Actor, account: Account, ref: str) -> None:
        """Remove a member; their pending invitations to the account, and those addressed to them
        (a code sent before is no way back in; a new invitation is), are revoked with them. Removed
        from their last account, the person's console sessions end and their personal API keys are
        revoked too (they may sign in again): whoever removes someone expects them out, with a
        copied cookie and a script's key, not back in with the old key when they join elsewhere."""
        member = self.find_member(account, ref)
        self.require(
            actor,
            account,
            "owner" if member.role == "owner" else "administrator",
            "remove an owner" if member.role == "owner" else "remove members",
        )
        withdrawn, ended = self.store.remove_member(account.id, member.user.id, self._withdrawal(actor, None))
        details: dict[str, Any] = {"role": member.role}
        if ended is not None:  # their last account: ended in the removal's transaction
            details["ended_sessions"] = ended.sessions
            details["revoked_api_keys"] = ended.api_keys
        self.audit.record(account, actor, "delete", "user", object_user=member.user, aux_info=details)
        self._record_withdrawn(actor, account, withdrawn)

    def _withdrawal(self, actor: Actor, role: str | None) -> Withdrawal:
        """What a person's new role (None: removed) withdraws of the invitations they sent: those
        offering a role they can no longer grant, revoked by the actor."""
        return Withdrawal(withdrawn_by(role), self.clock(), actor.user.id if actor.user else None)

    def _record_withdrawn(self, actor: Actor, account: Account, withdrawn: list[Invitation]) -> None:
        for invitation in withdrawn:
            record_revoked(self.audit, account, actor, invitation)

    def members(self, actor: Actor, account: Account, after_user_id: int = 0, limit: int = 1000) -> list[Member]:
        self.role(actor, account)  # any member may look
        return self.store.list_members(account.id, after_user_id, limit)
