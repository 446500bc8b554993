"""Private helpers of :mod:`slt_sampler.thermo.reversible`: an MLP residual function,
its stacked initialiser and an XLA compiled-cost probe."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._validate import check_int
from ._reversible_core import CouplingParams

Array = jax.Array

_MSG_RATE = "dropout_rate must be in [0, 1), got {value!r}."
_MSG_DIM = "dim must be even to split into two halves, got {value!r}."
_MSG_SCALE = (
    "scale must be a non-negative float (residual-branch scale) or None for the "
    "default 1/sqrt(depth), got {value!r}."
)


class CompiledCost(NamedTuple):
    """XLA compiled-memory analysis and compile time of a jitted function.

    Attributes
    ----------
    temp_bytes : int
        Temporary buffers (activations, workspace); excludes arguments and outputs.
    argument_bytes, output_bytes : int
        Argument (e.g. parameters) and output (e.g. gradients) buffers.
    compile_seconds : float
        Wall time of ``lower`` plus ``compile``.
    """

    temp_bytes: int
    argument_bytes: int
    output_bytes: int
    compile_seconds: float


def mlp_residual(
    *, activation: Callable = jnp.tanh, dropout_rate: float = 0.0
) -> Callable:
    """A one-hidden-layer residual function ``f(params, x, rng_key)``.

    ``h = activation(x W1 + b1)``, inverted dropout on ``h`` when ``rng_key`` is
    given and ``dropout_rate > 0``, output ``h W2 + b2``. Params: dict with
    ``w1, b1, w2, b2`` (see :func:`init_coupling_mlp`).
    """
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(_MSG_RATE.format(value=dropout_rate))

    def apply(params, x, rng_key):
        h = x @ params["w1"]
        h = activation(h + jnp.broadcast_to(params["b1"], h.shape))
        if dropout_rate > 0.0 and rng_key is not None:
            keep = jax.random.bernoulli(rng_key, 1.0 - dropout_rate, h.shape)
            h = jnp.where(keep, h / (1.0 - dropout_rate), jnp.zeros((), h.dtype))
        out = h @ params["w2"]
        return out + jnp.broadcast_to(params["b2"], out.shape)

    return apply


def default_residual_scale(depth: int) -> float:
    """The default residual-branch scale of a ``depth``-block stack, ``1/sqrt(depth)``
    (see :func:`init_coupling_mlp`)."""
    return 1.0 / check_int("depth", depth) ** 0.5


def init_coupling_mlp(
    rng_key: Array,
    depth: int,
    dim: int,
    hidden: int,
    *,
    affine: bool = False,
    scale: float | None = None,
    dtype: Any = jnp.float32,
) -> CouplingParams:
    """Stacked parameters for :func:`mlp_residual` ``F`` and ``G`` over ``depth`` blocks.

    ``W1 ~ N(0, 1/(dim/2))`` (LeCun normal), ``W2 ~ N(0, scale^2/hidden)``, biases 0.
    Affine couplings get an output of width ``dim`` (``s`` and ``t``).

    ``scale`` is the residual-branch scale. The default ``None`` means
    ``1/sqrt(depth)``: the ``depth`` residual increments then add O(1) variance in
    total, so the output/input norm ratio stays near 1.2 at any depth and the
    float32 reconstruction drift is about 4e-7 at depth 64 and 1e-6 at depth 1024
    (measured; ``scale=1.0``, plain LeCun init, grows the ratio with depth and
    reaches a drift of 1.1e-4 at depth 64 and garbage at 1024, THERMO_REFERENCE
    §3.3). Pass ``scale=1.0`` for plain LeCun init.
    """
    if dim % 2:
        raise ValueError(_MSG_DIM.format(value=dim))
    depth = check_int("depth", depth)
    if scale is None:
        scale = default_residual_scale(depth)
    elif not scale >= 0.0:
        raise ValueError(_MSG_SCALE.format(value=scale))
    half = dim // 2
    out = 2 * half if affine else half

    def one(key):
        k1, k2 = jax.random.split(key)
        return {
            "w1": jax.random.normal(k1, (depth, half, hidden), dtype) / jnp.sqrt(half),
            "b1": jnp.zeros((depth, hidden), dtype),
            "w2": jax.random.normal(k2, (depth, hidden, out), dtype)
            * (scale / jnp.sqrt(hidden)),
            "b2": jnp.zeros((depth, out), dtype),
        }

    kf, kg = jax.random.split(rng_key)
    return CouplingParams(one(kf), one(kg))


def compiled_cost(fn: Callable, *args: Any) -> CompiledCost:
    """Compile ``jax.jit(fn)(*args)`` and read XLA's memory analysis.

    A measurement utility (it calls ``jax.jit`` itself). Pass e.g.
    ``jax.grad(loss)`` to measure training memory; ``temp_bytes`` excludes
    argument (parameter) and output (gradient) buffers.
    """
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    seconds = time.perf_counter() - start
    stats = compiled.memory_analysis()
    return CompiledCost(
        int(stats.temp_size_in_bytes),
        int(stats.argument_size_in_bytes),
        int(stats.output_size_in_bytes),
        seconds,
    )
