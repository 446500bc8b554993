"""Exact free energies of the 1-D / 2-D singular regressions, by independent routes.

Population closed forms (zoo.coefficients) when Σxy = 0, a brute-force 2-D tensor grid
under refinement, finite differences in β, thermodynamic integration by scipy, and
the TemperedPosterior's own log density.
"""

from __future__ import annotations

import itertools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

from slt_sampler import logdensity, zoo
from slt_sampler.zoo import coefficients as coef
from slt_sampler.zoo import quadrature as quad


@pytest.fixture(scope="module")
def orthogonal_data():
    """Data with Σ x y = 0 (to float32 rounding): the loss is nL_min + A f², the
    population form ``t K`` with ``K = f²`` and ``t = β Σx² / 2σ²``."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(10_000).astype(np.float32).astype(np.float64)
    y = rng.standard_normal(10_000).astype(np.float32).astype(np.float64)
    y = y - x * (x @ y) / (x @ x)
    return x, y


@pytest.mark.parametrize(
    "kind, k", [("power", 1), ("power", 2), ("power", 3), ("product", 1)]
)
@pytest.mark.parametrize("beta", [0.01, 0.1, 1.0])
def test_population_closed_forms(orthogonal_data, kind, k, beta):
    x, y = orthogonal_data
    model = quad.regression_from_data(x, y, kind=kind, k=k)
    assert abs(model.sxy / model.sxx) < 1e-8
    ex = quad.quadrature_exact(model, beta)
    t = beta * model.sxx / (2 * model.sigma**2)
    if kind == "power":
        f_pop, te_pop = coef.power_free_energy(t, k), coef.power(k).lam
        t2var_pop = te_pop  # log Z = −log t / 2k + c
    else:
        f_pop = coef.normal_crossing_free_energy(t)
        te_pop = coef.normal_crossing_mean_energy(t)
        t2var_pop = te_pop - 1.0 / (math.log(t) + 2 * coef._NC_C0) ** 2
    assert ex.free_energy - beta * ex.n_loss_min == pytest.approx(f_pop, abs=1e-6)
    assert beta * (ex.mean_energy - ex.n_loss_min) == pytest.approx(te_pop, abs=1e-6)
    assert beta**2 * ex.var_energy == pytest.approx(t2var_pop, abs=1e-6)
    assert ex.error < 1e-9


def _grid(hi, num):
    g = np.unique(
        np.concatenate(
            [
                np.linspace(-hi, hi, num),
                np.geomspace(1e-8, hi, num),
                -np.geomspace(1e-8, hi, num),
                [0.0],
            ]
        )
    )
    w = np.zeros_like(g)
    w[:-1] += np.diff(g) / 2
    w[1:] += np.diff(g) / 2
    return g, w


def _brute_force_free_energy(model, beta, num):
    """2-D trapezoid over a uniform + geometrically graded tensor grid."""
    hi = model.prior_scale * (1.0 if model.prior == "uniform" else 9.0)
    g, wt = _grid(hi, num)
    if model.prior == "uniform":
        lp = np.full(g.size, -math.log(2 * model.prior_scale))
    else:
        lp = -0.5 * (g / model.prior_scale) ** 2 - 0.5 * math.log(
            2 * math.pi * model.prior_scale**2
        )
    s2 = model.sigma**2
    n = model.x.size
    shift = beta * (
        0.5 * n * math.log(2 * math.pi * s2)
        + (model.syy - model.sxy**2 / model.sxx) / (2 * s2)
    )
    total = 0.0
    for i in range(0, g.size, 512):
        f = g[i : i + 512, None] * g[None, :]
        n_loss = 0.5 * n * math.log(2 * math.pi * s2) + (
            model.syy - 2 * f * model.sxy + f**2 * model.sxx
        ) / (2 * s2)
        logv = -beta * n_loss + lp[i : i + 512, None] + lp[None, :]
        total += np.sum(wt[i : i + 512, None] * wt[None, :] * np.exp(logv + shift))
    return shift - math.log(total)


def _outer_w1_free_energy(model, beta):
    """An independent route for the product model: the w2 integral in closed form
    (a Gaussian in w2: normal-CDF differences for the uniform prior, a Gaussian
    convolution for the Gaussian prior), then 1-D adaptive quadrature over w1."""
    s2, n, a = model.sigma**2, model.x.size, model.prior_scale
    q = beta * model.sxx / (2 * s2)
    f_hat = model.sxy / model.sxx
    n_loss_min = 0.5 * n * math.log(2 * math.pi * s2) + (
        model.syy - model.sxy**2 / model.sxx
    ) / (2 * s2)
    shift = q * (f_hat - min(max(f_hat, -(a**2)), a**2)) ** 2
    if model.prior == "uniform":

        def log_inner(w1):  # log ∫_{-a}^{a} (1/2a) e^{-q (w1 w2 - f̂)² + shift} dw2
            c, m = math.sqrt(2 * q) * abs(w1), f_hat / w1
            hi, lo = special.log_ndtr(c * (a - m)), special.log_ndtr(c * (-a - m))
            log_mass = hi + math.log1p(-math.exp(lo - hi))
            return 0.5 * math.log(2 * math.pi) - math.log(c * 2 * a) + log_mass + shift

        def outer(w1):
            return math.exp(log_inner(w1)) / (2 * a)

        lim = a
    else:

        def outer(w1):
            r = 1 + 2 * q * w1**2 * a**2
            dens = math.exp(-0.5 * (w1 / a) ** 2) / math.sqrt(2 * math.pi * a * a)
            return dens * math.exp(-q * f_hat**2 / r + shift) / math.sqrt(r)

        lim = 12 * a
    kinks = [abs(f_hat) / a * c for c in (0.5, 1.0, 2.0)]  # where f̂/w1 = ±a
    pts = sorted({1e-12, 1e-6, 1e-3, 0.03, 0.3, 0.9 * lim, lim, *kinks} - {0.0})
    pts = [p for p in pts if p <= lim]
    with warnings.catch_warnings():
        # the normal-CDF difference loses relative precision where the integrand is
        # ~e^{-q f̂²} (negligible); QUADPACK warns there, the sum is unaffected
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        total = sum(
            integrate.quad(outer, lft, rgt, epsabs=0, epsrel=1e-12, limit=400)[0]
            for lft, rgt in itertools.pairwise(pts)
        )
    return beta * n_loss_min + shift - math.log(2 * total)


@pytest.mark.parametrize("prior", ["uniform", "gaussian"])
@pytest.mark.parametrize("f_true", [0.0, 0.3])
def test_product_model_against_independent_routes(prior, f_true):
    model = quad.product_regression(
        jax.random.key(1), 10_000, prior=prior, f_true=f_true
    )
    for beta in (0.02, 1.0):
        exact = quad.quadrature_exact(model, beta).free_energy
        assert _outer_w1_free_energy(model, beta) == pytest.approx(exact, abs=1e-8)
    # brute-force trapezoid on a 2-D graded grid: error O(h²), ~1e-4 at this size
    assert _brute_force_free_energy(model, 1.0, 1000) == pytest.approx(
        exact, abs=1.5e-4
    )


_MAKERS = {
    "product_gauss": lambda: quad.product_regression(
        jax.random.key(2), 2000, prior="gaussian"
    ),
    "product_f0.5": lambda: quad.product_regression(
        jax.random.key(2), 2000, f_true=0.5
    ),
    "power2_gauss": lambda: quad.power_regression(
        jax.random.key(3), 2, 2000, prior="gaussian"
    ),
    "power3_f0.2": lambda: quad.power_regression(
        jax.random.key(3), 3, 2000, f_true=0.2
    ),
}


@pytest.mark.parametrize("name", list(_MAKERS))
def test_derivatives_of_free_energy(name):
    model = _MAKERS[name]()
    for beta in (0.05, 1.0):
        ex = quad.quadrature_exact(model, beta)
        h = 1e-4 * beta
        fp = quad.quadrature_exact(model, beta + h).free_energy
        fm = quad.quadrature_exact(model, beta - h).free_energy
        assert (fp - fm) / (2 * h) == pytest.approx(ex.mean_energy, rel=1e-8)
        h2 = 1e-2 * beta
        fp = quad.quadrature_exact(model, beta + h2).free_energy
        fm = quad.quadrature_exact(model, beta - h2).free_energy
        second = (fp - 2 * ex.free_energy + fm) / h2**2
        assert -second == pytest.approx(ex.var_energy, rel=2e-3)
    assert quad.quadrature_exact(model, 0.0).free_energy == pytest.approx(0, abs=1e-10)


@pytest.mark.parametrize(
    "name",
    [
        "power3_f0.2",
        *(
            pytest.param(m, marks=pytest.mark.slow)
            for m in _MAKERS
            if m != "power3_f0.2"
        ),
    ],
)
def test_thermodynamic_integration_by_scipy(name):
    """∫_0^1 E_β[nL_n] dβ (adaptive, β = u⁴) equals F_n(1)."""
    model = _MAKERS[name]()
    val, _ = integrate.quad(
        lambda u: 4 * u**3 * quad.quadrature_exact(model, u**4).mean_energy,
        0.0,
        1.0,
        epsabs=1e-8,
        epsrel=1e-11,
        limit=200,
    )
    assert val == pytest.approx(quad.quadrature_exact(model, 1.0).free_energy, abs=1e-5)


@pytest.mark.parametrize("kind", ["power", "product"])
@pytest.mark.parametrize("prior", ["uniform", "gaussian"])
def test_posterior_matches_sufficient_statistics(kind, prior):
    if kind == "power":
        model = quad.power_regression(jax.random.key(4), 3, 500, prior=prior)
    else:
        model = quad.product_regression(jax.random.key(4), 500, prior=prior)
    ex = quad.quadrature_exact(model, 1.0)
    amp = model.sxx / (2 * model.sigma**2)
    f_hat = model.sxy / model.sxx
    rng = np.random.default_rng(5)
    for w in rng.uniform(-0.9, 0.9, size=(5, model.dim)):
        f = w[0] ** model.k if kind == "power" else w[0] * w[1]
        n_loss = ex.n_loss_min + amp * (f - f_hat) ** 2
        if prior == "uniform":
            lp = -model.dim * math.log(2.0)
        else:
            lp = -0.5 * w @ w - 0.5 * model.dim * math.log(2 * math.pi)
        got = float(logdensity(model.posterior, jnp.asarray(w, jnp.float32)))
        assert got == pytest.approx(lp - n_loss, abs=2e-3)
    if prior == "uniform":
        outside = jnp.full((model.dim,), 1.5, jnp.float32)
        assert float(logdensity(model.posterior, outside)) == -math.inf


def test_learning_coefficient_and_wbic():
    model = quad.product_regression(jax.random.key(6), 10_000)
    assert model.true == coef.monomial([1, 1])
    assert quad.power_regression(jax.random.key(6), 3, 100).true.lam == pytest.approx(
        1 / 6
    )
    assert quad.power_regression(jax.random.key(6), 3, 100, f_true=0.5).true.lam == 0.5
    beta = 1 / math.log(10_000)
    assert quad.wbic_quadrature(model) == quad.quadrature_exact(model, beta).mean_energy
    assert zoo.QuadratureModel is quad.QuadratureModel


def test_bad_input():
    with pytest.raises(ValueError, match="kind"):
        quad.regression_from_data(np.ones(5), np.ones(5), kind="cubic")
    with pytest.raises(ValueError, match="prior"):
        quad.product_regression(jax.random.key(0), 10, prior="flat")
    with pytest.raises(ValueError, match="x and y"):
        quad.regression_from_data(np.ones(5), np.ones(4), kind="power")
    model = quad.product_regression(jax.random.key(0), 100)
    with pytest.raises(ValueError, match="beta"):
        quad.quadrature_exact(model, -1.0)
    with pytest.raises(TypeError, match="QuadratureModel"):
        quad.quadrature_exact(object(), 1.0)


def test_peak_outside_prior_range():
    """f̂ = 3 beyond the uniform prior's range |f| <= 1: no underflow, and the value
    agrees with the brute-force grid."""
    x = np.random.default_rng(0).standard_normal(200)
    model = quad.regression_from_data(x, 3.0 * x, kind="product")
    ex = quad.quadrature_exact(model, 1.0)
    assert np.isfinite(ex.free_energy) and ex.free_energy > ex.n_loss_min > 0
    assert _outer_w1_free_energy(model, 1.0) == pytest.approx(ex.free_energy, abs=1e-8)
    even = quad.regression_from_data(x, -0.5 * x, kind="power", k=2)
    ex = quad.quadrature_exact(even, 1.0)
    h = 1e-4
    fp = quad.quadrature_exact(even, 1.0 + h).free_energy
    fm = quad.quadrature_exact(even, 1.0 - h).free_energy
    assert (fp - fm) / (2 * h) == pytest.approx(ex.mean_energy, rel=1e-8)
