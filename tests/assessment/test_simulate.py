"""Tests of the CAT simulation (assessment/simulate.py): recovery, exposure, CLI."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
from click.testing import CliRunner

from assessment import engine as E
from assessment.simulate import (
    SimulationResult,
    run_simulation,
    simulate,
    sympson_hetter,
)
from scoring.io import write_params
from scoring.params import ItemParams


def good_bank(n: int = 300, seed: int = 0) -> ItemParams:
    """2PL items with useful slopes (a ~ 1.4) and difficulties spread over [-3, 3]."""
    rng = np.random.default_rng(seed)
    return ItemParams.from_arrays([f"i{j:03d}" for j in range(n)], "2pl",
                                  rng.lognormal(0.3, 0.2, n), rng.uniform(-3, 3, n))


@pytest.fixture(scope="module")
def params() -> ItemParams:
    return good_bank()


def test_recovery_at_twenty_items(params):
    """RMSE < 0.4 and |bias| < 0.1 with 20 items (the SE after 20 items of a ~ 1.4 is
    about 0.3; 500 examinees give RMSE to about +-0.02)."""
    bank = E.Bank(params)
    bp = E.Blueprint(min_items=20, max_items=20, se_target=0.01)
    thetas = np.random.default_rng(1).standard_normal(500)
    res = run_simulation(bank, bp, thetas, seed=2)
    assert res.n_examinees == 500 and np.all(res.n_items == 20)
    assert res.rmse < 0.4
    assert abs(res.bias) < 0.1
    assert np.all(res.stop_reason == "max_items")
    assert np.corrcoef(res.theta, res.true_theta)[0, 1] > 0.9
    # the reported SE matches the observed error (within 20 %)
    assert res.rmse == pytest.approx(np.sqrt(np.mean(res.se**2)), rel=0.2)
    # same seed, same run; the dual `simulate` object is the library function too
    again = simulate(bank, bp, thetas, 2)
    assert isinstance(again, SimulationResult)
    assert np.array_equal(again.theta, res.theta)
    assert np.array_equal(again.exposure_counts, res.exposure_counts)


def test_variable_length_stops_at_the_se_target(params):
    bank = E.Bank(params)
    bp = E.Blueprint(min_items=5, max_items=40, se_target=0.35)
    res = run_simulation(bank, bp, np.random.default_rng(3).standard_normal(200), seed=4)
    assert np.all(res.se[res.stop_reason == "se_target"] <= 0.35 + 1e-9)
    assert np.mean(res.stop_reason == "se_target") > 0.9
    assert 5 <= res.mean_length < 20


def test_exposure_control(params):
    """r_max = 0.25: Sympson-Hetter keeps the maximum exposure within 0.05 of it on a
    fresh simulation of 1,000 examinees; randomesque lowers it; no control: ~1."""
    bank = E.Bank(params)
    bp = E.Blueprint(min_items=10, max_items=10, se_target=0.01)
    thetas = np.random.default_rng(5).standard_normal(1000)
    none = run_simulation(bank, bp, thetas, seed=6, final=False)
    rq = run_simulation(bank, E.Blueprint(min_items=10, max_items=10, se_target=0.01,
                                          exposure="randomesque", candidates=5),
                        thetas, seed=6, final=False)
    sh = sympson_hetter(bank, bp, 0.25, n_examinees=600, iterations=10, seed=7)
    assert sh.blueprint.exposure == "sympson-hetter" and sh.blueprint.max_rate == 0.25
    assert sh.parameters and all(0 < k < 1 for k in sh.parameters.values())
    assert sh.max_exposure[0] > 0.9  # the first iteration has no control
    controlled = run_simulation(bank, sh.blueprint, thetas, seed=6, final=False)
    assert none.max_exposure > 0.9
    assert controlled.max_exposure <= 0.25 + 0.05
    assert rq.max_exposure < none.max_exposure - 0.2
    assert controlled.overlap_rate < none.overlap_rate
    # every test still has its 10 distinct items and a sensible estimate
    assert np.all(controlled.n_items == 10)
    assert controlled.rmse < none.rmse + 0.1


def test_overlap_rate_equals_the_mean_over_all_pairs(params):
    bank = E.Bank(params)
    bp = E.Blueprint(min_items=8, max_items=8, se_target=0.01, exposure="randomesque")
    thetas = np.random.default_rng(8).standard_normal(60)
    res = run_simulation(bank, bp, thetas, seed=9, final=False)
    sets = [set(items) for items in res.items]
    assert all(len(s) == 8 for s in sets)
    counts = np.zeros(params.n_items, dtype=int)
    for s in sets:
        counts[list(s)] += 1
    assert np.array_equal(counts, res.exposure_counts)
    pairs = [len(a & b) / 8 for a, b in itertools.combinations(sets, 2)]
    assert res.overlap_rate == pytest.approx(np.mean(pairs), abs=1e-12)
    # Chen, Ankenmann & Spray (2003): T ~ n S_r^2 / L + L / n (large N)
    r = res.exposure_rates
    approx = params.n_items * r.var() / 8 + 8 / params.n_items
    assert res.overlap_rate == pytest.approx(approx, abs=0.02)


def test_content_balancing_in_simulation(params):
    domains = ["A", "B", "C"] * 100
    bank = E.Bank(params, domains=domains)
    targets = {"A": 0.5, "B": 0.25, "C": 0.25}
    bp = E.Blueprint(min_items=12, max_items=12, se_target=0.01, content_balance=targets)
    res = run_simulation(bank, bp, np.random.default_rng(10).standard_normal(100), seed=11)
    given = res.exposure_counts / res.n_examinees
    per_test = {d: given[[k for k, x in enumerate(domains) if x == d]].sum() / 12
                for d in targets}
    for d, t in targets.items():
        assert per_test[d] == pytest.approx(t, abs=0.05)


# ------------------------------------------------------------------------ command


def run_cli(args: list[str]):
    return CliRunner().invoke(simulate, args, catch_exceptions=False)


def test_cli_writes_the_exact_columns(tmp_path, params):
    write_params(tmp_path / "params.csv", params)
    out = tmp_path / "sim.csv"
    result = run_cli(["--params", str(tmp_path / "params.csv"), "--examinees", "40",
                      "--max-items", "15", "--se", "0.3", "--seed", "3", "--quiet",
                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["examinee", "true_theta", "theta", "se", "n_items"]
    assert len(rows) == 41
    assert [r[0] for r in rows[1:]] == [str(k) for k in range(1, 41)]
    assert all(5 <= int(r[4]) <= 15 for r in rows[1:])
    for word in ("bias", "RMSE", "mean length", "max exposure", "mean exposure",
                 "overlap rate"):
        assert word in result.output
    # reproducible
    out2 = tmp_path / "sim2.csv"
    run_cli(["--params", str(tmp_path / "params.csv"), "--examinees", "40",
             "--max-items", "15", "--se", "0.3", "--seed", "3", "--quiet", "--out", str(out2)])
    assert out.read_text() == out2.read_text()


def test_cli_draws_examinees_from_the_calibrations_latent_distribution(tmp_path, params):
    """A bank calibrated on a population N(0.8, 0.6^2) simulates that population."""
    shifted = ItemParams.from_arrays(params.item_ids, params.model, params.a, params.b,
                                     latent_mean=0.8, latent_sd=0.6)
    write_params(tmp_path / "params.csv", shifted)
    out = tmp_path / "sim.csv"
    result = run_cli(["--params", str(tmp_path / "params.csv"), "--examinees", "400",
                      "--max-items", "5", "--se", "0.3", "--seed", "3", "--quiet",
                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as fh:
        true = np.array([float(r["true_theta"]) for r in csv.DictReader(fh)])
    # 400 draws: mean within 4 SE (0.12) of 0.8, SD within 15 %
    assert abs(true.mean() - 0.8) < 0.12 and abs(true.std() - 0.6) < 0.09


def test_cli_true_theta_file_domains_and_sympson_hetter(tmp_path, params):
    write_params(tmp_path / "params.csv", params)
    (tmp_path / "theta.csv").write_text("id,theta\n" + "".join(
        f"p{k},{float(t)!r}\n" for k, t in enumerate(np.linspace(-2, 2, 30))), encoding="utf-8")
    (tmp_path / "domains.csv").write_text("item_id,domain\n" + "".join(
        f"i{j:03d},{'AB'[j % 2]}\n" for j in range(300)), encoding="utf-8")
    out = tmp_path / "sim.csv"
    result = run_cli(["--params", str(tmp_path / "params.csv"), "--true-theta-file",
                      str(tmp_path / "theta.csv"), "--domains", str(tmp_path / "domains.csv"),
                      "--max-items", "10", "--min-items", "10", "--se", "0.2",
                      "--exposure", "sympson-hetter", "--max-exposure", "0.5",
                      "--sh-iterations", "4", "--sh-out", str(tmp_path / "k.csv"),
                      "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["true_theta"]) for r in rows] == pytest.approx(np.linspace(-2, 2, 30))
    assert all(r["n_items"] == "10" for r in rows)
    k_rows = (tmp_path / "k.csv").read_text().splitlines()
    assert k_rows[0] == "item_id,k" and len(k_rows) == 301


def test_cli_plain_theta_list(tmp_path, params):
    write_params(tmp_path / "params.csv", params)
    (tmp_path / "theta.txt").write_text("0.5\n-1\n\n2\n", encoding="utf-8")
    out = tmp_path / "sim.csv"
    result = run_cli(["--params", str(tmp_path / "params.csv"), "--true-theta-file",
                      str(tmp_path / "theta.txt"), "--max-items", "5", "--se", "0.3",
                      "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 4


@pytest.mark.parametrize("bad, expected", [
    ("item_id,model,a,b,c\ni1,2pl,1.0,0.0,0\ni2,2pl,-1,0.5,0\n", "row 3, column a"),
    ("item_id,model,a,b,c\ni1,2pl,1.0,0.0,0\ni2,nonsense,1,0.5,0\n", "row 3, column model"),
])
def test_cli_refuses_a_bad_params_file_without_writing(tmp_path, bad, expected):
    (tmp_path / "params.csv").write_text(bad, encoding="utf-8")
    out = tmp_path / "sim.csv"
    result = CliRunner().invoke(simulate, ["--params", str(tmp_path / "params.csv"),
                                           "--examinees", "5", "--max-items", "3",
                                           "--se", "0.3", "--quiet", "--out", str(out)])
    assert result.exit_code == 1
    assert "params.csv" in result.output and expected in result.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "params.csv"]


def test_cli_refuses_bad_theta_and_domain_files(tmp_path, params):
    write_params(tmp_path / "params.csv", params)
    (tmp_path / "theta.txt").write_text("0.5\nabc\n", encoding="utf-8")
    (tmp_path / "domains.csv").write_text("item_id,domain\ni000,A\nzzz,B\n", encoding="utf-8")
    out = tmp_path / "sim.csv"
    base = ["--params", str(tmp_path / "params.csv"), "--max-items", "3", "--se", "0.3",
            "--quiet", "--out", str(out)]
    result = CliRunner().invoke(simulate, base + ["--true-theta-file",
                                                  str(tmp_path / "theta.txt")])
    assert result.exit_code == 1 and "theta.txt, row 2" in result.output
    result = CliRunner().invoke(simulate, base + ["--domains", str(tmp_path / "domains.csv")])
    assert result.exit_code == 1 and "domains.csv, row 3, column item_id" in result.output
    result = CliRunner().invoke(simulate, base + ["--min-items", "9"])
    assert result.exit_code == 2 and "--min-items" in result.output
    assert not out.exists()


# ------------------------------------------------------------------ classification


def test_classification_stopping_reaches_the_nominal_accuracy_with_fewer_items(params):
    """Three levels (cuts -0.5, 0.5), α = 0.1 (nominal 90 %), KL for the first 4 items,
    5..60 items, θ ~ N(0, 1), 1,000 simulees (seeded).  The overall accuracy is at least
    0.9 - 3 Monte Carlo SE (it is 0.905: 0.97 among tests stopped by classification,
    0.76 among those that reach 60 items near a cut).  A fixed-length test of the same
    mean length (32 items, common random numbers) is less accurate (0.879) by more than
    2 paired SE (McNemar: sqrt(discordant) / n), and still is at 1.25 times that length."""
    bank = E.Bank(params, cuts=(-0.5, 0.5))
    bp = E.Blueprint(min_items=5, max_items=60, se_target=1e-9, classification_alpha=0.1,
                     kl_items=4)
    thetas = np.random.default_rng(1).standard_normal(1000)
    res = run_simulation(bank, bp, thetas, seed=2)
    mc_se = np.sqrt(0.9 * 0.1 / res.n_examinees)
    assert res.accuracy >= 0.9 - 3 * mc_se
    classified = res.stop_reason == "classified"
    assert set(res.stop_reason) <= {"classified", "max_items"} and classified.mean() > 0.5
    right = res.level == res.true_level
    assert right[classified].mean() >= 0.9  # a test stopped by the rule is right >= 1 - α
    assert np.all(res.n_items[classified] >= 5)
    per_level = res.level_accuracy()
    assert [k for k, _, _ in per_level] == [0, 1, 2]
    assert sum(n for _, n, _ in per_level) == 1000
    assert sum(n * acc for _, n, acc in per_level) / 1000 == pytest.approx(res.accuracy)
    assert res.summary()["accuracy_level_2"] == per_level[1][2]
    for factor, margin in [(1.0, 2.0), (1.25, 0.0)]:
        length = int(np.ceil(factor * res.mean_length))
        fixed = run_simulation(bank, E.Blueprint(min_items=length, max_items=length,
                                                 se_target=1e-9), thetas, seed=2)
        right_fixed = fixed.level == fixed.true_level
        discordant = np.sum(right != right_fixed)
        assert res.accuracy - fixed.accuracy > margin * np.sqrt(discordant) / 1000, length


def test_levels_of_a_result():
    res = SimulationResult(
        true_theta=np.array([-1.0, -0.2, 0.3, 0.7, 2.0]),
        theta=np.array([-0.6, 0.1, 0.2, np.nan, 1.1]), se=np.full(5, 0.3),
        n_items=np.full(5, 10), stop_reason=np.array(["classified"] * 5),
        items=((),) * 5, exposure_counts=np.zeros(3, dtype=int), selected_counts=None,
        operational=np.ones(3, dtype=bool), method="eap", cuts=np.array([-0.5, 0.5, 1.5]))
    assert res.true_level.tolist() == [0, 1, 1, 2, 3]
    assert res.level.tolist() == [0, 1, 1, -1, 2]
    assert res.accuracy == pytest.approx(3 / 5)
    assert res.level_accuracy() == [(0, 1, 1.0), (1, 2, 1.0), (2, 1, 0.0), (3, 1, 0.0)]


def test_cli_reports_accuracy_per_level(tmp_path, params):
    write_params(tmp_path / "params.csv", params)
    out = tmp_path / "sim.csv"
    base = ["--params", str(tmp_path / "params.csv"), "--examinees", "200", "--max-items",
            "30", "--seed", "4", "--quiet", "--out", str(out)]
    result = run_cli(base + ["--stop", "classification", "--alpha", "0.1", "--cuts",
                             "-0.5,0.5", "--kl-items", "4"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    overall = next(line for line in lines if line.startswith("accuracy"))
    assert "3 levels" in overall and "nominal 0.90" in overall and "MC SE" in overall
    rows = [line.split() for line in lines if line.strip().startswith("level ")]
    assert [r[1] for r in rows] == ["1", "2", "3"]
    assert all(0 <= float(r[2]) <= 1 for r in rows)
    assert "-0.5 <= θ < 0.5)" in lines[[ln.strip()[:7] for ln in lines].index("level 2")]
    assert any(line.startswith("stopped") and "classified" in line for line in lines)
    for word in ("bias", "RMSE", "mean length"):
        assert word in result.output
    # the CSV keeps its columns; the level accuracy agrees with them
    with open(out, newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    true = np.searchsorted([-0.5, 0.5], [float(r["true_theta"]) for r in table], "right")
    got = np.searchsorted([-0.5, 0.5], [float(r["theta"]) for r in table], "right")
    assert float(overall.split()[1]) == pytest.approx(np.mean(true == got), abs=5e-5)
    # the SE rule (the default) also reports the default five levels
    result = run_cli(base + ["--se", "0.3"])
    assert result.exit_code == 0 and "5 levels" in result.output
    assert "nominal" not in result.output


@pytest.mark.parametrize("extra, message", [
    ([], "--se is needed unless --stop classification"),
    (["--stop", "classification", "--se", "0.3"], "use --stop both"),
    (["--stop", "both", "--se", "0.3", "--cuts", "0.5,0"], "finite and increasing"),
    (["--stop", "both", "--se", "0.3", "--cuts", "low,high"], "not a comma-separated"),
    (["--stop", "classification", "--alpha", "1"], "--alpha"),
])
def test_cli_refuses_bad_stopping_options(tmp_path, params, extra, message):
    write_params(tmp_path / "params.csv", params)
    out = tmp_path / "sim.csv"
    result = CliRunner().invoke(simulate, ["--params", str(tmp_path / "params.csv"),
                                           "--examinees", "5", "--max-items", "5", "--quiet",
                                           "--out", str(out), *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()
