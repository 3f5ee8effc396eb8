"""Scale scores: reverse keys, proration, EAP equal to scoring.estimation, and GRM thetas
from the demo calibration that order respondents like their sum scores."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from scoring import models
from scoring.estimation import eap
from scoring.io import read_params
from scoring.params import ItemParams
from surveys.definition import Choice, Page, Question, RatingItem, Survey, Text, load_survey
from surveys.scales import scale, score_scale, scored_responses

ROOT = Path(__file__).resolve().parents[2]
LMS = ROOT / "itembank" / "demo" / "calibration_lms.csv"


def small_survey(n_items=4, reverse=(2,)):
    t = Text("文", "text")
    agree = tuple(Choice(str(k), t) for k in range(1, 6))
    items = tuple(RatingItem(f"i{k}", t, f"X-{k}", k in reverse) for k in range(1, n_items + 1))
    grid = Question("grid", "rating_grid", t, choices="agree5", items=items)
    other = Question("other", "rating_grid", t, choices="three",
                     items=(RatingItem("o1", t),))
    three = tuple(Choice(str(k), t) for k in range(1, 4))
    return Survey("s", 1, t, {"agree5": agree, "three": three},
                  (Page("p", t, (grid, other)),))


@pytest.fixture(scope="module")
def default_survey():
    return load_survey(ROOT / "surveys" / "defaults" / "learning_needs.json")


def test_sum_score_reverses_reverse_keyed_items():
    block = scale(small_survey(), "grid")
    answers = [{"i1": "5", "i2": "5", "i3": "5", "i4": "5"},   # i2 reversed: 5 -> 1
               {"i1": "1", "i2": "1", "i3": "1", "i4": "1"},   # i2 reversed: 1 -> 5
               {"i1": "4", "i2": "2", "i3": "4", "i4": "4"}]   # consistent answers: 4 x 4
    scores = score_scale(block, answers)
    np.testing.assert_array_equal(scores.sum, [16, 8, 16])
    np.testing.assert_array_equal(scores.n_answered, [4, 4, 4])
    assert scores.theta is None and scores.method == "sum"
    # scoring categories (0..4), reversed for i2, are what calibration uses
    np.testing.assert_array_equal(scored_responses(block, answers[:1]), [[4, 0, 4, 4]])


def test_missing_answers_are_prorated_when_enough_are_given():
    block = scale(small_survey(), "grid")
    answers = [{"i1": "5", "i3": "3"},                 # 2 of 4: mean 4 -> 16
               {"i1": "5"},                            # 1 of 4: below half -> NaN
               {},                                     # nothing -> NaN
               {"i1": "2", "i2": "", "i3": None, "i4": "4"}]  # blanks are missing
    scores = score_scale(block, answers)
    assert scores.sum[0] == pytest.approx(16.0, abs=1e-12)
    assert np.isnan(scores.sum[1]) and np.isnan(scores.sum[2])
    assert scores.sum[3] == pytest.approx(12.0, abs=1e-12)
    np.testing.assert_array_equal(scores.n_answered, [2, 1, 0, 2])
    lenient = score_scale(block, answers, min_share=0.25)
    assert lenient.sum[1] == pytest.approx(20.0, abs=1e-12)
    strict = score_scale(block, answers, min_share=1.0)
    assert np.isnan(strict.sum).all()


def test_bad_input_is_refused():
    survey = small_survey()
    block = scale(survey, "grid")
    with pytest.raises(ValueError, match="respondent 1, i1: '6' is not a choice"):
        score_scale(block, [{"i1": "6"}])
    with pytest.raises(ValueError, match="method"):
        score_scale(block, [], method="wle")
    with pytest.raises(ValueError, match="needs item parameters"):
        score_scale(block, [{"i1": "1"}], method="grm")
    with pytest.raises(ValueError, match="different scales"):
        scale(survey, "grid", "other")
    with pytest.raises(ValueError, match="not a rating grid"):
        scale(load_survey(ROOT / "surveys" / "defaults" / "learning_needs.json"), "sex")


def _grm(ids, rng):
    b = np.sort(rng.normal(0, 1, (len(ids), 4)), axis=1)
    return ItemParams.from_arrays(ids, "grm", rng.uniform(0.8, 2.0, len(ids)), b)


def test_irt_scores_equal_scoring_estimation_eap():
    rng = np.random.default_rng(7)
    block = scale(small_survey(), "grid")
    params = _grm(["X-1", "X-2", "X-3", "X-4", "UNUSED"], rng)
    answers = [{f"i{k}": str(rng.integers(1, 6)) for k in range(1, 5) if rng.random() < 0.8}
               for _ in range(50)]
    answers[0] = {}
    got = score_scale(block, answers, "grm", params, prior_mean=0.2, prior_sd=1.1)
    direct = eap(params.subset(["X-1", "X-2", "X-3", "X-4"]),
                 scored_responses(block, answers), prior_mean=0.2, prior_sd=1.1)
    np.testing.assert_allclose(got.theta[1:], direct.theta[1:], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.se[1:], direct.se[1:], rtol=0, atol=1e-12)
    assert np.isnan(got.theta[0]) and np.isnan(got.se[0])  # no answers: no estimate
    frame = got.to_frame(ids=[f"r{i}" for i in range(50)])
    assert list(frame.columns) == ["sum", "n_answered", "theta", "se"]
    assert frame.index[3] == "r3"


def test_irt_parameters_must_fit_the_scale():
    rng = np.random.default_rng(3)
    block = scale(small_survey(), "grid")
    with pytest.raises(ValueError, match="no parameters for item"):
        score_scale(block, [{"i1": "1"}], "grm", _grm(["X-1", "X-2", "X-3"], rng))
    grm = _grm(["X-1", "X-2", "X-3", "X-4"], rng)
    with pytest.raises(ValueError, match="needs gpcm/pcm parameters"):
        score_scale(block, [{"i1": "1"}], "gpcm", grm)
    three = ItemParams.from_arrays(["X-1", "X-2", "X-3", "X-4"], "grm", 1.0,
                                   [[-1.0, 1.0]] * 4)
    with pytest.raises(ValueError, match="different number of categories"):
        score_scale(block, [{"i1": "1"}], "grm", three)


def test_gpcm_scores():
    rng = np.random.default_rng(11)
    block = scale(small_survey(), "grid")
    params = ItemParams.from_arrays(["X-1", "X-2", "X-3", "X-4"], ["gpcm", "pcm", "gpcm",
                                                                   "gpcm"],
                                    [1.3, 1.0, 0.7, 1.6], rng.normal(0, 1, (4, 4)))
    low = {"i1": "1", "i2": "5", "i3": "1", "i4": "1"}   # i2 reversed: all lowest
    high = {"i1": "5", "i2": "1", "i3": "5", "i4": "5"}
    got = score_scale(block, [low, high], "gpcm", params)
    assert got.theta[0] < -1 < 1 < got.theta[1]
    assert np.all(got.se > 0)


def _simulate(params: ItemParams, block, theta, rng):
    """Answers (choice names) drawn from the model, un-reversing reverse-keyed items."""
    probs = models.probabilities(params, theta)  # (n_theta, n_items, K)
    cum = probs.cumsum(axis=2)
    u = rng.random(cum.shape[:2])[:, :, None]
    cats = (u > cum).sum(axis=2)
    top = len(block.choices) - 1
    answers = []
    for row in cats:
        sheet = {}
        for j, item in enumerate(block.items):
            k = top - row[j] if item.reverse else row[j]
            sheet[item.name] = block.choices[k].name
        answers.append(sheet)
    return answers


def test_grm_thetas_from_the_demo_calibration_follow_sum_scores(default_survey):
    block = scale(default_survey, "motivation", "self_directed", name="LMS")
    params = read_params(LMS)
    rng = np.random.default_rng(2024)
    true_theta = rng.normal(0, 1, 400)
    answers = _simulate(params.subset(block.item_ids), block, true_theta, rng)
    scores = score_scale(block, answers, "grm", params)
    rho_sum = spearmanr(scores.sum, scores.theta).statistic
    rho_true = spearmanr(true_theta, scores.theta).statistic
    assert rho_sum > 0.9          # stated tolerance: rank agreement with sum scores
    assert rho_true > 0.85        # and with the simulated abilities
    assert abs(np.mean(scores.theta)) < 0.2 and 0.7 < np.std(scores.theta) < 1.1
    assert np.all((scores.se > 0.1) & (scores.se < 0.5))  # 24 items: precise scores
    # a separate motivation score uses the 12 MOT items of the same calibration
    mot = score_scale(scale(default_survey, "motivation"), answers, "grm", params)
    assert spearmanr(mot.theta, scores.theta).statistic > 0.8
    assert np.all(mot.se > scores.se)  # fewer items, less precision


@pytest.mark.parametrize(("models", "method"), [
    (["grm", "grm"], "grm"), (["gpcm", "pcm"], "gpcm"), (["pcm"], "gpcm"),
    (["grm", "gpcm"], None), (["2pl"], None), ([], None)])
def test_scale_method_follows_the_model_catalogue(models, method) -> None:
    """Rating blocks are IRT-scored only when every item's model is of one polytomous family."""
    from surveys.scales import scale_method

    assert scale_method(models) == method
