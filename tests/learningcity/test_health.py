"""/healthz answers 200 when the databases answer and 503 when one does not."""
from __future__ import annotations

import webtest

from learningcity import main


def test_healthy(testapp) -> None:
    res = testapp.get("/healthz")
    assert res.json == {"database": "ok", "monitoring": "ok", "status": "ok"}


def test_broken_database_is_unhealthy(db_url, tmp_path) -> None:
    from tests.conftest import app_settings

    # The monitoring database points at a server that does not exist.
    broken = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    app = webtest.TestApp(main({}, **app_settings(db_url, **{
        "monitoring.sqlalchemy.url": broken})))
    res = app.get("/healthz", status=503)
    assert res.json["status"] == "unhealthy"
    assert res.json["database"] == "ok"
    assert res.json["monitoring"].startswith("error")


def test_unreachable_main_database_is_unhealthy(tmp_path) -> None:
    from tests.conftest import app_settings

    missing_dir = tmp_path / "no" / "such"
    url = f"sqlite:///{missing_dir}/db.sqlite"
    app = webtest.TestApp(main({}, **app_settings(url)))
    missing_dir.rmdir()  # make_engine created it; remove it so SQLite cannot open the file
    res = app.get("/healthz", status=503)
    assert res.json["database"].startswith("error")
