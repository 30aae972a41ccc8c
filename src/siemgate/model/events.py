"""The event shapes of the Events API (docs/events.md), v1 and v2, as typed dictionaries.

They validate producer input (strict: types, enums, ids, timestamps; unknown fields refused) and
describe the API in the OpenAPI document. v2 shapes are v1 plus the MSP fields; events are stored
in the v2 shape and v1 views are derived from it (see `model.encoding`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, NotRequired, TypeAlias

from pydantic import ConfigDict, Field, StringConstraints, WithJsonSchema, with_config
from typing_extensions import TypedDict

from siemgate.model import enums

ID_PATTERN = "^[A-Za-z2-7]{26}$"


def _enum(values: tuple[str, ...]) -> Any:
    return Literal[values]  # checked in pydantic-core; messages rewritten in model.validation


Id = Annotated[
    str,
    StringConstraints(pattern=ID_PATTERN),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z2-7]{26}$", "example": "56YE2TYN2VFYRLNSHKPW5NVT5E"}),
]
# Timestamps are parsed and normalised by model.validation, which needs their value anyway.
Timestamp = Annotated[
    str,
    WithJsonSchema({"type": "string", "format": "date-time", "example": "2024-12-02T11:54:19.710457472Z"}),
]
Number = int | float  # an integer stays an integer on output
# Integers every reader reads exactly (I-JSON, RFC 7493): JavaScript (the console) rounds past 2**53,
# Go connectors and Elasticsearch's `long` refuse past 2**63 (docs/security.md, "Text and values").
MAX_SAFE_INTEGER = 2**53 - 1
Integer = Annotated[int, Field(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
# Ranges checked by model.validation (with messages that say so); shown in the OpenAPI document.
Latitude = Annotated[Number, WithJsonSchema({"type": "number", "minimum": -90, "maximum": 90, "example": 43.64})]
Longitude = Annotated[Number, WithJsonSchema({"type": "number", "minimum": -180, "maximum": 180, "example": -79.4})]
if TYPE_CHECKING:
    SignInCategory: TypeAlias = str
    SignInType: TypeAlias = str
    ItemUsageAction: TypeAlias = str
    AuditAction: TypeAlias = str
    AuditObjectType: TypeAlias = str
    UserType: TypeAlias = str
    ActorType: TypeAlias = str
else:
    SignInCategory = _enum(enums.SIGNIN_CATEGORIES)
    SignInType = _enum(enums.SIGNIN_TYPES)
    ItemUsageAction = _enum(enums.ITEM_USAGE_ACTIONS)
    AuditAction = _enum(enums.AUDIT_ACTIONS)
    AuditObjectType = _enum(enums.AUDIT_OBJECT_TYPES)
    UserType = _enum(enums.USER_TYPES)
    ActorType = _enum(enums.ACTOR_TYPES)

STRICT = ConfigDict(extra="forbid", strict=True)


@with_config(STRICT)
class User(TypedDict, total=False):
    """The user an event is about; name and email as they were when the event happened."""

    uuid: Id
    name: str
    email: str


@with_config(STRICT)
class UserV2(User, total=False):
    """User plus the MSP fields of the v2 endpoints."""

    user_type: UserType
    user_account_uuid: Id


@with_config(STRICT)
class Client(TypedDict, total=False):
    """The 1Password app the event came from."""

    app_name: str
    app_version: str
    platform_name: str
    platform_version: str
    os_name: str
    os_version: str
    ip_address: str


@with_config(STRICT)
class Location(TypedDict, total=False):
    """Where the client was; absent when unknown."""

    country: str
    region: str
    city: str
    latitude: Latitude
    longitude: Longitude


@with_config(STRICT)
class Details(TypedDict):
    """Extra detail for firewall-blocked sign-ins (the blocking continent, country or IP)."""

    value: str


@with_config(STRICT)
class Session(TypedDict, total=False):
    """The session an audited action was taken in."""

    uuid: Id
    login_time: Timestamp
    device_uuid: Id
    ip: str


@with_config(STRICT)
class ResourceDetails(TypedDict, total=False):
    """Details of a user an audit event refers to."""

    uuid: Id
    name: str
    email: str


@with_config(STRICT)
class SignInAttempt(TypedDict):
    """A sign-in attempt (v1)."""

    uuid: Id
    timestamp: Timestamp
    category: SignInCategory
    type: SignInType
    session_uuid: NotRequired[Id]
    country: NotRequired[str]
    details: NotRequired[Details | None]
    target_user: NotRequired[User]
    client: NotRequired[Client]
    location: NotRequired[Location]


@with_config(STRICT)
class SignInAttemptV2(TypedDict):
    """A sign-in attempt (v2): target_user is a UserV2, plus account_uuid."""

    uuid: Id
    timestamp: Timestamp
    category: SignInCategory
    type: SignInType
    session_uuid: NotRequired[Id]
    country: NotRequired[str]
    details: NotRequired[Details | None]
    target_user: NotRequired[UserV2]
    client: NotRequired[Client]
    location: NotRequired[Location]
    account_uuid: NotRequired[Id]


@with_config(STRICT)
class ItemUsage(TypedDict):
    """An item in a shared vault was used (v1)."""

    uuid: Id
    timestamp: Timestamp
    action: NotRequired[ItemUsageAction]
    used_version: NotRequired[Integer]
    vault_uuid: NotRequired[Id]
    item_uuid: NotRequired[Id]
    user: NotRequired[User]
    client: NotRequired[Client]
    location: NotRequired[Location]


@with_config(STRICT)
class ItemUsageV2(TypedDict):
    """An item usage (v2): user is a UserV2, plus account_uuid."""

    uuid: Id
    timestamp: Timestamp
    action: NotRequired[ItemUsageAction]
    used_version: NotRequired[Integer]
    vault_uuid: NotRequired[Id]
    item_uuid: NotRequired[Id]
    user: NotRequired[UserV2]
    client: NotRequired[Client]
    location: NotRequired[Location]
    account_uuid: NotRequired[Id]


@with_config(STRICT)
class AuditEvent(TypedDict):
    """An action taken in the account (v1)."""

    uuid: Id
    timestamp: Timestamp
    action: AuditAction
    object_type: AuditObjectType
    actor_uuid: NotRequired[Id]
    actor_details: NotRequired[ResourceDetails]
    object_uuid: NotRequired[str]
    object_details: NotRequired[ResourceDetails]
    aux_id: NotRequired[Integer]
    aux_uuid: NotRequired[str]
    aux_details: NotRequired[ResourceDetails]
    aux_info: NotRequired[str]
    session: NotRequired[Session]
    location: NotRequired[Location]


@with_config(STRICT)
class AuditEventV2(TypedDict):
    """An audit event (v2): actor_details is a UserV2, plus actor_type and the account uuids."""

    uuid: Id
    timestamp: Timestamp
    action: AuditAction
    object_type: AuditObjectType
    actor_uuid: NotRequired[Id]
    actor_details: NotRequired[UserV2]
    object_uuid: NotRequired[str]
    object_details: NotRequired[ResourceDetails]
    aux_id: NotRequired[Integer]
    aux_uuid: NotRequired[str]
    aux_details: NotRequired[ResourceDetails]
    aux_info: NotRequired[str]
    session: NotRequired[Session]
    location: NotRequired[Location]
    actor_type: NotRequired[ActorType]
    actor_account_uuid: NotRequired[Id]
    account_uuid: NotRequired[Id]
