"""Differential item functioning: Mantel-Haenszel (with ETS A/B/C), logistic regression,
and the IRT likelihood-ratio test (:func:`lr_dif`, dichotomous and polytomous items).

Both procedures compare a *reference* group and a *focal* group of persons
matched on ability.  They need no item parameters: only the response matrix
(persons x items, NaN = not administered), the group membership and,
optionally, a matching variable.

Scope
-----
* Mantel-Haenszel and logistic DIF: dichotomous items only (responses 0/1).  An item
  with a response >= 2 is reported with NaN statistics and ``reason = "polytomous item:
  not supported"``; generalised Mantel / ordinal logistic DIF are not implemented.
  Polytomous items: :func:`lr_dif` (IRT likelihood ratio, any model of the catalogue).
* Missing data: each item uses the persons who answered it.  The default
  matching variable is the number-correct score over the items a person
  answered (studied item included, as recommended by Holland & Thayer, 1988).
  With sparse adaptive (CAT) data raw scores are not comparable across persons:
  pass an ability estimate (e.g. EAP theta) as ``matching`` instead.

Sign convention (ETS): ``delta_mh = -2.35 ln(alpha_mh)``; negative values mean
the item favours the reference group (is harder for matched focal persons).
In logistic DIF the group coefficient is positive when the item favours the
focal group.

References
----------
Holland, P. W., & Thayer, D. T. (1988). Differential item performance and the
Mantel-Haenszel procedure.  Phillips, A., & Holland, P. W. (1987). Estimators
of the variance of the Mantel-Haenszel log-odds-ratio estimate.  Zwick, R.
(2012). A review of ETS differential item functioning assessment procedures
(ETS RR-12-08).  Thissen, D., Steinberg, L., & Wainer, H. (1988, 1993). Detection of
differential item functioning using the parameters of item response models.  Meade, A. W.
(2010). A taxonomy of effect size measures for the differential functioning of items and
scales.  Benjamini, Y., & Hochberg, Y. (1995). Controlling the false discovery rate.
Swaminathan, H., & Rogers, H. J. (1990). Detecting DIF using
logistic regression procedures.  Jodoin, M. G., & Gierl, M. J. (2001).
Evaluating type I error and power rates using an effect size measure with
the logistic regression procedure for DIF detection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import chdtrc, expit

from scoring import catalogue
from scoring.calibration import Priors, calibrate
from scoring.models import expected_score

__all__ = [
    "LRDIFResult",
    "LogisticDIFResult",
    "MHResult",
    "benjamini_hochberg",
    "ets_classification",
    "jodoin_gierl_classification",
    "logistic_dif",
    "logistic_irls",
    "lr_dif",
    "mantel_haenszel",
]

# Delta scale: -2.35 ln(alpha) (Holland & Thayer, 1988).
_DELTA_SCALE = 2.35
# Jodoin & Gierl (2001) Nagelkerke delta R^2 cut-offs (negligible / moderate / large).
_JG_MODERATE = 0.035
_JG_LARGE = 0.070


# --------------------------------------------------------------------------
# Shared input handling
# --------------------------------------------------------------------------



def _checked_inputs(responses: Any, focal_mask: Any) -> tuple[np.ndarray, np.ndarray]:
    """The responses as a 2-D float array and the focal mask as booleans, one per person
    (ValueError naming what is wrong)."""
    x = np.asarray(responses, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"responses must be 2-D persons x items, got shape {x.shape}")
    focal = np.asarray(focal_mask)
    if focal.shape != (x.shape[0],):
        raise ValueError(f"focal_mask must have shape ({x.shape[0]},), got {focal.shape}")
    if focal.dtype != bool:
        if not np.all(np.isin(focal, (0, 1))):
            raise ValueError("focal_mask must be boolean (True = focal, False = reference)")
        focal = focal.astype(bool)
    return x, focal

def _prepare(
    responses: Any, focal_mask: Any, item_ids: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate inputs.

    Returns
    -------
    x : (n_persons, n_items) float, NaN = not administered
    focal : (n_persons,) bool
    ids : (n_items,) str
    dich : (n_items,) bool, items whose observed responses are all 0/1
    reason : (n_items,) object, "" or why an item is not analysed
    """
    x, focal = _checked_inputs(responses, focal_mask)
    n_items = x.shape[1]
    seen = ~np.isnan(x)
    with np.errstate(invalid="ignore"):
        bad = seen & ((x < 0) | (x != np.floor(x)))
    if np.any(bad):
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"invalid response {x[i, j]!r} at person row {i}, item column {j}")
    ids = (np.arange(n_items).astype(str) if item_ids is None
           else np.asarray(item_ids).astype(str))
    if ids.shape != (n_items,):
        raise ValueError(f"item_ids must have shape ({n_items},), got {ids.shape}")
    dich = ~np.any(seen & (np.nan_to_num(x) > 1), axis=0)
    reason = np.full(n_items, "", dtype=object)
    reason[~dich] = "polytomous item: not supported (dichotomous items only)"
    return x, focal, ids, dich, reason


def _total_score(x: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
    """Sum over answered items (optionally a subset of columns); NaN if none answered.

    Returns (n_persons,) float.
    """
    sub = x if items is None else x[:, items]
    answered = ~np.isnan(sub)
    score = np.where(answered, sub, 0.0).sum(axis=1)
    return np.where(answered.any(axis=1), score, np.nan)


# --------------------------------------------------------------------------
# Mantel-Haenszel
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MHResult:
    """Mantel-Haenszel DIF statistics, one entry per item (aligned with ``item_ids``).

    Attributes
    ----------
    item_ids : (n_items,) str
    alpha_mh : (n_items,) float, common odds ratio (reference vs focal odds of a
        correct answer); > 1 favours the reference group.
    delta_mh : (n_items,) float, ETS delta scale ``-2.35 ln(alpha_mh)``.
    chi2 : (n_items,) float, MH chi-square (1 df), continuity-corrected by default.
    p : (n_items,) float, upper-tail p-value of ``chi2``.
    se_delta : (n_items,) float, ``2.35 * SE(ln alpha_mh)`` (Robins-Breslow-Greenland /
        Phillips-Holland variance).
    ets_class : (n_items,) str, 'A', 'B', 'C' or '' (not computed, see ``reason``).
    n_ref, n_focal : (n_items,) int, persons of each group used for the item.
    n_strata : (n_items,) int, strata with both groups present (and >= 2 persons).
    reason : (n_items,) str, '' or why the statistics are NaN.
    anchor : (n_items,) bool, items used in the final matching score (all True
        unless ``purify``).
    """

    item_ids: np.ndarray
    alpha_mh: np.ndarray
    delta_mh: np.ndarray
    chi2: np.ndarray
    p: np.ndarray
    se_delta: np.ndarray
    ets_class: np.ndarray
    n_ref: np.ndarray
    n_focal: np.ndarray
    n_strata: np.ndarray
    reason: np.ndarray
    anchor: np.ndarray


def ets_classification(
    delta: Any, se_delta: Any, chi2_p: Any, alpha: float = 0.05
) -> np.ndarray:
    """ETS A/B/C DIF categories (Zwick, 2012; Dorans & Holland, 1993).

    * **A** (negligible): ``|delta| < 1`` or the MH chi-square is not significant
      (``chi2_p >= alpha``).
    * **C** (large): ``|delta| >= 1.5`` and ``|delta|`` is significantly greater
      than 1, i.e. ``(|delta| - 1) / se_delta > z_{1-alpha}`` (one-sided,
      1.645 at alpha = .05).
    * **B** (moderate): otherwise.

    Parameters
    ----------
    delta, se_delta, chi2_p : (n_items,) float
    alpha : float, significance level of both tests

    Returns
    -------
    (n_items,) str array; '' where ``delta`` or ``chi2_p`` is NaN.
    """
    delta = np.asarray(delta, dtype=float)
    se = np.asarray(se_delta, dtype=float)
    p = np.asarray(chi2_p, dtype=float)
    z_crit = stats.norm.isf(alpha)
    size = np.abs(delta)
    with np.errstate(invalid="ignore", divide="ignore"):
        is_a = (size < 1.0) | (p >= alpha)
        is_c = (size >= 1.5) & ((size - 1.0) / se > z_crit)
    out = np.where(is_a, "A", np.where(is_c, "C", "B")).astype(object)
    out[np.isnan(delta) | np.isnan(p)] = ""
    return out.astype(str)


def _strata(matching: np.ndarray, n_bins: int | None) -> np.ndarray:
    """Stratum index per person, (n_persons,) int, -1 where matching is NaN.

    Thin matching (one stratum per distinct value) when ``n_bins`` is None and
    the matching variable is integer valued; otherwise ``n_bins`` quantile strata
    (default 10).
    """
    ok = np.isfinite(matching)
    out = np.full(matching.shape, -1, dtype=np.int64)
    if not ok.any():
        return out
    vals = matching[ok]
    integer = np.all(vals == np.round(vals))
    if n_bins is None and integer:
        _, out[ok] = np.unique(vals, return_inverse=True)
        return out
    bins = 10 if n_bins is None else int(n_bins)
    edges = np.unique(np.quantile(vals, np.linspace(0, 1, bins + 1)[1:-1]))
    out[ok] = np.searchsorted(edges, vals, side="right")
    return out


def _mh_core(
    x: np.ndarray,
    focal: np.ndarray,
    strata: np.ndarray,
    items: np.ndarray,
    continuity: bool,
) -> dict[str, np.ndarray]:
    """MH statistics for ``items`` given per-item strata.

    Parameters
    ----------
    x : (n_persons, n_items) float
    focal : (n_persons,) bool
    strata : (n_persons, n_sel) int, stratum of each person for each selected item (-1 = none)
    items : (n_sel,) int, column indices

    Returns
    -------
    dict of (n_sel,) arrays: alpha, delta, chi2, p, se_delta, n_ref, n_focal, n_strata
    """
    xs = x[:, items]
    use = ~np.isnan(xs) & (strata >= 0)
    n_sel = len(items)
    n_str = max(int(strata.max()) + 1, 1) if strata.size else 1
    flat = (np.arange(n_sel)[None, :] * n_str + strata)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(flat[mask], minlength=n_sel * n_str).reshape(n_sel, n_str).astype(float)

    ref = ~focal[:, None]
    correct = xs == 1
    a = count(use & ref & correct)  # reference, correct
    b = count(use & ref & ~correct)  # reference, incorrect
    c = count(use & ~ref & correct)  # focal, correct
    d = count(use & ~ref & ~correct)  # focal, incorrect
    t = a + b + c + d
    n_r, n_f = a + b, c + d
    m1, m0 = a + c, b + d
    ok = (t >= 2) & (n_r > 0) & (n_f > 0)
    tt = np.where(ok, t, 1.0)
    r_k = np.where(ok, a * d / tt, 0.0)
    s_k = np.where(ok, b * c / tt, 0.0)
    p_k = np.where(ok, (a + d) / tt, 0.0)
    q_k = np.where(ok, (b + c) / tt, 0.0)
    ea = np.where(ok, n_r * m1 / tt, 0.0)
    va = np.where(ok, n_r * n_f * m1 * m0 / (tt * tt * np.where(ok, t - 1, 1.0)), 0.0)
    r_sum, s_sum = r_k.sum(axis=1), s_k.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = r_sum / s_sum
        var_log = ((p_k * r_k).sum(axis=1) / (2 * r_sum**2)
                   + (p_k * s_k + q_k * r_k).sum(axis=1) / (2 * r_sum * s_sum)
                   + (q_k * s_k).sum(axis=1) / (2 * s_sum**2))
        dev = np.abs((np.where(ok, a, 0.0) - ea).sum(axis=1))
        if continuity:
            dev = np.maximum(dev - 0.5, 0.0)
        var_a = va.sum(axis=1)
        chi2 = np.where(var_a > 0, dev**2 / var_a, np.nan)
    informative = (r_sum > 0) & (s_sum > 0) & (var_a > 0)
    alpha = np.where(informative, alpha, np.nan)
    delta = -_DELTA_SCALE * np.log(alpha)
    se_delta = np.where(informative, _DELTA_SCALE * np.sqrt(var_log), np.nan)
    chi2 = np.where(informative, chi2, np.nan)
    return {
        "alpha": alpha,
        "delta": delta,
        "chi2": chi2,
        "p": stats.chi2.sf(chi2, 1),
        "se_delta": se_delta,
        "n_ref": (use & ref).sum(axis=0),
        "n_focal": (use & ~ref).sum(axis=0),
        "n_strata": ok.sum(axis=1),
    }


def mantel_haenszel(
    responses: Any,
    focal_mask: Any,
    matching: Any = None,
    *,
    item_ids: Any = None,
    n_bins: int | None = None,
    purify: bool = False,
    max_purify_iter: int = 10,
    continuity: bool = True,
    alpha: float = 0.05,
) -> MHResult:
    """Mantel-Haenszel DIF for each dichotomous item, with ETS A/B/C categories.

    For item j and stratum k let A, B (C, D) be the reference (focal) persons
    answering correctly / incorrectly, T the stratum size.  Then
    ``alpha_MH = Σ A D / T / Σ B C / T``, ``delta_MH = -2.35 ln alpha_MH`` and
    ``chi2 = (|Σ A - Σ E[A]| - 0.5)² / Σ Var[A]`` with
    ``E[A] = n_R m_1 / T`` and ``Var[A] = n_R n_F m_1 m_0 / (T² (T - 1))``
    (the 0.5 is floored at |.| = 0).  Strata with fewer than 2 persons or one group
    absent carry no information and are skipped.

    Parameters
    ----------
    responses : (n_persons, n_items) float, 0/1, NaN = not administered
    focal_mask : (n_persons,) bool, True = focal group, False = reference group
    matching : None or (n_persons,) float
        None: number-correct over the items each person answered (studied item
        included).  Otherwise an external matching variable (e.g. theta); NaN
        excludes the person.
    item_ids : optional (n_items,) labels for the result
    n_bins : None or int
        None: thin matching (one stratum per score) for integer matching
        variables, 10 quantile strata for continuous ones.  An int forces that
        many quantile strata (thick matching).
    purify : bool
        Two-stage-and-beyond criterion refinement (only with the default total
        score): items classified B or C are dropped from the matching score
        (the studied item itself is always included) and the analysis is
        repeated until the flagged set is stable or ``max_purify_iter`` rounds.
    continuity : bool, apply the 0.5 continuity correction to ``chi2``
    alpha : float, significance level for the ETS categories

    Returns
    -------
    MHResult
    """
    x, focal, ids, dich, reason = _prepare(responses, focal_mask, item_ids)
    n_persons, n_items = x.shape
    items = np.flatnonzero(dich)
    anchor = np.ones(n_items, dtype=bool)  # polytomous items count in the matching score
    external = matching is not None
    if external:
        match = np.asarray(matching, dtype=float)
        if match.shape != (n_persons,):
            raise ValueError(f"matching must have shape ({n_persons},), got {match.shape}")
        if purify:
            raise ValueError("purify applies to the total-score matching only (matching=None)")

    def run(anchor_mask: np.ndarray) -> dict[str, np.ndarray]:
        if external:
            s = _strata(match, n_bins)
            strata = np.repeat(s[:, None], len(items), axis=1)
        else:
            base = _total_score(x, np.flatnonzero(anchor_mask))
            base = np.nan_to_num(base, nan=0.0)
            # Studied item added back when it is not an anchor.
            add = np.where(anchor_mask[items][None, :], 0.0, np.nan_to_num(x[:, items]))
            score = base[:, None] + add
            answered_any = (~np.isnan(x[:, anchor_mask])).any(axis=1)[:, None] | (
                ~np.isnan(x[:, items]))
            score = np.where(answered_any, score, np.nan)
            if not len(items):
                strata = np.zeros((n_persons, 0), dtype=np.int64)
            elif anchor_mask[items].all():  # one shared matching score
                strata = np.repeat(_strata(score[:, 0], n_bins)[:, None], len(items), axis=1)
            else:
                strata = np.empty(score.shape, dtype=np.int64)
                for col in range(len(items)):
                    strata[:, col] = _strata(score[:, col], n_bins)
        return _mh_core(x, focal, strata, items, continuity)

    res = run(anchor)
    if purify and not external:
        for _ in range(max_purify_iter):
            cls = ets_classification(res["delta"], res["se_delta"], res["p"], alpha)
            new_anchor = np.ones(n_items, dtype=bool)
            new_anchor[items[np.isin(cls, ("B", "C"))]] = False
            if np.array_equal(new_anchor, anchor) or not new_anchor.any():
                break
            anchor = new_anchor
            res = run(anchor)

    def full(values: np.ndarray, fill: Any = np.nan, dtype: Any = float) -> np.ndarray:
        out = np.full(n_items, fill, dtype=dtype)
        out[items] = values
        return out

    delta, se_delta, p = full(res["delta"]), full(res["se_delta"]), full(res["p"])
    uninformative = dich & np.isnan(delta)
    reason[uninformative] = "no informative strata (both groups and both responses needed)"
    return MHResult(
        item_ids=ids,
        alpha_mh=full(res["alpha"]),
        delta_mh=delta,
        chi2=full(res["chi2"]),
        p=p,
        se_delta=se_delta,
        ets_class=ets_classification(delta, se_delta, p, alpha),
        n_ref=full(res["n_ref"], 0, np.int64),
        n_focal=full(res["n_focal"], 0, np.int64),
        n_strata=full(res["n_strata"], 0, np.int64),
        reason=reason.astype(str),
        anchor=anchor,
    )


# --------------------------------------------------------------------------
# Logistic regression
# --------------------------------------------------------------------------


def logistic_irls(
    X: Any,
    y: Any,
    weights: Any = None,
    *,
    max_iter: int = 50,
    tol: float = 1e-10,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Many logistic regressions sharing one design matrix, by Newton-Raphson (IRLS).

    Fit ``m`` independent models ``logit P(y_f = 1) = X β_f``; fit ``f`` uses the
    persons with ``weights[f] > 0`` (0/1 weights express missing data; other
    values are frequency weights).  All fits are advanced together: gradients
    and Hessians are ``(m, n) @ (n, p·p)`` matrix products.  Each Newton step is
    halved until the log-likelihood does not decrease (step-halving guards
    against overshooting; under complete separation the fit does not converge
    and ``converged`` is False).

    Parameters
    ----------
    X : (n, p) float, shared design matrix
    y : (m, n) float in {0, 1} (values where the weight is 0 are ignored, may be NaN)
    weights : None or (m, n) float >= 0
    max_iter : int, Newton iterations
    tol : float, convergence when max |Δβ| < tol or the Newton decrement < tol²

    Returns
    -------
    coef : (m, p) float
    loglik : (m,) float, maximised log-likelihood
    converged : (m,) bool
    """
    X = np.asarray(X, dtype=float)
    y = np.atleast_2d(np.asarray(y, dtype=float))
    m, n = y.shape
    p = X.shape[1]
    w = np.ones((m, n)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
    w = np.where(np.isnan(y), 0.0, w)
    y = np.nan_to_num(y)
    xx = (X[:, :, None] * X[:, None, :]).reshape(n, p * p)  # (n, p²)
    beta = np.zeros((m, p))

    ll = _loglik_rows(beta, X, y, w)
    converged = np.zeros(m, dtype=bool)
    for _ in range(max_iter):
        active = ~converged
        if not active.any():
            break
        eta = beta[active] @ X.T
        mu = expit(eta)
        wa = w[active]
        grad = (wa * (y[active] - mu)) @ X  # (m_a, p)
        hess = ((wa * mu * (1 - mu)) @ xx).reshape(-1, p, p)
        hess += 1e-12 * np.eye(p)[None]  # keeps singular (empty) fits solvable
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        decrement = np.einsum("ij,ij->i", grad, step)
        b_old, ll_old = beta[active], ll[active]
        scale = np.ones(active.sum())
        for _halving in range(30):
            b_new = b_old + scale[:, None] * step
            ll_new = _loglik_rows(b_new, X, y[active], wa)
            worse = ll_new < ll_old - 1e-12 * (1 + np.abs(ll_old))
            if not worse.any():
                break
            scale = np.where(worse, scale / 2, scale)
        beta[active], ll[active] = b_new, ll_new
        done = (np.max(np.abs(scale[:, None] * step), axis=1) < tol) | (decrement < tol**2)
        idx = np.flatnonzero(active)
        converged[idx[done]] = True
    return beta, ll, converged


def _loglik_rows(b: np.ndarray, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted Bernoulli log-likelihood of each fit, (m,) for b (m, p), y and w (m, n)."""
    eta = b @ X.T
    # y log σ(η) + (1 - y) log σ(-η) = y η - log(1 + e^η)
    return np.sum(w * (y * eta - np.logaddexp(0.0, eta)), axis=1)


def jodoin_gierl_classification(delta_r2: Any, p: Any, alpha: float = 0.05) -> np.ndarray:
    """Jodoin & Gierl (2001) categories from Nagelkerke ΔR² and the chi-square p-value.

    * 'A' (negligible): ``ΔR² < 0.035`` or not significant (``p >= alpha``)
    * 'B' (moderate): ``0.035 <= ΔR² < 0.070`` and significant
    * 'C' (large): ``ΔR² >= 0.070`` and significant

    Returns (n_items,) str; '' where an input is NaN.
    """
    r2 = np.asarray(delta_r2, dtype=float)
    p = np.asarray(p, dtype=float)
    sig = p < alpha
    out = np.where(~sig | (r2 < _JG_MODERATE), "A", np.where(r2 < _JG_LARGE, "B", "C"))
    out = out.astype(object)
    out[np.isnan(r2) | np.isnan(p)] = ""
    return out.astype(str)


@dataclass(frozen=True, eq=False)
class LogisticDIFResult:
    """Logistic-regression DIF (Swaminathan & Rogers, 1990), one entry per item.

    Nested models per item, with S the (centred, scaled) matching variable and G
    the focal indicator:  M0: ``1 + S``;  M1: ``1 + S + G``;  M2: ``1 + S + G + S·G``.

    Attributes
    ----------
    item_ids : (n_items,) str
    uniform_chi2, uniform_p : (n_items,) float, LR test M1 vs M0 (1 df)
    nonuniform_chi2, nonuniform_p : (n_items,) float, LR test M2 vs M1 (1 df)
    total_chi2, total_p : (n_items,) float, LR test M2 vs M0 (2 df)
    delta_r2 : (n_items,) float, Nagelkerke R²(M2) - R²(M0)
    delta_r2_uniform : (n_items,) float, R²(M1) - R²(M0)
    delta_r2_nonuniform : (n_items,) float, R²(M2) - R²(M1)
    classification : (n_items,) str, Jodoin-Gierl 'A'/'B'/'C' from ``delta_r2`` and
        ``total_p``; '' when not computed
    group_coef : (n_items,) float, G coefficient of M1 (log-odds; > 0 favours focal)
    interaction_coef : (n_items,) float, S·G coefficient of M2 per unit of the
        original matching variable
    n_ref, n_focal : (n_items,) int
    converged : (n_items,) bool, all three fits converged
    reason : (n_items,) str, '' or why the statistics are NaN
    """

    item_ids: np.ndarray
    uniform_chi2: np.ndarray
    uniform_p: np.ndarray
    nonuniform_chi2: np.ndarray
    nonuniform_p: np.ndarray
    total_chi2: np.ndarray
    total_p: np.ndarray
    delta_r2: np.ndarray
    delta_r2_uniform: np.ndarray
    delta_r2_nonuniform: np.ndarray
    classification: np.ndarray
    group_coef: np.ndarray
    interaction_coef: np.ndarray
    n_ref: np.ndarray
    n_focal: np.ndarray
    converged: np.ndarray
    reason: np.ndarray


def _nagelkerke(ll_model: np.ndarray, ll_null: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Nagelkerke R² = (1 - exp(2 (LL0 - LLm) / n)) / (1 - exp(2 LL0 / n))."""
    with np.errstate(invalid="ignore", divide="ignore"):
        cox_snell = -np.expm1(2.0 * (ll_null - ll_model) / n)
        max_cs = -np.expm1(2.0 * ll_null / n)
        return cox_snell / max_cs


def logistic_dif(
    responses: Any,
    focal_mask: Any,
    matching: Any = None,
    *,
    item_ids: Any = None,
    alpha: float = 0.05,
    max_iter: int = 50,
) -> LogisticDIFResult:
    """Logistic-regression DIF for each dichotomous item (likelihood-ratio tests).

    Parameters
    ----------
    responses : (n_persons, n_items) float, 0/1, NaN = not administered
    focal_mask : (n_persons,) bool, True = focal group
    matching : None or (n_persons,) float
        None: number-correct over answered items (studied item included).
        Otherwise e.g. a theta estimate; persons with NaN are excluded.
    item_ids : optional (n_items,) labels
    alpha : float, significance level for the classification
    max_iter : int, Newton iterations per model

    Returns
    -------
    LogisticDIFResult

    Notes
    -----
    The three models of all items are fitted together by :func:`logistic_irls`
    (one shared design matrix, per-item 0/1 weights for missing responses).
    The matching variable is centred and scaled over the persons analysed
    before fitting; likelihoods (hence tests and R²) are unaffected, and the
    reported interaction coefficient is converted back to the original units.
    An item whose responses are constant in the analysed sample, or that lacks
    one of the groups, gets NaN and a reason.
    """
    x, focal, ids, dich, reason = _prepare(responses, focal_mask, item_ids)
    n_persons, n_items = x.shape
    match = _total_score(x) if matching is None else np.asarray(matching, dtype=float)
    if match.shape != (n_persons,):
        raise ValueError(f"matching must have shape ({n_persons},), got {match.shape}")
    keep = np.isfinite(match)
    items = np.flatnonzero(dich)

    def full(values: np.ndarray, fill: Any = np.nan, dtype: Any = float) -> np.ndarray:
        out = np.full(n_items, fill, dtype=dtype)
        out[items] = values
        return out

    xs = x[keep][:, items].T  # (m, n)
    g = focal[keep].astype(float)
    s_raw = match[keep]
    w = (~np.isnan(xs)).astype(float)
    n_used = w.sum(axis=1)
    n_ref = (w * (1 - g)).sum(axis=1)
    n_foc = (w * g).sum(axis=1)
    n_correct = np.nansum(xs, axis=1)
    centre = s_raw.mean() if s_raw.size else 0.0
    scale = s_raw.std() if s_raw.size and s_raw.std() > 0 else 1.0
    s = (s_raw - centre) / scale
    ones = np.ones_like(s)
    designs = [np.column_stack(cols) for cols in
               ([ones, s], [ones, s, g], [ones, s, g, s * g])]
    lls, coefs, conv = [], [], []
    for design in designs:
        coef, ll, ok = logistic_irls(design, xs, w, max_iter=max_iter)
        lls.append(ll)
        coefs.append(coef)
        conv.append(ok)
    ll0, ll1, ll2 = lls
    with np.errstate(divide="ignore", invalid="ignore"):
        pbar = n_correct / n_used
        ll_null = n_used * (pbar * np.log(pbar) + (1 - pbar) * np.log1p(-pbar))
    degenerate = (n_ref == 0) | (n_foc == 0) | (n_correct == 0) | (n_correct == n_used)
    r2 = [np.where(degenerate, np.nan, _nagelkerke(ll, ll_null, n_used)) for ll in lls]
    u_chi2 = np.where(degenerate, np.nan, np.maximum(2 * (ll1 - ll0), 0.0))
    n_chi2 = np.where(degenerate, np.nan, np.maximum(2 * (ll2 - ll1), 0.0))
    t_chi2 = np.where(degenerate, np.nan, np.maximum(2 * (ll2 - ll0), 0.0))
    delta_r2 = r2[2] - r2[0]
    total_p = stats.chi2.sf(t_chi2, 2)

    sub_reason = np.full(len(items), "", dtype=object)
    sub_reason[degenerate] = "needs both groups and both responses among the persons analysed"
    reason[items] = sub_reason
    converged = conv[0] & conv[1] & conv[2]
    return LogisticDIFResult(
        item_ids=ids,
        uniform_chi2=full(u_chi2),
        uniform_p=full(stats.chi2.sf(u_chi2, 1)),
        nonuniform_chi2=full(n_chi2),
        nonuniform_p=full(stats.chi2.sf(n_chi2, 1)),
        total_chi2=full(t_chi2),
        total_p=full(total_p),
        delta_r2=full(delta_r2),
        delta_r2_uniform=full(r2[1] - r2[0]),
        delta_r2_nonuniform=full(r2[2] - r2[1]),
        classification=full(jodoin_gierl_classification(delta_r2, total_p, alpha), "", object
                            ).astype(str),
        group_coef=full(np.where(degenerate, np.nan, coefs[1][:, 2])),
        interaction_coef=full(np.where(degenerate, np.nan, coefs[2][:, 3] / scale)),
        n_ref=full(n_ref, 0, np.int64),
        n_focal=full(n_foc, 0, np.int64),
        converged=full(converged & ~degenerate, False, bool),
        reason=reason.astype(str),
    )


# --------------------------------------------------------------------------
# IRT likelihood-ratio DIF (dichotomous and polytomous items)
# --------------------------------------------------------------------------


def benjamini_hochberg(p: Any) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), NaN kept as NaN.

    ``p_adj[(i)] = min_{k >= i} min(1, m p_(k) / k)`` over the ``m`` finite p-values.
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size:
        order = ok[np.argsort(p[ok])]
        m = order.size
        adj = p[order] * m / np.arange(1, m + 1)
        out[order] = np.minimum(1.0, np.minimum.accumulate(adj[::-1])[::-1])
    return out


@dataclass(frozen=True, eq=False)
class LRDIFResult:
    """IRT likelihood-ratio DIF, one entry per item (aligned with ``item_ids``).

    Attributes
    ----------
    item_ids : (n_items,) str
    model : (n_items,) str, canonical model of each item
    chi2 : (n_items,) float, ``2 (loglik_free - loglik_constrained)`` (NaN if not studied)
    df : (n_items,) int, parameters of the item freed in the focal group
    p, p_adjusted : (n_items,) float, upper-tail chi-square p-value and its
        Benjamini-Hochberg adjustment over the studied items
    flagged : (n_items,) bool, ``p_adjusted < alpha``
    score_difference : (n_items,) float, signed expected-score difference
        ``E[E_focal(X|θ) - E_ref(X|θ)]`` over the focal group's ability distribution (free
        model); negative = the item is harder for matched focal persons (Meade's SIDS)
    unsigned_difference : (n_items,) float, ``E|E_focal(X|θ) - E_ref(X|θ)|`` (UIDS)
    loglik_constrained, loglik_free : (n_items,) float, the two fits' log-likelihoods
    n_ref, n_focal : (n_items,) int, responses to the item in each group
    studied, anchor : (n_items,) bool
    converged : (n_items,) bool, both fits converged
    reason : (n_items,) str, '' or why an item has no statistics (or a note on them)
    focal_mean, focal_sd : float, focal latent mean and SD of the all-constrained (or
        anchors-only) fit, on the reference N(0, 1) scale
    """

    item_ids: np.ndarray
    model: np.ndarray
    chi2: np.ndarray
    df: np.ndarray
    p: np.ndarray
    p_adjusted: np.ndarray
    flagged: np.ndarray
    score_difference: np.ndarray
    unsigned_difference: np.ndarray
    loglik_constrained: np.ndarray
    loglik_free: np.ndarray
    n_ref: np.ndarray
    n_focal: np.ndarray
    studied: np.ndarray
    anchor: np.ndarray
    converged: np.ndarray
    reason: np.ndarray
    focal_mean: float
    focal_sd: float


_REF, _FOC = "reference", "focal"


def _split(x: np.ndarray, focal: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``x`` with each of ``cols`` replaced by a reference and a focal copy (NaN for the
    other group); split columns go to the end, reference copies first, in ``cols`` order."""
    keep = np.setdiff1d(np.arange(x.shape[1]), cols)
    ref = np.where(focal[:, None], np.nan, x[:, cols])
    foc = np.where(focal[:, None], x[:, cols], np.nan)
    return np.hstack([x[:, keep], ref, foc])


def lr_dif(
    responses: Any,
    model: str | Any,
    focal_mask: Any,
    anchors: Any = None,
    *,
    items: Any = None,
    item_ids: Any = None,
    alpha: float = 0.05,
    n_quad: int = 41,
    max_iter: int = 500,
    tol: float = 1e-4,
    min_responses: int = 10,
    priors: Priors | None = None,
) -> LRDIFResult:
    """IRT likelihood-ratio DIF of each studied item (Thissen, Steinberg & Wainer).

    Two-group calibrations (:func:`scoring.calibration.calibrate` with ``groups``: the
    reference group N(0, 1) (mean 0 and SD estimated for rasch/pcm), the focal group's
    mean and SD free) are compared for each studied item:

    * constrained: the studied item's parameters are equal in both groups;
    * free: the studied item is split into two columns, one answered by the reference
      group only and one by the focal group only, so its parameters are free in the focal
      group (the split-item trick).

    The *anchors* are constrained equal in both fits and carry the scale.  By default
    (``anchors=None``) every other item is an anchor: one all-constrained fit and one free
    fit per item.  With ``anchors`` given, non-anchor items other than the studied one are
    split (free) in both fits: one free fit with every non-anchor split, and one
    constrained fit per studied item.  ``chi2 = 2 (loglik_free - loglik_constrained)`` on
    ``df`` = the item's number of parameters (:meth:`IRTModel.n_parameters`); p-values by
    ``scipy.special.chdtrc``, adjusted over the studied items by Benjamini-Hochberg.

    Parameters
    ----------
    responses : (n_persons, n_items) float, categories 0..K-1, NaN = not administered
    model : a model name of :mod:`scoring.catalogue` or one per item
    focal_mask : (n_persons,) bool, True = focal group
    anchors : None, or item indices / item ids (with ``item_ids``) / a boolean mask
    items : items to study (same forms); default every non-anchor item (every item
        without anchors)
    item_ids : optional (n_items,) labels
    alpha : FDR level of ``flagged``
    n_quad, max_iter, tol, min_responses, priors : passed to :func:`calibrate` (default
        priors: its Beta(5, 17) on 3PL ``c``; ``Priors(guessing_beta=None)`` for plain ML)

    Returns
    -------
    LRDIFResult

    Notes
    -----
    An item with a category nobody in one group used (its copy there would have fewer
    categories: the models would not be nested), or whose two-group fits fail (too few
    responses in a group), gets NaN statistics and a reason.  With 3PL items the
    Beta prior on ``c`` of :class:`Priors` is used in both fits, so the statistic is a
    likelihood ratio of posterior-mode estimates and can come out negative (the free fit
    carries two priors); it is then set to 0 with a note (also when a fit stops short).
    Rasch and PCM items: the reference SD is estimated, so the scale is that of the
    constrained fit.
    """
    x, focal = _checked_inputs(responses, focal_mask)
    n_items = x.shape[1]
    if focal.all() or not focal.any():
        raise ValueError("lr_dif needs persons in both the focal and the reference group")
    ids = (np.array([f"item{j + 1}" for j in range(n_items)]) if item_ids is None
           else np.asarray(item_ids).astype(str))
    if ids.shape != (n_items,):
        raise ValueError(f"item_ids must have shape ({n_items},), got {ids.shape}")
    models = np.array(catalogue.canonical_names(
        [model] * n_items if isinstance(model, str) else list(model)))
    if models.shape != (n_items,):
        raise ValueError(f"model must be one name or {n_items} names")

    def as_mask(spec: Any, what: str) -> np.ndarray:
        mask = np.zeros(n_items, dtype=bool)
        if spec is None:
            return mask
        arr = np.asarray(spec)
        if arr.dtype == bool:
            if arr.shape != (n_items,):
                raise ValueError(f"{what} mask must have shape ({n_items},)")
            return arr.copy()
        pos = {str(i): j for j, i in enumerate(ids)}
        for value in np.atleast_1d(arr).tolist():
            if isinstance(value, str):
                if value not in pos:
                    raise ValueError(f"{what}: unknown item {value!r}")
                mask[pos[value]] = True
            else:
                mask[int(value)] = True
        return mask

    anchor = as_mask(anchors, "anchors")
    studied = as_mask(items, "items") if items is not None else ~anchor
    if np.any(studied & anchor):
        raise ValueError("an anchor cannot be studied: "
                         + ", ".join(ids[studied & anchor].tolist()))
    if anchors is not None and not anchor.any():
        raise ValueError("anchors is empty: name at least one anchor item (or pass None)")
    if anchors is None:
        anchor = np.ones(n_items, dtype=bool)   # every other item constrains
    groups = np.where(focal, _FOC, _REF)
    seen = ~np.isnan(x)
    n_ref = (seen & ~focal[:, None]).sum(axis=0)
    n_foc = (seen & focal[:, None]).sum(axis=0)

    def fit(split_cols: np.ndarray):
        """Calibrate with ``split_cols`` free in the focal group (None on failure)."""
        split_cols = np.asarray(split_cols, dtype=int)
        keep = np.setdiff1d(np.arange(n_items), split_cols)
        data = _split(x, focal, split_cols)
        names = list(ids[keep]) + [f"{ids[j]}@ref" for j in split_cols] + [
            f"{ids[j]}@focal" for j in split_cols]
        mods = list(models[keep]) + list(models[split_cols]) * 2
        try:
            res = calibrate(data, mods, groups=groups, reference_group=_REF, n_quad=n_quad,
                            max_iter=max_iter, tol=tol, item_ids=names,
                            min_responses=min_responses, compute_se=False,
                            priors=priors)
        except ValueError as exc:
            return None, str(exc)
        return res, ""

    free_others = np.flatnonzero(~anchor)          # non-anchors (anchors given): split
    chi2 = np.full(n_items, np.nan)
    ll_con = np.full(n_items, np.nan)
    ll_free = np.full(n_items, np.nan)
    sids = np.full(n_items, np.nan)
    uids = np.full(n_items, np.nan)
    df = np.zeros(n_items, dtype=np.int64)
    conv = np.zeros(n_items, dtype=bool)
    reason = np.full(n_items, "", dtype=object)
    reason[~studied] = "anchor (not studied)" if anchors is not None else "not studied"

    # anchors given: the fit with every non-anchor split is the free fit of each studied
    # item; anchors None: the all-constrained fit is each item's constrained fit
    base, why = fit(free_others)
    if base is None:
        raise ValueError(f"the two-group calibration with the anchors only constrained "
                         f"failed: {why}")
    foc_index = list(base.group_labels).index(_FOC)
    focal_mean = float(base.group_means[foc_index])
    focal_sd = float(base.group_sds[foc_index])
    for j in np.flatnonzero(studied):
        unused = _unused_category(x[:, j], focal)
        if unused:
            reason[j] = unused
            continue
        if anchors is None:
            con_res, why_c = base, ""
            free_res, why_f = fit(np.array([j]))
        else:
            con_res, why_c = fit(free_others[free_others != j])
            free_res, why_f = base, ""
        if con_res is None or free_res is None:
            reason[j] = f"cannot fit the two-group models: {why_c or why_f}"
            continue
        k = int(np.nanmax(x[:, j])) + 1
        df[j] = catalogue.get(models[j]).n_parameters(k)
        ll_con[j], ll_free[j] = con_res.loglik, free_res.loglik
        chi2[j] = max(2.0 * (free_res.loglik - con_res.loglik), 0.0)
        if free_res.loglik < con_res.loglik - 0.05:
            reason[j] = ("free fit's loglik below the constrained one (priors, or a fit "
                         "stopped short): chi-square set to 0")
        conv[j] = bool(con_res.converged and free_res.converged)
        sids[j], uids[j] = _expected_score_gap(free_res, ids[j])
    p = np.where(np.isfinite(chi2), chdtrc(np.maximum(df, 1), chi2), np.nan)
    p_adj = benjamini_hochberg(p)
    return LRDIFResult(
        item_ids=ids, model=models, chi2=chi2, df=df, p=p, p_adjusted=p_adj,
        flagged=np.where(np.isfinite(p_adj), p_adj < alpha, False),
        score_difference=sids, unsigned_difference=uids, loglik_constrained=ll_con,
        loglik_free=ll_free, n_ref=n_ref, n_focal=n_foc, studied=studied,
        anchor=anchor & ~studied, converged=conv,
        reason=reason.astype(str), focal_mean=focal_mean, focal_sd=focal_sd)


def _unused_category(column: np.ndarray, focal: np.ndarray) -> str:
    """Why an item cannot be split, or '': each group must use every category of the item,
    else the free model (its copies with fewer categories) is not nested in the
    constrained one."""
    seen = ~np.isnan(column)
    if not seen.any():
        return "no responses"
    top = int(np.nanmax(column))
    for label, mask in (("reference", ~focal), ("focal", focal)):
        used = np.unique(column[seen & mask]).astype(int)
        missing = sorted(set(range(top + 1)) - set(used.tolist()))
        if missing:
            return (f"category {missing[0]} not used in the {label} group: the item's "
                    "parameters cannot be freed there (collapse categories)")
    return ""


def _expected_score_gap(result: Any, item_id: str, n_points: int = 201) -> tuple[float, float]:
    """Signed and unsigned mean of ``E_focal(X|θ) - E_ref(X|θ)`` of a split item over the
    focal group's N(mean, SD²) of the free fit (a fine grid, normal weights)."""
    params = result.params
    labels = list(params.item_ids)
    pair = params.subset([labels[labels.index(f"{item_id}@ref")],
                          labels[labels.index(f"{item_id}@focal")]])
    g = list(result.group_labels).index(_FOC)
    mu, sd = float(result.group_means[g]), float(result.group_sds[g])
    theta = np.linspace(mu - 6 * sd, mu + 6 * sd, n_points)
    w = np.exp(-0.5 * ((theta - mu) / sd) ** 2)
    w /= w.sum()
    e = expected_score(pair, theta)                    # (n_points, 2)
    gap = e[:, 1] - e[:, 0]
    return float(w @ gap), float(w @ np.abs(gap))
