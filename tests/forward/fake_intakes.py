"""Local stand-ins for SaaS intakes that cannot run here, implementing each vendor's documented
status codes, limits and partial failures (docs/forwarding.md, "Per-sink classification"). One Starlette app, one
route family per vendor; every accepted record is kept in `Intake.received[vendor]`.

Faults are scripted per vendor: `intake.fail(vendor, [429, 503])` answers the next requests with
those statuses (429s carry `Retry-After: 0`), and `intake.poison` holds event uuids the intake
refuses as bad data (in the vendor's own way: HEC code 6 with invalid-event-number, an ES item
400, a whole-request 400 elsewhere). `fail("es_item", [...])` fails single bulk items (429, 403:
ES_ITEM_ERRORS), `fail("hec_ack", [...])` answers HEC ack polls.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

HEC_TOKEN = "hec-token-0000"
ES_API_KEY = base64.b64encode(b"id:secret").decode()
DD_API_KEY = "dd-api-key-0000"
AZURE_SECRET = "azure-client-secret"
AZURE_TOKEN = "azure-access-token"
SUMO_TOKEN = "ZaVnC4dhaV2sumotokenXXXXXXXXXXXXXXXXXXXXXXXX"
PANTHER_SECRET = "panther-shared-secret"
RAPID7_TOKEN = "r7-0000000000000000000000000000000"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"a" * 32).decode()
GOOGLE_TOKEN = "google-access-token"
MB = 1_000_000


@dataclass
class Intake:
    received: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    requests: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    scripted: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    poison: set[str] = field(default_factory=set)
    es_docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    google_public_key: Any = None
    ack_pending: dict[int, int] = field(default_factory=dict)
    next_ack: int = 0
    tokens: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # issued, oldest first
    revoked: set[str] = field(default_factory=set)  # issued tokens the intake no longer accepts

    def issue(self, issuer: str, first: str) -> str:
        """A new access token of `issuer`: `first`, then `first.2`, `first.3`, ..."""
        issued = self.tokens[issuer]
        issued.append(first if not issued else f"{first}.{len(issued) + 1}")
        return issued[-1]

    def accepts(self, issuer: str, first: str, authorization: str | None) -> bool:
        """Whether the bearer is `first` or another token `issuer` issued, and not revoked."""
        token = (authorization or "").removeprefix("Bearer ")
        return (token == first or token in self.tokens[issuer]) and token not in self.revoked

    def fail(self, vendor: str, statuses: list[int]) -> None:
        self.scripted[vendor].extend(statuses)

    def uuids(self, vendor: str) -> list[str]:
        return [_uuid(r) for r in self.received[vendor]]


def _uuid(doc: Any) -> str:
    """The event uuid inside whatever shape a vendor received."""
    if not isinstance(doc, dict):
        return ""
    for path in (("uuid",), ("event", "uuid"), ("event", "id"), ("metadata", "uid"), ("custom_data", "uuid")):
        value: Any = doc
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            return value
    if isinstance(doc.get("message"), str):
        return str(json.loads(doc["message"]).get("uuid", ""))
    if isinstance(doc.get("log_text"), str):
        return str(json.loads(doc["log_text"]).get("uuid", ""))
    return ""


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode()).items()}


async def _body(request: Request) -> bytes:
    data = await request.body()
    if request.headers.get("content-encoding") == "gzip":
        data = gzip.decompress(data)
    return data


# What `intake.fail("es_item", [status, ...])` answers for the next items (one status each).
ES_ITEM_ERRORS: dict[int, dict[str, Any]] = {
    429: {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}},
    403: {
        "status": 403,
        "error": {
            "type": "security_exception",
            "reason": "action [indices:admin/auto_create] is unauthorized for API key id [id] of user [fwd] on"
            " indices [logs-1password.audit_events-default]",
        },
    },
}


def _scripted(intake: Intake, vendor: str) -> Response | None:
    if intake.scripted[vendor]:
        status = intake.scripted[vendor].pop(0)
        headers = {"Retry-After": "0"} if status in (429, 503) else {}
        return JSONResponse({"text": "scripted failure", "code": 9}, status_code=status, headers=headers)
    return None


def build_app(intake: Intake) -> Starlette:
    async def hec_event(request: Request) -> Response:
        vendor = "logscale" if request.url.path.startswith("/api/v1/ingest") else "hec"
        scheme = "Bearer" if vendor == "logscale" else "Splunk"
        auth = request.headers.get("authorization", "")
        if not auth:
            return JSONResponse({"text": "Token is required", "code": 2}, status_code=401)
        if auth != f"{scheme} {HEC_TOKEN}":
            return JSONResponse({"text": "Invalid token", "code": 4}, status_code=403)
        ack = request.query_params.get("ack") == "1" or request.headers.get("x-test-ack") == "1"
        channel = request.headers.get("x-splunk-request-channel")
        if vendor == "hec" and intake.requests.get("hec_ack_mode") and not channel:
            return JSONResponse({"text": "Data channel is missing", "code": 10}, status_code=400)
        failed = _scripted(intake, vendor)
        if failed is not None:
            return failed
        raw = await _body(request)
        if len(raw) > MB:
            return JSONResponse({"text": "Content too large", "code": 27}, status_code=413)
        text = raw.decode()
        if not text.strip():
            return JSONResponse({"text": "No data", "code": 5}, status_code=400)
        decoder = json.JSONDecoder()
        events: list[Any] = []
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                break
            try:
                obj, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                return JSONResponse(
                    {"text": "Invalid data format", "code": 6, "invalid-event-number": len(events)}, 400
                )
            events.append(obj)
        for n, envelope in enumerate(events):
            if "event" not in envelope:
                return JSONResponse({"text": "Event field is required", "code": 12, "invalid-event-number": n}, 400)
            if _uuid(envelope) in intake.poison:
                # Splunk indexes the events before the bad one (so a resend duplicates them).
                intake.received[vendor].extend(events[:n])
                return JSONResponse({"text": "Invalid data format", "code": 6, "invalid-event-number": n}, 400)
        intake.received[vendor].extend(events)
        intake.requests[vendor].append({"channel": channel, "count": len(events)})
        body: dict[str, Any] = {"text": "Success", "code": 0}
        if intake.requests.get("hec_ack_mode") or ack:
            intake.next_ack += 1
            intake.ack_pending[intake.next_ack] = 2  # confirmed on the second poll
            body["ackId"] = intake.next_ack
        return JSONResponse(body)

    async def hec_ack(request: Request) -> Response:
        if not request.query_params.get("channel"):
            return JSONResponse({"text": "Data channel is missing", "code": 10}, status_code=400)
        failed = _scripted(intake, "hec_ack")
        if failed is not None:
            return failed
        acks = json.loads(await _body(request)).get("acks", [])
        result = {}
        for ack_id in acks:
            left = intake.ack_pending.get(ack_id, 0) - 1
            intake.ack_pending[ack_id] = left
            result[str(ack_id)] = left <= 0
        return JSONResponse({"acks": result})

    async def hec_health(request: Request) -> Response:
        return JSONResponse({"text": "HEC is healthy", "code": 17})

    es_headers = {"X-Elastic-Product": "Elasticsearch"}

    async def es_root(request: Request) -> Response:
        if request.headers.get("authorization") != f"ApiKey {ES_API_KEY}":
            return JSONResponse({"error": "unauthorized"}, status_code=401, headers=es_headers)
        info = {
            "name": "fake",
            "cluster_name": "fake",
            "version": {"number": "8.15.0"},
            "tagline": "You Know, for Search",
        }
        return JSONResponse(info, headers=es_headers)

    async def es_bulk(request: Request) -> Response:
        if request.headers.get("authorization") != f"ApiKey {ES_API_KEY}":
            return JSONResponse({"error": "unauthorized", "status": 401}, status_code=401, headers=es_headers)
        failed = _scripted(intake, "es")
        if failed is not None:
            return Response(failed.body, failed.status_code, headers={**es_headers, **dict(failed.headers)})
        lines = (await _body(request)).decode().split("\n")
        if lines[-1] != "":
            return JSONResponse({"error": "The bulk request must be terminated by a newline"}, 400, headers=es_headers)
        items, errors = [], False
        pairs = [(json.loads(lines[i]), json.loads(lines[i + 1])) for i in range(0, len(lines) - 1, 2)]
        for action, doc in pairs:
            op, meta = next(iter(action.items()))
            index, doc_id = meta.get("_index", ""), meta.get("_id")
            uuid = _uuid(doc)
            result: dict[str, Any]
            if op != "create" and index.startswith("logs-"):
                result = {
                    "status": 400,
                    "error": {
                        "type": "illegal_argument_exception",
                        "reason": "only write ops with an op_type of create are allowed in data streams",
                    },
                }
            elif "@timestamp" not in doc and index.startswith("logs-"):
                result = {
                    "status": 400,
                    "error": {
                        "type": "illegal_argument_exception",
                        "reason": "data stream timestamp field [@timestamp] is missing",
                    },
                }
            elif uuid in intake.poison:
                result = {
                    "status": 400,
                    "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field"},
                }
            elif intake.scripted["es_item"] and uuid not in intake.es_docs:
                result = ES_ITEM_ERRORS[intake.scripted["es_item"].pop(0)]
            elif doc_id is not None and f"{index}/{doc_id}" in intake.es_docs:
                result = {
                    "status": 409,
                    "error": {"type": "version_conflict_engine_exception", "reason": "document already exists"},
                }
            else:
                key = f"{index}/{doc_id or len(intake.es_docs)}"
                intake.es_docs[key] = doc
                intake.received["es"].append(doc)
                result = {"status": 201, "_index": index, "_id": doc_id, "result": "created"}
            errors = errors or result["status"] >= 300
            items.append({op: result})
        intake.requests["es"].append({"params": dict(request.query_params), "count": len(pairs)})
        return JSONResponse({"took": 1, "errors": errors, "items": items}, headers=es_headers)

    async def dd_logs(request: Request) -> Response:
        if not request.headers.get("dd-api-key"):
            return JSONResponse({"errors": [{"status": "401", "title": "Unauthorized"}]}, status_code=401)
        if request.headers["dd-api-key"] != DD_API_KEY:
            return JSONResponse({"errors": [{"status": "403", "title": "Forbidden"}]}, status_code=403)
        failed = _scripted(intake, "datadog")
        if failed is not None:
            return failed
        raw = await _body(request)
        if len(raw) > 5 * MB:
            return JSONResponse({"errors": [{"status": "413", "title": "Payload too large"}]}, status_code=413)
        logs = json.loads(raw)
        logs = logs if isinstance(logs, list) else [logs]
        if len(logs) > 1000 or any(_uuid(log) in intake.poison for log in logs):
            return JSONResponse({"errors": [{"status": "400", "title": "Bad Request"}]}, status_code=400)
        intake.received["datadog"].extend(logs)
        return JSONResponse({}, status_code=202)

    async def dd_validate(request: Request) -> Response:
        if request.headers.get("dd-api-key") != DD_API_KEY:
            return JSONResponse({"errors": ["Forbidden"]}, status_code=403)
        return JSONResponse({"valid": True})

    async def azure_token(request: Request) -> Response:
        form = _form(await request.body())
        if form.get("grant_type") != "client_credentials" or form.get("client_secret") != AZURE_SECRET:
            return JSONResponse(
                {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}, 401
            )
        if form.get("scope") not in ("https://monitor.azure.com/.default", "https://monitor.azure.com//.default"):
            return JSONResponse({"error": "invalid_scope", "error_description": "AADSTS70011: invalid scope"}, 400)
        token = intake.issue("azure", AZURE_TOKEN)
        return JSONResponse({"token_type": "Bearer", "expires_in": 3599, "access_token": token})

    async def azure_ingest(request: Request) -> Response:
        if not intake.accepts("azure", AZURE_TOKEN, request.headers.get("authorization")):
            return JSONResponse({"error": {"code": "InvalidToken"}}, status_code=401)
        if request.query_params.get("api-version") != "2023-01-01":
            return JSONResponse({"error": {"code": "MissingApiVersionParameter"}}, status_code=400)
        failed = _scripted(intake, "sentinel")
        if failed is not None:
            return failed
        sent = await request.body()
        raw = gzip.decompress(sent) if request.headers.get("content-encoding") == "gzip" else sent
        if len(sent) > 1_048_576 or len(raw) > 1_048_576:
            return JSONResponse({"error": {"code": "ContentLengthLimitExceeded"}}, status_code=413)
        rows = json.loads(raw)
        if any(_uuid(r) in intake.poison for r in rows):
            return JSONResponse({"error": {"code": "InvalidPayload"}}, status_code=400)
        intake.received["sentinel"].extend(rows)
        intake.requests["sentinel"].append({"path": request.url.path})
        return Response(status_code=204)

    async def sumo(request: Request) -> Response:
        if request.path_params["token"] != SUMO_TOKEN:
            return Response("Invalid URL", status_code=401)
        failed = _scripted(intake, "sumo")
        if failed is not None:
            return failed
        raw = await _body(request)
        if len(raw) > MB:
            return Response("Payload too large", status_code=413)
        lines = [json.loads(line) for line in raw.decode().splitlines() if line]
        intake.received["sumo"].extend(lines)
        intake.requests["sumo"].append({"category": request.headers.get("x-sumo-category")})
        return Response(status_code=200)

    async def panther(request: Request) -> Response:
        raw = await request.body()
        header_bytes = sum(len(k) + len(v) + 4 for k, v in request.headers.items())
        if len(raw) + header_bytes > MB:
            return Response("request too large", status_code=413)
        mode = request.path_params["mode"]
        if mode == "secret" and request.headers.get("x-panther-secret") != PANTHER_SECRET:
            return Response("unauthorized", status_code=401)
        if mode == "hmac":
            want = hmac.new(PANTHER_SECRET.encode(), raw, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(request.headers.get("x-panther-signature", ""), want):
                return Response("bad signature", status_code=401)
        if mode == "bearer" and request.headers.get("authorization") != f"Bearer {PANTHER_SECRET}":
            return Response("unauthorized", status_code=401)
        lines = [json.loads(line) for line in raw.decode().splitlines() if line]
        if any(_uuid(x) in intake.poison for x in lines):
            return Response("cannot parse", status_code=400)
        intake.received["panther"].extend(lines)
        return Response(status_code=200)

    async def rapid7(request: Request) -> Response:
        if request.path_params["token"] != RAPID7_TOKEN:
            return Response("not found", status_code=404)
        lines = [json.loads(line) for line in (await _body(request)).decode().splitlines() if line]
        intake.received["rapid7"].extend(lines)
        return Response(status_code=200)

    async def webhook(request: Request) -> Response:
        raw = await request.body()
        try:
            Webhook(WEBHOOK_SECRET).verify(raw, dict(request.headers))
        except WebhookVerificationError:
            return Response("bad signature", status_code=401)
        failed = _scripted(intake, "webhook")
        if failed is not None:
            return failed
        msg_id = request.headers["webhook-id"]
        seen = {r["id"] for r in intake.requests["webhook"]}
        intake.requests["webhook"].append({"id": msg_id})
        if msg_id not in seen:  # receivers drop a message id they have already processed
            intake.received["webhook"].extend(json.loads(raw)["data"])
        return Response(status_code=204)

    async def google_token(request: Request) -> Response:
        form = _form(await request.body())
        try:
            claims = jwt.decode(
                str(form.get("assertion")), intake.google_public_key, algorithms=["RS256"], audience=str(request.url)
            )
        except jwt.PyJWTError as exc:
            return JSONResponse({"error": "invalid_grant", "error_description": str(exc)}, status_code=400)
        if "malachite-ingestion" not in claims.get("scope", ""):
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        token = intake.issue("google", GOOGLE_TOKEN)
        return JSONResponse({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    async def secops(request: Request) -> Response:
        if not intake.accepts("google", GOOGLE_TOKEN, request.headers.get("authorization")):
            return JSONResponse({"error": {"code": 401, "status": "UNAUTHENTICATED"}}, status_code=401)
        raw = await _body(request)
        if len(raw) > MB:
            return JSONResponse({"error": {"code": 400, "message": "request too large"}}, status_code=400)
        body = json.loads(raw)
        if not body.get("customer_id") or not body.get("log_type"):
            return JSONResponse({"error": {"code": 400, "message": "customer_id and log_type required"}}, 400)
        for entry in body["entries"]:
            intake.received["secops"].append({**entry, "log_type": body["log_type"]})
        return JSONResponse({})

    return Starlette(
        routes=[
            Route("/services/collector/event", hec_event, methods=["POST"]),
            Route("/api/v1/ingest/hec", hec_event, methods=["POST"]),
            Route("/services/collector/ack", hec_ack, methods=["POST"]),
            Route("/services/collector/health", hec_health, methods=["GET"]),
            Route("/", es_root, methods=["GET", "HEAD"]),
            Route("/_bulk", es_bulk, methods=["POST", "PUT"]),
            Route("/api/v2/logs", dd_logs, methods=["POST"]),
            Route("/api/v1/validate", dd_validate, methods=["GET"]),
            Route("/{tenant}/oauth2/v2.0/token", azure_token, methods=["POST"]),
            Route("/dataCollectionRules/{rule}/streams/{stream}", azure_ingest, methods=["POST", "GET"]),
            Route("/receiver/v1/http/{token}", sumo, methods=["POST", "HEAD"]),
            Route("/panther/{mode}", panther, methods=["POST", "HEAD"]),
            Route("/rapid7/{token}", rapid7, methods=["POST", "HEAD"]),
            Route("/webhook", webhook, methods=["POST", "HEAD"]),
            Route("/google/token", google_token, methods=["POST"]),
            Route("/v2/unstructuredlogentries:batchCreate", secops, methods=["POST", "GET"]),
        ]
    )
