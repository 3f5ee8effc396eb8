"""The rules an answer sheet follows: relevance, required answers, values, ranges,
constraints, and reading form text into typed answers.

They are part of what a definition means (:mod:`surveys.definition`), and delivery,
exports and the tests need them without a database.
"""
from __future__ import annotations

import datetime as dt
import functools
import math
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from . import expressions as E
from .definition import MAX_OTHER_TEXT, MAX_TEXT, OTHER, Field, Question, Survey, Text, _fields

__all__ = ["AnswerError", "AnswerProblem", "check_answers", "clean_answers", "parse_answer",
           "relevance"]




@functools.lru_cache(maxsize=1024)
def _tree(text: str) -> E.Expr:
    return E.parse(text)


def _walk(survey: Survey, answers: Mapping[str, Any]) -> Iterator[tuple[Field, bool,
                                                                          dict[str, Any]]]:
    """Each answer slot with its relevance, in order; the dict holds the answers so far,
    with those of skipped questions removed (as XLSForm clears them)."""
    env: dict[str, Any] = {}
    page_on: dict[int, bool] = {}
    question_on: dict[int, bool] = {}
    for f in _fields(survey):
        pk = id(f.page)
        if pk not in page_on:
            page_on[pk] = (f.page.relevant is None
                           or E.is_true(E.evaluate(_tree(f.page.relevant), env)))
        qk = id(f.question)
        if qk not in question_on:
            question_on[qk] = page_on[pk] and (
                f.question.relevant is None
                or E.is_true(E.evaluate(_tree(f.question.relevant), env)))
        on = question_on[qk]
        if f.kind == "other_text":
            on = on and E.is_true(E.evaluate(E.Call("selected", (
                E.Ref(f.question.name), E.Str(OTHER))), env))
        value = answers.get(f.name)
        env[f.name] = value if on and not _empty(value) else None
        yield f, on, env


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list | tuple) and not value)


def relevance(survey: Survey, answers: Mapping[str, Any]) -> dict[str, bool]:
    """Whether each answer slot is asked, given the answers (unanswered = None)."""
    return {f.name: on for f, on, _ in _walk(survey, answers)}


def clean_answers(survey: Survey, answers: Mapping[str, Any]) -> dict[str, Any]:
    """The answers of slots that are asked and answered; skipped ones are dropped."""
    out: dict[str, Any] = {}
    for f, on, _ in _walk(survey, answers):
        value = answers.get(f.name)
        if on and not _empty(value):
            out[f.name] = value
    return out


@dataclass(frozen=True)
class AnswerProblem:
    """A problem with one answer, in words for the resident."""

    name: str
    message: Text


REQUIRED = Text("请回答这道题。", "Please answer this question.")
NOT_A_CHOICE = Text("请从选项中选择。", "Please choose from the options.")
NOT_INTEGER = Text("请填写整数。", "Please enter a whole number.")
NOT_NUMBER = Text("请填写数字。", "Please enter a number.")
NOT_DATE = Text("请按“年-月-日”填写日期，例如 2024-05-01。",
                "Please enter the date as year-month-day, for example 2024-05-01.")
NOT_MONTH = Text("请按“年-月”填写，例如 2024-05。",
                 "Please enter the month as year-month, for example 2024-05.")
INVALID = Text("这个回答不符合要求，请检查。", "This answer is not valid; please check it.")
UNKNOWN = Text("问卷中没有这道题。", "This survey has no such question.")


def _too_long(n: int) -> Text:
    return Text(f"最多填写 {n} 个字。", f"Please write at most {n} characters.")


def _range_message(q: Question) -> Text:
    lo, hi = q.minimum, q.maximum
    if lo is not None and hi is not None:
        return Text(f"请填写 {lo} 到 {hi} 之间的数。", f"Please enter a number from {lo} to {hi}.")
    if lo is not None:
        return Text(f"请填写不小于 {lo} 的数。", f"Please enter a number of at least {lo}.")
    return Text(f"请填写不大于 {hi} 的数。", f"Please enter a number of at most {hi}.")


def _value_problem(survey: Survey, f: Field, value: Any) -> Text | None:
    """Why a non-empty answer is not acceptable for its slot, or None."""
    kind = f.kind
    if kind in ("single_choice", "rating"):
        names = {c.name for c in survey.choice_lists[f.choice_list or ""]}
        return None if isinstance(value, str) and value in names else NOT_A_CHOICE
    if kind == "multiple_choice":
        names = {c.name for c in survey.choice_lists[f.choice_list or ""]}
        ok = (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
              and set(value) <= names and len(set(value)) == len(value))
        return None if ok else NOT_A_CHOICE
    if kind in ("integer", "decimal"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            return NOT_INTEGER if kind == "integer" else NOT_NUMBER
        if kind == "integer" and not float(value).is_integer():
            return NOT_INTEGER
        q = f.question
        if (q.minimum is not None and value < q.minimum) or (
                q.maximum is not None and value > q.maximum):
            return _range_message(q)
        return None
    if kind in ("text", "other_text"):
        limit = MAX_TEXT if kind == "text" else MAX_OTHER_TEXT
        if not isinstance(value, str):
            return INVALID
        return _too_long(limit) if len(value) > limit else None
    if kind == "date":
        return None if isinstance(value, str) and _is_date(value) else NOT_DATE
    if kind == "month":
        return None if isinstance(value, str) and _is_month(value) else NOT_MONTH
    return INVALID


def _is_date(text: str) -> bool:
    if not E.DATE_RE.fullmatch(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_month(text: str) -> bool:
    return bool(E.MONTH_RE.fullmatch(text)) and _is_date(text + "-01")


def check_answers(survey: Survey, answers: Mapping[str, Any],
                  pages: Iterable[str] | None = None) -> list[AnswerProblem]:
    """Every problem with the answers to the asked slots of ``pages`` (default all):
    unknown names, values of the wrong kind, ranges, required answers, constraints.
    Answers to skipped questions are ignored (drop them with :func:`clean_answers`)."""
    wanted = None if pages is None else set(pages)
    known = {f.name for f in _fields(survey)}
    problems = [AnswerProblem(name, UNKNOWN) for name in answers if name not in known]
    for f, on, env in _walk(survey, answers):
        if not on or (wanted is not None and f.page.name not in wanted):
            continue
        value = answers.get(f.name)
        q = f.question
        if _empty(value):
            if q.required and f.kind != "other_text":
                problems.append(AnswerProblem(f.name, REQUIRED))
            continue
        message = _value_problem(survey, f, value)
        if message is not None:
            env[f.name] = None
            problems.append(AnswerProblem(f.name, message))
            continue
        if q.constraint is not None and f.kind != "other_text" and not E.is_true(
                E.evaluate(_tree(q.constraint), env, current=value)):
            problems.append(AnswerProblem(f.name, q.constraint_message or INVALID))
    return problems


class AnswerError(ValueError):
    """A form value that cannot be read; ``message`` is for the resident."""

    def __init__(self, message: Text) -> None:
        super().__init__(message.en)
        self.message = message


def parse_answer(survey: Survey, name: str, raw: str | list[str] | None) -> Any:
    """The typed answer of a slot from form text (a list for multiple choice).

    Blank input gives None.  Full-width digits and punctuation (typed on Chinese
    keyboards) are read as their ASCII forms.  Raises :class:`AnswerError`.
    """
    f = survey.field(name)
    if f.kind == "multiple_choice":
        values = [raw] if isinstance(raw, str) else list(raw or [])
        picked = [v.strip() for v in values if isinstance(v, str) and v.strip()]
        return picked or None
    if raw is None or isinstance(raw, list):
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        elif raw is None or not raw:
            return None
        else:
            raise AnswerError(INVALID)
    text = raw.strip()
    if not text:
        return None
    if f.kind in ("text", "other_text", "single_choice", "rating"):
        return text
    text = unicodedata.normalize("NFKC", text).replace(" ", "")
    if f.kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise AnswerError(NOT_INTEGER) from None
    if f.kind == "decimal":
        try:
            value = float(text)
        except ValueError:
            raise AnswerError(NOT_NUMBER) from None
        if not math.isfinite(value):
            raise AnswerError(NOT_NUMBER)
        return int(value) if value.is_integer() and "." not in text else value
    if f.kind == "date":
        if not _is_date(text):
            raise AnswerError(NOT_DATE)
        return text
    if f.kind == "month":
        if not _is_month(text):
            raise AnswerError(NOT_MONTH)
        return text
    raise AnswerError(INVALID)
