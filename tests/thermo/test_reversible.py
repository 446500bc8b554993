"""Tests for slt_sampler.thermo.reversible (issue 5; targets from THERMO_REFERENCE §3.4).

The reference setup (§3.3) is F, G = MLP 64 -> 512 -> 64 (tanh) on a 128-wide state,
batch 256. Gradient errors are relative Frobenius errors over the whole parameter
pytree against plain autodiff of the same stack.
"""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_sampler.thermo import reversible as rev

DIM, HIDDEN, BATCH = 128, 512, 256


def _rel(a, b):
    la = [np.asarray(v, np.float64) for v in jax.tree.leaves(a)]
    lb = [np.asarray(v, np.float64) for v in jax.tree.leaves(b)]
    num = sum(np.sum((x - y) ** 2) for x, y in zip(la, lb))
    return float(np.sqrt(num / sum(np.sum(y**2) for y in lb)))


def _setup(
    depth, *, dim=DIM, hidden=HIDDEN, batch=BATCH, scale=None, seed=0, affine=False
):
    params = rev.init_coupling_mlp(
        jax.random.key(seed), depth, dim, hidden, affine=affine, scale=scale
    )
    x = jax.random.normal(jax.random.key(seed + 1000), (batch, dim))
    return params, x


def _loss(stack):
    def loss(params, x, key=None):
        y, logdet = rev.forward(stack, params, x, rng_key=key)
        return jnp.sum(jnp.sin(y)) + 0.1 * jnp.sum(logdet)

    return loss


@functools.cache
def _grad_fn(stack):
    # one jitted function per stack structure, so equal stacks share compilations
    return jax.jit(jax.grad(_loss(stack), argnums=(0, 1)))


@functools.cache
def _roundtrip(stack):
    """Jitted ``x -> (y, logdet, inverse(y), inverse logdet)``, one per stack."""

    def run(params, x):
        y, logdet = rev.forward(stack, params, x)
        return (y, logdet, *rev.inverse(stack, params, y))

    return jax.jit(run)


def _grad(stack, params, x, key=None):
    return _grad_fn(stack)(params, x, key)


def _plain_and_reversible(params, x):
    """Gradients of the additive stack by plain autodiff and by reconstruction."""
    ref = _grad(rev.reversible_stack(ADD, backprop="plain"), params, x)
    return ref, _grad(rev.reversible_stack(ADD), params, x)


ADD = rev.additive_coupling(rev.mlp_residual())


def _affine_coupling():
    base = rev.mlp_residual()

    def f(params, x, key):  # bounded log-scale for stability
        s, t = jnp.split(base(params, x, key), 2, axis=-1)
        return jnp.concatenate([0.5 * jnp.tanh(s), t], axis=-1)

    return rev.affine_coupling(f)


AFF = _affine_coupling()


# ----------------------------------------------------------------- inverse / logdet
@pytest.mark.parametrize("coupling,affine", [(ADD, False), (AFF, True)])
def test_inverse_per_block_within_1e6(coupling, affine):
    # MemCNN ``is_invertible_module`` convention: inputs uniform on [0, 1), atol 1e-6.
    stack = rev.reversible_stack(coupling)
    params, _ = _setup(1, affine=affine)
    x = jax.random.uniform(jax.random.key(5), (BATCH, DIM))
    y, logdet, x_rec, inv_logdet = _roundtrip(stack)(params, x)
    assert float(jnp.max(jnp.abs(x_rec - x))) <= 1e-6
    np.testing.assert_allclose(inv_logdet, -logdet, rtol=1e-5, atol=1e-5)
    assert float(jnp.max(jnp.abs(y - x))) > 0.1  # the block is not the identity


def test_stack_inverse_depth64_default_init_float32():
    # default init: residual scale 1/sqrt(depth) = 0.125 at depth 64
    stack = rev.reversible_stack(ADD)
    params, x = _setup(64)
    _, _, x_rec, _ = _roundtrip(stack)(params, x)
    err = float(jnp.linalg.norm(x_rec - x) / jnp.linalg.norm(x))
    assert err <= 1e-4, err


def test_stack_inverse_depth64_lecun_scale_matches_reference_drift():
    # THERMO_REFERENCE §3.3 measured 1.1e-4 at residual scale 1.0 (plain LeCun init);
    # this is why the default is 1/sqrt(depth). Same order here, and the diagnostic
    # reports the same number as the explicit round trip.
    stack = rev.reversible_stack(ADD)
    params, x = _setup(64, scale=1.0)
    _, _, x_rec, _ = _roundtrip(stack)(params, x)
    err = float(jnp.linalg.norm(x_rec - x) / jnp.linalg.norm(x))
    assert 0.5 * 1.1e-4 <= err <= 2 * 1.1e-4, err
    info = jax.jit(
        lambda p, v: rev.reconstruction_error(stack, p, v, threshold=jnp.inf)
    )(params, x)
    np.testing.assert_allclose(float(info.relative_error), err, rtol=1e-3)


def test_default_init_scale_is_inverse_sqrt_depth():
    lecun = rev.init_coupling_mlp(jax.random.key(0), 16, 8, 4, scale=1.0)
    default = rev.init_coupling_mlp(jax.random.key(0), 16, 8, 4)
    np.testing.assert_allclose(default.f["w2"], lecun.f["w2"] / 4.0, rtol=1e-6)
    np.testing.assert_array_equal(default.g["w1"], lecun.g["w1"])
    for bad, match in [({"scale": -1.0}, "scale must be"), ({"depth": 0}, "depth")]:
        kwargs = {"depth": 16, **bad}
        with pytest.raises(ValueError, match=match):
            rev.init_coupling_mlp(jax.random.key(0), dim=8, hidden=4, **kwargs)


@pytest.mark.parametrize("scale", [None, 1.0], ids=["default", "lecun"])
def test_fixed_point_reconstruction_is_bit_exact_depth64(scale):
    coupling = rev.additive_coupling(rev.mlp_residual(), fixed_point_bits=16)
    stack = rev.reversible_stack(coupling)
    params, x = _setup(64, scale=scale)
    x_grid = jnp.round(x * 2.0**16) / 2.0**16
    y, _, x_rec, _ = _roundtrip(stack)(params, x)
    assert jnp.array_equal(x_rec, x_grid)
    assert float(jnp.max(jnp.abs(y))) < 2.0 ** (24 - 16)  # inside the exact range


def test_affine_logdet_matches_jacobian():
    stack = rev.reversible_stack(AFF)
    params, _ = _setup(3, dim=6, hidden=8, affine=True, scale=1.0)
    x = jax.random.normal(jax.random.key(3), (6,))
    logdet, jac = jax.jit(
        lambda v: (
            rev.forward(stack, params, v)[1],
            jax.jacrev(lambda u: rev.forward(stack, params, u)[0])(v),
        )
    )(x)
    sign, expected = jnp.linalg.slogdet(jac)
    assert float(sign) > 0
    np.testing.assert_allclose(float(logdet), float(expected), rtol=1e-4, atol=1e-5)
    assert abs(float(logdet)) > 1e-2  # non-trivial volume change


def test_additive_logdet_is_zero_and_volume_preserving():
    stack = rev.reversible_stack(ADD)
    params, _ = _setup(3, dim=6, hidden=8)
    x = jax.random.normal(jax.random.key(3), (6,))
    _, logdet = rev.forward(stack, params, x)
    jac = jax.jacrev(lambda v: rev.forward(stack, params, v)[0])(x)
    assert float(logdet) == 0.0
    np.testing.assert_allclose(float(jnp.linalg.det(jac)), 1.0, rtol=1e-4)


# ------------------------------------------------------------------------ gradients
def test_affine_gradients_match_plain_autodiff():
    params, x = _setup(8, dim=16, hidden=32, batch=8, affine=True)
    ref = _grad(rev.reversible_stack(AFF, backprop="plain"), params, x)
    got = _grad(rev.reversible_stack(AFF), params, x)
    assert _rel(got, ref) <= 1e-5


@pytest.fixture(scope="module")
def depth64():
    """Reference setup at depth 64, default init: plain and reversible gradients."""
    params, x = _setup(64)
    ref, got = _plain_and_reversible(params, x)
    return params, x, ref, got


@pytest.fixture(scope="module")
def depth64_lecun():
    """As ``depth64`` at residual scale 1.0, the reference table's setting."""
    params, x = _setup(64, scale=1.0)
    ref, got = _plain_and_reversible(params, x)
    return params, x, ref, got


def test_gradient_float32_depth64_default_init_within_1e4(depth64):
    _, _, ref, got = depth64
    err = _rel(got, ref)
    assert err <= 1e-4, err


def test_gradient_float32_depth64_lecun_scale_within_1e4(depth64_lecun):
    # the reference measured 8.8e-5 at scale 1.0: within target, with little margin
    _, _, ref, got = depth64_lecun
    err = _rel(got, ref)
    assert err <= 1e-4, err


@pytest.mark.slow
@pytest.mark.parametrize("scale", [None, 1.0], ids=["default", "lecun"])
def test_gradient_float64_depth64_within_1e10(scale):
    with jax.enable_x64(True):
        params, x = _setup(64, scale=scale)
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        x = x.astype(jnp.float64)
        ref, got = _plain_and_reversible(params, x)
        assert jax.tree.leaves(got)[0].dtype == jnp.float64
        err = _rel(got, ref)
    assert err <= 1e-10, err


@pytest.mark.slow
def test_dtype_float64_option_keeps_float32_interface():
    params, x = _setup(16, dim=16, hidden=32, batch=8, scale=1.5)
    stack64 = rev.reversible_stack(ADD, dtype=jnp.float64)
    with pytest.raises(ValueError, match="enable_x64"):
        rev.forward(stack64, params, x)
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        ref = _grad(
            rev.reversible_stack(ADD, backprop="plain"), p64, x.astype(jnp.float64)
        )
        got = _grad(stack64, params, x)
    assert jax.tree.leaves(got)[0].dtype == jnp.float32
    assert _rel(got, ref) <= 1e-6


def test_checkpoint_every_bounds_drift_and_memory(depth64_lecun):
    params, x, ref, default = depth64_lecun
    stack8 = rev.reversible_stack(ADD, checkpoint_every=8)
    err8, err = _rel(_grad(stack8, params, x), ref), _rel(default, ref)
    assert err8 <= err / 10, (err8, err)
    temps = {every: _temp("reversible", 64, every) for every in (None, 8)}
    act = BATCH * DIM * 4  # one stored activation, float32
    assert temps[8] - temps[None] <= 8 * act * 1.1, temps  # 8 stored, not depth


def test_checkpoint_every_must_divide_depth():
    params, x = _setup(6, dim=8, hidden=8, batch=2)
    stack = rev.reversible_stack(ADD, checkpoint_every=4)
    with pytest.raises(ValueError, match="divide the depth 6"):
        rev.forward(stack, params, x)


# ----------------------------------------------------------------------- randomness
def test_dropout_gradients_replay_keys():
    params, x = _setup(16, dim=32, hidden=64, batch=32)
    key = jax.random.key(7)
    drop = rev.mlp_residual(dropout_rate=0.3)
    # exact (fixed-point) reconstruction: bit-identical to plain autodiff
    exact = rev.additive_coupling(drop, fixed_point_bits=16)
    ref = _grad(rev.reversible_stack(exact, backprop="plain"), params, x, key)
    got = _grad(rev.reversible_stack(exact), params, x, key)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
        assert jnp.array_equal(a, b)
    again = _grad(
        rev.reversible_stack(exact), params, x, key
    )  # stateless, deterministic
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(got)):
        assert jnp.array_equal(a, b)
    other = _grad(rev.reversible_stack(exact), params, x, jax.random.key(8))
    assert _rel(other, ref) > 0.1  # the key matters: dropout is really on
    # float arithmetic: same masks, only reconstruction rounding differs (a float
    # reconstruction y1 - F(x2) is not bitwise x1, so bit-identity needs the
    # fixed-point mode above)
    floats = rev.additive_coupling(drop)
    ref = _grad(rev.reversible_stack(floats, backprop="plain"), params, x, key)
    got = _grad(rev.reversible_stack(floats), params, x, key)
    assert _rel(got, ref) <= 1e-5
    # per-block remat replays the same keys and is bit-identical to plain autodiff
    # (the study and the depth-1024 test use it as the memory-safe reference)
    remat = _grad(rev.reversible_stack(floats, backprop="checkpoint"), params, x, key)
    for a, b in zip(jax.tree.leaves(remat), jax.tree.leaves(ref)):
        assert jnp.array_equal(a, b)


# ------------------------------------------------------------------------- memory
@functools.cache
def _temp(backprop, depth, every=None):
    stack = rev.reversible_stack(ADD, backprop=backprop, checkpoint_every=every)
    params, x = _setup(depth)
    return rev.compiled_cost(jax.grad(_loss(stack)), params, x).temp_bytes


def test_memory_ratios():
    # per-block remat (reference: >= 3x from 4 to 64) is measured in the study/benchmark
    cases = [("reversible", 4), ("reversible", 64), ("reversible", 256)]
    cases += [("plain", 4), ("plain", 64)]
    temps = {(m, d): _temp(m, d) for m, d in cases}
    rev4 = temps[("reversible", 4)]
    assert temps[("reversible", 64)] <= 1.2 * rev4, temps
    assert temps[("reversible", 256)] <= 1.2 * rev4, temps
    assert temps[("plain", 64)] >= 10 * temps[("plain", 4)], temps


# -------------------------------------------------------------- diagnostic / errors
def test_reconstruction_error_warns_above_threshold():
    stack = rev.reversible_stack(ADD)
    params, x = _setup(16, dim=16, hidden=32, batch=8, scale=3.0)
    with pytest.warns(rev.ReconstructionWarning, match="exceeds threshold"):
        info = rev.reconstruction_error(stack, params, x)  # eager: Python warning
    assert info.per_block.shape == (16,)
    assert float(info.relative_error) > 1e-4
    jitted = jax.jit(lambda p, v: rev.reconstruction_error(stack, p, v))

    def run_jitted(p):  # under jit the warning comes from jax.debug.callback
        out = jax.block_until_ready(jitted(p, x))
        jax.effects_barrier()
        return out

    with pytest.warns(rev.ReconstructionWarning, match="exceeds threshold"):
        run_jitted(params)
    small, _ = _setup(16, dim=16, hidden=32, batch=8, scale=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = run_jitted(small)
    assert float(ok.relative_error) <= 1e-5
    # drift grows from the output end towards the input
    assert float(info.per_block[0]) > float(info.per_block[-1])


def test_reconstruction_error_under_jit_and_checkpoints():
    params, x = _setup(16, dim=16, hidden=32, batch=8, scale=1.0)
    plain = jax.jit(
        lambda p, v: rev.reconstruction_error(
            rev.reversible_stack(ADD), p, v, threshold=1.0
        )
    )(params, x)
    every4 = rev.reconstruction_error(
        rev.reversible_stack(ADD, checkpoint_every=4), params, x, threshold=1.0
    )
    assert float(every4.relative_error) < float(plain.relative_error)
    assert float(plain.relative_error) > 0.0


def test_vmap_and_shapes():
    stack = rev.reversible_stack(AFF)
    params, x = _setup(4, dim=8, hidden=8, batch=6, affine=True)
    y, logdet = jax.vmap(lambda v: rev.forward(stack, params, v))(x)
    y2, logdet2 = rev.forward(stack, params, x)
    assert y.shape == x.shape and logdet.shape == (6,)
    np.testing.assert_allclose(y, y2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logdet, logdet2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"backprop": "remat"}, "backprop must be one of"),
        ({"checkpoint_every": 0}, "checkpoint_every must be a positive int"),
        ({"checkpoint_every": 2, "backprop": "plain"}, "only applies to"),
        ({"dtype": jnp.int32}, "floating dtype"),
    ],
)
def test_stack_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rev.reversible_stack(ADD, **kwargs)


def test_input_validation():
    stack = rev.reversible_stack(ADD)
    params, _ = _setup(2, dim=8, hidden=8, batch=2)
    with pytest.raises(ValueError, match="even last axis"):
        rev.forward(stack, params, jnp.ones((2, 7)))
    bad = rev.CouplingParams(params.f, jax.tree.map(lambda a: a[:1], params.g))
    with pytest.raises(ValueError, match="leading"):
        rev.forward(stack, bad, jnp.ones((2, 8)))
    with pytest.raises(ValueError, match="dropout_rate"):
        rev.mlp_residual(dropout_rate=1.0)
    with pytest.raises(ValueError, match="fixed_point_bits"):
        rev.additive_coupling(rev.mlp_residual(), fixed_point_bits=0)


# --------------------------------------------------------------------- slow tier
@pytest.mark.slow
def test_gradient_float32_depth1024_scale01_within_1e5():
    params, x = _setup(1024, scale=0.1)
    # per-block checkpointing is bit-identical to plain autodiff (dropout test) and
    # avoids storing 1024 blocks of 512-wide hidden activations.
    ref = _grad(rev.reversible_stack(ADD, backprop="checkpoint"), params, x)
    got = _grad(rev.reversible_stack(ADD), params, x)
    err = _rel(got, ref)
    assert err <= 1e-5, err


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gradient_float32_depth64_lecun_scale_other_seeds(seed):
    params, x = _setup(64, seed=seed, scale=1.0)
    ref, got = _plain_and_reversible(params, x)
    err = _rel(got, ref)
    assert err <= 1e-4, err
