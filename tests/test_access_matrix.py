"""Issue 8 "Access": every route x method x role, allowed or denied.

The matrix below classifies EVERY route the application registers; a route that is
not classified fails ``test_every_route_is_classified`` (so a route added later must
be given its row here). Roles: ``anonymous`` (no cookie), ``resident`` (no login,
holding the link tokens and the invitation code of the world), the staff accounts
``district_a``, ``district_b``, ``department`` (the education bureau's account),
``monitor``, ``researcher`` and ``admin``.

Outcomes, judged from the response only:

* **deny**: 401, 403, 404, or a redirect to ``/login``;
* **allow**: any other status below 400, or a status listed for that cell as "the
  view was reached" (e.g. 400/422 when a POST is sent without its fields; the body is
  empty on purpose so that nothing changes).

Unsafe form posts carry the client's valid CSRF token, so a denial is the permission
and never the CSRF check. On token routes the resident uses its own token; every other
role uses a fresh random token, which must be denied (tokens are bound to their
session, and staff rights do not open a resident's session). District-scoped objects
are tried twice, district A's (``[A]``) and district B's (``[B]``).

One world per database backend (module scope): districts, staff, the demo item bank and
the default survey, a test session and a survey session of the resident, test sessions
of districts A and B, a sampled campaign in each district (A's with issued
invitations) and an open-enrolment campaign in A. Each client logs in once.
"""
from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa

from tests.conftest import TEST_SECRET

ROLES = ("anonymous", "resident", "district_a", "district_b", "department", "monitor",
         "researcher", "admin")
STAFF = ("district_a", "district_b", "department", "monitor", "researcher", "admin")
PASSWORD = "correct horse battery"
ACTOR = "access-matrix"


# --------------------------------------------------------------------------- the matrix

World = dict[str, Any]


@dataclass(frozen=True)
class Case:
    """One route x method x object: who may, and what counts as "the view was reached"."""

    route: str                       # the route name
    method: str                      # GET or POST
    path: str                        # a URL template filled from the world: "/t/{token}"
    allowed: frozenset[str]          # roles expected to be allowed; the others are denied
    variant: str = ""                # "A" / "B": whose object the URL names
    token: str | None = None         # world key of a resident token in the URL or body
    body: str = "none"               # none | form (CSRF token added) | json
    data: dict[str, Any] = field(default_factory=dict)
    reached: frozenset[int] = frozenset()  # >= 400 statuses that mean "reached the view"
    fresh: bool = False              # the call changes the client (logout): use a new one

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}" + (f" [{self.variant}]" if self.variant else "")


def roles(*names: str) -> frozenset[str]:
    return frozenset(names)


EVERYONE = frozenset(ROLES)
ANY_STAFF = frozenset(STAFF)
RESIDENT = roles("resident")
RESEARCH = roles("researcher", "admin")
MONITORING = roles("district_a", "district_b", "monitor", "admin")  # dashboards
CAMPAIGN_A = roles("district_a", "monitor", "admin")
CAMPAIGN_B = roles("district_b", "monitor", "admin")
EDIT_A = roles("district_a", "admin")
EDIT_B = roles("district_b", "admin")
PROGRAMME = roles("district_a", "district_b", "department", "monitor", "admin")
OFFICE = roles("monitor", "admin")
REPORT_A = roles("district_a", "monitor", "admin")
REPORT_B = roles("district_b", "monitor", "admin")
REPORT_DEPT = roles("department", "monitor", "admin")
DEPT_REPORT = "/programme/reports/2024/department/education"


def both(route: str, method: str, path: str, a: frozenset[str], b: frozenset[str],
         **kw: Any) -> list[Case]:
    """The same route on district A's and district B's object."""
    return [Case(route, method, path, a, variant="A", **kw),
            Case(route, method, path, b, variant="B", **kw)]


CASES: list[Case] = [
    # --- shell: public pages, login, staff home, district pages
    Case("home", "GET", "/", EVERYONE),
    Case("healthz", "GET", "/healthz", EVERYONE),
    Case("__static/", "GET", "/static/css/app.css", EVERYONE),
    Case("login", "GET", "/login", EVERYONE),
    # a wrong password: the form is reached (401) and no account is touched (one unknown
    # name per role: failures are throttled per name)
    Case("login", "POST", "/login", EVERYONE, body="form",
         data={"username": "nobody-{role}", "password": "wrong"}, reached=roles(401),
         fresh=True),
    Case("logout", "POST", "/logout", EVERYONE, body="form", fresh=True),
    Case("staff", "GET", "/staff/", ANY_STAFF),
    *both("district", "GET", "/staff/districts/{district}",
          roles("district_a", "monitor", "admin"), roles("district_b", "monitor", "admin")),
    # --- API root
    Case("api.root", "GET", "/api/v1/", EVERYONE),
    Case("api.openapi", "GET", "/api/v1/openapi.json", EVERYONE),
    Case("api.echo", "POST", "/api/v1/echo", EVERYONE, body="json",
         data={"message": "matrix"}),
    # --- the ability test (resident pages and API)
    Case("assessment.start", "GET", "/test", EVERYONE),
    Case("assessment.start", "POST", "/test", EVERYONE, body="form", reached=roles(400)),
    Case("assessment.session", "GET", "/t/{token}", RESIDENT, token="test_token"),
    Case("assessment.background", "POST", "/t/{token}/background", RESIDENT,
         token="test_token", body="form", reached=roles(400)),
    Case("assessment.answer", "POST", "/t/{token}/answer", RESIDENT, token="test_token",
         body="form", reached=roles(400, 409)),
    Case("assessment.result", "GET", "/t/{token}/result", RESIDENT, token="test_token",
         reached=roles(409)),
    Case("api.sessions", "POST", "/api/v1/sessions", EVERYONE, body="json", data={},
         reached=roles(400, 422)),
    Case("api.session", "GET", "/api/v1/sessions/{token}", RESIDENT, token="test_token"),
    Case("api.session_background", "POST", "/api/v1/sessions/{token}/background", RESIDENT,
         token="test_token", body="json", data={}, reached=roles(400, 422)),
    Case("api.session_answers", "POST", "/api/v1/sessions/{token}/answers", RESIDENT,
         token="test_token", body="json", data={"position": 999, "version": 1, "choice": 1},
         reached=roles(400, 409, 422)),
    Case("api.session_result", "GET", "/api/v1/sessions/{token}/result", RESIDENT,
         token="test_token", reached=roles(409)),
    Case("assessment.withdraw", "GET", "/t/{token}/withdraw", RESIDENT,
         token="withdraw_test_token"),
    Case("assessment.withdraw", "POST", "/t/{token}/withdraw", RESIDENT,
         token="withdraw_test_token", body="form"),
    Case("api.session_withdraw", "POST", "/api/v1/sessions/{token}/withdraw", RESIDENT,
         token="withdraw_api_token", body="json"),
    # --- staff: test sessions
    # person-level sessions: not for monitors, who read group results only
    Case("assessment.staff_sessions", "GET", "/staff/sessions",
         roles("district_a", "district_b", "researcher", "admin")),
    *both("assessment.staff_session", "GET", "/staff/sessions/{test_session_id}",
          roles("district_a", "researcher", "admin"),
          roles("district_b", "researcher", "admin")),
    # --- item bank (research)
    Case("itembank.items", "GET", "/research/items", RESEARCH),
    Case("itembank.item", "GET", "/research/items/{item}", RESEARCH),
    Case("itembank.item_edit", "GET", "/research/items/{item}/edit", RESEARCH),
    Case("itembank.item_status", "POST", "/research/items/{item}/status", RESEARCH,
         body="form", reached=roles(400)),
    Case("itembank.item_curve", "GET",
         "/research/items/{item}/curve.png?calibration={calibration}", RESEARCH),
    Case("itembank.calibrations", "GET", "/research/calibrations", RESEARCH),
    Case("itembank.diff", "GET",
         "/research/calibrations/diff?left={calibration}&right={calibration}", RESEARCH),
    Case("itembank.rollback", "GET", "/research/calibrations/rollback?instrument=LLA",
         RESEARCH),
    Case("itembank.rollback", "POST", "/research/calibrations/rollback?instrument=LLA",
         RESEARCH, body="form", reached=roles(400)),
    Case("itembank.calibration", "GET", "/research/calibrations/{calibration}", RESEARCH),
    Case("itembank.calibration_info", "GET",
         "/research/calibrations/{calibration}/information.png", RESEARCH),
    Case("itembank.publish", "GET", "/research/calibrations/{calibration}/publish",
         RESEARCH),
    Case("itembank.publish", "POST", "/research/calibrations/{calibration}/publish",
         RESEARCH, body="form", reached=roles(400)),
    Case("itembank.health", "GET", "/research/health", RESEARCH),
    Case("itembank.health_chart", "GET", "/research/health.png", RESEARCH),
    # --- surveys (resident pages and API)
    Case("surveys.start", "GET", "/survey", EVERYONE),
    Case("surveys.start", "POST", "/survey", EVERYONE, body="form"),
    Case("surveys.after_test", "POST", "/survey/after-test", RESIDENT, body="form",
         token="test_token", data={"test_token": "{token}"}),
    Case("surveys.session", "GET", "/s/{token}", RESIDENT, token="survey_token"),
    Case("surveys.session", "POST", "/s/{token}", RESIDENT, token="survey_token",
         body="form", data={"page": "background", "revision": "0"},
         reached=roles(400, 409)),
    Case("surveys.finish", "POST", "/s/{token}/finish", RESIDENT, token="survey_token",
         body="form", reached=roles(400, 409, 422)),
    Case("surveys.done", "GET", "/s/{token}/done", RESIDENT, token="survey_token"),
    Case("api.survey_sessions", "POST", "/api/v1/survey-sessions", EVERYONE, body="json",
         data={}),
    Case("api.survey_session", "GET", "/api/v1/survey-sessions/{token}", RESIDENT,
         token="survey_token"),
    Case("api.survey_page", "POST", "/api/v1/survey-sessions/{token}/pages/background",
         RESIDENT, token="survey_token", body="json", data={"revision": 0, "answers": {}},
         reached=roles(400, 409, 422)),
    Case("api.survey_back", "POST", "/api/v1/survey-sessions/{token}/back", RESIDENT,
         token="survey_token", body="json", data={"revision": 0},
         reached=roles(400, 409, 422)),
    Case("api.survey_finish", "POST", "/api/v1/survey-sessions/{token}/finish", RESIDENT,
         token="survey_token", body="json", data={}, reached=roles(400, 409, 422)),
    Case("api.survey_result", "GET", "/api/v1/survey-sessions/{token}/result", RESIDENT,
         token="survey_token", reached=roles(409)),
    Case("surveys.withdraw", "GET", "/s/{token}/withdraw", RESIDENT,
         token="withdraw_survey_token"),
    Case("surveys.withdraw", "POST", "/s/{token}/withdraw", RESIDENT,
         token="withdraw_survey_token", body="form"),
    Case("api.survey_withdraw", "POST", "/api/v1/survey-sessions/{token}/withdraw", RESIDENT,
         token="withdraw_survey_api_token", body="json"),
    # --- surveys (staff)
    # the survey list is for the roles that work with surveys (not department accounts)
    Case("surveys.staff_list", "GET", "/research/surveys", ANY_STAFF - roles("department")),
    Case("surveys.submissions", "GET", "/research/surveys/submissions",
         roles("district_a", "district_b", "admin")),
    Case("surveys.submissions", "POST", "/research/surveys/submissions",
         roles("district_a", "district_b", "admin"), body="form", reached=roles(400)),
    Case("surveys.staff_list", "POST", "/research/surveys", RESEARCH, body="form",
         reached=roles(400)),
    Case("surveys.staff_publish", "POST", "/research/surveys/learning_needs/v1/publish",
         RESEARCH, body="form"),
    *[Case("surveys.staff_download", "GET", f"/research/surveys/learning_needs/v1/{fmt}",
           roles("district_a", "district_b", "researcher", "admin"))
      for fmt in ("csv", "xlsx", "sav", "codebook", "json")],
    # --- monitoring: residents' entry with invitation codes, open enrolment
    Case("monitoring.entry", "GET", "/i", EVERYONE),
    Case("monitoring.entry", "POST", "/i", EVERYONE, body="form", reached=roles(400)),
    Case("monitoring.entry_code", "GET", "/i/{token}", RESIDENT, token="invitation_code"),
    Case("monitoring.entry_code", "POST", "/i/{token}", RESIDENT, token="invitation_code",
         body="form", reached=roles(400)),
    Case("monitoring.join", "GET", "/join/{open_campaign}", EVERYONE),
    Case("monitoring.join", "POST", "/join/{open_campaign}", EVERYONE, body="form",
         reached=roles(400)),
    Case("api.invitation_redeem", "POST", "/api/v1/invitations/redeem", RESIDENT,
         token="invitation_code", body="json", data={"code": "{token}"},
         reached=roles(400)),
    Case("monitoring.margins", "GET", "/admin/margins", roles("admin")),
    Case("monitoring.margins", "POST", "/admin/margins", roles("admin"), body="form",
         reached=roles(400)),
    # --- monitoring dashboards (rows are scoped to the user's district inside the page)
    Case("dashboard.overview", "GET", "/monitoring", MONITORING),
    Case("dashboard.groups", "GET", "/monitoring/groups", MONITORING),
    Case("dashboard.trends", "GET", "/monitoring/trends", MONITORING),
    Case("dashboard.districts", "GET", "/monitoring/districts", MONITORING),
    Case("dashboard.indicators", "GET", "/monitoring/indicators", MONITORING),
    Case("dashboard.map", "GET", "/monitoring/map", MONITORING),
    Case("dashboard.map", "POST", "/monitoring/map", roles("admin"), body="form",
         reached=roles(400)),
    Case("dashboard.report", "GET", "/monitoring/report", MONITORING),
    Case("dashboard.indicators", "POST", "/monitoring/indicators", roles("admin"),
         body="form", reached=roles(400)),
    Case("dashboard.chart", "GET", "/monitoring/charts/overview.png", MONITORING),
    Case("dashboard.export", "GET", "/monitoring/export/overview.csv", MONITORING),
    Case("dashboard.api.aggregates", "GET", "/api/v1/monitoring/aggregates", MONITORING),
    # --- campaigns (district staff act on their own district's, monitors read)
    Case("campaigns.list", "GET", "/campaigns", CAMPAIGN_A | CAMPAIGN_B),
    Case("campaigns.new", "GET", "/campaigns/new", roles("district_a", "district_b",
                                                         "admin")),
    Case("campaigns.new", "POST", "/campaigns/new", roles("district_a", "district_b",
                                                          "admin"),
         body="form", reached=roles(400)),
    *both("campaigns.detail", "GET", "/campaigns/{campaign}", CAMPAIGN_A, CAMPAIGN_B),
    *both("campaigns.tab", "GET", "/campaigns/{campaign}/invitations", CAMPAIGN_A,
          CAMPAIGN_B),
    # closing without the confirmation box: the edit permission is checked, nothing closes
    *both("campaigns.tab", "POST", "/campaigns/{campaign}/close", EDIT_A, EDIT_B,
          body="form", data={"action": "close"}, reached=roles(400)),
    *both("campaigns.edit", "GET", "/campaigns/{campaign}/edit", EDIT_A, EDIT_B),
    *both("campaigns.edit", "POST", "/campaigns/{campaign}/edit", EDIT_A, EDIT_B,
          body="form", data={"name": ""}, reached=roles(400)),
    *both("campaigns.progress_csv", "GET", "/campaigns/{campaign}/progress.csv",
          CAMPAIGN_A, CAMPAIGN_B),
    *both("campaigns.progress_png", "GET", "/campaigns/{campaign}/progress.png",
          CAMPAIGN_A, CAMPAIGN_B),
    # --- learning organisations: district staff keep their own district's register and
    # review it; monitors (the city office) read every district, upload standards and
    # confirm; the organisation's self-assessment opens with its link token only
    Case("orgs.list", "GET", "/organisations", CAMPAIGN_A | CAMPAIGN_B),
    Case("orgs.new", "GET", "/organisations/new", roles("district_a", "district_b", "admin")),
    Case("orgs.new", "POST", "/organisations/new", roles("district_a", "district_b", "admin"),
         body="form", reached=roles(400)),
    Case("orgs.import", "POST", "/organisations/import",
         roles("district_a", "district_b", "admin"), body="form", reached=roles(400)),
    Case("orgs.register_xlsx", "GET", "/organisations/register.xlsx",
         CAMPAIGN_A | CAMPAIGN_B),
    Case("orgs.standards", "GET", "/organisations/standards", CAMPAIGN_A | CAMPAIGN_B),
    Case("orgs.standards", "POST", "/organisations/standards", roles("monitor", "admin"),
         body="form", reached=roles(400)),
    Case("orgs.standard_template", "GET", "/organisations/standards/template.xlsx",
         CAMPAIGN_A | CAMPAIGN_B),
    Case("orgs.standard", "GET", "/organisations/standards/{standard}",
         CAMPAIGN_A | CAMPAIGN_B),
    *both("orgs.detail", "GET", "/organisations/{organisation}", CAMPAIGN_A, CAMPAIGN_B),
    *both("orgs.edit", "GET", "/organisations/{organisation}/edit", EDIT_A, EDIT_B),
    *both("orgs.edit", "POST", "/organisations/{organisation}/edit", EDIT_A, EDIT_B,
          body="form", data={"name_zh": ""}, reached=roles(400)),
    # no year: the edit permission is checked, no link is issued
    *both("orgs.invite", "POST", "/organisations/{organisation}/invite", EDIT_A, EDIT_B,
          body="form", reached=roles(400)),
    *both("orgs.review", "GET", "/organisations/{organisation}/review/2025", CAMPAIGN_A,
          CAMPAIGN_B),
    *both("orgs.review", "POST", "/organisations/{organisation}/review/2025", EDIT_A, EDIT_B,
          body="form", reached=roles(400)),
    *both("orgs.return", "POST", "/organisations/{organisation}/return/2025", EDIT_A, EDIT_B,
          body="form", reached=roles(400)),
    *both("orgs.confirm", "POST", "/organisations/{organisation}/confirm/2025",
          roles("monitor", "admin"), roles("monitor", "admin"), body="form",
          reached=roles(400)),
    *both("orgs.evidence", "GET", "/organisations/{organisation}/evidence/{evidence}",
          CAMPAIGN_A, CAMPAIGN_B),
    # the yearly archive: the city office (monitors, admins) only; no year posted builds
    # nothing (400); no bundle is built in this world, so a manifest is a 404 when reached
    Case("archive.list", "GET", "/monitoring/archive", roles("monitor", "admin")),
    Case("archive.build", "POST", "/monitoring/archive/build", roles("monitor", "admin"),
         body="form", reached=roles(400)),
    Case("archive.manifest", "GET",
         "/monitoring/archive/learning-city-archive-2025/manifest.json",
         roles("monitor", "admin"), reached=roles(404)),
    Case("orgs.self", "GET", "/o/{token}", RESIDENT, token="organisation_token"),
    Case("orgs.self", "POST", "/o/{token}", RESIDENT, token="organisation_token",
         body="form", reached=roles(400)),
    # --- the action plan (programme): progress, the indicator system, reports; district
    # and department staff see their own unit's reports, the city office reviews
    Case("programme.progress", "GET", "/programme", PROGRAMME),
    Case("programme.indicator", "GET", "/programme/indicators/learning_stars", PROGRAMME),
    Case("programme.chart", "GET", "/programme/charts/learning_stars.svg", PROGRAMME),
    # the map shows districts: a department account has none
    Case("programme.map", "GET", "/programme/map/learning_stars.svg",
         roles("district_a", "district_b", "monitor", "admin")),
    Case("programme.refresh", "POST", "/programme/refresh", OFFICE, body="form"),
    Case("programme.system", "GET", "/programme/system", PROGRAMME),
    Case("programme.system", "POST", "/programme/system", roles("admin"), body="form",
         reached=roles(400)),
    Case("programme.reports", "GET", "/programme/reports", PROGRAMME),
    *both("programme.report", "GET", "/programme/reports/2024/district/{district}",
          REPORT_A, REPORT_B),
    Case("programme.report", "GET", DEPT_REPORT, REPORT_DEPT),
    *both("programme.report", "POST", "/programme/reports/2024/district/{district}",
          roles("district_a"), roles("district_b"), body="form", reached=roles(400)),
    Case("programme.report", "POST", DEPT_REPORT, roles("department"), body="form",
         reached=roles(400)),
    *both("programme.review", "POST", "/programme/reports/2024/district/{district}/review",
          OFFICE, OFFICE, body="form", reached=roles(400)),
    *both("programme.template", "GET",
          "/programme/reports/2024/district/{district}/template.xlsx", REPORT_A, REPORT_B),
    Case("programme.template", "GET", DEPT_REPORT + "/template.xlsx", REPORT_DEPT),
    *both("programme.upload", "POST", "/programme/reports/2024/district/{district}/upload",
          roles("district_a"), roles("district_b"), body="form", reached=roles(400)),
    Case("programme.upload", "POST", DEPT_REPORT + "/upload", roles("department"),
         body="form", reached=roles(400)),
    *both("programme.evidence_add", "POST",
          "/programme/reports/2024/district/{district}/evidence", roles("district_a"),
          roles("district_b"), body="form", reached=roles(400)),
    *both("programme.evidence", "GET", "/programme/evidence/{evidence}", REPORT_A,
          REPORT_B),
]


def _cells() -> list[Any]:
    out = []
    for case in CASES:
        for role in ROLES:
            expect = "allow" if role in case.allowed else "deny"
            out.append(pytest.param(case, role, expect,
                                    id=f"{case.label} as {role} -> {expect}"))
    return out


# --------------------------------------------------------------------------- the world

@pytest.fixture(scope="module")
def world(wsgi_app: Any, password_hash: str) -> Iterator[World]:
    """Everything the URLs name, committed once per backend; emptied afterwards."""
    from tests.conftest import _empty_all_tables

    db = wsgi_app.registry.dbsession_factory()
    try:
        with pytest.MonkeyPatch.context() as mp:
            yield _build_world(db, password_hash, mp)
    finally:
        db.rollback()
        db.close()
        _empty_all_tables(wsgi_app.registry.engine)


def _build_world(db: Any, password_hash: str, mp: pytest.MonkeyPatch) -> World:
    from assessment import services as assessment
    from itembank import demo_content as bank_demo
    from itembank.models import Calibration, Item
    from learningcity import accounts, demo
    from learningcity.accounts import create_user
    from learningcity.models import District
    from surveys import demo_content as survey_demo
    from surveys import services as surveys

    mp.setattr(accounts, "hash_password", lambda _password: password_hash)
    demo.load(db)
    for code, zh, en in (("A", "甲区", "District A"), ("B", "乙区", "District B")):
        if db.get(District, code) is None:
            db.add(District(code=code, name_zh=zh, name_en=en))
    db.flush()
    for name, role, district in (("admin", "admin", None), ("researcher", "researcher", None),
                                 ("monitor", "monitor", None),
                                 ("district_a", "district", "A"),
                                 ("district_b", "district", "B")):
        create_user(db, name, PASSWORD, role, district)
    create_user(db, "department", PASSWORD, "department", department_code="education")
    bank_demo.load(db)
    survey_demo.load(db)
    db.commit()

    w: World = {"district": {"A": "A", "B": "B"}}
    w["test_token"], _ = assessment.start_session(db, "LLA", consent=True)
    w["test_session_id"] = {}
    for district in ("A", "B"):
        _, session = assessment.start_session(db, "LLA", consent=True, district=district)
        db.flush()
        w["test_session_id"][district] = session.id
    _, w["survey_token"] = surveys.start_survey_session(db)
    # withdrawn by the matrix's own withdraw cells (the other cells keep their sessions)
    w["withdraw_test_token"], _ = assessment.start_session(db, "LLA", consent=True)
    w["withdraw_api_token"], _ = assessment.start_session(db, "LLA", consent=True)
    _, w["withdraw_survey_token"] = surveys.start_survey_session(db)
    _, w["withdraw_survey_api_token"] = surveys.start_survey_session(db)
    w["item"] = db.scalar(sa.select(Item.code).order_by(Item.id))
    w["calibration"] = db.scalar(sa.select(Calibration.id).order_by(Calibration.id))
    db.commit()
    w.update(_campaigns(db))
    w.update(_organisations(db))
    w.update(_programme(db))
    w["snapshot"] = _snapshot(db)
    db.rollback()
    return w


def _snapshot(db: Any) -> dict[str, Any]:
    """What no cell of the matrix may change (the posts carry no fields on purpose)."""
    from itembank.models import Instrument, Item
    from learningcity.models import StaffUser
    from monitoring.fieldwork.models import Campaign
    from monitoring.organisations.models import Evaluation, EvaluationStandard, Organisation
    from monitoring.programme.models import (
        ProgrammeEvidence,
        ProgrammeIndicator,
        ProgrammeReport,
        ProgrammeValue,
    )
    from monitoring.results.indicators import IndicatorDefinition
    from monitoring.results.models import PopulationMargin
    from surveys.models import SurveyPublication

    def rows(query: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in db.execute(query)]

    return {
        "campaigns": rows(sa.select(Campaign.code, Campaign.name, Campaign.status,
                                    Campaign.opens_at, Campaign.closes_at, Campaign.mode)
                          .order_by(Campaign.code)),
        "published": rows(sa.select(Instrument.code, Instrument.published_calibration_id)
                          .order_by(Instrument.code)),
        "surveys": rows(sa.select(SurveyPublication.code, SurveyPublication.definition_id)
                        .order_by(SurveyPublication.code)),
        "items": rows(sa.select(Item.code, Item.status).order_by(Item.code)),
        "staff": rows(sa.select(StaffUser.username, StaffUser.role, StaffUser.active)
                      .order_by(StaffUser.username)),
        "margins": rows(sa.select(sa.func.count(PopulationMargin.id))),
        "indicators": rows(sa.select(sa.func.count()).select_from(IndicatorDefinition)),
        "organisations": rows(sa.select(Organisation.code, Organisation.name_zh,
                                        Organisation.active).order_by(Organisation.code)),
        "evaluations": rows(sa.select(Evaluation.id, Evaluation.status, Evaluation.revision,
                                      Evaluation.token_hash).order_by(Evaluation.id)),
        "standards": rows(sa.select(sa.func.count(EvaluationStandard.id))),
        "programme": rows(sa.select(ProgrammeReport.unit_code, ProgrammeReport.state,
                                    sa.func.count(ProgrammeValue.id))
                          .outerjoin(ProgrammeValue).group_by(ProgrammeReport.id)
                          .order_by(ProgrammeReport.unit_code)),
        "programme_indicators": rows(sa.select(sa.func.count()).select_from(
            ProgrammeIndicator)),
        "evidence": rows(sa.select(sa.func.count()).select_from(ProgrammeEvidence)),
    }


def _programme(db: Any) -> World:
    """Draft 2024 reports of A, B and the education department, an evidence file in each
    district's, and district boundaries of A and B for the map."""
    import json

    from monitoring.programme import catalogue, evidence, reporting
    from monitoring.results import districtmap

    catalogue.ensure_builtin(db)
    period = reporting.ensure_period(db, 2024)
    files = {}
    for kind, code in (("district", "A"), ("district", "B"), ("department", "education")):
        report = reporting.get_report(db, period, reporting.Unit(kind, code), create=True)
        if kind == "district":
            files[code] = evidence.add(db, report, "minutes.pdf", b"%PDF-1.4 matrix",
                                       ACTOR).id
    districtmap.save_boundaries(db, json.dumps(districtmap.demo_geojson(["A", "B"])), ACTOR)
    db.commit()
    return {"evidence": files}


def _campaigns(db: Any) -> World:
    """A sampled campaign per district (A's invitations issued) and an open one in A."""
    from monitoring.fieldwork import draw, frames
    from monitoring.fieldwork.campaigns import create_campaign
    from monitoring.fieldwork.invitations import issue_invitations
    from monitoring.fieldwork.window import local_input
    from tests.monitoring.conftest import to_csv, unit_rows

    now = dt.datetime.now(dt.UTC)

    def drawn(district: str, mode: str) -> Any:
        campaign = create_campaign(
            db, district_code=district, user=ACTOR, name=f"Matrix {district} {mode}",
            test_instrument="LLA", survey_code="learning_needs", mode=mode,
            opens_at=local_input(now - dt.timedelta(days=1)),
            closes_at=local_input(now + dt.timedelta(days=30)))
        spec = frames.FrameSpec("unit", "hh_id", ["street", "age_band"])
        frames.import_frame(db, campaign, "unit.csv", to_csv(unit_rows()), spec, ACTOR)
        draw.set_design(db, campaign, ACTOR, n=12)
        draw.draw_sample(db, campaign, ACTOR, seed=12345)
        db.commit()
        return campaign

    a, b, open_a = drawn("A", "sample"), drawn("B", "sample"), drawn("A", "open")
    issued = issue_invitations(db, a, ACTOR, secret=TEST_SECRET)
    db.commit()
    return {"campaign": {"A": a.code, "B": b.code}, "open_campaign": open_a.code,
            "invitation_code": issued[0].code}


def _organisations(db: Any) -> World:
    """A community in each district with a submitted self-assessment and one evidence
    file (district A's self-assessment link is the resident's token), and a standard."""
    from monitoring.organisations import register, selfassess
    from monitoring.organisations.standards import example_workbook, upload_standard

    standard = upload_standard(db, "standard.xlsx", example_workbook(), actor=ACTOR)
    w: World = {"standard": standard.id, "organisation": {}, "evidence": {}}
    for district in ("A", "B"):
        organisation = register.add_organisation(db, {
            "code": f"MATRIX-{district}", "district": district, "kind": "community",
            "name_zh": f"矩阵社区{district}", "name_en": ""}, actor=ACTOR)
        token, evaluation = selfassess.invite(db, organisation, 2025, actor=ACTOR)
        selfassess.attach_evidence(db, evaluation, [selfassess.Evidence(
            "results", "e.pdf", b"%PDF-1.4 matrix")], revision=evaluation.revision)
        db.flush()
        w["organisation"][district] = organisation.id
        w["evidence"][district] = evaluation.evidence[0].id
        if district == "A":
            w["organisation_token"] = token
    db.commit()
    return w


# --------------------------------------------------------------------------- clients

class Client:
    """A WebTest client with its own cookies, address and CSRF token."""

    def __init__(self, wsgi_app: Any, role: str, number: int) -> None:
        import webtest

        self.role = role
        # one address per client: failed codes and logins are throttled per address
        self.app = webtest.TestApp(wsgi_app, extra_environ={
            "REMOTE_ADDR": f"10.8.{number}.{secrets.randbelow(250) + 1}"})
        if role in STAFF:
            form = self.app.get("/login").forms[0]
            form["username"], form["password"] = role, PASSWORD
            res = form.submit()
            assert res.status_int == 303 and "/login" not in res.location, role
        self.csrf = self._csrf()

    def _csrf(self) -> str:
        page = self.app.get("/login")
        found = page.html.find("input", {"name": "csrf_token"})
        assert found is not None, "no CSRF token on /login"
        return str(found["value"])


@pytest.fixture(scope="module")
def clients(wsgi_app: Any, world: World) -> dict[str, Client]:
    """One logged-in client per role for the whole module."""
    return {role: Client(wsgi_app, role, n) for n, role in enumerate(ROLES)}


def random_token(key: str) -> str:
    """A well-formed token that belongs to nobody."""
    if key == "invitation_code":
        from monitoring.fieldwork.invitations import format_code, generate_code

        return format_code(generate_code())
    return secrets.token_urlsafe(24)


def _fill(text: str, world: World, case: Case, token: str | None, role: str) -> str:
    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "role":
            return role
        if key == "token":
            assert token is not None
            return token
        found = world[key]
        return str(found[case.variant] if isinstance(found, dict) else found)

    return re.sub(r"\{(\w+)\}", value, text)


def request(client: Client, case: Case, world: World) -> Any:
    """Make the call of ``case`` as ``client`` and return the response (any status)."""
    token = None
    if case.token is not None:
        token = world[case.token] if client.role == "resident" else random_token(case.token)
    url = _fill(case.path, world, case, token, client.role)
    data = {k: _fill(v, world, case, token, client.role) if isinstance(v, str) else v
            for k, v in case.data.items()}
    app = client.app
    if case.method == "GET":
        return app.get(url, status="*")
    if case.body == "json":
        return app.post_json(url, data, status="*")
    return app.post(url, {**data, "csrf_token": client.csrf}, status="*")


def outcome(res: Any, case: Case) -> str:
    """allow / deny / a description of anything else (which fails the cell)."""
    status = res.status_int
    if status == 400 and b"Bad CSRF token" in res.body:
        return "refused by the CSRF check, not by the permission"
    if status in case.reached:
        return "allow"
    if status in (401, 403, 404):
        return "deny"
    if 300 <= status < 400:
        return "deny" if urlparse(res.location or "").path == "/login" else "allow"
    if status < 400:
        return "allow"
    return f"unexpected status {status}: {res.body[:200]!r}"


# --------------------------------------------------------------------------- the tests

@pytest.mark.parametrize(("case", "role", "expect"), _cells())
def test_access(case: Case, role: str, expect: str, clients: dict[str, Client],
                world: World, wsgi_app: Any) -> None:
    client = Client(wsgi_app, role, 200) if case.fresh else clients[role]
    res = request(client, case, world)
    assert outcome(res, case) == expect, (
        f"{case.label} as {role}: status {res.status_int} "
        f"{res.headers.get('Location', '')}")


def test_the_matrix_changed_nothing(clients: dict[str, Client], world: World,
                                    wsgi_app: Any) -> None:
    """After every cell: campaigns, publications, items, accounts, margins and indicators
    are as the world left them (denied posts stored nothing, allowed ones had no fields)."""
    db = wsgi_app.registry.dbsession_factory()
    try:
        assert _snapshot(db) == world["snapshot"]
    finally:
        db.close()


def test_a_forged_csrf_token_is_not_counted_as_allowed(clients: dict[str, Client],
                                                       world: World) -> None:
    """The guard above: a CSRF refusal (400) never passes as "reached the view"."""
    case = next(c for c in CASES if c.route == "surveys.staff_list" and c.method == "POST")
    res = clients["admin"].app.post(case.path, {"csrf_token": "forged"}, status="*")
    assert res.status_int == 400 and outcome(res, case).startswith("refused by the CSRF")


def test_lists_show_only_the_own_district(clients: dict[str, Client], world: World) -> None:
    """Routes open to every district hold only the district's own rows."""
    a_session, b_session = (world["test_session_id"][d] for d in ("A", "B"))
    a_campaign, b_campaign = (world["campaign"][d] for d in ("A", "B"))
    for role, own, other in (("district_a", "A", "B"), ("district_b", "B", "A")):
        app = clients[role].app
        sessions = app.get("/staff/sessions").text
        assert f"/staff/sessions/{world['test_session_id'][own]}" in sessions
        assert f"/staff/sessions/{world['test_session_id'][other]}" not in sessions
        campaigns = app.get("/campaigns").text
        assert f"/campaigns/{world['campaign'][own]}" in campaigns
        assert f"/campaigns/{world['campaign'][other]}" not in campaigns
        register = app.get("/organisations").text
        assert f"/organisations/{world['organisation'][own]}\"" in register
        assert f"/organisations/{world['organisation'][other]}\"" not in register
    for role in ("researcher", "admin"):
        sessions = clients[role].app.get("/staff/sessions").text
        assert f"/staff/sessions/{a_session}" in sessions
        assert f"/staff/sessions/{b_session}" in sessions
    for role in ("monitor", "admin"):
        campaigns = clients[role].app.get("/campaigns").text
        assert f"/campaigns/{a_campaign}" in campaigns and f"/campaigns/{b_campaign}" in campaigns
        register = clients[role].app.get("/organisations").text
        assert all(f"/organisations/{world['organisation'][d]}\"" in register for d in "AB")


def _registered(wsgi_app: Any) -> dict[str, set[str]]:
    """Route name -> the methods its views say they take ("*" for any)."""
    intro = wsgi_app.registry.introspector
    out: dict[str, set[str]] = {}
    for entry in intro.get_category("routes"):
        name = entry["introspectable"]["name"]
        methods: set[str] = set()
        for view in entry["related"]:
            if view.category_name != "views":
                continue
            wanted = view["request_methods"]
            if wanted is None:
                methods.add("*")
            else:
                methods.update([wanted] if isinstance(wanted, str) else wanted)
        out[name] = methods
    return out


def test_every_route_is_classified(wsgi_app: Any) -> None:
    """A route without a row in the matrix fails here, and so does a stale row."""
    registered = _registered(wsgi_app)
    classified = {c.route for c in CASES}
    assert sorted(set(registered) - classified) == [], "routes missing from the matrix"
    assert sorted(classified - set(registered)) == [], "matrix rows for unknown routes"


def test_every_unsafe_view_has_a_post_row(wsgi_app: Any) -> None:
    """Views registered for POST are tried with POST (safe views with GET)."""
    registered = _registered(wsgi_app)
    tried = {(c.route, c.method) for c in CASES}
    missing = sorted(name for name, methods in registered.items()
                     if "POST" in methods and (name, "POST") not in tried)
    assert missing == []
    missing_get = sorted(name for name, methods in registered.items()
                         if ("GET" in methods or "*" in methods) and (name, "GET") not in tried)
    assert missing_get == []


def test_the_matrix_covers_every_role() -> None:
    assert len(_cells()) == len(CASES) * len(ROLES)
    assert all(c.allowed <= EVERYONE for c in CASES)


# --------------------------------------------------------------------------- tokens

def _token_bits(token: str) -> int:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return len(raw) * 8


def test_session_tokens_are_unguessable(dbsession: Any) -> None:
    """Test and survey link tokens carry at least 128 random bits, are all different,
    and only a hash of them is stored."""
    from assessment import services as assessment
    from assessment.models import TestSession
    from itembank import demo_content as bank_demo
    from surveys import demo_content as survey_demo
    from surveys import services as surveys
    from surveys.models import SurveySession

    bank_demo.load(dbsession)
    survey_demo.load(dbsession)
    tokens: dict[str, list[str]] = {"test": [], "survey": []}
    for _ in range(20):
        tokens["test"].append(assessment.start_session(dbsession, "LLA", consent=True)[0])
        tokens["survey"].append(surveys.start_survey_session(dbsession)[1])
    dbsession.flush()
    for kind, found in tokens.items():
        assert len(set(found)) == len(found), kind
        for token in found:
            assert re.fullmatch(r"[A-Za-z0-9_-]+", token), token
            assert _token_bits(token) >= 128, (kind, token)
    stored = {str(v) for v in dbsession.scalars(sa.select(TestSession.token_hash))}
    stored |= {str(v) for v in dbsession.scalars(sa.select(SurveySession.token_hash))}
    assert not stored & set(tokens["test"] + tokens["survey"])  # hashes, not tokens
    assert assessment.TOKEN_BYTES * 8 >= 128 and surveys.TOKEN_BYTES * 8 >= 128


def test_derived_tokens_are_unguessable() -> None:
    """Tokens derived with HMAC (the survey after a test, invitation sessions) are 256-bit."""
    from monitoring.fieldwork.entry import derived_token
    from surveys.services import after_test_token

    secret = "s" * 48
    for token in (after_test_token(secret, "abc"), derived_token(secret, "ABCD2345", "test")):
        assert _token_bits(token) >= 128
    assert after_test_token(secret, "abc") != after_test_token(secret + "x", "abc")


# Login throttling and auditing are tested in tests/learningcity/test_security.py
# (test_wrong_password_is_refused_and_audited, test_repeated_failures_throttle_logins).
