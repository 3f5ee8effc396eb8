"""The expression language: parsing, printing, XLSForm semantics of empty answers, types."""
from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surveys import expressions as E
from surveys.expressions import (
    ARITY,
    FUNCTIONS,
    Binary,
    Call,
    Column,
    Current,
    EvaluationError,
    Num,
    ParseError,
    Ref,
    Selection,
    Str,
    Unary,
    VarType,
    check_types,
    evaluate,
    evaluate_columns,
    is_true,
    parse,
    references,
    to_source,
    uses_current,
)

# ------------------------------------------------------------------- parsing


def test_precedence_and_associativity():
    assert parse("1 + 2 * 3") == Binary("+", Num(1), Binary("*", Num(2), Num(3)))
    assert parse("1 - 2 - 3") == Binary("-", Binary("-", Num(1), Num(2)), Num(3))
    assert parse("${a} = 1 or ${b} = 2 and ${c} = 3") == Binary(
        "or", Binary("=", Ref("a"), Num(1)),
        Binary("and", Binary("=", Ref("b"), Num(2)), Binary("=", Ref("c"), Num(3))))
    assert parse("-${a} div 2 mod 3") == Binary(
        "mod", Binary("div", Unary("-", Ref("a")), Num(2)), Num(3))
    assert parse("(1 + 2) * 3") == Binary("*", Binary("+", Num(1), Num(2)), Num(3))
    assert parse("${a} < 1 = true()") == Binary("=", Binary("<", Ref("a"), Num(1)),
                                                 Call("true", ()))


def test_literals_references_and_functions():
    assert parse(". >= 1.5") == Binary(">=", Current(), Num(1.5))
    assert parse(".5") == Num(0.5)
    assert parse("\"it's\"") == Str("it's")
    assert parse("count-selected(${topics})<=3") == Binary(
        "<=", Call("count-selected", (Ref("topics"),)), Num(3))
    assert parse("selected( ${q} , 'other')") == Call("selected", (Ref("q"), Str("other")))
    assert parse("if(${a} > 1, 'x', 'y')") == Call(
        "if", (Binary(">", Ref("a"), Num(1)), Str("x"), Str("y")))
    assert references(parse("${b} + ${a} * ${b}")) == ["b", "a"]


@pytest.mark.parametrize("text, fragment, position", [
    ("", "empty", 0),
    ("${a} =", "expected a value", 6),
    ("${a", "not closed", 0),
    ("$a", "reference", 0),
    ("'abc", "string is not closed", 0),
    ("foo(1)", "unknown function", 0),
    ("not(1, 2)", "takes 1 argument", 0),
    ("1 +* 2", "expected a value", 3),
    ("(1 + 2", "expected ')'", 6),
    ("1 2", "unexpected", 2),
    ("${a}.b", "unexpected", 4),
    ("__import__('os')", "unknown function", 0),
    ("${a} == 1", "expected a value", 6),
    ("${a} # 1", "unexpected character", 5),
])
def test_parse_errors_name_the_position(text, fragment, position):
    with pytest.raises(ParseError) as err:
        parse(text)
    assert fragment in err.value.message
    assert err.value.position == position


def test_nesting_and_length_are_bounded():
    with pytest.raises(ParseError, match="nested"):
        parse("(" * 200 + "1" + ")" * 200)
    with pytest.raises(ParseError, match="nested"):
        parse("-" * 200 + "1")
    with pytest.raises(ParseError, match="longer"):
        parse("1 + " * 600 + "1")
    assert parse("(" * 20 + "1" + ")" * 20) == Num(1)


def test_printing_keeps_needed_parentheses_only():
    for text in ("${a} = 'x' and (${b} = 1 or ${c} = 2)", "1 - (2 - 3)", "-(1 + 2) * 3",
                 "not(selected(., 'none') and count-selected(.) > 1)", "1 - -1",
                 "2 div (3 mod 4)", "- -1"):
        assert to_source(parse(text)) == text
    assert to_source(parse("((${a}))  =  'x'")) == "${a} = 'x'"
    assert to_source(Num(1e-7)) == "0.0000001"
    assert to_source(Num(1e20)) == "100000000000000000000.0"


# ----------------------------------------------------------------- evaluation


def ev(text, values=None, current=None):
    return evaluate(parse(text), values or {}, current)


def test_empty_answers_follow_xlsform():
    # comparisons with an empty answer are false, whichever way round
    for text in ("${x} > 60", "${x} <= 60", "${x} = 60", "${x} = 'a'", "60 < ${x}",
                 "${x} + 1 > 0", "${x} >= '2024-01-01'"):
        assert ev(text) is False, text
    # != is the negation of =, and "= ''" is the "not answered" test
    assert ev("${x} != 'a'") is True
    assert ev("${x} = ''") is True and ev("${x} = ''", {"x": "a"}) is False
    assert ev("not(${x} > 60)") is True
    assert ev("selected(${x}, 'a')") is False
    assert ev("count-selected(${x})") == 0
    assert math.isnan(ev("${x} * 2"))
    assert ev("string-length(${x})") == 0


def test_values():
    v = {"n": 3, "d": 2.5, "s": "60-69", "m": ["a", "b"], "t": "2024-05-01", "mo": "2024-05"}
    assert ev("${n} * 2 + 1", v) == 7
    assert ev("${n} div 2", v) == 1.5 and ev("7 mod 3") == 1 and ev("-7 mod 3") == -1
    assert ev("1 div 0") == math.inf and ev("-1 div 0") == -math.inf
    assert math.isnan(ev("0 div 0")) and math.isnan(ev("1 mod 0"))
    assert ev("${d} >= 2.5 and ${d} < 3", v) is True
    assert ev("${s} = '60-69' or ${s} = '70+'", v) is True
    assert ev("selected(${m}, 'b') and not(selected(${m}, 'c'))", v) is True
    assert ev("selected(${s}, '60-69')", v) is True  # selected() works on one choice too
    assert ev("count-selected(${m}) = 2", v) is True
    assert ev("${t} > '2024-04-30' and ${t} <= '2024-05-01'", v) is True
    assert ev("${mo} < '2024-06'", v) is True
    assert ev("'5' = 5") is True and ev("'05' < 6") is True  # XPath converts to numbers
    assert ev("if(${n} > 2, 'big', 'small')", v) == "big"
    assert ev("string-length('城市学习')") == 4
    assert ev(". <= 3", current=4) is False and ev("count-selected(.)", current=["a"]) == 1
    assert ev("true() and not(false())") is True
    assert is_true(ev("${s}", v)) and not is_true(ev("${x}"))
    assert ev("${n} = 3", lambda name: {"n": 3}.get(name)) is True


# -------------------------------------------------------------------- types

TYPES = {
    "age": VarType("number"),
    "name": VarType("string"),
    "band": VarType("choice", ("18-29", "60-69", "70+")),
    "topics": VarType("multi", ("health", "other", "none")),
    "rating": VarType("choice", ("1", "2", "3", "4", "5")),
    "day": VarType("date"),
    "month": VarType("month"),
}


def problems(text, current=None, want="boolean"):
    return check_types(parse(text), TYPES.get, current, want)


@pytest.mark.parametrize("text", [
    "${age} >= 60 and ${band} = '60-69'",
    "selected(${topics}, 'other') or count-selected(${topics}) > 2",
    "${rating} >= 4",
    "${name} = ''",
    "${topics} = ''",
    "${day} < '2024-01-01' and ${month} >= '2023-12'",
    "if(${age} > 1, ${age}, 0) > 2",
    "${age} + 1 > ${rating}",
    "string-length(${name}) < 10",
    "${band} != ${name}",
])
def test_well_typed(text):
    assert problems(text) == []


@pytest.mark.parametrize("text, fragment", [
    ("${age} = 'sixty'", "compares ${age} (a number) with 'sixty'"),
    ("selected(${age}, '1')", "selected() needs a choice question"),
    ("selected(${topics}, 'sports')", "'sports' is not a choice of ${topics}"),
    ("${band} = '80+'", "'80+' is not a choice of ${band}"),
    ("${band} = 60", "its choices are text"),
    ("${rating} = 7", "7 is not a choice of ${rating}"),
    ("${topics} = 'health'", "use selected()"),
    ("count-selected(${band}) > 1", "count-selected() needs a multiple-choice"),
    ("${age} and ${band} = '70+'", "'and' joins conditions"),
    ("${age} + 1", "must be a condition"),
    ("not(${age})", "not() needs a condition"),
    ("${name} > 3", "'>' compares numbers"),
    ("${day} > '2024-13-01'", "write the date as 'YYYY-MM-DD'"),
    ("${month} = '2024-05-01'", "write the month as 'YYYY-MM'"),
    ("${day} = ${age}", "cannot compare"),
    ("if(${age} > 1, 'a', 2) = 'a'", "both must be alike"),
    ("selected('x', 'y')", "needs a question"),
    ("selected(${topics}, ${name})", "choice name in quotes"),
    (". > 1", "only allowed in a constraint"),
    ("-${name} < 1", "'-' needs a number"),
])
def test_type_errors(text, fragment):
    found = problems(text)
    assert any(fragment in p for p in found), found


def test_current_value_takes_the_question_type():
    assert problems("count-selected(.) <= 3", current=TYPES["topics"]) == []
    assert problems("not(selected(., 'none') and count-selected(.) > 1)",
                    current=TYPES["topics"]) == []
    assert any("compares '.' (a number)" in p
               for p in problems(". = 'x'", current=TYPES["age"]))


def test_unknown_names_are_left_to_the_caller():
    # lookup() returning None means "reported elsewhere": no cascade of type errors
    assert problems("${nobody} = 'x' and ${nobody} > 3") == []


# --------------------------------------------------------------- properties

VOCAB = ["${a}", "${b_2}", "${hh-size}", "${q1.a}", "${_x}", "${", "}", "$", ".", ",", "(",
         ")", "'x'", "\"y\"", "'", "\"", "'${a}'", "'('", "'^[0-9]+$'", "1", "2.5", ".5",
         "007", "=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "div", "mod", "and", "or",
         *ARITY, "jr:", ":", "district", "a.b", "div.5", "foo", "_", "#", "${a b}", "\\",
         "城", " ", "\n", "9" * 400, "a" * 70]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(st.lists(st.sampled_from(VOCAB), max_size=30).map("".join),
                 st.lists(st.sampled_from(VOCAB), max_size=30).map(" ".join),
                 st.text(max_size=60)))
def test_token_soup_raises_only_parse_error(text):
    for choice_filter in (False, True):
        try:
            tree = parse(text, columns=choice_filter)
        except ParseError:
            continue
        # whatever parses prints back to the same tree
        assert parse(to_source(tree), columns=choice_filter) == tree


NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,8}", fullmatch=True)
COLUMNS = NAMES.filter(lambda name: name.split(".")[0] not in ("and", "or", "div", "mod")
                       and name not in ARITY).map(Column)
PATTERNS = st.sampled_from(["", "^[0-9]{11}$", "a|b", "^(a+)+$", "[\u4e00-\u9fff]", "x y"])
NOW = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def label_of(question, value):
    return None if value == "none" else f"{question}:{value}"


LEAVES = st.one_of(
    COLUMNS,
    st.integers(0, 10**12).map(Num),
    st.floats(0, 1e12, allow_nan=False, allow_infinity=False).map(Num),
    st.text(max_size=8).filter(lambda s: "'" not in s or '"' not in s).map(Str),
    NAMES.map(Ref),
    st.just(Current()),
)
BINARY_OPS = ["or", "and", "=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "div", "mod"]


def _call(name, children):
    """Calls of ``name`` with every number of arguments it takes (up to 4 for concat);
    a literal pattern of regex() is a valid one."""
    low, high = ARITY[name]
    arg_lists = st.integers(low, low + 3 if high is None else high).flatmap(
        lambda k: st.tuples(*[children] * k))
    if name == "regex":
        pattern = st.one_of(children.filter(lambda t: not isinstance(t, Str)),
                            PATTERNS.map(Str))
        arg_lists = st.tuples(children, pattern)
    return arg_lists.map(lambda args: Call(name, tuple(args)))


def _extend(children):
    calls = [_call(name, children) for name in ARITY]
    return st.one_of(
        st.builds(Unary, st.just("-"), children),
        st.builds(Binary, st.sampled_from(BINARY_OPS), children, children),
        *calls)


TREES = st.recursive(LEAVES, _extend, max_leaves=25)


@settings(max_examples=150, deadline=None)
@given(TREES)
def test_printed_trees_parse_back_to_themselves(tree):
    assert parse(to_source(tree), columns=bool(E.columns(tree))) == tree


VALUES = st.one_of(st.none(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                   st.text(max_size=5), st.lists(st.sampled_from(["a", "b", "c"]), max_size=3),
                   st.sampled_from(["2024-05-01", "2024-05", "60-69"]))


@settings(max_examples=300, deadline=None)
@given(TREES, st.dictionaries(NAMES, VALUES, max_size=5), VALUES)
def test_evaluation_never_crashes(tree, values, current):
    """Any tree on any values gives a value or raises EvaluationError (regex() refusing
    a pattern that a value holds, jr:choice-name() without a '${q}')."""
    try:
        result = evaluate(tree, values, current, columns=values, choice_label=label_of,
                          now=NOW)
    except EvaluationError:
        return
    assert isinstance(is_true(result), bool)


# ------------------------------------------------------- evaluation on whole columns
#
# evaluate_columns must give what the row path gives, row for row: is_true(evaluate(...)),
# NaN where evaluation raises EvaluationError (and, with missing_as_nan, where every
# referenced value is None).  Columns come in every form it accepts, each holding the
# values that send it down its fast paths (one kind per column) or its row-by-row path
# (mixed values, dates, Decimal, integers beyond 2**53, lists).

COLUMN_NAMES = ["a", "b", "c", "m", "z"]  # "z" is never given: unanswered everywhere
TEXTS = ["", "yes", "no", "a", "b", "a b", "3", " 4 ", "-1.5", "2024-05-01", "2024-06",
         "2024-05", "2023-12-31", "nan", "inf", "true", "60-69", "城"]
CELLS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 70), st.sampled_from([2**53 + 1, -(2**60)]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(TEXTS),
    st.lists(st.sampled_from(["a", "b", "c"]), max_size=3),
    st.sampled_from([dt.date(2024, 5, 1), Decimal("2")]))
FLOATS = st.one_of(st.sampled_from([0.0, -0.0, 1.0, 3.0, 0.5, 60.0, math.nan, math.inf,
                                    -math.inf, 1e20]),
                   st.floats(-100, 100, allow_nan=False))


@st.composite
def column_tables(draw):
    """(n, columns for evaluate_columns, the same values as one dict per row)."""
    n = draw(st.integers(0, 7))
    columns, rows = {}, [{} for _ in range(n)]
    for name in COLUMN_NAMES[:-1]:
        form = draw(st.sampled_from(["objects", "floats", "ints", "bools", "texts", "selection"]))
        if form == "objects":
            values = draw(st.lists(CELLS, min_size=n, max_size=n))
            col, row_values = values, values
        elif form == "floats":
            col = np.array(draw(st.lists(FLOATS, min_size=n, max_size=n)), dtype=float)
            row_values = [None if math.isnan(v) else float(v) for v in col]
        elif form == "ints":
            col = np.array(draw(st.lists(st.sampled_from([0, 1, -2, 3, 60, 2**62]), min_size=n,
                                         max_size=n)), dtype=np.int64)
            row_values = [int(v) for v in col]
        elif form == "bools":
            col = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
            row_values = [bool(v) for v in col]
        elif form == "texts":
            col = draw(st.lists(st.one_of(st.none(), st.sampled_from(TEXTS)), min_size=n,
                                max_size=n))
            row_values = col
        else:
            choices = ("a", "b", "2024-05")
            chosen = np.array(draw(st.lists(st.lists(st.booleans(), min_size=3, max_size=3),
                                            min_size=n, max_size=n)), dtype=bool).reshape(n, 3)
            unanswered = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)),
                                  dtype=bool)
            col = Selection(choices, chosen, unanswered)
            row_values = [None if u else [c for c, on in zip(choices, r) if on]
                          for r, u in zip(chosen, unanswered)]
        columns[name] = col
        for row, v in zip(rows, row_values):
            row[name] = v
    return n, columns, rows


COLUMN_LEAVES = st.one_of(
    st.sampled_from([0, 1, 2, 3, 60, 2**53 + 1, 10**30]).map(Num),
    st.sampled_from([0.5, 1.0, 1e20]).map(Num),
    st.sampled_from(TEXTS).map(Str),
    st.just(Str("${a}")),  # the question of jr:choice-name()
    st.sampled_from(COLUMN_NAMES).map(Ref),
    st.just(Current()),
)
COLUMN_REFS = st.sampled_from(COLUMN_NAMES).map(Ref)
#: small trees over the columns (every operator and function applied to a column and a
#: literal or another column) and deeper random trees
COLUMN_TREES = st.one_of(
    st.builds(Binary, st.sampled_from(BINARY_OPS), COLUMN_REFS, COLUMN_LEAVES),
    st.builds(Binary, st.sampled_from(BINARY_OPS), COLUMN_LEAVES, COLUMN_REFS),
    st.builds(lambda name, ref, leaf: Call(name, (ref, leaf)[:FUNCTIONS[name]]),
              st.sampled_from([name for name, low in FUNCTIONS.items() if low in (1, 2)]),
              COLUMN_REFS, COLUMN_LEAVES),
    st.builds(lambda op, call, leaf: Binary(op, call, leaf), st.sampled_from(BINARY_OPS),
              st.builds(lambda name, ref: Call(name, (ref,)),
                        st.sampled_from(["count-selected", "string-length"]), COLUMN_REFS),
              COLUMN_LEAVES),
    st.recursive(COLUMN_LEAVES, _extend, max_leaves=6),
    st.recursive(COLUMN_LEAVES, _extend, max_leaves=14),
)


def row_path(tree, rows, current, missing_as_nan=False):
    out = []
    refs = references(tree)
    for row in rows:
        if missing_as_nan and refs and all(row.get(r) is None for r in refs):
            out.append(math.nan)
            continue
        try:
            value = evaluate(tree, row, current, choice_label=label_of, now=NOW)
            out.append(1.0 if is_true(value) else 0.0)
        except EvaluationError:
            out.append(math.nan)
    return np.array(out, dtype=float)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(COLUMN_TREES, column_tables(), CELLS, st.booleans())
def test_columns_give_the_row_path_row_for_row(tree, table, current, missing_as_nan):
    n, columns, rows = table
    got = evaluate_columns(tree, columns, n, current, missing_as_nan=missing_as_nan,
                           choice_label=label_of, now=NOW)
    np.testing.assert_array_equal(got, row_path(tree, rows, current, missing_as_nan),
                                  err_msg=to_source(tree))


def test_columns_cases_that_differ_by_type():
    """A few hand-picked rows where the row path's type rules decide (bool before number
    before text, None as '' or NaN, dates as text), checked by value, not only by
    agreement with the row path."""
    columns = {"n": np.array([3.0, np.nan, 0.0]), "s": ["2024-05-01", None, "5"],
               "t": Selection(("x", "y"), np.array([[1, 0], [0, 0], [1, 1]], bool),
                              np.array([False, True, False]))}

    def on(text, **kw):
        return evaluate_columns(parse(text), columns, 3, **kw).tolist()

    assert on("${n} = ''") == [0, 1, 0]            # unanswered is '' as text
    assert on("${n} = 0") == [0, 0, 1]             # and NaN as a number
    assert on("${s} = 5") == [0, 0, 1]             # text converted to a number
    assert on("${s} > '2024-04-30'") == [1, 0, 0]  # ISO dates compare as text
    assert on("${n} = true()") == [1, 0, 0]        # a bool side compares truth values
    assert on("${s} != 'x'") == [1, 1, 1]          # != is true for unanswered
    assert on("selected(${t}, 'y')") == [0, 0, 1]
    assert on("count-selected(${t}) = 0") == [0, 1, 0]
    assert on("string-length(${t}) = 3") == [0, 0, 1]  # 'x y'
    assert on("${t} = 'x y'") == [0, 0, 1]
    assert on("if(${n} > 1, ${s}, 1 div 0) = 1 div 0") == [0, 1, 1]
    with_nan = on("${n} > 1 or ${s} = '5'", missing_as_nan=True)
    assert with_nan[0] == 1 and math.isnan(with_nan[1]) and with_nan[2] == 1
    # errors: a date cannot be a condition; 'and' does not look at the right side when
    # the left is false, so the error is only where it is evaluated
    dates = {"d": [dt.date(2024, 1, 1)] * 3, "n": np.array([1.0, 0.0, np.nan])}
    res = evaluate_columns(parse("${n} = 1 and ${d}"), dates, 3)
    assert math.isnan(res[0]) and res[1:].tolist() == [0, 0]


def test_columns_bad_input_names_the_column():
    with pytest.raises(ValueError, match="'a'"):
        evaluate_columns(parse("${a} = 1"), {"a": [1, 2]}, 3)
    with pytest.raises(ValueError, match="'t'"):
        evaluate_columns(parse("${t} = 1"), {"t": Selection(("x",), np.zeros((3, 2), bool),
                                                            np.zeros(3, bool))}, 3)
    with pytest.raises(ValueError, match=r"'w'.*datetime64"):
        evaluate_columns(parse("${w} = 1"), {"w": np.array(["2024-01-01"] * 3,
                                                           dtype="datetime64[D]")}, 3)


def _rich_table():
    """One table whose columns hold every kind of value the row path tells apart."""
    n = len(TEXTS) + 2
    cycle = lambda values: [values[i % len(values)] for i in range(n)]  # noqa: E731
    floats = cycle([0.0, -0.0, 1.0, 3.0, 0.5, 60.0, math.nan, math.inf, -math.inf, 1e20,
                    2.0, math.nan, -1.5])
    ints = cycle([0, 1, -2, 3, 60, 5, 2])
    mixed = cycle([None, "yes", 3, 1.5, True, math.nan, ["a", "b"], "2024-05-01", 2**60, "",
                   False, 0])
    chosen = np.array(cycle([[1, 0, 0], [0, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]]), bool)
    columns = {
        "fl": np.array(floats), "in": np.array(ints, dtype=np.int64),
        "big": np.array(cycle([1, 2**62, 0]), dtype=np.int64),
        "bo": np.array(cycle([True, False, False]), dtype=bool),
        "tx": cycle([*TEXTS, None]), "ob": mixed,
        "se": Selection(("a", "b", "2024-05"), chosen, np.array(cycle([False] * 4 + [True]))),
        "dd": cycle([dt.date(2024, 5, 1), None, Decimal("2")]),
    }
    rows = []
    for i in range(n):
        row = {"fl": None if math.isnan(floats[i]) else floats[i], "in": ints[i],
               "big": int(columns["big"][i]), "bo": bool(columns["bo"][i]),
               "tx": columns["tx"][i], "ob": mixed[i], "dd": columns["dd"][i],
               "se": None if columns["se"].unanswered[i] else
               [c for c, on in zip(("a", "b", "2024-05"), chosen[i]) if on]}
        rows.append(row)
    return n, columns, rows


ATOMS = [Ref(name) for name in ("fl", "in", "big", "bo", "tx", "ob", "se", "dd", "z")] + [
    Num(0), Num(1), Num(3), Num(2**53 + 1), Num(0.5), Str(""), Str("yes"), Str("a"),
    Str("2024-05-01"), Str("2024-05"), Str("3"), Call("true", ()), Current()]
CONDITIONS = [Binary(">", Ref("fl"), Num(1)), Binary("=", Ref("tx"), Str("yes")), Ref("dd"),
              Ref("ob"), Ref("tx"), Ref("se"), Ref("fl"), Ref("z"), Call("false", ())]


def test_columns_every_operator_on_every_kind():
    """Every operator and function on every pair of column kinds and literals, and the
    short-circuit forms on conditions that raise in some rows, against the row path."""
    n, columns, rows = _rich_table()
    errors = [Binary("and", c, Ref("dd")) for c in CONDITIONS[:3]]  # raise in some rows
    trees = [Binary(op, x, y) for op in BINARY_OPS for x in ATOMS for y in ATOMS]
    trees += [Binary(op, x, y) for op in BINARY_OPS for e in errors
              for x, y in ((e, Num(1)), (Str("a"), e), (e, Ref("se")))]
    trees += [Call(name, (e,)) for name in ("not", "count-selected", "string-length")
              for e in errors] + [Unary("-", e) for e in errors]
    trees += [Call("selected", (x, y)) for e in errors for x, y in ((e, Str("a")), (Ref("se"), e))]
    trees += [Call(name, (x,)) for name in ("not", "count-selected", "string-length")
              for x in ATOMS + CONDITIONS]
    trees += [Call("selected", (x, y)) for x in ATOMS for y in ATOMS]
    trees += [Unary("-", x) for x in ATOMS]
    # the XLSForm functions, computed row by row with the row path's own functions
    ones = [name for name, (low, _high) in ARITY.items() if low == 1]
    twos = [name for name, (low, _high) in ARITY.items() if low == 2 and name != "regex"]
    trees += [Binary("=", Call(name, (x,)), Str("3")) for name in ones for x in ATOMS]
    trees += [Call(name, (x, y)) for name in twos for x in ATOMS for y in ATOMS[9:]]
    trees += [Call("regex", (x, Str("^[0-9]+$"))) for x in ATOMS + errors]
    trees += [Binary("=", Call(name, ()), Str("2024-05-01")) for name in ("today", "now")]
    trees += [Binary(op, c, d) for op in ("and", "or") for c in CONDITIONS for d in CONDITIONS]
    trees += [Binary("=", Call("if", (c, x, y)), z) for c in CONDITIONS for x in ATOMS[:9]
              for y in ATOMS for z in (Num(1), Ref("tx"))]
    # the branch not taken may raise: its errors must not count
    trees += [Call("if", (c, x, y)) for c in CONDITIONS for x in errors + CONDITIONS[:4]
              for y in errors + CONDITIONS[:4]]
    for i, tree in enumerate(trees):
        missing_as_nan = i % 2 == 1
        for current in (None, 3, "2024-05-01", ["a"]) if uses_current(tree) else (None,):
            got = evaluate_columns(tree, columns, n, current, missing_as_nan=missing_as_nan,
                                   choice_label=label_of, now=NOW)
            want = row_path(tree, rows, current, missing_as_nan)
            np.testing.assert_array_equal(got, want, err_msg=f"{to_source(tree)} "
                                          f"current={current!r} {missing_as_nan=}")
