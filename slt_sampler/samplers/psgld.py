"""Preconditioned SGLD with an RMSProp diagonal preconditioner that adapts, then freezes.

One step (BlackJAX's SGLD convention, as :class:`~slt_sampler.samplers.sgld.SGLD`):

.. math::
    V_t = V_{t-1} + \\frac{1-\\alpha}{1-\\alpha^t}\\big(g_t \\odot g_t - V_{t-1}\\big)
          \\quad (t \\le T_{\\mathrm{adapt}};\\ V_t = V_{t-1} \\text{ after}),
    \\qquad G_t = \\frac{1}{\\sqrt{V_t} + n\\beta\\,\\epsilon_{\\mathrm{damp}}},

.. math::
    w_{t+1} = w_t + \\varepsilon\\, G_t \\odot g_t + \\sqrt{2\\varepsilon\\, G_t}\\odot\\xi_t,
    \\qquad g_t = \\widehat{\\nabla \\log p}(w_t),\\ \\xi_t \\sim N(0, I),

the RMSProp preconditioner of pSGLD (Li et al. 2016) as in devinterp's
``rmsprop_sgld``, which Hitchcock & Hoogland (2025, arXiv:2507.21449) found the most
faithful local sampler on deep-linear-network ground truth.

**Correction term.** Li et al.'s drift has an extra
:math:`\\varepsilon\\,\\Gamma(w),\\ \\Gamma_i = \\sum_j \\partial G_{ij}/\\partial w_j`. Once V
is frozen (after ``adapt_steps``), G is a constant matrix, Γ ≡ 0 exactly, and the
Fokker-Planck flux :math:`G(p\\nabla\\log p - \\nabla p)` vanishes at the target: the chain
samples the target up to the O(ε) Euler bias (its exact discretised law on a Gaussian
is tested). During adaptation G depends on the chain's history, not on w, so no Γ term
would make that phase stationary: it is burn-in, and Γ is dropped (as Li et al. and
devinterp do).

**Departures from devinterp** (``rmsprop_sgld(lr, eps)``): V averages the full drift
``∇log p`` (minibatch likelihood, prior and localisation), not only the loss gradient,
so a parameter the loss ignores still gets ``G ≈ 1/√γ`` from the localiser; V is
bias-corrected (weights ``(1-α)/(1-α^t)``, as Adam; without it the first steps use a
G up to ``1/√(1-α) = 10×`` too large); it freezes. With a negligible prior the map is
``step_size = nβ·lr/2`` and the same ``eps``.

**Damping** ``eps`` is in units of the *mean-loss* gradient (scaled by nβ inside G), so
it is invariant to β and n, equals devinterp's ``eps``, and bounds ``G <= 1/(nβ eps)``:
at an exact critical point (full batch at w*) a zero gradient would otherwise give
``G = 1/eps`` and a first step of ``sqrt(2ε/eps)``. The default 0.1 is devinterp's.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from blackjax.util import generate_gaussian_noise

from .. import _validate
from ..posterior.base import TemperedPosterior, logdensity_and_loss
from ..types import Array, PRNGKey, PyTree
from .calibrate import configurational_temperature, max_curvature
from .run import sample
from .sgld import SGInfo, _all_finite, _batch, _paired_diff

PSGLDInfo = SGInfo
"""Per-step information: the fields of SGLD's :class:`SGInfo` (the driver and the LLC
read ``loss`` and ``loss_diff`` the same way)."""

ALPHA = "alpha must be a number in (0, 1), got {value!r} (in PSGLD). 0.99 is RMSProp's."
SQUARE_AVG = (
    "square_avg must be a pytree of finite values >= 0 shaped like the parameters "
    "(e.g. state.square_avg of an adapted chain), got {detail}."
)


class PSGLDState(NamedTuple):
    """State of pSGLD.

    Attributes
    ----------
    position : the parameters w.
    square_avg : the (bias-corrected) RMSProp average V of squared ``∇log p``.
    count : steps taken since ``init``; V adapts while ``count < adapt_steps``.
    """

    position: PyTree
    square_avg: PyTree
    count: Array


@dataclasses.dataclass(frozen=True)
class PSGLD:
    """Preconditioned SGLD (Li et al. 2016): RMSProp diagonal metric, then frozen.

    Parameters
    ----------
    step_size : float
        ε (traced). A *length*: ``ε·G·∇log p`` moves each coordinate by about ε once
        ``G ≈ 1/|∇log p|``. Stable roughly for ``ε·max_i(G_i h_i) < 2``.
    alpha : float
        RMSProp decay in (0, 1) (traced).
    eps : float
        Damping > 0 in mean-loss-gradient units (traced); G = 1/(√V + nβ·eps).
    square_avg : pytree or None
        Initial V (traced); ``None`` starts from 0 with bias correction. With
        ``adapt_steps=0`` it is a frozen preconditioner handed on from another run
        (e.g. ``final_state.square_avg[c]`` of an adapted chain); with
        ``adapt_steps > 0`` adaptation continues from it (weights ``1-α``).
    batch_size : int or None
        Minibatch size (static); ``None`` is the full data.
    adapt_steps : int
        Steps during which V adapts (static, >= 0); V is frozen afterwards and the
        chain is stationary only from then on (discard them as burn-in).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from slt_sampler import tempered_posterior
    >>> ll = lambda w, b: -0.5 * jnp.sum((b - w[None]) ** 2, axis=1)
    >>> post = tempered_posterior(ll, jnp.ones((8, 2)))
    >>> s = PSGLD(jnp.asarray(1e-2), batch_size=4, adapt_steps=5)
    >>> st, info = s.step(jax.random.key(0), s.init(jnp.zeros(2), post), post)
    >>> int(st.count), s.preconditioner(st, post).shape
    (1, (2,))
    """

    step_size: Array
    alpha: Array = 0.99
    eps: Array = 0.1
    square_avg: PyTree | None = None
    batch_size: int | None = None
    adapt_steps: int = 1000
    name = "psgld"
    info_loss_kind = "batch"

    def __post_init__(self):
        _validate.check_fields(
            self, positive=["step_size", "eps"], optional_ints=["batch_size"]
        )
        _validate.check_int("adapt_steps", self.adapt_steps, minimum=0)
        a = _validate.as_numbers("alpha", self.alpha, placeholders=True)
        if a is not None and (a.shape != () or not 0 < float(a) < 1):
            raise ValueError(ALPHA.format(value=self.alpha))
        for leaf in jax.tree.leaves(self.square_avg):
            v = _validate.as_numbers("square_avg", leaf, placeholders=True)
            if v is not None and not (np.all(np.isfinite(v)) and np.all(v >= 0)):
                raise ValueError(SQUARE_AVG.format(detail="negative or non-finite"))

    def init(
        self, position: PyTree, posterior: TemperedPosterior, rng_key=None
    ) -> PSGLDState:
        del posterior, rng_key
        start = self.square_avg
        if start is None:
            start = jax.tree.map(jnp.zeros_like, position)
        _validate.check_same_tree("square_avg", start, "the position", position)
        # ``0 * w`` (w is finite) ties every leaf to the position, so that under the
        # driver's vmap each leaf inherits the position's chain sharding
        v = jax.tree.map(lambda s, p: s + 0 * p, start, position)
        count = jnp.sum(0 * jax.tree.leaves(position)[0]).astype(jnp.int32)
        return PSGLDState(position, v, count)

    def preconditioner(self, state: PSGLDState, posterior: TemperedPosterior) -> PyTree:
        """The diagonal ``G = 1/(√V + nβ·eps)`` of ``state`` (a pytree like w)."""
        return _metric(state.square_avg, self.eps, posterior)

    def step(
        self, rng_key: PRNGKey, state: PSGLDState, posterior: TemperedPosterior
    ) -> tuple[PSGLDState, SGInfo]:
        k_batch, k_noise = jax.random.split(rng_key)
        batch = _batch(k_batch, posterior, self.batch_size)
        (_, loss), grad = jax.value_and_grad(
            lambda w: logdensity_and_loss(posterior, w, batch), has_aux=True
        )(state.position)
        t = state.count + 1
        # bias correction only from a zero start: a given V is already an average
        bias = 1.0 - self.alpha**t if self.square_avg is None else 1.0
        weight = (1.0 - self.alpha) / bias
        adapting = state.count < self.adapt_steps
        v = jax.tree.map(
            lambda v, g: jnp.where(adapting, v + weight * (g * g - v), v),
            state.square_avg,
            grad,
        )
        new_state = PSGLDState(state.position, v, t)
        g_pre = self.preconditioner(new_state, posterior)
        noise = generate_gaussian_noise(k_noise, state.position)
        new = jax.tree.map(
            lambda w, g, c, z: (
                w + self.step_size * c * g + jnp.sqrt(2 * self.step_size * c) * z
            ),
            state.position,
            grad,
            g_pre,
            noise,
        )
        bad = ~(_all_finite(new) & jnp.isfinite(loss))
        diff = _paired_diff(posterior, loss, batch)
        info = SGInfo(loss, diff, bad, jnp.ones_like(loss))
        return PSGLDState(new, v, t), info


jax.tree_util.register_dataclass(
    PSGLD,
    data_fields=["step_size", "alpha", "eps", "square_avg"],
    meta_fields=["batch_size", "adapt_steps"],
)


def preconditioned_configurational_temperature(
    rng_key: PRNGKey,
    posterior: TemperedPosterior,
    positions: PyTree,
    G: PyTree,
    *,
    like: PyTree | None = None,
    num_probes: int = 8,
) -> tuple[float, float]:
    """Configurational temperature in the metric of a constant diagonal ``G``.

    For ``p ∝ exp(-U)`` and constant G, integration by parts gives
    ``E[∇U·G∇U] = E[tr(G ∇²U)]`` (Rickayzen & Powles 2001 with G = I), so

    .. math:: T_G = \\frac{\\mathbb{E}[\\nabla U^\\top G\\,\\nabla U]}
              {\\mathbb{E}[\\operatorname{tr}(G\\,\\nabla^2 U)]} = 1

    at the target; ``tr(G∇²U)`` is Hutchinson's ``E_z[z·(G ⊙ ∇²U z)]`` with Rademacher
    z. Returns ``(T_G, se)`` over ``positions`` (any leading axes; ``like`` is one
    position, default the posterior's centre), se by the delta method.
    """
    ref = posterior.center if like is None else like
    if ref is not None:
        _validate.check_same_tree("G", G, "like", ref)
    _validate.check_positive(
        "G", np.concatenate([np.ravel(x) for x in jax.tree.leaves(G)])
    )
    return configurational_temperature(
        rng_key, posterior, positions, like=like, num_probes=num_probes, metric=G
    )


FROZEN = (
    "{name} needs a frozen PSGLD (adapt_steps=0 and square_avg set), got "
    "adapt_steps={steps} and square_avg {has}: build it with rmsprop_preconditioner."
)


def frozen_metric(psgld: PSGLD, posterior: TemperedPosterior) -> PyTree:
    """The constant diagonal metric ``G = 1/(√V + nβ·eps)`` of a frozen ``psgld``."""
    if psgld.adapt_steps != 0 or psgld.square_avg is None:
        has = "set" if psgld.square_avg is not None else "None"
        raise ValueError(
            FROZEN.format(name="frozen_metric", steps=psgld.adapt_steps, has=has)
        )
    return _metric(psgld.square_avg, psgld.eps, posterior)


def _metric(square_avg: PyTree, eps, posterior: TemperedPosterior) -> PyTree:
    """``G = 1/(√V + nβ·eps)``: the one formula of pSGLD's diagonal metric."""
    damp = posterior.nbeta * eps
    return jax.tree.map(lambda v: 1.0 / (jnp.sqrt(v) + damp), square_avg)


def rmsprop_preconditioner(
    rng_key: PRNGKey,
    posterior: TemperedPosterior,
    position: PyTree,
    *,
    batch_size: int | None,
    num_chains: int = 8,
    adapt_steps: int = 1000,
    alpha: float = 0.99,
    eps: float = 0.1,
    tolerance: float = 0.03,
) -> PSGLD:
    """Adapt pSGLD's RMSProp preconditioner on a burn-in run and freeze it.

    V starts as the mean of ``∇log p ⊙ ∇log p`` over 16 minibatches at ``position``;
    ``num_chains`` chains then run ``adapt_steps`` pSGLD steps from ``position`` with
    V adapting (weights ``1 − alpha``), at the step ``2·tolerance/h_max`` with
    ``h_max`` the largest curvature in the starting metric (a tenth of it after a
    divergence, at most three times); V is their mean over chains at the end. The
    returned PSGLD has that V frozen (``adapt_steps=0``, so it samples its target
    exactly up to the Euler bias; see the module docstring) and the burn-in step
    size: calibrate its step with ``calibrate_sgld(..., preconditioned=...)``.
    """
    _validate.check_int("adapt_steps", adapt_steps)
    _validate.check_int("num_chains", num_chains)
    k_batch, k_curv, k_run = jax.random.split(rng_key, 3)

    def squared(key):
        g = jax.grad(
            lambda w: logdensity_and_loss(
                posterior, w, _batch(key, posterior, batch_size)
            )[0]
        )(position)
        return jax.tree.map(lambda x: x * x, g)

    draws = 1 if batch_size is None else 16
    v0 = jax.tree.map(
        lambda x: jnp.mean(x, axis=0),
        jax.lax.map(squared, jax.random.split(k_batch, draws)),
    )
    template = PSGLD(
        jnp.asarray(1.0),
        alpha,
        eps,
        square_avg=v0,
        batch_size=batch_size,
        adapt_steps=0,
    )
    h = max_curvature(
        k_curv, posterior, position, metric=frozen_metric(template, posterior)
    )
    step = 2 * tolerance / max(h, 1e-30)
    for attempt in range(4):
        res = sample(
            jax.random.fold_in(k_run, attempt),
            dataclasses.replace(
                template, step_size=jnp.asarray(step), adapt_steps=adapt_steps
            ),
            posterior,
            position,
            num_chains=num_chains,
            num_steps=adapt_steps,
            progress=False,
        )
        if not res.diverged.any():
            break
        step *= 0.1
    else:
        raise FloatingPointError(
            f"pSGLD's preconditioner burn-in diverged at every step size down to "
            f"{step * 10:.3g}: check that w* is a local minimum and gamma > 0."
        )
    v = jax.tree.map(lambda x: jnp.mean(x, axis=0), res.final_state.square_avg)
    return dataclasses.replace(template, step_size=jnp.asarray(step), square_avg=v)
