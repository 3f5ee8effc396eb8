"""``learningcity groupstats``: design-based group statistics from a file, offline.

    learningcity groupstats DATA.csv --value COL [--stat mean|proportion|total]
        [--level VALUE] [--by COL ...] --weight COL [--strata COL] [--psu COL]
        [--fpc COL] --out OUT.csv

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

The design is R's ``svydesign(ids=~psu, strata=~strata, weights=~weight, fpc=~fpc,
nest=TRUE)`` and the estimates are ``svymean``/``svytotal`` (``svyby`` for domains):
Taylor linearisation with the with-replacement approximation at the first stage, or
``--replicates jackknife`` (JK1/JKn, R's ``as.svrepdesign``).  Domains are
subpopulations of the whole design (units outside contribute zero), as ``svyby``.

Output (CSV, UTF-8 with BOM, written atomically): one row per group, the ``--by``
columns under their own names, then ``estimate,se,ci_low,ci_high,n,deff,suppressed``
and ``reason``.  ``n`` counts respondents with a value in the group.  A cell with
``n < --min-n`` (default 30) is *suppressed*: estimate, se, interval and deff are left
empty, ``suppressed=1``, ``reason=small_n``.  A cell whose relative standard error
exceeds ``--max-rse`` (default 0.30) keeps its numbers with ``reason=high_rse`` (or is
suppressed with ``--rse-action suppress``).  Intervals are t intervals with the design
degrees of freedom (#PSUs - #strata) unless ``--ci normal``.

Bad input (a missing column, a non-numeric value, a negative weight, a fpc that varies
within a stratum, a stratum with a single PSU under ``--lonely-psu fail``) stops with an
error naming the file, row and column; nothing is written.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import click
import numpy as np
import pandas as pd
from tqdm import tqdm

from monitoring.stats.estimates import (
    LONELY_PSU,
    MAX_RSE,
    MIN_N,
    Design,
    ReplicateDesign,
    jackknife,
    suppress,
    survey_mean,
    survey_proportion,
    survey_total,
)
from scoring.io import atomic_write
from tabular import reading
from tabular.guard import guard_cell  # noqa: F401 (the guard write_table applies; tested)
from tabular.reading import Problem, TableError
from tabular.writing import write_table

__all__ = ["OUTPUT_COLUMNS", "GroupStatsError", "compute_groupstats", "groupstats",
           "read_table", "write_groupstats"]

#: Columns after the ``--by`` columns, in this order.
OUTPUT_COLUMNS = ("estimate", "se", "ci_low", "ci_high", "n", "deff", "suppressed", "reason")

_MISSING = {"", "NA", "N/A", "NaN", "nan", "."}
#: an offline file may be larger than an upload (1,000,000 rows are about 56 MB)
MAX_FILE_BYTES = 2 * 1024 ** 3
#: the index name of :func:`tabular.reading.read_frame` (the file's row numbers)
ROW_INDEX = "row"


class GroupStatsError(ValueError):
    """Bad input: the message names the file, row (1-based, header = 1) and column."""


@dataclass(frozen=True)
class Where:
    """File name and the row numbering of a loaded table: the file's row numbers when
    known, else row 2 for position 0 (the header is row 1)."""

    path: str
    rows: np.ndarray | None = None

    def at(self, i: int, column: str, what: str) -> GroupStatsError:
        row = int(self.rows[i]) if self.rows is not None else i + 2
        return GroupStatsError(f"{self.path}: row {row}, column {column!r}: {what}")


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
                               strict_width=True)
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
) -> pd.DataFrame:
    """Validate a respondent table and return the published group table.

    Columns: the ``by`` columns, then :data:`OUTPUT_COLUMNS` (plus ``df`` and
    ``unreliable``).  Raises :class:`GroupStatsError` naming ``source``, row and column
    on bad input.
    """
    where = Where(source, _row_numbers(df))
    if stat not in ("mean", "proportion", "total"):
        raise GroupStatsError(f"--stat must be mean, proportion or total, not {stat!r}")
    if level is not None and stat != "proportion":
        raise GroupStatsError("--level only applies to --stat proportion")
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

    try:
        design: Design | ReplicateDesign = Design.from_arrays(
            w, h, p, f, lonely_psu=lonely_psu,
            names={"weights": weight, "strata": strata or "strata", "psu": psu or "psu",
                   "fpc": fpc or "fpc", "ssu": ssu or "ssu", "fpc2": fpc2 or "fpc2"},
            ssu=q, fpc2=f2)
        if replicates == "jackknife":
            design = jackknife(design, dense=False)
        elif replicates is not None:
            raise GroupStatsError(f"--replicates must be jackknife, not {replicates!r}")
    except GroupStatsError:
        raise
    except ValueError as exc:
        msg = str(exc).replace("use lonely_psu='adjust', 'certainty' or 'remove'",
                               "use --lonely-psu adjust, certainty or remove")
        raise GroupStatsError(f"{source}: {msg}") from None

    groups = None
    if by:
        groups = pd.DataFrame({b: _labels(df, b, where, allow_missing=True) for b in by})
    fn = {"mean": survey_mean, "total": survey_total}
    if stat == "proportion":
        est = survey_proportion(design, y, by=groups, ci=ci, conf=conf)
    else:
        est = fn[stat](design, y, by=groups, ci=ci, conf=conf)
    try:
        table = suppress(est, min_n=min_n, max_rse=max_rse, rse_action=rse_action)
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


@click.command("groupstats")
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--value", required=True, help="Column to estimate.")
@click.option("--stat", type=click.Choice(["mean", "proportion", "total"]), default="mean",
              show_default=True)
@click.option("--level", default=None,
              help="For --stat proportion: the share of rows whose value equals LEVEL.")
@click.option("--by", "by", multiple=True, help="Domain column (repeat to cross several).")
@click.option("--weight", required=True, help="Final weight column.")
@click.option("--strata", default=None, help="Stratum column.")
@click.option("--psu", default=None, help="Primary sampling unit column (nested in strata).")
@click.option("--fpc", default=None,
              help="Stratum population size column, or sampling fractions when all <= 1.")
@click.option("--ssu", default=None,
              help="Second-stage unit column (nested in PSUs; needs --fpc2).")
@click.option("--fpc2", default=None,
              help="Second-stage population size per PSU (or fractions when all <= 1).")
@click.option("--lonely-psu", type=click.Choice(list(LONELY_PSU)), default="fail",
              show_default=True, help="A stratum with one PSU: as R's survey.lonely.psu.")
@click.option("--replicates", type=click.Choice(["jackknife"]), default=None,
              help="Jackknife (JK1/JKn) variances instead of Taylor linearisation.")
@click.option("--ci", type=click.Choice(["t", "normal"]), default="t", show_default=True,
              help="t (design df) or normal confidence intervals.")
@click.option("--conf", type=float, default=0.95, show_default=True,
              help="Confidence level.")
@click.option("--min-n", type=click.IntRange(min=0), default=MIN_N, show_default=True,
              help="Suppress cells with fewer respondents.")
@click.option("--max-rse", type=click.FloatRange(min=0, min_open=True), default=MAX_RSE,
              show_default=True, help="Flag cells whose relative standard error is above.")
@click.option("--rse-action", type=click.Choice(["flag", "suppress"]), default="flag",
              show_default=True, help="What to do with a cell above --max-rse.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output CSV.")
def groupstats(data: str, value: str, stat: str, level: str | None, by: tuple[str, ...],
               weight: str, strata: str | None, psu: str | None, fpc: str | None,
               ssu: str | None, fpc2: str | None, lonely_psu: str, replicates: str | None,
               ci: str, conf: float, min_n: int, max_rse: float, rse_action: str,
               out: str) -> None:
    """Weighted means, proportions or totals by group with design-based standard errors."""
    steps = tqdm(total=3, desc="groupstats", unit="step", disable=None, leave=False)
    try:
        steps.set_postfix_str("reading")
        df = read_table(data)
        steps.update()
        steps.set_postfix_str("estimating")
        table = compute_groupstats(df, value, weight, stat=stat, level=level, by=by,
                                   strata=strata, psu=psu, fpc=fpc, ssu=ssu, fpc2=fpc2,
                                   lonely_psu=lonely_psu,
                                   replicates=replicates, ci=ci, conf=conf, min_n=min_n,
                                   max_rse=max_rse, rse_action=rse_action, source=data)
        steps.update()
        steps.set_postfix_str("writing")
        write_groupstats(out, table, by)
        steps.update()
    except (GroupStatsError, TableError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        steps.close()
    n_sup = int(table["suppressed"].sum())
    click.echo(f"{len(table)} group(s) written to {out}"
               + (f"; {n_sup} suppressed (n < {min_n}" if n_sup else "")
               + (f" or RSE > {max_rse:g})" if n_sup and rse_action == "suppress" else
                  (")" if n_sup else "")), err=True)
