"""Fixtures for the shell's tests: districts and staff accounts of every role."""
from __future__ import annotations

from typing import Any

import pytest

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One real argon2 hash of PASSWORD, computed once (hashing is slow on purpose)."""
    from learningcity.accounts import hash_password

    return hash_password(PASSWORD)


@pytest.fixture
def staff(dbsession: Any, password_hash: str, monkeypatch: pytest.MonkeyPatch
          ) -> dict[str, Any]:
    """Two districts and one account per role (two district accounts, A and B)."""
    from learningcity import accounts
    from learningcity.accounts import create_user
    from learningcity.models import District

    monkeypatch.setattr(accounts, "hash_password", lambda _password: password_hash)

    dbsession.add_all([District(code="A", name_zh="甲区", name_en="District A"),
                       District(code="B", name_zh="乙区", name_en="District B")])
    dbsession.flush()
    users = {
        "admin": create_user(dbsession, "admin", PASSWORD, "admin"),
        "researcher": create_user(dbsession, "researcher", PASSWORD, "researcher"),
        "monitor": create_user(dbsession, "monitor", PASSWORD, "monitor"),
        "district_a": create_user(dbsession, "district_a", PASSWORD, "district", "A"),
        "district_b": create_user(dbsession, "district_b", PASSWORD, "district", "B"),
    }
    dbsession.commit()
    return users


@pytest.fixture
def login(testapp: Any) -> Any:
    """Log in through the real form (CSRF token included); returns the response."""

    def do_login(username: str, password: str = PASSWORD, status: Any = None) -> Any:
        form = testapp.get("/login").forms[0]
        form["username"] = username
        form["password"] = password
        return form.submit(status=status)

    return do_login
