"""The conjugate regression's closed forms, checked by independent routes.

Finite differences of F_n(β), a textbook evidence formula, Laplace asymptotics, the
Gaussian entropy, the tempered posterior's own log density, and Monte Carlo over exact
posterior draws (tolerances from the Monte-Carlo standard error of each check).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate
from scipy.special import logsumexp

from slt_sampler import logdensity, zoo
from slt_sampler.zoo import conjugate


@pytest.fixture(scope="module")
def small():
    return zoo.conjugate_regression(jax.random.key(3), 3, n=400, prior_scale=2.0)


@pytest.fixture(scope="module")
def big():
    return zoo.conjugate_regression(jax.random.key(4), 5, n=20_000)


def _n_loss(model, w):
    """n L_n at each row of w (float64, from sufficient statistics)."""
    x, y, s2 = model.x, model.y, model.sigma**2
    r = y[None, :] - w @ x.T
    return 0.5 * x.shape[0] * math.log(2 * math.pi * s2) + 0.5 * np.sum(r**2, 1) / s2


def _loglik_matrix(model, w):
    r = model.y[None, :] - w @ model.x.T
    s2 = model.sigma**2
    return -0.5 * r**2 / s2 - 0.5 * math.log(2 * math.pi * s2)


def test_shapes_and_fields(small):
    assert small.x.shape == (400, 3) and small.y.shape == (400,)
    assert small.dim == 3 and small.posterior.n == 400
    assert float(small.posterior.beta) == 1.0 and float(small.posterior.gamma) == 0.0
    assert small.posterior.center is None
    assert zoo.prior_sample(jax.random.key(0), small, 7).shape == (7, 3)
    assert zoo.posterior_sample(jax.random.key(0), small, 0.5, 7).shape == (7, 3)
    assert zoo.log_q(small).shape == (400,)


@pytest.mark.parametrize("beta", [0.05, 0.3, 1.0, 2.5])
def test_derivatives_of_free_energy(small, beta):
    ex = zoo.conjugate_exact(small, beta)
    h = 1e-4 * beta
    fp = zoo.free_energy_exact(small, beta + h)
    fm = zoo.free_energy_exact(small, beta - h)
    assert (fp - fm) / (2 * h) == pytest.approx(ex.mean_energy, rel=1e-7)
    h2 = 1e-2 * beta
    fp = zoo.free_energy_exact(small, beta + h2)
    fm = zoo.free_energy_exact(small, beta - h2)
    second = (fp - 2 * ex.free_energy + fm) / h2**2
    assert -second == pytest.approx(ex.var_energy, rel=1e-3)
    # the spectral route (energy_moments, free_energy_exact) = the direct one
    e, v = zoo.energy_moments(small, [beta])
    assert e[0] == pytest.approx(ex.mean_energy, rel=1e-12)
    assert v[0] == pytest.approx(ex.var_energy, rel=1e-10)
    assert zoo.free_energy_exact(small, beta) == pytest.approx(
        ex.free_energy, rel=1e-12
    )


def test_thermodynamic_integration_by_quadrature(small):
    assert zoo.free_energy_exact(small, 0.0) == pytest.approx(0.0, abs=1e-10)
    # substitute β = u⁴ to resolve the steep start
    val, _ = integrate.quad(
        lambda u: 4 * u**3 * zoo.energy_moments(small, [u**4])[0][0],
        0.0,
        1.0,
        epsabs=1e-9,
        epsrel=1e-11,
        limit=200,
    )
    assert val == pytest.approx(zoo.conjugate_exact(small, 1.0).free_energy, abs=1e-6)


def test_free_energy_matches_textbook_evidence(small):
    """SLT_REFERENCE §4.2 / Bishop (2006) eq. 3.86 form, with yᵀy and μᵀPμ."""
    x, y, s2 = small.x, small.y, small.sigma**2
    n = x.shape[0]
    for beta in (0.2, 1.0):
        ex = zoo.conjugate_exact(small, beta)
        p0 = np.linalg.inv(small.prior_cov)
        prec = p0 + beta / s2 * x.T @ x
        log_z = (
            -0.5 * n * beta * math.log(2 * math.pi * s2)
            - 0.5 * np.linalg.slogdet(prec)[1]
            - 0.5 * np.linalg.slogdet(small.prior_cov)[1]
            - beta / (2 * s2) * y @ y
            - 0.5 * small.prior_mean @ p0 @ small.prior_mean
            + 0.5 * ex.post_mean @ prec @ ex.post_mean
        )
        assert ex.free_energy == pytest.approx(-log_z, abs=1e-8 * n)


def test_asymptotics_of_regular_model(big):
    """WBIC = nL_n(ŵ) + (d/2) log n + O(d/n); F_n by Laplace up to O(1/n)."""
    n, d = big.x.shape[0], big.dim
    w_hat = np.linalg.lstsq(big.x, big.y, rcond=None)[0]
    nl_hat = _n_loss(big, w_hat[None])[0]
    assert zoo.wbic_exact(big) - nl_hat - 0.5 * d * math.log(n) == pytest.approx(
        0.0, abs=0.02
    )
    laplace = (
        nl_hat
        + 0.5 * d * math.log(n)
        - 0.5 * d * math.log(2 * math.pi)
        + 0.5 * np.linalg.slogdet(big.x.T @ big.x / (n * big.sigma**2))[1]
        + 0.5 * w_hat @ w_hat  # −log φ(ŵ), prior N(0, I)
        + 0.5 * d * math.log(2 * math.pi)
    )
    assert zoo.conjugate_exact(big, 1.0).free_energy == pytest.approx(laplace, abs=0.01)
    ex = zoo.conjugate_exact(big, 1.0 / math.log(n))
    assert ex.heat_capacity == pytest.approx(d / 2, rel=0.01)
    assert ex.singular_fluctuation == pytest.approx(d / 2, rel=0.05)


@pytest.mark.parametrize("beta", [0.1, 1.0])
def test_entropy_is_gaussian_entropy(small, beta):
    ex = zoo.conjugate_exact(small, beta)
    gauss = 0.5 * np.linalg.slogdet(2 * math.pi * math.e * ex.post_cov)[1]
    assert ex.entropy == pytest.approx(gauss, abs=1e-8)
    # U − S/β = F⁰/β (free energy = energy − temperature × entropy)
    f0 = ex.free_energy - beta * ex.n_empirical_entropy
    assert ex.average_energy - ex.entropy / beta == pytest.approx(f0 / beta, abs=1e-7)


def test_posterior_logdensity_normalised():
    """log φ(w) − nβ L_n(w) of the TemperedPosterior = log Z_n(β) + log N(w; μ_β, S_β)."""
    model = zoo.conjugate_regression(jax.random.key(5), 2, n=200, beta=0.7)
    ex = zoo.conjugate_exact(model, 0.7)
    w = zoo.posterior_sample(jax.random.key(6), model, 0.7, 5)
    got = np.array([float(logdensity(model.posterior, jnp.asarray(wi))) for wi in w])
    diff = w - ex.post_mean
    prec = np.linalg.inv(ex.post_cov)
    log_gauss = (
        -0.5 * np.einsum("ij,jk,ik->i", diff, prec, diff)
        - math.log(2 * math.pi)
        - 0.5 * np.linalg.slogdet(ex.post_cov)[1]
    )
    np.testing.assert_allclose(got, -ex.free_energy + log_gauss, atol=2e-3)


def test_monte_carlo_over_exact_draws(small):
    """Energy, its variance, V, T_n, G_t, G_g, E[−log φ] from 20k exact draws."""
    beta, num = 0.6, 20_000
    ex = zoo.conjugate_exact(small, beta)
    w = zoo.posterior_sample(jax.random.key(7), small, beta, num)
    nl = _n_loss(small, w)
    se = nl.std() / math.sqrt(num)
    assert abs(nl.mean() - ex.mean_energy) < 4 * se
    c2 = (nl - nl.mean()) ** 2
    assert abs(c2.mean() - ex.var_energy) < 4 * c2.std() / math.sqrt(num)
    kl = np.asarray(zoo.population_kl(small, w))
    assert abs(kl.mean() - ex.gibbs_generalization_error) < 4 * kl.std() / math.sqrt(
        num
    )
    gt = (nl + zoo.log_q(small).sum()) / small.x.shape[0]
    assert abs(gt.mean() - ex.gibbs_training_error) < 4 * gt.std() / math.sqrt(num)
    p0 = np.linalg.inv(small.prior_cov)
    nlp = 0.5 * np.einsum("ij,jk,ik->i", w, p0, w) + 0.5 * (
        3 * math.log(2 * math.pi) + np.linalg.slogdet(small.prior_cov)[1]
    )
    assert abs(nlp.mean() - ex.mean_neg_log_prior) < 4 * nlp.std() / math.sqrt(num)
    # V and T_n by batch means over 20 batches of 2000 draws
    v_b, t_b = [], []
    for wb in np.split(w, 20):
        ll = _loglik_matrix(small, wb)
        v_b.append(np.sum(np.var(ll, axis=0, ddof=1)))
        t_b.append(-np.mean(logsumexp(ll, axis=0) - math.log(len(wb))))
    for est, truth in ((v_b, ex.functional_variance), (t_b, ex.bayes_training_loss)):
        est = np.asarray(est)
        assert (
            abs(est.mean() - truth) < 4 * est.std(ddof=1) / math.sqrt(len(est)) + 1e-9
        )
    lq = zoo.log_q(small)
    assert ex.bayes_training_error == pytest.approx(
        ex.bayes_training_loss + lq.mean(), abs=1e-12
    )
    assert ex.heat_capacity == pytest.approx(beta**2 * ex.var_energy)
    assert ex.singular_fluctuation == pytest.approx(beta * ex.functional_variance / 2)


def test_bayes_generalization_error_plain_monte_carlo(small):
    """The control-variate value against a plain 2¹⁹-sample Monte Carlo of
    E_X[log q(X) − log p*(X)] over fresh (x, y)."""
    ex = zoo.conjugate_exact(small, 1.0)
    rng = np.random.default_rng(11)
    num = 2**19
    x = rng.standard_normal((num, 3))
    y = x @ small.w_true + small.sigma * rng.standard_normal(num)
    s2 = small.sigma**2
    pv = s2 + np.einsum("ij,jk,ik->i", x, ex.post_cov, x)
    log_q = -0.5 * (y - x @ small.w_true) ** 2 / s2 - 0.5 * np.log(2 * math.pi * s2)
    log_p = -0.5 * (y - x @ ex.post_mean) ** 2 / pv - 0.5 * np.log(2 * math.pi * pv)
    diff = log_q - log_p
    se = diff.std() / math.sqrt(num)
    assert abs(diff.mean() - ex.bayes_generalization_error) < 4 * se
    assert ex.bayes_generalization_error_mcse < 1e-3 * ex.bayes_generalization_error
    assert 0 < ex.bayes_generalization_error < ex.gibbs_generalization_error


def test_prior_sample_and_population_kl(small):
    w = np.asarray(zoo.prior_sample(jax.random.key(8), small, 20_000), np.float64)
    np.testing.assert_allclose(w.mean(0), small.prior_mean, atol=4 * 2 / math.sqrt(2e4))
    np.testing.assert_allclose(np.cov(w.T), small.prior_cov, rtol=0.05, atol=0.1)
    # K(w) = E_q[log q − log p(·|w)] by Monte Carlo over fresh data
    w1 = small.w_true + 0.3
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200_000, 3))
    e = rng.standard_normal(200_000) * small.sigma
    d = (e**2 - (e - x @ (w1 - small.w_true)) ** 2) / (2 * small.sigma**2)
    kl = float(zoo.population_kl(small, jnp.asarray(w1)))
    assert abs(-d.mean() - kl) < 4 * d.std() / math.sqrt(d.size)
    batch = zoo.population_kl(small, jnp.zeros((4, 2, 3)))
    assert batch.shape == (4, 2)
    jitted = jax.jit(jax.vmap(lambda v: zoo.population_kl(small, v)))(jnp.zeros((5, 3)))
    np.testing.assert_allclose(jitted, batch[0, 0], rtol=1e-6)


def test_log_q_is_loglik_at_truth(small):
    ll = small.posterior.loglik_fn(
        jnp.asarray(small.w_true, jnp.float32), small.posterior.data
    )
    np.testing.assert_allclose(np.asarray(ll), zoo.log_q(small), atol=1e-4)


def test_bad_input(small):
    with pytest.raises(ValueError, match="beta"):
        zoo.conjugate_exact(small, 0.0)
    with pytest.raises(ValueError, match="beta"):
        zoo.conjugate_regression(jax.random.key(0), 2, beta=-1.0)
    with pytest.raises(ValueError, match="sigma"):
        zoo.conjugate_regression(jax.random.key(0), 2, sigma=0.0)
    with pytest.raises(ValueError, match="d"):
        zoo.conjugate_regression(jax.random.key(0), 0)
    with pytest.raises(TypeError, match="ConjugateRegression"):
        zoo.conjugate_exact("model", 1.0)
    with pytest.raises(ValueError, match="beta"):
        zoo.energy_moments(small, [0.5, -0.1])
    with pytest.raises(TypeError, match="num"):
        conjugate.prior_sample(jax.random.key(0), small, 2.5)
