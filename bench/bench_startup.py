"""Start-up of the command line, whole process as users run it, beside its anchors.

Run from the repository root (after ``pip install -e .[bench]``)::

    python bench/bench_startup.py             # 7 alternating rounds
    python bench/bench_startup.py --rounds 15

Each round runs, in fresh processes and in alternating order: ``python -c pass`` (the
interpreter alone), ``python -c "import numpy"``, ``learningcity --help``, ``learningcity
calibrate`` on a 5 x 1,000 2PL file (LSAT6 size: PARAMS.csv with SEs and item fit), and
the same fit by Python mirt 1.2 in a fresh process (``import mirt; mirt.fit_mirt``, no
file reading: its library call is the fastest way a researcher would run it).  Prints
medians, the range, the ratios to mirt, and the target (< 0.5 s for the two commands).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_S = 0.5


def write_lsat_sized(path: Path, seed: int = 6) -> None:
    """5 items x 1,000 persons, 2PL, person_id first (as users' files are)."""
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal(1000)
    a, b = rng.uniform(0.7, 2.0, 5), rng.uniform(-2, 2, 5)
    y = (rng.random((1000, 5)) < 1 / (1 + np.exp(-a * (theta[:, None] - b)))).astype(int)
    lines = ["person_id," + ",".join(f"i{j}" for j in range(5))]
    lines += [f"p{i}," + ",".join(map(str, row)) for i, row in enumerate(y)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    np.save(path.with_suffix(".npy"), y)


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    exe = shutil.which("learningcity")
    if exe is None:
        raise SystemExit("learningcity is not installed (pip install -e .)")
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_lsat_sized(work / "resp.csv")
        runs = {
            "python -c pass": [py, "-c", "pass"],
            "python -c 'import numpy'": [py, "-c", "import numpy"],
            "learningcity --help": [exe, "--help"],
            "learningcity calibrate 5 x 1,000": [exe, "calibrate", "resp.csv", "--model",
                                                 "2pl", "--out", "params.csv", "--quiet"],
        }
        try:
            import mirt  # noqa: F401  (optional: the anchor)
            runs["Python mirt 1.2 fit 5 x 1,000"] = [
                py, "-c", "import numpy as np, mirt; "
                "mirt.fit_mirt(np.load('resp.npy'), '2PL')"]
        except ImportError:
            print("Python mirt is not installed (pip install -e .[bench]): no anchor")
        for argv in runs.values():          # warm the file cache once
            timed(argv, work)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for r in range(args.rounds):
            order = list(runs) if r % 2 == 0 else list(reversed(runs))
            for name in order:
                times[name].append(timed(runs[name], work))
    load = os.getloadavg()[0]
    mirt_median = statistics.median(times.get("Python mirt 1.2 fit 5 x 1,000", [float("nan")]))
    print(f"{args.rounds} alternating rounds; load average {load:.1f}; python "
          f"{sys.version.split()[0]}")
    print(f"{'run':34} {'median s':>9} {'min s':>7} {'max s':>7} {'mirt / this':>12}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:34} {median:9.3f} {min(values):7.3f} {max(values):7.3f} "
              f"{mirt_median / median:12.2f}")
    for name in ("learningcity --help", "learningcity calibrate 5 x 1,000"):
        median = statistics.median(times[name])
        verdict = "met" if median < TARGET_S else "NOT met"
        print(f"target {name} < {TARGET_S} s: {verdict} ({median:.3f} s)")


if __name__ == "__main__":
    main()
