"""Sample allocation, stratified and two-stage PPS selection, quota tracking.

Pure functions over numpy arrays and pandas DataFrames; nothing here touches a
database.  Every random draw comes from ``numpy.random.default_rng(seed)`` with
an integer ``seed`` that the caller stores, so a draw can be repeated exactly
(same frame in the same row order + same seed -> same sample).

Methods (see ``monitoring/README.md`` for formulas and references):

* allocation: proportional (n_h ∝ N_h), equal, Neyman (n_h ∝ N_h S_h), with
  per-stratum bounds ``min_n <= n_h <= min(max_n, N_h)`` imposed by iterative
  fixing, and integers by the largest-remainder method (sums exactly to n);
* stratified simple random sampling without replacement (random sort keys,
  first n_h per stratum), π = n_h / N_h;
* first stage: randomised systematic PPS (random order, random start) with
  certainty PSUs taken out iteratively; second stage: SRSWOR of m units;
* the design for estimation (:func:`design_columns`): what a drawn sample's
  respondents carry into :class:`monitoring.stats.design.Design` (strata, PSUs, fpc at
  both stages, certainty PSUs as strata of their own).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Allocation",
    "DesignColumns",
    "QuotaStatus",
    "Sample",
    "allocate",
    "design_columns",
    "pps_inclusion_probabilities",
    "pps_sample",
    "quota_progress",
    "stratified_srs",
    "systematic_pps",
    "two_stage_sample",
]

ALLOCATION_METHODS = ("proportional", "equal", "neyman")


# ------------------------------------------------------------------ helpers


def _require_columns(frame: pd.DataFrame, *cols: str | None) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError("frame must be a pandas DataFrame")
    for c in cols:
        if c is not None and c not in frame.columns:
            raise ValueError(f"column {c!r} not in frame (columns: {list(frame.columns)})")
    for c in cols:
        if c is not None and frame[c].isna().any():
            i = frame.index[frame[c].isna().to_numpy()][0]
            raise ValueError(f"column {c!r} has a missing value (row {i!r})")


def _as_series(x: Any, name: str) -> pd.Series:
    if isinstance(x, pd.Series):
        s = x.copy()
    elif isinstance(x, Mapping):
        s = pd.Series(dict(x))
    else:
        raise ValueError(f"{name} must be a mapping or a pandas Series keyed by stratum")
    s = s.astype(float)
    if s.isna().any():
        raise ValueError(f"{name}: missing value for stratum {s.index[s.isna()][0]!r}")
    return s


# --------------------------------------------------------------- allocation


@dataclass(frozen=True)
class Allocation:
    """Integer sample sizes per stratum.

    Attributes
    ----------
    strata : tuple of stratum labels (in the order given)
    n : (H,) int sample sizes, summing to ``total``
    exact : (H,) float allocation before rounding (after bounds)
    method : ``"proportional"``, ``"equal"`` or ``"neyman"``
    total : int
    """

    strata: tuple[Any, ...]
    n: np.ndarray
    exact: np.ndarray
    method: str
    total: int

    def as_dict(self) -> dict[Any, int]:
        """``{stratum: n_h}``."""
        return {s: int(k) for s, k in zip(self.strata, self.n)}

    def as_series(self) -> pd.Series:
        return pd.Series(self.n, index=pd.Index(self.strata, name="stratum"), name="n")


def _bounded_continuous(n: float, a: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Allocate n as ``x_h = clip(λ a_h, lo_h, hi_h)`` with λ chosen so Σ x_h = n.

    ``f(λ) = Σ clip(λ a_h, lo_h, hi_h)`` is piecewise linear and non-decreasing;
    λ is found exactly on the segment between breakpoints.  Strata with
    ``a_h = 0`` stay at ``lo_h`` unless n cannot be reached otherwise, in which
    case the rest is shared equally among them (again within bounds).
    """
    pos = a > 0
    reach = hi[pos].sum() + lo[~pos].sum()
    if n > reach + 1e-9:
        x = np.where(pos, hi, lo).astype(float)
        zero = ~pos
        x[zero] = _bounded_continuous(n - hi[pos].sum(), np.ones(int(zero.sum())),
                                      lo[zero], hi[zero])
        return x
    if not pos.any():
        return lo.astype(float)

    def f(lam: np.ndarray) -> np.ndarray:
        return np.clip(lam[:, None] * a[None, :], lo, hi).sum(axis=1)

    bps = np.unique(np.concatenate([lo[pos] / a[pos], hi[pos] / a[pos]]))
    bps = bps[np.isfinite(bps)]
    bps = np.concatenate([[0.0], bps])
    vals = f(bps)
    k = int(np.searchsorted(vals, n - 1e-12))
    if k >= bps.size:
        k = bps.size - 1
    if k == 0 or vals[k] == n:
        lam = bps[k]
    else:
        mid = 0.5 * (bps[k - 1] + bps[k])
        y = mid * a
        free = pos & (y > lo) & (y < hi)
        fixed = np.clip(y, lo, hi)
        lam = (n - fixed[~free].sum()) / a[free].sum() if free.any() else mid
    return np.clip(lam * a, lo, hi)


def _largest_remainder(x: np.ndarray, n: int, hi: np.ndarray) -> np.ndarray:
    base = np.floor(x + 1e-9).astype(np.int64)
    base = np.minimum(base, hi.astype(np.int64))
    short = int(n - base.sum())
    if short > 0:
        frac = x - base
        frac[base >= hi] = -np.inf
        order = np.argsort(-frac, kind="stable")
        base[order[:short]] += 1
    return base


def allocate(
    sizes: Mapping[Any, float] | pd.Series,
    n: int,
    method: str = "proportional",
    sds: Mapping[Any, float] | pd.Series | None = None,
    min_n: int | Mapping[Any, int] = 0,
    max_n: int | Mapping[Any, int] | None = None,
) -> Allocation:
    """Allocate a total sample ``n`` over strata.

    Parameters
    ----------
    sizes : stratum population sizes N_h (mapping or Series keyed by stratum)
    n : total sample size
    method : ``"proportional"`` (n_h ∝ N_h), ``"equal"`` (n_h = n/H) or
        ``"neyman"`` (n_h ∝ N_h S_h, needs ``sds``)
    sds : stratum standard deviations S_h (Neyman only)
    min_n, max_n : per-stratum bounds (int for all strata, or mapping).  The
        upper bound is always at most N_h; a lower bound above N_h becomes N_h.

    Returns
    -------
    Allocation
        Integers that sum exactly to ``n``: the bounded continuous allocation is
        computed by fixing strata at violated bounds and re-allocating the rest,
        then rounded by the largest-remainder (Hamilton) method.

    Raises
    ------
    ValueError
        unknown method, negative size or SD, missing SD for a stratum, bounds
        that cannot hold (sum of minima > n, or n > sum of maxima / frame size).
    """
    if method not in ALLOCATION_METHODS:
        raise ValueError(f"allocation method must be one of {ALLOCATION_METHODS}, got {method!r}")
    N = _as_series(sizes, "sizes")
    if N.empty:
        raise ValueError("sizes: no strata")
    if (N < 0).any():
        raise ValueError(f"sizes: negative population size for stratum {N.index[N < 0][0]!r}")
    n = int(n)
    if n < 0:
        raise ValueError("n must be non-negative")
    strata = tuple(N.index.tolist())
    Nv = N.to_numpy()

    def per_stratum(v: Any, default: float, name: str) -> np.ndarray:
        if v is None:
            return np.full(len(strata), default)
        if isinstance(v, Mapping | pd.Series):
            s = pd.Series(dict(v)) if isinstance(v, Mapping) else v
            return np.array([float(s.get(k, default)) for k in strata])
        return np.full(len(strata), float(v))

    lo = per_stratum(min_n, 0.0, "min_n")
    hi = np.minimum(per_stratum(max_n, np.inf, "max_n"), np.floor(Nv))
    lo = np.minimum(lo, hi)
    if n > hi.sum():
        raise ValueError(
            f"n={n} is larger than the frame / maximum allowed "
            f"({int(hi.sum())} units in all strata)"
        )
    if lo.sum() > n:
        raise ValueError(f"minimum sizes per stratum sum to {int(lo.sum())} > n={n}")
    if method == "proportional":
        a = Nv.copy()
    elif method == "equal":
        a = (Nv > 0).astype(float)
    else:
        if sds is None:
            raise ValueError("Neyman allocation needs sds (stratum standard deviations)")
        S = _as_series(sds, "sds")
        missing = [k for k in strata if k not in S.index]
        if missing:
            raise ValueError(f"sds: no standard deviation for stratum {missing[0]!r}")
        Sv = S.reindex(list(strata)).to_numpy()
        if (Sv < 0).any():
            raise ValueError(f"sds: negative SD for stratum {strata[int(np.argmax(Sv < 0))]!r}")
        a = Nv * Sv
    x = _bounded_continuous(float(n), a, lo, hi)
    k = _largest_remainder(x, n, hi)
    return Allocation(strata=strata, n=k, exact=x, method=method, total=n)


# ---------------------------------------------------------- stratified SRS


@dataclass(frozen=True)
class Sample:
    """A drawn sample.

    Attributes
    ----------
    units : DataFrame of the selected frame rows (original columns and index)
        plus ``pi`` (overall inclusion probability) and, for two-stage
        samples, ``pi1`` (PSU), ``pi2`` (unit within PSU) and ``certainty``.
    seed : the integer seed used
    design : ``"stratified_srs"``, ``"pps_systematic"`` or ``"two_stage_pps_srs"``
    allocation : n per stratum (or PSUs per stratum) as drawn
    """

    units: pd.DataFrame
    seed: int
    design: str
    allocation: dict[Any, int]


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError("seed must be a non-negative integer (store it to repeat the draw)")
    return int(seed)


def stratified_srs(
    frame: pd.DataFrame,
    stratum: str,
    n: int | Mapping[Any, int] | Allocation,
    seed: int,
    id_col: str | None = None,
) -> Sample:
    """Stratified simple random sampling without replacement.

    Each frame row gets a uniform random key from ``default_rng(seed)`` (in frame
    order); within stratum h the n_h rows with the smallest keys are selected,
    which is SRSWOR with π = n_h / N_h.

    Parameters
    ----------
    frame : one row per unit
    stratum : name of the stratum column
    n : an Allocation, a mapping ``{stratum: n_h}``, or a total (allocated
        proportionally with :func:`allocate`)
    seed : non-negative integer
    id_col : optional unit-id column, checked for duplicates

    Returns
    -------
    Sample with ``units["pi"]``.
    """
    seed = _check_seed(seed)
    _require_columns(frame, stratum, id_col)
    if id_col is not None and frame[id_col].duplicated().any():
        dup = frame[id_col][frame[id_col].duplicated()].iloc[0]
        raise ValueError(f"column {id_col!r}: duplicate unit id {dup!r}")
    counts = frame[stratum].value_counts(sort=False)
    if isinstance(n, Allocation):
        alloc = n.as_dict()
    elif isinstance(n, Mapping):
        alloc = {k: int(v) for k, v in n.items()}
    else:
        alloc = allocate(counts, int(n)).as_dict()
    for k, v in alloc.items():
        if k not in counts.index:
            if v > 0:
                raise ValueError(f"stratum {k!r} (column {stratum!r}) is not in the frame")
            continue
        if v < 0:
            raise ValueError(f"stratum {k!r}: negative sample size {v}")
        if v > counts[k]:
            raise ValueError(
                f"stratum {k!r} (column {stratum!r}): n={v} is larger than its {counts[k]} units"
            )
    rng = np.random.default_rng(seed)
    key = rng.random(len(frame))
    s = frame[stratum].to_numpy()
    rank = pd.Series(key).groupby(s, sort=False).rank(method="first").to_numpy()
    nh = pd.Series(s).map(alloc).fillna(0).to_numpy()
    Nh = pd.Series(s).map(counts).to_numpy().astype(float)
    take = rank <= nh
    units = frame.loc[take].copy()
    units["pi"] = (nh / Nh)[take]
    return Sample(units=units, seed=seed, design="stratified_srs", allocation=alloc)


# ----------------------------------------------------------------- PPS


def pps_inclusion_probabilities(sizes: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """First-order inclusion probabilities π_i ∝ size, capped at 1.

    Units with ``n * size_i / sum(size) >= 1`` are certainty units (π = 1); they
    are removed and n reduced, repeatedly, until all remaining π_i < 1.

    Returns
    -------
    pi : (N,) float, summing to n
    certainty : (N,) bool
    """
    x = np.asarray(sizes, dtype=float)
    if x.ndim != 1:
        raise ValueError("sizes must be one-dimensional")
    if not np.isfinite(x).all():
        raise ValueError("sizes must be finite")
    if (x < 0).any():
        raise ValueError(f"negative size at position {int(np.argmax(x < 0))}")
    n = int(n)
    npos = int((x > 0).sum())
    if n > npos:
        raise ValueError(f"n={n} PSUs requested but only {npos} with positive size")
    cert = np.zeros(x.size, dtype=bool)
    pi = np.zeros(x.size)
    for _ in range(x.size + 1):
        rest = n - int(cert.sum())
        tot = x[~cert].sum()
        pi[~cert] = rest * x[~cert] / tot if tot > 0 else 0.0
        new = ~cert & (pi >= 1.0 - 1e-12)
        if not new.any():
            break
        cert |= new
        pi[cert] = 1.0
    return pi, cert


def systematic_pps(sizes: Any, n: int, rng: np.random.Generator,
                   order: str = "random") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Randomised systematic PPS selection of n units (Goodman & Kish 1950).

    Certainty units (see :func:`pps_inclusion_probabilities`) are taken first;
    the others are put in random order (``order="random"``, or kept in frame
    order with ``"frame"`` for implicit stratification), their π cumulated, and
    the points ``u, u+1, ..., u+n'-1`` with ``u ~ U(0,1)`` select the units whose
    cumulative interval contains a point.  Each unit is selected with
    probability exactly π_i (never twice, as π_i < 1).

    Returns
    -------
    selected : sorted int positions of the selected units
    pi : (N,) inclusion probabilities
    certainty : (N,) bool
    """
    if order not in ("random", "frame"):
        raise ValueError("order must be 'random' or 'frame'")
    pi, cert = pps_inclusion_probabilities(sizes, n)
    rest = np.flatnonzero(~cert & (pi > 0))
    if order == "random":
        rest = rest[rng.permutation(rest.size)]
    else:
        rng.random()  # keep the stream position independent of order
    m = n - int(cert.sum())
    chosen = np.flatnonzero(cert)
    if m > 0:
        cum = np.cumsum(pi[rest])
        cum[-1] = float(m)  # remove rounding drift
        points = rng.random() + np.arange(m)
        hit = np.searchsorted(cum, points, side="right")
        chosen = np.concatenate([chosen, rest[hit]])
    return np.sort(chosen), pi, cert


def pps_sample(
    frame: pd.DataFrame,
    size: str,
    n: int | Mapping[Any, int],
    seed: int,
    stratum: str | None = None,
    order: str = "random",
) -> Sample:
    """Draw PSUs (e.g. streets) with probability proportional to ``size``.

    Parameters
    ----------
    frame : one row per PSU
    size : column of size measures (e.g. population counts), >= 0
    n : number of PSUs (int), or ``{stratum: n_h}`` when ``stratum`` is given
    seed : non-negative integer
    stratum : optional stratum column; selection is independent per stratum
        (strata in sorted order, one generator)
    order : see :func:`systematic_pps`

    Returns
    -------
    Sample whose ``units`` are the selected PSU rows with ``pi`` and ``certainty``.
    """
    seed = _check_seed(seed)
    _require_columns(frame, size, stratum)
    sz = frame[size].to_numpy(dtype=float)
    if (sz < 0).any():
        i = frame.index[sz < 0][0]
        raise ValueError(f"column {size!r}: negative size {sz[sz < 0][0]} (row {i!r})")
    rng = np.random.default_rng(seed)
    pi = np.zeros(len(frame))
    cert = np.zeros(len(frame), dtype=bool)
    sel = np.zeros(len(frame), dtype=bool)
    if stratum is None:
        if isinstance(n, Mapping):
            raise ValueError("n per stratum given but no stratum column")
        groups = {None: np.arange(len(frame))}
        alloc = {None: int(n)}
    else:
        codes = frame[stratum].to_numpy()
        labels = sorted(pd.unique(codes).tolist(), key=lambda v: (str(type(v)), v))
        groups = {k: np.flatnonzero(codes == k) for k in labels}
        if not isinstance(n, Mapping):
            raise ValueError("with a stratum column, n must be a mapping {stratum: n_h}")
        alloc = {k: int(v) for k, v in n.items()}
        for k in alloc:
            if k not in groups:
                raise ValueError(f"stratum {k!r} (column {stratum!r}) is not in the frame")
    for k, idx in groups.items():
        nk = alloc.get(k, 0)
        if nk == 0:
            continue
        try:
            chosen, p, c = systematic_pps(sz[idx], nk, rng, order=order)
        except ValueError as e:
            where = "" if k is None else f"stratum {k!r} (column {stratum!r}): "
            raise ValueError(where + str(e)) from None
        pi[idx] = p
        cert[idx] = c
        sel[idx[chosen]] = True
    units = frame.loc[sel].copy()
    units["pi"] = pi[sel]
    units["certainty"] = cert[sel]
    return Sample(units=units, seed=seed, design="pps_systematic",
                  allocation={k: v for k, v in alloc.items()})


def second_stage_size(m_per_psu: int, cluster_size: float | None) -> int:
    """Persons invited in a selected cluster: ``m_per_psu``, at most the cluster's whole
    number of persons (``floor(size)``), and at least one. The draw and the inclusion
    probabilities both use this rule, so pi = pi1 * m_i / M_i matches what was drawn."""
    whole = math.floor(cluster_size or 0)
    return max(1, min(int(m_per_psu or 1), int(whole)))


def two_stage_sample(
    psu_frame: pd.DataFrame,
    unit_frame: pd.DataFrame,
    psu: str,
    size: str,
    n_psu: int | Mapping[Any, int],
    m: int,
    seed: int,
    stratum: str | None = None,
    order: str = "random",
) -> Sample:
    """Two-stage sample: PPS systematic PSUs, then SRSWOR of ``m`` units per PSU.

    Parameters
    ----------
    psu_frame : one row per PSU with columns ``psu`` (id), ``size`` and
        optionally ``stratum``
    unit_frame : one row per unit with column ``psu``
    m : units per selected PSU; a PSU with M_i <= m units is taken whole
    seed : non-negative integer (one generator for both stages)

    Returns
    -------
    Sample whose ``units`` are the selected unit rows with ``pi1`` (PSU
    inclusion probability), ``pi2 = m_i / M_i``, ``pi = pi1 * pi2`` and
    ``certainty`` (PSU taken with certainty).  Only first-order probabilities
    are returned; :func:`design_columns` turns them into the design for variance
    estimation.
    """
    seed = _check_seed(seed)
    _require_columns(psu_frame, psu, size, stratum)
    _require_columns(unit_frame, psu)
    if psu_frame[psu].duplicated().any():
        dup = psu_frame[psu][psu_frame[psu].duplicated()].iloc[0]
        raise ValueError(f"column {psu!r}: duplicate PSU id {dup!r} in the PSU frame")
    m = int(m)
    if m < 1:
        raise ValueError("m (units per PSU) must be at least 1")
    first = pps_sample(psu_frame, size, n_psu, seed, stratum=stratum, order=order)
    rng = np.random.default_rng([seed, 2])
    sel_psu = first.units[psu]
    counts = unit_frame[psu].value_counts(sort=False)
    empty = [p for p in sel_psu.tolist() if p not in counts.index]
    if empty:
        raise ValueError(f"PSU {empty[0]!r} (column {psu!r}) was selected but has no units")
    pick = unit_frame[psu].isin(set(sel_psu.tolist())).to_numpy()
    sub = unit_frame.loc[pick]
    key = rng.random(len(sub))
    rank = pd.Series(key).groupby(sub[psu].to_numpy(), sort=False).rank(method="first")
    take = (rank <= m).to_numpy()
    units = sub.loc[take].copy()
    Mi = units[psu].map(counts).to_numpy(dtype=float)
    info = first.units.set_index(psu)
    units["pi1"] = units[psu].map(info["pi"]).to_numpy()
    units["pi2"] = np.minimum(m, Mi) / Mi
    units["pi"] = units["pi1"] * units["pi2"]
    units["certainty"] = units[psu].map(info["certainty"]).to_numpy(dtype=bool)
    if stratum is not None and stratum not in units.columns:
        units[stratum] = units[psu].map(info[stratum]).to_numpy()
    return Sample(units=units, seed=seed, design="two_stage_pps_srs", allocation=first.allocation)


# ------------------------------------------------------ the design for estimation


@dataclass(frozen=True)
class DesignColumns:
    """A sample's design as drawn, as :meth:`monitoring.stats.design.Design.from_arrays`
    takes it (one value per responding unit).

    Attributes
    ----------
    strata : (n,) variance strata: the drawn stratum; a certainty PSU is a stratum of
        its own, labelled ``"<stratum>|<psu>"``
    psu : (n,) first-stage units (in a one-stage design, each unit itself)
    fpc : (n,) first-stage population size of the stratum: N_h for SRS; for PPS
        ``n_h / mean(π1)`` over its n_h PSUs, so that f_h = n_h / fpc is their mean
        first-stage inclusion probability; 1 for a certainty PSU's stratum
    ssu : (n,) second-stage units (the persons), None in a one-stage design
    fpc2 : (n,) M_i, the population of the unit's PSU, None in a one-stage design
    estimator : what the variance is, in words (stored with the published cells)
    """

    strata: np.ndarray
    psu: np.ndarray
    fpc: np.ndarray
    ssu: np.ndarray | None = None
    fpc2: np.ndarray | None = None
    estimator: str = ""

    def arrays(self) -> dict[str, np.ndarray | None]:
        """Keyword arguments of ``Design.from_arrays`` besides the weights."""
        return {"strata": self.strata, "psu": self.psu, "fpc": self.fpc, "ssu": self.ssu,
                "fpc2": self.fpc2}


#: the variance estimators of :func:`design_columns`' designs, in words
ONE_STAGE_ESTIMATOR = "stratified SRSWOR: Taylor linearisation, fpc N_h"
TWO_STAGE_ESTIMATOR = ("PPS clusters, SRS persons: Taylor linearisation, f1 = mean pi1 of "
                       "the stratum's clusters, f2 = m_i/M_i, certainty clusters own strata")


def _labels(values: Any, name: str, n: int) -> np.ndarray:
    a = np.asarray(values, dtype=object)
    if a.shape != (n,):
        raise ValueError(f"{name}: {a.size} values for {n} units")
    missing = pd.isna(a)
    if missing.any():
        raise ValueError(f"{name}: missing value at row {int(np.argmax(missing))}")
    return a


def _positive(values: Any, name: str, n: int) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.shape != (n,):
        raise ValueError(f"{name}: {x.size} values for {n} units")
    bad = ~np.isfinite(x) | (x <= 0)
    if bad.any():
        raise ValueError(f"{name}: {float(x[bad][0])!r} at row {int(np.argmax(bad))} is not a "
                         "positive number")
    return x


def _one_per(x: np.ndarray, group: np.ndarray, labels: Any, name: str, what: str) -> None:
    """``x`` (numbers) must be constant within each group (codes 0..G-1)."""
    lo = np.full(len(labels), np.inf)
    hi = np.full(len(labels), -np.inf)
    np.minimum.at(lo, group, x)
    np.maximum.at(hi, group, x)
    varying = np.flatnonzero(hi - lo > 1e-12 * np.maximum(np.abs(hi), 1.0))
    if varying.size:
        raise ValueError(f"{name}: {what} {labels[varying[0]]!r} has more than one value")


def design_columns(stratum: Any, unit: Any, *, population: Any = None, psu: Any = None,
                   pi1: Any = None, certainty: Any = None, cluster_size: Any = None
                   ) -> DesignColumns:
    """The design arrays of a drawn sample's responding units, for variance estimation.

    One stage (``psu`` None), stratified SRSWOR of units (:func:`stratified_srs`):
    ``population`` is N_h on each row; each unit is its own PSU, fpc = N_h.

    Two stages (``psu`` given): clusters drawn by PPS within strata (:func:`pps_sample`),
    then persons by SRS within each cluster. ``pi1`` and ``certainty`` are the cluster's
    first-stage probability and certainty flag as drawn, ``cluster_size`` its population
    M_i (at least its respondents), ``unit`` the person. The variance is R's
    ``svydesign(ids=~psu+ssu, strata=~strata, fpc=~fpc+fpc2)``: each stratum's first
    stage with ``1 - f_h``, f_h the mean π1 of its clusters (Brewer's ``1 - π_i``
    averaged over the stratum), plus the second stage within each cluster with
    ``f_h (1 - m_i/M_i)``; a certainty cluster is a stratum of its own with f = 1, so
    it adds its second-stage variance only. With equal cluster sizes this is exactly
    the two-stage SRSWOR estimator with fpc at both stages.

    Raises ValueError naming the column and the stratum or PSU at fault.
    """
    u = np.asarray(unit, dtype=object)
    n = u.size
    u = _labels(u, "unit", n)
    s = _labels(stratum, "stratum", n)
    if psu is None:
        if population is None:
            raise ValueError("population: a one-stage design needs N_h on every row")
        N = _positive(population, "population", n)
        h, labels = pd.factorize(s)
        _one_per(N, h, labels, "population", "stratum")
        counts = np.bincount(h)[h]
        over = counts > N + 1e-9
        if over.any():
            i = int(np.argmax(over))
            raise ValueError(f"population: stratum {s[i]!r} has {counts[i]} units but "
                             f"N_h = {N[i]:g}")
        return DesignColumns(strata=s, psu=u, fpc=N, estimator=ONE_STAGE_ESTIMATOR)
    p = _labels(psu, "psu", n).astype(str).astype(object)
    s = s.astype(str).astype(object)  # object: a certainty label may be longer
    pi = _positive(pi1, "pi1", n)
    M = _positive(cluster_size, "cluster_size", n)
    sure = (np.zeros(n, dtype=bool) if certainty is None
            else np.asarray(certainty, dtype=bool)) | (pi >= 1 - 1e-12)
    g, clusters = pd.factorize(p)
    if (pi > 1 + 1e-12).any():
        raise ValueError(f"pi1: PSU {p[np.argmax(pi > 1 + 1e-12)]!r} has a first-stage "
                         "probability above 1")
    h, labels = pd.factorize(s)
    for values, name in ((h, "stratum"), (pi, "pi1"), (sure, "certainty"),
                         (M, "cluster_size")):
        _one_per(values.astype(float), g, clusters, name, "PSU")
    first = np.unique(g, return_index=True)[1]  # a row of each PSU, in code order
    m = np.bincount(g)
    over = m > M[first] + 1e-9
    if over.any():
        k = int(np.argmax(over))
        raise ValueError(f"cluster_size: PSU {clusters[k]!r} has {m[k]} respondents but a "
                         f"population of {M[first][k]:g}")
    sure_psu = sure[first]
    own = {k: f"{s[first[k]]}|{clusters[k]}" for k in np.flatnonzero(sure_psu)}
    clash = set(own.values()) & set(s[~sure])
    if clash:
        raise ValueError(f"stratum: {sorted(clash)[0]!r} is both a stratum and a certainty "
                         "PSU's own stratum; rename the stratum")
    strata = s.copy()
    for k, label in own.items():
        strata[g == k] = label
    # first-stage fraction f_h: the mean π1 of the stratum's (non-certainty) PSUs
    hp = h[first]
    n_h = np.bincount(hp, weights=~sure_psu, minlength=len(labels))
    pi_sum = np.bincount(hp, weights=np.where(sure_psu, 0.0, pi[first]), minlength=len(labels))
    with np.errstate(divide="ignore", invalid="ignore"):
        fpc_h = n_h * n_h / pi_sum  # n_h / mean(π1)
    fpc = np.where(sure, 1.0, fpc_h[h])
    return DesignColumns(strata=strata, psu=p, fpc=fpc, ssu=u, fpc2=M,
                         estimator=TWO_STAGE_ESTIMATOR)


# ---------------------------------------------------------------- quotas


@dataclass(frozen=True)
class QuotaStatus:
    """Completes against quotas per stratum.

    ``table`` has index ``stratum`` and columns ``quota, completes, remaining,
    progress`` (completes / quota) and ``met``; with ``sampled`` also
    ``sampled, response_rate``.  ``overall`` is a dict of the same totals.
    """

    table: pd.DataFrame
    overall: dict[str, float]

    @property
    def all_met(self) -> bool:
        return bool(self.table["met"].all())


def quota_progress(
    quotas: Mapping[Any, int] | pd.Series,
    completes: Any,
    sampled: Mapping[Any, int] | pd.Series | None = None,
) -> QuotaStatus:
    """Track completes against quotas (and response rates) per stratum.

    Parameters
    ----------
    quotas : ``{stratum: quota}``
    completes : either a mapping ``{stratum: count}``, or an array/Series of
        stratum labels, one per complete interview
    sampled : optional ``{stratum: number of sampled/invited units}`` for
        response rates (completes / sampled)

    Raises
    ------
    ValueError
        a negative quota, or a complete in a stratum that has no quota.
    """
    q = _as_series(quotas, "quotas")
    if (q < 0).any():
        raise ValueError(f"quotas: negative quota for stratum {q.index[q < 0][0]!r}")
    if isinstance(completes, Mapping):
        c = _as_series(completes, "completes")
    else:
        c = pd.Series(np.asarray(completes)).value_counts().astype(float)
    extra = [k for k in c.index if k not in q.index and c[k] > 0]
    if extra:
        raise ValueError(f"completes in stratum {extra[0]!r}, which has no quota")
    t = pd.DataFrame({"quota": q})
    t["completes"] = c.reindex(q.index).fillna(0.0)
    t["remaining"] = np.maximum(t["quota"] - t["completes"], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t["progress"] = np.where(t["quota"] > 0, t["completes"] / t["quota"], 1.0)
    t["met"] = t["completes"] >= t["quota"]
    overall = {"quota": float(t["quota"].sum()), "completes": float(t["completes"].sum()),
               "remaining": float(t["remaining"].sum())}
    if sampled is not None:
        s = _as_series(sampled, "sampled").reindex(q.index)
        if s.isna().any():
            raise ValueError(f"sampled: no count for stratum {s.index[s.isna()][0]!r}")
        t["sampled"] = s
        with np.errstate(divide="ignore", invalid="ignore"):
            t["response_rate"] = np.where(s > 0, t["completes"] / s, np.nan)
        overall["sampled"] = float(s.sum())
        overall["response_rate"] = overall["completes"] / overall["sampled"] if s.sum() else np.nan
    t.index.name = "stratum"
    return QuotaStatus(table=t, overall=overall)
