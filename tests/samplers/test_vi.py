"""Mean-field VI: −ELBO is an upper bound on F_n, with the closed-form gap.

For a Gaussian posterior with precision Λ the best mean-field q has variances 1/Λ_ii
and ``KL(q‖p) = ½(Σ log Λ_ii − log|Λ|)``; the fitted gap must match it within
3 standard errors plus the float32 resolution of ``log p̃`` (``4 ε₃₂ |F|``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_sampler import tempered_posterior
from slt_sampler.samplers.vi import meanfield_vi
from tests.samplers._free_energy_models import (
    FLOAT32_NATS,
    conjugate,
    power,
    product,
)


def _optimal_gap(post_cov) -> float:
    lam = np.linalg.inv(post_cov)
    return 0.5 * (np.sum(np.log(np.diag(lam))) - np.linalg.slogdet(lam)[1])


def _check_conjugate(d: int, n: int, seed: int, **kw) -> None:
    post, _, exact = conjugate(seed=seed, d=d, n=n)
    res = meanfield_vi(jax.random.key(seed + 1), post, jnp.zeros(d), **kw)
    F, se = exact.free_energy, float(res.elbo_se)
    fp = FLOAT32_NATS * abs(F)
    gap, best = float(res.neg_elbo) - F, _optimal_gap(exact.post_cov)
    print(f"d={d} n={n}: -ELBO - F = {gap:.4f} ± {se:.4f}, optimal gap {best:.4f}")
    assert float(res.neg_elbo) >= F - 3 * se - fp  # an upper bound on F_n
    assert abs(gap - best) <= 3 * se + fp
    np.testing.assert_allclose(res.mean, exact.post_mean, atol=0.05 * res.std.min())
    np.testing.assert_allclose(
        res.std, 1 / np.sqrt(np.diag(np.linalg.inv(exact.post_cov))), rtol=0.02
    )


def test_conjugate_gap_small():
    _check_conjugate(d=5, n=500, seed=0, num_steps=500, num_eval_samples=4000)


@pytest.mark.slow
@pytest.mark.parametrize("d", [2, 10, 50])
def test_conjugate_gap_n10k(d):
    _check_conjugate(d=d, n=10_000, seed=d)


@pytest.mark.slow
def test_singular_product_model_bound():
    """Singular posterior (a cross along the axes): −ELBO ≥ F with a large gap."""
    post, _, exact = product(seed=3, n=10_000)
    res = meanfield_vi(jax.random.key(0), post, jnp.array([0.3, 0.2]))
    se = float(res.elbo_se)
    gap = float(res.neg_elbo) - exact
    print(f"w1 w2 model: -ELBO - F = {gap:.3f} ± {se:.3f}")
    assert gap >= -3 * se - FLOAT32_NATS * abs(exact)
    assert gap > 0.3  # a Gaussian cannot fit the cross: the bound is visibly loose


def _best_gaussian_gap(log_target, log_z: float, start) -> float:
    """``min_{μ,s} KL(N(μ, s²) ‖ p)`` for a 1-D target, by Gauss–Hermite quadrature
    (200 nodes) of the ELBO and Nelder–Mead over ``(μ, log s)``."""
    from scipy import optimize

    nodes, weights = np.polynomial.hermite_e.hermegauss(200)
    weights = weights / weights.sum()

    def neg_elbo(p):
        mu, log_s = p
        w = mu + np.exp(log_s) * nodes
        entropy = 0.5 * math.log(2 * math.pi * math.e) + log_s
        return -(weights @ log_target(w) + entropy)

    best = optimize.minimize(neg_elbo, start, method="Nelder-Mead", tol=1e-12)
    return float(best.fun + log_z)


@pytest.mark.slow
def test_singular_power_model_gap_against_quadrature():
    """1-D ``y = w² x`` (N(0, 1) prior): the posterior ∝ φ(w) e^{-A(w² - f̂)²} is far
    from Gaussian; the fitted gap must match the best Gaussian's, found by
    quadrature."""
    post, _, exact, model = power(
        seed=4, k=2, n=10_000, prior="gaussian", model_out=True
    )
    res = meanfield_vi(jax.random.key(1), post, jnp.array([0.2]))
    se = float(res.elbo_se)
    gap = float(res.neg_elbo) - exact
    sxx, sxy, syy, n = model.sxx, model.sxy, model.syy, model.x.shape[0]

    def log_target(w):
        f = w**2
        nll = 0.5 * (syy - 2 * f * sxy + f**2 * sxx) + 0.5 * n * math.log(2 * math.pi)
        return -0.5 * w**2 - 0.5 * math.log(2 * math.pi) - nll

    start = [float(res.mean[0]), math.log(float(res.std[0]))]
    best = _best_gaussian_gap(log_target, -exact, start)
    print(f"w^2 model: -ELBO - F = {gap:.4f} ± {se:.4f}, best Gaussian {best:.4f}")
    tol = 3 * se + FLOAT32_NATS * abs(exact)
    assert gap >= -tol
    assert abs(gap - best) <= tol


def test_flat_prior_is_rejected():
    x = jnp.linspace(-1.0, 1.0, 8)
    post = tempered_posterior(
        lambda w, b: -0.5 * (b - w[0]) ** 2 - 0.5 * math.log(2 * math.pi), x
    )
    with pytest.raises(ValueError, match=r"logprior_fn is None.*normalised"):
        meanfield_vi(jax.random.key(0), post, jnp.zeros(1))


def test_non_normalisable_prior_is_rejected():
    x = jnp.linspace(-1.0, 1.0, 8)
    post = tempered_posterior(
        lambda w, b: -0.5 * (b - w[0]) ** 2 - 0.5 * math.log(2 * math.pi),
        x,
        logprior_fn=lambda w: 0.1 * jnp.sum(w**2),
    )
    with pytest.raises(ValueError, match="not normalisable"):
        meanfield_vi(jax.random.key(0), post, jnp.zeros(2))


def test_bad_settings_name_the_argument():
    post, _, _ = conjugate(seed=0, d=2, n=50)
    with pytest.raises(ValueError, match="learning_rate"):
        meanfield_vi(jax.random.key(0), post, jnp.zeros(2), learning_rate=0.0)
    with pytest.raises(ValueError, match="init_position"):
        meanfield_vi(jax.random.key(0), post, jnp.zeros(2).at[0].set(jnp.nan))
