"""Property tests: expressions against a Python reference; definition imports (JSON and
XLSX) fail only with their documented error and store nothing."""
from __future__ import annotations

import io
import json
import math

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surveys.definition import SurveyError, read_json, survey_from_dict
from surveys.expressions import ParseError, evaluate, parse
from surveys.xlsform import read_xlsform

# --- well-typed numeric/boolean expressions vs. an independent reference ------------
# The reference follows the module's documented semantics (XPath 1.0): numbers are
# IEEE floats, ``x div 0`` is +-inf (NaN for 0 div 0), ``x mod 0`` is NaN, ``mod`` keeps
# the sign of the dividend, comparisons with NaN are false, ``and``/``or``/``not``
# use boolean() (0 and NaN are false), booleans in arithmetic count as 1/0.


def _truth(v: float | bool) -> bool:
    return bool(v) if isinstance(v, bool) else (v != 0 and not math.isnan(v))


def _num(v: float | bool) -> float:
    return float(v)


def _div(x: float, y: float) -> float:
    if y == 0:
        return math.nan if x == 0 or math.isnan(x) else math.copysign(math.inf, x)
    return x / y


def _mod(x: float, y: float) -> float:
    if y == 0 or math.isinf(x) or math.isnan(x) or math.isnan(y):
        return math.nan
    return math.fmod(x, y)


def _eq(a: float | bool, b: float | bool) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return _truth(a) == _truth(b)
    return a == b


ARITH = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
         "div": _div, "mod": _mod}
ORDER = {"<": lambda x, y: x < y, "<=": lambda x, y: x <= y, ">": lambda x, y: x > y,
         ">=": lambda x, y: x >= y}
VALUES = {"a": 3.0, "b": -2.5, "c": 0.0, "d": 7.0}

LEAVES = st.one_of(
    st.integers(0, 50).map(lambda n: (str(n), float(n))),
    st.sampled_from(sorted(VALUES)).map(lambda k: ("${" + k + "}", VALUES[k])),
    st.sampled_from([("true()", True), ("false()", False)]))


def _combine(children):
    def binary(op, left, right):
        (lt, lv), (rt, rv) = left, right
        if op in ARITH:
            value: float | bool = ARITH[op](_num(lv), _num(rv))
        elif op in ORDER:
            value = ORDER[op](_num(lv), _num(rv))
        elif op == "=":
            value = _eq(lv, rv)
        elif op == "!=":
            value = not _eq(lv, rv)
        elif op == "and":
            value = _truth(lv) and _truth(rv)
        else:
            value = _truth(lv) or _truth(rv)
        return f"({lt} {op} {rt})", value

    ops = [*ARITH, *ORDER, "=", "!=", "and", "or"]
    return st.one_of(
        st.builds(binary, st.sampled_from(ops), children, children),
        children.map(lambda c: (f"-({c[0]})", -_num(c[1]))),
        children.map(lambda c: (f"not({c[0]})", not _truth(c[1]))),
        st.tuples(children, children, children).map(
            lambda t: (f"if({t[0][0]}, {t[1][0]}, {t[2][0]})",
                       t[1][1] if _truth(t[0][1]) else t[2][1])))


EXPRESSIONS = st.recursive(LEAVES, _combine, max_leaves=12)


def _same(got: object, want: float | bool) -> bool:
    if isinstance(want, bool):
        return got is want or got == want
    if isinstance(got, bool):
        return False
    got = float(got)  # type: ignore[arg-type]
    if math.isnan(want):
        return math.isnan(got)
    return got == want or math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)


@settings(max_examples=400, deadline=None)
@given(EXPRESSIONS)
def test_evaluation_matches_the_python_reference(case):
    text, want = case
    got = evaluate(parse(text), VALUES)
    assert _same(got, want), (text, got, want)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_as_text_raise_only_parse_error(raw):
    text = raw.decode("utf-8", errors="replace")
    try:
        parse(text)
    except ParseError:
        pass


# --- definition imports ----------------------------------------------------------------

JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=8)),
    lambda c: st.one_of(st.lists(c, max_size=4),
                        st.dictionaries(st.sampled_from(
                            ["id", "version", "title", "pages", "questions", "name", "type",
                             "label", "choices", "relevant", "constraint", "zh", "en",
                             "items", "required", "min", "max"]), c, max_size=5)),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(JSONISH)
def test_random_json_definitions_give_problems_not_crashes(doc):
    report = survey_from_dict(doc)
    assert report.survey is not None or report.problems


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_as_json_or_xlsx_give_problems_not_crashes(raw):
    assert read_json("x.json", raw).problems or True
    report = read_xlsform("x.xlsx", raw)
    assert report.problems  # random bytes are never a workbook


def _garbled_xlsx(rows: list[list[str]]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    survey = book.active
    survey.title = "survey"
    survey.append(["type", "name", "label::zh", "label::en", "relevant", "constraint"])
    for row in rows:
        survey.append(row)
    book.create_sheet("choices").append(["list_name", "name", "label::zh"])
    book.create_sheet("settings").append(["form_id", "version"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


CELLS = st.one_of(st.sampled_from(["text", "integer", "select_one x", "begin_group",
                                   "end_group", "note", "${q}", ". > 1", "q", ""]),
                  st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=6))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(CELLS, min_size=1, max_size=6), max_size=6))
def test_garbled_workbooks_give_problems_not_crashes(rows):
    report = read_xlsform("form.xlsx", _garbled_xlsx(rows))
    assert report.survey is not None or report.problems


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(JSONISH.map(lambda d: ("s.json", json.dumps(d).encode())),
                 st.lists(st.lists(CELLS, min_size=1, max_size=5), max_size=4).map(
                     lambda rows: ("s.xlsx", _garbled_xlsx(rows)))))
def test_service_import_raises_only_survey_error_and_stores_nothing(dbsession, case):
    from surveys.models import SurveyDefinition
    from surveys.services import import_survey

    name, data = case
    before = dbsession.scalar(sa.select(sa.func.count(SurveyDefinition.id)))
    try:
        import_survey(dbsession, data, "tester", name=name)
    except SurveyError:
        dbsession.rollback()
        assert dbsession.scalar(sa.select(sa.func.count(SurveyDefinition.id))) == before
    else:  # a random document that happens to be a valid survey is stored once
        dbsession.rollback()
