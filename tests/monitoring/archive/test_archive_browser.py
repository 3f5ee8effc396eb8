"""The archive page in headless Chromium on the demo site: the city office builds the
demo year at 1280 px and reads the list on a 360 px phone without JavaScript.
Screenshots archive-1280.png and archive-360.png (see LC_SCREENSHOTS in tests/browser.py)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from monitoring.archive import bundle, views
from tests.browser import SCREENSHOTS, fits, make_app, serving, submit
from tests.monitoring.archive.conftest import declared_sections
from tests.site_pages import PASSWORD, USERNAMES, add_staff


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("archive-browser")
    app = make_app(folder, **{views.SETTING: str(folder / "archive")})
    add_staff(app)
    with pytest.MonkeyPatch.context() as mp:
        found = declared_sections()
        mp.setattr(bundle, "contributors", lambda: dict(found))
        with serving(app) as url:
            yield url, folder / "archive"


def _login(page: Any, server: str, role: str) -> None:
    page.goto(server + "/login")
    page.fill("input[name=username]", USERNAMES[role])
    page.fill("input[name=password]", PASSWORD)
    submit(page, "form.stack button[type=submit], main button[type=submit]")


def test_city_office_builds_the_demo_year_and_reads_it_on_a_phone(served: Any,
                                                                   browser: Any) -> None:
    server, directory = served
    wide = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = wide.new_page()
    _login(page, server, "monitor")
    page.goto(server + "/monitoring/archive")
    assert "尚未生成归档" in page.content()
    page.select_option("select[name=year]", "2025")
    started = time.monotonic()
    page.click("form.stack button[type=submit]")
    page.wait_for_load_state("load")
    seconds = time.monotonic() - started
    assert "2025 年归档已生成" in page.content(), page.content()[:2000]
    assert seconds < 60, seconds
    bundle_dir = Path(directory) / "learning-city-archive-2025"
    assert bundle.verify_archive(bundle_dir) == []
    page.screenshot(path=str(SCREENSHOTS / "archive-1280.png"), full_page=True)
    phone = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN",
                                java_script_enabled=False)
    small = phone.new_page()
    _login(small, server, "monitor")
    small.goto(server + "/monitoring/archive")
    assert "manifest.json" in small.content() and fits(small)
    small.screenshot(path=str(SCREENSHOTS / "archive-360.png"), full_page=True)
    print(f"build took {seconds:.1f} s; files: "
          f"{sorted(p.relative_to(bundle_dir).as_posix() for p in bundle_dir.rglob('*'))[:40]}")
