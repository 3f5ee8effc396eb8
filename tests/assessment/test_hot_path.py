"""The answer path does each thing once: one blueprint parse, one item choice per answer,
a page after the form's redirect that reads the stored choice back, four statements."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
import webtest

from assessment import engine, services
from assessment.models import Answer, TestSession
from itembank import services as bank_services
from itembank.models import Item, ItemResponse

BACKGROUND = {"age_band": "60-69", "district": "D01", "occupation": "retired",
              "education": "junior"}


def start(testapp: Any) -> tuple[str, dict]:
    res = testapp.post_json("/api/v1/sessions", {"consent": True, "background": BACKGROUND},
                            status=201)
    return res.json["token"], res.json


def answer(testapp: Any, token: str, step: dict, choice: int = 1, status: Any = 200) -> Any:
    item = step["item"]
    return testapp.post_json(f"/api/v1/sessions/{token}/answers",
                             {"position": item["position"], "version": item["version"],
                              "choice": choice}, status=status)


@contextmanager
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Count the engine's item choices and blueprint parses while the block runs."""
    counts = {"next_item": 0, "blueprint": 0}
    real_next, real_parse = engine.next_item, engine.Blueprint.from_dict

    def next_item(*args: Any, **kwargs: Any) -> Any:
        counts["next_item"] += 1
        return real_next(*args, **kwargs)

    def from_dict(data: Any) -> Any:
        counts["blueprint"] += 1
        return real_parse(data)

    monkeypatch.setattr(engine, "next_item", next_item)
    monkeypatch.setattr(engine.Blueprint, "from_dict", staticmethod(from_dict))
    yield counts


@contextmanager
def statements(engine_: Any) -> Iterator[list[str]]:
    """The SQL statements sent while the block runs (BEGIN/COMMIT not included)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    sa.event.listen(engine_, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine_, "before_cursor_execute", record)


def test_a_json_answer_chooses_once_and_parses_the_blueprint_once(testapp, demo, monkeypatch):
    token, step = start(testapp)
    step = answer(testapp, token, step).json  # warm the worker's bank cache
    with counting(monkeypatch) as counts:
        answer(testapp, token, step)
    assert counts == {"next_item": 1, "blueprint": 1}


def test_the_page_after_the_form_reads_the_stored_choice(testapp, demo, monkeypatch):
    """POST the answer form (one choice), follow the redirect (no choice, no parse)."""
    token, _ = start(testapp)
    form = testapp.get(f"/t/{token}").forms["item-form"]
    with counting(monkeypatch) as counts:
        form["choice"] = "1"
        posted = form.submit(status=303)
        assert counts == {"next_item": 1, "blueprint": 1}
        page = posted.follow()
        assert counts == {"next_item": 1, "blueprint": 1}
    assert page.forms["item-form"]["position"].value == "2"


def test_showing_the_item_again_chooses_nothing(testapp, demo, monkeypatch):
    token, step = start(testapp)
    with counting(monkeypatch) as counts:
        again = testapp.get(f"/api/v1/sessions/{token}").json
        testapp.get(f"/t/{token}")
    assert counts == {"next_item": 0, "blueprint": 0}
    assert again["item"] == step["item"]


def test_a_json_answer_is_four_statements(testapp, demo, wsgi_app):
    """The session row (with the bank revision and blueprint), its update, two inserts."""
    token, step = start(testapp)
    step = answer(testapp, token, step).json
    with statements(wsgi_app.registry.engine) as seen:
        answer(testapp, token, step)
    assert seen == ["SELECT", "UPDATE", "INSERT", "INSERT"], seen


def test_the_stored_choice_survives_a_restarted_server(testapp, demo, wsgi_app, monkeypatch):
    """Another worker (empty caches, a new client) shows the same item and accepts it."""
    token, step = start(testapp)
    step = answer(testapp, token, step).json
    services._cache.clear()  # a fresh process: no bank, no contents in memory
    other = webtest.TestApp(wsgi_app)
    with counting(monkeypatch) as counts:
        assert other.get(f"/api/v1/sessions/{token}").json["item"] == step["item"]
    assert counts["next_item"] == 0
    nxt = answer(other, token, step).json
    assert nxt["answered"] == 2


def test_an_item_retired_after_the_choice_is_chosen_again(testapp, demo, dbsession):
    """The stored choice is stamped with the bank it came from: after a status change the
    session shows (and accepts) what the live bank chooses now."""
    token, step = start(testapp)
    step = answer(testapp, token, step).json
    shown = step["item"]
    item = dbsession.scalar(sa.select(Item).where(Item.code == shown["code"]))
    bank_services.change_status(dbsession, item, "retired", "test")
    dbsession.commit()
    now = testapp.get(f"/api/v1/sessions/{token}").json
    assert now["item"]["code"] != shown["code"] and now["position"] == shown["position"]
    answer(testapp, token, step, status=409)  # the retired item is no longer the next one
    assert answer(testapp, token, now).json["answered"] == 2


def test_stored_rows_match_the_answers(testapp, demo, dbsession):
    """Answer rows, bank response rows, the session's counters and revision after a test."""
    token, step = start(testapp)
    answered = 0
    while step["status"] == "testing":
        step = answer(testapp, token, step, choice=1 + answered % 3).json
        answered += 1
    dbsession.expire_all()
    session = dbsession.scalar(sa.select(TestSession))
    rows = dbsession.scalars(sa.select(Answer).order_by(Answer.position)).all()
    assert [a.position for a in rows] == list(range(1, answered + 1))
    assert session.n_answered == answered and session.status == "finished"
    assert session.engine_state["items"] and "next" not in session.engine_state
    assert [a.score for a in rows] == session.engine_state["scores"]
    assert session.revision == answered + 1  # one update per answer, one at the start
    responses = dbsession.scalars(sa.select(ItemResponse).order_by(ItemResponse.id)).all()
    assert [(r.item_version_id, r.choice) for r in responses] == \
        [(a.item_version_id, a.choice) for a in rows]
    assert all(r.respondent == f"t{session.id}" for r in responses)
    assert [r.scored for r in responses] == [not a.is_pilot for a in rows]
