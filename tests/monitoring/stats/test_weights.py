"""Weights: design weights, nonresponse, post-stratification, raking, trimming, steps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.stats.weights import (
    WeightSteps,
    design_weights,
    nonresponse_adjust,
    poststratify,
    rake,
    trim,
)


def _sample(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.choice(["18-39", "40-59", "60+"], n, p=[0.5, 0.3, 0.2]),
        "sex": rng.choice(["f", "m"], n),
        "district": rng.choice(["A", "B", "C", "D"], n, p=[0.4, 0.3, 0.2, 0.1]),
        "w": rng.uniform(20, 80, n),
        "resp": rng.random(n) < 0.7,
    })


def test_design_weights():
    np.testing.assert_allclose(design_weights([0.5, 0.1, 1.0]), [2.0, 10.0, 1.0])
    for bad in ([0.0], [1.5], [np.nan], [-0.1]):
        with pytest.raises(ValueError, match="position 0"):
            design_weights(bad)


def test_nonresponse_keeps_cell_totals():
    s = _sample()
    r = nonresponse_adjust(s["w"], s["resp"], "district", data=s)
    assert (r.weights[~s["resp"].to_numpy()] == 0).all()
    for k, g in s.groupby("district"):
        m = (s["district"] == k).to_numpy()
        assert r.weights[m].sum() == pytest.approx(g["w"].sum(), rel=1e-12)
        assert r.factors[k] == pytest.approx(g["w"].sum() / g.loc[g["resp"], "w"].sum(), rel=1e-12)
    # crossed cells given as columns
    r2 = nonresponse_adjust(s["w"], s["resp"], ["district", "sex"], data=s)
    assert len(r2.factors) == 8
    assert r2.weights.sum() == pytest.approx(s["w"].sum(), rel=1e-12)


def test_nonresponse_cell_without_respondents_is_named():
    s = _sample()
    resp = s["resp"].to_numpy() & (s["district"] != "D").to_numpy()
    with pytest.raises(ValueError, match="'D'"):
        nonresponse_adjust(s["w"], resp, s["district"])


def test_poststratify_exact_totals():
    s = _sample()
    tot = pd.DataFrame([(a, x, 1000.0 + 100 * i + 7 * j)
                        for i, a in enumerate(["18-39", "40-59", "60+"])
                        for j, x in enumerate(["f", "m"])], columns=["age", "sex", "total"])
    r = poststratify(s["w"], s, ["age", "sex"], tot)
    got = pd.Series(r.weights).groupby([s["age"], s["sex"]]).sum()
    for _, row in tot.iterrows():
        assert got[(row["age"], row["sex"])] == pytest.approx(row["total"], rel=1e-12)
    # one variable, totals as a mapping
    r1 = poststratify(s["w"], s, "sex", {"f": 5000.0, "m": 4000.0})
    assert r1.weights.sum() == pytest.approx(9000.0, rel=1e-12)
    with pytest.raises(ValueError, match="'m'"):
        poststratify(s["w"], s, "sex", {"f": 5000.0})
    with pytest.raises(ValueError, match=r"'x'.*no respondents"):
        poststratify(s["w"], s, "sex", {"f": 5000.0, "m": 4000.0, "x": 10.0})
    with pytest.raises(ValueError, match="'nope'"):
        poststratify(s["w"], s, "nope", {"f": 1.0})


MARGINS = {
    "age": {"18-39": 40000.0, "40-59": 35000.0, "60+": 25000.0},
    "sex": {"f": 51000.0, "m": 49000.0},
    "district": {"A": 30000.0, "B": 30000.0, "C": 25000.0, "D": 15000.0},
}


def test_raking_matches_margins():
    s = _sample()
    r = rake(s["w"], s, MARGINS, tol=1e-12)
    assert r.converged and r.max_error <= 1e-12
    for col, tot in MARGINS.items():
        got = pd.Series(r.weights).groupby(s[col].to_numpy()).sum()
        for k, v in tot.items():
            assert abs(got[k] - v) / v < 1e-8
    # a single margin is post-stratification
    one = rake(s["w"], s, {"sex": MARGINS["sex"]})
    ps = poststratify(s["w"], s, "sex", MARGINS["sex"])
    np.testing.assert_allclose(one.weights, ps.weights, rtol=1e-12)
    assert one.iterations == 1


def test_raking_errors():
    s = _sample()
    bad = {**MARGINS, "district": {**MARGINS["district"], "E": 0.0}}
    assert rake(s["w"], s, bad).converged  # zero-total category without respondents is fine
    bad = {**MARGINS, "district": {"A": 30000.0, "B": 30000.0, "C": 25000.0, "D": 5000.0,
                                   "E": 10000.0}}
    with pytest.raises(ValueError, match="'E' of margin 'district' has no respondents"):
        rake(s["w"], s, bad)
    with pytest.raises(ValueError, match="'D' of margin 'district' has no population total"):
        rake(s["w"], s, {"district": {"A": 1.0, "B": 1.0, "C": 1.0}})
    with pytest.raises(ValueError, match="margin 'sex' totals"):
        rake(s["w"], s, {"age": MARGINS["age"], "sex": {"f": 1.0, "m": 1.0}})
    with pytest.raises(ValueError, match="not converged"):
        rake(s["w"], s, MARGINS, max_iter=1, tol=1e-14)
    r = rake(s["w"], s, MARGINS, max_iter=1, tol=1e-14, strict=False)
    assert not r.converged and r.iterations == 1


def test_trimming_keeps_total_and_caps():
    rng = np.random.default_rng(3)
    w = np.concatenate([rng.uniform(1, 3, 300), [40.0, 60.0, 90.0]])
    r = trim(w, median_multiple=3.0)
    cap = 3.0 * np.median(w)
    assert r.weights.sum() == pytest.approx(w.sum(), rel=1e-12)
    assert r.weights.max() <= cap * (1 + 1e-9)
    assert r.upper == pytest.approx(cap) and r.n_trimmed >= 3
    # untrimmed weights are shifted by one common amount (R's trimWeights), not scaled
    keep = w < cap / 2
    shift = r.weights[keep] - w[keep]
    np.testing.assert_allclose(shift, shift[0], rtol=1e-12)
    assert shift[0] > 0
    # explicit bounds, lower and upper
    r2 = trim(w, upper=10.0, lower=1.2)
    assert r2.weights.sum() == pytest.approx(w.sum(), rel=1e-12)
    assert r2.weights.max() <= 10.0 + 1e-9 and r2.weights.min() >= 1.2 - 1e-9
    # zero weights (units not in the sample) take no share
    z = trim(np.concatenate([w, [0.0, 0.0]]), upper=r.upper)
    assert (z.weights[-2:] == 0).all()
    np.testing.assert_allclose(z.weights[:-2], r.weights, rtol=1e-12)
    with pytest.raises(ValueError, match="too small"):
        trim(w, upper=1.0)
    with pytest.raises(ValueError, match="give upper"):
        trim(w)


def test_trimming_matches_r_trimweights():
    """R's ``trimWeights(..., strict=TRUE)`` and one pass (``strict=FALSE``), from
    ``data/r/calib_api.R`` (17 digits; tolerance 1e-6 relative, the agreement found is
    1e-15): apistrat within [20, 40] (one pass is enough), and apiclus1's raked weights
    capped at 35, where the first share pushes the 32.5 weights over the cap."""
    from pathlib import Path

    here = Path(__file__).parent / "data"
    ref = pd.read_csv(here / "r" / "calib_trim_weights.csv")
    s = pd.read_csv(here / "apistrat.csv")["pw"]
    raked = ref.loc[ref["case"] == "clus1_rake_stype_awards", "weight"].to_numpy()
    cases = [("strat_trim_20_40", s, dict(upper=40.0, lower=20.0), True),
             ("strat_trim_20_40_onepass", s, dict(upper=40.0, lower=20.0), False),
             ("clus1_rake_trim35", raked, dict(upper=35.0), True),
             ("clus1_rake_trim35_onepass", raked, dict(upper=35.0), False)]
    for case, w, bounds, strict in cases:
        want = ref.loc[ref["case"] == case, "weight"].to_numpy()
        got = trim(w, strict=strict, **bounds)
        np.testing.assert_allclose(got.weights, want, rtol=1e-6, err_msg=case)
        assert got.weights.sum() == pytest.approx(np.sum(w), rel=1e-12)
    one = trim(raked, upper=35.0, strict=False)
    assert one.iterations == 1 and one.weights.max() > 35.0     # one pass overshoots
    full = trim(raked, upper=35.0)
    assert full.iterations > 1 and full.weights.max() <= 35.0
    with pytest.raises(ValueError, match="nowhere to go"):
        trim(s, upper=40.0, lower=25.0)   # every weight is below 25 or above 40


def test_weight_steps_record():
    s = _sample()
    ids = np.arange(len(s))
    w0 = s["w"].to_numpy()
    nr = nonresponse_adjust(w0, s["resp"], "district", data=s)
    resp = s["resp"].to_numpy()
    steps = WeightSteps.start(ids[resp], w0[resp], source="pi")
    steps = steps.add("nonresponse", nr.weights[resp], cells="district")
    rk = rake(steps.final, s[resp], MARGINS)
    steps = steps.add("rake", rk.weights, iterations=rk.iterations)
    tr = trim(steps.final, median_multiple=4)
    steps = steps.add("trim", tr.weights, upper=tr.upper)
    f = steps.to_frame()
    assert list(f.columns) == ["id", "w_design", "w_nonresponse", "w_rake", "w_trim", "weight"]
    assert len(f) == resp.sum()
    np.testing.assert_array_equal(f["weight"], tr.weights)
    summ = steps.summary()
    assert summ["step"].tolist() == ["design", "nonresponse", "rake", "trim"]
    assert summ["sum"].iloc[2] == pytest.approx(100000.0)
    with pytest.raises(ValueError, match="already recorded"):
        steps.add("rake", rk.weights)
    with pytest.raises(ValueError, match="3 weights"):
        steps.add("x", [1.0, 2.0, 3.0])
    with pytest.raises(AttributeError):
        steps.steps = ()  # frozen
