"""The IRT model catalogue (scoring/catalogue.py): names, aliases, layout, engines, kernels."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from click.testing import CliRunner

from scoring import catalogue, fit, girth_engine, io, linking, models, params
from scoring.calibration import calibrate
from scoring.cli import calibrate as calibrate_command
from scoring.params import ItemParams

#: what every module assumed before the catalogue existed (a change here is a change of
#: behaviour, not of bookkeeping)
EXPECTED = {
    # name: (dichotomous, slope, guessing, ordered, engines, S-X2 parameters for K=2 and 4)
    "rasch": (True, "fixed", False, False, ("native", "girth"), (1, None)),
    "1pl": (True, "common", False, False, ("native", "girth"), (1, None)),
    "2pl": (True, "free", False, False, ("native", "girth"), (2, None)),
    "3pl": (True, "free", True, False, ("native",), (3, None)),
    "grm": (False, "free", False, True, ("native", "girth"), (2, 4)),
    "gpcm": (False, "free", False, False, ("native", "girth"), (2, 4)),
    "pcm": (False, "fixed", False, False, ("native",), (1, 3)),
}


def bank_of(name: str, n_categories: int = 4) -> ItemParams:
    """Two items of one model with sensible parameters."""
    entry = catalogue.get(name)
    a = [1.0, 1.0] if entry.unit_slope else [1.3, 0.8]
    if entry.dichotomous:
        b = [[-0.4], [0.7]]
    else:
        b = [list(np.linspace(-1.0, 1.0, n_categories - 1)),
             list(np.linspace(-0.5, 1.5, n_categories - 1))]
    c = [0.2, 0.1] if entry.guessing else None
    return ItemParams.from_arrays(["i1", "i2"], name, a, b, c)


def test_the_catalogue_lists_the_seven_models_once():
    assert catalogue.NAMES == ("rasch", "1pl", "2pl", "3pl", "grm", "gpcm", "pcm")
    assert params.MODELS == catalogue.NAMES
    assert params.DICHOTOMOUS == ("rasch", "1pl", "2pl", "3pl")
    assert params.POLYTOMOUS == ("grm", "gpcm", "pcm")
    assert catalogue.UNIT_SLOPE == io.UNIT_SLOPE == ("rasch", "pcm")
    assert catalogue.GUESSING == ("3pl",)
    assert catalogue.ORDERED_THRESHOLDS == ("grm",)
    assert set(catalogue.MODELS) == set(EXPECTED)
    for name, (dich, slope, guessing, ordered, engines, _n) in EXPECTED.items():
        entry = catalogue.MODELS[name]
        assert (entry.dichotomous, entry.slope, entry.guessing, entry.ordered_thresholds,
                entry.engines) == (dich, slope, guessing, ordered, engines), name
        assert entry.family in catalogue.FAMILIES
        assert entry.polytomous is not dich
        assert entry.rescaled in catalogue.NAMES
        assert catalogue.MODELS[entry.rescaled].family == entry.family


@pytest.mark.parametrize("name", catalogue.NAMES)
def test_every_name_and_alias_round_trips(name):
    entry = catalogue.MODELS[name]
    for spelling in (name, *entry.aliases):
        for variant in (spelling, spelling.upper(), f"  {spelling} "):
            assert catalogue.canonical(variant) == name
            assert catalogue.get(variant) is entry
        assert ItemParams.from_arrays(["x"], spelling, *_one_item(entry)).model[0] == name
    assert catalogue.canonical_names([name, *entry.aliases]) == [name] * (1 + len(entry.aliases))


def _one_item(entry: catalogue.IRTModel) -> tuple:
    a = 1.0 if entry.unit_slope else 1.2
    b = [[0.1]] if entry.dichotomous else [[-0.5, 0.5]]
    c = 0.2 if entry.guessing else 0.0
    return a, b, c


def test_aliases_are_unique_and_unknown_names_are_refused():
    spellings = catalogue.accepted_names()
    assert len(spellings) == len(set(spellings))
    assert spellings[:len(catalogue.NAMES)] == catalogue.NAMES
    for bad in ("4pl", "nominal", "", "pcm2"):
        with pytest.raises(ValueError, match="unknown model"):
            catalogue.canonical(bad)
    with pytest.raises(ValueError, match=r"unknown model\(s\) \['4pl', 'x'\]"):
        catalogue.canonical_names(["2pl", "x", "4pl"])
    with pytest.raises(ValueError, match="unknown model"):
        ItemParams.from_arrays(["x"], "nominal", 1.0, [0.0])


def test_names_where_and_engines():
    assert catalogue.names_where(family="gpcm") == ("gpcm", "pcm")
    assert catalogue.names_where(family="dichotomous", slope="free") == ("2pl", "3pl")
    assert catalogue.engine_models("native") == catalogue.NAMES
    assert catalogue.engine_models("girth") == girth_engine.GIRTH_MODELS
    with pytest.raises(ValueError, match="unknown engine"):
        catalogue.engine_models("mirt")


@pytest.mark.parametrize("name", catalogue.NAMES)
def test_category_rule(name):
    entry = catalogue.MODELS[name]
    assert entry.allows_categories(2)
    assert entry.allows_categories(5) is entry.polytomous
    assert not entry.allows_categories(1)
    if entry.dichotomous:
        with pytest.raises(ValueError):
            entry.columns(3)
        with pytest.raises(ValueError, match="n_categories = 2"):
            ItemParams.from_arrays(["x"], name, 1.0, [[0.0, 1.0]],
                                   0.2 if entry.guessing else 0.0)


@pytest.mark.parametrize("name", catalogue.NAMES)
def test_layout_matches_what_params_csv_writes_and_reads(name, tmp_path):
    """The non-empty value columns of each PARAMS.csv row are ``columns(K)``."""
    k = 4
    bank = bank_of(name, k)
    entry = catalogue.MODELS[name]
    path = tmp_path / "params.csv"
    io.write_params(path, bank)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    value_columns = {"a", "b", "c", *(f"b{j}" for j in range(1, 10))}
    for row in rows:
        filled = tuple(col for col in row if col in value_columns and row[col] != "")
        expected = entry.columns(2 if entry.dichotomous else k)
        assert filled == expected, (name, filled)
        assert row["model"] == name
        for column, value in entry.fixed_values().items():
            assert float(row[column]) == value
        assert ("a" in entry.fixed_values()) is entry.unit_slope
    back = io.read_params(path)
    assert back.allclose(bank)
    # the layout is what ItemParams holds: one b for dichotomous items, K-1 otherwise
    assert np.all(np.sum(np.isfinite(bank.b), axis=1) == bank.n_categories - 1)
    assert np.all((bank.c != 0) == entry.guessing)


@pytest.mark.parametrize("name", catalogue.NAMES)
def test_params_and_params_csv_enforce_the_layout(name, tmp_path):
    entry = catalogue.MODELS[name]
    a, b, c = _one_item(entry)
    if entry.unit_slope:
        with pytest.raises(ValueError, match="a = 1"):
            ItemParams.from_arrays(["x"], name, 1.5, b, c)
    if not entry.guessing:
        with pytest.raises(ValueError, match="c must be 0"):
            ItemParams.from_arrays(["x"], name, a, b, 0.2)
    if entry.ordered_thresholds:
        with pytest.raises(ValueError, match="strictly increasing"):
            ItemParams.from_arrays(["x"], name, a, [[0.5, -0.5]], c)
    elif entry.polytomous:
        assert ItemParams.from_arrays(["x"], name, a, [[0.5, -0.5]], c).n_items == 1
    # PARAMS.csv reads aliases and writes the canonical name
    alias = entry.aliases[0] if entry.aliases else name.upper()
    header = "item_id,model,a,b,c,b1,b2"
    cells = ([f"x,{alias},{a},{b[0][0]},{c},,"] if entry.dichotomous
             else [f"x,{alias},{a},,,{b[0][0]},{b[0][1]}"])
    path = tmp_path / "p.csv"
    path.write_text("\n".join([header, *cells]) + "\n", encoding="utf-8")
    assert io.read_params(path).model.tolist() == [name]


@pytest.mark.parametrize("name", catalogue.NAMES)
def test_n_parameters_is_what_fit_charges(name):
    entry = catalogue.MODELS[name]
    two, four = EXPECTED[name][5]
    assert entry.n_parameters(2) == two
    if four is not None:
        assert entry.n_parameters(4) == four
    bank = bank_of(name, 4)
    assert fit.n_item_parameters(bank).tolist() == [entry.n_parameters(
        int(k)) for k in bank.n_categories]


def test_rescaling_a_unit_slope_frees_it(mixed_bank):
    bank = mixed_bank
    moved = linking.apply_transform(bank, linking.LinkTransform(1.2, 0.1, "mean_sigma", 6))
    assert moved.model.tolist() == [catalogue.MODELS[str(m)].rescaled for m in bank.model]
    assert moved.model.tolist() == ["2pl", "3pl", "grm", "gpcm", "gpcm", "1pl"]


def _intercept_form(bank: ItemParams, j: int, kmax: int) -> np.ndarray:
    """Row [a, d_1.., c] of item j with d_k = -a b_k."""
    row = np.zeros(kmax + 1)
    row[0] = bank.a[j]
    k = int(bank.n_categories[j]) - 1
    row[1:1 + k] = -bank.a[j] * bank.b[j, :k]
    row[kmax] = bank.c[j]
    return row


def test_both_parameterisations_use_the_same_response_functions(mixed_bank):
    """log P in slope-intercept form equals log_probabilities (1e-12); its parameter
    gradient equals central differences of log P (1e-6)."""
    bank = mixed_bank
    theta = np.linspace(-4, 4, 17)
    kmax = bank.max_categories
    ref = models.log_probabilities(bank, theta)
    for j in range(bank.n_items):
        entry = catalogue.MODELS[str(bank.model[j])]
        X = _intercept_form(bank, j, kmax)[None]
        ncat = bank.n_categories[j:j + 1]
        out = models.slope_intercept_log_probabilities(
            entry.family, X, ncat, theta, guessing=entry.guessing, gradient=True)
        k = int(ncat[0])
        np.testing.assert_allclose(out.log_p[0, :, :k], ref[:, j, :k], atol=1e-12)
        assert np.all(out.log_p[0, :, k:] == -np.inf)
        used = [0, *range(1, k if entry.polytomous else 2)] + ([kmax] if entry.guessing else [])
        for m in used:
            h = 1e-6
            up, down = X.copy(), X.copy()
            up[0, m] += h
            down[0, m] -= h
            numeric = (models.slope_intercept_log_probabilities(
                entry.family, up, ncat, theta, guessing=entry.guessing).log_p
                - models.slope_intercept_log_probabilities(
                    entry.family, down, ncat, theta, guessing=entry.guessing).log_p) / (2 * h)
            np.testing.assert_allclose(out.grad[0, :, :k, m], numeric[0, :, :k], atol=1e-6)


@pytest.mark.parametrize("alias,name", [("graded", "grm"), ("TwoPL", "2pl")])
def test_calibration_and_the_command_line_accept_aliases(alias, name, tmp_path):
    rng = np.random.default_rng(3)
    bank = bank_of(name, 3)
    theta = rng.normal(size=300)
    p = models.probabilities(bank, theta)
    y = (rng.random(p.shape[:2])[..., None] > np.cumsum(p, axis=2)).sum(axis=2).astype(float)
    y = np.minimum(y, bank.n_categories - 1)
    result = calibrate(y, alias, compute_se=False)
    assert set(result.params.model.tolist()) == {name}
    path = tmp_path / "responses.csv"
    path.write_text("person_id,i1,i2\n" + "".join(
        f"p{i},{int(y[i, 0])},{int(y[i, 1])}\n" for i in range(len(y))), encoding="utf-8")
    out = tmp_path / "params.csv"
    res = CliRunner().invoke(calibrate_command, [str(path), "--model", alias, "--out", str(out),
                                                 "--quiet"])
    assert res.exit_code == 0, res.output
    assert io.read_params(out).model.tolist() == [name, name]
    res = CliRunner().invoke(calibrate_command, [str(path), "--model", "nominal", "--out",
                                                 str(tmp_path / "x.csv"), "--quiet"])
    assert res.exit_code == 2 and "unknown model" in res.output
