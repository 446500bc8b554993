"""Streaming per-datum accumulators over kept draws, computed inside the compiled run.

For every chain and every datum ``X_i`` of the full data, the driver keeps three
running sums over the kept draws ``w_1, ..., w_K`` (every ``thinning``-th step):

.. math::

    s_i = \\log \\sum_{k=1}^{K} p(X_i \\mid w_k)
        \\quad\\text{(streaming log-sum-exp)},\\qquad
    \\bar\\ell_i,\\ M_{2,i}\\quad\\text{(Welford's running mean and sum of squares
    of } \\ell_{ik} = \\log p(X_i \\mid w_k)\\text{)}.

Memory is O(chains × n) whatever the number of draws; the per-datum log-likelihood of
one draw is evaluated in blocks of ``chunk`` data (``lax.map``), so a model's
activations are held for one block at a time. From these come the two per-datum
ingredients of WAIC and the Bayes training loss (Watanabe 2010):
``log E_w[p(X_i|w)] ≈ s_i - log K`` and ``Var_w[log p(X_i|w)] ≈ M_{2,i} / (K - 1)``.
:func:`pool_pointwise` merges chains exactly (log-mean-exp of the per-chain means of
``p``; Chan et al.'s pooled variance, which adds the between-chain part).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..types import Array, PyTree

DEFAULT_CHUNK = 8192  # data per block of the per-datum log-likelihood


class PointwiseStats(NamedTuple):
    """Per-datum posterior statistics over the kept draws of each chain.

    Arrays lead with the chain axis (``(beta, chain, n)`` from a ladder); after
    :func:`pool_pointwise` the chain axis is gone.

    Attributes
    ----------
    log_mean_lik : Array (chain, n)
        ``log((1/K) Σ_k p(X_i | w_k))``, the log of the posterior-mean likelihood of
        each datum (streaming log-sum-exp, exact in floating point up to rounding).
    mean_loglik : Array (chain, n)
        ``(1/K) Σ_k log p(X_i | w_k)``.
    var_loglik : Array (chain, n)
        ``(1/(K-1)) Σ_k (log p(X_i | w_k) - mean_loglik)²`` (Welford's update; the
        unbiased sample variance, ``ddof = 1``, as in Gelman et al. 2014's WAIC);
        NaN when ``K < 2``.
    num_draws : int
        ``K``, the number of kept draws per chain (all chains pooled after
        :func:`pool_pointwise`).
    """

    log_mean_lik: Array
    mean_loglik: Array
    var_loglik: Array
    num_draws: int


class Accumulator(NamedTuple):
    """Running sums carried through the compiled run (leading chain axis)."""

    log_sum_lik: Array  # (chain, n) log Σ_k p(X_i | w_k)
    mean: Array  # (chain, n) running mean of log p(X_i | w_k)
    m2: Array  # (chain, n) running Σ (ℓ - mean)²
    count: Array  # (chain,) int32 number of draws so far


def init_accumulator(num_chains: int, n: int, dtype) -> Accumulator:
    """Empty running sums: ``log_sum_lik = -inf``, zero mean and sum of squares."""
    shape = (num_chains, n)
    return Accumulator(
        jnp.full(shape, -jnp.inf, dtype),
        jnp.zeros(shape, dtype),
        jnp.zeros(shape, dtype),
        jnp.zeros((num_chains,), jnp.int32),
    )


def pointwise_loglik(posterior, params: PyTree, chunk: int) -> Array:
    """``log p(X_i | params)`` for every datum, in blocks of ``chunk`` data.

    The blocks run in a ``lax.map`` (one block's activations in memory at a time);
    a ragged tail is evaluated exactly. Returns shape ``(n,)``.
    """
    n = posterior.n
    if n <= chunk:
        return posterior.loglik_fn(params, posterior.data)
    num_full = n // chunk
    head = jax.tree.map(
        lambda x: x[: num_full * chunk].reshape((num_full, chunk) + x.shape[1:]),
        posterior.data,
    )
    blocks = jax.lax.map(lambda b: posterior.loglik_fn(params, b), head)
    out = blocks.reshape((num_full * chunk,))
    if n > num_full * chunk:
        tail = jax.tree.map(lambda x: x[num_full * chunk :], posterior.data)
        out = jnp.concatenate([out, posterior.loglik_fn(params, tail)])
    return out


def update(acc: Accumulator, loglik: Array) -> Accumulator:
    """Add one draw's per-datum log-likelihoods ``loglik`` (chain, n)."""
    count = acc.count + 1
    k = count.astype(loglik.dtype)[:, None]
    delta = loglik - acc.mean
    mean = acc.mean + delta / k
    m2 = acc.m2 + delta * (loglik - mean)
    return Accumulator(jnp.logaddexp(acc.log_sum_lik, loglik), mean, m2, count)


def finalize(acc: Accumulator) -> PointwiseStats:
    """Turn the running sums (as NumPy arrays) into :class:`PointwiseStats`."""
    acc = jax.device_get(acc)
    k = int(np.max(acc.count)) if np.size(acc.count) else 0
    var = acc.m2 / (k - 1) if k > 1 else np.full_like(acc.m2, np.nan)
    return PointwiseStats(
        log_mean_lik=acc.log_sum_lik - np.log(k),
        mean_loglik=acc.mean,
        var_loglik=var,
        num_draws=k,
    )


def pool_pointwise(stats: PointwiseStats) -> PointwiseStats:
    """Pool the chain axis (second to last) of :class:`PointwiseStats` exactly.

    With ``C`` chains of ``K`` draws each, the pooled statistics are those of all
    ``CK`` draws taken together:

    .. math::

        \\log \\overline{p}_i = \\operatorname{logsumexp}_c(\\log \\overline{p}_{ci})
            - \\log C,\\qquad
        \\bar\\ell_i = \\tfrac1C \\textstyle\\sum_c \\bar\\ell_{ci},

        \\operatorname{Var}_i = \\frac{\\sum_c (K-1) v_{ci}
            + K \\sum_c (\\bar\\ell_{ci} - \\bar\\ell_i)^2}{CK - 1}

    (within-chain plus between-chain sums of squares; Chan, Golub & LeVeque 1979).
    Works on ladder output too: ``(beta, chain, n)`` pools to ``(beta, n)``.
    Computed in float64.
    """
    if not isinstance(stats, PointwiseStats):
        raise TypeError(
            "stats must be the PointwiseStats of a sample(..., pointwise=True) "
            f"result (result.pointwise), got {type(stats).__name__}."
        )
    lml = np.asarray(stats.log_mean_lik, np.float64)
    if lml.ndim < 2:
        raise ValueError(
            f"stats arrays must have a chain axis, shape (chain, n); got shape "
            f"{lml.shape}. Are these statistics already pooled?"
        )
    mean_c = np.asarray(stats.mean_loglik, np.float64)
    var_c = np.asarray(stats.var_loglik, np.float64)
    chains, k = lml.shape[-2], int(stats.num_draws)
    top = np.max(lml, axis=-2, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    log_mean = (
        np.log(np.sum(np.exp(lml - top), axis=-2)) + top[..., 0, :] - math.log(chains)
    )
    mean = np.mean(mean_c, axis=-2)
    within = np.sum((k - 1) * var_c, axis=-2) if k > 1 else 0.0
    between = k * np.sum((mean_c - mean[..., None, :]) ** 2, axis=-2)
    total = chains * k
    var = (within + between) / (total - 1) if total > 1 else np.full_like(mean, np.nan)
    return PointwiseStats(log_mean, mean, var, total)
