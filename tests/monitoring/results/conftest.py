"""Fixtures of the monitoring results tests: three synthetic campaigns in the monitoring
database (district A in 2025 and 2026, district B in 2026)."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from monitoring.results import aggregate as A
from tests.monitoring.synthetic import respondents


def _campaigns() -> dict[str, Any]:
    return {
        "A-2025": respondents(seed=1, district="A", code="A-2025", participation=0.4,
                              closes=dt.datetime(2025, 6, 30, tzinfo=dt.UTC)),
        "A-2026": respondents(seed=2, district="A", code="A-2026", participation=0.6,
                              closes=dt.datetime(2026, 6, 30, tzinfo=dt.UTC)),
        "B-2026": respondents(seed=3, district="B", code="B-2026", participation=0.5,
                              closes=dt.datetime(2026, 6, 30, tzinfo=dt.UTC)),
    }


@pytest.fixture(scope="module")
def computed() -> dict[str, Any]:
    """The three campaigns' aggregate rows, computed once (the statistics are tested in
    test_aggregate.py; here they only feed the pages)."""
    from monitoring.results.indicators import catalogue

    return {code: (data, A.compute_aggregates(data, catalogue()))
            for code, data in _campaigns().items()}


@pytest.fixture
def aggregated(dbsession: Any, staff: Any, computed: dict[str, Any]) -> dict[str, Any]:
    """Campaigns A-2025 and A-2026 (district A) and B-2026 (district B) in the
    monitoring database."""
    for data, rows in computed.values():
        A.write_aggregates(dbsession, data.campaign, rows, len(data.frame))
    dbsession.commit()
    return {code: data for code, (data, _rows) in computed.items()}
