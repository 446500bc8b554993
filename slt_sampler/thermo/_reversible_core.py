"""Private core of :mod:`slt_sampler.thermo.reversible`: couplings, scans, custom VJP.

A coupling block splits its input along the last axis into halves ``(x1, x2)`` and
computes

.. math::

    y_1 = x_1 \\oplus F(x_2), \\qquad y_2 = x_2 \\oplus G(y_1),

where :math:`a \\oplus h = a + h` (additive) or :math:`a \\oplus (s, t) = a\\,e^{s} + t`
(affine). Each combine returns its log-determinant; each uncombine inverts it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

PyTree = Any


class CouplingParams(NamedTuple):
    """Parameters of a coupling block (or a stack of them, with a leading depth axis).

    Attributes
    ----------
    f : PyTree
        Parameters of the residual function ``F`` (updates the first half).
    g : PyTree
        Parameters of the residual function ``G`` (updates the second half).
    """

    f: PyTree
    g: PyTree


class Coupling(NamedTuple):
    """A coupling rule: residual functions plus an invertible combine.

    Attributes
    ----------
    f, g : callable
        ``f(params, x_half, rng_key) -> h``; ``rng_key`` is ``None`` when the caller
        gave no key (evaluation mode).
    combine : callable
        ``combine(a, h) -> (b, logdet)`` with ``logdet`` of shape ``a.shape[:-1]``.
    uncombine : callable
        ``uncombine(b, h) -> a``, the exact inverse of ``combine`` in exact arithmetic.
    kind : str
        ``"additive"`` or ``"affine"``.
    quantize : callable
        Applied to the stack input (identity unless fixed-point arithmetic is used).
    """

    f: Callable
    g: Callable
    combine: Callable
    uncombine: Callable
    kind: str
    quantize: Callable


def additive_combine(a, h):
    return a + h, jnp.zeros(a.shape[:-1], a.dtype)


def additive_uncombine(b, h):
    return b - h


def identity(x):
    return x


def fixed_point(bits: int) -> Callable:
    """Round to the grid ``2**-bits`` in the forward pass, identity gradient.

    ``h + stop_gradient(q - h)`` equals ``q`` exactly (``q - h`` is exact by
    Sterbenz's lemma), so sums of grid values are exact while they stay below
    ``2**(mantissa_bits - bits)`` in magnitude.
    """
    scale = float(2**bits)

    def quantize(h):
        q = jnp.round(h * scale) / scale
        return h + lax.stop_gradient(q - h)

    return quantize


def fixed_point_additive(bits: int):
    quantize = fixed_point(bits)

    def combine(a, h):
        return additive_combine(a, quantize(h))

    def uncombine(b, h):
        return additive_uncombine(b, quantize(h))

    return combine, uncombine, quantize


def affine_combine(a, h):
    log_s, t = jnp.split(h, 2, axis=-1)
    return a * jnp.exp(log_s) + t, jnp.sum(log_s, axis=-1)


def affine_uncombine(b, h):
    log_s, t = jnp.split(h, 2, axis=-1)
    return (b - t) * jnp.exp(-log_s)


def affine_logdet(h):
    return jnp.sum(jnp.split(h, 2, axis=-1)[0], axis=-1)


def _split_key(key):
    if key is None:
        return None, None
    kf, kg = jax.random.split(key)
    return kf, kg


def block_forward(coupling: Coupling, params: CouplingParams, x, key):
    """One coupling block: ``x -> (y, logdet)``."""
    kf, kg = _split_key(key)
    x1, x2 = jnp.split(x, 2, axis=-1)
    y1, ld1 = coupling.combine(x1, coupling.f(params.f, x2, kf))
    y2, ld2 = coupling.combine(x2, coupling.g(params.g, y1, kg))
    return jnp.concatenate([y1, y2], axis=-1), ld1 + ld2


def block_inverse(coupling: Coupling, params: CouplingParams, y, key):
    """Inverse of one block: ``y -> (x, logdet of the forward map at x)``."""
    kf, kg = _split_key(key)
    y1, y2 = jnp.split(y, 2, axis=-1)
    hg = coupling.g(params.g, y1, kg)
    x2 = coupling.uncombine(y2, hg)
    hf = coupling.f(params.f, x2, kf)
    x1 = coupling.uncombine(y1, hf)
    ld = _logdet(coupling, hf) + _logdet(coupling, hg)
    return jnp.concatenate([x1, x2], axis=-1), ld


def _logdet(coupling, h):
    if coupling.kind == "affine":
        return affine_logdet(h)
    return jnp.zeros(h.shape[:-1], h.dtype)


def block_backward(coupling: Coupling, params: CouplingParams, y, key, y_bar, ld_bar):
    """Reconstruct a block's input from its output and pull back cotangents.

    ``F`` and ``G`` are evaluated once each (with their VJPs) at the reconstructed
    inputs, with the same keys as the forward pass (random-key replay).
    """
    kf, kg = _split_key(key)
    y1, y2 = jnp.split(y, 2, axis=-1)
    y1_bar, y2_bar = jnp.split(y_bar, 2, axis=-1)
    hg, g_vjp = jax.vjp(lambda p, z: coupling.g(p, z, kg), params.g, y1)
    x2 = coupling.uncombine(y2, hg)
    hf, f_vjp = jax.vjp(lambda p, z: coupling.f(p, z, kf), params.f, x2)
    x1 = coupling.uncombine(y1, hf)
    _, c2_vjp = jax.vjp(coupling.combine, x2, hg)
    x2_bar, hg_bar = c2_vjp((y2_bar, ld_bar))
    g_bar, y1_extra = g_vjp(hg_bar)
    y1_total = y1_bar + y1_extra
    _, c1_vjp = jax.vjp(coupling.combine, x1, hf)
    x1_bar, hf_bar = c1_vjp((y1_total, ld_bar))
    f_bar, x2_extra = f_vjp(hf_bar)
    x_bar = jnp.concatenate([x1_bar, x2_bar + x2_extra], axis=-1)
    return jnp.concatenate([x1, x2], axis=-1), x_bar, CouplingParams(f_bar, g_bar)


def scan_forward(coupling: Coupling, params, x, keys, *, remat: bool = False):
    """Stack forward by ``lax.scan`` over stacked parameters (plain autodiff)."""

    def body(carry, xs):
        h, ld = carry
        p, k = xs
        h, block_ld = block_forward(coupling, p, h, k)
        return (h, ld + block_ld), None

    if remat:
        body = jax.checkpoint(body)
    ld0 = jnp.zeros(x.shape[:-1], x.dtype)
    (y, ld), _ = lax.scan(body, (x, ld0), (params, keys))
    return y, ld


def scan_inverse(coupling: Coupling, params, y, keys):
    """Stack inverse: blocks in reverse order; returns ``(x, forward logdet)``."""

    def body(carry, xs):
        h, ld = carry
        p, k = xs
        h, block_ld = block_inverse(coupling, p, h, k)
        return (h, ld + block_ld), None

    ld0 = jnp.zeros(y.shape[:-1], y.dtype)
    (x, ld), _ = lax.scan(body, (y, ld0), (params, keys), reverse=True)
    return x, ld


def make_reversible(coupling: Coupling, every: int) -> Callable:
    """Build ``run(params, x, keys) -> (y, logdet)`` with a reconstructing backward.

    The forward stores only the output of every ``every``-th block (``depth/every``
    activations; ``every = depth`` keeps just the stack output). The backward walks
    the blocks in reverse, restarting the reconstruction from the exact stored
    activation at the end of each segment. Both passes are single scans over the
    depth, so gradients are written per block with no segment-sized buffers.
    """

    @jax.custom_vjp
    def run(params, x, keys):
        return scan_forward(coupling, params, x, keys)

    def run_fwd(params, x, keys):
        depth = jax.tree.leaves(params)[0].shape[0]

        def body(carry, xs):
            h, ld, buf = carry
            p, k, i = xs
            h, block_ld = block_forward(coupling, p, h, k)
            buf = lax.dynamic_update_index_in_dim(buf, h, i // every, axis=0)
            return (h, ld + block_ld, buf), None

        ld0 = jnp.zeros(x.shape[:-1], x.dtype)
        buf0 = jnp.zeros((depth // every,) + x.shape, x.dtype)
        (y, ld, buf), _ = lax.scan(
            body, (x, ld0, buf0), (params, keys, jnp.arange(depth))
        )
        return (y, ld), (params, keys, buf)

    def run_bwd(res, cotangents):
        params, keys, buf = res
        y_bar, ld_bar = cotangents
        depth = jax.tree.leaves(params)[0].shape[0]

        def body(carry, xs):
            h, h_bar = carry
            p, k, i = xs
            stored = lax.dynamic_index_in_dim(buf, i // every, axis=0, keepdims=False)
            h = jnp.where((i + 1) % every == 0, stored, h)
            h, h_bar, p_bar = block_backward(coupling, p, h, k, h_bar, ld_bar)
            return (h, h_bar), p_bar

        carry0 = (jnp.zeros_like(y_bar), y_bar)
        xs = (params, keys, jnp.arange(depth))
        (_, x_bar), p_bar = lax.scan(body, carry0, xs, reverse=True)
        return p_bar, x_bar, None

    run.defvjp(run_fwd, run_bwd)
    return run


def reconstruction_trace(coupling: Coupling, params, x, keys, every: int):
    """Per-block relative error of inputs reconstructed from the stack output.

    The reconstruction restarts from the exact activation every ``every`` blocks, as
    the reversible backward does with ``checkpoint_every``.
    """

    def fwd(h, xs):
        p, k = xs
        h_next, _ = block_forward(coupling, p, h, k)
        return h_next, h

    y, inputs = lax.scan(fwd, x, (params, keys))
    outputs = jnp.concatenate([inputs[1:], y[None]], axis=0)
    depth = inputs.shape[0]

    def bwd(h, xs):
        p, k, exact_out, exact_in, i = xs
        h = jnp.where((i + 1) % every == 0, exact_out, h)
        h, _ = block_inverse(coupling, p, h, k)
        err = jnp.linalg.norm(h - exact_in) / jnp.linalg.norm(exact_in)
        return h, (err, jnp.max(jnp.abs(h - exact_in)))

    xs = (params, keys, outputs, inputs, jnp.arange(depth))
    _, (rel, max_abs) = lax.scan(bwd, y, xs, reverse=True)
    return rel, max_abs
