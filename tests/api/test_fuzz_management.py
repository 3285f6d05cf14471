"""Schemathesis over the management API's OpenAPI schema (issue 13, item 10).

Every operation gets generated valid and invalid requests (bounded, derandomized: the same cases each
run) with the admin key; every answer must be a documented status with a body that matches the
documented schema, and none may be a 5xx.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from conftest import bundle, publish
from overair.app import OverairApp, create_app
from overair.config import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> tuple[OverairApp, str]:
    data = Path(tmp_path_factory.mktemp("fuzz"))
    server = create_app(Settings(allowed_hosts="testserver", data_dir=data, _env_file=None))  # type: ignore[call-arg]
    created = server.state.access_keys.ensure_initial_key()
    assert created is not None
    from starlette.testclient import TestClient

    with TestClient(server, base_url="http://testserver") as api:  # something to find: an app with releases
        api.headers["Authorization"] = f"Bearer {created.key}"
        assert api.post("/api/v1/apps", json={"name": "CoolApp"}).status_code == 201
        assert publish(api, content=bundle("one")).status_code == 201
        assert publish(api, content=bundle("two"), rollout=50).status_code == 201
    return server, created.key


def test_every_answer_is_documented_and_none_is_a_server_error(fuzzed: tuple[OverairApp, str]) -> None:
    server, key = fuzzed
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", server)
    failures: list[str] = []
    operations = 0
    calls: list[int] = []
    for found in schema.get_all_operations():
        operation = found.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: schemathesis.Case) -> None:
            calls.append(1)
            case.call_and_validate(
                headers={"Authorization": f"Bearer {key}"},
                # the schema cannot say "a semver range" or "an app that exists": a schema-valid request
                # may rightly be refused, so only what the schema promises is checked
                excluded_checks=[checks.positive_data_acceptance],
            )

        try:
            exercise()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 20, f"only {operations} operations in the schema"
    assert len(calls) >= 5 * operations, f"only {len(calls)} requests for {operations} operations"
    assert not failures, "\n\n".join(failures)


def test_a_wrong_method_is_405_with_allow(api) -> None:  # type: ignore[no-untyped-def]
    answer = api.put("/api/v1/apps")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_the_schema_documents_problem_answers(api) -> None:  # type: ignore[no-untyped-def]
    schema = api.get("/api/v1/openapi.json").json()
    publish = schema["paths"]["/api/v1/apps/{app}/deployments/{deployment}/releases"]["post"]["responses"]
    assert {"401", "403", "404", "409", "411", "413", "422", "429"} <= set(publish)
    problem = publish["409"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem"}
    assert "HTTPValidationError" not in schema["components"]["schemas"]
