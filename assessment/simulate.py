"""Simulated adaptive tests: examinees of known ability through the live engine.

``simulate(bank, blueprint, true_theta, seed)`` (= :func:`run_simulation`) runs each
examinee through exactly the functions a live test uses
(:func:`assessment.engine.start`, :func:`~assessment.engine.next_item`,
:func:`~assessment.engine.answer`, :func:`~assessment.engine.final_score`), with
answers drawn from the IRT model at the examinee's true θ, and summarises recovery
(bias, RMSE), classification into the proficiency levels of the bank's cut points
(accuracy per true level and overall), test length and item exposure.
:func:`sympson_hetter` derives the
Sympson-Hetter exposure-control parameters for a target maximum exposure rate by
iterating such simulations.

``simulate`` is at the same time the click command (``learningcity simulate``, a
``click.Command`` registered in setup.cfg) that wraps both for PARAMS.csv files: called
with a :class:`~assessment.engine.Bank` as first argument it is the library function,
otherwise the command line.

Overlap rate: the expected proportion of items two random examinees share, computed
exactly from the exposure counts ``c_i`` of ``N`` examinees:
``T = Σ c_i (c_i - 1) / (N (N - 1)) / L̄`` (the expected number of shared items of a
random pair, over the mean test length).  For fixed-length tests this equals the
average over all pairs of (shared items / L) and, for large ``N``, Chen, Ankenmann &
Spray's (2003) ``T = n S_r² / L + L / n`` (``n`` items, ``S_r²`` the variance of the
exposure rates).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from scoring import models as irt
from scoring.io import InputError, read_params, write_table

from . import engine
from .engine import Bank, Blueprint

__all__ = [
    "SimulationResult",
    "SympsonHetterResult",
    "read_domains",
    "read_true_theta",
    "run_simulation",
    "simulate",
    "sympson_hetter",
]

_BLOCK_CELLS = 2_000_000  # examinees per block of true-θ probabilities ~ this / (items x K)


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """Outcome of a simulation.

    Attributes
    ----------
    true_theta, theta, se : (n_examinees,) float
        True ability, final estimate and its standard error.
    n_items : (n_examinees,) int, scored items given (pilot items not counted)
    stop_reason : (n_examinees,) str, as returned by :func:`engine.should_stop`
    items : tuple of tuples of int, each examinee's items (bank indices) in order
    exposure_counts : (n_bank_items,) int, examinees who were given each item
        (bank order, pilot items included)
    selected_counts : (n_bank_items,) int or None
        Examinees for whom each item's Sympson-Hetter lottery was drawn (only with
        ``record_selected=True``).
    operational : (n_bank_items,) bool, items that are not pilot items
    method : str, the final estimation method
    cuts : (n_levels - 1,) float, the bank's proficiency-level cut points (θ)
    """

    true_theta: np.ndarray
    theta: np.ndarray
    se: np.ndarray
    n_items: np.ndarray
    stop_reason: np.ndarray
    items: tuple[tuple[int, ...], ...]
    exposure_counts: np.ndarray
    selected_counts: np.ndarray | None
    operational: np.ndarray
    method: str
    cuts: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_examinees(self) -> int:
        return int(self.true_theta.shape[0])

    @property
    def bias(self) -> float:
        """Mean of (θ̂ - θ) over examinees with a finite estimate."""
        return float(np.nanmean(self.theta - self.true_theta))

    @property
    def rmse(self) -> float:
        """Root mean squared error of θ̂ over examinees with a finite estimate."""
        return float(np.sqrt(np.nanmean((self.theta - self.true_theta) ** 2)))

    @property
    def mean_length(self) -> float:
        """Mean number of scored items."""
        return float(np.mean(self.n_items))

    @property
    def exposure_rates(self) -> np.ndarray:
        """(n_operational,) proportion of examinees given each operational item."""
        return self.exposure_counts[self.operational] / max(1, self.n_examinees)

    @property
    def max_exposure(self) -> float:
        return float(self.exposure_rates.max())

    @property
    def mean_exposure(self) -> float:
        return float(self.exposure_rates.mean())

    @property
    def overlap_rate(self) -> float:
        """Expected proportion of items shared by two random examinees (module docstring)."""
        n = self.n_examinees
        if n < 2 or self.mean_length == 0:
            return math.nan
        c = self.exposure_counts[self.operational].astype(np.float64)
        return float(np.sum(c * (c - 1)) / (n * (n - 1)) / self.mean_length)

    @property
    def n_levels(self) -> int:
        return int(self.cuts.size) + 1

    @property
    def true_level(self) -> np.ndarray:
        """(n_examinees,) int, the level of the true θ (0 = lowest; #cuts <= θ)."""
        return np.searchsorted(self.cuts, self.true_theta, side="right")

    @property
    def level(self) -> np.ndarray:
        """(n_examinees,) int, the level reported at the end (of the final θ̂; -1 if NaN)."""
        level = np.searchsorted(self.cuts, self.theta, side="right")
        return np.where(np.isnan(self.theta), -1, level)

    @property
    def accuracy(self) -> float:
        """Proportion of examinees reported in their true level."""
        return float(np.mean(self.level == self.true_level))

    def level_accuracy(self) -> list[tuple[int, int, float]]:
        """Per true level: (level, examinees in it, proportion reported in it; NaN if none)."""
        true, got = self.true_level, self.level
        out = []
        for k in range(self.n_levels):
            here = true == k
            n = int(np.count_nonzero(here))
            out.append((k, n, float(np.mean(got[here] == k)) if n else math.nan))
        return out

    def summary(self) -> dict[str, float]:
        """The summary figures as a dict (name -> value)."""
        out = {"examinees": float(self.n_examinees), "bias": self.bias, "rmse": self.rmse,
               "mean_length": self.mean_length, "max_exposure": self.max_exposure,
               "mean_exposure": self.mean_exposure, "overlap_rate": self.overlap_rate,
               "accuracy": self.accuracy}
        for k, _n, acc in self.level_accuracy():
            out[f"accuracy_level_{k + 1}"] = acc
        return out


def run_simulation(
    bank: Bank,
    blueprint: Blueprint,
    true_theta: Any,
    seed: int,
    progress: Callable[[int], Any] | None = None,
    *,
    final: bool = True,
    record_selected: bool = False,
) -> SimulationResult:
    """Run simulated examinees through the engine.

    Parameters
    ----------
    bank, blueprint : the bank and policy under study
    true_theta : (n_examinees,) true abilities
    seed : int; the run is reproducible from it (answers and each test's seed)
    progress : called with the number of examinees finished since the last call
        (e.g. ``tqdm.update``)
    final : score each test with :func:`engine.final_score` (computed a block of
        examinees at a time by :func:`engine.final_scores`); else keep the running
        EAP estimate
    record_selected : count the items whose Sympson-Hetter lottery each examinee drew
        (needed by :func:`sympson_hetter`)

    Returns
    -------
    SimulationResult
    """
    thetas = np.asarray(true_theta, dtype=float).ravel()
    if thetas.size == 0 or not np.all(np.isfinite(thetas)):
        raise ValueError("true_theta must be a non-empty array of finite numbers")
    n = thetas.size
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, 2**62, size=n).tolist()
    plan = bank.plan(blueprint)
    ncat = np.asarray(bank.params.n_categories)
    k_max = bank.params.max_categories
    block = max(1, _BLOCK_CELLS // (bank.n_items * k_max))

    est = np.empty(n)
    se = np.empty(n)
    length = np.zeros(n, dtype=np.int64)
    reasons = np.empty(n, dtype=object)
    items: list[tuple[int, ...]] = []
    counts = np.zeros(bank.n_items, dtype=np.int64)
    selected = np.zeros(bank.n_items, dtype=np.int64) if record_selected else None
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        # The answer each examinee of the block would give to each item: one uniform
        # per (examinee, item), category = number of cumulative probabilities <= u.
        cum = np.cumsum(irt.probabilities(bank.params, thetas[lo:hi]), axis=2)
        u = rng.random((hi - lo, bank.n_items))
        answers = np.minimum((cum <= u[:, :, None]).sum(axis=2), ncat[None, :] - 1)
        states = []
        for b in range(hi - lo):
            p = lo + b
            state = engine.start(bank, blueprint, seeds[p])
            considered: list[int] | None = [] if record_selected else None
            row = answers[b]
            while True:
                choice = engine._next(bank, plan, state, considered)  # = next_item
                if choice is None:
                    break
                state = engine.answer(bank, state, choice.index, int(row[choice.index]))
            reasons[p] = engine.should_stop(bank, blueprint, state)[1]
            est[p], se[p] = state.theta, state.se
            length[p] = state.n_scored
            items.append(state.items)
            states.append(state)
            if state.items:
                counts[list(state.items)] += 1
            if selected is not None and considered:
                selected[bank.order[np.unique(considered)]] += 1
            if progress is not None:
                progress(1)
        if final:  # engine.final_score for the whole block in one estimation call
            est[lo:hi], se[lo:hi], _ = engine.final_scores(bank, blueprint, states)
    return SimulationResult(true_theta=thetas, theta=est, se=se, n_items=length,
                            stop_reason=reasons.astype(str), items=tuple(items),
                            exposure_counts=counts,
                            selected_counts=selected, operational=~bank.is_pilot,
                            method=blueprint.final_method if final else "eap",
                            cuts=bank.cuts.copy())


# ----------------------------------------------------------------- Sympson-Hetter


@dataclass(frozen=True, eq=False)
class SympsonHetterResult:
    """Derived Sympson-Hetter parameters.

    Attributes
    ----------
    blueprint : Blueprint
        The input blueprint with ``exposure="sympson-hetter"``, ``max_rate`` and the
        derived ``sh_parameters`` (only items with ``K < 1`` are listed).
    parameters : dict item id -> K (``K < 1`` only)
    max_exposure : tuple of float, the maximum exposure rate reached at each iteration
    converged : bool, whether the last iteration kept every rate <= max_rate or
        the parameters settled (then ``max_exposure[-1]`` says how close it came)
    """

    blueprint: Blueprint
    parameters: dict[str, float]
    max_exposure: tuple[float, ...]
    converged: bool


def sympson_hetter(
    bank: Bank,
    blueprint: Blueprint,
    max_rate: float,
    true_theta: Any = None,
    n_examinees: int = 1000,
    iterations: int = 20,
    seed: int = 0,
    margin: float | None = None,
    progress: Callable[[int], Any] | None = None,
) -> SympsonHetterResult:
    """Derive Sympson-Hetter exposure-control parameters by iterative simulation.

    Sympson & Hetter (1985): start with ``K_i = 1``; simulate; with ``P(S_i)`` the
    proportion of examinees for whom item ``i`` was selected (its lottery drawn) set
    ``K_i = r / P(S_i)`` where ``P(S_i) > r`` and ``K_i = 1`` elsewhere; repeat until
    every administration rate ``P(A_i)`` of the simulation is at most ``max_rate`` or
    the ``K_i`` no longer change (by more than 0.01).

    Two choices make the result hold in new samples:

    * every iteration simulates the same examinees with the same random numbers
      (common random numbers), so successive iterations differ only by the ``K_i``
      and the iteration settles instead of chasing simulation noise;
    * the update aims at ``r = max_rate - margin``, by default one binomial standard
      error ``sqrt(max_rate (1 - max_rate) / n)`` below ``max_rate``: each rate of a
      sample scatters around its expectation by about that much, and the maximum over
      many controlled items picks the high ones, so aiming exactly at ``max_rate``
      would put the observed maximum clearly above it.

    Parameters
    ----------
    bank, blueprint : the blueprint's other settings (length, balance...) are kept
    max_rate : target maximum exposure rate r_max in (0, 1]
    true_theta : (n,) abilities to simulate; default ``n_examinees`` draws from N(0, 1)
    iterations : at most this many simulations
    seed : reproducible from it
    margin : see above; 0 for the textbook procedure
    progress : called with examinees done (over all iterations)

    Returns
    -------
    SympsonHetterResult
        If no iteration met the target, the parameters of the iteration with the
        smallest maximum rate and ``converged=False``.
    """
    if not 0 < max_rate <= 1:
        raise ValueError(f"max_rate must be in (0, 1], got {max_rate}")
    rng = np.random.default_rng(seed)
    thetas = (rng.standard_normal(n_examinees) if true_theta is None
              else np.asarray(true_theta, dtype=float).ravel())
    if margin is None:
        margin = math.sqrt(max_rate * (1.0 - max_rate) / thetas.size)
    aim = max(max_rate - margin, 0.5 * max_rate)
    sim_seed = int(rng.integers(2**62))
    op = ~bank.is_pilot
    ids = bank.item_ids
    k = np.ones(bank.n_items)
    history: list[float] = []
    best: tuple[float, Blueprint, dict[str, float]] | None = None
    for _ in range(max(1, int(iterations))):
        params = {str(ids[j]): float(k[j]) for j in np.flatnonzero(op & (k < 1))}
        bp = blueprint.with_sympson_hetter(params, max_rate)
        res = run_simulation(bank, bp, thetas, seed=sim_seed, progress=progress,
                             final=False, record_selected=True)
        n = res.n_examinees
        p_a = res.exposure_counts / n
        p_s = res.selected_counts / n
        top = float(p_a[op].max())
        history.append(top)
        if best is None or top < best[0]:
            best = (top, bp, params)
        new_k = np.where(p_s > aim, aim / np.maximum(p_s, 1e-300), 1.0)
        if top <= max_rate or np.max(np.abs(new_k - k)[op]) < 0.01:
            return SympsonHetterResult(bp, params, tuple(history), True)
        k = new_k
    assert best is not None
    return SympsonHetterResult(best[1], best[2], tuple(history), False)


# ------------------------------------------------------------------------ files


def _numbers_text(path: str) -> str:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(path, None, None, f"cannot read file ({exc.strerror})") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(path, line, None, "not valid UTF-8; save the file as UTF-8") from exc


def read_true_theta(path: str) -> np.ndarray:
    """True abilities: one number per line, or a CSV file with a ``theta`` column.

    Blank lines are skipped.  Raises :class:`scoring.io.InputError` naming the row
    of a value that is not a finite number.
    """
    text = _numbers_text(path)
    rows = [(n, r) for n, r in enumerate(csv.reader(io.StringIO(text, newline="")), start=1)
            if any(c.strip() for c in r)]
    if not rows:
        raise InputError(path, None, None, "file is empty")
    header = [c.strip().lower() for c in rows[0][1]]
    column, body = 0, rows
    if "theta" in header:
        column, body = header.index("theta"), rows[1:]
    elif len(header) > 1:
        raise InputError(path, rows[0][0], None,
                         "expected one number per line or a CSV file with a 'theta' column")
    values = []
    for line, cells in body:
        cell = cells[column].strip() if column < len(cells) else ""
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise InputError(path, line, "theta" if column or "theta" in header else None,
                             f"{cell!r} is not a finite number")
        values.append(value)
    if not values:
        raise InputError(path, None, None, "no values after the header")
    return np.array(values)


def read_domains(path: str, item_ids: Sequence[str]) -> tuple[dict[str, str], dict[str, float]]:
    """DOMAINS.csv: columns ``item_id,domain`` and optionally ``target``.

    Every bank item needs a row and every row a bank item.  The content-balancing
    target of a domain is its ``target`` cell (proportion; give it on any row of the
    domain, rows that repeat it must agree) or, for domains without one, its share of
    the bank's items.

    Returns
    -------
    (domain of each item id, target proportion of each domain, not yet normalised)
    """
    text = _numbers_text(path)
    rows = [(n, [c.strip() for c in r])
            for n, r in enumerate(csv.reader(io.StringIO(text, newline="")), start=1)
            if any(c.strip() for c in r)]
    if not rows:
        raise InputError(path, None, None, "file is empty")
    header_line, header = rows[0]
    lower = [h.lower() for h in header]
    for column in ("item_id", "domain"):
        if column not in lower:
            raise InputError(path, header_line, column, "required column is missing")
    i_item, i_dom = lower.index("item_id"), lower.index("domain")
    i_target = lower.index("target") if "target" in lower else None
    known = set(item_ids)
    domains: dict[str, str] = {}
    targets: dict[str, float] = {}
    for line, cells in rows[1:]:
        if len(cells) != len(header):
            raise InputError(path, line, None,
                             f"has {len(cells)} cells but the header has {len(header)}")
        item, dom = cells[i_item], cells[i_dom]
        if item not in known:
            raise InputError(path, line, "item_id", f"item {item!r} is not in the params file")
        if item in domains:
            raise InputError(path, line, "item_id", f"duplicate item {item!r}")
        if not dom:
            raise InputError(path, line, "domain", "empty domain")
        domains[item] = dom
        if i_target is not None and cells[i_target]:
            try:
                t = float(cells[i_target])
            except ValueError:
                t = math.nan
            if not (math.isfinite(t) and t >= 0):
                raise InputError(path, line, "target", f"{cells[i_target]!r} is not a "
                                 "proportion >= 0")
            if dom in targets and targets[dom] != t:
                raise InputError(path, line, "target",
                                 f"domain {dom!r} already has target {targets[dom]!r}")
            targets[dom] = t
    missing = [i for i in item_ids if i not in domains]
    if missing:
        shown = ", ".join(repr(i) for i in missing[:5])
        raise InputError(path, None, "item_id", f"no domain for items {shown}"
                         + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    sizes: dict[str, int] = {}
    for d in domains.values():
        sizes[d] = sizes.get(d, 0) + 1
    given = sum(targets.values())
    rest = sum(n for d, n in sizes.items() if d not in targets)
    share_left = max(0.0, 1.0 - given)
    out = {d: targets.get(d, share_left * n / rest if rest else 0.0) for d, n in sizes.items()}
    if sum(out.values()) <= 0:
        raise InputError(path, None, "target", "all domain targets are 0")
    return domains, out


# --------------------------------------------------------------------------- command

#: the SE target of a Blueprint when only classification stops the test: never reached
_NO_SE_TARGET = 1e-9


def _parse_cuts(text: str) -> tuple[float, ...]:
    """--cuts: comma-separated increasing finite θ values (may be empty: one level)."""
    cells = [c.strip() for c in text.split(",") if c.strip()]
    try:
        cuts = tuple(float(c) for c in cells)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of numbers",
                                 param_hint="--cuts") from exc
    if not all(math.isfinite(c) for c in cuts) or any(
            b <= a for a, b in itertools.pairwise(cuts)):
        raise click.BadParameter(f"cut points must be finite and increasing: {text!r}",
                                 param_hint="--cuts")
    return cuts


_existing_file = click.Path(exists=True, dir_okay=False)


class _SimulateCommand(click.Command):
    """The ``simulate`` click command, also callable as the library function.

    ``simulate(bank, blueprint, true_theta, seed, progress=None)`` (first argument a
    :class:`~assessment.engine.Bank`) runs :func:`run_simulation` and returns a
    :class:`SimulationResult`; any other call is the command line
    (``learningcity simulate ...``).
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if (args and isinstance(args[0], Bank)) or "bank" in kwargs:
            return run_simulation(*args, **kwargs)
        return super().__call__(*args, **kwargs)


@click.command("simulate", cls=_SimulateCommand)
@click.option("--params", "params_path", type=_existing_file, required=True,
              help="PARAMS.csv of the item bank (as written by calibrate).")
@click.option("--examinees", type=click.IntRange(min=1), default=None,
              help="Number of simulated examinees, θ drawn from the calibration's latent "
                   "distribution (PARAMS.csv latent_mean, latent_sd; N(0, 1) for files "
                   "without them) (default: as many as --true-theta-file has, else 1000).")
@click.option("--max-items", type=click.IntRange(min=1), required=True,
              help="Maximum number of items per test.")
@click.option("--se", "se_target", type=click.FloatRange(min=0, min_open=True),
              default=None, help="Stop when the SE of θ reaches this (needed unless "
                                 "--stop classification).")
@click.option("--stop", "stop_rule", type=click.Choice(["se", "classification", "both"]),
              default="se", show_default=True,
              help="Stopping rule besides the length bounds: the SE target, classification "
                   "(the (1 - alpha) interval θ̂ ± z SE inside one level of --cuts), or "
                   "whichever comes first.")
@click.option("--alpha", type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
              default=0.1, show_default=True,
              help="Classification stopping: 1 - alpha interval (0.1: 90 %).")
@click.option("--cuts", "cuts_text", default="-1.25,-0.5,0.5,1.25", show_default=True,
              help="Proficiency-level cut points on the θ metric, comma-separated and "
                   "increasing (the default: the default levels 375/450/550/625 on the "
                   "500/100 reporting scale). Accuracy per level is reported for every "
                   "stopping rule.")
@click.option("--kl-items", type=click.IntRange(min=0), default=0, show_default=True,
              help="Choose the first N items by Kullback-Leibler information (Chang & Ying) "
                   "instead of Fisher information; 0 = off, 3-5 is usual.")
@click.option("--kl-c", type=click.FloatRange(min=0, min_open=True), default=3.0,
              show_default=True, help="KL window θ̂ ± c / sqrt(n).")
@click.option("--kl-se", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Also choose by KL information while the SE of θ is above this.")
@click.option("--min-items", type=click.IntRange(min=0), default=None,
              help="Minimum number of items (default: 5, or --max-items if smaller).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Random seed; a run is reproducible from it.")
@click.option("--true-theta-file", type=_existing_file, default=None,
              help="True abilities: one number per line, or a CSV with a 'theta' column.")
@click.option("--exposure", type=click.Choice(engine.EXPOSURE_METHODS), default="none",
              show_default=True, help="Exposure control.")
@click.option("--candidates", type=click.IntRange(min=1), default=5, show_default=True,
              help="Randomesque: choose at random among this many most informative items.")
@click.option("--max-exposure", type=click.FloatRange(min=0, max=1, min_open=True),
              default=0.25, show_default=True,
              help="Sympson-Hetter: target maximum exposure rate (parameters derived by "
                   "iterative simulation first).")
@click.option("--sh-iterations", type=click.IntRange(min=1), default=20, show_default=True,
              help="Sympson-Hetter: at most this many derivation simulations.")
@click.option("--sh-out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Sympson-Hetter: also write the derived parameters (item_id,k).")
@click.option("--domains", "domains_path", type=_existing_file, default=None,
              help="DOMAINS.csv (item_id,domain[,target]) for content balancing.")
@click.option("--final", "final_method", type=click.Choice(engine.FINAL_METHODS),
              default="eap", show_default=True, help="Final scoring method.")
@click.option("--quiet", is_flag=True, help="No progress bar or messages on stderr.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True),
              required=True, help="SIM.csv: examinee,true_theta,theta,se,n_items.")
def simulate(params_path: str, examinees: int | None, max_items: int,
                     se_target: float | None, stop_rule: str, alpha: float, cuts_text: str,
                     kl_items: int, kl_c: float, kl_se: float | None,
                     min_items: int | None, seed: int,
                     true_theta_file: str | None, exposure: str, candidates: int,
                     max_exposure: float, sh_iterations: int, sh_out: str | None,
                     domains_path: str | None, final_method: str, quiet: bool,
                     out_path: str) -> None:
    """Simulate adaptive tests on an item bank and report recovery and exposure.

    Writes one row per examinee to --out (columns examinee,true_theta,theta,se,n_items)
    and prints bias, RMSE, mean test length, maximum and mean item exposure rate, the
    overlap rate, the classification accuracy (true level of θ against the level of
    the final θ̂) overall and per level with its Monte Carlo SE, and why tests
    stopped.  A bad input file stops with a message naming the file and row; nothing
    is written then.
    """
    # here, not at the top: every `learningcity` command imports this module, and tqdm
    # adds about 23 ms to each start-up (python -X importtime, numpy already loaded)
    from tqdm import tqdm

    try:
        params = read_params(params_path)
        domains, targets = (None, {})
        if domains_path is not None:
            domains, targets = read_domains(domains_path, params.item_ids.tolist())
        if true_theta_file is not None:
            thetas = read_true_theta(true_theta_file)
            if examinees is not None and examinees != thetas.size:
                raise click.BadParameter(
                    f"{true_theta_file} has {thetas.size} values, not {examinees}",
                    param_hint="--examinees")
        else:
            # the population the bank was calibrated on (a Rasch bank's SD is estimated)
            thetas = params.latent_mean + params.latent_sd * np.random.default_rng(
                seed).standard_normal(examinees or 1000)
    except InputError as exc:
        raise click.ClickException(str(exc)) from exc
    cuts = _parse_cuts(cuts_text)
    if se_target is None:
        if stop_rule != "classification":
            raise click.UsageError("--se is needed unless --stop classification")
        se_target = _NO_SE_TARGET
    elif stop_rule == "classification":
        raise click.BadParameter("--stop classification has no SE rule; use --stop both",
                                 param_hint="--se")
    if min_items is None:
        min_items = min(5, max_items)
    if min_items > max_items:
        raise click.BadParameter(f"{min_items} is more than --max-items {max_items}",
                                 param_hint="--min-items")
    blueprint = Blueprint(min_items=min_items, max_items=max_items, se_target=se_target,
                          final_method=final_method, content_balance=targets,
                          exposure="none" if exposure == "sympson-hetter" else exposure,
                          candidates=candidates, max_rate=max_exposure,
                          kl_items=kl_items, kl_c=kl_c, kl_se=kl_se,
                          classification_alpha=None if stop_rule == "se" else alpha)
    bank = Bank(params, domains=domains, blueprint=blueprint, cuts=cuts)

    def bar(total: int, desc: str) -> Any:
        return tqdm(total=total, desc=desc, unit="examinee", file=sys.stderr,
                    disable=quiet, leave=False)

    if exposure == "sympson-hetter":
        with bar(thetas.size * sh_iterations, "Sympson-Hetter") as progress:
            sh = sympson_hetter(bank, blueprint, max_exposure, true_theta=thetas,
                                iterations=sh_iterations, seed=seed + 1,
                                progress=progress.update)
        blueprint = sh.blueprint
        if not quiet:
            click.echo(f"Sympson-Hetter parameters for a maximum exposure of {max_exposure:g}: "
                       f"{len(sh.parameters)} items with K < 1 after {len(sh.max_exposure)} "
                       f"simulations (maximum exposure in the last one "
                       f"{sh.max_exposure[-1]:.3f}"
                       + ("" if sh.converged else "; NOT settled, try more --sh-iterations")
                       + ")", err=True)
    with bar(thetas.size, "simulate") as progress:
        result = run_simulation(bank, blueprint, thetas, seed=seed, progress=progress.update)
    rows = [[p + 1, float(result.true_theta[p]), float(result.theta[p]), float(result.se[p]),
             int(result.n_items[p])] for p in range(result.n_examinees)]
    if exposure == "sympson-hetter" and sh_out is not None:
        k = dict(blueprint.sh_parameters)
        write_table(sh_out, ["item_id", "k"],
                    [[i, k.get(i, 1.0)] for i, op in zip(bank.item_ids.tolist(),
                                                         result.operational) if op])
    write_table(out_path, ["examinee", "true_theta", "theta", "se", "n_items"], rows)
    s = result.summary()
    click.echo(f"examinees      {result.n_examinees}")
    click.echo(f"bias           {s['bias']:.4f}")
    click.echo(f"RMSE           {s['rmse']:.4f}")
    click.echo(f"mean length    {s['mean_length']:.2f}")
    click.echo(f"max exposure   {s['max_exposure']:.4f}")
    click.echo(f"mean exposure  {s['mean_exposure']:.4f}")
    click.echo(f"overlap rate   {s['overlap_rate']:.4f}")
    n = result.n_examinees
    acc = result.accuracy
    click.echo(f"accuracy       {acc:.4f} (MC SE {math.sqrt(acc * (1 - acc) / n):.4f}; "
               f"{result.n_levels} levels, cuts {', '.join(f'{c:g}' for c in cuts)}"
               + (f"; nominal {1 - alpha:.2f}" if stop_rule != "se" else "") + ")")
    bounds = [-math.inf, *cuts, math.inf]
    for k, count, level_acc in result.level_accuracy():
        where = (f"θ < {bounds[1]:g}" if k == 0 else f"θ >= {bounds[k]:g}" if k == len(cuts)
                 else f"{bounds[k]:g} <= θ < {bounds[k + 1]:g}")
        shown = "-" if count == 0 else f"{level_acc:.4f}"
        click.echo(f"  level {k + 1:<7d}{shown:<8s}({count} examinees, {where})")
    reasons, counts = np.unique(result.stop_reason, return_counts=True)
    click.echo("stopped        " + ", ".join(f"{r} {c}" for r, c in zip(reasons, counts)))


if __name__ == "__main__":  # python -m assessment.simulate ...
    simulate.main(prog_name="simulate")
