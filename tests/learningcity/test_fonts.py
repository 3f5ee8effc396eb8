"""The CJK font for charts: found as a file, registered with matplotlib by path, and
checked at start-up (production refuses to start without one; tests and dev only warn)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pyramid.paster import get_appsettings

from learningcity import fonts, startup

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_cjk_font(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without any CJK font: nothing at the known paths, fontconfig lists none."""
    monkeypatch.setattr(fonts, "KNOWN_PATHS", ("/nonexistent/wqy-microhei.ttc",))
    monkeypatch.setattr(fonts, "_fontconfig_files", lambda: [])
    monkeypatch.setattr(fonts, "_registered", {})


def test_known_paths_are_tried_in_order_then_fontconfig(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a.ttc", tmp_path / "b.ttf"
    second.write_bytes(b"x")
    assert fonts.cjk_font_path([str(first), str(second)], use_fontconfig=False) == second
    first.write_bytes(b"x")
    assert fonts.cjk_font_path([str(first), str(second)], use_fontconfig=False) == first
    assert fonts.cjk_font_path([str(tmp_path / "none.ttf")], use_fontconfig=False) is None
    monkeypatch.setattr(fonts, "_fontconfig_files", lambda: [tmp_path / "gone.ttf", second])
    assert fonts.cjk_font_path([str(tmp_path / "none.ttf")]) == second


def test_the_installed_font_is_registered_by_path_and_found_by_family() -> None:
    """On this machine (CI installs fonts-wqy-microhei) matplotlib resolves the family to the
    very file, and a second call does not add it again."""
    from matplotlib import font_manager

    path = fonts.cjk_font_path()
    assert path is not None, f"no CJK font installed: {fonts.INSTALL_HINT}"
    family = fonts.register_cjk_font()
    assert family and family == font_manager.FontProperties(fname=str(path)).get_name()
    found = font_manager.findfont(font_manager.FontProperties(family=family),
                                  fallback_to_default=False)
    assert Path(found) == path
    before = len(font_manager.fontManager.ttflist)
    assert fonts.register_cjk_font() == family
    assert fonts.register_cjk_font(path) == family
    assert len(font_manager.fontManager.ttflist) == before


def test_without_a_font_registration_says_none(no_cjk_font: None) -> None:
    assert fonts.cjk_font_path() is None
    assert fonts.register_cjk_font() is None
    with pytest.raises(fonts.MissingCJKFont, match="apt-get install fonts-wqy-microhei"):
        fonts.require_cjk_font()


def test_startup_refuses_without_a_font_when_required(no_cjk_font: None) -> None:
    with pytest.raises(fonts.MissingCJKFont) as err:
        startup.check_cjk_font({"learningcity.require_cjk_font": "true"})
    assert "fonts-wqy-microhei" in str(err.value) and "empty boxes" in str(err.value)


def test_startup_only_warns_without_a_font_by_default(no_cjk_font: None,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="learningcity.startup"):
        assert startup.check_cjk_font({}) is None
        assert startup.check_cjk_font({"learningcity.require_cjk_font": "false"}) is None
    assert [r for r in caplog.records if "no CJK font" in r.getMessage()
            and "fonts-wqy-microhei" in r.getMessage()]


def test_startup_with_a_font_registers_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="learningcity.startup"):
        family = startup.check_cjk_font({"learningcity.require_cjk_font": "true"})
    assert family and not caplog.records


def test_production_ini_requires_the_font(no_cjk_font: None, monkeypatch: Any) -> None:
    """The production app factory stops before serving anything when the font is missing."""
    from learningcity import main

    monkeypatch.setenv("LEARNINGCITY_SECRET", "k" * 48)
    settings = dict(get_appsettings(str(ROOT / "production.ini")))
    assert settings["learningcity.require_cjk_font"] == "true"
    with pytest.raises(fonts.MissingCJKFont, match="fonts-wqy-microhei"):
        main({}, **settings)
