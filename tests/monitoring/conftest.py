"""Fixtures for campaign tests, reusable by every monitoring test.

* ``monitoring_demo``: districts A/B and the staff accounts (``staff``), the demo item
  bank (so the LLA test is a published instrument).
* ``city``: that, plus the demo districts (D01...) and the default survey.
* ``make_campaign(district="A", mode="sample", **fields)``: a draft campaign whose window
  is open now (Asia/Shanghai input, stored UTC).
* ``unit_frame_csv(rows)`` / ``cluster_frame_csv(rows)``: frame files as bytes.
* ``drawn_campaign(kind="unit"|"cluster", n=..., seed=...)``: frame uploaded, design set,
  sample drawn; returns the campaign (invitations not issued yet).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import load_once

ACTOR = "tester"


def unit_rows(streets: int = 3, bands: tuple[str, ...] = ("18-39", "40-59", "60+"),
              per_cell: int = 10) -> list[dict[str, str]]:
    """A household frame: street x age_band cells of ``per_cell`` units each."""
    rows = []
    for s in range(1, streets + 1):
        for b, band in enumerate(bands):
            for i in range(per_cell + s + b):  # cells of different sizes
                rows.append({"hh_id": f"H{s:02d}{b}{i:03d}", "street": f"S{s:02d}",
                             "age_band": band, "sex": "F" if i % 2 else "M"})
    return rows


def cluster_rows() -> list[dict[str, str]]:
    """Communities in two strata (urban/rural) with population counts."""
    sizes = {"urban": [1200, 800, 400, 300, 2500, 650], "rural": [90, 300, 150, 60, 210]}
    rows = []
    for stratum, values in sizes.items():
        for i, size in enumerate(values):
            rows.append({"community": f"{stratum[0].upper()}{i:02d}", "area": stratum,
                         "population": str(size), "street": f"S{i % 3:02d}"})
    return rows


def to_csv(rows: list[dict[str, str]], encoding: str = "utf-8", bom: bool = False) -> bytes:
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(str(r.get(h, "")) for h in header) for r in rows]
    text = "\r\n".join(lines) + "\r\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


@pytest.fixture
def monitoring_demo(dbsession: Any, staff: dict[str, Any]) -> Any:
    from itembank import demo_content

    load_once(dbsession, "monitoring demo", demo_content.load)
    return dbsession


@pytest.fixture
def city(monitoring_demo: Any) -> Any:
    """``monitoring_demo`` plus the demo districts (D01...) and the default survey, as
    on a first start."""
    from learningcity import demo
    from surveys import demo_content

    load_once(monitoring_demo, "city", lambda db: (demo.load(db), demo_content.load(db)))
    return monitoring_demo


@pytest.fixture
def make_campaign(monitoring_demo: Any) -> Callable[..., Any]:
    from monitoring.fieldwork.campaigns import create_campaign
    from monitoring.fieldwork.window import local_input

    def make(district: str = "A", mode: str = "sample", **fields: Any) -> Any:
        now = dt.datetime.now(dt.UTC)
        values = {"name": "Spring survey", "test_instrument": "LLA",
                  "survey_code": "learning_needs", "mode": mode,
                  "opens_at": local_input(now - dt.timedelta(days=1)),
                  "closes_at": local_input(now + dt.timedelta(days=30)), **fields}
        campaign = create_campaign(monitoring_demo, district_code=district, user=ACTOR,
                                   **values)
        monitoring_demo.commit()
        return campaign

    return make


@pytest.fixture
def drawn_campaign(make_campaign: Callable[..., Any], monitoring_demo: Any
                   ) -> Callable[..., Any]:
    from monitoring.fieldwork import draw, frames

    def make(kind: str = "unit", n: int = 12, seed: int | None = 12345, m: int = 4,
             district: str = "A", mode: str = "sample", **design: Any) -> Any:
        campaign = make_campaign(district=district, mode=mode)
        if kind == "unit":
            spec = frames.FrameSpec("unit", "hh_id", ["street", "age_band"])
            data = to_csv(unit_rows())
        else:
            spec = frames.FrameSpec("cluster", "community", ["area"], "population")
            data = to_csv(cluster_rows())
        frames.import_frame(monitoring_demo, campaign, f"{kind}.csv", data, spec, ACTOR)
        draw.set_design(monitoring_demo, campaign, ACTOR, n=n,
                        m_per_psu=m if kind == "cluster" else None, **design)
        draw.draw_sample(monitoring_demo, campaign, ACTOR, seed=seed)
        monitoring_demo.commit()
        return campaign

    return make
