"""Languages: zh-CN by default, English second, chosen from the URL, a cookie or Accept-Language.

``?lang=en`` (or ``?lang=zh-CN``) on any page switches and is remembered in a
cookie; otherwise the browser's Accept-Language decides; otherwise zh-CN.
Strings go through gettext catalogs in ``learningcity/locale``.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pyramid.events import NewResponse
from pyramid.i18n import TranslationStringFactory, make_localizer

from .redirects import self_path

_ = TranslationStringFactory("learningcity")

DEFAULT_LOCALE = "zh_CN"
#: locale name -> (URL value, label shown in the switcher in its own language)
LOCALES = {"zh_CN": ("zh-CN", "中文"), "en": ("en", "English")}
COOKIE = "lc_lang"


def flash(request: Any, message: str) -> None:
    """Queue a message for the next page, translated now: the session keeps plain text
    (JSON), so a translation string kept as such would lose its mapping (``${name}``)."""
    request.session.flash(request.translate(message))


def normalise(value: str | None) -> str | None:
    """Map 'zh', 'zh-CN', 'zh_cn', 'en-US'... onto a supported locale name, else None."""
    if not value:
        return None
    value = value.strip().replace("-", "_").lower()
    if value.startswith("zh"):
        return "zh_CN"
    if value.startswith("en"):
        return "en"
    return None


def locale_negotiator(request: Any) -> str:
    chosen = normalise(request.GET.get("lang")) or normalise(request.cookies.get(COOKIE))
    if chosen:
        return chosen
    parsed = getattr(request.accept_language, "parsed", None) or []
    for language, quality in sorted(parsed, key=lambda pair: -pair[1]):
        if quality > 0 and normalise(language):
            return normalise(language)
    return DEFAULT_LOCALE


def remember_choice(event: NewResponse) -> None:
    """Keep an explicit ``?lang=`` choice in a cookie so later pages stay in it."""
    chosen = normalise(event.request.GET.get("lang"))
    if chosen and event.request.cookies.get(COOKIE) != chosen:
        event.response.set_cookie(COOKIE, chosen, max_age=365 * 24 * 3600,
                                  httponly=True, samesite="Lax")


def language_links(request: Any) -> list[dict[str, Any]]:
    """Links to the current page in each language, for the switcher on every page."""
    kept = [(k, v) for k, v in request.GET.items() if k != "lang"]
    path, current = self_path(request), request.locale_name
    links = []
    for name, (value, label) in LOCALES.items():
        links.append({"locale": name, "lang": value, "label": label,
                      "url": path + "?" + urlencode(kept + [("lang", value)]),
                      "current": current == name})
    return links


def html_lang(request: Any) -> str:
    return LOCALES.get(request.locale_name, LOCALES[DEFAULT_LOCALE])[0]


def translator(locale: str | None = None, packages: tuple[str, ...] = ("learningcity",)
               ) -> Callable[[Any], str]:
    """Translate strings outside a request (command line, files) in ``locale`` ('zh-CN',
    'en'...; default zh-CN), with the catalogs of ``packages`` (``<package>/locale``)."""
    name = normalise(locale) or DEFAULT_LOCALE
    dirs = [str(Path(importlib.import_module(p).__file__).parent / "locale") for p in packages]
    return make_localizer(name, dirs).translate


def includeme(config: Any) -> None:
    config.set_locale_negotiator(locale_negotiator)
    config.add_translation_dirs("learningcity:locale/")
    config.add_subscriber(remember_choice, NewResponse)
    config.add_request_method(lambda r: r.localizer.translate, "translate", reify=True)
