"""Oversized request bodies are refused with 413 before they are read."""
from __future__ import annotations

import io
from typing import Any

import pytest
import sqlalchemy as sa

from assessment.models import TestSession
from learningcity import limits


def raw_post(app: Any, path: str, environ: dict[str, Any], status: Any,
             content_type: str = "application/json") -> Any:
    """A POST whose environ (Content-Length, body stream) is exactly as given."""
    import webtest

    req = webtest.TestRequest.blank(path, {"REQUEST_METHOD": "POST",
                                           "CONTENT_TYPE": content_type,
                                           "REMOTE_ADDR": "127.0.0.1", **environ})
    return app.do_request(req, status=status)


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anyone reads it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("the body of an oversized request was read")


def test_api_body_over_64k_is_413_json_without_reading(testapp, demo, dbsession):
    res = raw_post(testapp, "/api/v1/sessions", {"CONTENT_LENGTH": str(64 * 1024 + 1),
                                                 "wsgi.input": Unreadable()}, 413)
    assert res.json["error"] == "too_large"
    assert res.json["details"] == [{"limit": 64 * 1024}]
    assert dbsession.scalar(sa.select(sa.func.count(TestSession.id))) == 0


def test_api_body_at_the_limit_is_handled_normally(testapp, demo):
    padding = " " * (64 * 1024 - 40)
    body = ('{"consent": true' + padding + "}").encode()
    assert len(body) <= 64 * 1024
    res = testapp.post("/api/v1/sessions", body, content_type="application/json",
                       status=201)
    assert res.json["status"] in ("background", "testing")


def test_form_post_over_64k_is_413_html(testapp, demo):
    res = testapp.post("/test", {"consent": "yes", "x": "a" * 70_000}, status=413)
    assert res.content_type == "text/html"
    assert "<html" in res.text and "too_large" not in res.text
    assert "文件或表单太大" in res.text  # zh_CN by default


def test_chunked_body_over_the_limit_is_refused_after_a_bounded_read(testapp, demo):
    """No Content-Length (chunked, as gunicorn passes it): read at most limit + 1 bytes."""
    data = io.BytesIO(b"{" + b" " * 200_000 + b"}")
    res = raw_post(testapp, "/api/v1/sessions", {"HTTP_TRANSFER_ENCODING": "chunked",
                                                 "wsgi.input": data}, 413)
    assert res.json["error"] == "too_large"
    assert data.tell() <= 64 * 1024 + 1


def test_small_chunked_body_still_works(testapp, demo):
    data = io.BytesIO(b'{"consent": true}')
    res = raw_post(testapp, "/api/v1/sessions", {"HTTP_TRANSFER_ENCODING": "chunked",
                                                 "wsgi.input": data}, 201)
    assert res.json["token"]


def test_upload_route_accepts_more_but_not_beyond_its_limit(testapp, demo, staff, login):
    """The survey import takes files over 64 KB; above 10 MB it is refused unread."""
    login("admin")
    page = testapp.get("/research/surveys")
    token = page.html.find("input", {"name": "csrf_token"})["value"]
    big = b"{" + b" " * 100_000 + b"}"
    res = testapp.post("/research/surveys", {"csrf_token": token},
                       upload_files=[("file", "big.json", big)], status="*")
    assert res.status_int != 413  # handled by the import (which rejects the JSON)
    res = raw_post(testapp, "/research/surveys", {
        "CONTENT_LENGTH": str(10 * 1024 * 1024 + 1), "wsgi.input": Unreadable()}, 413,
        content_type="multipart/form-data; boundary=x")
    assert "<html" in res.text


def test_nonsense_content_length_is_refused(wsgi_app, testapp, demo):
    """(Called without WebTest's lint, which rejects such a request itself.)"""
    from webob import Request

    req = Request.blank("/api/v1/sessions", {"REQUEST_METHOD": "POST",
                                             "CONTENT_TYPE": "application/json",
                                             "CONTENT_LENGTH": "-5",
                                             "wsgi.input": Unreadable()})
    res = req.get_response(wsgi_app)
    assert res.status_int == 413 and res.json["error"] == "too_large"


@pytest.mark.parametrize("value", ["lots", "-1", "0"])
def test_bad_limit_settings_are_named(value):
    with pytest.raises(ValueError, match=r"learningcity\.max_body_bytes"):
        limits._int_setting({"learningcity.max_body_bytes": value},
                            "learningcity.max_body_bytes", 1)


def test_configured_limit_is_used(db_url):
    import webtest

    from learningcity import main
    from tests.conftest import app_settings

    app = webtest.TestApp(main({}, **app_settings(db_url, **{
        "learningcity.max_body_bytes": "100"})))
    res = app.post_json("/api/v1/echo", {"message": "x" * 200}, status=413)
    assert res.json["details"] == [{"limit": 100}]
    assert app.post_json("/api/v1/echo", {"message": "ok"}).json["received"] == {"message": "ok"}


# --- NUL characters in text (PostgreSQL cannot store them) ---------------------------

def test_nul_in_json_text_is_400_and_stores_nothing(testapp, demo, dbsession):
    """Found by the API fuzzer: a survey code "\\u0000" reached a PostgreSQL query (500)."""
    for path, body in (("/api/v1/survey-sessions", '{"code": "\\u0000", "consent": true}'),
                       ("/api/v1/sessions", '{"consent": true, "locale": "zh\\u0000"}'),
                       ("/api/v1/invitations/redeem", '{"code": "AB\\u0000CD"}')):
        res = testapp.post(path, body.encode(), content_type="application/json", status=400)
        assert res.json["error"] == "bad_text" and res.json["details"] == [
            {"where": "the JSON body"}], path
    assert dbsession.scalar(sa.select(sa.func.count(TestSession.id))) == 0


def test_nul_in_address_query_or_form_is_400_page(testapp, demo, staff, login):
    for url in ("/i/AB%00CD", "/test?lang=%00"):
        res = testapp.get(url, status=400)
        assert "<html" in res.text and "无法读取" in res.text, url
    res = testapp.post("/test", "consent=yes&x=%00", content_type=(
        "application/x-www-form-urlencoded"), status=400)
    assert "<html" in res.text
    login("admin")
    page = testapp.get("/research/surveys")
    token = page.html.find("input", {"name": "csrf_token"})["value"]
    testapp.post("/research/surveys", {"csrf_token": token, "note": "a\x00b"},
                 upload_files=[("file", "s.json", b"{}")], status=400)


def test_text_without_nul_is_untouched(testapp, demo):
    """"%2500" (a percent sign, then 00) and "\\\\u0000" spelled out are ordinary text."""
    testapp.get("/test?lang=%2500", status=200)
    res = testapp.post("/api/v1/sessions", b'{"consent": true, "locale": "en"}',
                       content_type="application/json", status=201)
    assert res.json["status"] in ("background", "testing")


def test_file_field_left_empty_reaches_the_view(testapp, staff, login):
    """A form posted with no file chosen (browsers send the part with filename="" and no
    content) is a readable form: the page's own message, not "cannot be read"."""
    login("admin")
    form = testapp.get("/admin/margins?lang=en").forms["upload"]
    form["name"] = "census"
    res = form.submit(status=400)
    assert b'name="file"; filename=""' in res.request.body
    assert "Choose a CSV or XLSX file to upload." in res.text
    assert "cannot be read" not in res.text


def test_the_organisation_link_takes_one_evidence_file_not_ten_mb(testapp, demo):
    """``/o/{token}`` has no account behind it: its body is capped at one evidence file
    (5 MB) plus the form, refused unread above that; below it the view answers."""
    from monitoring.organisations import selfassess

    limit = selfassess.EVIDENCE_BYTES + limits.FORM_OVERHEAD
    res = raw_post(testapp, "/o/no-such-token", {
        "CONTENT_LENGTH": str(limit + 1), "wsgi.input": Unreadable()}, 413,
        content_type="multipart/form-data; boundary=x")
    assert "<html" in res.text and "5 MB" in res.text
    token = testapp.get("/login").html.find("input", {"name": "csrf_token"})["value"]
    res = testapp.post("/o/no-such-token", {"csrf_token": token, "revision": "0"},
                       upload_files=[("file", "e.pdf", b"%PDF-" + b"x" * 200_000)],
                       status=404)  # past the limits: the view says the link is unknown
    assert res.status_int == 404


def test_route_limits_and_upload_routes(wsgi_app, monkeypatch):
    """A route's own limit wins; other upload routes get the upload limit, the rest the
    general one."""
    from types import SimpleNamespace

    from monitoring.programme import evidence

    request = SimpleNamespace(registry=wsgi_app.registry)

    def limit(route):
        monkeypatch.setattr(limits, "_route_name", lambda _request: route)
        return limits.limit_for(request, 64 * 1024, 10 * 1024 * 1024)

    assert limit("programme.evidence_add") == evidence.MAX_BYTES + limits.FORM_OVERHEAD
    assert limit("orgs.self") < 10 * 1024 * 1024
    assert limit("programme.upload") == 10 * 1024 * 1024
    assert limit("home") == 64 * 1024
