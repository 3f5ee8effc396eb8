"""Delivering the adaptive test: one service behind both the pages and the JSON API.

Every answer is stored (with the item version, position, score, time and the
estimate after it) before the next item is chosen; resending an answer returns
the same next step; a different answer at an answered position is a conflict.
The session row carries an optimistic-lock revision, so two tabs or two workers
cannot both advance it.

The next item is chosen once, by the request that moves the session on (start,
background, answer), and stored with the engine state (``engine_state["next"]``,
stamped with the bank it was chosen from); showing the item again (the page after
the form's redirect, a reload, another phone) reads it back. The item bank is read
through ``itembank.services`` only.
"""
from __future__ import annotations

import datetime as dt
import math
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from pyramid_retry import IRetryableError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from zope.interface import implementer

from itembank import services as bank
from learningcity import audit, districts
from learningcity.db import utcnow
from learningcity.tokens import TOKEN_BYTES, hash_token  # hash_token: also imported from here
from scoring import models as irt
from scoring.params import ItemParams

from . import engine
from .background import FIELDS as BACKGROUND_FIELDS
from .background import check_answers
from .models import Answer, TestSession
from .sessions import TestSessionInfo, session_info

DEFAULT_IDLE_MINUTES = 60


@implementer(IRetryableError)
class ConcurrentChange(Exception):
    """Another request changed the same session at the same moment; retry the request.

    pyramid_retry runs the request again in a fresh transaction, which then sees the
    other request's answer and answers as for a resend (same step) or a conflict (409).
    """


class DeliveryError(Exception):
    """A resident's request that cannot be carried out; ``status`` is the HTTP status."""

    def __init__(self, status: int, code: str, message: str,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []


class BackgroundInvalid(DeliveryError):
    """Background answers outside their choices: ``errors`` maps each field to its
    (translatable) message, ``values`` keeps what was posted; nothing was stored."""

    def __init__(self, errors: dict[str, Any], values: dict[str, Any]) -> None:
        super().__init__(400, "invalid_background",
                         "not a valid answer: " + ", ".join(sorted(errors)),
                         [{"name": k, "message": getattr(v, "interpolate", v.__str__)()}
                          for k, v in sorted(errors.items())])
        self.errors, self.values = errors, values


# --- the bank as the engine sees it ---------------------------------------------

@dataclass
class LiveBank:
    """A published calibration turned into an engine bank, cached per calibration id."""

    calibration: bank.CalibrationInfo
    bank: engine.Bank
    params: ItemParams
    version_ids: list[int]
    codes: list[str]
    domains: list[str]
    pilot: np.ndarray
    levels: list[dict] = field(default_factory=list)
    #: item version id -> its immutable content (versions never change once stored)
    contents: dict[int, bank.VersionContent] = field(default_factory=dict)
    #: item version id -> its index in the engine bank
    index_of: dict[int, int] = field(default_factory=dict)
    #: [calibration id, *bank revision]: what a stored next item was chosen from
    key: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.index_of = {v: j for j, v in enumerate(self.version_ids)}

    def content(self, db: Session, version_id: int) -> bank.VersionContent:
        """An item version's content, read from the database once per worker."""
        found = self.contents.get(version_id)
        if found is None:
            found = bank.version_contents(db, [version_id])[version_id]
            self.contents[version_id] = found
        return found


_cache: dict[tuple[int, int, int], LiveBank] = {}
_cache_lock = threading.Lock()


def live_bank(db: Session, calibration_id: int,
              revision: tuple[int, int] | None = None) -> LiveBank:
    """The engine bank for a calibration plus the instrument's current pilot items.

    Calibrations never change once stored, and item changes bump the bank revision,
    so the bank is built once per process and revision; a request costs one small
    query (none when the caller passes the ``revision`` it already read).
    """
    key = (calibration_id, *(revision if revision is not None else bank.bank_revision(db)))
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    calibration = bank.calibration_info(db, calibration_id)
    instrument = bank.instrument_info_by_id(db, calibration.instrument_id)
    keep = [j for j, item in enumerate(calibration.items) if item.status == "operational"]
    rows = [calibration.items[j] for j in keep]
    pilot_items = bank.pilot_items(db, instrument.item_type,
                                   exclude=[item.item_id for item in calibration.items])
    params = calibration.params.subset(keep)
    codes = [r.code for r in rows] + [i.code for i in pilot_items]
    domains = [r.domain_code for r in rows] + [i.domain_code for i in pilot_items]
    if pilot_items:
        k = int(params.max_categories) - 1
        placeholder = ItemParams.from_arrays(
            item_ids=[i.code for i in pilot_items], model=str(params.model[0]),
            a=np.ones(len(pilot_items)), b=np.zeros((len(pilot_items), max(k, 1)))[:, :k]
            if k > 1 else np.zeros(len(pilot_items)))
        params = params.concat(placeholder)
    pilot = np.array([False] * len(rows) + [True] * len(pilot_items))
    blueprint = engine.Blueprint.from_dict(instrument.blueprint)
    engine_bank = engine.Bank(params, domains=domains,
                              pilot=[c for c, p in zip(codes, pilot) if p], blueprint=blueprint,
                              cuts=_level_cuts(calibration))
    version_ids = [r.current_version_id for r in rows] + \
        [i.current_version_id for i in pilot_items]
    live = LiveBank(calibration=calibration, bank=engine_bank, params=params,
                    version_ids=version_ids, codes=codes, domains=domains, pilot=pilot,
                    levels=list(calibration.levels),
                    contents=bank.version_contents(db, version_ids), key=list(key))
    with _cache_lock:
        stale = [k for k in _cache if k[0] == calibration_id or len(_cache) >= 16]
        for k in stale:
            del _cache[k]
        _cache[key] = live
    return live


def _level_cuts(calibration: bank.CalibrationInfo) -> tuple[float, ...]:
    """The calibration's proficiency levels as θ cut points, for classification stopping
    (the level the engine stops in is the level the resident is told); none when the
    scale does not rise with θ (then the levels cannot be cut on θ)."""
    try:
        return engine.theta_cuts([lv.get("min") for lv in calibration.levels],
                                 calibration.scale_mean, calibration.scale_sd,
                                 calibration.link_a, calibration.link_b)
    except ValueError:
        return ()


# --- what one request reads once -------------------------------------------------

@dataclass(frozen=True)
class _Read:
    """The bank revision and the instrument's blueprint as this transaction read them."""

    transaction: Any
    revision: tuple[int, int]
    blueprint: dict


def _remember(db: Session, session: TestSession, revision: tuple[int, int],
              blueprint: dict) -> None:
    """Keep what this request read with the session row, for the rest of the request."""
    session._assessment_read = _Read(db.get_transaction(), revision, blueprint)


def _recalled(db: Session, session: TestSession) -> _Read | None:
    read = getattr(session, "_assessment_read", None)
    if read is None or read.transaction is not db.get_transaction():
        return None  # read in another transaction: may be out of date
    return read


def _read(db: Session, session: TestSession) -> _Read:
    """The bank revision and blueprint for this request: read with the session row by
    :func:`find_session`, else read now (two small queries) and kept."""
    read = _recalled(db, session)
    if read is None:
        instrument = bank.instrument_info_by_id(db, session.instrument_id)
        _remember(db, session, bank.bank_revision(db), dict(instrument.blueprint or {}))
        read = _recalled(db, session)
    return read


@dataclass(frozen=True)
class _Delivery:
    """What one request needs to move a session on: read and parsed once."""

    live: LiveBank
    instrument_id: int
    blueprint_data: dict
    blueprint: engine.Blueprint


def _delivery(db: Session, session: TestSession) -> _Delivery:
    """The live bank and the instrument's blueprint, parsed once for this request."""
    read = _read(db, session)
    live = live_bank(db, session.calibration_id, read.revision)
    return _Delivery(live, session.instrument_id, read.blueprint,
                     engine.Blueprint.from_dict(read.blueprint))


# --- sessions --------------------------------------------------------------------

def instrument(db: Session, code: str) -> bank.InstrumentInfo | None:
    """The instrument a start page offers (None: no such instrument)."""
    return bank.instrument_info(db, code)


def start_session(db: Session, instrument_code: str, *, locale: str = "zh_CN",
                  consent: bool, background: dict[str, str] | None = None,
                  campaign: str | None = None, invitation: str | None = None,
                  district: str | None = None, token: str | None = None
                  ) -> tuple[str, TestSession]:
    """Open a session after consent; returns the link token (shown once) and the session.

    ``token``: the link token to use (e.g. one derived from an invitation code) instead
    of a new random one; only its hash is stored. ``district``: the campaign's district,
    which scopes the session for district staff (None: city-level staff only).
    """
    if not consent:
        raise DeliveryError(400, "consent_required",
                            "the test starts only after you agree to the consent statement")
    info = bank.instrument_info(db, instrument_code)
    if info is None:
        raise DeliveryError(404, "unknown_instrument", f"no instrument {instrument_code!r}")
    if not info.ready:
        raise DeliveryError(503, "not_ready", "this test has no published calibration yet")
    token = token or secrets.token_urlsafe(TOKEN_BYTES)
    seed = secrets.randbits(62)
    session = TestSession(token_hash=hash_token(token), instrument_id=info.id,
                          calibration_id=info.published_calibration_id,
                          campaign=campaign, invitation=invitation,
                          district_code=district or None, locale=locale,
                          background={}, seed=seed, consented_at=utcnow(),
                          status="background", n_answered=0)
    _remember(db, session, bank.bank_revision(db), dict(info.blueprint or {}))
    delivery = _delivery(db, session)
    state = engine.start(delivery.live.bank, delivery.blueprint, seed=seed)
    session.engine_state = state.to_dict()
    session.theta, session.se = float(state.theta), float(state.se)
    if background is not None:
        _set_background(db, session, background, delivery, state)
    db.add(session)  # added once complete: one INSERT, no UPDATE after it
    db.flush()
    return token, session


def start_campaign_session(db: Session, instrument_code: str, *, token: str, campaign: str,
                           invitation: str, locale: str = "zh_CN",
                           prefill: dict[str, str] | None = None,
                           district: str | None = None) -> TestSessionInfo:
    """Open a session for a campaign invitation with the caller's link token (e.g. one
    derived from the invitation code), after the resident's consent.

    ``prefill``: background answers already known (from the invitation); values that are
    not valid answers are dropped. When they answer every background question the
    blueprint asks, the test begins at once; otherwise the background form comes first,
    filled in with them. ``district``: the campaign's district (scopes the session for
    district staff and is the only district answer accepted).
    """
    known, _problems = check_answers(
        {k: str(v) for k, v in (prefill or {}).items() if v is not None},
        districts=set(districts.district_codes(db)), fixed_district=district)
    if district:
        known["district"] = district
    info = bank.instrument_info(db, instrument_code)
    wanted = set(required_background(info)) if info is not None else set()
    begins = bool(wanted) and wanted <= set(known)
    _token, session = start_session(db, instrument_code, locale=locale, consent=True,
                                    background=known if begins else None,
                                    campaign=campaign, invitation=invitation,
                                    district=district, token=token)
    if not begins:
        session.background = known  # shown filled in on the background form
        db.flush()
    return session_info(session)


def required_background(instrument: Any) -> list[str]:
    """The background fields an instrument's blueprint asks (any object with ``blueprint``)."""
    return [f for f in (instrument.blueprint or {}).get("background", [])
            if f in BACKGROUND_FIELDS]


@dataclass(frozen=True)
class BackgroundForm:
    """The background questions a session's blueprint asks, with the district choices."""

    fields: list[str]
    districts: list[districts.DistrictInfo]


def background_form(db: Session, session: TestSession) -> BackgroundForm:
    """What the background page shows for a session (a campaign's session: its district
    only)."""
    found = districts.list_districts(db)
    if session.district_code:
        found = [d for d in found if d.code == session.district_code]
    return BackgroundForm(fields=required_background(bank.instrument_info_by_id(
        db, session.instrument_id)), districts=found)


def check_background(db: Session, session: TestSession, answers: dict[str, Any]
                     ) -> dict[str, str]:
    """The clean background answers, or :class:`BackgroundInvalid` naming each field whose
    answer is not one of its choices (districts from the database; the campaign's only)."""
    clean, errors = check_answers(answers, districts=set(districts.district_codes(db)),
                                  fixed_district=session.district_code)
    if errors:
        raise BackgroundInvalid(errors, {k: answers.get(k) for k in BACKGROUND_FIELDS
                                         if k in answers})
    return clean


def set_background(db: Session, session: TestSession, answers: dict[str, str],
                   instrument: Any = None) -> None:
    """Store the background answers the blueprint asks for; then the test begins.

    ``instrument`` is accepted for older callers and not needed. Answers outside their
    choices raise :class:`BackgroundInvalid` and store nothing.
    """
    _set_background(db, session, answers, _delivery(db, session))


def _set_background(db: Session, session: TestSession, answers: dict[str, str],
                    delivery: _Delivery, state: Any = None) -> None:
    clean = check_background(db, session, answers)
    session.background = {**(session.background or {}), **clean}
    state = state or engine.TestState.from_dict(session.engine_state)
    group_field = (delivery.blueprint_data.get("start") or {}).get("group_field")
    if group_field and session.background.get(group_field) and not session.n_answered:
        # start rule: the prior of the resident's group (e.g. by age band), when the
        # blueprint defines one; the engine falls back to the general prior otherwise
        state = engine.start(delivery.live.bank, delivery.blueprint, seed=session.seed,
                             prior=session.background[group_field])
        session.theta, session.se = float(state.theta), float(state.se)
    session.status = "testing"
    session.last_activity_at = utcnow()
    _choose_next(session, delivery, state)


#: a session by its token hash, with the bank revision and the instrument's blueprint
#: (built once: constructing this statement costs more than running it)
_FIND = sa.select(TestSession, *bank.bank_revision_columns(),
                  bank.instrument_blueprint_column(TestSession.instrument_id)
                  ).where(TestSession.token_hash == sa.bindparam("token_hash"))
_FIND_FOR_UPDATE = _FIND.with_for_update(of=TestSession)


def find_session(db: Session, token: str, *, for_update: bool = False,
                 idle_minutes: int = DEFAULT_IDLE_MINUTES) -> TestSession:
    """The session behind a link token; expires it when idle too long (answers kept).

    The bank revision and the instrument's blueprint come back in the same round trip
    and are kept for the rest of the request.
    """
    query = _FIND_FOR_UPDATE if for_update else _FIND
    row = db.execute(query, {"token_hash": hash_token(token)}).first()
    if row is None:
        raise DeliveryError(404, "unknown_session", "this test link is not valid")
    session, changes, versions, blueprint = row
    _remember(db, session, (changes or 0, versions or 0), dict(blueprint or {}))
    idle = utcnow() - session.last_activity_at
    if session.status in ("consent", "background", "testing") and \
            idle > dt.timedelta(minutes=idle_minutes):
        session.status = "expired"
        session.stop_reason = "idle"
    return session


@dataclass
class Step:
    """What the resident sees next: an item, the background form, the result, or expiry."""

    status: str
    position: int
    answered: int
    remaining: int
    item: dict[str, Any] | None = None
    result: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "position": self.position, "answered": self.answered,
                "estimated_remaining": self.remaining, "item": self.item,
                "result": self.result}


def current_step(db: Session, session: TestSession, locale: str | None = None) -> Step:
    """The next step of a session, computed from the stored state only.

    The item shown is the one stored when the session last moved on, as long as the
    bank it was chosen from is still the live one; otherwise (an item changed status
    since) it is chosen again from the stored state, without storing it.
    """
    locale = locale or session.locale
    answered = session.n_answered
    if session.status in ("consent", "background", "expired", "withdrawn"):
        return Step(session.status, answered + 1, answered, 0)
    if session.status == "finished":
        return _finished_step(db, session, locale)
    live = live_bank(db, session.calibration_id, _read(db, session).revision)
    chosen = _stored_next(session, live)
    if chosen is not None:
        return _item_step(db, session, live, chosen, locale)
    # a read must not write the session row (it would race a concurrent answer)
    delivery = _delivery(db, session)
    state = engine.TestState.from_dict(session.engine_state)
    chosen = _pick_next(delivery, state, answered)
    if chosen is None:
        _finish(session, live, delivery.blueprint, state)
        return _finished_step(db, session, locale)
    return _item_step(db, session, live, chosen, locale)


def _stored_next(session: TestSession, live: LiveBank) -> dict[str, Any] | None:
    """The stored next item, if it was chosen at this position from this very bank."""
    chosen = (session.engine_state or {}).get("next")
    if not chosen or chosen.get("bank") != live.key or \
            chosen.get("position") != session.n_answered + 1:
        return None
    return chosen


def _pick_next(delivery: _Delivery, state: Any, answered: int,
               shown_remaining: int | None = None) -> dict[str, Any] | None:
    """The engine's next item as it is stored on the session, or None: the test stops.

    The "about N left" figure never rises above the one shown with the previous item, so
    the resident's progress never appears to go backwards.
    """
    live, blueprint = delivery.live, delivery.blueprint
    choice = engine.next_item(live.bank, blueprint, state)
    if choice is None:
        return None
    remaining = _remaining(blueprint, state, answered)
    if shown_remaining is not None:
        remaining = min(remaining, max(1, int(shown_remaining)))
    return {"position": answered + 1, "index": choice.index,
            "version": live.version_ids[choice.index], "pilot": choice.is_pilot,
            "remaining": max(1, remaining), "bank": live.key}


def _next_changes(delivery: _Delivery, state: Any, answered: int,
                  shown_remaining: int | None = None) -> dict[str, Any]:
    """The session columns recording ``state`` and what follows it: the next item, chosen
    once here, or the final score when the test stops."""
    chosen = _pick_next(delivery, state, answered, shown_remaining)
    if chosen is None:
        return {"engine_state": state.to_dict(),
                **_final_changes(delivery.live, delivery.blueprint, state)}
    return {"engine_state": {**state.to_dict(), "next": chosen}}


def _choose_next(session: TestSession, delivery: _Delivery, state: Any) -> None:
    """Choose the next item once and store it with the state (or finish the session)."""
    for key, value in _next_changes(delivery, state, session.n_answered).items():
        setattr(session, key, value)


def _item_step(db: Session, session: TestSession, live: LiveBank, chosen: dict[str, Any],
               locale: str) -> Step:
    index = chosen["index"]
    version = live.content(db, chosen["version"])
    item = {"position": chosen["position"], "version": version.id, "code": live.codes[index],
            "stem": version.stem(locale), "options": version.option_texts(locale),
            "media": version.media, "domain": live.domains[index]}
    answered = session.n_answered
    return Step("testing", answered + 1, answered, chosen["remaining"], item=item)


def _finished_step(db: Session, session: TestSession, locale: str) -> Step:
    answered = session.n_answered
    return Step("finished", answered + 1, answered, 0, result=result(db, session, locale))


def _remaining(blueprint: Any, state: Any, answered: int) -> int:
    """An honest estimate of how many items are left, from the information gained so far."""
    n_scored = max(1, int(getattr(state, "n_scored", answered)))
    left_max = max(0, blueprint.max_items - n_scored)
    left_min = max(0, blueprint.min_items - n_scored)
    prior_info = 1.0 / max(float(getattr(state, "prior_sd", 1.0)), 1e-6) ** 2
    gained = max(1e-6, 1.0 / max(state.se, 1e-6) ** 2 - prior_info)
    needed = 1.0 / blueprint.se_target ** 2 - 1.0 / max(state.se, 1e-6) ** 2
    by_precision = math.ceil(max(0.0, needed) / (gained / n_scored)) if answered else left_max
    return int(min(left_max, max(left_min, by_precision)))


def submit_answer(db: Session, session: TestSession, *, position: int, version_id: int,
                  choice: int, response_ms: int | None = None,
                  locale: str | None = None) -> Step:
    """Store one answer and return the next step; resending the same answer is harmless.

    The hot path of a campaign day: the session row (locked by the caller, read with
    the bank revision and the blueprint), then the session update and two inserts (the
    answer, the bank's response row). The item shown is checked against the stored
    next item; the engine chooses the following one once, here. Item contents and the
    engine bank come from the per-worker cache; earlier answers are not loaded.
    """
    locale = locale or session.locale
    if position <= session.n_answered:
        existing = db.execute(sa.select(Answer.item_version_id, Answer.choice).where(
            Answer.session_id == session.id, Answer.position == position)).first()
        if existing is not None:
            if tuple(existing) == (version_id, choice):
                return current_step(db, session, locale)  # a resend: same next step
            raise DeliveryError(409, "conflict", f"position {position} was already answered "
                                                 "differently")
    if session.status != "testing":
        raise DeliveryError(409, "not_testing", f"the session is {session.status}")
    delivery = _delivery(db, session)
    live = delivery.live
    state = engine.TestState.from_dict(session.engine_state)
    shown = _stored_next(session, live)
    if shown is None:  # chosen from an older bank: choose it again
        shown = _pick_next(delivery, state, session.n_answered)
        if shown is None:
            _finish(session, live, delivery.blueprint, state)
            raise DeliveryError(409, "finished", "the test is already finished")
    expected = session.n_answered + 1
    if position != expected or version_id != shown["version"]:
        raise DeliveryError(409, "out_of_order", f"the next question is number "
                                                 f"{expected}, not {position}")
    try:
        with db.no_autoflush:
            _store_answer(db, session, live, delivery, state, position, version_id, choice,
                          response_ms)
    except StaleDataError as exc:  # an ORM flush of the row found another revision
        raise ConcurrentChange(str(exc)) from exc
    except IntegrityError as exc:
        if _is_duplicate(exc):  # another request stored this position first
            raise ConcurrentChange(str(exc)) from exc
        raise
    if session.status == "finished":
        return _finished_step(db, session, locale)
    return _item_step(db, session, live, session.engine_state["next"], locale)


def _is_duplicate(exc: IntegrityError) -> bool:
    """A unique-constraint violation (PostgreSQL 23505, SQLite "UNIQUE constraint")."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate == "23505"
    return "UNIQUE" in str(exc.orig).upper()


#: the session row, if its revision is still the one read (the optimistic lock); a plain
#: UPDATE (the request's transaction commits whatever its session wrote)
_UPDATE_SESSION = (TestSession.__table__.update()
                   .where(TestSession.id == sa.bindparam("b_id"),
                          TestSession.revision == sa.bindparam("b_revision")))
#: a plain INSERT: the ORM's costs three times as much
_INSERT_ANSWER = Answer.__table__.insert()


def _write_session(db: Session, session: TestSession, changes: dict[str, Any]) -> None:
    """UPDATE the session row with ``changes`` and the next revision, unless another request
    changed it since it was read (:class:`ConcurrentChange`); the loaded object then
    holds the same values, as after an ORM flush, in a third of the time."""
    revision = session.revision
    values = {**changes, "revision": revision + 1}
    written = db.connection().execute(_UPDATE_SESSION, {"b_id": session.id,
                                                        "b_revision": revision, **values})
    if written.rowcount != 1:
        raise ConcurrentChange(f"test session {session.id} changed since it was read")
    for key, value in values.items():
        set_committed_value(session, key, value)


def _store_answer(db: Session, session: TestSession, live: LiveBank, delivery: _Delivery,
                  state: Any, position: int, version_id: int, choice: int,
                  response_ms: int | None) -> Any:
    """Write the session (new state with the next item, or the final score), the answer
    and the bank's response row; returns the new state.

    Three statements, without the ORM's unit of work: the session row first (its revision
    check stops a concurrent change), then the two inserts. All three are written before
    this returns: the answer is durable (with the transaction) before the next item is
    sent.
    """
    version = live.content(db, version_id)
    if not 1 <= choice <= len(version.options):
        raise DeliveryError(400, "bad_choice", f"choice must be 1..{len(version.options)}")
    index = live.index_of[version_id]
    is_pilot = bool(live.pilot[index])
    score = version.score(choice)
    state = engine.answer(live.bank, state, index, score)
    now = utcnow()
    if response_ms is None:
        response_ms = int((now - session.last_activity_at).total_seconds() * 1000)
    shown = ((session.engine_state or {}).get("next") or {}).get("remaining")
    changes = {"theta": float(state.theta), "se": float(state.se), "n_answered": position,
               "last_activity_at": now, **_next_changes(delivery, state, position, shown)}
    _write_session(db, session, changes)
    db.connection().execute(_INSERT_ANSWER, {
        "session_id": session.id, "position": position, "item_version_id": version_id,
        "choice": choice, "score": score, "is_pilot": is_pilot,
        "response_ms": max(0, min(response_ms, 86_400_000)),
        "theta_after": float(state.theta), "se_after": float(state.se), "answered_at": now})
    bank.add_response(db, instrument_id=delivery.instrument_id, version=version,
                      respondent=f"t{session.id}", choice=choice, campaign=session.campaign,
                      groups=calibration_groups(session.background), scored=not is_pilot)
    if "answers" in sa.inspect(session).dict:  # a loaded list no longer holds every answer
        db.expire(session, ["answers"])
    return state


def calibration_groups(background: dict[str, str] | None) -> dict[str, str]:
    """The background answers the item bank's copy of an answer keeps for calibration and
    DIF: the group fields, never the street (minimum necessary)."""
    return {k: v for k, v in (background or {}).items() if k != "street"}


def _final_changes(live: LiveBank, blueprint: engine.Blueprint, state: Any) -> dict[str, Any]:
    """The session columns of a finished test: final estimate, reporting-scale score and
    level, stop reason."""
    theta, se, method = engine.final_score(live.bank, blueprint, state)
    calibration = live.calibration
    score = float(calibration.to_scale(theta))
    return {"theta": float(theta), "se": float(se), "final_method": method, "score": score,
            "score_se": float(calibration.se_to_scale(se)),
            "level": calibration.level_for(score)["code"], "status": "finished",
            "stop_reason": engine.should_stop(live.bank, blueprint, state)[1],
            "finished_at": utcnow()}


def _finish(session: TestSession, live: LiveBank, blueprint: engine.Blueprint,
            state: Any) -> None:
    """Finish the session (written by the caller's flush)."""
    for key, value in _final_changes(live, blueprint, state).items():
        setattr(session, key, value)


def result(db: Session, session: TestSession, locale: str) -> dict[str, Any] | None:
    """Score on the reporting scale, level and can-do text, precision, weak-domain advice."""
    if session.status != "finished":
        return None
    live = live_bank(db, session.calibration_id, _read(db, session).revision)
    calibration = live.calibration
    level = next(lv for lv in calibration.levels if lv["code"] == session.level)
    lang = "en" if locale.startswith("en") else "zh"
    return {"score": round(session.score), "score_se": round(session.score_se),
            "margin": round(1.96 * session.score_se), "level": level["code"],
            "level_label": level[f"label_{lang}"], "cando": level[f"cando_{lang}"],
            "theta": session.theta, "se": session.se, "method": session.final_method,
            "answered": session.n_answered,
            "advice": weak_domain_advice(db, session, lang, live=live),
            "demo": calibration.is_demo}


def weak_domain_advice(db: Session, session: TestSession, lang: str, top: int = 2, *,
                       live: LiveBank | None = None) -> list[dict[str, str]]:
    """Domains where the resident scored below what the model expects at their ability."""
    live = live or live_bank(db, session.calibration_id, _read(db, session).revision)
    expected = irt.expected_score(live.params, np.array([session.theta]))[0]
    residual: dict[str, float] = {}
    for version_id, score, is_pilot in db.execute(
            sa.select(Answer.item_version_id, Answer.score, Answer.is_pilot)
            .where(Answer.session_id == session.id).order_by(Answer.position)):
        j = live.index_of.get(version_id)
        if j is None or is_pilot:
            continue
        residual[live.domains[j]] = residual.get(live.domains[j], 0.0) + score - expected[j]
    weak = sorted((r, d) for d, r in residual.items() if r < -0.25)[:top]
    domains = bank.domain_infos(db)
    return [{"domain": d, "name": domains[d].name(lang), "advice": domains[d].advice(lang)}
            for _r, d in weak if d in domains]


# --- withdrawal --------------------------------------------------------------------

WITHDRAW_ACTION = "resident.withdraw"


def forget_bank_copies(db: Session, session_ids: list[int], *, dry_run: bool = False) -> int:
    """Delete the item bank's copies of these sessions' answers (respondent ``t<id>``);
    how many rows."""
    if not session_ids:
        return 0
    return bank.forget_respondents(db, [f"t{i}" for i in session_ids], dry_run=dry_run)


def withdraw(db: Session, session: TestSession) -> int:
    """The resident withdraws from their own link: answers deleted (the item bank's copies
    too), background and scores cleared, the session ended as ``withdrawn``; audited
    without personal data. Returns how many answers were deleted (0 on a repeat).

    The campaign and invitation stay on the empty session, so fieldwork counts the
    invitation as withdrawn (a non-response) rather than inviting the resident again.
    Aggregates already published are not changed.
    """
    if session.status == "withdrawn":
        return 0
    deleted = db.execute(sa.delete(Answer).where(Answer.session_id == session.id)
                         .execution_options(synchronize_session=False)).rowcount or 0
    copies = forget_bank_copies(db, [session.id])
    now = utcnow()
    for key, value in {"background": {}, "engine_state": {}, "n_answered": 0, "theta": None,
                       "se": None, "final_method": None, "score": None, "score_se": None,
                       "level": None, "stop_reason": None, "status": "withdrawn",
                       "finished_at": now, "last_activity_at": now}.items():
        setattr(session, key, value)
    if "answers" in sa.inspect(session).dict:
        set_committed_value(session, "answers", [])
    audit.record(db, actor="resident", action=WITHDRAW_ACTION,
                 target=f"test_session:{session.id}",
                 detail={"kind": "test", "answers_deleted": deleted,
                         "bank_copies_deleted": copies})
    db.flush()
    return deleted


# --- staff look-up -------------------------------------------------------------------

def staff_sessions(db: Session, query: str = "", district: str | None = None,
                   limit: int = 100) -> list[TestSession]:
    """Recent sessions, found by session number, a link token, or campaign.

    ``district`` (district staff): only sessions of that district's campaigns.
    """
    stmt = sa.select(TestSession).order_by(TestSession.id.desc()).limit(limit)
    if query:
        conditions = [TestSession.token_hash == hash_token(query),
                      TestSession.campaign == query]
        if query.isdigit():
            conditions.append(TestSession.id == int(query))
        stmt = stmt.where(sa.or_(*conditions))
    if district is not None:  # the campaign's district; sessions without one: city staff
        stmt = stmt.where(TestSession.district_code == district)
    return list(db.scalars(stmt))


VIEW_ACTION = "assessment.session_view"


def staff_session_detail(db: Session, session_id: int, district: str | None = None, *,
                         viewer: str | None = None, address: str = ""
                         ) -> tuple[TestSession, list[tuple[Answer, bank.VersionContent]]]:
    """A session with each answer and the item version shown (district staff: their own).

    ``viewer``: the staff user who opens it; the opening is audited
    (``assessment.session_view``, the session id, no personal data).
    """
    session = db.get(TestSession, session_id)
    if session is None or (district is not None and session.district_code != district):
        raise DeliveryError(404, "unknown_session", "no such session")
    if viewer is not None:
        audit.record(db, actor=viewer, action=VIEW_ACTION, target=f"test_session:{session.id}",
                     address=address, detail={"answers": len(session.answers),
                                              "scope": district or "city"})
    contents = bank.version_contents(db, [a.item_version_id for a in session.answers])
    return session, [(a, contents[a.item_version_id]) for a in session.answers]
