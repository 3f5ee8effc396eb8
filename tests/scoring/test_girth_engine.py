"""Tests of scoring.girth_engine (the girth adapter) and its agreement with the native
MML-EM.  girth uses a look-up table for difficulties and stops after at most 25 cycles,
so agreement tolerances are 0.01 on LSAT-7 and 0.06 on small simulated sets (stated per
test); the native estimates are the reference (they match mirt on LSAT-7)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scoring import models
from scoring.calibration import calibrate
from scoring.girth_engine import GIRTH_MODELS, calibrate_girth
from scoring.params import ItemParams

LSAT7 = Path(__file__).resolve().parents[1] / "data" / "lsat7.csv"
MIRT_A = np.array([0.988, 1.081, 1.706, 0.765, 0.736])
MIRT_B = np.array([-1.879, -0.748, -1.058, -0.635, -2.520])


def lsat7() -> np.ndarray:
    return np.loadtxt(LSAT7, delimiter=",", skiprows=1)


def simulate(params: ItemParams, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    P = models.probabilities(params, theta)
    u = rng.random(P.shape[:2])[..., None]
    y = (u > np.cumsum(P, axis=2)).sum(axis=2)
    return np.minimum(y, params.n_categories - 1).astype(float)


def test_lsat7_2pl_girth_matches_native_and_mirt():
    """girth 2PL on LSAT-7: within 0.01 of the native engine and 0.02 of mirt."""
    g = calibrate_girth(lsat7(), "2pl", item_ids=["Q1", "Q2", "Q3", "Q4", "Q5"])
    n = calibrate(lsat7(), "2pl", compute_se=False)
    np.testing.assert_allclose(g.params.a, n.params.a, atol=0.01)
    np.testing.assert_allclose(g.params.b[:, 0], n.params.b[:, 0], atol=0.01)
    np.testing.assert_allclose(g.params.a, MIRT_A, atol=0.02)
    np.testing.assert_allclose(g.params.b[:, 0], MIRT_B, atol=0.02)
    assert list(g.params.item_ids) == ["Q1", "Q2", "Q3", "Q4", "Q5"]
    assert list(g.params.model) == ["2pl"] * 5
    assert g.loglik == pytest.approx(n.loglik, abs=0.01)
    assert g.n_params == 10 and g.aic == pytest.approx(-2 * g.loglik + 20)
    assert np.all(np.isnan(g.params.se_a))


def test_rasch_and_1pl_are_mapped_to_our_metric():
    """girth's onepl_mml (common slope, N(0,1)) is mapped to Rasch = slope 1 with a free
    latent SD; both agree with the native engine within 0.01."""
    y = lsat7()
    gr, nr = calibrate_girth(y, "rasch"), calibrate(y, "rasch", compute_se=False)
    np.testing.assert_allclose(gr.params.b[:, 0], nr.params.b[:, 0], atol=0.01)
    assert gr.group_sds[0] == pytest.approx(nr.group_sds[0], abs=0.01)
    # the items carry the latent SD the slope became (what PARAMS.csv writes)
    assert gr.params.latent_sd == gr.group_sds[0] and gr.params.latent_mean == 0.0
    assert gr.params.latent_sd == pytest.approx(nr.params.latent_sd, abs=0.01)
    assert np.all(gr.params.a == 1.0) and gr.n_params == 6
    g1, n1 = calibrate_girth(y, "1pl"), calibrate(y, "1pl", compute_se=False)
    np.testing.assert_allclose(g1.params.a, n1.params.a, atol=0.01)
    np.testing.assert_allclose(g1.params.b[:, 0], n1.params.b[:, 0], atol=0.01)


@pytest.mark.parametrize("model", ["2pl", "grm", "gpcm"])
def test_agreement_on_simulated_data(model: str):
    """8 items x 2,000 persons (4 categories for grm/gpcm): girth and native agree within
    0.06 on a and b; both recover the truth (RMSE < 0.15)."""
    rng = np.random.default_rng(13)
    n_items = 8
    a = rng.uniform(0.8, 1.8, n_items)
    if model == "2pl":
        b = rng.uniform(-1.5, 1.5, (n_items, 1))
    elif model == "grm":
        b = rng.uniform(-0.8, 0.4, (n_items, 1)) + np.array([[-0.9, 0.1, 1.1]])
    else:
        b = rng.uniform(-0.4, 0.4, (n_items, 1)) + np.array([[-1.0, 0.0, 1.0]])
    true = ItemParams.from_arrays([f"i{j}" for j in range(n_items)], model, a, b)
    y = simulate(true, rng.standard_normal(2000), rng)
    g = calibrate_girth(y, model)
    n = calibrate(y, model, compute_se=False)
    np.testing.assert_allclose(g.params.a, n.params.a, atol=0.06)
    np.testing.assert_allclose(g.params.b, n.params.b, atol=0.06)
    for res in (g, n):
        assert np.sqrt(np.mean((res.params.a - a) ** 2)) < 0.15
        assert np.sqrt(np.nanmean((res.params.b - true.b) ** 2)) < 0.15


def test_missing_responses_use_girths_invalid_response_mask():
    """30 % of responses missing completely at random (NaN -> girth.INVALID_RESPONSE):
    girth 2PL still agrees with the native engine within 0.06; a person without any
    response is dropped, not counted as a pattern of zeros."""
    rng = np.random.default_rng(17)
    true = ItemParams.from_arrays([f"i{j}" for j in range(8)], "2pl",
                                  rng.uniform(0.8, 1.8, 8), rng.uniform(-1.2, 1.2, 8))
    y = simulate(true, rng.standard_normal(2500), rng)
    y[rng.random(y.shape) < 0.3] = np.nan
    y[0] = np.nan
    g = calibrate_girth(y, "2pl")
    n = calibrate(y, "2pl", compute_se=False)
    np.testing.assert_allclose(g.params.a, n.params.a, atol=0.06)
    np.testing.assert_allclose(g.params.b[:, 0], n.params.b[:, 0], atol=0.06)


def test_unsupported_models_raise_clear_errors():
    y = lsat7()
    with pytest.raises(RuntimeError, match="numpy >= 2"):
        calibrate_girth(y, "3pl")
    with pytest.raises(ValueError, match="fixed slope"):
        calibrate_girth(y, "pcm")
    with pytest.raises(ValueError, match="not available with girth"):
        calibrate_girth(y, "nominal")
    assert set(GIRTH_MODELS) == {"rasch", "1pl", "2pl", "grm", "gpcm"}


def test_bad_items_are_named_before_girth_runs():
    y = lsat7()
    with pytest.raises(ValueError, match="item Z: no response variance"):
        calibrate_girth(np.column_stack([y, np.ones(len(y))]), "2pl",
                        item_ids=["A", "B", "C", "D", "E", "Z"])
    gap = np.where(y[:, 0] == 1, 2.0, 0.0)        # categories 0 and 2 only
    with pytest.raises(ValueError, match="no responses in category 1"):
        calibrate_girth(np.column_stack([y, gap]), "grm")
    with pytest.raises(ValueError, match="needs 0/1"):
        calibrate_girth(np.column_stack([y, y.sum(axis=1)]), "2pl")
