"""Checks that stand between a run and a silently wrong number.

Each check returns ``Problem``s (a cause and a message that says what to do); the
workflows warn with them, record them in their results, and raise them when asked to be
strict. The causes are the ones a user can act on:

* ``"not_a_minimum"`` -- the localisation centre w* is not a local minimum of L_n.
  λ̂ = nβ(E[L_n] − L_n(w*)) then measures how far the chains fall below w*, not the
  volume of a minimum: a random point gave λ̂ = −64 with R-hat 1.0. The check is the
  *gradient decrement* of U = nβL_n + γ/2‖w − w*‖² at w*: one gradient step of length
  1/h_max lowers U by at least ‖∇U‖²/(2h_max) nats (h_max the largest Hessian
  eigenvalue), and λ̂ is lowered by about as much. Nats are the noise scale here: the
  posterior's own fluctuations of nβL_n are of order λ.
* ``"calibration"`` -- no step size passed the configurational-temperature test, or the
  step was driven to a vanishing value (repeated divergences, typically a
  log-likelihood that is NaN/inf in part of the space).
* ``"step_size"`` / ``"drift"`` / ``"not_equilibrated"`` -- the configurational
  temperature at the end of the run is clearly off 1: hot where the calibrated step is
  too large (at the start: step size; after moving: drift to a region where it is),
  cold where the chains have not equilibrated.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from .. import _validate
from ..posterior.base import TemperedPosterior, check_posterior, full_loss
from ..types import PRNGKey
from .calibrate import Calibration, max_curvature


class Problem(NamedTuple):
    """Why an estimate may be wrong: ``cause`` (a short tag) and ``message``."""

    cause: str
    message: str


class LLCCheckError(RuntimeError):
    """Raised by ``estimate_llc(strict=True)`` instead of returning a doubtful λ̂.

    ``problems`` holds every :class:`Problem` found."""

    def __init__(self, problems):
        self.problems = tuple(problems)
        super().__init__("\n".join(f"[{p.cause}] {p.message}" for p in self.problems))


class MinimumCheck(NamedTuple):
    """How far the centre w* is from being a local minimum of L_n.

    Attributes
    ----------
    grad_norm : float
        ``‖∇(nβ L_n)(w*)‖`` on the full data.
    max_curvature : float
        Largest Hessian eigenvalue of ``U = −log p`` at w* (power iteration).
    decrement : float
        ``grad_norm² / (2 max_curvature)`` in nats: a lower bound on how much one
        gradient step lowers nβL_n below its value at w*.
    threshold : float
        Decrement above which w* is reported as not a minimum.
    """

    grad_norm: float
    max_curvature: float
    decrement: float
    threshold: float

    @property
    def is_minimum(self) -> bool:
        return self.decrement <= self.threshold


NOT_A_MINIMUM = (
    "w* (the posterior's center) is not a local minimum of L_n: one gradient step "
    "from it lowers nβ·L_n by at least {dec:.3g} nats (‖∇ nβL_n(w*)‖ = {g:.3g}, "
    "largest curvature {h:.3g}). λ̂ = nβ(E[L_n] − L_n(w*)) is then biased low by about "
    "that much or more, and can be negative. Minimise L_n first (e.g. optax.lbfgs or "
    "jax.scipy.optimize.minimize from w*, until the gradient vanishes) and pass "
    "center=w_min."
)


def decrement_threshold(dim: int) -> float:
    """Decrement (nats) above which w* counts as not a minimum before any run:
    ``max(0.1, 10⁻³ d)``, i.e. at most 0.2% of the largest possible λ = d/2 (and
    0.1 nat); after the run :func:`after_run_problems` also compares it with λ̂."""
    return max(0.1, 1e-3 * dim)


@jax.jit
def _center_gradient(posterior: TemperedPosterior):
    """``∇ nβ L_n`` at the centre (module-level: compiled once per model shape)."""
    return jax.grad(lambda w: posterior.nbeta * full_loss(posterior, w))(
        posterior.center
    )


def check_local_minimum(rng_key: PRNGKey, posterior: TemperedPosterior) -> MinimumCheck:
    """Gradient decrement of ``U = nβL_n + γ/2‖w − w*‖²`` at ``w* = posterior.center``
    (full-data gradient; see the module docstring)."""
    w_star = posterior.center
    flat, _ = ravel_pytree(w_star)
    grad = _center_gradient(posterior)
    g = float(np.linalg.norm(np.asarray(ravel_pytree(grad)[0], np.float64)))
    h = max_curvature(rng_key, posterior, w_star)
    h = h if np.isfinite(h) and h > 0 else float("nan")
    dec = g**2 / (2 * h) if np.isfinite(h) else (0.0 if g == 0 else float("inf"))
    return MinimumCheck(g, h, float(dec), decrement_threshold(flat.size))


def minimum_problems(check: MinimumCheck) -> list[Problem]:
    """The pre-run verdict on w*."""
    if check.is_minimum:
        return []
    return [
        Problem(
            "not_a_minimum",
            NOT_A_MINIMUM.format(
                dec=check.decrement, g=check.grad_norm, h=check.max_curvature
            ),
        )
    ]


def after_run_problems(
    check: MinimumCheck | None, llc: float, per_chain_below: list[int]
) -> list[Problem]:
    """λ̂ < 0, chains whose mean L_n fell clearly below L_n(w*), or a decrement of
    more than 5% of |λ̂|: each says w* is not a minimum."""
    reasons = []
    if llc < 0:
        reasons.append(f"λ̂ = {llc:.4g} < 0 (the chains' mean L_n is below L_n(w*))")
    if per_chain_below:
        reasons.append(
            f"chains {per_chain_below} settled clearly below L_n(w*) (mean more than "
            "3 MCSE under it)"
        )
    if check is not None and check.decrement > 0.05 * abs(llc):
        reasons.append(
            f"the gradient decrement at w* ({check.decrement:.3g} nats) exceeds 5% of "
            f"|λ̂| = {abs(llc):.4g}"
        )
    if not reasons:
        return []
    return [
        Problem(
            "not_a_minimum",
            "w* is not a local minimum of L_n: "
            + "; ".join(reasons)
            + ". λ̂ measures how far chains fall below w*, not the LLC. Minimise L_n "
            "first (e.g. optax.lbfgs from w*) and pass center=w_min.",
        )
    ]


def chains_below(trace: np.ndarray, init_loss: float, mcse: np.ndarray) -> list[int]:
    """Chains whose mean L_n lies more than 3 of their MCSE below ``init_loss``."""
    gap = trace.mean(axis=1) - init_loss
    return [int(c) for c in np.where(gap < -3 * np.maximum(mcse, 1e-30))[0]]


def calibration_problems(cal: Calibration | None) -> list[Problem]:
    """A calibration that did not pass, or whose step was driven to a vanishing value."""
    if cal is None:
        return []
    out = []
    if not cal.passed:
        out.append(
            Problem(
                "calibration",
                f"step-size calibration failed: {cal.reason}. λ̂ carries a step-size "
                "bias of unknown size. Raise CalibrationConfig(max_trials=...), give "
                "a larger gamma, or use sampler='mala' (exact).",
            )
        )
    scale = 2 * cal.tolerance / cal.max_curvature
    diverged = sum(t.diverged for t in cal.trials)
    if cal.step_size < 1e-3 * scale:
        out.append(
            Problem(
                "calibration",
                f"the step size was driven to {cal.step_size:.3g}, "
                f"{scale / cal.step_size:.3g}× below the curvature scale "
                f"2·tol/h_max = {scale:.3g} ({diverged} of {len(cal.trials)} trials "
                "diverged). Chains this slow barely move; a step that diverges at "
                "every size usually means loglik_fn (or the prior) is NaN/inf in part "
                "of the space near w* (a log of a non-positive number, a division "
                "by zero): check the model there.",
            )
        )
    return out


def clearly_outside(t_conf: float, t_se: float, tolerance: float) -> bool:
    """Configurational temperature outside ``1 ± tolerance`` by more than two standard
    errors (False for NaN)."""
    return abs(t_conf - 1) - tolerance > 2 * t_se


def temperature_problems(
    t_end: float, t_se: float, tolerance: float, t_start: float | None
) -> list[Problem]:
    """End-of-run configurational temperature clearly outside ``1 ± tolerance``
    (:func:`clearly_outside`), in either direction."""
    if not clearly_outside(t_end, t_se, tolerance):
        return []
    was = f" (it was {t_start:.3f} at calibration)" if t_start is not None else ""
    if t_end > 1:
        moved = t_start is not None and t_end - t_start > tolerance + 2 * t_se
        cause = "drift" if moved else "step_size"
        why = (
            "the chains moved to where the calibrated step runs hot (e.g. along a "
            "flat direction of L_n)"
            if moved
            else "the step size is too large for where the chains are"
        )
        fix = (
            "a larger gamma confines the drift; a smaller step_size cools it"
            if moved
            else "use a smaller step_size, or let calibration choose it"
        )
        return [
            Problem(
                cause,
                f"configurational temperature at the end of the run is {t_end:.3f} ± "
                f"{t_se:.3f}{was}, clearly above 1 + {tolerance:g}: {why}. λ̂ carries "
                f"discretisation bias (usually upward, of relative size up to about "
                f"T − 1). Fix: {fix}.",
            )
        ]
    return [
        Problem(
            "not_equilibrated",
            f"configurational temperature at the end of the run is {t_end:.3f} ± "
            f"{t_se:.3f}{was}, clearly below 1 − {tolerance:g}: the chains are colder "
            "than the target, i.e. not equilibrated (a step size too small to move in "
            "this run, or chains still relaxing). λ̂ is likely biased low. Use a larger "
            "step_size or more steps.",
        )
    ]


class ProblemReport:
    """Collects :class:`Problem`s: warns as each is found, raises when strict."""

    def __init__(self, strict: bool):
        self.strict, self.problems = bool(strict), []

    def add(self, problems, stop: bool = False) -> None:
        for p in problems:
            self.problems.append(p)
            if not self.strict:
                warnings.warn(f"[{p.cause}] {p.message}", RuntimeWarning, stacklevel=3)
        if stop and self.strict and self.problems:
            raise LLCCheckError(self.problems)

    def has(self, cause: str) -> bool:
        return any(p.cause == cause for p in self.problems)

    def finish(self) -> tuple:
        if self.strict and self.problems:
            raise LLCCheckError(self.problems)
        return tuple(self.problems)


def check_llc_arguments(posterior, sampler, num_chains, max_steps, target_rel_mcse):
    check_posterior(posterior)
    if posterior.center is None:
        raise ValueError(
            "estimate_llc needs a localisation centre: build the posterior with "
            "center=w_star (a local minimum of L_n) and gamma > 0."
        )
    if sampler not in ("auto", "mams", "sgld", "psgld", "baoab", "mala", "nuts"):
        raise ValueError(
            "sampler must be 'auto', 'mams', 'sgld', 'psgld', 'baoab', 'mala' or "
            f"'nuts', got {sampler!r}."
        )
    _validate.check_int("num_chains", num_chains)
    _validate.check_int("max_steps", max_steps, minimum=8)
    t = _validate.as_numbers("target_rel_mcse", target_rel_mcse)
    if t is None or t.shape != () or not 0 < float(t) < 1:
        raise ValueError(
            f"target_rel_mcse must be a number in (0, 1), got {target_rel_mcse!r}; "
            "0.01 aims for an MCSE of 1% of λ̂."
        )


def check_gamma_check(gamma_check) -> None:
    if not isinstance(gamma_check, (tuple, list)):
        raise TypeError(
            f"gamma_check must be a tuple of factors of γ, e.g. (0.5, 2.0), or () to "
            f"skip; got {gamma_check!r}."
        )
    for f in gamma_check:
        _validate.check_positive("gamma_check", f, "Factors of γ, e.g. (0.5, 2.0).")
