"""Answer rules of the XLSForm additions: repeats (instance keys), choice filters,
calculations, defaults of read-only questions, required_message, time/datetime/range.

Surveys are built as dataclasses (no validation), so a rule can be tested before the
validator knows every construct (a range with min/max, for one)."""
from __future__ import annotations

import pytest

from surveys.answers import (
    NOT_A_CHOICE,
    NOT_DATETIME,
    NOT_TIME,
    REQUIRED,
    UNKNOWN,
    AnswerError,
    answer_sheet,
    check_answers,
    choices_for,
    clean_answers,
    parse_answer,
    range_values,
    relevance,
)
from surveys.definition import Choice, Page, Question, Repeat, Survey, Text

T = Text("题", "Q")
YES_NO = (Choice("yes", Text("是", "Yes")), Choice("no", Text("否", "No")))
DISTRICTS = (Choice("d1", Text("东区", "East")), Choice("d2", Text("西区", "West")))
STREETS = (Choice("s11", Text("一街", "First"), (("district", "d1"),)),
           Choice("s12", Text("二街", "Second"), (("district", "d1"),)),
           Choice("s21", Text("三街", "Third"), (("district", "d2"),)))


def q(name: str, type_: str = "integer", **kw) -> Question:
    return Question(name, type_, T, **kw)


def survey(*pages: Page) -> Survey:
    return Survey("s", 1, T, {"yn": YES_NO, "district": DISTRICTS, "street": STREETS},
                  tuple(pages))


HOUSEHOLD = survey(
    Page("home", T, (q("size", required=True),)),
    Page("member", T, (q("who", "text", required=True),
                       q("age", required=True, maximum=120, minimum=0),
                       q("works", "single_choice", choices="yn",
                         relevant="${age} >= 16")),
         repeat=Repeat("${size}", maximum=4)),
    Page("end", T, (q("total", "calculate", calculation="${size} * 10"),)))


def test_repeat_instances_follow_the_count_and_see_their_own_answers():
    answers = {"size": 2, "who[1]": "Li", "age[1]": 40, "works[1]": "yes",
               "who[2]": "Mei", "age[2]": 9, "works[2]": "no", "who[3]": "gone"}
    on = relevance(HOUSEHOLD, answers)
    assert on["works[1]"] is True and on["works[2]"] is False  # ${age} of its own instance
    assert "who[3]" not in on
    assert clean_answers(HOUSEHOLD, answers) == {
        "size": 2, "who[1]": "Li", "age[1]": 40, "works[1]": "yes", "who[2]": "Mei",
        "age[2]": 9, "total": 20}
    problems = check_answers(HOUSEHOLD, {"size": 2, "who[1]": "Li", "age[1]": 200})
    assert {(p.name, p.message.en[:11]) for p in problems} == {
        ("age[1]", "Please ente"), ("who[2]", REQUIRED.en[:11]), ("age[2]", REQUIRED.en[:11])}
    assert answer_sheet(HOUSEHOLD, {"size": 9}).counts == {"member": 4}  # clamped to max
    assert answer_sheet(HOUSEHOLD, {"size": -1}).counts == {"member": 0}
    assert [p.name for p in check_answers(HOUSEHOLD, {"size": 1, "age": 3, "who[9]": "x"})
            ] == ["age", "who[9]", "who[1]", "age[1]"]  # keys the survey cannot have


def test_a_repeat_without_count_takes_the_residents_count():
    s = survey(Page("kids", T, (q("kid", "text", required=True),), repeat=Repeat(None, 3)))
    assert answer_sheet(s, {}).counts == {"kids": 1}  # the first instance is always asked
    answers = {"kids[0]": 2, "kid[1]": "a", "kid[2]": "b", "kid[3]": "c"}
    assert clean_answers(s, answers) == {"kids[0]": 2, "kid[1]": "a", "kid[2]": "b"}
    assert parse_answer(s, "kids[0]", "２") == 2
    assert [p.name for p in check_answers(s, {"kids[0]": 7, "kid[1]": "a"})] == ["kids[0]"]


def test_choice_filter_narrows_choices_and_an_answer_outside_it_is_refused():
    s = survey(Page("where", T, (
        q("district", "single_choice", choices="district", required=True),
        q("street", "single_choice", choices="street", required=True,
          choice_filter="district = ${district}"))))
    assert choices_for(s, "street", {}) == ()  # waits for the district on the same page
    assert relevance(s, {})["street"] is False
    assert [c.name for c in choices_for(s, "street", {"district": "d1"})] == ["s11", "s12"]
    assert check_answers(s, {"district": "d1", "street": "s12"}) == []
    problems = check_answers(s, {"district": "d1", "street": "s21"})
    assert [(p.name, p.message) for p in problems] == [("street", NOT_A_CHOICE)]
    none_left = survey(Page("p", T, (
        q("district", "single_choice", choices="district"),
        q("street", "single_choice", choices="street", required=True,
          choice_filter="district = 'nowhere' and name != ${district}"))))
    assert check_answers(none_left, {"district": "d1"}) == []  # no choice left: skipped
    assert "street" not in clean_answers(none_left, {"district": "d1", "street": "s11"})


def test_calculate_read_only_default_and_required_message():
    s = survey(Page("p", T, (
        q("a", required=True, required_message=Text("要填", "Fill it")),
        q("double", "calculate", calculation="${a} * 2"),
        q("big", "single_choice", choices="yn", relevant="${double} > 10"),
        q("fixed", "text", read_only=True, default="固定"))))
    assert [p.message.en for p in check_answers(s, {})] == ["Fill it"]
    assert clean_answers(s, {"a": 6, "double": 1}) == {"a": 6, "double": 12, "fixed": "固定"}
    assert relevance(s, {"a": 6})["big"] is True and relevance(s, {"a": 5})["big"] is False


def test_time_datetime_and_range_values():
    s = survey(Page("p", T, (q("t", "time"), q("when", "datetime"),
                             q("r", "range", minimum=0, maximum=10, step=2))))
    assert parse_answer(s, "t", "９：０５") == "09:05"
    assert parse_answer(s, "t", "14:30:00") == "14:30"
    assert parse_answer(s, "when", "2024-05-01 14:30") == "2024-05-01T14:30"
    for key, text, message in (("t", "25:00", NOT_TIME), ("when", "2024-02-30T10:00",
                                                          NOT_DATETIME)):
        with pytest.raises(AnswerError) as info:
            parse_answer(s, key, text)
        assert info.value.message == message
    assert range_values(s.question("r")) == [0, 2, 4, 6, 8, 10]
    assert check_answers(s, {"t": "09:05", "when": "2024-05-01T14:30", "r": 4}) == []
    assert [p.name for p in check_answers(s, {"r": 3})] == ["r"]
    assert [p.name for p in check_answers(s, {"r": 12})] == ["r"]
    assert [p.message for p in check_answers(s, {"nope": 1})] == [UNKNOWN]


def test_rules_use_the_xlsform_functions_and_bare_filter_columns():
    """jr:choice-name(), today() and a filter naming the choice's own ``name`` column run
    in the answer rules (the expression engine's evaluate with labels and one moment)."""
    s = survey(Page("p", T, (
        q("district", "single_choice", choices="district", required=True),
        q("street", "single_choice", choices="street",
          choice_filter="district = ${district} and name != 's12'"),
        q("shout", "calculate",
          calculation="concat(jr:choice-name(${district}, '${district}'), '!')"),
        q("day", "calculate", calculation="today()"))))
    answers = {"district": "d1"}
    assert [c.name for c in choices_for(s, "street", answers)] == ["s11"]
    clean = clean_answers(s, answers)
    assert clean["shout"] == "东区!"
    assert len(clean["day"]) == 10 and clean["day"][4] == "-"
    assert [p.name for p in check_answers(s, {"district": "d1", "street": "s12"})] == [
        "street"]
