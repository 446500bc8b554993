"""The learning coefficient λ from temperatures and from free energies.

Beyond the local learning coefficient (Lau et al. 2023), λ can be read from how the
energy depends on the inverse temperature, since for large n (Watanabe 2013)

.. math::

    E_\\beta[nL_n] \\approx nL_n(w_0) + \\frac{\\lambda}{\\beta},\\qquad
    \\operatorname{Var}_\\beta[nL_n] = -\\frac{d}{d\\beta}E_\\beta[nL_n]
        \\approx \\frac{\\lambda}{\\beta^2},

and from how the free energy grows with n (Watanabe 2009),
``F_n = nL_n(w0) + λ log n − (m − 1) log log n + O_p(1)``:

* :func:`two_temperature` — ``(E_{β1} − E_{β2}) / (1/β1 − 1/β2)`` (Watanabe 2013);
* :func:`beta_slope` — weighted least-squares slope of ``E_β[nL_n]`` against ``1/β``
  over a grid (as in suswei/RLCT's ``lsfit_lambda``);
* :func:`variance_lambda` — ``β² Var_β[nL_n]`` (Imai 2019, arXiv:1906.01341), the
  "specific heat" form;
* :func:`free_energy_slope` — fit of free energies over several n.

All are pure functions of ``nL_n`` draws shaped ``(chain, draw)`` (or of estimated
free energies) returning NamedTuples with a standard error. None sees the finite-n
corrections (``−(m−1)/log(nβ)`` for m > 1, or slow pre-asymptotics): those are biases
of the estimand, not Monte-Carlo error, and the tests compare with exact finite-n
values where they matter.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import _mcse

__all__ = [
    "FreeEnergySlopeResult",
    "SlopeResult",
    "TwoTemperatureResult",
    "VarianceLambdaResult",
    "beta_slope",
    "free_energy_slope",
    "two_temperature",
    "variance_lambda",
]


class TwoTemperatureResult(NamedTuple):
    """λ̂ from two temperatures.

    Attributes
    ----------
    lam, se : float
        Estimate and its standard error (independent runs at the two β).
    betas : tuple of float
    mean_energy, mean_energy_mcse : numpy.ndarray (2,)
    """

    lam: float
    se: float
    betas: tuple[float, float]
    mean_energy: np.ndarray
    mean_energy_mcse: np.ndarray


class SlopeResult(NamedTuple):
    """λ̂ as the slope of ``E_β[nL_n]`` against ``1/β``.

    Attributes
    ----------
    lam, se : float
        Slope and its standard error (inflated by ``sqrt(chi2_dof)`` when > 1).
    intercept, intercept_se : float
        The fitted ``nL_n(w0)``.
    chi2_dof : float
        Reduced χ² of the fit (NaN with two rungs); ≫ 1 means the ``λ/β`` law does not
        hold over the grid (pre-asymptotic β, or m > 1 curvature).
    betas, mean_energy, mean_energy_mcse : numpy.ndarray (K,)
    """

    lam: float
    se: float
    intercept: float
    intercept_se: float
    chi2_dof: float
    betas: np.ndarray
    mean_energy: np.ndarray
    mean_energy_mcse: np.ndarray


class VarianceLambdaResult(NamedTuple):
    """λ̂ = β² Var_β[nL_n].

    Attributes
    ----------
    lam, se : float
        Pooled estimate and its Monte-Carlo standard error.
    per_chain : numpy.ndarray (chain,)
        Each chain's own ``β² Var``.
    beta : float
    """

    lam: float
    se: float
    per_chain: np.ndarray
    beta: float


class FreeEnergySlopeResult(NamedTuple):
    """Fit of ``F_n − nL_n(w0) = λ log n − (m − 1) log log n + c``.

    Attributes
    ----------
    lam, se : float
    multiplicity : float
        The given m, or the fitted ``1 + (m − 1)`` (a real number) when m was free.
    multiplicity_se : float
        0 when m was given.
    intercept, intercept_se : float
        ``c``.
    chi2_dof : float
        Reduced χ² (NaN without degrees of freedom); the standard errors are inflated
        by ``sqrt(chi2_dof)`` when it exceeds 1 (the O_p(1) remainder varies with the
        data set, so the free energies scatter about the curve by more than their
        Monte-Carlo errors).
    """

    lam: float
    se: float
    multiplicity: float
    multiplicity_se: float
    intercept: float
    intercept_se: float
    chi2_dof: float


def _draws(name: str, value) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric array (chain, draw), got {value!r}.")
    if arr.ndim != 2 or arr.shape[1] < 4:
        raise ValueError(
            f"{name} must have shape (chain, draw) with at least 4 draws, got "
            f"{arr.shape}; for one chain pass x[None, :]."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN/inf: drop diverged chains first.")
    return arr


def _beta(name: str, value) -> float:
    try:
        b = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number > 0, got {value!r}.")
    if not (math.isfinite(b) and b > 0):
        raise ValueError(
            f"{name} must be a finite inverse temperature > 0, got {value!r}; e.g. "
            "c / log n with c of order 1."
        )
    return b


def two_temperature(e1, e2, beta1: float, beta2: float) -> TwoTemperatureResult:
    """λ̂ from ``nL_n`` draws at two inverse temperatures (Watanabe 2013).

    .. math::

        \\hat\\lambda = \\frac{\\bar E_{\\beta_1} - \\bar E_{\\beta_2}}
            {1/\\beta_1 - 1/\\beta_2},\\qquad
        \\mathrm{se} = \\frac{\\sqrt{\\mathrm{MCSE}_1^2 + \\mathrm{MCSE}_2^2}}
            {|1/\\beta_1 - 1/\\beta_2|}.

    The two runs must be independent, and free of localisation (the prior is part
    of the law).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> e1 = 100 + 2 / 0.1 + rng.standard_normal((4, 500))
    >>> e2 = 100 + 2 / 0.2 + rng.standard_normal((4, 500))
    >>> round(two_temperature(e1, e2, 0.1, 0.2).lam, 1)
    2.0
    """
    x1, x2 = _draws("e1", e1), _draws("e2", e2)
    b1, b2 = _beta("beta1", beta1), _beta("beta2", beta2)
    if b1 == b2:
        raise ValueError(f"beta1 and beta2 must differ, got both = {b1}.")
    means = np.array([x1.mean(), x2.mean()])
    se = np.array([_mcse.mcse_mean(x1), _mcse.mcse_mean(x2)])
    gap = 1.0 / b1 - 1.0 / b2
    return TwoTemperatureResult(
        lam=float((means[0] - means[1]) / gap),
        se=float(math.hypot(*se) / abs(gap)),
        betas=(b1, b2),
        mean_energy=means,
        mean_energy_mcse=se,
    )


def _wls(x: np.ndarray, y: np.ndarray, se: np.ndarray):
    """Weighted least squares ``y ≈ X θ``: θ, its covariance (Birge-inflated) and
    the reduced χ²."""
    w = 1.0 / se**2
    xtwx = x.T @ (w[:, None] * x)
    cov = np.linalg.inv(xtwx)
    theta = cov @ (x.T @ (w * y))
    dof = x.shape[0] - x.shape[1]
    chi2 = float(np.sum(w * (y - x @ theta) ** 2) / dof) if dof > 0 else float("nan")
    if dof > 0 and chi2 > 1.0:
        cov = cov * chi2
    return theta, cov, chi2


def beta_slope(betas, energies) -> SlopeResult:
    """λ̂ as the weighted least-squares slope of ``E_β[nL_n]`` against ``1/β``.

    .. math::

        \\bar E_k \\approx c + \\lambda / \\beta_k,\\qquad
        w_k = 1 / \\mathrm{MCSE}_k^2,

    with ``MCSE_k`` the ESS-based error of rung k's mean. The slope's standard error
    comes from the weighted fit, inflated by ``sqrt(χ²/dof)`` when the points scatter
    about the line by more than their errors.

    Parameters
    ----------
    betas : array_like (K,)
        Distinct positive inverse temperatures (K >= 2), e.g. ``c / log n`` for
        ``c`` in ``[0.5, 2]``.
    energies : array_like (K, chain, draw)
        ``nL_n`` draws at each β (independent runs, no localisation).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> b = np.array([0.1, 0.15, 0.2, 0.3])
    >>> e = (50 + 1.5 / b)[:, None, None] + rng.standard_normal((4, 4, 500))
    >>> round(beta_slope(b, e).lam, 1)
    1.5
    """
    b = np.asarray(betas, dtype=np.float64)
    if b.ndim != 1 or b.size < 2:
        raise ValueError(f"betas must be a 1-D array of >= 2 values, got {b.shape}.")
    for i, v in enumerate(b):
        _beta(f"betas[{i}]", v)
    if np.unique(b).size != b.size:
        raise ValueError(f"betas must be distinct, got {b.tolist()}.")
    x = np.asarray(energies, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] != b.size:
        raise ValueError(
            f"energies must have shape ({b.size}, chain, draw) to match betas, got "
            f"{x.shape}."
        )
    means = np.array([_draws(f"energies[{i}]", xi).mean() for i, xi in enumerate(x)])
    se = np.array([_mcse.mcse_mean(xi) for xi in x])
    design = np.stack([np.ones_like(b), 1.0 / b], axis=1)
    theta, cov, chi2 = _wls(design, means, np.maximum(se, 1e-300))
    return SlopeResult(
        lam=float(theta[1]),
        se=float(math.sqrt(cov[1, 1])),
        intercept=float(theta[0]),
        intercept_se=float(math.sqrt(cov[0, 0])),
        chi2_dof=chi2,
        betas=b,
        mean_energy=means,
        mean_energy_mcse=se,
    )


def variance_lambda(energies, beta: float) -> VarianceLambdaResult:
    """λ̂ = β² Var_β[nL_n], the "specific heat" estimator (Imai 2019).

    .. math::

        \\hat\\lambda = \\beta^2\\,\\frac{1}{S}\\sum_s (x_s - \\bar x)^2,\\qquad
        \\mathrm{se} = \\beta^2\\,\\mathrm{MCSE}\\big[(x - \\bar x)^2\\big],

    the MCSE of the squared deviations from their ESS (arviz_stats), which accounts
    for autocorrelation like batch means. Needs draws without localisation, at
    ``β ≈ 1/log n`` or any β where ``E_β[nL_n] ≈ nL_n(w0) + λ/β`` holds.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(0, np.sqrt(1.5) / 0.1, (4, 2000))
    >>> round(variance_lambda(x, 0.1).lam, 1)
    1.5
    """
    x = _draws("energies", energies)
    b = _beta("beta", beta)
    dev2 = (x - x.mean()) ** 2
    per_chain = b**2 * x.var(axis=1, ddof=1)
    return VarianceLambdaResult(
        lam=float(b**2 * x.var(ddof=1)),
        se=float(b**2 * _mcse.mcse_mean(dev2)),
        per_chain=per_chain,
        beta=b,
    )


def free_energy_slope(
    ns, free_energies, sigmas, n_loss_at_w0, multiplicity: int | None = None
) -> FreeEnergySlopeResult:
    """λ (and optionally m) from free energies at several n (Watanabe 2009).

    .. math::

        F_n - nL_n(w_0) = \\lambda \\log n - (m - 1) \\log\\log n + c,

    a weighted least-squares fit with weights ``1/σ²`` (``σ`` the free energies'
    total errors); with ``multiplicity=None`` the coefficient of ``log log n`` is fitted
    too (needs >= 4 values of n, and a wide range of n: ``log n`` and ``log log n``
    are nearly collinear). Standard errors are inflated by ``sqrt(χ²/dof)`` when it
    exceeds 1: the O_p(1) remainder is a different random number for every data set.

    Parameters
    ----------
    ns : array_like (J,)
        Numbers of data (distinct, >= 3).
    free_energies, sigmas : array_like (J,)
        ``F_n`` (e.g. from :func:`~slt_sampler.estimators.free_energy.thermodynamic_integration`)
        and their standard errors (> 0; use a small floor for exact values).
    n_loss_at_w0 : array_like (J,)
        ``nL_n(w0)`` on the same data (``n S_n`` when the truth is realisable).
    multiplicity : int, optional
        Known m; ``None`` fits it.

    Examples
    --------
    >>> import numpy as np
    >>> ns = np.array([1e3, 1e4, 1e5, 1e6])
    >>> f = 0.5 * np.log(ns) - np.log(np.log(ns)) + 1.0
    >>> res = free_energy_slope(ns, f, np.full(4, 1e-3), np.zeros(4), multiplicity=2)
    >>> round(res.lam, 3)
    0.5
    """
    n = np.asarray(ns, dtype=np.float64)
    if n.ndim != 1 or n.size < 2:
        raise ValueError(f"ns must be a 1-D array of >= 2 values, got shape {n.shape}.")
    if np.any(n < 3) or np.unique(n).size != n.size:
        raise ValueError(f"ns must be distinct numbers of data >= 3, got {n.tolist()}.")
    arrays = {}
    for name, val in (
        ("free_energies", free_energies),
        ("sigmas", sigmas),
        ("n_loss_at_w0", n_loss_at_w0),
    ):
        a = np.asarray(val, dtype=np.float64)
        if a.shape != n.shape:
            raise ValueError(
                f"{name} must have shape {n.shape} like ns, got {a.shape}."
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN/inf.")
        arrays[name] = a
    if np.any(arrays["sigmas"] <= 0):
        raise ValueError(
            "sigmas must be > 0 (use a small floor such as 1e-6 for exact F)."
        )
    y = arrays["free_energies"] - arrays["n_loss_at_w0"]
    logn, loglogn = np.log(n), np.log(np.log(n))
    if multiplicity is not None:
        if (
            isinstance(multiplicity, bool)
            or not isinstance(multiplicity, (int, np.integer))
            or multiplicity < 1
        ):
            raise ValueError(
                f"multiplicity must be an int >= 1 or None, got {multiplicity!r}."
            )
        design = np.stack([logn, np.ones_like(n)], axis=1)
        theta, cov, chi2 = _wls(
            design, y + (multiplicity - 1) * loglogn, arrays["sigmas"]
        )
        m, m_se, ic = float(multiplicity), 0.0, 1
    else:
        if n.size < 4:
            raise ValueError(
                f"fitting the multiplicity needs >= 4 values of n, got {n.size}; "
                "pass multiplicity= if it is known."
            )
        design = np.stack([logn, -loglogn, np.ones_like(n)], axis=1)
        theta, cov, chi2 = _wls(design, y, arrays["sigmas"])
        m, m_se, ic = 1.0 + float(theta[1]), float(math.sqrt(cov[1, 1])), 2
    return FreeEnergySlopeResult(
        lam=float(theta[0]),
        se=float(math.sqrt(cov[0, 0])),
        multiplicity=m,
        multiplicity_se=m_se,
        intercept=float(theta[ic]),
        intercept_se=float(math.sqrt(cov[ic, ic])),
        chi2_dof=chi2,
    )
