"""Native MML-EM (scoring.calibration) vs girth: time and recovery on the same data.

Run from the repository root::

    python bench/bench_calibration.py            # 50 x 5,000 and 100 x 20,000, 2PL and GRM
    python bench/bench_calibration.py --quick    # 50 x 5,000 only
    python bench/bench_calibration.py --n-quad 81  # finer native grid for long tests

Both engines run in this process on identical simulated responses (theta ~ N(0, 1),
a ~ U(0.7, 2.0), 2PL b ~ U(-2, 2), GRM with 4 categories).  The native engine is timed
without standard errors (girth computes none) and, in a separate column, with its full
observed-information SEs.  RMSE is against the generating parameters.  ``dLL`` is the
native minus girth marginal log-likelihood, both evaluated by
``scoring.calibration.marginal_loglik`` (positive: the native estimates fit better).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring import catalogue, models
from scoring.calibration import calibrate
from scoring.girth_engine import calibrate_girth
from scoring.params import ItemParams


def make_data(model: str, n_items: int, n_persons: int, seed: int
              ) -> tuple[ItemParams, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.7, 2.0, n_items)
    if catalogue.get(model).dichotomous:
        b = rng.uniform(-2.0, 2.0, (n_items, 1))
    else:
        b = rng.uniform(-1.0, 0.6, (n_items, 1)) + np.array([[-0.9, 0.1, 1.1]])
    true = ItemParams.from_arrays([f"i{j}" for j in range(n_items)], model, a, b)
    theta = rng.standard_normal(n_persons)
    y = np.empty((n_persons, n_items))
    for s in range(0, n_persons, 5000):                  # chunks keep memory small
        P = models.probabilities(true, theta[s:s + 5000])
        u = rng.random(P.shape[:2])[..., None]
        y[s:s + 5000] = np.minimum((u > np.cumsum(P, axis=2)).sum(axis=2),
                                   true.n_categories - 1)
    return true, y


def rmse(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean((np.asarray(x) - np.asarray(y)) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 50 x 5,000 sets")
    parser.add_argument("--n-quad", type=int, default=41,
                        help="native quadrature points on [-6, 6] (default 41)")
    args = parser.parse_args()
    sizes = [(50, 5000)] if args.quick else [(50, 5000), (100, 20000)]

    header = (f"{'model':5} {'items':>5} {'persons':>7} | {'native s':>8} {'+SE s':>7} "
              f"{'iter':>4} {'RMSE a':>7} {'RMSE b':>7} | {'girth s':>8} {'RMSE a':>7} "
              f"{'RMSE b':>7} | {'dLL':>7} {'speed-up':>8}")
    print(header)
    print("-" * len(header))
    for model in ("2pl", "grm"):
        for n_items, n_persons in sizes:
            true, y = make_data(model, n_items, n_persons, seed=n_items + n_persons)
            t0 = time.perf_counter()
            nat = calibrate(y, model, compute_se=False, n_quad=args.n_quad)
            t_nat = time.perf_counter() - t0
            t0 = time.perf_counter()
            calibrate(y, model, compute_se=True, n_quad=args.n_quad)
            t_se = time.perf_counter() - t0
            t0 = time.perf_counter()
            gir = calibrate_girth(y, model)
            t_gir = time.perf_counter() - t0
            print(f"{model:5} {n_items:5d} {n_persons:7d} | {t_nat:8.2f} {t_se:7.2f} "
                  f"{nat.n_iter:4d} {rmse(nat.params.a, true.a):7.4f} "
                  f"{rmse(nat.params.b, true.b):7.4f} | {t_gir:8.2f} "
                  f"{rmse(gir.params.a, true.a):7.4f} {rmse(gir.params.b, true.b):7.4f} | "
                  f"{nat.loglik - gir.loglik:7.2f} {t_gir / t_nat:7.1f}x", flush=True)


if __name__ == "__main__":
    main()
