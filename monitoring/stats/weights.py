"""Survey weights: design weights, nonresponse adjustment, calibration, trimming.

The usual chain is::

    w0 = design_weights(pi)                                  # 1 / π
    w1 = nonresponse_adjust(w0, responded, cells).weights    # weighting classes
    w2 = rake(w1[resp], data[resp], margins).weights         # or poststratify
    w3 = trim(w2, median_multiple=5).weights

and :class:`WeightSteps` records each step per respondent.  Formulas and
references are in ``monitoring/README.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "NonresponseResult",
    "PostStratResult",
    "RakeResult",
    "TrimResult",
    "WeightStep",
    "WeightSteps",
    "design_weights",
    "nonresponse_adjust",
    "poststratify",
    "rake",
    "trim",
]


def _weights(w: Any, name: str = "weights") -> np.ndarray:
    a = np.asarray(w, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: non-finite value at position {int(np.argmax(~np.isfinite(a)))}")
    if (a < 0).any():
        raise ValueError(f"{name}: negative weight at position {int(np.argmax(a < 0))}")
    return a


def _cell_labels(data: pd.DataFrame | None, cols: Any, n: int, what: str) -> pd.Series:
    """One label per row: a column, several crossed columns (tuples) or an array."""
    if isinstance(cols, str) or (isinstance(cols, Sequence) and not isinstance(cols, str)
                                 and len(cols) > 0 and all(isinstance(c, str) for c in cols)
                                 and data is not None):
        names = [cols] if isinstance(cols, str) else list(cols)
        if data is None:
            raise ValueError(f"{what}: column names given but no data")
        for c in names:
            if c not in data.columns:
                raise ValueError(f"{what}: column {c!r} not in data")
            if data[c].isna().any():
                raise ValueError(f"{what}: column {c!r} has missing values")
        if len(names) == 1:
            lab = pd.Series(data[names[0]].to_numpy())
        else:
            lab = pd.Series(list(zip(*(data[c].to_numpy() for c in names))), dtype=object)
    else:
        lab = pd.Series(np.asarray(cols))
        if lab.isna().any():
            raise ValueError(f"{what}: missing cell label")
    if len(lab) != n:
        raise ValueError(f"{what}: {len(lab)} labels for {n} weights")
    return lab


# ------------------------------------------------------------ design weights


def design_weights(pi: Any) -> np.ndarray:
    """Design (base) weights ``w = 1 / π``.

    Raises
    ------
    ValueError
        when any π is missing or outside (0, 1].
    """
    p = np.asarray(pi, dtype=float)
    bad = ~np.isfinite(p) | (p <= 0) | (p > 1 + 1e-12)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"inclusion probability at position {i} is {p[i]!r}, not in (0, 1]")
    return 1.0 / p


# ------------------------------------------------------- nonresponse


@dataclass(frozen=True)
class NonresponseResult:
    """Weighting-class nonresponse adjustment.

    Attributes
    ----------
    weights : (n,) adjusted weights; 0 for nonrespondents
    factors : Series, adjustment factor per cell
        ``sum(w, sampled) / sum(w, respondents)``
    response_rates : Series, weighted response rate per cell (1 / factor)
    """

    weights: np.ndarray
    factors: pd.Series
    response_rates: pd.Series


def nonresponse_adjust(
    weights: Any,
    responded: Any,
    cells: Any,
    data: pd.DataFrame | None = None,
) -> NonresponseResult:
    """Weighting-class adjustment: within each cell c, respondents' weights are
    multiplied by ``Σ_{sampled in c} w / Σ_{respondents in c} w``.

    Parameters
    ----------
    weights : (n,) design weights of all sampled units
    responded : (n,) bool
    cells : (n,) cell labels, or column name(s) of ``data`` (crossed)
    data : DataFrame, needed when ``cells`` are column names

    Raises
    ------
    ValueError
        a cell with no respondents (named), length mismatch.
    """
    w = _weights(weights)
    r = np.asarray(responded, dtype=bool)
    if r.shape != w.shape:
        raise ValueError("responded must have one entry per weight")
    lab = _cell_labels(data, cells, w.size, "cells")
    codes, uniq = pd.factorize(lab, sort=True)
    tot = np.bincount(codes, weights=w, minlength=len(uniq))
    resp = np.bincount(codes, weights=w * r, minlength=len(uniq))
    nresp = np.bincount(codes, weights=r.astype(float), minlength=len(uniq))
    empty = np.flatnonzero((nresp == 0) | (resp <= 0))
    if empty.size:
        raise ValueError(f"nonresponse cell {uniq[empty[0]]!r} has no respondents "
                         "(with weight > 0)")
    f = tot / resp
    out = np.where(r, w * f[codes], 0.0)
    idx = pd.Index(uniq, name="cell")
    return NonresponseResult(weights=out, factors=pd.Series(f, index=idx, name="factor"),
                             response_rates=pd.Series(resp / tot, index=idx, name="rate"))


# ---------------------------------------------------------- post-stratification


@dataclass(frozen=True)
class PostStratResult:
    """Post-stratified weights and the factor per post-stratum."""

    weights: np.ndarray
    factors: pd.Series


def _totals_series(totals: Any, by: list[str]) -> pd.Series:
    if isinstance(totals, pd.DataFrame):
        miss = [c for c in [*by, "total"] if c not in totals.columns]
        if miss:
            raise ValueError(f"population totals: column {miss[0]!r} missing")
        if len(by) == 1:
            keys = totals[by[0]].tolist()
        else:
            keys = list(zip(*(totals[c].tolist() for c in by)))
        s = pd.Series(totals["total"].to_numpy(dtype=float),
                      index=pd.Index(keys, tupleize_cols=False))
    elif isinstance(totals, pd.Series):
        if isinstance(totals.index, pd.MultiIndex):
            s = pd.Series(totals.to_numpy(dtype=float),
                          index=pd.Index(list(totals.index), tupleize_cols=False))
        else:
            s = totals.astype(float)
    elif isinstance(totals, Mapping):
        s = pd.Series(list(totals.values()), index=pd.Index(list(totals.keys()),
                                                            tupleize_cols=False), dtype=float)
    else:
        raise ValueError("population totals must be a DataFrame, Series or mapping")
    if s.index.duplicated().any():
        raise ValueError(f"population totals: duplicate cell {s.index[s.index.duplicated()][0]!r}")
    if s.isna().any() or (s < 0).any():
        raise ValueError("population totals must be non-negative numbers")
    return s


def poststratify(
    weights: Any,
    data: pd.DataFrame,
    by: str | Sequence[str],
    totals: Any,
) -> PostStratResult:
    """Post-stratify to known population totals of crossed cells.

    ``w_i <- w_i * N_c / Σ_{i in c} w_i`` for the cell c of respondent i, so the
    weighted count of every cell equals its population total exactly.

    Parameters
    ----------
    weights : (n,) respondents' weights
    data : respondents' data with the ``by`` columns
    by : column name or list of names (cells are their crossing)
    totals : DataFrame with the ``by`` columns and ``total``; or a Series /
        mapping keyed by the cell label (a tuple for several columns)

    Raises
    ------
    ValueError
        a respondent cell missing from the totals, or a population cell with
        positive total but no respondents (both named).
    """
    w = _weights(weights)
    cols = [by] if isinstance(by, str) else list(by)
    lab = _cell_labels(data, cols, w.size, "post-strata")
    t = _totals_series(totals, cols)
    codes, uniq = pd.factorize(lab, sort=False)
    sums = np.bincount(codes, weights=w, minlength=len(uniq))
    known = set(t.index.tolist())
    for u in uniq:
        if u not in known:
            raise ValueError(f"post-stratum {u!r} (columns {cols}) has no population total")
    present = set(uniq.tolist()) if hasattr(uniq, "tolist") else set(uniq)
    for k, v in t.items():
        if v > 0 and k not in present:
            raise ValueError(f"post-stratum {k!r} (columns {cols}) has no respondents")
    tot = t.reindex(pd.Index(list(uniq), tupleize_cols=False)).to_numpy(dtype=float)
    if (sums <= 0).any():
        k = uniq[int(np.argmax(sums <= 0))]
        raise ValueError(f"post-stratum {k!r} has zero respondent weight")
    f = tot / sums
    return PostStratResult(weights=w * f[codes],
                           factors=pd.Series(f, index=pd.Index(list(uniq), tupleize_cols=False),
                                             name="factor"))


# --------------------------------------------------------------------- raking


@dataclass(frozen=True)
class RakeResult:
    """Raked weights.

    Attributes
    ----------
    weights : (n,) raked weights
    iterations : number of full cycles over the margins
    converged : True when ``max_error <= tol``
    max_error : max over margins and categories of ``|Σ w - N| / N``
    """

    weights: np.ndarray
    iterations: int
    converged: bool
    max_error: float


def rake(
    weights: Any,
    data: pd.DataFrame,
    margins: Mapping[str, Mapping[Any, float] | pd.Series],
    tol: float = 1e-10,
    max_iter: int = 200,
    strict: bool = True,
) -> RakeResult:
    """Raking (iterative proportional fitting, Deming & Stephan 1940).

    Each cycle post-stratifies to each margin in turn; stops when every margin
    category's weighted total is within relative ``tol`` of its target.

    Parameters
    ----------
    weights : (n,) starting weights of the respondents
    data : respondents' data with one column per margin
    margins : ``{column: {category: population total}}``; all margins must have
        the same grand total (relative difference <= 1e-6)
    tol, max_iter : convergence tolerance (relative) and maximum cycles
    strict : raise ValueError when not converged (default); else return with
        ``converged=False``

    Raises
    ------
    ValueError
        a margin column missing, a respondent category without a target, a
        target category (with positive total) without respondents (named),
        inconsistent grand totals, or no convergence (``strict``).
    """
    w = _weights(weights).copy()
    if not margins:
        raise ValueError("rake: no margins given")
    codes_list, targets = [], []
    grand = None
    for col, tot in margins.items():
        if col not in data.columns:
            raise ValueError(f"rake: margin column {col!r} not in data")
        if data[col].isna().any():
            raise ValueError(f"rake: column {col!r} has missing values")
        t = tot.astype(float) if isinstance(tot, pd.Series) else pd.Series(dict(tot), dtype=float)
        if (t < 0).any() or t.isna().any():
            raise ValueError(f"rake: margin {col!r} has a negative or missing total")
        codes, uniq = pd.factorize(data[col], sort=False)
        known = set(t.index.tolist())
        for u in uniq.tolist():
            if u not in known:
                raise ValueError(f"rake: category {u!r} of margin {col!r} has no population total")
        present = set(uniq.tolist())
        for k, v in t.items():
            if v > 0 and k not in present:
                raise ValueError(f"rake: category {k!r} of margin {col!r} has no respondents")
        tv = t.reindex(list(uniq)).to_numpy(dtype=float)
        s = float(t.sum())
        if grand is None:
            grand = s
        elif abs(s - grand) > 1e-6 * max(abs(grand), 1.0):
            raise ValueError(f"rake: margin {col!r} totals {s}, other margins total {grand}")
        codes_list.append(codes)
        targets.append(tv)
    if w.sum() <= 0:
        raise ValueError("rake: all weights are zero")

    def error() -> float:
        e = 0.0
        for codes, tv in zip(codes_list, targets):
            cur = np.bincount(codes, weights=w, minlength=tv.size)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(tv > 0, np.abs(cur - tv) / tv, np.abs(cur))
            e = max(e, float(rel.max()))
        return e

    it = 0
    err = error()
    while err > tol and it < max_iter:
        it += 1
        for codes, tv in zip(codes_list, targets):
            cur = np.bincount(codes, weights=w, minlength=tv.size)
            if (cur[tv > 0] <= 0).any():
                raise ValueError("rake: a margin category lost all its weight")
            with np.errstate(divide="ignore", invalid="ignore"):
                f = np.where(cur > 0, tv / cur, 0.0)
            w *= f[codes]
        err = error()
    conv = err <= tol
    if strict and not conv:
        raise ValueError(f"rake: not converged after {it} iterations "
                         f"(max relative error {err:.3g})")
    return RakeResult(weights=w, iterations=it, converged=conv, max_error=err)


# ------------------------------------------------------------------- trimming


@dataclass(frozen=True)
class TrimResult:
    """Trimmed weights.

    Attributes
    ----------
    weights : (n,) trimmed weights (same total as the input, per group)
    lower, upper : the bounds applied
    n_trimmed : number of weights at a bound at the end
    iterations : trimming rounds
    """

    weights: np.ndarray
    lower: float
    upper: float
    n_trimmed: int
    iterations: int


def trim(
    weights: Any,
    upper: float | None = None,
    lower: float | None = None,
    median_multiple: float | None = None,
    max_iter: int = 1000,
    strict: bool = True,
) -> TrimResult:
    """Cap weights at bounds and share the trimmed amount out additively, as R's
    ``trimWeights`` (survey package), so the total is kept.

    The bounds are fixed at the start (``upper = median_multiple * median(w)`` when
    given, the smaller of the two if ``upper`` is also given).  Each round sets the
    weights outside ``[lower, upper]`` to the bound and adds the same amount, the net
    trimmed weight divided by their number, to every other weight; with ``strict`` (R's
    ``strict=TRUE``) rounds repeat until no weight is outside, otherwise there is one.
    Only positive weights take part: R would also give a zero weight (a unit that is not
    in the sample) a share, which is the one difference.

    Raises
    ------
    ValueError
        no bound given, or bounds that cannot keep the total
        (``n * upper < total`` or ``n * lower > total``).
    """
    w = _weights(weights).copy()
    total = w.sum()
    up = np.inf if upper is None else float(upper)
    if median_multiple is not None:
        if median_multiple <= 0:
            raise ValueError("median_multiple must be positive")
        up = min(up, float(median_multiple) * float(np.median(w)))
    lo = 0.0 if lower is None else float(lower)
    if upper is None and lower is None and median_multiple is None:
        raise ValueError("trim: give upper, lower or median_multiple")
    if lo > up:
        raise ValueError(f"trim: lower bound {lo} above upper bound {up}")
    pos = w > 0
    if pos.sum() * up < total * (1 - 1e-12):
        raise ValueError(f"trim: upper bound {up} too small to keep the total {total}")
    if pos.sum() * lo > total * (1 + 1e-12):
        raise ValueError(f"trim: lower bound {lo} too large to keep the total {total}")
    it = 0
    while True:
        outside = pos & ((w < lo) | (w > up))
        if not outside.any():
            break
        if it == max_iter:
            raise ValueError(f"trim: weights still outside [{lo:g}, {up:g}] after "
                             f"{max_iter} rounds")
        it += 1
        capped = np.clip(w[outside], lo, up)
        excess = float((w[outside] - capped).sum())
        w[outside] = capped
        rest = pos & ~outside
        if not rest.any():
            if abs(excess) > 1e-12 * total:
                raise ValueError(f"trim: every weight is outside [{lo:g}, {up:g}], so the "
                                 "trimmed amount has nowhere to go (R's trimWeights "
                                 "fails here too)")
            break
        w[rest] += excess / rest.sum()
        if not strict:
            break
    tol = 1e-12 * max(up if np.isfinite(up) else 1.0, 1.0)
    at = pos & ((np.abs(w - up) <= tol) | ((np.abs(w - lo) <= tol) & (lo > 0)))
    return TrimResult(weights=w, lower=lo, upper=up, n_trimmed=int(at.sum()), iterations=it)


# ---------------------------------------------------------------- the record


@dataclass(frozen=True)
class WeightStep:
    """One step of a weighting chain: its name, parameters and the weights after it."""

    name: str
    weights: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WeightSteps:
    """The record of a weighting chain, for storing per respondent.

    Build with :meth:`start` and :meth:`add` (each returns a new record)::

        steps = WeightSteps.start(ids, w0).add("nonresponse", w1, cells="stratum")

    Attributes
    ----------
    ids : (n,) respondent ids
    steps : tuple of WeightStep, in order
    """

    ids: np.ndarray
    steps: tuple[WeightStep, ...]

    @classmethod
    def start(cls, ids: Any, design: Any, **params: Any) -> WeightSteps:
        ids = np.asarray(ids)
        w = _weights(design, "design weights")
        if ids.shape != w.shape:
            raise ValueError("one design weight per id is needed")
        if pd.Series(ids).duplicated().any():
            raise ValueError("duplicate respondent id")
        return cls(ids=ids, steps=(WeightStep("design", w, dict(params)),))

    def add(self, name: str, weights: Any, **params: Any) -> WeightSteps:
        w = _weights(weights, name)
        if w.shape != self.ids.shape:
            raise ValueError(f"step {name!r}: {w.size} weights for {self.ids.size} respondents")
        if name in self.names:
            raise ValueError(f"step {name!r} already recorded")
        return WeightSteps(ids=self.ids, steps=(*self.steps, WeightStep(name, w, dict(params))))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    @property
    def final(self) -> np.ndarray:
        return self.steps[-1].weights

    def to_frame(self) -> pd.DataFrame:
        """One row per respondent: ``id``, ``w_<step>`` for every step, ``weight`` (final)."""
        d = {"id": self.ids}
        for s in self.steps:
            d[f"w_{s.name}"] = s.weights
        d["weight"] = self.final
        return pd.DataFrame(d)

    def summary(self) -> pd.DataFrame:
        """Per step: sum, min, max, CV and Kish's effective sample size ``(Σw)²/Σw²``."""
        rows = []
        for s in self.steps:
            w = s.weights[s.weights > 0]
            rows.append({"step": s.name, "n": int(w.size), "sum": float(w.sum()),
                         "min": float(w.min()) if w.size else np.nan,
                         "max": float(w.max()) if w.size else np.nan,
                         "cv": float(w.std() / w.mean()) if w.size else np.nan,
                         "n_eff": float(w.sum() ** 2 / (w ** 2).sum()) if w.size else np.nan,
                         "params": dict(s.params)})
        return pd.DataFrame(rows)
