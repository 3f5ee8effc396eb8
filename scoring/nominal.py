"""Bock's nominal response model (NRM) for distractor analysis of single-choice items.

Model
-----
Item ``j`` has options ``0..K_j-1``; the probability of choosing option ``k`` is

    P(k | θ) = exp(a_k θ + c_k) / Σ_m exp(a_m θ + c_m)

with the identification ``a_r = c_r = 0`` for one *reference* option ``r`` per item: the
first option anybody chose (option 0 unless nobody chose it).  Only the contrasts
``a_k - a_m`` and ``c_k - c_m`` are identified, so any other reference is a subtraction:
``a_k' = a_k - a_r'``.  This is the parameterisation of Python ``mirt`` 1.2
(``NominalResponseModel``: ``slopes`` and ``intercepts`` with category 0 zero) whenever
option 0 was chosen.  R mirt's ``nominal`` writes ``a_k = a1 * ak_k`` and ``c_k = d_k``
with ``ak_0 = 0, ak_{K-1} = K - 1`` (``d_0 = 0``): ``a1 = a_{K-1} / (K-1)``,
``ak_k = (K - 1) a_k / a_{K-1}``.  The slope of an option relative to the key,
``a_k - a_key``, is what distractor analysis reads: positive means that as ability rises
the option gains on the key.

Options with no chooser have no finite maximum-likelihood intercept (``c_k -> -inf``); they
are left out of the model (probability 0, parameters NaN) and reported in
``NominalResult.never_chosen`` rather than stopping the fit.

Calibration
-----------
Marginal maximum likelihood by Bock-Aitkin EM on ``n_quad`` equally spaced points of
``theta_range`` with discrete normal weights ``N(latent_mean, latent_sd^2)`` (default
N(0, 1); pass the mean and SD of a calibrated scale to work on it).  E-step: one-hot
responses times log-probabilities (persons x quadrature), expected counts per item, option
and point.  M-step: Newton on each item's multinomial-logit complete-data log-likelihood
(concave), all items at once, with step halving.  SQUAREM (Varadhan & Roland 2008)
extrapolation of the EM map, kept only when it does not lower the objective.

Slope prior: a normal prior on the *centred* slopes of an item,
``-Σ_k (a_k - ā)² / (2 σ²)`` over its chosen options (``σ = slope_prior_sd``, default 3:
weak at the sample sizes of a calibration, but it keeps the slopes of options that only a
handful of persons chose bounded).  Centred, it is the same whatever the reference option.
The reported log-likelihood excludes it.

Standard errors: ``se="observed"`` (default) inverts the observed information of the
log-posterior by Louis' identity, exact for the quadrature (the complete-data curvature
from the expected counts minus the posterior covariance of each person's score, cross-item
covariances included; checked against central differences of the analytic marginal score);
``se="crossprod"`` uses the cross-product of the per-person scores (cheaper, noisier);
``se="none"`` skips them.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from scoring.calibration import _blas_threads
from scoring.models import normalize_log_weights

__all__ = [
    "DistractorAnalysis",
    "NominalParams",
    "NominalResult",
    "analyse_distractors",
    "calibrate_nominal",
    "nominal_eap",
    "nominal_loglik",
    "option_probabilities",
]

_SE_METHODS = ("observed", "crossprod", "none")


def _logsumexp(z: np.ndarray, axis: int = 0, keepdims: bool = False) -> np.ndarray:
    """log Σ exp(z) along ``axis`` (-inf entries allowed; scipy's is slower here)."""
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)
_MAX_STEP = 2.0          # cap on one Newton step of an item (logit units)
_MAX_PARAM = 30.0        # SQUAREM extrapolations are clipped to |parameter| <= this
_DENSE_CELLS = 20_000_000  # one-hot matrices up to this many cells are kept dense


@dataclass(frozen=True, eq=False)
class NominalParams:
    """NRM item parameters (see the module docstring for the parameterisation).

    Attributes
    ----------
    item_ids : (n_items,) str
    n_options : (n_items,) int, options per item (chosen or not)
    slopes, intercepts : (n_items, max_options) float; 0 at the reference option, NaN for
        options never chosen and past ``n_options``
    reference : (n_items,) int, the option with ``a = c = 0``
    se_slopes, se_intercepts : (n_items, max_options) float or None; NaN where fixed
    """

    item_ids: np.ndarray
    n_options: np.ndarray
    slopes: np.ndarray
    intercepts: np.ndarray
    reference: np.ndarray
    se_slopes: np.ndarray | None = None
    se_intercepts: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return int(self.slopes.shape[0])

    @property
    def max_options(self) -> int:
        return int(self.slopes.shape[1])

    @property
    def chosen(self) -> np.ndarray:
        """(n_items, max_options) bool: options in the model (chosen by someone)."""
        return np.isfinite(self.slopes)

    @classmethod
    def from_arrays(cls, slopes: Any, intercepts: Any, *, item_ids: Any = None,
                    n_options: Any = None) -> NominalParams:
        """Parameters from ``(n_items, K)`` arrays in any reference: each item is
        re-expressed with its first finite option as the reference (NaN = not in model)."""
        a = np.array(slopes, dtype=float, ndmin=2)
        c = np.array(intercepts, dtype=float, ndmin=2)
        if a.shape != c.shape:
            raise ValueError(f"slopes {a.shape} and intercepts {c.shape} differ in shape")
        active = np.isfinite(a) & np.isfinite(c)
        if np.any(active.sum(axis=1) < 2):
            j = int(np.argmax(active.sum(axis=1) < 2))
            raise ValueError(f"item {j} needs at least two options with parameters")
        ref = np.argmax(active, axis=1)
        rows = np.arange(a.shape[0])
        a = np.where(active, a - a[rows, ref][:, None], np.nan)
        c = np.where(active, c - c[rows, ref][:, None], np.nan)
        ids = (np.array([f"item{j + 1}" for j in rows]) if item_ids is None
               else np.asarray(item_ids).astype(str))
        k = (np.full(a.shape[0], a.shape[1]) if n_options is None
             else np.asarray(n_options, dtype=int))
        return cls(item_ids=ids, n_options=k, slopes=a, intercepts=c, reference=ref)


@dataclass(frozen=True)
class NominalResult:
    """Outcome of :func:`calibrate_nominal`.

    Attributes
    ----------
    params : NominalParams (with standard errors unless ``se="none"``)
    loglik : float, marginal log-likelihood at the estimates (prior excluded)
    log_posterior : float, ``loglik`` plus the log slope prior (what EM maximised)
    n_params, aic, bic : free parameters and information criteria (from ``loglik``)
    n_iter : int, EM cycles (a SQUAREM cycle counts its three EM steps)
    converged : bool
    latent_mean, latent_sd : the latent N(mean, SD²) used
    never_chosen : tuple of (item_id, option) left out of the model
    item_covariance : (n_items, 2 K, 2 K) float or None, covariance of each item's
        ``(a_0..a_{K-1}, c_0..c_{K-1})`` (0 rows at fixed/absent options; NaN if singular)
    se_method : str
    method_note : str, plain-language summary of estimation and SEs
    history : tuple of float, objective after each cycle
    """

    params: NominalParams
    loglik: float
    log_posterior: float
    n_params: int
    aic: float
    bic: float
    n_iter: int
    converged: bool
    latent_mean: float
    latent_sd: float
    never_chosen: tuple[tuple[str, int], ...]
    item_covariance: np.ndarray | None
    se_method: str
    method_note: str
    history: tuple[float, ...] = ()


# ---------------------------------------------------------------------------- core

def _logits(a: np.ndarray, c: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """(n_items, n_theta, K) logits, -inf for options outside the model."""
    z = a[:, None, :] * theta[None, :, None] + c[:, None, :]
    return np.where(np.isfinite(a)[:, None, :], z, -np.inf)


def _log_probs(a: np.ndarray, c: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """(n_items, n_theta, K) log option probabilities (-inf outside the model)."""
    z = _logits(a, c, theta)
    return z - _logsumexp(z, axis=2, keepdims=True)


def option_probabilities(params: NominalParams, theta: Any) -> np.ndarray:
    """Option probabilities, shape ``(n_theta, n_items, max_options)`` (0 for options not
    in the model), for abilities ``theta`` of shape ``(n_theta,)``."""
    th = np.atleast_1d(np.asarray(theta, dtype=float))
    return np.exp(_log_probs(params.slopes, params.intercepts, th)).transpose(1, 0, 2)


def _grid(n_quad: int, theta_range: tuple[float, float], mean: float,
          sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature points (Q,) and normalised log weights of N(mean, sd²) at them."""
    if n_quad < 5:
        raise ValueError("n_quad must be at least 5")
    if not sd > 0:
        raise ValueError("latent_sd must be positive")
    theta = np.linspace(theta_range[0], theta_range[1], n_quad)
    logw = -0.5 * ((theta - mean) / sd) ** 2
    return theta, logw - _logsumexp(logw)


class _Data:
    """Responses as a one-hot matrix ``Y`` (persons x items*K) and an answered mask."""

    def __init__(self, x: np.ndarray, kmax: int):
        n, J = x.shape
        seen = ~np.isnan(x)
        rows, cols = np.nonzero(seen)
        flat = cols * kmax + x[rows, cols].astype(np.int64)
        if n * J * kmax <= _DENSE_CELLS:
            Y = np.zeros((n, J * kmax))
            Y[rows, flat] = 1.0
        else:
            Y = sp.csr_matrix((np.ones(rows.size), (rows, flat)), shape=(n, J * kmax))
        self.Y = Y
        self.answered = seen.astype(float)   # (n, J)
        self.n, self.J, self.K = n, J, kmax
        self.keep = seen.any(axis=1)


def _e_step(d: _Data, a: np.ndarray, c: np.ndarray, theta: np.ndarray,
            logw: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Log-likelihood, posteriors (n, Q) and expected counts (J, K, Q)."""
    lp = _log_probs(a, c, theta)                          # (J, Q, K)
    lp = np.where(np.isfinite(lp), lp, 0.0)               # never chosen: no Y entries
    L = d.Y @ lp.transpose(0, 2, 1).reshape(d.J * d.K, -1) + logw   # (n, Q)
    ll_i = normalize_log_weights(L)
    post = L
    r = np.asarray(d.Y.T @ post).reshape(d.J, d.K, -1)
    return float(ll_i[d.keep].sum()), post, r


def _log_prior(a: np.ndarray, sd: float | None) -> float:
    if sd is None:
        return 0.0
    act = np.isfinite(a)
    mean = np.nanmean(a, axis=1, keepdims=True)
    return float(-0.5 * np.sum(np.where(act, a - mean, 0.0) ** 2) / sd**2)


def _item_derivatives(a: np.ndarray, c: np.ndarray, r: np.ndarray, theta: np.ndarray,
                      sd: float | None, hessian: bool = True):
    """Objective, gradient (J, 2K) and Hessian (J, 2K, 2K) of each item's complete-data
    log-likelihood (plus log prior), in the coordinates ``(a_0..a_K-1, c_0..c_K-1)``."""
    J, K, _ = r.shape
    act = np.isfinite(a)
    lp = _log_probs(a, c, theta)                          # (J, Q, K)
    P = np.exp(lp)
    n_q = r.sum(axis=1)                                   # (J, Q)
    rt = r.transpose(0, 2, 1)                             # (J, Q, K)
    obj = np.sum(np.where(rt > 0, rt * np.where(np.isfinite(lp), lp, 0.0), 0.0), axis=(1, 2))
    resid = rt - n_q[:, :, None] * P                      # (J, Q, K)
    g = np.concatenate([np.einsum("jqk,q->jk", resid, theta), resid.sum(axis=1)], axis=1)
    H = None
    if hessian:
        H = np.zeros((J, 2 * K, 2 * K))
        for (ra, rb), m in (((slice(0, K), slice(0, K)), 2), ((slice(0, K), slice(K, None)), 1),
                            ((slice(K, None), slice(K, None)), 0)):
            w = n_q * theta[None, :] ** m                 # (J, Q)
            diag = np.einsum("jq,jqk->jk", w, P)
            outer = np.einsum("jq,jqk,jql->jkl", w, P, P)
            block = outer - diag[:, :, None] * np.eye(K)[None]
            H[:, ra, rb] = block
            if m == 1:
                H[:, rb, ra] = block.transpose(0, 2, 1)
    if sd is not None:
        n_act = act.sum(axis=1)
        mean = np.nanmean(a, axis=1, keepdims=True)
        dev = np.where(act, a - mean, 0.0)
        obj = obj - 0.5 * np.sum(dev**2, axis=1) / sd**2
        g[:, :K] -= dev / sd**2
        if H is not None:
            eye = np.eye(K)[None] * act[:, :, None]
            both = (act[:, :, None] & act[:, None, :]) / n_act[:, None, None]
            H[:, :K, :K] -= (eye - both) / sd**2
    return obj, g, H


def _m_step(a: np.ndarray, c: np.ndarray, r: np.ndarray, theta: np.ndarray,
            sd: float | None, free: np.ndarray, max_newton: int = 25,
            tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Maximise every item's complete-data objective by Newton with step halving."""
    K = a.shape[1]
    x = np.concatenate([np.where(np.isfinite(a), a, 0.0), np.where(np.isfinite(c), c, 0.0)],
                       axis=1)
    nan_mask = np.concatenate([~np.isfinite(a), ~np.isfinite(c)], axis=1)
    fix = ~free                                            # (J, 2K)

    def unpack(v):
        return np.where(nan_mask[:, :K], np.nan, v[:, :K]), np.where(nan_mask[:, K:], np.nan,
                                                                      v[:, K:])

    active = np.ones(x.shape[0], dtype=bool)
    for _ in range(max_newton):
        ua, uc = unpack(x)
        obj, g, H = _item_derivatives(ua[active], uc[active], r[active], theta, sd)
        fa = fix[active]
        g = np.where(fa, 0.0, g)
        H = np.where(fa[:, :, None] | fa[:, None, :], 0.0, H)
        H = H - np.eye(2 * K)[None] * fa[:, :, None]      # identity on fixed coordinates
        step = _newton_step(H, g)
        big = np.abs(step).max(axis=1, keepdims=True)
        step = step * np.minimum(1.0, _MAX_STEP / np.maximum(big, 1e-300))
        scale = np.ones(step.shape[0])
        x_old = x[active]
        for _halving in range(30):
            trial = x_old + scale[:, None] * step
            ta, tc = _unpack_rows(trial, nan_mask[active], K)
            new_obj, _, _ = _item_derivatives(ta, tc, r[active], theta, sd, hessian=False)
            worse = new_obj < obj - 1e-10 * (1.0 + np.abs(obj))
            if not worse.any():
                break
            scale = np.where(worse, scale / 2, scale)
        x[active] = trial
        idx = np.flatnonzero(active)
        done = np.abs(scale[:, None] * step).max(axis=1) < tol
        active[idx[done]] = False
        if not active.any():
            break
    return unpack(x)


def _newton_step(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Solve ``-H step = g`` per item; a near-singular item (probabilities underflowing at
    extreme parameters) gets a Levenberg ridge, so the M-step never fails."""
    eye = np.eye(H.shape[1])[None]
    scale = np.maximum(np.abs(np.diagonal(H, axis1=1, axis2=2)).max(axis=1), 1.0)
    A = -H + 1e-10 * scale[:, None, None] * eye
    try:
        step = np.linalg.solve(A, g[..., None])[..., 0]
        if np.all(np.isfinite(step)):
            return step
    except np.linalg.LinAlgError:
        pass
    step = np.empty_like(g)
    for j in range(g.shape[0]):
        lam = 1e-6 * scale[j]
        while True:
            try:
                step[j] = np.linalg.solve(A[j] + lam * eye[0], g[j])
                break
            except np.linalg.LinAlgError:
                lam *= 100.0
    return np.nan_to_num(step)


def _unpack_rows(v: np.ndarray, nan_mask: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Slopes and intercepts (NaN outside the model) from packed ``(J, 2K)`` rows."""
    return (np.where(nan_mask[:, :K], np.nan, v[:, :K]),
            np.where(nan_mask[:, K:], np.nan, v[:, K:]))


# ---------------------------------------------------------------------------- input

def _as_responses(responses: Any, n_options: Any) -> tuple[np.ndarray, np.ndarray]:
    """Responses (n, J) float and options per item (J,) int, validated."""
    x = np.array(responses, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"responses must be 2-D persons x items, got shape {x.shape}")
    seen = ~np.isnan(x)
    with np.errstate(invalid="ignore"):
        bad = seen & ((x < 0) | (x != np.floor(x)))
    if np.any(bad):
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"option {float(x[i, j]):g} at person row {i}, item column {j} is not an "
                         "option index 0..K-1")
    top = np.where(seen.any(axis=0), np.nanmax(np.where(seen, x, -1), axis=0), -1)
    if n_options is None:
        k = (top + 1).astype(int)
    else:
        k = np.broadcast_to(np.asarray(n_options, dtype=int), (x.shape[1],)).copy()
        over = top >= k
        if np.any(over):
            j = int(np.argmax(over))
            raise ValueError(f"item column {j}: option {int(top[j])} but only {k[j]} options")
    return x, k


# ---------------------------------------------------------------------------- fit

def calibrate_nominal(responses: Any, n_options: Any = None, *, key: Any = None,
                      item_ids: Sequence[str] | np.ndarray | None = None,
                      slope_prior_sd: float | None = 3.0,
                      latent_mean: float = 0.0, latent_sd: float = 1.0,
                      n_quad: int = 61, theta_range: tuple[float, float] = (-6.0, 6.0),
                      max_iter: int = 1000, tol: float = 1e-5, squarem: bool = True,
                      se: str = "observed", blas_threads: int | None = 1) -> NominalResult:
    """Calibrate the nominal response model by marginal maximum likelihood (EM).

    Parameters
    ----------
    responses : (n_persons, n_items) float, option indices ``0..K-1``, NaN = missing
    n_options : int or (n_items,) int, optional; default highest option seen + 1.  Options
        below it that nobody chose are reported in ``never_chosen``.
    key : (n_items,) int, optional, the correct option of each item; used only for start
        values (slopes start from the contrast of the choosers' standardised number-right
        scores, so the scale points towards ability)
    item_ids : (n_items,) labels, default ``item1..``
    slope_prior_sd : float or None, SD of the centred-slope normal prior (None: ML)
    latent_mean, latent_sd : the latent distribution (a calibrated scale's, or N(0, 1))
    n_quad, theta_range : quadrature grid
    max_iter, tol : EM limit; converged when the largest parameter change < ``tol`` and
        the objective changes by less than ``tol * 1e-2``
    squarem : SQUAREM acceleration of EM
    se : ``"observed"``, ``"crossprod"`` or ``"none"``
    blas_threads : OpenBLAS threads during the fit (restored after); 1 by default, as in
        :func:`scoring.calibration.calibrate`: the thin persons x quadrature products run
        several times faster single-threaded on small machines

    Returns
    -------
    NominalResult

    Raises
    ------
    ValueError for bad shapes or values, and an item with fewer than two chosen options
    (naming it).
    """
    if se not in _SE_METHODS:
        raise ValueError(f"se must be one of {_SE_METHODS}, got {se!r}")
    with _blas_threads(blas_threads):
        return _calibrate(responses, n_options, key, item_ids, slope_prior_sd, latent_mean,
                          latent_sd, n_quad, theta_range, max_iter, tol, squarem, se)


def _calibrate(responses, n_options, key, item_ids, slope_prior_sd, latent_mean, latent_sd,
               n_quad, theta_range, max_iter, tol, squarem, se) -> NominalResult:
    """The body of :func:`calibrate_nominal` (inside its BLAS-thread setting)."""
    if slope_prior_sd is not None and not slope_prior_sd > 0:
        raise ValueError("slope_prior_sd must be positive or None")
    x, k_items = _as_responses(responses, n_options)
    J = x.shape[1]
    ids = (np.array([f"item{j + 1}" for j in range(J)]) if item_ids is None
           else np.asarray(item_ids).astype(str))
    if ids.shape != (J,):
        raise ValueError(f"item_ids must have shape ({J},), got {ids.shape}")
    kmax = int(max(k_items.max(), 2))
    counts = np.zeros((J, kmax))
    seen = ~np.isnan(x)
    rows, cols = np.nonzero(seen)
    np.add.at(counts, (cols, x[rows, cols].astype(int)), 1.0)
    in_range = np.arange(kmax)[None, :] < k_items[:, None]
    active = (counts > 0) & in_range
    few = active.sum(axis=1) < 2
    if np.any(few):
        j = int(np.argmax(few))
        raise ValueError(f"item {ids[j]}: fewer than two options chosen; the nominal model "
                         "cannot be fitted (remove the item)")
    never = tuple((str(ids[j]), int(k)) for j, k in zip(*np.nonzero(in_range & ~active),
                                                          strict=True))
    ref = np.argmax(active, axis=1)
    free_opt = active.copy()
    free_opt[np.arange(J), ref] = False
    free = np.concatenate([free_opt, free_opt], axis=1)

    a0, c0 = _start_values(x, counts, active, ref, key)
    theta, logw = _grid(n_quad, theta_range, latent_mean, latent_sd)
    d = _Data(x, kmax)
    sd = slope_prior_sd

    def em(a, c):
        ll, _, r = _e_step(d, a, c, theta, logw)
        na, nc = _m_step(a, c, r, theta, sd, free)
        return na, nc, ll + _log_prior(a, sd)

    def pack(a, c):
        return np.concatenate([np.nan_to_num(a), np.nan_to_num(c)], axis=1)

    nan_mask = np.concatenate([~active, ~active], axis=1)
    a, c = a0, c0
    history: list[float] = []
    converged = False
    n_iter = 0
    prev = -np.inf
    while n_iter < max_iter:
        x0 = pack(a, c)
        a1, c1, o0 = em(a, c)
        n_iter += 1
        if squarem:
            a2, c2, o1 = em(a1, c1)
            n_iter += 1
            x1, x2 = pack(a1, c1), pack(a2, c2)
            rr, vv = x1 - x0, x2 - 2 * x1 + x0
            nv = np.sqrt(np.sum(vv**2))
            alpha = -np.sqrt(np.sum(rr**2)) / nv if nv > 0 else -1.0
            alpha = min(alpha, -1.0)
            xs = x0 - 2 * alpha * rr + alpha**2 * vv
            xs = np.where(free, np.clip(xs, -_MAX_PARAM, _MAX_PARAM), x0)
            sa, sc = _unpack_rows(xs, nan_mask, kmax)
            a3, c3, o_s = em(sa, sc)
            n_iter += 1
            if np.isfinite(o_s) and o_s >= o1:
                a_new, c_new, obj = a3, c3, o_s
            else:
                a_new, c_new, obj = a2, c2, o1
        else:
            a_new, c_new, obj = a1, c1, o0
        change = float(np.max(np.abs(pack(a_new, c_new) - x0)))
        history.append(obj)
        a, c = a_new, c_new
        if change < tol and abs(obj - prev) < max(tol * 1e-2, 1e-12 * abs(obj)):
            converged = True
            break
        prev = obj
    ll, post, _ = _e_step(d, a, c, theta, logw)
    log_post = ll + _log_prior(a, sd)

    cov = None
    se_a = se_c = None
    note_se = "SEs not computed."
    if se != "none":
        cov, ok = _covariance(d, a, c, theta, logw, sd, free, post, se)
        var = np.diagonal(cov, axis1=1, axis2=2)
        with np.errstate(invalid="ignore"):
            sev = np.where(free, np.sqrt(np.where(var >= 0, var, np.nan)), np.nan)
        se_a, se_c = sev[:, :kmax], sev[:, kmax:]
        note_se = ("SEs: inverse observed information of the log-posterior (Louis' "
                   "identity, exact for the quadrature; cross-item covariances "
                   "included)." if se == "observed" else
                   "SEs: inverse cross-product of per-person scores.")
        if not ok:
            note_se += " The information is not positive definite: SEs are NaN."
    n_par = int(free.sum())
    n_persons = int(d.keep.sum())
    params = NominalParams(item_ids=ids, n_options=k_items, slopes=a, intercepts=c,
                           reference=ref, se_slopes=se_a, se_intercepts=se_c)
    prior_text = (f"normal prior SD {sd:g} on centred slopes (posterior mode; loglik "
                  "excludes it)" if sd is not None else "no slope prior (ML)")
    note = (f"Nominal response model (Bock), a = c = 0 at each item's first chosen option; "
            f"MML by EM on {n_quad} points of [{theta_range[0]:g}, {theta_range[1]:g}] with "
            f"latent N({latent_mean:g}, {latent_sd:g}^2); "
            + ("SQUAREM acceleration; " if squarem else "") + prior_text + ". " + note_se
            + (" Converged" if converged else " NOT converged") + f" after {n_iter} EM steps."
            + (f" Options never chosen (left out): {len(never)}." if never else ""))
    return NominalResult(params=params, loglik=ll, log_posterior=log_post, n_params=n_par,
                         aic=-2 * ll + 2 * n_par, bic=-2 * ll + n_par * np.log(max(n_persons, 1)),
                         n_iter=n_iter, converged=converged, latent_mean=float(latent_mean),
                         latent_sd=float(latent_sd), never_chosen=never, item_covariance=cov,
                         se_method=se, method_note=note, history=tuple(history))


def _start_values(x: np.ndarray, counts: np.ndarray, active: np.ndarray, ref: np.ndarray,
                  key: Any) -> tuple[np.ndarray, np.ndarray]:
    """Intercepts from the log odds of the option shares; slopes from the contrast of the
    choosers' standardised number-right scores (with a key), else spread 0.5..1.5 over the
    options (Python mirt's start) so that EM does not start at the a = 0 saddle."""
    J, K = counts.shape
    rows = np.arange(J)
    logc = np.log(counts + 0.5)
    c = np.where(active, logc - logc[rows, ref][:, None], np.nan)
    if key is None:
        a = np.tile(np.linspace(0.0, 1.5, K), (J, 1))
    else:
        kk = np.asarray(key, dtype=float)
        if kk.shape != (J,):
            raise ValueError(f"key must have shape ({J},), got {kk.shape}")
        seen = ~np.isnan(x)
        right = np.where(seen, x == kk[None, :], False).astype(float)
        frac = right.sum(axis=1) / np.maximum(seen.sum(axis=1), 1)
        z = (frac - frac.mean()) / (frac.std() or 1.0)
        a = np.zeros((J, K))
        for j in range(J):
            for k in np.flatnonzero(active[j]):
                a[j, k] = z[x[:, j] == k].mean()
        a = np.clip(1.5 * a, -3.0, 3.0)
    a = np.where(active, a - a[rows, ref][:, None], np.nan)
    return a, c


def _marginal_score(d: _Data, a: np.ndarray, c: np.ndarray, theta: np.ndarray,
                    logw: np.ndarray, sd: float | None) -> np.ndarray:
    """(J, 2K) gradient of the log-posterior (Fisher's identity)."""
    _, _, r = _e_step(d, a, c, theta, logw)
    _, g, _ = _item_derivatives(a, c, r, theta, sd, hessian=False)
    return g


def _information(d: _Data, a: np.ndarray, c: np.ndarray, theta: np.ndarray,
                 logw: np.ndarray, sd: float | None, free: np.ndarray, post: np.ndarray,
                 method: str) -> np.ndarray:
    """(P, P) information of the free parameters (packed order of ``np.argwhere(free)``).

    ``"observed"``: Louis' identity, exact for the quadrature:
    ``-Σ_j E_post[∂² log P_j] - Σ_i Cov_post(s_i)`` with ``s_i(θ) = Σ_j ∂ log P_j(x_ij|θ)``;
    the posterior second moment ``Σ_i Σ_q post_iq s_i(θ_q) s_i(θ_q)ᵀ`` is one
    ``(items*K)²`` product per quadrature point, ``Uᵀ diag(post_q) U`` with
    ``U = Y - answered * P(θ_q)``.  ``"numeric"``: central differences of the analytic
    marginal score (slow; kept to check the former).  ``"crossprod"``: ``Σ_i S_i S_iᵀ``.
    """
    J, K2 = free.shape
    K = K2 // 2
    sel = free.ravel()
    S = _person_scores(d, a, c, theta, post)              # (n, J*2K)
    if method == "crossprod":
        S = S[:, sel]
        return S.T @ S
    if method == "numeric":
        coords = np.argwhere(free)
        H = np.zeros((len(coords), len(coords)))
        x = np.concatenate([np.nan_to_num(a), np.nan_to_num(c)], axis=1)
        nan_mask = ~np.isfinite(np.concatenate([a, c], axis=1))
        for col, (j, m) in enumerate(coords):
            h = 1e-4 * max(1.0, abs(x[j, m]))
            grads = []
            for sign in (1.0, -1.0):
                xp = x.copy()
                xp[j, m] += sign * h
                pa, pc = _unpack_rows(xp, nan_mask, K)
                grads.append(_marginal_score(d, pa, pc, theta, logw, sd)[free])
            H[:, col] = (grads[0] - grads[1]) / (2 * h)
        return -(H + H.T) / 2
    r = np.asarray(d.Y.T @ post).reshape(J, K, -1)          # expected counts
    _, _, Hc = _item_derivatives(a, c, r, theta, sd)      # (J, 2K, 2K), prior included
    Pr = np.exp(_log_probs(a, c, theta))                  # (J, Q, K)
    Y = d.Y.toarray() if sp.issparse(d.Y) else d.Y
    ans = np.repeat(d.answered, K, axis=1)                # (n, J*K)
    JK = J * K
    moments = np.zeros((3, JK, JK))
    for q in range(len(theta)):
        U = Y - ans * Pr[:, q, :].reshape(1, JK)
        G = U.T @ (U * post[:, q:q + 1])
        moments[0] += G
        moments[1] += theta[q] * G
        moments[2] += theta[q] ** 2 * G
    # packed coordinate of (item j, slope k) is j*2K + k, of (j, intercept k) j*2K + K + k
    idx_a = (np.arange(J)[:, None] * K2 + np.arange(K)[None, :]).ravel()
    idx_c = idx_a + K
    E = np.zeros((J * K2, J * K2))
    E[np.ix_(idx_a, idx_a)] = moments[2]
    E[np.ix_(idx_a, idx_c)] = moments[1]
    E[np.ix_(idx_c, idx_a)] = moments[1]
    E[np.ix_(idx_c, idx_c)] = moments[0]
    info = -(E - S.T @ S)
    for j in range(J):
        info[j * K2:(j + 1) * K2, j * K2:(j + 1) * K2] -= Hc[j]
    info = info[np.ix_(sel, sel)]
    return (info + info.T) / 2


def _covariance(d: _Data, a: np.ndarray, c: np.ndarray, theta: np.ndarray,
                logw: np.ndarray, sd: float | None, free: np.ndarray, post: np.ndarray,
                method: str) -> tuple[np.ndarray, bool]:
    """(J, 2K, 2K) per-item blocks of the inverse information and whether it was PD."""
    J, K2 = free.shape
    coords = np.argwhere(free)                           # (P, 2): item, coordinate
    info = _information(d, a, c, theta, logw, sd, free, post, method)
    out = np.zeros((J, K2, K2))
    try:
        chol = np.linalg.cholesky(info)
        ok = True
    except np.linalg.LinAlgError:
        ok = False
    if not ok:
        out[:] = np.nan
        return out, False
    inv = np.linalg.inv(chol)
    full = inv.T @ inv
    for j in range(J):
        sel = np.flatnonzero(coords[:, 0] == j)
        m = coords[sel, 1]
        out[j][np.ix_(m, m)] = full[np.ix_(sel, sel)]
    return out, True


def _person_scores(d: _Data, a: np.ndarray, c: np.ndarray, theta: np.ndarray,
                   post: np.ndarray) -> np.ndarray:
    """(n, J*2K) per-person marginal scores in the packed coordinates."""
    Pr = np.exp(_log_probs(a, c, theta))                 # (J, Q, K)
    Pr = Pr.transpose(1, 0, 2).reshape(len(theta), -1)   # (Q, J*K)
    Y = d.Y.toarray() if sp.issparse(d.Y) else d.Y
    e_theta = post @ theta
    ans = np.repeat(d.answered, d.K, axis=1)
    s_a = Y * e_theta[:, None] - ans * ((post * theta[None, :]) @ Pr)
    s_c = Y - ans * (post @ Pr)
    J, K = d.J, d.K
    return np.concatenate([s_a.reshape(-1, J, K), s_c.reshape(-1, J, K)], axis=2
                          ).reshape(d.n, -1)


# ---------------------------------------------------------------------------- likelihood

def nominal_loglik(params: NominalParams, responses: Any, *, latent_mean: float = 0.0,
                   latent_sd: float = 1.0, n_quad: int = 61,
                   theta_range: tuple[float, float] = (-6.0, 6.0)) -> float:
    """Marginal log-likelihood of fixed NRM parameters (same quadrature as calibration).

    ``responses`` (n_persons, n_items) option indices, NaN = missing; a response on an
    option outside the model has likelihood 0 (``-inf``).
    """
    x, _ = _as_responses(responses, params.n_options)
    if x.shape[1] != params.n_items:
        raise ValueError(f"responses have {x.shape[1]} items, params {params.n_items}")
    theta, logw = _grid(n_quad, theta_range, latent_mean, latent_sd)
    lp = _log_probs(params.slopes, params.intercepts, theta)      # (J, Q, K)
    seen = ~np.isnan(x)
    L = np.tile(logw, (x.shape[0], 1))
    for j in range(x.shape[1]):
        idx = np.flatnonzero(seen[:, j])
        L[idx] += lp[j][:, x[idx, j].astype(int)].T
    keep = seen.any(axis=1)
    return float(_logsumexp(L[keep], axis=1).sum())


def nominal_eap(params: NominalParams, responses: Any, *, latent_mean: float = 0.0,
                latent_sd: float = 1.0, n_quad: int = 61,
                theta_range: tuple[float, float] = (-6.0, 6.0)
                ) -> tuple[np.ndarray, np.ndarray]:
    """EAP abilities and posterior SDs, each ``(n_persons,)``, under the NRM and the
    latent N(mean, SD²) (the prior for persons without responses)."""
    x, _ = _as_responses(responses, params.n_options)
    theta, logw = _grid(n_quad, theta_range, latent_mean, latent_sd)
    lp = _log_probs(params.slopes, params.intercepts, theta)
    seen = ~np.isnan(x)
    L = np.tile(logw, (x.shape[0], 1))
    for j in range(x.shape[1]):
        idx = np.flatnonzero(seen[:, j])
        L[idx] += lp[j][:, x[idx, j].astype(int)].T
    normalize_log_weights(L)
    post = L
    m = post @ theta
    return m, np.sqrt(np.maximum(post @ theta**2 - m**2, 0.0))


# ---------------------------------------------------------------------------- distractors

@dataclass(frozen=True, eq=False)
class DistractorAnalysis:
    """Per item and option (arrays ``(n_items, max_options)``, NaN past ``n_options``).

    Attributes
    ----------
    item_ids : (n_items,) str
    key : (n_items,) int
    n_chosen : int counts; share : proportion of the item's respondents choosing it
    mean_theta : mean EAP ability of the option's choosers (NaN if none)
    slope, intercept, se_slope, se_intercept : NRM parameters (reference option 0 s.e. NaN)
    slope_vs_key, se_slope_vs_key : ``a_k - a_key`` and its SE (0 / NaN at the key)
    rising : bool, the option's probability increases with ability one SD above the
        latent mean (``dP_k/dθ > 0`` there)
    attractive : bool, a distractor that draws able persons: ``slope_vs_key > 0`` or
        ``rising``
    note : str, "key", "never chosen", "attractive: ..." or ""
    """

    item_ids: np.ndarray
    key: np.ndarray
    n_chosen: np.ndarray
    share: np.ndarray
    mean_theta: np.ndarray
    slope: np.ndarray
    intercept: np.ndarray
    se_slope: np.ndarray
    se_intercept: np.ndarray
    slope_vs_key: np.ndarray
    se_slope_vs_key: np.ndarray
    rising: np.ndarray
    attractive: np.ndarray
    note: np.ndarray


def analyse_distractors(fit: NominalResult, responses: Any, key: Any) -> DistractorAnalysis:
    """Distractor table of a fitted NRM: shares, choosers' mean ability, slopes and flags.

    Parameters
    ----------
    fit : NominalResult of :func:`calibrate_nominal` on ``responses``
    responses : (n_persons, n_items) option indices, NaN = missing
    key : (n_items,) int, the correct option per item

    Returns
    -------
    DistractorAnalysis
    """
    p = fit.params
    x, _ = _as_responses(responses, p.n_options)
    J, K = p.slopes.shape
    kk = np.asarray(key, dtype=int)
    if kk.shape != (J,):
        raise ValueError(f"key must have shape ({J},), got {kk.shape}")
    if np.any((kk < 0) | (kk >= p.n_options)):
        j = int(np.argmax((kk < 0) | (kk >= p.n_options)))
        raise ValueError(f"item {p.item_ids[j]}: key {kk[j]} is not one of its options")
    r = np.arange(J)
    others = np.where(p.chosen & (np.arange(K)[None, :] != kk[:, None]), p.slopes, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # an item with only the key chosen
        lead = p.slopes[r, kk] - np.nanmean(others, axis=1)
    if np.nanmedian(lead) < 0:
        raise ValueError("the fitted ability scale runs against the key (most keys have a "
                         "lower slope than their distractors); fit with key= so that it "
                         "points towards ability")
    theta, _ = nominal_eap(p, x, latent_mean=fit.latent_mean, latent_sd=fit.latent_sd)
    seen = ~np.isnan(x)
    n_chosen = np.zeros((J, K))
    sum_theta = np.zeros((J, K))
    rows, cols = np.nonzero(seen)
    opt = x[rows, cols].astype(int)
    np.add.at(n_chosen, (cols, opt), 1.0)
    np.add.at(sum_theta, (cols, opt), theta[rows])
    in_range = np.arange(K)[None, :] < p.n_options[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(in_range, n_chosen / seen.sum(axis=0)[:, None], np.nan)
        mean_theta = np.where(in_range & (n_chosen > 0), sum_theta / n_chosen, np.nan)
    a_key = p.slopes[r, kk]
    vs_key = np.where(in_range, p.slopes - a_key[:, None], np.nan)
    se_vs = np.full((J, K), np.nan)
    if fit.item_covariance is not None:
        cov = fit.item_covariance
        var_k = np.diagonal(cov, axis1=1, axis2=2)[:, :K]
        var_key = var_k[r, kk]
        cov_key = cov[r, :K, kk]                           # (J, K)
        v = var_k + var_key[:, None] - 2 * cov_key
        with np.errstate(invalid="ignore"):
            se_vs = np.where(p.chosen, np.sqrt(np.where(v >= 0, v, np.nan)), np.nan)
        se_vs[r, kk] = np.nan
    hi = np.array([fit.latent_mean + fit.latent_sd])
    probs = option_probabilities(p, hi)[0]                # (J, K)
    mean_a = np.nansum(probs * np.nan_to_num(p.slopes), axis=1)
    rising = p.chosen & (p.slopes > mean_a[:, None])
    distractor = p.chosen & (np.arange(K)[None, :] != kk[:, None])
    above = distractor & (vs_key > 0)
    rising &= distractor
    attractive = above | rising
    note = np.full((J, K), "", dtype=object)
    note[~in_range] = ""
    note[in_range & ~p.chosen] = "never chosen"
    note[rising] = "attractive: rising with ability"
    note[above] = "attractive: slope above the key's"
    note[above & rising] = "attractive: slope above the key's, rising with ability"
    note[r, kk] = np.where(p.chosen[r, kk], "key", "key (never chosen)")

    def se_of(arr):
        return np.full((J, K), np.nan) if arr is None else arr

    return DistractorAnalysis(item_ids=p.item_ids, key=kk, n_chosen=n_chosen.astype(int),
                              share=share, mean_theta=mean_theta, slope=p.slopes,
                              intercept=p.intercepts, se_slope=se_of(p.se_slopes),
                              se_intercept=se_of(p.se_intercepts), slope_vs_key=vs_key,
                              se_slope_vs_key=se_vs, rising=rising, attractive=attractive,
                              note=note.astype(str))
