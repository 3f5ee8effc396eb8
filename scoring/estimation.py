"""Person (ability) estimation with known item parameters: EAP, MAP, MLE, WLE.

Everything is vectorised over persons.  Persons are processed in blocks (to
bound memory), never one by one.

* EAP: posterior on a fixed, equally spaced quadrature grid (rectangle rule,
  which for a smooth posterior decaying inside the bounds is as accurate as
  Gauss-Hermite); the likelihood on the grid is one BLAS product per category
  (:func:`scoring.models.log_likelihood`).  Per-person prior means and SDs are
  allowed: they only change the prior weights on the shared grid.
* MAP, MLE, WLE: the estimating function ``f(θ)`` is evaluated on a grid of
  step 0.2 (again BLAS products), the bracket around the best local maximum
  of the objective is chosen, and the root is polished within the bracket by a
  safeguarded Newton (MAP, MLE) or Illinois/regula-falsi (WLE) iteration to
  |Δθ| < 1e-9.  The grid makes the method robust to the non-concave
  likelihoods of 3PL items.

The prior of EAP and MAP defaults to the latent distribution the bank was calibrated
with, ``N(params.latent_mean, params.latent_sd²)`` (PARAMS.csv ``latent_mean``,
``latent_sd``; :func:`scale_prior`): a Rasch or PCM calibration fixes the slopes at 1
and estimates the SD, so the standard normal is the wrong prior there.  An explicit
``prior_mean``/``prior_sd`` overrides it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import models as M
from .params import ItemParams

__all__ = [
    "METHODS",
    "PersonEstimates",
    "eap",
    "estimate",
    "map_estimate",
    "mle",
    "posterior_grid",
    "scale_prior",
    "wle",
]

METHODS = ("eap", "map", "mle", "wle")

_GRID_STEP = 0.2  # grid spacing used to bracket MAP/MLE/WLE roots
_XTOL = 1e-9  # convergence tolerance on the θ step of the root polish
_MAX_ITER = 100
_BLOCK_CELLS = 2_000_000  # persons per block ~ this / (n_items * max_categories)


@dataclass(frozen=True, eq=False)
class PersonEstimates:
    """Ability estimates.

    Attributes
    ----------
    theta : (n_persons,) float
    se : (n_persons,) float; posterior SD for EAP/MAP, 1/sqrt(information) for MLE/WLE
    method : str, one of ``METHODS``
    """

    theta: np.ndarray
    se: np.ndarray
    method: str

    def __len__(self) -> int:
        return int(self.theta.shape[0])


# ------------------------------------------------------------------ helpers


def scale_prior(params: ItemParams, prior_mean: Any = None, prior_sd: Any = None
                ) -> tuple[Any, Any]:
    """The prior to use: ``prior_mean``/``prior_sd`` where given, else the latent
    distribution of the bank's scale (``params.latent_mean``/``latent_sd``, N(0, 1)
    unless the calibration estimated another, as Rasch and PCM calibrations do)."""
    return (params.latent_mean if prior_mean is None else prior_mean,
            params.latent_sd if prior_sd is None else prior_sd)


def _person_prior(prior_mean: Any, prior_sd: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast prior mean/SD (scalar or (n_persons,)) to (n_persons,) arrays."""
    try:
        mu = np.broadcast_to(np.asarray(prior_mean, dtype=float), (n,))
        sd = np.broadcast_to(np.asarray(prior_sd, dtype=float), (n,))
    except ValueError as exc:
        raise ValueError(f"prior_mean and prior_sd must be scalars or shape ({n},)") from exc
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sd)) and np.all(sd > 0)):
        raise ValueError("prior_mean must be finite and prior_sd finite and > 0")
    return mu, sd


def _blocks(params: ItemParams, n_persons: int):
    size = max(256, _BLOCK_CELLS // max(1, params.n_items * params.max_categories))
    for start in range(0, n_persons, size):
        yield slice(start, min(start + size, n_persons))


def _check_bounds(bounds: tuple[float, float]) -> tuple[float, float]:
    lo, hi = float(bounds[0]), float(bounds[1])
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"bounds must be finite with lower < upper, got {bounds}")
    return lo, hi


def posterior_grid(
    params: ItemParams,
    responses: Any,
    prior_mean: Any = None,
    prior_sd: Any = None,
    n_quad: int = 61,
    bounds: tuple[float, float] = (-6.0, 6.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Discretised posterior of θ for every person.

    Parameters
    ----------
    params : ItemParams
    responses : (n_persons, n_items), NaN = not administered
    prior_mean, prior_sd : float or (n_persons,), normal prior per person; None: the
        latent distribution of the scale (``params.latent_mean``/``latent_sd``)
    n_quad : number of equally spaced nodes on ``bounds``

    Returns
    -------
    nodes : (n_quad,) float
    weights : (n_persons, n_quad) float, rows sum to 1
        ``weights[i, q]`` ∝ L_i(θ_q) φ((θ_q - μ_i)/σ_i).
    """
    r = M.check_responses(params, responses)
    prior_mean, prior_sd = scale_prior(params, prior_mean, prior_sd)
    lo, hi = _check_bounds(bounds)
    if n_quad < 3:
        raise ValueError("n_quad must be >= 3")
    nodes = np.linspace(lo, hi, int(n_quad))
    mu, sd = _person_prior(prior_mean, prior_sd, r.shape[0])
    log_p = M.log_probabilities(params, nodes)  # (n_quad, n_items, K), computed once
    weights = np.empty((r.shape[0], nodes.size))
    for blk in _blocks(params, r.shape[0]):
        ind = M.category_indicators(params, r[blk])
        z = (nodes[None, :] - mu[blk, None]) / sd[blk, None]
        log_post = M.sum_over_responses(ind, log_p) - 0.5 * z * z
        M.normalize_log_weights(log_post)
        weights[blk] = log_post
    return nodes, weights


# ---------------------------------------------------------------------- EAP


def eap(
    params: ItemParams,
    responses: Any,
    prior_mean: Any = None,
    prior_sd: Any = None,
    n_quad: int = 61,
    bounds: tuple[float, float] = (-6.0, 6.0),
) -> PersonEstimates:
    """Expected a posteriori estimates with a normal prior.

    Parameters
    ----------
    params : ItemParams
    responses : (n_persons, n_items), NaN = not administered
    prior_mean, prior_sd : float or (n_persons,); None (default): the latent
        distribution of the scale, ``params.latent_mean``/``latent_sd``
    n_quad : number of equally spaced quadrature nodes on ``bounds``.  The grid
        must resolve the posterior: keep the spacing well below the prior SD
        (default spacing 0.2).
    bounds : (lower, upper) of the quadrature grid

    Returns
    -------
    PersonEstimates
        ``theta`` = posterior mean, ``se`` = posterior SD, both (n_persons,).
        Persons with no responses get exactly the prior mean and SD.
    """
    prior_mean, prior_sd = scale_prior(params, prior_mean, prior_sd)
    nodes, w = posterior_grid(params, responses, prior_mean, prior_sd, n_quad, bounds)
    mean = w @ nodes
    # central second moment (not E[θ²] - E[θ]², which cancels badly)
    var = np.einsum("pq,pq->p", w, (nodes[None, :] - mean[:, None]) ** 2)
    r = np.asarray(responses, dtype=float).reshape(w.shape[0], -1)
    empty = np.all(np.isnan(r), axis=1)
    mu, sd = _person_prior(prior_mean, prior_sd, w.shape[0])
    theta = np.where(empty, mu, mean)
    se = np.where(empty, sd, np.sqrt(var))
    return PersonEstimates(theta=theta, se=se, method="eap")


# ----------------------------------------------------- MAP / MLE / WLE core


def _bracketed_root(
    fun: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray | None]],
    lo: np.ndarray,
    hi: np.ndarray,
    flo: np.ndarray,
    fhi: np.ndarray,
) -> np.ndarray:
    """Vectorised root of decreasing-through-zero ``f`` with ``f(lo) > 0 >= f(hi)``.

    ``fun(theta, idx)`` returns ``(f, fprime)`` for the persons ``idx``; with
    ``fprime`` a safeguarded Newton step is taken, otherwise an Illinois
    (modified regula falsi) step.  Steps leaving the bracket become bisections.
    """
    lo, hi, flo, fhi = (np.array(v, dtype=float) for v in (lo, hi, flo, fhi))
    with np.errstate(divide="ignore", invalid="ignore"):
        x = hi - fhi * (hi - lo) / (fhi - flo)  # start at the secant point of the bracket
    x = np.where((x > lo) & (x < hi), x, 0.5 * (lo + hi))
    side = np.zeros(lo.shape, dtype=np.int8)  # +1: last update moved lo, -1: moved hi
    result = x.copy()
    act = np.arange(lo.size)
    for _ in range(_MAX_ITER):
        if act.size == 0:
            break
        xa = x[act]
        f, fp = fun(xa, act)
        pos = f > 0
        lo[act] = np.where(pos, xa, lo[act])
        hi[act] = np.where(pos, hi[act], xa)
        if fp is None:  # Illinois: halve the f of an endpoint retained twice in a row
            s = side[act]
            fhi_a = np.where(pos, np.where(s == 1, 0.5 * fhi[act], fhi[act]), f)
            flo_a = np.where(pos, f, np.where(s == -1, 0.5 * flo[act], flo[act]))
            flo[act], fhi[act] = flo_a, fhi_a
            side[act] = np.where(pos, 1, -1)
            with np.errstate(divide="ignore", invalid="ignore"):
                x_new = hi[act] - fhi_a * (hi[act] - lo[act]) / (fhi_a - flo_a)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                x_new = np.where(fp < 0, xa - f / fp, np.nan)  # Newton only where concave
        # A proposal within _XTOL of the current point is accepted as converged even if
        # it touches the bracket (it then equals an end point up to rounding).
        small = np.isfinite(x_new) & (np.abs(x_new - xa) < _XTOL)
        inside = (x_new > lo[act]) & (x_new < hi[act]) & np.isfinite(x_new)
        x_next = np.where(inside, x_new, 0.5 * (lo[act] + hi[act]))
        done = (f == 0) | small | (hi[act] - lo[act] < _XTOL)
        result[act] = np.where(f == 0, xa, np.where(small, x_new, x_next))
        x[act] = x_next
        act = act[~done]
    return result


class _Problem:
    """Responses of a block of persons, as needed by the estimating functions."""

    def __init__(self, params, r, mu, sd, kind):
        self.params, self.kind = params, kind
        self.mask = ~np.isnan(r)
        self.x = np.where(self.mask, r, 0).astype(np.int64)
        self.maskf = self.mask.astype(float)
        self.ind = M.category_indicators(params, r)
        self.mu, self.sd = mu, sd

    def grid(self, nodes):
        """Objective and estimating function on a grid, each (n_persons, n_nodes)."""
        d = M.log_probability_derivatives(self.params, nodes)
        obj = M.sum_over_responses(self.ind, d.log_p)
        f = M.sum_over_responses(self.ind, d.d1)
        if self.kind == "map":
            z = (nodes[None, :] - self.mu[:, None]) / self.sd[:, None]
            obj = obj - 0.5 * z * z
            f = f - z / self.sd[:, None]
        elif self.kind == "wle":
            info = self.maskf @ d.info.T
            with np.errstate(divide="ignore", invalid="ignore"):
                f = f + (self.maskf @ d.warm_j().T) / (2 * info)
                obj = obj + 0.5 * np.log(info)
        return obj, f

    def at(self, theta, idx):
        """Per-person terms at per-person θ: f, f' (or None) and test information."""
        d = M.log_probability_derivatives(self.params, theta)
        x, m = self.x[idx][..., None], self.maskf[idx]
        g = np.sum(np.take_along_axis(d.d1, x, axis=2)[..., 0] * m, axis=1)
        h = np.sum(np.take_along_axis(d.d2, x, axis=2)[..., 0] * m, axis=1)
        info = np.sum(d.info * m, axis=1)
        if self.kind == "map":
            g = g - (theta - self.mu[idx]) / self.sd[idx] ** 2
            h = h - 1.0 / self.sd[idx] ** 2
        if self.kind == "wle":
            j = np.sum(d.warm_j() * m, axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                return g + j / (2 * info), None, info
        return g, h, info


def _mode_estimates(params, responses, kind, bounds, prior_mean=0.0, prior_sd=1.0):
    r = M.check_responses(params, responses)
    lo, hi = _check_bounds(bounds)
    n = r.shape[0]
    mu, sd = _person_prior(prior_mean, prior_sd, n)
    nodes = np.linspace(lo, hi, int(np.ceil((hi - lo) / _GRID_STEP)) + 1)
    theta, se = np.full(n, np.nan), np.full(n, np.nan)
    empty = np.all(np.isnan(r), axis=1)
    todo = np.flatnonzero(~empty)  # persons without responses are filled in at the end
    for blk in _blocks(params, todo.size):
        rows_blk = todo[blk]
        prob = _Problem(params, r[rows_blk], mu[rows_blk], sd[rows_blk], kind)
        obj, f = prob.grid(nodes)
        # Candidate local maxima: sign changes + -> - of f between nodes q, q+1, and
        # the bounds when f points outwards there.  Keep the best by objective.
        cross = (f[:, :-1] > 0) & (f[:, 1:] <= 0)
        score = np.where(cross, np.maximum(obj[:, :-1], obj[:, 1:]), -np.inf)
        q = np.argmax(score, axis=1)
        best = score[np.arange(score.shape[0]), q]
        s_lo = np.where(f[:, 0] < 0, obj[:, 0], -np.inf)
        s_hi = np.where(f[:, -1] > 0, obj[:, -1], -np.inf)
        choice = np.argmax(np.column_stack([best, s_lo, s_hi]), axis=1)
        none = ~np.isfinite(np.maximum(best, np.maximum(s_lo, s_hi)))
        est = np.where(choice == 1, lo, hi)
        est = np.where(none, nodes[np.argmax(obj, axis=1)], est)  # f == 0 on nodes; rare
        interior = (choice == 0) & ~none
        if np.any(interior):
            rows = np.flatnonzero(interior)

            def fun(t, idx, rows=rows, prob=prob):
                f_, fp_, _ = prob.at(t, rows[idx])
                return f_, fp_

            est[rows] = _bracketed_root(
                fun, nodes[q[rows]], nodes[q[rows] + 1], f[rows, q[rows]], f[rows, q[rows] + 1]
            )
        all_rows = np.arange(est.size)
        _, h, info = prob.at(est, all_rows)
        if kind == "map":
            # observed curvature of the log posterior; expected one if not concave (3PL)
            curv = np.where(-h > 0, -h, info + 1.0 / sd[rows_blk] ** 2)
            est_se = 1.0 / np.sqrt(curv)
        else:
            with np.errstate(divide="ignore"):
                est_se = 1.0 / np.sqrt(info)
        theta[rows_blk], se[rows_blk] = est, est_se
    if kind == "map":
        theta, se = np.where(empty, mu, theta), np.where(empty, sd, se)
    else:
        theta[empty], se[empty] = np.nan, np.nan
    return PersonEstimates(theta=theta, se=se, method=kind)


# ------------------------------------------------------------ public modes


def map_estimate(
    params: ItemParams,
    responses: Any,
    prior_mean: Any = None,
    prior_sd: Any = None,
    bounds: tuple[float, float] = (-6.0, 6.0),
) -> PersonEstimates:
    """Maximum a posteriori (posterior mode) estimates with a normal prior.

    Parameters
    ----------
    params : ItemParams
    responses : (n_persons, n_items), NaN = not administered
    prior_mean, prior_sd : float or (n_persons,); None (default): the latent
        distribution of the scale, ``params.latent_mean``/``latent_sd``
    bounds : search interval; the mode is clamped to it

    Returns
    -------
    PersonEstimates
        ``se`` = 1/sqrt(-d² log posterior / dθ²) at the mode (observed curvature;
        the expected curvature I(θ) + 1/σ² is used if the observed one is not
        positive, which only 3PL items can cause).  Persons with no responses get
        the prior mean and SD.
    """
    prior_mean, prior_sd = scale_prior(params, prior_mean, prior_sd)
    return _mode_estimates(params, responses, "map", bounds, prior_mean, prior_sd)


def mle(
    params: ItemParams,
    responses: Any,
    bounds: tuple[float, float] = (-4.0, 4.0),
) -> PersonEstimates:
    """Maximum likelihood estimates, clamped to ``bounds``.

    The MLE does not exist for all-correct / all-wrong (more generally: extreme)
    patterns, where the likelihood is monotone; those estimates are clamped at
    the bound, as is any estimate whose likelihood maximum lies outside.

    Returns
    -------
    PersonEstimates
        ``se`` = 1/sqrt(I(θ̂)), test information over the items each person
        answered, evaluated at the (possibly clamped) estimate.  Persons with no
        responses get NaN.
    """
    return _mode_estimates(params, responses, "mle", bounds)


def wle(
    params: ItemParams,
    responses: Any,
    bounds: tuple[float, float] = (-6.0, 6.0),
) -> PersonEstimates:
    """Warm's (1989) weighted likelihood estimates.

    Solves ``d log L/dθ + J(θ) / (2 I(θ)) = 0`` with ``I`` the test information
    and ``J = Σ_j Σ_k P'_jk P''_jk / P_jk`` over the items the person answered.
    WLE is finite for extreme patterns under 2PL/Rasch/GRM/GPCM; a root outside
    ``bounds`` (possible with 3PL) is clamped to the bound.  With several roots
    (3PL only) the one maximising ``log L + ½ log I`` is chosen.

    Returns
    -------
    PersonEstimates
        ``se`` = 1/sqrt(I(θ̂)) (the usual asymptotic SE, not Warm's corrected
        one).  Persons with no responses get NaN.
    """
    return _mode_estimates(params, responses, "wle", bounds)


def estimate(
    params: ItemParams,
    responses: Any,
    method: str = "eap",
    **kwargs: Any,
) -> PersonEstimates:
    """Dispatch to :func:`eap`, :func:`map_estimate`, :func:`mle` or :func:`wle`.

    ``kwargs`` are passed on (e.g. ``prior_mean``, ``prior_sd``, ``bounds``).
    """
    funcs = {"eap": eap, "map": map_estimate, "mle": mle, "wle": wle}
    key = method.lower()
    if key not in funcs:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    return funcs[key](params, responses, **kwargs)
