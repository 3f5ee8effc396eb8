"""Item and person fit: infit/outfit mean squares, Orlando-Thissen S-X2, lz.

All statistics take item parameters (:class:`~scoring.params.ItemParams`), a
response matrix (persons x items, NaN = not administered) and, for residual
statistics, one ability value per person.

* :func:`item_fit` -- infit / outfit mean squares and their Wilson-Hilferty
  standardisations (Wright & Masters, 1982), dichotomous and polytomous.
* :func:`sx2` -- Orlando & Thissen (2000) summed-score item fit, generalised to
  polytomous items (Kang & Chen, 2008), with mirt-style collapsing of sparse
  score groups.  Needs complete data (see its docstring).
* :func:`person_fit_lz` -- standardised log-likelihood person fit (Drasgow,
  Levine & Williams, 1985), polytomous generalisation.
* :func:`lord_wingersky` -- summed-score distribution given θ.
* :func:`item_fit_table` -- everything item-level in one table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import catalogue
from . import models as M
from .estimation import posterior_grid
from .params import ItemParams

__all__ = [
    "EmpiricalCurves",
    "ItemFit",
    "ItemFitTable",
    "SX2Result",
    "chi2_sf",
    "empirical_curves",
    "item_fit",
    "item_fit_table",
    "lord_wingersky",
    "n_item_parameters",
    "person_fit_lz",
    "summed_score_expected",
    "sx2",
]

_BLOCK_CELLS = 500_000  # persons per block ~ this / (n_items * max_categories); memory


def _blocks(params: ItemParams, n_persons: int):
    size = max(1, _BLOCK_CELLS // max(1, params.n_items * params.max_categories))
    for start in range(0, n_persons, size):
        yield slice(start, min(start + size, n_persons))


def _person_theta(theta: Any, n_persons: int) -> np.ndarray:
    t = np.asarray(theta, dtype=float).ravel()
    if t.shape != (n_persons,):
        raise ValueError(f"theta must have shape ({n_persons},) (one value per person), "
                         f"got {np.shape(theta)}")
    return t


def _moments(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected score, variance and fourth central moment per person-item.

    p : (n, n_items, K) category probabilities -> three (n, n_items) arrays.
    """
    k = np.arange(p.shape[-1], dtype=float)
    e = p @ k
    dev = k[None, None, :] - e[..., None]
    dev2 = dev * dev
    w = np.sum(p * dev2, axis=-1)
    c = np.sum(p * dev2 * dev2, axis=-1)
    return e, w, c


# --------------------------------------------------------------------------
# Infit / outfit
# --------------------------------------------------------------------------


def chi2_sf(x: Any, df: Any) -> np.ndarray:
    """Upper tail P(X² >= x) of the chi-square distribution with whole-number ``df``
    (NaN where df <= 0 or x is not finite).

    Closed forms (Abramowitz & Stegun 26.4.4-5) summed term by term in log space: with
    scipy.special (or scipy.stats) imported for this one function, every
    ``learningcity calibrate`` paid 0.15-0.4 s of start-up.  Agrees with
    ``scipy.special.chdtrc`` to 1e-12 relative (tests/scoring/test_fit.py).
    """
    x, df = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(df, dtype=float))
    shape, x, df = x.shape, x.ravel(), df.ravel()
    out = np.full(x.shape, np.nan)
    for index in np.flatnonzero((df > 0) & np.isfinite(x)):
        k, h = df[index], max(float(x[index]), 0.0) / 2.0
        if k != int(k):
            raise ValueError(f"chi2_sf needs whole-number degrees of freedom, got {k}")
        if h == 0.0:
            out[index] = 1.0
        elif int(k) % 2 == 0:  # exp(-h) sum_{i < k/2} h^i / i!
            out[index] = math.fsum(math.exp(i * math.log(h) - math.lgamma(i + 1) - h)
                                   for i in range(int(k) // 2))
        else:  # erfc(sqrt h) + exp(-h) sum_{i=1}^{(k-1)/2} h^(i-1/2) / Gamma(i+1/2)
            out[index] = math.erfc(math.sqrt(h)) + math.fsum(
                math.exp((i - 0.5) * math.log(h) - math.lgamma(i + 0.5) - h)
                for i in range(1, (int(k) - 1) // 2 + 1))
    return out.reshape(shape)


@dataclass(frozen=True, eq=False)
class ItemFit:
    """Residual-based item fit (Wright & Masters, 1982).

    With ``E``, ``W``, ``C`` the model mean, variance and 4th central moment of
    the score of person n on item i at θ_n, ``y = x - E`` and ``z = y / sqrt(W)``:

    * outfit ``u_i = Σ_n z² / N_i``, ``q²_u = Σ_n C/W² / N_i² - 1/N_i``
    * infit ``v_i = Σ_n y² / Σ_n W``, ``q²_v = Σ_n (C - W²) / (Σ_n W)²``
    * ``zstd = (MS^{1/3} - 1) (3/q) + q/3`` (Wilson-Hilferty cube root)

    Attributes
    ----------
    item_ids : (n_items,) str
    infit, outfit : (n_items,) float mean squares (expected 1)
    infit_zstd, outfit_zstd : (n_items,) float, approximately N(0, 1) under fit
    n : (n_items,) int, responses used (non-NaN response and finite θ)
    """

    item_ids: np.ndarray
    infit: np.ndarray
    outfit: np.ndarray
    infit_zstd: np.ndarray
    outfit_zstd: np.ndarray
    n: np.ndarray


def _wilson_hilferty(ms: np.ndarray, q2: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.sqrt(q2)
        return (np.cbrt(ms) - 1.0) * (3.0 / q) + q / 3.0


def item_fit(params: ItemParams, responses: Any, theta: Any) -> ItemFit:
    """Infit and outfit mean squares with standardised values.

    Parameters
    ----------
    params : ItemParams
    responses : (n_persons, n_items) float, categories 0..K-1, NaN = not administered
    theta : (n_persons,) float, ability per person (e.g. WLE or EAP).  Persons
        with non-finite θ (MLE of perfect scores, NaN) are skipped.

    Returns
    -------
    ItemFit; NaN for items with no usable response or zero model variance.
    """
    r = M.check_responses(params, responses)
    t = _person_theta(theta, r.shape[0])
    if not np.all(np.isfinite(t)):                     # (memory: no copy when all are)
        r = r[np.isfinite(t)]
        t = t[np.isfinite(t)]
    n_items = params.n_items
    sum_z2 = np.zeros(n_items)
    sum_y2 = np.zeros(n_items)
    sum_w = np.zeros(n_items)
    sum_cw2 = np.zeros(n_items)
    sum_cmw2 = np.zeros(n_items)
    n = np.zeros(n_items, dtype=np.int64)
    for blk in _blocks(params, r.shape[0]):
        x = r[blk]
        e, w, c = _moments(M.probabilities(params, t[blk]))
        seen = ~np.isnan(x) & (w > 0)
        y = np.where(seen, x - e, 0.0)
        ws = np.where(seen, w, 1.0)
        sum_z2 += np.sum(np.where(seen, y * y / ws, 0.0), axis=0)
        sum_y2 += np.sum(y * y, axis=0)
        sum_w += np.sum(np.where(seen, w, 0.0), axis=0)
        sum_cw2 += np.sum(np.where(seen, c / (ws * ws), 0.0), axis=0)
        sum_cmw2 += np.sum(np.where(seen, c - w * w, 0.0), axis=0)
        n += seen.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.where(n > 0, n, np.nan)
        outfit = sum_z2 / nn
        infit = np.where(sum_w > 0, sum_y2 / sum_w, np.nan)
        q2_out = sum_cw2 / nn**2 - 1.0 / nn
        q2_in = sum_cmw2 / sum_w**2
    return ItemFit(
        item_ids=params.item_ids,
        infit=infit,
        outfit=outfit,
        infit_zstd=_wilson_hilferty(infit, q2_in),
        outfit_zstd=_wilson_hilferty(outfit, q2_out),
        n=n,
    )


# --------------------------------------------------------------------------
# Person fit lz
# --------------------------------------------------------------------------


def person_fit_lz(params: ItemParams, responses: Any, theta: Any) -> np.ndarray:
    """Standardised log-likelihood person-fit statistic lz.

    ``l0 = Σ_j log P_j,x_j(θ)``, ``E = Σ_j Σ_k P_jk log P_jk``,
    ``V = Σ_j [Σ_k P_jk (log P_jk)² - (Σ_k P_jk log P_jk)²]``,
    ``lz = (l0 - E) / sqrt(V)`` over the items each person answered
    (Drasgow, Levine & Williams, 1985; polytomous form of Drasgow, Levine &
    Williams' 1985 polychotomous model).  Large negative values (< -2) flag
    aberrant response patterns.  With an estimated θ the statistic is somewhat
    less variable than N(0, 1) (Snijders, 2001); with the true θ it is close.

    Parameters
    ----------
    params : ItemParams
    responses : (n_persons, n_items) float, NaN = not administered
    theta : (n_persons,) float

    Returns
    -------
    (n_persons,) float; NaN for persons with no response, non-finite θ or zero
    variance (e.g. every answered item deterministic).
    """
    r = M.check_responses(params, responses)
    t = _person_theta(theta, r.shape[0])
    out = np.full(r.shape[0], np.nan)
    ok = np.isfinite(t)
    idx = np.flatnonzero(ok)
    for blk in _blocks(params, idx.size):
        rows = idx[blk]
        x = r[rows]
        logp = M.log_probabilities(params, t[rows])  # (n, J, K), -inf padded
        p = np.exp(logp)
        logp = np.where(p > 0, logp, 0.0)
        seen = ~np.isnan(x)
        xi = np.where(seen, x, 0).astype(np.int64)
        l_obs = np.take_along_axis(logp, xi[..., None], axis=-1)[..., 0]
        m1 = np.sum(p * logp, axis=-1)
        m2 = np.sum(p * logp * logp, axis=-1)
        l0 = np.sum(np.where(seen, l_obs, 0.0), axis=1)
        e = np.sum(np.where(seen, m1, 0.0), axis=1)
        v = np.sum(np.where(seen, m2 - m1 * m1, 0.0), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[rows] = np.where(v > 0, (l0 - e) / np.sqrt(v), np.nan)
    return out


# --------------------------------------------------------------------------
# Summed scores: Lord-Wingersky and S-X2
# --------------------------------------------------------------------------


def _add_item(dist: np.ndarray, p_item: np.ndarray, n_cat: int) -> np.ndarray:
    """One Lord-Wingersky step.

    dist : (n_q, S+1) P(score = s | θ) over the items so far
    p_item : (n_q, K) category probabilities of the added item
    Returns (n_q, S + n_cat) distribution including the item.
    """
    n_q, width = dist.shape
    out = np.zeros((n_q, width + n_cat - 1))
    for k in range(n_cat):
        out[:, k:k + width] += dist * p_item[:, k:k + 1]
    return out


def lord_wingersky(params: ItemParams, theta: Any, probs: np.ndarray | None = None
                   ) -> np.ndarray:
    """Distribution of the summed score given θ (Lord & Wingersky, 1984).

    The recursion adds one item at a time: ``f_new(s) = Σ_k f_old(s - k) P_jk(θ)``
    (the polytomous generalisation of Thissen et al., 1995).

    Parameters
    ----------
    params : ItemParams
    theta : (n_theta,) float
    probs : optional precomputed ``models.probabilities(params, theta)``

    Returns
    -------
    (n_theta, max_score + 1) float, ``max_score = Σ_j (K_j - 1)``; rows sum to 1.
    """
    t = M.as_theta(theta)
    p = M.probabilities(params, t) if probs is None else probs
    dist = np.ones((t.shape[0], 1))
    for j in range(params.n_items):
        dist = _add_item(dist, p[:, j, :], int(params.n_categories[j]))
    return dist


def _quadrature(quadrature: Any, prior_mean: float, prior_sd: float, n_quad: int
                ) -> tuple[np.ndarray, np.ndarray]:
    if quadrature is not None:
        nodes, weights = (np.asarray(v, dtype=float) for v in quadrature)
        if nodes.shape != weights.shape or nodes.ndim != 1:
            raise ValueError("quadrature must be (nodes, weights) of equal 1-D shape")
        return nodes, weights / weights.sum()
    nodes = prior_mean + prior_sd * np.linspace(-6.0, 6.0, n_quad)
    w = np.exp(-0.5 * ((nodes - prior_mean) / prior_sd) ** 2)  # normalised below
    return nodes, w / w.sum()


def summed_score_expected(params: ItemParams, nodes: Any, weights: Any) -> np.ndarray:
    """Model-implied ``P(X_j = k | S = s)`` for every item, score and category.

    ``E_jk(s) = ∫ P_jk(θ) f_{-j}(s - k | θ) g(θ) dθ / ∫ f(s | θ) g(θ) dθ`` with
    ``f_{-j}`` the summed-score distribution of the other items (Lord-Wingersky)
    and ``g`` given by quadrature nodes and weights.

    Parameters
    ----------
    params : ItemParams
    nodes, weights : (n_q,) float, quadrature of the ability distribution

    Returns
    -------
    (n_items, max_score + 1, max_categories) float; 0 for impossible
    (score, category) combinations and padded categories.
    """
    nodes = M.as_theta(nodes)
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    p = M.probabilities(params, nodes)  # (n_q, J, K)
    ncat = params.n_categories.astype(int)
    n_items, k_max = params.n_items, params.max_categories
    max_score = int(np.sum(ncat - 1))
    # prefix[j]: distribution of items 0..j-1.
    prefix = [np.ones((nodes.shape[0], 1))]
    for j in range(n_items):
        prefix.append(_add_item(prefix[-1], p[:, j, :], int(ncat[j])))
    marginal = w @ prefix[-1]  # (max_score + 1,)
    # suffix[j]: distribution of items j..J-1; the rest score without item j is the
    # convolution of prefix[j] and suffix[j + 1] (2J recursion steps instead of J^2 / 2)
    suffix = [np.ones((nodes.shape[0], 1))]
    for j in range(n_items - 1, -1, -1):
        suffix.append(_add_item(suffix[-1], p[:, j, :], int(ncat[j])))
    suffix = suffix[::-1]
    out = np.zeros((n_items, max_score + 1, k_max))
    for j in range(n_items):
        head, tail = prefix[j], suffix[j + 1]
        t_w, u_w = head.shape[1], tail.shape[1]
        width = t_w + u_w - 1  # max_score - (K_j - 1) + 1
        for k in range(int(ncat[j])):
            # P(X_j = k, S_-j = s') = sum_q w p_jk head(t) tail(s' - t): the q-sums of
            # all (t, u) pairs, then the sums along t + u = s' (anti-diagonals, by
            # reading the padded (t_w, t_w + u_w) matrix with rows shifted by one)
            pairs = ((w * p[:, j, k])[:, None] * head).T @ tail          # (t_w, u_w)
            padded = np.zeros((t_w, t_w + u_w))
            padded[:, :u_w] = pairs
            joint = padded.ravel()[:t_w * width].reshape(t_w, width).sum(axis=0)
            out[j, k:k + width, k] = joint
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(marginal[None, :, None] > 0, out / marginal[None, :, None], 0.0)
    return out


def n_item_parameters(params: ItemParams) -> np.ndarray:
    """Estimated parameters per item for S-X2 degrees of freedom, (n_items,) int.

    rasch 1, 1pl 1 (the shared slope is not charged to any item), 2pl 2, 3pl 3,
    grm and gpcm ``K`` (slope + K-1 thresholds), pcm ``K - 1``.
    """
    return np.array([catalogue.MODELS[str(m)].n_parameters(int(k))
                     for m, k in zip(params.model, params.n_categories, strict=True)],
                    dtype=np.int64)


@dataclass(frozen=True, eq=False)
class SX2Result:
    """Orlando-Thissen S-X2 per item.

    Attributes
    ----------
    item_ids : (n_items,) str
    sx2 : (n_items,) float, Pearson statistic over the (collapsed) score groups
    df : (n_items,) float, cells used - score groups - estimated item parameters
    p : (n_items,) float, upper-tail chi-square p-value
    n_groups : (n_items,) int, score groups after collapsing
    n_persons : int, complete cases used
    reason : (n_items,) str, '' or why the item's statistic is NaN
    """

    item_ids: np.ndarray
    sx2: np.ndarray
    df: np.ndarray
    p: np.ndarray
    n_groups: np.ndarray
    n_persons: int
    reason: np.ndarray


def _collapse(obs: np.ndarray, exp: np.ndarray, min_expected: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """Merge adjacent score groups (rows) until no nonzero expected cell is < min_expected.

    As mirt's ``collapseCells`` (row direction): the first offending row is
    merged into its only neighbour at either end, otherwise into the neighbour
    with the smaller observed total.  obs, exp : (n_rows, K) counts.
    """
    if exp.shape[0] <= 1:
        return obs.copy(), exp.copy()
    # rows as a list (a merge is one list deletion, not two array copies); the rows
    # before the first offending one are unchanged by a merge and stay fine, so the
    # search resumes at the merged row
    obs_rows, exp_rows = list(obs.copy()), list(exp.copy())
    i = 0
    while len(exp_rows) > 1:
        while i < len(exp_rows) and not np.any((exp_rows[i] < min_expected)
                                                & (exp_rows[i] > 0)):
            i += 1
        if i == len(exp_rows):
            break
        if i == 0:
            target = 1
        elif i == len(exp_rows) - 1:
            target = i - 1
        else:
            target = i - 1 if obs_rows[i - 1].sum() <= obs_rows[i + 1].sum() else i + 1
        obs_rows[target] = obs_rows[target] + obs_rows[i]
        exp_rows[target] = exp_rows[target] + exp_rows[i]
        del obs_rows[i], exp_rows[i]
        i = min(i, target)
    return np.vstack(obs_rows), np.vstack(exp_rows)


def sx2(
    params: ItemParams,
    responses: Any,
    *,
    prior_mean: float | None = None,
    prior_sd: float | None = None,
    quadrature: tuple[Any, Any] | None = None,
    n_quad: int = 61,
    min_expected: float = 1.0,
    min_persons: int = 100,
    n_item_params: Any = None,
) -> SX2Result:
    """Orlando & Thissen (2000) S-X2 item fit, generalised to polytomous items.

    Persons are grouped by summed score s; for item j the observed counts
    ``O_jk(s)`` of category k are compared with ``E_jk(s) = N_s P(X_j = k | S = s)``
    from :func:`summed_score_expected`::

        S-X2_j = Σ_s Σ_k (O_jk(s) - E_jk(s))² / E_jk(s)

    summed over cells with ``E > 0`` (impossible score/category cells are
    structural zeros).  The extreme scores 0 and max are dropped (they
    determine every response), empty score groups are dropped, and adjacent
    groups are merged while any nonzero expected count is below
    ``min_expected`` (mirt's rule, default 1; categories are not collapsed
    within a group).  ``df = cells - groups - n_item_params_j``; for a
    dichotomous item this is ``groups - n_params``.

    **Complete data only.**  The summed score is only comparable between
    persons who answered the same items, so S-X2 uses the persons who
    answered *every* item of ``params``.  For sparse adaptive (CAT) data,
    compute it per fixed form / booklet (``params.subset(...)`` and the matching
    response columns).  If fewer than ``min_persons`` complete cases exist,
    every item gets NaN with a reason.

    Parameters
    ----------
    params : ItemParams
    responses : (n_persons, n_items) float, NaN = not administered
    prior_mean, prior_sd : float, normal ability distribution used when
        ``quadrature`` is None (``n_quad`` points on mean ± 6 sd); None (default): the
        latent distribution of the scale, ``params.latent_mean``/``latent_sd``
    quadrature : optional (nodes, weights), e.g. an estimated latent distribution
    min_expected : float, collapsing threshold for expected counts
    min_persons : int, minimum number of complete cases
    n_item_params : None or (n_items,) int; default :func:`n_item_parameters`.
        Pass zeros when the parameters are known rather than estimated.

    Returns
    -------
    SX2Result
    """
    r = M.check_responses(params, responses)
    n_items = params.n_items
    complete = ~np.any(np.isnan(r), axis=1)
    small = np.int16 if params.max_categories <= np.iinfo(np.int16).max else np.int64
    x = (r if complete.all() else r[complete]).astype(small)   # (memory: 1/4 of int64)
    n_persons = int(x.shape[0])
    nan = np.full(n_items, np.nan)
    if n_persons < min_persons:
        why = (f"only {n_persons} complete cases (< {min_persons}); S-X2 needs persons who "
               "answered every item: compute it per fixed form")
        return SX2Result(params.item_ids, nan, nan.copy(), nan.copy(),
                         np.zeros(n_items, np.int64), n_persons, np.full(n_items, why))
    n_par = (n_item_parameters(params) if n_item_params is None
             else np.broadcast_to(np.asarray(n_item_params, dtype=np.int64), (n_items,)))
    nodes, weights = _quadrature(
        quadrature, params.latent_mean if prior_mean is None else prior_mean,
        params.latent_sd if prior_sd is None else prior_sd, n_quad)
    expected = summed_score_expected(params, nodes, weights)  # (J, S+1, K)
    max_score = expected.shape[1] - 1
    score = x.sum(axis=1)
    n_s = np.bincount(score, minlength=max_score + 1).astype(float)
    keep = (n_s > 0) & (np.arange(max_score + 1) > 0) & (np.arange(max_score + 1) < max_score)

    stat, df = nan.copy(), nan.copy()
    groups = np.zeros(n_items, dtype=np.int64)
    reason = np.full(n_items, "", dtype=object)
    k_max = params.max_categories
    for j in range(n_items):
        obs = np.bincount(score * k_max + x[:, j], minlength=(max_score + 1) * k_max)
        obs = obs.reshape(max_score + 1, k_max).astype(float)[keep]
        exp = expected[j][keep] * n_s[keep][:, None]
        obs, exp = _collapse(obs, exp, min_expected)
        cells = exp > 0
        groups[j] = exp.shape[0]
        dfj = int(cells.sum()) - exp.shape[0] - int(n_par[j])
        if dfj <= 0:
            reason[j] = f"df = {dfj} <= 0 after collapsing ({exp.shape[0]} score groups)"
            continue
        stat[j] = float(np.sum((obs[cells] - exp[cells]) ** 2 / exp[cells]))
        df[j] = dfj
    return SX2Result(
        item_ids=params.item_ids,
        sx2=stat,
        df=df,
        p=chi2_sf(stat, df),
        n_groups=groups,
        n_persons=n_persons,
        reason=reason.astype(str),
    )


# --------------------------------------------------------------------------
# Combined table
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ItemFitTable:
    """Item fit statistics aligned with ``item_ids``.

    Attributes
    ----------
    item_ids : (n_items,) str
    infit, outfit, infit_zstd, outfit_zstd : (n_items,) float (see :class:`ItemFit`)
    n : (n_items,) int, responses used for infit/outfit
    sx2, sx2_df, sx2_p : (n_items,) float (see :class:`SX2Result`)
    sx2_n_persons : int, complete cases used for S-X2
    sx2_reason : (n_items,) str
    """

    item_ids: np.ndarray
    infit: np.ndarray
    outfit: np.ndarray
    infit_zstd: np.ndarray
    outfit_zstd: np.ndarray
    n: np.ndarray
    sx2: np.ndarray
    sx2_df: np.ndarray
    sx2_p: np.ndarray
    sx2_n_persons: int
    sx2_reason: np.ndarray

    def as_dict(self) -> dict[str, list[Any]]:
        """Column name -> list, one entry per item (for CSV/HTML reports)."""
        cols = ("item_ids", "infit", "outfit", "infit_zstd", "outfit_zstd", "n",
                "sx2", "sx2_df", "sx2_p", "sx2_reason")
        return {c: np.asarray(getattr(self, c)).tolist() for c in cols}


def item_fit_table(params: ItemParams, responses: Any, theta: Any, **sx2_kwargs: Any
                   ) -> ItemFitTable:
    """Infit/outfit (given ``theta``) and S-X2 (complete cases) in one table.

    Parameters
    ----------
    params : ItemParams
    responses : (n_persons, n_items) float, NaN = not administered
    theta : (n_persons,) float
    **sx2_kwargs : passed to :func:`sx2`

    Returns
    -------
    ItemFitTable
    """
    res = item_fit(params, responses, theta)
    s = sx2(params, responses, **sx2_kwargs)
    return ItemFitTable(
        item_ids=params.item_ids,
        infit=res.infit,
        outfit=res.outfit,
        infit_zstd=res.infit_zstd,
        outfit_zstd=res.outfit_zstd,
        n=res.n,
        sx2=s.sx2,
        sx2_df=s.df,
        sx2_p=s.p,
        sx2_n_persons=s.n_persons,
        sx2_reason=s.reason,
    )


# ------------------------------------------------------------- empirical item curves

@dataclass(frozen=True)
class EmpiricalCurves:
    """Observed against model-expected item scores by ability group, for item-fit plots.

    Scores are divided by the item's maximum (proportion correct for dichotomous items).
    All arrays are (n_items, n_groups); a group with no respondent to an item is NaN.
    """

    item_ids: np.ndarray
    theta: np.ndarray       # mean rest-EAP of the group's respondents to the item
    n: np.ndarray           # respondents to the item in the group
    observed: np.ndarray    # mean observed score / max score
    expected: np.ndarray    # mean posterior-predicted score / max score
    se: np.ndarray          # model SD of the observed mean: sqrt(sum Var(X_j|rest)) / n / max


def empirical_curves(params: ItemParams, responses: Any, *, prior_mean: Any = 0.0,
                     prior_sd: Any = 1.0, n_groups: int = 10,
                     n_quad: int = 61) -> EmpiricalCurves:
    """Posterior-predictive item-fit curves: for item j, its respondents in ``n_groups``
    equal-count groups of their EAP from the *other* items (rest-EAP); per group the
    observed mean score beside the mean of ``E[X_j | other responses]``, with the model
    SD of the observed mean.

    Grouping on the other items' evidence only is what makes the comparison fair: under
    the model the observed and expected means then agree in expectation for any test
    length, whereas grouping on an EAP that includes item j itself (or plotting P at the
    EAP) shows spurious misfit on short tests.  The rest-posterior is the full posterior
    with item j's likelihood divided out (one quadrature grid for all items).

    ``responses`` (n_persons, n_items), NaN = not administered; ``prior_mean``/``prior_sd``
    the calibrated latent distribution (scalars or per person).
    """
    r = M.check_responses(params, responses)
    if n_groups < 1:
        raise ValueError("n_groups must be >= 1")
    nodes, weights = posterior_grid(params, r, prior_mean, prior_sd, n_quad)
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)                              # (n_persons, n_quad)
    log_p = M.log_probabilities(params, nodes)              # (n_quad, n_items, K)
    p = np.exp(log_p)
    k = np.arange(p.shape[-1], dtype=float)
    mean, second = p @ k, p @ (k * k)                       # (n_quad, n_items)
    top = np.asarray(params.n_categories, dtype=float) - 1.0
    n_items = r.shape[1]
    shape = (n_items, n_groups)
    out = {name: np.full(shape, np.nan) for name in ("theta", "observed", "expected", "se")}
    counts = np.zeros(shape)
    for j in range(n_items):
        seen = np.flatnonzero(~np.isnan(r[:, j]))
        if seen.size == 0:
            continue
        x = r[seen, j].astype(int)
        rest = log_w[seen] - log_p[:, j, :][:, x].T          # item j's likelihood out
        rest = np.exp(rest - rest.max(axis=1, keepdims=True))
        rest /= rest.sum(axis=1, keepdims=True)
        theta = rest @ nodes
        e = rest @ mean[:, j]
        v = rest @ second[:, j] - e * e
        key = np.round(theta, 9)  # ties (equal patterns) land in one group on any route
        cuts = np.quantile(key, np.linspace(0, 1, n_groups + 1)[1:-1])
        g = np.searchsorted(cuts, key, side="right")
        n = np.bincount(g, minlength=n_groups).astype(float)
        counts[j] = n
        with np.errstate(invalid="ignore", divide="ignore"):
            out["theta"][j] = np.bincount(g, theta, n_groups) / n
            out["observed"][j] = np.bincount(g, x, n_groups) / n / top[j]
            out["expected"][j] = np.bincount(g, e, n_groups) / n / top[j]
            out["se"][j] = np.sqrt(np.bincount(g, v, n_groups)) / n / top[j]
        for name in out:
            out[name][j, n == 0] = np.nan
    return EmpiricalCurves(item_ids=np.asarray(params.item_ids), n=counts, **out)
