"""train(): checkpoints, resumption, bad input, and any model the library accepts."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest

from slt_sampler import from_numpyro, tempered_posterior
from slt_sampler.training import adam, leapfrog, sgd, sgd_iterates, train
from tests.helpers import gaussian_regression


@pytest.fixture(scope="module")
def posterior():
    x, y, loglik, _ = gaussian_regression(seed=3, n=200, d=3)
    return tempered_posterior(loglik, (x, y))


def _run(post, opt, num_steps, path=None, params0=None, every=40, key=7):
    params0 = jnp.zeros(3) if params0 is None else params0
    return train(
        jax.random.key(key),
        post,
        params0,
        opt,
        batch_size=16,
        num_steps=num_steps,
        checkpoint_every=every,
        path=path,
    )


def _assert_same(a, b):
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.batch_loss, b.batch_loss)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(x, y)
    if a.hamiltonian is None:
        assert b.hamiltonian is None
    else:
        np.testing.assert_array_equal(a.hamiltonian, b.hamiltonian)


@pytest.mark.parametrize("opt", [optax.sgd(0.05, momentum=0.9), adam(0.01)])
def test_resume_after_kill_equals_uninterrupted_run(posterior, tmp_path, opt):
    def make():  # one optimizer object: the compiled chunk is reused across runs
        return opt

    full = _run(posterior, make(), 200)
    assert full.steps.tolist() == [0, 40, 80, 120, 160, 200]
    assert full.batch_loss.shape == (200,) and full.loss.shape == (6,)
    assert full.loss[-1] < full.loss[0]  # it trains
    # a run killed after checkpoint 80 (later files gone, a half-written temp left)
    _run(posterior, make(), 200, path=tmp_path)
    for step in (120, 160, 200):
        (tmp_path / f"ckpt_{step:010d}.npz").unlink()
    (tmp_path / ".ckpt_0000000120.npz.abc.npz").write_bytes(b"\x00garbage")
    _assert_same(_run(posterior, make(), 200, path=tmp_path), full)
    # a finished run read back; then extended from a shorter run
    _assert_same(_run(posterior, make(), 200, path=tmp_path), full)
    short = tmp_path / "short"
    _run(posterior, make(), 90, path=short)
    _assert_same(_run(posterior, make(), 200, path=short), full)


def test_leapfrog_hamiltonian_survives_resumption(posterior, tmp_path):
    opt = leapfrog(0.05)
    full = _run(posterior, opt, 120)
    assert full.hamiltonian is not None and full.hamiltonian.shape == (4,)
    _run(posterior, opt, 50, path=tmp_path)
    _assert_same(_run(posterior, opt, 120, path=tmp_path), full)
    assert _run(posterior, optax.sgd(0.05), 40).hamiltonian is None


def test_checkpoints_of_another_model_are_refused(posterior, tmp_path):
    opt = optax.sgd(0.05)
    _run(posterior, opt, 40, path=tmp_path)
    # parameters of another model are refused up front (they do not fit loglik_fn),
    # before the checkpoints are read
    for other in ({"w": jnp.zeros(3)}, jnp.zeros(4)):
        with pytest.raises((ValueError, TypeError), match="params0"):
            _run(posterior, opt, 40, path=tmp_path, params0=other)
    with pytest.raises(ValueError, match="optimizer does not match"):
        _run(posterior, adam(0.05), 40, path=tmp_path)
    with pytest.raises(ValueError, match="rng_key does not match"):
        _run(posterior, opt, 40, path=tmp_path, key=8)
    with pytest.raises(ValueError, match="checkpoint_every does not match"):
        _run(posterior, opt, 40, path=tmp_path, every=20)


def test_bad_arguments_name_the_argument(posterior):
    opt = optax.sgd(0.1)
    base = {"batch_size": 16, "num_steps": 10, "checkpoint_every": 5}
    key, w = jax.random.key(0), jnp.zeros(3)
    with pytest.raises(ValueError, match="batch_size = 201 is larger than .* n = 200"):
        train(key, posterior, w, opt, **{**base, "batch_size": 201})
    for name in ("checkpoint_every", "num_steps", "batch_size"):
        with pytest.raises(ValueError, match=name):
            train(key, posterior, w, opt, **{**base, name: 0})
    with pytest.raises(TypeError, match="optimizer"):
        train(key, posterior, w, "sgd", **base)
    with pytest.raises(ValueError, match="params0"):
        train(key, posterior, jnp.array([0.0, jnp.nan, 0.0]), opt, **base)
    for make in (sgd, adam, leapfrog):
        for lr in (0.0, -0.1):
            with pytest.raises(ValueError, match="learning_rate must be .* > 0"):
                make(lr)
    with pytest.raises(ValueError, match="friction"):
        leapfrog(0.1, friction=-1.0)


def _numpyro_model(x, y):
    w = numpyro.sample("w", dist.Normal(0, 1).expand([2]).to_event(1))
    s = numpyro.sample("s", dist.HalfNormal(1.0))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("y", dist.Normal(x @ w, s), obs=y)


@pytest.mark.slow  # from_numpyro alone compiles for ~5-15 s
def test_trains_a_numpyro_model_in_unconstrained_space():
    x = jax.random.normal(jax.random.key(0), (300, 2))
    y = x @ jnp.array([1.0, -0.5]) + 0.5 * jax.random.normal(jax.random.key(1), (300,))
    post, init = from_numpyro(jax.random.key(2), _numpyro_model, x, y)
    tr = train(
        jax.random.key(3),
        post,
        init,
        optax.adam(0.05),
        batch_size=32,
        num_steps=600,
        checkpoint_every=300,
    )
    assert set(tr.params) == {"w", "s"} and tr.params["w"].shape == (3, 2)
    np.testing.assert_allclose(tr.params["w"][-1], [1.0, -0.5], atol=0.1)
    # s = exp(u): the fitted noise scale is the residual sd 0.5
    assert abs(float(np.exp(tr.params["s"][-1])) - 0.5) < 0.06


def test_sgd_iterates_shapes_and_full_batch_determinism(posterior):
    it = sgd_iterates(
        jax.random.key(0),
        posterior,
        jnp.zeros(3),
        optax.sgd(0.05),
        batch_size=None,
        num_chains=3,
        num_steps=20,
        thinning=5,
    )
    assert it.positions.shape == (3, 4, 3) and it.loss.shape == (3, 4)
    # full-data gradients: every chain is the same deterministic descent
    np.testing.assert_allclose(it.positions[0], it.positions[2], rtol=1e-6)
    assert np.all(np.diff(it.loss[0]) < 0)
