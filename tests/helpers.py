"""Small shared test helpers: a conjugate Gaussian regression with exact answers."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from slt_sampler import tempered_posterior


def tree_allclose(a, b, **kw) -> bool:
    """``np.allclose`` over two pytrees of the same structure."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(np.allclose(x, y, **kw) for x, y in zip(la, lb))


def gaussian_regression(seed: int = 0, n: int = 500, d: int = 3, sigma: float = 1.0):
    """``y = Xw + N(0, σ²)`` with a N(0, I) prior: data and per-datum log-likelihood."""
    kx, kw, ke = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(kx, (n, d))
    w0 = jax.random.normal(kw, (d,))
    y = x @ w0 + sigma * jax.random.normal(ke, (n,))
    const = 0.5 * math.log(2 * math.pi * sigma**2)

    def loglik(w, batch):
        xb, yb = batch
        return -0.5 * (yb - xb @ w) ** 2 / sigma**2 - const

    def logprior(w):
        return -0.5 * jnp.sum(w**2) - 0.5 * d * math.log(2 * math.pi)

    return x, y, loglik, logprior


def exact_mean_nll(
    x,
    y,
    beta: float,
    sigma: float = 1.0,
    prior_prec: float = 1.0,
    gamma: float = 0.0,
    center=None,
) -> float:
    """Closed-form ``E_β[n L_n]`` of the conjugate model (SLT_REFERENCE §4.2), with an
    optional Gaussian localiser folded into the prior precision."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    n, d = x.shape
    center = np.zeros(d) if center is None else np.asarray(center, np.float64)
    p0 = prior_prec + gamma
    m0 = gamma * center / p0
    prec = p0 * np.eye(d) + beta / sigma**2 * x.T @ x
    cov = np.linalg.inv(prec)
    mu = cov @ (p0 * m0 + beta / sigma**2 * x.T @ y)
    resid = y - x @ mu
    quad = resid @ resid + np.trace(x @ cov @ x.T)
    return 0.5 * n * math.log(2 * math.pi * sigma**2) + quad / (2 * sigma**2)


def regression_posterior(seed=0, n=500, d=3, beta=None, gamma=0.0, prior=True):
    x, y, loglik, logprior = gaussian_regression(seed, n, d)
    center = jnp.zeros(d)
    post = tempered_posterior(
        loglik,
        (x, y),
        logprior_fn=logprior if prior else None,
        beta=beta,
        gamma=gamma,
        center=center,
    )
    return post, x, y


def gaussian_law(seed: int = 3, n: int = 500, d: int = 3):
    """The regression posterior at β = 1/log n with its exact Gaussian law:
    ``(post, x, y, precision, mean)`` in float64 (σ = 1, N(0, I) prior)."""
    post, x, y = regression_posterior(seed=seed, n=n, d=d)
    x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
    beta = float(post.beta)
    prec = np.eye(d) + beta * x64.T @ x64
    mu = np.linalg.solve(prec, beta * x64.T @ y64)
    return post, x64, y64, prec, mu


def mean_nll(x, y, mu, cov):
    """E[n L_n] under N(mu, cov) (σ = 1)."""
    resid = y - x @ mu
    return 0.5 * len(y) * math.log(2 * math.pi) + 0.5 * (
        resid @ resid + np.trace(x @ cov @ x.T)
    )
