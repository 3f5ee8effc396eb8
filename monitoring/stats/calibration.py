"""Calibrated designs: post-stratification, raking, linear (GREG) calibration and trimming
of a :class:`~monitoring.stats.design.Design` or a replicate design, so that estimates
carry the calibration into their standard errors.

The weights come from :mod:`monitoring.stats.weights` (one way to compute them); the
design records each step (:class:`~monitoring.stats.design.PostStratification`,
:class:`~monitoring.stats.design.Raking`, :class:`~monitoring.stats.design.LinearCalibration`)
and its variance uses the residuals of the linearised values after the steps, exactly as
R's ``survey`` (``postStratify``, ``rake``, ``calibrate``, ``svyrecvar``).  A replicate
design is recalibrated replicate by replicate (as R does for ``svyrep.design``); that needs
the dense (n, #replicates) weight matrix, which is built from the jackknife's base design
when it was made with ``dense=False``.  Formulas and references: ``monitoring/README.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from monitoring.stats import weights as W
from monitoring.stats.design import (
    Design,
    LinearCalibration,
    PostStratification,
    Raking,
    ReplicateDesign,
    jackknife,
)

__all__ = ["TrimmedCalibration", "calibrate", "poststratify", "rake", "trim_and_recalibrate",
           "trim_weights"]

AnyDesign = Design | ReplicateDesign


def _cells_frame(cells: Any, n: int) -> tuple[pd.DataFrame, list[str]]:
    """Cell labels as a frame and the names of its columns (crossed when several)."""
    if isinstance(cells, pd.DataFrame):
        frame = cells.reset_index(drop=True)
        by = [str(c) for c in frame.columns]
        frame.columns = by
    elif isinstance(cells, pd.Series):
        name = str(cells.name) if cells.name is not None else "cell"
        frame, by = pd.DataFrame({name: cells.to_numpy()}), [name]
    else:
        frame, by = pd.DataFrame({"cell": np.asarray(cells)}), ["cell"]
    if len(frame) != n:
        raise ValueError(f"post-strata: {len(frame)} labels for {n} units of the design")
    return frame, by


def _codes(frame: pd.DataFrame, by: list[str]) -> np.ndarray:
    lab = W._cell_labels(frame, by if len(by) > 1 else by[0], len(frame), "post-strata")
    return pd.factorize(lab, sort=False)[0].astype(np.int64)


def _dense_replicates(design: ReplicateDesign) -> np.ndarray:
    if design.replicates is not None:
        return design.replicates
    if design.base is None:
        raise ValueError("replicate design has neither replicate weights nor a base design")
    return jackknife(design.base, mse=design.mse, dense=True).replicates


def _recalibrated(design: ReplicateDesign, weights: np.ndarray,
                  replicates: np.ndarray) -> ReplicateDesign:
    return dataclasses.replace(design, weights=weights, replicates=replicates, base=None)


def poststratify(design: AnyDesign, cells: Any, totals: Any) -> AnyDesign:
    """Post-stratify a design to known population cell counts (R's ``postStratify``).

    Parameters
    ----------
    design : Design or ReplicateDesign (every replicate is post-stratified too)
    cells : (n,) cell labels (array or Series; a Series' name is the column name the
        ``totals`` frame uses) or a DataFrame of several label columns (crossed)
    totals : DataFrame with the cell columns and ``total``, or a Series / mapping keyed
        by the cell label (a tuple for crossed cells)

    Returns
    -------
    The design with weights ``w N_c / Σ_c w`` and, for a Design, the step recorded so
    its variance is the post-stratified one.

    Raises
    ------
    ValueError
        a cell without a total or a total without units (named, from
        :func:`monitoring.stats.weights.poststratify`), or a replicate whose units of a
        cell all have weight zero (named).
    """
    frame, by = _cells_frame(cells, design.n)
    new = W.poststratify(design.weights, frame, by, totals).weights
    codes = _codes(frame, by)
    if isinstance(design, Design):
        step = PostStratification(cells=codes, weights=new, oldweights=design.weights)
        return dataclasses.replace(design, weights=new,
                                   calibration=(*design.calibration, step))
    rep = _dense_replicates(design)
    C = int(codes.max()) + 1
    ind = sparse.csr_matrix((np.ones(codes.size), (codes, np.arange(codes.size))),
                            shape=(C, codes.size))
    target = np.bincount(codes, weights=new, minlength=C)
    have = np.asarray(ind @ rep)
    empty = np.argwhere((have <= 0) & (target[:, None] > 0))
    if empty.size:
        c, r = empty[0]
        label = frame.iloc[int(np.argmax(codes == c))][by].tolist()
        raise ValueError(f"post-stratum {label!r} has zero weight in replicate {int(r)}")
    factor = np.divide(target[:, None], have, out=np.zeros_like(have), where=have > 0)
    return _recalibrated(design, new, rep * factor[codes])


def rake(design: AnyDesign, data: pd.DataFrame,
         margins: Mapping[str, Mapping[Any, float] | pd.Series],
         tol: float = 1e-10, max_iter: int = 200) -> AnyDesign:
    """Rake a design to known margins (R's ``rake``), to full convergence.

    ``data`` holds one column per margin, row for row with the design's units;
    ``margins`` is ``{column: totals by category}``.  The weights are
    :func:`monitoring.stats.weights.rake`'s (relative ``tol`` on every margin).  The
    variance uses R's raking residuals (10 rounds of backfitting over the margins); R
    takes each margin's weights from the last raking cycle, which at convergence are the
    final weights used here.  R's default ``control=list(epsilon=1)`` stops at an absolute
    error of 1 on each margin: pass ``epsilon=1e-12`` or so to R for the same weights.
    A ReplicateDesign is raked column by column.
    """
    if len(data) != design.n:
        raise ValueError(f"rake: data has {len(data)} rows for {design.n} units")
    data = data.reset_index(drop=True)
    new = W.rake(design.weights, data, margins, tol=tol, max_iter=max_iter).weights
    if isinstance(design, Design):
        codes = tuple(pd.factorize(data[c], sort=False)[0].astype(np.int64) for c in margins)
        step = Raking(margins=codes, weights=tuple(new for _ in codes))
        return dataclasses.replace(design, weights=new,
                                   calibration=(*design.calibration, step))
    rep = _dense_replicates(design)
    out = np.empty_like(rep)
    for r in range(rep.shape[1]):
        try:
            out[:, r] = W.rake(rep[:, r], data, margins, tol=tol, max_iter=max_iter).weights
        except ValueError as exc:
            raise ValueError(f"replicate {r}: {exc}") from None
    return _recalibrated(design, new, out)


def _model_matrix(X: Any, n: int) -> tuple[np.ndarray, list[str]]:
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        bad = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])
               and not pd.api.types.is_bool_dtype(X[c])]
        if bad:
            raise ValueError(f"calibrate: column {bad[0]!r} is not numeric (use dummies)")
        M = X.to_numpy(dtype=float)
    else:
        M = np.asarray(X, dtype=float)
        if M.ndim == 1:
            M = M[:, None]
        names = [f"x{j}" for j in range(M.shape[1])]
    if M.ndim != 2 or M.shape[0] != n:
        raise ValueError(f"calibrate: X needs {n} rows, got shape {M.shape}")
    if not np.isfinite(M).all():
        j = int(np.argmax(~np.isfinite(M).all(axis=0)))
        raise ValueError(f"calibrate: column {names[j]!r} has missing or infinite values")
    return M, names


def _g_weights(M: np.ndarray, w: np.ndarray, target: np.ndarray, names: list[str]) -> np.ndarray:
    """R's ``regcalibrate``: g = 1 + X (X'WX)^-1 (T - X'w)."""
    if np.linalg.matrix_rank(M * np.sqrt(np.abs(w))[:, None]) < M.shape[1]:
        raise ValueError(f"calibrate: the variables {names} are collinear in the sample")
    T = (M * w[:, None]).T @ M
    try:
        lam = np.linalg.solve(T, target - M.T @ w)
    except np.linalg.LinAlgError:
        raise ValueError(f"calibrate: the variables {names} are collinear in the sample "
                         "(X'WX is singular)") from None
    return 1.0 + M @ lam


def calibrate(design: AnyDesign, X: Any, totals: Any, calfun: str = "linear") -> AnyDesign:
    """Linear (GREG) calibration to known totals of ``X`` (R's ``calibrate(...,
    calfun="linear")`` with no bounds): ``w_i g_i``, ``g = 1 + x_i'(X'WX)^-1 (T - X'w)``.

    Parameters
    ----------
    design : Design or ReplicateDesign (every replicate is calibrated too)
    X : (n, p) model matrix (array, or DataFrame of numeric columns; include a column of
        ones for the population size, dummies for categories)
    totals : (p,) population totals of the columns of X (a Series is aligned by name
        with the DataFrame's columns)
    calfun : only ``"linear"`` (raking is :func:`rake`)

    Weights can become negative, as in R.
    """
    if calfun != "linear":
        raise ValueError(f"calibrate: calfun {calfun!r} not available (use 'linear', or "
                         "rake() for raking)")
    M, names = _model_matrix(X, design.n)
    if isinstance(totals, pd.Series) and isinstance(X, pd.DataFrame):
        missing = [c for c in names if c not in totals.index.astype(str)]
        if missing:
            raise ValueError(f"calibrate: no total for column {missing[0]!r}")
        target = totals.set_axis(totals.index.astype(str)).loc[names].to_numpy(dtype=float)
    else:
        target = np.asarray(totals, dtype=float).reshape(-1)
    if target.size != M.shape[1] or not np.isfinite(target).all():
        raise ValueError(f"calibrate: need {M.shape[1]} finite totals, got {target.size}")
    g = _g_weights(M, design.weights, target, names)
    new = design.weights * g
    if isinstance(design, Design):
        step = LinearCalibration(X=M, oldweights=design.weights, g=g)
        return dataclasses.replace(design, weights=new,
                                   calibration=(*design.calibration, step))
    rep = _dense_replicates(design)
    out = np.column_stack([rep[:, r] * _g_weights(M, rep[:, r], target, names)
                           for r in range(rep.shape[1])])
    return _recalibrated(design, new, out)


def trim_weights(design: AnyDesign, upper: float | None = None, lower: float | None = None,
                 median_multiple: float | None = None, strict: bool = True) -> AnyDesign:
    """Trim a design's weights (R's ``trimWeights``, additive redistribution: see
    :func:`monitoring.stats.weights.trim`).  Recorded calibration steps are kept, as in
    R; margins no longer hold exactly -- :func:`trim_and_recalibrate` restores them.  A
    ReplicateDesign's replicate columns are trimmed to the same bounds."""
    res = W.trim(design.weights, upper=upper, lower=lower, median_multiple=median_multiple,
                 strict=strict)
    if isinstance(design, Design):
        return dataclasses.replace(design, weights=res.weights)
    rep = _dense_replicates(design)
    up = res.upper if np.isfinite(res.upper) else None
    lo = res.lower if res.lower > 0 else None
    out = np.column_stack([W.trim(rep[:, r], upper=up, lower=lo, strict=strict).weights
                           if (up is not None or lo is not None) else rep[:, r]
                           for r in range(rep.shape[1])])
    return _recalibrated(design, res.weights, out)


@dataclass(frozen=True)
class TrimmedCalibration:
    """Weights both trimmed and calibrated.

    Attributes
    ----------
    weights : (n,) final weights: none outside the bounds, margins within ``tol``
    design : the calibrated design (None when weights were given)
    upper, lower : the bounds
    iterations : trim-and-rake rounds
    n_trimmed : weights at a bound at the end
    max_error : max over margins and categories of ``|Σ w - N| / N``
    """

    weights: np.ndarray
    design: AnyDesign | None
    upper: float
    lower: float
    iterations: int
    n_trimmed: int
    max_error: float


def _margin_codes(data: pd.DataFrame, margins: Mapping[str, Any]
                  ) -> list[tuple[str, np.ndarray, pd.Index, np.ndarray]]:
    out = []
    for col, tot in margins.items():
        if col not in data.columns:
            raise ValueError(f"margin column {col!r} not in data")
        t = tot.astype(float) if isinstance(tot, pd.Series) else pd.Series(dict(tot),
                                                                             dtype=float)
        codes, uniq = pd.factorize(data[col], sort=False)
        out.append((col, codes, uniq, t.reindex(list(uniq)).to_numpy(dtype=float)))
    return out


def _margin_error(w: np.ndarray, coded: list[tuple[str, np.ndarray, pd.Index, np.ndarray]]
                  ) -> tuple[float, str]:
    worst, where = 0.0, ""
    for col, codes, _, tv in coded:
        cur = np.bincount(codes, weights=w, minlength=tv.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(tv > 0, np.abs(cur - tv) / tv, np.abs(cur))
        if rel.max() > worst:
            worst, where = float(rel.max()), col
    return worst, where


def trim_and_recalibrate(
    design_or_weights: AnyDesign | Any,
    data: pd.DataFrame,
    margins: Mapping[str, Mapping[Any, float] | pd.Series],
    upper: float | None = None,
    lower: float | None = None,
    median_multiple: float | None = None,
    tol: float = 1e-8,
    max_iter: int = 100,
) -> TrimmedCalibration:
    """Rake, trim, and repeat until the margins hold and no weight is outside the bounds.

    Each round rakes the weights to ``margins`` (:func:`monitoring.stats.weights.rake`)
    and trims them (:func:`monitoring.stats.weights.trim`, additive); it stops when the
    trimmed weights meet every margin within relative ``tol``.  The bounds are fixed
    before the first round (``median_multiple`` times the median of the first raked
    weights).  A Design is returned with the raking recorded for its variance (the
    trimming, as in R, is treated as fixed); a ReplicateDesign gets the same treatment
    replicate by replicate.

    Raises
    ------
    ValueError
        a margin category that cannot reach its total within the bounds (its units times
        the cap; named), or no convergence in ``max_iter`` rounds (the margin furthest off
        is named).
    """
    design = design_or_weights if isinstance(design_or_weights, Design | ReplicateDesign) \
        else None
    w0 = design.weights if design is not None else W._weights(design_or_weights)
    if len(data) != w0.size:
        raise ValueError(f"trim_and_recalibrate: data has {len(data)} rows for {w0.size} "
                         "weights")
    data = data.reset_index(drop=True)
    first = W.rake(w0, data, margins, tol=min(tol, 1e-10) * 1e-2).weights
    bounds = W.trim(first, upper=upper, lower=lower, median_multiple=median_multiple)
    up, lo = bounds.upper, bounds.lower
    coded = _margin_codes(data, margins)

    def feasible(w: np.ndarray) -> None:
        pos = w > 0
        for col, codes, uniq, tv in coded:
            n_c = np.bincount(codes, weights=pos.astype(float), minlength=tv.size)
            short = np.flatnonzero(n_c * up < tv * (1 - 1e-12))
            if short.size:
                k = short[0]
                raise ValueError(f"margin {col!r}: category {uniq[k]!r} has {int(n_c[k])} "
                                 f"units, so weights capped at {up:g} cannot reach its "
                                 f"total {tv[k]:g}")
            over = np.flatnonzero(n_c * lo > tv * (1 + 1e-12))
            if over.size:
                k = over[0]
                raise ValueError(f"margin {col!r}: category {uniq[k]!r} has {int(n_c[k])} "
                                 f"units, so weights of at least {lo:g} exceed its total "
                                 f"{tv[k]:g}")

    def solve(w: np.ndarray) -> tuple[np.ndarray, int, float]:
        feasible(w)
        cur = W.rake(w, data, margins, tol=min(tol, 1e-10) * 1e-2, max_iter=1000).weights
        err, where = np.inf, ""
        for it in range(1, max_iter + 1):
            cur = W.trim(cur, upper=up if np.isfinite(up) else None,
                         lower=lo if lo > 0 else None).weights
            err, where = _margin_error(cur, coded)
            if err <= tol:
                return cur, it, err
            cur = W.rake(cur, data, margins, tol=min(tol, 1e-10) * 1e-2,
                         max_iter=1000).weights
        raise ValueError(f"trim_and_recalibrate: margin {where!r} still off by {err:.3g} "
                         f"(relative) after {max_iter} rounds of raking and trimming")

    final, iterations, err = solve(w0)
    at = (w0 > 0) & ((np.abs(final - up) <= 1e-12 * max(up, 1.0))
                     | ((lo > 0) & (np.abs(final - lo) <= 1e-12 * max(lo, 1.0))))
    out: AnyDesign | None = None
    if isinstance(design, Design):
        codes = tuple(c for _, c, _, _ in coded)
        step = Raking(margins=codes, weights=tuple(final for _ in codes))
        out = dataclasses.replace(design, weights=final,
                                  calibration=(*design.calibration, step))
    elif isinstance(design, ReplicateDesign):
        rep = _dense_replicates(design)
        cols = []
        for r in range(rep.shape[1]):
            try:
                cols.append(solve(rep[:, r])[0])
            except ValueError as exc:
                raise ValueError(f"replicate {r}: {exc}") from None
        out = _recalibrated(design, final, np.column_stack(cols))
    return TrimmedCalibration(weights=final, design=out, upper=up, lower=lo,
                              iterations=iterations, n_trimmed=int(at.sum()), max_error=err)
