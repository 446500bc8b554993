"""λ four ways, end to end, against the exact learning coefficient.

Global tempered posteriors (normalised N(0, I) prior, no localisation,
:mod:`slt_sampler.zoo.bayes_linear`) of three linear-Gaussian families, sampled with
NUTS (one step size per β rung, ``sample_ladder``):

* regular regression, d = 4 (λ = 2, m = 1);
* reduced-rank regression M = N = 3, H = 2, true rank 0 (Aoyagi & Watanabe 2005:
  λ = 5/2, m = 1);
* deep linear network, widths [2, 3, 3, 2], true rank 1 (Aoyagi 2024: λ = 2, m = 1).

All three have m = 1, so the finite-n estimands carry no ``−(m − 1)/log(nβ)`` shift
(at nβ ≈ 10³ that shift would be −0.14 per unit of m − 1, 5-7% of these λ). The
ways:

1. two temperatures, β = 0.5/log n and 2/log n (Watanabe 2013);
2. the slope of E_β[nL_n] against 1/β over five β = c/log n, c ∈ [0.5, 2];
3. β² Var_β[nL_n] at β = 1/log n (Imai 2019);
4. the slope of the Bayes free energy F_n − nL_n(ŵ) against log n over
   n = 10², …, 10⁵ (Watanabe 2009), F_n by thermodynamic integration (checked
   against the closed form for the regular model); ŵ is the maximum-likelihood
   point, which removes the regular part of the O_p(1) data noise.

For way 4 the data sets at the four n share their truth and their normalised
noise ``XᵀE/√n`` (``common_noise``: common random numbers), so the O_p(1) remainder
of ``F_n − nL_n(ŵ)`` is one number for all n. With independent data sets it scatters
by about 0.7 nats between n on the singular models, which put the slope's standard
error at 5% (RRR) and 15% (DLN) of λ with four n: too wide for a 10% test.

Each estimate must lie within 10% of λ, and its own standard error must be at most
3% of λ so that the 10% check means something. Ways 1-3 use n = 10⁴.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_sampler.estimators import learning_coefficient as lc
from slt_sampler.estimators.free_energy import beta_ladder, thermodynamic_integration
from slt_sampler.samplers.hmc import NUTS
from slt_sampler.samplers.ladder import sample_ladder
from slt_sampler.zoo.bayes_linear import (
    bayes_linear_network,
    n_loss,
    prior_sample,
    regular_free_energy,
)

# name: (widths, true rank, NUTS step × sqrt(nβ + 1))
MODELS = {
    "regular": ([4, 1], 1, 0.5),
    "rrr": ([3, 2, 3], 0, 0.3),
    "dln": ([2, 3, 3, 2], 1, 0.25),
}
# Fraction of post-burn-in NUTS steps flagged divergent. On the DLN, NUTS reaches its
# maximum tree depth (2⁸ leapfrog steps) and 1.5-3% of its steps diverge at every
# rung (high curvature where one layer is large and another small, along the
# rescaling symmetries); the three ways still agree with each other and with λ, but
# those tails may be under-sampled. Measured, not hidden: bounded at 5% here.
MAX_LATE_DIVERGENCE = {"regular": 1e-3, "rrr": 1e-3, "dln": 0.05}
N = 10_000
CS = np.array([0.5, 0.7, 1.0, 1.4, 2.0])
TOL, SE_MAX = 0.10, 0.03


def _start(model, seed):
    if all(np.allclose(w, 0) for w in model.w_true):  # rank-0 truth: off the saddle
        key = jax.random.key(seed)
        return [0.1 * jax.random.normal(jax.random.fold_in(key, i), w.shape)
                for i, w in enumerate(model.w_true)]  # fmt: skip
    return [jnp.asarray(w, jnp.float32) for w in model.w_true]


def _ladder_energies(model, betas, eps, *, seed, chains, steps, burn):
    """``nL_n − energy_offset`` draws ``(rung, chain, draw)`` from per-rung NUTS."""
    n = model.posterior.n
    samplers = [
        NUTS(jnp.float32(eps / math.sqrt(n * b + 1)), jnp.ones(model.dim), 8)
        for b in betas
    ]
    res = sample_ladder(
        jax.random.key(seed),
        samplers,
        model.posterior,
        _start(model, seed + 1),
        betas=betas,
        num_chains=chains,
        num_steps=steps,
        progress=False,
    )
    late_div = res.stats["is_divergent"][:, :, burn:].mean()
    return n * np.asarray(res.losses[:, :, burn:], np.float64), late_div


def test_bayes_linear_exact_pieces():
    """Fast checks of the model: the closed-form regular F_n(β) against 2-D
    quadrature, the shifted loss against the per-datum likelihood, and common noise
    giving one least-squares map √n (Ŵ − W_0) at every n."""
    from scipy import integrate

    m = bayes_linear_network(jax.random.key(3), [1, 2], 1, n=50, prior_scale=0.7)
    beta, centre = 0.6, m.ols.ravel()

    def density(b, a):
        w = [np.array([[[a]], [[b]]]).reshape(1, 2, 1)]
        e = n_loss(m, w)[0] - m.energy_offset
        return math.exp(-beta * e - (a * a + b * b) / (2 * 0.49)) / (2 * math.pi * 0.49)

    z, _ = integrate.dblquad(
        density, *(centre[0] + np.array([-1.5, 1.5])),
        *(centre[1] + np.array([-1.5, 1.5])), epsabs=1e-13,
    )  # fmt: skip
    exact = regular_free_energy(m, beta)
    assert exact == pytest.approx(beta * m.energy_offset - math.log(z), abs=1e-6)
    w = prior_sample(jax.random.key(4), m, 3)
    per_datum = [
        float(-np.sum(m.posterior.loglik_fn([wi[i] for wi in w], m.posterior.data)))
        for i in range(3)
    ]
    full = [float(m.posterior.n * m.posterior.full_loss_fn([wi[i] for wi in w], None))
            for i in range(3)]  # fmt: skip
    np.testing.assert_allclose(per_datum, full, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(
        np.array(full) + m.energy_offset, n_loss(m, w), rtol=1e-5
    )
    maps = []
    for n in (100, 10_000):
        mn = bayes_linear_network(
            jax.random.key(n), [3, 2, 3], 0, n=n, common_noise=jax.random.key(9)
        )
        np.testing.assert_allclose(mn.gram, np.eye(3), atol=1e-5)
        maps.append(math.sqrt(n) * mn.ols)
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-3)


@pytest.fixture(scope="module", params=list(MODELS))
def temperature_draws(request):
    widths, r, eps = MODELS[request.param]
    model = bayes_linear_network(jax.random.key(1), widths, r, n=N)
    betas = CS / math.log(N)
    e, late_div = _ladder_energies(
        model, betas, eps, seed=2, chains=8, steps=2000, burn=400
    )
    return request.param, model, betas, e, late_div


def _check(name, way, est, se, lam):
    print(f"{name} {way}: {est:.3f} ± {se:.3f} (λ = {lam}, {est / lam - 1:+.1%})")
    assert se <= SE_MAX * lam, (name, way, est, se)
    assert abs(est - lam) <= TOL * lam, (name, way, est, se)


@pytest.mark.slow
def test_lambda_from_temperatures(temperature_draws):
    name, model, betas, e, late_div = temperature_draws
    lam = model.true.lam
    print(f"{name}: divergent fraction after burn-in {late_div:.4f}")
    assert late_div < MAX_LATE_DIVERGENCE[name], late_div
    two = lc.two_temperature(e[0], e[-1], betas[0], betas[-1])
    _check(name, "two-temperature", two.lam, two.se, lam)
    slope = lc.beta_slope(betas, e)
    _check(name, "beta-slope", slope.lam, slope.se, lam)
    assert slope.chi2_dof < 5
    var = lc.variance_lambda(e[2], betas[2])
    _check(name, "variance", var.lam, var.se, lam)


def _free_energy(model, eps, *, seed, rungs, chains, steps, burn):
    """``F_n − energy_offset`` by thermodynamic integration; a ladder at equal
    thermodynamic length for the pilot ``Var_β ≈ (V0^{-1/2} + β (d/2)^{-1/2})^{-2}``
    (prior variance V0 at small nβ, the regular bound d/2 / β² at large nβ)."""
    kept = steps - burn
    e0 = n_loss(model, prior_sample(jax.random.key(seed), model, chains * kept))
    e0 = (e0 - model.energy_offset).reshape(chains, kept)
    v0 = e0.var()
    pb = np.geomspace(1e-4 / math.sqrt(v0), 1.0, 64)
    pv = (1 / math.sqrt(v0) + pb / math.sqrt(model.dim / 2)) ** -2.0
    betas = beta_ladder(
        rungs, beta_min=1e-2 / math.sqrt(v0), pilot_betas=pb, pilot_var_energy=pv
    )
    e, _ = _ladder_energies(
        model, betas[1:], eps, seed=seed + 1, chains=chains, steps=steps, burn=burn
    )
    return thermodynamic_integration(betas, np.concatenate([e0[None], e]))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_lambda_from_free_energy_slope(name):
    widths, r, eps = MODELS[name]
    ns = np.array([100, 1_000, 10_000, 100_000])
    f, sig = [], []
    for j, n in enumerate(ns):
        model = bayes_linear_network(  # one truth, one normalised noise at every n
            jax.random.key(40),
            widths,
            r,
            n=int(n),
            common_noise=jax.random.key(60),
        )
        ti = _free_energy(
            model, eps, seed=50 + j, rungs=20, chains=4, steps=800, burn=200
        )
        f.append(ti.free_energy + model.energy_offset - model.n_loss_min)
        sig.append(ti.sigma)
        print(f"{name} n={n}: F_n − nL_n(ŵ) = {f[-1]:.3f} ± {ti.sigma:.3f}")
        if name == "regular":  # thermodynamic integration against the closed form
            exact = regular_free_energy(model) - model.n_loss_min
            assert abs(f[-1] - exact) < 3 * ti.sigma, (n, f[-1], exact, ti.sigma)
    fit = lc.free_energy_slope(ns, f, sig, np.zeros(4), multiplicity=1)
    _check(name, "F_n slope", fit.lam, fit.se, model.true.lam)
