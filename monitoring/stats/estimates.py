"""Design-based estimates: means, proportions, totals and ratios, by domain.

Every estimator works with both variance methods of :mod:`monitoring.stats.design`:
Taylor linearisation (:class:`~monitoring.stats.design.Design`) and replicate weights
(:class:`~monitoring.stats.design.ReplicateDesign`).  Domains (subpopulations) are
estimated as domains: units outside the domain keep their place in their PSU and
stratum with a zero linearised value, so the domain size is random and its variability
enters the standard error.  Formulas and references: ``monitoring/README.md``.

Intervals: t (or normal) intervals with the design's or the domain's degrees of freedom
(``df="design"|"domain"``); for proportions the logit interval (default), the
Korn-Graubard interval (``"beta"``) or the Wald interval, as R's ``svyciprop``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse, special, stats

from monitoring.stats.design import Design, ReplicateDesign, _jackknife_totals

__all__ = ["CI_METHODS", "DF_METHODS", "Domains", "Estimates", "domains", "korn_graubard",
           "proportion_interval", "survey_mean", "survey_proportion", "survey_ratio",
           "survey_total"]

#: interval methods for proportions (R's ``svyciprop(method=)``: "logit", "beta" and
#: "mean", which is the Wald interval here)
CI_METHODS = ("logit", "beta", "wald")
#: degrees of freedom of an interval: the whole design's (#PSUs - #strata) or the
#: domain's own (PSUs with a member - their strata, as R's ``degf(subset(design, ...))``)
DF_METHODS = ("design", "domain")


@dataclass(frozen=True)
class Estimates:
    """A table of estimates, one row per domain.

    ``table`` columns: the domain columns (none for the whole population),
    ``estimate, se, ci_low, ci_high, df, n, deff``.  ``stat`` is the statistic,
    ``method`` ``"taylor"`` or the replicate kind, ``ci`` ``"t"`` or ``"normal"``,
    ``ci_method`` how the interval was made (``"wald"``; for proportions also
    ``"logit"`` or ``"beta"``), ``df_method`` ``"design"`` or ``"domain"``.
    """

    table: pd.DataFrame
    stat: str
    method: str
    ci: str
    ci_method: str = "wald"
    df_method: str = "design"

    @property
    def estimate(self) -> np.ndarray:
        return self.table["estimate"].to_numpy()

    @property
    def se(self) -> np.ndarray:
        return self.table["se"].to_numpy()


@dataclass(frozen=True, eq=False)
class Domains:
    """A domain partition of n units, factorised once (see :func:`domains`).

    Every estimator accepts it in place of ``by``, so that many measures over the
    same domains do not factorise the labels again.

    Attributes
    ----------
    codes : (n,) domain of each unit, 0..G-1, or -1 (in no domain: a missing label)
    labels : (G, k) DataFrame of the domain labels, one row per domain, sorted
    """

    codes: np.ndarray
    labels: pd.DataFrame

    @property
    def n(self) -> int:
        return int(self.codes.size)

    def __len__(self) -> int:
        return len(self.labels)


def domains(by: Any, n: int) -> Domains:
    """Factorise domain labels once: ``by`` is None (one domain, everybody), an
    array/Series of labels or a DataFrame of several (crossed); a row with a missing
    label is in no domain (it stays in the design).  Only domains with a member are
    kept, in sorted label order."""
    if isinstance(by, Domains):
        if by.n != n:
            raise ValueError(f"by: the domains are for {by.n} units, the design has {n}")
        return by
    if by is None:
        return Domains(np.zeros(n, dtype=np.int64), pd.DataFrame(index=range(1)))
    if isinstance(by, pd.DataFrame):
        cols = {str(c): by[c].to_numpy() for c in by.columns}
    elif isinstance(by, pd.Series):
        cols = {by.name if by.name is not None else "domain": by.to_numpy()}
    else:
        cols = {"domain": np.asarray(by)}
    codes, uniqs = [], []
    miss = np.zeros(n, dtype=bool)
    for name, v in cols.items():
        if len(v) != n:
            raise ValueError(f"by: column {name!r} has {len(v)} rows for {n} units")
        c, u = pd.factorize(v, sort=True)
        codes.append(c)
        uniqs.append(u)
        miss |= c < 0
    if len(codes) == 1:
        g = codes[0].astype(np.int64)
        present = np.unique(g[~miss])
        remap = np.full(len(uniqs[0]), -1, dtype=np.int64)
        remap[present] = np.arange(present.size)
        g = np.where(miss, -1, remap[np.where(miss, 0, g)])
        name = next(iter(cols))
        return Domains(g, pd.DataFrame({name: np.asarray(uniqs[0])[present]}))
    sizes = [len(u) for u in uniqs]
    flat = np.ravel_multi_index([np.where(miss, 0, c) for c in codes], sizes)
    present, inv = np.unique(flat[~miss], return_inverse=True)
    g = np.full(n, -1, dtype=np.int64)
    g[~miss] = inv.reshape(-1)
    parts = np.unravel_index(present, sizes)
    labels = pd.DataFrame({name: np.asarray(u)[k] for (name, u), k in
                           zip(zip(cols, uniqs), parts)})
    return Domains(g, labels)


def _values(x: Any, n: int, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.shape != (n,):
        raise ValueError(f"{name}: need {n} values, got shape {a.shape}")
    return a


def _core(
    design: Design | ReplicateDesign,
    a: np.ndarray,
    b: np.ndarray | None,
    g: np.ndarray,
    G: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Estimates ``Σwa / Σwb`` (or ``Σwa`` when b is None) per group, their variances
    and, for replicate designs, the (G, R) replicate estimates (None for Taylor)."""
    w = design.weights
    inside = g >= 0
    gx = np.where(inside, g, G)  # units in no domain go to an extra bin, dropped
    gi = np.where(inside, g, 0)
    A = np.bincount(gx, weights=w * a, minlength=G + 1)[:G]
    if b is not None:
        B = np.bincount(gx, weights=w * b, minlength=G + 1)[:G]
        with np.errstate(divide="ignore", invalid="ignore"):
            est = A / B
    else:
        est = A
    if isinstance(design, Design):
        if b is None:
            z = a
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(inside, (a - np.append(est, 0.0)[gx] * b)
                             / np.append(B, 1.0)[gx], 0.0)
        return est, design.variance_of_totals(w * z, g, G), None
    if design.base is not None:
        Ar = _jackknife_totals(design.base, w * a, g, G).T
        Br = None if b is None else _jackknife_totals(design.base, w * b, g, G).T
    else:
        ind = sparse.csr_matrix((np.ones(int(inside.sum())),
                                 (gi[inside], np.flatnonzero(inside))), shape=(G, w.size))
        Ar = np.asarray(ind @ (design.replicates * a[:, None]))
        Br = None if b is None else np.asarray(ind @ (design.replicates * b[:, None]))
    if Br is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            er = Ar / Br
    else:
        er = Ar
    return est, _replicate_variance(design, est, er), er


def _replicate_variance(design: ReplicateDesign, est: np.ndarray, er: np.ndarray
                        ) -> np.ndarray:
    centre = est[:, None] if design.mse else er.mean(axis=1, keepdims=True)
    return design.scale * ((er - centre) ** 2 @ design.rscales)


def _domain_df(design: Design | ReplicateDesign, g: np.ndarray, G: int) -> np.ndarray:
    """Per-domain df: PSUs with a member (weight > 0) minus the strata of those PSUs,
    at least 1 (R's ``degf(subset(design, domain))``).  A replicate design without the
    Taylor design it was made from has only its own df."""
    base = design if isinstance(design, Design) else design.base
    if base is None:
        return np.full(G, float(design.df))
    member = (g >= 0) & (design.weights > 0)
    P = base.psu_stratum.size
    S = base.n_psu.size
    gp = _distinct(g[member] * P + base.psu[member])
    npsu = np.bincount(gp // P, minlength=G)
    gs = _distinct(gp // P * S + base.psu_stratum[gp % P])
    nstrata = np.bincount(gs // S, minlength=G)
    return np.maximum(npsu - nstrata, 1).astype(float)


def _distinct(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique's hash path is ~5x slower on 10⁶ codes)."""
    k = np.sort(keys)
    return k[np.r_[True, k[1:] != k[:-1]]] if k.size else k


def korn_graubard(p: Any, se: Any, n: Any, df: Any, conf: float = 0.95,
                  cap: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Korn-Graubard (1998) interval: Clopper-Pearson with the effective sample size.

    ``n_eff = p(1-p)/se²`` and ``n* = n_eff (t_{n-1}/t_df)²`` (with ``cap``, as the NCHS
    standard, both at most ``n``); with ``x = n* p`` the limits are
    ``qbeta(α/2, x, n* - x + 1)`` and ``qbeta(1 - α/2, x + 1, n* - x)``: R's
    ``svyciprop(method="beta")`` when ``cap`` is False.  At p = 0 or 1 (R: NaN)
    ``n_eff = n* = n`` and the limit at the boundary is 0 or 1 (NCHS's limit case);
    with ``se = 0`` and 0 < p < 1 the interval is ``(p, p)`` (n* is infinite) unless
    ``cap``.

    Returns (lower, upper, n_eff before the df adjustment); arrays of p's shape.
    """
    p, se, n, df = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (p, se, n, df)))
    alpha = 1.0 - conf
    edge = (p <= 0) | (p >= 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = np.where(edge, n, p * (1 - p) / se**2)
        if cap:
            n_eff = np.minimum(n_eff, n)
        ratio = (stats.t.ppf(alpha / 2, n - 1) / stats.t.ppf(alpha / 2, df)) ** 2
        adj = np.where(edge, n, n_eff * ratio)
        if cap:
            adj = np.minimum(adj, n)
        x = adj * p
        lo = np.where(x > 0, stats.beta.ppf(alpha / 2, x, adj - x + 1), 0.0)
        hi = np.where(adj - x > 0, stats.beta.ppf(1 - alpha / 2, x + 1, adj - x), 1.0)
    exact = np.isinf(adj) & ~edge
    lo = np.where(exact, p, lo)
    hi = np.where(exact, p, hi)
    bad = np.isnan(p) | np.isnan(se) | (n < 1)
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi), np.where(bad, np.nan, n_eff)


def proportion_interval(p: Any, se: Any, n: Any, df: Any, method: str = "logit",
                        conf: float = 0.95, se_logit: Any = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Interval for a proportion ``p`` with standard error ``se``, as R's ``svyciprop``.

    * ``"logit"``: ``expit(logit p ± t_df · se_logit)`` with ``se_logit = se / (p(1-p))``
      (the variance of the logit of the intercept-only logistic model R fits), or the
      given ``se_logit``; at p = 0 or 1 the logit is infinite and the Korn-Graubard
      interval is used instead (R gives a degenerate interval there).
    * ``"beta"``: :func:`korn_graubard`.
    * ``"wald"``: ``p ± t_df · se`` (may leave [0, 1]).

    ``df`` is inf for normal intervals; ``n`` the respondents (used by ``"beta"`` and at
    p = 0 or 1).
    """
    if method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {CI_METHODS}, not {method!r}")
    p, se, n, df = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (p, se, n, df)))
    q = stats.t.ppf(0.5 + conf / 2, df)
    if method == "wald":
        return p - q * se, p + q * se
    lo, hi, _ = korn_graubard(p, se, n, df, conf)
    if method == "beta":
        return lo, hi
    with np.errstate(divide="ignore", invalid="ignore"):
        sl = se / (p * (1 - p)) if se_logit is None else np.asarray(se_logit, dtype=float)
        logit = np.log(p / (1 - p))
        llo = special.expit(logit - q * sl)
        lhi = special.expit(logit + q * sl)
    inner = (p > 0) & (p < 1) & np.isfinite(sl)
    return np.where(inner, llo, lo), np.where(inner, lhi, hi)


def _estimate(
    design: Design | ReplicateDesign,
    stat: str,
    y: Any,
    x: Any = None,
    by: Any = None,
    level: Any = None,
    ci: str = "t",
    conf: float = 0.95,
    ci_method: str = "wald",
    df: str = "design",
) -> Estimates:
    if ci not in ("t", "normal"):
        raise ValueError("ci must be 't' or 'normal'")
    if df not in DF_METHODS:
        raise ValueError(f"df must be one of {DF_METHODS}, not {df!r}")
    if ci_method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {CI_METHODS}, not {ci_method!r}")
    if not 0 < conf < 1:
        raise ValueError("conf must be between 0 and 1")
    n = design.n
    w = design.weights
    dom = domains(by, n)
    labels = dom.labels
    G = len(labels)
    if stat == "proportion":
        raw = np.asarray(y)
        if raw.shape != (n,):
            raise ValueError(f"y: need {n} values")
        ok = ~np.isnan(raw) if raw.dtype.kind == "f" else ~pd.isna(raw)
        if level is None:
            if raw.dtype.kind == "f":
                yv = np.where(ok, raw, 0.0)
            else:
                yv = np.zeros(n)
                yv[ok] = raw[ok].astype(float)
            if not ((yv == 0.0) | (yv == 1.0)).all():
                raise ValueError("proportion: y must be 0/1 (or give level=)")
        else:
            yv = np.where(ok, raw == level, 0.0).astype(float)
    else:
        yv = _values(y, n, "y")
        ok = np.isfinite(yv)
    xv = None
    if x is not None:
        xv = _values(x, n, "x")
        ok &= np.isfinite(xv)
    # missing values: the unit is outside the domain (keeps its PSU/stratum)
    g = np.where(ok, dom.codes, -1)
    a = np.where(ok, yv, 0.0)
    d = (g >= 0).astype(float)
    if stat == "total":
        b = None
    elif stat == "ratio":
        b = np.where(ok, xv, 0.0)
    else:
        b = d
    est, var, reps = _core(design, a, b, g, G)
    inside = g >= 0
    gx = np.where(inside, g, G)  # an extra bin for units in no domain, dropped

    def by_domain(v: np.ndarray) -> np.ndarray:
        return np.bincount(gx, weights=v, minlength=G + 1)[:G]

    counts = by_domain((w > 0).astype(float))
    Nd = by_domain(w)
    if stat == "total":
        with np.errstate(divide="ignore", invalid="ignore"):
            ybar = by_domain(w * a) / Nd
        u = np.where(inside, a - np.append(ybar, 0.0)[gx], 0.0)
        vsrs = _deff_srs(w, u, gx, G, True, Nd, counts)
    else:
        Bd = by_domain(w * b)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.append(Bd / Nd, 1.0)
            u = np.where(inside, (a - np.append(est, 0.0)[gx] * b) / scale[gx], 0.0)
        vsrs = _deff_srs(w, u, gx, G, False, Nd, counts)
    se = np.sqrt(np.maximum(var, 0.0))
    if ci == "normal":
        dfs = np.full(G, np.inf)
    elif df == "domain":
        dfs = _domain_df(design, g, G)
    else:
        dfs = np.full(G, float(design.df))
    if stat == "proportion":
        lo, hi = proportion_interval(est, se, counts, dfs, ci_method, conf,
                                     _logit_se(design, est, se, reps))
    else:
        q = stats.t.ppf(0.5 + conf / 2, dfs)
        lo, hi = est - q * se, est + q * se
    with np.errstate(divide="ignore", invalid="ignore"):
        deff = var / vsrs
    cols = {c: labels[c].to_numpy() for c in labels.columns}
    cols.update(estimate=est, se=se, ci_low=lo, ci_high=hi, df=dfs,
                n=counts.astype(np.int64), deff=deff)
    t = pd.DataFrame(cols)
    method = "taylor" if isinstance(design, Design) else design.kind
    return Estimates(table=t, stat=stat, method=method, ci=ci,
                     ci_method=ci_method if stat == "proportion" else "wald", df_method=df)


def _logit_se(design: Design | ReplicateDesign, est: np.ndarray, se: np.ndarray,
              reps: np.ndarray | None) -> np.ndarray | None:
    """SE of ``logit p``: None for Taylor (the delta method ``se / (p(1-p))`` is exact
    there); for replicates the replicate variance of ``logit p_r``, as R refits the
    logistic model in every replicate -- the delta method where a replicate share is 0
    or 1 (its logit is infinite)."""
    if reps is None:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.log(reps / (1 - reps))
        v = _replicate_variance(design, np.log(est / (1 - est)), lr)
        delta = se / (est * (1 - est))
    return np.where(np.isfinite(lr).all(axis=1), np.sqrt(np.maximum(v, 0.0)), delta)


def _deff_srs(w: np.ndarray, u: np.ndarray, gx: np.ndarray, G: int, total: bool,
              est_n: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Variance under SRS without replacement of the same size (R's ``deff=TRUE``):
    ``s²_w (1/n_d - 1/N̂_d)``, times ``N̂_d²`` for totals (``gx``: the domain, G for
    none)."""
    s2 = np.bincount(gx, weights=w * u**2, minlength=G + 1)[:G]
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = s2 / est_n * counts / (counts - 1.0)
        v = s2 * (1.0 / counts - 1.0 / est_n)
    return v * est_n**2 if total else v


def survey_mean(design: Design | ReplicateDesign, y: Any, by: Any = None, ci: str = "t",
                conf: float = 0.95, df: str = "design") -> Estimates:
    """Weighted mean ``Σ w y / Σ w`` (a ratio of totals), overall or by domain.

    Parameters
    ----------
    design : Design (Taylor) or ReplicateDesign (replicate variance)
    y : (n,) values; NaN = missing (the unit is treated as outside every
        domain, as ``na.rm=TRUE`` in R's survey)
    by : None, an array/Series of domain labels, a DataFrame of several
        (crossed), or a :class:`Domains` made once with :func:`domains`; rows with a
        missing label are in no domain but stay in the design
    ci : ``"t"`` or ``"normal"``
    conf : confidence level
    df : t intervals with the design's df (#PSUs - #strata, ``"design"``) or each
        domain's own (PSUs with a member having a value, minus their strata:
        ``"domain"``, recommended for domain intervals)

    Returns
    -------
    Estimates; linearised variable ``z = d (y - ȳ_d) / N̂_d``.
    """
    return _estimate(design, "mean", y, by=by, ci=ci, conf=conf, df=df)


def survey_proportion(design: Design | ReplicateDesign, y: Any, level: Any = None,
                      by: Any = None, ci: str = "t", conf: float = 0.95,
                      ci_method: str = "logit", df: str = "design") -> Estimates:
    """Weighted share of ``y == level`` (or of a 0/1 ``y``), overall or by domain.

    ``ci_method``: ``"logit"`` (default; R's ``svyciprop(method="logit")``), ``"beta"``
    (Korn-Graubard, R's ``method="beta"``) or ``"wald"`` (estimate ± t·SE); see
    :func:`proportion_interval` (p = 0 or 1: the Korn-Graubard limits).  ``by``,
    ``ci``, ``conf``, ``df``: as :func:`survey_mean`.
    """
    return _estimate(design, "proportion", y, by=by, level=level, ci=ci, conf=conf,
                     ci_method=ci_method, df=df)


def survey_total(design: Design | ReplicateDesign, y: Any, by: Any = None, ci: str = "t",
                 conf: float = 0.95, df: str = "design") -> Estimates:
    """Weighted total ``Σ w d y`` overall or by domain (linearised variable ``d y``)."""
    return _estimate(design, "total", y, by=by, ci=ci, conf=conf, df=df)


def survey_ratio(design: Design | ReplicateDesign, y: Any, x: Any, by: Any = None,
                 ci: str = "t", conf: float = 0.95, df: str = "design") -> Estimates:
    """Ratio ``R = Σ w y / Σ w x``; linearised variable ``z = (y - R x) / X̂``."""
    return _estimate(design, "ratio", y, x=x, by=by, ci=ci, conf=conf, df=df)
