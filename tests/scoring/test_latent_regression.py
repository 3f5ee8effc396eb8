"""Tests for scoring.plausible's latent regression (the conditioning model of plausible
values): recovery of β and σ, the group gap that an unconditioned prior shrinks, survey
weights, the marginal-likelihood maximum found by brute force, aliased columns, checks."""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import logsumexp

from scoring import estimation as E
from scoring import models as M
from scoring import plausible as PV
from scoring.params import ItemParams


def simulate(params, theta, rng):
    p1 = M.probabilities(params, theta)[:, :, 1]
    return (rng.random(p1.shape) < p1).astype(float)


def twelve_items(seed: int = 3) -> ItemParams:
    """A 12-item 2PL test, the length of the monitoring instrument (reliability ~0.75)."""
    rng = np.random.default_rng(seed)
    return ItemParams.from_arrays([f"i{j}" for j in range(12)], "2pl",
                                  rng.uniform(0.8, 2.0, 12), rng.normal(0, 1, 12))


def covariates(rng, n):
    """A continuous covariate, a binary one and a three-level factor (two dummies)."""
    level = rng.integers(0, 3, n)
    return pd.DataFrame({"age": rng.normal(size=n), "female": (rng.random(n) < 0.5) * 1.0,
                         "edu=2": (level == 1) * 1.0, "edu=3": (level == 2) * 1.0})


def score_se(params, responses, fit, X):
    """Standard errors of (β, σ) from the outer product of each person's score
    (the cross-product estimate of the information of the marginal likelihood):
    d log L_i / dβ = x_i (m_i - μ_i) / σ², d / dσ = (v_i + (m_i - μ_i)² - σ²) / σ³,
    with m_i, v_i the posterior mean and variance under the fitted prior."""
    mu, sd = fit.person_prior(X)
    nodes, w = E.posterior_grid(params, responses, mu, sd)
    m = w @ nodes
    v = np.einsum("pq,pq->p", w, (nodes[None, :] - m[:, None]) ** 2)
    x = np.column_stack([np.ones(len(X)), np.asarray(X, dtype=float)])
    res, s2 = m - mu, fit.sigma**2
    scores = np.column_stack([x * (res / s2)[:, None], (v + res**2 - s2) / fit.sigma**3])
    return np.sqrt(np.diag(np.linalg.inv(scores.T @ scores)))


def test_em_recovers_beta_and_sigma() -> None:
    bank, rng = twelve_items(), np.random.default_rng(11)
    n, beta, sigma = 3000, np.array([0.1, 0.4, -0.3, 0.5, 0.9]), 0.8
    X = covariates(rng, n)
    theta = beta[0] + X.to_numpy() @ beta[1:] + rng.normal(0, sigma, n)
    r = simulate(bank, theta, rng)
    fit = PV.fit_latent_regression(bank, r, X)
    assert fit.converged and fit.dropped == ()
    assert fit.columns == ("(Intercept)", "age", "female", "edu=2", "edu=3")
    se = score_se(bank, r, fit, X)
    # se (0.035 0.018 0.036 0.044 0.043 | σ 0.017) agrees with the SD of the estimates
    # over 40 replications (0.030 0.021 0.043 0.042 0.039 | 0.018); allow 4 SE
    assert np.all(np.abs(np.r_[fit.beta, fit.sigma] - np.r_[beta, sigma]) < 4 * se)
    # the regression is on θ, not on shrunken EAPs: the EAPs under N(0, 1) regressed on
    # X give slopes about a quarter too small (the test can tell the two apart)
    eap = E.eap(bank, r).theta
    x1 = np.column_stack([np.ones(n), X.to_numpy()])
    naive = np.linalg.lstsq(x1, eap, rcond=None)[0]
    assert naive[4] < beta[4] - 4 * se[4] < fit.beta[4]


def test_conditioning_removes_the_shrinkage_of_a_group_gap() -> None:
    """The Monte Carlo check of issue 14: 12 items, two groups 1.2 within-group SDs apart.
    Over 20 samples of 2000 the gap of the PV group means (10 PVs) is unbiased within 5 %
    under the conditioning model and > 15 % too small under one N(0, 1) prior."""
    bank, rng = twelve_items(), np.random.default_rng(14)
    reps, n, gap = 20, 2000, 1.2
    group = np.repeat([0.0, 1.0], n // 2)
    conditioned, unconditioned, sds, above = [], [], [], []
    for rep in range(reps):
        theta = (group - 0.5) * gap + rng.normal(size=n)
        r = simulate(bank, theta, rng)
        pv = PV.plausible_values(bank, r, n_draws=10, covariates=group, rng=rep)
        pv0 = PV.plausible_values(bank, r, n_draws=10, rng=rep)
        one, zero = group == 1, group == 0
        conditioned.append(pv[one].mean() - pv[zero].mean())
        unconditioned.append(pv0[one].mean() - pv0[zero].mean())
        sds.append(np.mean([pv[zero, m].std() for m in range(10)]))
        above.append(np.mean(pv[one] > 1.0))
    # MC SE of the mean gap over 20 samples: 0.043 / sqrt(20) = 0.01; 5 % of 1.2 = 0.06
    assert np.mean(conditioned) == pytest.approx(gap, rel=0.05)
    assert np.mean(unconditioned) < 0.85 * gap  # measured 0.907 (24 % too small)
    # within-group SD 1 (+ the grid jitter h²/12), share above 1 in group one
    # P(N(0.6, 1) > 1) = 0.345: MC SE ~0.003 and ~0.003; allow 0.03 and 0.02
    assert np.mean(sds) == pytest.approx(1.0, abs=0.03)
    assert np.mean(above) == pytest.approx(0.3446, abs=0.02)


def test_weights_equal_replicated_rows() -> None:
    bank, rng = twelve_items(), np.random.default_rng(5)
    n = 600
    X = covariates(rng, n)
    r = simulate(bank, 0.5 * X["age"].to_numpy() + rng.normal(0, 0.9, n), rng)
    r[rng.random(r.shape) < 0.2] = np.nan
    w = rng.integers(1, 4, n)
    rows = np.repeat(np.arange(n), w)
    weighted = PV.fit_latent_regression(bank, r, X, weights=w, tol=1e-10)
    replicated = PV.fit_latent_regression(bank, r[rows], X.iloc[rows], tol=1e-10)
    np.testing.assert_allclose(weighted.beta, replicated.beta, atol=1e-6)
    assert weighted.sigma == pytest.approx(replicated.sigma, abs=1e-6)
    assert weighted.loglik == pytest.approx(replicated.loglik, rel=1e-9)
    # only relative weights matter; a zero weight is the same as leaving the row out
    scaled = PV.fit_latent_regression(bank, r, X, weights=w * 7.3, tol=1e-10)
    np.testing.assert_allclose(scaled.beta, weighted.beta, atol=1e-8)
    w0 = w.astype(float)
    w0[:50] = 0
    zero = PV.fit_latent_regression(bank, r, X, weights=w0, tol=1e-10)
    left_out = PV.fit_latent_regression(bank, r[50:], X.iloc[50:], weights=w[50:], tol=1e-10)
    np.testing.assert_allclose(zero.beta, left_out.beta, atol=1e-6)
    # and the weights change the estimate (unweighted differs)
    plain = PV.fit_latent_regression(bank, r, X, tol=1e-10)
    assert np.max(np.abs(plain.beta - weighted.beta)) > 1e-3


def test_em_finds_the_maximum_of_the_weighted_marginal_likelihood() -> None:
    """Brute force: maximise Σ w_i log Σ_q L_i(θ_q) φ((θ_q - x_i'β)/σ) h/σ, the same
    quadrature marginal likelihood, over (β, log σ) with BFGS."""
    rng = np.random.default_rng(7)
    bank = ItemParams.from_arrays([f"i{j}" for j in range(6)], "2pl",
                                  rng.uniform(0.8, 2.0, 6), rng.normal(0, 1, 6))
    n = 300
    x = np.column_stack([rng.normal(size=n), (rng.random(n) < 0.4) * 1.0])
    r = simulate(bank, 0.3 + 0.6 * x[:, 0] - 0.5 * x[:, 1] + rng.normal(0, 0.7, n), rng)
    w = rng.uniform(0.5, 3.0, n)
    nodes = np.linspace(-6, 6, 61)
    h = nodes[1] - nodes[0]
    log_lik = M.log_likelihood(bank, r, nodes)
    x1 = np.column_stack([np.ones(n), x])

    def negative_loglik(p):
        mu, s = x1 @ p[:3], np.exp(p[3])
        z = (nodes[None, :] - mu[:, None]) / s
        ll = logsumexp(log_lik - 0.5 * z * z, axis=1) + np.log(h / s) - 0.5 * np.log(2 * np.pi)
        return -(w @ ll)

    best = optimize.minimize(negative_loglik, np.zeros(4), method="BFGS",
                             options={"gtol": 1e-9})
    fit = PV.fit_latent_regression(bank, r, x, weights=w, tol=1e-10, max_iter=5000)
    assert fit.converged
    np.testing.assert_allclose(fit.beta, best.x[:3], atol=1e-4)
    assert fit.sigma == pytest.approx(np.exp(best.x[3]), abs=1e-4)
    assert fit.loglik == pytest.approx(-best.fun, abs=1e-6)
    assert fit.loglik >= -best.fun - 1e-8  # EM's fixed point is the maximum


def test_group_prior_is_the_regression_on_group_dummies() -> None:
    bank, rng = twelve_items(), np.random.default_rng(9)
    groups = np.repeat(["a", "b", "c"], 400)
    theta = np.select([groups == "b", groups == "c"], [0.5, -0.7], 0.0) + rng.normal(0, 0.8,
                                                                                   1200)
    r = simulate(bank, theta, rng)
    w = rng.uniform(0.5, 2.0, 1200)
    prior = PV.fit_group_prior(bank, r, groups, tol=1e-10, weights=w)
    # treatment coding with an intercept: another parameterisation, the same maximum
    X = pd.DataFrame({"b": (groups == "b") * 1.0, "c": (groups == "c") * 1.0})
    fit = PV.fit_latent_regression(bank, r, X, weights=w, tol=1e-10)
    np.testing.assert_allclose(prior.means, fit.beta[0] + np.r_[0.0, fit.beta[1:]],
                               atol=1e-7)
    np.testing.assert_allclose(prior.sds, fit.sigma, atol=1e-7)
    mu, _sd = fit.person_prior(X)
    np.testing.assert_allclose(mu, prior.person_prior(groups)[0], atol=1e-7)


def test_aliased_columns_are_dropped_and_reported() -> None:
    bank, rng = twelve_items(), np.random.default_rng(4)
    n = 500
    a = (rng.random(n) < 0.5) * 1.0
    d = rng.normal(size=n)
    r = simulate(bank, 0.8 * a + 0.3 * d + rng.normal(size=n), rng)
    X = pd.DataFrame({"a": a, "not_a": 1 - a, "d": d, "two_a": 2 * a, "empty": np.zeros(n),
                      "d_plus_a": d + a})
    fit = PV.fit_latent_regression(bank, r, X)
    assert fit.dropped == ("not_a", "two_a", "empty", "d_plus_a")
    assert np.isnan(fit.beta[[2, 4, 5, 6]]).all()
    clean = PV.fit_latent_regression(bank, r, X[["a", "d"]])
    np.testing.assert_allclose(fit.beta[[0, 1, 3]], clean.beta, atol=1e-12)
    np.testing.assert_allclose(fit.person_prior(X)[0], clean.person_prior(X)[0], atol=1e-12)
    # an array's columns are x1 .. xp; rank is judged on the persons with a weight
    w = np.where(a == 1, 1.0, 0.0)
    only_a = PV.fit_latent_regression(bank, r, np.column_stack([a, d]), weights=w)
    assert only_a.dropped == ("x1",) and only_a.columns == ("(Intercept)", "x1", "x2")


def test_bad_input_names_the_column() -> None:
    bank, rng = twelve_items(), np.random.default_rng(1)
    r = simulate(bank, rng.normal(size=50), rng)
    X = pd.DataFrame({"age": rng.normal(size=50), "sex": ["f", "m"] * 25})
    with pytest.raises(ValueError, match="'sex' is not numeric"):
        PV.fit_latent_regression(bank, r, X)
    X["sex"] = np.where(X["sex"] == "f", 1.0, np.nan)
    with pytest.raises(ValueError, match="'sex' has 25 missing"):
        PV.fit_latent_regression(bank, r, X)
    with pytest.raises(ValueError, match="50 rows"):
        PV.fit_latent_regression(bank, r, np.ones((49, 1)))
    with pytest.raises(ValueError, match="'x2' has 1 missing"):
        PV.fit_latent_regression(bank, r, np.column_stack([np.ones(50), np.r_[np.inf,
                                                                              np.ones(49)]]))
    with pytest.raises(ValueError, match="reserved"):
        PV.fit_latent_regression(bank, r, pd.DataFrame({"(Intercept)": np.ones(50)}))
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        PV.fit_latent_regression(bank, r, X[["age"]], weights=np.r_[-1.0, np.ones(49)])
    with pytest.raises(ValueError, match="weights must have shape"):
        PV.fit_latent_regression(bank, r, X[["age"]], weights=np.ones(3))
    with pytest.raises(ValueError, match="weights sum to 0"):
        PV.fit_latent_regression(bank, r, X[["age"]], weights=np.zeros(50))
    fit = PV.fit_latent_regression(bank, r, X[["age"]])
    with pytest.raises(ValueError, match="'age' of the fit is missing"):
        fit.person_prior(pd.DataFrame({"height": np.ones(3)}))
    with pytest.raises(ValueError, match="groups or covariates"):
        PV.plausible_values(bank, r, groups=np.zeros(50), covariates=X[["age"]])
    with pytest.raises(ValueError, match="weights are used to fit the prior"):
        PV.plausible_values(bank, r, weights=np.ones(50))
    with pytest.raises(ValueError, match="zero total weight"):
        PV.fit_group_prior(bank, r, np.repeat(["a", "b"], 25), weights=np.r_[np.ones(25),
                                                                            np.zeros(25)])


def test_plausible_values_under_the_fitted_prior() -> None:
    """The covariates path draws from the posterior under the fitted N(x'β, σ²)."""
    bank, rng = twelve_items(), np.random.default_rng(2)
    n = 800
    X = covariates(rng, n)
    r = simulate(bank, X.to_numpy() @ [0.5, -0.4, 0.3, 0.6] + rng.normal(0, 0.8, n), rng)
    w = rng.uniform(0.5, 2.0, n)
    pv = PV.plausible_values(bank, r, n_draws=200, covariates=X, weights=w, rng=3)
    mu, sd = PV.fit_latent_regression(bank, r, X, weights=w).person_prior(X)
    eap = E.eap(bank, r, prior_mean=mu, prior_sd=sd)
    # per-person SE of a 200-draw mean is psd / sqrt(200); allow 4.5 SE
    assert np.all(np.abs(pv.mean(axis=1) - eap.theta) < 4.5 * eap.se / np.sqrt(200))
