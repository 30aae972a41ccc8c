"""The admin API's OpenAPI document is complete (finding 7 of the identity review: it left out its
401/403/404/409/429 responses and several constraints; schemathesis reported 65 mismatches).

Schemathesis fuzzes every admin API operation from the served document against a live server, as
an account's owner, with a fixed seed (`derandomize`) and a bounded number of examples per
operation; then its stateful phase follows the document's OpenAPI links (create, then use and
delete what was made). Every reply must have a documented status, content type and body schema,
and none may be a 5xx. Documented 4xx replies are fine: a schema-valid request can still be
semantically wrong (an email without a domain, an unknown role...), and the API says so with a 400.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from siemgate.config import load_settings
from support.clocks import Clock
from support.servers import start_server, stop_server
from support.stores import make_store

from .identity_support import Tenants

MAX_EXAMPLES = 5
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # a fixed seed: the same cases on every run
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


class Fuzz:
    def __init__(self, live: Any) -> None:
        self.tenants = Tenants(live)
        self.headers = self.tenants.alice.headers
        self.account = self.tenants.a.uuid
        self.url = f"{live.base_url}/openapi.json"
        self.schema = schemathesis.openapi.from_url(self.url).include(path_regex="^/api/admin/v1/")
        self.session = requests.Session()

    def operations(self) -> list[tuple[str, str]]:
        found = []
        for result in self.schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()  # the schema itself is invalid
            found.append((result.ok().path, result.ok().method.upper()))
        return found


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    data_dir = tmp_path_factory.mktemp("admin-schemathesis")
    # a rate limit the fuzzing itself does not reach (429 is documented on every operation anyway)
    settings = load_settings(data_dir=data_dir, admin_rate_limit_per_minute=10**7, admin_rate_limit_per_hour=10**8)
    live, uv, thread = start_server(settings, make_store("sqlite", data_dir), Clock())
    fuzzer = Fuzz(live)
    yield fuzzer
    fuzzer.session.close()
    stop_server(live, uv, thread)


def test_every_admin_operation_answers_as_documented(fuzz: Fuzz) -> None:
    operations = fuzz.operations()
    assert len(operations) > 40
    for path, method in operations:
        operation = fuzz.schema[path][method]
        fixed = {"account": fuzz.account} if "{account}" in path else None

        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=fixed))
        @FUZZ
        def run(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(session=fuzz.session, headers=fuzz.headers, checks=CHECKS)

        run()


def test_the_stateful_phase_follows_the_links(fuzz: Fuzz) -> None:
    machine = fuzz.schema.as_state_machine()
    headers, account = fuzz.headers, fuzz.account
    calls: list[str] = []
    linked: list[str] = []  # 2xx replies on a path naming something made by an earlier step

    class AdminAPI(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            if "account" in (case.path_parameters or {}):
                case.path_parameters["account"] = account
            calls.append(f"{case.method} {case.operation.path}")
            return {"headers": headers, "session": fuzz.session}

        def validate_response(self, response: Any, case: schemathesis.Case[Any], **kwargs: Any) -> None:
            named = set(case.path_parameters or {}) - {"account"}
            if named and response.status_code < 300:
                linked.append(f"{case.method} {case.operation.path} {response.status_code}")
            case.validate_response(response, checks=CHECKS)

    # Which links can be followed depends on what the server answered before (a name taken by an earlier
    # sequence gives 409, not 201), so hypothesis may find a sequence's choices inconsistent with an
    # earlier one's and stop generating. Every call made so far was checked; a failed check raises its
    # own error, never this one.
    with contextlib.suppress(FlakyStrategyDefinition):
        AdminAPI.run(
            settings=settings(
                max_examples=30,  # enough sequences that some create something and follow its links
                stateful_step_count=6,
                phases=[Phase.generate],  # no shrinking: a live server's state cannot be replayed
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
        )
    assert len(calls) >= 10, calls  # the machine ran its steps
    # A random id answers 404: a success there means the id came from an earlier reply, through a link.
    assert linked, calls
