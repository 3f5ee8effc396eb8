"""Every item-bank action that changes what residents see, or that lets person-level data
out, leaves an audit row with the real actor and its target (issue 16, "Audit")."""
from __future__ import annotations

import getpass

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from itembank.models import Instrument, Item, ItemVersion
from itembank.services import import_calibration, publish, record_response
from learningcity.cli import main
from learningcity.models import AuditEvent
from scoring.params import ItemParams
from tests.conftest import write_ini


def _params(codes, shift=0.0):
    n = len(codes)
    return ItemParams.from_arrays(item_ids=codes, model="2pl", a=np.linspace(0.8, 1.6, n),
                                  b=np.linspace(-1.5, 1.5, n) + shift)


@pytest.fixture
def calibrations(dbsession, bank, staff):
    instrument = dbsession.scalar(sa.select(Instrument).where(Instrument.code == "LLA"))
    codes = dbsession.scalars(sa.select(Item.code).order_by(Item.code)).all()
    first = import_calibration(dbsession, instrument, _params(codes), "base", "tests")
    second = import_calibration(dbsession, instrument, _params(codes, 0.5), "base", "tests")
    publish(dbsession, first, "tests")
    dbsession.commit()
    return instrument, first, second


def _events(dbsession, action):
    dbsession.expire_all()
    return dbsession.execute(sa.select(AuditEvent.actor, AuditEvent.target, AuditEvent.detail)
                             .where(AuditEvent.action == action)
                             .order_by(AuditEvent.id)).all()


def test_a_web_item_edit_is_audited(testapp, login, calibrations, dbsession) -> None:
    login("researcher", status=303)
    form = testapp.get("/research/items/DIG-001/edit").forms[0]
    form["stem_zh"] = "新的题干"
    form.submit(status=303)
    assert [(a, t, d["version"]) for a, t, d in _events(dbsession, "item.edit")] == [
        ("researcher", "DIG-001", 2)]
    # saving unchanged content is no edit: no new version, no second row
    testapp.get("/research/items/DIG-001/edit").forms[0].submit(status=303)
    assert len(_events(dbsession, "item.edit")) == 1
    assert dbsession.scalar(sa.select(sa.func.count(ItemVersion.id)).join(Item)
                            .where(Item.code == "DIG-001")) == 2


def test_a_web_status_change_is_audited(testapp, login, calibrations, dbsession) -> None:
    login("admin", status=303)
    form = testapp.get("/research/items/DIG-002").forms["status-form"]
    form["status"], form["confirm"], form["note"] = "retired", True, "leaked in a forum"
    form.submit(status=303)
    [(actor, target, detail)] = _events(dbsession, "item.status")
    assert (actor, target) == ("admin", "DIG-002")
    assert detail == {"from": "operational", "to": "retired", "note": "leaked in a forum"}


def test_web_publish_and_rollback_are_audited(testapp, login, calibrations, dbsession) -> None:
    _instrument, first, second = calibrations
    login("researcher", status=303)
    testapp.get(f"/research/calibrations/{second.id}/publish").forms[0].submit(status=303)
    testapp.get("/research/calibrations/rollback?instrument=LLA").forms[0].submit(status=303)
    published = [(a, t) for a, t, _d in _events(dbsession, "calibration.publish")]
    assert published == [("tests", first.label), ("researcher", second.label)]
    assert [(a, t, d["instrument"]) for a, t, d in _events(dbsession, "calibration.rollback")
            ] == [("researcher", first.label, "LLA")]


def test_cli_publish_and_rollback_are_audited_with_the_os_login(calibrations, dbsession,
                                                                tmp_path, db_url) -> None:
    _instrument, first, second = calibrations
    ini = write_ini(tmp_path, db_url)
    runner = CliRunner()
    result = runner.invoke(main, ["itembank", "publish", "--name", "base", "--version", "2",
                                  "--ini", ini])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["itembank", "rollback", "--as", "li.ming", "--ini", ini])
    assert result.exit_code == 0, result.output
    me = f"cli:{getpass.getuser()}"
    assert [(a, t) for a, t, _d in _events(dbsession, "calibration.publish")][-1] == (
        me, second.label)
    assert [(a, t) for a, t, _d in _events(dbsession, "calibration.rollback")] == [
        ("li.ming", first.label)]


def test_export_responses_is_audited_before_the_file_appears(bank, dbsession, tmp_path,
                                                             db_url) -> None:
    instrument = dbsession.scalar(sa.select(Instrument).where(Instrument.code == "LLA"))
    versions = dbsession.scalars(sa.select(ItemVersion).order_by(ItemVersion.id)).all()
    for person in ("p1", "p2", "p3"):
        for version in versions[:4]:
            record_response(dbsession, instrument=instrument, version=version,
                            respondent=person, choice=1, groups={"age_band": "60+"})
    dbsession.commit()
    ini = write_ini(tmp_path, db_url)
    out = tmp_path / "responses.csv"
    result = CliRunner().invoke(main, ["itembank", "export-responses", "--instrument", "LLA",
                                       "--out", str(out), "--group", "age_band",
                                       "--ini", ini])
    assert result.exit_code == 0, result.output
    [(actor, target, detail)] = _events(dbsession, "responses.export")
    assert (actor, target) == (f"cli:{getpass.getuser()}", "LLA")
    assert detail["persons"] == 3 and detail["items"] == 4
    assert detail["groups"] == ["age_band"] and detail["destination"] == str(out.resolve())
    assert out.exists() and not (tmp_path / "responses.csv.part").exists()
    # an export that fails (unknown instrument) leaves neither a file nor a row
    bad = tmp_path / "bad.csv"
    result = CliRunner().invoke(main, ["itembank", "export-responses", "--instrument", "NOPE",
                                       "--out", str(bad), "--ini", ini])
    assert result.exit_code == 1 and "unknown instrument" in result.output
    assert not bad.exists() and not (tmp_path / "bad.csv.part").exists()
    assert len(_events(dbsession, "responses.export")) == 1
