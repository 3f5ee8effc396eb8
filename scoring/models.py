"""Item response functions, their derivatives, information and the likelihood.

All functions take an :class:`~scoring.params.ItemParams` bank (which may mix
models) and a 1-D ``theta``.  Items are grouped by the family of their response
function (``scoring.catalogue``: dichotomous / GRM / GPCM+PCM) and each group is
evaluated in one vectorised expression: there are no Python loops over items or persons.

Each family's response function is written once, on its linear predictors; the
reporting form ``a(θ - b)`` here and the slope-intercept form ``aθ + d`` of calibration
(:func:`slope_intercept_log_probabilities`, with gradients in the item parameters) both
evaluate it.

Numerical stability: probabilities are computed on the log scale
(log-expit via ``log1p(exp(-|z|))``, log-sum-exp) and exponentiated at the end, so nothing
over/underflows for any finite ``a(θ - b)``.

Shapes: ``theta`` (n_theta,), responses (n_persons, n_items) with NaN for
items not administered, per-category arrays (n_theta, n_items, max_categories)
with categories ``k >= n_categories`` padded (probability 0, log -inf).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import catalogue
from .params import ItemParams

__all__ = [
    "InterceptLogProbabilities",
    "LogProbabilityDerivatives",
    "as_theta",
    "category_indicators",
    "check_responses",
    "expected_score",
    "item_information",
    "log_likelihood",
    "log_probabilities",
    "log_probability_derivatives",
    "normalize_log_weights",
    "probabilities",
    "slope_intercept_log_probabilities",
    "sum_over_responses",
    "test_information",
]

# Log-probabilities of real categories are floored here before they are used in
# matrix products (0 * -inf would be NaN).  Reaching it needs |a(θ-b)| ~ 1e6.
_LOG_FLOOR = -1e6


class LogProbabilityDerivatives(NamedTuple):
    """Per-category log-probabilities, their θ-derivatives and item information.

    ``log_p``, ``d1``, ``d2`` have shape (n_theta, n_items, max_categories);
    padded categories hold ``log_p = -inf``, ``d1 = d2 = 0``.  ``info`` is the
    Fisher item information, (n_theta, n_items).
    """

    log_p: np.ndarray  # log P_k(θ)
    d1: np.ndarray  # d/dθ log P_k(θ)
    d2: np.ndarray  # d²/dθ² log P_k(θ)
    info: np.ndarray  # Σ_k P_k d1²

    def warm_j(self) -> np.ndarray:
        """Warm's ``J_j(θ) = Σ_k P'_jk P''_jk / P_jk``, (n_theta, n_items).

        Uses ``P' = P d1`` and ``P'' = P (d2 + d1²)``.
        """
        p = np.exp(self.log_p)
        return np.sum(p * self.d1 * (self.d2 + self.d1**2), axis=-1)


def as_theta(theta: Any) -> np.ndarray:
    """Coerce ``theta`` to a float 1-D array (a scalar becomes shape (1,))."""
    t = np.atleast_1d(np.asarray(theta, dtype=float))
    if t.ndim != 1:
        raise ValueError(f"theta must be a scalar or 1-D, got shape {t.shape}")
    return t


_FAMILY_MODELS = {family: catalogue.names_where(family=family) for family in catalogue.FAMILIES}


def _model_groups(params: ItemParams) -> dict[str, np.ndarray]:
    """Item indices of each item response function family (``catalogue.FAMILIES``)."""
    m = params.model
    return {family: np.flatnonzero(np.isin(m, _FAMILY_MODELS[family]))
            for family in catalogue.FAMILIES}


# --------------------------------------------------------------------------
# The item response functions, once per family, on their linear predictors.
#
# Each takes the predictors of its family (any leading shape, categories on the
# last axis) and returns log-probabilities and the derivatives of log P with
# respect to the predictors.  Two parameterisations feed them: the reporting
# form a(θ - b) (the public functions below: derivatives in θ) and the
# slope-intercept form aθ + d that calibration estimates in
# (:func:`slope_intercept_log_probabilities`: derivatives in a, d, c).
# --------------------------------------------------------------------------


def _logistic_parts(z, need_e):
    """log expit(z), log expit(-z) and optionally expit(z), expit(-z).

    One exp and one log1p for all four (cheaper than separate ``log_expit`` /
    ``expit`` calls, and equally stable): with ``u = exp(-|z|)``,
    ``log expit(±z) = min(±z, 0) - log1p(u)``.
    """
    u = np.exp(-np.abs(z))
    t = np.log1p(u)
    le = np.minimum(z, 0.0) - t
    lme = -np.maximum(z, 0.0) - t
    if not need_e:
        return le, lme, None, None
    inv = 1.0 / (1.0 + u)
    pos = z >= 0
    e = np.where(pos, inv, u * inv)
    q = np.where(pos, u * inv, inv)
    return le, lme, e, q


# What a response function is asked for: log P only, what θ-derivatives need (first
# and second derivatives in the predictor, information), or what parameter gradients
# need (first derivatives by each predictor, and by c).
_LOG, _THETA, _PARAMS = "log", "theta", "params"


class _DichotomousParts(NamedTuple):
    log_p: np.ndarray                 # (..., 2)
    g: np.ndarray | None = None       # d log P_k / dz, (..., 2)
    h: np.ndarray | None = None       # d² log P_k / dz², (..., 2)         (theta)
    info: np.ndarray | None = None    # Fisher information per unit a², (...)  (theta)
    gc: np.ndarray | None = None      # d log P_k / dc, (..., 2)     (params, guessing)


def _dichotomous_irf(z, c, guessing, want):
    """``P(X=1) = c + (1-c) expit(z)`` on the predictor ``z`` (any shape; c broadcasts).

    ``guessing`` False takes c = 0 exactly (the cheaper branch).
    """
    shape = z.shape + (2,)
    log_p = np.empty(shape)
    le, lme, e, q = _logistic_parts(z, want != _LOG)
    if guessing:
        with np.errstate(divide="ignore"):
            log_c = np.log(np.maximum(c, 0.0))  # -inf where c = 0, exact in logaddexp
        log_1mc = np.log1p(-c)
        log_p[..., 0] = lme + log_1mc
        log_p[..., 1] = np.logaddexp(log_c, log_1mc + le)
        if np.any(c < 0):  # only a numerical derivative steps below the bound c = 0
            with np.errstate(invalid="ignore"):
                below = np.log(c + (1 - c) * np.exp(le))
            log_p[..., 1] = np.where(c < 0, below, log_p[..., 1])
    else:
        log_p[..., 0] = lme
        log_p[..., 1] = le
    if want == _LOG:
        return _DichotomousParts(log_p)
    g = np.empty(shape)
    g[..., 0] = -e
    if guessing:
        # r = (1-c) e / P1 = (P1 - c) / P1 (1 when c = 0)
        r = np.exp(log_1mc + le - log_p[..., 1])
        qr = q * r
        g[..., 1] = qr
    else:
        g[..., 1] = q
    if want == _PARAMS:
        gc = None
        if guessing:
            gc = np.empty(shape)
            gc[..., 0] = -1.0 / (1.0 - c)
            gc[..., 1] = np.exp(lme - log_p[..., 1])  # (1 - expit z) / P1
        return _DichotomousParts(log_p, g, gc=gc)
    eq = e * q  # q = expit(-z), not 1 - e, for relative accuracy
    h = np.empty(shape)
    h[..., 0] = -eq
    if guessing:
        h[..., 1] = q * (1 - 2 * e) * r - qr ** 2
        # 3PL information a² (Q/P) ((P-c)/(1-c))² written as a² e q r (stable)
        info = eq * r
    else:
        h[..., 1] = h[..., 0]
        info = eq
    return _DichotomousParts(log_p, g, h, info)


class _GradedParts(NamedTuple):
    log_p: np.ndarray                 # (..., K)
    g: np.ndarray | None = None       # d log P_k / d(shift of all boundaries) (theta)
    h: np.ndarray | None = None       # its second derivative, (..., K)      (theta)
    up: np.ndarray | None = None      # d log P_k / dz_k, (..., K)           (params)
    down: np.ndarray | None = None    # d log P_k / dz_{k+1}, (..., K)       (params)


def _graded_irf(z, gap, cat_valid, want):
    """Samejima's GRM: ``P_k = expit(z_k) - expit(z_{k+1})`` on boundary predictors.

    Parameters
    ----------
    z : (..., K+1) boundary predictors; ``z_0 = +inf``, ``-inf`` past the item's last one
    gap : (..., K), broadcasting: ``z_k - z_{k+1} > 0`` computed without θ (no
        cancellation); ``inf`` where a boundary is infinite
    cat_valid : (..., K) bool, broadcasting: the item has category k; None when every
        item has all K categories
    """
    # log P_k = log expit(z_k) + log expit(-z_{k+1}) + log(1 - exp(-gap_k))
    le, lme, s, q = _logistic_parts(z, want != _LOG)  # s = P(X >= k): 1, P*_1, .., 0, ..
    with np.errstate(invalid="ignore"):
        one_minus = -np.expm1(-gap)
        log_p = le[..., :-1] + lme[..., 1:] + np.log(one_minus)
    if cat_valid is not None:
        log_p = np.where(cat_valid, log_p, -np.inf)
    if want == _LOG:
        return _GradedParts(log_p)
    if want == _PARAMS:
        # W_k / P_k with W = s q and P_k = s_k q_{k+1} (1 - exp(-gap_k)); up + down is
        # 1 - s_k - s_{k+1}; 0 where a boundary is infinite
        with np.errstate(divide="ignore", invalid="ignore"):
            up = q[..., :-1] / (q[..., 1:] * one_minus)
            down = -s[..., 1:] / (s[..., :-1] * one_minus)
        keep_up, keep_down = np.isfinite(up), np.isfinite(down)
        if cat_valid is not None:
            keep_up &= cat_valid
            keep_down &= cat_valid
        up = np.where(keep_up, up, 0.0)
        down = np.where(keep_down, down, 0.0)
        return _GradedParts(log_p, up=up, down=down)
    sq = s * q
    g = 1 - s[..., :-1] - s[..., 1:]
    h = -(sq[..., :-1] + sq[..., 1:])
    if cat_valid is not None:
        g = np.where(cat_valid, g, 0.0)
        h = np.where(cat_valid, h, 0.0)
    return _GradedParts(log_p, g, h)


class _PartialCreditParts(NamedTuple):
    log_p: np.ndarray                 # (..., K)
    p: np.ndarray | None = None       # P_k, (..., K)
    mean: np.ndarray | None = None    # E[X], (..., 1)
    var: np.ndarray | None = None     # Var(X), (...)                        (theta)


def _partial_credit_irf(s, cat_valid, want):
    """Muraki's GPCM (and PCM): ``P_k ∝ exp(s_k)`` on category predictors ``s`` (..., K).

    ``s_k`` is ``Σ_{v<=k}`` of the step predictors; ``cat_valid`` (..., K) marks the
    categories each item has (None: all K).
    """
    cols = np.arange(s.shape[-1])
    if cat_valid is not None:
        s = np.where(cat_valid, s, -np.inf)
    top = s.max(axis=-1, keepdims=True)  # log-sum-exp (category 0 is always finite)
    ex = np.exp(s - top)
    total = np.sum(ex, axis=-1, keepdims=True)
    log_p = s - (top + np.log(total))
    if want == _LOG:
        return _PartialCreditParts(log_p)
    if want == _PARAMS:
        p = ex / total
        return _PartialCreditParts(log_p, p, np.sum(p * cols, axis=-1, keepdims=True))
    p = np.exp(log_p)
    mean = np.sum(p * cols, axis=-1, keepdims=True)
    var = np.sum(p * (cols - mean) ** 2, axis=-1)
    return _PartialCreditParts(log_p, p, mean, var)


# --------------------------------------------------------------------------
# Reporting form a(θ - b): inputs theta (n_t,) and the group's parameters;
# outputs (n_t, n_g, K_g) arrays with θ-derivatives; info (n_t, n_g).
# --------------------------------------------------------------------------


def _dichotomous(theta, a, b, c, derivs):
    z = a[None, :] * (theta[:, None] - b[None, :])
    parts = _dichotomous_irf(z, c, bool(np.any(c != 0)), _THETA if derivs else _LOG)
    if not derivs:
        return parts.log_p, None, None, None
    a_ = a[:, None]
    return parts.log_p, a_ * parts.g, (a * a)[:, None] * parts.h, (a * a) * parts.info


def _grm(theta, a, b, ncat, derivs):
    n_g, k_max = b.shape[0], int(ncat.max())
    cols = np.arange(k_max + 1)
    valid = (cols[None, :] >= 1) & (cols[None, :] < ncat[:, None])  # boundaries 1..K-1
    bb = np.zeros((n_g, k_max + 1))
    bb[:, 1:k_max] = np.where(valid[:, 1:k_max], b[:, : k_max - 1], 0.0)
    z = a[None, :, None] * (theta[:, None, None] - bb[None, :, :])
    z = np.where(valid[None], z, np.where(cols == 0, np.inf, -np.inf)[None, None, :])
    # Gap between consecutive boundaries, a (b_{k+1} - b_k) > 0, θ-free: computing
    # it from b avoids cancellation in z_k - z_{k+1}.
    gap = a[:, None] * (bb[:, 1:] - bb[:, :-1])
    gap = np.where(valid[:, 1:] & valid[:, :-1], gap, np.inf)
    cat_valid = cols[None, :k_max] < ncat[:, None]
    full = None if np.all(ncat == k_max) else cat_valid[None]
    parts = _graded_irf(z, gap[None], full, _THETA if derivs else _LOG)
    if not derivs:
        return parts.log_p, None, None, None
    d1 = a[None, :, None] * parts.g
    d2 = (a * a)[None, :, None] * parts.h
    p = np.exp(parts.log_p)
    info = np.sum(p * d1 * d1, axis=-1)  # Σ_k P_k [a (1 - P*_k - P*_{k+1})]²
    return parts.log_p, d1, d2, info


def _gpcm(theta, a, b, ncat, derivs):
    n_g, k_max = b.shape[0], int(ncat.max())
    cols = np.arange(k_max)
    cat_valid = cols[None, :] < ncat[:, None]
    steps = np.where(cat_valid[:, 1:], b[:, : k_max - 1], 0.0)
    cum_b = np.concatenate([np.zeros((n_g, 1)), np.cumsum(steps, axis=1)], axis=1)
    # s_k = Σ_{v<=k} a (θ - b_v) = a (k θ - Σ_{v<=k} b_v)
    s = a[None, :, None] * (cols[None, None, :] * theta[:, None, None] - cum_b[None])
    full = None if np.all(ncat == k_max) else cat_valid[None]
    parts = _partial_credit_irf(s, full, _THETA if derivs else _LOG)
    if not derivs:
        return parts.log_p, None, None, None
    d1 = np.where(cat_valid[None], a[None, :, None] * (cols - parts.mean), 0.0)
    d2 = np.where(cat_valid[None], -(a * a)[None, :, None] * parts.var[..., None], 0.0)
    info = (a * a)[None, :] * parts.var  # a² Var(X | θ)
    return parts.log_p, d1, d2, info


class InterceptLogProbabilities(NamedTuple):
    """Log-probabilities in slope-intercept form and their parameter gradients.

    ``log_p``: (n_items, n_theta, K), -inf for categories an item lacks.
    ``grad``: (n_items, n_theta, K, K + 1) or None; ``grad[j, q, k, m]`` is
    ``d log P_jk(θ_q) / d X[j, m]`` for the parameter layout of
    :func:`slope_intercept_log_probabilities`; 0 for missing categories and for
    parameters the item does not use.
    """

    log_p: np.ndarray
    grad: np.ndarray | None


def slope_intercept_log_probabilities(family: str, X: np.ndarray, n_categories: np.ndarray,
                                      theta: np.ndarray, *, guessing: bool = False,
                                      gradient: bool = False) -> InterceptLogProbabilities:
    """Log category probabilities of items of one family in slope-intercept form.

    The form calibration estimates in: predictors ``a θ + d_k`` (dichotomous
    ``z = a θ + d``; GRM boundaries ``z_k = a θ + d_k``; GPCM categories
    ``s_k = k a θ + Σ_{v<=k} d_v``), so ``b_k = -d_k / a``.  The same item response
    functions as :func:`log_probabilities`; items first, as calibration holds them.

    Parameters
    ----------
    family : ``"dichotomous"``, ``"grm"`` or ``"gpcm"`` (``catalogue.IRTModel.family``)
    X : (n_items, K + 1) float, rows ``[a, d_1 .. d_{K-1}, c]``; dichotomous items use
        ``d_1`` (and ``c`` when ``guessing``), others ignore ``c`` and unused ``d``.
    n_categories : (n_items,) int, each <= K
    theta : (n_theta,) float
    guessing : the lower asymptote ``c`` is a parameter (3PL): its gradient is filled
    gradient : also return the gradient with respect to the columns of ``X``

    Returns
    -------
    InterceptLogProbabilities
    """
    n, kmax = X.shape[0], X.shape[1] - 1
    q = theta.size
    want = _PARAMS if gradient else _LOG
    a = X[:, 0][:, None]
    k_idx = np.arange(kmax)
    m_idx = np.arange(1, kmax)                                            # intercepts
    if family == "dichotomous":
        z = a * theta + X[:, 1][:, None]
        parts = _dichotomous_irf(z, X[:, kmax][:, None], guessing, want)
        if kmax == 2:
            log_p = parts.log_p
        else:
            log_p = np.full((n, q, kmax), -np.inf)
            log_p[:, :, :2] = parts.log_p
        if not gradient:
            return InterceptLogProbabilities(log_p, None)
        grad = np.zeros((n, q, kmax, kmax + 1))
        grad[:, :, :2, 0] = theta[None, :, None] * parts.g
        grad[:, :, :2, 1] = parts.g
        if guessing:
            grad[:, :, :2, kmax] = parts.gc
        return InterceptLogProbabilities(log_p, grad)
    if np.all(n_categories == kmax):
        cat_valid = None                                                  # all K categories
    else:
        cat_valid = (k_idx[None, :] < n_categories[:, None])[:, None, :]  # (n, 1, K)
    if family == "grm":
        # z_k = a θ + d_k for k = 1..K-1; z_0 = +inf, z_k = -inf for k >= K
        z = np.empty((n, q, kmax + 1))
        z[:, :, 0] = np.inf
        z[:, :, 1:kmax] = a[:, :, None] * theta[None, :, None] + X[:, None, 1:kmax]
        z[:, :, kmax] = -np.inf
        bound_valid = np.arange(kmax + 1)[None, :] < n_categories[:, None]   # (n, K+1)
        z = np.where(bound_valid[:, None, :] | (np.arange(kmax + 1) == 0), z, -np.inf)
        # gap_k = z_k - z_{k+1} = d_k - d_{k+1}: finite for two finite boundaries
        gap = np.full((n, kmax), np.inf)
        pair = (k_idx[None, :] >= 1) & (k_idx[None, :] + 1 < n_categories[:, None])
        gap[:, 1:kmax - 1] = np.where(pair[:, 1:kmax - 1],
                                      X[:, 1:kmax - 1] - X[:, 2:kmax], np.inf)
        parts = _graded_irf(z, gap[:, None, :], cat_valid, want)
        if not gradient:
            return InterceptLogProbabilities(parts.log_p, None)
        grad = np.zeros((n, q, kmax, kmax + 1))
        grad[..., 0] = theta[None, :, None] * (parts.up + parts.down)
        grad[:, :, m_idx, m_idx] = parts.up[:, :, 1:]          # by z_k of category k
        grad[:, :, m_idx - 1, m_idx] = parts.down[:, :, :-1]   # by z_{k+1}
        return InterceptLogProbabilities(parts.log_p, grad)
    # gpcm / pcm
    D = np.zeros((n, kmax))
    D[:, 1:] = np.cumsum(X[:, 1:kmax], axis=1)
    s = k_idx[None, None, :] * a[:, :, None] * theta[None, :, None] + D[:, None, :]
    parts = _partial_credit_irf(s, cat_valid, want)
    if not gradient:
        return InterceptLogProbabilities(parts.log_p, None)
    grad = np.zeros((n, q, kmax, kmax + 1))
    grad[..., 0] = theta[None, :, None] * (k_idx - parts.mean)
    tail = np.cumsum(parts.p[:, :, ::-1], axis=2)[:, :, ::-1]               # P(X >= m)
    # d log P_k / d d_m = [k >= m] - P(X >= m)
    np.subtract(k_idx[:, None] >= m_idx[None, :], tail[:, :, None, 1:], out=grad[..., 1:kmax])
    if cat_valid is not None:
        grad *= cat_valid[..., None]
    return InterceptLogProbabilities(parts.log_p, grad)


def _kernel(family, theta, params, idx, derivs):
    """Evaluate the items ``idx`` (all of one family) at ``theta``."""
    a, b = params.a[idx], params.b[idx]
    if family == "dichotomous":
        return _dichotomous(theta, a, b[:, 0], params.c[idx], derivs)
    ncat = params.n_categories[idx]
    b = b[:, : int(ncat.max()) - 1]
    if family == "grm":
        return _grm(theta, a, b, ncat, derivs)
    return _gpcm(theta, a, b, ncat, derivs)


def _evaluate(params: ItemParams, theta: np.ndarray, derivs: bool):
    """Fill (n_t, n_items, K) arrays group by group."""
    n_t, n_i, k = theta.shape[0], params.n_items, params.max_categories
    if n_i == 0:
        raise ValueError("the item bank is empty")
    groups = _model_groups(params)
    single = [f for f, idx in groups.items() if idx.size == n_i]
    if single:  # one model family (the common case): no scatter into a mixed array
        out = _kernel(single[0], theta, params, slice(None), derivs)
        if out[0].shape[-1] == k:
            return out
    log_p = np.full((n_t, n_i, k), -np.inf)
    d1 = np.zeros((n_t, n_i, k)) if derivs else None
    d2 = np.zeros((n_t, n_i, k)) if derivs else None
    info = np.zeros((n_t, n_i)) if derivs else None
    for family, idx in groups.items():
        if idx.size == 0:
            continue
        if idx[-1] - idx[0] + 1 == idx.size:  # contiguous block: slice, not fancy index
            idx = slice(int(idx[0]), int(idx[-1]) + 1)
        out = _kernel(family, theta, params, idx, derivs)
        kg = out[0].shape[-1]
        log_p[:, idx, :kg] = out[0]
        if derivs:
            d1[:, idx, :kg] = out[1]
            d2[:, idx, :kg] = out[2]
            info[:, idx] = out[3]
    return log_p, d1, d2, info


# --------------------------------------------------------------------------
# Public item-level functions
# --------------------------------------------------------------------------


def log_probabilities(params: ItemParams, theta: Any) -> np.ndarray:
    """Log category probabilities.

    Parameters
    ----------
    params : ItemParams
    theta : (n_theta,) float

    Returns
    -------
    (n_theta, n_items, max_categories) float; -inf for padded categories.
    """
    return _evaluate(params, as_theta(theta), derivs=False)[0]


def probabilities(params: ItemParams, theta: Any) -> np.ndarray:
    """Category probabilities, (n_theta, n_items, max_categories); 0 for padded categories."""
    return np.exp(log_probabilities(params, theta))


def log_probability_derivatives(params: ItemParams, theta: Any) -> LogProbabilityDerivatives:
    """log P_k(θ), its first two θ-derivatives and the item information.

    Used for Newton steps in person estimation (``theta`` may then hold one value
    per person) and for Warm's correction: ``P'_k = P_k d1``, ``P''_k = P_k (d2 + d1²)``.

    Returns
    -------
    LogProbabilityDerivatives
        ``log_p``, ``d1``, ``d2``: (n_theta, n_items, max_categories); ``info``:
        (n_theta, n_items).
    """
    return LogProbabilityDerivatives(*_evaluate(params, as_theta(theta), derivs=True))


def item_information(params: ItemParams, theta: Any) -> np.ndarray:
    """Fisher item information, (n_theta, n_items).

    Closed forms: dichotomous/3PL ``a² (Q/P) ((P-c)/(1-c))²``;
    GRM ``Σ_k P_k a² (1 - P*_k - P*_{k+1})²``; GPCM/PCM ``a² Var(X|θ)``.
    """
    return _evaluate(params, as_theta(theta), derivs=True)[3]


def test_information(params: ItemParams, theta: Any) -> np.ndarray:
    """Test information (sum of item information), (n_theta,)."""
    return item_information(params, theta).sum(axis=1)


# pytest would otherwise try to collect this function from test modules importing it.
test_information.__test__ = False  # type: ignore[attr-defined]


def expected_score(params: ItemParams, theta: Any) -> np.ndarray:
    """Expected item score ``E[X_j | θ] = Σ_k k P_jk(θ)``, (n_theta, n_items)."""
    p = probabilities(params, theta)
    return p @ np.arange(p.shape[-1], dtype=float)


# --------------------------------------------------------------------------
# Responses and likelihood
# --------------------------------------------------------------------------


def check_responses(params: ItemParams, responses: Any) -> np.ndarray:
    """Validate a response matrix and return it as float (n_persons, n_items).

    A 1-D vector is taken as one person.  Entries must be NaN (not administered)
    or integers ``0 <= x < n_categories`` of their item.
    """
    r = np.asarray(responses, dtype=float)
    if r.ndim == 1:
        r = r[None, :]
    if r.ndim != 2 or r.shape[1] != params.n_items:
        raise ValueError(
            f"responses must be (n_persons, {params.n_items}) persons x items, got {r.shape}"
        )
    first, n_bad = None, 0
    step = max(1, 2**18 // max(1, r.shape[1]))         # rows per block (memory: no copies)
    for s0 in range(0, r.shape[0], step):
        blk = r[s0:s0 + step]
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(blk) & ((blk < 0) | (blk >= params.n_categories[None, :])
                                    | (blk != np.floor(blk)))
        if np.any(bad):
            n_bad += int(bad.sum())
            if first is None:
                i, j = np.argwhere(bad)[0]
                first = (s0 + int(i), int(j))
    if first is not None:
        i, j = first
        raise ValueError(
            f"invalid response {float(r[i, j])!r} for person row {i}, "
            f"item {str(params.item_ids[j])!r} "
            f"({int(params.n_categories[j])} categories; use NaN for not administered); "
            f"{n_bad} invalid entries in total"
        )
    return r


def category_indicators(params: ItemParams, responses: Any) -> np.ndarray:
    """One-hot response indicators, (max_categories, n_persons, n_items) float.

    ``out[k, i, j] = 1`` if person i answered item j in category k, else 0
    (all zeros for NaN).  Build once and reuse with :func:`sum_over_responses`.
    """
    r = check_responses(params, responses)
    ks = np.arange(params.max_categories, dtype=float)
    return (r[None, :, :] == ks[:, None, None]).astype(float)


def sum_over_responses(indicators: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``out[i, t] = Σ_j values[t, j, x_ij]`` over the items person i answered.

    One BLAS matrix product per category:
    ``Σ_k indicators[k] @ values[:, :, k].T``.

    Parameters
    ----------
    indicators : (max_categories, n_persons, n_items) from :func:`category_indicators`
    values : (n_theta, n_items, max_categories), e.g. log-probabilities or their
        derivatives; -inf (padded categories) is floored so that 0 * -inf never
        produces NaN.

    Returns
    -------
    (n_persons, n_theta) float
    """
    values = np.maximum(values, _LOG_FLOOR)  # also copies; NaN would propagate loudly
    out = indicators[0] @ values[:, :, 0].T
    for k in range(1, indicators.shape[0]):
        out += indicators[k] @ values[:, :, k].T
    return out


#: weights below exp(-600) ~ 1e-261 of their row's largest are set to 0: arrays holding
#: numbers near float64's smallest normal (2.2e-308) make matrix products produce
#: subnormal numbers, which run about 9x slower (measured in the E-step and the
#: standard errors); 1e-261 is far below float64 resolution against the row sum
_WEIGHT_LOG_FLOOR = -600.0


def normalize_log_weights(log_w: np.ndarray) -> np.ndarray:
    """Turn rows of log-weights (n, q) into weights summing to 1, in place; returns each
    row's log normaliser (log-sum-exp), shape (n,).

    Weights below ``exp(-600)`` times their row's largest become exactly 0 (see
    ``_WEIGHT_LOG_FLOOR``).
    """
    top = log_w.max(axis=1, keepdims=True)
    np.subtract(log_w, top, out=log_w)
    np.copyto(log_w, -np.inf, where=log_w < _WEIGHT_LOG_FLOOR)
    np.exp(log_w, out=log_w)
    total = log_w.sum(axis=1, keepdims=True)
    log_w /= total
    return top[:, 0] + np.log(total[:, 0])


def log_likelihood(params: ItemParams, responses: Any, theta: Any) -> np.ndarray:
    """Log-likelihood of each person's responses at each θ, (n_persons, n_theta).

    NaN responses are skipped (a person with no responses gets 0 everywhere).

    Performance: this is the hot path for EAP and the EM E-step.  The
    item-by-category log-probabilities are computed once on the θ grid
    (n_theta x n_items x K, small) and the persons enter only through one-hot
    indicator matrices: ``LL = Σ_k [X == k] @ log P[:, :, k].T``, i.e. K BLAS
    matrix products of (n_persons x n_items) by (n_items x n_theta).
    100,000 persons x 50 items x 61 nodes takes well under a second.
    For repeated calls with the same responses, build
    :func:`category_indicators` once and call :func:`sum_over_responses`.

    Parameters
    ----------
    params : ItemParams
    responses : (n_persons, n_items) float, categories 0..K-1, NaN = not administered
    theta : (n_theta,) float
    """
    ind = category_indicators(params, responses)
    return sum_over_responses(ind, log_probabilities(params, theta))
