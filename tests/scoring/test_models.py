"""Tests for scoring.models: probabilities, derivatives, information, likelihood."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import models as M
from scoring.params import ItemParams

THETA = np.linspace(-4.0, 4.0, 17)


def single(model, a, b, c=0.0):
    return ItemParams.from_arrays(["x"], model, [a], [b], c=[c])


BANKS = {
    "2pl": lambda: single("2pl", 1.4, [0.3]),
    "3pl": lambda: single("3pl", 1.8, [-0.4], c=0.25),
    "rasch": lambda: single("rasch", 1.0, [0.7]),
    "grm": lambda: single("grm", 1.2, [-1.5, -0.2, 0.4, 1.9]),
    "gpcm": lambda: single("gpcm", 0.7, [0.8, -0.6, 1.2]),
    "pcm": lambda: single("pcm", 1.0, [-0.3, 0.5]),
}


def numerical_fisher(params, theta, h=1e-5):
    """Σ_k P_k'(θ)² / P_k(θ) with central differences for P_k'."""
    p = M.probabilities(params, theta)
    dp = (M.probabilities(params, theta + h) - M.probabilities(params, theta - h)) / (2 * h)
    safe = np.where(p > 0, p, 1.0)
    return np.sum(np.where(p > 0, dp**2 / safe, 0.0), axis=-1)


# ----------------------------------------------------------------- probabilities


def test_probabilities_sum_to_one_and_pad_with_zero(mixed_bank):
    p = M.probabilities(mixed_bank, THETA)
    assert p.shape == (17, 6, 4)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-12)  # tol: rounding only
    assert (p >= 0).all()
    # 2PL/3PL/Rasch use 2 categories, PCM 3: the rest must be exactly 0
    assert (p[:, [0, 1, 5], 2:] == 0).all() and (p[:, 4, 3] == 0).all()
    lp = M.log_probabilities(mixed_bank, THETA)
    assert np.isneginf(lp[:, 0, 2:]).all()


def test_probabilities_hand_computed_points(mixed_bank):
    p = M.probabilities(mixed_bank, [0.5, -1.0])
    # 2PL a=1.3 b=0.3 at θ=0.5
    np.testing.assert_allclose(p[0, 0, 1], 1 / (1 + np.exp(-1.3 * 0.2)), rtol=1e-13)
    # 3PL a=1.7 b=-0.5 c=0.2 at θ=-1
    np.testing.assert_allclose(p[1, 1, 1], 0.2 + 0.8 / (1 + np.exp(1.7 * 0.5)), rtol=1e-13)
    # GRM a=1.1 b=(-1, .2, 1.5) at θ=0.5: differences of cumulative logistic curves
    star = [1.0] + [1 / (1 + np.exp(-1.1 * (0.5 - bk))) for bk in (-1.0, 0.2, 1.5)] + [0.0]
    np.testing.assert_allclose(p[0, 2], np.diff(star) * -1, rtol=1e-12)
    # GPCM a=0.8 steps (.5, -.7, 1) at θ=-1: numerators exp(Σ a(θ - b_v))
    num = np.exp(np.cumsum([0.0] + [0.8 * (-1.0 - bv) for bv in (0.5, -0.7, 1.0)]))
    np.testing.assert_allclose(p[1, 3], num / num.sum(), rtol=1e-12)
    # PCM at θ=0.5, steps (.2, .4)
    num = np.exp([0.0, 0.3, 0.3 + 0.1])
    np.testing.assert_allclose(p[0, 4, :3], num / num.sum(), rtol=1e-12)


def test_two_category_grm_and_gpcm_equal_2pl():
    two = ItemParams.from_arrays(["a", "b", "c"], ["2pl", "grm", "gpcm"], 1.3, [[0.4]] * 3)
    p = M.probabilities(two, THETA)
    np.testing.assert_allclose(p[:, 1], p[:, 0], rtol=1e-12)
    np.testing.assert_allclose(p[:, 2], p[:, 0], rtol=1e-12)
    info = M.item_information(two, THETA)
    np.testing.assert_allclose(info[:, 1], info[:, 0], rtol=1e-10)
    np.testing.assert_allclose(info[:, 2], info[:, 0], rtol=1e-10)


def test_log_probabilities_stable_far_from_items(mixed_bank):
    theta = np.array([-60.0, 60.0])
    lp = M.log_probabilities(mixed_bank, theta)
    valid = np.arange(4)[None, :] < mixed_bank.n_categories[:, None]
    assert np.isfinite(lp[:, valid]).all()  # no -inf/NaN for real categories
    # 2PL at θ=-60: log P(1) = log_expit(1.3 * (-60.3)) ~ -78.39, exactly representable
    np.testing.assert_allclose(lp[0, 0, 1], -1.3 * 60.3 - np.log1p(np.exp(-78.39)), rtol=1e-12)
    # 3PL at θ=-60: log P(1) -> log c
    np.testing.assert_allclose(lp[0, 1, 1], np.log(0.2), rtol=1e-12)
    # GRM top category at θ=-60 is ~ 1.1 * (-61.5)
    np.testing.assert_allclose(lp[0, 2, 3], -1.1 * 61.5, rtol=1e-10)


# -------------------------------------------------------------------- information


@pytest.mark.parametrize("name", sorted(BANKS))
def test_information_matches_numerical_fisher(name):
    params = BANKS[name]()
    got = M.item_information(params, THETA)
    want = numerical_fisher(params, THETA)
    # tol: central differences with h=1e-5 are accurate to ~1e-9 here
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


def test_information_mixed_bank_and_test_information(mixed_bank):
    got = M.item_information(mixed_bank, THETA)
    np.testing.assert_allclose(got, numerical_fisher(mixed_bank, THETA), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(M.test_information(mixed_bank, THETA), got.sum(axis=1))


def test_information_known_closed_forms():
    # 2PL: a² P Q; maximum a²/4 at θ = b.
    p2 = single("2pl", 2.0, [0.5])
    np.testing.assert_allclose(M.item_information(p2, [0.5]), [[1.0]], rtol=1e-14)
    # 3PL maximum is at θ = b + log((1 + sqrt(1 + 8c)) / 2) / a  (Birnbaum)
    a, b, c = 1.5, 0.2, 0.25
    p3 = single("3pl", a, [b], c=c)
    grid = np.linspace(-1, 2, 30001)
    t_max = grid[np.argmax(M.item_information(p3, grid)[:, 0])]
    assert abs(t_max - (b + np.log((1 + np.sqrt(1 + 8 * c)) / 2) / a)) < 2e-4  # grid step 1e-4


@pytest.mark.parametrize("name", sorted(BANKS))
def test_log_probability_derivatives_match_finite_differences(name):
    params = BANKS[name]()
    h = 1e-4
    d = M.log_probability_derivatives(params, THETA)
    lp = M.log_probabilities
    num1 = (lp(params, THETA + h) - lp(params, THETA - h)) / (2 * h)
    num2 = (lp(params, THETA + h) - 2 * lp(params, THETA) + lp(params, THETA - h)) / h**2
    valid = np.isfinite(d.log_p)
    # tol: O(h²) truncation + O(eps/h²) rounding for the second difference
    np.testing.assert_allclose(d.d1[valid], num1[valid], atol=1e-7)
    np.testing.assert_allclose(d.d2[valid], num2[valid], atol=1e-5)
    assert (d.d1[~valid] == 0).all() and (d.d2[~valid] == 0).all()


def test_expected_score(mixed_bank):
    e = M.expected_score(mixed_bank, THETA)
    p = M.probabilities(mixed_bank, THETA)
    np.testing.assert_allclose(e, (p * np.arange(4)).sum(-1), rtol=1e-13)
    np.testing.assert_allclose(e[:, 0], p[:, 0, 1])
    # expected score increases with θ for every model here
    assert (np.diff(e, axis=0) > 0).all()


# -------------------------------------------------------------------- likelihood


def brute_log_likelihood(params, responses, theta):
    out = np.zeros((responses.shape[0], len(theta)))
    p = M.probabilities(params, theta)
    for i in range(responses.shape[0]):
        for t in range(len(theta)):
            for j in range(params.n_items):
                x = responses[i, j]
                if not np.isnan(x):
                    out[i, t] += np.log(p[t, j, int(x)])
    return out


def test_log_likelihood_matches_brute_force_with_nans(mixed_bank):
    rng = np.random.default_rng(1)
    n = 25
    r = np.column_stack([rng.integers(0, k, n) for k in mixed_bank.n_categories]).astype(float)
    r[rng.random(r.shape) < 0.3] = np.nan
    r[0] = np.nan  # a person with no responses
    got = M.log_likelihood(mixed_bank, r, THETA)
    assert got.shape == (n, THETA.size)
    np.testing.assert_allclose(got, brute_log_likelihood(mixed_bank, r, THETA), rtol=1e-12)
    np.testing.assert_array_equal(got[0], 0.0)


def test_sum_over_responses_reuses_indicators(mixed_bank):
    r = np.array([[1, 0, 3, 2, 1, np.nan], [0, 1, 0, 0, 2, 1]], dtype=float)
    ind = M.category_indicators(mixed_bank, r)
    assert ind.shape == (4, 2, 6)
    d = M.log_probability_derivatives(mixed_bank, THETA)
    grad = M.sum_over_responses(ind, d.d1)
    h = 1e-6
    num = (M.log_likelihood(mixed_bank, r, THETA + h)
           - M.log_likelihood(mixed_bank, r, THETA - h)) / (2 * h)
    np.testing.assert_allclose(grad, num, atol=1e-6)  # tol: central-difference error


@pytest.mark.parametrize(
    "bad, message",
    [
        ([1, 0, 4, 0, 0, 0], "item 'grm'"),  # category 4 of a 4-category item
        ([1, 0, 0, 0, 0, 0.5], "item 'rasch'"),  # not an integer
        ([1, 0, 0, 0, -1, 0], "item 'pcm'"),
        ([2, 0, 0, 0, 0, 0], "item 'd2'"),
    ],
)
def test_invalid_responses_are_rejected(mixed_bank, bad, message):
    with pytest.raises(ValueError, match=message):
        M.log_likelihood(mixed_bank, np.array([bad], dtype=float), THETA)


def test_responses_shape_checked(mixed_bank):
    with pytest.raises(ValueError, match="persons x items"):
        M.log_likelihood(mixed_bank, np.zeros((3, 5)), THETA)
    # a 1-D vector is one person
    assert M.log_likelihood(mixed_bank, np.zeros(6), THETA).shape == (1, THETA.size)


# ------------------------------------------------------------ property-based


@st.composite
def polytomous_bank(draw):
    n_cat = draw(st.integers(2, 6))
    steps = draw(st.lists(st.floats(-3, 3), min_size=n_cat - 1, max_size=n_cat - 1))
    model = draw(st.sampled_from(["grm", "gpcm"]))
    a = draw(st.floats(0.2, 3.0))
    if model == "grm":
        steps = sorted(steps)
        if np.any(np.diff(steps) <= 1e-3):
            steps = list(np.linspace(-2, 2, n_cat - 1))
    return ItemParams.from_arrays(["x"], model, [a], [steps])


@settings(max_examples=40, deadline=None)
@given(polytomous_bank(), st.floats(-8, 8))
def test_property_probabilities_valid_and_information_nonnegative(params, theta):
    p = M.probabilities(params, [theta])
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(), 1.0, atol=1e-12)
    info = M.item_information(params, [theta])
    assert np.all(info >= 0)
    # information never exceeds a² (K-1)² / 4 (variance bound of a K-category score)
    k = params.n_categories[0]
    assert info[0, 0] <= params.a[0] ** 2 * (k - 1) ** 2 / 4 + 1e-12


def test_check_responses_names_the_first_bad_entry_across_row_blocks():
    """The check runs in row blocks (memory); the first invalid entry in row-major order
    and the total count are reported as for one pass over the matrix, and a valid
    matrix is returned as is (no copy)."""
    n_items = 100
    params = ItemParams.from_arrays([f"q{j}" for j in range(n_items)], "2pl",
                                    np.ones(n_items), np.zeros((n_items, 1)))
    r = np.zeros((6000, n_items))
    assert M.check_responses(params, r) is r
    r[5900, 3] = 2.0          # beyond the first block of rows
    r[2700, 7] = 0.5
    r[2700, 9] = -1.0
    with pytest.raises(ValueError, match=r"invalid response 0\.5 for person row 2700, "
                                         r"item 'q7' .*; 3 invalid entries in total"):
        M.check_responses(params, r)


def test_normalize_log_weights_is_a_softmax_without_subnormal_numbers() -> None:
    from scipy.special import logsumexp

    from scoring.models import normalize_log_weights

    rng = np.random.default_rng(3)
    log_w = rng.normal(0.0, 400.0, size=(200, 61))    # rows spanning thousands of nats
    expected_norm = logsumexp(log_w, axis=1)
    expected = np.exp(log_w - expected_norm[:, None])
    out = log_w.copy()
    norm = normalize_log_weights(out)
    np.testing.assert_allclose(norm, expected_norm, rtol=1e-13)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-13)
    # every weight the exact softmax gives within 1e-13 of the row total ...
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-250)
    # ... and no weight anywhere near the subnormal range (products with them would run
    # ~9x slower): 0 or at least exp(-600) / 61 of the row total
    tiny = np.finfo(float).tiny
    assert out[out > 0].min() >= np.exp(-600.0) / 61
    assert np.any(expected[(expected > 0)] < tiny)     # the data do reach that range
