"""The rules an answer sheet follows: relevance, repeats, choice filters, calculations,
required answers, values, ranges, constraints, and reading form text into typed answers.

They are part of what a definition means (:mod:`surveys.definition`), and delivery,
exports and the tests need them without a database.

One walk (:func:`answer_sheet`) goes through the survey in order and gives every answer
slot of every repeat instance (key ``name`` or ``name[i]``, see
:func:`surveys.definition.instance_key`) with whether it is asked, its clean value and,
for a select with a ``choice_filter``, the choices left.  Everything else here reads that
walk, so a page post costs one walk per answer state; expression trees are parsed once
per survey (:func:`_plan`).
"""
from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from . import expressions as E
from .definition import (
    MAX_OTHER_TEXT,
    MAX_TEXT,
    META_TYPES,
    OTHER,
    Choice,
    Field,
    Page,
    Question,
    Survey,
    Text,
    _fields,
    instance_key,
    split_key,
)

__all__ = ["AnswerError", "AnswerProblem", "AnswerSheet", "SlotState", "answer_sheet",
           "check_answers", "choices_for", "clean_answers", "count_key", "parse_answer",
           "range_values", "relevance"]

#: types whose value is never typed on a page (computed, or recorded by delivery)
COMPUTED_TYPES = ("calculate", *META_TYPES)
#: where residents live: ``today()``, ``now()`` and the meta times are local times here
LOCAL_TIMEZONE = "Asia/Shanghai"
#: a range question without start/end/step: XLSForm's (pyxform's) defaults
RANGE_DEFAULTS = (1, 10, 1)
TIME_RE = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])(?::00)?")
DATETIME_RE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}:[0-9]{2}(?::00)?)")


def count_key(page: Page | str) -> str:
    """The answer key holding the number of instances the resident chose for a repeat
    without ``count`` (``"members[0]"``)."""
    return instance_key(page if isinstance(page, str) else page.name, 0)


# ------------------------------------------------------------------ choice filters

@dataclass(frozen=True)
class _Context:
    """What a walk's rules read besides the answers: one moment (``today()``, ``now()``)
    and the survey's choice labels (``jr:choice-name()``, in the form's default language)."""

    survey: Survey
    now: dt.datetime

    def choice_label(self, question: str, value: str) -> str | None:
        try:
            q = field_of(self.survey, question).question
        except KeyError:
            return None
        for c in self.survey.choice_lists.get(q.choices or "", ()):
            if c.name == value:
                return c.label.get("zh")
        return None


def _context(survey: Survey) -> _Context:
    return _Context(survey, dt.datetime.now(ZoneInfo(LOCAL_TIMEZONE)).replace(microsecond=0))


def _evaluate(node: E.Expr, values: Mapping[str, Any] | Callable[[str], Any],
              ctx: _Context, current: Any = None) -> Any:
    """Every rule of the answer sheet is evaluated here, at the walk's one moment and
    with its choice labels."""
    return E.evaluate(node, values, current, choice_label=ctx.choice_label, now=ctx.now)


def _filter_tree(text: str) -> E.Expr:
    return E.parse(text, columns=True)


def _choice_columns(choice: Choice) -> dict[str, str]:
    """A choice's columns as a filter reads them: ``name``, then the extra columns."""
    return {"name": choice.name, **dict(choice.extra)}


def _choice_passes(tree: E.Expr, choice: Choice, get: Callable[[str], Any],
                   ctx: _Context) -> bool:
    return E.is_true(E.evaluate(tree, get, choice_label=ctx.choice_label, now=ctx.now,
                                columns=_choice_columns(choice)))


# ------------------------------------------------------------------ the plan

@dataclass(frozen=True)
class _QuestionPlan:
    question: Question
    fields: tuple[Field, ...]
    relevant: E.Expr | None
    constraint: E.Expr | None
    choice_filter: E.Expr | None
    #: answers on the same page the filter reads: until they are given the select waits
    filter_refs: tuple[str, ...]
    calculation: E.Expr | None


@dataclass(frozen=True)
class _PagePlan:
    page: Page
    relevant: E.Expr | None
    count: E.Expr | None
    names: frozenset[str]
    questions: tuple[_QuestionPlan, ...]


@dataclass(frozen=True)
class _Plan:
    pages: tuple[_PagePlan, ...]
    fields: dict[str, Field]
    repeat_pages: dict[str, Page]
    #: id(question) -> its plan
    by_question: dict[int, _QuestionPlan]


_plans: dict[int, tuple[Survey, _Plan]] = {}


def _parsed(text: str | None) -> E.Expr | None:
    return None if text is None else E.parse(text)


def _plan(survey: Survey) -> _Plan:
    """The survey's pages with every expression parsed (once per survey object)."""
    found = _plans.get(id(survey))
    if found is not None and found[0] is survey:
        return found[1]
    pages = []
    all_fields = _fields(survey)
    for page in survey.pages:
        fields = [f for f in all_fields if f.page is page]
        names = frozenset(f.name for f in fields)
        questions = []
        for q in page.questions:
            flt = None if q.choice_filter is None else _filter_tree(q.choice_filter)
            refs = () if flt is None else tuple(n for n in E.references(flt) if n in names)
            questions.append(_QuestionPlan(
                q, tuple(f for f in fields if f.question is q), _parsed(q.relevant),
                _parsed(q.constraint), flt, refs,
                _parsed(q.calculation) if q.type == "calculate" else None))
        pages.append(_PagePlan(page, _parsed(page.relevant),
                               _parsed(page.repeat.count) if page.repeat is not None else None,
                               names, tuple(questions)))
    plan = _Plan(tuple(pages), {f.name: f for f in all_fields},
                 {p.name: p for p in survey.pages if p.repeat is not None},
                 {id(qp.question): qp for pp in pages for qp in pp.questions})
    if len(_plans) > 64:
        _plans.clear()
    _plans[id(survey)] = (survey, plan)
    return plan


def filter_refs(survey: Survey, q: Question) -> tuple[str, ...]:
    """The answers on a select's own page that its ``choice_filter`` reads."""
    return _plan(survey).by_question[id(q)].filter_refs


def field_of(survey: Survey, key: str) -> Field:
    """The slot of an answer key (``name`` or ``name[i]``); KeyError when unknown."""
    return _plan(survey).fields[split_key(key)[0]]


# ------------------------------------------------------------------ the walk

@dataclass
class SlotState:
    """One answer slot of one repeat instance, as the walk found it."""

    key: str
    field: Field
    instance: int | None
    on: bool
    #: the clean value: None when skipped or unanswered; computed for calculate and
    #: read-only questions with a default
    value: Any = None


@dataclass
class AnswerSheet:
    """What a set of answers means: every slot (in order), which questions and pages
    are asked, the instances of each repeat and the choices each filter leaves."""

    slots: dict[str, SlotState] = field(default_factory=dict)
    #: (question name, instance) -> asked; notes and read-only questions included
    questions: dict[tuple[str, int | None], bool] = field(default_factory=dict)
    #: (page name, instance) -> the page's own condition holds
    pages: dict[tuple[str, int | None], bool] = field(default_factory=dict)
    #: repeat page name -> number of instances asked
    counts: dict[str, int] = field(default_factory=dict)
    #: (question name, instance) -> choices left by its choice_filter
    choices: dict[tuple[str, int | None], tuple[Choice, ...]] = field(default_factory=dict)
    #: repeat pages without ``count``: the count the resident stored (valid ones only)
    chosen_counts: dict[str, int] = field(default_factory=dict)

    def clean(self) -> dict[str, Any]:
        out = {k: s.value for k, s in self.slots.items() if s.on and not _empty(s.value)}
        out.update({count_key(p): n for p, n in self.chosen_counts.items()})
        return out


#: called for each asked slot before its value joins the answers later rules read;
#: returns False to leave the value out (a value of the wrong kind)
Check = Callable[[SlotState, Callable[[str], Any], Any, tuple[Choice, ...] | None], bool]


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list | tuple) and not value)


def _instances(pp: _PagePlan, answers: Mapping[str, Any], env: Mapping[str, Any],
               ctx: _Context) -> tuple[int, int | None]:
    """The number of instances of a repeat page, and the resident's stored count."""
    repeat = pp.page.repeat
    assert repeat is not None
    if pp.count is not None:
        number = _as_float(_evaluate(pp.count, env, ctx))
        return (0 if not math.isfinite(number) else
                max(0, min(repeat.maximum, int(number)))), None
    stored = answers.get(count_key(pp.page))
    if isinstance(stored, int) and not isinstance(stored, bool) and \
            1 <= stored <= repeat.maximum:
        return stored, stored
    return 1, None


def _as_float(value: Any) -> float:
    """A value as a number (NaN when it is none), as XPath ``number()`` reads it."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return math.nan
    return math.nan


def _calculated(value: Any) -> Any:
    """A calculation's result as an answer: numbers (whole ones as int), text, or None."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() and abs(value) < 2 ** 53 else value
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value) or None
    return None if value == "" else value


def _default_value(survey: Survey, f: Field) -> Any:
    """A read-only question's default as its answer (None when it cannot be read)."""
    try:
        value = parse_answer(survey, f.name, f.question.default)
    except AnswerError:
        return None
    return value if _value_problem(survey, f, value) is None else None


def _walk(survey: Survey, answers: Mapping[str, Any], check: Check | None = None,
          ctx: _Context | None = None) -> AnswerSheet:
    """Every slot in order with its relevance and clean value.  Later rules read the
    answers so far with those of skipped questions removed (as XLSForm clears them);
    inside a repeat instance ``${q}`` of the same page is that instance's value."""
    plan = _plan(survey)
    ctx = _context(survey) if ctx is None else ctx
    sheet = AnswerSheet()
    env: dict[str, Any] = {}
    for pp in plan.pages:
        page = pp.page
        outer_on = pp.relevant is None or E.is_true(_evaluate(pp.relevant, env, ctx))
        if page.repeat is None:
            instances: Iterable[int | None] = (None,)
        else:
            n, chosen = _instances(pp, answers, env, ctx) if outer_on else (0, None)
            sheet.counts[page.name] = n
            if chosen is not None:
                sheet.chosen_counts[page.name] = chosen
            instances = range(1, n + 1)
        for inst in instances:
            local: dict[str, Any] = {}
            get: Callable[[str], Any]
            if inst is None:
                get = env.get
            else:
                def get(name: str, local: dict[str, Any] = local,
                        names: frozenset[str] = pp.names) -> Any:
                    return local.get(name) if name in names else env.get(name)
            sheet.pages[(page.name, inst)] = outer_on
            for qp in pp.questions:
                _question(survey, sheet, qp, inst, outer_on, get, env, local, answers, check,
                          ctx)
        if page.repeat is not None and not outer_on:
            sheet.pages[(page.name, None)] = False
    return sheet


def _question(survey: Survey, sheet: AnswerSheet, qp: _QuestionPlan, inst: int | None,
              page_on: bool, get: Callable[[str], Any], env: dict[str, Any],
              local: dict[str, Any], answers: Mapping[str, Any], check: Check | None,
              ctx: _Context) -> None:
    q = qp.question
    if q.type in META_TYPES:
        on = True  # recorded by delivery whatever the answers
    else:
        on = page_on and (qp.relevant is None or E.is_true(_evaluate(qp.relevant, get, ctx)))
    choices = None
    if on and qp.choice_filter is not None:
        if any(_empty(get(n)) for n in qp.filter_refs):
            on = False  # held back until the answer it filters on is given
        else:
            choices = tuple(c for c in survey.choices(q.choices or "")
                            if _choice_passes(qp.choice_filter, c, get, ctx))
            sheet.choices[(q.name, inst)] = choices
            on = bool(choices)  # no choice left: the question is skipped
    sheet.questions[(q.name, inst)] = on
    for f in qp.fields:
        key = instance_key(f.name, inst)
        slot_on = on
        if f.kind == "other_text":
            slot_on = on and E.is_true(_evaluate(E.Call("selected", (
                E.Ref(q.name), E.Str(OTHER))), get, ctx))
        raw = answers.get(key)
        if q.type == "calculate":
            raw = _calculated(_evaluate(qp.calculation, get, ctx)) if (
                slot_on and qp.calculation is not None) else None
        elif q.read_only and _empty(raw) and q.default is not None and f.kind == q.type:
            raw = _default_value(survey, f)
        state = SlotState(key, f, inst, slot_on)
        keep = slot_on and not _empty(raw)
        if keep and check is not None:
            keep = check(state, get, raw, choices)
        elif slot_on and check is not None:
            check(state, get, None, choices)
        state.value = raw if keep else None
        sheet.slots[key] = state
        env[key] = state.value
        if inst is not None:
            local[f.name] = state.value


def answer_sheet(survey: Survey, answers: Mapping[str, Any]) -> AnswerSheet:
    """What the answers mean (see :class:`AnswerSheet`); one walk of the survey."""
    return _walk(survey, answers)


def relevance(survey: Survey, answers: Mapping[str, Any]) -> dict[str, bool]:
    """Whether each answer slot (of each repeat instance) is asked, given the answers."""
    return {k: s.on for k, s in _walk(survey, answers).slots.items()}


def clean_answers(survey: Survey, answers: Mapping[str, Any]) -> dict[str, Any]:
    """The answers of slots that are asked and answered, with calculated values and the
    instance counts residents chose; skipped ones are dropped."""
    return _walk(survey, answers).clean()


def choices_for(survey: Survey, key: str, answers: Mapping[str, Any]) -> tuple[Choice, ...]:
    """The choices a select offers given the answers: its list, narrowed by its
    ``choice_filter`` (empty when the filter waits for an answer or leaves nothing)."""
    f = field_of(survey, key)
    q = f.question
    if q.choices is None:
        return ()
    if q.choice_filter is None:
        return survey.choices(q.choices)
    return _walk(survey, answers).choices.get((q.name, split_key(key)[1]), ())


# ------------------------------------------------------------------ problems

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
NOT_TIME = Text("请按“时:分”填写时间，例如 14:30。",
                "Please enter the time as hours:minutes, for example 14:30.")
NOT_DATETIME = Text("请填写日期和时间，例如 2024-05-01 14:30。",
                    "Please enter the date and time, for example 2024-05-01 14:30.")
INVALID = Text("这个回答不符合要求，请检查。", "This answer is not valid; please check it.")
UNKNOWN = Text("问卷中没有这道题。", "This survey has no such question.")


def _too_long(n: int) -> Text:
    return Text(f"最多填写 {n} 个字。", f"Please write at most {n} characters.")


def _number_text(value: int | float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _range_message(q: Question) -> Text:
    lo, hi = q.minimum, q.maximum
    if q.type == "range":
        lo, hi, step = range_bounds(q)
        if step != 1:
            return Text(f"请填写 {_number_text(lo)} 到 {_number_text(hi)} 之间、间隔为 "
                        f"{_number_text(step)} 的数。",
                        f"Please enter a number from {_number_text(lo)} to "
                        f"{_number_text(hi)} in steps of {_number_text(step)}.")
    if lo is not None and hi is not None:
        return Text(f"请填写 {lo} 到 {hi} 之间的数。", f"Please enter a number from {lo} to {hi}.")
    if lo is not None:
        return Text(f"请填写不小于 {lo} 的数。", f"Please enter a number of at least {lo}.")
    return Text(f"请填写不大于 {hi} 的数。", f"Please enter a number of at most {hi}.")


def range_bounds(q: Question) -> tuple[int | float, int | float, int | float]:
    """A range question's start, end and step (XLSForm's defaults where unset)."""
    lo = RANGE_DEFAULTS[0] if q.minimum is None else q.minimum
    hi = RANGE_DEFAULTS[1] if q.maximum is None else q.maximum
    step = RANGE_DEFAULTS[2] if not q.step else abs(q.step)
    return lo, hi, step


def range_values(q: Question, limit: int = 1000) -> list[int | float]:
    """The values a range question allows, in order (at most ``limit`` + 1 of them)."""
    lo, hi, step = range_bounds(q)
    out: list[int | float] = []
    i = 0
    while len(out) <= limit:
        value = lo + i * step
        if value > hi + abs(step) * 1e-9:
            break
        value = round(value, 10)
        out.append(int(value) if float(value).is_integer() else value)
        i += 1
    return out


def _on_step(q: Question, value: float) -> bool:
    lo, hi, step = range_bounds(q)
    if not lo - 1e-9 <= value <= hi + 1e-9:
        return False
    k = (value - lo) / step
    return abs(k - round(k)) < 1e-9


def _value_problem(survey: Survey, f: Field, value: Any,
                   choices: tuple[Choice, ...] | None = None) -> Text | None:
    """Why a non-empty answer is not acceptable for its slot, or None; ``choices`` are
    those a choice filter left (default: the whole list)."""
    kind = f.kind
    if kind in ("single_choice", "rating", "multiple_choice"):
        offered = survey.choice_lists[f.choice_list or ""] if choices is None else choices
        names = {c.name for c in offered}
        if kind != "multiple_choice":
            return None if isinstance(value, str) and value in names else NOT_A_CHOICE
        ok = (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
              and set(value) <= names and len(set(value)) == len(value))
        return None if ok else NOT_A_CHOICE
    if kind in ("integer", "decimal", "range"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            return NOT_INTEGER if kind == "integer" else NOT_NUMBER
        if kind == "integer" and not float(value).is_integer():
            return NOT_INTEGER
        q = f.question
        if kind == "range":
            return None if _on_step(q, value) else _range_message(q)
        if (q.minimum is not None and value < q.minimum) or (
                q.maximum is not None and value > q.maximum):
            return _range_message(q)
        return None
    if kind in ("text", "other_text", "calculate", "start", "end", "deviceid"):
        limit = MAX_OTHER_TEXT if kind == "other_text" else MAX_TEXT
        if kind == "calculate" and isinstance(value, int | float) and not isinstance(
                value, bool):
            return None
        if not isinstance(value, str):
            return INVALID
        return _too_long(limit) if len(value) > limit else None
    if kind in ("date", "today"):
        return None if isinstance(value, str) and E.is_date(value) else NOT_DATE
    if kind == "month":
        return None if isinstance(value, str) and _is_month(value) else NOT_MONTH
    if kind == "time":
        return None if isinstance(value, str) and _time(value) == value else NOT_TIME
    if kind == "datetime":
        return None if isinstance(value, str) and _datetime(value) == value else NOT_DATETIME
    return INVALID


def _is_month(text: str) -> bool:
    return bool(E.MONTH_RE.fullmatch(text)) and E.is_date(text + "-01")


def _time(text: str) -> str | None:
    """``HH:MM`` of a time (``9:05`` and ``09:05:00`` read too), or None."""
    if len(text) == 4 and text[1] == ":":
        text = "0" + text
    m = TIME_RE.fullmatch(text)
    return None if m is None else f"{m.group(1)}:{m.group(2)}"


def _datetime(text: str) -> str | None:
    """``YYYY-MM-DDTHH:MM`` of a date and time (a space for ``T`` reads too), or None."""
    m = DATETIME_RE.fullmatch(text)
    if m is None or not E.is_date(m.group(1)):
        return None
    clock = _time(m.group(2))
    return None if clock is None else f"{m.group(1)}T{clock}"


def check_answers(survey: Survey, answers: Mapping[str, Any],
                  pages: Iterable[str] | None = None) -> list[AnswerProblem]:
    """Every problem with the answers to the asked slots of ``pages`` (default all; a
    page name covers all its instances, ``page[2]`` one instance): unknown keys, values
    of the wrong kind or outside a choice filter, ranges, required answers, constraints.
    Answers to skipped questions are ignored (drop them with :func:`clean_answers`)."""
    return checked_sheet(survey, answers, pages)[0]


def checked_sheet(survey: Survey, answers: Mapping[str, Any],
                  pages: Iterable[str] | None = None
                  ) -> tuple[list[AnswerProblem], AnswerSheet]:
    """:func:`check_answers` and the sheet of the same walk (values of the wrong kind
    left out), for a caller that needs both (a page post)."""
    plan = _plan(survey)
    ctx = _context(survey)
    wanted = None if pages is None else set(pages)
    problems = [AnswerProblem(key, UNKNOWN) for key in answers if not _known(plan, key)]

    def check(state: SlotState, get: Callable[[str], Any], value: Any,
              choices: tuple[Choice, ...] | None) -> bool:
        f = state.field
        if wanted is not None and f.page.name not in wanted and instance_key(
                f.page.name, state.instance) not in wanted:
            return True
        q = f.question
        if q.type in COMPUTED_TYPES:
            return True
        if value is None:
            if q.required and f.kind != "other_text" and not q.read_only:
                problems.append(AnswerProblem(state.key, q.required_message or REQUIRED))
            return False
        message = _value_problem(survey, f, value, choices)
        if message is not None:
            problems.append(AnswerProblem(state.key, message))
            return False
        tree = plan.by_question[id(q)].constraint
        if tree is not None and f.kind != "other_text" and not E.is_true(
                _evaluate(tree, get, ctx, current=value)):
            problems.append(AnswerProblem(state.key, q.constraint_message or INVALID))
        return True

    sheet = _walk(survey, answers, check, ctx)
    for name in plan.repeat_pages:
        key = count_key(name)
        asked = sheet.pages.get((name, 1), False)  # the repeat's page is shown
        if key in answers and _known(plan, key) and asked and (
                name not in sheet.chosen_counts) and (
                wanted is None or name in wanted or instance_key(name, 1) in wanted):
            problems.append(AnswerProblem(key, INVALID))
    return problems, sheet


def _known(plan: _Plan, key: str) -> bool:
    name, inst = split_key(key)
    if inst == 0:
        page = plan.repeat_pages.get(name)
        return page is not None and page.repeat is not None and page.repeat.count is None
    f = plan.fields.get(name)
    if f is None:
        return False
    if f.page.repeat is None:
        return inst is None
    return inst is not None and 1 <= inst <= f.page.repeat.maximum


# ------------------------------------------------------------------ form text

class AnswerError(ValueError):
    """A form value that cannot be read; ``message`` is for the resident."""

    def __init__(self, message: Text) -> None:
        super().__init__(message.en)
        self.message = message


def _number_of(text: str, kind: str) -> int | float:
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise AnswerError(NOT_INTEGER) from None
    try:
        value = float(text)
    except ValueError:
        raise AnswerError(NOT_NUMBER) from None
    if not math.isfinite(value):
        raise AnswerError(NOT_NUMBER)
    return int(value) if value.is_integer() and "." not in text else value


def parse_answer(survey: Survey, name: str, raw: str | list[str] | None) -> Any:
    """The typed answer of an answer key from form text (a list for multiple choice);
    ``name`` may be an instance key (``age[2]``) or a repeat's count key (``members[0]``).

    Blank input gives None.  Full-width digits and punctuation (typed on Chinese
    keyboards) are read as their ASCII forms.  Raises :class:`AnswerError`.
    """
    base, inst = split_key(name)
    plan = _plan(survey)
    kind = "integer" if inst == 0 and base in plan.repeat_pages else None
    if kind is None:
        f = plan.fields.get(base)
        if f is None:
            raise KeyError(name)
        kind = f.kind
    if kind == "multiple_choice":
        values = raw.split() if isinstance(raw, str) else list(raw or [])
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
    if kind in ("text", "other_text", "single_choice", "rating", "calculate", "start", "end",
                "deviceid"):
        return text
    text = unicodedata.normalize("NFKC", text).replace(" ", "") if kind != "datetime" else \
        unicodedata.normalize("NFKC", text)
    if kind in ("integer", "decimal", "range"):
        return _number_of(text, kind)
    readers: dict[str, tuple[Callable[[str], Any], Text]] = {
        "date": (lambda t: t if E.is_date(t) else None, NOT_DATE),
        "today": (lambda t: t if E.is_date(t) else None, NOT_DATE),
        "month": (lambda t: t if _is_month(t) else None, NOT_MONTH),
        "time": (_time, NOT_TIME),
        "datetime": (_datetime, NOT_DATETIME),
    }
    if kind in readers:
        read, message = readers[kind]
        value = read(text)
        if value is None:
            raise AnswerError(message)
        return value
    raise AnswerError(INVALID)


def is_computed(q: Question) -> bool:
    """Calculate and meta questions: never shown, never posted."""
    return q.type in COMPUTED_TYPES
