"""Staff survey pages: import with every problem listed, publishing, downloads (CSV with BOM,
XLSX, SPSS with labels), district scoping, monitor refused, audit of every download."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import sqlalchemy as sa

from learningcity.models import AuditEvent
from surveys import services
from surveys.definition import DEFAULTS_DIR
from surveys.models import SurveyDefinition, SurveySession

from .test_services import full_answers, walk

URL = "/research/surveys"


def respond(db, answered, *, scope=None, street="=cmd|' /C calc'!A0", campaign=None):
    """A finished session; ``scope`` is a campaign's district given at start (an answered
    district never scopes a session)."""
    answers = full_answers(trained=True)
    answers["background"] = dict(answers["background"], district=answered, street=street)
    session, _ = services.start_survey_session(db, campaign=campaign, district=scope)
    services.save_page(db, session, "intro", {}, session.revision)
    services.save_page(db, session, "background", answers["background"], session.revision)
    services.save_page(db, session, "needs", answers["needs"], session.revision)
    services.save_page(db, session, "participation", {"community_training": "yes",
                                                      "elder_education": "regular"},
                       session.revision)
    walk(db, session, answers)
    services.finish(db, session)
    return session


@pytest.fixture
def responses(surveys_demo, staff):
    db = surveys_demo
    a1 = respond(db, "D01", scope="A", campaign="CA")
    a2 = respond(db, "D03", scope="A", campaign="CA", street="和平街")
    d2 = respond(db, "D02")
    db.commit()
    return {"A": [a1.id, a2.id], "D02": [d2.id]}


def download(testapp, fmt, status=200):
    return testapp.get(f"{URL}/learning_needs/v1/{fmt}", status=status)


def csv_rows(res):
    assert res.body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    return list(csv.DictReader(io.StringIO(res.body.decode("utf-8-sig"))))


def test_anonymous_is_sent_to_login(testapp, responses):
    res = testapp.get(URL, status=302)
    assert "/login" in res.location
    res = download(testapp, "csv", status=302)
    assert "/login" in res.location


def test_researcher_downloads_every_format(testapp, responses, login, dbsession, tmp_path):
    import pyreadstat

    login("researcher")
    page = testapp.get(URL + "?lang=en")
    assert "learning_needs" in page.text and "(published)" in page.text
    rows = csv_rows(download(testapp, "csv"))
    assert sorted(int(r["respondent_id"]) for r in rows) == sorted(
        responses["A"] + responses["D02"])
    guarded = [r["street"] for r in rows if r["street"].startswith("'")]
    assert guarded == ["'=cmd|' /C calc'!A0"] * 2  # formula cells neutralised
    assert "和平街" in {r["street"] for r in rows}
    xlsx = download(testapp, "xlsx")
    assert xlsx.body[:2] == b"PK"
    sav = download(testapp, "sav")
    path = tmp_path / "r.sav"
    path.write_bytes(sav.body)
    frame, meta = pyreadstat.read_sav(str(path))
    assert len(frame) == 3
    assert meta.column_names_to_labels["community_training"].startswith("最近12个月")
    assert meta.variable_value_labels["sex"] == {1.0: "女", 2.0: "男", -8.0: "未询问（跳答）",
                                                 -9.0: "未作答"}
    definition = download(testapp, "json")
    assert definition.json["id"] == "learning_needs" and definition.json["version"] == 1
    codebook = download(testapp, "codebook")
    assert b"variable" in codebook.body[:40]
    events = dbsession.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "survey.download").order_by(AuditEvent.id)).all()
    assert [(e.actor, e.detail["format"]) for e in events] == [
        ("researcher", "csv"), ("researcher", "xlsx"), ("researcher", "sav"),
        ("researcher", "codebook")]
    assert events[0].detail["respondents"] == 3 and events[0].target == "learning_needs v1"


def test_district_staff_download_only_their_district(testapp, responses, login, dbsession):
    login("district_a")
    page = testapp.get(URL)
    assert "导入问卷定义" not in page.text  # no import for district staff
    rows = csv_rows(download(testapp, "csv"))
    assert sorted(int(r["respondent_id"]) for r in rows) == sorted(responses["A"])
    assert {r["district"] for r in rows} == {"D01", "D03"}  # answered; scoped by campaign
    event = dbsession.scalar(sa.select(AuditEvent).where(AuditEvent.action ==
                                                         "survey.download"))
    assert event.actor == "district_a" and event.detail["district"] == "A"
    testapp.post(URL, {"csrf_token": "x"}, status=403)  # import is not for district staff


def test_an_answered_district_does_not_scope_sessions_without_a_campaign(
        testapp, responses, login, dbsession, password_hash):
    """Issue 16 finding 1 for surveys: an answer is a claim, not a fact; a session without
    a campaign is for city-level staff only (the researcher gets it, D02 staff do not)."""
    from learningcity.models import StaffUser

    assert dbsession.get(SurveySession, responses["D02"][0]).district is None
    dbsession.add(StaffUser(username="district_d02", password_hash=password_hash,
                            role="district", district_code="D02", display_name="D02"))
    dbsession.commit()
    login("district_d02")
    assert csv_rows(download(testapp, "csv")) == []
    assert testapp.get(URL).html.select_one("td.n-finished").text == "0"


def test_district_staff_cannot_import(testapp, responses, login):
    login("district_b")
    page = testapp.get(URL)
    assert page.html.find("input", {"type": "file"}) is None  # no import form
    assert "导入问卷定义" not in page.text
    # a forged import post (with a valid CSRF token) is refused by permission
    csrf = page.html.find("input", {"name": "csrf_token"})["value"]
    testapp.post(URL, {"csrf_token": csrf}, upload_files=[
        ("file", "s.json", b"{}")], status=403)


def test_monitor_sees_counts_but_may_not_download(testapp, responses, login, dbsession):
    login("monitor")
    page = testapp.get(URL)
    assert "learning_needs" in page.text and "/csv" not in page.text
    for fmt in ("csv", "xlsx", "sav", "codebook"):
        download(testapp, fmt, status=403)
    assert dbsession.scalar(sa.select(sa.func.count(AuditEvent.id)).where(
        AuditEvent.action == "survey.download")) == 0


def test_import_lists_all_problems_and_changes_nothing(testapp, responses, login,
                                                       dbsession):
    login("researcher")
    page = testapp.get(URL + "?lang=en")
    doc = (DEFAULTS_DIR / "learning_needs.json").read_text(encoding="utf-8")
    broken = doc.replace("${community_training} = 'yes'", "${nowhere} = 'yes'").replace(
        '"type": "integer"', '"type": "integr"')
    form = page.forms["import-form"]
    form["file"] = ("broken.json", broken.encode("utf-8"))
    res = form.submit(status=400)
    assert "nothing was changed" in res.text
    assert res.text.count("nowhere") >= 2 and "integr" in res.text
    assert dbsession.scalar(sa.select(sa.func.count(SurveyDefinition.id))) == 1
    # a good XLSX of a new version, published at once
    import openpyxl

    book = openpyxl.load_workbook(DEFAULTS_DIR / "learning_needs.xlsx")
    book["settings"]["B2"] = 2
    data = io.BytesIO()
    book.save(data)
    form = testapp.get(URL + "?lang=en").forms["import-form"]
    form["file"] = ("learning_needs_v2.xlsx", data.getvalue())
    form["publish"] = True
    res = form.submit().follow()
    assert "Imported learning_needs version 2." in res.text
    assert services.published_survey(dbsession, "learning_needs").version == 2
    # publishing version 1 again through the page
    form = next(f for f in res.forms.values() if f.action.endswith("/v1/publish"))
    form.submit(status=303)
    dbsession.expire_all()
    assert services.published_survey(dbsession, "learning_needs").version == 1


def test_downloads_carry_the_stored_scale_scores(testapp, responses, login, dbsession,
                                                 tmp_path):
    import pyreadstat

    from surveys.models import SurveyScaleScore

    stored = {(s.session_id, s.scale): s for s in dbsession.scalars(sa.select(SurveyScaleScore))}
    assert any(s.theta is not None for s in stored.values())  # the demo bank calibrates LMS
    login("researcher")
    rows = csv_rows(download(testapp, "csv"))
    assert len(rows) == 3
    path = tmp_path / "r.sav"
    path.write_bytes(download(testapp, "sav").body)
    frame, meta = pyreadstat.read_sav(str(path))
    for row, (_, sav_row) in zip(rows, frame.iterrows(), strict=True):
        sid = int(row["respondent_id"])
        assert int(sav_row["respondent_id"]) == sid
        for grid in ("satisfaction", "motivation", "self_directed"):
            score = stored.get((sid, grid))
            for part, attr in (("sum", "sum_score"), ("n", "n_answered"), ("theta", "theta"),
                               ("se", "se")):
                want = getattr(score, attr) if score is not None else None
                got = row[f"{grid}_{part}"]
                if want is None:
                    assert got == "" and np.isnan(sav_row[f"{grid}_{part}"])
                else:
                    assert float(got) == pytest.approx(want, rel=1e-12)
                    assert sav_row[f"{grid}_{part}"] == pytest.approx(want, rel=1e-12)
    assert meta.column_names_to_labels["motivation_se"].endswith("θ的标准误")
    codebook = csv_rows(download(testapp, "codebook"))
    assert {"motivation_theta", "self_directed_sum"} <= {r["variable"] for r in codebook}


def test_zip_downloads_hold_the_main_table_and_the_codebook(testapp, responses, login):
    import zipfile

    login("researcher")
    res = download(testapp, "csv.zip")
    assert res.content_type == "application/zip"
    assert 'filename="learning_needs_v1_responses.csv.zip"' in res.content_disposition
    names = zipfile.ZipFile(io.BytesIO(res.body)).namelist()
    assert sorted(names) == ["learning_needs.csv", "learning_needs_codebook.csv"]
    sav = download(testapp, "sav.zip?labels=en")
    assert "learning_needs.sav" in zipfile.ZipFile(io.BytesIO(sav.body)).namelist()


def test_zip_download_links_only_for_versions_with_repeat_pages(testapp, responses, login,
                                                                 dbsession):
    from .test_services import _family_finished

    login("researcher")
    assert "csv.zip" not in testapp.get("/research/surveys").text  # no repeat pages
    _family_finished(dbsession, ["小明"])
    dbsession.commit()
    page = testapp.get("/research/surveys").text
    assert "/research/surveys/family/v1/csv.zip" in page
    assert "/research/surveys/family/v1/sav.zip" in page
    assert "/research/surveys/learning_needs/v1/csv.zip" not in page
