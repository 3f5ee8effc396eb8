"""Fixtures of the learning-organisation tests.

* ``workbook(**sheets)``: an XLSX whose sheets are lists of row dicts (through tabular).
* ``community_standard``: the template's example standard (community, 2025) stored.
* ``register_ab``: communities in districts A (3) and B (2), a school in A.
* ``client(role)``: a logged-in WebTest client per staff account of ``staff``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import monitoring.organisations.models  # noqa: F401  (tables in the metadata before install)
from tests.conftest import PASSWORD

ACTOR = "tester"


def workbook(**sheets: list[dict[str, Any]]) -> bytes:
    """An XLSX with one sheet per keyword, each a list of rows (dicts)."""
    import pandas as pd

    from tabular.writing import Sheet, write_workbook

    return write_workbook([Sheet(name, pd.DataFrame(rows)) for name, rows in sheets.items()])


def standard_sheets(**changes: Any) -> dict[str, list[dict[str, Any]]]:
    """The example standard's three sheets as rows (``changes`` replace a sheet)."""
    from monitoring.organisations.standards import EXAMPLE, FIELDS

    sheets = {
        "standard": [{"field": f, "value": EXAMPLE[f]} for f in FIELDS],
        "criteria": [{"code": c[0], "name_zh": c[1], "name_en": c[2], "weight": c[3]}
                     for c in EXAMPLE["criteria"]],
        "levels": [{"criterion": c[0], "level": lv[0], "points": lv[1],
                    "descriptor_zh": lv[2], "descriptor_en": lv[3]}
                   for c in EXAMPLE["criteria"] for lv in EXAMPLE["levels"]],
    }
    sheets.update(changes)
    return sheets


@pytest.fixture
def community_standard(dbsession: Any, staff: Any) -> Any:
    from monitoring.organisations.standards import example_workbook, upload_standard

    standard = upload_standard(dbsession, "standard.xlsx", example_workbook(), actor=ACTOR)
    dbsession.commit()
    return standard


@pytest.fixture
def register_ab(dbsession: Any, staff: Any) -> dict[str, Any]:
    from monitoring.organisations.register import add_organisation

    made = {}
    for code, district, kind in (("A-C1", "A", "community"), ("A-C2", "A", "community"),
                                 ("A-C3", "A", "community"), ("A-S1", "A", "school"),
                                 ("B-C1", "B", "community"), ("B-C2", "B", "community")):
        made[code] = add_organisation(dbsession, {"code": code, "district": district,
                                                  "kind": kind, "name_zh": f"组织{code}",
                                                  "name_en": f"Organisation {code}"},
                                      actor=ACTOR)
    dbsession.commit()
    return made


@pytest.fixture
def client(wsgi_app: Any, staff: Any) -> Callable[[str | None], Any]:
    """``client("district_a")``: a WebTest client logged in as that account (None:
    anonymous)."""
    import webtest

    def make(username: str | None) -> Any:
        app = webtest.TestApp(wsgi_app, extra_environ={"REMOTE_ADDR": "127.0.0.9"})
        if username is not None:
            form = app.get("/login").forms[0]
            form["username"], form["password"] = username, PASSWORD
            assert form.submit().status_int == 303
        return app

    return make


def csrf(app: Any) -> str:
    """The client's CSRF token (from the login page's form)."""
    return str(app.get("/login").html.find("input", {"name": "csrf_token"})["value"])
