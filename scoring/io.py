"""Reading and writing the CSV files of the offline scoring tools.

This docstring is the documentation of the file formats used by ``learningcity calibrate``,
``score``, ``dif`` and ``link``.

Common rules (all files)
------------------------
* Comma-separated, first line is the header.  UTF-8, with or without a byte-order mark
  (Excel's "CSV UTF-8" adds one).  Cells may be quoted the usual CSV way; leading and
  trailing spaces in cells are ignored.  Completely blank lines are skipped.
* Every row must have as many cells as the header ("ragged" rows are refused).
* A bad file stops with :class:`InputError` ``(path, row, column, message)``; rows are
  1-based file lines, the header is line 1.  Readers never return partial data.
* Files written here are plain UTF-8 without a byte-order mark (they are meant to be
  read back by these tools; Excel opens them fine, non-ASCII ids may need
  "Data > From Text").  Writing goes to a temporary file next to the target which is
  renamed only when complete, so a failed run leaves no half-written output.
* CSV injection guard: a written text cell (an item or person id) that starts with
  ``= + - @``, a tab or a carriage return and is not a number gets a leading ``'`` so
  spreadsheets show it as text.  The readers remove that ``'`` again, so ids round-trip.

RESPONSES.csv (input of calibrate, score, dif)
----------------------------------------------
Wide format (default): one row per person, one column per item, the header cell is the
item id (here read with ``--group-col group``)::

    person_id,group,Q1,Q2,Q3
    p001,A,1,0,
    p002,B,2,1,1

* Scores are integers ``0..k`` (``1.0`` is accepted as ``1``).  An empty cell means "not
  administered" and is stored as NaN.  Anything else (``x``, ``-1``, ``1.5``, ``NA``) is an
  error naming row and column.
* ``--id-col COL`` names the person-id column; without it a column called ``person_id`` is
  used if present, otherwise persons are numbered ``1, 2, ...`` in file order.
* ``--group-col COL`` names a group column (multi-group calibration, DIF).
* Every other column is an item.  Person ids and item columns must be unique and not empty.

Long format, detected from its header: the columns ``person``, ``item``, ``score`` and
optionally ``group`` (any order, names case-insensitive; ``person_id``/``item_id`` are
accepted too, and ``--id-col``/``--group-col`` may name the person and group columns)::

    person,item,score,group
    p001,Q1,1,A
    p001,Q2,0,A

No other columns are allowed (a header with ``person``, ``item`` and ``score`` plus an
unknown column is refused rather than read as a wide file).  One row per administered
item; a (person, item) pair may appear once, a person's group must be the same on all its
rows.  Persons and items are ordered by first appearance.  Both formats give the same
:class:`ResponseData`; the group column of a long file is read without ``--group-col``.

PARAMS.csv (output of calibrate and link, input of score, dif, link and ``--anchors``)
------------------------------------------------------------------------------------
One row per item, columns in this order::

    item_id,model,a,b,c[,b1..bK],se_a,se_b,se_c[,se_b1..se_bK],infit,outfit,sx2,sx2_p

* ``model`` is one of rasch, 1pl, 2pl, 3pl, grm, gpcm, pcm (a bank may mix them).
* Slope/difficulty parameterisation on the logistic metric with D = 1 (see scoring/README.md).
* Dichotomous items use ``a, b, c`` (``c`` = 0 except 3PL) and leave ``b1..`` empty.
  Polytomous items with categories ``0..K`` use ``b1..bK`` (GRM: increasing thresholds,
  GPCM/PCM: step difficulties) and leave ``b`` and ``c`` empty.  ``b1..bK`` columns are
  written only when the bank has a polytomous item.
* Standard errors ``se_*`` are empty where a parameter was fixed (Rasch ``a``, anchors)
  or not estimated.  Fit columns are empty when fit was not computed; ``sx2``/``sx2_p``
  are empty when the design has too few complete cases (S-X2 needs them).
* ``infit``/``outfit`` are mean squares at EAP abilities (expected 1; 0.7-1.3 is the usual
  range), ``sx2``/``sx2_p`` Orlando-Thissen's summed-score statistic and its p-value.
* Numbers are written with full precision (Python ``repr``), so a write/read round trip is
  exact.
* On read, ``item_id``, ``model``, ``a`` and ``b`` (or ``b1`` for a purely polytomous bank)
  are required columns, and ``c`` when the bank has 3pl items; ``c`` defaults to 0, ``a``
  may be empty for rasch and pcm (it is 1 there by definition); ``c`` must be 0 (or
  empty) except for 3pl.  SE and fit columns are optional, unknown columns are ignored.
  The model names are case-insensitive.

SCORES.csv (output of score)
----------------------------
``person_id,theta,se`` and, with ``--pv N``, ``pv1..pvN`` (plausible values).  An
undefined estimate (e.g. MLE of a person with no responses) is an empty cell; an infinite
one is written ``inf``/``-inf``.

DIF.csv (output of ``dif --out``)
---------------------------------
One row per item: ``item_id,n_ref,n_focal``, for Mantel-Haenszel
``mh_alpha,mh_d_dif,mh_se_d_dif,mh_chi2,mh_p,ets_class`` (ETS A/B/C; negative D-DIF = harder
for the focal group), for logistic regression
``lr_uniform_chi2,lr_uniform_p,lr_nonuniform_chi2,lr_nonuniform_p,lr_delta_r2,lr_class``
(Jodoin-Gierl A/B/C), and ``note`` (why an item has no statistics, e.g. polytomous).

LINKED.csv (output of ``link --out``) is a PARAMS.csv without fit columns' values.
"""
from __future__ import annotations

import csv
import io
import itertools
import math
import os
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from . import catalogue
from .csvsafe import FORMULA_START, guard_cell, unguard_cell
from .params import DICHOTOMOUS, MODELS, ItemParams

__all__ = [
    "FIT_COLUMNS",
    "InputError",
    "ResponseData",
    "atomic_write",
    "check_item_variance",
    "format_params",
    "read_fit",
    "read_params",
    "read_responses",
    "write_params",
    "write_scores",
    "write_table",
]

PathLike = str | os.PathLike[str]

#: Fit columns written to PARAMS.csv, in this order.
FIT_COLUMNS = ("infit", "outfit", "sx2", "sx2_p")

#: Models whose slope is fixed at 1 (``a`` may be left empty in PARAMS.csv).
UNIT_SLOPE = catalogue.UNIT_SLOPE

_INJECTION_PREFIXES = FORMULA_START  # kept for readers of this module


class InputError(Exception):
    """A bad input file: which file, which 1-based line and column, what is wrong.

    ``row`` and ``column`` are None when the problem is not tied to one line or column.
    ``str(error)`` gives the user-facing message, e.g.
    ``responses.csv, row 14, column Q3: score 'x' is not an integer 0..k``.
    """

    def __init__(self, path: PathLike, row: int | None, column: str | None, message: str):
        self.path = os.fspath(path)
        self.row = row
        self.column = column
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = [self.path]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        return ", ".join(where) + ": " + self.message


@dataclass(frozen=True)
class ResponseData:
    """A response file as arrays.

    Attributes
    ----------
    person_ids : (n_persons,) str
    item_ids : (n_items,) str
    matrix : (n_persons, n_items) float, integer scores ``0..k``, NaN = not administered
    groups : (n_persons,) str, or None without a group column
    path : the file it was read from (for messages)
    """

    person_ids: np.ndarray
    item_ids: np.ndarray
    matrix: np.ndarray
    groups: np.ndarray | None
    path: str

    @property
    def n_persons(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])

    def select_items(self, item_ids: Sequence[str]) -> ResponseData:
        """The same persons with only ``item_ids``, in that order (ids must exist)."""
        index = {item: j for j, item in enumerate(self.item_ids)}
        cols = [index[item] for item in item_ids]
        return ResponseData(self.person_ids, self.item_ids[cols], self.matrix[:, cols],
                            self.groups, self.path)


# ---------------------------------------------------------------------------- low level

def _read_rows(path: PathLike) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, stripped cells)`` for each non-blank CSV record of ``path``.

    Decodes strictly as UTF-8 (BOM optional) so that a Latin-1/GBK file is refused with the
    line of the first bad byte instead of silently becoming mojibake ids.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(path, None, None, f"cannot read file ({exc.strerror})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        bad = raw[exc.start: exc.start + 1].hex()
        raise InputError(path, line, None,
                         f"not valid UTF-8 (byte 0x{bad}); save the file as UTF-8") from exc
    if not text.strip():
        raise InputError(path, None, None, "file is empty")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(path, reader.line_num, None, f"not valid CSV ({exc})") from exc
        if len(cells) <= 1 and not "".join(cells).strip():
            continue  # blank line
        yield reader.line_num, [cell.strip() for cell in cells]


def _unescape(cell: str) -> str:
    """Undo the CSV-injection guard (``'=x`` -> ``=x``); see :mod:`scoring.csvsafe`."""
    return unguard_cell(cell)


def _escape(cell: str) -> str:
    """Guard a text cell a spreadsheet would run as a formula; see :mod:`scoring.csvsafe`."""
    return guard_cell(cell)


def _header(path: PathLike, rows: Iterator[tuple[int, list[str]]]) -> tuple[int, list[str]]:
    """The header line of a file: non-empty, unique column names."""
    try:
        line, header = next(rows)
    except StopIteration:
        raise InputError(path, None, None, "file is empty") from None
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        raise InputError(path, line, None,
                         "the header has a single column; the file must be comma-separated")
    header = [_unescape(name) for name in header]
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if not name:
            raise InputError(path, line, f"#{position}", "empty column name in the header")
        if name in seen:
            raise InputError(path, line, name,
                             f"duplicate column (columns #{seen[name]} and #{position})")
        seen[name] = position
    return line, header


_COMMON_SCORES = {"": math.nan} | {str(k): float(k) for k in range(10)}


def _parse_score(path: PathLike, line: int, column: str, cell: str, top: int | None) -> float:
    """One score cell: '' -> NaN, else an integer 0..top (or 0..k when top is None)."""
    value: float | None = _COMMON_SCORES.get(cell)
    if value is not None:  # fast path for the usual one-digit scores
        if top is not None and value > top:
            raise InputError(path, line, column,
                             f"score '{cell}' is above the highest category {top} of this item")
        return value
    try:
        value = float(int(cell))
    except ValueError:
        try:
            value = float(cell)
        except ValueError:
            value = None
        if value is not None and not (math.isfinite(value) and value.is_integer()):
            value = None
    if value is None or value < 0:
        upper = "k" if top is None else str(top)
        raise InputError(path, line, column, f"score '{cell}' is not an integer 0..{upper}")
    if top is not None and value > top:
        raise InputError(path, line, column,
                         f"score '{cell}' is above the highest category {top} of this item")
    return value


# ---------------------------------------------------------------------------- responses

_LONG_PERSON = ("person", "person_id")
_LONG_ITEM = ("item", "item_id")


def _long_columns(path: PathLike, line: int, header: list[str], id_col: str | None,
                  group_col: str | None) -> dict[str, int] | None:
    """Column positions if ``header`` is a long-format header, else None (wide)."""
    lower = {name.lower(): i for i, name in enumerate(header)}
    person = header.index(id_col) if id_col in header else next(
        (lower[n] for n in _LONG_PERSON if n in lower), None)
    item = next((lower[n] for n in _LONG_ITEM if n in lower), None)
    score = lower.get("score")
    if person is None or item is None or score is None:
        return None
    columns = {"person": person, "item": item, "score": score}
    group = header.index(group_col) if group_col in header else lower.get("group")
    if group is not None:
        columns["group"] = group
    extra = [name for i, name in enumerate(header) if i not in columns.values()]
    if extra:
        raise InputError(path, line, extra[0], "a long file (person,item,score) may only have "
                         "a group column besides these (name it with --group-col)")
    return columns


def read_responses(path: PathLike, id_col: str | None = None, group_col: str | None = None,
                   max_scores: Mapping[str, int] | None = None,
                   default_max: int | None = None) -> ResponseData:
    """Read a RESPONSES.csv file (wide or long format, see the module docstring).

    Parameters
    ----------
    path : the CSV file
    id_col : name of the person-id column (default ``person_id`` if present)
    group_col : name of the group column, or None
    max_scores : highest allowed score per item id (e.g. ``n_categories - 1`` of a bank)
    default_max : highest allowed score of items not in ``max_scores`` (e.g. 1 for a
        dichotomous calibration); None allows any non-negative integer

    Raises
    ------
    InputError for anything that is not a clean response file.
    """
    rows = _read_rows(path)
    header_line, header = _header(path, rows)
    for name, option in ((id_col, "--id-col"), (group_col, "--group-col")):
        if name is not None and name not in header:
            raise InputError(path, header_line, name, f"no such column (named by {option})")
    limits = dict(max_scores or {})

    def top(item: str) -> int | None:
        return limits.get(item, default_max)

    long = _long_columns(path, header_line, header, id_col, group_col)
    if long is not None:
        persons, items, matrix, groups = _read_long(path, header, long, rows, top)
    else:
        persons, items, matrix, groups = _read_wide(path, header, id_col, group_col, rows, top)
    if len(persons) == 0:
        raise InputError(path, None, None, "no data rows after the header")
    if len(items) == 0:
        raise InputError(path, header_line, None, "no item columns")
    return ResponseData(
        person_ids=np.array(persons, dtype=str),
        item_ids=np.array(items, dtype=str),
        matrix=matrix,
        groups=None if groups is None else np.array(groups, dtype=str),
        path=os.fspath(path),
    )


def _read_wide(path: PathLike, header: list[str], id_col: str | None, group_col: str | None,
               rows: Iterator[tuple[int, list[str]]], top: Callable[[str], int | None]):
    if id_col is None and "person_id" in header:
        id_col = "person_id"
    id_pos = header.index(id_col) if id_col is not None else None
    group_pos = header.index(group_col) if group_col is not None else None
    item_pos = [i for i in range(len(header)) if i not in (id_pos, group_pos)]
    items = [header[i] for i in item_pos]
    tops = [top(item) for item in items]
    persons: list[str] = []
    groups: list[str] | None = [] if group_pos is not None else None
    first_line: dict[str, int] = {}
    data: list[list[float]] = []
    for line, cells in rows:
        if len(cells) != len(header):
            raise InputError(path, line, None,
                             f"has {len(cells)} cells but the header has {len(header)}")
        if id_pos is not None:
            person = _unescape(cells[id_pos])
            if not person:
                raise InputError(path, line, id_col, "empty person id")
        else:
            person = str(len(persons) + 1)
        if person in first_line:
            raise InputError(path, line, id_col,
                             f"duplicate person id '{person}' (first on row {first_line[person]})")
        first_line[person] = line
        persons.append(person)
        if groups is not None:
            group = cells[group_pos]
            if not group:
                raise InputError(path, line, group_col, "empty group")
            groups.append(group)
        try:
            data.append([_parse_score(path, line, header[i], cells[i], top)
                         for i, top in zip(item_pos, tops, strict=True)])
        except InputError as exc:
            if not data and exc.column is not None and any(ch.isalpha() for ch in
                                                            cells[header.index(exc.column)]):
                # text in the first row: more likely an id/group column than a typo
                exc.message += (f" (if column {exc.column} is not an item, name it with "
                                "--id-col or --group-col)")
            raise
    matrix = np.array(data, dtype=float).reshape(len(persons), len(items))
    return persons, items, matrix, groups


def _read_long(path: PathLike, header: list[str], columns: dict[str, int],
               rows: Iterator[tuple[int, list[str]]], top: Callable[[str], int | None]):
    person_index: dict[str, int] = {}
    item_index: dict[str, int] = {}
    person_group: dict[str, tuple[str, int]] = {}
    seen: dict[tuple[int, int], int] = {}
    cells_out: list[tuple[int, int, float]] = []
    group_pos = columns.get("group")
    for line, cells in rows:
        if len(cells) != len(header):
            raise InputError(path, line, None,
                             f"has {len(cells)} cells but the header has {len(header)}")
        person = _unescape(cells[columns["person"]])
        item = _unescape(cells[columns["item"]])
        if not person:
            raise InputError(path, line, header[columns["person"]], "empty person id")
        if not item:
            raise InputError(path, line, header[columns["item"]], "empty item id")
        score = _parse_score(path, line, header[columns["score"]], cells[columns["score"]],
                             top(item))
        p = person_index.setdefault(person, len(person_index))
        j = item_index.setdefault(item, len(item_index))
        if (p, j) in seen:
            raise InputError(path, line, None, f"person '{person}' has item '{item}' twice "
                             f"(first on row {seen[p, j]})")
        seen[p, j] = line
        if group_pos is not None:
            group = cells[group_pos]
            if not group:
                raise InputError(path, line, header[group_pos], "empty group")
            first = person_group.setdefault(person, (group, line))
            if first[0] != group:
                raise InputError(path, line, header[group_pos],
                                 f"person '{person}' is in group '{group}' here but in "
                                 f"'{first[0]}' on row {first[1]}")
        cells_out.append((p, j, score))
    matrix = np.full((len(person_index), len(item_index)), np.nan)
    for p, j, score in cells_out:
        matrix[p, j] = score
    persons = list(person_index)
    groups = [person_group[p][0] for p in persons] if group_pos is not None else None
    return persons, list(item_index), matrix, groups


def check_item_variance(data: ResponseData, skip: Sequence[str] = ()) -> None:
    """Refuse items that cannot be calibrated: no responses, or everyone in one category.

    Items in ``skip`` (e.g. anchors, whose parameters are fixed) are not checked.
    """
    skip_set = set(skip)
    for j, item in enumerate(data.item_ids):
        if item in skip_set:
            continue
        column = data.matrix[:, j]
        observed = column[~np.isnan(column)]
        if observed.size == 0:
            raise InputError(data.path, None, str(item), "item has no responses")
        if np.all(observed == observed[0]):
            raise InputError(data.path, None, str(item),
                             f"item has no variance (all {observed.size} responses are "
                             f"{int(observed[0])}); remove it or anchor it")


# ---------------------------------------------------------------------------- params

def _b_columns(header: Sequence[str], prefix: str = "b") -> list[str]:
    """``b1, b2, ...`` present in ``header``, consecutive from 1."""
    found = []
    k = 1
    while f"{prefix}{k}" in header:
        found.append(f"{prefix}{k}")
        k += 1
    return found


def _number(path: PathLike, line: int, column: str, cell: str, *, positive: bool = False,
            unit: bool = False) -> float:
    """A finite float (empty -> NaN); ``positive`` for slopes, ``unit`` for c in [0, 1)."""
    if cell == "":
        return math.nan
    try:
        value = float(cell)
    except ValueError:
        raise InputError(path, line, column, f"'{cell}' is not a number") from None
    if not math.isfinite(value):
        raise InputError(path, line, column, f"'{cell}' is not a finite number")
    if positive and value <= 0:
        raise InputError(path, line, column, f"slope '{cell}' must be positive")
    if unit and not 0 <= value < 1:
        raise InputError(path, line, column, f"'{cell}' must be in [0, 1)")
    return value


def read_params(path: PathLike) -> ItemParams:
    """Read a PARAMS.csv file (see the module docstring) into :class:`ItemParams`.

    SE columns, when present, fill ``se_a/se_b/se_c`` (NaN where empty); fit columns and
    unknown columns are ignored.  Raises :class:`InputError` naming the row and column of
    the first problem.
    """
    rows = _read_rows(path)
    header_line, header = _header(path, rows)
    b_cols = _b_columns(header)
    required = ["item_id", "model", "a"] + (["b"] if "b" in header or not b_cols else [])
    for column in required:
        if column not in header:
            raise InputError(path, header_line, column, "required column is missing")
    pos = {name: i for i, name in enumerate(header)}
    has_se = any(name.startswith("se_") for name in header)

    ids: list[str] = []
    models: list[str] = []
    a_list: list[float] = []
    b_rows: list[list[float]] = []
    c_list: list[float] = []
    se_a: list[float] = []
    se_b: list[list[float]] = []
    se_c: list[float] = []
    first_line: dict[str, int] = {}
    for line, cells in rows:
        if len(cells) != len(header):
            raise InputError(path, line, None,
                             f"has {len(cells)} cells but the header has {len(header)}")
        named = dict(zip(header, cells, strict=True))

        def cell(name: str, named: dict[str, str] = named) -> str:
            return named.get(name, "")

        item = _unescape(cell("item_id"))
        if not item:
            raise InputError(path, line, "item_id", "empty item id")
        if item in first_line:
            raise InputError(path, line, "item_id",
                             f"duplicate item '{item}' (first on row {first_line[item]})")
        first_line[item] = line
        try:
            entry = catalogue.get(cell("model"))
        except ValueError:
            raise InputError(path, line, "model", f"unknown model '{cell('model')}' "
                             f"(one of {', '.join(MODELS)})") from None
        model = entry.name
        a = _number(path, line, "a", cell("a"), positive=True)
        if math.isnan(a):
            if not entry.unit_slope:
                raise InputError(path, line, "a", f"slope is required for a {model} item")
            a = 1.0
        if entry.unit_slope and a != 1.0:
            raise InputError(path, line, "a", f"a {model} item has slope 1 (found {a!r}); "
                             "use 1pl, 2pl or gpcm for another slope")
        if entry.dichotomous:
            if "b" not in pos:
                raise InputError(path, header_line, "b", "required column is missing")
            b = [_number(path, line, "b", cell("b"))]
            if math.isnan(b[0]):
                raise InputError(path, line, "b", f"difficulty is required for a {model} item")
            if entry.guessing and "c" not in pos:
                raise InputError(path, header_line, "c", "required column is missing "
                                 f"(the bank has {model} items)")
            c = _number(path, line, "c", cell("c"), unit=True)
            c = 0.0 if math.isnan(c) else c
            if not entry.guessing and c != 0.0:
                raise InputError(path, line, "c", f"a {model} item has c = 0 (found {c!r}); "
                                 "use 3pl for a lower asymptote")
            sb = [_number(path, line, "se_b", cell("se_b"))]
        else:
            b = [_number(path, line, name, cell(name)) for name in b_cols]
            while b and math.isnan(b[-1]):
                b.pop()
            if not b:
                raise InputError(path, line, "b1",
                                 f"thresholds b1.. are required for a {model} item")
            if any(math.isnan(v) for v in b):
                missing = b_cols[[math.isnan(v) for v in b].index(True)]
                raise InputError(path, line, missing, "empty threshold between filled ones")
            if entry.ordered_thresholds and any(x >= y for x, y in itertools.pairwise(b)):
                raise InputError(path, line, None, "GRM thresholds b1..bK must increase")
            c = 0.0
            sb = [_number(path, line, "se_" + name, cell("se_" + name))
                  for name in b_cols[: len(b)]]
        ids.append(item)
        models.append(model)
        a_list.append(a)
        b_rows.append(b)
        c_list.append(c)
        se_a.append(_number(path, line, "se_a", cell("se_a")))
        se_b.append(sb)
        se_c.append(_number(path, line, "se_c", cell("se_c")))
    if not ids:
        raise InputError(path, None, None, "no items after the header")

    width = max(len(b) for b in b_rows)
    b_array = np.full((len(ids), width), np.nan)
    se_b_array = np.full((len(ids), width), np.nan)
    for i, (b, sb) in enumerate(zip(b_rows, se_b)):
        b_array[i, : len(b)] = b
        se_b_array[i, : len(sb)] = sb
    try:
        return _make_params(
            item_ids=np.array(ids, dtype=str),
            model=np.array(models, dtype=str),
            a=np.array(a_list),
            b=b_array,
            c=np.array(c_list),
            n_categories=np.array([len(b) + 1 for b in b_rows], dtype=int),
            se_a=np.array(se_a) if has_se else None,
            se_b=se_b_array if has_se else None,
            se_c=np.array(se_c) if has_se else None,
        )
    except ValueError as exc:  # ItemParams' own validation; our checks should catch first
        raise InputError(path, None, None, str(exc)) from exc


def read_fit(path: PathLike) -> dict[str, np.ndarray]:
    """The fit columns of a PARAMS.csv that has them: ``{"infit": (n_items,), ...}``.

    Rows in file order (the order of :func:`read_params`'s items); empty cells are NaN;
    absent fit columns are absent from the dict.  Call after :func:`read_params`, which
    validates the rest of the file.
    """
    rows = _read_rows(path)
    _, header = _header(path, rows)
    present = [name for name in FIT_COLUMNS if name in header]
    values: dict[str, list[float]] = {name: [] for name in present}
    for line, cells in rows:
        if len(cells) != len(header):
            raise InputError(path, line, None,
                             f"has {len(cells)} cells but the header has {len(header)}")
        for name in present:
            values[name].append(_number(path, line, name, cells[header.index(name)]))
    return {name: np.array(column, dtype=float) for name, column in values.items()}


def _make_params(**fields: np.ndarray | None) -> ItemParams:
    """Build ItemParams through its validating constructor."""
    return ItemParams.from_arrays(**fields)


def _fmt(value: float) -> str:
    """Full-precision float for CSV; NaN -> empty cell."""
    value = float(value)
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _params_rows(params: ItemParams,
                 fit: Mapping[str, np.ndarray] | None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of PARAMS.csv for ``params`` (and optional fit columns)."""
    n = len(params.item_ids)
    models = [str(m) for m in params.model]
    poly = [m not in DICHOTOMOUS for m in models]
    k_max = max((int(params.n_categories[i]) - 1 for i in range(n) if poly[i]), default=0)
    b_names = [f"b{k}" for k in range(1, k_max + 1)]
    header = (["item_id", "model", "a", "b", "c"] + b_names + ["se_a", "se_b", "se_c"]
              + ["se_" + name for name in b_names] + list(FIT_COLUMNS))
    nan = np.full(n, np.nan)
    se_a = params.se_a if params.se_a is not None else nan
    se_c = params.se_c if params.se_c is not None else nan
    se_b = params.se_b if params.se_b is not None else np.full(np.shape(params.b), np.nan)
    fit = fit or {}
    for name in fit:
        if name not in FIT_COLUMNS:
            raise ValueError(f"unknown fit column {name!r}; expected {FIT_COLUMNS}")
    rows = []
    for i in range(n):
        n_thresholds = int(params.n_categories[i]) - 1
        if poly[i]:
            b, c, sb, sc = "", "", "", ""
            bk = [_fmt(params.b[i, k]) for k in range(n_thresholds)]
            sbk = [_fmt(se_b[i, k]) for k in range(n_thresholds)]
        else:
            b, c = _fmt(params.b[i, 0]), _fmt(params.c[i])
            sb, sc = _fmt(se_b[i, 0]), _fmt(se_c[i])
            bk, sbk = [], []
        pad = [""] * (k_max - len(bk))
        fit_cells = [_fmt(fit[name][i]) if name in fit else "" for name in FIT_COLUMNS]
        rows.append([_escape(str(params.item_ids[i])), models[i], _fmt(params.a[i]), b, c]
                    + bk + pad + [_fmt(se_a[i]), sb, sc] + sbk + pad + fit_cells)
    return header, rows


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def format_params(params: ItemParams, fit: Mapping[str, np.ndarray] | None = None) -> str:
    """PARAMS.csv content as a string (``fit`` maps infit/outfit/sx2/sx2_p to arrays)."""
    return _csv_text(*_params_rows(params, fit))


def write_params(path: PathLike, params: ItemParams,
                 fit: Mapping[str, np.ndarray] | None = None) -> None:
    """Write PARAMS.csv atomically (see the module docstring for the columns)."""
    text = format_params(params, fit)
    with atomic_write(path) as handle:
        handle.write(text)


def write_scores(path: PathLike, person_ids: Sequence[str], estimates: object,
                 pvs: np.ndarray | None = None) -> None:
    """Write SCORES.csv: ``person_id,theta,se`` plus ``pv1..pvN``.

    ``estimates`` is anything with ``theta`` and ``se`` arrays of shape (n_persons,)
    (e.g. ``PersonEstimates``); ``pvs`` is (n_persons, N) or None.
    """
    theta = np.asarray(estimates.theta, dtype=float)  # type: ignore[attr-defined]
    se = np.asarray(estimates.se, dtype=float)  # type: ignore[attr-defined]
    n = len(person_ids)
    if theta.shape != (n,) or se.shape != (n,):
        raise ValueError(f"theta/se shapes {theta.shape}/{se.shape} do not match {n} persons")
    n_pv = 0 if pvs is None else int(np.shape(pvs)[1])
    if pvs is not None and np.shape(pvs)[0] != n:
        raise ValueError(f"pvs shape {np.shape(pvs)} does not match {n} persons")
    header = ["person_id", "theta", "se"] + [f"pv{k}" for k in range(1, n_pv + 1)]
    rows = []
    for i in range(n):
        row = [str(person_ids[i]), _fmt(theta[i]), _fmt(se[i])]  # write_table guards
        if pvs is not None:
            row += [_fmt(v) for v in pvs[i]]
        rows.append(row)
    write_table(path, header, rows)


def write_table(path: PathLike, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Write a generic CSV table atomically; floats at full precision, text cells guarded."""
    def cell(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, (float, np.floating)):
            return _fmt(float(value))
        if isinstance(value, (bool, np.bool_)):
            return str(bool(value)).lower()
        if isinstance(value, (int, np.integer)):
            return str(int(value))
        return _escape(str(value))

    text = _csv_text(list(header), [[cell(v) for v in row] for row in rows])
    with atomic_write(path) as handle:
        handle.write(text)


@contextmanager
def atomic_write(path: PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file next to ``path``; rename it onto ``path`` only on success.

    On any exception the temporary file is removed and ``path`` is left untouched, so a
    failed run never leaves a partial output file.  Text mode writes UTF-8 without BOM.
    The file gets the usual permissions (0666 minus umask), unlike ``mkstemp``'s 0600.
    """
    target = Path(path)
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        if "b" in mode:
            handle = os.fdopen(fd, mode)
        else:
            handle = os.fdopen(fd, mode, encoding="utf-8", newline="")
        with handle:
            yield handle
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
