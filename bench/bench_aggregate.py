"""Aggregation of a synthetic city's campaign, side by side with R's survey package.

    python bench/bench_aggregate.py [--sizes 5000,50000,200000] [--repeat 1] [--no-r]
                                    [--r-sizes 5000,50000] [--profile]

The city (simulated here, seed 1): 13 districts (the design strata) x 20 sampled streets
(the PSUs, 40 streets per district in the population, so fpc = 40), respondents spread
over the streets, weights varying by street and person; age band, sex, five population
groups as ``group__<code>`` flags (older adults, farmers, industrial workers, migrant
workers, young people) and 20 measures:

* 6 person indicators, proportions defined by expressions: the two built-in ones
  (older-adult education among older adults, community training) and four more
  (``selected(${topics}, 'arts')``, ``count-selected(${topics}) >= 2``, training times
  among the trained, satisfaction and training together);
* 4 scale means (``scale_*``);
* 10 choice shares (``topics__*``, ``channels__*``, ``barriers__*``).

Domains (what ``compute_aggregates`` publishes): everyone, district, each group, age
band, sex, and each group x district.

Timed: ours, :func:`monitoring.results.aggregate.compute_aggregates` on a
:class:`~monitoring.results.respondents.RespondentData` in process (the command line
``learningcity monitoring aggregate`` needs a campaign in a database; reading the table
and writing the rows are not timed), best of ``--repeat``; R, ``Rscript
bench/r/aggregate_svyby.R`` on the same table written as CSV: ``svydesign`` +
``svymean``/``svyby(svymean, na.rm=TRUE)`` for the same measures x domains (the
indicators computed in R from their definitions), its estimation time printed by the
script (reading the CSV apart).  R's cells are then compared with ours: every cell we
publish must have R's estimate and SE to 1e-6 relative.  R computes no intervals,
suppression or warehouse rows, which ours does.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitoring.results.aggregate import compute_aggregates  # noqa: E402
from monitoring.results.indicators import BUILTIN, Indicator  # noqa: E402
from monitoring.results.respondents import CampaignInfo, RespondentData  # noqa: E402

R_SCRIPT = ROOT / "bench" / "r" / "aggregate_svyby.R"
CITY = "city"
N_DISTRICTS, N_STREETS, POPULATION_STREETS = 13, 20, 40
GROUPS = ("older_adult", "farmer", "industrial_worker", "migrant_worker", "young_people")
AGE_BANDS = ("18-29", "30-44", "45-59", "60-69", "70+")
CHOICES = {"topics": ("health", "arts", "smart_devices", "finance"),
           "channels": ("community_school", "online", "library"),
           "barriers": ("cost", "time", "none")}
SCALES = ("scale_motivation", "scale_satisfaction", "scale_confidence", "scale_support")
#: the person indicators (the frame indicator has no frame here)
INDICATORS: tuple[Indicator, ...] = (
    *(i for i in BUILTIN if i.kind == "person"),
    Indicator("arts_interest", "艺术兴趣", "Interest in arts", "selected(${topics}, 'arts')"),
    Indicator("many_interests", "多种兴趣", "Two or more interests",
              "count-selected(${topics}) >= 2"),
    Indicator("trained_often", "多次培训", "Trained three times or more",
              "${training_times} >= 3", population="${community_training} = 'yes'"),
    Indicator("satisfied_learners", "满意的学习者", "Trained and satisfied",
              "${scale_satisfaction} >= 3.5 and ${community_training} = 'yes'"),
)


def simulate(n: int, seed: int = 1) -> pd.DataFrame:
    """The city's respondent table with ``n`` respondents (see the module docstring)."""
    rng = np.random.default_rng(seed)
    district = rng.integers(0, N_DISTRICTS, n)
    psu = district * N_STREETS + rng.integers(0, N_STREETS, n)
    n_psu = N_DISTRICTS * N_STREETS
    street_weight = rng.uniform(80, 160, n_psu)
    street_effect = rng.normal(0, 0.4, n_psu)
    district_effect = rng.normal(0, 0.3, N_DISTRICTS)
    effect = street_effect[psu] + district_effect[district]
    age = rng.choice(len(AGE_BANDS), n, p=[0.18, 0.22, 0.22, 0.2, 0.18])
    older, young = age >= 3, age == 0
    occupation = rng.choice(["farmer", "industrial_worker", "migrant_worker", "other"], n,
                            p=[0.25, 0.25, 0.2, 0.3])
    occupation = np.where(older & (rng.random(n) < 0.7), "retired", occupation)

    def text(values: np.ndarray, missing: np.ndarray) -> pd.Series:
        out = values.astype(object)
        out[missing] = None
        return pd.Series(out, dtype="str")

    def chance(base: float, shift: np.ndarray | float = 0.0) -> np.ndarray:
        return rng.random(n) < 1 / (1 + np.exp(-(np.log(base / (1 - base)) + shift)))

    trained = chance(0.55, effect)
    data: dict[str, object] = {
        "respondent": [f"R{i:07d}" for i in range(n)],
        "district": text(np.array([f"D{d + 1:02d}" for d in range(N_DISTRICTS)])[district],
                         np.zeros(n, bool)),
        "street": [f"D{p // N_STREETS + 1:02d}-S{p % N_STREETS + 1:02d}" for p in psu],
        "weight": street_weight[psu] * rng.uniform(0.8, 1.25, n),
        "age_band": text(np.array(AGE_BANDS)[age], np.zeros(n, bool)),
        "sex": text(rng.choice(["female", "male"], n), np.zeros(n, bool)),
        "occupation": text(occupation, np.zeros(n, bool)),
    }
    data["stratum"] = data["district"]
    data["psu"] = data["street"]
    data["fpc"] = float(POPULATION_STREETS)
    members = {"older_adult": older, "young_people": young,
               **{g: occupation == g for g in ("farmer", "industrial_worker",
                                               "migrant_worker")}}
    for g in GROUPS:
        data[f"group__{g}"] = members[g].astype(float)
    first = np.full(n, None, dtype=object)
    for g in reversed(GROUPS):
        first[members[g]] = g
    data["group"] = pd.Series(first, dtype="str")
    regular = chance(0.28, effect)
    data["elder_education"] = text(
        np.where(regular, "regular", np.where(rng.random(n) < 0.5, "sometimes", "never")),
        ~older | (rng.random(n) < 0.03))
    data["community_training"] = text(np.where(trained, "yes", "no"), rng.random(n) < 0.04)
    times = 1.0 + rng.poisson(np.exp(0.6 + 0.3 * effect))
    data["training_times"] = np.where(trained & (rng.random(n) < 0.97), times, np.nan)
    for q, choices in CHOICES.items():
        unanswered = rng.random(n) < 0.06
        for k, c in enumerate(choices):
            on = chance(0.15 + 0.1 * k, 0.5 * effect).astype(float)
            data[f"{q}__{c}"] = np.where(unanswered, np.nan, on)
    for k, s in enumerate(SCALES):
        score = np.clip(3.2 + 0.1 * k + 0.5 * effect + rng.normal(0, 0.8, n), 1, 5)
        data[s] = np.where(rng.random(n) < 0.05, np.nan, score)
    return pd.DataFrame(data)


def respondent_data(frame: pd.DataFrame) -> RespondentData:
    return RespondentData(frame=frame, campaign=CampaignInfo("BENCH", CITY, "Bench city", None),
                          design={"strata": "stratum", "psu": "psu", "fpc": "fpc"})


def time_ours(frame: pd.DataFrame, repeat: int) -> tuple[float, list[dict]]:
    best, rows = float("inf"), []
    for _ in range(repeat):
        data = respondent_data(frame)
        t0 = time.perf_counter()
        rows = compute_aggregates(data, INDICATORS)
        best = min(best, time.perf_counter() - t0)
    return best, rows


def run_r(frame: pd.DataFrame, workdir: Path) -> tuple[float, float, pd.DataFrame]:
    """(R's estimation seconds, Rscript wall seconds, R's cells)."""
    data_csv, out_csv = workdir / "city.csv", workdir / "r_cells.csv"
    frame.to_csv(data_csv, index=False)
    t0 = time.perf_counter()
    done = subprocess.run(["Rscript", str(R_SCRIPT), str(data_csv), str(out_csv)],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"Rscript failed:\n{done.stdout}\n{done.stderr}")
    seconds = next(float(line.split()[-1]) for line in done.stdout.splitlines()
                   if line.startswith("estimation seconds"))
    cells = pd.read_csv(out_csv, keep_default_na=False,
                        dtype={"group_value": str, "district": str})
    return seconds, wall, cells


def compare(rows: list[dict], cells: pd.DataFrame) -> tuple[int, float, float]:
    """(published cells compared, max relative difference of estimates, of SEs)."""
    ours = pd.DataFrame(rows)
    ours = ours[~ours["suppressed"] & ours["se"].notna()]
    cells = cells.assign(estimate=pd.to_numeric(cells["estimate"], errors="coerce"),
                         se=pd.to_numeric(cells["se"], errors="coerce"))
    both = ours.merge(cells, on=["measure", "dimension", "group_value", "district"],
                      how="left", suffixes=("", "_r"))
    if both["se_r"].isna().any():
        missing = both[both["se_r"].isna()].iloc[0]
        raise SystemExit(f"R has no cell {missing['measure']} / {missing['dimension']} / "
                         f"{missing['group_value']} / {missing['district']}")
    rel_est = (both["estimate"] - both["estimate_r"]).abs() / both["estimate_r"].abs()
    rel_se = (both["se"] - both["se_r"]).abs() / both["se_r"].abs()
    return len(both), float(rel_est.max()), float(rel_se.max())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="5000,50000,200000")
    parser.add_argument("--repeat", type=int, default=1, help="ours: best of N runs")
    parser.add_argument("--r-sizes", default=None,
                        help="sizes to run R on (default: every size)")
    parser.add_argument("--no-r", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="print ours' top costs (cProfile) for each size")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    r_sizes = sizes if args.r_sizes is None else [int(s) for s in args.r_sizes.split(",")]
    print(f"load average {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}, "
          f"numpy {np.__version__}, pandas {pd.__version__}")
    print(f"{'respondents':>11} {'rows':>5} {'ours s':>7} {'R s':>7} {'R wall s':>8} "
          f"{'R / ours':>8} {'cells':>5} {'max rel est':>11} {'max rel SE':>10}")
    compute_aggregates(respondent_data(simulate(500)), INDICATORS)  # imports, survey labels
    for n in sizes:
        frame = simulate(n)
        ours, rows = time_ours(frame, args.repeat)
        r_text = f"{'-':>7} {'-':>8} {'-':>8} {'':>5}"
        checked = ""
        if not args.no_r and n in r_sizes:
            with tempfile.TemporaryDirectory() as tmp:
                r_s, r_wall, cells = run_r(frame, Path(tmp))
            count, rel_est, rel_se = compare(rows, cells)
            r_text = f"{r_s:>7.2f} {r_wall:>8.2f} {r_s / ours:>7.1f}x {count:>5}"
            checked = f" {rel_est:>11.1e} {rel_se:>10.1e}"
            if rel_est > 1e-6 or rel_se > 1e-6:
                raise SystemExit(f"ours and R differ at n={n}: estimates {rel_est:.2e}, "
                                 f"SEs {rel_se:.2e} (relative)")
        print(f"{n:>11,} {len(rows):>5} {ours:>7.2f} {r_text}{checked}", flush=True)
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            compute_aggregates(respondent_data(frame), INDICATORS)
            profile.disable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(25)
            print(out.getvalue())


if __name__ == "__main__":
    main()
