"""Relaxation (settling) of an energy-based network and the reference gradient.

Private module: the public names are re-exported by :mod:`slt_sampler.thermo.ep`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from ._checks import check_callable, check_choice, check_int, check_real
from ._ep_energies import Energy, Layers, Params, project, squared_error
from ._ep_validate import (
    check_batch,
    check_energy,
    check_layers,
    check_numbers,
    check_params,
)

Array = jax.Array


class RelaxInfo(NamedTuple):
    """Diagnostics of one relaxation phase.

    Attributes
    ----------
    energy_trace : Array, shape ``(max_steps + 1,)``
        Batch-mean total energy :math:`E + \\nu C` before step ``k`` (entry ``k``);
        entry ``num_steps`` is the final value, later entries are NaN.
    num_steps : Array (int)
        Iterations taken (accepted and rejected steps).
    residual : Array
        Final residual :math:`\\max |s_{k+1} - s_k|` over units and examples.
    converged : Array (bool)
        ``residual < tol`` when the loop stopped (else the step cap was hit).
    num_rejected : Array (int)
        Iterations whose step would have raised the energy and was halved instead.
    """

    energy_trace: Array
    num_steps: Array
    residual: Array
    converged: Array
    num_rejected: Array


class ReferenceInfo(NamedTuple):
    """Diagnostics of :func:`reference_gradient`.

    Attributes
    ----------
    free : RelaxInfo
        The free phase the gradient is taken at.
    adjoint_steps : Array (int)
        Iterations of the adjoint fixed-point solve (``0`` for ``method="bptt"``).
    adjoint_residual : Array
        Final max-change of the adjoint iterate (``0`` for ``method="bptt"``).
    """

    free: RelaxInfo
    adjoint_steps: Array
    adjoint_residual: Array


def total_energy(
    energy: Energy, cost_fn: Callable, params: Params, layers: Layers, x, target, nudge
) -> Array:
    r"""Per-example total energy :math:`F = E + \nu\, C(s_L, t)`, shape ``(batch,)``."""
    e = energy.energy_fn(params, layers, x)
    return e + nudge * cost_fn(layers[-1], target)


SCHEDULES = ("synchronous", "alternating")
_SCHEDULE_MSG = (
    "schedule must be 'synchronous' or 'alternating', got {!r}; 'alternating' "
    "updates odd then even layers (exact block minimisation for RestrictedHopfield "
    "at step_size=1)."
)


def check_schedule(schedule: str) -> None:
    """Raise ``ValueError`` unless ``schedule`` is a known relaxation schedule."""
    if schedule not in SCHEDULES:
        raise ValueError(_SCHEDULE_MSG.format(schedule))


def relax_step(
    energy, cost_fn, params, layers, x, target, nudge, step_size, schedule="synchronous"
):
    r"""One projected gradient step :math:`s \leftarrow P(s - \epsilon \nabla_s F)`.

    ``schedule="synchronous"`` moves all layers at once; ``"alternating"`` moves
    layers ``1, 3, 5, ...`` first and then ``2, 4, ...`` using the updated states
    (block-coordinate descent). Returns the new layers and the batch-mean total
    energy *before* the step.
    """

    def summed(ls):
        f = total_energy(energy, cost_fn, params, ls, x, target, nudge)
        return jnp.sum(f), f

    grads, f = jax.grad(summed, has_aux=True)(layers)
    if schedule == "synchronous":
        new = tuple(s - step_size * g for s, g in zip(layers, grads))
        return project(energy, new), jnp.mean(f)
    new = layers
    for parity in (0, 1):
        if parity == 1:
            grads, _ = jax.grad(summed, has_aux=True)(new)
        new = tuple(
            s - step_size * g if i % 2 == parity else s
            for i, (s, g) in enumerate(zip(new, grads))
        )
        new = project(energy, new)
    return new, jnp.mean(f)


def _max_abs_change(new: Layers, old: Layers) -> Array:
    return jnp.max(jnp.stack([jnp.max(jnp.abs(a - b)) for a, b in zip(new, old)]))


def relax(
    params: Params,
    x: Array,
    target: Array,
    nudge,
    layers: Layers,
    *,
    energy: Energy,
    cost_fn: Callable = squared_error,
    step_size=0.5,
    tol=1e-4,
    max_steps: int = 100,
    schedule: str = "synchronous",
) -> tuple[Layers, RelaxInfo]:
    r"""Settle the states to a minimum of :math:`F = E + \nu C` by projected descent.

    Runs :math:`s_{k+1} = P\big(s_k - \epsilon_k \nabla_s \sum_b F_b(s_k)\big)` in
    a ``lax.while_loop`` until the residual :math:`\max|s_{k+1} - s_k| \cdot
    \epsilon / \epsilon_k < \mathrm{tol}` or ``max_steps`` iterations. ``nudge = 0``
    is the free phase. The step is safeguarded: a step that would raise the
    batch-mean :math:`F` (beyond float slack) is rejected and :math:`\epsilon_k`
    halved, then regrown by doubling up to ``step_size`` -- so the energy trace is
    non-increasing by construction and a too-large ``step_size`` (curvature grown by
    training) costs iterations instead of diverging. Compile time does not grow with
    ``max_steps`` (only the trace buffer does).

    Parameters
    ----------
    params, x, target
        Network parameters, input ``(batch, n_0)``, target ``(batch, n_L)``.
    nudge : float
        :math:`\nu`, the weight of the cost (0 for the free phase; may be negative).
    layers : tuple of Array
        Initial states.
    energy, cost_fn
        The network energy and per-example cost.
    step_size, tol : float
        :math:`\epsilon` and the stopping tolerance (traceable).
    max_steps : int
        Step cap (static).
    schedule : {"synchronous", "alternating"}
        Layer update order (static), see :func:`relax_step`.

    Returns
    -------
    layers : tuple of Array
    info : RelaxInfo

    Raises
    ------
    TypeError, ValueError
        Before the loop, for a bad energy / cost / option, params that do not fit
        the energy, ``x``/``target``/``layers`` of the wrong shape, empty or with
        NaN/inf, a non-finite ``nudge``, or a ``step_size``/``tol`` that is not
        finite and > 0 (a zero or negative step would only report
        ``converged=False``). Traced values are not checked.
    """
    _check_relax_inputs("relax", params, x, target, layers, energy, cost_fn)
    check_real("relax", "nudge", nudge, fix="nudge = 0 is the free phase.")
    check_numbers("relax", step_size, tol)
    check_int("relax", "max_steps", max_steps, fix="Use e.g. max_steps=100.")
    check_schedule(schedule)
    return _relax(
        params,
        x,
        target,
        nudge,
        layers,
        energy=energy,
        cost_fn=cost_fn,
        step_size=step_size,
        tol=tol,
        max_steps=max_steps,
        schedule=schedule,
    )


def _check_relax_inputs(fn, params, x, target, layers, energy, cost_fn) -> None:
    check_energy(fn, energy)
    check_callable(fn, "cost_fn", cost_fn, "E.g. squared_error.")
    check_batch(fn, energy, x, target)
    check_layers(fn, energy, layers, x.shape[0])
    check_params(fn, energy, params)


def _relax(
    params,
    x,
    target,
    nudge,
    layers,
    *,
    energy,
    cost_fn=squared_error,
    step_size=0.5,
    tol=1e-4,
    max_steps=100,
    schedule="synchronous",
):
    dtype = jnp.result_type(layers[0])
    slack = 16 * jnp.finfo(dtype).eps  # relative float slack of the descent test
    trace0 = jnp.full((max_steps + 1,), jnp.nan, dtype)

    def mean_f(ls):
        return jnp.mean(total_energy(energy, cost_fn, params, ls, x, target, nudge))

    def cond(carry):
        k, _, residual, *_ = carry
        return (k < max_steps) & (residual >= tol)

    def body(carry):
        k, ls, res, eps, trace, rejected = carry
        new, f = relax_step(
            energy, cost_fn, params, ls, x, target, nudge, eps, schedule
        )
        ok = mean_f(new) <= f + slack * (jnp.abs(f) + 1.0)
        res = jnp.where(ok, _max_abs_change(new, ls) * (step_size / eps), res)
        ls = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, ls)
        eps = jnp.where(ok, jnp.minimum(2.0 * eps, step_size), 0.5 * eps)
        return k + 1, ls, res, eps, trace.at[k].set(f), rejected + (~ok)

    step0 = jnp.asarray(step_size, dtype)
    inf = jnp.asarray(jnp.inf, dtype)
    carry0 = (jnp.asarray(0), layers, inf, step0, trace0, jnp.asarray(0))
    k, layers, residual, _, trace, rejected = lax.while_loop(cond, body, carry0)
    trace = trace.at[k].set(mean_f(layers))
    return layers, RelaxInfo(trace, k, residual, residual < tol, rejected)


def _fixed_point_map(energy, cost_fn, x, target, step_size, schedule):
    def step(params, layers):
        new, _ = relax_step(
            energy, cost_fn, params, layers, x, target, 0.0, step_size, schedule
        )
        return new

    return step


def _mean_cost(cost_fn, layers, target):
    return jnp.mean(cost_fn(layers[-1], target))


def reference_gradient(
    params: Params,
    x: Array,
    target: Array,
    layers: Layers,
    *,
    energy: Energy,
    cost_fn: Callable = squared_error,
    step_size=0.5,
    tol=1e-6,
    max_steps: int = 1000,
    method: str = "implicit",
    schedule: str = "synchronous",
) -> tuple[Params, ReferenceInfo]:
    r"""Gradient of the fixed-point loss :math:`L(\theta) = \overline{C}(s^*(\theta))`.

    ``method="implicit"``: settle to :math:`s^*` (tolerance ``tol``), then solve the
    adjoint equation of the fixed-point map
    :math:`T(s, \theta) = P(s - \epsilon \nabla_s E)` by fixed-point iteration,

    .. math::

        u = \partial_s T^\top u + \nabla_s L, \qquad
        \nabla_\theta L = \partial_\theta T^\top u ,

    which is exact at the fixed point (units clamped at a bound get zero
    sensitivity). ``method="bptt"``: back-propagate through exactly ``max_steps``
    relaxation steps (``lax.scan``; memory grows with ``max_steps``).

    Returns
    -------
    grads : params-shaped pytree
    info : ReferenceInfo

    Raises
    ------
    TypeError, ValueError
        As :func:`relax`, plus an unknown ``method``.
    """
    fn = "reference_gradient"
    check_choice(fn, "method", method, ("implicit", "bptt"))
    _check_relax_inputs(fn, params, x, target, layers, energy, cost_fn)
    check_numbers(fn, step_size, tol)
    check_int(fn, "max_steps", max_steps, fix="Use e.g. max_steps=1000.")
    check_schedule(schedule)
    step = _fixed_point_map(energy, cost_fn, x, target, step_size, schedule)
    if method == "bptt":
        return _bptt_gradient(step, cost_fn, params, layers, target, max_steps, tol)
    kw = {"energy": energy, "cost_fn": cost_fn, "step_size": step_size, "tol": tol}
    kw["schedule"] = schedule
    s_star, free = _relax(params, x, target, 0.0, layers, max_steps=max_steps, **kw)
    s_star = jax.lax.stop_gradient(s_star)
    dl_ds = jax.grad(lambda ls: _mean_cost(cost_fn, ls, target))(s_star)
    _, vjp_s = jax.vjp(lambda ls: step(params, ls), s_star)

    def cond(carry):
        k, _, res = carry
        return (k < max_steps) & (res >= tol)

    def body(carry):
        k, u, _ = carry
        (ju,) = vjp_s(u)
        new = jax.tree.map(jnp.add, ju, dl_ds)
        res = jnp.max(jnp.stack([jnp.max(jnp.abs(a - b)) for a, b in zip(new, u)]))
        return k + 1, new, res

    dtype = jnp.result_type(s_star[0])
    k, u, res = lax.while_loop(cond, body, (0, dl_ds, jnp.asarray(jnp.inf, dtype)))
    _, vjp_p = jax.vjp(lambda p: step(p, s_star), params)
    (grads,) = vjp_p(u)
    return grads, ReferenceInfo(free, k, res)


def _bptt_gradient(step, cost_fn, params, layers, target, num_steps, tol):
    def loss(p):
        def body(ls, _):
            return step(p, ls), None

        final, _ = lax.scan(body, layers, None, length=num_steps)
        return _mean_cost(cost_fn, final, target), final

    grads, final = jax.grad(loss, has_aux=True)(params)
    # Residual of the last step, for the caller to check the relaxation settled.
    last = step(params, final)
    res = _max_abs_change(last, final)
    dtype = jnp.result_type(final[0])
    nan_trace = jnp.full((num_steps + 1,), jnp.nan, dtype)
    free = RelaxInfo(nan_trace, jnp.asarray(num_steps), res, res < tol, jnp.asarray(0))
    return grads, ReferenceInfo(free, jnp.asarray(0), jnp.asarray(0.0, dtype))
