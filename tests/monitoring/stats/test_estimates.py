"""Design-based estimates: closed forms, Monte Carlo, jackknife vs Taylor, domains, Rubin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.stats.design import Design, jackknife
from monitoring.stats.estimates import (
    proportion_interval,
    survey_mean,
    survey_proportion,
    survey_ratio,
    survey_total,
)
from monitoring.stats.imputation import proficiency_shares, pv_estimate, rubin
from monitoring.stats.sampling import pps_inclusion_probabilities, systematic_pps
from monitoring.stats.suppression import MAX_RSE, MIN_N, suppress

# ------------------------------------------------------------------ fixtures


def _population(seed: int = 0) -> pd.DataFrame:
    """A finite population of 6,000 units in 4 strata with a domain variable."""
    rng = np.random.default_rng(seed)
    sizes = [3000, 1500, 1000, 500]
    rows = []
    for h, N in enumerate(sizes):
        y = rng.normal(50 + 10 * h, 8 + 3 * h, N)
        old = rng.random(N) < (0.15 + 0.1 * h)
        y = y + 12 * old
        rows.append(pd.DataFrame({"h": h, "y": y, "old": old}))
    return pd.concat(rows, ignore_index=True)


def _stratified_srs(pop: pd.DataFrame, nh: dict[int, int], rng: np.random.Generator):
    parts = []
    for h, n in nh.items():
        idx = np.flatnonzero(pop["h"].to_numpy() == h)
        parts.append(rng.choice(idx, n, replace=False))
    s = pop.iloc[np.concatenate(parts)].copy()
    Nh = pop["h"].value_counts()
    s["N"] = s["h"].map(Nh).to_numpy(dtype=float)
    s["w"] = s["N"] / s["h"].map(nh).to_numpy(dtype=float)
    return s


@pytest.fixture(scope="module")
def pop() -> pd.DataFrame:
    return _population()


NH = {0: 40, 1: 30, 2: 20, 3: 10}


# ---------------------------------------------------- (a) closed forms, 1e-10


def test_stratified_mean_and_total_match_closed_form_with_fpc(pop):
    s = _stratified_srs(pop, NH, np.random.default_rng(3))
    d = Design.from_frame(s, "w", strata="h", fpc="N")
    m = survey_mean(d, s["y"])
    t = survey_total(d, s["y"])
    N = len(pop)
    v_mean = v_tot = 0.0
    est = 0.0
    for _h, g in s.groupby("h"):
        Nh, nh = float(g["N"].iloc[0]), len(g)
        s2 = g["y"].var(ddof=1)
        v_mean += (Nh / N) ** 2 * (1 - nh / Nh) * s2 / nh
        v_tot += Nh**2 * (1 - nh / Nh) * s2 / nh
        est += Nh / N * g["y"].mean()
    assert m.estimate[0] == pytest.approx(est, rel=1e-12)
    assert m.se[0] == pytest.approx(np.sqrt(v_mean), rel=1e-10)
    assert t.se[0] == pytest.approx(np.sqrt(v_tot), rel=1e-10)
    assert t.estimate[0] == pytest.approx(N * est, rel=1e-12)
    # sampling fractions instead of population sizes give the same answer
    s["f"] = s["h"].map(NH) / s["N"]
    d2 = Design.from_frame(s, "w", strata="h", fpc="f")
    assert survey_mean(d2, s["y"]).se[0] == pytest.approx(m.se[0], rel=1e-12)
    # t interval with design df = n - H
    row = m.table.iloc[0]
    assert row["df"] == sum(NH.values()) - 4
    from scipy import stats
    q = stats.t.ppf(0.975, row["df"])
    assert row["ci_high"] - row["estimate"] == pytest.approx(q * row["se"], rel=1e-12)
    assert survey_mean(d, s["y"], ci="normal").table["ci_high"].iloc[0] == pytest.approx(
        est + stats.norm.ppf(0.975) * row["se"], rel=1e-12)


def test_ratio_matches_closed_form(pop):
    rng = np.random.default_rng(5)
    s = _stratified_srs(pop, NH, rng)
    x = s["y"].to_numpy() * 0.3 + rng.uniform(1, 5, len(s))
    d = Design.from_frame(s, "w", strata="h", fpc="N")
    r = survey_ratio(d, s["y"], x)
    w = s["w"].to_numpy()
    R = (w * s["y"]).sum() / (w * x).sum()
    X = (w * x).sum()
    e = s["y"].to_numpy() - R * x
    v = 0.0
    for h in NH:
        m = s["h"].to_numpy() == h
        Nh, nh = float(s["N"].to_numpy()[m][0]), int(m.sum())
        v += Nh**2 * (1 - nh / Nh) * np.var(e[m], ddof=1) / nh
    assert r.estimate[0] == pytest.approx(R, rel=1e-12)
    assert r.se[0] == pytest.approx(np.sqrt(v) / X, rel=1e-10)


def test_jkn_equals_taylor_for_stratified_srs_mean(pop):
    # the stratified mean with fixed N_h is linear: JKn reproduces the formula exactly
    s = _stratified_srs(pop, NH, np.random.default_rng(4))
    d = Design.from_frame(s, "w", strata="h", fpc="N")
    rep = jackknife(d)
    assert rep.kind == "JKn" and rep.replicates.shape == (len(s), len(s))
    assert survey_mean(rep, s["y"]).se[0] == pytest.approx(survey_mean(d, s["y"]).se[0],
                                                           rel=1e-10)
    d1 = Design.from_arrays(np.full(50, 3.0))
    assert jackknife(d1).kind == "JK1"


def test_srswor_deff_is_one():
    rng = np.random.default_rng(2)
    y = rng.normal(size=80)
    d = Design.from_arrays(np.full(80, 1000 / 80), fpc=np.full(80, 1000.0))
    assert survey_mean(d, y).table["deff"].iloc[0] == pytest.approx(1.0, rel=1e-12)
    assert survey_total(d, y).table["deff"].iloc[0] == pytest.approx(1.0, rel=1e-12)


# ------------------------------------------- (b) Monte Carlo, stratified SRS


def test_monte_carlo_se_unbiased_and_coverage(pop):
    """2,000 stratified samples: mean SE² within 5% of the exact variance, mean SE
    within 10% of the true SD of the estimator, 95% CI coverage in [0.92, 0.97]."""
    rng = np.random.default_rng(11)
    R = 2000
    y, h = pop["y"].to_numpy(), pop["h"].to_numpy()
    N = len(pop)
    Nh = np.bincount(h).astype(float)
    nh = np.array([NH[k] for k in range(4)])
    true_mean = y.mean()
    exact_var = sum((Nh[k] / N) ** 2 * (1 - nh[k] / Nh[k]) * np.var(y[h == k], ddof=1) / nh[k]
                    for k in range(4))
    idx_h = [np.flatnonzero(h == k) for k in range(4)]
    strata = np.repeat(np.arange(4), nh)
    w = (Nh / nh)[strata]
    fpc = Nh[strata]
    est, se, cover = np.empty(R), np.empty(R), 0
    for r in range(R):
        pick = np.concatenate([rng.choice(idx_h[k], nh[k], replace=False) for k in range(4)])
        d = Design.from_arrays(w, strata, fpc=fpc)
        t = survey_mean(d, y[pick]).table.iloc[0]
        est[r], se[r] = t["estimate"], t["se"]
        cover += t["ci_low"] <= true_mean <= t["ci_high"]
    assert abs(est.mean() - true_mean) < 4 * np.sqrt(exact_var / R)
    assert np.mean(se**2) == pytest.approx(exact_var, rel=0.05)
    assert np.mean(se) == pytest.approx(est.std(ddof=1), rel=0.10)
    assert 0.92 <= cover / R <= 0.97


def test_monte_carlo_domain_mean(pop):
    """Domain 'old' cuts across strata with a random size: the full-design SE is
    approximately unbiased for the SD of the domain mean (10%), coverage in [0.92, 0.97]."""
    rng = np.random.default_rng(12)
    R = 1000
    y, h, old = pop["y"].to_numpy(), pop["h"].to_numpy(), pop["old"].to_numpy()
    Nh = np.bincount(h).astype(float)
    nh = np.array([NH[k] for k in range(4)])
    true = y[old].mean()
    idx_h = [np.flatnonzero(h == k) for k in range(4)]
    strata = np.repeat(np.arange(4), nh)
    w = (Nh / nh)[strata]
    est, se, cover = np.empty(R), np.empty(R), 0
    for r in range(R):
        pick = np.concatenate([rng.choice(idx_h[k], nh[k], replace=False) for k in range(4)])
        d = Design.from_arrays(w, strata, fpc=Nh[strata])
        t = survey_mean(d, y[pick], by=old[pick]).table
        row = t[t["domain"]].iloc[0]
        est[r], se[r] = row["estimate"], row["se"]
        cover += row["ci_low"] <= true <= row["ci_high"]
    assert np.mean(se) == pytest.approx(est.std(ddof=1), rel=0.10)
    assert 0.92 <= cover / R <= 0.97


def test_monte_carlo_rare_proportion_intervals(pop):
    """A rare share (p = 0.025, n = 100 in 4 strata): the Wald interval covers far
    less than 95 % (0.82 here), the logit and Korn-Graubard intervals close to or
    above it (0.96, 0.98), as Korn & Graubard (1998) found."""
    rng = np.random.default_rng(11)
    R = 800
    y = (pop["y"] > np.quantile(pop["y"], 0.975)).to_numpy(dtype=float)
    h = pop["h"].to_numpy()
    true = y.mean()
    Nh = np.bincount(h).astype(float)
    nh = np.array([NH[k] for k in range(4)])
    idx_h = [np.flatnonzero(h == k) for k in range(4)]
    strata = np.repeat(np.arange(4), nh)
    d = Design.from_arrays((Nh / nh)[strata], strata, fpc=Nh[strata])
    cover = dict.fromkeys(("wald", "logit", "beta"), 0)
    for _ in range(R):
        pick = np.concatenate([rng.choice(idx_h[k], nh[k], replace=False) for k in range(4)])
        t = survey_proportion(d, y[pick], ci_method="wald").table.iloc[0]
        for m in cover:
            lo, hi = proportion_interval(t["estimate"], t["se"], t["n"], t["df"], m)
            cover[m] += bool(lo <= true <= hi)
    assert true == pytest.approx(0.025, abs=1e-3)
    assert cover["wald"] / R < 0.88
    assert 0.93 <= cover["logit"] / R <= 0.98
    assert 0.94 <= cover["beta"] / R <= 0.99


def test_monte_carlo_two_stage_pps_total():
    """Two-stage sample (systematic PPS of PSUs within 2 strata, SRS of 5 units
    per PSU), Horvitz-Thompson total: unbiased (within 4 MC standard errors) and
    the with-replacement Taylor SE is within [0.9, 1.3] of the true SD (it is
    conservative by about the first-stage sampling fraction)."""
    rng = np.random.default_rng(21)
    n_psu_pop, M = 60, rng.integers(8, 60, 60)
    stratum_psu = np.repeat([0, 1], 30)
    effect = rng.normal(0, 6, n_psu_pop)
    units_y = [10 + effect[i] + rng.normal(0, 4, M[i]) for i in range(n_psu_pop)]
    true_total = sum(u.sum() for u in units_y)
    R, n_sel, m = 500, 6, 5
    est, se = np.empty(R), np.empty(R)
    for r in range(R):
        ys, ws, hs, ps = [], [], [], []
        for hh in (0, 1):
            ids = np.flatnonzero(stratum_psu == hh)
            chosen, pi, _ = systematic_pps(M[ids], n_sel, rng)
            for c in chosen:
                i = ids[c]
                take = rng.choice(M[i], min(m, M[i]), replace=False)
                ys.append(units_y[i][take])
                ws.append(np.full(take.size, 1 / (pi[c] * take.size / M[i])))
                hs.append(np.full(take.size, hh))
                ps.append(np.full(take.size, i))
        d = Design.from_arrays(np.concatenate(ws), np.concatenate(hs), np.concatenate(ps))
        t = survey_total(d, np.concatenate(ys)).table.iloc[0]
        est[r], se[r] = t["estimate"], t["se"]
    sd = est.std(ddof=1)
    assert abs(est.mean() - true_total) < 4 * sd / np.sqrt(R)
    assert 0.9 <= np.mean(se) / sd <= 1.3


# -------------------------------------------- (d) jackknife vs Taylor, clusters


def _cluster_sample(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(5):
        for j in range(8):
            k = rng.integers(6, 15)
            u = rng.normal(0, 5)
            y = 40 + 3 * h + u + rng.normal(0, 8, k)
            rows.append(pd.DataFrame({"h": h, "psu": j, "y": y,
                                      "w": rng.uniform(50, 150) * rng.uniform(0.8, 1.2, k),
                                      "sex": rng.integers(0, 2, k),
                                      "yes": rng.random(k) < 0.3 + 0.02 * u}))
    return pd.concat(rows, ignore_index=True)


def test_jackknife_and_taylor_agree_on_cluster_sample():
    s = _cluster_sample()
    d = Design.from_frame(s, "w", strata="h", psu="psu")
    rep = jackknife(d)
    assert rep.replicates.shape[1] == 40 and rep.df == d.df == 35
    for f in (lambda dd: survey_mean(dd, s["y"]),
              lambda dd: survey_mean(dd, s["y"], by=s["sex"]),
              lambda dd: survey_proportion(dd, s["yes"], level=True),
              lambda dd: survey_total(dd, s["y"])):
        a, b = f(d), f(rep)
        np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-12)
        np.testing.assert_allclose(b.se, a.se, rtol=0.10)
    # centring at the replicate mean instead of the full-sample estimate: tiny change
    rep2 = jackknife(d, mse=False)
    assert survey_mean(rep2, s["y"]).se[0] == pytest.approx(survey_mean(rep, s["y"]).se[0],
                                                            rel=0.01)


# ---------------------------------------------------------------- (f) domains


def _hand_domain_var(s: pd.DataFrame, dom: np.ndarray) -> float:
    """Linearisation variance of a domain mean computed with loops."""
    w, y = s["w"].to_numpy(), s["y"].to_numpy()
    Nd = w[dom].sum()
    ybar = (w * y)[dom].sum() / Nd
    z = np.where(dom, w * (y - ybar) / Nd, 0.0)
    v = 0.0
    for _, g in pd.DataFrame({"h": s["h"], "psu": s["psu"], "z": z}).groupby("h"):
        t = g.groupby("psu")["z"].sum().to_numpy()
        n = t.size
        v += n / (n - 1) * ((t - t.mean()) ** 2).sum()
    return v


def test_domain_se_matches_linearisation_and_differs_from_subsetting():
    s = _cluster_sample()
    dom = s["sex"].to_numpy() == 1
    d = Design.from_frame(s, "w", strata="h", psu="psu")
    full = survey_mean(d, s["y"], by=s["sex"]).table.set_index("sex")
    assert full.loc[1, "se"] == pytest.approx(np.sqrt(_hand_domain_var(s, dom)), rel=1e-10)
    assert full.loc[1, "n"] == dom.sum()
    # subsetting the rows gives the same SE only while every PSU keeps a domain
    # member (no fpc, with-replacement): a known identity
    sub = s[dom]
    naive = survey_mean(Design.from_frame(sub, "w", strata="h", psu="psu"), sub["y"])
    assert naive.estimate[0] == pytest.approx(full.loc[1, "estimate"], rel=1e-12)
    assert naive.se[0] == pytest.approx(full.loc[1, "se"], rel=1e-10)
    # a domain missing from some PSUs (random domain size per PSU): naive differs
    dom2 = dom & ~((s["psu"] < 3) & (s["h"] < 3)).to_numpy()
    full2 = survey_mean(d, s["y"], by=dom2).table.set_index("domain")
    assert full2.loc[True, "se"] == pytest.approx(np.sqrt(_hand_domain_var(s, dom2)), rel=1e-10)
    sub2 = s[dom2]
    naive2 = survey_mean(Design.from_frame(sub2, "w", strata="h", psu="psu"), sub2["y"])
    assert abs(naive2.se[0] / full2.loc[True, "se"] - 1) > 5e-3
    # unclustered stratified SRS: subsetting also differs
    pop = _population()
    ss = _stratified_srs(pop, NH, np.random.default_rng(9))
    dd = Design.from_frame(ss, "w", strata="h")
    t = survey_mean(dd, ss["y"], by=ss["old"]).table.set_index("old")
    sub = ss[ss["old"]]
    nv = survey_mean(Design.from_frame(sub, "w", strata="h"), sub["y"]).se[0]
    assert abs(nv / t.loc[True, "se"] - 1) > 1e-3
    # a missing domain label: the unit stays in the design but in no domain
    lab = s["sex"].astype(float).to_numpy().copy()
    lab[:3] = np.nan
    t2 = survey_mean(d, s["y"], by=lab).table
    assert len(t2) == 2 and t2["n"].sum() == len(s) - 3


def test_domain_total_and_crossed_domains():
    s = _cluster_sample()
    d = Design.from_frame(s, "w", strata="h", psu="psu")
    tot = survey_total(d, s["y"], by=s[["h", "sex"]]).table
    assert list(tot.columns[:2]) == ["h", "sex"] and len(tot) == 10
    # the domain totals add up to the overall total
    assert tot["estimate"].sum() == pytest.approx(survey_total(d, s["y"]).estimate[0])
    # a domain total equals the total of y * indicator
    ind = ((s["h"] == 2) & (s["sex"] == 0)).to_numpy()
    r = tot[(tot["h"] == 2) & (tot["sex"] == 0)].iloc[0]
    direct = survey_total(d, s["y"].to_numpy() * ind)
    assert r["se"] == pytest.approx(direct.se[0], rel=1e-10)


# ------------------------------------------------------------------- (g) Rubin


def test_rubin_by_hand():
    q = np.array([10.0, 10.4, 9.8, 10.1, 10.2])
    u = np.array([0.25, 0.27, 0.24, 0.26, 0.25])
    res = rubin(q, u)
    M = 5
    qbar = 50.5 / 5
    ubar = 1.27 / 5
    b = sum((x - qbar) ** 2 for x in q) / (M - 1)
    T = ubar + (1 + 1 / M) * b
    assert res.estimate == pytest.approx(qbar, abs=1e-12)
    assert res.within == pytest.approx(ubar, abs=1e-12)
    assert res.between == pytest.approx(b, abs=1e-12)
    assert res.total == pytest.approx(T, abs=1e-12)
    assert res.se == pytest.approx(np.sqrt(T), abs=1e-12)
    r = (1 + 1 / M) * b / ubar
    assert res.df == pytest.approx((M - 1) * (1 + 1 / r) ** 2, rel=1e-12)
    # Barnard-Rubin with nu_com = 30
    lam = (1 + 1 / M) * b / T
    nu_m = (M - 1) / lam**2
    nu_obs = 31 / 33 * 30 * (1 - lam)
    assert rubin(q, u, df_complete=30).df == pytest.approx(1 / (1 / nu_m + 1 / nu_obs), rel=1e-12)
    with pytest.raises(ValueError):
        rubin(q[:1], u[:1])


def test_pv_estimate_combines_design_estimates():
    s = _cluster_sample()
    d = Design.from_frame(s, "w", strata="h", psu="psu")
    rng = np.random.default_rng(1)
    pvs = s["y"].to_numpy()[:, None] + rng.normal(0, 3, (len(s), 5))
    res = pv_estimate(d, pvs, by=s["sex"]).table
    per = [survey_mean(d, pvs[:, m], by=s["sex"]).table for m in range(5)]
    for i in range(2):
        e = np.array([p["estimate"].iloc[i] for p in per])
        v = np.array([p["se"].iloc[i] ** 2 for p in per])
        T = v.mean() + 1.2 * e.var(ddof=1)
        assert res["estimate"].iloc[i] == pytest.approx(e.mean(), rel=1e-12)
        assert res["se"].iloc[i] == pytest.approx(np.sqrt(T), rel=1e-12)


def test_proficiency_shares():
    s = _cluster_sample()
    d = Design.from_frame(s, "w", strata="h", psu="psu")
    rng = np.random.default_rng(2)
    pvs = s["y"].to_numpy()[:, None] + rng.normal(0, 3, (len(s), 5))
    t = proficiency_shares(d, pvs, cuts=[40, 50], labels=["low", "mid", "high"],
                           by=s["sex"]).table
    assert len(t) == 6 and list(t["level"][:3]) == ["low", "mid", "high"]
    np.testing.assert_allclose(t.groupby("sex")["estimate"].sum(), 1.0, rtol=1e-12)
    assert (t["between"] > 0).all()
    # identical PVs: no between variance, equals a single proportion estimate
    same = np.repeat(s["y"].to_numpy()[:, None], 3, axis=1)
    t2 = proficiency_shares(d, same, cuts=[45]).table
    p = survey_proportion(d, s["y"].to_numpy() >= 45).table.iloc[0]
    assert t2["estimate"].iloc[1] == pytest.approx(p["estimate"], rel=1e-12)
    assert t2["se"].iloc[1] == pytest.approx(p["se"], rel=1e-12)


# ------------------------------------------------------- suppression, errors


def test_suppress_small_cells():
    s = _cluster_sample()
    d = Design.from_frame(s, "w", strata="h", psu="psu")
    tiny_rows = np.arange(len(s)) % 60 == 0
    by = np.where(tiny_rows, "tiny", "big")
    t = suppress(survey_mean(d, s["y"], by=by))
    tiny = t[t["domain"] == "tiny"].iloc[0]
    big = t[t["domain"] == "big"].iloc[0]
    assert tiny["suppressed"] and np.isnan(tiny["estimate"]) and np.isnan(tiny["se"])
    assert np.isnan(tiny["ci_low"]) and tiny["n"] == tiny_rows.sum() < 10
    assert not big["suppressed"] and np.isfinite(big["estimate"])
    t2 = suppress(survey_mean(d, s["y"], by=by), min_n=5, max_rse=1e-6)
    assert not t2["suppressed"].any() and t2["unreliable"].all()
    t3 = suppress(survey_mean(d, s["y"], by=by), min_n=5, max_rse=1e-6, rse_action="suppress")
    assert t3["suppressed"].all()


def test_design_errors_name_the_problem():
    s = _cluster_sample()
    with pytest.raises(ValueError, match="'nope'"):
        Design.from_frame(s, "w", strata="nope")
    one = s[~((s["h"] == 3) & (s["psu"] > 0))]
    with pytest.raises(ValueError, match="stratum 3"):
        Design.from_frame(one, "w", strata="h", psu="psu")
    d = Design.from_frame(one, "w", strata="h", psu="psu", lonely_psu="certainty")
    assert np.isfinite(survey_mean(d, one["y"]).se[0])
    # R's as.svrepdesign keeps a certainty (or removed) lonely PSU: it is never deleted
    assert np.isfinite(survey_mean(jackknife(d), one["y"]).se[0])
    da = Design.from_frame(one, "w", strata="h", psu="psu", lonely_psu="adjust")
    assert survey_mean(da, one["y"]).se[0] > survey_mean(d, one["y"]).se[0] * 0.99
    with pytest.raises(ValueError, match="stratum 3"):
        jackknife(da)
    bad = s.assign(N=np.where(s["h"] == 1, 3.0, 100.0))
    with pytest.raises(ValueError, match="stratum 1"):
        Design.from_frame(bad, "w", strata="h", psu="psu", fpc="N")
    with pytest.raises(ValueError, match="w"):
        Design.from_arrays(np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="0/1"):
        survey_proportion(Design.from_arrays(np.ones(3)), np.array([0, 1, 2]))


def test_missing_y_is_outside_domain():
    rng = np.random.default_rng(3)
    y = rng.normal(size=40)
    y2 = y.copy()
    y2[:4] = np.nan
    d = Design.from_arrays(np.ones(40))
    r = survey_mean(d, y2).table.iloc[0]
    assert r["n"] == 36 and r["estimate"] == pytest.approx(y[4:].mean())
    # the same as the domain "not missing" of y with zeros in the missing rows
    dom = survey_mean(d, np.nan_to_num(y2), by=np.isfinite(y2)).table
    assert dom[dom["domain"]]["se"].iloc[0] == pytest.approx(r["se"], rel=1e-12)


def test_pps_probabilities_sum_fixture_smoke():
    pi, cert = pps_inclusion_probabilities([1, 1, 1, 10], 2)
    assert cert.tolist() == [False, False, False, True] and pi.sum() == pytest.approx(2)


def test_publication_rule_defaults_and_reasons():
    """One rule everywhere: n < MIN_N (30) withheld, RSE > MAX_RSE (0.30) flagged."""
    assert (MIN_N, MAX_RSE) == (30, 0.30)
    t = pd.DataFrame({"g": list("abcd"), "estimate": [10.0, 10.0, 10.0, 0.0],
                      "se": [1.0, 3.5, 1.0, 0.0], "ci_low": 0.0, "ci_high": 1.0,
                      "n": [30, 40, 29, 50], "deff": 1.0})
    out = suppress(t).set_index("g")
    assert out["suppressed"].tolist() == [False, False, True, False]
    assert out["reason"].tolist() == ["", "high_rse", "small_n", "high_rse"]
    assert out.loc["b", "estimate"] == 10.0 and out.loc["b", "unreliable"]
    assert np.isnan(out.loc["c", ["estimate", "se", "ci_low", "ci_high", "deff"]].astype(
        float)).all() and out.loc["c", "n"] == 29
    strict = suppress(t, rse_action="suppress").set_index("g")
    assert strict["suppressed"].tolist() == [False, True, True, True]
    assert suppress(t, max_rse=None)["reason"].tolist() == ["", "", "small_n", ""]
    with pytest.raises(ValueError):
        suppress(t, max_rse=0)
    assert t["estimate"].tolist() == [10.0, 10.0, 10.0, 0.0]     # input unchanged


def test_jackknife_from_psu_totals_equals_dense_replicates():
    s = _cluster_sample()
    s["N"] = 8 / 0.3                      # first-stage fraction 0.3 in every stratum
    d = Design.from_frame(s, "w", strata="h", psu="psu", fpc="N")
    dense, fast = jackknife(d), jackknife(d, dense=False)
    assert fast.replicates is None and dense.replicates.shape == (len(s), 40)
    for f in (lambda dd: survey_mean(dd, s["y"], by=s["sex"]),
              lambda dd: survey_total(dd, s["y"], by=s[["h", "sex"]]),
              lambda dd: survey_proportion(dd, s["yes"], level=True, by=s["sex"]),
              lambda dd: survey_ratio(dd, s["y"], s["w"], by=s["sex"])):
        a, b = f(dense).table, f(fast).table
        np.testing.assert_allclose(b["estimate"], a["estimate"], rtol=1e-12)
        np.testing.assert_allclose(b["se"], a["se"], rtol=1e-10)
    # JK1 on an unstratified design, centred at the replicate mean
    d1 = Design.from_frame(s, "w", psu="psu")
    np.testing.assert_allclose(survey_mean(jackknife(d1, mse=False, dense=False), s["y"]).se,
                               survey_mean(jackknife(d1, mse=False), s["y"]).se, rtol=1e-10)


def test_second_stage_variance_matches_the_two_stage_formula():
    """v = Σ_h (1-f1) n/(n-1) Σ_i (t_i - t̄)² + Σ_i f1 (1-f2_i) m_i/(m_i-1) Σ_j (t_ij - t̄_i)²
    (Bellhouse's recursion, as R's multistage), by loops over PSUs and units."""
    s = _cluster_sample()
    s["unit"] = np.arange(len(s))
    s["N1"] = 20.0                                   # 8 of 20 PSUs per stratum
    s["M2"] = s.groupby(["h", "psu"])["y"].transform("size") * 3.0   # 1/3 of each PSU
    d = Design.from_frame(s, "w", strata="h", psu="psu", fpc="N1")
    d2 = Design.from_arrays(s["w"], s["h"], s["psu"], s["N1"], ssu=s["unit"], fpc2=s["M2"])
    t = survey_total(d2, s["y"]).se[0] ** 2
    extra = 0.0
    for _, g in s.groupby(["h", "psu"]):
        m = len(g)
        wy = (g["w"] * g["y"]).to_numpy()
        extra += 8 / 20 * (1 - m / g["M2"].iloc[0]) * m / (m - 1) * ((wy - wy.mean()) ** 2).sum()
    assert t == pytest.approx(survey_total(d, s["y"]).se[0] ** 2 + extra, rel=1e-10)
    with pytest.raises(ValueError, match="together"):
        Design.from_arrays(s["w"], s["h"], s["psu"], s["N1"], ssu=s["unit"])
    with pytest.raises(ValueError, match="first-stage fpc"):
        Design.from_arrays(s["w"], s["h"], s["psu"], ssu=s["unit"], fpc2=s["M2"])
    one = s.groupby(["h", "psu"]).head(1)            # one unit per PSU, more in population
    with pytest.raises(ValueError, match="single sampled second-stage unit"):
        Design.from_arrays(one["w"], one["h"], one["psu"], one["N1"], ssu=one["unit"],
                           fpc2=one["M2"])


def test_lonely_fail_checks_every_stratum_not_only_the_first():
    """A certainty stratum (fpc 1) with one PSU is fine, but another one-PSU stratum
    without fpc 1 must still stop ``lonely_psu='fail'``, whatever the strata order."""
    s = _cluster_sample()
    strata = sorted(s["h"].unique())
    first, last = strata[0], strata[-1]
    one = s[~(s["h"].isin([first, last]) & (s["psu"] > 0))]
    fpc = np.where(one["h"] == first, 1.0, 0.1)  # the first stratum is taken whole
    with pytest.raises(ValueError, match=f"stratum {last}"):
        Design.from_frame(one.assign(f=fpc), "w", strata="h", psu="psu", fpc="f")
    both = np.where(one["h"].isin([first, last]), 1.0, 0.1)  # both taken whole: fine
    ok = Design.from_frame(one.assign(f=both), "w", strata="h", psu="psu", fpc="f")
    assert np.isfinite(survey_mean(ok, one["y"]).se[0])
