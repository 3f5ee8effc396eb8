"""The department role: an account names its department (and no district); the
security policy gives it the ``department:<code>`` principal the report pages use."""
from __future__ import annotations

from typing import Any

import pytest

from learningcity.accounts import AccountError, create_user, set_role
from tests.conftest import PASSWORD


def test_a_department_account_needs_its_department_only(dbsession: Any, staff: Any) -> None:
    with pytest.raises(AccountError, match="needs --department"):
        create_user(dbsession, "d1", PASSWORD, "department")
    with pytest.raises(AccountError, match="only department accounts"):
        create_user(dbsession, "d2", PASSWORD, "monitor", department_code="education")
    with pytest.raises(AccountError, match="department code"):
        create_user(dbsession, "d3", PASSWORD, "department", department_code="Edu Bureau")
    with pytest.raises(AccountError):
        create_user(dbsession, "d4", PASSWORD, "department", "A",
                    department_code="education")
    user = create_user(dbsession, "d5", PASSWORD, "department", department_code="education")
    assert (user.role, user.department_code, user.district_code) == (
        "department", "education", None)
    set_role(dbsession, "d5", "district", "A", "admin")
    assert (user.role, user.department_code, user.district_code) == ("district", None, "A")


def test_the_principal_names_the_department(testapp: Any, department: Any,
                                            login: Any) -> None:
    login("dept_education")
    assert testapp.get("/programme/reports/2024/department/education").status_int == 200
    testapp.get("/programme/reports/2024/department/trade_union", status=403)
    testapp.get("/monitoring", status=403)  # the survey dashboards are not its pages
