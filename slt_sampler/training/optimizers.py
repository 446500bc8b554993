"""Momentum optimisers as integrators of Hamiltonian dynamics, in optax's interface.

Gradient descent with momentum integrates the damped Hamiltonian flow

.. math::

    \\dot w = p, \\qquad \\dot p = -\\nabla L(w) - \\gamma p,
    \\qquad H(w, p) = \\tfrac12\\lVert p\\rVert^2 + L(w),

with unit mass, time step ``h`` (``learning_rate`` below) and friction γ >= 0. How it is
discretised decides whether H is kept: the Störmer–Verlet (leapfrog) scheme is
symplectic, so at γ = 0 its energy error stays of order ``h²`` for exponentially long
times (Hairer, Lubich & Wanner 2006, *Geometric Numerical Integration*, ch. IX), while
explicit Euler multiplies the energy of every harmonic mode of frequency ω by exactly
``1 + h²ω²`` per step and drifts without bound.

Both optimisers are plain :class:`optax.GradientTransformation` s (they take the gradient
of the loss at the current parameters, one per step) and keep their momentum in a
:class:`HamiltonianState`, from which :func:`slt_sampler.training.train` reads the
energy ``H`` at every checkpoint. Heavy-ball SGD (``optax.sgd(η, momentum=μ)``) is the
staggered leapfrog of this flow with ``h² = η`` and ``μ = e^{-γh}`` up to where the
friction is applied, so it is (conformally) symplectic too; :func:`euler_momentum` is
the non-symplectic scheme it is compared against.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from .. import _validate
from ..types import Array, PyTree

__all__ = ["HamiltonianState", "adam", "euler_momentum", "leapfrog", "sgd"]


class HamiltonianState(NamedTuple):
    """Optimiser state of :func:`leapfrog` and :func:`euler_momentum`.

    The momentum at the current parameters ``w_t`` (synchronous with them) is

    .. math:: p_t = s\\,\\texttt{momentum} - \\ell\\,\\nabla L(w_t),

    with ``s = sync_scale`` and ``ℓ = sync_lag``; the energy is
    ``H_t = ½‖p_t‖² + L(w_t)``. For leapfrog ``momentum`` is the half-step momentum
    ``p_{t-1/2}`` and ``(s, ℓ) = (e^{-γh/2}, h/2)`` (both ``(1, 0)`` before the first
    step, when it still holds ``p_0``); for explicit Euler it is ``p_t`` itself and
    ``(s, ℓ) = (1, 0)``.

    Attributes
    ----------
    momentum : pytree shaped like the parameters.
    sync_scale, sync_lag : scalar arrays (see above).
    """

    momentum: PyTree
    sync_scale: Array
    sync_lag: Array


def _check_step(learning_rate, friction) -> tuple[float, float]:
    fix = "It is the time step h of the Hamiltonian flow (position moves h·p)."
    _validate.check_scalar("learning_rate", learning_rate)
    _validate.check_positive("learning_rate", learning_rate, fix)
    _validate.check_scalar("friction", friction)
    _validate.check_non_negative("friction", friction, "0 conserves the energy H.")
    return float(learning_rate), float(friction)


def _init(params: PyTree) -> HamiltonianState:
    zeros = jax.tree.map(jnp.zeros_like, params)
    leaves = jax.tree.leaves(params)
    dtype = jnp.result_type(*leaves) if leaves else jnp.float32
    one = jnp.ones((), dtype)
    return HamiltonianState(zeros, one, jnp.zeros((), dtype))


def leapfrog(learning_rate: float, *, friction: float = 0.0):
    """Störmer–Verlet (leapfrog) momentum optimiser, symplectic at ``friction = 0``.

    One step, for gradient ``g_t = ∇L(w_t)``, step ``h`` and ``μ = e^{-γh}``, is the
    symmetric splitting half-kick, half-damp, drift (velocity Verlet, with the damping
    ``p → μ^{1/2} p`` on each side of the drift):

    .. math::

        p_t = \\mu^{1/2} p_{t-1/2} - \\tfrac h2 g_t, \\qquad
        p_{t+1/2} = \\mu^{1/2}\\big(p_t - \\tfrac h2 g_t\\big), \\qquad
        w_{t+1} = w_t + h\\, p_{t+1/2},

    starting from ``p_0 = 0`` (so the first step kicks by ``h/2`` only). In staggered
    form ``p_{t+1/2} = μ p_{t-1/2} − μ^{1/2} h g_t``: one gradient per step, as for
    SGD. At γ = 0 this is exactly velocity Verlet and heavy-ball SGD with learning rate
    ``h²`` and momentum 1. The state keeps ``p_{t-1/2}``; the synchronous momentum
    ``p_t`` of the formula above, and so ``H_t = ½‖p_t‖² + L(w_t)``, needs the
    gradient at ``w_t``: :func:`slt_sampler.training.train` evaluates it with the
    full-data gradient at every checkpoint (:class:`HamiltonianState`). On a
    harmonic mode of frequency ω the scheme conserves ``p² + ω²(1 − h²ω²/4) w²``
    exactly, so ``H`` oscillates within a relative band of
    ``(h²ω²/4) / (1 − h²ω²/4)`` and never drifts (stable for ``hω < 2``).

    Parameters
    ----------
    learning_rate
        Time step ``h > 0``.
    friction
        Damping rate γ >= 0 (per unit time; ``μ = e^{-γh}`` per step). 0 conserves H.

    Returns
    -------
    optax.GradientTransformation
        With state :class:`HamiltonianState`.

    Examples
    --------
    >>> import jax.numpy as jnp, optax
    >>> opt = leapfrog(0.1)
    >>> w = jnp.array([1.0]); state = opt.init(w)
    >>> upd, state = opt.update(w, state)  # gradient of L = w²/2
    >>> optax.apply_updates(w, upd)
    Array([0.995], dtype=float32)
    """
    h, gamma = _check_step(learning_rate, friction)
    half_decay = math.exp(-0.5 * gamma * h)

    def update(grads, state, params=None):
        del params
        p_sync = jax.tree.map(
            lambda p, g: state.sync_scale * p - state.sync_lag * g,
            state.momentum,
            grads,
        )
        p_half = jax.tree.map(
            lambda p, g: half_decay * (p - 0.5 * h * g), p_sync, grads
        )
        updates = jax.tree.map(lambda p: h * p, p_half)
        dtype = state.sync_scale.dtype
        new = HamiltonianState(
            p_half, jnp.asarray(half_decay, dtype), jnp.asarray(0.5 * h, dtype)
        )
        return updates, new

    return optax.GradientTransformation(_init, update)


def euler_momentum(learning_rate: float, *, friction: float = 0.0):
    """Explicit-Euler momentum optimiser (not symplectic), the baseline of
    :func:`leapfrog`.

    .. math::

        w_{t+1} = w_t + h\\,p_t, \\qquad p_{t+1} = (1 - \\gamma h)\\,p_t - h\\,\\nabla L(w_t),

    both from the old values, ``p_0 = 0``. On a harmonic mode of frequency ω the map
    ``(w, p)`` has determinant ``1 + h²ω²`` (at γ = 0) and multiplies the energy
    ``½p² + ½ω²w²`` by exactly that factor every step: after ``T`` steps
    ``H_T = H_0 (1 + h²ω²)^T``, a drift linear in ``T`` while ``Th²ω² ≪ 1`` and
    exponential after.

    Parameters
    ----------
    learning_rate
        Time step ``h > 0``.
    friction
        Damping rate γ >= 0.

    Returns
    -------
    optax.GradientTransformation
        With state :class:`HamiltonianState` (``momentum`` = ``p_t``).
    """
    h, gamma = _check_step(learning_rate, friction)

    def update(grads, state, params=None):
        del params
        updates = jax.tree.map(lambda p: h * p, state.momentum)
        momentum = jax.tree.map(
            lambda p, g: (1.0 - gamma * h) * p - h * g, state.momentum, grads
        )
        return updates, state._replace(momentum=momentum)

    return optax.GradientTransformation(_init, update)


def sgd(learning_rate: float, *, momentum: float | None = None):
    """``optax.sgd`` with its arguments checked (optax accepts a negative rate).

    ``w ← w − η v`` with ``v ← μ v + g`` (heavy ball) when ``momentum = μ`` is given.
    """
    _validate.check_scalar("learning_rate", learning_rate)
    _validate.check_positive(
        "learning_rate", learning_rate, "SGD steps w ← w − η ∇L need η > 0."
    )
    if momentum is not None:
        _validate.check_unit_interval(
            "momentum",
            momentum,
            "Heavy-ball μ in [0, 1) (μ >= 1 never forgets a gradient); 0.9 is usual.",
            closed_low=True,
        )
    return optax.sgd(learning_rate, momentum=momentum)


def adam(
    learning_rate: float, *, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
):
    """``optax.adam(learning_rate, b1, b2, eps)`` with every argument checked
    (``b1, b2`` in [0, 1), ``eps > 0``, all scalars)."""
    _validate.check_scalar("learning_rate", learning_rate)
    _validate.check_positive("learning_rate", learning_rate, "Adam needs η > 0.")
    for name, value, usual in (("b1", b1, 0.9), ("b2", b2, 0.999)):
        _validate.check_unit_interval(
            name,
            value,
            f"A moment-average decay rate in [0, 1); {usual} is usual.",
            closed_low=True,
        )
    _validate.check_scalar("eps", eps)
    _validate.check_positive("eps", eps, "A small stabiliser, e.g. 1e-8.")
    return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)
