"""Residents entering a campaign with an invitation code: look-up, window, start and resume.

One service behind the pages (``/i``, ``/i/{code}``) and the API
(``POST /api/v1/invitations/redeem``); views only parse and render.

* **Look-up and throttling.** A code is looked up by its hash
  (:func:`monitoring.invitations.find_invitation`); unknown, malformed and void codes get
  the same answer (404), so nobody learns which codes exist. Every failure is audited as
  ``invitation_failed`` with the address, never the code typed. Every attempt is
  counted per address *before* the look-up (``learningcity.throttle``, atomic across
  workers and servers; a right code gives its attempt back): after ``THROTTLE_LIMIT``
  the address must wait a delay that doubles (:data:`CODE_POLICY`); while it waits it
  is refused (429 with Retry-After), even for a correct code.
* **Window.** Answers are accepted only while the campaign is ``ready`` and
  ``opens_at <= now < closes_at`` (stored in UTC, shown in the campaign's time zone,
  Asia/Shanghai); otherwise nothing is started or stored. :func:`campaign_gate` is the
  same rule for sessions already running: the app registers it in the registry list
  ``session_gates`` that the test and survey answer views call before accepting.
* **Resume without stored tokens.** Only token hashes are stored, so the session link
  tokens of an invitation are *derived* from the code with an HMAC keyed by the app
  secret (:func:`derived_token`). Entering the same code again recomputes the same
  tokens and finds the same sessions; without the code (or the secret) nobody can. The
  survey after the test uses the survey package's own derivation
  (``surveys.services.after_test_token`` of the test token), so the result page's
  "continue to the survey" link and a re-entered code lead to the same survey session.
* **Status.** issued -> started (first session created) -> completed (every instrument
  of the campaign finished). :func:`refresh_statuses` recomputes it from the sessions;
  entry, weighting, the respondent table and progress call it, so it is correct
  whichever path finished an instrument.
"""
from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from assessment import services as tests
from assessment import sessions as test_sessions
from assessment.sessions import TestSessionInfo
from learningcity import audit, throttle
from learningcity.db import utcnow
from learningcity.districts import get_district
from learningcity.i18n import _
from learningcity.people import CHOICES
from learningcity.tokens import derive_token
from monitoring.fieldwork.invitations import (
    ALPHABET,
    find_invitation,
    generate_code,
    hash_code,
    normalise_code,
)
from monitoring.fieldwork.models import Campaign, CampaignStratum, Invitation
from monitoring.fieldwork.window import answering_ended_at, local_text, window_state
from surveys import services as surveys
from surveys.services import SurveySessionInfo

THROTTLE_LIMIT = 10
#: per address: 10 free attempts, then 1 s doubling up to 15 minutes, one forgiven per
#: minute (a community centre's typos never add up; a guesser gets about one a minute)
CODE_POLICY = throttle.Policy(free=THROTTLE_LIMIT, base_s=1, cap_s=900, leak_s=60)
CODE_SCOPE = "code-addr"
FAILED_ACTION = "invitation_failed"
THROTTLED_ACTION = "invitation_throttled"
ENROLLED_ACTION = "invitation_enrolled"
#: self-enrolments accepted from one address per ENROL_WINDOW (open campaigns)
ENROL_LIMIT = 20
ENROL_WINDOW = dt.timedelta(hours=1)
#: background answers of the ability test (assessment/background.py) a prefill may give
BACKGROUND_FIELDS = ("age_band", "sex", "district", "street", "occupation", "education")

#: refusal messages of :func:`campaign_gate` (translated where they are shown)
CLOSED_MESSAGE = _("This campaign has closed, so no more answers can be accepted. "
                   "Thank you for your interest.")
NOT_OPEN_MESSAGE = _("This campaign has not opened yet, so no answers can be accepted "
                     "yet. Please come back when it opens.")


class EntryRefused(Exception):
    """A code that cannot be used now; ``status`` is the HTTP status, ``code`` the reason.

    ``not_found`` (404), ``throttled`` (429, ``retry_after`` seconds), ``not_yet_open``
    or ``campaign_closed`` (409, with the campaign's window), ``consent_required`` (400).
    """

    def __init__(self, status: int, code: str, message: str, *,
                 campaign: Campaign | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.campaign, self.retry_after = campaign, retry_after
        #: when answering stopped: the close for a campaign closed before its window
        #: ended, else the window's end (what a resident is told, never a future date)
        self.ended_at = answering_ended_at(campaign) if campaign is not None else None

    def details(self) -> list[dict[str, Any]]:
        """What an API client may show: the window (ISO 8601, UTC), when answering stopped
        (``ended_at``, for a closed campaign) or the wait."""
        out: dict[str, Any] = {}
        if self.campaign is not None:
            out.update(opens_at=_iso(self.campaign.opens_at),
                       closes_at=_iso(self.campaign.closes_at),
                       timezone=self.campaign.timezone)
            if self.code == "campaign_closed" and self.ended_at is not None:
                out["ended_at"] = _iso(self.ended_at)
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        return [out] if out else []


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return _aware(moment).astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------ throttling

def record_failure(db: Session, address: str) -> None:
    """Audit a wrong code: the address and the time, never what was typed."""
    audit.record(db, actor="resident", action=FAILED_ACTION, target="", address=address,
                     detail={})
    db.flush()


# ------------------------------------------------------------------ look-up and window

def check_window(campaign: Campaign, now: dt.datetime | None = None) -> None:
    """Raise :class:`EntryRefused` unless the campaign accepts answers now."""
    if campaign.status == "closed":
        raise EntryRefused(409, "campaign_closed",
                           f"the campaign closed at "
                           f"{local_text(answering_ended_at(campaign), campaign.timezone)} "
                           f"({campaign.timezone})", campaign=campaign)
    state = window_state(campaign, now)
    if campaign.status != "ready" or state == "not_yet_open":
        raise EntryRefused(409, "not_yet_open",
                           f"the campaign opens at {local_text(campaign.opens_at)} "
                           f"({campaign.timezone})", campaign=campaign)
    if state == "ended":
        raise EntryRefused(409, "campaign_closed",
                           f"the campaign closed at "
                           f"{local_text(campaign.closes_at, campaign.timezone)} "
                           f"({campaign.timezone})", campaign=campaign)


def lookup(db: Session, code: str, address: str, now: dt.datetime | None = None, *,
           secret: str, policies: Mapping[str, throttle.Policy] | None = None
           ) -> Invitation:
    """The usable invitation behind a typed or scanned code.

    Order matters: the attempt is counted first (so a waiting address learns nothing,
    even with a correct code), then the code, then the campaign's window. ``policies``
    may override :data:`CODE_POLICY` (the settings' ``learningcity.throttle.code-addr``).
    """
    policies = {CODE_SCOPE: CODE_POLICY, **(policies or {})}
    try:
        throttle.attempt(db, [(CODE_SCOPE, address)], policies, now)
    except throttle.Throttled as exc:
        wait = exc.retry_after
        audit.record(db, actor="resident", action=THROTTLED_ACTION, target="",
                         address=address, detail={"retry_after": wait})
        db.flush()
        raise EntryRefused(429, "throttled", "too many wrong codes from this address; "
                           f"try again in {wait} seconds", retry_after=wait) from None
    invitation = find_invitation(db, code, secret) if code else None
    if invitation is None:
        record_failure(db, address)
        raise EntryRefused(404, "not_found", "no invitation with this code")
    throttle.refund(db, [(CODE_SCOPE, address)], policies, now)
    check_window(db.get(Campaign, invitation.campaign_id), now)
    return invitation


def campaign_gate(db: Session, campaign_code: str | None) -> str | None:
    """The ``session_gates`` hook: a refusal message when a session's campaign accepts
    no answers now (closed, or outside its window), else None (also for no campaign)."""
    if not campaign_code:
        return None
    campaign = db.scalar(sa.select(Campaign).where(Campaign.code == campaign_code))
    if campaign is None:
        return None
    try:
        check_window(campaign)
    except EntryRefused as exc:
        return NOT_OPEN_MESSAGE if exc.code == "not_yet_open" else CLOSED_MESSAGE
    return None


# ------------------------------------------------------------------ derived tokens

def derived_token(secret: str, code: str, purpose: str) -> str:
    """A session link token derived from the invitation code (HMAC-SHA256, 256 bits,
    URL-safe, 43 characters); ``purpose`` is ``test`` or ``survey``."""
    if not secret:
        raise ValueError("the app secret is empty: cannot derive session tokens")
    return derive_token(secret, f"invitation-{purpose}", normalise_code(code))


# ------------------------------------------------------------------ state and start

@dataclass
class EntryState:
    """Where a resident stands: the sessions found (with their link tokens) and what next.

    ``next`` is ``consent`` (nothing started yet), ``test``, ``survey`` or ``done``.
    """

    invitation: Invitation
    campaign: Campaign
    instruments: list[str]
    test_token: str | None = None
    test_session: Any = None
    survey_token: str | None = None
    survey_session: Any = None
    next: str = "consent"
    created: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.invitation.status


def instruments_of(campaign: Campaign) -> list[str]:
    """The campaign's instruments in the order residents take them."""
    return [name for name, present in (("test", campaign.test_instrument),
                                       ("survey", campaign.survey_code)) if present]


def background_prefill(db: Session, prefill: dict[str, Any]) -> dict[str, str]:
    """The invitation's prefill values that are valid answers of the test's background
    questions (choice codes of assessment/background.py, a known district, a street)."""
    out: dict[str, str] = {}
    for name in BACKGROUND_FIELDS:
        value = str((prefill or {}).get(name, "") or "").strip()
        if not value:
            continue
        if name in CHOICES and value not in {code for code, _label in CHOICES[name][1]}:
            continue
        if name == "district" and get_district(db, value) is None:
            continue
        out[name] = value[:64]
    return out


def _test_session(db: Session, token: str) -> TestSessionInfo | None:
    return test_sessions.session_by_token(db, token)


def _survey_session(db: Session, token: str) -> SurveySessionInfo | None:
    return surveys.session_by_token(db, token)


def resolve(db: Session, invitation: Invitation, code: str, secret: str) -> EntryState:
    """Find the invitation's sessions (nothing is created) and what the resident does next."""
    campaign = db.get(Campaign, invitation.campaign_id)
    state = EntryState(invitation=invitation, campaign=campaign,
                       instruments=instruments_of(campaign))
    if campaign.test_instrument:
        state.test_token = derived_token(secret, code, "test")
        state.test_session = _test_session(db, state.test_token)
        if campaign.survey_code:
            state.survey_token = surveys.after_test_token(secret, state.test_token)
            state.survey_session = _survey_session(db, state.survey_token)
    elif campaign.survey_code:
        state.survey_token = derived_token(secret, code, "survey")
        state.survey_session = _survey_session(db, state.survey_token)
    _link(invitation, state)
    refresh_status(db, invitation, campaign)
    state.next = _next(state)
    return state


def _next(state: EntryState) -> str:
    if campaign_has(state, "test"):
        if state.test_session is None:
            return "consent"
        if state.test_session.status != "finished":
            return "test"
    if campaign_has(state, "survey"):
        if state.survey_session is None:
            return "consent" if not campaign_has(state, "test") else "survey"
        if state.survey_session.status != "finished":
            return "survey"
    return "done"


def campaign_has(state: EntryState, instrument: str) -> bool:
    return instrument in state.instruments


def _link(invitation: Invitation, state: EntryState) -> None:
    if state.test_session is not None and invitation.test_session_id is None:
        invitation.test_session_id = state.test_session.id
    if state.survey_session is not None and invitation.survey_session_id is None:
        invitation.survey_session_id = state.survey_session.id


def enter(db: Session, invitation: Invitation, code: str, secret: str, *,
          locale: str = "zh_CN", consent: bool = False) -> EntryState:
    """Start (or resume) the campaign's instruments in order and return where to go.

    The test is started on the resident's consent with background answers prefilled from
    the invitation (the background form still appears when the prefill does not cover
    every question the test asks); the survey follows a finished test (or starts at once
    in a survey-only campaign) with the invitation's and the test's answers prefilled.
    The caller has already checked the window (:func:`lookup`).
    """
    state = resolve(db, invitation, code, secret)
    campaign = state.campaign
    locale = "en" if str(locale).startswith("en") else "zh_CN"
    if state.next == "consent":
        if not consent:
            raise EntryRefused(400, "consent_required",
                               "the resident must agree to the consent statement first",
                               campaign=campaign)
        if campaign.test_instrument:
            state.test_session = tests.start_campaign_session(
                db, campaign.test_instrument, token=state.test_token, campaign=campaign.code,
                invitation=invitation.public_id, locale=locale,
                prefill=background_prefill(db, invitation.prefill or {}),
                district=campaign.district_code)
            state.created.append("test")
        else:
            state.survey_session = _start_survey(db, campaign, invitation, state.survey_token,
                                                 locale, test_session=None)
            state.created.append("survey")
    if state.next in ("consent", "survey") and campaign.test_instrument and \
            campaign.survey_code and state.survey_session is None and \
            state.test_session is not None and state.test_session.status == "finished":
        state.survey_session = _start_survey(db, campaign, invitation, state.survey_token,
                                             locale, test_session=state.test_session,
                                             test_token=state.test_token, secret=secret)
        state.created.append("survey")
    _link(invitation, state)
    if invitation.status == "issued":
        invitation.status = "started"
        invitation.first_used_at = utcnow()
    refresh_status(db, invitation, campaign)
    state.next = _next(state)
    db.flush()
    return state


def _start_survey(db: Session, campaign: Campaign, invitation: Invitation, token: str,
                  locale: str, *, test_session: Any, test_token: str | None = None,
                  secret: str = "") -> SurveySessionInfo:
    if test_session is not None and test_token is not None:
        # the survey package's own after-test flow: same token as its result-page link
        session, _token, _created = surveys.start_session_after_test(
            db, test_token, secret, survey_code=campaign.survey_code, locale=locale)
        return session
    return surveys.start_campaign_session(
        db, campaign.survey_code, token=token, campaign=campaign.code,
        invitation=invitation.public_id, locale=locale,
        prefill=dict(invitation.prefill or {}), district=campaign.district_code)


# ------------------------------------------------------------------ status

def _finished_instruments(db: Session, campaign: Campaign, public_ids: list[str]
                          ) -> dict[str, set[str]]:
    """public_id -> the instruments finished in the campaign's sessions.

    One invitation is looked up by its id; many are read campaign-wide (no huge IN list).
    """
    out: dict[str, set[str]] = {p: set() for p in public_ids}
    if not public_ids:
        return out
    if campaign.test_instrument:
        for pid in test_sessions.finished_invitations(db, campaign.code, public_ids):
            out[pid].add("test")
    if campaign.survey_code:
        for pid in surveys.finished_invitations(db, campaign.code, public_ids):
            out[pid].add("survey")
    return out


def _apply_status(invitation: Invitation, finished: set[str], needed: set[str]) -> bool:
    if invitation.status in ("void", "completed"):
        return False
    if needed and needed <= finished:
        invitation.status = "completed"
        invitation.completed_at = utcnow()
        invitation.first_used_at = invitation.first_used_at or invitation.completed_at
        return True
    if finished and invitation.status == "issued":
        invitation.status = "started"
        invitation.first_used_at = utcnow()
        return True
    return False


def refresh_status(db: Session, invitation: Invitation, campaign: Campaign | None = None
                   ) -> str:
    """Recompute one invitation's status from its sessions; returns it."""
    campaign = campaign or db.get(Campaign, invitation.campaign_id)
    finished = _finished_instruments(db, campaign, [invitation.public_id])
    _apply_status(invitation, finished.get(invitation.public_id, set()),
                  set(instruments_of(campaign)))
    return invitation.status


def _withdrawn_respondents(db: Session, campaign: Campaign) -> int:
    """Completed invitations whose resident withdrew a session go back to started (a
    non-respondent), so no respondent without answers reaches the weights; how many."""
    withdrawn: set[str] = set()
    if campaign.test_instrument:
        withdrawn |= test_sessions.withdrawn_invitations(db, campaign.code)
    if campaign.survey_code:
        withdrawn |= surveys.withdrawn_invitations(db, campaign.code)
    if not withdrawn:
        return 0
    reopened = db.scalars(sa.select(Invitation).where(
        Invitation.campaign_id == campaign.id, Invitation.status == "completed",
        Invitation.public_id.in_(sorted(withdrawn)))).all()
    for invitation in reopened:
        invitation.status, invitation.completed_at = "started", None
    return len(reopened)


def refresh_statuses(db: Session, campaign: Campaign,
                     finished: Mapping[str, set[str]] | None = None) -> int:
    """Recompute every invitation's status of a campaign (for progress, weights and the
    respondent table); returns how many changed. A completed invitation whose session
    was withdrawn goes back to started (a non-respondent) until the campaign closes.

    ``finished`` (public id -> instruments finished) is what the caller has already read
    of the sessions (closing does); without it the sessions are looked up here.
    """
    invitations = db.scalars(sa.select(Invitation).where(
        Invitation.campaign_id == campaign.id,
        Invitation.status.in_(("issued", "started")))
        .execution_options(populate_existing=True)).all()
    if finished is None:
        finished = _finished_instruments(db, campaign, [i.public_id for i in invitations])
    needed = set(instruments_of(campaign))
    changed = sum(_apply_status(i, finished.get(i.public_id, set()), needed)
                  for i in invitations)
    if campaign.status != "closed":  # once closed, the respondents are frozen
        changed += _withdrawn_respondents(db, campaign)
    db.flush()
    return changed


# ------------------------------------------------------------------ open enrolment

@dataclass
class JoinForm:
    """What an open campaign asks before enrolling: its stratum variables and choices."""

    campaign: Campaign
    variables: list[str]
    choices: dict[str, list[str]]


def open_campaign(db: Session, code: str, now: dt.datetime | None = None) -> Campaign:
    """The open-enrolment campaign behind a public link, checked against its window."""
    campaign = db.scalar(sa.select(Campaign).where(Campaign.code == code))
    if campaign is None or campaign.mode != "open":
        raise EntryRefused(404, "not_found", "no open campaign with this link")
    check_window(campaign, now)
    return campaign


def join_form(db: Session, campaign: Campaign) -> JoinForm:
    """The stratum variables of an open campaign with the values its strata use."""
    strata = db.scalars(sa.select(CampaignStratum).where(
        CampaignStratum.campaign_id == campaign.id).order_by(CampaignStratum.stratum)).all()
    variables = list(((campaign.design or {}).get("frame") or {}).get("stratum_columns") or [])
    if not variables:
        variables = sorted({k for s in strata for k in (s.values or {})})
    choices = {v: sorted({str((s.values or {}).get(v)) for s in strata
                          if (s.values or {}).get(v) is not None}) for v in variables}
    return JoinForm(campaign=campaign, variables=variables, choices=choices)


def _completed_in(db: Session, campaign: Campaign, stratum: str) -> int:
    return db.scalar(sa.select(sa.func.count(Invitation.id)).where(
        Invitation.campaign_id == campaign.id, Invitation.stratum == stratum,
        Invitation.status == "completed")) or 0


def _new_public_id(db: Session) -> str:
    while True:
        candidate = "".join(secrets.choice(ALPHABET) for _ in range(8))
        if db.scalar(sa.select(Invitation.id).where(Invitation.public_id == candidate)) is None:
            return candidate


def enrol(db: Session, campaign: Campaign, answers: dict[str, str], address: str,
          secret: str, *, locale: str = "zh_CN", consent: bool = False,
          now: dt.datetime | None = None) -> tuple[str, EntryState]:
    """Enrol a resident in an open campaign: their stratum comes from their answers to
    the stratum variables; refused (409 ``quota_met``) once the stratum's completes reach
    its quota. A new invitation (with a code the resident keeps to resume) is made and
    its first instrument started. Returns the plain code (shown once) and the state."""
    if not consent:
        raise EntryRefused(400, "consent_required",
                           "the resident must agree to the consent statement first",
                           campaign=campaign)
    since = (now or utcnow()) - ENROL_WINDOW
    recent = audit.count_events(db, ENROLLED_ACTION, address=address, since=since)
    if recent >= ENROL_LIMIT:
        raise EntryRefused(429, "throttled", "too many enrolments from this address",
                           retry_after=int(ENROL_WINDOW.total_seconds()))
    form = join_form(db, campaign)
    chosen = {v: str(answers.get(v, "")).strip() for v in form.variables}
    missing = [v for v in form.variables if chosen[v] not in form.choices[v]]
    if missing:
        raise EntryRefused(400, "answer_required", "please answer: " + ", ".join(missing),
                           campaign=campaign)
    stratum = next((s for s in db.scalars(sa.select(CampaignStratum).where(
        CampaignStratum.campaign_id == campaign.id))
        if all(str((s.values or {}).get(v)) == chosen[v] for v in form.variables)), None)
    if stratum is None:
        raise EntryRefused(409, "no_stratum", "these answers match no group of this campaign",
                           campaign=campaign)
    if stratum.quota is not None and _completed_in(db, campaign, stratum.stratum) >= \
            stratum.quota:
        raise EntryRefused(409, "quota_met", f"group {stratum.stratum} has all the answers "
                           "it needs", campaign=campaign)
    code = generate_code()
    invitation = Invitation(campaign_id=campaign.id, public_id=_new_public_id(db),
                            code_hash=hash_code(secret, code), stratum=stratum.stratum, pi=None,
                            prefill={**chosen, "district": campaign.district_code},
                            status="issued")
    db.add(invitation)
    audit.record(db, actor="resident", action=ENROLLED_ACTION, target=campaign.code,
                     address=address, detail={"stratum": stratum.stratum})
    db.flush()
    state = enter(db, invitation, code, secret, locale=locale, consent=True)
    return code, state
