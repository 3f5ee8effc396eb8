"""Response exports: CSV with BOM and injection guard, XLSX, SPSS .sav read back with its
labels, legal variable names, and the codebook."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pyreadstat
import pytest

from surveys.definition import Choice, Page, Question, Repeat, Survey, Text, load_survey
from surveys.exports import (
    CODEBOOK_COLUMNS,
    SPSS_RESERVED,
    codebook_rows,
    csv_bytes,
    repeat_rows,
    response_rows,
    sav_bytes,
    variables,
    write_codebook_csv,
    write_csv,
    write_sav,
    write_xlsx,
    xlsx_bytes,
    zip_bytes,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def survey():
    return load_survey(ROOT / "surveys" / "defaults" / "learning_needs.json")


RESPONSES = [
    {"age_band": "70+", "sex": "female", "district": "D06", "street": "=cmd|' /C calc'!A0",
     "occupation": "other", "occupation_other": "+放羊", "education": "primary",
     "topics": ["health", "other"], "topics_other": "太极拳", "channels": ["elderly_university"],
     "barriers": ["distance"], "times": ["weekday_day"], "community_training": "yes",
     "training_times": 12, "training_last": "2024-05", "elder_education": "regular",
     "sat_overall": "5", "mot_001": "4", "mot_006": "2", "suggestions": "多开手机课"},
    {"age_band": "30-44", "sex": "male", "district": "D01", "occupation": "industrial_worker",
     "education": "senior", "topics": ["smart_manufacturing"], "channels": ["online"],
     "barriers": ["no_time"], "times": ["weekday_evening", "weekend"],
     "community_training": "no", "elder_education": "never"},  # skipped: not exported
    {},  # a respondent who stopped at once
]


def test_variable_names_are_legal_spss_names(survey):
    names = [v.name for v in variables(survey)]
    assert len({n.lower() for n in names}) == len(names)
    for name in names:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name), name
        assert name.upper() not in SPSS_RESERVED and not name.endswith("_")
    assert names[:4] == ["respondent_id", "age_band", "sex", "district"]
    assert "topics_health" in names and "topics_other" in names
    assert "topics_other_text" in names  # the specify text of topics_other
    assert names.count("mot_001") == 1


def test_awkward_names_are_made_legal_and_unique():
    t = Text("文", "text")
    long = "q" * 40
    lists = {"odd": (Choice("70+", t), Choice("18-29", t), Choice("b", t),
                     Choice("x" * 32, t), Choice("上海", t))}
    questions = (Question("a_b", "integer", t), Question("a", "multiple_choice", t,
                                                         choices="odd"),
                 Question("to", "text", t), Question(long, "multiple_choice", t, choices="odd"),
                 Question("respondent_id", "text", t))
    s = Survey("odd", 1, t, lists, (Page("p", t, questions),))
    names = [v.name for v in variables(s)]
    assert names[:8] == ["respondent_id", "a_b", "a_70", "a_18_29",
                         "a_b_2",                  # a + b clashes with question a_b
                         "a_" + "x" * 32,
                         "a_5",                    # no ASCII in the choice: its position
                         "to_x"]                   # TO is an SPSS keyword
    assert names[11] == "q" * 40 + "_" + "x" * 23  # cut to 64 characters
    assert names[-1] == "respondent_id_2"          # the answer key gets a new name
    assert all(len(n) <= 64 for n in names)
    assert len({n.lower() for n in names}) == len(names)
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", n) for n in names)


def test_csv_has_bom_one_row_per_respondent_and_no_formulas(survey, tmp_path):
    path = tmp_path / "r.csv"
    write_csv(survey, RESPONSES, path, ids=["A1", "A2", "A3"])
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 3
    first, second, empty = rows
    assert first["respondent_id"] == "A1"
    assert first["street"] == "'=cmd|' /C calc'!A0"          # neutralised
    assert first["occupation_other_text"] == "'+放羊"
    assert first["age_band"] == "70+" and first["training_times"] == "12"
    assert (first["topics_health"], first["topics_other"], first["topics_arts"]) == (
        "1", "1", "0")
    assert first["topics_other_text"] == "太极拳"
    assert first["mot_001"] == "4" and first["training_last"] == "2024-05"
    assert second["elder_education"] == ""   # not asked below 60: not exported
    assert second["times_weekend"] == "1" and second["times_holiday"] == "0"
    assert empty["topics_health"] == "" and empty["age_band"] == ""  # missing, not 0
    assert list(rows[0]) == [v.name for v in variables(survey)]


def test_xlsx_opens_with_responses_and_codebook(survey, tmp_path):
    path = tmp_path / "r.xlsx"
    write_xlsx(survey, RESPONSES, path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["responses", "codebook"]
    ws = book["responses"]
    header = [c.value for c in ws[1]]
    assert header == [v.name for v in variables(survey)]
    assert ws.max_row == 4
    row = {h: c for h, c in zip(header, ws[2])}
    assert row["street"].value == "=cmd|' /C calc'!A0" and row["street"].data_type == "s"
    assert row["mot_001"].value == 4 and row["sat_overall"].value == 5  # numeric scale
    assert row["age_band"].value == "70+" and row["training_times"].value == 12
    assert row["topics_health"].value == 1
    assert book["codebook"].cell(1, 1).value == "variable"


def test_sav_reopens_with_labels_and_values(survey, tmp_path):
    path = tmp_path / "r.sav"
    write_sav(survey, RESPONSES, path)
    frame, meta = pyreadstat.read_sav(str(path))
    assert list(frame.columns) == [v.name for v in variables(survey)]
    assert len(frame) == 3
    labels = meta.column_names_to_labels
    assert labels["age_band"] == "您的年龄是？"
    assert labels["topics_health"] == "您想学习哪些方面的内容？：健康养生"
    assert labels["mot_001"] == "我学习新东西，是因为它让我感到充实。"
    values = meta.variable_value_labels
    assert values["age_band"] == {1: "18-29岁", 2: "30-44岁", 3: "45-59岁", 4: "60-69岁",
                                  5: "70岁及以上", -8: "未询问（跳答）", -9: "未作答"}
    assert values["mot_001"][1] == "完全不同意" and values["mot_001"][5] == "完全同意"
    assert values["topics_health"] == {0: "未选", 1: "选中", -8: "未询问（跳答）",
                                       -9: "未作答"}
    first = frame.iloc[0]
    assert first["respondent_id"] == 1
    assert first["age_band"] == 5                 # 70+ is the 5th choice
    assert first["district"] == 6
    assert first["mot_001"] == 4 and first["mot_006"] == 2  # raw answers, not reversed
    assert first["topics_health"] == 1 and first["topics_arts"] == 0
    assert first["training_times"] == 12
    assert first["street"] == "=cmd|' /C calc'!A0"
    assert first["topics_other_text"] == "太极拳"
    assert first["training_last"] == "2024-05"
    assert np.isnan(frame.iloc[1]["elder_education"])
    assert np.isnan(frame.iloc[2]["topics_health"])
    assert meta.file_label == "市民学习需求与参与情况调查"
    assert meta.variable_measure["mot_001"] == "ordinal"
    assert meta.variable_measure["training_times"] == "scale"


def test_sav_dates_and_long_labels(tmp_path):
    t = Text("很长的题目" * 80, "long")
    lists = {"c": (Choice("a", Text("很长的选项" * 40, "long")), Choice("b", t))}
    s = Survey("d", 1, Text("日期", "Dates"), lists, (Page("p", t, (
        Question("day", "date", t), Question("pick", "single_choice", t, choices="c"))),))
    path = tmp_path / "d.sav"
    write_sav(s, [{"day": "2024-05-01", "pick": "a"}, {"day": None}], path)
    frame, meta = pyreadstat.read_sav(str(path))
    assert frame.iloc[0]["day"] == dt.date(2024, 5, 1)
    assert len(meta.column_names_to_labels["day"].encode()) <= 255
    assert meta.column_names_to_labels["day"].startswith("很长的题目")
    assert len(meta.variable_value_labels["pick"][1].encode()) <= 120


def test_bad_answers_are_refused(survey, tmp_path):
    with pytest.raises(ValueError, match="respondent 2: unknown answer key"):
        write_csv(survey, [{}, {"age": "30"}], tmp_path / "x.csv")
    with pytest.raises(ValueError, match="respondent 1, sex: 'x' is not a choice"):
        write_csv(survey, [{"sex": "x"}], tmp_path / "x.csv")
    with pytest.raises(ValueError, match="respondent 1, topics: 'banana' is not a choice"):
        write_csv(survey, [{"topics": ["health", "banana"]}], tmp_path / "x.csv")
    with pytest.raises(ValueError, match="respondent 1, topics: expected a list"):
        write_csv(survey, [{"topics": "health"}], tmp_path / "x.csv")
    with pytest.raises(ValueError, match="2 ids for 1 respondents"):
        write_csv(survey, [{}], tmp_path / "x.csv", ids=[1, 2])


def test_codebook_in_both_languages(survey, tmp_path):
    rows = codebook_rows(survey)
    by_var = {r["variable"]: r for r in rows if r["label_zh"]}
    assert by_var["mot_006"]["item_code"] == "MOT-006" and by_var["mot_006"]["reverse"] == "true"
    assert by_var["elder_education"]["relevant"] == "${age_band} = '60-69' or ${age_band} = '70+'"
    assert by_var["topics_other_text"]["relevant"] == "selected(${topics}, 'other')"
    assert by_var["topics_other_text"]["answer_key"] == "topics_other"
    value_rows = [r for r in rows if r["variable"] == "age_band" and r["value"]]
    assert value_rows[0]["value"] == "1 = 18-29"
    assert value_rows[-3]["value_label_en"] == "70 or older"
    assert [r["value"] for r in value_rows[-2:]] == ["-8", "-9"]  # the .sav's missing codes
    assert value_rows[-2]["value_label_zh"].startswith("未询问（跳答）")
    street = [r["value"] for r in rows if r["variable"] == "street" and r["value"]]
    assert street == ["-8", "-9"]
    path = tmp_path / "codebook.csv"
    write_codebook_csv(survey, path)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    text = path.read_text(encoding="utf-8-sig")
    assert "How old are you?" in text and "您的年龄是？" in text


#: stored scale scores as ``scale_results`` gives them (respondent 2 skipped the
#: satisfaction grid; respondent 3 has none; a NaN is exported as missing)
SCORES = [
    {"satisfaction": {"n_items": 5, "n_answered": 1, "sum": 25.0, "method": "sum",
                      "theta": None, "se": None},
     "motivation": {"n_items": 12, "n_answered": 2, "sum": 27.5, "method": "grm",
                    "theta": -0.4321, "se": 0.61}},
    {"motivation": {"n_items": 12, "n_answered": 12, "sum": 40.0, "method": "grm",
                    "theta": 1.25, "se": float("nan")}},
    {},
]
SCORE_VARS = [f"{g}_{p}" for g in ("satisfaction", "motivation", "self_directed")
              for p in ("sum", "n", "theta", "se")]


def test_scale_scores_follow_the_answers_in_every_format(survey, tmp_path):
    names = [v.name for v in variables(survey, scores=True)]
    assert names[-12:] == SCORE_VARS
    assert names[:-12] == [v.name for v in variables(survey)]  # answers unchanged
    write_csv(survey, RESPONSES, tmp_path / "r.csv", scores=SCORES)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text("utf-8-sig"))))
    assert [rows[0][v] for v in SCORE_VARS[:8]] == ["25", "1", "", "", "27.5", "2",
                                                     "-0.4321", "0.61"]
    assert rows[1]["motivation_theta"] == "1.25" and rows[1]["motivation_se"] == ""
    assert rows[1]["satisfaction_sum"] == "" and rows[2]["self_directed_sum"] == ""

    write_xlsx(survey, RESPONSES, tmp_path / "r.xlsx", scores=SCORES)
    book = openpyxl.load_workbook(tmp_path / "r.xlsx")
    sheet = book["responses"]
    header = [c.value for c in sheet[1]]
    first = dict(zip(header, (c.value for c in sheet[2])))
    assert first["motivation_theta"] == pytest.approx(-0.4321, abs=1e-12)
    assert first["satisfaction_theta"] is None
    assert "motivation_theta" in {c.value for c in book["codebook"]["A"]}

    write_sav(survey, RESPONSES, tmp_path / "r.sav", scores=SCORES)
    frame, meta = pyreadstat.read_sav(str(tmp_path / "r.sav"))
    assert list(frame.columns)[-12:] == SCORE_VARS
    assert frame.iloc[0]["motivation_sum"] == 27.5
    assert frame.iloc[0]["motivation_theta"] == pytest.approx(-0.4321, abs=1e-12)
    assert np.isnan(frame.iloc[1]["motivation_se"]) and np.isnan(frame.iloc[2]["motivation_n"])
    labels = meta.column_names_to_labels
    assert labels["motivation_theta"].startswith("学习的想法（motivation）：IRT能力估计值θ")
    assert labels["self_directed_se"] == "自己学习（self_directed）：θ的标准误"
    assert meta.variable_measure["motivation_sum"] == "scale"
    assert meta.original_variable_types["motivation_theta"] == "F8.3"


def test_scale_scores_in_the_codebook(survey, tmp_path):
    assert not [r for r in codebook_rows(survey) if r["type"].startswith("scale_score")]
    rows = {r["variable"]: r for r in codebook_rows(survey, scores=True)
            if r["type"].startswith("scale_score")}
    assert list(rows) == SCORE_VARS
    mot = rows["motivation_sum"]
    assert mot["question"] == "motivation" and mot["page"] == "why_learn"
    assert mot["type"] == "scale_score:sum"
    assert mot["label_en"].startswith("Why you learn (motivation): sum score")
    assert mot["item_code"].split()[:6] == ["MOT-001", "MOT-002", "MOT-003", "MOT-004",
                                             "MOT-005", "-MOT-006"]  # - = reverse-keyed
    assert "${community_training} = 'yes'" in rows["satisfaction_se"]["relevant"]
    write_codebook_csv(survey, tmp_path / "cb.csv", scores=True)
    assert "motivation_theta" in (tmp_path / "cb.csv").read_text("utf-8-sig")


def test_bad_scale_scores_are_refused(survey, tmp_path):
    with pytest.raises(ValueError, match="2 score sets for 3 respondents"):
        write_csv(survey, RESPONSES, tmp_path / "x.csv", scores=SCORES[:2])
    with pytest.raises(ValueError, match="respondent 1: scores of unknown rating grid"):
        write_csv(survey, [{}], tmp_path / "x.csv", scores=[{"age_band": {"sum": 1}}])
    with pytest.raises(ValueError, match="respondent 1, motivation theta: 'high' is not"):
        write_csv(survey, [{}], tmp_path / "x.csv", scores=[{"motivation": {"theta": "high"}}])


def test_sav_user_missing_widths_and_measures(survey, tmp_path):
    """Missing answers say why (-8 not asked, -9 no answer; "-8"/"-9" in text), declared
    as user-missing with value labels; text widths come from the definition, not the
    answers; numbers are scale with whole-number formats."""
    path = tmp_path / "r.sav"
    write_sav(survey, RESPONSES, path)
    plain, _meta = pyreadstat.read_sav(str(path))
    frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
    # respondent 2 said no to community training: how often was not asked
    assert frame.iloc[1]["training_times"] == -8 and np.isnan(plain.iloc[1]["training_times"])
    assert frame.iloc[2]["sex"] == -9 and np.isnan(plain.iloc[2]["sex"])  # asked, no answer
    assert frame.iloc[2]["topics_health"] == -9 and frame.iloc[0]["topics_health"] == 1
    assert frame.iloc[1]["street"] == "-9" and frame.iloc[1]["training_last"] == "-8"
    assert frame.iloc[0]["street"] == "=cmd|' /C calc'!A0"  # padding never shows
    for name in ("sex", "training_times", "topics_health"):
        assert meta.missing_ranges[name] == [{"lo": -8.0, "hi": -8.0},
                                             {"lo": -9.0, "hi": -9.0}], name
    assert meta.missing_ranges["street"] == [{"lo": "-8", "hi": "-8"}, {"lo": "-9", "hi": "-9"}]
    assert meta.variable_value_labels["street"] == {"-8": "未询问（跳答）", "-9": "未作答"}
    widths = meta.variable_storage_width
    assert widths["street"] == 90            # string-length(.) <= 30, 3 bytes a character
    assert widths["suggestions"] == 6000     # the definition's limit for text
    assert widths["occupation_other_text"] == 1500 and widths["training_last"] == 8
    # the same widths when nobody answered the text questions (the next wave appends)
    empty = tmp_path / "e.sav"
    write_sav(survey, [{}], empty)
    _f, again = pyreadstat.read_sav(str(empty))
    assert {k: again.variable_storage_width[k] for k in ("street", "suggestions")} == {
        "street": 90, "suggestions": 6000}
    assert meta.variable_measure["training_times"] == "scale"
    assert meta.variable_measure["sex"] == "nominal"
    assert meta.original_variable_types["training_times"] == "F8.0"
    assert meta.original_variable_types["street"] == "A90"


def test_sav_labels_in_english(survey, tmp_path):
    path = tmp_path / "en.sav"
    write_sav(survey, RESPONSES, path, labels="en")
    _frame, meta = pyreadstat.read_sav(str(path))
    assert meta.file_label.startswith("Residents")
    assert meta.column_names_to_labels["sex"] == "What is your sex?"
    assert meta.variable_value_labels["sex"] == {1: "Female", 2: "Male",
                                                 -8: "not asked (skip logic)",
                                                 -9: "no answer"}
    with pytest.raises(ValueError, match="labels"):
        write_sav(survey, RESPONSES, path, labels="fr")


def test_missing_codes_avoid_real_values():
    from surveys.exports import missing_codes, text_width

    t = Text("题", "q")
    lists = {"c": (Choice("-9", t), Choice("0", t), Choice("1", t))}
    s = Survey("m", 1, t, lists, (Page("p", t, (
        Question("scale", "rating", t, choices="c"),
        Question("temp", "integer", t, minimum=-50),
        Question("age", "integer", t, minimum=0),
        Question("free", "decimal", t),
        Question("note", "text", t, constraint="string-length(.) < 11"))),))
    by = {v.name: v for v in variables(s)}
    assert missing_codes(by["scale"]) == (-98, -99)  # -9 is a choice
    assert missing_codes(by["age"]) == (-8, -9)
    assert missing_codes(by["temp"]) == (-98, -99)
    assert missing_codes(by["free"]) == (-99999998, -99999999)
    assert missing_codes(by["respondent_id"]) is None
    assert text_width(by["note"]) == 30


def test_csv_and_xlsx_load_as_data(survey, tmp_path):
    """One header row: pandas reads numbers as numbers; the XLSX has the codebook sheet
    and no formula anywhere."""
    import pandas as pd

    write_csv(survey, RESPONSES, tmp_path / "r.csv")
    frame = pd.read_csv(tmp_path / "r.csv", encoding="utf-8-sig")
    assert len(frame) == 3 and next(iter(frame.columns)) == "respondent_id"
    assert pd.api.types.is_integer_dtype(frame["respondent_id"])
    assert pd.api.types.is_float_dtype(frame["training_times"])  # 12, blank, blank
    write_xlsx(survey, RESPONSES, tmp_path / "r.xlsx")
    book = openpyxl.load_workbook(tmp_path / "r.xlsx")
    assert book.sheetnames == ["responses", "codebook"]
    cells = [c for ws in book for row in ws.iter_rows() for c in row]
    assert all(c.data_type != "f" for c in cells)
    second = [c.value for c in book["responses"][2]]
    assert second[0] == 1 and isinstance(second[0], int)


# ------------------------------------------------ repeats and the newer question types


def household():
    """Repeats (one counted by an answer, one the resident sizes), instance relevance,
    names SPSS cannot take, the newer types and a third language."""
    t = Text
    lists = {"sex": (Choice("f", t("女", "Female", (("fr", "Femme"),))),
                     Choice("m", t("男", "Male", (("fr", "Homme"),)))),
             "yn": (Choice("yes", t("是", "Yes")), Choice("no", t("否", "No")))}
    blank = t("", "")
    pages = (
        Page("p_started", blank, (Question("started", "start", blank),)),
        Page("home", t("家", "Home", (("fr", "Maison"),)), (
            Question("hh_size", "integer", t("几口人？", "How many people?",
                                             (("fr", "Combien ?"),)), minimum=1, maximum=9),
            Question("hh-size", "text", t("住址", "Address")),
            Question("q.1", "multiple_choice", t("有什么？", "What have you?"), choices="yn"),
            Question("wake", "time", t("几点起？", "Up at?")),
            Question("seen", "datetime", t("何时？", "When?")),
            Question("mood", "range", t("心情", "Mood"), minimum=1, maximum=5, step=1),
            Question("twice", "calculate", blank, calculation="${hh_size} * 2"),
            Question("device", "deviceid", blank))),
        Page("members", t("成员", "Members"), (
            Question("member_sex", "single_choice", t("性别", "Sex", (("fr", "Sexe"),)),
                     choices="sex"),
            Question("member_age", "integer", t("年龄", "Age"), minimum=0, maximum=120),
            Question("member_job", "text", t("工作", "Job"), relevant="${member_age} >= 16")),
            relevant="${hh_size} > 1", repeat=Repeat("${hh_size}")),
        Page("visits", t("走访", "Visits"), (Question("visit_day", "date", t("哪天", "Day")),),
             repeat=Repeat(None, 5)),
        Page("end", t("结束", "End"), (Question("again", "single_choice", t("再来？", "Again?"),
                                                choices="yn"),)))
    return Survey("household", 1, t("住户", "Households", (("fr", "Ménages"),)), lists, pages)


HOUSEHOLDS = [
    {"started": "2024-05-01T09:00:00+08:00", "hh_size": 3, "hh-size": "东街1号",
     "q.1": ["yes"], "wake": "07:30", "seen": "2024-04-30T18:05:00+08:00", "mood": 4,
     "twice": 6, "device": "collect:abc",
     "member_sex[1]": "f", "member_age[1]": 40, "member_job[1]": "教师",
     "member_sex[2]": "m", "member_age[2]": 8, "member_job[2]": "学生",  # not asked at 8
     "member_age[3]": 70,                                                 # sex not answered
     "member_sex[4]": "f",                                                # beyond the count
     "visits[0]": 2, "visit_day[1]": "2024-04-01", "visit_day[2]": "2024-04-03",
     "again": "yes"},
    {"hh_size": 1, "member_sex[1]": "m", "visits[0]": 0},  # members skipped: one person
]


def test_repeats_are_long_tables_and_stay_out_of_the_main_table():
    s = household()
    main = [v.name for v in variables(s)]
    assert main == ["respondent_id", "started", "hh_size", "hh_size_2", "q_1_yes", "q_1_no",
                    "wake", "seen", "mood", "twice", "device", "again"]
    cols, rows = response_rows(s, HOUSEHOLDS, ids=["H1", "H2"])
    assert len(rows) == 2 and rows[0][main.index("again")] == "yes"
    cols, rows = repeat_rows(s, HOUSEHOLDS, "members", ids=["H1", "H2"])
    assert [v.name for v in cols] == ["respondent_id", "repeat", "instance", "member_sex",
                                      "member_age", "member_job"]
    assert rows == [["H1", "members", 1, "f", 40, "教师"],
                    ["H1", "members", 2, "m", 8, None],       # relevance per instance
                    ["H1", "members", 3, None, 70, None]]     # the 4th is beyond hh_size
    _cols, visits = repeat_rows(s, HOUSEHOLDS, "visits")
    assert visits == [[1, "visits", 1, dt.date(2024, 4, 1)], [1, "visits", 2,
                                                              dt.date(2024, 4, 3)]]
    _cols, raw = repeat_rows(s, HOUSEHOLDS, "members", clean=False)
    assert [r[:3] for r in raw][-2:] == [[1, "members", 4], [2, "members", 1]]
    with pytest.raises(ValueError, match="has no repeat 'nope'; its repeats: members, visits"):
        repeat_rows(s, HOUSEHOLDS, "nope")


def test_repeat_tables_in_csv_xlsx_sav_and_zip(tmp_path):
    s = household()
    text = csv_bytes(s, HOUSEHOLDS, repeat="members").decode("utf-8-sig")
    assert text.splitlines() == ["respondent_id,repeat,instance,member_sex,member_age,member_job",
                                 "1,members,1,f,40,教师", "1,members,2,m,8,",
                                 "1,members,3,,70,"]
    assert "member_sex" not in csv_bytes(s, HOUSEHOLDS).decode("utf-8-sig")
    book = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(s, HOUSEHOLDS)))
    assert book.sheetnames == ["responses", "members", "visits", "codebook"]
    assert [c.value for c in book["members"][2]] == [1, "members", 1, "f", 40, "教师"]
    assert book["visits"].max_row == 3
    path = tmp_path / "m.sav"
    path.write_bytes(sav_bytes(s, HOUSEHOLDS, repeat="members"))
    frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
    assert list(frame["instance"]) == [1, 2, 3]
    assert list(frame["member_sex"]) == [1, 2, -9]              # not answered
    assert list(frame["member_job"]) == ["教师", "-8", "-9"]     # not asked at 8
    assert meta.column_names_to_labels["instance"].startswith("第几次")
    assert meta.variable_value_labels["member_sex"][1] == "女"
    archive = zipfile.ZipFile(io.BytesIO(zip_bytes(s, HOUSEHOLDS)))
    assert archive.namelist() == ["household.csv", "household_members.csv",
                                  "household_visits.csv", "household_codebook.csv"]
    assert archive.read("household_members.csv") == csv_bytes(s, HOUSEHOLDS, repeat="members")
    sav_zip = zipfile.ZipFile(io.BytesIO(zip_bytes(s, HOUSEHOLDS, fmt="sav", labels="en")))
    assert sav_zip.namelist()[1] == "household_members.sav"
    with pytest.raises(ValueError, match="use csv or sav"):
        zip_bytes(s, HOUSEHOLDS, fmt="xlsx")


def test_newer_types_have_their_columns_and_spss_types(tmp_path):
    s = household()
    first = dict(zip([v.name for v in variables(s)], response_rows(s, HOUSEHOLDS)[1][0]))
    assert first["wake"] == dt.time(7, 30) and first["mood"] == 4 and first["twice"] == 6
    assert first["started"] == dt.datetime.fromisoformat("2024-05-01T09:00:00+08:00")
    rows = list(csv.DictReader(io.StringIO(csv_bytes(s, HOUSEHOLDS).decode("utf-8-sig"))))
    assert rows[0]["seen"] == "2024-04-30 18:05:00+08:00"   # the offset kept in CSV
    assert rows[0]["wake"] == "07:30:00" and rows[0]["device"] == "collect:abc"
    path = tmp_path / "h.sav"
    write_sav(s, HOUSEHOLDS, path)
    frame, meta = pyreadstat.read_sav(str(path))
    types = meta.original_variable_types
    assert (types["wake"], types["seen"], types["started"]) == ("TIME8", "DATETIME20",
                                                                "DATETIME20")
    assert (types["mood"], types["twice"], types["device"]) == ("F8.0", "A765", "A765")
    assert frame.iloc[0]["wake"] == dt.time(7, 30)
    assert frame.iloc[0]["seen"] == dt.datetime(2024, 4, 30, 18, 5)  # the wall clock
    assert meta.column_names_to_labels["started"] == "开始填写的时间"
    assert meta.column_names_to_labels["twice"] == "计算值：${hh_size} * 2"
    with pytest.raises(ValueError, match=r"respondent 1, wake: '25:00' is not a time"):
        response_rows(s, [{"wake": "25:00"}])
    with pytest.raises(ValueError, match=r"respondent 1, seen: '2024-04-30' is not a datetime"):
        response_rows(s, [{"seen": "2024-04-30"}])


def test_names_spss_cannot_take_are_made_safe_and_keep_the_key():
    s = household()
    by = {v.name: v for v in variables(s)}
    assert by["hh_size_2"].field.name == "hh-size"
    assert by["hh_size_2"].label.zh == "[hh-size] 住址"
    assert by["q_1_yes"].label.en == "[q.1] What have you?: Yes"
    long = "a" * 64
    t = Text("题", "Q")
    wide = Survey("w", 1, t, {"c": (Choice("x" * 20, t), Choice("y", t))}, (Page("p", t, (
        Question(long, "multiple_choice", t, choices="c"),
        Question(long[:63] + ".", "integer", t))),))
    by = {v.name: v for v in variables(wide)}
    # the integer claims its name first; the flags are cut to 64 and numbered
    assert list(by) == ["respondent_id", "a" * 64, "a" * 62 + "_2", "a" * 63]
    assert [by[n].choice for n in list(by)[1:3]] == ["x" * 20, "y"]
    assert by["a" * 63].label.zh == f"[{long[:63]}.] 题"
    names = list(by)
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", n) for n in names)


def test_bad_repeat_answers_are_refused():
    s = household()
    with pytest.raises(ValueError, match=r"respondent 1, member_sex\[1\]: 'x' is not a choice"):
        repeat_rows(s, [{"hh_size": 2, "member_sex[1]": "x"}], "members")
    with pytest.raises(ValueError, match=r"unknown answer key\(s\) hh_size\[1\], members\[1\]"):
        response_rows(s, [{"hh_size[1]": 2, "members[1]": 1}])
    with pytest.raises(ValueError, match=r"visits\[0\]: 'many' is not a number of instances"):
        repeat_rows(s, [{"visits[0]": "many"}], "visits")


def test_codebook_has_every_language_and_the_repeat_tables(tmp_path):
    s = household()
    rows = codebook_rows(s)
    assert list(rows[0]) == ["variable", "answer_key", "page", "question", "type", "label_zh",
                             "label_en", "label_fr", "value", "value_label_zh",
                             "value_label_en", "value_label_fr", "item_code", "reverse",
                             "relevant", "table"]
    by = {(r["variable"], r["table"]): r for r in rows if r["type"]}
    assert by[("hh_size", "")]["label_fr"] == "Combien ?"
    assert by[("member_sex", "members")]["label_fr"] == "Sexe"
    assert by[("member_job", "members")]["relevant"] == "(${hh_size} > 1) and (${member_age} >= 16)"
    assert by[("instance", "members")]["type"] == "instance"
    assert by[("hh_size_2", "")]["answer_key"] == "hh-size"
    fr = [r["value_label_fr"] for r in rows if r["variable"] == "member_sex" and r["value"]]
    assert fr[:2] == ["Femme", "Homme"]
    default = load_survey(ROOT / "surveys" / "defaults" / "learning_needs.json")
    assert tuple(codebook_rows(default)[0]) == CODEBOOK_COLUMNS  # no repeats, zh and en
    write_codebook_csv(s, tmp_path / "cb.csv")
    assert "label_fr" in (tmp_path / "cb.csv").read_text("utf-8-sig").splitlines()[0]
    path = tmp_path / "fr.sav"
    write_sav(s, HOUSEHOLDS, path, labels="fr")
    _frame, meta = pyreadstat.read_sav(str(path))
    assert meta.column_names_to_labels["hh_size"] == "Combien ?"
    assert meta.column_names_to_labels["wake"] == "Up at?"      # no French: English
    assert meta.file_label == "Ménages"
