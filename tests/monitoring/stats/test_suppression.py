"""The publication standard (docs/suppression.md): the NCHS rule for proportions, n and
RSE for means and totals, and complementary suppression.

References: NCHS's own SAS macro for the Data Presentation Standards for Proportions
(Parker et al. 2017), transcribed line by line below (:func:`_nchs_macro`), and R's
``svyciprop(method="beta")`` (``data/r/ci_svyciprop.csv``) for the Korn-Graubard limits
where the standard's cap at n does not bite (1e-6 relative).  Complementary suppression
is checked by rank: no withheld cell lies in the span of the published cells and the
ties (hypothesis, 200 random tables).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from monitoring.stats.design import Design
from monitoring.stats.estimates import survey_mean, survey_proportion
from monitoring.stats.suppression import (
    MAX_RSE,
    MIN_N,
    complementary,
    nchs_proportions,
    share_groups,
    suppress,
)

DATA = Path(__file__).parent / "data"


def _nchs_macro(p: float, sep: float, nsum: float, df: float) -> dict:
    """The NCHS presentation-standard SAS macro (%Presentation_Code), statement by
    statement; SAS's missing value is None (smaller than every number in comparisons)."""
    q = 1 - p
    df_flag = df < 8
    n_eff = (p * (1 - p)) / sep**2 if (0 < p < 1 and sep > 0) else (None if 0 < p < 1
                                                                      else nsum)
    if n_eff is None or n_eff > nsum:
        n_eff = nsum
    rat_squ = (stats.t.ppf(.975, nsum - 1) / stats.t.ppf(.975, df)) ** 2 if df > 0 else 0
    n_eff_df = min(nsum, rat_squ * n_eff) if p > 0 else nsum
    x = n_eff_df * p
    v1, v2, v3, v4 = x, n_eff_df - x + 1, x + 1, n_eff_df - x
    kg_l = 0 if v1 == 0 else stats.beta.ppf(.025, v1, v2)
    kg_u = 1 if v4 == 0 else stats.beta.ppf(.975, v3, v4)
    kg_wdth = kg_u - kg_l
    kg_relw_p = 100 * (kg_wdth / p) if p > 0 else None
    kg_relw_q = 100 * (kg_wdth / q) if q > 0 else None
    p_reliable = 1
    if n_eff < 30:
        p_reliable = 0
    elif kg_wdth >= 0.30:
        p_reliable = 0
    elif kg_relw_p is not None and kg_relw_p > 130 and kg_wdth > 0.05:
        p_reliable = 0
    q_reliable = 1
    if p_reliable == 1 and kg_relw_q is not None and kg_relw_q > 130 and kg_wdth > 0.05:
        q_reliable = 0
    p_statistical = 0
    if p_reliable == 1 and (df_flag or p == 0 or p == 1 or q_reliable == 0):
        p_statistical = 1
    return {"n_eff": n_eff, "kg_low": kg_l, "kg_high": kg_u, "reliable": p_reliable,
            "review": p_statistical}


@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_nchs_rule_equals_the_nchs_macro(seed):
    """Random proportions, SEs (including 0 and n_eff above n), sizes and df; p = 1 is
    left out: the macro adjusts n_eff there but not at p = 0 (``if p > 0``), while here
    p = 1 mirrors p = 0 (see test_p_one_mirrors_p_zero)."""
    rng = np.random.default_rng(seed)
    k = 40
    p = np.where(rng.random(k) < 0.1, 0.0, rng.beta(0.6, 0.6, k))
    n = rng.integers(2, 3000, k).astype(float)
    se = np.sqrt(p * (1 - p) / n * rng.uniform(0.3, 6, k))
    se[rng.random(k) < 0.05] = 0.0
    df = rng.choice([1, 3, 7, 8, 12, 40, 400], k).astype(float)
    got = nchs_proportions(p, se, n, df)
    for i in range(k):
        ref = _nchs_macro(p[i], se[i], n[i], df[i])
        row = got.iloc[i]
        assert row["n_eff"] == pytest.approx(ref["n_eff"], rel=1e-12)
        assert row["kg_low"] == pytest.approx(ref["kg_low"], rel=1e-9, abs=1e-15)
        assert row["kg_high"] == pytest.approx(ref["kg_high"], rel=1e-9, abs=1e-15)
        assert row["suppressed"] == (ref["reliable"] == 0)
        assert row["review"] == (ref["review"] == 1)
        assert (row["reason"] == "") == (ref["reliable"] == 1 and ref["review"] == 0)


def test_p_one_mirrors_p_zero():
    zero = nchs_proportions(0.0, 0.0, 200, 10).iloc[0]
    one = nchs_proportions(1.0, 0.0, 200, 10).iloc[0]
    assert one["kg_low"] == pytest.approx(1 - zero["kg_high"], rel=1e-12)
    assert zero["reason"] == one["reason"] == "nchs_0_or_100" and not zero["suppressed"]


def test_korn_graubard_of_the_standard_is_rs_beta_interval_when_the_cap_does_not_bite():
    ref = pd.read_csv(DATA / "r" / "ci_svyciprop.csv", keep_default_na=False,
                      na_values=["NaN"])
    ref = ref[ref.method == "beta"]
    ratio = (stats.t.ppf(0.025, ref.n - 1) / stats.t.ppf(0.025, ref.df)) ** 2
    n_eff = ref.estimate * (1 - ref.estimate) / ref.se**2
    free = ref[(n_eff <= ref.n) & (n_eff * ratio <= ref.n)]
    assert len(free) >= 8
    got = nchs_proportions(free.estimate, free.se, free.n, free.df)
    assert np.allclose(got["kg_low"], free.ci_low, rtol=1e-6, atol=0)
    assert np.allclose(got["kg_high"], free.ci_high, rtol=1e-6, atol=0)


def test_each_nchs_reason():
    """One proportion per branch of the standard; the thresholds are checked on the
    computed quantities, so each case is on the side of the line it claims."""
    cases = {  # (p, se, n, df) -> reason
        (0.5, 0.1, 1000, 100): "nchs_n_eff",       # n_eff = 25
        (0.5, 0.08, 1000, 100): "nchs_width",      # n_eff 39, width >= 0.30
        (0.05, 0.02, 500, 50): "nchs_rel_width",   # width ~0.09, relative ~180 %
        (0.95, 0.02, 500, 50): "nchs_complement",  # its complement is the case above
        (0.5, 0.02, 1000, 5): "nchs_df",
        (0.0, 0.0, 1000, 100): "nchs_0_or_100",
        (0.5, 0.02, 1000, 100): "",
    }
    p, se, n, df = (np.array(v, dtype=float) for v in zip(*cases))
    got = nchs_proportions(p, se, n, df)
    assert got["reason"].tolist() == list(cases.values())
    assert got["suppressed"].tolist() == [True, True, True, False, False, False, False]
    assert got["review"].tolist() == [False, False, False, True, True, True, False]
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = np.minimum(p * (1 - p) / se**2, n)
    assert n_eff[0] < 30 <= n_eff[1]
    assert got["width"][1] >= 0.30 and 0.05 < got["width"][2] < 0.30
    assert got["relative_width"][2] > 1.30 and got["complement_relative_width"][3] > 1.30
    assert got["relative_width"][3] <= 1.30


def test_the_issues_share_is_withheld_and_its_complement_follows():
    """apiclus1: the share of high schools 0.0765 (SE 0.027) fails the relative width
    (Korn-Graubard 0.030-0.156, 165 %); its complement 0.923 passes, with the NCHS
    footnote that its own complement is unreliable; published alone it gives the share
    away (1 - 0.923), so complementary suppression withholds it."""
    c1 = pd.read_csv(DATA / "apiclus1.csv")
    d = Design.from_frame(c1, "pw", psu="dnum", fpc="fpc")
    high = (c1["stype"] == "H").astype(float)
    t = pd.concat([survey_proportion(d, high).table.assign(level="H"),
                   survey_proportion(d, 1 - high).table.assign(level="not H")],
                  ignore_index=True)
    s = suppress(t, min_n=MIN_N, max_rse=MAX_RSE, rse_action="suppress",
                 statistic="proportion")
    assert s["reason"].tolist() == ["nchs_rel_width", "nchs_complement"]
    assert s["unreliable"].tolist() == [False, True]
    out = complementary(s, share_groups(s, []))
    assert out["suppressed"].all() and out["reason"].tolist() == ["nchs_rel_width",
                                                                  "complementary"]
    assert out[["estimate", "se", "ci_low", "ci_high"]].isna().all().all()
    # the old rule on the same rows: both withheld by RSE? no -- only the share
    old = suppress(t, rse_action="suppress")
    assert old["suppressed"].tolist() == [True, False]


def test_one_withheld_level_of_five_takes_the_smallest_other():
    t = pd.DataFrame({"domain": ["a"] * 5 + ["b"] * 5,
                      "level": list(range(5)) * 2,
                      "estimate": [.1, .2, .3, .25, .15, .2, .2, .2, .2, .2],
                      "se": 0.01, "n": [12, 40, 80, 35, 60, 50, 10, 20, 60, 70],
                      "suppressed": False, "reason": ""})
    s = suppress(t, statistic="mean", max_rse=None)
    assert s["reason"].tolist() == ["small_n", "", "", "", "", "", "small_n", "small_n",
                                    "", ""]
    out = complementary(s, share_groups(s, ["domain"]))
    # domain a: 12 withheld -> the smallest other (35) too; b already has two withheld
    assert out["reason"].tolist() == ["small_n", "", "", "complementary", "", "",
                                      "small_n", "small_n", "", ""]
    assert np.isnan(out.loc[3, "estimate"]) and out.loc[3, "n"] == 35
    pd.testing.assert_frame_equal(out.drop(index=3), s.drop(index=3))


def test_parts_of_a_published_total_and_a_two_way_table():
    """Totals by district add up to the published total: one withheld district is
    protected by a second.  In a two-way table with its margins one small cell takes
    the three other cells (every row and column needs two withheld cells), not the
    margins, although a margin has a smaller n than the last cell."""
    t = pd.DataFrame({"estimate": [10., 20., 30., 60.], "se": 1.0, "n": [5, 50, 40, 95]})
    s = suppress(t, max_rse=None)
    out = complementary(s, [{0: 1, 1: 1, 2: 1, 3: -1}])
    assert out["reason"].tolist() == ["small_n", "", "complementary", ""]
    # 2 x 2 cells, row and column totals, grand total
    cells = pd.DataFrame({"estimate": [1., 2., 3., 4., 3., 7., 4., 6., 10.], "se": 0.1,
                          "n": [3, 50, 60, 70, 53, 130, 63, 120, 183]})
    ties = [{0: 1, 1: 1, 4: -1}, {2: 1, 3: 1, 5: -1}, {0: 1, 2: 1, 6: -1},
            {1: 1, 3: 1, 7: -1}, {4: 1, 5: 1, 8: -1}, {6: 1, 7: 1, 8: -1}]
    out = complementary(suppress(cells, max_rse=None), ties)
    assert out["suppressed"].tolist()[:4] == [True, True, True, True]
    assert not out["suppressed"].iloc[4:].any()


def test_mixed_table_by_row_statistic_and_errors():
    t = pd.DataFrame({"estimate": [0.05, 500.0, 0.5], "se": [0.02, 200.0, 0.02],
                      "df": [50.0, 50.0, 50.0], "n": [500, 500, 1000]})
    s = suppress(t, statistic=["proportion", "mean", "pv_level_share"])
    assert s["reason"].tolist() == ["nchs_rel_width", "high_rse", ""]
    assert s["suppressed"].tolist() == [True, False, False]
    assert s["unreliable"].tolist() == [False, True, False]
    s = suppress(t, statistic=["proportion", "mean", "proportion"], rse_action="suppress")
    assert s["suppressed"].tolist() == [True, True, False]
    with pytest.raises(ValueError, match="unknown statistic 'median' \\(row 1\\)"):
        suppress(t, statistic=["proportion", "median", "mean"])
    with pytest.raises(ValueError, match="one name per row"):
        suppress(t, statistic=["proportion"])
    with pytest.raises(ValueError, match="'df' column"):
        suppress(t.drop(columns="df"), statistic="proportion")
    with pytest.raises(ValueError, match=r"row 1: estimate 500\.0 is not a proportion"):
        suppress(t, statistic="proportion")
    with pytest.raises(ValueError, match=r"groups\[1\]: 7 is not a row position"):
        complementary(suppress(t, statistic="mean"), [[0, 1], [2, 7]])
    with pytest.raises(ValueError, match="apply suppress"):
        complementary(t, [[0, 1]])


def test_estimates_with_statistic_keep_the_old_rule_for_means():
    """Means judged by n and RSE exactly as before the NCHS rule was added."""
    c1 = pd.read_csv(DATA / "apiclus1.csv")
    d = Design.from_frame(c1, "pw", psu="dnum", fpc="fpc")
    est = survey_mean(d, c1["api00"], by=c1["cname"])
    for action in ("flag", "suppress"):
        pd.testing.assert_frame_equal(suppress(est, rse_action=action),
                                      suppress(est, rse_action=action, statistic=est.stat))


# ------------------------------------------------------- property: no cell recoverable


def _random_table(rng: np.random.Generator) -> tuple[pd.DataFrame, list]:
    """Share groups (domains x levels) and two-way tables of totals with their margins."""
    groups: list = []
    size = 0
    for _ in range(rng.integers(1, 4)):
        if rng.random() < 0.5:
            L = int(rng.integers(2, 6))
            groups.append(list(range(size, size + L)))
            size += L
        else:
            rows, cols = int(rng.integers(2, 4)), int(rng.integers(2, 4))
            cell = np.arange(size, size + rows * cols).reshape(rows, cols)
            row = np.arange(size + rows * cols, size + rows * cols + rows)
            col = np.arange(row[-1] + 1, row[-1] + 1 + cols)
            grand = int(col[-1] + 1)
            for i in range(rows):
                groups.append({**{int(c): 1.0 for c in cell[i]}, int(row[i]): -1.0})
            for j in range(cols):
                groups.append({**{int(c): 1.0 for c in cell[:, j]}, int(col[j]): -1.0})
            groups.append({**{int(r): 1.0 for r in row}, grand: -1.0})
            groups.append({**{int(c): 1.0 for c in col}, grand: -1.0})
            size = grand + 1
    n = rng.integers(1, 200, size)
    hidden = (n < 30) | (rng.random(size) < 0.1)
    t = pd.DataFrame({"estimate": rng.random(size), "se": 0.01, "n": n,
                      "suppressed": hidden, "reason": np.where(hidden, "small_n", "")})
    return t, groups


def _matrix(groups: list, size: int) -> np.ndarray:
    C = np.zeros((len(groups), size))
    for k, g in enumerate(groups):
        for i, c in (g.items() if isinstance(g, dict) else ((i, 1.0) for i in g)):
            C[k, i] = c
    return C


@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_after_complementary_suppression_no_withheld_cell_is_recoverable(seed):
    rng = np.random.default_rng(seed)
    t, groups = _random_table(rng)
    out = complementary(t, groups)
    C = _matrix(groups, len(t))
    eye = np.eye(len(t))
    pub = ~out["suppressed"].to_numpy()
    known = np.vstack([C, eye[pub]])
    r_known = np.linalg.matrix_rank(known)
    r_ties = np.linalg.matrix_rank(C)
    for j in np.flatnonzero(~pub):
        if np.linalg.matrix_rank(np.vstack([C, eye[j]])) == r_ties:
            continue   # the ties alone fix it (none in these tables, but allowed)
        assert np.linalg.matrix_rank(np.vstack([known, eye[j]])) > r_known, j
    was = t["suppressed"].to_numpy()
    assert (out["suppressed"].to_numpy() >= was).all()
    added = out["suppressed"].to_numpy() & ~was
    assert (out["reason"][added] == "complementary").all()
    assert out["estimate"][added].isna().all()
    assert (out["estimate"][pub] == t["estimate"][pub]).all()
