"""λ from temperatures and from free energies, against exact finite-n values.

Draws are exact: Gaussian posteriors of the conjugate regression, and inverse-CDF
draws of f = w1 w2 (on which nL_n depends) for the quadrature model. Each estimator
is compared with the same functional of the exact moments (its finite-n estimand)
at 3 standard errors, and that estimand with the true λ.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from slt_sampler import zoo
from slt_sampler.estimators import learning_coefficient as lc
from slt_sampler.zoo import quadrature as quad

N = 10_000


def _n_loss(model, w):
    s2 = model.sigma**2
    q = model.y @ model.y - 2 * w @ model.xty
    q = q + np.einsum("...i,ij,...j->...", w, model.gram, w)
    return 0.5 * model.x.shape[0] * math.log(2 * math.pi * s2) + 0.5 * q / s2


@pytest.fixture(scope="module")
def regular():
    return zoo.conjugate_regression(jax.random.key(21), 10, n=N)


def _draws(model, beta, seed, chains=4, draws=1000):
    w = zoo.posterior_sample(jax.random.key(seed), model, beta, chains * draws)
    return _n_loss(model, w).reshape(chains, draws)


def test_two_temperature_regular(regular):
    b1, b2 = 1 / math.log(N), 2 / math.log(N)
    res = lc.two_temperature(_draws(regular, b1, 1), _draws(regular, b2, 2), b1, b2)
    (e1, e2), (v1, v2) = zoo.energy_moments(regular, [b1, b2])
    exact = (e1 - e2) / (1 / b1 - 1 / b2)
    assert exact == pytest.approx(5.0, abs=0.02)  # d/2 up to O(d/(nβ))
    assert abs(res.lam - exact) < 3 * res.se
    ideal = math.sqrt(v1 / 4000 + v2 / 4000) / (1 / b1 - 1 / b2)
    assert res.se == pytest.approx(ideal, rel=0.2)


def test_beta_slope_regular(regular):
    betas = np.array([0.5, 0.75, 1.0, 1.5, 2.0]) / math.log(N)
    energies = np.stack([_draws(regular, b, 10 + i) for i, b in enumerate(betas)])
    res = lc.beta_slope(betas, energies)
    e, v = zoo.energy_moments(regular, betas)
    design = np.stack([np.ones_like(betas), 1 / betas], 1)
    w = 4000 / v
    exact = np.linalg.solve(design.T @ (w[:, None] * design), design.T @ (w * e))[1]
    assert exact == pytest.approx(5.0, abs=0.02)
    assert abs(res.lam - exact) < 3 * res.se
    assert res.se < 0.3 and res.chi2_dof < 5


def test_variance_lambda_regular(regular):
    """Over 12 independent runs: z = (λ̂ − exact)/se has mean ~0 and sd ~1, and the
    reported se matches the spread of λ̂ (nL_n is a non-Gaussian quadratic form, so
    the se exceeds the Gaussian λ sqrt(2/S))."""
    beta = 1 / math.log(N)
    exact = beta**2 * zoo.energy_moments(regular, beta)[1]
    assert exact == pytest.approx(5.0, abs=0.05)
    runs = [lc.variance_lambda(_draws(regular, beta, s), beta) for s in range(3, 15)]
    lam = np.array([r.lam for r in runs])
    se = np.array([r.se for r in runs])
    z = (lam - exact) / se
    assert abs(z.mean()) < 3 / math.sqrt(len(z))
    assert 0.5 < z.std(ddof=1) < 1.6 and np.all(np.abs(z) < 4)
    assert lam.std(ddof=1) == pytest.approx(se.mean(), rel=0.4)
    assert runs[0].per_chain.shape == (4,)


def _f_draws(model, beta, num, rng):
    """Exact draws of f = w1 w2 under p_β by inverse CDF on a fine graded grid."""
    amp = model.sxx / (2 * model.sigma**2)
    f_hat = model.sxy / model.sxx
    width = 40 / math.sqrt(beta * amp)
    lo, hi = max(-1.0, f_hat - width), min(1.0, f_hat + width)
    grid = np.concatenate(
        [
            np.linspace(lo, hi, 200_001),
            np.geomspace(1e-14, hi, 20_000) if hi > 0 else [],
            -np.geomspace(1e-14, -lo, 20_000) if lo < 0 else [],
        ]
    )
    grid = np.unique(grid[(grid >= lo) & (grid <= hi) & (grid != 0)])
    dens = quad._product_density(model)(grid) * np.exp(
        -beta * amp * (grid - f_hat) ** 2
    )
    cdf = np.concatenate(
        [[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))]
    )
    f = np.interp(rng.uniform(0, cdf[-1], num), cdf, grid)
    n_loss_min = quad.quadrature_exact(model, beta).n_loss_min
    return n_loss_min + amp * (f - f_hat) ** 2


@pytest.fixture(scope="module")
def crossing():
    return zoo.product_regression(jax.random.key(22), N)


def test_temperature_estimators_on_normal_crossing(crossing):
    """K ∝ (w1 w2)²: λ = 1/2, m = 2. The finite-n estimands sit below 1/2 by about
    (m − 1)/log(nβ); the estimators must hit the estimands."""
    rng = np.random.default_rng(0)
    b1, b2 = 1 / math.log(N), 2 / math.log(N)
    x1 = _f_draws(crossing, b1, 8000, rng).reshape(4, 2000)
    x2 = _f_draws(crossing, b2, 8000, rng).reshape(4, 2000)
    ex1, ex2 = quad.quadrature_exact(crossing, b1), quad.quadrature_exact(crossing, b2)
    # the draws follow the exact law
    for x, ex in ((x1, ex1), (x2, ex2)):
        assert abs(x.mean() - ex.mean_energy) < 4 * math.sqrt(ex.var_energy / x.size)
    two = lc.two_temperature(x1, x2, b1, b2)
    exact_two = (ex1.mean_energy - ex2.mean_energy) / (1 / b1 - 1 / b2)
    assert abs(two.lam - exact_two) < 3 * two.se
    var = lc.variance_lambda(x1, b1)
    exact_var = b1**2 * ex1.var_energy
    assert abs(var.lam - exact_var) < 3 * var.se
    for value in (exact_two, exact_var):
        assert 0.5 - 2.0 / math.log(N * b1) < value < 0.5


def test_free_energy_slope_regular():
    """Exact F_n on independent data sets for n = 1e2 … 1e5: the O_p(1) remainder
    scatters, the Birge-inflated error covers it."""
    ns = np.geomspace(100, 1e5, 8).astype(int)
    f, base = [], []
    for i, n in enumerate(ns):
        m = zoo.conjugate_regression(jax.random.key(300 + i), 2, n=int(n))
        f.append(float(zoo.free_energy_exact(m, 1.0)))
        base.append(-float(zoo.log_q(m).sum()))
    res = lc.free_energy_slope(ns, f, np.full(8, 1e-6), base, multiplicity=1)
    assert abs(res.lam - 1.0) < 3 * res.se and res.se < 0.3
    assert res.multiplicity == 1.0 and res.multiplicity_se == 0.0


def test_free_energy_slope_normal_crossing():
    ns = np.geomspace(300, 3e5, 7).astype(int)
    f, base = [], []
    for i, n in enumerate(ns):
        m = zoo.product_regression(jax.random.key(400 + i), int(n))
        ex = quad.quadrature_exact(m, 1.0)
        f.append(ex.free_energy)
        base.append(ex.n_loss_true)
    res = lc.free_energy_slope(ns, f, np.full(7, 1e-6), base, multiplicity=2)
    assert abs(res.lam - 0.5) < 3 * res.se and res.se < 0.3


def test_free_energy_slope_recovers_multiplicity_without_noise():
    """On the population closed form ``F(t) = ½ log t − log(½ log t + c0) + c`` with
    t = n: λ and m from the three-parameter fit, given a wide range of n."""
    from slt_sampler.zoo import coefficients as coef

    ns = np.geomspace(1e4, 1e16, 13)
    f = np.array([coef.normal_crossing_free_energy(n) for n in ns])
    res = lc.free_energy_slope(ns, f, np.full(13, 1e-3), np.zeros(13))
    assert res.lam == pytest.approx(0.5, abs=0.02)
    assert res.multiplicity == pytest.approx(2.0, abs=0.3)
    known = lc.free_energy_slope(ns, f, np.full(13, 1e-3), np.zeros(13), multiplicity=2)
    assert known.lam == pytest.approx(0.5, abs=0.01)


def test_bad_input():
    x = np.ones((2, 10))
    with pytest.raises(ValueError, match="beta1"):
        lc.two_temperature(x, x, 0.0, 0.2)
    with pytest.raises(ValueError, match="differ"):
        lc.two_temperature(x, x, 0.2, 0.2)
    with pytest.raises(ValueError, match="shape"):
        lc.two_temperature(np.ones(10), x, 0.1, 0.2)
    with pytest.raises(ValueError, match="match betas"):
        lc.beta_slope([0.1, 0.2, 0.3], np.ones((2, 2, 10)))
    with pytest.raises(ValueError, match="distinct"):
        lc.beta_slope([0.1, 0.1], np.ones((2, 2, 10)))
    with pytest.raises(ValueError, match="beta"):
        lc.variance_lambda(x, -1.0)
    with pytest.raises(ValueError, match="like ns"):
        lc.free_energy_slope([100, 1000], [1.0], [1.0, 1.0], [0.0, 0.0])
    with pytest.raises(ValueError, match=">= 4 values"):
        lc.free_energy_slope([100, 1000, 1e4], [1, 2, 3], [1, 1, 1], [0, 0, 0])
    with pytest.raises(ValueError, match="sigmas"):
        lc.free_energy_slope([100, 1000], [1, 2], [0, 1], [0, 0], multiplicity=1)
