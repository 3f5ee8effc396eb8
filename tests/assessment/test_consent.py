"""Issue 16 finding 6: the consent screen and the survey's privacy notice say what the code
does, in both languages, with the retention period from the setting."""
from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import app_settings


@pytest.fixture
def app_with_five_years(db_url: str) -> Any:
    import webtest

    from learningcity import main

    return webtest.TestApp(main({}, **app_settings(db_url, **{
        "assessment.retention_years": "5"})))


def test_the_consent_states_collection_retention_and_withdrawal(
        app_with_five_years: Any, demo: Any) -> None:
    zh = app_with_five_years.get("/test?lang=zh-CN").text
    for phrase in ("我们不询问您的姓名、电话号码或身份证号", "保存 5 年", "撤回我的数据",
                   "已经发布的群体结果保持不变", "不含任何指向您的信息", "每次查看都有记录"):
        assert phrase in zh, phrase
    en = app_with_five_years.get("/test?lang=en").text
    for phrase in ("for 5 years after your last answer", "Withdraw my data",
                   "Group results that were already published stay",
                   "kept only without anything that points to you"):
        assert phrase in en, phrase


def test_the_survey_notice_makes_not_named_true(app_with_five_years: Any, demo: Any) -> None:
    from surveys import demo_content

    demo_content.load(demo)
    demo.commit()
    start = app_with_five_years.get("/survey?lang=zh-CN")
    assert "不记名" in start.text and "保存 5 年" in start.text
    page = start.forms[0].submit().follow()  # the intro page of the session
    for phrase in ("问卷不记名，不问您的姓名、电话或身份证号", "与该邀请或测评关联",
                   "您自己输入的文字", "撤回我的问卷回答"):
        assert phrase in page.text, phrase
    en = app_with_five_years.get(page.request.path + "?lang=en").text
    assert "for 5 years after your last answer" in en and "Not named" in en
