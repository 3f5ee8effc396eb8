"""``learningcity survey``: validate (no database), import (all or nothing), list, export."""
from __future__ import annotations

import csv
import io
import json

import sqlalchemy as sa
from click.testing import CliRunner

from learningcity.cli import main
from surveys.definition import DEFAULTS_DIR
from surveys.models import SurveyDefinition, SurveyPublication
from tests.conftest import write_ini

from .test_staff import respond


def run(*args):
    return CliRunner().invoke(main, ["survey", *args], catch_exceptions=False)


def broken_file(tmp_path):
    doc = json.loads((DEFAULTS_DIR / "learning_needs.json").read_text(encoding="utf-8"))
    doc["pages"][3]["questions"][1]["relevant"] = "${nowhere} = 'yes'"
    doc["pages"][1]["questions"][0]["choices"] = "no_such_list"
    doc["title"] = {"zh": "只有中文"}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_validate_lists_every_problem_and_exits_1(tmp_path):
    ok = run("validate", str(DEFAULTS_DIR / "learning_needs.xlsx"))
    assert ok.exit_code == 0 and "ok, survey 'learning_needs'" in ok.output
    bad = run("validate", str(broken_file(tmp_path)))
    assert bad.exit_code == 1
    assert "nowhere" in bad.output and "no_such_list" in bad.output and "title" in bad.output
    assert "3 problem(s)" in bad.output


def test_import_list_and_export(tmp_path, dbsession, db_url):
    ini = write_ini(tmp_path, db_url)
    bad = run("import", str(broken_file(tmp_path)), "--ini", ini)
    assert bad.exit_code == 1 and "nowhere" in bad.output
    assert dbsession.scalar(sa.select(sa.func.count(SurveyDefinition.id))) == 0
    res = run("import", str(DEFAULTS_DIR / "learning_needs.json"), "--publish", "--ini", ini)
    assert res.exit_code == 0 and "imported learning_needs version 1 (published)" in res.output
    again = run("import", str(DEFAULTS_DIR / "learning_needs.xlsx"), "--ini", ini)
    assert "already stored as learning_needs version 1" in again.output
    assert dbsession.scalar(sa.select(SurveyPublication.code)) == "learning_needs"
    from learningcity import demo

    demo.load(dbsession)
    respond(dbsession, "D01", scope="D01", campaign="C1")
    respond(dbsession, "D02", scope="D02", campaign="C2")  # scoped by the campaign
    dbsession.commit()
    listed = run("list", "--ini", ini)
    assert "* learning_needs\tv1" in listed.output and "finished=2" in listed.output
    out = tmp_path / "r.csv"
    res = run("export", "learning_needs", "--format", "csv", "--out", str(out),
              "--district", "D02", "--ini", ini)
    assert res.exit_code == 0 and "(1 respondents)" in res.output
    res = run("export", "learning_needs", "--format", "csv", "--out", str(out),
              "--district", "D02", "--actor", "ops-bob", "--ini", ini)
    import getpass

    from learningcity.models import AuditEvent

    dbsession.expire_all()
    exports = dbsession.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "survey.download").order_by(AuditEvent.id)).all()
    # the real actor (issue 16): the operating-system user, or --actor; never "cli"
    assert [e.actor for e in exports] == [getpass.getuser(), "ops-bob"]
    assert exports[0].detail["respondents"] == 1
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [r["district"] for r in rows] == ["D02"]
    sav = tmp_path / "r.sav"
    assert run("export", "learning_needs", "--format", "sav", "--out", str(sav),
               "--ini", ini).exit_code == 0
    import pyreadstat

    frame, meta = pyreadstat.read_sav(str(sav))
    assert len(frame) == 2 and meta.variable_value_labels["age_band"][4.0] == "60-69岁"
    en = tmp_path / "r-en.sav"
    assert run("export", "learning_needs", "--format", "sav", "--out", str(en),
               "--labels", "en", "--ini", ini).exit_code == 0
    frame, meta = pyreadstat.read_sav(str(en))
    assert meta.variable_value_labels["age_band"][4.0] == "60 to 69"
    assert meta.variable_value_labels["age_band"][-9.0] == "no answer"
    assert meta.variable_storage_width["street"] == 90
    missing = CliRunner().invoke(main, ["survey", "export", "nope", "--out",
                                        str(tmp_path / "x.csv"), "--ini", ini])
    assert missing.exit_code != 0 and "no survey 'nope'" in missing.output
