"""Limited-information model fit: M2 / M2* with RMSEA, SRMSR, CFI and TLI.

Maydeu-Olivares & Joe (2006) M2 for dichotomous items and its collapsed form M2* for
ordinal items (Cai & Hansen 2013), as R mirt's ``M2(type = "M2*")`` (its default).  The
statistic compares the first- and second-order moments of the item scores,

    p = ( mean(X_j) for every item j,  mean(X_j X_k) for every pair j < k ),

with the moments the fitted model implies, e = E(p), weighting the residual by the
inverse of their asymptotic covariance with the directions the estimated parameters can
move the moments in projected out:

    M2 = N (p - e)' C (p - e),   C = Xi^-1 - Xi^-1 D (D' Xi^-1 D)^-1 D' Xi^-1,

``Xi`` the covariance matrix of one person's moment vector under the model and ``D`` the
derivatives of ``e`` by the free item parameters (the catalogue says which are free: no
slope for rasch and pcm, one common slope for all 1pl items, the lower asymptote of
3pl items, and the latent SD when every item has a unit slope, because calibrate
estimates it then).  ``df = len(p) - rank(D)``.  For 0/1 items the score moments are
the univariate and bivariate margins P(X_j = 1), P(X_j = 1, X_k = 1), so M2* is M2.

The latent density is the discrete normal one of :mod:`scoring.calibration` (``n_quad``
equally spaced points on [-6, 6], 61 as in mirt), N(``prior_mean``, ``prior_sd``^2).

Null model (for CFI and TLI): items independent, each with its own free category
distribution (estimated by its observed proportions), tested with the same moments and
the same weighting; its tangent has rank J (the moments see an item only through its
mean), so ``df_null = len(p) - J``.  (R mirt subtracts the number of null-model
parameters, sum(K_j - 1), instead: the same for dichotomous items, fewer df for
polytomous ones; Python mirt uses the rank as here.)

RMSEA = sqrt(max(M2 - df, 0) / (df (N - 1))), with its 90 % interval from the
noncentral chi-square; SRMSR is the root mean square of the differences between the
observed and the model-implied correlations of the item scores (all pairs).

Missing data: the statistic needs complete data (every person answers every item).
``missing="error"`` (default) raises a ValueError naming how many persons are
incomplete; ``missing="complete"`` drops incomplete persons first (listwise, as mirt's
``na.rm = TRUE``) and reports the N it used.  There is no pairwise variant.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring import catalogue
from scoring.models import slope_intercept_log_probabilities
from scoring.params import ItemParams

__all__ = ["CHEAP_MAX_ITEMS", "ModelFit", "cheap_enough", "fit_line", "m2"]

#: the CLI computes M2 only for complete data and at most this many items: the
#: moment vector has J (J + 1) / 2 entries and its M x M covariance is factorised
#: (measured on the 2-core development machine, 2PL, N = 5,000: 2-5 s at 60 items,
#: 15 s and 0.8 GB at 100)
CHEAP_MAX_ITEMS = 60


@dataclass(frozen=True)
class ModelFit:
    """Outcome of :func:`m2`.

    Attributes
    ----------
    statistic : ``"M2"`` (all items dichotomous) or ``"M2*"`` (some ordinal)
    m2, df, p : the statistic, its degrees of freedom and chi-square p-value
    rmsea, rmsea_ci : RMSEA and its 90 % confidence interval (lower, upper)
    srmsr : standardised root mean square residual of the item-score correlations
    cfi, tli : comparative fit and Tucker-Lewis indices against the null model
    m2_null, df_null : the null (independence) model's statistic and df
    n_persons, n_items, n_moments : the data used (complete cases)
    n_dropped : incomplete persons dropped (``missing="complete"``), else 0
    """

    statistic: str
    m2: float
    df: int
    p: float
    rmsea: float
    rmsea_ci: tuple[float, float]
    srmsr: float
    cfi: float
    tli: float
    m2_null: float
    df_null: int
    n_persons: int
    n_items: int
    n_moments: int
    n_dropped: int = 0

    def line(self) -> str:
        """One line for a terminal: ``M2 = ... df = ... p = ... RMSEA = ...``."""
        return (f"{self.statistic} = {self.m2:.2f} df = {self.df} p = {self.p:.4g} "
                f"RMSEA = {self.rmsea:.4f} [{self.rmsea_ci[0]:.4f}, {self.rmsea_ci[1]:.4f}] "
                f"SRMSR = {self.srmsr:.4f} CFI = {self.cfi:.4f} TLI = {self.tli:.4f}")


def cheap_enough(responses: np.ndarray, max_items: int = CHEAP_MAX_ITEMS) -> bool:
    """Whether the CLI computes M2 for these responses: complete data and at most
    ``max_items`` items (the rule :data:`CHEAP_MAX_ITEMS` documents)."""
    r = np.asarray(responses, dtype=float)
    return r.ndim == 2 and 2 <= r.shape[1] <= max_items and not np.isnan(r).any()


def _item_moments(params: ItemParams, theta: np.ndarray):
    """Conditional means (Q, J), second moments (Q, J) of the item scores and their
    derivatives by each item's free parameters.

    Returns ``m, s, dm, columns`` with ``dm`` a list (one per item) of (Q, n_free_j)
    arrays and ``columns`` a list of (item, name) labels; a 1pl slope is labelled
    ``(-1, "a")`` on every 1pl item (one common parameter).
    """
    J = params.n_items
    Q = theta.size
    kmax = max(2, int(params.n_categories.max()))
    m = np.zeros((Q, J))
    s = np.zeros((Q, J))
    dm: list[np.ndarray] = [np.zeros((Q, 0))] * J
    labels: list[list[tuple[int, str]]] = [[] for _ in range(J)]
    names = np.asarray(params.model).astype(str)
    for name in sorted(set(names.tolist())):
        entry = catalogue.get(name)
        idx = np.flatnonzero(names == name)
        X = np.zeros((idx.size, kmax + 1))
        X[:, 0] = params.a[idx]
        ncat = params.n_categories[idx].astype(int)
        for loc, j in enumerate(idx):
            nb = ncat[loc] - 1
            X[loc, 1:1 + nb] = -params.a[j] * params.b[j, :nb]
        if entry.guessing:
            X[:, kmax] = params.c[idx]
        out = slope_intercept_log_probabilities(entry.family, X, ncat, theta,
                                                guessing=entry.guessing, gradient=True)
        P = np.exp(out.log_p)                                        # (n, Q, K)
        k = np.arange(kmax, dtype=float)
        m[:, idx] = (P @ k).T
        s[:, idx] = (P @ k ** 2).T
        dmean = np.einsum("nqk,nqkp->nqp", P * k, out.grad)           # (n, Q, K + 1)
        for loc, j in enumerate(idx):
            cols, lab = [], []
            if entry.slope != "fixed":
                cols.append(0)
                lab.append((-1 if entry.slope == "common" else j, "a"))
            for v in range(1, ncat[loc]):
                cols.append(v)
                lab.append((j, f"d{v}"))
            if entry.guessing:
                cols.append(kmax)
                lab.append((j, "c"))
            dm[j] = dmean[loc][:, cols]
            labels[j] = lab
    return m, s, dm, labels


def _pairs(J: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(J, 1)


def _features(m: np.ndarray) -> np.ndarray:
    """(Q, J) conditional means -> (Q, M) conditional moment expectations."""
    left, right = _pairs(m.shape[1])
    return np.concatenate([m, m[:, left] * m[:, right]], axis=1)


def _conditional_covariance(m: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sum_q w_q Cov(g | theta_q) of the moment vector g = (X_j, X_j X_k).

    Given theta the items are independent: two moments covary only through the items
    they share.  Item j adds Var(X_j | theta) times the outer product of
    (1, m_k for k != j) on the moments that contain it; a pair moment's own variance
    needs Var(X_j) Var(X_k) on top.
    """
    Q, J = m.shape
    left, right = _pairs(J)
    M = J + left.size
    var = np.maximum(s - m * m, 0.0)
    out = np.zeros((M, M))
    for j in range(J):
        pairs = np.flatnonzero((left == j) | (right == j))
        others = np.where(left[pairs] == j, right[pairs], left[pairs])
        index = np.concatenate([[j], J + pairs])
        f = np.column_stack([np.ones(Q), m[:, others]])               # (Q, 1 + J - 1)
        out[np.ix_(index, index)] += (f * (w * var[:, j])[:, None]).T @ f
    diag = J + np.arange(left.size)
    out[diag, diag] += w @ (var[:, left] * var[:, right])
    return out


def _projected(residual: np.ndarray, xi: np.ndarray, delta: np.ndarray
               ) -> tuple[float, int]:
    """r' (Xi^-1 - Xi^-1 D (D' Xi^-1 D)^+ D' Xi^-1) r and len(r) - rank(D).

    Whitened by the Cholesky factor of Xi (scaled to unit diagonal first): with
    z = L^-1 r and B = L^-1 D the form is |z|^2 - |proj_B z|^2.
    """
    scale = np.sqrt(np.diag(xi))
    if np.any(~np.isfinite(scale)) or np.any(scale <= 0):
        raise ValueError("a moment has zero model variance (an item with a category "
                         "probability of 0 or 1 everywhere); M2 is not defined")
    xs = xi / np.outer(scale, scale)
    try:
        L = np.linalg.cholesky(xs)
    except np.linalg.LinAlgError:
        raise ValueError("the model covariance of the moments is singular; M2 is not "
                         "defined for these parameters") from None
    from scipy.linalg import solve_triangular  # start-up cost: scipy.linalg on demand
    z = solve_triangular(L, residual / scale, lower=True)
    rank = 0
    if delta.shape[1]:
        B = solve_triangular(L, delta / scale[:, None], lower=True)
        norms = np.linalg.norm(B, axis=0)
        B = B[:, norms > 0] / norms[norms > 0]
        U, sv, _ = np.linalg.svd(B, full_matrices=False)
        rank = int(np.count_nonzero(sv > sv[0] * 1e-8)) if sv.size else 0
        U = U[:, :rank]
        z = z - U @ (U.T @ z)
    return float(z @ z), residual.size - rank


def _rmsea(stat: float, df: int, n: int) -> float:
    return float(np.sqrt(max(stat - df, 0.0) / (df * (n - 1)))) if df > 0 else np.nan


def _rmsea_interval(stat: float, df: int, n: int, level: float = 0.90
                    ) -> tuple[float, float]:
    """Confidence interval of RMSEA by inverting the noncentral chi-square in its
    noncentrality (Browne & Cudeck 1993), as mirt's RMSEA.CI."""
    if df <= 0 or not np.isfinite(stat):
        return (np.nan, np.nan)
    # start-up cost: scipy.stats and scipy.optimize only when a fit is computed
    from scipy import optimize, stats
    alpha = (1.0 - level) / 2.0

    def ncp_for(target: float) -> float:
        # noncentrality lam with P(chi2_df(lam) > stat) = target (0 when even lam = 0 fails)
        if stats.chi2.sf(stat, df) >= target:
            return 0.0
        hi = max(stat, df, 1.0)
        while stats.ncx2.sf(stat, df, hi) < target:
            hi *= 2.0
        return float(optimize.brentq(lambda lam: stats.ncx2.sf(stat, df, lam) - target,
                                     0.0, hi, xtol=1e-10))

    def to_rmsea(lam: float) -> float:
        return float(np.sqrt(lam / (df * (n - 1))))

    return (to_rmsea(ncp_for(alpha)), to_rmsea(ncp_for(1.0 - alpha)))


def _correlations(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / np.outer(sd, sd)


def m2(params: ItemParams, responses: np.ndarray, *, prior_mean: float = 0.0,
       prior_sd: float = 1.0, n_quad: int = 61, latent_sd_estimated: bool | None = None,
       missing: str = "error") -> ModelFit:
    """Limited-information fit of calibrated items to complete response data.

    Parameters
    ----------
    params : ItemParams
        One item per column of ``responses`` (same order), every parameter taken as
        estimated from these data (anchored items are not told apart).
    responses : (n_persons, n_items) float
        Categories ``0..K_j - 1``; NaN = missing (see ``missing``).
    prior_mean, prior_sd : the latent distribution of the calibration (its reference
        group: ``result.group_means[0]``, ``result.group_sds[0]``).
    n_quad : points of the equally spaced grid on [-6, 6].
    latent_sd_estimated : project out the latent SD as a free parameter; default
        (None): when every item has a fixed unit slope (rasch, pcm), as calibrate does.
    missing : ``"error"`` (default) or ``"complete"`` (drop incomplete persons).

    Returns
    -------
    ModelFit
    """
    r = np.asarray(responses, dtype=float)
    J = params.n_items
    if r.ndim != 2 or r.shape[1] != J:
        raise ValueError(f"responses must be persons x {J} items, got shape {r.shape}")
    if J < 2:
        raise ValueError("M2 needs at least 2 items")
    if missing not in ("error", "complete"):
        raise ValueError(f"missing must be 'error' or 'complete', got {missing!r}")
    incomplete = np.isnan(r).any(axis=1)
    n_dropped = int(incomplete.sum())
    if n_dropped:
        if missing == "error":
            raise ValueError(f"M2 needs complete data: {n_dropped} of {r.shape[0]} persons "
                             "have missing responses (missing='complete' drops them)")
        r = r[~incomplete]
    N = r.shape[0]
    if N < 2:
        raise ValueError("M2 needs at least 2 persons with complete responses")
    ncat = params.n_categories.astype(int)
    bad = (r < 0) | (r != np.round(r)) | (r >= ncat[None, :])
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"item {params.item_ids[j]}: response {r[i, j]:g} is not one of "
                         f"its categories 0..{ncat[j] - 1}")
    if not prior_sd > 0:
        raise ValueError("prior_sd must be positive")
    if latent_sd_estimated is None:
        latent_sd_estimated = all(catalogue.get(str(n)).unit_slope for n in params.model)

    if n_quad < 5:
        raise ValueError("n_quad must be at least 5")
    theta = np.linspace(-6.0, 6.0, n_quad)        # calibrate's grid (quadrature_grid)
    u = (theta - prior_mean) / prior_sd
    w = np.exp(-0.5 * u * u)
    w /= w.sum()

    m, s, dm, labels = _item_moments(params, theta)
    F = _features(m)                                                 # (Q, M)
    e = w @ F
    M = e.size
    left, right = _pairs(J)
    p_obs = np.concatenate([r.mean(axis=0), ((r.T @ r) / N)[left, right]])
    xi = _conditional_covariance(m, s, w) + (F * w[:, None]).T @ F - np.outer(e, e)

    # derivatives of e by the free parameters (the common 1pl slope summed)
    columns: dict[tuple[int, str], np.ndarray] = {}
    for j in range(J):
        for col, lab in enumerate(labels[j]):
            d = np.zeros((theta.size, M))
            d[:, j] = dm[j][:, col]
            pj = np.flatnonzero((left == j) | (right == j))
            others = np.where(left[pj] == j, right[pj], left[pj])
            d[:, J + pj] = dm[j][:, col][:, None] * m[:, others]
            columns[lab] = columns.get(lab, 0.0) + w @ d
    if latent_sd_estimated:
        dlogw = u * u / prior_sd
        dlogw -= w @ dlogw
        columns[(-1, "sd")] = (w * dlogw) @ F
    delta = np.column_stack(list(columns.values())) if columns else np.zeros((M, 0))

    stat, df = _projected(p_obs - e, xi, delta)
    if df <= 0:
        raise ValueError(f"M2 has no degrees of freedom: {M} moments for "
                         f"{delta.shape[1]} free parameters")

    # null model: independent items with their observed score distributions
    mean0 = r.mean(axis=0)
    second0 = (r * r).mean(axis=0)
    one = np.ones(1)
    xi0 = _conditional_covariance(mean0[None, :], second0[None, :], one)
    delta0 = np.zeros((M, J))
    delta0[np.arange(J), np.arange(J)] = 1.0
    delta0[J + np.arange(left.size), left] = mean0[right]
    delta0[J + np.arange(left.size), right] = mean0[left]
    e0 = _features(mean0[None, :])[0]
    stat0, df0 = _projected(p_obs - e0, xi0, delta0)
    stat *= N
    stat0 *= N

    # SRMSR: observed against model-implied item-score correlations
    cov_obs = np.cov(r, rowvar=False, bias=True)
    E1 = w @ m
    E2 = (m * w[:, None]).T @ m
    E2[np.diag_indices(J)] = w @ s
    cov_mod = E2 - np.outer(E1, E1)
    resid = (_correlations(cov_obs) - _correlations(cov_mod))[left, right]
    srmsr = float(np.sqrt(np.nanmean(resid ** 2)))

    # start-up cost: scipy.stats only when a fit is computed
    from scipy import stats
    rmsea = _rmsea(stat, df, N)
    num = max(stat - df, 0.0)
    den = max(stat0 - df0, stat - df, 0.0)
    cfi = 1.0 if den <= 0 else float(np.clip(1.0 - num / den, 0.0, 1.0))
    ratio0 = stat0 / df0
    tli = 1.0 if ratio0 <= 1 else float((ratio0 - stat / df) / (ratio0 - 1.0))
    dich = all(catalogue.get(str(n)).dichotomous for n in params.model) or bool(
        np.all(ncat == 2))
    return ModelFit(statistic="M2" if dich else "M2*", m2=float(stat), df=int(df),
                    p=float(stats.chi2.sf(stat, df)), rmsea=rmsea,
                    rmsea_ci=_rmsea_interval(stat, df, N), srmsr=srmsr, cfi=cfi, tli=tli,
                    m2_null=float(stat0), df_null=int(df0), n_persons=N, n_items=J,
                    n_moments=M, n_dropped=n_dropped)


def fit_line(params: ItemParams, responses: np.ndarray, prior_mean: float = 0.0,
             prior_sd: float = 1.0, max_items: int = CHEAP_MAX_ITEMS) -> str | None:
    """The one-line M2 summary ``learningcity calibrate`` prints, or None when it is
    not computed: incomplete data, more than ``max_items`` items (:func:`cheap_enough`),
    or a statistic that is not defined (too few df, a degenerate item)."""
    if not cheap_enough(responses, max_items):
        return None
    try:
        return m2(params, responses, prior_mean=prior_mean, prior_sd=prior_sd).line()
    except ValueError:
        return None
