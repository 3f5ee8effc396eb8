"""Tests of the CAT engine (assessment/engine.py): selection, EAP, state, pilots, stopping."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assessment import engine as E
from scoring import estimation
from scoring import models as irt
from scoring.params import ItemParams


def mixed_params(n: int = 60, seed: int = 0) -> ItemParams:
    """A bank mixing 2PL, 3PL, GRM (4 categories) and GPCM (4 categories) items."""
    rng = np.random.default_rng(seed)
    models = rng.choice(["2pl", "3pl", "grm", "gpcm"], n)
    b, c = [], []
    for m in models:
        if m in ("2pl", "3pl"):
            b.append([rng.normal()])
            c.append(0.2 if m == "3pl" else 0.0)
        elif m == "grm":
            b.append(sorted(rng.normal(0, 1, 3)))
            c.append(0.0)
        else:
            b.append(list(rng.normal(0, 1, 3)))
            c.append(0.0)
    return ItemParams.from_arrays([f"q{j}" for j in range(n)], models,
                                  rng.lognormal(0, 0.3, n), b, c)


def twopl_params(n: int = 120, seed: int = 1) -> ItemParams:
    rng = np.random.default_rng(seed)
    return ItemParams.from_arrays([f"i{j:03d}" for j in range(n)], "2pl",
                                  rng.lognormal(0.2, 0.25, n), rng.uniform(-2.5, 2.5, n))


def draw(params: ItemParams, j: int, theta: float, rng: np.random.Generator) -> int:
    p = irt.probabilities(params.subset([j]), [theta])[0, 0, : params.n_categories[j]]
    return int(rng.choice(p.size, p=p / p.sum()))


def run_test(bank: E.Bank, bp: E.Blueprint, seed: int, theta: float,
             rng: np.random.Generator) -> E.TestState:
    state = E.start(bank, bp, seed)
    while (choice := E.next_item(bank, bp, state)) is not None:
        state = E.answer(bank, state, choice.index, draw(bank.params, choice.index, theta, rng))
    return state


def eap_reference(params: ItemParams, state: E.TestState) -> estimation.PersonEstimates:
    idx, scores = state.scored_responses()
    resp = np.full((1, params.n_items), np.nan)
    resp[0, list(idx)] = scores
    return estimation.eap(params, resp, prior_mean=state.prior_mean, prior_sd=state.prior_sd)


# ------------------------------------------------------------------ selection


def test_selection_is_the_most_informative_available_item():
    """Chosen item = brute-force argmax of item_information over available items at the
    grid point nearest θ̂; at θ̂ itself it loses at most max|dI/dθ| x (grid step / 2)."""
    params = mixed_params()
    bank = E.Bank(params, domains=["A", "B", "C"] * 20)
    bp = E.Blueprint(min_items=25, max_items=25, se_target=0.01)
    fine = np.linspace(-4, 4, 1601)
    info_fine = irt.item_information(params, fine)
    slope = np.max(np.abs(np.diff(info_fine, axis=0)) / (fine[1] - fine[0]))
    step = bank.theta_grid[1] - bank.theta_grid[0]
    rng = np.random.default_rng(3)
    checked = 0
    for seed in range(8):
        theta_true = rng.normal()
        state = E.start(bank, bp, seed)
        while (choice := E.next_item(bank, bp, state)) is not None:
            available = np.ones(params.n_items, dtype=bool)
            available[list(state.items)] = False
            theta_g = bank.theta_grid[bank.grid_index(state.theta)]
            assert abs(theta_g - np.clip(state.theta, -4, 4)) <= step / 2 + 1e-12
            at_grid = irt.item_information(params, [theta_g])[0]
            assert choice.index == int(np.argmax(np.where(available, at_grid, -np.inf)))
            at_theta = irt.item_information(params, [state.theta])[0]
            best = np.max(np.where(available, at_theta, -np.inf))
            assert at_theta[choice.index] >= best - slope * step - 1e-12
            assert not choice.is_pilot
            state = E.answer(bank, state, choice.index,
                             draw(params, choice.index, theta_true, rng))
            checked += 1
    assert checked == 8 * 25


def test_never_repeats_and_stops_when_the_bank_is_exhausted():
    params = twopl_params(n=30)
    bank = E.Bank(params)
    bp = E.Blueprint(min_items=30, max_items=30, se_target=0.01)
    state = run_test(bank, bp, seed=4, theta=0.3, rng=np.random.default_rng(0))
    assert sorted(state.items) == list(range(30))
    bp_long = E.Blueprint(min_items=40, max_items=40, se_target=0.01)
    assert E.should_stop(bank, bp_long, state) == (True, "no_items")
    assert E.next_item(bank, bp_long, state) is None
    with pytest.raises(ValueError, match="already administered"):
        E.answer(bank, state, state.items[0], 1)


def test_enemies_are_never_together():
    params = twopl_params()
    ids = params.item_ids.tolist()
    # Groups of items of similar difficulty, so that they compete for selection.
    order = np.argsort(params.b[:, 0])
    bank_groups = [[ids[j] for j in order[k:k + 4]] for k in range(0, 120, 8)]
    bp_groups = [[ids[j] for j in order[k:k + 3]] for k in range(4, 120, 8)]
    bank = E.Bank(params, enemies=bank_groups)
    bp = E.Blueprint(min_items=20, max_items=20, se_target=0.01, enemies=bp_groups)
    rng = np.random.default_rng(5)
    for seed in range(20):
        state = run_test(bank, bp, seed, rng.normal(), rng)
        given = set(state.item_ids)
        assert len(given) == 20
        for group in bank_groups + bp_groups:
            assert len(given & set(group)) <= 1, group


# ------------------------------------------------------------------ estimation


@pytest.mark.parametrize("prior", [None, (0.7, 1.4), "older"])
def test_incremental_eap_equals_scoring_eap(prior):
    params = mixed_params(seed=2)
    bank = E.Bank(params)
    bp = E.Blueprint(min_items=20, max_items=20, se_target=0.01,
                     group_priors={"older": {"mean": -0.5, "sd": 0.8}})
    rng = np.random.default_rng(7)
    state = E.start(bank, bp, seed=11, prior=prior)
    expected_prior = {None: (0.0, 1.0), "older": (-0.5, 0.8)}.get(prior, prior)
    assert (state.theta, state.se) == expected_prior
    while (choice := E.next_item(bank, bp, state)) is not None:
        state = E.answer(bank, state, choice.index, draw(params, choice.index, 1.0, rng))
        ref = eap_reference(params, state)
        assert state.theta == pytest.approx(ref.theta[0], abs=1e-9)
        assert state.se == pytest.approx(ref.se[0], abs=1e-9)
    theta, se, method = E.final_score(bank, bp, state)
    assert method == "eap"
    assert theta == pytest.approx(state.theta, abs=1e-9)
    assert se == pytest.approx(state.se, abs=1e-9)


@pytest.mark.parametrize("method", ["map", "mle", "wle"])
def test_final_score_uses_scoring_estimation(method):
    params = mixed_params(seed=4)
    bank = E.Bank(params)
    bp = E.Blueprint(min_items=12, max_items=12, se_target=0.01, final_method=method)
    state = run_test(bank, bp, seed=2, theta=-0.4, rng=np.random.default_rng(1))
    idx, scores = state.scored_responses()
    ref = estimation.estimate(params.subset(list(idx)), np.array([scores], dtype=float),
                              method=method)
    theta, se, used = E.final_score(bank, bp, state)
    assert used == method
    assert theta == pytest.approx(ref.theta[0], abs=1e-8)
    assert se == pytest.approx(ref.se[0], abs=1e-8)
    many = E.final_scores(bank, bp, [state, E.start(bank, bp, 1)])
    assert many[0][0] == pytest.approx(theta, abs=1e-8)
    if method == "map":
        assert (many[0][1], many[1][1]) == (0.0, 1.0)  # no answers: the prior
    else:
        assert np.isnan(many[0][1]) and np.isnan(many[1][1])


# ------------------------------------------------------------------ state


def full_blueprint() -> E.Blueprint:
    return E.Blueprint(min_items=8, max_items=16, se_target=0.25,
                       content_balance={"A": 0.5, "B": 0.3, "C": 0.2},
                       exposure="randomesque", candidates=4,
                       pilot_positions=[3, 9])


def test_state_json_round_trip_gives_identical_choices():
    params = twopl_params(n=150)
    domains = ["A", "B", "C"] * 50
    pilot = [f"i{j:03d}" for j in range(140, 150)]
    rng = np.random.default_rng(9)
    for bp in (full_blueprint(),
               E.Blueprint(min_items=10, max_items=14, se_target=0.01,
                           exposure="sympson-hetter",
                           sh_parameters={f"i{j:03d}": 0.3 for j in range(0, 140, 2)})):
        bank = E.Bank(params, domains=domains, pilot=pilot)
        other = E.Bank(params, domains=domains, pilot=pilot)  # another worker's bank
        state = E.start(bank, bp, seed=2**62 + 12345)
        while True:
            stored = json.loads(json.dumps(state.to_dict()))
            restored = E.TestState.from_dict(stored)
            choice = E.next_item(bank, bp, state)
            assert E.next_item(bank, bp, restored) == choice
            assert E.next_item(other, E.Blueprint.from_dict(bp.to_dict()), restored) == choice
            rebuilt = E.replay(other, bp, state.seed, state.item_ids, state.scores)
            assert E.next_item(other, bp, rebuilt) == choice
            assert (rebuilt.theta, rebuilt.se) == (state.theta, state.se)
            assert (restored.theta, restored.se) == (state.theta, state.se)
            if choice is None:
                break
            score = draw(params, choice.index, 0.5, rng)
            state = E.answer(bank, state, choice.index, score)
            # continuing from the restored state gives the same state
            cont = E.answer(other, restored, choice.index, score)
            assert cont.to_dict() == state.to_dict()
        assert state.n_administered > 8


def test_from_dict_refuses_a_broken_state():
    with pytest.raises(ValueError, match="version"):
        E.TestState.from_dict({"version": 99})
    good = E.TestState(seed=1, prior_mean=0.0, prior_sd=1.0).to_dict()
    with pytest.raises(ValueError, match="length"):
        E.TestState.from_dict({**good, "items": [1]})
    with pytest.raises(ValueError, match="not an engine state"):
        E.TestState.from_dict({"version": 1})


def test_randomness_is_pinned():
    """Stored sessions depend on these values: changing the hash breaks them."""
    assert E._uniform(0) == 0.8833108082136426  # SplitMix64's first output for seed 0
    assert E._uniform(123, 7) == 0.30108842612141995
    assert E._item_uniform(E._hash(5, 1), E._id_hash("Q1")) == 0.09745977758778779


# ------------------------------------------------------------------ pilots


def test_pilot_items_never_change_the_estimate():
    params = twopl_params(n=150)
    domains = ["A", "B", "C"] * 50
    pilot = [f"i{j:03d}" for j in range(140, 150)]
    bank = E.Bank(params, domains=domains, pilot=pilot)
    bp = full_blueprint()
    rng = np.random.default_rng(21)
    for seed in range(10):
        theta_true = rng.normal()
        state = run_test(bank, bp, seed, theta_true, rng)
        positions = [k + 1 for k, p in enumerate(state.pilot) if p]
        assert positions == [3, 9]
        assert all(state.item_ids[k - 1] in pilot for k in positions)
        assert all(i not in pilot for i, p in zip(state.item_ids, state.pilot) if not p)
        # the same scored answers without the pilot answers: identical estimate
        no_pilot_bank = E.Bank(params, domains=domains)
        idx, scores = state.scored_responses()
        plain = E.replay(no_pilot_bank, E.Blueprint(), 0,
                         [params.item_ids[j] for j in idx], scores)
        assert (plain.theta, plain.se) == (state.theta, state.se)
        assert E.final_score(bank, bp, state) == E.final_score(no_pilot_bank, bp, plain)
        assert sum(E.domain_counts(bank, state).values()) == state.n_scored
        assert state.n_scored == state.n_administered - 2
        # pilot answers with any score leave theta alone
        flipped = list(state.scores)
        for k in positions:
            flipped[k - 1] = 1 - flipped[k - 1]
        again = E.replay(bank, bp, seed, state.item_ids, flipped)
        assert (again.theta, again.se) == (state.theta, state.se)


def test_pilot_position_without_pilot_items_gives_an_operational_item():
    bank = E.Bank(twopl_params(n=40))
    bp = E.Blueprint(min_items=5, max_items=5, se_target=0.01, pilot_positions=[1, 2])
    state = run_test(bank, bp, 0, 0.0, np.random.default_rng(0))
    assert state.pilot == (False,) * 5


# ------------------------------------------------------------------ stopping


def test_stopping_rules():
    params = twopl_params()
    bank = E.Bank(params)
    rng = np.random.default_rng(2)
    bp = E.Blueprint(min_items=4, max_items=60, se_target=0.45)
    state = run_test(bank, bp, 1, 0.2, rng)
    assert E.should_stop(bank, bp, state) == (True, "se_target")
    assert state.se <= 0.45 and state.n_scored >= 4
    before = E.replay(bank, bp, 1, state.item_ids[:-1], state.scores[:-1])
    assert before.se > 0.45 or before.n_scored < 4
    assert E.should_stop(bank, bp, before) == (False, None)

    bp_max = E.Blueprint(min_items=2, max_items=6, se_target=0.01)
    state = run_test(bank, bp_max, 1, 0.2, rng)
    assert state.n_scored == 6 and E.should_stop(bank, bp_max, state) == (True, "max_items")

    bp_min = E.Blueprint(min_items=10, max_items=60, se_target=0.9)
    state = run_test(bank, bp_min, 1, 0.2, rng)
    assert state.n_scored == 10

    bp_info = E.Blueprint(min_items=3, max_items=60, se_target=0.01, min_info_gain=0.3)
    state = run_test(bank, bp_info, 1, 0.2, rng)
    assert E.should_stop(bank, bp_info, state) == (True, "min_info_gain")
    at = irt.item_information(params, [bank.theta_grid[bank.grid_index(state.theta)]])[0]
    available = np.ones(params.n_items, bool)
    available[list(state.items)] = False
    assert at[available].max() < 0.3
    before = E.replay(bank, bp_info, 1, state.item_ids[:-1], state.scores[:-1])
    at = irt.item_information(params, [bank.theta_grid[bank.grid_index(before.theta)]])[0]
    assert at[np.isin(params.item_ids, before.item_ids, invert=True)].max() >= 0.3


# ------------------------------------------------------------------ content, exposure


def test_content_balancing_keeps_each_test_on_target():
    params = twopl_params(n=180, seed=8)
    rng = np.random.default_rng(4)
    domains = rng.choice(["A", "B", "C", "D"], 180).tolist()
    bank = E.Bank(params, domains=domains)
    targets = {"A": 0.5, "B": 0.3, "C": 0.2}  # D is not in the blueprint: never used
    bp = E.Blueprint(min_items=20, max_items=20, se_target=0.01, content_balance=targets)
    for seed in range(30):
        state = run_test(bank, bp, seed, rng.normal(), rng)
        counts = E.domain_counts(bank, state)
        assert counts["D"] == 0
        for d, t in targets.items():
            assert abs(counts[d] - t * 20) <= 1, (counts, seed)
        # and at every prefix of the test (Kingsbury-Zara keeps the running counts close)
        doms = [domains[j] for j in state.items]
        for n in range(1, 21):
            for d, t in targets.items():
                assert abs(doms[:n].count(d) - t * n) <= 1.5


def test_content_balancing_falls_back_when_a_domain_runs_out():
    params = twopl_params(n=30)
    domains = ["A"] * 3 + ["B"] * 27
    bank = E.Bank(params, domains=domains)
    bp = E.Blueprint(min_items=12, max_items=12, se_target=0.01,
                     content_balance={"A": 0.5, "B": 0.5})
    state = run_test(bank, bp, 0, 0.0, np.random.default_rng(0))
    assert E.domain_counts(bank, state) == {"A": 3, "B": 9}


def test_randomesque_picks_among_the_top_candidates():
    params = twopl_params()
    bank = E.Bank(params)
    bp = E.Blueprint(min_items=10, max_items=10, se_target=0.01, exposure="randomesque",
                     candidates=5)
    firsts = set()
    rng = np.random.default_rng(6)
    for seed in range(40):
        state = E.start(bank, bp, seed)
        while (choice := E.next_item(bank, bp, state)) is not None:
            at = irt.item_information(params, [bank.theta_grid[bank.grid_index(state.theta)]])[0]
            at[list(state.items)] = -np.inf
            top5 = np.argsort(-at, kind="stable")[:5]
            assert choice.index in top5
            if not state.items:
                firsts.add(choice.index)
            state = E.answer(bank, state, choice.index, draw(params, choice.index, 0, rng))
    assert len(firsts) == 5


def test_sympson_hetter_skips_items_that_lose_their_lottery():
    params = twopl_params()
    bank = E.Bank(params)
    at0 = irt.item_information(params, [0.0])[0]
    top = np.argsort(-at0, kind="stable")
    closed = {str(params.item_ids[j]): 0.0 for j in top[:3]}
    bp = E.Blueprint(min_items=1, max_items=1, se_target=0.01, exposure="sympson-hetter",
                     sh_parameters=closed)
    for seed in range(20):
        choice = E.next_item(bank, bp, E.start(bank, bp, seed))
        assert choice.index == top[3]
    # K = 0.5 for the best item: it is given to about half of the examinees
    half = E.Blueprint(min_items=1, max_items=1, se_target=0.01, exposure="sympson-hetter",
                       sh_parameters={str(params.item_ids[top[0]]): 0.5})
    got = [E.next_item(bank, half, E.start(bank, half, s)).index for s in range(2000)]
    share = np.mean(np.array(got) == top[0])
    assert abs(share - 0.5) < 0.05  # binomial SD 0.011
    assert set(got) <= {int(top[0]), int(top[1])}


# ------------------------------------------------------------------ blueprint


def test_blueprint_round_trip_and_web_format():
    bp = E.Blueprint(min_items=3, max_items=9, se_target=0.3, min_info_gain=0.1,
                     group_priors={"young": (0.3, 0.9)}, final_method="WLE",
                     content_balance={"a": 2, "b": 2}, exposure="sympson-hetter",
                     max_rate=0.2, sh_parameters={"Q1": 0.5}, enemies=[["Q1", "Q2"]],
                     pilot_positions=[4, 2], pilot_items=["P1"])
    data = json.loads(json.dumps(bp.to_dict()))
    assert E.Blueprint.from_dict(data) == bp
    assert hash(E.Blueprint.from_dict(data)) == hash(bp)
    assert bp.content_balance == (("a", 0.5), ("b", 0.5))
    assert bp.pilot_positions == (2, 4) and bp.final_method == "wle"
    # no general prior: None, the calibration's latent distribution (set by start)
    assert bp.prior_for("young") == (0.3, 0.9) and bp.prior_for("other") == (None, None)
    demo = {"min_items": 15, "max_items": 25, "se_target": 0.35, "final_method": "eap",
            "content_balance": {"digital": 0.2, "reading": 0.8},
            "exposure": {"method": "randomesque", "candidates": 5, "max_rate": 0.3},
            "pilot_positions": [5, 12], "background": ["age_band"]}
    web = E.Blueprint.from_dict(demo)
    assert (web.exposure, web.candidates, web.max_rate) == ("randomesque", 5, 0.3)
    assert E.Blueprint.from_dict({}) == E.Blueprint()


@pytest.mark.parametrize("bad, message", [
    ({"min_items": 10, "max_items": 5}, "min_items"),
    ({"se_target": 0}, "se_target"),
    ({"final_method": "ml"}, "final_method"),
    ({"exposure": "magic"}, "exposure"),
    ({"exposure": {"method": "sympson-hetter", "parameters": {"Q1": 1.5}}}, "Sympson"),
    ({"content_balance": {"a": -1}}, "content_balance"),
    ({"pilot_positions": [0]}, "pilot_positions"),
])
def test_blueprint_refuses_bad_values(bad, message):
    with pytest.raises(ValueError, match=message):
        E.Blueprint.from_dict(bad)


def test_bank_checks_its_inputs():
    params = twopl_params(n=10)
    with pytest.raises(ValueError, match="one entry per item"):
        E.Bank(params, domains=["A"] * 9)
    with pytest.raises(ValueError, match="unknown pilot"):
        E.Bank(params, pilot=["nope"])
    with pytest.raises(ValueError, match="enemy group"):
        E.Bank(params, enemies=[["i000", "nope"]])
    with pytest.raises(ValueError, match="no operational"):
        E.Bank(params, pilot=params.item_ids.tolist())
    bank = E.Bank(params)
    state = E.start(bank, E.Blueprint(), 0)
    with pytest.raises(ValueError, match="not a category"):
        E.answer(bank, state, 0, 2)
    with pytest.raises(ValueError, match="outside the bank"):
        E.answer(bank, state, 10, 0)


# ------------------------------------------------------------------ KL selection


def kl_literal(params: ItemParams, theta0: float, delta: float, lo: float = -4.0,
               hi: float = 4.0, n_points: int = 4001) -> np.ndarray:
    """Chang & Ying's KL information of every item, straight from the definition:
    ∫ Σ_k P_k(θ0) log(P_k(θ0) / P_k(θ)) dθ over [θ0 - δ, θ0 + δ] ∩ [lo, hi], by
    Simpson's rule on a fine grid of exact probabilities (independent of the bank)."""
    a, b = max(lo, theta0 - delta), min(hi, theta0 + delta)
    t = np.linspace(a, b, n_points)
    p0 = irt.probabilities(params, [theta0])[0]  # (n_items, K)
    pt = irt.probabilities(params, t)  # (n_points, n_items, K)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p0 > 0, p0 * (np.log(p0) - np.log(pt)), 0.0)
    f = terms.sum(axis=2)  # (n_points, n_items)
    w = np.ones(n_points)
    w[1:-1:2], w[2:-1:2] = 4, 2
    return (w @ f) * (b - a) / (n_points - 1) / 3


def test_kl_selection_picks_the_item_brute_force_kl_integration_picks():
    """The first kl_items items maximise the KL information over θ̂ ± c/sqrt(n) at the
    grid point nearest θ̂ (the literal integral above, over available items); the bank
    integrates on its 0.05 grid with δ rounded to it, so a near-tie may go the other way,
    but then only by a hair, and the later items are chosen by Fisher information."""
    params = mixed_params(n=40, seed=5)
    bank = E.Bank(params)
    bp = E.Blueprint(min_items=8, max_items=8, se_target=0.01, kl_items=4, kl_c=3.0)
    rng = np.random.default_rng(7)
    exact = checked = 0
    for seed in range(12):
        theta_true = rng.normal()
        state = E.start(bank, bp, seed)
        while (choice := E.next_item(bank, bp, state)) is not None:
            available = np.ones(params.n_items, dtype=bool)
            available[list(state.items)] = False
            theta_g = bank.theta_grid[bank.grid_index(state.theta)]
            if state.n_scored < 4:
                delta = 3.0 / np.sqrt(max(state.n_scored, 1))
                kl = np.where(available, kl_literal(params, theta_g, delta), -np.inf)
                best = int(np.argmax(kl))
                exact += choice.index == best
                assert kl[choice.index] >= kl[best] * (1 - 0.01), (seed, state.n_scored)
                checked += 1
            else:
                info = irt.item_information(params, [theta_g])[0]
                assert choice.index == int(np.argmax(np.where(available, info, -np.inf)))
            state = E.answer(bank, state, choice.index,
                             draw(params, choice.index, theta_true, rng))
    assert checked == 12 * 4 and exact >= 0.9 * checked


def test_kl_while_the_se_is_large():
    """kl.se: KL information while the posterior SD is above it, Fisher after."""
    params = mixed_params(n=40, seed=6)
    bank = E.Bank(params)
    bp = E.Blueprint(min_items=10, max_items=10, se_target=0.01, kl_se=0.6)
    rng = np.random.default_rng(2)
    by_kl = 0
    for seed in range(6):
        theta_true = rng.normal()
        state = E.start(bank, bp, seed)
        while (choice := E.next_item(bank, bp, state)) is not None:
            available = np.ones(params.n_items, dtype=bool)
            available[list(state.items)] = False
            theta_g = bank.theta_grid[bank.grid_index(state.theta)]
            if state.se > 0.6:
                delta = 3.0 / np.sqrt(max(state.n_scored, 1))
                kl = np.where(available, kl_literal(params, theta_g, delta), -np.inf)
                assert kl[choice.index] >= kl.max() * (1 - 0.01)
                by_kl += 1
            else:
                info = irt.item_information(params, [theta_g])[0]
                assert choice.index == int(np.argmax(np.where(available, info, -np.inf)))
            state = E.answer(bank, state, choice.index,
                             draw(params, choice.index, theta_true, rng))
    assert 6 <= by_kl < 6 * 10


def test_kl_information_of_the_bank_equals_the_literal_integral():
    """Bank.kl_information (trapezoid on the selection grid, window m steps) against the
    literal integral over the same window: agreement to 0.2 % for every item (near θ_g
    the integrand is about quadratic, for which the trapezoid's relative error is
    h² / (2 δ²) = 0.11 % at h = 0.05, δ = 1.05)."""
    params = mixed_params(n=30, seed=2)
    bank = E.Bank(params)
    step = bank.theta_grid[1] - bank.theta_grid[0]
    for g, m in [(80, 60), (80, 21), (30, 40), (150, 30)]:  # the last two are clamped
        got = bank.kl_information(g, m)[bank.rank[: params.n_items]]  # external order
        want = kl_literal(params, bank.theta_grid[g], m * step)
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-9)
        assert np.all(got >= 0)


def test_kl_with_content_balancing_and_json_round_trip():
    """KL ranks within the balanced domain, and a stored state picks the same items."""
    params = twopl_params(n=90, seed=3)
    domains = ["A", "B", "C"] * 30
    bank = E.Bank(params, domains=domains)
    bp = E.Blueprint(min_items=6, max_items=6, se_target=0.01, kl_items=3,
                     content_balance={"A": 1, "B": 1, "C": 1})
    rng = np.random.default_rng(1)
    state = run_test(bank, bp, 5, 0.4, rng)
    assert sorted(domains[j] for j in state.items) == ["A", "A", "B", "B", "C", "C"]
    again = E.replay(bank, bp, 5, state.item_ids[:2], state.scores[:2])
    stored = E.TestState.from_dict(json.loads(json.dumps(again.to_dict())))
    assert E.next_item(E.Bank(params, domains=domains), bp, stored).index == state.items[2]


# ------------------------------------------------------------------ classification


CUTS = (-1.0, 0.0, 1.0)


def at(state: E.TestState, theta: float, se: float) -> E.TestState:
    """The state with another estimate (the stopping rule reads only θ̂, SE, counts)."""
    from dataclasses import replace  # only here: a test helper
    return replace(state, theta=theta, se=se)


@pytest.mark.parametrize("theta, se, stops", [
    (0.5, 0.2, True),     # [0.171, 0.829] inside level 2 (0 <= θ < 1)
    (0.5, 0.35, False),   # [-0.076, 1.076] straddles both cuts of level 2
    (0.1, 0.05, True),    # [0.018, 0.182]
    (0.05, 0.05, False),  # [-0.032, 0.132] straddles 0
    (2.0, 0.5, True),     # [1.18, 2.82] inside the open top level
    (-3.0, 1.2, True),    # [-4.97, -1.03] inside the open bottom level
    (-1.5, 0.35, False),  # [-2.08, -0.92] straddles -1
])
def test_classification_stops_when_the_interval_is_inside_one_level(theta, se, stops):
    params = twopl_params()
    bank = E.Bank(params, cuts=CUTS)
    bp = E.Blueprint(min_items=3, max_items=30, se_target=0.01, classification_alpha=0.1)
    state = at(E.replay(bank, bp, 0, ["i000", "i001", "i002"], [1, 0, 1]), theta, se)
    assert E.should_stop(bank, bp, state) == ((True, "classified") if stops else (False, None))
    assert (E.next_item(bank, bp, state) is None) == stops
    # z = 1.645 for α = 0.1: the same interval with α = 0.5 (z = 0.674) is narrower
    wide = E.Blueprint(min_items=3, max_items=30, se_target=0.01, classification_alpha=0.5)
    if stops:
        assert E.should_stop(bank, wide, state) == (True, "classified")


def test_classification_respects_min_and_max_items_and_combines_with_the_se_rule():
    params = twopl_params()
    bank = E.Bank(params, cuts=CUTS)
    bp = E.Blueprint(min_items=5, max_items=30, se_target=0.01, classification_alpha=0.1)
    three = E.replay(bank, bp, 0, ["i000", "i001", "i002"], [1, 0, 1])
    assert E.should_stop(bank, bp, at(three, 0.5, 0.1)) == (False, None)  # min_items
    five = E.replay(bank, bp, 0, ["i000", "i001", "i002", "i003", "i004"], [1, 0, 1, 1, 0])
    assert E.should_stop(bank, bp, at(five, 0.5, 0.1)) == (True, "classified")
    # the SE rule still stops a test that straddles a cut; it is checked first
    both = E.Blueprint(min_items=5, max_items=30, se_target=0.3, classification_alpha=0.1)
    assert E.should_stop(bank, both, at(five, 0.02, 0.25)) == (True, "se_target")
    assert E.should_stop(bank, both, at(five, 0.5, 0.25)) == (True, "se_target")
    assert E.should_stop(bank, both, at(five, 0.5, 0.31)) == (False, None)
    # max_items wins over everything
    short = E.Blueprint(min_items=2, max_items=5, se_target=0.01, classification_alpha=0.1)
    assert E.should_stop(bank, short, at(five, 0.02, 0.9)) == (True, "max_items")
    # without the rule nothing changes; a bank without cuts has one level
    plain = E.Blueprint(min_items=5, max_items=30, se_target=0.01)
    assert E.should_stop(bank, plain, at(five, 0.5, 0.1)) == (False, None)
    one = E.Bank(params)
    assert E.should_stop(one, bp, at(five, 0.0, 2.0)) == (True, "classified")


def test_a_full_classification_test_ends_inside_a_level():
    params = twopl_params(n=200, seed=4)
    bank = E.Bank(params, cuts=CUTS)
    bp = E.Blueprint(min_items=5, max_items=60, se_target=0.01, classification_alpha=0.1,
                     kl_items=4)
    rng = np.random.default_rng(8)
    reasons = set()
    for seed in range(10):
        state = run_test(bank, bp, seed, rng.normal(), rng)
        _stop, reason = E.should_stop(bank, bp, state)
        reasons.add(reason)
        if reason == "classified":
            lo, hi = state.theta - 1.6449 * state.se, state.theta + 1.6449 * state.se
            assert bank.level_index(lo) == bank.level_index(hi)
            before = E.replay(bank, bp, seed, state.item_ids[:-1], state.scores[:-1])
            assert before.n_scored < 5 or E.should_stop(bank, bp, before) == (False, None)
    assert "classified" in reasons


def test_theta_cuts_give_the_level_the_reporting_scale_gives():
    """Bank.level_index with theta_cuts of the default levels = itembank's level_for
    of the reporting-scale score, on random θ and on θ exactly at each cut."""
    from itembank.scale import default_levels, level_for, to_scale  # the reference

    levels = default_levels()
    for mean, sd, a, b in [(500, 100, 1, 0), (250, 50, 1.2, -0.3)]:
        cuts = E.theta_cuts([lv["min"] for lv in levels], mean, sd, a, b)
        bank = E.Bank(twopl_params(n=5), cuts=cuts)
        thetas = np.concatenate([np.random.default_rng(0).normal(0, 1.5, 500), cuts])
        for t in thetas:
            want = [lv["code"] for lv in levels].index(
                level_for(float(to_scale(t, mean, sd, a, b)), levels)["code"])
            assert bank.level_index(float(t)) == want, t
    assert E.theta_cuts([None, 375, 450, 550, 625]) == (-1.25, -0.5, 0.5, 1.25)
    with pytest.raises(ValueError, match="rise with theta"):
        E.theta_cuts([None, 400], link_a=-1)
    with pytest.raises(ValueError, match="cuts must be finite and strictly increasing"):
        E.Bank(twopl_params(n=5), cuts=[0.5, 0.5])


def test_new_blueprint_fields_round_trip():
    bp = E.Blueprint.from_dict({"kl": {"items": 4, "c": 2.5, "se": 0.5},
                                "classification": {"alpha": 0.05}})
    assert (bp.kl_items, bp.kl_c, bp.kl_se, bp.classification_alpha) == (4, 2.5, 0.5, 0.05)
    assert E.Blueprint.from_dict(json.loads(json.dumps(bp.to_dict()))) == bp
    assert E.Blueprint.from_dict({"kl": 3}).kl_items == 3
    off = E.Blueprint.from_dict({"classification": None})
    assert off.classification_alpha is None and off.kl_items == 0


@pytest.mark.parametrize("bad, message", [
    ({"kl": {"items": -1}}, "kl.items must be >= 0"),
    ({"kl": {"items": 2.5}}, "kl.items must be a whole number"),
    ({"kl": {"items": "four"}}, "kl.items must be a whole number"),
    ({"kl": {"c": 0}}, "kl.c must be a number > 0"),
    ({"kl": {"c": "wide"}}, "kl.c must be a number"),
    ({"kl": {"se": -0.5}}, "kl.se must be a number > 0"),
    ({"kl": {"item": 3}}, "unknown keys"),
    ({"kl": True}, "blueprint 'kl' must be"),
    ({"classification": {"alpha": 1.5}}, r"classification.alpha must be in \(0, 1\)"),
    ({"classification": {"alpha": 0}}, r"classification.alpha must be in \(0, 1\)"),
    ({"classification": {}}, "needs 'alpha'"),
    ({"classification": {"alpha": 0.1, "cuts": [0]}}, "unknown keys"),
    ({"classification": 0.1}, "must be an object"),
])
def test_new_blueprint_fields_refuse_bad_values(bad, message):
    with pytest.raises(ValueError, match=message):
        E.Blueprint.from_dict(bad)


def _rasch_eap_by_quad(b: np.ndarray, scores: np.ndarray, mean: float, sd: float
                       ) -> tuple[float, float]:
    """Posterior mean and SD of a Rasch answer pattern under N(mean, sd^2) by scipy quad
    of the likelihood times the normal density (own formula, not scoring.models)."""
    from scipy import integrate, stats

    def density(t: float) -> float:
        p = 1.0 / (1.0 + np.exp(-(t - b)))
        return float(np.prod(np.where(scores == 1, p, 1.0 - p)) * stats.norm.pdf(t, mean, sd))

    lo, hi = mean - 12 * sd, mean + 12 * sd
    opts = {"epsabs": 0.0, "epsrel": 1e-12, "limit": 200}
    z = integrate.quad(density, lo, hi, **opts)[0]
    m = integrate.quad(lambda t: t * density(t), lo, hi, **opts)[0] / z
    v = integrate.quad(lambda t: (t - m) ** 2 * density(t), lo, hi, **opts)[0] / z
    return m, float(np.sqrt(v))


def test_live_test_uses_the_calibrations_latent_distribution():
    """Issue 18: a blueprint without a prior starts from the calibration's latent
    distribution N(0.2, 0.75^2) (a Rasch calibration's), and the running and final EAP of
    a fixed answer pattern equal exact integration under it to 1e-6; a blueprint prior
    still overrides (and then N(0, 1) gives other numbers)."""
    b = np.linspace(-2.0, 2.0, 30)
    params = ItemParams.from_arrays([f"r{j:02d}" for j in range(30)], "rasch", 1.0, b,
                                    latent_mean=0.2, latent_sd=0.75)
    bank = E.Bank(params)
    items = [3, 17, 9, 25, 12, 5, 21, 14]
    scores = np.array([1, 0, 1, 1, 0, 1, 0, 1])

    def run(bp: E.Blueprint) -> E.TestState:
        state = E.start(bank, bp, seed=7)
        for j, x in zip(items, scores.tolist()):
            state = E.answer(bank, state, j, x)
        return state

    blueprint = E.Blueprint(min_items=1, max_items=20, final_method="eap")
    state = E.start(bank, blueprint, seed=7)
    assert (state.prior_mean, state.prior_sd, state.theta, state.se) == (0.2, 0.75, 0.2, 0.75)
    state = run(blueprint)
    want = _rasch_eap_by_quad(b[items], scores, 0.2, 0.75)
    assert (state.theta, state.se) == pytest.approx(want, abs=1e-6)
    theta, se, _ = E.final_score(bank, blueprint, state)
    assert (theta, se) == pytest.approx(want, abs=1e-6)
    # the stored blueprint form without a prior keeps deferring to the calibration
    again = E.Blueprint.from_dict(json.loads(json.dumps(blueprint.to_dict())))
    assert E.start(bank, again, seed=7).prior_sd == 0.75

    standard = run(E.Blueprint(min_items=1, max_items=20, prior_mean=0.0, prior_sd=1.0))
    old = _rasch_eap_by_quad(b[items], scores, 0.0, 1.0)
    assert (standard.theta, standard.se) == pytest.approx(old, abs=1e-6)
    assert abs(old[0] - want[0]) > 0.02 and abs(old[1] - want[1]) > 0.02
    # a blueprint giving only the SD takes the calibration's mean
    only_sd = E.start(bank, E.Blueprint(prior_sd=0.5), seed=7)
    assert (only_sd.prior_mean, only_sd.prior_sd) == (0.2, 0.5)
