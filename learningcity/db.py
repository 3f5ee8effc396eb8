"""Database plumbing: the shared metadata, engines, sessions and migrations.

Every package declares its tables on :class:`Base` (person-level data, main
database) or :class:`MonitoringBase` (aggregates only, monitoring database).
Both use one naming convention so Alembic diffs stay stable.
"""
from __future__ import annotations

import datetime as dt
import importlib
import os
import threading
import time
import weakref
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from transaction._transaction import Status as ZopeStatus
from zope.sqlalchemy.datamanager import STATUS_CHANGED, join_transaction

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Tables of the main database (items, sessions, responses, staff)."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class MonitoringBase(DeclarativeBase):
    """Tables of the monitoring database: aggregates only, no person-level rows."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    """Timezone-aware now in UTC; all timestamps are stored in UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp stored as UTC and always returned timezone-aware (SQLite drops tzinfo)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use learningcity.db.utcnow()")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


def load_models() -> None:
    """Import every package's model module (entry-point group ``learningcity.models``).

    The shell finds the domain packages' tables without importing them by name,
    so the metadata is complete for migrations and ``create_all`` in tests.
    """
    for ep in entry_points(group="learningcity.models"):
        importlib.import_module(ep.value)


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


#: permissions of the embedded database and its -wal/-shm files (owner only: they hold
#: residents' answers); SQLite gives the -wal and -shm files the database file's mode
PRIVATE_FILE_MODE = 0o600


def private_sqlite_file(path: Path) -> None:
    """Create the SQLite database file readable by its owner only (before SQLite creates
    it with the umask's mode), and tighten an existing one and its -wal/-shm files.

    Runs before each new connection; when the file cannot be made (a missing folder, a
    read-only disk) SQLite's own connect reports it."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE_MODE))
    except OSError:
        return
    for each in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if each.stat().st_mode & 0o077:
                os.chmod(each, PRIVATE_FILE_MODE)
        except FileNotFoundError:
            continue
        except PermissionError:  # another owner's file: leave it, SQLite reports access
            continue


#: seconds a request waits for a pooled connection before it is answered 503 (every
#: connection busy: an overload or a stuck database); bounded so clients hear at once
DEFAULT_POOL_TIMEOUT_S = 3.0


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10,
                pool_timeout: float = DEFAULT_POOL_TIMEOUT_S, pool_recycle: int = 1800,
                statement_timeout_ms: int | None = None) -> Engine:
    """Create an engine; SQLite gets WAL and foreign keys, PostgreSQL a sized pool whose
    connections are pinged before use after being idle.

    ``statement_timeout_ms`` (PostgreSQL only) stops a runaway query before it holds a
    worker and a connection for long; ``None`` leaves the server's default.
    """
    url_obj = sa.engine.make_url(url)
    if url_obj.get_backend_name() == "sqlite":
        private = url_obj.database and url_obj.database != ":memory:" and \
            not url_obj.database.startswith("file:")
        if private:
            Path(url_obj.database).parent.mkdir(parents=True, exist_ok=True)
        pool: dict[str, Any] = {}
        if url_obj.database and url_obj.database != ":memory:":
            pool = {"pool_size": pool_size, "max_overflow": max_overflow,
                    "pool_timeout": pool_timeout}
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        if private:
            path = Path(url_obj.database)
            event.listen(engine, "do_connect",
                         lambda *_args: private_sqlite_file(path))
        return engine
    connect_args: dict[str, Any] = {}
    if statement_timeout_ms and url_obj.get_backend_name() == "postgresql":
        connect_args["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"
    engine = sa.create_engine(
        url, pool_size=pool_size, max_overflow=max_overflow,
        pool_timeout=pool_timeout, pool_recycle=pool_recycle, connect_args=connect_args,
    )
    event.listen(engine, "connect", _note_use)
    event.listen(engine, "checkin", _note_use)
    event.listen(engine, "checkout", _ping_when_idle)
    return engine


#: a pooled connection idle for longer than this is pinged before use, as SQLAlchemy's
#: ``pool_pre_ping`` would; one back in the pool for less was alive a moment ago, and
#: should it have died since (a restart), its request fails as retryable and runs again
PING_AFTER_IDLE_S = 1.0
_LAST_USE = "learningcity.last_use"


def _note_use(dbapi_connection: Any, connection_record: Any) -> None:
    connection_record.info[_LAST_USE] = time.monotonic()


def _ping_when_idle(dbapi_connection: Any, connection_record: Any, proxy: Any) -> None:
    """Pool ``checkout`` hook: ping a connection that sat idle; a dead one makes the pool
    drop every pooled connection and connect anew (as a failed pre-ping does).

    Pinging on every checkout cost a round trip per request.
    """
    last = connection_record.info.get(_LAST_USE)
    if last is not None and time.monotonic() - last < PING_AFTER_IDLE_S:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
    except Exception as exc:
        raise sa.exc.InvalidatePoolError(f"ping failed: {exc}") from exc


#: ``.ini`` keys read by :func:`engine_options` (values per worker process)
ENGINE_SETTINGS = {
    "sqlalchemy.pool_size": ("pool_size", int, 10),
    "sqlalchemy.max_overflow": ("max_overflow", int, 10),
    "sqlalchemy.pool_timeout": ("pool_timeout", float, DEFAULT_POOL_TIMEOUT_S),
    "sqlalchemy.pool_recycle": ("pool_recycle", int, 1800),
    "sqlalchemy.statement_timeout_ms": ("statement_timeout_ms", int, None),
}


def engine_options(settings: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for :func:`make_engine` from the settings, with a clear error."""
    options: dict[str, Any] = {}
    for key, (name, kind, default) in ENGINE_SETTINGS.items():
        raw = settings.get(key)
        if raw in (None, ""):
            options[name] = default
            continue
        try:
            options[name] = kind(raw)
        except (TypeError, ValueError):
            raise ValueError(f"setting {key} must be a number, not {raw!r}") from None
        if options[name] < 0:
            raise ValueError(f"setting {key} must not be negative")
    return options


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to one engine."""
    return sessionmaker(bind=engine, expire_on_commit=False)


#: ``Session.info`` key: the transaction manager a session joins (see :func:`tm_session`)
TRANSACTION_MANAGER = "learningcity.transaction_manager"


def _join(session: Session, *_args: Any) -> None:
    """Join the session to its transaction manager's transaction, once, as changed."""
    manager = session.info.get(TRANSACTION_MANAGER)
    if manager is not None:
        join_transaction(session, STATUS_CHANGED, transaction_manager=manager)


def _before_commit(session: Session) -> None:
    """Only the transaction manager commits a joined session (as zope.sqlalchemy checks)."""
    manager = session.info.get(TRANSACTION_MANAGER)
    if manager is not None and not session.in_nested_transaction() and \
            manager.get().status != ZopeStatus.COMMITTING:
        raise AssertionError("Transaction must be committed using the transaction manager")


#: the events zope.sqlalchemy's ``register`` adds, less those marking a session changed
#: (every joined session counts as changed, see :func:`tm_session`)
_TM_EVENTS = (("after_begin", _join), ("after_attach", _join),
              ("before_commit", _before_commit))
_registered: weakref.WeakSet[sessionmaker[Session]] = weakref.WeakSet()
_register_lock = threading.Lock()


def _register_once(factory: sessionmaker[Session]) -> None:
    """Add the transaction events to a session factory once (they act only on sessions
    naming a transaction manager): registering zope.sqlalchemy's seven listeners on
    every new session cost about 0.1 ms per request."""
    if factory in _registered:
        return
    with _register_lock:
        if factory not in _registered:
            for name, listener in _TM_EVENTS:
                event.listen(factory, name, listener)
            _registered.add(factory)


def tm_session(factory: sessionmaker[Session], transaction_manager: Any) -> Session:
    """A session joined to the request's transaction manager (pyramid_tm commits/aborts).

    Joined as changed: a transaction that ends without error is committed even when it
    only read. A read-only COMMIT and a ROLLBACK leave the same data, but psycopg drops
    its prepared statements after every ROLLBACK (one more round trip, and the next
    requests' statements unprepared). An aborted transaction rolls back as before.
    """
    _register_once(factory)
    return factory(info={TRANSACTION_MANAGER: transaction_manager})


# --- migrations -------------------------------------------------------------

MIGRATIONS = Path(__file__).parent / "migrations"
#: (name, script folder, version table, metadata getter)
TARGETS = {
    "main": (MIGRATIONS / "main", "alembic_version", lambda: Base.metadata),
    "monitoring": (MIGRATIONS / "monitoring", "alembic_version_monitoring",
                   lambda: MonitoringBase.metadata),
}


def include_name_for(target: str):  # -> callable for Alembic's include_name
    """Leave the other database's tables alone when both live in one database."""
    others: set[str] = set()
    for name, (_folder, version_table, metadata) in TARGETS.items():
        if name != target:
            others |= set(metadata().tables) | {version_table}

    def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
        return not (type_ == "table" and name in others)

    return include_name


def alembic_config(target: str, url: str):  # -> alembic.config.Config
    """Alembic configuration for one of the two databases, with no .ini needed."""
    # start-up cost: alembic takes 0.29 s to import, only migrations need it
    from alembic.config import Config

    folder, version_table, _ = TARGETS[target]
    cfg = Config()
    cfg.set_main_option("script_location", str(folder))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["version_table"] = version_table
    cfg.attributes["target"] = target
    return cfg


def upgrade(url: str, monitoring_url: str | None = None, revision: str = "heads") -> None:
    """Bring both databases to ``revision`` (the monitoring one may be the same database).

    "heads": each package may add its own branch of migrations on top of the shared base.
    """
    # start-up cost: alembic takes 0.29 s to import, only migrations need it
    from alembic import command

    command.upgrade(alembic_config("main", url), revision)
    command.upgrade(alembic_config("monitoring", monitoring_url or url), revision)


def database_urls(settings: dict[str, str]) -> tuple[str, str]:
    """Main and monitoring URLs; environment variables override the .ini."""
    url = os.environ.get("LEARNINGCITY_DATABASE_URL") or settings.get("sqlalchemy.url")
    if not url:
        raise ValueError("no database URL: set sqlalchemy.url or LEARNINGCITY_DATABASE_URL")
    monitoring = (os.environ.get("LEARNINGCITY_MONITORING_URL")
                  or settings.get("monitoring.sqlalchemy.url") or url)
    return url, monitoring
