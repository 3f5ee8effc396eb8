"""``learningcity serve`` settings and the engine options read from the .ini."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from learningcity import db, serve
from learningcity.cli import main
from tests.conftest import postgresql_only

ROOT_INI = "production.ini"


def test_production_ini_serves_with_gunicorn_workers(monkeypatch):
    options = serve.gunicorn_options(ROOT_INI)
    assert options["worker_class"] == "gthread" and int(options["workers"]) >= 2
    assert options["post_fork"] == "learningcity.serve.post_fork"
    overridden = serve.gunicorn_options(ROOT_INI, workers=5, bind="127.0.0.1:7000", threads=2)
    assert (overridden["workers"], overridden["bind"], overridden["threads"]) == (
        "5", "127.0.0.1:7000", "2")


def test_serve_check_prints_settings_and_refuses_without_secret(monkeypatch):
    runner = CliRunner()
    monkeypatch.delenv("LEARNINGCITY_SECRET", raising=False)
    res = runner.invoke(main, ["serve", "--ini", ROOT_INI, "--check"])
    assert res.exit_code != 0 and "LEARNINGCITY_SECRET" in res.output
    monkeypatch.setenv("LEARNINGCITY_SECRET", "s" * 48)
    res = runner.invoke(main, ["serve", "--ini", ROOT_INI, "--workers", "3", "--check"])
    assert res.exit_code == 0, res.output
    assert "workers = 3" in res.output and "worker_class = gthread" in res.output


def test_serve_names_a_missing_ini():
    res = CliRunner().invoke(main, ["serve", "--ini", "nope.ini", "--check"])
    assert res.exit_code != 0 and "nope.ini" in res.output


def test_unknown_gunicorn_setting_is_named(tmp_path):
    import click

    ini = tmp_path / "x.ini"
    ini.write_text("[server:main]\nuse = egg:gunicorn#main\nworkerz = 3\n")
    with pytest.raises(click.ClickException, match="workerz"):
        serve.gunicorn_options(str(ini))


def test_engine_options_from_settings():
    options = db.engine_options({"sqlalchemy.pool_size": "4", "sqlalchemy.max_overflow": "2",
                                 "sqlalchemy.statement_timeout_ms": "15000"})
    assert options["pool_size"] == 4 and options["max_overflow"] == 2
    assert options["statement_timeout_ms"] == 15000 and options["pool_recycle"] == 1800
    with pytest.raises(ValueError, match=r"sqlalchemy\.pool_size"):
        db.engine_options({"sqlalchemy.pool_size": "many"})


@postgresql_only
def test_statement_timeout_reaches_postgresql(db_url):
    import sqlalchemy as sa

    assert db_url.startswith("postgresql")
    engine = db.make_engine(db_url, statement_timeout_ms=1234)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "1234ms"
            with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
                conn.execute(sa.text("SELECT pg_sleep(3)"))
    finally:
        engine.dispose()
