"""Survey designs: the stratified multistage :class:`Design` (Taylor linearisation) and
replicate designs (:func:`jackknife`), with the variance of PSU totals that every
estimator uses.  A Design may carry calibration steps (built by
:mod:`monitoring.stats.calibration`); its variance is then R's ``svyrecvar`` with
``postStrata``, and lonely PSUs follow R's ``survey.lonely.psu`` options exactly.
Formulas and references: ``monitoring/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = ["LONELY_PSU", "Design", "LinearCalibration", "PostStratification", "Raking",
           "ReplicateDesign", "jackknife"]

LONELY_PSU = ("fail", "certainty", "adjust", "remove", "average")

def _label_name(v: Any) -> str:
    return repr(v.item() if isinstance(v, np.generic) else v)


def _indicator(codes: np.ndarray, K: int, values: np.ndarray | None = None) -> sparse.csr_matrix:
    """(K, n) sparse matrix with ``values`` (default 1) at (codes_i, i)."""
    n = codes.size
    v = np.ones(n) if values is None else values
    return sparse.csr_matrix((v, (codes, np.arange(n))), shape=(K, n))


class _Residuals:
    """R's ``x`` in ``svyrecvar`` after its loop over ``postStrata``, kept in pieces.

    ``x`` is (n, G): wz_i in column g_i, zero elsewhere (and in every column for g_i = -1).
    Each calibration step subtracts a fitted part ``D @ M``: D (n, C) sparse (the step's
    weights on its cell indicators or regressors), M (C, G) the cell means or coefficients.
    A sum of x over any partition A (PSUs, SSUs, cells; a sparse (K, n) matrix) is then
    ``A @ X - Σ_k (A @ D_k) @ M_k``: no dense (n, G) matrix is formed.  Units outside a
    domain have x = 0 but a fitted part, which is R's (and the correct) answer.
    """

    def __init__(self, wz: np.ndarray, g: np.ndarray, G: int) -> None:
        inside = g >= 0
        self.G = G
        self.wz, self.g, self.inside = wz, g, inside
        self.X = sparse.csr_matrix((wz[inside], (np.flatnonzero(inside), g[inside])),
                                   shape=(wz.size, G))
        self.terms: list[list[Any]] = []

    def sums(self, A: sparse.csr_matrix) -> np.ndarray:
        out = (A @ self.X).toarray()
        for D, M in self.terms:
            out -= (A @ D) @ M
        return out

    def unit_sums(self, codes: np.ndarray, K: int) -> np.ndarray:
        """``sums`` over the partition ``codes`` (K parts), the raw part by bincount."""
        i = self.inside
        out = np.bincount(codes[i] * self.G + self.g[i], weights=self.wz[i],
                          minlength=K * self.G).reshape(K, self.G)
        if self.terms:
            A = _indicator(codes, K)
            for D, M in self.terms:
                out -= (A @ D) @ M
        return out


@dataclass(frozen=True, eq=False)
class PostStratification:
    """A post-stratification step, as R's ``postStratify`` records it for the variance.

    Attributes
    ----------
    cells : (n,) int post-stratum code 0..C-1
    weights : (n,) weights after the step (R's ``attr(, "weights")``)
    oldweights : (n,) weights before it (R's ``attr(, "oldweights")``)
    """

    cells: np.ndarray
    weights: np.ndarray
    oldweights: np.ndarray

    @cached_property
    def _operators(self) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        C = int(self.cells.max()) + 1
        psw, oldw = self.weights, self.oldweights
        ratio = np.divide(oldw, psw, out=np.zeros_like(psw), where=psw > 0)
        sw = np.bincount(self.cells, weights=oldw, minlength=C)
        share = np.divide(ratio, sw[self.cells], out=np.zeros_like(psw),
                          where=sw[self.cells] > 0)
        return _indicator(self.cells, C, share), _indicator(self.cells, C, psw).T.tocsr()

    def residualise(self, r: _Residuals) -> None:
        """R's "ordinary post-stratification": ``x - psw * Σ_c(x oldw/psw) / Σ_c oldw``.

        A unit with zero weight before and after has no fitted part (R gives it weight 1
        there, to avoid 0/0; such units are not in the sample here).
        """
        A, D = self._operators
        r.terms.append([D, r.sums(A)])


@dataclass(frozen=True, eq=False)
class Raking:
    """A raking step, as R's ``rake`` records it for the variance.

    Attributes
    ----------
    margins : per margin, (n,) int category codes
    weights : per margin, (n,) the weights after that margin's post-stratification in the
        last cycle (at convergence, the final weights)
    rounds : rounds of backfitting over the margins (R's ``svyrecvar``: 10)
    """

    margins: tuple[np.ndarray, ...]
    weights: tuple[np.ndarray, ...]
    rounds: int = 10

    @cached_property
    def _operators(self) -> list[tuple[sparse.csr_matrix, sparse.csr_matrix]]:
        ops = []
        for codes, psw in zip(self.margins, self.weights):
            C = int(codes.max()) + 1
            pos = psw > 0
            count = np.bincount(codes, weights=pos.astype(float), minlength=C)
            inv = np.divide(1.0, psw, out=np.zeros_like(psw), where=pos)
            share = np.divide(inv, count[codes], out=np.zeros_like(psw),
                              where=count[codes] > 0)
            ops.append((_indicator(codes, C, share), _indicator(codes, C, psw).T.tocsr()))
        return ops

    def residualise(self, r: _Residuals) -> None:
        """R's "raking" branch: ``rounds`` times, for each margin,
        ``x <- x - psw * ave(x / psw, margin)`` (the plain mean of x/psw in the category)."""
        ops = self._operators
        # the sums of x before this step, and the (small) cell-by-cell cross products of
        # the margins, once: each round is then dense (C x G) arithmetic only
        base = [r.sums(A) for A, _ in ops]
        cross = [[(A @ D).toarray() for _, D in ops] for A, _ in ops]
        M = [np.zeros((A.shape[0], r.G)) for A, _ in ops]
        for _ in range(self.rounds):
            for j in range(len(ops)):
                M[j] = M[j] + base[j] - sum(cross[j][k] @ M[k] for k in range(len(ops)))
        r.terms.extend([D, Mj] for (_, D), Mj in zip(ops, M))


@dataclass(frozen=True, eq=False)
class LinearCalibration:
    """A linear (GREG) calibration at stage 0, as R's ``calibrate(calfun="linear")``
    records it for the variance.

    Attributes
    ----------
    X : (n, p) model matrix of the calibration variables
    oldweights : (n,) weights before the step
    g : (n,) g-weights (weights after = g * oldweights)
    """

    X: np.ndarray
    oldweights: np.ndarray
    g: np.ndarray

    @cached_property
    def _operators(self) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        root = np.sqrt(self.oldweights)
        Z = self.X * root[:, None]
        w = self.g * root
        inv = np.divide(1.0, w, out=np.zeros_like(w), where=w != 0)
        # pinv(Z) u are the least-squares coefficients of u on Z, as qr.resid's projection
        # (also when Z is rank deficient)
        return (sparse.csr_matrix(np.linalg.pinv(Z) * inv[None, :]),
                sparse.csr_matrix(Z * w[:, None]))

    def residualise(self, r: _Residuals) -> None:
        """R's stage-0 ``greg_calibration`` branch: ``x <- qr.resid(qr(X sqrt(ww)), x/w) * w``
        with ``w = g sqrt(ww)``."""
        A, D = self._operators
        r.terms.append([D, r.sums(A)])


def _stage_variance(T: np.ndarray, parent: np.ndarray, n_in: np.ndarray, fcorr: np.ndarray,
                    nsub: np.ndarray | None, lonely_psu: str,
                    domain_lonely: bool) -> np.ndarray:
    """(K, G) variance contributions of the groups of one stage, as R's ``onestrat``.

    ``T`` (U, G): totals of the sampled units (PSUs in strata, or SSUs in PSUs);
    ``parent`` (U,): their group 0..K-1; ``n_in`` (K,): units sampled per group;
    ``fcorr`` (K,): 1 - sampling fraction; ``nsub`` (K, G): units of the group with rows
    in the domain (needed for "adjust" and "average").  NaN marks R's NA: a group whose
    variance "average" replaces by the mean of the others.
    """
    K = n_in.size
    Mk = _indicator(parent, K)
    nf = n_in.astype(float)
    dev = T - (np.asarray(Mk @ T) / nf[:, None])[parent]
    lonely = n_in == 1
    if lonely_psu == "adjust":
        # R: the lonely unit (or the one unit of a domain, with survey.adjust.domain.lonely)
        # is centred at zero -- the population mean of a linearised value -- not at its own
        raw = (nsub <= 1) & (lonely[:, None] | domain_lonely)
        dev = np.where(raw[parent], T, dev)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(n_in > 1, fcorr * nf / (nf - 1.0), fcorr)
    certain = fcorr < 1e-7
    scale = np.where(certain, 0.0, scale)
    v = scale[:, None] * np.asarray(Mk @ dev**2)
    if lonely_psu == "average":
        na = lonely[:, None] | (domain_lonely & (nsub == 1) & ~lonely[:, None])
        v = np.where(na & (nsub > 0) & ~certain[:, None], np.nan, v)
    return v


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
    lonely_psu : a stratum with one PSU, as R's ``options(survey.lonely.psu=)``:
        ``"fail"`` (error, R's default), ``"certainty"`` and ``"remove"`` (the stratum adds
        no variance; R treats the two alike in the Taylor and the jackknife variance),
        ``"adjust"`` (the lonely PSU's total is centred at zero, the population mean of a
        linearised value; scale 1 - f) or ``"average"`` (the stratum is left out and the
        sum over the others is scaled by #strata / #strata with a variance)
    ssu : (n,) int second-stage unit code 0..Q-1 (nested in PSUs), or None
    ssu_psu : (Q,) PSU of each second-stage unit
    m_ssu : (P,) number of sampled second-stage units per PSU
    f2 : (P,) second-stage sampling fraction per PSU
    calibration : the calibration steps (:class:`PostStratification`, :class:`Raking`,
        :class:`LinearCalibration`), in order, that made ``weights``; the variance uses the
        residuals of the linearised values after each (R's ``svyrecvar`` with
        ``postStrata``).  Built by :mod:`monitoring.stats.calibration`.
    adjust_domain_lonely : R's ``options(survey.adjust.domain.lonely=TRUE)``: a stratum
        where a domain has units in one PSU only is treated as lonely for that domain
        (under ``"adjust"`` and ``"average"``; the other options are unaffected).  As in
        R, this does not apply to calibrated designs (their domains keep every row).

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
    calibration: tuple[PostStratification | Raking | LinearCalibration, ...] = ()
    adjust_domain_lonely: bool = False

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
        adjust_domain_lonely: bool = False,
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
        lonely_psu, adjust_domain_lonely : see the class docstring
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
                   lonely_psu=lonely_psu, adjust_domain_lonely=bool(adjust_domain_lonely),
                   **stage2)

    @classmethod
    def from_frame(
        cls,
        data: pd.DataFrame,
        weight: str,
        strata: str | None = None,
        psu: str | None = None,
        fpc: str | None = None,
        lonely_psu: str = "fail",
        adjust_domain_lonely: bool = False,
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
            adjust_domain_lonely=adjust_domain_lonely,
            names={"weights": weight, "strata": strata or "strata", "psu": psu or "psu",
                   "fpc": fpc or "fpc"},
        )

    @property
    def n(self) -> int:
        return int(self.weights.size)

    @property
    def df(self) -> int:
        """Design degrees of freedom, as R's ``degf``: PSUs with a non-zero weight minus
        strata with a non-zero weight (at least 1)."""
        pos = self.weights != 0
        return max(int(np.unique(self.psu[pos]).size - np.unique(self.stratum[pos]).size), 1)

    def _stratum_matrix(self) -> sparse.csr_matrix:
        return _indicator(self.psu_stratum, self.n_psu.size)

    def _sums(self, codes: np.ndarray, K: int, wz: np.ndarray, g: np.ndarray, G: int,
              resid: _Residuals | None) -> np.ndarray:
        """(K, G) totals of the (residualised) linearised values by unit ``codes``."""
        if resid is not None:
            return resid.unit_sums(codes, K)
        inside = g >= 0
        return np.bincount(codes[inside] * G + g[inside], weights=wz[inside],
                           minlength=K * G).reshape(K, G)

    def _units_in_domain(self, codes: np.ndarray, K: int, parent: np.ndarray,
                         n_in: np.ndarray, g: np.ndarray, G: int) -> np.ndarray:
        """(#parents, G): sampled units of each parent with rows in each domain.  R drops
        the other rows of an uncalibrated design when it takes a domain (``subset``); a
        calibrated design keeps them all, so there every unit counts."""
        if self.calibration:
            return np.broadcast_to(n_in[:, None], (n_in.size, G))
        inside = g >= 0
        has = np.zeros(K * G)
        has[codes[inside] * G + g[inside]] = 1.0
        return np.asarray(_indicator(parent, n_in.size) @ has.reshape(K, G))

    def variance_of_totals(self, wz: np.ndarray, g: np.ndarray, G: int) -> np.ndarray:
        """Linearisation variance of ``Σ_i wz_i`` within each of G groups.

        ``wz`` are weighted linearised values, ``g`` the group (0..G-1, or -1 =
        contributes nothing).  Returns (G,) variances
        ``Σ_h (1-f_h) n_h/(n_h-1) Σ_i (t_hi - t̄_h)²`` with PSU totals t_hi (plus the
        second stage), exactly as R's ``svyrecvar``: the PSU totals are of the residuals
        after the calibration steps, and lonely PSUs follow ``lonely_psu``.
        """
        resid = None
        if self.calibration:
            resid = _Residuals(wz, g, G)
            for step in self.calibration:
                step.residualise(resid)
        P = self.psu_stratum.size
        opt = self.lonely_psu
        need = opt in ("adjust", "average")
        T = self._sums(self.psu, P, wz, g, G, resid)
        nsub = (self._units_in_domain(self.psu, P, self.psu_stratum, self.n_psu, g, G)
                if need else None)
        v1 = _stage_variance(T, self.psu_stratum, self.n_psu, 1.0 - self.f, nsub, opt,
                             self.adjust_domain_lonely)
        if opt == "average":
            present = nsub > 0
            na = np.isnan(v1)
            nstrat = present.sum(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(present & ~na, v1, 0.0).sum(axis=0) * nstrat / (
                    nstrat - (present & na).sum(axis=0))
        else:
            v = v1.sum(axis=0)
        if self.ssu is not None:
            Q = self.ssu_psu.size
            T2 = self._sums(self.ssu, Q, wz, g, G, resid)
            nsub2 = (self._units_in_domain(self.ssu, Q, self.ssu_psu, self.m_ssu, g, G)
                     if need else None)
            v2 = _stage_variance(T2, self.ssu_psu, self.m_ssu, 1.0 - self.f2, nsub2, opt,
                                 self.adjust_domain_lonely)
            # R scales a PSU's second-stage variance by n_h / N_h; a PSU whose variance is NA
            # ("average" with a domain in one of its units) makes the whole variance NaN
            v = v + (self.f[self.psu_stratum][:, None] * v2).sum(axis=0)
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
    if lonely.any() and lonely_psu in ("fail", "average"):
        # R: "fail" stops; "average" gives NaN (a PSU's one stratum at stage 2 is NA)
        raise ValueError(f"a PSU ({names.get('psu', 'psu')}) has a single sampled "
                         "second-stage unit but more in its population; use "
                         "lonely_psu='certainty' or 'remove' (no second-stage variance "
                         "from it) or 'adjust' (its total, centred at zero)")
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


def _jackknife_plan(design: Design) -> tuple[np.ndarray, np.ndarray, float]:
    """The replicates R's ``as.svrepdesign(type="JK1"|"JKn")`` makes: the PSU each deletes,
    their rscales and the overall scale.

    A PSU whose replicate would have rscale 0 (the PSU of a one-PSU stratum under
    "certainty", "remove" or "average", a PSU of a certainty stratum) gets none, so the
    mean of the replicates (``mse=False``) is over real replicates only, as R's ``svrVar``
    (which averages replicates with rscale > 0).  "average" scales the variance by
    #PSUs / #replicates (R's ``jknweights``).
    """
    nh = design.n_psu
    hs = design.psu_stratum
    with np.errstate(divide="ignore", invalid="ignore"):
        rscales = np.where(nh[hs] > 1, (1.0 - design.f[hs]) * (nh[hs] - 1.0) / nh[hs], 0.0)
    reps = np.flatnonzero(rscales > 0)
    scale = 1.0
    n_lonely = int((nh == 1).sum())
    if design.lonely_psu == "average" and n_lonely:
        scale = hs.size / (hs.size - n_lonely)
    return reps, rscales[reps], scale


def jackknife(design: Design, mse: bool = True, dense: bool = True) -> ReplicateDesign:
    """Delete-one-PSU jackknife replicate weights.

    Replicate r deletes PSU r (weight 0) and multiplies the weights of the other
    PSUs of its stratum h by ``n_h / (n_h - 1)``; other strata are unchanged.
    ``rscales_r = (1 - f_h)(n_h - 1)/n_h``.  With a single stratum this is JK1
    (``(n-1)/n``), otherwise JKn (R's ``as.svrepdesign(type="JK1"|"JKn")``).  A
    stratum with a single PSU cannot be jackknifed under "fail" or "adjust" (ValueError
    naming it); under "certainty", "remove" and "average" it has no replicate, as in R
    (see :func:`_jackknife_plan`).  A calibrated design is refused: build the jackknife
    on the design before calibration and calibrate the replicate design
    (:mod:`monitoring.stats.calibration`), so every replicate is recalibrated.

    ``dense=False`` does not build the (n, #replicates) replicate-weight matrix: the
    estimators compute the same replicate estimates from PSU totals, which is what
    makes the jackknife usable for a million respondents.
    """
    if design.calibration:
        raise ValueError("jackknife: the design is calibrated; build the jackknife on the "
                         "design before calibration and calibrate the replicate design "
                         "(monitoring.stats.calibration), which recalibrates every replicate")
    nh = design.n_psu
    lonely = nh < 2
    certain = design.f >= 1 - 1e-12
    bad = np.flatnonzero(lonely & ~certain
                         & (design.lonely_psu not in ("certainty", "remove", "average")))
    if bad.size:
        raise ValueError(f"jackknife: stratum {_label_name(design.strata_labels[bad[0]])} "
                         "has a single PSU (use lonely_psu='certainty', 'remove' or "
                         "'average', as R's as.svrepdesign, or Taylor linearisation)")
    reps, rscales, scale = _jackknife_plan(design)
    rep = None
    if dense:
        h_unit = design.stratum
        same = h_unit[:, None] == design.psu_stratum[reps][None, :]
        with np.errstate(divide="ignore"):
            mult = np.where(nh > 1, nh / (nh - 1.0), 1.0)
        factor = np.where(same, mult[h_unit][:, None], 1.0)
        column = np.full(design.psu_stratum.size, -1)
        column[reps] = np.arange(reps.size)
        rows = np.flatnonzero(column[design.psu] >= 0)
        factor[rows, column[design.psu[rows]]] = 0.0
        rep = design.weights[:, None] * factor
    kind = "JK1" if nh.size == 1 else "JKn"
    return ReplicateDesign(weights=design.weights, replicates=rep, scale=scale,
                           rscales=rscales, mse=mse, df=design.df, kind=kind, base=design)


def _jackknife_totals(base: Design, wv: np.ndarray, g: np.ndarray, G: int) -> np.ndarray:
    """Replicate totals (#replicates, G) of ``Σ wv`` per group for the delete-one-PSU
    jackknife, the replicates of :func:`_jackknife_plan` in order.

    With PSU totals t_r and stratum totals S_h, replicate r (in stratum h) is
    ``A + S_h/(n_h-1) - n_h/(n_h-1) t_r`` -- exactly the dense replicate weights.
    """
    P = base.psu_stratum.size
    inside = g >= 0
    T = np.bincount(base.psu[inside] * G + g[inside], weights=wv[inside],
                    minlength=P * G).reshape(P, G)
    S = np.asarray(base._stratum_matrix() @ T)
    reps, _, _ = _jackknife_plan(base)
    h = base.psu_stratum[reps]
    nh = base.n_psu.astype(float)[h][:, None]
    A = T.sum(axis=0)[None, :]
    return A + S[h] / (nh - 1.0) - nh / (nh - 1.0) * T[reps]
