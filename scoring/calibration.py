"""Item calibration by marginal maximum likelihood (Bock-Aitkin EM).

Models: every model of :mod:`scoring.catalogue` (``rasch``, ``1pl``, ``2pl``, ``3pl``,
``grm``, ``gpcm``, ``pcm``, or an alias) in the slope / difficulty metric of
``scoring/README.md`` (logistic, D = 1).  A test may mix models (``model`` may be one name
per item), and fixed ("anchor") items of any model may be given to put new items on an
existing scale.  The item response functions and their parameter gradients are
``scoring.models``' (:func:`~scoring.models.slope_intercept_log_probabilities`).

Algorithm
---------
* Latent distribution: a rectangular grid of ``n_quad`` points on ``theta_range``
  (default -6..6); ``n_quad="auto"`` (default) picks 41..201 points so that the spacing
  is at most the typical posterior SD (see :func:`calibrate`).  Group ``g`` has
  weights ``pi_gq`` proportional to the normal density ``N(mu_g, sigma_g^2)`` at the
  grid points, normalised to sum to one.  The marginal likelihood maximised is the one
  with these discrete weights.  With ``density="eh"`` the weights are instead an
  empirical histogram per group, estimated in the group M-step (see :func:`calibrate`
  and scoring/README.md).
* E-step: the responses are held as a one-hot matrix ``Y`` (persons x sum_j K_j; sparse
  CSR when less than 10 % filled, dense otherwise).  The log-likelihood of every person at
  every grid point is one matrix product ``Y @ log P`` (persons x quad), posteriors are
  normalised row-wise, and the expected counts per item, category and grid point are one
  more product ``Y.T @ posterior``.  No persons x items x quad tensor is ever built.
  With 40 items or fewer, identical response patterns (within group) are merged first.
  When every person answers every item (complete data) only the category >= 1 columns
  are kept, as a uint8 matrix ``Z`` multiplied in float64 row blocks (``log P_j0`` is a
  per-item baseline, the category-0 counts are the posterior totals minus the rest):
  half the work for dichotomous items, exact, and 1/16 of the memory of ``Y`` with its
  reduced copy (1 byte per response and category above 0).
* M-step, items: items are independent given the expected counts; all items are updated
  at once by damped Fisher scoring (Levenberg-Marquardt: a ridge on the diagonal of each
  ``(p, p)`` information block that grows when step halving finds no ascent; singular
  blocks are solved through their floored eigendecomposition) on the expected
  complete-data log-likelihood (plus log priors), with a step cap and per-item step
  halving; an item leaves the Newton loop once it stops moving.  Slopes are kept in
  ``[SLOPE_MIN, SLOPE_BOUND]`` (0.01..20: the project's parameters have a > 0) and
  intercepts in ``[-INTERCEPT_BOUND,
  INTERCEPT_BOUND]`` (60): data that separate perfectly have no finite estimate, and
  the estimate stops at the bound, is held fixed for the standard errors and is
  reported (``result.warnings``) instead of failing.  The common slope of ``1pl`` items is updated
  jointly with their intercepts (Schur complement of the arrow-shaped system).
  Internally items are in slope-intercept form ``a*theta + d_k`` (``b_k = -d_k / a``).
* M-step, groups: Newton on ``(mu_g, sigma_g)`` of the discrete normal weights.
* Memory: O(nnz + persons x quad) -- the one-hot matrix, a few persons x quad arrays and
  items x quad x categories arrays.  500 items x 100,000 persons with 20 responses each
  peaks at about 135 MB of allocations (bench/README.md).
* Acceleration: every third cycle a SQUAREM extrapolation (Varadhan & Roland 2008) of the
  EM map is tried and kept only if it does not lower the log-likelihood (log-posterior when
  priors are used).
* Convergence: largest absolute change of any free parameter (slopes, intercepts, lower
  asymptotes, group means and SDs; the histogram weights with ``density="eh"``) below
  ``tol`` **and** absolute change of the
  log-likelihood below ``max(tol, 1e-9 * |loglik|)``.

Identification
--------------
* Without anchors the reference group is N(0, 1).  For ``rasch`` and ``pcm`` (slope fixed
  at 1) the reference SD is estimated instead (mean still 0), as in mirt / ConQuest.
  When every estimated item is rasch/pcm this applies; when any item has a free slope
  the SD is fixed at 1.
* With anchors the scale is fixed by the anchor parameters, so the mean and SD of the
  reference group are estimated too.  ``1pl`` items calibrated with anchors keep the slope
  of the ``1pl`` anchors when there are any (else the common slope is estimated).
* Every other group has its own estimated mean and SD.

Warnings
--------
``result.warnings`` lists :class:`CalibrationWarning` (kind, message, item ids):
estimates at a bound, SEs above ``LARGE_SE`` (10) or not finite, a singular observed
information, a disconnected design (connected components of the persons x items graph:
blocks of items with no person in common are not on one scale), a grid too coarse for
the posteriors, no convergence, and unused categories merged (``collapse_unused``).

Standard errors
---------------
Parameters on a bound (slope, intercept, a 3PL ``c`` at 0) are held fixed.  From the full
observed information of the marginal log-likelihood (all items, the 1PL
common slope and the group parameters together; cross-item covariances included),
computed exactly for the quadrature-approximated likelihood by Louis' identity:
``H = sum_j H_complete_j + sum_i Cov_post(d log f_i / d par)``.  The complete-data item
blocks are central differences of the analytic complete-data score; the posterior
covariance part is analytic (one matrix product per item).  With priors it is the
curvature of the log-posterior.  Standard errors of ``b`` and of the reported slope
follow by the delta method from the slope-intercept covariance matrix.

The exact computation costs about ``Q x p x sum_i m_i^2`` (m_i responses of person i):
2 s for 100 items x 20,000 persons, minutes for 200 x 100,000.  ``se_method="xpd"`` uses
the cross-product of the person scores ``sum_i w_i s_i s_i'`` instead (``s_i`` the
posterior mean of the complete-data score; one pass, ``O(N (Q C p + k^2))``), a
consistent estimate of the same information; ``"auto"`` (default) takes Louis when it
costs at most 2e8 multiply-adds and XPD beyond (SEs within a few per cent of each other
there, tests/scoring/test_calibration.py).
"""
from __future__ import annotations

import contextvars
import ctypes
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from scoring import catalogue
from scoring.models import (
    item_information,
    normalize_log_weights,
    slope_intercept_log_probabilities,
)
from scoring.params import ItemParams

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = ["DIVERGING_SLOPE", "INTERCEPT_BOUND", "SLOPE_BOUND", "SLOPE_MIN",
           "CalibrationResult", "CalibrationWarning", "ItemExclusion", "IterationRecord",
           "Priors", "SingularInformation", "calibrate", "marginal_loglik",
           "pooled_latent", "quadrature_grid", "screen_items"]

# Items carry an integer code: the position of their model in the catalogue.
_MODELS = catalogue.NAMES
_CODE = {name: i for i, name in enumerate(_MODELS)}
_ENTRY = tuple(catalogue.MODELS[name] for name in _MODELS)


def _codes_where(**attributes: object) -> tuple[int, ...]:
    return tuple(_CODE[name] for name in catalogue.names_where(**attributes))


_DICHOTOMOUS_CODES = _codes_where(dichotomous=True)
_GUESSING_CODES = _codes_where(guessing=True)          # 3pl: c estimated
_ORDERED_CODES = _codes_where(ordered_thresholds=True)  # grm: intercepts must decrease
_FREE_SLOPE_CODES = _codes_where(slope="free")
_COMMON_SLOPE_CODES = _codes_where(slope="common")      # 1pl: one slope for all its items
_LOG_FLOOR = 1e-300                  # floor for P (log P floored at its log)
_LOG_MIN = float(np.log(_LOG_FLOOR))
_MAX_STEP = 1.0                      # cap on one Fisher-scoring step (internal units)
_DENSE_FILL = 0.10                   # one-hot density above which Y is kept dense
_DEDUP_MAX_ITEMS = 40
_CHUNK = 2**20                       # entries per chunk of set-up index arithmetic (memory)
#: a slope beyond this (logistic metric) is taken as running off to infinity: no real
#: item discriminates so sharply, and sparse data with perfectly separating responses
#: give such slopes on the way to a singular information matrix
DIVERGING_SLOPE = 10.0
#: the M-step keeps every estimated slope in [SLOPE_MIN, SLOPE_BOUND] (logistic
#: metric): responses that separate perfectly along ability have no finite estimate, and
#: a slope stopped here is reported (a ``CalibrationWarning`` of kind "bound") and held
#: fixed for the standard errors instead of running off to a singular information matrix
SLOPE_BOUND = 20.0
#: lower bound of the estimated slopes: the project's parameters have a > 0 (ItemParams,
#: PARAMS.csv); an item that discriminates the wrong way (miskeyed?) or not at all stops
#: here and is reported like a slope at SLOPE_BOUND
SLOPE_MIN = 0.01
#: bound on the intercepts d_k = -a b_k of the slope-intercept form (|b| <= 60 / |a|)
INTERCEPT_BOUND = 60.0


@dataclass(frozen=True)
class Priors:
    """Prior distributions used in calibration (MAP / posterior-mode estimation).

    Parameters
    ----------
    slope_lognormal : (meanlog, sdlog) or None
        Lognormal prior on every estimated slope ``a`` (2pl, 3pl, grm, gpcm and the
        common 1pl slope), e.g. ``(0.0, 0.5)``.  ``None`` (default): no slope prior.
    guessing_beta : (alpha, beta) or None
        Beta prior on the 3PL lower asymptote ``c``; default ``Beta(5, 17)`` (mode 0.2).
        ``None`` gives plain ML for ``c`` (often unstable).
    """

    slope_lognormal: tuple[float, float] | None = None
    guessing_beta: tuple[float, float] | None = (5.0, 17.0)


@dataclass(frozen=True)
class CalibrationWarning:
    """Something a researcher must know about a calibration, naming the items.

    ``kind`` is one of ``"bound"`` (an estimate stopped at its bound: slope at
    SLOPE_MIN or SLOPE_BOUND, intercept at +-INTERCEPT_BOUND, or a 3PL ``c`` at 0; held
    fixed for the SEs), ``"large_se"`` (an SE above 10 or not finite),
    ``"singular_information"`` (no SEs: the observed information is singular),
    ``"disconnected"`` (items with no person in common with the first block: their
    scale is not linked to it), ``"quadrature"`` (grid too coarse for the posteriors),
    ``"not_converged"``, ``"collapsed"`` (unused categories merged).  ``item_ids`` is
    empty when no item is singled out.
    """

    kind: str
    message: str
    item_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class IterationRecord:
    """One EM cycle: the log-likelihood at the start of the cycle and the largest
    absolute parameter change it made."""

    iteration: int
    loglik: float
    max_change: float


@dataclass(frozen=True)
class CalibrationResult:
    """Outcome of :func:`calibrate` / ``calibrate_girth``.

    Attributes
    ----------
    params : ItemParams
        All items in the column order of ``responses`` (anchors included, unchanged), with
        ``se_a``, ``se_b``, ``se_c`` (NaN where a parameter is fixed or not estimated) and
        the calibrated latent distribution (``latent_mean``/``latent_sd``: the group's,
        or with several groups the pooled mixture of all persons, :func:`pooled_latent`).
    group_means, group_sds : (n_groups,) float
        Latent mean and SD per group on the calibrated scale.
    group_labels : (n_groups,) object
        Group labels; the reference group is first.
    loglik : float
        Marginal log-likelihood at the estimates (priors not included).
    aic, bic : float
        ``-2 loglik + 2 k`` and ``-2 loglik + k log(n_persons)``.
    n_params : int
        Number of free parameters ``k`` (items, common slope, group means and SDs).
    n_iter : int
        EM cycles run.
    converged : bool
    history : tuple of IterationRecord
    method_note : str
        Plain-language summary of estimation, identification and SE method.
    group_mean_se, group_sd_se : (n_groups,) float or None
        Standard errors of the group parameters (NaN where fixed).
    unidentified_items : tuple of str
        When the observed information is singular (SEs NaN): the items it points at
        (near-zero eigenvectors loading on them); empty otherwise.
    density : str
        ``"normal"`` or ``"eh"`` (empirical histogram), as asked of :func:`calibrate`.
    latent_nodes : (Q,) float or None
        The quadrature grid.
    latent_weights : (n_groups, Q) float or None
        The latent density of each group on the grid (rows sum to 1): the discrete
        normal weights, or the estimated histograms with ``density="eh"``.
    warnings : tuple of CalibrationWarning
        Estimates at a bound, absurd SEs, a disconnected design, a too-coarse grid, no
        convergence, collapsed categories (empty when none).
    n_quad : int
        Number of quadrature points used (the automatic choice when ``n_quad="auto"``).
    collapsed : dict
        Item id -> the original categories merged into each estimated category, for the
        items whose unused categories were collapsed (``collapse_unused=True``).
    """

    params: ItemParams
    group_means: np.ndarray
    group_sds: np.ndarray
    group_labels: np.ndarray
    loglik: float
    aic: float
    bic: float
    n_params: int
    n_iter: int
    converged: bool
    history: tuple[IterationRecord, ...]
    method_note: str
    group_mean_se: np.ndarray | None = None
    group_sd_se: np.ndarray | None = None
    unidentified_items: tuple[str, ...] = ()
    density: str = "normal"
    latent_nodes: np.ndarray | None = None
    latent_weights: np.ndarray | None = None
    warnings: tuple[CalibrationWarning, ...] = ()
    n_quad: int = 0
    collapsed: dict = field(default_factory=dict)


def pooled_latent(means: Sequence[float] | np.ndarray, sds: Sequence[float] | np.ndarray,
                  sizes: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and SD of the mixture of group normals N(means[g], sds[g]²) weighted by the
    group ``sizes``, all (n_groups,): the latent distribution a calibration's items carry
    (``ItemParams.latent_mean/latent_sd``; one group: its own mean and SD).  With groups
    this is the population a new person of unknown group comes from; the reference
    group's own N(0, σ²) would understate the spread of a mixed population."""
    m, s, n = (np.asarray(x, dtype=float) for x in (means, sds, sizes))
    w = n / n.sum()
    mean = float(w @ m)
    return mean, float(np.sqrt(w @ (s**2 + (m - mean) ** 2)))


def quadrature_grid(n_quad: int, theta_range: tuple[float, float] = (-6.0, 6.0)
                    ) -> np.ndarray:
    """Equally spaced quadrature points, shape ``(n_quad,)``."""
    if n_quad < 5:
        raise ValueError("n_quad must be at least 5")
    lo, hi = theta_range
    if not hi > lo:
        raise ValueError("theta_range must be increasing")
    return np.linspace(lo, hi, n_quad)


@contextmanager
def _blas_threads(n_threads: int | None) -> Iterator[None]:
    """Temporarily set the number of OpenBLAS threads (numpy's and scipy's copies).

    The EM matrix products are many and thin (persons x quad); on small machines
    OpenBLAS threading makes them several times slower.  Linux only (reads
    /proc/self/maps); elsewhere, or with ``n_threads=None``, nothing is changed.
    """
    restore: list[tuple[int, object]] = []
    if n_threads is not None:
        try:
            with open("/proc/self/maps", encoding="utf-8") as fh:
                paths = sorted({line.split()[-1] for line in fh
                                if "openblas" in line.lower() and ".so" in line})
        except OSError:
            paths = []
        names = (("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
                 ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
                 ("openblas_get_num_threads", "openblas_set_num_threads"))
        for path in paths:
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for get_name, set_name in names:
                getter = getattr(lib, get_name, None)
                setter = getattr(lib, set_name, None)
                if getter is not None and setter is not None:
                    restore.append((int(getter()), setter))
                    setter(int(n_threads))
                    break
    try:
        yield
    finally:
        for old, setter in restore:
            setter(old)


def _probs(code: int, X: np.ndarray, ncat: np.ndarray, theta: np.ndarray, kmax: int,
           deriv: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """P (n, Q, kmax) and dP/dX (n, Q, kmax, kmax + 1) of items sharing one model.

    A view of :func:`scoring.models.slope_intercept_log_probabilities` (the EM itself
    works on log P); kept for the tests that compare it with ``scoring.models``.
    """
    out = slope_intercept_log_probabilities(_ENTRY[code].family, X, ncat, theta,
                                            guessing=code in _GUESSING_CODES, gradient=deriv)
    P = np.exp(out.log_p)
    return P, (P[..., None] * out.grad if deriv else None)


# ----------------------------------------------------------------------------------------
# Problem set-up
# ----------------------------------------------------------------------------------------

@dataclass
class _Problem:
    theta: np.ndarray                 # (Q,)
    kmax: int
    codes: np.ndarray                 # (J,) model code per item
    ncat: np.ndarray                  # (J,)
    X: np.ndarray                     # (J, p) current parameters (slope-intercept)
    free: np.ndarray                  # (J, p) bool: estimated per item
    shared: np.ndarray                # (J,) bool: slope is the common 1pl slope
    anchored: np.ndarray              # (J,) bool
    offsets: np.ndarray               # (J,) first one-hot column of each item
    col_item: np.ndarray              # (C,) item of each one-hot column
    col_cat: np.ndarray               # (C,) category of each one-hot column
    # (N, C) one-hot responses (merged patterns); None for a complete design, held as Z
    Y: np.ndarray | sp.csr_matrix | None
    weights: np.ndarray               # (N,) pattern frequencies
    group: np.ndarray                 # (N,) group index
    n_groups: int
    mu: np.ndarray                    # (G,)
    sigma: np.ndarray                 # (G,)
    mu_free: np.ndarray               # (G,) bool
    sigma_free: np.ndarray            # (G,) bool
    priors: Priors
    n_persons: int                    # persons with at least one response
    by_code: dict = field(default_factory=dict)
    guessing: np.ndarray | None = None  # (J,) bool: c estimated (3pl)
    ordered: np.ndarray | None = None   # (J,) bool: intercepts must decrease (grm)
    # density="eh": (G, Q) log weights of the empirical histograms (None: discrete normal)
    eh_log_weights: np.ndarray | None = None
    collapsed: dict = field(default_factory=dict)  # item j -> original category per new one
    # complete design (every pattern answers every item): (N, C - J) uint8, the one-hot
    # columns of categories >= 1 (category 0 is implied); 1/8 of a float64 Y, 1/16 of
    # Y with its reduced copy (memory, issue 18)
    Z: np.ndarray | None = None


def _as_response_matrix(responses: np.ndarray) -> np.ndarray:
    r = np.asarray(responses)
    if r.ndim != 2:
        raise ValueError(f"responses must be 2-D (persons x items), got shape {r.shape}")
    if not np.issubdtype(r.dtype, np.floating):
        r = r.astype(float)
    return r


def _item_codes(model: str | Sequence[str], n_items: int) -> np.ndarray:
    names = [model] * n_items if isinstance(model, str) else list(model)
    if len(names) != n_items:
        raise ValueError(f"model has {len(names)} entries for {n_items} items")
    return np.array([_CODE[name] for name in catalogue.canonical_names(names)], dtype=int)


def _to_internal(code: int, a: float, b: np.ndarray, c: float, kmax: int) -> np.ndarray:
    """Slope/difficulty -> internal row [a, d_1.., c]."""
    row = np.zeros(kmax + 1)
    row[0] = a
    nb = np.sum(~np.isnan(b))
    row[1:1 + nb] = -a * b[:nb]
    row[kmax] = c if code in _GUESSING_CODES else 0.0
    return row


def _item_problem(counts: np.ndarray, min_responses: int) -> str | None:
    """Why an item with these category counts cannot be estimated (None: it can).

    The reasons :func:`calibrate` refuses an estimated item, in its order of checks;
    :func:`screen_items` reports the same reasons without refusing.
    """
    n_obs = int(counts.sum())
    nz = np.flatnonzero(counts)
    if n_obs < min_responses:
        return f"only {n_obs} responses (at least {min_responses} needed)"
    if nz.size < 2:
        return f"no response variance (all {n_obs} responses = {int(nz[0])})"
    empty = np.flatnonzero(counts[:nz.max() + 1] == 0)
    if empty.size:
        return f"no responses in category {int(empty[0])} of 0..{int(nz.max())}"
    return None


@dataclass(frozen=True)
class ItemExclusion:
    """An item left out of a calibration, and why (e.g. no response variance)."""

    item_id: str
    reason: str


class SingularInformation(ValueError):
    """The information matrix of some items is singular: the responses do not identify
    their parameters (in sparse adaptive data typically a slope running off to infinity
    because the item's responses separate perfectly along ability).

    ``item_ids`` names the items responsible, ``slopes`` their slopes when the fit
    stopped; a caller can leave them out (or anchor them) and fit again.

    :func:`calibrate` no longer raises it: its damped M-step stops such slopes at
    ``SLOPE_BOUND`` and reports them as ``CalibrationWarning`` of kind ``"bound"``.  The
    class stays for callers that catch it.
    """

    def __init__(self, item_ids: Sequence[str], slopes: Sequence[float]):
        self.item_ids = [str(i) for i in item_ids]
        self.slopes = [float(a) for a in slopes]
        listed = ", ".join(f"{i} (a = {a:.3g})" for i, a in zip(self.item_ids, self.slopes,
                                                                  strict=True))
        super().__init__(f"information matrix singular for item(s) {listed}: the "
                         "responses do not identify their parameters (e.g. responses "
                         "that separate perfectly along ability); leave them out or "
                         "anchor them")


class _SingularBlocks(Exception):
    """Internal: the M-step met singular item blocks (indices into all items)."""

    def __init__(self, items: np.ndarray, X: np.ndarray):
        super().__init__("singular item information")
        self.items = items
        self.X = X


def screen_items(responses: np.ndarray, item_ids: Sequence[str] | np.ndarray, *,
                 skip: Sequence[str] = (), min_responses: int = 10) -> list[ItemExclusion]:
    """The items :func:`calibrate` could not estimate, each with its reason.

    Constant items (every response in one category), items with fewer than
    ``min_responses`` responses and polytomous items with an empty middle category carry
    no information about their parameters; a researcher's run leaves them out (with a
    warning) instead of stopping.  Items in ``skip`` (anchors: fixed, not estimated) are
    not screened.

    Parameters
    ----------
    responses : (n_persons, n_items) float, categories 0..K-1, NaN = not administered
    item_ids : (n_items,) str
    skip : item ids not to screen
    min_responses : the same limit as :func:`calibrate`'s

    Returns
    -------
    list of ItemExclusion, in column order (empty: every item can be estimated)
    """
    r = _as_response_matrix(responses)
    ids = np.asarray(item_ids).astype(str)
    if ids.shape != (r.shape[1],):
        raise ValueError(f"item_ids has shape {ids.shape}, expected ({r.shape[1]},)")
    skipped = {str(i) for i in skip}
    out = []
    for j, item in enumerate(ids.tolist()):
        if item in skipped:
            continue
        column = r[:, j]
        observed = column[~np.isnan(column)]
        if observed.size and (np.any(observed < 0) or np.any(observed != np.round(observed))):
            continue  # calibrate's own message names bad values
        counts = np.bincount(observed.astype(np.int64), minlength=1)
        problem = _item_problem(counts, min_responses)
        if problem is not None:
            out.append(ItemExclusion(item, problem))
    return out


def _observed_entries(r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column (int32) and category (int16) of every non-NaN entry, row-major, filled
    and checked in blocks of rows (memory: np.nonzero of the whole matrix would hold two
    int64 arrays, float values another copy of the responses)."""
    n, m = r.shape
    if n * m >= 2**31:
        raise ValueError(f"responses of shape {r.shape} are too large")
    step = max(1, 2**20 // max(1, m))
    counts = [int(np.count_nonzero(~np.isnan(r[s0:s0 + step]))) for s0 in range(0, n, step)]
    total = sum(counts)
    pi = np.empty(total, dtype=np.int32)
    pj = np.empty(total, dtype=np.int32)
    vals = np.empty(total, dtype=np.int16)
    at = 0
    for s0, c in zip(range(0, n, step), counts, strict=True):
        block = r[s0:s0 + step]
        bi, bj = np.nonzero(~np.isnan(block))
        v = block[bi, bj]
        if v.size and (np.any(v < 0) or np.any(v != np.round(v))):
            raise ValueError("responses must be NaN or integer categories 0, 1, 2, ...")
        if v.size and v.max() > 1000:
            raise ValueError("response categories above 1000 are not supported")
        pi[at:at + c] = bi + s0
        pj[at:at + c] = bj
        vals[at:at + c] = v
        at += c
    return pi, pj, vals


def _category_counts(pj: np.ndarray, vals: np.ndarray, n_items: int, top: int
                     ) -> np.ndarray:
    """(items, top) counts of each category, in chunks (memory: no full-size index)."""
    out = np.zeros(n_items * top, dtype=np.int64)
    for a in range(0, pj.size, _CHUNK):
        key = pj[a:a + _CHUNK].astype(np.int64) * top
        key += vals[a:a + _CHUNK]
        out += np.bincount(key, minlength=n_items * top)
    return out.reshape(n_items, top)


def _reduced_onehot(ei: np.ndarray, ej: np.ndarray, ev: np.ndarray, offsets: np.ndarray,
                    n_rows: int, width: int) -> np.ndarray:
    """The uint8 one-hot matrix of categories >= 1 of a complete design (``_Problem.Z``)
    from its (row, item, category) entries; built in one flat byte array whose spare
    last byte takes the category-0 entries (memory: no index copies by mask)."""
    dump = n_rows * width                              # spare last byte: category 0
    itype = np.int64 if dump >= 2**31 else np.int32
    first = (offsets - np.arange(offsets.size) - 1).astype(itype)  # + k: column of k
    out = np.zeros(dump + 1, dtype=np.uint8)
    for a in range(0, ei.size, _CHUNK):
        v = ev[a:a + _CHUNK]
        flat = ei[a:a + _CHUNK].astype(itype) * itype(width)
        flat += first[ej[a:a + _CHUNK]]
        flat += v
        flat[v == 0] = dump
        out[flat] = 1
    return out[:-1].reshape(n_rows, width)


def _onehot_matrix(ei: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int
                   ) -> np.ndarray | sp.csr_matrix:
    """The one-hot matrix ``Y`` of an incomplete design: dense when it is dense enough
    and small, else CSR."""
    fill = ei.size / max(1, n_rows * n_cols)
    if fill > _DENSE_FILL and n_rows * n_cols * 8 < 512 * 2**20:
        Y = np.zeros((n_rows, n_cols))     # dense directly: no CSR copy on the way (memory)
        Y[ei, cols] = 1.0
        return Y
    # start-up cost: scipy.sparse (0.15 s of import) only for sparse designs
    import scipy.sparse

    return scipy.sparse.csr_matrix((np.ones(ei.size), (ei, cols)), shape=(n_rows, n_cols))


def _setup(responses, model, groups, anchors, priors, n_quad, theta_range, item_ids,
           reference_group, min_responses, collapse_unused=False):
    r = _as_response_matrix(responses)
    n_persons_all, n_items = r.shape
    if item_ids is None:
        item_ids = np.array([f"item{j + 1}" for j in range(n_items)])
    else:
        item_ids = np.asarray(item_ids).astype(str)
        if item_ids.shape != (n_items,):
            raise ValueError(f"item_ids has shape {item_ids.shape}, expected ({n_items},)")
        if len(set(item_ids.tolist())) != n_items:
            raise ValueError("item_ids are not unique")
    codes = _item_codes(model, n_items)

    # observed entries as triplets (person, item, category): no dense int copies
    pi, pj, vals = _observed_entries(r)
    top = int(vals.max()) + 1 if vals.size else 1
    cat_counts = _category_counts(pj, vals, n_items, top)

    # anchors
    anchored = np.zeros(n_items, dtype=bool)
    anchor_rows = {}
    if anchors is not None:
        a_ids = np.asarray(anchors.item_ids).astype(str)
        pos = {iid: k for k, iid in enumerate(a_ids.tolist())}
        for j, iid in enumerate(item_ids.tolist()):
            if iid in pos:
                anchored[j] = True
                anchor_rows[j] = pos[iid]
        if not anchored.any():
            raise ValueError("none of the anchor item_ids occurs in item_ids")
        for j, k in anchor_rows.items():
            codes[j] = _CODE[catalogue.canonical(str(anchors.model[k]))]

    # unused categories below an item's highest one: merged away on request (the
    # categories above move down by one per empty category)
    collapsed: dict[int, list[int]] = {}
    if collapse_unused:
        for j in np.flatnonzero(~anchored):
            nz = np.flatnonzero(cat_counts[j])
            if nz.size >= 2 and nz.size < nz.max() + 1 and \
                    int(cat_counts[j].sum()) >= min_responses:
                collapsed[int(j)] = nz.tolist()
        if collapsed:
            remap = np.tile(np.arange(top), (n_items, 1))
            for j, used in collapsed.items():
                remap[j, used] = np.arange(len(used))
            vals = remap.astype(np.int16)[pj, vals]
            cat_counts = _category_counts(pj, vals, n_items, top)

    # categories and checks per item
    ncat = np.zeros(n_items, dtype=int)
    for j in range(n_items):
        name = item_ids[j]
        nz = np.flatnonzero(cat_counts[j])
        if anchored[j]:
            ncat[j] = int(anchors.n_categories[anchor_rows[j]])
            if nz.size and nz.max() >= ncat[j]:
                raise ValueError(f"item {name}: response above the anchor's "
                                 f"{ncat[j]} categories")
            continue
        problem = _item_problem(cat_counts[j], min_responses)
        if problem is not None:
            if problem.startswith("no responses in category"):
                problem += (" (merge unused categories with collapse_unused=True, "
                            "--collapse-unused on the command line)")
            raise ValueError(f"item {name}: {problem}")
        ncat[j] = nz.max() + 1
        if codes[j] in _DICHOTOMOUS_CODES and ncat[j] != 2:
            raise ValueError(f"item {name}: model {_MODELS[codes[j]]} needs 0/1 "
                             f"responses, found categories 0..{ncat[j] - 1}")
    kmax = max(2, int(ncat.max()))
    p = kmax + 1

    # persons without any response are dropped
    keep = np.zeros(n_persons_all, dtype=bool)
    for a in range(0, pi.size, _CHUNK):            # (memory: bincount copies to int64)
        keep[pi[a:a + _CHUNK]] = True
    # groups
    if groups is None:
        labels = np.array(["all"], dtype=object)
        gidx = np.zeros(n_persons_all, dtype=int)
    else:
        g = np.asarray(groups, dtype=object)
        if g.shape != (n_persons_all,):
            raise ValueError(f"groups has shape {g.shape}, expected ({n_persons_all},)")
        if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in g):
            raise ValueError("groups contains missing labels")
        g = g.astype(str)
        levels = sorted(set(g.tolist()))
        if reference_group is not None:
            if str(reference_group) not in levels:
                raise ValueError(f"reference_group {reference_group!r} not in groups")
            levels.remove(str(reference_group))
            levels.insert(0, str(reference_group))
        labels = np.array(levels, dtype=object)
        lookup = {v: k for k, v in enumerate(levels)}
        gidx = np.array([lookup[v] for v in g.tolist()], dtype=int)
        for k, lab in enumerate(levels):
            if not np.any(keep & (gidx == k)):
                raise ValueError(f"group {lab!r} has no person with responses")
    n_groups = labels.size

    # one-hot matrix, merged identical patterns when the test is short
    offsets = np.concatenate([[0], np.cumsum(ncat)[:-1]]).astype(np.int64)
    n_cols = int(ncat.sum())
    col_item = np.repeat(np.arange(n_items), ncat)
    col_cat = np.arange(n_cols) - offsets[col_item]
    rows_kept = np.flatnonzero(keep)
    weights = np.ones(rows_kept.size)
    new_row = (np.cumsum(keep) - 1).astype(np.int32)
    ei = pi if rows_kept.size == n_persons_all else new_row[pi]   # on the kept rows
    ej, ev = pj, vals
    del pi, pj, vals
    if n_items <= _DEDUP_MAX_ITEMS:
        key = np.full((rows_kept.size, n_items + 1), -1, dtype=np.int16)
        key[:, 0] = gidx[rows_kept]
        key[ei, ej + 1] = ev
        uniq, first, counts = np.unique(key, axis=0, return_index=True, return_counts=True)
        if uniq.shape[0] < 0.8 * rows_kept.size:
            rows_kept = rows_kept[first]
            weights = counts.astype(float)
            ei, ej = np.nonzero(uniq[:, 1:] >= 0)
            ev = uniq[:, 1:][ei, ej].astype(np.int64)
    gkeep = gidx[rows_kept]
    n_rows = rows_kept.size
    if n_items and ei.size == n_rows * n_items and np.all(ncat >= 2):
        Y, Z = None, _reduced_onehot(ei, ej, ev, offsets, n_rows, n_cols - n_items)
        del ei, ej, ev
    else:
        cols = offsets.astype(np.int32)[ej]
        cols += ev
        del ej, ev                                     # (memory: before Y exists)
        Y, Z = _onehot_matrix(ei, cols, n_rows, n_cols), None
        del ei, cols

    # parameters and free masks
    theta = quadrature_grid(n_quad, theta_range)
    X = np.zeros((n_items, p))
    free = np.zeros((n_items, p), dtype=bool)
    shared = np.zeros(n_items, dtype=bool)
    priors = priors if priors is not None else Priors()
    c_start = 0.2
    if priors.guessing_beta is not None:
        al, be = priors.guessing_beta
        if al > 1 and be > 1:
            c_start = (al - 1.0) / (al + be - 2.0)
    for j in range(n_items):
        code = codes[j]
        if anchored[j]:
            k = anchor_rows[j]
            b = np.asarray(anchors.b[k], dtype=float)
            X[j] = _to_internal(code, float(anchors.a[k]), b, float(anchors.c[k]), kmax)
            continue
        counts = cat_counts[j, :ncat[j]].astype(float)
        X[j, 0] = 1.0
        if code in _DICHOTOMOUS_CODES:
            pval = np.clip(counts[1] / counts.sum(), 0.02, 0.98)
            if code in _GUESSING_CODES:
                X[j, kmax] = c_start
                pval = np.clip((pval - c_start) / (1 - c_start), 0.02, 0.98)
                free[j, kmax] = True
            X[j, 1] = np.log(pval / (1 - pval)) * np.sqrt(1 + np.pi / 8)
            free[j, 1] = True
            free[j, 0] = code in _FREE_SLOPE_CODES
            shared[j] = code in _COMMON_SLOPE_CODES
        elif _ENTRY[code].family == "grm":
            tail = np.cumsum(counts[::-1])[::-1][1:] / counts.sum()      # P(X >= k)
            tail = np.clip(tail, 0.01, 0.99)
            X[j, 1:ncat[j]] = np.log(tail / (1 - tail)) * np.sqrt(1 + np.pi / 8)
            free[j, 0] = True
            free[j, 1:ncat[j]] = True
        else:  # gpcm, pcm: adjacent-category logits
            cc = np.maximum(counts, 0.5)
            X[j, 1:ncat[j]] = np.log(cc[1:] / cc[:-1])
            free[j, 0] = code in _FREE_SLOPE_CODES
            free[j, 1:ncat[j]] = True

    # 1pl with 1pl anchors: slope taken from the anchors
    one_pl_anchor = anchored & np.isin(codes, _COMMON_SLOPE_CODES)
    if np.any(shared) and np.any(one_pl_anchor):
        a_vals = X[one_pl_anchor, 0]
        if np.ptp(a_vals) > 1e-8:
            raise ValueError("1pl anchors have different slopes; a common slope is needed")
        X[shared, 0] = a_vals[0]
        shared[:] = False
    if np.any(shared):
        X[shared, 0] = 1.0

    # latent distribution identification
    est = ~anchored
    any_free_slope = bool(np.any(free[est, 0]) or np.any(shared))
    mu = np.zeros(n_groups)
    sigma = np.ones(n_groups)
    mu_free = np.ones(n_groups, dtype=bool)
    sigma_free = np.ones(n_groups, dtype=bool)
    if not anchored.any():
        mu_free[0] = False
        sigma_free[0] = not any_free_slope
    problem = _Problem(theta=theta, kmax=kmax, codes=codes, ncat=ncat, X=X, free=free,
                       shared=shared, anchored=anchored, offsets=offsets,
                       col_item=col_item, col_cat=col_cat, Y=Y, Z=Z, weights=weights,
                       group=gkeep, n_groups=n_groups, mu=mu, sigma=sigma,
                       mu_free=mu_free, sigma_free=sigma_free, priors=priors,
                       n_persons=int(keep.sum()))
    problem.by_code = {int(cd): np.flatnonzero(codes == cd) for cd in np.unique(codes)}
    problem.guessing = np.isin(codes, _GUESSING_CODES)
    problem.ordered = np.isin(codes, _ORDERED_CODES)
    problem.collapsed = collapsed
    return problem, item_ids, labels


# ----------------------------------------------------------------------------------------
# Model evaluation over all items
# ----------------------------------------------------------------------------------------

def _all_log_probs(pr: _Problem, X: np.ndarray, deriv: bool,
                   items: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """log P (J, Q, kmax) and d log P / dX (J, Q, kmax, p) for all items (or ``items``).

    The item response functions are ``scoring.models``' (slope-intercept form); -inf
    and 0 for categories an item lacks.
    """
    if len(pr.by_code) == 1:  # one model (the common case): no scatter
        code = next(iter(pr.by_code))
        out = slope_intercept_log_probabilities(
            _ENTRY[code].family, X if items is None else X[items],
            pr.ncat if items is None else pr.ncat[items], pr.theta,
            guessing=code in _GUESSING_CODES, gradient=deriv)
        return out.log_p, out.grad
    sel = np.arange(X.shape[0]) if items is None else items
    codes = pr.codes[sel]
    present = np.unique(codes)
    J, Q = sel.size, pr.theta.size
    log_p = np.full((J, Q, pr.kmax), -np.inf)
    grad = np.zeros((J, Q, pr.kmax, pr.kmax + 1)) if deriv else None
    for cd in present:
        loc = np.flatnonzero(codes == cd)
        idx = sel[loc]
        out = slope_intercept_log_probabilities(
            _ENTRY[cd].family, X[idx], pr.ncat[idx], pr.theta,
            guessing=int(cd) in _GUESSING_CODES, gradient=deriv)
        log_p[loc] = out.log_p
        if deriv:
            grad[loc] = out.grad
    return log_p, grad


def _log_prior_weights(theta: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """(G, Q) log of the discrete normal weights."""
    u = (theta[None, :] - mu[:, None]) / sigma[:, None]
    f = -0.5 * u * u
    fmax = f.max(axis=1, keepdims=True)
    return f - fmax - np.log(np.exp(f - fmax).sum(axis=1, keepdims=True))


def _group_log_weights(pr: _Problem, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """(G, Q) log weights of the latent density per group: the empirical histograms
    when ``density="eh"``, else the discrete normal ``N(mu_g, sigma_g^2)``."""
    if pr.eh_log_weights is not None:
        return pr.eh_log_weights
    return _log_prior_weights(pr.theta, mu, sigma)


class _Design:
    """The one-hot matrix of a complete dense design without its category-0 columns.

    When every (merged) person answers every item, ``log f_i(q) = sum_j log P_j0(q) +
    sum_{k>=1} Y_ijk (log P_jk(q) - log P_j0(q))`` and the category-0 counts are the
    posterior totals minus the other categories' counts: both E-step products shrink
    from C to C - J columns (half for dichotomous items), exactly.
    """

    def __init__(self, pr: _Problem):
        self.reduced = pr.Z                           # None: missing responses, full Y
        self.unit_weights = bool(np.all(pr.weights == 1.0))
        if pr.Z is None:
            return
        J = pr.ncat.size
        keep = pr.col_cat > 0
        self.keep = np.flatnonzero(keep)
        self.zero = pr.offsets                        # category-0 column of each item
        self.item_of_keep = pr.col_item[keep]
        self.starts = pr.offsets - np.arange(J)       # first kept column of each item


_BLOCK_BYTES = 4 * 2**20              # float64 copy of a row block of Z (memory)


def _z_blocks(Z: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, float64 copy) of consecutive row blocks of the uint8 matrix ``Z``,
    one reused buffer of about ``_BLOCK_BYTES``."""
    n, k = Z.shape
    step = max(1, _BLOCK_BYTES // (8 * max(1, k)))
    buf = np.empty((min(step, n), k))
    for s0 in range(0, n, step):
        block = buf[:min(step, n - s0)]
        np.copyto(block, Z[s0:s0 + step])
        yield s0, block


# a complete design's E-step runs in two threads (row halves) when the (persons x grid)
# arrays are at least this big: below it the threads cost more than they save
_PARALLEL_CELLS = 2_000_000


def _n_workers() -> int:
    """Cores this process may use (at most 2: the E-step's halves)."""
    try:
        return min(2, len(os.sched_getaffinity(0)))
    except AttributeError:                      # not Linux
        return min(2, os.cpu_count() or 1)


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    """The E-step's worker threads, made on first use and kept for the process."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="estep")


def _row_ranges(n: int, cells: int) -> list[tuple[int, int]]:
    """Split rows ``0..n`` in two halves when the work is big and two cores are free."""
    if cells < _PARALLEL_CELLS or _n_workers() < 2 or n < 2:
        return [(0, n)]
    return [(0, n // 2), (n // 2, n)]


def _reduced_pass(pr: _Problem, D: np.ndarray, const: np.ndarray, log_w: np.ndarray,
                  post: np.ndarray, counts: bool, r0: int, r1: int):
    """E-step of a complete design on rows ``r0:r1``, block by block of ``Z``.

    Writes the posterior into ``post[r0:r1]``; returns the weighted log-likelihood of
    the rows, ``W.T @ Z`` (Q, K) and the (G, Q) expected persons (both None without
    ``counts``).  A block's log-likelihoods are normalised and multiplied back while
    they are still in cache.
    """
    Z, Q = pr.Z, D.shape[1]
    unit = bool(np.all(pr.weights[r0:r1] == 1.0))
    ll = 0.0
    acc = np.zeros((Q, Z.shape[1])) if counts else None
    n_gq = np.zeros((pr.n_groups, Q)) if counts else None
    for s0, block in _z_blocks(Z[r0:r1]):
        a0, a1 = r0 + s0, r0 + s0 + block.shape[0]
        L = post[a0:a1]
        np.matmul(block, D, out=L)
        L += const
        if pr.n_groups > 1:
            L += log_w[pr.group[a0:a1]]
        w = pr.weights[a0:a1]
        ll += float(w @ normalize_log_weights(L))
        if not counts:
            continue
        wp = L if unit else L * w[:, None]
        acc += wp.T @ block                            # this order: 1.5x faster
        if pr.n_groups == 1:
            n_gq[0] += wp.sum(axis=0)
        else:
            grp = pr.group[a0:a1]
            for g in range(pr.n_groups):
                n_gq[g] += wp[grp == g].sum(axis=0)
    return ll, acc, n_gq


def _reduced_e_step(pr: _Problem, D: np.ndarray, const: np.ndarray, log_w: np.ndarray,
                    counts: bool):
    """:func:`_reduced_pass` over all persons, in two threads for big problems (numpy
    releases the GIL in its products and ufuncs); the halves are summed in a fixed
    order, so a given split gives the same numbers every run."""
    n = pr.Z.shape[0]
    post = np.empty((n, D.shape[1]))
    ranges = _row_ranges(n, n * D.shape[1])
    if len(ranges) == 1:
        parts = [_reduced_pass(pr, D, const, log_w, post, counts, 0, n)]
    else:
        # each thread runs in a copy of this context: numpy's error state is held there
        futures = [_pool().submit(contextvars.copy_context().run, _reduced_pass, pr, D,
                                  const, log_w, post, counts, a, b) for a, b in ranges]
        parts = [f.result() for f in futures]
    ll = sum(p[0] for p in parts)
    if not counts:
        return ll, post, None, None
    acc = parts[0][1]
    n_gq = parts[0][2]
    for p in parts[1:]:
        acc += p[1]
        n_gq += p[2]
    return ll, post, acc.T, n_gq


def _onehot_rows(pr: _Problem, s0: int, s1: int) -> np.ndarray | sp.csr_matrix:
    """Rows ``s0:s1`` of the full one-hot matrix (rebuilt dense from ``Z`` for a
    complete design)."""
    if pr.Z is None:
        return pr.Y[s0:s1]
    Zb = pr.Z[s0:s1]
    full = np.zeros((Zb.shape[0], pr.col_item.size))
    full[:, pr.col_cat > 0] = Zb
    full[:, pr.offsets] = 1.0 - np.add.reduceat(Zb, pr.offsets - np.arange(pr.ncat.size),
                                                axis=1)
    return full


def _onehot(pr: _Problem) -> np.ndarray | sp.csr_matrix:
    """The full one-hot matrix (persons x all categories); for a complete design a dense
    copy built from ``Z``, for the paths that need every column (Louis' information)."""
    return pr.Y if pr.Z is None else _onehot_rows(pr, 0, pr.Z.shape[0])


def _design(pr: _Problem) -> _Design:
    """The :class:`_Design` of ``pr``, built on first use and kept on the problem (its
    one-hot matrix never changes)."""
    d = pr.__dict__.get("_design_cache")
    if d is None or d[0] is not (pr.Y if pr.Z is None else pr.Z):
        d = (pr.Y if pr.Z is None else pr.Z, _Design(pr))
        pr.__dict__["_design_cache"] = d
    return d[1]


def _e_step(pr: _Problem, X: np.ndarray, mu: np.ndarray, sigma: np.ndarray,
            counts: bool = True):
    """Posterior over the grid and expected counts.

    Returns
    -------
    loglik : float
    post : (N, Q) posterior weights (rows sum to 1)
    R : (C, Q) expected counts per one-hot column and grid point, or None
    n_gq : (G, Q) expected number of persons per group and grid point, or None
    """
    des = _design(pr)
    logP, _ = _all_log_probs(pr, X, deriv=False)
    np.maximum(logP, _LOG_MIN, out=logP)                         # (J, Q, kmax)
    logP_cols = logP[pr.col_item, :, pr.col_cat]                # (C, Q)
    log_w = _group_log_weights(pr, mu, sigma)                   # (G, Q)
    if des.reduced is not None:
        base = logP_cols[des.zero]                               # (J, Q)
        const = base.sum(axis=0) + (log_w[0] if pr.n_groups == 1 else 0.0)
        loglik, post, R_keep, n_gq = _reduced_e_step(
            pr, logP_cols[des.keep] - base[des.item_of_keep], const, log_w, counts)
        if not counts:
            return loglik, post, None, None
        R = np.empty((pr.col_item.size, pr.theta.size))
        R[des.keep] = R_keep
        R[des.zero] = n_gq.sum(axis=0) - np.add.reduceat(R_keep, des.starts, axis=0)
        return loglik, post, R, n_gq
    L = pr.Y @ logP_cols                                         # (N, Q)
    if pr.n_groups == 1:
        L += log_w[0]
    else:
        L += log_w[pr.group]
    loglik = float(pr.weights @ normalize_log_weights(L))
    post = L
    if not counts:
        return loglik, post, None, None
    wpost = post if des.unit_weights else post * pr.weights[:, None]
    if pr.n_groups == 1:
        n_gq = wpost.sum(axis=0)[None, :]
    else:
        n_gq = np.stack([wpost[pr.group == g].sum(axis=0) for g in range(pr.n_groups)])
    # Y.T of a CSR matrix is a CSC view: scipy then scatters row by row of Y, which
    # reads wpost sequentially (several times faster than a CSR copy of the transpose)
    R = pr.Y.T @ wpost
    return loglik, post, R, n_gq


def _counts_by_item(pr: _Problem, R: np.ndarray) -> np.ndarray:
    """(C, Q) column counts -> (J, Q, kmax) padded counts."""
    r = np.zeros((pr.X.shape[0], pr.theta.size, pr.kmax))
    r[pr.col_item, :, pr.col_cat] = R
    return r


# ----------------------------------------------------------------------------------------
# M-step for items
# ----------------------------------------------------------------------------------------

def _slope_prior(pr: _Problem, a: np.ndarray):
    """log prior, gradient and negative second derivative of the slope prior."""
    if pr.priors.slope_lognormal is None:
        z = np.zeros_like(a)
        return z, z, z
    m, s = pr.priors.slope_lognormal
    with np.errstate(invalid="ignore", divide="ignore"):
        la = np.log(a)
        lp = -0.5 * ((la - m) / s) ** 2 - la
        g = -(la - m) / (s * s * a) - 1.0 / a
        h = (1.0 + s * s - (la - m)) / (s * s * a * a)    # -d2/da2
    lp = np.where(a > 0, lp, -np.inf)
    return lp, g, h


def _guess_prior(pr: _Problem, c: np.ndarray):
    if pr.priors.guessing_beta is None:
        z = np.zeros_like(c)
        return z, z, z
    al, be = pr.priors.guessing_beta
    with np.errstate(invalid="ignore", divide="ignore"):
        lp = (al - 1) * np.log(c) + (be - 1) * np.log1p(-c)
        g = (al - 1) / c - (be - 1) / (1 - c)
        h = (al - 1) / c ** 2 + (be - 1) / (1 - c) ** 2
    lp = np.where((c > 0) & (c < 1), lp, -np.inf)
    return lp, g, h


_C_MAX = 0.999     # upper bound for the 3PL lower asymptote in the M-step


def _grm_disordered(X: np.ndarray, ncat: np.ndarray, kmax: int) -> np.ndarray:
    """(n,) True where GRM intercepts d_1 > d_2 > ... are not strictly decreasing."""
    if kmax <= 2 or X.shape[0] == 0:
        return np.zeros(X.shape[0], dtype=bool)
    steps = np.diff(X[:, 1:kmax], axis=1)                          # d_{k+1} - d_k
    used = np.arange(2, kmax)[None, :] < ncat[:, None]             # pair (k, k+1) used
    return np.any(used & (steps >= 0), axis=1)


def _item_objective(pr: _Problem, X: np.ndarray, r: np.ndarray, items: np.ndarray
                    ) -> np.ndarray:
    """Expected complete-data log-likelihood + log prior per item in ``items``."""
    Xs = X[items]
    logP, _ = _all_log_probs(pr, X, deriv=False, items=items)
    rs = r[items]
    with np.errstate(invalid="ignore"):
        ll = np.where(rs > 0, rs * np.maximum(logP, _LOG_MIN), 0.0).sum(axis=(1, 2))
    bad = np.zeros(items.size, dtype=bool)
    # GRM: intercepts must decrease strictly
    grm = pr.ordered[items]
    if np.any(grm):
        bad[grm] = _grm_disordered(Xs[grm], pr.ncat[items[grm]], pr.kmax)
    three = pr.guessing[items]
    if np.any(three):
        lp, _, _ = _guess_prior(pr, Xs[three, pr.kmax])
        cc = Xs[three, pr.kmax]
        ok = (cc >= 0) & (cc < 1)
        ll[three] += np.where(ok, lp, 0.0)
        bad[np.flatnonzero(three)[~ok]] = True
    slope = pr.free[items, 0] | pr.shared[items]
    if np.any(slope) and pr.priors.slope_lognormal is not None:
        lp, _, _ = _slope_prior(pr, Xs[slope, 0])
        if np.any(pr.shared[items]):
            # the common slope prior counts once: spread it over the shared items
            nsh = max(1, int(pr.shared.sum()))
            lp = np.where(pr.shared[items][slope], lp / nsh, lp)
        ll[slope] += lp
    ll[bad | ~np.isfinite(ll)] = -np.inf
    return ll


def _score_and_info(pr: _Problem, X: np.ndarray, r: np.ndarray, items: np.ndarray,
                    with_prior: bool = True):
    """Gradient (n, p) and expected information (n, p, p) of the item objectives."""
    logP, G = _all_log_probs(pr, X, deriv=True, items=items)
    rs = r[items]
    Nq = rs.sum(axis=2)                                            # (n, Q)
    # score sum r d log P; expected information sum N P (d log P)(d log P)'
    g = np.einsum("nqk,nqkp->np", rs, G)
    info = np.einsum("nqk,nqkp,nqkr->npr", Nq[:, :, None] * np.exp(logP), G, G)
    if with_prior:
        Xs = X[items]
        if pr.priors.slope_lognormal is not None:
            sl = pr.free[items, 0] | pr.shared[items]
            _, gp, hp = _slope_prior(pr, Xs[:, 0])
            scale = np.where(pr.shared[items], 0.0, 1.0)   # shared: added once in Schur
            g[:, 0] += np.where(sl, gp * scale, 0.0)
            info[:, 0, 0] += np.where(sl, hp * scale, 0.0)
        three = pr.guessing[items]
        if np.any(three) and pr.priors.guessing_beta is not None:
            _, gp, hp = _guess_prior(pr, Xs[three, pr.kmax])
            g[three, pr.kmax] += gp
            info[three, pr.kmax, pr.kmax] += hp
    return g, info


def _m_step_items(pr: _Problem, X: np.ndarray, r: np.ndarray, max_newton: int = 25,
                  tol: float = 1e-7) -> np.ndarray:
    """Damped Fisher scoring (Levenberg-Marquardt) with step halving, all items at once.

    Each item's step solves ``(I + lambda_j D) step = g`` with ``I`` the expected
    information over the coordinates being moved, ``D`` its diagonal (floored) and a
    ridge ``lambda_j`` that starts near zero, grows tenfold when step halving finds no
    ascent and shrinks again after a successful step: a singular or indefinite block
    (a separating item, a slope running off) gives a short gradient-like step instead of
    numpy's "Singular matrix".  Slopes stay in ``[SLOPE_MIN, SLOPE_BOUND]`` and
    intercepts in ``[-INTERCEPT_BOUND, INTERCEPT_BOUND]`` (projection); a coordinate on
    its bound that wants to go further is held there for the step (active set), so the
    item's other parameters keep moving.
    """
    all_items = np.flatnonzero(~pr.anchored)
    if all_items.size == 0:
        return X
    X = _clip_to_bounds(pr, X.copy(), all_items)
    kmax = pr.kmax
    p = X.shape[1]
    eye = np.eye(p)
    lam_all = np.full(all_items.size, 1e-10)
    f_all = _item_objective(pr, X, r, all_items)
    # items whose last step moved less than tol are done (the common 1pl slope ties its
    # items together: they stay in the working set while any of them moves)
    work = np.ones(all_items.size, dtype=bool)
    for _ in range(max_newton):
        sel = np.flatnonzero(work)
        if sel.size == 0:
            break
        items = all_items[sel]
        lam = lam_all[sel]
        f_old = f_all[sel]
        shared = pr.shared[items]
        free = pr.free[items].copy()
        free[shared, 0] = True
        has_shared = bool(np.any(shared))
        base_mask = free.copy()
        base_mask[shared, 0] = False
        three = pr.guessing[items]
        X_before = X[items].copy()
        g, info = _score_and_info(pr, X, r, items)
        bad_info = ~np.all(np.isfinite(info), axis=(1, 2)) | ~np.all(np.isfinite(g), axis=1)
        if np.any(bad_info):
            info[bad_info] = eye
            g[bad_info] = 0.0
        solve_mask = base_mask.copy()
        if np.any(three):
            # active set: a lower asymptote at its bound 0 that wants to go lower stays
            # there for this step (projected Newton), so a and b keep moving
            stuck = three & (X[items, kmax] <= 0.0) & (g[:, kmax] <= 0.0)
            solve_mask[stuck, kmax] = False
        solve_mask &= ~_pushing_bounds(pr, X[items], g)
        mask2 = solve_mask[:, :, None] & solve_mask[:, None, :]
        A = np.where(mask2, info, 0.0)
        diag = np.einsum("npp->np", A)
        scale = np.maximum(diag, 1e-8 * np.maximum(diag.max(axis=1, keepdims=True), 1.0))
        A = A + (lam[:, None] * scale * solve_mask)[:, :, None] * eye + \
            eye * (~solve_mask)[:, :, None]
        gm = np.where(solve_mask, g, 0.0)
        cross = np.where(solve_mask, info[:, :, 0], 0.0)            # coupling with slope
        sol = _damped_solve(A, np.stack([gm, cross], axis=2))        # (n, p, 2)
        step = sol[:, :, 0]
        if has_shared:
            gsum = np.sum(g[shared, 0] - np.einsum("np,np->n", cross[shared],
                                                   sol[shared, :, 0]))
            ssum = np.sum(info[shared, 0, 0] - np.einsum("np,np->n", cross[shared],
                                                         sol[shared, :, 1]))
            a0 = X[items[shared][0], 0]
            if pr.priors.slope_lognormal is not None:
                _, gp, hp = _slope_prior(pr, np.array([a0]))
                gsum += gp[0]
                ssum += hp[0]
            d_alpha = gsum / ssum if ssum > 0 and np.isfinite(ssum) else 0.0
            step[shared] = sol[shared, :, 0] - sol[shared, :, 1] * d_alpha
            step[shared, 0] = d_alpha
        step = np.where(solve_mask | (free & shared[:, None] & (np.arange(p) == 0)),
                        step, 0.0)
        step[~np.all(np.isfinite(step), axis=1)] = 0.0
        big = np.abs(step).max(axis=1)
        step *= np.minimum(1.0, _MAX_STEP / np.maximum(big, 1e-300))[:, None]
        if has_shared:
            step[shared] *= np.min(np.minimum(1.0, _MAX_STEP / np.maximum(big[shared],
                                                                          1e-300)))
        t = np.ones(items.size)
        accepted = np.zeros(items.size, dtype=bool)
        f_new = f_old.copy()
        for _half in range(12):
            todo = ~accepted
            Xt = X.copy()
            Xt[items[todo]] += t[todo, None] * step[todo]
            Xt = _clip_to_bounds(pr, Xt, items[todo])
            ft = np.full(items.size, -np.inf)
            ft[todo] = _item_objective(pr, Xt, r, items[todo])
            ok = todo & (ft >= f_old - 1e-12 * np.abs(f_old))
            if has_shared:
                sh_ok = np.all(np.isfinite(ft[shared & todo])) and \
                    np.sum(ft[shared & todo]) >= np.sum(f_old[shared & todo]) - 1e-12
                ok[shared] = todo[shared] & sh_ok
            X[items[ok]] = Xt[items[ok]]
            f_new[ok] = ft[ok]
            accepted |= ok
            if accepted.all():
                break
            t[~accepted] *= 0.5
        # Levenberg-Marquardt: more damping where no ascent was found, less after a
        # full step
        lam_all[sel] = np.where(accepted, np.maximum(lam * 0.1, 1e-10),
                                np.minimum(lam * 10.0 + 1e-4, 1e8))
        f_all[sel] = f_new
        moved = np.abs(X[items] - X_before).max(axis=1)
        done = accepted & (moved < tol)        # a rejected step is retried, damped more
        if has_shared and not np.all(done[shared]):
            done[shared] = False
        work[sel[done]] = False
    return X


def _damped_solve(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``solve(A, B)`` for stacked symmetric blocks, never raising: blocks that are
    singular (or not finite) are solved through their eigendecomposition with the
    eigenvalues floored at 1e-8 of the largest (a ridge along the null directions)."""
    try:
        with np.errstate(all="ignore"):
            sol = np.linalg.solve(A, B)
        good = np.all(np.isfinite(sol), axis=(1, 2))
    except np.linalg.LinAlgError:
        sol = np.zeros(B.shape)
        good = np.zeros(A.shape[0], dtype=bool)
    if not good.all():
        bad = np.flatnonzero(~good)
        Ab = np.nan_to_num(0.5 * (A[bad] + A[bad].transpose(0, 2, 1)))
        w, V = np.linalg.eigh(Ab)
        floor = 1e-8 * np.maximum(np.abs(w).max(axis=1, keepdims=True), 1.0)
        w = np.maximum(w, floor)
        coef = np.einsum("npk,npr->nkr", V, np.nan_to_num(B[bad])) / w[:, :, None]
        sol[bad] = np.einsum("npk,nkr->npr", V, coef)
    return sol


def _clip_to_bounds(pr: _Problem, X: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Project the estimated parameters of ``items`` onto their box (in place)."""
    if items.size == 0:
        return X
    kmax = pr.kmax
    est = items[pr.free[items, 0] | pr.shared[items]]
    X[est, 0] = np.clip(X[est, 0], SLOPE_MIN, SLOPE_BOUND)
    X[items, 1:kmax] = np.clip(X[items, 1:kmax], -INTERCEPT_BOUND, INTERCEPT_BOUND)
    three = items[pr.guessing[items]]
    if three.size:
        # projection of c onto [0, _C_MAX]
        X[three, kmax] = np.clip(X[three, kmax], 0.0, _C_MAX)
    return X


def _pushing_bounds(pr: _Problem, Xs: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(n, p) True where a slope or intercept is on its bound and its gradient points
    outwards (held fixed for the step)."""
    out = np.zeros(Xs.shape, dtype=bool)
    kmax = pr.kmax
    for cols, lo, hi in (([0], SLOPE_MIN, SLOPE_BOUND),
                         (list(range(1, kmax)), -INTERCEPT_BOUND, INTERCEPT_BOUND)):
        v, gv = Xs[:, cols], g[:, cols]
        out[:, cols] = ((v >= hi - 1e-9 * abs(hi)) & (gv >= 0)) | \
            ((v <= lo + 1e-9 * abs(lo)) & (gv <= 0))
    return out


def _at_bounds(pr: _Problem, X: np.ndarray) -> np.ndarray:
    """(J, p) True where an estimated slope or intercept lies on its bound."""
    kmax = pr.kmax
    est = ~pr.anchored
    out = np.zeros(X.shape, dtype=bool)
    slope = est & (pr.free[:, 0] | pr.shared)
    out[:, 0] = slope & ((X[:, 0] >= SLOPE_BOUND * (1 - 1e-6))
                         | (X[:, 0] <= SLOPE_MIN * (1 + 1e-6)))
    out[:, 1:kmax] = est[:, None] & pr.free[:, 1:kmax] & \
        (np.abs(X[:, 1:kmax]) >= INTERCEPT_BOUND * (1 - 1e-6))
    return out


# ----------------------------------------------------------------------------------------
# M-step for group distributions
# ----------------------------------------------------------------------------------------

def _group_derivs(theta: np.ndarray, mu: float, sigma: float):
    """Derivatives of log pi_q (discrete normal weights) w.r.t. (mu, sigma).

    Returns dlogpi (Q, 2) and, for given counts, a function giving grad (2,) and
    hessian (2, 2) of sum_q n_q log pi_q.
    """
    u = (theta - mu) / sigma
    f = -0.5 * u * u
    w = np.exp(f - f.max())
    w /= w.sum()
    df = np.stack([u / sigma, u * u / sigma], axis=1)                 # (Q, 2)
    d2f = np.empty((theta.size, 2, 2))
    d2f[:, 0, 0] = -1.0 / sigma ** 2
    d2f[:, 0, 1] = d2f[:, 1, 0] = -2.0 * u / sigma ** 2
    d2f[:, 1, 1] = -3.0 * u * u / sigma ** 2
    e_df = w @ df
    dlogpi = df - e_df
    e_d2f = np.einsum("q,qab->ab", w, d2f)
    cov = np.einsum("q,qa,qb->ab", w, dlogpi, dlogpi)

    def grad_hess(n_q: np.ndarray):
        ntot = n_q.sum()
        gr = n_q @ df - ntot * e_df
        he = np.einsum("q,qab->ab", n_q, d2f) - ntot * (e_d2f + cov)
        return gr, he

    return dlogpi, grad_hess


def _standardised_histogram(theta: np.ndarray, f: np.ndarray, sd: float | None
                            ) -> np.ndarray:
    """Histogram weights ``f`` (Q,) moved to mean 0 and SD ``sd`` (None: its own SD) on
    the same grid: the density of ``(X - m) * sd / s`` for ``X ~ f`` (mean m, SD s),
    linearly interpolated at the grid points; the scale is refined until the SD is
    met to 1e-10 (linear interpolation adds about h^2 / 6 of variance)."""
    m = f @ theta
    s = float(np.sqrt(f @ (theta - m) ** 2))
    target = s if sd is None else sd
    scale = s / target                      # evaluate f at m + scale * theta
    g = f
    for _ in range(20):
        g = np.interp(m + scale * theta, theta, f, left=0.0, right=0.0)
        g = np.maximum(g, 0.0)
        g /= g.sum()
        mg = g @ theta
        sg = float(np.sqrt(g @ (theta - mg) ** 2))
        if abs(sg - target) < 1e-10 * target and abs(mg) < 1e-10:
            break
        m += scale * mg                     # re-centre and rescale
        scale *= sg / target
    return g


def _m_step_eh(pr: _Problem, mu: np.ndarray, sigma: np.ndarray, n_gq: np.ndarray):
    """Empirical-histogram M-step (Bock & Aitkin 1981, Woods 2007): each group's
    weights become its normalised expected counts per node; without anchors the
    reference group's histogram is standardised to mean 0 and SD 1 (its own SD when
    that SD is free, rasch/pcm).  ``pr.eh_log_weights`` is updated; the returned
    means and SDs are the histograms' moments."""
    mu, sigma = mu.copy(), sigma.copy()
    logw = np.empty_like(pr.eh_log_weights)
    for g in range(pr.n_groups):
        f = np.maximum(n_gq[g], 0.0)
        f = f / f.sum()
        if g == 0 and not pr.mu_free[0]:
            f = _standardised_histogram(pr.theta, f, None if pr.sigma_free[0] else 1.0)
        mu[g] = f @ pr.theta
        sigma[g] = float(np.sqrt(f @ (pr.theta - mu[g]) ** 2))
        logw[g] = np.log(np.maximum(f, _LOG_FLOOR))
    pr.eh_log_weights = logw
    return mu, sigma


def _m_step_groups(pr: _Problem, mu: np.ndarray, sigma: np.ndarray, n_gq: np.ndarray):
    if pr.eh_log_weights is not None:
        return _m_step_eh(pr, mu, sigma, n_gq)
    mu, sigma = mu.copy(), sigma.copy()
    lw_all = None
    for g in range(pr.n_groups):
        fm = np.array([pr.mu_free[g], pr.sigma_free[g]])
        if not fm.any():
            continue
        n_q = n_gq[g]
        for _ in range(30):
            lw_all = _log_prior_weights(pr.theta, mu[g:g + 1], sigma[g:g + 1])[0]
            obj = n_q @ lw_all
            _, gh = _group_derivs(pr.theta, mu[g], sigma[g])
            gr, he = gh(n_q)
            A = np.where(np.outer(fm, fm), -he, 0.0) + np.diag(~fm)
            try:
                step = np.linalg.solve(A, np.where(fm, gr, 0.0))
            except np.linalg.LinAlgError:
                break
            if not np.all(np.isfinite(step)) or np.any(np.diag(A)[fm] <= 0):
                # fall back to moment matching
                m1 = n_q @ pr.theta / n_q.sum()
                v = n_q @ (pr.theta - m1) ** 2 / n_q.sum()
                step = np.array([m1 - mu[g], np.sqrt(v) - sigma[g]]) * fm
            t = 1.0
            for _h in range(20):
                m_new = mu[g] + t * step[0]
                s_new = sigma[g] + t * step[1]
                if s_new > 0.05:
                    new = n_q @ _log_prior_weights(pr.theta, np.array([m_new]),
                                                   np.array([s_new]))[0]
                    if new >= obj - 1e-12 * abs(obj):
                        break
                t *= 0.5
            else:
                break
            mu[g], sigma[g] = m_new, s_new
            if np.abs(t * step).max() < 1e-10:
                break
    return mu, sigma


# ----------------------------------------------------------------------------------------
# EM driver
# ----------------------------------------------------------------------------------------

def _pack(pr: _Problem, X: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    # density="eh": the histograms (held in pr) are part of the EM state SQUAREM extrapolates
    eh = [] if pr.eh_log_weights is None else [np.exp(pr.eh_log_weights).ravel()]
    return np.concatenate([X[pr.free | pr.shared[:, None] & _slope_col(pr)],
                           mu[pr.mu_free], sigma[pr.sigma_free], *eh])


def _slope_col(pr: _Problem) -> np.ndarray:
    m = np.zeros(pr.X.shape[1], dtype=bool)
    m[0] = True
    return m


def _unpack(pr: _Problem, vec: np.ndarray, X: np.ndarray, mu: np.ndarray, sigma: np.ndarray):
    X, mu, sigma = X.copy(), mu.copy(), sigma.copy()
    mask = pr.free | pr.shared[:, None] & _slope_col(pr)
    n1 = int(mask.sum())
    X[mask] = vec[:n1]
    n2 = n1 + int(pr.mu_free.sum())
    mu[pr.mu_free] = vec[n1:n2]
    n3 = n2 + int(pr.sigma_free.sum())
    sigma[pr.sigma_free] = vec[n2:n3]
    if pr.eh_log_weights is not None:
        # extrapolated histograms: negative weights clipped, rows renormalised (sets pr)
        w = np.maximum(vec[n3:].reshape(pr.eh_log_weights.shape), 0.0)
        w /= w.sum(axis=1, keepdims=True)
        pr.eh_log_weights = np.log(np.maximum(w, _LOG_FLOOR))
    if np.any(pr.shared):
        X[pr.shared, 0] = X[pr.shared, 0].mean()
    return X, mu, sigma


def _em_cycle(pr, X, mu, sigma):
    """One EM cycle; returns new parameters and the log-likelihood at the old ones."""
    ll, _, R, n_gq = _e_step(pr, X, mu, sigma)
    r = _counts_by_item(pr, R)
    X_new = _m_step_items(pr, X, r)
    mu_new, s_new = _m_step_groups(pr, mu, sigma, n_gq)
    return X_new, mu_new, s_new, ll


def _log_prior_total(pr: _Problem, X: np.ndarray) -> float:
    total = 0.0
    est = ~pr.anchored
    if pr.priors.slope_lognormal is not None:
        sl = est & pr.free[:, 0]
        if np.any(sl):
            total += float(_slope_prior(pr, X[sl, 0])[0].sum())
        if np.any(pr.shared):
            total += float(_slope_prior(pr, X[pr.shared, 0][:1])[0].sum())
    three = est & pr.guessing
    if np.any(three) and pr.priors.guessing_beta is not None:
        total += float(_guess_prior(pr, X[three, pr.kmax])[0].sum())
    return total


def _valid(pr: _Problem, X: np.ndarray, sigma: np.ndarray) -> bool:
    if np.any(sigma <= 0.05) or not np.all(np.isfinite(X)):
        return False
    est = ~pr.anchored
    three = est & pr.guessing
    if np.any(three) and np.any((X[three, pr.kmax] < 0) | (X[three, pr.kmax] >= 1)):
        return False
    grm = est & pr.ordered
    return not np.any(_grm_disordered(X[grm], pr.ncat[grm], pr.kmax))


def _run_em(pr: _Problem, max_iter: int, tol: float, progress):
    X, mu, sigma = pr.X.copy(), pr.mu.copy(), pr.sigma.copy()
    history: list[IterationRecord] = []
    prev_ll = -np.inf
    converged = False
    it = 0
    use_prior = (pr.priors.slope_lognormal is not None) or \
        (pr.priors.guessing_beta is not None and bool(np.any(pr.guessing)))

    def objective(ll, Xv):
        return ll + (_log_prior_total(pr, Xv) if use_prior else 0.0)

    while it < max_iter:
        it += 1
        x0 = _pack(pr, X, mu, sigma)
        X1, mu1, s1, ll = _em_cycle(pr, X, mu, sigma)
        x1 = _pack(pr, X1, mu1, s1)
        # SQUAREM every third cycle (needs a second EM step)
        if it % 3 == 0 and it < max_iter:
            X2, mu2, s2, ll1 = _em_cycle(pr, X1, mu1, s1)
            x2 = _pack(pr, X2, mu2, s2)
            rr = x1 - x0
            vv = x2 - 2 * x1 + x0
            nv = np.linalg.norm(vv)
            accepted = False
            if nv > 0:
                alpha = -np.linalg.norm(rr) / nv
                alpha = max(alpha, -50.0)
                if alpha < -1.0:
                    xs = x0 - 2 * alpha * rr + alpha * alpha * vv
                    histogram = pr.eh_log_weights   # density="eh": kept if rejected
                    Xs, mus, ss = _unpack(pr, xs, X, mu, sigma)
                    if _valid(pr, Xs, ss):
                        # stabilising EM step from the extrapolated point (a point so far
                        # out that an item's information is singular is not taken)
                        try:
                            Xs2, mus2, ss2, lls = _em_cycle(pr, Xs, mus, ss)
                        except _SingularBlocks:
                            lls = -np.inf
                        ref = objective(ll1, X1)
                        if np.isfinite(lls) and objective(lls, Xs) >= ref:
                            X1, mu1, s1 = Xs2, mus2, ss2
                            accepted = True
                    if not accepted:
                        pr.eh_log_weights = histogram
            if not accepted:
                X1, mu1, s1 = X2, mu2, s2
            x1 = _pack(pr, X1, mu1, s1)
        change = float(np.abs(x1 - x0).max()) if x1.size else 0.0
        rec = IterationRecord(iteration=it, loglik=ll, max_change=change)
        history.append(rec)
        if progress is not None:
            progress(rec)
        X, mu, sigma = X1, mu1, s1
        if change < tol and abs(ll - prev_ll) < max(tol, 1e-9 * abs(ll)):
            converged = True
            break
        prev_ll = ll
    return X, mu, sigma, history, converged


# ----------------------------------------------------------------------------------------
# Standard errors: observed information of the marginal log-likelihood (Louis)
# ----------------------------------------------------------------------------------------

def _item_rows(pr: _Problem, j: int, Y, Ycsc) -> tuple[np.ndarray, np.ndarray]:
    """Rows (persons) answering item j and their categories."""
    off, k = pr.offsets[j], pr.ncat[j]
    if Ycsc is not None:
        sub = Ycsc[:, off:off + k]
        rows = sub.indices
        cats = np.repeat(np.arange(k), np.diff(sub.indptr))
        order = np.argsort(rows, kind="stable")
        return rows[order], cats[order]
    rows, cats = np.nonzero(Y[:, off:off + k])
    return rows, cats


def _louis_cost(pr: _Problem) -> float:
    """Multiply-adds of the full Louis information: about Q x p x sum_i m_i^2 / 2 over the
    (merged) response patterns, m_i = responses of pattern i (one product per item with
    the patterns answering it, lower triangle only)."""
    Y = pr.Y
    if pr.Z is not None:
        m = np.full(pr.Z.shape[0], float(pr.ncat.size))
    else:
        m = np.diff(Y.indptr) if _is_sparse(Y) else np.count_nonzero(Y, axis=1)
        m = m.astype(float)
    return float(pr.theta.size * (pr.kmax + 1) * 0.5 * (m @ m))


#: ``se_method="auto"`` uses the full Louis information up to this many multiply-adds
#: (:func:`_louis_cost`; about 0.1 s on one core) and the cross-product (XPD) beyond
_LOUIS_MAX_COST = 2e8
_XPD_CHUNK = 512                      # persons per block of the XPD score matrix (memory)


def _xpd_hessian(pr: _Problem, post: np.ndarray, D_cols: np.ndarray, active: np.ndarray,
                 n_exp: int, grp_coord: np.ndarray, dlogpi: np.ndarray) -> np.ndarray:
    """Minus the cross-product of the person scores, ``-sum_i w_i s_i s_i'`` (n_exp, n_exp).

    ``s_i = E_post[d log f_i / d par]``: for item coordinates the posterior mean of
    ``d log P_j(y_ij) / dX_j`` (``post_i @ D_cols[col(i, j)]``), for group coordinates
    ``post_i @ d log pi_g / d(mu_g, sigma_g)`` of the person's group.  Persons are taken
    in blocks of ``_XPD_CHUNK`` (memory O(block x C x p)).
    """
    J, p = active.shape
    C, Q, _ = D_cols.shape
    Dmat = D_cols.transpose(1, 0, 2).reshape(Q, C * p)                  # (Q, C p)
    jj, cc = np.nonzero(active)
    flat = jj * p + cc                                                  # item coords
    gcoords = [(g, t, int(grp_coord[g, t])) for g in range(pr.n_groups) for t in range(2)
               if grp_coord[g, t] >= 0]
    sparse = pr.Z is None and _is_sparse(pr.Y)
    N = pr.weights.size
    out = np.zeros((n_exp, n_exp))
    for s0 in range(0, N, _XPD_CHUNK):
        s1 = min(N, s0 + _XPD_CHUNK)
        n = s1 - s0
        pst = post[s0:s1]
        A = (pst @ Dmat).reshape(n, C, p)                               # per column
        blk = _onehot_rows(pr, s0, s1)
        if sparse:
            ei = np.repeat(np.arange(n), np.diff(blk.indptr))
            ec = blk.indices
        else:
            ei, ec = np.nonzero(blk)
        Sfull = np.zeros((n, J, p))
        Sfull[ei, pr.col_item[ec]] = A[ei, ec]                          # one answer per item
        S = np.zeros((n, n_exp))
        S[:, :flat.size] = Sfull.reshape(n, J * p)[:, flat]
        if gcoords:
            grp = pr.group[s0:s1]
            for g, t, k in gcoords:
                S[:, k] = np.where(grp == g, pst @ dlogpi[g, :, t], 0.0)
        S *= np.sqrt(pr.weights[s0:s1])[:, None]
        out += S.T @ S                                   # numpy: one syrk (half a gemm)
    return -out


def _louis_hessian(pr: _Problem, X: np.ndarray, mu: np.ndarray, sigma: np.ndarray,
                   post: np.ndarray, r: np.ndarray, n_gq: np.ndarray, active: np.ndarray,
                   item_coord: np.ndarray, n_exp: int, grp_coord: np.ndarray) -> np.ndarray:
    """Hessian of the marginal log-likelihood (no prior) in the expanded coordinates of
    :func:`_observed_information`, exactly for the quadrature by Louis' identity."""
    J, p = X.shape
    Q = pr.theta.size
    est_items = np.flatnonzero(~pr.anchored)
    jj, cc = np.nonzero(active)
    H = np.zeros((n_exp, n_exp))          # Hessian of the log-likelihood (no prior)

    # complete-data item blocks: central differences of the analytic score
    if est_items.size:
        for col in range(p):
            if not np.any(active[est_items, col]):
                continue
            h = 1e-5 * np.maximum(1.0, np.abs(X[est_items, col]))
            Xp, Xm = X.copy(), X.copy()
            Xp[est_items, col] += h
            Xm[est_items, col] -= h
            gp, _ = _score_and_info(pr, Xp, r, est_items, with_prior=False)
            gm, _ = _score_and_info(pr, Xm, r, est_items, with_prior=False)
            dcol = (gp - gm) / (2 * h[:, None])                       # (n, p)
            for loc, j in enumerate(est_items):
                if not active[j, col]:
                    continue
                rows = item_coord[j][active[j]]
                H[rows, item_coord[j, col]] += dcol[loc, active[j]]
    # complete-data group blocks
    dlogpi = np.zeros((pr.n_groups, Q, 2))
    for g in range(pr.n_groups):
        dl, gh = _group_derivs(pr.theta, mu[g], sigma[g])
        dlogpi[g] = dl
        _, he = gh(n_gq[g])
        idx = [t for t in range(2) if grp_coord[g, t] >= 0]
        for t1 in idx:
            for t2 in idx:
                H[grp_coord[g, t1], grp_coord[g, t2]] += he[t1, t2]

    # posterior covariance part: sum_i w_i Cov_post(dL_i)
    _, D = _all_log_probs(pr, X, deriv=True)                           # d log P / dX
    D = D.transpose(0, 2, 1, 3)                                         # (J, kmax, Q, p)
    D_cols = D[pr.col_item, pr.col_cat]                                 # (C, Q, p)
    Y = _onehot(pr)
    sparse = _is_sparse(Y)
    Ycsc = Y.tocsc() if sparse else None
    N = Y.shape[0]
    gcoords_all = [(g, t) for g in range(pr.n_groups) for t in range(2) if grp_coord[g, t] >= 0]

    def cross(rows: np.ndarray, U: np.ndarray, first: int) -> np.ndarray:
        """sum_i sum_q U[i, q, x] dL_iq/dx' for x' of items >= first and all groups.

        Returns (n_exp, nx); rows of items before ``first`` are left at 0 (they are
        filled by symmetry).
        """
        nx = U.shape[2]
        out = np.zeros((n_exp, nx))
        if first < J:
            off = pr.offsets[first]
            if sparse:
                Ysub = Y[rows][:, off:]
            else:
                Ysub = (Y if rows.size == N else Y[rows])[:, off:]
            M = (Ysub.T @ U.reshape(rows.size, Q * nx)).reshape(-1, Q, nx)
            # items: sum_k sum_q D[j', k, q, x'] M[col(j', k), q, x]
            contrib = np.einsum("cqy,cqx->cyx", D_cols[off:], M)         # (C', p, nx)
            per_item = np.add.reduceat(contrib, pr.offsets[first:] - off, axis=0)
            sel = jj >= first
            out[item_coord[jj[sel], cc[sel]]] = per_item[jj[sel] - first, cc[sel]]
        # groups
        if gcoords_all:
            gsum = np.zeros((pr.n_groups, Q, nx))
            if pr.n_groups == 1:
                gsum[0] = U.sum(axis=0)
            else:
                grp_rows = pr.group[rows]
                for g in range(pr.n_groups):
                    gsum[g] = U[grp_rows == g].sum(axis=0)
            for g, t in gcoords_all:
                out[grp_coord[g, t]] = np.einsum("qx,q->x", gsum[g], dlogpi[g, :, t])
        return out

    # posterior-covariance part, lower triangle (coordinates are ordered by item, then
    # groups), mirrored afterwards: about half the work of full columns
    C = np.zeros((n_exp, n_exp))
    w = pr.weights
    for j in est_items:
        xs = np.flatnonzero(active[j])
        rows, cats = _item_rows(pr, j, Y, Ycsc)
        dL = D[j][cats][:, :, xs]                                       # (n, Q, nx)
        pst = post if rows.size == N else post[rows]
        s = np.einsum("nq,nqx->nx", pst, dL)
        dL -= s[:, None, :]
        dL *= (pst * w[rows][:, None])[:, :, None]                       # U, in place
        C[:, item_coord[j, xs]] = cross(rows, dL, j)
    for g, t in gcoords_all:
        rows = np.flatnonzero(pr.group == g)
        dL = np.broadcast_to(dlogpi[g][:, t][None, :, None], (rows.size, Q, 1))
        pst = post[rows]
        s = np.einsum("nq,nqx->nx", pst, dL)
        U = (w[rows][:, None, None] * pst[:, :, None]) * (dL - s[:, None, :])
        C[:, [grp_coord[g, t]]] = cross(rows, U, J)
    low = np.tril(C)
    H += low + low.T - np.diag(np.diag(low))
    return 0.5 * (H + H.T)


def _observed_information(pr: _Problem, X: np.ndarray, mu: np.ndarray, sigma: np.ndarray,
                          post: np.ndarray, r: np.ndarray, n_gq: np.ndarray,
                          method: str = "louis"):
    """Observed information (negative Hessian of loglik + log prior) in the free space.

    ``method="louis"``: exact for the quadrature (Louis' identity, cost
    :func:`_louis_cost`); ``"xpd"``: the cross-product of the person scores, a consistent
    estimate of the same information at one pass over the data (plus the prior
    curvature), see :func:`_xpd_hessian`.

    Returns
    -------
    info : (k, k) over the free parameters
    free_index : list of k tuples (kind, item or group, column); kind is "item"
        (column 0 = slope, 1.. = intercepts, kmax = c), "shared_a" (common 1pl slope)
        or "group" (column 0 = mean, 1 = SD)
    """
    J, p = X.shape
    active = pr.free.copy()
    active[pr.shared, 0] = True
    # expanded coordinates: items first (row-major over active), then group params
    item_coord = -np.ones((J, p), dtype=int)
    jj, cc = np.nonzero(active)
    item_coord[jj, cc] = np.arange(jj.size)
    n_item_coords = jj.size
    grp_coord = -np.ones((pr.n_groups, 2), dtype=int)
    nxt = n_item_coords
    for g in range(pr.n_groups):
        for t, f in enumerate((pr.mu_free[g], pr.sigma_free[g])):
            if f:
                grp_coord[g, t] = nxt
                nxt += 1
    n_exp = nxt
    gcoords_all = [(g, t) for g in range(pr.n_groups) for t in range(2)
                   if grp_coord[g, t] >= 0]
    if method == "xpd":
        dlogpi = np.stack([_group_derivs(pr.theta, mu[g], sigma[g])[0]
                           for g in range(pr.n_groups)])
        _, D = _all_log_probs(pr, X, deriv=True)                       # d log P / dX
        D_cols = D.transpose(0, 2, 1, 3)[pr.col_item, pr.col_cat]       # (C, Q, p)
        del D
        H = _xpd_hessian(pr, post, D_cols, active, n_exp, grp_coord, dlogpi)
    elif method == "louis":
        H = _louis_hessian(pr, X, mu, sigma, post, r, n_gq, active, item_coord, n_exp,
                           grp_coord)
    else:
        raise ValueError(f"unknown SE method {method!r} (louis, xpd)")

    # map expanded -> free (the common 1pl slope is one free parameter)
    free_index = []
    T_cols = []
    shared_col = None
    for e in range(n_item_coords):
        j, c = jj[e], cc[e]
        if c == 0 and pr.shared[j]:
            if shared_col is None:
                shared_col = len(free_index)
                free_index.append(("shared_a", -1, 0))
                T_cols.append([e])
            else:
                T_cols[shared_col].append(e)
        else:
            free_index.append(("item", j, c))
            T_cols.append([e])
    for g, t in gcoords_all:
        free_index.append(("group", g, t))
        T_cols.append([grp_coord[g, t]])
    T = np.zeros((n_exp, len(free_index)))
    for k, es in enumerate(T_cols):
        T[es, k] = 1.0
    info = -(T.T @ H @ T)
    # priors (curvature of the log prior), once per free parameter
    for k, (kind, j, c) in enumerate(free_index):
        if kind == "shared_a" or (kind == "item" and c == 0):
            if pr.priors.slope_lognormal is not None:
                a = X[pr.shared, 0][:1] if kind == "shared_a" else X[j:j + 1, 0]
                info[k, k] += _slope_prior(pr, a)[2][0]
        elif kind == "item" and c == pr.kmax and pr.priors.guessing_beta is not None:
            info[k, k] += _guess_prior(pr, X[j:j + 1, pr.kmax])[2][0]
    return info, free_index


def _standard_errors(pr, X, mu, sigma, post, r, n_gq, method: str = "louis"):
    """SEs of (a, b, c) per item and of group means/SDs; NaN where fixed.

    ``method``: the information of :func:`_observed_information` ("louis" or "xpd").

    The last value returned is None when the observed information could be inverted,
    else the indices of the items it does not identify (:func:`_unidentified_items`).
    """
    J = X.shape[0]
    kmax = pr.kmax
    se_a = np.full(J, np.nan)
    se_b = np.full((J, kmax - 1), np.nan)
    se_c = np.full(J, np.nan)
    se_mu = np.full(pr.n_groups, np.nan)
    se_sd = np.full(pr.n_groups, np.nan)
    info, free_index = _observed_information(pr, X, mu, sigma, post, r, n_gq, method)
    ok = True
    if info.size:
        try:
            cov = np.linalg.inv(info)
            ok = bool(np.all(np.isfinite(cov)) and np.all(np.diag(cov) > 0))
        except np.linalg.LinAlgError:
            ok = False
    else:
        cov = info
    if not ok:
        return se_a, se_b, se_c, se_mu, se_sd, _unidentified_items(info, free_index)
    pos = {}
    for k, (kind, j, c) in enumerate(free_index):
        pos[(kind, j, c)] = k
    shared_k = pos.get(("shared_a", -1, 0))
    for j in np.flatnonzero(~pr.anchored):
        if pr.shared[j]:
            ka = shared_k
        else:
            ka = pos.get(("item", j, 0))
        a = X[j, 0]
        if ka is not None:
            se_a[j] = np.sqrt(cov[ka, ka])
        nb = pr.ncat[j] - 1
        for m in range(1, nb + 1):
            kd = pos.get(("item", j, m))
            if kd is None:
                continue
            d = X[j, m]
            # b = -d / a
            grad = {kd: -1.0 / a}
            if ka is not None:
                grad[ka] = d / a ** 2
            keys = list(grad)
            gv = np.array([grad[k] for k in keys])
            se_b[j, m - 1] = np.sqrt(gv @ cov[np.ix_(keys, keys)] @ gv)
        kc = pos.get(("item", j, kmax))
        if kc is not None:
            se_c[j] = np.sqrt(cov[kc, kc])
    for g in range(pr.n_groups):
        k = pos.get(("group", g, 0))
        if k is not None:
            se_mu[g] = np.sqrt(cov[k, k])
        k = pos.get(("group", g, 1))
        if k is not None:
            se_sd[g] = np.sqrt(cov[k, k])
    return se_a, se_b, se_c, se_mu, se_sd, None


def _unidentified_items(info: np.ndarray, free_index: list) -> np.ndarray:
    """Indices of the items an information matrix that is not positive definite points at.

    The directions it does not identify are its eigenvectors with eigenvalues at or below
    ``1e-8`` times the largest; an item is named when at least 10 % of such a vector's
    weight lies on its parameters (a diverging slope, or two items that only move
    together).  Empty when no item stands out (the group parameters, say).
    """
    if not info.size or not np.all(np.isfinite(info)):
        items = {j for kind, j, _c in free_index if kind == "item"}
        return np.array(sorted(items), dtype=int)
    values, vectors = np.linalg.eigh(0.5 * (info + info.T))
    small = values <= 1e-8 * max(float(np.abs(values).max()), 1e-300)
    owner = np.array([j if kind == "item" else -1 for kind, j, _c in free_index])
    named: set[int] = set()
    for v in vectors[:, small].T:
        weight = v ** 2
        for j in np.unique(owner[owner >= 0]):
            if weight[owner == j].sum() >= 0.1:
                named.add(int(j))
    return np.array(sorted(named), dtype=int)


# ----------------------------------------------------------------------------------------
# Public entry point
# ----------------------------------------------------------------------------------------

def calibrate(responses: np.ndarray, model: str | Sequence[str], *,
              groups: Sequence | np.ndarray | None = None,
              anchors: ItemParams | None = None,
              priors: Priors | None = None,
              n_quad: int | str = "auto",
              max_iter: int = 500,
              tol: float = 1e-4,
              progress: Callable[[IterationRecord], None] | None = None,
              item_ids: Sequence[str] | np.ndarray | None = None,
              reference_group: str | None = None,
              theta_range: tuple[float, float] = (-6.0, 6.0),
              min_responses: int = 10,
              compute_se: bool = True,
              blas_threads: int | None = 1,
              density: str = "normal",
              collapse_unused: bool = False,
              se_method: str = "auto") -> CalibrationResult:
    """Calibrate items by marginal maximum likelihood (Bock-Aitkin EM).

    Parameters
    ----------
    responses : (n_persons, n_items) float
        Categories ``0..K-1``; NaN = not administered.  Any float dtype (float32 saves
        memory for large sparse designs); integer arrays are accepted.  Persons without
        any response are ignored (also in ``n_persons`` for BIC).  Estimated items take
        ``K`` = highest observed category + 1, and every category 0..K-1 must occur
        (or ``collapse_unused``).
    model : str or sequence of str
        A model of :mod:`scoring.catalogue` (``rasch, 1pl, 2pl, 3pl, grm, gpcm, pcm`` or an
        alias such as ``graded``), or one name per item.
        Anchor items use the model stored in ``anchors``.
    groups : (n_persons,) labels, optional
        Group membership.  Groups are sorted; the reference group is the first label or
        ``reference_group``.  Each non-reference group gets its own mean and SD.
    anchors : ItemParams, optional
        Fixed items, matched to columns by ``item_ids``.  They are not re-estimated, so
        new items land on the anchor scale; the reference mean and SD are then estimated.
    priors : Priors, optional
        Default ``Priors()``: Beta(5, 17) on 3PL ``c``, no slope prior.
    n_quad : int or "auto"
        Number of equally spaced quadrature points on ``theta_range``.  ``"auto"``
        (default) makes the spacing at most the typical (weighted median) posterior
        SD, taken as ``1 / sqrt(test information + 1 / sigma^2)`` at each person's EAP
        over the items the person answered, clamped to 41..201 points: first from the
        starting values, then again at the estimates (the EM is continued on the finer
        grid when the estimates ask for 25 % more points).  41 on [-6, 6] (spacing 0.3)
        is enough for short tests; long polytomous tests need up to 201.  With a fixed
        ``n_quad`` whose spacing exceeds 1.3 x the median posterior SD a
        ``"quadrature"`` warning suggests a larger value.
    max_iter, tol : int, float
        EM cycle limit and convergence tolerance (see module docstring).
    progress : callable, optional
        Called after each EM cycle with an :class:`IterationRecord`.
    item_ids : (n_items,) str, optional
        Defaults to ``item1 .. itemJ``.  Needed to match anchors.
    reference_group : str, optional
        Label of the reference group (default: first sorted label).
    theta_range : (float, float)
        Range of the quadrature grid.
    min_responses : int
        Estimated items with fewer observed responses raise ``ValueError``.
    compute_se : bool
        Compute standard errors (observed information, see module docstring).
    se_method : {"auto", "louis", "xpd"}
        ``"louis"``: the full observed information by Louis' identity (exact for the
        quadrature; its cost grows as persons x responses-per-person squared, 2 s for
        100 items x 20,000 persons).  ``"xpd"``: the cross-product of the person scores,
        a consistent estimate of the same matrix in one pass over the data (0.1-0.3 s
        there; SEs within a few per cent of Louis' at such sizes, tests/scoring).
        ``"auto"`` (default): Louis when it costs at most about 2e8 multiply-adds (small
        data, e.g. 20 items x 6,000 persons, where XPD is least accurate), XPD beyond.
        The method note says which was used.
    blas_threads : int or None
        OpenBLAS threads during the call (restored afterwards).  Default 1: the thin
        products of EM run up to 10x faster single-threaded on 2-core machines.
        ``None`` leaves the BLAS setting alone.  Apart from BLAS, a complete design's
        E-step runs in two threads (row halves) when persons x grid points reach
        ``_PARALLEL_CELLS`` and the process may use two cores.
    density : ``"normal"`` or ``"eh"``
        Latent density of each group: discrete normal (default) or an empirical
        histogram on the grid (Bock & Aitkin 1981; Woods 2007), estimated with the
        items for skewed populations.  With ``"eh"`` each M-step sets a group's weights
        to its normalised expected counts; without anchors the reference histogram is
        standardised to mean 0 and SD 1 (mean 0 only for rasch/pcm, whose SD is
        free).  ``n_params`` (AIC, BIC) then counts ``Q - 1`` weights per group less the
        standardisation constraints (2, or 1 for rasch/pcm, in the reference group)
        instead of the groups' means and SDs; item SEs are conditional on the
        estimated histograms (group SEs NaN).
    collapse_unused : bool
        Merge categories without responses below an item's highest category: the used
        categories are renumbered ``0..K'-1`` (``result.collapsed`` gives the original
        category of each) and a ``"collapsed"`` warning names the item.

    Returns
    -------
    CalibrationResult
        With ``warnings`` (:class:`CalibrationWarning`): estimates at a bound, SEs above
        10 or not finite, a disconnected design, a too-coarse grid, no convergence,
        collapsed categories.  Hard data (few persons, sparse or separating responses)
        give bounded estimates and warnings, never a numerical exception: the M-step is
        damped (Levenberg-Marquardt) and slopes stay in ``[SLOPE_MIN, SLOPE_BOUND]``.

    Raises
    ------
    ValueError
        Bad shapes or values, unknown models, and items that cannot be estimated (too few
        responses, no variance, an empty category without ``collapse_unused``); the
        message names the item.  :func:`screen_items` lists such items beforehand.
    """
    auto = isinstance(n_quad, str)
    if auto and n_quad != "auto":
        raise ValueError(f"n_quad must be an integer or 'auto', got {n_quad!r}")
    n_used = _AUTO_MIN_QUAD if auto else int(n_quad)
    pr, item_ids_arr, labels = _setup(responses, model, groups, anchors, priors, n_used,
                                      theta_range, item_ids, reference_group, min_responses,
                                      collapse_unused=collapse_unused)
    kmax = pr.kmax
    if density not in ("normal", "eh"):
        raise ValueError(f"density must be 'normal' or 'eh', got {density!r}")
    if se_method not in ("auto", "louis", "xpd"):
        raise ValueError(f"se_method must be auto, louis or xpd, not {se_method!r}")
    warnings: list[CalibrationWarning] = []
    with _blas_threads(blas_threads), np.errstate(over="ignore", invalid="ignore",
                                                  divide="ignore", under="ignore"):
        if auto:
            n_used = _auto_n_quad(pr, pr.X, pr.mu, pr.sigma, theta_range)
            if n_used != pr.theta.size:
                pr = replace(pr, theta=quadrature_grid(n_used, theta_range))
        if density == "eh":
            pr.eh_log_weights = _log_prior_weights(pr.theta, pr.mu, pr.sigma)
        X, mu, sigma, history, converged = _run_em(pr, max_iter, tol, progress)
        if auto and len(history) < max_iter:
            n_new = _auto_n_quad(pr, X, mu, sigma, theta_range)
            if n_new > 1.25 * n_used:
                # the estimates discriminate more than the starting values: continue the
                # EM on the finer grid from where it stopped (an empirical histogram
                # starts again from the groups' normal densities on the new grid)
                n_used = n_new
                pr = replace(pr, theta=quadrature_grid(n_used, theta_range), X=X, mu=mu,
                             sigma=sigma)
                if density == "eh":
                    pr.eh_log_weights = _log_prior_weights(pr.theta, mu, sigma)
                done = len(history)

                def shifted(rec: IterationRecord) -> None:
                    if progress is not None:
                        progress(replace(rec, iteration=rec.iteration + done))

                X, mu, sigma, more, converged = _run_em(pr, max_iter - done, tol, shifted)
                history += [replace(rec, iteration=rec.iteration + done) for rec in more]
        if se_method == "auto":   # by the cost on the grid finally used
            se_method = "louis" if _louis_cost(pr) <= _LOUIS_MAX_COST else "xpd"
        ll, post, R, n_gq = _e_step(pr, X, mu, sigma)
        r = _counts_by_item(pr, R)
        se_ok = False
        unidentified = np.array([], dtype=int)
        # estimates on a bound are not interior: held fixed for the standard errors
        # (their SEs are NaN): a 3PL lower asymptote at 0, a slope or intercept at the
        # box of the M-step
        at_bound = (~pr.anchored) & pr.guessing & (X[:, kmax] <= 1e-8)
        at_box = _at_bounds(pr, X)
        free_se = pr.free.copy()
        free_se[at_bound, kmax] = False
        free_se &= ~at_box
        if compute_se:
            fixed_groups = {} if density == "normal" else {   # conditional on the histograms
                "mu_free": np.zeros_like(pr.mu_free), "sigma_free": np.zeros_like(pr.sigma_free)}
            se_a, se_b, se_c, se_mu, se_sd, singular = _standard_errors(
                replace(pr, free=free_se, **fixed_groups), X, mu, sigma, post, r, n_gq,
                se_method)
            se_ok = singular is None
            if singular is not None:
                unidentified = singular
        J = X.shape[0]
        if not compute_se:
            se_a = np.full(J, np.nan)
            se_b = np.full((J, kmax - 1), np.nan)
            se_c = np.full(J, np.nan)
            se_mu = np.full(pr.n_groups, np.nan)
            se_sd = np.full(pr.n_groups, np.nan)

        a = X[:, 0].copy()
        b = np.full((J, kmax - 1), np.nan)
        for j in range(J):
            nb = pr.ncat[j] - 1
            b[j, :nb] = -X[j, 1:1 + nb] / a[j]
    c = np.where(pr.guessing, X[:, kmax], 0.0)
    if anchors is not None:
        # anchors are returned exactly as given (no round trip through a*theta + d)
        pos = {iid: k for k, iid in enumerate(np.asarray(anchors.item_ids).astype(str))}
        for j in np.flatnonzero(pr.anchored):
            k = pos[item_ids_arr[j]]
            nb = pr.ncat[j] - 1
            a[j] = anchors.a[k]
            b[j, :nb] = np.asarray(anchors.b[k], dtype=float)[:nb]
            c[j] = anchors.c[k]
    latent_mean, latent_sd = pooled_latent(mu, sigma, np.bincount(
        pr.group, weights=pr.weights, minlength=pr.n_groups))
    params = ItemParams(item_ids=item_ids_arr,
                        model=np.array([_MODELS[k] for k in pr.codes]),
                        a=a, b=b, c=c, n_categories=pr.ncat.copy(),
                        se_a=se_a, se_b=se_b, se_c=se_c,
                        latent_mean=latent_mean, latent_sd=latent_sd)

    n_params = int(pr.free.sum() + (1 if np.any(pr.shared) else 0)
                   + pr.mu_free.sum() + pr.sigma_free.sum())
    if density == "eh":   # Q - 1 weights per group replace its mean and SD
        n_params += pr.n_groups * (n_used - 3)
    n_persons = pr.n_persons
    aic = -2.0 * ll + 2.0 * n_params
    bic = -2.0 * ll + n_params * np.log(n_persons)
    note = _method_note(pr, n_used, theta_range, compute_se, se_ok, converged, len(history),
                        auto, se_method)
    if density == "eh":
        note += (" Latent density: empirical histogram per group (Woods 2007"
                 + ("" if pr.anchored.any() else "; the reference group's standardised "
                    "each cycle") + "); AIC/BIC count Q - 1 weights per group less the "
                 "standardisation; item SEs conditional on the histograms.")
    ids = item_ids_arr

    def named(mask: np.ndarray) -> tuple[str, ...]:
        return tuple(ids[np.flatnonzero(mask)].tolist())

    # quadrature adequacy: the rectangular rule integrates a normal-shaped posterior of
    # SD s with spacing h to a relative error of about 2 exp(-2 pi^2 s^2 / h^2): 1e-5 at
    # h = 1.3 s, 7e-3 at h = 2 s
    spacing = float(pr.theta[1] - pr.theta[0])
    m1 = post @ pr.theta
    psd = np.sqrt(np.maximum(post @ pr.theta ** 2 - m1 ** 2, 0.0))
    median_sd = _weighted_median(psd, pr.weights)
    if spacing > 1.3 * median_sd:
        suggest = int(np.ceil((theta_range[1] - theta_range[0]) / median_sd)) + 1
        text = (f"the grid spacing {spacing:.2f} is coarse for the median posterior SD "
                f"{median_sd:.2f}; consider n_quad >= {suggest}")
        note += f" Quadrature: {text}."
        warnings.append(CalibrationWarning("quadrature", f"quadrature: {text}"))
    if unidentified.size:
        note += (" Observed information singular at item(s): "
                 + ", ".join(item_ids_arr[unidentified].tolist()) + ".")
        warnings.append(CalibrationWarning(
            "singular_information", "standard errors not computed: the observed "
            "information is singular; items it points at: "
            + ", ".join(ids[unidentified].tolist()), named(np.isin(np.arange(J),
                                                                     unidentified))))
    if np.any(at_bound):
        note += (" Lower asymptote c on its bound 0 (SE not computed) for item(s): "
                 + ", ".join(item_ids_arr[at_bound].tolist()) + ".")
    warnings += _estimate_warnings(pr, X, ids, at_box, at_bound, se_a, se_b, se_c,
                                   compute_se and se_ok, free_se)
    warnings += _design_warnings(pr, ids)
    if not converged:
        warnings.append(CalibrationWarning(
            "not_converged", f"calibration did not converge after {len(history)} EM cycles "
            f"(tol {tol:g}); check the items with large standard errors"))
    collapsed = {str(ids[j]): tuple(used) for j, used in pr.collapsed.items()}
    for item, used in collapsed.items():
        warnings.append(CalibrationWarning(
            "collapsed", f"item {item}: unused categories merged; original categories "
            + ", ".join(str(u) for u in used) + " are scored "
            + ", ".join(str(k) for k in range(len(used))), (item,)))
    return CalibrationResult(params=params, group_means=mu, group_sds=sigma,
                             group_labels=labels, loglik=ll, aic=aic, bic=bic,
                             n_params=n_params, n_iter=len(history), converged=converged,
                             history=tuple(history), method_note=note,
                             group_mean_se=se_mu, group_sd_se=se_sd,
                             unidentified_items=tuple(item_ids_arr[unidentified].tolist()),
                             density=density, latent_nodes=pr.theta.copy(),
                             latent_weights=np.exp(_group_log_weights(pr, mu, sigma)),
                             warnings=tuple(warnings), n_quad=int(n_used),
                             collapsed=collapsed)


_AUTO_MIN_QUAD, _AUTO_MAX_QUAD = 41, 201
#: automatic grid: spacing at most this fraction of the typical posterior SD.  Measured
#: (tests/scoring/test_calibration_robust.py, bench/bench_quadrature.py): at 1.0 the
#: estimates equal those of a 201-point grid to about 1e-4 on 100 GRM items and to 1e-5
#: on 100 2PL items, as at 0.5, which costs up to twice the points (143 instead of 72
#: for 2PL 100 x 20,000)
_AUTO_SPACING = 1.0
#: an SE above this (logistic metric) is reported: the estimate says next to nothing
LARGE_SE = 10.0


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def _is_sparse(Y: object) -> bool:
    """A scipy sparse matrix (without importing scipy.sparse for dense designs)."""
    return not isinstance(Y, np.ndarray)


def _complete(pr: _Problem) -> bool:
    """True when every (merged) response pattern answers every item."""
    if pr.Z is not None:
        return True
    n_obs = pr.Y.nnz if _is_sparse(pr.Y) else int(np.count_nonzero(pr.Y))
    return n_obs == pr.Y.shape[0] * pr.X.shape[0]


def _person_items(pr: _Problem) -> np.ndarray | sp.csr_matrix:
    """(N, J) 0/1: which items each (merged) response pattern answered (sparse when the
    one-hot matrix is, else dense float32; an item's one-hot columns are contiguous)."""
    if pr.Z is not None:
        return np.ones((pr.Z.shape[0], pr.ncat.size), dtype=np.float32)
    if not _is_sparse(pr.Y):
        return np.add.reduceat(pr.Y, pr.offsets, axis=1).astype(np.float32)
    # start-up cost: scipy.sparse only for sparse designs
    import scipy.sparse

    C = pr.col_item.size
    S = scipy.sparse.csr_matrix((np.ones(C, dtype=np.float32), (np.arange(C), pr.col_item)),
                                shape=(C, pr.X.shape[0]))
    B = scipy.sparse.csr_matrix(pr.Y.astype(np.float32) @ S)
    B.data[:] = 1.0
    return B


def _auto_n_quad(pr: _Problem, X: np.ndarray, mu: np.ndarray, sigma: np.ndarray,
                 theta_range: tuple[float, float]) -> int:
    """Grid size whose spacing is ``_AUTO_SPACING`` x the weighted median posterior SD.

    The posterior SD of a person is taken as ``1 / sqrt(I(theta) + 1 / sigma_g^2)``, the
    test information of the items the person answered at the person's EAP (on the
    current grid) plus the prior's; clamped to 41..201 points.
    """
    _, post, _, _ = _e_step(pr, X, mu, sigma, counts=False)
    J, kmax = X.shape[0], pr.kmax
    a = X[:, 0]
    b = np.full((J, kmax - 1), np.nan)
    for j in range(J):
        nb = pr.ncat[j] - 1
        b[j, :nb] = -X[j, 1:1 + nb] / np.where(a[j] == 0, 1e-12, a[j])
    params = ItemParams(item_ids=np.array([f"i{j}" for j in range(J)]),
                        model=np.array([_MODELS[k] for k in pr.codes]), a=a, b=b,
                        c=np.where(pr.guessing, X[:, kmax], 0.0),
                        n_categories=pr.ncat.copy())
    info = np.nan_to_num(item_information(params, pr.theta))           # (Q, J)
    eap = post @ pr.theta
    q = np.clip(np.searchsorted(pr.theta, eap), 0, pr.theta.size - 1)
    if _complete(pr):
        t_i = info.sum(axis=1)[q]
    else:
        B = _person_items(pr)                                          # (N, J)
        # each person's test information at the person's own grid point, by grid point
        # (no persons x items array of information)
        t_i = np.zeros(q.size)
        for k in np.unique(q):
            rows = np.flatnonzero(q == k)
            t_i[rows] = np.asarray(B[rows] @ info[k]).ravel()
    psd = 1.0 / np.sqrt(np.maximum(t_i, 0.0) + 1.0 / sigma[pr.group] ** 2)
    typical = _weighted_median(psd, pr.weights)
    n = int(np.ceil((theta_range[1] - theta_range[0]) / (_AUTO_SPACING * typical))) + 1
    return int(np.clip(n, _AUTO_MIN_QUAD, _AUTO_MAX_QUAD))


def _estimate_warnings(pr: _Problem, X: np.ndarray, ids: np.ndarray, at_box: np.ndarray,
                       at_c0: np.ndarray, se_a: np.ndarray, se_b: np.ndarray,
                       se_c: np.ndarray, se_ok: bool, free_se: np.ndarray
                       ) -> list[CalibrationWarning]:
    """Warnings for estimates on a bound and for absurd standard errors."""
    out = []
    bound = at_box.any(axis=1) | at_c0
    if np.any(bound):
        parts = []
        for j in np.flatnonzero(bound):
            what = []
            if at_box[j, 0]:
                what.append(f"a = {X[j, 0]:.3g}")
            if at_box[j, 1:pr.kmax].any():
                what.append("intercept at +-" + f"{INTERCEPT_BOUND:g}")
            if at_c0[j]:
                what.append("c = 0")
            parts.append(f"{ids[j]} ({', '.join(what)})")
        out.append(CalibrationWarning(
            "bound", f"estimates stopped at a bound ({SLOPE_MIN:g} <= a <= {SLOPE_BOUND:g}, "
            "not identified by these responses: too few persons or responses that "
            "separate perfectly; SEs not computed for them; a slope prior, e.g. "
            "--slope-prior 0,0.5, gives finite estimates): " + "; ".join(parts),
            tuple(ids[bound].tolist())))
    if se_ok:
        est = ~pr.anchored
        kmax = pr.kmax
        big = np.zeros(X.shape[0], dtype=bool)
        slope_free = free_se[:, 0]
        big |= est & slope_free & ~(se_a <= LARGE_SE)
        free_b = free_se[:, 1:kmax] & est[:, None]
        big |= np.any(free_b & ~(se_b <= LARGE_SE), axis=1)
        free_c = free_se[:, kmax] & est & pr.guessing
        big |= free_c & ~(se_c <= LARGE_SE)
        if np.any(big):
            def se_text(j: int) -> str:
                worst = np.nanmax(np.r_[se_a[j], se_b[j], se_c[j]]) \
                    if np.any(np.isfinite(np.r_[se_a[j], se_b[j], se_c[j]])) else np.nan
                return f"{ids[j]} (SE {worst:.3g})"
            out.append(CalibrationWarning(
                "large_se", f"standard errors above {LARGE_SE:g} or not finite (the "
                "responses hardly identify these estimates): "
                + ", ".join(se_text(j) for j in np.flatnonzero(big)),
                tuple(ids[big].tolist())))
    return out


def _design_warnings(pr: _Problem, ids: np.ndarray) -> list[CalibrationWarning]:
    """A disconnected design: blocks of items that no person links (the components of
    the persons x items bipartite graph, found as the connected components of the items
    x items graph "some person answered both", :func:`scipy.sparse.csgraph.
    connected_components`).

    Without anchors every block beyond the one holding the first item is named: its
    location and spread are set only by the assumed latent distribution, not linked to
    the first block.  With anchors, blocks that hold no anchor are named.
    """
    if _complete(pr):
        return []
    # start-up cost: scipy.sparse.csgraph only for incomplete designs
    import scipy.sparse
    from scipy.sparse.csgraph import connected_components

    B = _person_items(pr)
    # items x items: two items are linked when some person answered both
    link = scipy.sparse.csr_matrix(B.T @ B)
    _, item_comp = connected_components(link, directed=False)
    blocks = list(dict.fromkeys(item_comp.tolist()))       # in order of first item
    if len(blocks) < 2:
        return []
    if pr.anchored.any():
        lonely = [k for k in blocks if not np.any(pr.anchored[item_comp == k])]
        ref = "any anchor item"
    else:
        lonely = blocks[1:]
        ref = f"the block of item {ids[0]}"
    if not lonely:
        return []
    out = []
    for k in lonely:
        members = ids[item_comp == k].tolist()
        shown = ", ".join(members[:30]) + (f" and {len(members) - 30} more"
                                           if len(members) > 30 else "")
        out.append(CalibrationWarning(
            "disconnected", f"disconnected design: {len(members)} item(s) share no person "
            f"with {ref} ({len(blocks)} blocks); their scale is not linked (set only by "
            f"the assumed N(0, 1)): {shown}", tuple(members)))
    return out


def _method_note(pr, n_quad, theta_range, compute_se, se_ok, converged, n_iter,
                 auto=False, se_method="louis") -> str:
    models = sorted({_MODELS[k] for k in pr.codes[~pr.anchored]})
    grid = "automatic choice of " if auto else ""
    parts = [(f"MML by EM (Bock-Aitkin) for {', '.join(models) or 'no free items'}; "
              f"{grid}{n_quad} equally spaced quadrature points on [{theta_range[0]:g}, "
              f"{theta_range[1]:g}] with discrete normal group weights; damped "
              "(Levenberg-Marquardt) Fisher-scoring M-step on all items at once, slopes "
              f"within [{SLOPE_MIN:g}, {SLOPE_BOUND:g}]; SQUAREM acceleration.")]
    if pr.anchored.any():
        parts.append(f"{int(pr.anchored.sum())} anchor item(s) fixed; reference group "
                     "mean and SD estimated on the anchor scale.")
    else:
        ref = "mean 0, SD estimated" if pr.sigma_free[0] else "N(0, 1)"
        parts.append(f"Scale fixed by the reference group: {ref}.")
    if pr.n_groups > 1:
        parts.append("Other groups: mean and SD estimated.")
    if np.any(pr.shared):
        parts.append("1PL: one common slope estimated.")
    pri = []
    if pr.priors.slope_lognormal is not None and (np.any(pr.free[:, 0]) or np.any(pr.shared)):
        pri.append(f"lognormal{tuple(pr.priors.slope_lognormal)} on slopes")
    if pr.priors.guessing_beta is not None and np.any(pr.guessing[~pr.anchored]):
        pri.append(f"Beta{tuple(pr.priors.guessing_beta)} on c")
    if pri:
        parts.append("Priors (posterior-mode estimates; loglik excludes them): "
                     + ", ".join(pri) + ".")
    if compute_se:
        if se_ok and se_method == "xpd":
            parts.append("SEs: inverse of the cross-product (XPD) estimate of the "
                         "information, sum of the outer products of the person scores "
                         "(cross-item and group covariances included), delta method for b.")
        elif se_ok:
            parts.append("SEs: inverse of the full observed information of the marginal "
                         "log-likelihood (Louis' identity, exact for the quadrature; "
                         "cross-item and group covariances included), delta method for b.")
        else:
            parts.append("SEs: observed information not positive definite; SEs are NaN.")
    else:
        parts.append("SEs not computed.")
    parts.append(("Converged" if converged else "NOT converged") + f" after {n_iter} cycles.")
    return " ".join(parts)


def marginal_loglik(params: ItemParams, responses: np.ndarray, *,
                    groups: Sequence | np.ndarray | None = None,
                    group_means: Sequence[float] | np.ndarray | None = None,
                    group_sds: Sequence[float] | np.ndarray | None = None,
                    reference_group: str | None = None,
                    n_quad: int = 41,
                    theta_range: tuple[float, float] = (-6.0, 6.0)) -> float:
    """Marginal log-likelihood of fixed item parameters (same quadrature as calibrate).

    Parameters
    ----------
    params : ItemParams
        One item per column of ``responses`` (same order).
    responses : (n_persons, n_items) float, NaN = not administered
    groups : (n_persons,) labels, optional; sorted as in :func:`calibrate`
    group_means, group_sds : (n_groups,) floats, default N(0, 1) for every group
    n_quad, theta_range : quadrature grid

    Returns
    -------
    float
    """
    pr, _, labels = _setup(responses, "2pl", groups, params, None, n_quad, theta_range,
                           params.item_ids, reference_group, 0)
    if not pr.anchored.all():
        raise ValueError("params must describe every column of responses")
    G = labels.size
    mu = np.zeros(G) if group_means is None else np.asarray(group_means, dtype=float)
    sd = np.ones(G) if group_sds is None else np.asarray(group_sds, dtype=float)
    if mu.shape != (G,) or sd.shape != (G,):
        raise ValueError(f"group_means and group_sds need {G} values")
    with _blas_threads(1):
        ll, _, _, _ = _e_step(pr, pr.X, mu, sd, counts=False)
    return ll
