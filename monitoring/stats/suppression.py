"""The publication rule for small and unreliable cells (:func:`suppress`) and
complementary suppression (:func:`complementary`): one standard for pages, exports,
``learningcity groupstats`` and the monitoring database, written out in
``docs/suppression.md``.

* proportions: the NCHS Data Presentation Standards for Proportions (Parker et al.
  2017): effective sample size, Korn-Graubard interval width and relative width,
  degrees of freedom (:func:`nchs_proportions`);
* means, totals, ratios: at least :data:`MIN_N` respondents and a relative standard
  error of at most :data:`MAX_RSE`;
* complementary suppression: no withheld cell may be worked out from published cells
  through the table's linear ties (shares summing to 1, parts summing to a total).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from monitoring.stats.estimates import Estimates, korn_graubard

__all__ = ["MAX_RSE", "MIN_N", "NCHS_MAX_RELATIVE_WIDTH", "NCHS_MAX_WIDTH", "NCHS_MIN_DF",
           "NCHS_MIN_N_EFF", "NCHS_WIDTH_EXEMPT", "PROPORTION_STATS", "complementary",
           "nchs_proportions", "share_groups", "suppress"]

#: Publication rule for small cells (issue 7): an estimate from fewer respondents is
#: withheld.  Pages, exports, ``learningcity groupstats`` and the monitoring database all
#: use this one constant through :func:`suppress`.
MIN_N = 30

#: Relative standard error (se / |estimate|) above which an estimate of a mean or total
#: is unreliable (NCHS-style 30 % rule); :func:`suppress` flags or withholds such cells.
MAX_RSE = 0.30

# NCHS Data Presentation Standards for Proportions (Vital Health Stat 2(175), 2017)
#: effective sample size below which a proportion is withheld
NCHS_MIN_N_EFF = 30
#: Korn-Graubard 95 % interval width at or above which a proportion is withheld
NCHS_MAX_WIDTH = 0.30
#: interval width at or below which the relative width does not matter
NCHS_WIDTH_EXEMPT = 0.05
#: relative interval width (width / p) above which a proportion is withheld
NCHS_MAX_RELATIVE_WIDTH = 1.30
#: degrees of freedom below which a published proportion is flagged for review
NCHS_MIN_DF = 8

#: statistics judged by the NCHS standard for proportions; every other statistic by n
#: and the relative standard error
PROPORTION_STATS = frozenset({"proportion", "pv_level_share"})
_OTHER_STATS = frozenset({"mean", "total", "ratio", "pv_mean", "pv_total"})

_NUMBERS = ("estimate", "se", "ci_low", "ci_high", "deff", "within", "between", "fmi")


def nchs_proportions(p: Any, se: Any, n: Any, df: Any) -> pd.DataFrame:
    """The NCHS standard for proportions, one row per proportion.

    * ``n_eff = p(1-p)/se²``, at most ``n`` (``n`` itself at p = 0 or 1, or se = 0);
    * the Korn-Graubard 95 % interval with that n_eff, df-adjusted by
      ``(t_{n-1}/t_df)²`` and again at most ``n`` (:func:`korn_graubard` with ``cap``);
    * withheld (``suppressed``) when ``n_eff < 30`` (``"nchs_n_eff"``), else width
      ``>= 0.30`` (``"nchs_width"``), else width ``> 0.05`` and ``width/p > 1.30``
      (``"nchs_rel_width"``);
    * published but flagged for review (``review``) when ``df < 8`` (``"nchs_df"``),
      p = 0 or 1 (``"nchs_0_or_100"``) or the complement's relative width
      ``width/(1-p)`` is above 1.30 with width > 0.05 (``"nchs_complement"``).

    Returns columns ``n_eff, kg_low, kg_high, width, relative_width,
    complement_relative_width, suppressed, review, reason`` (reason "" when published
    without a flag; the first reason that applies otherwise).
    """
    p, se, n, df = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float))
                                         for v in (p, se, n, df)))
    lo, hi, n_eff = korn_graubard(p, se, n, df, 0.95, cap=True)
    width = hi - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(p > 0, width / p, np.nan)
        rel_q = np.where(p < 1, width / (1 - p), np.nan)
    low_n = ~(n_eff >= NCHS_MIN_N_EFF)       # NaN (no estimate) counts as too small
    wide = ~low_n & ~(width < NCHS_MAX_WIDTH)
    relwide = ~low_n & ~wide & (width > NCHS_WIDTH_EXEMPT) & (rel > NCHS_MAX_RELATIVE_WIDTH)
    hide = low_n | wide | relwide
    few_df = ~hide & (df < NCHS_MIN_DF)
    edge = ~hide & ((p == 0) | (p == 1))
    comp = ~hide & (width > NCHS_WIDTH_EXEMPT) & (rel_q > NCHS_MAX_RELATIVE_WIDTH)
    reason = np.select([low_n, wide, relwide, few_df, edge, comp],
                       ["nchs_n_eff", "nchs_width", "nchs_rel_width", "nchs_df",
                        "nchs_0_or_100", "nchs_complement"], "")
    return pd.DataFrame({"n_eff": n_eff, "kg_low": lo, "kg_high": hi, "width": width,
                         "relative_width": rel, "complement_relative_width": rel_q,
                         "suppressed": hide, "review": few_df | edge | comp,
                         "reason": reason})


def _statistics(statistic: Any, size: int) -> np.ndarray:
    kinds = (np.full(size, statistic, dtype=object) if isinstance(statistic, str)
             else np.asarray(list(statistic), dtype=object))
    if kinds.shape != (size,):
        raise ValueError(f"statistic: need one name per row ({size}), got {kinds.size}")
    known = PROPORTION_STATS | _OTHER_STATS
    bad = np.flatnonzero(~np.isin(kinds, list(known)))
    if bad.size:
        raise ValueError(f"statistic: unknown statistic {kinds[bad[0]]!r} (row {bad[0]}); "
                         f"known: {', '.join(sorted(known))}")
    return kinds


def suppress(
    table: pd.DataFrame | Estimates,
    min_n: int = MIN_N,
    max_rse: float | None = MAX_RSE,
    rse_action: str = "flag",
    statistic: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Apply the publication rule to a table of estimates (``docs/suppression.md``).

    * ``n < min_n`` (respondents in the cell, default :data:`MIN_N` = 30): the cell
      is withheld -- ``estimate, se, ci_low, ci_high, deff`` (and PV columns) become
      NaN, ``suppressed=True``, ``reason="small_n"``; ``n`` itself stays.
    * means, totals, ratios: relative standard error ``se/|estimate|`` above
      ``max_rse`` (default :data:`MAX_RSE` = 0.30; None turns the check off), or not
      computable (an estimate of 0): with ``rse_action="flag"`` the estimate is kept
      and marked ``unreliable=True``, ``reason="high_rse"``; with ``"suppress"`` it is
      withheld like a small cell.
    * proportions, when ``statistic`` says a row is one: the NCHS standard
      (:func:`nchs_proportions`; needs a ``df`` column) instead of the RSE rule:
      withheld with ``reason`` ``"nchs_n_eff"``, ``"nchs_width"`` or
      ``"nchs_rel_width"``; published with ``unreliable=True`` and ``"nchs_df"``,
      ``"nchs_0_or_100"`` or ``"nchs_complement"`` when flagged for review.

    Parameters
    ----------
    table : an :class:`Estimates` or its table; needs ``n`` (and ``estimate``, ``se``
        when ``max_rse`` is given or a row is a proportion)
    statistic : None (every row by n and RSE, as before the NCHS rule), a statistic
        name for every row (``"proportion"``, ``"pv_level_share"``, ``"mean"``,
        ``"total"``, ``"ratio"``, ``"pv_mean"``, ``"pv_total"``; an
        :class:`Estimates` has it as ``.stat``) or one name per row

    Returns
    -------
    A new DataFrame (the input is not changed) with ``suppressed``, ``unreliable``
    (when ``max_rse`` or ``statistic`` is given: not a small cell, but above the RSE
    limit or flagged for review by the NCHS rule) and ``reason`` ("" when published as
    is).
    """
    if rse_action not in ("flag", "suppress"):
        raise ValueError("rse_action must be 'flag' or 'suppress'")
    if int(min_n) < 0:
        raise ValueError("min_n must be >= 0")
    if max_rse is not None and not float(max_rse) > 0:
        raise ValueError("max_rse must be positive (or None)")
    t = (table.table if isinstance(table, Estimates) else table).copy()
    if "n" not in t.columns:
        raise ValueError("table has no 'n' column (respondents per cell)")
    size = len(t)
    prop = np.zeros(size, dtype=bool)
    if statistic is not None:
        prop = np.isin(_statistics(statistic, size), list(PROPORTION_STATS))
    n = t["n"].to_numpy(dtype=float)
    small = n < int(min_n)
    unreliable = np.zeros(size, dtype=bool)
    if max_rse is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            rse = t["se"].to_numpy(dtype=float) / np.abs(t["estimate"].to_numpy(dtype=float))
        unreliable = ~(rse <= float(max_rse)) & ~prop
    nchs_hide = np.zeros(size, dtype=bool)
    nchs_review = np.zeros(size, dtype=bool)
    nchs_reason = np.full(size, "", dtype=object)
    if prop.any():
        for c in ("estimate", "se", "df"):
            if c not in t.columns:
                raise ValueError(f"table has no {c!r} column (needed by the NCHS rule for "
                                 "proportions)")
        p = t["estimate"].to_numpy(dtype=float)
        outside = np.flatnonzero(prop & ((p < 0) | (p > 1)))
        if outside.size:
            raise ValueError(f"row {outside[0]}: estimate {float(p[outside[0]])!r} is not a "
                             "proportion (0 to 1)")
        r = nchs_proportions(p[prop], t["se"].to_numpy(dtype=float)[prop], n[prop],
                             t["df"].to_numpy(dtype=float)[prop])
        nchs_hide[prop] = r["suppressed"].to_numpy()
        nchs_review[prop] = r["review"].to_numpy()
        nchs_reason[prop] = r["reason"].to_numpy()
    hide = small | nchs_hide | (unreliable if rse_action == "suppress" else False)
    for c in _NUMBERS:
        if c in t.columns:
            t[c] = t[c].astype(float)
            t.loc[hide, c] = np.nan
    t["suppressed"] = hide
    if max_rse is not None or statistic is not None:
        t["unreliable"] = (unreliable | nchs_review) & ~small & ~nchs_hide
    t["reason"] = np.where(small, "small_n", np.where(
        nchs_reason != "", nchs_reason, np.where(unreliable, "high_rse", "")))
    return t


def share_groups(table: pd.DataFrame, by: Sequence[str]) -> list[list[int]]:
    """Row positions of ``table`` that share the values of the ``by`` columns: one
    group per domain, for :func:`complementary` when the rows of a domain are the
    shares of every level of one variable (they sum to 1; a 0/1 indicator and its
    complement are such a pair).  No ``by`` columns: the whole table is one group."""
    missing = [c for c in by if c not in table.columns]
    if missing:
        raise ValueError(f"share_groups: no column {missing[0]!r} in the table")
    if not by:
        return [list(range(len(table)))]
    keys = table[list(by)].reset_index(drop=True)
    return [list(ix) for ix in keys.groupby(list(by), dropna=False, sort=False).indices.values()]


def _constraints(groups: Iterable[Sequence[int] | Mapping[int, float]], size: int
                 ) -> np.ndarray:
    rows = []
    for k, grp in enumerate(groups):
        coef = dict(grp) if isinstance(grp, Mapping) else {i: 1.0 for i in grp}
        row = np.zeros(size)
        for i, c in coef.items():
            if not (isinstance(i, (int, np.integer)) and 0 <= int(i) < size):
                raise ValueError(f"groups[{k}]: {i!r} is not a row position (0..{size - 1})")
            row[int(i)] = float(c)
        rows.append(row)
    return np.vstack(rows) if rows else np.zeros((0, size))


def _determined(C: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Which unknowns (columns ``cols`` of C) the equations ``C x = known`` fix, once
    every other column is known: those whose unit vector lies in the row space of
    ``C[:, cols]`` (its projection onto that space keeps length 1)."""
    out = np.zeros(C.shape[1], dtype=bool)
    sub = C[:, cols]
    if sub.size == 0:
        return out
    _, s, vt = np.linalg.svd(sub, full_matrices=False)
    rank = int((s > 1e-9 * max(s.max(initial=0.0), 1.0)).sum())
    reach = (vt[:rank] ** 2).sum(axis=0)
    out[np.flatnonzero(cols)[reach > 1 - 1e-9]] = True
    return out


def complementary(table: pd.DataFrame,
                  groups: Iterable[Sequence[int] | Mapping[int, float]]) -> pd.DataFrame:
    """Complementary suppression: withhold published cells until no withheld cell can
    be worked out from the published ones through the table's linear ties.

    Parameters
    ----------
    table : the output of :func:`suppress` (``suppressed``, ``n``, ``reason``)
    groups : cells whose estimates are tied by a known linear equation, as row
        positions (0-based, as ``table.iloc``): a sequence means the cells sum to a
        known constant (the shares of one variable within a domain, see
        :func:`share_groups`); a mapping ``{position: coefficient}`` any other tie,
        e.g. ``{part1: 1, part2: 1, total: -1}`` for parts that add up to a total

    A withheld cell is exposed when the published cells and the ties determine it
    (exactly one withheld cell in a group, or several withheld cells that the groups
    together solve for, e.g. across the rows and columns of a two-way table).  While
    one is, a published cell that determination uses is withheld too, with
    ``reason="complementary"``: the one with the smallest ``n`` (then the first) whose
    withholding protects the exposed cell, or the smallest if none does alone; this
    repeats until no cell withheld by :func:`suppress` is exposed.  Then a complementary
    cell that the published cells determine is published (it protects nothing), and
    each other one is published again, largest ``n`` first, when that (with the cells
    it then gives away) leaves every primary cell protected -- the greedy step can take
    a margin where a cell would do.  No withheld cell is left exposed, except one the
    ties fix on their own (a group of one cell: a share that must be 1), which no
    withholding can protect.

    Returns
    -------
    A new DataFrame; only the cells withheld here change.
    """
    for c in ("suppressed", "n"):
        if c not in table.columns:
            raise ValueError(f"table has no {c!r} column: apply suppress() first")
    t = table.copy()
    size = len(t)
    C = _constraints(groups, size)
    hidden = t["suppressed"].to_numpy(dtype=bool).copy()
    if C.shape[0] == 0 or not hidden.any():
        return t
    n = t["n"].to_numpy(dtype=float)
    primary = hidden.copy()
    alone = _determined(C, np.ones(size, dtype=bool))

    def exposed(mask: np.ndarray) -> np.ndarray:
        return _determined(C, mask) & mask & ~alone

    while (found := np.flatnonzero(exposed(hidden) & primary)).size:
        j = found[0]
        cols = np.flatnonzero(hidden)
        lam = np.linalg.lstsq(C[:, cols].T, (cols == j).astype(float), rcond=None)[0]
        use = lam @ C    # the published cells this determination of j reads
        candidates = np.flatnonzero(~hidden & (np.abs(use) > 1e-9))
        if candidates.size == 0:   # cannot happen unless the ties alone fix j
            alone[j] = True
            continue
        candidates = candidates[np.lexsort((candidates, n[candidates]))]
        pick = candidates[0]
        for c in candidates:   # the smallest that protects j by itself, if one does
            hidden[c] = True
            protects = not exposed(hidden)[j]
            hidden[c] = False
            if protects:
                pick = c
                break
        hidden[pick] = True

    # A complementary cell the published ones determine protects nothing: publish it
    # (the span, hence every other cell's protection, stays the same).  Then publish
    # again, largest n first, each complementary cell whose release (with the cells it
    # gives away) leaves every primary cell protected.
    hidden &= ~(exposed(hidden) & ~primary)
    for k in sorted(np.flatnonzero(hidden & ~primary), key=lambda i: (-n[i], i)):
        if not hidden[k]:
            continue
        trial = hidden.copy()
        trial[k] = False
        trial &= ~(exposed(trial) & ~primary)
        if not (exposed(trial) & primary).any():
            hidden = trial
    added = hidden & ~primary
    if added.any():
        for c in _NUMBERS:
            if c in t.columns:
                t[c] = np.where(added, np.nan, t[c].to_numpy(dtype=float))
        t["suppressed"] = hidden
        if "unreliable" in t.columns:
            t["unreliable"] = t["unreliable"].to_numpy(dtype=bool) & ~added
        reason = t["reason"].to_numpy(dtype=object) if "reason" in t.columns else \
            np.full(size, "", dtype=object)
        t["reason"] = np.where(added, "complementary", reason)
    return t
