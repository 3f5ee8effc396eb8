"""Researcher pages: publish and roll back with confirmation; other roles are refused."""
from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from itembank.models import CalibrationEvent, Instrument, Item
from itembank.services import import_calibration, publish
from learningcity.models import AuditEvent
from scoring.params import ItemParams


def params_for(codes, shift=0.0):
    n = len(codes)
    return ItemParams.from_arrays(item_ids=codes, model="2pl", a=np.linspace(0.8, 1.6, n),
                                  b=np.linspace(-1.5, 1.5, n) + shift)


@pytest.fixture
def calibrations(dbsession, bank, staff):
    instrument = dbsession.scalar(sa.select(Instrument).where(Instrument.code == "LLA"))
    codes = dbsession.scalars(sa.select(Item.code).order_by(Item.code)).all()
    first = import_calibration(dbsession, instrument, params_for(codes), "base", "tests")
    second = import_calibration(dbsession, instrument, params_for(codes, 0.5), "base", "tests")
    publish(dbsession, first, "tests")
    dbsession.commit()
    return instrument, first, second


def test_researcher_publishes_with_confirmation_then_rolls_back(testapp, login, calibrations,
                                                                 dbsession):
    instrument, first, second = calibrations
    login("researcher", status=303)
    page = testapp.get(f"/research/calibrations/{second.id}/publish")
    assert "base v2" in page.text and "base v1" in page.text
    page.forms[0].submit(status=303)
    dbsession.expire_all()
    assert dbsession.get(Instrument, instrument.id).published_calibration_id == second.id
    form = testapp.get("/research/calibrations/rollback?instrument=LLA").forms[0]
    form.submit(status=303)
    dbsession.expire_all()
    assert dbsession.get(Instrument, instrument.id).published_calibration_id == first.id
    actions = dbsession.scalars(sa.select(CalibrationEvent.action).order_by(
        CalibrationEvent.id)).all()
    assert actions == ["publish", "publish", "rollback"]
    audited = dbsession.scalars(sa.select(AuditEvent.actor).where(
        AuditEvent.action.like("calibration.%"))).all()
    assert "researcher" in audited


def test_publish_without_confirmation_is_refused(testapp, login, calibrations, dbsession):
    instrument, first, second = calibrations
    login("researcher", status=303)
    form = testapp.get(f"/research/calibrations/{second.id}/publish").forms[0]
    form["confirm"] = "no"
    form.submit(status=400)
    dbsession.expire_all()
    assert dbsession.get(Instrument, instrument.id).published_calibration_id == first.id


@pytest.mark.parametrize("username", ["monitor", "district_a"])
def test_monitor_and_district_cannot_publish_or_roll_back(testapp, login, calibrations,
                                                          dbsession, username):
    instrument, first, second = calibrations
    login(username, status=303)
    testapp.get(f"/research/calibrations/{second.id}/publish", status=403)
    token = testapp.get("/staff/").forms[0]["csrf_token"].value
    testapp.post(f"/research/calibrations/{second.id}/publish",
                 {"confirm": "yes", "csrf_token": token}, status=403)
    testapp.post("/research/calibrations/rollback?instrument=LLA",
                 {"confirm": "yes", "csrf_token": token}, status=403)
    testapp.get("/research/items", status=403)
    dbsession.expire_all()
    assert dbsession.get(Instrument, instrument.id).published_calibration_id == first.id


def test_researcher_pages_render(testapp, login, calibrations):
    _instrument, first, second = calibrations
    login("researcher", status=303)
    items = testapp.get("/research/items?domain=digital")
    assert "DIG-001" in items.text and "NUM-001" not in items.text
    item = testapp.get("/research/items/DIG-001")
    assert f"curve.png?calibration={first.id}" in item.text
    png = testapp.get(f"/research/items/DIG-001/curve.png?calibration={first.id}")
    assert png.content_type == "image/png" and png.body[:4] == b"\x89PNG"
    diff = testapp.get(f"/research/calibrations/diff?left={first.id}&right={second.id}")
    assert "12" in diff.text  # all 12 items moved by 0.5 > 0.3
    assert testapp.get(f"/research/calibrations/{first.id}/information.png").body[:4] == \
        b"\x89PNG"
    health = testapp.get("/research/health?instrument=LLA")
    assert "θ" in health.text


def test_editing_an_operational_item_creates_a_version(testapp, login, calibrations,
                                                       dbsession):
    from itembank.models import ItemVersion

    login("researcher", status=303)
    form = testapp.get("/research/items/DIG-001/edit").forms[0]
    form["stem_zh"] = "新的题干"
    form["options"] = "甲 | A\n乙 | B\n丙 | C"
    form["key"] = "3"
    form.submit(status=303)
    versions = dbsession.scalars(sa.select(ItemVersion).join(Item).where(
        Item.code == "DIG-001").order_by(ItemVersion.version)).all()
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].stem_zh == "题目 DIG-001" and versions[1].stem_zh == "新的题干"
    assert versions[1].key == 3 and len(versions[1].options) == 3
    bad = testapp.get("/research/items/DIG-001/edit").forms[0]
    bad["key"] = "9"
    res = bad.submit(status=400)
    assert "option 9 does not exist" in res.text
    assert dbsession.scalar(sa.select(sa.func.count(ItemVersion.id)).join(Item).where(
        Item.code == "DIG-001")) == 2


def test_status_change_has_no_default_and_needs_the_confirmation(testapp, login, calibrations,
                                                                 dbsession):
    """An operational item's only next status is 'retired': the form must not preselect it,
    and nothing changes until the researcher chose a status and ticked the confirmation."""
    login("researcher", status=303)
    page = testapp.get("/research/items/DIG-001?lang=en")
    select = page.html.select_one("#status-form select[name=status]")
    assert select.has_attr("required")
    first = select.find_all("option")[0]
    assert first["value"] == "" and first.has_attr("selected")
    assert [o["value"] for o in select.find_all("option")[1:]] == ["retired"]
    box = page.html.select_one("#status-form input[type=checkbox][name=confirm]")
    assert box is not None and box.has_attr("required") and not box.has_attr("checked")

    def status():
        dbsession.expire_all()
        return dbsession.scalar(sa.select(Item.status).where(Item.code == "DIG-001"))

    form = page.forms["status-form"]
    res = form.submit(status=400)  # as loaded: no status chosen, nothing ticked
    assert "Choose the new status" in res.text and status() == "operational"
    form["status"] = "retired"
    res = form.submit(status=400)  # chosen but not confirmed
    assert "Tick the confirmation" in res.text and status() == "operational"
    form["confirm"] = True
    form["note"] = "superseded"
    form.submit(status=303)
    assert status() == "retired"
    zh = testapp.get("/research/items/DIG-001?lang=zh-CN")
    assert zh.html.select_one("#status-form option").text == "请选择"
    assert "我确认" in zh.html.select_one("#status-form").text
