"""``learningcity user ...``: add, disable, enable, role, password, each audited with the
real actor (the OS login or ``--as``), with clear errors that change nothing."""
from __future__ import annotations

import getpass

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from learningcity.cli import cli_actor, main
from tests.conftest import write_ini

GOOD = "violet harbour lantern\n"


@pytest.fixture
def cli(tmp_path):
    """Run ``learningcity`` on a fresh SQLite database; returns (run, query)."""
    url = f"sqlite:///{tmp_path / 'users.sqlite'}"
    ini = write_ini(tmp_path, url)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade", "--ini", ini]).exit_code == 0

    def run(*args: str, input: str | None = None):
        return runner.invoke(main, [*args, "--ini", ini], input=input)

    engine = sa.create_engine(url)

    def query(sql: str) -> list:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]

    yield run, query
    engine.dispose()


def _user_events(query) -> list:
    return query("SELECT actor, action, target FROM audit_event "
                 "WHERE action LIKE 'user.%' ORDER BY id")


def test_user_commands_change_accounts_and_audit_the_real_actor(cli) -> None:
    run, query = cli
    me = f"cli:{getpass.getuser()}"
    assert cli_actor(None) == me and cli_actor("li.ming") == "li.ming"
    assert run("user", "add", "root", "--role", "admin", "--password-stdin",
               input=GOOD).exit_code == 0
    result = run("user", "add", "alice", "--role", "researcher", "--password-stdin",
                 "--as", "li.ming", input=GOOD)
    assert result.exit_code == 0, result.output
    assert run("user", "disable", "alice").exit_code == 0
    assert not query("SELECT active FROM staff_user WHERE username='alice'")[0][0]
    assert "disabled" in run("user", "list").output
    assert run("user", "enable", "alice", "--actor", "wang.fang").exit_code == 0
    result = run("user", "role", "alice", "monitor")
    assert result.exit_code == 0 and "now monitor" in result.output
    result = run("user", "password", "alice", "--password-stdin",
                 input="quiet meadow copper kettle\n")
    assert result.exit_code == 0, result.output
    assert query("SELECT role FROM staff_user WHERE username='alice'") == [("monitor",)]
    assert _user_events(query) == [
        (me, "user.add", "root"), ("li.ming", "user.add", "alice"),
        (me, "user.disable", "alice"), ("wang.fang", "user.enable", "alice"),
        (me, "user.role", "alice"), (me, "user.password", "alice")]


@pytest.mark.parametrize("args, stdin, fragment", [
    (("user", "disable", "nobody"), None, "unknown user 'nobody'"),
    (("user", "role", "nobody", "monitor"), None, "unknown user"),
    (("user", "role", "root", "boss"), None, "'boss' is not one of"),
    (("user", "role", "root", "monitor"), None, "last active administrator"),
    (("user", "disable", "root"), None, "last active administrator"),
    (("user", "role", "root", "district"), None, "needs --district"),
    (("user", "password", "root", "--password-stdin"), "aaaaaaaaaaaaaa\n", "Repeats"),
    (("user", "password", "root", "--password-stdin"), "password123456\n", "common"),
    (("user", "password", "root", "--password-stdin"), "plum vortex\n", "at least 12"),
    (("user", "add", "bob", "--role", "monitor", "--password-stdin"), "password123\n",
     "very common password"),
])
def test_user_commands_refuse_clearly_and_change_nothing(cli, args, stdin, fragment) -> None:
    run, query = cli
    assert run("user", "add", "root", "--role", "admin", "--password-stdin",
               input=GOOD).exit_code == 0
    before = query("SELECT username, role, active, password_hash FROM staff_user")
    result = run(*args, input=stdin)
    assert result.exit_code != 0 and fragment in result.output, result.output
    assert query("SELECT username, role, active, password_hash FROM staff_user") == before
    assert [e[1] for e in _user_events(query)] == ["user.add"]
