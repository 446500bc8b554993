"""BAOAB underdamped Langevin: exact positions' law on a Gaussian at a large step.

For a Gaussian target, BAOAB's stationary law of the *positions* is the target itself
at any stable time step (Leimkuhler & Matthews 2013). So at ``ε √h_max = 1`` (where
SGLD at the same overdamped-equivalent step ``ε²/2`` is visibly biased, checked
below) the positions must match N(μ, A⁻¹): a wrong splitting (OBABO-like ordering,
a factor in the OU noise, the gradient at the wrong point) fails this.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import solve_discrete_lyapunov

from slt_sampler import estimate_llc, sample
from slt_sampler.estimators._mcse import mcse_mean
from slt_sampler.samplers.underdamped import BAOAB
from slt_sampler.zoo import models as zoo
from tests.helpers import gaussian_law, mean_nll

D, N, Z_MAX = 3, 500, 4.0


def _baoab_position_cov(prec, eps, alpha):
    """Stationary covariance of BAOAB's positions on U = wᵀAw/2, by the discrete
    Lyapunov equation of the linear recursion on (w, p)."""
    d = len(prec)
    eye = np.eye(d)
    c = np.exp(-alpha * eps)

    kick = np.block([[eye, 0 * eye], [-0.5 * eps * prec, eye]])
    drift = np.block([[eye, 0.5 * eps * eye], [0 * eye, eye]])
    ou = np.block([[eye, 0 * eye], [0 * eye, c * eye]])
    noise_in = np.vstack([0 * eye, np.sqrt(1 - c**2) * eye])
    after_o = kick @ drift  # the noise enters at O, then A and B act on it
    step = after_o @ ou @ drift @ kick
    noise = after_o @ noise_in
    cov = solve_discrete_lyapunov(step, noise @ noise.T)
    return cov[:d, :d]


def _sgld_cov(prec, eps):
    return np.linalg.inv(prec @ (np.eye(len(prec)) - 0.5 * eps * prec))


@pytest.fixture(scope="module")
def gaussian():
    return gaussian_law(seed=3, n=N, d=D)


def test_baoab_samples_the_gaussian_exactly_at_a_large_step(gaussian):
    post, x, y, prec, mu = gaussian
    h_max = float(np.linalg.eigvalsh(prec).max())
    eps, alpha = 1.0 / np.sqrt(h_max), 0.3 * np.sqrt(h_max)
    target = np.linalg.inv(prec)
    # the theory the test relies on: exact positions' law, for this linear recursion
    np.testing.assert_allclose(
        _baoab_position_cov(prec, eps, alpha), target, rtol=1e-6, atol=1e-12
    )
    smp = BAOAB(jnp.asarray(eps, jnp.float32), jnp.asarray(alpha, jnp.float32))
    res = sample(
        jax.random.key(11),
        smp,
        post,
        jnp.asarray(mu, jnp.float32),
        num_chains=4,
        num_steps=20_000,
        keep_positions=True,
        progress=False,
    )
    assert not res.diverged.any()
    assert res.loss_kind == "full"
    burn = 2_000
    pos = np.asarray(res.positions, np.float64)[:, burn:]
    for j in range(D):
        z = (pos[..., j].mean() - mu[j]) / mcse_mean(pos[..., j])
        assert abs(z) < Z_MAX, (j, z)
    nll = N * np.asarray(res.losses, np.float64)[:, burn:]
    se = mcse_mean(nll)
    z = (nll.mean() - mean_nll(x, y, mu, target)) / se
    assert abs(z) < Z_MAX, (nll.mean(), mean_nll(x, y, mu, target), se)
    np.testing.assert_allclose(pos.reshape(-1, D).var(0), np.diag(target), rtol=0.1)
    # the step is large: SGLD at the same overdamped-equivalent step ε²/2 is biased
    # by many standard errors of this run
    sgld_bias = mean_nll(x, y, mu, _sgld_cov(prec, eps**2 / 2)) - mean_nll(
        x, y, mu, target
    )
    assert sgld_bias > 5 * Z_MAX * se, (sgld_bias, se)


def test_baoab_keeps_its_momentum_between_steps(gaussian):
    """Momentum persists (underdamped): with no friction and a tiny step, two steps
    move the position twice as far as one along the same momentum."""
    post, *_, mu = gaussian
    smp = BAOAB(jnp.asarray(1e-4), jnp.asarray(0.0))
    st = smp.init(jnp.asarray(mu, jnp.float32), post)
    st = st._replace(momentum=jnp.ones(D))
    one, _ = smp.step(jax.random.key(0), st, post)
    two, _ = smp.step(jax.random.key(1), one, post)
    d1 = np.asarray(one.position - st.position)
    d2 = np.asarray(two.position - st.position)
    np.testing.assert_allclose(d2, 2 * d1, rtol=1e-2)
    np.testing.assert_allclose(d1, 1e-4, rtol=1e-2)


def test_estimate_llc_baoab_on_a_regular_model():
    """Calibrated BAOAB through estimate_llc: λ = d/2 on a regular model, within its
    σ_total plus the finite-n term (the exact MALA value is checked elsewhere)."""
    model = zoo.regular(jax.random.key(10), 10)
    est = estimate_llc(
        jax.random.key(110),
        model.posterior,
        sampler="baoab",
        gamma_check=(),
        progress=False,
    )
    assert est.sampler == "baoab" and est.batch_size is None
    assert est.calibration is not None and est.calibration.passed
    assert np.isclose(est.step_size, np.sqrt(2 * est.calibration.step_size))
    r = est.result
    assert abs(r.llc / model.true.lam - 1) <= 0.05, (r.llc, r.llc_sigma)
    assert r.llc_sigma <= 0.05 * r.llc
