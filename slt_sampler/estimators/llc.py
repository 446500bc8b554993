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
    llc_sigma : total standard error; from :func:`llc` alone the MCSE, from
        ``estimate_llc`` the total of :func:`error_budget`.
    llc_bias : estimated bias subtracted from ``llc`` (``llc = llc_raw − llc_bias``).
    llc_raw : the uncorrected pooled ``nβ (mean L_n − L_n(w*))``.
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
    llc_sigma: float = float("nan")
    llc_bias: float = 0.0
    llc_raw: float = float("nan")


class ErrorBudget(NamedTuple):
    """The parts of λ̂'s total standard error (see :func:`error_budget`).

    Attributes
    ----------
    mcse : Monte-Carlo standard error (within-run autocorrelation, all chains).
    bias : estimated discretisation bias of the raw λ̂, already subtracted from
        ``LLCResult.llc`` (0 for exact samplers or without a temperature).
    bias_sd : standard deviation of that bias estimate.
    drift : excess disagreement of the kept trace's two halves (non-stationarity
        beyond what the MCSE explains), as a standard deviation.
    total : ``sqrt(mcse² + bias_sd² + drift² + bracket²)``.
    bracket : half the excess disagreement between the chains started at w* and
        those started dispersed (0 when all started alike).
    """

    mcse: float
    bias: float
    bias_sd: float
    drift: float
    total: float
    bracket: float = 0.0


LINEAR_REGIME = 0.1  # |T_conf − 1| up to which the bias is treated as linear in it


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
        llc_sigma=float(nbeta * _mcse.mcse_mean(arr)),
        llc_bias=0.0,
        llc_raw=pooled,
    )


def error_budget(
    result: LLCResult,
    losses,
    temperature: tuple[float, float] | None = None,
    *,
    dispersed=None,
) -> ErrorBudget:
    r"""Total standard error of λ̂: Monte-Carlo, step-size bias, drift and bracket.

    .. math::
        \sigma_{\mathrm{total}}^2 = \mathrm{MCSE}^2 + \sigma_{\mathrm{bias}}^2
            + \sigma_{\mathrm{drift}}^2 + \sigma_{\mathrm{bracket}}^2

    *Bias.* For unadjusted Langevin (SGLD) with step ε on a Gaussian with curvatures
    ``h_i``, the stationary law inflates each variance by ``1/(1 − εh_i/2)``, so the
    relative bias of λ̂ is ``(ε/2)·mean(h)`` while the configurational temperature
    reads ``T − 1 = (ε/2)·Σh²/Σh`` (Rickayzen & Powles 2001): without localisation
    the relative bias lies in ``[0, T − 1]``, and minibatch noise adds to both alike.
    Over random Gaussian spectra with a localiser the ratio bias/(T − 1) ranged 0.03
    to 1.65 (median 0.31; 1% and 99% quantiles 0.05 and 1.21); on a 300-parameter
    deep linear network it was measured at 0.25-0.6. So λ̂ is corrected by
    ``−λ̂_raw (T − 1)/2`` with standard deviation ``λ̂_raw (T − 1)/2`` (one σ spans
    ``[0, T − 1]``), plus the uncertainty of T itself. Below 1 (a cold, unequilibrated
    run) the sign is unknown: no correction, ``σ = λ̂ |T − 1|``. Beyond
    ``|T − 1| = 0.1`` the relation is not linear: no correction, ``σ = λ̂ |T − 1|``.

    *Drift.* Chains drifting along flat directions move λ̂ with run length, which the
    MCSE does not see (all chains drift alike). With ``Δ`` the difference of the mean
    L_n over the kept trace's two halves and ``s`` its Monte-Carlo standard error,
    ``σ_drift = nβ · sqrt(max(0, Δ² − s²))/2``: zero in expectation for a stationary
    trace.

    *Bracket.* Chains started at w* approach λ̂ from below on singular models (they
    spread along the minimum set only slowly, and all alike), chains started from a
    wider spread from above. With ``dispersed`` marking the latter, ``Δ`` the
    difference of the two groups' mean L_n and ``s`` its Monte-Carlo standard error,
    ``σ_bracket = nβ · sqrt(max(0, Δ² − s²))/2``: half the excess width of the
    bracket, whose middle the pooled mean of equal groups is.

    Parameters
    ----------
    result
        From :func:`llc` on ``losses``.
    losses : array_like (chain, draw)
        The kept (post-burn-in) L_n trace.
    temperature
        ``(T_conf, se)`` where the chains ended, for a stochastic-gradient sampler;
        ``None`` for an exact (Metropolis-adjusted) one.
    dispersed : array_like of bool (chain,), optional
        Which chains started away from w* (the others at w*); ``None`` when all
        started alike (no bracket term).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> trace = 1.0 + 0.5 / 100 + 0.001 * rng.normal(size=(4, 1000))
    >>> r = llc(trace, 1.0, n=1000, beta=0.1)
    >>> b = error_budget(r, trace, (1.02, 0.005))
    >>> round(b.bias / r.llc, 3), b.total > b.mcse
    (0.01, True)
    """
    arr = np.asarray(losses, dtype=np.float64)
    raw = result.llc_raw if np.isfinite(result.llc_raw) else result.llc
    bias = bias_sd = 0.0
    if temperature is not None:
        excess, t_se = float(temperature[0]) - 1.0, float(temperature[1])
        if 0 < excess <= LINEAR_REGIME:
            bias = raw * excess / 2
            bias_sd = abs(raw) * float(np.hypot(excess / 2, t_se / 2))
        elif excess != 0:
            bias_sd = abs(raw) * float(np.hypot(excess, t_se / 2))
    half = arr.shape[1] // 2
    a, b = arr[:, :half], arr[:, half:]
    drift = result.nbeta * _half_excess_gap(a, b)
    bracket = result.nbeta * _bracket(arr, dispersed)
    total = float(np.sqrt(result.llc_mcse**2 + bias_sd**2 + drift**2 + bracket**2))
    return ErrorBudget(
        result.llc_mcse, float(bias), float(bias_sd), drift, total, bracket
    )


def _half_excess_gap(a: np.ndarray, b: np.ndarray) -> float:
    """``sqrt(max(0, Δ² − s²))/2`` for ``Δ`` the difference of the mean L_n of two
    (chain, draw) traces and ``s`` its Monte-Carlo standard error."""
    delta = b.mean() - a.mean()
    s = float(np.hypot(_mcse.mcse_mean(a), _mcse.mcse_mean(b)))
    return float(np.sqrt(max(delta**2 - s**2, 0.0))) / 2


def _group_mask(arr: np.ndarray, dispersed) -> np.ndarray:
    mask = np.asarray(dispersed)
    if mask.dtype != bool or mask.shape != (arr.shape[0],):
        raise ValueError(
            f"dispersed must be a boolean array with one entry per chain "
            f"({arr.shape[0]}), got {mask!r}: mark the chains started away from w*."
        )
    return mask


def _bracket(arr: np.ndarray, dispersed) -> float:
    """``σ_bracket / nβ`` of :func:`error_budget` (0 without two non-empty groups)."""
    if dispersed is None:
        return 0.0
    mask = _group_mask(arr, dispersed)
    if mask.all() or not mask.any():
        return 0.0
    return _half_excess_gap(arr[~mask], arr[mask])


def group_convergence(
    losses,
    dispersed=None,
    *,
    allow_approach: bool = False,
    moving: tuple[bool, bool] | None = None,
) -> tuple[float, float]:
    """Split-R-hat and bulk ESS of an L_n trace judged within each group of chains
    (those ``dispersed`` and the rest): the larger R-hat and the summed ESS; over all
    chains when ``dispersed`` is ``None`` or a group has fewer than two chains (R-hat
    ``nan`` for one chain, as in :func:`llc`).

    Chains started at w* and chains started from a wider spread approach λ̂ from
    either side; the gap between the groups is the ``bracket`` of
    :func:`error_budget`, so a run need not wait for the groups to meet to know
    that each has mixed.

    With ``allow_approach``, a group still approaching the other (:func:`approaching`)
    is judged by the classic, unsplit R-hat (Gelman & Rubin 1992) instead: a trend
    that its chains share raises split-R-hat (the halves of every chain differ), not
    the unsplit one, which still sees chains that disagree with each other. The gap
    left between the groups is the bracket's. ESS is unchanged. A caller that has
    already computed ``approaching(losses, dispersed)`` passes it as ``moving``
    (which implies ``allow_approach``) rather than have it computed twice.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> trace = rng.normal(size=(4, 500)) + np.array([[0.0], [0.0], [2.0], [2.0]])
    >>> rhat, ess = group_convergence(trace, np.array([False, False, True, True]))
    >>> bool(rhat < 1.02), bool(group_convergence(trace)[0] > 1.2)
    (True, True)
    """
    arr = np.asarray(losses, dtype=np.float64)
    mask = None if dispersed is None else _group_mask(arr, dispersed)
    if mask is None or min(mask.sum(), (~mask).sum()) < 2:
        # all chains (as llc() does: no R-hat of one chain) when a group has < 2
        rhat = float(_mcse.rhat(arr)) if arr.shape[0] >= 2 else float("nan")
        return rhat, float(_mcse.ess_bulk(arr))
    groups = (arr[~mask], arr[mask])
    if moving is None:
        moving = approaching(arr, mask) if allow_approach else (False, False)
    return (
        max(
            float(_mcse.rhat_unsplit(g) if m else _mcse.rhat(g))
            for g, m in zip(groups, moving, strict=True)
        ),
        sum(float(_mcse.ess_bulk(g)) for g in groups),
    )


def approaching(losses, dispersed) -> tuple[bool, bool]:
    """Whether each group of starts (the chains at w*, then the ``dispersed`` ones)
    is still approaching the other from its side: the chains from w* below the
    dispersed ones on average, the gap between the groups' mean L_n shrinking between
    the trace's two halves by more than twice its Monte-Carlo standard error, and,
    for the group, *every* chain's mean moving towards the other group (up from w*,
    down from the dispersed start) and the group's mean by more than twice its
    Monte-Carlo standard error. ``(False, False)`` when a group has fewer than two
    chains.

    Chains started at w* rise towards λ̂ and hot-started ones fall, each group
    together: on the 87,100-parameter depth-5 deep linear network every chain from
    w* still rose by 30-110 (in λ units, about 1% of λ̂) between the halves of 600 to
    1,100 kept production steps, while the groups were 3-4% apart, so split-R-hat
    within that group stayed at 1.04-1.14, while the unsplit one was 1.000-1.005 (its
    chains agreed with each other). A drift that all chains share does not shrink the
    gap; one drifting chain among stationary ones rarely has every other chain move
    its way (and its group's unsplit R-hat still sees it).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> trace = 0.01 * rng.normal(size=(4, 1000)) + np.array([[0.0], [0.0], [1.0], [1.0]])
    >>> trace[:2] += np.linspace(0, 0.2, 1000)  # the lower group rises towards the other
    >>> approaching(trace, np.array([False, False, True, True]))
    (True, False)
    """
    arr = np.asarray(losses, dtype=np.float64)
    mask = _group_mask(arr, dispersed)
    if min(mask.sum(), (~mask).sum()) < 2:
        return (False, False)
    half = arr.shape[1] // 2
    low, high = arr[~mask], arr[mask]  # the chains from w*, the dispersed ones
    if not low.mean() < high.mean():
        return (False, False)

    def halves(g):
        a, b = g[:, :half], g[:, half:]
        return a, b, float(np.hypot(_mcse.mcse_mean(a), _mcse.mcse_mean(b)))

    (la, lb, ls), (ha, hb, hs) = halves(low), halves(high)
    shrink = (ha.mean() - la.mean()) - (hb.mean() - lb.mean())
    if not shrink > 2 * np.hypot(ls, hs):
        return (False, False)
    out = []
    for (a, b, s), towards in (((la, lb, ls), 1.0), ((ha, hb, hs), -1.0)):
        moved = towards * (b.mean(axis=1) - a.mean(axis=1))
        out.append(bool(np.all(moved > 0) and moved.mean() > 2 * s))
    return out[0], out[1]


def with_error_budget(result: LLCResult, budget: ErrorBudget) -> LLCResult:
    """``result`` with the bias subtracted from ``llc`` and ``llc_sigma`` = total."""
    raw = result.llc_raw if np.isfinite(result.llc_raw) else result.llc
    return result._replace(
        llc=raw - budget.bias, llc_raw=raw, llc_bias=budget.bias, llc_sigma=budget.total
    )
