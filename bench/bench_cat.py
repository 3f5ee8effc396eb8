"""Benchmark: one CAT step (select + estimate) of assessment.engine vs catsim.

Run from the repository root::

    python bench/bench_cat.py              # 2,000- and 10,000-item banks
    python bench/bench_cat.py --sizes 500 2000 --steps 20

Both engines run in this one process on the same 2PL banks (a ~ lognormal(0, 0.3),
b ~ N(0, 1), D = 1), the same simulated examinees and 30-item fixed-length tests.
A "step" is what a live test does between two answers:

* ours: ``engine.next_item`` (maximum information at θ̂) + ``engine.answer``
  (incremental EAP update), i.e. the whole engine round trip;
* ours+KL: the first 4 items by Kullback-Leibler information (Chang & Ying, over
  θ̂ ± 3/sqrt(n)), the rest as above; a KL row of ranks is built the first time a
  (grid point, window) is needed and kept, so the first examinees pay for it (the
  cost of one row is printed as "KL row ms");
* catsim: ``MaxInfoSelector.select`` + ``NumericalSearchEstimator.estimate`` (its
  default bounded ML search, with Dodd's heuristic while all answers agree).

Generating the simulated answers is outside the timed region for both.  The table
gives ms per step and the ratio catsim / ours.  Figures are in bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assessment import engine as E
from scoring.params import ItemParams


def make_bank(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.lognormal(0.0, 0.3, n), rng.normal(0.0, 1.0, n)


def p_correct(a: float, b: float, theta: float) -> float:
    return 1.0 / (1.0 + np.exp(-a * (theta - b)))


def bench_ours(a: np.ndarray, b: np.ndarray, thetas: np.ndarray, steps: int,
               blueprint: E.Blueprint | None = None, warm: bool = False
               ) -> tuple[float, float, float]:
    """(build seconds, ms per step, ms per step for next_item alone).

    ``warm``: run the same tests once untimed first (what is built on first need, such
    as KL rows, is then in place, as in a worker that has served many residents)."""
    n = a.size
    t0 = time.perf_counter()
    params = ItemParams.from_arrays([f"i{j}" for j in range(n)], "2pl", a, b)
    bank = E.Bank(params, domains=[f"d{j % 5}" for j in range(n)])
    bp = blueprint or E.Blueprint(min_items=steps, max_items=steps, se_target=1e-6)
    bank.plan(bp)  # precomputations that depend on the blueprint
    build = time.perf_counter() - t0
    for _ in range(2 if warm else 1):  # the same answers each pass
        total, select, n_steps = _run_ours(bank, bp, a, b, thetas, np.random.default_rng(1))
    return build, 1e3 * total / n_steps, 1e3 * select / n_steps


def _run_ours(bank: E.Bank, bp: E.Blueprint, a: np.ndarray, b: np.ndarray,
              thetas: np.ndarray, rng: np.random.Generator) -> tuple[float, float, int]:
    """(seconds in steps, seconds in next_item, steps) of one pass over the examinees."""
    total = select = 0.0
    n_steps = 0
    for k, theta in enumerate(thetas):
        state = E.start(bank, bp, seed=k)
        while True:
            t0 = time.perf_counter()
            choice = E.next_item(bank, bp, state)
            t1 = time.perf_counter()
            if choice is None:
                break
            score = int(rng.random() < p_correct(a[choice.index], b[choice.index], theta))
            t2 = time.perf_counter()
            state = E.answer(bank, state, choice.index, score)
            t3 = time.perf_counter()
            total += (t1 - t0) + (t3 - t2)
            select += t1 - t0
            n_steps += 1
    return total, select, n_steps


def kl_row_ms(a: np.ndarray, b: np.ndarray, rows: int = 20) -> float:
    """ms to build one KL row of ranks (KL information of every item + argsort), the
    one-off cost of a (grid point, window) the first time a test needs it."""
    params = ItemParams.from_arrays([f"i{j}" for j in range(a.size)], "2pl", a, b)
    bank = E.Bank(params)
    bank.kl_ranking(False, 60, 80)  # the log-probabilities on the grid: built once
    t0 = time.perf_counter()
    for g in range(rows):
        bank.kl_ranking(False, 30, 40 + g)
    return 1e3 * (time.perf_counter() - t0) / rows


def bench_catsim(a: np.ndarray, b: np.ndarray, thetas: np.ndarray, steps: int
                 ) -> tuple[float, float, float]:
    """(build seconds, ms per step, ms per step for select alone)."""
    from catsim.estimation import NumericalSearchEstimator
    from catsim.item_bank import ItemBank
    from catsim.selection import MaxInfoSelector

    n = a.size
    t0 = time.perf_counter()
    items = np.column_stack([a, b, np.zeros(n), np.ones(n)])
    with contextlib.redirect_stdout(io.StringIO()):  # catsim prints its (empty) checks
        item_bank = ItemBank(items)
    selector = MaxInfoSelector()
    estimator = NumericalSearchEstimator()
    build = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    total = select = 0.0
    n_steps = 0
    for theta in thetas:
        administered: list[int] = []
        responses: list[bool] = []
        est = 0.0
        for _ in range(steps):
            t0 = time.perf_counter()
            j = selector.select(item_bank=item_bank, administered_items=administered,
                                est_theta=est)
            t1 = time.perf_counter()
            correct = bool(rng.random() < p_correct(a[j], b[j], theta))
            t2 = time.perf_counter()
            administered.append(j)
            responses.append(correct)
            est = float(estimator.estimate(item_bank=item_bank, administered_items=administered,
                                           response_vector=responses, est_theta=est))
            t3 = time.perf_counter()
            total += (t1 - t0) + (t3 - t2)
            select += t1 - t0
            n_steps += 1
    return build, 1e3 * total / n_steps, 1e3 * select / n_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--steps", type=int, default=30, help="items per test")
    parser.add_argument("--examinees", type=int, default=40, help="tests for our engine")
    parser.add_argument("--catsim-examinees", type=int, default=6, help="tests for catsim")
    args = parser.parse_args()

    try:
        import catsim
        catsim_version = getattr(catsim, "__version__", "?")
    except ImportError as exc:  # pragma: no cover - reported, not fatal
        catsim_version = None
        print(f"catsim is not importable ({exc}); only our engine is timed", file=sys.stderr)
    import scipy

    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"catsim {catsim_version}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    thetas = np.random.default_rng(2).standard_normal(max(args.examinees,
                                                          args.catsim_examinees))
    header = (f"{'items':>7} | {'ours ms/step':>12} | {'(select)':>9} | {'build s':>7} | "
              f"{'ours+CB+RQ':>10} | {'ours+KL':>8} | {'(warm)':>7} | {'KL row ms':>9} | "
              f"{'catsim ms/step':>14} | {'(select)':>9} | {'ratio':>7}")
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        a, b = make_bank(n)
        build, ours, ours_sel = bench_ours(a, b, thetas[: args.examinees], args.steps)
        balanced = E.Blueprint(min_items=args.steps, max_items=args.steps, se_target=1e-6,
                               content_balance={f"d{k}": 0.2 for k in range(5)},
                               exposure="randomesque", candidates=5)
        _, ours_cb, _ = bench_ours(a, b, thetas[: args.examinees], args.steps, balanced)
        kl = E.Blueprint(min_items=args.steps, max_items=args.steps, se_target=1e-6,
                         kl_items=4)
        _, ours_kl, _ = bench_ours(a, b, thetas[: args.examinees], args.steps, kl)
        _, ours_kl_warm, _ = bench_ours(a, b, thetas[: args.examinees], args.steps, kl,
                                        warm=True)
        kl_row = kl_row_ms(a, b)
        if catsim_version is not None:
            _, cs, cs_sel = bench_catsim(a, b, thetas[: args.catsim_examinees], args.steps)
            cs_text, cs_sel_text, ratio = f"{cs:14.3f}", f"{cs_sel:9.3f}", f"{cs / ours:6.0f}x"
        else:
            cs_text, cs_sel_text, ratio = f"{'n/a':>14}", f"{'n/a':>9}", f"{'n/a':>7}"
        print(f"{n:7d} | {ours:12.4f} | {ours_sel:9.4f} | {build:7.2f} | {ours_cb:10.4f} | "
              f"{ours_kl:8.4f} | {ours_kl_warm:7.4f} | {kl_row:9.2f} | {cs_text} | "
              f"{cs_sel_text} | {ratio:>7}")
    print("ours = next_item + answer (EAP); ours+CB+RQ = with content balancing over 5 "
          "domains and randomesque(5); ours+KL = KL information for the first 4 items "
          "(warm: the same tests a second time, KL rows built); "
          "KL row ms = building one KL row of ranks (first use, then cached); "
          "catsim = MaxInfoSelector + NumericalSearchEstimator")


if __name__ == "__main__":
    main()
