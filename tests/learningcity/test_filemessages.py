"""learningcity.filemessages: every tabular code has a msgid and a zh-CN translation, the
msgid is the English template (so the English page says what the command line says), and
file_problem_text translates where and what."""
from __future__ import annotations

import re

import pytest

from learningcity.filemessages import MESSAGES, file_problem_text, file_problems_text
from learningcity.i18n import _, translator
from tabular.messages import TEMPLATES
from tabular.reading import Problem, TableError, read_table

ZH = translator("zh-CN")
EN = translator("en")
_FIELD = re.compile(r"\$\{(\w+)\}")


def as_template(msgid: str) -> str:
    """The msgid written as tabular's English template."""
    return re.sub(r"'\$\{(\w+)\}'", r"{\1!r}", str(msgid)).replace("${", "{")


def test_every_tabular_code_has_a_msgid():
    assert set(TEMPLATES) - set(MESSAGES) == set()
    assert set(MESSAGES) - set(TEMPLATES) == set()


@pytest.mark.parametrize("code", sorted(TEMPLATES))
def test_msgid_is_the_english_template(code):
    assert as_template(MESSAGES[code]) == TEMPLATES[code]


@pytest.mark.parametrize("code", sorted(TEMPLATES))
def test_every_code_has_a_chinese_translation_with_the_same_fields(code):
    msgid = MESSAGES[code]
    zh = ZH(msgid)
    assert zh != str(msgid), f"{code}: no zh_CN msgstr"
    assert re.search(r"[\u4e00-\u9fff]", zh), zh
    assert sorted(_FIELD.findall(zh)) == sorted(_FIELD.findall(str(msgid)))


def refused(data: bytes, name: str) -> TableError:
    with pytest.raises(TableError) as caught:
        read_table(data, name)
    return caught.value


def test_where_and_what_are_translated():
    error = refused(b"id,x\n1," + b"y" * 40_000 + b"\n", "a.csv")
    assert file_problem_text(error.problems[0], ZH) == \
        "第 2 行，'x' 列：有一个单元格超过 32,767 个字符"
    assert file_problem_text(error.problems[0], EN) == \
        "row 2, column 'x': a cell longer than 32,767 characters"
    assert file_problem_text(error.problems[0], EN) == str(error.problems[0])


def test_sheet_and_sizes_in_chinese():
    problem = Problem.coded("a.xlsx", "survey", 4, None, "part_too_big", part="xl/x.xml",
                            size_bytes=600 * 1024 * 1024, limit_bytes=2048)
    assert file_problem_text(problem, ZH) == \
        "工作表 'survey'，第 4 行：文件中的“xl/x.xml”解压后有 600 MB（最多 2,048 字节），已拒绝"
    assert file_problem_text(problem, EN) == str(problem)


def test_many_names_are_cut_with_a_count():
    header = ",".join(f"c{i}" for i in range(25)).encode()
    with pytest.raises(TableError) as caught:
        read_table(header + b"\n1\n", "a.csv", required=("id",))
    text = file_problem_text(caught.value.problems[0], ZH)
    assert text.startswith("第 1 行，'id' 列：找不到这一列；表头中的列有：c0, c1,")
    assert text.endswith("c19 等，另有 5 个")
    assert file_problem_text(caught.value.problems[0], EN) == str(caught.value.problems[0])


def test_unknown_code_and_plain_messages_keep_their_text():
    plain = Problem("a.csv", None, 3, "sex", "unknown sex code 'x'")
    assert file_problem_text(plain, ZH) == "第 3 行，'sex' 列：unknown sex code 'x'"
    odd = Problem("a.csv", None, None, None, "something new", "no_such_code", {"n": 1})
    assert file_problem_text(odd, ZH) == "something new"


def test_a_message_with_a_translation_is_translated():
    class Said(str):
        translation = _("row ${row}", mapping={"row": 9})

    problem = Problem("a.csv", None, 2, None, Said("row 9"))
    assert file_problem_text(problem, ZH) == "第 2 行：第 9 行"


def test_problems_beyond_those_kept_are_counted():
    error = TableError([Problem.coded("a.csv", None, 1, None, "no_header")], total=12)
    assert file_problems_text(error, ZH) == ["第 1 行：没有表头行", "……另有 11 个问题"]
    assert file_problems_text(error, EN)[1] == "... and 11 more problems"
