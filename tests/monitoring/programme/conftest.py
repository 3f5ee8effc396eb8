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
