"""Reviewing calibrations: misfit flags, two-calibration diffs, the bank health report."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring import models

from .charts import THETA
from .models import Calibration, CalibrationItem
from .services import calibration_params

#: infit/outfit mean squares outside this band, or S-X2 p below SX2_ALPHA, flag misfit
MSQ_BAND = (0.7, 1.3)
SX2_ALPHA = 0.01
#: an item "gives information" at theta when its information there exceeds this
INFO_FLOOR = 0.1


def misfit(row: CalibrationItem) -> bool:
    """Flag an item whose fit statistics are outside the usual bands."""
    for value in (row.infit, row.outfit):
        if value is not None and not MSQ_BAND[0] <= value <= MSQ_BAND[1]:
            return True
    return row.sx2_p is not None and row.sx2_p < SX2_ALPHA


@dataclass
class DiffRow:
    code: str
    left: CalibrationItem | None
    right: CalibrationItem | None
    delta_a: float | None = None
    delta_b: float | None = None
    moved: bool = False


def diff(left: Calibration, right: Calibration, threshold: float = 0.3) -> list[DiffRow]:
    """Items of two calibrations side by side; ``moved`` when a or mean b shift > threshold."""
    lefts = {r.item.code: r for r in left.items}
    rights = {r.item.code: r for r in right.items}
    rows = []
    for code in sorted(set(lefts) | set(rights)):
        lrow, rrow = lefts.get(code), rights.get(code)
        row = DiffRow(code, lrow, rrow)
        if lrow is not None and rrow is not None:
            row.delta_a = rrow.a - lrow.a
            row.delta_b = float(np.mean(rrow.b) - np.mean(lrow.b))
            row.moved = abs(row.delta_a) > threshold or abs(row.delta_b) > threshold
        rows.append(row)
    rows.sort(key=lambda r: -(abs(r.delta_b or 0) + abs(r.delta_a or 0)))
    return rows


@dataclass
class HealthReport:
    theta: np.ndarray
    info_by_domain: dict[str, np.ndarray]
    total_info: np.ndarray
    items_informative: np.ndarray  # (n_theta,) count of items with info > INFO_FLOOR
    thin_regions: list[tuple[float, float]]
    min_items: int
    misfit_items: list[str] = field(default_factory=list)
    dif_items: list[str] = field(default_factory=list)
    exposure_rates: dict[str, float] = field(default_factory=dict)
    overexposed: list[str] = field(default_factory=list)


def bank_health(calibration: Calibration, exposures: Mapping[str, Mapping[str, Any]],
                min_items: int = 5, max_exposure: float = 0.3) -> HealthReport:
    """Where the bank measures well, where it is thin, and which items need a look."""
    params = calibration_params(calibration)
    info = models.item_information(params, THETA)  # (n_theta, n_items)
    domains = [r.item.domain_code for r in calibration.items]
    by_domain: dict[str, np.ndarray] = defaultdict(lambda: np.zeros_like(THETA))
    for j, domain in enumerate(domains):
        by_domain[domain] = by_domain[domain] + info[:, j]
    informative = (info > INFO_FLOOR).sum(axis=1)
    thin = informative < min_items
    regions: list[tuple[float, float]] = []
    start = None
    for t, is_thin in zip(THETA, thin, strict=True):
        if is_thin and start is None:
            start = t
        if not is_thin and start is not None:
            regions.append((float(start), float(t)))
            start = None
    if start is not None:
        regions.append((float(start), float(THETA[-1])))
    rates = {code: float(e["rate"]) for code, e in exposures.items()}
    return HealthReport(
        theta=THETA, info_by_domain=dict(sorted(by_domain.items())), total_info=info.sum(1),
        items_informative=informative, thin_regions=regions, min_items=min_items,
        misfit_items=[r.item.code for r in calibration.items if misfit(r)],
        dif_items=[r.item.code for r in calibration.items if r.dif_flag in ("B", "C")],
        exposure_rates=rates,
        overexposed=sorted(c for c, rate in rates.items() if rate > max_exposure))
