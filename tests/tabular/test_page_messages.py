"""Issue 16, file messages: a refused upload is shown in the reader's language with its
numbers, on the campaign frame upload, the population-margins upload and the survey import
(zh-CN by default, English with ?lang=en), for real bombs and an old message (empty file).
"""
from __future__ import annotations

import zlib

import pytest
import sqlalchemy as sa

from monitoring.fieldwork.models import FrameUnit
from monitoring.results.models import PopulationMargin
from surveys.models import SurveyDefinition
from tabular.reading import TableError, _letter, read_table

from . import bombs
from .test_importers import _form_with
from .test_messages import small_ratio

WIDE_CSV = b"," * 1500 + b"id\n1\n"
LONG_CSV = b"id,x\n1," + b"y" * 40_000 + b"\n"


def _ratio() -> int:
    with pytest.raises(TableError) as caught:
        read_table(small_ratio(), "r.xlsx")
    return caught.value.problems[0].params["ratio"]


RATIO_ZH = ("文件中的“xl/worksheets/sheet1.xml”解压后是压缩大小的 {ratio:,} 倍（最多 100 倍），"
            "可能是压缩炸弹，已拒绝")
RATIO_EN = ("the part 'xl/worksheets/sheet1.xml' unpacks {ratio:,} times its packed size "
            "(at most 100); a zip bomb?")

#: (file, name, zh text, en text) shown for a CSV or XLSX table upload
TABLE_CASES = {
    "too_many_columns": (WIDE_CSV, "t.csv", "第 1 行：表头有 1,501 列；最多只读取 1,000 列",
                         "row 1: the header has 1,501 columns; at most 1,000 are read"),
    "cell_too_long": (LONG_CSV, "t.csv", "第 2 行，'x' 列：有一个单元格超过 32,767 个字符",
                      "row 2, column 'x': a cell longer than 32,767 characters"),
    "zip_ratio": (None, "t.xlsx", RATIO_ZH, RATIO_EN),
    "empty_file": (b"", "t.csv", "文件是空的", "the file is empty"),
}


def _case(code):
    data, name, zh, en = TABLE_CASES[code]
    if data is None:
        ratio = _ratio()
        return small_ratio(), name, zh.format(ratio=ratio), en.format(ratio=ratio)
    return data, name, zh, en


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize("code", sorted(TABLE_CASES))
def test_frame_upload_says_the_refusal_in_the_readers_language(
        code, lang, testapp, login, staff, make_campaign, dbsession):
    data, name, zh, en = _case(code)
    campaign = make_campaign("A")
    login("district_a")
    form = _form_with(testapp.get(f"/campaigns/{campaign.code}/frame?lang={lang}"), "frame")
    form["frame"] = (name, data)
    form["id_column"] = "id"
    form["stratum_columns"] = "id"
    res = form.submit(status=400)
    assert (zh if lang == "zh-CN" else en) in res.text
    assert (en if lang == "zh-CN" else zh) not in res.text
    assert dbsession.scalar(sa.select(sa.func.count(FrameUnit.id))) == 0


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize("code", sorted(TABLE_CASES))
def test_margins_upload_says_the_refusal_in_the_readers_language(
        code, lang, testapp, staff, login, dbsession):
    data, name, zh, en = _case(code)
    login("admin")
    form = testapp.get(f"/admin/margins?lang={lang}").forms["upload"]
    form["name"] = "census"
    form["file"] = (name, data)
    res = form.submit(status=400)
    assert (zh if lang == "zh-CN" else en) in res.text
    assert (en if lang == "zh-CN" else zh) not in res.text
    assert dbsession.scalar(sa.select(sa.func.count(PopulationMargin.id))) == 0


def _survey_book(rows: str) -> bytes:
    """A one-sheet workbook whose sheet is named 'survey' (what the importer reads)."""
    members = bombs.xlsx_members(bombs.sheet_xml(rows))
    for i, member in enumerate(members):
        if member.name == b"xl/workbook.xml":
            book = zlib.decompress(member.packed, -15).replace(b'name="s"', b'name="survey"')
            members[i] = bombs.Member("xl/workbook.xml", book)
    return bombs.zip_bytes(members)


def _survey_cases():
    far = _letter(1500)
    wide = _survey_book('<row r="1">' + bombs.inline("A", 1, "type")
                        + bombs.inline(far, 1, "x") + "</row>")
    long = _survey_book('<row r="1">' + bombs.inline("A", 1, "type") + '</row><row r="2">'
                        + bombs.inline("A", 2, "y" * 40_000) + "</row>")
    ratio = _ratio()
    return {
        "column_past_cap": (wide, f"工作表 's'，第 1 行：{far} 列有内容，超出了读取的前 1,000 列",
                            f"sheet 's', row 1: a value in column {far}, past the 1,000 "
                            "columns read"),
        "cell_too_long": (long, "工作表 's'，第 2 行，'A' 列：有一个单元格超过 32,767 个字符",
                          "sheet 's', row 2, column 'A': a cell longer than 32,767 "
                          "characters"),
        "zip_ratio": (small_ratio(), RATIO_ZH.format(ratio=ratio),
                      RATIO_EN.format(ratio=ratio)),
        "empty_file": (b"", "文件是空的", "the file is empty"),
    }


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize("code", ["column_past_cap", "cell_too_long", "zip_ratio",
                                  "empty_file"])
def test_survey_import_says_the_refusal_in_the_readers_language(
        code, lang, testapp, surveys_demo, staff, login, dbsession):
    data, zh, en = _survey_cases()[code]
    zh, en = (zh.replace("工作表 's'", "工作表 'survey'"),
              en.replace("sheet 's'", "sheet 'survey'"))
    login("researcher")
    before = dbsession.scalar(sa.select(sa.func.count(SurveyDefinition.id)))
    form = testapp.get(f"/research/surveys?lang={lang}").forms["import-form"]
    form["file"] = ("form.xlsx", data)
    res = form.submit(status=400)
    assert (zh if lang == "zh-CN" else en) in res.text
    assert (en if lang == "zh-CN" else zh) not in res.text
    assert dbsession.scalar(sa.select(sa.func.count(SurveyDefinition.id))) == before
