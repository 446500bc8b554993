"""Thermodynamic integration, WBIC and β ladders against exact free energies.

Ground truth: the conjugate regression (closed forms) and the quadrature models of
the zoo. Tolerances come from the estimators' own error bars (3σ), and the bars are
checked for honesty: they cover the truth and are not much wider than the actual
error.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_sampler import zoo
from slt_sampler.estimators import free_energy as fe


def _n_loss(model, w):
    """n L_n at each row of w (float64, from sufficient statistics)."""
    x, y, s2 = model.x, model.y, model.sigma**2
    gram, xty, yty = model.gram, model.xty, y @ y
    quad = yty - 2 * w @ xty + np.einsum("...i,ij,...j->...", w, gram, w)
    return 0.5 * x.shape[0] * math.log(2 * math.pi * s2) + 0.5 * quad / s2


def _pilot_ladder(model, num):
    pb = np.geomspace(1e-7, 1.0, 15)
    _, pv = zoo.energy_moments(model, pb)
    return fe.beta_ladder(num, beta_min=1e-6, pilot_betas=pb, pilot_var_energy=pv)


@pytest.fixture(scope="module", params=[2, 10, 50])
def conjugate(request):
    d = request.param
    return zoo.conjugate_regression(jax.random.key(100 + d), d, n=10_000)


def test_exact_moments_reproduce_free_energy(conjugate):
    truth = float(zoo.free_energy_exact(conjugate, 1.0))
    betas = _pilot_ladder(conjugate, 48)
    e, v = zoo.energy_moments(conjugate, betas)
    res = fe.integrate_energy(betas, e, v)
    assert res.mcse == 0.0 and res.sigma <= 0.5
    err = res.free_energy - truth
    assert abs(err) < 3 * res.sigma
    # honest quadrature error: within a factor 2 of the actual error, both ways
    assert 0.5 * res.quadrature_error < abs(err) < 2 * res.quadrature_error
    trap_err = res.trapezoid - truth
    assert 0.7 * res.trapezoid_error < abs(trap_err) < 1.3 * res.trapezoid_error


@pytest.mark.parametrize("num", [16, 24, 32, 64])
def test_quadrature_error_is_honest_across_ladder_sizes(num):
    model = zoo.conjugate_regression(jax.random.key(7), 10, n=10_000)
    truth = float(zoo.free_energy_exact(model, 1.0))
    for betas in (fe.beta_ladder(num, beta_min=1e-6), _pilot_ladder(model, num)):
        e, v = zoo.energy_moments(model, betas)
        res = fe.integrate_energy(betas, e, v)
        ratio = abs(res.free_energy - truth) / res.quadrature_error
        assert 0.5 < ratio < 1.5


def test_exact_samples_reproduce_free_energy(conjugate):
    """Exact posterior draws at every rung (4 'chains' x 500): TI within 3σ, σ <= 0.5,
    and the reported MCSE matches the ideal sqrt(Σ_k a_k² Var_k / N) of iid draws."""
    d = conjugate.dim
    truth = float(zoo.free_energy_exact(conjugate, 1.0))
    betas = _pilot_ladder(conjugate, 48)
    keys = jax.random.split(jax.random.key(d), betas.size)
    draws = [zoo.posterior_sample(k, conjugate, b, 2000) for k, b in zip(keys, betas)]
    energies = np.stack([_n_loss(conjugate, w).reshape(4, 500) for w in draws])
    res = fe.thermodynamic_integration(betas, energies)
    assert res.sigma <= 0.5
    assert abs(res.free_energy - truth) < 3 * res.sigma
    e, v = zoo.energy_moments(conjugate, betas)
    np.testing.assert_array_less(
        np.abs(res.mean_energy - e), 5 * np.sqrt(v / 2000) + 1e-9
    )
    a = np.zeros(betas.size)
    a[:-1] += np.diff(betas) / 2
    a[1:] += np.diff(betas) / 2
    ideal = math.sqrt(np.sum(a**2 * v) / 2000)
    assert 0.7 * ideal < res.mcse < 1.5 * ideal
    # with the exact variances the rule only averages the draws' means
    exact_v = fe.thermodynamic_integration(betas, energies, var_energy=v)
    assert abs(exact_v.free_energy - truth) < 3 * exact_v.sigma


@pytest.mark.slow
def test_mcse_is_honest_over_seeds():
    """z = (F̂ − F)/σ over 40 independent exact-sample runs: mean ~ 0, sd ~ 1."""
    model = zoo.conjugate_regression(jax.random.key(9), 5, n=10_000)
    truth = float(zoo.free_energy_exact(model, 1.0))
    betas = _pilot_ladder(model, 32)
    z = []
    for seed in range(40):
        keys = jax.random.split(jax.random.key(1000 + seed), betas.size)
        energies = np.stack(
            [
                _n_loss(model, zoo.posterior_sample(k, model, b, 400)).reshape(2, 200)
                for k, b in zip(keys, betas)
            ]
        )
        res = fe.thermodynamic_integration(betas, energies)
        z.append((res.free_energy - truth) / res.sigma)
    z = np.asarray(z)
    assert abs(z.mean()) < 3 / math.sqrt(len(z)) + 0.2
    assert 0.7 < z.std(ddof=1) < 1.4


def test_hermite_rule_is_exact_for_cubics():
    betas = np.array([0.0, 0.1, 0.35, 0.6, 1.0])
    e = 3 - 2 * betas + betas**2 - 0.5 * betas**3
    slope = -2 + 2 * betas - 1.5 * betas**2
    res = fe.integrate_energy(betas, e, -slope)
    assert res.free_energy == pytest.approx(3 - 1 + 1 / 3 - 0.125, abs=1e-13)
    assert res.quadrature_error < 1e-12


def test_quadrature_models_by_integration():
    """TI on the (w1 w2)² model and w^4 with exact rung moments from quadrature."""
    for model in (
        zoo.product_regression(jax.random.key(3), 10_000),
        zoo.power_regression(jax.random.key(3), 2, 10_000, prior="gaussian"),
    ):
        truth = zoo.quadrature_exact(model, 1.0).free_energy
        betas = fe.beta_ladder(40, beta_min=1e-6)
        ex = [zoo.quadrature_exact(model, b) for b in betas]
        res = fe.integrate_energy(
            betas, [x.mean_energy for x in ex], [x.var_energy for x in ex]
        )
        assert abs(res.free_energy - truth) < 3 * res.sigma
        assert res.sigma < 0.05


def test_wbic_against_exact():
    model = zoo.conjugate_regression(jax.random.key(11), 10, n=10_000)
    beta = 1 / math.log(10_000)
    w = zoo.posterior_sample(jax.random.key(12), model, beta, 4000)
    res = fe.wbic(_n_loss(model, w).reshape(4, 1000), 10_000)
    assert res.beta == pytest.approx(beta)
    assert abs(res.wbic - zoo.wbic_exact(model)) < 3 * res.mcse
    v = zoo.energy_moments(model, beta)[1]
    assert res.mcse == pytest.approx(math.sqrt(v / 4000), rel=0.2)
    assert res.per_chain.shape == (4,) and res.rhat < 1.01


def test_beta_ladder_shapes_and_equal_length():
    lad = fe.beta_ladder(10, beta_min=1e-4)
    assert lad[0] == 0 and lad[1] == pytest.approx(1e-4) and lad[-1] == 1.0
    assert lad.size == 10 and np.all(np.diff(lad) > 0)
    np.testing.assert_allclose(np.diff(np.log(lad[1:])), math.log(1e4) / 8, rtol=1e-3)
    # pilot Var = c/β² on the whole range: equal thermodynamic length is geometric
    pb = np.geomspace(1e-4, 1, 5)
    lad2 = fe.beta_ladder(10, beta_min=1e-4, pilot_betas=pb, pilot_var_energy=3 / pb**2)
    np.testing.assert_allclose(lad2, lad, rtol=2e-3)
    # Var constant: rungs uniform in β apart from the geometric floor
    lad3 = fe.beta_ladder(
        50,
        beta_min=1e-4,
        pilot_betas=pb,
        pilot_var_energy=np.ones(5),
        geometric_fraction=0.0,
    )
    np.testing.assert_allclose(np.diff(lad3[1:]), (1 - 1e-4) / 48, rtol=1e-2)


def test_bad_input():
    e = np.ones((3, 2, 10))
    with pytest.raises(ValueError, match="start at 0"):
        fe.thermodynamic_integration([0.1, 0.5, 1.0], e)
    with pytest.raises(ValueError, match="strictly increasing"):
        fe.thermodynamic_integration([0.0, 0.5, 0.5], e)
    with pytest.raises(ValueError, match="rungs but betas"):
        fe.thermodynamic_integration([0.0, 0.5, 0.7, 1.0], e)
    with pytest.raises(ValueError, match="shape"):
        fe.thermodynamic_integration([0.0, 0.5, 1.0], np.ones((3, 10)))
    with pytest.raises(ValueError, match="NaN"):
        bad = e.copy()
        bad[1, 0, 3] = np.nan
        fe.thermodynamic_integration([0.0, 0.5, 1.0], bad)
    with pytest.raises(ValueError, match=">= 0"):
        fe.integrate_energy([0.0, 0.5, 1.0], [1, 2, 3], [1, -1, 1])
    with pytest.raises(ValueError, match="n must"):
        fe.wbic(np.ones((2, 10)), 1)
    with pytest.raises(ValueError, match="beta_min"):
        fe.beta_ladder(5, beta_min=0.0)
    with pytest.raises(ValueError, match="beta_min"):
        fe.beta_ladder(5, beta_min=2.0)
    with pytest.raises(ValueError, match="num"):
        fe.beta_ladder(2, beta_min=0.1)
    with pytest.raises(ValueError, match="strictly increasing"):
        fe.beta_ladder(
            5, beta_min=0.1, pilot_betas=[0.5, 0.2], pilot_var_energy=[1.0, 1.0]
        )


def _sampled_ti(model, betas, prior_draws, starts, *, seed, steps=3000, burn=1000):
    """TI from HMC chains (slt_sampler.sample, 8 leapfrog steps) at every rung;
    exact prior draws at β = 0. ``starts(key, beta) -> (chain, dim)``; leapfrog step
    0.3/sqrt(nβ + 10), about a third of the posterior width, capped where the prior
    dominates."""
    from slt_sampler import HMC, sample

    n = model.posterior.n
    keys = jax.random.split(jax.random.key(seed), betas.size)
    rows = [prior_draws]
    for key, b in zip(keys[1:], betas[1:]):
        k_init, k_run = jax.random.split(key)
        start = starts(k_init, float(b))
        res = sample(
            k_run,
            HMC(
                step_size=0.3 / math.sqrt(n * b + 10),
                inverse_mass_matrix=jnp.ones(model.dim),
                num_integration_steps=8,
            ),
            model.posterior.replace(beta=float(b)),
            start,
            num_chains=start.shape[0],
            num_steps=steps,
            chains_axis=True,
            progress=False,
        )
        assert not res.diverged.any()
        rows.append(n * res.losses[:, burn:].astype(np.float64))
    return fe.thermodynamic_integration(betas, np.stack(rows))


@pytest.mark.slow
@pytest.mark.parametrize("d", [2, 10, 50])
def test_sampled_ti_conjugate(d):
    model = zoo.conjugate_regression(jax.random.key(31), d, n=10_000)
    truth = float(zoo.free_energy_exact(model, 1.0))
    betas = _pilot_ladder(model, 24 if d == 2 else 32)
    w0 = np.asarray(zoo.prior_sample(jax.random.key(32), model, 8000), np.float64)
    prior = _n_loss(model, w0).reshape(4, 2000)

    def starts(key, b):  # near the posterior mean, at the posterior's scale
        mean = zoo.conjugate_exact(model, b).post_mean
        return mean[None, :] + jax.random.normal(key, (4, d)) / math.sqrt(
            10_000 * b + 1
        )

    res = _sampled_ti(model, betas, prior, starts, seed=33)
    assert res.sigma <= 0.5
    assert abs(res.free_energy - truth) < 3 * res.sigma


@pytest.mark.slow
def test_sampled_ti_normal_crossing():
    """(w1 w2)² regression with a N(0, 1) prior: MALA chains at every rung."""
    model = zoo.product_regression(jax.random.key(34), 10_000, prior="gaussian")
    truth = zoo.quadrature_exact(model, 1.0).free_energy
    betas = fe.beta_ladder(24, beta_min=1e-5)
    w = np.random.default_rng(35).standard_normal((16_000, 2))
    f = w[:, 0] * w[:, 1]
    s2 = model.sigma**2
    prior = 0.5 * 10_000 * math.log(2 * math.pi * s2) + (
        model.syy - 2 * f * model.sxy + f**2 * model.sxx
    ) / (2 * s2)
    f_hat = model.sxy / model.sxx

    def starts(key, b):  # on the ridge w1 w2 = f̂, along either arm of the cross
        along = jax.random.normal(key, (8,))
        on = jnp.stack([along, f_hat / along], axis=1)
        return jnp.concatenate([on[:4], on[4:, ::-1]])

    res = _sampled_ti(model, betas, prior.reshape(8, 2000), starts, seed=36)
    assert res.sigma <= 0.5
    assert abs(res.free_energy - truth) < 3 * res.sigma
