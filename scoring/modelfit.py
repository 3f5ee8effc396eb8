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

M2* has few df with polytomous items (J (J + 1) / 2 moments for K_j parameters per
item: four 4-category items have none).  ``statistic="C2"`` (Cai & Monroe 2014, mirt's
``type = "C2"``) keeps the univariate category margins P(X_j = c), c = 1..K_j-1, with
the bivariate cross-products; the computation is the same with these univariate
functions.

The latent density is the discrete normal one of :mod:`scoring.calibration` (``n_quad``
equally spaced points on [-6, 6], 61 as in mirt), N(``prior_mean``, ``prior_sd``^2).

Null model (for CFI and TLI): items independent, each with its own free category
distribution (estimated by its observed proportions), tested with the same moments and
the same weighting; ``df_null = len(p) - rank`` of its tangent: J for M2* (the
moments see an item only through its mean), sum(K_j - 1) for C2.  (For M2* R mirt
subtracts sum(K_j - 1) instead: the same for dichotomous items, fewer df for
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

import math
from dataclasses import dataclass

import numpy as np

from scoring import catalogue
from scoring.fit import chi2_sf
from scoring.models import slope_intercept_log_probabilities
from scoring.params import ItemParams

__all__ = ["CHEAP_MAX_ITEMS", "ModelFit", "cheap_enough", "cheap_m2", "fit_line", "m2", "ncx2_sf"]

#: the CLI computes M2 only for complete data and at most this many items: the
#: moment vector has J (J + 1) / 2 entries and its M x M covariance is factorised
#: (measured on the shared 2-core development machine under load, 2PL, N = 5,000:
#: 3-7 s at 60 items, 15-20 s and 0.8 GB at 100)
CHEAP_MAX_ITEMS = 60
#: moments from which the whitening uses scipy's triangular solve (below, numpy's
#: general solve on the Cholesky factor: no scipy import for short tests)
_SCIPY_SOLVE_FROM = 400


@dataclass(frozen=True)
class ModelFit:
    """Outcome of :func:`m2`.

    Attributes
    ----------
    statistic : ``"M2"`` (all items dichotomous), ``"M2*"`` or ``"C2"`` (some ordinal)
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


def _item_probabilities(params: ItemParams, theta: np.ndarray):
    """Category probabilities of every item on the grid and their derivatives by the
    item's free parameters (slope-intercept form, as calibrate estimates).

    Returns ``P, dP, labels``: per item ``P[j]`` (Q, K_j), ``dP[j]`` (Q, K_j, n_free_j)
    and ``labels[j]`` naming the free parameters ``(item, name)``; a 1pl slope is
    labelled ``(-1, "a")`` on every 1pl item (one common parameter).
    """
    J = params.n_items
    kmax = max(2, int(params.n_categories.max()))
    P: list[np.ndarray] = [np.zeros(0)] * J
    dP: list[np.ndarray] = [np.zeros(0)] * J
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
        prob = np.exp(out.log_p)                                     # (n, Q, K)
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
            k = ncat[loc]
            P[j] = prob[loc, :, :k]
            dP[j] = prob[loc, :, :k, None] * out.grad[loc][:, :k, cols]
            labels[j] = lab
    return P, dP, labels


def _univariate_table(n_categories: int, statistic: str) -> np.ndarray:
    """(K, n_u) values of an item's univariate moment functions by category: the score
    (M2*) or the indicators of categories 1..K-1 (C2); for 0/1 items both are x."""
    if statistic == "C2":
        return np.eye(n_categories)[:, 1:]
    return np.arange(n_categories, dtype=float)[:, None]


class _Layout:
    """Where each moment sits: the univariate moments item by item, then the pairs."""

    def __init__(self, tables: list[np.ndarray]):
        J = len(tables)
        sizes = np.array([u.shape[1] for u in tables])
        self.tables = tables
        self.u_start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        self.u_size = sizes
        self.n_uni = int(sizes.sum())
        self.left, self.right = np.triu_indices(J, 1)
        self.n_moments = self.n_uni + self.left.size

    def of_item(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Moment indices involving item j (its univariate ones, then its pairs), the
        pair positions and the other item of each pair."""
        pairs = np.flatnonzero((self.left == j) | (self.right == j))
        others = np.where(self.left[pairs] == j, self.right[pairs], self.left[pairs])
        uni = self.u_start[j] + np.arange(self.u_size[j])
        return np.concatenate([uni, self.n_uni + pairs]), pairs, others


def _features(P: list[np.ndarray], lay: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """Conditional expectations of the moment functions (Q, M) and item means (Q, J)."""
    m = np.column_stack([Pj @ np.arange(Pj.shape[1]) for Pj in P])
    uni = [Pj @ U for Pj, U in zip(P, lay.tables, strict=True)]
    return np.concatenate(uni + [m[:, lay.left] * m[:, lay.right]], axis=1), m


def _conditional_covariance(P: list[np.ndarray], m: np.ndarray, w: np.ndarray,
                            lay: _Layout) -> np.ndarray:
    """sum_q w_q Cov(g | theta_q) of the moment functions g.

    Given theta the items are independent, so two moments covary only through the items
    they share.  Item j's part on the moments containing it is the covariance of
    h = (its univariate functions, X_j repeated for each of its pairs) scaled by
    f = (1 .., m_k of the pair's other item); a pair's own variance needs
    Var(X_j) Var(X_k) on top.
    """
    Q = m.shape[0]
    out = np.zeros((lay.n_moments, lay.n_moments))
    var = np.zeros_like(m)
    for j, Pj in enumerate(P):
        index, pairs, others = lay.of_item(j)
        K = Pj.shape[1]
        score = np.arange(K, dtype=float)
        H = np.column_stack([lay.tables[j], np.repeat(score[:, None], pairs.size, axis=1)])
        f = np.column_stack([np.ones((Q, lay.u_size[j])), m[:, others]])   # (Q, n_idx)
        block = np.zeros((index.size, index.size))
        for c in range(K):
            Z = f * H[c]
            block += (Z * (w * Pj[:, c])[:, None]).T @ Z
        Zm = f * (Pj @ H)
        block -= (Zm * w[:, None]).T @ Zm
        out[np.ix_(index, index)] += block
        var[:, j] = Pj @ score ** 2 - m[:, j] ** 2
    diag = lay.n_uni + np.arange(lay.left.size)
    out[diag, diag] += w @ (var[:, lay.left] * var[:, lay.right])
    return out


def _derivative_columns(dP: list[np.ndarray], labels, m: np.ndarray, w: np.ndarray,
                        lay: _Layout) -> dict:
    """d E(g) by every free parameter (the common 1pl slope's columns summed)."""
    columns: dict[tuple[int, str], np.ndarray] = {}
    for j, dPj in enumerate(dP):
        index, pairs, others = lay.of_item(j)
        score = np.arange(dPj.shape[1], dtype=float)
        du = np.einsum("qkp,ku->qup", dPj, lay.tables[j])            # (Q, n_u, nf)
        dm = np.einsum("qkp,k->qp", dPj, score)                      # (Q, nf)
        for col, lab in enumerate(labels[j]):
            d = np.zeros(lay.n_moments)
            d[index[:lay.u_size[j]]] = w @ du[:, :, col]
            d[lay.n_uni + pairs] = w @ (dm[:, col][:, None] * m[:, others])
            columns[lab] = columns.get(lab, 0.0) + d
    return columns


def _observed(r: np.ndarray, lay: _Layout) -> np.ndarray:
    """The sample moments: mean of each univariate function, mean(X_j X_k)."""
    ri = r.astype(int)
    uni = [lay.tables[j][ri[:, j]].mean(axis=0) for j in range(r.shape[1])]
    return np.concatenate(uni + [((r.T @ r) / r.shape[0])[lay.left, lay.right]])


def _projected(residual: np.ndarray, xi: np.ndarray, delta: np.ndarray
               ) -> tuple[float, int]:
    """r' (Xi^-1 - Xi^-1 D (D' Xi^-1 D)^+ D' Xi^-1) r and len(r) - rank(D).

    Whitened by the Cholesky factor of Xi (scaled to unit diagonal first): with
    z = L^-1 r and B = L^-1 D the form is |z|^2 - |proj_B z|^2.  A moment with zero
    variance (the null model of an item with an unused category) carries no test and
    is left out when its residual is 0 too; with a residual it makes the form infinite.
    """
    scale = np.sqrt(np.maximum(np.diag(xi), 0.0))
    if not np.all(np.isfinite(scale)):
        raise ValueError("the model covariance of the moments is not finite")
    active = scale > 1e-12 * max(float(scale.max()), 1e-300)
    if not active.all():
        if np.any(np.abs(residual[~active]) > 1e-12):
            return np.inf, int(active.sum())
        residual, xi, delta = residual[active], xi[np.ix_(active, active)], delta[active]
        scale = scale[active]
    xs = xi / np.outer(scale, scale)
    try:
        L = np.linalg.cholesky(xs)
    except np.linalg.LinAlgError:
        raise ValueError("the model covariance of the moments is singular; M2 is not "
                         "defined for these parameters") from None
    rhs = np.column_stack([residual / scale, delta / scale[:, None]])
    if residual.size >= _SCIPY_SOLVE_FROM:
        # start-up cost: scipy.linalg (0.1-0.3 s) only where the factorisation dwarfs it
        from scipy.linalg import solve_triangular
        white = solve_triangular(L, rhs, lower=True)
    else:
        white = np.linalg.solve(L, rhs)
    z = white[:, 0]
    rank = 0
    if delta.shape[1]:
        B = white[:, 1:]
        norms = np.linalg.norm(B, axis=0)
        B = B[:, norms > 0] / norms[norms > 0]
        U, sv, _ = np.linalg.svd(B, full_matrices=False)
        rank = int(np.count_nonzero(sv > sv[0] * 1e-8)) if sv.size else 0
        U = U[:, :rank]
        z = z - U @ (U.T @ z)
    return float(z @ z), residual.size - rank


def _rmsea(stat: float, df: int, n: int) -> float:
    return float(np.sqrt(max(stat - df, 0.0) / (df * (n - 1)))) if df > 0 else np.nan


def ncx2_sf(x: float, df: int, nc: float) -> float:
    """Upper tail P(X >= x) of the noncentral chi-square with whole-number ``df`` and
    noncentrality ``nc``: the Poisson(nc / 2) mixture of central chi-squares with
    df + 2i degrees of freedom, their tails by the recurrence
    Q(df + 2) = Q(df) + exp(-h) h^(df/2) / Gamma(df/2 + 1), h = x / 2, from
    :func:`scoring.fit.chi2_sf`.  numpy only (scipy.stats would cost every
    ``learningcity calibrate`` 0.15-0.4 s of start-up); agrees with
    ``scipy.stats.ncx2.sf`` to 1e-10 (tests)."""
    if x <= 0:
        return 1.0
    h = x / 2.0
    mean = nc / 2.0
    top = int(np.ceil(mean + 12.0 * np.sqrt(mean) + 40.0))
    i = np.arange(top + 1)
    log_i = np.log(np.maximum(i, 1))
    log_fact = np.cumsum(np.where(i > 0, log_i, 0.0))                     # log i!
    pois = (np.exp(i * np.log(mean) - mean - log_fact) if mean > 0
            else (i == 0).astype(float))
    half = df / 2.0
    # log of exp(-h) h^(half + m) / Gamma(half + m + 1), m = 0, 1, ...
    log_gamma = math.lgamma(half + 1.0) + np.concatenate(
        [[0.0], np.cumsum(np.log(half + 1.0 + i[:-1]))])
    step = np.exp(-h + (half + i) * np.log(h) - log_gamma)
    tails = float(chi2_sf(x, df)) + np.concatenate([[0.0], np.cumsum(step[:-1])])
    return float(np.clip(pois @ np.minimum(tails, 1.0), 0.0, 1.0))


def _rmsea_interval(stat: float, df: int, n: int, level: float = 0.90
                    ) -> tuple[float, float]:
    """Confidence interval of RMSEA by inverting the noncentral chi-square in its
    noncentrality (Browne & Cudeck 1993), as mirt's RMSEA.CI; bisection, since the
    tail grows with the noncentrality."""
    if df <= 0 or not np.isfinite(stat):
        return (np.nan, np.nan)
    alpha = (1.0 - level) / 2.0

    def ncp_for(target: float) -> float:
        # noncentrality lam with P(chi2_df(lam) > stat) = target (0 when even lam = 0 fails)
        if float(chi2_sf(stat, df)) >= target:
            return 0.0
        lo, hi = 0.0, max(stat, df, 1.0)
        while ncx2_sf(stat, df, hi) < target:
            lo, hi = hi, 2.0 * hi
        while hi - lo > 1e-10 * max(hi, 1.0):
            mid = 0.5 * (lo + hi)
            if ncx2_sf(stat, df, mid) < target:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    def to_rmsea(lam: float) -> float:
        return float(np.sqrt(lam / (df * (n - 1))))

    return (to_rmsea(ncp_for(alpha)), to_rmsea(ncp_for(1.0 - alpha)))


def _correlations(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / np.outer(sd, sd)


def m2(params: ItemParams, responses: np.ndarray, *, prior_mean: float = 0.0,
       prior_sd: float = 1.0, n_quad: int = 61, latent_sd_estimated: bool | None = None,
       missing: str = "error", statistic: str = "M2*") -> ModelFit:
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
    statistic : ``"M2*"`` (default, mirt's default), ``"C2"`` (univariate category
        margins, bivariate cross-products: more df for short polytomous tests) or
        ``"M2"`` (dichotomous items only); all three coincide for 0/1 items.

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
    dich = bool(np.all(ncat == 2))
    if statistic not in ("M2", "M2*", "C2"):
        raise ValueError(f"statistic must be 'M2', 'M2*' or 'C2', got {statistic!r}")
    if statistic == "M2" and not dich:
        raise ValueError("statistic='M2' (full bivariate margins) is for dichotomous "
                         "items only; use 'M2*' or 'C2' with polytomous items")
    kind = "M2*" if statistic == "M2" else statistic
    name = "M2" if dich else kind            # all three are M2 for 0/1 items

    if n_quad < 5:
        raise ValueError("n_quad must be at least 5")
    theta = np.linspace(-6.0, 6.0, n_quad)        # calibrate's grid (quadrature_grid)
    u = (theta - prior_mean) / prior_sd
    w = np.exp(-0.5 * u * u)
    w /= w.sum()

    lay = _Layout([_univariate_table(int(k), kind) for k in ncat])
    P, dP, labels = _item_probabilities(params, theta)
    F, m = _features(P, lay)                                         # (Q, M), (Q, J)
    e = w @ F
    M = e.size
    left, right = lay.left, lay.right
    p_obs = _observed(r, lay)
    xi = _conditional_covariance(P, m, w, lay) + (F * w[:, None]).T @ F - np.outer(e, e)
    columns = _derivative_columns(dP, labels, m, w, lay)
    if latent_sd_estimated:
        dlogw = u * u / prior_sd
        dlogw -= w @ dlogw
        columns[(-1, "sd")] = (w * dlogw) @ F
    delta = np.column_stack(list(columns.values())) if columns else np.zeros((M, 0))

    stat, df = _projected(p_obs - e, xi, delta)
    if df <= 0:
        raise ValueError(f"{name} has no degrees of freedom: {M} moments for "
                         f"{delta.shape[1]} free parameters"
                         + (" (statistic='C2' keeps the univariate category margins)"
                            if kind == "M2*" and not dich else ""))

    # null model: independent items, each with its observed category distribution
    # (parameters p_jc, c >= 1); its tangent: d/dp_jc of the moments
    P0 = [np.bincount(r[:, j].astype(int), minlength=int(ncat[j]))[None, :] / N
          for j in range(J)]
    F0, m0 = _features(P0, lay)
    one = np.ones(1)
    xi0 = _conditional_covariance(P0, m0, one, lay)
    cols0 = []
    for j in range(J):
        index, pairs, others = lay.of_item(j)
        U = lay.tables[j]
        for c in range(1, int(ncat[j])):
            d = np.zeros(M)
            d[index[:lay.u_size[j]]] = U[c] - U[0]
            d[lay.n_uni + pairs] = c * m0[0, others]
            cols0.append(d)
    stat0, df0 = _projected(p_obs - F0[0], xi0, np.column_stack(cols0))
    stat *= N
    stat0 *= N

    # SRMSR: observed against model-implied item-score correlations
    cov_obs = np.cov(r, rowvar=False, bias=True)
    E1 = w @ m
    E2 = (m * w[:, None]).T @ m
    E2[np.diag_indices(J)] = w @ np.column_stack(
        [Pj @ np.arange(Pj.shape[1]) ** 2 for Pj in P])
    cov_mod = E2 - np.outer(E1, E1)
    resid = (_correlations(cov_obs) - _correlations(cov_mod))[left, right]
    srmsr = float(np.sqrt(np.nanmean(resid ** 2)))

    rmsea = _rmsea(stat, df, N)
    num = max(stat - df, 0.0)
    den = max(stat0 - df0, stat - df, 0.0)
    cfi = 1.0 if den <= 0 else float(np.clip(1.0 - num / den, 0.0, 1.0))
    ratio0 = stat0 / df0
    tli = 1.0 if ratio0 <= 1 else float((ratio0 - stat / df) / (ratio0 - 1.0))
    return ModelFit(statistic=name, m2=float(stat), df=int(df),
                    p=float(chi2_sf(stat, df)), rmsea=rmsea,
                    rmsea_ci=_rmsea_interval(stat, df, N), srmsr=srmsr, cfi=cfi, tli=tli,
                    m2_null=float(stat0), df_null=int(df0), n_persons=N, n_items=J,
                    n_moments=M, n_dropped=n_dropped)


def cheap_m2(params: ItemParams, responses: np.ndarray, prior_mean: float = 0.0,
             prior_sd: float = 1.0, max_items: int = CHEAP_MAX_ITEMS) -> ModelFit | None:
    """The limited-information fit ``learningcity calibrate`` reports, or None when it is
    not computed: incomplete data, more than ``max_items`` items (:func:`cheap_enough`),
    or a statistic that is not defined (too few df, a degenerate item).  M2*, or C2
    when M2* has no degrees of freedom."""
    if not cheap_enough(responses, max_items):
        return None
    for statistic in ("M2*", "C2"):   # C2 when M2* has no df (short polytomous tests)
        try:
            return m2(params, responses, prior_mean=prior_mean, prior_sd=prior_sd,
                      statistic=statistic)
        except ValueError:
            continue
    return None


def fit_line(params: ItemParams, responses: np.ndarray, prior_mean: float = 0.0,
             prior_sd: float = 1.0, max_items: int = CHEAP_MAX_ITEMS) -> str | None:
    """:func:`cheap_m2` as the one line the command prints (None when not computed)."""
    fit = cheap_m2(params, responses, prior_mean, prior_sd, max_items)
    return None if fit is None else fit.line()
    for statistic in ("M2*", "C2"):   # C2 when M2* has no df (short polytomous tests)
        try:
            return m2(params, responses, prior_mean=prior_mean, prior_sd=prior_sd,
                      statistic=statistic).line()
        except ValueError:
            continue
    return None
