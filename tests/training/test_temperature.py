"""SGD's temperature: Lyapunov covariance, matched β, gradient noise, against closed
forms and against measured SGD iterates on a regular model."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from slt_sampler import tempered_posterior
from slt_sampler.training import (
    gradient_covariance,
    gradient_variance,
    loss_hessian,
    matched_beta,
    sgd_iterates,
    sgd_stationary_covariance,
)
from slt_sampler.zoo import models as zoo
from tests.helpers import gaussian_regression


def _fro(m, ref):
    return float(np.linalg.norm(m - ref) / np.linalg.norm(ref))


def test_lyapunov_closed_forms():
    a, c, eta, b = 2.0, 3.0, 0.05, 8
    eye = np.eye(3)
    cont = sgd_stationary_covariance(a * eye, c * eye, eta, b)
    np.testing.assert_allclose(cont, eta * c / (2 * b * a) * eye, atol=1e-15)
    disc = sgd_stationary_covariance(a * eye, c * eye, eta, b, discrete=True)
    np.testing.assert_allclose(
        disc, eta * c / (b * a * (2 - eta * a)) * eye, rtol=1e-12
    )
    rng = np.random.default_rng(0)
    m = rng.normal(size=(4, 4))
    hess, noise = m @ m.T + np.eye(4), np.cov(rng.normal(size=(4, 50)))
    sigma = sgd_stationary_covariance(hess, noise, eta, b)
    np.testing.assert_allclose(hess @ sigma + sigma @ hess, eta / b * noise, atol=1e-12)
    # the trace identity behind matched_beta: tr(AΣ) = η tr(C) / (2B)
    np.testing.assert_allclose(np.trace(hess @ sigma), eta * np.trace(noise) / (2 * b))


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="hessian must be positive definite"):
        sgd_stationary_covariance(-np.eye(2), np.eye(2), 0.1, 1)
    with pytest.raises(ValueError, match="hessian must be a finite square"):
        sgd_stationary_covariance(np.ones((2, 3)), np.eye(2), 0.1, 1)
    with pytest.raises(ValueError, match="learning_rate"):
        sgd_stationary_covariance(np.eye(2), np.eye(2), 0.0, 1)
    for lr in (0.0, -1e-3):
        with pytest.raises(ValueError, match="learning_rate must be .* > 0"):
            matched_beta(lr, 10, 100, gradient_variance=1.0)
    with pytest.raises(ValueError, match="batch_size = 101 is larger than n = 100"):
        matched_beta(0.1, 101, 100, gradient_variance=1.0)
    with pytest.raises(ValueError, match="gradient_variance"):
        matched_beta(0.1, 10, 100, gradient_variance=0.0)
    assert matched_beta(0.01, 10, 1000, gradient_variance=2.0) == pytest.approx(1.0)


def test_gradient_noise_and_hessian_match_linear_regression_closed_form():
    x, y, loglik, _ = gaussian_regression(seed=1, n=700, d=3)
    post = tempered_posterior(loglik, (x, y))
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    w = np.linalg.lstsq(x, y, rcond=None)[0]
    g = -(y - x @ w)[:, None] * x  # ∇ℓ_i for σ = 1
    cov = np.cov(g.T, bias=True)
    wj = jnp.asarray(w, jnp.float32)
    np.testing.assert_allclose(
        gradient_covariance(post, wj, chunk_size=256), cov, atol=2e-5
    )
    np.testing.assert_allclose(
        gradient_variance(post, wj, chunk_size=300), np.trace(cov) / 3, rtol=1e-4
    )
    np.testing.assert_allclose(loss_hessian(post, wj), x.T @ x / 700, rtol=1e-5)


@pytest.mark.slow
def test_sgd_covariance_matches_lyapunov_and_matched_posterior():
    """Regular model (d = 4, n = 2·10⁴, whitened inputs, unit noise), SGD with
    η = 0.02, B = 10 (ηa ≈ 0.02): 64 chains × 10⁴ steps, every 10th iterate kept.

    Tolerances: the Monte-Carlo error of the pooled covariance is measured from the
    spread of the 64 independent per-chain covariances (rms Frobenius error ``se``,
    about 2%); a Frobenius norm of ~10 independent Gaussian entries exceeds twice its
    rms with probability < 1e-3. The continuous Lyapunov equation and the posterior
    differ from the exact discrete-time law by known amounts (1% and 2%), added as
    bias. Measured: 3.2% (Lyapunov), 5.1% (posterior); se 2.0%.
    """
    d, n, eta, b = 4, 20_000, 0.02, 10
    model = zoo.regular(jax.random.key(0), d, n=n)
    post, ws = model.posterior, model.w_star
    hess, noise = loss_hessian(post, ws), gradient_covariance(post, ws)
    cont = sgd_stationary_covariance(hess, noise, eta, b)
    exact = sgd_stationary_covariance(hess, noise, eta, b, discrete=True)
    beta = matched_beta(eta, b, n, gradient_variance=gradient_variance(post, ws))
    posterior_cov = np.linalg.inv(n * beta * hess)
    it = sgd_iterates(
        jax.random.key(1),
        post,
        ws,
        optax.sgd(eta),
        batch_size=b,
        num_chains=64,
        num_steps=10_000,
        burn_in=200,
        thinning=10,
    )
    z = np.asarray(it.positions[0], np.float64).reshape(64, -1, d)
    z = z - z.mean((0, 1))
    per_chain = np.einsum("cti,ctj->cij", z, z) / z.shape[1]
    measured = per_chain.mean(0)
    se = float(np.linalg.norm(per_chain.std(0, ddof=1) / 8) / np.linalg.norm(exact))
    assert se < 0.03
    err_lyap, err_post = _fro(measured, cont), _fro(measured, posterior_cov)
    assert _fro(measured, exact) <= 2 * se
    assert err_lyap <= 2 * se + _fro(cont, exact) and err_lyap < 0.10
    assert err_post <= 2 * se + _fro(posterior_cov, exact) and err_post < 0.10
    # λ̂ read from SGD iterates at the matched β: nβ·½tr(AΣ) = d/2 up to O(ηa)
    loss_star = float(post.full_loss_fn(ws, post.data))
    chain_means = n * beta * (it.loss.mean(1) - loss_star)
    expected = n * beta * 0.5 * np.trace(hess @ exact)
    assert abs(expected - d / 2) < 0.02 * d
    assert abs(chain_means.mean() - expected) <= 3 * chain_means.std(ddof=1) / 8
