"""Every page of the app, per role, on the demo app (``tests.browser.make_app``).

An inventory for the tests that walk the whole site (the i18n crawl, the accessibility
checks): each :class:`Page` names its route, a sample URL whose ``{placeholders}`` are
real ids of the demo data (:func:`demo_ids` reads them from the demo database and adds
the resident sessions a first visitor would have), and the roles that may open it.

Roles: ``anonymous`` (no login), and one staff account per role: ``district`` (district
D01, the demo campaign's district), ``monitor``, ``researcher``, ``admin``.
:func:`add_staff` creates them, :func:`client` logs one in. Pages behind a resident's link
token or invitation code (``/t/...``, ``/s/...``, ``/i/<code>``) open for whoever holds
the token, so for every role. Only GET pages are listed; ``kind`` says whether a page is
HTML (checked for its text) or a file or image (checked for its status only).

Usage::

    app = make_app(tmp_path)
    add_staff(app)
    ids = demo_ids(app)
    for page in PAGES:
        for role in page.roles:
            client(app, role).get(page.url(ids), status=page.status)
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

ROLES = ("anonymous", "district", "monitor", "researcher", "admin")
STAFF_ROLES = ("district", "monitor", "researcher", "admin")
#: the district of the ``district`` account: the demo campaign's district
DISTRICT = "D01"
#: staff user name per role (each is also a name shown on pages: "Logged in as ...")
USERNAMES = {"district": "district_d01", "monitor": "monitor", "researcher": "researcher",
             "admin": "admin"}
PASSWORD = "correct horse battery"

EVERYONE = frozenset(ROLES)
ANY_STAFF = frozenset(STAFF_ROLES)
RESEARCH = frozenset({"researcher", "admin"})
DISTRICT_PAGES = frozenset({"district", "monitor", "admin"})      # D01's pages, dashboards
SESSIONS = frozenset({"district", "researcher", "admin"})          # person-level sessions
CAMPAIGN_EDIT = frozenset({"district", "admin"})
ADMIN = frozenset({"admin"})
#: pages behind a resident's link token or invitation code: whoever holds it may open them
TOKEN = EVERYONE


@dataclass(frozen=True)
class Page:
    """One GET page: route name, sample URL template, who may open it, what it is."""

    route: str
    path: str                      # "/research/items/{item}": filled from demo_ids()
    roles: frozenset[str]          # the roles that may open it; the others are denied
    kind: str = "html"             # html | file (csv, xlsx, png...: status only)
    status: int = 200              # the status an allowed role gets (404, 303 for some)

    def url(self, ids: dict[str, str]) -> str:
        """The sample URL with the demo's ids filled in."""
        return self.path.format(**ids)


PAGES: list[Page] = [
    # --- shell
    Page("home", "/", EVERYONE),
    Page("login", "/login", EVERYONE),
    Page("(not found)", "/no-such-page", EVERYONE, status=404),
    Page("staff", "/staff/", ANY_STAFF),
    Page("district", "/staff/districts/{district}", DISTRICT_PAGES),
    Page("district", "/staff/districts/{other_district}", frozenset({"monitor", "admin"})),
    # --- ability test (resident)
    Page("assessment.start", "/test", EVERYONE),
    Page("assessment.session", "/t/{test_background}", TOKEN),
    Page("assessment.session", "/t/{test_running}", TOKEN),
    Page("assessment.session", "/t/{test_finished}", TOKEN, status=303),  # to the result
    Page("assessment.result", "/t/{test_finished}/result", TOKEN),
    Page("assessment.withdraw", "/t/{test_running}/withdraw", TOKEN),
    Page("assessment.withdraw", "/t/{test_finished}/withdraw", TOKEN),
    Page("assessment.session", "/t/{test_withdrawn}", TOKEN),  # "your data was withdrawn"
    # --- test sessions (staff)
    Page("assessment.staff_sessions", "/staff/sessions", SESSIONS),
    Page("assessment.staff_sessions", "/staff/sessions?q={test_session_id}", SESSIONS),
    Page("assessment.staff_session", "/staff/sessions/{test_session_id}", SESSIONS),
    Page("assessment.staff_session", "/staff/sessions/{running_session_id}", SESSIONS),
    # --- item bank (research)
    Page("itembank.items", "/research/items", RESEARCH),
    Page("itembank.item", "/research/items/{item}", RESEARCH),
    Page("itembank.item_edit", "/research/items/{item}/edit", RESEARCH),
    Page("itembank.item_curve", "/research/items/{item}/curve.png?calibration={calibration}",
         RESEARCH, kind="file"),
    Page("itembank.calibrations", "/research/calibrations", RESEARCH),
    Page("itembank.calibration", "/research/calibrations/{calibration}", RESEARCH),
    Page("itembank.calibration_info", "/research/calibrations/{calibration}/information.png",
         RESEARCH, kind="file"),
    Page("itembank.diff",
         "/research/calibrations/diff?left={calibration}&right={calibration}", RESEARCH),
    Page("itembank.rollback", "/research/calibrations/rollback?instrument=LLA", RESEARCH),
    Page("itembank.publish", "/research/calibrations/{calibration}/publish", RESEARCH),
    Page("itembank.health", "/research/health", RESEARCH),
    Page("itembank.health_chart", "/research/health.png", RESEARCH, kind="file"),
    # --- learning-needs survey (resident)
    Page("surveys.start", "/survey", EVERYONE),
    Page("surveys.session", "/s/{survey_running}", TOKEN),
    Page("surveys.done", "/s/{survey_done}/done", TOKEN),
    Page("surveys.withdraw", "/s/{survey_running}/withdraw", TOKEN),
    Page("surveys.session", "/s/{survey_withdrawn}", TOKEN),  # "your data was withdrawn"
    # --- surveys (staff)
    Page("surveys.staff_list", "/research/surveys", ANY_STAFF),
    Page("surveys.submissions", "/research/surveys/submissions", CAMPAIGN_EDIT),
    *[Page("surveys.staff_download", f"/research/surveys/{{survey}}/v{{survey_version}}/{fmt}",
           SESSIONS, kind="file") for fmt in ("csv", "xlsx", "sav", "codebook", "json")],
    # --- invitation codes and open enrolment (resident)
    Page("monitoring.entry", "/i", EVERYONE),
    Page("monitoring.entry_code", "/i/{invitation_code}", TOKEN),
    Page("monitoring.margins", "/admin/margins", ADMIN),
    # --- monitoring dashboards
    Page("dashboard.overview", "/monitoring", DISTRICT_PAGES),
    Page("dashboard.groups", "/monitoring/groups", DISTRICT_PAGES),
    Page("dashboard.trends", "/monitoring/trends", DISTRICT_PAGES),
    Page("dashboard.districts", "/monitoring/districts", DISTRICT_PAGES),
    Page("dashboard.indicators", "/monitoring/indicators", DISTRICT_PAGES),
    Page("dashboard.map", "/monitoring/map", DISTRICT_PAGES),
    Page("dashboard.report", "/monitoring/report", DISTRICT_PAGES),
    # --- the yearly archive (city office); no bundle in the demo: the manifest is a 404
    Page("archive.list", "/monitoring/archive", frozenset({"monitor", "admin"})),
    Page("archive.manifest", "/monitoring/archive/learning-city-archive-2025/manifest.json",
         frozenset({"monitor", "admin"}), kind="file", status=404),
    *[Page("dashboard.chart", f"/monitoring/charts/{table}.png", DISTRICT_PAGES, kind="file")
      for table in ("overview", "groups", "trends", "districts")],
    *[Page("dashboard.export", f"/monitoring/export/overview.{fmt}", DISTRICT_PAGES,
           kind="file") for fmt in ("csv", "xlsx", "sav", "codebook")],
    # --- the action plan (programme): district staff see their own district's report
    Page("programme.progress", "/programme", DISTRICT_PAGES),
    Page("programme.progress", "/programme?year=2024", DISTRICT_PAGES),
    Page("programme.indicator", "/programme/indicators/learning_stars", DISTRICT_PAGES),
    Page("programme.indicator", "/programme/indicators/learning_type_communities?year=2024",
         DISTRICT_PAGES),
    Page("programme.system", "/programme/system", DISTRICT_PAGES),
    Page("programme.reports", "/programme/reports", DISTRICT_PAGES),
    Page("programme.report", "/programme/reports/2025/district/{district}", DISTRICT_PAGES),
    Page("programme.report", "/programme/reports/2024/district/{other_district}",
         frozenset({"monitor", "admin"})),
    Page("programme.chart", "/programme/charts/learning_stars.png", DISTRICT_PAGES,
         kind="file"),
    Page("programme.map", "/programme/map/learning_stars.svg", DISTRICT_PAGES, kind="file"),
    # --- campaigns (district staff)
    Page("campaigns.list", "/campaigns", DISTRICT_PAGES),
    Page("campaigns.new", "/campaigns/new", CAMPAIGN_EDIT),
    Page("campaigns.detail", "/campaigns/{campaign}", DISTRICT_PAGES),
    *[Page("campaigns.tab", f"/campaigns/{{campaign}}/{tab}", DISTRICT_PAGES)
      for tab in ("overview", "frame", "design", "draw", "invitations", "progress", "close")],
    Page("campaigns.edit", "/campaigns/{campaign}/edit", CAMPAIGN_EDIT),
    Page("campaigns.progress_csv", "/campaigns/{campaign}/progress.csv", DISTRICT_PAGES,
         kind="file"),
    Page("campaigns.progress_png", "/campaigns/{campaign}/progress.png", DISTRICT_PAGES,
         kind="file"),
    # --- learning organisations (district staff; the city office reads and confirms)
    Page("orgs.list", "/organisations", DISTRICT_PAGES),
    Page("orgs.new", "/organisations/new", CAMPAIGN_EDIT),
    Page("orgs.register_xlsx", "/organisations/register.xlsx", DISTRICT_PAGES, kind="file"),
    Page("orgs.standards", "/organisations/standards", DISTRICT_PAGES),
    Page("orgs.standard_template", "/organisations/standards/template.xlsx", DISTRICT_PAGES,
         kind="file"),
    Page("orgs.standard", "/organisations/standards/{standard}", DISTRICT_PAGES),
    Page("orgs.detail", "/organisations/{organisation}", DISTRICT_PAGES),
    Page("orgs.edit", "/organisations/{organisation}/edit", CAMPAIGN_EDIT),
    Page("orgs.review", "/organisations/{organisation}/review/2025", DISTRICT_PAGES),
    # the organisation's self-assessment link (no account: whoever holds the token)
    Page("orgs.self", "/o/{organisation_token}", TOKEN),
]

HTML_PAGES = [p for p in PAGES if p.kind == "html"]


# --------------------------------------------------------------------------- the demo's ids

def demo_ids(app: Any) -> dict[str, str]:
    """The ids the sample URLs need, read from the demo database of ``app``, plus the
    resident sessions a visitor would have (added once; call it once per app):

    ``test_background`` a test waiting for its background answers, ``test_running`` one
    with 3 answers, ``test_finished`` a finished one (all three in district D01, the
    latter two are also ``running_session_id`` / ``test_session_id``, sessions of the demo
    campaign), ``test_withdrawn`` a withdrawn one; ``survey_running`` a survey on its first
    page, ``survey_done`` a finished survey, ``survey_withdrawn`` a withdrawn one;
    ``invitation_code`` one of the demo campaign's codes (from the file the demo writes
    beside its database).
    """
    from assessment import services as tests
    from itembank.models import Calibration, Instrument, Item
    from learningcity.models import District
    from monitoring.fieldwork.demo_content import demo_file
    from monitoring.fieldwork.models import Campaign
    from surveys.models import SurveyDefinition

    db = app.registry.dbsession_factory()
    try:
        ids: dict[str, str] = {"district": DISTRICT}
        ids["other_district"] = db.scalar(sa.select(District.code).where(
            District.code != DISTRICT).order_by(District.code))
        ids["item"] = db.scalar(sa.select(Item.code).order_by(Item.id))
        ids["calibration"] = str(db.scalar(
            sa.select(Instrument.published_calibration_id).where(Instrument.code == "LLA")))
        assert db.get(Calibration, int(ids["calibration"])) is not None
        survey = db.scalars(sa.select(SurveyDefinition).order_by(SurveyDefinition.id)).first()
        ids["survey"], ids["survey_version"] = survey.code, str(survey.version)
        ids["campaign"] = db.scalar(sa.select(Campaign.code).where(
            Campaign.district_code == DISTRICT).order_by(Campaign.id))
        with open(demo_file(db), encoding="utf-8-sig", newline="") as fh:
            ids["invitation_code"] = next(csv.DictReader(fh))["code"]

        background = {"age_band": "60-69", "sex": "female", "district": DISTRICT,
                      "street": "S01", "occupation": "retired", "education": "junior"}
        ids["test_background"], _ = tests.start_session(db, "LLA", consent=True)
        # campaign sessions of D01: district staff see a session by its campaign's district
        scope = {"campaign": ids["campaign"], "district": DISTRICT}
        ids["test_running"], running = tests.start_session(db, "LLA", consent=True,
                                                           background=background, **scope)
        _answer(db, running, 3)
        ids["running_session_id"] = str(running.id)
        ids["test_finished"], finished = tests.start_session(db, "LLA", consent=True,
                                                             background=background, **scope)
        _answer(db, finished, 200)
        assert finished.status == "finished", finished.status
        ids["test_session_id"] = str(finished.id)
        ids["test_withdrawn"], withdrawn = tests.start_session(db, "LLA", consent=True)
        tests.withdraw(db, withdrawn)
        ids.update(_surveys(db, background))
        ids.update(_organisations(db))
        db.commit()
        return ids
    finally:
        db.close()


def _answer(db: Any, session: Any, limit: int) -> None:
    """Answer up to ``limit`` items of a test (always the second option), or to its end."""
    from assessment import services as tests

    step = tests.current_step(db, session)
    for _ in range(limit):
        if step.item is None:
            break
        step = tests.submit_answer(db, session, position=step.item["position"],
                                   version_id=step.item["version"], choice=1)
    db.flush()


def _surveys(db: Any, prefill: dict[str, str]) -> dict[str, str]:
    """A survey on its first page and one answered to the end, as the demo's simulated
    residents answer it (``monitoring.demo_results``: plausible answers page by page
    through the survey services)."""
    import numpy as np

    from monitoring import demo_results
    from surveys import services as surveys

    _session, running = surveys.start_survey_session(db)
    session, done = surveys.start_survey_session(db, prefill=prefill, district=DISTRICT)
    person = demo_results._resident(prefill, 2025, 0.0, 0.0, np.random.default_rng(7))
    demo_results._take_survey(db, session, person, 2025)
    withdrawn, gone = surveys.start_survey_session(db)
    surveys.withdraw(db, withdrawn)
    db.flush()
    return {"survey_running": running, "survey_done": done, "survey_withdrawn": gone}


def _organisations(db: Any) -> dict[str, str]:
    """A D01 community with a confirmed simulated evaluation, the demo standard, and the
    self-assessment link of the D01 community the demo leaves unevaluated. The demo
    loader is run here too (idempotent: a no-op once its entry point is installed)."""
    from monitoring.organisations import demo_content, selfassess
    from monitoring.organisations.models import Organisation
    from monitoring.organisations.standards import current_standard

    demo_content.load(db)
    first = db.scalar(sa.select(Organisation).where(Organisation.code == f"{DISTRICT}-C1"))
    open_one = db.scalar(sa.select(Organisation).where(Organisation.code == f"{DISTRICT}-C5"))
    token, _evaluation = selfassess.invite(db, open_one, demo_content.DEMO_YEAR,
                                           actor="site-pages")
    standard = current_standard(db, "community", demo_content.DEMO_YEAR)
    return {"organisation": str(first.id), "standard": str(standard.id),
            "organisation_token": token}


# --------------------------------------------------------------------------- staff and clients

def add_staff(app: Any) -> None:
    """One staff account per role (the district account in D01), password :data:`PASSWORD`."""
    from learningcity.accounts import create_user

    db = app.registry.dbsession_factory()
    try:
        for role, name in USERNAMES.items():
            create_user(db, name, PASSWORD, role, DISTRICT if role == "district" else None)
        db.commit()
    finally:
        db.close()


def client(app: Any, role: str, number: int = 0) -> Any:
    """A webtest client for ``role``, logged in unless anonymous (own address per client:
    failed logins are throttled per address)."""
    import webtest

    test_app = webtest.TestApp(app, extra_environ={
        "REMOTE_ADDR": f"10.7.{ROLES.index(role)}.{number % 250 + 1}"})
    if role != "anonymous":
        res = test_app.post("/login", {"username": USERNAMES[role], "password": PASSWORD,
                                       "csrf_token": csrf_token(test_app)})
        assert res.status_int == 303 and "/login" not in res.location, (role, res.status)
    return test_app


def csrf_token(test_app: Any) -> str:
    """The client's CSRF token, read from the login form."""
    found = test_app.get("/login").html.find("input", {"name": "csrf_token"})
    assert found is not None, "no CSRF token on /login"
    return str(found["value"])

