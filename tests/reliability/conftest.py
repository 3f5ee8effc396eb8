"""Fixtures for the reliability suites: the demo bank in the test database."""
from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def demo(dbsession: Any) -> Any:
    """Districts, the demo item bank and its published demo calibrations."""
    from itembank import demo_content
    from learningcity import demo

    demo.load(dbsession)
    demo_content.load(dbsession)
    dbsession.commit()
    return dbsession
