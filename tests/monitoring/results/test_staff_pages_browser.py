"""A monitoring officer reads the demo city's results in headless Chromium, at 1280 px
(a desk) and at 360 px without JavaScript (a phone): overview, groups, trends,
districts, map and yearly report.

At each width the page does not scroll sideways (wide tables scroll in their own box),
every chart image loads, and axe-core finds no serious or critical violation.  At
1280 px the overview's verdict column is on screen without scrolling.  Screenshots go to
``LC_SCREENSHOTS`` (``docs/screenshots`` refreshes the README's pictures)."""
from __future__ import annotations

from typing import Any

import pytest

from tests.browser import SCREENSHOTS, axe_problems, fits, make_app, serving

PAGES = {"overview": "/monitoring", "groups": "/monitoring/groups",
         "trends": "/monitoring/trends", "districts": "/monitoring/districts",
         "map": "/monitoring/map", "report": "/monitoring/report?year=2025"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any) -> Any:
    from learningcity.accounts import create_user
    from tests.conftest import PASSWORD

    app = make_app(tmp_path_factory.mktemp("staff"), **{"monitoring.demo_city": "true"})
    session = app.registry.dbsession_factory()
    create_user(session, "monitor", PASSWORD, "monitor")
    session.commit()
    session.close()
    with serving(app) as url:
        yield url


def _login(page: Any, url: str) -> None:
    from tests.conftest import PASSWORD

    page.goto(url + "/login")
    page.fill("input[name=username]", "monitor")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state("load")
    assert "/login" not in page.url


def _too_wide(page: Any, width: int) -> list[str]:
    """The elements that reach past the screen's right edge (for the failure message)."""
    return page.evaluate("w => Array.from(document.querySelectorAll('body *')).filter("
                         "e => e.getBoundingClientRect().right > w && !e.closest('.table-wrap'))"
                         ".slice(0, 8).map(e => e.tagName + '.' + e.className + ' '"
                         " + Math.round(e.getBoundingClientRect().right))", width)


def _charts_loaded(page: Any) -> bool:
    return page.evaluate("Array.from(document.querySelectorAll('img')).every("
                         "i => i.complete && i.naturalWidth > 0)")


@pytest.mark.parametrize("width", [1280, 360])
def test_monitor_reads_the_demo_city(server: str, browser: Any, width: int) -> None:
    phone = width == 360
    context = browser.new_context(viewport={"width": width, "height": 900 if not phone else 740},
                                  device_scale_factor=2 if phone else 1, locale="zh-CN",
                                  java_script_enabled=not phone, bypass_csp=True)
    page = context.new_page()
    _login(page, server)
    problems: dict[str, list[str]] = {}
    for name, path in PAGES.items():
        response = page.goto(server + path)
        assert response is not None and response.status == 200, (path, response)
        assert fits(page, width), (path, width, _too_wide(page, width))
        assert _charts_loaded(page), (path, width)
        text = page.locator("main").inner_text()
        assert "模拟" in text, (path, "the demo is labelled simulated")
        if name == "overview" and not phone:
            # the verdict column is on screen at a desk without scrolling sideways
            right = page.evaluate("Math.max(...Array.from(document.querySelectorAll("
                                  "'main table th:last-child')).map("
                                  "e => e.getBoundingClientRect().right))")
            assert 0 < right <= width, right
            assert "达标" in text or "无法" in text
        if name == "map":
            assert page.locator("main svg path, main svg polygon").count() >= 12
        page.screenshot(path=str(SCREENSHOTS / f"monitoring-{name}-{width}.png"),
                        full_page=True)
        if not phone:
            problems[path] = axe_problems(page)
    context.close()
    assert not any(problems.values()), {k: v for k, v in problems.items() if v}


def test_axe_check_can_fail(server: str, browser: Any) -> None:
    """The checker reports a serious violation when there is one (an image without alt)."""
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.set_content('<html lang="zh-CN"><head><title>t</title></head><body><main>'
                     '<h1>t</h1><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
                     '<a href="/x"></a></main></body></html>')
    found = axe_problems(page)
    context.close()
    assert any(": image-alt (" in p for p in found), found
