"""Calibrated designs against R's ``survey``: post-stratification, raking, linear (GREG)
calibration and trimming, with Taylor and replicate (JK1/JKn) variances, and
``trim_and_recalibrate``.

The reference numbers are R output committed with the R script that made them
(``data/r/calib_api.R`` -> ``calib_api.csv``, ``calib_trim_weights.csv``, population totals
``calib_totals.csv`` from ``data(apipop)``; R 4.2.2, survey 4.1-1, 17 significant digits).
Tolerance: 1e-6 relative on every estimate, SE and weight (the agreement found is about
1e-13; raking is run to 1e-13 on both sides, R with ``control=list(epsilon=1e-13)``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitoring.stats import calibration as C
from monitoring.stats.design import Design, ReplicateDesign, jackknife
from monitoring.stats.estimates import survey_mean, survey_total

DATA = Path(__file__).parent / "data"
R = DATA / "r"
RTOL = 1e-6


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    r = pd.read_csv(R / "calib_api.csv", dtype={"level": str, "by": str})
    r[["by", "level"]] = r[["by", "level"]].fillna("")
    return r


@pytest.fixture(scope="module")
def margins() -> dict[str, pd.Series]:
    t = pd.read_csv(R / "calib_totals.csv")
    return {v: g.set_index("level")["total"] for v, g in t.groupby("variable")}


@pytest.fixture(scope="module")
def apiclus1() -> pd.DataFrame:
    return pd.read_csv(DATA / "apiclus1.csv")


@pytest.fixture(scope="module")
def apistrat() -> pd.DataFrame:
    return pd.read_csv(DATA / "apistrat.csv")


def _check(ref: pd.DataFrame, case: str, design, data: pd.DataFrame) -> int:
    """Every estimate and SE of ``case`` (overall and by domain) within RTOL of R's."""
    rows = ref[ref["case"] == case]
    assert len(rows) > 0, case
    for (stat, var, by), grp in rows.groupby(["stat", "variable", "by"]):
        fn = survey_mean if stat == "mean" else survey_total
        t = fn(design, data[var], by=None if by == "" else data[by]).table
        got = t.set_index(t[by].astype(str)) if by else t.assign(level="").set_index("level")
        for _, r in grp.iterrows():
            g = got.loc[r["level"]]
            where = f"{case}: {stat}({var}) by {by or '-'} {r['level']}"
            assert g["estimate"] == pytest.approx(r["estimate"], rel=RTOL), where
            assert g["se"] == pytest.approx(r["se"], rel=RTOL), where
    return len(rows)


def _clus1(apiclus1: pd.DataFrame) -> Design:
    return Design.from_frame(apiclus1, "pw", psu="dnum", fpc="fpc")


def _strat(apistrat: pd.DataFrame) -> Design:
    return Design.from_frame(apistrat, "pw", strata="stype", fpc="fpc")


def _linear_x(data: pd.DataFrame) -> pd.DataFrame:
    """R's model.matrix(~stype + awards)."""
    return pd.DataFrame({"(Intercept)": 1.0, "stypeH": (data["stype"] == "H") * 1.0,
                         "stypeM": (data["stype"] == "M") * 1.0,
                         "awardsYes": (data["awards"] == "Yes") * 1.0})


def _linear_totals(margins: dict[str, pd.Series]) -> pd.Series:
    s = margins["stype"]
    return pd.Series({"(Intercept)": s.sum(), "stypeH": s["H"], "stypeM": s["M"],
                      "awardsYes": margins["awards"]["Yes"]})


def _calibrated(d, data: pd.DataFrame, margins: dict[str, pd.Series]) -> dict[str, object]:
    both = {"stype": margins["stype"], "awards": margins["awards"]}
    return {
        "ps_stype": C.poststratify(d, data["stype"], margins["stype"]),
        "rake": C.rake(d, data, both, tol=1e-13, max_iter=1000),
        "linear": C.calibrate(d, _linear_x(data), _linear_totals(margins)),
        "ps_then_rake": C.rake(C.poststratify(d, data["awards"], margins["awards"]), data,
                               both, tol=1e-13, max_iter=1000),
    }


def test_taylor_calibrated_designs_match_r(ref, margins, apiclus1):
    """apiclus1 (15 districts of 757, fpc): post-stratified on stype (E 4421, H 755,
    M 1018), raked on stype + awards, GREG on ~stype + awards, and post-stratified on
    awards then raked: mean and total of api00 and enroll, overall and by awards."""
    d = _clus1(apiclus1)
    assert _check(ref, "clus1_uncalibrated", d, apiclus1) == 12
    cal = _calibrated(d, apiclus1, margins)
    names = {"ps_stype": "clus1_ps_stype", "rake": "clus1_rake_stype_awards",
             "linear": "clus1_linear_stype_awards", "ps_then_rake": "clus1_ps_awards_then_rake"}
    for key, case in names.items():
        assert _check(ref, case, cal[key], apiclus1) == 12
    # the calibrated total SE is far below the uncalibrated one (issue 14: 2.5x apart)
    se_fixed = survey_total(d, apiclus1["api00"]).se[0]
    assert survey_total(cal["ps_stype"], apiclus1["api00"]).se[0] < se_fixed / 2.5


def test_calibrated_weights_match_r(margins, apiclus1):
    w = pd.read_csv(R / "calib_trim_weights.csv")
    cal = _calibrated(_clus1(apiclus1), apiclus1, margins)
    for key, case in (("rake", "clus1_rake_stype_awards"),
                      ("linear", "clus1_linear_stype_awards")):
        np.testing.assert_allclose(cal[key].weights, w.loc[w["case"] == case, "weight"],
                                   rtol=RTOL)


def test_stratified_design_post_stratified_across_strata_matches_r(ref, margins, apistrat):
    d = C.poststratify(_strat(apistrat), apistrat["awards"], margins["awards"])
    assert _check(ref, "strat_ps_awards", d, apistrat) == 16


@pytest.mark.parametrize("mse", [True, False])
@pytest.mark.parametrize("dense", [True, False])
def test_replicate_designs_recalibrated_match_r(ref, margins, apiclus1, apistrat, mse, dense):
    """JK1 (apiclus1) and JKn (apistrat) replicate designs, post-stratified and raked
    replicate by replicate as R's postStratify/rake on a svyrep.design."""
    tag = "mse" if mse else "nomse"
    r1 = jackknife(_clus1(apiclus1), mse=mse, dense=dense)
    assert r1.kind == "JK1"
    assert _check(ref, f"clus1_jk1_{tag}", r1, apiclus1) == 12
    both = {"stype": margins["stype"], "awards": margins["awards"]}
    ps = C.poststratify(r1, apiclus1["stype"], margins["stype"])
    assert isinstance(ps, ReplicateDesign) and ps.base is None
    assert _check(ref, f"clus1_jk1_ps_stype_{tag}", ps, apiclus1) == 12
    rk = C.rake(r1, apiclus1, both, tol=1e-13, max_iter=1000)
    assert _check(ref, f"clus1_jk1_rake_{tag}", rk, apiclus1) == 12
    rs = jackknife(_strat(apistrat), mse=mse, dense=dense)
    assert _check(ref, f"strat_jkn_ps_awards_{tag}",
                  C.poststratify(rs, apistrat["awards"], margins["awards"]), apistrat) == 16
    # every replicate meets the margins
    for col in ("stype", "awards"):
        got = pd.DataFrame(rk.replicates).groupby(apiclus1[col].to_numpy()).sum()
        for k, v in both[col].items():
            np.testing.assert_allclose(got.loc[k], v, rtol=1e-10)


def test_trim_weights_matches_r(ref, margins, apiclus1, apistrat):
    """R's trimWeights(strict=TRUE): the trimmed amount is shared out additively; the
    post-stratification stays recorded for the variance, as in R."""
    w = pd.read_csv(R / "calib_trim_weights.csv")
    ps = C.poststratify(_clus1(apiclus1), apiclus1["stype"], margins["stype"])
    tr = C.trim_weights(ps, upper=38)
    np.testing.assert_allclose(tr.weights, w.loc[w["case"] == "clus1_ps_stype_trim38",
                                                 "weight"], rtol=RTOL)
    assert tr.calibration == ps.calibration
    assert _check(ref, "clus1_ps_stype_trim38", tr, apiclus1) == 12
    st = C.trim_weights(_strat(apistrat), upper=40, lower=20)
    np.testing.assert_allclose(st.weights, w.loc[w["case"] == "strat_trim_20_40", "weight"],
                               rtol=RTOL)
    assert _check(ref, "strat_trim_20_40", st, apistrat) == 16
    rk = C.rake(_clus1(apiclus1), apiclus1, {"stype": margins["stype"],
                                              "awards": margins["awards"]}, tol=1e-13)
    t35 = C.trim_weights(rk, upper=35)
    np.testing.assert_allclose(t35.weights, w.loc[w["case"] == "clus1_rake_trim35", "weight"],
                               rtol=RTOL)
    assert _check(ref, "clus1_rake_trim35", t35, apiclus1) == 12
    one = C.trim_weights(_strat(apistrat), upper=40, lower=20, strict=False)
    np.testing.assert_allclose(one.weights,
                               w.loc[w["case"] == "strat_trim_20_40_onepass", "weight"],
                               rtol=RTOL)


def test_domain_units_outside_contribute_their_fitted_part(margins, apiclus1):
    """The calibrated domain variance equals a dense reference: R's svyrecvar on the
    (n, G) matrix of linearised values, residualised with explicit loops."""
    d = C.poststratify(_clus1(apiclus1), apiclus1["stype"], margins["stype"])
    y = apiclus1["enroll"].to_numpy(dtype=float)
    by = apiclus1["awards"].to_numpy()
    w = d.weights
    est = survey_mean(d, y, by=by)
    step = d.calibration[0]
    se = []
    for level in sorted(set(by)):
        inside = by == level
        ybar = (w * y)[inside].sum() / w[inside].sum()
        x = np.where(inside, w * (y - ybar) / w[inside].sum(), 0.0)
        for c in np.unique(step.cells):
            m = step.cells == c
            x[m] -= step.weights[m] * (x[m] * step.oldweights[m] / step.weights[m]).sum() \
                / step.oldweights[m].sum()
        t = pd.Series(x).groupby(apiclus1["dnum"].to_numpy()).sum().to_numpy()
        n = t.size
        se.append(np.sqrt((1 - n / 757) * n / (n - 1) * ((t - t.mean()) ** 2).sum()))
    np.testing.assert_allclose(est.se, se, rtol=1e-12)


def test_poststratify_errors_name_the_cell(margins, apiclus1):
    d = _clus1(apiclus1)
    with pytest.raises(ValueError, match="'M'"):
        C.poststratify(d, apiclus1["stype"], margins["stype"].drop("M"))
    with pytest.raises(ValueError, match="183 units"):
        C.poststratify(d, apiclus1["stype"].iloc[:10], margins["stype"])
    # a replicate that lost every unit of a cell: the H schools of one district
    small = apiclus1[(apiclus1["stype"] != "H") | (apiclus1["dnum"] == apiclus1.loc[
        apiclus1["stype"] == "H", "dnum"].iloc[0])].reset_index(drop=True)
    rep = jackknife(_clus1(small))
    with pytest.raises(ValueError, match="post-stratum \\['H'\\] has zero weight in replicate"):
        C.poststratify(rep, small["stype"], margins["stype"])


def test_calibrate_errors(margins, apiclus1):
    d = _clus1(apiclus1)
    X = _linear_x(apiclus1)
    with pytest.raises(ValueError, match="calfun 'logit'"):
        C.calibrate(d, X, _linear_totals(margins), calfun="logit")
    with pytest.raises(ValueError, match="'awardsYes'"):
        C.calibrate(d, X, _linear_totals(margins).drop("awardsYes"))
    with pytest.raises(ValueError, match="collinear"):
        C.calibrate(d, X.assign(again=X["stypeH"]), [*_linear_totals(margins), 755.0])
    with pytest.raises(ValueError, match="'stype' is not numeric"):
        C.calibrate(d, apiclus1[["stype"]], [1.0])


def test_jackknife_of_a_calibrated_design_is_refused(margins, apiclus1):
    d = C.poststratify(_clus1(apiclus1), apiclus1["stype"], margins["stype"])
    with pytest.raises(ValueError, match="calibrated"):
        jackknife(d)


# --------------------------------------------------------- trim and recalibrate


def test_trim_and_recalibrate_holds_margins_and_cap(margins, apiclus1):
    """Raking to stype + awards (weights 30.2-55.7), capping at 54: the margins hold to
    1e-8 and no weight is above the cap (plain trimming after raking breaks them)."""
    both = {"stype": margins["stype"], "awards": margins["awards"]}
    d = _clus1(apiclus1)
    res = C.trim_and_recalibrate(d, apiclus1, both, upper=54.0)
    assert res.weights.max() <= 54.0 and res.max_error <= 1e-8 and res.n_trimmed > 0
    for col, tot in both.items():
        got = pd.Series(res.weights).groupby(apiclus1[col].to_numpy()).sum()
        for k, v in tot.items():
            assert got[k] == pytest.approx(v, rel=1e-8)
    once = C.trim_weights(C.rake(d, apiclus1, both), upper=54.0)
    off = pd.Series(once.weights).groupby(apiclus1["stype"].to_numpy()).sum()
    assert abs(off["H"] / both["stype"]["H"] - 1) > 1e-3
    assert isinstance(res.design, Design) and isinstance(res.design.calibration[-1], C.Raking)
    np.testing.assert_array_equal(res.design.weights, res.weights)
    assert np.isfinite(survey_mean(res.design, apiclus1["api00"]).se[0])
    # weights instead of a design; the same answer
    plain = C.trim_and_recalibrate(apiclus1["pw"], apiclus1, both, upper=54.0)
    assert plain.design is None
    np.testing.assert_allclose(plain.weights, res.weights, rtol=1e-12)
    # a replicate design: every replicate capped and calibrated
    assert C.rake(jackknife(d), apiclus1, both).replicates.max() > 78.0
    rep = C.trim_and_recalibrate(jackknife(d), apiclus1, both, upper=77.0)
    assert rep.design.replicates.max() <= 77.0
    got = pd.DataFrame(rep.design.replicates).groupby(apiclus1["stype"].to_numpy()).sum()
    np.testing.assert_allclose(got.loc["H"], both["stype"]["H"], rtol=1e-8)


def test_trim_and_recalibrate_names_the_margin_it_cannot_meet(margins, apiclus1):
    both = {"stype": margins["stype"], "awards": margins["awards"]}
    # 14 high schools capped at 50 make at most 700 < 755
    with pytest.raises(ValueError, match="margin 'stype': category 'H' has 14 units"):
        C.trim_and_recalibrate(apiclus1["pw"], apiclus1, both, upper=50.0)
    # replicate 10 keeps 10 of the 14 high schools: 10 x 74 < 755
    with pytest.raises(ValueError, match="replicate 10: margin 'stype': category 'H' has 10"):
        C.trim_and_recalibrate(jackknife(_clus1(apiclus1)), apiclus1, both, upper=74.0)
    with pytest.raises(ValueError, match="'nope' not in data"):
        C.trim_and_recalibrate(apiclus1["pw"], apiclus1, {"nope": {"a": 1.0}}, upper=50.0)
