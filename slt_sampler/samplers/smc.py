"""Adaptive tempered sequential Monte Carlo: the free energy from the prior upwards.

Particles drawn from the prior φ (β = 0) are moved through a ladder of tempered
posteriors ``p_λ ∝ φ(w) exp(λ ℓ(w))``, ``ℓ(w) = -nβ L_n(w) - (γ/2)‖w - w*‖²``,
``0 = λ_0 < λ_1 < … < λ_K = 1`` (so the inverse temperature runs over
``β_k = λ_k β``). Each rung is chosen adaptively so that the incremental weights
``exp((λ_{k+1} - λ_k) ℓ)`` keep an effective sample size of ``target_ess · N``
(Jasra et al. 2011; Del Moral, Doucet & Jasra 2006), and the particles are moved by
HMC at each rung. The evidence is the product of the mean incremental weights,

.. math::

    \\log \\hat Z_n(\\beta) = \\sum_{k=0}^{K-1}
        \\log \\frac{1}{N}\\sum_{i=1}^N e^{(\\lambda_{k+1}-\\lambda_k)\\,\\ell(w_i^{(k)})},
    \\qquad F_n(\\beta) = -\\log Z_n(\\beta),

an unbiased estimate of ``Z`` (not of ``log Z``) for a fixed ladder. The same sum is a
Riemann–Stieltjes form of thermodynamic integration ``F_n = ∫_0^1 E_β[nL_n] dβ``
(Watanabe 2013, §2). The BlackJAX ``adaptive_tempered_smc`` kernel does the
reweighting, resampling and moves; this module chooses the HMC step and mass matrix
at every rung from the current particles, runs several independent replicas and
reports their spread.

**Error bar.** ``sigma`` is the standard deviation of ``-log Ẑ`` over the independent
runs divided by ``√num_runs``. It is an honest error of the mean only if the runs are
unbiased. ``log Ẑ`` is biased low (Jensen: ``E log Ẑ ≤ log Z``), by about half its
per-run variance when that variance is small, and more when the inner HMC moves do not
reach equilibrium at each rung. Keep the per-run spread well below 1 nat (more
particles) so the bias is small next to ``sigma``. With R runs, ``sigma`` itself has
only R − 1 degrees of freedom: ``(F̂ − F)/sigma`` follows a Student t, so a ±3σ band
covers the truth 94 % of the time for R = 4 and 98 % for R = 8.

A proper, normalised prior is required (``F_n(0) = 0``); a flat prior is rejected
(:func:`slt_sampler.posterior._prior.check_proper_prior`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.smc import resampling
from blackjax.smc.tempered import TemperedSMCState
from jax.flatten_util import ravel_pytree

from .. import _validate
from ..posterior._checks import check_point
from ..posterior._prior import check_proper_prior
from ..posterior.base import (
    TemperedPosterior,
    check_posterior,
    full_loss,
    localization_term,
)
from ..types import Array, PRNGKey, PyTree

TARGET_ACCEPTANCE = 0.9  # HMC acceptance the per-rung step size is steered to
STEP_SIZE_GAIN = 2.0  # log step size += gain · (acceptance − target), once per rung
JITTER = 0.2  # each particle's step ε and path length T are × U(1 − j, 1 + j)

PRIOR_SAMPLER = (
    "prior_sampler(rng_key, num) must return a pytree of draws from the prior with a "
    "leading axis of size num = {num}; {detail}. Write it as e.g. "
    "lambda key, num: jax.random.normal(key, (num, d)) * s for a N(0, s² I) prior."
)


class SMCResult(NamedTuple):
    """Output of :func:`tempered_smc` (``R = num_runs`` independent runs).

    Attributes
    ----------
    free_energy : Array ()
        ``mean_r(-log Ẑ_r)``, the estimate of ``F_n(β) = -log Z_n(β)``; NaN if a run
        did not reach ``posterior.beta`` within ``max_stages`` rungs.
    sigma : Array ()
        ``sd_r(-log Ẑ_r) / √R``, its Monte-Carlo standard error (see the module note on
        bias).
    log_evidence : Array (R,)
        ``log Ẑ_r`` of every run.
    log_increments : Array (R, max_stages)
        Each rung's ``log mean_i exp((λ_{k+1} - λ_k) ℓ(w_i))`` (NaN padding); their
        sum is ``log Ẑ_r``.
    betas : Array (R, max_stages + 1)
        Each run's ladder of inverse temperatures ``β_k = λ_k β``, from 0 to
        ``posterior.beta``, padded with NaN.
    num_stages : Array (R,)
        Number of rungs ``K`` each run took.
    acceptance_rate : Array (R, max_stages)
        Mean HMC acceptance at each rung (NaN padding).
    step_size : Array (R, max_stages)
        HMC step size (in units of the particle covariance) used at each rung.
    particles : pytree (R, N, ...)
        Final particles of every run at ``posterior.beta``, resampled to equal
        weights (one rung's MCMC moves short of fully rejuvenated).
    reached_target : Array (R,) bool
        Whether each run reached λ = 1 within ``max_stages`` rungs.
    """

    free_energy: Array
    sigma: Array
    log_evidence: Array
    log_increments: Array
    betas: Array
    num_stages: Array
    acceptance_rate: Array
    step_size: Array
    particles: PyTree
    reached_target: Array


def tempered_smc(
    rng_key: PRNGKey,
    posterior: TemperedPosterior,
    prior_sampler: Callable[[PRNGKey, int], PyTree],
    *,
    num_particles: int = 1000,
    num_mcmc_steps: int = 10,
    trajectory_length: float = 1.6,
    target_ess: float = 0.5,
    num_runs: int = 4,
    max_stages: int = 500,
) -> SMCResult:
    """Free energy ``F_n(β) = -log Z_n(β)`` by adaptive tempered SMC from the prior.

    Parameters
    ----------
    rng_key
        PRNG key; split into one key per run.
    posterior
        The target; its ``logprior_fn`` must be a normalised log density φ (a flat
        prior is rejected), and ``prior_sampler`` must draw from that same φ.
    prior_sampler
        ``prior_sampler(rng_key, num) -> pytree`` of ``num`` independent draws from
        φ, each leaf with a leading axis ``num`` (shaped like the parameters after it).
    num_particles
        Particles ``N`` per run (at least 2; the error falls like ``1/√N``).
    num_mcmc_steps
        HMC steps applied to every particle at every rung.
    trajectory_length
        HMC path length ``T`` in units of the particle spread (whitened coordinates);
        each particle takes ``⌈T'/ε'⌉`` leapfrog steps with ``T'``, ``ε'`` jittered
        by ±20 %. About π/2 decorrelates a Gaussian in one step; a length near a
        multiple of π would not move it at all.
    target_ess
        The ESS fraction in (0, 1) each rung keeps; higher means more, closer rungs.
    num_runs
        Independent runs (at least 2) behind the error bar.
    max_stages
        Maximum number of rungs (static buffer size); runs that need more are flagged.

    Returns
    -------
    SMCResult

    Notes
    -----
    At every rung the HMC inverse mass matrix is the weighted particle covariance
    (full when ``N ≥ 4d``, else its diagonal) and the step size is steered towards an
    acceptance of 0.9 from the previous rung's acceptance (a lower acceptance rejects
    the particles in the tails and leaves them behind); step and path length are
    jittered per particle (±20 %) against periodic trajectories (Neal 2011, §5.4).
    Inside one run the tuning depends on the particles only through earlier rungs,
    as adaptive SMC allows. Sums are in the posterior's dtype (float32 by default):
    ``log Ẑ`` carries a rounding error of a few ``ε₃₂ |F|`` (~0.005 nats at
    ``|F| = 10⁴``) that ``sigma`` does not include.

    Imperfect mixing at each rung biases ``log Ẑ`` low by an amount that grows like
    ``d · (number of rungs) / N`` and that the spread over runs does not show.
    Measured on an isotropic Gaussian with d = 50 and a likelihood precision of 10⁴
    (59 rungs): +2.5 nats in F with 1000 particles, 5 steps and a path length of
    1.5 ± 50 %; +1.1 with π/2 ± 20 %; +0.19 with 2000 particles and 10 steps. On a
    conjugate regression with d = 10, n = 10⁴ (28 rungs, defaults, 8 runs) the bias of
    F was +1.3 nats with 64 particles (4.6 σ), +0.22 with 256 (2.4 σ) and +0.03 with
    1000 (0.9 σ). A hard-walled prior (uniform on an interval) slows the moves at the
    early rungs: there 10 steps left +0.02 nats (4.5 σ of a very small σ), 30 did
    not.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, math
    >>> from slt_sampler import tempered_posterior
    >>> x = jnp.linspace(-1.0, 1.0, 20)
    >>> post = tempered_posterior(
    ...     lambda w, b: -0.5 * (b - w[0]) ** 2 - 0.5 * math.log(2 * math.pi),
    ...     x,
    ...     logprior_fn=lambda w: -0.5 * jnp.sum(w**2) - 0.5 * math.log(2 * math.pi),
    ...     beta=1.0,
    ...     center=jnp.zeros(1),
    ... )
    >>> res = tempered_smc(
    ...     jax.random.key(0), post, lambda k, m: jax.random.normal(k, (m, 1)),
    ...     num_particles=200,
    ... )
    >>> bool(res.sigma < 0.1)
    True
    """
    _validate.check_key("rng_key", rng_key)
    check_posterior(posterior)
    num_particles = _validate.check_int("num_particles", num_particles, minimum=2)
    num_mcmc_steps = _validate.check_int("num_mcmc_steps", num_mcmc_steps)
    _validate.check_positive(
        "trajectory_length", trajectory_length, "About π/2 suits most targets."
    )
    num_runs = _validate.check_int("num_runs", num_runs, minimum=2)
    max_stages = _validate.check_int("max_stages", max_stages)
    _validate.check_unit_interval(
        "target_ess",
        target_ess,
        "It is a fraction of the particles; 0.5 is the usual choice (higher: more, "
        "closer rungs).",
    )
    target_ess = float(target_ess)
    if not callable(prior_sampler):
        raise TypeError(
            "prior_sampler must be a function (rng_key, num) -> draws from the prior, "
            f"got {type(prior_sampler).__name__}."
        )
    init_key, run_key = jax.random.split(rng_key)
    init = _draw_prior(init_key, posterior, prior_sampler, num_particles, num_runs)
    check_proper_prior(posterior, jax.tree.map(lambda x: x[0, 0], init))
    dim = ravel_pytree(jax.tree.map(lambda x: x[0, 0], init))[0].size
    run = _build_run(
        num_mcmc_steps,
        float(trajectory_length),
        target_ess,
        max_stages,
        full_mass=num_particles >= 4 * dim,
    )
    keys = jax.random.split(run_key, num_runs)
    out = jax.jit(jax.vmap(run, in_axes=(0, None, 0)))(keys, posterior, init)
    incs, lambdas, num_stages, acc, eps, particles, done = out
    log_z = jnp.nansum(incs, axis=1)
    neg = -log_z
    sigma = jnp.std(neg, ddof=1) / jnp.sqrt(num_runs)
    free_energy = jnp.where(jnp.all(done), jnp.mean(neg), jnp.nan)
    return SMCResult(
        free_energy=free_energy,
        sigma=sigma,
        log_evidence=log_z,
        log_increments=incs,
        betas=lambdas * posterior.beta,
        num_stages=num_stages,
        acceptance_rate=acc,
        step_size=eps,
        particles=particles,
        reached_target=done,
    )


def _draw_prior(rng_key, posterior, prior_sampler, num_particles, num_runs):
    """Call ``prior_sampler`` once per run (eagerly) and check what it returns."""
    draws = [
        prior_sampler(k, num_particles) for k in jax.random.split(rng_key, num_runs)
    ]
    first = draws[0]
    leaves = jax.tree.leaves(first)
    if not leaves:
        raise ValueError(PRIOR_SAMPLER.format(num=num_particles, detail="got nothing"))
    for leaf in leaves:
        shape = np.shape(leaf)
        if not shape or shape[0] != num_particles:
            raise ValueError(
                PRIOR_SAMPLER.format(
                    num=num_particles, detail=f"got a leaf of shape {shape}"
                )
            )
    if posterior.center is not None:
        try:
            _validate.check_same_tree(
                "prior_sampler output",
                first,
                "the posterior's center",
                posterior.center,
                leading_axes=1,
            )
        except ValueError as err:
            raise ValueError(
                PRIOR_SAMPLER.format(num=num_particles, detail=str(err))
            ) from err
    stacked = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *draws)
    check_point(posterior, stacked, "prior_sampler output", leading_axes=2)
    return stacked


def _loglik_fn(posterior):
    """The tempered part ``ℓ(w) = -nβ L_n(w) - (γ/2)‖w - w*‖²``."""
    return lambda w: (
        -posterior.nbeta * full_loss(posterior, w) - localization_term(posterior, w)
    )


def _build_run(num_mcmc_steps, trajectory_length, target_ess, max_stages, *, full_mass):
    """One SMC run ``run(rng_key, posterior, particles)`` as a ``lax.while_loop``."""

    def run(rng_key, posterior, particles):
        kernel = _kernel(posterior, target_ess)
        flat0 = jax.vmap(lambda p: ravel_pytree(p)[0])(particles)
        num, dim = flat0.shape
        dtype = flat0.dtype
        nan = jnp.full((max_stages,), jnp.nan, dtype)
        carry0 = (
            TemperedSMCState(
                particles, jnp.full((num,), 1.0 / num, dtype), jnp.zeros((), dtype)
            ),
            rng_key,
            jnp.asarray(-0.25 * np.log(dim), dtype),  # log ε: ε = d^{-1/4}
            jnp.asarray(0, jnp.int32),
            nan,
            jnp.full((max_stages + 1,), jnp.nan, dtype).at[0].set(0.0),
            nan,
            nan,
        )

        def cond(carry):
            state, _, _, i, *_ = carry
            return (state.tempering_param < 1.0) & (i < max_stages)

        def body(carry):
            state, key, log_eps, i, incs, lambdas, accs, epss = carry
            key, k_jit, k_step = jax.random.split(key, 3)
            imm = _inverse_mass(state, full_mass)
            jitter = jax.random.uniform(
                k_jit, (2, num), dtype, 1.0 - JITTER, 1.0 + JITTER
            )
            step_size = jnp.exp(log_eps) * jitter[0]
            length = trajectory_length * jitter[1]
            params = {
                "step_size": step_size,
                "num_integration_steps": jnp.ceil(length / step_size).astype(jnp.int32),
                "inverse_mass_matrix": imm[None],
            }
            new, info = kernel(k_step, state, num_mcmc_steps, params)
            acc = jnp.mean(info.update_info.acceptance_rate)
            acc = jnp.where(jnp.isfinite(acc), acc, 0.0)
            return (
                new,
                key,
                log_eps + STEP_SIZE_GAIN * (acc - TARGET_ACCEPTANCE),
                i + 1,
                incs.at[i].set(info.log_likelihood_increment),
                lambdas.at[i + 1].set(new.tempering_param),
                accs.at[i].set(acc),
                epss.at[i].set(jnp.exp(log_eps)),
            )

        state, key, _, i, incs, lambdas, accs, epss = jax.lax.while_loop(
            cond, body, carry0
        )
        idx = resampling.systematic(key, state.weights, num)
        final = jax.tree.map(lambda x: x[idx], state.particles)
        done = state.tempering_param >= 1.0
        return incs, lambdas, i, accs, epss, final, done

    return run


def _kernel(posterior, target_ess):
    hmc_step = blackjax.hmc.build_kernel()

    def step(
        rng_key,
        state,
        logdensity_fn,
        step_size,
        num_integration_steps,
        inverse_mass_matrix,
    ):
        return hmc_step(
            rng_key,
            state,
            logdensity_fn,
            step_size,
            inverse_mass_matrix,
            jnp.maximum(num_integration_steps, 1),
        )

    return blackjax.adaptive_tempered_smc.build_kernel(
        posterior.logprior_fn,
        _loglik_fn(posterior),
        step,
        blackjax.hmc.init,
        resampling.systematic,
        target_ess,
    )


def _inverse_mass(state, full_mass: bool) -> Array:
    """Weighted particle covariance (full or diagonal), with a small ridge."""
    flat = jax.vmap(lambda p: ravel_pytree(p)[0])(state.particles)
    w = state.weights.astype(flat.dtype)
    mean = w @ flat
    centred = flat - mean[None, :]
    if full_mass:
        cov = (centred * w[:, None]).T @ centred
        ridge = 1e-6 * jnp.mean(jnp.diag(cov)) + jnp.finfo(flat.dtype).tiny
        return cov + ridge * jnp.eye(flat.shape[1], dtype=flat.dtype)
    var = w @ centred**2
    return var + 1e-6 * jnp.mean(var) + jnp.finfo(flat.dtype).tiny
