"""The local learning coefficient estimator of Lau et al. (2023), as an array function.

.. math::

    \\hat\\lambda(w^*) = n\\beta\\,\\big(\\mathbb{E}_{w\\mid w^*,\\beta,\\gamma}[L_n(w)]
        - L_n(w^*)\\big)

computed per chain and pooled, with the Monte-Carlo standard error of the pooled mean
(from the effective sample size of the L_n trace), rank-normalised split R-hat and bulk
ESS. ``losses`` must already exclude burn-in; ``init_loss`` is ``L_n(w*)`` on the *full*
data: a baseline from a few minibatches shifts every chain's λ̂ by the same amount,
which the between-chain spread cannot show.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _validate
from . import _mcse


class LLCResult(NamedTuple):
    """Pooled and per-chain LLC with its Monte-Carlo error and convergence diagnostics.

    Attributes
    ----------
    llc : pooled λ̂ over all chains and draws.
    llc_mcse : MCSE of ``llc`` (nβ × MCSE of the pooled mean loss).
    llc_per_chain : λ̂ of each chain, shape (chain,).
    llc_per_chain_mcse : MCSE of each chain's λ̂, from its own autocorrelation.
    llc_std : standard deviation of ``llc_per_chain`` (devinterp's error bar).
    rhat : rank-normalised split R-hat of the L_n trace (nan with one chain).
    ess : bulk effective sample size of the L_n trace.
    init_loss : L_n(w*).
    mean_loss : pooled mean of the trace.
    nbeta : n·β.
    """

    llc: float
    llc_mcse: float
    llc_per_chain: np.ndarray
    llc_per_chain_mcse: np.ndarray
    llc_std: float
    rhat: float
    ess: float
    init_loss: float
    mean_loss: float
    nbeta: float


def llc(losses, init_loss, *, n: int, beta: float) -> LLCResult:
    """Estimate λ̂ from a ``(chain, draw)`` trace of L_n after burn-in.

    Parameters
    ----------
    losses : array_like, shape (chain, draw)
        L_n (or an unbiased per-draw estimate of it) at every kept draw.
    init_loss : float
        L_n(w*) on the full data.
    n : int
        Number of data.
    beta : float
        Inverse temperature the chains sampled at.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> trace = 1.0 + 0.5 / 100 + 0.001 * rng.normal(size=(4, 1000))
    >>> round(llc(trace, 1.0, n=1000, beta=0.1).llc, 1)
    0.5
    """
    arr = _validate.as_numbers("losses", losses)
    if arr is None:
        raise TypeError(f"losses must be an array (chain, draw), got {losses!r}.")
    arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise ValueError(
            f"losses must have shape (chain, draw), got {arr.shape}; for one chain pass "
            "losses[None, :]."
        )
    if arr.shape[0] < 1 or arr.shape[1] < 2:
        raise ValueError(
            f"losses needs at least one chain and two draws, got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        bad = np.where(~np.all(np.isfinite(arr), axis=1))[0].tolist()
        raise ValueError(
            f"losses of chains {bad} contain NaN/inf: those chains diverged. Lower the "
            "step size (e.g. by 10x) or drop the chains; no estimate is returned."
        )
    n = _validate.check_int("n", n)
    _validate.check_scalar("beta", beta)
    _validate.check_positive("beta", beta, "The inverse temperature the chains ran at.")
    _validate.check_scalar("init_loss", init_loss)
    if _validate.as_numbers("init_loss", init_loss) is None or not np.isfinite(
        init_loss
    ):
        raise ValueError(
            f"init_loss must be the finite L_n(w*), got {init_loss!r}: compute it with "
            "full_loss(posterior, w_star)."
        )
    nbeta = float(n * beta)
    per_chain = nbeta * (arr.mean(axis=1) - init_loss)
    per_chain_mcse = nbeta * _mcse.per_chain_mcse(arr)
    pooled = float(nbeta * (arr.mean() - init_loss))
    multi = arr.shape[0] >= 2
    return LLCResult(
        llc=pooled,
        llc_mcse=float(nbeta * _mcse.mcse_mean(arr)),
        llc_per_chain=per_chain,
        llc_per_chain_mcse=per_chain_mcse,
        llc_std=float(np.std(per_chain, ddof=1)) if multi else float("nan"),
        rhat=float(_mcse.rhat(arr)) if multi else float("nan"),
        ess=float(_mcse.ess_bulk(arr)),
        init_loss=float(init_loss),
        mean_loss=float(arr.mean()),
        nbeta=nbeta,
    )
