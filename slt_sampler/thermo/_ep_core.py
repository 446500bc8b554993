"""EP gradient estimate, kernel and prediction (re-exported by :mod:`.ep`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._checks import (
    check_array,
    check_callable,
    check_key,
    check_type,
    is_concrete,
)
from ._ep_energies import Energy, squared_error, zero_layers
from ._ep_relax import RelaxInfo, _relax, check_schedule
from ._ep_validate import (
    check_batch,
    check_energy,
    check_nudge,
    check_numbers,
    check_optimizer,
    check_options,
    check_params,
)

_UNCONVERGED_MSG = (
    "{} of {} EP relaxation phases hit the step cap before max|ds| < tol; the "
    "gradient estimate is unreliable. Raise max_steps / max_nudged_steps, or lower "
    "step_size if the energy trace oscillates."
)


class EPState(NamedTuple):
    """Training state: ``params``, optax ``opt_state`` and the step counter."""

    params: Any
    opt_state: Any
    step: jax.Array


class EPInfo(NamedTuple):
    """Diagnostics of one EP update.

    Attributes
    ----------
    free, nudged : RelaxInfo
        Free phase and the (first) nudged phase.
    nudged_minus : RelaxInfo or None
        The :math:`-\\nu` phase of ``variant="symmetric"``; ``None`` otherwise.
    nudge : Array
        Signed nudge of the ``nudged`` phase.
    loss : Array
        Batch-mean cost at the free fixed point.
    output : Array, shape ``(batch, n_L)``
        Free-phase output layer (the prediction).
    max_abs_state : Array
        Largest :math:`|s|` over all phases (boundedness diagnostic).
    converged : Array (bool)
        Every phase reached ``tol`` within its cap.
    """

    free: RelaxInfo
    nudged: RelaxInfo
    nudged_minus: RelaxInfo | None
    nudge: jax.Array
    loss: jax.Array
    output: jax.Array
    max_abs_state: jax.Array
    converged: jax.Array


class EPAlgorithm(NamedTuple):
    """``init(params) -> EPState`` and ``step(rng_key, state, x, target)``."""

    init: Callable
    step: Callable


def initial_layers(energy: Energy, params, x, init_mode: str = "zero"):
    """Initial states for the free phase: zeros or the ``"fast"`` bottom-up pass.

    Raises ``TypeError``/``ValueError`` for a bad energy, params that do not fit it,
    an ``x`` that is not a finite ``(batch, n_0)`` array or an unknown
    ``init_mode``.
    """
    fn = "initial_layers"
    check_energy(fn, energy)
    check_options(energy, "one_sided", init_mode, 1, 1)
    check_batch(fn, energy, x)
    check_params(fn, energy, params)
    return _initial_layers(energy, params, x, init_mode)


def _initial_layers(energy: Energy, params, x, init_mode: str):
    if init_mode == "fast":
        return tuple(lax.stop_gradient(s) for s in energy.feedforward_fn(params, x))
    return zero_layers(energy, jnp.shape(x)[0], jnp.result_type(x))


# ----------------------------------------------------------------------------------
# EP gradient
# ----------------------------------------------------------------------------------
def _energy_grad_difference(energy, params, layers_a, layers_b, x, scale):
    """:math:`(\\partial_\\theta \\bar E(a) - \\partial_\\theta \\bar E(b)) / scale`."""
    layers_a = lax.stop_gradient(layers_a)
    layers_b = lax.stop_gradient(layers_b)

    def diff(p):
        ea = energy.energy_fn(p, layers_a, x)
        eb = energy.energy_fn(p, layers_b, x)
        return jnp.mean(ea - eb)

    return jax.tree.map(lambda g: g / scale, jax.grad(diff)(params))


def build_gradient_fn(
    energy: Energy,
    *,
    cost_fn: Callable = squared_error,
    variant: str = "one_sided",
    init_mode: str = "zero",
    max_steps: int = 100,
    max_nudged_steps: int | None = None,
    schedule: str = "synchronous",
) -> Callable:
    """Build ``grad_fn(rng_key, params, x, target, nudge, step_size, tol)``.

    ``grad_fn`` returns ``(grads, EPInfo)`` where ``grads`` has the structure of
    ``params`` and approximates :math:`\\nabla_\\theta L`, ready for
    ``optimizer.update``. Structural options (energy, cost, variant, initial state,
    step caps) are fixed here; ``nudge``, ``step_size`` and ``tol`` are traceable.
    A traced non-positive ``nudge`` yields NaN gradients (a concrete one raises).

    Raises
    ------
    TypeError, ValueError
        Here for a bad energy, cost or structural option; from ``grad_fn`` (before
        any relaxation) for a bad key, params that do not fit the energy, an ``x`` /
        ``target`` that is empty, of the wrong shape or with NaN/inf, or a concrete
        ``nudge``, ``step_size`` or ``tol`` that is not finite and positive.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from slt_sampler.thermo.ep import RestrictedHopfield
    >>> net = RestrictedHopfield((4, 8, 2))
    >>> params = net.init_params_fn(jax.random.key(0))
    >>> grad_fn = build_gradient_fn(net, variant="symmetric")
    >>> x, t = jnp.full((3, 4), 0.5), jnp.eye(2)[jnp.array([0, 1, 0])]
    >>> grads, info = grad_fn(jax.random.key(1), params, x, t, 0.1, 0.5, 1e-4)
    >>> grads[0]["w"].shape, bool(info.converged)
    ((4, 8), True)
    """
    check_energy("build_gradient_fn", energy)
    check_callable("build_gradient_fn", "cost_fn", cost_fn, "E.g. squared_error.")
    max_nudged_steps = max_steps if max_nudged_steps is None else max_nudged_steps
    check_options(energy, variant, init_mode, max_steps, max_nudged_steps)
    check_schedule(schedule)

    def grad_fn(rng_key, params, x, target, nudge, step_size, tol):
        check_key("grad_fn", "rng_key", rng_key)
        check_batch("grad_fn", energy, x, target)
        check_nudge(nudge, variant)
        check_numbers("grad_fn", step_size, tol)
        check_params("grad_fn", energy, params)
        kw = {"energy": energy, "cost_fn": cost_fn, "step_size": step_size, "tol": tol}
        kw["schedule"] = schedule
        layers0 = _initial_layers(energy, params, x, init_mode)
        free_s, free = _relax(
            params, x, target, 0.0, layers0, max_steps=max_steps, **kw
        )
        nudge = jnp.asarray(nudge, jnp.result_type(x))
        signed = nudge
        if variant == "centered":
            signed = jnp.where(jax.random.bernoulli(rng_key), nudge, -nudge)
        nudged_s, nudged = _relax(
            params, x, target, signed, free_s, max_steps=max_nudged_steps, **kw
        )
        minus = None
        phases = [free_s, nudged_s]
        if variant == "symmetric":
            minus_s, minus = _relax(
                params, x, target, -nudge, free_s, max_steps=max_nudged_steps, **kw
            )
            phases.append(minus_s)
            grads = _energy_grad_difference(
                energy, params, nudged_s, minus_s, x, 2 * nudge
            )
        else:
            grads = _energy_grad_difference(energy, params, nudged_s, free_s, x, signed)
        grads = jax.tree.map(lambda g: jnp.where(nudge > 0, g, jnp.nan), grads)
        converged = free.converged & nudged.converged
        if minus is not None:
            converged = converged & minus.converged
        info = EPInfo(
            free=free,
            nudged=nudged,
            nudged_minus=minus,
            nudge=signed,
            loss=jnp.mean(cost_fn(free_s[-1], target)),
            output=free_s[-1],
            max_abs_state=jnp.max(
                jnp.stack([jnp.max(jnp.abs(s)) for ph in phases for s in ph])
            ),
            converged=converged,
        )
        return grads, info

    return grad_fn


# ----------------------------------------------------------------------------------
# Kernel contract
# ----------------------------------------------------------------------------------
def init(params, optimizer) -> EPState:
    """Initial :class:`EPState` for ``params`` and an optax ``optimizer``.

    Raises ``TypeError`` unless ``optimizer`` is an optax transformation and
    ``params`` a non-empty pytree of arrays; ``ValueError`` for NaN/inf leaves.
    """
    check_optimizer("init", optimizer)
    _check_param_tree("init", params)
    return EPState(params, optimizer.init(params), jnp.asarray(0, jnp.int32))


def build_kernel(
    energy: Energy,
    optimizer,
    *,
    cost_fn: Callable = squared_error,
    variant: str = "one_sided",
    init_mode: str = "zero",
    max_steps: int = 100,
    max_nudged_steps: int | None = None,
    schedule: str = "synchronous",
) -> Callable:
    """Build ``kernel(rng_key, state, x, target, nudge, step_size, tol)``.

    One EP training step: :func:`build_gradient_fn`'s estimate fed to
    ``optimizer.update``. Returns ``(EPState, EPInfo)``. The kernel is pure and
    un-jitted; jit (or ``lax.scan``) it at the call site, as :func:`fit` does.

    Raises like :func:`build_gradient_fn`, plus ``TypeError`` for an optimizer
    without ``init``/``update`` or a ``state`` that is not an :class:`EPState`.
    """
    check_optimizer("build_kernel", optimizer)
    grad_fn = build_gradient_fn(
        energy,
        cost_fn=cost_fn,
        variant=variant,
        init_mode=init_mode,
        max_steps=max_steps,
        max_nudged_steps=max_nudged_steps,
        schedule=schedule,
    )

    def kernel(rng_key, state: EPState, x, target, nudge, step_size, tol):
        check_type("kernel", "state", state, EPState, "an EPState", "Use init().")
        grads, info = grad_fn(rng_key, state.params, x, target, nudge, step_size, tol)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = jax.tree.map(jnp.add, state.params, updates)
        return EPState(params, opt_state, state.step + 1), info

    return kernel


def as_top_level_api(
    energy: Energy,
    optimizer,
    *,
    nudge: float,
    step_size: float,
    tol: float,
    cost_fn: Callable = squared_error,
    variant: str = "one_sided",
    init_mode: str = "zero",
    max_steps: int = 100,
    schedule: str = "synchronous",
) -> EPAlgorithm:
    """BlackJAX-style ``(init, step)`` pair with the numeric options bound.

    Raises like :func:`build_kernel`, and ``ValueError`` here (not at the first
    step) for a ``nudge``, ``step_size`` or ``tol`` that is not finite and > 0.
    """
    check_nudge(nudge, variant)
    check_numbers("as_top_level_api", step_size, tol)
    kernel = build_kernel(
        energy,
        optimizer,
        cost_fn=cost_fn,
        variant=variant,
        init_mode=init_mode,
        max_steps=max_steps,
        schedule=schedule,
    )

    def step(rng_key, state, x, target):
        return kernel(rng_key, state, x, target, nudge, step_size, tol)

    return EPAlgorithm(lambda params: init(params, optimizer), step)


def predict(
    params,
    x,
    step_size=0.5,
    tol=1e-4,
    *,
    energy: Energy,
    init_mode: str = "zero",
    max_steps: int = 100,
    schedule: str = "synchronous",
):
    """Free-phase output ``(batch, n_L)`` and its :class:`RelaxInfo`.

    Raises ``TypeError``/``ValueError`` for a bad energy, option, params, a
    non-finite or empty ``x``, or a ``step_size``/``tol`` that is not finite and
    > 0 (concrete values only).
    """
    check_energy("predict", energy)
    check_options(energy, "one_sided", init_mode, max_steps, max_steps)
    check_schedule(schedule)
    check_batch("predict", energy, x)
    check_numbers("predict", step_size, tol)
    check_params("predict", energy, params)
    layers0 = _initial_layers(energy, params, x, init_mode)
    dummy = jnp.zeros((jnp.shape(x)[0], energy.layer_sizes[-1]), jnp.result_type(x))
    layers, info = _relax(
        params,
        x,
        dummy,
        0.0,
        layers0,
        energy=energy,
        step_size=step_size,
        tol=tol,
        max_steps=max_steps,
        schedule=schedule,
    )
    return layers[-1], info


def warn_if_unconverged(converged) -> int:
    """Warn (``RuntimeWarning``) if any entry of a concrete ``converged`` is False.

    Returns the number of unconverged entries. Traced inputs are ignored.
    Raises ``TypeError`` unless ``converged`` is a bool array (e.g.
    ``info.converged``).
    """
    flags = check_array(
        "warn_if_unconverged",
        "converged",
        converged,
        kind="bool",
        nonempty=False,
        fix="Pass info.converged (a bool array).",
    )
    if not is_concrete(flags):
        return 0
    flags = np.asarray(flags)
    bad = int(flags.size - flags.sum())
    if bad:
        warnings.warn(_UNCONVERGED_MSG.format(bad, flags.size), RuntimeWarning, 2)
    return bad


def _check_param_tree(fn: str, params) -> None:
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise TypeError(
            f"{fn}: params must be a non-empty pytree of arrays, got {params!r}; "
            "use energy.init_params_fn(rng_key)."
        )
    for i, leaf in enumerate(leaves):
        check_array(fn, f"params leaf {i}", leaf, nonempty=False)
