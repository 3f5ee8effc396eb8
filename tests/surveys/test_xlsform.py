"""XLSForm workbooks: the default instrument's two forms agree, hand-made workbooks read as
XLSForm authors write them (aliases, languages, groups, repeats, the shared conventions),
the older layout still reads, and a broken workbook is refused with every row named."""
from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from pyxform.xls2xform import convert

from surveys.defaults.build_xlsx import build
from surveys.definition import (
    Choice,
    Page,
    Question,
    RatingItem,
    Repeat,
    Survey,
    Text,
    normalise,
    read_bank,
    read_json,
)
from surveys.documents import load_survey, read_definition
from surveys.xlsform import FeatureProblem, _read, read_xlsform
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
    assert all(w.where for w in from_xlsx.warnings)


def test_committed_xlsx_is_what_build_makes(tmp_path):
    """Cell by cell, so a hand edit of the spreadsheet (or a stale build) shows up."""
    fresh = build(target=tmp_path / "fresh.xlsx")
    old = openpyxl.load_workbook(DEFAULTS / "learning_needs.xlsx")
    new = openpyxl.load_workbook(fresh)
    assert old.sheetnames == new.sheetnames == ["survey", "choices", "settings"]
    for name in old.sheetnames:
        assert [list(r) for r in old[name].iter_rows(values_only=True)] == [
            list(r) for r in new[name].iter_rows(values_only=True)], name


ZH, EN, FR = "label::中文 (zh)", "label::English (en)", "label::Français (fr)"
HEADER = ["type", "name", ZH, EN, FR, "hint::中文 (zh)", "hint::English (en)", "required",
          "relevant", "constraint", "constraint_message::中文 (zh)",
          "constraint_message::English (en)", "appearance", "calculation", "default",
          "parameters", "repeat_count", "repeat_max", "rating_scale", "item_code", "reverse",
          "read_only", "required_message::中文 (zh)"]
COL = {name: i for i, name in enumerate(HEADER)}


def row(type_, name=None, zh=None, en=None, **cells):
    """One survey row; keyword cells by column (``fr=``, ``hint_zh=`` ...)."""
    out = [None] * len(HEADER)
    out[0], out[1], out[2], out[3] = type_, name, zh, en
    names = {"fr": FR, "hint_zh": "hint::中文 (zh)", "hint_en": "hint::English (en)",
             "msg_zh": "constraint_message::中文 (zh)",
             "msg_en": "constraint_message::English (en)",
             "required_message": "required_message::中文 (zh)"}
    for key, value in cells.items():
        out[COL[names.get(key, key)]] = value
    return out


CHOICES = [["list_name", "name", ZH, EN, "district"],
           ["yn", "yes", "是", "Yes"], ["yn", "no", "否", "No"],
           ["fruit", "apple", "苹果", "Apple"], ["fruit", "pear", "梨", "Pear"],
           ["fruit", "other", "其他", "Other"],
           ["agree5", 1, "完全不同意", "Strongly disagree"], ["agree5", 2, "不太同意", "Disagree"],
           ["agree5", 3, "说不清", "Not sure"], ["agree5", 4, "比较同意", "Agree"],
           ["agree5", 5, "完全同意", "Strongly agree"],
           ["street", "s1", "一街", "First street", "D01"],
           ["street", "s2", "二街", "Second street", "D02"]]
SETTINGS = [["form_title", "form_title_en", "form_id", "version", "default_language"],
            ["手写", "By hand", "hand", "2024.03", "中文 (zh)"]]


def test_a_form_in_the_shared_conventions_reads(tmp_path):
    rows = [HEADER,
            row("start", "started"),
            row("note", "intro", "您好", "Hello", fr="Bonjour"),
            row("begin_group", "p1", "第一页", "Page one", appearance="field-list"),
            row("select_one yn", "likes", "喜欢水果吗？", "Do you like fruit?",
                required="yes", required_message="请回答"),
            row("select_multiple fruit", "which", "哪些？", "Which?", hint_zh="可多选",
                hint_en="Any", relevant="${likes} = 'yes'",
                constraint="count-selected(.) <= 2", msg_zh="最多两项", msg_en="At most two"),
            row("text", "which_other", "其他水果", "Other fruit",
                relevant="selected(${which}, 'other')"),
            row("integer", "n", "几个？", "How many?", required="TRUE()",
                constraint=". >= 0 and . <= 20 and (. != 13)"),
            row("decimal", "kg", "几公斤？", "How many kg?", constraint=". >= 0.5",
                default="1.5"),
            row("date", "mon", "哪月？", "Which month?", appearance="month-year"),
            row("time", "at", "几点？", "What time?", default="08:30"),
            row("range", "score", "打分", "Score", parameters="start=0 end=10 step=2"),
            row("calculate", "double", calculation="${n} * 2"),
            row("begin_group", "mot", "同意吗？", "Agree?", appearance="field-list",
                rating_scale="agree5", relevant="${likes} = 'yes'"),
            row("select_one agree5", "mot_001", None, None, appearance="likert",
                item_code="MOT-001", required="yes"),
            row("select_one agree5", "mot_006", None, None, appearance="likert",
                item_code="MOT-006", reverse="yes", required="yes"),
            row("end_group"),
            row("end_group"),
            row("begin_repeat", "kids", "孩子", "Children", repeat_count="${n}",
                repeat_max=12),
            row("text", "kid_name", "名字", "Name"),
            row("begin group", "more", "更多", "More", relevant="${kid_name} != ''"),
            row("integer", "kid_age", "年龄", "Age", read_only="yes"),
            row("end group"),
            row("end_repeat"),
            row("text", "street_note", "哪条街？", "Which street?")]
    path = workbook(tmp_path / "hand.xlsx", rows, CHOICES, SETTINGS)
    report = read_xlsform(path, bank=read_bank(BANK))
    assert report.ok, report.summary()
    s = report.survey
    assert (s.id, s.version, s.form_version) == ("hand", 1, "2024.03")
    assert s.title == Text("手写", "By hand")
    assert [p.name for p in s.pages] == ["p_started", "p_intro", "p1", "kids",
                                         "p_street_note"]
    started, intro = s.pages[:2]
    assert [q.name for q in started.questions] == ["started"]  # a page of its own
    assert started.title == Text("", "")  # nothing is shown on it
    assert intro.title == Text("您好", "Hello", (("fr", "Bonjour"),))
    likes, which = s.question("likes"), s.question("which")
    assert likes.required and likes.required_message == Text("请回答", "")
    assert (which.other, which.hint) == (True, Text("可多选", "Any"))  # Q + Q_other folded
    assert which.constraint_message == Text("最多两项", "At most two")
    n = s.question("n")
    assert (n.minimum, n.maximum, n.constraint, n.required) == (0, 20, ". != 13", True)
    kg = s.question("kg")
    assert (kg.minimum, kg.maximum, kg.constraint, kg.default) == (0.5, None, None, "1.5")
    assert s.question("mon").type == "month" and s.question("mon").appearance is None
    assert s.question("at").default == "08:30"
    score = s.question("score")
    assert (score.type, score.minimum, score.maximum, score.step) == ("range", 0, 10, 2)
    assert s.question("double").calculation == "${n} * 2"
    grid = s.question("mot")
    assert (grid.type, grid.choices, grid.required, grid.relevant) == (
        "rating_grid", "agree5", True, "${likes} = 'yes'")
    assert [(i.item_code, i.reverse) for i in grid.items] == [("MOT-001", False),
                                                              ("MOT-006", True)]
    assert grid.items[0].label.zh == "我学习新东西，是因为它让我感到充实。"  # from the bank
    kids = s.pages[3]
    assert kids.repeat == Repeat("${n}", 12)
    assert [(q.name, q.type, q.relevant) for q in kids.questions] == [
        ("kid_name", "text", None), ("more", "note", "${kid_name} != ''"),
        ("kid_age", "integer", "${kid_name} != ''")]
    assert s.question("kid_age").read_only
    assert s.choices("street")[0].extra == (("district", "D01"),)
    assert s.choices("fruit")[0].extra == ()
    # without the bank the empty item labels are missing texts
    plain = read_xlsform(path)
    assert {(p.where, p.field, p.message) for p in plain.problems} == {
        ("survey row 15", ZH, "missing"), ("survey row 16", ZH, "missing")}


def test_choice_filters_read_the_choice_columns(tmp_path):
    rows = [HEADER, row("select_one yn", "district", "区", "District"),
            row("select_one street", "street", "街", "Street"),
            row("select_one street", "street2", "街", "Street")]
    rows[2][HEADER.index("appearance")] = "minimal"
    header = HEADER + ["choice_filter"]
    rows = [header] + [r + [None] for r in rows[1:]]
    rows[2][-1] = "district = ${district}"
    rows[3][-1] = "nowhere = ${district} or ${later} = 'x'"
    survey = _read(workbook(tmp_path / "f.xlsx", rows, CHOICES, SETTINGS),
                   None, None)[0]
    assert survey.question("street").choice_filter == "district = ${district}"
    assert survey.question("street").appearance == "minimal"
    problems = read_xlsform(tmp_path / "f.xlsx").problems
    fields = {(p.where, p.field) for p in problems}
    assert ("survey row 4", "choice_filter") in fields
    messages = " ".join(p.message for p in problems if p.where == "survey row 4")
    assert "'nowhere' is not a column of choice list 'street'" in messages


def test_aliases_languages_and_pyxform_spellings(tmp_path):
    rows = [["type", "name", "label", "label::Chinese (zh-TW)", "label::english",
             "bind::jr:constraintMsg", "bind:constraint", "relevance"],
            ["integer", "age", "年龄", "年齡", "Age", "太大了", ". < 120"],
            ["select one from yn", "ok", "好吗", None, "OK?", None, None, "${age} > 1"],
            ["begin group", "grp", "组", None, "Group"],
            ["imei", "device"],
            ["select all that apply from yn or specify other", "many", "多", None, "Many"],
            ["end group"]]
    choices = [["list name", "name", "label", "label::Chinese (zh)"], ["yn", "yes", "Yes", "是"],
               ["yn", "no", "No", "否"]]
    path = workbook(tmp_path / "alias.xlsx", rows, choices, [["version"], ["7"]])
    report = read_xlsform(path)
    assert report.ok, report.summary()
    s = report.survey
    assert (s.id, s.version, s.title) == ("alias", 7, Text("", "alias"))
    age = s.question("age")
    assert age.label == Text("年龄", "Age", (("zh-TW", "年齡"),))  # zh-TW is not zh
    assert (age.constraint, age.constraint_message) == (". < 120", Text("太大了", ""))
    assert s.question("ok").relevant == "${age} > 1"
    assert s.question("device").type == "deviceid"
    many = s.question("many")
    assert (many.type, many.other) == ("multiple_choice", True)
    assert [c.name for c in s.choices("yn")] == ["yes", "no", "other"]  # or_other adds it
    assert s.choices("yn")[0].label == Text("是", "Yes")  # bare label without CJK: en
    assert [p.name for p in s.pages] == ["p_age", "p_ok", "grp"]
    text = " ".join(w.message for w in report.warnings)
    assert "no form_id" in text and "no form_title" in text
    assert "the choice 'other'" in text
    assert "no Chinese (zh) translation" in text


def test_the_default_language_names_the_bare_columns(tmp_path):
    rows = [["type", "name", "label", "hint", "label::Chinese (zh)"],
            ["text", "a", "Name", "Full name", "姓名"], ["text", "b", "年龄"]]
    settings = [["default_language", "form_title"], ["English (en)", "Ages"]]
    s = read_xlsform(workbook(tmp_path / "d.xlsx", rows, [["list_name"]], settings)).survey
    assert s.title == Text("", "Ages")
    assert s.question("a").label == Text("姓名", "Name")
    assert s.question("a").hint == Text("", "Full name")
    assert s.question("b").label == Text("", "年龄")  # the setting wins over the CJK rule


def test_the_older_layout_still_reads_with_warnings(tmp_path):
    rows = [["type", "name", "label::zh", "label::en", "parameters", "item_code", "reverse"],
            ["begin_group", "p", "页", "Page"],
            ["integer", "n", "几", "How many", "min=1 max=9"],
            ["month", "m", "月", "Month"],
            ["begin_rating agree5", "g", "量表", "Scale"],
            ["rating", "g1", "一", "One", None, "X-1", "true"],
            ["end_rating"],
            ["end_group"]]
    settings = [["form_id", "version", "title::zh", "title::en"], ["old", 2, "旧", "Old"]]
    report = read_xlsform(workbook(tmp_path / "old.xlsx", rows, CHOICES, settings))
    assert report.ok, report.summary()
    s = report.survey
    assert (s.id, s.version, s.title) == ("old", 2, Text("旧", "Old"))
    assert (s.question("n").minimum, s.question("n").maximum) == (1, 9)
    assert s.question("m").type == "month"
    assert s.question("g").items == (RatingItem("g1", Text("一", "One"), "X-1", True),)
    older = {w.where for w in report.warnings if "older layout" in w.message}
    assert older == {"settings row 1", "survey row 3", "survey row 4", "survey row 5"}


def test_out_of_scope_questions_are_left_out_or_refused(tmp_path):
    rows = [["type", "name", "label", "required", "relevant", "calculation", "image"],
            ["geopoint", "where", "Where?"],                                     # row 2
            ["geopoint", "where2", "Where?", "yes"],                              # row 3
            ["image", "photo", "Photo"],                                          # row 4
            ["text", "t", "Text", None, "${photo} != ''", None, "a.jpg"],         # row 5
            ["calculate", "c", None, None, None, "pulldata('f', 'a', 'b', 'c')"],  # row 6
            ["select_one_from_file streets.csv", "st", "Street"],                 # row 7
            ["begin repeat", "r", "R"],                                           # row 8
            ["begin repeat", "rr", "RR"],                                         # row 9
            ["text", "x", "X"],
            ["end repeat"], ["end repeat"]]
    path = workbook(tmp_path / "scope.xlsx", rows, [["list_name", "name", "label"]],
                    [["form_id"], ["scope"]])
    book = openpyxl.load_workbook(path)
    book.create_sheet("entities").append(["list_name", "label"])
    book.save(path)
    report = read_xlsform(path)
    refused = {(p.where, p.field, p.feature) for p in report.problems}
    assert refused == {("survey row 3", "type", "geopoint"),
                       ("survey row 4", "type", "media capture"),
                       ("survey row 9", "type", "nested repeat")}
    assert all(isinstance(p, FeatureProblem) for p in report.problems)
    assert "required" in next(p.message for p in report.problems if p.where.endswith(" 3"))
    assert "${photo}" in next(p.message for p in report.problems if p.where.endswith(" 4"))
    warned = {(w.where, w.feature) for w in report.warnings if isinstance(w, FeatureProblem)}
    assert warned >= {("survey row 2", "geopoint"), ("survey row 6", "function"),
                      ("survey row 7", "select from file"), ("entities", "entities"),
                      ("survey row 1", "media column")}


def test_broken_workbook_names_every_row_and_column(tmp_path):
    rows = [HEADER + ["label::English (en)"],
            row("text", "loose", "页外", "Outside", required="maybe"),              # 2
            row("begin_group", "p1", "第一页", "Page one"),                          # 3
            row("select_one fruit", "f", "哪个？", "Which?", relevant="${later} > 2"),  # 4
            row("integer", "later", "几？", "How many?",
                relevant="selected(${f}, 'banana')", constraint=". = 'x'"),          # 5
            row("slider", "s", "滑", "Slide"),                                       # 6
            row("select_one nolist", "x", "无", "None"),                             # 7
            row("text", "calc", "算", "Calc", calculation="1 + 1"),                  # 8
            row("integer", "d", "默认", "Default", default="abc"),                   # 9
            row("range", "rg", "范围", "Range", parameters="start=0 end=5 step=2"),  # 10
            row("text", "req", "必", "Req", required="${later} > 1"),                # 11
            row("integer", "likes", "重名", ""),                                     # 12
            row("integer", "f", "又一个", "Again"),                                  # 13
            row("end_repeat"),                                                       # 14
            row("begin_repeat", "r", "重复", "Repeat", repeat_count="${inside}"),    # 15
            row("text", "inside", "里面", "Inside"),                                 # 16
            row("end_repeat"),
            row("text", "after", "后", "After", relevant="${inside} = 'a'")]        # 18
    choices = CHOICES + [["fruit", "pear", "又一个梨", "Pear again"]]                 # row 14
    settings = [["form_id", "version"], ["1bad", "v2"]]
    report = read_xlsform(workbook(tmp_path / "broken.xlsx", rows, choices, settings))
    assert report.survey is None
    got = {(p.where, p.field): p for p in report.problems}

    def has(where, fld, fragment, subject=None):
        p = got.get((where, fld))
        assert p is not None and fragment in p.message, (where, fld, report.summary())
        if subject is not None:
            assert p.subject == subject

    has("survey row 1", "label::English (en)", "appears twice")
    has("survey row 2", "required", "'maybe' is not yes/no", "question 'loose'")
    has("survey row 4", "relevant", "${later} comes later", "question 'f'")
    has("survey row 5", "relevant", "'banana' is not a choice of ${f}", "question 'later'")
    has("survey row 5", "constraint", "compares '.' (a number) with 'x'")
    has("survey row 6", "type", "unknown type 'slider'")
    has("survey row 7", "type", "unknown choice list 'nolist'")
    has("survey row 8", "calculation", "use a calculate row")
    has("survey row 9", "default", "'abc' is not a whole number")
    has("survey row 10", "step", "not a whole number of steps")
    has("survey row 11", "required", "required as an expression")
    has("survey row 13", "name", "also the name of survey row 4")
    has("survey row 14", "type", "without begin repeat")
    has("survey row 15", "repeat_count", "${inside} comes later")
    has("survey row 18", "relevant", "inside repeat 'r'")
    has("survey row 3", "type", "not closed with end group", "group 'p1'")
    has("choices row 14", "name", "duplicate choice 'pear' (also choices row 5)")
    assert not any(p.where.startswith("settings") for p in report.problems)
    assert any("'1bad' is not a name" in w.message for w in report.warnings)
    # problems come sheet by sheet, in row order
    order = [p.where for p in report.problems]
    assert order.index("survey row 2") < order.index("survey row 18") < order.index(
        "choices row 14")


def test_unreadable_and_incomplete_workbooks(tmp_path):
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"not a zip")
    report = read_xlsform(junk)
    assert not report.ok and "not a readable XLSX" in report.problems[0].message
    old = read_xlsform("old.xls", b"\xd0\xcf\x11\xe0" + b"\0" * 600)
    assert not old.ok and "not a readable .xls workbook" in old.problems[0].message
    book = openpyxl.Workbook()
    book.active.title = "questions"
    book.save(tmp_path / "empty.xlsx")
    report = read_xlsform(tmp_path / "empty.xlsx")
    assert [p.message for p in report.problems] == ["the workbook has no 'survey' sheet"]
    assert [w.message for w in report.warnings if w.where == "questions"] == [
        "sheet 'questions' is not read"]


def test_xls_workbooks_read_through_documents():
    xls = ROOT / "tests" / "surveys" / "xlsforms" / "pyxform_default_time_demo.xls"
    report = read_definition(xls.name, xls.read_bytes())
    assert report.ok, report.summary()
    assert report.survey.question("start_time").default == "09:30:00"


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
    rows = [HEADER, row("begin_group", "p", "页", "Page"),
            row("integer", "a", "甲", "A", relevant="${b} > 1"),
            row("integer", "b"), row("end_group")]
    path = workbook(tmp_path / "two.xlsx", rows, CHOICES, SETTINGS)
    with pytest.raises(ValueError) as err:
        load_survey(path)
    text = str(err.value)
    assert "survey row 3, question 'a', relevant: ${b} comes later" in text
    assert f"survey row 4, question 'b', {ZH}: missing" in text


def test_a_workbook_declaring_a_huge_sheet_reads_fast(tmp_path):
    """Sheets declaring A1:XFD200001 for a few cells cost milliseconds (tabular ignores
    the declared dimensions and stops each row at the header's width)."""
    import io
    import re
    import time
    import zipfile

    rows = [HEADER, row("begin_group", "p", "页", "Page"), row("text", "a", "甲", "A"),
            row("end_group")]
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


def _convention_workbook(survey: Survey, path: Path) -> Path:
    """The survey written by hand in the shared XLSForm conventions (BRIEF), as the
    XLSForm export writes it, to check that the reader gives the same survey back."""
    langs = (("zh", "中文 (zh)"), ("en", "English (en)"))
    header = ["type", "name", *(f"{b}::{name}" for b in ("label", "hint",
                                                          "constraint_message")
                                for _, name in langs),
              "required", "relevant", "constraint", "appearance", "rating_scale",
              "item_code", "reverse"]

    def r(**cells):
        return [cells.get(h) for h in header]

    def texts(base, text):
        return {f"{base}::{name}": text.language(code) for code, name in langs} if text else {}

    rows = [header]
    for page in survey.pages:
        rows.append(r(type="begin_group", name=page.name, appearance="field-list",
                      relevant=page.relevant, **texts("label", page.title)))
        for q in page.questions:
            common = {"name": q.name, "relevant": q.relevant, **texts("label", q.label),
                      **texts("hint", q.hint),
                      **texts("constraint_message", q.constraint_message)}
            if q.type == "rating_grid":
                rows.append(r(type="begin_group", appearance="field-list",
                              rating_scale=q.choices, **common))
                rows += [r(type=f"select_one {q.choices}", name=i.name, appearance="likert",
                           required="yes" if q.required else None, item_code=i.item_code,
                           reverse="yes" if i.reverse else None, **texts("label", i.label))
                         for i in q.items]
                rows.append(r(type="end_group"))
                continue
            bounds = [f". {op} {v}" for op, v in ((">=", q.minimum), ("<=", q.maximum))
                      if v is not None]
            constraint = " and ".join(bounds + [f"({q.constraint})"] if bounds and q.constraint
                                      else bounds) or q.constraint
            kind = {"single_choice": f"select_one {q.choices}", "month": "date",
                    "multiple_choice": f"select_multiple {q.choices}"}.get(q.type, q.type)
            rows.append(r(type=kind, required="yes" if q.required else None,
                          constraint=constraint,
                          appearance="month-year" if q.type == "month" else None, **common))
            if q.other:
                rows.append(r(type="text", name=q.name + "_other",
                              relevant=f"selected(${{{q.name}}}, 'other')",
                              **{"label::中文 (zh)": "请注明", "label::English (en)": "Specify"}))
        rows.append(r(type="end_group"))
    choices = [["list_name", "name", "label::中文 (zh)", "label::English (en)"]] + [
        [name, c.name, c.label.zh, c.label.en] for name, cs in survey.choice_lists.items()
        for c in cs]
    settings = [["form_title", "form_title_en", "form_id", "version", "default_language"],
                [survey.title.zh, survey.title.en, survey.id, survey.version, "中文 (zh)"]]
    return workbook(path, rows, choices, settings)


def test_the_default_survey_in_the_shared_conventions_reads_back_the_same(tmp_path):
    survey = read_json(DEFAULTS / "learning_needs.json").survey
    path = _convention_workbook(survey, tmp_path / "conv.xlsx")
    report = read_xlsform(path)
    assert report.ok, report.summary()
    assert normalise(report.survey) == normalise(survey)
    assert report.warnings == []
    assert convert(xlsform=str(path)).warnings == []  # and it is XLSForm pyxform converts


def test_every_rule_is_parsed_and_type_checked_in_an_xlsform(tmp_path):
    header = HEADER + ["choice_filter"]
    rows = [header,
            row("begin_group", "p1", "第一页", "Page one", appearance="field-list") + [None],
            row("select_one yn", "district", "区", "District") + [None],            # 3
            row("select_one street", "street", "街", "Street")
            + ["colour = ${district}"],                                             # 4
            row("integer", "n", "几？", "How many?") + [None],                        # 5
            row("calculate", "broken", calculation="${n} +") + [None],               # 6
            row("calculate", "double", calculation="${n} * 2") + [None],             # 7
            row("text", "big", "大", "Big", relevant="${double} > 3") + [None],       # 8
            row("text", "who", "谁", "Who") + [None],                                 # 9
            row("end_group") + [None],
            row("begin_repeat", "kids", "孩子", "Children",
                repeat_count="${who} = 'x'") + [None],                               # 11
            row("text", "kname", "名字", "Name") + [None],
            row("end_repeat") + [None]]
    report = read_xlsform(workbook(tmp_path / "rules.xlsx", rows, CHOICES, SETTINGS))
    assert report.survey is None
    got = {(p.where, p.field): p for p in report.problems}

    def has(where, fld, subject, fragment):
        p = got.get((where, fld))
        assert p is not None and fragment in p.message, (where, fld, report.summary())
        assert p.subject == subject

    has("survey row 4", "choice_filter", "question 'street'",
        "'colour' is not a column of choice list 'street' (columns: district, name)")
    has("survey row 6", "calculation", "question 'broken'", "cannot read '${n} +'")
    has("survey row 11", "repeat_count", "page 'kids'", "must be a number")
    assert not [p for p in report.problems if p.where == "survey row 8"], report.summary()
    assert len(report.problems) == 3, report.summary()
