"""Temperature ladders: many β in one compiled run, β as a vmap axis beside chains."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_sampler import MALA, SGLD, sample
from slt_sampler.estimators._mcse import mcse_mean
from slt_sampler.samplers.ladder import sample_ladder
from tests.helpers import exact_mean_nll, regression_posterior

D = 2
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class CompileCounter:
    """Names of the XLA compilations JAX performs inside the ``with`` block."""

    def __enter__(self):
        self.names = []
        jax.monitoring.register_event_duration_secs_listener(self._record)
        return self

    def _record(self, event, duration, **kw):
        if event == COMPILE_EVENT:
            self.names.append(kw.get("fun_name"))

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._record)


def _mala_steps(x, betas, scale=0.5):
    """Per-rung MALA step ``scale / h_max(β)`` of the Gaussian posterior."""
    top = np.linalg.eigvalsh(np.asarray(x, np.float64).T @ np.asarray(x)).max()
    return [MALA(jnp.asarray(scale / (1 + b * top), jnp.float32)) for b in betas]


def test_sixteen_rungs_compile_once_and_new_betas_do_not_recompile():
    post, x, _ = regression_posterior(seed=1, n=40, d=D)
    betas = np.geomspace(0.1, 3.0, 16)
    kw = {"num_chains": 2, "num_steps": 20, "chunk_steps": 10, "progress": False}
    with CompileCounter() as first:
        res = sample_ladder(
            jax.random.key(0), _mala_steps(x, betas), post, jnp.zeros(D),
            betas=betas, **kw,
        )  # fmt: skip
    assert first.names.count("jit(chunk)") == 1  # two chunks, one executable
    assert res.losses.shape == (16, 2, 20)
    with CompileCounter() as second:
        sample_ladder(
            jax.random.key(1), _mala_steps(x, 2 * betas), post, jnp.zeros(D),
            betas=2 * betas, **kw,
        )  # fmt: skip
    assert second.names == []


def test_one_rung_ladder_is_the_single_beta_run():
    post, _, _ = regression_posterior(seed=2, n=40, d=D)
    sgld = SGLD(jnp.asarray(2e-3), batch_size=8)
    kw = {"num_chains": 3, "num_steps": 12, "thinning": 3, "keep_positions": True}
    single = sample(jax.random.key(5), sgld, post.replace(beta=0.7), jnp.ones(D), **kw)
    ladder = sample_ladder(
        jax.random.key(5), sgld, post, jnp.ones(D), betas=[0.7], **kw
    )
    np.testing.assert_allclose(ladder.losses[0], single.losses, rtol=1e-6)
    np.testing.assert_allclose(ladder.positions[0], single.positions, rtol=1e-6)


def _sq(w):
    return jnp.sum(w**2)


def test_ladder_shapes_with_observables_and_pointwise():
    post, x, _ = regression_posterior(seed=3, n=30, d=D)
    betas = [0.5, 1.0, 2.0]
    kw = {
        "betas": betas,
        "num_chains": 2,
        "num_steps": 12,
        "thinning": 2,
        "keep_positions": True,
        "observe": _sq,
        "pointwise": True,
        "pointwise_chunk": 7,
        "progress": False,
    }
    res = sample_ladder(
        jax.random.key(0), _mala_steps(x, betas), post, jnp.zeros(D), **kw
    )
    assert res.losses.shape == (3, 2, 12)
    assert res.stats["acceptance_rate"].shape == (3, 2, 12)
    assert res.positions.shape == (3, 2, 6, D)
    assert res.observations.shape == (3, 2, 6)
    assert res.diverged.shape == (3, 2)
    assert res.final_state.position.shape == (3, 2, D)
    assert res.pointwise.log_mean_lik.shape == (3, 2, 30)
    np.testing.assert_allclose(
        res.observations, np.sum(res.positions**2, -1), rtol=1e-5
    )
    ll = jax.vmap(jax.vmap(jax.vmap(lambda w: post.loglik_fn(w, post.data))))(
        res.positions
    )
    np.testing.assert_allclose(
        res.pointwise.mean_loglik, np.mean(ll, axis=2), rtol=1e-5
    )
    # a ladder restarts from its own final state (leading (beta, chain) axes);
    # the same options reuse the compiled chunk
    again = sample_ladder(
        jax.random.key(1),
        _mala_steps(x, betas),
        post,
        res.final_state.position,
        chains_axis=True,
        **kw,
    )
    assert again.losses.shape == (3, 2, 12)
    assert not np.array_equal(again.losses, res.losses)


@pytest.mark.parametrize(
    "betas, match",
    [
        ([0.5, 0.0, 1.0], r"betas.*> 0.*index \[1\]"),
        ([0.5, -1.0], r"betas.*> 0"),
        ([0.5, np.nan], r"betas.*finite"),
        ([], "non-empty"),
        ([[0.5, 1.0]], "1-D"),
    ],
)
def test_bad_betas(betas, match):
    post, _, _ = regression_posterior(n=20, d=D)
    with pytest.raises(ValueError, match=match):
        sample_ladder(
            jax.random.key(0), MALA(0.01), post, jnp.zeros(D), betas=betas,
            num_chains=1, num_steps=2,
        )  # fmt: skip


def test_bad_per_rung_samplers():
    post, _, _ = regression_posterior(n=20, d=D)
    kw = {"betas": [0.5, 1.0], "num_chains": 1, "num_steps": 2}
    with pytest.raises(ValueError, match="one sampler per rung"):
        sample_ladder(jax.random.key(0), [MALA(0.01)], post, jnp.zeros(D), **kw)
    mixed = [SGLD(0.01, batch_size=4), SGLD(0.01, batch_size=8)]
    with pytest.raises(ValueError, match="one type with the same structural"):
        sample_ladder(jax.random.key(0), mixed, post, jnp.zeros(D), **kw)
    with pytest.raises(ValueError, match=r"leading axes \(2, 1\)"):
        sample_ladder(
            jax.random.key(0), MALA(0.01), post, jnp.zeros((1, D)),
            chains_axis=True, **kw,
        )  # fmt: skip


@pytest.mark.slow
def test_every_rung_samples_its_own_beta():
    """Per-rung E_β[n L_n] of a 16-rung MALA ladder against the closed form."""
    post, x, y = regression_posterior(seed=4, n=100, d=D)
    betas = np.geomspace(0.05, 4.0, 16)
    burn = 200
    res = sample_ladder(
        jax.random.key(11),
        _mala_steps(x, betas),
        post,
        jnp.zeros(D),
        betas=betas,
        num_chains=4,
        num_steps=2200,
        progress=False,
    )
    assert not res.diverged.any()
    z = []
    for b, beta in enumerate(betas):
        nl = post.n * np.asarray(res.losses[b, :, burn:], np.float64)
        err = mcse_mean(nl)
        z.append((nl.mean() - exact_mean_nll(x, y, float(beta))) / err)
        # the error bar is tight enough to tell neighbouring rungs apart
        assert (
            err
            < 0.05
            * abs(exact_mean_nll(x, y, float(beta)) - exact_mean_nll(x, y, 1.2 * beta))
            + 0.2
        )
    z = np.asarray(z)
    assert np.max(np.abs(z)) < 4, z
    assert 0.2 < np.mean(z**2) < 3, z  # MCSE honest: neither too small nor too wide
