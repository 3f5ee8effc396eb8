"""``learningcity groupstats``: design-based group statistics from a file, offline.

    learningcity groupstats DATA.csv --value COL [--stat mean|proportion|total]
        [--level VALUE] [--by COL ...] --weight COL [--strata COL] [--psu COL]
        [--fpc COL] [--ssu COL --fpc2 COL] [--lonely-psu OPTION]
        [--calibrate MARGINS.csv [--calibrate-method poststratify|rake]]
        [--ci-method logit|beta|wald] [--df design|domain] --out OUT.csv

Input: CSV (UTF-8 with or without BOM, or GBK; cells may be quoted) or XLSX (first
sheet), one row per respondent, first row the header, read with the project's one table
reader (``tabular.reading.read_frame``: a plain CSV -- no quoted cell -- is split by
pandas' C parser, anything else by ``read_table``, with the same cells and errors).
Row numbers in messages count the header as row 1 (CSV
records -- the file line unless a quoted cell spans lines; XLSX sheet rows).  Blank rows
are skipped; a row with fewer cells than the header, or values beyond it, is refused.
The cells are read as text (a frame indexed by row number); numeric columns are then
parsed by pandas, because the estimators take float arrays and ``pandas.to_numeric``
makes one in a single call per column that leaves exactly the unparsable cells NaN, so
only those are looked at one by one to name their row (about 0.4 s per million cells,
no faster than a Python ``float()`` loop, but with no per-cell error handling).

* ``--value`` numbers for mean/total; for ``proportion`` either 0/1 or, with
  ``--level VALUE``, any text compared with VALUE.  Empty cells and ``NA`` are missing:
  the respondent stays in the design but in no domain (R's ``na.rm=TRUE``).
* ``--weight`` finite numbers >= 0; ``--strata``/``--psu`` labels (PSUs are nested in
  strata, R's ``nest=TRUE``); ``--fpc`` the stratum's population size (PSUs in the
  stratum, or units without ``--psu``) or, when all values are <= 1, the sampling
  fraction -- constant within a stratum.  None of these may be missing.
* ``--by`` columns (repeatable, crossed); a missing label puts the row in no domain.
* ``--ssu COL --fpc2 COL`` (with ``--psu`` and ``--fpc``): second-stage units and
  their population size per PSU; the variance then adds R's second-stage term, as
  ``svydesign(ids=~psu+ssu, fpc=~fpc+fpc2)``.  Without them the variance is the
  with-replacement first-stage one (conservative when first-stage fractions are small).
* ``--lonely-psu`` a stratum with one PSU, as R's ``options(survey.lonely.psu=)``:
  ``fail`` (default), ``certainty``, ``remove``, ``adjust`` or ``average``.

The design is R's ``svydesign(ids=~psu, strata=~strata, weights=~weight, fpc=~fpc,
nest=TRUE)`` and the estimates are ``svymean``/``svytotal`` (``svyby`` for domains):
Taylor linearisation with the with-replacement approximation at the first stage, or
``--replicates jackknife`` (JK1/JKn, R's ``as.svrepdesign``).  Domains are
subpopulations of the whole design (units outside contribute zero), as ``svyby``.

Calibration (``--calibrate MARGINS.csv``): a file with columns ``variable, level,
total`` (read by the same table reader), one row per level of each calibration
variable -- a column of DATA -- with its population count.  The ``--weight`` column is
the starting weight; one variable post-stratifies (R's ``postStratify``), several rake
(R's ``rake``, to convergence: every margin within 1e-10 relative).  The design records
the calibration, so standard errors are calibration-aware, as R's.  Post-stratifying on
several variables needs the population of every crossed cell, which margins do not
give: ``--calibrate-method poststratify`` with several variables is refused (rake them,
or put the crossed cell in one DATA column, e.g. ``E|Yes``, and give that column's
totals).  Levels are compared as text, after stripping spaces.  With ``--replicates``
every replicate is recalibrated (as R's calibration of a ``svyrep.design``).  A bad
margins file -- an unknown variable, an empty or duplicate row, a missing, non-numeric
or negative total, a level of the data without a total, a level with a positive total
but no respondent, raking margins of different grand totals -- stops with an error
naming the file, row and column; nothing is written.

Intervals: t with the design degrees of freedom (#PSUs - #strata) unless ``--ci
normal``; ``--df domain`` takes each domain's own (PSUs with a member minus their
strata, R's ``degf(subset(design, domain))``).  Default: ``design`` for the whole
population, ``domain`` with ``--by`` (what the NCHS standard and the published cells
use).  A calibrated replicate design has only the design's df.  Proportions get R's
``svyciprop`` intervals (``--ci-method``): ``logit`` (default), ``beta``
(Korn-Graubard) or ``wald``; the Korn-Graubard n is the domain's respondents (R's
``svyciprop`` takes the whole sample's n for a domain of a calibrated design).

Output (CSV, UTF-8 with BOM, written atomically): one row per group, the ``--by``
columns under their own names, then ``estimate,se,ci_low,ci_high,n,deff,suppressed``
and ``reason``.  ``n`` counts respondents with a value in the group.  The publication
rule is :func:`monitoring.stats.suppression.suppress` (``docs/suppression.md``):

* every statistic: ``n < --min-n`` (default 30) is withheld -- estimate, se, interval
  and deff empty, ``suppressed=1`` -- with ``reason=small_n``;
* means and totals: a relative standard error above ``--max-rse`` (default 0.30) keeps
  its numbers with ``reason=high_rse`` (withheld with ``--rse-action suppress``);
* proportions (``--proportion-rule nchs``, the default): the NCHS Data Presentation
  Standards for Proportions instead of the RSE rule, on the Korn-Graubard 95 %
  interval with the interval's df (also under ``--ci normal``): withheld with
  ``reason`` ``nchs_n_eff`` (effective sample size < 30), ``nchs_width`` (interval
  width >= 0.30) or ``nchs_rel_width`` (width > 0.05 and width/p > 1.30); published
  but to be reviewed with ``nchs_df`` (df < 8), ``nchs_0_or_100`` (p is 0 or 1) or
  ``nchs_complement`` (width/(1-p) > 1.30).  ``--proportion-rule rse`` judges
  proportions as means (min-n and RSE), as before the NCHS rule.

Bad input (a missing column, a non-numeric value, a negative weight, a fpc that varies
within a stratum, a stratum with a single PSU under ``--lonely-psu fail``, a bad
margins file) stops with an error naming the file, row and column; nothing is written.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import click
import numpy as np
import pandas as pd
from tqdm import tqdm

from monitoring.stats import calibration
from monitoring.stats.design import LONELY_PSU, Design, ReplicateDesign, jackknife
from monitoring.stats.estimates import (
    CI_METHODS,
    DF_METHODS,
    Estimates,
    survey_mean,
    survey_proportion,
    survey_total,
)
from monitoring.stats.suppression import MAX_RSE, MIN_N, suppress
from scoring.io import atomic_write
from tabular import reading
from tabular.guard import guard_cell  # noqa: F401 (the guard write_table applies; tested)
from tabular.reading import Problem, Problems, TableError
from tabular.writing import write_table

__all__ = ["CALIBRATE_METHODS", "MARGIN_COLUMNS", "OUTPUT_COLUMNS", "PROPORTION_RULES",
           "GroupStatsError", "Margin", "Margins", "compute_groupstats", "groupstats",
           "read_margins", "read_table", "write_groupstats"]

#: Columns after the ``--by`` columns, in this order.
OUTPUT_COLUMNS = ("estimate", "se", "ci_low", "ci_high", "n", "deff", "suppressed", "reason")

_MISSING = {"", "NA", "N/A", "NaN", "nan", "."}
#: an offline file may be larger than an upload (1,000,000 rows are about 56 MB)
MAX_FILE_BYTES = 2 * 1024 ** 3
#: the index name of :func:`tabular.reading.read_frame` (the file's row numbers)
ROW_INDEX = "row"
#: the columns of a ``--calibrate`` margins file, in this order
MARGIN_COLUMNS = ("variable", "level", "total")
#: a margins file has one row per level of a few variables
MAX_MARGIN_ROWS = 100_000
#: ``--calibrate-method``: one variable post-stratifies, several rake (None: by the file)
CALIBRATE_METHODS = ("poststratify", "rake")
#: raking margins must have the same grand total within this relative difference (as
#: :func:`monitoring.stats.weights.rake`)
GRAND_TOTAL_RTOL = 1e-6
#: ``--proportion-rule``: proportions by the NCHS standard, or by n and RSE as means
PROPORTION_RULES = ("nchs", "rse")
#: a calibrated jackknife recalibrates every replicate on the dense n x #PSUs weights;
#: more cells than this (400 MB of floats) are refused
MAX_REPLICATE_CELLS = 50_000_000


class GroupStatsError(ValueError):
    """Bad input: the message names the file, row (1-based, header = 1) and column."""


@dataclass(frozen=True)
class Where:
    """File name and the row numbering of a loaded table: the file's row numbers when
    known, else row 2 for position 0 (the header is row 1)."""

    path: str
    rows: np.ndarray | None = None

    def row(self, i: int) -> int:
        """The file's row number of position ``i``."""
        return int(self.rows[i]) if self.rows is not None else i + 2

    def at(self, i: int, column: str, what: str) -> GroupStatsError:
        return GroupStatsError(f"{self.path}: row {self.row(i)}, column {column!r}: {what}")


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV (UTF-8, UTF-8 with BOM or GBK) or XLSX (first sheet) file as text cells
    with the project's one table reader (:func:`tabular.reading.read_frame`: pandas' C
    parser for a plain CSV, :func:`tabular.reading.read_table` for anything else).

    The frame is indexed by each row's number in the file (header = row 1), so messages
    name the row a spreadsheet shows. Blank rows are skipped; a row with fewer cells than
    the header or values beyond it, an empty or repeated column name, a missing or
    unreadable file or one without data rows is a :class:`~tabular.reading.TableError`
    naming file, row and column of every problem.
    """
    name = str(path)
    frame = reading.read_frame(path, name, max_rows=None, max_bytes=MAX_FILE_BYTES,
                               strict_width=True, limits=reading.OFFLINE_LIMITS)
    if not len(frame):
        raise TableError([Problem(name, frame.attrs["sheet"], None, None, "no data rows")])
    return frame


def _row_numbers(df: pd.DataFrame) -> np.ndarray | None:
    """The file's row numbers of a frame from :func:`read_table` (its index), else None."""
    return df.index.to_numpy() if df.index.name == ROW_INDEX else None


def _numbers(df: pd.DataFrame, col: str, where: Where, allow_missing: bool) -> np.ndarray:
    """A numeric column; missing cells (empty, NA, ...) are NaN, anything else that is
    not a finite number is an error naming the row.  Parsed by pandas in C; only the
    cells that do not parse at once are looked at in Python."""
    raw = df[col]
    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float).copy()
    missing = np.zeros(num.size, dtype=bool)
    idx = np.flatnonzero(np.isnan(num))
    if idx.size:
        sub = raw.iloc[idx].astype(str).str.strip()
        miss_sub = sub.isin(_MISSING).to_numpy()
        num[idx] = pd.to_numeric(sub.mask(miss_sub), errors="coerce").to_numpy(dtype=float)
        missing[idx[miss_sub]] = True
        bad = idx[~miss_sub & np.isnan(num[idx])]
        if bad.size:
            i = int(bad[0])
            raise where.at(i, col, f"{str(raw.iloc[i]).strip()!r} is not a number")
    if missing.any() and not allow_missing:
        i = int(np.argmax(missing))
        raise where.at(i, col, "a value is required here (the cell is empty)")
    inf = np.isinf(num)
    if inf.any():
        i = int(np.argmax(inf))
        raise where.at(i, col, f"{str(raw.iloc[i]).strip()!r} is not a finite number")
    return num


def _labels(df: pd.DataFrame, col: str, where: Where, allow_missing: bool) -> np.ndarray:
    """A label column as an object array (None = missing), labels stripped of spaces.
    Works on the distinct values, so a million rows cost one hash pass."""
    codes, uniq = pd.factorize(df[col].to_numpy(dtype=object))
    text = np.array([str(u).strip() for u in uniq], dtype=object)
    miss_u = np.isin(text, list(_MISSING))
    missing = miss_u[codes]
    if missing.any() and not allow_missing:
        i = int(np.argmax(missing))
        raise where.at(i, col, "a label is required here (the cell is empty)")
    return np.where(miss_u, None, text)[codes]


@dataclass(frozen=True)
class Margin:
    """One row of a margins file: the population count of one level of one variable,
    and the row of the file it is on (header = row 1)."""

    variable: str
    level: str
    total: float
    row: int


@dataclass(frozen=True)
class Margins:
    """Population margins read from a file by :func:`read_margins`, rows in file order.

    ``path`` and ``sheet`` name the file in messages."""

    path: str
    rows: tuple[Margin, ...]
    sheet: str | None = None

    @property
    def variables(self) -> list[str]:
        """The calibration variables, in the order they first appear."""
        return list(dict.fromkeys(m.variable for m in self.rows))

    def of(self, variable: str) -> list[Margin]:
        return [m for m in self.rows if m.variable == variable]

    def problems(self) -> Problems:
        """A collector for problems of this file (named in every message)."""
        return Problems(self.path, self.sheet)


def _rows_text(margins: list[Margin]) -> str:
    rows = [m.row for m in margins]
    if rows == list(range(rows[0], rows[0] + len(rows))) and len(rows) > 1:
        return f"rows {rows[0]}-{rows[-1]}"
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(map(str, rows))


def read_margins(path: str | os.PathLike[str]) -> Margins:
    """Read a ``--calibrate`` margins file (columns ``variable, level, total``; CSV or
    XLSX, through the data file's reader :func:`tabular.reading.read_frame`).

    Every problem of the file itself is listed in one
    :class:`~tabular.reading.TableError` naming file, row and column: a missing or
    unknown column, an empty variable or level, a total that is empty, not a number or
    negative, a (variable, level) given twice, no data rows.  Whether the variables and
    levels fit the data is checked by :func:`compute_groupstats`.
    """
    name = str(path)
    frame = reading.read_frame(path, name, max_rows=MAX_MARGIN_ROWS,
                               required=MARGIN_COLUMNS, strict_width=True)
    sheet = frame.attrs.get("sheet")
    problems = Problems(name, sheet)
    line = frame.attrs.get("header_row", 1)
    for col in frame.columns:
        if col not in MARGIN_COLUMNS:
            problems.add(line, col, "unknown column; a margins file has the columns "
                                    + ", ".join(MARGIN_COLUMNS))
    rows: list[Margin] = []
    seen: dict[tuple[str, str], int] = {}
    for number, variable, level, raw in zip(frame.index, frame["variable"], frame["level"],
                                            frame["total"]):
        number = int(number)
        if not variable:
            problems.add(number, "variable", "empty: name the DATA column this level is of")
        if not level:
            problems.add(number, "level", "empty: give the level (as DATA has it)")
        try:
            total = float(raw)
        except ValueError:
            problems.add(number, "total", f"{raw!r} is not a number" if raw else
                         "empty: give the population count")
            total = math.nan
        else:
            if not math.isfinite(total) or total < 0:
                problems.add(number, "total", f"{raw!r} is not a population count (a "
                                              "finite number >= 0)")
        key = (variable, level)
        if variable and level:
            if key in seen:
                problems.add(number, "level", f"duplicate: {variable!r} level {level!r} is "
                                              f"also on row {seen[key]}")
            seen.setdefault(key, number)
        rows.append(Margin(variable, level, total, number))
    if not rows and not problems:
        problems.add(None, None, "no data rows")
    problems.raise_if_any()
    return Margins(name, tuple(rows), sheet)


def _calibration_cells(df: pd.DataFrame, w: np.ndarray, margins: Margins,
                       method: str | None, where: Where
                       ) -> tuple[str, pd.DataFrame, dict[str, pd.Series]]:
    """Check ``margins`` against the data (weights ``w``); return the method, the
    calibration variables' labels (a frame, row for row with ``df``) and each variable's
    totals by level.

    A data cell problem (an empty label) names the data file, row and column; the
    margins problems are listed together, each naming the margins file, row and column.
    """
    variables = margins.variables
    if method is None:
        method = "poststratify" if len(variables) == 1 else "rake"
    if method not in CALIBRATE_METHODS:
        raise GroupStatsError("--calibrate-method must be one of "
                              f"{', '.join(CALIBRATE_METHODS)}, not {method!r}")
    if method == "poststratify" and len(variables) > 1:
        raise GroupStatsError(
            f"{margins.path}: --calibrate-method poststratify with several variables "
            f"({', '.join(variables)}): post-stratification needs the population of every "
            "crossed cell, which margins do not give; use --calibrate-method rake, or put "
            "the crossed cell in one DATA column and give that column's totals")
    problems = margins.problems()
    for v in variables:
        if v not in df.columns:
            problems.add(margins.of(v)[0].row, "variable",
                         f"{v!r} is not a column of {where.path} (its columns: "
                         + ", ".join(map(repr, df.columns)) + ")")
    if problems:
        raise GroupStatsError(str(problems.error()))
    labels: dict[str, np.ndarray] = {}
    totals: dict[str, pd.Series] = {}
    for v in variables:
        lab = _labels(df, v, where, allow_missing=True)
        empty = pd.isna(lab)
        if empty.any():
            raise where.at(int(np.argmax(empty)), v,
                           f"empty, but --calibrate needs every respondent's {v!r}")
        labels[v] = lab
        rows = margins.of(v)
        given = {m.level for m in rows}
        codes, levels = pd.factorize(lab)
        weight = np.bincount(codes, weights=w, minlength=len(levels))
        for k, level in enumerate(levels):
            if level not in given:
                i = int(np.argmax(codes == k))
                problems.add(None, "level",
                             f"no total for {v!r} level {level!r} ({where.path} row "
                             f"{where.row(i)}, column {v!r}, has it); {v!r} is on "
                             f"{_rows_text(rows)}")
        present = dict(zip(levels, weight))
        for m in rows:
            if m.total > 0 and m.level not in present:
                problems.add(m.row, "level", f"no respondent in {where.path} has {v!r} = "
                                             f"{m.level!r}, so its total {m.total:g} cannot "
                                             "be met")
            elif m.total > 0 and present[m.level] <= 0:
                problems.add(m.row, "level", f"the respondents with {v!r} = {m.level!r} all "
                                             f"have weight 0, so its total {m.total:g} "
                                             "cannot be met")
        totals[v] = pd.Series({m.level: m.total for m in rows}, dtype=float)
    if method == "rake":
        first = variables[0]
        grand = float(totals[first].sum())
        for v in variables[1:]:
            s = float(totals[v].sum())
            if abs(s - grand) > GRAND_TOTAL_RTOL * max(abs(grand), 1.0):
                problems.add(margins.of(v)[0].row, "total",
                             f"{v!r} ({_rows_text(margins.of(v))}) totals {s:g}, but "
                             f"{first!r} ({_rows_text(margins.of(first))}) totals "
                             f"{grand:g}: raking needs margins of the same grand total")
    if problems:
        raise GroupStatsError(str(problems.error()))
    return method, pd.DataFrame(labels), totals


def compute_groupstats(
    df: pd.DataFrame,
    value: str,
    weight: str,
    stat: str = "mean",
    level: str | None = None,
    by: tuple[str, ...] = (),
    strata: str | None = None,
    psu: str | None = None,
    fpc: str | None = None,
    ssu: str | None = None,
    fpc2: str | None = None,
    lonely_psu: str = "fail",
    replicates: str | None = None,
    ci: str = "t",
    conf: float = 0.95,
    min_n: int = MIN_N,
    max_rse: float | None = MAX_RSE,
    rse_action: str = "flag",
    source: str = "DATA",
    calibrate: Margins | None = None,
    calibrate_method: str | None = None,
    ci_method: str | None = None,
    df_method: str | None = None,
    proportion_rule: str = "nchs",
) -> pd.DataFrame:
    """Validate a respondent table and return the published group table.

    ``calibrate``: margins (:func:`read_margins`) to post-stratify or rake the design to,
    starting from the ``weight`` column (``calibrate_method`` None: post-stratify to one
    variable, rake to several).  ``ci_method``: the proportion interval (None: logit;
    means and totals have only ``"wald"``, the t or normal interval).  ``df_method``:
    ``"design"`` or ``"domain"`` (None: design without ``by``, domain with).
    ``proportion_rule``: ``"nchs"`` (the NCHS standard for proportions) or ``"rse"``.

    Columns: the ``by`` columns, then :data:`OUTPUT_COLUMNS` (plus ``df`` -- the
    interval's df; for proportions under the NCHS rule and ``ci="normal"``, the t df the
    rule used -- and ``unreliable``).  Raises :class:`GroupStatsError` naming ``source``
    (or the margins file), row and column on bad input.
    """
    where = Where(source, _row_numbers(df))
    if stat not in ("mean", "proportion", "total"):
        raise GroupStatsError(f"--stat must be mean, proportion or total, not {stat!r}")
    if level is not None and stat != "proportion":
        raise GroupStatsError("--level only applies to --stat proportion")
    if ci_method is None:
        ci_method = "logit" if stat == "proportion" else "wald"
    if ci_method not in CI_METHODS:
        raise GroupStatsError(f"--ci-method must be one of {', '.join(CI_METHODS)}, "
                              f"not {ci_method!r}")
    if stat != "proportion" and ci_method != "wald":
        raise GroupStatsError(f"--ci-method {ci_method} is for --stat proportion; a "
                              f"{stat} has the t (or normal) interval, estimate ± t·se")
    if df_method is None:
        df_method = "domain" if by else "design"
    if df_method not in DF_METHODS:
        raise GroupStatsError(f"--df must be one of {', '.join(DF_METHODS)}, "
                              f"not {df_method!r}")
    if proportion_rule not in PROPORTION_RULES:
        raise GroupStatsError(f"--proportion-rule must be one of "
                              f"{', '.join(PROPORTION_RULES)}, not {proportion_rule!r}")
    if calibrate_method is not None and calibrate is None:
        raise GroupStatsError("--calibrate-method needs --calibrate MARGINS.csv")
    named = [("--value", value), ("--weight", weight), ("--strata", strata), ("--psu", psu),
             ("--fpc", fpc), ("--ssu", ssu), ("--fpc2", fpc2)] + [("--by", b) for b in by]
    for opt, col in named:
        if col is not None and col not in df.columns:
            raise GroupStatsError(f"{source}: no column {col!r} ({opt}); the columns are "
                                  + ", ".join(map(repr, df.columns)))
    if len(set(by)) != len(by):
        raise GroupStatsError("--by: a column is named twice")
    if value in by:
        raise GroupStatsError(f"--by {value!r} is also the --value column")
    if not 0 < conf < 1:
        raise GroupStatsError("--conf must be between 0 and 1 (e.g. 0.95)")

    w = _numbers(df, weight, where, allow_missing=False)
    neg = w < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise where.at(i, weight, f"negative weight {str(df[weight].iloc[i]).strip()!r}")
    h = None if strata is None else _labels(df, strata, where, allow_missing=False)
    p = None if psu is None else _labels(df, psu, where, allow_missing=False)
    f = None
    if fpc is not None:
        f = _numbers(df, fpc, where, allow_missing=False)
        nonpos = f <= 0
        if nonpos.any():
            i = int(np.argmax(nonpos))
            raise where.at(i, fpc, f"population size or fraction must be positive, "
                           f"not {str(df[fpc].iloc[i]).strip()!r}")
        key = pd.Series(np.zeros(len(df), dtype=np.int64) if h is None else h)
        first = pd.Series(f).groupby(key.to_numpy()).transform("first").to_numpy()
        vary = np.abs(f - first) > 1e-9 * np.maximum(np.abs(first), 1.0)
        if vary.any():
            i = int(np.argmax(vary))
            scope = "the file" if h is None else f"stratum {h[i]!r}"
            cell = str(df[fpc].iloc[i]).strip()
            raise where.at(i, fpc, f"{cell!r} differs from {first[i]:g} earlier in {scope}: "
                           "the fpc must be constant within a stratum")

    if (ssu is None) != (fpc2 is None) or (ssu is not None and (psu is None or fpc is None)):
        raise GroupStatsError("--ssu and --fpc2 go together, and need --psu and --fpc (R adds "
                              "the second-stage variance only with population sizes at both "
                              "stages)")
    q = None if ssu is None else _labels(df, ssu, where, allow_missing=False)
    f2 = None if fpc2 is None else _numbers(df, fpc2, where, allow_missing=False)

    if stat == "proportion":
        raw = _labels(df, value, where, allow_missing=True)
        if level is None:
            y = _numbers(df, value, where, allow_missing=True)
            bad = np.isfinite(y) & ~np.isin(y, (0.0, 1.0))
            if bad.any():
                i = int(np.argmax(bad))
                cell = str(df[value].iloc[i]).strip()
                raise where.at(i, value, f"{cell!r} is not 0 or 1 (give --level VALUE for the "
                               "share of one answer)")
        else:
            y = np.where(pd.isna(raw), np.nan, (raw == str(level).strip()).astype(float))
    else:
        y = _numbers(df, value, where, allow_missing=True)

    cal = None
    if calibrate is not None:
        cal = _calibration_cells(df, w, calibrate, calibrate_method, where)
    if replicates is not None and replicates != "jackknife":
        raise GroupStatsError(f"--replicates must be jackknife, not {replicates!r}")

    try:
        design: Design | ReplicateDesign = Design.from_arrays(
            w, h, p, f, lonely_psu=lonely_psu,
            names={"weights": weight, "strata": strata or "strata", "psu": psu or "psu",
                   "fpc": fpc or "fpc", "ssu": ssu or "ssu", "fpc2": fpc2 or "fpc2"},
            ssu=q, fpc2=f2)
        if replicates == "jackknife":
            design = jackknife(design, dense=False)
    except ValueError as exc:
        msg = str(exc).replace("use lonely_psu='adjust', 'certainty' or 'remove'",
                               "use --lonely-psu adjust, average, certainty or remove")
        raise GroupStatsError(f"{source}: {msg}") from None
    if cal is not None:
        method, cells, totals = cal
        if isinstance(design, ReplicateDesign):
            cols = design.base.psu_stratum.size if design.base is not None else 0
            if design.n * cols > MAX_REPLICATE_CELLS:
                raise GroupStatsError(
                    f"--replicates jackknife with --calibrate recalibrates every replicate, "
                    f"which needs the {design.n} x {cols} replicate weights "
                    f"({design.n * cols * 8 / 1e9:.1f} GB); leave out --replicates (the "
                    "Taylor variance is calibration-aware too)")
        try:   # the margins were checked above; what is left is the calibration's own
            if method == "poststratify":
                (var,) = totals
                design = calibration.poststratify(design, cells[var].rename(var),
                                                  totals[var])
            else:
                design = calibration.rake(design, cells, totals)
        except ValueError as exc:
            raise GroupStatsError(f"{calibrate.path}: {method}: {exc}") from None

    groups = None
    if by:
        groups = pd.DataFrame({b: _labels(df, b, where, allow_missing=True) for b in by})

    def estimate(interval: str) -> Estimates:
        if stat == "proportion":
            return survey_proportion(design, y, by=groups, ci=interval, conf=conf,
                                     ci_method=ci_method, df=df_method)
        fn = survey_mean if stat == "mean" else survey_total
        return fn(design, y, by=groups, ci=interval, conf=conf, df=df_method)

    result = estimate(ci).table
    nchs = proportion_rule == "nchs"
    if nchs and stat == "proportion" and ci == "normal":  # NCHS judges with the t df
        result = result.assign(df=estimate("t").table["df"].to_numpy())
    try:
        table = suppress(result, min_n=min_n, max_rse=max_rse, rse_action=rse_action,
                         statistic=stat if nchs else None)
    except ValueError as exc:
        raise GroupStatsError(str(exc)) from None
    if by:   # numeric codes (districts 1, 2, ..., 10) in numeric order, text as text
        table = table.sort_values(list(by), key=_natural, kind="stable").reset_index(drop=True)
    return table


def _natural(col: pd.Series) -> pd.Series:
    num = pd.to_numeric(col, errors="coerce")
    return num if num.notna().all() else col.astype(str)


def write_groupstats(path: str | os.PathLike[str], table: pd.DataFrame,
                     by: tuple[str, ...]) -> None:
    """Write the group table as CSV atomically, through the export registry
    (:func:`tabular.writing.write_table`: UTF-8 with BOM, labels formula-guarded, floats
    with every decimal, missing numbers empty): by columns, then :data:`OUTPUT_COLUMNS`."""
    data = write_table("csv", table[list(by) + list(OUTPUT_COLUMNS)])
    with atomic_write(path, "wb") as handle:
        handle.write(data)


#: the --help epilog: what ``reason`` says (click keeps paragraphs after \b as written)
REASONS_HELP = """\b
reason (empty: published as is):
  small_n         n < --min-n: withheld (every statistic)
  high_rse        mean/total: se/|estimate| > --max-rse: flagged
                  (withheld with --rse-action suppress)
  nchs_n_eff      proportion: effective sample size < 30: withheld
  nchs_width      proportion: Korn-Graubard 95% interval width >= 0.30: withheld
  nchs_rel_width  proportion: width > 0.05 and width/p > 1.30: withheld
  nchs_df         proportion: df < 8: published, to be reviewed
  nchs_0_or_100   proportion: p = 0 or 1: published, to be reviewed
  nchs_complement proportion: width/(1-p) > 1.30: published, to be reviewed
Proportions follow the NCHS Data Presentation Standards for Proportions
(docs/suppression.md) unless --proportion-rule rse.

\b
--calibrate MARGINS.csv: columns variable,level,total, e.g.
  variable,level,total
  stype,E,4421
  stype,H,755
  stype,M,1018
Each variable is a DATA column; every level in DATA needs a total. One variable
post-stratifies, several rake (same grand total); the --weight column is the
starting weight and the SEs are calibration-aware, as R's postStratify/rake.
"""


@click.command("groupstats", epilog=REASONS_HELP)
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--value", required=True, help="Column to estimate.")
@click.option("--stat", type=click.Choice(["mean", "proportion", "total"]), default="mean",
              show_default=True)
@click.option("--level", default=None,
              help="For --stat proportion: the share of rows whose value equals LEVEL.")
@click.option("--by", "by", multiple=True, help="Domain column (repeat to cross several).")
@click.option("--weight", required=True,
              help="Final weight column (the starting weight with --calibrate).")
@click.option("--strata", default=None, help="Stratum column.")
@click.option("--psu", default=None, help="Primary sampling unit column (nested in strata).")
@click.option("--fpc", default=None,
              help="Stratum population size column, or sampling fractions when all <= 1.")
@click.option("--ssu", default=None,
              help="Second-stage unit column (nested in PSUs; needs --fpc2).")
@click.option("--fpc2", default=None,
              help="Second-stage population size per PSU (or fractions when all <= 1).")
@click.option("--lonely-psu", type=click.Choice(list(LONELY_PSU)), default="fail",
              show_default=True,
              help="A stratum with one PSU, as R's survey.lonely.psu: fail (stop), certainty "
                   "or remove (it adds no variance), adjust (the lonely PSU centred at the "
                   "population mean), average (the other strata's mean variance).")
@click.option("--replicates", type=click.Choice(["jackknife"]), default=None,
              help="Jackknife (JK1/JKn) variances instead of Taylor linearisation.")
@click.option("--calibrate", "margins", default=None, type=click.Path(dir_okay=False),
              help="Margins file (variable,level,total): calibrate the weights to these "
                   "population counts, with calibration-aware SEs.")
@click.option("--calibrate-method", type=click.Choice(list(CALIBRATE_METHODS)), default=None,
              help="poststratify (one variable) or rake. Default: poststratify for one "
                   "variable, rake for several.")
@click.option("--ci", type=click.Choice(["t", "normal"]), default="t", show_default=True,
              help="t (see --df) or normal confidence intervals.")
@click.option("--ci-method", type=click.Choice(list(CI_METHODS)), default=None,
              help="Proportions: logit (default), beta (Korn-Graubard) or wald, as R's "
                   "svyciprop.")
@click.option("--df", "df_method", type=click.Choice(list(DF_METHODS)), default=None,
              help="Degrees of freedom of t intervals: design (#PSUs - #strata) or domain "
                   "(the domain's own PSUs - strata; recommended for domains). Default: "
                   "design for the whole population, domain with --by.")
@click.option("--conf", type=float, default=0.95, show_default=True,
              help="Confidence level.")
@click.option("--min-n", type=click.IntRange(min=0), default=MIN_N, show_default=True,
              help="Suppress cells with fewer respondents.")
@click.option("--max-rse", type=click.FloatRange(min=0, min_open=True), default=MAX_RSE,
              show_default=True,
              help="Means and totals: flag cells whose relative standard error is above.")
@click.option("--rse-action", type=click.Choice(["flag", "suppress"]), default="flag",
              show_default=True, help="What to do with a cell above --max-rse.")
@click.option("--proportion-rule", type=click.Choice(list(PROPORTION_RULES)), default="nchs",
              show_default=True,
              help="Proportions: the NCHS standard, or rse (--min-n and --max-rse, as means).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output CSV.")
def groupstats(data: str, value: str, stat: str, level: str | None, by: tuple[str, ...],
               weight: str, strata: str | None, psu: str | None, fpc: str | None,
               ssu: str | None, fpc2: str | None, lonely_psu: str, replicates: str | None,
               margins: str | None, calibrate_method: str | None, ci: str,
               ci_method: str | None, df_method: str | None, conf: float, min_n: int,
               max_rse: float, rse_action: str, proportion_rule: str, out: str) -> None:
    """Weighted means, proportions or totals by group with design-based standard errors."""
    steps = tqdm(total=3, desc="groupstats", unit="step", disable=None, leave=False)
    try:
        steps.set_postfix_str("reading")
        df = read_table(data)
        cal = None if margins is None else read_margins(margins)
        steps.update()
        steps.set_postfix_str("estimating")
        table = compute_groupstats(df, value, weight, stat=stat, level=level, by=by,
                                   strata=strata, psu=psu, fpc=fpc, ssu=ssu, fpc2=fpc2,
                                   lonely_psu=lonely_psu,
                                   replicates=replicates, ci=ci, conf=conf, min_n=min_n,
                                   max_rse=max_rse, rse_action=rse_action, source=data,
                                   calibrate=cal, calibrate_method=calibrate_method,
                                   ci_method=ci_method, df_method=df_method,
                                   proportion_rule=proportion_rule)
        steps.update()
        steps.set_postfix_str("writing")
        write_groupstats(out, table, by)
        steps.update()
    except (GroupStatsError, TableError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        steps.close()
    reasons = table.loc[table["suppressed"].astype(bool), "reason"].value_counts()
    click.echo(f"{len(table)} group(s) written to {out}"
               + (f"; {int(reasons.sum())} suppressed ("
                  + ", ".join(f"{r} {k}" for r, k in reasons.items()) + ")"
                  if len(reasons) else ""), err=True)
