"""Request and response shapes of the Events API, for the OpenAPI document.

The serving path does not use these (it parses tolerantly and splices stored JSON); they describe
exactly what it accepts and returns, and the tests check responses against them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from siemgate.model import events
from siemgate.model.features import Feature


class ErrorMessage(BaseModel):
    Message: str = Field(description="What was wrong and how to fix it.", examples=["Unauthorized"])


class ErrorBody(BaseModel):
    """Every error: the shape deployed 1Password connectors parse."""

    Error: ErrorMessage


class ResetCursor(BaseModel):
    """Start a stream: events with timestamps in [start_time, end_time], stored now or later."""

    model_config = ConfigDict(extra="allow")
    limit: int | None = Field(100, ge=1, le=1000, description="Events per page (1 to 1000).")
    start_time: str | None = Field(
        None,
        description="RFC 3339; default end_time - 1h, or now - 1h. Clamped to the retention window.",
        json_schema_extra={"format": "date-time"},
    )
    end_time: str | None = Field(
        None,
        description="RFC 3339; default open-ended (new events keep arriving).",
        json_schema_extra={"format": "date-time"},
    )


class CursorBody(BaseModel):
    """Continue a stream from a previous response's cursor (the limit and window travel in it)."""

    model_config = ConfigDict(extra="allow", title="Cursor")
    cursor: str = Field(description="The `cursor` of a previous response, unchanged.")


class Introspection(BaseModel):
    """v1 introspection (deprecated upstream, still served)."""

    UUID: str = Field(description="The integration the token belongs to.")
    IssuedAt: str = Field(description="When the token was issued (RFC 3339).")
    Features: list[str]


class IntrospectionV2(BaseModel):
    uuid: str = Field(description="The integration the token belongs to.")
    issued_at: str = Field(description="When the token was issued (RFC 3339).")
    features: list[str]
    account_uuid: str


class SignInAttemptItems(BaseModel):
    cursor: str
    has_more: bool
    items: list[events.SignInAttempt]


class SignInAttemptItemsV2(BaseModel):
    cursor: str
    has_more: bool
    items: list[events.SignInAttemptV2]


class ItemUsageItems(BaseModel):
    cursor: str
    has_more: bool
    items: list[events.ItemUsage]


class ItemUsageItemsV2(BaseModel):
    cursor: str
    has_more: bool
    items: list[events.ItemUsageV2]


class AuditEventItems(BaseModel):
    cursor: str
    has_more: bool
    items: list[events.AuditEvent]


class AuditEventItemsV2(BaseModel):
    cursor: str
    has_more: bool
    items: list[events.AuditEventV2]


class IngestResult(BaseModel):
    received: int = Field(description="Events in the request.")
    stored: int = Field(description="Events stored now.")
    duplicates: int = Field(description="Events whose uuid was already stored (or repeated in the batch).")


PAGE_MODELS: dict[tuple[int, Feature], type[BaseModel]] = {
    (1, Feature.SIGNINATTEMPTS): SignInAttemptItems,
    (2, Feature.SIGNINATTEMPTS): SignInAttemptItemsV2,
    (1, Feature.ITEMUSAGES): ItemUsageItems,
    (2, Feature.ITEMUSAGES): ItemUsageItemsV2,
    (1, Feature.AUDITEVENTS): AuditEventItems,
    (2, Feature.AUDITEVENTS): AuditEventItemsV2,
}
