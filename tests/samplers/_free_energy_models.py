"""Targets with exact free energies for the SMC and VI tests.

The zoo's models evaluate ``L_n`` on all n data; here the same posteriors get an exact
sufficient-statistics ``full_loss_fn`` (equal to the mean of ``-loglik_fn``), so a
test with n = 10⁴ costs what one with n = 10 would.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from slt_sampler import tempered_posterior
from slt_sampler.zoo.conjugate import (
    conjugate_exact,
    conjugate_regression,
    prior_sample,
)
from slt_sampler.zoo.quadrature import (
    power_regression,
    product_regression,
    quadrature_exact,
)

FLOAT32_NATS = 4 * float(np.finfo(np.float32).eps)  # relative resolution of log p̃


def conjugate(seed: int, d: int, n: int):
    """``(posterior, prior_sampler, exact)`` of the conjugate regression at β = 1."""
    model = conjugate_regression(jax.random.key(seed), d, n)
    gram = jnp.asarray(model.gram, jnp.float32)
    xty = jnp.asarray(model.xty, jnp.float32)
    yty = float(model.y @ model.y)
    const = 0.5 * math.log(2 * math.pi * model.sigma**2)

    def full_loss(w, data):
        del data
        quad = yty - 2 * w @ xty + w @ gram @ w
        return 0.5 * quad / (n * model.sigma**2) + const

    post = tempered_posterior(
        model.posterior.loglik_fn,
        model.posterior.data,
        logprior_fn=model.posterior.logprior_fn,
        beta=1.0,
        full_loss_fn=full_loss,
    )
    return (
        post,
        (lambda key, num: prior_sample(key, model, num)),
        conjugate_exact(model, 1.0),
    )


def product(seed: int, n: int = 10_000, prior_scale: float = 1.0):
    """``y = w1 w2 x + noise`` at f = 0 (λ = 1/2, m = 2), N(0, s² I) prior, β = 1:
    ``(posterior, prior_sampler, exact free energy)``."""
    model = product_regression(
        jax.random.key(seed), n, prior="gaussian", prior_scale=prior_scale
    )
    const = 0.5 * math.log(2 * math.pi * model.sigma**2)
    sxx, sxy, syy = model.sxx, model.sxy, model.syy

    def full_loss(w, data):
        del data
        f = w[0] * w[1]
        quad = syy - 2 * f * sxy + f**2 * sxx
        return 0.5 * quad / (n * model.sigma**2) + const

    post = tempered_posterior(
        model.posterior.loglik_fn,
        model.posterior.data,
        logprior_fn=model.posterior.logprior_fn,
        beta=1.0,
        full_loss_fn=full_loss,
    )

    def sampler(key, num):
        return prior_scale * jax.random.normal(key, (num, 2))

    return post, sampler, quadrature_exact(model, 1.0).free_energy


def power(
    seed: int, k: int = 2, n: int = 10_000, prior: str = "uniform", model_out=False
):
    """``y = w^k x + noise`` at f = 0 (λ = 1/(2k)), prior uniform on [−1, 1] or
    N(0, 1), β = 1: ``(posterior, prior_sampler, exact free energy[, model])``."""
    model = power_regression(jax.random.key(seed), k, n, prior=prior)
    const = 0.5 * math.log(2 * math.pi * model.sigma**2)
    sxx, sxy, syy = model.sxx, model.sxy, model.syy

    def full_loss(w, data):
        del data
        f = w[0] ** k
        quad = syy - 2 * f * sxy + f**2 * sxx
        return 0.5 * quad / (n * model.sigma**2) + const

    post = tempered_posterior(
        model.posterior.loglik_fn,
        model.posterior.data,
        logprior_fn=model.posterior.logprior_fn,
        beta=1.0,
        full_loss_fn=full_loss,
    )

    def sampler(key, num):
        if prior == "uniform":
            return jax.random.uniform(key, (num, 1), minval=-1.0, maxval=1.0)
        return jax.random.normal(key, (num, 1))

    exact = quadrature_exact(model, 1.0).free_energy
    return (post, sampler, exact, model) if model_out else (post, sampler, exact)
