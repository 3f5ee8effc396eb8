"""Tests of scoring.calibration (MML-EM item calibration).

Reference values
----------------
* LSAT-7 2PL (Bock & Lieberman 1970, 1000 x 5): mirt's documented output of
  ``mirt(expand.table(LSAT7), 1)`` (61 rectangular quadrature points on [-6, 6],
  logistic D = 1): slopes 0.988 1.081 1.706 0.765 0.736, IRT difficulties
  -1.879 -0.748 -1.058 -0.635 -2.520, log-likelihood -2658.805, AIC 5337.61,
  BIC 5386.688, and (``SE = TRUE``, Oakes) SE of the slopes 0.177 0.169 0.320 0.134 0.151.
  mirt's 3PL without priors: log-likelihood -2658.055, AIC 5346.11.
* Rasch and 2PL on LSAT-7 are also checked against a brute-force maximisation of the
  exact marginal likelihood (scipy BFGS, 61-point Gauss-Hermite quadrature, conditional
  likelihood from scoring.models) that shares no code with the EM.
* Standard errors are compared with the inverse of a finite-difference Hessian of the
  marginal log-likelihood computed with scoring.models (independent code), and with
  the empirical spread of estimates (z-scores) in the sparse design.

Simulated data come from scoring.models.probabilities, not from calibration internals.
"""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.polynomial.hermite_e import hermegauss
from scipy.optimize import minimize
from scipy.special import logsumexp

from scoring import calibration as cal
from scoring import models
from scoring.calibration import CalibrationResult, IterationRecord, Priors, calibrate
from scoring.params import ItemParams

LSAT7 = Path(__file__).resolve().parents[1] / "data" / "lsat7.csv"

MIRT_A = np.array([0.988, 1.081, 1.706, 0.765, 0.736])
MIRT_B = np.array([-1.879, -0.748, -1.058, -0.635, -2.520])
MIRT_SE_A = np.array([0.177, 0.169, 0.320, 0.134, 0.151])


# ------------------------------------------------------------------------------ helpers

def lsat7() -> np.ndarray:
    return np.loadtxt(LSAT7, delimiter=",", skiprows=1)


def rmse(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean((np.asarray(x) - np.asarray(y)) ** 2)))


def make_bank(model: str, n_items: int, rng: np.random.Generator) -> ItemParams:
    """Generating parameters; polytomous items have 4 categories."""
    ids = [f"i{j}" for j in range(n_items)]
    if model in ("rasch", "pcm"):
        a = np.ones(n_items)
    elif model == "1pl":
        a = np.full(n_items, 1.3)
    else:
        a = rng.uniform(0.7, 2.0, n_items)
    if model == "grm":
        b = rng.uniform(-1.0, 0.5, (n_items, 1)) + np.array([[-0.8, 0.2, 1.2]])
    elif model in ("gpcm", "pcm"):
        b = (rng.uniform(-0.5, 0.5, (n_items, 1)) + np.array([[-1.0, 0.0, 1.0]])
             + rng.normal(0, 0.3, (n_items, 3)))
    else:
        b = rng.uniform(-1.8, 1.8, (n_items, 1))
    c = np.full(n_items, 0.2) if model == "3pl" else np.zeros(n_items)
    return ItemParams.from_arrays(ids, model, a, b, c)


def simulate(params: ItemParams, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Responses (n_persons, n_items) drawn from scoring.models.probabilities."""
    P = models.probabilities(params, theta)                      # (N, J, K)
    u = rng.random(P.shape[:2])[..., None]
    y = (u > np.cumsum(P, axis=2)).sum(axis=2)
    return np.minimum(y, params.n_categories - 1).astype(float)


def simulate_cat(params: ItemParams, theta: np.ndarray, n_per: int,
                 rng: np.random.Generator, top: int = 15) -> np.ndarray:
    """Adaptive design that is missing at random: each step gives one of the ``top``
    unused items whose b is closest to the current EAP (computed from the responses so
    far), so selection depends on observed responses only."""
    a, b = params.a, params.b[:, 0]
    n, J = theta.size, a.size
    grid = np.linspace(-4, 4, 33)
    pg = 1 / (1 + np.exp(-a[:, None] * (grid[None, :] - b[:, None])))
    ll = np.tile(-0.5 * grid ** 2, (n, 1))
    resp = np.full((n, J), np.nan)
    used = np.zeros((n, J), dtype=bool)
    rows = np.arange(n)
    for _ in range(n_per):
        w = np.exp(ll - ll.max(axis=1, keepdims=True))
        eap = (w @ grid) / w.sum(axis=1)
        dist = np.abs(b[None, :] - eap[:, None])
        dist[used] = np.inf
        best = np.argpartition(dist, top, axis=1)[:, :top]
        pick = best[rows, rng.integers(0, top, n)]
        used[rows, pick] = True
        y = rng.random(n) < 1 / (1 + np.exp(-a[pick] * (theta - b[pick])))
        resp[rows, pick] = y
        ll += np.where(y[:, None], np.log(pg[pick]), np.log1p(-pg[pick]))
    return resp


def with_values(params: ItemParams, a: np.ndarray, b: np.ndarray, c: np.ndarray
                ) -> ItemParams:
    return ItemParams(item_ids=params.item_ids, model=params.model, a=a, b=b, c=c,
                      n_categories=params.n_categories)


def marginal_ll_reference(params: ItemParams, y: np.ndarray, gidx: np.ndarray,
                          means: np.ndarray, sds: np.ndarray, grid: np.ndarray,
                          counts: np.ndarray | None = None) -> float:
    """Marginal log-likelihood from scoring.models with discrete normal weights
    (``counts``: frequency of each response row)."""
    L = models.log_likelihood(params, y, grid)                   # (N, Q)
    u = (grid[None, :] - means[:, None]) / sds[:, None]
    logw = -0.5 * u ** 2
    logw -= logsumexp(logw, axis=1, keepdims=True)
    per_row = logsumexp(L + logw[gidx], axis=1)
    return float(per_row.sum() if counts is None else counts @ per_row)


def numerical_se(result: CalibrationResult, y: np.ndarray, gidx: np.ndarray,
                 free_groups: list[int], log_prior=None, h: float = 1e-3,
                 counts: np.ndarray | None = None) -> dict:
    """SEs from the inverse of a central-difference Hessian (error O(h^2) ~ 1e-6
    relative) of the marginal log-likelihood in the reported metric (a, b, c, group
    mean/SD), computed with scoring.models only."""
    p = result.params
    grid = cal.quadrature_grid(41)
    coords = []                                  # (kind, item or group, column)
    for j in range(p.n_items):
        if p.model[j] not in ("rasch", "pcm"):
            coords.append(("a", j, 0))
        for k in range(p.n_categories[j] - 1):
            coords.append(("b", j, k))
        if p.model[j] == "3pl":
            coords.append(("c", j, 0))
    for g in free_groups:
        coords += [("mu", g, 0), ("sd", g, 0)]

    def unpack(x):
        a, b, c = p.a.copy(), p.b.copy(), p.c.copy()
        means, sds = result.group_means.copy(), result.group_sds.copy()
        for v, (kind, j, k) in zip(x, coords, strict=True):
            if kind == "a":
                a[j] = v
            elif kind == "b":
                b[j, k] = v
            elif kind == "c":
                c[j] = v
            elif kind == "mu":
                means[j] = v
            else:
                sds[j] = v
        return a, b, c, means, sds

    def f(x):
        a, b, c, means, sds = unpack(x)
        val = marginal_ll_reference(with_values(p, a, b, c), y, gidx, means, sds, grid,
                                    counts)
        return val + (log_prior(c) if log_prior is not None else 0.0)

    x0 = np.zeros(len(coords))
    a, b, c, means, sds = p.a, p.b, p.c, result.group_means, result.group_sds
    for i, (kind, j, k) in enumerate(coords):
        if kind == "a":
            x0[i] = a[j]
        elif kind == "b":
            x0[i] = b[j, k]
        elif kind == "c":
            x0[i] = c[j]
        else:
            x0[i] = means[j] if kind == "mu" else sds[j]
    n = x0.size
    e = np.eye(n) * h
    H = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            H[i, j] = H[j, i] = (f(x0 + e[i] + e[j]) - f(x0 + e[i] - e[j])
                                 - f(x0 - e[i] + e[j]) + f(x0 - e[i] - e[j])) / (4 * h * h)
    se = np.sqrt(np.diag(np.linalg.inv(-H)))
    return {coord: s for coord, s in zip(coords, se, strict=True)}


# --------------------------------------------------------------- published reference

def test_lsat7_2pl_reproduces_mirt():
    """mirt's published LSAT-7 2PL: a and b within 0.02 (we get ~0.002), loglik within
    0.01, AIC/BIC with 10 parameters, SE(a) within 0.005 of mirt's Oakes SEs."""
    res = calibrate(lsat7(), "2pl")
    assert res.converged
    np.testing.assert_allclose(res.params.a, MIRT_A, atol=0.02)
    np.testing.assert_allclose(res.params.b[:, 0], MIRT_B, atol=0.02)
    assert res.loglik == pytest.approx(-2658.805, abs=0.01)
    assert res.n_params == 10
    assert res.aic == pytest.approx(5337.61, abs=0.02)
    assert res.bic == pytest.approx(5386.688, abs=0.02)
    np.testing.assert_allclose(res.params.se_a, MIRT_SE_A, atol=0.005)
    assert np.all(res.params.se_b[:, 0] > 0)
    assert np.all(np.isnan(res.params.se_c))


def test_lsat7_3pl_without_prior_reaches_mirt_loglik():
    """mirt's 3PL (no priors) on LSAT-7 reports loglik -2658.055, AIC 5346.11; four lower
    asymptotes sit on the bound 0 (needs the projected M-step).  Tolerance 0.01."""
    res = calibrate(lsat7(), "3pl", priors=Priors(guessing_beta=None))
    assert res.loglik == pytest.approx(-2658.055, abs=0.01)
    assert res.aic == pytest.approx(5346.11, abs=0.03)
    assert np.isnan(res.params.se_c[0]) and res.params.se_c[1] > 0
    assert "bound 0" in res.method_note


def _gh_marginal_nll(params: ItemParams, y: np.ndarray, counts: np.ndarray,
                     sd: float = 1.0) -> float:
    z, w = hermegauss(61)
    L = models.log_likelihood(params, y, sd * z)
    return -float(counts @ logsumexp(L + np.log(w / w.sum()), axis=1))


def test_lsat7_brute_force_2pl_and_rasch():
    """Brute force: BFGS on the exact marginal likelihood (61-point Gauss-Hermite,
    scoring.models likelihood, unique patterns).  2PL a, b within 0.005; Rasch b and
    latent SD within 0.005 (the EM uses a different, rectangular 41-point grid)."""
    y_all = lsat7()
    y, counts = np.unique(y_all, axis=0, return_counts=True)
    ids = [f"item{j + 1}" for j in range(5)]

    def bank(model, a, b):
        return ItemParams(item_ids=np.array(ids), model=np.full(5, model), a=a,
                          b=b[:, None], c=np.zeros(5), n_categories=np.full(5, 2))

    ref2 = minimize(lambda x: _gh_marginal_nll(bank("2pl", x[:5], x[5:]), y, counts),
                    np.r_[MIRT_A, MIRT_B], method="BFGS", options={"gtol": 1e-7})
    res2 = calibrate(y_all, "2pl")
    np.testing.assert_allclose(res2.params.a, ref2.x[:5], atol=0.005)
    np.testing.assert_allclose(res2.params.b[:, 0], ref2.x[5:], atol=0.005)

    refr = minimize(lambda x: _gh_marginal_nll(bank("rasch", np.ones(5), x[:5]), y, counts,
                                               sd=np.exp(x[5])),
                    np.r_[-1.9, -0.8, -1.5, -0.5, -2.0, 0.0], method="BFGS",
                    options={"gtol": 1e-7})
    resr = calibrate(y_all, "rasch")
    np.testing.assert_allclose(resr.params.b[:, 0], refr.x[:5], atol=0.005)
    assert resr.group_sds[0] == pytest.approx(np.exp(refr.x[5]), abs=0.005)
    assert np.all(resr.params.a == 1.0)
    assert resr.n_params == 6                  # 5 difficulties + latent SD
    assert "SD estimated" in resr.method_note


def test_1pl_equals_rasch_rescaled():
    """1PL (common slope, N(0,1)) and Rasch (a = 1, SD free) are the same model:
    a_1pl = SD_rasch and b_1pl * a_1pl = b_rasch (tolerance 2e-3), same loglik."""
    y = lsat7()
    r1 = calibrate(y, "1pl")
    rr = calibrate(y, "rasch")
    assert np.ptp(r1.params.a) == 0
    assert r1.params.a[0] == pytest.approx(rr.group_sds[0], abs=2e-3)
    np.testing.assert_allclose(r1.params.b[:, 0] * r1.params.a, rr.params.b[:, 0], atol=2e-3)
    assert r1.loglik == pytest.approx(rr.loglik, abs=1e-3)
    assert r1.n_params == rr.n_params == 6


# ----------------------------------------------------------------- parameter recovery

# RMSE thresholds (about 1.5-2x what the estimator achieves on these designs; a model
# with a wrong slope/threshold treatment exceeds them): (a, b, c)
RECOVERY = {
    "rasch": (None, 0.12, None),
    "1pl": (0.06, 0.12, None),
    "2pl": (0.20, 0.15, None),
    "3pl": (0.30, 0.22, 0.08),
    "grm": (0.12, 0.12, None),
    "gpcm": (0.15, 0.14, None),
    "pcm": (None, 0.15, None),
}


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("model", list(RECOVERY))
def test_parameter_recovery(model: str, seed: int):
    """15 items x 2,000 persons (3PL: 20 x 4,000, true c = 0.2, Beta(5,17) prior),
    theta ~ N(0, 1); 4-category polytomous items."""
    rng = np.random.default_rng(seed)
    n_items, n_persons = (20, 4000) if model == "3pl" else (15, 2000)
    true = make_bank(model, n_items, rng)
    y = simulate(true, rng.standard_normal(n_persons), rng)
    res = calibrate(y, model, compute_se=False, item_ids=true.item_ids)
    assert res.converged
    tol_a, tol_b, tol_c = RECOVERY[model]
    assert rmse(res.params.b, true.b) < tol_b
    if tol_a is None:
        assert np.all(res.params.a == 1.0)
        # slope fixed: the latent SD carries the scale (true SD 1)
        assert abs(res.group_sds[0] - 1.0) < 0.06
    else:
        assert rmse(res.params.a, true.a) < tol_a
    if tol_c is not None:
        assert rmse(res.params.c, true.c) < tol_c
    else:
        assert np.all(res.params.c == 0)
    assert list(res.params.model) == [model] * n_items
    np.testing.assert_array_equal(res.params.n_categories, true.n_categories)


def test_mixed_models_in_one_test():
    """2PL, GRM and GPCM items calibrated together (one model name per item)."""
    rng = np.random.default_rng(11)
    banks = [make_bank(m, 6, rng) for m in ("2pl", "grm", "gpcm")]
    true = ItemParams.from_arrays(
        [f"{m}{j}" for m in ("d", "g", "p") for j in range(6)],
        ["2pl"] * 6 + ["grm"] * 6 + ["gpcm"] * 6,
        np.concatenate([b.a for b in banks]),
        [list(row[~np.isnan(row)]) for b in banks for row in b.b])
    y = simulate(true, rng.standard_normal(2500), rng)
    res = calibrate(y, list(true.model), compute_se=False)
    assert rmse(res.params.a, true.a) < 0.15
    assert rmse(res.params.b, true.b) < 0.15
    assert list(res.params.model) == list(true.model)


# -------------------------------------------------------------- complete designs

@pytest.mark.parametrize("model, n_items, n_persons", [("2pl", 60, 3000), ("grm", 50, 2000),
                                                       ("3pl", 8, 1500)])
def test_complete_design_keeps_only_the_uint8_reduced_matrix(model, n_items, n_persons):
    """A complete design is held as the uint8 one-hot columns of categories >= 1 (no
    float64 one-hot matrix: 1/16 of the memory with its former reduced copy); the
    E-step, the XPD and Louis information computed from it equal those of the full
    one-hot matrix (rtol 1e-12), and 8 items merge identical patterns first."""
    rng = np.random.default_rng(5)
    true = make_bank(model, n_items, rng)
    y = simulate(true, rng.standard_normal(n_persons), rng)
    pr, _, _ = cal._setup(y, model, None, None, None, 61, (-6.0, 6.0), None, None, 10)
    assert pr.Y is None and pr.Z.dtype == np.uint8
    assert pr.Z.shape[1] == int(pr.ncat.sum()) - n_items
    if n_items <= cal._DEDUP_MAX_ITEMS:
        assert pr.Z.shape[0] < n_persons and pr.weights.sum() == n_persons
    full = cal.replace(pr, Y=cal._onehot(pr), Z=None)
    assert full.Y.shape == (pr.weights.size, int(pr.ncat.sum()))
    assert np.all(full.Y.sum(axis=1) == n_items)             # one category per item
    if n_items > cal._DEDUP_MAX_ITEMS:                        # rows are the persons
        persons, items = np.indices(y.shape)
        assert np.all(full.Y[persons, pr.offsets[items] + y.astype(int)] == 1.0)
    mu, sigma = np.zeros(1), np.ones(1)
    ll_z, post_z, R_z, n_z = cal._e_step(pr, pr.X, mu, sigma)
    ll_y, post_y, R_y, n_y = cal._e_step(full, pr.X, mu, sigma)
    assert ll_z == pytest.approx(ll_y, rel=1e-12)
    np.testing.assert_allclose(post_z, post_y, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(R_z, R_y, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(n_z, n_y, rtol=1e-12)
    r = cal._counts_by_item(pr, R_z)
    for method in ("xpd", "louis"):
        info_z, _ = cal._observed_information(pr, pr.X, mu, sigma, post_z, r, n_z, method)
        info_y, _ = cal._observed_information(full, pr.X, mu, sigma, post_y, r, n_y, method)
        np.testing.assert_allclose(info_z, info_y, rtol=1e-9, atol=1e-9)


# -------------------------------------------------------------- sparse adaptive data

@pytest.mark.parametrize("model, n_items, n_persons, n_groups", [
    ("2pl", 60, 3001, 1), ("grm", 40, 2500, 3), ("2pl", 6, 4000, 2)])
def test_complete_design_e_step_in_two_threads_and_small_blocks(
        monkeypatch, model, n_items, n_persons, n_groups):
    """The complete design's E-step gives the same posterior, counts and
    log-likelihood (rtol 1e-12) in one pass, in two threads (row halves) and in blocks
    of a few rows, with groups and with the merged patterns' weights (6 items)."""
    rng = np.random.default_rng(11)
    true = make_bank(model, n_items, rng)
    y = simulate(true, rng.standard_normal(n_persons), rng)
    groups = np.arange(n_persons) % n_groups if n_groups > 1 else None
    pr, _, _ = cal._setup(y, model, groups, None, None, 41, (-6.0, 6.0), None, None, 10)
    assert pr.Z is not None and pr.n_groups == n_groups
    if n_items < 10:                             # identical patterns merged
        assert np.any(pr.weights > 1)
    mu, sigma = np.linspace(0.0, 0.4, n_groups), np.linspace(1.0, 1.3, n_groups)
    monkeypatch.setattr(cal, "_PARALLEL_CELLS", 10**18)
    assert cal._row_ranges(pr.Z.shape[0], 10**12) == [(0, pr.Z.shape[0])]
    one = cal._e_step(pr, pr.X, mu, sigma)
    monkeypatch.setattr(cal, "_PARALLEL_CELLS", 0)
    monkeypatch.setattr(cal, "_n_workers", lambda: 2)
    assert len(cal._row_ranges(pr.Z.shape[0], 1)) == 2
    monkeypatch.setattr(cal, "_BLOCK_BYTES", 8 * pr.Z.shape[1] * 7)   # 7 rows a block
    for split in (cal._e_step(pr, pr.X, mu, sigma), cal._e_step(pr, pr.X, mu, sigma)):
        assert split[0] == pytest.approx(one[0], rel=1e-12)
        for got, want in zip(split[1:], one[1:]):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    ll, post, R, n_gq = cal._e_step(pr, pr.X, mu, sigma, counts=False)
    assert R is None and n_gq is None and ll == pytest.approx(one[0], rel=1e-12)
    np.testing.assert_allclose(post.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(one[3].sum(), pr.weights.sum(), rtol=1e-12)


def test_sparse_adaptive_design_recovery_memory_and_se():
    """100 items, 6,000 persons, 20 items each chosen adaptively (MAR).  Checks:
    the one-hot matrix is kept sparse; peak traced memory < 40 MB (a persons x items x
    quad tensor alone would be 197 MB); RMSE b < 0.15 and a < 0.20 on items with at
    least 500 responses; SEs agree with the actual errors (mean z^2 in [0.6, 1.6])."""
    rng = np.random.default_rng(21)
    true = make_bank("2pl", 100, rng)
    y = simulate_cat(true, rng.standard_normal(6000), 20, rng)
    assert np.all((~np.isnan(y)).sum(axis=1) == 20)
    pr, _, _ = cal._setup(y, "2pl", None, None, None, 41, (-6.0, 6.0), None, None, 10)
    assert sp.issparse(pr.Y)

    tracemalloc.start()
    try:
        res = calibrate(y, "2pl", item_ids=true.item_ids)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20
    assert res.converged
    n_obs = (~np.isnan(y)).sum(axis=0)
    well = n_obs >= 500
    assert well.sum() > 70
    assert rmse(res.params.b[well, 0], true.b[well, 0]) < 0.15
    assert rmse(res.params.a[well], true.a[well]) < 0.20
    z2 = np.concatenate([((res.params.a - true.a) / res.params.se_a)[well] ** 2,
                         ((res.params.b[:, 0] - true.b[:, 0]) / res.params.se_b[:, 0])[well]
                         ** 2])
    assert 0.6 < z2.mean() < 1.6


# ------------------------------------------------------------- groups and anchoring

@pytest.mark.parametrize("seed", [3, 4])
def test_multigroup_recovers_focal_mean_and_sd(seed: int):
    """Reference N(0,1) and focal N(-0.5, 1.3^2), 2,000 each, 16 2PL items.  Focal mean
    and SD within 0.1 of the truth and within 4 SE of the sample moments."""
    rng = np.random.default_rng(seed)
    true = make_bank("2pl", 16, rng)
    th_f = rng.normal(-0.5, 1.3, 2000)
    theta = np.concatenate([rng.normal(0, 1, 2000), th_f])
    y = simulate(true, theta, rng)
    groups = np.array(["ref"] * 2000 + ["focal"] * 2000)
    res = calibrate(y, "2pl", groups=groups, reference_group="ref")
    assert list(res.group_labels) == ["ref", "focal"]
    assert res.group_means[0] == 0 and res.group_sds[0] == 1
    assert np.isnan(res.group_mean_se[0]) and np.isnan(res.group_sd_se[0])
    assert abs(res.group_means[1] + 0.5) < 0.1
    assert abs(res.group_sds[1] - 1.3) < 0.1
    assert abs(res.group_means[1] - th_f.mean()) < 4 * res.group_mean_se[1]
    assert abs(res.group_sds[1] - th_f.std()) < 4 * res.group_sd_se[1]
    assert res.n_params == 16 * 2 + 2
    # default reference = first sorted label ("focal") -> the other group moves instead
    res2 = calibrate(y, "2pl", groups=groups, compute_se=False)
    assert list(res2.group_labels) == ["focal", "ref"]
    assert res2.group_means[1] > 0.2


def test_anchored_calibration_puts_new_items_on_anchor_scale():
    """15 anchors (true parameters) + 15 new items; examinees N(0.5, 1.2^2).  New items
    recover the generating a, b (RMSE < 0.12), the population mean/SD are estimated
    (within 0.1); an unanchored run would shift the b's by about -0.5."""
    rng = np.random.default_rng(5)
    true = make_bank("2pl", 30, rng)
    y = simulate(true, rng.normal(0.5, 1.2, 4000), rng)
    anchors = true.subset(np.arange(15))
    res = calibrate(y, "2pl", anchors=anchors, item_ids=true.item_ids)
    new = np.arange(15, 30)
    np.testing.assert_array_equal(res.params.a[:15], true.a[:15])
    np.testing.assert_array_equal(res.params.b[:15], true.b[:15])
    assert np.all(np.isnan(res.params.se_a[:15])) and np.all(res.params.se_a[new] > 0)
    assert rmse(res.params.a[new], true.a[new]) < 0.12
    assert rmse(res.params.b[new], true.b[new]) < 0.12
    assert abs(res.group_means[0] - 0.5) < 0.1
    assert abs(res.group_sds[0] - 1.2) < 0.1
    assert res.group_mean_se[0] > 0
    assert "anchor" in res.method_note
    free = calibrate(y, "2pl", compute_se=False)
    shift = np.mean(free.params.b[new, 0] - true.b[new, 0])
    assert abs(shift + 0.5) < 0.2


def test_anchors_of_another_model_and_all_items_anchored():
    """GRM anchors with new GPCM items; and a fully anchored test estimates only the
    latent mean/SD (within 0.1 of N(-0.3, 0.8^2))."""
    rng = np.random.default_rng(8)
    grm = make_bank("grm", 8, rng)
    gp = make_bank("gpcm", 6, rng)
    true = ItemParams.from_arrays(
        [f"g{j}" for j in range(8)] + [f"p{j}" for j in range(6)],
        ["grm"] * 8 + ["gpcm"] * 6, np.r_[grm.a, gp.a],
        [list(r) for r in grm.b] + [list(r) for r in gp.b])
    y = simulate(true, rng.normal(-0.3, 0.8, 3000), rng)
    res = calibrate(y, "gpcm", anchors=true.subset(np.arange(8)), item_ids=true.item_ids,
                    compute_se=False)
    assert list(res.params.model) == ["grm"] * 8 + ["gpcm"] * 6
    assert rmse(res.params.b[8:], true.b[8:]) < 0.15
    assert abs(res.group_means[0] + 0.3) < 0.1
    only = calibrate(y, "gpcm", anchors=true, item_ids=true.item_ids)
    assert abs(only.group_means[0] + 0.3) < 0.1 and abs(only.group_sds[0] - 0.8) < 0.1
    assert only.n_params == 2


# -------------------------------------------------------------- standard errors

def test_se_equal_inverse_numerical_hessian_lsat7():
    """2PL and 3PL (Beta(5,17) prior included in the Hessian) on LSAT-7: SEs equal those
    from a central-difference Hessian of the marginal log-likelihood computed with
    scoring.models on the same 41-point grid (rtol 1e-3)."""
    y = lsat7()
    patterns, counts = np.unique(y, axis=0, return_counts=True)
    gidx = np.zeros(patterns.shape[0], dtype=int)
    res = calibrate(y, "2pl")
    ref = numerical_se(res, patterns, gidx, [], counts=counts)
    for (kind, j, k), s in ref.items():
        got = res.params.se_a[j] if kind == "a" else res.params.se_b[j, k]
        assert got == pytest.approx(s, rel=1e-3)

    res3 = calibrate(y, "3pl")

    def log_beta(c):
        return float(np.sum(4 * np.log(c) + 16 * np.log1p(-c)))

    ref3 = numerical_se(res3, patterns, gidx, [], log_prior=log_beta, counts=counts)
    for (kind, j, k), s in ref3.items():
        got = {"a": res3.params.se_a[j], "b": res3.params.se_b[j, k],
               "c": res3.params.se_c[j]}[kind]
        assert got == pytest.approx(s, rel=2e-3)


def test_se_full_information_polytomous_two_groups():
    """GRM + GPCM + 2PL items with two groups: item SEs and the focal group's mean/SD SEs
    equal the numerical-Hessian SEs (full information, cross-item and group covariances
    included); rtol 2e-3."""
    rng = np.random.default_rng(9)
    true = ItemParams.from_arrays(
        ["g1", "g2", "p1", "p2", "d1", "d2"], ["grm", "grm", "gpcm", "gpcm", "2pl", "2pl"],
        [1.2, 0.8, 1.0, 1.5, 1.1, 0.9],
        [[-0.8, 0.6], [-0.2, 1.0], [-0.5, 0.4], [0.3, -0.2], [0.2], [-0.6]])
    theta = np.concatenate([rng.normal(0, 1, 300), rng.normal(0.4, 1.2, 300)])
    y = simulate(true, theta, rng)
    groups = np.array(["a"] * 300 + ["b"] * 300)
    res = calibrate(y, list(true.model), groups=groups)
    gidx = (groups == "b").astype(int)
    ref = numerical_se(res, y, gidx, [1])
    for (kind, j, k), s in ref.items():
        if kind == "a":
            got = res.params.se_a[j]
        elif kind == "b":
            got = res.params.se_b[j, k]
        else:
            got = res.group_mean_se[j] if kind == "mu" else res.group_sd_se[j]
        assert got == pytest.approx(s, rel=2e-3), (kind, j, k)


# ------------------------------------------------------- internals vs scoring.models

def test_internal_probabilities_match_models(mixed_bank):
    """The EM's private response functions equal scoring.models.probabilities (1e-12)."""
    th = np.linspace(-5, 5, 21)
    ref = models.probabilities(mixed_bank, th)
    kmax = mixed_bank.max_categories
    for j in range(mixed_bank.n_items):
        code = cal._CODE[mixed_bank.model[j]]
        X = cal._to_internal(code, mixed_bank.a[j], mixed_bank.b[j], mixed_bank.c[j], kmax)
        P, _ = cal._probs(code, X[None], mixed_bank.n_categories[j:j + 1], th, kmax, False)
        np.testing.assert_allclose(P[0], ref[:, j, :], atol=1e-12)


def test_marginal_loglik_matches_models_likelihood(mixed_bank):
    rng = np.random.default_rng(2)
    y = simulate(mixed_bank, rng.normal(0, 1, 400), rng)
    y[rng.random(y.shape) < 0.3] = np.nan
    groups = np.where(np.arange(400) < 200, "x", "y")
    got = cal.marginal_loglik(mixed_bank, y, groups=groups, group_means=[0.0, 0.5],
                              group_sds=[1.0, 1.3])
    ref = marginal_ll_reference(mixed_bank, y, (groups == "y").astype(int),
                                np.array([0.0, 0.5]), np.array([1.0, 1.3]),
                                cal.quadrature_grid(41))
    assert got == pytest.approx(ref, rel=1e-12)


# ------------------------------------------------ iteration control, history, errors

def test_progress_callback_history_and_monotone_loglik():
    calls: list[IterationRecord] = []
    res = calibrate(lsat7(), "2pl", progress=calls.append, tol=1e-6)
    assert len(calls) == res.n_iter == len(res.history) >= 3
    assert tuple(calls) == res.history
    assert [r.iteration for r in calls] == list(range(1, res.n_iter + 1))
    ll = np.array([r.loglik for r in calls])
    assert np.all(np.diff(ll) > -1e-6)          # EM (with guarded SQUAREM) never goes down
    assert res.loglik >= ll[-1] - 1e-9
    assert calls[-1].max_change < 1e-6


def test_max_iter_reports_not_converged():
    res = calibrate(lsat7(), "2pl", max_iter=2, compute_se=False)
    assert res.n_iter == 2 and not res.converged
    assert "NOT converged" in res.method_note


@pytest.mark.parametrize("column, message", [
    (np.ones(200), "no response variance"),
    (np.r_[np.zeros(5), np.ones(4), np.full(191, np.nan)], "only 9 responses"),
])
def test_bad_items_are_named(column, message):
    rng = np.random.default_rng(0)
    y = simulate(make_bank("2pl", 4, rng), rng.standard_normal(200), rng)
    y = np.column_stack([y, column])
    with pytest.raises(ValueError, match=f"item Q5: .*{message}|item Q5: {message}"):
        calibrate(y, "2pl", item_ids=["Q1", "Q2", "Q3", "Q4", "Q5"])


def test_screen_items_lists_what_calibrate_refuses():
    """screen_items names, with calibrate's reasons, exactly the items calibrate refuses;
    anchors (skip) are not screened."""
    rng = np.random.default_rng(0)
    y = simulate(make_bank("2pl", 4, rng), rng.standard_normal(200), rng).astype(float)
    y = np.column_stack([y, np.ones(200), np.r_[np.zeros(5), np.ones(4), np.full(191, np.nan)]])
    ids = ["Q1", "Q2", "Q3", "Q4", "C", "F"]
    found = cal.screen_items(y, ids)
    assert [(e.item_id, e.reason) for e in found] == [
        ("C", "no response variance (all 200 responses = 1)"),
        ("F", "only 9 responses (at least 10 needed)")]
    assert [e.item_id for e in cal.screen_items(y, ids, skip=["C"], min_responses=9)] == []
    assert cal.screen_items(y[:, :4], ids[:4]) == []
    calibrate(y[:, :4], "2pl", item_ids=ids[:4], compute_se=False)  # the rest is fine


def test_separating_item_stops_at_the_slope_bound_and_is_named():
    """A perfectly separating item with two responses: no estimate exists.  The damped
    M-step no longer fails (it raised SingularInformation, before that numpy's bare
    'Singular matrix'): the slope stops at SLOPE_BOUND, is held fixed for the SEs and a
    "bound" warning names exactly that item; the other items keep finite SEs."""
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(400)
    y = simulate(make_bank("2pl", 10, rng), theta, rng).astype(float)
    sep = np.full(400, np.nan)
    idx = rng.choice(400, 2, replace=False)
    sep[idx] = (theta[idx] > np.median(theta[idx])).astype(float)
    ids = [f"Q{j + 1}" for j in range(10)] + ["SEP"]
    res = calibrate(np.column_stack([y, sep]), "2pl", item_ids=ids, min_responses=1)
    assert abs(res.params.a[10]) == pytest.approx(cal.SLOPE_BOUND)
    assert np.isnan(res.params.se_a[10])
    assert np.all(np.isfinite(res.params.se_a[:10])) and np.all(res.params.se_a[:10] < 1)
    bound = [w for w in res.warnings if w.kind == "bound"]
    assert len(bound) == 1 and bound[0].item_ids == ("SEP",)
    assert "SEP (a = " in bound[0].message


def test_invalid_inputs():
    y = lsat7()
    with pytest.raises(ValueError, match="no responses in category 1"):
        yy = np.column_stack([y, np.where(y[:, 0] == 1, 2.0, 0.0)])
        calibrate(yy, "grm")
    with pytest.raises(ValueError, match="needs 0/1"):
        calibrate(np.column_stack([y, y.sum(axis=1)]), "2pl")
    with pytest.raises(ValueError, match="unknown model"):
        calibrate(y, "4pl")
    with pytest.raises(ValueError, match="integer categories"):
        calibrate(y + 0.5, "2pl")
    with pytest.raises(ValueError, match="anchor"):
        calibrate(y, "2pl", anchors=make_bank("2pl", 2, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="groups"):
        calibrate(y, "2pl", groups=["a"] * 10)


def test_blas_threads_restored_and_results_identical():
    """Single-threaded BLAS inside calibrate gives the same numbers as leaving it alone."""
    y = lsat7()
    r1 = calibrate(y, "2pl", compute_se=False)
    r2 = calibrate(y, "2pl", compute_se=False, blas_threads=None)
    np.testing.assert_allclose(r1.params.a, r2.params.a, atol=1e-8)


def test_quadrature_note_for_long_tests():
    """40 four-category GRM items give posterior SDs near 0.15, too narrow for the default
    grid spacing 0.3: the method note says so; LSAT-7 (5 items) gets no such note."""
    rng = np.random.default_rng(12)
    true = make_bank("grm", 40, rng)
    y = simulate(true, rng.standard_normal(500), rng)
    res = calibrate(y, "grm", compute_se=False, n_quad=41)
    assert "Quadrature: the grid spacing 0.30 is coarse" in res.method_note
    assert "Quadrature" not in calibrate(lsat7(), "2pl", compute_se=False).method_note


def test_result_params_carry_the_calibrated_latent_distribution():
    """Issue 18: a Rasch calibration's items carry the estimated latent SD (seeded
    simulation, true 0.75, 2,000 persons x 10 items: within 0.06), equal to group_sds; with
    two groups they carry the pooled mixture, checked against its formula."""
    from scoring.calibration import pooled_latent

    rng = np.random.default_rng(5)
    b = np.linspace(-1.5, 1.5, 10)
    theta = rng.normal(0.0, 0.75, 2000)
    x = (rng.random((2000, 10)) < 1 / (1 + np.exp(-(theta[:, None] - b)))).astype(float)
    result = calibrate(x, "rasch")
    assert result.params.latent_mean == 0.0
    assert result.params.latent_sd == pytest.approx(float(result.group_sds[0]), abs=1e-15)
    assert abs(result.params.latent_sd - 0.75) < 0.06
    groups = np.where(np.arange(2000) < 500, "a", "b")
    x[:500] = (rng.random((500, 10)) < 1 / (1 + np.exp(-(rng.normal(-0.5, 0.75, 500)[:, None]
                                                          - b)))).astype(float)
    two = calibrate(x, "rasch", groups=groups)
    m, s = two.group_means, two.group_sds
    mean = 0.25 * m[0] + 0.75 * m[1]
    sd = np.sqrt(0.25 * (s[0] ** 2 + (m[0] - mean) ** 2) + 0.75 * (s[1] ** 2 + (m[1] - mean) ** 2))
    assert (two.params.latent_mean, two.params.latent_sd) == pytest.approx((mean, sd), abs=1e-12)
    assert pooled_latent([0.0], [0.7], [10]) == (0.0, pytest.approx(0.7, abs=1e-15))


# ------------------------------------------------------- cross-product (XPD) SEs

def numerical_xpd_se(result: CalibrationResult, y: np.ndarray, gidx: np.ndarray,
                     free_groups: list[int], h: float = 1e-4) -> dict:
    """SEs from the cross-product of per-person scores, each score a central difference
    of that person's marginal log-likelihood (scoring.models only), in the reported metric
    (a, b, group mean/SD): the XPD information is invariant under the delta method."""
    p = result.params
    grid = cal.quadrature_grid(41)
    coords = []
    for j in range(p.n_items):
        coords.append(("a", j, 0))
        coords += [("b", j, k) for k in range(p.n_categories[j] - 1)]
    for g in free_groups:
        coords += [("mu", g, 0), ("sd", g, 0)]

    def per_person(delta):
        a, b = p.a.copy(), p.b.copy()
        means, sds = result.group_means.copy(), result.group_sds.copy()
        kind, j, k = delta[0]
        if kind == "a":
            a[j] += delta[1]
        elif kind == "b":
            b[j, k] += delta[1]
        elif kind == "mu":
            means[j] += delta[1]
        else:
            sds[j] += delta[1]
        L = models.log_likelihood(with_values(p, a, b, p.c), y, grid)
        u = (grid[None, :] - means[:, None]) / sds[:, None]
        logw = -0.5 * u ** 2
        logw -= logsumexp(logw, axis=1, keepdims=True)
        return logsumexp(L + logw[gidx], axis=1)                    # (N,)

    S = np.stack([(per_person((c, h)) - per_person((c, -h))) / (2 * h) for c in coords],
                 axis=1)
    se = np.sqrt(np.diag(np.linalg.inv(S.T @ S)))
    return {coord: s for coord, s in zip(coords, se, strict=True)}


def test_xpd_se_equal_cross_product_of_numerical_person_scores():
    """GRM + GPCM + 2PL items with two groups and missing responses: the XPD SEs equal
    those from the cross-product of per-person numerical scores (independent code,
    central differences, rtol 1e-4) for items and the focal group's mean and SD."""
    rng = np.random.default_rng(9)
    true = ItemParams.from_arrays(
        ["g1", "g2", "p1", "p2", "d1", "d2"], ["grm", "grm", "gpcm", "gpcm", "2pl", "2pl"],
        [1.2, 0.8, 1.0, 1.5, 1.1, 0.9],
        [[-0.8, 0.6], [-0.2, 1.0], [-0.5, 0.4], [0.3, -0.2], [0.2], [-0.6]])
    theta = np.concatenate([rng.normal(0, 1, 300), rng.normal(0.4, 1.2, 300)])
    y = simulate(true, theta, rng)
    y[rng.random(y.shape) < 0.15] = np.nan
    groups = np.array(["a"] * 300 + ["b"] * 300)
    res = calibrate(y, list(true.model), groups=groups, se_method="xpd")
    assert "cross-product (XPD)" in res.method_note
    ref = numerical_xpd_se(res, y, (groups == "b").astype(int), [1])
    for (kind, j, k), s in ref.items():
        if kind == "a":
            got = res.params.se_a[j]
        elif kind == "b":
            got = res.params.se_b[j, k]
        else:
            got = res.group_mean_se[j] if kind == "mu" else res.group_sd_se[j]
        assert got == pytest.approx(s, rel=1e-4), (kind, j, k)


@pytest.mark.parametrize("model", ["2pl", "grm"])
def test_xpd_and_louis_se_agree_on_a_large_simulated_set(model: str):
    """30 items x 5,000 persons (seed 31): XPD and the full Louis information are two
    estimates of the same matrix; every SE of a and b agrees within 8 % and their
    median ratio is within 2 % of 1.  Louis stays exact (the LSAT-7 test above)."""
    rng = np.random.default_rng(31)
    true = make_bank(model, 30, rng)
    y = simulate(true, rng.standard_normal(5000), rng)
    louis = calibrate(y, model, se_method="louis")
    xpd = calibrate(y, model, se_method="xpd")
    assert "Louis" in louis.method_note and "XPD" in xpd.method_note
    np.testing.assert_array_equal(louis.params.a, xpd.params.a)
    ratio = np.concatenate([xpd.params.se_a / louis.params.se_a,
                            (xpd.params.se_b / louis.params.se_b).ravel()])
    ratio = ratio[np.isfinite(ratio)]
    assert ratio.size >= 60
    assert np.all(np.abs(ratio - 1) < 0.08), (ratio.min(), ratio.max())
    assert abs(np.median(ratio) - 1) < 0.02


def test_se_method_auto_picks_by_cost(monkeypatch):
    """``auto``: Louis on small data (LSAT-7), XPD when Louis' cost is over the limit;
    unknown methods are refused."""
    y = lsat7()
    small = calibrate(y, "2pl")
    assert "Louis" in small.method_note
    np.testing.assert_array_equal(small.params.se_a,
                                  calibrate(y, "2pl", se_method="louis").params.se_a)
    monkeypatch.setattr(cal, "_LOUIS_MAX_COST", 0.0)
    big = calibrate(y, "2pl")
    assert "XPD" in big.method_note
    np.testing.assert_array_equal(big.params.se_a,
                                  calibrate(y, "2pl", se_method="xpd").params.se_a)
    with pytest.raises(ValueError, match="se_method"):
        calibrate(y, "2pl", se_method="oakes")
