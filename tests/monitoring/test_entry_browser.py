"""A resident types an invitation code on a 360 px phone screen (headless Chromium, no
JavaScript needed), agrees, reaches the first test question, and comes back later with the
same code. Screenshot entry-360.png (see LC_SCREENSHOTS in tests/assessment/test_browser.py)."""
from __future__ import annotations

import datetime as dt
import socket
import threading

import pytest
from waitress.server import create_server

from learningcity import main
from tests.assessment.test_browser import ARGS, CHROMIUM, SCREENSHOTS


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from monitoring.invitations import generate_code, hash_code
    from monitoring.models import Campaign, Invitation
    from tests.conftest import app_settings

    db = tmp_path_factory.mktemp("entry-browser") / "demo.sqlite"
    app = main({}, **app_settings(f"sqlite:///{db}", **{
        "learningcity.auto_migrate": "true", "learningcity.demo_content": "true"}))
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
                           code_hash=hash_code(code), stratum="S01", pi=0.1,
                           prefill={"district": "D01", "age_band": "60-69", "sex": "female",
                                    "occupation": "retired", "education": "senior"}))
    session.commit()
    session.close()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    srv = create_server(app, host="127.0.0.1", port=port, threads=4)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", code
    srv.close()


@pytest.fixture(scope="module")
def browser():
    import os

    playwright = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        message = "chromium is not installed (apt-get install chromium); .ci/run installs it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _fits(page) -> bool:
    page.wait_for_load_state("load")  # a click's navigation may still be under way
    return page.evaluate("document.documentElement.scrollWidth") <= 360


def test_resident_enters_a_code_on_a_phone(served, browser):
    server, code = served
    context = browser.new_context(viewport={"width": 360, "height": 740},
                                  device_scale_factor=2, locale="zh-CN",
                                  java_script_enabled=False)
    page = context.new_page()
    page.goto(server + "/i")
    assert _fits(page)
    box = page.locator("input[name=code]").bounding_box()
    assert box["height"] >= 44 and box["width"] >= 280  # a big input, easy to tap
    page.fill("input[name=code]", code.lower().replace("-", " "))
    page.screenshot(path=str(SCREENSHOTS / "entry-360.png"), full_page=True)
    page.click("button[type=submit]")
    assert "东湖区终身学习能力调查" in page.content()
    assert _fits(page)
    page.check("input[name=consent]")
    page.click("button[type=submit]")
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
