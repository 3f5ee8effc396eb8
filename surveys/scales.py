"""Scores of rating-scale blocks: sum scores with reverse keys, and IRT (GRM/GPCM) thetas.

A *scale* is one or more rating grids answered on the same choice list, e.g. the
learning-motivation grid (MOT-001..012) of the default survey.  Answers are the
choice names of the grid's list (``"1"`` .. ``"5"``).

* Sum score: each answer counts the number in its choice name (1..5); a
  reverse-keyed item counts the mirror value (on 1..5: ``6 - v``).  With missing
  answers the score is prorated, ``mean(answered) * n_items``, when at least
  ``min_share`` of the items are answered, and NaN otherwise (default 0.5, the
  usual "half rule").  Complete answers give the plain sum.
* IRT: each answer becomes its category 0..K-1 in scoring order (reversed for
  reverse-keyed items, as ``itembank`` scores rating items and as calibrations
  are made), and ``scoring.estimation.eap`` gives theta and its posterior SD
  with item parameters looked up by item code (or by item name when an item has
  no code).  Respondents who answered none of the items get NaN, not the prior.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring import catalogue
from scoring.estimation import eap
from scoring.params import ItemParams

from .definition import Choice, Question, RatingItem, Survey

__all__ = ["METHODS", "Scale", "ScaleScores", "scale", "scale_method", "score_scale",
           "scored_responses"]

#: the IRT scoring methods are the catalogue's polytomous families (GRM; GPCM with PCM)
_MODEL_FAMILY = {family: catalogue.names_where(family=family, dichotomous=False)
                 for family in ("grm", "gpcm")}
METHODS = ("sum", *_MODEL_FAMILY)


@dataclass(frozen=True)
class Scale:
    """Rating items scored together and the answer scale they share."""

    name: str
    items: tuple[RatingItem, ...]
    choices: tuple[Choice, ...]

    @property
    def item_ids(self) -> list[str]:
        """Ids that calibrations use: the item-bank code, else the item name."""
        return [item.item_code or item.name for item in self.items]

    @property
    def values(self) -> np.ndarray:
        """The number each choice counts in a sum score (its name)."""
        return np.array([int(c.name) for c in self.choices], dtype=float)


def scale(survey: Survey, *grids: str | Question, name: str | None = None) -> Scale:
    """The scale made of one or more rating grids of a survey (by name or question)."""
    questions = [survey.question(g) if isinstance(g, str) else g for g in grids]
    if not questions:
        raise ValueError("name at least one rating grid")
    for q in questions:
        if q.type != "rating_grid":
            raise ValueError(f"{q.name!r} is a {q.type} question, not a rating grid")
    lists = {q.choices for q in questions}
    if len(lists) != 1:
        raise ValueError(f"the grids use different scales {sorted(map(str, lists))}; a scale "
                         "needs one choice list")
    return Scale(name or "+".join(q.name for q in questions),
                 tuple(item for q in questions for item in q.items),
                 survey.choice_lists[questions[0].choices or ""])


@dataclass(frozen=True, eq=False)
class ScaleScores:
    """Per respondent: prorated sum score, items answered, and theta/SE for IRT methods.

    Arrays have one entry per respondent, in the order answers were given.
    ``theta``/``se`` are None for ``method="sum"``.
    """

    scale: str
    method: str
    sum: np.ndarray
    n_answered: np.ndarray
    theta: np.ndarray | None = None
    se: np.ndarray | None = None

    def to_frame(self, ids: Sequence[Any] | None = None) -> pd.DataFrame:
        data: dict[str, Any] = {"sum": self.sum, "n_answered": self.n_answered}
        if self.theta is not None:
            data["theta"], data["se"] = self.theta, self.se
        return pd.DataFrame(data, index=list(ids) if ids is not None else None)


def scored_responses(block: Scale, answers: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Categories in scoring order, (n_respondents, n_items), NaN where unanswered.

    This is the response matrix ``learningcity calibrate`` expects for the items
    (columns in ``block.item_ids`` order).  Raises ValueError for an answer that is
    not a choice of the scale.
    """
    index = {c.name: k for k, c in enumerate(block.choices)}
    top = len(block.choices) - 1
    out = np.full((len(answers), len(block.items)), np.nan)
    for i, sheet in enumerate(answers):
        for j, item in enumerate(block.items):
            value = sheet.get(item.name)
            if value is None or value == "":
                continue
            k = index.get(value if isinstance(value, str) else str(value))
            if k is None:
                raise ValueError(f"respondent {i + 1}, {item.name}: {value!r} is not a "
                                 f"choice of the scale ({', '.join(index)})")
            out[i, j] = top - k if item.reverse else k
    return out


def score_scale(block: Scale, answers: Sequence[Mapping[str, Any]], method: str = "sum",
                params: ItemParams | None = None, *, min_share: float = 0.5,
                prior_mean: float | None = None, prior_sd: float | None = None
                ) -> ScaleScores:
    """Score a scale for every respondent.

    Parameters
    ----------
    block : Scale (see :func:`scale`)
    answers : one answer dict per respondent (item name -> choice name)
    method : ``sum``, ``grm`` or ``gpcm``; the IRT methods also give the sum score
    params : ItemParams with the items' codes as ids (the items may be a subset
        of a larger calibration); required for IRT
    min_share : share of items that must be answered for a prorated sum score
    prior_mean, prior_sd : the normal prior of the EAP estimate (None: the calibrated
        latent distribution of ``params``, ``latent_mean``/``latent_sd``)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 0 < min_share <= 1:
        raise ValueError("min_share must be in (0, 1]")
    categories = scored_responses(block, answers)
    values = block.values
    n_items = len(block.items)
    answered = ~np.isnan(categories)
    counted = np.where(answered, values[np.nan_to_num(categories).astype(int)], 0.0)
    n_answered = answered.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = counted.sum(axis=1) / n_answered
    enough = n_answered >= min_share * n_items - 1e-9
    sums = np.where(enough & (n_answered > 0), mean * n_items, np.nan)
    if method == "sum":
        return ScaleScores(block.name, method, sums, n_answered)
    if params is None:
        raise ValueError(f"method {method!r} needs item parameters")
    bank = _item_params(block, params, method)
    estimates = eap(bank, categories, prior_mean=prior_mean, prior_sd=prior_sd)
    none = n_answered == 0
    return ScaleScores(block.name, method, sums, n_answered,
                       np.where(none, np.nan, estimates.theta),
                       np.where(none, np.nan, estimates.se))


def scale_method(models: Sequence[str]) -> str | None:
    """The IRT scoring method whose family holds every item's model, or None (sum only)."""
    found = {str(m) for m in models}
    for method, family in _MODEL_FAMILY.items():
        if found and found <= set(family):
            return method
    return None


def _item_params(block: Scale, params: ItemParams, method: str) -> ItemParams:
    ids = block.item_ids
    known = set(params.item_ids.tolist())
    missing = [i for i in ids if i not in known]
    if missing:
        raise ValueError(f"no parameters for item(s) {', '.join(missing)}")
    bank = params.subset(ids)
    wrong = [f"{i} ({m})" for i, m in zip(ids, bank.model.tolist())
             if m not in _MODEL_FAMILY[method]]
    if wrong:
        raise ValueError(f"method {method!r} needs {'/'.join(_MODEL_FAMILY[method])} "
                         f"parameters; got {', '.join(wrong)}")
    k = len(block.choices)
    off = [i for i, n in zip(ids, bank.n_categories.tolist()) if n != k]
    if off:
        raise ValueError(f"item(s) {', '.join(off)} are calibrated with a different number "
                         f"of categories than the scale's {k}")
    return bank
