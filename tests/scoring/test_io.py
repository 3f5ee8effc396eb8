"""Tests for scoring.io: RESPONSES/PARAMS/SCORES CSV formats and their error messages."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scoring import io as scoring_io
from scoring.io import (
    InputError,
    atomic_write,
    check_item_variance,
    format_params,
    read_fit,
    read_params,
    read_responses,
    write_params,
    write_scores,
)
from scoring.params import ItemParams


@pytest.fixture(autouse=True, params=["small", "big"])
def reading_path(request, monkeypatch) -> str:
    """Every test twice: small files are read without pandas, big ones through
    read_frame and pandas' factorize; both must give the same data and errors."""
    if request.param == "big":
        monkeypatch.setattr(scoring_io, "SMALL_FILE_BYTES", 0)
        monkeypatch.setattr(scoring_io, "_PANDAS_CELLS", 0)
    return request.param


def mixed_bank(with_se: bool = True) -> ItemParams:
    """Five items of different models, polytomous ones of different widths."""
    nan = np.nan
    b = np.array([
        [-0.5, nan, nan],   # 2pl
        [0.25, nan, nan],   # 3pl
        [-1.0, 0.1, 1.3],   # grm, 4 categories
        [0.3, -0.2, nan],   # gpcm, 3 categories
        [1.1, nan, nan],    # rasch
    ])
    fields = {
        "item_ids": np.array(["Q1", "Q2", "Q3", "=Q4()", "-5"]),
        "model": np.array(["2pl", "3pl", "grm", "gpcm", "rasch"]),
        "a": np.array([1.3, 0.9, 1.7, 0.8, 1.0]),
        "b": b,
        "c": np.array([0.0, 0.2, 0.0, 0.0, 0.0]),
        "n_categories": np.array([2, 2, 4, 3, 2]),
    }
    if with_se:
        fields |= {
            "se_a": np.array([0.1, 0.12, 0.2, 0.09, nan]),
            "se_b": np.where(np.isnan(b), nan, 0.05 + np.abs(b) / 10),
            "se_c": np.array([nan, 0.03, nan, nan, nan]),
        }
    return ItemParams(**fields)


def assert_same_params(left: ItemParams, right: ItemParams) -> None:
    assert list(left.item_ids) == list(right.item_ids)
    assert list(left.model) == list(right.model)
    np.testing.assert_array_equal(left.n_categories, right.n_categories)
    for name in ("a", "b", "c", "se_a", "se_b", "se_c"):
        x, y = getattr(left, name), getattr(right, name)
        if x is None or y is None:
            assert x is None and y is None, name
            continue
        # exact round trip: floats are written with repr()
        np.testing.assert_array_equal(x, y, err_msg=name)


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# ---------------------------------------------------------------------------- params

def test_params_round_trip_is_exact(tmp_path: Path) -> None:
    bank = mixed_bank()
    fit = {"infit": np.array([1.0, 0.95, 1.1, 1.2, 0.8]),
           "outfit": np.array([1.02, 0.9, np.nan, 1.3, 0.7])}
    out = tmp_path / "params.csv"
    write_params(out, bank, fit=fit)
    text = out.read_text(encoding="utf-8")
    header = text.splitlines()[0].split(",")
    assert header == ["item_id", "model", "a", "b", "c", "b1", "b2", "b3", "se_a", "se_b",
                      "se_c", "se_b1", "se_b2", "se_b3", "infit", "outfit", "sx2", "sx2_p",
                      "latent_mean", "latent_sd"]
    assert not text.startswith("\ufeff")  # plain UTF-8 for machine round trips
    assert_same_params(read_params(out), bank)
    back = read_fit(out)
    assert set(back) == {"infit", "outfit", "sx2", "sx2_p"}
    np.testing.assert_array_equal(back["outfit"], fit["outfit"])
    assert np.all(np.isnan(back["sx2"]))


# ------------------------------------------------------------- latent distribution

def test_latent_distribution_round_trips_on_every_row(tmp_path: Path) -> None:
    """latent_mean/latent_sd are written with full precision on every row and read back
    exactly; subset and concat keep them."""
    bank = mixed_bank().replace(latent_mean=-0.123456789012345, latent_sd=0.7561234567891)
    out = tmp_path / "params.csv"
    write_params(out, bank)
    lines = out.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    assert header[-2:] == ["latent_mean", "latent_sd"]
    assert {tuple(line.split(",")[-2:]) for line in lines[1:]} == {
        ("-0.123456789012345", "0.7561234567891")}
    back = read_params(out)
    assert (back.latent_mean, back.latent_sd) == (-0.123456789012345, 0.7561234567891)
    assert back.allclose(bank, rtol=0, atol=0)
    assert back.subset([0, 1]).latent_sd == 0.7561234567891
    assert back.subset([0]).concat(ItemParams.from_arrays(["z"], "2pl", 1.0, 0.0)
                                   ).latent_sd == 0.7561234567891


def test_old_params_without_latent_columns_are_standard_normal(tmp_path: Path) -> None:
    """A PARAMS.csv written before the columns existed reads as N(0, 1)."""
    path = write(tmp_path, "old.csv", "item_id,model,a,b,c\nq1,rasch,1,-0.5,0\n"
                                      "q2,rasch,,0.5,\n")
    back = read_params(path)
    assert (back.latent_mean, back.latent_sd) == (0.0, 1.0)


def test_latent_column_empty_cells_take_the_common_value(tmp_path: Path) -> None:
    """A row added by hand with empty latent cells; a file with only latent_sd (mean 0);
    all cells empty means the default."""
    path = write(tmp_path, "p.csv", "item_id,model,a,b,latent_mean,latent_sd\n"
                                    "q1,rasch,1,-0.5,0.25,0.75\nq2,rasch,1,0.5,,\n")
    back = read_params(path)
    assert (back.latent_mean, back.latent_sd) == (0.25, 0.75)
    path = write(tmp_path, "q.csv", "item_id,model,a,b,latent_sd\nq1,rasch,1,0,0.8\n")
    assert (read_params(path).latent_mean, read_params(path).latent_sd) == (0.0, 0.8)
    path = write(tmp_path, "r.csv", "item_id,model,a,b,latent_sd\nq1,rasch,1,0,\n")
    assert read_params(path).latent_sd == 1.0


@pytest.mark.parametrize(("cells", "row", "column", "words"), [
    (("0", "0.75", "0", "0.8"), 3, "latent_sd", "differs from 0.75 on row 2"),
    (("0", "0.75", "0.1", "0.75"), 3, "latent_mean", "differs from 0.0 on row 2"),
    (("0", "0", "0", "0"), 2, "latent_sd", "must be positive"),
    (("0", "-1", "0", "-1"), 2, "latent_sd", "must be positive"),
    (("x", "1", "x", "1"), 2, "latent_mean", "'x' is not a number"),
    (("0", "inf", "0", "inf"), 2, "latent_sd", "not a finite number"),
])
def test_bad_latent_columns_name_file_row_and_column(tmp_path: Path, cells, row, column,
                                                     words) -> None:
    m1, s1, m2, s2 = cells
    path = write(tmp_path, "bad.csv", "item_id,model,a,b,latent_mean,latent_sd\n"
                                      f"q1,rasch,1,-0.5,{m1},{s1}\nq2,rasch,1,0.5,{m2},{s2}\n")
    with pytest.raises(InputError) as info:
        read_params(path)
    assert (info.value.row, info.value.column) == (row, column)
    assert words in str(info.value) and "bad.csv" in str(info.value)


def test_params_without_se_and_dichotomous_only(tmp_path: Path) -> None:
    bank = mixed_bank(with_se=False).subset([0, 1, 4])
    out = tmp_path / "params.csv"
    write_params(out, bank)
    header = out.read_text().splitlines()[0]
    assert "b1" not in header  # b1.. only for banks with polytomous items
    back = read_params(out)
    np.testing.assert_array_equal(back.a, bank.a)
    np.testing.assert_array_equal(back.b[:, 0], bank.b[:, 0])
    assert back.se_a is None or np.all(np.isnan(back.se_a))


def test_csv_injection_guard_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "params.csv"
    write_params(out, mixed_bank())
    lines = out.read_text().splitlines()
    assert lines[4].startswith("'=Q4()")   # text that a spreadsheet would evaluate
    assert lines[5].startswith("-5,")      # a number is left alone
    assert list(read_params(out).item_ids)[3:] == ["=Q4()", "-5"]


def test_hand_written_params_defaults(tmp_path: Path) -> None:
    """rasch/pcm may leave a empty, c is optional, unknown columns are ignored."""
    path = write(tmp_path, "p.csv", "\ufeffitem_id,model,a,b,b1,b2,note\n"
                 "R1,rasch,,0.5,,,easy\nP1,pcm,,,-1,1,\n")
    bank = read_params(path)
    np.testing.assert_array_equal(bank.a, [1.0, 1.0])
    np.testing.assert_array_equal(bank.c, [0.0, 0.0])
    np.testing.assert_array_equal(bank.n_categories, [2, 3])
    np.testing.assert_array_equal(bank.b[1, :2], [-1.0, 1.0])


@pytest.mark.parametrize(("text", "expected"), [
    ("item_id,model,b\nQ1,2pl,0\n", "p.csv, row 1, column a: required column is missing"),
    ("item_id,model,a,b\nQ1,4pl,1,0\n", "p.csv, row 2, column model: unknown model '4pl'"),
    ("item_id,model,a,b\nQ1,2pl,1,0\nQ1,2pl,1,1\n",
     "p.csv, row 3, column item_id: duplicate item 'Q1' (first on row 2)"),
    ("item_id,model,a,b\nQ1,2pl,one,0\n", "p.csv, row 2, column a: 'one' is not a number"),
    ("item_id,model,a,b\nQ1,2pl,-1,0\n", "p.csv, row 2, column a: slope '-1' must be positive"),
    ("item_id,model,a,b\nQ1,2pl,1,\n", "p.csv, row 2, column b: difficulty is required"),
    ("item_id,model,a,b\nQ1,2pl,1\n", "p.csv, row 2: has 3 cells but the header has 4"),
    ("item_id,model,a,b,b1,b2\nQ1,grm,1,,1,0\n", "p.csv, row 2: GRM thresholds b1..bK must"),
    ("item_id,model,a,b\nQ1,3pl,1,0\n", "p.csv, row 1, column c: required column is missing"),
    ("item_id,model,a,b\n", "p.csv: no items after the header"),
    ("", "p.csv: file is empty"),
])
def test_bad_params_files(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "p.csv", text)
    with pytest.raises(InputError) as info:
        read_params(path)
    assert str(info.value).replace(str(tmp_path) + "/", "").startswith(expected)


# ---------------------------------------------------------------------------- responses

WIDE = "person_id,grp,Q1,Q2,Q3\np1,A,1,0,\np2,B,0,2,1\np3,A,,1,0\n"
LONG = ("person,item,score,group\n"
        "p1,Q1,1,A\np1,Q2,0,A\np2,Q1,0,B\np2,Q2,2,B\np2,Q3,1,B\np3,Q2,1,A\np3,Q3,0,A\n")


def test_wide_and_long_give_the_same_data(tmp_path: Path) -> None:
    wide = read_responses(write(tmp_path, "w.csv", WIDE), group_col="grp")
    long = read_responses(write(tmp_path, "l.csv", "\ufeff" + LONG))  # with BOM
    expected = np.array([[1, 0, np.nan], [0, 2, 1], [np.nan, 1, 0]])
    for data in (wide, long):
        np.testing.assert_array_equal(data.matrix, expected)
        assert list(data.person_ids) == ["p1", "p2", "p3"]
        assert list(data.item_ids) == ["Q1", "Q2", "Q3"]
        assert list(data.groups) == ["A", "B", "A"]


def test_long_format_with_named_columns(tmp_path: Path) -> None:
    data = read_responses(write(tmp_path, "l.csv", "Person_ID,Item,Score,district\n"
                                "a,Q2,1,N\na,Q1,0,N\nb,Q1,1,S\n"), group_col="district")
    assert list(data.item_ids) == ["Q2", "Q1"]  # order of first appearance
    np.testing.assert_array_equal(data.matrix, [[1, 0], [np.nan, 1]])
    assert list(data.groups) == ["N", "S"]


def test_wide_defaults(tmp_path: Path) -> None:
    data = read_responses(write(tmp_path, "w.csv", "Q1,Q2\n1,0\r\n\n1.0, 1 \n"))
    assert list(data.person_ids) == ["1", "2"]  # no id column: numbered in file order
    assert data.groups is None
    np.testing.assert_array_equal(data.matrix, [[1, 0], [1, 1]])
    named = read_responses(write(tmp_path, "x.csv", "id,Q1\nA,1\nB,0\n"), id_col="id")
    assert list(named.person_ids) == ["A", "B"] and list(named.item_ids) == ["Q1"]


def test_utf8_ids(tmp_path: Path) -> None:
    data = read_responses(write(tmp_path, "w.csv", "person_id,题1,题2\n张三,1,0\n李四,0,1\n"))
    assert list(data.item_ids) == ["题1", "题2"]
    assert list(data.person_ids) == ["张三", "李四"]


@pytest.mark.parametrize(("text", "kwargs", "expected"), [
    ("person_id,Q1,Q2,Q3\np1,1,0,1\np2,1,x,0\n", {},
     "r.csv, row 3, column Q2: score 'x' is not an integer 0..k"),
    ("person_id,group,Q1\np1,A,1\n", {}, ("r.csv, row 2, column group: score 'A' is not an "
     "integer 0..k (if column group is not an item, name it with --id-col or --group-col)")),
    ("person_id,Q1\np1,-1\n", {}, "r.csv, row 2, column Q1: score '-1' is not an integer"),
    ("person_id,Q1\np1,1.5\n", {}, "r.csv, row 2, column Q1: score '1.5' is not an integer"),
    ("person_id,Q1\np1,NA\n", {}, "r.csv, row 2, column Q1: score 'NA' is not an integer"),
    ("person_id,Q1\np1,2\n", {"default_max": 1},
     "r.csv, row 2, column Q1: score '2' is above the highest category 1"),
    ("person_id,Q1,Q2\np1,1,0\np2,1\n", {}, "r.csv, row 3: has 2 cells but the header has 3"),
    ("person_id,Q1,Q2\np1,1,0\np2,1,0,1\n", {}, "r.csv, row 3: has 4 cells"),
    ("person_id,Q1,Q1\np1,1,0\n", {},
     "r.csv, row 1, column Q1: duplicate column (columns #2 and #3)"),
    ("person_id,Q1\np1,1\np2,0\np1,1\n", {},
     "r.csv, row 4, column person_id: duplicate person id 'p1' (first on row 2)"),
    ("person_id,Q1,,Q3\np1,1,0,1\n", {}, "r.csv, row 1, column #3: empty column name"),
    ("", {}, "r.csv: file is empty"),
    ("  \n\n", {}, "r.csv: file is empty"),
    ("person_id,Q1\n", {}, "r.csv: no data rows after the header"),
    ("person_id,Q1\np1,1\n", {"group_col": "grp"},
     "r.csv, row 1, column grp: no such column (named by --group-col)"),
    ("person;Q1;Q2\np1;1;0\n", {}, "r.csv, row 1: the header has a single column"),
    ("person,item,score\np1,Q1,1\np1,Q1,0\n", {},
     "r.csv, row 3: person 'p1' has item 'Q1' twice (first on row 2)"),
    ("person,item,score,district\np1,Q1,1,A\n", {}, ("r.csv, row 1, column district: a long "
     "file (person,item,score) may only have a group column besides these")),
    ("person,item,score,district\np1,Q1,1,A\n", {"group_col": "district", "id_col": "x"},
     "r.csv, row 1, column x: no such column (named by --id-col)"),
    ("person,item,score\np1,Q1,y\n", {}, "r.csv, row 2, column score: score 'y' is not"),
    ("person,item,score,group\np1,Q1,1,A\np1,Q2,1,B\n", {},
     "r.csv, row 3, column group: person 'p1' is in group 'B' here but in 'A' on row 2"),
])
def test_bad_response_files(tmp_path: Path, text: str, kwargs: dict, expected: str) -> None:
    path = write(tmp_path, "r.csv", text)
    with pytest.raises(InputError) as info:
        read_responses(path, **kwargs)
    message = str(info.value).replace(str(tmp_path) + "/", "")
    assert message.startswith(expected), message


def test_bad_utf8_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "person_id,Q1\np1,1\n张三,0\n", encoding="gbk")
    with pytest.raises(InputError) as info:
        read_responses(path)
    assert info.value.row == 3
    assert "not valid UTF-8" in str(info.value)


def test_item_without_variance(tmp_path: Path) -> None:
    data = read_responses(write(tmp_path, "r.csv", "Q1,Q2,Q3\n1,0,\n1,1,\n"))
    with pytest.raises(InputError) as info:
        check_item_variance(data)
    assert info.value.column == "Q1"
    assert "no variance (all 2 responses are 1)" in str(info.value)
    with pytest.raises(InputError, match="column Q3: item has no responses"):
        check_item_variance(data, skip=["Q1"])
    check_item_variance(data, skip=["Q1", "Q3"])  # anchored items are not checked


# ---------------------------------------------------------------------------- writers

class Estimates:
    def __init__(self, theta: list[float], se: list[float]) -> None:
        self.theta, self.se = np.array(theta), np.array(se)


def test_write_scores(tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    write_scores(out, ["p1", "@p2"], Estimates([0.5, np.nan], [0.3, np.inf]),
                 pvs=np.array([[0.1, 0.2], [0.3, 0.4]]))
    assert out.read_text().splitlines() == [
        "person_id,theta,se,pv1,pv2", "p1,0.5,0.3,0.1,0.2", "'@p2,,inf,0.3,0.4"]


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    with pytest.raises(RuntimeError), atomic_write(out) as handle:
        handle.write("partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    out.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(out) as handle:
        handle.write("new")
        raise RuntimeError("boom")
    assert out.read_text() == "old"  # an existing file is not clobbered by a failed run


def test_format_params_rejects_unknown_fit_column() -> None:
    with pytest.raises(ValueError, match="unknown fit column"):
        format_params(mixed_bank(), fit={"rmsd": np.zeros(5)})


# ---------------------------------------------------------------------------- tabular

def test_every_ragged_row_is_found_and_the_header_comes_first(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "person_id,Q1,Q2\np1,1,0\np2,1\np3,x,1\np4,1,0,1\n")
    with pytest.raises(InputError) as info:
        read_responses(path)
    assert (info.value.row, info.value.column) == (3, None)
    assert str(info.value).endswith("row 3: has 2 cells but the header has 3 "
                                    "(and 1 more problems in the file)")
    assert [(p.row, p.file) for p in info.value.problems] == [(3, str(path)), (5, str(path))]
    bad_header = write(tmp_path, "h.csv", "person_id,Q1,Q1\np1,1\n")
    with pytest.raises(InputError, match="row 1, column Q1: duplicate column"):
        read_responses(bad_header)
    with pytest.raises(InputError, match="row 1, column b: required column is missing"):
        read_params(write(tmp_path, "p.csv", "item_id,model,a\nQ1,2pl\n"))


def test_quoted_blank_and_trailing_comma_rows_read_as_plain_ones(tmp_path: Path) -> None:
    plain = read_responses(write(tmp_path, "w.csv", WIDE), group_col="grp")
    quoted = read_responses(write(tmp_path, "q.csv", (
        'person_id,grp,Q1,Q2,Q3\n"p1","A",1,0,\n,,,,\np2,B,0,2,1,\n"p3",A,,1,0\n')),
        group_col="grp")
    for name in ("person_ids", "item_ids", "groups"):
        assert list(getattr(quoted, name)) == list(getattr(plain, name))
    np.testing.assert_array_equal(quoted.matrix, plain.matrix)
    with pytest.raises(InputError, match="row 1: the file must be comma-separated"):
        read_responses(write(tmp_path, "s.csv", "person_id;Q1;Q2,Q3\np1;1;0,1\n"))


def test_an_xlsx_response_file_reads_as_its_csv(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    for line in LONG.splitlines():
        book.active.append([int(c) if c.isdigit() else c for c in line.split(",")])
    book.save(tmp_path / "l.xlsx")
    data = read_responses(tmp_path / "l.xlsx")
    expected = read_responses(write(tmp_path, "l.csv", LONG))
    np.testing.assert_array_equal(data.matrix, expected.matrix)
    assert list(data.person_ids) == list(expected.person_ids)
    assert list(data.groups) == list(expected.groups)


def test_the_first_bad_cell_in_file_order_is_named(tmp_path: Path) -> None:
    """Checked column by column, reported as a reader going down the rows meets them."""
    path = write(tmp_path, "r.csv", "person_id,group,Q1,Q2\np1,A,1,0\np2,B,0,x\np3,,9,1\n"
                 "p2,A,1,1\n")
    with pytest.raises(InputError, match="row 3, column Q2: score 'x'"):
        read_responses(path, group_col="group")
    with pytest.raises(InputError, match="row 3, column Q2: score 'x'"):
        read_responses(path, group_col="group", default_max=1)
    path = write(tmp_path, "l.csv", "person,item,score,group\np1,Q1,1,A\np2,Q1,7,B\n"
                 "p1,Q2,1,B\np1,Q1,0,A\n")
    with pytest.raises(InputError, match="row 3, column score: score '7' is above the "
                                         "highest category 1"):
        read_responses(path, max_scores={"Q1": 1})
    with pytest.raises(InputError, match="row 4, column group: person 'p1' is in group 'B' "
                                         "here but in 'A' on row 2"):
        read_responses(path)
