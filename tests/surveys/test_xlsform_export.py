"""XLSForm export: pyxform converts the exported forms without errors or warnings, its own
reading of them (xls2json) holds every page, question, repeat and choice as the shared
conventions say, the shipped default workbook is valid XLSForm, reading an export back
gives the same survey, and ``learningcity survey export-xlsform`` writes them."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from pyxform.xls2json import parse_file_to_json
from pyxform.xls2xform import convert

from learningcity.cli import main
from surveys.definition import (
    DEFAULTS_DIR,
    META_TYPES,
    Choice,
    Page,
    Question,
    RatingItem,
    Repeat,
    Survey,
    Text,
    default_survey,
)
from surveys.xlsform import read_xlsform
from surveys.xlsform_export import (
    language_column,
    with_invitation_code,
    write_xlsform,
    xlsform_bytes,
)
from tests.conftest import write_ini

DEFAULT_XLSX = DEFAULTS_DIR / "learning_needs.xlsx"
LANGUAGE = {"zh": "中文 (zh)", "en": "English (en)", "fr": "Français (fr)"}
BLANK = Text("", "")


def T(zh: str, en: str, fr: str | None = None) -> Text:
    return Text(zh, en, (("fr", fr),) if fr else ())


def rich_survey() -> Survey:
    """Every construct of the conventions: meta questions (top level), a cascading select
    on a choice extra column, bounds with and without a constraint, other-specify,
    calculate, a counted repeat and a free one with its own maximum, time, datetime, month,
    range, default, read_only, a note, a rating grid with item codes and a reverse key,
    required messages, hints and a third language."""
    lists = {
        "district": (Choice("north", T("北区", "North", "Nord")),
                     Choice("south", T("南区", "South", "Sud"))),
        "street": (Choice("n1", T("北一街", "North 1st St"), (("district", "north"),)),
                   Choice("n2", T("北二街", "North 2nd St"), (("district", "north"),)),
                   Choice("s1", T("南一街", "South 1st St"), (("district", "south"),))),
        "crop": (Choice("rice", T("水稻", "Rice", "Riz")), Choice("tea", T("茶", "Tea", "Thé")),
                 Choice("other", T("其他", "Other", "Autre"))),
        "sex": (Choice("f", T("女", "Female")), Choice("m", T("男", "Male"))),
        "agree5": tuple(Choice(str(i), T(f"{i}分", f"{i} points")) for i in range(1, 6)),
    }
    meta = tuple(Page(f"p_{name}", BLANK, (Question(name, kind, BLANK),))
                 for name, kind in (("started", "start"), ("ended", "end"), ("day", "today"),
                                    ("device", "deviceid")))
    pages = (
        *meta,
        Page("home", T("住处", "Home", "Domicile"), (
            Question("district", "single_choice", T("哪个区？", "Which district?",
                                                    "Quel district ?"),
                     choices="district", required=True, appearance="minimal",
                     required_message=T("请选择区", "Choose a district")),
            Question("street", "single_choice", T("哪条街？", "Which street?"),
                     choices="street", choice_filter="district = ${district}"),
            Question("hh_size", "integer", T("家里几口人？", "People at home?"),
                     hint=T("包括您自己", "Including you", "Vous compris"), required=True,
                     minimum=1, maximum=20, constraint=". != 13",
                     constraint_message=T("请重新填写", "Please check")),
            Question("income", "decimal", T("月收入（千元）", "Monthly income (k)"),
                     maximum=99.5),
            Question("crops", "multiple_choice", T("种什么？", "What do you grow?"),
                     choices="crop", other=True),
            Question("twice", "calculate", BLANK, calculation="${hh_size} * 2"))),
        Page("members", T("家庭成员", "Household members"), (
            Question("member_name", "text", T("=姓名", "=Name"), appearance="multiline"),
            Question("member_age", "integer", T("年龄", "Age"), minimum=0, maximum=120),
            Question("member_sex", "single_choice", T("性别", "Sex"), choices="sex")),
            relevant="${hh_size} > 1", repeat=Repeat("${hh_size}", 20)),
        Page("visits", T("走访", "Visits"), (
            Question("visit_day", "date", T("哪天？", "Which day?")),),
            repeat=Repeat(None, 5)),
        Page("times", T("时间", "Times"), (
            Question("wake", "time", T("几点起床？", "When do you get up?"), default="07:00"),
            Question("last_seen", "datetime", T("最近一次？", "Last time?")),
            Question("moved", "month", T("哪月搬来？", "Month you moved in?")),
            Question("mood", "range", T("心情", "Mood", "Humeur"), minimum=1, maximum=10,
                     step=1),
            Question("code", "text", T("编号", "Code"), default="A-1", read_only=True),
            Question("bye", "note", T("谢谢", "Thanks", "Merci")))),
        Page("views", T("看法", "Views"), (
            Question("opinions", "rating_grid", T("同意吗？", "Do you agree?"),
                     hint=T("按真实想法", "Be honest"), choices="agree5", required=True,
                     relevant="${district} = 'north'",
                     items=(RatingItem("op_1", T("学习有用", "Learning is useful"), "OPN-001"),
                            RatingItem("op_2", T("太老了", "Too old"), "OPN-002", True))),)),
    )
    return Survey("rich_form", 3, T("丰富的问卷", "A rich form", "Un formulaire riche"),
                  lists, pages)


SURVEYS = {"default": default_survey, "rich": rich_survey}


# ----------------------------------------------------------------- pyxform's view


#: pyxform reads curly quotes as straight ones in every cell (its clean_text_values)
STRAIGHT = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def texts(text: Text | None) -> dict[str, str] | None:
    if text is None or not text.languages:
        return None
    return {LANGUAGE[code]: text.language(code).translate(STRAIGHT) for code in text.languages}


def _clean(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if v not in (None, {}, [])}


def bounds(q: Question) -> str | None:
    parts = [f". {op} {v}" for op, v in ((">=", q.minimum), ("<=", q.maximum))
             if v is not None and q.type in ("integer", "decimal")]
    if q.constraint:
        parts.append(f"({q.constraint})" if parts else q.constraint)
    return " and ".join(parts) or None


PYXFORM_TYPE = {"single_choice": "select one", "multiple_choice": "select all that apply",
                "month": "date"}


def expected_question(q: Question) -> list[dict[str, Any]]:
    """What pyxform must read from the rows of one question, by the conventions."""
    required = "yes" if q.required else None
    if q.type == "rating_grid":
        items = [_clean({"type": "select one", "name": i.name, "label": texts(i.label),
                         "required": required, "requiredMsg": texts(q.required_message),
                         "appearance": "likert", "list_name": q.choices,
                         "item_code": i.item_code, "reverse": "yes" if i.reverse else "no"})
                 for i in q.items]
        return [_clean({"type": "group", "name": q.name, "label": texts(q.label),
                        "hint": texts(q.hint), "relevant": q.relevant,
                        "appearance": "field-list", "rating_scale": q.choices,
                        "children": items})]
    node = _clean({
        "type": PYXFORM_TYPE.get(q.type, q.type), "name": q.name, "label": texts(q.label),
        "hint": texts(q.hint), "required": required,
        "requiredMsg": texts(q.required_message), "relevant": q.relevant,
        "constraint": bounds(q), "constraintMsg": texts(q.constraint_message),
        "appearance": "month-year" if q.type == "month" else q.appearance,
        "list_name": q.choices, "choice_filter": q.choice_filter,
        "calculate": q.calculation, "default": q.default,
        "readonly": "yes" if q.read_only else None,
        "parameters": ({"start": str(q.minimum), "end": str(q.maximum), "step": str(q.step)}
                       if q.type == "range" else None)})
    if not q.other:
        return [node]
    specify = {"type": "text", "name": f"{q.name}_other",
               "relevant": f"selected(${{{q.name}}}, 'other')"}
    return [node, specify]


def expected_children(survey: Survey) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in survey.pages:
        children = [n for q in page.questions for n in expected_question(q)]
        if page.repeat is None and all(q.type in (*META_TYPES, "calculate")
                                       for q in page.questions):
            out += children  # ODK shows no group without a visible question
            continue
        out.append(_clean({
            "type": "group" if page.repeat is None else "repeat", "name": page.name,
            "label": texts(page.title), "relevant": page.relevant,
            "appearance": "field-list", "children": children,
            "jr:count": page.repeat.count if page.repeat else None,
            "repeat_max": (str(page.repeat.maximum) if page.repeat and
                           page.repeat.maximum != 30 else None)}))
    return out


def simplify(node: dict[str, Any]) -> dict[str, Any]:
    """pyxform's JSON of one element, in the shape of :func:`expected_children`."""
    bind, control = node.get("bind", {}), node.get("control", {})
    out = _clean({
        "type": node["type"], "name": node["name"], "label": node.get("label"),
        "hint": node.get("hint"), "required": bind.get("required"),
        "requiredMsg": bind.get("jr:requiredMsg"), "relevant": bind.get("relevant"),
        "constraint": bind.get("constraint"), "constraintMsg": bind.get("jr:constraintMsg"),
        "appearance": control.get("appearance"), "jr:count": control.get("jr:count"),
        "list_name": node.get("list_name"), "choice_filter": node.get("choice_filter"),
        "calculate": bind.get("calculate"), "default": node.get("default"),
        "readonly": bind.get("readonly"), "parameters": node.get("parameters") or None,
        "repeat_max": node.get("repeat_max"), "rating_scale": node.get("rating_scale"),
        "item_code": node.get("item_code"), "reverse": node.get("reverse"),
        "children": [simplify(c) for c in node.get("children", ())]})
    if out["type"] == "text" and out["name"].endswith("_other"):
        out = {k: out[k] for k in ("type", "name", "relevant")}  # its label is the writer's
    return out


def cells(data: bytes) -> dict[str, list[tuple[Any, ...]]]:
    """Every sheet's values (the file's bytes also hold its creation time)."""
    book = openpyxl.load_workbook(io.BytesIO(data))
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book}


def pyxform_json(data: bytes, tmp_path: Path) -> dict[str, Any]:
    """pyxform's reading of a workbook, without the ``meta`` group it adds itself."""
    path = tmp_path / "form.xlsx"
    path.write_bytes(data)
    warnings: list[str] = []
    parsed = parse_file_to_json(str(path), warnings=warnings)
    assert warnings == []
    assert parsed["children"][-1]["name"] == "meta"  # instanceID, pyxform's own
    parsed["children"] = parsed["children"][:-1]
    return parsed


# ------------------------------------------------------------------------ tests


@pytest.mark.parametrize("name", SURVEYS)
def test_pyxform_converts_the_export_without_warnings(name):
    result = convert(xlsform=xlsform_bytes(SURVEYS[name]()), file_type=".xlsx")
    assert result.warnings == []
    assert "<h:body>" in result.xform


def test_the_shipped_default_workbook_is_valid_xlsform():
    """xls2xform accepts ``learning_needs.xlsx`` as committed, with no warning."""
    result = convert(xlsform=str(DEFAULT_XLSX))
    assert result.warnings == []
    assert 'id="learning_needs"' in result.xform
    assert result.xform.count('appearance="likert"') == 29  # 5 + 12 + 12 rating items


def test_the_shipped_default_workbook_holds_the_json_survey(tmp_path):
    parsed = pyxform_json(DEFAULT_XLSX.read_bytes(), tmp_path)
    assert [simplify(c) for c in parsed["children"]] == expected_children(default_survey())


@pytest.mark.parametrize("name", SURVEYS)
def test_pyxform_reads_every_page_question_repeat_and_choice(name, tmp_path):
    survey = SURVEYS[name]()
    parsed = pyxform_json(xlsform_bytes(survey), tmp_path)
    assert [simplify(c) for c in parsed["children"]] == expected_children(survey)
    assert parsed["choices"] == {
        list_name: [{"name": c.name, "label": texts(c.label), **dict(c.extra)}
                    for c in choices]
        for list_name, choices in survey.choice_lists.items()}
    assert (parsed["title"], parsed["id_string"], parsed["version"]) == (
        survey.title.zh, survey.id, str(survey.version))
    assert parsed["default_language"] == "中文 (zh)"
    assert parsed["form_title_en"] == survey.title.en


def test_the_rich_export_in_pyxform_terms(tmp_path):
    """A few things spelled out, so a mistake in the helpers above cannot hide them."""
    parsed = pyxform_json(xlsform_bytes(rich_survey()), tmp_path)
    top = {c["name"]: c for c in parsed["children"]}
    assert [top[n]["type"] for n in ("started", "ended", "day", "device")] == [
        "start", "end", "today", "deviceid"]
    members = top["members"]
    assert members["type"] == "repeat" and members["control"]["jr:count"] == "${hh_size}"
    assert members["repeat_max"] == "20"
    assert top["visits"]["repeat_max"] == "5" and "jr:count" not in top["visits"]["control"]
    home = {c["name"]: c for c in top["home"]["children"]}
    assert home["hh_size"]["bind"]["constraint"] == ". >= 1 and . <= 20 and (. != 13)"
    assert home["income"]["bind"]["constraint"] == ". <= 99.5"
    assert home["street"]["choice_filter"] == "district = ${district}"
    assert home["crops_other"]["bind"]["relevant"] == "selected(${crops}, 'other')"
    assert home["twice"]["bind"]["calculate"] == "${hh_size} * 2"
    times = {c["name"]: c for c in top["times"]["children"]}
    assert times["moved"]["type"] == "date"
    assert times["moved"]["control"]["appearance"] == "month-year"
    assert times["mood"]["parameters"] == {"start": "1", "end": "10", "step": "1"}
    assert (times["wake"]["type"], times["last_seen"]["type"]) == ("time", "datetime")
    grid = top["views"]["children"][0]
    assert grid["rating_scale"] == "agree5" and grid["control"]["appearance"] == "field-list"
    assert [(i["item_code"], i["reverse"], i["control"]["appearance"])
            for i in grid["children"]] == [("OPN-001", "no", "likert"),
                                           ("OPN-002", "yes", "likert")]
    assert home["district"]["label"]["Français (fr)"] == "Quel district ?"
    assert parsed["form_title_fr"] == "Un formulaire riche"


def test_text_cells_are_never_formulas():
    book = openpyxl.load_workbook(io.BytesIO(xlsform_bytes(rich_survey())))
    cells = [c for row in book["survey"].iter_rows() for c in row if c.value == "=姓名"]
    assert cells and all(c.data_type == "s" for c in cells)
    assert all(c.data_type != "f" for ws in book for row in ws.iter_rows() for c in row)


def test_language_columns():
    assert language_column("label", "zh") == "label::中文 (zh)"
    assert language_column("hint", "en") == "hint::English (en)"
    assert language_column("label", "fr") == "label::Français (fr)"
    assert language_column("label", "zh-TW") == "label::中文 (zh-TW)"
    assert language_column("label", "qq-zz") == "label::qq-zz (qq-zz)"  # no name known


def test_a_regional_language_code_is_kept_though_pyxform_cannot_check_it():
    """pyxform checks only bare IANA subtags, so ``zh-TW`` gets its one warning: the code
    is what the reader needs, so it stays."""
    t = Text("题", "Question", (("zh-TW", "題"),))
    s = Survey("tw", 1, t, {"c": (Choice("a", t),)},
               (Page("p", t, (Question("q", "single_choice", t, choices="c"),)),))
    result = convert(xlsform=xlsform_bytes(s), file_type=".xlsx")
    assert len(result.warnings) == 1 and "中文 (zh-TW)" in result.warnings[0]


def test_reserved_names_are_refused():
    s = rich_survey()
    bad = Survey(s.id, 1, s.title, s.choice_lists,
                 (Page("meta", T("记录", "Record"), (Question("n", "note", T("注", "N")),)),))
    with pytest.raises(ValueError, match="'meta': XLSForm reserves this name"):
        xlsform_bytes(bad)


def test_with_invitation_code_asks_it_first():
    s = with_invitation_code(default_survey())
    first = s.pages[0]
    assert (first.name, [q.name for q in first.questions]) == ("p_invitation_code",
                                                               ["invitation_code"])
    q = first.questions[0]
    assert (q.type, q.required, q.label) == ("text", True, Text("邀请码", "Invitation code"))
    assert s.pages[1:] == default_survey().pages
    with pytest.raises(ValueError, match="already has 'invitation_code'"):
        with_invitation_code(s)


# ------------------------------------------------------ round trip (needs the reader)


@pytest.mark.parametrize("name", SURVEYS)
def test_reading_the_export_gives_the_same_survey(name):
    survey = SURVEYS[name]()
    report = read_xlsform(f"{name}.xlsx", xlsform_bytes(survey))
    assert report.ok, report.summary()
    assert report.survey == survey


def test_reading_the_invitation_export_gives_the_invitation_page():
    survey = with_invitation_code(default_survey())
    report = read_xlsform("inv.xlsx", xlsform_bytes(survey))
    assert report.ok, report.summary()
    assert report.survey == survey


# ------------------------------------------------------------------ command line


def run(*args: str):
    return CliRunner().invoke(main, ["survey", *args], catch_exceptions=False)


def test_export_xlsform_from_a_file_with_the_invitation_code(tmp_path):
    out = tmp_path / "form.xlsx"
    res = run("export-xlsform", "--file", str(DEFAULTS_DIR / "learning_needs.json"),
              "--out", str(out), "--with-invitation-code")
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "'learning_needs'" in res.output
    result = convert(xlsform=str(out))
    assert result.warnings == []
    parsed = pyxform_json(out.read_bytes(), tmp_path)
    first = parsed["children"][0]
    assert (first["type"], first["name"]) == ("group", "p_invitation_code")
    code = first["children"][0]
    assert (code["type"], code["name"], code["bind"]["required"]) == (
        "text", "invitation_code", "yes")
    assert code["label"] == {"中文 (zh)": "邀请码", "English (en)": "Invitation code"}


def test_export_xlsform_refuses_a_bad_call(tmp_path):
    out = tmp_path / "x.xlsx"
    neither = CliRunner().invoke(main, ["survey", "export-xlsform", "--out", str(out)])
    assert neither.exit_code == 2 and "give a survey CODE or --file PATH" in neither.output
    both = CliRunner().invoke(main, ["survey", "export-xlsform", "x", "--file",
                                     str(DEFAULTS_DIR / "learning_needs.json"),
                                     "--out", str(out)])
    assert both.exit_code == 2
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "learningcity-survey/1"}', encoding="utf-8")
    bad = CliRunner().invoke(main, ["survey", "export-xlsform", "--file", str(broken),
                                    "--out", str(out)])
    assert bad.exit_code == 1 and "broken.json" in bad.output
    assert not out.exists()


def test_export_xlsform_of_a_stored_survey(tmp_path, dbsession, db_url):
    ini = write_ini(tmp_path, db_url)
    res = run("import", str(DEFAULTS_DIR / "learning_needs.json"), "--publish", "--ini", ini)
    assert res.exit_code == 0, res.output
    out = tmp_path / "stored.xlsx"
    res = run("export-xlsform", "learning_needs", "--out", str(out), "--ini", ini)
    assert res.exit_code == 0 and "version 1" in res.output
    assert cells(out.read_bytes()) == cells(xlsform_bytes(default_survey()))
    assert convert(xlsform=str(out)).warnings == []
    res = run("export-xlsform", "learning_needs", "--version", "1", "--out", str(out),
              "--with-invitation-code", "--ini", ini)
    assert res.exit_code == 0
    assert cells(out.read_bytes()) == cells(xlsform_bytes(with_invitation_code(
        default_survey())))
    for args, message in ((("nope",), "no survey 'nope'"),
                          (("learning_needs", "--version", "2"),
                           "no survey 'learning_needs' version 2")):
        missing = CliRunner().invoke(main, ["survey", "export-xlsform", *args, "--out",
                                            str(tmp_path / "n.xlsx"), "--ini", ini])
        assert missing.exit_code == 1 and message in missing.output


def test_write_xlsform_writes_the_bytes(tmp_path):
    write_xlsform(rich_survey(), tmp_path / "r.xlsx")
    assert cells((tmp_path / "r.xlsx").read_bytes()) == cells(xlsform_bytes(rich_survey()))


def test_numbers_are_written_as_xpath_numbers(tmp_path):
    """No exponent (ODK cannot read ``1e-05``); whole floats without ``.0``."""
    t = T("题", "Q")
    s = Survey("n", 1, t, {}, (Page("p", t, (
        Question("tiny", "decimal", t, minimum=0.00001, maximum=1e20),
        Question("half", "range", t, minimum=0.5, maximum=2.0, step=0.25))),))
    parsed = pyxform_json(xlsform_bytes(s), tmp_path)
    tiny, half = parsed["children"][0]["children"]
    assert tiny["bind"]["constraint"] == ". >= 0.00001 and . <= 100000000000000000000"
    assert half["parameters"] == {"start": "0.5", "end": "2", "step": "0.25"}
