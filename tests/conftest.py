"""Shared fixtures: every database test runs on SQLite and on a fresh PostgreSQL database.

PostgreSQL comes from ``LEARNINGCITY_TEST_PG`` (default the machine's server at
127.0.0.1:5432, user postgres, database test); a database is created for the
run and dropped after it. When PostgreSQL is unreachable the PostgreSQL half is
skipped locally, but fails loudly when ``CI=true``.
"""
from __future__ import annotations

import configparser
import importlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa


def _declared_model_modules() -> list[str]:
    """The ``learningcity.models`` entry points setup.cfg declares. A package added since
    the last ``pip install -e .`` is not among the installed entry points yet; importing
    its models here puts its tables in the metadata the migration check compares."""
    parser = configparser.ConfigParser()
    parser.read(Path(__file__).resolve().parent.parent / "setup.cfg", encoding="utf-8")
    declared = parser.get("options.entry_points", "learningcity.models", fallback="")
    return [line.split("=", 1)[1].strip() for line in declared.splitlines() if "=" in line]


for _module in _declared_model_modules():
    importlib.import_module(_module)

PG_ADMIN_URL = os.environ.get("LEARNINGCITY_TEST_PG",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_SECRET = "test-secret-" + "x" * 40


def _create_pg_database() -> tuple[str, Any]:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"lc_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name)
    return url.render_as_string(hide_password=False), (admin, name)


def _drop_pg_database(handle: Any) -> None:
    admin, name = handle
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


#: files that take a minute or more on their own (real gunicorn and PostgreSQL runs):
#: handed out first, so pytest-xdist does not leave one worker running them at the end
SLOW_FILES = ("tests/reliability/test_load.py", "tests/reliability/test_load_faults.py",
              "tests/reliability/test_load_restart.py",
              "tests/monitoring/results/test_staff_pages_browser.py",
              "tests/test_accessibility_browser.py", "tests/monitoring/test_demo_results.py",
              "tests/test_site_crawl.py", "tests/reliability/test_throttle_race.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in SLOW_FILES)  # stable


#: for tests of what only PostgreSQL has (serialization failures, killed backends,
#: statement timeouts): run on the PostgreSQL database only, with no SQLite cell skipped
postgresql_only = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """An empty, unmigrated database per backend for one test (migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.sqlite'}"
        return
    try:
        url, handle = _create_pg_database()
    except Exception as exc:  # unreachable server: reported, as for the other fixtures
        pytest.fail(f"PostgreSQL is unreachable: {exc}", pytrace=False)
    try:
        yield url
    finally:
        _drop_pg_database(handle)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[str]:
    """A migrated, empty database per backend for the whole run."""
    from learningcity import db

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.sqlite'}"
        handle = None
    else:
        try:
            url, handle = _create_pg_database()
        except Exception as exc:  # unreachable server, refused login...
            message = f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {exc}"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
    db.upgrade(url)
    yield url
    if handle is not None:
        _drop_pg_database(handle)


def app_settings(url: str, **extra: Any) -> dict[str, Any]:
    settings = {
        "sqlalchemy.url": url,
        "learningcity.secret": TEST_SECRET,
        "learningcity.require_secret": "false",
        "learningcity.auto_migrate": "false",
        "learningcity.demo_content": "false",
        "pyramid.default_locale_name": "zh_CN",
    }
    settings.update(extra)
    return settings


def write_ini(tmp_path: Any, url: str) -> str:
    """A minimal .ini on the given database, for command-line tests (``--ini``)."""
    ini = tmp_path / "test.ini"
    ini.write_text(f"[app:main]\nuse = egg:learningcity\nsqlalchemy.url = {url}\n"
                   "learningcity.secret = test-secret-that-is-long-enough-for-us\n"
                   "learningcity.require_secret = false\n")
    return str(ini)


@pytest.fixture(scope="session")
def wsgi_app(db_url: str) -> Any:
    """The real WSGI application on the test database (built once per backend)."""
    from learningcity import main

    return main({}, **app_settings(db_url))


def _all_tables() -> list[sa.Table]:
    from learningcity import db

    db.load_models()
    return [t for m in (db.Base.metadata, db.MonitoringBase.metadata) for t in m.sorted_tables]


def _keys(conn: Any, table: sa.Table) -> frozenset[tuple]:
    return frozenset(tuple(row) for row in conn.execute(sa.select(*table.primary_key.columns)))


#: (database, loader, rows present before) -> the rows the loader added, table by table
_SNAPSHOTS: dict[tuple, list[tuple[sa.Table, list[dict[str, Any]]]]] = {}


def load_once(dbsession: Any, name: str, build: Callable[[Any], None]) -> None:
    """Run a demo loader (``build(dbsession)``) on the test database, but only once per
    backend and starting state: later tests get the same rows inserted directly, with
    the same keys (a few milliseconds instead of about a second of ORM work each).

    The starting state (the primary keys already present) is part of the key, so tests
    that create other rows first (staff accounts, say) get their own snapshot.
    """
    dbsession.commit()
    engine = dbsession.get_bind()
    tables = _all_tables()
    with engine.connect() as conn:
        before = {t.name: _keys(conn, t) for t in tables}
    key = (str(engine.url), name, tuple(sorted((n, k) for n, k in before.items() if k)))
    snapshot = _SNAPSHOTS.get(key)
    if snapshot is None:
        build(dbsession)
        dbsession.commit()
        snapshot = []
        with engine.connect() as conn:
            for table in tables:
                pk = [c.name for c in table.primary_key.columns]
                rows = [dict(r._mapping) for r in conn.execute(table.select())]
                added = [r for r in rows if tuple(r[c] for c in pk) not in before[table.name]]
                if added:
                    snapshot.append((table, added))
        _SNAPSHOTS[key] = snapshot
        return
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        # instrument and calibration point at each other: keys are checked at commit
        # (SQLite) or not at all (PostgreSQL: the rows came from a consistent database)
        conn.execute(sa.text("SET LOCAL session_replication_role = replica" if postgres
                             else "PRAGMA defer_foreign_keys = ON"))
        for table, rows in snapshot:  # parents before children (metadata order)
            conn.execute(table.insert(), rows)
        for table, rows in snapshot if postgres else ():
            column = table.autoincrement_column
            if column is not None:
                conn.execute(sa.text("SELECT setval(pg_get_serial_sequence(:t, :c), :v)"),
                             {"t": table.name, "c": column.name,
                              "v": max(r[column.name] for r in rows)})


def _empty_all_tables(engine: sa.engine.Engine) -> None:
    tables = _all_tables()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # DELETE with foreign-key triggers off and the sequences rewound: the same
            # clean slate as TRUNCATE ... RESTART IDENTITY at a twentieth of the time
            # (TRUNCATE makes new files for every table; most tables here are empty)
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            for table in tables:
                conn.execute(table.delete())
            conn.execute(sa.text("SELECT setval(c.oid, 1, false) FROM pg_class c "
                                 "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                 "WHERE c.relkind = 'S' AND n.nspname = current_schema()"))
            return
        conn.execute(sa.text("PRAGMA foreign_keys=OFF"))  # tables point at each other
        for table in reversed(tables):
            conn.execute(table.delete())
        conn.execute(sa.text("PRAGMA foreign_keys=ON"))


@pytest.fixture
def dbsession(wsgi_app: Any) -> Iterator[Any]:
    """A session on the test database; every table is emptied after the test."""
    session = wsgi_app.registry.dbsession_factory()
    yield session
    session.rollback()
    session.close()
    _empty_all_tables(wsgi_app.registry.engine)


@pytest.fixture
def testapp(wsgi_app: Any, dbsession: Any) -> Any:
    """A WebTest client with its own cookie jar, on the real app and database."""
    import webtest

    return webtest.TestApp(wsgi_app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})


# --- staff accounts (shared by every package's tests) ---

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


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless chromium for the browser tests (one per test process)."""
    from tests.browser import chromium

    yield from chromium()


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with the demo content on a fresh SQLite file, served on loopback."""
    from tests.browser import make_app, serving

    with serving(make_app(tmp_path_factory.mktemp("browser"))) as url:
        yield url
