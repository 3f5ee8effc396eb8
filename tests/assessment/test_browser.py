"""A resident takes the demo test in headless Chromium on a phone-sized screen.

The app is served by waitress on a free loopback port, on a fresh SQLite database
with the demo content loaded, exactly as ``pserve development.ini`` would. The
screenshots of an item page and of the result page go to a temporary folder, or to the
folder ``LC_SCREENSHOTS`` names (``LC_SCREENSHOTS=docs/screenshots`` refreshes the
pictures in the docs), so a test run never changes tracked files.
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import pytest
from waitress.server import create_server

from learningcity import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(os.environ.get("LC_SCREENSHOTS") or tempfile.mkdtemp(prefix="lc-shots-"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.conftest import app_settings

    db = tmp_path_factory.mktemp("browser") / "demo.sqlite"
    app = main({}, **app_settings(f"sqlite:///{db}", **{
        "learningcity.auto_migrate": "true", "learningcity.demo_content": "true"}))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    srv = create_server(app, host="127.0.0.1", port=port, threads=4)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    srv.close()


@pytest.fixture(scope="module")
def browser():
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


def test_resident_takes_the_demo_test_from_start_to_result(server, browser):
    context = browser.new_context(viewport={"width": 360, "height": 740},
                                  device_scale_factor=2, locale="zh-CN")
    page = context.new_page()
    page.goto(server + "/")
    page.click("a.button[href$=\"/test\"]")  # take the test
    page.check("input[name=consent]")
    page.click("button[type=submit]")
    # background questions
    page.check("input[name=age_band][value='60-69']")
    page.check("input[name=occupation][value=retired]")
    page.click("button[type=submit]")
    answered = 0
    link = page.url
    while "/result" not in page.url:
        assert page.locator("legend.stem").inner_text().strip()
        if answered == 2:
            page.screenshot(path=str(SCREENSHOTS / "item-360.png"), full_page=True)
            # the tab dies: a new browser context resumes from the same link
            context.close()
            context = browser.new_context(viewport={"width": 360, "height": 740},
                                          locale="zh-CN")
            page = context.new_page()
            page.goto(link)
            assert f"{answered + 1}" in page.locator(".progress").inner_text()
        options = page.locator("input[name=choice]")
        assert options.count() >= 2
        options.nth(answered % options.count()).check()
        page.click("button[type=submit]")
        answered += 1
        assert answered <= 40, "the test did not stop"
    assert 15 <= answered <= 27  # min/max items of the demo blueprint (+ 2 pilot items)
    text = page.locator("main").inner_text()
    assert "分以内" in text and "道题" in text  # precision and length sentences
    page.screenshot(path=str(SCREENSHOTS / "result-360.png"), full_page=True)
    # nothing overflows a 360 px screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    context.close()
