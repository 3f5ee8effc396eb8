"""The compiled request checks accept only what openapi-core accepts, and give the same body.

A request the compiled checks accept skips openapi-core; everything else still goes to it.
So the one property that matters: whenever a compiled check accepts a value, openapi-core
accepts it too and unmarshals it to an equal body, keys in the same order.
"""
from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_core.testing import MockRequest

from learningcity.api import API_PREFIX, checked_request, compile_operations
from learningcity.schemacheck import Refused, compile_schema
from tests.conftest import app_settings


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app and its whole API document (no database is touched)."""
    from learningcity import main

    folder = tmp_path_factory.mktemp("schemacheck")
    return main({}, **app_settings(f"sqlite:///{folder / 'unused.sqlite'}"))


def accepts(check: Any, value: Any) -> bool:
    try:
        check(value)
    except Refused:
        return False
    return True


# --- the checks on their own ---------------------------------------------------------

def test_json_types_are_told_apart() -> None:
    check = compile_schema({"type": "object", "properties": {
        "n": {"type": "integer"}, "flag": {"type": "boolean", "const": True},
        "x": {"type": "number", "minimum": 0}}})
    assert accepts(check, {"n": 3, "flag": True, "x": 0.5})
    assert not accepts(check, {"n": True})  # a boolean is not an integer
    assert not accepts(check, {"n": 3.0})  # openapi-core decides that one
    assert not accepts(check, {"flag": 1})  # 1 is not true
    assert not accepts(check, {"x": -1})
    assert not accepts(check, {"x": math.nan})
    assert not accepts(check, {"x": "1"})


def test_objects_keep_the_schema_order_then_the_rest() -> None:
    check = compile_schema({"type": "object", "required": ["a"],
                            "properties": {"a": {"type": "string"}, "b": {"type": "string"}}})
    out = check({"z": 1, "b": "2", "a": "1"})
    assert list(out) == ["a", "b", "z"] and out == {"a": "1", "b": "2", "z": 1}
    assert not accepts(check, {"b": "2"})  # a is required
    closed = compile_schema({"type": "object", "additionalProperties": False,
                             "properties": {"a": {"type": "string", "maxLength": 2}}})
    assert accepts(closed, {"a": "ab"})
    assert not accepts(closed, {"a": "abc"})
    assert not accepts(closed, {"a": "a", "b": 1})


def test_refs_enums_and_arrays() -> None:
    components = {"schemas": {"Code": {"type": "string", "enum": ["x", "y"]}}}
    check = compile_schema({"type": "array", "maxItems": 2,
                            "items": {"$ref": "#/components/schemas/Code"}}, components)
    assert check(["x", "y"]) == ["x", "y"]
    assert not accepts(check, ["x", "z"])
    assert not accepts(check, ["x", "x", "x"])
    assert not accepts(check, {"x": 1})


def test_unknown_keywords_do_not_compile() -> None:
    assert compile_schema({"type": "string", "format": "date"}) is None
    assert compile_schema({"oneOf": [{"type": "string"}, {"type": "integer"}]}) is None
    assert compile_schema({"type": "string", "pattern": "^a"}) is None
    assert compile_schema({"type": "object", "properties": {
        "a": {"type": "string", "default": "x"}}}) is None
    assert compile_schema({"$ref": "#/components/schemas/Missing"}, {"schemas": {}}) is None


# --- against openapi-core, on the app's own document ---------------------------------

def body_operations(app: Any) -> list[tuple[str, str, Any]]:
    """(method, path, compiled operation) of every operation with a compiled body check."""
    checks = compile_operations(app.registry.api_spec)
    return [(method, pattern, op) for (method, pattern), op in sorted(checks.items())
            if op is not None and op.body is not None]


def test_the_answer_and_session_bodies_compile(app) -> None:
    """The resident-facing bodies take the fast path (their schemas use known keywords)."""
    compiled = {(m, p) for m, p, _op in body_operations(app)}
    for path in ("/sessions", "/sessions/{token}/answers", "/sessions/{token}/background",
                 "/echo"):
        assert ("POST", API_PREFIX + path) in compiled


def names_in(schema: Any, found: set[str]) -> set[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                found.update(value)
            names_in(value, found)
    elif isinstance(schema, list):
        for value in schema:
            names_in(value, found)
    return found


def json_values(keys: list[str]) -> st.SearchStrategy[Any]:
    """JSON values near the document's limits, objects keyed mostly by its property names."""
    scalars = st.one_of(
        st.none(), st.booleans(),
        st.integers(min_value=-3, max_value=25), st.integers(),
        st.sampled_from([0, 1, 1000, 1001, 86400000, 86400001, 1.0, 0.5, -0.0]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=70), st.sampled_from(["zh_CN", "en", "LLA", "x" * 64, "x" * 65]))
    key = st.one_of(st.sampled_from(keys), st.text(max_size=5)) if keys else st.text(max_size=5)
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(key, inner, max_size=6)), max_leaves=12)


def near(schema: Any, components: dict, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values at and just past a schema's limits (a few of another type), to find where the
    compiled check and openapi-core might disagree."""
    if not isinstance(schema, dict) or depth > 6:
        return json_values([])
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return near(components["schemas"][name], components, depth + 1)
    kinds = schema.get("type", "object" if "properties" in schema else None)
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or ["string", "integer"])
    options: list[st.SearchStrategy[Any]] = [json_values([])]
    for choice in ("enum", "const"):
        if choice in schema:
            values = schema["enum"] if choice == "enum" else [schema["const"]]
            options += [st.sampled_from(values)] * 6
    for kind in kinds:
        if kind == "integer" or kind == "number":
            low, high = schema.get("minimum", -5), schema.get("maximum", 10 ** 6)
            options += [st.integers(low - 1, high + 1)] * 4 + [
                st.sampled_from([low, high, float(low), low - 0.5])]
        elif kind == "string":
            options += [st.text(min_size=max(0, schema.get("minLength", 0) - 1),
                                max_size=schema.get("maxLength", 8) + 1)] * 4
        elif kind == "boolean":
            options += [st.booleans()] * 4
        elif kind == "null":
            options += [st.none()] * 4
        elif kind == "array":
            options += [st.lists(near(schema.get("items", {}), components, depth + 1),
                                 max_size=schema.get("maxItems", 3) + 1)] * 4
        elif kind == "object":
            options += [object_near(schema, components, depth)] * 8
    return st.one_of(options)


@st.composite
def object_near(draw: Any, schema: dict, components: dict, depth: int) -> dict:
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    out = {}
    for name, sub in properties.items():
        if name in required or draw(st.booleans()):
            out[name] = draw(near(sub, components, depth + 1))
    if required and draw(st.integers(0, 9)) == 0:
        out.pop(draw(st.sampled_from(sorted(required))), None)
    if draw(st.integers(0, 5)) == 0:
        out[draw(st.text(max_size=4))] = draw(json_values([]))
    keys = list(out)
    order = draw(st.permutations(keys))
    return {key: out[key] for key in order}


def openapi_core_body(app: Any, method: str, pattern: str, raw: bytes) -> tuple[bool, Any]:
    request = MockRequest("http://localhost", method, pattern, path_pattern=pattern,
                          view_args={"token": "t" * 20, "page": "p1"}, data=raw)
    result = app.registry.openapi.unmarshal_request(request)
    return not result.errors, result.body


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_what_a_compiled_check_accepts_openapi_core_accepts_alike(app, data) -> None:
    operations = body_operations(app)
    method, pattern, operation = data.draw(st.sampled_from(operations))
    spec = app.registry.api_spec
    schema = spec["paths"][pattern[len(API_PREFIX):]][method.lower()]["requestBody"][
        "content"]["application/json"]["schema"]
    keys = sorted(names_in(spec, set()))
    value = data.draw(st.one_of(near(schema, spec["components"]), json_values(keys)))
    try:
        ours = operation.body(value)
    except Refused:
        return  # openapi-core decides (and words the error)
    ok, theirs = openapi_core_body(app, method, pattern, json.dumps(value).encode())
    assert ok, (pattern, value)
    assert theirs == ours and json.dumps(theirs) == json.dumps(ours), (pattern, value)


class FakeRequest:
    """What :func:`checked_request` reads of a Pyramid request."""

    def __init__(self, app: Any, method: str, pattern: str, body: bytes,
                 content_type: str = "application/json", query: dict | None = None) -> None:
        from webob.multidict import MultiDict

        self.registry, self.method, self.body = app.registry, method, body
        self.content_type, self.script_name = content_type, ""
        self.matched_route = type("Route", (), {"pattern": pattern})()
        self.matchdict = {"token": "t" * 20}
        self.GET = MultiDict(query or {})


def test_a_request_outside_the_checks_goes_to_openapi_core(app) -> None:
    answers = API_PREFIX + "/sessions/{token}/answers"
    body = json.dumps({"position": 1, "version": 2, "choice": 3}).encode()
    checked = checked_request(FakeRequest(app, "POST", answers, body))
    assert checked is not None and checked[0] == {"position": 1, "version": 2, "choice": 3}
    assert checked[1].path == {"token": "t" * 20}
    for request in (FakeRequest(app, "POST", answers, b'{"position": 1,'),
                    FakeRequest(app, "POST", answers, body, content_type="text/plain"),
                    FakeRequest(app, "POST", answers, b""),
                    FakeRequest(app, "POST", answers, b'{"position": 1.0, "version": 2, '
                                                      b'"choice": 3}'),
                    FakeRequest(app, "POST", API_PREFIX + "/not-described", body)):
        assert checked_request(request) is None
    short = FakeRequest(app, "POST", answers, body)
    short.matchdict = {"token": "short"}
    assert checked_request(short) is None
