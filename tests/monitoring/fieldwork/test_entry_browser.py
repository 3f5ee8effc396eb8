"""A resident types an invitation code on a 360 px phone screen (headless Chromium, no
JavaScript needed), agrees, reaches the first test question, and comes back later with the
same code. Screenshot entry-360.png (see LC_SCREENSHOTS in tests/assessment/test_browser.py)."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.browser import SCREENSHOTS, fits, make_app, serving, submit
from tests.conftest import TEST_SECRET


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from monitoring.fieldwork.invitations import generate_code, hash_code
    from monitoring.fieldwork.models import Campaign, Invitation

    app = make_app(tmp_path_factory.mktemp("entry-browser"))
    session = app.registry.dbsession_factory()
    now = dt.datetime.now(dt.UTC)
    campaign = Campaign(code="D01-TEST-1", district_code="D01", name="东湖区终身学习能力调查",
                        test_instrument="LLA", survey_code=None, mode="sample",
                        opens_at=now - dt.timedelta(days=1),
                        closes_at=now + dt.timedelta(days=20), status="ready", design={})
    session.add(campaign)
    session.flush()
    code = generate_code()
    session.add(Invitation(campaign_id=campaign.id, public_id="BROWSER1",
                           code_hash=hash_code(TEST_SECRET, code), stratum="S01", pi=0.1,
                           prefill={"district": "D01", "age_band": "60-69", "sex": "female",
                                    "occupation": "retired", "education": "senior"}))
    session.commit()
    session.close()
    with serving(app) as url:
        yield url, code




def test_resident_enters_a_code_on_a_phone(served, browser):
    server, code = served
    context = browser.new_context(viewport={"width": 360, "height": 740},
                                  device_scale_factor=2, locale="zh-CN",
                                  java_script_enabled=False)
    page = context.new_page()
    page.goto(server + "/i")
    assert fits(page)
    box = page.locator("input[name=code]").bounding_box()
    assert box["height"] >= 44 and box["width"] >= 280  # a big input, easy to tap
    page.fill("input[name=code]", code.lower().replace("-", " "))
    page.screenshot(path=str(SCREENSHOTS / "entry-360.png"), full_page=True)
    submit(page, "button[type=submit]")
    assert "东湖区终身学习能力调查" in page.content()
    assert fits(page)
    page.check("input[name=consent]")
    submit(page, "button[type=submit]")
    assert "/t/" in page.url
    assert page.locator("legend.stem").inner_text().strip()  # the first question
    link = page.url
    context.close()
    # later, on another phone: the same code brings the resident back to the same place
    other = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    page = other.new_page()
    page.goto(f"{server}/i/{code}")
    assert page.url == link
    other.close()
