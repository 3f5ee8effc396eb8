"""axe-core on every HTML page of the site (``tests.site_pages``) in headless Chromium:
no serious or critical violation on any resident or staff page (issue 15, item 12).

The demo app is served once; an admin (who may open every staff page, and who holds the
resident links the inventory lists) visits each page at 1280 px, a resident (no login)
the public pages at 360 px.  All violations are collected and reported in one failure."""
from __future__ import annotations

from typing import Any

import pytest

from tests import site_pages
from tests.browser import axe_problems, make_app, serving


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Any:
    app = make_app(tmp_path_factory.mktemp("axe"))
    site_pages.add_staff(app)
    ids = site_pages.demo_ids(app)
    with serving(app) as url:
        yield url, ids


def _login(page: Any, url: str, role: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=username]", site_pages.USERNAMES[role])
    page.fill("input[name=password]", site_pages.PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state("load")
    assert "/login" not in page.url, role


@pytest.mark.parametrize("role,width", [("admin", 1280), ("anonymous", 360)])
def test_no_serious_violation_on_any_page(site: Any, browser: Any, role: str,
                                         width: int) -> None:
    url, ids = site
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN",
                                  bypass_csp=True)
    page = context.new_page()
    if role != "anonymous":
        _login(page, url, role)
    problems: list[str] = []
    seen = 0
    for entry in site_pages.HTML_PAGES:
        if role not in entry.roles:
            continue
        response = page.goto(url + entry.url(ids))
        assert response is not None, entry.path
        seen += 1
        problems += axe_problems(page)
    context.close()
    assert seen >= (40 if role == "admin" else 8), seen
    assert not problems, f"{len(problems)} violations:\n" + "\n".join(problems)
