"""Underdamped Langevin dynamics by the BAOAB splitting, momentum kept between steps.

One step of time ε with friction α (unit mass, ``U = -log p``)::

    B  p ← p − (ε/2) ∇U(w)            (gradient cached from the last step)
    A  w ← w + (ε/2) p
    O  p ← c p + sqrt(1 − c²) ξ,  c = exp(−α ε)
    A  w ← w + (ε/2) p
    B  p ← p − (ε/2) ∇U(w)            (one new gradient per step)

Why this and not SGLD on large singular models: SGLD's configurational bias is first
order in its step, so the step must be far below the stiffest direction's ``1/h_max``,
and the chains then creep along the directions L_n leaves flat (a deep linear
network's rescaling symmetry) for millions of steps. BAOAB's configurational bias is
second order in ``ε √h_max`` (for a Gaussian target it samples the positions' law
*exactly* at any stable ε; Leimkuhler & Matthews 2013, *Appl. Math. Res. Express*
2013:34-56), so the overdamped-equivalent step ``ε²/2`` can be far larger at the same
bias. Measured on the 8,500-parameter ``[60, 50, 50, 60]`` rank-10 DLN (n = 10⁴,
β = 1/log n, γ = 1, full-data gradients, 8 chains): at ``ε = 0.05/√h_max`` and
``α = 0.3 √h_max``, λ̂ by 4,000-step windows read 1213-1222 from the second window
on (exact 1222.1 by MAMS) with T_conf 0.995-1.009; SGLD at ``ε = 0.03/h_max`` still
rose past 1271 after 32,000 steps. The friction matters: at ``α = 0.01 √h_max``
(measured with the OBABO ordering) the stiff modes heat as the chains move into
stiffer regions (their energy is an adiabatic invariant when friction is weak) and
T_conf stayed at 1.15-1.66; at ``α = √h_max`` λ̂ crept up as SGLD's does.
Through ``estimate_llc(sampler="baoab")`` (calibrated, watched): that DLN 1220.5 ±
16.8 in 40 s; the 82,500-parameter ``[200, 150, 150, 200]`` rank-20 DLN 11,544 ± 192
(Aoyagi's λ 11,184) in 16.5 min, after one shrink of a step that had run hot (T_conf
7.3) as the chains spread into stiffer regions (the largest curvature grows 100-fold
from w*); the digits MLP 55.78 ± 0.41 against the exact 56.31.

Gradients are full-data by default: minibatch noise heats an underdamped chain by
about ``ε V / (2α)`` (V the gradient noise variance), far more than SGLD at its much
smaller step (with batches of 100 and 1,000 the DLN above read 1900 and 1615).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate
from ..posterior.base import TemperedPosterior, full_loss, logdensity_and_loss
from ..types import Array, PRNGKey, PyTree
from .sgld import SGInfo, _all_finite, _batch, _paired_diff

# Friction as a multiple of sqrt(h_max) (h_max: the largest curvature of U at w*),
# used by estimate_llc; see the module docstring for why not much smaller.
FRICTION_PER_ROOT_CURVATURE = 0.3


class BAOABState(NamedTuple):
    """Position, momentum, the log-density gradient and losses at the position, and
    (full-data gradients) ``L_n(w*)``, computed once instead of at every step."""

    position: PyTree
    momentum: PyTree
    grad: PyTree
    loss: Array
    loss_diff: Array
    center_loss: Array


@dataclasses.dataclass(frozen=True)
class BAOAB:
    """Underdamped Langevin dynamics, BAOAB splitting (Leimkuhler & Matthews 2013).

    Parameters
    ----------
    step_size : float
        Time step ε (traced). Stable for roughly ``ε √h_max < 2``; its
        configurational bias is of order ``(ε √h_max)²``.
    friction : float
        α (traced): the momentum decorrelates over ``1/α`` time units.
    batch_size : int or None
        Minibatch size (static); ``None`` (default) uses full-data gradients, which
        an underdamped chain needs (see the module docstring).

    The state keeps the momentum (started at 0: the first few ``1/(αε)`` steps
    thermalise it; count them in the burn-in) and the gradient of the last position,
    so a step costs one gradient. ``info.loss`` is the loss at the step's start, full
    data (``info_loss_kind == "full"``) unless a ``batch_size`` is given.
    """

    step_size: Array
    friction: Array
    batch_size: int | None = None
    name = "baoab"
    bias_order = 2  # T_conf - 1 grows like ε² (SGLD: like ε)

    def __post_init__(self):
        _validate.check_fields(
            self,
            positive=["step_size"],
            non_negative=["friction"],
            optional_ints=["batch_size"],
        )

    def relaxation_steps(self, h_max: float) -> float:
        """Steps over which the stiffest mode (curvature ``h_max``) forgets its state:
        its amplitude decays over ``2/α`` time units when ``α < 2 sqrt(h_max)``
        (underdamped), over ``α/h_max`` when overdamped; at most 1/(friction·ε) more
        for the momentum."""
        alpha, eps = float(self.friction), float(self.step_size)
        decay = 2.0 / alpha if alpha < 2 * np.sqrt(h_max) else alpha / h_max
        return max(decay, 1.0 / max(alpha, 1e-30)) / eps

    @property
    def info_loss_kind(self) -> str:
        return "full" if self.batch_size is None else "batch"

    def _gradient(self, rng_key, posterior, position, center_loss):
        batch = _batch(rng_key, posterior, self.batch_size)
        (_, loss), grad = jax.value_and_grad(
            lambda w: logdensity_and_loss(posterior, w, batch), has_aux=True
        )(position)
        if batch is None and posterior.center is not None:
            diff = loss - center_loss  # the same as _paired_diff, without a pass
        else:
            diff = _paired_diff(posterior, loss, batch)
        return grad, loss, diff

    def init(
        self, position: PyTree, posterior: TemperedPosterior, rng_key=None
    ) -> BAOABState:
        key = jax.random.key(0) if rng_key is None else rng_key  # minibatch only
        center_loss = jnp.zeros(())
        if posterior.center is not None:
            center_loss = full_loss(posterior, posterior.center)
        grad, loss, diff = self._gradient(key, posterior, position, center_loss)
        zeros = jax.tree.map(jnp.zeros_like, position)
        return BAOABState(position, zeros, grad, loss, diff, center_loss)

    def step(
        self, rng_key: PRNGKey, state: BAOABState, posterior: TemperedPosterior
    ) -> tuple[BAOABState, SGInfo]:
        k_noise, k_batch = jax.random.split(rng_key)
        eps = self.step_size
        c = jnp.exp(-self.friction * eps)
        half = 0.5 * eps
        p = jax.tree.map(lambda p, g: p + half * g, state.momentum, state.grad)
        w = jax.tree.map(lambda w, p: w + half * p, state.position, p)
        leaves, tree = jax.tree.flatten(p)
        keys = jax.random.split(k_noise, len(leaves))
        p = jax.tree.unflatten(
            tree,
            [
                c * x + jnp.sqrt(1 - c**2) * jax.random.normal(k, x.shape, x.dtype)
                for x, k in zip(leaves, keys, strict=True)
            ],
        )
        w = jax.tree.map(lambda w, p: w + half * p, w, p)
        grad, loss, diff = self._gradient(k_batch, posterior, w, state.center_loss)
        p = jax.tree.map(lambda p, g: p + half * g, p, grad)
        bad = ~(_all_finite(w) & jnp.isfinite(loss))
        info = SGInfo(state.loss, state.loss_diff, bad, jnp.ones_like(loss))
        new = BAOABState(w, p, grad, loss, diff, state.center_loss)
        return new, info


jax.tree_util.register_dataclass(
    BAOAB, data_fields=["step_size", "friction"], meta_fields=["batch_size"]
)
