"""Designs against R's ``survey``: lonely PSUs (every ``survey.lonely.psu`` option, with and
without ``survey.adjust.domain.lonely``), the degrees of freedom with zero-weight PSUs, the
JKn replicate variance with a lonely stratum, and the two-stage design with fpc at both
stages.

The reference numbers are R output committed with the R script that made them
(``data/r/lonely_api.R`` -> ``lonely_api.csv``, ``data/r/design_apiclus2.R`` ->
``design_apiclus2.csv``; R 4.2.2, survey 4.1-1, 17 significant digits).  Tolerance: 1e-6
relative on every estimate and SE (the agreement found is about 1e-13).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitoring.stats.design import Design, jackknife
from monitoring.stats.estimates import survey_mean, survey_total

DATA = Path(__file__).parent / "data"
R = DATA / "r"
RTOL = 1e-6


def _ref(name: str) -> pd.DataFrame:
    ref = pd.read_csv(R / name, dtype={"level": str, "by": str})
    ref[["by", "level"]] = ref[["by", "level"]].fillna("")
    return ref


def _ours(design: Design, stat: str, y: pd.Series, by: pd.Series | None) -> pd.DataFrame:
    fn = survey_mean if stat == "mean" else survey_total
    t = fn(design, y.to_numpy(dtype=float), by=by).table
    if by is None:
        return pd.DataFrame({"level": [""], "estimate": t["estimate"], "se": t["se"]})
    return pd.DataFrame({"level": t[by.name].astype(str), "estimate": t["estimate"],
                         "se": t["se"]})


def _check(ref_rows: pd.DataFrame, design, data: pd.DataFrame, label: str) -> int:
    """Compare every (stat, variable, by) row of ``ref_rows``; returns the rows checked."""
    checked = 0
    for (stat, var, by), rows in ref_rows.groupby(["stat", "variable", "by"]):
        groups = None if by == "" else data[by].astype(str).rename(by)
        got = _ours(design, stat, data[var], groups).set_index("level")
        for _, r in rows.iterrows():
            where = f"{label} {stat}({var}) by {by or '-'} {r['level']}"
            g = got.loc[r["level"]]
            assert g["estimate"] == pytest.approx(r["estimate"], rel=RTOL), where
            if np.isnan(r["se"]):
                assert np.isnan(g["se"]), where
            else:
                assert g["se"] == pytest.approx(r["se"], rel=RTOL), where
            checked += 1
    return checked


@pytest.fixture(scope="module")
def apiclus1() -> pd.DataFrame:
    return pd.read_csv(DATA / "apiclus1.csv")


@pytest.fixture(scope="module")
def one_h() -> pd.DataFrame:
    """apistrat with the high schools cut to the first one (rows chosen by the R script)."""
    s = pd.read_csv(DATA / "apistrat.csv")
    keep = pd.read_csv(R / "lonely_apistrat_rows.csv")["snum"]
    return s.set_index("snum").loc[keep].reset_index()


def _designs(apiclus1: pd.DataFrame, one_h: pd.DataFrame, opt: str, dl: bool):
    return {
        # R's tests/lonely.psu.R: schools stratified by district, 413 has one school
        "clus1_by_dnum": (Design.from_frame(apiclus1, "pw", strata="dnum", lonely_psu=opt,
                                            adjust_domain_lonely=dl), apiclus1),
        # a lonely stratum with an fpc (one of 755 high schools)
        "strat_one_h": (Design.from_frame(one_h, "pw", strata="stype", fpc="fpc",
                                          lonely_psu=opt, adjust_domain_lonely=dl), one_h),
        # districts (PSUs) in counties (strata), several counties with one district
        "clus1_dnum_in_cname": (Design.from_frame(apiclus1, "pw", strata="cname", psu="dnum",
                                                  lonely_psu=opt, adjust_domain_lonely=dl),
                                apiclus1),
    }


@pytest.mark.parametrize("dl", [False, True])
@pytest.mark.parametrize("opt", ["certainty", "remove", "adjust", "average"])
def test_lonely_psu_taylor_matches_r(apiclus1, one_h, opt, dl):
    """Means and totals (api00, enroll), overall and by domain, for each lonely-PSU option;
    with ``adjust_domain_lonely`` a PSU alone in its stratum within a domain is lonely too
    ("average" then gives NaN where every stratum of the domain is lonely, as R)."""
    ref = _ref("lonely_api.csv")
    designs = _designs(apiclus1, one_h, opt, dl)
    ref = ref[(ref["option"] == opt) & (ref["domain_lonely"] == dl) & ref["case"].isin(designs)]
    n = 0
    for case, (design, data) in designs.items():
        rows = ref[ref["case"] == case]
        assert len(rows) > 0
        n += _check(rows, design, data, f"{case} {opt} dl={dl}")
        assert design.df == rows["df"].iloc[0]
    assert n == len(ref)


def test_lonely_adjust_total_is_centred_at_zero(apiclus1):
    """R centres a lonely PSU at zero, not at the mean of the PSU totals: for a total the
    two differ (districts in counties: R 994,324; the grand-mean rule 776,338)."""
    ref = _ref("lonely_api.csv")
    r = ref[(ref["case"] == "clus1_dnum_in_cname") & (ref["option"] == "adjust")
            & ~ref["domain_lonely"] & (ref["stat"] == "total") & (ref["variable"] == "api00")
            & (ref["by"] == "")]
    d = Design.from_frame(apiclus1, "pw", strata="cname", psu="dnum", lonely_psu="adjust")
    got = survey_total(d, apiclus1["api00"]).se[0]
    assert got == pytest.approx(r["se"].iloc[0], rel=RTOL)
    t = (apiclus1["pw"] * apiclus1["api00"]).groupby(apiclus1["dnum"]).sum()
    county = apiclus1.groupby("dnum")["cname"].first()
    v_old = 0.0
    for _, th in t.groupby(county):
        if th.size == 1:
            v_old += (th.iloc[0] - t.mean()) ** 2
        else:
            v_old += th.size / (th.size - 1) * ((th - th.mean()) ** 2).sum()
    assert np.sqrt(v_old) < 0.8 * got   # 776,338: the rule this replaced


def test_remove_and_certainty_agree_as_in_r(apiclus1):
    """R's ``onestrat`` and ``jknweights`` treat "remove" and "certainty" alike."""
    ref = _ref("lonely_api.csv")
    ref = ref[ref["case"] != "clus1_zero_weight_psus"]
    a = ref[ref["option"] == "remove"].reset_index(drop=True)
    b = ref[ref["option"] == "certainty"].reset_index(drop=True)
    assert len(a) == len(b) == 144
    np.testing.assert_array_equal(a["se"], b["se"])


@pytest.mark.parametrize("opt", ["certainty", "remove", "average"])
@pytest.mark.parametrize("mse", [True, False])
@pytest.mark.parametrize("dense", [True, False])
def test_lonely_psu_jackknife_matches_r(apiclus1, one_h, opt, mse, dense):
    """JKn with a lonely stratum: it has no replicate (no dummy one in the mean of the
    replicates when ``mse=False``); "average" scales by #PSUs / #replicates."""
    ref = _ref("lonely_api.csv")
    tag = "mse" if mse else "nomse"
    n = 0
    for case in ("clus1_by_dnum", "strat_one_h"):
        design, data = _designs(apiclus1, one_h, opt, False)[case]
        rows = ref[(ref["case"] == f"{case}_jkn_{tag}") & (ref["option"] == opt)]
        assert len(rows) > 0
        rep = jackknife(design, mse=mse, dense=dense)
        assert rep.rscales.size == design.psu_stratum.size - 1   # no replicate for the lonely PSU
        n += _check(rows, rep, data, f"{case} JKn {opt} mse={mse}")
    assert n > 0


def test_degrees_of_freedom_count_psus_with_weight(apiclus1):
    """R's ``degf``: PSUs with a non-zero weight minus strata with one; the zero-weight
    PSUs still count in n_h for the variance (R's ``fpc$sampsize``)."""
    ref = _ref("lonely_api.csv")
    rows = ref[ref["case"] == "clus1_zero_weight_psus"]
    z = apiclus1.assign(pw0=np.where(apiclus1["dnum"].isin([61, 135]), 0.0, apiclus1["pw"]))
    d = Design.from_frame(z, "pw0", psu="dnum", fpc="fpc", lonely_psu="certainty")
    assert d.df == rows["df"].iloc[0] == 12
    assert Design.from_frame(z, "pw", psu="dnum", fpc="fpc").df == 14
    assert _check(rows, d, z, "zero-weight PSUs") == 4


def test_calibrated_design_has_no_domain_lonely_psus(apiclus1):
    """A calibrated design keeps every row in a domain (R's ``[.survey.design2``), so
    ``adjust_domain_lonely`` changes nothing there; it does for the uncalibrated one."""
    from monitoring.stats.calibration import poststratify

    by = apiclus1["stype"]
    base = {dl: Design.from_frame(apiclus1, "pw", strata="cname", psu="dnum",
                                  lonely_psu="adjust", adjust_domain_lonely=dl)
            for dl in (False, True)}
    plain = [survey_mean(base[dl], apiclus1["api00"], by=by).se for dl in (False, True)]
    assert np.abs(plain[0] / plain[1] - 1).max() > 1e-3
    totals = apiclus1.groupby("stype")["pw"].sum() * 1.1
    cal = [survey_mean(poststratify(base[dl], by, totals), apiclus1["api00"], by=by).se
           for dl in (False, True)]
    np.testing.assert_allclose(cal[0], cal[1], rtol=1e-14)


# ------------------------------------------------------------------ two stages


@pytest.fixture(scope="module")
def apiclus2() -> pd.DataFrame:
    s = pd.read_csv(DATA / "apiclus2.csv")
    extra = pd.read_csv(R / "design_apiclus2_extra.csv")
    assert (extra["snum"].to_numpy() == s["snum"].to_numpy()).all()
    s["stype"] = extra["stype"].to_numpy()
    s["high"] = np.where(s["api00"] >= 700, "TRUE", "FALSE")
    s["m"] = s.groupby("dnum")["snum"].transform("size")
    # the districts with one sampled school: one of two (R script: fpc2b)
    s["fpc2b"] = np.where(s["m"] == 1, 2, s["fpc2"])
    return s


def _two_stage(s: pd.DataFrame, fpc2: str, opt: str) -> Design:
    """R's svydesign(id=~dnum+snum, fpc=~fpc1+fpc2) without weights: w = N1/n1 * N2/m."""
    w = s["fpc1"] / s["dnum"].nunique() * s[fpc2] / s["m"]
    return Design.from_arrays(w, psu=s["dnum"], fpc=s["fpc1"], ssu=s["snum"], fpc2=s[fpc2],
                              lonely_psu=opt)


def test_two_stage_fpc_both_stages_matches_r(apiclus2):
    """apiclus2 with fpc at both stages: mean and total of api00 and enroll (6 missing),
    overall and for a domain that cuts across districts."""
    ref = _ref("design_apiclus2.csv")
    d = _two_stage(apiclus2, "fpc2", "fail")
    np.testing.assert_allclose(d.weights, apiclus2["pw"], rtol=1e-12)
    rows = ref[ref["case"] == "clus2"]
    assert _check(rows, d, apiclus2, "clus2") == len(rows) == 12


@pytest.mark.parametrize("opt", ["certainty", "remove", "adjust"])
def test_two_stage_lonely_second_stage_unit_matches_r(apiclus2, opt):
    """Ten districts with one sampled school of two: "certainty"/"remove" drop their
    second-stage term, "adjust" adds (1 - f2) t² (the school's total centred at zero)."""
    ref = _ref("design_apiclus2.csv")
    d = _two_stage(apiclus2, "fpc2b", opt)
    rows = ref[(ref["case"] == "clus2_lonely_ssu") & (ref["option"] == opt)]
    assert _check(rows, d, apiclus2, f"clus2 lonely SSU {opt}") == len(rows) == 12
    for bad in ("fail", "average"):   # R: stops / gives NaN
        with pytest.raises(ValueError, match="single sampled second-stage unit"):
            _two_stage(apiclus2, "fpc2b", bad)


def test_lonely_psu_option_is_checked():
    with pytest.raises(ValueError, match="lonely_psu must be one of"):
        Design.from_arrays(np.ones(3), lonely_psu="drop")
