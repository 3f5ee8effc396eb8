"""Sampling: allocation, stratified SRS, PPS and two-stage draws, quotas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.stats.design import Design
from monitoring.stats.estimates import survey_mean, survey_total
from monitoring.stats.sampling import (
    Allocation,
    allocate,
    design_columns,
    pps_inclusion_probabilities,
    pps_sample,
    quota_progress,
    second_stage_size,
    stratified_srs,
    systematic_pps,
    two_stage_sample,
)

SIZES = {"A": 5000, "B": 3000, "C": 1500, "D": 500}


# ---------------------------------------------------------------- allocation


def test_allocation_methods():
    p = allocate(SIZES, 200)
    assert p.n.sum() == 200 and p.as_dict() == {"A": 100, "B": 60, "C": 30, "D": 10}
    e = allocate(SIZES, 201, method="equal")
    assert e.n.sum() == 201 and sorted(e.n.tolist()) == [50, 50, 50, 51]
    sds = {"A": 1.0, "B": 2.0, "C": 4.0, "D": 3.0}
    ny = allocate(SIZES, 300, method="neyman", sds=sds)
    a = np.array([SIZES[k] * sds[k] for k in ny.strata])
    np.testing.assert_allclose(ny.exact, 300 * a / a.sum(), rtol=1e-12)  # ∝ N_h S_h
    assert ny.n.sum() == 300 and np.all(np.abs(ny.n - ny.exact) < 1)
    assert isinstance(ny, Allocation) and ny.as_series()["C"] == ny.as_dict()["C"]


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 400), min_size=1, max_size=8),
    frac=st.floats(0, 1),
    method=st.sampled_from(["proportional", "equal", "neyman"]),
    lo=st.integers(0, 6),
    hi=st.integers(6, 200),
    seed=st.integers(0, 10**6),
)
def test_allocation_sums_and_bounds(sizes, frac, method, lo, hi, seed):
    rng = np.random.default_rng(seed)
    N = {f"s{i}": v for i, v in enumerate(sizes)}
    cap = np.minimum(hi, np.array(sizes))
    floor = np.minimum(lo, cap)
    n = round(float(floor.sum() + frac * (cap.sum() - floor.sum())))
    sds = {k: float(rng.uniform(0, 5)) for k in N}
    a = allocate(N, n, method=method, sds=sds, min_n=lo, max_n=hi)
    assert a.n.sum() == n
    assert np.all(a.n >= floor) and np.all(a.n <= cap)


def test_allocation_bounds_and_errors():
    a = allocate(SIZES, 100, min_n=20)
    assert a.n.sum() == 100 and a.n.min() >= 20
    # a bound hit in each direction at once (found by hypothesis)
    c = allocate({"s0": 2, "s1": 13}, 7, min_n=5, max_n=6)
    assert c.n.tolist() == [2, 5]
    b = allocate(SIZES, 100, max_n={"A": 30})
    assert b.as_dict()["A"] == 30 and b.n.sum() == 100
    with pytest.raises(ValueError, match="larger than the frame"):
        allocate(SIZES, 10001)
    with pytest.raises(ValueError, match="'B'"):
        allocate({"A": 10, "B": -1}, 5)
    with pytest.raises(ValueError, match="minimum"):
        allocate(SIZES, 10, min_n=5)
    with pytest.raises(ValueError, match="'D'"):
        allocate(SIZES, 10, method="neyman", sds={"A": 1, "B": 1, "C": 1})
    with pytest.raises(ValueError, match="method"):
        allocate(SIZES, 10, method="optimal")


# ------------------------------------------------------------ stratified SRS


def _frame() -> pd.DataFrame:
    rows = [(f"{k}{i}", k) for k, N in {"A": 50, "B": 30, "C": 20}.items() for i in range(N)]
    return pd.DataFrame(rows, columns=["uid", "street"])


def test_stratified_srs_reproducible_with_pi():
    f = _frame()
    s1 = stratified_srs(f, "street", {"A": 10, "B": 6, "C": 5}, seed=42, id_col="uid")
    s2 = stratified_srs(f, "street", {"A": 10, "B": 6, "C": 5}, seed=42, id_col="uid")
    s3 = stratified_srs(f, "street", {"A": 10, "B": 6, "C": 5}, seed=43, id_col="uid")
    assert s1.units["uid"].tolist() == s2.units["uid"].tolist()
    assert s1.units["uid"].tolist() != s3.units["uid"].tolist()
    assert s1.units["street"].value_counts().to_dict() == {"A": 10, "B": 6, "C": 5}
    pi = s1.units.groupby("street")["pi"].first().to_dict()
    assert pi == {"A": 10 / 50, "B": 6 / 30, "C": 5 / 20}
    # the weights add up to the frame size
    assert (1 / s1.units["pi"]).sum() == pytest.approx(100)
    # a total allocated proportionally
    s4 = stratified_srs(f, "street", 20, seed=1)
    assert s4.units["street"].value_counts().to_dict() == {"A": 10, "B": 6, "C": 4}


def test_stratified_srs_is_uniform_within_stratum():
    f = _frame()
    hits = np.zeros(len(f))
    for seed in range(400):
        s = stratified_srs(f, "street", {"A": 10, "B": 6, "C": 5}, seed=seed)
        hits[s.units.index.to_numpy()] += 1
    pi = f["street"].map({"A": 0.2, "B": 0.2, "C": 0.25}).to_numpy()
    # binomial(400, pi): 4.5 SD band per unit
    assert np.all(np.abs(hits / 400 - pi) < 4.5 * np.sqrt(pi * (1 - pi) / 400))


def test_stratified_srs_errors():
    f = _frame()
    with pytest.raises(ValueError, match="'district'"):
        stratified_srs(f, "district", 10, seed=1)
    with pytest.raises(ValueError, match=r"stratum 'C'.*larger"):
        stratified_srs(f, "street", {"A": 1, "C": 21}, seed=1)
    with pytest.raises(ValueError, match="stratum 'Z'"):
        stratified_srs(f, "street", {"Z": 1}, seed=1)
    with pytest.raises(ValueError, match="larger than the frame"):
        stratified_srs(f, "street", 101, seed=1)
    with pytest.raises(ValueError, match="seed"):
        stratified_srs(f, "street", 10, seed=1.5)
    g = f.copy()
    g.loc[3, "uid"] = g.loc[4, "uid"]
    with pytest.raises(ValueError, match="duplicate"):
        stratified_srs(g, "street", 10, seed=1, id_col="uid")


# ----------------------------------------------------------------------- PPS


SIZES_PSU = np.array([900, 40, 60, 120, 80, 300, 50, 75, 150, 30, 95, 200.0])


def test_pps_probabilities_and_certainty():
    pi, cert = pps_inclusion_probabilities(SIZES_PSU, 4)
    assert pi.sum() == pytest.approx(4.0, abs=1e-12)
    assert cert.tolist() == [True] + [False] * 11  # 900 > interval 2100/4
    rest = ~cert
    np.testing.assert_allclose(pi[rest], 3 * SIZES_PSU[rest] / SIZES_PSU[rest].sum())
    with pytest.raises(ValueError, match="negative"):
        pps_inclusion_probabilities([1, -2, 3], 1)
    with pytest.raises(ValueError, match="only 2"):
        pps_inclusion_probabilities([1, 0, 3], 3)


def test_systematic_pps_selection_frequencies():
    """Over 4,000 draws the selection frequency of each PSU matches π within
    4.5 binomial SDs; every draw has exactly n distinct PSUs."""
    R, n = 4000, 4
    pi, _ = pps_inclusion_probabilities(SIZES_PSU, n)
    hits = np.zeros(SIZES_PSU.size)
    for seed in range(R):
        sel, _, _ = systematic_pps(SIZES_PSU, n, np.random.default_rng(seed))
        assert sel.size == n and np.unique(sel).size == n
        hits[sel] += 1
    freq = hits / R
    sd = np.sqrt(pi * (1 - pi) / R)
    assert np.all(np.abs(freq - pi) <= 4.5 * sd + 1e-12)


def test_pps_sample_by_stratum_and_reproducible():
    f = pd.DataFrame({"street": [f"s{i}" for i in range(12)], "pop": SIZES_PSU,
                      "district": ["X"] * 6 + ["Y"] * 6})
    a = pps_sample(f, "pop", {"X": 2, "Y": 3}, seed=7, stratum="district")
    b = pps_sample(f, "pop", {"X": 2, "Y": 3}, seed=7, stratum="district")
    pd.testing.assert_frame_equal(a.units, b.units)
    assert a.units["district"].value_counts().to_dict() == {"X": 2, "Y": 3}
    assert a.units.loc[0, "certainty"]  # 900 of 1500 in X with n=2
    with pytest.raises(ValueError, match=r"'pop'.*negative"):
        pps_sample(f.assign(pop=-f["pop"]), "pop", 2, seed=1)
    with pytest.raises(ValueError, match="'size'"):
        pps_sample(f, "size", 2, seed=1)


def _two_stage_frames():
    psu = pd.DataFrame({"street": [f"s{i}" for i in range(12)], "pop": SIZES_PSU})
    units = pd.DataFrame({"street": np.repeat(psu["street"], (SIZES_PSU / 5).astype(int))})
    units["hh"] = np.arange(len(units))
    psu["pop"] = units["street"].value_counts().reindex(psu["street"]).to_numpy()
    return psu, units


def test_two_stage_sample():
    psu, units = _two_stage_frames()
    s = two_stage_sample(psu, units, "street", "pop", n_psu=4, m=5, seed=11)
    u = s.units
    assert u["street"].nunique() == 4
    assert (u.groupby("street").size() == 5).all()
    Mi = u["street"].map(units["street"].value_counts())
    np.testing.assert_allclose(u["pi2"], 5 / Mi)
    np.testing.assert_allclose(u["pi"], u["pi1"] * u["pi2"])
    pi1, cert = pps_inclusion_probabilities(psu["pop"], 4)
    exp = u["street"].map(dict(zip(psu["street"], pi1)))
    np.testing.assert_allclose(u["pi1"], exp)
    assert u.loc[u["street"] == "s0", "certainty"].all()
    # self-weighting at the PSU-size level: pi = 4 * 5 / N_total for non-certainty PSUs
    nc = ~u["certainty"]
    tot = psu["pop"][~cert].sum()
    np.testing.assert_allclose(u.loc[nc, "pi"], 3 * 5 / tot)
    again = two_stage_sample(psu, units, "street", "pop", n_psu=4, m=5, seed=11)
    pd.testing.assert_frame_equal(u, again.units)
    with pytest.raises(ValueError, match="'street'"):
        two_stage_sample(psu, units.rename(columns={"street": "x"}), "street", "pop", 4, 5, 1)


# -------------------------------------------------------------------- quotas


def test_quota_progress():
    q = quota_progress({"A": 10, "B": 5, "C": 0}, ["A"] * 4 + ["B"] * 6,
                       sampled={"A": 20, "B": 8, "C": 0})
    t = q.table
    assert t.loc["A", "completes"] == 4 and t.loc["A", "remaining"] == 6
    assert t.loc["B", "met"] and not t.loc["A", "met"] and t.loc["C", "met"]
    assert t.loc["A", "response_rate"] == pytest.approx(0.2)
    assert q.overall["completes"] == 10 and not q.all_met
    q2 = quota_progress(pd.Series({"A": 2}), {"A": 3})
    assert q2.all_met
    with pytest.raises(ValueError, match="'Z'"):
        quota_progress({"A": 1}, ["Z"])


@pytest.mark.parametrize(("m", "size", "expected"), [
    (10, 25, 10), (10, 7, 7), (10, 7.9, 7), (10, 0.5, 1), (10, None, 1), (0, 12, 1), (3, 3, 3)])
def test_second_stage_size_is_one_rule(m, size, expected) -> None:
    """m per cluster, at most the cluster's whole persons, at least one (draw and pi agree)."""
    assert second_stage_size(m, size) == expected


# ------------------------------------------------------ the design for estimation

TWO_STAGE = Path(__file__).parent / "data" / "two_stage"


def test_design_columns_one_stage() -> None:
    cols = design_columns(["A", "A", "B"], ["u1", "u2", "u3"], population=[10, 10, 4])
    assert cols.ssu is None and cols.fpc2 is None
    assert cols.strata.tolist() == ["A", "A", "B"] and cols.psu.tolist() == ["u1", "u2", "u3"]
    assert cols.fpc.tolist() == [10, 10, 4]
    with pytest.raises(ValueError, match="population: stratum 'A' has more than one value"):
        design_columns(["A", "A"], ["u1", "u2"], population=[10, 11])
    with pytest.raises(ValueError, match="stratum 'B' has 2 units but N_h = 1"):
        design_columns(["B", "B"], ["u1", "u2"], population=[1, 1])
    with pytest.raises(ValueError, match="population: a one-stage design needs N_h"):
        design_columns(["A"], ["u1"])
    with pytest.raises(ValueError, match="stratum: missing value at row 1"):
        design_columns(["A", None], ["u1", "u2"], population=[3, 3])


def test_design_columns_two_stage_certainty_and_fpc() -> None:
    # stratum A: clusters a1 (π1 .4) and a2 (π1 .6), a3 certainty; stratum B: b1, b2
    cols = design_columns(
        stratum=["A"] * 6 + ["B"] * 3, unit=[f"p{i}" for i in range(9)],
        psu=["a1", "a1", "a2", "a3", "a3", "a3", "b1", "b2", "b2"],
        pi1=[.4, .4, .6, 1, 1, 1, .5, .5, .5],
        certainty=[0, 0, 0, 1, 1, 1, 0, 0, 0],
        cluster_size=[20, 20, 5, 300, 300, 300, 8, 9, 9])
    assert cols.strata.tolist() == ["A", "A", "A", "A|a3", "A|a3", "A|a3", "B", "B", "B"]
    # f_h = mean π1 of the stratum's clusters: A .5 (fpc 2 / .5 = 4), B .5 (4)
    np.testing.assert_allclose(cols.fpc, [4, 4, 4, 1, 1, 1, 4, 4, 4])
    assert cols.fpc2.tolist() == [20, 20, 5, 300, 300, 300, 8, 9, 9]
    assert cols.ssu.tolist() == [f"p{i}" for i in range(9)]
    assert "certainty" in cols.estimator and "mean pi1" in cols.estimator


def test_design_columns_two_stage_errors() -> None:
    base = {"stratum": ["A", "A"], "unit": ["p1", "p2"], "psu": ["c1", "c1"],
            "pi1": [.5, .5], "certainty": [False, False], "cluster_size": [10, 10]}
    for change, message in [
        ({"pi1": [.5, .6]}, "pi1: PSU 'c1' has more than one value"),
        ({"stratum": ["A", "B"]}, "stratum: PSU 'c1' has more than one value"),
        ({"cluster_size": [1, 1]}, "cluster_size: PSU 'c1' has 2 respondents but a "
                                   "population of 1"),
        ({"pi1": [1.5, 1.5]}, "pi1: PSU 'c1' has a first-stage probability above 1"),
        ({"pi1": [0, 0]}, "pi1: 0.0 at row 0 is not a positive number"),
        ({"psu": ["c1", None]}, "psu: missing value at row 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            design_columns(**{**base, **change})
    with pytest.raises(ValueError, match=r"'A\|c1' is both a stratum and a certainty"):
        design_columns(stratum=["A", "A|c1"], unit=["p1", "p2"], psu=["c1", "c2"],
                       pi1=[1, .5], certainty=[True, False], cluster_size=[5, 5])


def test_design_columns_match_r() -> None:
    """The product's design of a two-stage PPS sample (one certainty street, a street
    with one respondent, nonresponse) against R's svydesign on the same draw, the
    design rebuilt in R from the draw alone (data/two_stage/two_stage.R).  Tolerance:
    1e-9 relative (floating point); R's pps="brewer" (per-street 1 - π1) within 1 %."""
    d = pd.read_csv(TWO_STAGE / "two_stage_sample.csv")
    r = pd.read_csv(TWO_STAGE / "two_stage_r.csv", keep_default_na=False)
    cols = design_columns(d["stratum"], d["person"], psu=d["street"], pi1=d["pi1"],
                          certainty=d["certainty"], cluster_size=d["size"])
    design = Design.from_arrays(d["weight"], lonely_psu="adjust", **cols.arrays())
    y = d["y"].to_numpy()
    ours = [survey_mean(design, y).table.iloc[0], survey_total(design, y).table.iloc[0],
            *[row for _i, row in survey_mean(design, y, by=d["group"]).table.iterrows()]]
    for name, tol in (("product", 1e-9), ("brewer", 1e-2)):
        ref = r[r["design"] == name]
        assert ref["group"].tolist() == ["", "", "a", "b"]
        np.testing.assert_allclose([o["estimate"] for o in ours], ref["estimate"], rtol=1e-12)
        np.testing.assert_allclose([o["se"] for o in ours], ref["se"], rtol=tol)
