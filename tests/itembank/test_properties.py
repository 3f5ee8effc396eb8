"""Property tests: garbled item files and calibrations fail only with their documented
errors, and a refused import changes nothing in the bank."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from itembank.importing import CSV_COLUMNS, ItemFileError, read_item_file

CELL = st.one_of(st.sampled_from(["", "LLA001", "single_choice", "rating", "A", "1", "0",
                                  "yes", "no", "draft", "pilot", "operational", "x|y",
                                  "[]", "{}", "=1+1", "5"]),
                 st.text(st.characters(blacklist_categories=("Cs",)), max_size=6))
ROWS = st.lists(st.lists(CELL, max_size=len(CSV_COLUMNS) + 2), max_size=5)
HEADERS = st.one_of(st.just(list(CSV_COLUMNS)),
                    st.lists(st.sampled_from([*CSV_COLUMNS, "bogus", ""]), max_size=8))


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _xlsx(header: list[str], rows: list[list[str]]) -> bytes:
    import openpyxl
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append([ILLEGAL_CHARACTERS_RE.sub("", c) for c in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), CELL),
    lambda c: st.one_of(st.lists(c, max_size=3),
                        st.dictionaries(st.sampled_from([*CSV_COLUMNS, "x"]), c, max_size=6)),
    max_leaves=25)

FILES = st.one_of(
    st.tuples(st.just("items.csv"), st.tuples(HEADERS, ROWS).map(lambda t: _csv(*t))),
    st.tuples(st.just("items.json"), JSONISH.map(lambda d: json.dumps(d).encode())),
    st.tuples(st.sampled_from(["items.csv", "items.json", "items.xlsx"]),
              st.binary(max_size=200)))


@settings(max_examples=300, deadline=None)
@given(FILES)
def test_garbled_item_files_give_problems_or_item_file_error(case):
    name, data = case
    try:
        report = read_item_file(name, data)
    except ItemFileError as exc:
        assert name in str(exc)
        return
    assert report.ok == (not report.problems)
    if report.problems:
        assert all(p.row >= 0 and p.column for p in report.problems)


@settings(max_examples=25, deadline=None)
@given(st.tuples(HEADERS, ROWS).map(lambda t: _xlsx(*t)))
def test_garbled_item_workbooks(data):
    try:
        read_item_file("items.xlsx", data)
    except ItemFileError:
        pass


@pytest.fixture
def bank(dbsession):
    from itembank import demo_content
    from learningcity import demo

    demo.load(dbsession)
    demo_content.load(dbsession)
    dbsession.commit()
    return dbsession


def _counts(db) -> tuple[int, int, int]:
    from itembank.models import Calibration, Item, ItemVersion

    return (db.scalar(sa.select(sa.func.count(Item.id))),
            db.scalar(sa.select(sa.func.count(ItemVersion.id))),
            db.scalar(sa.select(sa.func.count(Calibration.id))))


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(FILES)
def test_refused_item_imports_change_nothing(bank, case):
    from itembank.services import BankError, import_items

    name, data = case
    before = _counts(bank)
    try:
        report = read_item_file(name, data)
        import_items(bank, report, "tester")
    except (ItemFileError, BankError):
        bank.rollback()
        assert _counts(bank) == before
    else:
        bank.rollback()


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.sampled_from(["LLA-M01", "nope", "LLA-R01"]),
                          st.from_regex(r"[A-Za-z0-9-]{1,8}", fullmatch=True)),
                min_size=1, max_size=4, unique=True),
       st.sampled_from(["2pl", "grm", "rasch"]))
def test_calibration_import_of_unknown_or_mismatched_items_changes_nothing(bank, codes,
                                                                           model):
    from itembank.models import Instrument, Item
    from itembank.services import BankError, import_calibration
    from scoring.params import ItemParams

    known = set(bank.scalars(sa.select(Item.code)))
    instrument = bank.scalar(sa.select(Instrument).where(Instrument.code == "LLA"))
    n = len(codes)
    b = np.tile([-1.0, 1.0], (n, 1)) if model == "grm" else np.zeros(n)
    params = ItemParams.from_arrays(item_ids=codes, model=model, a=np.ones(n), b=b)
    before = _counts(bank)
    try:
        import_calibration(bank, instrument, params, "prop", "tester")
    except BankError:
        bank.rollback()
        assert _counts(bank) == before
    else:
        assert set(codes) <= known  # only a calibration of bank items may be stored
        bank.rollback()


DIF_CELLS = st.one_of(st.sampled_from(["A", "B", "C", "b", "", "D", "LLA-M01", "'=x", "\x00"]),
                      st.text(max_size=4))


@settings(max_examples=150, deadline=None)
@given(st.one_of(
    st.binary(max_size=120),
    st.tuples(st.lists(st.sampled_from(["item_id", "ets_class", "delta", "x", ""]),
                       min_size=0, max_size=4),
              st.lists(st.lists(DIF_CELLS, max_size=4), max_size=4))))
def test_garbled_dif_files_are_refused_with_a_message(tmp_path_factory, content):
    """`import-calibration --dif`: any file gives classes A/B/C/'' per item or a clear
    refusal naming the file (a ClickException, never a traceback)."""
    import click

    from itembank.cli import _dif_classes

    path = tmp_path_factory.mktemp("dif") / "DIF.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        header, rows = content
        path.write_text("\r\n".join(",".join(r) for r in [header, *rows]), encoding="utf-8")
    items = ["LLA-M01", "LLA-M02"]
    try:
        classes = _dif_classes(str(path), items)
    except click.ClickException as exc:
        assert "DIF.csv" in exc.message
    else:
        assert len(classes) == len(items) and set(classes) <= {"A", "B", "C", ""}
