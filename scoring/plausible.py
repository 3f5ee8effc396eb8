"""Plausible values, latent regression, reliability and test-information curves.

Plausible values (PVs) are random draws from each person's posterior of θ, so
that group statistics computed from them (means, SDs, percentages above a cut)
are unbiased, unlike those computed from shrunken EAPs or noisy MLEs, provided
the prior is conditioned on the variables those statistics are broken down by.
Under one common prior, group differences are shrunk towards the overall mean.
Pass ``covariates`` (the conditioning model, :func:`fit_latent_regression`:
θ ~ N(x'β, σ²), fitted with survey weights), or ``groups`` with known
``group_means``/``group_sds`` or let :func:`fit_group_prior` estimate them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import models as M
from .estimation import PersonEstimates, _person_prior, posterior_grid, scale_prior
from .params import ItemParams

__all__ = [
    "GroupPrior",
    "InformationCurve",
    "LatentRegression",
    "fit_group_prior",
    "fit_latent_regression",
    "marginal_reliability",
    "plausible_values",
    "test_information_curve",
]


@dataclass(frozen=True, eq=False)
class GroupPrior:
    """Normal prior of θ per group, ``θ | group g ~ N(means[g], sds[g]²)``.

    Attributes
    ----------
    labels : (n_groups,) group labels (sorted, as by ``np.unique``)
    means, sds : (n_groups,) float
    n_iter : EM iterations used (0 if given, not estimated)
    converged : bool
    """

    labels: np.ndarray
    means: np.ndarray
    sds: np.ndarray
    n_iter: int = 0
    converged: bool = True

    def person_prior(self, groups: Any) -> tuple[np.ndarray, np.ndarray]:
        """Prior mean and SD of each person, each (n_persons,), from group labels."""
        g = np.asarray(groups)
        pos = np.searchsorted(self.labels, g)
        pos = np.clip(pos, 0, len(self.labels) - 1)
        unknown = self.labels[pos] != g
        if np.any(unknown):
            raise ValueError(f"groups without a prior: {sorted(set(g[unknown].tolist()))[:5]}")
        return self.means[pos], self.sds[pos]


@dataclass(frozen=True, eq=False)
class InformationCurve:
    """Test information and standard error along θ.

    Attributes
    ----------
    theta : (n_theta,)
    information : (n_theta,) test information
    se : (n_theta,) ``1 / sqrt(information)``
    item_information : (n_theta, n_items)
    """

    theta: np.ndarray
    information: np.ndarray
    se: np.ndarray
    item_information: np.ndarray


# ------------------------------------------------- latent regression (conditioning)


def _design(X: Any, n: int, intercept: bool) -> tuple[np.ndarray, tuple[str, ...]]:
    """The (n, p) float design and its column names from an array or a DataFrame.

    A DataFrame gives its column names; an array's columns are named ``x1 .. xp``.
    ``intercept`` puts a column of ones named ``(Intercept)`` first.
    """
    columns = getattr(X, "columns", None)
    if columns is not None:  # a DataFrame
        names = tuple(str(c) for c in columns)
        blocks = []
        for c, name in zip(columns, names):
            try:
                blocks.append(np.asarray(X[c], dtype=float))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"covariate column {name!r} is not numeric") from exc
        x = np.column_stack(blocks) if blocks else np.empty((len(X), 0))
    else:
        x = np.asarray(X, dtype=float)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            raise ValueError(f"covariates must be 2-D (n_persons, n_columns), got {x.shape}")
        names = tuple(f"x{j + 1}" for j in range(x.shape[1]))
    if x.shape[0] != n:
        raise ValueError(f"covariates must have {n} rows (one per person), got {x.shape[0]}")
    if len(set(names)) != len(names):
        raise ValueError(f"covariate column names repeat: {sorted(names)}")
    for j, name in enumerate(names):
        bad = ~np.isfinite(x[:, j])
        if bad.any():
            raise ValueError(f"covariate column {name!r} has {int(bad.sum())} missing or "
                             f"non-finite values (first at row {int(np.argmax(bad))}): "
                             "code missing as its own dummy")
    if intercept:
        if "(Intercept)" in names:
            raise ValueError("covariate column name '(Intercept)' is reserved")
        x = np.column_stack([np.ones(n), x])
        names = ("(Intercept)", *names)
    return x, names


def _check_weights(weights: Any, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {w.shape}")
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise ValueError(f"weights must be finite and >= 0: {int(bad.sum())} are not "
                         f"(first at person {int(np.argmax(bad))})")
    if not w.sum() > 0:
        raise ValueError("weights sum to 0")
    return w


def _independent_columns(x: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Mask of the columns kept: a column that is (numerically) a linear combination of
    the kept columns before it is aliased and left out, as R's ``lm`` gives it an NA
    coefficient.  Gram-Schmidt in column order, each column re-orthogonalised twice."""
    keep = np.zeros(x.shape[1], dtype=bool)
    basis: list[np.ndarray] = []
    for j in range(x.shape[1]):
        norm = np.linalg.norm(x[:, j])
        if norm == 0:
            continue
        res = x[:, j] / norm
        for _ in range(2):
            for q in basis:
                res = res - (q @ res) * q
        size = np.linalg.norm(res)
        if size > tol:
            basis.append(res / size)
            keep[j] = True
    return keep


@dataclass(frozen=True)
class _EMFit:
    beta: np.ndarray
    sds: np.ndarray
    loglik: float
    n_iter: int
    converged: bool


def _e_step(log_lik: np.ndarray, nodes: np.ndarray, mu: np.ndarray, sd: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior means, variances and marginal log-likelihoods on the grid under
    ``N(mu_i, sd_i²)`` priors, each (n_persons,)."""
    z = (nodes[None, :] - mu[:, None]) / sd[:, None]
    post = log_lik - 0.5 * z * z
    log_norm = M.normalize_log_weights(post)
    m = post @ nodes
    v = np.einsum("pq,pq->p", post, (nodes[None, :] - m[:, None]) ** 2)
    h = nodes[1] - nodes[0]
    ll = log_norm + np.log(h / sd) - 0.5 * np.log(2 * np.pi)
    return m, v, ll


def _latent_em(log_lik: np.ndarray, nodes: np.ndarray, x: np.ndarray, w: np.ndarray,
               sd_group: np.ndarray, tol: float, max_iter: int) -> _EMFit:
    """EM for ``θ_i ~ N(x_i'β, σ_{s(i)}²)`` with the likelihood on the grid fixed.

    E-step: each person's posterior mean m_i and variance v_i on the grid.  M-step
    (one conditional-maximisation cycle): β by weighted least squares of m on x with
    weights w_i / σ_{s(i)}², then σ_s² = Σ_{s(i)=s} w_i (v_i + (m_i - x_i'β)²) / Σ w_i.
    This maximises the weighted marginal likelihood Σ w_i log ∫ L_i(θ) φ(θ) dθ of the
    grid (rectangle rule), which never decreases from one iteration to the next.
    ``x`` must have full column rank on the persons with w_i > 0.
    """
    n_sd = int(sd_group.max()) + 1
    w_sd = np.bincount(sd_group, weights=w, minlength=n_sd)
    beta, sds = np.zeros(x.shape[1]), np.ones(n_sd)
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 (read after the loop)
        m, v, _ll = _e_step(log_lik, nodes, x @ beta, sds[sd_group])
        prec = w / sds[sd_group] ** 2
        xw = x * prec[:, None]
        new_beta = np.linalg.solve(x.T @ xw, xw.T @ m)
        resid2 = v + (m - x @ new_beta) ** 2
        new_sds = np.sqrt(np.bincount(sd_group, weights=w * resid2, minlength=n_sd) / w_sd)
        change = max(np.max(np.abs(new_beta - beta), initial=0.0),
                     np.max(np.abs(new_sds - sds)))
        beta, sds = new_beta, new_sds
        if change < tol:
            converged = True
            break
    _m, _v, ll = _e_step(log_lik, nodes, x @ beta, sds[sd_group])
    return _EMFit(beta=beta, sds=sds, loglik=float(w @ ll), n_iter=it, converged=converged)


@dataclass(frozen=True, eq=False)
class LatentRegression:
    """The conditioning model ``θ_i ~ N(x_i'β, σ²)``, item parameters fixed.

    Attributes
    ----------
    columns : names of the design's columns (``(Intercept)`` first when added)
    beta : (n_columns,) coefficients; NaN for an aliased (dropped) column
    sigma : residual SD
    dropped : names of the aliased columns: linear combinations of columns before them
        (on the persons with a positive weight), left out of the fit
    intercept : whether ``(Intercept)`` was added to the covariates
    loglik : weighted marginal log-likelihood at the estimate (quadrature grid)
    n_iter : EM iterations used
    converged : bool
    """

    columns: tuple[str, ...]
    beta: np.ndarray
    sigma: float
    dropped: tuple[str, ...]
    intercept: bool
    loglik: float
    n_iter: int
    converged: bool

    def person_prior(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Prior mean ``x_i'β`` and SD σ of each person, each (n_persons,).

        ``X`` has the covariates of the fit: a DataFrame with (at least) the fitted
        column names, or an array with the same columns in the same order.
        """
        covariates = self.columns[1:] if self.intercept else self.columns
        if getattr(X, "columns", None) is not None:
            missing = [c for c in covariates if c not in set(map(str, X.columns))]
            if missing:
                raise ValueError(f"covariate column {missing[0]!r} of the fit is missing")
            X = X.rename(columns=str)[list(covariates)]
        n = len(X) if getattr(X, "columns", None) is not None else np.asarray(X).shape[0]
        x, names = _design(X, n, self.intercept)
        if len(names) != len(self.columns):
            raise ValueError(f"covariates must have {len(covariates)} columns, "
                             f"got {len(names) - int(self.intercept)}")
        kept = ~np.isnan(self.beta)
        mu = x[:, kept] @ self.beta[kept]
        return mu, np.full(n, self.sigma)


def fit_latent_regression(
    params: ItemParams,
    responses: Any,
    X: Any,
    weights: Any = None,
    intercept: bool = True,
    n_quad: int = 61,
    bounds: tuple[float, float] = (-6.0, 6.0),
    tol: float = 1e-6,
    max_iter: int = 500,
) -> LatentRegression:
    """Fit the latent regression of θ on covariates by EM, item parameters fixed.

    This is the conditioning model of NAEP and PISA (Mislevy 1991; Mislevy, Beaton,
    Kaplan & Sheehan 1992): ``θ_i = x_i'β + ε_i``, ``ε_i ~ N(0, σ²)``.  Plausible values
    drawn under this prior keep the relations between θ and every covariate in the
    model; drawn under one common prior they shrink group differences towards the
    overall mean by about the test's unreliability.  With survey ``weights`` the
    weighted (pseudo-)likelihood Σ w_i log L_i is maximised, so β and σ estimate the
    population values; only the weights' relative sizes matter.

    EM (see :func:`_latent_em`): E-step the quadrature posterior of every person,
    M-step weighted least squares of the posterior means on X and σ² the weighted mean
    of posterior variance + squared residual.  The likelihood on the grid is computed
    once, so each iteration costs O(n_persons x (n_quad + n_columns²)).

    Parameters
    ----------
    params : ItemParams
    responses : (n_persons, n_items), NaN = not administered
    X : (n_persons, n_columns) array or DataFrame of numeric covariates (dummy-code
        categories, with missing as its own dummy).  Columns that are linear
        combinations of earlier ones (including the intercept) are dropped and named
        in ``dropped``.
    weights : None or (n_persons,) survey weights, finite and >= 0
    intercept : add a column of ones in front of X
    n_quad, bounds : quadrature grid
    tol : convergence when no coefficient or σ changes by more than ``tol``

    Returns
    -------
    LatentRegression
    """
    r = M.check_responses(params, responses)
    n = r.shape[0]
    w = _check_weights(weights, n)
    x, names = _design(X, n, intercept)
    if x.shape[1] == 0:
        raise ValueError("the latent regression needs at least one column (or intercept)")
    kept = _independent_columns(x[w > 0])
    nodes = np.linspace(float(bounds[0]), float(bounds[1]), int(n_quad))
    log_lik = M.log_likelihood(params, r, nodes)  # (n_persons, n_quad), computed once
    fit = _latent_em(log_lik, nodes, x[:, kept], w, np.zeros(n, dtype=int), tol, max_iter)
    beta = np.full(x.shape[1], np.nan)
    beta[kept] = fit.beta
    return LatentRegression(
        columns=names, beta=beta, sigma=float(fit.sds[0]),
        dropped=tuple(name for name, k in zip(names, kept) if not k), intercept=intercept,
        loglik=fit.loglik, n_iter=fit.n_iter, converged=fit.converged)


# ------------------------------------------------------------ group priors


def fit_group_prior(
    params: ItemParams,
    responses: Any,
    groups: Any,
    n_quad: int = 61,
    bounds: tuple[float, float] = (-6.0, 6.0),
    common_sd: bool = True,
    tol: float = 1e-6,
    max_iter: int = 500,
    weights: Any = None,
) -> GroupPrior:
    """Estimate group means (and SDs) of θ by EM, item parameters fixed.

    This is the latent regression (:func:`fit_latent_regression`) of θ on group
    dummies without intercept, ``θ_i = μ_{g(i)} + ε_i``, ``ε_i ~ N(0, σ²)``
    (``common_sd=True``, the usual conditioning model) or with one σ per group
    (``common_sd=False``), fitted by the same EM: ``μ_g`` is the (weighted) mean
    of the posterior means in group g and ``σ²`` the (weighted) mean of
    ``posterior variance + (posterior mean - μ_g)²``.

    Parameters
    ----------
    params : ItemParams
    responses : (n_persons, n_items), NaN = not administered
    groups : (n_persons,) group labels (any sortable type)
    weights : None or (n_persons,) survey weights

    Returns
    -------
    GroupPrior
    """
    r = M.check_responses(params, responses)
    n = r.shape[0]
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have shape ({n},), got {g.shape}")
    w = _check_weights(weights, n)
    labels, gi = np.unique(g, return_inverse=True)
    empty = np.bincount(gi, weights=w, minlength=labels.size) == 0
    if empty.any():
        raise ValueError(f"groups with zero total weight: {labels[empty].tolist()[:5]}")
    dummies = (gi[:, None] == np.arange(labels.size)[None, :]).astype(float)
    nodes = np.linspace(float(bounds[0]), float(bounds[1]), int(n_quad))
    log_lik = M.log_likelihood(params, r, nodes)
    sd_group = np.zeros(n, dtype=int) if common_sd else gi
    fit = _latent_em(log_lik, nodes, dummies, w, sd_group, tol, max_iter)
    sds = np.full(labels.size, fit.sds[0]) if common_sd else fit.sds
    return GroupPrior(labels=labels, means=fit.beta, sds=sds, n_iter=fit.n_iter,
                      converged=fit.converged)


# -------------------------------------------------------- plausible values


def plausible_values(
    params: ItemParams,
    responses: Any,
    n_draws: int = 5,
    prior_mean: Any = None,
    prior_sd: Any = None,
    groups: Any = None,
    rng: Any = None,
    n_quad: int = 61,
    group_means: Mapping[Any, float] | None = None,
    group_sds: Mapping[Any, float] | None = None,
    bounds: tuple[float, float] = (-6.0, 6.0),
    covariates: Any = None,
    weights: Any = None,
) -> np.ndarray:
    """Draw plausible values from each person's posterior.

    The posterior is discretised on ``n_quad`` equally spaced nodes (spacing h);
    a node is drawn from the posterior weights (inverse CDF) and a uniform
    jitter in ``[-h/2, h/2]`` is added, i.e. the draw is exact for the
    histogram density of the discretised posterior.  The jitter adds h²/12 to
    the posterior variance (0.0033 with the default grid).

    Parameters
    ----------
    params : ItemParams
    responses : (n_persons, n_items), NaN = not administered
    n_draws : number of PVs per person
    prior_mean, prior_sd : float or (n_persons,); used when neither ``groups`` nor
        ``covariates`` is given; None (default): the latent distribution of the scale,
        ``params.latent_mean``/``latent_sd``
    groups : None or (n_persons,) group labels.  The prior of each person is
        ``N(mean_g, sd_g²)`` of their group.  If ``group_means`` is None these
        are estimated by :func:`fit_group_prior` (latent regression on group
        dummies, common residual SD); otherwise ``group_means`` (and
        ``group_sds``, default ``prior_sd`` for every group) are used as given.
    covariates : None or (n_persons, n_columns) array or DataFrame: the prior of
        each person is ``N(x_i'β, σ²)`` of the latent regression fitted by
        :func:`fit_latent_regression` (with an intercept).
    weights : None or (n_persons,) survey weights for fitting the group or
        covariate prior (only with ``groups`` estimated or ``covariates``)
    rng : None, int seed or numpy Generator
    n_quad, bounds : quadrature grid

    Returns
    -------
    (n_persons, n_draws) float
    """
    r = M.check_responses(params, responses)
    n = r.shape[0]
    rng = np.random.default_rng(rng)
    prior_mean, prior_sd = scale_prior(params, prior_mean, prior_sd)
    if groups is not None and covariates is not None:
        raise ValueError("give groups or covariates, not both (put the groups' dummies "
                         "into the covariates)")
    if weights is not None and covariates is None and (groups is None
                                                      or group_means is not None):
        raise ValueError("weights are used to fit the prior: give covariates, or groups "
                         "without group_means")
    if covariates is not None:
        regression = fit_latent_regression(params, r, covariates, weights=weights,
                                           n_quad=n_quad, bounds=bounds)
        mu, sd = regression.person_prior(covariates)
    elif groups is None:
        mu, sd = _person_prior(prior_mean, prior_sd, n)
    else:
        if group_means is None:
            prior = fit_group_prior(params, r, groups, n_quad=n_quad, bounds=bounds,
                                    weights=weights)
        else:
            labels = np.array(sorted(group_means))
            if group_sds is None:
                sds = np.full(labels.size, float(prior_sd))
            else:
                sds = np.array([float(group_sds[k]) for k in labels.tolist()])
            means = np.array([float(group_means[k]) for k in labels.tolist()])
            prior = GroupPrior(labels=labels, means=means, sds=sds)
        mu, sd = prior.person_prior(groups)
    nodes, w = posterior_grid(params, r, mu, sd, n_quad, bounds)
    h = nodes[1] - nodes[0]
    cdf = np.cumsum(w, axis=1)
    cdf /= cdf[:, -1:]
    # Row-wise inverse CDF with one searchsorted: shift row i by i so that the
    # flattened CDFs are increasing overall.
    offsets = np.arange(n, dtype=float)[:, None]
    u = rng.random((n, int(n_draws)))
    flat = (cdf + offsets).ravel()
    pos = np.searchsorted(flat, (u + offsets).ravel(), side="right").reshape(n, -1)
    node = np.clip(pos - np.arange(n)[:, None] * nodes.size, 0, nodes.size - 1)
    return nodes[node] + (rng.random(node.shape) - 0.5) * h


# --------------------------------------------------------------- reliability


def marginal_reliability(
    params: ItemParams,
    responses: Any = None,
    prior_mean: float | None = None,
    prior_sd: float | None = None,
    n_quad: int = 61,
    estimates: PersonEstimates | None = None,
    bounds: tuple[float, float] = (-6.0, 6.0),
) -> float:
    """Reliability of θ scores in one of three ways.

    * ``estimates`` given (empirical reliability):
      EAP/MAP: ``var(θ̂) / (var(θ̂) + mean(se²))``;
      MLE/WLE: ``1 - mean(se²) / var(θ̂)``.  Non-finite entries are skipped.
    * ``responses`` given: ``1 - mean(posterior variance) / prior variance``
      with the EAP posterior under ``N(prior_mean, prior_sd²)``; persons with no
      responses are skipped.
    * neither (model-based, for the full bank):
      ``σ² / (σ² + E[1/I(θ)])`` with the expectation over the prior, computed
      on the quadrature grid (as ``marginal_rxx`` in R's mirt).

    ``prior_mean``/``prior_sd`` default to the latent distribution of the scale
    (``params.latent_mean``/``latent_sd``).

    Returns
    -------
    float
    """
    if estimates is not None and responses is not None:
        raise ValueError("give either responses or estimates, not both")
    if estimates is not None:
        ok = np.isfinite(estimates.theta) & np.isfinite(estimates.se)
        t, se2 = estimates.theta[ok], estimates.se[ok] ** 2
        if t.size < 2:
            raise ValueError("need at least two finite estimates")
        var = np.var(t)
        if estimates.method in ("eap", "map"):
            return float(var / (var + np.mean(se2)))
        return float(1.0 - np.mean(se2) / var)
    prior_mean, prior_sd = scale_prior(params, prior_mean, prior_sd)
    prior_var = float(prior_sd) ** 2
    if responses is not None:
        r = M.check_responses(params, responses)
        seen = ~np.all(np.isnan(r), axis=1)
        nodes, w = posterior_grid(params, r[seen], prior_mean, prior_sd, n_quad, bounds)
        m = w @ nodes
        v = np.einsum("pq,pq->p", w, (nodes[None, :] - m[:, None]) ** 2)
        return float(1.0 - np.mean(v) / prior_var)
    nodes = np.linspace(bounds[0], bounds[1], int(n_quad))
    weights = np.exp(-0.5 * ((nodes - prior_mean) / prior_sd) ** 2)
    weights /= weights.sum()
    expected_error = np.sum(weights / M.test_information(params, nodes))
    return float(prior_var / (prior_var + expected_error))


def test_information_curve(
    params: ItemParams,
    theta: Any = None,
) -> InformationCurve:
    """Test information and SE curves, default ``theta = np.linspace(-4, 4, 81)``."""
    t = np.linspace(-4.0, 4.0, 81) if theta is None else M.as_theta(theta)
    item_info = M.item_information(params, t)
    info = item_info.sum(axis=1)
    with np.errstate(divide="ignore"):
        se = 1.0 / np.sqrt(info)
    return InformationCurve(theta=t, information=info, se=se, item_information=item_info)


test_information_curve.__test__ = False  # type: ignore[attr-defined]
