"""Monte-Carlo diagnostics for samples shaped ``(chain, draw)``.

Rank-normalised split R-hat, bulk / tail / mean effective sample size (ESS) and the
Monte-Carlo standard error (MCSE) of the mean, following Vehtari, Gelman, Simpson,
Carpenter & Bürkner (2021), "Rank-normalization, folding, and localization: an improved
R-hat for assessing convergence of MCMC", Bayesian Analysis 16(2)
:cite:`vehtari2021rank`.

These are *host-side* functions: they run after sampling, on NumPy arrays (JAX arrays
are converted with :func:`numpy.asarray`), compute in float64 and return Python floats
or NumPy arrays. They never import JAX, ArviZ or matplotlib and never sample. The
numbers agree with ``arviz_stats.base.array_stats`` (ArviZ 1.x) to floating-point
precision; the test-suite checks this.

Conventions
-----------
* Autocovariances use the FFT estimator with divisor ``N`` (biased, positive definite).
* ESS uses Geyer's initial positive sequence truncated on the multi-chain combined
  autocorrelation, followed by the initial monotone sequence, and the lower bound
  ``tau >= 1 / log10(S)`` on the integrated autocorrelation time, as in Stan / ArviZ.
* "Split" means each chain is cut into its first and last ``draw // 2`` draws (the
  middle draw of an odd-length chain is dropped) and the halves are treated as chains.
"""

from __future__ import annotations

import numpy as np
from scipy import fft as _fft
from scipy import stats as _stats

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


def _split(arr: np.ndarray) -> np.ndarray:
    """Split each chain into halves: ``(C, N) -> (2C, N // 2)``."""
    half = arr.shape[1] // 2
    return np.concatenate([arr[:, :half], arr[:, arr.shape[1] - half :]], axis=0)


def _z_scale(arr: np.ndarray) -> np.ndarray:
    """Pooled rank-normalisation with Blom's offset ``(r - 3/8) / (S + 1/4)``."""
    ranks = _stats.rankdata(arr, method="average").reshape(arr.shape)
    return _stats.norm.ppf((ranks - 0.375) / (arr.size + 0.25))


def _fold(arr: np.ndarray) -> np.ndarray:
    """Fold around the pooled median: ``|x - median(x)|``."""
    return np.abs(arr - np.median(arr))


def _autocov(arr: np.ndarray) -> np.ndarray:
    """Per-chain autocovariance for lags ``0..N-1`` (divisor ``N``), via FFT."""
    n = arr.shape[1]
    centred = arr - arr.mean(axis=1, keepdims=True)
    m = _fft.next_fast_len(2 * n)
    spec = np.fft.rfft(centred, n=m, axis=1)
    return np.fft.irfft(spec * np.conj(spec), n=m, axis=1)[:, :n] / n


def _ess_raw(arr: np.ndarray) -> float:
    """Multi-chain ESS of ``arr`` (already split / transformed), Geyer's IMSE."""
    chains, draws = arr.shape
    if np.ptp(arr) < np.finfo(np.float64).resolution:
        return float(arr.size)  # constant input: every draw is "independent"
    acov = _autocov(arr)
    mean_var = acov[:, 0].mean() * draws / (draws - 1.0)  # W, within-chain variance
    var_plus = mean_var * (draws - 1.0) / draws
    if chains > 1:
        var_plus += np.var(arr.mean(axis=1), ddof=1)  # + B / N
    rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus  # combined autocorrelation
    rho[0] = 1.0
    # Geyer's initial positive sequence: sum pairs P_k = rho_2k + rho_2k+1 up to (not
    # including) the first non-positive one, scanning at most (draws - 3) // 2 pairs.
    n_scan = max(0, (draws - 3) // 2)
    pairs = rho[: 2 * n_scan].reshape(-1, 2).sum(axis=1)
    nonpos = np.flatnonzero(pairs <= 0.0)
    n_pairs = int(nonpos[0]) if nonpos.size else n_scan
    # Geyer's initial monotone sequence: pair sums made non-increasing.
    monotone = np.minimum.accumulate(pairs[:n_pairs])
    # Stan / ArviZ refinement: add the next even lag once. It counts when positive,
    # and also (as in Stan and ArviZ) when its pair was scanned with a sum >= 0.
    tail = float(rho[2 * n_pairs])
    scanned_ok = 0 < n_pairs and rho[2 * n_pairs] + rho[2 * n_pairs + 1] >= 0.0
    if tail <= 0.0 and not scanned_ok:
        tail = 0.0
    tau = -1.0 + 2.0 * float(monotone.sum()) + tail
    tau = max(tau, 1.0 / np.log10(arr.size))
    return float(arr.size / tau)


def rhat(x) -> float:
    r"""Rank-normalised split R-hat (Vehtari et al. 2021).

    .. math::
        \hat R = \max\bigl(\hat R_{\text{bulk}}, \hat R_{\text{tail}}\bigr),\qquad
        \hat R_{\cdot} = \sqrt{\frac{\frac{N-1}{N} W + \frac{1}{N} B}{W}}

    computed on the split chains after pooled rank-normalisation (bulk) and after
    folding around the pooled median and rank-normalising (tail).

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
    arr = _split(_validate(x, min_chains=2))
    return max(_rhat_plain(_z_scale(arr)), _rhat_plain(_z_scale(_fold(arr))))


def _rhat_plain(arr: np.ndarray) -> float:
    """Classical (Gelman-Rubin) R-hat of already-split chains."""
    draws = arr.shape[1]
    between = draws * np.var(arr.mean(axis=1), ddof=1)
    within = np.mean(np.var(arr, axis=1, ddof=1))
    if within == 0.0:
        return float("nan") if between == 0.0 else float("inf")
    return float(np.sqrt((between / within + draws - 1.0) / draws))


def ess_bulk(x) -> float:
    r"""Bulk effective sample size: ESS of the rank-normalised split chains.

    .. math::
        S_{\text{eff}} = \frac{S}{\hat\tau},\qquad
        \hat\tau = -1 + 2\sum_{t=0}^{2k+1}\hat\rho_t

    with :math:`\hat\rho_t` the combined multi-chain autocorrelation and ``k`` chosen
    by Geyer's initial monotone sequence.

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
    return _ess_raw(_z_scale(_split(_validate(x))))


def ess_tail(x, prob: tuple[float, float] = (0.05, 0.95)) -> float:
    r"""Tail effective sample size: min of quantile ESS at ``prob`` (default 5%, 95%).

    .. math::
        S_{\text{tail}} = \min_{q\in\{q_{lo}, q_{hi}\}}
        S_{\text{eff}}\bigl(\mathbb 1[x \le \hat Q(q)]\bigr)

    Note: ``arviz_stats.ess(method="tail")`` without ``prob`` uses its ``ci_prob``
    rcParam (0.89, i.e. quantiles 0.11 / 0.89); this function follows Vehtari et al.
    (2021) and uses 0.05 / 0.95. Pass ``prob=(0.11, 0.89)`` to match ArviZ's default.

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
    quantiles = np.quantile(arr, [low, high])
    return min(_ess_raw(_split((arr <= q).astype(np.float64))) for q in quantiles)


def ess_mean(x) -> float:
    r"""Effective sample size for the mean: ESS of the raw split chains.

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
    return _ess_raw(_split(_validate(x)))


def mcse_mean(x) -> float:
    r"""Monte-Carlo standard error of the pooled mean.

    .. math::
        \operatorname{MCSE}(\bar x)
        = \frac{\operatorname{sd}(x)}{\sqrt{S_{\text{eff,mean}}}}

    with the pooled standard deviation (``ddof=1`` over all chains and draws) and
    :func:`ess_mean`.

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
    arr = _validate(x)
    return float(np.std(arr, ddof=1) / np.sqrt(ess_mean(arr)))


def per_chain_mcse(x) -> np.ndarray:
    r"""MCSE of each chain's own mean, from that chain's own autocorrelation.

    .. math::
        \operatorname{MCSE}_c = \frac{\operatorname{sd}(x_c)}{\sqrt{S_{\text{eff},c}}},
        \qquad S_{\text{eff},c} = \frac{N}{\hat\tau_c}

    where :math:`\hat\tau_c` uses chain ``c``'s autocorrelation only (no splitting,
    no pooling) truncated by Geyer's initial monotone sequence, and
    :math:`\operatorname{sd}` has ``ddof=1``. This is the error bar to attach to a
    per-chain estimate (e.g. a per-chain LLC); it ignores between-chain disagreement,
    which :func:`rhat` and :func:`mcse_mean` account for.

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
    sds = np.std(arr, axis=1, ddof=1)
    ess = np.array([_ess_raw(chain[None, :]) for chain in arr])
    return sds / np.sqrt(ess)
