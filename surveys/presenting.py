"""A session's state as residents see it: questions with texts in one language.

Used by both the pages (templates) and the JSON API, so a phone page and an API
client always show the same questions, choices and answers.
"""
from __future__ import annotations

from typing import Any

from .definition import OTHER, Question, Survey, Text
from .services import PageState


def _text(text: Text | None, lang: str) -> str | None:
    return None if text is None else text.get(lang)


def question_view(survey: Survey, q: Question, answers: dict[str, Any], lang: str,
                  errors: dict[str, Text] | None = None) -> dict[str, Any]:
    """One question: label, hint, required flag, choices/items, range, answer, errors."""
    errors = errors or {}
    view: dict[str, Any] = {
        "name": q.name, "type": q.type, "label": q.label.get(lang),
        "hint": _text(q.hint, lang), "required": q.required and q.type != "note",
    }
    if q.choices is not None:
        view["choices"] = [{"name": c.name, "label": c.label.get(lang)}
                           for c in survey.choices(q.choices)]
    if q.type in ("single_choice", "multiple_choice"):
        view["other"] = q.other
        if q.other:
            view["other_name"] = q.name + "_other"
            view["other_value"] = answers.get(q.name + "_other")
            view["other_error"] = _text(errors.get(q.name + "_other"), lang)
    if q.type == "rating_grid":
        view["items"] = [{"name": i.name, "label": i.label.get(lang),
                          "value": answers.get(i.name),
                          "error": _text(errors.get(i.name), lang)} for i in q.items]
    elif q.type != "note":
        view["value"] = answers.get(q.name)
        view["error"] = _text(errors.get(q.name), lang)
    if q.type in ("integer", "decimal"):
        view["min"], view["max"] = q.minimum, q.maximum
    if q.type == "multiple_choice" and isinstance(view.get("value"), str):
        view["value"] = [view["value"]]
    return view


def state_json(state: PageState, locale: str) -> dict[str, Any]:
    """The state of a session for the API (and the page templates)."""
    lang = "en" if locale.startswith("en") else "zh"
    survey = state.survey
    page = None
    if state.page is not None:
        page = {"name": state.page.name, "title": state.page.title.get(lang),
                "questions": [question_view(survey, q, state.answers, lang, state.errors)
                              for q in state.questions]}
    return {"status": state.status, "revision": state.revision,
            "survey": {"code": survey.id, "title": survey.title.get(lang)},
            "page": page, "page_number": state.number, "page_count": state.total,
            "can_go_back": state.can_go_back, "complete": state.complete,
            "answers": state.answers}


def form_values(questions: list[Question], post: Any) -> dict[str, Any]:
    """The raw answers of a page from a form post (lists for multiple choice)."""
    out: dict[str, Any] = {}
    for q in questions:
        if q.type == "note":
            continue
        if q.type == "rating_grid":
            for item in q.items:
                out[item.name] = post.get(item.name)
            continue
        out[q.name] = post.getall(q.name) if q.type == "multiple_choice" else post.get(q.name)
        if q.other:
            out[q.name + "_other"] = post.get(q.name + "_other")
    return out


def is_selected(value: Any, choice: str) -> bool:
    """Whether a choice is the answer (or among the answers) shown in a form."""
    if isinstance(value, list | tuple):
        return choice in value
    return value is not None and str(value) == choice


__all__ = ["OTHER", "form_values", "is_selected", "question_view", "state_json"]
