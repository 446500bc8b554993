"""Free energy by thermodynamic integration, WBIC, and β ladders, as array functions.

With a *normalised* prior φ, ``F_n(0) = 0`` and

.. math::

    F_n(1) = -\\log \\int \\varphi(w)\\, e^{-nL_n(w)}\\,dw
        = \\int_0^1 E_\\beta[nL_n]\\,d\\beta,\\qquad
    \\frac{d}{d\\beta} E_\\beta[nL_n] = -\\operatorname{Var}_\\beta[nL_n]

(thermodynamic integration: Ogata 1989; Gelman & Meng 1998; Watanabe 2013 §3 for the
singular-learning-theory setting). The integral over the β ladder is taken by the
derivative-corrected (cubic Hermite) trapezoid rule, which uses ``−Var`` as the
slope at every rung; its quadrature error is estimated by Richardson extrapolation
against every-other-rung sub-ladders (and the plain trapezoid rule is reported beside
it). The Monte-Carlo error comes from each rung's effective sample size
(``arviz_stats``), the rungs being independent runs. WBIC (Watanabe 2013) is
``E_β[nL_n]`` at ``β = 1/log n``.

A flat or unnormalised prior shifts every free energy by an unknown constant:
thermodynamic integration from β = 0 then has no meaning.

Estimators here never sample; they take ``nL_n`` draws shaped ``(rung, chain, draw)``
(or ``(chain, draw)`` for WBIC) and return NamedTuples of float64 numbers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import _mcse

__all__ = [
    "TIResult",
    "WBICResult",
    "beta_ladder",
    "integrate_energy",
    "thermodynamic_integration",
    "wbic",
]


class TIResult(NamedTuple):
    """Thermodynamic integration ``F_n(β_K) = ∫_0^{β_K} E_β[nL_n] dβ``.

    Attributes
    ----------
    free_energy : float
        Cubic-Hermite (derivative-corrected trapezoid) value; equals ``trapezoid``
        when no variances are available.
    sigma : float
        Total standard error ``sqrt(mcse² + quadrature_error²)``.
    mcse : float
        Monte-Carlo standard error of ``free_energy`` (0 for exact moments).
    quadrature_error : float
        Estimated error of the Hermite rule: Richardson extrapolation against the
        every-other-rung sub-ladders, ``|H − H_coarse| / (ρ − 1)`` with the observed
        convergence ratio ρ clipped to [4, 16] (NaN without variances).
    trapezoid : float
        Plain trapezoid value.
    trapezoid_error : float
        ``|hermite − trapezoid|``, the estimated error of ``trapezoid``.
    betas : numpy.ndarray (K,)
    mean_energy : numpy.ndarray (K,)
        ``E_β[nL_n]`` at each rung.
    mean_energy_mcse : numpy.ndarray (K,)
    var_energy : numpy.ndarray (K,)
        ``Var_β[nL_n]`` at each rung (NaN when unknown).
    ess : numpy.ndarray (K,)
        Effective sample size of ``nL_n`` at each rung (inf for exact moments).
    """

    free_energy: float
    sigma: float
    mcse: float
    quadrature_error: float
    trapezoid: float
    trapezoid_error: float
    betas: np.ndarray
    mean_energy: np.ndarray
    mean_energy_mcse: np.ndarray
    var_energy: np.ndarray
    ess: np.ndarray


class WBICResult(NamedTuple):
    """WBIC ``E_β[nL_n]`` at ``β = 1/log n`` with its Monte-Carlo error.

    Attributes
    ----------
    wbic : float
    mcse : float
    ess : float
    rhat : float (nan for one chain)
    per_chain : numpy.ndarray (chain,)
    beta : float
        ``1/log n``, the inverse temperature the draws must come from.
    """

    wbic: float
    mcse: float
    ess: float
    rhat: float
    per_chain: np.ndarray
    beta: float


def _as_float_array(name: str, value, ndim: int, shape_hint: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric array {shape_hint}, got {value!r}.")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have shape {shape_hint}, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{name} contains NaN/inf at {np.argwhere(~np.isfinite(arr))[0].tolist()}: "
            "drop diverged chains (or rerun that rung) before integrating."
        )
    return arr


def _check_betas(betas, *, start_at_zero: bool = True) -> np.ndarray:
    b = _as_float_array("betas", betas, 1, "(K,)")
    if b.size < 2:
        raise ValueError(f"betas needs at least two rungs, got {b.size}.")
    if start_at_zero and b[0] != 0.0:
        raise ValueError(
            f"betas must start at 0 for thermodynamic integration (F_n(0) = 0 with a "
            f"normalised prior), got betas[0] = {b[0]}. Prepend a rung at β = 0 "
            "(draws from the prior)."
        )
    if np.any(b < 0):
        raise ValueError(f"betas must be >= 0, got min {b.min()}.")
    steps = np.diff(b)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0))
        raise ValueError(
            f"betas must be strictly increasing, got betas[{i}] = {b[i]} >= "
            f"betas[{i + 1}] = {b[i + 1]}. Sort the ladder and drop duplicates."
        )
    return b


def _rules(betas, means, variances) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Trapezoid and Hermite values, and the weights ``(a, b)`` with
    ``hermite = Σ a_k E_k + Σ b_k V_k``."""
    d = np.diff(betas)
    a = np.zeros_like(betas)
    a[:-1] += d / 2
    a[1:] += d / 2
    trap = float(a @ means)
    if variances is None:
        return trap, trap, a, np.zeros_like(betas)
    # ∫ over [β_k, β_{k+1}] of the cubic Hermite interpolant with slopes −V:
    # Δ (E_k + E_{k+1})/2 + Δ²/12 (−V_k + V_{k+1})
    b = np.zeros_like(betas)
    b[:-1] -= d**2 / 12
    b[1:] += d**2 / 12
    return trap, float(trap + b @ variances), a, b


def _coarse(idx: np.ndarray) -> np.ndarray:
    """Every other rung, always keeping the last."""
    out = idx[::2]
    return out if out[-1] == idx[-1] else np.append(out, idx[-1])


def _hermite_error(betas, means, variances) -> float:
    """Richardson estimate of the Hermite rule's error from the ladder and its
    every-other-rung sub-ladders: ``|H_1 − H_2| / (ρ − 1)`` with the observed
    convergence ratio ``ρ = |H_2 − H_4| / |H_1 − H_2|`` clipped to [4, 16] (between
    second order, the conservative case, and the rule's fourth order)."""
    levels, idx = [], np.arange(betas.size)
    while idx.size >= 2 and len(levels) < 3:
        levels.append(_rules(betas[idx], means[idx], variances[idx])[1])
        if idx.size == 2:
            break
        idx = _coarse(idx)
    if len(levels) < 2:
        return float("nan")
    d1 = abs(levels[0] - levels[1])
    rho = 4.0
    if len(levels) == 3 and d1 > 0:
        rho = min(max(abs(levels[1] - levels[2]) / d1, 4.0), 16.0)
    return d1 / (rho - 1.0)


def integrate_energy(
    betas,
    mean_energy,
    var_energy=None,
    *,
    mean_energy_mcse=None,
) -> TIResult:
    """Thermodynamic integration from known (or separately estimated) rung moments.

    .. math::

        \\hat F = \\sum_k \\Delta_k \\frac{E_k + E_{k+1}}{2}
            + \\frac{\\Delta_k^2}{12}\\big(V_{k+1} - V_k\\big),\\qquad
        \\Delta_k = \\beta_{k+1} - \\beta_k,

    the integral of the cubic Hermite interpolant of ``E_β[nL_n]`` with slopes
    ``−V_β = −Var_β[nL_n]`` (the derivative-corrected trapezoid rule, error
    ``O(Δ⁵)``); without variances the plain trapezoid rule.

    Parameters
    ----------
    betas : array_like (K,)
        Strictly increasing, starting at 0.
    mean_energy : array_like (K,)
        ``E_β[nL_n]`` at each rung.
    var_energy : array_like (K,), optional
        ``Var_β[nL_n]`` at each rung.
    mean_energy_mcse : array_like (K,), optional
        Standard errors of ``mean_energy`` (independent rungs); 0 if omitted.

    Examples
    --------
    >>> import numpy as np
    >>> b = np.linspace(0, 1, 5)
    >>> round(integrate_energy(b, 2 - b**2, 2 * b).free_energy, 6)  # ∫(2 − β²) = 5/3
    1.666667
    """
    b = _check_betas(betas)
    k = b.size
    e = _as_float_array("mean_energy", mean_energy, 1, f"({k},) like betas")
    _same_length("mean_energy", e, k)
    v = None
    if var_energy is not None:
        v = _as_float_array("var_energy", var_energy, 1, f"({k},) like betas")
        _same_length("var_energy", v, k)
        _check_var_non_negative(v)
    se = np.zeros(k)
    if mean_energy_mcse is not None:
        se = _as_float_array("mean_energy_mcse", mean_energy_mcse, 1, f"({k},)")
        _same_length("mean_energy_mcse", se, k)
    trap, herm, a, _ = _rules(b, e, v)
    mcse = float(np.sqrt(np.sum((a * se) ** 2)))
    qerr = _hermite_error(b, e, v) if v is not None else float("nan")
    return TIResult(
        free_energy=herm,
        sigma=math.hypot(mcse, qerr),
        mcse=mcse,
        quadrature_error=qerr,
        trapezoid=trap,
        trapezoid_error=abs(herm - trap) if v is not None else float("nan"),
        betas=b,
        mean_energy=e,
        mean_energy_mcse=se,
        var_energy=v if v is not None else np.full(k, np.nan),
        ess=np.full(k, np.inf),
    )


def _same_length(name: str, arr: np.ndarray, k: int) -> None:
    if arr.shape[0] != k:
        raise ValueError(
            f"{name} has {arr.shape[0]} rungs but betas has {k}: pass one value per "
            "rung."
        )


def _batched_ess(x: np.ndarray) -> np.ndarray:
    """ESS for the mean of every rung of ``(rung, chain, draw)`` in one arviz_stats
    call (Vehtari et al. 2021); a constant rung (exact moments) counts all draws."""
    const = np.ptp(x, axis=(1, 2)) == 0
    safe = np.where(const[:, None, None], np.arange(x.shape[2], dtype=float), x)
    ess = np.asarray(_mcse._array_stats().ess(safe, method="mean"), np.float64)
    return np.where(const, float(x.shape[1] * x.shape[2]), ess)


def _check_var_non_negative(v: np.ndarray) -> None:
    bad = np.flatnonzero(v < 0)
    if bad.size:
        raise ValueError(
            f"var_energy must be >= 0 (variances of nL_n), got {v[bad].tolist()} at "
            f"rung(s) {bad.tolist()}. Pass the variances, not standard errors or "
            "differences."
        )


def thermodynamic_integration(betas, energies, var_energy=None) -> TIResult:
    """``F_n(β_K)`` from ``nL_n`` draws at every rung of a β ladder.

    .. math::

        \\hat F = \\sum_k a_k \\bar E_k + b_k \\hat V_k,

    the cubic-Hermite rule of :func:`integrate_energy` with ``Ē_k`` the mean and
    ``V̂_k`` the variance of the rung's draws (or the given ``var_energy``). Its
    Monte-Carlo error treats rungs as independent runs: per rung, the draws
    ``z = a_k x + b_k (x − x̄_k)²`` are one linear functional, whose MCSE is the
    ESS-based ``mcse_mean`` of arviz_stats (Vehtari et al. 2021), so the noise of the
    variance correction and its correlation with the mean are included.

    Parameters
    ----------
    betas : array_like (K,)
        Strictly increasing, starting at 0 (draws at β = 0 come from the prior).
    energies : array_like (K, chain, draw)
        ``nL_n`` at the kept draws of each rung (after burn-in).
    var_energy : array_like (K,), optional
        Exact ``Var_β[nL_n]``, if known, instead of the draws' variances.

    Returns
    -------
    TIResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> b = np.linspace(0, 1, 9)
    >>> draws = (2 - b**2)[:, None, None] + np.sqrt(2 * b + 1e-9)[:, None, None] * (
    ...     rng.standard_normal((9, 4, 500)))
    >>> res = thermodynamic_integration(b, draws)
    >>> bool(abs(res.free_energy - 5 / 3) < 4 * res.sigma)
    True
    """
    b = _check_betas(betas)
    k = b.size
    x = _as_float_array("energies", energies, 3, f"({k}, chain, draw)")
    _same_length("energies", x, k)
    if x.shape[1] < 1:
        raise ValueError(
            f"energies needs at least one chain per rung, got shape {x.shape}. Pass "
            f"the nL_n draws as ({k}, chain, draw)."
        )
    if x.shape[2] < 4:
        raise ValueError(
            f"energies needs at least 4 draws per chain, got shape {x.shape}."
        )
    means = x.mean(axis=(1, 2))
    exact_var = var_energy is not None
    if exact_var:
        var = _as_float_array("var_energy", var_energy, 1, f"({k},) like betas")
        _same_length("var_energy", var, k)
        _check_var_non_negative(var)
    else:
        var = x.var(axis=(1, 2), ddof=1)
    trap, herm, a, wb = _rules(b, means, var)
    z = a[:, None, None] * x
    if not exact_var:
        z = z + wb[:, None, None] * (x - means[:, None, None]) ** 2
    ess = _batched_ess(x)
    rung_se = x.std(axis=(1, 2), ddof=1) / np.sqrt(ess)
    parts = z.std(axis=(1, 2), ddof=1) / np.sqrt(_batched_ess(z))
    mcse = float(np.sqrt(np.sum(parts**2)))
    qerr = _hermite_error(b, means, var)
    return TIResult(
        free_energy=herm,
        sigma=math.hypot(mcse, qerr),
        mcse=mcse,
        quadrature_error=qerr,
        trapezoid=trap,
        trapezoid_error=abs(herm - trap),
        betas=b,
        mean_energy=means,
        mean_energy_mcse=rung_se,
        var_energy=var,
        ess=ess,
    )


def wbic(energies, n: int) -> WBICResult:
    """WBIC: the mean of ``nL_n`` over draws at ``β = 1/log n`` (Watanabe 2013).

    .. math:: \\mathrm{WBIC} = E_{\\beta}[nL_n],\\qquad \\beta = 1/\\log n,

    with the Monte-Carlo standard error of the pooled mean (arviz_stats ESS).

    Parameters
    ----------
    energies : array_like (chain, draw)
        ``nL_n`` at the kept draws of chains run at ``β = 1/log n`` (and no
        localisation: WBIC needs the prior).
    n : int
        Number of data.

    Examples
    --------
    >>> import numpy as np
    >>> draws = 100 + np.random.default_rng(0).standard_normal((4, 1000))
    >>> res = wbic(draws, 1000)
    >>> round(res.wbic), round(res.beta, 4)
    (100, 0.1448)
    """
    x = _as_float_array("energies", energies, 2, "(chain, draw)")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be the number of data, an int >= 2, got {n!r}.")
    if x.shape[0] < 1:
        raise ValueError(f"energies needs at least one chain, got shape {x.shape}.")
    if x.shape[1] < 4:
        raise ValueError(f"energies needs at least 4 draws per chain, got {x.shape}.")
    return WBICResult(
        wbic=float(x.mean()),
        mcse=_mcse.mcse_mean(x),
        ess=_mcse.ess_mean(x),
        rhat=_mcse.rhat(x) if x.shape[0] >= 2 else float("nan"),
        per_chain=x.mean(axis=1),
        beta=1.0 / math.log(n),
    )


def beta_ladder(
    num: int,
    *,
    beta_min: float,
    beta_max: float = 1.0,
    pilot_betas=None,
    pilot_var_energy=None,
    geometric_fraction: float = 0.25,
) -> np.ndarray:
    """A β ladder ``[0, β_min, …, β_max]`` of ``num`` rungs for thermodynamic
    integration.

    Without a pilot: ``0`` then ``num − 1`` geometric rungs from ``beta_min`` to
    ``beta_max`` (equal thermodynamic length when ``Var_β[nL_n] ∝ 1/β²``, the regular
    and asymptotic singular case ``Var ≈ λ/β²``).

    With a pilot (``Var_β[nL_n]`` at a few β): rungs at equal values of

    .. math::

        u(\\beta) = (1 - g)\\,\\frac{s(\\beta)}{s(\\beta_{\\max})}
            + g\\,\\frac{\\log(\\beta/\\beta_{\\min})}{\\log(\\beta_{\\max}/\\beta_{\\min})},
        \\qquad s(\\beta) = \\int_{\\beta_{\\min}}^{\\beta}
            \\sqrt{\\operatorname{Var}_{b}[nL_n]}\\,db,

    the thermodynamic length (Gelman & Meng 1998; Crooks 2007: equal-length rungs
    equalise the per-interval error) mixed with a geometric floor of weight
    ``g = geometric_fraction``. ``√Var`` is interpolated linearly in log–log and
    held constant beyond the pilot's range. The trapezoid error is then about
    ``s(β_max)² / (12 (num − 1)²)``.

    Parameters
    ----------
    num : int
        Number of rungs including 0 (>= 3).
    beta_min : float
        First positive rung; ~``1e-2 / n`` to ``1e-3 / n`` keeps the first interval's
        error small for a prior of unit scale.
    beta_max : float
        Last rung (1 for the Bayes free energy).
    pilot_betas, pilot_var_energy : array_like (P,), optional
        Positive pilot inverse temperatures and ``Var_β[nL_n]`` there.
    geometric_fraction : float in [0, 1]

    Examples
    --------
    >>> beta_ladder(4, beta_min=0.01).round(3).tolist()
    [0.0, 0.01, 0.1, 1.0]
    """
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 3:
        raise ValueError(f"num must be an int >= 3 (rungs including 0), got {num!r}.")
    lo, hi = float(beta_min), float(beta_max)
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
        raise ValueError(
            f"need 0 < beta_min < beta_max, got beta_min = {beta_min}, beta_max = "
            f"{beta_max}."
        )
    if not 0.0 <= geometric_fraction <= 1.0:
        raise ValueError(
            f"geometric_fraction must lie in [0, 1], got {geometric_fraction}."
        )
    if (pilot_betas is None) != (pilot_var_energy is None):
        raise ValueError("pass both pilot_betas and pilot_var_energy, or neither.")
    grid = np.geomspace(lo, hi, 4096)
    geo = np.log(grid / lo) / math.log(hi / lo)
    if pilot_betas is None:
        u = geo
    else:
        pb = _as_float_array("pilot_betas", pilot_betas, 1, "(P,)")
        pv = _as_float_array("pilot_var_energy", pilot_var_energy, 1, "(P,)")
        if pb.shape != pv.shape or pb.size < 2:
            raise ValueError(
                f"pilot_betas and pilot_var_energy need one value per pilot rung (>= 2), "
                f"got shapes {pb.shape} and {pv.shape}."
            )
        if np.any(pb <= 0) or np.any(np.diff(pb) <= 0) or np.any(pv <= 0):
            raise ValueError(
                "pilot_betas must be positive and strictly increasing, and "
                "pilot_var_energy positive (drop the β = 0 rung from the pilot)."
            )
        log_sd = np.interp(np.log(grid), np.log(pb), 0.5 * np.log(pv))
        sd = np.exp(log_sd)
        s = np.concatenate([[0.0], np.cumsum(0.5 * (sd[1:] + sd[:-1]) * np.diff(grid))])
        u = (1 - geometric_fraction) * s / s[-1] + geometric_fraction * geo
    rungs = np.interp(np.linspace(0.0, 1.0, num - 1), u, grid)
    rungs[0], rungs[-1] = lo, hi
    return np.concatenate([[0.0], rungs])
