"""λ̂ at one training checkpoint with a given SGLD step: the per-checkpoint piece of
:func:`~slt_sampler.workflows.llc_over_training.llc_over_training`.

Everything that runs per checkpoint is compiled once per model shape: the chains go
through the one driver (:func:`~slt_sampler.samplers.run.sample`, whose compiled chunk
takes the centre w*, β, γ and the step size as traced values), and the baseline
``L_n(w*)``, the curvature at w* and the configurational temperature of the kept
positions are module-level ``jax.jit`` functions taking the posterior as an argument.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..estimators.llc import LLCResult, error_budget, llc, with_error_budget
from ..posterior.base import TemperedPosterior, full_loss, logdensity_and_loss
from ..samplers.checks import chains_below
from ..samplers.run import sample
from ..samplers.sgld import SGLD
from .llc import _raise_if_diverged

KEPT = 100  # positions kept per chain; T_conf is measured on the second half
PROBES = 4  # Rademacher probes per position for the Laplacian of U


class CheckpointLLC(NamedTuple):
    """λ̂ at one checkpoint and the evidence for it."""

    result: LLCResult
    trace: np.ndarray  # (chain, draw) L_n estimates, burn-in included
    init_loss: float
    step_size: float
    curvature: float
    grad_norm: float
    t_conf: float
    t_conf_se: float
    below: bool
    seconds: float


def _potential(posterior: TemperedPosterior, w):
    return -logdensity_and_loss(posterior, w)[0]


@jax.jit
def baseline(posterior: TemperedPosterior, w) -> jax.Array:
    """``L_n(w)`` on the full data."""
    return full_loss(posterior, w)


@jax.jit
def curvature_and_gradient(posterior: TemperedPosterior, w, key):
    """Spectral radius of ∇²U at ``w`` (50 power iterations on Hessian-vector
    products, ``U = −log p``) and ``‖∇ nβ L_n(w)‖``. The radius, not the largest
    signed eigenvalue: at a saddle the most negative curvature limits the step too."""
    flat, unravel = ravel_pytree(w)

    def u(f):
        return _potential(posterior, unravel(f))

    def body(v, _):
        hv = jax.jvp(jax.grad(u), (flat,), (v,))[1]
        return hv / (jnp.linalg.norm(hv) + 1e-30), jnp.vdot(v, hv)

    v0 = jax.random.normal(key, flat.shape, flat.dtype)
    _, eigs = jax.lax.scan(body, v0 / jnp.linalg.norm(v0), None, length=50)
    g = jax.grad(lambda f: posterior.nbeta * full_loss(posterior, unravel(f)))(flat)
    return jnp.abs(eigs[-1]), jnp.linalg.norm(g)


@jax.jit
def _tconf_terms(posterior: TemperedPosterior, positions, key):
    """``‖∇U‖²`` and a Hutchinson estimate of ``ΔU`` at each position (leading axis)."""

    def one(w, k):
        g = jax.grad(lambda v: _potential(posterior, v))(w)
        g2 = sum(jnp.sum(x * x) for x in jax.tree.leaves(g))
        leaves, tree = jax.tree.flatten(w)
        keys = jax.random.split(k, len(leaves))
        zs = [
            jax.random.rademacher(kk, (PROBES,) + x.shape).astype(x.dtype)
            for kk, x in zip(keys, leaves)
        ]

        def quad(i):
            z = jax.tree.unflatten(tree, [x[i] for x in zs])
            hz = jax.jvp(jax.grad(lambda v: _potential(posterior, v)), (w,), (z,))[1]
            return sum(
                jnp.sum(a * b) for a, b in zip(jax.tree.leaves(z), jax.tree.leaves(hz))
            )

        return g2, jnp.mean(jax.vmap(quad)(jnp.arange(PROBES)))

    m = jax.tree.leaves(positions)[0].shape[0]
    keys = jax.random.split(key, m)
    return jax.lax.map(lambda a: one(*a), (positions, keys))


def configurational_temperature(key, posterior, positions) -> tuple[float, float]:
    """``T_conf = mean ‖∇U‖² / mean ΔU`` over ``positions`` (leading axes chain,
    draw) and its delta-method standard error (as
    :func:`~slt_sampler.samplers.calibrate.configurational_temperature`, compiled
    once per shape)."""
    flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), positions)
    g2, lap = (np.asarray(a, np.float64) for a in _tconf_terms(posterior, flat, key))
    ratio = g2.mean() / lap.mean()
    cov = np.cov(np.stack([g2, lap])) / len(g2)
    grad = np.array([1 / lap.mean(), -g2.mean() / lap.mean() ** 2])
    return float(ratio), float(np.sqrt(max(grad @ cov @ grad, 0.0)))


def checkpoint_llc(
    rng_key,
    posterior: TemperedPosterior,
    step_size: float,
    *,
    batch_size: int | None,
    num_chains: int,
    num_steps: int,
    burn_in: int,
) -> CheckpointLLC:
    """SGLD chains at ``w* = posterior.center`` with ``step_size``; λ̂ with its
    error budget (MCSE, step-size bias from ``T_conf`` of the kept positions, drift).

    ``num_steps`` must be a multiple of :data:`KEPT`."""
    k_curv, k_run, k_t = jax.random.split(rng_key, 3)
    w_star = posterior.center
    init_loss = float(baseline(posterior, w_star))
    if not np.isfinite(init_loss):
        raise ValueError(
            f"L_n = {init_loss} at a checkpoint: loglik_fn is NaN/inf there. Check the "
            "checkpoints (a diverged training run?)."
        )
    h, g = (float(v) for v in curvature_and_gradient(posterior, w_star, k_curv))
    smp = SGLD(jnp.asarray(step_size, jnp.float32), batch_size)
    res = sample(
        k_run,
        smp,
        posterior,
        w_star,
        num_chains=num_chains,
        num_steps=num_steps,
        thinning=num_steps // KEPT,
        keep_positions=True,
        progress=False,
    )
    _raise_if_diverged(res, smp)
    trace = init_loss + res.stats["loss_diff"]
    kept = trace[:, burn_in:]
    result = llc(kept, init_loss, n=posterior.n, beta=float(posterior.beta))
    half = jax.tree.map(lambda x: x[:, KEPT // 2 :], res.positions)
    t_conf, t_se = configurational_temperature(k_t, posterior, half)
    result = with_error_budget(result, error_budget(result, kept, (t_conf, t_se)))
    below = chains_below(kept, init_loss, result.llc_per_chain_mcse / result.nbeta)
    return CheckpointLLC(
        result,
        trace,
        init_loss,
        float(step_size),
        h,
        g,
        t_conf,
        t_se,
        bool(below) or result.llc < 0,
        res.run_seconds + res.compile_seconds,
    )
