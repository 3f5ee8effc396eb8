"""Tests for scoring.estimation against brute-force scalar references (scipy)."""

import numpy as np
import pytest
from scipy import integrate, optimize

from scoring import estimation as E
from scoring import models as M
from scoring.params import ItemParams


def simulate(params, theta, rng, missing=0.0):
    """Responses (n_persons, n_items) drawn from the model, NaN with prob. `missing`."""
    p = M.probabilities(params, theta)
    cum = np.cumsum(p, axis=-1)
    u = rng.random(p.shape[:2])[..., None]
    r = np.minimum((u > cum).sum(axis=-1), params.n_categories - 1).astype(float)
    r[rng.random(r.shape) < missing] = np.nan
    return r


def loglik(params, x, t):
    """Brute-force scalar log-likelihood of one response vector at one θ."""
    p = M.probabilities(params, [t])[0]
    return sum(np.log(p[j, int(v)]) for j, v in enumerate(x) if not np.isnan(v))


@pytest.fixture
def data(mixed_bank):
    rng = np.random.default_rng(7)
    r = simulate(mixed_bank, rng.normal(size=8), rng, missing=0.2)
    r[0] = [1, 1, 3, 3, 2, 1]  # all top categories
    r[1] = [0, 0, 0, 0, 0, 0]  # all bottom categories
    r[2] = np.nan  # no responses
    return mixed_bank, r


@pytest.fixture
def long_2pl():
    rng = np.random.default_rng(3)
    n = 20
    return ItemParams.from_arrays(
        [f"i{j}" for j in range(n)], "2pl", rng.uniform(0.6, 2.0, n), rng.normal(0, 1, n)
    )


# ---------------------------------------------------------------------- EAP


def test_eap_matches_scipy_quad(data):
    params, r = data
    mu = np.array([0.0, 0.5, -0.3, 1.0, 0.0, -1.0, 0.2, 0.0])
    sd = np.array([1.0, 0.8, 1.2, 1.0, 0.6, 1.0, 1.5, 1.0])
    est = E.eap(params, r, prior_mean=mu, prior_sd=sd, n_quad=121)
    assert est.method == "eap" and est.theta.shape == (8,)
    for i in [0, 4, 5]:  # extreme pattern, partly missing, full

        def moments(t, i=i):  # unnormalised posterior times (1, t, t²)
            dens = np.exp(loglik(params, r[i], t) - 0.5 * ((t - mu[i]) / sd[i]) ** 2)
            return dens * np.array([1.0, t, t * t])

        z, s1, s2 = integrate.quad_vec(moments, -6, 6, epsabs=1e-12, epsrel=1e-12)[0]
        m, v = s1 / z, s2 / z - (s1 / z) ** 2
        # tol: the rectangle rule on a smooth posterior is spectrally accurate; what is
        # left is the end-point weight h/2 f(±6) ~ 1e-7 for extreme patterns
        assert est.theta[i] == pytest.approx(m, abs=1e-6)
        assert est.se[i] == pytest.approx(np.sqrt(v), abs=1e-6)
    # no responses -> exactly the person's prior
    assert est.theta[2] == mu[2] and est.se[2] == sd[2]


def test_eap_default_grid_close_to_fine_grid(data):
    params, r = data
    coarse, fine = E.eap(params, r), E.eap(params, r, n_quad=241)
    np.testing.assert_allclose(coarse.theta, fine.theta, atol=1e-5)  # default spacing 0.2
    np.testing.assert_allclose(coarse.se, fine.se, atol=1e-5)


def test_posterior_grid_rows_sum_to_one(data):
    params, r = data
    nodes, w = E.posterior_grid(params, r, n_quad=31)
    assert nodes.shape == (31,) and w.shape == (8, 31)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)


def test_eap_rejects_bad_prior(data):
    params, r = data
    with pytest.raises(ValueError, match="prior_sd"):
        E.eap(params, r, prior_sd=0.0)
    with pytest.raises(ValueError, match="shape"):
        E.eap(params, r, prior_mean=np.zeros(3))


# ---------------------------------------------------------------------- MAP


def test_map_matches_minimize_scalar(data):
    params, r = data
    mu = np.linspace(-1, 1, 8)
    est = E.map_estimate(params, r, prior_mean=mu, prior_sd=0.9)
    for i in [0, 1, 3, 4, 5, 6, 7]:

        def neg(t, i=i):
            return -(loglik(params, r[i], t) - 0.5 * ((t - mu[i]) / 0.9) ** 2)

        ref = optimize.minimize_scalar(neg, bounds=(-6, 6), method="bounded",
                                       options={"xatol": 1e-10})
        assert est.theta[i] == pytest.approx(ref.x, abs=1e-6)  # tol: xatol of the reference
        h = 1e-4
        curv = (neg(ref.x + h) - 2 * neg(ref.x) + neg(ref.x - h)) / h**2
        assert est.se[i] == pytest.approx(1 / np.sqrt(curv), rel=1e-4)  # tol: 2nd difference
    assert est.theta[2] == mu[2] and est.se[2] == 0.9


# ---------------------------------------------------------------------- MLE


def test_mle_matches_minimize_scalar_and_clamps(data):
    params, r = data
    est = E.mle(params, r)
    for i in [3, 4, 5, 6, 7]:
        ref = optimize.minimize_scalar(lambda t, i=i: -loglik(params, r[i], t),
                                       bounds=(-4, 4), method="bounded",
                                       options={"xatol": 1e-10})
        assert est.theta[i] == pytest.approx(ref.x, abs=1e-6)
        seen = ~np.isnan(r[i])
        info = M.item_information(params, [est.theta[i]])[0, seen].sum()
        assert est.se[i] == pytest.approx(1 / np.sqrt(info), rel=1e-12)
    # all top / all bottom categories: clamped at the bounds, finite SE there
    assert est.theta[0] == 4.0 and est.theta[1] == -4.0
    assert np.isfinite(est.se[:2]).all()
    assert est.se[0] == pytest.approx(1 / np.sqrt(M.test_information(params, [4.0])[0]))
    # no responses
    assert np.isnan(est.theta[2]) and np.isnan(est.se[2])
    wide = E.mle(params, r, bounds=(-7, 7))
    assert wide.theta[0] == 7.0 and wide.theta[1] == -7.0


def test_mle_finds_global_maximum_of_bimodal_3pl_likelihood():
    # Correct on hard 3PL items (guessable) and wrong on easy ones: the likelihood
    # has two local maxima; the estimate must be the global one.
    params = ItemParams.from_arrays(
        [f"i{j}" for j in range(6)], "3pl", [2.5] * 6, [-2.0, -1.8, -1.5, 2.0, 2.2, 2.5],
        c=[0.25] * 6,
    )
    x = np.array([[1, 1, 0, 1, 1, 0]], dtype=float)
    est = E.mle(params, x)
    grid = np.linspace(-4, 4, 80001)
    ll = M.log_likelihood(params, x, grid)[0]
    assert est.theta[0] == pytest.approx(grid[np.argmax(ll)], abs=2e-4)  # grid step 1e-4
    local = optimize.minimize_scalar(lambda t: -M.log_likelihood(params, x, [t])[0, 0],
                                     bounds=(est.theta[0] - 0.2, est.theta[0] + 0.2),
                                     method="bounded", options={"xatol": 1e-10})
    assert est.theta[0] == pytest.approx(local.x, abs=1e-6)


# ---------------------------------------------------------------------- WLE


def warm_root_bruteforce(params, x, lo=-6.0, hi=6.0, h=1e-4):
    """Solve d log L/dθ + J/(2I) = 0 with numerical P', P'' and scipy brentq."""
    seen = ~np.isnan(x)

    def f(t):
        p0 = M.probabilities(params, [t])[0]
        pp = M.probabilities(params, [t + h])[0]
        pm = M.probabilities(params, [t - h])[0]
        d1 = (pp - pm) / (2 * h)
        d2 = (pp - 2 * p0 + pm) / h**2
        score = info = jay = 0.0
        for j in np.flatnonzero(seen):
            k = int(x[j])
            score += d1[j, k] / p0[j, k]
            for c in range(params.n_categories[j]):
                info += d1[j, c] ** 2 / p0[j, c]
                jay += d1[j, c] * d2[j, c] / p0[j, c]
        return score + jay / (2 * info)

    return optimize.brentq(f, lo, hi, xtol=1e-12)


def test_wle_matches_brentq_on_bruteforce_warm_equation(data):
    params, r = data
    est = E.wle(params, r)
    for i in [0, 1, 3, 4, 5, 6, 7]:
        ref = warm_root_bruteforce(params, r[i])
        # tol: numerical P'' (h=1e-4) perturbs the reference root by ~1e-7
        assert est.theta[i] == pytest.approx(ref, abs=1e-5)
    seen = ~np.isnan(r[4])
    info = M.item_information(params, [est.theta[4]])[0, seen].sum()
    assert est.se[4] == pytest.approx(1 / np.sqrt(info), rel=1e-12)
    assert np.isnan(est.theta[2]) and np.isnan(est.se[2])


def test_wle_finite_for_extreme_2pl_patterns_and_jeffreys_mode(long_2pl):
    r = np.vstack([np.ones(20), np.zeros(20), np.r_[np.ones(12), np.zeros(8)]])
    est = E.wle(long_2pl, r)
    assert np.all(np.abs(est.theta) < 6)  # finite, inside bounds, for all-correct/all-wrong
    assert est.theta[0] > 2 and est.theta[1] < -2
    # For 2PL items the WLE maximises L(θ) sqrt(I(θ)) (Warm 1989)
    for i in range(3):

        def neg(t, i=i):
            return -(M.log_likelihood(long_2pl, r[i], [t])[0, 0]
                     + 0.5 * np.log(M.test_information(long_2pl, [t])[0]))

        ref = optimize.minimize_scalar(neg, bounds=(-6, 6), method="bounded",
                                       options={"xatol": 1e-10})
        assert est.theta[i] == pytest.approx(ref.x, abs=1e-6)
    # WLE lies between MLE and 0-ish shrinkage: less extreme than the clamped MLE
    assert abs(est.theta[2]) < 4


# ------------------------------------------------------- general behaviour


@pytest.mark.parametrize("method", E.METHODS)
def test_blocks_and_per_person_calls_agree(method, long_2pl, monkeypatch):
    rng = np.random.default_rng(11)
    r = simulate(long_2pl, rng.normal(size=600), rng, missing=0.3)
    whole = E.estimate(long_2pl, r, method)
    monkeypatch.setattr(E, "_BLOCK_CELLS", 1)  # blocks of 256 persons
    blocked = E.estimate(long_2pl, r, method)
    np.testing.assert_allclose(blocked.theta, whole.theta, atol=1e-9, equal_nan=True)
    for i in [0, 257, 599]:
        one = E.estimate(long_2pl, r[i : i + 1], method)
        np.testing.assert_allclose(one.theta, whole.theta[i : i + 1], atol=1e-9, equal_nan=True)
        np.testing.assert_allclose(one.se, whole.se[i : i + 1], rtol=1e-7, equal_nan=True)


def test_estimates_recover_simulated_abilities(long_2pl):
    rng = np.random.default_rng(5)
    theta = rng.normal(size=2000)
    r = simulate(long_2pl, theta, rng)
    for method in E.METHODS:
        est = E.estimate(long_2pl, r, method)
        # tol: 20 items give a reliability around 0.85-0.9
        assert np.corrcoef(est.theta, theta)[0, 1] > 0.88, method
        assert np.all(np.isfinite(est.se)) and np.all(est.se > 0)
    # the average EAP posterior SD matches the spread of EAP errors (calibration of SEs)
    e = E.eap(long_2pl, r)
    assert np.sqrt(np.mean(e.se**2)) == pytest.approx(np.std(e.theta - theta), rel=0.1)


def test_estimate_dispatch_and_errors(data):
    params, r = data
    assert E.estimate(params, r, "EAP").method == "eap"
    with pytest.raises(ValueError, match="unknown method"):
        E.estimate(params, r, "bayes")
    with pytest.raises(ValueError, match="bounds"):
        E.mle(params, r, bounds=(2, -2))


def test_default_prior_is_the_latent_distribution_of_the_scale(mixed_bank):
    """EAP and MAP without a prior use params.latent_mean/latent_sd: equal to exact
    integration (scipy quad) / maximisation under N(0.3, 0.75^2) to 1e-6 for a mixed
    bank; explicit prior arguments still override (N(0, 1) gives other numbers)."""
    bank = mixed_bank.replace(latent_mean=0.3, latent_sd=0.75)
    r = np.array([[1, 0, 2, 1, 2, 0], [0, 0, 0, 0, 0, 0], [1, 1, 3, 3, 2, 1],
                  [np.nan] * 6])
    est = E.eap(bank, r)
    got_map = E.map_estimate(bank, r)

    def log_post(t, row):
        ll = M.log_likelihood(bank, row[None, :], np.array([t]))[0, 0]
        return ll - 0.5 * ((t - 0.3) / 0.75) ** 2

    for i, row in enumerate(r[:3]):
        def dens(t, row=row):
            return np.exp(log_post(t, row))
        z = integrate.quad(dens, -8, 8, epsabs=0, epsrel=1e-12, limit=200)[0]
        m = integrate.quad(lambda t: t * dens(t), -8, 8, epsabs=0, epsrel=1e-12,
                           limit=200)[0] / z
        assert est.theta[i] == pytest.approx(m, abs=1e-6)
        mode = optimize.minimize_scalar(lambda t, row=row: -log_post(t, row), bounds=(-6, 6),
                                        method="bounded", options={"xatol": 1e-10}).x
        assert got_map.theta[i] == pytest.approx(mode, abs=1e-6)
    # no responses: exactly the scale's prior
    assert (est.theta[3], est.se[3]) == (0.3, 0.75)
    assert (got_map.theta[3], got_map.se[3]) == (0.3, 0.75)
    explicit = E.eap(bank, r, prior_mean=0.0, prior_sd=1.0)
    np.testing.assert_allclose(explicit.theta, E.eap(mixed_bank, r).theta, atol=1e-14)
    assert np.max(np.abs(explicit.theta[:3] - est.theta[:3])) > 0.05
    via = E.estimate(bank, r, method="eap")
    np.testing.assert_array_equal(via.theta, est.theta)
