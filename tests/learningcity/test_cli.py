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


def test_root_help_shows_each_command_s_own_short_help() -> None:
    """The root listing reads docstrings from source; it must say what each command says."""
    from importlib.metadata import entry_points

    import click

    output = CliRunner().invoke(main, ["--help"], terminal_width=200).output
    found = list(entry_points(group="learningcity.commands"))
    limit = 200 - 6 - max(len(ep.name) for ep in found)
    for ep in found:
        command = ep.load()
        assert isinstance(command, click.Command), ep.name
        line = next(line for line in output.splitlines()
                    if line.strip().startswith(ep.name + " "))
        assert line.split(None, 1)[1] == command.get_short_help_str(limit), ep.name


OFFLINE = ("pyramid", "sqlalchemy", "webob", "chameleon", "alembic")


def _imported(args: list[str], cwd) -> set[str]:
    """Top-level packages a whole ``learningcity ARGS`` process imported (``-X importtime``)."""
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c",
         "import sys; from learningcity.cli import main; sys.argv[0] = 'learningcity'; main()",
         *args], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip().split(".")[0]
            for line in run.stderr.splitlines() if line.startswith("import time:")}


def test_help_and_offline_commands_import_no_web_or_database_stack(tmp_path) -> None:
    import numpy as np

    rng = np.random.default_rng(5)
    theta = rng.standard_normal(300)
    y = (rng.random((300, 5)) < 1 / (1 + np.exp(-(theta[:, None] - np.linspace(-1, 1, 5)))))
    lines = ["person_id," + ",".join(f"i{j}" for j in range(5))]
    lines += [f"p{n}," + ",".join(str(int(v)) for v in row) for n, row in enumerate(y)]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    help_modules = _imported(["--help"], tmp_path)
    assert "learningcity" in help_modules
    assert not help_modules & {*OFFLINE, "pandas", "scipy", "numpy"}, help_modules
    calibrate_modules = _imported(["calibrate", "r.csv", "--model", "2pl", "--out", "p.csv",
                                   "--quiet"], tmp_path)
    assert (tmp_path / "p.csv").exists() and "scoring" in calibrate_modules
    assert not calibrate_modules & set(OFFLINE), calibrate_modules
    # a complete small design needs no scipy at all (its array-API layer costs 0.15 s),
    # and a small file no pandas (0.15-0.2 s)
    assert not calibrate_modules & {"scipy", "pandas"}, calibrate_modules
    score_modules = _imported(["score", "r.csv", "--params", "p.csv", "--out", "s.csv",
                               "--quiet"], tmp_path)
    assert (tmp_path / "s.csv").exists()
    assert not score_modules & {*OFFLINE, "pandas"}, score_modules
    for command in ("simulate", "dif", "link", "groupstats"):
        modules = _imported([command, "--help"], tmp_path)
        assert not modules & set(OFFLINE), (command, modules & set(OFFLINE))
