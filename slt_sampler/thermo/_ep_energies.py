"""Energies, costs and the hard-sigmoid activation for equilibrium propagation.

Private module: the public names are re-exported by :mod:`slt_sampler.thermo.ep`.

Conventions
-----------
* A network has layer sizes ``(n_0, n_1, ..., n_L)``: ``n_0`` is the clamped input,
  ``n_1 .. n_{L-1}`` are hidden layers and ``n_L`` is the output layer.
* ``layers`` is a tuple ``(s_1, ..., s_L)`` of free states, each of shape
  ``(batch, n_i)``; the input ``x`` has shape ``(batch, n_0)``.
* ``params`` is a tuple of ``{"w": (n_{i-1}, n_i), "b": (n_i,)}`` dicts, one per layer.
* ``energy_fn(params, layers, x)`` returns one energy per example, shape ``(batch,)``.
* ``cost_fn(output, target)`` returns one cost per example, shape ``(batch,)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import check_array, check_callable, check_key, check_real

Array = jax.Array
Params = Any
Layers = tuple[Array, ...]

_LAYER_SIZES_MSG = (
    "layer_sizes must be a sequence of at least two positive ints "
    "(input, hidden..., output), got {!r}; e.g. layer_sizes=(64, 64, 10)."
)
_MSG_COST = (
    "{fn}: output and target must have the same shape (batch, n_L), got {a} and "
    "{b}; one-hot encode integer labels with jax.nn.one_hot(labels, n_L)."
)
_MSG_ACTIVATION = (
    "hard_sigmoid: x must be a real (int or float) array, got dtype {dtype}; "
    "convert it with jnp.asarray(x, jnp.float32)."
)


# ----------------------------------------------------------------------------------
# Activation with a documented derivative at its clip bounds
# ----------------------------------------------------------------------------------
def hard_sigmoid(x: Array) -> Array:
    r"""Hard sigmoid :math:`\rho(x) = \min(\max(x, 0), 1)`.

    Derivative convention: :math:`\rho'(x) = 1` on the *closed* interval
    :math:`[0, 1]` and :math:`0` outside it. ``jnp.clip`` instead returns 0.5 exactly
    at a bound (JAX splits ties of ``min``/``max``), which halves the drive on every
    unit sitting at a bound; relaxations that start at the zero state then crawl or
    stall. The closed-interval convention makes :math:`\rho(s) = s` with
    :math:`\rho' = 1` on the whole state box, so the Hopfield energy is a polynomial
    there.

    Raises ``TypeError`` for a non-numeric ``x`` (e.g. a string array).

    Examples
    --------
    >>> import jax
    >>> float(jax.grad(hard_sigmoid)(0.0)), float(jax.grad(hard_sigmoid)(1.0))
    (1.0, 1.0)
    """
    dtype = x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype
    if np.dtype(dtype).kind not in "biuf":
        raise TypeError(_MSG_ACTIVATION.format(dtype=dtype))
    return _hard_sigmoid(x)


@jax.custom_jvp
def _hard_sigmoid(x: Array) -> Array:
    return jnp.clip(x, 0.0, 1.0)


@_hard_sigmoid.defjvp
def _hard_sigmoid_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    inside = (x >= 0.0) & (x <= 1.0)
    return _hard_sigmoid(x), jnp.where(inside, dx, jnp.zeros_like(dx))


@jax.custom_jvp
def _box_project(z: Array, lower: float, upper: float) -> Array:
    """Clip to ``[lower, upper]``; derivative 1 strictly inside, 0 on or outside."""
    return jnp.clip(z, lower, upper)


@_box_project.defjvp
def _box_project_jvp(primals, tangents):
    z, lower, upper = primals
    dz = tangents[0]
    inside = (z > lower) & (z < upper)
    return _box_project(z, lower, upper), jnp.where(inside, dz, jnp.zeros_like(dz))


# ----------------------------------------------------------------------------------
# Energy container
# ----------------------------------------------------------------------------------
class Energy(NamedTuple):
    """An energy-based network, built-in or user-supplied.

    Attributes
    ----------
    energy_fn : callable
        ``energy_fn(params, layers, x) -> (batch,)`` energies. Must be
        differentiable in ``params`` and ``layers``; examples must not interact.
    init_params_fn : callable
        ``init_params_fn(rng_key) -> params``.
    layer_sizes : tuple of int
        ``(n_0, n_1, ..., n_L)``; ``layers[i]`` has shape ``(batch, n_{i+1})``.
    bounds : tuple of float or None
        Box ``(lower, upper)`` the states are projected onto after every relaxation
        step, or ``None`` for unbounded states.
    feedforward_fn : callable or None
        ``feedforward_fn(params, x) -> layers``, the bottom-up pass used as the
        ``"fast"`` initial state. ``None`` if the energy has none.
    """

    energy_fn: Callable[[Params, Layers, Array], Array]
    init_params_fn: Callable[[Array], Params]
    layer_sizes: tuple[int, ...]
    bounds: tuple[float, float] | None = None
    feedforward_fn: Callable[[Params, Array], Layers] | None = None


def _check_layer_sizes(layer_sizes) -> tuple[int, ...]:
    """Exact positive ints (``64.5`` or ``"64"`` are not silently truncated)."""
    if not isinstance(layer_sizes, tuple | list) or not all(
        isinstance(n, int | np.integer) and not isinstance(n, bool) for n in layer_sizes
    ):
        raise TypeError(_LAYER_SIZES_MSG.format(layer_sizes))
    sizes = tuple(int(n) for n in layer_sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(_LAYER_SIZES_MSG.format(layer_sizes))
    return sizes


def check_cost_inputs(fn: str, output, target) -> None:
    """Cost functions: equal shapes with a trailing class axis (no broadcasting)."""
    output = check_array(fn, "output", output, nonempty=False)
    target = check_array(fn, "target", target, kind="real", nonempty=False)
    if output.ndim < 1 or tuple(output.shape) != tuple(target.shape):
        raise ValueError(
            _MSG_COST.format(fn=fn, a=tuple(output.shape), b=tuple(target.shape))
        )


def glorot_params(
    rng_key: Array, layer_sizes: tuple[int, ...], scale: float = 1.0
) -> Params:
    r"""Weights :math:`U(\pm\,\mathrm{scale}\sqrt{6/(n_{in}+n_{out})})`, zero biases.

    Raises ``TypeError``/``ValueError`` for a bad key, ``layer_sizes`` that are not
    at least two positive ints, or a negative / non-finite ``scale``.
    """
    check_key("glorot_params", "rng_key", rng_key)
    layer_sizes = _check_layer_sizes(layer_sizes)
    check_real("glorot_params", "scale", scale, low=0.0, fix="Use e.g. 1.0.")
    keys = jax.random.split(rng_key, len(layer_sizes) - 1)
    params = []
    for key, n_in, n_out in zip(keys, layer_sizes[:-1], layer_sizes[1:]):
        limit = scale * jnp.sqrt(6.0 / (n_in + n_out))
        w = jax.random.uniform(key, (n_in, n_out), minval=-limit, maxval=limit)
        params.append({"w": w, "b": jnp.zeros((n_out,))})
    return tuple(params)


def _row(b: Array) -> Array:
    return b[None, :]


def RestrictedHopfield(
    layer_sizes,
    *,
    activation: Callable[[Array], Array] = hard_sigmoid,
    init_scale: float = 0.5,
) -> Energy:
    r"""Scellier & Bengio's layered Hopfield energy, states in the box ``[0, 1]``.

    .. math::

        E(s) = \tfrac12 \sum_{i=1}^{L} \lVert s_i \rVert^2
               - \sum_{i=1}^{L} b_i^\top \rho(s_i)
               - \sum_{i=1}^{L} \rho(s_{i-1})^\top W_i \rho(s_i),
        \qquad s_0 = x \text{ (clamped, enters linearly)}.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``(n_input, n_hidden..., n_output)``.
    activation : callable
        :math:`\rho`; default :func:`hard_sigmoid` (derivative 1 on ``[0, 1]``).
    init_scale : float
        Multiplies the Glorot-uniform limit of ``init_params_fn``. The default 0.5
        keeps the free-to-free couplings' largest singular value below 1 at init
        (about 0.9 for 64-10), so the energy starts convex in the states; full
        Glorot (1.0, about 1.8) saturates the outputs at init, relaxations settle
        slowly and output units can die (a class never predicted).

    Returns
    -------
    Energy
        With ``bounds=(0, 1)`` and a clipped bottom-up ``feedforward_fn``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> net = RestrictedHopfield((4, 3, 2))
    >>> params = net.init_params_fn(jax.random.key(0))
    >>> layers = (jnp.zeros((5, 3)), jnp.zeros((5, 2)))
    >>> net.energy_fn(params, layers, jnp.ones((5, 4))).shape
    (5,)
    """
    sizes = _check_layer_sizes(layer_sizes)
    check_callable("RestrictedHopfield", "activation", activation, "E.g. hard_sigmoid.")
    check_real(
        "RestrictedHopfield", "init_scale", init_scale, low=0.0, fix="Use e.g. 0.5."
    )
    rho = activation

    def energy_fn(params, layers, x):
        energy = sum(0.5 * jnp.sum(s**2, axis=-1) for s in layers)
        below = x
        for p, s in zip(params, layers):
            r = rho(s)
            energy = energy - r @ p["b"] - jnp.sum((below @ p["w"]) * r, axis=-1)
            below = r
        return energy

    def feedforward_fn(params, x):
        layers, below = [], x
        for p in params:
            s = jnp.clip(below @ p["w"] + _row(p["b"]), 0.0, 1.0)
            layers.append(s)
            below = rho(s)
        return tuple(layers)

    return Energy(
        energy_fn=energy_fn,
        init_params_fn=lambda key: glorot_params(key, sizes, init_scale),
        layer_sizes=sizes,
        bounds=(0.0, 1.0),
        feedforward_fn=feedforward_fn,
    )


def ConditionalGaussian(
    layer_sizes, *, activation: Callable[[Array], Array] = jax.nn.sigmoid
) -> Energy:
    r"""Predictive-coding energy: a chain of unit-variance conditional Gaussians.

    .. math::

        E(s) = \tfrac12 \sum_{i=1}^{L}
               \lVert s_i - W_i^\top \phi(s_{i-1}) - b_i \rVert^2,
        \qquad \phi(s_0) := x .

    The free-phase minimum (:math:`E = 0`) is the feedforward pass of an MLP with
    activation :math:`\phi` and a linear output layer, which is also the ``"fast"``
    initial state; states are unbounded. The default :math:`\phi` is the logistic
    sigmoid: :math:`\phi' \le 1/4` keeps the curvature of :math:`E` in the hidden
    states (about :math:`1 + \lVert \phi' W \rVert^2`) small, so relaxation stays
    stable and fast as the weights grow (with ``tanh`` it needs a smaller step).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> net = ConditionalGaussian((4, 3, 2))
    >>> params = net.init_params_fn(jax.random.key(0))
    >>> x = jnp.ones((5, 4))
    >>> float(jnp.max(net.energy_fn(params, net.feedforward_fn(params, x), x)))
    0.0
    """
    sizes = _check_layer_sizes(layer_sizes)
    check_callable(
        "ConditionalGaussian", "activation", activation, "E.g. jax.nn.sigmoid."
    )
    phi = activation

    def energy_fn(params, layers, x):
        energy, below = 0.0, x
        for p, s in zip(params, layers):
            mean = below @ p["w"] + _row(p["b"])
            energy = energy + 0.5 * jnp.sum((s - mean) ** 2, axis=-1)
            below = phi(s)
        return energy

    def feedforward_fn(params, x):
        layers, below = [], x
        for p in params:
            s = below @ p["w"] + _row(p["b"])
            layers.append(s)
            below = phi(s)
        return tuple(layers)

    return Energy(
        energy_fn=energy_fn,
        init_params_fn=lambda key: glorot_params(key, sizes),
        layer_sizes=sizes,
        bounds=None,
        feedforward_fn=feedforward_fn,
    )


# ----------------------------------------------------------------------------------
# Costs
# ----------------------------------------------------------------------------------
def squared_error(output: Array, target: Array) -> Array:
    r"""Per-example cost :math:`C = \tfrac12 \lVert y - t \rVert^2`, shape ``(batch,)``.

    Raises ``ValueError`` unless ``output`` and ``target`` have the same shape."""
    check_cost_inputs("squared_error", output, target)
    return 0.5 * jnp.sum((output - target) ** 2, axis=-1)


def cross_entropy(output: Array, target: Array) -> Array:
    r"""Per-example :math:`C = -\sum_k t_k \log \mathrm{softmax}(y)_k`, ``(batch,)``.

    Raises ``ValueError`` unless ``output`` and ``target`` have the same shape."""
    check_cost_inputs("cross_entropy", output, target)
    return -jnp.sum(target * jax.nn.log_softmax(output, axis=-1), axis=-1)


def zero_layers(energy: Energy, batch_size: int, dtype=jnp.float32) -> Layers:
    """All-zero initial states ``(batch_size, n_i)`` for ``i = 1..L``."""
    return tuple(jnp.zeros((batch_size, n), dtype) for n in energy.layer_sizes[1:])


def project(energy: Energy, layers: Layers) -> Layers:
    """Project states onto ``energy.bounds`` (identity when unbounded)."""
    if energy.bounds is None:
        return layers
    lower, upper = energy.bounds
    return tuple(_box_project(s, lower, upper) for s in layers)
