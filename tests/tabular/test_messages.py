"""Every problem the reader finds carries a stable code and params, and its English text is
its code's template filled with them (tabular.messages), so pages can translate it."""
from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest

from tabular import messages, reading
from tabular.reading import LIMITS, Problem, TableError, read_sheets, read_table

from . import bombs

SMALL = {"csv_header", "long_cell", "long_cell_xlsx", "many_members", "shared_strings"}


def small_ratio() -> bytes:
    """A sheet of 2 MB of blank space packed into a few KB (ratio ~1000)."""
    head = bombs.sheet_xml('<row r="1">' + bombs.inline("A", 1, "id") + "</row>"
                           ).split(b"</sheetData>")
    chunk = b" " * (1 << 20)
    packed = bombs._concat_deflate([head[0], (chunk, 2), b"</sheetData>" + head[1]])
    size = len(head[0]) + len(chunk) * 2 + len(b"</sheetData>") + len(head[1])
    return bombs.zip_bytes(bombs.xlsx_members(bombs.Member(
        "xl/worksheets/sheet1.xml", packed=packed, size=size, crc=0)))


def refusal(data: bytes, name: str, **kw) -> Problem:
    with pytest.raises(TableError) as caught:
        read_table(data, name, **kw)
    return caught.value.problems[0]


def assert_coded(problem: Problem) -> None:
    assert problem.code in messages.TEMPLATES, problem
    assert problem.message == messages.english(problem.code, problem.params)


@pytest.mark.parametrize("bomb", sorted(SMALL))
def test_each_bomb_refusal_has_a_code(bomb):
    make, name = bombs.BOMBS[bomb]
    with pytest.raises(TableError) as caught:
        read_table(make(), name)
    for problem in caught.value.problems:
        assert_coded(problem)


@pytest.mark.parametrize("data, name, code, params", [
    (b"", "e.csv", "empty_file", {}),
    (b"," * 1500 + b"id\n1\n", "h.csv", "too_many_columns",
     {"columns": 1501, "limit": LIMITS.max_columns}),
    (b"id,x\n1," + b"y" * 40_000 + b"\n", "c.csv", "cell_too_long",
     {"limit": LIMITS.max_cell_chars}),
    (b"id\n1,2\n", "w.csv", "row_width", {"values": 2, "columns": 1}),
    (b"\xd0\xcf\x11\xe0xxxx", "old.xls", "old_xls", {}),
    (b"a,b\x00\n", "n.csv", "nul", {}),
    (b"id,name\n", "x.xlsx", "not_zip", {}),
])
def test_codes_and_params(data, name, code, params):
    problem = refusal(data, name)
    assert (problem.code, problem.params) == (code, params)
    assert_coded(problem)


def test_zip_ratio_says_the_ratio_and_the_limit():
    problem = refusal(small_ratio(), "r.xlsx")
    assert problem.code == "zip_ratio"
    assert problem.params["limit"] == 100 and problem.params["ratio"] > 100
    assert problem.message == (f"the part 'xl/worksheets/sheet1.xml' unpacks "
                               f"{problem.params['ratio']:,} times its packed size (at most "
                               "100); a zip bomb?")


def test_header_problems_have_codes():
    problem = refusal(b"id,id,\xe5\x90\x8d\n1,2,3\n", "d.csv", required=("missing",))
    with pytest.raises(TableError) as caught:
        read_table(b"id,,id\n1,2,3\n", "d.csv", required=("missing",))
    codes = [p.code for p in caught.value.problems]
    assert codes == ["empty_column_name", "duplicate_column", "column_not_found"]
    assert caught.value.problems[2].params["names"] == ["id", "id"]
    assert problem.code == "duplicate_column"
    for p in caught.value.problems:
        assert_coded(p)


def test_missing_sheet_names_the_sheets():
    data = bombs.zip_bytes(bombs.xlsx_members(bombs.sheet_xml(
        '<row r="1">' + bombs.inline("A", 1, "id") + "</row>")))
    problem = refusal(data, "s.xlsx", sheet="nope")
    assert problem.code == "no_sheet" and problem.params["sheets"]
    assert_coded(problem)
    assert read_sheets(data, "s.xlsx", ("nope",)) == {}


def test_dtd_is_its_own_code():
    sheet = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>'
             + bombs.sheet_xml('<row r="1">' + bombs.inline("A", 1, "id") + "</row>")
             .split(b"?>", 1)[1])
    problem = refusal(bombs.zip_bytes(bombs.xlsx_members(sheet)), "dtd.xlsx")
    assert problem.code == "xml_dtd"
    assert "a document type declaration (entities are not read)" in problem.message
    assert_coded(problem)


def test_params_are_not_compared():
    """Problems made by hand (other packages, old tests) still equal the coded ones."""
    coded = Problem.coded("f.csv", None, 1, None, "no_header")
    assert coded == Problem("f.csv", None, 1, None, "no header row")
    assert hash(coded) == hash(Problem("f.csv", None, 1, None, "no header row"))


def test_every_template_field_is_a_plain_name():
    for code, template in messages.TEMPLATES.items():
        for _text, name, spec, conversion in string.Formatter().parse(template):
            if name is not None:
                assert name.isidentifier() and not spec, (code, name)
                assert conversion in (None, "r"), (code, conversion)


def test_reader_makes_no_problem_without_a_code():
    """No ``Problem(...)``/``Problems.add(...)``/``FileRefused.at(...)`` call in the reader
    itself except the generic helpers: each problem it finds is coded."""
    tree = ast.parse(Path(reading.__file__).read_text(encoding="utf-8"))
    helpers = {"coded", "add", "at"}
    calls = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef) or func.name in helpers:
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Call):
                target = node.func
                name = target.attr if isinstance(target, ast.Attribute) else \
                    getattr(target, "id", "")
                owner = getattr(getattr(target, "value", None), "id", "")
                if name == "Problem" or (name == "at" and owner == "FileRefused") or \
                        (name == "add" and owner == "problems"):
                    calls.append((func.name, node.lineno))
    assert calls == []
