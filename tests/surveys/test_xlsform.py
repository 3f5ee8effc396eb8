"""XLSForm-like workbooks: the default instrument's two forms agree, hand-made workbooks
read as XLSForm authors expect, and a broken workbook is refused with every row named."""
from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from surveys.defaults.build_xlsx import build
from surveys.definition import (
    Choice,
    Page,
    Question,
    RatingItem,
    Survey,
    Text,
    normalise,
    read_bank,
    read_json,
)
from surveys.documents import load_survey
from surveys.xlsform import read_xlsform
from surveys.xlsform_export import write_xlsform

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = ROOT / "surveys" / "defaults"
BANK = ROOT / "itembank" / "demo" / "items.json"


def workbook(path, survey_rows, choices_rows, settings_rows):
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in (("survey", survey_rows), ("choices", choices_rows),
                        ("settings", settings_rows)):
        ws = book.create_sheet(title)
        for row in rows:
            ws.append(row)
    book.save(path)
    return path


def test_default_json_and_xlsx_are_the_same_survey():
    bank = read_bank(BANK)
    from_json = read_json(DEFAULTS / "learning_needs.json", bank=bank)
    from_xlsx = read_xlsform(DEFAULTS / "learning_needs.xlsx", bank=bank)
    assert from_json.ok, from_json.summary()
    assert from_xlsx.ok, from_xlsx.summary()
    assert normalise(from_xlsx.survey) == normalise(from_json.survey)


def test_committed_xlsx_is_what_build_makes(tmp_path):
    """Cell by cell, so a hand edit of the spreadsheet (or a stale build) shows up."""
    fresh = build(target=tmp_path / "fresh.xlsx")
    old = openpyxl.load_workbook(DEFAULTS / "learning_needs.xlsx")
    new = openpyxl.load_workbook(fresh)
    assert old.sheetnames == new.sheetnames == ["survey", "choices", "settings"]
    for name in old.sheetnames:
        assert [list(r) for r in old[name].iter_rows(values_only=True)] == [
            list(r) for r in new[name].iter_rows(values_only=True)], name


HEADER = ["type", "name", "label::Chinese (zh)", "label::English (en)", "hint::zh", "hint::en",
          "required", "relevant", "constraint", "constraint_message::zh",
          "constraint_message::en", "parameters", "item_code", "reverse"]
CHOICES = [["list_name", "name", "label::zh", "label::en"],
           ["yn", "yes", "是", "Yes"], ["yn", "no", "否", "No"],
           ["fruit", "apple", "苹果", "Apple"], ["fruit", "pear", "梨", "Pear"],
           ["fruit", "other", "其他", "Other"],
           ["agree5", 1, "完全不同意", "Strongly disagree"], ["agree5", 2, "不太同意", "Disagree"],
           ["agree5", 3, "说不清", "Not sure"], ["agree5", 4, "比较同意", "Agree"],
           ["agree5", 5, "完全同意", "Strongly agree"]]
SETTINGS = [["form_id", "version", "title::zh", "title::en"], ["hand", 3, "手写", "By hand"]]


def test_a_hand_made_xlsform_reads(tmp_path):
    rows = [HEADER,
            ["begin group", "p1", "第一页", "Page one"],
            ["select_one yn", "likes", "喜欢水果吗？", "Do you like fruit?", None, None, "yes"],
            ["select_multiple fruit or_other", "which", "哪些？", "Which?", "可多选", "Any",
             "yes", "${likes} = 'yes'", "count-selected(.) <= 2", "最多两项", "At most two"],
            ["integer", "n", "几个？", "How many?", None, None, "TRUE", None, None, None, None,
             "min=0 max=20"],
            ["decimal", "kg", "几公斤？", "How many kg?", None, None, None, None, None, None,
             None, "min=0.5"],
            ["date", "day", "哪天？", "Which day?"],
            ["month", "mon", "哪月？", "Which month?"],
            ["note", "bye", "谢谢", "Thanks"],
            ["end group"],
            ["begin_group", "p2", "第二页", "Page two", None, None, None, "${likes} = 'yes'"],
            ["begin_rating agree5", "mot", "同意吗？", "Agree?", "按真实想法", "Be honest"],
            ["rating", "mot_001", None, None, None, None, None, None, None, None, None, None,
             "MOT-001"],
            ["rating", "mot_006", None, None, None, None, None, None, None, None, None, None,
             "MOT-006", "yes"],
            ["end_rating"],
            ["end_group"]]
    path = workbook(tmp_path / "hand.xlsx", rows, CHOICES, SETTINGS)
    report = read_xlsform(path, bank=read_bank(BANK))
    assert report.ok, report.summary()
    s = report.survey
    assert (s.id, s.version, s.title) == ("hand", 3, Text("手写", "By hand"))
    which = s.question("which")
    assert (which.type, which.choices, which.other, which.required) == (
        "multiple_choice", "fruit", True, True)
    assert which.hint == Text("可多选", "Any")
    assert which.constraint_message == Text("最多两项", "At most two")
    assert (s.question("n").minimum, s.question("n").maximum) == (0, 20)
    assert s.question("kg").minimum == 0.5 and s.question("kg").maximum is None
    assert [q.type for q in s.pages[0].questions] == [
        "single_choice", "multiple_choice", "integer", "decimal", "date", "month", "note"]
    assert s.pages[1].relevant == "${likes} = 'yes'"
    grid = s.question("mot")
    assert grid.type == "rating_grid" and grid.choices == "agree5"
    assert grid.items[0].label.zh == "我学习新东西，是因为它让我感到充实。"  # from the bank
    assert grid.items[1].reverse and grid.items[1].item_code == "MOT-006"
    assert [c.name for c in s.choices("agree5")] == ["1", "2", "3", "4", "5"]
    assert [f.name for f in s.fields()][:3] == ["likes", "which", "which_other"]
    # without the bank the empty statements are missing texts
    plain = read_xlsform(path)
    assert {(p.where, p.field) for p in plain.problems} == {
        ("survey row 13", "label::zh"), ("survey row 13", "label::en"),
        ("survey row 14", "label::zh"), ("survey row 14", "label::en")}


def test_broken_workbook_names_every_row_and_column(tmp_path):
    rows = [HEADER + ["choice_filter", "label::zh"],
            ["text", "loose", "页外", "Outside"],                                   # row 2
            ["begin_group", "p1", "第一页", "Page one"],                           # row 3
            ["select_one yn", "likes", "喜欢吗？", "Like?", None, None, "maybe"],  # row 4
            ["select_one fruit", "f", "哪个？", "Which?", None, None, None,
             "${later} > 2"],                                                        # row 5
            ["integer", "later", "几？", "How many?", None, None, None,
             "selected(${f}, 'banana')", ". = 'x'", None, None, "min=a"],          # row 6
            ["slider", "s", "滑", "Slide"],                                         # row 7
            ["select_one nolist", "x", "无", "None"],                               # row 8
            ["rating", "r1", "甲", "A"],                                            # row 9
            ["begin_rating agree5", "g", "量表", "Scale"],                          # row 10
            ["text", "inside", "里面", "Inside"],                                   # row 11
            ["end_rating"],                                                         # row 12
            ["integer", "likes", "重名", ""],                                       # row 13
            ["begin_group", "p2", "第二页", "Page two"]]                           # row 14
    choices = CHOICES + [["fruit", "pear", "又一个梨", "Pear again"]]              # row 12
    settings = [["form_id", "version", "title::zh", "title::en"], ["1bad", "v2", "题", ""]]
    path = workbook(tmp_path / "broken.xlsx", rows, choices, settings)
    report = read_xlsform(path)
    assert report.survey is None
    got = {(p.where, p.field): (p.subject, p.message) for p in report.problems}

    def has(where, fld, fragment, subject=None):
        subject_msg = got.get((where, fld))
        assert subject_msg is not None and fragment in subject_msg[1], (
            where, fld, report.summary())
        if subject is not None:
            assert subject_msg[0] == subject

    assert {p.message for p in report.problems if p.where == "survey row 1"} == {
        "unknown column 'choice_filter' (choice filters are not supported)",
        "column 'label::zh' appears twice"}
    has("survey row 2", "type", "between begin_group and end_group")
    has("survey row 4", "required", "'maybe' is not yes/no", "question 'likes'")
    has("survey row 5", "relevant", "${later} comes later", "question 'f'")
    has("survey row 6", "relevant", "'banana' is not a choice of ${f}", "question 'later'")
    has("survey row 6", "constraint", "compares '.' (a number) with 'x'")
    has("survey row 6", "parameters", "'a' is not a number")
    has("survey row 7", "type", "unknown type 'slider'")
    has("survey row 8", "choices", "unknown choice list 'nolist'")
    has("survey row 9", "type", "inside begin_rating")
    has("survey row 11", "type", "only rating rows")
    has("survey row 10", "items", "at least one item")
    has("survey row 13", "name", "already used (survey row 4)")
    has("survey row 13", "label::en", "missing")
    has("survey row 14", "type", "pages cannot be nested", "page 'p2'")
    has("survey row 3", "type", "not closed with end_group", "page 'p1'")
    has("choices row 12", "name", "duplicate choice 'pear' (also choices row 5)")
    has("settings row 2", "id", "must start with a letter")
    has("settings row 2", "version", "whole number")
    has("settings row 2", "title::en", "missing")
    # problems come sheet by sheet, in row order
    order = [p.where for p in report.problems]
    assert order.index("settings row 2") < order.index("survey row 1") < order.index(
        "choices row 12")


def test_unreadable_and_incomplete_workbooks(tmp_path):
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"not a zip")
    report = read_xlsform(junk)
    assert not report.ok and "not a readable XLSX" in report.problems[0].message
    book = openpyxl.Workbook()
    book.active.title = "questions"
    book.save(tmp_path / "empty.xlsx")
    messages = [p.message for p in read_xlsform(tmp_path / "empty.xlsx").problems]
    assert any("no 'survey' sheet" in m for m in messages)
    assert any("no 'settings' sheet" in m for m in messages)


def _every_type_survey() -> Survey:
    t = Text
    lists = {"yn": (Choice("yes", t("是", "Yes")), Choice("no", t("否", "No"))),
             "mc": (Choice("a", t("=甲", "=A")), Choice("other", t("其他", "Other"))),
             "s3": (Choice("1", t("低", "Low")), Choice("2", t("中", "Mid")),
                    Choice("3", t("高", "High")))}
    q = [Question("yn1", "single_choice", t("=SUM(A1)", "Formula-looking label"),
                  choices="yn", required=True),
         Question("mc1", "multiple_choice", t("多", "Many"), hint=t("提示", "Hint"),
                  choices="mc", other=True, relevant="${yn1}='yes'",
                  constraint="count-selected(.)<2", constraint_message=t("一个", "One")),
         Question("i1", "integer", t("整", "Int"), minimum=-5, maximum=5),
         Question("d1", "decimal", t("小", "Dec"), minimum=0.25),
         Question("t1", "text", t("文", "Text")),
         Question("dt1", "date", t("日", "Date"), constraint=". >= '2020-01-01'"),
         Question("m1", "month", t("月", "Month")),
         Question("n1", "note", t("注", "Note")),
         Question("g1", "rating_grid", t("格", "Grid"), choices="s3", required=True,
                  items=(RatingItem("g1a", t("一", "One")),
                         RatingItem("g1b", t("二", "Two"), "X-1", True)))]
    return Survey("every", 7, t("全部", "All"), lists,
                  (Page("p1", t("页", "Page"), tuple(q[:4])),
                   Page("p2", t("页二", "Page two"), tuple(q[4:]), relevant="${i1} > 0")))


def test_write_then_read_gives_the_same_survey(tmp_path):
    survey = _every_type_survey()
    path = tmp_path / "every.xlsx"
    write_xlsform(survey, path)
    report = read_xlsform(path)
    assert report.ok, report.summary()
    assert report.survey == survey
    assert load_survey(path) == survey
    # a label starting with '=' is stored as text, not as a formula
    cell = openpyxl.load_workbook(path)["survey"]["C3"]
    assert cell.value == "=SUM(A1)" and cell.data_type == "s"


def test_load_survey_raises_with_every_problem(tmp_path):
    rows = [HEADER, ["begin_group", "p", "页", "Page"],
            ["integer", "a", "甲", "A", None, None, None, "${b} > 1"],
            ["integer", "b", "乙", ""], ["end_group"]]
    path = workbook(tmp_path / "two.xlsx", rows, CHOICES, SETTINGS)
    with pytest.raises(ValueError) as err:
        load_survey(path)
    text = str(err.value)
    assert "survey row 3, question 'a', relevant: ${b} comes later" in text
    assert "survey row 4, question 'b', label::en: missing" in text


def test_a_workbook_declaring_a_huge_sheet_reads_fast(tmp_path):
    """Sheets declaring A1:XFD200001 for a few cells cost milliseconds (tabular ignores
    the declared dimensions and stops each row at the header's width)."""
    import io
    import re
    import time
    import zipfile

    rows = [HEADER, ["begin_group", "p", "页", "Page"], ["text", "a", "甲", "A"],
            ["end_group"]]
    path = workbook(tmp_path / "small.xlsx", rows, CHOICES, SETTINGS)
    source = zipfile.ZipFile(path)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename.startswith("xl/worksheets/sheet"):
                content = re.sub(rb'<dimension ref="[^"]*" ?/>',
                                 b'<dimension ref="A1:XFD200001"/>', content)
            target.writestr(info, content)
    start = time.perf_counter()
    report = read_xlsform("huge.xlsx", out.getvalue())
    assert time.perf_counter() - start < 2.0
    assert report.ok, report.summary()
    assert [q.name for q in report.survey.questions] == ["a"]
