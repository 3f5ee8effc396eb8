"""Scale linking of two calibrations through common items.

A linear transformation puts a *new* calibration on the scale of a *reference*
calibration::

    theta_ref = A * theta_new + B
    b_ref     = A * b_new + B        (every threshold / step of polytomous items)
    a_ref     = a_new / A
    c_ref     = c_new

Common items are matched by ``item_id``; they must have the same model family
and number of categories in both calibrations.

Methods
-------
* ``mean_mean`` (Loyd & Hoover, 1980): ``A = mean(a_new) / mean(a_ref)``,
  ``B = mean(b_ref) - A mean(b_new)``.
* ``mean_sigma`` (Marco, 1977): ``A = sd(b_ref) / sd(b_new)``, same ``B``.
  Means and SDs pool every finite threshold of every common item, so
  polytomous items contribute all their thresholds.
* ``stocking_lord`` (Stocking & Lord, 1983): minimise
  ``Σ_q w_q [Σ_j E_j(θ_q; ref) - Σ_j E_j(θ_q; new → ref)]²``
  (test characteristic curves; polytomous items through expected scores).
* ``haebara`` (Haebara, 1980): minimise
  ``Σ_q w_q Σ_j Σ_k [P_jk(θ_q; ref) - P_jk(θ_q; new → ref)]²``, summed over
  **all** categories of every item (for dichotomous items this is twice the
  classic single-curve criterion, same minimiser).

Both characteristic-curve criteria are evaluated on the *reference* scale
(non-symmetric version): by default 41 equally spaced points on [-4, 4] with
normalised N(0, 1) density weights (``weights="uniform"`` gives equal
weights; any grid and weights can be passed).  They are minimised by
Gauss-Newton / trust-region least squares (``scipy.optimize.least_squares``)
with analytic Jacobians, starting from the mean-sigma solution: both
criteria are sums of squares, so this converges to machine precision in a
few iterations (the exact-recovery tests rely on it).  The Jacobian uses the
identity ``P_jk(θ; a/A, A b + B) = P_jk((θ - B) / A; a, b)``.

Rasch / PCM: when every common item has a unit slope by definition (models
'rasch' and 'pcm' in both calibrations), ``A`` is fixed at 1 and only ``B``
is estimated (``fix_a=None`` default; pass ``fix_a=True/False`` to override).

Standard errors in :func:`apply_transform` are rescaled (``se_a / A``,
``se_b * A``); the uncertainty of ``A`` and ``B`` themselves is not propagated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from . import catalogue
from . import models as M
from .params import ItemParams

__all__ = [
    "LINK_METHODS",
    "LinkTransform",
    "apply_transform",
    "characteristic_curve_criterion",
    "common_items",
    "haebara",
    "link",
    "mean_mean",
    "mean_sigma",
    "stocking_lord",
]

LINK_METHODS = ("mean_mean", "mean_sigma", "stocking_lord", "haebara")

_UNIT_SLOPE = catalogue.UNIT_SLOPE


def _family(model: np.ndarray) -> np.ndarray:
    """Item response function family per item (``catalogue.IRTModel.family``)."""
    return np.array([catalogue.MODELS[str(m)].family for m in model], dtype=str)


@dataclass(frozen=True)
class LinkTransform:
    """Linear transformation ``theta_ref = A * theta_new + B``.

    Attributes
    ----------
    A, B : float
    method : str, one of ``LINK_METHODS``
    n_common : int, number of common items used
    criterion : float, value of the minimised criterion at (A, B) (NaN for
        moment methods)
    converged : bool
    """

    A: float
    B: float
    method: str
    n_common: int = 0
    criterion: float = float("nan")
    converged: bool = True

    def theta(self, theta_new: Any) -> np.ndarray:
        """Transform abilities from the new scale to the reference scale."""
        return self.A * np.asarray(theta_new, dtype=float) + self.B


def common_items(new: ItemParams, ref: ItemParams) -> tuple[ItemParams, ItemParams]:
    """The common items of two calibrations, in the same (reference) order.

    Returns
    -------
    (new_common, ref_common) : ItemParams each with n_common items

    Raises
    ------
    ValueError
        If fewer than 1 common item, or a common item differs in model family or
        number of categories between the calibrations.
    """
    new_ids = set(new.item_ids.tolist())
    ids = [i for i in ref.item_ids.tolist() if i in new_ids]
    if not ids:
        raise ValueError("the two calibrations have no item ids in common")
    n_c, r_c = new.subset(np.array(ids)), ref.subset(np.array(ids))
    bad = (_family(n_c.model) != _family(r_c.model)) | (n_c.n_categories != r_c.n_categories)
    if np.any(bad):
        shown = ", ".join(repr(i) for i in np.asarray(ids)[bad][:5])
        raise ValueError(
            f"common items {shown} differ in model family or number of categories "
            "between the calibrations"
        )
    return n_c, r_c


def _auto_fix_a(new_c: ItemParams, ref_c: ItemParams, fix_a: bool | None) -> bool:
    if fix_a is not None:
        return bool(fix_a)
    unit = np.isin(new_c.model, _UNIT_SLOPE) & np.isin(ref_c.model, _UNIT_SLOPE)
    return bool(np.all(unit))


def _thresholds(params: ItemParams) -> np.ndarray:
    """All used thresholds, flattened in item order, (n_thresholds,)."""
    used = np.arange(params.b.shape[1])[None, :] < (params.n_categories[:, None] - 1)
    return params.b[used]


def mean_mean(new: ItemParams, ref: ItemParams, *, fix_a: bool | None = None) -> LinkTransform:
    """Mean/mean linking: ``A = mean(a_new) / mean(a_ref)``, ``B = mean(b_ref) - A mean(b_new)``.

    Parameters
    ----------
    new, ref : ItemParams, calibrations sharing item ids
    fix_a : None (auto: True when all common items are rasch/pcm), True or False

    Returns
    -------
    LinkTransform
    """
    n_c, r_c = common_items(new, ref)
    A = 1.0 if _auto_fix_a(n_c, r_c, fix_a) else float(np.mean(n_c.a) / np.mean(r_c.a))
    B = float(np.mean(_thresholds(r_c)) - A * np.mean(_thresholds(n_c)))
    return LinkTransform(A=A, B=B, method="mean_mean", n_common=n_c.n_items)


def mean_sigma(new: ItemParams, ref: ItemParams, *, fix_a: bool | None = None) -> LinkTransform:
    """Mean/sigma linking: ``A = sd(b_ref) / sd(b_new)``, ``B = mean(b_ref) - A mean(b_new)``.

    Thresholds of all common items are pooled (population SDs; the ratio does
    not depend on the divisor).  Needs at least two distinct thresholds.
    """
    n_c, r_c = common_items(new, ref)
    bn, br = _thresholds(n_c), _thresholds(r_c)
    if _auto_fix_a(n_c, r_c, fix_a):
        A = 1.0
    else:
        if bn.size < 2 or np.std(bn) == 0:
            raise ValueError("mean_sigma needs at least two distinct common-item thresholds")
        A = float(np.std(br) / np.std(bn))
    B = float(np.mean(br) - A * np.mean(bn))
    return LinkTransform(A=A, B=B, method="mean_sigma", n_common=n_c.n_items)


def _grid(theta_grid: Any, weights: Any) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature points and normalised weights, both (n_q,)."""
    grid = np.linspace(-4.0, 4.0, 41) if theta_grid is None else M.as_theta(theta_grid)
    if isinstance(weights, str):
        if weights == "normal":
            w = stats.norm.pdf(grid)
        elif weights == "uniform":
            w = np.ones_like(grid)
        else:
            raise ValueError("weights must be 'normal', 'uniform' or an array")
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != grid.shape or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("weights must be non-negative, same shape as theta_grid")
    return grid, w / w.sum()


def _residuals(
    method: str,
    new_c: ItemParams,
    target: np.ndarray,
    grid: np.ndarray,
    sqrt_w: np.ndarray,
    A: float,
    B: float,
    jacobian: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Weighted residuals ``sqrt(w_q) (ref - transformed new)`` and their Jacobian in (A, B).

    Uses ``P_jk(θ; a/A, A b + B) = P_jk(u; a, b)`` with ``u = (θ - B) / A``, so
    ``d/dA = -u/A · d/du`` and ``d/dB = -1/A · d/du``.

    Returns
    -------
    r : (n_res,) float; (n_q,) for Stocking-Lord, (n_q * n_items * K,) for Haebara
    jac : (n_res, 2) float or None
    """
    u = (grid - B) / A
    if not jacobian:
        p = M.probabilities(new_c, u)
        dp = None
    else:
        der = M.log_probability_derivatives(new_c, u)
        p = np.exp(der.log_p)
        dp = p * der.d1  # dP/du, (n_q, n_items, K)
    if method == "stocking_lord":
        k = np.arange(p.shape[-1], dtype=float)
        model = (p @ k).sum(axis=1)  # (n_q,)
        r = sqrt_w * (target - model)
        if dp is None:
            return r, None
        dmodel = (dp @ k).sum(axis=1)
    else:
        model = p
        r = (sqrt_w[:, None, None] * (target - model)).ravel()
        if dp is None:
            return r, None
        dmodel = dp
    # r = sqrt_w (target - model(u)); dr/dA = sqrt_w dmodel u / A; dr/dB = sqrt_w dmodel / A
    sw = sqrt_w.reshape((-1,) + (1,) * (dmodel.ndim - 1))
    uu = u.reshape(sw.shape)
    jac = np.column_stack([(sw * dmodel * uu / A).ravel(), (sw * dmodel / A).ravel()])
    return r, jac


def characteristic_curve_criterion(
    new: ItemParams,
    ref: ItemParams,
    A: float,
    B: float,
    method: str = "stocking_lord",
    *,
    theta_grid: Any = None,
    weights: Any = "normal",
) -> float:
    """Stocking-Lord or Haebara criterion at (A, B) (weights normalised to sum 1).

    Parameters
    ----------
    new, ref : ItemParams
    A, B : float, candidate transformation
    method : 'stocking_lord' or 'haebara'
    theta_grid : None or (n_q,) reference-scale points (default linspace(-4, 4, 41))
    weights : 'normal' (N(0,1) density), 'uniform' or (n_q,) array

    Returns
    -------
    float, ``Σ_q w_q (...)²``
    """
    if method not in ("stocking_lord", "haebara"):
        raise ValueError("method must be 'stocking_lord' or 'haebara'")
    n_c, r_c = common_items(new, ref)
    grid, w = _grid(theta_grid, weights)
    target = _target(method, r_c, grid)
    r, _ = _residuals(method, n_c, target, grid, np.sqrt(w), float(A), float(B), False)
    return float(r @ r)


def _target(method: str, ref_c: ItemParams, grid: np.ndarray) -> np.ndarray:
    if method == "stocking_lord":
        return M.expected_score(ref_c, grid).sum(axis=1)
    return M.probabilities(ref_c, grid)


def _curve_link(
    method: str,
    new: ItemParams,
    ref: ItemParams,
    theta_grid: Any,
    weights: Any,
    fix_a: bool | None,
    start: LinkTransform | None,
) -> LinkTransform:
    n_c, r_c = common_items(new, ref)
    fixed = _auto_fix_a(n_c, r_c, fix_a)
    if start is None:
        try:
            start = mean_sigma(new, ref, fix_a=fix_a)
        except ValueError:  # a single dichotomous common item: no SD
            start = mean_mean(new, ref, fix_a=fix_a)
    grid, w = _grid(theta_grid, weights)
    sqrt_w = np.sqrt(w)
    target = _target(method, r_c, grid)

    if fixed:
        def fun(v: np.ndarray) -> np.ndarray:
            return _residuals(method, n_c, target, grid, sqrt_w, 1.0, v[0], False)[0]

        def jac(v: np.ndarray) -> np.ndarray:
            return _residuals(method, n_c, target, grid, sqrt_w, 1.0, v[0], True)[1][:, 1:]

        x0, bounds = np.array([start.B]), (-np.inf, np.inf)
    else:
        def fun(v: np.ndarray) -> np.ndarray:
            return _residuals(method, n_c, target, grid, sqrt_w, v[0], v[1], False)[0]

        def jac(v: np.ndarray) -> np.ndarray:
            return _residuals(method, n_c, target, grid, sqrt_w, v[0], v[1], True)[1]

        a0 = start.A if np.isfinite(start.A) and start.A > 0 else 1.0
        x0, bounds = np.array([a0, start.B]), ([1e-6, -np.inf], [np.inf, np.inf])
    sol = optimize.least_squares(fun, x0, jac=jac, bounds=bounds, method="trf",
                                 xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=500)
    A, B = (1.0, float(sol.x[0])) if fixed else (float(sol.x[0]), float(sol.x[1]))
    return LinkTransform(A=A, B=B, method=method, n_common=n_c.n_items,
                         criterion=float(2 * sol.cost), converged=bool(sol.status > 0))


def stocking_lord(
    new: ItemParams,
    ref: ItemParams,
    *,
    theta_grid: Any = None,
    weights: Any = "normal",
    fix_a: bool | None = None,
    start: LinkTransform | None = None,
) -> LinkTransform:
    """Stocking-Lord test characteristic curve linking.

    Parameters
    ----------
    new, ref : ItemParams, calibrations sharing item ids (matched by id)
    theta_grid : None or (n_q,), reference-scale points; default linspace(-4, 4, 41)
    weights : 'normal' (default, N(0,1) density), 'uniform', or (n_q,) array
    fix_a : None (auto: A = 1 when all common items are rasch/pcm), True, False
    start : optional starting transformation (default: mean-sigma)

    Returns
    -------
    LinkTransform with ``criterion`` = minimised ``Σ_q w_q (TCC_ref - TCC_new*)²``
    """
    return _curve_link("stocking_lord", new, ref, theta_grid, weights, fix_a, start)


def haebara(
    new: ItemParams,
    ref: ItemParams,
    *,
    theta_grid: Any = None,
    weights: Any = "normal",
    fix_a: bool | None = None,
    start: LinkTransform | None = None,
) -> LinkTransform:
    """Haebara item characteristic curve linking (all categories of every item).

    Parameters and return value as in :func:`stocking_lord`; ``criterion`` is
    ``Σ_q w_q Σ_j Σ_k (P_jk,ref - P_jk,new*)²``.
    """
    return _curve_link("haebara", new, ref, theta_grid, weights, fix_a, start)


def link(new: ItemParams, ref: ItemParams, method: str = "stocking_lord", **kwargs: Any
         ) -> LinkTransform:
    """Dispatch to one of ``LINK_METHODS`` by name."""
    funcs = {"mean_mean": mean_mean, "mean_sigma": mean_sigma,
             "stocking_lord": stocking_lord, "haebara": haebara}
    if method not in funcs:
        raise ValueError(f"unknown linking method {method!r}; expected one of {LINK_METHODS}")
    return funcs[method](new, ref, **kwargs)


def apply_transform(params: ItemParams, transform: LinkTransform) -> ItemParams:
    """Put a calibration on the reference scale.

    ``a / A``, ``A b + B`` (all thresholds), ``c`` unchanged; standard errors
    ``se_a / A``, ``se_b * A``, ``se_c`` unchanged (linking error not added); the
    latent distribution N(μ, σ²) of the new calibration becomes N(A μ + B, (A σ)²)
    on the reference scale.
    When ``A != 1``, 'rasch' items become '1pl' and 'pcm' items become 'gpcm'
    (their common slope is no longer 1).

    Parameters
    ----------
    params : ItemParams (the new calibration, any items)
    transform : LinkTransform

    Returns
    -------
    ItemParams
    """
    A, B = float(transform.A), float(transform.B)
    if not (np.isfinite(A) and A > 0 and np.isfinite(B)):
        raise ValueError(f"invalid transformation A={A}, B={B}")
    model = params.model
    if A != 1.0:
        model = np.array([catalogue.MODELS[str(m)].rescaled for m in model], dtype=str)
    return params.replace(
        model=model,
        a=params.a / A,
        b=A * params.b + B,
        se_a=None if params.se_a is None else params.se_a / A,
        se_b=None if params.se_b is None else params.se_b * A,
        latent_mean=A * params.latent_mean + B,
        latent_sd=A * params.latent_sd,
    )
