"""Reversible networks with constant-memory backprop.

A stack of coupling blocks (RevNet :cite:`gomez2017revnet`, NICE/RealNVP couplings
:cite:`dinh2014nice,dinh2016realnvp`) applied by ``lax.scan`` over stacked parameters.
Each block splits its input ``x = (x1, x2)`` along the last axis and computes

.. math::

    y_1 = x_1 \\oplus F(x_2), \\qquad y_2 = x_2 \\oplus G(y_1),
    \\qquad a \\oplus h =
    \\begin{cases} a + h & \\text{additive}\\\\ a\\,e^{s} + t,\\ h = (s, t)
    & \\text{affine}\\end{cases}

with inverse :math:`x_2 = y_2 \\ominus G(y_1)`, :math:`x_1 = y_1 \\ominus F(x_2)` and
:math:`\\log|\\det \\partial y/\\partial x| = \\sum s_F + \\sum s_G` (0 if additive).

With ``backprop="reversible"`` the backward pass is a ``jax.custom_vjp`` that
reconstructs each block's input from its output, so no activations are stored and
training memory is flat in depth. ``"checkpoint"`` (per-block ``jax.checkpoint``)
and ``"plain"`` (ordinary autodiff) run the same computation for comparison.

Random keys are replayed: block ``i`` uses ``jax.random.split(rng_key, depth)[i]``
(split again into an ``F`` and a ``G`` key) in the forward pass *and* in the
reconstruction, so dropout inside ``F``/``G`` matches plain autodiff. Without a
key the residual functions receive ``None`` (evaluation mode). The module is
stateless: there are no running statistics to update twice.

Float drift grows with depth times the inverse's Lipschitz constant. The default
initialiser (:func:`init_coupling_mlp`) scales each residual branch by
``1/sqrt(depth)``, which keeps it at about 1e-6 or less up to depth 1024 in
float32; for other parameters mitigate with small residual scales,
``checkpoint_every=k`` (restart the reconstruction from a stored activation every
``k`` blocks) or ``dtype=jnp.float64`` (compute the stack in float64 inside a
``jax.enable_x64(True)`` context).

Examples
--------
>>> import jax, jax.numpy as jnp
>>> from slt_sampler.thermo import reversible as rev
>>> stack = rev.reversible_stack(rev.additive_coupling(rev.mlp_residual()))
>>> params = rev.init_coupling_mlp(jax.random.key(0), depth=8, dim=4, hidden=16)
>>> x = jnp.ones((2, 4))
>>> y, logdet = rev.forward(stack, params, x)
>>> x_rec, _ = rev.inverse(stack, params, y)
>>> bool(jnp.allclose(x, x_rec, atol=1e-5)), logdet.shape
(True, (2,))
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ._checks import check_real
from ._reversible_core import (
    Coupling,
    CouplingParams,
    additive_combine,
    additive_uncombine,
    affine_combine,
    affine_uncombine,
    fixed_point_additive,
    identity,
    make_reversible,
    reconstruction_trace,
    scan_forward,
    scan_inverse,
)
from ._reversible_utils import (
    CompiledCost,
    compiled_cost,
    default_residual_scale,
    init_coupling_mlp,
    mlp_residual,
)
from ._reversible_validate import (
    _MSG_X64,
    BACKPROP_MODES,
    check_bits,
    check_block_fits,
    check_call,
    check_residuals,
    check_stack_options,
)

__all__ = [
    "BACKPROP_MODES",
    "CompiledCost",
    "Coupling",
    "CouplingParams",
    "ReconstructionInfo",
    "ReconstructionWarning",
    "ReversibleStack",
    "additive_coupling",
    "affine_coupling",
    "compiled_cost",
    "default_residual_scale",
    "forward",
    "init_coupling_mlp",
    "inverse",
    "mlp_residual",
    "reconstruction_error",
    "reversible_stack",
]

Array = jax.Array
PyTree = Any

_MSG_WARN = (
    "reversible reconstruction relative error {error:.3g} exceeds threshold "
    "{threshold:.3g}: gradients may be inaccurate. Use a smaller residual scale, "
    "checkpoint_every, or dtype=jnp.float64."
)


class ReconstructionWarning(UserWarning):
    """Raised by :func:`reconstruction_error` when the drift exceeds its threshold."""


class ReversibleStack(NamedTuple):
    """Structure of a stack of coupling blocks (no numbers; see :func:`reversible_stack`).

    Attributes
    ----------
    coupling : Coupling
        The block rule (from :func:`additive_coupling` or :func:`affine_coupling`).
    backprop : str
        ``"reversible"``, ``"checkpoint"`` or ``"plain"``.
    checkpoint_every : int or None
        Reversible mode only: store the activation every this many blocks.
    dtype : dtype or None
        Compute dtype of the stack; ``None`` keeps the input's dtype.
    """

    coupling: Coupling
    backprop: str
    checkpoint_every: int | None
    dtype: Any


class ReconstructionInfo(NamedTuple):
    """Drift of the inverse pass, as seen by the reversible backward.

    Attributes
    ----------
    relative_error : Array
        Scalar :math:`\\|x - \\hat x\\| / \\|x\\|` for the stack input.
    per_block : Array
        ``(depth,)`` relative error of each block's reconstructed input.
    max_abs_error : Array
        ``(depth,)`` max absolute error of each block's reconstructed input.
    """

    relative_error: Array
    per_block: Array
    max_abs_error: Array


def additive_coupling(
    f: Callable, g: Callable | None = None, *, fixed_point_bits: int | None = None
) -> Coupling:
    """Additive (NICE/RevNet) coupling, :math:`y_1 = x_1 + F(x_2)`, :math:`y_2 = x_2 + G(y_1)`.

    Parameters
    ----------
    f, g : callable
        Residual functions ``f(params, x_half, rng_key) -> array`` with the shape of
        ``x_half``; ``g`` defaults to ``f`` (same function, separate parameters).
    fixed_point_bits : int, optional
        Exact reversibility (cf. MacKay et al. 2018): round the stack input and the
        outputs of ``F`` and ``G`` to the grid ``2**-bits`` (straight-through
        gradient). Additions are then exact and the reconstruction is bit-exact,
        provided activations stay below ``2**(24 - bits)`` in magnitude in float32
        (``2**(53 - bits)`` in float64). ``None`` (default): ordinary floats.

    Returns
    -------
    Coupling

    Raises
    ------
    TypeError
        If ``f`` or ``g`` is not callable or ``fixed_point_bits`` is not an int.
    ValueError
        If ``fixed_point_bits`` is outside 1..52.
    """
    check_residuals("additive_coupling", f, g)
    g = f if g is None else g
    if fixed_point_bits is None:
        return Coupling(
            f, g, additive_combine, additive_uncombine, "additive", identity
        )
    combine, uncombine, quantize = fixed_point_additive(check_bits(fixed_point_bits))
    return Coupling(f, g, combine, uncombine, "additive", quantize)


def affine_coupling(f: Callable, g: Callable | None = None) -> Coupling:
    """Affine (RealNVP) coupling, :math:`y_1 = x_1 e^{s_F(x_2)} + t_F(x_2)`, likewise for G.

    Parameters
    ----------
    f, g : callable
        ``f(params, x_half, rng_key)`` returning ``concatenate([s, t], -1)`` of twice
        the half width. Bound ``s`` inside ``f`` (e.g. ``tanh``) for stability.

    Returns
    -------
    Coupling

    Raises
    ------
    TypeError
        If ``f`` or ``g`` is not callable.
    """
    check_residuals("affine_coupling", f, g)
    g = f if g is None else g
    return Coupling(f, g, affine_combine, affine_uncombine, "affine", identity)


def reversible_stack(
    coupling: Coupling,
    *,
    backprop: str = "reversible",
    checkpoint_every: int | None = None,
    dtype: Any = None,
) -> ReversibleStack:
    """Validate and bundle the structure of a stack.

    Parameters
    ----------
    coupling : Coupling
        Block rule.
    backprop : {"reversible", "checkpoint", "plain"}
        How gradients are computed: reconstruction (flat memory), per-block
        ``jax.checkpoint``, or ordinary autodiff (stores every activation).
    checkpoint_every : int, optional
        Reversible only: also store every ``k``-th activation to bound float drift
        (memory grows as ``depth / k``). Must divide the depth.
    dtype : dtype, optional
        E.g. ``jnp.float64``: cast inputs and parameters to it inside the stack and
        the outputs back to the input dtype (needs ``jax.enable_x64(True)``).

    Returns
    -------
    ReversibleStack

    Raises
    ------
    TypeError
        If ``coupling`` is not a :class:`Coupling` (e.g. a bare residual function),
        ``checkpoint_every`` is not an int or ``dtype`` is not a dtype.
    ValueError
        For an unknown ``backprop``, ``checkpoint_every < 1`` or with a mode other
        than ``"reversible"``, or a non-floating ``dtype``.
    """
    every, dtype = check_stack_options(coupling, backprop, checkpoint_every, dtype)
    return ReversibleStack(coupling, backprop, every, dtype)


def _prepare(fn: str, stack: ReversibleStack, params, x, rng_key, name="x"):
    """Validate, cast to the compute dtype and derive the per-block keys."""
    depth = check_call(fn, stack, params, x, rng_key, name)
    if stack.dtype is not None:
        dtype = jnp.dtype(stack.dtype)
        if dtype.itemsize == 8 and not jax.config.jax_enable_x64:
            raise ValueError(_MSG_X64.format(dtype=dtype.name))
        cast = lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a
        params, x = jax.tree.map(cast, params), cast(jnp.asarray(x))
    x = stack.coupling.quantize(jnp.asarray(x))
    keys = None if rng_key is None else jax.random.split(rng_key, depth)
    check_block_fits(fn, stack.coupling, params, x, keys, name)
    return params, x, keys, depth


def forward(
    stack: ReversibleStack,
    params: CouplingParams,
    x: Array,
    *,
    rng_key: Array | None = None,
) -> tuple[Array, Array]:
    """Apply the stack: ``x -> (y, logdet)``, differentiable per ``stack.backprop``.

    Parameters
    ----------
    stack : ReversibleStack
    params : CouplingParams
        Pytree with a leading depth axis on every leaf.
    x : Array
        ``(..., dim)`` with even ``dim``.
    rng_key : PRNGKey, optional
        Replayed in the backward reconstruction; ``None`` runs ``F``/``G`` without keys.

    Returns
    -------
    y : Array
        ``(..., dim)`` in ``x``'s dtype.
    logdet : Array
        ``(...)`` log-determinant of the Jacobian (zeros for additive coupling).

    Raises
    ------
    TypeError
        If ``stack``/``params`` are not a :class:`ReversibleStack` /
        :class:`CouplingParams`, ``x`` is not a float array or ``rng_key`` not a key.
    ValueError
        If ``x`` has an odd last axis or NaN/inf entries, the params leaves do not
        share a depth >= 1 (or it is not a multiple of ``checkpoint_every``), the
        params have NaN/inf or do not fit ``x``'s width.

    Notes
    -----
    ``backprop="reversible"`` is a ``jax.custom_vjp``: reverse mode (``grad``,
    ``vjp``, ``jacrev``) works, forward mode (``jvp``, ``jacfwd``) does not; use
    ``backprop="plain"`` for forward mode.
    """
    out_dtype = jnp.result_type(x)
    params, x, keys, depth = _prepare("forward", stack, params, x, rng_key)
    if stack.backprop == "reversible":
        every = stack.checkpoint_every or depth
        y, logdet = make_reversible(stack.coupling, every)(params, x, keys)
    else:
        remat = stack.backprop == "checkpoint"
        y, logdet = scan_forward(stack.coupling, params, x, keys, remat=remat)
    return y.astype(out_dtype), logdet.astype(out_dtype)


def inverse(
    stack: ReversibleStack,
    params: CouplingParams,
    y: Array,
    *,
    rng_key: Array | None = None,
) -> tuple[Array, Array]:
    """Invert the stack: ``y -> (x, logdet)``, ``logdet = log|det dx/dy|``.

    Use the same ``rng_key`` as the forward call. ``logdet`` is minus the forward
    log-determinant, so ``log p(y) = log p_base(x) + logdet`` for a flow.
    Raises like :func:`forward` (naming ``y``).
    """
    out_dtype = jnp.result_type(y)
    params, y, keys, _ = _prepare("inverse", stack, params, y, rng_key, "y")
    x, fwd_logdet = scan_inverse(stack.coupling, params, y, keys)
    return x.astype(out_dtype), (-fwd_logdet).astype(out_dtype)


def reconstruction_error(
    stack: ReversibleStack,
    params: CouplingParams,
    x: Array,
    *,
    rng_key: Array | None = None,
    threshold: float = 1e-4,
) -> ReconstructionInfo:
    """Measure how well the inputs are recovered from the output; warn on drift.

    Runs the forward pass storing every block input (a diagnostic: memory grows with
    depth), then reconstructs backwards from the output exactly as the reversible
    backward does (restarting at stored checkpoints when ``checkpoint_every`` is set).

    .. math::

        e_i = \\frac{\\|x_i - \\hat x_i\\|_2}{\\|x_i\\|_2}, \\qquad
        \\text{relative\\_error} = e_0.

    A :class:`ReconstructionWarning` is issued when ``relative_error > threshold``
    (via ``jax.debug.callback`` under ``jit``). Raises like :func:`forward`, and
    ``ValueError`` for a NaN or negative ``threshold``.
    """
    check_real(
        "reconstruction_error",
        "threshold",
        threshold,
        low=0.0,
        allow_inf=True,
        fix="Use e.g. 1e-4 (np.inf never warns).",
    )
    params, xc, keys, depth = _prepare(
        "reconstruction_error", stack, params, x, rng_key
    )
    every = stack.checkpoint_every or depth
    per_block, max_abs = reconstruction_trace(stack.coupling, params, xc, keys, every)
    info = ReconstructionInfo(per_block[0], per_block, max_abs)
    if isinstance(info.relative_error, jax.core.Tracer):
        jax.debug.callback(_warn_if_large, info.relative_error, threshold)
    else:
        _warn_if_large(info.relative_error, threshold)
    return info


def _warn_if_large(error, threshold) -> None:
    error = float(error)
    if not error <= float(threshold):  # also warns on NaN
        warnings.warn(
            _MSG_WARN.format(error=error, threshold=float(threshold)),
            ReconstructionWarning,
            stacklevel=3,
        )
