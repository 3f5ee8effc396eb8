"""Item response functions, their derivatives, information and the likelihood.

All functions take an :class:`~scoring.params.ItemParams` bank (which may mix
models) and a 1-D ``theta``.  Items are grouped by model family internally
(dichotomous / GRM / GPCM+PCM) and each group is evaluated in one vectorised
expression: there are no Python loops over items or persons.

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

from .params import DICHOTOMOUS, ItemParams

__all__ = [
    "LogProbabilityDerivatives",
    "as_theta",
    "category_indicators",
    "check_responses",
    "expected_score",
    "item_information",
    "log_likelihood",
    "log_probabilities",
    "log_probability_derivatives",
    "probabilities",
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


def _model_groups(params: ItemParams) -> dict[str, np.ndarray]:
    """Item indices of each model family: 'dich', 'grm', 'gpcm' (gpcm + pcm)."""
    m = params.model
    return {
        "dich": np.flatnonzero(np.isin(m, DICHOTOMOUS)),
        "grm": np.flatnonzero(m == "grm"),
        "gpcm": np.flatnonzero(np.isin(m, ("gpcm", "pcm"))),
    }


# --------------------------------------------------------------------------
# Per-family kernels.  Inputs: theta (n_t,), parameters of the group's items.
# Outputs (n_t, n_g, K_g) arrays; info (n_t, n_g).
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


def _dichotomous(theta, a, b, c, derivs):
    z = a[None, :] * (theta[:, None] - b[None, :])
    shape = z.shape + (2,)
    log_p = np.empty(shape)
    le, lme, e, q = _logistic_parts(z, derivs)
    guessing = bool(np.any(c != 0))
    if guessing:
        with np.errstate(divide="ignore"):
            log_c = np.log(c)  # -inf where c = 0, handled exactly by logaddexp
        log_1mc = np.log1p(-c)
        log_p[..., 0] = lme + log_1mc
        log_p[..., 1] = np.logaddexp(log_c, log_1mc + le)
    else:
        log_p[..., 0] = lme
        log_p[..., 1] = le
    if not derivs:
        return log_p, None, None, None
    a2 = a * a
    eq = e * q  # q = expit(-z), not 1 - e, for relative accuracy
    d1, d2 = np.empty(shape), np.empty(shape)
    d1[..., 0] = -a * e
    d2[..., 0] = -a2 * eq
    if guessing:
        # r = (1-c) e / P1 = (P1 - c) / P1 (1 when c = 0)
        r = np.exp(log_1mc + le - log_p[..., 1])
        d1[..., 1] = a * q * r
        d2[..., 1] = a2 * q * (1 - 2 * e) * r - a2 * (q * r) ** 2
        # 3PL information a² (Q/P) ((P-c)/(1-c))² written as a² e q r (stable)
        info = a2 * eq * r
    else:
        d1[..., 1] = a * q
        d2[..., 1] = d2[..., 0]
        info = a2 * eq
    return log_p, d1, d2, info


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
    # log P_k = log expit(z_k) + log expit(-z_{k+1}) + log(1 - exp(-gap_k))
    le, lme, s, q = _logistic_parts(z, derivs)  # s = P(X >= k): 1, P*_1, ..., 0, ...
    with np.errstate(invalid="ignore"):
        log_p = le[..., :-1] + lme[..., 1:] + np.log(-np.expm1(-gap))[None]
    log_p = np.where(cat_valid[None], log_p, -np.inf)
    if not derivs:
        return log_p, None, None, None
    sq = s * q
    d1 = a[None, :, None] * (1 - s[..., :-1] - s[..., 1:])
    d2 = -(a * a)[None, :, None] * (sq[..., :-1] + sq[..., 1:])
    d1 = np.where(cat_valid[None], d1, 0.0)
    d2 = np.where(cat_valid[None], d2, 0.0)
    p = np.exp(log_p)
    info = np.sum(p * d1 * d1, axis=-1)  # Σ_k P_k [a (1 - P*_k - P*_{k+1})]²
    return log_p, d1, d2, info


def _gpcm(theta, a, b, ncat, derivs):
    n_g, k_max = b.shape[0], int(ncat.max())
    cols = np.arange(k_max)
    cat_valid = cols[None, :] < ncat[:, None]
    steps = np.where(cat_valid[:, 1:], b[:, : k_max - 1], 0.0)
    cum_b = np.concatenate([np.zeros((n_g, 1)), np.cumsum(steps, axis=1)], axis=1)
    # s_k = Σ_{v<=k} a (θ - b_v) = a (k θ - Σ_{v<=k} b_v)
    s = a[None, :, None] * (cols[None, None, :] * theta[:, None, None] - cum_b[None])
    s = np.where(cat_valid[None], s, -np.inf)
    top = s.max(axis=-1, keepdims=True)  # log-sum-exp (category 0 is always finite)
    log_p = s - (top + np.log(np.sum(np.exp(s - top), axis=-1, keepdims=True)))
    if not derivs:
        return log_p, None, None, None
    p = np.exp(log_p)
    mean = np.sum(p * cols, axis=-1, keepdims=True)
    var = np.sum(p * (cols - mean) ** 2, axis=-1)
    d1 = np.where(cat_valid[None], a[None, :, None] * (cols - mean), 0.0)
    d2 = np.where(cat_valid[None], -(a * a)[None, :, None] * var[..., None], 0.0)
    info = (a * a)[None, :] * var  # a² Var(X | θ)
    return log_p, d1, d2, info


def _kernel(family, theta, params, idx, derivs):
    """Evaluate the items ``idx`` (all of one family) at ``theta``."""
    a, b = params.a[idx], params.b[idx]
    if family == "dich":
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
    seen = ~np.isnan(r)
    with np.errstate(invalid="ignore"):
        bad = seen & ((r < 0) | (r >= params.n_categories[None, :]) | (r != np.floor(r)))
    if np.any(bad):
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"invalid response {r[i, j]!r} for person row {i}, item {str(params.item_ids[j])!r} "
            f"({int(params.n_categories[j])} categories; use NaN for not administered); "
            f"{int(bad.sum())} invalid entries in total"
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
