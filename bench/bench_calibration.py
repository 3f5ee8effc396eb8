"""Calibration speed, memory and fit: scoring.calibration vs Python mirt 1.2 vs girth.

Run from the repository root (needs the ``bench`` extra: ``pip install -e .[bench]``)::

    python bench/bench_calibration.py              # 2PL and GRM: 50 x 5,000, 100 x 20,000,
                                                   # 200 x 100,000 (girth skipped there)
    python bench/bench_calibration.py --quick      # 50 x 5,000 only
    python bench/bench_calibration.py --no-big     # without 200 x 100,000
    python bench/bench_calibration.py --repeat 2   # best of two runs per cell
    python bench/bench_calibration.py --sizes 200x100000 --engines ours,ours-fit,cli

Data: theta ~ N(0, 1), a ~ U(0.7, 2.0), 2PL b ~ U(-2, 2), GRM with 4 categories
(:func:`make_data`, seed = items + persons), written once as RESPONSES.csv (``person_id``
then ``i0..``) and as .npy into a temporary directory.  Every run is its own child
process, so times and peak memory (``ru_maxrss`` of that process) do not mix:

* ``ours``: ``scoring.calibration.calibrate`` on the matrix (default settings, standard
  errors included: ``se_method="auto"``), time of the call only;
* ``ours-fit``: the same without standard errors (what girth computes);
* ``cli``: ``learningcity calibrate RESPONSES.csv --model M --out P --quiet`` (file
  reading, calibration with SEs, S-X2 item fit, writing), wall time of the process;
* ``mirt``: ``mirt.fit_mirt(y, "2PL"/"GRM")`` with its defaults (21 Gauss-Hermite
  points, Oakes SEs, Rust backend when installed), time of the call only;
* ``mirt script``: a whole process reading the CSV (pandas), fitting and writing the
  parameters (the mirt analogue of the CLI run);
* ``cli-fit``: the CLI run with ``--no-se --no-fit`` (what girth computes);
* ``girth``: ``scoring.girth_engine.calibrate_girth`` (girth's MML, no SEs), time of the
  call; ``girth script``: a whole process reading the CSV (pandas), ``girth.twopl_mml`` or
  ``girth.grm_mml`` and writing the parameters; both skipped at 200 x 100,000 unless
  ``--girth-big``.

``LL`` is ``scoring.calibration.marginal_loglik`` at each engine's estimates on the same
fine grid (121 points on [-6, 6], N(0, 1)); ``dLL`` = engine minus ours (negative: ours
fit better).  RMSE a / b against the generating values.  ``time/ours``: engine time over
ours (mirt over ``ours``, girth over ``ours-fit``, mirt script over ``cli``, girth script
over ``cli-fit``, cli-fit over ``cli``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scoring import catalogue, models  # noqa: E402
from scoring.params import ItemParams  # noqa: E402

FINE_GRID = 121

MIRT_SCRIPT = """
import sys, time
import numpy as np, pandas as pd, mirt
src, model, out = sys.argv[1:4]
frame = pd.read_csv(src)
y = frame.drop(columns=["person_id"]).to_numpy()
res = mirt.fit_mirt(y.astype(int), model)
P = res.model.parameters
a = np.asarray(P["discrimination"]).ravel()
b = np.asarray(P["difficulty"] if "difficulty" in P else P["thresholds"]).reshape(a.size, -1)
pd.DataFrame(np.column_stack([a, b])).to_csv(out, index=False)
"""


def make_data(model: str, n_items: int, n_persons: int, seed: int
              ) -> tuple[ItemParams, np.ndarray]:
    """Generating parameters and responses (n_persons, n_items), simulated in chunks."""
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

GIRTH_SCRIPT = """
import sys
import numpy as np, pandas as pd, girth
src, model, out = sys.argv[1:4]
frame = pd.read_csv(src)
y = frame.drop(columns=["person_id"]).to_numpy().astype(int).T     # girth: items x persons
res = girth.twopl_mml(y) if model == "2pl" else girth.grm_mml(y)
a = np.asarray(res["Discrimination"], dtype=float).ravel()
b = np.asarray(res["Difficulty"], dtype=float).reshape(a.size, -1)
pd.DataFrame(np.column_stack([a, b])).to_csv(out, index=False)
"""


# ------------------------------------------------------------------ child processes

def worker(engine: str, model: str, npy: str, out: str) -> None:
    """Fit in this (fresh) process; write a, b, seconds and peak RSS as JSON."""
    y = np.load(npy)
    if engine in ("ours", "ours-fit"):
        from scoring.calibration import calibrate
        t0 = time.perf_counter()
        res = calibrate(y, model, compute_se=engine == "ours")
        sec = time.perf_counter() - t0
        a, b = res.params.a, res.params.b
        se = "XPD" if "XPD" in res.method_note else "Louis"
        note = f"{res.n_iter} cycles, " + (f"SE {se}" if engine == "ours" else "no SEs")
    elif engine == "mirt":
        import mirt
        yi = y.astype(int)
        t0 = time.perf_counter()
        res = mirt.fit_mirt(yi, model.upper())
        sec = time.perf_counter() - t0
        P = res.model.parameters
        a = np.asarray(P["discrimination"]).ravel()
        b = np.asarray(P["difficulty"] if "difficulty" in P else P["thresholds"])
        b = b.reshape(a.size, -1)
        note = f"{res.n_iterations} cycles, SE {res.se_method}"
    elif engine == "girth":
        from scoring.girth_engine import calibrate_girth
        t0 = time.perf_counter()
        res = calibrate_girth(y, model)
        sec = time.perf_counter() - t0
        a, b = res.params.a, res.params.b
        note = "no SEs"
    else:
        raise SystemExit(f"unknown engine {engine}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out).write_text(json.dumps({"seconds": sec, "rss_mib": rss, "note": note,
                                     "a": np.asarray(a).tolist(),
                                     "b": np.asarray(b, dtype=float).tolist()}))


def run_child(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process (its own getrusage)."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "rc = subprocess.run(sys.argv[1:]).returncode; "
             "print(time.perf_counter() - t, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, rc)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True,
                         text=True, check=True)
    sec, rss, rc = out.stdout.split()[-3:]
    if rc != "0":
        raise RuntimeError(f"{cmd} failed:\n{out.stderr[-2000:]}")
    return float(sec), float(rss)


def in_process(engine: str, model: str, npy: Path, tmp: Path, repeat: int) -> dict:
    best = None
    for _ in range(repeat):
        out = tmp / f"{engine}.json"
        run_child([sys.executable, __file__, "--worker", engine, model, str(npy), str(out)])
        got = json.loads(out.read_text())
        if best is None or got["seconds"] < best["seconds"]:
            best = got
    return best


def whole_process(kind: str, model: str, csv: Path, tmp: Path, repeat: int) -> dict:
    """One engine as a whole process on RESPONSES.csv: ``cli`` (SEs and item fit),
    ``cli-fit`` (``--no-se --no-fit``: what girth computes), ``mirt-script`` or
    ``girth-script``."""
    out = tmp / f"{kind}-params.csv"
    if kind in ("cli", "cli-fit"):
        exe = Path(sys.executable).with_name("learningcity")
        start = [str(exe)] if exe.exists() else [
            sys.executable, "-c", "import sys; from learningcity.cli import main; "
            "sys.argv[0] = 'learningcity'; sys.exit(main())"]
        cmd = [*start, "calibrate", str(csv), "--model", model, "--out", str(out), "--quiet"]
        if kind == "cli-fit":
            cmd += ["--no-se", "--no-fit"]
    else:
        script = tmp / f"{kind}.py"
        script.write_text(MIRT_SCRIPT if kind == "mirt-script" else GIRTH_SCRIPT)
        arg = model.upper() if kind == "mirt-script" else model
        cmd = [sys.executable, str(script), str(csv), arg, str(out)]
    runs = [run_child(cmd) for _ in range(repeat)]
    sec, rss = min(runs)
    if kind in ("cli", "cli-fit"):
        from scoring.io import read_params
        p = read_params(str(out))
        a, b = p.a, p.b
    else:
        vals = np.loadtxt(out, delimiter=",", skiprows=1, ndmin=2)
        a, b = vals[:, 0], vals[:, 1:]
    return {"seconds": sec, "rss_mib": rss, "a": np.asarray(a).tolist(),
            "b": np.asarray(b, dtype=float).tolist(), "note": ""}


# ------------------------------------------------------------------------ reporting

def evaluate(model: str, true: ItemParams, y: np.ndarray, got: dict) -> dict:
    from scoring.calibration import marginal_loglik
    a = np.asarray(got["a"], dtype=float)
    b = np.asarray(got["b"], dtype=float).reshape(a.size, -1)
    est = ItemParams.from_arrays(true.item_ids, model, a, b)
    got["ll"] = marginal_loglik(est, y, n_quad=FINE_GRID)
    got["rmse_a"] = rmse(a, true.a)
    got["rmse_b"] = rmse(b, true.b[:, :b.shape[1]])
    return got


PACKAGES = ("learningcity", "scoring", "tabular", "assessment", "itembank", "surveys",
            "monitoring")


def bytecode_as_installed() -> str:
    """Compile the project's modules once, as ``pip install`` does for a regular install
    and Python on a first run: with PYTHONDONTWRITEBYTECODE set (this machine) an editable
    install would otherwise recompile every module in every CLI process, while girth's
    and mirt's installed modules load from their bytecode."""
    import compileall

    root = Path(__file__).resolve().parent.parent
    ok = all(compileall.compile_dir(root / name, quiet=1, workers=0) for name in PACKAGES)
    return ("project bytecode compiled (PYTHONDONTWRITEBYTECODE is set)"
            if sys.flags.dont_write_bytecode else "project bytecode as Python writes it") \
        + ("" if ok else ", with errors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 50 x 5,000 sets")
    parser.add_argument("--no-big", action="store_true", help="skip 200 x 100,000")
    parser.add_argument("--girth-big", action="store_true",
                        help="run girth at 200 x 100,000 too (tens of minutes)")
    parser.add_argument("--models", default="2pl,grm")
    parser.add_argument("--sizes", help="items x persons list, e.g. 100x20000,200x100000")
    parser.add_argument("--engines", default="ours,ours-fit,cli,cli-fit,mirt,mirt-script,"
                        "girth,girth-script")
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell (best kept)")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    sizes = [(50, 5000)]
    if not args.quick:
        sizes.append((100, 20000))
        if not args.no_big:
            sizes.append((200, 100000))
    if args.sizes:
        sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes.split(",")]
    engines = args.engines.split(",")
    compiled = bytecode_as_installed()
    load = os.getloadavg()
    print(f"# {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {platform.node()}, "
          f"{os.cpu_count()} cores, python {platform.python_version()}, numpy "
          f"{np.__version__}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"{compiled}")
    header = (f"{'model':5} {'items':>5} {'persons':>7} {'engine':12} {'s':>8} "
              f"{'MiB':>6} {'RMSE a':>7} {'RMSE b':>7} {'LL':>14} {'dLL':>8} "
              f"{'time/ours':>9}  note")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="bench-cal-") as tmpdir:
        tmp = Path(tmpdir)
        for model in args.models.split(","):
            for n_items, n_persons in sizes:
                true, y = make_data(model, n_items, n_persons, seed=n_items + n_persons)
                npy, csv = tmp / "y.npy", tmp / "RESPONSES.csv"
                np.save(npy, y)
                with open(csv, "w", encoding="utf-8") as fh:
                    fh.write("person_id," + ",".join(true.item_ids) + "\n")
                    ids = np.char.add("p", np.arange(n_persons).astype(str))
                    body = np.column_stack([ids, y.astype(int).astype(str)])
                    fh.write("\n".join(",".join(r) for r in body) + "\n")
                rows = {}
                plan = [("ours", "in"), ("ours-fit", "in"), ("cli", "whole"),
                        ("cli-fit", "whole"), ("mirt", "in"), ("mirt-script", "whole"),
                        ("girth", "in"), ("girth-script", "whole")]
                baseline = {"ours": "ours", "ours-fit": "ours", "cli": "cli",
                            "cli-fit": "cli", "mirt": "ours", "mirt-script": "cli",
                            "girth": "ours-fit", "girth-script": "cli-fit"}
                for name, kind in plan:
                    if name not in engines:
                        continue
                    if (name.startswith("girth") and n_persons > 50000
                            and not args.girth_big):
                        continue
                    if kind == "in":
                        got = in_process(name, model, npy, tmp, args.repeat)
                    else:
                        got = whole_process(name, model, csv, tmp, args.repeat)
                    rows[name] = evaluate(model, true, y, got)
                    base = rows.get(baseline[name])
                    r = rows[name]
                    ratio = r["seconds"] / base["seconds"] if base else float("nan")
                    dll = r["ll"] - base["ll"] if base else float("nan")
                    print(f"{model:5} {n_items:5d} {n_persons:7d} {name:12} "
                          f"{r['seconds']:8.2f} {r['rss_mib']:6.0f} {r['rmse_a']:7.4f} "
                          f"{r['rmse_b']:7.4f} {r['ll']:14.2f} {dll:8.2f} {ratio:8.2f}x"
                          f"  {r['note']}", flush=True)


if __name__ == "__main__":
    main()
