"""A session's state as residents see it: questions with texts in one language.

Used by both the pages (templates) and the JSON API, so a phone page and an API
client always show the same questions, choices and answers.  Each question gets a
``widget`` (how a page without JavaScript shows it) and its answer key (``name``, with
the instance for a repeat: ``age[2]``).
"""
from __future__ import annotations

from typing import Any

from .answers import range_bounds, range_values
from .definition import OTHER, Choice, Question, Survey, Text, instance_key, split_key
from .services import ADD_ANOTHER_NO, ADD_ANOTHER_YES, PageState, Step, add_another_value

#: a range with at most this many values is a row of radio buttons, else a number box
RANGE_RADIOS = 11
ADD_ANOTHER = Text("还要再填写一份吗？", "Add another?")
ADD_ANOTHER_CHOICES = ((ADD_ANOTHER_YES, Text("是，再填写一份", "Yes, add another")),
                       (ADD_ANOTHER_NO, Text("不用了，已经填完", "No, that is all")))


def _text(text: Text | None, lang: str) -> str | None:
    return None if text is None else text.get(lang)


def widget(q: Question) -> str:
    """How a page shows a question: ``radio``, ``checkbox``, ``select`` (a drop-down,
    appearance minimal), ``likert`` (a horizontal scale), ``grid``, ``textarea``
    (``multiline`` a taller one), ``number``, ``date``, ``month``, ``time``,
    ``datetime``, ``range`` (radio buttons) or ``number`` for a long range,
    ``read_only`` (the value as text) or ``note``."""
    appearance = set((q.appearance or "").split())
    if q.type == "note":
        return "note"
    if q.read_only:
        return "read_only"
    if q.type in ("single_choice", "multiple_choice"):
        if "minimal" in appearance:
            return "select"
        if "likert" in appearance and q.type == "single_choice":
            return "likert"
        return "radio" if q.type == "single_choice" else "checkbox"
    if q.type == "rating_grid":
        return "grid"
    if q.type == "text":
        return "multiline" if "multiline" in appearance else "textarea"
    if q.type in ("integer", "decimal"):
        return "number"
    if q.type == "range":
        return "range" if len(range_values(q, RANGE_RADIOS)) <= RANGE_RADIOS else "number"
    return q.type  # date, month, time, datetime


def _default(q: Question) -> Any:
    """The form value a page starts with for an unanswered question (its ``default``,
    as form text: date and time text is put in the box as it is)."""
    if q.default is None or q.type == "rating_grid":
        return None
    return q.default.split() if q.type == "multiple_choice" else q.default


def _shown_value(survey: Survey, q: Question, value: Any, lang: str) -> str:
    """A read-only question's value as text (choice labels for choices)."""
    if value is None or value == "":
        return ""
    if q.choices is not None:
        labels = {c.name: c.label.get(lang) for c in survey.choices(q.choices)}
        names = value if isinstance(value, list | tuple) else [value]
        return "、".join(labels.get(str(n), str(n)) for n in names)
    return str(value)


def question_view(survey: Survey, q: Question, answers: dict[str, Any], lang: str,
                  errors: dict[str, Text] | None = None, instance: int | None = None,
                  choices: tuple[Choice, ...] | None = None) -> dict[str, Any]:
    """One question: label, hint, required flag, widget, choices (``choices``: those a
    filter left)/items, range, answer (or its default), errors; keys carry ``instance``."""
    errors = errors or {}
    key = instance_key(q.name, instance)
    view: dict[str, Any] = {
        "name": key, "question": q.name, "type": q.type, "widget": widget(q),
        "appearance": q.appearance, "label": q.label.get(lang),
        "hint": _text(q.hint, lang),
        "required": q.required and q.type != "note" and not q.read_only,
        "read_only": q.read_only,
    }
    if q.choices is not None:
        offered = survey.choices(q.choices) if choices is None else choices
        view["choices"] = [{"name": c.name, "label": c.label.get(lang)} for c in offered]
    if q.type in ("single_choice", "multiple_choice"):
        view["other"] = q.other
        if q.other:
            other = instance_key(q.name + "_other", instance)
            view["other_name"] = other
            view["other_value"] = answers.get(other)
            view["other_error"] = _text(errors.get(other), lang)
    if q.type == "rating_grid":
        view["items"] = []
        for i in q.items:
            item_key = instance_key(i.name, instance)
            view["items"].append({"name": item_key, "label": i.label.get(lang),
                                  "value": answers.get(item_key),
                                  "error": _text(errors.get(item_key), lang)})
    elif q.type != "note":
        value = answers.get(key)
        if value is None and q.read_only and q.default is not None:
            value = q.default
        elif value is None:
            value = _default(q)
        view["value"] = value
        view["error"] = _text(errors.get(key), lang)
        if q.read_only:
            view["display_value"] = _shown_value(survey, q, value, lang)
    if q.type in ("integer", "decimal"):
        view["min"], view["max"] = q.minimum, q.maximum
    if q.type == "range":
        view["min"], view["max"], view["step"] = range_bounds(q)
        if view["widget"] == "range":
            view["values"] = [str(v) for v in range_values(q, RANGE_RADIOS)]
    if q.type == "multiple_choice" and isinstance(view.get("value"), str):
        view["value"] = [view["value"]]
    return view


def _title(state: PageState, lang: str) -> str:
    """The page title; a repeat instance adds its number ("家庭成员 2/3")."""
    assert state.page is not None
    title = state.page.title.get(lang)
    if state.instance is None:
        return title
    repeat = state.page.repeat
    if repeat is not None and repeat.count is not None and state.instances:
        return f"{title} {state.instance}/{state.instances}"
    return f"{title} {state.instance}"


def state_json(state: PageState, locale: str) -> dict[str, Any]:
    """The state of a session for the API (and the page templates)."""
    lang = "en" if locale.startswith("en") else "zh"
    survey = state.survey
    page = None
    if state.page is not None:
        page = {"name": state.step or state.page.name, "page": state.page.name,
                "instance": state.instance, "instances": state.instances,
                "title": _title(state, lang),
                "questions": [question_view(survey, q, state.answers, lang, state.errors,
                                            state.instance, state.choices.get(q.name))
                              for q in state.questions],
                "add_another": None}
        if state.add_another is not None:
            step = Step(state.page, state.instance)
            page["add_another"] = {
                "name": state.add_another, "label": ADD_ANOTHER.get(lang),
                "choices": [{"name": n, "label": t.get(lang)} for n, t in ADD_ANOTHER_CHOICES],
                "value": add_another_value(step, state.answers),
                "error": _text(state.errors.get(state.add_another), lang)}
    return {"status": state.status, "revision": state.revision,
            "survey": {"code": survey.id, "title": survey.title.get(lang)},
            "page": page, "page_number": state.number, "page_count": state.total,
            "can_go_back": state.can_go_back, "complete": state.complete,
            "answers": state.answers}


def form_values(questions: list[Question], post: Any, page_id: str = "",
                add_another: str | None = None) -> dict[str, Any]:
    """The raw answers of a page from a form post (lists for multiple choice); keys of a
    repeat instance (``page_id`` ``members[2]``) carry the instance.  Read-only, note
    and computed questions post nothing."""
    instance = split_key(page_id)[1]
    out: dict[str, Any] = {}
    for q in questions:
        if q.type == "note" or q.read_only:
            continue
        if q.type == "rating_grid":
            for item in q.items:
                key = instance_key(item.name, instance)
                out[key] = post.get(key)
            continue
        key = instance_key(q.name, instance)
        out[key] = post.getall(key) if q.type == "multiple_choice" else post.get(key)
        if q.other:
            other = instance_key(q.name + "_other", instance)
            out[other] = post.get(other)
    if add_another is not None:
        out[add_another] = post.get(add_another)
    return out


def is_selected(value: Any, choice: str) -> bool:
    """Whether a choice is the answer (or among the answers) shown in a form."""
    if isinstance(value, list | tuple):
        return choice in value
    return value is not None and str(value) == choice


__all__ = ["OTHER", "form_values", "is_selected", "question_view", "state_json", "widget"]
