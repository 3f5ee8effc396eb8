"""Group statistics for 1,000,000 respondents x 50 domains with Taylor standard errors.

    python bench/bench_groupstats.py [--n 1000000] [--domains 50] [--strata 100]
                                     [--psus 20] [--repeat 3] [--no-anchor]

Simulates a stratified two-stage sample (``--strata`` strata x ``--psus`` sampled PSUs,
population 10 x as many PSUs per stratum, so fpc = 0.1), weights, a score and a 0/1
answer, and a domain label with ``--domains`` values cutting across strata and PSUs
(e.g. district x group).  Times, in one process:

* ours, jackknife: the same mean with delete-one-PSU (JKn) replicate variances, computed
  from PSU totals (``jackknife(design, dense=False)``);
* ours: ``Design.from_arrays`` (strata, PSUs, fpc) + ``survey_mean`` by domain,
  ``survey_proportion`` by domain and ``survey_total`` by domain -- estimates, Taylor
  SEs, t intervals, design effects -- the work of ``learningcity groupstats`` after
  reading the file;
* anchor 1: a straightforward pandas implementation of the same estimator (a loop over
  domains, each one linearising and grouping 1M rows by PSU); its SEs must agree;
* anchor 2: samplics ``TaylorEstimator(...).estimate(..., domain=...)`` when samplics
  is importable (it is not a project dependency: ``pip install samplics`` in a separate
  environment, or ``--target DIR`` and ``PYTHONPATH=DIR``).

Prints wall time (best of ``--repeat``), peak traced memory (tracemalloc) and the
ratios.  The target is ours < 5 s.
"""
from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring.stats.design import Design, jackknife
from monitoring.stats.estimates import (
    survey_mean,
    survey_proportion,
    survey_total,
)


def simulate(n: int, n_dom: int, n_strata: int, n_psu: int, seed: int = 1) -> pd.DataFrame:
    """A stratified cluster sample with ``n`` respondents (see the module docstring)."""
    rng = np.random.default_rng(seed)
    P = n_strata * n_psu
    psu = rng.integers(0, P, n)
    stratum = psu // n_psu
    psu_effect = rng.normal(0, 5, P)
    domain = rng.integers(0, n_dom, n)
    score = 500 + 2 * stratum + psu_effect[psu] + 3 * (domain % 7) + rng.normal(0, 50, n)
    answer = (rng.random(n) < 0.2 + 0.01 * (domain % 30)).astype(float)
    weight = rng.uniform(50, 150, n)
    return pd.DataFrame({"stratum": stratum, "psu": psu, "fpc": float(10 * n_psu),
                         "weight": weight, "domain": domain, "score": score,
                         "answer": answer})


def ours(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    d = Design.from_arrays(df["weight"].to_numpy(), df["stratum"].to_numpy(),
                           df["psu"].to_numpy(), df["fpc"].to_numpy())
    by = df["domain"].to_numpy()
    return {"mean": survey_mean(d, df["score"].to_numpy(), by=by).table,
            "proportion": survey_proportion(d, df["answer"].to_numpy(), by=by).table,
            "total": survey_total(d, df["score"].to_numpy(), by=by).table}


def mean_only(df: pd.DataFrame) -> pd.DataFrame:
    d = Design.from_arrays(df["weight"].to_numpy(), df["stratum"].to_numpy(),
                           df["psu"].to_numpy(), df["fpc"].to_numpy())
    return survey_mean(d, df["score"].to_numpy(), by=df["domain"].to_numpy()).table


def jackknife_mean(df: pd.DataFrame) -> pd.DataFrame:
    d = Design.from_arrays(df["weight"].to_numpy(), df["stratum"].to_numpy(),
                           df["psu"].to_numpy(), df["fpc"].to_numpy())
    return survey_mean(jackknife(d, dense=False), df["score"].to_numpy(),
                       by=df["domain"].to_numpy()).table


def pandas_anchor(df: pd.DataFrame) -> pd.DataFrame:
    """Textbook implementation: for each domain, linearise over all rows and sum
    ``Σ_h (1-f_h) n_h/(n_h-1) Σ_i (t_hi - t̄_h)²`` with pandas groupby."""
    n_h = df.groupby("stratum")["psu"].nunique()
    f_h = n_h / df.groupby("stratum")["fpc"].first()
    rows = []
    for dom in sorted(df["domain"].unique()):
        inside = (df["domain"] == dom).to_numpy()
        w = df["weight"].to_numpy()
        y = df["score"].to_numpy()
        Nd = w[inside].sum()
        est = (w[inside] * y[inside]).sum() / Nd
        z = np.where(inside, w * (y - est) / Nd, 0.0)
        t = pd.DataFrame({"stratum": df["stratum"], "psu": df["psu"], "z": z}).groupby(
            ["stratum", "psu"])["z"].sum()
        dev2 = (t - t.groupby(level="stratum").transform("mean")) ** 2
        ss = dev2.groupby(level="stratum").sum()
        v = ((1 - f_h) * n_h / (n_h - 1) * ss).sum()
        rows.append((dom, est, np.sqrt(v)))
    return pd.DataFrame(rows, columns=["domain", "estimate", "se"])


def samplics_anchor(df: pd.DataFrame) -> pd.DataFrame | None:
    try:
        from samplics import PopParam
        from samplics.estimation import TaylorEstimator
    except ImportError:
        return None
    est = TaylorEstimator(PopParam.mean)
    est.estimate(y=df["score"].to_numpy(), samp_weight=df["weight"].to_numpy(),
                 stratum=df["stratum"].to_numpy(), psu=df["psu"].to_numpy(),
                 fpc=dict(zip(range(df["stratum"].max() + 1),
                              (1 - df.groupby("stratum")["psu"].nunique()
                               / df.groupby("stratum")["fpc"].first()).to_numpy())),
                 domain=df["domain"].to_numpy(), remove_nan=False)
    return est


def timed(fn, df: pd.DataFrame, repeat: int):
    best, peak, out = float("inf"), 0, None
    for _ in range(repeat):
        tracemalloc.start()
        t0 = time.perf_counter()
        out = fn(df)
        dt = time.perf_counter() - t0
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        best = min(best, dt)
    return best, peak, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--domains", type=int, default=50)
    ap.add_argument("--strata", type=int, default=100)
    ap.add_argument("--psus", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-anchor", action="store_true")
    a = ap.parse_args()
    df = simulate(a.n, a.domains, a.strata, a.psus)
    print(f"{a.n:,} respondents, {a.domains} domains, {a.strata} strata x {a.psus} PSUs "
          f"(fpc {a.psus}/{10 * a.psus}), numpy {np.__version__}, pandas {pd.__version__}")
    t_ours, m_ours, res = timed(ours, df, a.repeat)
    print(f"ours  mean+proportion+total by domain: {t_ours:7.2f} s  "
          f"peak {m_ours / 2**20:7.0f} MiB  (target < 5 s: "
          f"{'met' if t_ours < 5 else 'NOT met'})")
    t_mean, _, _ = timed(mean_only, df, a.repeat)
    print(f"ours  mean only:                       {t_mean:7.2f} s")
    t_jk, m_jk, _ = timed(jackknife_mean, df, a.repeat)
    print(f"ours  mean only, jackknife JKn ({a.strata * a.psus:,} replicates): {t_jk:5.2f} s"
          f"  peak {m_jk / 2**20:7.0f} MiB")
    if a.no_anchor:
        return
    t_pd, m_pd, ref = timed(pandas_anchor, df, 1)
    mine = res["mean"]
    np.testing.assert_allclose(mine["estimate"], ref["estimate"], rtol=1e-10)
    np.testing.assert_allclose(mine["se"], ref["se"], rtol=1e-8)
    print(f"pandas loop over domains, mean only:    {t_pd:7.2f} s  peak "
          f"{m_pd / 2**20:7.0f} MiB  (same SEs to 1e-8; ours is "
          f"{t_pd / t_mean:.0f}x faster on the mean)")
    t_s, m_s, est = timed(samplics_anchor, df, 1)
    if est is None:
        print("samplics: not installed (optional anchor)")
        return
    se = np.array([est.stderror[k] for k in sorted(est.stderror)])
    ratio = np.max(np.abs(se / mine["se"].to_numpy() - 1))
    print(f"samplics TaylorEstimator, mean only:   {t_s:7.2f} s  peak {m_s / 2**20:7.0f} MiB"
          f"  (max |SE ratio - 1| = {ratio:.1e}; ours is {t_s / t_mean:.0f}x faster "
          "on the mean)")


if __name__ == "__main__":
    main()
