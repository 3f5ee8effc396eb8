"""Schemathesis against the served OpenAPI document, in process: no 5xx, ever.

Every operation of ``/api/v1/openapi.json`` gets generated requests (valid and
invalid bodies, odd path parameters, wrong types) on the real app with the demo bank
loaded, on SQLite and PostgreSQL. Examples are bounded so the whole file runs in
about a minute. (schemathesis' own pytest plugin does not load under pytest 9, so
the operations are driven through ``as_strategy`` here.)
"""
from __future__ import annotations

from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

MAX_EXAMPLES = 30


def test_no_server_errors(wsgi_app, demo):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi_app)
    seen = []
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        seen.append(f"{operation.method.upper()} {operation.path}")

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
               | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        def call(case):
            response = case.call()
            statuses[response.status_code] += 1
            case.validate_response(response, checks=[not_a_server_error])
            if response.status_code >= 400:  # API errors are JSON {error, message, details}
                body = response.json()
                assert {"error", "message", "details"} <= set(body), (case.path, body)

        call()
    assert "POST /sessions/{token}/answers" in seen and len(seen) >= 8, seen
    assert sum(statuses.values()) >= 5 * len(seen), statuses  # the requests really ran
    print(f"{len(seen)} operations, responses by status: {dict(statuses)}")


def test_non_utf8_json_is_a_400_not_a_500(testapp, demo):
    """Found by the fuzzer: openapi-core's error text decoded the raw body and crashed."""
    for path in ("/api/v1/sessions", "/api/v1/echo", "/api/v1/sessions/" + "x" * 32
                 + "/answers"):
        res = testapp.post(path, b"\x80\xff", content_type="application/json", status=400)
        assert res.json["error"] in ("invalid_json", "invalid_request"), res.json
