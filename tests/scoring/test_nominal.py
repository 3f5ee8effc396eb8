"""Tests of scoring.nominal: Bock's nominal response model and distractor analysis.

References: simulation from known parameters (recovery and SE calibration, seeds and
tolerances stated), a dense-grid brute-force marginal likelihood written independently
here, and Python mirt 1.2's ``NominalResponseModel`` fitted to the same data.
"""
from __future__ import annotations

import numpy as np
import pytest

from scoring.nominal import (
    NominalParams,
    analyse_distractors,
    calibrate_nominal,
    nominal_eap,
    nominal_loglik,
    option_probabilities,
)


def simulate(seed: int, n_items: int = 10, n_options: int = 4, n_persons: int = 5000,
             slopes: np.ndarray | None = None, intercepts: np.ndarray | None = None):
    """NRM responses with option 0 as reference; the key has the largest slope."""
    rng = np.random.default_rng(seed)
    key = rng.integers(0, n_options, n_items)
    if slopes is None:
        a = rng.normal(-0.5, 0.5, (n_items, n_options))
        a[np.arange(n_items), key] = rng.uniform(1.0, 2.0, n_items)
        c = rng.normal(0.0, 0.6, (n_items, n_options))
    else:
        a, c = np.array(slopes, dtype=float), np.array(intercepts, dtype=float)
    a -= a[:, :1]
    c -= c[:, :1]
    theta = rng.standard_normal(n_persons)
    z = a[None] * theta[:, None, None] + c[None]
    p = np.exp(z - z.max(axis=2, keepdims=True))
    p /= p.sum(axis=2, keepdims=True)
    x = (p.cumsum(axis=2) < rng.random((n_persons, n_items, 1))).sum(axis=2).astype(float)
    return x, a, c, key


def brute_force_loglik(a: np.ndarray, c: np.ndarray, x: np.ndarray) -> float:
    """Σ_i log ∫ Π_j P_j(x_ij | θ) φ(θ) dθ by the trapezoid rule on 4,001 points of
    [-10, 10] with the exact normal density (independent of nominal.py's grid)."""
    theta = np.linspace(-10, 10, 4001)
    dens = np.exp(-0.5 * theta**2) / np.sqrt(2 * np.pi)
    z = a[:, None, :] * theta[None, :, None] + c[:, None, :]
    logp = z - np.log(np.exp(z).sum(axis=2, keepdims=True))      # (J, T, K)
    total = 0.0
    for i in range(x.shape[0]):
        obs = ~np.isnan(x[i])
        lik = np.exp(sum(logp[j, :, int(x[i, j])] for j in np.flatnonzero(obs)))
        total += np.log(np.trapezoid(lik * dens, theta))
    return float(total)


@pytest.fixture(scope="module")
def big():
    """10 items x 4 options, 5,000 persons, seed 1, and its fit (observed-information SEs)."""
    x, a, c, key = simulate(1)
    return x, a, c, key, calibrate_nominal(x, key=key)


def test_recovers_simulated_parameters_with_calibrated_standard_errors(big):
    _, a, c, _, fit = big
    assert fit.converged
    err_a = fit.params.slopes[:, 1:] - a[:, 1:]
    err_c = fit.params.intercepts[:, 1:] - c[:, 1:]
    # seeds 0-4 give RMSE 0.06-0.10 (slopes) and 0.06-0.09 (intercepts)
    assert np.sqrt(np.mean(err_a**2)) < 0.15
    assert np.sqrt(np.mean(err_c**2)) < 0.15
    z = np.r_[(err_a / fit.params.se_slopes[:, 1:]).ravel(),
              (err_c / fit.params.se_intercepts[:, 1:]).ravel()]
    # 60 estimates: mean z^2 0.91-1.10 over seeds 0-4; its sampling SD is about 0.18
    assert 0.6 < np.mean(z**2) < 1.5
    # the reference option is fixed
    assert np.all(fit.params.slopes[:, 0] == 0) and np.all(fit.params.intercepts[:, 0] == 0)
    assert np.all(np.isnan(fit.params.se_slopes[:, 0]))


def test_cross_product_standard_errors_close_to_observed(big):
    x, _, _, key, fit = big
    xpd = calibrate_nominal(x, key=key, se="crossprod")
    ratio = xpd.params.se_slopes[:, 1:] / fit.params.se_slopes[:, 1:]
    assert 0.9 < np.mean(ratio) < 1.1
    assert np.all((ratio > 0.7) & (ratio < 1.4))


def test_louis_information_equals_numerical_derivative_of_the_score():
    from scoring import nominal as nm
    x, _, _, key = simulate(5, n_items=6, n_options=4, n_persons=800)
    x[np.random.default_rng(1).random(x.shape) < 0.15] = np.nan      # missing responses
    x[x[:, 3] == 2, 3] = 0                                             # a never-chosen option
    p = calibrate_nominal(x, key=key, se="none").params
    data = nm._Data(x, 4)
    theta, logw = nm._grid(61, (-6, 6), 0.0, 1.0)
    _, post, _ = nm._e_step(data, p.slopes, p.intercepts, theta, logw)
    free_opt = p.chosen.copy()
    free_opt[np.arange(6), p.reference] = False
    free = np.concatenate([free_opt, free_opt], axis=1)
    louis = nm._information(data, p.slopes, p.intercepts, theta, logw, 3.0, free, post,
                            "observed")
    numeric = nm._information(data, p.slopes, p.intercepts, theta, logw, 3.0, free, post,
                              "numeric")
    assert louis.shape == (int(free.sum()),) * 2
    # measured 7e-7 absolute on entries up to 170
    assert np.max(np.abs(louis - numeric)) < 1e-4 * np.max(np.abs(numeric))


def test_squarem_reaches_the_same_optimum_as_plain_em(big):
    x, _, _, key, fit = big
    plain = calibrate_nominal(x, key=key, squarem=False, se="none")
    assert plain.converged
    assert abs(plain.log_posterior - fit.log_posterior) < 1e-2
    assert np.max(np.abs(plain.params.slopes - fit.params.slopes)) < 5e-3
    assert plain.n_iter > fit.n_iter / 3   # one SQUAREM cycle counts its 3 EM steps


def test_loglik_equals_brute_force_integration():
    x, a, c, _ = simulate(3, n_items=5, n_options=3, n_persons=300)
    x[np.random.default_rng(0).random(x.shape) < 0.1] = np.nan   # missing responses
    params = NominalParams.from_arrays(a, c)
    expected = brute_force_loglik(a, c, x)
    assert nominal_loglik(params, x, n_quad=121, theta_range=(-8, 8)) == pytest.approx(
        expected, abs=1e-6)
    # the calibration's default grid (61 points on [-6, 6]) is within 1e-4 here
    assert nominal_loglik(params, x) == pytest.approx(expected, abs=1e-4)
    fit = calibrate_nominal(x, slope_prior_sd=None, se="none")
    # the fit's reported loglik is the marginal likelihood at its own estimates, and it is
    # at least as high as at the generating values
    assert fit.loglik == pytest.approx(nominal_loglik(fit.params, x), abs=1e-8)
    assert fit.loglik >= nominal_loglik(params, x) - 1e-6


def test_loglik_matches_python_mirt_nominal_model():
    import mirt  # the reference implementation (a test dependency)
    x, _, _, key = simulate(7, n_items=6, n_options=4, n_persons=1500)
    ref = mirt.fit_mirt(x.astype(int), model="NRM", n_quadpts=61, tol=1e-6, max_iter=2000,
                        compute_standard_errors=False)
    assert ref.converged
    # mirt stores slopes/intercepts with category 0 = 0: our parameterisation
    theirs = NominalParams.from_arrays(ref.model.slopes, ref.model.intercepts)
    # our likelihood of mirt's estimates equals mirt's (Gauss-Hermite 61): 1e-3 measured 3e-5
    assert nominal_loglik(theirs, x) == pytest.approx(ref.log_likelihood, abs=1e-3)
    ours = calibrate_nominal(x, key=key, slope_prior_sd=None, se="none")
    # the same optimum: loglik ties or beats mirt's, estimates agree to 1e-2 (measured 1.2e-3)
    assert ours.loglik >= ref.log_likelihood - 1e-3
    assert ours.loglik == pytest.approx(ref.log_likelihood, abs=0.05)
    assert np.max(np.abs(ours.params.slopes - theirs.slopes)) < 1e-2
    assert np.max(np.abs(ours.params.intercepts - theirs.intercepts)) < 1e-2


def test_option_probabilities_and_reference_change():
    a = np.array([[0.0, 1.0, -0.5], [2.0, 2.5, 1.0]])
    c = np.array([[0.0, 0.3, -0.2], [1.0, 0.0, 0.5]])
    params = NominalParams.from_arrays(a, c)
    assert np.allclose(params.slopes[1], [0.0, 0.5, -1.0])     # option 0 made reference
    theta = np.array([-1.0, 0.0, 2.0])
    p = option_probabilities(params, theta)
    assert p.shape == (3, 2, 3)
    assert np.allclose(p.sum(axis=2), 1.0)
    z = a[1][None] * theta[:, None] + c[1][None]
    assert np.allclose(p[:, 1], np.exp(z) / np.exp(z).sum(axis=1, keepdims=True))


def test_option_never_chosen_is_reported_not_a_crash():
    x, _, _, key = simulate(5, n_items=4, n_options=4, n_persons=1500)
    x[x[:, 2] == 3, 2] = 1          # nobody chooses option 3 of item 3
    x[x[:, 0] == 0, 0] = 2          # nor option 0 of item 1 (the usual reference)
    fit = calibrate_nominal(x, n_options=4, key=key)
    assert fit.converged
    assert set(fit.never_chosen) == {("item3", 3), ("item1", 0)}
    assert np.isnan(fit.params.slopes[2, 3]) and np.isnan(fit.params.slopes[0, 0])
    assert fit.params.reference[0] == 1 and fit.params.slopes[0, 1] == 0
    assert np.all(np.isfinite(fit.params.se_slopes[2, 1:3]))
    p = option_probabilities(fit.params, np.array([0.0]))
    assert p[0, 2, 3] == 0 and p[0, 0, 0] == 0
    table = analyse_distractors(fit, x, key)
    assert table.note[2, 3] == "never chosen" or key[2] == 3
    assert table.share[2, 3] == 0


def test_slope_prior_keeps_a_sparse_option_bounded():
    x, _, _, key = simulate(11, n_items=5, n_options=4, n_persons=400)
    item = 1
    x[x[:, item] == 3, item] = 0
    # only three of the ablest persons choose option 3 of item 2
    top = np.argsort(np.nansum(x == key[None, :], axis=1))[-3:]
    x[top, item] = 3
    # without a prior (ML) its slope runs away (109 measured) -- and the fit does not crash
    ml = calibrate_nominal(x, key=key, slope_prior_sd=None, max_iter=200, se="none")
    assert ml.params.slopes[item, 3] > 20
    fit = calibrate_nominal(x, key=key)          # default prior SD 3: 3.4 measured
    assert fit.converged
    assert np.all(np.isfinite(fit.params.slopes))
    assert 0 < fit.params.slopes[item, 3] < 6
    assert np.all(np.isfinite(fit.params.se_slopes[:, 1:]))


def test_planted_attractive_distractor_is_flagged_and_plain_ones_not():
    # item 1: key = option 2; option 1 has a slope above the key's (chosen by able
    # persons), options 0 and 3 are plain distractors; other items plain
    n_items = 8
    a = np.tile([-0.8, -0.4, 1.2, -0.9], (n_items, 1))
    c = np.tile([0.0, 0.2, 0.6, -0.3], (n_items, 1))
    a[0] = [-0.8, 2.0, 1.2, -0.9]
    c[0] = [0.0, -1.2, 0.6, -0.3]
    x, _, _, _ = simulate(21, n_items=n_items, n_persons=3000, slopes=a, intercepts=c)
    key = np.full(n_items, 2)
    fit = calibrate_nominal(x, key=key)
    table = analyse_distractors(fit, x, key)
    assert table.attractive[0, 1]
    assert table.note[0, 1].startswith("attractive")
    assert table.slope_vs_key[0, 1] > 0
    assert table.slope_vs_key[0, 1] / table.se_slope_vs_key[0, 1] > 3
    others = np.ones_like(table.attractive)
    others[0, 1] = False
    assert not np.any(table.attractive & others)
    assert np.all(table.note[:, 2] == "key")
    # the attractive option's choosers are above average, a plain distractor's below
    assert table.mean_theta[0, 1] > 0.3 and table.mean_theta[0, 3] < -0.3
    assert np.allclose(table.share.sum(axis=1), 1.0)


def test_distractor_analysis_refuses_a_scale_running_against_the_key():
    x, _, _, key = simulate(8, n_items=6, n_persons=1000)
    fit = calibrate_nominal(x, key=key, se="none")
    assert np.all(analyse_distractors(fit, x, key).note[np.arange(6), key] == "key")
    flipped = NominalParams.from_arrays(-fit.params.slopes, fit.params.intercepts)
    reflected = type(fit)(**{**fit.__dict__, "params": flipped})
    with pytest.raises(ValueError, match="runs against the key"):
        analyse_distractors(reflected, x, key)


def test_eap_and_latent_scale():
    x, a, c, _ = simulate(2, n_items=8, n_persons=2000)
    params = NominalParams.from_arrays(a, c)
    theta, sd = nominal_eap(params, x)
    assert theta.shape == sd.shape == (2000,)
    assert abs(theta.mean()) < 0.1 and np.all(sd > 0)
    # a scale given as N(0.5, 1.2^2): the same data fitted on it have slopes scaled by
    # 1/1.2 (the likelihood is invariant to the linear change of scale)
    base = calibrate_nominal(x, se="none", slope_prior_sd=None)
    shifted = calibrate_nominal(x, se="none", slope_prior_sd=None, latent_mean=0.5,
                                latent_sd=1.2, n_quad=81, theta_range=(-7, 8))
    assert shifted.loglik == pytest.approx(base.loglik, abs=1e-2)
    assert np.allclose(shifted.params.slopes * 1.2, base.params.slopes, atol=5e-3)


def test_bad_input_names_the_problem():
    x, _, _, _ = simulate(4, n_items=3, n_persons=100)
    with pytest.raises(ValueError, match=r"option 1\.5"):
        bad = x.copy()
        bad[5, 1] = 1.5
        calibrate_nominal(bad)
    with pytest.raises(ValueError, match="item2: fewer than two options"):
        bad = x.copy()
        bad[:, 1] = 0
        calibrate_nominal(bad)
    with pytest.raises(ValueError, match="se must be"):
        calibrate_nominal(x, se="sandwich")


# ---------------------------------------------------------------------------- command line

LETTERS = "ABCD"


def write_choices(path, x, n_items):
    """A wide RESPONSES.csv of letters (empty = not answered)."""
    lines = ["person_id," + ",".join(f"Q{j + 1}" for j in range(n_items))]
    for i, row in enumerate(x):
        lines.append(f"p{i + 1}," + ",".join("" if np.isnan(v) else LETTERS[int(v)]
                                             for v in row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture()
def choice_files(tmp_path):
    n_items = 8
    a = np.tile([-0.8, -0.4, 1.2, -0.9], (n_items, 1))
    c = np.tile([0.0, 0.2, 0.6, -0.3], (n_items, 1))
    a[0] = [-0.8, 2.0, 1.2, -0.9]      # Q1: B attracts able persons
    c[0] = [0.0, -1.2, 0.6, -0.3]
    x, _, _, _ = simulate(21, n_items=n_items, n_persons=2000, slopes=a, intercepts=c)
    x[x[:, 4] == 3, 4] = 0              # nobody chooses Q5's D
    x[:5, 6] = np.nan                   # some not answered
    write_choices(tmp_path / "responses.csv", x, n_items)
    key_lines = ["item_id,key,options"] + [f"Q{j + 1},C," for j in range(n_items)]
    key_lines[5] = "Q5,C,A B C D"        # D listed, so it is reported though never chosen
    (tmp_path / "key.csv").write_text("\n".join(key_lines) + "\n", encoding="utf-8")
    return tmp_path


def test_distractors_command_end_to_end(choice_files):
    import csv

    from click.testing import CliRunner

    from scoring.cli import distractors
    d = choice_files
    result = CliRunner().invoke(distractors, [str(d / "responses.csv"), "--key",
                                              str(d / "key.csv"), "--out", str(d / "out.csv"),
                                              "--report", str(d / "report.html"),
                                              "--lang", "en"])
    assert result.exit_code == 0, result.output
    with (d / "out.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["item_id", "option", "key", "n_chosen", "share", "mean_theta",
                             "slope", "se_slope", "intercept", "se_intercept",
                             "slope_vs_key", "se_slope_vs_key", "attractive", "note"]
    assert len(rows) == 8 * 4
    by = {(r["item_id"], r["option"]): r for r in rows}
    assert by[("Q1", "B")]["attractive"] == "true"
    assert by[("Q1", "B")]["note"].startswith("attractive")
    assert float(by[("Q1", "B")]["slope_vs_key"]) > 0
    assert sum(r["attractive"] == "true" for r in rows) == 1
    assert by[("Q1", "C")]["key"] == "true" and by[("Q1", "C")]["note"] == "key"
    assert by[("Q5", "D")]["note"] == "never chosen" and by[("Q5", "D")]["n_chosen"] == "0"
    assert by[("Q5", "D")]["slope"] == ""
    assert "options nobody chose" in result.output and "Q5 D" in result.output
    text = [line.split() for line in result.output.splitlines()]   # the text table
    assert ["item_id", "option", "key", "n_chosen"] == text[0][:4]
    q1b = next(line for line in text if line[:2] == ["Q1", "B"])
    assert "attractive:" in q1b
    assert next(line for line in text if line[:2] == ["Q1", "C"])[2] == "key"
    assert sum(float(by[("Q7", o)]["share"]) for o in LETTERS) == pytest.approx(1.0)
    html = (d / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    assert "Attractive distractors: Q1 B" in html and '<html lang="en">' in html
    # the default report language is Chinese
    result = CliRunner().invoke(distractors, [str(d / "responses.csv"), "--key",
                                              str(d / "key.csv"), "--out", str(d / "out.csv"),
                                              "--report", str(d / "report_zh.html")])
    assert result.exit_code == 0, result.output
    zh = (d / "report_zh.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in zh and "迷惑性强的干扰项：Q1 B" in zh
    assert ">干扰项分析</h1>" in zh and "Attractive" not in zh


@pytest.mark.parametrize("key_text, message", [
    ("item_id,answer\nQ1,C\n", "key.csv, row 1, column key: required column is missing"),
    ("item_id,key\nQ1,C\nQ2,\n", "key.csv, row 3, column key: empty key for item 'Q2'"),
    ("item_id,key\nQ1,C\nQ9,A\n",
     "key.csv, row 3, column item_id: item 'Q9' is not a column of"),
    ("item_id,key\nQ1,C\nQ1,A\n",
     "key.csv, row 3, column item_id: duplicate item 'Q1' (first on row 2)"),
    ("item_id,key,options\nQ1,E,A B C D\n",
     "key.csv, row 2, column key: key 'E' is not one of the options A B C D"),
    ("item_id,key\nQ1,C\n", "responses.csv, row 1, column Q2: item has no key in"),
])
def test_distractors_bad_key_file_names_file_row_and_column(choice_files, monkeypatch,
                                                            key_text, message):
    from click.testing import CliRunner

    from scoring.cli import distractors
    if "no key" not in message:
        pad = "," * key_text.splitlines()[0].count(",")
        key_text += "".join(f"Q{j},C{pad[1:]}\n" for j in range(2, 9))
    (choice_files / "key.csv").write_text(key_text, encoding="utf-8")
    monkeypatch.chdir(choice_files)
    result = CliRunner().invoke(distractors, ["responses.csv", "--key", "key.csv",
                                              "--out", "out.csv"])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (choice_files / "out.csv").exists()


def test_distractors_bad_option_in_responses(choice_files, monkeypatch):
    from click.testing import CliRunner

    from scoring.cli import distractors
    path = choice_files / "responses.csv"
    text = path.read_text(encoding="utf-8").splitlines()
    cells = text[3].split(",")
    cells[5] = "E"                               # Q5 of the third person: not an option
    text[3] = ",".join(cells)
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    monkeypatch.chdir(choice_files)
    result = CliRunner().invoke(distractors, ["responses.csv", "--key", "key.csv",
                                              "--out", "out.csv"])
    assert result.exit_code == 1
    assert ("responses.csv, row 4, column Q5: option 'E' is not one of the options "
            "A B C D of this item") in result.output
