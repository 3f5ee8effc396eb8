"""Indicator definitions: validation, evaluation over respondent rows, judgement, saving."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitoring.results import indicators as I
from surveys import expressions as E


def test_builtins_are_the_action_plan_targets_and_valid() -> None:
    by_code = {i.code: i for i in I.BUILTIN}
    assert (by_code["older_adult_education"].target, by_code["older_adult_education"].direction
            ) == (0.26, ">")
    assert (by_code["community_training_rate"].target,
            by_code["community_training_rate"].direction) == (0.55, ">=")
    assert (by_code["learning_communities"].target, by_code["learning_communities"].kind
            ) == (0.80, "frame")
    for ind in I.BUILTIN:
        assert I.validate(ind) == [], ind.code


@pytest.mark.parametrize(("lo", "hi", "target", "direction", "expected"), [
    (0.30, 0.40, 0.26, ">", "met"),
    (0.26, 0.40, 0.26, ">", "undetermined"),     # touching from above: may equal the target
    (0.10, 0.26, 0.26, ">", "not_met"),          # nothing in the interval exceeds it
    (0.20, 0.30, 0.26, ">", "undetermined"),
    (0.55, 0.70, 0.55, ">=", "met"),
    (0.40, 0.55, 0.55, ">=", "undetermined"),
    (0.40, 0.549, 0.55, ">=", "not_met"),
    (0.10, 0.19, 0.20, "<", "met"),
    (0.10, 0.20, 0.20, "<", "undetermined"),
    (0.20, 0.30, 0.20, "<", "not_met"),
    (0.10, 0.20, 0.20, "<=", "met"),
    (0.15, 0.25, 0.20, "<=", "undetermined"),
    (0.201, 0.30, 0.20, "<=", "not_met"),
])
def test_judgement_with_interval(lo: float, hi: float, target: float, direction: str,
                                 expected: str) -> None:
    assert I.judge(lo, hi, target, direction) == expected


def test_judgement_without_interval_or_target() -> None:
    assert I.judge(None, None, 0.5, ">") is None
    assert I.judge(0.1, 0.2, None, ">") is None
    assert I.judge(math.nan, 0.2, 0.5, ">") is None
    with pytest.raises(ValueError, match="direction"):
        I.judge(0.1, 0.2, 0.5, "=>")


def test_validation_names_unknown_questions_and_type_errors() -> None:
    bad = I.Indicator(code="Bad code", name_zh="", name_en="x", kind="person",
                      expression="${no_such_question} = 'yes' and ${age_band} + 1",
                      population="${training_times} = 'many'", target=1.5, direction="=>")
    problems = I.validate(bad)
    text = "\n".join(problems)
    assert "code:" in text and "name_zh:" in text and "target:" in text
    assert "direction:" in text
    assert "unknown question or column ${no_such_question}" in text
    assert any(p.startswith("expression:") and "age_band" in p for p in problems)
    assert any(p.startswith("population:") and "training_times" in p for p in problems)
    with pytest.raises(I.IndicatorError) as err:
        I.check(bad)
    assert err.value.problems == problems


def test_validation_reports_syntax_errors_with_position() -> None:
    problems = I.validate(I.Indicator("x1", "甲", "x", "${community_training} = "))
    assert len(problems) == 1 and problems[0].startswith("expression:")
    assert "character" in problems[0]


def test_multiple_choice_rows_and_missing_values() -> None:
    frame = pd.DataFrame({
        "age_band": ["60-69", "30-44", None, "70+"],
        "elder_education": ["regular", np.nan, "never", np.nan],
        "topics__arts": [1.0, 0.0, np.nan, 0.0],
        "topics__health": [0.0, 1.0, np.nan, 1.0],
    })
    rows = I.row_values(frame)
    assert rows[0]["topics"] == ["arts"] and rows[2]["topics"] is None
    older = I.BUILTIN[0]
    np.testing.assert_array_equal(I.evaluate_rows(older.population, rows), [1, 0, np.nan, 1])
    # unanswered -> missing (left out of the share), not "no"
    np.testing.assert_array_equal(I.evaluate_rows(older.expression, rows), [1, np.nan, 0, np.nan])
    np.testing.assert_array_equal(
        I.evaluate_rows("selected(${topics}, 'health')", rows), [0, 1, np.nan, 1])
    np.testing.assert_array_equal(I.evaluate_rows("", rows), [1, 1, 1, 1])


def test_frame_values_normalise_yes_no() -> None:
    vals = I.frame_values([{"learning_community": 1}, {"learning_community": "否"},
                           {"learning_community": "yes"}, {"learning_community": ""}])
    assert [v["learning_community"] for v in vals] == ["yes", "no", "yes", None]
    np.testing.assert_array_equal(I.evaluate_rows(I.BUILTIN[2].expression, vals),
                                  [1, 0, 1, np.nan])


def test_catalogue_saved_definition_replaces_builtin() -> None:
    changed = I.Indicator("community_training_rate", "社区居民培训率", "Training rate",
                          "${community_training} = 'yes'", target=0.6, direction=">=")
    extra = I.Indicator("arts_interest", "艺术兴趣", "Interest in arts",
                        "selected(${topics}, 'arts')", target=None)
    cat = I.catalogue([changed, extra])
    assert len(cat) == 4
    assert cat.get("community_training_rate").target == 0.6
    assert cat.get("community_training_rate").builtin
    assert not cat.get("arts_interest").builtin


def test_save_indicator_validates_stores_and_audits(dbsession) -> None:
    from learningcity.models import AuditEvent
    from monitoring.results.indicators import IndicatorDefinition, save_indicator

    with pytest.raises(I.IndicatorError, match="unknown question"):
        save_indicator(dbsession, I.Indicator("x1", "甲", "x", "${nope} = 1"), "admin")
    dbsession.rollback()
    assert dbsession.scalar(sa.select(sa.func.count(IndicatorDefinition.id))) == 0
    ind = I.Indicator("arts_interest", "艺术兴趣", "Interest in arts",
                      "selected(${topics}, 'arts')", target=0.3, direction=">")
    save_indicator(dbsession, ind, "admin")
    save_indicator(dbsession, I.Indicator(**{**ind.__dict__, "target": 0.4}), "admin")
    dbsession.commit()
    cat = I.load_catalogue(dbsession)
    assert cat.get("arts_interest").target == 0.4
    actions = dbsession.scalars(sa.select(AuditEvent.action)
                                .where(AuditEvent.target == "arts_interest")).all()
    assert sorted(actions) == ["indicator.add", "indicator.edit"]


def test_cli_indicator_set_checks_then_saves(dbsession, wsgi_app, tmp_path) -> None:
    from click.testing import CliRunner

    from learningcity.cli import main
    from tests.conftest import write_ini

    ini = write_ini(tmp_path, wsgi_app.registry.settings["sqlalchemy.url"])
    args = ["monitoring", "indicator-set", "arts_interest", "--ini", ini, "--as", "tester",
            "--name-zh", "艺术兴趣", "--name-en", "Interest in arts", "--target", "0.3",
            "--direction", ">"]
    bad = CliRunner().invoke(main, [*args, "--expression", "${nope} = 1"])
    assert bad.exit_code != 0 and "unknown question or column ${nope}" in bad.output
    assert "arts_interest" not in CliRunner().invoke(
        main, ["monitoring", "indicators", "--ini", ini]).output
    ok = CliRunner().invoke(main, [*args, "--expression", "selected(${topics}, 'arts')"])
    assert ok.exit_code == 0, ok.output
    listed = CliRunner().invoke(main, ["monitoring", "indicators", "--ini", ini]).output
    assert "arts_interest\tperson\t> 30%\tsaved" in listed


def test_older_adult_population_takes_every_older_band_of_the_vocabulary() -> None:
    """The frames' band 60+ counts as older adults, as the respondent table's groups do."""
    from learningcity.people import OLDER_BANDS

    ind = {i.code: i for i in I.BUILTIN}["older_adult_education"]
    rows = [{"age_band": b} for b in ("60+", "60-69", "70+", "45-59", "18-29")]
    assert list(I.evaluate_rows(ind.population, rows)) == [1, 1, 1, 0, 0]
    assert I.validate(ind, I.respondent_variables()) == []
    assert OLDER_BANDS == {"60+", "60-69", "70+"}


def test_each_expression_is_parsed_once(monkeypatch) -> None:
    """Evaluating, validating and listing references of one expression parse it once."""
    from surveys import expressions as E

    calls = []
    real = E.parse
    monkeypatch.setattr(E, "parse", lambda text: calls.append(text) or real(text))
    I.parsed.cache_clear()
    ind = I.Indicator(code="x_once", name_zh="x", name_en="x", expression="${q} = 'yes'",
                      population="${age_band} = '70+'")
    rows = [{"q": "yes", "age_band": "70+"}, {"q": "no", "age_band": "70+"}]
    for _ in range(3):
        assert list(I.evaluate_rows(ind.expression, rows)) == [1, 0]
        assert I.references(ind) == ["q", "age_band"]
        I.validate(ind)
    mine = [c for c in calls if c in (ind.expression, ind.population)]
    assert sorted(mine) == sorted([ind.expression, ind.population])


# ------------------------------------------------------- evaluation on whole columns
#
# evaluate_frame must give evaluate_rows over row_values, row for row: random respondent
# tables (every pandas dtype a table may carry, multiple-choice columns, a plain column
# shadowing a multiple choice) and random expressions from the grammar.

FRAME_TEXTS = ["", "yes", "no", "regular", "60-69", "70+", "a b", "3", " 4 ", "nan",
               "2024-05-01", "2024-06", "true"]
NAMES = ["f", "i", "b", "s", "o", "c", "m", "k", "g", "d", "ni", "nb", "z", "m__a"]


@st.composite
def frames(draw):
    n = draw(st.integers(0, 6))

    def col(strategy):
        return draw(st.lists(strategy, min_size=n, max_size=n))

    texts = st.one_of(st.none(), st.sampled_from(FRAME_TEXTS))
    zero_one = st.sampled_from([0.0, 1.0, np.nan, 2.0])
    data = {
        "f": pd.Series(col(st.sampled_from([0.0, 1.0, 3.0, 0.5, 60.0, np.nan, np.inf, -0.0])),
                       dtype=float),
        "i": pd.Series(col(st.sampled_from([0, 1, 3, 60, 2**62])), dtype="int64"),
        "b": pd.Series(col(st.booleans()), dtype=bool),
        "s": pd.Series(col(texts), dtype="str"),
        "o": pd.Series(col(st.one_of(texts, st.sampled_from(
            [np.nan, pd.NA, 3, 1.5, True, np.float64(2.0), np.int64(7), dt.date(2024, 5, 1),
             ["a"], 2**60]))), dtype=object),
        "c": pd.Series(col(texts), dtype="category"),
        "m__a": pd.Series(col(zero_one), dtype=float),
        "m__b": pd.Series(col(zero_one), dtype=float),
        "m__2024-05": pd.Series(col(st.sampled_from([0, 1])), dtype="int64"),
        "k__x": pd.Series(col(st.sampled_from([0, 1, None, "1", True, np.nan, " 1 "])),
                          dtype=object),
        "g": pd.Series(col(texts), dtype="str"),
        "g__x": pd.Series(col(zero_one), dtype=float),
        "d": pd.Series(col(st.sampled_from([pd.Timestamp("2024-05-01"), pd.NaT])),
                       dtype="datetime64[ns]"),
        "ni": pd.Series(col(st.sampled_from([1, 0, pd.NA])), dtype="Int64"),
        "nb": pd.Series(col(st.sampled_from([True, False, pd.NA])), dtype="boolean"),
    }
    return pd.DataFrame(data)


FRAME_LEAVES = st.one_of(
    st.sampled_from([0, 1, 3, 60, 2**53 + 1]).map(E.Num), st.just(E.Num(0.5)),
    st.sampled_from(FRAME_TEXTS).map(E.Str), st.sampled_from(NAMES).map(E.Ref))


def _grow(children):
    calls = [st.tuples(*[children] * arity).map(lambda args, name=name: E.Call(name, args))
             for name, arity in E.FUNCTIONS.items()]
    return st.one_of(st.builds(E.Unary, st.just("-"), children),
                     st.builds(E.Binary, st.sampled_from(list(E._PRECEDENCE)), children,
                               children), *calls)


FRAME_EXPRESSIONS = st.one_of(
    st.builds(E.Binary, st.sampled_from(list(E._PRECEDENCE)),
              st.sampled_from(NAMES).map(E.Ref), FRAME_LEAVES),
    st.builds(lambda name, q, v: E.Call(name, (E.Ref(q), v)[:E.FUNCTIONS[name]]),
              st.sampled_from(["selected", "count-selected", "string-length", "not"]),
              st.sampled_from(NAMES), FRAME_LEAVES),
    st.recursive(FRAME_LEAVES, _grow, max_leaves=8),
).map(E.to_source)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FRAME_EXPRESSIONS, frames(), st.booleans())
def test_evaluate_frame_gives_evaluate_rows(text: str, frame: pd.DataFrame,
                                            missing_as_nan: bool) -> None:
    want = I.evaluate_rows(text, I.row_values(frame), missing_as_nan)
    got = I.evaluate_frame(text, frame, missing_as_nan)
    np.testing.assert_array_equal(got, want, err_msg=text)


def test_evaluate_frame_on_the_synthetic_campaign_uses_no_row_path(monkeypatch) -> None:
    """Every built-in person indicator (expression and population) and the kinds of
    condition an admin writes, on the synthetic campaign: the same values as the row
    path, and computed on whole columns (the row interpreter is never called)."""
    from tests.monitoring.synthetic import respondents

    frame = respondents().frame
    frame.loc[frame.index[:7], ["topics__health", "topics__arts"]] = np.nan
    texts = [t for ind in I.BUILTIN if ind.kind == "person"
             for t in (ind.expression, ind.population)]
    texts += ["selected(${topics}, 'arts') or count-selected(${topics}) >= 2",
              "${scale_motivation} >= 4 and ${sex} = 'female'",
              "${score} > 500 and not(${group} = 'farmer')",
              "if(${age_band} = '70+', ${pv1}, ${pv2}) > 520",
              "${elder_education} != 'never'", ""]
    rows = I.row_values(frame)
    want = {t: I.evaluate_rows(t, rows) for t in texts}
    before = frame.copy()

    def no_rows(*_args: object) -> None:
        raise AssertionError("the row interpreter was called")

    monkeypatch.setattr(E, "_eval", no_rows)
    for text in texts:
        np.testing.assert_array_equal(I.evaluate_frame(text, frame), want[text], err_msg=text)
    assert np.isnan(want[I.BUILTIN[0].expression]).any()  # unanswered rows are NaN
    pd.testing.assert_frame_equal(frame, before)  # the table is read, never written


def test_evaluate_frame_names_a_bad_choice_column() -> None:
    frame = pd.DataFrame({"topics__arts": pd.Series([1, "many"], dtype=object)})
    with pytest.raises(ValueError, match=r"topics__arts.*row 2"):
        I.evaluate_frame("selected(${topics}, 'arts')", frame)
    # only the referenced columns are read (row_values refuses the whole table)
    assert I.evaluate_frame("${other} = 'x'", frame, missing_as_nan=False).tolist() == [0, 0]
    with pytest.raises(ValueError):
        I.row_values(frame)
