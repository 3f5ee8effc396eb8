"""Design-based estimates: means, proportions, totals and ratios, by domain.

Two variance methods over the same estimators:

* :class:`Design` — Taylor linearisation for stratified multistage designs,
  with-replacement approximation at the PSU (first-stage) level and an optional
  finite population correction ``(1 - f_h)`` at the first stage (as R's
  ``survey::svydesign(ids=~psu, strata=~h, fpc=~N, weights=~w)`` with
  ``nest=TRUE``);
* :class:`ReplicateDesign` — replicate weights, made by :func:`jackknife`
  (JK1 without strata, JKn = delete-one-PSU within strata).

Domains (subpopulations) are estimated as domains: units outside the domain
keep their place in their PSU and stratum with a zero linearised value, so the
domain size is random and its variability enters the standard error.  Plausible
values are combined with Rubin's rules (:func:`rubin`, :func:`pv_estimate`,
:func:`proficiency_shares`).  Formulas and references: ``monitoring/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse, stats

__all__ = [
    "LONELY_PSU",
    "MAX_RSE",
    "MIN_N",
    "Design",
    "Estimates",
    "ReplicateDesign",
    "RubinResult",
    "jackknife",
    "proficiency_shares",
    "pv_estimate",
    "rubin",
    "suppress",
    "survey_mean",
    "survey_proportion",
    "survey_ratio",
    "survey_total",
]

LONELY_PSU = ("fail", "certainty", "adjust", "remove")

#: Publication rule for small cells (issue 7): an estimate from fewer respondents is
#: withheld.  Pages, exports, ``learningcity groupstats`` and the monitoring database all
#: use this one constant through :func:`suppress`.
MIN_N = 30

#: Relative standard error (se / |estimate|) above which an estimate is flagged as
#: unreliable (NCHS-style 30 % rule); :func:`suppress` can also withhold such cells.
MAX_RSE = 0.30


# ------------------------------------------------------------------ designs


def _label_name(v: Any) -> str:
    return repr(v.item() if isinstance(v, np.generic) else v)


@dataclass(frozen=True, eq=False)
class Design:
    """A stratified multistage design for Taylor-linearisation variances.

    Build with :meth:`from_arrays` or :meth:`from_frame`.

    Attributes
    ----------
    weights : (n,) final weights (> 0 for respondents)
    stratum : (n,) int stratum code 0..S-1
    psu : (n,) int PSU code 0..P-1 (PSUs nested in strata)
    psu_stratum : (P,) stratum code of each PSU
    n_psu : (S,) number of sampled PSUs per stratum
    f : (S,) first-stage sampling fraction (0 without fpc)
    strata_labels : (S,) original stratum labels
    lonely_psu : as R's ``options(survey.lonely.psu=)``: ``"fail"`` (error, R's
        default), ``"certainty"`` and ``"remove"`` (a one-PSU stratum adds no variance;
        the two coincide for the first-stage variance computed here) or ``"adjust"``
        (the lonely PSU is centred at the grand mean of PSU totals)
    ssu : (n,) int second-stage unit code 0..Q-1 (nested in PSUs), or None
    ssu_psu : (Q,) PSU of each second-stage unit
    m_ssu : (P,) number of sampled second-stage units per PSU
    f2 : (P,) second-stage sampling fraction per PSU

    With ``ssu``/``f2`` (population sizes at both stages) the variance adds R's
    second-stage term ``Σ_i f_1 (1 - f_2i) m_i/(m_i - 1) Σ_j (t_ij - t̄_i)²``
    (``svydesign(ids=~psu+ssu, fpc=~N1+N2)``); without them it is the
    with-replacement first-stage variance.
    """

    weights: np.ndarray
    stratum: np.ndarray
    psu: np.ndarray
    psu_stratum: np.ndarray
    n_psu: np.ndarray
    f: np.ndarray
    strata_labels: np.ndarray
    lonely_psu: str = "fail"
    ssu: np.ndarray | None = None
    ssu_psu: np.ndarray | None = None
    m_ssu: np.ndarray | None = None
    f2: np.ndarray | None = None

    @classmethod
    def from_arrays(
        cls,
        weights: Any,
        strata: Any = None,
        psu: Any = None,
        fpc: Any = None,
        lonely_psu: str = "fail",
        names: dict[str, str] | None = None,
        ssu: Any = None,
        fpc2: Any = None,
    ) -> Design:
        """Build a design from per-unit arrays.

        Parameters
        ----------
        weights : (n,) weights, finite and >= 0
        strata : (n,) stratum labels, or None (one stratum)
        psu : (n,) PSU ids (nested within strata), or None (each unit is a PSU)
        fpc : (n,) first-stage population size N_h (number of PSUs in the
            stratum, units if ``psu`` is None), or the sampling fraction when all
            values are <= 1; constant within a stratum.  None: no fpc.
        lonely_psu : see the class docstring
        ssu, fpc2 : (n,) second-stage unit ids (nested in PSUs) and their population
            size per PSU (or the fraction, all <= 1); both or neither, and only with
            ``psu`` and ``fpc`` (R adds the second-stage variance only then)
        """
        names = names or {}
        nw, ns, npsu, nf = (names.get(k, k) for k in ("weights", "strata", "psu", "fpc"))
        w = np.asarray(weights, dtype=float)
        if w.ndim != 1 or w.size == 0:
            raise ValueError(f"{nw}: need a non-empty one-dimensional array")
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            raise ValueError(f"{nw}: invalid weight {w[bad][0]!r} at row {int(np.argmax(bad))}")
        n = w.size
        if lonely_psu not in LONELY_PSU:
            raise ValueError(f"lonely_psu must be one of {LONELY_PSU}")
        if strata is None:
            h = np.zeros(n, dtype=np.int64)
            labels = np.array([0])
        else:
            s = pd.Series(np.asarray(strata))
            if len(s) != n:
                raise ValueError(f"{ns}: {len(s)} values for {n} weights")
            if s.isna().any():
                raise ValueError(f"{ns}: missing stratum at row {int(np.argmax(s.isna()))}")
            h, labels = pd.factorize(s, sort=True)
            labels = np.asarray(labels)
        if psu is None:
            p = np.arange(n, dtype=np.int64)
        else:
            ps = pd.Series(np.asarray(psu))
            if len(ps) != n:
                raise ValueError(f"{npsu}: {len(ps)} values for {n} weights")
            if ps.isna().any():
                raise ValueError(f"{npsu}: missing PSU at row {int(np.argmax(ps.isna()))}")
            pc, _ = pd.factorize(ps.to_numpy(), sort=True)
            key = h.astype(np.int64) * (int(pc.max()) + 1) + pc
            _, p = np.unique(key, return_inverse=True)
            p = p.reshape(-1)
        P = int(p.max()) + 1
        psu_stratum = np.zeros(P, dtype=np.int64)
        psu_stratum[p] = h
        S = labels.size
        nh = np.bincount(psu_stratum, minlength=S)
        f = np.zeros(S)
        if fpc is not None:
            fp = np.asarray(fpc, dtype=float)
            if fp.shape != (n,):
                raise ValueError(f"{nf}: need one value per row")
            if not np.isfinite(fp).all() or (fp <= 0).any():
                raise ValueError(f"{nf}: values must be positive and finite")
            lo = np.full(S, np.inf)
            hi = np.full(S, -np.inf)
            np.minimum.at(lo, h, fp)
            np.maximum.at(hi, h, fp)
            varying = np.flatnonzero(hi - lo > 1e-9 * np.maximum(hi, 1))
            if varying.size:
                raise ValueError(f"{nf}: not constant within stratum "
                                 f"{_label_name(labels[varying[0]])}")
            if (fp <= 1).all():
                f = hi.copy()
            else:
                if (fp < 1).any():
                    raise ValueError(f"{nf}: mixes sampling fractions (<= 1) and population sizes")
                over = np.flatnonzero(nh > hi + 1e-9)
                if over.size:
                    k = over[0]
                    raise ValueError(f"{nf}: stratum {_label_name(labels[k])} has {nh[k]} sampled "
                                     f"PSUs but population size {hi[k]:g}")
                f = nh / hi
        lonely = np.flatnonzero((nh == 1) & ~(f >= 1 - 1e-12))  # certainty strata are fine
        if lonely.size and lonely_psu == "fail":
            k = lonely[0]
            raise ValueError(f"stratum {_label_name(labels[k])} ({ns}) has a single PSU, so "
                             "its variance cannot be estimated (R's survey stops here too, "
                             "with its default options(survey.lonely.psu='fail')); use "
                             "lonely_psu='adjust', 'certainty' or 'remove', or merge strata")
        stage2: dict[str, Any] = {}
        if ssu is not None or fpc2 is not None:
            stage2 = _second_stage(ssu, fpc2, p, P, n, psu is not None and fpc is not None,
                                   lonely_psu, names)
        return cls(weights=w, stratum=h.astype(np.int64), psu=p.astype(np.int64),
                   psu_stratum=psu_stratum, n_psu=nh, f=f, strata_labels=labels,
                   lonely_psu=lonely_psu, **stage2)

    @classmethod
    def from_frame(
        cls,
        data: pd.DataFrame,
        weight: str,
        strata: str | None = None,
        psu: str | None = None,
        fpc: str | None = None,
        lonely_psu: str = "fail",
    ) -> Design:
        """Build a design from columns of ``data`` (errors name the column)."""
        for c in (weight, strata, psu, fpc):
            if c is not None and c not in data.columns:
                raise ValueError(f"column {c!r} not in data")
        return cls.from_arrays(
            data[weight].to_numpy(),
            None if strata is None else data[strata].to_numpy(),
            None if psu is None else data[psu].to_numpy(),
            None if fpc is None else data[fpc].to_numpy(),
            lonely_psu=lonely_psu,
            names={"weights": weight, "strata": strata or "strata", "psu": psu or "psu",
                   "fpc": fpc or "fpc"},
        )

    @property
    def n(self) -> int:
        return int(self.weights.size)

    @property
    def df(self) -> int:
        """Design degrees of freedom: #PSUs - #strata (at least 1)."""
        return max(int(self.psu_stratum.size - self.n_psu.size), 1)

    def _stratum_matrix(self) -> sparse.csr_matrix:
        P, S = self.psu_stratum.size, self.n_psu.size
        return sparse.csr_matrix((np.ones(P), (self.psu_stratum, np.arange(P))), shape=(S, P))

    def variance_of_totals(self, wz: np.ndarray, g: np.ndarray, G: int) -> np.ndarray:
        """Linearisation variance of ``Σ_i wz_i`` within each of G groups.

        ``wz`` are weighted linearised values, ``g`` the group (0..G-1, or -1 =
        contributes nothing).  Returns (G,) variances
        ``Σ_h (1-f_h) n_h/(n_h-1) Σ_i (t_hi - t̄_h)²`` with PSU totals t_hi.
        """
        P = self.psu_stratum.size
        inside = g >= 0
        key = self.psu[inside] * G + g[inside]
        T = np.bincount(key, weights=wz[inside], minlength=P * G).reshape(P, G)
        M = self._stratum_matrix()
        nh = self.n_psu.astype(float)
        mean_h = (M @ T) / nh[:, None]
        dev = T - mean_h[self.psu_stratum]
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(nh > 1, (1.0 - self.f) * nh / (nh - 1.0), 0.0)
        lonely = nh == 1
        if lonely.any() and self.lonely_psu == "adjust":
            grand = T.sum(axis=0) / P
            lp = lonely[self.psu_stratum]
            dev[lp] = T[lp] - grand
            c = np.where(lonely, 1.0 - self.f, c)
        v = (c[:, None] * np.asarray(M @ dev**2)).sum(axis=0)
        if self.ssu is not None:
            Q = self.ssu_psu.size
            T2 = np.bincount(self.ssu[inside] * G + g[inside], weights=wz[inside],
                             minlength=Q * G).reshape(Q, G)
            Mq = sparse.csr_matrix((np.ones(Q), (self.ssu_psu, np.arange(Q))), shape=(P, Q))
            m = self.m_ssu.astype(float)
            dev2 = T2 - (np.asarray(Mq @ T2) / m[:, None])[self.ssu_psu]
            with np.errstate(divide="ignore", invalid="ignore"):
                c2 = np.where(m > 1, self.f[self.psu_stratum] * (1.0 - self.f2) * m / (m - 1.0),
                              0.0)
            v = v + (c2[:, None] * np.asarray(Mq @ dev2**2)).sum(axis=0)
        return v


def _second_stage(ssu: Any, fpc2: Any, p: np.ndarray, P: int, n: int, have_stage1: bool,
                  lonely_psu: str, names: dict[str, str]) -> dict[str, Any]:
    """Codes and fractions of the second stage (see :meth:`Design.from_arrays`)."""
    nss, nf2 = names.get("ssu", "ssu"), names.get("fpc2", "fpc2")
    if ssu is None or fpc2 is None:
        raise ValueError(f"{nss}/{nf2}: give the second-stage units and their population "
                         "sizes together")
    if not have_stage1:
        raise ValueError(f"{nss}: a second stage needs PSUs and a first-stage fpc (without "
                         "them R, and this, use the with-replacement first-stage variance)")
    q = pd.Series(np.asarray(ssu))
    if len(q) != n or q.isna().any():
        raise ValueError(f"{nss}: need one second-stage unit per row, none missing")
    qc, _ = pd.factorize(q.to_numpy(), sort=True)
    _, ssu_code = np.unique(p.astype(np.int64) * (int(qc.max()) + 1) + qc, return_inverse=True)
    ssu_code = ssu_code.reshape(-1)
    Q = int(ssu_code.max()) + 1
    ssu_psu = np.zeros(Q, dtype=np.int64)
    ssu_psu[ssu_code] = p
    m = np.bincount(ssu_psu, minlength=P)
    M = np.asarray(fpc2, dtype=float)
    if M.shape != (n,) or not np.isfinite(M).all() or (M <= 0).any():
        raise ValueError(f"{nf2}: need one positive value per row")
    lo = np.full(P, np.inf)
    hi = np.full(P, -np.inf)
    np.minimum.at(lo, p, M)
    np.maximum.at(hi, p, M)
    if (hi - lo > 1e-9 * np.maximum(hi, 1)).any():
        raise ValueError(f"{nf2}: not constant within a PSU (first-stage unit "
                         f"{int(np.argmax(hi - lo > 1e-9 * np.maximum(hi, 1)))})")
    if (M <= 1).all():
        f2 = hi.copy()
    else:
        if (M < 1).any():
            raise ValueError(f"{nf2}: mixes sampling fractions (<= 1) and population sizes")
        if (m > hi + 1e-9).any():
            raise ValueError(f"{nf2}: a PSU has more sampled second-stage units than its "
                             "population size")
        f2 = m / hi
    lonely = (m == 1) & (f2 < 1 - 1e-12)
    if lonely.any() and lonely_psu == "fail":
        raise ValueError(f"a PSU ({names.get('psu', 'psu')}) has a single sampled "
                         "second-stage unit but more in its population; use "
                         "lonely_psu='certainty' or "
                         "'remove' (no second-stage variance from it)")
    return {"ssu": ssu_code.astype(np.int64), "ssu_psu": ssu_psu, "m_ssu": m, "f2": f2}


@dataclass(frozen=True, eq=False)
class ReplicateDesign:
    """Replicate weights with the replicate variance formula
    ``v = scale * Σ_r rscales_r (θ_r - c)²``, ``c = θ̂`` (``mse=True``) or the mean
    of the replicate estimates.

    Attributes
    ----------
    weights : (n,) full-sample weights
    replicates : (n, R) replicate weights
    scale : float
    rscales : (R,)
    mse : bool
    df : design degrees of freedom (#PSUs - #strata for the jackknife)
    kind : e.g. ``"JK1"``, ``"JKn"``
    base : for the delete-one-PSU jackknife, the :class:`Design` it was made from;
        estimates then use PSU totals (O(#PSUs x #domains)) instead of the dense
        ``replicates`` matrix, which :func:`jackknife` leaves as None with
        ``dense=False``
    """

    weights: np.ndarray
    replicates: np.ndarray | None
    scale: float
    rscales: np.ndarray
    mse: bool
    df: int
    kind: str
    base: Design | None = None

    @property
    def n(self) -> int:
        return int(self.weights.size)


def jackknife(design: Design, mse: bool = True, dense: bool = True) -> ReplicateDesign:
    """Delete-one-PSU jackknife replicate weights.

    Replicate r deletes PSU r (weight 0) and multiplies the weights of the other
    PSUs of its stratum h by ``n_h / (n_h - 1)``; other strata are unchanged.
    ``rscales_r = (1 - f_h)(n_h - 1)/n_h``.  With a single stratum this is JK1
    (``(n-1)/n``), otherwise JKn (R's ``as.svrepdesign(type="JK1"|"JKn")``).  A
    stratum with a single PSU cannot be jackknifed (ValueError naming it).

    ``dense=False`` does not build the (n, #PSUs) replicate-weight matrix: the
    estimators compute the same replicate estimates from PSU totals, which is what
    makes the jackknife usable for a million respondents.
    """
    nh = design.n_psu
    lonely = nh < 2
    certain = design.f >= 1 - 1e-12
    bad = np.flatnonzero(lonely & ~certain & (design.lonely_psu not in ("certainty", "remove")))
    if bad.size:
        raise ValueError(f"jackknife: stratum {_label_name(design.strata_labels[bad[0]])} "
                         "has a single PSU (use lonely_psu='certainty' or 'remove', as R's "
                         "as.svrepdesign, or Taylor linearisation)")
    P = design.psu_stratum.size
    rep = None
    if dense:
        h_unit = design.stratum
        same = h_unit[:, None] == design.psu_stratum[None, :]
        with np.errstate(divide="ignore"):
            mult = np.where(nh > 1, nh / (nh - 1.0), 1.0)
        factor = np.where(same, mult[h_unit][:, None], 1.0)
        rows = np.flatnonzero(~lonely[h_unit])
        factor[rows, design.psu[rows]] = 0.0   # a lonely PSU is never deleted (rscale 0)
        rep = design.weights[:, None] * factor
    hs = design.psu_stratum
    rscales = (1.0 - design.f[hs]) * (nh[hs] - 1.0) / nh[hs]
    kind = "JK1" if nh.size == 1 else "JKn"
    return ReplicateDesign(weights=design.weights, replicates=rep, scale=1.0, rscales=rscales,
                           mse=mse, df=max(P - nh.size, 1), kind=kind, base=design)


def _jackknife_totals(base: Design, wv: np.ndarray, g: np.ndarray, G: int) -> np.ndarray:
    """Replicate totals (#PSUs, G) of ``Σ wv`` per group for the delete-one-PSU jackknife.

    With PSU totals t_r and stratum totals S_h, replicate r (in stratum h) is
    ``A + S_h/(n_h-1) - n_h/(n_h-1) t_r`` -- exactly the dense replicate weights; the
    PSU of a one-PSU stratum (certainty) is not deleted: its replicate is ``A``.
    """
    P = base.psu_stratum.size
    inside = g >= 0
    T = np.bincount(base.psu[inside] * G + g[inside], weights=wv[inside],
                    minlength=P * G).reshape(P, G)
    S = np.asarray(base._stratum_matrix() @ T)
    nh = base.n_psu.astype(float)[base.psu_stratum][:, None]
    A = T.sum(axis=0)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        rep = A + S[base.psu_stratum] / (nh - 1.0) - nh / (nh - 1.0) * T
    return np.where(nh > 1, rep, A)


# ----------------------------------------------------------- the estimators


@dataclass(frozen=True)
class Estimates:
    """A table of estimates, one row per domain.

    ``table`` columns: the domain columns (none for the whole population),
    ``estimate, se, ci_low, ci_high, df, n, deff``.  ``stat`` is the statistic,
    ``method`` ``"taylor"`` or the replicate kind, ``ci`` ``"t"`` or ``"normal"``.
    """

    table: pd.DataFrame
    stat: str
    method: str
    ci: str

    @property
    def estimate(self) -> np.ndarray:
        return self.table["estimate"].to_numpy()

    @property
    def se(self) -> np.ndarray:
        return self.table["se"].to_numpy()


def _groups(by: Any, n: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Group codes (−1 = in no domain) and a DataFrame of the group labels (sorted)."""
    if by is None:
        return np.zeros(n, dtype=np.int64), pd.DataFrame(index=range(1))
    if isinstance(by, pd.DataFrame):
        cols = {str(c): by[c].to_numpy() for c in by.columns}
    elif isinstance(by, pd.Series):
        cols = {by.name if by.name is not None else "domain": by.to_numpy()}
    else:
        cols = {"domain": np.asarray(by)}
    codes, uniqs = [], []
    miss = np.zeros(n, dtype=bool)
    for name, v in cols.items():
        if len(v) != n:
            raise ValueError(f"by: column {name!r} has {len(v)} rows for {n} units")
        c, u = pd.factorize(v, sort=True)
        codes.append(c)
        uniqs.append(u)
        miss |= c < 0
    if len(codes) == 1:
        g = codes[0].astype(np.int64)
        present = np.unique(g[~miss])
        remap = np.full(len(uniqs[0]), -1, dtype=np.int64)
        remap[present] = np.arange(present.size)
        g = np.where(miss, -1, remap[np.where(miss, 0, g)])
        name = next(iter(cols))
        return g, pd.DataFrame({name: np.asarray(uniqs[0])[present]})
    sizes = [len(u) for u in uniqs]
    flat = np.ravel_multi_index([np.where(miss, 0, c) for c in codes], sizes)
    present, inv = np.unique(flat[~miss], return_inverse=True)
    g = np.full(n, -1, dtype=np.int64)
    g[~miss] = inv
    parts = np.unravel_index(present, sizes)
    labels = pd.DataFrame({name: np.asarray(u)[k] for (name, u), k in
                           zip(zip(cols, uniqs), parts)})
    return g, labels


def _values(x: Any, n: int, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.shape != (n,):
        raise ValueError(f"{name}: need {n} values, got shape {a.shape}")
    return a


def _core(
    design: Design | ReplicateDesign,
    a: np.ndarray,
    b: np.ndarray | None,
    g: np.ndarray,
    G: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Estimates ``Σwa / Σwb`` (or ``Σwa`` when b is None) per group and variances."""
    w = design.weights
    inside = g >= 0
    gi = np.where(inside, g, 0)
    A = np.bincount(gi[inside], weights=(w * a)[inside], minlength=G)
    if b is not None:
        B = np.bincount(gi[inside], weights=(w * b)[inside], minlength=G)
        with np.errstate(divide="ignore", invalid="ignore"):
            est = A / B
    else:
        est = A
    if isinstance(design, Design):
        if b is None:
            z = a
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(inside, (a - est[gi] * b) / B[gi], 0.0)
        var = design.variance_of_totals(w * z, g, G)
    else:
        if design.base is not None:
            Ar = _jackknife_totals(design.base, w * a, g, G).T
            Br = None if b is None else _jackknife_totals(design.base, w * b, g, G).T
        else:
            ind = sparse.csr_matrix((np.ones(int(inside.sum())),
                                     (gi[inside], np.flatnonzero(inside))), shape=(G, w.size))
            Ar = np.asarray(ind @ (design.replicates * a[:, None]))
            Br = None if b is None else np.asarray(ind @ (design.replicates * b[:, None]))
        if Br is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                er = Ar / Br
        else:
            er = Ar
        centre = est[:, None] if design.mse else er.mean(axis=1, keepdims=True)
        var = design.scale * ((er - centre) ** 2 @ design.rscales)
    return est, var


def _deff_srs(w: np.ndarray, u: np.ndarray, g: np.ndarray, G: int, total: bool,
              est_n: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Variance under SRS without replacement of the same size (R's ``deff=TRUE``):
    ``s²_w (1/n_d - 1/N̂_d)``, times ``N̂_d²`` for totals."""
    inside = g >= 0
    gi = g[inside]
    s2 = np.bincount(gi, weights=(w * u**2)[inside], minlength=G)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = s2 / est_n * counts / (counts - 1.0)
        v = s2 * (1.0 / counts - 1.0 / est_n)
    return v * est_n**2 if total else v


def _estimate(
    design: Design | ReplicateDesign,
    stat: str,
    y: Any,
    x: Any = None,
    by: Any = None,
    level: Any = None,
    ci: str = "t",
    conf: float = 0.95,
) -> Estimates:
    if ci not in ("t", "normal"):
        raise ValueError("ci must be 't' or 'normal'")
    n = design.n
    w = design.weights
    g, labels = _groups(by, n)
    G = len(labels)
    if stat == "proportion":
        raw = np.asarray(y)
        if raw.shape != (n,):
            raise ValueError(f"y: need {n} values")
        ok = ~pd.isna(raw)
        if level is None:
            yv = np.zeros(n)
            yv[ok] = raw[ok].astype(float)
            if not np.isin(yv[ok], (0.0, 1.0)).all():
                raise ValueError("proportion: y must be 0/1 (or give level=)")
        else:
            yv = np.where(ok, raw == level, 0.0).astype(float)
    else:
        yv = _values(y, n, "y")
        ok = np.isfinite(yv)
    xv = None
    if x is not None:
        xv = _values(x, n, "x")
        ok &= np.isfinite(xv)
    # missing values: the unit is outside the domain (keeps its PSU/stratum)
    g = np.where(ok, g, -1)
    a = np.where(ok, yv, 0.0)
    d = (g >= 0).astype(float)
    if stat == "total":
        b = None
    elif stat == "ratio":
        b = np.where(ok, xv, 0.0)
    else:
        b = d
    est, var = _core(design, a, b, g, G)
    inside = g >= 0
    counts = np.bincount(g[inside], weights=(w[inside] > 0).astype(float), minlength=G)
    Nd = np.bincount(g[inside], weights=w[inside], minlength=G)
    gi = np.where(inside, g, 0)
    if stat == "total":
        with np.errstate(divide="ignore", invalid="ignore"):
            ybar = np.bincount(g[inside], weights=(w * a)[inside], minlength=G) / Nd
        u = np.where(inside, a - ybar[gi], 0.0)
        vsrs = _deff_srs(w, u, g, G, True, Nd, counts)
    else:
        Bd = np.bincount(g[inside], weights=(w * b)[inside], minlength=G)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(inside, (a - est[gi] * b) / (Bd[gi] / Nd[gi]), 0.0)
        vsrs = _deff_srs(w, u, g, G, False, Nd, counts)
    se = np.sqrt(np.maximum(var, 0.0))
    df = design.df
    q = stats.t.ppf(0.5 + conf / 2, df) if ci == "t" else stats.norm.ppf(0.5 + conf / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        deff = var / vsrs
    cols = {c: labels[c].to_numpy() for c in labels.columns}
    cols.update(estimate=est, se=se, ci_low=est - q * se, ci_high=est + q * se,
                df=np.full(G, float(df) if ci == "t" else np.inf),
                n=counts.astype(np.int64), deff=deff)
    t = pd.DataFrame(cols)
    method = "taylor" if isinstance(design, Design) else design.kind
    return Estimates(table=t, stat=stat, method=method, ci=ci)


def survey_mean(design: Design | ReplicateDesign, y: Any, by: Any = None, ci: str = "t",
                conf: float = 0.95) -> Estimates:
    """Weighted mean ``Σ w y / Σ w`` (a ratio of totals), overall or by domain.

    Parameters
    ----------
    design : Design (Taylor) or ReplicateDesign (replicate variance)
    y : (n,) values; NaN = missing (the unit is treated as outside every
        domain, as ``na.rm=TRUE`` in R's survey)
    by : None, an array/Series of domain labels, or a DataFrame of several
        (crossed); rows with a missing label are in no domain but stay in the
        design
    ci : ``"t"`` (design df = #PSUs - #strata) or ``"normal"``
    conf : confidence level

    Returns
    -------
    Estimates; linearised variable ``z = d (y - ȳ_d) / N̂_d``.
    """
    return _estimate(design, "mean", y, by=by, ci=ci, conf=conf)


def survey_proportion(design: Design | ReplicateDesign, y: Any, level: Any = None,
                      by: Any = None, ci: str = "t", conf: float = 0.95) -> Estimates:
    """Weighted share of ``y == level`` (or of a 0/1 ``y``); Wald interval."""
    return _estimate(design, "proportion", y, by=by, level=level, ci=ci, conf=conf)


def survey_total(design: Design | ReplicateDesign, y: Any, by: Any = None, ci: str = "t",
                 conf: float = 0.95) -> Estimates:
    """Weighted total ``Σ w d y`` overall or by domain (linearised variable ``d y``)."""
    return _estimate(design, "total", y, by=by, ci=ci, conf=conf)


def survey_ratio(design: Design | ReplicateDesign, y: Any, x: Any, by: Any = None,
                 ci: str = "t", conf: float = 0.95) -> Estimates:
    """Ratio ``R = Σ w y / Σ w x``; linearised variable ``z = (y - R x) / X̂``."""
    return _estimate(design, "ratio", y, x=x, by=by, ci=ci, conf=conf)


# ------------------------------------------------------- plausible values


@dataclass(frozen=True)
class RubinResult:
    """Rubin's rules over M imputations (plausible values), per column.

    Attributes
    ----------
    estimate : mean of the M point estimates
    within : mean sampling variance ``Ū``
    between : between-imputation variance ``B`` (ddof=1)
    total : ``T = Ū + (1 + 1/M) B``
    se : ``sqrt(T)``
    df : Rubin (1987) df ``(M-1)(1 + 1/r)²``, or Barnard & Rubin (1999) df
        when ``df_complete`` is given
    fmi : fraction of missing information ``λ = (1 + 1/M) B / T``
    m : M
    """

    estimate: np.ndarray
    within: np.ndarray
    between: np.ndarray
    total: np.ndarray
    se: np.ndarray
    df: np.ndarray
    fmi: np.ndarray
    m: int


def rubin(estimates: Any, variances: Any, df_complete: float | None = None) -> RubinResult:
    """Combine M estimates and their sampling variances with Rubin's rules.

    Parameters
    ----------
    estimates, variances : (M,) or (M, K)
    df_complete : complete-data df ν_com (e.g. the design df); when given, the
        Barnard-Rubin small-sample df ``ν = (1/ν_m + 1/ν_obs)⁻¹`` with
        ``ν_m = (M-1)/λ²`` and ``ν_obs = (ν_com+1)/(ν_com+3) ν_com (1-λ)``.
    """
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    if q.shape != u.shape:
        raise ValueError("estimates and variances must have the same shape")
    if q.ndim not in (1, 2):
        raise ValueError("estimates must be (M,) or (M, K)")
    M = q.shape[0]
    if M < 2:
        raise ValueError("Rubin's rules need at least two plausible values")
    qbar = q.mean(axis=0)
    ubar = u.mean(axis=0)
    b = q.var(axis=0, ddof=1)
    tot = ubar + (1.0 + 1.0 / M) * b
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(tot > 0, (1.0 + 1.0 / M) * b / tot, 0.0)
        nu_m = np.where(lam > 0, (M - 1) / lam**2, np.inf)
        if df_complete is None:
            df = nu_m
        else:
            nc = float(df_complete)
            nu_obs = (nc + 1.0) / (nc + 3.0) * nc * (1.0 - lam)
            df = np.where(np.isinf(nu_m), nu_obs, 1.0 / (1.0 / nu_m + 1.0 / nu_obs))
    return RubinResult(estimate=qbar, within=ubar, between=b, total=tot, se=np.sqrt(tot),
                       df=df, fmi=lam, m=M)


def _pv_matrix(pvs: Any, n: int) -> np.ndarray:
    p = np.asarray(pvs, dtype=float)
    if p.ndim != 2 or p.shape[0] != n:
        raise ValueError(f"pvs: need an (n={n}, M) array, got shape {p.shape}")
    if p.shape[1] < 2:
        raise ValueError("pvs: need at least two plausible values")
    return p


def _rubin_table(labels: pd.DataFrame, runs: list[Estimates], df_complete: float,
                 conf: float) -> pd.DataFrame:
    est = np.vstack([r.table["estimate"].to_numpy() for r in runs])
    var = np.vstack([r.table["se"].to_numpy() ** 2 for r in runs])
    res = rubin(est, var, df_complete=df_complete)
    q = stats.t.ppf(0.5 + conf / 2, res.df)
    t = labels.copy()
    t["estimate"] = res.estimate
    t["se"] = res.se
    t["ci_low"] = res.estimate - q * res.se
    t["ci_high"] = res.estimate + q * res.se
    t["df"] = res.df
    t["n"] = runs[0].table["n"].to_numpy()
    t["within"] = res.within
    t["between"] = res.between
    t["fmi"] = res.fmi
    return t


def pv_estimate(design: Design | ReplicateDesign, pvs: Any, stat: str = "mean", by: Any = None,
                conf: float = 0.95) -> Estimates:
    """Mean (or total) of a latent variable from M plausible values.

    Each PV column is estimated with the design's variance method; the M
    results are combined with :func:`rubin` (Barnard-Rubin df with the design
    df as complete-data df).  Table columns add ``within, between, fmi``.
    """
    if stat not in ("mean", "total"):
        raise ValueError("stat must be 'mean' or 'total'")
    p = _pv_matrix(pvs, design.n)
    runs = [_estimate(design, stat, p[:, m], by=by) for m in range(p.shape[1])]
    labels = runs[0].table.drop(columns=["estimate", "se", "ci_low", "ci_high", "df", "n", "deff"])
    t = _rubin_table(labels, runs, design.df, conf)
    method = "taylor" if isinstance(design, Design) else design.kind
    return Estimates(table=t, stat=f"pv_{stat}", method=method, ci="t")


def proficiency_shares(
    design: Design | ReplicateDesign,
    pvs: Any,
    cuts: Any,
    labels: Any = None,
    by: Any = None,
    conf: float = 0.95,
) -> Estimates:
    """Shares of the population in proficiency levels, from plausible values.

    Level k (0-based) holds ``cuts[k-1] <= θ < cuts[k]`` (level 0 below the
    first cut, the last level at or above the last cut).  Each level's share is
    estimated per PV as a proportion and combined with :func:`rubin`.

    Returns
    -------
    Estimates whose table has the domain columns, ``level`` and the estimate
    columns; shares within a domain sum to 1.
    """
    c = np.asarray(cuts, dtype=float)
    if c.ndim != 1 or c.size == 0 or np.any(np.diff(c) <= 0):
        raise ValueError("cuts must be a non-empty increasing sequence")
    L = c.size + 1
    names = list(range(L)) if labels is None else list(labels)
    if len(names) != L:
        raise ValueError(f"labels: need {L} level labels for {c.size} cut points")
    p = _pv_matrix(pvs, design.n)
    lev = np.digitize(p, c, right=False)
    lev = np.where(np.isnan(p), -1, lev)
    parts = []
    for k in range(L):
        runs = []
        for m in range(p.shape[1]):
            yk = np.where(lev[:, m] < 0, np.nan, (lev[:, m] == k).astype(float))
            runs.append(_estimate(design, "proportion", yk, by=by))
        lab = runs[0].table.drop(columns=["estimate", "se", "ci_low", "ci_high", "df", "n",
                                          "deff"])
        lab = lab.copy()
        lab["level"] = names[k]
        parts.append(_rubin_table(lab, runs, design.df, conf))
    t = pd.concat(parts, ignore_index=True)
    dom = [col for col in t.columns if col not in ("level", "estimate", "se", "ci_low",
                                                   "ci_high", "df", "n", "within", "between",
                                                   "fmi")]
    if dom:
        t = t.sort_values(dom, kind="stable").reset_index(drop=True)
    method = "taylor" if isinstance(design, Design) else design.kind
    return Estimates(table=t, stat="pv_level_share", method=method, ci="t")


# ------------------------------------------------------------- suppression


def suppress(
    table: pd.DataFrame | Estimates,
    min_n: int = MIN_N,
    max_rse: float | None = MAX_RSE,
    rse_action: str = "flag",
) -> pd.DataFrame:
    """Apply the publication rule for small cells to a table of estimates.

    This is the one rule for pages, exports, ``learningcity groupstats`` and the
    monitoring database, as statistical offices publish:

    * ``n < min_n`` (respondents in the cell, default :data:`MIN_N` = 30): the cell
      is withheld -- ``estimate, se, ci_low, ci_high, deff`` (and PV columns) become
      NaN, ``suppressed=True``, ``reason="small_n"``; ``n`` itself stays.
    * relative standard error ``se/|estimate|`` above ``max_rse`` (default
      :data:`MAX_RSE` = 0.30; None turns the check off), or not computable (an
      estimate of 0): with ``rse_action="flag"`` the estimate is kept and marked
      ``unreliable=True``, ``reason="high_rse"``; with ``"suppress"`` it is withheld
      like a small cell.

    Parameters
    ----------
    table : an :class:`Estimates` or its table; needs ``n`` (and ``estimate``, ``se``
        when ``max_rse`` is given)

    Returns
    -------
    A new DataFrame (the input is not changed) with ``suppressed``, ``unreliable``
    (when ``max_rse`` is given) and ``reason`` ("" when published as is).
    """
    if rse_action not in ("flag", "suppress"):
        raise ValueError("rse_action must be 'flag' or 'suppress'")
    if int(min_n) < 0:
        raise ValueError("min_n must be >= 0")
    if max_rse is not None and not float(max_rse) > 0:
        raise ValueError("max_rse must be positive (or None)")
    t = (table.table if isinstance(table, Estimates) else table).copy()
    if "n" not in t.columns:
        raise ValueError("table has no 'n' column (respondents per cell)")
    small = t["n"].to_numpy() < int(min_n)
    unreliable = np.zeros(len(t), dtype=bool)
    if max_rse is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            rse = t["se"].to_numpy(dtype=float) / np.abs(t["estimate"].to_numpy(dtype=float))
        unreliable = ~(rse <= float(max_rse))
    hide = small | (unreliable if rse_action == "suppress" else False)
    cols = [c for c in ("estimate", "se", "ci_low", "ci_high", "deff", "within", "between",
                        "fmi") if c in t.columns]
    for c in cols:
        t[c] = t[c].astype(float)
        t.loc[hide, c] = np.nan
    t["suppressed"] = hide
    if max_rse is not None:
        t["unreliable"] = unreliable & ~small
    t["reason"] = np.where(small, "small_n", np.where(unreliable, "high_rse", ""))
    return t
