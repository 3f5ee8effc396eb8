"""The learningcity command line: help lists everything, db upgrade, user add."""
from __future__ import annotations

import sqlalchemy as sa
from click.testing import CliRunner

from learningcity.cli import main
from tests.conftest import write_ini


def test_help_lists_every_package_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("db", "user", "i18n", "calibrate", "score", "dif", "link"):
        assert f"  {name}" in result.output, name


def test_db_upgrade_then_user_add(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    ini = write_ini(tmp_path, url)
    runner = CliRunner()
    result = runner.invoke(main, ["db", "upgrade", "--ini", ini])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["user", "add", "alice", "--role", "researcher",
                                  "--password-stdin", "--ini", ini],
                           input="a long password\n")
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT role, password_hash FROM staff_user WHERE username='alice'")).one()
    engine.dispose()
    assert row[0] == "researcher" and row[1].startswith("$argon2")


def test_user_add_refuses_bad_input_and_writes_nothing(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    ini = write_ini(tmp_path, url)
    runner = CliRunner()
    runner.invoke(main, ["db", "upgrade", "--ini", ini])
    result = runner.invoke(main, ["user", "add", "bob", "--role", "district",
                                  "--password-stdin", "--ini", ini], input="a long password\n")
    assert result.exit_code == 1 and "--district" in result.output
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM staff_user")).scalar() == 0
    engine.dispose()


def test_missing_ini_is_named(tmp_path) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade", "--ini", str(tmp_path / "nope.ini")])
    assert result.exit_code == 1 and "nope.ini" in result.output
