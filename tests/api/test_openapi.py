"""The served OpenAPI document (`GET /openapi.json`): valid OpenAPI 3.1, complete (every endpoint,
nothing undocumented), and faithful — request bodies, responses, headers and errors as documented,
and real replies of a live server (pages of every feature on v1 and v2, introspection, ingest,
errors) validate against the schemas the document gives for them."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema
import orjson
import pytest
import referencing
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing.jsonschema import DRAFT202012

from siemgate.composition.web import create_app
from siemgate.config import load_settings
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from support.clocks import Clock
from support.events import HOUR, SECOND, auditevent, itemusage, signin
from support.servers import LiveServer, start_server, stop_server
from support.stores import make_store

DOC_URI = "urn:siemgate:openapi"
SIGNIN, ITEMS, AUDIT = Feature.SIGNINATTEMPTS, Feature.ITEMUSAGES, Feature.AUDITEVENTS

INTROSPECT = [("get", "/api/auth/introspect"), ("get", "/api/v2/auth/introspect")]
PAGES = [(version, feature) for version in (1, 2) for feature in ALL_FEATURES]
PAGE_OPS = [("post", f"/api/v{version}/{feature.value}") for version, feature in PAGES]
EVENTS_API_OPS = INTROSPECT + PAGE_OPS
INGEST_OP = ("post", "/api/ingest/v2/{feature}")
PUBLIC_OPS = [("get", "/.well-known/jwks.json"), ("get", "/healthz"), ("get", "/metrics")]
# Public too, but 404 on a server without a log signer (tests/tlog/test_log_keys_published.py).
LOG_KEYS_OP = ("get", "/.well-known/siemgate-log-keys")
# Proofs beside the Events API (docs/integrity.md, "Proofs for SIEMs"); tests/tlog/test_proof_api.py.
PROOF_OPS = [
    ("get", "/api/siemgate/v1/log/{feature}/checkpoint"),
    ("get", "/api/siemgate/v1/log/{feature}/consistency"),
    ("get", "/api/siemgate/v1/log/{feature}/proof"),
    ("post", "/api/siemgate/v1/log/{feature}/page-proof"),
]
ALL_OPS = [*EVENTS_API_OPS, INGEST_OP, *PUBLIC_OPS, LOG_KEYS_OP, *PROOF_OPS]
ADMIN_PREFIX = "/api/admin/"

# Upstream names (docs/events-api.md) of each endpoint's page envelope and item.
PAGE_SCHEMA = {
    (1, SIGNIN): ("SignInAttemptItems", "SignInAttempt"),
    (2, SIGNIN): ("SignInAttemptItemsV2", "SignInAttemptV2"),
    (1, ITEMS): ("ItemUsageItems", "ItemUsage"),
    (2, ITEMS): ("ItemUsageItemsV2", "ItemUsageV2"),
    (1, AUDIT): ("AuditEventItems", "AuditEvent"),
    (2, AUDIT): ("AuditEventItemsV2", "AuditEventV2"),
}
# v2 = v1 + these (docs/events.md, "v1 and v2").
V2_TOP = {
    SIGNIN: {"account_uuid"},
    ITEMS: {"account_uuid"},
    AUDIT: {"account_uuid", "actor_type", "actor_account_uuid"},
}
USER_FIELD = {SIGNIN: "target_user", ITEMS: "user", AUDIT: "actor_details"}
V2_USER = {"user_type", "user_account_uuid"}
EVENT_ERRORS = (400, 401, 413, 429, 500)
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One default server for the module (each test makes its own account); tests that need other
    settings use make_server."""
    data_dir = tmp_path_factory.mktemp("openapi")
    live, uv, thread = start_server(load_settings(data_dir=data_dir), make_store("sqlite", data_dir), Clock())
    yield live
    stop_server(live, uv, thread)


@pytest.fixture(scope="module")
def doc(server: LiveServer) -> dict[str, Any]:
    response = server.http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    result: dict[str, Any] = response.json()
    return result


# --- helpers ------------------------------------------------------------------------------------


def _pointer(*tokens: str | int) -> str:
    escaped = (str(t).replace("~", "~0").replace("/", "~1") for t in tokens)
    return "#/" + "/".join(quote(t, safe="~") for t in escaped)


def _validator(doc: dict[str, Any], *tokens: str | int) -> jsonschema.Draft202012Validator:
    """A validator for the schema at `tokens` in the document; its $refs resolve in the document."""
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(
        DOC_URI, DRAFT202012.create_resource(doc)
    )
    schema = {"$ref": DOC_URI + _pointer(*tokens)}
    return jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _errors(doc: dict[str, Any], instance: Any, *tokens: str | int) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in _validator(doc, *tokens).iter_errors(instance)
    ]


def _assert_conforms(doc: dict[str, Any], instance: Any, *tokens: str | int) -> None:
    problems = _errors(doc, instance, *tokens)
    assert not problems, f"reply does not match {_pointer(*tokens)}:\n" + "\n".join(problems[:20])


def _response_schema(method: str, path: str, status: int | str) -> tuple[str, ...]:
    return ("paths", path, method, "responses", str(status), "content", "application/json", "schema")


def _assert_reply_conforms(doc: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    """The reply's status is documented for the operation and its body matches the documented schema."""
    documented = doc["paths"][path][method]["responses"]
    assert str(response.status_code) in documented, (
        f"{method.upper()} {path} replied {response.status_code}, documented: {sorted(documented)}"
    )
    assert response.headers["content-type"].startswith("application/json")
    _assert_conforms(doc, response.json(), *_response_schema(method, path, response.status_code))


def _assert_error_body(doc: dict[str, Any], response: httpx.Response) -> None:
    """An error the document cannot list per operation (404, 405): the ErrorBody component."""
    assert response.headers["content-type"].startswith("application/json")
    _assert_conforms(doc, response.json(), "components", "schemas", "ErrorBody")


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/components/schemas/"), ref
        node = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return node


def _ref_name(node: dict[str, Any]) -> str:
    ref = node.get("$ref", "")
    assert ref.startswith("#/components/schemas/"), f"expected a $ref to a component schema, got {node}"
    return str(ref.rsplit("/", 1)[1])


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _documented_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    return {(m, path) for path, item in doc["paths"].items() for m in item if m in methods}


def _app_routes(routes: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route of the app, through included routers (FastAPI keeps them as
    _IncludedRouter wrappers in newer versions, flattened APIRoutes in older ones)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _app_routes(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
            continue
        if not getattr(route, "include_in_schema", True):
            # Only the console's HTML pages are left out of the API description.
            assert (prefix + route.path).startswith("/console") or route.path == "/openapi.json", route.path
            continue
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                yield method.lower(), prefix + route.path


# --- the document itself ------------------------------------------------------------------------


def test_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1.")
    problems = [str(e).splitlines()[0] for e in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert not problems, problems


def test_the_validator_is_not_vacuous(doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    del broken["paths"]["/healthz"]["get"]["responses"]
    broken["components"]["schemas"]["ErrorBody"]["type"] = "not-a-type"
    assert list(OpenAPIV31SpecValidator(broken).iter_errors())


def test_document_lists_every_endpoint_with_its_methods(doc: dict[str, Any]) -> None:
    """Exactly these operations outside the admin API (/api/admin/, documented by its own tests)."""
    documented = {(m, p) for m, p in _documented_routes(doc) if not p.startswith(ADMIN_PREFIX)}
    assert documented == set(ALL_OPS)


def test_nothing_the_app_serves_is_undocumented(server: LiveServer, doc: dict[str, Any]) -> None:
    app = create_app(server.services)  # the same routes as the running app; not started
    served = set(_app_routes(app.routes)) - {("get", "/openapi.json")}
    assert served == _documented_routes(doc)


def test_only_v1_introspection_is_deprecated(doc: dict[str, Any]) -> None:
    deprecated = {(m, p) for m, p in ALL_OPS if doc["paths"][p][m].get("deprecated", False)}
    assert deprecated == {("get", "/api/auth/introspect")}


@pytest.mark.parametrize(("method", "path"), EVENTS_API_OPS)
def test_events_api_takes_no_parameters(doc: dict[str, Any], method: str, path: str) -> None:
    assert not doc["paths"][path][method].get("parameters"), "everything is in the JSON body (docs/events-api.md)"


@pytest.mark.parametrize(("method", "path"), PAGE_OPS)
def test_event_endpoints_document_the_optional_reset_or_cursor_body(
    doc: dict[str, Any], method: str, path: str
) -> None:
    body = doc["paths"][path][method]["requestBody"]
    assert body.get("required", False) is False, (
        'an empty body is a reset with defaults (docs/events-api.md, "Requests")'
    )
    schema = body["content"]["application/json"]["schema"]
    assert set(schema) == {"anyOf"}
    refs = [alt for alt in schema["anyOf"] if "$ref" in alt]
    assert sorted(_ref_name(alt) for alt in refs) == ["Cursor", "ResetCursor"]
    assert [alt for alt in schema["anyOf"] if "$ref" not in alt] == [{"type": "null", "description": "The same as {}."}]


def test_reset_and_cursor_schemas(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    reset = schemas["ResetCursor"]
    assert reset["type"] == "object" and not reset.get("required")
    limit = reset["properties"]["limit"]
    integer = next(alt for alt in limit.get("anyOf", [limit]) if alt.get("type") == "integer")
    assert (integer["minimum"], integer["maximum"], limit.get("default")) == (1, 1000, 100)
    for name in ("start_time", "end_time"):
        assert "string" in {
            alt.get("type") for alt in reset["properties"][name].get("anyOf", [reset["properties"][name]])
        }
    cursor = schemas["Cursor"]
    assert cursor["required"] == ["cursor"] and cursor["properties"]["cursor"]["type"] == "string"


@pytest.mark.parametrize(("version", "feature"), PAGES)
def test_event_endpoint_200_is_the_page_envelope_of_its_version_and_feature(
    doc: dict[str, Any], version: int, feature: Feature
) -> None:
    envelope_name, item_name = PAGE_SCHEMA[(version, feature)]
    ok = doc["paths"][f"/api/v{version}/{feature.value}"]["post"]["responses"]["200"]
    assert set(ok["content"]) == {"application/json"}
    schema = ok["content"]["application/json"]["schema"]
    assert _ref_name(schema) == envelope_name
    envelope = _resolve(doc, schema)
    assert envelope["type"] == "object"
    assert set(envelope["required"]) == {"cursor", "has_more", "items"}
    props = envelope["properties"]
    assert props["cursor"]["type"] == "string" and props["has_more"]["type"] == "boolean"
    assert props["items"]["type"] == "array"
    assert _ref_name(props["items"]["items"]) == item_name

    item = _resolve(doc, props["items"]["items"])
    assert item["additionalProperties"] is False
    assert {"uuid", "timestamp"} <= set(item["required"])
    user = _resolve(doc, item["properties"][USER_FIELD[feature]])
    if version == 1:
        assert not V2_TOP[feature] & set(item["properties"]), "v1 items must not have the v2 fields"
        assert not V2_USER & set(user["properties"]), "v1 users must not have user_type/user_account_uuid"
        assert user["additionalProperties"] is False
    else:
        assert set(item["properties"]) >= V2_TOP[feature]
        assert set(user["properties"]) >= V2_USER


@pytest.mark.parametrize(("method", "path"), EVENTS_API_OPS)
def test_events_api_200_documents_the_ratelimit_headers(doc: dict[str, Any], method: str, path: str) -> None:
    headers = doc["paths"][path][method]["responses"]["200"].get("headers", {})
    for name in RATE_HEADERS:
        assert name in headers, f"{name} is not documented"
        assert headers[name]["schema"]["type"] == "integer"


@pytest.mark.parametrize(("method", "path"), EVENTS_API_OPS)
def test_events_api_documents_its_errors_with_the_error_body(doc: dict[str, Any], method: str, path: str) -> None:
    responses = doc["paths"][path][method]["responses"]
    for status in (401, 429, 500) if method == "get" else EVENT_ERRORS:
        assert str(status) in responses, f"{status} is not documented"
        content = responses[str(status)]["content"]
        assert _ref_name(content["application/json"]["schema"]) == "ErrorBody"


def test_every_documented_error_is_the_error_body(doc: dict[str, Any]) -> None:
    """Every error reply is {"Error": {"Message": ...}} (errors.py turns validation errors into 400s
    of that shape too), so no Events API, ingest or service operation may document another error
    shape (e.g. FastAPI's default 422 HTTPValidationError)."""
    wrong = []
    for method, path in ALL_OPS:
        for status, response in doc["paths"][path][method]["responses"].items():
            if status.startswith(("4", "5")):
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                if schema.get("$ref") != "#/components/schemas/ErrorBody":
                    wrong.append(f"{method.upper()} {path} {status}: {schema}")
    assert not wrong, "\n".join(wrong)


def test_error_body_schema(doc: dict[str, Any]) -> None:
    body = _resolve(doc, {"$ref": "#/components/schemas/ErrorBody"})
    assert body["required"] == ["Error"]
    error = _resolve(doc, body["properties"]["Error"])
    assert "Message" in error["required"] and error["properties"]["Message"]["type"] == "string"


@pytest.mark.parametrize(
    ("status", "header"), [(429, "Retry-After"), (401, "WWW-Authenticate")], ids=["429-retry-after", "401-www-auth"]
)
def test_error_responses_document_the_headers_they_carry(doc: dict[str, Any], status: int, header: str) -> None:
    """docs/events-api.md: 429 sends Retry-After (whole seconds), 401 WWW-Authenticate: Bearer."""
    missing = [
        f"{m.upper()} {p}"
        for m, p in EVENTS_API_OPS
        if header not in doc["paths"][p][m]["responses"][str(status)].get("headers", {})
    ]
    assert not missing, f"{status} does not document {header} on: {missing}"


@pytest.mark.parametrize(("method", "path"), PROOF_OPS)
def test_proof_endpoints_need_the_events_token_and_document_their_errors(
    doc: dict[str, Any], method: str, path: str
) -> None:
    op = doc["paths"][path][method]
    assert op["security"] == [{"EventsToken": []}]
    responses = op["responses"]
    for status in (400, 401, 404, 409, 429, 500, 503):
        assert _ref_name(responses[str(status)]["content"]["application/json"]["schema"]) == "ErrorBody"
    for status in (409, 429, 503):
        assert "Retry-After" in responses[str(status)]["headers"]
    assert set(RATE_HEADERS) <= set(responses["200"]["headers"])


@pytest.mark.parametrize(
    ("path", "name"), [("/api/auth/introspect", "Introspection"), ("/api/v2/auth/introspect", "IntrospectionV2")]
)
def test_introspection_200_schemas(doc: dict[str, Any], path: str, name: str) -> None:
    schema = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert _ref_name(schema) == name
    resolved = _resolve(doc, schema)
    keys = (
        ["UUID", "IssuedAt", "Features"]
        if name == "Introspection"
        else ["uuid", "issued_at", "features", "account_uuid"]
    )
    assert set(resolved["required"]) == set(keys)
    features_key = keys[2]
    assert resolved["properties"][features_key]["type"] == "array"


def test_ingest_documents_its_body_reply_and_errors(doc: dict[str, Any]) -> None:
    op = doc["paths"]["/api/ingest/v2/{feature}"]["post"]
    assert op["requestBody"]["required"] is True
    assert {"application/json", "application/x-ndjson"} <= set(op["requestBody"]["content"])
    assert [p["name"] for p in op["parameters"]] == ["feature"]
    assert _ref_name(op["responses"]["200"]["content"]["application/json"]["schema"]) == "IngestResult"
    assert set(_resolve(doc, {"$ref": "#/components/schemas/IngestResult"})["required"]) == {
        "received",
        "stored",
        "duplicates",
    }
    for status in (400, 401, 404, 413):
        assert _ref_name(op["responses"][str(status)]["content"]["application/json"]["schema"]) == "ErrorBody"


# --- security -----------------------------------------------------------------------------------


def _bearer_schemes(doc: dict[str, Any], op: dict[str, Any]) -> set[str]:
    schemes = doc.get("components", {}).get("securitySchemes", {})
    requirements = op.get("security", doc.get("security")) or []
    return {
        name
        for requirement in requirements
        for name in requirement
        if schemes.get(name, {}).get("type") == "http" and schemes[name].get("scheme", "").lower() == "bearer"
    }


@pytest.mark.parametrize(("method", "path"), EVENTS_API_OPS)
def test_events_api_operations_require_the_bearer_token(doc: dict[str, Any], method: str, path: str) -> None:
    assert _bearer_schemes(doc, doc["paths"][path][method]), (
        f"{method.upper()} {path} declares no bearer security requirement"
        f" (securitySchemes: {sorted(doc.get('components', {}).get('securitySchemes', {}))})"
    )


def test_ingest_requires_a_bearer_ingest_key(doc: dict[str, Any]) -> None:
    method, path = INGEST_OP
    assert _bearer_schemes(doc, doc["paths"][path][method]), "POST /api/ingest/v2/{feature} declares no bearer security"


@pytest.mark.parametrize(("method", "path"), [*PUBLIC_OPS, LOG_KEYS_OP])
def test_public_endpoints_need_no_credential(doc: dict[str, Any], method: str, path: str) -> None:
    assert not doc["paths"][path][method].get("security", doc.get("security"))


# --- real replies against the document ----------------------------------------------------------


def _events(feature: Feature, now: int) -> list[dict[str, Any]]:
    """Every shape a stream holds: full, with the optional objects, and minimal."""
    t = now - HOUR // 2
    if feature is SIGNIN:
        return [
            signin(t),
            signin(t + SECOND, category="firewall_failed", type="ip_blocked", details={"value": "192.0.2.99"}),
            {"uuid": new_id(), "timestamp": format_ns(t + 2 * SECOND), "category": "mfa_failed", "type": "totp_bad"},
        ]
    if feature is ITEMS:
        return [
            itemusage(t),
            itemusage(t + SECOND, location={"country": "FR", "city": "Paris", "latitude": 48.85, "longitude": 2}),
            {"uuid": new_id(), "timestamp": format_ns(t + 2 * SECOND)},
        ]
    return [
        auditevent(t),
        auditevent(
            t + SECOND,
            action="join",
            object_type="gm",
            object_details={"uuid": new_id(), "name": "Grace", "email": "grace@example.com"},
            aux_id=4242,
            aux_uuid=new_id(),
            aux_details={"uuid": new_id(), "name": "Alan", "email": "alan@example.com"},
            aux_info='{"expiry":"2025-01-01T00:00:00Z"}',
            location={"country": "CA", "region": "Ontario", "city": "Toronto", "latitude": 43.64, "longitude": -79.433},
        ),
        {"uuid": new_id(), "timestamp": format_ns(t + 2 * SECOND), "action": "create", "object_type": "vault"},
    ]


def _assert_rate_headers(doc: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    documented = doc["paths"][path][method]["responses"]["200"]["headers"]
    for name in RATE_HEADERS:
        assert name in response.headers, f"{name} missing from the reply"
        value = int(response.headers[name])
        assert not list(jsonschema.Draft202012Validator(documented[name]["schema"]).iter_errors(value))


@pytest.mark.parametrize(("version", "feature"), PAGES)
def test_real_pages_conform(server: LiveServer, doc: dict[str, Any], version: int, feature: Feature) -> None:
    account = server.account()
    token, key = server.token(account), server.ingest_key(account)
    events = _events(feature, server.clock())
    stored = server.ingest(key, feature, events)
    assert stored.status_code == 200, stored.text
    path = f"/api/v{version}/{feature.value}"

    first = server.page(token, feature, {"limit": 2}, version=version)
    assert first.status_code == 200, first.text
    _assert_reply_conforms(doc, "post", path, first)
    _assert_rate_headers(doc, "post", path, first)
    body = first.json()
    assert body["has_more"] is True and len(body["items"]) == 2
    rest = server.page(token, feature, {"cursor": body["cursor"]}, version=version)
    _assert_reply_conforms(doc, "post", path, rest)
    items = body["items"] + rest.json()["items"]
    assert [i["uuid"] for i in items] == [e["uuid"] for e in events]
    end = server.page(token, feature, {"cursor": rest.json()["cursor"]}, version=version)
    _assert_reply_conforms(doc, "post", path, end)
    assert end.json()["items"] == [] and end.json()["has_more"] is False

    if version == 1:  # the v1 schema forbids them too; say it plainly
        for item in items:
            assert not V2_TOP[feature] & set(item)
            assert not V2_USER & set(item.get(USER_FIELD[feature], {}))


@pytest.mark.parametrize("path", ["/api/auth/introspect", "/api/v2/auth/introspect"])
def test_real_introspection_conforms(server: LiveServer, doc: dict[str, Any], path: str) -> None:
    account = server.account()
    for features in (ALL_FEATURES, [ITEMS]):
        response = server.http.get(path, headers=_bearer(server.token(account, features)))
        assert response.status_code == 200, response.text
        _assert_reply_conforms(doc, "get", path, response)
        _assert_rate_headers(doc, "get", path, response)


def test_real_ingest_replies_conform(server: LiveServer, doc: dict[str, Any]) -> None:
    method, path = INGEST_OP
    key = server.ingest_key(server.account())
    events = _events(AUDIT, server.clock())
    for _ in range(2):  # stored, then duplicates
        _assert_reply_conforms(doc, method, path, server.ingest(key, AUDIT, events))
    ndjson = b"\n".join(orjson.dumps(e) for e in _events(SIGNIN, server.clock()))
    headers = {**_bearer(key), "Content-Type": "application/x-ndjson"}
    response = server.http.post("/api/ingest/v2/signinattempts", content=ndjson, headers=headers)
    _assert_reply_conforms(doc, method, path, response)
    assert response.json()["stored"] == 3


def test_real_400s_conform(server: LiveServer, doc: dict[str, Any]) -> None:
    account = server.account()
    token, key = server.token(account), server.ingest_key(account)
    for raw in (b"{not json", b"[]", b'{"limit": 1001}', b'{"cursor": "bm9wZQ"}', b'{"start_time": "yesterday"}'):
        response = server.page(token, SIGNIN, raw=raw, version=1)
        assert response.status_code == 400, raw
        _assert_reply_conforms(doc, "post", "/api/v1/signinattempts", response)
    bad_event = {**signin(server.clock()), "client": {"ip": "192.0.2.1"}}
    response = server.ingest(key, SIGNIN, [bad_event])
    assert response.status_code == 400
    assert response.json()["Error"].get("Details"), "ingest validation errors carry Details"
    _assert_reply_conforms(doc, *INGEST_OP, response)


def test_real_401s_conform(server: LiveServer, doc: dict[str, Any]) -> None:
    account = server.account()
    only_items = server.token(account, [ITEMS])
    cases: list[tuple[str, str, dict[str, str]]] = [
        ("post", "/api/v2/signinattempts", {}),
        ("post", "/api/v2/signinattempts", {"Authorization": "Bearer not-a-token"}),
        ("post", "/api/v2/signinattempts", _bearer(only_items)),  # missing feature
        ("post", "/api/v1/auditevents", {"Authorization": "Basic dXNlcjpwYXNz"}),
        ("get", "/api/auth/introspect", {}),
        ("get", "/api/v2/auth/introspect", {"Authorization": "Bearer x.y.z"}),
        ("post", "/api/ingest/v2/signinattempts", {}),
        ("post", "/api/ingest/v2/signinattempts", _bearer(only_items)),  # a SIEM token is not an ingest key
    ]
    for method, path, headers in cases:
        response = server.http.request(method, path, headers=headers, content=b"{}" if method == "post" else None)
        assert response.status_code == 401, (method, path, headers)
        documented_path = "/api/ingest/v2/{feature}" if "/ingest/" in path else path
        _assert_reply_conforms(doc, method, documented_path, response)
        if "/ingest/" not in path:
            assert response.headers["www-authenticate"].lower().startswith("bearer")


def test_real_404s_and_405s_conform(server: LiveServer, doc: dict[str, Any]) -> None:
    account = server.account()
    token, key = server.token(account), server.ingest_key(account)
    response = server.ingest(key, "logins", [])
    assert response.status_code == 404
    _assert_reply_conforms(doc, *INGEST_OP, response)
    for path in ("/api/v3/signinattempts", "/api/v2/events", "/"):
        response = server.http.post(path, headers=_bearer(token))
        assert response.status_code == 404
        _assert_error_body(doc, response)
    for method, path in (("get", "/api/v2/itemusages"), ("post", "/api/v2/auth/introspect"), ("delete", "/healthz")):
        response = server.http.request(method, path, headers=_bearer(token))
        assert response.status_code == 405, (method, path)
        _assert_error_body(doc, response)


def test_real_413s_conform(make_server: Any, doc: dict[str, Any]) -> None:
    small = make_server(events_max_body_bytes=1024, ingest_max_batch=1)
    account = small.account()
    token, key = small.token(account), small.ingest_key(account)
    response = small.page(token, AUDIT, {"limit": 10, "padding": "x" * 2000})
    assert response.status_code == 413
    _assert_reply_conforms(doc, "post", "/api/v2/auditevents", response)
    response = small.ingest(key, AUDIT, _events(AUDIT, small.clock()))
    assert response.status_code == 413
    _assert_reply_conforms(doc, *INGEST_OP, response)


def _limited_replies(make_server: Any) -> list[tuple[str, str, httpx.Response]]:
    """A 429 from an event endpoint and from introspection (1 request per minute per token)."""
    limited = make_server(rate_limit_per_minute=1)
    account = limited.account()
    replies = []
    for method, path in (("post", "/api/v2/itemusages"), ("get", "/api/v2/auth/introspect")):
        token = limited.token(account)
        assert limited.http.request(method, path, headers=_bearer(token)).status_code == 200
        response = limited.http.request(method, path, headers=_bearer(token))
        assert response.status_code == 429
        replies.append((method, path, response))
    return replies


def test_real_429s_conform(make_server: Any, doc: dict[str, Any]) -> None:
    for method, path, response in _limited_replies(make_server):
        _assert_reply_conforms(doc, method, path, response)
        assert int(response.headers["retry-after"]) >= 1


def test_real_429s_carry_the_ratelimit_headers(make_server: Any, doc: dict[str, Any]) -> None:
    """docs/events-api.md: replies to an authenticated token carry RateLimit-*; a 429 is one (and the
    IETF RateLimit draft the headers follow sends them with 429 above all)."""
    for method, path, response in _limited_replies(make_server):
        missing = [name for name in RATE_HEADERS if name not in response.headers]
        assert not missing, f"{method.upper()} {path} 429 lacks {missing} (has: {sorted(response.headers)})"
        for name in RATE_HEADERS:
            assert int(response.headers[name]) >= 0


# --- request bodies: the documented schema says what the server accepts -------------------------


ACCEPTED_BODIES: list[Any] = [
    {},
    {"limit": 10},
    {"limit": 10.0},
    {"limit": None, "cursor": None, "start_time": None, "end_time": None},
    {"cursor": ""},
    {"ResetCursor": {"limit": 5, "start_time": "2020-01-01T00:00:00Z"}},
    {"limit": 1000, "start_time": "2020-01-01T00:00:00Z"},
    {"start_time": "2021-06-11T16:32:50-03:00", "end_time": "2021-06-11T20:00:00.123456789Z"},
    {"start_time": "2021-06-11T16:32:50.123456+00:00"},
    None,  # docs/events-api.md: "an empty body, {} or null is a reset with every default"
]
REJECTED_BODIES: list[Any] = [
    {"limit": "10"},
    {"limit": 0},
    {"limit": 1001},
    {"limit": 2.5},
    {"limit": True},
    [],
    "cursor",
    {"start_time": "yesterday"},
    {"end_time": "2024-13-45T00:00:00Z"},
]


def _request_body(path: str) -> tuple[str, ...]:
    return ("paths", path, "post", "requestBody", "content", "application/json", "schema")


@pytest.mark.parametrize("body", ACCEPTED_BODIES, ids=[orjson.dumps(b).decode() for b in ACCEPTED_BODIES])
def test_bodies_the_server_accepts_match_the_documented_body(
    server: LiveServer, doc: dict[str, Any], body: Any
) -> None:
    token = server.token(server.account())
    response = server.page(token, SIGNIN, raw=orjson.dumps(body))
    assert response.status_code == 200, response.text
    assert not _errors(doc, body, *_request_body("/api/v2/signinattempts"))


def test_a_real_cursor_matches_the_documented_body(server: LiveServer, doc: dict[str, Any]) -> None:
    token = server.token(server.account())
    cursor = server.page(token, SIGNIN, {}).json()["cursor"]
    for body in ({"cursor": cursor}, {"cursor": cursor, "limit": 5, "start_time": "2020-01-01T00:00:00Z"}):
        assert server.page(token, SIGNIN, body).status_code == 200
        assert not _errors(doc, body, *_request_body("/api/v2/signinattempts"))


@pytest.mark.parametrize("body", REJECTED_BODIES, ids=[orjson.dumps(b).decode() for b in REJECTED_BODIES])
def test_bodies_the_server_rejects_do_not_match_the_documented_body(
    server: LiveServer, doc: dict[str, Any], body: Any
) -> None:
    token = server.token(server.account())
    response = server.page(token, SIGNIN, raw=orjson.dumps(body))
    assert response.status_code == 400, response.text
    assert _errors(doc, body, *_request_body("/api/v2/signinattempts")), (
        f"the document accepts {body!r}, which the server rejects: {response.json()['Error']['Message']}"
    )


# --- content types ------------------------------------------------------------------------------


def test_documented_content_types_are_the_served_ones(server: LiveServer, doc: dict[str, Any]) -> None:
    account = server.account()
    token, key = server.token(account), server.ingest_key(account)
    replies = {
        ("get", "/api/auth/introspect"): server.http.get("/api/auth/introspect", headers=_bearer(token)),
        ("get", "/api/v2/auth/introspect"): server.http.get("/api/v2/auth/introspect", headers=_bearer(token)),
        INGEST_OP: server.ingest(key, ITEMS, []),
        **{op: server.http.get(op[1]) for op in PUBLIC_OPS},
        **{("post", f"/api/v{v}/{f.value}"): server.page(token, f, {}, version=v) for v, f in PAGES},
    }
    wrong = []
    for (method, path), response in replies.items():
        assert response.status_code == 200, (path, response.text)
        served = response.headers["content-type"].split(";")[0].strip()
        documented = set(doc["paths"][path][method]["responses"]["200"].get("content", {}))
        if served not in documented:
            wrong.append(f"{method.upper()} {path}: serves {served}, documents {sorted(documented)}")
    assert not wrong, "\n".join(wrong)
