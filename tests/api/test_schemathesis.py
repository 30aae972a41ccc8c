"""Fuzz the Events API and the ingest API from the served OpenAPI document with schemathesis, against
a live server: whatever schemathesis sends (schema-valid and schema-violating bodies), the server
never answers 5xx, and every reply has a documented status, Content-Type, headers and body schema.

Bounded: at most MAX_EXAMPLES cases per operation and generation mode, no shrinking, no deadline
(the whole module runs in seconds). Documented 4xx replies are fine; an undocumented status or a
body that does not match its schema fails the test with schemathesis's report (and a curl line).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from siemgate.config import load_settings
from siemgate.model.features import ALL_FEATURES
from support.clocks import Clock
from support.events import HOUR, MAKERS, SECOND
from support.servers import LiveServer, start_server, stop_server
from support.stores import make_store

MAX_EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EVENTS_API_POSTS = [f"/api/v{version}/{feature.value}" for version in (1, 2) for feature in ALL_FEATURES]
INTROSPECT = ["/api/auth/introspect", "/api/v2/auth/introspect"]
INGEST = "/api/ingest/v2/{feature}"
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def no_server_error_but_unavailable(ctx: Any, response: Any, case: Any) -> None:
    """A 5xx fails the case, except the proof endpoints' documented 503 (no checkpoint can be signed);
    status_code_conformance still requires the 503 to be documented for the operation."""
    if response.status_code >= 500 and response.status_code != 503:
        raise AssertionError(f"{case.operation.label} answered {response.status_code}: {response.text[:300]}")


PROOF_CHECKS = [no_server_error_but_unavailable, *CHECKS[1:]]


class Fuzz:
    """The live server, a schema loaded from its /openapi.json, and credentials with every feature."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        account = live.account()
        self.token = live.token(account)
        self.ingest_key = live.ingest_key(account)
        self.schema = schemathesis.openapi.from_url(f"{live.base_url}/openapi.json")
        self.session = requests.Session()
        # Events in the default window (the last hour), so resets return items to check.
        now = live.clock()
        for feature in ALL_FEATURES:
            events = [MAKERS[feature](now - HOUR // 2 + i * SECOND) for i in range(5)]
            assert live.ingest(self.ingest_key, feature, events).status_code == 200

    def run(
        self,
        path: str,
        method: str,
        secret: str,
        mode: GenerationMode,
        path_parameters: dict[str, Any] | None = None,
        checks: list[Any] = CHECKS,
    ) -> None:
        operation = self.schema[path][method]
        headers = {"Authorization": f"Bearer {secret}"}

        @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def fuzz(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(session=self.session, headers=headers, checks=checks)

        fuzz()


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    data_dir = tmp_path_factory.mktemp("schemathesis")
    # Rate limits high enough that the fuzzing itself is not throttled (429 is documented anyway).
    settings_ = load_settings(
        data_dir=data_dir,
        rate_limit_per_minute=1_000_000,
        rate_limit_per_hour=10_000_000,
        account_rate_limit_per_minute=10**7,
    )
    live, uv, thread = start_server(settings_, make_store("sqlite", data_dir), Clock())
    fuzzer = Fuzz(live)
    yield fuzzer
    fuzzer.session.close()
    stop_server(live, uv, thread)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("path", EVENTS_API_POSTS)
def test_fuzz_event_endpoints(fuzz: Fuzz, path: str, mode: GenerationMode) -> None:
    fuzz.run(path, "POST", fuzz.token, mode)


@pytest.mark.parametrize("path", INTROSPECT)
def test_fuzz_introspection(fuzz: Fuzz, path: str) -> None:
    # No parameters and no body: one request is all there is (and negative data cannot exist).
    fuzz.run(path, "GET", fuzz.token, GenerationMode.POSITIVE)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("feature", [*(f.value for f in ALL_FEATURES), None], ids=lambda f: f or "any-feature")
def test_fuzz_ingest(fuzz: Fuzz, feature: str | None, mode: GenerationMode) -> None:
    # A fixed, known feature exercises the body handling; None lets schemathesis pick the path too (404s).
    path_parameters = None if feature is None else {"feature": feature}
    fuzz.run(INGEST, "POST", fuzz.ingest_key, mode, path_parameters)


PROOF_GETS = [f"/api/siemgate/v1/log/{{feature}}/{name}" for name in ("checkpoint", "consistency", "proof")]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("path", [*PROOF_GETS, "/api/siemgate/v1/log/{feature}/page-proof"])
def test_fuzz_proof_endpoints(fuzz: Fuzz, path: str, mode: GenerationMode) -> None:
    # This server runs no log signer: proofs answer their documented 404/503, and bad input 400.
    method = "POST" if path.endswith("page-proof") else "GET"
    fuzz.run(path, method, fuzz.token, mode, {"feature": "auditevents"}, PROOF_CHECKS)
