"""Request and response bodies of the admin API (they are its OpenAPI schemas)."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from siemgate.accounts.catalog import SIEM_TYPES
from siemgate.auth.passwords import MAX_LENGTH as MAX_PASSWORD_LENGTH
from siemgate.model.durations import DEFAULT_EXPIRY, MAX_EXPIRY, MAX_GRACE

T = TypeVar("T")
Role = Literal["owner", "administrator", "member"]
FeatureName = Literal["signinattempts", "itemusages", "auditevents"]
ALL: list[FeatureName] = ["signinattempts", "itemusages", "auditevents"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# requests -----------------------------------------------------------------------------------------
class AccountCreate(Strict):
    name: str = Field(min_length=1, max_length=200)


class AccountUpdate(Strict):
    name: str = Field(min_length=1, max_length=200)


EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
Email = Field(
    min_length=3, max_length=254, pattern=EMAIL_PATTERN, description="An email address.", examples=["ada@example.com"]
)
Password = Field(
    min_length=1, max_length=MAX_PASSWORD_LENGTH, description="A password (new ones: at least 10 characters)."
)
LENGTH_RULE = "At least 10 characters."


class InvitationCreate(Strict):
    email: str = Email
    role: Role = "member"


class InvitationAnswer(Strict):
    code: str = Field(min_length=1, max_length=200, description="The invitation code (sgv_...) the inviter gave you.")


class Join(Strict):
    email: str = Email
    code: str = Field(min_length=1, max_length=200, description="The invitation code (sgv_...).")
    name: str = Field(min_length=1, max_length=200, description="Your name, as others in the account see it.")
    password: str = Field(
        min_length=10, max_length=MAX_PASSWORD_LENGTH, description="Your new password (at least 10 characters)."
    )


class PasswordChange(Strict):
    current_password: str = Password
    new_password: str = Field(min_length=10, max_length=MAX_PASSWORD_LENGTH, description=LENGTH_RULE)


class SecondFactorConfirm(Strict):
    password: str = Password
    code: str | None = Field(
        default=None,
        min_length=6,
        max_length=40,
        description="A current code of your authenticator app, or an unused recovery code (then used up):"
        " a session and your password alone cannot change two-factor. Needed while two-factor is on.",
    )


class SecondFactor(Strict):
    challenge: str = Field(min_length=1, max_length=500, description="The challenge of the password step.")
    code: str = Field(
        min_length=6, max_length=40, description="The 6-digit code of your authenticator app, or a recovery code."
    )


class TwoFactorConfirm(Strict):
    code: str = Field(min_length=6, max_length=12, description="The 6-digit code your authenticator app shows now.")
    password: str = Field(
        min_length=1, max_length=MAX_PASSWORD_LENGTH, description="Your password: a session alone cannot turn it on."
    )


class AccountSecurity(Strict):
    require_two_factor: bool = Field(description="Every member must sign in with two factors to use this account.")


class MemberUpdate(Strict):
    role: Role


class IntegrationCreate(Strict):
    type: str = Field(
        description="One of the SIEM types of GET /api/admin/v1/siem-types.",
        examples=["splunk"],
        json_schema_extra={"enum": list(SIEM_TYPES)},  # checked by the service, which names the choices
    )
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)


class IntegrationUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)


class TokenCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    features: list[FeatureName] = Field(default_factory=lambda: list(ALL), min_length=1)
    expires: str = Field(
        DEFAULT_EXPIRY,
        max_length=40,
        description="90d by default; never, 30d, 180d, or a custom duration such as 30min, 12h, 45d, 2w or 3mo"
        f" (30 days each), at most {MAX_EXPIRY}; a bare 3m is refused as ambiguous.",
    )


class TokenRotate(Strict):
    grace: str | None = Field(
        None,
        max_length=40,
        description="When to revoke the old token: omitted = when the replacement is first used, at the latest"
        f" after 24h; '0' = now; or a duration such as 2h or 7d, at most {MAX_GRACE}.",
    )


class IngestKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    features: list[FeatureName] = Field(default_factory=lambda: list(ALL), min_length=1)


class ApiKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    expires: str = Field(
        "never",
        pattern=r"^(never|none|[1-9][0-9]{0,3}[smhdw])$",
        description="never, or a duration such as 90d (a number of s, m, h, d or w, at most 4 digits).",
    )
    password: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PASSWORD_LENGTH,
        description="Your password: required when you use a console session (a copied session cookie must"
        " not become a key that outlives it); not needed with a personal API key.",
    )


class SignIn(Strict):
    email: str = Field(min_length=1, max_length=254)
    password: str = Password


# responses ----------------------------------------------------------------------------------------
class AccountOut(BaseModel):
    uuid: str
    name: str
    created_at: str | None
    role: Role | None = None


class AccountDeleted(BaseModel):
    deleted: str = Field(description="The deleted account's uuid.")
    name: str
    removed: dict[str, int] = Field(description="Rows removed per table, and archive files.")


class MemberOut(BaseModel):
    uuid: str
    email: str
    name: str
    role: Role
    joined_at: str | None
    two_factor: bool = Field(description="Whether the person signs in with two factors.")


class Me(BaseModel):
    uuid: str
    email: str
    name: str
    two_factor: bool
    accounts: list[AccountOut]


class InvitationOut(BaseModel):
    id: str
    email: str
    role: Role
    status: Literal["pending", "expired", "accepted", "declined", "revoked"]
    created_at: str | None
    expires_at: str | None


class CreatedInvitation(InvitationOut):
    code: str = Field(description="The invitation code: shown only in this response; give it to the person.")
    join_url: str = Field(
        description="Where someone new joins with the code (people with a sign-in accept in the console)."
    )


class AccountRef(BaseModel):
    uuid: str
    name: str


class Offer(BaseModel):
    id: str
    account: AccountRef
    role: Role
    expires_at: str | None


class SecondFactorRequired(BaseModel):
    second_factor_required: Literal[True] = True
    challenge: str = Field(
        description="Send with the code to POST /api/admin/v1/session/second-factor within 5 minutes."
    )


class TwoFactorStatus(BaseModel):
    enabled: bool
    recovery_codes_left: int


class TwoFactorEnrolment(BaseModel):
    secret: str = Field(description="The TOTP secret (base32), for typing into an authenticator app.")
    otpauth_uri: str = Field(description="The same as an otpauth:// URI (show it as a QR code).")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="Ten one-time codes, shown only now: keep them somewhere safe.")


class IntegrationRef(BaseModel):
    uuid: str
    name: str
    type: str


class TokenOut(BaseModel):
    id: str
    name: str
    features: list[str]
    status: Literal["active", "expiring", "expired", "revoked"]
    created_at: str | None
    expires_at: str | None
    revoked_at: str | None
    revoke_at: str | None = Field(description="When a rotated token will be revoked at the latest.")
    last_used_at: str | None
    replaces: str | None
    integration: IntegrationRef | None = None


class IssuedToken(TokenOut):
    token: str = Field(description="The bearer token. Shown only in this response: store it now.")
    base_url: str


class StreamOut(BaseModel):
    feature: str
    last_seq: int | None
    head_seq: int
    events_behind: int | None = Field(description="Events stored after the consumer's last position; null: never read.")
    behind_seconds: int | None = Field(
        description="How long the oldest event the consumer has not read has waited (0: caught up); null: never read."
    )
    last_read_at: str | None


class TokenWithStreams(TokenOut):
    revoked_by: str | None = Field(description="Who revoked the token (from the audit trail); null when not revoked.")
    streams: list[StreamOut]


class Health(BaseModel):
    state: Literal["active", "expiring", "no_active_token", "never_used", "behind"] = Field(
        description="The integration as a whole: no_active_token, never_used, behind (an unread event has waited"
        " over 15 minutes), expiring (every live token within 14 days) or active."
    )
    behind_seconds: int | None = Field(description="The most current live token's lag; null: never read.")
    expires_at: str | None = Field(description="When the last live token expires; null: one never does.")


class IntegrationOut(BaseModel):
    uuid: str
    type: str
    name: str
    description: str
    created_at: str | None


class SiemRef(BaseModel):
    key: str
    name: str


class Guide(BaseModel):
    connector: str
    base_url: str = Field(description="The public address: what SIEMs are told to connect to.")
    audience: str = Field(description="host[:port] that tokens issued now carry (`aud`).")
    url_from_token: bool
    fields: list[str]
    steps: list[str]
    url_note: str
    warnings: list[str] = Field(description="Why this SIEM cannot use the public address, and what to change.")


class IntegrationListed(IntegrationOut):
    health: Health


class IntegrationDetailsOut(IntegrationOut):
    siem: SiemRef
    connection_guide: Guide
    health: Health
    tokens: list[TokenWithStreams]


class SiemTypeOut(BaseModel):
    key: str
    name: str
    connector: str
    url_from_token: bool
    cloud: bool = Field(description="The connector runs in the vendor's cloud.")
    fields: list[str]
    base_url: str = Field(description="The public address SIEMs are told to connect to.")
    warnings: list[str] = Field(
        description="Why this SIEM cannot use the public address, and what to change (before issuing a token)."
    )


class IngestKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    features: list[str]
    status: Literal["active", "revoked"]
    created_at: str | None
    last_used_at: str | None


class CreatedIngestKey(IngestKeyOut):
    key: str = Field(description="The ingest key. Shown only in this response.")


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    status: Literal["active", "expired", "revoked"]
    created_at: str | None
    expires_at: str | None
    last_used_at: str | None


class CreatedApiKey(ApiKeyOut):
    key: str = Field(description="The API key. Shown only in this response.")


class SessionOut(BaseModel):
    user: Me
    csrf_token: str = Field(description="Send as X-CSRF-Token on every change made with this session.")
    expires_at: str | None


class SessionsEnded(BaseModel):
    ended_sessions: int = Field(description="How many console sessions ended, the one signing out included.")


class Deleted(BaseModel):
    deleted: bool = True
    revoked_tokens: list[str] = Field(default_factory=list)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at the end.")


# event explorer and dashboards (event_routes) -----------------------------------------------------
class StatsRow(BaseModel):
    """One group: only the grouped facets (and `bucket` when bucketed by time) are present."""

    bucket: str | None = Field(None, description="Start of the time bucket (RFC 3339); only with an interval.")
    actor: str | None = None
    kind: str | None = None
    detail: str | None = None
    country: str | None = None
    app: str | None = None
    ip: str | None = None
    count: int


class Stats(BaseModel):
    feature: FeatureName
    start: str
    end: str
    group_by: list[str]
    interval_seconds: int | None = Field(description="Width of the time buckets; null: not bucketed.")
    rows: list[StatsRow] = Field(description="Most first; in time order when bucketed.")
    total: int = Field(description="Every matching event in the window.")
