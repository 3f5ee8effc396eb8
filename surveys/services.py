"""Survey delivery and storage: one service behind the pages, the JSON API and the CLI.

* Definitions are versioned documents: importing a code again stores version n+1
  (an identical document is recognised and changes nothing); one version per code
  is published and new sessions get it; a session keeps its version to the end.
* A session shows one definition page at a time. A page shows the questions that
  are asked given the answers stored so far; when a post makes another question of
  the same page relevant (e.g. "how many times?" after "yes"), the page is shown
  again with it, so skip logic works without JavaScript.  A select whose
  ``choice_filter`` reads an answer of its own page (street after district) waits in
  the same way, and is then shown with the filtered choices.
* A repeat page is one step per instance (``page[i]``, answers ``name[i]``); without a
  ``count`` each instance ends with "add another?", stored as the number of instances
  under ``page[0]``.  Calculations are stored as answers after every post; meta
  answers are recorded: ``start``, ``today``, ``deviceid`` (pseudonymous, from the link
  token: :func:`device_id`) when the session starts, ``end`` when it is finished.
* Every page post is stored before the next page is sent, one row per answer key;
  the session's ``revision`` (optimistic lock) guards against stale pages: a post of
  the same answers again is harmless, a different post on a stale revision is a
  conflict (409) that returns the current state.
* Finishing drops answers of questions that ended up skipped (``clean_answers``,
  as XLSForm does) and stores scale scores: sum scores, and IRT thetas with the
  parameters of the item bank's published calibration of the rating instrument.

No ``request`` here; views and the CLI call these functions.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pyramid_retry import IRetryableError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError
from zope.interface import implementer

from assessment.sessions import session_by_token as test_session_by_token
from itembank.services import (
    CalibrationInfo,
    calibration_info,
    current_contents,
    published_calibration_id,
)
from learningcity import audit
from learningcity.db import utcnow
from learningcity.tokens import TOKEN_BYTES as TOKEN_BYTES  # 192 bits (access-matrix test)
from learningcity.tokens import derive_token, hash_token, new_token

from . import exports
from .answers import (
    INVALID,
    LOCAL_TIMEZONE,
    NOT_A_CHOICE,
    REQUIRED,
    AnswerError,
    AnswerSheet,
    _value_problem,
    answer_sheet,
    check_answers,
    checked_sheet,
    clean_answers,
    count_key,
    field_of,
    filter_refs,
    is_computed,
    parse_answer,
)
from .definition import (
    BankItem,
    Choice,
    Page,
    Problem,
    Question,
    Survey,
    SurveyError,
    SurveyReport,
    Text,
    dumps,
    instance_key,
    normalise,
    split_key,
    survey_from_dict,
    survey_to_dict,
)
from .documents import MAX_UPLOAD as MAX_UPLOAD  # the limit the upload views apply
from .documents import read_definition
from .models import (
    SurveyAnswer,
    SurveyDefinition,
    SurveyPublication,
    SurveyScaleScore,
    SurveySession,
)
from .scales import scale, scale_method, score_scale

DEFAULT_SURVEY = "learning_needs"
#: item-bank instrument whose published calibration scores the rating grids
SCALE_INSTRUMENT = "LMS"
DEFAULT_IDLE_DAYS = 60


@implementer(IRetryableError)
class ConcurrentChange(Exception):
    """Another request changed the same session at the same moment; pyramid_retry reruns
    the request, which then sees the other request's answers."""


class DeliveryError(Exception):
    """A resident's request that cannot be carried out; ``status`` is the HTTP status."""

    def __init__(self, status: int, code: str, message: str,
                 details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []


class StaleRevision(DeliveryError):
    """A page posted from a state the session has since left (another tab, back button)."""

    def __init__(self, message: str) -> None:
        super().__init__(409, "stale_revision", message)


# ------------------------------------------------------------------ definitions

def _canonical(survey: Survey) -> tuple[dict[str, Any], str]:
    doc = survey_to_dict(normalise(survey))
    text = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return doc, hashlib.sha256(text.encode("utf-8")).hexdigest()


def _bank(db: Session) -> dict[str, BankItem]:
    """The item bank's rating items as the survey checker sees them (coded items must match)."""
    return {code: BankItem(code, v.item_type, Text(v.stem_zh, v.stem_en),
                           tuple(Text(o.get("zh", ""), o.get("en", "")) for o in v.options),
                           bool(v.reverse))
            for code, v in current_contents(db, item_type="rating").items()}


@dataclass
class ImportOutcome:
    definition: SurveyDefinition
    created: bool
    published: bool


def import_survey(db: Session, source: str | Path | bytes, user: str, *,
                  name: str | None = None, publish: bool = False,
                  check_bank: bool = False) -> ImportOutcome:
    """Store a definition file (JSON or XLSX) as the next version of its survey code.

    All or nothing: a definition with problems raises :class:`SurveyError` listing
    all of them and stores nothing. Importing a document identical to a stored
    version of the code stores nothing new and returns that version.
    ``check_bank`` also checks coded rating items against the item bank.
    """
    if isinstance(source, bytes):
        data, name = source, name or "survey.json"
    else:
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SurveyError(SurveyReport(path.name, problems=[
                Problem(path.name, "", "", str(exc))])) from None
        name = name or path.name
    report = read_definition(name, data, _bank(db) if check_bank else None)
    survey = report.survey_or_raise()
    doc, digest = _canonical(survey)
    existing = db.scalar(sa.select(SurveyDefinition).where(
        SurveyDefinition.code == survey.id, SurveyDefinition.content_hash == digest)
        .order_by(SurveyDefinition.version.desc()).limit(1))
    created = existing is None
    if existing is None:
        version = (db.scalar(sa.select(sa.func.max(SurveyDefinition.version)).where(
            SurveyDefinition.code == survey.id)) or 0) + 1
        existing = SurveyDefinition(
            code=survey.id, version=version, document_version=survey.version,
            title_zh=survey.title.zh[:300], title_en=survey.title.en[:300], document=doc,
            content_hash=digest, source=name[:300], imported_by=user[:64])
        db.add(existing)
        audit.record(db, actor=user, action="survey.import",
                     target=f"{survey.id} v{version}", detail={"source": name})
        db.flush()
    published = False
    if publish:
        published = publish_version(db, existing, user)
    return ImportOutcome(existing, created, published)


def publish_version(db: Session, definition: SurveyDefinition, user: str) -> bool:
    """Make a version the one new sessions get; False when it already was."""
    current = db.get(SurveyPublication, definition.code)
    if current is not None and current.definition_id == definition.id:
        return False
    if current is None:
        db.add(SurveyPublication(code=definition.code, definition_id=definition.id,
                                 published_by=user[:64]))
    else:
        current.definition_id, current.published_by = definition.id, user[:64]
        current.published_at = utcnow()
    audit.record(db, actor=user, action="survey.publish",
                 target=f"{definition.code} v{definition.version}")
    db.flush()
    return True


_survey_cache: dict[tuple[int, str], Survey] = {}


def definition_survey(definition: SurveyDefinition) -> Survey:
    """The survey of a stored version (versions never change, so cached per id and
    content hash: the hash keeps apart two databases whose ids coincide, as in tests)."""
    key = (definition.id, definition.content_hash)
    survey = _survey_cache.get(key)
    if survey is None:
        survey = survey_from_dict(definition.document, f"{definition.code} "
                                  f"v{definition.version}").survey_or_raise()
        if len(_survey_cache) > 64:
            _survey_cache.clear()
        _survey_cache[key] = survey
    return survey


def published_survey(db: Session, code: str = DEFAULT_SURVEY) -> SurveyDefinition | None:
    """The published version of a survey code, or None."""
    publication = db.get(SurveyPublication, code)
    return None if publication is None else db.get(SurveyDefinition, publication.definition_id)


def get_definition(db: Session, code: str, version: int | None = None) -> SurveyDefinition:
    """A version of a survey (default: the published one); ValueError when unknown."""
    if version is None:
        found = published_survey(db, code) or db.scalar(
            sa.select(SurveyDefinition).where(SurveyDefinition.code == code)
            .order_by(SurveyDefinition.version.desc()).limit(1))
    else:
        found = db.scalar(sa.select(SurveyDefinition).where(
            SurveyDefinition.code == code, SurveyDefinition.version == version))
    if found is None:
        known = ", ".join(sorted(set(db.scalars(sa.select(SurveyDefinition.code))))) or "none"
        raise ValueError(f"no survey {code!r}" + (f" version {version}" if version else "")
                         + f"; known surveys: {known}")
    return found


@dataclass
class SurveySummary:
    code: str
    versions: list[SurveyDefinition]
    published_id: int | None
    counts: dict[int, dict[str, int]] = field(default_factory=dict)


def list_surveys(db: Session, district: str | None = None) -> list[SurveySummary]:
    """Every survey code with its versions, the published one and session counts."""
    out: dict[str, SurveySummary] = {}
    for d in db.scalars(sa.select(SurveyDefinition).order_by(SurveyDefinition.code,
                                                             SurveyDefinition.version)):
        out.setdefault(d.code, SurveySummary(d.code, [], None)).versions.append(d)
    for p in db.scalars(sa.select(SurveyPublication)):
        if p.code in out:
            out[p.code].published_id = p.definition_id
    query = sa.select(SurveySession.survey_code, SurveySession.definition_id,
                      SurveySession.status, sa.func.count()).group_by(
        SurveySession.survey_code, SurveySession.definition_id, SurveySession.status)
    if district is not None:
        query = query.where(SurveySession.district == district)
    for code, def_id, status, n in db.execute(query):
        if code in out:
            out[code].counts.setdefault(def_id, {}).update({status: n})
    return list(out.values())


# ------------------------------------------------------------------ sessions

def start_survey_session(db: Session, survey_code: str = DEFAULT_SURVEY, *,
                         locale: str = "zh_CN", campaign: str | None = None,
                         invitation: str | None = None, test_session_id: int | None = None,
                         prefill: dict[str, Any] | None = None, district: str | None = None,
                         token: str | None = None) -> tuple[SurveySession, str]:
    """Open a session on the published version of ``survey_code``.

    ``prefill`` holds answers already known (from a campaign invitation or the
    ability test): each one that is a valid answer of the survey is stored as an
    answer; unknown keys or invalid values are ignored (they are hints, not the
    resident's input). A page whose asked questions are all prefilled is skipped.
    ``district`` scopes the session for district staff (a campaign's district, a fact
    of the invitation); an answered ``district`` never does (without a campaign only
    city-level staff see the session). Returns the session and its link
    token (shown once; only its hash is stored).
    """
    definition = published_survey(db, survey_code)
    if definition is None:
        raise DeliveryError(404, "unknown_survey", f"no published survey {survey_code!r}")
    survey = definition_survey(definition)
    token = token or new_token()
    session = SurveySession(
        token_hash=hash_token(token), definition_id=definition.id, survey_code=definition.code,
        status="started", locale="en" if locale.startswith("en") else "zh_CN",
        campaign=campaign, invitation=invitation, test_session_id=test_session_id,
        district=district, prefilled=[])
    db.add(session)
    known = _valid_prefill(survey, prefill or {})
    for name, value in known.items():
        session.answers.append(SurveyAnswer(name=name, page=survey.field(name).page.name,
                                            value=value))
    session.prefilled = sorted(known)
    meta = _meta_values(survey, ("start", "today", "deviceid"), token)
    for name, value in meta.items():
        session.answers.append(SurveyAnswer(name=name, page=survey.field(name).page.name,
                                            value=value))
    answers = {**known, **meta}
    if _sync_computed(session, answer_sheet(survey, answers), answers):
        answers = {a.name: a.value for a in session.answers}
    session.page = _first_page(survey, answers, set(known))
    db.flush()
    return session, token


def _valid_prefill(survey: Survey, prefill: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name: f for f in survey.fields()  # what a resident answers, off repeats
             if f.page.repeat is None and not is_computed(f.question)}
    out: dict[str, Any] = {}
    for name, raw in prefill.items():
        f = names.get(name)
        if f is None or raw is None or raw == "":
            continue
        try:
            value = _coerce(survey, name, raw)
        except AnswerError:
            continue
        if value is not None and _value_problem(survey, f, value) is None:
            out[name] = value
    return out


def find_survey_session(db: Session, token: str, *, for_update: bool = False,
                        idle_days: int = DEFAULT_IDLE_DAYS) -> SurveySession:
    """The session behind a link token; expires it when left idle too long (answers kept)."""
    query = sa.select(SurveySession).where(SurveySession.token_hash == hash_token(token))
    if for_update:
        query = query.with_for_update()
    session = db.scalar(query)
    if session is None:
        raise DeliveryError(404, "unknown_session", "this survey link is not valid")
    if session.status == "started" and utcnow() - session.updated_at > dt.timedelta(
            days=idle_days):
        session.status = "expired"
    return session


def session_survey(db: Session, session: SurveySession) -> Survey:
    return definition_survey(db.get(SurveyDefinition, session.definition_id))


# --- pages -----------------------------------------------------------------------
# A step is one screen: a page, or one instance of a repeat page (its key, as stored in
# ``session.page`` and posted, is ``page`` or ``page[i]``).  Every function below reads
# one AnswerSheet (one walk of the survey) for one set of answers.

#: the resident's question after each instance of a repeat without ``count``
ADD_ANOTHER_YES, ADD_ANOTHER_NO = "yes", "no"
#: the longest step key a post may name: a page name of 64 and an instance ``[1000]``
MAX_STEP_KEY = 80


@dataclass(frozen=True)
class Step:
    """One screen: a page, or instance ``instance`` (from 1) of a repeat page."""

    page: Page
    instance: int | None = None

    @property
    def key(self) -> str:
        return instance_key(self.page.name, self.instance)


def _step(survey: Survey, key: str | None) -> Step | None:
    """The step of a key (``page`` or ``page[i]``), or None when the survey has none."""
    if key is None:
        return None
    name, instance = split_key(key)
    page = next((p for p in survey.pages if p.name == name), None)
    if page is None or (instance is None) != (page.repeat is None):
        return None
    if instance is not None and not 1 <= instance <= page.repeat.maximum:  # type: ignore[union-attr]
        return None
    return Step(page, instance)


def _editable(q: Question) -> bool:
    """A question the resident answers on the page (not a note, computed or read-only)."""
    return q.type != "note" and not q.read_only and not is_computed(q)


def _step_questions(step: Step, sheet: AnswerSheet) -> list[Question]:
    """The questions a step shows, in order: asked ones (notes and read-only included);
    calculations and meta are never shown."""
    return [q for q in step.page.questions if not is_computed(q)
            and sheet.questions.get((q.name, step.instance), False)]


def shown_questions(survey: Survey, page: Page, answers: Mapping[str, Any],
                    instance: int | None = None) -> list[Question]:
    """The questions of a page (instance) asked given the stored answers, in order."""
    return _step_questions(Step(page, instance), answer_sheet(survey, answers))


def page_questions(db: Session, session: SurveySession, page_id: str) -> list[Question]:
    """The questions a step shows now (empty for an unknown step)."""
    survey = session_survey(db, session)
    step = _step(survey, page_id)
    return [] if step is None else _step_questions(step, answer_sheet(
        survey, session.answer_dict()))


def add_another_key(db: Session, session: SurveySession, page_id: str) -> str | None:
    """The answer key of a step's "add another?" question, or None when it has none."""
    step = _step(session_survey(db, session), page_id)
    return count_key(step.page) if step is not None and asks_add_another(step) else None


def _page_fields(q: Question, instance: int | None = None) -> list[str]:
    """The answer keys a question posts in a step."""
    if not _editable(q):
        return []
    if q.type == "rating_grid":
        names = [i.name for i in q.items]
    else:
        names = [q.name] + ([q.name + "_other"] if q.other else [])
    return [instance_key(n, instance) for n in names]


def asks_add_another(step: Step) -> bool:
    """Whether a step ends with "add another?" (a repeat without count, below its max)."""
    repeat = step.page.repeat
    return (repeat is not None and repeat.count is None and step.instance is not None
            and step.instance < repeat.maximum)


def add_another_value(step: Step, answers: Mapping[str, Any]) -> str | None:
    """The resident's "add another?" answer of a step as the page shows it."""
    chosen = answers.get(count_key(step.page))
    if not asks_add_another(step) or not isinstance(chosen, int) or isinstance(chosen, bool):
        return None
    assert step.instance is not None
    return ADD_ANOTHER_YES if chosen > step.instance else ADD_ANOTHER_NO


def _visible(step: Step, sheet: AnswerSheet) -> bool:
    if not sheet.pages.get((step.page.name, step.instance), False):
        return False
    shown = _step_questions(step, sheet)
    return any(_editable(q) for q in shown) or (bool(shown) and not any(
        _editable(q) for q in step.page.questions))


def _prefilled_complete(step: Step, sheet: AnswerSheet, answers: Mapping[str, Any],
                        prefilled: set[str]) -> bool:
    """A step whose asked answer slots are all prefilled (so it need not be shown)."""
    names = [n for q in _step_questions(step, sheet) for n in _page_fields(q, step.instance)
             if not (q.other and split_key(n)[0] == q.name + "_other")]  # optional text
    return bool(names) and all(n in prefilled and n in answers for n in names)


def _steps(survey: Survey, sheet: AnswerSheet) -> list[Step]:
    out: list[Step] = []
    for page in survey.pages:
        if page.repeat is None:
            out.append(Step(page))
        else:
            out.extend(Step(page, i) for i in range(1, sheet.counts.get(page.name, 0) + 1))
    return out


def step_path(survey: Survey, answers: Mapping[str, Any], prefilled: set[str],
              sheet: AnswerSheet | None = None) -> list[Step]:
    """The steps this resident is shown, given the answers so far (repeat instances
    each count as a step)."""
    sheet = answer_sheet(survey, answers) if sheet is None else sheet
    return [s for s in _steps(survey, sheet) if _visible(s, sheet)
            and not _prefilled_complete(s, sheet, answers, prefilled)]


def page_path(survey: Survey, answers: Mapping[str, Any], prefilled: set[str]) -> list[Page]:
    """The pages this resident is shown (a repeat page once per instance)."""
    return [s.page for s in step_path(survey, answers, prefilled)]


def _first_page(survey: Survey, answers: Mapping[str, Any], prefilled: set[str]) -> str | None:
    path = step_path(survey, answers, prefilled)
    return path[0].key if path else None


def _position(survey: Survey, step: Step) -> tuple[int, int]:
    index = next(i for i, p in enumerate(survey.pages) if p is step.page)
    return index, step.instance or 0


def _next_step(survey: Survey, after: Step, path: list[Step]) -> str | None:
    start = _position(survey, after)
    return next((s.key for s in path if _position(survey, s) > start), None)


def _previous_step(survey: Survey, before: Step | None, path: list[Step]) -> str | None:
    end = (len(survey.pages), 0) if before is None else _position(survey, before)
    earlier = [s for s in path if _position(survey, s) < end]
    return earlier[-1].key if earlier else None


@dataclass
class PageState:
    """What the resident sees now: a page (with its shown questions), or the end.

    ``step`` is the page's key (``page`` or, for a repeat instance, ``page[i]``);
    ``instance`` of ``instances`` is the repeat instance shown (None off repeats).
    """

    status: str
    revision: int
    page: Page | None
    questions: list[Question]
    answers: dict[str, Any]
    number: int
    total: int
    can_go_back: bool
    survey: Survey
    complete: bool = False
    errors: dict[str, Text] = field(default_factory=dict)
    step: str | None = None
    instance: int | None = None
    instances: int | None = None
    #: the filtered choices of the shown selects with a choice_filter, by question name
    choices: dict[str, tuple[Choice, ...]] = field(default_factory=dict)
    #: the answer key of "add another?" on this step (a repeat without count), or None
    add_another: str | None = None


def current_page(db: Session, session: SurveySession,
                 sheet: AnswerSheet | None = None) -> PageState:
    """The state of a session computed from the stored answers only (``sheet``: their
    AnswerSheet, when the caller has it)."""
    survey = session_survey(db, session)
    answers = session.answer_dict()
    sheet = answer_sheet(survey, answers) if sheet is None else sheet
    prefilled = set(session.prefilled or [])
    path = step_path(survey, answers, prefilled, sheet)
    keys = [s.key for s in path]
    step = _step(survey, session.page) if session.status == "started" else None
    questions = _step_questions(step, sheet) if step is not None else []
    number = keys.index(step.key) + 1 if step is not None and step.key in keys else len(keys)
    inst = None if step is None else step.instance
    return PageState(
        status=session.status, revision=session.revision,
        page=None if step is None else step.page, questions=questions, answers=answers,
        number=number, total=len(keys),
        can_go_back=session.status == "started" and _previous_step(
            survey, step, path) is not None,
        survey=survey, complete=session.status == "started" and step is None,
        step=None if step is None else step.key, instance=inst,
        instances=None if step is None or inst is None else sheet.counts.get(
            step.page.name),
        choices={q.name: sheet.choices[(q.name, inst)] for q in questions
                 if (q.name, inst) in sheet.choices},
        add_another=count_key(step.page) if step is not None and asks_add_another(step)
        else None)


def _coerce(survey: Survey, name: str, raw: Any) -> Any:
    """A typed answer from form text or a JSON value (numbers pass through)."""
    f = field_of(survey, name)
    if isinstance(raw, bool):
        raise AnswerError(INVALID)
    if isinstance(raw, int | float) and f.kind in ("integer", "decimal", "range"):
        return raw
    if isinstance(raw, int | float):
        raw = str(raw)
    if isinstance(raw, list):
        raw = [str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
               for v in raw]
        if not all(isinstance(v, str) for v in raw):
            raise AnswerError(NOT_A_CHOICE)
    elif raw is not None and not isinstance(raw, str):
        raise AnswerError(INVALID)
    return parse_answer(survey, name, raw)


class PageInvalid(DeliveryError):
    """A page post with answers that are not acceptable; ``errors`` maps keys to messages
    and ``values`` keeps what the resident typed."""

    def __init__(self, errors: dict[str, Text], values: dict[str, Any]) -> None:
        super().__init__(422, "invalid_answers", "some answers need attention",
                         [{"name": k, "message": v.en, "message_zh": v.zh}
                          for k, v in errors.items()])
        self.errors, self.values = errors, values


def _add_another(step: Step, raw: Any, stored: Mapping[str, Any]
                 ) -> tuple[int | None, Text | None]:
    """The instance count after an "add another?" answer, or the problem with it."""
    if raw in (None, "", []):
        return None, REQUIRED
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    if raw not in (ADD_ANOTHER_YES, ADD_ANOTHER_NO):
        return None, NOT_A_CHOICE
    assert step.instance is not None
    if raw == ADD_ANOTHER_NO:
        return step.instance, None
    chosen = stored.get(count_key(step.page))
    chosen = chosen if isinstance(chosen, int) and not isinstance(chosen, bool) else 1
    return max(chosen, step.instance + 1), None


def save_page(db: Session, session: SurveySession, page_id: str, form: Mapping[str, Any],
              expected_revision: int | None) -> PageState:
    """Store the answers of one page (``page_id``: a step key, ``page`` or ``page[i]``)
    and move on; returns the new state.

    ``form`` maps answer keys to raw values (text, a list for multiple choice, or
    JSON numbers; on a repeat without count, ``page[0]`` is "yes"/"no" to adding another
    instance). Only the questions shown on the page count. Re-posting the same
    answers is harmless (the state is returned unchanged); posting a page the session
    has left, or on a stale revision, with different answers raises
    :class:`StaleRevision`; invalid answers raise :class:`PageInvalid` and store
    nothing.
    """
    survey = session_survey(db, session)
    step = _step(survey, page_id)
    if step is None:
        raise DeliveryError(404, "unknown_page", f"the survey has no page {page_id!r}")
    page, inst = step.page, step.instance
    stored = session.answer_dict()
    sheet = answer_sheet(survey, stored)
    owner = {n: q for q in page.questions for n in _page_fields(q, inst)}
    counter = count_key(page) if asks_add_another(step) else None
    unknown = sorted(str(k) for k in form if k not in owner and k != counter)
    shown_names = {q.name for q in _step_questions(step, sheet)}
    posted = {owner[k].name for k in form if k in owner}
    # questions answered now: those shown, and those an API client answered together with
    # the question that reveals them (kept only if relevant given the new answers)
    asked = [q for q in page.questions if q.name in shown_names | posted and _editable(q)]
    keys = [n for q in asked for n in _page_fields(q, inst)]
    values: dict[str, Any] = {}
    errors: dict[str, Text] = {}
    for key in keys:
        raw = form.get(key)
        try:
            values[key] = _coerce(survey, key, raw)
        except AnswerError as exc:
            errors[key] = exc.message
            values[key] = raw
    count_error = None
    if counter is not None:
        values[counter], count_error = _add_another(step, form.get(counter), stored)
    if session.status != "started" or page_id != session.page or (
            expected_revision is not None and expected_revision != session.revision):
        same = not errors and count_error is None and not unknown and all(
            stored.get(k) == v for k, v in values.items() if v is not None) and not any(
            k in stored for k, v in values.items() if v is None and k != counter)
        if same:
            return current_page(db, session, sheet)  # a double submit or a resend
        if session.status != "started":
            raise DeliveryError(409, session.status, f"the survey is {session.status}")
        raise StaleRevision("this page was changed elsewhere (another window or device); "
                            "the current state is returned")
    if unknown:
        raise DeliveryError(422, "unknown_answers", "answers for questions not on this page: "
                            + ", ".join(unknown[:20]),
                            [{"name": k, "message": "not a question on this page"}
                             for k in unknown[:20]])
    merged = {k: v for k, v in stored.items() if k not in keys}
    merged.update({k: v for k, v in values.items() if v is not None and k not in errors})
    problems, merged_sheet = checked_sheet(survey, merged, pages=[step.key])
    # a shown select whose filter reads an answer changed in this post (another district):
    # an answer the new filter does not offer is cleared and the select asked again
    changed = {split_key(k)[0] for k in keys if values.get(k) != stored.get(k)}
    refiltered = {q.name for q in asked if q.name in shown_names and q.choice_filter
                  and changed & set(filter_refs(survey, q)) and _outside(
                      merged_sheet.choices.get((q.name, inst), ()), values.get(
                          instance_key(q.name, inst)))}
    for q in asked:
        if q.name in refiltered:
            for k in _page_fields(q, inst):
                values[k] = None
                merged.pop(k, None)
                errors.pop(k, None)
    on_now = merged_sheet.questions
    checked = {q.name for q in asked
               if q.name in shown_names or on_now.get((q.name, inst), False)}
    errors = {k: v for k, v in errors.items() if owner[k].name in checked}
    for problem in problems:
        q = owner.get(problem.name)
        if q is not None and q.name in checked and q.name not in refiltered and \
                problem.name not in errors:
            errors[problem.name] = problem.message
    if count_error is not None:
        errors[counter] = count_error  # type: ignore[index]
    if errors:
        raise PageInvalid(errors, {k: form.get(k) for k in [*keys, counter] if k})
    keys = [k for k in keys if owner[k].name in checked] + ([counter] if counter else [])
    try:
        with db.no_autoflush:
            _store(session, page_id, keys, values)
            after = session.answer_dict()
            after_sheet = answer_sheet(survey, after)
            if _sync_computed(session, after_sheet, after):
                after = session.answer_dict()
            prefilled = set(session.prefilled or []) - set(keys)
            session.prefilled = sorted(prefilled)
            newly = [q for q in _step_questions(step, after_sheet)
                     if (q.name not in checked or q.name in refiltered) and _editable(q)]
            if not newly:
                session.page = _next_step(survey, step, step_path(
                    survey, after, prefilled, after_sheet))
            session.updated_at = utcnow()
            db.flush()
    except (IntegrityError, StaleDataError) as exc:
        raise ConcurrentChange(str(exc)) from exc
    return current_page(db, session, after_sheet)


def _outside(choices: tuple[Choice, ...], value: Any) -> bool:
    """Whether a select's answer (a name or names) is not among the choices offered."""
    names = {c.name for c in choices}
    given = value if isinstance(value, list | tuple) else [value]
    return any(v not in names for v in given if v is not None)


def _row_page(survey: Survey, key: str) -> str:
    """The step an answer key belongs to (the ``page`` column of its row)."""
    name, inst = split_key(key)
    if inst == 0:
        return name
    return instance_key(field_of(survey, key).page.name, inst)


def _sync_computed(session: SurveySession, sheet: AnswerSheet,
                   answers: Mapping[str, Any]) -> bool:
    """Store the calculated values as answers (so exports and other readers see them);
    True when a row changed."""
    computed = {k: s.value for k, s in sheet.slots.items() if s.field.kind == "calculate"}
    changed = [k for k, v in computed.items() if answers.get(k) != v]
    for key in changed:
        slot = sheet.slots[key]
        _store(session, instance_key(slot.field.page.name, slot.instance), [key], computed)
    return bool(changed)


def _store(session: SurveySession, page_id: str, keys: list[str],
           values: Mapping[str, Any]) -> None:
    rows = {a.name: a for a in session.answers}
    now = utcnow()
    for key in keys:
        value, row = values.get(key), rows.get(key)
        if value is None:
            if row is not None:
                session.answers.remove(row)
        elif row is None:
            session.answers.append(SurveyAnswer(name=key, page=page_id, value=value,
                                                answered_at=now))
        elif row.value != value:
            row.value, row.answered_at = value, now


def go_back(db: Session, session: SurveySession, expected_revision: int | None = None
            ) -> PageState:
    """Show the page (or repeat instance) before the current one (answers stay)."""
    if session.status != "started":
        raise DeliveryError(409, session.status, f"the survey is {session.status}")
    if expected_revision is not None and expected_revision != session.revision:
        return current_page(db, session)  # a double tap on "back": go back only once
    survey = session_survey(db, session)
    answers = session.answer_dict()
    sheet = answer_sheet(survey, answers)
    previous = _previous_step(survey, _step(survey, session.page), step_path(
        survey, answers, set(session.prefilled or []), sheet))
    if previous is None:
        raise DeliveryError(409, "first_page", "this is the first page")
    session.page = previous
    session.updated_at = utcnow()
    db.flush()
    return current_page(db, session, sheet)


# --- meta ---------------------------------------------------------------------------

def local_now() -> dt.datetime:
    """Now in the residents' time zone, to the second (``start``, ``end``, ``today``)."""
    return utcnow().astimezone(ZoneInfo(LOCAL_TIMEZONE)).replace(microsecond=0)


def device_id(token: str) -> str:
    """The ``deviceid`` of a session: pseudonymous, per session, from a hash of its link
    token (never a fingerprint of the phone): ``learningcity:<16 hex>``.  A different
    hash from the stored token hash, so it gives nothing away about the link."""
    digest = hashlib.sha256(b"learningcity deviceid\x00" + token.encode("utf-8"))
    return "learningcity:" + digest.hexdigest()[:16]


def _meta_values(survey: Survey, kinds: tuple[str, ...], token: str | None = None,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """The values delivery records for the survey's meta questions of ``kinds``."""
    now = local_now() if now is None else now
    values = {"start": now.isoformat(), "end": now.isoformat(),
              "today": now.date().isoformat(),
              "deviceid": device_id(token) if token is not None else None}
    return {f.name: values[f.kind] for f in survey.fields()
            if f.kind in kinds and f.page.repeat is None and values[f.kind] is not None}


# --- finish and scores --------------------------------------------------------------

def store_answers(db: Session, session: SurveySession, answers: Mapping[str, Any], *,
                  answered_at: dt.datetime) -> None:
    """Add or replace the session's answers by key (``name`` or ``name[i]``, a repeat's
    count ``page[0]``), each row on its step and answered at ``answered_at``; the keys
    given are no longer prefilled. For answers recorded elsewhere (ODK/Kobo
    submissions): nothing is checked here, :func:`finish` checks them all."""
    if session.status != "started":
        raise DeliveryError(409, session.status, f"the survey is {session.status}")
    survey = session_survey(db, session)
    rows = {a.name: a for a in session.answers}
    for key, value in answers.items():
        row = rows.get(key)
        if row is None:
            session.answers.append(SurveyAnswer(name=key, page=_row_page(survey, key),
                                                value=value, answered_at=answered_at))
        else:
            row.value, row.answered_at = value, answered_at
    session.prefilled = sorted(set(session.prefilled or []) - set(answers))
    db.flush()


def finish(db: Session, session: SurveySession, *, scale_instrument: str = SCALE_INSTRUMENT,
           finished_at: dt.datetime | None = None) -> PageState:
    """Check every asked question, drop answers of skipped ones and store scale scores.

    Finishing twice is harmless. Raises :class:`PageInvalid` (422) when a required
    answer is missing, and moves the session to the page of the first problem.
    ``finished_at`` (aware) is when the survey was finished if not now (a submission's
    ``end``): the session's finish time and its ``end`` meta answer.
    """
    if session.status == "finished":
        return current_page(db, session)
    if session.status != "started":
        raise DeliveryError(409, session.status, f"the survey is {session.status}")
    survey = session_survey(db, session)
    answers = session.answer_dict()
    problems = check_answers(survey, answers)
    if problems:
        first = _problem_step(survey, problems[0].name)
        if first is not None and first != session.page:
            session.page = first
            db.flush()
        raise PageInvalid({p.name: p.message for p in problems}, {})
    ended = None if finished_at is None else finished_at.astimezone(
        ZoneInfo(LOCAL_TIMEZONE)).replace(microsecond=0)
    kept = clean_answers(survey, {**answers, **_meta_values(survey, ("end",), now=ended)})
    rows = {row.name: row for row in session.answers}
    for row in list(session.answers):
        if row.name not in kept:
            session.answers.remove(row)
    for key, value in kept.items():  # calculated values and the end time
        row = rows.get(key)
        if row is None:
            session.answers.append(SurveyAnswer(name=key, page=_row_page(survey, key),
                                                value=value))
        elif row.value != value:
            row.value = value
    for score in _scale_scores(db, survey, kept, scale_instrument):
        session.scores.append(score)
    session.status, session.page = "finished", None
    session.finished_at = session.updated_at = finished_at or utcnow()
    try:
        db.flush()
    except (IntegrityError, StaleDataError) as exc:
        raise ConcurrentChange(str(exc)) from exc
    return current_page(db, session)


def _problem_step(survey: Survey, key: str) -> str | None:
    """The step of a problem's answer key, or None for a key the survey does not have."""
    name, inst = split_key(key)
    if inst == 0:
        return instance_key(name, 1)
    try:
        f = field_of(survey, key)
    except KeyError:
        return None
    return instance_key(f.page.name, inst)


#: ``db.info`` key of the calibrations read in this database session (request, import)
_CALIBRATIONS = "surveys.calibrations"


def _irt_params(db: Session, instrument_code: str) -> tuple[Any, int] | None:
    """The item parameters and id of the instrument's published calibration, or None.

    The calibration is read once per database session (a request, an import of many
    rows: reading it was half of the time of storing a submission); which one is
    published is asked every time, so a publication in the same session counts."""
    calibration_id = published_calibration_id(db, instrument_code)
    if calibration_id is None:
        return None
    cache: dict[int, CalibrationInfo | None] = db.info.setdefault(_CALIBRATIONS, {})
    if calibration_id not in cache:
        cache[calibration_id] = calibration_info(db, calibration_id)
    calibration = cache[calibration_id]
    if calibration is None or not calibration.items:
        return None
    return calibration.params, calibration.id


def _finite(x: Any) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def _scale_scores(db: Session, survey: Survey, answers: Mapping[str, Any],
                  instrument_code: str) -> list[SurveyScaleScore]:
    """Per rating grid: sum score, and GRM/GPCM EAP theta and SE when the published
    calibration of ``instrument_code`` covers all of its items."""
    found = None
    out = []
    for q in survey.questions:
        if q.type != "rating_grid":
            continue
        block = scale(survey, q)
        sums = score_scale(block, [answers])
        n_answered = int(sums.n_answered[0])
        if n_answered == 0:
            continue
        row = SurveyScaleScore(scale=q.name, n_items=len(block.items), n_answered=n_answered,
                               sum_score=_finite(sums.sum[0]), method="sum")
        if all(i.item_code for i in block.items):
            if found is None:
                found = _irt_params(db, instrument_code) or False
            if found:
                params, calibration_id = found
                ids = set(params.item_ids.tolist())
                if set(block.item_ids) <= ids:
                    method = scale_method(params.subset(block.item_ids).model)
                    if method is not None:
                        try:
                            irt = score_scale(block, [answers], method, params)
                        except ValueError:
                            irt = None
                        if irt is not None:
                            row.method, row.calibration_id = method, calibration_id
                            row.theta = _finite(irt.theta[0])
                            row.se = _finite(irt.se[0])
        out.append(row)
    return out


def scale_results(session: SurveySession) -> dict[str, dict[str, Any]]:
    """The stored scale scores of a session, keyed by scale (grid) name."""
    return {s.scale: {"n_items": s.n_items, "n_answered": s.n_answered, "sum": s.sum_score,
                      "method": s.method, "theta": s.theta, "se": s.se,
                      "calibration_id": s.calibration_id} for s in session.scores}


# --- withdrawal ----------------------------------------------------------------------

WITHDRAW_ACTION = "resident.withdraw"


def withdraw(db: Session, session: SurveySession) -> int:
    """The resident withdraws from their own survey link: every answer and scale score is
    deleted, the link to the test session dropped and the session ended as ``withdrawn``;
    audited without personal data. Returns how many answers were deleted (0 on a repeat).

    The campaign and invitation stay on the empty session (fieldwork counts it as a
    withdrawn invitation); aggregates already published are not changed. The test
    session has its own link and its own withdrawal.
    """
    if session.status == "withdrawn":
        return 0
    deleted = len(session.answers)
    session.answers.clear()
    session.scores.clear()
    now = utcnow()
    session.status, session.page, session.prefilled = "withdrawn", None, []
    session.test_session_id = session.test_token_sealed = None
    session.updated_at = session.finished_at = now
    audit.record(db, actor="resident", action=WITHDRAW_ACTION,
                 target=f"survey_session:{session.id}",
                 detail={"kind": "survey", "answers_deleted": deleted})
    try:
        db.flush()
    except (IntegrityError, StaleDataError) as exc:
        raise ConcurrentChange(str(exc)) from exc
    return deleted


# --- the flow after the ability test ---------------------------------------------

def after_test_token(secret: str, test_token: str) -> str:
    """The survey link token that belongs to an ability-test link token.

    Derived with HMAC from the app secret, so the test result page can always link to
    "its" survey session without storing a token, and starting it twice is harmless.
    """
    return derive_token(secret, "survey-after-test", test_token)


def start_after_test(db: Session, test_token: str, secret: str, *,
                     survey_code: str = DEFAULT_SURVEY, locale: str | None = None
                     ) -> tuple[SurveySession, str, bool]:
    """Start (or find) the survey session linked to an ability-test session.

    Campaign, invitation and district (the campaign's) are copied from the test session
    and its background answers prefill the survey where the codes agree. Returns the
    session, its token and whether it was created now.
    """
    test = test_session_by_token(db, test_token)
    if test is None:
        raise DeliveryError(404, "unknown_test_session", "this test link is not valid")
    token = after_test_token(secret, test_token)
    existing = db.scalar(sa.select(SurveySession).where(
        SurveySession.token_hash == hash_token(token)))
    if existing is not None:
        return existing, token, False
    session, token = start_survey_session(
        db, survey_code, locale=locale or test.locale or "zh_CN", campaign=test.campaign,
        invitation=test.invitation, test_session_id=test.id, prefill=dict(test.background),
        district=test.district_code, token=token)
    session.test_token_sealed = seal(token, test_token)
    db.flush()
    return session, token, True


def _keystream(key: str, n: int) -> bytes:
    return hashlib.shake_256(b"survey-test-link:" + key.encode("utf-8")).digest(n)


def seal(survey_token: str, test_token: str) -> str:
    """The test token encrypted with a key only the survey token gives (one-time pad from
    SHAKE-256 of the survey token, which has 192 random bits)."""
    data = test_token.encode("utf-8")
    return base64.urlsafe_b64encode(bytes(a ^ b for a, b in zip(
        data, _keystream(survey_token, len(data))))).decode("ascii")


def unseal(survey_token: str, sealed: str | None) -> str | None:
    """The test token of :func:`seal`, or None."""
    if not sealed:
        return None
    data = base64.urlsafe_b64decode(sealed.encode("ascii"))
    try:
        return bytes(a ^ b for a, b in zip(data, _keystream(survey_token, len(data)))
                     ).decode("utf-8")
    except UnicodeDecodeError:
        return None


def survey_session_for_test(db: Session, secret: str, test_token: str) -> tuple[
        SurveySession | None, str]:
    token = after_test_token(secret, test_token)
    return db.scalar(sa.select(SurveySession).where(
        SurveySession.token_hash == hash_token(token))), token


# --- data for exports and monitoring --------------------------------------------------

def _finished(db: Session, definition_ids: list[int], *, district: str | None = None,
              campaign: str | None = None) -> list[SurveySession]:
    query = sa.select(SurveySession).where(
        SurveySession.definition_id.in_(definition_ids),
        SurveySession.status == "finished").order_by(SurveySession.id).options(
        selectinload(SurveySession.answers), selectinload(SurveySession.scores))
    if district is not None:
        query = query.where(SurveySession.district == district)
    if campaign is not None:
        query = query.where(SurveySession.campaign == campaign)
    return list(db.scalars(query))


def responses_for_export(db: Session, survey_code: str, *, version: int | None = None,
                         district: str | None = None, campaign: str | None = None
                         ) -> tuple[Survey, SurveyDefinition, list[dict[str, Any]], list[int]]:
    """Finished sessions of one survey version (default: published), one answer dict each.

    Returns the survey, its stored definition, the answers (cleaned) and the session ids
    (used as respondent ids). ``district`` restricts to one district's sessions.
    """
    survey, definition, responses, ids, _scores = _export_data(
        db, survey_code, version=version, district=district, campaign=campaign)
    return survey, definition, responses, ids


def _export_data(db: Session, survey_code: str, *, version: int | None,
                 district: str | None, campaign: str | None
                 ) -> tuple[Survey, SurveyDefinition, list[dict[str, Any]], list[int],
                            list[dict[str, dict[str, Any]]]]:
    """As :func:`responses_for_export`, plus each session's stored scale scores."""
    definition = get_definition(db, survey_code, version)
    survey = definition_survey(definition)
    sessions = _finished(db, [definition.id], district=district, campaign=campaign)
    return (survey, definition, [clean_answers(survey, s.answer_dict()) for s in sessions],
            [s.id for s in sessions], [scale_results(s) for s in sessions])


def _surveys_by_id(db: Session, definition_ids: Any) -> dict[int, tuple[SurveyDefinition,
                                                                         Survey]]:
    """Stored definitions and their surveys for many ids, in one query."""
    wanted = sorted({int(i) for i in definition_ids})
    if not wanted:
        return {}
    rows = db.scalars(sa.select(SurveyDefinition).where(SurveyDefinition.id.in_(wanted)))
    return {d.id: (d, definition_survey(d)) for d in rows}


def campaign_responses(db: Session, campaign_code: str) -> list[dict[str, Any]]:
    """Per finished survey session of a campaign: its invitation, cleaned answers and scales.

    ``[{"session_id", "invitation", "survey_code", "version", "definition_id",
    "finished_at", "answers": {...}, "scales": {grid: {"sum", "n_answered", "theta", "se",
    ...}}}]``; what the monitoring package reads. The definitions those sessions used
    are read in one query (:func:`response_surveys` gives them to the caller).
    """
    sessions = list(db.scalars(sa.select(SurveySession).where(
        SurveySession.campaign == campaign_code, SurveySession.status == "finished")
        .order_by(SurveySession.id).options(selectinload(SurveySession.answers),
                                            selectinload(SurveySession.scores))))
    found = _surveys_by_id(db, {s.definition_id for s in sessions})
    out = []
    for s in sessions:
        definition, survey = found[s.definition_id]
        out.append({"session_id": s.id, "invitation": s.invitation,
                    "survey_code": s.survey_code, "version": definition.version,
                    "definition_id": definition.id, "finished_at": s.finished_at,
                    "answers": clean_answers(survey, s.answer_dict()),
                    "scales": scale_results(s)})
    return out


EXPORT_FORMATS = ("csv", "xlsx", "sav", "csv.zip", "sav.zip", "codebook")
#: ZIP exports: the main table, one long table per repeat page and the codebook
ZIP_FORMATS = {"csv.zip": "csv", "sav.zip": "sav"}


def label_languages(survey: Survey) -> list[str]:
    """The languages an export's labels may be in: zh, en, then the survey's further
    languages (codes of the ``more`` texts of its title, pages, questions and choices)."""
    texts = [survey.title, *(c.label for cs in survey.choice_lists.values() for c in cs)]
    for page in survey.pages:
        texts.append(page.title)
        for q in page.questions:
            texts += [t for t in (q.label, q.hint) if t is not None]
            texts += [i.label for i in q.items]
    more = {code for t in texts for code, _ in t.more} - set(exports.LABEL_LANGUAGES)
    return [*exports.LABEL_LANGUAGES, *sorted(more)]


def export_file(db: Session, survey_code: str, fmt: str, *, version: int | None = None,
                district: str | None = None, campaign: str | None = None,
                labels: str = "zh") -> tuple[bytes, int]:
    """Responses as ``csv``, ``xlsx``, ``sav``, ``csv.zip`` or ``sav.zip`` bytes (or the
    ``codebook`` CSV), and the number of respondents. The files carry the scale scores
    stored at finish (sum, items answered, theta, SE per rating grid) after the answers;
    the codebook lists them. A ZIP holds the main table, one long table per repeat page
    (one row per instance) and the codebook (:func:`surveys.exports.zip_bytes`).
    ``labels`` (``zh``, ``en`` or another language of the survey) is the language of the
    .sav's labels (the codebook and the XLSX's codebook sheet have every language)."""
    if fmt == "codebook":
        definition = get_definition(db, survey_code, version)
        return exports.codebook_bytes(definition_survey(definition), scores=True), 0
    if fmt not in exports.RESPONSE_FILES and fmt not in ZIP_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose {', '.join(EXPORT_FORMATS)}")
    survey, _definition, responses, ids, scores = _export_data(
        db, survey_code, version=version, district=district, campaign=campaign)
    languages = label_languages(survey)
    if labels not in languages:
        raise ValueError(f"unknown labels {labels!r}; choose {', '.join(languages)}")
    if fmt in ZIP_FORMATS:
        return exports.zip_bytes(survey, responses, ids, scores, fmt=ZIP_FORMATS[fmt],
                                 labels=labels), len(responses)
    if fmt == "sav":
        return exports.sav_bytes(survey, responses, ids, scores, labels), len(responses)
    return exports.RESPONSE_FILES[fmt](survey, responses, ids, scores), len(responses)


def export_responses(db: Session, survey_code: str, fmt: str, out: str | Path, *,
                     version: int | None = None, district: str | None = None,
                     campaign: str | None = None, labels: str = "zh") -> int:
    """:func:`export_file` written to ``out``; returns the number of respondents."""
    data, n = export_file(db, survey_code, fmt, version=version, district=district,
                          campaign=campaign, labels=labels)
    Path(out).write_bytes(data)
    return n


def definition_json(definition: SurveyDefinition) -> str:
    """The stored definition as canonical JSON text (for download)."""
    return dumps(definition_survey(definition))



# --- contract: what other packages read of survey sessions and responses -------------
# Plain frozen values, never ORM objects; documented in surveys/README.md ("Contract").

@dataclass(frozen=True)
class SurveySessionInfo:
    """A survey session as other packages see it (no answers; see campaign_responses)."""

    id: int
    survey_code: str
    definition_id: int
    status: str
    locale: str
    campaign: str | None
    invitation: str | None
    district: str | None
    test_session_id: int | None
    created_at: dt.datetime | None
    finished_at: dt.datetime | None

    @property
    def finished(self) -> bool:
        return self.status == "finished"


def session_info(session: SurveySession) -> SurveySessionInfo:
    """The plain view of a session row (for this package's own callers of the contract)."""
    return SurveySessionInfo(
        id=session.id, survey_code=session.survey_code, definition_id=session.definition_id,
        status=session.status, locale=session.locale, campaign=session.campaign,
        invitation=session.invitation, district=session.district,
        test_session_id=session.test_session_id, created_at=session.created_at,
        finished_at=session.finished_at)


def session_by_token(db: Session, token: str) -> SurveySessionInfo | None:
    """The session behind a link token, or None (nothing is changed: no expiry here)."""
    session = db.scalar(sa.select(SurveySession).where(
        SurveySession.token_hash == hash_token(token)))
    return None if session is None else session_info(session)


def start_campaign_session(db: Session, survey_code: str, *, token: str, campaign: str,
                           invitation: str, locale: str = "zh_CN",
                           prefill: Mapping[str, Any] | None = None,
                           district: str | None = None) -> SurveySessionInfo:
    """Open a session for a campaign invitation with the caller's link token
    (see :func:`start_survey_session` for ``prefill`` and ``district``)."""
    session, _token = start_survey_session(
        db, survey_code, locale=locale, campaign=campaign, invitation=invitation,
        prefill=dict(prefill or {}), district=district, token=token)
    return session_info(session)


def start_session_after_test(db: Session, test_token: str, secret: str, *,
                             survey_code: str = DEFAULT_SURVEY, locale: str | None = None
                             ) -> tuple[SurveySessionInfo, str, bool]:
    """:func:`start_after_test` as plain data: the session, its token, created now."""
    session, token, created = start_after_test(db, test_token, secret,
                                               survey_code=survey_code, locale=locale)
    return session_info(session), token, created


def withdrawn_invitations(db: Session, campaign: str) -> set[str]:
    """Invitation public ids of the campaign whose survey session the resident withdrew."""
    return set(db.scalars(sa.select(SurveySession.invitation).where(
        SurveySession.campaign == campaign, SurveySession.status == "withdrawn",
        SurveySession.invitation.is_not(None)).distinct()))


def finished_invitations(db: Session, campaign: str,
                         invitations: Iterable[str] | None = None) -> set[str]:
    """Invitation public ids of the campaign with a finished survey session.

    ``invitations`` narrows the answer: one id is looked up by itself, many are read
    campaign-wide and filtered here (no huge IN list).
    """
    query = sa.select(SurveySession.invitation).where(
        SurveySession.campaign == campaign, SurveySession.status == "finished",
        SurveySession.invitation.is_not(None))
    wanted = None if invitations is None else set(invitations)
    if wanted is not None and len(wanted) == 1:
        query = query.where(SurveySession.invitation == next(iter(wanted)))
    found = set(db.scalars(query))
    return found if wanted is None else found & wanted


def published_codes(db: Session) -> list[str]:
    """Codes of the surveys that have a published version, in code order."""
    return sorted(db.scalars(sa.select(SurveyPublication.code)))


def is_published(db: Session, code: str) -> bool:
    """Whether a survey code has a published version (new sessions can start)."""
    return db.get(SurveyPublication, code) is not None


def response_surveys(db: Session, responses: Iterable[Mapping[str, Any]]
                     ) -> dict[tuple[str, int], Survey]:
    """``(survey_code, version) -> Survey`` for the definitions used by responses of
    :func:`campaign_responses`, in one query (not one per respondent)."""
    found = _surveys_by_id(db, {r["definition_id"] for r in responses})
    return {(d.code, d.version): survey for d, survey in found.values()}


def campaign_surveys(db: Session, campaign: str) -> dict[tuple[str, int], Survey]:
    """``(survey_code, version) -> Survey`` for every definition the campaign's finished
    sessions used, in one query."""
    ids = db.scalars(sa.select(SurveySession.definition_id).distinct().where(
        SurveySession.campaign == campaign, SurveySession.status == "finished"))
    return {(d.code, d.version): survey for d, survey in _surveys_by_id(db, ids).values()}
