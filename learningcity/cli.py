"""The ``learningcity`` command line: one root, subcommands contributed by every package.

Packages register click commands in the entry-point group ``learningcity.commands``
(see setup.cfg), so offline tools in ``scoring`` need nothing from the web shell.
Commands that need the database take ``--ini`` (default ``development.ini``) and
honour the same environment overrides as the app.

Every ``learningcity`` command imports this module, so what only some commands need is
imported inside them (a measured start-up cost: pyramid.paster 0.17 s, sqlalchemy
0.17 s, alembic 0.29 s, the app's settings module 0.33 s).
"""
from __future__ import annotations

import functools
import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import Any

import click


class RootGroup(click.Group):
    """A group that lists and loads the commands of every installed package.

    A command's module is imported only when that command runs: ``learningcity --help``
    reads each command's one-line help from its function's docstring in the source
    (``ast``), because importing every package's commands (the web stack, the database
    layer, pandas) took 2.4 s before anything was printed.
    """

    @functools.cached_property
    def _found(self) -> dict[str, Any]:
        """Entry-point name -> entry point, scanned once (each scan reads every
        installed distribution's metadata)."""
        return {ep.name: ep for ep in entry_points(group="learningcity.commands")}

    def _commands(self) -> dict[str, Any]:
        return self._found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._commands()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in self._commands():
            command = self._commands()[name].load()
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        found = self._commands()
        limit = formatter.width - 6 - max(len(name) for name in found)
        rows = []
        for name in self.list_commands(ctx):
            own = super().get_command(ctx, name)
            if own is not None:
                rows.append((name, own.get_short_help_str(limit)))
            else:
                rows.append((name, _short_help(found[name].value, limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _short_help(target: str, limit: int) -> str:
    """First sentence of the docstring of the command ``module:function``, read from the
    module's source without importing it ('' when it cannot be found)."""
    # start-up cost: ast and importlib.util are needed only for the root help listing
    import ast
    import importlib.util

    module, _, attr = target.partition(":")
    try:
        spec = importlib.util.find_spec(module)
        with open(spec.origin, encoding="utf-8") as source:
            tree = ast.parse(source.read())
    except (ImportError, AttributeError, OSError, SyntaxError, TypeError):
        return ""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == attr:
            return click.Command(attr, help=ast.get_docstring(node) or "") \
                .get_short_help_str(limit)
    return ""


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="learningcity")
def main() -> None:
    """Learning-city assessment engine: calibration, scoring, item bank, campaigns."""


ini_option = click.option(
    "--ini", "ini_path", default="development.ini", show_default=True,
    type=click.Path(dir_okay=False), help="Settings file (environment overrides apply).")


def load_app_settings(ini_path: str) -> dict[str, Any]:
    """The app's settings from an .ini file, with environment overrides, without serving."""
    # start-up cost: imported when a command needs it (module docstring)
    from pyramid.paster import get_appsettings

    from .settings import load_settings

    if not os.path.exists(ini_path):
        raise click.ClickException(f"{ini_path}: settings file not found (use --ini)")
    return load_settings(dict(get_appsettings(ini_path)))


def open_session(ini_path: str) -> Any:
    """A plain SQLAlchemy session on the main database for command-line work."""
    # start-up cost: imported when a command needs it (module docstring)
    from .db import make_engine, session_factory

    settings = load_app_settings(ini_path)
    return session_factory(make_engine(settings["sqlalchemy.url"]))()


@contextmanager
def db_session(ini_path: str) -> Iterator[Any]:
    """A session that commits on success; a refused request (ValueError) changes nothing
    and becomes a one-line error for the user."""
    session = open_session(ini_path)
    try:
        yield session
        session.commit()
    except ValueError as exc:
        session.rollback()
        raise click.ClickException(str(exc)) from None
    finally:
        session.close()


@click.group()
def db() -> None:
    """Database schema: upgrade, and show the current revision."""


@db.command("upgrade")
@ini_option
@click.option("--revision", default="heads", show_default=True)
def db_upgrade(ini_path: str, revision: str) -> None:
    """Create or migrate the main and monitoring databases to the latest schema."""
    # start-up cost: imported when a command needs it (module docstring)
    from . import db as dbmod

    settings = load_app_settings(ini_path)
    dbmod.upgrade(settings["sqlalchemy.url"], settings["monitoring.sqlalchemy.url"], revision)
    click.echo(f"database upgraded to {revision}")


@db.command("current")
@ini_option
def db_current(ini_path: str) -> None:
    """Print the schema revision of both databases."""
    # start-up cost: imported when a command needs it (module docstring)
    from alembic import command

    from . import db as dbmod

    settings = load_app_settings(ini_path)
    for target, key in (("main", "sqlalchemy.url"), ("monitoring", "monitoring.sqlalchemy.url")):
        click.echo(f"{target}:")
        command.current(dbmod.alembic_config(target, settings[key]))


def cli_actor(actor: str | None) -> str:
    """The name the audit trail records for a command: ``--as`` or ``cli:<OS login>``."""
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (some containers): the numeric user id
        return f"cli:uid{os.getuid()}" if hasattr(os, "getuid") else "cli:unknown"


actor_option = click.option(
    "--as", "--actor", "actor", default=None, metavar="NAME",
    help="Name recorded in the audit trail (default cli:<your login>).")
ROLE_CHOICE = click.Choice(["admin", "researcher", "monitor", "district", "department"])


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != password:
        raise click.ClickException("the passwords differ")
    return password


@click.group()
def user() -> None:
    """Staff accounts: add, list, disable, enable, change role or password (all audited)."""


password_stdin_option = click.option(
    "--password-stdin", is_flag=True,
    help="Read the password from standard input instead of prompting.")


@user.command("add")
@ini_option
@actor_option
@click.argument("username")
@click.option("--role", required=True, type=ROLE_CHOICE)
@click.option("--district", "district_code", default=None,
              help="District code (required for the district role).")
@click.option("--department", "department_code", default=None,
              help="Department code (required for the department role).")
@click.option("--name", "display_name", default="", help="Name shown on staff pages.")
@password_stdin_option
def user_add(ini_path: str, actor: str | None, username: str, role: str,
             district_code: str | None, department_code: str | None, display_name: str,
             password_stdin: bool) -> None:
    """Add a staff account (the password is checked, then hashed with argon2).

    At least 10 characters (12 for admins), not common or easy to guess; a phrase of a
    few uncommon words is best. No rules about digits or symbols.
    """
    # start-up cost: imported when a command needs it (module docstring)
    from .accounts import create_user

    password = _read_password(password_stdin)
    with db_session(ini_path) as session:
        create_user(session, username, password, role, district_code, display_name,
                    actor=cli_actor(actor), department_code=department_code)
    unit = district_code or department_code
    click.echo(f"added {role} {username}" + (f" ({unit})" if unit else ""))


@user.command("list")
@ini_option
def user_list(ini_path: str) -> None:
    """List staff accounts."""
    # start-up cost: imported when a command needs it (module docstring)
    import sqlalchemy as sa

    from .models import StaffUser

    session = open_session(ini_path)
    for u in session.scalars(sa.select(StaffUser).order_by(StaffUser.username)):
        click.echo(f"{u.username}\t{u.role}\t{u.district_code or u.department_code or ''}\t"
                   f"{'active' if u.active else 'disabled'}")
    session.close()


@user.command("disable")
@ini_option
@actor_option
@click.argument("username")
def user_disable(ini_path: str, actor: str | None, username: str) -> None:
    """Disable an account: it cannot log in and its open sessions end at once."""
    # start-up cost: imported when a command needs it (module docstring)
    from .accounts import set_active

    with db_session(ini_path) as session:
        set_active(session, username, False, cli_actor(actor))
    click.echo(f"disabled {username}; its sessions are ended")


@user.command("enable")
@ini_option
@actor_option
@click.argument("username")
def user_enable(ini_path: str, actor: str | None, username: str) -> None:
    """Enable a disabled account again."""
    # start-up cost: imported when a command needs it (module docstring)
    from .accounts import set_active

    with db_session(ini_path) as session:
        set_active(session, username, True, cli_actor(actor))
    click.echo(f"enabled {username}")


@user.command("role")
@ini_option
@actor_option
@click.argument("username")
@click.argument("role", type=ROLE_CHOICE)
@click.option("--district", "district_code", default=None,
              help="District code (required for the district role).")
@click.option("--department", "department_code", default=None,
              help="Department code (required for the department role).")
def user_role(ini_path: str, actor: str | None, username: str, role: str,
              district_code: str | None, department_code: str | None) -> None:
    """Change an account's role (and district or department); its open sessions end."""
    # start-up cost: imported when a command needs it (module docstring)
    from .accounts import set_role

    with db_session(ini_path) as session:
        set_role(session, username, role, district_code, cli_actor(actor),
                 department_code=department_code)
    unit = district_code or department_code
    click.echo(f"{username} is now {role}" + (f" ({unit})" if unit else "")
               + "; its sessions are ended")


@user.command("password")
@ini_option
@actor_option
@click.argument("username")
@password_stdin_option
def user_password(ini_path: str, actor: str | None, username: str,
                  password_stdin: bool) -> None:
    """Set a new password (checked like `user add`); the account's open sessions end."""
    # start-up cost: imported when a command needs it (module docstring)
    from .accounts import get_user, set_password

    with db_session(ini_path) as session:
        get_user(session, username)  # an unknown user is named before any prompt
        password = _read_password(password_stdin)
        set_password(session, username, password, cli_actor(actor))
    click.echo(f"new password set for {username}; its sessions are ended")


if __name__ == "__main__":
    main()
