"""Choose SGLD's step size from a measurable signal, not by hand.

The signal is the **configurational temperature** (Rickayzen & Powles 2001; Jepps et
al. 2000), an exact identity of the target: for ``p ∝ exp(-U)`` vanishing at infinity,

.. math:: \\mathbb{E}_p\\big[\\lVert\\nabla U\\rVert^2\\big] = \\mathbb{E}_p[\\Delta U],
          \\qquad T_{\\mathrm{conf}} = \\frac{\\mathbb{E}[\\lVert\\nabla U\\rVert^2]}
          {\\mathbb{E}[\\Delta U]} = 1 .

Samples of a biased sampler are "hotter": for unadjusted Langevin with step ε on a
Gaussian with curvatures ``h_i``, ``T_conf - 1 ≈ (ε/2) Σh_i² / Σh_i``, which bounds the
relative bias of ``E[U] - U_min`` (≈ ``(ε/2)·mean h_i``) from above. Minibatch gradient
noise heats the chain too and shows up the same way. ``∇U`` uses the full data and
``ΔU`` Hutchinson's estimator (Rademacher probes of Hessian-vector products), both at
positions the SGLD chains visited.

Procedure (:func:`calibrate_sgld`): estimate the largest Hessian eigenvalue at ``w*`` by
power iteration, start from ε₀ = 2·tol/h_max; for each trial step size run a short
pilot, re-measure the largest curvature where the chains went (it can be far larger
than at a singular w*), then run trial chains from there, measure ``T_conf``, and
shrink ε (proportionally to the measured excess) until ``|T_conf - 1| <= tol`` with no
divergence. Every trial is reported.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .. import _validate
from ..posterior._checks import check_point
from ..posterior.base import TemperedPosterior, check_posterior, logdensity
from ..types import PRNGKey, PyTree
from .run import sample
from .sgld import SGLD

_KEPT = 100  # positions per chain on which T_conf is measured (second half of a trial)
_PILOT = 2000  # steps of the pilot run that precedes each trial
POSITION_BYTES = 64 * 2**20  # memory budget of the positions a T_conf is measured on


def positions_to_keep(position: PyTree, num_chains: int, wanted: int) -> int:
    """Positions per chain to measure ``T_conf`` on: ``wanted``, fewer (at least 10) if
    ``num_chains`` chains of them would exceed ``POSITION_BYTES`` (``position``: one
    parameter point, no chain axis). On a 10⁶-parameter network 200 positions per
    chain of 4 chains are 3.2 GB; without this cap its calibration grew past 16 GB
    (a longer trial keeps more). The T_conf of such a network, an average over 10⁶
    coordinates, is precise on a few positions."""
    size = sum(
        np.size(x) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(position)
    )
    return int(min(wanted, max(10, POSITION_BYTES // max(size * num_chains, 1))))


class CalibrationConfig(NamedTuple):
    """Settings of :func:`calibrate_sgld` (as taken by ``estimate_llc(calibration=...)``).

    Attributes
    ----------
    num_steps : int
        Minimum length of each trial run.
    tolerance : float
        Allowed ``|T_conf - 1|``.
    max_trials : int
        Step sizes tried before giving up.
    init_step_size : float or None
        First step size to try (default ``2·tolerance / h_max``).
    """

    num_steps: int = 5000
    tolerance: float = 0.03
    max_trials: int = 8
    init_step_size: float | None = None


class CalibrationTrial(NamedTuple):
    """One trial step size and what it measured."""

    step_size: float
    configurational_temperature: float
    configurational_temperature_se: float
    llc: float
    diverged: bool
    accepted: bool


class Calibration(NamedTuple):
    """The chosen step size and the evidence for it (``passed``: whether any trial
    met the tolerance; if not, ``step_size`` is the last one tried)."""

    step_size: float
    configurational_temperature: float
    tolerance: float
    max_curvature: float
    trials: tuple
    reason: str
    passed: bool = True


def check_config(config: CalibrationConfig) -> None:
    """Raise ``TypeError``/``ValueError`` naming the bad field of ``config``."""
    if not isinstance(config, CalibrationConfig):
        raise TypeError(
            f"calibration must be a CalibrationConfig, got {type(config).__name__}: "
            "pass CalibrationConfig(num_steps=..., tolerance=...)."
        )
    _validate.check_int("num_steps", config.num_steps, minimum=100)
    _validate.check_int("max_trials", config.max_trials)
    tol = _validate.as_numbers("tolerance", config.tolerance)
    if tol is None or tol.shape != () or not 0 < float(tol) < 1:
        raise ValueError(
            f"tolerance must be a number in (0, 1), got {config.tolerance!r}; 0.03 "
            "allows |T_conf - 1| <= 3%."
        )
    _validate.check_positive(
        "init_step_size", config.init_step_size, "or None for 2·tolerance/h_max."
    )


def _potential(posterior: TemperedPosterior, unravel):
    return lambda flat: -logdensity(posterior, unravel(flat))


def max_curvature(
    rng_key: PRNGKey,
    posterior: TemperedPosterior,
    position: PyTree,
    *,
    num_iters: int = 50,
    batch_ndims: int = 0,
    metric: PyTree | None = None,
) -> float:
    """Largest eigenvalue of the Hessian of ``U = -log p`` at ``position`` (power
    iteration on full-data Hessian-vector products); with ``batch_ndims = 1`` the
    maximum over a leading axis of positions. With a constant diagonal ``metric`` G
    (a pytree like one position) it is that of ``G^{1/2} ∇²U G^{1/2}``, the
    curvature a step preconditioned by G sees."""
    scale = None
    if metric is not None:
        scale = jnp.sqrt(ravel_pytree(metric)[0])
    if batch_ndims == 0:
        return float(_power(posterior, position, rng_key, scale, num_iters))
    n = jax.tree.leaves(position)[0].shape[0]
    keys = jax.random.split(rng_key, n)
    return float(jnp.max(_power_batch(posterior, position, keys, scale, num_iters)))


@functools.partial(jax.jit, static_argnames=("num_iters",))
def _power(posterior, position, key, scale, num_iters):
    """Power iteration on Hessian-vector products of ``U`` at ``position``, in the
    metric ``scale²`` (``None``: the identity); module-level and taking the posterior
    as an argument: compiled once per shape."""
    flat, unravel = ravel_pytree(position)
    u = _potential(posterior, unravel)
    s = jnp.ones_like(flat) if scale is None else scale.astype(flat.dtype)

    def body(v, _):
        hv = s * jax.jvp(jax.grad(u), (flat,), (s * v,))[1]
        return hv / (jnp.linalg.norm(hv) + 1e-30), jnp.vdot(v, hv)

    v0 = jax.random.normal(key, flat.shape, flat.dtype)
    _, eigs = jax.lax.scan(body, v0 / jnp.linalg.norm(v0), None, length=num_iters)
    return eigs[-1]


@functools.partial(jax.jit, static_argnames=("num_iters",))
def _power_batch(posterior, positions, keys, scale, num_iters):
    return jax.vmap(lambda w, k: _power(posterior, w, k, scale, num_iters))(
        positions, keys
    )


def configurational_temperature(
    rng_key: PRNGKey,
    posterior: TemperedPosterior,
    positions: PyTree,
    *,
    like: PyTree | None = None,
    num_probes: int = 8,
    metric: PyTree | None = None,
    by_chain: bool = False,
) -> tuple[float, float]:
    """``T_conf = mean ‖∇U‖² / mean ΔU`` over ``positions`` (any leading axes), and its
    delta-method standard error. 1 at the exact target.

    With ``by_chain`` (positions with a leading chain axis) the SE is the larger of
    that one and the one from the chains' own means (batch means: honest when the
    positions of a chain are autocorrelated, e.g. a short run at a small step).

    With a constant diagonal ``metric`` G (a pytree like the parameters, e.g. a
    frozen pSGLD preconditioner) it is ``mean ∇U·G∇U / mean tr(G∇²U)``, also 1 at the
    target by the same integration by parts."""
    check_posterior(posterior)
    _validate.check_int("num_probes", num_probes)
    like = posterior.center if like is None else like
    if like is None:
        raise ValueError(
            "configurational_temperature needs the parameter shapes: pass like=w (one "
            "position without leading axes) or use a posterior with a centre."
        )
    _, unravel = ravel_pytree(like)
    lead = np.ndim(jax.tree.leaves(positions)[0]) - np.ndim(jax.tree.leaves(like)[0])
    _validate.check_same_tree("positions", positions, "like", like, max(lead, 0))
    _validate.check_finite_tree("positions", positions)
    flats = jax.vmap(lambda w: ravel_pytree(w)[0])(
        jax.tree.map(lambda x: x.reshape((-1,) + x.shape[lead:]), positions)
    )
    u = _potential(posterior, unravel)
    diag = None if metric is None else ravel_pytree(metric)[0]

    @jax.jit
    def stats(flats, key):
        def one(f, k):
            g = jax.grad(u)(f)
            z = jax.random.rademacher(k, (num_probes,) + f.shape).astype(f.dtype)
            hz = jax.vmap(lambda v: jax.jvp(jax.grad(u), (f,), (v,))[1])(z)
            if diag is not None:
                gd, zd = g * diag.astype(f.dtype), z * diag.astype(f.dtype)[None]
                return jnp.sum(gd * g), jnp.mean(jnp.sum(zd * hz, axis=1))
            return jnp.sum(g * g), jnp.mean(jnp.sum(z * hz, axis=1))

        keys = jax.random.split(key, flats.shape[0])
        return jax.lax.map(lambda a: one(*a), (flats, keys))

    g2, lap = (np.asarray(a, np.float64) for a in stats(flats, rng_key))
    ratio = g2.mean() / lap.mean()
    se = _ratio_se(g2, lap)
    if by_chain and lead >= 1:
        chains = np.shape(jax.tree.leaves(positions)[0])[0]
        if chains >= 2:
            per = [a.reshape(chains, -1).mean(axis=1) for a in (g2, lap)]
            se = max(se, _ratio_se(*per))
    return float(ratio), se


def _ratio_se(g2: np.ndarray, lap: np.ndarray) -> float:
    """Delta-method SE of ``mean(g2) / mean(lap)`` from paired samples."""
    m = len(g2)
    cov = np.cov(np.stack([g2, lap])) / m
    grad = np.array([1 / lap.mean(), -g2.mean() / lap.mean() ** 2])
    return float(np.sqrt(max(grad @ cov @ grad, 0.0)))


def shrink_factor(t_conf: float, tolerance: float) -> float:
    """Factor for a step whose chains ran hot (``T_conf > 1``): proportional to the
    measured excess, ``clip(0.8·tolerance/(T_conf − 1), 0.1, 0.7)``."""
    return float(np.clip(0.8 * tolerance / (t_conf - 1), 0.1, 0.7))


def calibrate_sgld(
    rng_key: PRNGKey,
    posterior: TemperedPosterior,
    position: PyTree,
    *,
    batch_size: int | None,
    num_chains: int = 4,
    num_steps: int = 5000,
    tolerance: float = 0.03,
    max_trials: int = 8,
    init_step_size: float | None = None,
    preconditioned=None,
    sampler_for=None,
    progress: bool | None = False,
) -> Calibration:
    """Pick the largest SGLD step size whose chains pass ``|T_conf - 1| <= tolerance``.

    Parameters
    ----------
    rng_key
        PRNG key.
    posterior
        The (localised) target; ``position`` is usually its centre ``w*``.
    batch_size
        The minibatch size the production run will use (gradient noise heats chains).
    num_chains, num_steps
        Minimum size of each trial run; trials last at least 200 stiff relaxation
        times ``1/(ε h_max)``, and ``T_conf`` is measured on their second half.
    tolerance
        Allowed ``|T_conf - 1|``, measured to a standard error <= tolerance/3. In
        the Gaussian (regular) case the relative bias of λ̂ is about ``T_conf - 1``;
        on the singular DLN of issue #2 it was 0.25-0.6 times that (measured).
    max_trials
        Step sizes tried before giving up (then the smallest tried is returned, with
        ``reason`` saying it did not pass).
    init_step_size
        First step size to try (default ``2·tolerance / h_max``).
    preconditioned
        A :class:`~slt_sampler.samplers.psgld.PSGLD` with a frozen preconditioner
        (``adapt_steps=0`` and ``square_avg`` set, e.g. from
        :func:`~slt_sampler.samplers.psgld.rmsprop_preconditioner`): its step size is
        calibrated instead of SGLD's, with ``h_max`` and ``T_conf`` measured in its
        metric G (:func:`configurational_temperature` with ``metric=G``).
    progress
        Progress bars of the trials' runs, as in :func:`~slt_sampler.sample`
        (``None``: on a terminal). On a 10⁶-parameter network a trial takes minutes.
    """
    check_config(CalibrationConfig(num_steps, tolerance, max_trials, init_step_size))
    check_posterior(posterior)
    if batch_size is not None:
        _validate.check_int("batch_size", batch_size)
    _validate.check_int("num_chains", num_chains)
    check_point(posterior, position, "position")
    metric = None
    if preconditioned is not None:
        from .psgld import frozen_metric  # it imports this module

        metric = frozen_metric(preconditioned, posterior)

    def make(e):
        if sampler_for is not None:
            return sampler_for(e)
        if preconditioned is None:
            return SGLD(jnp.asarray(e), batch_size)
        return dataclasses.replace(preconditioned, step_size=jnp.asarray(e))

    k_curv, k_run = jax.random.split(rng_key)
    h_max = max_curvature(k_curv, posterior, position, metric=metric)
    if not np.isfinite(h_max) or h_max <= 0:
        raise ValueError(
            f"the Hessian of -log p at the start has largest eigenvalue {h_max}; the "
            "posterior is not locally confining there. Use gamma > 0 (localisation) "
            "or start at a local minimum of L_n."
        )
    eps = init_step_size if init_step_size is not None else 2 * tolerance / h_max
    scale0 = min(eps * h_max, 2 * tolerance)
    trials = []
    longer = 1
    for i in range(max_trials):
        k_run, k_p, k_h, k_s, k_t = jax.random.split(k_run, 5)
        # pilot: where do chains at this step size go, and how curved is it there?
        # (at a singular w* the curvature can be far lower than a step away)
        pilot = sample(
            k_p,
            make(eps),
            posterior,
            position,
            num_chains=num_chains,
            num_steps=_PILOT,
            thinning=_PILOT,
            keep_positions=True,
            progress=progress,
        )
        if pilot.diverged.any():
            trials.append(
                CalibrationTrial(
                    float(eps), float("inf"), float("nan"), float("nan"), True, False
                )
            )
            eps *= 0.1
            continue
        starts = jax.tree.map(lambda x: x[:, -1], pilot.positions)
        h_max = max(
            h_max,
            max_curvature(k_h, posterior, starts, batch_ndims=1, metric=metric),
        )
        if eps * h_max > (8 * tolerance if sampler_for is None else 2 * scale0):
            # far outside the stable, low-bias range: SGLD's 2·tolerance/h_max, or
            # the first step's ε·h_max for another sampler once the curvature where
            # the pilot went is twice its first reading (BAOAB: without this, the
            # depth-4 and depth-6 10⁴ DLNs ended at T_conf 5.6 and 28.6, unstable in
            # places; with it they read 762.8 ± 5.9 and 542.1 ± 4.8)
            eps = (2 * tolerance if sampler_for is None else scale0) / h_max
            continue
        # keep positions one stiff relaxation time apart (SGLD: 1/(ε h_max); other
        # samplers say theirs), so the T_conf sample is close to independent
        # whatever the step size
        relax = getattr(make(eps), "relaxation_steps", None)
        stiff = relax(h_max) if relax is not None else 1.0 / (eps * h_max)
        thin = int(np.clip(np.ceil(stiff), num_steps // (2 * _KEPT), 2000))
        # the positions that fit in memory, one stiff relaxation time apart; a
        # T_conf not precise enough on them (SE > tolerance/3) runs longer. (Before,
        # a large model ran as many steps as _KEPT positions would have needed,
        # thinned further: 40,000-step trials that took 24 minutes at 10⁶
        # parameters, where T_conf, an average over 10⁶ coordinates, is precise on
        # a few positions.)
        base = positions_to_keep(position, num_chains, _KEPT)
        kept = positions_to_keep(position, num_chains, _KEPT * longer)
        thinning = -(-thin * base * longer // kept)
        res = sample(
            k_s,
            make(eps),
            posterior,
            starts,
            num_chains=num_chains,
            num_steps=2 * kept * thinning,
            thinning=thinning,
            keep_positions=True,
            progress=progress,
            chains_axis=True,
        )
        diverged = bool(res.diverged.any())
        if diverged:
            t_conf, se, lam = float("inf"), float("nan"), float("nan")
        else:
            half = jax.tree.map(lambda x, k=kept: x[:, k:], res.positions)
            t_conf, se = configurational_temperature(
                k_t, posterior, half, like=position, metric=metric
            )
            lam = float(posterior.nbeta) * float(
                np.mean(res.stats["loss_diff"][:, res.losses.shape[1] // 2 :])
            )
        precise = se <= tolerance / 3
        ok = (not diverged) and precise and abs(t_conf - 1) <= tolerance
        trials.append(CalibrationTrial(float(eps), t_conf, se, lam, diverged, ok))
        if ok:
            reason = (
                f"largest tried step with |T_conf - 1| = {abs(t_conf - 1):.4f} <= "
                f"{tolerance} (largest curvature seen {h_max:.4g}; trial {i + 1})"
            )
            return Calibration(
                float(eps), t_conf, tolerance, h_max, tuple(trials), reason
            )
        if diverged or not np.isfinite(t_conf) or t_conf - 1 > 10 * tolerance:
            eps = eps * 0.1
        elif not precise and longer < 64:
            # too few effective positions to tell (low dimension): measure longer
            longer *= 4
        elif t_conf > 1:
            eps = eps * shrink_factor(t_conf, tolerance)
        else:
            # colder than the target: not yet stationary; run longer at the same step
            longer *= 2
    last = trials[-1] if trials else None
    if last is None or last.diverged:  # never hand on a step that diverged
        step, t_conf, which = float(eps), float("nan"), "the next smaller step"
    else:
        step, t_conf, which = (
            last.step_size,
            last.configurational_temperature,
            "the last",
        )
    reason = (
        f"no step passed |T_conf - 1| <= {tolerance} in {max_trials} trials; returning "
        f"{which} ({step:.3g}, T_conf = {t_conf:.4f})"
    )
    return Calibration(
        step,
        t_conf,
        tolerance,
        h_max,
        tuple(trials),
        reason,
        passed=False,
    )
