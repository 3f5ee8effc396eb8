"""An organisation fills its self-assessment on a 360 px phone without JavaScript, then
the district officer reviews it at 1280 px and the city office confirms it (headless
Chromium). Screenshots org-self-360.png and org-review-1280.png (see LC_SCREENSHOTS in
tests/browser.py)."""
from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from tests.browser import SCREENSHOTS, fits, make_app, serving, submit
from tests.site_pages import PASSWORD, USERNAMES, add_staff


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from monitoring.organisations import demo_content, selfassess
    from monitoring.organisations.models import Organisation

    app = make_app(tmp_path_factory.mktemp("org-browser"))
    add_staff(app)
    db = app.registry.dbsession_factory()
    demo_content.load(db)  # idempotent: a no-op once its entry point is installed
    organisation = db.scalar(sa.select(Organisation).where(Organisation.code == "D01-C5"))
    token, _evaluation = selfassess.invite(db, organisation, 2025, actor="browser-test")
    db.commit()
    organisation_id = organisation.id
    db.close()
    with serving(app) as url:
        yield url, token, organisation_id, app


def _login(page: Any, server: str, role: str) -> None:
    page.goto(server + "/login")
    page.fill("input[name=username]", USERNAMES[role])
    page.fill("input[name=password]", PASSWORD)
    submit(page, "form.stack button[type=submit], main button[type=submit]")


def test_self_assessment_on_a_phone_then_review_and_confirmation(served: Any,
                                                                  browser: Any) -> None:
    from monitoring.organisations.recognition import learning_community_counts

    server, token, organisation_id, app = served
    phone = browser.new_context(viewport={"width": 360, "height": 740},
                                device_scale_factor=2, locale="zh-CN",
                                java_script_enabled=False)
    page = phone.new_page()
    page.goto(f"{server}/o/{token}")
    assert "自评" in page.content() and fits(page)
    radio = page.locator("input[name=level-organisation][value=A]")
    label = page.locator("label.choice").first.bounding_box()
    assert label["height"] >= 44  # a whole row to tap
    radio.check()
    page.fill("textarea[name=note-organisation]", "成立了学习型社区建设领导小组")
    submit(page, "button[value=save]")
    assert "saved=draft" in page.url and "草稿已保存" in page.content()
    page.select_option("select[name=criterion]", "activities")
    page.set_input_files("input[name=file]", files=[{
        "name": "活动记录.pdf", "mimeType": "application/pdf",
        "buffer": b"%PDF-1.4\n% browser evidence\n"}])
    submit(page, "form#evidence button[type=submit]")
    assert "文件已上传" in page.content()
    for code in ("organisation", "facilities", "activities", "participation", "results"):
        page.check(f"input[name=level-{code}][value=B]")
    page.check("input[name=level-organisation][value=A]")
    assert fits(page)
    page.screenshot(path=str(SCREENSHOTS / "org-self-360.png"), full_page=True)
    submit(page, "button[value=submit]")
    assert "saved=submitted" in page.url and "提交" in page.content()
    assert page.locator("input[type=radio]").count() == 0  # read-only once submitted
    assert fits(page)
    page.screenshot(path=str(SCREENSHOTS / "org-self-submitted-360.png"), full_page=True)
    phone.close()

    # the district returns it first: the phone sees the comment and submits again
    desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = desk.new_page()
    _login(page, server, "district")
    page.goto(f"{server}/organisations/{organisation_id}/review/2025")
    page.fill("textarea#return-comment", "请补充活动照片，并写明参与人数")
    submit(page, "form#return button[type=submit]")
    assert "已退回组织" in page.content() and "已退回修改" in page.content()
    assert fits(page, 1280)
    page.screenshot(path=str(SCREENSHOTS / "org-review-returned-1280.png"), full_page=True)
    phone = browser.new_context(viewport={"width": 360, "height": 740},
                                device_scale_factor=2, locale="zh-CN",
                                java_script_enabled=False)
    mobile = phone.new_page()
    mobile.goto(f"{server}/o/{token}")
    assert "请补充活动照片" in mobile.locator("#returned").inner_text() and fits(mobile)
    mobile.fill("textarea[name=note-participation]", "参与 120 人次")
    mobile.screenshot(path=str(SCREENSHOTS / "org-self-returned-360.png"), full_page=True)
    submit(mobile, "button[value=submit]")
    assert "saved=submitted" in mobile.url
    assert mobile.locator("input[type=radio]").count() == 0
    phone.close()

    page.goto(f"{server}/organisations/{organisation_id}/review/2025")
    assert "活动记录.pdf" in page.content() and "参与 120 人次" in page.content()
    page.select_option("select[name=level-results]", "C")
    submit(page, "form#review button[type=submit]")
    assert page.locator("[role=alert]").count() == 1  # a differing level needs a comment
    page.fill("textarea[name=comment-results]", "成效材料只覆盖半年")
    submit(page, "form#review button[type=submit]")
    # 100 * (0.2*4/4 + 0.2*3/4 + 0.3*3/4 + 0.2*3/4 + 0.1*2/4) = 20+15+22.5+15+5 = 77.5
    assert "77.5" in page.content() and "已认定" in page.content()
    assert fits(page, 1280)
    page.screenshot(path=str(SCREENSHOTS / "org-review-1280.png"), full_page=True)
    desk.close()

    office = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = office.new_page()
    _login(page, server, "monitor")
    page.goto(f"{server}/organisations/{organisation_id}/review/2025")
    submit(page, "form#confirm button[type=submit]")
    assert "结果已确认" in page.content()
    page.goto(f"{server}/organisations?year=2025")
    assert re.search(r"D01 · [^<]+</td>\s*<td[^>]*>\d+</td>", page.content())
    page.screenshot(path=str(SCREENSHOTS / "org-list-1280.png"), full_page=True)
    office.close()
    db = app.registry.dbsession_factory()
    try:
        recognised, everyone = learning_community_counts(db, 2025)["D01"]
    finally:
        db.close()
    assert everyone == 5 and recognised >= 1
