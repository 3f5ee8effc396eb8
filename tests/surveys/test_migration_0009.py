"""Migration 0009 gives every existing survey session the source ``page`` and no instance
ID, and one session per (survey code, instance ID) from then on. Run on a fresh database
per backend: downgrade 0009, add sessions, upgrade again."""
from __future__ import annotations

import pytest
import sqlalchemy as sa


def test_old_sessions_come_from_the_pages_and_instance_ids_are_unique(fresh_url: str
                                                                       ) -> None:
    from alembic import command

    from learningcity import db

    cfg = db.alembic_config("main", fresh_url)
    command.upgrade(cfg, "0009_submission_instance-1")
    engine = db.make_engine(fresh_url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO survey_definition (id, code, version, document_version, title_zh, "
            "title_en, document, content_hash, source, imported_by, imported_at) VALUES "
            "(1, 'learning_needs', 1, 1, 't', 't', '{}', 'h', '', 't', CURRENT_TIMESTAMP)"))
        for i in (1, 2):
            conn.execute(sa.text(
                "INSERT INTO survey_session (id, token_hash, definition_id, survey_code, "
                "status, locale, prefilled, revision, created_at, updated_at) VALUES "
                f"({i}, 'h{i}', 1, 'learning_needs', 'finished', 'zh_CN', '[]', 1, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    command.upgrade(cfg, "heads")
    insert = ("INSERT INTO survey_session (id, token_hash, definition_id, survey_code, "
              "status, locale, prefilled, revision, created_at, updated_at, source, "
              "instance_id) VALUES (:id, :h, 1, :code, 'finished', 'zh_CN', '[]', 1, "
              "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'odk', :iid)")
    with engine.begin() as conn:
        assert conn.execute(sa.text(
            "SELECT id, source, instance_id FROM survey_session ORDER BY id")).all() == [
            (1, "page", None), (2, "page", None)]
        conn.execute(sa.text(insert), {"id": 3, "h": "h3", "code": "learning_needs",
                                       "iid": "abc"})
        conn.execute(sa.text(insert), {"id": 4, "h": "h4", "code": "other", "iid": "abc"})
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(insert), {"id": 5, "h": "h5", "code": "learning_needs",
                                       "iid": "abc"})
    command.downgrade(cfg, "0009_submission_instance-1")
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("survey_session")}
    assert "instance_id" not in columns and "source" not in columns
    engine.dispose()
