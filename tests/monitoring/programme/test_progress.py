"""Progress against the plan, checked against figures computed by hand: city totals and
district contributions, cumulative counts, shares as sum over sum, the share of the
target reached against the time elapsed, values from an indicator source, survey
indicators from the published district estimates."""
from __future__ import annotations

from typing import Any

import pytest

from monitoring.programme import progress, reporting
from monitoring.programme.reporting import Entry, Unit


def _report(db: Any, year: int, unit: Unit, values: dict[str, tuple[str, str]],
            state: str = "accepted") -> None:
    report = reporting.get_report(db, reporting.ensure_period(db, year), unit, create=True)
    reporting.save_entries(db, report, {c: Entry(v, d, "ok") for c, (v, d) in values.items()},
                           "test")
    report.state = state
    db.flush()


@pytest.fixture
def reports(dbsession: Any, department: Any) -> Any:
    A, B = Unit("district", "A"), Unit("district", "B")
    _report(dbsession, 2023, A, {"learning_stars": ("10", ""),
                                 "learning_type_communities": ("40", "50")})
    _report(dbsession, 2023, B, {"learning_stars": ("8", ""),
                                 "learning_type_communities": ("30", "50")})
    _report(dbsession, 2024, A, {"learning_stars": ("12", "")})
    _report(dbsession, 2024, B, {"learning_stars": ("30", "")}, state="submitted")
    _report(dbsession, 2023, Unit("department", "education"), {"online_courses": ("70", "")})
    _report(dbsession, 2023, Unit("department", "open_university"),
            {"online_courses": ("40", "")})
    return dbsession


def _cell(rows: list[Any], code: str, year: int, district: str = "") -> Any:
    [row] = [r for r in rows if (r.indicator, r.year, r.district) == (code, year, district)]
    return row


def test_counts_add_up_from_the_plans_start_accepted_reports_only(reports: Any) -> None:
    rows = progress.compute(reports)
    c23, c24 = _cell(rows, "learning_stars", 2023), _cell(rows, "learning_stars", 2024)
    assert (c23.value, c23.reached, c23.expected, c23.status) == (
        18, pytest.approx(18 / 60), pytest.approx(1 / 3), "behind")
    # 2024: A 10 + 12, B still 8 (its 2024 report is only submitted)
    assert (c24.value, c24.reached, c24.expected, c24.status) == (
        30, pytest.approx(0.5), pytest.approx(2 / 3), "behind")
    assert _cell(rows, "learning_stars", 2024, "A").value == 22
    assert _cell(rows, "learning_stars", 2024, "B").value == 8
    courses = _cell(rows, "online_courses", 2023)
    assert (courses.value, courses.reached, courses.status) == (
        110, pytest.approx(110 / 300), "on_track")
    assert _cell(rows, "online_courses", 2025).status == "behind"  # nothing new: 110/300
    assert _cell(rows, "experimental_streets", 2023).status == "no_data"


def test_shares_are_sum_over_sum_and_judged_against_the_target(reports: Any) -> None:
    rows = progress.compute(reports)
    city = _cell(rows, "learning_type_communities", 2023)
    assert (city.numerator, city.denominator, city.value) == (70, 100, pytest.approx(0.7))
    assert (city.reached, city.status) == (pytest.approx(0.7 / 0.8), "on_track")
    a = _cell(rows, "learning_type_communities", 2023, "A")
    assert (a.value, a.status) == (pytest.approx(0.8), "achieved")
    assert _cell(rows, "learning_type_communities", 2024).status == "no_data"


def test_a_registered_source_replaces_the_district_reports(reports: Any) -> None:
    providers = {"organisations": lambda db, year: {"A": (9, 10), "B": (5, 10)}
                 if year == 2024 else {}}
    rows = progress.compute(reports, providers=providers)
    city = _cell(rows, "learning_type_communities", 2024)
    assert (city.value, city.source) == (pytest.approx(0.7), "organisations")
    assert _cell(rows, "learning_type_communities", 2024, "A").status == "achieved"
    assert _cell(rows, "learning_type_communities", 2023).status == "no_data"
    codes = [s.code for s in reporting.indicators_for(reports, Unit("district", "A"),
                                                      providers)]
    assert "learning_type_communities" not in codes and "learning_stars" in codes
    with pytest.raises(ValueError, match="district 'A'"):
        progress.compute(reports, providers={"organisations": lambda db, y: {"A": (11, 10)}})
    with pytest.raises(ValueError, match="district 'B'"):
        progress.compute(reports, providers={"organisations": lambda db, y: {"B": (1,)}})


def test_a_source_counting_demo_rows_is_labelled_simulated(reports: Any) -> None:
    """A provider's third element marks a district's value simulated; the city total is
    simulated when any district's is; a pair means real values."""
    providers = {"organisations": lambda db, year: {"A": (9, 10, True), "B": (5, 10)}}
    rows = progress.compute(reports, providers=providers)
    assert _cell(rows, "learning_type_communities", 2024).simulated is True
    assert _cell(rows, "learning_type_communities", 2024, "A").simulated is True
    assert _cell(rows, "learning_type_communities", 2024, "B").simulated is False
    real = progress.compute(reports, providers={
        "organisations": lambda db, year: {"A": (9, 10), "B": (5, 10, False)}})
    assert _cell(real, "learning_type_communities", 2024).simulated is False


def test_survey_indicators_come_from_the_published_estimates(reports: Any,
                                                             monkeypatch: Any) -> None:
    from monitoring.results import districtmap

    def values_for(mdb: Any, scope: Any, code: str, year: int) -> dict[str, Any]:
        return {"A": {"estimate": 0.30}} if code == "older_adult_education" and \
            year == 2024 else {}

    monkeypatch.setattr(districtmap, "values_for", values_for)
    rows = progress.compute(reports)
    a = _cell(rows, "older_adult_share", 2024, "A")
    assert (a.value, a.status) == (0.30, "achieved")  # > 26 %
    assert _cell(rows, "older_adult_share", 2024).value is None  # no made-up city total


def test_progress_is_stored_in_the_monitoring_database(reports: Any) -> None:
    n = progress.refresh(reports, reports)
    stored = progress.stored(reports)
    assert n == len(stored) > 14 * 3
    assert progress.refresh(reports, reports) == n  # replaced, not added
    only_a = progress.stored(reports, "A")
    assert {r.district for r in only_a} == {"", "A"}


def test_judge_and_elapsed_by_hand() -> None:
    from monitoring.programme.catalogue import IndicatorSpec

    spec = IndicatorSpec(code="x", area_code="a", name_zh="x", name_en="x", kind="share",
                         source="district", target=0.8, baseline_value=0.5)
    assert progress.elapsed(2023, 2025) == pytest.approx(1 / 3)
    assert progress.elapsed(2026, 2025) == 1.0
    reached, expected, status = progress.judge(spec, 0.6, 2024)
    assert (reached, expected, status) == (pytest.approx(1 / 3), pytest.approx(2 / 3),
                                           "behind")
    assert progress.judge(spec, 0.8, 2024)[2] == "achieved"
    lower = IndicatorSpec(code="y", area_code="a", name_zh="y", name_en="y", kind="ratio",
                          source="district", target=2.0, direction="<=")
    assert progress.judge(lower, 4.0, 2023)[:1] == (pytest.approx(0.5),)


@pytest.mark.installed_sources
def test_the_installed_organisations_provider_feeds_the_learning_community_share(
        dbsession: Any, department: Any) -> None:
    """The wings joined: with the organisations wing installed, the learning-type
    communities share of 2025 is the confirmed evaluations' count over the register's
    communities, summed over districts (the demo's simulated evaluations), and districts
    no longer report it."""
    from learningcity import demo
    from monitoring.organisations import demo_content, recognition
    from monitoring.programme import sources

    assert "organisations" in sources.registered()
    demo.load(dbsession)
    demo_content.load(dbsession)
    dbsession.commit()
    counts = recognition.learning_community_counts(dbsession, demo_content.DEMO_YEAR)
    rows = progress.compute(dbsession)
    city = _cell(rows, "learning_type_communities", demo_content.DEMO_YEAR)
    recognised = sum(r for r, _n in counts.values())
    total = sum(n for _r, n in counts.values())
    assert city.source == "organisations" and 0 < recognised < total
    assert city.value == pytest.approx(recognised / total, rel=1e-12)
    some = sorted(counts)[0]
    assert _cell(rows, "learning_type_communities", demo_content.DEMO_YEAR, some).value \
        == pytest.approx(counts[some][0] / counts[some][1], rel=1e-12)
    codes = [s.code for s in reporting.indicators_for(dbsession, Unit("district", some))]
    assert "learning_type_communities" not in codes
    # the demo's organisations are simulated, and so is the share they give
    assert city.simulated is True
    assert _cell(rows, "learning_type_communities", demo_content.DEMO_YEAR, some).simulated
