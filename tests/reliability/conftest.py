"""Fixtures for the reliability suites: the demo bank in the test database."""
from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import load_once


@pytest.fixture
def demo(dbsession: Any) -> Any:
    """Districts, the demo item bank and its published demo calibrations."""
    from itembank import demo_content
    from learningcity import demo

    load_once(dbsession, "bank demo", lambda db: (demo.load(db), demo_content.load(db)))
    return dbsession
