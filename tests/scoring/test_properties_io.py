"""Property tests: garbled RESPONSES.csv and PARAMS.csv raise only InputError (the
calibration importer reads PARAMS.csv with read_params, then read_fit)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.io import InputError, read_fit, read_params, read_responses

CELL = st.one_of(st.sampled_from(["", "0", "1", "2", "-1", "1.5", "x", "nan", "inf", "'=1",
                                  "2pl", "grm", "rasch", "3pl", "gpcm", "1e309", " "]),
                 st.text(max_size=5))
RESPONSE_HEADERS = st.lists(st.sampled_from(["person_id", "group", "i1", "i2", "i3", "item",
                                             "score", "person", ""]), min_size=1,
                            max_size=5)
PARAM_HEADERS = st.lists(st.sampled_from(["item_id", "model", "a", "b", "c", "b1", "b2",
                                          "se_a", "se_b", "infit", "x"]), min_size=1,
                         max_size=7)


def _table(header: list[str], rows: list[list[str]]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _file(content: str | bytes, name: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="lc-prop-"))
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


GARBLE = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(GARBLE, st.tuples(RESPONSE_HEADERS, st.lists(st.lists(CELL, max_size=6),
                                                               max_size=6)).map(
    lambda t: _table(*t))))
def test_garbled_responses_raise_only_input_error(content):
    path = _file(content, "responses.csv")
    try:
        data = read_responses(path)
    except InputError as exc:
        assert "responses.csv" in str(exc)
    else:  # whatever is accepted is a well-formed matrix
        assert data.matrix.shape == (len(data.person_ids), len(data.item_ids))


@settings(max_examples=300, deadline=None)
@given(st.one_of(GARBLE, st.tuples(PARAM_HEADERS, st.lists(st.lists(CELL, max_size=8),
                                                            max_size=5)).map(
    lambda t: _table(*t))))
def test_garbled_params_raise_only_input_error(content):
    path = _file(content, "params.csv")
    try:
        params = read_params(path)
    except InputError as exc:
        assert "params.csv" in str(exc)
    else:
        assert len(params.item_ids) >= 1
        fit = read_fit(path)  # what the calibration importer reads next
        assert all(len(v) == len(params.item_ids) for v in fit.values())


def _outcome(read, path: Path, *, big: bool):
    """What ``read(path)`` returns or the message it refuses with, on the small-file path
    (no pandas) or the big-file one (read_frame and pandas' factorize)."""
    import unittest.mock

    from scoring import io as scoring_io

    small, cells = (0, 0) if big else (scoring_io.SMALL_FILE_BYTES, scoring_io._PANDAS_CELLS)
    with unittest.mock.patch.multiple(scoring_io, SMALL_FILE_BYTES=small, _PANDAS_CELLS=cells):
        try:
            data = read(path)
        except InputError as exc:
            return str(exc), exc.row, exc.column
    return (data.person_ids.tolist(), data.item_ids.tolist(), data.matrix.tobytes(),
            None if data.groups is None else data.groups.tolist())


SCORE = st.sampled_from(["", "0", "1", "2", "3", "x"])
ID = st.sampled_from(["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "", "=p"])
#: mostly clean files, wide and long, so that data (not only refusals) is compared
WIDE = st.lists(st.tuples(ID, st.sampled_from(["A", "B"]), SCORE, SCORE, SCORE),
                min_size=1, max_size=12).map(
    lambda rows: _table(["person_id", "group", "i1", "i2", "i3"], [list(r) for r in rows]))
LONG = st.lists(st.tuples(ID, st.sampled_from(["i1", "i2", "i3", "i4"]), SCORE,
                          st.sampled_from(["A", "B"])), min_size=1, max_size=20).map(
    lambda rows: _table(["person", "item", "score", "group"], [list(r) for r in rows]))


@settings(max_examples=300, deadline=None)
@given(st.one_of(GARBLE, WIDE, LONG, st.tuples(RESPONSE_HEADERS, st.lists(
    st.lists(CELL, max_size=6), max_size=6)).map(lambda t: _table(*t))))
def test_small_and_big_file_paths_read_alike(content):
    path = _file(content, "responses.csv")
    def read(path: Path):
        group = "group" if "person_id,group" in str(content) else None
        return read_responses(path, group_col=group)

    assert _outcome(read, path, big=False) == _outcome(read, path, big=True)
