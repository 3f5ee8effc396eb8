"""Writes two_stage_sample.csv: one two-stage draw of the Monte Carlo's PPS population
(tests/monitoring/stats/test_two_stage_coverage.py), through the product's own street
draw (sampling.pps_sample, with its certainty street) and 10 households per street, of
which two streets answer in part (the third drawn street one household, the fourth
three: nonresponse, and a street with a single respondent).
Run from the repository root:
    python -m tests.monitoring.stats.data.two_stage.make_sample
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from monitoring.stats import sampling
from tests.monitoring.stats.test_two_stage_coverage import PER_STREET, population

SEED = 7


def main() -> None:
    streets, y = population(equal=False)
    drawn = sampling.pps_sample(streets, "size", {"north": 20, "south": 20}, seed=SEED,
                                stratum="stratum").units
    second = np.random.default_rng([SEED, 2])
    rows = []
    for number, street in enumerate(drawn.itertuples()):
        size = int(street.size)
        k = sampling.second_stage_size(PER_STREET, size)
        answered = {2: 1, 3: 3}.get(number, k)
        for j in sorted(second.choice(size, k, replace=False).tolist())[:answered]:
            person = int(street.first) + j
            rows.append({"stratum": street.stratum, "street": street.street,
                         "person": person, "pi1": repr(float(street.pi)),
                         "certainty": int(street.certainty), "size": size, "k": k,
                         "weight": repr(size / (float(street.pi) * k)),
                         "y": repr(float(y[person])), "group": "a" if person % 3 else "b"})
    out = Path(__file__).with_name("two_stage_sample.csv")
    pd.DataFrame(rows).to_csv(out, index=False)


if __name__ == "__main__":
    main()
