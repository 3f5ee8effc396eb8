"""The survey definition: a versioned, bilingual document with pages, questions and rules.

A definition is plain data (frozen dataclasses) that can be written to and read from
JSON (this module) or an XLSForm-like workbook (:mod:`surveys.xlsform`);
:mod:`surveys.documents` reads either. The format is documented in
``surveys/README.md``.  Reading never returns half a survey: every problem in a
document is collected (with where it is, the question it concerns and the field) and
a document with any problem gives no survey, like the item importer.

Besides the document, this module holds the rules an answer sheet must follow
(relevance, required, ranges, constraints), because they are part of what a
definition means and both delivery and the tests need them without a database.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

from . import expressions as E

__all__ = [
    "CHOICE_TYPES",
    "OTHER",
    "QUESTION_TYPES",
    "SCHEMA",
    "BankItem",
    "Choice",
    "Field",
    "Page",
    "Problem",
    "Question",
    "RatingItem",
    "Repeat",
    "Survey",
    "SurveyError",
    "SurveyReport",
    "Text",
    "apply_bank",
    "check",
    "default_survey",
    "dumps",
    "instance_key",
    "load_survey",
    "normalise",
    "read_bank",
    "read_json",
    "split_key",
    "survey_from_dict",
    "survey_to_dict",
    "validate",
]

SCHEMA = "learningcity-survey/1"
QUESTION_TYPES = ("single_choice", "multiple_choice", "rating_grid", "integer", "decimal",
                  "text", "date", "month", "note", "time", "datetime", "range", "calculate",
                  "start", "end", "today", "deviceid")
#: types with no answer on a page: delivery records (meta) or computes (calculate) them
META_TYPES = ("start", "end", "today", "deviceid")
CHOICE_TYPES = ("single_choice", "multiple_choice")
#: the choice that opens the "other, please specify" text of a question with ``other``
OTHER = "other"
OTHER_SUFFIX = "_other"
#: question, page and item names as XML names: a letter or _, then letters, digits, _, -
#: and ., at most 64 (the exports make SPSS-safe variable names of them)
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
CHOICE_NAME_RE = re.compile(r"[^\s'\"]{1,32}")
ITEM_CODE_RE = re.compile(r"[^\s]{1,64}")
MAX_TEXT = 2000
MAX_OTHER_TEXT = 500


# ------------------------------------------------------------------ document


@dataclass(frozen=True)
class Text:
    """A text in simplified Chinese and English, and any further languages of an imported
    form in ``more`` (``(code, text)`` pairs such as ``("fr", ...)``, ``("zh-TW", ...)``).

    A missing translation falls back: the page shows zh, else en, else the first other
    language (the importer warns about each missing zh or en text).
    """

    zh: str
    en: str
    more: tuple[tuple[str, str], ...] = ()

    def get(self, locale: str) -> str:
        first = (self.en, self.zh) if locale.startswith("en") else (self.zh, self.en)
        for text in (*first, *(t for _, t in self.more)):
            if text:
                return text
        return ""

    def language(self, code: str) -> str:
        """The text in one language exactly ("" when it has none)."""
        if code in ("zh", "en"):
            return getattr(self, code)
        return dict(self.more).get(code, "")

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages this text is given in, zh and en first."""
        return tuple(c for c, t in (("zh", self.zh), ("en", self.en), *self.more) if t)


@dataclass(frozen=True)
class Choice:
    """One choice; ``extra`` holds the choice sheet's further columns (``(column, value)``),
    which a ``choice_filter`` reads by bare name (``district = ${district}``)."""

    name: str
    label: Text
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RatingItem:
    """One statement of a rating grid; ``item_code`` links it to an item-bank item."""

    name: str
    label: Text
    item_code: str | None = None
    reverse: bool = False


@dataclass(frozen=True)
class Question:
    """One question.  Fields that do not apply to ``type`` stay at their defaults.

    ``choices`` names a choice list (single/multiple choice and rating grids);
    ``other`` adds the text ``<name>_other`` asked when the choice ``other`` is
    selected; ``minimum``/``maximum`` bound numbers (inclusive; a ``range`` question's
    start and end, with ``step``); ``items`` are the statements of a rating grid, all
    answered on the grid's choice list.

    From XLSForm: ``appearance`` (only those the pages honour: ``minimal``, ``likert``,
    ``multiline``, ``month-year``, ``year``...), ``choice_filter`` (an expression over the
    choice's ``extra`` columns by bare name and earlier answers, for cascading selects),
    ``default`` (the answer a page starts with, as form text), ``read_only`` (shown, not
    editable), ``calculation`` (type ``calculate``: a value computed from earlier answers),
    ``required_message`` (said when a required answer is missing).
    Meta types ``start``, ``end``, ``today`` and ``deviceid`` are recorded by delivery, never
    shown.
    """

    name: str
    type: str
    label: Text
    hint: Text | None = None
    required: bool = False
    relevant: str | None = None
    constraint: str | None = None
    constraint_message: Text | None = None
    choices: str | None = None
    other: bool = False
    minimum: int | float | None = None
    maximum: int | float | None = None
    items: tuple[RatingItem, ...] = ()
    step: int | float | None = None
    appearance: str | None = None
    choice_filter: str | None = None
    default: str | None = None
    read_only: bool = False
    calculation: str | None = None
    required_message: Text | None = None


@dataclass(frozen=True)
class Repeat:
    """A page asked once per instance (XLSForm ``begin repeat``).

    ``count`` is the number of instances as an expression over earlier answers
    (``repeat_count``: ``${household_size}`` or ``3``); without it the resident adds
    instances one at a time, up to ``maximum``.
    """

    count: str | None = None
    maximum: int = 30


@dataclass(frozen=True)
class Page:
    """A page (screen) of questions; when ``relevant`` is false the whole page is skipped.

    With ``repeat`` the page is asked once per instance; answers of instance ``i``
    (from 1) are keyed ``name[i]`` (see :func:`instance_key`).
    """

    name: str
    title: Text
    questions: tuple[Question, ...]
    relevant: str | None = None
    repeat: Repeat | None = None


@dataclass(frozen=True)
class Field:
    """One answer slot: a question, a rating item, or the text of an "other" choice.

    ``kind`` is the question type, ``rating`` for a rating item, ``other_text`` for
    the specify text.  Answers are keyed by ``name``.
    """

    name: str
    kind: str
    question: Question
    page: Page
    item: RatingItem | None = None

    @property
    def label(self) -> Text:
        if self.item is not None:
            return self.item.label
        if self.kind == "other_text":
            return Text(f"{self.question.label.zh}（其他，请注明）",
                        f"{self.question.label.en} (other, please specify)")
        return self.question.label

    @property
    def choice_list(self) -> str | None:
        return self.question.choices if self.kind in (*CHOICE_TYPES, "rating") else None


@dataclass(frozen=True)
class Survey:
    """A survey definition; ``version`` grows whenever the questions change."""

    id: str
    version: int
    title: Text
    choice_lists: dict[str, tuple[Choice, ...]]
    pages: tuple[Page, ...]
    #: an imported form's own ``version`` text when it is not a small whole number
    #: (``2024031501``, ``v1.2``); written back on export
    form_version: str | None = None

    @property
    def questions(self) -> tuple[Question, ...]:
        return tuple(q for page in self.pages for q in page.questions)

    def question(self, name: str) -> Question:
        for q in self.questions:
            if q.name == name:
                return q
        raise KeyError(name)

    def fields(self) -> tuple[Field, ...]:
        """Every answer slot in the order residents meet them (notes have none)."""
        return _fields(self)

    def field(self, name: str) -> Field:
        for f in self.fields():
            if f.name == name:
                return f
        raise KeyError(name)

    def choices(self, list_name: str) -> tuple[Choice, ...]:
        return self.choice_lists[list_name]


def _fields(survey: Survey) -> tuple[Field, ...]:
    out: list[Field] = []
    for page in survey.pages:
        for q in page.questions:
            out.extend(_question_fields(q, page))
    return tuple(out)


def instance_key(name: str, instance: int | None) -> str:
    """The answer key of a slot in a repeat instance (from 1): ``name[2]``."""
    return name if instance is None else f"{name}[{instance}]"


def split_key(key: str) -> tuple[str, int | None]:
    """The slot name and repeat instance of an answer key (``("name", 2)``, ``("q", None)``)."""
    if key.endswith("]") and "[" in key:
        name, _, number = key[:-1].rpartition("[")
        if number.isdigit():
            return name, int(number)
    return key, None


def _question_fields(q: Question, page: Page) -> list[Field]:
    if q.type == "note":
        return []
    if q.type == "rating_grid":
        return [Field(item.name, "rating", q, page, item) for item in q.items]
    out = [Field(q.name, q.type, q, page)]
    if q.other and q.type in CHOICE_TYPES:
        out.append(Field(q.name + OTHER_SUFFIX, "other_text", q, page))
    return out


# ------------------------------------------------------------------ problems


@dataclass(frozen=True)
class Problem:
    """One problem in a definition: where (JSON path or sheet row), what, which field."""

    where: str
    subject: str
    field: str
    message: str

    def __str__(self) -> str:
        head = ", ".join(p for p in (self.where, self.subject) if p)
        return f"{head}, {self.field}: {self.message}" if self.field else f"{head}: {self.message}"


@dataclass
class SurveyReport:
    """A survey read from a document, or every problem that kept it from being read."""

    source: str
    survey: Survey | None = None
    problems: list[Problem] = field(default_factory=list)
    #: what was read but changed or left out (an appearance the pages ignore, a missing
    #: translation, an extra sheet): the survey is still read
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.survey is not None

    def summary(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem(s); the survey was not read"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)

    def survey_or_raise(self) -> Survey:
        if not self.ok:
            raise SurveyError(self)
        assert self.survey is not None
        return self.survey


class SurveyError(ValueError):
    """A definition with problems; ``problems`` lists all of them."""

    def __init__(self, report: SurveyReport) -> None:
        super().__init__(report.summary())
        self.report = report
        self.problems = report.problems


#: location keys: ("survey",) ("list", name) ("choice", list, i) ("page", p)
#: ("question", p, q) ("item", p, q, i); a locator turns one into text
Locator = Callable[[tuple], str]


def json_location(key: tuple) -> str:
    """Where a part of a definition sits in its JSON document."""
    kind = key[0]
    if kind == "survey":
        return "survey"
    if kind == "list":
        return f"choice_lists.{key[1]}"
    if kind == "choice":
        return f"choice_lists.{key[1]}[{key[2]}]"
    path = f"pages[{key[1]}]"
    if kind == "page":
        return path
    path += f".questions[{key[2]}]"
    return path if kind == "question" else path + f".items[{key[3]}]"


# ---------------------------------------------------------------- validation


def validate(survey: Survey, where: Locator | None = None) -> list[Problem]:
    """Every problem of a definition: names, texts, choice lists, question fields,
    and each relevance/constraint expression (syntax, references, types)."""
    return check(survey, where)[0]


def check(survey: Survey, where: Locator | None = None, *, strict_texts: bool = True
          ) -> tuple[list[Problem], list[Problem]]:
    """``(problems, warnings)`` of a definition.

    With ``strict_texts`` (JSON documents) every text needs zh and en; without it
    (imported XLSForms) a text needs one language, and each language of zh/en that
    some texts lack is one warning (the pages fall back, :meth:`Text.get`).  ``where``
    may have a ``column(key, field)`` method naming the file's column for a field.
    """
    v = _Validator(survey, where or json_location, strict_texts)
    return v.run(), v.warnings


def var_type(survey: Survey, f: Field) -> E.VarType:
    """The expression type of an answer slot; a ``calculate`` question's is its
    calculation's (text when that cannot be told), so ``${calc} > 3`` checks."""
    return _var_type(survey, f, set())


def _var_type(survey: Survey, f: Field, seen: set[str]) -> E.VarType:
    if f.kind == "calculate":
        return _calculated_type(survey, f, seen)
    names = tuple(c.name for c in survey.choice_lists.get(f.choice_list or "", ()))
    kind = {"single_choice": "choice", "rating": "choice", "multiple_choice": "multi",
            "integer": "number", "decimal": "number", "range": "number", "text": "string",
            "other_text": "string", "date": "date", "month": "month", "today": "date",
            "time": "string", "datetime": "string", "start": "string", "end": "string",
            "deviceid": "string"}[f.kind]
    return E.VarType(kind, names)


def _calculated_type(survey: Survey, f: Field, seen: set[str]) -> E.VarType:
    """The type a calculation gives; ``seen`` stops a cycle of calculations (refused by
    validation, but the type may be asked of a survey not yet validated)."""
    text = f.question.calculation
    if text is None or f.name in seen:
        return E.VarType("string")
    try:
        tree = E.parse(text)
    except E.ParseError:
        return E.VarType("string")
    known = {g.name: g for g in survey.fields()}
    inner = seen | {f.name}

    def lookup(name: str) -> E.VarType | None:
        g = known.get(name)
        return None if g is None else _var_type(survey, g, inner)

    return E.infer_type(tree, lookup) or E.VarType("string")


#: questions that need no label (nothing is shown for them)
UNLABELLED_TYPES = (*META_TYPES, "calculate")
#: a default's time and date-time: the shapes surveys.answers.parse_answer reads (minutes;
#: seconds only as ``:00``), so a pre-filled default always posts back
_TIME_RE = re.compile(r"([01]?[0-9]|2[0-3]):[0-5][0-9](:00)?")
_DATETIME_RE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}:[0-9]{2}(:00)?)")
_LIST_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,63}")
_NAME_RULE = "must start with a letter or _ and use only letters, digits, _, - and . " \
             "(at most 64)"
MAX_REPEAT = 1000
#: characters of the longest answer or page key the database holds (surveys.models):
#: a 64-character name, ``_other`` and ``[1000]`` give 76
MAX_KEY = 80
_NO_TYPE = E.VarType("string")


class _Validator:
    def __init__(self, survey: Survey, where: Locator, strict_texts: bool = True) -> None:
        self.s, self.where = survey, where
        self.strict = strict_texts
        self.column = getattr(where, "column", None)
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.missing: dict[str, list[str]] = {"zh": [], "en": []}
        self.names: dict[str, tuple] = {}  # every name -> location key of its first use
        self.kinds: dict[str, str] = {}  # name -> "page", "grid", "note" or a slot kind
        self.order: dict[str, int] = {}  # answer slot -> position in the survey
        self.fields: dict[str, Field] = {}
        self.page_of: dict[str, int] = {}  # name -> index of its page
        self.page_start: dict[int, int] = {}  # page index -> position of its first slot
        self.question_start: dict[tuple[int, int], int] = {}

    def place(self, key: tuple, fld: str) -> str:
        return self.column(key, fld) if self.column is not None and fld else fld

    def add(self, key: tuple, subject: str, fld: str, message: str) -> None:
        self.problems.append(Problem(self.where(key), subject, self.place(key, fld), message))

    def warn(self, key: tuple, subject: str, fld: str, message: str) -> None:
        self.warnings.append(Problem(self.where(key), subject, self.place(key, fld), message))

    def run(self) -> list[Problem]:
        s = self.s
        top = ("survey",)
        if not isinstance(s.id, str) or not NAME_RE.fullmatch(s.id):
            self.add(top, "", "id", f"{s.id!r} {_NAME_RULE}")
        if isinstance(s.version, bool) or not isinstance(s.version, int) or s.version < 1:
            self.add(top, "", "version", f"{s.version!r} must be a whole number >= 1")
        self.text(top, "", "title", s.title, required=True)
        used = [(q.choices, q.choice_filter is not None) for q in s.questions if q.choices]
        self.filtered = ({name for name, f in used if f}
                         - {name for name, f in used if not f})
        for name, choices in s.choice_lists.items():
            self.choice_list(name, choices)
        if not s.pages:
            self.add(top, "", "pages", "the survey has no pages")
        self.collect_names()
        for pi, page in enumerate(s.pages):
            self.page(pi, page)
        self.item_codes()
        for lang, places in self.missing.items():
            if places:
                shown = ", ".join(places[:5]) + (f" and {len(places) - 5} more"
                                                 if len(places) > 5 else "")
                name = {"zh": "Chinese (zh)", "en": "English (en)"}[lang]
                self.warnings.append(Problem(places[0], "", "", f"{len(places)} text(s) have "
                                             f"no {name} translation ({shown}); the pages "
                                             "show them in another language"))
        return self.problems

    # -- names and texts
    def claim(self, name: str, key: tuple, subject: str, kind: str, page: int,
              base: str | None = None) -> None:
        """Take ``name`` for one thing; ``base`` is the question name a derived name
        (``q_other``) is made from: the rule applies to it (reported on its own claim)."""
        if base is not None:
            if not isinstance(base, str) or not NAME_RE.fullmatch(base):
                return
        elif not isinstance(name, str) or not NAME_RE.fullmatch(name):
            self.add(key, subject, "name", f"{name!r} {_NAME_RULE}")
            return
        if name in self.names:
            self.add(key, subject, "name", f"{name!r} is already used "
                                           f"({self.where(self.names[name])})")
            return
        self.names[name] = key
        self.kinds[name] = kind
        self.page_of[name] = page

    def collect_names(self) -> None:
        position = 0
        for pi, page in enumerate(self.s.pages):
            self.page_start[pi] = position
            self.claim(page.name, ("page", pi), f"page {page.name!r}", "page", pi)
            for qi, q in enumerate(page.questions):
                key = ("question", pi, qi)
                self.question_start[(pi, qi)] = position
                kind = {"rating_grid": "grid", "note": "note"}.get(q.type, q.type)
                self.claim(q.name, key, f"question {q.name!r}", kind, pi)
                for ii, item in enumerate(q.items if q.type == "rating_grid" else ()):
                    self.claim(item.name, ("item", pi, qi, ii), f"item {item.name!r}",
                               "rating", pi)
                if q.other and q.type in CHOICE_TYPES:
                    self.claim(q.name + OTHER_SUFFIX, key, f"question {q.name!r}",
                               "other_text", pi, base=q.name)
                for f in _question_fields(q, page):
                    if self.names.get(f.name) is not None and f.name not in self.order:
                        self.order[f.name] = position
                        self.fields[f.name] = f
                    position += 1

    def text(self, key: tuple, subject: str, fld: str, value: Text | None,
             required: bool) -> None:
        if value is None:
            if required:
                for lang in ("zh", "en") if self.strict else ("zh",):
                    self.add(key, subject, f"{fld}::{lang}", "missing")
            return
        texts = [t for t in (value.zh, value.en, *(t for _, t in value.more))]
        if not all(isinstance(t, str) for t in texts):
            self.add(key, subject, fld, "must be text")
            return
        given = [t for t in texts if t.strip()]
        if not given and not required:
            return
        for lang in ("zh", "en"):
            text = getattr(value, lang)
            if text.strip():
                continue
            if self.strict:
                self.add(key, subject, f"{fld}::{lang}",
                         "missing" if required else "give the text in both languages")
            elif not given:
                self.add(key, subject, f"{fld}::{lang}", "missing")
                return
            elif self.where(key) not in self.missing[lang][-1:]:
                self.missing[lang].append(self.where(key))

    # -- choice lists
    def choice_list(self, name: str, choices: tuple[Choice, ...]) -> None:
        key = ("list", name)
        subject = f"list {name!r}"
        if not isinstance(name, str) or not _LIST_NAME_RE.fullmatch(name):
            self.add(key, subject, "list_name", "must start with a letter or _ and use only "
                                                "letters, digits, _, -, . and :")
        if not choices:
            self.add(key, subject, "choices", "the list has no choices")
        seen: dict[str, int] = {}
        for ci, c in enumerate(choices):
            ckey = ("choice", name, ci)
            if not isinstance(c.name, str) or not CHOICE_NAME_RE.fullmatch(c.name):
                self.add(ckey, subject, "name", f"choice name {c.name!r} must be 1-32 "
                                                "characters without spaces or quotes")
            elif c.name in seen:
                also = self.where(("choice", name, seen[c.name]))
                if name in self.filtered:  # cascading lists repeat names under each parent
                    self.warn(ckey, subject, "name", f"choice {c.name!r} is also {also}; "
                              "accepted because every question on this list filters it")
                else:
                    self.add(ckey, subject, "name", f"duplicate choice {c.name!r} (also "
                                                    f"{also})")
            else:
                seen[c.name] = ci
            self.text(ckey, f"{subject}, choice {c.name!r}", "label", c.label, required=True)

    # -- pages and questions
    def page(self, pi: int, page: Page) -> None:
        key = ("page", pi)
        subject = f"page {page.name!r}"
        shown = not page.questions or any(q.type not in UNLABELLED_TYPES
                                          for q in page.questions)
        self.text(key, subject, "title", page.title, required=shown)
        if not page.questions:
            self.add(key, subject, "questions", "the page has no questions")
        if page.relevant is not None:
            self.expression(key, subject, "relevant", page.relevant, self.page_start[pi],
                            page=pi)
        if page.repeat is not None:
            r = page.repeat
            if isinstance(r.maximum, bool) or not isinstance(r.maximum, int) or not (
                    1 <= r.maximum <= MAX_REPEAT):
                self.add(key, subject, "repeat.max", f"{r.maximum!r} must be a whole "
                                                     f"number from 1 to {MAX_REPEAT}")
            if r.count is not None:
                self.expression(key, subject, "repeat.count", r.count, self.page_start[pi],
                                page=pi, want="number")
        self.key_length(key, subject, "name", page.name, page)
        for qi, q in enumerate(page.questions):
            self.question(pi, qi, q)
            for f in _question_fields(q, page):
                self.key_length(("question", pi, qi), f"question {q.name!r}", "name",
                                f.name, page)

    def key_length(self, key: tuple, subject: str, fld: str, name: str, page: Page) -> None:
        """The longest key of a slot or page (``name[maximum]`` in a repeat) must fit the
        database's key columns (:data:`MAX_KEY` characters)."""
        maximum = page.repeat.maximum if page.repeat is not None else None
        if not isinstance(name, str) or (maximum is not None and (
                isinstance(maximum, bool) or not isinstance(maximum, int))):
            return
        longest = instance_key(name, maximum)
        if len(longest) > MAX_KEY:
            self.add(key, subject, fld, f"the answer key {longest!r} has {len(longest)} "
                     f"characters, more than the {MAX_KEY} the answers can hold: shorten "
                     "the name or lower the repeat's max")

    def question(self, pi: int, qi: int, q: Question) -> None:
        key = ("question", pi, qi)
        subject = f"question {q.name!r}"
        if q.type not in QUESTION_TYPES:
            self.add(key, subject, "type", f"unknown type {q.type!r}; use "
                                           f"{', '.join(QUESTION_TYPES)}")
            return
        self.text(key, subject, "label", q.label, required=q.type not in UNLABELLED_TYPES)
        if q.hint is not None:
            self.text(key, subject, "hint", q.hint, required=False)
        if q.type in (*CHOICE_TYPES, "rating_grid"):
            if not q.choices:
                self.add(key, subject, "choices", "missing: name the choice list")
            elif q.choices not in self.s.choice_lists:
                self.add(key, subject, "choices", f"unknown choice list {q.choices!r}")
        elif q.choices:
            self.add(key, subject, "choices", f"a {q.type} question has no choice list")
        if q.other:
            if q.type not in CHOICE_TYPES:
                self.add(key, subject, "other", "only choice questions can have 'other, "
                                                "please specify'")
            elif q.choices in self.s.choice_lists and OTHER not in [
                    c.name for c in self.s.choice_lists[q.choices]]:
                self.add(key, subject, "other", f"choice list {q.choices!r} has no choice "
                                                f"{OTHER!r} to open the specify text")
        self.numbers(key, subject, q)
        if q.type in ("note", *UNLABELLED_TYPES) and q.required:
            self.add(key, subject, "required", f"a {q.type} has no answer to require")
        if q.required_message is not None:
            self.text(key, subject, "required_message", q.required_message, required=False)
            if not q.required:
                self.warn(key, subject, "required_message", "the question is not required, "
                                                            "so this message is never shown")
        if q.constraint_message is not None:
            if q.constraint is None:
                self.add(key, subject, "constraint_message", "there is no constraint")
            self.text(key, subject, "constraint_message", q.constraint_message,
                      required=False)
        if q.type == "rating_grid":
            self.grid(pi, qi, q)
        elif q.items:
            self.add(key, subject, "items", "only rating grids have items")
        start = self.question_start[(pi, qi)]
        own = {f.name for f in _question_fields(q, self.s.pages[pi])}
        if q.relevant is not None:
            self.expression(key, subject, "relevant", q.relevant, start, selves=own, page=pi)
        if q.constraint is not None:
            if q.type in ("note", "rating_grid", *UNLABELLED_TYPES):
                self.add(key, subject, "constraint", f"a {q.type} cannot have a constraint")
            elif q.name in self.fields:
                current = var_type(self.s, self.fields[q.name])
                self.expression(key, subject, "constraint", q.constraint, start, current,
                                own=q.name, page=pi)
        if q.type == "calculate":
            if q.calculation is None:
                self.add(key, subject, "calculation", "missing: a calculate question needs "
                                                      "a calculation")
            else:
                self.expression(key, subject, "calculation", q.calculation, start,
                                selves=own, page=pi, want="any")
        elif q.calculation is not None:
            self.add(key, subject, "calculation", "only calculate questions have a "
                                                  "calculation")
        if q.choice_filter is not None:
            if q.type not in CHOICE_TYPES:
                self.add(key, subject, "choice_filter", "only choice questions have a "
                                                        "choice filter")
            else:
                self.choice_filter(key, subject, q, start, pi)
        if q.default is not None:
            self.default(key, subject, q)
        if q.read_only and q.type in ("note", *UNLABELLED_TYPES):
            self.add(key, subject, "read_only", f"a {q.type} is never edited")

    def choice_filter(self, key: tuple, subject: str, q: Question, start: int,
                      pi: int) -> None:
        """Bare names are the choice list's columns (``name`` and its extra columns), read
        as text; ``${q}`` are earlier answers."""
        choices = self.s.choice_lists.get(q.choices or "")
        known = None if choices is None else (
            {"name"} | {col for c in choices for col, _ in c.extra})

        def column(name: str) -> E.VarType | None:
            return E.VarType("string") if known is None or name in known else None

        tree = self.expression(key, subject, "choice_filter", q.choice_filter or "", start,
                               selves={q.name}, page=pi,
                               parser=lambda text: E.parse(text, columns=True),
                               columns=column)
        if tree is None or known is None:
            return
        for word in E.columns(tree):
            if word not in known:
                self.add(key, subject, "choice_filter",
                         f"{word!r} is not a column of choice list {q.choices!r} (columns: "
                         f"{', '.join(sorted(known))}); answers are written ${{name}}")

    def default(self, key: tuple, subject: str, q: Question) -> None:
        value = q.default or ""
        problem = None
        if q.type in ("note", "rating_grid", *UNLABELLED_TYPES):
            problem = f"a {q.type} has no default"
        elif q.type in ("integer", "decimal", "range"):
            try:  # as parse_answer reads it: an integer's digits, a decimal's float
                number = float(int(value) if q.type == "integer" else value)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                problem = f"{value!r} is not {'a whole' if q.type == 'integer' else 'a'} number"
            elif ((q.minimum is not None and number < q.minimum)
                  or (q.maximum is not None and number > q.maximum)):
                problem = f"{value!r} is outside the question's range"
        elif q.type == "date" and not E.is_date(value):
            problem = f"{value!r} is not a date (YYYY-MM-DD)"
        elif q.type == "month" and not (re.fullmatch(r"[0-9]{4}-[0-9]{2}", value)
                                        and E.is_date(value + "-01")):
            problem = f"{value!r} is not a month (YYYY-MM)"
        elif q.type == "time" and not _TIME_RE.fullmatch(value):
            problem = f"{value!r} is not a time (HH:MM)"
        elif q.type == "datetime":
            m = _DATETIME_RE.fullmatch(value)
            if not m or not E.is_date(m.group(1)) or not _TIME_RE.fullmatch(m.group(2)):
                problem = f"{value!r} is not a date and time (YYYY-MM-DDTHH:MM)"
        elif q.type in CHOICE_TYPES and q.choices in self.s.choice_lists:
            names = {c.name for c in self.s.choice_lists[q.choices]}
            picked = value.split() if q.type == "multiple_choice" else [value]
            wrong = [v for v in picked if v not in names]
            if wrong:
                problem = f"{wrong[0]!r} is not a choice of list {q.choices!r}"
        elif q.type == "text" and len(value) > MAX_TEXT:
            problem = f"longer than {MAX_TEXT} characters"
        if problem:
            self.add(key, subject, "default", problem)

    def numbers(self, key: tuple, subject: str, q: Question) -> None:
        for label, value in (("min", q.minimum), ("max", q.maximum), ("step", q.step)):
            if value is None:
                continue
            if q.type not in ("integer", "decimal", "range") or (
                    label == "step" and q.type != "range"):
                what = "a step" if label == "step" else "a range"
                self.add(key, subject, label, f"only {'range' if label == 'step' else 'number'}"
                                              f" questions have {what}")
            elif (isinstance(value, bool) or not isinstance(value, int | float)
                  or not math.isfinite(value)):
                self.add(key, subject, label, f"{value!r} is not a number")
            elif q.type == "integer" and not float(value).is_integer():
                self.add(key, subject, label, f"{value!r} is not a whole number")
        lo, hi, step = q.minimum, q.maximum, q.step
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool)
                      and math.isfinite(v) for v in (lo, hi))
        if numeric and lo > hi:  # type: ignore[operator]
            self.add(key, subject, "max", f"max {hi} is below min {lo}")
        if q.type == "range":
            if lo is None or hi is None:
                self.add(key, subject, "min" if lo is None else "max",
                         "a range needs a start and an end")
            elif numeric and lo == hi:
                self.add(key, subject, "max", "a range needs an end above its start")
            if step is None:
                self.add(key, subject, "step", "a range needs a step")
            elif isinstance(step, int | float) and not isinstance(step, bool):
                if not math.isfinite(step) or step <= 0:
                    self.add(key, subject, "step", f"{step!r} must be above 0")
                elif numeric and lo < hi:  # type: ignore[operator]
                    steps = (hi - lo) / step  # type: ignore[operator]
                    if abs(steps - round(steps)) > 1e-9:
                        self.add(key, subject, "step", f"{hi} - {lo} is not a whole number "
                                                       f"of steps of {step}")
                    elif steps > 10_000:
                        self.add(key, subject, "step", "more than 10000 steps")

    def grid(self, pi: int, qi: int, q: Question) -> None:
        key = ("question", pi, qi)
        subject = f"question {q.name!r}"
        if q.choices in self.s.choice_lists:
            values = [_int_or_none(c.name) for c in self.s.choice_lists[q.choices]]
            if len(values) < 2:
                self.add(key, subject, "choices", "a rating scale needs at least 2 choices")
            elif None in values or any(b <= a for a, b in pairwise(values)):  # type: ignore[operator]
                self.add(key, subject, "choices",
                         f"the rating scale {q.choices!r} needs whole-number choice names "
                         "in increasing order (e.g. 1, 2, 3, 4, 5)")
        if not q.items:
            self.add(key, subject, "items", "a rating grid needs at least one item")
        for ii, item in enumerate(q.items):
            ikey = ("item", pi, qi, ii)
            isubject = f"item {item.name!r}"
            self.text(ikey, isubject, "label", item.label, required=True)
            if item.item_code is not None and not ITEM_CODE_RE.fullmatch(item.item_code):
                self.add(ikey, isubject, "item_code", f"{item.item_code!r} must be at most "
                                                      "64 characters without spaces")

    def item_codes(self) -> None:
        first: dict[str, str] = {}
        for pi, page in enumerate(self.s.pages):
            for qi, q in enumerate(page.questions):
                for ii, item in enumerate(q.items if q.type == "rating_grid" else ()):
                    if not item.item_code:
                        continue
                    if item.item_code in first:
                        self.add(("item", pi, qi, ii), f"item {item.name!r}", "item_code",
                                 f"{item.item_code!r} is also used by item "
                                 f"{first[item.item_code]!r}")
                    first.setdefault(item.item_code, item.name)

    # -- expressions
    def expression(self, key: tuple, subject: str, fld: str, text: str, start: int,
                   current: E.VarType | None = None, own: str | None = None,
                   selves: set[str] | frozenset[str] = frozenset(), page: int | None = None,
                   want: str = "boolean",
                   parser: Callable[[str], E.Expr] = E.parse,
                   columns: Callable[[str], E.VarType | None] | None = None
                   ) -> E.Expr | None:
        """Check one rule: it may use answers before ``start`` and (constraints) ``own``;
        questions inside a repeat only from that repeat's own page ``page``.  Gives the
        tree (None when the text cannot be read); ``columns`` types a choice filter's
        bare names."""
        if not isinstance(text, str):
            self.add(key, subject, fld, "must be text")
            return None
        try:
            tree = parser(text)
        except E.ParseError as exc:
            self.add(key, subject, fld, f"cannot read {text!r}: {exc}")
            return None
        usable: set[str] = set()
        rule = {"relevant": "relevance", "constraint": "a constraint",
                "calculation": "a calculation", "choice_filter": "a choice filter",
                "repeat.count": "a repeat count"}.get(fld, "an expression")
        for name in E.references(tree):
            kind = self.kinds.get(name)
            if kind is None:
                self.add(key, subject, fld, f"${{{name}}} is not a question of this survey")
                continue
            home = self.s.pages[self.page_of[name]]
            if kind in ("page", "grid", "note"):
                what = {"page": "a page", "grid": "a rating grid (refer to one of its items)",
                        "note": "a note"}[kind]
                self.add(key, subject, fld, f"${{{name}}} is {what}, it has no answer")
            elif home.repeat is not None and self.page_of[name] != page:
                self.add(key, subject, fld, f"${{{name}}} is inside repeat {home.name!r}; "
                                            "only questions of that repeat can refer to it")
            elif name == own:
                usable.add(name)
            elif name in selves:
                self.add(key, subject, fld, f"refers to itself (${{{name}}}): {rule} "
                                            "cannot depend on its own answer")
            elif self.order[name] >= start:
                self.add(key, subject, fld, f"${{{name}}} comes later in the survey; "
                                            f"{rule} may only use earlier answers")
            else:
                usable.add(name)

        def lookup(name: str) -> E.VarType | None:
            if name not in usable:
                return None
            if name == own and current is not None:
                return current
            f = self.fields[name]
            if f.choice_list is not None and f.choice_list not in self.s.choice_lists:
                return None
            return var_type(self.s, f)

        messages = E.check_types(tree, lookup, current, want, columns=columns)
        if messages and fld == "choice_filter":
            def as_text(name: str) -> E.VarType | None:
                t = lookup(name)
                return E.VarType("string") if t is not None and t.kind == "multi" else t

            if not E.check_types(tree, as_text, current, want, columns=columns):
                # ODK compares a multiple choice as its space-separated text: the filter
                # works (matching while one choice is picked) and cannot fail on a page
                multi = [n for n in E.references(tree) if (lookup(n) or _NO_TYPE).kind
                         == "multi"]
                self.warn(key, subject, fld, f"{', '.join('${' + n + '}' for n in multi)} "
                          "is a multiple choice, compared as its space-separated text: "
                          "the filter matches only while one choice is picked")
                return tree
        for message in messages:
            self.add(key, subject, fld, message)
        return tree


def _int_or_none(text: str) -> int | None:
    try:
        value = int(text)
    except (TypeError, ValueError):
        return None
    return value if str(value) == text else None


# ---------------------------------------------------------------------- JSON


_SURVEY_KEYS = {"schema", "id", "version", "form_version", "title", "choice_lists", "pages"}
_PAGE_KEYS = {"name", "title", "relevant", "questions", "repeat"}
_QUESTION_KEYS = {"name", "type", "label", "hint", "required", "relevant", "constraint",
                  "constraint_message", "choices", "other", "min", "max", "items", "step",
                  "appearance", "choice_filter", "default", "read_only", "calculation",
                  "required_message"}
#: a language code of a text beyond zh and en (``fr``, ``zh-TW``, ``es-419``)
LANGUAGE_RE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_ITEM_KEYS = {"name", "label", "item_code", "reverse"}


class _JsonReader:
    """Turns JSON data into a Survey, noting shape problems (types, unknown keys)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, subject: str, fld: str, message: str) -> None:
        self.problems.append(Problem(path, subject, fld, message))

    def obj(self, value: Any, path: str, subject: str, keys: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.add(path, subject, "", "must be a JSON object")
            return {}
        for k in sorted(set(value) - keys):
            self.add(path, subject, k, "unknown key")
        return value

    def text(self, value: Any, path: str, subject: str, fld: str) -> Text | None:
        if value is None:
            return None
        if isinstance(value, str):
            self.add(path, subject, fld, 'give {"zh": ..., "en": ...}')
            return Text(value, "")
        if not isinstance(value, dict):
            self.add(path, subject, fld, 'must be {"zh": ..., "en": ...}')
            return None
        more = []
        for k in sorted(set(value) - {"zh", "en"}):
            if not isinstance(k, str) or not LANGUAGE_RE.fullmatch(k):
                self.add(path, subject, f"{fld}::{k}", "unknown language code (zh, en, or "
                                                       "a code such as fr or zh-TW)")
            elif isinstance(value[k], str) and value[k].strip():
                more.append((k, value[k].strip()))
            elif not isinstance(value[k], str):
                self.add(path, subject, f"{fld}::{k}", "must be text")
        out = []
        for lang in ("zh", "en"):
            v = value.get(lang, "")
            if not isinstance(v, str):
                self.add(path, subject, f"{fld}::{lang}", "must be text")
                v = ""
            out.append(v.strip())
        return Text(out[0], out[1], tuple(more))

    def string(self, value: Any, path: str, subject: str, fld: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(path, subject, fld, "must be text")
            return None
        return value.strip() or None

    def flag(self, value: Any, path: str, subject: str, fld: str) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            self.add(path, subject, fld, "must be true or false")
            return False
        return value

    def number(self, value: Any, path: str, subject: str, fld: str) -> int | float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(path, subject, fld, "must be a number")
            return None
        return value

    def survey(self, data: Any) -> Survey:
        d = self.obj(data, "survey", "", _SURVEY_KEYS)
        if d and d.get("schema") != SCHEMA:
            self.add("survey", "", "schema", f"must be {SCHEMA!r}")
        lists: dict[str, tuple[Choice, ...]] = {}
        raw_lists = d.get("choice_lists", {})
        if not isinstance(raw_lists, dict):
            self.add("survey", "", "choice_lists", "must be an object of lists")
            raw_lists = {}
        for lname, raw in raw_lists.items():
            path = f"choice_lists.{lname}"
            if not isinstance(raw, list):
                self.add(path, f"list {lname!r}", "", "must be a list of choices")
                continue
            choices = []
            for ci, rc in enumerate(raw):
                cpath = f"{path}[{ci}]"
                c = self.obj(rc, cpath, f"list {lname!r}", {"name", "label", "extra"})
                name = c.get("name")
                if isinstance(name, int | float) and not isinstance(name, bool):
                    name = str(name)
                extra = c.get("extra") or {}
                if not isinstance(extra, dict) or not all(
                        isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
                    self.add(cpath, f"list {lname!r}", "extra", "must map column names to "
                                                                "text")
                    extra = {}
                choices.append(Choice(self.string(name, cpath, f"list {lname!r}", "name")
                                      or "", self.text(c.get("label"), cpath, "", "label")
                                      or Text("", ""), tuple(extra.items())))
            lists[lname] = tuple(choices)
        pages = []
        raw_pages = d.get("pages", [])
        if not isinstance(raw_pages, list):
            self.add("survey", "", "pages", "must be a list")
            raw_pages = []
        for pi, rp in enumerate(raw_pages):
            pages.append(self.page(rp, f"pages[{pi}]"))
        version = d.get("version", 0)
        return Survey(id=self.string(d.get("id"), "survey", "", "id") or "",
                      version=version,
                      title=self.text(d.get("title"), "survey", "", "title") or Text("", ""),
                      choice_lists=lists, pages=tuple(pages),
                      form_version=self.string(d.get("form_version"), "survey", "",
                                               "form_version"))

    def page(self, data: Any, path: str) -> Page:
        p = self.obj(data, path, "", _PAGE_KEYS)
        subject = f"page {p.get('name')!r}"
        questions = []
        raw = p.get("questions", [])
        if not isinstance(raw, list):
            self.add(path, subject, "questions", "must be a list")
            raw = []
        for qi, rq in enumerate(raw):
            questions.append(self.question(rq, f"{path}.questions[{qi}]"))
        repeat = None
        if p.get("repeat") is not None:
            r = self.obj(p["repeat"], path, subject, {"count", "max"})
            maximum = self.number(r.get("max"), path, subject, "repeat.max")
            repeat = Repeat(self.string(r.get("count"), path, subject, "repeat.count"),
                            maximum if isinstance(maximum, int) else Repeat.maximum)
        return Page(name=self.string(p.get("name"), path, subject, "name") or "",
                    title=self.text(p.get("title"), path, subject, "title") or Text("", ""),
                    questions=tuple(questions),
                    relevant=self.string(p.get("relevant"), path, subject, "relevant"),
                    repeat=repeat)

    def question(self, data: Any, path: str) -> Question:
        q = self.obj(data, path, "", _QUESTION_KEYS)
        s = f"question {q.get('name')!r}"
        items = []
        raw_items = q.get("items", [])
        if not isinstance(raw_items, list):
            self.add(path, s, "items", "must be a list")
            raw_items = []
        for ii, ri in enumerate(raw_items):
            ipath = f"{path}.items[{ii}]"
            it = self.obj(ri, ipath, s, _ITEM_KEYS)
            isub = f"item {it.get('name')!r}"
            items.append(RatingItem(
                name=self.string(it.get("name"), ipath, isub, "name") or "",
                label=self.text(it.get("label"), ipath, isub, "label") or Text("", ""),
                item_code=self.string(it.get("item_code"), ipath, isub, "item_code"),
                reverse=self.flag(it.get("reverse"), ipath, isub, "reverse")))
        return Question(
            name=self.string(q.get("name"), path, s, "name") or "",
            type=self.string(q.get("type"), path, s, "type") or "",
            label=self.text(q.get("label"), path, s, "label") or Text("", ""),
            hint=self.text(q.get("hint"), path, s, "hint"),
            required=self.flag(q.get("required"), path, s, "required"),
            relevant=self.string(q.get("relevant"), path, s, "relevant"),
            constraint=self.string(q.get("constraint"), path, s, "constraint"),
            constraint_message=self.text(q.get("constraint_message"), path, s,
                                         "constraint_message"),
            choices=self.string(q.get("choices"), path, s, "choices"),
            other=self.flag(q.get("other"), path, s, "other"),
            minimum=self.number(q.get("min"), path, s, "min"),
            maximum=self.number(q.get("max"), path, s, "max"),
            items=tuple(items),
            step=self.number(q.get("step"), path, s, "step"),
            appearance=self.string(q.get("appearance"), path, s, "appearance"),
            choice_filter=self.string(q.get("choice_filter"), path, s, "choice_filter"),
            default=self.string(q.get("default"), path, s, "default"),
            read_only=self.flag(q.get("read_only"), path, s, "read_only"),
            calculation=self.string(q.get("calculation"), path, s, "calculation"),
            required_message=self.text(q.get("required_message"), path, s,
                                       "required_message"))


def survey_from_dict(data: Any, source: str = "survey.json",
                     bank: Mapping[str, BankItem] | None = None) -> SurveyReport:
    """Read and check a definition held as JSON data (see ``surveys/README.md``)."""
    if not isinstance(data, dict):
        return SurveyReport(source, problems=[Problem(source, "", "", "a survey definition "
                                                      "is a JSON object")])
    reader = _JsonReader()
    survey = reader.survey(data)
    report = SurveyReport(source, problems=reader.problems)
    if bank is not None:
        survey, bank_problems = apply_bank(survey, bank)
        report.problems += bank_problems
    problems, warnings = check(survey)
    report.problems += problems
    report.warnings += warnings
    if not report.problems:
        report.survey = survey
    return report


def read_json(path: str | Path, data: bytes | None = None,
              bank: Mapping[str, BankItem] | None = None) -> SurveyReport:
    """Read a JSON definition file; unreadable files give one problem naming the file."""
    path = Path(path)
    try:
        raw = data if data is not None else path.read_bytes()
        doc = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return SurveyReport(path.name, problems=[Problem(path.name, "", "", "not UTF-8 text")])
    except json.JSONDecodeError as exc:
        return SurveyReport(path.name, problems=[Problem(
            path.name, "", "", f"not valid JSON (line {exc.lineno}, column {exc.colno}: "
                               f"{exc.msg})")])
    except OSError as exc:
        return SurveyReport(path.name, problems=[Problem(path.name, "", "", str(exc))])
    return survey_from_dict(doc, path.name, bank)


def _text_json(text: Text) -> dict[str, str]:
    return {"zh": text.zh, "en": text.en, **dict(text.more)}


def survey_to_dict(survey: Survey) -> dict[str, Any]:
    """The JSON data of a definition (defaults left out), inverse of :func:`survey_from_dict`."""
    def question(q: Question) -> dict[str, Any]:
        d: dict[str, Any] = {"name": q.name, "type": q.type, "label": _text_json(q.label)}
        if q.hint is not None:
            d["hint"] = _text_json(q.hint)
        if q.choices is not None:
            d["choices"] = q.choices
        if q.other:
            d["other"] = True
        if q.required:
            d["required"] = True
        if q.minimum is not None:
            d["min"] = q.minimum
        if q.maximum is not None:
            d["max"] = q.maximum
        if q.relevant is not None:
            d["relevant"] = q.relevant
        if q.constraint is not None:
            d["constraint"] = q.constraint
        if q.constraint_message is not None:
            d["constraint_message"] = _text_json(q.constraint_message)
        if q.step is not None:
            d["step"] = q.step
        for key in ("appearance", "choice_filter", "default", "calculation"):
            if getattr(q, key) is not None:
                d[key] = getattr(q, key)
        if q.read_only:
            d["read_only"] = True
        if q.required_message is not None:
            d["required_message"] = _text_json(q.required_message)
        if q.items:
            d["items"] = [{"name": i.name,
                           **({"item_code": i.item_code} if i.item_code else {}),
                           "label": _text_json(i.label),
                           **({"reverse": True} if i.reverse else {})} for i in q.items]
        return d

    def repeat(r: Repeat) -> dict[str, Any]:
        return {**({"count": r.count} if r.count is not None else {}), "max": r.maximum}

    return {
        "schema": SCHEMA, "id": survey.id, "version": survey.version,
        **({"form_version": survey.form_version} if survey.form_version else {}),
        "title": _text_json(survey.title),
        "choice_lists": {name: [{"name": c.name, "label": _text_json(c.label),
                                 **({"extra": dict(c.extra)} if c.extra else {})}
                                for c in choices]
                         for name, choices in survey.choice_lists.items()},
        "pages": [{"name": p.name, "title": _text_json(p.title),
                   **({"relevant": p.relevant} if p.relevant is not None else {}),
                   **({"repeat": repeat(p.repeat)} if p.repeat is not None else {}),
                   "questions": [question(q) for q in p.questions]} for p in survey.pages],
    }


def dumps(survey: Survey) -> str:
    """JSON text of a definition: Chinese kept readable, two-space indent, and small
    objects (texts, choices) on one line so a reviewer sees zh and en side by side."""
    return _pretty(survey_to_dict(survey), 0) + "\n"


def _pretty(value: Any, indent: int, width: int = 100) -> str:
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict | list) or indent + len(flat) <= width or not value:
        return flat
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, list):
        parts = [inner + _pretty(v, indent + 2, width) for v in value]
        return "[\n" + ",\n".join(parts) + "\n" + pad + "]"
    parts = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {_pretty(v, indent + 2, width)}"
             for k, v in value.items()]
    return "{\n" + ",\n".join(parts) + "\n" + pad + "}"


def load_survey(path: str | Path, bank: Mapping[str, BankItem] | None = None) -> Survey:
    """Read a JSON definition file; raise :class:`SurveyError` listing all problems.

    Any format (JSON or XLSX): :func:`surveys.documents.load_survey`, which is above both
    format modules (this one cannot import :mod:`surveys.xlsform`, which imports it).
    """
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        raise SurveyError(SurveyReport(path.name, problems=[Problem(
            path.name, "", "", "read workbooks with surveys.documents.load_survey")]))
    return read_json(path, bank=bank).survey_or_raise()


DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"


def default_survey() -> Survey:
    """The learning-needs instrument shipped with the project (``defaults/``)."""
    return read_json(DEFAULTS_DIR / "learning_needs.json").survey_or_raise()


def normalise(survey: Survey) -> Survey:
    """The same survey with each expression in canonical form (see
    :func:`surveys.expressions.to_source`) and numbers that are whole as ints, so two
    documents saying the same thing compare equal."""
    def expr(text: str | None) -> str | None:
        return None if text is None else E.to_source(E.parse(text))

    def num(value: int | float | None) -> int | float | None:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    pages = tuple(replace(p, relevant=expr(p.relevant), questions=tuple(
        replace(q, relevant=expr(q.relevant), constraint=expr(q.constraint),
                minimum=num(q.minimum), maximum=num(q.maximum)) for q in p.questions))
        for p in survey.pages)
    return replace(survey, pages=pages)


# ----------------------------------------------------------------- item bank


@dataclass(frozen=True)
class BankItem:
    """What a survey needs to know about an item-bank rating item."""

    code: str
    type: str
    stem: Text
    options: tuple[Text, ...]
    reverse: bool


def read_bank(path: str | Path) -> dict[str, BankItem]:
    """Items of an item file (``itembank`` CSV/XLSX/JSON layout), keyed by code."""
    # itembank.importing costs ~0.5 s to import (it loads the itembank package and its
    # models; python -X importtime), and only reading a bank file needs it
    from itembank.importing import read_item_file

    report = read_item_file(path)
    if not report.ok:
        raise ValueError(report.summary())
    return {s.code: BankItem(s.code, s.type, Text(s.stem_zh, s.stem_en),
                             tuple(Text(o["zh"], o["en"]) for o in s.options), s.reverse)
            for s in report.items}


def apply_bank(survey: Survey, bank: Mapping[str, BankItem],
               where: Locator | None = None) -> tuple[Survey, list[Problem]]:
    """Fill empty item labels from the bank and check that every coded item matches it.

    A rating item with an ``item_code`` reuses a bank item: the code must exist and
    be a rating item, and the statement, the reverse key and the answer scale must
    be those of the bank (otherwise calibrations would not apply).  Returns the
    survey with filled labels and the problems found.
    """
    where = where or json_location
    problems: list[Problem] = []
    pages = []
    for pi, page in enumerate(survey.pages):
        questions = []
        for qi, q in enumerate(page.questions):
            items = []
            scale = survey.choice_lists.get(q.choices or "", ())
            for ii, item in enumerate(q.items):
                b = bank.get(item.item_code) if item.item_code else None
                loc, subject = where(("item", pi, qi, ii)), f"item {item.name!r}"
                if item.item_code and b is None:
                    problems.append(Problem(loc, subject, "item_code",
                                            f"{item.item_code!r} is not in the item bank"))
                if b is None:
                    items.append(item)
                    continue
                if b.type != "rating":
                    problems.append(Problem(loc, subject, "item_code",
                                            f"{b.code} is a {b.type} item, not a rating item"))
                if not item.label.zh and not item.label.en:
                    item = replace(item, label=b.stem)
                for lang in ("zh", "en"):
                    if getattr(item.label, lang) != getattr(b.stem, lang):
                        problems.append(Problem(loc, subject, f"label::{lang}",
                                                f"differs from item bank {b.code}: "
                                                f"{getattr(b.stem, lang)!r}"))
                if item.reverse != b.reverse:
                    problems.append(Problem(loc, subject, "reverse",
                                            f"item bank {b.code} has reverse = "
                                            f"{str(b.reverse).lower()}"))
                if scale and tuple(c.label for c in scale) != b.options:
                    problems.append(Problem(loc, subject, "choices",
                                            f"scale {q.choices!r} differs from the options "
                                            f"of item bank {b.code}"))
                items.append(item)
            questions.append(replace(q, items=tuple(items)))
        pages.append(replace(page, questions=tuple(questions)))
    return replace(survey, pages=tuple(pages)), problems
