"""Tests for scoring.plausible: PVs, group-conditioned priors, reliability, curves."""

import numpy as np
import pytest
from scipy import stats

from scoring import estimation as E
from scoring import models as M
from scoring import plausible as PV
from scoring.params import ItemParams


def simulate(params, theta, rng):
    p1 = M.probabilities(params, theta)[:, :, 1]
    return (rng.random(p1.shape) < p1).astype(float)


@pytest.fixture(scope="module")
def bank():
    rng = np.random.default_rng(21)
    n = 20
    return ItemParams.from_arrays(
        [f"i{j}" for j in range(n)], "2pl", rng.uniform(0.7, 2.0, n), rng.normal(0, 1, n)
    )


def test_pv_mean_and_variance_match_posterior(bank):
    rng = np.random.default_rng(1)
    r = simulate(bank, rng.normal(size=200), rng)
    r[rng.random(r.shape) < 0.3] = np.nan
    r[0] = np.nan  # no responses: PVs are prior draws
    n_draws = 400
    pv = PV.plausible_values(bank, r, n_draws=n_draws, rng=123)
    assert pv.shape == (200, n_draws)
    eap = E.eap(bank, r)
    h = 12 / 60  # default grid spacing
    # mean: per-person SE of a PV mean is psd/sqrt(400) <= 0.05; allow 4.5 SE
    assert np.all(np.abs(pv.mean(axis=1) - eap.theta) < 4.5 * eap.se / np.sqrt(n_draws))
    # variance: posterior variance + h²/12 (the jitter); averaged over 200 persons the
    # ratio has sampling SD ~ sqrt(2/400)/sqrt(200) = 0.005, allow 0.02
    ratio = pv.var(axis=1, ddof=1) / (eap.se**2 + h**2 / 12)
    assert np.mean(ratio) == pytest.approx(1.0, abs=0.02)
    assert abs(pv[0].mean()) < 4.5 / np.sqrt(n_draws) and pv[0].std() == pytest.approx(1, abs=0.1)


def test_pv_draws_follow_discretised_posterior_exactly(bank):
    # KS test of 20,000 draws for one person against the histogram CDF of its
    # discretised posterior (node mass spread uniformly over [node - h/2, node + h/2]).
    x = np.array([[1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1]], dtype=float)
    pv = PV.plausible_values(bank, np.repeat(x, 20000, axis=0), n_draws=1, rng=5)[:, 0]
    nodes, w = E.posterior_grid(bank, x)
    h = nodes[1] - nodes[0]
    edges = np.r_[nodes - h / 2, nodes[-1] + h / 2]
    cdf_at_edges = np.r_[0.0, np.cumsum(w[0])]

    def cdf(t):
        return np.interp(t, edges, cdf_at_edges)

    # different persons share the pattern, so these are 20,000 independent draws
    assert stats.kstest(pv, cdf).pvalue > 0.01  # fixed seed; fails if the sampler is off


def test_group_means_given_shift_draws(bank):
    rng = np.random.default_rng(2)
    r = simulate(bank, rng.normal(size=400), rng)
    r[:, 5:] = np.nan  # few items so the prior matters
    groups = np.repeat(["north", "south"], 200)
    same = np.concatenate([r[:200], r[:200]])  # identical responses in both groups
    pv = PV.plausible_values(bank, same, n_draws=20, groups=groups,
                             group_means={"north": -1.0, "south": 1.0}, rng=3)
    shift = pv[200:].mean() - pv[:200].mean()
    # same data, prior means 2 apart: posterior means move by 2 * (1 - shrinkage) > 0.5
    assert shift > 0.5
    empty = np.full((100, bank.n_items), np.nan)
    pv0 = PV.plausible_values(bank, empty, n_draws=50, groups=np.repeat(["a", "b"], 50),
                              group_means={"a": -2.0, "b": 3.0}, group_sds={"a": 0.5, "b": 1},
                              rng=4)
    # no responses: draws from the group priors; SE of the means 0.5/50, 1/50
    assert pv0[:50].mean() == pytest.approx(-2.0, abs=0.05)
    assert pv0[50:].mean() == pytest.approx(3.0, abs=0.1)
    assert pv0[:50].std() == pytest.approx(0.5, rel=0.1)
    with pytest.raises(ValueError, match="groups without a prior"):
        PV.plausible_values(bank, empty, groups=np.repeat(["a", "c"], 50),
                            group_means={"a": 0.0, "b": 1.0})


def test_estimated_group_prior_recovers_group_means_and_unshrinks_pvs(bank):
    rng = np.random.default_rng(8)
    true_means = {"g1": -0.6, "g2": 0.2, "g3": 0.9}
    groups = np.repeat(list(true_means), 1000)
    theta = np.array([true_means[g] for g in groups]) + rng.normal(0, 0.8, groups.size)
    r = simulate(bank, theta, rng)
    r[:, 8:] = np.nan  # 8 items: strong shrinkage of EAPs
    prior = PV.fit_group_prior(bank, r, groups)
    assert prior.converged and list(prior.labels) == ["g1", "g2", "g3"]
    # tol: SE of a group mean ~ 0.8/sqrt(1000) plus item-level noise; allow 0.1
    np.testing.assert_allclose(prior.means, list(true_means.values()), atol=0.1)
    assert prior.sds[0] == pytest.approx(0.8, abs=0.08)
    pv = PV.plausible_values(bank, r, n_draws=5, groups=groups, rng=9)
    eap = E.eap(bank, r)  # common N(0, 1) prior
    for g, mean in true_means.items():
        sel = groups == g
        assert pv[sel].mean() == pytest.approx(mean, abs=0.1)
        assert pv[sel].std() == pytest.approx(0.8, abs=0.08)  # true within-group SD
    # the g1-g3 gap (1.5) is recovered by PVs but shrunk by EAPs under a common prior
    gap_pv = pv[groups == "g3"].mean() - pv[groups == "g1"].mean()
    gap_eap = eap.theta[groups == "g3"].mean() - eap.theta[groups == "g1"].mean()
    assert gap_pv == pytest.approx(1.5, abs=0.12)
    assert gap_eap < 1.5 - 0.2
    # group-specific SDs option
    sep = PV.fit_group_prior(bank, r, groups, common_sd=False)
    np.testing.assert_allclose(sep.sds, 0.8, atol=0.12)


def test_marginal_reliability_three_ways(bank):
    rng = np.random.default_rng(10)
    theta = rng.normal(size=3000)
    r = simulate(bank, theta, rng)
    eap = E.eap(bank, r)
    rho_true = np.corrcoef(eap.theta, theta)[0, 1] ** 2  # squared correlation with truth
    rel_post = PV.marginal_reliability(bank, r)
    assert rel_post == pytest.approx(1 - np.mean(eap.se**2), rel=1e-12)
    rel_eap = PV.marginal_reliability(bank, estimates=eap)
    rel_wle = PV.marginal_reliability(bank, estimates=E.wle(bank, r))
    rel_model = PV.marginal_reliability(bank)
    # tol: all estimate the same quantity; sampling SD of rho_true ~ 0.005 plus the
    # approximations of each formula (E[1/I] for the model-based one)
    for rel in (rel_post, rel_eap, rel_wle, rel_model):
        assert rel == pytest.approx(rho_true, abs=0.05)
    with pytest.raises(ValueError, match="either"):
        PV.marginal_reliability(bank, r, estimates=eap)


def test_reliability_increases_with_test_length(bank):
    assert PV.marginal_reliability(bank.subset(slice(0, 5))) < PV.marginal_reliability(bank)


def test_information_curve(bank):
    curve = PV.test_information_curve(bank)
    assert curve.theta.shape == (81,) and curve.item_information.shape == (81, 20)
    np.testing.assert_allclose(curve.information, M.test_information(bank, curve.theta))
    np.testing.assert_allclose(curve.se, 1 / np.sqrt(curve.information))
    one = ItemParams.from_arrays(["x"], "2pl", [2.0], [0.7])
    c1 = PV.test_information_curve(one, theta=np.linspace(-3, 3, 601))
    assert c1.theta[np.argmax(c1.information)] == pytest.approx(0.7, abs=1e-9)  # peak at b
    assert c1.information.max() == pytest.approx(1.0)  # a²/4


def test_plausible_values_and_reliability_default_to_the_scale_prior(mixed_bank):
    """Without a prior, plausible values are drawn under params.latent_mean/latent_sd
    (the same draws as with that prior given), and marginal reliability uses its
    variance; explicit arguments override."""
    bank = mixed_bank.replace(latent_mean=-0.2, latent_sd=0.7)
    r = np.array([[1, 0, 2, 1, 2, 0], [0, 0, 0, 0, 0, 0], [1, 1, 3, 3, 2, 1]], dtype=float)
    got = PV.plausible_values(bank, r, n_draws=6, rng=4)
    np.testing.assert_array_equal(
        got, PV.plausible_values(bank, r, n_draws=6, rng=4, prior_mean=-0.2, prior_sd=0.7))
    assert np.max(np.abs(got - PV.plausible_values(bank, r, n_draws=6, rng=4,
                                                   prior_mean=0.0, prior_sd=1.0))) > 0.01
    assert PV.marginal_reliability(bank) == pytest.approx(
        PV.marginal_reliability(mixed_bank, prior_mean=-0.2, prior_sd=0.7), abs=1e-14)
    assert PV.marginal_reliability(bank, r) == pytest.approx(
        PV.marginal_reliability(mixed_bank, r, prior_mean=-0.2, prior_sd=0.7), abs=1e-14)
