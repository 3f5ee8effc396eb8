"""The reporting cycle through the pages: draft, submit, return with a comment,
resubmit, accept, by a district account and a department account; scoping (district B
cannot see or edit A's report; a department reports only its indicators); validation;
evidence limits; the overdue list; every step audited."""
from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from learningcity.models import AuditEvent
from monitoring.programme import reporting
from monitoring.programme.models import ProgrammeEvidence, ProgrammeReport, ProgrammeValue
from tests.conftest import PASSWORD

A_2024 = "/programme/reports/2024/district/A"
EDU_2024 = "/programme/reports/2024/department/education"
DISTRICT_CODES = ["experimental_streets", "experimental_projects", "digital_communities",
                  "community_bases", "learning_stars", "brand_projects",
                  "community_learning_groups", "learning_teams",
                  "learning_type_communities"]


def _login(app: Any, username: str) -> None:
    form = app.get("/login").forms[0]
    form["username"], form["password"] = username, PASSWORD
    form.submit(status=303)


def _client(wsgi_app: Any, username: str, n: int) -> Any:
    import webtest

    app = webtest.TestApp(wsgi_app, extra_environ={"REMOTE_ADDR": f"10.9.0.{n}"})
    _login(app, username)
    return app


def _fill(form: Any, values: dict[str, tuple[str, str]]) -> None:
    for code, (value, den) in values.items():
        form[f"value__{code}"] = value
        if den:
            form[f"denominator__{code}"] = den


DISTRICT_VALUES = {c: ("3", "") for c in DISTRICT_CODES[:-1]}
DISTRICT_VALUES["learning_type_communities"] = ("40", "50")


def _state(db: Any, path_unit: tuple[str, str], period: str = "2024") -> str | None:
    db.expire_all()
    return db.scalar(sa.select(ProgrammeReport.state).join(ProgrammeReport.period).where(
        ProgrammeReport.unit_kind == path_unit[0], ProgrammeReport.unit_code == path_unit[1],
        reporting.ProgrammePeriod.code == period))


def _actions(db: Any, target: str) -> list[str]:
    return list(db.scalars(sa.select(AuditEvent.action).where(
        AuditEvent.target == target).order_by(AuditEvent.id)))


def test_a_district_report_goes_through_the_whole_cycle(wsgi_app: Any, dbsession: Any,
                                                        department: Any) -> None:
    a = _client(wsgi_app, "district_a", 1)
    page = a.get(A_2024)
    names = [f for f in page.forms["report-form"].fields if f.startswith("value__")]
    assert names == [f"value__{c}" for c in DISTRICT_CODES]  # the district's indicators
    form = page.forms["report-form"]
    _fill(form, {"learning_stars": ("2", "")})
    form.submit("action", value="save", status=303)
    assert _state(dbsession, ("district", "A")) == "draft"
    # submitting with empty values is refused and names them
    res = a.get(A_2024).forms["report-form"].submit("action", value="submit", status=400)
    assert "提交前必须填写" in res.text  # "is required before submitting"
    form = a.get(A_2024).forms["report-form"]
    _fill(form, DISTRICT_VALUES)
    form.submit("action", value="submit", status=303)
    assert _state(dbsession, ("district", "A")) == "submitted"
    # a submitted report is read-only for the district
    assert "report-form" in a.get(A_2024).forms and \
        'name="action" value="save"' not in a.get(A_2024).text

    office = _client(wsgi_app, "monitor", 2)
    review = office.get(A_2024).forms["review-form"]
    res = review.submit("action", value="return", status=400)  # no comment
    assert _state(dbsession, ("district", "A")) == "submitted"
    review = office.get(A_2024).forms["review-form"]
    review["comment"] = "学习之星人数请核对"
    review.submit("action", value="return", status=303)
    assert _state(dbsession, ("district", "A")) == "returned"

    page = a.get(A_2024)
    assert "学习之星人数请核对" in page.text
    form = page.forms["report-form"]
    form["value__learning_stars"] = "4"
    form.submit("action", value="submit", status=303)
    assert _state(dbsession, ("district", "A")) == "resubmitted"
    office.get(A_2024).forms["review-form"].submit("action", value="accept", status=303)
    assert _state(dbsession, ("district", "A")) == "accepted"
    assert _actions(dbsession, "2024/district/A") == [
        "programme.report.save", "programme.report.save", "programme.report.submit",
        "programme.report.return", "programme.report.save", "programme.report.submit",
        "programme.report.accept"]
    # accepted: progress is written to the monitoring database at once
    city = office.get("/programme/indicators/learning_stars?year=2024")
    assert "4" in city.text


def test_district_b_cannot_see_or_edit_district_as_report(wsgi_app: Any, dbsession: Any,
                                                         department: Any) -> None:
    a = _client(wsgi_app, "district_a", 3)
    form = a.get(A_2024).forms["report-form"]
    _fill(form, {"learning_stars": ("2", "")})
    form.submit("action", value="save", status=303)
    b = _client(wsgi_app, "district_b", 4)
    csrf = b.get("/programme/reports").html.find("input", {"name": "csrf_token"})["value"]
    for path in (A_2024, A_2024 + "/template.xlsx"):
        b.get(path, status=403)
    for path in (A_2024, A_2024 + "/upload", A_2024 + "/evidence", A_2024 + "/review"):
        b.post(path, {"csrf_token": csrf, "action": "save",
                      "value__learning_stars": "99"}, status=403)
    assert "/programme/reports/2024/district/A" not in b.get("/programme/reports").text
    dbsession.expire_all()
    assert dbsession.scalar(sa.select(ProgrammeValue.value).where(
        ProgrammeValue.indicator_code == "learning_stars")) == 2
    # the office reviews but does not fill a district's report
    office = _client(wsgi_app, "admin", 5)
    office.post(A_2024, {"csrf_token": _csrf(office), "action": "save"}, status=403)


def _csrf(app: Any) -> str:
    return app.get("/programme/reports").html.find("input", {"name": "csrf_token"})["value"]


def test_a_department_reports_only_its_indicators(wsgi_app: Any, dbsession: Any,
                                                 department: Any) -> None:
    edu = _client(wsgi_app, "dept_education", 6)
    page = edu.get(EDU_2024)
    fields = [f for f in page.forms["report-form"].fields if f.startswith("value__")]
    assert fields == ["value__online_courses", "value__learning_alliances"]
    edu.get(A_2024, status=403)
    edu.get("/programme/reports/2024/department/trade_union", status=403)
    edu.post("/programme/reports/2024/department/trade_union",
             {"csrf_token": _csrf(edu), "action": "save"}, status=403)
    # a value for an indicator it is not responsible for is not taken
    edu.post(EDU_2024, {"csrf_token": _csrf(edu), "action": "save",
                        "value__online_courses": "80", "value__workers_points": "9"},
             status=303)
    dbsession.expire_all()
    assert {v.indicator_code: v.value for v in dbsession.scalars(
        sa.select(ProgrammeValue))} == {"online_courses": 80, "learning_alliances": None}
    form = edu.get(EDU_2024).forms["report-form"]
    form["value__learning_alliances"] = "1"
    form.submit("action", value="submit", status=303)
    office = _client(wsgi_app, "admin", 7)
    review = office.get(EDU_2024).forms["review-form"]
    review["comment"] = "请附证明材料"
    review.submit("action", value="return", status=303)
    form = edu.get(EDU_2024).forms["report-form"]
    form.submit("action", value="submit", status=303)
    assert _state(dbsession, ("department", "education")) == "resubmitted"
    office.get(EDU_2024).forms["review-form"].submit("action", value="accept", status=303)
    assert _state(dbsession, ("department", "education")) == "accepted"
    union = _client(wsgi_app, "dept_union", 8)
    page = union.get("/programme/reports/2024/department/trade_union")
    assert [f for f in page.forms["report-form"].fields if f.startswith("value__")] == [
        "value__workers_points"]
    union.get(EDU_2024, status=403)


def test_values_are_checked_and_a_big_change_needs_a_comment(dbsession: Any,
                                                             department: Any) -> None:
    unit = reporting.Unit("district", "A")
    specs = reporting.indicators_for(dbsession, unit)
    E = reporting.Entry
    _, problems = reporting.check_entries(specs, {
        "learning_stars": E("2.5"), "learning_teams": E("-1"), "brand_projects": E("x"),
        "learning_type_communities": E("60", "50"), "community_bases": E("3", "4")}, {})
    found = {(c, f) for c, f, _t in problems}
    assert found == {("learning_stars", "value"), ("learning_teams", "value"),
                     ("brand_projects", "value"), ("learning_type_communities", "value"),
                     ("community_bases", "denominator")}
    previous = {"learning_stars": 2.0, "learning_type_communities": 0.5}
    _, problems = reporting.check_entries(specs, {"learning_stars": E("7"),
                                                  "learning_type_communities": E("45", "50")},
                                          previous)
    assert [(c, f) for c, f, _t in problems] == [("learning_stars", "comment")]
    assert "more than 3-fold from the last period's (2)" in reporting.english(problems[0][2])
    _, problems = reporting.check_entries(specs, {"learning_stars": E("7", "", "新增街道")},
                                          previous)
    assert problems == []
    _, problems = reporting.check_entries(specs, {"learning_stars": E("6")}, previous)
    assert problems == []  # exactly the factor is allowed


def test_evidence_files_are_limited_in_type_and_size(wsgi_app: Any, dbsession: Any,
                                                     department: Any) -> None:
    a = _client(wsgi_app, "district_a", 9)
    form = a.get(A_2024).forms["evidence-form"]
    form["file"] = ("minutes.pdf", b"%PDF-1.4\n% minutes\n")
    form.submit(status=303)
    for name, data, text in (("x.exe", b"MZ...", "只接受 PDF、JPEG、PNG 或 XLSX 文件"),
                             ("fake.png", b"%PDF-1.4", "不是 PNG 文件"),
                             ("big.pdf", b"%PDF-" + b"0" * (5 * 1024 * 1024),
                              "不超过 5 MB")):
        form = a.get(A_2024).forms["evidence-form"]
        form["file"] = (name, data)
        assert text in form.submit(status=400).text
    dbsession.expire_all()
    files = list(dbsession.scalars(sa.select(ProgrammeEvidence)))
    assert [(f.filename, f.content_type) for f in files] == [("minutes.pdf",
                                                              "application/pdf")]
    link = f"/programme/evidence/{files[0].id}"
    assert a.get(link).body.startswith(b"%PDF-")
    _client(wsgi_app, "district_b", 10).get(link, status=403)
    _client(wsgi_app, "dept_education", 11).get(link, status=403)
    _client(wsgi_app, "monitor", 12).get(link, status=200)
    assert "programme.report.evidence" in _actions(dbsession, "2024/district/A")


def test_the_overdue_list_names_units_not_handed_in(dbsession: Any, department: Any) -> None:
    period = reporting.ensure_period(dbsession, 2023)
    report = reporting.get_report(dbsession, period, reporting.Unit("district", "A"),
                                  create=True)
    report.state = "accepted"
    late = reporting.overdue(dbsession, dt.date(2024, 2, 1))
    assert {(o.period, o.unit.kind, o.unit.code, o.state) for o in late} == {
        ("2023", "district", "B", "missing"),
        ("2023", "department", "education", "missing"),
        ("2023", "department", "open_university", "missing"),
        ("2023", "department", "trade_union", "missing")}
    assert reporting.overdue(dbsession, dt.date(2024, 1, 31)) == []  # due that day
