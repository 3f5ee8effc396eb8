"""Fixtures of the programme tests: a department account beside the shell's staff."""
from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PASSWORD


@pytest.fixture
def department(dbsession: Any, staff: dict[str, Any]) -> dict[str, Any]:
    """Two department accounts (education, trade_union) and the built-in indicators."""
    from learningcity.accounts import create_user
    from monitoring.programme import catalogue

    catalogue.ensure_builtin(dbsession)
    users = {
        "education": create_user(dbsession, "dept_education", PASSWORD, "department",
                                 department_code="education"),
        "trade_union": create_user(dbsession, "dept_union", PASSWORD, "department",
                                   department_code="trade_union"),
    }
    dbsession.commit()
    return {**staff, **users}


@pytest.fixture(autouse=True)
def district_reported_sources(request: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Most programme tests exercise the district-report path of every built-in
    indicator: the installed organisations provider (which takes over the learning-type
    communities share) is hidden from them. Tests marked ``installed_sources`` see the
    sources as installed."""
    if request.node.get_closest_marker("installed_sources") is None:
        from monitoring.programme import sources

        monkeypatch.setattr(sources, "registered", lambda: {})
