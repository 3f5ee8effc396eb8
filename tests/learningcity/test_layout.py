"""The base layout: mobile-first, no JavaScript, system fonts, light."""
from __future__ import annotations

import re


def test_layout_is_light_and_needs_no_script_or_web_fonts(testapp) -> None:
    page = testapp.get("/")
    css_paths = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.text)
    assert css_paths, "the layout links its stylesheet"
    total = len(page.body)
    for path in css_paths:
        css = testapp.get(path)
        assert "@font-face" not in css.text and "url(" not in css.text
        total += len(css.body)
    assert total < 30 * 1024, f"first load is {total} bytes"
    assert "<script" not in page.text
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in page.text


def test_tap_targets_are_large() -> None:
    from pathlib import Path

    css = (Path(__file__).resolve().parents[2] / "static" / "css" / "app.css").read_text()
    heights = [int(h) for h in re.findall(r"min-height:\s*(\d+)px", css)]
    assert heights and min(h for h in heights if h > 30) >= 44


def test_static_files_are_cached(testapp) -> None:
    res = testapp.get("/static/css/app.css")
    assert "max-age=86400" in res.headers["Cache-Control"]
