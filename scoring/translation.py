"""The researcher-facing text of scoring's outputs (the HTML calibration report) in zh-CN
(default) and English, from the gettext catalogs in ``scoring/locale`` (domain
``scoring``; maintained with ``learningcity i18n update`` / ``compile`` like the app's).

The standard library's :mod:`gettext` reads the compiled catalogs, so scoring still
imports nothing of ours.
"""
from __future__ import annotations

import gettext
from collections.abc import Callable
from pathlib import Path

#: languages with a catalog; the first is the default
LANGUAGES = ("zh_CN", "en")
DOMAIN = "scoring"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def canonical_language(lang: str | None) -> str:
    """'zh', 'zh-CN', 'zh_cn' -> 'zh_CN'; 'en', 'en-GB' -> 'en'; ValueError otherwise."""
    key = (lang or LANGUAGES[0]).replace("-", "_").lower()
    for known in LANGUAGES:
        if key == known.lower() or key.split("_")[0] == known.split("_")[0].lower():
            return known
    raise ValueError(f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")


def translator(lang: str | None = None) -> Callable[[str], str]:
    """The gettext function of ``lang`` (default zh_CN); a string missing from the
    catalog is shown as written (English)."""
    return gettext.translation(DOMAIN, localedir=LOCALE_DIR,
                               languages=[canonical_language(lang)], fallback=True).gettext


def html_lang(lang: str | None) -> str:
    """The BCP 47 tag for ``<html lang>``: 'zh-CN' or 'en'."""
    return canonical_language(lang).replace("_", "-")
