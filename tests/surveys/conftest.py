"""Fixtures for survey delivery tests: districts, the demo item bank (for IRT scale scores)
and the default survey, imported and published as on first start."""
from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import load_once


@pytest.fixture
def surveys_demo(dbsession: Any) -> Any:
    from itembank import demo_content as bank_demo
    from learningcity import demo
    from surveys import demo_content

    load_once(dbsession, "surveys demo", lambda db: (
        demo.load(db), bank_demo.load(db), demo_content.load(db)))
    return dbsession


#: a full path through the default survey that takes every branch "in": trained,
#: aged 60-69 (older-adult education asked), satisfaction grid asked, "other" texts
FULL = {
    "background": {"age_band": "60-69", "sex": "female", "district": "D01",
                   "street": "=HYPERLINK(1)", "occupation": "other",
                   "occupation_other": "志愿者", "education": "senior"},
    "needs": {"topics": ["health", "smart_devices"], "channels": ["community_school"],
              "barriers": ["none"], "times": ["weekday_day"]},
}
