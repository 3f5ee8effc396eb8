"""Plausible values: Rubin's rules (:func:`rubin`) and design-based estimates from M
plausible values (:func:`pv_estimate`, :func:`proficiency_shares`), as PISA and PIAAC
report.  Formulas and references: ``monitoring/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from monitoring.stats.design import Design, ReplicateDesign
from monitoring.stats.estimates import (
    CI_METHODS,
    DF_METHODS,
    Estimates,
    _estimate,
    domains,
    korn_graubard,
)

__all__ = ["RubinResult", "proficiency_shares", "pv_estimate", "rubin"]


@dataclass(frozen=True)
class RubinResult:
    """Rubin's rules over M imputations (plausible values), per column.

    Attributes
    ----------
    estimate : mean of the M point estimates
    within : mean sampling variance ``Ū``
    between : between-imputation variance ``B`` (ddof=1)
    total : ``T = Ū + (1 + 1/M) B``
    se : ``sqrt(T)``
    df : Rubin (1987) df ``(M-1)(1 + 1/r)²``, or Barnard & Rubin (1999) df
        when ``df_complete`` is given
    fmi : fraction of missing information ``λ = (1 + 1/M) B / T``
    m : M
    """

    estimate: np.ndarray
    within: np.ndarray
    between: np.ndarray
    total: np.ndarray
    se: np.ndarray
    df: np.ndarray
    fmi: np.ndarray
    m: int


def rubin(estimates: Any, variances: Any, df_complete: float | None = None) -> RubinResult:
    """Combine M estimates and their sampling variances with Rubin's rules.

    Parameters
    ----------
    estimates, variances : (M,) or (M, K)
    df_complete : complete-data df ν_com (e.g. the design df; a scalar or one per
        column); when given, the Barnard-Rubin small-sample df
        ``ν = (1/ν_m + 1/ν_obs)⁻¹`` with ``ν_m = (M-1)/λ²`` and
        ``ν_obs = (ν_com+1)/(ν_com+3) ν_com (1-λ)``.
    """
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    if q.shape != u.shape:
        raise ValueError("estimates and variances must have the same shape")
    if q.ndim not in (1, 2):
        raise ValueError("estimates must be (M,) or (M, K)")
    M = q.shape[0]
    if M < 2:
        raise ValueError("Rubin's rules need at least two plausible values")
    qbar = q.mean(axis=0)
    ubar = u.mean(axis=0)
    b = q.var(axis=0, ddof=1)
    tot = ubar + (1.0 + 1.0 / M) * b
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(tot > 0, (1.0 + 1.0 / M) * b / tot, 0.0)
        nu_m = np.where(lam > 0, (M - 1) / lam**2, np.inf)
        if df_complete is None:
            df = nu_m
        else:
            nc = np.asarray(df_complete, dtype=float)
            nu_obs = (nc + 1.0) / (nc + 3.0) * nc * (1.0 - lam)
            df = np.where(np.isinf(nu_m), nu_obs, 1.0 / (1.0 / nu_m + 1.0 / nu_obs))
    return RubinResult(estimate=qbar, within=ubar, between=b, total=tot, se=np.sqrt(tot),
                       df=df, fmi=lam, m=M)


def _pv_matrix(pvs: Any, n: int) -> np.ndarray:
    p = np.asarray(pvs, dtype=float)
    if p.ndim != 2 or p.shape[0] != n:
        raise ValueError(f"pvs: need an (n={n}, M) array, got shape {p.shape}")
    if p.shape[1] < 2:
        raise ValueError("pvs: need at least two plausible values")
    return p


def _rubin_table(labels: pd.DataFrame, runs: list[Estimates], conf: float) -> pd.DataFrame:
    """Rubin's rules over the runs (one per PV), with each run's df column (the design's
    or the domain's) as the complete-data df: the Wald-type t interval."""
    est = np.vstack([r.table["estimate"].to_numpy() for r in runs])
    var = np.vstack([r.table["se"].to_numpy() ** 2 for r in runs])
    res = rubin(est, var, df_complete=runs[0].table["df"].to_numpy())
    q = stats.t.ppf(0.5 + conf / 2, res.df)
    t = labels.copy()
    t["estimate"] = res.estimate
    t["se"] = res.se
    t["ci_low"] = res.estimate - q * res.se
    t["ci_high"] = res.estimate + q * res.se
    t["df"] = res.df
    t["n"] = runs[0].table["n"].to_numpy()
    t["within"] = res.within
    t["between"] = res.between
    t["fmi"] = res.fmi
    return t


_RUN_COLUMNS = ["estimate", "se", "ci_low", "ci_high", "df", "n", "deff"]


def _share_interval(t: pd.DataFrame, runs: list[Estimates], method: str, conf: float
                    ) -> None:
    """Replace the Wald interval of PV-combined shares (in place) by the logit or the
    Korn-Graubard interval.

    logit: each PV's share p_m and variance v_m go to the logit scale (``logit p_m``,
    ``v_m / (p_m(1-p_m))²``), Rubin's rules combine them there (Barnard-Rubin df with
    the run's df as complete-data df) and the t limits go back with expit.  Where a
    PV's share is 0 or 1 (an infinite logit) the Korn-Graubard interval is used.
    beta: Korn-Graubard on the combined share with Rubin's total variance, Rubin's
    df and the respondents n (at p = 0 or 1, ``n_eff = n``).
    """
    lo, hi, _ = korn_graubard(t["estimate"], t["se"], t["n"], t["df"], conf)
    if method == "logit":
        p = np.vstack([r.table["estimate"].to_numpy() for r in runs])
        v = np.vstack([r.table["se"].to_numpy() ** 2 for r in runs])
        inner = ((p > 0) & (p < 1)).all(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = np.where(inner, np.log(p / (1 - p)), 0.0)
            lv = np.where(inner, v / (p * (1 - p)) ** 2, 0.0)
        res = rubin(lp, lv, df_complete=runs[0].table["df"].to_numpy())
        q = stats.t.ppf(0.5 + conf / 2, res.df)
        lo = np.where(inner, special.expit(res.estimate - q * res.se), lo)
        hi = np.where(inner, special.expit(res.estimate + q * res.se), hi)
    t["ci_low"] = lo
    t["ci_high"] = hi


def _check(ci_method: str | None, df: str) -> None:
    if ci_method is not None and ci_method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {CI_METHODS}, not {ci_method!r}")
    if df not in DF_METHODS:
        raise ValueError(f"df must be one of {DF_METHODS}, not {df!r}")


def pv_estimate(design: Design | ReplicateDesign, pvs: Any, stat: str = "mean", by: Any = None,
                conf: float = 0.95, df: str = "design") -> Estimates:
    """Mean (or total) of a latent variable from M plausible values.

    Each PV column is estimated with the design's variance method; the M
    results are combined with :func:`rubin` (Barnard-Rubin df with the design's df,
    or each domain's with ``df="domain"``, as complete-data df).  Table columns add
    ``within, between, fmi``.  ``by`` as in :func:`~monitoring.stats.estimates.survey_mean`
    (a :class:`~monitoring.stats.estimates.Domains` is factorised once for all PVs).
    """
    if stat not in ("mean", "total"):
        raise ValueError("stat must be 'mean' or 'total'")
    _check(None, df)
    p = _pv_matrix(pvs, design.n)
    dom = domains(by, design.n)
    runs = [_estimate(design, stat, p[:, m], by=dom, df=df) for m in range(p.shape[1])]
    labels = runs[0].table.drop(columns=_RUN_COLUMNS)
    t = _rubin_table(labels, runs, conf)
    method = "taylor" if isinstance(design, Design) else design.kind
    return Estimates(table=t, stat=f"pv_{stat}", method=method, ci="t", df_method=df)


def proficiency_shares(
    design: Design | ReplicateDesign,
    pvs: Any,
    cuts: Any,
    labels: Any = None,
    by: Any = None,
    conf: float = 0.95,
    ci_method: str = "logit",
    df: str = "design",
) -> Estimates:
    """Shares of the population in proficiency levels, from plausible values.

    Level k (0-based) holds ``cuts[k-1] <= θ < cuts[k]`` (level 0 below the
    first cut, the last level at or above the last cut).  Each level's share is
    estimated per PV as a proportion and combined with :func:`rubin`; the interval
    is ``ci_method`` ``"logit"`` (default: Rubin's rules on the logit scale),
    ``"beta"`` (Korn-Graubard on the combined share) or ``"wald"`` (see
    :func:`_share_interval`); ``df`` as in :func:`pv_estimate`.

    Returns
    -------
    Estimates whose table has the domain columns, ``level`` and the estimate
    columns; shares within a domain sum to 1.
    """
    _check(ci_method, df)
    c = np.asarray(cuts, dtype=float)
    if c.ndim != 1 or c.size == 0 or np.any(np.diff(c) <= 0):
        raise ValueError("cuts must be a non-empty increasing sequence")
    L = c.size + 1
    names = list(range(L)) if labels is None else list(labels)
    if len(names) != L:
        raise ValueError(f"labels: need {L} level labels for {c.size} cut points")
    p = _pv_matrix(pvs, design.n)
    dom = domains(by, design.n)
    lev = np.digitize(p, c, right=False)
    lev = np.where(np.isnan(p), -1, lev)
    parts = []
    for k in range(L):
        runs = []
        for m in range(p.shape[1]):
            yk = np.where(lev[:, m] < 0, np.nan, (lev[:, m] == k).astype(float))
            runs.append(_estimate(design, "proportion", yk, by=dom, ci_method="wald", df=df))
        lab = runs[0].table.drop(columns=_RUN_COLUMNS).copy()
        lab["level"] = names[k]
        part = _rubin_table(lab, runs, conf)
        if ci_method != "wald":
            _share_interval(part, runs, ci_method, conf)
        parts.append(part)
    t = pd.concat(parts, ignore_index=True)
    dom_cols = [col for col in t.columns if col not in ("level", "estimate", "se", "ci_low",
                                                        "ci_high", "df", "n", "within",
                                                        "between", "fmi")]
    if dom_cols:
        t = t.sort_values(dom_cols, kind="stable").reset_index(drop=True)
    method = "taylor" if isinstance(design, Design) else design.kind
    return Estimates(table=t, stat="pv_level_share", method=method, ci="t",
                     ci_method=ci_method, df_method=df)
