"""Links to "this page" and redirects after login stay on this site (issue 16, finding 8:
a path starting ``//evil.example/`` made the 404 page's language links point off-site)."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from learningcity.redirects import is_local

BASE = "http://localhost/"


@pytest.mark.parametrize("path", ["//evil.example/", "///evil.example/x?lang=en",
                                  "//evil.example/%2F..", "/%5Cevil.example/"])
def test_every_link_of_an_odd_path_stays_on_this_site(testapp: Any, path: str) -> None:
    page = testapp.get(path, status=404)
    links = re.findall(r'(?:href|action|src)="([^"]*)"', page.text)
    assert any("lang=en" in link for link in links)  # the language links are there
    for link in links:
        target = urlsplit(urljoin(BASE + "start", link.replace("&amp;", "&")))
        assert target.netloc == "localhost", (path, link)


@pytest.mark.parametrize("url,local", [
    ("/staff/", True), ("/staff/campaigns?x=1", True), ("//evil.example/", False),
    ("/\\evil.example", False), ("/\t/evil.example", False), ("/\n/evil.example", False),
    ("https://evil.example/", False), ("evil", False), ("", False)])
def test_only_local_paths_are_redirect_targets(url: str, local: bool) -> None:
    assert is_local(url) is local


def test_login_never_redirects_to_a_backslash_host(testapp: Any, staff: Any) -> None:
    for target in ("/\\evil.example/", "/\t/evil.example/"):
        testapp.reset()
        form = testapp.get("/login").forms[0]
        form["username"], form["password"] = "admin", "correct horse battery"
        form["next"] = target
        location = form.submit(status=303).location
        assert urlsplit(location).netloc == "localhost" and "evil" not in location
