"""Exact posterior draws of the conjugate regression and the per-draw / per-datum
quantities the dictionary estimators read (float64 NumPy, independent of the samplers).
"""

from __future__ import annotations

import math

import jax
import numpy as np
from scipy.special import logsumexp

from slt_sampler.zoo.conjugate import posterior_sample


def exact_draws(seed: int, model, beta: float, chains: int, draws: int) -> np.ndarray:
    """``(chains, draws, d)`` independent draws from the exact tempered posterior."""
    w = posterior_sample(jax.random.key(seed), model, beta, chains * draws)
    return w.reshape(chains, draws, -1)


def loglik(model, w, x=None, y=None) -> np.ndarray:
    """``log p(y_i | x_i, w)`` shaped ``w.shape[:-1] + (n,)``."""
    x = model.x if x is None else x
    y = model.y if y is None else y
    s2 = model.sigma**2
    r = y - np.asarray(w) @ x.T
    return -0.5 * r**2 / s2 - 0.5 * math.log(2 * math.pi * s2)


def n_loss(model, w) -> np.ndarray:
    """``n L_n(w)`` from the sufficient statistics (shape ``w.shape[:-1]``)."""
    w = np.asarray(w)
    x, y, s2 = model.x, model.y, model.sigma**2
    n = x.shape[0]
    quad = y @ y - 2 * w @ (x.T @ y) + np.einsum("...i,ij,...j->...", w, x.T @ x, w)
    return 0.5 * quad / s2 + 0.5 * n * math.log(2 * math.pi * s2)


def neg_log_prior(model, w) -> np.ndarray:
    """``-log φ(w)`` for the normalised ``N(μ0, Σ0)`` prior."""
    dm = np.asarray(w) - model.prior_mean
    prec = np.linalg.inv(model.prior_cov)
    _, logdet = np.linalg.slogdet(model.prior_cov)
    quad = np.einsum("...i,ij,...j->...", dm, prec, dm)
    return 0.5 * quad + 0.5 * model.dim * math.log(2 * math.pi) + 0.5 * logdet


def fresh_data(seed: int, model, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``m`` fresh ``(x, y)`` from the true distribution of ``model``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, model.dim))
    y = x @ model.w_true + model.sigma * rng.standard_normal(m)
    return x, y


def log_q_at(model, x, y) -> np.ndarray:
    """``log q(y | x)`` at the given data."""
    return loglik(model, model.w_true, x, y)


def log_mean_lik(model, w, x, y, chunk: int = 2000) -> np.ndarray:
    """Per-chain ``log (1/S) Σ_s p(y_j | x_j, w_s)`` for ``w (chain, draw, d)``,
    computed in chunks of data, shape ``(chain, m)``."""
    out = []
    for start in range(0, x.shape[0], chunk):
        ll = loglik(model, w, x[start : start + chunk], y[start : start + chunk])
        out.append(logsumexp(ll, axis=1) - math.log(w.shape[1]))
    return np.concatenate(out, axis=1)


def exact_loo_loss(model, beta: float) -> float:
    """``-(1/n) Σ_i log E_{p_β(w | D \\ i)} p(X_i | w)`` in closed form: removing a
    datum from the tempered Gaussian posterior is a rank-one downdate."""
    x, y, s2 = model.x, model.y, model.sigma**2
    prior_prec = np.linalg.inv(model.prior_cov)
    prec = prior_prec + beta / s2 * x.T @ x
    rhs = prior_prec @ model.prior_mean + beta / s2 * x.T @ y
    out = []
    for xi, yi in zip(x, y):
        p_i = prec - beta / s2 * np.outer(xi, xi)
        mu = np.linalg.solve(p_i, rhs - beta / s2 * xi * yi)
        v = s2 + xi @ np.linalg.solve(p_i, xi)
        out.append(-0.5 * math.log(2 * math.pi * v) - 0.5 * (yi - xi @ mu) ** 2 / v)
    return -float(np.mean(out))
