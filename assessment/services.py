"""Delivering the adaptive test: one service behind both the pages and the JSON API.

Every answer is stored (with the item version, position, score, time and the
estimate after it) before the next item is chosen; resending an answer returns
the same next step; a different answer at an answered position is a conflict.
The session row carries an optimistic-lock revision, so two tabs or two workers
cannot both advance it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from pyramid_retry import IRetryableError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError
from zope.interface import implementer

from itembank import services as bank_services
from itembank.models import (
    Calibration,
    CalibrationItem,
    Domain,
    Instrument,
    Item,
    ItemStatusChange,
    ItemVersion,
)
from itembank.scale import level_for, se_to_scale, to_scale
from learningcity.db import utcnow
from scoring import models as irt
from scoring.params import ItemParams

from . import engine
from .models import Answer, TestSession

TOKEN_BYTES = 24  # 192 bits, URL-safe
BACKGROUND_FIELDS = ("age_band", "sex", "district", "street", "occupation", "education")
DEFAULT_IDLE_MINUTES = 60


@implementer(IRetryableError)
class ConcurrentChange(Exception):
    """Another request changed the same session at the same moment; retry the request.

    pyramid_retry runs the request again in a fresh transaction, which then sees the
    other request's answer and answers as for a resend (same step) or a conflict (409).
    """


class DeliveryError(Exception):
    """A resident's request that cannot be carried out; ``status`` is the HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --- the bank as the engine sees it ---------------------------------------------

@dataclass
class LiveBank:
    """A published calibration turned into an engine bank, cached per calibration id."""

    calibration: Calibration
    bank: Any
    params: ItemParams
    version_ids: list[int]
    codes: list[str]
    domains: list[str]
    pilot: np.ndarray
    levels: list[dict] = field(default_factory=list)
    #: item version id -> its immutable content (versions never change once stored)
    contents: dict[int, ItemContent] = field(default_factory=dict)
    #: item version id -> its index in the engine bank
    index_of: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index_of = {v: j for j, v in enumerate(self.version_ids)}

    def content(self, db: Session, version_id: int) -> ItemContent:
        """An item version's content, read from the database once per worker."""
        found = self.contents.get(version_id)
        if found is None:
            found = ItemContent.of(db.get(ItemVersion, version_id))
            self.contents[version_id] = found
        return found


@dataclass(frozen=True)
class ItemContent:
    """The parts of an immutable :class:`ItemVersion` the answer path needs, kept per worker."""

    id: int
    item_id: int
    stem_zh: str
    stem_en: str
    options: tuple[dict, ...]
    key: int | None
    reverse: bool
    media: str | None

    @classmethod
    def of(cls, version: ItemVersion) -> ItemContent:
        return cls(id=version.id, item_id=version.item_id, stem_zh=version.stem_zh,
                   stem_en=version.stem_en, options=tuple(dict(o) for o in version.options),
                   key=version.key, reverse=bool(version.reverse), media=version.media)

    # the same answers as ItemVersion's methods (so itembank.record_response accepts it)
    stem = ItemVersion.stem
    option_texts = ItemVersion.option_texts
    score = ItemVersion.score


_cache: dict[tuple[int, int, int], LiveBank] = {}
_cache_lock = threading.Lock()


def _bank_revision(db: Session) -> tuple[int, int]:
    """Changes whenever an item changes status or gets a new version (two cheap maxima).

    One round trip: both maxima come back in one row.
    """
    row = db.execute(sa.select(
        sa.select(sa.func.max(ItemStatusChange.id)).scalar_subquery(),
        sa.select(sa.func.max(ItemVersion.id)).scalar_subquery())).one()
    return (row[0] or 0, row[1] or 0)


def live_bank(db: Session, calibration_id: int) -> LiveBank:
    """The engine bank for a calibration plus the instrument's current pilot items.

    Calibrations never change once stored, and item changes bump the bank revision,
    so the bank is built once per process and revision; a request costs two small
    queries.
    """
    key = (calibration_id, *_bank_revision(db))
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    calibration = db.scalar(
        sa.select(Calibration).where(Calibration.id == calibration_id)
        .options(selectinload(Calibration.items).selectinload(CalibrationItem.item)
                 .selectinload(Item.versions)))
    instrument = db.get(Instrument, calibration.instrument_id)
    rows = [r for r in calibration.items if r.item.status == "operational"]
    calibrated = {r.item_id for r in calibration.items}
    pilot_items = db.scalars(sa.select(Item).where(
        Item.status == "pilot", Item.type == instrument.item_type,
        Item.id.not_in(calibrated)).options(selectinload(Item.versions))
        .order_by(Item.code)).all()
    pilot_versions = [i.current.id for i in pilot_items]
    versions = {r.item_id: r.item.current.id for r in rows}
    params = bank_services.calibration_params(calibration)
    keep = [j for j, r in enumerate(calibration.items) if r.item.status == "operational"]
    params = params.subset(keep)
    codes = [r.item.code for r in rows] + [i.code for i in pilot_items]
    domains = [r.item.domain_code for r in rows] + [i.domain_code for i in pilot_items]
    if pilot_items:
        k = int(params.max_categories) - 1
        placeholder = ItemParams.from_arrays(
            item_ids=[i.code for i in pilot_items], model=str(params.model[0]),
            a=np.ones(len(pilot_items)), b=np.zeros((len(pilot_items), max(k, 1)))[:, :k]
            if k > 1 else np.zeros(len(pilot_items)))
        params = params.concat(placeholder)
    pilot = np.array([False] * len(rows) + [True] * len(pilot_items))
    blueprint = engine.Blueprint.from_dict(instrument.blueprint or {})
    bank = engine.Bank(params, domains=domains, pilot=[c for c, p in zip(codes, pilot) if p],
                       blueprint=blueprint)
    contents = {i.current.id: ItemContent.of(i.current)
                for i in [r.item for r in rows] + list(pilot_items)}
    live = LiveBank(calibration=calibration, bank=bank, params=params,
                    version_ids=[versions[r.item_id] for r in rows] + pilot_versions,
                    codes=codes, domains=domains, pilot=pilot, levels=calibration.levels,
                    contents=contents)
    db.expunge(calibration)  # cached across requests: detach from this session
    with _cache_lock:
        stale = [k for k in _cache if k[0] == calibration_id or len(_cache) >= 16]
        for k in stale:
            del _cache[k]
        _cache[key] = live
    return live


# --- sessions --------------------------------------------------------------------

def start_session(db: Session, instrument_code: str, *, locale: str = "zh_CN",
                  consent: bool, background: dict[str, str] | None = None,
                  campaign: str | None = None, invitation: str | None = None
                  ) -> tuple[str, TestSession]:
    """Open a session after consent; returns the link token (shown once) and the session."""
    if not consent:
        raise DeliveryError(400, "consent_required",
                            "the test starts only after you agree to the consent statement")
    instrument = db.scalar(sa.select(Instrument).where(Instrument.code == instrument_code))
    if instrument is None:
        raise DeliveryError(404, "unknown_instrument", f"no instrument {instrument_code!r}")
    if instrument.published_calibration_id is None:
        raise DeliveryError(503, "not_ready", "this test has no published calibration yet")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    seed = secrets.randbits(62)
    session = TestSession(token_hash=hash_token(token), instrument_id=instrument.id,
                          calibration_id=instrument.published_calibration_id,
                          campaign=campaign, invitation=invitation, locale=locale,
                          background={}, seed=seed, consented_at=utcnow(),
                          status="background")
    db.add(session)
    live = live_bank(db, session.calibration_id)
    blueprint = engine.Blueprint.from_dict(instrument.blueprint or {})
    state = engine.start(live.bank, blueprint, seed=seed)
    session.engine_state = state.to_dict()
    session.theta, session.se = float(state.theta), float(state.se)
    if background is not None:
        set_background(db, session, background, instrument)
    db.flush()
    return token, session


def required_background(instrument: Instrument) -> list[str]:
    return [f for f in (instrument.blueprint or {}).get("background", [])
            if f in BACKGROUND_FIELDS]


def set_background(db: Session, session: TestSession, answers: dict[str, str],
                   instrument: Instrument | None = None) -> None:
    """Store the background answers the blueprint asks for; then the test begins."""
    instrument = instrument or db.get(Instrument, session.instrument_id)
    clean = {k: str(v).strip()[:64] for k, v in answers.items()
             if k in BACKGROUND_FIELDS and str(v).strip()}
    session.background = {**(session.background or {}), **clean}
    group_field = ((instrument.blueprint or {}).get("start") or {}).get("group_field")
    if group_field and session.background.get(group_field) and not session.answers:
        # start rule: the prior of the resident's group (e.g. by age band), when the
        # blueprint defines one; the engine falls back to the general prior otherwise
        live = live_bank(db, session.calibration_id)
        blueprint = engine.Blueprint.from_dict(instrument.blueprint or {})
        state = engine.start(live.bank, blueprint, seed=session.seed,
                             prior=session.background[group_field])
        session.engine_state = state.to_dict()
        session.theta, session.se = float(state.theta), float(state.se)
    session.status = "testing"
    session.last_activity_at = utcnow()


def find_session(db: Session, token: str, *, for_update: bool = False,
                 idle_minutes: int = DEFAULT_IDLE_MINUTES) -> TestSession:
    """The session behind a link token; expires it when idle too long (answers kept)."""
    query = sa.select(TestSession).where(TestSession.token_hash == hash_token(token))
    if for_update:
        query = query.with_for_update()
    session = db.scalar(query)
    if session is None:
        raise DeliveryError(404, "unknown_session", "this test link is not valid")
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


def _blueprint(db: Session, session: TestSession) -> Any:
    instrument = db.get(Instrument, session.instrument_id)
    return engine.Blueprint.from_dict(instrument.blueprint or {})


def current_step(db: Session, session: TestSession, locale: str | None = None) -> Step:
    """The next step of a session, computed from the stored state only."""
    locale = locale or session.locale
    answered = session.n_answered
    if session.status in ("consent", "background", "expired"):
        return Step(session.status, answered + 1, answered, 0)
    if session.status == "finished":
        return Step("finished", answered + 1, answered, 0, result=result(db, session, locale))
    live = live_bank(db, session.calibration_id)
    blueprint = _blueprint(db, session)
    state = engine.TestState.from_dict(session.engine_state)
    return _next_step(db, session, live, blueprint, state, locale)


def _next_step(db: Session, session: TestSession, live: LiveBank, blueprint: Any,
               state: Any, locale: str) -> Step:
    """The item to show next (or the result, finishing the session when the test stops)."""
    answered = session.n_answered
    choice = engine.next_item(live.bank, blueprint, state)
    if choice is None:
        _finish(db, session, live, blueprint, state)
        return Step("finished", answered + 1, answered, 0, result=result(db, session, locale))
    version = live.content(db, live.version_ids[choice.index])
    item = {"position": answered + 1, "version": version.id, "code": live.codes[choice.index],
            "stem": version.stem(locale), "options": version.option_texts(locale),
            "media": version.media, "domain": live.domains[choice.index]}
    return Step("testing", answered + 1, answered, _remaining(blueprint, state, answered),
                item=item)


def _remaining(blueprint: Any, state: Any, answered: int) -> int:
    """An honest estimate of how many items are left, from the information gained so far."""
    n_scored = max(1, int(getattr(state, "n_scored", answered)))
    left_max = max(0, blueprint.max_items - n_scored)
    left_min = max(0, blueprint.min_items - n_scored)
    prior_info = 1.0
    gained = max(1e-6, 1.0 / max(state.se, 1e-6) ** 2 - prior_info)
    needed = 1.0 / blueprint.se_target ** 2 - 1.0 / max(state.se, 1e-6) ** 2
    by_precision = math.ceil(max(0.0, needed) / (gained / n_scored)) if answered else left_max
    return int(min(left_max, max(left_min, by_precision)))


def submit_answer(db: Session, session: TestSession, *, position: int, version_id: int,
                  choice: int, response_ms: int | None = None,
                  locale: str | None = None) -> Step:
    """Store one answer and return the next step; resending the same answer is harmless.

    The hot path of a campaign day: the session row (locked by the caller), one
    revision query, the instrument, two inserts and one update; item contents and
    the engine bank come from the per-worker cache, and earlier answers are not loaded.
    """
    locale = locale or session.locale
    if position <= session.n_answered:
        existing = db.scalar(sa.select(Answer).where(Answer.session_id == session.id,
                                                     Answer.position == position))
        if existing is not None:
            if existing.item_version_id == version_id and existing.choice == choice:
                return current_step(db, session, locale)  # a resend: same next step
            raise DeliveryError(409, "conflict", f"position {position} was already answered "
                                                 "differently")
    if session.status != "testing":
        raise DeliveryError(409, "not_testing", f"the session is {session.status}")
    live = live_bank(db, session.calibration_id)
    instrument = db.get(Instrument, session.instrument_id)
    blueprint = engine.Blueprint.from_dict(instrument.blueprint or {})
    state = engine.TestState.from_dict(session.engine_state)
    shown = engine.next_item(live.bank, blueprint, state)
    if shown is None:
        _finish(db, session, live, blueprint, state)
        raise DeliveryError(409, "finished", "the test is already finished")
    expected = session.n_answered + 1
    if position != expected or version_id != live.version_ids[shown.index]:
        raise DeliveryError(409, "out_of_order", f"the next question is number "
                                                 f"{expected}, not {position}")
    try:
        with db.no_autoflush:
            state = _store_answer(db, session, live, instrument, state, position, version_id,
                                  choice, response_ms)
    except StaleDataError as exc:
        raise ConcurrentChange(str(exc)) from exc
    except IntegrityError as exc:
        if _is_duplicate(exc):  # another request stored this position first
            raise ConcurrentChange(str(exc)) from exc
        raise
    return _next_step(db, session, live, blueprint, state, locale)


def _is_duplicate(exc: IntegrityError) -> bool:
    """A unique-constraint violation (PostgreSQL 23505, SQLite "UNIQUE constraint")."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate == "23505"
    return "UNIQUE" in str(exc.orig).upper()


def _store_answer(db: Session, session: TestSession, live: LiveBank, instrument: Instrument,
                  state: Any, position: int, version_id: int, choice: int,
                  response_ms: int | None) -> Any:
    """Write the answer, the bank's response row and the new state; returns the state."""
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
    db.add(Answer(session_id=session.id, position=position, item_version_id=version_id,
                  choice=choice, score=score, is_pilot=is_pilot,
                  response_ms=max(0, min(response_ms, 86_400_000)),
                  theta_after=float(state.theta), se_after=float(state.se), answered_at=now))
    bank_services.record_response(db, instrument=instrument, version=version,
                                  respondent=f"t{session.id}", choice=choice,
                                  campaign=session.campaign, groups=session.background,
                                  scored=not is_pilot)
    session.engine_state = state.to_dict()
    session.theta, session.se = float(state.theta), float(state.se)
    session.n_answered = position
    session.last_activity_at = now
    db.flush()  # the answer is durable (with the transaction) before the next item is sent
    return state


def _finish(db: Session, session: TestSession, live: LiveBank, blueprint: Any,
            state: Any) -> None:
    theta, se, method = engine.final_score(live.bank, blueprint, state)
    calibration = live.calibration
    session.theta, session.se, session.final_method = float(theta), float(se), method
    session.score = float(to_scale(theta, calibration.scale_mean, calibration.scale_sd,
                                   calibration.link_a, calibration.link_b))
    session.score_se = float(se_to_scale(se, calibration.scale_sd, calibration.link_a))
    session.level = level_for(session.score, calibration.levels)["code"]
    session.status = "finished"
    session.stop_reason = engine.should_stop(live.bank, blueprint, state)[1]
    session.finished_at = utcnow()
    db.flush()


def result(db: Session, session: TestSession, locale: str) -> dict[str, Any] | None:
    """Score on the reporting scale, level and can-do text, precision, weak-domain advice."""
    if session.status != "finished":
        return None
    calibration = db.get(Calibration, session.calibration_id)
    level = next(lv for lv in calibration.levels if lv["code"] == session.level)
    lang = "en" if locale.startswith("en") else "zh"
    return {"score": round(session.score), "score_se": round(session.score_se),
            "margin": round(1.96 * session.score_se), "level": level["code"],
            "level_label": level[f"label_{lang}"], "cando": level[f"cando_{lang}"],
            "theta": session.theta, "se": session.se, "method": session.final_method,
            "answered": len(session.answers),
            "advice": weak_domain_advice(db, session, lang),
            "demo": calibration.is_demo}


def weak_domain_advice(db: Session, session: TestSession, lang: str, top: int = 2
                       ) -> list[dict[str, str]]:
    """Domains where the resident scored below what the model expects at their ability."""
    live = live_bank(db, session.calibration_id)
    index = {v: j for j, v in enumerate(live.version_ids)}
    residual: dict[str, float] = {}
    for a in session.answers:
        j = index.get(a.item_version_id)
        if j is None or a.is_pilot:
            continue
        expected = float(irt.expected_score(live.params.subset([j]),
                                            np.array([session.theta]))[0, 0])
        residual[live.domains[j]] = residual.get(live.domains[j], 0.0) + a.score - expected
    weak = sorted((r, d) for d, r in residual.items() if r < -0.25)[:top]
    domains = {d.code: d for d in db.scalars(sa.select(Domain))}
    return [{"domain": d, "name": domains[d].name(lang),
             "advice": domains[d].advice_en if lang == "en" else domains[d].advice_zh}
            for _r, d in weak if d in domains]


# --- staff look-up -------------------------------------------------------------------

def staff_sessions(db: Session, query: str = "", district: str | None = None,
                   limit: int = 100) -> list[TestSession]:
    """Recent sessions, found by session number, a link token, or campaign."""
    stmt = sa.select(TestSession).order_by(TestSession.id.desc()).limit(limit)
    if query:
        conditions = [TestSession.token_hash == hash_token(query),
                      TestSession.campaign == query]
        if query.isdigit():
            conditions.append(TestSession.id == int(query))
        stmt = stmt.where(sa.or_(*conditions))
    sessions = db.scalars(stmt).all()
    if district is not None:
        sessions = [s for s in sessions if (s.background or {}).get("district") == district]
    return sessions


def staff_session_detail(db: Session, session_id: int, district: str | None = None
                         ) -> tuple[TestSession, list[tuple[Answer, ItemVersion]]]:
    session = db.get(TestSession, session_id)
    if session is None or (district is not None
                           and (session.background or {}).get("district") != district):
        raise DeliveryError(404, "unknown_session", "no such session")
    answers = [(a, db.get(ItemVersion, a.item_version_id)) for a in session.answers]
    return session, answers
