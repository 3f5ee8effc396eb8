"""Malformed bodies are a 400 on every POST route, never a 500 (issue 16, finding 8:
``multipart/form-data`` without a boundary was a server error everywhere)."""
from __future__ import annotations

import re
from typing import Any

import pytest
from pyramid.interfaces import IRoutesMapper

BODIES = [
    ("multipart/form-data", b"username=admin"),
    ("multipart/form-data; boundary=", b"--\r\n\r\n"),
    ("multipart/form-data; boundary=" + "x" * 300, b"--" + b"x" * 300 + b"\r\n"),
]


def _post_paths(app: Any) -> list[str]:
    """A concrete path for every route of the app (placeholders filled in)."""
    mapper = app.registry.getUtility(IRoutesMapper)
    paths = []
    for route in mapper.get_routes():
        if route.pattern.startswith("__") or route.name.startswith("__"):
            continue  # static views
        path = re.sub(r"\{[^}]*\}", "X1", route.pattern)
        paths.append(path if path.startswith("/") else "/" + path)
    return sorted(set(paths))


@pytest.mark.parametrize("content_type,body", BODIES)
def test_every_post_route_answers_400(testapp: Any, wsgi_app: Any, content_type: str,
                                      body: bytes) -> None:
    paths = _post_paths(wsgi_app)
    assert len(paths) > 40  # the whole site, not a sample
    for path in paths:
        res = testapp.post(path, body, headers={"Content-Type": content_type},
                           expect_errors=True)
        assert res.status_int == 400, (path, res.status_int)
        if path.startswith("/api/"):
            assert res.json["error"] == "bad_body", path
        else:
            assert "无法读取" in res.text, path


def test_a_good_multipart_form_still_works(testapp: Any, staff: Any) -> None:
    form = testapp.get("/login").forms[0]
    form["username"], form["password"] = "admin", "correct horse battery"
    form.enctype = "multipart/form-data"
    assert form.submit(status=303).location.endswith("/staff/")
