"""Plausible values, reliability and test-information curves.

Plausible values (PVs) are random draws from each person's posterior of θ, so
that group statistics computed from them (means, SDs, percentages above a cut)
are unbiased, unlike those computed from shrunken EAPs or noisy MLEs.  When
persons belong to groups (districts, cohorts), the prior should be conditioned
on the group (otherwise group differences are shrunk towards the overall mean):
pass ``groups`` with known ``group_means``/``group_sds`` or let
:func:`fit_group_prior` estimate them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import models as M
from .estimation import PersonEstimates, _person_prior, posterior_grid
from .params import ItemParams

__all__ = [
    "GroupPrior",
    "InformationCurve",
    "fit_group_prior",
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
) -> GroupPrior:
    """Estimate group means (and SDs) of θ by EM, item parameters fixed.

    This is the latent regression of θ on group dummies,
    ``θ_i = μ_{g(i)} + ε_i``, ``ε_i ~ N(0, σ²)`` (``common_sd=True``, the usual
    conditioning model) or with one σ per group (``common_sd=False``).  The
    E-step uses the quadrature posterior of every person; the M-step sets
    ``μ_g`` to the mean of the posterior means in group g and ``σ²`` to the
    mean of ``posterior variance + (posterior mean - μ_g)²``.  The likelihood on
    the grid is computed once, so each iteration costs O(n_persons x n_quad).

    Parameters
    ----------
    params : ItemParams
    responses : (n_persons, n_items), NaN = not administered
    groups : (n_persons,) group labels (any sortable type)

    Returns
    -------
    GroupPrior
    """
    r = M.check_responses(params, responses)
    g = np.asarray(groups)
    if g.shape != (r.shape[0],):
        raise ValueError(f"groups must have shape ({r.shape[0]},), got {g.shape}")
    labels, gi = np.unique(g, return_inverse=True)
    n_g = labels.size
    nodes = np.linspace(float(bounds[0]), float(bounds[1]), int(n_quad))
    log_lik = M.log_likelihood(params, r, nodes)  # (n_persons, n_quad), computed once
    counts = np.bincount(gi, minlength=n_g).astype(float)
    means, sds = np.zeros(n_g), np.ones(n_g)
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 (read after the loop)
        z = (nodes[None, :] - means[gi, None]) / sds[gi, None]
        log_post = log_lik - 0.5 * z * z
        log_post -= log_post.max(axis=1, keepdims=True)
        w = np.exp(log_post)
        w /= w.sum(axis=1, keepdims=True)
        m = w @ nodes
        v = np.einsum("pq,pq->p", w, (nodes[None, :] - m[:, None]) ** 2)
        new_means = np.bincount(gi, weights=m, minlength=n_g) / counts
        ss = np.bincount(gi, weights=v + (m - new_means[gi]) ** 2, minlength=n_g)
        if common_sd:
            new_sds = np.full(n_g, np.sqrt(ss.sum() / counts.sum()))
        else:
            new_sds = np.sqrt(ss / counts)
        change = max(np.max(np.abs(new_means - means)), np.max(np.abs(new_sds - sds)))
        means, sds = new_means, new_sds
        if change < tol:
            converged = True
            break
    return GroupPrior(labels=labels, means=means, sds=sds, n_iter=it, converged=converged)


# -------------------------------------------------------- plausible values


def plausible_values(
    params: ItemParams,
    responses: Any,
    n_draws: int = 5,
    prior_mean: Any = 0.0,
    prior_sd: Any = 1.0,
    groups: Any = None,
    rng: Any = None,
    n_quad: int = 61,
    group_means: Mapping[Any, float] | None = None,
    group_sds: Mapping[Any, float] | None = None,
    bounds: tuple[float, float] = (-6.0, 6.0),
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
    prior_mean, prior_sd : float or (n_persons,); used when ``groups`` is None
    groups : None or (n_persons,) group labels.  The prior of each person is
        ``N(mean_g, sd_g²)`` of their group.  If ``group_means`` is None these
        are estimated by :func:`fit_group_prior` (latent regression on group
        dummies, common residual SD); otherwise ``group_means`` (and
        ``group_sds``, default ``prior_sd`` for every group) are used as given.
    rng : None, int seed or numpy Generator
    n_quad, bounds : quadrature grid

    Returns
    -------
    (n_persons, n_draws) float
    """
    r = M.check_responses(params, responses)
    n = r.shape[0]
    rng = np.random.default_rng(rng)
    if groups is None:
        mu, sd = _person_prior(prior_mean, prior_sd, n)
    else:
        if group_means is None:
            prior = fit_group_prior(params, r, groups, n_quad=n_quad, bounds=bounds)
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
    prior_mean: float = 0.0,
    prior_sd: float = 1.0,
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
