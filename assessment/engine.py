"""The adaptive-testing (CAT) engine: pure logic over :mod:`scoring`.

No database, no web.  The roles of a CAT (after catsim's Initializer / Selector /
Estimator / Stopper) are plain functions over three objects:

* :class:`Blueprint`: the test policy (length, precision, start, final scoring,
  content balance, exposure control, enemies, pilot items), stored as JSON.
* :class:`Bank`: everything that depends only on the item parameters, computed once:
  the item information on a θ grid, log-probabilities on the EAP quadrature grid,
  domain segments, enemy lists.
* :class:`TestState`: one examinee's test so far, immutable, with a small JSON form
  (:meth:`TestState.to_dict`) that the web layer stores between requests.

The functions::

    start(bank, blueprint, seed, prior=None) -> TestState           # Initializer
    next_item(bank, blueprint, state) -> ItemChoice | None            # Selector (None = stop)
                                   # (KL information for the first items, then Fisher)
    answer(bank, state, item_index, score) -> TestState               # Estimator (EAP, O(n_quad))
    should_stop(bank, blueprint, state) -> (bool, reason)             # Stopper (SE, length,
                                   # classification into a proficiency level, information)
    final_score(bank, blueprint, state) -> (theta, se, method)        # final estimate
    replay(bank, blueprint, seed, item_ids, scores, prior=None) -> TestState

Speed.  A step (``next_item`` + ``answer``) does no Python loop over items and no
sort at run time.  At build time the bank ranks the items by information at each
point of a θ grid (once over the pool, once within each domain); selection reads
the row of the grid point nearest to θ̂ and skips the unavailable items, which are
at most the ``n_blocked`` items already given (or excluded by enemies), so it looks
at ``n_blocked + 1`` entries whatever the bank size (``n_blocked + k`` for
randomesque).  The EAP update adds one precomputed log-probability row to the
log-posterior on the quadrature grid and renormalises, O(n_quad).  Items are stored
internally grouped by domain, so a domain is a contiguous slice.

Randomness.  Nothing random is stored: every random decision is a hash of
``(seed, what, position)`` (randomesque pick, pilot pick, tie-break between domains)
or of ``(seed, item id)`` (Sympson-Hetter lottery).  So the same seed, blueprint,
bank and answers always give the same next item: after a JSON round trip, after
:func:`replay`, in another worker process, with another numpy version.

Sympson-Hetter.  Each examinee draws one uniform ``u_i`` per item (a hash of the seed
and the item id); item ``i`` may be administered to that examinee only if
``u_i <= K_i``.  When the most informative item fails its lottery the next one is
tried.  This is distributionally the classic procedure (an item's lottery is drawn
the first time it is selected, and a rejected item is out for the rest of that test)
but needs no stored state.  :func:`assessment.simulate.sympson_hetter` derives the
``K_i`` for a target maximum exposure rate by iterative simulation.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any, NamedTuple

import numpy as np

from scoring import estimation
from scoring import models as irt
from scoring.params import ItemParams

__all__ = [
    "EXPOSURE_METHODS",
    "FINAL_METHODS",
    "STOP_REASONS",
    "Bank",
    "Blueprint",
    "ItemChoice",
    "TestState",
    "answer",
    "domain_counts",
    "final_score",
    "final_scores",
    "next_item",
    "replay",
    "should_stop",
    "start",
    "theta_cuts",
]

EXPOSURE_METHODS = ("none", "randomesque", "sympson-hetter")
FINAL_METHODS = ("eap", "map", "mle", "wle")
#: Reasons returned by :func:`should_stop` (in the order they are checked).
STOP_REASONS = ("max_items", "no_items", "se_target", "classified", "min_info_gain")

STATE_VERSION = 1
_LOG_FLOOR = -1e6  # as scoring.models: a log-probability is never below this
_M64 = (1 << 64) - 1
# Stream constants separating the random decisions made from one seed.
_STREAM_RANDOMESQUE = 0x52414E44
_STREAM_PILOT = 0x50494C54
_STREAM_TIE = 0x54494542
_STREAM_SH = 0x53594D48
_SH_CHUNK = 8  # candidates examined per round of Sympson-Hetter lotteries


# ----------------------------------------------------------------------- hashing RNG


def _splitmix(x: int) -> int:
    """One SplitMix64 step on a Python int (64-bit, wraps)."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _hash(*keys: int) -> int:
    """64-bit hash of a sequence of non-negative ints."""
    h = 0
    for k in keys:
        h = _splitmix(h ^ (int(k) & _M64))
    return h


def _uniform(*keys: int) -> float:
    """A uniform number in [0, 1) determined by ``keys``."""
    return (_hash(*keys) >> 11) * (1.0 / 9007199254740992.0)


def _item_uniform(key: int, item_hash: int) -> float:
    """The Sympson-Hetter uniform of one item for one examinee (``key`` from the seed)."""
    return (_splitmix(key ^ item_hash) >> 11) * (1.0 / 9007199254740992.0)


def _id_hash(item_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(item_id.encode("utf-8"), digest_size=8).digest(),
                          "little")


# ----------------------------------------------------------------------- blueprint


def _pairs(value: Any, name: str) -> tuple[tuple[str, float], ...]:
    """A mapping (or sequence of pairs) as a tuple of (str, float) sorted by key."""
    if value is None:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    try:
        out = {str(k): float(v) for k, v in items}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must map names to numbers") from exc
    return tuple(sorted(out.items()))


def _groups(value: Any) -> tuple[tuple[str, float, float], ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        out = []
        for name, spec in value.items():
            if isinstance(spec, Mapping):
                mean, sd = spec.get("mean", 0.0), spec.get("sd", 1.0)
            else:
                mean, sd = spec
            out.append((str(name), float(mean), float(sd)))
    else:
        out = [(str(n), float(m), float(s)) for n, m, s in value]
    return tuple(sorted(out))


def _whole(value: Any, name: str) -> int:
    """A whole number (bools and fractions refused), naming the field."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a whole number, got {value!r}") from exc


def _number(value: Any, name: str) -> float:
    """A float, naming the field when it is not a number."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc


@dataclass(frozen=True)
class Blueprint:
    """The adaptive-test policy of an instrument.

    Mappings may be passed as dicts; they are stored as sorted tuples so that a
    blueprint is immutable, hashable and compares by value.

    Attributes
    ----------
    min_items, max_items : int
        Bounds on the number of *scored* items (pilot items come on top).
    se_target : float
        Stop once the posterior SD of θ is at or below this (after ``min_items``).
    min_info_gain : float or None
        Stop (after ``min_items``) when no available item has more information than
        this at θ̂.
    prior_mean, prior_sd : float or None
        Normal prior of θ (start value and EAP prior).  None (the default): the latent
        distribution of the bank's calibration (``params.latent_mean``/``latent_sd``,
        estimated by Rasch/PCM calibrations), set when a test starts (:func:`start`).
    group_priors : tuple of (group, mean, sd)
        Priors by group name, chosen with ``start(..., prior="group")``.
    final_method : str
        One of ``FINAL_METHODS``; :func:`final_score` uses it on the scored answers.
    content_balance : tuple of (domain, target proportion)
        Kingsbury-Zara content balancing; targets are normalised to sum to 1.
        Empty = no balancing.  Domains the bank lacks are ignored.
    exposure : str
        ``"none"``, ``"randomesque"`` (random among the ``candidates`` most
        informative) or ``"sympson-hetter"`` (per-item parameters ``sh_parameters``).
    candidates : int
        Randomesque group size.
    max_rate : float or None
        The target maximum exposure rate ``r_max`` (used to derive Sympson-Hetter
        parameters; informational otherwise).
    sh_parameters : tuple of (item id, K)
        Sympson-Hetter exposure-control parameters, ``K`` in [0, 1]; unlisted items
        have ``K = 1``.
    enemies : tuple of tuples of item ids
        Groups of items of which at most one may appear in a test.
    pilot_positions : tuple of int
        1-based positions at which an unscored pilot item is inserted.
    pilot_items : tuple of str
        If not empty, pilot items are drawn from these only (they must be pilot
        items of the bank); otherwise from all pilot items of the bank.
    kl_items : int
        The first ``kl_items`` scored items are chosen by Chang & Ying's (1996)
        Kullback-Leibler information integrated over θ̂ ± δ, δ = ``kl_c`` / sqrt(n)
        (n = scored items so far, at least 1), the later ones by Fisher information.
        0 (the default) = Fisher information throughout; 3-5 is usual.
    kl_c : float
        The constant ``c`` of the KL window (> 0; 3 by default, Chang & Ying's choice).
    kl_se : float or None
        Also choose by KL information while the posterior SD is above this (after the
        first ``kl_items``); None = by count only.
    classification_alpha : float or None
        Classification stopping: stop (after ``min_items``) once the (1 - α) interval
        θ̂ ± z_{1-α/2} SE (EAP and posterior SD) lies inside one proficiency level
        (the bank's ``cuts``), reason ``"classified"``.  None = off.
    """

    min_items: int = 5
    max_items: int = 30
    se_target: float = 0.3
    min_info_gain: float | None = None
    prior_mean: float | None = None
    prior_sd: float | None = None
    group_priors: tuple[tuple[str, float, float], ...] = ()
    final_method: str = "eap"
    content_balance: tuple[tuple[str, float], ...] = ()
    exposure: str = "none"
    candidates: int = 5
    max_rate: float | None = None
    sh_parameters: tuple[tuple[str, float], ...] = ()
    enemies: tuple[tuple[str, ...], ...] = ()
    pilot_positions: tuple[int, ...] = ()
    pilot_items: tuple[str, ...] = ()
    kl_items: int = 0
    kl_c: float = 3.0
    kl_se: float | None = None
    classification_alpha: float | None = None

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("min_items", int(self.min_items))
        put("max_items", int(self.max_items))
        put("se_target", float(self.se_target))
        if self.prior_mean is not None:
            put("prior_mean", float(self.prior_mean))
        if self.prior_sd is not None:
            put("prior_sd", float(self.prior_sd))
        put("candidates", int(self.candidates))
        put("kl_items", _whole(self.kl_items, "kl.items"))
        put("kl_c", _number(self.kl_c, "kl.c"))
        if self.kl_se is not None:
            put("kl_se", _number(self.kl_se, "kl.se"))
        if self.classification_alpha is not None:
            put("classification_alpha", _number(self.classification_alpha,
                                                "classification.alpha"))
        if self.min_info_gain is not None:
            put("min_info_gain", float(self.min_info_gain))
        if self.max_rate is not None:
            put("max_rate", float(self.max_rate))
        put("final_method", str(self.final_method).lower())
        put("exposure", str(self.exposure).lower())
        put("group_priors", _groups(self.group_priors))
        balance = _pairs(self.content_balance, "content_balance")
        put("sh_parameters", _pairs(self.sh_parameters, "sh_parameters"))
        put("enemies", tuple(tuple(str(i) for i in group) for group in self.enemies))
        put("pilot_positions", tuple(sorted({int(p) for p in self.pilot_positions})))
        put("pilot_items", tuple(str(i) for i in self.pilot_items))

        if self.max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {self.max_items}")
        if not 0 <= self.min_items <= self.max_items:
            raise ValueError(f"min_items must be in 0..max_items ({self.max_items}), "
                             f"got {self.min_items}")
        if not (math.isfinite(self.se_target) and self.se_target > 0):
            raise ValueError(f"se_target must be > 0, got {self.se_target}")
        if self.min_info_gain is not None and not self.min_info_gain >= 0:
            raise ValueError(f"min_info_gain must be >= 0, got {self.min_info_gain}")
        if not ((self.prior_mean is None or math.isfinite(self.prior_mean))
                and (self.prior_sd is None or (math.isfinite(self.prior_sd)
                                               and self.prior_sd > 0))):
            raise ValueError("the prior needs a finite mean and an SD > 0")
        for name, mean, sd in self.group_priors:
            if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0):
                raise ValueError(f"group prior {name!r} needs a finite mean and an SD > 0")
        if self.final_method not in FINAL_METHODS:
            raise ValueError(f"final_method must be one of {FINAL_METHODS}, "
                             f"got {self.final_method!r}")
        if self.exposure not in EXPOSURE_METHODS:
            raise ValueError(f"exposure method must be one of {EXPOSURE_METHODS}, "
                             f"got {self.exposure!r}")
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")
        if self.max_rate is not None and not 0 < self.max_rate <= 1:
            raise ValueError(f"max_rate must be in (0, 1], got {self.max_rate}")
        if any(not (math.isfinite(t) and t >= 0) for _, t in balance):
            raise ValueError("content_balance targets must be >= 0")
        total = sum(t for _, t in balance)
        if balance and total <= 0:
            raise ValueError("content_balance targets must not all be 0")
        if abs(total - 1.0) > 1e-12:  # normalise (once: a stored blueprint round-trips)
            balance = tuple((d, t / total) for d, t in balance)
        put("content_balance", balance)
        bad = [i for i, k in self.sh_parameters if not 0 <= k <= 1]
        if bad:
            raise ValueError(f"Sympson-Hetter parameters must be in [0, 1] (items {bad[:5]})")
        if any(p < 1 for p in self.pilot_positions):
            raise ValueError("pilot_positions are 1-based positions (>= 1)")
        if self.kl_items < 0:
            raise ValueError(f"kl.items must be >= 0 (0 = no KL selection), got {self.kl_items}")
        if not (math.isfinite(self.kl_c) and self.kl_c > 0):
            raise ValueError(f"kl.c must be a number > 0, got {self.kl_c}")
        if self.kl_se is not None and not (math.isfinite(self.kl_se) and self.kl_se > 0):
            raise ValueError(f"kl.se must be a number > 0, got {self.kl_se}")
        alpha = self.classification_alpha
        if alpha is not None and not 0 < alpha < 1:
            raise ValueError(f"classification.alpha must be in (0, 1), got {alpha}")

    # -------------------------------------------------------------- JSON form
    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; :meth:`from_dict` reads it back to an equal blueprint."""
        exposure: dict[str, Any] = {"method": self.exposure, "candidates": self.candidates}
        if self.max_rate is not None:
            exposure["max_rate"] = self.max_rate
        if self.sh_parameters:
            exposure["parameters"] = dict(self.sh_parameters)
        return {
            "min_items": self.min_items,
            "max_items": self.max_items,
            "se_target": self.se_target,
            "min_info_gain": self.min_info_gain,
            "start": {"mean": self.prior_mean, "sd": self.prior_sd,
                      "groups": {n: {"mean": m, "sd": s} for n, m, s in self.group_priors}},
            "final_method": self.final_method,
            "content_balance": dict(self.content_balance),
            "exposure": exposure,
            "enemies": [list(g) for g in self.enemies],
            "pilot_positions": list(self.pilot_positions),
            "pilot_items": list(self.pilot_items),
            "kl": {"items": self.kl_items, "c": self.kl_c, "se": self.kl_se},
            "classification": (None if self.classification_alpha is None
                               else {"alpha": self.classification_alpha}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Blueprint:
        """Blueprint from its JSON form; missing keys take the defaults.

        Keys this engine does not use (e.g. ``background`` of the web layer) are
        ignored.  ``exposure`` may be a method name or a dict with ``method``,
        ``candidates``, ``max_rate`` and ``parameters`` (item id -> K).  ``start``
        holds ``mean``, ``sd`` and ``groups`` (name -> {mean, sd}).  ``kl`` is an
        object with ``items`` (KL selection for that many first items), ``c`` and
        ``se`` (KL also while the SE is above it), or just the number of items.
        ``classification`` is an object with ``alpha`` (classification stopping at
        the (1 - alpha) interval), or null.

        Raises
        ------
        ValueError
            On a value out of range (naming the field).
        """
        data = dict(data or {})
        kwargs: dict[str, Any] = {}
        for key in ("min_items", "max_items", "se_target", "min_info_gain", "final_method",
                    "content_balance", "enemies", "pilot_positions", "pilot_items"):
            if data.get(key) is not None:
                kwargs[key] = data[key]
        start = data.get("start") or {}
        if not isinstance(start, Mapping):
            # ValueError, not TypeError: a bad stored blueprint is bad input, like a bad value
            msg = "blueprint 'start' must be an object with mean, sd, groups"
            raise ValueError(msg)
        if start.get("mean") is not None:
            kwargs["prior_mean"] = start["mean"]
        if start.get("sd") is not None:
            kwargs["prior_sd"] = start["sd"]
        if start.get("groups"):
            kwargs["group_priors"] = start["groups"]
        exposure = data.get("exposure")
        if isinstance(exposure, str):
            kwargs["exposure"] = exposure
        elif isinstance(exposure, Mapping):
            if exposure.get("method") is not None:
                kwargs["exposure"] = exposure["method"]
            if exposure.get("candidates") is not None:
                kwargs["candidates"] = exposure["candidates"]
            if exposure.get("max_rate") is not None:
                kwargs["max_rate"] = exposure["max_rate"]
            if exposure.get("parameters"):
                kwargs["sh_parameters"] = exposure["parameters"]
        elif exposure is not None:
            raise ValueError("blueprint 'exposure' must be a method name or an object")
        kl = data.get("kl")
        if isinstance(kl, Mapping):
            unknown = sorted(set(kl) - {"items", "c", "se"})
            if unknown:
                raise ValueError(f"blueprint 'kl' has unknown keys {unknown} (items, c, se)")
            if kl.get("items") is not None:
                kwargs["kl_items"] = kl["items"]
            if kl.get("c") is not None:
                kwargs["kl_c"] = kl["c"]
            if kl.get("se") is not None:
                kwargs["kl_se"] = kl["se"]
        elif kl is not None:
            if isinstance(kl, bool) or not isinstance(kl, int):
                raise ValueError("blueprint 'kl' must be an object {items, c} or a number "
                                 "of items")
            kwargs["kl_items"] = kl
        classification = data.get("classification")
        if isinstance(classification, Mapping):
            unknown = sorted(set(classification) - {"alpha"})
            if unknown:
                raise ValueError(f"blueprint 'classification' has unknown keys {unknown} "
                                 "(alpha)")
            if classification.get("alpha") is None:
                raise ValueError("blueprint 'classification' needs 'alpha', e.g. 0.1")
            kwargs["classification_alpha"] = classification["alpha"]
        elif classification is not None:
            raise ValueError("blueprint 'classification' must be an object {alpha} or null")
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ValueError(f"bad blueprint: {exc}") from exc

    def with_sympson_hetter(self, parameters: Mapping[str, float],
                            max_rate: float | None = None) -> Blueprint:
        """Copy using Sympson-Hetter exposure control with the given ``K_i``."""
        return replace(self, exposure="sympson-hetter", sh_parameters=dict(parameters),
                       max_rate=self.max_rate if max_rate is None else max_rate)

    def prior_for(self, group: str | None) -> tuple[float | None, float | None]:
        """(mean, sd) of a group's prior; the general prior for None or an unknown group
        (None where it is the calibration's, see :func:`start`)."""
        for name, mean, sd in self.group_priors:
            if name == group:
                return mean, sd
        return self.prior_mean, self.prior_sd


# ---------------------------------------------------------------------------- bank


@dataclass(eq=False)
class _Plan:
    """What a blueprint means for one bank (internal item order)."""

    blueprint: Blueprint
    targets: np.ndarray  # (n_domains,) target proportion per bank domain, 0 if unlisted
    balanced: np.ndarray  # (n_listed,) int domain indices with target > 0
    sh_k: list[float]  # (n_operational,) K_i, internal order
    enemy_of: dict[int, np.ndarray]  # internal index -> internal indices it excludes
    pilot_pool: np.ndarray  # (n_items - n_operational,) bool, allowed pilot items
    pilot_positions: frozenset[int]
    z: float | None = None  # classification stopping: z_{1-α/2}, None = off
    target_list: list[float] = field(default_factory=list)  # targets, as a list
    balanced_list: list[int] = field(default_factory=list)  # balanced, as a list


class Bank:
    """An item bank prepared for adaptive testing (built once, read-only after).

    Parameters
    ----------
    params : ItemParams
        All items, operational and pilot (pilot items may carry placeholder
        parameters: they are never used for selection or scoring).
    domains : (n_items,) sequence of str, or mapping item id -> domain, or None
        Content domain of each item (None: one domain for all).
    enemies : iterable of iterables of item ids, optional
        Enemy groups: at most one item of a group per test.  Unknown ids raise.
    pilot : iterable of item ids, optional
        Pilot (unscored) items; together with ``blueprint.pilot_items`` if given.
    blueprint : Blueprint, optional
        Prepared in advance (see :meth:`plan`); its ``pilot_items`` found in
        ``params`` become pilot items of the bank.  (Its enemies, like everything
        else in a blueprint, apply through :meth:`plan`, whichever blueprint is used.)
    grid : (lower, upper, n_points)
        Equally spaced θ grid of the information matrix (selection uses the
        nearest grid point to θ̂; spacing 0.05 by default).
    n_quad, quad_bounds :
        EAP quadrature grid, equal to :func:`scoring.estimation.eap`'s defaults.
    cuts : (n_levels - 1,) increasing θ values, optional
        The proficiency-level cut points on the θ metric of ``params`` (from the
        calibration's levels: :func:`theta_cuts`).  θ is in level
        ``k = #{cuts <= θ}`` (0 = lowest), as :func:`itembank.scale.level_for` counts
        minimums reached.  Used by classification stopping.

    Attributes
    ----------
    params : ItemParams
    item_ids : (n_items,) str, in the order of ``params`` ("external" indices)
    domains : (n_items,) str
    is_pilot : (n_items,) bool
    n_items, n_operational : int
    domain_names : tuple of str, the operational items' domains, sorted
    theta_grid : (n_grid,) float
    info : (n_grid, n_operational) float, item information, internal order
    nodes : (n_quad,) float, EAP quadrature nodes
    log_p : (n_operational, max_categories, n_quad) float, log P(X = k | node), internal order
    order : (n_items,) int, internal -> external index (operational items grouped by
        domain, then pilot items)
    rank : (n_items,) int, external -> internal index
    cuts : (n_levels - 1,) float

    Notes
    -----
    Selection also uses, built on first need, the items of each grid row ranked by
    decreasing information (``(n_grid, n_operational)`` int32, once over the whole
    operational pool and once within each domain).  Taking the best available item
    then reads only the first ``n_blocked + 1`` entries of one row: the cost of a
    step does not grow with the bank.  Memory: about 13 MB per 10,000 items for
    ``info`` plus 6.4 MB per ranking.

    KL selection (blueprints with ``kl_items > 0``) uses the cumulative sums over the
    selection grid of the log-probabilities on it (``(n_grid + 1, n_operational,
    max_categories)``, built on first need: 26 MB per 10,000 dichotomous items), so the
    integral over a window is two rows apart, and ranks the items by KL information for each
    (grid point, window width) on first need, a row at a time (:meth:`kl_ranking`).
    """

    def __init__(
        self,
        params: ItemParams,
        domains: Sequence[str] | Mapping[str, str] | None = None,
        enemies: Iterable[Iterable[str]] | None = None,
        pilot: Iterable[str] | None = None,
        blueprint: Blueprint | None = None,
        grid: tuple[float, float, int] = (-4.0, 4.0, 161),
        n_quad: int = 61,
        quad_bounds: tuple[float, float] = (-6.0, 6.0),
        cuts: Sequence[float] | None = None,
    ) -> None:
        if not isinstance(params, ItemParams):
            raise TypeError("params must be a scoring.params.ItemParams")
        n = params.n_items
        if n == 0:
            raise ValueError("the item bank is empty")
        self.params = params
        self.item_ids = np.asarray(params.item_ids).astype(str)
        self.n_items = n
        self.index_of: dict[str, int] = {s: j for j, s in enumerate(self.item_ids.tolist())}

        # domains (external order)
        if domains is None:
            dom = np.full(n, "", dtype=object)
        elif isinstance(domains, Mapping):
            missing = [i for i in self.item_ids.tolist() if i not in domains]
            if missing:
                raise ValueError(f"no domain for items {missing[:5]}")
            dom = np.array([str(domains[i]) for i in self.item_ids.tolist()], dtype=object)
        else:
            dom = np.array([str(d) for d in domains], dtype=object)
            if dom.shape != (n,):
                raise ValueError(f"domains must have one entry per item ({n}), got {dom.shape}")
        self.domains = dom.astype(str)

        # pilot items
        pilot_ids = {str(p) for p in (pilot or ())}
        if blueprint is not None:
            pilot_ids |= {p for p in blueprint.pilot_items if p in self.index_of}
        unknown = sorted(pilot_ids - set(self.index_of))
        if unknown:
            raise ValueError(f"unknown pilot items {unknown[:5]}")
        is_pilot = np.zeros(n, dtype=bool)
        is_pilot[[self.index_of[p] for p in pilot_ids]] = True
        self.is_pilot = is_pilot
        op = np.flatnonzero(~is_pilot)
        if op.size == 0:
            raise ValueError("the bank has no operational (non-pilot) items")
        self.n_operational = n_op = int(op.size)

        # internal order: operational items grouped by domain (stable), then pilot items
        names = sorted(set(self.domains[op].tolist()))
        self.domain_names: tuple[str, ...] = tuple(names)
        dom_index = {d: k for k, d in enumerate(names)}
        op_dom = np.array([dom_index[d] for d in self.domains[op].tolist()], dtype=np.int64)
        op_sorted = op[np.argsort(op_dom, kind="stable")]
        self.order = np.concatenate([op_sorted, np.flatnonzero(is_pilot)]).astype(np.int64)
        self.rank = np.empty(n, dtype=np.int64)
        self.rank[self.order] = np.arange(n)
        counts = np.bincount(op_dom, minlength=len(names))
        bounds = np.concatenate([[0], np.cumsum(counts)])
        self.domain_slices: tuple[tuple[int, int], ...] = tuple(
            (int(bounds[k]), int(bounds[k + 1])) for k in range(len(names)))
        self._dom_of = np.full(n, -1, dtype=np.int64)  # internal -> domain index
        self._dom_of[:n_op] = np.sort(op_dom, kind="stable")
        self._ids_int = self.item_ids[self.order]
        self._ids_list: list[str] = self.item_ids.tolist()
        self._rank_list: list[int] = self.rank.tolist()
        self._ncat_list: list[int] = np.asarray(params.n_categories)[self.order].tolist()
        self._id_hash: list[int] = [_id_hash(s) for s in self._ids_int.tolist()]

        # information on the selection grid, log-probabilities on the quadrature grid
        lo, hi, n_grid = float(grid[0]), float(grid[1]), int(grid[2])
        if not (lo < hi and n_grid >= 2):
            raise ValueError(f"grid must be (lower, upper, n >= 2) with lower < upper: {grid}")
        self.theta_grid = np.linspace(lo, hi, n_grid)
        self._grid_lo, self._grid_step, self._grid_last = lo, (hi - lo) / (n_grid - 1), n_grid - 1
        op_params = params.subset(op_sorted)
        self.info = np.ascontiguousarray(irt.item_information(op_params, self.theta_grid))
        self.nodes = np.linspace(float(quad_bounds[0]), float(quad_bounds[1]), int(n_quad))
        log_p = irt.log_probabilities(op_params, self.nodes)  # (n_quad, n_op, K)
        self.log_p = np.ascontiguousarray(np.maximum(log_p, _LOG_FLOOR).transpose(1, 2, 0))
        self._moments = np.vstack([np.ones_like(self.nodes), self.nodes, self.nodes**2])

        # enemy groups (internal indices)
        self._enemy_groups: list[np.ndarray] = []
        for group in enemies or ():
            ids = [str(i) for i in group]
            unknown = [i for i in ids if i not in self.index_of]
            if unknown:
                raise ValueError(f"unknown items in enemy group {ids}: {unknown}")
            self._enemy_groups.append(self.rank[[self.index_of[i] for i in ids]])

        # proficiency-level cut points (θ metric)
        cut = np.asarray([] if cuts is None else cuts, dtype=float).ravel()
        if not np.all(np.isfinite(cut)) or np.any(np.diff(cut) <= 0):
            raise ValueError(f"cuts must be finite and strictly increasing, got {cut.tolist()}")
        self.cuts = cut
        self._cuts_list: list[float] = cut.tolist()

        self._ranked: dict[bool, np.ndarray] = {}
        self._op_params = op_params
        self._grid_cum_log_p: np.ndarray | None = None
        self._kl_rows: dict[tuple[bool, int, int], np.ndarray] = {}
        self._plans: dict[Blueprint, _Plan] = {}
        self._last_plan: _Plan | None = None
        if blueprint is not None:
            self.plan(blueprint)

    def __repr__(self) -> str:
        return (f"Bank(n_items={self.n_items}, n_operational={self.n_operational}, "
                f"domains={list(self.domain_names)})")

    # ------------------------------------------------------------------ helpers
    def index(self, item_id: str) -> int:
        """External index of an item id (KeyError if unknown)."""
        return self.index_of[str(item_id)]

    def grid_index(self, theta: float) -> int:
        """Index of the grid point nearest to ``theta`` (clamped to the grid)."""
        g = int((theta - self._grid_lo) / self._grid_step + 0.5)
        return min(max(g, 0), self._grid_last)

    def ranking(self, by_domain: bool) -> np.ndarray:
        """Items ranked by decreasing information at each grid point (built once).

        Returns
        -------
        (n_grid, n_operational) int32 of internal indices.  ``by_domain=False``: each
        row ranks the whole operational pool; ``True``: the slice of each domain
        (see ``domain_slices``) ranks that domain's items.  Ties keep the lower index
        first, as ``np.argmax`` does.
        """
        by_domain = bool(by_domain) and len(self.domain_slices) > 1
        ranked = self._ranked.get(by_domain)
        if ranked is None:
            if by_domain:
                ranked = np.empty(self.info.shape, dtype=np.int32)
                for lo, hi in self.domain_slices:
                    ranked[:, lo:hi] = lo + np.argsort(-self.info[:, lo:hi], axis=1,
                                                       kind="stable")
            else:
                ranked = np.argsort(-self.info, axis=1, kind="stable").astype(np.int32)
            self._ranked[by_domain] = ranked
        return ranked

    def level_index(self, theta: float) -> int:
        """Proficiency level of ``theta``: the number of cut points at or below it."""
        return bisect.bisect_right(self._cuts_list, theta)

    def kl_half_width(self, c: float, n: int) -> int:
        """Grid steps in δ = c / sqrt(max(n, 1)), the half-width of the KL window."""
        return max(1, int(c / math.sqrt(max(n, 1)) / self._grid_step + 0.5))

    def kl_information(self, g: int, m: int) -> np.ndarray:
        """Chang & Ying's KL information of each operational item at grid point ``g``.

        ``KL_j = ∫ Σ_k P_jk(θ_g) log(P_jk(θ_g) / P_jk(θ)) dθ`` over θ_g ± m grid steps
        (clamped to the grid), by the trapezoidal rule on the selection grid.

        Returns
        -------
        (n_operational,) float, internal order.
        """
        cum = self._grid_cum_log_p
        if cum is None:  # C[t] = Σ_{s<t} log P(θ_s): a window sum is two rows
            log_p = np.maximum(irt.log_probabilities(self._op_params, self.theta_grid),
                               _LOG_FLOOR)  # (n_grid, n_op, K)
            cum = np.zeros((log_p.shape[0] + 1, *log_p.shape[1:]))
            np.cumsum(log_p, axis=0, out=cum[1:])
            self._grid_cum_log_p = cum
        a, b = max(0, g - m), min(self._grid_last, g + m)
        h = self._grid_step
        centre = cum[g + 1] - cum[g]  # log P(θ_g), (n_op, K)
        # trapezoid: h Σ_{t=a..b} log P(θ_t) - h/2 (log P(θ_a) + log P(θ_b))
        window = h * (cum[b + 1] - cum[a]) - 0.5 * h * (cum[a + 1] - cum[a]
                                                        + cum[b + 1] - cum[b])
        return np.einsum("jk,jk->j", np.exp(centre), (b - a) * h * centre - window)

    def kl_ranking(self, by_domain: bool, m: int, g: int) -> np.ndarray:
        """Items ranked by decreasing KL information at grid point ``g``, window ``m``.

        One row of what :meth:`ranking` is for Fisher information: (n_operational,)
        int32 of internal indices, the whole pool or (``by_domain``) each domain's
        slice ranked within itself; ties keep the lower index first.  Rows are built
        on first need and kept (at most 1,024, then the cache starts again).
        """
        by_domain = bool(by_domain) and len(self.domain_slices) > 1
        key = (by_domain, m, g)
        row = self._kl_rows.get(key)
        if row is None:
            kl = self.kl_information(g, m)
            if by_domain:
                row = np.empty(kl.size, dtype=np.int32)
                for lo, hi in self.domain_slices:
                    row[lo:hi] = lo + np.argsort(-kl[lo:hi], kind="stable")
            else:
                row = np.argsort(-kl, kind="stable").astype(np.int32)
            if len(self._kl_rows) >= 1024:
                self._kl_rows = {}
            self._kl_rows[key] = row
        return row

    def log_prior(self, mean: float, sd: float) -> np.ndarray:
        """Unnormalised normal log-prior on the quadrature nodes, (n_quad,)."""
        z = (self.nodes - mean) / sd
        return -0.5 * z * z

    def update(self, log_post: np.ndarray, internal: int, score: int
               ) -> tuple[np.ndarray, float, float]:
        """Add one answer to a log-posterior on the quadrature grid.

        Parameters
        ----------
        log_post : (n_quad,) unnormalised log-posterior
        internal : internal index of an operational item
        score : category 0..K-1

        Returns
        -------
        (log_post, theta, se) : the new (n_quad,) log-posterior (normalised:
            ``Σ exp(log_post) = 1``), posterior mean and SD.
        """
        lp = log_post + self.log_p[internal, score]
        # Σw, Σwθ, Σwθ² in one product.  log_post is normalised (Σ exp = 1), so exp(lp)
        # cannot overflow; should the new mass underflow, shift by the maximum first.
        s0, s1, s2 = (self._moments @ np.exp(lp)).tolist()
        if not 1e-250 < s0 < math.inf:
            lp -= lp.max()
            s0, s1, s2 = (self._moments @ np.exp(lp)).tolist()
        lp -= math.log(s0)
        theta = s1 / s0
        return lp, theta, math.sqrt(max(s2 / s0 - theta * theta, 0.0))

    def plan(self, blueprint: Blueprint) -> _Plan:
        """The blueprint resolved against this bank (cached by value)."""
        last = self._last_plan
        if last is not None and last.blueprint is blueprint:
            return last
        plan = self._plans.get(blueprint)
        if plan is None:
            plan = self._make_plan(blueprint)
            if len(self._plans) >= 32:
                self._plans.clear()
            self._plans[blueprint] = plan
        self._last_plan = plan
        return plan

    def _make_plan(self, bp: Blueprint) -> _Plan:
        n_op = self.n_operational
        dom_index = {d: k for k, d in enumerate(self.domain_names)}
        targets = np.zeros(len(self.domain_names))
        for name, target in bp.content_balance:
            if name in dom_index:
                targets[dom_index[name]] = target
        balanced = np.flatnonzero(targets > 0)
        if balanced.size and targets.sum() > 0:
            targets = targets / targets.sum()
        sh_k = np.ones(n_op)
        for item, k in bp.sh_parameters:
            j = self.index_of.get(item)
            if j is not None and self.rank[j] < n_op:
                sh_k[self.rank[j]] = k
        members: dict[int, set[int]] = {}
        groups = list(self._enemy_groups)
        for group in bp.enemies:
            known = [self.index_of[i] for i in group if i in self.index_of]
            if len(known) > 1:
                groups.append(self.rank[known])
        for g in groups:
            for i in g.tolist():
                members.setdefault(i, set()).update(x for x in g.tolist() if x != i)
        enemy_of = {i: np.array(sorted(s), dtype=np.int64) for i, s in members.items() if s}
        pool = np.ones(self.n_items - n_op, dtype=bool)
        if bp.pilot_items:
            wanted = {self.index_of[i] for i in bp.pilot_items if i in self.index_of}
            pool = np.array([int(j) in wanted for j in self.order[n_op:]], dtype=bool)
        self.ranking(by_domain=False)
        if balanced.size:
            self.ranking(by_domain=True)
        z = None
        if bp.classification_alpha is not None:
            z = NormalDist().inv_cdf(1.0 - bp.classification_alpha / 2.0)
        return _Plan(blueprint=bp, targets=targets, balanced=balanced, sh_k=sh_k.tolist(),
                     enemy_of=enemy_of, pilot_pool=pool,
                     pilot_positions=frozenset(bp.pilot_positions), z=z,
                     target_list=targets.tolist(), balanced_list=balanced.tolist())


# --------------------------------------------------------------------------- state


class ItemChoice(NamedTuple):
    """The next item: external ``index`` into the bank's params, its id, pilot or not."""

    index: int
    item_id: str
    is_pilot: bool


class _Cache:
    """Bank-bound working data of a state, rebuilt on demand from the record.

    ``ints``: internal indices of the administered items (-1: not in this bank);
    ``log_post``: (n_quad,) log-posterior; ``dom_counts``: scored items per domain;
    ``blocked``: (n_items,) bool, administered or excluded by an enemy under ``plan``;
    ``n_blocked``: blocked operational items.
    """

    __slots__ = ("bank", "blocked", "dom_counts", "ints", "log_post", "n_blocked", "plan")

    def __init__(self, bank: Bank, ints: tuple[int, ...], log_post: np.ndarray,
                 dom_counts: list[int], plan: _Plan | None = None,
                 blocked: np.ndarray | None = None, n_blocked: int = 0) -> None:
        self.bank, self.ints, self.log_post, self.dom_counts = bank, ints, log_post, dom_counts
        self.plan, self.blocked, self.n_blocked = plan, blocked, n_blocked


@dataclass(frozen=True, eq=False)
class TestState:
    """One examinee's test so far (immutable; :func:`answer` returns a new one).

    Attributes
    ----------
    seed : int
        Source of every random decision of this test (0 <= seed < 2**63).
    prior_mean, prior_sd : float
        The normal prior of θ used for this examinee.
    items : tuple of int
        External bank indices of the administered items, in order.
    item_ids : tuple of str
        Their ids.
    scores : tuple of int
        The scores (categories), same order.
    pilot : tuple of bool
        Whether each administered item was a pilot (unscored) item.
    theta, se : float
        Current EAP estimate and posterior SD from the scored answers.

    Notes
    -----
    The JSON form (:meth:`to_dict`) holds exactly these fields.  The log-posterior
    on the quadrature grid, the per-domain counts and the availability mask are a
    cache, rebuilt from the record in O(n_answered x n_quad) the first time the
    state is used with a bank (bit-identical to the incremental values).
    """

    __test__ = False  # not a pytest test class

    seed: int
    prior_mean: float
    prior_sd: float
    items: tuple[int, ...] = ()
    item_ids: tuple[str, ...] = ()
    scores: tuple[int, ...] = ()
    pilot: tuple[bool, ...] = ()
    theta: float = 0.0
    se: float = 1.0
    _cache: _Cache | None = field(default=None, repr=False, compare=False)

    @property
    def n_administered(self) -> int:
        """Items given so far, pilot included."""
        return len(self.items)

    @property
    def n_scored(self) -> int:
        """Scored (non-pilot) items given so far."""
        return len(self.pilot) - sum(self.pilot)

    @property
    def next_position(self) -> int:
        """1-based position of the next item."""
        return len(self.items) + 1

    def scored_responses(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(external item indices, scores) of the scored answers only."""
        keep = [k for k, p in enumerate(self.pilot) if not p]
        return tuple(self.items[k] for k in keep), tuple(self.scores[k] for k in keep)

    def to_dict(self) -> dict[str, Any]:
        """Small JSON-able dict (see :meth:`from_dict`)."""
        return {
            "version": STATE_VERSION,
            "seed": self.seed,
            "prior": [self.prior_mean, self.prior_sd],
            "items": list(self.items),
            "item_ids": list(self.item_ids),
            "scores": list(self.scores),
            "pilot": list(self.pilot),
            "theta": self.theta,
            "se": self.se,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestState:
        """State from :meth:`to_dict`'s output (after a JSON round trip).

        Raises
        ------
        ValueError
            If the dict is not a state of this version or its lists disagree.
        """
        try:
            version = int(data.get("version", 0))
            if version != STATE_VERSION:
                raise ValueError(f"unsupported engine state version {version}")
            mean, sd = (float(x) for x in data["prior"])
            items = tuple(int(i) for i in data["items"])
            ids = tuple(str(i) for i in data["item_ids"])
            scores = tuple(int(s) for s in data["scores"])
            pilot = tuple(bool(p) for p in data["pilot"])
            seed = int(data["seed"])
            theta, se = float(data["theta"]), float(data["se"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an engine state: {exc!r}") from exc
        if not len(items) == len(ids) == len(scores) == len(pilot):
            raise ValueError("engine state lists (items, item_ids, scores, pilot) differ in length")
        return cls(seed=seed, prior_mean=mean, prior_sd=sd, items=items, item_ids=ids,
                   scores=scores, pilot=pilot, theta=theta, se=se)


def _bind(bank: Bank, state: TestState) -> _Cache:
    """The state's cache for ``bank``, rebuilt from the record if needed."""
    cache = state._cache
    if cache is not None and cache.bank is bank:
        return cache
    ints: list[int] = []
    n_op = bank.n_operational
    log_post = bank.log_prior(state.prior_mean, state.prior_sd)
    counts = [0] * len(bank.domain_names)
    for j, item, score, pilot in zip(state.items, state.item_ids, state.scores, state.pilot):
        if 0 <= j < bank.n_items and bank.item_ids[j] == item:
            ext = j
        else:  # the bank was rebuilt with another item order: go by id
            ext = bank.index_of.get(item, -1)
        i = int(bank.rank[ext]) if ext >= 0 else -1
        if not pilot:
            if i < 0 or i >= n_op:
                raise ValueError(f"scored item {item!r} is not an operational item of this bank")
            log_post = bank.update(log_post, i, score)[0]
            counts[bank._dom_of[i]] += 1
        ints.append(i)
    cache = _Cache(bank, tuple(ints), log_post, counts)
    object.__setattr__(state, "_cache", cache)
    return cache


def _block(plan: _Plan, blocked: np.ndarray, n_op: int, i: int) -> int:
    """Mark item ``i`` and its enemies in ``blocked`` (in place); newly blocked operational."""
    new = 0
    if not blocked[i]:
        blocked[i] = True
        new += i < n_op
    e = plan.enemy_of.get(i)
    if e is not None:
        fresh = e[~blocked[e]]
        blocked[fresh] = True
        new += int(np.count_nonzero(fresh < n_op))
    return new


def _blocked(bank: Bank, plan: _Plan, cache: _Cache) -> np.ndarray:
    """(n_items,) bool over internal indices: administered or excluded by an enemy."""
    if cache.plan is plan and cache.blocked is not None:
        return cache.blocked
    blocked = np.zeros(bank.n_items, dtype=bool)
    n_blocked = 0
    for i in cache.ints:
        if i >= 0:
            n_blocked += _block(plan, blocked, bank.n_operational, i)
    cache.plan, cache.blocked, cache.n_blocked = plan, blocked, n_blocked
    return blocked


# ---------------------------------------------------------------------------- roles


def start(bank: Bank, blueprint: Blueprint, seed: int,
          prior: str | tuple[float, float] | Mapping[str, float] | None = None) -> TestState:
    """Begin a test (the Initializer).

    Parameters
    ----------
    bank, blueprint
    seed : int in [0, 2**63); every random choice of the test derives from it
    prior : None (the blueprint's prior), a group name (the blueprint's group prior,
        the general prior if the group has none), ``(mean, sd)`` or ``{"mean", "sd"}``.
        A blueprint without a prior mean or SD takes the calibration's latent
        distribution (``bank.params.latent_mean``/``latent_sd``).

    Returns
    -------
    TestState
        No items yet; ``theta``/``se`` = the prior mean/SD.
    """
    seed = int(seed)
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    if prior is None or isinstance(prior, str):
        mean, sd = blueprint.prior_for(prior)
        mean = bank.params.latent_mean if mean is None else mean
        sd = bank.params.latent_sd if sd is None else sd
    elif isinstance(prior, Mapping):
        mean, sd = float(prior["mean"]), float(prior["sd"])
    else:
        mean, sd = (float(x) for x in prior)
    if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0):
        raise ValueError("the prior needs a finite mean and an SD > 0")
    log_post = bank.log_prior(mean, sd)
    cache = _Cache(bank, (), log_post, [0] * len(bank.domain_names))
    return TestState(seed=seed, prior_mean=mean, prior_sd=sd, theta=mean, se=sd, _cache=cache)


def answer(bank: Bank, state: TestState, item_index: int, score: int) -> TestState:
    """Record an answer (the Estimator); returns the new state, ``state`` is unchanged.

    A scored item updates the EAP estimate incrementally: its precomputed
    log-probability row is added to the log-posterior on the quadrature grid,
    O(n_quad).  A pilot item is recorded (so it is not given again and its position
    counts) but never changes θ̂, its SE or the domain counts.

    Parameters
    ----------
    item_index : external index of the item in ``bank.params``
    score : its category, 0..n_categories-1

    Raises
    ------
    ValueError
        Unknown index, item already administered, or score out of range.
    """
    cache = _bind(bank, state)
    j = int(item_index)
    if not 0 <= j < bank.n_items:
        raise ValueError(f"item index {item_index} is outside the bank (0..{bank.n_items - 1})")
    item = bank._ids_list[j]
    if item in state.item_ids:
        raise ValueError(f"item {item!r} was already administered")
    i = bank._rank_list[j]
    k = int(score)
    if k != score or not 0 <= k < bank._ncat_list[i]:
        raise ValueError(f"score {score!r} is not a category of item {item!r} "
                         f"(0..{bank._ncat_list[i] - 1})")
    is_pilot = i >= bank.n_operational
    log_post, counts, theta, se = cache.log_post, cache.dom_counts, state.theta, state.se
    if not is_pilot:
        log_post, theta, se = bank.update(log_post, i, k)
        counts = counts.copy()
        counts[bank._dom_of[i]] += 1
    blocked, n_blocked = None, 0
    if cache.blocked is not None:
        blocked = cache.blocked.copy()
        n_blocked = cache.n_blocked + _block(cache.plan, blocked, bank.n_operational, i)
    new_cache = _Cache(bank, cache.ints + (i,), log_post, counts, cache.plan, blocked,
                       n_blocked)
    # Same as TestState(...) without the frozen dataclass __init__ (this is the hot path).
    new = object.__new__(TestState)
    new.__dict__.update(seed=state.seed, prior_mean=state.prior_mean, prior_sd=state.prior_sd,
                        items=state.items + (j,), item_ids=state.item_ids + (item,),
                        scores=state.scores + (k,), pilot=state.pilot + (is_pilot,),
                        theta=theta, se=se, _cache=new_cache)
    return new


def should_stop(bank: Bank, blueprint: Blueprint, state: TestState) -> tuple[bool, str | None]:
    """Whether the test is over (the Stopper), and why.

    Checked in this order: ``"max_items"`` (scored items reached ``max_items``),
    ``"no_items"`` (no operational item left to give), then, once ``min_items``
    scored items were given, ``"se_target"`` (SE <= target), ``"classified"``
    (with ``classification_alpha``: the interval θ̂ ± z_{1-α/2} SE lies inside one
    proficiency level of ``bank.cuts``; both ends in the same level, an end exactly
    on a cut counting as in the level above, as the reported level does) and
    ``"min_info_gain"`` (no available item informs more than ``min_info_gain`` at θ̂).
    The first rule met stops the test.

    Returns
    -------
    (stop, reason) : reason is None while the test goes on.
    """
    plan = bank.plan(blueprint)
    cache = _bind(bank, state)
    _blocked(bank, plan, cache)
    return _stop(bank, plan, state, cache)


def _stop(bank: Bank, plan: _Plan, state: TestState, cache: _Cache
          ) -> tuple[bool, str | None]:
    bp = plan.blueprint
    n = state.n_scored
    if n >= bp.max_items:
        return True, "max_items"
    if cache.n_blocked >= bank.n_operational:
        return True, "no_items"
    if n >= bp.min_items:
        if state.se <= bp.se_target:
            return True, "se_target"
        z = plan.z
        if z is not None:
            half = z * state.se
            if bank.level_index(state.theta - half) == bank.level_index(state.theta + half):
                return True, "classified"
        if bp.min_info_gain is not None:
            g = bank.grid_index(state.theta)
            best = _ranked(bank.ranking(False), g, 0, bank.n_operational, cache, 1)
            if bank.info[g, best[0]] < bp.min_info_gain:
                return True, "min_info_gain"
    return False, None


def next_item(bank: Bank, blueprint: Blueprint, state: TestState) -> ItemChoice | None:
    """The next item to give (the Selector), or None when the test should stop.

    At a pilot position a pilot item is drawn at random among the available pilot
    items (if any remain).  Otherwise: with content balancing the domain furthest
    below its target proportion (Kingsbury-Zara; ties broken at random) that still
    has an available item, then within it the most informative available item at
    θ̂ (grid point nearest θ̂), subject to exposure control; while fewer than
    ``kl_items`` scored items were given (or while the SE is above ``kl_se``), the
    largest KL information over θ̂ ± kl_c / sqrt(n) instead
    (:meth:`Bank.kl_information`).  Administered items and
    the enemies of administered items are never chosen.  Deterministic given the
    state (the randomness is a hash of the seed and the position).
    """
    return _next(bank, bank.plan(blueprint), state, None)


def _next(bank: Bank, plan: _Plan, state: TestState, considered: list[int] | None
          ) -> ItemChoice | None:
    """:func:`next_item`; ``considered`` collects items whose SH lottery was drawn."""
    cache = _bind(bank, state)
    blocked = _blocked(bank, plan, cache)
    if _stop(bank, plan, state, cache)[0]:
        return None
    position = len(state.items) + 1
    n_op = bank.n_operational
    if position in plan.pilot_positions and bank.n_items > n_op:
        pool = np.flatnonzero(plan.pilot_pool & ~blocked[n_op:])
        if pool.size:
            u = _uniform(state.seed, _STREAM_PILOT, position)
            i = n_op + int(pool[int(u * pool.size)])
            return ItemChoice(int(bank.order[i]), str(bank._ids_int[i]), True)
    i = _select(bank, plan, state, cache, considered)
    return ItemChoice(int(bank.order[i]), str(bank._ids_int[i]), False)


def _ranked(ranking: np.ndarray, g: int, lo: int, hi: int, cache: _Cache, need: int
            ) -> np.ndarray:
    """The ``need`` most informative available items of slice [lo, hi) at grid point ``g``.

    At most ``cache.n_blocked`` items are unavailable, so the first
    ``n_blocked + need`` ranked items hold them: O(n_blocked), not O(n_items).
    Returns internal indices in decreasing information (fewer if the slice runs out).
    """
    cand = ranking[g, lo:min(hi, lo + cache.n_blocked + need)]
    return cand[~cache.blocked[cand]][:need]


def _domain_order(plan: _Plan, state: TestState, cache: _Cache) -> list[int]:
    """Balanced domains, most under-represented first (Kingsbury-Zara)."""
    n = max(1, state.n_scored)
    doms = plan.balanced_list
    rot = int(_uniform(state.seed, _STREAM_TIE, len(state.items) + 1) * len(doms))
    keys = [(cache.dom_counts[d] / n - plan.target_list[d], (k - rot) % len(doms), d)
            for k, d in enumerate(doms)]
    return [d for *_, d in sorted(keys)]


def _select(bank: Bank, plan: _Plan, state: TestState, cache: _Cache,
            considered: list[int] | None) -> int:
    """Internal index of the operational item to give (some item is available)."""
    g = bank.grid_index(state.theta)
    n = state.n_scored
    bp = plan.blueprint
    if n < bp.kl_items or (bp.kl_se is not None and state.se > bp.kl_se):
        # one row of KL ranks, read as a one-row ranking matrix
        m = bank.kl_half_width(bp.kl_c, n)

        def ranking(by_domain: bool) -> np.ndarray:
            return bank.kl_ranking(by_domain, m, g)[None, :]
        row = 0
    else:
        ranking, row = bank.ranking, g
    if plan.balanced_list:
        ranked = ranking(True)
        for d in _domain_order(plan, state, cache):
            lo, hi = bank.domain_slices[d]
            i = _pick(bank, plan, state, cache, ranked, row, lo, hi, considered)
            if i >= 0:
                return i
    i = _pick(bank, plan, state, cache, ranking(False), row, 0, bank.n_operational,
              considered)
    if i < 0:
        raise AssertionError("no operational item available")  # _stop rules this out
    return i


def _pick(bank: Bank, plan: _Plan, state: TestState, cache: _Cache, ranking: np.ndarray,
          g: int, lo: int, hi: int, considered: list[int] | None) -> int:
    """Internal index of the item to give from slice [lo, hi), or -1 if none is available."""
    bp = plan.blueprint
    if bp.exposure == "randomesque":
        cand = _ranked(ranking, g, lo, hi, cache, bp.candidates)
        if cand.size == 0:
            return -1
        u = _uniform(state.seed, _STREAM_RANDOMESQUE, len(state.items) + 1)
        return int(np.sort(cand)[int(u * cand.size)])
    if bp.exposure == "sympson-hetter":
        return _sympson_hetter(bank, plan, state, cache, ranking, g, lo, hi, considered)
    cand = _ranked(ranking, g, lo, hi, cache, 1)
    return int(cand[0]) if cand.size else -1


def _sympson_hetter(bank: Bank, plan: _Plan, state: TestState, cache: _Cache,
                    ranking: np.ndarray, g: int, lo: int, hi: int,
                    considered: list[int] | None) -> int:
    """Most informative available item whose exposure lottery this examinee wins.

    If every available item of the slice loses, the most informative one is given.
    """
    key = _hash(state.seed, _STREAM_SH)
    k, hashes = plan.sh_k, bank._id_hash
    need, done = _SH_CHUNK, 0
    while True:
        cand = _ranked(ranking, g, lo, hi, cache, need).tolist()
        if not cand:
            return -1
        for i in cand[done:]:
            if considered is not None:
                considered.append(i)
            if k[i] >= 1.0 or _item_uniform(key, hashes[i]) <= k[i]:
                return i
        if len(cand) < need:  # the slice is exhausted: nobody won
            return cand[0]
        done, need = len(cand), 2 * need


def final_score(bank: Bank, blueprint: Blueprint, state: TestState) -> tuple[float, float, str]:
    """Final estimate from the scored answers with ``blueprint.final_method``.

    Uses :func:`scoring.estimation.estimate` on the scored items only (pilot answers
    are left out); EAP uses the state's prior and the bank's quadrature grid (so it
    equals the running estimate), MAP the state's prior.

    Returns
    -------
    (theta, se, method) : floats; MLE/WLE without any scored answer give NaN.
    """
    theta, se, method = final_scores(bank, blueprint, [state])
    return float(theta[0]), float(se[0]), method


def final_scores(bank: Bank, blueprint: Blueprint, states: Sequence[TestState]
                 ) -> tuple[np.ndarray, np.ndarray, str]:
    """:func:`final_score` of many tests in one vectorised estimation call.

    Returns
    -------
    (theta, se, method) : theta and se (n_states,) float.
    """
    method = blueprint.final_method
    records = [s.scored_responses() for s in states]
    used = sorted({j for idx, _ in records for j in idx})
    n = len(states)
    if not used:
        if method in ("eap", "map"):
            return (np.array([s.prior_mean for s in states], dtype=float),
                    np.array([s.prior_sd for s in states], dtype=float), method)
        return np.full(n, np.nan), np.full(n, np.nan), method
    column = {j: c for c, j in enumerate(used)}
    responses = np.full((n, len(used)), np.nan)
    for row, (idx, scores) in enumerate(records):
        responses[row, [column[j] for j in idx]] = scores
    sub = bank.params.subset(np.asarray(used, dtype=np.int64))
    kwargs: dict[str, Any] = {}
    if method in ("eap", "map"):
        kwargs = {"prior_mean": np.array([s.prior_mean for s in states], dtype=float),
                  "prior_sd": np.array([s.prior_sd for s in states], dtype=float)}
    if method == "eap":
        kwargs.update(n_quad=bank.nodes.size,
                      bounds=(float(bank.nodes[0]), float(bank.nodes[-1])))
    est = estimation.estimate(sub, responses, method=method, **kwargs)
    return np.asarray(est.theta, dtype=float), np.asarray(est.se, dtype=float), method


def replay(bank: Bank, blueprint: Blueprint, seed: int, item_ids: Sequence[str],
           scores: Sequence[int],
           prior: str | tuple[float, float] | Mapping[str, float] | None = None) -> TestState:
    """Rebuild a state from the record of a test: :func:`start` then :func:`answer`s.

    Gives a state identical to the one built step by step (same θ̂, SE and next item).
    """
    if len(item_ids) != len(scores):
        raise ValueError("item_ids and scores differ in length")
    state = start(bank, blueprint, seed, prior)
    for item, score in zip(item_ids, scores):
        state = answer(bank, state, bank.index(item), score)
    return state


def domain_counts(bank: Bank, state: TestState) -> dict[str, int]:
    """Scored items given so far per domain of the bank."""
    cache = _bind(bank, state)
    return dict(zip(bank.domain_names, cache.dom_counts))


def theta_cuts(minimums: Iterable[float | None], scale_mean: float = 500.0,
               scale_sd: float = 100.0, link_a: float = 1.0, link_b: float = 0.0
               ) -> tuple[float, ...]:
    """Level cut points on the θ metric from the levels' reporting-scale minimums.

    Inverts ``score = mean + sd (A θ + B)`` (:func:`itembank.scale.to_scale`) at each
    minimum; a None minimum (the lowest level's) is skipped.  For :class:`Bank`'s
    ``cuts``: ``level_index(θ)`` is then the level ``level_for(to_scale(θ))`` gives.

    Raises
    ------
    ValueError
        If ``sd * A`` is not > 0 (the scale would not rise with θ).
    """
    slope = float(scale_sd) * float(link_a)
    if not (math.isfinite(slope) and slope > 0):
        raise ValueError(f"the reporting scale must rise with theta (sd x link_a = {slope})")
    return tuple(((float(m) - float(scale_mean)) / float(scale_sd) - float(link_b))
                 / float(link_a) for m in minimums if m is not None)
