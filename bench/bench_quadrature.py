"""Accuracy and time of the automatic quadrature grid on a long graded test (issue 18).

GRM with 4 categories, a ~ U(1, 2), b ~ sorted N(0, 1), theta ~ N(0, 1), seed 18: fits
at the fixed 41-point grid, at 121 points and with ``n_quad="auto"``; prints the number
of points, time, log-likelihood and RMSE of a and b against the true parameters.

    python bench/bench_quadrature.py [n_items] [n_persons]     # default 200 20000
"""
from __future__ import annotations

import sys
import time

import numpy as np

from scoring.calibration import calibrate


def main(n_items: int = 200, n_persons: int = 20000) -> None:
    rng = np.random.default_rng(18)
    a = rng.uniform(1.0, 2.0, n_items)
    b = np.sort(rng.normal(0.0, 1.0, (n_items, 3)), axis=1)
    theta = rng.standard_normal(n_persons)
    y = np.zeros((n_persons, n_items), dtype=np.float32)
    for j in range(n_items):      # column by column: no persons x items x K tensor
        star = 1 / (1 + np.exp(-a[j] * (theta[:, None] - b[j][None, :])))
        y[:, j] = (rng.random((n_persons, 1)) < star).sum(axis=1)
    print(f"GRM {n_items} items x {n_persons} persons")
    print(f"{'n_quad':>8} {'points':>6} {'time s':>7} {'loglik':>14} {'RMSE a':>7} {'RMSE b':>7}")
    for n_quad in (41, 121, "auto"):
        start = time.perf_counter()
        res = calibrate(y, "grm", n_quad=n_quad, compute_se=False)
        took = time.perf_counter() - start
        ra = np.sqrt(np.mean((res.params.a - a) ** 2))
        rb = np.sqrt(np.mean((res.params.b - b) ** 2))
        print(f"{n_quad!s:>8} {res.n_quad:>6} {took:7.1f} {res.loglik:14.2f} {ra:7.4f} "
              f"{rb:7.4f}")


if __name__ == "__main__":
    main(*(int(v) for v in sys.argv[1:3]))
