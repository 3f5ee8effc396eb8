"""Migration 0010 widens the answer and page keys to 80 characters (a 64-character name
in repeat instance 1000), keeping every stored answer and the one-answer-per-key rule.
Run on a fresh database per backend: upgrade to 0009, store answers, upgrade again."""
from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from learningcity import db
from surveys.definition import MAX_KEY

LONG = "q" * 64 + "_other[1000]"  # 76 characters


def _lengths(conn: Any) -> dict[tuple[str, str], int]:
    inspector = sa.inspect(conn)
    return {(t, c["name"]): c["type"].length for t in ("survey_answer", "survey_session")
            for c in inspector.get_columns(t) if c["name"] in ("name", "page")}


ANSWER = ("INSERT INTO survey_answer (session_id, name, page, value, answered_at) VALUES "
          "(1, :name, :page, '1', CURRENT_TIMESTAMP)")


def _session_with_answer(conn: Any, page: str, name: str) -> None:
    """A survey session on ``page`` with one answer and one scale score (columns that
    every revision from 0008 on has)."""
    conn.execute(sa.text(
        "INSERT INTO survey_definition (id, code, version, document_version, title_zh, "
        "title_en, document, content_hash, source, imported_by, imported_at) VALUES "
        "(1, 'learning_needs', 1, 1, 't', 't', '{}', 'h', '', 't', CURRENT_TIMESTAMP)"))
    conn.execute(sa.text(
        "INSERT INTO survey_session (id, token_hash, definition_id, survey_code, "
        "status, locale, prefilled, revision, created_at, updated_at, page) VALUES "
        "(1, 'h1', 1, 'learning_needs', 'started', 'zh_CN', '[]', 1, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, :page)"), {"page": page})
    conn.execute(sa.text(ANSWER), {"name": name, "page": page})
    conn.execute(sa.text("INSERT INTO survey_scale_score (session_id, scale, n_items, "
                         "n_answered) VALUES (1, 'grid', 3, 2)"))


def test_answer_keys_widen_to_80_characters_and_keep_the_answers(fresh_url: str) -> None:
    cfg = db.alembic_config("main", fresh_url)
    command.upgrade(cfg, "0009_submission_instance")
    engine = db.make_engine(fresh_url)
    with engine.begin() as conn:
        assert set(_lengths(conn).values()) == {64}
        _session_with_answer(conn, "members[2]", "age[2]")
    command.upgrade(cfg, "0010_answer_key_length")
    with engine.begin() as conn:
        assert _lengths(conn) == {("survey_answer", "name"): MAX_KEY,
                                  ("survey_answer", "page"): MAX_KEY,
                                  ("survey_session", "page"): MAX_KEY}
        assert conn.execute(sa.text("SELECT name, page FROM survey_answer")).all() == [
            ("age[2]", "members[2]")]
        assert conn.execute(sa.text("SELECT page FROM survey_session")).scalar_one() == \
            "members[2]"
        # SQLite rebuilds survey_session: its cascading children are kept all the same
        assert conn.execute(sa.text("SELECT session_id, scale FROM survey_scale_score")
                            ).all() == [(1, "grid")]
        conn.execute(sa.text(ANSWER), {"name": LONG, "page": "p" * 64 + "[1000]"})
        conn.execute(sa.text("UPDATE survey_session SET page = :p"), {"p": "p" * 64 + "[1000]"})
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(ANSWER), {"name": LONG, "page": "p"})  # still one per key
    if engine.dialect.name == "postgresql":  # SQLite does not enforce a length
        with pytest.raises(sa.exc.DataError), engine.begin() as conn:
            conn.execute(sa.text(ANSWER), {"name": "x" * (MAX_KEY + 1), "page": "p"})
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM survey_answer WHERE name = :n"), {"n": LONG})
        conn.execute(sa.text("UPDATE survey_session SET page = NULL"))
    command.downgrade(cfg, "0009_submission_instance")
    with engine.connect() as conn:
        assert set(_lengths(conn).values()) == {64}
        assert conn.execute(sa.text("SELECT name FROM survey_answer")).all() == [("age[2]",)]
        assert conn.execute(sa.text("SELECT count(*) FROM survey_scale_score")).scalar() == 1
    engine.dispose()


def test_adding_the_submission_columns_keeps_every_answer(fresh_url: str) -> None:
    """0009 rebuilds survey_session on SQLite (batch mode): with foreign keys on while
    migrating, dropping the old table cascaded away every answer and scale score; the
    migration environment now migrates with them off and checks them after."""
    cfg = db.alembic_config("main", fresh_url)
    command.upgrade(cfg, "0008_session_district")
    engine = db.make_engine(fresh_url)
    with engine.begin() as conn:
        _session_with_answer(conn, "background", "age_band")
    command.upgrade(cfg, "0009_submission_instance")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM survey_answer")).all() == [
            ("age_band",)]
        assert conn.execute(sa.text("SELECT count(*) FROM survey_scale_score")).scalar() == 1
        assert conn.execute(sa.text("SELECT source FROM survey_session")).scalar() == "page"
    engine.dispose()
