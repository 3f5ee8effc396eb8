"""The IRT models ``scoring/`` knows: the one list of model names and what each one is.

Every module that checks, lists or branches on a model name asks this catalogue, so a
model is described once: its canonical name and accepted aliases, its item response
function (``family``), its parameter layout (slope fixed, common or free; a lower
asymptote or not; one difficulty or K-1 thresholds, ordered or not), how many
categories it allows and which calibration engines fit it.

Parameter layout (as :class:`~scoring.params.ItemParams` holds it and PARAMS.csv
writes it, see :meth:`IRTModel.columns`):

=========  =======  ===========  =========  ===============================  =========
model      family   slope ``a``  ``c``      difficulties                     engines
=========  =======  ===========  =========  ===============================  =========
rasch      dich     fixed at 1   --         ``b``                            native, girth
1pl        dich     common       --         ``b``                            native, girth
2pl        dich     free         --         ``b``                            native, girth
3pl        dich     free         free       ``b``                            native
grm        grm      free         --         ``b1 < b2 < ... < b(K-1)``       native, girth
gpcm       gpcm     free         --         steps ``b1 .. b(K-1)``           native, girth
pcm        gpcm     fixed at 1   --         steps ``b1 .. b(K-1)``           native
=========  =======  ===========  =========  ===============================  =========

Names are matched without regard to case or surrounding spaces; aliases (mirt's
``graded``, girth's ``onepl``/``twopl``/``threepl``, ``partial_credit``...) resolve to the
canonical name, which is what every result and file carries.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "DICHOTOMOUS",
    "ENGINES",
    "FAMILIES",
    "GUESSING",
    "MODELS",
    "NAMES",
    "ORDERED_THRESHOLDS",
    "POLYTOMOUS",
    "UNIT_SLOPE",
    "IRTModel",
    "accepted_names",
    "canonical",
    "canonical_names",
    "engine_models",
    "get",
    "names_where",
]

#: item response function families (one kernel each in ``scoring/models.py``)
FAMILIES = ("dichotomous", "grm", "gpcm")
#: calibration engines: the native MML-EM (``scoring.calibration``) and girth's adapter
ENGINES = ("native", "girth")
SLOPES = ("fixed", "common", "free")


@dataclass(frozen=True)
class IRTModel:
    """One IRT model: names, item response function and parameter layout.

    Attributes
    ----------
    name : canonical lower-case name (``"2pl"``)
    label : display name (``"2PL"``)
    aliases : other accepted spellings, lower case
    family : ``"dichotomous"``, ``"grm"`` or ``"gpcm"`` (the item response function)
    slope : ``"fixed"`` (a = 1), ``"common"`` (one a shared by the model's items) or
        ``"free"`` (one a per item)
    guessing : True when the model has a lower asymptote ``c``
    ordered_thresholds : True when thresholds must increase strictly (GRM)
    engines : calibration engines that fit it (subset of ``ENGINES``)
    rescaled : the model an item becomes when a linear transformation of the scale
        divides its slope by A != 1 (a fixed slope is then no longer 1)
    """

    name: str
    label: str
    aliases: tuple[str, ...]
    family: str
    slope: str
    guessing: bool
    ordered_thresholds: bool
    engines: tuple[str, ...]
    rescaled: str

    @property
    def dichotomous(self) -> bool:
        return self.family == "dichotomous"

    @property
    def polytomous(self) -> bool:
        return not self.dichotomous

    @property
    def unit_slope(self) -> bool:
        """Slope fixed at 1 by definition (``a`` may be left empty in PARAMS.csv)."""
        return self.slope == "fixed"

    def allows_categories(self, n_categories: int) -> bool:
        """Dichotomous models take exactly 2 categories, polytomous ones 2 or more."""
        return n_categories == 2 if self.dichotomous else n_categories >= 2

    def columns(self, n_categories: int = 2) -> tuple[str, ...]:
        """PARAMS.csv columns that carry this model's values for an item with K categories.

        Dichotomous items use ``a, b, c``; polytomous items use ``a, b1 .. b(K-1)`` (and
        leave ``b`` and ``c`` empty).  ``ItemParams`` holds the same values: ``a``,
        ``b[:, 0]`` or ``b[:, :K-1]``, and ``c``.  See :meth:`fixed_values`.
        """
        if not self.allows_categories(n_categories):
            raise ValueError(f"model {self.name} does not allow {n_categories} categories")
        if self.dichotomous:
            return ("a", "b", "c")
        return ("a", *(f"b{k}" for k in range(1, n_categories)))

    def fixed_values(self) -> dict[str, float]:
        """Columns whose value the model fixes: ``a = 1`` (fixed slope), ``c = 0``
        (dichotomous without guessing)."""
        fixed = {"a": 1.0} if self.unit_slope else {}
        if self.dichotomous and not self.guessing:
            fixed["c"] = 0.0
        return fixed

    def n_parameters(self, n_categories: int = 2) -> int:
        """Parameters estimated per item (a common slope is charged to no item)."""
        if not self.allows_categories(n_categories):
            raise ValueError(f"model {self.name} does not allow {n_categories} categories")
        return (n_categories - 1) + (self.slope == "free") + self.guessing


_ENTRIES = (
    IRTModel("rasch", "Rasch", (), "dichotomous", "fixed", False, False,
             ("native", "girth"), "1pl"),
    IRTModel("1pl", "1PL", ("onepl",), "dichotomous", "common", False, False,
             ("native", "girth"), "1pl"),
    IRTModel("2pl", "2PL", ("twopl",), "dichotomous", "free", False, False,
             ("native", "girth"), "2pl"),
    IRTModel("3pl", "3PL", ("threepl",), "dichotomous", "free", True, False,
             ("native",), "3pl"),
    IRTModel("grm", "GRM", ("graded", "samejima"), "grm", "free", False, True,
             ("native", "girth"), "grm"),
    IRTModel("gpcm", "GPCM", ("generalized_partial_credit",), "gpcm", "free", False, False,
             ("native", "girth"), "gpcm"),
    IRTModel("pcm", "PCM", ("partial_credit",), "gpcm", "fixed", False, False,
             ("native",), "gpcm"),
)

#: canonical name -> model, in the order above
MODELS: dict[str, IRTModel] = {m.name: m for m in _ENTRIES}
#: canonical names
NAMES: tuple[str, ...] = tuple(MODELS)
_LOOKUP: dict[str, str] = {alias: m.name for m in _ENTRIES for alias in (m.name, *m.aliases)}


def names_where(**attributes: object) -> tuple[str, ...]:
    """Canonical names of the models whose attributes have these values, in catalogue order.

    ``names_where(family="gpcm")`` -> ``("gpcm", "pcm")``.
    """
    return tuple(m.name for m in _ENTRIES
                 if all(getattr(m, key) == value for key, value in attributes.items()))


DICHOTOMOUS: tuple[str, ...] = names_where(dichotomous=True)
POLYTOMOUS: tuple[str, ...] = names_where(dichotomous=False)
UNIT_SLOPE: tuple[str, ...] = names_where(slope="fixed")
GUESSING: tuple[str, ...] = names_where(guessing=True)
ORDERED_THRESHOLDS: tuple[str, ...] = names_where(ordered_thresholds=True)


def accepted_names() -> tuple[str, ...]:
    """Every accepted spelling: canonical names first, then aliases."""
    return NAMES + tuple(a for m in _ENTRIES for a in m.aliases)


def canonical(name: str) -> str:
    """The canonical name of a model name or alias (case and outer spaces ignored).

    Raises
    ------
    ValueError
        Unknown name; the message lists the canonical names.
    """
    found = _LOOKUP.get(str(name).strip().lower())
    if found is None:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(NAMES)}")
    return found


def canonical_names(names: Iterable[object]) -> list[str]:
    """Canonical names of many model names; one ValueError listing every unknown one."""
    names = [str(n) for n in names]
    unknown = sorted({n for n in names if n.strip().lower() not in _LOOKUP})
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; expected one of {NAMES}")
    return [_LOOKUP[n.strip().lower()] for n in names]


def get(name: str) -> IRTModel:
    """The model of a name or alias (ValueError when unknown)."""
    return MODELS[canonical(name)]


def engine_models(engine: str) -> tuple[str, ...]:
    """Canonical names of the models an engine (``"native"`` or ``"girth"``) fits."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    return tuple(m.name for m in _ENTRIES if engine in m.engines)
