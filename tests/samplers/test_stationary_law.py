"""Every sampler against the exact stationary law of a Gaussian tempered posterior.

On the conjugate regression (``tests.helpers``) the tempered posterior is
``N(μ, A⁻¹)`` with ``A = I + β XᵀX / σ²``. The exact samplers (MALA, HMC, NUTS, MAMS) must
sample it. Full-batch SGLD and SGHMC are linear Gaussian recursions here, so their
*discretised* stationary law is also known exactly (a discrete Lyapunov equation):
their step sizes are chosen large enough that the discretisation bias of E[n L_n] is
several Monte-Carlo errors, so the test pins BlackJAX's update convention (a factor
2 in the noise or the step would fail it), not only "close to the target".

The checks are z-scores of the mean of each coordinate and of E[n L_n] (from the
losses the driver records, which the LLC consumes), with MCSE from the ESS.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import solve_discrete_lyapunov

from slt_sampler import HMC, MALA, NUTS, SGHMC, SGLD, sample
from slt_sampler.estimators._mcse import mcse_mean
from slt_sampler.samplers.mams import tune_mams
from tests.helpers import gaussian_law, mean_nll

D, N, Z_MAX = 3, 500, 4.0


@pytest.fixture(scope="module")
def gaussian():
    return gaussian_law(seed=3, n=N, d=D)


def _sgld_cov(prec, eps):
    # w' = w + ε ∇log p + sqrt(2ε) ξ  =>  Σ = (A (I - εA/2))⁻¹
    return np.linalg.inv(prec @ (np.eye(len(prec)) - 0.5 * eps * prec))


def _sghmc_cov(prec, eps, alpha, steps):
    """BlackJAX sghmc: x += ε p; p = (1-αε) p + ε ∇log p(x_old) + sqrt(2αε) ξ,
    momentum ~ N(0, I) redrawn at each call of ``steps`` such updates."""
    d = len(prec)
    eye = np.eye(d)
    step = np.block([[eye, eps * eye], [-eps * prec, (1 - alpha * eps) * eye]])
    powers = [np.eye(2 * d)]
    for _ in range(steps):
        powers.append(step @ powers[-1])
    full = powers[-1]
    noise = full[:d, d:] @ full[:d, d:].T  # from the redrawn momentum
    for k in range(steps):  # momentum noise injected at step k
        block = powers[steps - 1 - k][:d, d:]
        noise += 2 * alpha * eps * block @ block.T
    # one step alone may expand (explicit Euler); the per-call position map must not
    assert max(abs(np.linalg.eigvals(full[:d, :d]))) < 1, "no stationary law"
    return solve_discrete_lyapunov(full[:d, :d], noise)


CASES = {
    # name: (sampler, law); law None is the target, else the discretised covariance
    "sgld": (SGLD(jnp.asarray(4e-3)), lambda p: _sgld_cov(p, 4e-3)),
    "sghmc": (
        SGHMC(jnp.asarray(0.02), friction=jnp.asarray(1.0), num_integration_steps=8),
        lambda p: _sghmc_cov(p, 0.02, 1.0, 8),
    ),
    "mala": (MALA(jnp.asarray(4e-3)), None),
    "hmc": (HMC(jnp.asarray(0.05), jnp.ones(D), num_integration_steps=10), None),
    "nuts": (NUTS(jnp.asarray(0.1), jnp.ones(D), max_num_doublings=5), None),
    "mams": (None, None),  # tuned in the test (step, preconditioner) by tune_mams
}
STEPS = {
    "sgld": 20_000,
    "sghmc": 5_000,
    "mala": 20_000,
    "hmc": 2_000,
    "nuts": 2_000,
    "mams": 4_000,
}


@pytest.mark.parametrize("name", list(CASES))
def test_sampler_matches_its_exact_stationary_law(gaussian, name):
    post, x, y, prec, mu = gaussian
    sampler, law = CASES[name]
    target_cov = np.linalg.inv(prec)
    cov = target_cov if law is None else law(prec)
    num_steps, burn = STEPS[name], STEPS[name] // 10
    start = jnp.asarray(mu, jnp.float32)
    if sampler is None:
        sampler, _ = tune_mams(jax.random.key(5), post, start, num_chains=4)
    res = sample(
        jax.random.key(11),
        sampler,
        post,
        start,
        num_chains=4,
        num_steps=num_steps,
        keep_positions=True,
        progress=False,
    )
    assert not res.diverged.any()
    pos = np.asarray(res.positions, np.float64)[:, burn:]
    for j in range(D):
        z = (pos[..., j].mean() - mu[j]) / mcse_mean(pos[..., j])
        assert abs(z) < Z_MAX, (name, j, z)
    nll = N * np.asarray(res.losses, np.float64)[:, burn:]
    se = mcse_mean(nll)
    expected = mean_nll(x, y, mu, cov)
    z = (nll.mean() - expected) / se
    assert abs(z) < Z_MAX, (name, nll.mean(), expected, se)
    # variance of the draws, coordinate by coordinate, within 10% (ESS >= 400)
    np.testing.assert_allclose(
        pos.reshape(-1, D).var(0), np.diag(cov), rtol=0.1, err_msg=name
    )
    if law is not None:  # the test tells the discretised law from the target
        bias = expected - mean_nll(x, y, mu, target_cov)
        assert abs(bias) > Z_MAX * se, (name, bias, se)
