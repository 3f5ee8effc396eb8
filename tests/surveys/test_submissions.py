"""Submission exports of ODK Central and KoboToolbox brought back as finished sessions:
idempotent by instance ID, all or nothing, counted in campaign progress and closing as
sessions answered on the pages. Every database test runs on SQLite and PostgreSQL."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from learningcity.cli import main
from learningcity.models import AuditEvent
from monitoring.fieldwork.campaigns import create_campaign
from monitoring.fieldwork.models import Campaign, Invitation
from monitoring.fieldwork.submission_links import FieldworkInvitations
from monitoring.fieldwork.window import local_input
from surveys import services, submissions
from surveys.definition import Page, Question, Repeat, Survey, Text, survey_to_dict
from surveys.models import SurveyAnswer, SurveyScaleScore, SurveySession
from surveys.submissions import (
    import_submissions,
    read_submissions,
)
from tabular.writing import Sheet, write_workbook
from tests.conftest import TEST_SECRET, write_ini
from tests.monitoring.entry_support import finish_survey, ready_campaign

HERE = Path(__file__).parent / "submissions"
ODK = (HERE / "odk_central.csv").read_bytes()
KOBO = (HERE / "kobo.csv").read_bytes()
IDS = ["6f1b2c3d-0a4e-4b8f-9c1d-2e3f4a5b6c7d", "0c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f",
       "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"]


DIRECTORY = FieldworkInvitations(TEST_SECRET)


def stored(db: Any) -> dict[str, dict[str, Any]]:
    """instance ID -> what the session holds (answers, status, times, scores, links)."""
    db.expire_all()
    out = {}
    for s in db.scalars(sa.select(SurveySession).order_by(SurveySession.id)):
        out[s.instance_id] = {
            "answers": s.answer_dict(), "status": s.status, "source": s.source,
            "campaign": s.campaign, "invitation": s.invitation, "district": s.district,
            "created_at": s.created_at, "finished_at": s.finished_at,
            "scores": services.scale_results(s)}
    return out


def counts(db: Any) -> tuple[int, int, int]:
    return tuple(db.scalar(sa.select(sa.func.count()).select_from(t))
                 for t in (SurveySession, SurveyAnswer, SurveyScaleScore))


def edit(data: bytes, changes: dict[tuple[int, str], str], extra: list[dict] | None = None,
         delimiter: str = ",") -> bytes:
    """The CSV with cells changed (file row number, column) and rows appended."""
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8")), delimiter=delimiter))
    header, first = list(rows[0]), dict(rows[0])
    for (number, column), value in changes.items():
        rows[number - 2][column] = value
    rows += [{**first, **e} for e in extra or []]
    out = io.StringIO()
    writer = csv.DictWriter(out, header, delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def where(result: Any) -> set[tuple[int | None, str | None]]:
    return {(p.row, p.column) for p in result.problems}


# ------------------------------------------------------------------ ODK Central, Kobo


def test_an_odk_central_export_imports_twice_with_the_same_result(surveys_demo: Any) -> None:
    db = surveys_demo
    first = import_submissions(db, "learning_needs", "odk_central.csv", ODK, "enumerators")
    assert first.ok, [p.text() for p in first.problems]
    assert (first.source, first.rows, first.new, first.already) == ("odk", 3, 3, 0)
    assert first.warnings == []  # notes and ODK metadata are recognised silently
    db.commit()
    after_first, sizes = stored(db), counts(db)
    second = import_submissions(db, "learning_needs", "odk_central.csv", ODK, "enumerators")
    db.commit()
    assert second.ok and (second.rows, second.new, second.already) == (3, 0, 3)
    assert stored(db) == after_first and counts(db) == sizes
    one = after_first[IDS[0]]
    assert one["status"] == "finished" and one["source"] == "odk"
    assert one["answers"]["topics"] == ["health", "smart_devices"]
    assert one["answers"]["training_last"] == "2026-09"  # a month-year date of ODK
    assert one["answers"]["training_times"] == 12
    assert one["answers"]["occupation_other"] == "社区志愿者"
    assert one["created_at"] == dt.datetime(2026, 11, 20, 1, 15, 2, 120000, tzinfo=dt.UTC)
    assert one["finished_at"] == dt.datetime(2026, 11, 20, 1, 31, 47, 4000, tzinfo=dt.UTC)
    assert one["scores"]["motivation"]["sum"] == 43 and one["scores"]["satisfaction"]
    two = after_first[IDS[1]]
    assert "satisfaction" not in two["scores"] and "training_times" not in two["answers"]
    events = db.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == submissions.IMPORT_ACTION)).all()
    assert [(e.detail["new"], e.detail["already"]) for e in events] == [(3, 0), (0, 3)]


def test_scale_scores_are_those_finish_computes_on_the_pages(surveys_demo: Any) -> None:
    db = surveys_demo
    import_submissions(db, "learning_needs", "odk_central.csv", ODK, "enumerators")
    db.commit()
    for instance, holds in stored(db).items():
        session, _token = services.start_survey_session(db)
        for name, value in holds["answers"].items():
            session.answers.append(SurveyAnswer(name=name, page=services.session_survey(
                db, session).field(name).page.name, value=value))
        services.finish(db, session)
        assert services.scale_results(session) == holds["scores"], instance


def test_a_kobo_export_with_choice_columns_gives_the_same_answers(surveys_demo: Any) -> None:
    db = surveys_demo
    kobo = import_submissions(db, "learning_needs", "kobo.csv", KOBO, "enumerators")
    assert kobo.ok, [p.text() for p in kobo.problems]
    assert (kobo.source, kobo.new, kobo.warnings) == ("kobo", 2, [])
    db.commit()
    from_kobo = stored(db)
    assert from_kobo[IDS[0]]["answers"]["topics"] == ["health", "smart_devices"]
    assert from_kobo[IDS[0]]["source"] == "kobo"
    # the same submissions exported by ODK Central: the instance IDs are already stored
    odk = import_submissions(db, "learning_needs", "odk_central.csv", ODK, "enumerators")
    assert (odk.new, odk.already) == (1, 2)
    db.commit()
    both = stored(db)
    assert {k: v["answers"] for k, v in both.items() if k in from_kobo} == {
        k: v["answers"] for k, v in from_kobo.items()}


def test_kobo_choice_columns_that_disagree_or_are_not_0_1_are_problems(
        surveys_demo: Any) -> None:
    bad = edit(KOBO, {(2, "needs/topics/health"): "0", (3, "needs/topics/arts"): "yes!"},
               delimiter=";")
    result = import_submissions(surveys_demo, "learning_needs", "kobo.csv", bad, "t")
    assert where(result) == {(2, "needs/topics"), (3, "needs/topics/arts")}
    assert counts(surveys_demo)[0] == 0


def test_unknown_and_misplaced_columns(surveys_demo: Any) -> None:
    text = ODK.decode("utf-8").replace("end-suggestions", "end-wishes", 1).replace(
        "background-sex", "needs-sex", 1)
    result = read_submissions(services.definition_survey(services.published_survey(
        surveys_demo, "learning_needs")), "x.csv", text.encode("utf-8"))
    assert [(w.row, w.column) for w in result.warnings] == [(1, "end-wishes")]
    assert [(p.row, p.column) for p in result.problems] == [(1, "needs-sex")]
    assert "background" in result.problems[0].text("en")
    assert "不在组" in result.problems[0].text("zh_CN")


def test_rejected_submissions_are_skipped_and_listed(surveys_demo: Any) -> None:
    data = edit(ODK, {(3, "ReviewState"): "rejected"})
    result = import_submissions(surveys_demo, "learning_needs", "o.csv", data, "t")
    assert result.ok and (result.new, result.skipped) == (2, 1)
    assert [(w.row, w.column) for w in result.warnings] == [(3, None)]


# ------------------------------------------------------------------ all or nothing


def test_bad_rows_are_listed_with_rows_and_columns_and_nothing_is_stored(
        surveys_demo: Any) -> None:
    db = surveys_demo
    bad = edit(ODK, {(2, "participation-training_times"): "twelve",
                     (3, "background-age_band"): "99",
                     (4, "participation-elder_education"): ""},  # required for 70+
               extra=[{"meta-instanceID": "uuid:" + IDS[1], "KEY": "uuid:" + IDS[1]}])
    result = import_submissions(db, "learning_needs", "bad.csv", bad, "enumerators")
    assert not result.ok and result.new == 0 and result.session_ids == []
    assert where(result) == {(2, "participation-training_times"),
                             (3, "background-age_band"),
                             (4, "participation-elder_education"), (5, None)}
    texts = {p.row: (p.text("zh_CN"), p.text("en")) for p in result.problems}
    assert texts[2] == ("第 2 行，'participation-training_times' 列：请填写整数。",
                        "row 2, column 'participation-training_times': Please enter a "
                        "whole number.")
    assert "row 3" in texts[5][1] and "other answers" in texts[5][1]
    db.commit()
    assert counts(db) == (0, 0, 0)
    assert db.scalar(sa.select(AuditEvent.detail).where(
        AuditEvent.action == submissions.IMPORT_ACTION))["problems"] == 4


def test_an_instance_stored_before_with_other_answers_is_not_overwritten(
        surveys_demo: Any) -> None:
    db = surveys_demo
    import_submissions(db, "learning_needs", "odk_central.csv", ODK, "t")
    db.commit()
    before = stored(db)
    changed = edit(ODK, {(3, "background-sex"): "female"})
    result = import_submissions(db, "learning_needs", "again.csv", changed, "t")
    assert where(result) == {(3, None)} and result.new == 0
    assert "imported before" in result.problems[0].text()
    db.commit()
    assert stored(db) == before


def test_a_file_that_is_not_an_export_is_refused(surveys_demo: Any) -> None:
    result = import_submissions(surveys_demo, "learning_needs", "x.csv",
                                b"age_band,sex\n18-29,male\n", "t")
    assert where(result) == {(1, None)} and "instance ID" in result.problems[0].text()
    empty = import_submissions(surveys_demo, "learning_needs", "x.csv", b"", "t")
    assert not empty.ok and empty.file_problems
    capped = import_submissions(surveys_demo, "learning_needs", "o.csv", ODK, "t", max_rows=2)
    assert [p.code for p in capped.file_problems] == ["too_many_rows"] and capped.new == 0


def test_dry_run_checks_and_stores_nothing(surveys_demo: Any) -> None:
    result = import_submissions(surveys_demo, "learning_needs", "o.csv", ODK, "t",
                                dry_run=True)
    assert result.ok and result.new == 3 and not result.stored
    surveys_demo.commit()
    assert counts(surveys_demo) == (0, 0, 0)


# ------------------------------------------------------------------ repeats (Kobo XLSX)


def repeat_survey() -> Survey:
    members = Page("members", Text("成员", "Members"), (
        Question("member_age", "integer", Text("年龄", "Age"), required=True, minimum=0,
                 maximum=120),), repeat=Repeat())
    head = Page("household", Text("家庭", "Household"), (
        Question("size", "integer", Text("人数", "Size"), required=True),))
    return Survey("hh", 1, Text("家庭", "Household"), {}, (head, members))


def test_kobo_xlsx_repeat_sheets_give_instance_keys() -> None:
    main_rows = pd.DataFrame([["2", "uuid:a", "1"], ["1", "uuid:b", "2"]],
                             columns=["household/size", "meta/instanceID", "_index"])
    repeat_rows = pd.DataFrame([["40", "1", "members"], ["38", "1", "members"],
                                ["70", "2", "members"], ["abc", "2", "members"]],
                               columns=["members/member_age", "_parent_index",
                                        "_parent_table_name"])
    data = write_workbook([Sheet("hh", main_rows), Sheet("members", repeat_rows)])
    read = read_submissions(repeat_survey(), "hh.xlsx", data)
    assert read.source == "kobo"
    assert [s.answers for s in read.submissions] == [
        {"size": 2, "member_age[1]": 40, "member_age[2]": 38, "members[0]": 2},
        {"size": 1, "member_age[1]": 70, "members[0]": 2}]
    assert [(p.sheet, p.row, p.column) for p in read.problems] == [
        ("members", 5, "members/member_age")]


def kobo_repeat_file(ages: list[tuple[str, str]], ids: str = "ab") -> bytes:
    main_rows = pd.DataFrame([["2", f"uuid:{ids[0]}", "1", "2026-11-20T09:05:00+08:00"],
                              ["1", f"uuid:{ids[1]}", "2", "2026-11-20T10:05:00+08:00"]],
                             columns=["household/size", "meta/instanceID", "_index", "end"])
    repeat_rows = pd.DataFrame([[age, parent, "members"] for age, parent in ages],
                               columns=["members/member_age", "_parent_index",
                                        "_parent_table_name"])
    return write_workbook([Sheet("hh", main_rows), Sheet("members", repeat_rows)])


def test_kobo_repeat_instances_are_stored_and_counted(surveys_demo: Any) -> None:
    db = surveys_demo
    services.import_survey(db, json.dumps(survey_to_dict(repeat_survey())).encode(), "t",
                           name="hh.json", publish=True)
    data = kobo_repeat_file([("40", "1"), ("38", "1"), ("70", "2")])
    result = import_submissions(db, "hh", "hh.xlsx", data, "enumerators")
    assert result.ok and result.new == 2, [p.text() for p in result.problems]
    db.commit()
    got = stored(db)
    assert got["a"]["answers"] == {"size": 2, "members[0]": 2, "member_age[1]": 40,
                                   "member_age[2]": 38}
    assert got["b"]["answers"] == {"size": 1, "members[0]": 1, "member_age[1]": 70}
    assert got["a"]["finished_at"].replace(tzinfo=dt.UTC) == dt.datetime(
        2026, 11, 20, 1, 5, tzinfo=dt.UTC)
    pages = {a.name: a.page for a in db.scalars(sa.select(SurveyAnswer))}
    assert pages["member_age[2]"] == "members[2]" and pages["members[0]"] == "members"
    (summary,) = [s for s in services.list_surveys(db) if s.code == "hh"]
    assert sum(c.get("finished", 0) for c in summary.counts.values()) == 2
    again = import_submissions(db, "hh", "hh.xlsx", data, "enumerators")
    assert (again.new, again.already) == (0, 2)
    too_old = import_submissions(db, "hh", "hh2.xlsx", kobo_repeat_file(
        [("40", "1"), ("200", "2")], ids="cd"), "enumerators")
    assert [(p.sheet, p.row, p.column) for p in too_old.problems] == [
        ("members", 3, "members/member_age")]
    assert len(stored(db)) == 2


def test_odk_central_zip_repeat_csvs_give_instance_keys_and_import_twice(
        surveys_demo: Any) -> None:
    import zipfile

    db = surveys_demo
    services.import_survey(db, json.dumps(survey_to_dict(repeat_survey())).encode(), "t",
                           name="hh.json", publish=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hh.csv", "household-size,meta-instanceID,KEY\n"
                         "2,uuid:a,uuid:a\n1,uuid:b,uuid:b\n")
        archive.writestr("hh-members.csv", "members-member_age,PARENT_KEY,KEY\n"
                         "40,uuid:a,uuid:a/members[1]\n38,uuid:a,uuid:a/members[2]\n"
                         "70,uuid:b,uuid:b/members[1]\n")
        archive.writestr("media/photo.jpg", b"x")
    data = buffer.getvalue()
    read = read_submissions(repeat_survey(), "hh.zip", data)
    assert read.source == "odk" and read.problems == []
    assert [w.message.en for w in read.warnings] == ["media/photo.jpg: not a CSV; not imported"]
    assert [s.answers for s in read.submissions] == [
        {"size": 2, "member_age[1]": 40, "member_age[2]": 38, "members[0]": 2},
        {"size": 1, "member_age[1]": 70, "members[0]": 1}]
    first = import_submissions(db, "hh", "hh.zip", data, "enumerators")
    assert first.ok and first.new == 2, [p.text() for p in first.problems]
    again = import_submissions(db, "hh", "hh.zip", data, "enumerators")
    assert (again.new, again.already) == (0, 2)


# ------------------------------------------------------------------ campaigns


@pytest.fixture
def campaign(surveys_demo: Any) -> tuple[Campaign, list[tuple[str, Invitation]]]:
    """A survey-only campaign of district D01 with four issued invitations."""
    now = dt.datetime.now(dt.UTC)
    made = create_campaign(surveys_demo, district_code="D01", user="t", name="Field",
                           test_instrument=None, survey_code="learning_needs",
                           mode="sample", opens_at=local_input(now - dt.timedelta(days=1)),
                           closes_at=local_input(now + dt.timedelta(days=30)))
    surveys_demo.commit()
    codes = ready_campaign(surveys_demo, made, {"S1": (40.0, [{"street": "S01"}] * 4)})
    return made, codes


def with_codes(codes: list[str]) -> bytes:
    return edit(ODK, {(i + 2, "invitation_code"): c for i, c in enumerate(codes)})


def test_imported_responses_count_in_progress_and_closing_as_page_ones(
        surveys_demo: Any, testapp: Any, campaign: Any) -> None:
    from monitoring.closing import close_campaign
    from monitoring.fieldwork.progress import campaign_progress
    from monitoring.results.respondents import campaign_sources

    db = surveys_demo
    made, codes = campaign
    token = testapp.post_json("/api/v1/invitations/redeem", {
        "code": codes[0][0], "consent": True}).json["survey_session"]["token"]
    finish_survey(testapp, token)  # one resident on the pages
    data = with_codes([c for c, _inv in codes[1:]])
    result = import_submissions(db, "learning_needs", "field.csv", data, "enumerators",
                                campaign=made.code, directory=DIRECTORY)
    assert result.ok and result.new == 3, [p.text() for p in result.problems]
    again = import_submissions(db, "learning_needs", "field.csv", data, "enumerators",
                               campaign=made.code, directory=DIRECTORY)
    assert (again.new, again.already) == (0, 3)
    db.commit()
    db.expire_all()
    made = db.get(Campaign, made.id)
    report = campaign_progress(db, made)
    assert (report.overall.sampled, report.overall.started, report.overall.completed) == \
        (4, 4, 4)
    invitations = db.scalars(sa.select(Invitation).where(
        Invitation.campaign_id == made.id).order_by(Invitation.id)).all()
    assert {i.status for i in invitations} == {"completed"}
    assert all(i.survey_session_id is not None for i in invitations)
    sessions = db.scalars(sa.select(SurveySession).where(
        SurveySession.campaign == made.code)).all()
    assert {s.district for s in sessions} == {"D01"}
    assert sorted(s.source for s in sessions) == ["odk", "odk", "odk", "page"]
    responses = services.campaign_responses(db, made.code)
    assert {r["invitation"] for r in responses} == {i.public_id for i in invitations}
    assert campaign_sources(db, made).finished() == {
        i.public_id: {"survey"} for i in invitations}
    weights = close_campaign(db, made, "t").step("weights").record()
    assert weights["outcome"] != "failed", weights
    assert {"completed": 4, "sampled": 4, "unfinished": 0} in [
        m["mapping"] for m in weights["messages"]]


def test_unknown_repeated_and_answered_invitation_codes_are_problems(
        surveys_demo: Any, testapp: Any, campaign: Any) -> None:
    db = surveys_demo
    made, codes = campaign
    token = testapp.post_json("/api/v1/invitations/redeem", {
        "code": codes[0][0], "consent": True}).json["survey_session"]["token"]
    finish_survey(testapp, token)
    data = with_codes([codes[0][0], "ZZZZ-ZZZZ-ZZZZZ", codes[1][0]])
    data = edit(data, {}, extra=[{"meta-instanceID": "uuid:x4", "KEY": "uuid:x4",
                                  "invitation_code": codes[1][0]}])
    data = edit(data, {}, extra=[
        {"meta-instanceID": "uuid:x5", "KEY": "uuid:x5", "invitation_code": ""}])
    result = import_submissions(db, "learning_needs", "field.csv", data, "t",
                                campaign=made.code, directory=DIRECTORY)
    assert where(result) == {(2, "invitation_code"), (3, "invitation_code"),
                             (5, "invitation_code"), (6, "invitation_code")}
    messages = {p.row: p.message.en for p in result.problems}
    assert "already answered" in messages[2] and "no such invitation" in messages[3]
    assert "row 4" in messages[5] and messages[6] == "no invitation code"
    db.commit()
    assert db.scalar(sa.select(sa.func.count(SurveySession.id)).where(
        SurveySession.source != "page")) == 0


def test_a_row_lists_every_problem_not_only_its_invitation_code(
        surveys_demo: Any, campaign: Any) -> None:
    db = surveys_demo
    made, codes = campaign
    data = with_codes(["", "ZZZZ-ZZZZ-ZZZZZ", codes[0][0]])
    data = edit(data, {(2, "background-age_band"): "61-69",
                       (3, "background-age_band"): "99",
                       (4, "background-age_band"): "61-69"})
    result = import_submissions(db, "learning_needs", "field.csv", data, "t",
                                campaign=made.code, directory=DIRECTORY)
    assert where(result) == {(2, "invitation_code"), (2, "background-age_band"),
                             (3, "invitation_code"), (3, "background-age_band"),
                             (4, "background-age_band")}
    assert len(result.problems) == 5 and result.new == 0


def test_campaign_checks(surveys_demo: Any, campaign: Any) -> None:
    db = surveys_demo
    made, codes = campaign
    data = with_codes([c for c, _inv in codes[:3]])
    no_campaign = import_submissions(db, "learning_needs", "f.csv", data, "t")
    assert where(no_campaign) == {(None, "invitation_code")}
    # stored without a campaign, the same instances are not taken over by one
    assert import_submissions(db, "learning_needs", "o.csv", ODK, "t").new == 3
    taken = import_submissions(db, "learning_needs", "f.csv", data, "t",
                               campaign=made.code, directory=DIRECTORY)
    assert where(taken) == {(2, None), (3, None), (4, None)}
    assert "campaign or invitation" in taken.problems[0].text()
    db.rollback()
    other_district = import_submissions(db, "learning_needs", "f.csv", data, "t",
                                        campaign=made.code, directory=DIRECTORY,
                                        district="D02")
    assert "no campaign" in other_district.problems[0].text()
    made.status = "closed"
    closed = import_submissions(db, "learning_needs", "f.csv", data, "t",
                                campaign=made.code, directory=DIRECTORY)
    assert "closed" in closed.problems[0].text()
    db.rollback()
    assert counts(db)[0] == 0


# ------------------------------------------------------------------ command line


def test_the_command_prints_counts_and_problems(tmp_path: Path, surveys_demo: Any,
                                                db_url: str, campaign: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ini = write_ini(tmp_path, db_url)
    monkeypatch.setattr(submissions, "invitation_directory",
                        lambda settings: FieldworkInvitations(settings["learningcity.secret"]))
    made, codes = campaign
    # write_ini's secret is not the test app's: issue codes the command can find
    from monitoring.fieldwork.invitations import hash_code

    secret = "test-secret-that-is-long-enough-for-us"
    for code, inv in codes:
        surveys_demo.get(Invitation, inv.id).code_hash = hash_code(secret, code)
    surveys_demo.commit()
    good = tmp_path / "field.csv"
    good.write_bytes(with_codes([c for c, _inv in codes[:3]]))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(edit(good.read_bytes(), {(2, "background-sex"): "x"}))

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, ["survey", "import-submissions", *args, "--ini", ini,
                                         "--actor", "enumerators"], catch_exceptions=False)

    refused = run("learning_needs", str(bad), "--campaign", made.code)
    assert refused.exit_code == 1
    assert "row 2, column 'background-sex': Please choose from the options." in \
        refused.output
    dry = run("learning_needs", str(good), "--campaign", made.code, "--dry-run")
    assert dry.exit_code == 0 and "3 new" in dry.output and "nothing stored" in dry.output
    first = run("learning_needs", str(good), "--campaign", made.code)
    assert first.exit_code == 0 and "3 new, 0 already imported" in first.output
    second = run("learning_needs", str(good), "--campaign", made.code)
    assert second.exit_code == 0 and "0 new, 3 already imported" in second.output
    surveys_demo.expire_all()
    assert surveys_demo.scalar(sa.select(sa.func.count(SurveySession.id))) == 3


# ------------------------------------------------------------------ the upload page


@pytest.fixture(scope="module")
def page_app(db_url: str) -> Any:
    """The app with the upload page included (as ``surveys.includeme`` is asked to) and
    the fieldwork directory in the registry."""
    from learningcity import main
    from surveys.submission_views import DIRECTORY_KEY
    from tests.conftest import app_settings

    app = main({}, **app_settings(db_url, **{"pyramid.includes": "surveys.submission_views"}))
    app.registry[DIRECTORY_KEY] = DIRECTORY
    return app


@pytest.fixture
def client(page_app: Any, dbsession: Any) -> Any:
    import webtest

    def logged_in(username: str | None) -> Any:
        app = webtest.TestApp(page_app, extra_environ={"REMOTE_ADDR": "127.0.0.9"})
        if username is not None:
            form = app.get("/login").forms[0]
            form["username"], form["password"] = username, "correct horse battery"
            assert form.submit().status_int == 303
        return app

    return logged_in


@pytest.fixture
def district_campaigns(surveys_demo: Any, staff: Any) -> dict[str, Any]:
    """A survey-only campaign in district A (three invitations) and one in B."""
    now = dt.datetime.now(dt.UTC)
    made = {}
    for district in ("A", "B"):
        c = create_campaign(surveys_demo, district_code=district, user="t",
                            name=f"Field {district}", test_instrument=None,
                            survey_code="learning_needs", mode="sample",
                            opens_at=local_input(now - dt.timedelta(days=1)),
                            closes_at=local_input(now + dt.timedelta(days=30)))
        surveys_demo.commit()
        made[district] = (c.code, ready_campaign(surveys_demo, c, {
            "S1": (30.0, [{"street": "S01"}] * 3)}))
    return made


def test_district_staff_upload_into_their_own_campaign_only(
        client: Any, district_campaigns: Any, surveys_demo: Any) -> None:
    a_code, a_codes = district_campaigns["A"]
    b_code, _b = district_campaigns["B"]
    data = with_codes([c for c, _inv in a_codes])
    app = client("district_a")
    page = app.get(f"/research/surveys/submissions?campaign={a_code}")
    form = page.forms["submissions-form"]
    assert [v for v, _s, _t in form["campaign"].options] == [a_code]  # not B's, no "none"
    assert form["campaign"].value == a_code
    form["file"] = ("field.csv", data)
    done = form.submit(status=303).follow()
    assert "3 new" in done.text or "新增 3" in done.text
    again = app.get("/research/surveys/submissions").forms["submissions-form"]
    again["file"] = ("field.csv", data)
    assert "3" in again.submit(status=303).follow().text
    assert counts(surveys_demo)[0] == 3
    # another district's campaign is refused as unknown, and nothing is stored
    other = app.get("/research/surveys/submissions").forms["submissions-form"]
    other["file"] = ("field.csv", data)
    other["campaign"].force_value(b_code)
    refused = other.submit(status=400)
    assert b_code in refused.text and "problems" in refused.text
    assert counts(surveys_demo)[0] == 3


def test_the_page_lists_every_problem_in_zh_and_en_and_stores_nothing(
        client: Any, district_campaigns: Any, surveys_demo: Any) -> None:
    a_code, a_codes = district_campaigns["A"]
    bad = edit(with_codes([c for c, _inv in a_codes]),
               {(2, "background-sex"): "x", (3, "invitation_code"): "ZZZZ-ZZZZ-ZZZZZ"})
    app = client("admin")
    for lang, words in (("zh", ("请从选项中选择。", "没有这个邀请码")),
                        ("en", ("Please choose from the options.", "no such invitation"))):
        form = app.get(f"/research/surveys/submissions?lang={lang}").forms[
            "submissions-form"]
        form["campaign"] = a_code
        form["file"] = ("bad.csv", bad)
        page = form.submit(status=400)
        rows = page.html.select("table.problems tbody tr")
        cells = [[td.get_text() for td in tr.select("td")] for tr in rows]
        assert [c[1:3] for c in cells] == [["2", "background-sex"], ["3", "invitation_code"]]
        assert words[0] in cells[0][3] and words[1] in cells[1][3]
    assert counts(surveys_demo)[0] == 0


def test_the_survey_dropdown_shows_the_title_in_the_page_language(
        client: Any, district_campaigns: Any) -> None:
    app = client("admin")
    for lang, title in (("zh", "市民学习需求与参与情况调查"),
                        ("en", "Residents' learning needs and participation survey")):
        form = app.get(f"/research/surveys/submissions?lang={lang}").forms[
            "submissions-form"]
        assert form["survey"].options == [("learning_needs", True,
                                           f"{title} (learning_needs)")]


def test_who_may_open_the_upload_page(client: Any, district_campaigns: Any) -> None:
    for role, status in (("district_a", 200), ("admin", 200), ("researcher", 403),
                         ("monitor", 403)):
        assert client(role).get("/research/surveys/submissions",
                                expect_errors=True).status_int == status, role
    anonymous = client(None).get("/research/surveys/submissions", expect_errors=True)
    assert anonymous.status_int in (302, 303, 401, 403) and (
        anonymous.status_int >= 400 or "/login" in anonymous.location)
    without_csrf = client("admin").post("/research/surveys/submissions", {
        "survey": "learning_needs"}, upload_files=[("file", "f.csv", ODK)],
        expect_errors=True)
    assert without_csrf.status_int in (400, 403)


# ------------------------------------------------------------------ column layouts (no database)


def default() -> Survey:
    from surveys.definition import default_survey

    return default_survey()


def test_bare_names_and_split_choice_columns_read_as_the_grouped_export() -> None:
    grouped = read_submissions(default(), "odk.csv", ODK)
    header, *rows = list(csv.reader(io.StringIO(ODK.decode("utf-8"))))
    bare = [c if c.startswith("meta-") else c.rsplit("-", 1)[-1] for c in header]
    topics = header.index("needs-topics")
    choices = [c.name for c in default().choice_lists["topic"]]
    split_header = bare[:topics] + [f"needs-topics/{c}" for c in choices] + bare[topics + 1:]
    split_rows = [r[:topics] + ["1" if c in r[topics].split() else "0" for c in choices]
                  + r[topics + 1:] for r in rows]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([split_header, *split_rows])
    read = read_submissions(default(), "odk.csv", out.getvalue().encode("utf-8"))
    assert read.source == "odk" and read.problems == [] and read.warnings == []
    assert [s.answers for s in read.submissions] == [s.answers for s in grouped.submissions]
    assert [s.instance_id for s in read.submissions] == IDS


def test_an_xlsx_export_reads_as_its_csv() -> None:
    frame = pd.read_csv(io.BytesIO(ODK), dtype=str, keep_default_na=False)
    data = write_workbook([Sheet("learning_needs", frame)])
    from_xlsx = read_submissions(default(), "odk.xlsx", data)
    from_csv = read_submissions(default(), "odk.csv", ODK)
    assert from_xlsx.problems == [] and [s.answers for s in from_xlsx.submissions] == [
        s.answers for s in from_csv.submissions]


def test_meta_and_calculate_columns_give_times_not_answers() -> None:
    page = Page("p", Text("页", "Page"), (
        Question("began", "start", Text("", "")), Question("ended", "end", Text("", "")),
        Question("day", "today", Text("", "")),
        Question("age", "integer", Text("年龄", "Age"), required=True),
        Question("double", "calculate", Text("", ""), calculation="${age} * 2")))
    survey = Survey("m", 1, Text("m", "m"), {}, (page,))
    data = (b"SubmissionDate,p-began,p-ended,p-day,p-age,p-double,meta-instanceID,KEY\n"
            b"2026-11-21T02:10:33.512Z,2026-11-20T09:00:00+08:00,2026-11-20T09:05:00+08:00,"
            b"2026-11-20,30,60,uuid:m1,uuid:m1\n")
    read = read_submissions(survey, "m.csv", data)
    assert read.problems == [] and read.warnings == []
    (one,) = read.submissions
    assert one.answers == {"age": 30}
    assert (one.started_at, one.ended_at) == (dt.datetime(2026, 11, 20, 1, tzinfo=dt.UTC),
                                              dt.datetime(2026, 11, 20, 1, 5, tzinfo=dt.UTC))
