r"""Average energy, entropy and heat capacity of the tempered posterior.

The tempered posterior :math:`p_\beta(w) \propto \varphi(w)e^{-n\beta K_n(w)}` is a
Gibbs measure :math:`e^{-\beta H}/Z^0_n` for the Hamiltonian
:math:`H(w) = nK_n(w) - \beta^{-1}\log\varphi(w)`, with the normalised free energy
:math:`F^0_n(\beta) = -\log\int\varphi e^{-n\beta K_n} = F_n(\beta) - n\beta S_n`
(Watanabe 2009, ch. 1 and 8; Watanabe 2013, JMLR 14:867-897). Then

.. math::

    U &= \mathbb E_\beta[H] = n\,\mathbb E_\beta[K_n]
        + \tfrac1\beta\,\mathbb E_\beta[-\log\varphi],\\
    S &= \beta U - F^0_n(\beta) = \mathbb E_\beta[-\log\varphi]
        + n\beta\,\mathbb E_\beta[K_n] - F^0_n(\beta)
        = \mathbb E_\beta[-\log\varphi] + \beta\,\mathbb E_\beta[nL_n] - F_n(\beta),\\
    C &= \beta^2\operatorname{Var}_\beta[nK_n] = -\beta^2\,\partial_\beta^2 F_n(\beta).

:math:`S = -\int p_\beta \log p_\beta` is the differential entropy of the posterior and
does not depend on the unknown :math:`S_n`; ``U`` does (pass
``n_empirical_entropy = nS_n``, or 0 to measure it from the :math:`nL_n` origin); ``C``
is a variance and is shift-free. For a regular model :math:`C \to d/2 = \lambda`.

Errors: ``U`` and the sample part of ``S`` are posterior means of per-draw scalars
(ArviZ MCSE); ``S`` adds the free energy's standard error in quadrature (the free
energy comes from a separate run, e.g. thermodynamic integration, and is treated as
independent); ``C`` is the posterior mean of :math:`(nL_n - \overline{nL_n})^2`, whose
MCSE (ESS of the squared deviations) is its error to leading order.
"""

from __future__ import annotations

import numpy as np

from .. import _validate
from . import _mcse
from .errors import Estimate

__all__ = ["average_energy", "entropy", "heat_capacity"]


def _trace(name: str, x) -> np.ndarray:
    arr = _validate.as_numbers(name, x)
    if arr is None:
        raise TypeError(f"{name} must be a concrete (chain, draw) array, got {x!r}.")
    arr = np.asarray(arr, np.float64)
    if arr.ndim != 2 or arr.shape[1] < 4:
        raise ValueError(
            f"{name} must be a (chain, draw) trace with >= 4 draws, got shape "
            f"{arr.shape}; for one chain pass x[None, :]."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{name} has {int(np.sum(~np.isfinite(arr)))} NaN/inf values: drop "
            "diverged chains first."
        )
    return arr


def _beta(beta) -> float:
    _validate.check_scalar("beta", beta)
    _validate.check_positive("beta", beta, "The inverse temperature of the run.")
    return float(beta)


def _pair(n_loss, neg_log_prior) -> tuple[np.ndarray, np.ndarray]:
    a = _trace("n_loss", n_loss)
    b = _trace("neg_log_prior", neg_log_prior)
    if a.shape != b.shape:
        raise ValueError(
            f"neg_log_prior has shape {b.shape} but n_loss {a.shape}; record both at "
            "the same draws."
        )
    return a, b


def _mean(per_draw: np.ndarray, offset: float = 0.0) -> Estimate:
    return Estimate(
        float(per_draw.mean() - offset),
        _mcse.mcse_mean(per_draw),
        per_draw.mean(axis=1) - offset,
        0.0,
        "MCSE of the mean (ESS)",
    )


def average_energy(
    n_loss, neg_log_prior, beta: float, *, n_empirical_entropy: float = 0.0
) -> Estimate:
    r"""Average energy :math:`U = n\mathbb E_\beta[K_n] + \beta^{-1}\mathbb E_\beta[-\log\varphi]`.

    Parameters
    ----------
    n_loss : (chain, draw)
        :math:`nL_n(w_s)` at every draw.
    neg_log_prior : (chain, draw)
        :math:`-\log\varphi(w_s)` at the same draws (normalised prior density).
    beta : float
        Inverse temperature of the draws.
    n_empirical_entropy : float
        :math:`nS_n = -\sum_i\log q(X_i)`; 0 measures U from the :math:`nL_n` origin.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> nl, lp = 10 + rng.normal(size=(4, 400)), 2 + rng.normal(size=(4, 400))
    >>> round(average_energy(nl, lp, 0.5, n_empirical_entropy=8.0).estimate)
    6
    """
    a, b = _pair(n_loss, neg_log_prior)
    _validate.check_scalar("n_empirical_entropy", n_empirical_entropy)
    return _mean(a + b / _beta(beta), float(n_empirical_entropy))


def entropy(
    n_loss,
    neg_log_prior,
    beta: float,
    free_energy: float,
    free_energy_error: float = 0.0,
) -> Estimate:
    r"""Posterior entropy :math:`S = \mathbb E_\beta[-\log\varphi + \beta nL_n] - F_n(\beta)`.

    Parameters
    ----------
    n_loss, neg_log_prior : (chain, draw)
        :math:`nL_n(w_s)` and :math:`-\log\varphi(w_s)` (normalised prior).
    beta : float
        Inverse temperature.
    free_energy : float
        :math:`F_n(\beta) = -\log\int\varphi\,e^{-n\beta L_n}` (unnormalised by
        :math:`S_n`, the same origin as ``n_loss``), e.g. from thermodynamic integration.
    free_energy_error : float
        Its standard error; added in quadrature to the MCSE.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> nl, lp = 10 + rng.normal(size=(4, 400)), 2 + rng.normal(size=(4, 400))
    >>> round(entropy(nl, lp, 0.5, 6.0).estimate)
    1
    """
    a, b = _pair(n_loss, neg_log_prior)
    beta = _beta(beta)
    for name, v in (
        ("free_energy", free_energy),
        ("free_energy_error", free_energy_error),
    ):
        _validate.check_scalar(name, v)
        if not np.isfinite(float(v)):
            raise ValueError(f"{name} must be finite, got {v!r}.")
    _validate.check_non_negative("free_energy_error", free_energy_error)
    out = _mean(b + beta * a, float(free_energy))
    return out._replace(
        error=float(np.hypot(out.error, float(free_energy_error))),
        method="MCSE (ESS) and the free energy's error in quadrature",
    )


def heat_capacity(n_loss, beta: float) -> Estimate:
    r"""Heat capacity :math:`C = \beta^2\operatorname{Var}_\beta[nK_n]`.

    .. math:: \hat C = \frac{\beta^2}{S-1}\sum_s\bigl(nL_n(w_s)-\overline{nL_n}\bigr)^2

    (:math:`nK_n` and :math:`nL_n` differ by a constant). It equals
    :math:`-\beta^2\partial^2_\beta F_n`, tends to λ in a regular model, and is
    Imai's (2019) variance estimator of λ at β = 1/log n. The error is the MCSE of the
    mean of the squared deviations (their own ESS); ``per_chain`` holds each chain's
    :math:`\beta^2` × variance.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(scale=3.0, size=(4, 2000))
    >>> round(heat_capacity(x, 0.5).estimate, 1)
    2.3
    """
    a = _trace("n_loss", n_loss)
    b2 = _beta(beta) ** 2
    size = a.size
    dev2 = (a - a.mean()) ** 2 * (size / (size - 1))
    return Estimate(
        float(b2 * dev2.mean()),
        b2 * _mcse.mcse_mean(dev2),
        b2 * a.var(axis=1, ddof=1),
        0.0,
        "MCSE of the mean squared deviation (ESS)",
    )
