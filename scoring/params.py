"""Item parameter container shared by every module in ``scoring/``.

One parameterisation everywhere (see ``scoring/README.md``): slope/difficulty, logistic
metric, D = 1.

* dichotomous (rasch, 1pl, 2pl, 3pl): ``P(X=1|θ) = c + (1-c) / (1 + exp(-a(θ - b)))``
* GRM: ``P(X>=k|θ) = 1 / (1 + exp(-a(θ - b_k)))``, ``k = 1..K-1``, ``b`` strictly increasing
* GPCM/PCM: ``P(X=k|θ) ∝ exp(Σ_{v=1..k} a(θ - b_v))``; PCM has ``a = 1``

``ItemParams`` stores a bank that may mix models.  Thresholds live in a
``(n_items, max_categories - 1)`` matrix, NaN padded on the right; dichotomous
items use ``b[:, 0]``.

Construct banks with :meth:`ItemParams.from_arrays`, which validates values and
names the offending item ids.  The plain dataclass constructor only checks
shapes and types (so calibration code can build intermediate banks, e.g. with a
negative slope, and still report them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import catalogue

# The model names, from the one catalogue (kept here for the modules that import them).
MODELS = catalogue.NAMES
DICHOTOMOUS = catalogue.DICHOTOMOUS
POLYTOMOUS = catalogue.POLYTOMOUS
_UNIT_SLOPE = catalogue.UNIT_SLOPE
_KNOWN = frozenset(MODELS)


def _readonly(x: np.ndarray) -> np.ndarray:
    x = np.array(x, copy=True)
    x.setflags(write=False)
    return x


def _ids_message(ids: Iterable[Any], limit: int = 5) -> str:
    ids = [str(i) for i in ids]
    shown = ", ".join(repr(i) for i in ids[:limit])
    if len(ids) > limit:
        shown += f" and {len(ids) - limit} more"
    return shown


def _threshold_matrix(b: Any, n_items: int, name: str = "b") -> np.ndarray:
    """Turn ``b`` into a float ``(n_items, n_cols)`` matrix, NaN padding ragged rows.

    Accepts a 1-D array (one threshold per item), a 2-D array, or a sequence of
    per-item sequences of different lengths (scalars count as length 1).
    """
    try:
        arr = np.asarray(b, dtype=float)
    except ValueError:  # ragged: list of per-item sequences
        rows = [np.atleast_1d(np.asarray(r, dtype=float)).ravel() for r in b]
        width = max((len(r) for r in rows), default=0)
        arr = np.full((len(rows), max(width, 1)), np.nan)
        for i, r in enumerate(rows):
            arr[i, : len(r)] = r
    if arr.ndim == 0:
        arr = np.full((n_items, 1), float(arr))
    elif arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n_items:
        raise ValueError(
            f"{name} must have one row per item: expected {n_items} rows, got shape {arr.shape}"
        )
    return arr


def _model_vector(model: Any, n_items: int) -> np.ndarray:
    """(n_items,) canonical model names; aliases resolved, unknown names rejected."""
    names = np.strings.lower(_vector(model, n_items, "model", dtype=str))
    if set(names.tolist()) <= _KNOWN:  # the common case: already canonical
        return names
    return np.array(catalogue.canonical_names(names.tolist()), dtype=str)


def _vector(x: Any, n_items: int, name: str, dtype: Any = float) -> np.ndarray:
    arr = np.asarray(x).astype(str) if dtype is str else np.asarray(x, dtype=dtype)
    if arr.ndim == 0:
        arr = np.repeat(arr, n_items)
    if arr.shape != (n_items,):
        raise ValueError(f"{name} must have shape ({n_items},), got {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class ItemParams:
    """Parameters of an item bank (possibly mixing models).

    Attributes
    ----------
    item_ids : (n_items,) str
    model : (n_items,) str, each a canonical name of ``scoring.catalogue`` (aliases are
        resolved on construction)
    a : (n_items,) float, slopes (1 for rasch and pcm)
    b : (n_items, max_categories - 1) float
        Difficulties / thresholds / step parameters, NaN padded on the right.
        Dichotomous items use ``b[:, 0]``.
    c : (n_items,) float, lower asymptote; 0 except for 3PL items
    n_categories : (n_items,) int, 2 for dichotomous items
    se_a, se_b, se_c : arrays shaped like ``a``, ``b``, ``c`` or None
        Standard errors; NaN where a parameter was fixed or not estimated.
    latent_mean, latent_sd : float, default 0 and 1
        The latent distribution θ ~ N(latent_mean, latent_sd²) of the population the
        bank was calibrated on, on this bank's scale.  Rasch and PCM calibrations fix
        the slopes at 1 and estimate the SD instead, so it is not 1 in general; every
        scorer takes it as its default prior (EAP/MAP, plausible values, the adaptive
        test).  Linking transforms it with the items.

    Notes
    -----
    Arrays are copied and made read-only.  ``eq=False``: instances compare by
    identity (element-wise array comparison has no single truth value); use
    :meth:`allclose` to compare banks numerically.
    """

    item_ids: np.ndarray
    model: np.ndarray
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    n_categories: np.ndarray
    se_a: np.ndarray | None = None
    se_b: np.ndarray | None = None
    se_c: np.ndarray | None = None
    latent_mean: float = 0.0
    latent_sd: float = 1.0

    # ------------------------------------------------------------------ build
    def __post_init__(self) -> None:
        ids = np.asarray(self.item_ids).astype(str)
        if ids.ndim != 1:
            raise ValueError(f"item_ids must be 1-D, got shape {ids.shape}")
        n = ids.shape[0]
        model = _model_vector(self.model, n)
        a = _vector(self.a, n, "a")
        c = _vector(self.c, n, "c")
        ncat = _vector(self.n_categories, n, "n_categories", dtype=np.int64)
        if np.any(ncat < 2):
            bad = ids[ncat < 2]
            raise ValueError(f"items {_ids_message(bad)}: n_categories must be >= 2")
        width = int(ncat.max()) - 1 if n else 1
        b = _fit_width(_threshold_matrix(self.b, n, "b"), width, "b")
        values = {"item_ids": ids, "model": model, "a": a, "b": b, "c": c, "n_categories": ncat}
        for name, ref in (("se_a", a), ("se_b", b), ("se_c", c)):
            se = getattr(self, name)
            if se is None:
                values[name] = None
                continue
            if name == "se_b":
                se = _fit_width(_threshold_matrix(se, n, "se_b"), width, "se_b")
            else:
                se = _vector(se, n, name)
            if se.shape != ref.shape:
                raise ValueError(f"{name} must have shape {ref.shape}, got {se.shape}")
            values[name] = se
        for name, value in values.items():
            object.__setattr__(self, name, None if value is None else _readonly(value))
        mean, sd = _latent(self.latent_mean, self.latent_sd)
        object.__setattr__(self, "latent_mean", mean)
        object.__setattr__(self, "latent_sd", sd)

    @classmethod
    def from_arrays(
        cls,
        item_ids: Sequence[Any] | np.ndarray,
        model: str | Sequence[str] | np.ndarray,
        a: Any,
        b: Any,
        c: Any = None,
        n_categories: Any = None,
        se_a: Any = None,
        se_b: Any = None,
        se_c: Any = None,
        latent_mean: float = 0.0,
        latent_sd: float = 1.0,
    ) -> ItemParams:
        """Build and validate a bank.

        Parameters
        ----------
        item_ids : (n_items,) unique ids (converted to str)
        model : str or (n_items,) str
            One model for the whole bank or one per item.
        a : float or (n_items,)
            Slopes; a scalar is broadcast.  Must be > 0, and 1 for rasch/pcm.
        b : (n_items,) or (n_items, n_thresholds) or ragged sequence of sequences
            1-D for dichotomous banks; NaN padded (or ragged) for polytomous items.
        c : None, float or (n_items,)
            Lower asymptotes, default 0.  Must be in [0, 1) for 3PL and 0 otherwise.
        n_categories : None or (n_items,) int
            Default: number of leading finite thresholds + 1 per row.  If given, each
            row must hold exactly ``n_categories - 1`` leading finite thresholds.
        se_a, se_b, se_c : optional standard errors shaped like a, b, c.
        latent_mean, latent_sd : the calibrated latent distribution N(mean, sd²) of the
            scale (finite, sd > 0; default the standard normal).

        Raises
        ------
        ValueError
            With the offending item ids on any invalid value.
        """
        ids = np.asarray(item_ids).astype(str)
        if ids.ndim != 1:
            raise ValueError(f"item_ids must be 1-D, got shape {ids.shape}")
        n = ids.shape[0]
        model_arr = _model_vector(model, n)
        bmat = _threshold_matrix(b, n, "b")
        present = ~np.isnan(bmat)
        # Number of leading non-NaN thresholds per row, and whether any value
        # follows a NaN (a gap, which is never valid).  +-inf is caught in validate().
        leading = np.argmin(np.concatenate([present, np.zeros((n, 1), bool)], axis=1), axis=1)
        gaps = present.sum(axis=1) != leading
        if np.any(gaps):
            raise ValueError(
                f"items {_ids_message(ids[gaps])}: thresholds must be finite and NaN-padded "
                "on the right only"
            )
        if n_categories is None:
            ncat = leading + 1
        else:
            ncat = _vector(n_categories, n, "n_categories", dtype=np.int64)
            wrong = leading != ncat - 1
            if np.any(wrong):
                j = int(np.flatnonzero(wrong)[0])
                raise ValueError(
                    f"items {_ids_message(ids[wrong])}: wrong number of thresholds "
                    f"(item {str(ids[j])!r} has {leading[j]}, expected {ncat[j] - 1} "
                    f"for {ncat[j]} categories)"
                )
        cvec = np.zeros(n) if c is None else _vector(c, n, "c")
        params = cls(
            item_ids=ids,
            model=model_arr,
            a=_vector(a, n, "a"),
            b=bmat,
            c=cvec,
            n_categories=ncat,
            se_a=se_a,
            se_b=se_b,
            se_c=se_c,
            latent_mean=latent_mean,
            latent_sd=latent_sd,
        )
        params.validate()
        return params

    def validate(self) -> ItemParams:
        """Check parameter values; raise ValueError naming the items; return self."""
        ids, model, a, b, c, ncat = (
            self.item_ids, self.model, self.a, self.b, self.c, self.n_categories,
        )
        if len(set(ids.tolist())) != len(ids):
            uniq, counts = np.unique(ids, return_counts=True)
            raise ValueError(f"duplicate item ids: {_ids_message(uniq[counts > 1])}")

        def fail(mask: np.ndarray, what: str) -> None:
            if np.any(mask):
                raise ValueError(f"items {_ids_message(ids[mask])}: {what}")

        dich = np.isin(model, DICHOTOMOUS)
        fail(~np.isfinite(a) | (a <= 0), "slope a must be finite and > 0")
        fail(np.isin(model, _UNIT_SLOPE) & (np.abs(a - 1.0) > 1e-12),
             "rasch/pcm items must have a = 1 (use '1pl', '2pl' or 'gpcm' for a free slope)")
        is3 = np.isin(model, catalogue.GUESSING)
        fail(is3 & ~((c >= 0) & (c < 1)), "3PL lower asymptote c must be in [0, 1)")
        fail(~is3 & (c != 0), "c must be 0 for non-3PL items")
        fail(dich & (ncat != 2), "dichotomous items must have n_categories = 2")
        cols = np.arange(b.shape[1])
        used = cols[None, :] < (ncat[:, None] - 1)
        fail(np.any(used & ~np.isfinite(b), axis=1), "thresholds must be finite")
        fail(np.any(~used & ~np.isnan(b), axis=1),
             "wrong number of thresholds (extra values beyond n_categories - 1)")
        if b.shape[1] > 1:
            steps = np.diff(b, axis=1)
            pair_used = used[:, 1:]
            fail(np.isin(model, catalogue.ORDERED_THRESHOLDS)
                 & np.any(pair_used & ~(steps > 0), axis=1),
                 "GRM thresholds must be strictly increasing")
        return self

    # ------------------------------------------------------------ properties
    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    @property
    def max_categories(self) -> int:
        return int(self.n_categories.max()) if self.n_items else 2

    @property
    def is_dichotomous(self) -> np.ndarray:
        """(n_items,) bool mask of dichotomous items."""
        return np.isin(self.model, DICHOTOMOUS)

    def __len__(self) -> int:
        return self.n_items

    def __repr__(self) -> str:
        models, counts = np.unique(self.model, return_counts=True)
        mix = ", ".join(f"{m}={k}" for m, k in zip(models.tolist(), counts.tolist()))
        latent = ("" if (self.latent_mean, self.latent_sd) == (0.0, 1.0)
                  else f", latent N({self.latent_mean:.4g}, {self.latent_sd:.4g}^2)")
        return f"ItemParams(n_items={self.n_items}, {mix}{latent})"

    # ---------------------------------------------------------------- helpers
    def index(self, ids: str | Iterable[Any]) -> np.ndarray:
        """Positions of ``ids`` in the bank, shape (len(ids),); KeyError if unknown."""
        wanted = np.atleast_1d(np.asarray(ids if not isinstance(ids, str) else [ids])).astype(str)
        lookup = {item: i for i, item in enumerate(self.item_ids.tolist())}
        missing = [i for i in wanted.tolist() if i not in lookup]
        if missing:
            raise KeyError(f"unknown item ids: {_ids_message(missing)}")
        return np.array([lookup[i] for i in wanted.tolist()], dtype=np.int64)

    def subset(self, idx_or_ids: Any) -> ItemParams:
        """Bank restricted to some items, in the order given.

        Parameters
        ----------
        idx_or_ids : int, slice, bool mask (n_items,), int indices, str id or str ids
        """
        sel = idx_or_ids
        if isinstance(sel, slice):
            idx = np.arange(self.n_items)[sel]
        else:
            arr = np.asarray(sel)
            if arr.dtype.kind in "USO":
                idx = self.index(arr.ravel())
            elif arr.dtype == bool:
                if arr.shape != (self.n_items,):
                    raise ValueError(f"boolean mask must have shape ({self.n_items},)")
                idx = np.flatnonzero(arr)
            else:
                idx = np.atleast_1d(arr).astype(np.int64)
        ncat = self.n_categories[idx]
        width = (int(ncat.max()) if len(idx) else 2) - 1

        def take(x: np.ndarray | None) -> np.ndarray | None:
            if x is None:
                return None
            out = x[idx]
            return out[:, :width] if out.ndim == 2 else out

        return ItemParams(
            item_ids=self.item_ids[idx], model=self.model[idx], a=self.a[idx],
            b=take(self.b), c=self.c[idx], n_categories=ncat,
            se_a=take(self.se_a), se_b=take(self.se_b), se_c=take(self.se_c),
            latent_mean=self.latent_mean, latent_sd=self.latent_sd,
        )

    def concat(self, *others: ItemParams) -> ItemParams:
        """Bank with the items of ``self`` followed by those of ``others``.

        Item ids must stay unique.  If any bank carries standard errors, banks
        without them contribute NaN.  The result keeps the latent distribution of
        ``self`` (the other items are taken to be on its scale).
        """
        return concat_banks([self, *others])

    def with_se(self, se_a: Any = None, se_b: Any = None, se_c: Any = None) -> ItemParams:
        """Copy with standard errors replaced (None keeps the current value)."""
        return ItemParams(
            item_ids=self.item_ids, model=self.model, a=self.a, b=self.b, c=self.c,
            n_categories=self.n_categories,
            se_a=self.se_a if se_a is None else se_a,
            se_b=self.se_b if se_b is None else se_b,
            se_c=self.se_c if se_c is None else se_c,
            latent_mean=self.latent_mean, latent_sd=self.latent_sd,
        )

    def replace(self, **changes: Any) -> ItemParams:
        """Copy with some fields replaced (shape-checked, not value-validated)."""
        fields = {
            name: getattr(self, name)
            for name in ("item_ids", "model", "a", "b", "c", "n_categories",
                         "se_a", "se_b", "se_c", "latent_mean", "latent_sd")
        }
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"unknown ItemParams fields: {sorted(unknown)}")
        fields.update(changes)
        return ItemParams(**fields)

    def allclose(self, other: ItemParams, rtol: float = 1e-9, atol: float = 1e-12) -> bool:
        """True if ids, models, categories match and a, b, c and the latent mean/SD
        agree numerically."""
        return (
            self.n_items == other.n_items
            and np.array_equal(self.item_ids, other.item_ids)
            and np.array_equal(self.model, other.model)
            and np.array_equal(self.n_categories, other.n_categories)
            and np.allclose(self.a, other.a, rtol=rtol, atol=atol)
            and np.allclose(self.c, other.c, rtol=rtol, atol=atol)
            and np.allclose(self.b, other.b, rtol=rtol, atol=atol, equal_nan=True)
            and np.allclose([self.latent_mean, self.latent_sd],
                            [other.latent_mean, other.latent_sd], rtol=rtol, atol=atol)
        )


def _latent(mean: Any, sd: Any) -> tuple[float, float]:
    """The latent mean and SD as floats; ValueError unless finite with sd > 0."""
    try:
        mean, sd = float(mean), float(sd)
    except (TypeError, ValueError):
        raise ValueError(f"latent_mean and latent_sd must be numbers, got {mean!r}, "
                         f"{sd!r}") from None
    if not (np.isfinite(mean) and np.isfinite(sd) and sd > 0):
        raise ValueError(f"the latent distribution needs a finite mean and an SD > 0, "
                         f"got mean {mean!r}, SD {sd!r}")
    return mean, sd


def _fit_width(mat: np.ndarray, width: int, name: str) -> np.ndarray:
    """Pad with NaN or drop all-NaN columns so that ``mat`` has ``width`` columns."""
    width = max(width, 1)
    if mat.shape[1] < width:
        pad = np.full((mat.shape[0], width - mat.shape[1]), np.nan)
        return np.concatenate([mat, pad], axis=1)
    if mat.shape[1] > width:
        if not np.all(np.isnan(mat[:, width:])):
            raise ValueError(
                f"wrong number of thresholds: {name} has values beyond column {width} "
                "(more than max(n_categories) - 1)"
            )
        return mat[:, :width]
    return mat


def concat_banks(banks: Sequence[ItemParams]) -> ItemParams:
    """Combine banks (items in order); ids must be unique across banks.

    The result has the latent distribution of the first bank: combining banks assumes
    they are on one scale (link them first, :mod:`scoring.linking`).
    """
    banks = list(banks)
    if not banks:
        raise ValueError("concat_banks needs at least one bank")
    width = max(p.max_categories for p in banks) - 1
    ids = np.concatenate([p.item_ids for p in banks])
    uniq, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(f"duplicate item ids across banks: {_ids_message(uniq[counts > 1])}")

    def stack_b(mats: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([_fit_width(m, width, "b") for m in mats], axis=0)

    def stack_se(name: str) -> np.ndarray | None:
        if all(getattr(p, name) is None for p in banks):
            return None
        parts = []
        for p in banks:
            se = getattr(p, name)
            ref = p.b if name == "se_b" else p.a
            parts.append(np.full(ref.shape, np.nan) if se is None else se)
        return stack_b(parts) if name == "se_b" else np.concatenate(parts)

    return ItemParams(
        item_ids=ids,
        model=np.concatenate([p.model for p in banks]),
        a=np.concatenate([p.a for p in banks]),
        b=stack_b([p.b for p in banks]),
        c=np.concatenate([p.c for p in banks]),
        n_categories=np.concatenate([p.n_categories for p in banks]),
        se_a=stack_se("se_a"),
        se_b=stack_se("se_b"),
        se_c=stack_se("se_c"),
        latent_mean=banks[0].latent_mean,
        latent_sd=banks[0].latent_sd,
    )
