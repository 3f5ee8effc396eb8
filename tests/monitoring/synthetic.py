"""A synthetic respondent table with a known design, for aggregation and page tests.

Three strata x six PSUs (streets) x about 25 persons in one district, weights
from the design, answers with known structure; one small group (civil servants,
about 12 people) so small-cell suppression shows.  Same seed, same table.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Campaign:
    code: str
    district: str
    name: str
    closes_at: dt.datetime


@dataclass
class DesignSpec:
    strata: str | None = "stratum"
    psu: str | None = "psu"
    fpc: str | None = "fpc"


@dataclass
class Data:
    frame: pd.DataFrame
    campaign: Any
    design: Any


def respondents(seed: int = 7, district: str = "A", code: str = "C1",
                closes: dt.datetime | None = None, n_per_psu: int = 25,
                participation: float = 0.6) -> Data:
    """The table (see the module docstring); ``participation`` drives community_training."""
    rng = np.random.default_rng(seed)
    rows = []
    person = 0
    for h in range(3):
        for p in range(6):
            street = f"{district}-S{h}{p}"
            for _ in range(n_per_psu + int(rng.integers(-3, 4))):
                person += 1
                age = rng.choice(["18-29", "30-44", "45-59", "60-69", "70+"],
                                 p=[.2, .2, .2, .2, .2])
                older = age in ("60-69", "70+")
                if older:
                    group = "older_adult"
                elif rng.random() < 0.03:
                    group = "civil_servant"
                else:
                    group = rng.choice(["farmer", "industrial_worker", "migrant_worker"])
                theta = rng.normal(0.2 * h - (0.3 if older else 0), 1)
                pv = 500 + 100 * (theta + rng.normal(0, 0.35, 5))
                trained = rng.random() < participation + 0.05 * h
                rows.append({
                    "respondent": f"R{person:05d}", "district": district, "street": street,
                    "stratum": f"H{h}", "psu": street, "fpc": 20.0,
                    "weight": (20 / 6) * (400 / n_per_psu) * (1 + 0.1 * h),
                    "age_band": age, "sex": rng.choice(["female", "male"]), "group": group,
                    "elder_education": (rng.choice(["regular", "sometimes", "never"],
                                                   p=[.3, .3, .4]) if older else np.nan),
                    "community_training": ("yes" if trained else "no")
                    if rng.random() > 0.05 else np.nan,
                    "topics__health": float(rng.random() < 0.5),
                    "topics__arts": float(rng.random() < 0.25),
                    "barriers__cost": float(rng.random() < 0.3),
                    **{f"pv{m + 1}": float(pv[m]) for m in range(5)},
                    "score": float(pv.mean()),
                    "scale_motivation": float(np.clip(rng.normal(3.5, 0.8), 1, 5)),
                })
    frame = pd.DataFrame(rows)
    closes = closes or dt.datetime(2026, 6, 30, tzinfo=dt.UTC)
    return Data(frame=frame, campaign=Campaign(code, district, f"Campaign {code}", closes),
                design=DesignSpec())
