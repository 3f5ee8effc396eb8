"""Issue 15 item 2: every HTML page, as every role allowed to open it, in zh-CN and in English.

The crawl (inventory: :mod:`tests.site_pages`, on the demo app of ``tests.browser``) fails on

* ``${`` in the text or an attribute (an interpolation left unfilled: a mapping was
  lost), except inside ``<script>`` (JavaScript templates) and data blocks (``<code>``:
  the indicator expressions write variables as ``${name}``);
* in zh-CN: runs of Latin letters in the visible text that are not codes, units or names
  (an untranslated message); see :data:`LATIN_OK` and :data:`LATIN_PATTERNS`;
* in English: Chinese characters in the visible text that are not data of the demo city
  (district names, survey content kept in zh only) or the language switcher's "中文".

Visible text is what a reader sees: text outside ``<script>``/``<style>``, plus the
``title``, ``alt``, ``placeholder`` and ``aria-label`` attributes and the ``value`` of
buttons. Text inside ``<code>``, ``<pre>``, ``<textarea>`` and the values of other inputs
is data (codes, stored content) and is not checked. All problems of a language are
collected over the whole crawl and reported at once.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest

from tests import site_pages
from tests.site_pages import HTML_PAGES, ROLES, USERNAMES

#: language -> (the Accept-Language the crawl sends, the <html lang> the page must have)
LANGUAGES = {"zh": ("zh-CN,zh;q=0.9", "zh-CN"), "en": ("en-GB,en;q=0.9", "en")}

#: Latin words a zh-CN page may show; each is a code, a unit, a format or a proper name
LATIN_OK = frozenset({
    # formats and file types offered for download or upload
    "CSV", "XLSX", "SPSS", "SAV", "PDF", "SVG", "PNG", "JSON", "GeoJSON", "XLSForm",
    "HTML", "ZIP",
    # the GeoJSON object type a district map upload must be (named in the upload's help)
    "FeatureCollection",
    # psychometrics: names of models and estimators used as-is in Chinese texts
    "IRT", "EAP", "MLE", "MAP", "Rasch", "DIF", "RMSE", "SEM",
    # Rasch fit statistics, written infit / outfit in Chinese psychometric texts too
    "infit", "outfit",
    # the field-data tools whose exports the submissions upload reads (proper names)
    "ODK", "Central", "Kobo", "KoboToolbox",
    # web and technical terms kept in Latin letters in Chinese UI
    "API", "URL", "QR", "OpenAPI", "CSRF", "ID",
    # instrument code of the demo ability test (data: Instrument.code)
    "LLA",
    # the language switcher names English in English
    "English",
    # the demo content's source and actor name (data: audit records, calibration sources)
    "demo",
    # the note the demo import writes into each item's status history (ItemStatusChange.note)
    "imported",
    # staff user names shown as "logged in as ..." (data: site_pages.USERNAMES)
    *USERNAMES.values(),
})
#: the same, compared in capitals: estimator and model codes shown in lower case (eap, grm)
LATIN_UPPER_OK = frozenset({"EAP", "MLE", "GRM", "PCM", "GPCM", "RASCH"})
#: whole tokens that are codes or units by their shape (tokens with a digit or ``_`` are
#: codes anyway: ``LLA-001``, ``D01``, ``age_band``, ``v1``)
LATIN_PATTERNS = [
    re.compile(r"[A-Z]{2,}(?:-[A-Z]+)*"),              # capital codes: SRV-LN, invitation codes
    re.compile(r"(?:px|kB|KB|MB|GB|ms)"),              # units
]
#: spans removed from a text before its words are checked
TEXT_PATTERNS = [
    re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"),            # e-mail addresses
    re.compile(r"https?://\S+|www\.\S+"),              # links written out
    re.compile(r"\blearningcity(?: [a-z][\w-]*){1,3}"),  # a command line of the app's CLI
    re.compile(r"\((?:Asia|Europe|America|Africa|Australia)/\w+\)"),  # time zone names
]
#: Chinese text an English page may show: the language switcher
CJK_OK = frozenset({"中文"})
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
LATIN = re.compile(r"[A-Za-z]{3,}")

#: tags whose text is data, not interface text
DATA_TAGS = frozenset({"code", "pre", "textarea", "kbd", "samp"})
SKIP_TAGS = frozenset({"script", "style", "template"})
SEEN_ATTRIBUTES = ("title", "alt", "placeholder", "aria-label")
BUTTON_TYPES = frozenset({"submit", "button", "reset"})


class _Text(HTMLParser):
    """Collects the visible text of a page (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.unfilled: list[str] = []   # text or attributes with "${" (not in data)
        self.skip = 0
        self.data = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIP_TAGS:
            self.skip += 1
        elif tag in DATA_TAGS:
            self.data += 1
        found = dict(attrs)
        self.unfilled += [f"{tag} {name}={value!r}" for name, value in attrs
                          if value and "${" in value]
        for name in SEEN_ATTRIBUTES:
            if found.get(name):
                self.parts.append(str(found[name]))
        if tag == "input" and (found.get("type") or "").lower() in BUTTON_TYPES \
                and found.get("value"):
            self.parts.append(str(found["value"]))

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIP_TAGS and self.skip:
            self.skip -= 1
        elif tag in DATA_TAGS and self.data:
            self.data -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip and not self.data and "${" in data:
            self.unfilled.append(data.strip())
        if not self.skip and not self.data and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str) -> list[str]:
    """The pieces of text a reader sees on ``html`` (data blocks left out)."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser.parts


#: a token of Latin script: a word, or a code made of letters, digits, ``_ . -``
TOKEN = re.compile(r"[A-Za-z][\w.+-]*[A-Za-z0-9]|[A-Za-z]+")


def _is_code(token: str) -> bool:
    """Identifiers, codes and units by their shape: ``LLA-001``, ``age_band``, ``v1``."""
    return (token.strip(".-") in LATIN_OK or token.upper() in LATIN_UPPER_OK
            or any(c.isdigit() or c == "_" for c in token)
            or any(p.fullmatch(token) for p in LATIN_PATTERNS))


def _latin_words(text: str) -> list[str]:
    for pattern in TEXT_PATTERNS:
        text = pattern.sub(" ", text)
    return [t for t in TOKEN.findall(text) if not _is_code(t) and LATIN.search(t)]


def _without(text: str, data: tuple[frozenset[str], re.Pattern[str] | None] | None) -> str:
    if data is None:
        return text
    whole, spans = data
    if text in whole:
        return ""
    return spans.sub(" ", text) if spans is not None else text


#: a stored value that is one lower-case word is a code of an enumeration (a status:
#: "operational", "finished"): a page must show its label, so it is not excused as data
ENUM = re.compile(r"[a-z]+")


def data_pattern(values: set[str]) -> tuple[frozenset[str], re.Pattern[str] | None]:
    """Data of the app (names, item texts...): the values a whole text may equal, and a
    regex for the values that may stand inside a longer text (those with a space or
    Chinese characters, at word boundaries: a single English word inside a sentence is
    still checked, so "information by domain" is not excused by a domain "information")."""
    whole = frozenset(v for v in values if (LATIN.search(v) or CJK.search(v))
                      and not ENUM.fullmatch(v))
    spans = sorted((v for v in whole if len(v) <= 300 and (" " in v or CJK.search(v))),
                   key=len, reverse=True)
    if not spans:
        return whole, None
    return whole, re.compile(r"(?<![A-Za-z])(?:" + "|".join(map(re.escape, spans))
                             + r")(?![A-Za-z])")


def page_problems(html: str, language: str, cjk_ok: frozenset[str] = CJK_OK,
                  data: tuple[frozenset[str], re.Pattern[str] | None] | None = None
                  ) -> list[str]:
    """What is wrong with one page in ``language`` ('zh' or 'en'), as short sentences;
    text equal to a ``data`` value (stored content, names) is not checked."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    problems = [f"unfilled interpolation: {text[:120]!r}" for text in parser.unfilled]
    for text in parser.parts:
        text = _without(text, data)
        if language == "zh":
            words = _latin_words(text)
            if words:
                problems.append(f"English {words} in {text[:120]!r}")
        else:
            words = [w for w in CJK.findall(text) if w not in cjk_ok]
            if words:
                problems.append(f"Chinese {words} in {text[:120]!r}")
    return problems


# --------------------------------------------------------------------------- the crawl

@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo app (built once: ~20-30 s), its staff, the demo ids, a client per role."""
    from tests.browser import make_app  # the demo app imports the whole site: start-up

    app = make_app(tmp_path_factory.mktemp("crawl"))
    site_pages.add_staff(app)
    ids = site_pages.demo_ids(app)
    clients = {role: site_pages.client(app, role, number=17) for role in ROLES}
    yield {"app": app, "ids": ids, "clients": clients, "data": _demo_data(app)}


def _demo_data(app: Any) -> tuple[frozenset[str], re.Pattern[str] | None]:
    """Every text stored in the demo database (names of districts and campaigns, item
    and survey texts in both languages, labels of calibrations, codes, user names...):
    a page shows them as stored, so they are data, not messages to translate."""
    import json  # only the crawl reads the database: optional for the checker

    import sqlalchemy as sa

    values: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            if value[:1] in "[{":
                try:
                    walk(json.loads(value))
                    return
                except ValueError:
                    pass
            values.add(value.strip())

    engine = app.registry.dbsession_factory().get_bind()
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            texts = [c for c in table.columns
                     if isinstance(c.type, sa.String | sa.Text | sa.JSON)]
            if texts:
                for row in conn.execute(sa.select(*texts).limit(5000)):
                    walk(list(row))
    return data_pattern(values)


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_page_in_every_language(site: dict[str, Any], language: str) -> None:
    """Every HTML page x allowed role: no ``${``, no text of the other language."""
    problems: list[str] = []
    for page in HTML_PAGES:
        url = page.url(site["ids"])
        for role in sorted(page.roles):
            accept, html_lang = LANGUAGES[language]
            res = site["clients"][role].get(url, headers={"Accept-Language": accept},
                                            expect_errors=True)
            where = f"{url} [{page.route}] as {role} in {language}"
            if res.status_int != page.status:
                problems.append(f"{where}: status {res.status_int}, expected {page.status}")
                continue
            if "html" not in res.content_type:
                continue               # a redirect (303) or a file: nothing to read
            if f'<html lang="{html_lang}"' not in res.text:
                problems.append(f"{where}: not served in {html_lang}")
            problems += [f"{where}: {p}"
                         for p in page_problems(res.text, language, data=site["data"])]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


_HREF = re.compile(r'<a\b[^>]*\bhref="(/[^"#]*)"')
#: links not followed: downloads and images (checked by their own tests), logging out
_NOT_FOLLOWED = re.compile(r"\.(csv|xlsx|sav|pdf|png|svg|json|zip)(\?|$)|^/static/|^/logout")


def test_no_page_links_where_its_reader_may_not_go(site: dict[str, Any]) -> None:
    """A link shown to a role opens for that role: none of the pages' own links answers
    403 (researchers are not shown district pages, district staff not item pages)."""
    import html as html_lib  # the checker itself needs no unescaping: optional here

    links: dict[str, dict[str, str]] = {role: {} for role in ROLES}
    for page in HTML_PAGES:
        url = page.url(site["ids"])
        for role in sorted(page.roles):
            res = site["clients"][role].get(url, expect_errors=True)
            if res.status_int != 200 or "html" not in res.content_type:
                continue
            for href in _HREF.findall(res.text):
                href = html_lib.unescape(href)
                if not _NOT_FOLLOWED.search(href):
                    links[role].setdefault(href, url)
    refused = []
    for role, found in links.items():
        for href, source in sorted(found.items()):
            status = site["clients"][role].get(href, expect_errors=True).status_int
            if status == 403:
                refused.append(f"{role}: {href} (linked from {source}) answers 403")
    assert sum(map(len, links.values())) > 50  # the crawl found the site's links
    assert not refused, f"{len(refused)} links:\n" + "\n".join(refused)


# --------------------------------------------------------------------------- the checker

def test_checker_reports_interpolation_and_other_language() -> None:
    """The checker itself finds ``${x}``, an English sentence in zh, Chinese in en."""
    zh_page = ("<html><head><title>首页</title><script>var a = 'Hello there';</script>"
               "</head><body><p>欢迎 ${x}</p><p>Please log in first</p>"
               "<button title=\"Close window\">关闭</button>"
               "<p>题目 LLA-001, 下载 CSV, 登录为 admin</p><code>SELECT words</code>"
               "<input type=\"text\" value=\"stored text\"></body></html>")
    problems = page_problems(zh_page, "zh")
    assert any("${" in p for p in problems), problems
    assert any("'Please', 'log'" in p for p in problems), problems
    assert any("'Close', 'window'" in p for p in problems), problems
    assert not any(w in p for p in problems
                   for w in ("Hello", "LLA", "CSV", "admin", "SELECT", "stored")), problems
    en_page = "<p>Welcome</p><p>请先登录</p><a>中文</a><p>District 甲区</p>"
    problems = page_problems(en_page, "en", data=data_pattern({"甲区"}))
    assert problems == ["Chinese ['请先登录'] in '请先登录'"], problems
    assert page_problems("<p>一切正常</p><a>English</a>", "zh") == []
