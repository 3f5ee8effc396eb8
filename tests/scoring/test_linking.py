"""Tests for scoring/linking.py: mean-mean, mean-sigma, Stocking-Lord, Haebara."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from scoring import models as M
from scoring.linking import (
    LinkTransform,
    apply_transform,
    characteristic_curve_criterion,
    haebara,
    link,
    mean_mean,
    mean_sigma,
    stocking_lord,
)
from scoring.params import ItemParams

METHODS = (mean_mean, mean_sigma, stocking_lord, haebara)


def inverse(ref: ItemParams, A: float, B: float) -> ItemParams:
    """The 'new' calibration that A, B map onto ``ref``: a_new = A a_ref,
    b_new = (b_ref - B) / A, latent mean (mean_ref - B) / A and SD sd_ref / A.  Rasch/PCM
    items become 1PL/GPCM (slope A)."""
    model = np.where(ref.model == "rasch", "1pl", np.where(ref.model == "pcm", "gpcm", ref.model))
    return ref.replace(model=model, a=ref.a * A, b=(ref.b - B) / A,
                       latent_mean=(ref.latent_mean - B) / A, latent_sd=ref.latent_sd / A)


def random_bank(rng, n_items=20) -> ItemParams:
    """2PL, 3PL, GRM and GPCM items (4 categories for the polytomous ones)."""
    models = ["2pl", "3pl", "grm", "gpcm"] * (n_items // 4)
    b = [np.sort(rng.normal(0, 1, 3)) if m in ("grm", "gpcm") else [rng.normal()]
         for m in models]
    c = [0.2 if m == "3pl" else 0.0 for m in models]
    return ItemParams.from_arrays(item_ids=[f"i{j}" for j in range(n_items)], model=models,
                                  a=rng.uniform(0.7, 2.0, n_items), b=b, c=c)


@pytest.mark.parametrize("method", METHODS, ids=lambda f: f.__name__)
def test_exact_recovery_mixed_bank(mixed_bank, method):
    """No noise: every method returns A = 1.3, B = -0.4 to 1e-9 (mixed 2PL/3PL/GRM/GPCM/PCM/
    Rasch bank, common items in a different order and an extra non-common item)."""
    A, B = 1.3, -0.4
    new = inverse(mixed_bank, A, B)
    extra = ItemParams.from_arrays(["only_new"], "2pl", [1.0], [0.0])
    new = new.subset(np.arange(new.n_items)[::-1]).concat(extra)
    tr = method(new, mixed_bank, fix_a=False)
    assert tr.A == pytest.approx(A, abs=1e-9)
    assert tr.B == pytest.approx(B, abs=1e-9)
    assert tr.n_common == 6 and tr.converged


@settings(max_examples=15, deadline=None)
@given(A=st.floats(0.4, 2.5), B=st.floats(-2.0, 2.0), seed=st.integers(0, 2**16))
def test_exact_recovery_property(A, B, seed):
    """Any A in [0.4, 2.5], B in [-2, 2], random 8-item mixed bank: Stocking-Lord and Haebara
    recover (A, B) to 1e-7 from the mean-sigma start."""
    ref = random_bank(np.random.default_rng(seed), n_items=8)
    new = inverse(ref, A, B)
    for method in (stocking_lord, haebara):
        tr = method(new, ref)
        assert tr.A == pytest.approx(A, abs=1e-7) and tr.B == pytest.approx(B, abs=1e-7)


@pytest.mark.parametrize("method", ("stocking_lord", "haebara"))
def test_criterion_exactly_zero_and_apply_transform_recovers_reference(mixed_bank, method):
    """At the recovered transform the curve criterion is ~0 (< 1e-20) and apply_transform gives
    back the reference parameters (1e-9)."""
    new = inverse(mixed_bank, 0.8, 0.5)
    tr = link(new, mixed_bank, method, fix_a=False)
    assert tr.criterion < 1e-20
    back = apply_transform(new, tr)
    assert back.subset(mixed_bank.item_ids).replace(model=mixed_bank.model).allclose(
        mixed_bank, rtol=1e-9, atol=1e-9)


def noisy_pair(seed, A=1.25, B=0.6, noise=0.05):
    rng = np.random.default_rng(seed)
    ref = random_bank(rng)
    new = inverse(ref, A, B)
    b_noise = np.where(np.isnan(new.b), np.nan, rng.normal(0, noise, new.b.shape))
    new = new.replace(a=new.a * np.exp(rng.normal(0, noise, new.n_items)), b=new.b + b_noise)
    grm = new.model == "grm"  # keep GRM thresholds increasing after noise
    b = new.b.copy()
    b[grm] = np.sort(b[grm], axis=1)
    return new.replace(b=b), ref


@pytest.mark.parametrize("method", METHODS, ids=lambda f: f.__name__)
def test_approximate_recovery_with_noise(method):
    """Parameter noise (sd 0.05 on b, 5% on a, 20 items): |A - 1.25| < 0.1, |B - 0.6| < 0.1."""
    new, ref = noisy_pair(1)
    tr = method(new, ref)
    assert abs(tr.A - 1.25) < 0.1 and abs(tr.B - 0.6) < 0.1


@pytest.mark.parametrize("method", ("stocking_lord", "haebara"))
def test_solution_is_a_minimum(method):
    """Noisy case: the criterion at the solution is lower than at 8 points 0.02 away in (A, B),
    and agrees with a Nelder-Mead minimisation of the same criterion (A, B within 1e-4)."""
    new, ref = noisy_pair(2)
    tr = link(new, ref, method)
    at = characteristic_curve_criterion(new, ref, tr.A, tr.B, method)
    assert at == pytest.approx(tr.criterion, rel=1e-8)
    for dA, dB in [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)]:
        assert characteristic_curve_criterion(new, ref, tr.A + 0.02 * dA, tr.B + 0.02 * dB,
                                              method) > at
    nm = optimize.minimize(lambda v: characteristic_curve_criterion(new, ref, v[0], v[1], method),
                           x0=[1.0, 0.0], method="Nelder-Mead",
                           options={"xatol": 1e-8, "fatol": 1e-14, "maxiter": 2000})
    assert nm.x == pytest.approx([tr.A, tr.B], abs=1e-4)
    assert at <= nm.fun + 1e-12


def test_uniform_weights_and_custom_grid_still_exact(mixed_bank):
    new = inverse(mixed_bank, 1.1, 0.3)
    for weights in ("uniform", np.ones(21)):
        tr = stocking_lord(new, mixed_bank, theta_grid=np.linspace(-3, 3, 21), weights=weights,
                           fix_a=False)
        assert (tr.A, tr.B) == pytest.approx((1.1, 0.3), abs=1e-9)
    with pytest.raises(ValueError, match="weights"):
        haebara(new, mixed_bank, weights="triangular")


def test_rasch_banks_fix_slope_at_one():
    """All common items Rasch: A = 1 by default for every method, B = mean shift (exact)."""
    ref = ItemParams.from_arrays([f"r{j}" for j in range(6)], "rasch", 1.0,
                                 [-1.5, -0.5, 0.0, 0.4, 1.0, 2.0])
    new = ref.replace(b=ref.b - 0.7)
    for method in METHODS:
        tr = method(new, ref)
        assert tr.A == 1.0
        assert tr.B == pytest.approx(0.7, abs=1e-9)
    moved = apply_transform(new, LinkTransform(1.0, 0.7, "mean_mean"))
    assert np.all(moved.model == "rasch")


def test_apply_transform_parameters_se_and_invariance(mixed_bank):
    """a / A, A b + B, c kept, SEs scaled; rasch -> 1pl, pcm -> gpcm when A != 1; and
    P(A θ + B; transformed) = P(θ; original) for all categories (1e-12)."""
    se = mixed_bank.with_se(se_a=np.full(6, 0.1), se_b=np.where(np.isnan(mixed_bank.b), np.nan,
                                                               0.2), se_c=np.full(6, 0.05))
    tr = LinkTransform(A=2.0, B=-1.0, method="mean_sigma")
    out = apply_transform(se, tr)
    np.testing.assert_allclose(out.a, mixed_bank.a / 2.0)
    np.testing.assert_allclose(out.b, 2.0 * mixed_bank.b - 1.0)
    np.testing.assert_array_equal(out.c, mixed_bank.c)
    np.testing.assert_allclose(out.se_a, 0.05)
    np.testing.assert_allclose(out.se_b, np.where(np.isnan(mixed_bank.b), np.nan, 0.4))
    np.testing.assert_allclose(out.se_c, 0.05)
    assert list(out.model) == ["2pl", "3pl", "grm", "gpcm", "gpcm", "1pl"]
    out.validate()
    theta = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(M.probabilities(out, tr.theta(theta)),
                               M.probabilities(mixed_bank, theta), atol=1e-12)


def test_common_item_checks(mixed_bank):
    other = ItemParams.from_arrays(["x", "y"], "2pl", [1, 1], [0, 1])
    with pytest.raises(ValueError, match="no item ids in common"):
        mean_mean(other, mixed_bank)
    wrong = mixed_bank.replace(model=np.array(["2pl", "3pl", "gpcm", "gpcm", "pcm", "rasch"]))
    with pytest.raises(ValueError, match="model family"):
        stocking_lord(wrong, mixed_bank)
    with pytest.raises(ValueError, match="unknown linking method"):
        link(mixed_bank, mixed_bank, "equipercentile")


def test_apply_transform_carries_the_latent_distribution(mixed_bank):
    """theta_ref = A theta_new + B: a new calibration's population N(0.2, 0.75^2) is
    N(A 0.2 + B, (A 0.75)^2) on the reference scale (exact to 1e-12), and a round trip
    through the inverse transform gives the original back."""
    new = mixed_bank.replace(latent_mean=0.2, latent_sd=0.75)
    linked = apply_transform(new, LinkTransform(A=1.3, B=-0.4, method="mean_sigma"))
    assert linked.latent_mean == pytest.approx(1.3 * 0.2 - 0.4, abs=1e-12)
    assert linked.latent_sd == pytest.approx(1.3 * 0.75, abs=1e-12)
    back = apply_transform(linked, LinkTransform(A=1 / 1.3, B=0.4 / 1.3, method="mean_sigma"))
    assert back.latent_mean == pytest.approx(0.2, abs=1e-12)
    assert back.latent_sd == pytest.approx(0.75, abs=1e-12)
