"""Tests for scoring/fit.py: infit/outfit, S-X2 (Lord-Wingersky), lz."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from scoring import models as M
from scoring.fit import (
    item_fit,
    item_fit_table,
    lord_wingersky,
    n_item_parameters,
    person_fit_lz,
    summed_score_expected,
    sx2,
)
from scoring.params import ItemParams


def simulate(params: ItemParams, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Responses (n_persons, n_items) drawn from the model at the given theta."""
    p = M.probabilities(params, theta)
    u = rng.random((theta.shape[0], params.n_items, 1))
    return (u > np.cumsum(p, axis=-1)).sum(axis=-1).astype(float)


def bank_2pl(n_items: int, seed: int = 0) -> ItemParams:
    rng = np.random.default_rng(seed)
    return ItemParams.from_arrays(
        item_ids=[f"i{j}" for j in range(n_items)], model="2pl",
        a=rng.uniform(0.7, 2.0, n_items), b=rng.normal(0, 1, n_items),
    )


def bank_poly(seed: int = 5) -> ItemParams:
    """12 items: 3 GRM, 3 GPCM (4 categories each), 6 2PL."""
    rng = np.random.default_rng(seed)
    models = ["grm", "gpcm"] * 3 + ["2pl"] * 6
    b = [np.sort(rng.normal(size=3)) if m != "2pl" else [rng.normal()] for m in models]
    return ItemParams.from_arrays(item_ids=[f"p{j}" for j in range(12)], model=models,
                                  a=rng.uniform(0.8, 1.8, 12), b=b)


def all_patterns(params: ItemParams):
    return itertools.product(*[range(int(k)) for k in params.n_categories])


# ----------------------------------------------------------------- Lord-Wingersky


def test_lord_wingersky_matches_enumeration(mixed_bank):
    """LW recursion = sum of P(pattern | θ) over all 2*2*4*4*3*2 = 384 patterns; tol 1e-14."""
    theta = np.array([-2.5, -0.4, 0.0, 1.3, 3.0])
    probs = M.probabilities(mixed_bank, theta)
    brute = np.zeros((theta.size, int(np.sum(mixed_bank.n_categories - 1)) + 1))
    for pattern in all_patterns(mixed_bank):
        pr = np.prod([probs[:, j, k] for j, k in enumerate(pattern)], axis=0)
        brute[:, sum(pattern)] += pr
    lw = lord_wingersky(mixed_bank, theta)
    assert lw.shape == brute.shape == (5, 12)
    np.testing.assert_allclose(lw, brute, rtol=0, atol=1e-14)
    np.testing.assert_allclose(lw.sum(axis=1), 1.0, atol=1e-14)


def test_summed_score_expected_matches_enumeration(mixed_bank):
    """P(X_j = k | S = s) from the leave-one-out recursion equals brute force; tol 1e-12."""
    nodes = np.linspace(-4, 4, 17)
    w = np.exp(-nodes**2 / 2)
    w /= w.sum()
    probs = M.probabilities(mixed_bank, nodes)
    n_s = int(np.sum(mixed_bank.n_categories - 1)) + 1
    joint = np.zeros((mixed_bank.n_items, n_s, mixed_bank.max_categories))
    for pattern in all_patterns(mixed_bank):
        pr = w @ np.prod([probs[:, j, k] for j, k in enumerate(pattern)], axis=0)
        for j, k in enumerate(pattern):
            joint[j, sum(pattern), k] += pr
    brute = joint / joint[0].sum(axis=1)[None, :, None]
    got = summed_score_expected(mixed_bank, nodes, w)
    np.testing.assert_allclose(got, brute, rtol=0, atol=1e-12)
    # each (item, score) row is a distribution over categories
    np.testing.assert_allclose(got.sum(axis=2), 1.0, atol=1e-12)


# ----------------------------------------------------------------- infit / outfit


def brute_force_item_fit(params, x, theta):
    """Loop implementation of Wright & Masters (1982) mean squares and zstd."""
    out = {k: np.full(params.n_items, np.nan) for k in ("infit", "outfit", "in_z", "out_z")}
    for j in range(params.n_items):
        z2, y2, ws, cw2, cmw2, n = 0.0, 0.0, 0.0, 0.0, 0.0, 0
        for i in range(x.shape[0]):
            if np.isnan(x[i, j]) or not np.isfinite(theta[i]):
                continue
            p = M.probabilities(params.subset([j]), theta[i])[0, 0]
            cats = np.arange(len(p))
            e = float(np.sum(cats * p))
            w = float(np.sum((cats - e) ** 2 * p))
            c = float(np.sum((cats - e) ** 4 * p))
            y = x[i, j] - e
            z2 += y * y / w
            y2 += y * y
            ws += w
            cw2 += c / w**2
            cmw2 += c - w * w
            n += 1
        out["outfit"][j] = z2 / n
        out["infit"][j] = y2 / ws
        q_out = np.sqrt(cw2 / n**2 - 1 / n)
        q_in = np.sqrt(cmw2 / ws**2)
        out["out_z"][j] = (out["outfit"][j] ** (1 / 3) - 1) * 3 / q_out + q_out / 3
        out["in_z"][j] = (out["infit"][j] ** (1 / 3) - 1) * 3 / q_in + q_in / 3
    return out


def test_item_fit_matches_brute_force_loop(mixed_bank):
    """Vectorised infit/outfit/zstd equal a person-by-person loop (with NaN and inf θ); 1e-10."""
    rng = np.random.default_rng(1)
    theta = rng.normal(size=60)
    x = simulate(mixed_bank, theta, rng)
    x[rng.random(x.shape) < 0.25] = np.nan
    theta[3] = np.inf  # an MLE of a perfect score: skipped
    theta[7] = np.nan
    res = item_fit(mixed_bank, x, theta)
    ref = brute_force_item_fit(mixed_bank, x, theta)
    np.testing.assert_allclose(res.outfit, ref["outfit"], rtol=1e-10)
    np.testing.assert_allclose(res.infit, ref["infit"], rtol=1e-10)
    np.testing.assert_allclose(res.outfit_zstd, ref["out_z"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.infit_zstd, ref["in_z"], rtol=1e-10, atol=1e-12)
    finite = np.isfinite(theta)
    np.testing.assert_array_equal(res.n, (~np.isnan(x[finite])).sum(axis=0))


def test_infit_outfit_near_one_on_model_data():
    """Data simulated from the model at known θ (n = 5000, 20% missing), 27 items:
    infit within 1 ± 0.12 and |infit zstd| < 3.5 for every item; infit zstd sd in [0.6, 1.5].
    Outfit is outlier-sensitive on off-target items (one response at a(b - θ) = 7 adds
    e^7 / n ~ 0.2), so only its bulk is checked: median within 1 ± 0.03 and >= 90% of items
    within 1 ± 0.15.  (Tolerances checked on 20 other seeds.)"""
    rng = np.random.default_rng(2)
    params = bank_2pl(15, seed=2).concat(bank_poly())
    theta = rng.normal(size=5000)
    x = simulate(params, theta, rng)
    x[rng.random(x.shape) < 0.2] = np.nan
    res = item_fit(params, x, theta)
    assert np.all(np.abs(res.infit - 1) < 0.12), res.infit
    assert np.all(np.abs(res.infit_zstd) < 3.5)
    assert 0.6 < np.std(res.infit_zstd) < 1.5
    assert abs(np.median(res.outfit) - 1) < 0.03
    assert np.mean(np.abs(res.outfit - 1) < 0.15) >= 0.9


def misfit_case(rng, n_persons=3000):
    """Item 0 truly has a flat slope (0.25, modelled 1.5); item 1 truly has guessing
    (3PL c = 0.3, b = 1, modelled as 2PL).  Returns (true, modelled) banks."""
    n_items = 20
    a = rng.uniform(0.8, 1.8, n_items)
    b = rng.normal(size=n_items)
    c = np.zeros(n_items)
    models = ["2pl"] * n_items
    a[0], b[0] = 0.25, 0.0
    models[1], a[1], b[1], c[1] = "3pl", 1.5, 1.0, 0.3
    ids = [f"i{j}" for j in range(n_items)]
    true = ItemParams.from_arrays(item_ids=ids, model=models, a=a, b=b, c=c)
    modelled = ItemParams.from_arrays(item_ids=ids, model="2pl", a=np.r_[1.5, 1.5, a[2:]], b=b)
    return true, modelled


def test_misfitting_items_have_large_mean_squares():
    """Flatter-than-modelled slope and unmodelled guessing: infit and outfit > 1.2, zstd > 3;
    the other items: infit within 1 ± 0.1 and |infit zstd| < 3.5.  (A *steeper* true slope
    gives MS < 1, overfit, so it is not used here.)"""
    rng = np.random.default_rng(3)
    true, modelled = misfit_case(rng)
    theta = rng.normal(size=3000)
    x = simulate(true, theta, rng)
    res = item_fit(modelled, x, theta)
    assert np.all(res.infit[:2] > 1.2) and np.all(res.outfit[:2] > 1.2), (res.infit, res.outfit)
    assert np.all(res.infit_zstd[:2] > 3) and np.all(res.outfit_zstd[:2] > 3)
    assert np.all(np.abs(res.infit[2:] - 1) < 0.1)
    assert np.all(np.abs(res.infit_zstd[2:]) < 3.5)


# ----------------------------------------------------------------- S-X2


def test_sx2_null_calibrated_with_known_parameters():
    """True parameters (so no df is charged for estimation): over 3 seeds x 20 items,
    rejection at 5% <= 12.5% and mean S-X2/df within 1 ± 0.15.  (Over 40 other seeds:
    mean rejection 5.3%, max 11.7%; mean S-X2/df 0.995, range 0.91-1.12.)"""
    params = bank_2pl(20, seed=10)
    pvals, ratios = [], []
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        x = simulate(params, rng.normal(size=2000), rng)
        res = sx2(params, x, n_item_params=np.zeros(20))
        assert res.n_persons == 2000 and np.all(res.reason == "")
        pvals.append(res.p)
        ratios.append(res.sx2 / res.df)
    assert np.mean(np.concatenate(pvals) < 0.05) <= 0.125
    assert abs(np.mean(ratios) - 1) < 0.15


def test_sx2_null_with_estimated_parameters():
    """Parameters estimated by scoring.calibration (2PL EM), df = groups - 2: rejection at 5%
    <= 17.5% over 2 seeds x 20 items (7 of 40), mean S-X2/df within 1 ± 0.2.  (Over 20 other
    seeds: mean rejection 5.3%, max 15%; mean S-X2/df 1.00, range 0.89-1.14.)"""
    from scoring.calibration import calibrate

    params = bank_2pl(20, seed=11)
    pvals, ratios = [], []
    for seed in range(2):
        rng = np.random.default_rng(200 + seed)
        x = simulate(params, rng.normal(size=2000), rng)
        est = calibrate(x, "2pl", compute_se=False).params
        res = sx2(est, x)
        pvals.append(res.p)
        ratios.append(res.sx2 / res.df)
    assert np.mean(np.concatenate(pvals) < 0.05) <= 0.175
    assert abs(np.mean(ratios) - 1) < 0.2


def test_sx2_polytomous_null_calibrated():
    """GRM/GPCM/2PL mix at true parameters: rejection at 5% <= 12.5% over 2 seeds x 12 items,
    mean S-X2/df within 1 ± 0.2; polytomous items have more cells than groups."""
    params = bank_poly()
    pvals, ratios = [], []
    for seed in range(2):
        rng = np.random.default_rng(300 + seed)
        x = simulate(params, rng.normal(size=2000), rng)
        res = sx2(params, x, n_item_params=np.zeros(12))
        pvals.append(res.p)
        ratios.append(res.sx2 / res.df)
    assert np.mean(np.concatenate(pvals) < 0.05) <= 0.125
    assert abs(np.mean(ratios) - 1) < 0.2
    poly = ~params.is_dichotomous
    assert np.all(res.df[poly] > res.n_groups[poly])
    assert np.all(res.df[~poly] == res.n_groups[~poly])


def test_sx2_detects_misfit():
    """The two misfitting items of misfit_case: p < 1e-10 and the two largest S-X2/df.
    The summed score contains the misfitting items, which also distorts the expected
    proportions of fitting items (a known S-X2 property), so for those only >= 70% with
    p > .01 is required (tolerances checked on 20 other seeds)."""
    rng = np.random.default_rng(4)
    true, modelled = misfit_case(rng)
    x = simulate(true, rng.normal(size=3000), rng)
    res = sx2(modelled, x)
    assert np.all(res.p[:2] < 1e-10)
    assert set(np.argsort(res.sx2 / res.df)[-2:]) == {0, 1}
    assert np.mean(res.p[2:] > 0.01) >= 0.7


def test_sx2_collapsing_and_df():
    """After collapsing, every nonzero expected count >= min_expected is implied by fewer groups
    for a stricter threshold; dichotomous df = groups - n_params (2PL: 2, 3PL: 3, Rasch: 1)."""
    rng = np.random.default_rng(6)
    params = bank_2pl(10, seed=6)
    x = simulate(params, rng.normal(size=400), rng)
    loose = sx2(params, x, min_expected=0.0)
    strict = sx2(params, x, min_expected=5.0)
    assert np.all(strict.n_groups <= loose.n_groups)
    assert np.any(strict.n_groups < loose.n_groups)
    # without collapsing: one group per observed score 1..9
    scores = x.sum(axis=1)
    assert np.all(loose.n_groups == np.unique(scores[(scores > 0) & (scores < 10)]).size)
    np.testing.assert_array_equal(strict.df, strict.n_groups - 2)
    bank = ItemParams.from_arrays(["r", "t", "d"], ["rasch", "3pl", "grm"], [1, 1.2, 1.1],
                                  [[0.0], [0.5], [-1, 1]], c=[0, 0.2, 0])
    np.testing.assert_array_equal(n_item_parameters(bank), [1, 3, 3])


def test_sx2_sparse_data_returns_nan_with_reason():
    """CAT-like data (30% of cells missing, no complete cases): NaN plus an explanation; a
    complete fixed form inside the same data is analysable."""
    rng = np.random.default_rng(7)
    params = bank_2pl(12, seed=7)
    x = simulate(params, rng.normal(size=600), rng)
    sparse = x.copy()
    sparse[rng.random(x.shape) < 0.3] = np.nan
    res = sx2(params, sparse)
    assert res.n_persons < 100
    assert np.all(np.isnan(res.sx2)) and np.all(np.isnan(res.p))
    assert all("complete cases" in r for r in res.reason)
    form = sx2(params, x)
    assert form.n_persons == 600 and np.all(np.isfinite(form.p))


# ----------------------------------------------------------------- lz


def brute_force_lz(params, x, theta):
    out = np.full(x.shape[0], np.nan)
    for i in range(x.shape[0]):
        l0 = e = v = 0.0
        for j in range(params.n_items):
            if np.isnan(x[i, j]):
                continue
            p = M.probabilities(params.subset([j]), theta[i])[0, 0, : params.n_categories[j]]
            lp = np.log(p)
            l0 += lp[int(x[i, j])]
            e += np.sum(p * lp)
            v += np.sum(p * lp**2) - np.sum(p * lp) ** 2
        if v > 0:
            out[i] = (l0 - e) / np.sqrt(v)
    return out


def test_lz_matches_brute_force_and_handles_nan(mixed_bank):
    """Vectorised lz equals the loop (tol 1e-10); all-NaN rows and NaN θ give NaN."""
    rng = np.random.default_rng(8)
    theta = rng.normal(size=40)
    x = simulate(mixed_bank, theta, rng)
    x[rng.random(x.shape) < 0.3] = np.nan
    x[5] = np.nan
    theta[9] = np.nan
    got = person_fit_lz(mixed_bank, x, theta)
    ref = brute_force_lz(mixed_bank, x, np.nan_to_num(theta))
    ref[9] = np.nan
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12, equal_nan=True)
    assert np.isnan(got[5]) and np.isnan(got[9])


def test_lz_standard_normal_for_fitting_simulees_and_flags_aberrant():
    """40 2PL items, known θ, 3000 simulees: |mean| < 0.1, sd in [0.9, 1.1].
    Reversed patterns (hard items right, easy items wrong) at θ = 0 get lz < -2."""
    rng = np.random.default_rng(9)
    params = bank_2pl(40, seed=9)
    theta = rng.normal(size=3000)
    lz = person_fit_lz(params, simulate(params, theta, rng), theta)
    assert abs(np.mean(lz)) < 0.1
    assert 0.9 < np.std(lz) < 1.1
    order = np.argsort(params.b)
    aberrant = np.zeros((5, 40))
    aberrant[:, order[20:]] = 1.0  # the 20 hardest right, the 20 easiest wrong
    assert np.all(person_fit_lz(params, aberrant, np.zeros(5)) < -2)


# ----------------------------------------------------------------- table


def test_item_fit_table_aligned():
    rng = np.random.default_rng(12)
    params = bank_2pl(8, seed=12)
    theta = rng.normal(size=500)
    x = simulate(params, theta, rng)
    table = item_fit_table(params, x, theta)
    single = item_fit(params, x, theta)
    s = sx2(params, x)
    np.testing.assert_array_equal(table.item_ids, params.item_ids)
    np.testing.assert_array_equal(table.infit, single.infit)
    np.testing.assert_array_equal(table.sx2_p, s.p)
    assert len(table.as_dict()["sx2"]) == 8


def test_bad_theta_shape_rejected(mixed_bank):
    with pytest.raises(ValueError, match="one value per person"):
        item_fit(mixed_bank, np.zeros((3, 6)), np.zeros(4))


def test_chi2_sf_matches_scipy_over_whole_number_df() -> None:
    from scipy.special import chdtrc

    from scoring.fit import chi2_sf

    df = np.repeat(np.arange(1, 121), 7)
    x = df * np.tile([0.0, 0.05, 0.5, 1.0, 1.7, 3.0, 8.0], 120)
    np.testing.assert_allclose(chi2_sf(x, df), chdtrc(df, x), rtol=1e-12, atol=1e-300)
    assert np.isnan(chi2_sf([3.0, np.nan], [0, 4])).all()
    with pytest.raises(ValueError, match="whole-number"):
        chi2_sf(2.0, 2.5)


def test_empirical_curves_equal_a_direct_rest_score_computation() -> None:
    """Per item: groups of the EAP from the other items (item j set missing), observed
    group means, and the rest-posterior mean of the expected score, computed here the
    long way (one posterior per item with the item masked) and by empirical_curves
    (dividing item j out of one posterior)."""
    from scoring.estimation import eap, posterior_grid
    from scoring.fit import empirical_curves
    from scoring.models import probabilities

    rng = np.random.default_rng(11)
    params = ItemParams.from_arrays(["d1", "d2", "d3", "g"], ["2pl", "2pl", "3pl", "grm"],
                                    a=[1.4, 0.8, 1.1, 0.9],
                                    b=[[0.3, np.nan], [-0.5, np.nan], [0.2, np.nan],
                                       [-0.8, 0.6]], c=[0, 0, 0.15, 0])
    theta = rng.normal(0.2, 1.1, 1500)
    p = probabilities(params, theta)
    y = (rng.random((1500, 4))[..., None] > np.cumsum(p, axis=2)).sum(axis=2).astype(float)
    y[rng.random(1500) < 0.3, 3] = np.nan
    curves = empirical_curves(params, y, prior_mean=0.2, prior_sd=1.1, n_groups=5)
    pk = probabilities(params, np.linspace(-6, 6, 61))
    for j, top in enumerate([1.0, 1.0, 1.0, 2.0]):
        seen = ~np.isnan(y[:, j])
        masked = y[seen].copy()
        masked[:, j] = np.nan
        rest = eap(params, masked, prior_mean=0.2, prior_sd=1.1).theta
        _, w = posterior_grid(params, masked, 0.2, 1.1, 61)
        e = w @ (pk[:, j, :] @ np.arange(3.0))
        key = np.round(rest, 9)
        group = np.searchsorted(np.quantile(key, [0.2, 0.4, 0.6, 0.8]), key, side="right")
        for g in range(5):
            who = group == g
            assert curves.n[j, g] == who.sum()
            assert curves.theta[j, g] == pytest.approx(rest[who].mean(), abs=1e-9)
            assert curves.observed[j, g] == pytest.approx(y[seen][who, j].mean() / top,
                                                          abs=1e-12)
            assert curves.expected[j, g] == pytest.approx(e[who].mean() / top, abs=1e-9)
    # under the true model the standardised gaps look like N(0, 1) draws
    z = (curves.observed - curves.expected) / curves.se
    assert np.abs(z).max() < 3.5 and abs(np.mean(z)) < 0.6
