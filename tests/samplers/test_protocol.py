"""One protocol test over every sampler, plus the driver's contract."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_sampler import HMC, MALA, NUTS, PSGLD, SGHMC, SGLD, sample
from slt_sampler.samplers.mams import MAMS
from tests.helpers import regression_posterior

D = 3


def _samplers():
    imm = jnp.ones(D)
    return [
        SGLD(jnp.asarray(1e-3), batch_size=32),
        SGLD(jnp.asarray(1e-3)),
        SGHMC(jnp.asarray(1e-3), num_integration_steps=3, batch_size=32),
        PSGLD(jnp.asarray(1e-3), batch_size=32, adapt_steps=10),
        MALA(jnp.asarray(1e-3)),
        HMC(jnp.asarray(1e-2), imm, num_integration_steps=5),
        NUTS(jnp.asarray(1e-2), imm, max_num_doublings=4),
        MAMS(jnp.asarray(1e-2), jnp.asarray(2.0), imm),
    ]


@pytest.mark.parametrize("sampler", _samplers(), ids=lambda s: f"{s.name}")
def test_kernel_contract(sampler):
    post, _, _ = regression_posterior(n=200, d=D, gamma=1.0)
    w = jnp.zeros(D)
    state = sampler.init(w, post)
    new, info = jax.jit(sampler.step)(jax.random.key(0), state, post)
    assert jax.tree.structure(new) == jax.tree.structure(state)
    assert new.position.shape == (D,)
    for field in ("loss", "is_divergent", "acceptance_rate"):
        assert getattr(info, field).shape == ()
    assert sampler.info_loss_kind in ("batch", "full")
    # the recorded loss is L at the pre-step position
    if sampler.info_loss_kind == "full":
        from slt_sampler import full_loss

        np.testing.assert_allclose(info.loss, full_loss(post, w), rtol=1e-4)


def test_mams_chains_share_varied_trajectory_lengths():
    """Every chain integrates for the same number of steps at each step (vmapped
    chains then wait for no straggler), the lengths vary from step to step, and they
    average the requested length (McLachlan: two gradients per integrator step)."""
    post, _, _ = regression_posterior(n=200, d=D, gamma=1.0)
    smp = MAMS(jnp.asarray(1e-2), jnp.asarray(6.0), jnp.ones(D))
    res = sample(
        jax.random.key(3),
        smp,
        post,
        jnp.zeros(D),
        num_chains=4,
        num_steps=64,
        progress=False,
    )
    grads = np.asarray(res.stats["num_integration_steps"])
    assert grads.shape == (4, 64)
    np.testing.assert_array_equal(grads, np.broadcast_to(grads[0], grads.shape))
    assert len(np.unique(grads[0])) >= 5
    assert abs(grads[0].mean() / 2 - 6.0) < 0.5


@pytest.mark.parametrize("sampler", _samplers(), ids=lambda s: f"{s.name}")
def test_driver_shapes_and_reproducibility(sampler):
    post, _, _ = regression_posterior(n=200, d=D, gamma=1.0)
    kw = dict(
        num_chains=2, num_steps=40, thinning=4, keep_positions=True, progress=False
    )
    r1 = sample(jax.random.key(1), sampler, post, jnp.zeros(D), **kw)
    r2 = sample(jax.random.key(1), sampler, post, jnp.zeros(D), **kw)
    r3 = sample(jax.random.key(2), sampler, post, jnp.zeros(D), **kw)
    assert r1.losses.shape == (2, 40)
    assert r1.positions.shape == (2, 10, D)
    assert set(r1.stats) >= {"is_divergent", "acceptance_rate"}
    np.testing.assert_array_equal(r1.losses, r2.losses)
    assert not np.array_equal(r1.losses, r3.losses)
    assert not r1.diverged.any()
    assert r1.steps_per_second > 0 and r1.compile_seconds > 0


def test_new_step_size_or_beta_reuses_the_compiled_chunk():
    from slt_sampler.samplers import run

    post, _, _ = regression_posterior(n=100, d=D, gamma=1.0)
    kw = dict(num_chains=2, num_steps=10, progress=False)
    sample(jax.random.key(0), SGLD(jnp.asarray(1e-3), 16), post, jnp.zeros(D), **kw)
    before = len(run._COMPILED)
    sample(
        jax.random.key(0),
        SGLD(jnp.asarray(5e-4), 16),
        post.replace(beta=0.3),
        jnp.zeros(D),
        **kw,
    )
    assert len(run._COMPILED) == before


def test_thinning_must_divide_num_steps():
    post, _, _ = regression_posterior(n=50, d=D)
    with pytest.raises(ValueError, match="multiple of thinning"):
        sample(
            jax.random.key(0),
            SGLD(jnp.asarray(1e-3)),
            post,
            jnp.zeros(D),
            num_chains=1,
            num_steps=10,
            thinning=3,
        )


def test_divergence_is_flagged_per_chain():
    post, _, _ = regression_posterior(n=200, d=D, gamma=1.0)
    r = sample(
        jax.random.key(0),
        SGLD(jnp.asarray(10.0)),
        post,
        jnp.zeros(D),
        num_chains=3,
        num_steps=50,
        progress=False,
    )
    assert r.diverged.all()


def test_on_chunk_receives_partial_results():
    post, _, _ = regression_posterior(n=50, d=D, gamma=1.0)
    seen = []
    sample(
        jax.random.key(0),
        SGLD(jnp.asarray(1e-3)),
        post,
        jnp.zeros(D),
        num_chains=2,
        num_steps=100,
        chunk_steps=25,
        progress=False,
        on_chunk=lambda done, outs: seen.append((done, outs["loss"].shape)),
    )
    assert seen == [(25, (2, 25)), (50, (2, 25)), (75, (2, 25)), (100, (2, 25))]


SHARDED = r"""
import jax, jax.numpy as jnp, numpy as np
from slt_sampler import SGLD, sample
from slt_sampler.samplers.mams import MAMS
from tests.helpers import regression_posterior
assert len(jax.devices()) == 4, jax.devices()
post, _, _ = regression_posterior(n=100, d=3, gamma=1.0)
r = sample(jax.random.key(0), SGLD(jnp.asarray(1e-3), 16), post, jnp.zeros(3),
           num_chains=8, num_steps=20, progress=False)
assert len(r.final_state.position.sharding.device_set) == 4
one = sample(jax.random.key(0), SGLD(jnp.asarray(1e-3), 16), post, jnp.zeros(3),
             num_chains=8, num_steps=20, progress=False, max_devices=1)
assert len(one.final_state.position.sharding.device_set) == 1
np.testing.assert_allclose(one.losses, r.losses, rtol=1e-5)
print("OK", r.losses.shape)
"""


def test_chains_are_sharded_over_all_devices():
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=4",
        JAX_PLATFORMS="cpu",
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", SHARDED],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "OK (8, 20)" in out.stdout
