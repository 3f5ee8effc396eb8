"""Pyramid wiring for the two databases: ``request.dbsession`` and ``request.monitoring_db``.

Transient database failures are marked retryable so pyramid_retry runs the whole
request again in a fresh transaction (``retry.attempts``, default 3): serialization
failures and deadlocks (SQLSTATE class 40), a connection lost or refused while the
server restarts (class 08, 57P01-57P03, or one SQLAlchemy saw as a disconnect). A
request that failed this way committed nothing, and every resident-facing write is
idempotent (a resent answer returns the same step), so running it again is safe.
"""
from __future__ import annotations

import time
from typing import Any

from pyramid.path import DottedNameResolver
from pyramid.settings import asbool
from pyramid_retry import IRetryableError
from sqlalchemy import event
from sqlalchemy.engine import Engine
from zope.interface import alsoProvides

from .db import engine_options, make_engine, session_factory, tm_session
from .serve import track_engine

#: SQLSTATEs (or their two-letter classes) worth one more try in a fresh transaction
TRANSIENT_SQLSTATES = ("40", "08", "57P01", "57P02", "57P03")
#: pause before the retry when the server refused a new connection (it is restarting)
CONNECT_BACKOFF_S = 0.5


def is_transient(exc: BaseException, *, is_disconnect: bool = False) -> bool:
    """Whether a database error is transient: retrying the request can succeed."""
    if is_disconnect:
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    return any(sqlstate.startswith(prefix) for prefix in TRANSIENT_SQLSTATES)


def _mark_transient(context: Any) -> None:
    """SQLAlchemy ``handle_error`` hook: tag transient errors for pyramid_retry."""
    exc = context.sqlalchemy_exception
    if exc is None:
        return
    no_connection = context.connection is None and not context.is_pre_ping
    if is_transient(exc, is_disconnect=context.is_disconnect) or no_connection:
        alsoProvides(exc, IRetryableError)
        if no_connection:
            time.sleep(CONNECT_BACKOFF_S)


def watch_transient_errors(engine: Engine) -> None:
    """Make transient failures on ``engine`` retryable (idempotent per engine)."""
    if not event.contains(engine, "handle_error", _mark_transient):
        event.listen(engine, "handle_error", _mark_transient)


def includeme(config: Any) -> None:
    settings = config.registry.settings
    # resolved here once: pyramid_tm resolves a dotted name again on every request
    settings["tm.manager_hook"] = DottedNameResolver().maybe_resolve(
        settings.get("tm.manager_hook") or "pyramid_tm.explicit_manager")
    # the transaction's user note is read by nothing here, and would decode the session
    # cookie (and look the staff member up) before every request's first statement
    settings.setdefault("tm.annotate_user", False)
    settings.setdefault("retry.attempts", 3)
    options = engine_options(settings)
    engine = make_engine(settings["sqlalchemy.url"], **options)
    if settings["monitoring.sqlalchemy.url"] == settings["sqlalchemy.url"]:
        monitoring_engine = engine
    else:
        monitoring_engine = make_engine(settings["monitoring.sqlalchemy.url"], **options)
    for each in {engine, monitoring_engine}:
        track_engine(each)  # disposed in a forked gunicorn worker
        if asbool(settings.get("learningcity.retry_transient", True)):
            watch_transient_errors(each)
    config.registry.engine = engine
    config.registry.monitoring_engine = monitoring_engine
    config.registry.dbsession_factory = session_factory(engine)
    config.registry.monitoring_session_factory = session_factory(monitoring_engine)
    config.add_request_method(
        lambda r: tm_session(r.registry.dbsession_factory, r.tm), "dbsession", reify=True)
    config.add_request_method(
        lambda r: tm_session(r.registry.monitoring_session_factory, r.tm), "monitoring_db",
        reify=True)
