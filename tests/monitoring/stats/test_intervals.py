"""Intervals for proportions (logit, Korn-Graubard, Wald), domain degrees of freedom and
the precomputed domain partition, against R's survey package.

The R outputs are committed next to the scripts that made them
(``tests/monitoring/stats/data/r/ci_*.R``, ``df_*.R``; R 4.2.2, survey 4.1.1, mitools),
so the tests do not need R.  Tolerance: 1e-6 relative for every R number (R's logistic
fit converges to about 1e-12; the rest is closed form).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from monitoring.stats.design import Design, jackknife
from monitoring.stats.estimates import (
    domains,
    korn_graubard,
    proportion_interval,
    survey_mean,
    survey_proportion,
    survey_ratio,
    survey_total,
)
from monitoring.stats.imputation import proficiency_shares, pv_estimate

DATA = Path(__file__).parent / "data"
R = DATA / "r"
RTOL = 1e-6


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(DATA / f"api{name}.csv", keep_default_na=False,
                              na_values=[""])
            for name in ("clus1", "strat", "clus2")}


def _designs(frames: dict[str, pd.DataFrame]) -> dict[str, tuple[pd.DataFrame, object]]:
    c1, st, c2 = frames["clus1"], frames["strat"], frames["clus2"]
    return {
        "clus1": (c1, Design.from_frame(c1, "pw", psu="dnum", fpc="fpc")),
        "strat": (st, Design.from_frame(st, "pw", strata="stype", fpc="fpc")),
        "clus1_jk1": (c1, jackknife(Design.from_frame(c1, "pw", psu="dnum"), mse=True)),
        "clus2": (c2, Design.from_arrays(c2["pw"], psu=c2["dnum"], fpc=c2["fpc1"],
                                         ssu=c2["snum"], fpc2=c2["fpc2"])),
    }


# the R expressions of ci_svyciprop.R, on the same columns
VARIABLES = {
    'I(stype == "H")': lambda f: f["stype"] == "H",
    "I(api00 < 412)": lambda f: f["api00"] < 412,
    'I(awards == "Yes")': lambda f: f["awards"] == "Yes",
    "I(api00 < 450)": lambda f: f["api00"] < 450,
    "I(api00 < 600)": lambda f: f["api00"] < 600,
}
METHODS = {"logit": "logit", "beta": "beta", "mean": "wald"}

SVYCIPROP = pd.read_csv(R / "ci_svyciprop.csv", keep_default_na=False, na_values=["NaN"])


def _close(ours: float, ref: float, what: str) -> None:
    assert ours == pytest.approx(ref, rel=RTOL, abs=1e-12), what


@pytest.mark.parametrize("key", sorted({(r.design, r.variable, r.by) for r in
                                        SVYCIPROP.itertuples()}), ids=" ".join)
def test_svyciprop_logit_beta_and_wald(frames, key):
    """svyciprop(~I(...), d, method=) and svyby(..., svyciprop, method=): the whole
    population with the design's df, domains with the domain's df (R evaluates
    degf() on the domain's design inside svyby)."""
    design_name, variable, by = key
    frame, design = _designs(frames)[design_name]
    y = VARIABLES[variable](frame).astype(float).to_numpy()
    ref = SVYCIPROP[(SVYCIPROP.design == design_name) & (SVYCIPROP.variable == variable)
                    & (SVYCIPROP.by == by)]
    for method, rows in ref.groupby("method"):
        est = survey_proportion(design, y, by=frame[by] if by else None,
                                ci_method=METHODS[method],
                                df="domain" if by else "design").table
        if by:
            est = est.set_index(by).loc[rows["domain"]]
        for (_, r), (_, o) in zip(rows.iterrows(), est.iterrows()):
            what = f"{key} {method} {r['domain']}"
            _close(o["estimate"], r["estimate"], what)
            _close(o["se"], r["se"], what)
            assert o["df"] == r["df"] and o["n"] == r["n"], what
            if method == "logit" and not np.isfinite(r["ci_high"]):
                # R's confint.svyglm turns t into a normal level, 1 - 2*pnorm(qt(.025, 1)),
                # which rounds to 1 with one df: its limits become (0, NaN); ours are
                # expit(logit p -/+ t_1 se_logit)
                assert r["df"] == 1 and 0 < o["ci_low"] < o["estimate"] < o["ci_high"] < 1
                continue
            _close(o["ci_low"], r["ci_low"], what)
            _close(o["ci_high"], r["ci_high"], what)


def test_rare_share_wald_leaves_zero_logit_and_beta_do_not(frames):
    """The issue's case: one school of 183 (p = 0.0055): the Wald interval goes below 0,
    the logit and Korn-Graubard intervals stay inside (0, 1) and are R's."""
    c1, d = _designs(frames)["clus1"]
    y = (c1["api00"] < 412).astype(float)
    ref = SVYCIPROP[(SVYCIPROP.variable == "I(api00 < 412)") & (SVYCIPROP.by == "")]
    ref = ref.set_index("method")
    wald = survey_proportion(d, y, ci_method="wald").table.iloc[0]
    assert wald["ci_low"] < 0
    for method in ("logit", "beta"):
        t = survey_proportion(d, y, ci_method=method).table.iloc[0]
        assert 0 < t["ci_low"] < t["estimate"] < t["ci_high"] < 1
        _close(t["ci_low"], ref.loc[method, "ci_low"], method)
    # the default is logit
    default = survey_proportion(d, y)
    assert default.ci_method == "logit"
    assert default.table["ci_low"].iloc[0] == pytest.approx(ref.loc["logit", "ci_low"],
                                                            rel=RTOL)


def test_proportions_at_zero_and_one_use_korn_graubard_limits(frames):
    """p = 0 or 1: logit is infinite (R's logistic fit diverges, beta gives NaN); both
    methods give the Clopper-Pearson limits with n_eff = n: (0, 1 - (α/2)^(1/n)) and
    its mirror.  Wald gives the point."""
    c1, d = _designs(frames)["clus1"]
    n = len(c1)
    upper = 1 - 0.025 ** (1 / n)       # qbeta(0.975, 1, n) in closed form
    for method in ("logit", "beta"):
        zero = survey_proportion(d, np.zeros(n), ci_method=method).table.iloc[0]
        one = survey_proportion(d, np.ones(n), ci_method=method).table.iloc[0]
        assert zero["estimate"] == 0 and zero["ci_low"] == 0
        assert zero["ci_high"] == pytest.approx(upper, rel=1e-12)
        assert one["ci_high"] == 1 and one["ci_low"] == pytest.approx(1 - upper, rel=1e-12)
    wald = survey_proportion(d, np.zeros(n), ci_method="wald").table.iloc[0]
    assert wald["ci_low"] == wald["ci_high"] == 0
    # no sampling variance (se = 0, 0 < p < 1): both intervals are the point
    lo, hi, _ = korn_graubard(0.3, 0.0, 50, 10)
    assert lo == hi == 0.3
    lo, hi = proportion_interval(0.3, 0.0, 50, 10, "logit")
    assert lo == hi == pytest.approx(0.3, rel=1e-15)


def test_bad_interval_options_are_named(frames):
    c1, d = _designs(frames)["clus1"]
    y = (c1["stype"] == "H").astype(float)
    with pytest.raises(ValueError, match="ci_method"):
        survey_proportion(d, y, ci_method="wilson")
    with pytest.raises(ValueError, match="df must be one of"):
        survey_mean(d, c1["api00"], df="psu")
    with pytest.raises(ValueError, match="ci_method"):
        proficiency_shares(d, np.column_stack([c1["api00"]] * 2), [600], ci_method="asin")


# ------------------------------------------------------------------ domain df

DF_DOMAINS = pd.read_csv(R / "df_domains.csv", keep_default_na=False, na_values=["NaN"])


def _by(frame: pd.DataFrame, by: str) -> pd.Series:
    if by == "level":   # df_domains.R: ifelse(api00 >= 700, "high", "low")
        return pd.Series(np.where(frame["api00"] >= 700, "high", "low"), name="level")
    return frame[by]


@pytest.mark.parametrize("key", sorted({(r.design, r.by) for r in DF_DOMAINS.itertuples()}),
                         ids=" ".join)
def test_domain_df_and_interval_match_degf_of_the_subset(frames, key):
    """degf(subset(d, domain)) and confint(svymean(~api00, subset), df=that); df="design"
    gives confint(..., df=degf(d)).  R's 0 df (a domain inside one PSU) is 1 here."""
    design_name, by = key
    frame, d = _designs(frames)[design_name]
    ref = DF_DOMAINS[(DF_DOMAINS.design == design_name) & (DF_DOMAINS.by == by)]
    ref = ref.set_index("domain")
    dom = survey_mean(d, frame["api00"], by=_by(frame, by), df="domain").table.set_index(by)
    whole = survey_mean(d, frame["api00"], by=_by(frame, by)).table.set_index(by)
    assert list(dom.index) == list(ref.index)
    assert (whole["df"] == ref["design_df"]).all()
    assert (dom["df"] == np.maximum(ref["domain_df"], 1)).all()
    assert (dom["n"] == ref["n"]).all()
    for label, r in ref.iterrows():
        _close(dom.loc[label, "estimate"], r["estimate"], label)
        if r["se"] > 1e-9 * abs(r["estimate"]):
            _close(dom.loc[label, "se"], r["se"], label)
        _close(whole.loc[label, "ci_low"], r["ci_low_design_df"], label)
        _close(whole.loc[label, "ci_high"], r["ci_high_design_df"], label)
        if r["domain_df"] >= 1:
            _close(dom.loc[label, "ci_low"], r["ci_low"], label)
            _close(dom.loc[label, "ci_high"], r["ci_high"], label)


def test_a_stratum_domain_has_the_stratums_df_and_a_wider_interval(frames):
    """A district that is one stratum: 49 df, not the design's 197; the interval is
    wider by t_49/t_197 (about 1.9 % at 95 %)."""
    st, d = _designs(frames)["strat"]
    dom = survey_mean(d, st["api00"], by=st["stype"], df="domain").table.set_index("stype")
    whole = survey_mean(d, st["api00"], by=st["stype"]).table.set_index("stype")
    assert dom.loc["H", "df"] == 49 and whole.loc["H", "df"] == 197
    ratio = (dom.loc["H", "ci_high"] - dom.loc["H", "ci_low"]) / (
        whole.loc["H", "ci_high"] - whole.loc["H", "ci_low"])
    assert ratio == pytest.approx(stats.t.ppf(0.975, 49) / stats.t.ppf(0.975, 197), rel=1e-12)


def test_domain_df_counts_members_with_a_value_and_replicates_agree(frames):
    """Missing values leave the domain (na.rm): a PSU whose only members lack the value
    does not count.  The jackknife made from a Taylor design has the same domain df."""
    c1, d = _designs(frames)["clus1"]
    y = c1["api00"].astype(float).to_numpy().copy()
    la = (c1["cname"] == "Los Angeles").to_numpy()
    one_district = la & (c1["dnum"] == c1.loc[la, "dnum"].iloc[0]).to_numpy()
    base = survey_mean(d, y, by=c1["cname"], df="domain").table.set_index("cname")
    y[one_district] = np.nan
    cut = survey_mean(d, y, by=c1["cname"], df="domain").table.set_index("cname")
    assert base.loc["Los Angeles", "df"] == 1 and cut.loc["Los Angeles", "df"] == 1  # floor
    sc = (c1["cname"] == "Santa Clara").to_numpy()
    y2 = c1["api00"].astype(float).to_numpy().copy()
    y2[sc & (c1["dnum"] == c1.loc[sc, "dnum"].iloc[0]).to_numpy()] = np.nan
    cut2 = survey_mean(d, y2, by=c1["cname"], df="domain").table.set_index("cname")
    assert base.loc["Santa Clara", "df"] == 2 and cut2.loc["Santa Clara", "df"] == 1
    jk = jackknife(d, dense=False)
    rep = survey_mean(jk, c1["api00"], by=c1["cname"], df="domain").table.set_index("cname")
    assert (rep["df"] == base["df"]).all()
    # df="domain" for the whole population is the design df when every PSU answers
    assert survey_mean(d, c1["api00"], df="domain").table["df"].iloc[0] == d.df


# ------------------------------------------------------- PV shares on the logit scale

PV_DATA = pd.read_csv(R / "ci_pv_shares_data.csv")
PV_REF = pd.read_csv(R / "ci_pv_shares.csv", keep_default_na=False, na_values=["NaN"])


def test_pv_level_shares_logit_interval_matches_micombine(frames):
    """ci_pv_shares.R: for each level and domain, svyglm(I(level == k) ~ 1, quasibinomial)
    per plausible value, MIcombine(..., df.complete = degf(domain design)) and expit of
    its confint -- Rubin's rules on the logit scale with the Barnard-Rubin df; the
    share and its SE from MIcombine of svymean."""
    st, d = _designs(frames)["strat"]
    pv = PV_DATA.set_index("snum").loc[st["snum"]]
    pvs = pv[[c for c in pv.columns if c.startswith("pv")]].to_numpy()
    cuts = [-0.5, 0.0, 0.5]
    for by, df in (("", "design"), ("stype", "domain")):
        t = proficiency_shares(d, pvs, cuts, by=st[by] if by else None, df=df).table
        ref = PV_REF[PV_REF.by == by]
        assert len(t) == len(ref)
        keys = ["level"] + ([by] if by else [])
        ref_keys = ref.assign(**({by: ref["domain"]} if by else {}))
        merged = t.merge(ref_keys, on=keys, suffixes=("", "_r"))
        assert len(merged) == len(ref)
        for _, r in merged.iterrows():
            what = f"{by} {r.get(by, '')} level {r['level']}"
            _close(r["estimate"], r["estimate_r"], what)
            _close(r["se"], r["se_r"], what)
            _close(r["df"], r["df_r"], what)
            _close(r["ci_low"], r["ci_low_r"], what)
            _close(r["ci_high"], r["ci_high_r"], what)


def test_pv_level_shares_beta_and_wald(frames):
    """beta: Korn-Graubard on the combined share (Rubin's T and df); wald: unchanged."""
    st, d = _designs(frames)["strat"]
    pv = PV_DATA.set_index("snum").loc[st["snum"]]
    pvs = pv[[c for c in pv.columns if c.startswith("pv")]].to_numpy()
    wald = proficiency_shares(d, pvs, [-0.5, 0.0, 0.5], ci_method="wald").table
    beta = proficiency_shares(d, pvs, [-0.5, 0.0, 0.5], ci_method="beta").table
    q = stats.t.ppf(0.975, wald["df"])
    assert np.allclose(wald["ci_low"], wald["estimate"] - q * wald["se"], rtol=1e-12)
    lo, hi, _ = korn_graubard(beta["estimate"], beta["se"], beta["n"], beta["df"])
    assert np.allclose(beta["ci_low"], lo, rtol=1e-12)
    assert np.allclose(beta["ci_high"], hi, rtol=1e-12)
    assert np.allclose(beta[["estimate", "se"]], wald[["estimate", "se"]], rtol=0)


# ----------------------------------------------------------- precomputed domains


def test_domains_built_once_give_the_same_tables(frames):
    """Every estimator takes a Domains in place of by, with identical results."""
    c1, d = _designs(frames)["clus1"]
    by = pd.DataFrame({"cname": c1["cname"], "stype": c1["stype"]})
    dom = domains(by, d.n)
    assert len(dom) == len(by.drop_duplicates())
    y = c1["api00"].astype(float)
    cases = [
        (lambda b: survey_mean(d, y, by=b, df="domain")),
        (lambda b: survey_total(d, y, by=b)),
        (lambda b: survey_ratio(d, y, c1["enroll"], by=b)),
        (lambda b: survey_proportion(d, c1["awards"], level="Yes", by=b, ci_method="beta",
                                     df="domain")),
        (lambda b: pv_estimate(d, np.column_stack([y, y + 5, y - 3]), by=b)),
        (lambda b: proficiency_shares(d, np.column_stack([y, y + 5, y - 3]), [600, 700],
                                      by=b, df="domain")),
    ]
    for make in cases:
        pd.testing.assert_frame_equal(make(by).table, make(dom).table)
    with pytest.raises(ValueError, match="for 183 units, the design has 10"):
        survey_mean(Design.from_arrays(np.ones(10)), np.ones(10), by=dom)
