"""The XLSForm functions of the expression language: values, empty answers, arity,
regex() limits, choice-filter columns, names with '-' and '.', types, printing."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from surveys import expressions as E
from surveys.expressions import (
    ARITY,
    FUNCTIONS,
    Binary,
    Call,
    Column,
    EvaluationError,
    Num,
    ParseError,
    Ref,
    Str,
    VarType,
    check_types,
    columns,
    evaluate,
    evaluate_columns,
    infer_type,
    parse,
    references,
    to_source,
)

NOW = dt.datetime(2024, 5, 1, 23, 30, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=8)))
LABELS = {("district", "d1"): "东城区", ("district", "d2"): "西城区"}
VALUES = {"name": "王芳", "age": 67, "months": 30, "empty": None, "blank": "",
          "crops": ["maize", "beans"], "district": "d1", "hh-size": 4, "q1.a": "x",
          "_x": 2.5, "phone": "13812345678", "day": "2024-04-30"}


def ev(text, values=VALUES, current=None, **kw):
    kw.setdefault("now", NOW)
    kw.setdefault("choice_label", lambda q, v: LABELS.get((q, v)))
    return evaluate(parse(text, columns="columns" in kw), values, current, **kw)


def same(got, want):
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return got == want and type(got) is type(want)


# ------------------------------------------------------------------ functions

@pytest.mark.parametrize("text, want", [
    # today() and now(): the date and the time (to the second, with the offset) of `now`
    ("today()", "2024-05-01"),
    ("now()", "2024-05-01T23:30:05+08:00"),
    # concat: any number of values; empty is ''; a multiple choice is its names
    ("concat(${name})", "王芳"),
    ("concat(${name}, ' (', ${age}, ')')", "王芳 (67)"),
    ("concat(${empty}, ${blank}, 'x')", "x"),
    ("concat(${crops}, ';', 2.50, ';', true())", "maize beans;2.5;true"),
    ("concat(${empty} + 1)", "NaN"),
    ("concat(1 div 0, -1 div 0)", "Infinity-Infinity"),
    # int: toward zero; NaN stays NaN
    ("int(2.7)", 2), ("int(-2.7)", -2), ("int(${months} div 12)", 2), ("int('7.9')", 7),
    ("int(${empty})", math.nan), ("int('x')", math.nan), ("int(1 div 0)", math.inf),
    # round: halves away from zero, optional digits (negative: tens, hundreds)
    ("round(2.5)", 3), ("round(-2.5)", -3), ("round(2.4999)", 2), ("round(0.5)", 1),
    ("round(2.345, 2)", 2.35), ("round(-2.345, 2)", -2.35), ("round(1.005, 2)", 1.01),
    ("round(1250, -2)", 1300), ("round(${_x})", 3), ("round(2.5, 0)", 3),
    ("round(${empty})", math.nan), ("round(2.5, ${empty})", math.nan),
    ("round(1.23, 400)", 1.23), ("round(1.23, -400)", 0),
    # number: NaN when empty or not a number; spaces around a number are fine
    ("number('12 ')", 12.0), ("number(${age})", 67.0), ("number(true())", 1.0),
    ("number(${empty})", math.nan), ("number('1_000')", math.nan), ("number('abc')", math.nan),
    ("number(${crops})", math.nan),
    # string: '' when empty, numbers without a trailing .0
    ("string(${age})", "67"), ("string(2.0)", "2"), ("string(${empty})", ""),
    ("string(${crops})", "maize beans"), ("string(1 = 1)", "true"),
    # string-length
    ("string-length(${name})", 2), ("string-length(${empty})", 0),
    # coalesce: the first unless it is empty
    ("coalesce(${empty}, 'b')", "b"), ("coalesce(${blank}, ${age})", 67),
    ("coalesce(${name}, 'b')", "王芳"), ("coalesce(${empty}, ${empty})", None),
    # selected-at: 0-based, '' past the end, before the start, or when empty
    ("selected-at(${crops}, 0)", "maize"), ("selected-at(${crops}, 1)", "beans"),
    ("selected-at(${crops}, 2)", ""), ("selected-at(${crops}, -1)", ""),
    ("selected-at(${crops}, 1.9)", "beans"), ("selected-at(${crops}, ${empty})", ""),
    ("selected-at(${empty}, 0)", ""), ("selected-at('a b c', 2)", "c"),
    # jr:choice-name: the label of the choice in the current language
    ("jr:choice-name(${district}, '${district}')", "东城区"),
    ("jr:choice-name('d2', '${district}')", "西城区"),
    ("jr:choice-name('nowhere', '${district}')", ""),
    ("jr:choice-name(${empty}, '${district}')", ""),
    # contains / starts-with / ends-with: on texts; '' is in everything
    ("contains(${phone}, '1234')", True), ("contains(${empty}, 'a')", False),
    ("contains(${empty}, '')", True), ("starts-with(${phone}, '138')", True),
    ("starts-with(${age}, '6')", True), ("ends-with(${phone}, '78')", True),
    ("ends-with(${empty}, 'x')", False),
    # substr: 0-based, end excluded, negative from the end, clamped
    ("substr('abcdef', 1, 3)", "bc"), ("substr('abcdef', 2)", "cdef"),
    ("substr('abcdef', -2)", "ef"), ("substr('abcdef', 0, -1)", "abcde"),
    ("substr('abcdef', 4, 2)", ""), ("substr('abcdef', 3, 100)", "def"),
    ("substr('abcdef', -100, 2)", "ab"), ("substr(${empty}, 0, 2)", ""),
    ("substr('abc', ${empty})", "abc"), ("substr('abc', 1, ${empty})", ""),
    ("substr(${day}, 0, 7)", "2024-04"),
    # boolean / not / true / false / if
    ("boolean(${blank})", False), ("boolean(${empty})", False), ("boolean(${crops})", True),
    ("boolean(0 div 0)", False), ("not(${empty})", True), ("true() != false()", True),
    ("if(${empty} = '', 'none', 'some')", "none"),
    # regex: a search (anchor for a whole match); empty text is ''
    ("regex(${phone}, '^1[3-9][0-9]{9}$')", True), ("regex(${phone}, '234')", True),
    ("regex(${name}, '^[a-z]+$')", False), ("regex(${empty}, '.')", False),
    ("regex(${empty}, '^$')", True), ("regex(${name}, '^\\p{Han}+$')", True),
])
def test_functions_and_their_empty_values(text, want):
    got = ev(text)
    assert same(got, want), (text, got, want)


def test_today_and_now_read_the_given_time_once():
    assert ev("today()", now=dt.datetime(2024, 5, 1, 23, 59, 59,
                                         tzinfo=dt.UTC)) == "2024-05-01"
    assert ev("now()", now=dt.datetime(2024, 1, 2, 3, 4, 5,
                                       tzinfo=dt.UTC)) == "2024-01-02T03:04:05+00:00"
    naive = ev("now()", now=dt.datetime(2024, 1, 2, 3, 4, 5))  # naive = local time
    assert naive.startswith("2024-01-02T03:04:05") and naive[19] in "+-"
    clock = ev("now()", now=None)
    assert dt.datetime.fromisoformat(clock).tzinfo is not None
    assert ev("now() = now()", now=None) is True  # one reading per evaluation
    # a date answer compares with today() as dates do
    assert ev(". <= today()", current="2024-05-01") is True
    assert ev(". <= today()", current="2024-05-02") is False
    assert ev(". <= today()", current=None) is False
    assert ev("${day} < today() and today() > '2023-12-31'") is True


def test_choice_name_needs_the_labels_and_the_question_in_quotes():
    with pytest.raises(EvaluationError, match="choice_label"):
        ev("jr:choice-name(${district}, '${district}')", choice_label=None)
    assert ev("jr:choice-name(${empty}, '${district}')", choice_label=None) == ""
    with pytest.raises(EvaluationError, match="'\\$\\{q\\}'"):
        ev("jr:choice-name(${district}, 'district')")
    asked = []
    ev("jr:choice-name(${crops}, '${crops}')", choice_label=lambda q, v: asked.append((q, v)))
    assert asked == [("crops", "maize beans")]
    assert references(parse("jr:choice-name(${a}, '${district}') = ${b}")) == [
        "a", "district", "b"]


# ---------------------------------------------------------------------- arity

@pytest.mark.parametrize("text, message", [
    ("concat()", "concat() takes at least 1 argument, got 0"),
    ("round()", "round() takes 1 or 2 arguments, got 0"),
    ("round(1, 2, 3)", "round() takes 1 or 2 arguments, got 3"),
    ("substr('a')", "substr() takes 2 or 3 arguments, got 1"),
    ("today(1)", "today() takes 0 arguments, got 1"),
    ("if(1, 2)", "if() takes 3 arguments, got 2"),
    ("selected-at(${a})", "selected-at() takes 2 arguments, got 1"),
    ("coalesce(${a})", "coalesce() takes 2 arguments, got 1"),
    ("jr:choice-name(${a})", "jr:choice-name() takes 2 arguments, got 1"),
    ("int(1, 2)", "int() takes 1 argument, got 2"),
    ("sum(${a})", "unknown function 'sum'"),
    ("jr:itext('x')", "unknown function 'jr:itext'"),
    ("today", "expected '(' after today"),
])
def test_arity_errors_name_the_function(text, message):
    with pytest.raises(ParseError) as err:
        parse(text)
    assert message in err.value.message


def test_the_function_tables_agree_and_are_documented():
    assert FUNCTIONS == {name: low for name, (low, _high) in ARITY.items()}
    assert parse("concat(" + ", ".join(["'a'"] * 50) + ")") == Call("concat", (Str("a"),) * 50)
    for name in ARITY:
        assert f"``{name}(" in E.__doc__, name


# ---------------------------------------------------------------------- regex

def test_regex_literal_patterns_are_checked_when_parsed():
    with pytest.raises(ParseError) as err:
        parse("regex(., '[0-9')")
    assert "not a valid regular expression" in err.value.message
    assert err.value.position == 9  # the pattern
    with pytest.raises(ParseError, match="longer than 500"):
        parse(f"regex(., '{'a' * 501}')")
    with pytest.raises(ParseError, match="repetition count above 1000"):
        parse("regex(., 'a{1001}')")
    with pytest.raises(ParseError, match="multiply to more than"):
        parse("regex(., '((a{100}){100}){2}')")
    assert parse("regex(., '^\\d{4}-\\d{2}-\\d{2}$')")  # ordinary counts are fine
    assert parse("regex(., 'a\\{5000\\}')")  # an escaped brace is not a count
    # a pattern that only a value holds is checked when evaluated
    with pytest.raises(EvaluationError, match="not a valid regular expression"):
        ev("regex(${name}, ${p})", values={"name": "a", "p": "("})


def test_regex_refuses_long_texts_and_gives_up_on_backtracking(monkeypatch):
    with pytest.raises(EvaluationError, match="at most 10000"):
        ev("regex(., 'a')", current="a" * 10_001)
    assert ev("regex(., 'a$')", current="b" * 9_999 + "a") is True
    monkeypatch.setattr(E, "REGEX_TIMEOUT", 0.01)
    with pytest.raises(EvaluationError, match=r"took longer than 0\.01 s"):
        ev("regex(., '^(a|aa)+$')", current="a" * 5000 + "b")
    # the same refusal is a NaN row on whole columns, the other rows are evaluated
    got = evaluate_columns(parse("regex(${t}, '^(a|aa)+$')"),
                           {"t": ["aaa", "a" * 5000 + "b", None]}, 3)
    assert got[0] == 1 and math.isnan(got[1]) and got[2] == 0


# ------------------------------------------------------ choice-filter columns

def test_choice_filters_read_the_columns_of_the_choice():
    tree = parse("district = ${district} and name != 'other'", columns=True)
    assert tree == Binary("and", Binary("=", Column("district"), Ref("district")),
                          Binary("!=", Column("name"), Str("other")))
    assert columns(tree) == ["district", "name"] and references(tree) == ["district"]
    answers = {"district": "d1"}
    streets = [{"name": "s1", "district": "d1"}, {"name": "s2", "district": "d2"},
               {"name": "other", "district": "d1"}, {"name": "s4"}]
    shown = [c["name"] for c in streets
             if E.is_true(evaluate(tree, answers, columns=c))]
    assert shown == ["s1"]
    # names with '-' and '.', functions on columns, a column next to '.'
    tree = parse("county-code = ${county} or starts-with(q1.a, 'x')", columns=True)
    assert columns(tree) == ["county-code", "q1.a"]
    assert evaluate(tree, {}, columns={"q1.a": "xy"}) is True
    assert parse("a - 1", columns=True) == Binary("-", Column("a"), Num(1))
    assert parse("a-1", columns=True) == Column("a-1")  # as in XPath, '-' is in names
    with pytest.raises(EvaluationError, match="columns="):
        evaluate(parse("name = 'x'", columns=True), {})
    with pytest.raises(ValueError, match="choice filter"):
        evaluate_columns(parse("name = 'x'", columns=True), {}, 2)


def test_a_bare_name_outside_a_choice_filter_says_to_write_a_reference():
    with pytest.raises(ParseError) as err:
        parse("district = ${district}")
    assert "write a question as ${district}" in err.value.message
    assert err.value.position == 0
    with pytest.raises(ParseError, match="not a column name"):
        parse("a" * 65 + " = 'x'", columns=True)
    with pytest.raises(ParseError, match="unknown function"):
        parse("foo(1)", columns=True)


def test_choice_filter_types():
    types = {"district": VarType("choice", ("d1", "d2")), "age": VarType("number")}

    def col(name):
        return VarType("string") if name in ("name", "district") else None

    def check(text, **kw):
        return check_types(parse(text, columns=True), types.get, columns=col, **kw)

    assert check("district = ${district} and name != 'x'") == []
    types["crops"] = VarType("multi", ("maize", "beans"))
    assert check("selected(${crops}, name)") == []
    assert check("unknown = 'x'") == []  # left to the caller, as unknown ${names}
    assert any("compares ${age} (a number) with column 'name' (text)" in p
               for p in check("${age} = name"))
    assert check("name") == ["must be a condition (true or false), but gives "
                             "column 'name' (text)"]
    problems = check_types(parse("district = 'x'", columns=True), types.get)
    assert problems == ["bare name 'district': only a choice filter reads columns of the "
                        "choices; write a question as ${district}"]


# --------------------------------------------------------------------- names

def test_names_with_dash_dot_and_underscore():
    assert ev("${hh-size} * 2") == 8 and ev("${q1.a}") == "x" and ev("${_x} + 1") == 3.5
    assert parse("${hh-size}-1") == Binary("-", Ref("hh-size"), Num(1))
    assert references(parse("${q1.a} = ${hh-size} and ${_x} > 1")) == ["q1.a", "hh-size", "_x"]
    assert parse("${" + "a" * 64 + "}") == Ref("a" * 64)
    with pytest.raises(ParseError, match="at most 64"):
        parse("${" + "a" * 65 + "}")
    for bad in ("${1a}", "${-a}", "${.a}", "${a b}", "${a:b}"):
        with pytest.raises(ParseError, match="not a valid question reference"):
            parse(bad)
    # keywords still split off a following '.': "div.5" is "div .5"
    assert parse("${a} div.5") == Binary("div", Ref("a"), Num(0.5))


# --------------------------------------------------------------------- types

TYPES = {
    "age": VarType("number"), "name": VarType("string"), "day": VarType("date"),
    "month": VarType("month"), "crops": VarType("multi", ("maize", "beans")),
    "district": VarType("choice", ("d1", "d2")), "rating": VarType("choice", ("1", "2", "3")),
    "ok": VarType("boolean"),
}


def problems(text, current=None, want="boolean"):
    return check_types(parse(text), TYPES.get, current, want)


@pytest.mark.parametrize("text, current", [
    (". <= today()", "day"),
    ("today() >= ${day}", None),
    ("concat(${name}, ${age}, ${crops}, ${day}) != ''", None),
    ("int(${age} div 12) > 5 and round(${age}, 1) < 100 and number(${name}) > 0", None),
    ("round(${age}, ${rating}) = 3", None),
    ("string(${crops}) = 'maize'", None),
    ("coalesce(${name}, 'x') = 'y' and coalesce(${age}, 0) > 1", None),
    ("regex(., '^[0-9]+$')", "name"),
    ("regex(${day}, '^2024')", None),
    ("selected-at(${crops}, 0) = 'maize'", None),
    ("selected-at(${rating}, 0) > 1", None),
    ("jr:choice-name(${district}, '${district}') = '东城区'", None),
    ("contains(${name}, 'a') or starts-with(${district}, 'd') or ends-with(${age}, '7')",
     None),
    ("substr(${name}, 0, 2) = 'ab' and string-length(substr(${day}, 5)) = 5", None),
    ("boolean(${crops}) and boolean(${age})", None),
    ("count-selected(${crops}) >= 1 and not(selected(${crops}, 'beans'))", None),
])
def test_new_functions_type_check(text, current):
    assert problems(text, TYPES[current] if current else None) == []


@pytest.mark.parametrize("text, fragment", [
    ("${day} < now()", "cannot compare ${day} (a date) with now() (text)"),
    ("${month} <= today()", "cannot compare ${month} (a month) with today() (a date)"),
    ("today() = '2024-5-1'", "write the date as 'YYYY-MM-DD'"),
    ("int(${crops}) > 1", "int() needs a number, not ${crops} (a multiple choice)"),
    ("number(${day}) > 1", "number() needs a number, not ${day} (a date)"),
    ("round(1.5, ${day}) > 1", "round() needs a number as its digits, not ${day}"),
    ("regex(${crops}, 'a')", "regex() needs text, not ${crops} (a multiple choice); "
                             "use selected()"),
    ("contains(${ok}, 'a')", "contains() needs text, not ${ok} (a condition)"),
    ("substr(${name}, ${crops}) = ''", "substr() needs a number as its start and end, not "
                                      "${crops}"),
    ("selected-at('maize beans', 0) = 'x'", "selected-at() needs a question, like "
                                            "selected-at(${q}, 0)"),
    ("selected-at(${age}, 0) = 'x'", "selected-at() needs a choice question, not ${age}"),
    ("selected-at(${crops}, ${day}) = 'x'", "selected-at() needs a number as its position"),
    ("jr:choice-name(${age}, '${age}') = 'x'", "jr:choice-name() needs a choice question, "
                                               "not ${age} (a number)"),
    ("jr:choice-name(${district}, 'district') = 'x'", "must be the question in quotes"),
    ("coalesce(${age}, 'x') = 'x'", "coalesce() gives ${age} (a number) or 'x' (text)"),
    ("concat(${name}, 'x')", "must be a condition (true or false), but gives text"),
    ("int(${age}) = 'x'", "compares a number with 'x' (text)"),
])
def test_new_functions_type_errors(text, fragment):
    found = problems(text)
    assert any(fragment in p for p in found), found


def test_what_an_expression_must_give():
    assert problems("concat(${name}, 'x')", want="any") == []
    assert problems("${age} + 1", want="number") == []
    assert problems("${name}", want="number") == []  # number() reads text
    assert problems("${crops}", want="number") == ["must be a number, but gives ${crops} "
                                                   "(a multiple choice)"]
    with pytest.raises(ValueError, match="want"):
        problems("1", want="text")
    lookup = TYPES.get
    assert infer_type(parse("concat(${age})"), lookup) == VarType("string")
    assert infer_type(parse("int(${name}) + 1"), lookup) == VarType("number")
    assert infer_type(parse("today()"), lookup) == VarType("date")
    assert infer_type(parse("regex(${name}, 'a')"), lookup) == VarType("boolean")
    assert infer_type(parse("selected-at(${crops}, 0)"), lookup) == VarType(
        "choice", ("maize", "beans"))
    assert infer_type(parse("${nobody}"), lookup) is None


# ------------------------------------------------------------------ printing

@pytest.mark.parametrize("text", [
    "concat(${first-name}, ' ', jr:choice-name(${district}, '${district}'))",
    "regex(., '^1[0-9]{10}$') and string-length(.) = 11",
    "round(${bmi}, 1) >= 18.5",
    "int(${q1.a} div 12) - 1",
    "substr(today(), 0, 7) = '2024-05'",
    "coalesce(${_x}, selected-at(${crops}, 0))",
    "if(boolean(now()), number('1'), -int(2.5))",
    "not(contains(string(${a}), 'x') or starts-with(${a}, \"it's\") or ends-with(${a}, 'y'))",
])
def test_printing_round_trips_the_new_functions(text):
    assert to_source(parse(text)) == text
    assert parse(to_source(parse(text))) == parse(text)


def test_printing_round_trips_choice_filters():
    for text in ("district = ${district} and name != 'x'", "-a * (b - 1) > c-d",
                 "selected(${crops}, name) or q1.a = 'x'"):
        tree = parse(text, columns=True)
        assert to_source(tree) == text
        assert parse(to_source(tree), columns=True) == tree


# -------------------------------------------------- real forms' expressions

@pytest.mark.parametrize("text, values, current, want", [
    # from XLSForm documentation and field forms: constraints, relevance, calculations
    ("regex(., '^[A-Z]{2}[0-9]{4}$')", {}, "AB1234", True),
    (". >= 0 and . <= 120", {}, 130, False),
    ("${hh-size} > 1 and ${age} >= 18", {"hh-size": 3, "age": 20}, None, True),
    ("concat('Hello ', ${name}, '!')", {"name": "Li"}, None, "Hello Li!"),
    ("int((${end} - ${start}) div 60)", {"start": 30, "end": 200}, None, 2),
    ("round(${weight} div (${height} * ${height}), 1)", {"weight": 70, "height": 1.75},
     None, 22.9),
    ("if(${x} = '', 0, ${x})", {"x": None}, None, 0),
    ("count-selected(${crops}) >= 1 and not(selected(${crops}, 'none'))",
     {"crops": ["maize"]}, None, True),
    ("string-length(.) <= 10 and . != ''", {}, "0123456789", True),
    ("coalesce(${phone}, ${phone2})", {"phone2": "123"}, None, "123"),
    ("selected-at(${crops}, count-selected(${crops}) - 1)", {"crops": ["a", "b", "c"]},
     None, "c"),
])
def test_expressions_from_real_forms(text, values, current, want):
    got = evaluate(parse(text), values, current, now=NOW)
    assert same(got, want), (text, got)


def test_whole_columns_give_the_new_functions_row_by_row():
    cols = {"n": np.array([2.5, np.nan, -2.5]), "s": ["13812345678", None, "x"],
            "m": E.Selection(("a", "b"), np.array([[1, 1], [0, 0], [0, 1]], bool),
                             np.array([False, True, False]))}

    def on(text):
        return evaluate_columns(parse(text), cols, 3, now=NOW,
                                choice_label=lambda q, v: v.upper()).tolist()

    assert on("round(${n}) = 3") == [1, 0, 0]
    assert on("int(${n}) = -2") == [0, 0, 1]
    assert on("regex(${s}, '^1[0-9]{10}$')") == [1, 0, 0]
    assert on("selected-at(${m}, 1) = 'b'") == [1, 0, 0]
    assert on("concat(${s}, ${n} + 1) = 'NaN'") == [0, 1, 0]
    assert on("jr:choice-name(${s}, '${s}') = 'X'") == [0, 0, 1]
    assert on("today() = '2024-05-01'") == [1, 1, 1]
