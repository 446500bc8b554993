import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_sampler import default_beta, full_loss, logdensity, tempered_posterior
from slt_sampler.posterior.base import batch_loss
from tests.helpers import gaussian_regression


def _ll(w, b):
    return -0.5 * (b - w) ** 2


def test_default_beta_uses_n_not_batch():
    x = jnp.zeros((1000,))
    post = tempered_posterior(_ll, x)
    assert post.n == 1000
    assert float(post.beta) == pytest.approx(1 / math.log(1000))
    assert default_beta(1000) == pytest.approx(1 / math.log(1000))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"beta": 0.0}, "beta"),
        ({"beta": -1.0}, "beta"),
        ({"beta": float("nan")}, "beta"),
        ({"gamma": -0.1, "center": 0.0}, "gamma"),
        ({"gamma": 1.0}, "center"),
    ],
)
def test_bad_scalars_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tempered_posterior(_ll, jnp.zeros((10,)), **kwargs)


def test_bad_data_is_rejected_with_the_fix():
    with pytest.raises(ValueError, match="leading axis"):
        tempered_posterior(_ll, (jnp.zeros((10, 2)), jnp.zeros((9,))))
    with pytest.raises(ValueError, match="NaN"):
        tempered_posterior(_ll, jnp.array([0.0, jnp.nan, 1.0]))
    with pytest.raises(ValueError, match="at least one datum"):
        tempered_posterior(_ll, jnp.zeros((0,)))
    with pytest.raises(ValueError, match="scalar"):
        tempered_posterior(_ll, jnp.float32(1.0))


def test_full_loss_chunks_equal_direct_mean():
    x, y, loglik, _ = gaussian_regression(n=1037, d=3)
    post = tempered_posterior(loglik, (x, y))
    w = jnp.array([0.3, -0.2, 0.1])
    direct = batch_loss(post, w, (x, y))
    chunked = full_loss(post, w, chunk_size=100)
    np.testing.assert_allclose(chunked, direct, rtol=1e-5)


def test_logdensity_composes_prior_tempering_and_localisation():
    x, y, loglik, logprior = gaussian_regression(n=50, d=2)
    c = jnp.array([1.0, -1.0])
    post = tempered_posterior(
        loglik, (x, y), logprior_fn=logprior, beta=0.3, gamma=2.0, center=c
    )
    w = jnp.array([0.5, 0.5])
    expected = (
        logprior(w) + 0.3 * jnp.sum(loglik(w, (x, y))) - 1.0 * jnp.sum((w - c) ** 2)
    )
    np.testing.assert_allclose(logdensity(post, w), expected, rtol=1e-5)


def test_beta_grid_is_one_vmap_and_one_trace():
    traces = []
    x, y, loglik, _ = gaussian_regression(n=64, d=2)

    def counting(w, b):
        if isinstance(w, jax.core.Tracer):  # eager probe calls (input checks) aside
            traces.append(1)
        return loglik(w, b)

    post = tempered_posterior(counting, (x, y), gamma=1.0, center=jnp.zeros(2))
    f = jax.jit(lambda p, w: logdensity(p, w))
    w = jnp.ones(2)
    f(post, w)
    f(post.replace(beta=jnp.asarray(0.5)), w)
    f(post.replace(gamma=jnp.asarray(3.0), center=jnp.ones(2)), w)
    assert len(traces) == 1, "changing beta / gamma / center must not re-trace"
    betas = jnp.array([0.1, 0.5, 1.0])
    out = jax.vmap(lambda b: logdensity(post.replace(beta=b), w))(betas)
    assert out.shape == (3,)
    assert out[0] > out[2]  # higher beta, more weight on a positive loss
