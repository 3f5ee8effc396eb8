"""District staff use the campaign pages on a 360 px phone, without JavaScript.

Headless Chromium (Debian's ``chromium``) with JavaScript disabled, on a fresh SQLite
database with the demo content, as ``pserve development.ini`` serves it. Every tab of
the demo campaign fits the screen width (wide tables scroll inside their own box), and
the printable list of new codes works.
"""
from __future__ import annotations

import os
import re

import pytest

from tests.browser import SCREENSHOTS, fits, make_app, serving, submit

PASSWORD = "correct horse battery"
CODE_RE = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{5}\b")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from learningcity.accounts import create_user

    app = make_app(tmp_path_factory.mktemp("campaign_browser"))
    session = app.registry.dbsession_factory()
    create_user(session, "district_d01", PASSWORD, "district", "D01")
    session.commit()
    session.close()
    with serving(app, threads=2) as url:
        yield url


def _fits(page) -> None:
    assert fits(page), f"{page.url} is wider than 360 px"


def test_campaign_tabs_at_360px_without_javascript(server, browser) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740},
                                  java_script_enabled=False, locale="zh-CN")
    page = context.new_page()
    page.goto(server + "/login?next=/campaigns")
    page.fill("input[name=username]", "district_d01")
    page.fill("input[name=password]", PASSWORD)
    submit(page, "button[type=submit]")
    assert page.url.endswith("/campaigns")
    _fits(page)
    submit(page, "a.card-title")
    _fits(page)
    assert "var/demo_invitations.csv" in page.content()
    code = page.url.rstrip("/").rsplit("/", 1)[-1]
    for tab in ("frame", "design", "draw", "invitations", "progress", "close"):
        page.goto(f"{server}/campaigns/{code}/{tab}")
        assert page.locator("nav.tabs a[aria-current=page]").count() == 1
        _fits(page)
        if os.environ.get("LC_SCREENSHOTS"):
            page.screenshot(path=f"{os.environ['LC_SCREENSHOTS']}/campaign-{tab}.png",
                            full_page=True)
        for button in page.locator("main button:not(.link)").all():
            assert button.bounding_box()["height"] >= 44
    # replace the unused demo codes: the printable list appears once, and fits the phone
    page.goto(f"{server}/campaigns/{code}/invitations")
    page.check("input[name=confirm]")
    with page.expect_navigation():
        page.click("form:has(input[value=reissue]) button.secondary")
    page.locator("img.qr").first.wait_for()
    html = page.content()
    assert len(set(CODE_RE.findall(html))) >= 10
    assert page.locator("img.qr").count() >= 10
    # a card carries the code on one line, an instruction and the QR, not the unit or stratum
    card = page.locator("li.code-card").first
    code_box = card.locator("p.code").bounding_box()
    assert code_box["height"] < 2 * 1.6 * 18 * 1.2  # one line of the large code
    assert card.locator("p.instruction").count() == 1
    card_text = card.inner_text()
    for own in (card.locator("p.code").inner_text(), card.locator("p.link").inner_text()):
        card_text = card_text.replace(own, "")
    assert not re.search(r"S0[1-4]", card_text), card_text  # demo unit ids and strata
    _fits(page)
    if os.environ.get("LC_SCREENSHOTS"):
        page.screenshot(path=f"{os.environ['LC_SCREENSHOTS']}/campaign-codes.png")
    page.goto(f"{server}/campaigns/{code}/invitations")
    assert not CODE_RE.findall(page.content())
    context.close()


def test_close_result_at_360px(server, browser) -> None:
    """Closing the demo campaign (no one has completed): the close tab warns first, then
    the result panel names each step with its word and message, in zh and at 360 px."""
    context = browser.new_context(viewport={"width": 360, "height": 740},
                                  java_script_enabled=False, locale="zh-CN")
    page = context.new_page()
    page.goto(server + "/login?next=/campaigns")
    page.fill("input[name=username]", "district_d01")
    page.fill("input[name=password]", PASSWORD)
    submit(page, "button[type=submit]")
    submit(page, "a.card-title")
    code = page.url.rstrip("/").rsplit("/", 1)[-1]
    page.goto(f"{server}/campaigns/{code}/close")
    assert "还没有人完成答题。" in page.inner_text("main")
    _fits(page)
    page.check("input[name=confirm]")
    with page.expect_navigation():
        page.click("form:has(input[value=close]) button")
    panel = page.locator("section.close-result")
    panel.wait_for()
    text = panel.inner_text()
    assert "本次调查已结束，但有一个步骤失败：见下文。" in text
    assert "✗ 失败" in text and "没有受访者完成答题：没有权重，也没有结果。" in text
    assert "– 未进行" in text and "${" not in page.content()
    _fits(page)
    box = panel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    page.screenshot(path=str(SCREENSHOTS / "campaign-close-result-360.png"), full_page=True)
    badges = page.locator("p.badges .badge").all_inner_texts()
    assert badges[:2] == ["已结束", "已提前停止答题（在答题截止前结束）"]
    context.close()
