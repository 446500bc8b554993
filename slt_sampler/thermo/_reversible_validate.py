"""Eager argument checks of :mod:`slt_sampler.thermo.reversible`.

Shapes, dtypes and structure are checked on tracers too (they are static); values
(NaN/inf) only when concrete. The residual functions are probed once per call with
``jax.eval_shape`` on one block (no compile), so a parameter pytree that does not fit
``x`` fails with a message naming ``params`` instead of deep inside ``lax.scan``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import (
    check_array,
    check_callable,
    check_finite_tree,
    check_key,
    check_type,
)
from ._reversible_core import Coupling, CouplingParams

BACKPROP_MODES = ("reversible", "checkpoint", "plain")
_MSG_BACKPROP = "backprop must be one of {modes}, got {value!r}."
_MSG_EVERY = (
    "checkpoint_every must be a positive int or None (store no checkpoints), got "
    "{value!r}."
)
_MSG_EVERY_MODE = (
    "checkpoint_every={value} only applies to backprop='reversible'; "
    "backprop={mode!r} already fixes what is stored. Drop checkpoint_every."
)
_MSG_DIVIDES = (
    "checkpoint_every={every} must divide the depth {depth} (leading axis of params); "
    "pick a divisor of the depth, e.g. {suggestion}."
)
_MSG_X64 = (
    "dtype={dtype} needs 64-bit mode: call inside `with jax.enable_x64(True):` (or "
    "set JAX_ENABLE_X64=1), or pass dtype=None to compute in the input's dtype."
)
_MSG_DTYPE = (
    "dtype must be None or a floating dtype such as jnp.float64, got {value!r}."
)
_MSG_SHAPE = (
    "{fn}: {name} must have an even last axis (>= 2) to split into two halves, got "
    "shape {shape}; pad the features or project to an even width."
)
_MSG_DEPTH = (
    "params leaves must share one leading (depth) axis, got leading sizes {sizes}; "
    "stack per-block parameters with jnp.stack or use init_coupling_mlp."
)
_MSG_DEPTH_ZERO = (
    "params have depth 0 (empty leading axis): the stack would be the identity. "
    "Pass params with depth >= 1, e.g. init_coupling_mlp(key, depth=8, ...)."
)
_MSG_BITS = (
    "fixed_point_bits must be an int in 1..52 (e.g. 16 for float32) or None, got "
    "{value!r}."
)
_MSG_FIT = (
    "{fn}: params do not fit {name} of shape {shape}: {detail}. Pass params built "
    "for this width (init_coupling_mlp(key, depth, dim={dim}, hidden, "
    "affine={affine})) or an input of the width the params were built for."
)
_FIX_STACK = "Wrap the coupling with reversible_stack(coupling, backprop=...)."
_FIX_PARAMS = "Build them with init_coupling_mlp(...) or CouplingParams(f=..., g=...)."
_FIX_COUPLING = "Build it with additive_coupling(f) or affine_coupling(f)."


def check_bits(fixed_point_bits) -> int:
    """``fixed_point_bits``: an int in 1..52."""
    bits = fixed_point_bits
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer):
        raise TypeError(_MSG_BITS.format(value=bits))
    if not 0 < bits < 53:
        raise ValueError(_MSG_BITS.format(value=bits))
    return int(bits)


def check_residuals(fn: str, f, g) -> None:
    """Residual functions must be callables ``f(params, x_half, rng_key)``."""
    fix = "Pass f(params, x_half, rng_key), e.g. mlp_residual()."
    check_callable(fn, "f", f, fix)
    if g is not None:
        check_callable(fn, "g", g, fix)


def check_stack_options(coupling, backprop, checkpoint_every, dtype):
    """Options of :func:`reversible_stack`; returns the normalised ``(every, dtype)``."""
    check_type(
        "reversible_stack", "coupling", coupling, Coupling, "a Coupling", _FIX_COUPLING
    )
    if not isinstance(backprop, str) or backprop not in BACKPROP_MODES:
        raise ValueError(_MSG_BACKPROP.format(modes=BACKPROP_MODES, value=backprop))
    if checkpoint_every is not None:
        every = checkpoint_every
        if isinstance(every, bool) or not isinstance(every, int | np.integer):
            raise TypeError(_MSG_EVERY.format(value=every))
        if every < 1:
            raise ValueError(_MSG_EVERY.format(value=every))
        if backprop != "reversible":
            raise ValueError(_MSG_EVERY_MODE.format(value=every, mode=backprop))
        checkpoint_every = int(every)
    if dtype is not None:
        try:
            dt = jnp.dtype(dtype)
        except TypeError:
            raise TypeError(_MSG_DTYPE.format(value=dtype)) from None
        if not jnp.issubdtype(dt, jnp.floating):
            raise ValueError(_MSG_DTYPE.format(value=dtype))
    return checkpoint_every, dtype


def depth_of(params) -> int:
    """The shared leading (depth) axis of every leaf, >= 1."""
    sizes = {
        jnp.shape(leaf)[0] if jnp.ndim(leaf) else None
        for leaf in jax.tree.leaves(params)
    }
    if len(sizes) != 1 or None in sizes:
        raise ValueError(_MSG_DEPTH.format(sizes=sorted(sizes, key=str)))
    depth = sizes.pop()
    if depth == 0:
        raise ValueError(_MSG_DEPTH_ZERO)
    return depth


def check_call(fn: str, stack, params, x, rng_key, name: str = "x") -> int:
    """Arguments of ``forward``/``inverse``/``reconstruction_error``; returns depth."""
    from .reversible import ReversibleStack  # the public class; avoids a cycle

    check_type(fn, "stack", stack, ReversibleStack, "a ReversibleStack", _FIX_STACK)
    check_stack_options(
        stack.coupling, stack.backprop, stack.checkpoint_every, stack.dtype
    )
    check_type(fn, "params", params, CouplingParams, "a CouplingParams", _FIX_PARAMS)
    check_key(fn, "rng_key", rng_key, allow_none=True)
    x = check_array(fn, name, x, nonempty=False, fix="Pass a float array.")
    if x.ndim < 1 or x.shape[-1] < 2 or x.shape[-1] % 2:
        raise ValueError(_MSG_SHAPE.format(fn=fn, name=name, shape=tuple(x.shape)))
    depth = depth_of(params)
    every = stack.checkpoint_every
    if every is not None and depth % every:
        divisors = [d for d in range(1, depth + 1) if depth % d == 0]
        best = min(divisors, key=lambda d: abs(d - every))
        raise ValueError(_MSG_DIVIDES.format(every=every, depth=depth, suggestion=best))
    check_finite_tree(fn, "params", params)
    return depth


def check_block_fits(fn: str, coupling: Coupling, params, x, keys, name="x") -> None:
    """Probe one block with ``jax.eval_shape``: ``F``/``G`` must accept a half of
    ``x`` and return the width the combine needs (no compile, no FLOPs)."""
    half = x.shape[-1] // 2
    want = 2 * half if coupling.kind == "affine" else half
    block = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(jnp.shape(a)[1:], jnp.result_type(a)), params
    )
    key = None if keys is None else jax.ShapeDtypeStruct(keys.shape[1:], keys.dtype)
    x_half = jax.ShapeDtypeStruct(x.shape[:-1] + (half,), x.dtype)
    for label, res, p in (("F", coupling.f, block.f), ("G", coupling.g, block.g)):
        try:
            out = jax.eval_shape(res, p, x_half, key)
        except (TypeError, ValueError, KeyError, IndexError) as err:
            detail = f"{label} fails on a half of width {half} ({err})"
        else:
            shape = getattr(out, "shape", None)
            if shape == x_half.shape[:-1] + (want,):
                continue
            detail = f"{label} returns shape {shape}, expected last axis {want}"
        raise ValueError(
            _MSG_FIT.format(
                fn=fn,
                name=name,
                shape=tuple(x.shape),
                detail=detail,
                dim=x.shape[-1],
                affine=coupling.kind == "affine",
            )
        )
