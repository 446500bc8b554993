"""Observables and streaming per-datum accumulators inside the compiled run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_sampler import MALA, SGLD, sample
from slt_sampler.samplers._accumulate import PointwiseStats, pool_pointwise
from tests.helpers import regression_posterior

N, D = 103, 3  # n is not a multiple of the chunk below


def _observe(w):
    return {"sq": jnp.sum(w**2), "w": w}


def _brute_loglik(post, positions):
    """log p(X_i | w) at every kept position, float64: (chain, draw, n)."""
    per = jax.vmap(jax.vmap(lambda w: post.loglik_fn(w, post.data)))(positions)
    return np.asarray(per, np.float64)


@pytest.fixture(scope="module")
def run():
    post, _, _ = regression_posterior(n=N, d=D)
    res = sample(
        jax.random.key(3),
        MALA(jnp.asarray(0.01)),
        post,
        jnp.zeros(D),
        num_chains=3,
        num_steps=60,
        thinning=3,
        keep_positions=True,
        observe=_observe,
        pointwise=True,
        pointwise_chunk=10,
        progress=False,
    )
    return post, res


def test_pointwise_matches_brute_force(run):
    post, res = run
    ll = _brute_loglik(post, res.positions)
    assert ll.shape == (3, 20, N)
    pw = res.pointwise
    assert isinstance(pw, PointwiseStats) and pw.num_draws == 20
    for got, want in [
        (pw.log_mean_lik, np.log(np.mean(np.exp(ll), axis=1))),
        (pw.mean_loglik, ll.mean(axis=1)),
        (pw.var_loglik, ll.var(axis=1, ddof=1)),
    ]:
        assert got.shape == (3, N)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6)
    # the draws moved: the variance is not trivially zero
    assert np.median(pw.var_loglik) > 1e-4


def test_pooled_chains_match_all_draws_together(run):
    post, res = run
    flat = _brute_loglik(post, res.positions).reshape(-1, N)
    pooled = pool_pointwise(res.pointwise)
    assert pooled.num_draws == 60 and pooled.log_mean_lik.shape == (N,)
    np.testing.assert_allclose(
        pooled.log_mean_lik, np.log(np.mean(np.exp(flat), axis=0)), rtol=1e-5
    )
    np.testing.assert_allclose(pooled.mean_loglik, flat.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(
        pooled.var_loglik, flat.var(axis=0, ddof=1), rtol=1e-4, atol=1e-7
    )


def test_pool_is_exact_on_synthetic_numbers():
    rng = np.random.default_rng(0)
    ll = rng.normal(size=(2, 4, 7, 5)) * 3 - 50  # (beta, chain, draw, n)
    stats = PointwiseStats(
        np.log(np.mean(np.exp(ll), axis=2)),
        ll.mean(axis=2),
        ll.var(axis=2, ddof=1),
        7,
    )
    pooled = pool_pointwise(stats)
    every = np.moveaxis(ll, 2, 1).reshape(2, 28, 5)
    np.testing.assert_allclose(pooled.var_loglik, every.var(axis=1, ddof=1))
    np.testing.assert_allclose(
        pooled.log_mean_lik, np.log(np.mean(np.exp(every), axis=1)), rtol=1e-12
    )
    assert pooled.num_draws == 28 and pooled.mean_loglik.shape == (2, 5)
    with pytest.raises(ValueError, match="chain axis"):
        pool_pointwise(pooled._replace(log_mean_lik=pooled.log_mean_lik[0, 0]))
    with pytest.raises(TypeError, match="PointwiseStats"):
        pool_pointwise({"log_mean_lik": 1})


def test_observations_are_observe_at_the_kept_positions(run):
    _, res = run
    obs = res.observations
    assert obs["sq"].shape == (3, 20) and obs["w"].shape == (3, 20, D)
    np.testing.assert_array_equal(obs["w"], res.positions)
    np.testing.assert_allclose(obs["sq"], np.sum(res.positions**2, -1), rtol=1e-6)


def test_chunk_size_does_not_change_the_numbers(run):
    post, res = run
    kw = {"num_chains": 3, "num_steps": 60, "thinning": 3, "progress": False}
    one_block = sample(
        jax.random.key(3),
        MALA(jnp.asarray(0.01)),
        post,
        jnp.zeros(D),
        pointwise=True,
        **kw,
    )
    np.testing.assert_array_equal(one_block.losses, res.losses)  # same chain
    for a, b in zip(one_block.pointwise[:3], res.pointwise[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert one_block.observations is None


@pytest.mark.parametrize(
    "kw, err, match",
    [
        ({"pointwise_chunk": 10}, ValueError, "pointwise=True"),
        ({"pointwise": True, "pointwise_chunk": 0}, ValueError, "pointwise_chunk"),
        ({"pointwise": "yes"}, TypeError, "pointwise must be"),
        ({"observe": 3}, TypeError, "observe must be a function"),
        ({"observe": lambda w: "text"}, TypeError, "pytree of arrays"),
        ({"observe": lambda w: w["a"]}, TypeError, "observe\\(position\\) failed"),
    ],
)
def test_bad_recording_options(kw, err, match):
    post, _, _ = regression_posterior(n=50, d=D)
    with pytest.raises(err, match=match):
        sample(
            jax.random.key(0),
            SGLD(jnp.asarray(1e-3)),
            post,
            jnp.zeros(D),
            num_chains=1,
            num_steps=4,
            **kw,
        )
