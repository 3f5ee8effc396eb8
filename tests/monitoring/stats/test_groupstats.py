"""``learningcity groupstats`` agrees with R's survey package on the California API data.

Every reference number below is R output published by others; none is computed with
our code.  Sources (data provenance: tests/monitoring/stats/data/README.md):

[A] cran/survey, tests/api.Rout.save -- ``example(api)`` run and saved by the survey
    package itself (printed to 5 significant digits)::

        dstrat <- svydesign(id=~1, strata=~stype, weights=~pw, data=apistrat, fpc=~fpc)
        svymean(~api00, dstrat)                     662.29   SE 9.4089
        svytotal(~enroll, dstrat, na.rm=TRUE)       3687178  SE 114642
        dclus1 <- svydesign(id=~dnum, weights=~pw, data=apiclus1, fpc=~fpc)
        svymean(~api00, dclus1)                     644.17   SE 23.542
        svytotal(~enroll, dclus1, na.rm=TRUE)       3404940  SE 932235
        dclus2 <- svydesign(id=~dnum+snum, fpc=~fpc1+fpc2, data=apiclus2)
        svymean(~api00, dclus2)                     670.81   SE 30.099
        svytotal(~enroll, dclus2, na.rm=TRUE)       2639273  SE 799638
        dclus2wr <- svydesign(id=~dnum+snum, weights=~pw, data=apiclus2)
        svymean(~api00, dclus2wr)                   670.81   SE 30.712
        svytotal(~enroll, dclus2wr, na.rm=TRUE)     2639273  SE 820261

[B] xKDR/Survey.jl, test/r_reference/*.csv, written by test/r_reference/
    generate_fixtures.R with R 4.6.1 and survey 4.5 (15 significant digits).  Designs::

        d_strat_fpc <- svydesign(id=~1, strata=~stype, fpc=~fpc, data=apistrat)
        d_clus1_w   <- svydesign(id=~dnum, weights=~pw, data=apiclus1)
        d_clus1_fpc <- svydesign(id=~dnum, fpc=~fpc, data=apiclus1)
        est_basic.csv:   svymean / svytotal of api00 and enroll
        proportions.csv: svymean(~stype|~awards) (factor shares)
        domain.csv:      svyby(~api00, ~cname|~awards, d, svymean|svytotal)
        confint.csv:     confint(svymean(~api00, d), df=degf(d))
        jackknife_parity.csv: as.svrepdesign(d_clus1_w, "JK1", mse=TRUE),
                              as.svrepdesign(d_strat_w, "JKn", mse=TRUE)

    Without ``weights=``, R takes the weights from the fpc (N_h / n_h); the tests give
    the CLI that same weight column.

[C] cran/survey, tests/deff.Rout.save (design effect, Tsuchiya's example)::

        des.srs <- svydesign(ids=~1, weights=~srs.w, data=kigyo)
        svymean(~uriage, des.srs, deff=TRUE)    113.700  SE 35.626  DEff 1.0101
        svytotal(~uriage, des.srs, deff=TRUE)   113700   SE 35626   DEff 1.0101

[D] cran/survey, tests/lonely.psu.Rout.save (single-PSU strata; see the test).

Agreement is checked to 4 significant digits (half a unit of the 4th digit of the
reference) everywhere, and to 1e-7 relative where the reference has 15 digits.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from learningcity.cli import main
from monitoring.stats.design import Design, jackknife
from monitoring.stats.estimates import survey_mean
from monitoring.stats.groupstats import (
    OUTPUT_COLUMNS,
    GroupStatsError,
    compute_groupstats,
    read_margins,
)
from monitoring.stats.suppression import MIN_N
from tabular.reading import TableError

DATA = Path(__file__).parent / "data"


def sig(ours: float, ref: float, digits: int = 4) -> bool:
    """True when ``ours`` equals ``ref`` to ``digits`` significant digits."""
    if ref == 0:
        return abs(ours) < 1e-9
    unit = 10 ** (math.floor(math.log10(abs(ref))) - digits + 1)
    return abs(ours - ref) <= 0.5 * unit


def check(ours: float, ref: float, rtol: float | None = None) -> None:
    assert sig(ours, ref), f"{ours!r} differs from R's {ref!r} in the first 4 digits"
    if rtol is not None:
        assert ours == pytest.approx(ref, rel=rtol)


@pytest.fixture(scope="module")
def apistrat() -> pd.DataFrame:
    d = pd.read_csv(DATA / "apistrat.csv")
    d["w_fpc"] = d["fpc"] / d.groupby("stype")["snum"].transform("size")
    return d


@pytest.fixture(scope="module")
def apiclus1() -> pd.DataFrame:
    d = pd.read_csv(DATA / "apiclus1.csv")
    d["w_fpc"] = d["fpc"] / d["dnum"].nunique()
    return d


def run(tmp_path: Path, frame: pd.DataFrame, *args: str, name: str = "in.csv",
        expect_ok: bool = True) -> tuple[pd.DataFrame | None, object]:
    """Run ``learningcity groupstats`` on ``frame`` written as CSV; read the output."""
    src = tmp_path / name
    if name.endswith(".xlsx"):
        frame.to_excel(src, index=False)
    else:
        frame.to_csv(src, index=False)
    out = tmp_path / "out.csv"
    if expect_ok and out.exists():
        out.unlink()
    res = CliRunner().invoke(main, ["groupstats", str(src), *args, "--out", str(out)])
    if expect_ok:
        assert res.exit_code == 0, res.output
        raw = out.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf"), "output must be UTF-8 with BOM"
        return pd.read_csv(out, encoding="utf-8-sig", keep_default_na=False,
                           dtype={"reason": str}), res
    return None, res


NO_SUPPRESSION = ("--min-n", "0", "--max-rse", "1e9", "--proportion-rule", "rse")


# ------------------------------------------------------------ [A] api.Rout.save


def test_cli_stratified_with_fpc_matches_published_dstrat(tmp_path, apistrat):
    t, _ = run(tmp_path, apistrat, "--value", "api00", "--weight", "pw", "--strata", "stype",
               "--fpc", "fpc")
    assert list(t.columns) == list(OUTPUT_COLUMNS)
    row = t.iloc[0]
    check(row["estimate"], 662.29)
    check(row["se"], 9.4089)
    assert row["n"] == 200 and row["suppressed"] == 0
    t, _ = run(tmp_path, apistrat, "--value", "enroll", "--stat", "total", "--weight", "pw",
               "--strata", "stype", "--fpc", "fpc")
    check(t["estimate"].iloc[0], 3687178)
    check(t["se"].iloc[0], 114642)


def test_cli_one_stage_cluster_matches_published_dclus1(tmp_path, apiclus1):
    t, _ = run(tmp_path, apiclus1, "--value", "api00", "--weight", "pw", "--psu", "dnum",
               "--fpc", "fpc")
    check(t["estimate"].iloc[0], 644.17)
    check(t["se"].iloc[0], 23.542)
    t, _ = run(tmp_path, apiclus1, "--value", "enroll", "--stat", "total", "--weight", "pw",
               "--psu", "dnum", "--fpc", "fpc")
    check(t["estimate"].iloc[0], 3404940)
    check(t["se"].iloc[0], 932235)


def test_cli_two_stage_with_replacement_matches_published_dclus2wr(tmp_path):
    c2 = pd.read_csv(DATA / "apiclus2.csv")
    assert c2["enroll"].isna().sum() == 6       # R's na.rm=TRUE drops them as a domain
    t, _ = run(tmp_path, c2, "--value", "api00", "--weight", "pw", "--psu", "dnum")
    check(t["estimate"].iloc[0], 670.81)
    check(t["se"].iloc[0], 30.712)
    t, _ = run(tmp_path, c2, "--value", "enroll", "--stat", "total", "--weight", "pw",
               "--psu", "dnum")
    check(t["estimate"].iloc[0], 2639273)
    check(t["se"].iloc[0], 820261)
    assert t["n"].iloc[0] == 120


def test_cli_two_stage_with_fpc_at_both_stages_matches_published_dclus2(tmp_path):
    """R's weights for dclus2 come from the fpcs: 757/40 x fpc2/m, which is ``pw``."""
    c2 = pd.read_csv(DATA / "apiclus2.csv")
    m = c2.groupby("dnum")["snum"].transform("size")
    np.testing.assert_allclose(c2["pw"], 757 / 40 * c2["fpc2"] / m, rtol=1e-12)
    two = ("--weight", "pw", "--psu", "dnum", "--fpc", "fpc1", "--ssu", "snum",
           "--fpc2", "fpc2")
    t, _ = run(tmp_path, c2, "--value", "api00", *two)
    check(t["estimate"].iloc[0], 670.81)
    check(t["se"].iloc[0], 30.099)
    t, _ = run(tmp_path, c2, "--value", "enroll", "--stat", "total", *two)
    check(t["estimate"].iloc[0], 2639273)
    check(t["se"].iloc[0], 799638)
    _, res = run(tmp_path, c2, "--value", "api00", "--weight", "pw", "--psu", "dnum",
                 "--ssu", "snum", "--fpc2", "fpc2", expect_ok=False)
    assert res.exit_code == 1 and "need --psu and --fpc" in res.output


# --------------------------------------------- [B] survey 4.5, 15-digit fixtures


EST_BASIC = {  # est_basic.csv: (design, variable, stat) -> (est, se)
    ("strat_fpc", "api00", "mean"): (662.287363577655, 9.408940879434),
    ("strat_fpc", "api00", "total"): (4102207.93, 58278.9798072143),
    ("strat_fpc", "enroll", "mean"): (595.282131094607, 18.5085106862115),
    ("strat_fpc", "enroll", "total"): (3687177.52, 114641.715190394),
    ("clus1_w", "api00", "mean"): (644.169398907104, 23.7790107208869),
    ("clus1_w", "api00", "total"): (3989985.46570206, 907398.705597438),
    ("clus1_w", "enroll", "total"): (3404940.13452911, 941610.74091198),
    ("clus1_fpc", "api00", "mean"): (644.169398907105, 23.5422406937812),
    ("clus1_fpc", "api00", "total"): (5949162.06666667, 1339481.29924731),
    ("clus1_fpc", "enroll", "mean"): (549.715846994537, 45.1913723435604),
    ("clus1_fpc", "enroll", "total"): (5076845.73333333, 1389984.3264506),
}

DESIGNS = {  # design -> (fixture, CLI design options)
    "strat_fpc": ("apistrat", ("--weight", "w_fpc", "--strata", "stype", "--fpc", "fpc")),
    "clus1_w": ("apiclus1", ("--weight", "pw", "--psu", "dnum")),
    "clus1_fpc": ("apiclus1", ("--weight", "w_fpc", "--psu", "dnum", "--fpc", "fpc")),
}


@pytest.mark.parametrize("key", sorted(EST_BASIC), ids="-".join)
def test_cli_means_and_totals_match_survey_4_5(tmp_path, request, key):
    design, var, stat = key
    fixture, opts = DESIGNS[design]
    frame = request.getfixturevalue(fixture)
    t, _ = run(tmp_path, frame, "--value", var, "--stat", stat, *opts)
    est, se = EST_BASIC[key]
    check(t["estimate"].iloc[0], est, rtol=1e-7)
    check(t["se"].iloc[0], se, rtol=1e-7)


PROPORTIONS = {  # proportions.csv: (design, variable, level) -> (mean_est, mean_se)
    ("strat_fpc", "awards", "Yes"): (0.638936067161769, 0.0344059182016133),
    ("strat_fpc", "awards", "No"): (0.36106393283823, 0.0344059182016133),
    ("clus1_fpc", "stype", "E"): (0.78688524590164, 0.0463365536499119),
    ("clus1_fpc", "stype", "H"): (0.0765027322404373, 0.0268102190507709),
    ("clus1_fpc", "stype", "M"): (0.136612021857924, 0.0296490466402603),
    ("clus1_w", "awards", "Yes"): (0.710382513661203, 0.0333503726041141),
}


@pytest.mark.parametrize("key", sorted(PROPORTIONS), ids="-".join)
def test_cli_proportions_match_survey_4_5(tmp_path, request, key):
    design, var, level = key
    fixture, opts = DESIGNS[design]
    t, _ = run(tmp_path, request.getfixturevalue(fixture), "--value", var, "--stat",
               "proportion", "--level", level, *opts, *NO_SUPPRESSION)
    est, se = PROPORTIONS[key]
    check(t["estimate"].iloc[0], est, rtol=1e-7)
    check(t["se"].iloc[0], se, rtol=1e-7)


DOMAIN_MEANS = {  # domain.csv: svyby(~api00, ~by, d, svymean), svyby(..., svytotal)
    "clus1_fpc": ("cname", {
        "Los Angeles": (647.266666666666, 17.2495860301136, 489980.866666667, 428979.922861841),
        "San Diego": (659.436363636363, 2.2968004951743, 1830375.53333333, 1275533.04454272),
        "Santa Clara": (732.076923076923, 15.772923782601, 960582.533333333, 627035.544140536),
        "Alameda": (669.0, 0.0, 371384.2, 367686.289765936),
        "Kern": (452.5, 0.0, 45672.3333333333, 45217.5692673152),
    }),
    "clus1_w": ("cname", {
        "Los Angeles": (647.266666666667, 17.4230693023744, 328620.487148285, 290601.912061673),
        "San Diego": (659.436363636363, 2.31989997506545, 1227596.70907211, 864078.531156204),
        "Santa Clara": (732.076923076923, 15.9315559043315, 644243.727714539, 424769.828019567),
    }),
    "strat_fpc": ("awards", {
        "No": (633.734912337968, 15.3347711842501, 1417303.77, 142752.682431189),
        "Yes": (678.422405668124, 11.8566310509714, 2684904.16, 152042.166199407),
    }),
}


@pytest.mark.parametrize("design", sorted(DOMAIN_MEANS))
def test_cli_domains_match_svyby(tmp_path, request, design):
    """Domains are subpopulations of the whole design (svyby), not subsets of rows."""
    by, ref = DOMAIN_MEANS[design]
    fixture, opts = DESIGNS[design]
    frame = request.getfixturevalue(fixture)
    means, _ = run(tmp_path, frame, "--value", "api00", "--by", by, *opts, *NO_SUPPRESSION)
    totals, _ = run(tmp_path, frame, "--value", "api00", "--stat", "total", "--by", by, *opts,
                    *NO_SUPPRESSION)
    assert list(means.columns) == [by, *OUTPUT_COLUMNS]
    assert len(means) == frame[by].nunique()
    m, t = means.set_index(by), totals.set_index(by)
    for label, (mean, mean_se, total, total_se) in ref.items():
        check(m.loc[label, "estimate"], mean, rtol=1e-7)
        check(t.loc[label, "estimate"], total, rtol=1e-7)
        check(t.loc[label, "se"], total_se, rtol=1e-7)
        if mean_se > 1e-6:
            check(m.loc[label, "se"], mean_se, rtol=1e-7)
        else:  # R prints 0 (or 1e-13): one PSU holds the whole domain
            assert m.loc[label, "se"] < 1e-9 * mean


def test_domain_estimate_is_not_a_subset_design(apiclus1):
    """Rows outside the domain stay in the design: re-running on the subset of rows
    gives a different SE, and only the full-design SE is R's svyby value."""
    sub = apiclus1[apiclus1["cname"] == "Los Angeles"]
    naive = survey_mean(Design.from_frame(sub, "w_fpc", psu="dnum", fpc="fpc",
                                          lonely_psu="certainty"), sub["api00"]).se[0]
    assert not sig(naive, 17.2495860301136)


def test_t_interval_matches_confint_with_degf(tmp_path, apistrat, apiclus1):
    """confint.csv: confint(svymean(~api00, d), level=0.95, df=degf(d))."""
    t, _ = run(tmp_path, apistrat, "--value", "api00", *DESIGNS["strat_fpc"][1])
    check(t["ci_low"].iloc[0], 643.732188539262, rtol=1e-7)
    check(t["ci_high"].iloc[0], 680.842538616048, rtol=1e-7)
    t, _ = run(tmp_path, apiclus1, "--value", "api00", *DESIGNS["clus1_w"][1])
    check(t["ci_low"].iloc[0], 593.168493261091, rtol=1e-7)
    check(t["ci_high"].iloc[0], 695.170304553117, rtol=1e-7)
    t, _ = run(tmp_path, apiclus1, "--value", "api00", "--ci", "normal", *DESIGNS["clus1_w"][1])
    check(t["ci_low"].iloc[0], 597.563394306174, rtol=1e-7)
    check(t["ci_high"].iloc[0], 690.775403508034, rtol=1e-7)


def test_jackknife_matches_as_svrepdesign(tmp_path, apiclus1):
    """jackknife_parity.csv: JK1 on d_clus1_w and JKn on d_strat_w (mse=TRUE)."""
    t, _ = run(tmp_path, apiclus1, "--value", "api00", "--weight", "pw", "--psu", "dnum",
               "--replicates", "jackknife")
    check(t["estimate"].iloc[0], 644.169398907104, rtol=1e-7)
    check(t["se"].iloc[0], 26.5997137220988, rtol=1e-7)
    t, _ = run(tmp_path, apiclus1, "--value", "api00", "--stat", "total", "--weight", "pw",
               "--psu", "dnum", "--replicates", "jackknife")
    check(t["se"].iloc[0], 907398.705597438, rtol=1e-7)
    strat = pd.read_csv(DATA / "apistrat.csv")
    t, _ = run(tmp_path, strat, "--value", "api00", "--weight", "pw", "--strata", "stype",
               "--replicates", "jackknife")
    check(t["estimate"].iloc[0], 662.287363159321, rtol=1e-7)
    check(t["se"].iloc[0], 9.53613229692521, rtol=1e-7)


# ------------------------------------------------------------ [C] deff.Rout.save


def test_design_effect_matches_published_deff(tmp_path):
    k = pd.read_csv(DATA / "kigyo.csv")
    t, _ = run(tmp_path, k, "--value", "uriage", "--weight", "srs.w", *NO_SUPPRESSION)
    check(t["estimate"].iloc[0], 113.700)
    check(t["se"].iloc[0], 35.626)
    check(t["deff"].iloc[0], 1.0101)
    t, _ = run(tmp_path, k, "--value", "uriage", "--stat", "total", "--weight", "srs.w",
               *NO_SUPPRESSION)
    check(t["estimate"].iloc[0], 113700)
    check(t["se"].iloc[0], 35626)
    check(t["deff"].iloc[0], 1.0101)


# ------------------------------------------------------------ suppression, output


def test_small_cells_are_suppressed_with_the_default_of_30(tmp_path, apiclus1):
    t, res = run(tmp_path, apiclus1, "--value", "api00", "--weight", "pw", "--psu", "dnum",
                 "--fpc", "fpc", "--by", "cname")
    assert MIN_N == 30
    t = t.set_index("cname")
    small = t[t["n"] < 30]
    assert len(small) == 9 and (small["suppressed"] == 1).all()
    assert (small["reason"] == "small_n").all()
    for c in ("estimate", "se", "ci_low", "ci_high", "deff"):
        assert (small[c] == "").all(), c
    big = t.loc["San Diego"]
    assert big["suppressed"] == 0 and big["reason"] == ""
    check(float(big["estimate"]), 659.436363636363)
    assert "9 suppressed" in res.output
    # the threshold is configurable
    t2, _ = run(tmp_path, apiclus1, "--value", "api00", "--weight", "pw", "--psu", "dnum",
                "--fpc", "fpc", "--by", "cname", "--min-n", "10")
    assert (t2["suppressed"] == (t2["n"] < 10).astype(int)).all()


def test_high_relative_standard_error_is_flagged_or_suppressed(tmp_path, apiclus1):
    # the share of high schools judged as a mean (--proportion-rule rse):
    # RSE 0.0268 / 0.0765 = 0.35 > 0.30
    args = ("--value", "stype", "--stat", "proportion", "--level", "H", "--weight", "pw",
            "--psu", "dnum", "--fpc", "fpc", "--proportion-rule", "rse")
    t, _ = run(tmp_path, apiclus1, *args)
    row = t.iloc[0]
    assert row["suppressed"] == 0 and row["reason"] == "high_rse"
    check(float(row["estimate"]), 0.0765027322404373)
    t, _ = run(tmp_path, apiclus1, *args, "--rse-action", "suppress")
    assert t["suppressed"].iloc[0] == 1 and t["estimate"].iloc[0] == ""
    t, _ = run(tmp_path, apiclus1, *args, "--max-rse", "0.5")
    assert t["reason"].iloc[0] == ""
    # by default a proportion follows the NCHS standard, not the RSE: its Korn-Graubard
    # interval is 1.65 times p wide (> 1.30), so it is withheld, whatever --max-rse says
    t, _ = run(tmp_path, apiclus1, *args[:-2], "--max-rse", "0.5")
    assert t["suppressed"].iloc[0] == 1 and t["reason"].iloc[0] == "nchs_rel_width"
    assert t["estimate"].iloc[0] == ""


def test_xlsx_input_gives_the_same_table(tmp_path, apistrat):
    args = ("--value", "api00", "--weight", "pw", "--strata", "stype", "--fpc", "fpc",
            "--by", "awards")
    a, _ = run(tmp_path, apistrat, *args)
    b, _ = run(tmp_path, apistrat, *args, name="in.xlsx")
    pd.testing.assert_frame_equal(a, b)


def test_crossed_domains_and_missing_labels(tmp_path, apistrat):
    frame = apistrat.copy()
    frame["awards"] = frame["awards"].astype(object)
    frame.loc[:4, "awards"] = ""                 # no domain label: in the design, no domain
    t, _ = run(tmp_path, frame, "--value", "api00", "--weight", "pw", "--strata", "stype",
               "--fpc", "fpc", "--by", "stype", "--by", "awards", *NO_SUPPRESSION)
    assert list(t.columns[:2]) == ["stype", "awards"] and len(t) == 6
    assert t["n"].sum() == 195
    # a domain of a whole stratum: the stratum mean and its SRS standard error with fpc
    e = frame[frame["stype"] == "E"]
    direct = compute_groupstats(e.astype(str), "api00", "pw", strata="stype", fpc="fpc",
                                min_n=0, max_rse=None)
    both = compute_groupstats(frame.astype(str), "api00", "pw", strata="stype", fpc="fpc",
                              by=("stype",), min_n=0, max_rse=None).set_index("stype")
    assert both.loc["E", "se"] == pytest.approx(direct["se"].iloc[0], rel=1e-12)


def test_group_labels_that_look_like_formulas_are_written_as_text(tmp_path, apistrat):
    """CSV injection: a --by label starting with = + - @ gets the shared guard's
    apostrophe (tabular.guard), so a spreadsheet shows it as text."""
    from tabular.guard import unguard_cell

    frame = apistrat.copy()
    labels = {"E": '=HYPERLINK("http://evil.example","x")', "H": "@SUM(A1)", "M": "-high"}
    frame["stype"] = frame["stype"].map(labels)
    t, _ = run(tmp_path, frame, "--value", "api00", "--weight", "pw", "--strata", "stype",
               "--fpc", "fpc", "--by", "stype", *NO_SUPPRESSION)
    written = sorted(t["stype"])
    assert written == sorted("'" + v for v in labels.values())
    assert sorted(unguard_cell(v) for v in written) == sorted(labels.values())


def test_numeric_group_codes_are_in_numeric_order(tmp_path, apiclus1):
    t, _ = run(tmp_path, apiclus1, "--value", "api00", "--weight", "pw", "--psu", "dnum",
               "--by", "dnum", *NO_SUPPRESSION)
    assert t["dnum"].tolist() == sorted(apiclus1["dnum"].unique())
    assert t["dnum"].tolist()[:3] == [61, 135, 178]


def test_jackknife_without_dense_replicates_equals_dense(apiclus1):
    d = Design.from_frame(apiclus1, "pw", psu="dnum", fpc="fpc")
    by = apiclus1["stype"]
    a = survey_mean(jackknife(d), apiclus1["api00"], by=by).table
    b = survey_mean(jackknife(d, dense=False), apiclus1["api00"], by=by).table
    assert jackknife(d, dense=False).replicates is None
    np.testing.assert_allclose(b["se"], a["se"], rtol=1e-12)


# ------------------------------------------------------------------- bad input


@pytest.mark.parametrize("change, args, message", [
    (None, ("--weight", "nope"), "no column 'nope' (--weight)"),
    (None, ("--weight", "pw", "--by", "region"), "no column 'region' (--by)"),
    (("api00", 7, "high"), ("--weight", "pw"), "row 9, column 'api00': 'high' is not a number"),
    (("pw", 3, "-2"), ("--weight", "pw"), "row 5, column 'pw': negative weight '-2'"),
    (("pw", 0, ""), ("--weight", "pw"), "row 2, column 'pw': a value is required"),
    (("fpc", 9, "999"), ("--weight", "pw", "--strata", "stype", "--fpc", "fpc"),
     "row 11, column 'fpc': '999' differs from 4421"),
    (("stype", 2, ""), ("--weight", "pw", "--strata", "stype"),
     "row 4, column 'stype': a label is required"),
])
def test_bad_input_names_file_row_column_and_writes_nothing(tmp_path, change, args, message):
    frame = pd.read_csv(DATA / "apistrat.csv", dtype=str)
    if change is not None:
        col, i, v = change
        frame.loc[i, col] = v
    out = tmp_path / "out.csv"
    out.write_text("previous results\n")
    _, res = run(tmp_path, frame, "--value", "api00", *args, expect_ok=False)
    assert res.exit_code == 1
    assert "in.csv" in res.output and message in res.output, res.output
    assert out.read_text() == "previous results\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_lonely_psu_options_match_published_r(tmp_path, apiclus1):
    """[D] cran/survey, tests/lonely.psu.Rout.save: apiclus1 stratified by dnum, where
    stratum 413 has a single school::

        ds <- svydesign(id=~1, weights=~pw, strata=~dnum, data=apiclus1)
        options(survey.lonely.psu="fail");  svymean(~api00, ds)  -> error (stratum 413)
        "remove" / "certainty": 644.17 SE 5.8058 (also with as.svrepdesign(ds))
        "adjust": 644.17 SE 5.8281
        fpc <- ifelse(apiclus1$dnum==413, 1, 1000)  # 413 is a certainty stratum
        svymean(~api00, svydesign(..., fpc=fpc))     -> 644.17 SE 5.7344 (any option)
    """
    args = ("--value", "api00", "--weight", "pw", "--strata", "dnum")
    _, res = run(tmp_path, apiclus1, *args, expect_ok=False)
    assert res.exit_code == 1
    assert "stratum '413'" in res.output and "single PSU" in res.output
    assert "survey.lonely.psu='fail'" in res.output and "--lonely-psu adjust" in res.output
    ref = {"remove": 5.8058, "certainty": 5.8058, "adjust": 5.8281}
    for opt, se in ref.items():
        t, _ = run(tmp_path, apiclus1, *args, "--lonely-psu", opt)
        check(t["estimate"].iloc[0], 644.17)
        check(t["se"].iloc[0], se)
        if opt != "adjust":
            t, _ = run(tmp_path, apiclus1, *args, "--lonely-psu", opt, "--replicates",
                       "jackknife")
            check(t["se"].iloc[0], se)
    frame = apiclus1.assign(f=np.where(apiclus1["dnum"] == 413, 1, 1000))
    for extra in ((), ("--replicates", "jackknife")):
        t, _ = run(tmp_path, frame, *args, "--fpc", "f", *extra)
        check(t["se"].iloc[0], 5.7344)


def test_proportion_without_level_needs_0_1(tmp_path, apistrat):
    _, res = run(tmp_path, apistrat, "--value", "api00", "--stat", "proportion", "--weight",
                 "pw", expect_ok=False)
    assert res.exit_code == 1 and "row 2, column 'api00': '840' is not 0 or 1" in res.output
    with pytest.raises(GroupStatsError, match="--level only applies"):
        compute_groupstats(apistrat.astype(str), "api00", "pw", level="1")


# ------------------------------------------------------------ the one table reader


def test_file_is_read_by_tabular_with_the_files_row_numbers(tmp_path):
    """Blank rows are skipped but rows keep their numbers in the file; GBK is read; every
    ragged row is named at once, in tabular's error type."""
    from monitoring.stats.groupstats import read_table
    from tabular.reading import TableError

    src = tmp_path / "gbk.csv"
    src.write_bytes("区县,w\r\n\r\n东湖,1\r\n\r\n西山,x\r\n".encode("gbk"))
    df = read_table(src)
    assert list(df.columns) == ["区县", "w"] and list(df.index) == [3, 5]
    with pytest.raises(GroupStatsError, match=r"gbk.csv: row 5, column 'w': 'x' is not a"):
        compute_groupstats(df, "w", "w", source=str(src))
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,w\n1,2\n3\n4,5,6\n", encoding="utf-8")
    with pytest.raises(TableError) as caught:
        read_table(ragged)
    assert [(p.row, p.column) for p in caught.value.problems] == [(3, None), (4, None)]
    res = CliRunner().invoke(main, ["groupstats", str(ragged), "--value", "a", "--weight",
                                    "w", "--out", str(tmp_path / "out.csv")])
    assert res.exit_code == 1 and "ragged.csv: row 4: 3 values" in res.output
    assert not (tmp_path / "out.csv").exists()


def test_quoted_and_plain_files_give_the_same_frame(tmp_path, apistrat):
    """A plain CSV is split by pandas, one with quoted cells by tabular's csv reader: the
    text cells, the file's row numbers and the group tables are the same."""
    from monitoring.stats.groupstats import read_table
    from tabular import reading

    plain, quoted = tmp_path / "plain.csv", tmp_path / "quoted.csv"
    apistrat.to_csv(plain, index=False)
    header, first, *rest = plain.read_text(encoding="utf-8").splitlines()
    quoted_first = ",".join(f'"{cell}"' for cell in first.split(","))
    quoted.write_text("\n".join([header, "", quoted_first, *rest]) + "\n", encoding="utf-8")
    assert reading._fast_frame(plain.read_bytes(), "plain.csv", max_rows=None, required=(),
                               max_bytes=reading.MAX_BYTES, encodings=reading.ENCODINGS,
                               unguard=False, check_header=True,
                               strict_width=True) is not None
    fast, slow = read_table(plain), read_table(quoted)
    assert list(fast.index[:2]) == [2, 3] and list(slow.index[:2]) == [3, 4]
    pd.testing.assert_frame_equal(fast.reset_index(drop=True), slow.reset_index(drop=True))
    args = ["--value", "api00", "--weight", "pw", "--strata", "stype", "--fpc", "fpc",
            "--by", "stype"]
    outs = []
    for path in (plain, quoted):
        out = tmp_path / (path.stem + "_out.csv")
        res = CliRunner().invoke(main, ["groupstats", str(path), *args, "--out", str(out)])
        assert res.exit_code == 0, res.output
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


# ------------------------------------ calibration and proportion intervals vs R (files)
#
# tests/monitoring/stats/data/r/groupstats_api.R (R 4.2.2, survey 4.1-1, 17 digits) on
# apiclus1, dclus1 = svydesign(ids=~dnum, weights=~pw, fpc=~fpc): uncalibrated,
# postStratify(~stype) to the population counts E 4421, H 755, M 1018, rake(~stype,
# ~awards) to those and awards No 2027, Yes 4167 (data(apipop)), and JK1 replicates
# post-stratified; svymean with confint(df=), svyciprop logit/beta/mean, overall and
# svyby stype/awards, on the design's df or the domain's.  Tolerance 1e-6 relative.

R_DIR = DATA / "r"
MARGINS_STYPE = R_DIR / "groupstats_margins_stype.csv"
MARGINS_RAKE = R_DIR / "groupstats_margins_stype_awards.csv"
R_GROUPSTATS = pd.read_csv(R_DIR / "groupstats_api.csv", keep_default_na=False,
                           dtype={"by": str, "domain": str})
CLUS1 = ("--weight", "pw", "--psu", "dnum", "--fpc", "fpc")
R_CASES = {  # R design -> groupstats options
    "clus1": (),
    "ps_stype": ("--calibrate", str(MARGINS_STYPE)),
    "rake": ("--calibrate", str(MARGINS_RAKE)),
    "jk1_ps": ("--calibrate", str(MARGINS_STYPE), "--replicates", "jackknife"),
}
R_VALUES = {  # R's variable -> groupstats options
    "api00": ("--value", "api00"),
    "hi700": ("--value", "hi700", "--stat", "proportion"),
    "awards=Yes": ("--value", "awards", "--stat", "proportion", "--level", "Yes"),
}
R_RUNS = sorted(R_GROUPSTATS.groupby(["case", "stat", "variable", "by", "ci_method",
                                      "df_method"]).groups)


@pytest.fixture(scope="module")
def clus1_hi700() -> pd.DataFrame:
    d = pd.read_csv(DATA / "apiclus1.csv")
    d["hi700"] = (d["api00"] >= 700).astype(int)   # R: I(api00 >= 700)
    return d


def r_options(case: str, stat: str, variable: str, by: str, ci_method: str,
              df_method: str) -> list[str]:
    """The command line for one R run; --df only when it is not the default (design for
    the whole population, domain with --by), so the defaults are checked too."""
    args = [*CLUS1, *R_CASES[case], *R_VALUES[variable], *NO_SUPPRESSION]
    if stat == "proportion":
        args += ["--ci-method", ci_method]
    if by:
        args += ["--by", by]
    if df_method != ("domain" if by else "design"):
        args += ["--df", df_method]
    return args


@pytest.mark.parametrize("key", R_RUNS, ids=lambda k: "-".join(x or "all" for x in k))
def test_calibrated_estimates_and_intervals_match_r(tmp_path, clus1_hi700, key):
    ref = R_GROUPSTATS[(R_GROUPSTATS[["case", "stat", "variable", "by", "ci_method",
                                      "df_method"]] == pd.Series(key, index=[
                                          "case", "stat", "variable", "by", "ci_method",
                                          "df_method"])).all(axis=1)]
    t, _ = run(tmp_path, clus1_hi700, *r_options(*key))
    by = key[3]
    if by:
        t = t.assign(domain=t[by].astype(str)).set_index("domain").loc[ref["domain"]]
    assert len(t) == len(ref)
    assert (t["n"].to_numpy() == ref["n"].to_numpy()).all()
    for col in ("estimate", "se", "ci_low", "ci_high"):
        np.testing.assert_allclose(t[col].astype(float), ref[col], rtol=1e-6, atol=0,
                                   err_msg=f"{col} of {key}")


def test_r_reference_covers_what_it_should():
    """The fixture checks something: calibration changes the SEs well beyond 1e-6, the
    domain df differs from the design's, and the Korn-Graubard rows of calibrated
    domains (R's svyciprop uses n = 183 there) and of domains on the design's df
    (svyciprop's beta ignores df=) are svyciprop's formula with the domain's n and the
    df asked for, while the uncalibrated domains on their own df are svyciprop's own."""
    r = R_GROUPSTATS.set_index(["case", "stat", "variable", "by", "domain", "ci_method",
                                "df_method"])
    se = r["se"]
    whole = ("mean", "api00", "", "", "wald", "design")
    assert abs(se[("ps_stype", *whole)] / se[("clus1", *whole)] - 1) > 0.01
    assert abs(se[("rake", *whole)] / se[("ps_stype", *whole)] - 1) > 0.01
    dom = r.xs("domain", level="df_method")["df"]
    assert (dom < 14).any() and (r.xs("design", level="df_method")["df"] == 14).all()
    kg = R_GROUPSTATS[R_GROUPSTATS["source"] == "kg_formula"]
    assert (kg["ci_method"] == "beta").all() and (kg["by"] != "").all()
    assert {"ps_stype", "rake"} <= set(kg["case"]) and "design" in set(kg["df_method"])
    own = R_GROUPSTATS[(R_GROUPSTATS["case"] == "clus1") & (R_GROUPSTATS["by"] != "")
                       & (R_GROUPSTATS["ci_method"] == "beta")
                       & (R_GROUPSTATS["df_method"] == "domain")]
    assert len(own) == 8 and (own["source"] == "svyciprop").all()
    assert len(R_RUNS) == 96 and len(R_GROUPSTATS) == 210


@pytest.mark.parametrize("variable, by, reasons", [
    ("hi700", "awards", ["nchs_n_eff", "nchs_width"]),
    ("awards=Yes", "stype", ["", "nchs_n_eff", "nchs_n_eff"]),
])
def test_proportions_follow_the_nchs_standard_by_default(tmp_path, clus1_hi700, variable,
                                                         by, reasons):
    """Without --proportion-rule rse the reasons are the NCHS standard's on R's domain
    df and n: every cell the rule withholds is empty, the others keep R's numbers."""
    from monitoring.stats.suppression import nchs_proportions

    key = ("ps_stype", "proportion", variable, by, "logit", "domain")
    ref = R_GROUPSTATS.set_index(["case", "stat", "variable", "by", "ci_method",
                                  "df_method"]).loc[key]
    t, _ = run(tmp_path, clus1_hi700, *CLUS1, *R_CASES["ps_stype"], *R_VALUES[variable],
               "--by", by, "--min-n", "10")    # logit and the domain df: the defaults
    t = t.set_index(by).loc[ref["domain"]]
    rule = nchs_proportions(ref["estimate"], ref["se"], ref["n"], ref["df"])
    assert list(rule["reason"]) == reasons
    assert list(t["reason"]) == reasons
    assert list(t["suppressed"]) == list(rule["suppressed"].astype(int))
    shown = ~rule["suppressed"].to_numpy()
    assert (t["estimate"][~shown] == "").all()
    np.testing.assert_allclose(t["estimate"][shown].astype(float),
                               ref["estimate"][shown], rtol=1e-6)
    # the same cells under --ci normal: the rule still uses the t df (R's degf)
    value, level = ("awards", "Yes") if variable == "awards=Yes" else (variable, None)
    normal = compute_groupstats(clus1_hi700.astype(str), value, "pw", stat="proportion",
                                level=level, by=(by,), psu="dnum", fpc="fpc", min_n=10,
                                ci="normal", calibrate=read_margins(MARGINS_STYPE))
    assert list(normal["reason"]) == list(rule["reason"])
    assert list(normal["df"]) == list(ref["df"])


def test_lonely_psu_average_matches_r(tmp_path, apiclus1):
    """lonely_api.csv (lonely_api.R): apiclus1 stratified by dnum (413 has one school),
    options(survey.lonely.psu = "average"), svymean(~api00) overall and by stype."""
    ref = pd.read_csv(R_DIR / "lonely_api.csv", dtype={"by": str, "level": str}).fillna(
        {"by": "", "level": ""})
    ref = ref[(ref["case"] == "clus1_by_dnum") & (ref["option"] == "average")
              & ~ref["domain_lonely"] & (ref["stat"] == "mean") & (ref["variable"] == "api00")]
    args = ("--value", "api00", "--weight", "pw", "--strata", "dnum", "--lonely-psu",
            "average", *NO_SUPPRESSION)
    t, _ = run(tmp_path, apiclus1, *args)
    whole = ref[ref["by"] == ""].iloc[0]
    np.testing.assert_allclose(t["se"], [whole["se"]], rtol=1e-9)
    t, _ = run(tmp_path, apiclus1, *args, "--by", "stype")
    dom = ref[ref["by"] == "stype"].set_index("level")
    np.testing.assert_allclose(t.set_index("stype").loc[dom.index, "se"], dom["se"], rtol=1e-9)


# ---------------------------------------------------------------- bad margins files


def write_margins(tmp_path: Path, text: str, name: str = "margins.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


STYPE_ROWS = "variable,level,total\nstype,E,4421\nstype,H,755\nstype,M,1018\n"


def first_row(frame: pd.DataFrame, col: str, value: str) -> int:
    """The file row (header = 1) of the first respondent with ``col == value``."""
    return int(np.argmax(frame[col].to_numpy() == value)) + 2


@pytest.mark.parametrize("text, extra, message", [
    ("variable,level,total\nschool_type,E,4421\n", (),
     "margins.csv: row 2, column 'variable': 'school_type' is not a column of"),
    ("variable,level,total\nstype,E,4421\nstype,H,755\n", (),
     "margins.csv: column 'level': no total for 'stype' level 'M' ({data} row {M}, column "
     "'stype', has it); 'stype' is on rows 2-3"),
    ("variable,level,total\nstype,E,4421\nstype,H,many\nstype,M,1018\n", (),
     "margins.csv: row 3, column 'total': 'many' is not a number"),
    ("variable,level,total\nstype,E,4421\nstype,H,755\nstype,M,-5\n", (),
     "margins.csv: row 4, column 'total': '-5' is not a population count"),
    ("variable,level,total\nstype,E,4421\nstype,H,\nstype,M,1018\n", (),
     "margins.csv: row 3, column 'total': empty: give the population count"),
    (STYPE_ROWS + "stype,E,4421\n", (),
     "margins.csv: row 5, column 'level': duplicate: 'stype' level 'E' is also on row 2"),
    (STYPE_ROWS + "stype,X,10\n", (),
     "margins.csv: row 5, column 'level': no respondent in {data} has 'stype' = 'X'"),
    (STYPE_ROWS + "awards,No,2027\nawards,Yes,4168\n", (),
     "margins.csv: row 5, column 'total': 'awards' (rows 5-6) totals 6195, but 'stype' "
     "(rows 2-4) totals 6194: raking needs margins of the same grand total"),
    (STYPE_ROWS + "awards,No,2027\nawards,Yes,4167\n", ("--calibrate-method", "poststratify"),
     "margins.csv: --calibrate-method poststratify with several variables (stype, awards)"),
    ("variable,level\nstype,E\n", (),
     "margins.csv: row 1, column 'total': column not found"),
    ("variable,level,total,note\nstype,E,4421,x\n", (),
     "margins.csv: row 1, column 'note': unknown column"),
    ("variable,level,total\n", (), "margins.csv: no data rows"),
])
def test_bad_margins_file_names_file_row_column_and_writes_nothing(tmp_path, apiclus1, text,
                                                                   extra, message):
    margins = write_margins(tmp_path, text)
    out = tmp_path / "out.csv"
    out.write_text("previous results\n")
    _, res = run(tmp_path, apiclus1, "--value", "api00", *CLUS1, "--calibrate", str(margins),
                 *extra, expect_ok=False)
    data = str(tmp_path / "in.csv")
    expected = message.format(data=data, M=first_row(apiclus1, "stype", "M"))
    assert res.exit_code == 1
    assert expected in res.output, res.output
    assert str(margins) in res.output
    assert out.read_text() == "previous results\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_every_margins_problem_is_listed_at_once(tmp_path):
    margins = write_margins(tmp_path, "variable,level,total\nstype,,1\n,E,x\nstype,H,-1\n")
    with pytest.raises(TableError) as caught:
        read_margins(margins)
    assert [(p.row, p.column) for p in caught.value.problems] == [
        (2, "level"), (3, "variable"), (3, "total"), (4, "total")]


def test_calibration_needs_every_respondents_level(tmp_path, apiclus1):
    frame = apiclus1.astype(str)
    frame.loc[6, "stype"] = ""
    with pytest.raises(GroupStatsError, match=r"in.csv: row 8, column 'stype': empty, but "
                                              r"--calibrate needs every respondent's 'stype'"):
        compute_groupstats(frame, "api00", "pw", psu="dnum", fpc="fpc", source="in.csv",
                           calibrate=read_margins(MARGINS_STYPE))


@pytest.mark.parametrize("kwargs, message", [
    ({"calibrate_method": "rake"}, "--calibrate-method needs --calibrate"),
    ({"ci_method": "beta"}, "--ci-method beta is for --stat proportion"),
    ({"df_method": "psu"}, "--df must be one of design, domain"),
    ({"proportion_rule": "none"}, "--proportion-rule must be one of nchs, rse"),
])
def test_option_errors(apiclus1, kwargs, message):
    with pytest.raises(GroupStatsError, match=message):
        compute_groupstats(apiclus1.astype(str), "api00", "pw", psu="dnum", **kwargs)


def test_a_margin_with_zero_total_and_no_respondent_is_accepted(tmp_path, apiclus1):
    """A level nobody in the population has (total 0) needs no respondent; a level in
    the margins only is otherwise refused (above).  Raking to one variable is
    post-stratification: the same table."""
    margins = write_margins(tmp_path, STYPE_ROWS + "stype,X,0\n")
    a, _ = run(tmp_path, apiclus1, "--value", "api00", *CLUS1, "--calibrate", str(margins))
    b, _ = run(tmp_path, apiclus1, "--value", "api00", *CLUS1, "--calibrate",
               str(MARGINS_STYPE), "--calibrate-method", "rake")
    ref = R_GROUPSTATS[(R_GROUPSTATS["case"] == "ps_stype") & (R_GROUPSTATS["by"] == "")
                       & (R_GROUPSTATS["stat"] == "mean")].iloc[0]
    for t in (a, b):
        np.testing.assert_allclose(t[["estimate", "se"]].iloc[0].astype(float),
                                   ref[["estimate", "se"]].astype(float), rtol=1e-6)


def test_margins_as_xlsx_and_a_calibrated_jackknife_too_big(tmp_path, apiclus1, monkeypatch):
    """A margins workbook is read like the CSV (same reader); a calibrated jackknife
    beyond MAX_REPLICATE_CELLS (the dense n x #PSUs weights) is refused, not attempted."""
    from monitoring.stats import groupstats

    xlsx = tmp_path / "margins.xlsx"
    pd.read_csv(MARGINS_STYPE).to_excel(xlsx, index=False)
    args = ("--value", "api00", "--by", "awards", *CLUS1, *NO_SUPPRESSION)
    a, _ = run(tmp_path, apiclus1, *args, "--calibrate", str(MARGINS_STYPE))
    b, _ = run(tmp_path, apiclus1, *args, "--calibrate", str(xlsx))
    pd.testing.assert_frame_equal(a, b)
    monkeypatch.setattr(groupstats, "MAX_REPLICATE_CELLS", 183 * 15 - 1)
    _, res = run(tmp_path, apiclus1, *args, "--calibrate", str(xlsx), "--replicates",
                 "jackknife", expect_ok=False)
    assert res.exit_code == 1 and "needs the 183 x 15 replicate weights" in res.output
