"""Accounts, their members and roles, and who may do what.

Roles: `owner` > `administrator` > `member`. Any member may look; administrators and owners manage
integrations, tokens, keys and members; only owners grant, change or remove the owner role. An
account always keeps at least one owner (the store enforces it atomically). A person who is not a
member of an account gets 404 for it, as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Callable

from siemgate.accounts.actor import Actor
from siemgate.accounts.audit import AuditRecorder
from siemgate.auth.passwords import hash_password
from siemgate.errors import BadRequest, Conflict, Forbidden, NotFound
from siemgate.model.ids import new_id
from siemgate.store.base import ROLES, Account, Member, Store, User

RANK = {"member": 0, "administrator": 1, "owner": 2}


def check_role(role: str) -> str:
    if role not in ROLES:
        raise BadRequest(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    return role


def check_email(email: str) -> str:
    email = email.strip()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email or len(email) > 254:
        raise BadRequest(f"{email!r} is not an email address")
    return email


class PeopleService:
    def __init__(self, store: Store, audit: AuditRecorder, clock: Callable[[], int]) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock

    # access ---------------------------------------------------------------------------------------
    def account_for(self, actor: Actor, ref: str) -> Account:
        """The account (uuid or name) if the actor may see it; else NotFound."""
        try:
            account = self.store.get_account(ref)
        except NotFound:
            raise NotFound(f"Not Found: no account {ref!r}") from None
        if actor.user is not None:
            try:
                self.store.get_member(account.id, actor.user.id)
            except NotFound:
                raise NotFound(f"Not Found: no account {ref!r}") from None
        return account

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
        """A new account with its first owner: the acting person, or a new/existing person by email
        (the command line may create an account without people, to add them later)."""
        if not name.strip():
            raise BadRequest("the account needs a name")
        password_hash = hash_password(password) if password else None  # before anything is written
        now = self.clock()
        account = self.store.create_account(new_id(), name.strip(), now)
        owner: User | None = actor.user
        if owner_email:
            owner = self._find_or_create(owner_email, owner_name, password_hash, account)
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
        if not name.strip():
            raise BadRequest("the account needs a name")
        renamed = self.store.rename_account(account.id, name.strip())
        self.audit.record(
            renamed, actor, "changenm", "account", object_uuid=account.uuid, aux_info={"name": renamed.name}
        )
        return renamed

    # members --------------------------------------------------------------------------------------
    def _find_or_create(self, email: str, name: str | None, password_hash: str | None, home: Account) -> User:
        email = check_email(email)
        try:
            user = self.store.get_user(email)
        except NotFound:
            user = self.store.create_user(
                new_id(), email, (name or email.split("@")[0]).strip(), password_hash, home.id, self.clock()
            )
        # An existing person keeps their credentials: adding them elsewhere never changes them.
        return user

    def find_member(self, account: Account, ref: str) -> Member:
        """A member by uuid or email; NotFound otherwise."""
        try:
            user = self.store.get_user(ref)
            return self.store.get_member(account.id, user.id)
        except NotFound:
            raise NotFound(f"Not Found: {ref!r} is not a member of {account.name!r}") from None

    def add_member(
        self, actor: Actor, account: Account, email: str, name: str | None, role: str, password: str | None = None
    ) -> Member:
        """Add a person (created if new, with this account as home) with a role."""
        check_role(role)
        self.require(
            actor,
            account,
            "owner" if role == "owner" else "administrator",
            f"add {'an owner' if role == 'owner' else 'members'}",
        )
        password_hash = hash_password(password) if password else None
        user = self._find_or_create(email, name, password_hash, account)
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
        updated = self.store.set_role(account.id, member.user.id, role)
        self.audit.record(
            account, actor, "role", "user", object_user=member.user, aux_info={"role": role, "previous": member.role}
        )
        return updated

    def remove_member(self, actor: Actor, account: Account, ref: str) -> None:
        member = self.find_member(account, ref)
        self.require(
            actor,
            account,
            "owner" if member.role == "owner" else "administrator",
            "remove an owner" if member.role == "owner" else "remove members",
        )
        self.store.remove_member(account.id, member.user.id)
        self.audit.record(account, actor, "delete", "user", object_user=member.user, aux_info={"role": member.role})

    def members(self, actor: Actor, account: Account, after_user_id: int = 0, limit: int = 1000) -> list[Member]:
        self.role(actor, account)  # any member may look
        return self.store.list_members(account.id, after_user_id, limit)
