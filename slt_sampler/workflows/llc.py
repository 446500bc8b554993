"""``estimate_llc``: calibrate, sample many chains, estimate λ̂, check γ, package.

This is the one call a study needs. It composes the pieces (posterior → calibration →
driver → array estimator → DataTree) and never hides a choice: the result records the
sampler, step size and why it was chosen, β, γ, the burn-in, and how λ̂ moves with γ.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate
from ..estimators import _mcse
from ..estimators.llc import (
    ErrorBudget,
    LLCResult,
    error_budget,
    group_convergence,
    llc,
    with_error_budget,
)
from ..posterior.base import TemperedPosterior, full_loss
from ..samplers.calibrate import (
    Calibration,
    CalibrationConfig,
    calibrate_sgld,
    check_config,
    configurational_temperature,
    max_curvature,
    positions_to_keep,
    shrink_factor,
)
from ..samplers.checks import (
    LLCCheckError,
    MinimumCheck,
    Problem,
    ProblemReport,
    after_run_problems,
    calibration_problems,
    chains_below,
    check_gamma_check,
    check_llc_arguments,
    check_local_minimum,
    clearly_outside,
    minimum_problems,
    temperature_problems,
)
from ..samplers.hmc import MALA, NUTS, default_inverse_mass_matrix, window_adapt
from ..samplers.psgld import PSGLD, frozen_metric, rmsprop_preconditioner
from ..samplers.run import SampleResult, sample
from ..samplers.sgld import SGLD
from ..samplers.underdamped import BAOAB, FRICTION_PER_ROOT_CURVATURE
from ..types import PRNGKey


class ChainDivergenceError(ValueError):
    """Raised instead of returning λ̂ when chains produced NaN/inf.

    Attributes ``chains`` (indices), ``suggested_step_size`` and ``blew_up`` say what
    to do. ``blew_up`` is False when the loss was still of its usual size one step
    before it turned NaN: the chain entered a region where the model's log density is
    NaN/inf (a smaller step only delays that), not a numerical explosion.
    """

    def __init__(self, chains, step_size, suggested, blew_up: bool = True):
        self.chains = [int(c) for c in chains]
        self.step_size = step_size
        self.suggested_step_size = suggested
        self.blew_up = blew_up
        if blew_up:
            advice = (
                f"Try step_size={suggested:.3g} (10x smaller), or let calibration "
                "choose it (step_size=None)."
            )
        else:
            advice = (
                "The loss was of its usual size one step before it turned NaN, so "
                "the chains did not blow up: loglik_fn (or the prior) is NaN/inf in a "
                "region near w* that they entered (a log or sqrt of a negative "
                "number, a division by zero). Make the model finite there (e.g. "
                "reparametrise a positive parameter through exp or softplus)."
            )
        super().__init__(
            f"chains {self.chains} diverged (NaN/inf) at step size {step_size:.3g}; no "
            f"estimate is returned. {advice}"
        )


class LLCEstimate(NamedTuple):
    """Everything :func:`estimate_llc` measured. ``result`` holds λ̂ and its errors."""

    result: LLCResult
    sampler: str
    step_size: float
    batch_size: int | None
    n: int
    beta: float
    gamma: float
    num_chains: int
    num_steps: int
    burn_in: int
    losses: np.ndarray
    loss_kind: str
    calibration: Calibration | None
    gamma_sensitivity: dict
    steps_per_second: float
    compile_seconds: float
    run_seconds: float
    settled: bool = True
    end_configurational_temperature: tuple[float, float] | None = None
    problems: tuple = ()
    center_check: MinimumCheck | None = None
    gamma_sensitivity_mcse: dict | None = None
    error_budget: ErrorBudget | None = None
    tuning: str | None = None
    dispersed: np.ndarray | None = None  # (chain,) True for hot-started chains

    def __repr__(self) -> str:
        from ..diagnostics.summary import llc_summary

        return llc_summary(self)

    __str__ = __repr__

    def to_datatree(self, name: str | None = None):
        """The run as an ArviZ ``DataTree`` (``L_n`` trace in ``sample_stats``; λ̂,
        its errors, per-chain λ̂, the settled flag, the checks and the problems as
        attributes; ``name`` the model's name)."""
        from ..diagnostics.arviz import to_datatree

        attrs = {
            "model": name or "",
            "llc": self.result.llc,
            "llc_mcse": self.result.llc_mcse,
            "llc_sigma": self.result.llc_sigma,
            "llc_bias": self.result.llc_bias,
            "llc_raw": self.result.llc_raw,
            "llc_std": self.result.llc_std,
            "rhat": self.result.rhat,
            "ess": self.result.ess,
            "init_loss": self.result.init_loss,
            "sampler": self.sampler,
            "step_size": self.step_size,
            "n": self.n,
            "beta": self.beta,
            "gamma": self.gamma,
            "burn_in": self.burn_in,
            "loss_kind": self.loss_kind,
            "steps_per_second": self.steps_per_second,
        }
        if self.calibration is not None:
            attrs["calibration"] = self.calibration.reason
        if self.tuning is not None:
            attrs["tuning"] = self.tuning
        if self.end_configurational_temperature is not None:
            t_conf, t_se = self.end_configurational_temperature
            attrs["end_configurational_temperature"] = t_conf
            attrs["end_configurational_temperature_se"] = t_se
        for g, v in self.gamma_sensitivity.items():
            attrs[f"llc_at_gamma_{g:g}"] = v
        for g, v in (self.gamma_sensitivity_mcse or {}).items():
            attrs[f"llc_mcse_at_gamma_{g:g}"] = v
        if self.error_budget is not None:
            for k, v in self.error_budget._asdict().items():
                attrs[f"error_budget_{k}"] = v
        attrs["settled"] = int(self.settled)
        attrs["problems"] = "\n".join(f"[{p.cause}] {p.message}" for p in self.problems)
        if self.center_check is not None:
            attrs["center_gradient_decrement"] = self.center_check.decrement
        dt = to_datatree(self.losses, attrs=attrs)
        stats = dt["sample_stats"].to_dataset()
        stats["llc_per_chain"] = ("chain", np.asarray(self.result.llc_per_chain))
        stats["llc_per_chain_mcse"] = (
            "chain",
            np.asarray(self.result.llc_per_chain_mcse),
        )
        if self.dispersed is not None:
            stats["hot_start"] = ("chain", np.asarray(self.dispersed, dtype=np.int8))
        dt["sample_stats"] = stats
        return dt


def _trace(res: SampleResult, init_loss: float) -> np.ndarray:
    """Per-step L_n estimate: paired-batch for SG samplers, exact for the others."""
    if "loss_diff" in res.stats:
        return init_loss + res.stats["loss_diff"]
    return res.losses


def _tune_mala(rng_key, posterior, position, h_max, num_chains):
    """Step size of MALA for an acceptance rate in [0.5, 0.9] (short trial runs)."""
    eps = 1.0 / h_max
    for _ in range(12):
        rng_key, k = jax.random.split(rng_key)
        res = sample(
            k,
            MALA(jnp.asarray(eps)),
            posterior,
            position,
            num_chains=num_chains,
            num_steps=500,
            progress=False,
        )
        acc = float(np.mean(res.stats["acceptance_rate"][:, 250:]))
        if acc < 0.5:
            eps *= 0.5
        elif acc > 0.9:
            eps *= 1.6
        else:
            break
    return eps


def _build_sampler(
    rng_key,
    name,
    posterior,
    w_star,
    step_size,
    batch_size,
    num_chains,
    calibration,
    progress=False,
):
    """Return (sampler, start positions, chains_axis, calibration)."""
    if name in ("sgld", "psgld"):
        frozen = None
        if name == "psgld":  # RMSProp preconditioner adapted on a burn-in, frozen
            rng_key, k_pre = jax.random.split(rng_key)
            frozen = rmsprop_preconditioner(
                k_pre,
                posterior,
                w_star,
                batch_size=batch_size,
                num_chains=num_chains,
                tolerance=calibration.tolerance,
            )
        cal = None
        if step_size is None:
            cal = _calibrate(
                rng_key,
                posterior,
                batch_size,
                num_chains,
                calibration,
                progress,
                calibration.init_step_size,
                preconditioned=frozen,
            )
            step_size = cal.step_size
        if frozen is None:
            return SGLD(jnp.asarray(step_size), batch_size), w_star, False, cal
        smp = dataclasses.replace(frozen, step_size=jnp.asarray(step_size))
        return smp, w_star, False, cal
    if name == "mala":
        if step_size is None:
            h_max = max_curvature(rng_key, posterior, w_star)
            step_size = _tune_mala(rng_key, posterior, w_star, h_max, num_chains)
        return MALA(jnp.asarray(step_size)), w_star, False, None
    if name == "nuts":
        nuts = NUTS(jnp.asarray(1.0), default_inverse_mass_matrix(w_star))
        tuned, starts = window_adapt(
            rng_key, nuts, posterior, w_star, num_chains=num_chains, num_steps=500
        )
        return tuned, starts, True, None
    if name == "baoab":
        return _build_baoab(
            rng_key,
            posterior,
            w_star,
            step_size,
            batch_size,
            num_chains,
            calibration,
            progress,
        )
    raise ValueError(
        f"sampler must be 'sgld', 'psgld', 'baoab', 'mala' or 'nuts', got {name!r}."
    )


def _calibrate(
    key, posterior, batch_size, num_chains, calibration, progress, init, **sampler
):
    """:func:`calibrate_sgld` at w* with the settings of ``calibration`` (its first
    step ``init``); ``sampler``: ``preconditioned=`` or ``sampler_for=``."""
    return calibrate_sgld(
        key,
        posterior,
        posterior.center,
        batch_size=batch_size,
        num_chains=num_chains,
        num_steps=calibration.num_steps,
        tolerance=calibration.tolerance,
        max_trials=calibration.max_trials,
        init_step_size=init,
        progress=progress,
        **sampler,
    )


# First overdamped-equivalent step the BAOAB calibration tries, times 1/h_max: a time
# step of 0.05/sqrt(h_max). On the 8,500-parameter DLN this read the exact λ̂ with
# T_conf within 0.01 of 1; at 0.1/sqrt(h_max) the chains reached stiffer regions
# after ~10,000 steps where the step was unstable.
BAOAB_INIT_STEP = 0.05**2 / 2


def _build_baoab(
    rng_key, posterior, w_star, step_size, batch_size, num_chains, calibration, progress
):
    """BAOAB with friction ``FRICTION_PER_ROOT_CURVATURE·sqrt(h_max)`` (h_max at w*)
    and a time step calibrated by T_conf (as SGLD's, on ``e = ε²/2``)."""
    k_curv, k_cal = jax.random.split(rng_key)
    h_max = max_curvature(k_curv, posterior, w_star)
    if not np.isfinite(h_max) or h_max <= 0:
        raise ValueError(
            f"the Hessian of -log p at w* has largest eigenvalue {h_max}; the "
            "posterior is not locally confining there. Use gamma > 0."
        )
    friction = jnp.asarray(FRICTION_PER_ROOT_CURVATURE * np.sqrt(h_max))

    def make(e):
        return BAOAB(jnp.sqrt(2 * jnp.asarray(e)), friction, batch_size)

    cal = None
    if step_size is None:
        init = calibration.init_step_size
        cal = _calibrate(
            k_cal,
            posterior,
            batch_size,
            num_chains,
            calibration,
            progress,
            init if init is not None else BAOAB_INIT_STEP / h_max,
            sampler_for=make,
        )
        step_size = float(np.sqrt(2 * cal.step_size))
    return BAOAB(jnp.asarray(step_size), friction, batch_size), w_star, False, cal


def estimate_llc(
    rng_key: PRNGKey,
    posterior: TemperedPosterior,
    *,
    sampler: str = "auto",
    step_size: float | None = None,
    batch_size: int | None = 100,
    num_chains: int = 8,
    num_steps: int | None = None,
    max_steps: int = 320_000,
    target_rel_mcse: float = 0.01,
    target_rel_error: float = 0.03,
    burn_in: int | None = None,
    gamma_check: tuple = (0.5, 2.0),
    progress: bool | None = None,
    calibration: CalibrationConfig | None = None,
    strict: bool = False,
    resume_file: str | os.PathLike | None = None,
) -> LLCEstimate:
    """Estimate the local learning coefficient at ``posterior.center``.

    .. math:: \\hat\\lambda = n\\beta\\,(\\mathbb{E}[L_n] - L_n(w^*))

    Parameters
    ----------
    rng_key
        PRNG key; the same key gives the same numbers.
    posterior
        Tempered posterior localised at ``w* = posterior.center`` (β defaults to 1/log n
        with n the number of data, never the batch size).
    sampler
        ``"auto"`` (default): ``"sgld"`` if ``step_size`` or ``calibration`` is
        given; else ``"mams"`` where a full-data gradient is cheap (a
        ``full_loss_fn`` shortcut and at most 200,000 parameters, or at most 20,000
        parameters and n·d ≤ 10⁸), else ``"sgld"``.
        ``"mams"``: the Metropolis-adjusted microcanonical sampler (Robnik et al.
        2025), exact (no step-size bias), warmed up and run in blocks of one compiled
        shape until λ̂'s total error is ``target_rel_error`` of λ̂.
        ``"sgld"``: minibatch, step size calibrated by configurational temperature,
        and re-measured where the chains are after every chunk of the adaptive run:
        a calibrated step that has come to run hot (chains that moved along a flat
        direction of L_n to where it is too large) shrinks and the production
        restarts from there (reported in ``tuning``).
        ``"psgld"``: minibatch SGLD preconditioned by RMSProp (Li et al. 2016; the
        sampler of devinterp's ``rmsprop_sgld``): the diagonal preconditioner is
        adapted on a 1,000-step burn-in from w* and then frozen (so no correction
        term is needed and the chain samples the target up to the Euler bias), and
        the step size is calibrated by configurational temperature in its metric.
        ``"baoab"``: underdamped Langevin (BAOAB splitting, Leimkuhler & Matthews
        2013) with full-data gradients (``batch_size`` is ignored), friction
        ``0.3·sqrt(h_max)``, the time step calibrated by configurational temperature
        and watched during the run as SGLD's. Its bias is second order in the step,
        so its step is far larger than SGLD's at the same T_conf, and it relaxes
        along the flat directions of a singular model far faster. (Its
        ``calibration`` records overdamped-equivalent steps ``ε²/2``.)
        ``"mala"`` (exact, full data) or ``"nuts"`` (exact, window-adapted).
    step_size
        Overrides the calibration (SGLD, pSGLD, BAOAB, MALA); BlackJAX convention
        (devinterp lr/2; for pSGLD ``nβ·lr/2``; for BAOAB the time step ε).
    batch_size
        SGLD and pSGLD minibatch size; ``None`` for full-batch gradients.
        (``"baoab"`` always uses full-data gradients.)
    num_chains, num_steps, burn_in
        Chains, steps per chain (NUTS: draws), and leading steps discarded
        (default a quarter). With ``num_steps=None`` the run is *adaptive*: 20,000
        steps, doubled (continuing the chains) until the L_n trace after a burn-in of
        half the run is stationary (split-R-hat < 1.01 and the means of its two halves
        agree within 2 combined MCSE) *and* λ̂'s MCSE is at most ``target_rel_mcse``
        of |λ̂|, or ``max_steps`` is reached. For a calibrated SGLD/pSGLD/BAOAB
        step, ``T_conf`` is measured after every chunk; when it is clearly above
        ``1 + tolerance`` the step shrinks (as in the calibration), and when a chunk
        diverged its bias is cut tenfold and the chunk reruns from its start; the
        trace then restarts with ``num_steps`` fresh steps while ``max_steps``
        allows (at most six times; ``losses`` is the trace after the last restart).
    max_steps
        Cap of the adaptive run.
    target_rel_mcse
        Relative Monte-Carlo precision the adaptive SGLD/MALA/NUTS run aims for.
    target_rel_error
        Relative total error (MCSE, drift and bracket; no step-size bias to add) the
        adaptive MAMS run aims for, once split-R-hat < 1.02 and the bulk ESS ≥ 200
        within each group of starts (half its chains start at w*, half from a short
        run at β/16; a group still approaching the other, its chains all moving
        towards it, is judged by the unsplit R-hat, which that shared trend does not
        raise; the bracket counts the gap), all judged after the warm-up and the
        production blocks that MSER truncation finds still trending
        (MAMS's default ``burn_in``).
    gamma_check
        Factors of γ at which λ̂ is re-estimated (same sampler and step size, a
        quarter of the steps, half of them burn-in, continuing from where the main
        run's chains ended) to report how much the estimate moves with γ; ``()`` to
        skip. ``gamma_sensitivity`` holds the raw (uncorrected) λ̂ at every γ, the
        main one included, and ``gamma_sensitivity_mcse`` their MCSEs. (Starting these runs at w* instead made them read low whenever the main
        run's chains had drifted: on the DLN, 33.2 and 31.9 at γ/2 and 2γ against
        37.9 at γ.)
    progress
        tqdm progress bars (default: on a terminal, for multi-chunk runs, the SGLD
        calibration's trials included; MAMS: once
        a 100-step block takes more than 2 s, showing λ̂ and its relative total
        error as the run goes; when stderr is not a terminal, e.g. a long run
        logged to a file, a plain line at most once a minute instead, for every
        sampler: steps, step size, λ̂ of the latest chunk, each stopping check and
        step shrink).
    calibration
        Settings of the SGLD step-size calibration (:class:`CalibrationConfig`;
        ``None`` for its defaults).
    strict
        Raise :class:`LLCCheckError` instead of warning when a check fails: w* not a
        local minimum (checked before sampling, and again from the chains: λ̂ < 0,
        chains below L_n(w*)), a failed or vanishing calibration, an end-of-run
        configurational temperature clearly off 1, an unsettled adaptive run or
        R-hat > 1.05 (MAMS: within a group of starts, unsplit for a group still
        approaching the other).
    resume_file
        A ``.npz`` path (MAMS only) where the run saves its state after every
        100-step block, atomically: an interrupted run called again with the same
        arguments and the same file continues where it stopped, and gives the numbers
        an uninterrupted run gives (the same key and positions for every block); a
        finished one is read back without sampling, except the γ checks not yet
        done. A file saved with other settings (key, n, β, γ, L_n(w*), chains, run
        length, target) is refused with a ``ValueError``. For runs of hours (10⁵
        parameters take from 30 minutes to more than 3 hours on two CPU cores).

    Returns
    -------
    LLCEstimate
        λ̂ with MCSE, R-hat and ESS (``result``; ``result.llc_sigma`` is the total
        standard error: MCSE, the step-size bias read from the end-of-run
        configurational temperature, drift between the kept trace's halves and, for
        MAMS, the bracket between chains started at w* and chains started from a
        hotter spread; ``error_budget`` has the parts). On deep linear networks
        chains started at w* keep spreading along the minimum set of L_n for
        thousands of steps while λ̂ rises; MAMS therefore starts half its chains
        from a short run at β/16, which approach λ̂ from above, and reports their
        mean with half the two groups' excess gap in σ_total. Against exact values
        on 30 seeds of the [10, 10, 10, 10] rank-3 DLN the z-scores have mean −0.59
        and sd 1.10 (all chains from w*: −0.89 and 0.87). The bracket makes σ_total
        honest more than it removes the rise: on the depth-6 10⁴ DLN of
        ``studies/llc_at_scale`` λ̂ reads 538.3 ± 8.3 against 540.2 ± 6.8 at twice
        the run length (with every chain at w*, 540.2 ± 0.9 against 543.2, 3.5
        σ_total). σ_total does not count a relaxation slower than the run: on that
        study's depth-6, rank-1 DLN of 864 parameters eight default runs (2,000 to
        13,100 steps) read 48.5 to 49.3, 1.2 to 2.3 σ_total below a fixed run of
        52,300 steps (``num_steps``), 50.39 ± 0.15.
        Also the choices made, the trace and, for SGLD,
        ``end_configurational_temperature``: ``T_conf`` (and its SE) measured on a
        short continuation of the finished chains. A ``RuntimeWarning`` says when it
        is clearly outside ``1 ± tolerance``, naming the cause (step size, drift, not
        equilibrated). ``problems`` lists every check that failed (each also a
        ``RuntimeWarning``) and ``center_check`` how far w* is from a minimum.

    Raises
    ------
    ValueError, TypeError
        Bad arguments, naming the argument and the fix.
    ChainDivergenceError
        Chains produced NaN/inf.
    LLCCheckError
        With ``strict=True``, when any check fails.
    """
    check_llc_arguments(posterior, sampler, num_chains, max_steps, target_rel_mcse)
    if target_rel_error is None:
        raise ValueError("target_rel_error must be a number in (0, 1), e.g. 0.03.")
    _validate.check_unit_interval(
        "target_rel_error", target_rel_error, "0.03 aims for 3% of λ̂."
    )
    check_gamma_check(gamma_check)
    adaptive = num_steps is None
    num_steps = (
        20_000 if adaptive else _validate.check_int("num_steps", num_steps, minimum=8)
    )
    if burn_in is not None:
        _validate.check_int("burn_in", burn_in, minimum=0)
        if burn_in >= num_steps - 4:
            raise ValueError(
                f"burn_in = {burn_in} leaves fewer than 4 draws of {num_steps}."
            )
    _validate.check_positive("step_size", step_size, "e.g. 1e-5, or None to calibrate.")
    if batch_size is not None:
        batch_size = min(_validate.check_int("batch_size", batch_size), posterior.n)
    calibration_given = calibration is not None
    calibration = calibration if calibration is not None else CalibrationConfig()
    check_config(calibration)
    w_star = posterior.center
    init_loss = float(full_loss(posterior, w_star))
    if not np.isfinite(init_loss):
        raise ValueError(
            f"L_n(center) = {init_loss} is not finite: loglik_fn gives NaN/inf on "
            "some data at w*. Check the model and the data at the centre."
        )
    report = ProblemReport(strict)
    center_check = check_local_minimum(jax.random.fold_in(rng_key, 2), posterior)
    report.add(minimum_problems(center_check), stop=True)
    from ._exact_llc import estimate_exact, resolve_sampler  # it imports this module

    sgld_settings = step_size is not None or calibration_given
    sampler = resolve_sampler(sampler, posterior, w_star, sgld_settings)
    if resume_file is not None and sampler != "mams":
        raise ValueError(
            f"resume_file is supported by the MAMS path only, and this run uses "
            f"sampler = {sampler!r}: pass resume_file=None, or sampler='mams'."
        )
    if sampler == "mams":
        return estimate_exact(
            rng_key,
            posterior,
            num_chains=num_chains,
            num_steps=None if adaptive else num_steps,
            max_steps=max_steps,
            target_rel_error=target_rel_error,
            burn_in=burn_in,
            gamma_check=gamma_check,
            init_loss=init_loss,
            report=report,
            center_check=center_check,
            progress=progress,
            resume_file=resume_file,
        )
    k_build, k_run, k_gamma = jax.random.split(rng_key, 3)
    smp, start, chains_axis, cal = _build_sampler(
        k_build,
        sampler,
        posterior,
        w_star,
        step_size,
        None if sampler == "baoab" else batch_size,
        num_chains,
        calibration,
        progress,
    )
    report.add(calibration_problems(cal), stop=True)
    sgld_like = sampler in ("sgld", "psgld", "baoab")
    out = _run(
        k_run,
        smp,
        posterior,
        start,
        chains_axis,
        num_chains,
        num_steps,
        max_steps if adaptive else num_steps,
        init_loss,
        progress,
        target_rel_mcse,
        _Watch(jax.random.fold_in(rng_key, 1), calibration.tolerance, cal is not None)
        if sgld_like
        else None,
    )
    trace, res, smp, settled = out.trace, out.res, out.sampler, out.settled
    num_steps = trace.shape[1]
    if adaptive and not settled:
        report.add(
            [
                Problem(
                    "not_settled",
                    f"the L_n trace was not yet stationary and "
                    f"{target_rel_mcse:.0%}-precise after max_steps = {max_steps} "
                    "steps: λ̂ may still be drifting (slow directions). Raise "
                    "max_steps.",
                )
            ]
        )
    end_temp = out.end_temperature
    if sgld_like:
        report.add(
            temperature_problems(
                *end_temp,
                calibration.tolerance,
                cal.configurational_temperature if cal is not None else None,
            )
        )
    if burn_in is None:
        burn_in = num_steps // 2 if adaptive else num_steps // 4
    result, budget = finish_result(
        trace[:, burn_in:], init_loss, posterior, end_temp, report, center_check
    )
    sens, sens_mcse = _gamma_sensitivity(
        k_gamma,
        smp,
        posterior,
        res,
        result,
        gamma_check,
        num_steps,
        init_loss,
        progress,
    )
    return LLCEstimate(
        result=result,
        sampler=sampler,
        step_size=float(smp.step_size),
        batch_size=batch_size if sampler in ("sgld", "psgld") else None,
        n=posterior.n,
        beta=float(posterior.beta),
        gamma=float(posterior.gamma),
        num_chains=num_chains,
        num_steps=num_steps,
        burn_in=burn_in,
        losses=trace,
        loss_kind=res.loss_kind,
        calibration=cal,
        gamma_sensitivity=sens,
        steps_per_second=num_chains * out.steps_run / max(out.run_seconds, 1e-12),
        compile_seconds=out.compile_seconds,
        run_seconds=out.run_seconds,
        settled=bool(settled) if adaptive else True,
        end_configurational_temperature=end_temp,
        problems=report.finish(),
        center_check=center_check,
        gamma_sensitivity_mcse=sens_mcse,
        error_budget=budget,
        tuning=_shrink_note(out.shrinks, float(smp.step_size)),
    )


def estimate_llc_version() -> dict:
    """What decides :func:`estimate_llc`'s answer besides its arguments: its keyword
    defaults (as strings) and the version of its exact path's algorithm
    (``exact_method``). A study that stores this beside its results can rerun them
    when either changes instead of reusing rows of an older estimator.

    Examples
    --------
    >>> v = estimate_llc_version()
    >>> v["estimate_llc_defaults"]["target_rel_error"], v["exact_method"] > 0
    ('0.03', True)
    """
    import inspect

    from . import _exact_llc

    params = inspect.signature(estimate_llc).parameters.values()
    return {
        "estimate_llc_defaults": {
            p.name: repr(p.default)
            for p in params
            # where a run saves its state does not decide its answer
            if p.default is not p.empty and p.name != "resume_file"
        },
        "exact_method": _exact_llc.METHOD,
        "sgld_method": SGLD_METHOD,
    }


def finish_result(
    kept, init_loss, posterior, end_temp, report, center_check, dispersed=None
):
    """λ̂ with its error budget from the kept trace, and the after-run checks (R-hat,
    chains below L_n(w*)) added to ``report``; shared by every sampler's path
    (``dispersed``: the chains started away from w*, see :func:`error_budget`)."""
    result = llc(kept, init_loss, n=posterior.n, beta=float(posterior.beta))
    budget = error_budget(result, kept, end_temp, dispersed=dispersed)
    result = with_error_budget(result, budget)
    # chains of two starts are judged within each group (their gap is the bracket),
    # a group still approaching the other by unsplit R-hat (the trend is the approach)
    rhat = (
        result.rhat
        if dispersed is None
        else group_convergence(kept, dispersed, allow_approach=True)[0]
    )
    if np.isfinite(rhat) and rhat > 1.05:
        where = "" if dispersed is None else " within a group of starts"
        report.add(
            [
                Problem(
                    "rhat",
                    f"R-hat of the L_n trace{where} is {rhat:.3f} > 1.05: chains "
                    "have not converged; increase num_steps or burn_in.",
                )
            ]
        )
    below = chains_below(kept, init_loss, result.llc_per_chain_mcse / result.nbeta)
    if not report.has("not_a_minimum"):
        report.add(after_run_problems(center_check, result.llc, below))
    return result, budget


def _gamma_sensitivity(
    key, smp, posterior, res, result, factors, num_steps, init_loss, progress
):
    """Raw λ̂ (no bias correction, comparable across γ) and its MCSE at γ·factor for
    each factor: a quarter of the main run's steps, half of them burn-in, continuing
    from where the main run's chains ended (so the runs differ in γ, not in how far
    the chains drifted)."""
    sens = {float(posterior.gamma): result.llc_raw}  # uncorrected: like for like
    sens_mcse = {float(posterior.gamma): result.llc_mcse}
    g_steps = max(num_steps // 4, 8)
    for j, factor in enumerate(factors):
        g = float(posterior.gamma) * factor
        r_g = sample(
            jax.random.fold_in(key, j),
            smp,
            posterior.replace(gamma=g),
            res.final_state.position,
            num_chains=res.losses.shape[0],
            num_steps=g_steps,
            progress=progress,
            chains_axis=True,
        )
        if r_g.diverged.any():
            sens[g] = sens_mcse[g] = float("nan")
            continue
        t_g = _trace(r_g, init_loss)
        r = llc(
            t_g[:, g_steps // 2 :], init_loss, n=posterior.n, beta=float(posterior.beta)
        )
        sens[g], sens_mcse[g] = r.llc, r.llc_mcse
    return dict(sorted(sens.items())), dict(sorted(sens_mcse.items()))


# A calibrated SGLD/pSGLD step is re-checked between the adaptive run's chunks: the
# chains can move to where it runs hot (on the 8,500-parameter DLN at γ = 1, T_conf
# rose from 1.02 at calibration to 1.48 after 160,000 steps and λ̂ read +15% after
# 320,000). Then ε shrinks and the production restarts from where the chains are.
# 1: step fixed after calibration; 2: shrunk when T_conf runs hot; 3: also when a chunk
# diverges, and a calibration trial of a model too large to keep 100 positions per
# chain runs as long as the positions it keeps need (not 100 positions' worth)
SGLD_METHOD = 3
MAX_STEP_SHRINKS = 6


class _Watch(NamedTuple):
    """How an SGLD/pSGLD run measures its temperature (``key``: the end-of-run probe's
    key) and whether it may shrink a hot step (only a calibrated one)."""

    key: PRNGKey
    tolerance: float
    adapt: bool


class _Log:
    """Plain progress lines of a long stochastic-gradient run when stderr is not a
    terminal (a run logged to a file, where no bar is drawn): at most one every
    ``LOG_INTERVAL`` seconds, the first after ``LOG_INTERVAL`` seconds (short runs
    print nothing), with the steps run, the step size and λ̂ of the latest chunk."""

    def __init__(self, name: str, nbeta: float, init_loss: float, active: bool):
        self.name, self.nbeta, self.init_loss = name, nbeta, init_loss
        self.active = active
        self.start = self.last = time.perf_counter()
        self.before = 0  # steps of the earlier sample() calls

    def chunk(self, eps: float):
        """``on_chunk`` for the next ``sample`` call (None when inactive)."""
        if not self.active:
            return None

        def on_chunk(done, arrays):
            if time.perf_counter() - self.last < LOG_INTERVAL:
                return
            diff = arrays.get("loss_diff")  # SG samplers: paired-batch differences
            if diff is None:
                diff = np.asarray(arrays["loss"]) - self.init_loss
            lam = self.nbeta * float(np.mean(diff))
            self.line(
                f"{self.before + done:,} steps, eps={eps:.3g}, "
                f"λ̂ of the last chunk {lam:.4g}"
            )

        return on_chunk

    def line(self, text: str, check: bool = False) -> None:
        """Print ``text``; a stopping ``check``'s line whenever the run has lasted
        ``LOG_INTERVAL``, others at most once every ``LOG_INTERVAL``."""
        now = time.perf_counter()
        since = now - (self.start if check else self.last)
        if self.active and since >= LOG_INTERVAL:
            self.last = now
            print(f"{self.name}: {text}", file=sys.stderr, flush=True)


LOG_INTERVAL = 60.0  # least seconds between progress lines of a logged run


class _Run(NamedTuple):
    trace: np.ndarray  # L_n trace since the last restart
    res: SampleResult  # the last chunk
    run_seconds: float
    compile_seconds: float
    settled: bool
    sampler: object  # with the step the run ended at
    steps_run: int  # every step, the ones before a restart included
    end_temperature: tuple[float, float] | None
    shrinks: tuple  # (steps run, step before, T_conf, its SE) per shrink


def _run(
    key,
    smp,
    posterior,
    start,
    chains_axis,
    num_chains,
    num_steps,
    max_steps,
    init_loss,
    progress,
    target_rel_mcse,
    watch: _Watch | None = None,
) -> _Run:
    """Sample ``num_steps``; while the trace is not stationary and ``max_steps`` allows,
    continue the same chains for as many steps again.

    With ``watch`` (SGLD, pSGLD) ``T_conf`` is measured where the chains are after
    every chunk (a short continuation, off the run's random stream). With
    ``watch.adapt``, when it is clearly above ``1 + tolerance`` (by two SEs, the SE
    at most ``tolerance / 3`` and from the chains' own means where that is larger:
    on a 2-parameter model the positions of a short probe at a small step are too
    correlated to tell, and shrinking on their noise drove the step down by 10×
    and more and the chains out of equilibrium) and at least ``num_steps`` of the
    budget remain, ε shrinks by
    :func:`~slt_sampler.samplers.calibrate.shrink_factor` (its square root for a
    sampler whose bias is second order) and the trace restarts from the chains'
    positions (what ran before counts as warm-up), at most ``MAX_STEP_SHRINKS``
    times. A T_conf more than ``10·tolerance`` above 1 is acted on even when
    imprecise (a step unstable in places reads hot and noisy). A chunk that
    diverged reruns from its start with a tenth of the bias. The λ̂ of a run that never runs hot is the same as
    without the watch, number for number."""
    traces, run_s, compile_s, steps, ran, shrinks = [], 0.0, 0.0, num_steps, 0, []
    nbeta = float(posterior.nbeta)
    log = _Log(
        getattr(smp, "name", "sampler"),
        nbeta,
        init_loss,
        progress is None and not sys.stderr.isatty(),
    )
    while True:
        key, k = jax.random.split(key)
        res = sample(
            k,
            smp,
            posterior,
            start,
            num_chains=num_chains,
            num_steps=steps,
            progress=progress,
            chains_axis=chains_axis,
            on_chunk=log.chunk(float(smp.step_size)),
        )
        run_s, compile_s = run_s + res.run_seconds, compile_s + res.compile_seconds
        ran += res.losses.shape[1]
        log.before = ran
        if (
            res.diverged.any()
            and watch is not None
            and watch.adapt
            and len(shrinks) < MAX_STEP_SHRINKS
            and max_steps - ran >= num_steps
        ):
            # a calibrated step that became unstable where the chains went: 10× less
            # bias, again from this chunk's start
            shrinks.append((ran, float(smp.step_size), float("inf"), float("nan")))
            smp, traces, steps = _less_biased(smp, 0.1), [], num_steps
            continue
        _raise_if_diverged(res, smp)
        traces.append(_trace(res, init_loss))
        trace = np.concatenate(traces, axis=1)
        total = trace.shape[1]
        kept = trace[:, total // 2 :]
        done = _stationary(kept) and _precise(kept, init_loss, nbeta, target_rel_mcse)
        last = done or ran >= max_steps
        log.line(
            f"{ran:,} steps, λ̂ = {nbeta * (kept.mean() - init_loss):.4g} (raw, the "
            f"last {kept.shape[1]:,}); "
            + ("stationary and precise" if done else "not yet stationary and precise")
            + (
                "" if last else f"; continuing to {ran + min(total, max_steps - ran):,}"
            ),
            check=True,
        )
        temp = None
        if watch is not None and (last or watch.adapt):
            probe_key = watch.key if last else jax.random.fold_in(watch.key, ran)
            temp = _end_temperature(probe_key, smp, posterior, res, total)
        start, chains_axis = res.final_state.position, True
        if (
            watch is not None
            and watch.adapt
            and temp[0] > 1
            and clearly_outside(*temp, watch.tolerance)  # the end-of-run check's rule
            # precise, as in the calibration, or hot far beyond its noise (a step
            # gone unstable in places: on an 82,500-parameter DLN BAOAB's T_conf
            # read 4.9 ± 1.8 and the run went on, λ̂ +54%)
            and (temp[1] <= watch.tolerance / 3 or temp[0] - 1 > 10 * watch.tolerance)
            and len(shrinks) < MAX_STEP_SHRINKS
            and max_steps - ran >= num_steps
        ):
            shrinks.append((ran, float(smp.step_size), float(temp[0]), float(temp[1])))
            factor = shrink_factor(float(temp[0]), watch.tolerance)
            smp, traces, steps = _less_biased(smp, factor), [], num_steps
            log.line(
                f"T_conf = {temp[0]:.3f} ± {temp[1]:.3f}: step shrunk to "
                f"{float(smp.step_size):.3g}, the trace restarts",
                check=True,
            )
            continue
        if last:
            return _Run(
                trace, res, run_s, compile_s, done, smp, ran, temp, tuple(shrinks)
            )
        steps = min(total, max_steps - ran)


def _less_biased(smp, factor: float):
    """``smp`` with its T_conf bias scaled by ``factor``: the step times ``factor``
    for SGLD (bias first order in ε), times its square root for BAOAB (second)."""
    new = float(smp.step_size) * factor ** (1 / getattr(smp, "bias_order", 1))
    return dataclasses.replace(smp, step_size=jnp.asarray(new))


def _shrink_note(shrinks, final_step: float) -> str | None:
    """What the watched run did to the calibrated step, for ``LLCEstimate.tuning``."""
    if not shrinks:
        return None
    what = ", ".join(
        f"after {ran:,} steps "
        + (f"T_conf = {t:.3f} ± {se:.3f}" if np.isfinite(t) else "chains diverged")
        + f" at {eps:.3g}"
        for ran, eps, t, se in shrinks
    )
    return (
        f"step shrunk {len(shrinks)}× during the run to {final_step:.3g} ({what}); "
        f"the trace restarts at the last shrink (the {shrinks[-1][0]:,} steps before "
        "are warm-up)"
    )


def _end_temperature(key, smp, posterior, res: SampleResult, num_steps):
    """``T_conf`` (and its SE) on positions of a short continuation of the finished
    chains (5% of the run, 2,000-20,000 steps; the run's own random stream is
    untouched): where the chains are at the end, not where calibration started."""
    kept = positions_to_keep(posterior.center, res.losses.shape[0], 200)
    steps = kept * (max(min(num_steps // 20, 20_000), 2_000) // kept)
    probe = sample(
        key,
        smp,
        posterior,
        res.final_state.position,
        num_chains=res.losses.shape[0],
        num_steps=steps,
        thinning=steps // kept,
        keep_positions=True,
        progress=False,
        chains_axis=True,
    )
    _raise_if_diverged(probe, smp)
    metric = frozen_metric(smp, posterior) if isinstance(smp, PSGLD) else None
    return configurational_temperature(
        key, posterior, probe.positions, metric=metric, by_chain=True
    )


def _stationary(kept: np.ndarray) -> bool:
    """Split-R-hat < 1.01 and the two halves' means agree within 2 combined MCSE."""
    if kept.shape[0] >= 2 and _mcse.rhat(kept) >= 1.01:
        return False
    half = kept.shape[1] // 2
    a, b = kept[:, :half], kept[:, half:]
    se = np.hypot(_mcse.mcse_mean(a), _mcse.mcse_mean(b))
    return abs(a.mean() - b.mean()) <= 2 * se


def _precise(kept: np.ndarray, init_loss: float, nbeta: float, target: float) -> bool:
    """MCSE of λ̂ from ``kept`` is at most ``target`` × |λ̂|."""
    lam = nbeta * (kept.mean() - init_loss)
    return nbeta * _mcse.mcse_mean(kept) <= target * abs(lam)


def _raise_if_diverged(res: SampleResult, smp) -> None:
    if res.diverged.any():
        eps = float(np.asarray(getattr(smp, "step_size", np.nan)))
        chains = np.where(res.diverged)[0]
        raise ChainDivergenceError(chains, eps, eps / 10, _blew_up(res.losses[chains]))


def _blew_up(losses: np.ndarray) -> bool:
    """Whether the last finite loss before NaN of any chain was far from the losses of
    the first half of its finite run (a numerical explosion) rather than ordinary (the
    chain stepped into a region where the log density is NaN)."""
    for row in losses:
        finite = np.nonzero(np.isfinite(row))[0]
        if finite.size == 0 or finite.max() == len(row) - 1:
            return True
        last = int(finite.max())
        head = row[: max(1, (last + 1) // 2)]
        typical = float(np.median(head))
        spread = float(np.median(np.abs(head - typical))) + 1.0
        if abs(float(row[last]) - typical) > 100 * spread:
            return True
    return False


__all__ = [
    "ChainDivergenceError",
    "LLCCheckError",
    "LLCEstimate",
    "estimate_llc",
    "estimate_llc_version",
]
