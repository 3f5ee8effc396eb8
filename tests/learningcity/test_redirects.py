"""see_other sends what Pyramid's own HTTPSeeOther sends, byte for byte."""
from __future__ import annotations

import pytest
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.testing import DummyRequest

from learningcity.redirects import see_other


@pytest.mark.parametrize("accept", [None, "text/html", "application/json", "text/plain",
                                    "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
                                    "image/png"])
def test_the_page_and_headers_are_pyramids(accept) -> None:
    environ = {"HTTP_ACCEPT": accept} if accept else {}
    environ.update({"HTTP_USER_AGENT": "<phone & co>", "PATH_INFO": "/t/abc/answer",
                    "REQUEST_METHOD": "POST", "QUERY_STRING": "lang=en"})
    request = DummyRequest(environ=environ)
    location = "http://example.com/t/abc?x=<1>&y=2"
    ours = see_other(request, location, headers=[("Set-Cookie", "a=b")])
    theirs = HTTPSeeOther(location, headers=[("Set-Cookie", "a=b")])
    full = dict(environ, **{"wsgi.url_scheme": "http", "SERVER_NAME": "example.com",
                            "SERVER_PORT": "80"})
    ours_sent = ours(dict(full), lambda status, headers: None)
    theirs_sent = theirs(dict(full), lambda status, headers: None)
    assert b"".join(ours_sent) == b"".join(theirs_sent)
    assert ours.status == theirs.status == "303 See Other"
    assert ours.headerlist == theirs.headerlist
