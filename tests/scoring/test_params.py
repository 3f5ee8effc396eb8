"""Tests for scoring.params: construction, validation, subsetting, combining."""

import numpy as np
import pytest

from scoring.params import DICHOTOMOUS, MODELS, POLYTOMOUS, ItemParams, concat_banks


def test_model_lists():
    assert set(DICHOTOMOUS) | set(POLYTOMOUS) == set(MODELS)
    assert not set(DICHOTOMOUS) & set(POLYTOMOUS)


def test_from_arrays_dichotomous_1d_b_and_broadcast_model():
    p = ItemParams.from_arrays(["i1", "i2"], "2PL", [1.0, 2.0], [0.5, -1.0])
    assert p.n_items == 2 and len(p) == 2
    assert p.max_categories == 2
    assert p.b.shape == (2, 1)
    np.testing.assert_array_equal(p.b[:, 0], [0.5, -1.0])
    np.testing.assert_array_equal(p.model, ["2pl", "2pl"])  # lower-cased
    np.testing.assert_array_equal(p.c, [0.0, 0.0])
    np.testing.assert_array_equal(p.n_categories, [2, 2])
    assert p.item_ids.dtype.kind == "U"


def test_from_arrays_ragged_mixed_bank(mixed_bank):
    p = mixed_bank
    assert p.max_categories == 4
    assert p.b.shape == (6, 3)
    np.testing.assert_array_equal(p.n_categories, [2, 2, 4, 4, 3, 2])
    # NaN padding on the right only
    assert np.isnan(p.b[0, 1:]).all() and np.isnan(p.b[4, 2])
    np.testing.assert_array_equal(p.b[2], [-1.0, 0.2, 1.5])
    np.testing.assert_array_equal(p.is_dichotomous, [True, True, False, False, False, True])


def test_from_arrays_padded_matrix_and_explicit_categories():
    b = np.array([[-1.0, 0.0, 1.0], [0.0, 1.0, np.nan]])
    p = ItemParams.from_arrays(["a", "b"], "grm", [1.0, 1.0], b, n_categories=[4, 3])
    np.testing.assert_array_equal(p.n_categories, [4, 3])


def test_scalar_slope_broadcast_for_rasch():
    p = ItemParams.from_arrays(["x", "y", "z"], "rasch", 1.0, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(p.a, [1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"a": [1.0, -0.5]}, "'q2': slope a must be finite and > 0"),
        ({"a": [1.0, 0.0]}, "'q2': slope a must be finite and > 0"),
        ({"model": "3pl", "c": [0.1, 1.0]}, "'q2': 3PL lower asymptote"),
        ({"model": "3pl", "c": [-0.1, 0.2]}, "'q1': 3PL lower asymptote"),
        ({"c": [0.0, 0.2]}, "'q2': c must be 0 for non-3PL"),
        ({"model": "rasch", "a": [1.0, 1.2]}, "'q2': rasch/pcm items must have a = 1"),
        ({"item_ids": ["q1", "q1"]}, "duplicate item ids: 'q1'"),
        ({"b": [[0.0], [0.5, 1.0]]}, "'q2': dichotomous items must have n_categories = 2"),
    ],
)
def test_invalid_dichotomous_params_name_the_item(kwargs, message):
    args = {"item_ids": ["q1", "q2"], "model": "2pl", "a": [1.0, 1.5], "b": [0.0, 0.5]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ItemParams.from_arrays(**args)


def test_grm_thresholds_must_increase():
    with pytest.raises(ValueError, match="'bad': GRM thresholds must be strictly increasing"):
        ItemParams.from_arrays(["ok", "bad"], "grm", [1.0, 1.0], [[-1, 0, 1], [0, 0, 1]])
    # GPCM steps may be reversed: no error.
    ItemParams.from_arrays(["ok", "rev"], "gpcm", [1.0, 1.0], [[-1, 0, 1], [1, 0, -1]])


def test_wrong_number_of_thresholds():
    with pytest.raises(ValueError, match="'p': wrong number of thresholds"):
        ItemParams.from_arrays(["p"], "grm", [1.0], [[0.0, 1.0, 2.0]], n_categories=[3])
    with pytest.raises(ValueError, match="'p': wrong number of thresholds"):
        ItemParams.from_arrays(["p"], "gpcm", [1.0], [0.5], n_categories=[4])
    with pytest.raises(ValueError, match="'p': thresholds must be finite and NaN-padded"):
        ItemParams.from_arrays(["p"], "grm", [1.0], [[0.0, np.nan, 2.0]])
    with pytest.raises(ValueError, match="'p': thresholds must be finite"):
        ItemParams.from_arrays(["p"], "2pl", [1.0], [np.inf])


def test_unknown_model_and_shape_errors():
    with pytest.raises(ValueError, match="unknown model"):
        ItemParams.from_arrays(["x"], "4pl", [1.0], [0.0])
    with pytest.raises(ValueError, match="a must have shape"):
        ItemParams.from_arrays(["x", "y"], "2pl", [1.0, 1.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="one row per item"):
        ItemParams.from_arrays(["x", "y"], "2pl", [1.0, 1.0], [0.0, 1.0, 2.0])


def test_plain_constructor_checks_shapes_only():
    # A negative slope is allowed by the plain constructor (calibration output)...
    p = ItemParams(item_ids=["x"], model=["2pl"], a=[-1.0], b=[0.0], c=[0.0], n_categories=[2])
    assert p.b.shape == (1, 1)
    # ...but fails validation.
    with pytest.raises(ValueError, match="'x'"):
        p.validate()
    # Shapes are enforced.
    with pytest.raises(ValueError, match="b has values beyond column"):
        ItemParams(item_ids=["x"], model=["2pl"], a=[1.0], b=[[0.0, 1.0]], c=[0.0],
                   n_categories=[2])


def test_arrays_are_read_only(mixed_bank):
    with pytest.raises(ValueError):
        mixed_bank.a[0] = 5.0
    with pytest.raises(AttributeError):
        mixed_bank.a = np.ones(6)  # frozen dataclass


def test_subset_by_ids_indices_mask_slice(mixed_bank):
    s = mixed_bank.subset(["rasch", "d2"])
    np.testing.assert_array_equal(s.item_ids, ["rasch", "d2"])
    np.testing.assert_array_equal(s.b[:, 0], [1.0, 0.3])
    assert s.b.shape == (2, 1)  # threshold columns trimmed to the subset
    s2 = mixed_bank.subset("gpcm")
    assert s2.n_items == 1 and s2.b.shape == (1, 3)
    np.testing.assert_array_equal(mixed_bank.subset([0, 2]).item_ids, ["d2", "grm"])
    mask = mixed_bank.is_dichotomous
    np.testing.assert_array_equal(mixed_bank.subset(mask).item_ids, ["d2", "d3", "rasch"])
    np.testing.assert_array_equal(mixed_bank.subset(slice(4, None)).item_ids, ["pcm", "rasch"])
    with pytest.raises(KeyError, match="nope"):
        mixed_bank.subset(["nope"])


def test_concat_and_standard_errors(mixed_bank):
    small = ItemParams.from_arrays(["n1"], "2pl", [1.0], [0.0], se_a=[0.1], se_b=[0.2])
    both = mixed_bank.concat(small)
    assert both.n_items == 7 and both.b.shape == (7, 3)
    np.testing.assert_array_equal(both.item_ids[-1], "n1")
    # mixed_bank has no SEs -> NaN; small keeps its own
    assert np.isnan(both.se_a[:6]).all() and both.se_a[6] == 0.1
    assert both.se_b.shape == (7, 3) and both.se_b[6, 0] == 0.2 and np.isnan(both.se_b[6, 1])
    assert both.se_c is None
    with pytest.raises(ValueError, match="duplicate item ids across banks: 'n1'"):
        concat_banks([both, small])
    back = both.subset(mixed_bank.item_ids)
    assert back.allclose(mixed_bank)


def test_with_se_and_replace(mixed_bank):
    p = mixed_bank.with_se(se_a=np.full(6, 0.05), se_b=np.full((6, 3), 0.1))
    assert p.se_a.shape == (6,) and p.se_b.shape == (6, 3) and p.se_c is None
    with pytest.raises(ValueError, match="se_a must have shape"):
        mixed_bank.with_se(se_a=np.ones(5))
    q = mixed_bank.replace(a=mixed_bank.a * 2)
    np.testing.assert_allclose(q.a, mixed_bank.a * 2)
    assert not q.allclose(mixed_bank)


def test_latent_distribution_defaults_validates_and_travels():
    """Default N(0, 1); a finite mean and an SD > 0 are required; subset, with_se,
    replace and concat keep the first bank's distribution; allclose compares it."""
    bank = ItemParams.from_arrays(["a", "b"], "rasch", 1.0, [-0.5, 0.5])
    assert (bank.latent_mean, bank.latent_sd) == (0.0, 1.0)
    scaled = ItemParams.from_arrays(["a", "b"], "rasch", 1.0, [-0.5, 0.5], latent_mean=0.1,
                                    latent_sd=0.75)
    assert isinstance(scaled.latent_sd, float) and scaled.latent_sd == 0.75
    for sd in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="latent distribution"):
            bank.replace(latent_sd=sd)
    with pytest.raises(ValueError, match="latent distribution"):
        bank.replace(latent_mean=float("nan"))
    for copy in (scaled.subset([1]), scaled.with_se(se_a=[0.1, 0.1]),
                 scaled.replace(b=[[0.0], [1.0]]), scaled.concat(bank.subset(["a"]).replace(
                     item_ids=["c"]))):
        assert (copy.latent_mean, copy.latent_sd) == (0.1, 0.75)
    assert not scaled.allclose(bank) and scaled.allclose(scaled.subset([0, 1]))
