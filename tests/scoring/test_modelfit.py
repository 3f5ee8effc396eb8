"""Tests of scoring.modelfit (M2 / M2*, RMSEA, SRMSR, CFI, TLI).

References:
* brute force: every response pattern of a small test enumerated, the moments and their
  covariance Xi taken from the full multinomial, Delta by central differences of the
  expected moments in the reporting parameters (a, b, c, the latent SD), and
  M2 = N r' (Xi^-1 - Xi^-1 D (D' Xi^-1 D)^-1 D' Xi^-1) r written out literally;
* Python mirt 1.2's ``compute_fit_indices`` (same statistic, Gauss-Hermite quadrature);
* seeded Monte Carlo: the mean of M2 over refits of data from the model is near df,
  and misspecified models (two dimensions fitted as one, 2PL data fitted as Rasch) are
  rejected.
"""
import itertools
from pathlib import Path

import numpy as np
import pytest

from scoring import catalogue
from scoring.calibration import calibrate
from scoring.modelfit import cheap_enough, fit_line, m2
from scoring.models import probabilities
from scoring.params import ItemParams

LSAT7 = Path(__file__).resolve().parents[1] / "data" / "lsat7.csv"


def _simulate(params: ItemParams, theta: np.ndarray, rng) -> np.ndarray:
    P = probabilities(params, theta)                               # (N, J, K)
    u = rng.random((theta.size, params.n_items, 1))
    return (u > np.cumsum(P, axis=2)).sum(axis=2).astype(float)


def _bank(models, a, b, c=None) -> ItemParams:
    J = len(models)
    return ItemParams.from_arrays(item_ids=[f"i{j}" for j in range(J)], model=models,
                                  a=a, b=b, c=np.zeros(J) if c is None else c)


# ----------------------------------------------------------------------------------------
# brute force
# ----------------------------------------------------------------------------------------

def _grid_weights(mu, sd, n_quad=61):
    theta = np.linspace(-6, 6, n_quad)
    w = np.exp(-0.5 * ((theta - mu) / sd) ** 2)
    return theta, w / w.sum()


def _pattern_moments(params: ItemParams, patterns: np.ndarray, statistic: str = "M2*"
                     ) -> np.ndarray:
    """g(x) = (x_j or, for C2, [x_j == c] for c = 1..K_j-1; x_j x_k (j < k)) for every
    pattern."""
    J = params.n_items
    left, right = np.triu_indices(J, 1)
    if statistic == "C2":
        uni = [(patterns[:, [j]] == np.arange(1, params.n_categories[j])).astype(float)
               for j in range(J)]
    else:
        uni = [patterns]
    return np.concatenate(uni + [patterns[:, left] * patterns[:, right]], axis=1)


def _pattern_probs(params: ItemParams, patterns: np.ndarray, mu: float, sd: float
                   ) -> np.ndarray:
    theta, w = _grid_weights(mu, sd)
    P = probabilities(params, theta)                               # (Q, J, K)
    J = params.n_items
    lik = np.ones((patterns.shape[0], theta.size))
    for j in range(J):
        lik *= P[:, j, patterns[:, j].astype(int)].T
    return lik @ w


def _perturbed(params: ItemParams, field: str, items, col: int, h: float) -> ItemParams:
    a, b, c = params.a.copy(), params.b.copy(), params.c.copy()
    for j in items:
        if field == "a":
            a[j] += h
        elif field == "b":
            b[j, col] += h
        else:
            c[j] += h
    return params.replace(a=a, b=b, c=c)


def _brute_force_m2(params: ItemParams, responses: np.ndarray, mu: float, sd: float,
                    sd_free: bool, statistic: str = "M2*") -> tuple[float, int]:
    J = params.n_items
    ncat = params.n_categories.astype(int)
    patterns = np.array(list(itertools.product(*[range(k) for k in ncat])), dtype=float)
    G = _pattern_moments(params, patterns, statistic)               # (n_patterns, M)

    def expected(p: ItemParams, sd_: float) -> np.ndarray:
        return _pattern_probs(p, patterns, mu, sd_) @ G

    pi = _pattern_probs(params, patterns, mu, sd)
    assert abs(pi.sum() - 1) < 1e-12
    e = pi @ G
    xi = (G * pi[:, None]).T @ G - np.outer(e, e)
    # Delta by central differences in the reporting parameters, free per the catalogue
    cols = []
    h = 1e-5
    common = [j for j in range(J) if catalogue.get(params.model[j]).slope == "common"]
    if common:
        cols.append((expected(_perturbed(params, "a", common, 0, h), sd)
                     - expected(_perturbed(params, "a", common, 0, -h), sd)) / (2 * h))
    for j in range(J):
        entry = catalogue.get(params.model[j])
        fields = []
        if entry.slope == "free":
            fields.append(("a", 0))
        fields += [("b", k) for k in range(ncat[j] - 1)]
        if entry.guessing:
            fields.append(("c", 0))
        for field, col in fields:
            cols.append((expected(_perturbed(params, field, [j], col, h), sd)
                         - expected(_perturbed(params, field, [j], col, -h), sd)) / (2 * h))
    if sd_free:
        cols.append((expected(params, sd + h) - expected(params, sd - h)) / (2 * h))
    D = np.column_stack(cols)
    N = responses.shape[0]
    resid = _pattern_moments(params, responses, statistic).mean(axis=0) - e
    Xi_inv = np.linalg.inv(xi)
    C = Xi_inv - Xi_inv @ D @ np.linalg.inv(D.T @ Xi_inv @ D) @ D.T @ Xi_inv
    return float(N * resid @ C @ resid), e.size - D.shape[1]


BRUTE_CASES = {
    "mixed": (["2pl", "3pl", "grm", "gpcm", "pcm"],
              [1.3, 1.7, 1.1, 0.8, 1.0],
              [[0.3, np.nan], [-0.5, np.nan], [-1.0, 0.6], [0.5, -0.7], [0.2, 0.4]],
              [0, 0.2, 0, 0, 0], 0.1, 1.0, False),
    "rasch_sd": (["rasch"] * 5, [1.0] * 5, [[-1.0], [-0.4], [0.0], [0.5], [1.2]],
                 None, 0.0, 0.8, True),
    "1pl": (["1pl"] * 4, [1.4] * 4, [[-1.0], [-0.2], [0.4], [1.1]], None, 0.0, 1.0, False),
    # M2* has J (J + 1) / 2 moments: six 3-category GRM items leave 21 - 18 = 3 df
    "grm6": (["grm"] * 6, [0.9, 1.5, 1.2, 2.0, 0.7, 1.1],
             [[-1.5, -0.2], [-0.8, 0.1], [-1.2, 0.4], [-0.3, 0.5], [0.2, 1.8], [-2.0, 0.0]],
             None, 0.0, 1.0, False),
}


@pytest.mark.parametrize("case", sorted(BRUTE_CASES))
def test_m2_equals_brute_force(case):
    models, a, b, c, mu, sd, sd_free = BRUTE_CASES[case]
    params = _bank(models, a, b, c)
    rng = np.random.default_rng(7)
    # data from a slightly different population so that the residuals are not tiny
    x = _simulate(params, rng.normal(0.2, 1.1, 800), rng)
    fit = m2(params, x, prior_mean=mu, prior_sd=sd, latent_sd_estimated=sd_free)
    ref, df = _brute_force_m2(params, x, mu, sd, sd_free)
    assert fit.df == df
    assert fit.m2 == pytest.approx(ref, rel=1e-6)
    assert fit.statistic == ("M2" if case in ("rasch_sd", "1pl") else "M2*")


C2_CASES = {
    # four 4-category GRM items: M2* has 10 moments for 16 parameters, C2 12 + 6 = 18
    "grm4": (["grm"] * 4, [0.9, 1.5, 1.2, 2.0],
             [[-1.5, -0.2, 0.9], [-0.8, 0.1, 1.6], [-1.2, 0.4, 1.0], [-0.3, 0.5, 2.0]],
             None, 0.0, 1.0, False),
    "pcm_sd": (["pcm"] * 4, [1.0] * 4,
               [[-1.0, 0.3], [-0.2, 0.8], [0.4, -0.1], [0.0, 1.1]], None, 0.0, 1.3, True),
    "mixed": BRUTE_CASES["mixed"],
}


@pytest.mark.parametrize("case", sorted(C2_CASES))
def test_c2_equals_brute_force(case):
    models, a, b, c, mu, sd, sd_free = C2_CASES[case]
    params = _bank(models, a, b, c)
    rng = np.random.default_rng(17)
    x = _simulate(params, rng.normal(-0.1, 1.2, 900), rng)
    fit = m2(params, x, prior_mean=mu, prior_sd=sd, latent_sd_estimated=sd_free,
             statistic="C2")
    ref, df = _brute_force_m2(params, x, mu, sd, sd_free, statistic="C2")
    assert fit.statistic == "C2"
    assert fit.df == df > 0
    assert fit.m2 == pytest.approx(ref, rel=1e-6)
    # the null model's df: C2 moments less one free probability per extra category
    assert fit.df_null == fit.n_moments - int(np.sum(params.n_categories - 1))


def test_c2_when_m2_star_has_no_df():
    models, a, b, c, *_ = C2_CASES["grm4"]
    params = _bank(models, a, b, c)
    rng = np.random.default_rng(2)
    x = _simulate(params, rng.normal(size=500), rng)
    with pytest.raises(ValueError, match=r"no degrees of freedom.*statistic='C2'"):
        m2(params, x)
    assert m2(params, x, statistic="C2").df == 2
    assert fit_line(params, x).startswith("C2 = ")
    with pytest.raises(ValueError, match="dichotomous items only"):
        m2(params, x, statistic="M2")


def test_statistics_coincide_for_dichotomous_items():
    params = _bank(["2pl"] * 5, [1.0, 1.2, 0.8, 1.5, 2.0], [[-0.5], [0.0], [0.5], [1.0], [0]])
    rng = np.random.default_rng(6)
    x = _simulate(params, rng.normal(size=400), rng)
    fits = [m2(params, x, statistic=s) for s in ("M2", "M2*", "C2")]
    assert {f.statistic for f in fits} == {"M2"}
    assert fits[0].m2 == pytest.approx(fits[1].m2, rel=1e-12)
    assert fits[0].m2 == pytest.approx(fits[2].m2, rel=1e-12)


def test_rasch_and_1pl_give_the_same_fit():
    # a Rasch model with SD s is the 1PL with common slope s and SD 1: the same M2
    params = _bank(["rasch"] * 5, [1.0] * 5, [[-1.0], [-0.4], [0.0], [0.5], [1.2]])
    rng = np.random.default_rng(3)
    x = _simulate(params, rng.normal(0, 0.8, 600), rng)
    f_rasch = m2(params, x, prior_sd=0.8)
    one = params.replace(model=np.array(["1pl"] * 5), a=np.full(5, 0.8),
                         b=params.b / 0.8)
    f_1pl = m2(one, x)
    assert f_rasch.df == f_1pl.df == 9
    assert f_rasch.m2 == pytest.approx(f_1pl.m2, rel=1e-8)


# ----------------------------------------------------------------------------------------
# Python mirt
# ----------------------------------------------------------------------------------------

import mirt  # noqa: E402  (the reference implementation; a test dependency)


def _mirt_indices(model, x):
    out = mirt.compute_fit_indices(model, x.astype(int), n_quadpts=61)
    return out


def test_lsat7_2pl_matches_python_mirt():
    x = np.loadtxt(LSAT7, delimiter=",", skiprows=1)
    res = calibrate(x, "2pl", n_quad=61)
    ours = m2(res.params, x)
    pm = mirt.TwoParameterLogistic(n_items=5)
    pm.set_parameters(discrimination=res.params.a.copy(), difficulty=res.params.b[:, 0].copy())
    ref = _mirt_indices(pm, x)
    assert ours.df == ref["M2_df"] == 5
    assert ours.m2 == pytest.approx(ref["M2"], rel=1e-6)
    assert ours.p == pytest.approx(ref["M2_p"], rel=1e-5)
    assert ours.rmsea == pytest.approx(ref["RMSEA"], rel=1e-6)
    assert ours.rmsea_ci[0] == pytest.approx(ref["RMSEA_CI_lower"], rel=1e-5)
    assert ours.rmsea_ci[1] == pytest.approx(ref["RMSEA_CI_upper"], rel=1e-5)
    assert ours.srmsr == pytest.approx(ref["SRMSR"], rel=1e-6)
    assert ours.cfi == pytest.approx(ref["CFI"], rel=1e-6)
    assert ours.tli == pytest.approx(ref["TLI"], rel=1e-6)
    assert "M2 = 11.94 df = 5" in ours.line()


def test_grm_m2_star_matches_python_mirt():
    rng = np.random.default_rng(11)
    J = 7
    true = _bank(["grm"] * J, rng.uniform(0.8, 2.0, J),
                 np.sort(rng.normal(0, 1, (J, 2)), axis=1))
    x = _simulate(true, rng.normal(size=1500), rng)
    res = calibrate(x, "grm", n_quad=61)
    ours = m2(res.params, x)
    pm = mirt.GradedResponseModel(n_items=J, n_categories=[3] * J)
    pm.set_parameters(discrimination=res.params.a.copy(), thresholds=res.params.b.copy())
    ref = _mirt_indices(pm, x)
    assert ours.statistic == "M2*"
    assert ours.df == ref["M2_df"] == J * (J + 1) // 2 - 3 * J
    assert ours.m2 == pytest.approx(ref["M2"], rel=1e-5)
    assert ours.srmsr == pytest.approx(ref["SRMSR"], rel=1e-6)
    assert ours.tli == pytest.approx(ref["TLI"], rel=1e-5)


# ----------------------------------------------------------------------------------------
# calibration and power (seeded Monte Carlo)
# ----------------------------------------------------------------------------------------

def test_m2_is_calibrated_under_the_true_model():
    """40 seeded replications of 2PL data (8 items, N = 1000), each refitted: M2 has
    df = 36 - 16 = 20; the mean of 40 chi-square(20) draws has SD 1, so the mean of M2
    must lie within 3.5 of 20, and the share of p < 0.05 at most 6 / 40."""
    rng = np.random.default_rng(2024)
    J = 8
    true = _bank(["2pl"] * J, rng.uniform(0.7, 2.0, J), rng.normal(0, 1, (J, 1)))
    stats, pvals = [], []
    for _ in range(40):
        x = _simulate(true, rng.normal(size=1000), rng)
        res = calibrate(x, "2pl", n_quad=41, compute_se=False)
        fit = m2(res.params, x)
        assert fit.df == 20
        stats.append(fit.m2)
        pvals.append(fit.p)
    assert abs(np.mean(stats) - 20) < 3.5
    assert np.mean(np.array(pvals) < 0.05) <= 6 / 40


def test_m2_star_and_c2_are_calibrated_for_graded_items():
    """20 seeded replications of 3-category GRM data (8 items, N = 1000), refitted:
    M2* has df = 36 - 24 = 12 (mean of 20 draws: SD 1.1), C2 df = 16 + 28 - 24 = 20
    (SD 1.4); each mean must lie within 4 (M2*) or 5 (C2) of its df.  Measured over 30
    replications: 11.4 and 19.9."""
    rng = np.random.default_rng(31)
    J = 8
    true = _bank(["grm"] * J, rng.uniform(0.8, 2.0, J),
                 np.sort(rng.normal(0, 1, (J, 2)), axis=1))
    star, c2 = [], []
    for _ in range(20):
        x = _simulate(true, rng.normal(size=1000), rng)
        res = calibrate(x, "grm", n_quad=41, compute_se=False)
        f_star, f_c2 = m2(res.params, x), m2(res.params, x, statistic="C2")
        assert (f_star.df, f_c2.df) == (12, 20)
        star.append(f_star.m2)
        c2.append(f_c2.m2)
    assert abs(np.mean(star) - 12) < 4
    assert abs(np.mean(c2) - 20) < 5


def test_m2_rejects_two_dimensions_fitted_as_one():
    rng = np.random.default_rng(5)
    J, N = 10, 2000
    cov = np.array([[1.0, 0.2], [0.2, 1.0]])
    th = rng.multivariate_normal([0, 0], cov, size=N)
    a = rng.uniform(1.2, 2.0, J)
    b = rng.normal(0, 0.8, J)
    dim = np.arange(J) % 2
    z = a * (th[:, dim] - b)
    x = (rng.random((N, J)) < 1 / (1 + np.exp(-z))).astype(float)
    res = calibrate(x, "2pl", n_quad=41, compute_se=False)
    fit = m2(res.params, x)
    assert fit.p < 1e-6
    assert fit.rmsea > 0.05


def test_m2_rejects_rasch_for_2pl_data():
    rng = np.random.default_rng(9)
    J = 10
    true = _bank(["2pl"] * J, np.tile([0.5, 2.5], J // 2), rng.normal(0, 1, (J, 1)))
    x = _simulate(true, rng.normal(size=2000), rng)
    res_r = calibrate(x, "rasch", n_quad=41, compute_se=False)
    res_2 = calibrate(x, "2pl", n_quad=41, compute_se=False)
    bad = m2(res_r.params, x, prior_sd=res_r.group_sds[0])
    good = m2(res_2.params, x)
    assert bad.df == 55 - 11 and good.df == 55 - 20
    assert bad.p < 1e-6
    assert good.p > 1e-3
    assert bad.cfi < good.cfi


# ----------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------

def test_missing_data_error_or_complete_cases():
    params = _bank(["2pl"] * 4, [1.0, 1.2, 0.8, 1.5], [[-0.5], [0.0], [0.5], [1.0]])
    rng = np.random.default_rng(1)
    x = _simulate(params, rng.normal(size=300), rng)
    holes = x.copy()
    holes[[3, 10, 11], [0, 2, 1]] = np.nan
    with pytest.raises(ValueError, match="3 of 300 persons have missing"):
        m2(params, holes)
    dropped = m2(params, holes, missing="complete")
    kept = np.delete(x, [3, 10, 11], axis=0)
    assert dropped.n_dropped == 3 and dropped.n_persons == 297
    assert dropped.m2 == pytest.approx(m2(params, kept).m2, rel=1e-12)
    assert not cheap_enough(holes) and cheap_enough(x)
    assert not cheap_enough(np.zeros((10, 61)))


def test_bad_responses_name_the_item():
    params = _bank(["2pl"] * 3, [1.0, 1.2, 0.8], [[-0.5], [0.0], [0.5]])
    x = np.array([[0, 1, 0], [1, 2, 0], [1, 1, 1]], dtype=float)
    with pytest.raises(ValueError, match="item i1: response 2"):
        m2(params, x)
    with pytest.raises(ValueError, match="no degrees of freedom"):
        m2(params.subset([0, 1]), np.array([[0, 1], [1, 0], [1, 1.0]]))


# ----------------------------------------------------------------------------------------
# the command line
# ----------------------------------------------------------------------------------------

def test_calibrate_prints_the_m2_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from scoring.cli import calibrate as calibrate_command

    monkeypatch.chdir(tmp_path)
    x = np.loadtxt(LSAT7, delimiter=",", skiprows=1)
    rows = ["person_id," + ",".join(f"Q{j + 1}" for j in range(5))]
    rows += [f"p{i}," + ",".join(str(int(v)) for v in row) for i, row in enumerate(x)]
    Path("lsat7.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = CliRunner().invoke(calibrate_command, ["lsat7.csv", "--model", "2pl", "--out",
                                                 "p.csv"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    line = [s for s in out.stderr.splitlines() if s.startswith("M2 = ")]
    assert len(line) == 1
    # the CLI's default grid is 41 points; the statistic barely moves
    assert "df = 5" in line[0] and "RMSEA = 0.03" in line[0] and "CFI = 0.96" in line[0]
    quiet = CliRunner().invoke(calibrate_command, ["lsat7.csv", "--model", "2pl", "--out",
                                                   "p.csv", "--quiet"], catch_exceptions=False)
    assert "M2" not in quiet.stderr


def test_unused_category_leaves_the_null_model_defined():
    """An item whose top category nobody chose: its C2 margin has no variance under the
    null model (observed proportion 0) and is left out of the null test."""
    models, a, b, c, *_ = C2_CASES["grm4"]
    params = _bank(models, a, b, c)
    rng = np.random.default_rng(21)
    x = _simulate(params, rng.normal(size=600), rng)
    x[x[:, 0] == 3, 0] = 2
    fit = m2(params, x, statistic="C2")
    assert np.isfinite(fit.m2) and np.isfinite(fit.m2_null)
    assert fit.df_null == fit.n_moments - 1 - int(np.sum(params.n_categories - 1))


def test_noncentral_chi_square_tail_matches_scipy():
    from scipy import stats

    from scoring.modelfit import ncx2_sf

    for df in (1, 2, 5, 20, 137, 1710):
        for x in (0.5, 0.8 * df, df, 1.3 * df + 5, 2 * df + 30):
            for nc in (0.0, 0.3, 5.0, 0.5 * df, 2.0 * df):
                ref = stats.ncx2.sf(x, df, nc) if nc > 0 else stats.chi2.sf(x, df)
                assert ncx2_sf(x, df, nc) == pytest.approx(ref, abs=1e-10)


def test_whitening_paths_agree(monkeypatch):
    """numpy's solve on the Cholesky factor (short tests) and scipy's triangular solve
    (from _SCIPY_SOLVE_FROM moments) give the same statistic."""
    import scoring.modelfit as mf

    models, a, b, c, mu, *_ = BRUTE_CASES["mixed"]
    params = _bank(models, a, b, c)
    rng = np.random.default_rng(8)
    x = _simulate(params, rng.normal(size=500), rng)
    small = m2(params, x, prior_mean=mu)
    monkeypatch.setattr(mf, "_SCIPY_SOLVE_FROM", 0)
    large = m2(params, x, prior_mean=mu)
    assert small.m2 == pytest.approx(large.m2, rel=1e-10)
    assert small.m2_null == pytest.approx(large.m2_null, rel=1e-10)


def test_cli_fit_line_needs_no_scipy_stats():
    """The M2 line of a short test imports neither scipy.stats, scipy.special,
    scipy.optimize nor scipy.linalg (start-up of learningcity calibrate)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from scoring.params import ItemParams\n"
            "from scoring.modelfit import fit_line\n"
            "p = ItemParams.from_arrays(item_ids=['a', 'b', 'c', 'd'], model=['2pl'] * 4,"
            " a=[1, 1.2, .8, 1.5], b=[[-.5], [0], [.5], [1]], c=[0] * 4)\n"
            "x = (np.random.default_rng(1).random((200, 4)) < .5).astype(float)\n"
            "assert fit_line(p, x).startswith('M2 = ')\n"
            "print(sorted(m for m in sys.modules if m in ('scipy.stats', 'scipy.special',"
            " 'scipy.optimize', 'scipy.linalg')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
