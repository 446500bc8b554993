"""Monte-Carlo diagnostics for samples shaped ``(chain, draw)``.

Rank-normalised split R-hat, bulk / tail / mean effective sample size (ESS) and the
Monte-Carlo standard error (MCSE) of the mean, following Vehtari, Gelman, Simpson,
Carpenter & Bürkner (2021), "Rank-normalization, folding, and localization: an improved
R-hat for assessing convergence of MCMC", Bayesian Analysis 16(2)
:cite:`vehtari2021rank`.

Every statistic is computed by ``arviz_stats.base.array_stats`` (ArviZ 1.x); this module
only adds what a caller of the library would otherwise repeat: eager validation with
errors that name the argument and the fix, float64 conversion (JAX and float32 arrays
are accepted), Python-float returns, Vehtari's 5% / 95% tail quantiles as the default
(ArviZ's array interface has no default), and the per-chain MCSE, which ArviZ does not
provide as one call. These are *host-side* functions: they run after sampling, never
sample, and never import JAX or matplotlib. ``arviz_stats`` (and with it xarray) is
imported on first use, so ``import slt_sampler`` stays light.

Conventions (ArviZ's, as in Stan)
---------------------------------
* Autocovariances use the FFT estimator with divisor ``N`` (biased, positive definite).
* ESS uses Geyer's initial positive and initial monotone sequences on the multi-chain
  combined autocorrelation, with the bound ``tau >= 1 / log10(S)``.
* "Split" means each chain is cut into its first and last ``draw // 2`` draws (the
  middle draw of an odd-length chain is dropped) and the halves are treated as chains.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "ess_bulk",
    "ess_mean",
    "ess_tail",
    "mcse_mean",
    "per_chain_mcse",
    "rhat",
]

_MIN_DRAWS = 4

_ERR_NDIM = (
    "`{name}` must be a 2-D array shaped (chain, draw); got shape {shape}. "
    "For a single chain pass x[None, :]; for a vector quantity select one "
    "component, e.g. x[..., i]."
)
_ERR_DRAWS = (
    "`{name}` needs at least {min_draws} draws per chain; got shape {shape} "
    "(chain={chains}, draw={draws}). Run the sampler for more draws."
)
_ERR_CHAINS = (
    "`{name}` needs at least 2 chains for R-hat; got shape {shape}. Run several "
    "chains (num_chains >= 2), or use ess_mean/mcse_mean for a single chain."
)
_ERR_FINITE = (
    "`{name}` contains {count} non-finite value(s) (NaN or inf), first at index "
    "{index}. Drop diverged chains or draws before computing diagnostics."
)
_ERR_PROB = (
    "`prob` must be two probabilities 0 < low < high < 1, e.g. (0.05, 0.95); "
    "got {prob}."
)


def _array_stats():
    """``arviz_stats.base.array_stats``, imported on first use (it pulls in xarray)."""
    from arviz_stats.base import array_stats

    return array_stats


def _validate(x, *, name: str = "x", min_chains: int = 1) -> np.ndarray:
    """Return ``x`` as a float64 ``(chain, draw)`` array or raise ``ValueError``."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(_ERR_NDIM.format(name=name, shape=arr.shape))
    chains, draws = arr.shape
    if draws < _MIN_DRAWS:
        raise ValueError(
            _ERR_DRAWS.format(
                name=name,
                min_draws=_MIN_DRAWS,
                shape=arr.shape,
                chains=chains,
                draws=draws,
            )
        )
    if chains < min_chains:
        raise ValueError(_ERR_CHAINS.format(name=name, shape=arr.shape))
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            _ERR_FINITE.format(name=name, count=int(bad.sum()), index=index)
        )
    return arr


def rhat(x: npt.ArrayLike) -> float:
    r"""Rank-normalised split R-hat (Vehtari et al. 2021).

    .. math::
        \hat R = \max\bigl(\hat R_{\text{bulk}}, \hat R_{\text{tail}}\bigr),\qquad
        \hat R_{\cdot} = \sqrt{\frac{\frac{N-1}{N} W + \frac{1}{N} B}{W}}

    computed on the split chains after pooled rank-normalisation (bulk) and after
    folding around the pooled median and rank-normalising (tail):
    ``array_stats.rhat(x, method="rank")``. Chains that are each constant give
    ``nan`` (all equal) or ``inf`` (different constants).

    Parameters
    ----------
    x : array_like, shape (chain, draw)
        Finite samples; at least 2 chains and 4 draws.

    Returns
    -------
    float
        R-hat; values above about 1.01 indicate non-convergence.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(4, 500))
    >>> bool(rhat(x) < 1.01)
    True
    """
    arr = _validate(x, min_chains=2)
    with np.errstate(divide="ignore", invalid="ignore"):  # W = 0: constant chains
        return float(_array_stats().rhat(arr, method="rank"))


def rhat_unsplit(x: npt.ArrayLike) -> float:
    r"""Classic R-hat (Gelman & Rubin 1992): the formula of :func:`rhat` on the raw,
    unsplit chains (``array_stats.rhat(x, method="identity")``).

    It compares the chains' means with each other only, so a trend that all chains
    share (which split-R-hat sees, the halves of every chain differing) does not
    raise it; chains that disagree do.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(4, 500)) + np.linspace(0, 2, 500)
    >>> bool(rhat(x) > 1.1), bool(rhat_unsplit(x) < 1.01)
    (True, True)
    """
    arr = _validate(x, min_chains=2)
    with np.errstate(divide="ignore", invalid="ignore"):  # W = 0: constant chains
        return float(_array_stats().rhat(arr, method="identity"))


def ess_bulk(x: npt.ArrayLike) -> float:
    r"""Bulk effective sample size: ESS of the rank-normalised split chains.

    .. math::
        S_{\text{eff}} = \frac{S}{\hat\tau},\qquad
        \hat\tau = -1 + 2\sum_{t=0}^{2k+1}\hat\rho_t

    with :math:`\hat\rho_t` the combined multi-chain autocorrelation and ``k`` chosen
    by Geyer's initial monotone sequence: ``array_stats.ess(x, method="bulk")``.

    Parameters
    ----------
    x : array_like, shape (chain, draw)
        Finite samples; at least 4 draws. One chain is allowed.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(4, 500))
    >>> bool(1500 < ess_bulk(x) < 2500)
    True
    """
    return float(_array_stats().ess(_validate(x), method="bulk"))


def ess_tail(x: npt.ArrayLike, prob: tuple[float, float] = (0.05, 0.95)) -> float:
    r"""Tail effective sample size: min of quantile ESS at ``prob`` (default 5%, 95%).

    .. math::
        S_{\text{tail}} = \min_{q\in\{q_{lo}, q_{hi}\}}
        S_{\text{eff}}\bigl(\mathbb 1[x \le \hat Q(q)]\bigr)

    ``array_stats.ess(x, method="tail", prob=prob)``. Note:
    ``arviz_stats.ess(method="tail")`` on a DataTree without ``prob`` uses its
    ``ci_prob`` rcParam (0.89, i.e. quantiles 0.11 / 0.89); this function follows
    Vehtari et al. (2021) and uses 0.05 / 0.95. Pass ``prob=(0.11, 0.89)`` to match
    ArviZ's default.

    Parameters
    ----------
    x : array_like, shape (chain, draw)
        Finite samples; at least 4 draws.
    prob : (float, float), default (0.05, 0.95)
        Lower and upper tail probabilities.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(4, 500))
    >>> bool(1000 < ess_tail(x) < 3000)
    True
    """
    low, high = (float(p) for p in prob)
    if not 0.0 < low < high < 1.0:
        raise ValueError(_ERR_PROB.format(prob=prob))
    arr = _validate(x)
    return float(_array_stats().ess(arr, method="tail", prob=(low, high)))


def ess_mean(x: npt.ArrayLike) -> float:
    r"""Effective sample size for the mean: ESS of the raw split chains.

    ``array_stats.ess(x, method="mean")``.

    Parameters
    ----------
    x : array_like, shape (chain, draw)
        Finite samples; at least 4 draws.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(4, 500))
    >>> bool(1500 < ess_mean(x) < 2500)
    True
    """
    return float(_array_stats().ess(_validate(x), method="mean"))


def mcse_mean(x: npt.ArrayLike) -> float:
    r"""Monte-Carlo standard error of the pooled mean.

    .. math::
        \operatorname{MCSE}(\bar x)
        = \frac{\operatorname{sd}(x)}{\sqrt{S_{\text{eff,mean}}}}

    with the pooled standard deviation (``ddof=1`` over all chains and draws) and
    :func:`ess_mean`: ``array_stats.mcse(x, method="mean")``.

    Parameters
    ----------
    x : array_like, shape (chain, draw)
        Finite samples; at least 4 draws.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(4, 500))
    >>> round(mcse_mean(x), 2)
    0.02
    """
    return float(_array_stats().mcse(_validate(x), method="mean"))


def per_chain_mcse(x: npt.ArrayLike) -> np.ndarray:
    r"""MCSE of each chain's own mean, from that chain's own autocorrelation.

    .. math::
        \operatorname{MCSE}_c = \frac{\operatorname{sd}(x_c)}{\sqrt{S_{\text{eff},c}}},
        \qquad S_{\text{eff},c} = \frac{N}{\hat\tau_c}

    where :math:`\hat\tau_c` uses chain ``c``'s autocorrelation only (no splitting,
    no pooling) truncated by Geyer's initial monotone sequence, and
    :math:`\operatorname{sd}` has ``ddof=1``. ArviZ has no one call for this (its
    ``mcse(method="mean")`` splits the chain), so it is composed from
    ``array_stats.ess(method="identity")`` with each chain as its own ``(1, draw)``
    batch. This is the error bar to attach to a per-chain estimate (e.g. a per-chain
    LLC); it ignores between-chain disagreement, which :func:`rhat` and
    :func:`mcse_mean` account for.

    Parameters
    ----------
    x : array_like, shape (chain, draw)
        Finite samples; at least 4 draws.

    Returns
    -------
    numpy.ndarray, shape (chain,)

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(3, 1000))
    >>> per_chain_mcse(x).shape
    (3,)
    """
    arr = _validate(x)
    ess = _array_stats().ess(arr[:, None, :], method="identity")  # (chain,)
    return np.std(arr, axis=1, ddof=1) / np.sqrt(ess)
