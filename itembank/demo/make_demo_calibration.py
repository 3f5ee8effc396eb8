"""Make the demo calibrations with the project's own pipeline, from simulated data.

    python itembank/demo/make_demo_calibration.py

Population: 4,000 simulated adult residents, theta ~ N(0, 1), seed 20261129.
Generating parameters (written to ``generating_params_*.csv`` beside this file):

- ability items (operational single-choice items of ``items.json``): 2PL with
  b = the author's ``difficulty_hint`` and a ~ lognormal(mean log 0.2, SD 0.25);
  booklet design: every simulee answers 8 random items from each of the 5 domains
  (40 items), so the data are sparse the way adaptive data are;
- rating items (operational rating items): GRM with a ~ lognormal(0.3, 0.2) and four
  thresholds spread around a location ~ N(-0.3, 0.5); every simulee answers all.

The simulated responses are then calibrated with ``learningcity calibrate`` (2PL and
GRM), and the resulting PARAMS files ``calibration_lla.csv`` and
``calibration_lms.csv`` are what the demo loader imports and publishes, labelled as a
demonstration calibration from simulated data.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 20261129
N_PERSONS = 4000
PER_DOMAIN = 8


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def main() -> None:
    rng = np.random.default_rng(SEED)
    items = json.loads((HERE / "items.json").read_text(encoding="utf-8"))
    ability = [i for i in items if i["type"] == "single_choice" and i["status"] == "operational"]
    rating = [i for i in items if i["type"] == "rating" and i["status"] == "operational"]
    theta = rng.normal(0.0, 1.0, N_PERSONS)

    # ability items: 2PL, booklet design
    a = np.exp(rng.normal(0.2, 0.25, len(ability)))
    b = np.array([float(i.get("difficulty_hint", 0.0)) for i in ability])
    domains = sorted({i["domain"] for i in ability})
    by_domain = {d: [j for j, i in enumerate(ability) if i["domain"] == d] for d in domains}
    responses = np.full((N_PERSONS, len(ability)), np.nan)
    for p in range(N_PERSONS):
        chosen = np.concatenate([rng.choice(by_domain[d], size=min(PER_DOMAIN,
                                                                   len(by_domain[d])),
                                            replace=False) for d in domains])
        prob = sigmoid(a[chosen] * (theta[p] - b[chosen]))
        responses[p, chosen] = (rng.random(len(chosen)) < prob).astype(float)
    _write_generating(HERE / "generating_params_lla.csv", ability, a, b[:, None])

    # rating items: GRM with 5 categories, everyone answers everything
    a_r = np.exp(rng.normal(0.3, 0.2, len(rating)))
    loc = rng.normal(-0.3, 0.5, len(rating))
    thresholds = loc[:, None] + np.array([-2.0, -0.8, 0.3, 1.5])[None, :]
    cum = sigmoid(a_r[None, :, None] * (theta[:, None, None] - thresholds[None, :, :]))
    u = rng.random((N_PERSONS, len(rating)))[:, :, None]
    ratings = (u < cum).sum(axis=2).astype(float)
    _write_generating(HERE / "generating_params_lms.csv", rating, a_r, thresholds)

    with tempfile.TemporaryDirectory() as tmp:
        for code, its, data, model in (("lla", ability, responses, "2pl"),
                                       ("lms", rating, ratings, "grm")):
            path = Path(tmp) / f"responses_{code}.csv"
            with path.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["person_id"] + [i["code"] for i in its])
                for p in range(N_PERSONS):
                    writer.writerow([f"sim{p + 1:05d}"] + ["" if np.isnan(x) else int(x)
                                                          for x in data[p]])
            out = HERE / f"calibration_{code}.csv"
            subprocess.run([sys.executable, "-m", "learningcity.cli", "calibrate", str(path),
                            "--model", model, "--out", str(out)], check=True)
            print(f"wrote {out.name}")
    provenance = {
        "LLA": {"source": "simulated", "persons": N_PERSONS, "seed": SEED,
                "design": f"booklets of {PER_DOMAIN} items per domain",
                "generating_parameters": "generating_params_lla.csv",
                "population": "theta ~ N(0, 1)", "model": "2pl"},
        "LMS": {"source": "simulated", "persons": N_PERSONS, "seed": SEED,
                "design": "complete", "generating_parameters": "generating_params_lms.csv",
                "population": "theta ~ N(0, 1)", "model": "grm"},
    }
    (HERE / "provenance.json").write_text(json.dumps(provenance, indent=1), encoding="utf-8")


def _write_generating(path: Path, items: list[dict], a: np.ndarray, b: np.ndarray) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["item_id", "a"] + [f"b{k + 1}" for k in range(b.shape[1])])
        for item, slope, row in zip(items, a, b, strict=True):
            writer.writerow([item["code"], f"{slope:.4f}"] + [f"{x:.4f}" for x in row])


if __name__ == "__main__":
    main()
