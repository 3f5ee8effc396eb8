"""Transient database failures are retried in a fresh transaction; others are not."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from assessment import services
from assessment.models import Answer, TestSession
from learningcity import database
from tests.conftest import postgresql_only


def start(testapp: Any) -> tuple[str, dict]:
    res = testapp.post_json("/api/v1/sessions", {"consent": True,
                                                  "background": {"age_band": "60-69"}},
                            status=201)
    return res.json["token"], res.json


def post_answer(testapp: Any, token: str, step: dict, status: Any = 200) -> Any:
    item = step["item"]
    return testapp.post_json(f"/api/v1/sessions/{token}/answers",
                             {"position": item["position"], "version": item["version"],
                              "choice": 1}, status=status)


@contextlib.contextmanager
def failing_insert(engine: Any, make_error: Any, times: int = 1) -> Iterator[list[int]]:
    """Make the first ``times`` INSERTs into test_answer fail with ``make_error(cursor)``."""
    calls = [0]

    def before(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO TEST_ANSWER"):
            calls[0] += 1
            if calls[0] <= times:
                make_error(cursor)
        return statement, params

    event.listen(engine, "before_cursor_execute", before, retval=True)
    try:
        yield calls
    finally:
        event.remove(engine, "before_cursor_execute", before)


def stored(dbsession: Any) -> tuple[int, int]:
    dbsession.expire_all()
    session = dbsession.scalar(sa.select(TestSession))
    return dbsession.scalar(sa.select(sa.func.count(Answer.id))), session.n_answered


@postgresql_only
def test_serialization_failure_is_retried(wsgi_app, testapp, demo, dbsession):
    import psycopg.errors

    def fail(cursor):
        raise psycopg.errors.SerializationFailure("could not serialize access")

    token, step = start(testapp)
    with failing_insert(wsgi_app.registry.engine, fail, times=2) as calls:
        res = post_answer(testapp, token, step)
    assert calls[0] == 3  # two failures, then the third attempt stored the answer
    assert res.json["answered"] == 1
    assert stored(dbsession) == (1, 1)


@postgresql_only
def test_a_killed_database_connection_is_retried(wsgi_app, testapp, demo, dbsession):
    """The backend serving the request dies mid-transaction (as in a restart)."""

    def kill(cursor):
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    token, step = start(testapp)
    with failing_insert(wsgi_app.registry.engine, kill) as calls:
        res = post_answer(testapp, token, step)
    assert calls[0] == 2
    assert res.json["answered"] == 1 and res.json["status"] == "testing"
    assert stored(dbsession) == (1, 1)


@postgresql_only
def test_a_permanent_error_is_not_retried(wsgi_app, testapp, demo, dbsession):
    import psycopg.errors

    def fail(cursor):
        raise psycopg.errors.CheckViolation("not transient")

    token, step = start(testapp)
    with failing_insert(wsgi_app.registry.engine, fail, times=10) as calls:
        with pytest.raises(sa.exc.IntegrityError):
            post_answer(testapp, token, step, status="*")
    assert calls[0] == 1
    assert stored(dbsession) == (0, 0)


def test_concurrent_change_is_retried(wsgi_app, testapp, demo, dbsession, monkeypatch):
    """Another worker advanced the session at the same moment: the retry sees a resend."""
    real = services._store_answer
    calls = [0]

    def racing(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise services.ConcurrentChange("simulated")
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "_store_answer", racing)
    token, step = start(testapp)
    res = post_answer(testapp, token, step)
    assert calls[0] == 2 and res.json["answered"] == 1
    assert stored(dbsession) == (1, 1)


@pytest.mark.parametrize(("sqlstate", "disconnect", "expected"), [
    ("40001", False, True), ("40P01", False, True), ("08006", False, True),
    ("57P01", False, True), ("23505", False, False), ("57014", False, False),
    ("", True, True), ("", False, False)])
def test_transient_classification(sqlstate, disconnect, expected):
    class Orig(Exception):
        pass

    orig = Orig()
    orig.sqlstate = sqlstate
    exc = sa.exc.OperationalError("stmt", {}, orig)
    assert database.is_transient(exc, is_disconnect=disconnect) is expected
