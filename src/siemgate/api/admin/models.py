"""Request and response bodies of the admin API (they are its OpenAPI schemas)."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from siemgate.auth.passwords import MAX_LENGTH as MAX_PASSWORD_LENGTH

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


class MemberCreate(Strict):
    email: str = Field(min_length=3, max_length=254)
    name: str | None = Field(None, max_length=200)
    role: Role = "member"
    password: str | None = Field(
        None,
        max_length=MAX_PASSWORD_LENGTH,
        description=f"Lets the person sign in to the console (10 to {MAX_PASSWORD_LENGTH} characters).",
    )


class MemberUpdate(Strict):
    role: Role


class IntegrationCreate(Strict):
    type: str = Field(description="One of the SIEM types of GET /api/admin/v1/siem-types.", examples=["splunk"])
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)


class IntegrationUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)


class TokenCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    features: list[FeatureName] = Field(default_factory=lambda: list(ALL), min_length=1)
    expires: str = Field("never", description="never, 30d, 90d, 180d, or a custom duration such as 12h or 45d.")


class TokenRotate(Strict):
    grace: str | None = Field(
        None,
        description="When to revoke the old token: omitted = when the replacement is first used, at the latest"
        " after 24h; '0' = now; or a duration such as 2h or 7d.",
    )


class IngestKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    features: list[FeatureName] = Field(default_factory=lambda: list(ALL), min_length=1)


class ApiKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    expires: str = Field("never", description="never, or a duration such as 90d.")


class SignIn(Strict):
    email: str = Field(max_length=254)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)


# responses ----------------------------------------------------------------------------------------
class AccountOut(BaseModel):
    uuid: str
    name: str
    created_at: str | None
    role: Role | None = None


class MemberOut(BaseModel):
    uuid: str
    email: str
    name: str
    role: Role
    joined_at: str | None
    can_sign_in: bool


class Me(BaseModel):
    uuid: str
    email: str
    name: str
    accounts: list[AccountOut]


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
    last_read_at: str | None


class TokenWithStreams(TokenOut):
    streams: list[StreamOut]


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
    base_url: str
    url_from_token: bool
    fields: list[str]
    steps: list[str]
    url_note: str


class IntegrationDetailsOut(IntegrationOut):
    siem: SiemRef
    connection_guide: Guide
    tokens: list[TokenWithStreams]


class SiemTypeOut(BaseModel):
    key: str
    name: str
    connector: str
    url_from_token: bool
    fields: list[str]


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
