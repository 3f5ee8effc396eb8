"""Languages: zh-CN by default, English on request, catalogs complete and compiled."""
from __future__ import annotations

import io

from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from learningcity import i18n_tools


def test_default_language_is_chinese(testapp) -> None:
    res = testapp.get("/")
    assert '<html lang="zh-CN">' in res.text
    assert "终身学习" in res.text


def test_accept_language_english(testapp) -> None:
    res = testapp.get("/", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert '<html lang="en">' in res.text
    assert "Lifelong learning for every resident" in res.text


def test_url_choice_wins_and_is_remembered(testapp) -> None:
    res = testapp.get("/?lang=en", headers={"Accept-Language": "zh-CN"})
    assert "Lifelong learning" in res.text
    assert testapp.cookies["lc_lang"] == "en"
    assert "Staff login" in testapp.get("/login").text
    assert "终身学习" in testapp.get("/?lang=zh-CN").text


def test_accept_language_quality_order(testapp) -> None:
    res = testapp.get("/", headers={"Accept-Language": "fr;q=1, en;q=0.5, zh;q=0.9"})
    assert '<html lang="zh-CN">' in res.text
    res = testapp.get("/", headers={"Accept-Language": "fr, de"})
    assert '<html lang="zh-CN">' in res.text


def test_every_page_links_to_both_languages(testapp) -> None:
    for path in ("/", "/login", "/no-such-page"):
        res = testapp.get(path, expect_errors=True)
        assert 'hreflang="en"' in res.text and 'hreflang="zh-CN"' in res.text


def test_chinese_catalog_is_complete_and_compiled() -> None:
    for package, domain in i18n_tools.CATALOGS.items():
        po = i18n_tools.locale_dir(package) / "zh_CN" / "LC_MESSAGES" / f"{domain}.po"
        catalog = read_po(po.open("rb"), locale="zh_CN")
        untranslated = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
        assert untranslated == [], f"{po}: untranslated {untranslated}"
        # the committed .mo matches the .po (run `learningcity i18n compile`)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        committed = read_mo(po.with_suffix(".mo").open("rb"))
        assert {m.id: m.string for m in read_mo(compiled)} == \
            {m.id: m.string for m in committed}


def test_template_strings_are_in_the_catalog(tmp_path, monkeypatch) -> None:
    """Strings added to templates or code without updating the catalog fail here."""
    for package, domain in i18n_tools.CATALOGS.items():
        pot = tmp_path / f"{domain}.pot"
        monkeypatch.setattr(i18n_tools, "locale_dir", lambda _p: tmp_path)
        i18n_tools.extract(package, domain)
        extracted = {m.id for m in read_po(pot.open("rb")) if m.id}
        monkeypatch.undo()
        po = i18n_tools.locale_dir(package) / "zh_CN" / "LC_MESSAGES" / f"{domain}.po"
        known = {m.id for m in read_po(po.open("rb"), locale="zh_CN") if m.id}
        assert extracted - known == set(), f"run `learningcity i18n update` for {package}"
