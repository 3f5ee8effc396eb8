"""The JSON API root, its OpenAPI document and request validation errors."""
from __future__ import annotations

from openapi_spec_validator import validate


def test_openapi_document_is_served_and_valid(testapp) -> None:
    spec = testapp.get("/api/v1/openapi.json").json
    validate(spec)  # raises on an invalid OpenAPI 3.1 document
    assert spec["servers"] == [{"url": "/api/v1"}]
    assert "/echo" in spec["paths"]


def test_api_root_links_to_document(testapp) -> None:
    assert testapp.get("/api/v1/").json["openapi"].endswith("/api/v1/openapi.json")


def test_malformed_json_body_gets_400_with_message(testapp) -> None:
    res = testapp.post("/api/v1/echo", b'{"message": "hi",', status=400,
                       content_type="application/json")
    assert res.content_type == "application/json"
    assert res.json["error"] == "invalid_json"
    assert "not valid JSON" in res.json["message"]
    assert isinstance(res.json["details"], list)


def test_body_violating_the_schema_names_the_field(testapp) -> None:
    res = testapp.post_json("/api/v1/echo", {"message": "hi", "count": -3}, status=400)
    assert res.json["error"] == "invalid_request"
    assert any(d.startswith("count:") for d in res.json["details"]), res.json
    res = testapp.post_json("/api/v1/echo", {"count": 1}, status=400)
    assert "message" in res.json["message"]
    res = testapp.post_json("/api/v1/echo", {"message": "hi", "extra": 1}, status=400)
    assert "extra" in res.json["message"]


def test_valid_body_passes_through(testapp) -> None:
    res = testapp.post_json("/api/v1/echo", {"message": "你好", "count": 2})
    assert res.json == {"received": {"message": "你好", "count": 2}}


def test_unknown_api_path_is_json_404(testapp) -> None:
    res = testapp.get("/api/v1/nothing-here", status=404)
    assert res.json["error"] == "not_found"
