"""Schemathesis over the whole OpenAPI surface, as counter staff, an administrator and a department:
no request may get a 5xx, and documented responses must match their schema.

Driven through schemathesis' Python API (one Hypothesis run per operation, one time budget for all)
rather than its pytest plugin, whose lazy loader does not work with pytest 9.
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance
from schemathesis.core.failures import FailureGroup

from tests.fuzz.conftest import MAX_EXAMPLES, FuzzRun

API_CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# HTML pages (resident page, board) answer with pages, also for errors: only "never a 5xx" applies.
PAGE_CHECKS = [not_a_server_error]


def _role(path: str, n: int) -> str:
    if path.startswith(("/api/v1/admin", "/api/v1/metrics")):
        return "admin"
    if path.startswith("/api/v1/departments"):
        return "department" if n % 3 else "admin"
    return "counter" if n % 4 else "admin"


def _aim(case: Any, run: FuzzRun, n: int) -> None:
    # Most random ids only reach a 404; aim two thirds of the calls at real visits to get past it.
    if n % 3 == 0:
        return
    params = case.path_parameters or {}
    if "case_id" in params:
        params["case_id"] = run.case_ids[n % len(run.case_ids)]
    if "token" in params:
        params["token"] = run.status_tokens[n % len(run.status_tokens)]
    if "department" in params and n % 2:
        params["department"] = "kodomo"
    if "instance_id" in params and n % 2:
        params["instance_id"] = "jumin_tennyu"


class _OutOfTime(Exception):
    pass


def _call(case: Any, run: FuzzRun) -> None:
    if run.over_budget():
        raise _OutOfTime
    run.calls += 1
    # Choices depend on the generated case only, so that Hypothesis can replay a failure exactly.
    n = zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())
    _aim(case, run, n)
    headers = dict(case.headers or {})
    if "authorization" not in {k.lower() for k in headers} or n % 5:
        headers["Authorization"] = f"Bearer {run.tokens[_role(case.path, n)]}"
    case.headers = headers
    response = case.call()
    run.by_status[response.status_code] = run.by_status.get(response.status_code, 0) + 1
    case.validate_response(response, checks=API_CHECKS if case.path.startswith("/api/") else PAGE_CHECKS)


def test_no_server_errors_and_documented_shapes(fuzz_run: FuzzRun) -> None:
    run = fuzz_run
    schema = schemathesis.openapi.from_asgi("/openapi.json", run.app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        run.operations.add(label)

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def fuzz(case: Any) -> None:
            _call(case, run)

        try:
            fuzz()
        except _OutOfTime:
            run.out_of_time += 1
        except (Exception, FailureGroup) as exc:  # a check failed: keep going, report every operation at the end
            failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:1500]}")
    if run.out_of_time == len(operations):
        pytest.fail("the time budget ran out before any operation was fuzzed")
    assert failures == [], "\n\n".join(failures)
