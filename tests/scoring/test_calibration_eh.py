"""Tests of calibrate(density="eh"): the empirical-histogram latent density.

Seeded simulations: a skewed population (standardised chi-square with 4 df, skewness
sqrt(8/4) = 1.41) whose histogram the fit must recover and whose items it must
estimate better than the normal-density fit does; a normal population where the
histogram and the normal fit agree; the bookkeeping (n_params, AIC, the result's
density, identification for rasch and for several groups) and the command line.
"""
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from scoring.calibration import calibrate
from scoring.models import probabilities
from scoring.params import ItemParams

K = 4   # chi-square df of the skewed population


def _bank(J, rng, model="2pl"):
    a = rng.uniform(0.8, 2.0, J) if model == "2pl" else np.ones(J)
    return ItemParams.from_arrays(item_ids=[f"i{j}" for j in range(J)], model=[model] * J,
                                  a=a, b=rng.normal(0, 1, (J, 1)), c=np.zeros(J))


def _simulate(params, theta, rng):
    P = probabilities(params, theta)
    return (rng.random((theta.size, params.n_items)) < P[:, :, 1]).astype(float)


def _moments(nodes, w):
    m = w @ nodes
    s = np.sqrt(w @ (nodes - m) ** 2)
    return m, s, w @ ((nodes - m) / s) ** 3


def _ks(nodes, w, cdf):
    """Largest distance between the histogram's CDF (mass of a node split at it) and
    a continuous CDF, over the grid."""
    return float(np.abs(np.cumsum(w) - w / 2 - cdf(nodes)).max())


@pytest.fixture(scope="module")
def skewed():
    rng = np.random.default_rng(1)
    true = _bank(30, rng)
    theta = (rng.chisquare(K, 5000) - K) / np.sqrt(2 * K)
    x = _simulate(true, theta, rng)
    return (true, x, calibrate(x, "2pl", compute_se=False),
            calibrate(x, "2pl", density="eh", compute_se=False))


def test_eh_recovers_a_skewed_density(skewed):
    _true, _x, normal, eh = skewed
    assert eh.converged and eh.density == "eh" and normal.density == "normal"
    nodes, w = eh.latent_nodes, eh.latent_weights[0]
    assert w.shape == nodes.shape == (41,) and w.sum() == pytest.approx(1.0)
    m, s, skew = _moments(nodes, w)
    # identification: mean 0, SD 1
    assert abs(m) < 1e-8 and s == pytest.approx(1.0, abs=1e-8)
    # skewness of the population 1.41 (this sample's 1.50): within 0.15
    assert abs(skew - np.sqrt(8 / K)) < 0.15
    true_cdf = lambda q: stats.chi2.cdf(q * np.sqrt(2 * K) + K, K)   # noqa: E731
    assert _ks(nodes, w, true_cdf) < 0.02
    # the normal fit's density is the normal one, far from the truth
    assert _ks(nodes, normal.latent_weights[0], true_cdf) > 0.08


def test_eh_estimates_items_better_than_the_normal_fit(skewed):
    true, _x, normal, eh = skewed

    def rmse(res):
        return (np.sqrt(np.mean((res.params.a - true.a) ** 2)),
                np.sqrt(np.mean((res.params.b[:, 0] - true.b[:, 0]) ** 2)))

    (a_n, b_n), (a_e, b_e) = rmse(normal), rmse(eh)
    # measured: a 0.181 -> 0.060, b 0.115 -> 0.041
    assert a_e < 0.5 * a_n and b_e < 0.5 * b_n
    assert a_e < 0.08 and b_e < 0.06
    # the histogram's extra parameters: Q - 3 (41 weights, sum 1, mean 0, SD 1)
    assert eh.n_params == normal.n_params + 41 - 3
    assert eh.loglik > normal.loglik + 100
    assert eh.aic == pytest.approx(-2 * eh.loglik + 2 * eh.n_params)
    assert eh.aic < normal.aic
    assert "empirical histogram" in eh.method_note


def test_eh_loglik_is_the_marginal_likelihood_under_the_returned_histogram(skewed):
    """Recomputed independently: log sum_q w_q prod_j P_j(x_ij | theta_q) per person."""
    from scoring.models import log_likelihood

    _true, x, _normal, eh = skewed
    L = log_likelihood(eh.params, x, eh.latent_nodes)              # (N, Q)
    top = L.max(axis=1, keepdims=True)
    ll = float(np.sum(top[:, 0] + np.log(np.exp(L - top) @ eh.latent_weights[0])))
    assert eh.loglik == pytest.approx(ll, abs=1e-6)
    # at the fixed point the histogram is (nearly) its own update: the posterior
    # mass per node moves no weight by more than 2e-4 (measured 3e-5 of a largest 0.2)
    post = np.exp(L - top) * eh.latent_weights[0]
    counts = (post / post.sum(axis=1, keepdims=True)).sum(axis=0)
    assert np.abs(counts / counts.sum() - eh.latent_weights[0]).max() < 2e-4


def test_eh_under_normal_data_is_the_normal_fit():
    rng = np.random.default_rng(4)
    true = _bank(30, rng)
    x = _simulate(true, rng.normal(size=5000), rng)
    normal = calibrate(x, "2pl", compute_se=False)
    eh = calibrate(x, "2pl", density="eh", compute_se=False)
    nodes, w = eh.latent_nodes, eh.latent_weights[0]
    assert abs(_moments(nodes, w)[2]) < 0.15
    assert _ks(nodes, w, stats.norm.cdf) < 0.02
    assert np.max(np.abs(eh.params.a - normal.params.a)) < 0.1
    assert np.max(np.abs(eh.params.b - normal.params.b)) < 0.1
    # more freedom, little gain: the likelihood rises by less than the added df
    assert 0 <= eh.loglik - normal.loglik < 41 - 3
    assert eh.aic > normal.aic
    # the normal fit exposes its discrete normal weights
    u = nodes
    ref = np.exp(-0.5 * u * u)
    np.testing.assert_allclose(normal.latent_weights[0], ref / ref.sum(), atol=1e-12)


def test_eh_rasch_keeps_the_sd_free():
    rng = np.random.default_rng(8)
    true = _bank(25, rng, model="rasch")
    theta = 0.7 * (rng.chisquare(K, 4000) - K) / np.sqrt(2 * K)
    x = _simulate(true, theta, rng)
    eh = calibrate(x, "rasch", density="eh")
    m, s, skew = _moments(eh.latent_nodes, eh.latent_weights[0])
    assert abs(m) < 1e-8
    assert eh.group_sds[0] == pytest.approx(s) and abs(s - 0.7) < 0.05
    # 25 Rasch items on a population of SD 0.7 inform the tails less: the histogram
    # comes out spikier (skewness 1.85, the sample's 1.52), its CDF still close
    assert skew > 1.0
    true_cdf = lambda q: stats.chi2.cdf(q / 0.7 * np.sqrt(2 * K) + K, K)   # noqa: E731
    assert _ks(eh.latent_nodes, eh.latent_weights[0], true_cdf) < 0.02
    # SEs of items computed, conditional on the histogram; group SEs not
    assert np.all(np.isfinite(eh.params.se_b[:, 0]))
    assert np.all(np.isnan(eh.group_sd_se))
    normal = calibrate(x, "rasch", compute_se=False)
    assert eh.n_params == normal.n_params + 41 - 3
    rmse_eh = np.sqrt(np.mean((eh.params.b[:, 0] - true.b[:, 0]) ** 2))
    rmse_normal = np.sqrt(np.mean((normal.params.b[:, 0] - true.b[:, 0]) ** 2))
    assert rmse_eh < 0.045 and rmse_eh < rmse_normal         # measured 0.039, 0.050


def test_eh_second_group_gets_its_own_histogram():
    rng = np.random.default_rng(12)
    true = _bank(25, rng)
    th = np.concatenate([rng.normal(size=3000),
                         0.5 + 0.8 * (rng.chisquare(K, 3000) - K) / np.sqrt(2 * K)])
    groups = np.repeat(["a", "b"], 3000)
    x = _simulate(true, th, rng)
    eh = calibrate(x, "2pl", groups=groups, density="eh", compute_se=False)
    assert eh.latent_weights.shape == (2, 41)
    m0, s0, k0 = _moments(eh.latent_nodes, eh.latent_weights[0])
    m1, s1, k1 = _moments(eh.latent_nodes, eh.latent_weights[1])
    assert abs(m0) < 1e-8 and s0 == pytest.approx(1.0, abs=1e-8) and abs(k0) < 0.25
    assert abs(m1 - 0.5) < 0.1 and abs(s1 - 0.8) < 0.1 and k1 > 0.8
    assert eh.group_means[1] == pytest.approx(m1) and eh.group_sds[1] == pytest.approx(s1)


def test_density_is_checked():
    x = np.array([[0, 1], [1, 0], [1, 1], [0, 0]] * 5, dtype=float)
    with pytest.raises(ValueError, match="density must be 'normal' or 'eh'"):
        calibrate(x, "2pl", density="davidian")


def test_cli_density_option(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from scoring.cli import calibrate as calibrate_command

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    x = _simulate(_bank(10, rng), rng.normal(size=500), rng)
    rows = ["person_id," + ",".join(f"i{j}" for j in range(10))]
    rows += [f"p{i}," + ",".join(str(int(v)) for v in row) for i, row in enumerate(x)]
    Path("r.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = CliRunner().invoke(calibrate_command, ["r.csv", "--model", "2pl", "--out", "p.csv",
                                                 "--density", "eh"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "M2 not computed" in out.stderr
    bad = CliRunner().invoke(calibrate_command, ["r.csv", "--model", "2pl", "--out", "p.csv",
                                                 "--density", "eh", "--engine", "girth"])
    assert bad.exit_code != 0 and "--density eh" in bad.output
