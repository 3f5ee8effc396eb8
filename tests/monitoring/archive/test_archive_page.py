"""The archive page: the city office builds a year, sees it listed, downloads its manifest;
a second build of the year is refused (409) and changes nothing; district staff are
refused; every build is audited."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from learningcity import audit
from monitoring.archive import bundle, views


@pytest.fixture
def archive_dir(wsgi_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(wsgi_app.registry.settings, views.SETTING, str(tmp_path))
    return tmp_path


def _csrf(page: Any) -> str:
    return page.html.find("input", {"name": "csrf_token"})["value"]


def test_monitor_builds_lists_downloads_and_cannot_rebuild(
        testapp: Any, login: Any, year_data: Any, sections: Any, archive_dir: Path) -> None:
    login("monitor")
    page = testapp.get("/monitoring/archive", params={"_LOCALE_": "en"})
    assert "No archive built yet" in page.text or "尚未" in page.text
    done = testapp.post("/monitoring/archive/build", {"year": "2025",
                                                      "csrf_token": _csrf(page)}, status=303)
    directory = archive_dir / "learning-city-archive-2025"
    assert bundle.verify_archive(directory) == []
    page = done.follow()
    assert "2025" in page.text and "manifest.json" in page.text
    body = testapp.get("/monitoring/archive/learning-city-archive-2025/manifest.json")
    assert body.body == (directory / bundle.MANIFEST).read_bytes()
    before = {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    again = testapp.post("/monitoring/archive/build", {"year": "2025",
                                                       "csrf_token": _csrf(page)}, status=409)
    assert "2025" in again.text
    assert {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()} == before
    testapp.post("/monitoring/archive/build", {"year": "20x5", "csrf_token": _csrf(page)},
                 status=400)
    year_data.rollback()
    assert audit.count_events(year_data, "archive.build") == 1


def test_district_staff_cannot_open_or_build(testapp: Any, login: Any, staff: Any,
                                             archive_dir: Path) -> None:
    login("district_a")
    testapp.get("/monitoring/archive", status=403)
    testapp.get("/monitoring/archive/learning-city-archive-2025/manifest.json", status=403)
    assert list(archive_dir.iterdir()) == []
