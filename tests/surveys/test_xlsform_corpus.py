"""Real XLSForms written by others (tests/surveys/xlsforms/README.md): each imports, or is
refused only for features listed in ``OUT_OF_SCOPE``, every problem naming its row."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from pyxform.question_type_dictionary import QUESTION_TYPE_DICT

from surveys.definition import Repeat
from surveys.xlsform import (
    _FEATURE_TYPES,
    _SELECT_RE,
    _TYPES,
    OUT_OF_SCOPE,
    FeatureProblem,
    _read,
    read_xlsform,
)

CORPUS = Path(__file__).parent / "xlsforms"

#: file -> the out-of-scope features it is refused for (empty: it imports)
EXPECTED: dict[str, set[str]] = {
    "formpack_library-locking-example.xls": set(),
    "formpack_library-locking-example.xlsx": set(),
    "onadata_MCH_v1.xlsx": set(),
    "onadata_battery_life.xlsx": set(),
    "onadata_cascading.xlsx": set(),
    "onadata_childrens_survey_sw.xlsx": {"nested repeat", "duplicate name"},
    "onadata_choice_filter.xlsx": set(),
    "onadata_household.xlsx": {"nested repeat", "duplicate name"},
    "onadata_mali_health.xlsx": set(),
    "onadata_multi_lingual_form.xlsx": set(),
    "onadata_nested_repeats.xlsx": {"nested repeat"},
    "onadata_transportation.xlsx": {"loop"},
    "onadata_tutorial.xlsx": set(),
    "onadata_tutorial_arabic_labels.xlsx": set(),
    "onadata_userone_with_dot_name_fields.xlsx": set(),
    "pyxform_cascading_select_test_equivalent.xls": set(),
    "pyxform_case_insensitivity.xlsx": set(),
    "pyxform_choice_filter_test.xlsx": set(),
    "pyxform_default_time_demo.xls": set(),
    "pyxform_extra_sheet_names.xlsx": set(),
    "pyxform_field-list.xlsx": set(),
    "pyxform_gps.xls": {"geopoint"},
    "pyxform_group.xlsx": set(),
    "pyxform_hidden.xls": {"hidden"},
    "pyxform_loop.xlsx": {"loop"},
    "pyxform_pull_data.xlsx": set(),
    "pyxform_simple_loop.xls": {"loop"},
    "pyxform_specify_other.xlsx": set(),
    "pyxform_table-list.xls": set(),
    "pyxform_text_and_integer.xlsx": set(),
    "pyxform_tutorial.xls": set(),
    "pyxform_widgets.xls": set(),
    "pyxform_xlsform_spec_test.xlsx": set(),
    "pyxform_yes_or_no_question.xlsx": set(),
}
#: features left out with a warning (the question could be skipped safely)
WARNED = {"onadata_tutorial.xlsx": {"media capture", "geopoint", "meta"},
          "pyxform_widgets.xls": {"trigger", "geopoint", "barcode", "media capture"},
          "pyxform_pull_data.xlsx": {"function"},
          "pyxform_case_insensitivity.xlsx": {"osm", "entities"},
          "pyxform_xlsform_spec_test.xlsx": {"media column", "geopoint", "barcode",
                                             "media capture", "meta"}}
ROW = re.compile(r"(survey|choices|settings) row [0-9]+$")


def test_the_corpus_is_what_the_table_and_the_readme_list():
    files = {p.name for p in CORPUS.iterdir() if p.suffix in (".xls", ".xlsx")}
    assert files == set(EXPECTED)
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in readme for name in files)
    assert len({name.split("_")[0] for name in files}) >= 3 and len(files) >= 15
    assert sum(p.stat().st_size for p in CORPUS.iterdir()) < 3 * 1024 * 1024


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_form_imports_or_is_refused_only_for_listed_features(name):
    report = read_xlsform(CORPUS / name)
    for p in report.problems:
        assert isinstance(p, FeatureProblem) and p.feature in OUT_OF_SCOPE, str(p)
        assert ROW.fullmatch(p.where) and p.field, str(p)
    assert {p.feature for p in report.problems} == EXPECTED[name], report.summary()
    assert report.ok == (not EXPECTED[name])
    warned = {p.feature for p in report.warnings if isinstance(p, FeatureProblem)}
    assert warned >= WARNED.get(name, set())
    for w in report.warnings:
        assert w.where and w.message, w


def test_every_pyxform_question_type_is_read_or_listed_out_of_scope():
    unread = [t for t in QUESTION_TYPE_DICT if t.lower() not in _TYPES
              and t.lower() not in _FEATURE_TYPES and not _SELECT_RE.fullmatch(f"{t} x")]
    assert unread == []
    assert set(_FEATURE_TYPES.values()) <= set(OUT_OF_SCOPE)


def test_a_multi_language_form_keeps_every_language_and_falls_back():
    report = read_xlsform(CORPUS / "onadata_multi_lingual_form.xlsx")
    assert report.ok, report.summary()
    name = report.survey.question("resp_name").label
    assert (name.zh, name.en) == ("", "Name of respondent")
    assert name.language("sw") == "Jina la muulizwaji"
    assert name.language("fr") == "Nom de personne interrogée"
    assert name.get("zh_CN") == name.get("en") == "Name of respondent"  # zh falls back
    assert any("no Chinese (zh) translation" in w.message for w in report.warnings)
    # pyxform's spec form: bare `label` is the default language (no CJK: en), and
    # label::chinese gives zh
    survey = _read(CORPUS / "pyxform_xlsform_spec_test.xlsx", None, None)[0]
    yes = survey.choice_lists["yes_no"][0].label
    assert (yes.zh, yes.en) == ("是", "Yes") and yes.get("zh_CN") == "是"


def test_cascading_choice_filters_keep_the_choice_columns():
    survey = _read(CORPUS / "pyxform_choice_filter_test.xlsx", None, None)[0]
    assert survey.choice_lists["counties"][0].extra == (("cf", "washington"),)
    assert survey.question("county").choice_filter == "${state}=cf"
    survey = _read(CORPUS / "onadata_cascading.xlsx", None, None)[0]
    assert survey.choice_lists["cities"][2].extra == (("country", "france"),)
    assert survey.question("cities").choice_filter == "country=${country}"


def test_repeats_become_repeated_pages():
    report = read_xlsform(CORPUS / "pyxform_tutorial.xls")
    assert report.ok, report.summary()
    (page,) = report.survey.pages
    assert page.name == "member" and page.repeat == Repeat(None, 30)
    assert [q.name for q in page.questions][:3] == ["name", "relationship_to_household_head",
                                                    "sex"]
    survey = _read(CORPUS / "pyxform_xlsform_spec_test.xlsx", None, None)[0]
    repeat = next(p for p in survey.pages if p.name == "repeat_test")
    assert repeat.repeat == Repeat("2", 30)
    nested = read_xlsform(CORPUS / "onadata_nested_repeats.xlsx")
    (refusal,) = [p for p in nested.problems if p.feature == "nested repeat"]
    assert refusal.where == "survey row 7" and refusal.field == "type"


def test_choice_filters_of_the_corpus_type_check_against_their_columns():
    """Filters are read by the expression engine: a bare name is a choices-sheet column;
    onadata's filter comparing a select_multiple imports with a warning on its row."""
    report = read_xlsform(CORPUS / "onadata_choice_filter.xlsx")
    assert report.ok, report.summary()
    (warning,) = [w for w in report.warnings if w.field == "choice_filter"]
    assert warning.where == "survey row 4" and "${county} is a multiple choice" in \
        warning.message
    for name in ("pyxform_choice_filter_test.xlsx", "onadata_cascading.xlsx",
                 "pyxform_cascading_select_test_equivalent.xls"):
        report = read_xlsform(CORPUS / name)
        assert report.ok and not [w for w in report.warnings
                                  if w.field == "choice_filter"], report.summary()
