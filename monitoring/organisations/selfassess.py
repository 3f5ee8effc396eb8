"""The self-assessment an organisation fills in from a link: no account, like residents.

District staff issue the link of an organisation and year (:func:`invite`): a random
token (192 bits, :func:`learningcity.tokens.new_token`) of which only the hash is
stored, valid for :data:`LINK_DAYS` days. Re-issuing gives a new token and the old one
stops working. Whoever holds the link picks a rubric level per criterion, writes a short
note, may attach evidence files (PDF, PNG or JPEG, at most :data:`EVIDENCE_BYTES` each),
saves drafts as often as needed and submits; after that the answers are fixed and the
district reviews them (:mod:`monitoring.organisations.review`), unless it returns them
with a comment, which opens them for changes until the organisation submits again.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from learningcity import audit
from learningcity.db import utcnow
from learningcity.i18n import _
from learningcity.tokens import hash_token, new_token
from monitoring.fieldwork.campaigns import Said
from monitoring.organisations.models import Evaluation, EvaluationEvidence, Organisation
from monitoring.organisations.standards import criteria, current_standard

LINK_DAYS = 60
NOTE_CHARS = 500
EVIDENCE_BYTES = 5 * 1024 * 1024
EVIDENCE_FILES = 20
#: evidence types, recognised by their first bytes (the name and the browser's type
#: are not believed)
EVIDENCE_TYPES = ((b"%PDF-", "application/pdf", ".pdf"),
                  (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
                  (b"\xff\xd8\xff", "image/jpeg", ".jpg"))
EDITABLE = ("invited", "draft", "returned")


class EvaluationError(ValueError):
    """A change refused; ``problems`` lists every reason, ``status`` the HTTP status."""

    def __init__(self, problems: Sequence[str], status: int = 400) -> None:
        self.problems = list(problems)
        self.status = status
        super().__init__("; ".join(self.problems))


class LinkRefused(Exception):
    """The link leads nowhere: ``code`` is ``unknown`` or ``expired``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Evidence:
    """An evidence file as uploaded: which criterion, its name and bytes."""

    criterion: str
    filename: str
    data: bytes


def invite(db: Session, organisation: Organisation, year: int, *, actor: str,
           days: int = LINK_DAYS, now: dt.datetime | None = None) -> tuple[str, Evaluation]:
    """Issue (or re-issue) the self-assessment link of ``organisation`` for ``year``.
    Returns the token (shown once, never stored) and the evaluation."""
    now = now or utcnow()
    evaluation = db.scalar(sa.select(Evaluation).where(
        Evaluation.organisation_id == organisation.id, Evaluation.year == year))
    if evaluation is not None and evaluation.status not in EDITABLE:
        raise EvaluationError([Said(_("the self-assessment of ${year} was already submitted"),
                                    year=year)], 409)
    if evaluation is None:
        standard = current_standard(db, organisation.kind, year)
        if standard is None:
            raise EvaluationError([Said(_("there is no evaluation standard for this kind of "
                                        "organisation in ${year}; the city office uploads "
                                        "it first"), year=year)])
        evaluation = Evaluation(organisation=organisation, standard=standard, year=year,
                                status="invited", self_levels={}, self_notes={},
                                review_levels={}, review_comments={})
        db.add(evaluation)
    token = new_token()
    evaluation.token_hash = hash_token(token)
    evaluation.token_expires_at = now + dt.timedelta(days=days)
    db.flush()
    audit.record(db, actor=actor, action="evaluation.invite",
                 target=f"organisation:{organisation.code}",
                 detail={"year": year, "expires": evaluation.token_expires_at.isoformat(),
                         "standard": evaluation.standard_id})
    return token, evaluation


def open_link(db: Session, token: str, now: dt.datetime | None = None) -> Evaluation:
    """The evaluation a link token opens; :class:`LinkRefused` when the token is unknown
    (or was replaced) or has expired."""
    evaluation = db.scalar(sa.select(Evaluation).where(
        Evaluation.token_hash == hash_token(token))) if token else None
    if evaluation is None:
        raise LinkRefused("unknown")
    expires = evaluation.token_expires_at
    if expires is None or (now or utcnow()) >= expires:
        raise LinkRefused("expired")
    return evaluation


def flush_once(db: Session) -> None:
    """Flush an evaluation's change; a change another request stored meanwhile (its
    revision moved on: optimistic lock) is refused with 409 instead of a server error."""
    try:
        db.flush()
    except StaleDataError:
        raise EvaluationError([Said(_("the evaluation was changed meanwhile; reload the "
                                      "page"))], 409) from None


def _actor(evaluation: Evaluation) -> str:
    return f"organisation:{evaluation.organisation.code}"


def check_evidence(evaluation: Evaluation, files: Sequence[Evidence]) -> list[tuple[Evidence, str]]:
    """Each file with its media type, or :class:`EvaluationError` naming every bad file."""
    problems: list[str] = []
    known = {c["code"] for c in criteria(evaluation.standard)}
    if len(evaluation.evidence) + len(files) > EVIDENCE_FILES:
        problems.append(Said(_("at most ${limit} evidence files"), limit=EVIDENCE_FILES))
    typed = []
    for item in files:
        name = item.filename.replace("\\", "/").rsplit("/", 1)[-1][:200] or "evidence"
        if item.criterion not in known:
            problems.append(Said(_("${file}: unknown criterion"), file=name))
            continue
        if len(item.data) > EVIDENCE_BYTES:
            problems.append(Said(_("${file}: larger than ${mb} MB"), file=name,
                                 mb=EVIDENCE_BYTES // (1024 * 1024)))
            continue
        media = next((t for magic, t, _ext in EVIDENCE_TYPES if item.data.startswith(magic)),
                     None)
        if media is None:
            problems.append(Said(_("${file}: only PDF, PNG or JPEG files are accepted"),
                                 file=name))
            continue
        typed.append((Evidence(item.criterion, name, item.data), media))
    if problems:
        raise EvaluationError(problems)
    return typed


def save(db: Session, evaluation: Evaluation, levels: Mapping[str, str],
         notes: Mapping[str, str], *, revision: int, submit: bool = False,
         now: dt.datetime | None = None) -> Evaluation:
    """Save the organisation's answers as a draft, or submit them (then fixed unless the
    district returns them). Every level
    must be one of its criterion's; on submission every criterion needs one. Nothing
    is stored when anything is refused."""
    _editable(evaluation, revision)
    problems: list[str] = []
    clean_levels: dict[str, str] = {}
    clean_notes: dict[str, str] = {}
    for number, criterion in enumerate(criteria(evaluation.standard), start=1):
        code = criterion["code"]
        level = (levels.get(code) or "").strip()
        allowed = [item["level"] for item in criterion["levels"]]
        if level and level not in allowed:
            problems.append(Said(_("criterion ${n}: choose one of the levels"), n=number))
        elif level:
            clean_levels[code] = level
        elif submit:
            problems.append(Said(_("criterion ${n}: choose a level before submitting"),
                                 n=number))
        note = (notes.get(code) or "").strip()
        if len(note) > NOTE_CHARS:
            problems.append(Said(_("criterion ${n}: the note is longer than ${limit} "
                                 "characters"), n=number, limit=NOTE_CHARS))
        elif note:
            clean_notes[code] = note
    if problems:
        raise EvaluationError(problems)
    now = now or utcnow()
    evaluation.self_levels = clean_levels
    evaluation.self_notes = clean_notes
    if submit:
        evaluation.status = "submitted"
    elif evaluation.status != "returned":  # a returned one stays so until resubmitted
        evaluation.status = "draft"
    if submit:
        evaluation.submitted_at = now
    flush_once(db)
    audit.record(db, actor=_actor(evaluation),
                 action="evaluation.submit" if submit else "evaluation.draft",
                 target=f"organisation:{evaluation.organisation.code}",
                 detail={"year": evaluation.year, "levels": clean_levels})
    return evaluation


def attach_evidence(db: Session, evaluation: Evaluation, files: Sequence[Evidence], *,
                    revision: int, now: dt.datetime | None = None) -> Evaluation:
    """Attach evidence files to criteria of a self-assessment not yet submitted (all
    files or none: each checked for its criterion, size and type first)."""
    _editable(evaluation, revision)
    if not files:
        raise EvaluationError([Said(_("choose a file to attach"))])
    typed = check_evidence(evaluation, files)
    now = now or utcnow()
    for item, media in typed:
        evaluation.evidence.append(EvaluationEvidence(
            criterion=item.criterion, filename=item.filename, media_type=media,
            size=len(item.data), sha256=hashlib.sha256(item.data).hexdigest(),
            content=item.data, uploaded_at=now))
    if evaluation.status == "invited":
        evaluation.status = "draft"
    flush_once(db)
    audit.record(db, actor=_actor(evaluation), action="evaluation.evidence",
                 target=f"organisation:{evaluation.organisation.code}",
                 detail={"year": evaluation.year,
                         "files": [[i.criterion, i.filename, len(i.data)] for i, _m in typed]})
    return evaluation


def _editable(evaluation: Evaluation, revision: int) -> None:
    if evaluation.status not in EDITABLE:
        raise EvaluationError([Said(_("this self-assessment was already submitted; it "
                                    "cannot change"))], 409)
    if revision != evaluation.revision:
        raise EvaluationError([Said(_("the self-assessment was changed in another window; "
                                    "reload the page"))], 409)


def get_evidence(db: Session, evidence_id: int) -> EvaluationEvidence | None:
    return db.get(EvaluationEvidence, evidence_id)
