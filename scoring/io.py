"""Reading and writing the CSV files of the offline scoring tools.

This docstring is the documentation of the file formats used by ``learningcity calibrate``,
``score``, ``dif`` and ``link``.

Common rules (all files)
------------------------
* Comma-separated, the first non-blank line is the header.  UTF-8, with or without a
  byte-order mark (Excel's "CSV UTF-8" adds one).  Cells may be quoted the usual CSV way;
  leading and trailing spaces in cells are ignored.  Blank lines (and lines of commas
  only) are skipped.  An ``.xlsx`` workbook is read too (its first sheet).
* Every row must have as many cells as the header ("ragged" rows are refused; cells
  past the header may only be empty, as a trailing comma leaves them).  Ragged rows are
  reported before any cell, all of them at once.
* Files are read by the project's one table reader, :mod:`tabular.reading`: a file of
  up to 1 MiB by :func:`~tabular.reading.read_table` (Python's csv module, so a small
  calibration does not pay pandas' 0.15-0.2 s import), a bigger one by
  :func:`~tabular.reading.read_frame` (pandas' C parser for a plain file; the same cells
  and errors either way), then checked column by column: a 100,000 x 200 response file
  takes about 1.5 s.
* A bad file stops with :class:`InputError` ``(path, row, column, message)``; rows are
  numbered as a spreadsheet shows them, the header is row 1.  The problem named is the
  first in the file (the header's before the rows').  Readers never return partial data.
* Files written here are plain UTF-8 without a byte-order mark, ``\n`` line ends (they
  are meant to be read back by these tools: numbers at full precision, ``inf`` kept, so
  not :mod:`tabular.writing`'s spreadsheet CSV; Excel opens them fine, non-ASCII ids may
  need "Data > From Text").  Writing goes to a temporary file next to the target which
  is renamed only when complete, so a failed run leaves no half-written output.
* CSV injection guard (:mod:`tabular.guard`): a written text cell (an item or person
  id) that starts with ``= + - @``, a tab or a carriage return and is not a number gets
  a leading ``'`` so spreadsheets show it as text.  The readers remove that ``'`` again
  (from every cell), so ids round-trip.

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

    item_id,model,a,b,c[,b1..bK],se_a,se_b,se_c[,se_b1..se_bK],infit,outfit,sx2,sx2_p,
    latent_mean,latent_sd

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
* ``latent_mean``/``latent_sd``: the latent distribution θ ~ N(mean, SD²) of the
  calibration's population on this scale (``ItemParams.latent_mean/latent_sd``), the
  same value on every row (so the file stays one plain table that Excel sorts and
  filters without losing it).  ``calibrate`` writes the estimated mean and SD (a Rasch or
  PCM calibration estimates the SD; a multigroup one writes the pooled distribution of
  all its persons), ``link`` the transformed ones; ``score``, plausible values and the
  adaptive test use them as the prior.
* Numbers are written with full precision (Python ``repr``), so a write/read round trip is
  exact.
* On read, ``item_id``, ``model``, ``a`` and ``b`` (or ``b1`` for a purely polytomous bank)
  are required columns, and ``c`` when the bank has 3pl items; ``c`` defaults to 0, ``a``
  may be empty for rasch and pcm (it is 1 there by definition); ``c`` must be 0 (or
  empty) except for 3pl.  SE and fit columns are optional, unknown columns are ignored.
  The model names are case-insensitive.  ``latent_mean``/``latent_sd`` are optional: a
  file without them (written before they existed) is on the N(0, 1) scale; an empty cell
  takes the value of the other rows (a row added by hand); two different values, a
  non-number or an SD <= 0 are refused naming the row and column.

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

import contextlib
import csv
import io
import itertools
import math
import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from tabular.guard import FORMULA_START, guard_cell, unguard_cell
from tabular.reading import (
    OFFLINE_LIMITS,
    Problem,
    Table,
    TableError,
    is_xlsx,
    read_frame,
    read_header,
    read_table,
)

from . import catalogue
from .params import DICHOTOMOUS, MODELS, ItemParams

__all__ = [
    "FIT_COLUMNS",
    "LATENT_COLUMNS",
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

#: The latent distribution's columns of PARAMS.csv (one value on every row) and the
#: values a file without them means (the standard normal scale).
LATENT_COLUMNS = ("latent_mean", "latent_sd")
_LATENT_DEFAULTS = {"latent_mean": 0.0, "latent_sd": 1.0}

#: Models whose slope is fixed at 1 (``a`` may be left empty in PARAMS.csv).
UNIT_SLOPE = catalogue.UNIT_SLOPE

_INJECTION_PREFIXES = FORMULA_START  # kept for readers of this module

#: an offline file may be far larger than an upload (100,000 x 200 responses: 41 MB)
MAX_FILE_BYTES = 2 * 1024 ** 3

#: files up to this size are read without pandas (:func:`_read`)
SMALL_FILE_BYTES = 1024 ** 2

#: columns longer than this are factorised by pandas (:func:`_factorize`)
_PANDAS_CELLS = 5_000


class InputError(Exception):
    """A bad input file: which file, which 1-based line and column, what is wrong.

    ``row`` and ``column`` are None when the problem is not tied to one line or column.
    ``str(error)`` gives the user-facing message, e.g.
    ``responses.csv, row 14, column Q3: score 'x' is not an integer 0..k``.
    ``problems`` are the reader's :class:`tabular.reading.Problem` s when the file was
    refused by :mod:`tabular` (every ragged row, say; the message names the first),
    else the one problem this error names.
    """

    def __init__(self, path: PathLike, row: int | None, column: str | None, message: str,
                 problems: Sequence[Problem] | None = None):
        self.path = os.fspath(path)
        self.row = None if row is None else int(row)
        self.column = column
        self.message = message
        self.problems = list(problems) if problems is not None else [
            Problem(self.path, None, self.row, column, message)]
        super().__init__(str(self))

    def __str__(self) -> str:
        where = [self.path]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        return ", ".join(where) + ": " + self.message

    @classmethod
    def of(cls, path: PathLike, error: TableError) -> InputError:
        """The first of tabular's problems in this module's words (the messages these
        tools have always given), carrying all of them."""
        first = error.problems[0]
        row, column, message = first.row, first.column, first.message
        width = _TABLE_WIDTH.fullmatch(message)
        if message in ("the file is empty", "no header row"):
            row, column, message = None, None, "file is empty"
        elif message.startswith("not UTF-8 text"):
            message = "not valid UTF-8" + message.removeprefix("not UTF-8 text")
        elif width:
            message = f"has {width[1]} cells but the header has {width[2]}"
        if error.total > 1:
            message += f" (and {error.total - 1} more problems in the file)"
        return cls(path, row, column, message, error.problems)


#: tabular's words for a row whose width is not the header's
_TABLE_WIDTH = re.compile(r"(\d+) values but the header has (\d+) columns")


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

HeaderCheck = Callable[[int, list[str]], object]


@dataclass(frozen=True)
class _Cells:
    """A file's data rows as text: each row's line number and one object array of cells
    per header column (blank lines left out)."""

    lines: np.ndarray
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.lines)

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """``(line, cell, cell, ...)`` per row, cells in header order."""
        return zip(self.lines.tolist(), *self.columns.values(), strict=True)

    @classmethod
    def of_frame(cls, frame: Any, header: list[str]) -> _Cells:
        """The cells of :func:`tabular.reading.read_frame`'s DataFrame (views, no copy)."""
        return cls(frame.index.to_numpy(), {name: frame[name].to_numpy() for name in header})

    @classmethod
    def of_table(cls, table: Table) -> _Cells:
        """The cells of :func:`tabular.reading.read_table`'s rows."""
        lines = np.array([row.number for row in table.rows], dtype=np.int64)
        by_column = list(zip(*(row.values for row in table.rows), strict=True)) \
            if table.rows else [() for _ in table.header]
        return cls(lines, {name: _text_array(cells)
                           for name, cells in zip(table.header, by_column, strict=True)})


def _text_array(cells: Sequence[str]) -> np.ndarray:
    """Cells as a 1-D object array (``np.array`` would make a string array)."""
    out = np.empty(len(cells), dtype=object)
    out[:] = cells
    return out


def _factorize(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``cells`` and their distinct values in order of first appearance (as
    ``pandas.factorize``, which long columns use; a dict is faster below that)."""
    if len(cells) > _PANDAS_CELLS:
        # start-up cost: pandas takes 0.15-0.2 s to import; a column this long usually
        # came from read_frame, which has imported it already
        import pandas as pd

        codes, distinct = pd.factorize(cells)
        return codes, np.asarray(distinct, dtype=object)
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(cell, len(index)) for cell in cells),
                        dtype=np.intp, count=len(cells))
    return codes, _text_array(list(index))


def _first_positions(codes: np.ndarray) -> np.ndarray:
    """For each row, the position of the first row with the same code."""
    if not len(codes):
        return codes
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)]


def _read(path: PathLike, check: HeaderCheck | None = None) -> tuple[int, list[str], _Cells]:
    """The header's line, the header and the cells of a file as text, read by
    :func:`tabular.reading.read_table` (up to :data:`SMALL_FILE_BYTES`) or
    :func:`tabular.reading.read_frame` (bigger files; the same cells and errors).

    UTF-8 only (a BOM is allowed), so that a Latin-1/GBK file is refused with the line of
    the first bad byte instead of silently becoming mojibake ids; comma-separated; every
    row as wide as the header; our formula guard undone in every cell. The header (its
    names, then ``check(line, header)``) is checked before the rows, as a reader going
    down the file would.
    """
    name = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(path, None, None, f"cannot read file ({exc.strerror})") from exc
    csv_file = not is_xlsx(raw, name)
    if csv_file:
        _check_commas(path, raw)
    options: dict[str, Any] = dict(max_rows=None, max_bytes=MAX_FILE_BYTES,
                                   encodings=("utf-8",), unguard=True, check_header=False,
                                   strict_width=True, limits=OFFLINE_LIMITS)
    try:
        if len(raw) <= SMALL_FILE_BYTES:
            table = read_table(raw, name, **options)
            line, header = table.header_row, list(table.header)
        else:
            frame = read_frame(raw, name, **options)
            line = int(frame.attrs["header_row"])
            header = [str(column) for column in frame.columns]
    except TableError as exc:
        if csv_file:  # a bad header before bad rows
            with contextlib.suppress(TableError):
                header = read_header(raw, name, max_bytes=MAX_FILE_BYTES,
                                     encodings=("utf-8",))
                _check_header(path, _header_line(raw)[0], [unguard_cell(h) for h in header],
                              check)
        raise InputError.of(path, exc) from None
    _check_header(path, line, header, check)
    cells = _Cells.of_table(table) if len(raw) <= SMALL_FILE_BYTES \
        else _Cells.of_frame(frame, header)
    return line, header, cells


def _check_header(path: PathLike, line: int, header: list[str],
                  check: HeaderCheck | None) -> None:
    _check_names(path, line, header)
    if check is not None:
        check(line, header)


def _check_names(path: PathLike, line: int, header: Sequence[str]) -> None:
    """Every column named, no name twice."""
    seen: dict[str, int] = {}
    for position, column in enumerate(header, start=1):
        if not column:
            raise InputError(path, line, f"#{position}", "empty column name in the header")
        if column in seen:
            raise InputError(path, line, column,
                             f"duplicate column (columns #{seen[column]} and #{position})")
        seen[column] = position


def _header_line(raw: bytes) -> tuple[int, bytes]:
    """The first non-blank line of a CSV and its number (1 when there is none)."""
    for line, text in enumerate(raw.removeprefix(b"\xef\xbb\xbf").split(b"\n", 50), 1):
        if text.strip():
            return line, text
    return 1, b""


def _check_commas(path: PathLike, raw: bytes) -> None:
    """Refuse a CSV whose header is split by semicolons or tabs rather than commas."""
    line, text = _header_line(raw)
    commas = text.count(b",")
    if commas < max(text.count(b";"), text.count(b"\t")):
        raise InputError(path, line, None, "the header has a single column; the file must "
                         "be comma-separated" if not commas else "the file must be "
                         "comma-separated (the header has more semicolons or tabs than "
                         "commas)")


def _escape(cell: str) -> str:
    """Guard a text cell a spreadsheet would run as a formula (:mod:`tabular.guard`)."""
    return guard_cell(cell)


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


def _scores(cells: np.ndarray, top: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A column of score cells as floats and a mask of the cells :func:`_parse_score`
    refuses, parsing each distinct cell once (a column holds a handful)."""
    codes, distinct = _factorize(cells)
    values = np.empty(len(distinct))
    bad = np.zeros(len(distinct), dtype=bool)
    for k, cell in enumerate(distinct):
        try:
            values[k] = _parse_score("", 0, "", cell, top)
        except InputError:
            values[k], bad[k] = math.nan, True
    return values[codes], bad[codes]


def _first(mask: np.ndarray) -> int | None:
    """Position of the first True, or None."""
    return int(np.argmax(mask)) if mask.any() else None


def _raise_first(found: Sequence[tuple[int | None, Callable[[int], InputError]]]) -> None:
    """Raise the problem of the earliest row among ``(position, error at position)``;
    within a row the first listed, as a row-by-row check would meet them."""
    present = [(pos, k) for k, (pos, _) in enumerate(found) if pos is not None]
    if present:
        pos, k = min(present)
        raise found[k][1](pos)


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
    def check(line: int, header: list[str]) -> dict[str, int] | None:
        for name, option in ((id_col, "--id-col"), (group_col, "--group-col")):
            if name is not None and name not in header:
                raise InputError(path, line, name, f"no such column (named by {option})")
        return _long_columns(path, line, header, id_col, group_col)

    header_line, header, cells = _read(path, check)
    limits = dict(max_scores or {})

    def top(item: str) -> int | None:
        return limits.get(item, default_max)

    long = check(header_line, header)
    if long is not None:
        persons, items, matrix, groups = _read_long(path, header, long, cells, top)
    else:
        persons, items, matrix, groups = _read_wide(path, header, id_col, group_col, cells,
                                                    top)
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
               cells: _Cells, top: Callable[[str], int | None]):
    """Persons, items, matrix and groups of a wide file: each check on whole columns,
    the first problem in file order raised (ids, then the group, then scores by column)."""
    if id_col is None and "person_id" in header:
        id_col = "person_id"
    items = [name for name in header if name not in (id_col, group_col)]
    lines, columns = cells.lines, cells.columns
    n = len(cells)
    found: list[tuple[int | None, Callable[[int], InputError]]] = []
    if id_col is not None:
        ids = columns[id_col]
        empty = ids == ""
        first = _first_positions(_factorize(ids)[0])
        repeated = (first != np.arange(n)) & ~empty
        found.append((_first(empty),
                      lambda i: InputError(path, lines[i], id_col, "empty person id")))
        found.append((_first(repeated), lambda i: InputError(
            path, lines[i], id_col,
            f"duplicate person id '{ids[i]}' (first on row {lines[first[i]]})")))
        persons = ids.tolist()
    else:
        persons = [str(k) for k in range(1, n + 1)]
    groups = None
    if group_col is not None:
        groups = columns[group_col].tolist()
        found.append((_first(columns[group_col] == ""),
                      lambda i: InputError(path, lines[i], group_col, "empty group")))
    matrix = np.empty((n, len(items)))
    for j, item in enumerate(items):
        matrix[:, j], bad = _scores(columns[item], top(item))
        found.append((_first(bad), lambda i, item=item: _score_error(
            path, lines[i], item, columns[item][i], top(item), first_row=i == 0)))
    _raise_first(found)
    return persons, items, matrix, groups


def _score_error(path: PathLike, line: int, column: str, cell: str, top: int | None, *,
                 first_row: bool) -> InputError:
    """:func:`_parse_score`'s refusal of ``cell``; text in the first row is more likely an
    id or group column than a typo, and the message says so."""
    try:
        _parse_score(path, line, column, cell, top)
    except InputError as exc:
        if first_row and any(ch.isalpha() for ch in cell):
            exc.message += (f" (if column {column} is not an item, name it with "
                            "--id-col or --group-col)")
            exc.problems = [Problem(exc.path, None, line, column, exc.message)]
        return exc
    raise AssertionError(f"{cell!r} is a valid score")  # pragma: no cover


def _read_long(path: PathLike, header: list[str], columns: dict[str, int], table: _Cells,
               top: Callable[[str], int | None]):
    """Persons, items, matrix and groups of a long file (persons and items in order of
    first appearance); each check on whole columns, the first problem in file order."""
    lines = table.lines
    person_col, item_col, score_col = (header[columns[k]] for k in ("person", "item", "score"))
    people, things = table.columns[person_col], table.columns[item_col]
    p_codes, persons = _factorize(people)
    i_codes, items = _factorize(things)
    tops = np.array([np.inf if top(item) is None else top(item) for item in items])
    values, unparsed = _scores(table.columns[score_col], None)
    above = values > tops[i_codes]  # NaN (an empty or refused cell) is above nothing
    pairs = p_codes.astype(np.int64) * max(len(items), 1) + i_codes
    twice = lines[_first_positions(pairs)]

    def score_error(i: int) -> InputError:
        return _score_error(path, lines[i], score_col, table.columns[score_col][i],
                            top(things[i]), first_row=False)

    found: list[tuple[int | None, Callable[[int], InputError]]] = [
        (_first(people == ""),
         lambda i: InputError(path, lines[i], person_col, "empty person id")),
        (_first(things == ""),
         lambda i: InputError(path, lines[i], item_col, "empty item id")),
        (_first(unparsed | above), score_error),
        (_first(twice != lines), lambda i: InputError(
            path, lines[i], None, f"person '{people[i]}' has item '{things[i]}' "
            f"twice (first on row {twice[i]})"))]
    groups = None
    if "group" in columns:
        group_col = header[columns["group"]]
        cells = table.columns[group_col]
        first = np.unique(p_codes, return_index=True)[1] if len(p_codes) else p_codes
        at = first[p_codes]

        def other_group(i: int) -> InputError:
            return InputError(path, lines[i], group_col,
                              f"person '{people[i]}' is in group '{cells[i]}' here but "
                              f"in '{cells[at[i]]}' on row {lines[at[i]]}")

        found += [(_first(cells == ""),
                   lambda i: InputError(path, lines[i], group_col, "empty group")),
                  (_first(cells != cells[at]), other_group)]
        groups = cells[first].tolist()
    _raise_first(found)
    matrix = np.full((len(persons), len(items)), np.nan)
    matrix[p_codes, i_codes] = values
    return persons.tolist(), items.tolist(), matrix, groups


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

    SE columns, when present, fill ``se_a/se_b/se_c`` (NaN where empty); ``latent_mean``
    and ``latent_sd`` fill the latent distribution (0 and 1 without them); fit columns and
    unknown columns are ignored.  Raises :class:`InputError` naming the row and column of
    the first problem.
    """
    def check(line: int, header: list[str]) -> None:
        b_cols = _b_columns(header)
        required = ["item_id", "model", "a"] + (["b"] if "b" in header or not b_cols else [])
        for column in required:
            if column not in header:
                raise InputError(path, line, column, "required column is missing")

    header_line, header, table = _read(path, check)
    b_cols = _b_columns(header)
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
    latent_cells: dict[str, list[tuple[int, str]]] = {
        name: [] for name in LATENT_COLUMNS if name in pos}
    for line, *cells in table.rows():
        named = dict(zip(header, cells, strict=True))

        def cell(name: str, named: dict[str, str] = named) -> str:
            return named.get(name, "")

        item = cell("item_id")
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
        for name, found in latent_cells.items():
            found.append((line, cell(name)))
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
            **{name: _latent_value(path, name, found)
               for name, found in latent_cells.items()},
        )
    except ValueError as exc:  # ItemParams' own validation; our checks should catch first
        raise InputError(path, None, None, str(exc)) from exc


def _latent_value(path: PathLike, column: str, cells: Sequence[tuple[int, str]]) -> float:
    """The one value of a latent column: every filled cell the same, empty cells skipped
    (the default when all are empty); an SD must be positive."""
    value, first = _LATENT_DEFAULTS[column], None
    for line, cell in cells:
        number = _number(path, line, column, cell)
        if math.isnan(number):
            continue
        if column == "latent_sd" and number <= 0:
            raise InputError(path, line, column, f"latent SD '{cell}' must be positive")
        if first is None:
            value, first = number, line
        elif number != value:
            raise InputError(path, line, column,
                             f"'{cell}' differs from {value!r} on row {first}: the latent "
                             "distribution belongs to the whole scale and must be the same "
                             "on every row")
    return value


def read_fit(path: PathLike) -> dict[str, np.ndarray]:
    """The fit columns of a PARAMS.csv that has them: ``{"infit": (n_items,), ...}``.

    Rows in file order (the order of :func:`read_params`'s items); empty cells are NaN;
    absent fit columns are absent from the dict.  Call after :func:`read_params`, which
    validates the rest of the file.
    """
    _, header, table = _read(path)
    present = [name for name in FIT_COLUMNS if name in header]
    values: dict[str, list[float]] = {name: [] for name in present}
    for line, *cells in table.rows():
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
              + ["se_" + name for name in b_names] + list(FIT_COLUMNS) + list(LATENT_COLUMNS))
    nan = np.full(n, np.nan)
    se_a = params.se_a if params.se_a is not None else nan
    se_c = params.se_c if params.se_c is not None else nan
    se_b = params.se_b if params.se_b is not None else np.full(np.shape(params.b), np.nan)
    fit = fit or {}
    for name in fit:
        if name not in FIT_COLUMNS:
            raise ValueError(f"unknown fit column {name!r}; expected {FIT_COLUMNS}")
    latent = [_fmt(params.latent_mean), _fmt(params.latent_sd)]
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
                    + bk + pad + [_fmt(se_a[i]), sb, sc] + sbk + pad + fit_cells + latent)
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
