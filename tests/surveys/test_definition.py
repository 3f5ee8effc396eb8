"""Survey definitions: the default instrument, JSON round trip, validation of a broken
document (every problem at once), relevance of every rule of the default survey, and
the answer checks."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from surveys import expressions as E
from surveys.answers import (
    INVALID,
    REQUIRED,
    AnswerError,
    check_answers,
    clean_answers,
    parse_answer,
    relevance,
)
from surveys.definition import (
    MAX_KEY,
    Choice,
    Page,
    Question,
    Repeat,
    Survey,
    SurveyError,
    Text,
    check,
    default_survey,
    dumps,
    load_survey,
    read_bank,
    read_json,
    survey_from_dict,
    survey_to_dict,
    var_type,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_JSON = ROOT / "surveys" / "defaults" / "learning_needs.json"
BANK_JSON = ROOT / "itembank" / "demo" / "items.json"


@pytest.fixture(scope="module")
def survey():
    return load_survey(DEFAULT_JSON)


@pytest.fixture(scope="module")
def bank():
    return read_bank(BANK_JSON)


# ----------------------------------------------------------- default survey


def test_default_survey_content(survey):
    assert (survey.id, survey.version) == ("learning_needs", 1)
    assert default_survey() == survey
    names = [f.name for f in survey.fields()]
    for needed in ("age_band", "sex", "district", "street", "occupation", "education",
                   "topics", "topics_other", "channels", "barriers", "times",
                   "community_training", "training_times", "elder_education",
                   "sat_overall", "suggestions"):
        assert needed in names
    assert [c.name for c in survey.choices("age_band")] == ["18-29", "30-44", "45-59",
                                                            "60-69", "70+"]
    assert [(c.name, c.label.zh, c.label.en) for c in survey.choices("district")][4] == (
        "D05", "高新技术开发区", "High-tech Development Zone")
    occupations = {c.name for c in survey.choices("occupation")}
    assert {"student", "farmer", "industrial_worker", "migrant_worker", "civil_servant",
            "service", "self_employed", "retired", "other"} == occupations
    topics = {c.name for c in survey.choices("topic")}
    assert {"smart_manufacturing", "industrial_internet", "science", "vocational", "health",
            "heritage", "smart_devices", "arts", "finance", "other"} == topics
    # every text of the document exists in both languages
    for q in survey.questions:
        assert q.label.zh and q.label.en
        for item in q.items:
            assert item.label.zh and item.label.en


def test_rating_blocks_reuse_the_item_bank(survey, bank):
    motivation, self_directed = survey.question("motivation"), survey.question("self_directed")
    assert [i.item_code for i in motivation.items] == [f"MOT-{k:03d}" for k in range(1, 13)]
    assert [i.item_code for i in self_directed.items] == [f"SDL-{k:03d}" for k in range(1, 13)]
    assert motivation.choices == self_directed.choices == "agree5"  # one shared list
    scale = survey.choices("agree5")
    for item in motivation.items + self_directed.items:
        b = bank[item.item_code]
        assert item.label == b.stem
        assert item.reverse == b.reverse
        assert tuple(c.label for c in scale) == b.options
    reversed_codes = {i.item_code for i in motivation.items + self_directed.items if i.reverse}
    assert reversed_codes == {"MOT-006", "MOT-008", "MOT-010", "MOT-012", "SDL-004",
                              "SDL-007", "SDL-010"}
    assert [c.name for c in scale] == ["1", "2", "3", "4", "5"]
    # the default file also passes the item-bank check as a whole
    assert read_json(DEFAULT_JSON, bank=bank).ok


def test_district_choices_are_the_demo_citys_districts(survey):
    """A resident of any demo district can say so (the demo city has twelve)."""
    from learningcity.demo import DEMO_DISTRICTS

    assert [(c.name, c.label.zh, c.label.en) for c in survey.choices("district")] == [
        (code, zh, en) for code, zh, en, _population in DEMO_DISTRICTS]


def test_json_round_trip(survey):
    text = dumps(survey)
    again = survey_from_dict(json.loads(text))
    assert again.ok, again.summary()
    assert again.survey == survey
    assert dumps(again.survey) == text
    assert DEFAULT_JSON.read_text(encoding="utf-8") == text  # the file is in canonical form


# ------------------------------------------------------------ broken document


def _doc():
    return {
        "schema": "learningcity-survey/1", "id": "demo", "version": 2,
        "title": {"zh": "测试", "en": "Test"},
        "choice_lists": {
            "yn": [{"name": "yes", "label": {"zh": "是", "en": "Yes"}},
                   {"name": "no", "label": {"zh": "否", "en": "No"}}],
            "words": [{"name": "low", "label": {"zh": "低", "en": "Low"}},
                      {"name": "high", "label": {"zh": "高", "en": "High"}}],
        },
        "pages": [{"name": "p1", "title": {"zh": "一", "en": "One"}, "questions": [
            {"name": "q1", "type": "single_choice", "label": {"zh": "问一", "en": "Q1"},
             "choices": "yn", "required": True},
            {"name": "n", "type": "integer", "label": {"zh": "次数", "en": "Times"},
             "min": 0, "max": 10, "relevant": "${q1} = 'yes'"},
            {"name": "t", "type": "text", "label": {"zh": "文字", "en": "Text"}},
        ]}],
    }


def test_a_good_small_document_reads():
    report = survey_from_dict(_doc())
    assert report.ok, report.summary()


def test_broken_definition_lists_every_problem():
    doc = _doc()
    questions = doc["pages"][0]["questions"]
    questions[0]["relevant"] = "${n} > 1"                      # later question
    questions[1]["relevant"] = "${q1} = 'maybe'"               # unknown choice value
    questions[1]["constraint"] = ". = 'many'"                  # number vs string
    questions[1]["min"] = 20                                   # min > max
    questions[2]["relevant"] = "selected(${n}, 'x')"           # selected() on a number
    questions[2]["constraint"] = "${ghost} = 1"                # unknown question
    questions.append({"name": "t", "type": "text", "label": {"zh": "重复", "en": ""}})
    questions.append({"name": "loop", "type": "single_choice", "choices": "yn",
                      "label": {"zh": "自己", "en": "Self"}, "relevant": "${loop} = 'yes'"})
    questions.append({"name": "oth", "type": "multiple_choice", "choices": "yn",
                      "other": True, "label": {"zh": "其他", "en": "Other"}})
    questions.append({"name": "g", "type": "rating_grid", "choices": "words",
                      "label": {"zh": "量表", "en": "Scale"},
                      "items": [{"name": "g1", "label": {"zh": "一", "en": "One"}}]})
    questions.append({"name": "bad", "type": "slider", "label": {"zh": "滑块", "en": "Slider"}})
    questions.append({"name": "broken", "type": "text", "label": {"zh": "坏", "en": "Bad"},
                      "relevant": "${q1} = 'yes' and"})
    questions.append({"name": "nc", "type": "single_choice", "choices": "nolist",
                      "label": {"zh": "无", "en": "None"}})
    report = survey_from_dict(doc)
    assert report.survey is None and not report.ok
    found = {(p.subject, p.field): p.message for p in report.problems}

    def has(subject, fld, fragment):
        message = found.get((subject, fld), "")
        assert fragment in message, (subject, fld, report.summary())

    has("question 'q1'", "relevant", "${n} comes later")
    has("question 'n'", "relevant", "'maybe' is not a choice of ${q1}")
    has("question 'n'", "constraint", "compares '.' (a number) with 'many'")
    has("question 'n'", "max", "below min")
    has("question 't'", "relevant", "selected() needs a choice question")
    has("question 't'", "constraint", "${ghost} is not a question")
    has("question 't'", "name", "already used")
    has("question 't'", "label::en", "missing")
    has("question 'loop'", "relevant", "refers to itself")
    has("question 'oth'", "other", "has no choice 'other'")
    has("question 'g'", "choices", "whole-number choice names")
    has("question 'bad'", "type", "unknown type 'slider'")
    has("question 'broken'", "relevant", "cannot read")
    has("question 'nc'", "choices", "unknown choice list 'nolist'")
    assert len(report.problems) >= 14
    # each problem says where it is in the document
    assert any(p.where == "pages[0].questions[1]" for p in report.problems)
    with pytest.raises(SurveyError) as err:
        report.survey_or_raise()
    assert "${n} comes later" in str(err.value)


def test_shape_problems_are_reported_with_content_problems():
    doc = _doc()
    doc["schema"] = "other/1"
    doc["colour"] = "red"
    doc["version"] = "2"
    doc["pages"][0]["questions"][0]["required"] = "yes"
    doc["pages"][0]["questions"][1]["min"] = "0"
    doc["pages"][0]["questions"][2]["label"] = "只有中文"
    report = survey_from_dict(doc)
    fields = {(p.where, p.field) for p in report.problems}
    assert ("survey", "schema") in fields
    assert ("survey", "colour") in fields
    assert ("survey", "version") in fields
    assert ("pages[0].questions[0]", "required") in fields
    assert ("pages[0].questions[1]", "min") in fields
    assert ("pages[0].questions[2]", "label") in fields
    assert ("pages[0].questions[2]", "label::en") in fields


def test_relevance_may_use_earlier_pages_and_pages_may_be_skipped():
    doc = _doc()
    doc["pages"].append({"name": "p2", "title": {"zh": "二", "en": "Two"},
                         "relevant": "${q1} = 'yes'", "questions": [
                             {"name": "why", "type": "text", "required": True,
                              "label": {"zh": "为什么", "en": "Why"}}]})
    survey = survey_from_dict(doc).survey_or_raise()
    assert relevance(survey, {"q1": "yes"})["why"] is True
    assert relevance(survey, {"q1": "no"})["why"] is False
    assert relevance(survey, {})["why"] is False  # unanswered: the comparison is false
    assert check_answers(survey, {"q1": "no"}) == []
    assert [p.name for p in check_answers(survey, {"q1": "yes"})] == ["why"]
    bad = copy.deepcopy(doc)
    bad["pages"][1]["relevant"] = "${why} = 'x'"
    report = survey_from_dict(bad)
    assert any("${why} comes later" in p.message for p in report.problems)


def test_bank_check_reports_changed_items(bank):
    doc = json.loads(DEFAULT_JSON.read_text(encoding="utf-8"))
    grid = doc["pages"][4]["questions"][0]
    grid["items"][0]["label"]["zh"] = "我喜欢学习。"
    grid["items"][5]["reverse"] = False  # MOT-006 is reverse-keyed in the bank
    grid["items"][1]["item_code"] = "MOT-999"
    grid["items"][2]["label"] = {"zh": "", "en": ""}  # filled from the bank
    report = survey_from_dict(doc, bank=bank)
    messages = {(p.subject, p.field): p.message for p in report.problems}
    assert "differs from item bank MOT-001" in messages[("item 'mot_001'", "label::zh")]
    assert "reverse = true" in messages[("item 'mot_006'", "reverse")]
    assert "not in the item bank" in messages[("item 'mot_002'", "item_code")]
    assert ("item 'mot_003'", "label::zh") not in messages
    assert len(report.problems) == 3


# ------------------------------------------------------------------ relevance

BASE = {"age_band": "30-44", "sex": "female", "district": "D01", "occupation": "farmer",
        "education": "junior", "topics": ["health"], "channels": ["online"],
        "barriers": ["no_time"], "times": ["weekend"], "community_training": "no"}

#: (answers changed from BASE, slots that must be asked, slots that must be skipped)
SCENARIOS = [
    ({}, [], ["training_times", "training_last", "elder_education", "sat_content",
              "occupation_other", "topics_other", "channels_other", "barriers_other"]),
    ({"community_training": "yes"}, ["training_times", "training_last", "sat_overall"],
     ["elder_education"]),
    ({"age_band": "60-69"}, ["elder_education"], ["sat_overall", "training_times"]),
    ({"age_band": "70+", "elder_education": "regular"}, ["elder_education", "sat_overall"],
     []),
    ({"age_band": "70+", "elder_education": "sometimes"}, ["sat_overall"], []),
    ({"age_band": "70+", "elder_education": "never"}, [], ["sat_overall"]),
    ({"age_band": "45-59"}, [], ["elder_education"]),
    ({"occupation": "other"}, ["occupation_other"], []),
    ({"topics": ["health", "other"]}, ["topics_other"], []),
    ({"channels": ["other"]}, ["channels_other"], []),
    ({"barriers": ["other"]}, ["barriers_other"], []),
    ({"age_band": None}, [], ["elder_education"]),  # unanswered age: not asked
]


@pytest.mark.parametrize("changes, asked, skipped", SCENARIOS)
def test_relevance_of_the_default_survey(survey, changes, asked, skipped):
    answers = {**BASE, **changes}
    on = relevance(survey, answers)
    for name in asked:
        assert on[name], name
    for name in skipped:
        assert not on[name], name
    # the rating blocks and the background are always asked
    assert on["mot_001"] and on["sdl_012"] and on["age_band"] and on["suggestions"]


def test_every_relevance_rule_of_the_default_survey_is_exercised(survey):
    """Each conditional slot is asked in some scenario above and skipped in another."""
    conditional = {f.name for f in survey.fields()
                   if f.question.relevant or f.page.relevant or f.kind == "other_text"}
    seen_on: set[str] = set()
    seen_off: set[str] = set()
    for changes, _, _ in SCENARIOS:
        for name, on in relevance(survey, {**BASE, **changes}).items():
            (seen_on if on else seen_off).add(name)
    assert conditional  # the default survey has skip logic
    assert conditional <= seen_on
    assert conditional <= seen_off


# -------------------------------------------------------------------- answers


def test_a_complete_answer_sheet_passes(survey):
    answers = {**BASE, "community_training": "yes", "training_times": 4,
               "training_last": "2024-05", "sat_overall": "4", "mot_001": "5",
               "street": "东湖街道", "suggestions": "多开一些手机课。"}
    assert check_answers(survey, answers) == []


def test_answer_problems(survey):
    answers = {**BASE,
               "sex": "unknown",                                  # not a choice
               "topics": ["health", "arts", "science", "finance"],  # more than 3
               "barriers": ["none", "cost"],                       # none + a reason
               "community_training": "yes", "training_times": 0,  # below min 1
               "training_last": "2024-5",                          # not YYYY-MM
               "street": "街" * 31,                                # constraint: <= 30
               "mot_001": "6",                                     # not on the scale
               "nonsense": 1}
    del answers["district"]                                        # required
    problems = {p.name: p.message for p in check_answers(survey, answers)}
    assert problems["sex"].en == "Please choose from the options."
    assert problems["topics"] == Text("最多选3项。", "Please choose at most 3.")
    assert "没有困难" in problems["barriers"].zh
    assert problems["training_times"].en == "Please enter a number from 1 to 200."
    assert "2024-05" in problems["training_last"].en
    assert problems["street"].en == "Please write at most 30 characters."
    assert problems["mot_001"].zh == "请从选项中选择。"
    assert problems["district"] == REQUIRED
    assert "nonsense" in problems
    assert len(problems) == 9


def test_only_asked_questions_are_checked_and_kept(survey):
    answers = {**BASE, "training_times": "lots", "elder_education": "regular",
               "occupation_other": "园丁"}
    assert check_answers(survey, answers) == []  # all three are skipped for this person
    assert check_answers(survey, {**BASE, "community_training": "yes"}, pages=["background"]
                         ) == []
    assert [p.name for p in check_answers(survey, {**BASE, "community_training": "yes"})] == [
        "training_times"]
    cleaned = clean_answers(survey, answers)
    assert "training_times" not in cleaned and "elder_education" not in cleaned
    assert "occupation_other" not in cleaned and cleaned["age_band"] == "30-44"


def test_constraint_without_message_uses_the_default(survey):
    doc = survey_to_dict(survey)
    doc["pages"][1]["questions"][3]["constraint"] = "string-length(.) <= 2"
    del doc["pages"][1]["questions"][3]["constraint_message"]
    other = survey_from_dict(doc).survey_or_raise()
    problems = check_answers(other, {**BASE, "street": "东湖街道"})
    assert [(p.name, p.message) for p in problems] == [("street", INVALID)]


def test_parse_answer_reads_form_text(survey):
    assert parse_answer(survey, "training_times", " １２ ") == 12  # full-width digits
    assert parse_answer(survey, "training_times", "") is None
    assert parse_answer(survey, "topics", ["health", " ", "arts"]) == ["health", "arts"]
    assert parse_answer(survey, "topics", []) is None
    assert parse_answer(survey, "training_last", "2024-05") == "2024-05"
    assert parse_answer(survey, "sex", "female") == "female"
    with pytest.raises(AnswerError) as err:
        parse_answer(survey, "training_times", "三次")
    assert err.value.message.zh == "请填写整数。"
    with pytest.raises(AnswerError):
        parse_answer(survey, "training_last", "2024-13")


# ------------------------------------------------- validation of XLSForm-era fields


def _t(zh: str, en: str = "") -> Text:
    return Text(zh, en or zh.upper())


def _survey(*pages: Page, lists=None) -> Survey:
    lists = lists or {"yn": (Choice("yes", _t("是", "Yes")), Choice("no", _t("否", "No"))),
                      "street": (Choice("s1", _t("一"), (("district", "D1"),)),
                                 Choice("s2", _t("二"), (("district", "D2"),)))}
    return Survey("s", 1, _t("调查", "Survey"), lists, pages)


def _messages(survey: Survey, strict: bool = True) -> dict[tuple[str, str], str]:
    problems, _ = check(survey, strict_texts=strict)
    return {(p.subject, p.field): p.message for p in problems}


def test_new_question_fields_are_checked():
    q = Question
    page = Page("p", _t("页"), (
        q("district", "single_choice", _t("区"), choices="yn"),
        q("street", "single_choice", _t("街"), choices="street",
          choice_filter="district = ${district} and colour = 'x'"),
        q("n", "integer", _t("几"), default="2.5"),
        q("when", "time", _t("几点"), default="25:00"),
        q("stamp", "datetime", _t("时刻"), default="2024-02-30T10:00"),
        q("day", "date", _t("日"), default="2024-02-29"),
        q("pick", "multiple_choice", _t("选"), choices="yn", default="yes maybe"),
        q("score", "range", _t("分"), minimum=0, maximum=10, step=3),
        q("free", "range", _t("分")),
        q("calc", "calculate", Text("", ""), calculation="${n} + ${later}"),
        q("nocalc", "calculate", Text("", "")),
        q("textcalc", "text", _t("文"), calculation="1"),
        q("started", "start", Text("", ""), required=True),
        q("msg", "text", _t("话"), required_message=_t("请填")),
        q("later", "integer", _t("后")),
        q("bad-name.", "text", _t("名")),
        q("_ok-name.2", "text", _t("名")),
    ))
    problems, warnings = check(_survey(page))
    got = {(p.subject, p.field): p.message for p in problems}

    def has(subject, fld, fragment):
        assert fragment in got.get((f"question {subject!r}", fld), ""), (subject, fld, got)

    has("street", "choice_filter", "'colour' is not a column of choice list 'street'")
    has("n", "default", "'2.5' is not a whole number")
    has("when", "default", "not a time")
    has("stamp", "default", "not a date and time")
    has("pick", "default", "'maybe' is not a choice")
    has("score", "step", "not a whole number of steps")
    has("free", "min", "a range needs a start and an end")
    has("free", "step", "a range needs a step")
    has("calc", "calculation", "${later} comes later")
    has("nocalc", "calculation", "missing")
    has("textcalc", "calculation", "only calculate questions")
    has("started", "required", "has no answer to require")
    assert ("question 'day'", "default") not in got  # 2024 is a leap year
    assert ("question 'bad-name.'", "name") not in got  # XML-style names are accepted
    assert ("question 'calc'", "label::zh") not in got  # calculate and meta need no label
    assert [(w.subject, w.field) for w in warnings] == [("question 'msg'", "required_message")]


def test_repeats_are_asked_per_instance_and_closed_to_the_outside():
    q = Question
    pages = (Page("a", _t("前"), (q("k", "integer", _t("几")),)),
             Page("kids", _t("孩子"), (q("kname", "text", _t("名")),
                                        q("kage", "integer", _t("岁"),
                                          relevant="${kname} != ''")),
                  repeat=Repeat("${k}", 12)),
             Page("b", _t("后"), (q("x", "text", _t("文"), relevant="${kage} > 1"),)),
             Page("r2", _t("再"), (q("y", "text", _t("文")),),
                  repeat=Repeat("${y} + 1", 0)))
    got = _messages(_survey(*pages))
    assert "inside repeat 'kids'" in got[("question 'x'", "relevant")]
    assert "${y} comes later" in got[("page 'r2'", "repeat.count")]
    assert "from 1 to 1000" in got[("page 'r2'", "repeat.max")]
    assert not [k for k in got if k[0] in ("page 'kids'", "question 'kage'")]


def test_json_texts_need_both_languages_and_xlsforms_warn_once_per_language():
    page = Page("p", Text("页", ""), (Question("a", "text", Text("", "A")),
                                      Question("b", "text", Text("", "B")),
                                      Question("c", "text", Text("", "", (("fr", "C"),))),
                                      Question("d", "text", Text("", ""))))
    survey = Survey("s", 1, Text("调查", "Survey"), {}, (page,))
    strict = _messages(survey)
    assert strict[("question 'a'", "label::zh")] == "missing"
    assert strict[("page 'p'", "title::en")] == "missing"
    problems, warnings = check(survey, strict_texts=False)
    assert [(p.subject, p.field, p.message) for p in problems] == [
        ("question 'd'", "label::zh", "missing")]
    assert sorted(w.message.split(" translation")[0] for w in warnings) == [
        "2 text(s) have no English (en)", "3 text(s) have no Chinese (zh)"]


def _rules_survey() -> Survey:
    """One of each rule an import must read and type-check, with one mistake in each of
    the first three (the filter's column, the calculation, the repeat count)."""
    q = Question
    lists = {"yn": (Choice("yes", _t("是", "Yes")), Choice("no", _t("否", "No"))),
             "street": (Choice("s1", _t("一"), (("district", "yes"),)),
                        Choice("s2", _t("二"), (("district", "no"),)))}
    return Survey("s", 1, _t("调查", "Survey"), lists, (
        Page("a", _t("前"), (
            q("district", "single_choice", _t("区"), choices="yn"),
            q("areas", "multiple_choice", _t("片"), choices="yn"),
            q("street", "single_choice", _t("街"), choices="street",
              choice_filter="colour = ${district}"),
            q("street2", "single_choice", _t("街"), choices="street",
              choice_filter="district = ${areas}"),
            q("street3", "single_choice", _t("街"), choices="street",
              choice_filter="name != 's2' and district = ${district}"),
            q("n", "integer", _t("几")),
            q("broken", "calculate", Text("", ""), calculation="${n} +"),
            q("double", "calculate", Text("", ""), calculation="${n} * 2"),
            q("big", "text", _t("大"), relevant="${double} > 3"),
            q("who", "text", _t("谁")),
            q("at", "time", _t("几点"), default="09:30:15"),
            q("three", "integer", _t("三"), default="3.0"),
        )),
        Page("kids", _t("孩子"), (q("kname", "text", _t("名")),),
             repeat=Repeat("${who} = 'x'")),
    ))


def test_every_rule_is_parsed_and_type_checked_in_a_json_definition():
    doc = survey_to_dict(_rules_survey())
    report = survey_from_dict(doc, "rules.json")
    assert report.survey is None
    got = {(p.where, p.field): p for p in report.problems}

    def has(where, fld, subject, fragment):
        p = got.get((where, fld))
        assert p is not None and fragment in p.message, (where, fld, report.summary())
        assert p.subject == subject

    has("pages[0].questions[2]", "choice_filter", "question 'street'",
        "'colour' is not a column of choice list 'street' (columns: district, name)")
    has("pages[0].questions[6]", "calculation", "question 'broken'",
        "cannot read '${n} +'")
    has("pages[1]", "repeat.count", "page 'kids'", "must be a number")
    has("pages[0].questions[10]", "default", "question 'at'", "not a time")
    has("pages[0].questions[11]", "default", "question 'three'",
        "not a whole number")
    # a numeric calculation is a number, the name column and a filter over a single
    # choice are well typed; a multiple choice compared in a filter is only a warning
    assert not [p for p in report.problems if p.subject in (
        "question 'big'", "question 'street3'", "question 'street2'")], report.summary()
    assert [(w.subject, w.field) for w in report.warnings] == [
        ("question 'street2'", "choice_filter")]
    assert "${areas} is a multiple choice" in report.warnings[0].message


def test_a_calculation_gives_its_type_to_the_rules_that_use_it():
    survey = _rules_survey()
    assert var_type(survey, survey.field("double")) == E.VarType("number")
    assert var_type(survey, survey.field("broken")) == E.VarType("string")
    q = Question
    page = Page("p", _t("页"), (
        q("when", "date", _t("日")),
        q("calc", "calculate", Text("", ""), calculation="${when}"),
        q("x", "text", _t("文"), relevant="${calc} > 3"),))
    got = _messages(_survey(page))
    assert "compare" in got[("question 'x'", "relevant")], got


def test_answer_keys_fit_the_database():
    """A 64-character name with its "other" text in repeat instance 1000 makes a
    76-character key, which fits; a key longer than MAX_KEY is refused on its question."""
    q = Question
    lists = {"yn": (Choice("yes", _t("是", "Yes")), Choice("other", _t("其他", "Other")))}
    long = "q" * 64

    def survey(maximum: int) -> Survey:
        return _survey(Page("p" * 64, _t("成员"), (
            q(long, "single_choice", _t("选"), choices="yn", other=True),
            q("short", "text", _t("文"))), repeat=Repeat(None, maximum)), lists=lists)

    assert _messages(survey(1000)) == {}
    got = _messages(survey(10 ** 15))
    assert "from 1 to 1000" in got.pop(("page '" + "p" * 64 + "'", "repeat.max"))
    message = got.pop((f"question {long!r}", "name"))
    assert f"'{long}_other[{10 ** 15}]' has 88 characters, more than the {MAX_KEY}" in \
        message
    assert "has 82 characters" in got.pop(("page '" + "p" * 64 + "'", "name"))
    assert got == {}
